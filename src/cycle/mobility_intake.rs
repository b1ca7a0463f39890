//! Intake of mobility inputs (OCPI CDR JSON, quarter-hour CSV): mapped through the registry, versioned, unmappable records quarantined.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;

use super::{io_err, Cycle, CycleError, MobilitySummary};
use crate::calendar::day_of_instant;
use crate::fsutil::{is_safe_name, sha256_hex, unique_path, write_atomic};
use crate::mobility::{csv, ocpi, MobilityRecord};
use crate::store::StoredMobility;
use crate::transport::{LocalDir, RemoteDir, RemoteEntry};
use crate::versions::{judge_record, RecordVerdict};

/// Largest mobility file read.
const MAX_MOBILITY_BYTES: u64 = 64 * 1024 * 1024;

impl Cycle<'_> {
    pub(super) fn mobility_intake(&mut self, sum: &mut MobilitySummary) -> Result<(), CycleError> {
        let inbox = self.config.mobility_inbox.clone();
        fs::create_dir_all(&inbox).map_err(io_err(&inbox))?;
        let mut dir = LocalDir::new(&inbox);
        let (entries, _) = dir.list()?;
        let min_age = self.config.min_file_age.as_secs() as i64;
        // Days close only during the send, so once per intake is enough.
        let mut closed_by_ord: BTreeMap<String, BTreeSet<NaiveDate>> = BTreeMap::new();
        for o in &self.config.ords {
            closed_by_ord.insert(o.name.clone(), self.store.days_state(&o.name)?.closed);
        }
        for RemoteEntry { name, size, mtime } in entries {
            if self.store.mobility_source_seen(&name, size, mtime)?
                || self.wall_now.timestamp() - mtime < min_age
            {
                continue;
            }
            sum.files += 1;
            if !is_safe_name(&name) {
                sum.files_rejected += 1;
                self.quarantine_mobility(
                    &name,
                    None,
                    &format!("unsafe file name {name:?}: not read (it stays in the inbox)"),
                    size,
                    mtime,
                    "",
                )?;
                continue;
            }
            if size > MAX_MOBILITY_BYTES {
                sum.files_rejected += 1;
                self.quarantine_mobility(
                    &name,
                    None,
                    &format!("file has {size} bytes, more than the limit of {MAX_MOBILITY_BYTES}"),
                    size,
                    mtime,
                    "",
                )?;
                continue;
            }
            let bytes = dir.read(&name, MAX_MOBILITY_BYTES)?;
            self.ingest_mobility((&name, size, mtime), &bytes, None, &closed_by_ord, sum)?;
        }
        Ok(())
    }

    /// Reads one mobility file's records, maps, versions and records them (with the file). The
    /// bytes are archived, unless `kept_at` says where they already are (recovery from the archive).
    pub(super) fn ingest_mobility(
        &mut self,
        (name, size, mtime): (&str, u64, i64),
        bytes: &[u8],
        kept_at: Option<&str>,
        closed_by_ord: &BTreeMap<String, BTreeSet<NaiveDate>>,
        sum: &mut MobilitySummary,
    ) -> Result<(), CycleError> {
        let sha = sha256_hex(bytes);
        let mtime_utc = DateTime::from_timestamp(mtime, 0).unwrap_or(self.now);
        let parsed: Result<(Vec<MobilityRecord>, Vec<String>), String> = if name.ends_with(".json")
        {
            ocpi::read_cdrs(bytes, self.quantum())
                .map(|b| {
                    (
                        b.records,
                        b.rejected
                            .iter()
                            .map(|r| {
                                format!(
                                    "CDR #{} (id {}): {}",
                                    r.index,
                                    r.id.as_deref().unwrap_or("?"),
                                    r.reason
                                )
                            })
                            .collect(),
                    )
                })
                .map_err(|e| e.to_string())
        } else if name.ends_with(".csv") {
            match std::str::from_utf8(bytes) {
                Ok(text) => {
                    let (records, rejected) = csv::read_readings(text, mtime_utc);
                    Ok((
                        records,
                        rejected
                            .iter()
                            .map(|r| format!("line {}: {}", r.line, r.reason))
                            .collect(),
                    ))
                }
                Err(e) => Err(format!("not UTF-8 text: {e}")),
            }
        } else {
            Err(
                "unknown input type: expected .json (OCPI CDRs) or .csv (quarter-hour readings)"
                    .into(),
            )
        };
        let (records, mut rejected) = match parsed {
            Ok(p) => p,
            Err(reason) => {
                sum.files_rejected += 1;
                self.quarantine_mobility(name, Some(bytes), &reason, size, mtime, &sha)?;
                return Ok(());
            }
        };
        let stored_path = match kept_at {
            Some(path) => path.to_string(),
            None => self.archive("mobility", name, bytes)?,
        };
        let mut keep: Vec<StoredMobility> = Vec::new();
        let mut days: BTreeSet<(String, NaiveDate)> = BTreeSet::new();
        for r in records {
            match self.map_record(&r, name) {
                Err(reason) => {
                    sum.records_rejected += 1;
                    rejected.push(format!("{}: {reason}", r.key));
                }
                Ok(None) => sum.records_other_ord += 1,
                Ok(Some((stored, touched))) => {
                    // The decision is the core's (`versions::judge_record`).
                    let held = self.store.mobility_last_updated(&stored.key)?;
                    let ord = self.config.ord(&stored.ord);
                    let no_days = BTreeSet::new();
                    let closed = closed_by_ord.get(&stored.ord).unwrap_or(&no_days);
                    let verdict = judge_record(stored.last_updated, held, &touched, |d| {
                        ord.is_some_and(|o| o.schedule.accepts(d, self.now, closed))
                    });
                    match verdict {
                        RecordVerdict::Stale => sum.records_stale += 1,
                        RecordVerdict::Late => {
                            sum.records_late += 1;
                            self.store.event(
                                self.now,
                                Some(&stored.ord),
                                "late-mobility",
                                &format!(
                                    "{} from {name}: its days are closed; archived, not applied",
                                    stored.key
                                ),
                            )?;
                        }
                        RecordVerdict::Apply(open) => {
                            days.extend(open.into_iter().map(|d| (stored.ord.clone(), d)));
                            sum.records_applied += 1;
                            keep.push(stored);
                        }
                    }
                }
            }
        }
        let status = if rejected.is_empty() {
            "applied"
        } else {
            "partly-rejected"
        };
        if !rejected.is_empty() {
            let q = self.work(&["quarantine", "mobility"]);
            let report_path = unique_path(&q, &format!("{name}.rejected.txt"));
            write_atomic(&report_path, (rejected.join("\n") + "\n").as_bytes())
                .map_err(io_err(&report_path))?;
            self.store.event(
                self.now,
                None,
                "mobility-rejected",
                &format!(
                    "{name}: {} record(s) quarantined, see {}",
                    rejected.len(),
                    report_path.display()
                ),
            )?;
        }
        let days: Vec<(String, NaiveDate)> = days.into_iter().collect();
        self.store.record_mobility(
            name,
            size,
            mtime,
            &sha,
            status,
            &rejected.join("\n"),
            &stored_path,
            self.now,
            &keep,
            &days,
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
    fn map_record(
        &self,
        r: &MobilityRecord,
        source: &str,
    ) -> Result<Option<(StoredMobility, Vec<NaiveDate>)>, String> {
        let cpe = self.registry.cpe_of(&r.place)?;
        let ord_name = self
            .registry
            .ord_of(&cpe)
            .ok_or_else(|| format!("CPE {cpe} has no ORD in the registry"))?;
        if self
            .config
            .registry
            .other_ords
            .iter()
            .any(|o| o == ord_name)
        {
            return Ok(None);
        }
        let ord = self
            .config
            .ord(ord_name)
            .ok_or_else(|| format!("ORD {ord_name} is not configured"))?;
        self.registry.supplier(&cpe, &r.ceme, ord.region)?;
        let tz = ord.schedule.tz;
        let convention = ord.dialect.time_convention;
        let mut touched: BTreeSet<NaiveDate> = r
            .energy
            .iter()
            .map(|q| day_of_instant(tz, convention, q.start))
            .collect();
        if let Some(original) = &r.credit_of {
            if let Ok(Some((_, first, last))) = self.store.mobility_record_days(original) {
                for t in [first, last] {
                    if let Some(t) = DateTime::from_timestamp(t, 0) {
                        touched.insert(day_of_instant(tz, convention, t));
                    }
                }
            }
        }
        Ok(Some((
            StoredMobility {
                key: r.key.clone(),
                last_updated: r.last_updated,
                ord: ord_name.to_string(),
                cpe,
                ceme: r.ceme.clone(),
                credit_of: r.credit_of.clone(),
                energy: r.energy.clone(),
                source: source.to_string(),
            },
            touched.into_iter().collect(),
        )))
    }

    fn quarantine_mobility(
        &mut self,
        name: &str,
        bytes: Option<&[u8]>,
        reason: &str,
        size: u64,
        mtime: i64,
        sha: &str,
    ) -> Result<(), CycleError> {
        let path = self.quarantine("mobility", name, bytes, &format!("{name:?}: {reason}\n"))?;
        self.store.record_mobility(
            name,
            size,
            mtime,
            sha,
            "rejected",
            reason,
            &path.display().to_string(),
            self.now,
            &[],
            &[],
        )?;
        self.store.event(
            self.now,
            None,
            "mobility-rejected",
            &format!("{name}: {reason}"),
        )?;
        Ok(())
    }
}
