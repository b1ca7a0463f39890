//! The ledger checked against the folders (pure): what `egme-ord verify` reports, from facts the shell gathered.

use crate::ord_name::OrdName;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::filename::{OrdFileName, MAX_TRANSMISSION_ID};
use crate::ledger::{ReceivedCopy, ReceivedStatus, SentFile};
use crate::region::Region;
use crate::remote::RemoteEntry;
use crate::sha256::Sha256;

/// How bad a finding is: an error breaks a promise (nothing lost, nothing twice, ids gap-free);
/// a warning is worth a look but breaks none (a file left by a crash, a file the ORD picked up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One thing `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub ord: OrdName,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.ord, self.message)
    }
}

/// A local copy as found on disk: its size and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCopy {
    pub size: u64,
    pub sha256: Sha256,
}

/// What the shell gathered about one ORD.
#[derive(Debug, Clone)]
pub struct OrdFacts {
    pub ord: OrdName,
    pub region: Region,
    pub first_transmission_id: u64,
    /// `sequences.last_id`: the last id taken.
    pub last_id_taken: Option<u64>,
    /// The ledger's outbound files, in transmission order.
    pub sent: Vec<SentFile>,
    /// The outbox folder: name → copy.
    pub outbox: BTreeMap<String, LocalCopy>,
    /// The ledger's received files.
    pub received: Vec<ReceivedCopy>,
    /// Archive and quarantine copies the ledger names: (path, offset in it when it is a pack) →
    /// copy (absent when missing).
    pub stored: BTreeMap<(String, Option<u64>), Option<LocalCopy>>,
    /// The ORD's send folder (regular files), or why it could not be listed.
    pub remote: Result<Vec<RemoteEntry>, String>,
    /// Temporary names of our files in the ORD's send folder (or its `temp_name` subfolder): puts
    /// cut short, not cleaned yet.
    pub remote_leftovers: Vec<String>,
}

/// Checks one ORD; findings sorted errors first.
pub fn check(f: &OrdFacts) -> Vec<Finding> {
    let mut out = Findings {
        ord: &f.ord,
        list: Vec::new(),
    };
    let recorded: BTreeMap<&str, &SentFile> = f.sent.iter().map(|s| (s.name.as_str(), s)).collect();
    check_ids(f, &mut out);
    check_outbox(f, &recorded, &mut out);
    match &f.remote {
        Err(e) => out.warning(format!(
            "the ORD's send folder could not be listed, not compared: {e}"
        )),
        Ok(entries) => check_remote(f, entries, &recorded, &mut out),
    }
    for h in &f.remote_leftovers {
        out.warning(format!(
            "{h}: a temporary file of an upload cut short (the next delivery removes it)"
        ));
    }
    check_received(f, &mut out);
    let mut list = out.list;
    list.sort_by_key(|f| std::cmp::Reverse(f.severity));
    list
}

/// The findings of one ORD, as they are made.
struct Findings<'a> {
    ord: &'a OrdName,
    list: Vec<Finding>,
}

impl Findings<'_> {
    fn push(&mut self, severity: Severity, message: String) {
        self.list.push(Finding {
            severity,
            ord: self.ord.clone(),
            message,
        });
    }
    fn error(&mut self, message: String) {
        self.push(Severity::Error, message);
    }
    fn warning(&mut self, message: String) {
        self.push(Severity::Warning, message);
    }
}

/// Transmission ids: first..=last, each once, each chained to the one before, and the sequence
/// ending where the files do.
fn check_ids(f: &OrdFacts, out: &mut Findings<'_>) {
    let mut expected = f.first_transmission_id;
    for s in &f.sent {
        if s.transmission_id != expected {
            out.error(format!(
                "transmission ids are not gap-free: expected {expected}, found {} ({})",
                s.transmission_id, s.name
            ));
        }
        if s.previous_id + 1 != s.transmission_id {
            out.error(format!(
                "{}: previous transmission id {} does not precede {}",
                s.name, s.previous_id, s.transmission_id
            ));
        }
        if s.transmission_id > MAX_TRANSMISSION_ID {
            out.error(format!(
                "{}: transmission id {} does not fit the 10-digit NTransm (the last is {MAX_TRANSMISSION_ID}): the ORD cannot read this name",
                s.name, s.transmission_id
            ));
        }
        expected = s.transmission_id + 1;
    }
    let last_recorded = f.sent.last().map(|s| s.transmission_id);
    if f.last_id_taken != last_recorded {
        out.error(format!(
            "the sequence says the last id taken is {:?}, the files recorded end at {:?}",
            f.last_id_taken, last_recorded
        ));
    }
}

/// Outbox: every recorded file kept with its recorded bytes; nothing there unrecorded.
fn check_outbox(f: &OrdFacts, recorded: &BTreeMap<&str, &SentFile>, out: &mut Findings<'_>) {
    for s in f.sent.iter().filter(|s| !s.pruned) {
        match f.outbox.get(&s.name) {
            None => out.error(format!(
                "{}: recorded as written but missing from the outbox",
                s.name
            )),
            Some(c) if c.sha256 != s.sha256 => out.error(format!(
                "{}: the outbox copy differs from the bytes recorded",
                s.name
            )),
            Some(_) => {}
        }
    }
    for name in f.outbox.keys() {
        if !recorded.contains_key(name.as_str()) {
            out.warning(format!("{name}: in the outbox but not in the ledger (left by an interrupted batch; never delivered)"));
        }
    }
}

/// The ORD's side: what we delivered is there once, with its size; nothing of ours unrecorded.
fn check_remote(
    f: &OrdFacts,
    entries: &[RemoteEntry],
    recorded: &BTreeMap<&str, &SentFile>,
    out: &mut Findings<'_>,
) {
    let there: BTreeMap<&str, &RemoteEntry> =
        entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut ids_there: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for e in entries {
        let Ok(name) = OrdFileName::parse_ours(e.name.as_str(), f.region) else {
            continue;
        };
        ids_there
            .entry(name.ntransm.value)
            .or_default()
            .push(e.name.as_str());
        if !recorded.contains_key(e.name.as_str()) {
            out.error(format!("{}: on the ORD side but not in the ledger", e.name));
        }
    }
    for (id, names) in ids_there {
        if names.len() > 1 {
            out.error(format!(
                "transmission id {id} is on the ORD side {} times: {}",
                names.len(),
                names.join(", ")
            ));
        }
    }
    let mut gone = 0usize;
    for s in &f.sent {
        let Some(e) = there.get(s.name.as_str()) else {
            gone += usize::from(s.delivered);
            continue;
        };
        if let Some(c) = f.outbox.get(&s.name) {
            if c.size != e.size {
                out.error(format!(
                    "{}: {} bytes on the ORD side, {} written",
                    s.name, e.size, c.size
                ));
            }
        }
        if !s.delivered {
            out.warning(format!(
                "{}: on the ORD side but not yet marked delivered (the next cycle marks it)",
                s.name
            ));
        }
    }
    if gone > 0 {
        out.warning(format!("{gone} delivered file(s) are no longer in the ORD's send folder (picked up by the ORD?)"));
    }
    let pending = f.sent.iter().filter(|s| !s.delivered).count();
    if pending > 0 {
        out.warning(format!(
            "{pending} file(s) written and not yet delivered (the next cycle delivers them)"
        ));
    }
}

/// Inbound: every kept copy there with its bytes; each content applied once.
fn check_received(f: &OrdFacts, out: &mut Findings<'_>) {
    let mut applied: BTreeMap<Sha256, Vec<&str>> = BTreeMap::new();
    for r in &f.received {
        if let (ReceivedStatus::Applied, Some(sha)) = (r.status, r.sha256) {
            applied.entry(sha).or_default().push(r.name.as_str());
        }
        let (Some(sha256), Some(path)) = (r.sha256, &r.stored_path) else {
            continue;
        };
        if r.pruned {
            continue;
        }
        let kept = match r.stored_offset {
            Some(offset) => format!("{path} (at byte {offset})"),
            None => path.clone(),
        };
        match f.stored.get(&(path.clone(), r.stored_offset)) {
            Some(Some(c)) if c.sha256 == sha256 => {}
            Some(Some(_)) => out.error(format!(
                "{}: the kept copy {kept} differs from the bytes received",
                r.name
            )),
            _ => out.error(format!("{}: the kept copy {kept} is missing", r.name)),
        }
    }
    for (sha, names) in applied {
        if names.len() > 1 {
            out.error(format!(
                "the same content was applied {} times ({}; sha256 {sha})",
                names.len(),
                names.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpe::Cpe;
    use crate::filename::TariffCycle;
    use crate::remote::SafeName;
    use chrono::NaiveDate;

    /// A test's sha256, told apart by `tag` (at most 32 bytes).
    fn sha(tag: &str) -> Sha256 {
        let mut bytes = [0u8; 32];
        bytes[..tag.len()].copy_from_slice(tag.as_bytes());
        Sha256::from_bytes(bytes)
    }

    fn sent(id: u64, delivered: bool) -> SentFile {
        SentFile {
            id: id as i64,
            ord: OrdName::parse("e").unwrap(),
            name: format!("000201PEPT0002000123681633GX_20241028_{id:010}.sgl"),
            sha256: sha(&format!("sha{id}")),
            transmission_id: id,
            previous_id: id - 1,
            cpe: Cpe::parse("PT0002000123681633GX").unwrap(),
            supplier: "02".into(),
            tariff: TariffCycle::BiHourlyDaily,
            day: NaiveDate::from_ymd_opt(2024, 10, 27).unwrap(),
            content_hash: sha("h"),
            delivered,
            pack: None,
            pruned: false,
        }
    }

    fn facts(sent: Vec<SentFile>) -> OrdFacts {
        let outbox = sent
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    LocalCopy {
                        size: 10,
                        sha256: s.sha256,
                    },
                )
            })
            .collect();
        let remote = sent
            .iter()
            .filter(|s| s.delivered)
            .map(|s| RemoteEntry {
                name: SafeName::new(&s.name).unwrap(),
                size: 10,
                mtime: 0,
            })
            .collect();
        OrdFacts {
            ord: OrdName::parse("e").unwrap(),
            region: Region::Continent,
            first_transmission_id: 1,
            last_id_taken: sent.last().map(|s| s.transmission_id),
            sent,
            outbox,
            received: Vec::new(),
            stored: BTreeMap::new(),
            remote: Ok(remote),
            remote_leftovers: Vec::new(),
        }
    }

    fn errors(f: &OrdFacts) -> Vec<String> {
        check(f)
            .into_iter()
            .filter(|x| x.severity == Severity::Error)
            .map(|x| x.message)
            .collect()
    }

    #[test]
    fn a_consistent_ledger_has_no_findings() {
        assert_eq!(check(&facts(vec![sent(1, true), sent(2, true)])), vec![]);
    }

    #[test]
    fn a_gap_in_transmission_ids_is_an_error() {
        let e = errors(&facts(vec![sent(1, true), sent(3, true)]));
        assert!(e.iter().any(|m| m.contains("not gap-free")), "{e:?}");
    }

    #[test]
    fn a_file_of_ours_on_the_ord_side_but_not_in_the_ledger_is_an_error() {
        let mut f = facts(vec![sent(1, true)]);
        if let Ok(r) = &mut f.remote {
            r.push(RemoteEntry {
                name: SafeName::new(
                    &"000201PEPT0002000123681633GX_20241028_0000000001.sgl"
                        .replace("01.sgl", "09.sgl"),
                )
                .unwrap(),
                size: 10,
                mtime: 0,
            });
        }
        let e = errors(&f);
        assert!(e.iter().any(|m| m.contains("not in the ledger")), "{e:?}");
    }

    #[test]
    fn a_missing_or_altered_outbox_copy_is_an_error_an_orphan_a_warning() {
        let mut f = facts(vec![sent(1, true), sent(2, true)]);
        f.outbox.remove(&sent(1, true).name);
        if let Some(c) = f.outbox.get_mut(&sent(2, true).name) {
            c.sha256 = sha("other");
        }
        f.outbox.insert(
            "orphan.sgl".into(),
            LocalCopy {
                size: 1,
                sha256: sha("x"),
            },
        );
        let all = check(&f);
        assert_eq!(
            all.iter().filter(|x| x.severity == Severity::Error).count(),
            2,
            "{all:?}"
        );
        assert!(all
            .iter()
            .any(|x| x.severity == Severity::Warning && x.message.contains("orphan.sgl")));
    }

    #[test]
    fn the_same_content_applied_twice_and_a_missing_archive_copy_are_errors() {
        let mut f = facts(vec![]);
        for n in ["a.sgl", "b.sgl"] {
            f.received.push(ReceivedCopy {
                name: n.into(),
                sha256: Some(sha("same")),
                status: ReceivedStatus::Applied,
                stored_path: Some(format!("/archive/{n}")),
                stored_offset: None,
                size: 1,
                diagnostics: "[]".into(),
                pruned: false,
            });
        }
        f.stored.insert(
            ("/archive/a.sgl".into(), None),
            Some(LocalCopy {
                size: 1,
                sha256: sha("same"),
            }),
        );
        f.stored.insert(("/archive/b.sgl".into(), None), None);
        let e = errors(&f);
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn an_archive_pack_slice_is_checked_by_its_offset() {
        let mut f = facts(vec![]);
        for (n, offset) in [("a.sgl", 512), ("b.sgl", 2048), ("c.sgl", 4096)] {
            f.received.push(ReceivedCopy {
                name: n.into(),
                sha256: Some(sha(&format!("sha-{n}"))),
                status: ReceivedStatus::Applied,
                stored_path: Some("/archive/pack-0000000001.tar".into()),
                stored_offset: Some(offset),
                size: 1,
                diagnostics: "[]".into(),
                pruned: false,
            });
        }
        let at = |offset| ("/archive/pack-0000000001.tar".to_string(), Some(offset));
        let copy = |n: &str| {
            Some(LocalCopy {
                size: 1,
                sha256: sha(&format!("sha-{n}")),
            })
        };
        f.stored.insert(at(512), copy("a.sgl"));
        f.stored.insert(at(2048), copy("a.sgl"));
        f.stored.insert(at(4096), None);
        let e = errors(&f);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains(
                "b.sgl: the kept copy /archive/pack-0000000001.tar (at byte 2048) differs"
            ),
            "{e:?}"
        );
        assert!(
            e[1].contains(
                "c.sgl: the kept copy /archive/pack-0000000001.tar (at byte 4096) is missing"
            ),
            "{e:?}"
        );
    }
}
