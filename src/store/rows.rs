//! Each row type of the ledger read once, in one place: its columns, typed, its checksum checked.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;
use serde::Serialize;

use super::sql::{
    check_sum, opt_text, text, Col, Column, FromRow, PackName, Packed, ReceivedSha, RowError,
};
use egme_ord_core::cpe::Cpe;
use egme_ord_core::event::{EventKind, EventLevel};
use egme_ord_core::filename::TariffCycle;
use egme_ord_core::ledger::{PackSlice, ReceivedCopy, ReceivedStatus, SentFile};
use egme_ord_core::mobility::{CemeId, Place, QuarterEnergy};
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::planner::DayState;
use egme_ord_core::profile::DayProfile;
use egme_ord_core::sha256::Sha256;

/// One received file, as recorded.
#[derive(Debug, Clone)]
pub struct ReceivedFile {
    pub ord: OrdName,
    pub name: String,
    pub size: u64,
    pub mtime: i64,
    /// `None`: its bytes were never read (a name refused before, a file that vanished).
    pub sha256: Option<Sha256>,
    pub status: ReceivedStatus,
    pub diagnostics: String,
    pub cpe: Option<Cpe>,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub transmission_id: Option<u64>,
    pub previous_id: Option<u64>,
    pub ntransm: Option<u64>,
    pub received_at: DateTime<Utc>,
    /// Where its bytes are kept (archive pack, quarantine); `None`: nothing was kept (a duplicate,
    /// a name refused before it was read).
    pub stored_path: Option<String>,
    /// Where the bytes start in `stored_path` when it is an archive pack (`size` bytes from there);
    /// `None`: `stored_path` is a file of its own.
    pub stored_offset: Option<u64>,
}

/// The ORD version in force for a CPE-day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileVersion {
    pub transmission_id: u64,
    pub ntransm: u64,
    pub received_at: DateTime<Utc>,
}

/// A mobility record as stored (mapped to its ORD and CPE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMobility {
    pub key: String,
    pub last_updated: DateTime<Utc>,
    pub ord: OrdName,
    pub cpe: Cpe,
    pub ceme: CemeId,
    pub credit_of: Option<String>,
    pub energy: Vec<QuarterEnergy>,
    pub source: String,
    /// Where the session happened, as its input said (`None`: a row from before version 19):
    /// the CPE and ORD are decided again from it when the registry changes.
    pub place: Option<Place>,
}

/// What `status` shows per ORD and day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayStatus {
    pub day: NaiveDate,
    pub state: DayState,
    pub cpes_with_ord_data: u64,
    pub latest_ord_transmission: Option<u64>,
    pub files_sent: u64,
    pub files_pending: u64,
    pub anomalies: u64,
    /// ORD files for this day received after it closed: archived, not applied.
    pub late_ord_files: u64,
}

/// A file of an ORD that could not be read, as the ledger counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    pub name: String,
    /// Cycles in a row in which it could not be read.
    pub failures: u32,
    pub first_at: String,
    pub last_error: String,
}

/// A row's checksum: CRC-32 of its fields, each length-prefixed (a missing value has its own
/// prefix), after the table's name.
pub(super) struct RowSum(crc32fast::Hasher);

impl RowSum {
    pub(super) fn new(table: &str) -> RowSum {
        let mut h = crc32fast::Hasher::new();
        h.update(table.as_bytes());
        RowSum(h)
    }
    pub(super) fn text(mut self, v: &str) -> RowSum {
        self.0.update(&(v.len() as u64).to_le_bytes());
        self.0.update(v.as_bytes());
        self
    }
    pub(super) fn int(mut self, v: i64) -> RowSum {
        self.0.update(&8u64.to_le_bytes());
        self.0.update(&v.to_le_bytes());
        self
    }
    pub(super) fn opt_text(self, v: Option<&str>) -> RowSum {
        match v {
            Some(v) => self.text(v),
            None => self.none(),
        }
    }
    pub(super) fn opt_int(self, v: Option<i64>) -> RowSum {
        match v {
            Some(v) => self.int(v),
            None => self.none(),
        }
    }
    pub(super) fn none(mut self) -> RowSum {
        self.0.update(&u64::MAX.to_le_bytes());
        self
    }
    pub(super) fn finish(self) -> i64 {
        i64::from(self.0.finalize())
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn sent_sum(
    ord: &str,
    name: &str,
    sha256: &str,
    (tid, prev): (i64, i64),
    (cpe, supplier, tariff): (&str, &str, &str),
    day: &str,
    content_hash: &str,
    (pack, offset, len): (Option<&str>, Option<i64>, Option<i64>),
) -> i64 {
    RowSum::new("sent_files")
        .text(ord)
        .text(name)
        .text(sha256)
        .int(tid)
        .int(prev)
        .text(cpe)
        .text(supplier)
        .text(tariff)
        .text(day)
        .text(content_hash)
        .opt_text(pack)
        .opt_int(offset)
        .opt_int(len)
        .finish()
}

pub(super) fn profile_sum(
    ord: &str,
    cpe: &str,
    day: &str,
    tid: i64,
    ntransm: i64,
    readings: &str,
) -> i64 {
    RowSum::new("ord_profiles")
        .text(ord)
        .text(cpe)
        .text(day)
        .int(tid)
        .int(ntransm)
        .text(readings)
        .finish()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn mobility_sum(
    key: &str,
    last_updated: &str,
    ord: &str,
    cpe: &str,
    ceme: &str,
    credit_of: Option<&str>,
    energy: &str,
    place: Option<&str>,
) -> i64 {
    let sum = RowSum::new("mobility_records")
        .text(key)
        .text(last_updated)
        .text(ord)
        .text(cpe)
        .text(ceme)
        .opt_text(credit_of)
        .text(energy);
    // Rows from before version 19 have no place: their checksums stay what they were.
    match place {
        Some(place) => sum.text(place).finish(),
        None => sum.finish(),
    }
}

pub(super) fn sequence_sum(ord: &str, last_id: i64) -> i64 {
    RowSum::new("sequences").text(ord).int(last_id).finish()
}

/// An ORD's last cycle, for `status`.
/// What the server of an ORD's send folder lacks that weakens a promise, in words for the
/// operator, and when that was first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ServerWeakness {
    pub since: DateTime<Utc>,
    pub lacks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrdCycle {
    pub at: DateTime<Utc>,
    /// Its errors, `; `-joined (empty: it succeeded).
    pub errors: String,
    pub backoff_until: Option<DateTime<Utc>>,
}

/// Which events `list_events` gives.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub ord: Option<OrdName>,
    pub kind: Option<EventKind>,
    pub since: Option<DateTime<Utc>>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub ord: Option<OrdName>,
    /// The kind's name; an unknown name (from a newer version) is kept as it is.
    pub kind: String,
    pub level: Option<EventLevel>,
    pub detail: String,
}

/// What the outbox writer reports back to `record_outbound`.
#[derive(Debug, Clone)]
pub struct OutboundWrite {
    pub name: String,
    pub sha256: Sha256,
    pub cpe: Cpe,
    pub supplier: String,
    pub tariff: TariffCycle,
    pub day: NaiveDate,
    pub content_hash: Sha256,
    pub at: DateTime<Utc>,
    /// Where the bytes are in the outbox.
    pub pack: Option<PackSlice>,
}

/// The columns `SentFile::from_row` reads, in its order.
pub(super) const SENT_COLUMNS: &str =
    "ord, id, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash,
    delivered_at, pack, pack_offset, pack_len, row_sum, pruned_at";

/// A sent file's name from its `name` column: the text, or — a one-byte BLOB — the date offset of
/// a name that is exactly `ledger::outbound_name` of the row's own columns (schema 13), given back
/// whole. (A BLOB: the column's TEXT affinity would turn a number into text.)
pub(super) fn sent_name(
    value: rusqlite::types::ValueRef<'_>,
    supplier: &str,
    tariff: &str,
    cpe: Cpe,
    (day, id): (NaiveDate, i64),
) -> Result<String, RowError> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map_err(|e| RowError::Damaged(format!("sent file name: {e}"))),
        ValueRef::Blob(&[offset]) => {
            let offset = i64::from(offset);
            let parts = (TariffCycle::from_text(tariff), u64::try_from(id).ok());
            let (Some(tariff), Some(id)) = parts else {
                return Err(RowError::Damaged(format!(
                    "sent file {id} of {cpe} on {day}: its name cannot be rebuilt from its columns"
                )));
            };
            egme_ord_core::ledger::name_of_offset(offset, supplier, tariff, cpe, (day, id))
                .ok_or_else(|| {
                    RowError::Damaged(format!("sent file {id}: name offset {offset} out of range"))
                })
        }
        _ => Err(RowError::Damaged("sent file: no name".into())),
    }
}

impl FromRow for SentFile {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        let (tid, prev): (i64, i64) = (r.get(4)?, r.get(5)?);
        // CPE and day as kept (schema 15: compact BLOBs); the checksum is over their text.
        let (cpe, day) = (r.get::<_, Col<Cpe>>(6)?.0, r.get::<_, Col<NaiveDate>>(9)?.0);
        let day_text = super::sql::day_text(day);
        let name = sent_name(r.get_ref(2)?, text(r, 7)?, text(r, 8)?, cpe, (day, tid))?;
        let pack_name = r.get::<_, Option<PackName>>(12)?.map(|p| p.0);
        let pack = (
            pack_name.as_deref(),
            r.get::<_, Option<i64>>(13)?,
            r.get(14)?,
        );
        let (sha256, content_hash) = (
            r.get::<_, Col<Sha256>>(3)?.0,
            r.get::<_, Col<Sha256>>(10)?.0,
        );
        check_sum(
            r.get(15)?,
            sent_sum(
                text(r, 0)?,
                &name,
                &sha256.to_string(),
                (tid, prev),
                (cpe.as_str(), text(r, 7)?, text(r, 8)?),
                &day_text,
                &content_hash.to_string(),
                pack,
            ),
            || format!("sent file {name}"),
        )?;
        let pack = match pack {
            (None, None, None) => None,
            (Some(pack), Some(_), Some(_)) => Some(PackSlice {
                pack: pack.to_string(),
                offset: r.get(13)?,
                len: r.get(14)?,
            }),
            other => {
                return Err(RowError::Damaged(format!(
                    "sent file {name}: incomplete pack slice {other:?}"
                )))
            }
        };
        Ok(SentFile {
            id: r.get(1)?,
            ord: r.get::<_, Col<OrdName>>(0)?.0,
            sha256,
            transmission_id: r.get(4)?,
            previous_id: r.get(5)?,
            cpe,
            supplier: r.get(7)?,
            tariff: r.get::<_, Col<TariffCycle>>(8)?.0,
            day,
            content_hash,
            delivered: r.get_ref(11)?.data_type() != rusqlite::types::Type::Null,
            pack,
            pruned: r.get::<_, Option<String>>(16)?.is_some(),
            name,
        })
    }
}

/// The columns `ReceivedCopy::from_row` reads.
pub(super) const COPY_COLUMNS: &str =
    "name, sha256, status, stored_path, diagnostics, stored_offset, size, pruned_at";

impl FromRow for ReceivedCopy {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(ReceivedCopy {
            name: r.get(0)?,
            sha256: r.get::<_, ReceivedSha>(1)?.0,
            status: r.get::<_, Col<ReceivedStatus>>(2)?.0,
            stored_path: Some(r.get::<_, String>(3)?).filter(|p| !p.is_empty()),
            diagnostics: r.get(4)?,
            stored_offset: r.get(5)?,
            size: r.get(6)?,
            pruned: r.get::<_, Option<String>>(7)?.is_some(),
        })
    }
}

/// The columns `StoredMobility::from_row` reads.
pub(super) const MOBILITY_COLUMNS: &str =
    "key, last_updated, ord, cpe, ceme, credit_of, energy, source, row_sum, place";

impl FromRow for StoredMobility {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        let key: String = r.get(0)?;
        let energy = r.get::<_, Packed>(6)?.0;
        // A CPE as text or compact (schema 18): the checksum is over its text.
        let cpe = r.get::<_, Col<Cpe>>(3)?.0;
        let place: Option<String> = r.get(9)?;
        check_sum(
            r.get(8)?,
            mobility_sum(
                &key,
                text(r, 1)?,
                text(r, 2)?,
                cpe.as_str(),
                text(r, 4)?,
                opt_text(r, 5)?,
                &energy,
                place.as_deref(),
            ),
            || format!("mobility record {key}"),
        )?;
        let energy = serde_json::from_str(&energy)
            .map_err(|e| RowError::Damaged(format!("mobility record {key}: energy: {e}")))?;
        let place = place
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| RowError::Damaged(format!("mobility record {key}: place: {e}")))?;
        Ok(StoredMobility {
            last_updated: r.get::<_, Col<DateTime<Utc>>>(1)?.0,
            ord: r.get::<_, Col<OrdName>>(2)?.0,
            cpe,
            ceme: r.get::<_, Col<CemeId>>(4)?.0,
            credit_of: r.get(5)?,
            energy,
            source: r.get(7)?,
            place,
            key,
        })
    }
}

/// An ORD profile row: the version in force for a CPE-day and its readings (still JSON: only
/// the send needs them parsed).
pub(super) struct ProfileRow {
    pub version: ProfileVersion,
    pub readings: String,
}

/// The columns `ProfileRow::from_row` reads.
pub(super) const PROFILE_COLUMNS: &str =
    "ord, cpe, day, transmission_id, ntransm, received_at, readings, row_sum";

impl FromRow for ProfileRow {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        let (tid, ntransm): (i64, i64) = (r.get(3)?, r.get(4)?);
        let readings = r.get::<_, Packed>(6)?.0;
        let (ord, cpe, day) = (text(r, 0)?, text(r, 1)?, text(r, 2)?);
        check_sum(
            r.get(7)?,
            profile_sum(ord, cpe, day, tid, ntransm, &readings),
            || format!("ORD profile {ord} {cpe} {day}"),
        )?;
        Ok(ProfileRow {
            version: ProfileVersion {
                transmission_id: r.get(3)?,
                ntransm: r.get(4)?,
                received_at: r.get::<_, Col<DateTime<Utc>>>(5)?.0,
            },
            readings,
        })
    }
}

impl ProfileRow {
    /// The readings, parsed.
    pub fn profile(&self) -> Result<DayProfile, RowError> {
        serde_json::from_str(&self.readings)
            .map_err(|e| RowError::Damaged(format!("ORD profile readings: {e}")))
    }
}

impl FromRow for DayStatus {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(DayStatus {
            day: r.get::<_, Col<NaiveDate>>(0)?.0,
            state: r.get::<_, Col<DayState>>(1)?.0,
            cpes_with_ord_data: r.get(2)?,
            latest_ord_transmission: r.get(3)?,
            files_sent: r.get(4)?,
            files_pending: r.get(5)?,
            anomalies: r.get(6)?,
            late_ord_files: r.get(7)?,
        })
    }
}

/// The columns `FileFailure::from_row` reads.
pub(super) const FAILURE_COLUMNS: &str = "name, failures, first_at, last_error";

impl FromRow for FileFailure {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(FileFailure {
            name: r.get(0)?,
            failures: r.get(1)?,
            first_at: r.get(2)?,
            last_error: r.get(3)?,
        })
    }
}

/// A received file as `status` lists it: name, outcome, sha256 (`None`: its bytes were never read).
impl FromRow for (String, ReceivedStatus, Option<Sha256>) {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok((
            r.get(0)?,
            r.get::<_, Col<ReceivedStatus>>(1)?.0,
            r.get::<_, ReceivedSha>(2)?.0,
        ))
    }
}

/// A one-column row of CPEs.
impl FromRow for Cpe {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(r.get::<_, Col<Cpe>>(0)?.0)
    }
}

/// A day and its state.
impl FromRow for (NaiveDate, DayState) {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok((
            r.get::<_, Col<NaiveDate>>(0)?.0,
            r.get::<_, Col<DayState>>(1)?.0,
        ))
    }
}

/// A day and a CPE.
impl FromRow for (NaiveDate, Cpe) {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok((r.get::<_, Col<NaiveDate>>(0)?.0, r.get::<_, Col<Cpe>>(1)?.0))
    }
}

/// A one-column row of days.
impl FromRow for NaiveDate {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(r.get::<_, Col<NaiveDate>>(0)?.0)
    }
}

/// A one-column row of text (pack names).
impl FromRow for String {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(r.get(0)?)
    }
}

impl FromRow for PackName {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(r.get(0)?)
    }
}

/// A one-column row of ids or counts (a negative value is damage, not a number).
impl FromRow for u64 {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(r.get(0)?)
    }
}

impl FromRow for EventRecord {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        let kind: String = r.get(3)?;
        Ok(EventRecord {
            id: r.get(0)?,
            at: r.get::<_, Col<DateTime<Utc>>>(1)?.0,
            ord: r.get::<_, Option<Col<OrdName>>>(2)?.map(|c| c.0),
            level: egme_ord_core::event::EventKind::from_code(&kind).map(|k| k.level()),
            kind,
            detail: r.get(4)?,
        })
    }
}

impl FromRow for OrdCycle {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(OrdCycle {
            at: r.get::<_, Col<DateTime<Utc>>>(0)?.0,
            errors: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            backoff_until: r.get::<_, Option<Col<DateTime<Utc>>>>(2)?.map(|c| c.0),
        })
    }
}
