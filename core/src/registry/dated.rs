//! Validity periods of registry rows (`valid_from` inclusive, `valid_to` exclusive, consumption days in the ORD's time zone) and the rows of one key over time.

use std::fmt;

use chrono::NaiveDate;

/// The days a registry row is in force: `[from, to)`, each end open when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Validity {
    /// In force on every day.
    pub const ALWAYS: Validity = Validity {
        from: None,
        to: None,
    };

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day < t)
    }

    /// Whether some day is in both.
    pub fn overlaps(&self, other: &Validity) -> bool {
        let starts_before_other_ends = match (self.from, other.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        let other_starts_before_this_ends = match (other.from, self.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_this_ends
    }

    /// Reads the two optional fields of a row: ISO dates or empty; `to` must be after `from`.
    pub fn parse(from: &str, to: &str) -> Result<Validity, String> {
        let date = |column: &str, text: &str| -> Result<Option<NaiveDate>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    format!("{column}: expected a date YYYY-MM-DD or nothing, found {text:?}")
                })
        };
        let v = Validity {
            from: date("valid_from", from)?,
            to: date("valid_to", to)?,
        };
        if let (Some(f), Some(t)) = (v.from, v.to) {
            if t <= f {
                return Err(format!(
                    "valid_to {t} is not after valid_from {f} (valid_to is the first day the row no longer applies)"
                ));
            }
        }
        Ok(v)
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.from, self.to) {
            (None, None) => write!(f, "on every day"),
            (Some(a), None) => write!(f, "from {a}"),
            (None, Some(b)) => write!(f, "before {b}"),
            (Some(a), Some(b)) => write!(f, "from {a} before {b}"),
        }
    }
}

/// One row of a key: when it is in force, its line, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dated<V> {
    pub validity: Validity,
    pub line: usize,
    pub value: V,
}

/// The rows of one key, none overlapping another, in the order of their first day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Timeline<V> {
    rows: Vec<Dated<V>>,
}

impl<V> Default for Timeline<V> {
    fn default() -> Self {
        Timeline { rows: Vec::new() }
    }
}

impl<V> Timeline<V> {
    /// Adds a row; `Err` with the line of a row it overlaps (the row is not added).
    pub fn insert(&mut self, validity: Validity, line: usize, value: V) -> Result<(), usize> {
        if let Some(other) = self.rows.iter().find(|r| r.validity.overlaps(&validity)) {
            return Err(other.line);
        }
        let at = self
            .rows
            .partition_point(|r| r.validity.from < validity.from);
        self.rows.insert(
            at,
            Dated {
                validity,
                line,
                value,
            },
        );
        Ok(())
    }

    /// The value in force on `day`.
    pub fn on(&self, day: NaiveDate) -> Option<&V> {
        self.rows
            .iter()
            .find(|r| r.validity.contains(day))
            .map(|r| &r.value)
    }

    pub fn rows(&self) -> impl Iterator<Item = &Dated<V>> {
        self.rows.iter()
    }

    /// The days between two consecutive rows that no row covers: `(first day, first day covered
    /// again, line before, line after)`.
    pub fn gaps(&self) -> Vec<(NaiveDate, NaiveDate, usize, usize)> {
        self.rows
            .windows(2)
            .filter_map(|w| match (w[0].validity.to, w[1].validity.from) {
                (Some(end), Some(next)) if end < next => Some((end, next, w[0].line, w[1].line)),
                _ => None,
            })
            .collect()
    }

    /// The first day of `within` on which no row is in force that `accept`s its value.
    pub fn first_uncovered(
        &self,
        within: &Validity,
        accept: impl Fn(&V) -> bool,
    ) -> Option<Option<NaiveDate>> {
        // Walk from `within`'s first day over the rows that cover it.
        let mut day = within.from;
        loop {
            if within.to.is_some() && day.is_some() && day >= within.to {
                return None;
            }
            let covering = self.rows.iter().find(|r| {
                accept(&r.value)
                    && match day {
                        Some(d) => r.validity.contains(d),
                        None => r.validity.from.is_none(),
                    }
            });
            match covering {
                None => return Some(day),
                Some(r) => match r.validity.to {
                    None => return None,
                    Some(t) => day = Some(t),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn v(from: &str, to: &str) -> Validity {
        Validity::parse(from, to).unwrap()
    }

    #[test]
    fn valid_from_is_inclusive_and_valid_to_exclusive() {
        let p = v("2024-10-01", "2024-10-29");
        assert!(!p.contains(d("2024-09-30")));
        assert!(p.contains(d("2024-10-01")));
        assert!(p.contains(d("2024-10-28")));
        assert!(!p.contains(d("2024-10-29")));
        assert!(Validity::ALWAYS.contains(d("1999-01-01")));
    }

    #[test]
    fn periods_that_meet_do_not_overlap_and_open_ends_overlap_everything_after() {
        assert!(!v("", "2024-10-29").overlaps(&v("2024-10-29", "")));
        assert!(v("", "2024-10-30").overlaps(&v("2024-10-29", "")));
        assert!(v("", "").overlaps(&v("2030-01-01", "2030-01-02")));
        assert!(!v("2024-01-01", "2024-02-01").overlaps(&v("2024-03-01", "")));
    }

    #[test]
    fn bad_dates_and_an_end_before_the_start_are_refused_with_the_column() {
        assert!(Validity::parse("29/10/2024", "")
            .unwrap_err()
            .contains("valid_from"));
        assert!(Validity::parse("", "2024-13-01")
            .unwrap_err()
            .contains("valid_to"));
        assert!(Validity::parse("2024-10-29", "2024-10-29")
            .unwrap_err()
            .contains("not after"));
    }

    #[test]
    fn a_timeline_gives_the_row_in_force_and_refuses_an_overlap_naming_the_other_line() {
        let mut t = Timeline::default();
        t.insert(v("2024-10-29", ""), 3, "03").unwrap();
        t.insert(v("", "2024-10-29"), 2, "01").unwrap();
        assert_eq!(t.on(d("2024-10-28")), Some(&"01"));
        assert_eq!(t.on(d("2024-10-29")), Some(&"03"));
        assert_eq!(t.insert(v("2024-11-01", "2024-11-02"), 4, "02"), Err(3));
        assert!(t.gaps().is_empty());
    }

    #[test]
    fn gaps_and_uncovered_days_are_found() {
        let mut t = Timeline::default();
        t.insert(v("", "2024-10-29"), 2, 1).unwrap();
        t.insert(v("2024-11-01", ""), 3, 1).unwrap();
        assert_eq!(t.gaps(), vec![(d("2024-10-29"), d("2024-11-01"), 2, 3)]);
        assert_eq!(
            t.first_uncovered(&Validity::ALWAYS, |_| true),
            Some(Some(d("2024-10-29")))
        );
        assert_eq!(t.first_uncovered(&v("2024-11-05", ""), |_| true), None);
        assert_eq!(
            t.first_uncovered(&v("2024-10-01", "2024-10-29"), |_| true),
            None
        );
        assert_eq!(
            t.first_uncovered(&Validity::ALWAYS, |x| *x == 2),
            Some(None)
        );
    }
}
