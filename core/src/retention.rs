//! Retention: how long the outbox, the archive, the reports, the quarantine and the ledger's netting inputs of closed days are kept, and what is old enough to prune at a given `now`.
//!
//! Pure decisions: the shell (`src/cycle/prune.rs`) lists what there is and carries them out. The
//! ledger keeps, for every file ever sent or received, its name, id, sha256 and size (what the
//! fence and `verify` need) whatever these settings say; what is pruned is the bytes kept beside
//! it and the netting inputs of days that can no longer be sent.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// How long each kind of kept data stays after its day closed (or, for reports and quarantine,
/// after it was written). `None`: forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Outbox packs whose files all belong to days closed this long ago (and were delivered).
    pub outbox: Option<Duration>,
    /// Archive folders (received ORD files, by the day they were received) this old.
    pub archive: Option<Duration>,
    /// Report files written this long ago.
    pub reports: Option<Duration>,
    /// Quarantined files this old.
    pub quarantine: Option<Duration>,
    /// ORD profiles, mobility records and netting results of days closed this long ago (such a
    /// day can then no longer be reopened, nor its page rebuilt by `egme-ord report`).
    pub ledger_details: Option<Duration>,
}

/// Ten years: what the Portuguese Commercial Code (art. 40) asks of commercial records; the
/// regulation of the exchange (seeds/003) sets no period of its own.
pub const TEN_YEARS_DAYS: i64 = 3650;

/// Thirteen months: a yearly audit and the month after it.
pub const THIRTEEN_MONTHS_DAYS: i64 = 400;

impl Default for Retention {
    /// What the exchanged bytes must keep (ten years) and what operators look back at (reports,
    /// quarantine, the netting inputs behind them: thirteen months).
    fn default() -> Retention {
        Retention {
            outbox: Some(Duration::days(TEN_YEARS_DAYS)),
            archive: Some(Duration::days(TEN_YEARS_DAYS)),
            reports: Some(Duration::days(THIRTEEN_MONTHS_DAYS)),
            quarantine: Some(Duration::days(THIRTEEN_MONTHS_DAYS)),
            ledger_details: Some(Duration::days(THIRTEEN_MONTHS_DAYS)),
        }
    }
}

/// The moments before which each kind of data is old enough to prune, at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Days closed before this: their outbox packs may go.
    pub outbox_closed_before: Option<DateTime<Utc>>,
    /// Archive day folders before this day may go.
    pub archive_before: Option<NaiveDate>,
    pub reports_before: Option<DateTime<Utc>>,
    pub quarantine_before: Option<DateTime<Utc>>,
    /// Days closed before this: their netting inputs may go.
    pub details_closed_before: Option<DateTime<Utc>>,
}

impl Retention {
    /// What is old enough at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let before = |d: Option<Duration>| d.and_then(|d| now.checked_sub_signed(d));
        Cutoffs {
            outbox_closed_before: before(self.outbox),
            archive_before: before(self.archive).map(|t| t.date_naive()),
            reports_before: before(self.reports),
            quarantine_before: before(self.quarantine),
            details_closed_before: before(self.ledger_details),
        }
    }
}

/// What the ledger knows of one outbox pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFacts {
    pub pack: String,
    /// The highest transmission id in it.
    pub last_id: u64,
    /// When the latest-closing of its files' days closed; `None` when one of them is still open.
    pub all_closed_at: Option<DateTime<Utc>>,
    /// Whether every file in it was delivered.
    pub all_delivered: bool,
}

/// Whether an outbox pack may be pruned: every file delivered, every day closed before the
/// cutoff, and not the pack with the ledger's newest id (the fence's witness of the sequence).
pub fn outbox_pack_prunable(facts: &PackFacts, cutoffs: &Cutoffs, ledger_last_id: u64) -> bool {
    let old_enough = matches!(
        (facts.all_closed_at, cutoffs.outbox_closed_before),
        (Some(closed), Some(before)) if closed < before
    );
    old_enough && facts.all_delivered && facts.last_id < ledger_last_id
}

/// Whether an archive day folder named `day` may be pruned.
pub fn archive_day_prunable(day: NaiveDate, cutoffs: &Cutoffs) -> bool {
    cutoffs.archive_before.is_some_and(|before| day < before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or_default()
    }

    #[test]
    fn by_default_the_exchanged_bytes_stay_ten_years_and_the_rest_thirteen_months() {
        let c = Retention::default().cutoffs(at(2036, 1, 10));
        assert_eq!(c.outbox_closed_before, Some(at(2026, 1, 12)));
        assert_eq!(c.archive_before, NaiveDate::from_ymd_opt(2026, 1, 12));
        assert_eq!(c.reports_before, Some(at(2034, 12, 6)));
        let forever = Retention {
            outbox: None,
            ..Retention::default()
        };
        assert_eq!(forever.cutoffs(at(2036, 1, 10)).outbox_closed_before, None);
    }

    #[test]
    fn a_pack_goes_only_when_delivered_closed_long_enough_and_not_the_newest() {
        let cutoffs = Retention::default().cutoffs(at(2036, 1, 10));
        let old = PackFacts {
            pack: "pack-0000000001.tar.zst".into(),
            last_id: 40,
            all_closed_at: Some(at(2025, 1, 1)),
            all_delivered: true,
        };
        assert!(outbox_pack_prunable(&old, &cutoffs, 41));
        // The newest pack stays whatever its age: it witnesses the last id.
        assert!(!outbox_pack_prunable(&old, &cutoffs, 40));
        let undelivered = PackFacts {
            all_delivered: false,
            ..old.clone()
        };
        assert!(!outbox_pack_prunable(&undelivered, &cutoffs, 41));
        let open = PackFacts {
            all_closed_at: None,
            ..old.clone()
        };
        assert!(!outbox_pack_prunable(&open, &cutoffs, 41));
        let recent = PackFacts {
            all_closed_at: Some(at(2027, 1, 1)),
            ..old.clone()
        };
        assert!(!outbox_pack_prunable(&recent, &cutoffs, 41));
        let keep_all = Retention {
            outbox: None,
            ..Retention::default()
        }
        .cutoffs(at(2036, 1, 10));
        assert!(!outbox_pack_prunable(&old, &keep_all, 41));
    }

    #[test]
    fn an_archive_day_goes_once_it_is_older_than_the_cutoff() {
        let cutoffs = Retention::default().cutoffs(at(2036, 1, 10));
        let day = |d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap_or_default();
        assert!(archive_day_prunable(day(11), &cutoffs));
        assert!(!archive_day_prunable(day(12), &cutoffs));
    }
}
