//! The fence: before an ORD's send, the ledger's sequence judged against every independent witness of what was already sent (pure).
//!
//! The ledger alone says which transmission ids are used. When it is lost, re-created, restored
//! from an older copy or shared with a second store, it would hand out ids the ORD already has
//! under other names. The witnesses that survive it are: the high-water mark that egme-ord keeps
//! in the outbox (written and synced before a batch that uses ids commits, and again after), the
//! outbox packs (each named after its first id, its members named with their ids), and the ORD's
//! send folder (and the folder the ORD moves our files into, when configured). The shell gathers
//! them ([`Witnesses`]); [`judge`] decides.

use serde::{Deserialize, Serialize};

/// The high-water mark of an ORD's outbox: the ledger that wrote it and the ids it had committed
/// and reserved. `reserved > committed` only between the write before a batch commits and the one
/// after: a crash there leaves exactly that batch's ids reserved and its pack an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWaterMark {
    pub ledger_id: String,
    pub ord: String,
    /// The last id of a batch that committed (0: none).
    pub committed: u64,
    /// The last id written to the outbox (at least `committed`).
    pub reserved: u64,
}

/// What the outbox's high-water mark file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkFact {
    /// There is none (a new outbox, or a workspace from before the mark).
    Absent,
    /// It could not be read or parsed (the detail says why).
    Unreadable(String),
    Present(HighWaterMark),
}

/// One outbox pack: its name and the ids of its first and last member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFacts {
    pub name: String,
    pub first_id: u64,
    pub last_id: u64,
}

/// One of our files seen in an ORD folder, with its transmission id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFact {
    /// The folder, as the transport describes it.
    pub folder: String,
    pub name: String,
    pub id: u64,
    /// For an id the ledger has used: the name it recorded for it (`None`: no row for that id).
    pub ledger_name: Option<String>,
}

impl RemoteFact {
    /// Whether this file can disagree with a ledger whose last id is `last` (`first_id`: the
    /// ORD's configured first id): one of ours (not below the first id) that is ahead of the
    /// ledger or under another name than the ledger recorded for its id. A file that agrees is
    /// no evidence: the fence need not keep it (a send folder nobody empties holds every file
    /// ever sent).
    pub fn disagrees(&self, last: u64, first_id: u64) -> bool {
        disagrees(
            self.id,
            &self.name,
            self.ledger_name.as_deref(),
            (last, first_id),
        )
    }
}

/// [`RemoteFact::disagrees`] of a file named `name` with id `id`, whose id the ledger recorded
/// under `ledger_name`, against `(last, first_id)`: decided before any fact is built.
pub fn disagrees(
    id: u64,
    name: &str,
    ledger_name: Option<&str>,
    (last, first_id): (u64, u64),
) -> bool {
    id >= first_id && (id > last || ledger_name != Some(name))
}

/// Everything the fence looks at for one ORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnesses {
    pub ord: String,
    pub ledger_id: String,
    /// The last id the ledger took for this ORD (`None`: none yet).
    pub ledger_last: Option<u64>,
    /// The ORD's first transmission id (configuration).
    pub first_id: u64,
    pub mark: MarkFact,
    /// Outbox packs whose last id is above the ledger's, plus the newest one at or below it.
    pub packs: Vec<PackFacts>,
    /// Our files in the ORD's folders.
    pub remote: Vec<RemoteFact>,
}

/// A witness that disagrees with the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    MarkAhead { committed: u64 },
    MarkOfOtherLedger { mark_ledger: String },
    MarkUnreadable { detail: String },
    PackUnknown { pack: PackFacts },
    RemoteAhead { file: RemoteFact },
    RemoteRenamed { file: RemoteFact },
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::MarkAhead { committed } => write!(
                f,
                "the outbox's high-water mark says ids up to {committed} were committed"
            ),
            Evidence::MarkOfOtherLedger { mark_ledger } => write!(
                f,
                "the outbox's high-water mark was written by another ledger ({mark_ledger})"
            ),
            Evidence::MarkUnreadable { detail } => {
                write!(f, "the outbox's high-water mark cannot be read ({detail})")
            }
            Evidence::PackUnknown { pack } => write!(
                f,
                "outbox pack {} holds ids {}..={} that the ledger does not know",
                pack.name, pack.first_id, pack.last_id
            ),
            Evidence::RemoteAhead { file } => write!(
                f,
                "{} holds {} (id {}), an id the ledger has not used yet",
                file.folder, file.name, file.id
            ),
            Evidence::RemoteRenamed { file } => match &file.ledger_name {
                Some(ours) => write!(
                    f,
                    "{} holds {} under id {}, which the ledger recorded as {ours}",
                    file.folder, file.name, file.id
                ),
                None => write!(
                    f,
                    "{} holds {} under id {}, which the ledger has no record of",
                    file.folder, file.name, file.id
                ),
            },
        }
    }
}

/// What the fence decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Safe to send. `orphan`: the pack of a batch that a crash rolled back (its ids are reserved
    /// by the mark but not committed, and no ORD folder has them): kept aside, never overwritten.
    Clear { orphan: Option<String> },
    /// Not safe: the ids the ledger would use next may already be used.
    Refuse(Vec<Evidence>),
}

/// Judges the ledger against the witnesses.
pub fn judge(w: &Witnesses) -> Verdict {
    let last = w.ledger_last.unwrap_or(w.first_id.saturating_sub(1));
    let mut evidence = Vec::new();
    // The ids a crash may have left reserved but not committed: (last, reserved].
    let mut reserved_orphan_up_to = None;
    match &w.mark {
        MarkFact::Absent => {}
        MarkFact::Unreadable(detail) => evidence.push(Evidence::MarkUnreadable {
            detail: detail.clone(),
        }),
        MarkFact::Present(m) if m.ledger_id != w.ledger_id => {
            evidence.push(Evidence::MarkOfOtherLedger {
                mark_ledger: m.ledger_id.clone(),
            })
        }
        MarkFact::Present(m) if m.committed > last => evidence.push(Evidence::MarkAhead {
            committed: m.committed,
        }),
        MarkFact::Present(m) => {
            if m.reserved > last && m.committed == last {
                reserved_orphan_up_to = Some(m.reserved);
            }
        }
    }
    let mut orphan = None;
    for p in &w.packs {
        if p.last_id <= last {
            continue;
        }
        let is_orphan =
            p.first_id == last + 1 && reserved_orphan_up_to.is_some_and(|up_to| p.last_id <= up_to);
        if is_orphan {
            orphan = Some(p.name.clone());
        } else {
            evidence.push(Evidence::PackUnknown { pack: p.clone() });
        }
    }
    // Below the configured first id: not ours (a system before egme-ord).
    for r in w.remote.iter().filter(|r| r.disagrees(last, w.first_id)) {
        if r.id > last {
            evidence.push(Evidence::RemoteAhead { file: r.clone() });
        } else {
            evidence.push(Evidence::RemoteRenamed { file: r.clone() });
        }
    }
    if evidence.is_empty() {
        Verdict::Clear { orphan }
    } else {
        Verdict::Refuse(evidence)
    }
}

/// The operator's message for a refusal: what the ledger says, each witness that disagrees (the
/// files of one folder summed up: how many, which ids, one example), and what recovers.
pub fn refusal_message(w: &Witnesses, evidence: &[Evidence]) -> String {
    use std::collections::BTreeMap;
    let last = match w.ledger_last {
        Some(n) => format!("its last transmission id is {n}"),
        None => "it has used no transmission id yet".to_string(),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut packs: Vec<&PackFacts> = Vec::new();
    // folder → (ids, an example) for files ahead, and for files under another name.
    let mut ahead: BTreeMap<&str, (Vec<u64>, &RemoteFact)> = BTreeMap::new();
    let mut renamed: BTreeMap<&str, (Vec<u64>, &RemoteFact)> = BTreeMap::new();
    for e in evidence {
        match e {
            Evidence::PackUnknown { pack } => packs.push(pack),
            Evidence::RemoteAhead { file } => ahead
                .entry(&file.folder)
                .or_insert((Vec::new(), file))
                .0
                .push(file.id),
            Evidence::RemoteRenamed { file } => renamed
                .entry(&file.folder)
                .or_insert((Vec::new(), file))
                .0
                .push(file.id),
            other => lines.push(other.to_string()),
        }
    }
    if !packs.is_empty() {
        let first = packs.iter().map(|p| p.first_id).min().unwrap_or(0);
        let last = packs.iter().map(|p| p.last_id).max().unwrap_or(0);
        lines.push(format!(
            "{} outbox pack(s) hold ids the ledger does not know ({first}..={last}; {})",
            packs.len(),
            packs[0].name
        ));
    }
    let span = |ids: &[u64]| {
        let (lo, hi) = (
            ids.iter().min().copied().unwrap_or(0),
            ids.iter().max().copied().unwrap_or(0),
        );
        format!("{} of our file(s), ids {lo}..={hi},", ids.len())
    };
    for (folder, (ids, example)) in &ahead {
        lines.push(format!(
            "{folder} holds {} that the ledger has not used yet (e.g. {})",
            span(ids),
            example.name
        ));
    }
    for (folder, (ids, example)) in &renamed {
        lines.push(format!(
            "{folder} holds {} under names the ledger does not have for them (e.g. {})",
            span(ids),
            Evidence::RemoteRenamed {
                file: (*example).clone()
            }
        ));
    }
    format!(
        "{ord}: sending refused: the ledger {ledger} may be lost, restored from an older copy or shared with another store: {last}, but {list}. Nothing is sent for {ord} until this is resolved: stop egme-ord, then run `egme-ord recover --config FILE --ord {ord}` (docs/OPERATIONS.md)",
        ord = w.ord,
        ledger = w.ledger_id,
        list = lines.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(committed: u64, reserved: u64) -> MarkFact {
        MarkFact::Present(HighWaterMark {
            ledger_id: "a".repeat(32),
            ord: "eda".into(),
            committed,
            reserved,
        })
    }

    fn witnesses(ledger_last: Option<u64>, mark: MarkFact) -> Witnesses {
        Witnesses {
            ord: "eda".into(),
            ledger_id: "a".repeat(32),
            ledger_last,
            first_id: 1,
            mark,
            packs: Vec::new(),
            remote: Vec::new(),
        }
    }

    fn pack(first_id: u64, last_id: u64) -> PackFacts {
        PackFacts {
            name: format!("pack-{first_id:010}.tar.zst"),
            first_id,
            last_id,
        }
    }

    fn remote(id: u64, name: &str, ledger_name: Option<&str>) -> RemoteFact {
        RemoteFact {
            folder: "to-ord".into(),
            name: name.into(),
            id,
            ledger_name: ledger_name.map(String::from),
        }
    }

    #[test]
    fn a_ledger_that_agrees_with_every_witness_is_clear() {
        let mut w = witnesses(Some(36), mark(36, 36));
        w.packs = vec![pack(1, 36)];
        w.remote = vec![remote(36, "F36", Some("F36"))];
        assert_eq!(judge(&w), Verdict::Clear { orphan: None });
        assert_eq!(
            judge(&witnesses(None, MarkFact::Absent)),
            Verdict::Clear { orphan: None }
        );
    }

    #[test]
    fn a_deleted_ledger_is_refused_by_the_mark_the_packs_and_the_ord_folder() {
        let mut w = witnesses(None, mark(36, 36));
        w.ledger_id = "b".repeat(32);
        w.packs = vec![pack(1, 36)];
        w.remote = vec![remote(1, "F1", None)];
        let Verdict::Refuse(evidence) = judge(&w) else {
            panic!("must refuse")
        };
        assert_eq!(evidence.len(), 3, "{evidence:?}");
        let text = refusal_message(&w, &evidence);
        assert!(text.contains("egme-ord recover") && text.contains("pack-0000000001.tar.zst"));
    }

    #[test]
    fn an_older_copy_of_the_same_ledger_is_refused_by_its_own_mark() {
        let mut w = witnesses(Some(20), mark(36, 36));
        w.packs = vec![pack(1, 20), pack(21, 36)];
        let Verdict::Refuse(evidence) = judge(&w) else {
            panic!("must refuse")
        };
        assert!(evidence.contains(&Evidence::MarkAhead { committed: 36 }));
        assert!(evidence.contains(&Evidence::PackUnknown { pack: pack(21, 36) }));
    }

    #[test]
    fn the_pack_of_a_batch_a_crash_rolled_back_is_an_orphan_not_evidence() {
        let mut w = witnesses(Some(20), mark(20, 36));
        w.packs = vec![pack(1, 20), pack(21, 36)];
        assert_eq!(
            judge(&w),
            Verdict::Clear {
                orphan: Some(pack(21, 36).name)
            }
        );
        // ...unless the ORD already has one of its ids.
        w.remote = vec![remote(21, "F21", None)];
        assert!(matches!(judge(&w), Verdict::Refuse(_)));
        // ...or it does not start right after the ledger's last id.
        w.remote.clear();
        w.packs = vec![pack(22, 36)];
        assert!(matches!(judge(&w), Verdict::Refuse(_)));
    }

    #[test]
    fn an_id_at_the_ord_under_another_name_than_the_ledgers_is_refused() {
        let mut w = witnesses(Some(36), mark(36, 36));
        w.remote = vec![remote(7, "OTHER7", Some("F7"))];
        assert!(
            matches!(judge(&w), Verdict::Refuse(e) if matches!(e[0], Evidence::RemoteRenamed { .. }))
        );
    }

    #[test]
    fn an_unreadable_mark_or_one_of_another_ledger_is_refused() {
        let w = witnesses(Some(36), MarkFact::Unreadable("not JSON".into()));
        assert!(matches!(judge(&w), Verdict::Refuse(_)));
        let mut w = witnesses(Some(36), mark(36, 36));
        w.ledger_id = "c".repeat(32);
        assert!(matches!(judge(&w), Verdict::Refuse(_)));
    }

    #[test]
    fn the_first_id_of_the_configuration_counts_as_the_start() {
        let mut w = witnesses(None, MarkFact::Absent);
        w.first_id = 500;
        // Below the first id: a file of the system before egme-ord, not evidence.
        w.remote = vec![remote(499, "F499", None)];
        assert_eq!(judge(&w), Verdict::Clear { orphan: None });
        w.remote = vec![remote(500, "F500", None)];
        assert!(matches!(judge(&w), Verdict::Refuse(_)));
    }

    #[test]
    fn only_a_file_ahead_of_the_ledger_or_under_another_name_can_disagree() {
        let (last, first) = (100, 10);
        let name = "000201PEPT0002000123681633GX_20241029_0000000042.sgl";
        assert!(
            !disagrees(42, name, Some(name), (last, first)),
            "agrees: not kept"
        );
        assert!(
            disagrees(42, name, Some("other.sgl"), (last, first)),
            "renamed"
        );
        assert!(
            disagrees(42, name, None, (last, first)),
            "an id the ledger has no row for"
        );
        assert!(disagrees(101, name, None, (last, first)), "ahead");
        assert!(
            !disagrees(9, name, None, (last, first)),
            "below the first id: not ours"
        );
    }
}
