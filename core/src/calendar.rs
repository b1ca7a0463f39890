//! Quarter-hour calendar: a region's local day as ordered quarter-hours (UTC start + period label), DST included.

use std::fmt;

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Minutes in one quarter-hour.
pub const QUARTER_MINUTES: i64 = 15;

/// How period labels are written in a file (SGL-NOTES §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelConvention {
    /// Local legal time: 92/96/100 periods, repeated labels on the autumn day (the default).
    #[default]
    Local,
    /// UTC days of 96 periods labelled by UTC time.
    Utc,
    /// 96 periods labelled by local time on every day: on the spring DST day the missing hour's
    /// four labels carry zeros, on the autumn day each label of the repeated hour holds both
    /// passes summed (public E-Redes-derived data is published so).
    #[serde(rename = "local-96")]
    Local96,
}

impl LabelConvention {
    /// The name as the config and `check --time-convention` spell it.
    pub fn name(self) -> &'static str {
        match self {
            LabelConvention::Local => "local",
            LabelConvention::Utc => "utc",
            LabelConvention::Local96 => "local-96",
        }
    }
}

impl fmt::Display for LabelConvention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What stretch of time a quarter-hour's label stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Span {
    /// The quarter-hour from `start` (every label but the two below).
    #[default]
    One,
    /// `local-96` on the autumn DST day: the label of the repeated hour, holding the quarter-hour
    /// from `start` and the one an hour later (both passes summed).
    BothPasses,
    /// `local-96` on the spring DST day: a label of the hour that does not exist; it holds no
    /// time (its value is zero). `start` is the instant the clock jumped.
    Gap,
}

/// A period label `HHMM`: the end of the quarter-hour in minutes after midnight (15 ..= 1440).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeriodLabel(u16);

impl PeriodLabel {
    /// From minutes after midnight of the quarter-hour's end (1440 = `2400`).
    pub fn from_end_minutes(minutes: u16) -> Option<PeriodLabel> {
        (1..=1440)
            .contains(&minutes)
            .then_some(PeriodLabel(minutes))
    }

    /// Parses `HHMM` (`0015` … `2400`, minutes 00/15/30/45); `None` when it cannot end a quarter-hour.
    pub fn parse(text: &str) -> Option<PeriodLabel> {
        let b = text.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let hh = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
        let mm = u16::from(b[2] - b'0') * 10 + u16::from(b[3] - b'0');
        if mm % 15 != 0 || mm >= 60 || hh > 24 || (hh == 24 && mm != 0) {
            return None;
        }
        PeriodLabel::from_end_minutes(hh * 60 + mm)
    }

    pub fn end_minutes(self) -> u16 {
        self.0
    }

    /// The four characters `HHMM`.
    pub fn digits(self) -> [u8; 4] {
        let (h, m) = (self.0 / 60, self.0 % 60);
        [
            b'0' + (h / 10) as u8,
            b'0' + (h % 10) as u8,
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
        ]
    }
}

impl fmt::Display for PeriodLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        f.write_str(std::str::from_utf8(&d).map_err(|_| fmt::Error)?)
    }
}

/// One quarter-hour of a day: where it starts (UTC) and how files label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuarterHour {
    pub start: DateTime<Utc>,
    pub label: PeriodLabel,
    pub span: Span,
}

impl QuarterHour {
    pub fn end(&self) -> DateTime<Utc> {
        self.start + Duration::minutes(QUARTER_MINUTES)
    }
}

/// The ordered quarter-hours of one day in one time zone and label convention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCalendar {
    pub day: NaiveDate,
    pub quarter_hours: Vec<QuarterHour>,
    /// Set for `local-96`: labels are found by local wall-clock time in this zone.
    wall_clock: Option<Tz>,
}

impl DayCalendar {
    /// Builds the calendar of `day` in `tz` (for `Utc` convention `tz` is ignored).
    pub fn new(tz: Tz, day: NaiveDate, convention: LabelConvention) -> DayCalendar {
        match convention {
            LabelConvention::Utc => Self::utc_day(day),
            LabelConvention::Local => Self::local_day(tz, day),
            LabelConvention::Local96 => Self::local_96_day(tz, day),
        }
    }

    /// 96 labels of local wall-clock time; a label's local time that does not exist is a gap,
    /// one that exists twice holds both passes.
    fn local_96_day(tz: Tz, day: NaiveDate) -> DayCalendar {
        let midnight = day.and_time(NaiveTime::MIN);
        let quarter_hours = (0..96u16)
            .map(|i| {
                let local = midnight + Duration::minutes(QUARTER_MINUTES * i64::from(i));
                let label = PeriodLabel(15 * (i + 1));
                match tz.from_local_datetime(&local) {
                    LocalResult::Single(t) => QuarterHour {
                        start: t.with_timezone(&Utc),
                        label,
                        span: Span::One,
                    },
                    LocalResult::Ambiguous(first, _) => QuarterHour {
                        start: first.with_timezone(&Utc),
                        label,
                        span: Span::BothPasses,
                    },
                    LocalResult::None => QuarterHour {
                        start: after_gap(tz, local),
                        label,
                        span: Span::Gap,
                    },
                }
            })
            .collect();
        DayCalendar {
            day,
            quarter_hours,
            wall_clock: Some(tz),
        }
    }

    fn utc_day(day: NaiveDate) -> DayCalendar {
        let start = Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN));
        let quarter_hours = (0..96u16)
            .map(|i| QuarterHour {
                start: start + Duration::minutes(QUARTER_MINUTES * i64::from(i)),
                label: PeriodLabel(15 * (i + 1)),
                span: Span::One,
            })
            .collect();
        DayCalendar {
            day,
            quarter_hours,
            wall_clock: None,
        }
    }

    fn local_day(tz: Tz, day: NaiveDate) -> DayCalendar {
        let start = local_day_start(tz, day);
        let end = match day.succ_opt() {
            Some(next) => local_day_start(tz, next),
            None => start + Duration::days(1),
        };
        let count = ((end - start).num_minutes() / QUARTER_MINUTES).max(0) as usize;
        let offset_at = |t: DateTime<Utc>| {
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        let first_offset = offset_at(start);
        let last_offset = offset_at(end - Duration::minutes(QUARTER_MINUTES));
        let mut quarter_hours = Vec::with_capacity(count);
        for i in 0..count {
            let qh_start = start + Duration::minutes(QUARTER_MINUTES * i as i64);
            // Without a transition inside the day, one offset serves every quarter-hour.
            let offset = if first_offset == last_offset {
                first_offset
            } else {
                offset_at(qh_start)
            };
            let local = qh_start.naive_utc() + Duration::seconds(offset);
            let local_minutes = if local.date() < day {
                0
            } else {
                (local.time().num_seconds_from_midnight() / 60) as i64
            };
            let end_minutes = (local_minutes + QUARTER_MINUTES).clamp(1, 1440) as u16;
            quarter_hours.push(QuarterHour {
                start: qh_start,
                label: PeriodLabel(end_minutes),
                span: Span::One,
            });
        }
        DayCalendar {
            day,
            quarter_hours,
            wall_clock: None,
        }
    }

    pub fn len(&self) -> usize {
        self.quarter_hours.len()
    }

    pub fn is_empty(&self) -> bool {
        self.quarter_hours.is_empty()
    }

    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.quarter_hours.first().map(|q| q.start)
    }

    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.quarter_hours.last().map(QuarterHour::end)
    }

    /// Index of the quarter-hour starting at `start`, if it belongs to this day (with `local-96`
    /// both passes of the autumn repeated hour give the same index).
    pub fn index_of_start(&self, start: DateTime<Utc>) -> Option<usize> {
        if let Some(tz) = self.wall_clock {
            let local = start.with_timezone(&tz).naive_local();
            if local.date() != self.day || start.timestamp() % (QUARTER_MINUTES * 60) != 0 {
                return None;
            }
            let minutes = i64::from(local.time().num_seconds_from_midnight() / 60);
            if minutes % QUARTER_MINUTES != 0 {
                return None;
            }
            return usize::try_from(minutes / QUARTER_MINUTES).ok();
        }
        let first = self.start()?;
        let minutes = (start - first).num_minutes();
        if minutes < 0 || minutes % QUARTER_MINUTES != 0 || (start - first).num_seconds() % 60 != 0
        {
            return None;
        }
        let index = (minutes / QUARTER_MINUTES) as usize;
        (index < self.len()).then_some(index)
    }

    pub fn labels(&self) -> impl Iterator<Item = PeriodLabel> + '_ {
        self.quarter_hours.iter().map(|q| q.label)
    }
}

/// The instant the clock jumped over the local time `local` (which does not exist in `tz`): the
/// first local time after it that exists is the one the clock jumped to.
fn after_gap(tz: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    (1..=(24 * 4))
        .find_map(|step| {
            tz.from_local_datetime(&(local + Duration::minutes(QUARTER_MINUTES * step)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
}

/// The first UTC instant whose local date in `tz` is `day` (after a midnight gap: the transition).
pub fn local_day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    // A spring-forward gap at midnight (the Azores) has no local 00:00: step to its end.
    for step in 0..=(24 * 4) {
        let local = midnight + Duration::minutes(QUARTER_MINUTES * step);
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    Utc.from_utc_datetime(&midnight)
}

/// The day (in the convention's sense) that contains the UTC instant `t`.
pub fn day_of_instant(tz: Tz, convention: LabelConvention, t: DateTime<Utc>) -> NaiveDate {
    match convention {
        LabelConvention::Utc => t.date_naive(),
        LabelConvention::Local | LabelConvention::Local96 => t.with_timezone(&tz).date_naive(),
    }
}

/// The quarter-hour boundary at or before `t`.
pub fn floor_to_quarter(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    let floored = secs - secs.rem_euclid(QUARTER_MINUTES * 60);
    DateTime::from_timestamp(floored, 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn labels(region: Region, d: NaiveDate) -> Vec<String> {
        DayCalendar::new(region.time_zone(), d, LabelConvention::Local)
            .labels()
            .map(|l| l.to_string())
            .collect()
    }

    #[test]
    fn ordinary_day_has_96_periods_from_0015_to_2400() {
        for region in Region::ALL {
            let l = labels(region, day(2024, 7, 5));
            assert_eq!(l.len(), 96);
            assert_eq!(l[0], "0015");
            assert_eq!(l[95], "2400");
        }
    }

    #[test]
    fn lisbon_spring_day_2024_03_31_has_92_periods_without_0115_to_0200() {
        for region in [Region::Continent, Region::Madeira] {
            let l = labels(region, day(2024, 3, 31));
            assert_eq!(l.len(), 92);
            assert_eq!(&l[2..6], ["0045", "0100", "0215", "0230"]);
            for gone in ["0115", "0130", "0145", "0200"] {
                assert!(!l.contains(&gone.to_string()), "{gone} must not exist");
            }
        }
    }

    #[test]
    fn lisbon_autumn_day_2024_10_27_repeats_0115_to_0200() {
        let cal = DayCalendar::new(
            Region::Continent.time_zone(),
            day(2024, 10, 27),
            LabelConvention::Local,
        );
        let l: Vec<String> = cal.labels().map(|l| l.to_string()).collect();
        assert_eq!(l.len(), 100);
        assert_eq!(
            &l[3..13],
            ["0100", "0115", "0130", "0145", "0200", "0115", "0130", "0145", "0200", "0215"]
        );
        // The first pass is summer time (UTC+1): 01:00 local = 00:00 UTC.
        assert_eq!(
            cal.quarter_hours[4].start.to_rfc3339(),
            "2024-10-27T00:00:00+00:00"
        );
        assert_eq!(
            cal.quarter_hours[8].start.to_rfc3339(),
            "2024-10-27T01:00:00+00:00"
        );
        assert_eq!(l[99], "2400");
    }

    #[test]
    fn azores_spring_day_2024_03_31_starts_at_0115() {
        let cal = DayCalendar::new(
            Region::Azores.time_zone(),
            day(2024, 3, 31),
            LabelConvention::Local,
        );
        let l: Vec<String> = cal.labels().map(|l| l.to_string()).collect();
        assert_eq!(l.len(), 92);
        assert_eq!(l[0], "0115");
        assert_eq!(l[91], "2400");
        assert_eq!(
            cal.start().unwrap().to_rfc3339(),
            "2024-03-31T01:00:00+00:00"
        );
    }

    #[test]
    fn azores_autumn_day_2024_10_27_repeats_0015_to_0100() {
        let l = labels(Region::Azores, day(2024, 10, 27));
        assert_eq!(l.len(), 100);
        assert_eq!(
            &l[..9],
            ["0015", "0030", "0045", "0100", "0015", "0030", "0045", "0100", "0115"]
        );
    }

    #[test]
    fn consecutive_days_tile_time_without_gap_or_overlap() {
        for region in Region::ALL {
            let tz = region.time_zone();
            let mut d = day(2024, 1, 1);
            while d < day(2025, 1, 1) {
                let a = DayCalendar::new(tz, d, LabelConvention::Local);
                let b = DayCalendar::new(tz, d.succ_opt().unwrap(), LabelConvention::Local);
                assert_eq!(a.end(), b.start(), "{region} {d}");
                d = d.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn utc_convention_always_has_96_periods() {
        let cal = DayCalendar::new(
            Region::Continent.time_zone(),
            day(2024, 10, 27),
            LabelConvention::Utc,
        );
        assert_eq!(cal.len(), 96);
        assert_eq!(
            cal.start().unwrap().to_rfc3339(),
            "2024-10-27T00:00:00+00:00"
        );
    }

    #[test]
    fn index_of_start_and_day_of_instant_agree() {
        let tz = Region::Azores.time_zone();
        let cal = DayCalendar::new(tz, day(2024, 10, 27), LabelConvention::Local);
        for (i, q) in cal.quarter_hours.iter().enumerate() {
            assert_eq!(cal.index_of_start(q.start), Some(i));
            assert_eq!(
                day_of_instant(tz, LabelConvention::Local, q.start),
                day(2024, 10, 27)
            );
        }
        assert_eq!(cal.index_of_start(cal.end().unwrap()), None);
    }

    #[test]
    fn period_labels_parse_only_times_of_day() {
        assert_eq!(
            PeriodLabel::parse("0015").map(|p| p.end_minutes()),
            Some(15)
        );
        assert_eq!(
            PeriodLabel::parse("2400").map(|p| p.to_string()),
            Some("2400".into())
        );
        for bad in ["0000", "2415", "0060", "015", "00a5", "2500", "0016"] {
            assert_eq!(PeriodLabel::parse(bad), None, "{bad}");
        }
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap()
    }

    fn spans(region: Region, d: NaiveDate) -> Vec<(String, Span)> {
        DayCalendar::new(region.time_zone(), d, LabelConvention::Local96)
            .quarter_hours
            .iter()
            .map(|q| (q.label.to_string(), q.span))
            .collect()
    }

    #[test]
    fn local_96_spring_day_has_96_labels_with_the_skipped_hour_as_a_gap() {
        for region in [Region::Continent, Region::Madeira] {
            let s = spans(region, day(2024, 3, 31));
            assert_eq!(s.len(), 96);
            let gap: Vec<&str> = s
                .iter()
                .filter(|q| q.1 == Span::Gap)
                .map(|q| q.0.as_str())
                .collect();
            assert_eq!(gap, ["0115", "0130", "0145", "0200"]);
            assert!(s.iter().all(|q| q.1 != Span::BothPasses));
        }
        // The Azores jump from 00:00 to 01:00.
        let s = spans(Region::Azores, day(2024, 3, 31));
        let gap: Vec<&str> = s
            .iter()
            .filter(|q| q.1 == Span::Gap)
            .map(|q| q.0.as_str())
            .collect();
        assert_eq!(gap, ["0015", "0030", "0045", "0100"]);
        let cal = DayCalendar::new(
            Region::Azores.time_zone(),
            day(2024, 3, 31),
            LabelConvention::Local96,
        );
        // The day starts at the jump (01:00 UTC), and the first real quarter-hour is 0115.
        assert_eq!(cal.start(), Some(utc(2024, 3, 31, 1, 0)));
        assert_eq!(cal.index_of_start(utc(2024, 3, 31, 1, 0)), Some(4));
    }

    #[test]
    fn local_96_autumn_day_folds_both_passes_of_the_repeated_hour_into_one_label() {
        let tz = Region::Continent.time_zone();
        let cal = DayCalendar::new(tz, day(2024, 10, 27), LabelConvention::Local96);
        assert_eq!(cal.len(), 96);
        let both: Vec<String> = cal
            .quarter_hours
            .iter()
            .filter(|q| q.span == Span::BothPasses)
            .map(|q| q.label.to_string())
            .collect();
        assert_eq!(both, ["0115", "0130", "0145", "0200"]);
        // 01:00 local happens at 00:00 UTC (summer) and again at 01:00 UTC (winter): one label.
        assert_eq!(cal.index_of_start(utc(2024, 10, 27, 0, 0)), Some(4));
        assert_eq!(cal.index_of_start(utc(2024, 10, 27, 1, 0)), Some(4));
        assert_eq!(cal.index_of_start(utc(2024, 10, 27, 1, 45)), Some(7));
        assert_eq!(cal.index_of_start(utc(2024, 10, 27, 2, 0)), Some(8));
        assert_eq!(
            cal.index_of_start(utc(2024, 10, 26, 22, 45)),
            None,
            "the day before"
        );
        assert_eq!(cal.start(), Some(utc(2024, 10, 26, 23, 0)));
        assert_eq!(cal.end(), Some(utc(2024, 10, 28, 0, 0)));
        let s = spans(Region::Azores, day(2024, 10, 27));
        let both: Vec<&str> = s
            .iter()
            .filter(|q| q.1 == Span::BothPasses)
            .map(|q| q.0.as_str())
            .collect();
        assert_eq!(both, ["0015", "0030", "0045", "0100"]);
    }

    #[test]
    fn local_96_covers_every_real_quarter_hour_of_every_day_exactly_once() {
        // Over two years, each day's labels stand for exactly the day's real quarter-hours.
        for region in Region::ALL {
            let tz = region.time_zone();
            for d in day(2024, 1, 1).iter_days().take(731) {
                let real = DayCalendar::new(tz, d, LabelConvention::Local);
                let folded = DayCalendar::new(tz, d, LabelConvention::Local96);
                assert_eq!(folded.len(), 96, "{region} {d}");
                let mut hits = [0u8; 96];
                for q in &real.quarter_hours {
                    let i = folded
                        .index_of_start(q.start)
                        .unwrap_or_else(|| panic!("{region} {d} {}", q.start));
                    hits[i] += 1;
                }
                for (i, q) in folded.quarter_hours.iter().enumerate() {
                    let want = match q.span {
                        Span::One => 1,
                        Span::BothPasses => 2,
                        Span::Gap => 0,
                    };
                    assert_eq!(hits[i], want, "{region} {d} {}", q.label);
                }
            }
        }
    }
}
