//! The fence's shell: gathers one ORD's witnesses (the outbox's high-water mark and packs, the ORD's folders), asks [`egme_ord_core::fence::judge`], carries out its verdict.

use egme_ord_core::event::EventKind;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::work_dir::{orphans, WorkDir};
use std::collections::BTreeMap;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};

use super::{io_err, Cycle, CycleError};
use crate::fsutil::{unique_path, write_atomic};
use crate::pack::{last_member_names, member_names};
use crate::store::Store;
use crate::transport::{Found, RemoteDir};
use egme_ord_core::config::{Endpoint, OrdConfig};
use egme_ord_core::fence::{
    self, FolderDigest, HighWaterMark, MarkFact, PackFacts, RemoteFact, SeenFolder, Verdict,
    Witnesses,
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

/// The file in an ORD's outbox that keeps its send folder as last seen ([`SeenFolder`]); hidden.
pub fn seen_path(outbox: &Path) -> PathBuf {
    outbox.join(".send-folder-seen")
}

/// The send folder as last seen; `None` when there is no such record or it cannot be read (the
/// fence then compares every file: the record only ever saves work).
fn read_seen(outbox: &Path) -> Option<SeenFolder> {
    let bytes = fs::read(seen_path(outbox)).ok()?;
    serde_json::from_slice(&bytes)
        .inspect_err(|e| tracing::debug!(error = %e, "the send folder's record cannot be read: every file is compared"))
        .ok()
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
    /// The folder as the fence last found it agreeing ([`SeenFolder`]), read from the outbox.
    seen: Option<SeenFolder>,
    /// The ledger's identity, which `seen` must name.
    ledger_id: String,
    /// What this listing summed to (less the leftovers removed), for the record after delivery.
    digest: Option<FolderDigest>,
}

/// Leftovers of puts cut short: the folder that holds them when it is not the one listed, and
/// their names there.
pub type LeftoversAt = (Option<Box<dyn RemoteDir + Send>>, Vec<String>);

/// The leftovers of our puts cut short at `endpoint` (temporary names of our files,
/// [`egme_ord_core::remote::TempName::leftovers`]), with the folder that holds them: `None` for the
/// endpoint's own folder, where its listing found `here`; else the `temp_name` subfolder, listed
/// here (not made yet: no leftovers).
pub fn leftovers(
    endpoint: &Endpoint,
    here: Vec<String>,
    region: Region,
) -> Result<LeftoversAt, CycleError> {
    let temp = endpoint.temp_name();
    let ours = |name: &str| our_id(name, region).is_some();
    let Some(folder) = temp.folder() else {
        return Ok((None, here));
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

/// The leftovers of our puts cut short that a listing of `endpoint`'s own folder shows (none when
/// the temporary names are in a subfolder).
pub fn leftovers_listed(endpoint: &Endpoint, listing: &Listing, region: Region) -> Vec<String> {
    let temp = endpoint.temp_name();
    if temp.folder().is_some() {
        return Vec::new();
    }
    temp.leftovers(listing, |name| our_id(name, region).is_some())
}

/// Removes the leftovers of puts cut short from the send folder (or its `temp_name`
/// subfolder) before a delivery: a server that never overwrites then never meets one, and none
/// piles up for files that are not put again. A removal refused is a warning that names the
/// right to ask for; the put of that file tries again (and names the refusal if it fails).
fn clean_leftovers(
    dir: &mut dyn RemoteDir,
    endpoint: &Endpoint,
    here: Vec<String>,
    region: Region,
) -> Result<Vec<String>, CycleError> {
    let (mut sub, found) = leftovers(endpoint, here, region)?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let in_folder = sub.is_none();
    let there: &mut dyn RemoteDir = match sub.as_mut() {
        Some(sub) => sub.as_mut(),
        None => dir,
    };
    let mut removed = Vec::new();
    for temp in &found {
        match there.remove_leftover(temp) {
            Ok(()) => removed.push(temp.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "a leftover temporary file of ours cannot be removed: the next put of its file tries again")
            }
        }
    }
    tracing::info!(dir = %there.describe(), removed = removed.len(), found = found.len(), "leftover temporary files of puts cut short removed before the delivery");
    // The names removed from the listed folder itself (not from a subfolder).
    Ok(if in_folder { removed } else { Vec::new() })
}

/// What the fence keeps of one folder's listing as it streams: of each name that may be one of
/// our files at or below the ledger's last id, its candidate id and a fingerprint of the name (16
/// bytes, whatever the folder holds); the names ahead of the ledger (each may be evidence); the
/// pending files' sizes; the leftovers of puts cut short; the digest of every name.
struct Kept {
    /// `(candidate id, fingerprint)`, sorted once the listing ended.
    ours: Vec<(u64, u64)>,
    ahead: Vec<(u64, String)>,
    sizes: AtOrd,
    leftovers: Vec<String>,
    digest: FolderDigest,
}

/// A key no one else holds, for a new [`FolderDigest`]: two outputs of std's randomly keyed hasher.
fn fresh_key() -> [u64; 2] {
    let (a, b) = (RandomState::new(), RandomState::new());
    [a.hash_one(0x5eed_u64), b.hash_one(0xfeed_u64)]
}

/// Our files in one ORD folder that can disagree with a ledger whose last id is `last`, each with
/// the name the ledger recorded for its id; with `side`, the pending ones' names and sizes are
/// kept there, what the server lacks, and what the listing summed to.
///
/// The listing streams: only what [`Kept`] says is held, and no name is parsed unless its
/// candidate id is ahead of the ledger. When `side`'s [`SeenFolder`] vouches for the listing (the
/// same names as when the fence last found the folder agreeing, plus our own puts), nothing more
/// is compared (and with such a record, the candidates are not even kept until it fails to vouch:
/// the folder is then listed again for them). Otherwise the candidate ids are compared with the
/// ledger's names of those ids ([`compared_facts`]).
fn remote_facts(
    store: &Store,
    ord: &OrdConfig,
    last: u64,
    endpoint: &Endpoint,
    mut side: Option<&mut SendSide>,
) -> Result<Vec<RemoteFact>, CycleError> {
    let mut dir = super::open_endpoint(endpoint)?;
    let folder = dir.describe();
    let keys = RandomState::new();
    let pending_from = side.as_ref().and_then(|s| s.pending_from);
    let seen = side.as_deref_mut().and_then(|s| s.seen.take());
    let mut kept = keep_listed(
        dir.as_mut(),
        (ord, last),
        endpoint,
        pending_from,
        (seen.as_ref(), &keys),
    )?;
    let vouched = seen.as_ref().is_some_and(|s| {
        let ledger_id = side.as_ref().map_or("", |side| side.ledger_id.as_str());
        s.vouches((&ord.name, ledger_id), &folder, last, &kept.digest)
    });
    if let Some(side) = side {
        side.sizes.append(&mut kept.sizes);
        side.weakened = dir.weakened();
        side.folder.clone_from(&folder);
        if side.clean {
            kept.leftovers.sort();
            kept.leftovers.dedup();
            let here = std::mem::take(&mut kept.leftovers);
            for removed in clean_leftovers(dir.as_mut(), endpoint, here, ord.region)? {
                kept.digest.remove(&removed);
            }
        }
        side.digest = Some(kept.digest);
    }
    tracing::debug!(ord = %ord.name, %folder, names = kept.digest.names(), seen = seen.is_some(), vouched, "the send folder listed");
    let mut facts = ahead_facts(store, ord, &folder, kept.ahead)?;
    if !vouched {
        // Expected to vouch, it did not (the folder changed): listed again for the candidates.
        let ours = match seen {
            Some(_) => candidates(dir.as_mut(), (ord, last), &keys)?,
            None => kept.ours,
        };
        facts.extend(compared_facts(
            dir.as_mut(),
            store,
            (ord, last),
            &folder,
            (&keys, ours),
        )?);
    }
    Ok(facts)
}

/// The first pass over a folder's listing ([`Kept`]); with a record of the folder as last seen
/// (`seen`), the candidates at or below `last` are not kept (the record is expected to vouch).
fn keep_listed(
    dir: &mut dyn RemoteDir,
    (ord, last): (&OrdConfig, u64),
    endpoint: &Endpoint,
    pending_from: Option<u64>,
    (seen, keys): (Option<&SeenFolder>, &RandomState),
) -> Result<Kept, CycleError> {
    let first_id = ord.first_transmission_id;
    let temp = endpoint.temp_name();
    let in_folder = temp.folder().is_none();
    let ours = |name: &str| our_id(name, ord.region).is_some();
    let mut kept = Kept {
        ours: Vec::new(),
        ahead: Vec::new(),
        sizes: AtOrd::new(),
        leftovers: Vec::new(),
        digest: seen.map_or_else(|| FolderDigest::new(fresh_key()), |s| s.digest.emptied()),
    };
    dir.list_each(&mut |found| {
        let (name, attributes) = match found {
            Found::File(name, attributes) => (name, attributes),
            Found::Unsafe(name, _) | Found::Hidden(name) => {
                kept.digest.add(&name);
                if in_folder && temp.final_of(&name).is_some_and(ours) {
                    kept.leftovers.push(name);
                }
                return Ok(());
            }
            Found::Odd(name) => {
                kept.digest.add(&name);
                return Ok(());
            }
        };
        let name = name.as_str();
        kept.digest.add(name);
        if in_folder && temp.final_of(name).is_some_and(ours) {
            kept.leftovers.push(name.to_string());
        }
        let Some(id) = fence::candidate_id(name).filter(|id| *id >= first_id) else {
            return Ok(());
        };
        if pending_from.is_some_and(|first| id >= first) {
            kept.sizes.insert(name.to_string(), attributes.get()?.0);
        }
        if id > last {
            kept.ahead.push((id, name.to_string()));
        } else if seen.is_none() {
            kept.ours.push((id, keys.hash_one(name)));
        }
        Ok(())
    })?;
    Ok(kept)
}

/// The candidates of a folder at or below `last`, `(id, fingerprint of the name)`.
fn candidates(
    dir: &mut dyn RemoteDir,
    (ord, last): (&OrdConfig, u64),
    keys: &RandomState,
) -> Result<Vec<(u64, u64)>, CycleError> {
    let mut ours = Vec::new();
    let first_id = ord.first_transmission_id;
    dir.list_each(&mut |found| {
        if let Found::File(name, _) = found {
            let id = fence::candidate_id(name.as_str()).filter(|id| (first_id..=last).contains(id));
            if let Some(id) = id {
                ours.push((id, keys.hash_one(name.as_str())));
            }
        }
        Ok(())
    })?;
    Ok(ours)
}

/// The files ahead of the ledger's last id: evidence each when it is one of ours, with the
/// ledger's name of its id if it has one (a row above `last` is damage, which the ledger's own
/// checks report).
fn ahead_facts(
    store: &Store,
    ord: &OrdConfig,
    folder: &str,
    mut ahead: Vec<(u64, String)>,
) -> Result<Vec<RemoteFact>, CycleError> {
    ahead.retain(|(_, name)| our_id(name, ord.region).is_some());
    ahead.sort_unstable();
    let mut above = BTreeMap::new();
    if let (Some((lo, _)), Some((hi, _))) = (ahead.first(), ahead.last()) {
        store.each_sent_name_between(&ord.name, *lo, *hi, |id, name| {
            above.insert(id, name);
        })?;
    }
    Ok(ahead
        .into_iter()
        .map(|(id, name)| RemoteFact {
            folder: folder.to_string(),
            name,
            id,
            ledger_name: above.get(&id).cloned(),
        })
        .collect())
}

/// The candidates at or below `last`, `ours`, compared with the ledger's names of their ids in
/// one ordered pass, by fingerprint (a random key per pass, so no name can be made to match
/// another); the ids whose name may differ are listed again for their names, and
/// [`fence::disagrees`] decides on the names themselves.
fn compared_facts(
    dir: &mut dyn RemoteDir,
    store: &Store,
    (ord, last): (&OrdConfig, u64),
    folder: &str,
    (keys, ours): (&RandomState, Vec<(u64, u64)>),
) -> Result<Vec<RemoteFact>, CycleError> {
    let suspects = differing_ids(store, ord, keys, ours)?;
    let mut facts = Vec::new();
    if suspects.is_empty() {
        return Ok(facts);
    }
    // Listed again for the names of the ids whose name may differ (a folder that disagrees
    // with the ledger, a ledger restored from a backup, or names of others that end in digits).
    let first_id = ord.first_transmission_id;
    dir.list_each(&mut |found| {
        if let Found::File(name, _) = found {
            let id = our_id(name.as_str(), ord.region);
            if let Some((id, ledger_name)) = id.and_then(|id| Some((id, suspects.get(&id)?))) {
                if fence::disagrees(id, name.as_str(), ledger_name.as_deref(), (last, first_id)) {
                    facts.push(RemoteFact {
                        folder: folder.to_string(),
                        name: name.to_string(),
                        id,
                        ledger_name: ledger_name.clone(),
                    });
                }
            }
        }
        Ok(())
    })?;
    Ok(facts)
}

/// Of our files at or below the ledger's last id, `(id, fingerprint of the name)`, the ids whose
/// name may differ from the one the ledger recorded (another fingerprint, or no row), each with
/// the ledger's name: one ordered pass over the ledger's names of those ids.
fn differing_ids(
    store: &Store,
    ord: &OrdConfig,
    keys: &RandomState,
    mut ours: Vec<(u64, u64)>,
) -> Result<BTreeMap<u64, Option<String>>, CycleError> {
    ours.sort_unstable();
    let mut suspects = BTreeMap::new();
    let (Some(&(lo, _)), Some(&(hi, _))) = (ours.first(), ours.last()) else {
        return Ok(suspects);
    };
    let mut next = 0;
    store.each_sent_name_between(&ord.name, lo, hi, |id, name| {
        let print = keys.hash_one(name.as_str());
        while let Some(&(listed, listed_print)) = ours.get(next).filter(|(listed, _)| *listed <= id)
        {
            if listed < id {
                suspects.insert(listed, None);
            } else if listed_print != print {
                suspects.insert(listed, Some(name.clone()));
            }
            next += 1;
        }
    })?;
    for &(listed, _) in &ours[next..] {
        suspects.insert(listed, None);
    }
    Ok(suspects)
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
    pub(crate) fn outbox_dir(&self, ord: &OrdName) -> PathBuf {
        self.config.work().outbox(ord)
    }

    /// The outbox whose packs and mark say what was sent: the work folder's, or in a dry run the
    /// real one.
    pub(crate) fn outbox_read_dir(&self, ord: &OrdName) -> PathBuf {
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
            seen: read_seen(&outbox),
            ledger_id: self.store.ledger_id()?,
            ..SendSide::default()
        };
        self.at_ord.clear();
        self.send_seen = None;
        let (w, unchecked) = match gather(self.store, ord, &outbox, true, Some(&mut side)) {
            Ok(w) => {
                self.send_seen = side.digest.map(|digest| SeenFolder {
                    ord: ord.name.clone(),
                    ledger_id: side.ledger_id.clone(),
                    folder: side.folder.clone(),
                    last: 0,
                    digest,
                });
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
                self.send_seen = None;
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

    /// Notes a file our delivery put into the send folder under `name` (`None`: a put whose outcome
    /// is not known, after which the folder as last seen is no longer known either).
    pub(super) fn note_put(&mut self, name: Option<&str>) {
        match (name, self.send_seen.as_mut()) {
            (Some(name), Some(seen)) => seen.digest.add(name),
            (None, _) => self.send_seen = None,
            (Some(_), None) => {}
        }
    }

    /// Keeps the send folder as the fence found it agreeing plus what the delivery put there, for
    /// the next fence ([`SeenFolder`]): written only after a fence and delivery without a failure,
    /// never in a dry run. A record that cannot be written is removed (the next fence then compares
    /// every file); one that cannot be removed either is an error.
    pub(super) fn keep_seen(&mut self, ord: &OrdConfig) -> Result<(), CycleError> {
        let Some(mut seen) = self.send_seen.take() else {
            return Ok(());
        };
        if self.options.dry_run_outbox_of.is_some() {
            return Ok(());
        }
        let outbox = self.outbox_dir(&ord.name);
        let path = seen_path(&outbox);
        seen.last = self.store.last_transmission_id(&ord.name)?.unwrap_or(0);
        let written = serde_json::to_vec(&seen)
            .map_err(io::Error::other)
            .and_then(|bytes| {
                fs::create_dir_all(&outbox)?;
                write_atomic(&path, &bytes)
            });
        if let Err(e) = written {
            tracing::warn!(ord = %ord.name, error = %e, path = %path.display(), "the send folder's record cannot be written: the next fence compares every file");
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
                _ => {}
            }
        }
        Ok(())
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
