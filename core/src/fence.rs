//! The fence: before an ORD's send, the ledger's sequence judged against every independent witness of what was already sent (pure).
//!
//! The ledger alone says which transmission ids are used. When it is lost, re-created, restored
//! from an older copy or shared with a second store, it would hand out ids the ORD already has
//! under other names. The witnesses that survive it are: the high-water mark that egme-ord keeps
//! in the outbox (written and synced before a batch that uses ids commits, and again after), the
//! outbox packs (each named after its first id, its members named with their ids), and the ORD's
//! send folder (and the folder the ORD moves our files into, when configured). The shell gathers
//! them ([`Witnesses`]); [`judge`] decides.

use crate::ord_name::OrdName;
use serde::{Deserialize, Serialize};

/// The high-water mark of an ORD's outbox: the ledger that wrote it and the ids it had committed
/// and reserved. `reserved > committed` only between the write before a batch commits and the one
/// after: a crash there leaves exactly that batch's ids reserved and its pack an orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWaterMark {
    pub ledger_id: String,
    pub ord: OrdName,
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

/// The names of a folder as a keyed sum (SipHash-1-3, 128 bits, under a key of the ledger's
/// side): equal digests, the same names (no one who does not hold the key can make two sets of
/// names sum alike). Names are added and taken away one by one, in any order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderDigest {
    key: [u64; 2],
    names: u64,
    sum: [u64; 2],
}

impl FolderDigest {
    pub fn new(key: [u64; 2]) -> FolderDigest {
        FolderDigest {
            key,
            names: 0,
            sum: [0, 0],
        }
    }

    /// The same key, no names.
    pub fn emptied(&self) -> FolderDigest {
        FolderDigest::new(self.key)
    }

    fn of(&self, name: &str) -> u128 {
        use siphasher::sip128::{Hasher128, SipHasher13};
        use std::hash::Hasher;
        let mut h = SipHasher13::new_with_keys(self.key[0], self.key[1]);
        h.write(name.as_bytes());
        h.finish128().as_u128()
    }

    fn total(&self) -> u128 {
        (u128::from(self.sum[0]) << 64) | u128::from(self.sum[1])
    }

    fn set_total(&mut self, total: u128) {
        // The two halves of a u128: the casts keep each half's bits.
        self.sum = [(total >> 64) as u64, total as u64];
    }

    pub fn add(&mut self, name: &str) {
        let total = self.total().wrapping_add(self.of(name));
        self.set_total(total);
        self.names = self.names.wrapping_add(1);
    }

    pub fn remove(&mut self, name: &str) {
        let total = self.total().wrapping_sub(self.of(name));
        self.set_total(total);
        self.names = self.names.wrapping_sub(1);
    }

    /// How many names it holds.
    pub fn names(&self) -> u64 {
        self.names
    }
}

/// An ORD's send folder as the fence last found it agreeing with the ledger, with what the cycle
/// itself put there (and removed) since: kept beside the high-water mark. While a listing of the
/// folder sums to `digest`, every file in it is one the fence or our own puts already checked
/// against this ledger (whose sent rows never change), so the ids at or below `last` need not be
/// compared with the ledger again; anything else (a file added, taken or renamed by anyone, another
/// ledger, a ledger gone back) and the fence compares them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenFolder {
    pub ord: OrdName,
    pub ledger_id: String,
    /// The folder, as the transport describes it.
    pub folder: String,
    /// The ledger's last id when the folder was seen so.
    pub last: u64,
    pub digest: FolderDigest,
}

impl SeenFolder {
    /// Whether this record vouches for a listing of `folder` that sums to `listed`, for the ledger
    /// `ledger_id` of `ord` whose last id is `ledger_last` (a ledger that went back vouches for
    /// nothing).
    pub fn vouches(
        &self,
        (ord, ledger_id): (&OrdName, &str),
        folder: &str,
        ledger_last: u64,
        listed: &FolderDigest,
    ) -> bool {
        &self.ord == ord
            && self.ledger_id == ledger_id
            && self.folder == folder
            && ledger_last >= self.last
            && self.digest == *listed
    }
}

/// The id a name would have if it were one of ours: the digits between its last `_` and the `.`
/// after them (every name [`crate::filename::OrdFileName::parse_ours`] accepts has one; other names may too, which
/// is why an id found so is a candidate only).
pub fn candidate_id(name: &str) -> Option<u64> {
    let (_, tail) = name.rsplit_once('_')?;
    let (digits, _) = tail.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Everything the fence looks at for one ORD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnesses {
    pub ord: OrdName,
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
            ord: OrdName::parse("eda").unwrap(),
            committed,
            reserved,
        })
    }

    fn witnesses(ledger_last: Option<u64>, mark: MarkFact) -> Witnesses {
        Witnesses {
            ord: OrdName::parse("eda").unwrap(),
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
    fn a_folder_digest_is_its_names_in_any_order_and_nothing_else() {
        let key = [7, 11];
        let mut a = FolderDigest::new(key);
        let mut b = FolderDigest::new(key);
        for n in ["x.sgl", "y.sgl", "z.sgl"] {
            a.add(n);
        }
        for n in ["z.sgl", "x.sgl", "w.sgl", "y.sgl"] {
            b.add(n);
        }
        assert_ne!(a, b);
        b.remove("w.sgl");
        assert_eq!(a, b);
        assert_eq!(a.names(), 3);
        // A name renamed, or the same names under another key: another digest.
        let mut c = a;
        c.remove("y.sgl");
        c.add("Y.sgl");
        assert_ne!(a, c);
        let mut d = FolderDigest::new([7, 12]);
        for n in ["x.sgl", "y.sgl", "z.sgl"] {
            d.add(n);
        }
        assert_ne!(a, d);
        assert_eq!(a.emptied(), FolderDigest::new(key));
    }

    #[test]
    fn a_seen_folder_vouches_only_for_the_same_names_ledger_and_folder_and_no_ledger_gone_back() {
        let mut digest = FolderDigest::new([1, 2]);
        digest.add("a.sgl");
        let seen = SeenFolder {
            ord: OrdName::parse("e-redes").unwrap(),
            ledger_id: "L1".into(),
            folder: "sftp://x/out".into(),
            last: 100,
            digest,
        };
        let (e_redes, eda) = (
            OrdName::parse("e-redes").unwrap(),
            OrdName::parse("eda").unwrap(),
        );
        let at = (&e_redes, "L1");
        assert!(seen.vouches(at, "sftp://x/out", 100, &digest));
        assert!(seen.vouches(at, "sftp://x/out", 120, &digest));
        assert!(!seen.vouches(at, "sftp://x/out", 99, &digest));
        assert!(!seen.vouches((&e_redes, "L2"), "sftp://x/out", 100, &digest));
        assert!(!seen.vouches((&eda, "L1"), "sftp://x/out", 100, &digest));
        assert!(!seen.vouches(at, "sftp://x/other", 100, &digest));
        let mut more = digest;
        more.add("b.sgl");
        assert!(!seen.vouches(at, "sftp://x/out", 100, &more));
    }

    #[test]
    fn every_name_of_ours_has_its_id_as_a_candidate() {
        use crate::cpe::Cpe;
        use crate::filename::{OrdFileName, TariffCycle};
        use crate::region::Region;
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2024, 11, 5).unwrap();
        for id in [0, 1, 9_999_999_999, 123_456_789_012_345_678] {
            for region in [Region::Continent, Region::Madeira] {
                let supplier = if region == Region::Madeira {
                    "ABCD"
                } else {
                    "02"
                };
                let name = OrdFileName::outbound(
                    region,
                    supplier,
                    TariffCycle::BiHourlyDaily,
                    cpe,
                    day,
                    id,
                )
                .to_string();
                assert_eq!(
                    OrdFileName::parse_ours(&name, region).map(|n| n.ntransm.value),
                    Ok(id),
                    "{name}"
                );
                assert_eq!(candidate_id(&name), Some(id), "{name}");
            }
        }
        for not in [
            "a.sgl",
            "a_.sgl",
            "a_12",
            "a_1x.sgl",
            "a_99999999999999999999999.sgl",
        ] {
            assert_eq!(candidate_id(not), None, "{not}");
        }
        assert_eq!(candidate_id("notours_42.csv"), Some(42));
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
