//! Time-of-use periods (ERSE's ponta, cheias, vazio; fora de vazio for bi-horário) as dated tables read from TOML: which period a quarter-hour falls in for a tariff cycle.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::filename::TariffCycle;
use crate::region::Region;

/// A time-of-use period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TouPeriod {
    Ponta,
    Cheias,
    Vazio,
    /// Bi-horário: ponta and cheias together.
    ForaVazio,
}

impl TouPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            TouPeriod::Ponta => "ponta",
            TouPeriod::Cheias => "cheias",
            TouPeriod::Vazio => "vazio",
            TouPeriod::ForaVazio => "fora_vazio",
        }
    }

    /// The periods a tariff cycle's breakdown has, in display order.
    pub fn of_cycle(tariff: TariffCycle) -> &'static [TouPeriod] {
        match tariff {
            TariffCycle::BiHourlyDaily | TariffCycle::BiHourlyWeekly => {
                &[TouPeriod::ForaVazio, TouPeriod::Vazio]
            }
            TariffCycle::TriHourlyDaily | TariffCycle::TriHourlyWeekly => {
                &[TouPeriod::Ponta, TouPeriod::Cheias, TouPeriod::Vazio]
            }
        }
    }
}

impl fmt::Display for TouPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mistake in a time-of-use file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {message}")]
pub struct TouError {
    pub file: String,
    pub message: String,
}

/// The three-period day of one season: per quarter-hour of the day (0 = 00:00–00:15), its period.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DayPattern([TouPeriod; 96]);

/// Winter and summer legal time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seasons {
    winter: DayPattern,
    summer: DayPattern,
}

/// One table: a region's daily and weekly cycles from a day on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TouTable {
    name: String,
    region: Region,
    valid_from: NaiveDate,
    daily: Seasons,
    weekday: Seasons,
    saturday: Seasons,
    sunday: Seasons,
}

/// Every configured table; the one in force for a region on a day is the latest that began.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TouTables {
    tables: Vec<TouTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    table: Vec<RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    region: Region,
    valid_from: NaiveDate,
    #[serde(default)]
    name: String,
    daily: RawSeasons,
    weekly: RawWeek,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeek {
    weekday: RawSeasons,
    saturday: RawSeasons,
    sunday: RawSeasons,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeasons {
    winter: RawDay,
    summer: RawDay,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDay {
    #[serde(default)]
    ponta: Vec<String>,
    #[serde(default)]
    cheias: Vec<String>,
    #[serde(default)]
    vazio: Vec<String>,
}

/// Minutes after midnight of `HH:MM` (24:00 allowed).
fn minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0)) && m % 15 == 0).then_some(h * 60 + m)
}

impl RawDay {
    /// Each quarter-hour's period; every quarter-hour exactly once, or what is wrong.
    fn pattern(&self) -> Result<DayPattern, String> {
        let mut slots: [Option<TouPeriod>; 96] = [None; 96];
        for (period, spans) in [
            (TouPeriod::Ponta, &self.ponta),
            (TouPeriod::Cheias, &self.cheias),
            (TouPeriod::Vazio, &self.vazio),
        ] {
            for span in spans {
                let parsed = span
                    .split_once('-')
                    .and_then(|(a, b)| Some((minutes(a)?, minutes(b)?)));
                let Some((from, to)) = parsed else {
                    return Err(format!(
                        "{period}: expected \"HH:MM-HH:MM\" on quarter-hours (e.g. \"22:00-08:00\"), found {span:?}"
                    ));
                };
                // A span may wrap midnight (22:00-08:00); 00:00-24:00 is the whole day.
                let (from, to) = (usize::from(from / 15), usize::from(to / 15));
                let quarters: Vec<usize> = if from < to {
                    (from..to).collect()
                } else {
                    (from..96).chain(0..to).collect()
                };
                for q in quarters {
                    if let Some(other) = slots[q] {
                        return Err(format!(
                            "the quarter-hour from {:02}:{:02} is both {other} and {period}",
                            q / 4,
                            (q % 4) * 15
                        ));
                    }
                    slots[q] = Some(period);
                }
            }
        }
        let mut out = [TouPeriod::Vazio; 96];
        for (q, slot) in slots.iter().enumerate() {
            match slot {
                Some(p) => out[q] = *p,
                None => {
                    return Err(format!(
                        "the quarter-hour from {:02}:{:02} is in no period",
                        q / 4,
                        (q % 4) * 15
                    ))
                }
            }
        }
        Ok(DayPattern(out))
    }
}

impl RawSeasons {
    fn seasons(&self, at: &str) -> Result<Seasons, String> {
        Ok(Seasons {
            winter: self
                .winter
                .pattern()
                .map_err(|e| format!("{at}.winter: {e}"))?,
            summer: self
                .summer
                .pattern()
                .map_err(|e| format!("{at}.summer: {e}"))?,
        })
    }
}

impl TouTables {
    /// The tables shipped in `config/tou/erse-mainland.toml`.
    pub fn erse_mainland() -> TouTables {
        TouTables::parse(
            "config/tou/erse-mainland.toml",
            include_str!("../../config/tou/erse-mainland.toml"),
        )
        .unwrap_or_default()
    }

    /// Reads one file of tables (`file` names it in errors).
    pub fn parse(file: &str, text: &str) -> Result<TouTables, TouError> {
        let err = |message: String| TouError {
            file: file.to_string(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut tables = Vec::new();
        for (i, t) in raw.table.iter().enumerate() {
            let at = format!("table[{i}] ({} from {})", t.region, t.valid_from);
            let seasons =
                |s: &RawSeasons, name: &str| s.seasons(&format!("{at} {name}")).map_err(err);
            tables.push(TouTable {
                name: t.name.clone(),
                region: t.region,
                valid_from: t.valid_from,
                daily: seasons(&t.daily, "daily")?,
                weekday: seasons(&t.weekly.weekday, "weekly.weekday")?,
                saturday: seasons(&t.weekly.saturday, "weekly.saturday")?,
                sunday: seasons(&t.weekly.sunday, "weekly.sunday")?,
            });
        }
        let mut seen = BTreeMap::new();
        for t in &tables {
            if seen.insert((t.region, t.valid_from), ()).is_some() {
                return Err(err(format!(
                    "two tables for {} from {}: give the newer one its own valid_from",
                    t.region, t.valid_from
                )));
            }
        }
        Ok(TouTables { tables })
    }

    /// These tables and `other`'s.
    pub fn merge(mut self, other: TouTables) -> TouTables {
        self.tables.extend(other.tables);
        self
    }

    /// The name of the table in force for `region` on `day`, if any.
    pub fn table_name(&self, region: Region, day: NaiveDate) -> Option<&str> {
        self.in_force(region, day).map(|t| t.name.as_str())
    }

    fn in_force(&self, region: Region, day: NaiveDate) -> Option<&TouTable> {
        self.tables
            .iter()
            .filter(|t| t.region == region && t.valid_from <= day)
            .max_by_key(|t| t.valid_from)
    }

    /// The period of the quarter-hour starting at local time `start` for `tariff`; `summer`:
    /// legal summer time is in force then. `None` when no table covers the region and day.
    pub fn period(
        &self,
        region: Region,
        tariff: TariffCycle,
        start: NaiveDateTime,
        summer: bool,
    ) -> Option<TouPeriod> {
        let t = self.in_force(region, start.date())?;
        let seasons = match tariff {
            TariffCycle::BiHourlyDaily | TariffCycle::TriHourlyDaily => &t.daily,
            TariffCycle::BiHourlyWeekly | TariffCycle::TriHourlyWeekly => match start.weekday() {
                Weekday::Sat => &t.saturday,
                Weekday::Sun => &t.sunday,
                _ => &t.weekday,
            },
        };
        let day = if summer {
            &seasons.summer
        } else {
            &seasons.winter
        };
        let q = (start.hour() * 4 + start.minute() / 15) as usize;
        let three = *day.0.get(q)?;
        Some(match (tariff, three) {
            (TariffCycle::BiHourlyDaily | TariffCycle::BiHourlyWeekly, TouPeriod::Vazio) => {
                TouPeriod::Vazio
            }
            (TariffCycle::BiHourlyDaily | TariffCycle::BiHourlyWeekly, _) => TouPeriod::ForaVazio,
            (_, p) => p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(d: &str, hm: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("{d} {hm}"), "%Y-%m-%d %H:%M").unwrap()
    }

    const TUESDAY_WINTER: &str = "2024-11-05";
    const CYCLES: [TariffCycle; 4] = TariffCycle::ALL;

    #[test]
    fn at_19_00_on_a_winter_weekday_it_is_ponta_in_the_daily_tri_and_fora_vazio_in_the_daily_bi() {
        let t = TouTables::erse_mainland();
        let p = |tariff, hm| t.period(Region::Continent, tariff, at(TUESDAY_WINTER, hm), false);
        assert_eq!(
            p(TariffCycle::TriHourlyDaily, "19:00"),
            Some(TouPeriod::Ponta)
        );
        assert_eq!(
            p(TariffCycle::BiHourlyDaily, "19:00"),
            Some(TouPeriod::ForaVazio)
        );
        // 23:00 is vazio in the daily cycles in both seasons, and in the weekly cycle at the
        // weekend; on weekdays the weekly cycle's vazio is 00:00-07:00 (23:00 is cheias there).
        for summer in [false, true] {
            for tariff in [TariffCycle::BiHourlyDaily, TariffCycle::TriHourlyDaily] {
                let got = t.period(
                    Region::Continent,
                    tariff,
                    at(TUESDAY_WINTER, "23:00"),
                    summer,
                );
                assert_eq!(got, Some(TouPeriod::Vazio), "{tariff:?}");
            }
        }
        for tariff in CYCLES {
            for weekend in ["2024-11-09", "2024-11-10"] {
                let got = t.period(Region::Continent, tariff, at(weekend, "23:00"), false);
                assert_eq!(got, Some(TouPeriod::Vazio), "{tariff:?} {weekend}");
            }
        }
        assert_eq!(
            p(TariffCycle::TriHourlyWeekly, "23:00"),
            Some(TouPeriod::Cheias)
        );
    }

    #[test]
    fn the_shipped_tables_put_every_quarter_hour_in_exactly_one_period_and_ponta_is_4_h_a_day() {
        let t = TouTables::erse_mainland();
        assert_eq!(t.tables.len(), 1, "the shipped file reads");
        let table = &t.tables[0];
        for seasons in [&table.daily, &table.weekday, &table.saturday, &table.sunday] {
            for day in [&seasons.winter, &seasons.summer] {
                assert_eq!(day.0.len(), 96);
            }
        }
        for day in [&table.daily.winter, &table.daily.summer] {
            let ponta = day.0.iter().filter(|p| **p == TouPeriod::Ponta).count();
            assert_eq!(ponta, 16, "4 h of ponta in the daily tri-horário");
            let vazio = day.0.iter().filter(|p| **p == TouPeriod::Vazio).count();
            assert_eq!(vazio, 40, "10 h of vazio (22:00-08:00)");
        }
        assert!(table.sunday.winter.0.iter().all(|p| *p == TouPeriod::Vazio));
        // The islands have no shipped table.
        assert_eq!(
            t.period(
                Region::Azores,
                TariffCycle::TriHourlyDaily,
                at(TUESDAY_WINTER, "19:00"),
                false
            ),
            None
        );
    }

    #[test]
    fn summer_and_the_weekly_cycle_use_their_own_hours() {
        let t = TouTables::erse_mainland();
        let p = |tariff, d, hm, summer| t.period(Region::Continent, tariff, at(d, hm), summer);
        // Summer daily ponta 10:30-13:00; winter 10:30 is cheias.
        assert_eq!(
            p(TariffCycle::TriHourlyDaily, "2024-07-02", "10:30", true),
            Some(TouPeriod::Ponta)
        );
        assert_eq!(
            p(TariffCycle::TriHourlyDaily, TUESDAY_WINTER, "10:30", false),
            Some(TouPeriod::Cheias)
        );
        // Weekly: a winter Saturday at 10:00 is cheias, a Sunday vazio; a weekday at 07:00 cheias.
        assert_eq!(
            p(TariffCycle::TriHourlyWeekly, "2024-11-09", "10:00", false),
            Some(TouPeriod::Cheias)
        );
        assert_eq!(
            p(TariffCycle::BiHourlyWeekly, "2024-11-10", "19:00", false),
            Some(TouPeriod::Vazio)
        );
        assert_eq!(
            p(TariffCycle::TriHourlyWeekly, TUESDAY_WINTER, "07:00", false),
            Some(TouPeriod::Cheias)
        );
        assert_eq!(
            p(TariffCycle::BiHourlyWeekly, TUESDAY_WINTER, "06:45", false),
            Some(TouPeriod::Vazio)
        );
    }

    #[test]
    fn a_revision_is_a_new_table_from_its_day_on() {
        let revised = include_str!("../../config/tou/erse-mainland.toml")
            .replace("valid_from = \"2000-01-01\"", "valid_from = \"2027-01-01\"")
            .replace(
                "ponta = [\"09:00-10:30\", \"18:00-20:30\"]",
                "ponta = [\"18:00-22:00\"]",
            )
            .replace(
                "cheias = [\"08:00-09:00\", \"10:30-18:00\", \"20:30-22:00\"]",
                "cheias = [\"08:00-18:00\"]",
            );
        let t =
            TouTables::erse_mainland().merge(TouTables::parse("revised.toml", &revised).unwrap());
        let p = |d| {
            t.period(
                Region::Continent,
                TariffCycle::TriHourlyDaily,
                at(d, "21:00"),
                false,
            )
        };
        assert_eq!(p("2026-12-01"), Some(TouPeriod::Cheias));
        assert_eq!(p("2027-01-04"), Some(TouPeriod::Ponta));
    }

    #[test]
    fn a_quarter_hour_in_two_periods_or_in_none_is_refused_with_its_time() {
        let text = include_str!("../../config/tou/erse-mainland.toml");
        let overlap = text.replacen("vazio = [\"22:00-08:00\"]", "vazio = [\"21:45-08:00\"]", 1);
        let e = TouTables::parse("t.toml", &overlap)
            .unwrap_err()
            .to_string();
        assert!(e.contains("21:45") && e.contains("daily.winter"), "{e}");
        let gap = text.replacen("vazio = [\"22:00-08:00\"]", "vazio = [\"22:00-07:45\"]", 1);
        let e = TouTables::parse("t.toml", &gap).unwrap_err().to_string();
        assert!(e.contains("07:45") && e.contains("in no period"), "{e}");
        let bad = text.replacen("\"22:00-08:00\"", "\"22h-8h\"", 1);
        assert!(TouTables::parse("t.toml", &bad)
            .unwrap_err()
            .to_string()
            .contains("HH:MM-HH:MM"));
    }
}
