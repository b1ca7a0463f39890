//! Retention carried out: outbox packs, archive day folders, quarantined files and report files older than `[retention]` allows, and the netting inputs of long-closed days, pruned (`egme-ord prune`, and `run` once a day).
//!
//! The ledger is marked first and the bytes deleted after: a crash in between leaves bytes the
//! ledger calls pruned, which the next prune deletes; never a ledger row pointing at nothing.
//! What the fence and `verify` need of every file (name, id, size, sha256) stays in the ledger.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{io_err, CycleError};
use crate::store::Store;
use egme_ord_core::config::{Config, OrdConfig};
use egme_ord_core::ledger::is_pack_name;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::retention::{archive_day_prunable, outbox_pack_prunable, Cutoffs};
use egme_ord_core::work_dir::Source;

/// What one ORD's prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Serialize)]
pub struct OrdPrune {
    pub ord: OrdName,
    /// Outbox packs deleted, and the sent files they held.
    pub outbox_packs: Vec<String>,
    pub sent_files_pruned: usize,
    /// Archive day folders deleted, and the received files they held.
    pub archive_days: Vec<NaiveDate>,
    pub received_files_pruned: usize,
    pub quarantined_files: usize,
    pub report_files: usize,
    /// Closed days whose netting inputs were forgotten.
    pub ledger_days: usize,
    pub bytes: u64,
}

impl OrdPrune {
    /// Nothing removed yet.
    fn new(ord: OrdName) -> OrdPrune {
        OrdPrune {
            ord,
            outbox_packs: Vec::new(),
            sent_files_pruned: 0,
            archive_days: Vec::new(),
            received_files_pruned: 0,
            quarantined_files: 0,
            report_files: 0,
            ledger_days: 0,
            bytes: 0,
        }
    }
}

/// What `prune` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub ords: Vec<OrdPrune>,
    /// Archive day folders of the mobility inbox deleted.
    pub mobility_archive_days: Vec<NaiveDate>,
    pub bytes: u64,
}

/// Applies `config.retention` at `now` (nothing is touched when `dry_run`).
pub fn prune(
    config: &Config,
    store: &mut Store,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<PruneReport, CycleError> {
    let cutoffs = config.retention.cutoffs(now);
    let mut report = PruneReport {
        dry_run,
        ..PruneReport::default()
    };
    let work = config.work();
    for ord in &config.ords {
        let mut o = OrdPrune::new(ord.name.clone());
        prune_outbox(
            store,
            ord,
            &work.outbox(&ord.name),
            &cutoffs,
            (now, dry_run),
            &mut o,
        )?;
        for day in old_days(&work.archive(Source::Ord(&ord.name)), &cutoffs) {
            let dir = work.archive_day(Source::Ord(&ord.name), day);
            if !dry_run {
                o.received_files_pruned += store.mark_kept_under_pruned(&ord.name, &dir, now)?;
            }
            o.bytes += remove(&dir, dry_run)?;
            o.archive_days.push(day);
        }
        let quarantine = work.quarantine(Source::Ord(&ord.name));
        for file in files_older(&quarantine, cutoffs.quarantine_before)? {
            if !dry_run {
                o.received_files_pruned += store.mark_kept_file_pruned(&ord.name, &file, now)?;
            }
            o.bytes += remove(&file, dry_run)?;
            o.quarantined_files += 1;
        }
        for file in files_older(&work.ord_reports(&ord.name), cutoffs.reports_before)? {
            o.bytes += remove(&file, dry_run)?;
            o.report_files += 1;
        }
        if let Some(closed_before) = cutoffs.details_closed_before {
            let keep_from = ord.schedule.oldest_open(ord.schedule.today(now));
            if !dry_run {
                o.ledger_days =
                    store.prune_details(&ord.name, keep_from, closed_before, closed_before)?;
            }
        }
        report.bytes += o.bytes;
        report.ords.push(o);
    }
    for day in old_days(&work.archive(Source::Mobility), &cutoffs) {
        report.bytes += remove(&work.archive_day(Source::Mobility, day), dry_run)?;
        report.mobility_archive_days.push(day);
    }
    for file in files_older(
        &work.quarantine(Source::Mobility),
        cutoffs.quarantine_before,
    )? {
        report.bytes += remove(&file, dry_run)?;
    }
    Ok(report)
}

/// The outbox packs old enough: marked in the ledger, then deleted; packs the ledger already calls
/// pruned (a prune that stopped between the two) deleted too.
fn prune_outbox(
    store: &Store,
    ord: &OrdConfig,
    outbox: &Path,
    cutoffs: &Cutoffs,
    (now, dry_run): (DateTime<Utc>, bool),
    o: &mut OrdPrune,
) -> Result<(), CycleError> {
    let Some(last) = store.last_transmission_id(&ord.name)? else {
        return Ok(());
    };
    for facts in store.outbox_pack_facts(&ord.name)? {
        if !outbox_pack_prunable(&facts, cutoffs, last) || !is_pack_name(&facts.pack) {
            continue;
        }
        if !dry_run {
            o.sent_files_pruned += store.mark_pack_pruned(&ord.name, &facts.pack, now)?;
        }
        o.bytes += remove(&outbox.join(&facts.pack), dry_run)?;
        o.outbox_packs.push(facts.pack);
    }
    if !dry_run {
        for pack in store.pruned_packs(&ord.name)? {
            let path = outbox.join(&pack);
            if path.exists() && !o.outbox_packs.contains(&pack) {
                o.bytes += remove(&path, false)?;
                o.outbox_packs.push(pack);
            }
        }
    }
    Ok(())
}

/// The day folders (`YYYY-MM-DD`) directly in `dir` that the archive cutoff has passed.
fn old_days(dir: &Path, cutoffs: &Cutoffs) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.parse::<NaiveDate>().ok())
        .filter(|d| archive_day_prunable(*d, cutoffs))
        .collect();
    days.sort();
    days
}

/// The files under `dir` (all depths) last modified before `before`.
fn files_older(dir: &Path, before: Option<DateTime<Utc>>) -> Result<Vec<PathBuf>, CycleError> {
    let Some(before) = before else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let read = match fs::read_dir(&d) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other.map_err(io_err(&d))?,
        };
        for e in read {
            let e = e.map_err(io_err(&d))?;
            let meta = e.metadata().map_err(io_err(&e.path()))?;
            if meta.is_dir() {
                dirs.push(e.path());
            } else if meta
                .modified()
                .ok()
                .map(DateTime::<Utc>::from)
                .is_some_and(|m| m < before)
            {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes the file or folder at `path` (not when `dry_run`): its size in bytes.
fn remove(path: &Path, dry_run: bool) -> Result<u64, CycleError> {
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        other => other.map_err(io_err(path))?,
    };
    let bytes = if meta.is_dir() {
        crate::fsutil::tree_size(path)
    } else {
        meta.len()
    };
    if !dry_run {
        let removed = if meta.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(path)(e)),
            _ => {}
        }
    }
    Ok(bytes)
}
