//! `recover`: what the ledger must know to go on safely, rebuilt from the outbox packs, the ORDs' folders and the archive.
//!
//! For each ORD: every file in the outbox packs and in the ORD's send folder (and the folder the
//! ORD moves our files into) that the ledger has no row for is recorded under its id, with its
//! content hash recomputed from its bytes (so unchanged content is not sent again); files found
//! only at the ORD get an outbox copy; the sequence is raised past every id found (or the one the
//! operator gives); the received ORD files of the archive packs the ledger does not know are
//! recorded again as intake would have. Then the mobility files of the archive, and last the
//! outbox's high-water mark is rewritten for this ledger. Each ORD is one ledger batch: a crash
//! rolls it back and a rerun starts over; recovering twice changes nothing the second time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::intake::Keep;
use super::send::content_hash;
use super::{crashpoint, io_err, Cycle, CycleError, MobilitySummary};
use crate::fsutil::sha256_of;
use crate::pack::{for_each_member, PackBuilder};
use crate::store::OutboundWrite;
use egme_ord_core::config::{Endpoint, OrdConfig};
use egme_ord_core::fence::HighWaterMark;
use egme_ord_core::filename::{OrdFileName, PartyCode, MAX_TRANSMISSION_ID};
use egme_ord_core::ledger::{is_pack_name, pack_first_id, pack_name, PackSlice, PACK_SUFFIX};
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::registry::SupplierKey;
use egme_ord_core::remote::{RemoteEntry, SafeName};
use egme_ord_core::sgl::{self, ReadOptions};
use egme_ord_core::work_dir::{orphans, Source};

/// What the operator asked of `recover`.
#[derive(Debug, Clone, Default)]
pub struct RecoverOptions {
    /// Only this ORD (default: every configured ORD).
    pub ord: Option<String>,
    /// The last transmission id the ORD reports having received (when the local evidence is gone).
    pub last_sent_id: Option<u64>,
}

/// What `recover` did for one ORD.
#[derive(Debug, Clone, Serialize)]
pub struct OrdRecovery {
    pub ord: OrdName,
    pub sequence_before: Option<u64>,
    pub sequence_after: Option<u64>,
    /// Sent files recorded again from the outbox packs.
    pub sent_from_outbox: usize,
    /// Sent files found only at the ORD, recorded and given an outbox copy.
    pub sent_from_ord: usize,
    /// Files the ORD holds that the ledger had as not yet delivered.
    pub marked_delivered: usize,
    /// Received ORD files recorded again from the archive packs.
    pub received_from_archive: usize,
    /// Ids between the first and the last that no witness holds (`first..=last`).
    pub ids_without_a_copy: Vec<String>,
    /// What could not be taken in (a name under an id the ledger has under another name, a file
    /// that cannot be read): the operator must look at each.
    pub problems: Vec<String>,
}

impl OrdRecovery {
    /// Nothing recovered yet.
    fn new(ord: OrdName) -> OrdRecovery {
        OrdRecovery {
            ord,
            sequence_before: None,
            sequence_after: None,
            sent_from_outbox: 0,
            sent_from_ord: 0,
            marked_delivered: 0,
            received_from_archive: 0,
            ids_without_a_copy: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// What `recover` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    pub ledger_id: String,
    pub ords: Vec<OrdRecovery>,
    /// Mobility files recorded again from the archive.
    pub mobility_from_archive: usize,
}

/// The packs directly in `dir` (`pack-<first id>.tar.zst` or `.tar` first, by id, then other pack
/// names), sorted.
fn packs_in(dir: &Path) -> Vec<PathBuf> {
    let mut named: Vec<(u64, String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (is_pack_name(&name) && !name.starts_with('.') && e.path().is_file())
                .then(|| (pack_first_id(&name).unwrap_or(u64::MAX), name, e.path()))
        })
        .collect();
    named.sort();
    named.into_iter().map(|(_, _, p)| p).collect()
}

/// Every archive pack of an ORD: each day's folder in date order, its packs, then the packs a
/// later batch set aside in its `orphans/`.
fn archive_packs(dir: &Path) -> Vec<PathBuf> {
    let mut days: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    days.sort();
    let mut out = Vec::new();
    for d in days {
        out.extend(packs_in(&d));
        out.extend(packs_in(&orphans(&d)));
    }
    out
}

/// The name a file had before the archive gave it a `.1`, `.2`… suffix (other bytes under a name
/// already taken that day).
fn original_name(kept: &str) -> &str {
    match kept.rsplit_once('.') {
        Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => kept,
    }
}

/// `first..=last` ranges of the ids in `first..=last` that `held` lacks, in time proportional to
/// `held` (not to the width of the range: ids go up to 9999999999).
fn missing_ranges(first: u64, last: u64, held: &BTreeSet<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(first);
    for &id in held.range(first..=last) {
        if let Some(from) = next.filter(|n| id > *n) {
            out.push(format!("{from}..={}", id - 1));
        }
        next = id.checked_add(1);
    }
    if let Some(from) = next.filter(|n| *n <= last) {
        out.push(format!("{from}..={last}"));
    }
    out
}

/// One of our files, read back: the ledger row it stands for, less where its bytes are.
struct OurFile {
    id: u64,
    previous: u64,
    write: OutboundWrite,
}

/// Reads one of our outbound files (its name and bytes) as the row that recorded it.
fn read_our_file(
    ord: &OrdConfig,
    name: &str,
    bytes: &[u8],
    at: DateTime<Utc>,
) -> Result<OurFile, String> {
    let parsed = OrdFileName::parse_ours(name, ord.region)
        .map_err(|e| format!("{name}: not one of our names: {e}"))?;
    let options = ReadOptions {
        region: ord.region,
        dialect: &ord.dialect,
        expected_origin: Some(&ord.egme_entity),
        expected_destination: Some(&ord.outbound_destination),
        name: Some(&parsed),
    };
    let report = sgl::read(bytes, &options);
    let Some(file) = report.file else {
        let first = report
            .diagnostics
            .first()
            .map(|d| d.message.clone())
            .unwrap_or_default();
        return Err(format!("{name}: cannot be read back: {first}"));
    };
    let code = match &parsed.party {
        PartyCode::Cse(c) | PartyCode::Ceme(c) => c.clone(),
        other => return Err(format!("{name}: no supplier code in the name ({other:?})")),
    };
    let tariff = parsed
        .tariff_cycle
        .ok_or_else(|| format!("{name}: no tariff cycle in the name"))?;
    let [day] = file.days.as_slice() else {
        return Err(format!(
            "{name}: expected one day, found {}",
            file.days.len()
        ));
    };
    let key = SupplierKey { code, tariff };
    let values: Vec<Decimal> = day.readings.iter().map(|r| r.kwh).collect();
    Ok(OurFile {
        id: parsed.ntransm.value,
        previous: file.header.previous_transmission_id,
        write: OutboundWrite {
            name: name.to_string(),
            sha256: sha256_of(bytes),
            cpe: parsed.cpe,
            supplier: key.code.clone(),
            tariff,
            day: day.day,
            content_hash: content_hash(day.day, &key, &values),
            at,
            pack: None,
        },
    })
}

impl Cycle<'_> {
    /// Rebuilds what the ledger must know (see the module's documentation).
    pub fn recover(&mut self, options: &RecoverOptions) -> Result<RecoverReport, CycleError> {
        let config = self.config;
        let mut report = RecoverReport {
            ledger_id: self.store.ledger_id()?,
            ..RecoverReport::default()
        };
        for ord in &config.ords {
            if options.ord.as_deref().is_some_and(|o| ord.name != o) {
                continue;
            }
            let mut rec = OrdRecovery {
                sequence_before: self.store.last_transmission_id(&ord.name)?,
                ..OrdRecovery::new(ord.name.clone())
            };
            self.in_batch(|me| me.recover_ord(ord, options.last_sent_id, &mut rec))?;
            // What was netted before is not known any more: the next send nets every open day.
            self.store.set_netting_inputs(&ord.name, None)?;
            crashpoint(self.options.crash_at.as_deref(), "recover-before-mark");
            let last = self.store.last_transmission_id(&ord.name)?.unwrap_or(0);
            let outbox = self.outbox_dir(&ord.name);
            super::write_mark(
                &outbox,
                &HighWaterMark {
                    ledger_id: report.ledger_id.clone(),
                    ord: ord.name.clone(),
                    committed: last,
                    reserved: last,
                },
            )
            .map_err(io_err(&super::mark_path(&outbox)))?;
            rec.sequence_after = self.store.last_transmission_id(&ord.name)?;
            report.ords.push(rec);
        }
        if options.ord.is_none() {
            report.mobility_from_archive = self.in_batch(|me| me.recover_mobility())?;
        }
        Ok(report)
    }

    fn recover_ord(
        &mut self,
        ord: &OrdConfig,
        last_sent_id: Option<u64>,
        rec: &mut OrdRecovery,
    ) -> Result<(), CycleError> {
        let mut seen: BTreeSet<u64> = self.store.sent_ids(&ord.name)?.into_iter().collect();
        // The outbox packs (not the orphans: batches that never committed).
        let outbox = self.outbox_dir(&ord.name);
        let packs = packs_in(&outbox);
        // No pack and no high-water mark: the outbox was lost (or never restored with the ledger).
        let outbox_lost = packs.is_empty() && !super::mark_path(&outbox).exists();
        for path in packs {
            let pack = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for_each_member(&path, io_err(&path), |m| {
                let slice = PackSlice {
                    pack: pack.clone(),
                    offset: m.offset,
                    len: m.bytes.len() as u64,
                };
                if self.take_in(ord, &m.name, &m.bytes, Some(slice), None, rec, &mut seen)? {
                    rec.sent_from_outbox += 1;
                }
                Ok(())
            })?;
        }
        crashpoint(self.options.crash_at.as_deref(), "recover-after-outbox");
        // The ORD's folders: what it holds is delivered; what only it holds gets an outbox copy.
        let mut only_there = self.ours_at_ord(ord, rec)?;
        only_there.sort_by_key(|(name, _)| {
            OrdFileName::parse_ours(name, ord.region)
                .map(|n| n.ntransm.value)
                .unwrap_or(0)
        });
        self.keep_found_at_ord(ord, &outbox, only_there, rec, &mut seen)?;
        crashpoint(
            self.options.crash_at.as_deref(),
            "recover-after-ord-folders",
        );
        // The sequence: past every id found, and past what the ORD says it has.
        let found = seen.iter().next_back().copied();
        let target = found.into_iter().chain(last_sent_id).max();
        if let Some(last) = target {
            self.store.raise_sequence(&ord.name, last)?;
            if let Some(given) = last_sent_id.filter(|g| Some(*g) < found) {
                rec.problems.push(format!(
                    "--last-sent-id {given} is below id {} found in the outbox or at the ORD: the sequence goes on after the higher one",
                    found.unwrap_or(0)
                ));
            }
            if last >= MAX_TRANSMISSION_ID {
                rec.problems.push(format!(
                    "ids up to {last} are used: {MAX_TRANSMISSION_ID} is the last a 10-digit NTransm holds, so every send to this ORD is refused until its sequence is agreed with the ORD (docs/OPERATIONS.md, \"Transmission ids running out\")"
                ));
            }
            rec.ids_without_a_copy = missing_ranges(ord.first_transmission_id, last, &seen);
            if outbox_lost && last_sent_id.is_none() {
                rec.problems.push(format!(
                    "the outbox {} is missing (no pack, no high-water mark): ids up to {last} were counted from the ORD's folders alone, and files the ORD has already taken away cannot be counted from there. Ask the ORD for the last id it received from us and run `egme-ord recover --last-sent-id ID`; restore the outbox from a backup if there is one (docs/OPERATIONS.md)",
                    outbox.display()
                ));
            }
        }
        self.recover_received(ord, rec)
    }

    /// Our files in the ORD's send folder (and the folder it moves them to): those the ledger
    /// knows are marked delivered; the bytes of those only the ORD holds are returned.
    fn ours_at_ord(
        &mut self,
        ord: &OrdConfig,
        rec: &mut OrdRecovery,
    ) -> Result<Vec<(String, Vec<u8>)>, CycleError> {
        let mut folders: Vec<Endpoint> = vec![ord.send.clone()];
        if let Some(f) = &ord.send_picked_up_folder {
            folders.push(ord.send.subfolder(f));
        }
        let mut only_there: Vec<(String, Vec<u8>)> = Vec::new();
        for endpoint in &folders {
            let mut dir = super::open_endpoint(endpoint)?;
            let listing = dir.list()?;
            for e in listing.files {
                let Ok(parsed) = OrdFileName::parse_ours(e.name.as_str(), ord.region) else {
                    continue;
                };
                let id = parsed.ntransm.value;
                match self.store.sent_name(&ord.name, id)? {
                    Some(known) if known == e.name.as_str() => {
                        if self.store.mark_delivered_by_name(&ord.name, (id, e.name.as_str()), self.now)? {
                            rec.marked_delivered += 1;
                        }
                    }
                    Some(known) => rec.problems.push(format!(
                        "{}: {} holds id {id} under this name, the ledger under {known}: not taken in",
                        dir.describe(),
                        e.name
                    )),
                    None if id < ord.first_transmission_id => {}
                    None => {
                        let bytes = dir.read(&e.name, ord.dialect.max_file_bytes)?;
                        only_there.push((e.name.to_string(), bytes));
                    }
                }
            }
        }
        Ok(only_there)
    }

    /// Records one of our files under its id unless the ledger has that id; whether it did.
    #[allow(clippy::too_many_arguments)]
    fn take_in(
        &mut self,
        ord: &OrdConfig,
        name: &str,
        bytes: &[u8],
        slice: Option<PackSlice>,
        delivered_at: Option<DateTime<Utc>>,
        rec: &mut OrdRecovery,
        seen: &mut BTreeSet<u64>,
    ) -> Result<bool, CycleError> {
        let mut file = match read_our_file(ord, name, bytes, self.now) {
            Ok(f) => f,
            Err(problem) => {
                rec.problems.push(problem);
                // Unreadable, it still used the id its name carries: the sequence goes past it.
                if let Ok(n) = OrdFileName::parse_ours(name, ord.region) {
                    seen.insert(n.ntransm.value);
                }
                return Ok(false);
            }
        };
        if let Some(known) = self.store.sent_name(&ord.name, file.id)? {
            if known != name {
                rec.problems.push(format!(
                    "{name}: id {} is recorded as {known}: not taken in",
                    file.id
                ));
            }
            seen.insert(file.id);
            return Ok(false);
        }
        file.write.pack = slice;
        self.store.record_recovered(
            &ord.name,
            file.id,
            file.previous,
            &file.write,
            delivered_at,
        )?;
        seen.insert(file.id);
        Ok(true)
    }

    /// Files only the ORD holds: kept in a pack of their own in the outbox, recorded as delivered.
    fn keep_found_at_ord(
        &mut self,
        ord: &OrdConfig,
        outbox: &Path,
        files: Vec<(String, Vec<u8>)>,
        rec: &mut OrdRecovery,
        seen: &mut BTreeSet<u64>,
    ) -> Result<(), CycleError> {
        let Some(first) = files.first().and_then(|(name, _)| {
            OrdFileName::parse_ours(name, ord.region)
                .ok()
                .map(|n| n.ntransm.value)
        }) else {
            return Ok(());
        };
        // A name of its own: `pack-<first id>.tar.zst` may be a pack that is already there.
        let mut name = pack_name(first).replace(PACK_SUFFIX, &format!("-from-ord{PACK_SUFFIX}"));
        let mut n = 1;
        while outbox.join(&name).exists() {
            name = pack_name(first).replace(PACK_SUFFIX, &format!("-from-ord-{n}{PACK_SUFFIX}"));
            n += 1;
        }
        let mut pack = PackBuilder::named(self.now, &name);
        let mut added = Vec::new();
        for (file_name, bytes) in &files {
            let slice = pack.add(first, file_name, bytes).map_err(io_err(outbox))?;
            added.push((file_name, bytes, slice));
        }
        let now = self.now;
        for (file_name, bytes, slice) in added {
            if self.take_in(ord, file_name, bytes, Some(slice), Some(now), rec, seen)? {
                rec.sent_from_ord += 1;
            }
        }
        self.write_pack(outbox, pack, "recover-after-ord-pack")
    }

    /// Received ORD files in the archive packs that the ledger does not know, recorded again as
    /// intake would (versions, lateness), pointing at the copy where it is.
    fn recover_received(
        &mut self,
        ord: &OrdConfig,
        rec: &mut OrdRecovery,
    ) -> Result<(), CycleError> {
        // The mtime intake would see for a file still in the ORD's folder, so it is not read again.
        let mut remote: BTreeMap<(String, u64), i64> = BTreeMap::new();
        if let Ok(mut dir) = super::open_endpoint(&ord.receive) {
            if let Ok(listing) = dir.list() {
                for RemoteEntry { name, size, mtime } in listing.files {
                    remote.insert((name.to_string(), size), mtime);
                }
            }
        }
        let closed = self.store.days_state(&ord.name)?.closed;
        for path in archive_packs(&self.config.work().archive(Source::Ord(&ord.name))) {
            for_each_member(&path, io_err(&path), |m| {
                let sha = sha256_of(&m.bytes);
                if self.store.received_known(&ord.name, &m.name, &sha)? {
                    return Ok(());
                }
                let size = m.bytes.len() as u64;
                let Some(name) = SafeName::new(&m.name) else {
                    rec.problems.push(format!(
                        "{}: a member named {:?}, not a safe file name: not taken in",
                        path.display(),
                        m.name
                    ));
                    return Ok(());
                };
                let entry = RemoteEntry {
                    mtime: remote.get(&(m.name.clone(), size)).copied().unwrap_or(0),
                    name,
                    size,
                };
                let keep = Keep::At {
                    path: path.display().to_string(),
                    offset: m.offset,
                };
                self.receive(ord, &entry, &m.bytes, &closed, keep)?;
                rec.received_from_archive += 1;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Mobility files in the archive that the ledger does not know, recorded again.
    fn recover_mobility(&mut self) -> Result<usize, CycleError> {
        let mut inbox: BTreeMap<(String, u64), i64> = BTreeMap::new();
        let mut dir = crate::transport::LocalDir::new(&self.config.mobility_inbox);
        if let Ok(listing) = crate::transport::RemoteDir::list(&mut dir) {
            for RemoteEntry { name, size, mtime } in listing.files {
                inbox.insert((name.to_string(), size), mtime);
            }
        }
        let closed_by_ord = self.closed_days()?;
        let root = self.config.work().archive(Source::Mobility);
        let mut days: Vec<PathBuf> = fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        days.sort();
        let mut sum = MobilitySummary::default();
        let mut count = 0;
        for d in days {
            let mut files: Vec<PathBuf> = fs::read_dir(&d)
                .map_err(io_err(&d))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for path in files {
                let Some(kept_name) = path.file_name().map(|n| n.to_string_lossy().into_owned())
                else {
                    continue;
                };
                if kept_name.starts_with('.') {
                    continue;
                }
                let name = original_name(&kept_name);
                let read = fs::read(&path).map_err(io_err(&path))?;
                // Kept compressed (`<name>.zst`), or as it came (archives from before).
                let (name, bytes) = match name.strip_suffix(crate::pack::ZST_SUFFIX) {
                    Some(plain) => (
                        plain.to_string(),
                        crate::pack::decompress_file(&read).map_err(io_err(&path))?,
                    ),
                    None => (name.to_string(), read),
                };
                if self
                    .store
                    .mobility_source_known(&name, &sha256_of(&bytes))?
                {
                    continue;
                }
                let size = bytes.len() as u64;
                let mtime = inbox.get(&(name.clone(), size)).copied().unwrap_or(0);
                let kept = path.display().to_string();
                self.ingest_mobility(
                    (&name, size, mtime),
                    &bytes,
                    Some(&kept),
                    &closed_by_ord,
                    &mut sum,
                )?;
                count += 1;
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archived_name_loses_the_suffix_the_archive_gave_it() {
        assert_eq!(original_name("cdrs.json.2"), "cdrs.json");
        assert_eq!(original_name("cdrs.json"), "cdrs.json");
        assert_eq!(original_name("readings.csv"), "readings.csv");
    }

    #[test]
    fn ids_without_a_copy_are_reported_as_ranges() {
        let held: BTreeSet<u64> = [1, 2, 5, 9].into_iter().collect();
        assert_eq!(missing_ranges(1, 10, &held), ["3..=4", "6..=8", "10..=10"]);
        assert!(missing_ranges(1, 2, &held).is_empty());
        assert_eq!(missing_ranges(3, 4, &held), ["3..=4"]);
        assert_eq!(missing_ranges(5, 5, &held), Vec::<String>::new());
        // In time proportional to what is held, not to the range.
        let far: BTreeSet<u64> = [1, u64::MAX].into_iter().collect();
        assert_eq!(
            missing_ranges(1, u64::MAX, &far),
            [format!("2..={}", u64::MAX - 1)]
        );
    }
}
