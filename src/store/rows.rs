//! Each row type of the ledger read once, in one place: its columns, typed, its checksum checked.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;

use super::sql::{
    check_sum, opt_text, text, Col, Column, FromRow, Hash, PackName, Packed, RowError,
};
use super::{
    is_sha256_hex, mobility_sum, profile_sum, sent_sum, DayStatus, FileFailure, ProfileVersion,
    StoredMobility,
};
use crate::cpe::Cpe;
use crate::filename::TariffCycle;
use crate::ledger::{PackSlice, ReceivedCopy, ReceivedStatus, SentFile};
use crate::mobility::CemeId;
use crate::planner::DayState;
use crate::profile::DayProfile;

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
            crate::ledger::name_of_offset(offset, supplier, tariff, cpe, (day, id)).ok_or_else(
                || RowError::Damaged(format!("sent file {id}: name offset {offset} out of range")),
            )
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
        let (sha256, content_hash) = (r.get::<_, Hash>(3)?.0, r.get::<_, Hash>(10)?.0);
        check_sum(
            r.get(15)?,
            sent_sum(
                text(r, 0)?,
                &name,
                &sha256,
                (tid, prev),
                (cpe.as_str(), text(r, 7)?, text(r, 8)?),
                &day_text,
                &content_hash,
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
        if !is_sha256_hex(&sha256) || !is_sha256_hex(&content_hash) {
            return Err(RowError::Damaged(format!("sent file {name}: not a sha256")));
        }
        Ok(SentFile {
            id: r.get(1)?,
            ord: r.get(0)?,
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
            sha256: r.get::<_, Hash>(1)?.0,
            status: r.get::<_, Col<ReceivedStatus>>(2)?.0,
            stored_path: r.get(3)?,
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
            ord: r.get(2)?,
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

/// A received file as `status` lists it: name, outcome, sha256.
impl FromRow for (String, ReceivedStatus, String) {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok((
            r.get(0)?,
            r.get::<_, Col<ReceivedStatus>>(1)?.0,
            r.get::<_, Hash>(2)?.0,
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

impl FromRow for super::EventRecord {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        let kind: String = r.get(3)?;
        Ok(super::EventRecord {
            id: r.get(0)?,
            at: r.get::<_, Col<DateTime<Utc>>>(1)?.0,
            ord: r.get(2)?,
            level: crate::event::EventKind::from_code(&kind).map(|k| k.level()),
            kind,
            detail: r.get(4)?,
        })
    }
}

impl FromRow for super::OrdCycle {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError> {
        Ok(super::OrdCycle {
            at: r.get::<_, Col<DateTime<Utc>>>(0)?.0,
            errors: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            backoff_until: r.get::<_, Option<Col<DateTime<Utc>>>>(2)?.map(|c| c.0),
        })
    }
}
