//! What the ledger records of the files exchanged, as plain values: sent files, received copies, their outcomes, and where their bytes are kept (packs).

use crate::ord_name::OrdName;
use chrono::NaiveDate;

use crate::cpe::Cpe;
use crate::filename::{OrdFileName, TariffCycle};
use crate::region::Region;
use crate::sha256::Sha256;
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

/// A pack's name as the ledger keeps it: the first id of a [`pack_name`] (`pack-0000000101.tar.zst`
/// → 101); `None` for any other name (a plain `.tar` from before compression), kept as text.
pub fn pack_code(name: &str) -> Option<u64> {
    pack_first_id(name).filter(|&id| id > 0 && pack_name(id) == name)
}

/// The name of a file egme-ord sends: `00{CSE}{tariff}PE{CPE}_{generated}_{id:010}.sgl` for a
/// mainland supplier code (two digits), `{CEME}{tariff}PE…` for an island one (four letters).
pub fn outbound_name(
    supplier: &str,
    tariff: TariffCycle,
    cpe: Cpe,
    generated: NaiveDate,
    id: u64,
) -> String {
    let region = if supplier.len() == 4 && supplier.bytes().all(|b| b.is_ascii_uppercase()) {
        Region::Madeira
    } else {
        Region::Continent
    };
    OrdFileName::outbound(region, supplier, tariff, cpe, generated, id).to_string()
}

/// A sent file's name as the ledger keeps it: the days from its consumption `day` to the date
/// the name was generated, when the name is exactly [`outbound_name`] of the row's own columns
/// (one small number instead of 52 characters, on rows kept forever); `None` for any other
/// name, which the ledger keeps as text.
pub fn name_offset(
    name: &str,
    supplier: &str,
    tariff: TariffCycle,
    cpe: Cpe,
    (day, id): (NaiveDate, u64),
) -> Option<i64> {
    let date = name.split('_').nth(1)?;
    let generated = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    (outbound_name(supplier, tariff, cpe, generated, id) == name)
        .then(|| (generated - day).num_days())
}

/// The name a [`name_offset`] stands for, given the row's columns.
pub fn name_of_offset(
    offset: i64,
    supplier: &str,
    tariff: TariffCycle,
    cpe: Cpe,
    (day, id): (NaiveDate, u64),
) -> Option<String> {
    let generated = day.checked_add_signed(chrono::TimeDelta::try_days(offset)?)?;
    Some(outbound_name(supplier, tariff, cpe, generated, id))
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
    pub ord: OrdName,
    pub name: String,
    pub sha256: Sha256,
    pub transmission_id: u64,
    pub previous_id: u64,
    pub cpe: Cpe,
    /// The supplier's code in the file name (`GALP`, `MOBI`, …).
    pub supplier: String,
    pub tariff: TariffCycle,
    pub day: NaiveDate,
    /// The sha256 of what the file says (its values, not its header): equal for a file sent again.
    pub content_hash: Sha256,
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
    /// `None`: its bytes were never read (a name refused before, a file that vanished).
    pub sha256: Option<Sha256>,
    pub status: ReceivedStatus,
    /// Archive or quarantine path; `None` when nothing was kept (a duplicate, an unreadable name).
    pub stored_path: Option<String>,
    /// Where the bytes start in `stored_path` when it is an archive pack (`size` bytes from there).
    pub stored_offset: Option<u64>,
    pub size: u64,
    /// The diagnostics as JSON (codes, lines, messages).
    pub diagnostics: String,
    /// Its kept copy was pruned (retention): the ledger keeps its name, size and sha256.
    pub pruned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 11, 4).unwrap()
    }

    #[test]
    fn a_sent_name_is_kept_as_its_date_offset_and_given_back_whole() {
        let cpe = Cpe::from_parts(2, 600_000_000).unwrap();
        let name = "000201PEPT0002000600000000ES_20241105_0000000001.sgl";
        let t = TariffCycle::BiHourlyDaily;
        assert_eq!(
            outbound_name("02", t, cpe, day().succ_opt().unwrap(), 1),
            name
        );
        assert_eq!(name_offset(name, "02", t, cpe, (day(), 1)), Some(1));
        assert_eq!(
            name_of_offset(1, "02", t, cpe, (day(), 1)).as_deref(),
            Some(name)
        );
        // Anything else stays text: another id, supplier or CPE than the row's, a .txt.
        assert_eq!(name_offset(name, "02", t, cpe, (day(), 2)), None);
        assert_eq!(name_offset(name, "05", t, cpe, (day(), 1)), None);
        assert_eq!(
            name_offset(&name.replace(".sgl", ".txt"), "02", t, cpe, (day(), 1)),
            None
        );
        assert_eq!(name_offset("legacy.sgl", "02", t, cpe, (day(), 1)), None);
        let island = outbound_name("GALP", t, cpe, day(), 7);
        assert!(island.starts_with("GALP01PE"), "{island}");
        assert_eq!(name_offset(&island, "GALP", t, cpe, (day(), 7)), Some(0));
    }

    #[test]
    fn a_pack_name_is_kept_as_its_first_id_and_given_back_whole() {
        assert_eq!(pack_code("pack-0000000101.tar.zst"), Some(101));
        assert_eq!(pack_name(101), "pack-0000000101.tar.zst");
        for other in [
            "pack-0000000101.tar",
            "pack-0000000000.tar.zst",
            "pack-101.tar.zst",
            "files.tar",
        ] {
            assert_eq!(pack_code(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn every_kept_name_and_pack_gives_back_exactly_what_was_kept(
            letters in proptest::bool::ANY,
            code in 0u8..100,
            tariff in 1u8..5,
            number in 0u64..999_999_999_999,
            offset in 0i64..40,
            id in 1u64..9_999_999_999,
        ) {
            let supplier = if letters { "EDPC".to_string() } else { format!("{code:02}") };
            let tariff = TariffCycle::from_code(&format!("{tariff:02}")).unwrap();
            let cpe = Cpe::from_parts(2, number).unwrap();
            let generated = day() + chrono::TimeDelta::days(offset);
            let name = outbound_name(&supplier, tariff, cpe, generated, id);
            let kept = name_offset(&name, &supplier, tariff, cpe, (day(), id));
            prop_assert_eq!(kept, Some(offset));
            prop_assert_eq!(name_of_offset(offset, &supplier, tariff, cpe, (day(), id)), Some(name));
            prop_assert_eq!(pack_code(&pack_name(id)), Some(id));
        }
    }
}
