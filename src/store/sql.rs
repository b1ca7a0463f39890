//! Domain values in and out of the ledger's columns, and rows read as domain types: a value that does not read back is damage, named by what it is.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Value, ValueRef};
use rusqlite::Row;

use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::TariffCycle;
use egme_ord_core::ledger::ReceivedStatus;
use egme_ord_core::mobility::CemeId;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::planner::DayState;
use egme_ord_core::sha256::Sha256;

/// A text kept zstd-compressed (schema 11: ORD profiles' readings, mobility records' energy — JSON
/// that compresses tenfold): written as a BLOB, read back from a BLOB or, in a row written before,
/// as TEXT. Row checksums are over the text, so compressing a row does not change its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Packed(pub String);

/// The zstd level of a packed column: small values, written once.
const PACKED_LEVEL: i32 = 3;

/// The most a packed value may unpack to (a day of readings is a few KB).
const PACKED_MAX: usize = 1 << 20;

thread_local! {
    /// One compression and one decompression context per thread, reused: a context is costly to
    /// set up (a fresh one per value was most of a national day's CPU and 500 MB of memory).
    static PACKER: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static UNPACKER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

impl Packed {
    /// The compressed bytes of `text`.
    pub fn compress(text: &str) -> rusqlite::Result<Vec<u8>> {
        let failed = |e: std::io::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
        PACKER.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some(zstd::bulk::Compressor::new(PACKED_LEVEL).map_err(failed)?);
            }
            match cell.as_mut() {
                Some(c) => c.compress(text.as_bytes()).map_err(failed),
                None => Err(failed(std::io::Error::other("no compression context"))),
            }
        })
    }

    /// The text of compressed bytes (at most [`PACKED_MAX`]).
    fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        UNPACKER.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some(zstd::bulk::Decompressor::new()?);
            }
            match cell.as_mut() {
                Some(d) => d.decompress(bytes, PACKED_MAX),
                None => Err(std::io::Error::other("no decompression context")),
            }
        })
    }
}

/// A stored TEXT (or decompressed bytes) as an owned string; bytes that are not UTF-8 are damage.
fn owned_text(bytes: &[u8]) -> FromSqlResult<String> {
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|e| FromSqlError::Other(Box::new(e)))
}

impl FromSql for Packed {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(t) => owned_text(t).map(Packed),
            ValueRef::Blob(b) => {
                let bytes = Packed::decompress(b).map_err(|e| FromSqlError::Other(Box::new(e)))?;
                owned_text(&bytes).map(Packed)
            }
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

impl ToSql for Packed {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(Value::Blob(Packed::compress(&self.0)?)))
    }
}

/// A received file's sha256: its 32 bytes (schema 15), or the empty TEXT a row has when its bytes
/// were never read (`None`); a row written before schema 15 has the 64 hex digits as TEXT. Anything
/// else is damage.
pub(super) struct ReceivedSha(pub Option<Sha256>);

impl FromSql for ReceivedSha {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(b"") => Ok(ReceivedSha(None)),
            other => Col::<Sha256>::column_result(other).map(|c| ReceivedSha(Some(c.0))),
        }
    }
}

impl ToSql for ReceivedSha {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match &self.0 {
            Some(sha) => ToSqlOutput::Owned(Value::Blob(sha.as_bytes().to_vec())),
            None => ToSqlOutput::Borrowed(ValueRef::Text(b"")),
        })
    }
}

/// A pack's name, kept as its first id (`ledger::pack_code`) in a small BLOB — its big-endian
/// bytes, 3 instead of 23 characters on every sent row, kept forever; a BLOB, because the column's
/// TEXT affinity would turn a number into text — or, for a name that has no code, as TEXT.
pub(super) struct PackName(pub String);

/// A pack's name as it is written (see [`PackName`]).
pub(super) struct PackNameRef<'a>(pub &'a str);

impl FromSql for PackName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(b) if (1..=8).contains(&b.len()) => {
                let id = b.iter().fold(0u64, |n, &byte| n << 8 | u64::from(byte));
                Ok(PackName(egme_ord_core::ledger::pack_name(id)))
            }
            ValueRef::Text(t) => owned_text(t).map(PackName),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

impl ToSql for PackNameRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match egme_ord_core::ledger::pack_code(self.0) {
            Some(id) => ToSqlOutput::Owned(Value::Blob(short_bytes(id))),
            None => ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())),
        })
    }
}

/// `n`'s big-endian bytes without the leading zeros (at least one byte).
fn short_bytes(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    bytes[skip..].to_vec()
}

/// A domain type kept as TEXT: how it is written, and how the text reads back.
pub(super) trait Column: Sized {
    /// What the value is, for the error that names a damaged one.
    const WHAT: &'static str;
    fn to_text(&self) -> Cow<'_, str>;
    fn from_text(text: &str) -> Option<Self>;
    /// The value's compact form, written by [`Compact`] (schema 15), if the type has one.
    fn to_blob(&self) -> Option<Vec<u8>> {
        None
    }
    /// A value read back from its compact form.
    fn from_blob(_bytes: &[u8]) -> Option<Self> {
        None
    }
}

/// A column of a domain type: `r.get::<_, Col<Cpe>>(i)?.0` reads one (a value that does not
/// parse is `FromSqlConversionFailure`, which the store reports as damage), `Col(&cpe)` writes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Col<T>(pub T);

/// A stored value that is not one of its type's.
#[derive(Debug, thiserror::Error)]
#[error("{what} {text:?} is not one")]
struct BadValue {
    what: &'static str,
    text: String,
}

impl<T: Column> FromSql for Col<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        if let ValueRef::Blob(bytes) = value {
            return T::from_blob(bytes).map(Col).ok_or_else(|| {
                FromSqlError::Other(Box::new(BadValue {
                    what: T::WHAT,
                    text: crate::fsutil::hex(bytes),
                }))
            });
        }
        let text = value.as_str()?;
        T::from_text(text).map(Col).ok_or_else(|| {
            FromSqlError::Other(Box::new(BadValue {
                what: T::WHAT,
                text: text.chars().take(80).collect(),
            }))
        })
    }
}

impl<T: Column> ToSql for Col<&T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(text_output(self.0.to_text()))
    }
}

/// A value's text as what is bound.
fn text_output(text: Cow<'_, str>) -> ToSqlOutput<'_> {
    match text {
        Cow::Borrowed(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Cow::Owned(s) => ToSqlOutput::Owned(Value::Text(s)),
    }
}

/// A value of the sent (and received) files' rows, kept for ever, written in its compact form: a
/// BLOB (the columns' TEXT affinity would turn a number into text), or TEXT when it has none. Any
/// `Col` reads both forms back, and the rows' checksums are over the text, so a row written either
/// way has the same checksum.
pub(super) struct Compact<'a, T>(pub &'a T);

impl<T: Column> ToSql for Compact<'_, T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0.to_blob() {
            Some(bytes) => ToSqlOutput::Owned(Value::Blob(bytes)),
            None => text_output(self.0.to_text()),
        })
    }
}

/// A CPE: compact as its 16 digits' number in 7 big-endian bytes (the check letters follow from
/// them).
impl Column for Cpe {
    const WHAT: &'static str = "CPE";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Option<Self> {
        Cpe::parse(text).ok()
    }
    fn to_blob(&self) -> Option<Vec<u8>> {
        Some(self.number().to_be_bytes()[1..].to_vec())
    }
    fn from_blob(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 7] = bytes.try_into().ok()?;
        let mut all = [0u8; 8];
        all[1..].copy_from_slice(&bytes);
        Cpe::from_number(u64::from_be_bytes(all))
    }
}

/// A sha256: compact as its 32 bytes (sent files' sha256 and content hash since schema 12, received
/// files' since 15), else its 64 lowercase hex digits.
impl Column for Sha256 {
    const WHAT: &'static str = "sha256";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
    fn from_text(text: &str) -> Option<Self> {
        Sha256::parse(text)
    }
    fn to_blob(&self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }
    fn from_blob(bytes: &[u8]) -> Option<Self> {
        Some(Sha256::from_bytes(bytes.try_into().ok()?))
    }
}

/// An ORD's name, as configured: a name in a row that is not one is damage.
impl Column for OrdName {
    const WHAT: &'static str = "ORD name";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Option<Self> {
        OrdName::parse(text).ok()
    }
}

impl Column for CemeId {
    const WHAT: &'static str = "CEME id";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Option<Self> {
        CemeId::parse(text)
    }
}

impl Column for TariffCycle {
    const WHAT: &'static str = "tariff cycle";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.code())
    }
    fn from_text(text: &str) -> Option<Self> {
        TariffCycle::from_code(text)
    }
}

impl Column for ReceivedStatus {
    const WHAT: &'static str = "received status";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Option<Self> {
        ReceivedStatus::from_code(text)
    }
}

impl Column for DayState {
    const WHAT: &'static str = "day state";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
    fn from_text(text: &str) -> Option<Self> {
        DayState::from_code(text)
    }
}

/// A consumption day: `YYYY-MM-DD`; compact as its number of days since 1970-01-01 in 2 big-endian
/// bytes (up to 2149; [`day_key_of`] computes the same bytes from a text day in SQL).
impl Column for NaiveDate {
    const WHAT: &'static str = "day";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(day_text(*self))
    }
    fn from_text(text: &str) -> Option<Self> {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
    }
    fn to_blob(&self) -> Option<Vec<u8>> {
        let days = u16::try_from((*self - EPOCH_DAY).num_days()).ok()?;
        Some(days.to_be_bytes().to_vec())
    }
    fn from_blob(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 2] = bytes.try_into().ok()?;
        EPOCH_DAY.checked_add_days(chrono::Days::new(u64::from(u16::from_be_bytes(bytes))))
    }
}

/// The first day a compact day counts from.
const EPOCH_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};

/// SQL giving the compact form of the text day in `column` (to compare a sent file's `day` with a
/// `days` row's): its days since 1970-01-01 as 2 big-endian bytes, as `NaiveDate::to_blob` gives.
pub(super) fn day_key_of(column: &str) -> String {
    format!("unhex(printf('%04X', unixepoch({column}) / 86400))")
}

/// An instant: RFC 3339 in UTC with milliseconds.
impl Column for DateTime<Utc> {
    const WHAT: &'static str = "time";
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(time_text(*self))
    }
    fn from_text(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

pub(super) fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(super) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A bound of a query (a page size, an id to start after): beyond SQLite's range means "all".
pub(super) fn bound(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// A row of the ledger read as a value: the one place each row type's columns are read.
pub(super) trait FromRow: Sized {
    fn from_row(r: &Row<'_>) -> Result<Self, RowError>;
}

/// A row that could not be read: SQLite's error (a value of the wrong type, a bad value), or a row
/// whose checksum does not match (`Damaged`, naming the row).
#[derive(Debug)]
pub(super) enum RowError {
    Sqlite(rusqlite::Error),
    Damaged(String),
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        RowError::Sqlite(e)
    }
}

/// `Damaged` unless the row's stored checksum `sum` is `expected`.
pub(super) fn check_sum(
    sum: Option<i64>,
    expected: i64,
    what: impl FnOnce() -> String,
) -> Result<(), RowError> {
    if sum == Some(expected) {
        Ok(())
    } else {
        Err(RowError::Damaged(what()))
    }
}

/// A TEXT column as borrowed text (for checksums over exactly what is stored).
pub(super) fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A nullable TEXT column as borrowed text.
pub(super) fn opt_text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, Connection};

    fn round_trip<T: Column>(conn: &Connection, text: &str) -> rusqlite::Result<T> {
        conn.query_row("SELECT ?1", [text], |r| r.get::<_, Col<T>>(0))
            .map(|c| c.0)
    }

    #[test]
    fn a_damaged_column_value_is_a_conversion_failure_naming_its_type() {
        let conn = Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT 'PT00X'", [], |r| r.get::<_, Col<Cpe>>(0))
            .unwrap_err();
        assert!(
            matches!(err, rusqlite::Error::FromSqlConversionFailure(0, _, _)),
            "{err:?}"
        );
        assert!(err.to_string().contains("CPE \"PT00X\""), "{err}");
        let err = conn
            .query_row("SELECT '05'", [], |r| r.get::<_, Col<TariffCycle>>(0))
            .unwrap_err();
        assert!(err.to_string().contains("tariff cycle \"05\""), "{err}");
        let err = conn
            .query_row("SELECT 7", [], |r| r.get::<_, Col<DayState>>(0))
            .unwrap_err();
        assert!(
            matches!(err, rusqlite::Error::InvalidColumnType(..)),
            "{err:?}"
        );
    }

    #[test]
    fn a_compact_day_or_cpe_reads_back_whole_and_sql_computes_the_same_day_bytes() {
        let conn = Connection::open_in_memory().unwrap();
        for day in ["1970-01-01", "2024-02-29", "2024-10-27", "2149-06-06"] {
            let d = NaiveDate::from_text(day).unwrap();
            let (bytes, back, in_sql): (Vec<u8>, Col<NaiveDate>, Vec<u8>) = conn
                .query_row(
                    &format!("SELECT ?1, ?1, {}", day_key_of("?2")),
                    params![Compact(&d), day],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!((bytes.len(), back.0), (2, d), "{day}");
            assert_eq!(in_sql, bytes, "{day}");
        }
        // Past what two bytes hold: kept as text.
        let far = NaiveDate::from_ymd_opt(2150, 1, 1).unwrap();
        let kept: String = conn
            .query_row("SELECT ?1", [Compact(&far)], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "2150-01-01");
        let cpe = Cpe::parse("PT0014000100605384QR").unwrap();
        let (bytes, back): (Vec<u8>, Col<Cpe>) = conn
            .query_row("SELECT ?1, ?1", [Compact(&cpe)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((bytes.len(), back.0), (7, cpe));
        // Bytes that are no CPE (past 16 digits) or the wrong length: damage, named.
        for bad in ["X'FFFFFFFFFFFFFF'", "X'0102'"] {
            let err = conn
                .query_row(&format!("SELECT {bad}"), [], |r| r.get::<_, Col<Cpe>>(0))
                .unwrap_err();
            assert!(err.to_string().contains("CPE"), "{err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_compact_day_and_cpe_reads_back_as_what_was_written(days in 0u32..=65_535, number in 0u64..10_000_000_000_000_000) {
            let conn = Connection::open_in_memory().unwrap();
            let day = EPOCH_DAY + chrono::Days::new(u64::from(days));
            let cpe = Cpe::from_number(number).unwrap();
            let (d, c, in_sql): (Col<NaiveDate>, Col<Cpe>, Vec<u8>) = conn
                .query_row(&format!("SELECT ?1, ?2, {}", day_key_of("?3")), params![Compact(&day), Compact(&cpe), day_text(day)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            proptest::prop_assert_eq!((d.0, c.0), (day, cpe));
            proptest::prop_assert_eq!(Some(in_sql), day.to_blob());
        }
    }

    #[test]
    fn every_column_type_reads_back_what_it_writes() {
        let conn = Connection::open_in_memory().unwrap();
        let back = |v: &dyn ToSql| -> String {
            conn.query_row("SELECT ?1", [v], |r| r.get::<_, String>(0))
                .unwrap()
        };
        for s in ReceivedStatus::ALL {
            assert_eq!(ReceivedStatus::from_text(&back(&Col(&s))), Some(s));
        }
        for t in TariffCycle::ALL {
            assert_eq!(TariffCycle::from_text(&back(&Col(&t))), Some(t));
        }
        for d in [DayState::Open, DayState::Closed] {
            assert_eq!(DayState::from_text(&back(&Col(&d))), Some(d));
        }
        let day = NaiveDate::from_ymd_opt(2024, 10, 27).unwrap();
        assert_eq!(back(&Col(&day)), "2024-10-27");
        assert_eq!(round_trip::<NaiveDate>(&conn, "2024-10-27").unwrap(), day);
        let at = DateTime::parse_from_rfc3339("2024-10-27T01:30:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(back(&Col(&at)), "2024-10-27T01:30:00.250Z");
        assert_eq!(
            round_trip::<DateTime<Utc>>(&conn, &back(&Col(&at))).unwrap(),
            at
        );
        let ceme = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            round_trip::<CemeId>(&conn, &back(&Col(&ceme))).unwrap(),
            ceme
        );
    }
}
