//! Which CPEs an ORD has not sent a file for: the registry's CPEs of a day against the ORD files received, from when their absence counts (`expect_by`), and what changed since it was last reported.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::cpe::Cpe;

/// When an ORD's files of day D are due: `days_after` days after D at local time `at`
/// (`D+1 20:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectBy {
    pub days_after: u32,
    pub at: NaiveTime,
}

impl ExpectBy {
    /// The default: D+1 at the ORD's send time.
    pub fn default_for(send_at: NaiveTime) -> ExpectBy {
        ExpectBy {
            days_after: 1,
            at: send_at,
        }
    }

    /// Reads `D+N HH:MM` (N from 0 to 30).
    pub fn parse(text: &str) -> Result<ExpectBy, String> {
        let wrong = || format!("expected D+N HH:MM (e.g. \"D+1 20:00\"), found {text:?}");
        let rest = text.trim().strip_prefix("D+").ok_or_else(wrong)?;
        let (days, time) = rest.split_once(' ').ok_or_else(wrong)?;
        let days_after: u32 = days.parse().map_err(|_| wrong())?;
        if days_after > 30 {
            return Err(format!(
                "{text:?}: expected at most D+30 (a day is closed after its D+30 send)"
            ));
        }
        let at = NaiveTime::parse_from_str(time.trim(), "%H:%M").map_err(|_| wrong())?;
        Ok(ExpectBy { days_after, at })
    }

    /// The instant the files of `day` are due, in `tz` (a local time the clocks skip is taken at
    /// the jump).
    pub fn instant(&self, day: NaiveDate, tz: Tz) -> DateTime<Utc> {
        let local = (day + Duration::days(i64::from(self.days_after))).and_time(self.at);
        (0..8)
            .find_map(|step| {
                tz.from_local_datetime(&(local + Duration::minutes(15 * step)))
                    .earliest()
            })
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
    }
}

impl fmt::Display for ExpectBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "D+{} {}", self.days_after, self.at.format("%H:%M"))
    }
}

/// The days whose ORD files are due by `now` and still worth asking for: from the first day the
/// ledger knows for the ORD (`first_known`), within the window before `today`, not closed.
pub fn days_due(
    first_known: Option<NaiveDate>,
    (today, window_days): (NaiveDate, u32),
    closed: &BTreeSet<NaiveDate>,
    (expect_by, tz): (ExpectBy, Tz),
    now: DateTime<Utc>,
) -> Vec<NaiveDate> {
    let Some(first) = first_known else {
        return Vec::new();
    };
    let from = first.max(today - Duration::days(i64::from(window_days)));
    from.iter_days()
        .take_while(|d| *d < today)
        .filter(|d| !closed.contains(d) && expect_by.instant(*d, tz) <= now)
        .collect()
}

/// What changed in one day's missing CPEs since they were last reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissingChange {
    /// Missing now and not reported before: the event names them.
    pub new: Vec<Cpe>,
    /// Reported before and no longer missing (their file arrived, or the registry no longer
    /// expects one).
    pub cleared: Vec<Cpe>,
    /// Missing now, all of them.
    pub missing: Vec<Cpe>,
}

/// The CPEs `expected` (the registry's for the ORD on the day) without an ORD file in `arrived`,
/// against the ones `reported` missing before.
pub fn missing_change(
    expected: impl IntoIterator<Item = Cpe>,
    arrived: &BTreeSet<Cpe>,
    reported: &BTreeSet<Cpe>,
) -> MissingChange {
    let missing: Vec<Cpe> = expected
        .into_iter()
        .filter(|c| !arrived.contains(c))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let now: BTreeSet<&Cpe> = missing.iter().collect();
    MissingChange {
        new: missing
            .iter()
            .filter(|c| !reported.contains(c))
            .copied()
            .collect(),
        cleared: reported
            .iter()
            .filter(|c| !now.contains(c))
            .copied()
            .collect(),
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const LISBON: Tz = chrono_tz::Europe::Lisbon;

    #[test]
    fn expect_by_reads_d_plus_n_and_a_local_time() {
        let e = ExpectBy::parse("D+1 20:00").unwrap();
        assert_eq!(
            e,
            ExpectBy::default_for(NaiveTime::from_hms_opt(20, 0, 0).unwrap())
        );
        assert_eq!(e.to_string(), "D+1 20:00");
        assert_eq!(ExpectBy::parse("D+0 23:30").unwrap().days_after, 0);
        for bad in ["D1 20:00", "D+1", "D+x 20:00", "D+1 25:00", "tomorrow"] {
            assert!(
                ExpectBy::parse(bad).unwrap_err().contains("D+N HH:MM"),
                "{bad}"
            );
        }
        assert!(ExpectBy::parse("D+31 20:00").unwrap_err().contains("D+30"));
    }

    #[test]
    fn files_of_a_day_are_due_at_the_local_time_of_the_day_after() {
        let e = ExpectBy::parse("D+1 20:00").unwrap();
        // Summer: 20:00 WEST is 19:00 UTC; winter: 20:00 UTC.
        assert_eq!(
            e.instant(d("2024-07-04"), LISBON),
            t("2024-07-05T19:00:00Z")
        );
        assert_eq!(
            e.instant(d("2024-10-27"), LISBON),
            t("2024-10-28T20:00:00Z")
        );
    }

    #[test]
    fn days_due_start_at_the_first_known_day_skip_closed_ones_and_wait_for_expect_by() {
        let e = ExpectBy::parse("D+1 20:00").unwrap();
        let closed: BTreeSet<NaiveDate> = [d("2024-10-25")].into();
        let now = t("2024-10-28T21:30:00Z");
        let due = days_due(
            Some(d("2024-10-24")),
            (d("2024-10-28"), 30),
            &closed,
            (e, LISBON),
            now,
        );
        // The 27th's files were due at 20:00 on the 28th; the 28th's are not due yet.
        assert_eq!(due, vec![d("2024-10-24"), d("2024-10-26"), d("2024-10-27")]);
        let early = t("2024-10-28T19:00:00Z");
        let due = days_due(
            Some(d("2024-10-24")),
            (d("2024-10-28"), 30),
            &closed,
            (e, LISBON),
            early,
        );
        assert_eq!(due.last(), Some(&d("2024-10-26")));
        assert!(days_due(None, (d("2024-10-28"), 30), &closed, (e, LISBON), now).is_empty());
        // Only the window before today.
        let due = days_due(
            Some(d("2024-01-01")),
            (d("2024-10-28"), 2),
            &BTreeSet::new(),
            (e, LISBON),
            now,
        );
        assert_eq!(due, vec![d("2024-10-26"), d("2024-10-27")]);
    }

    #[test]
    fn a_change_names_the_newly_missing_and_the_cleared() {
        let c = |n| Cpe::from_parts(2, n).unwrap();
        let expected = [c(1), c(2), c(3)];
        let arrived: BTreeSet<Cpe> = [c(1)].into();
        let first = missing_change(expected, &arrived, &BTreeSet::new());
        assert_eq!(first.new, vec![c(2), c(3)]);
        assert!(first.cleared.is_empty());
        // Reported; then the file of 3 arrives.
        let reported: BTreeSet<Cpe> = first.missing.into_iter().collect();
        let arrived: BTreeSet<Cpe> = [c(1), c(3)].into();
        let next = missing_change(expected, &arrived, &reported);
        assert!(next.new.is_empty());
        assert_eq!(next.cleared, vec![c(3)]);
        assert_eq!(next.missing, vec![c(2)]);
    }
}
