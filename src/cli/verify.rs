//! `egme-ord verify`: the ledger checked against the archive, the outbox and each ORD's send folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use egme_ord::cycle::{leftovers, leftovers_listed, open_endpoint};
use egme_ord::fsutil::sha256_of;
use egme_ord::pack::{for_each_member, PackMember};
use egme_ord_core::ledger::is_pack_name;
use egme_ord_core::ledger::{ReceivedCopy, SentFile};
use egme_ord_core::verify::{self, Finding, LocalCopy, OrdFacts, Severity};

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Print JSON (one object with every finding).
    #[arg(long)]
    json: bool,
    /// Do not list the ORDs' send folders (local checks only).
    #[arg(long)]
    no_remote: bool,
}

fn copy_of(bytes: &[u8]) -> LocalCopy {
    LocalCopy {
        size: bytes.len() as u64,
        sha256: sha256_of(bytes),
    }
}

fn copy(path: &Path) -> Option<LocalCopy> {
    fs::read(path).ok().map(|bytes| copy_of(&bytes))
}

/// Every member of the pack at `path` by the offset of its bytes: (length, copy). Empty when the
/// pack cannot be read (each slice it should hold then shows as missing).
fn members_by_offset(path: &Path) -> BTreeMap<u64, (u64, LocalCopy)> {
    let mut out = BTreeMap::new();
    members(path, |m| {
        out.insert(m.offset, (m.bytes.len() as u64, copy_of(&m.bytes)));
    });
    out
}

/// Calls `each` with every member of the pack at `path`, one at a time; a pack that cannot be read
/// (or read to its end) stops early, and what it should hold then shows as missing.
fn members(path: &Path, mut each: impl FnMut(PackMember)) {
    // A pack that stops early shows as its missing members (above): its error adds nothing.
    let _ = for_each_member(
        path,
        |_| (),
        |m| {
            each(m);
            Ok(())
        },
    );
}

/// The archive and quarantine copies the ledger names, each pack read once: a file of its own is
/// read whole; a slice of a pack is the member starting at its offset, of the file's size, or none.
fn stored_copies(received: &[ReceivedCopy]) -> BTreeMap<(String, Option<u64>), Option<LocalCopy>> {
    let mut packs: BTreeMap<&str, BTreeMap<u64, (u64, LocalCopy)>> = BTreeMap::new();
    let mut stored = BTreeMap::new();
    for r in received {
        let (Some(path), Some(_)) = (&r.stored_path, r.sha256) else {
            continue;
        };
        let found = match r.stored_offset {
            None => copy(Path::new(path)),
            Some(offset) => packs
                .entry(path)
                .or_insert_with(|| members_by_offset(Path::new(path)))
                .get(&offset)
                .filter(|(len, _)| *len == r.size)
                .map(|(_, c)| c.clone()),
        };
        stored.insert((path.clone(), r.stored_offset), found);
    }
    stored
}

/// The outbox as verify sees it, each pack read once: every file found (files of their own and the
/// members of every pack, so that files no ledger row names show up), then, for each recorded
/// file, the copy that delivery would read — the pack member starting at its slice, of its length —
/// or none when there is no such member.
fn outbox_copies(dir: &Path, sent: &[SentFile]) -> BTreeMap<String, LocalCopy> {
    let mut outbox = BTreeMap::new();
    // (pack, offset) → (length, copy) of every pack member.
    let mut at_slice: BTreeMap<(String, u64), (u64, LocalCopy)> = BTreeMap::new();
    if let Ok(read) = fs::read_dir(dir) {
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().is_file() {
                continue;
            }
            if is_pack_name(&name) {
                members(&e.path(), |m| {
                    let c = copy_of(&m.bytes);
                    at_slice.insert((name.clone(), m.offset), (m.bytes.len() as u64, c.clone()));
                    outbox.insert(m.name, c);
                });
            } else if let Some(c) = copy(&e.path()) {
                outbox.insert(name, c);
            }
        }
    }
    for s in sent {
        let Some(slice) = &s.pack else { continue };
        match at_slice.get(&(slice.pack.clone(), slice.offset)) {
            Some((len, c)) if *len == slice.len => outbox.insert(s.name.clone(), c.clone()),
            _ => outbox.remove(&s.name),
        };
    }
    outbox
}

/// Exit 0: consistent (warnings allowed); 1: at least one error; 2: could not run.
pub fn run(args: &VerifyArgs) -> Result<u8> {
    // Without the lock: a running daemon is not disturbed. Its open batch can only add warnings
    // (outbox files not yet recorded), never errors: rows commit after their files, puts after rows.
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    // The whole ledger read and checked (every index against its table, every page's checksum).
    ws.store.integrity_check()?;
    let mut findings: Vec<Finding> = Vec::new();
    for ord in &ws.config.ords {
        let sent = ws.store.sent_files(&ord.name, false)?;
        let outbox = outbox_copies(&ws.config.work().outbox(&ord.name), &sent);
        let received = ws.store.received_copies(&ord.name)?;
        let stored = stored_copies(&received);
        let (remote, remote_leftovers) = if args.no_remote {
            (Err("not listed (--no-remote)".to_string()), Vec::new())
        } else {
            match open_endpoint(&ord.send) {
                Err(e) => (Err(e.to_string()), Vec::new()),
                Ok(mut dir) => match dir.list() {
                    Err(e) => (Err(e.to_string()), Vec::new()),
                    Ok(listing) => {
                        let here = leftovers_listed(&ord.send, &listing, ord.region);
                        let left = leftovers(&ord.send, here, ord.region)
                            .map(|(_, names)| names)
                            .unwrap_or_default();
                        let temp = ord.send.temp_name();
                        let shown = left
                            .into_iter()
                            .map(|n| match temp.folder() {
                                Some(folder) => format!("{folder}/{n}"),
                                None => n,
                            })
                            .collect();
                        (Ok(listing.files), shown)
                    }
                },
            }
        };
        let facts = OrdFacts {
            ord: ord.name.clone(),
            region: ord.region,
            first_transmission_id: ord.first_transmission_id,
            last_id_taken: ws.store.last_transmission_id(&ord.name)?,
            sent,
            outbox,
            received,
            stored,
            remote,
            remote_leftovers,
        };
        let found = verify::check(&facts);
        if !args.json {
            let errors = found
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            println!(
                "{}: {} file(s) sent, {} received; {errors} error(s), {} warning(s)",
                ord.name,
                facts.sent.len(),
                facts.received.len(),
                found.len() - errors
            );
            for f in &found {
                println!("  {f}");
            }
        }
        findings.extend(found);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "errors": errors, "warnings": findings.len() - errors, "findings": findings })
        );
    } else {
        println!(
            "verify: {errors} error(s), {} warning(s)",
            findings.len() - errors
        );
    }
    Ok(if errors > 0 { exit::INVALID } else { exit::OK })
}
