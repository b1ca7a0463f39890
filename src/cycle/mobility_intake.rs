//! Intake of mobility inputs (OCPI CDR JSON, quarter-hour CSV): mapped through the registry, versioned, unmappable records quarantined.

use egme_ord_core::event::EventKind;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::sha256::Sha256;
use egme_ord_core::work_dir::Source;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{io_err, Cycle, CycleError, MobilitySummary};
use crate::fsutil::{sha256_of, unique_path, write_atomic};
use crate::store::StoredMobility;
use crate::transport::{LocalDir, RemoteDir};
use egme_ord_core::calendar::day_of_instant;
use egme_ord_core::config::OrdConfig;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::ledger::MobilityFileStatus;
use egme_ord_core::mobility::{csv, ocpi, CemeId, MobilityInput, MobilityRecord, Place};
use egme_ord_core::remote::{RemoteEntry, UnsafeEntry};
use egme_ord_core::session_place::{days_at, place_session};
use egme_ord_core::versions::{judge_record_with, RecordVerdict, Tie};

/// Largest mobility file read.
const MAX_MOBILITY_BYTES: u64 = 64 * 1024 * 1024;

/// A mobility file's records, and why each record that could not be read was refused; `Err`: the
/// whole file is refused (unknown type, not JSON, not UTF-8), with why.
type ReadMobility = Result<(Vec<MobilityRecord>, Vec<String>), String>;

/// Reads a mobility file by its type: `.json` OCPI CDRs, `.csv` quarter-hour readings (whose
/// rows carry no update time: the file's `mtime` stands for it).
fn read_mobility(name: &str, bytes: &[u8], mtime: DateTime<Utc>, quantum: Decimal) -> ReadMobility {
    match MobilityInput::of_name(name) {
        Some(MobilityInput::OcpiCdrs) => {
            let batch = ocpi::read_cdrs(bytes, quantum).map_err(|e| e.to_string())?;
            let rejected = batch
                .rejected
                .iter()
                .map(|r| {
                    format!(
                        "CDR #{} (id {}): {}",
                        r.index,
                        r.id.as_deref().unwrap_or("?"),
                        r.reason
                    )
                })
                .collect();
            Ok((batch.records, rejected))
        }
        Some(MobilityInput::QuarterHourReadings) => {
            let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
            let (records, rejected) = csv::read_readings(text, mtime);
            let rejected = rejected
                .iter()
                .map(|r| format!("line {}: {}", r.line, r.reason))
                .collect();
            Ok((records, rejected))
        }
        None => Err(
            "unknown input type: expected .json (OCPI CDRs) or .csv (quarter-hour readings)".into(),
        ),
    }
}

/// The days each ORD has closed, by ORD.
pub(super) type ClosedDays = BTreeMap<OrdName, BTreeSet<NaiveDate>>;

/// A record mapped (with the days it touches), left to another instance (`None`), or refused
/// with why.
type Mapped = Result<Option<(StoredMobility, Vec<NaiveDate>)>, String>;

/// What one mobility file puts in force: the records to keep, and the (ORD, day)s they change.
#[derive(Default)]
struct MobilityChanges {
    keep: Vec<StoredMobility>,
    days: BTreeSet<(OrdName, NaiveDate)>,
}

impl Cycle<'_> {
    /// The days each configured ORD has closed (they close only during a send).
    pub(super) fn closed_days(&self) -> Result<ClosedDays, CycleError> {
        let mut closed = ClosedDays::new();
        for o in &self.config.ords {
            closed.insert(o.name.clone(), self.store.days_state(&o.name)?.closed);
        }
        Ok(closed)
    }

    pub(super) fn mobility_intake(&mut self, sum: &mut MobilitySummary) -> Result<(), CycleError> {
        let inbox = self.config.mobility_inbox.clone();
        fs::create_dir_all(&inbox).map_err(io_err(&inbox))?;
        let mut dir = LocalDir::new(&inbox);
        let listing = dir.list()?;
        // Days close only during the send, so once per intake is enough.
        let closed_by_ord = self.closed_days()?;
        for UnsafeEntry { name, size, mtime } in &listing.unsafe_files {
            if !self.new_mobility_file(name, *size, *mtime)? {
                continue;
            }
            sum.files += 1;
            sum.files_rejected += 1;
            let reason = format!("unsafe file name {name:?}: not read (it stays in the inbox)");
            self.quarantine_mobility(name, None, &reason, *size, *mtime, None)?;
        }
        let recorded = self.store.mobility_among(&listing.files)?;
        for (RemoteEntry { name, size, mtime }, seen) in listing.files.into_iter().zip(recorded) {
            if seen || self.too_young(mtime) {
                continue;
            }
            sum.files += 1;
            if size > MAX_MOBILITY_BYTES {
                sum.files_rejected += 1;
                self.quarantine_mobility(
                    name.as_str(),
                    None,
                    &format!("file has {size} bytes, more than the limit of {MAX_MOBILITY_BYTES}"),
                    size,
                    mtime,
                    None,
                )?;
                continue;
            }
            let bytes = dir.read(&name, MAX_MOBILITY_BYTES)?;
            let file = (name.as_str(), size, mtime);
            self.ingest_mobility(file, &bytes, None, &closed_by_ord, sum)?;
        }
        Ok(())
    }

    /// Whether a file of the mobility inbox is new and old enough to be complete.
    fn new_mobility_file(&self, name: &str, size: u64, mtime: i64) -> Result<bool, CycleError> {
        Ok(!self.store.mobility_source_seen(name, size, mtime)? && !self.too_young(mtime))
    }

    /// Reads one mobility file's records, maps, versions and records them (with the file). The
    /// bytes are archived, unless `kept_at` says where they already are (recovery from the archive).
    pub(super) fn ingest_mobility(
        &mut self,
        (name, size, mtime): (&str, u64, i64),
        bytes: &[u8],
        kept_at: Option<&str>,
        closed_by_ord: &ClosedDays,
        sum: &mut MobilitySummary,
    ) -> Result<(), CycleError> {
        let sha = sha256_of(bytes);
        let mtime_utc = DateTime::from_timestamp(mtime, 0).unwrap_or(self.now);
        let (records, mut rejected) = match read_mobility(name, bytes, mtime_utc, self.quantum()) {
            Ok(read) => read,
            Err(reason) => {
                sum.files_rejected += 1;
                self.quarantine_mobility(name, Some(bytes), &reason, size, mtime, Some(&sha))?;
                return Ok(());
            }
        };
        let stored_path = match kept_at {
            Some(path) => path.to_string(),
            None => self.archive(Source::Mobility, name, bytes)?,
        };
        let changes = self.version_records(name, records, closed_by_ord, &mut rejected, sum)?;
        let status = if rejected.is_empty() {
            MobilityFileStatus::Applied
        } else {
            self.report_rejected_records(name, &rejected)?;
            MobilityFileStatus::PartlyRejected
        };
        let days: Vec<(OrdName, NaiveDate)> = changes.days.into_iter().collect();
        self.store.record_mobility(
            name,
            size,
            mtime,
            Some(&sha),
            status,
            &rejected.join("\n"),
            &stored_path,
            self.now,
            &changes.keep,
            &days,
        )?;
        Ok(())
    }

    /// Maps each record and asks the core whether it is newer than the one held and its days
    /// still open; what cannot be mapped is added to `rejected`.
    fn version_records(
        &mut self,
        name: &str,
        records: Vec<MobilityRecord>,
        closed_by_ord: &ClosedDays,
        rejected: &mut Vec<String>,
        sum: &mut MobilitySummary,
    ) -> Result<MobilityChanges, CycleError> {
        let mut changes = MobilityChanges::default();
        let no_days = BTreeSet::new();
        for r in records {
            let (stored, touched) = match self.map_record(&r, name)? {
                Err(reason) => {
                    sum.records_rejected += 1;
                    rejected.push(format!("{}: {reason}", r.key));
                    continue;
                }
                Ok(None) => {
                    sum.records_other_ord += 1;
                    continue;
                }
                Ok(Some(mapped)) => mapped,
            };
            // The decision is the core's (`versions::judge_record`).
            let held = self.store.mobility_last_updated(&stored.key)?;
            let ord = self.config.ord(stored.ord.as_str());
            let closed = closed_by_ord.get(&stored.ord).unwrap_or(&no_days);
            // What equal stamps mean is the core's, by the kind of input (`Tie::of_input`).
            let tie = MobilityInput::of_name(name).map_or(Tie::Stale, Tie::of_input);
            let verdict = judge_record_with(stored.last_updated, held, tie, &touched, |d| {
                ord.is_some_and(|o| o.schedule.accepts(d, self.now, closed))
            });
            match verdict {
                RecordVerdict::Stale => sum.records_stale += 1,
                RecordVerdict::Late => {
                    sum.records_late += 1;
                    self.store.event(
                        self.now,
                        Some(&stored.ord),
                        EventKind::LateMobility,
                        &format!(
                            "{} from {name}: its days are closed; archived, not applied",
                            stored.key
                        ),
                    )?;
                }
                RecordVerdict::Apply(open) => {
                    let ord = &stored.ord;
                    changes
                        .days
                        .extend(open.into_iter().map(|d| (ord.clone(), d)));
                    sum.records_applied += 1;
                    changes.keep.push(stored);
                }
            }
        }
        Ok(changes)
    }

    /// Writes the refused records of a mobility file to the quarantine, with an event.
    fn report_rejected_records(
        &mut self,
        name: &str,
        rejected: &[String],
    ) -> Result<(), CycleError> {
        let q = self.config.work().quarantine(Source::Mobility);
        let report_path = unique_path(&q, &format!("{name}.rejected.txt"));
        write_atomic(&report_path, (rejected.join("\n") + "\n").as_bytes())
            .map_err(io_err(&report_path))?;
        self.store.event(
            self.now,
            None,
            EventKind::MobilityRejected,
            &format!(
                "{name}: {} record(s) quarantined, see {}",
                rejected.len(),
                report_path.display()
            ),
        )?;
        Ok(())
    }

    /// The finest allocation step any ORD writes (kWh).
    fn quantum(&self) -> Decimal {
        self.config
            .ords
            .iter()
            .map(|o| o.unit_kwh())
            .min()
            .unwrap_or(Decimal::new(25, 5))
    }

    /// Maps a record to its CPE, ORD and supplier; returns it with the local days it touches.
    fn map_record(&self, r: &MobilityRecord, source: &str) -> Result<Mapped, CycleError> {
        let (cpe, ord) = match self.place_of(r) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(Ok(None)),
            Err(reason) => return Ok(Err(reason)),
        };
        let mut touched = days_at(&r.energy, ord);
        // A credit also changes the days of the record it reverses.
        if let Some(original) = &r.credit_of {
            if let Some((_, first, last)) = self.store.mobility_record_days(original)? {
                let (tz, convention) = (ord.schedule.tz, ord.dialect.time_convention);
                for t in [first, last] {
                    if let Some(t) = DateTime::from_timestamp(t, 0) {
                        touched.insert(day_of_instant(tz, convention, t));
                    }
                }
            }
        }
        Ok(Ok(Some((
            StoredMobility {
                key: r.key.clone(),
                last_updated: r.last_updated,
                ord: ord.name.clone(),
                cpe,
                ceme: r.ceme.clone(),
                credit_of: r.credit_of.clone(),
                energy: r.energy.clone(),
                source: source.to_string(),
                place: Some(r.place.clone()),
            },
            touched.into_iter().collect(),
        ))))
    }

    /// The CPE and ORD a record belongs to by the registry (`None`: an ORD another instance
    /// serves), or why it cannot be mapped.
    /// The registry's rows in force on the session's day (its first quarter-hour's, as the ORD
    /// that would serve it counts days) decide.
    fn place_of(&self, r: &MobilityRecord) -> Result<Option<(Cpe, &OrdConfig)>, String> {
        let start = r.energy.first().map_or(r.last_updated, |q| q.start);
        self.place_at(&r.place, start, &r.ceme)
    }

    /// [`Self::place_of`] a session at `place` that starts at `start`, for CEME `ceme` (the
    /// decision is the core's: `session_place::place_session`).
    fn place_at(
        &self,
        place: &Place,
        start: DateTime<Utc>,
        ceme: &CemeId,
    ) -> Result<Option<(Cpe, &OrdConfig)>, String> {
        place_session(self.config, self.registry, place, start, ceme)
    }

    /// Decides again, when the registry changed since the mobility records were mapped, the CPE
    /// and ORD of each record that keeps its place and still has a quarter-hour in a window: a
    /// back-dated EVSE or CPE move then moves the sessions already received, as a ledger
    /// recovered from the archive would map them. A record moved marks the quarter-hours it left
    /// and joined (the old ORD's day is corrected, the new one's sent) with a `mobility-moved`
    /// event; one whose days are closed at either ORD stays (`late-mobility`); one the registry
    /// no longer maps stays where it is (`unmapped-mobility`: the send nets it only where its CPE
    /// is still listed). Rows from before the ledger kept places are not moved.
    pub(super) fn remap_mobility(&mut self) -> Result<(), CycleError> {
        let digest = self.registry.digest().to_string();
        if self.store.mobility_mapped_with()?.as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        let window = self
            .config
            .ords
            .iter()
            .map(|o| i64::from(o.schedule.window_days))
            .max()
            .unwrap_or(0);
        // Two days more: a day's quarter-hours start up to a day before its date in UTC.
        let from = (self.now - chrono::Duration::days(window + 2)).timestamp();
        let closed_by_ord = self.closed_days()?;
        let no_days = BTreeSet::new();
        let mut moved = 0usize;
        for r in self.store.mobility_placed_from(from)? {
            let (Some(place), None) = (&r.place, &r.credit_of) else {
                continue;
            };
            let start = r.energy.first().map_or(r.last_updated, |q| q.start);
            let (cpe, ord) = match self.place_at(place, start, &r.ceme) {
                Ok(Some(found)) => found,
                Ok(None) => {
                    let why = "its place is now served by another egme-ord instance";
                    self.kept_unmapped(&r, why)?;
                    continue;
                }
                Err(why) => {
                    self.kept_unmapped(&r, &why)?;
                    continue;
                }
            };
            if cpe == r.cpe && ord.name == r.ord {
                continue;
            }
            let open_at = |o: &OrdConfig, days: &BTreeSet<NaiveDate>| {
                let closed = closed_by_ord.get(&o.name).unwrap_or(&no_days);
                days.iter()
                    .all(|d| o.schedule.accepts(*d, self.now, closed))
            };
            let new_days = days_at(&r.energy, ord);
            let old_open = self
                .config
                .ord(r.ord.as_str())
                .is_none_or(|old| open_at(old, &days_at(&r.energy, old)));
            let what = format!(
                "{}: the registry now places it at CPE {cpe} ({}), not at CPE {} ({})",
                r.key, ord.name, r.cpe, r.ord
            );
            if !(old_open && open_at(ord, &new_days)) {
                self.store.event(
                    self.now,
                    Some(&r.ord),
                    EventKind::LateMobility,
                    &format!("{what}; some of its days are closed: kept where it was"),
                )?;
                continue;
            }
            let ord_name = ord.name.clone();
            let new_days: Vec<NaiveDate> = new_days.into_iter().collect();
            self.store.move_mobility(&r, &ord_name, cpe, &new_days)?;
            self.store.event(
                self.now,
                Some(&ord_name),
                EventKind::MobilityMoved,
                &format!("{what}: moved; the days it left and joined are sent again"),
            )?;
            moved += 1;
        }
        if moved > 0 {
            tracing::info!(
                moved,
                "the changed registry moved mobility records to other CPEs or ORDs"
            );
        }
        self.store.set_mobility_mapped_with(&digest)?;
        Ok(())
    }

    /// Says that a changed registry no longer maps record `r`, which stays where it is.
    fn kept_unmapped(&mut self, r: &StoredMobility, why: &str) -> Result<(), CycleError> {
        self.store.event(
            self.now,
            Some(&r.ord),
            EventKind::UnmappedMobility,
            &format!(
                "{}: the changed registry no longer maps it ({why}): kept at CPE {} ({})",
                r.key, r.cpe, r.ord
            ),
        )?;
        Ok(())
    }

    fn quarantine_mobility(
        &mut self,
        name: &str,
        bytes: Option<&[u8]>,
        reason: &str,
        size: u64,
        mtime: i64,
        sha: Option<&Sha256>,
    ) -> Result<(), CycleError> {
        let path = self.quarantine(
            Source::Mobility,
            name,
            bytes,
            &format!("{name:?}: {reason}\n"),
        )?;
        self.store.record_mobility(
            name,
            size,
            mtime,
            sha,
            MobilityFileStatus::Rejected,
            reason,
            &path.display().to_string(),
            self.now,
            &[],
            &[],
        )?;
        self.store.event(
            self.now,
            None,
            EventKind::MobilityRejected,
            &format!("{name}: {reason}"),
        )?;
        Ok(())
    }
}
