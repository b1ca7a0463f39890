//! The intake's decisions (pure): which version of a CPE-day is in force, which inputs come too late, what a received file's or mobility record's outcome is. The shells read what the ledger holds and carry out the verdict.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::ledger::ReceivedStatus;
use crate::mobility::MobilityInput;
use crate::planner::Schedule;

/// An ORD version of a CPE-day: the header's transmission id, then the name's NTransm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrdVersion {
    pub transmission_id: u64,
    pub ntransm: u64,
}

/// What becomes of one day of a received ORD file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayVerdict {
    /// Newer than (or as new as: the latest receipt wins) the version held: in force.
    Apply,
    /// The day is closed or past its D+window: archived, reported, not applied.
    Late,
    /// Older than the version held: archived, not applied.
    Stale,
}

/// Judges one day of a received ORD file against what is held and the schedule.
pub fn judge_day(
    schedule: &Schedule,
    day: NaiveDate,
    now: DateTime<Utc>,
    closed: &BTreeSet<NaiveDate>,
    incoming: OrdVersion,
    held: Option<OrdVersion>,
) -> DayVerdict {
    if !schedule.accepts(day, now, closed) {
        return DayVerdict::Late;
    }
    match held {
        Some(held) if incoming < held => DayVerdict::Stale,
        _ => DayVerdict::Apply,
    }
}

/// A valid file's outcome from its days' verdicts: applied if any day is; late if all that are not
/// applied are late; stale otherwise.
pub fn file_outcome(verdicts: &[DayVerdict]) -> ReceivedStatus {
    let applied = verdicts.contains(&DayVerdict::Apply);
    let late = verdicts.iter().filter(|v| **v == DayVerdict::Late).count();
    let stale = verdicts.iter().filter(|v| **v == DayVerdict::Stale).count();
    if applied {
        ReceivedStatus::Applied
    } else if late > 0 && stale == 0 {
        ReceivedStatus::Late
    } else {
        ReceivedStatus::Stale
    }
}

/// What becomes of one mobility record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordVerdict {
    /// In force, for these (open) days.
    Apply(Vec<NaiveDate>),
    /// Not newer than the record held under its key (`last_updated`).
    Stale,
    /// Every day it touches is closed or past its window.
    Late,
}

/// What an incoming record whose `last_updated` equals the held one's is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tie {
    /// The same version (an OCPI CDR: `last_updated` is the CPO's version stamp).
    Stale,
    /// A later version (quarter-hour readings: `last_updated` is the file's mtime, whole
    /// seconds, and files are received in order, so a later file in the same second replaces).
    LaterReceiptWins,
}

impl Tie {
    /// What equal times mean for a record read from an input of this kind: a CDR's stamp is its
    /// version; readings carry their file's mtime (whole seconds), and files are received in
    /// order, so a later file in the same second replaces.
    pub fn of_input(input: MobilityInput) -> Tie {
        match input {
            MobilityInput::OcpiCdrs => Tie::Stale,
            MobilityInput::QuarterHourReadings => Tie::LaterReceiptWins,
        }
    }
}

/// Whether a received ORD file shows a gap in the ORD's transmission ids: it is newer than the
/// last one received (`last`) and does not name that one as its previous. (An older file, a
/// resend or a correction of an old day, says nothing of a gap.)
pub fn transmission_gap(last: u64, transmission_id: u64, previous_id: u64) -> bool {
    transmission_id > last && previous_id != last
}

/// Judges a mobility record: its `last_updated` against the one held, its days against the
/// schedule (`accepts`: whether a day may still change what is sent). Equal times are stale.
pub fn judge_record(
    incoming_updated: DateTime<Utc>,
    held_updated: Option<DateTime<Utc>>,
    touched: &[NaiveDate],
    accepts: impl Fn(NaiveDate) -> bool,
) -> RecordVerdict {
    judge_record_with(incoming_updated, held_updated, Tie::Stale, touched, accepts)
}

/// `judge_record`, saying what equal times mean.
pub fn judge_record_with(
    incoming_updated: DateTime<Utc>,
    held_updated: Option<DateTime<Utc>>,
    tie: Tie,
    touched: &[NaiveDate],
    accepts: impl Fn(NaiveDate) -> bool,
) -> RecordVerdict {
    let stale = held_updated.is_some_and(|held| match tie {
        Tie::Stale => held >= incoming_updated,
        Tie::LaterReceiptWins => held > incoming_updated,
    });
    if stale {
        return RecordVerdict::Stale;
    }
    let open: Vec<NaiveDate> = touched.iter().copied().filter(|d| accepts(*d)).collect();
    if open.is_empty() && !touched.is_empty() {
        RecordVerdict::Late
    } else {
        RecordVerdict::Apply(open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn sched() -> Schedule {
        Schedule {
            tz: chrono_tz::Europe::Lisbon,
            send_at: NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
            window_days: 30,
            send_deadline: None,
        }
    }

    fn v(transmission_id: u64, ntransm: u64) -> OrdVersion {
        OrdVersion {
            transmission_id,
            ntransm,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_newest_version_wins_by_transmission_id_then_ntransm_and_a_tie_is_applied() {
        let now: DateTime<Utc> = "2024-10-28T21:30:00Z".parse().unwrap();
        let none = BTreeSet::new();
        let day = d("2024-10-27");
        let judge = |held| judge_day(&sched(), day, now, &none, v(105, 7), held);
        assert_eq!(judge(None), DayVerdict::Apply);
        assert_eq!(judge(Some(v(104, 9))), DayVerdict::Apply);
        assert_eq!(judge(Some(v(105, 7))), DayVerdict::Apply);
        assert_eq!(judge(Some(v(105, 8))), DayVerdict::Stale);
        assert_eq!(judge(Some(v(106, 1))), DayVerdict::Stale);
        let closed = BTreeSet::from([day]);
        assert_eq!(
            judge_day(&sched(), day, now, &closed, v(200, 1), None),
            DayVerdict::Late
        );
        let old = d("2024-09-01");
        assert_eq!(
            judge_day(&sched(), old, now, &none, v(200, 1), None),
            DayVerdict::Late
        );
    }

    #[test]
    fn a_files_outcome_follows_its_days() {
        use DayVerdict::*;
        assert_eq!(file_outcome(&[Late, Apply]), ReceivedStatus::Applied);
        assert_eq!(file_outcome(&[Late, Late]), ReceivedStatus::Late);
        assert_eq!(file_outcome(&[Late, Stale]), ReceivedStatus::Stale);
        assert_eq!(file_outcome(&[Stale]), ReceivedStatus::Stale);
    }

    #[test]
    fn a_mobility_record_is_stale_late_or_applied_to_its_open_days() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let days = [d("2024-10-26"), d("2024-10-27")];
        let open = |x: NaiveDate| x == d("2024-10-27");
        assert_eq!(
            judge_record(
                t("2024-10-29T06:00:00Z"),
                Some(t("2024-10-29T06:00:00Z")),
                &days,
                open
            ),
            RecordVerdict::Stale
        );
        assert_eq!(
            judge_record(
                t("2024-10-29T06:00:00Z"),
                Some(t("2024-10-28T06:00:00Z")),
                &days,
                open
            ),
            RecordVerdict::Apply(vec![d("2024-10-27")])
        );
        assert_eq!(
            judge_record(t("2024-10-29T06:00:00Z"), None, &days, |_| false),
            RecordVerdict::Late
        );
        assert_eq!(
            judge_record(t("2024-10-29T06:00:00Z"), None, &[], |_| false),
            RecordVerdict::Apply(vec![])
        );
    }

    #[test]
    fn readings_replaced_within_one_second_by_a_later_file_are_applied_not_stale() {
        // Two CSV files written in the same second carry the same `last_updated` (the mtime):
        // the one received later replaces the other; a CDR with the same stamp is the same version.
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let same = t("2024-10-29T06:00:00Z");
        let days = [d("2024-10-27")];
        assert_eq!(
            judge_record_with(same, Some(same), Tie::LaterReceiptWins, &days, |_| true),
            RecordVerdict::Apply(vec![d("2024-10-27")])
        );
        assert_eq!(
            judge_record_with(same, Some(same), Tie::Stale, &days, |_| true),
            RecordVerdict::Stale
        );
        assert_eq!(
            judge_record_with(
                t("2024-10-29T05:59:59Z"),
                Some(same),
                Tie::LaterReceiptWins,
                &days,
                |_| true
            ),
            RecordVerdict::Stale
        );
    }

    #[test]
    fn a_gap_is_a_newer_file_that_does_not_follow_the_last_received() {
        assert!(!transmission_gap(106, 107, 106), "the next one");
        assert!(transmission_gap(106, 900, 899), "ids 107-899 not seen");
        assert!(
            transmission_gap(106, 107, 105),
            "a newer file naming an older previous"
        );
        assert!(
            !transmission_gap(106, 50, 49),
            "an older file (a resend) says nothing"
        );
        assert!(!transmission_gap(106, 106, 105), "the same id again");
    }

    #[test]
    fn equal_stamps_are_the_same_cdr_but_a_later_readings_file() {
        use crate::mobility::MobilityInput;
        assert_eq!(
            MobilityInput::of_name("cdrs.json"),
            Some(MobilityInput::OcpiCdrs)
        );
        assert_eq!(
            MobilityInput::of_name("readings.csv"),
            Some(MobilityInput::QuarterHourReadings)
        );
        assert_eq!(MobilityInput::of_name("notes.txt"), None);
        assert_eq!(Tie::of_input(MobilityInput::OcpiCdrs), Tie::Stale);
        assert_eq!(
            Tie::of_input(MobilityInput::QuarterHourReadings),
            Tie::LaterReceiptWins
        );
    }
}
