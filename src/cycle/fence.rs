//! The fence's shell: gathers one ORD's witnesses (the outbox's high-water mark and packs, the ORD's folders), asks [`egme_ord_core::fence::judge`], carries out its verdict.

use egme_ord_core::event::EventKind;
use egme_ord_core::work_dir::{orphans, WorkDir};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{io_err, Cycle, CycleError};
use crate::fsutil::{unique_path, write_atomic};
use crate::pack::{last_member_names, member_names};
use crate::store::Store;
use crate::transport::RemoteDir;
use egme_ord_core::config::{Endpoint, OrdConfig};
use egme_ord_core::fence::{
    self, HighWaterMark, MarkFact, PackFacts, RemoteFact, Verdict, Witnesses,
};
use egme_ord_core::filename::OrdFileName;
use egme_ord_core::ledger::pack_first_id;
use egme_ord_core::region::Region;
use egme_ord_core::remote::Listing;

/// The high-water mark's file in an ORD's outbox (hidden: not a pack, not an outbox file).
pub fn mark_path(outbox: &Path) -> PathBuf {
    outbox.join(".high-water-mark")
}

/// Reads the outbox's high-water mark.
pub fn read_mark(outbox: &Path) -> MarkFact {
    let path = mark_path(outbox);
    match fs::read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => MarkFact::Absent,
        Err(e) => MarkFact::Unreadable(format!("{}: {e}", path.display())),
        Ok(bytes) => match serde_json::from_slice::<HighWaterMark>(&bytes) {
            Ok(m) => MarkFact::Present(m),
            Err(e) => MarkFact::Unreadable(format!("{}: {e}", path.display())),
        },
    }
}

/// Writes the outbox's high-water mark atomically and durably (fsync of the file and the folder).
pub fn write_mark(outbox: &Path, mark: &HighWaterMark) -> io::Result<()> {
    let bytes = serde_json::to_vec(mark).map_err(io::Error::other)?;
    fs::create_dir_all(outbox)?;
    write_atomic(&mark_path(outbox), &bytes)
}

/// The transmission id of one of our files, from its name (`None`: not one of our names).
fn our_id(name: &str, region: Region) -> Option<u64> {
    OrdFileName::parse_ours(name, region)
        .ok()
        .map(|n| n.ntransm.value)
}

/// The ids of a pack: first from its name, last from its newest members' names (the last frame of
/// a compressed pack; a batch's ids rise with its members), or from the count of its members when
/// none of those names is one of ours.
fn pack_facts(dir: &Path, name: &str, first_id: u64, region: Region) -> io::Result<PackFacts> {
    let path = dir.join(name);
    let newest = last_member_names(&path)?
        .iter()
        .filter_map(|m| our_id(m, region))
        .max();
    let last_id = match newest {
        Some(id) => id.max(first_id),
        None => first_id + (member_names(&path)?.len() as u64).saturating_sub(1),
    };
    Ok(PackFacts {
        name: name.to_string(),
        first_id,
        last_id,
    })
}

/// The outbox packs the fence must look at: every pack that starts after `last`, and the newest
/// one that starts at or before it (a pack that extends past `last` shows a ledger behind it).
pub fn outbox_packs(outbox: &Path, last: u64, region: Region) -> io::Result<Vec<PackFacts>> {
    let mut firsts: Vec<(u64, String)> = Vec::new();
    match fs::read_dir(outbox) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
        Ok(read) => {
            for e in read {
                let name = e?.file_name().to_string_lossy().into_owned();
                if let Some(first) = pack_first_id(&name) {
                    firsts.push((first, name));
                }
            }
        }
    }
    firsts.sort();
    let newest_known = firsts.iter().rposition(|(first, _)| *first <= last);
    let mut out = Vec::new();
    for (i, (first, name)) in firsts.iter().enumerate() {
        if *first > last || Some(i) == newest_known {
            out.push(pack_facts(outbox, name, *first, region)?);
        }
    }
    Ok(out)
}

/// Our files in the ORD's send folder as its listing gave them, by name: their sizes, which the
/// delivery compares before putting a pending file again (a cycle killed after its puts).
pub type AtOrd = BTreeMap<String, u64>;

/// What the fence's look at the ORD's send folder tells the rest of the cycle.
#[derive(Debug, Default)]
struct SendSide {
    /// The first id the ledger has pending (not recorded delivered) for the ORD, if any.
    pending_from: Option<u64>,
    /// Our files there from `pending_from` on, by name, with their sizes.
    sizes: AtOrd,
    /// What its server lacks that weakens a promise ([`crate::transport::RemoteDir::weakened`]).
    weakened: Vec<String>,
    /// The folder, described.
    folder: String,
    /// Whether the leftovers of our puts cut short are removed (not in a dry run).
    clean: bool,
}

/// Leftovers of puts cut short: the folder that holds them when it is not the one listed, and
/// their names there.
pub type LeftoversAt = (Option<Box<dyn RemoteDir + Send>>, Vec<String>);

/// The leftovers of our puts cut short at `endpoint` (temporary names of our files,
/// [`egme_ord_core::remote::TempName::leftovers`]), with the folder that holds them: `None` for the
/// endpoint's own folder, whose `listing` is given; else the `temp_name` subfolder, listed here
/// (not made yet: no leftovers).
pub fn leftovers(
    endpoint: &Endpoint,
    listing: &Listing,
    region: Region,
) -> Result<LeftoversAt, CycleError> {
    let temp = endpoint.temp_name();
    let ours = |name: &str| our_id(name, region).is_some();
    let Some(folder) = temp.folder() else {
        return Ok((None, temp.leftovers(listing, ours)));
    };
    let mut sub = super::open_endpoint(&endpoint.subfolder(folder))?;
    match sub.list() {
        Ok(listing) => {
            let found = temp.leftovers(&listing, ours);
            Ok((Some(sub), found))
        }
        // Not made yet (the first put makes it): nothing left there.
        Err(e) => {
            tracing::debug!(error = %e, "the temp_name subfolder cannot be listed");
            Ok((None, Vec::new()))
        }
    }
}

/// Removes the leftovers of our puts cut short from the send folder (or its `temp_name`
/// subfolder) before a delivery: a server that never overwrites then never meets one, and none
/// piles up for files that are not put again. A removal refused is a warning that names the
/// right to ask for; the put of that file tries again (and names the refusal if it fails).
fn clean_leftovers(
    dir: &mut dyn RemoteDir,
    endpoint: &Endpoint,
    listing: &Listing,
    region: Region,
) -> Result<(), CycleError> {
    let (mut sub, found) = leftovers(endpoint, listing, region)?;
    if found.is_empty() {
        return Ok(());
    }
    let there: &mut dyn RemoteDir = match sub.as_mut() {
        Some(sub) => sub.as_mut(),
        None => dir,
    };
    let mut removed = 0;
    for temp in &found {
        match there.remove_leftover(temp) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(error = %e, "a leftover temporary file of ours cannot be removed: the next put of its file tries again")
            }
        }
    }
    tracing::info!(dir = %there.describe(), removed, found = found.len(), "leftover temporary files of puts cut short removed before the delivery");
    Ok(())
}

/// Our files in one ORD folder that can disagree with a ledger whose last id is `last`, each with
/// the name the ledger recorded for its id; with `side`, the pending ones' names and sizes are
/// kept there, and what the server lacks.
fn remote_facts(
    store: &Store,
    ord: &OrdConfig,
    last: u64,
    endpoint: &Endpoint,
    side: Option<&mut SendSide>,
) -> Result<Vec<RemoteFact>, CycleError> {
    let mut dir = super::open_endpoint(endpoint)?;
    let listing = dir.list()?;
    let folder = dir.describe();
    // Our files there, as (id, place in the listing), in id order: no name copied.
    let mut ours: Vec<(u64, usize)> = listing
        .files
        .iter()
        .enumerate()
        .filter_map(|(at, e)| Some((our_id(e.name.as_str(), ord.region)?, at)))
        .collect();
    ours.sort_unstable();
    let entry = |at: usize| &listing.files[at];
    if let Some(side) = side {
        if let Some(first) = side.pending_from {
            side.sizes.extend(
                ours.iter()
                    .filter(|(id, _)| *id >= first)
                    .map(|(_, at)| (entry(*at).name.to_string(), entry(*at).size)),
            );
        }
        side.weakened = dir.weakened();
        side.folder.clone_from(&folder);
        if side.clean {
            clean_leftovers(dir.as_mut(), endpoint, &listing, ord.region)?;
        }
    }
    // Only the files that can disagree with the ledger are kept (ahead of it, or under another
    // name than it recorded for their id): the listing and the ledger's names of its ids are
    // compared in one ordered pass, nothing of a folder nobody empties held twice.
    let mut facts = Vec::new();
    let mut keep = |id: u64, at: usize, ledger_name: Option<&str>| {
        let name = entry(at).name.as_str();
        if fence::disagrees(id, name, ledger_name, (last, ord.first_transmission_id)) {
            facts.push(RemoteFact {
                folder: folder.clone(),
                name: name.to_string(),
                id,
                ledger_name: ledger_name.map(str::to_string),
            });
        }
    };
    let (Some(&(lo, _)), Some(&(hi, _))) = (ours.first(), ours.last()) else {
        return Ok(facts);
    };
    let mut next = 0;
    store.each_sent_name_between(&ord.name, lo, hi, |id, name| {
        while let Some(&(listed, at)) = ours.get(next).filter(|(listed, _)| *listed <= id) {
            keep(listed, at, (listed == id).then_some(name.as_str()));
            next += 1;
        }
    })?;
    for &(listed, at) in &ours[next..] {
        keep(listed, at, None);
    }
    Ok(facts)
}

/// Every witness of what was sent to `ord`, read now.
pub fn witnesses(
    store: &Store,
    ord: &OrdConfig,
    outbox: &Path,
    with_remote: bool,
) -> Result<Witnesses, CycleError> {
    gather(store, ord, outbox, with_remote, None)
}

/// [`witnesses`]; with `side`, what the send folder's listing said is kept there.
fn gather(
    store: &Store,
    ord: &OrdConfig,
    outbox: &Path,
    with_remote: bool,
    side: Option<&mut SendSide>,
) -> Result<Witnesses, CycleError> {
    let ledger_last = store.last_transmission_id(&ord.name)?;
    let last = ledger_last.unwrap_or(ord.first_transmission_id.saturating_sub(1));
    let packs = outbox_packs(outbox, last, ord.region).map_err(io_err(outbox))?;
    let mut remote = Vec::new();
    if with_remote {
        remote.extend(remote_facts(store, ord, last, &ord.send, side)?);
        if let Some(folder) = &ord.send_picked_up_folder {
            remote.extend(remote_facts(
                store,
                ord,
                last,
                &ord.send.subfolder(folder),
                None,
            )?);
        }
    }
    Ok(Witnesses {
        ord: ord.name.clone(),
        ledger_id: store.ledger_id()?,
        ledger_last,
        first_id: ord.first_transmission_id,
        mark: read_mark(outbox),
        packs,
        remote,
    })
}

/// Moves `name` out of `dir` into `dir/orphans/` (under a new name if one is taken there): a pack
/// is never overwritten, not even one that no ledger row names.
pub fn set_aside(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let aside = orphans(dir);
    fs::create_dir_all(&aside)?;
    let to = unique_path(&aside, name);
    fs::rename(dir.join(name), &to)?;
    Ok(to)
}

impl Cycle<'_> {
    /// The ORD's outbox folder.
    pub(crate) fn outbox_dir(&self, ord: &str) -> PathBuf {
        self.config.work().outbox(ord)
    }

    /// The outbox whose packs and mark say what was sent: the work folder's, or in a dry run the
    /// real one.
    pub(crate) fn outbox_read_dir(&self, ord: &str) -> PathBuf {
        match &self.options.dry_run_outbox_of {
            Some(real) => WorkDir::new(real).outbox(ord),
            None => self.outbox_dir(ord),
        }
    }

    /// The fence before an ORD's send and delivery: refuses (an ERROR event, and an error that
    /// names the evidence and `recover`) when any witness shows an id the ledger would use again;
    /// otherwise sets the pack of a rolled-back batch aside. Remembers the ledger's identity for
    /// the high-water marks the send writes.
    ///
    /// When the ORD's folders cannot be listed, the local witnesses alone are judged and the
    /// listing error is returned: the send may write (the outbox protects its ids) but nothing is
    /// delivered until a cycle that could check the ORD's side.
    ///
    /// What the send folder's listing said of the files still pending (ours, by name and size) is
    /// kept for the delivery ([`Cycle::at_ord`]); what its server lacks is recorded when it changes.
    pub(super) fn fence(&mut self, ord: &OrdConfig) -> Result<Option<CycleError>, CycleError> {
        let outbox = self.outbox_read_dir(&ord.name);
        let mut side = SendSide {
            pending_from: self
                .store
                .pending_after(&ord.name, 0, 1)?
                .first()
                .map(|f| f.transmission_id),
            clean: self.options.dry_run_outbox_of.is_none(),
            ..SendSide::default()
        };
        self.at_ord.clear();
        let (w, unchecked) = match gather(self.store, ord, &outbox, true, Some(&mut side)) {
            Ok(w) => {
                self.at_ord = side.sizes;
                self.note_weakness(ord, &side.folder, side.weakened)?;
                (w, None)
            }
            Err(e @ CycleError::Transport(_)) => {
                (witnesses(self.store, ord, &outbox, false)?, Some(e))
            }
            Err(e) => return Err(e),
        };
        match fence::judge(&w) {
            Verdict::Clear { orphan } => {
                if let Some(name) = orphan.filter(|_| self.options.dry_run_outbox_of.is_none()) {
                    let to = set_aside(&outbox, &name).map_err(io_err(&outbox.join(&name)))?;
                    tracing::warn!(ord = %ord.name, pack = %name, kept_at = %to.display(), "outbox pack of a batch a crash rolled back set aside");
                }
                self.ledger_id = Some(w.ledger_id);
                Ok(unchecked)
            }
            Verdict::Refuse(evidence) => {
                let message = fence::refusal_message(&w, &evidence);
                self.store
                    .event(self.now, Some(&ord.name), EventKind::FenceRefused, &message)?;
                Err(CycleError::Fenced {
                    ord: ord.name.clone(),
                    message,
                })
            }
        }
    }

    /// Records what the server of `ord`'s send folder lacks when that changed: a `server-weakened`
    /// event (WARN) the first time, and the ledger's note that `status` shows; cleared (and said)
    /// once the server offers it. Not in a dry run (it writes nothing).
    fn note_weakness(
        &mut self,
        ord: &OrdConfig,
        folder: &str,
        lacks: Vec<String>,
    ) -> Result<(), CycleError> {
        if self.options.dry_run_outbox_of.is_some() {
            return Ok(());
        }
        let known = self.store.server_weakness(&ord.name)?;
        if known.as_ref().map(|k| &k.lacks) == Some(&lacks) || (known.is_none() && lacks.is_empty())
        {
            return Ok(());
        }
        if lacks.is_empty() {
            tracing::info!(ord = %ord.name, "the server of the send folder now offers what it lacked");
            self.store.set_server_weakness(&ord.name, None)?;
            return Ok(());
        }
        let detail = format!("send folder {folder}: {}", lacks.join("; "));
        self.store.event(
            self.now,
            Some(&ord.name),
            EventKind::ServerWeakened,
            &detail,
        )?;
        let weakness = crate::store::ServerWeakness {
            since: self.now,
            lacks,
        };
        self.store.set_server_weakness(&ord.name, Some(&weakness))?;
        Ok(())
    }

    /// Writes the ORD's high-water mark (`committed`, `reserved`), durably.
    pub(super) fn mark(
        &self,
        ord: &OrdConfig,
        committed: u64,
        reserved: u64,
    ) -> Result<(), CycleError> {
        let outbox = self.outbox_dir(&ord.name);
        let ledger_id = match &self.ledger_id {
            Some(id) => id.clone(),
            None => self.store.ledger_id()?,
        };
        let mark = HighWaterMark {
            ledger_id,
            ord: ord.name.clone(),
            committed,
            reserved,
        };
        write_mark(&outbox, &mark).map_err(io_err(&mark_path(&outbox)))
    }
}
