//! What the ledger records of the files exchanged, as plain values: sent files, received copies, their outcomes, and where their bytes are kept (packs).

use chrono::NaiveDate;

use crate::cpe::Cpe;
use crate::filename::TariffCycle;
use serde::Serialize;

/// How a pack's name ends: a zstd-compressed tar (`tar --zstd -tvf` lists it).
pub const PACK_SUFFIX: &str = ".tar.zst";

/// How the name of a pack written before packs were compressed ends (still read).
pub const PLAIN_PACK_SUFFIX: &str = ".tar";

/// Where a file's bytes are: `len` bytes at `offset` in the pack named `pack`. The offset is the
/// one `tar` sees: in the uncompressed tar stream, also for a compressed pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackSlice {
    pub pack: String,
    pub offset: u64,
    pub len: u64,
}

/// The name of the pack of the batch whose first id is `first_id`.
pub fn pack_name(first_id: u64) -> String {
    format!("pack-{first_id:010}{PACK_SUFFIX}")
}

/// Whether `name` is the name of a pack (compressed, or plain from before).
pub fn is_pack_name(name: &str) -> bool {
    name.ends_with(PACK_SUFFIX) || name.ends_with(PLAIN_PACK_SUFFIX)
}

/// The name without its pack suffix (`pack-0000000101.tar.zst` → `pack-0000000101`).
pub fn pack_stem(name: &str) -> Option<&str> {
    name.strip_suffix(PACK_SUFFIX)
        .or_else(|| name.strip_suffix(PLAIN_PACK_SUFFIX))
}

/// The first id in a pack's name (`pack-0000000101.tar.zst` or `.tar` → 101), if it is one.
pub fn pack_first_id(name: &str) -> Option<u64> {
    let digits = pack_stem(name)?.strip_prefix("pack-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The outcome of receiving one inbound file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceivedStatus {
    /// Valid and newer than what was held: in force.
    Applied,
    /// Byte-identical to a file received before: nothing to do.
    Duplicate,
    /// Valid but older than the version held: archived, not applied.
    Stale,
    /// Invalid: quarantined with its diagnostics.
    Rejected,
    /// Valid but for a closed day: archived and reported.
    Late,
}

impl ReceivedStatus {
    pub const ALL: [ReceivedStatus; 5] = [
        ReceivedStatus::Applied,
        ReceivedStatus::Duplicate,
        ReceivedStatus::Stale,
        ReceivedStatus::Rejected,
        ReceivedStatus::Late,
    ];

    /// The status written as `as_str` gives it, or `None`.
    pub fn from_code(code: &str) -> Option<ReceivedStatus> {
        ReceivedStatus::ALL.into_iter().find(|s| s.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReceivedStatus::Applied => "applied",
            ReceivedStatus::Duplicate => "duplicate",
            ReceivedStatus::Stale => "stale",
            ReceivedStatus::Rejected => "rejected",
            ReceivedStatus::Late => "late",
        }
    }
}

/// The outcome of receiving one mobility file (CDRs, readings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MobilityFileStatus {
    /// Every record read (each then applied, stale or late).
    Applied,
    /// Some records refused (listed in the quarantine), the others read.
    PartlyRejected,
    /// The whole file refused: quarantined.
    Rejected,
}

impl MobilityFileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MobilityFileStatus::Applied => "applied",
            MobilityFileStatus::PartlyRejected => "partly-rejected",
            MobilityFileStatus::Rejected => "rejected",
        }
    }
}

/// A file we wrote for an ORD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentFile {
    pub id: i64,
    pub ord: String,
    pub name: String,
    pub sha256: String,
    pub transmission_id: u64,
    pub previous_id: u64,
    pub cpe: Cpe,
    /// The supplier's code in the file name (`GALP`, `MOBI`, …).
    pub supplier: String,
    pub tariff: TariffCycle,
    pub day: NaiveDate,
    pub content_hash: String,
    pub delivered: bool,
    /// Where its bytes are in the outbox (`None`: a file of its own, written before packs).
    pub pack: Option<PackSlice>,
    /// Its outbox copy was pruned (retention): the ledger keeps its name, id and sha256.
    pub pruned: bool,
}

/// A received file as the ledger remembers it: where its copy is and what its bytes hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedCopy {
    pub name: String,
    pub sha256: String,
    pub status: ReceivedStatus,
    /// Archive or quarantine path; empty when nothing was kept (a duplicate, an unreadable name).
    pub stored_path: String,
    /// Where the bytes start in `stored_path` when it is an archive pack (`size` bytes from there).
    pub stored_offset: Option<u64>,
    pub size: u64,
    /// The diagnostics as JSON (codes, lines, messages).
    pub diagnostics: String,
    /// Its kept copy was pruned (retention): the ledger keeps its name, size and sha256.
    pub pruned: bool,
}
