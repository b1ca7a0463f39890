//! Intake of ORD files: stable files only, checked, versioned per CPE-day, archived or quarantined.

use egme_ord_core::event::EventKind;
use egme_ord_core::sha256::Sha256;
use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::NaiveDate;

use super::{io_err, Cycle, CycleError, OrdSummary};
use crate::fsutil::sha256_of;
use crate::pack::PackBuilder;
use crate::store::ReceivedFile;
use crate::transport::{RemoteDir, TransportError};
use egme_ord_core::check::{check_received, Sender};
use egme_ord_core::config::OrdConfig;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::OrdFileName;
use egme_ord_core::ledger::ReceivedStatus;
use egme_ord_core::profile::DayProfile;
use egme_ord_core::remote::is_safe_name;
use egme_ord_core::remote::{Listing, RemoteEntry, SafeName, UnsafeEntry};
use egme_ord_core::sgl::{Code, Diagnostic, SglFile};
use egme_ord_core::versions::{file_outcome, judge_day, transmission_gap, DayVerdict, OrdVersion};
use egme_ord_core::work_dir::Source;

/// Files downloaded (or uploaded) per batch: bounds memory, keeps sessions busy.
pub(super) const BATCH: usize = 256;

/// Cycles in a row after which a file that cannot be read is reported as stuck.
pub const STUCK_AFTER: u32 = 3;

/// The archive pack of one intake batch: `archive/<ORD>/<date>/pack-<first id>.tar.zst`, named after
/// the ledger id the batch's first received file gets (see `Store::next_received_id`).
pub(super) struct ArchivePack {
    first_id: u64,
    dir: PathBuf,
    pack: PackBuilder,
}

/// Where a received file's accepted bytes are kept.
pub(super) enum Keep<'a> {
    /// Added to the batch's archive pack.
    Pack(&'a mut ArchivePack),
    /// Already kept at `offset` of the pack `path` (recovery from the archive).
    At { path: String, offset: u64 },
}

/// Each day's verdict, and the days to apply (CPE and profile).
type DayJudgement<'f> = (Vec<DayVerdict>, Vec<(Cpe, &'f DayProfile)>);

/// A file as listed, safe name or not: what a rejection records.
#[derive(Debug, Clone, Copy)]
pub(super) struct Listed<'a> {
    pub name: &'a str,
    pub size: u64,
    pub mtime: i64,
}

impl<'a> From<&'a RemoteEntry> for Listed<'a> {
    fn from(e: &'a RemoteEntry) -> Self {
        Listed {
            name: e.name.as_str(),
            size: e.size,
            mtime: e.mtime,
        }
    }
}

impl<'a> From<&'a UnsafeEntry> for Listed<'a> {
    fn from(e: &'a UnsafeEntry) -> Self {
        Listed {
            name: &e.name,
            size: e.size,
            mtime: e.mtime,
        }
    }
}

/// The first diagnostics of a rejection, on one line (the rest are in the quarantine's
/// `.errors.txt`).
fn first_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut shown: Vec<String> = diagnostics
        .iter()
        .take(3)
        .map(|d| format!("{} line {}: {}", d.code.as_str(), d.line, d.message))
        .collect();
    if diagnostics.len() > 3 {
        shown.push(format!("and {} more", diagnostics.len() - 3));
    }
    shown.join("; ")
}

impl Cycle<'_> {
    pub(super) fn intake(
        &mut self,
        ord: &OrdConfig,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        let mut dir = self.endpoint(&ord.receive)?;
        let listing = dir.list()?;
        super::pause_after_list(self.options.pause_after_list.as_deref());
        self.reject_unreadable_names(ord, &listing, dir.as_mut(), sum)?;
        sum.skipped = listing.odd;
        // Failures of files that are no longer there (they vanished) are forgotten.
        let listed = |name: &str| {
            listing
                .files
                .binary_search_by(|e| e.name.as_str().cmp(name))
                .is_ok()
        };
        for f in self.store.file_failures(&ord.name)? {
            if !listed(f.name.as_str()) {
                self.store.clear_file_failure(&ord.name, &f.name)?;
            }
        }
        let candidates = self.candidates(ord, listing.files, dir.as_mut(), sum)?;
        // Days close only during the send, so once per intake is enough.
        let closed = self.store.days_state(&ord.name)?.closed;
        // Downloads in batches (over several sessions where configured), processed in name order;
        // each batch is one ledger transaction, its accepted files archived in one pack that is
        // synced before it commits.
        // Remote files are moved to the processed folder only after the commit.
        for batch in candidates.chunks(BATCH) {
            self.intake_batch(ord, batch, dir.as_mut(), &closed, sum)?;
            if self.options.stopping() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Links, names that are not UTF-8 and unsafe names: never followed nor read, recorded once as
    /// rejected (an unsafe name once it is old enough to be complete).
    fn reject_unreadable_names(
        &mut self,
        ord: &OrdConfig,
        listing: &Listing,
        dir: &mut dyn RemoteDir,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        for name in &listing.odd {
            if self.store.seen_file(&ord.name, name, 0, 0)? {
                continue;
            }
            let d = Diagnostic::new(
                0,
                1,
                Code::NotAFile,
                format!("{name:?} is a symbolic link or has a name that is not UTF-8: not followed, not read"),
            );
            let listed = Listed {
                name,
                size: 0,
                mtime: 0,
            };
            let status = self.reject(ord, listed, None, &[d], None)?;
            self.received_one(ord, listed, None, status, dir, sum)?;
        }
        for entry in &listing.unsafe_files {
            if self
                .store
                .seen_file(&ord.name, &entry.name, entry.size, entry.mtime)?
            {
                continue;
            }
            if self.too_young(entry.mtime) {
                sum.waiting += 1;
                continue;
            }
            let d = Diagnostic::new(
                0,
                1,
                Code::NamePattern,
                format!("unsafe file name {:?}: not read", entry.name),
            );
            let status = self.reject(ord, entry.into(), None, &[d], None)?;
            self.received_one(ord, entry.into(), None, status, dir, sum)?;
        }
        Ok(())
    }

    /// Whether a file modified at `mtime` may still be being written (ORD and mobility intake).
    pub(super) fn too_young(&self, mtime: i64) -> bool {
        let min_age = i64::try_from(self.config.min_file_age.as_secs()).unwrap_or(i64::MAX);
        self.wall_now.timestamp().saturating_sub(mtime) < min_age
    }

    /// The files to download: not seen before, old enough, not too large (rejected here). `files`
    /// is the listing's, sorted by name.
    fn candidates(
        &mut self,
        ord: &OrdConfig,
        files: Vec<RemoteEntry>,
        dir: &mut dyn RemoteDir,
        sum: &mut OrdSummary,
    ) -> Result<Vec<RemoteEntry>, CycleError> {
        let mut candidates = Vec::new();
        let recorded = self.store.received_among(&ord.name, &files)?;
        for (entry, seen) in files.into_iter().zip(recorded) {
            if seen {
                // Recorded before a crash but not yet moved: move it now.
                if let Some(folder) = ord.processed_folder.as_deref() {
                    dir.move_into(&entry.name, folder)?;
                }
                continue;
            }
            if self.too_young(entry.mtime) {
                sum.waiting += 1;
                continue;
            }
            if entry.size > ord.dialect.max_file_bytes {
                let d = Diagnostic::new(
                    0,
                    0,
                    Code::TooLarge,
                    format!(
                        "file has {} bytes, more than the limit of {}: not read",
                        entry.size, ord.dialect.max_file_bytes
                    ),
                );
                let status = self.reject(ord, (&entry).into(), None, &[d], None)?;
                self.received_one(ord, (&entry).into(), Some(&entry.name), status, dir, sum)?;
            } else {
                candidates.push(entry);
            }
        }
        Ok(candidates)
    }

    /// Downloads and receives one batch in one ledger transaction, then moves what it recorded.
    fn intake_batch(
        &mut self,
        ord: &OrdConfig,
        batch: &[RemoteEntry],
        dir: &mut dyn RemoteDir,
        closed: &BTreeSet<NaiveDate>,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        let names: Vec<SafeName> = batch.iter().map(|e| e.name.clone()).collect();
        let contents = dir.read_many(&names, ord.dialect.max_file_bytes);
        let done = self.in_batch(|me| {
            let mut done = Vec::with_capacity(batch.len());
            let mut archive = ArchivePack {
                first_id: me.store.next_received_id()?,
                dir: me.archive_dir(Source::Ord(&ord.name)),
                pack: PackBuilder::new(me.now),
            };
            for (entry, content) in batch.iter().zip(contents) {
                let bytes = match content {
                    Ok(b) => b,
                    Err(TransportError::TooLarge { .. }) => {
                        sum.waiting += 1;
                        continue;
                    }
                    // One file's failure (vanished, no permission): counted against it, the
                    // others go on.
                    Err(e) if e.about_one_file() => {
                        me.unreadable(ord, entry.name.as_str(), &e, sum)?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if bytes.len() as u64 != entry.size {
                    // Changed while being read: not stable yet.
                    sum.waiting += 1;
                    continue;
                }
                done.push((
                    entry,
                    me.receive(ord, entry, &bytes, closed, Keep::Pack(&mut archive))?,
                ));
                if me.options.stopping() {
                    break;
                }
            }
            me.write_pack(&archive.dir, archive.pack, "after-intake-archive")?;
            Ok(done)
        })?;
        for (entry, status) in done {
            self.received_one(ord, entry.into(), Some(&entry.name), status, dir, sum)?;
        }
        Ok(())
    }

    /// Counts a cycle in which `name` could not be read: an event the first time and when it
    /// becomes stuck; the summary counts it.
    fn unreadable(
        &mut self,
        ord: &OrdConfig,
        name: &str,
        error: &TransportError,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        let failures =
            self.store
                .record_file_failure(&ord.name, name, self.now, &error.to_string())?;
        sum.files_unreadable += 1;
        if failures == 1 {
            tracing::warn!(ord = %ord.name, file = %name, %error, "file could not be read: the others are received, it is tried again next cycle");
            self.store.event(
                self.now,
                Some(&ord.name),
                EventKind::FileUnreadable,
                &format!("{name}: {error}; tried again next cycle"),
            )?;
        }
        if failures >= STUCK_AFTER {
            sum.files_stuck.push(name.to_string());
            tracing::error!(ord = %ord.name, file = %name, failures, %error, "file stuck: it could not be read in several cycles in a row");
            if failures == STUCK_AFTER {
                self.store.event(self.now, Some(&ord.name), EventKind::FileStuck, &format!(
                    "{name}: could not be read in {failures} cycles in a row ({error}): ask the ORD to check the file (its permissions on their server)"))?;
            }
        }
        Ok(())
    }

    /// Logs and counts one recorded file, and moves it (when its name is safe, `movable`) to the
    /// processed folder when one is configured.
    fn received_one(
        &mut self,
        ord: &OrdConfig,
        listed: Listed<'_>,
        movable: Option<&SafeName>,
        status: ReceivedStatus,
        dir: &mut dyn RemoteDir,
        sum: &mut OrdSummary,
    ) -> Result<(), CycleError> {
        // A rejection's WARN line is its event's (with the first diagnostics).
        if status != ReceivedStatus::Rejected {
            tracing::info!(ord = %ord.name, file = %listed.name, size = listed.size, status = status.as_str(), "file received");
        }
        *sum.received.entry(status).or_default() += 1;
        self.store.clear_file_failure(&ord.name, listed.name)?;
        if let (Some(folder), Some(name)) = (ord.processed_folder.as_deref(), movable) {
            dir.move_into(name, folder)?;
        }
        Ok(())
    }

    pub(super) fn receive(
        &mut self,
        ord: &OrdConfig,
        entry: &RemoteEntry,
        bytes: &[u8],
        closed: &BTreeSet<NaiveDate>,
        keep: Keep<'_>,
    ) -> Result<ReceivedStatus, CycleError> {
        let sha = sha256_of(bytes);
        let sender = Sender {
            region: ord.region,
            dialect: &ord.dialect,
            origin: &ord.ord_entity,
            destination: &ord.inbound_destination,
        };
        let (checked, diagnostics) = check_received(entry.name.as_str(), bytes, &sender);
        let Some((name, file)) = checked else {
            return self.reject(ord, entry.into(), Some(bytes), &diagnostics, Some(sha));
        };
        let mut record = ReceivedFile {
            ord: ord.name.clone(),
            name: entry.name.to_string(),
            size: entry.size,
            mtime: entry.mtime,
            sha256: Some(sha),
            status: ReceivedStatus::Duplicate,
            diagnostics: serde_json::to_string(&diagnostics).unwrap_or_default(),
            cpe: Some(name.cpe),
            first_day: Some(file.header.selection_start),
            last_day: Some(file.header.selection_end),
            transmission_id: Some(file.header.transmission_id),
            previous_id: Some(file.header.previous_transmission_id),
            ntransm: Some(name.ntransm.value),
            received_at: self.now,
            stored_path: None,
            stored_offset: None,
        };
        if self.store.seen_content(&ord.name, &sha)? {
            self.store.record_inbound(&record, &[])?;
            return Ok(ReceivedStatus::Duplicate);
        }
        let (path, offset) = match keep {
            Keep::Pack(archive) => {
                let slice = archive
                    .pack
                    .add(archive.first_id, entry.name.as_str(), bytes)
                    .map_err(io_err(&archive.dir))?;
                (
                    archive.dir.join(&slice.pack).display().to_string(),
                    slice.offset,
                )
            }
            Keep::At { path, offset } => (path, offset),
        };
        record.stored_path = Some(path);
        record.stored_offset = Some(offset);
        self.note_ord_file(ord, entry, &name, &file)?;
        let (verdicts, applied) = self.judge_days(ord, &name, &file, closed)?;
        record.status = file_outcome(&verdicts);
        if record.status != ReceivedStatus::Applied {
            let late = verdicts.iter().filter(|v| **v == DayVerdict::Late).count();
            let stale = verdicts.iter().filter(|v| **v == DayVerdict::Stale).count();
            self.store.event(self.now, Some(&ord.name), if record.status == ReceivedStatus::Late { EventKind::Late } else { EventKind::Stale }, &format!(
                "{}: {late} day(s) already closed, {stale} day(s) older than the version held; archived, not applied",
                entry.name))?;
        }
        self.store.record_inbound(&record, &applied)?;
        Ok(record.status)
    }

    /// Events a valid ORD file can raise whatever its days: a gap in the ORD's transmission ids,
    /// a CPE the registry does not give to this ORD.
    fn note_ord_file(
        &mut self,
        ord: &OrdConfig,
        entry: &RemoteEntry,
        name: &OrdFileName,
        file: &SglFile,
    ) -> Result<(), CycleError> {
        if let Some(last) = self.store.last_inbound_id(&ord.name)? {
            let h = &file.header;
            if transmission_gap(last, h.transmission_id, h.previous_transmission_id) {
                self.store.event(self.now, Some(&ord.name), EventKind::MissingTransmission, &format!(
                    "{}: previous transmission id {} but the last received was {last}: a transmission may be missing",
                    entry.name, h.previous_transmission_id))?;
            }
        }
        let registered = file
            .days
            .iter()
            .any(|d| self.registry.ord_of(&name.cpe, d.day) == Some(ord.name.as_str()));
        if !registered {
            self.store.event(self.now, Some(&ord.name), EventKind::UnregisteredCpe, &format!(
                "{}: CPE {} is not registered for {} in the registry on the file's days; its data is kept but no mobility is netted against it",
                entry.name, name.cpe, ord.name))?;
        }
        Ok(())
    }

    /// Each day of the file judged by the core (`versions`) against the version the ledger holds;
    /// the days to apply.
    fn judge_days<'f>(
        &self,
        ord: &OrdConfig,
        name: &OrdFileName,
        file: &'f SglFile,
        closed: &BTreeSet<NaiveDate>,
    ) -> Result<DayJudgement<'f>, CycleError> {
        let incoming = OrdVersion {
            transmission_id: file.header.transmission_id,
            ntransm: name.ntransm.value,
        };
        let mut applied = Vec::new();
        let mut verdicts = Vec::with_capacity(file.days.len());
        for day in &file.days {
            let held = self
                .store
                .profile_version(&ord.name, &name.cpe, day.day)?
                .map(|h| OrdVersion {
                    transmission_id: h.transmission_id,
                    ntransm: h.ntransm,
                });
            let verdict = judge_day(&ord.schedule, day.day, self.now, closed, incoming, held);
            if verdict == DayVerdict::Apply {
                applied.push((name.cpe, day));
            }
            verdicts.push(verdict);
        }
        Ok((verdicts, applied))
    }

    /// Quarantines a rejected file with `<name>.errors.txt` beside it, and records it.
    fn reject(
        &mut self,
        ord: &OrdConfig,
        entry: Listed<'_>,
        bytes: Option<&[u8]>,
        diagnostics: &[Diagnostic],
        sha: Option<Sha256>,
    ) -> Result<ReceivedStatus, CycleError> {
        let shown = if is_safe_name(entry.name) {
            entry.name.to_string()
        } else {
            format!("{:?}", entry.name)
        };
        let mut text: String = diagnostics
            .iter()
            .map(|d| d.render(&shown) + "\n")
            .collect();
        if bytes.is_none() {
            text.push_str("(the file was not copied: it stays in the ORD's folder)\n");
        }
        let path = self.quarantine(Source::Ord(&ord.name), entry.name, bytes, &text)?;
        let record = ReceivedFile {
            ord: ord.name.clone(),
            name: entry.name.to_string(),
            size: entry.size,
            mtime: entry.mtime,
            sha256: sha,
            status: ReceivedStatus::Rejected,
            diagnostics: serde_json::to_string(diagnostics).unwrap_or_default(),
            cpe: None,
            first_day: None,
            last_day: None,
            transmission_id: None,
            previous_id: None,
            ntransm: None,
            received_at: self.now,
            stored_path: Some(path.display().to_string()),
            stored_offset: None,
        };
        self.store.record_inbound(&record, &[])?;
        self.store.event(
            self.now,
            Some(&ord.name),
            EventKind::Rejected,
            &format!(
                "{shown}: {} diagnostic(s), quarantined at {} (first: {})",
                diagnostics.len(),
                path.display(),
                first_diagnostics(diagnostics)
            ),
        )?;
        Ok(ReceivedStatus::Rejected)
    }
}
