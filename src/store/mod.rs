//! The ledger: one SQLite file (WAL, migrations by `user_version`). Only this module knows SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use thiserror::Error;

use crate::cpe::Cpe;
use crate::event::{EventKind, EventLevel};
use crate::filename::{TariffCycle, MAX_TRANSMISSION_ID};
pub use crate::ledger::{MobilityFileStatus, ReceivedCopy, ReceivedStatus, SentFile};
use crate::mobility::QuarterEnergy;
use crate::mobility::{CemeId, Place};
use crate::pack::PackSlice;
use crate::planner::{DayState, DaysState};
use crate::profile::DayProfile;
use crate::registry::SupplierKey;

mod page_sums;
mod query;
mod rows;
mod sql;

pub use query::QueryRows;

use rows::{
    ProfileRow, COPY_COLUMNS, FAILURE_COLUMNS, MOBILITY_COLUMNS, PROFILE_COLUMNS, SENT_COLUMNS,
};
use sql::{
    bound, day_key_of, day_text, time_text, Col, Column, Compact, FromRow, HashRef, PackName,
    PackNameRef, Packed, RowError,
};

/// What went wrong with the store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store {path}: {source}{hint}", hint = damage_hint(source))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "store {path}: schema version {found} is newer than this egme-ord supports ({supported})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("store {path}: unreadable {what}: {detail}; the ledger is damaged: stop egme-ord, then run `egme-ord recover --config FILE --fresh` (docs/OPERATIONS.md)")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("store {path}: the ledger fails SQLite's integrity check ({detail}): refused. Stop egme-ord, then run `egme-ord recover --config FILE` (it keeps the damaged file aside and rebuilds the ledger from the outbox, the archive and the ORDs' folders; docs/OPERATIONS.md)")]
    Damaged { path: PathBuf, detail: String },
    #[error("store {path}: {detail}: refused (docs/SECURITY.md)")]
    Unsafe { path: PathBuf, detail: String },
    #[error("{ord}: transmission id {last} is the last a 10-digit NTransm holds: nothing more is written for this ORD. Agree with the ORD how its sequence goes on (docs/OPERATIONS.md, \"Transmission ids running out\")")]
    IdsExhausted { ord: String, last: u64 },
    #[error("store {path}: the ledger file was removed or replaced while egme-ord had it open: nothing more is recorded or sent. Stop egme-ord; if the file is gone, run `egme-ord recover --config FILE` before starting it again (docs/OPERATIONS.md)")]
    Replaced { path: PathBuf },
    #[error("`egme-ord sql` runs only a statement that reads (SELECT, a read-only PRAGMA), one at a time; refused, nothing ran: {statement}")]
    NotReadOnly { statement: String },
}

/// For a SQLite error that only a damaged ledger gives (a value of the wrong type or not UTF-8,
/// a corrupt page), what the operator does about it.
fn damage_hint(e: &rusqlite::Error) -> &'static str {
    let damaged = match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => true,
        other => is_damage(other),
    };
    if damaged {
        "; the ledger is damaged: stop egme-ord, then run `egme-ord recover --config FILE --fresh` (docs/OPERATIONS.md)"
    } else {
        ""
    }
}

/// One received file, as recorded.
#[derive(Debug, Clone)]
pub struct ReceivedFile {
    pub ord: String,
    pub name: String,
    pub size: u64,
    pub mtime: i64,
    pub sha256: String,
    pub status: ReceivedStatus,
    pub diagnostics: String,
    pub cpe: Option<Cpe>,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub transmission_id: Option<u64>,
    pub previous_id: Option<u64>,
    pub ntransm: Option<u64>,
    pub received_at: DateTime<Utc>,
    pub stored_path: String,
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
    pub ord: String,
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

const SCHEMA_VERSION: i64 = 19;

/// Version 19: each mobility record keeps its place (the EVSE, or the CPE a reading names) as the
/// input gave it, so that its CPE and ORD can be decided again when the dated registry changes:
/// the live ledger, a recovered one and `recover --fresh` then map the same inputs alike
/// (`Cycle::remap_mobility`). Rows written before have none (`NULL`) and keep their mapping; the
/// checksum covers the place only where there is one, so theirs stay valid. The column is added
/// by `add_column` (once: `ALTER TABLE` is not idempotent).
const MIGRATION_19: &str = "";

/// Adds column `column` (of `decl`) to `table` unless it is there.
fn add_column(tx: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let there: bool = tx.query_row(
        &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
        [column],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !there {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl};"))?;
    }
    Ok(())
}

/// Version 18: a day's mobility of a few CPEs (the incremental send's changed ones) found by CPE:
/// an index by (ord, CPE, first start), the records' CPEs kept as their 7 bytes (`sql::Compact`,
/// as the sent files' since version 15; checksums over the text) so that the index costs less
/// than it saves. Before, each changed CPE's records were looked for among all of the day's, and
/// more than eight changed CPEs read the whole day: at N = 10,000 with 30 days open, a quarter of
/// the daily cycle went on decoding the mobility of CPEs that had not changed. The rows are
/// rewritten by `compact_columns`, then the index is made.
const MIGRATION_18: &str = "";

/// The index of version 18, made once the CPEs are compact.
const MOBILITY_BY_CPE: &str =
    "CREATE INDEX IF NOT EXISTS mobility_by_cpe ON mobility_records (ord, cpe, first_start);";

/// Version 17: a checksum in every page (`page_sums`), given to an older ledger by `seal_pages`
/// before the migrations run (a `VACUUM`, which cannot run inside their transaction).
const MIGRATION_17: &str = "";

/// Version 16: the mobility records that span more than [`LONG_RECORD_SECS`] in an index of their
/// own, by end. A day's records were found through the (ord, first start, last start) index with
/// only an upper bound on the first start: every query read the ORD's whole history up to the day
/// (9 ms per CPE after a month at 500 CPEs; seconds after a year at 10,000). Now a record of at
/// most that span is found between the day's start less the span and its end, and the few longer
/// ones through this index (see `mobility_overlapping`).
const MIGRATION_16: &str = "
CREATE INDEX IF NOT EXISTS mobility_long ON mobility_records (ord, last_start) WHERE last_start - first_start > 172800;
";

/// The span (first to last quarter-hour with energy) above which a mobility record is in the
/// `mobility_long` index; the literal in `MIGRATION_16` and `mobility_overlapping` (SQLite uses a
/// partial index only for a query that repeats its condition).
const LONG_RECORD_SECS: i64 = 172_800;

/// The mobility records of ORD `?1` with energy in `[?2, ?3)` (seconds), less the credited ones
/// and credits themselves, ordered by key; `extra` narrows them (e.g. `AND cpe = ?4`). A record
/// overlaps the range when its first quarter-hour starts before `?3` and its last at or after
/// `?2`; one of span at most [`LONG_RECORD_SECS`] then starts at or after `?2` less it, which
/// bounds the scan of the range index to the day's records; the longer ones are found by their
/// end in `mobility_long`. The two halves are disjoint and together all the overlapping ones.
///
/// `index`: `mobility_by_range` for a whole day, `mobility_by_cpe` (with `extra` naming the CPE)
/// for one CPE's records of it.
fn mobility_overlapping(index: &str, extra: &str) -> String {
    let long = LONG_RECORD_SECS;
    let not_credited = "NOT EXISTS (SELECT 1 FROM mobility_records c WHERE c.credit_of = m.key)";
    format!(
        "SELECT {MOBILITY_COLUMNS} FROM mobility_records m INDEXED BY {index}
         WHERE ord = ?1 AND first_start >= ?2 - {long} AND first_start < ?3 AND last_start >= ?2
           AND last_start - first_start <= {long} AND credit_of IS NULL {extra} AND {not_credited}
         UNION ALL
         SELECT {MOBILITY_COLUMNS} FROM mobility_records m INDEXED BY mobility_long
         WHERE ord = ?1 AND last_start - first_start > {long} AND last_start >= ?2 AND first_start < ?3
           AND credit_of IS NULL {extra} AND {not_credited}
         ORDER BY key"
    )
}

/// Version 15: the values every sent file's row repeats, kept for ever, in their compact forms
/// (`sql::Compact`): its CPE as the 7 bytes of its 16 digits, its day as 2 bytes (days since
/// 1970-01-01), and a received file's sha256 as its 32 bytes (in the row and in two indexes) and
/// CPE as 7. Checksums are unchanged (over the text as read back); the rows are rewritten by
/// `compact_keys`, a value that does not parse is left as it is (and read as damage).
const MIGRATION_15: &str = "";

/// Rewrites the CPEs, days and sha256s of the rows written before version 15, 10,000 rows at a
/// time.
fn compact_keys(tx: &Connection) -> rusqlite::Result<()> {
    fn day(text: &str) -> Option<Vec<u8>> {
        NaiveDate::from_text(text)?.to_blob()
    }
    fn sha256(text: &str) -> Option<Vec<u8>> {
        HashRef(text).bytes()
    }
    compact_columns(
        tx,
        &[
            ("sent_files", "cpe", compact_cpe),
            ("sent_files", "day", day),
            ("received_files", "sha256", sha256),
            ("received_files", "cpe", compact_cpe),
        ],
    )
}

/// A CPE's compact form, from its text.
fn compact_cpe(text: &str) -> Option<Vec<u8>> {
    Cpe::from_text(text)?.to_blob()
}

/// How a column's text becomes its compact form (`None`: kept as it is).
type Compaction = fn(&str) -> Option<Vec<u8>>;

/// Rewrites each (table, column) still in text into its compact form, 10,000 rows at a time.
fn compact_columns(tx: &Connection, columns: &[(&str, &str, Compaction)]) -> rusqlite::Result<()> {
    for &(table, column, compact) in columns {
        let mut after = 0i64;
        loop {
            let rows: Vec<(i64, Option<String>)> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT rowid, CASE WHEN typeof({column}) = 'text' THEN {column} END FROM {table}
                     WHERE rowid > ?1 ORDER BY rowid LIMIT 10000"
                ))?;
                let mapped = stmt.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
                mapped.collect::<Result<_, _>>()?
            };
            let Some(&(last, _)) = rows.last() else {
                break;
            };
            for (rowid, text) in rows {
                if let Some(bytes) = text.as_deref().and_then(compact) {
                    tx.execute(
                        &format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1"),
                        params![rowid, bytes],
                    )?;
                }
            }
            after = last;
        }
    }
    Ok(())
}

/// Version 14: an index of the files not yet delivered only. Counting them and paging through
/// them went through the (ord, transmission id) index from the ORD's first file: a scan of its
/// whole history at every cycle (66 ms at 500 CPEs after a month, growing for ever); this index
/// holds only the pending rows.
const MIGRATION_14: &str = "
CREATE INDEX IF NOT EXISTS sent_pending ON sent_files (ord, transmission_id) WHERE delivered_at IS NULL;
";

/// Version 13: sent files' names and packs kept short — a name that is exactly what the row's
/// columns give (`ledger::outbound_name`) as the one-byte offset of its date, a pack as its first
/// id (`sql::PackName`); both BLOBs, any other value stays text. Checksums are unchanged (over the
/// names as read back). The rows are rewritten by `compact_sent_files`; the table keeps its pages
/// (free pages are used again by the rows that follow; `VACUUM` gives them back to the disk).
const MIGRATION_13: &str = "";

/// Rewrites the names and packs of the sent files written before version 13, 10,000 rows at a
/// time (a ledger of years does not go through memory at once).
fn compact_sent_files(tx: &Connection) -> rusqlite::Result<()> {
    let mut after = 0i64;
    loop {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, rusqlite::types::Value, Option<String>)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT rowid, name, supplier, tariff, cpe, day, transmission_id, pack FROM sent_files
                 WHERE rowid > ?1 ORDER BY rowid LIMIT 10000",
            )?;
            let mapped = stmt.query_map([after], |r| {
                let name = sql::text(r, 1).ok().map(str::to_string);
                // (CPE and day as text, or compact: a ledger at version 15 read as an older one.)
                let parsed = (
                    TariffCycle::from_text(sql::text(r, 3)?),
                    r.get::<_, Col<Cpe>>(4).ok().map(|c| c.0),
                    r.get::<_, Col<NaiveDate>>(5).ok().map(|c| c.0),
                );
                let kept = match (name, parsed) {
                    (Some(name), (Some(tariff), Some(cpe), Some(day))) => {
                        kept_sent_name(&name, sql::text(r, 2)?, tariff, cpe, (day, r.get(6)?))
                    }
                    (Some(name), _) => rusqlite::types::Value::Text(name),
                    // Already short, or not text: left as it is.
                    (None, _) => r.get(1)?,
                };
                Ok((
                    r.get(0)?,
                    kept,
                    r.get::<_, Option<String>>(7).ok().flatten(),
                ))
            })?;
            mapped.collect::<Result<_, _>>()?
        };
        let Some(&(last, _, _)) = rows.last() else {
            return Ok(());
        };
        for (rowid, name, pack) in rows {
            tx.execute(
                "UPDATE sent_files SET name = ?2, pack = COALESCE(?3, pack) WHERE rowid = ?1",
                params![rowid, name, pack.as_deref().map(PackNameRef)],
            )?;
        }
        after = last;
    }
}

/// Version 12: sent files smaller, for they are kept forever — sha256 and content hash as their 32
/// bytes (`sql::Hash`; checksums unchanged, they are over the hex), and no index on (ord, name):
/// the name holds the transmission id, which has its own. The table is rebuilt (SQLite cannot drop
/// a UNIQUE constraint); a value that is not hex is kept as it is, and read as damage.
/// Also: when a file was written and delivered as Unix seconds, not text; one index by (ord, day,
/// CPE) for the per-CPE-day and per-day queries (its entries are in row order within a key).
/// And change marks numbered by AUTOINCREMENT: a mark's id must never be reused once pruned (a day
/// nets the marks after the last id it saw; a reused lower id would be skipped and a change not
/// sent).
const MIGRATION_12: &str = "
CREATE TABLE sent_files_12 (
  id INTEGER PRIMARY KEY, ord TEXT NOT NULL, name TEXT NOT NULL, sha256 BLOB NOT NULL, transmission_id INTEGER NOT NULL,
  previous_id INTEGER NOT NULL, cpe TEXT NOT NULL, supplier TEXT NOT NULL, tariff TEXT NOT NULL, day TEXT NOT NULL,
  content_hash BLOB NOT NULL, written_at INTEGER NOT NULL, delivered_at INTEGER, pack TEXT, pack_offset INTEGER, pack_len INTEGER,
  row_sum INTEGER, pruned_at TEXT,
  UNIQUE (ord, transmission_id));
INSERT INTO sent_files_12 (id, ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash,
  written_at, delivered_at, pack, pack_offset, pack_len, row_sum, pruned_at)
  SELECT id, ord, name, COALESCE(unhex(sha256), sha256), transmission_id, previous_id, cpe, supplier, tariff, day,
    COALESCE(unhex(content_hash), content_hash), COALESCE(unixepoch(written_at), 0), unixepoch(delivered_at),
    pack, pack_offset, pack_len, row_sum, pruned_at
  FROM sent_files;
DROP TABLE sent_files;
ALTER TABLE sent_files_12 RENAME TO sent_files;
CREATE INDEX sent_by_day ON sent_files (ord, day, cpe);
CREATE TABLE dirty_12 (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ord TEXT NOT NULL, cpe TEXT NOT NULL, day TEXT, first_start INTEGER, last_start INTEGER);
INSERT INTO dirty_12 (id, ord, cpe, day, first_start, last_start) SELECT id, ord, cpe, day, first_start, last_start FROM dirty;
DROP TABLE dirty;
ALTER TABLE dirty_12 RENAME TO dirty;
CREATE INDEX dirty_by_ord ON dirty (ord, id);
";

/// Version 11: ORD profiles' readings and mobility records' energy kept zstd-compressed (BLOBs;
/// see `sql::Packed`), the rows already there compressed by `pack_columns` (no change of
/// checksums: they are over the text); and when a sent or received file's kept copy was pruned
/// (retention: the row, with its name, id, size and sha256, stays).
const MIGRATION_11: &str = "
ALTER TABLE sent_files ADD COLUMN pruned_at TEXT;
ALTER TABLE received_files ADD COLUMN pruned_at TEXT;
";

/// Compresses the readings and energy of the rows written before version 11.
fn pack_columns(tx: &Connection) -> rusqlite::Result<()> {
    for (table, column) in [("ord_profiles", "readings"), ("mobility_records", "energy")] {
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT rowid, {column} FROM {table} WHERE typeof({column}) = 'text'"
            ))?;
            let mapped =
                stmt.query_map([], |r| Ok((r.get(0)?, Packed::compress(sql::text(r, 1)?)?)))?;
            mapped.collect::<Result<_, _>>()?
        };
        for (id, packed) in rows {
            tx.execute(
                &format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1"),
                params![id, packed],
            )?;
        }
    }
    Ok(())
}

/// Version 10: incremental netting. `dirty` holds what changed since (ORD profiles by day,
/// mobility records by the range of their quarter-hours, old and new); a day remembers the last
/// mark it was netted against (`days.dirty_seen`), an ORD the inputs its netting depends on
/// besides them (`ord_state.netting_inputs`: registry and settings).
const MIGRATION_10: &str = "
CREATE TABLE dirty (
  id INTEGER PRIMARY KEY, ord TEXT NOT NULL, cpe TEXT NOT NULL, day TEXT, first_start INTEGER, last_start INTEGER);
CREATE INDEX dirty_by_ord ON dirty (ord, id);
ALTER TABLE days ADD COLUMN dirty_seen INTEGER;
ALTER TABLE ord_state ADD COLUMN netting_inputs TEXT;
";

/// Version 9: per ORD and day, the CPEs reported missing (`ord-file-missing`) and since when, so
/// that each is reported once and cleared when its file arrives.
const MIGRATION_9: &str = "
CREATE TABLE missing_ord_files (
  ord TEXT NOT NULL, day TEXT NOT NULL, cpe TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (ord, day, cpe));
";

/// Version 8: per ORD, how its last cycle went and until when the daemon leaves it out (for
/// `status`, which runs beside the daemon).
const MIGRATION_8: &str = "
ALTER TABLE ord_state ADD COLUMN last_cycle_at TEXT;
ALTER TABLE ord_state ADD COLUMN last_cycle_errors TEXT;
ALTER TABLE ord_state ADD COLUMN backoff_until TEXT;
";

/// Version 7: files of an ORD that could not be read (vanished, no permission), with how many
/// cycles in a row they failed: the other files go on, these are retried and reported as stuck.
const MIGRATION_7: &str = "
CREATE TABLE intake_failures (
  ord TEXT NOT NULL, name TEXT NOT NULL, failures INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
  last_error TEXT NOT NULL, PRIMARY KEY (ord, name));
";

/// A file of an ORD that could not be read, as the ledger counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    pub name: String,
    /// Cycles in a row in which it could not be read.
    pub failures: u32,
    pub first_at: String,
    pub last_error: String,
}

/// Version 6: a checksum of each row that decides what is sent (sent files, ORD profiles, mobility
/// records, sequences), computed on write and checked on every read: a byte flipped on disk is
/// refused as damage instead of being netted or compared. Filled for existing rows by
/// `fill_row_sums`.
const MIGRATION_6: &str = "
ALTER TABLE sent_files ADD COLUMN row_sum INTEGER;
ALTER TABLE ord_profiles ADD COLUMN row_sum INTEGER;
ALTER TABLE mobility_records ADD COLUMN row_sum INTEGER;
ALTER TABLE sequences ADD COLUMN row_sum INTEGER;
";

/// A row's checksum: CRC-32 of its fields, each length-prefixed (a missing value has its own
/// prefix), after the table's name.
struct RowSum(crc32fast::Hasher);

impl RowSum {
    fn new(table: &str) -> RowSum {
        let mut h = crc32fast::Hasher::new();
        h.update(table.as_bytes());
        RowSum(h)
    }
    fn text(mut self, v: &str) -> RowSum {
        self.0.update(&(v.len() as u64).to_le_bytes());
        self.0.update(v.as_bytes());
        self
    }
    fn int(mut self, v: i64) -> RowSum {
        self.0.update(&8u64.to_le_bytes());
        self.0.update(&v.to_le_bytes());
        self
    }
    fn opt_text(self, v: Option<&str>) -> RowSum {
        match v {
            Some(v) => self.text(v),
            None => self.none(),
        }
    }
    fn opt_int(self, v: Option<i64>) -> RowSum {
        match v {
            Some(v) => self.int(v),
            None => self.none(),
        }
    }
    fn none(mut self) -> RowSum {
        self.0.update(&u64::MAX.to_le_bytes());
        self
    }
    fn finish(self) -> i64 {
        i64::from(self.0.finalize())
    }
}

#[allow(clippy::too_many_arguments)]
fn sent_sum(
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

fn profile_sum(ord: &str, cpe: &str, day: &str, tid: i64, ntransm: i64, readings: &str) -> i64 {
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
/// Makes each `(ord, day)` an open day unless the ledger has it already.
fn open_days<'a>(
    tx: &Connection,
    days: impl IntoIterator<Item = (&'a str, NaiveDate)>,
) -> rusqlite::Result<()> {
    for (ord, day) in days {
        exec(
            tx,
            "INSERT OR IGNORE INTO days (ord, day, state) VALUES (?1, ?2, 'open')",
            params![ord, day_text(day)],
        )?;
    }
    Ok(())
}

/// A record's place as the ledger keeps it (JSON), or `None`.
fn place_text(path: &Path, place: Option<&Place>) -> Result<Option<String>, StoreError> {
    place
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: "place",
            detail: e.to_string(),
        })
}

#[allow(clippy::too_many_arguments)]
fn mobility_sum(
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

fn sequence_sum(ord: &str, last_id: i64) -> i64 {
    RowSum::new("sequences").text(ord).int(last_id).finish()
}

/// Gives every row of the checked tables its checksum (the migration to version 6).
fn fill_row_sums(tx: &Connection) -> rusqlite::Result<()> {
    fill_table_sums(tx, "sent_files", "ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash, pack, pack_offset, pack_len", |r| {
        Ok(sent_sum(
            sql::text(r, 1)?,
            sql::text(r, 2)?,
            sql::text(r, 3)?,
            (r.get(4)?, r.get(5)?),
            (sql::text(r, 6)?, sql::text(r, 7)?, sql::text(r, 8)?),
            sql::text(r, 9)?,
            sql::text(r, 10)?,
            (sql::opt_text(r, 11)?, r.get(12)?, r.get(13)?),
        ))
    })?;
    fill_table_sums(
        tx,
        "ord_profiles",
        "ord, cpe, day, transmission_id, ntransm, readings",
        |r| {
            Ok(profile_sum(
                sql::text(r, 1)?,
                sql::text(r, 2)?,
                sql::text(r, 3)?,
                r.get(4)?,
                r.get(5)?,
                sql::text(r, 6)?,
            ))
        },
    )?;
    fill_table_sums(
        tx,
        "mobility_records",
        "key, last_updated, ord, cpe, ceme, credit_of, energy",
        |r| {
            Ok(mobility_sum(
                sql::text(r, 1)?,
                sql::text(r, 2)?,
                sql::text(r, 3)?,
                sql::text(r, 4)?,
                sql::text(r, 5)?,
                sql::opt_text(r, 6)?,
                sql::text(r, 7)?,
                None,
            ))
        },
    )?;
    fill_table_sums(tx, "sequences", "ord, last_id", |r| {
        Ok(sequence_sum(sql::text(r, 1)?, r.get(2)?))
    })
}

/// Sets `row_sum` of every row of `table`, computed by `sum` from the row's `rowid` (column 0)
/// and `columns` (from column 1 on).
fn fill_table_sums(
    tx: &Connection,
    table: &str,
    columns: &str,
    sum: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<i64>,
) -> rusqlite::Result<()> {
    let rows: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare(&format!("SELECT rowid, {columns} FROM {table}"))?;
        let mapped = stmt.query_map([], |r| Ok((r.get(0)?, sum(r)?)))?;
        mapped.collect::<Result<_, _>>()?
    };
    for (id, sum) in rows {
        tx.execute(
            &format!("UPDATE {table} SET row_sum = ?2 WHERE rowid = ?1"),
            params![id, sum],
        )?;
    }
    Ok(())
}

/// Version 5: the ledger's own identity (`ledger_id`, random, made once), which the outbox's
/// high-water mark carries: a re-created or different ledger is recognised as such.
const MIGRATION_5: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Version 4: received ORD files archived in packs, each at an offset of its pack (its length is the
/// file's size; NULL: a file of its own, as kept before version 4, and every quarantined file).
const MIGRATION_4: &str = "
ALTER TABLE received_files ADD COLUMN stored_offset INTEGER;
";

/// Version 3: sent files kept in outbox packs, each at a slice of its pack (NULL: a file of its own,
/// as written before version 3).
const MIGRATION_3: &str = "
ALTER TABLE sent_files ADD COLUMN pack TEXT;
ALTER TABLE sent_files ADD COLUMN pack_offset INTEGER;
ALTER TABLE sent_files ADD COLUMN pack_len INTEGER;
";

/// Version 2: the last inbound id per ORD by index (it was a scan per received file: quadratic).
const MIGRATION_2: &str = "
CREATE INDEX received_by_transmission ON received_files (ord, transmission_id);
";

const MIGRATION_1: &str = "
CREATE TABLE received_files (
  id INTEGER PRIMARY KEY, ord TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
  sha256 TEXT NOT NULL, status TEXT NOT NULL, diagnostics TEXT NOT NULL, cpe TEXT, first_day TEXT, last_day TEXT,
  transmission_id INTEGER, previous_id INTEGER, ntransm INTEGER, received_at TEXT NOT NULL, stored_path TEXT NOT NULL,
  UNIQUE (ord, name, size, mtime, sha256));
CREATE INDEX received_by_sha ON received_files (ord, sha256);
CREATE TABLE ord_profiles (
  ord TEXT NOT NULL, cpe TEXT NOT NULL, day TEXT NOT NULL, received_file_id INTEGER NOT NULL REFERENCES received_files(id),
  transmission_id INTEGER NOT NULL, ntransm INTEGER NOT NULL, received_at TEXT NOT NULL, readings TEXT NOT NULL,
  PRIMARY KEY (ord, cpe, day));
CREATE TABLE mobility_sources (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, sha256 TEXT NOT NULL,
  status TEXT NOT NULL, report TEXT NOT NULL, ingested_at TEXT NOT NULL, stored_path TEXT NOT NULL,
  UNIQUE (name, size, mtime, sha256));
CREATE TABLE mobility_records (
  key TEXT PRIMARY KEY, last_updated TEXT NOT NULL, ord TEXT NOT NULL, cpe TEXT NOT NULL, ceme TEXT NOT NULL,
  credit_of TEXT, first_start INTEGER, last_start INTEGER, energy TEXT NOT NULL, source TEXT NOT NULL);
CREATE INDEX mobility_by_range ON mobility_records (ord, first_start, last_start);
CREATE INDEX mobility_credits ON mobility_records (credit_of);
CREATE TABLE sequences (ord TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE sent_files (
  id INTEGER PRIMARY KEY, ord TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, transmission_id INTEGER NOT NULL,
  previous_id INTEGER NOT NULL, cpe TEXT NOT NULL, supplier TEXT NOT NULL, tariff TEXT NOT NULL, day TEXT NOT NULL,
  content_hash TEXT NOT NULL, written_at TEXT NOT NULL, delivered_at TEXT,
  UNIQUE (ord, transmission_id), UNIQUE (ord, name));
CREATE INDEX sent_by_file ON sent_files (ord, cpe, day, supplier, tariff, id);
CREATE TABLE days (ord TEXT NOT NULL, day TEXT NOT NULL, state TEXT NOT NULL, closed_at TEXT, PRIMARY KEY (ord, day));
CREATE TABLE ord_state (ord TEXT PRIMARY KEY, last_send TEXT);
CREATE TABLE netting_results (
  ord TEXT NOT NULL, day TEXT NOT NULL, cpe TEXT NOT NULL, computed_at TEXT NOT NULL, anomalies INTEGER NOT NULL,
  report TEXT NOT NULL, PRIMARY KEY (ord, day, cpe));
CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, ord TEXT, kind TEXT NOT NULL, detail TEXT NOT NULL);
";

/// Maps a SQLite error to a `StoreError` naming the store's file.
fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// The last transmission id taken for `ord` (its sequence), if any.
/// Runs a statement through the connection's statement cache (hot paths run some thousands of
/// times a cycle; parsing the SQL each time was a tenth of the cycle's CPU).
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// A one-row query through the statement cache.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The last id taken for `ord`, its row checked: `Err(None)` a SQLite error is in the first
/// field, a damaged row in the second.
fn last_id_taken(conn: &Connection, ord: &str) -> Result<Option<u64>, RowError> {
    let row: Option<(i64, Option<i64>)> = one(
        conn,
        "SELECT last_id, row_sum FROM sequences WHERE ord = ?1",
        params![ord],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(RowError::Sqlite)?;
    let Some((last, sum)) = row else {
        return Ok(None);
    };
    if sum != Some(sequence_sum(ord, last)) {
        return Err(RowError::Damaged(format!("sequence of {ord}")));
    }
    u64::try_from(last)
        .map(Some)
        .map_err(|_| RowError::Damaged(format!("sequence of {ord}: {last}")))
}

/// Writes the sequence of `ord` with its checksum.
fn put_sequence(conn: &Connection, ord: &str, last: i64) -> rusqlite::Result<usize> {
    exec(
        conn,
        "INSERT INTO sequences (ord, last_id, row_sum) VALUES (?1, ?2, ?3)
         ON CONFLICT (ord) DO UPDATE SET last_id = excluded.last_id, row_sum = excluded.row_sum",
        params![ord, last, sequence_sum(ord, last)],
    )
}

/// A u64 id as SQLite's INTEGER (ids beyond i64 cannot be written: saturated, then refused by
/// the UNIQUE constraints rather than wrapped).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Inserts a sent file's row with its checksum.
fn insert_sent(
    conn: &Connection,
    ord: &str,
    (id, previous): (i64, i64),
    w: &OutboundWrite,
    delivered_at: Option<DateTime<Utc>>,
) -> rusqlite::Result<usize> {
    let day = day_text(w.day);
    let pack = w.pack.as_ref().map(|p| p.pack.as_str());
    let kept_name = kept_sent_name(&w.name, &w.supplier, w.tariff, w.cpe, (w.day, id));
    let offset = w.pack.as_ref().map(|p| to_i64(p.offset));
    let len = w.pack.as_ref().map(|p| to_i64(p.len));
    let sum = sent_sum(
        ord,
        &w.name,
        &w.sha256,
        (id, previous),
        (w.cpe.as_str(), &w.supplier, w.tariff.code()),
        &day,
        &w.content_hash,
        (pack, offset, len),
    );
    exec(
        conn,
        "INSERT INTO sent_files (ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash, written_at,
                                 delivered_at, pack, pack_offset, pack_len, row_sum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            ord, kept_name, HashRef(&w.sha256), id, previous, Compact(&w.cpe), w.supplier, Col(&w.tariff), Compact(&w.day), HashRef(&w.content_hash),
            w.at.timestamp(), delivered_at.map(|t| t.timestamp()), pack.map(PackNameRef), offset, len, sum
        ],
    )
}

/// The files of an ORD after an id, in id order (only the pending ones: through `sent_pending`).
fn sent_query_sql(only_pending: bool) -> String {
    format!(
        "SELECT {SENT_COLUMNS}
         FROM sent_files WHERE ord = ?1 AND transmission_id > ?2 {} ORDER BY transmission_id LIMIT ?3",
        if only_pending { "AND delivered_at IS NULL" } else { "" }
    )
}

/// How many files of an ORD are pending (through `sent_pending`).
const PENDING_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM sent_files WHERE ord = ?1 AND delivered_at IS NULL";

/// How a sent file's name is written (schema 13): the one-byte offset of its generation date when
/// the name is exactly what its columns give (`ledger::name_offset`), else the text.
fn kept_sent_name(
    name: &str,
    supplier: &str,
    tariff: TariffCycle,
    cpe: Cpe,
    (day, id): (NaiveDate, i64),
) -> rusqlite::types::Value {
    let offset = u64::try_from(id)
        .ok()
        .and_then(|id| crate::ledger::name_offset(name, supplier, tariff, cpe, (day, id)))
        .and_then(|k| u8::try_from(k).ok());
    match offset {
        Some(k) => rusqlite::types::Value::Blob(vec![k]),
        None => rusqlite::types::Value::Text(name.to_string()),
    }
}

/// Whether `text` is a sha256 as the ledger writes it: 64 lowercase hex digits. A hash that is not
/// is a damaged row (a flipped byte), never a content to compare against.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a SQLite error is one only a damaged ledger gives: a corrupt page, a page that fails
/// its checksum (`SQLITE_IOERR_DATA`), a file that is not a database.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    ) || matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_IOERR_DATA)
}

/// The device and inode of the file at `path` (None: not there, or no such notion here).
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A SQLite result turned into the store's error, naming the ledger's file: the one way the store
/// reports SQLite's failures.
trait InStore<T> {
    fn in_store(self, store: &Store) -> Result<T, StoreError>;
}

impl<T> InStore<T> for rusqlite::Result<T> {
    fn in_store(self, store: &Store) -> Result<T, StoreError> {
        self.map_err(|e| store.sq(e))
    }
}

/// The ledger.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Device and inode of the file opened (see [`Store::check_in_place`]).
    identity: Option<(u64, u64)>,
    /// Events recorded and not yet taken into a cycle's summary.
    events_written: std::sync::Mutex<Vec<(Option<String>, EventKind)>>,
}

impl Store {
    /// Opens (creating if needed) and migrates the store. Every page of the ledger carries a
    /// checksum, checked as the page is read (`page_sums`): a ledger that is not a database, or
    /// whose pages lost their checksums, is refused as [`StoreError::Damaged`]; a page that fails
    /// its checksum fails the query that reads it. A ledger from before (schema < 17) is given its
    /// checksums once here (`VACUUM`: the file is rewritten). The whole ledger is read and checked
    /// only by [`Store::open_checked`] (`verify`, `backup`, `recover`).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let sq = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let damaged = |source: rusqlite::Error| {
            if is_damage(&source) {
                StoreError::Damaged {
                    path: path.to_path_buf(),
                    detail: source.to_string(),
                }
            } else {
                sq(source)
            }
        };
        page_sums::register().map_err(|rc| {
            sq(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rc),
                Some("cannot register the page-checksum VFS".into()),
            ))
        })?;
        let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let conn = Connection::open(path).map_err(damaged)?;
        if new {
            // Before its first page is written: every page of a new ledger reserves its checksum.
            page_sums::reserve_bytes(&conn, i32::from(page_sums::RESERVE)).map_err(sq)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sq)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(damaged)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        // Every statement of this module stays prepared (there are fewer than this many).
        conn.set_prepared_statement_cache_capacity(64);
        let identity = file_identity(path);
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            identity,
            events_written: std::sync::Mutex::default(),
        };
        store.seal_pages()?;
        store.migrate()?;
        store.ensure_ledger_id()?;
        Ok(store)
    }

    /// [`Store::open`], then SQLite's `integrity_check` of the whole ledger (every page read, so
    /// every page's checksum checked too): for `verify`, the copy `backup` makes, and `recover`.
    pub fn open_checked(path: &Path) -> Result<Store, StoreError> {
        let store = Store::open(path)?;
        store.integrity_check()?;
        Ok(store)
    }

    /// Gives a ledger whose pages carry no checksums (one from before schema 17) its checksums:
    /// the reserved bytes set, then `VACUUM` rewrites every page (through `page_sums`, which seals
    /// each as it is written) and a checkpoint puts them in the main file. A ledger at schema 17
    /// or later without them was damaged (its header changed) and is refused.
    fn seal_pages(&mut self) -> Result<(), StoreError> {
        // What the header reserves (a new ledger answers with the 8 requested before its first
        // page was written; the unit tests read that page's header).
        let reserve = page_sums::reserve_bytes(&self.conn, -1).in_store(self)?;
        if reserve == i32::from(page_sums::RESERVE) {
            return Ok(());
        }
        let version: i64 =
            one(&self.conn, "PRAGMA user_version", [], |r| r.get(0)).in_store(self)?;
        if version >= 17 {
            return Err(StoreError::Damaged {
                path: self.path.clone(),
                detail: format!(
                    "its header reserves {reserve} bytes per page, not the 8 of their checksums"
                ),
            });
        }
        let started = std::time::Instant::now();
        page_sums::reserve_bytes(&self.conn, i32::from(page_sums::RESERVE)).in_store(self)?;
        self.conn
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .in_store(self)?;
        tracing::info!(
            store = %self.path.display(),
            seconds = started.elapsed().as_secs_f64(),
            "ledger rewritten once with a checksum in every page (schema 17)"
        );
        Ok(())
    }

    /// SQLite's `integrity_check` of the whole ledger: every page read (so every page's checksum
    /// checked), its records and constraints, and that every index holds exactly its table's rows.
    /// For `verify`, `backup` and `recover` ([`Store::open_checked`]); the daily cycle relies on
    /// the checksums of the pages it reads. `Damaged` unless ok.
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        self.check("integrity_check")
    }

    /// The SQLite check `pragma` (`integrity_check`): `Damaged` unless ok.
    fn check(&self, pragma: &str) -> Result<(), StoreError> {
        let damaged = |detail: String| StoreError::Damaged {
            path: self.path.clone(),
            detail,
        };
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA {pragma}"))
            .map_err(|e| damaged(e.to_string()))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| damaged(e.to_string()))?;
        let mut problems = Vec::new();
        for r in rows {
            let line = r.map_err(|e| damaged(e.to_string()))?;
            if line != "ok" {
                problems.push(line);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            problems.truncate(3);
            Err(damaged(problems.join("; ")))
        }
    }

    /// Gives a ledger without one its random identity (once; kept for its lifetime).
    fn ensure_ledger_id(&mut self) -> Result<(), StoreError> {
        let held: Option<String> = one(
            &self.conn,
            "SELECT value FROM meta WHERE key = 'ledger_id'",
            [],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        if let Some(id) = held {
            if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.corrupt("ledger_id", &id));
            }
            return Ok(());
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| self.corrupt("ledger_id", e))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        exec(
            &self.conn,
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?1)",
            params![id],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The ledger's identity: 32 hex digits, random, made when the ledger was created.
    pub fn ledger_id(&self) -> Result<String, StoreError> {
        one(
            &self.conn,
            "SELECT value FROM meta WHERE key = 'ledger_id'",
            [],
            |r| r.get(0),
        )
        .in_store(self)
    }

    /// An online, consistent copy of the whole ledger into the new file `dest` (SQLite's backup
    /// API, all pages in one step under a read lock: safe beside a process that writes; the copy
    /// is a single file, not in WAL mode).
    pub fn backup_into(&self, dest: &Path) -> Result<(), StoreError> {
        use rusqlite::backup::{Backup, StepResult};
        let sq = |source| StoreError::Sqlite {
            path: dest.to_path_buf(),
            source,
        };
        let mut copy = Connection::open(dest).map_err(sq)?;
        {
            let backup = Backup::new(&self.conn, &mut copy).map_err(sq)?;
            loop {
                match backup.step(-1).map_err(sq)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
        }
        copy.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sq)?;
        copy.close().map_err(|(_, e)| sq(e))
    }

    /// The sequence of every ORD the ledger has one for.
    pub fn sequences(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let ords: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT ord FROM sequences ORDER BY ord")
                .in_store(self)?;
            let rows = stmt.query_map([], |r| r.get(0)).in_store(self)?;
            rows.collect::<Result<_, _>>().in_store(self)?
        };
        let mut out = BTreeMap::new();
        for ord in ords {
            if let Some(last) = self.last_transmission_id(&ord)? {
                out.insert(ord, last);
            }
        }
        Ok(out)
    }

    /// The business time (`now`) of the last cycle that ran, for the clock guard.
    pub fn last_cycle_now(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        one(
            &self.conn,
            "SELECT value FROM meta WHERE key = 'last_cycle_now'",
            [],
            |r| r.get::<_, Col<DateTime<Utc>>>(0),
        )
        .optional()
        .map(|t| t.map(|t| t.0))
        .in_store(self)
    }

    /// Records the business time of the cycle that runs now.
    pub fn set_last_cycle_now(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.set_meta("last_cycle_now", &time_text(now))
    }

    /// The value of `key` in the `meta` table, if any.
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        one(
            &self.conn,
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)
    }

    /// Sets `key` in the `meta` table to `value`.
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// What the server of `ord`'s send folder was last seen to lack, and since when (`None`:
    /// nothing, or never looked at).
    pub fn server_weakness(&self, ord: &str) -> Result<Option<ServerWeakness>, StoreError> {
        let value = self.meta(&format!("server_weakened:{ord}"))?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Records what the server of `ord`'s send folder lacks (`None`: nothing).
    pub fn set_server_weakness(
        &self,
        ord: &str,
        weakness: Option<&ServerWeakness>,
    ) -> Result<(), StoreError> {
        let key = format!("server_weakened:{ord}");
        match weakness {
            None => exec(&self.conn, "DELETE FROM meta WHERE key = ?1", params![key])
                .map(|_| ())
                .in_store(self),
            Some(w) => self.set_meta(&key, &serde_json::to_string(w).unwrap_or_default()),
        }
    }

    // ---------------------------------------------------------------- retention

    /// What the ledger knows of each outbox pack of `ord` not yet pruned (one pass over its sent
    /// files), and the ledger's last transmission id.
    pub fn outbox_pack_facts(
        &self,
        ord: &str,
    ) -> Result<Vec<crate::retention::PackFacts>, StoreError> {
        // Per pack and day in SQL, the days' states here: a join on the sent file's compact day
        // could not use the days' key (it scanned the ORD's days for every sent file).
        let rows: Vec<(PackName, Col<NaiveDate>, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT pack, day, MAX(transmission_id), COUNT(*), COUNT(delivered_at)
                 FROM sent_files WHERE ord = ?1 AND pack IS NOT NULL AND pruned_at IS NULL
                 GROUP BY pack, day",
            )
            .and_then(|mut st| {
                st.query_map(params![ord], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .in_store(self)?;
        let days: Vec<(Col<NaiveDate>, Col<DayState>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT day, state, closed_at FROM days WHERE ord = ?1")
            .and_then(|mut st| {
                st.query_map(params![ord], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .in_store(self)?;
        let mut closed: BTreeMap<NaiveDate, Option<DateTime<Utc>>> = BTreeMap::new();
        for (day, state, closed_at) in days {
            if state.0 == DayState::Closed {
                let at = closed_at
                    .map(|t| {
                        t.parse::<DateTime<Utc>>()
                            .map_err(|e| self.corrupt("day", format!("closed_at {t:?}: {e}")))
                    })
                    .transpose()?;
                closed.insert(day.0, at);
            }
        }
        // Per pack: its last id, whether every file was delivered, and when its last day closed
        // (only if every day of it is closed).
        let mut packs: BTreeMap<String, crate::retention::PackFacts> = BTreeMap::new();
        let mut with_open_day = BTreeSet::new();
        for (pack, day, last, count, delivered) in rows {
            let facts =
                packs
                    .entry(pack.0)
                    .or_insert_with_key(|pack| crate::retention::PackFacts {
                        pack: pack.clone(),
                        last_id: 0,
                        all_closed_at: None,
                        all_delivered: true,
                    });
            facts.last_id = facts.last_id.max(u64::try_from(last).unwrap_or(0));
            facts.all_delivered &= count == delivered;
            match closed.get(&day.0) {
                Some(&at) => facts.all_closed_at = facts.all_closed_at.max(at),
                None => {
                    with_open_day.insert(facts.pack.clone());
                }
            }
        }
        Ok(packs
            .into_values()
            .map(|mut facts| {
                if with_open_day.contains(&facts.pack) {
                    facts.all_closed_at = None;
                }
                facts
            })
            .collect())
    }

    /// The packs of `ord` whose every file is marked pruned (their file may be deleted).
    pub fn pruned_packs(&self, ord: &str) -> Result<BTreeSet<String>, StoreError> {
        self.rows(
            "SELECT pack FROM sent_files WHERE ord = ?1 AND pack IS NOT NULL
             GROUP BY pack HAVING COUNT(pruned_at) = COUNT(*)",
            params![ord],
        )
        .map(|v: Vec<PackName>| v.into_iter().map(|p| p.0).collect())
    }

    /// Marks the files of outbox pack `pack` as pruned (before the pack is deleted): how many.
    pub fn mark_pack_pruned(
        &self,
        ord: &str,
        pack: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        exec(
            &self.conn,
            "UPDATE sent_files SET pruned_at = ?3 WHERE ord = ?1 AND pack = ?2 AND pruned_at IS NULL",
            params![ord, PackNameRef(pack), time_text(at)],
        )
        .in_store(self)
    }

    /// Marks the received files of `ord` kept under `folder` as pruned (before it is deleted).
    pub fn mark_kept_under_pruned(
        &self,
        ord: &str,
        folder: &Path,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let prefix = format!("{}/", folder.display());
        exec(
            &self.conn,
            "UPDATE received_files SET pruned_at = ?3
             WHERE ord = ?1 AND substr(stored_path, 1, length(?2)) = ?2 AND pruned_at IS NULL",
            params![ord, prefix, time_text(at)],
        )
        .in_store(self)
    }

    /// Marks the received file of `ord` kept at `file` (a quarantined copy) as pruned.
    pub fn mark_kept_file_pruned(
        &self,
        ord: &str,
        file: &Path,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        exec(
            &self.conn,
            "UPDATE received_files SET pruned_at = ?3 WHERE ord = ?1 AND stored_path = ?2 AND pruned_at IS NULL",
            params![ord, file.display().to_string(), time_text(at)],
        )
        .in_store(self)
    }

    /// Forgets the netting inputs (ORD profiles, netting results, missing-file marks, mobility
    /// records wholly before `keep_from`) of the closed days of `ord` before `keep_from` that closed
    /// before `closed_before`: how many days.
    pub fn prune_details(
        &self,
        ord: &str,
        keep_from: NaiveDate,
        closed_before: DateTime<Utc>,
        keep_mobility_from: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let days: Vec<NaiveDate> = self.rows(
            "SELECT day FROM days WHERE ord = ?1 AND state = 'closed' AND day < ?2 AND closed_at < ?3
               AND (EXISTS (SELECT 1 FROM ord_profiles p WHERE p.ord = days.ord AND p.day = days.day)
                 OR EXISTS (SELECT 1 FROM netting_results n WHERE n.ord = days.ord AND n.day = days.day))",
            params![ord, day_text(keep_from), time_text(closed_before)],
        )?;
        for day in &days {
            for table in ["ord_profiles", "netting_results", "missing_ord_files"] {
                exec(
                    &self.conn,
                    &format!("DELETE FROM {table} WHERE ord = ?1 AND day = ?2"),
                    params![ord, day_text(*day)],
                )
                .in_store(self)?;
            }
        }
        if let Some(oldest_kept) = days.iter().max().map(|d| *d + chrono::Days::new(1)) {
            // A record goes when its last quarter-hour is before the first day kept (a day earlier
            // in UTC, for every ORD's time zone), and before `keep_mobility_from`.
            let before = oldest_kept
                .pred_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().min(keep_mobility_from));
            if let Some(before) = before {
                exec(
                    &self.conn,
                    "DELETE FROM mobility_records WHERE ord = ?1 AND last_start < ?2
                       AND NOT EXISTS (SELECT 1 FROM mobility_records c WHERE c.credit_of = mobility_records.key AND c.last_start >= ?2)",
                    params![ord, before.timestamp()],
                )
                .in_store(self)?;
            }
        }
        Ok(days.len())
    }

    /// Reopens a closed day of `ord`: whether it was closed.
    pub fn reopen_day(&self, ord: &str, day: NaiveDate) -> Result<bool, StoreError> {
        exec(
            &self.conn,
            "UPDATE days SET state = 'open', closed_at = NULL, dirty_seen = NULL WHERE ord = ?1 AND day = ?2 AND state = 'closed'",
            params![ord, day_text(day)],
        )
        .map(|n| n > 0)
        .in_store(self)
    }

    /// The ledger's file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails with [`StoreError::Replaced`] when the file at the store's path is no longer the one
    /// this process opened (deleted, or replaced by another file): whatever is recorded from then
    /// on would be lost with the unlinked file.
    pub fn check_in_place(&self) -> Result<(), StoreError> {
        match (self.identity, file_identity(&self.path)) {
            (Some(opened), Some(now)) if opened == now => Ok(()),
            (None, _) => Ok(()),
            _ => Err(StoreError::Replaced {
                path: self.path.clone(),
            }),
        }
    }

    /// Opens a batch: the writes that follow (each still atomic on its own, as a savepoint) become
    /// durable together at `commit_batch`, with one sync instead of one per write. A batch left open
    /// by an error is ended by `rollback_batch`; a crash rolls it back.
    pub fn begin_batch(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").in_store(self)
    }

    /// Makes the open batch durable.
    pub fn commit_batch(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT").in_store(self)
    }

    /// Drops the open batch, if any (after an error: nothing of it was promised to anyone).
    pub fn rollback_batch(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn sq(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn read_err(&self, e: RowError) -> StoreError {
        match e {
            RowError::Sqlite(e) => self.sq(e),
            RowError::Damaged(detail) => self.corrupt("row (checksum mismatch)", detail),
        }
    }

    /// Whether `sql` (a `SELECT 1 … LIMIT 1`) finds a row.
    fn exists(&self, sql: &str, params: impl rusqlite::Params) -> Result<bool, StoreError> {
        one(&self.conn, sql, params, |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .in_store(self)
    }

    /// Every row `sql` gives, each read by its type's `from_row`.
    fn rows<T: FromRow>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).in_store(self)?;
        let mut rows = stmt.query(params).in_store(self)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().in_store(self)? {
            out.push(T::from_row(r).map_err(|e| self.read_err(e))?);
        }
        Ok(out)
    }

    /// The one row `sql` gives, if any, read by its type's `from_row`.
    fn row<T: FromRow>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).in_store(self)?;
        let mut rows = stmt.query(params).in_store(self)?;
        match rows.next().in_store(self)? {
            Some(r) => T::from_row(r).map(Some).map_err(|e| self.read_err(e)),
            None => Ok(None),
        }
    }

    fn corrupt(&self, what: &'static str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            detail: detail.to_string(),
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 =
            one(&self.conn, "PRAGMA user_version", [], |r| r.get(0)).in_store(self)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (target, sql) in [
            (1, MIGRATION_1),
            (2, MIGRATION_2),
            (3, MIGRATION_3),
            (4, MIGRATION_4),
            (5, MIGRATION_5),
            (6, MIGRATION_6),
            (7, MIGRATION_7),
            (8, MIGRATION_8),
            (9, MIGRATION_9),
            (10, MIGRATION_10),
            (11, MIGRATION_11),
            (12, MIGRATION_12),
            (13, MIGRATION_13),
            (14, MIGRATION_14),
            (15, MIGRATION_15),
            (16, MIGRATION_16),
            (17, MIGRATION_17),
            (18, MIGRATION_18),
            (19, MIGRATION_19),
        ] {
            if version >= target {
                continue;
            }
            let sq = sqlite_err(&self.path);
            // Another process (a `backup` or `status` beside a new daemon) may migrate at the same
            // time: the version is read again under the write lock.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sq)?;
            let now_at: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sq)?;
            if now_at >= target {
                continue;
            }
            tx.execute_batch(sql).map_err(sq)?;
            if target == 6 {
                fill_row_sums(&tx).map_err(sq)?;
            }
            if target == 11 {
                pack_columns(&tx).map_err(sq)?;
            }
            if target == 13 {
                compact_sent_files(&tx).map_err(sq)?;
            }
            if target == 15 {
                compact_keys(&tx).map_err(sq)?;
            }
            if target == 18 {
                compact_columns(&tx, &[("mobility_records", "cpe", compact_cpe)]).map_err(sq)?;
                tx.execute_batch(MOBILITY_BY_CPE).map_err(sq)?;
            }
            if target == 19 {
                add_column(&tx, "mobility_records", "place", "TEXT").map_err(sq)?;
            }
            tx.pragma_update(None, "user_version", target).map_err(sq)?;
            tx.commit().map_err(sq)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- inbound

    /// Whether a file with this name, size and mtime was already received from `ord`.
    pub fn seen_file(
        &self,
        ord: &str,
        name: &str,
        size: u64,
        mtime: i64,
    ) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND name = ?2 AND size = ?3 AND mtime = ?4 LIMIT 1",
            params![ord, name, size, mtime],
        )
    }

    /// Whether identical bytes were already received (and usable) from `ord`.
    pub fn seen_content(&self, ord: &str, sha256: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND sha256 = ?2 AND status != 'rejected' LIMIT 1",
            params![ord, HashRef(sha256)],
        )
    }

    /// The ORD version in force for a CPE-day, if any.
    pub fn profile_version(
        &self,
        ord: &str,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        Ok(self.profile_row(ord, cpe, day)?.map(|p| p.version))
    }

    /// The ORD profile in force for a CPE-day and its version, from one read of its row.
    pub fn profile_in_force(
        &self,
        ord: &str,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Option<(ProfileVersion, DayProfile)>, StoreError> {
        self.profile_row(ord, cpe, day)?
            .map(|p| {
                let profile = p.profile().map_err(|e| self.read_err(e))?;
                Ok((p.version, profile))
            })
            .transpose()
    }

    /// An ORD profile row, its checksum checked.
    fn profile_row(
        &self,
        ord: &str,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Option<ProfileRow>, StoreError> {
        self.row(
            &format!("SELECT {PROFILE_COLUMNS} FROM ord_profiles WHERE ord = ?1 AND cpe = ?2 AND day = ?3"),
            params![ord, Col(cpe), Col(&day)],
        )
    }

    fn cpes_of_day(&self, sql: &str, ord: &str, day: NaiveDate) -> Result<Vec<Cpe>, StoreError> {
        self.rows(sql, params![ord, Col(&day)])
    }

    /// CPEs with an ORD profile for `day`.
    pub fn profile_cpes(&self, ord: &str, day: NaiveDate) -> Result<Vec<Cpe>, StoreError> {
        self.cpes_of_day(
            "SELECT cpe FROM ord_profiles WHERE ord = ?1 AND day = ?2",
            ord,
            day,
        )
    }

    /// The highest transmission id received (valid files) from `ord`.
    pub fn last_inbound_id(&self, ord: &str) -> Result<Option<u64>, StoreError> {
        one(
            &self.conn,
            "SELECT MAX(transmission_id) FROM received_files WHERE ord = ?1 AND status != 'rejected'",
            params![ord],
            |r| r.get::<_, Option<u64>>(0),
        )
        .in_store(self)
    }

    /// Records a received file and, in the same transaction, the profiles it puts in force.
    pub fn record_inbound(
        &mut self,
        file: &ReceivedFile,
        applied: &[(Cpe, &DayProfile)],
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let sq = sqlite_err(path);
        let tx = conn.savepoint().map_err(sq)?;
        exec(
            &tx,
            "INSERT OR IGNORE INTO received_files (ord, name, size, mtime, sha256, status, diagnostics, cpe, first_day, last_day,
               transmission_id, previous_id, ntransm, received_at, stored_path, stored_offset)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                file.ord, file.name, file.size, file.mtime, HashRef(&file.sha256), file.status.as_str(), file.diagnostics,
                file.cpe.as_ref().map(Compact), file.first_day.map(day_text), file.last_day.map(day_text),
                file.transmission_id, file.previous_id, file.ntransm,
                time_text(file.received_at), file.stored_path, file.stored_offset
            ],
        )
        .map_err(sq)?;
        let file_id: i64 = one(
            &tx,
            "SELECT id FROM received_files WHERE ord = ?1 AND name = ?2 AND size = ?3 AND mtime = ?4 AND sha256 = ?5",
            params![file.ord, file.name, file.size, file.mtime, HashRef(&file.sha256)],
            |r| r.get(0),
        )
        .map_err(sq)?;
        for (cpe, profile) in applied {
            let readings = serde_json::to_string(profile).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                what: "profile",
                detail: e.to_string(),
            })?;
            let day = day_text(profile.day);
            let tid = to_i64(file.transmission_id.unwrap_or(0));
            let ntransm = to_i64(file.ntransm.unwrap_or(0));
            let sum = profile_sum(&file.ord, cpe.as_str(), &day, tid, ntransm, &readings);
            exec(
                &tx,
                "INSERT INTO ord_profiles (ord, cpe, day, received_file_id, transmission_id, ntransm, received_at, readings, row_sum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (ord, cpe, day) DO UPDATE SET received_file_id = excluded.received_file_id,
                   transmission_id = excluded.transmission_id, ntransm = excluded.ntransm,
                   received_at = excluded.received_at, readings = excluded.readings, row_sum = excluded.row_sum",
                params![
                    file.ord, cpe.as_str(), day, file_id, tid, ntransm,
                    time_text(file.received_at), Packed(readings), sum
                ],
            )
            .map_err(sq)?;
            exec(
                &tx,
                "INSERT OR IGNORE INTO days (ord, day, state) VALUES (?1, ?2, 'open')",
                params![file.ord, day_text(profile.day)],
            )
            .map_err(sq)?;
            exec(
                &tx,
                "INSERT INTO dirty (ord, cpe, day) VALUES (?1, ?2, ?3)",
                params![file.ord, cpe.as_str(), day_text(profile.day)],
            )
            .map_err(sq)?;
        }
        tx.commit().map_err(sq)
    }

    /// Inbound files received, oldest first, as recorded (for `status` and `verify`).
    pub fn received(&self, ord: &str) -> Result<Vec<(String, ReceivedStatus, String)>, StoreError> {
        self.rows(
            "SELECT name, status, sha256 FROM received_files WHERE ord = ?1 ORDER BY id",
            params![ord],
        )
    }

    /// The id the next received file will get: names the archive pack of a batch that starts now.
    /// Ids only grow (no received row is ever deleted), and a batch that was rolled back gave its
    /// ids back, so only the rerun of a batch that never committed can reuse a pack's name.
    pub fn next_received_id(&self) -> Result<u64, StoreError> {
        one(
            &self.conn,
            "SELECT COALESCE(MAX(id), 0) + 1 FROM received_files",
            [],
            |r| r.get::<_, u64>(0),
        )
        .in_store(self)
    }

    /// Every received file of `ord` with where its copy was kept (for `verify`).
    pub fn received_copies(&self, ord: &str) -> Result<Vec<ReceivedCopy>, StoreError> {
        self.rows(
            &format!("SELECT {COPY_COLUMNS} FROM received_files WHERE ord = ?1 ORDER BY id"),
            params![ord],
        )
    }

    /// The name recorded for transmission id `id` of `ord`, if the ledger has a row for it.
    pub fn sent_name(&self, ord: &str, id: u64) -> Result<Option<String>, StoreError> {
        Ok(self.sent_names_between(ord, id, id)?.remove(&id))
    }

    /// The names the ledger recorded for the ids of `ord` from `lo` to `hi`, in one read (the
    /// fence compares a whole listing of the ORD's folder with them).
    pub fn sent_names_between(
        &self,
        ord: &str,
        lo: u64,
        hi: u64,
    ) -> Result<BTreeMap<u64, String>, StoreError> {
        let rows: Vec<Result<(u64, String), RowError>> = self
            .conn
            .prepare_cached(
                "SELECT transmission_id, name, supplier, tariff, cpe, day FROM sent_files
                 WHERE ord = ?1 AND transmission_id BETWEEN ?2 AND ?3",
            )
            .and_then(|mut st| {
                st.query_map(params![ord, bound(lo), bound(hi)], |r| {
                    let id: i64 = r.get(0)?;
                    let (supplier, tariff, cpe, day) = (
                        sql::text(r, 2)?,
                        sql::text(r, 3)?,
                        r.get::<_, Col<Cpe>>(4)?.0,
                        r.get::<_, Col<NaiveDate>>(5)?.0,
                    );
                    Ok(
                        rows::sent_name(r.get_ref(1)?, supplier, tariff, cpe, (day, id))
                            .map(|name| (u64::try_from(id).unwrap_or(0), name)),
                    )
                })?
                .collect()
            })
            .in_store(self)?;
        rows.into_iter()
            .map(|r| r.map_err(|e| self.read_err(e)))
            .collect()
    }

    // ---------------------------------------------------------------- unreadable files

    /// Counts one more cycle in which `name` of `ord` could not be read; returns the count.
    pub fn record_file_failure(
        &self,
        ord: &str,
        name: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<u32, StoreError> {
        let at = time_text(at);
        exec(
            &self.conn,
            "INSERT INTO intake_failures (ord, name, failures, first_at, last_at, last_error) VALUES (?1, ?2, 1, ?3, ?3, ?4)
             ON CONFLICT (ord, name) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at, last_error = excluded.last_error",
            params![ord, name, at, error],
        )
        .in_store(self)?;
        one(
            &self.conn,
            "SELECT failures FROM intake_failures WHERE ord = ?1 AND name = ?2",
            params![ord, name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .in_store(self)
    }

    /// Forgets the failures of `name` (it was read), or of every file of `ord` not in `listed`
    /// (gone from the ORD's folder).
    pub fn clear_file_failure(&self, ord: &str, name: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "DELETE FROM intake_failures WHERE ord = ?1 AND name = ?2",
            params![ord, name],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The files of `ord` that could not be read, most failures first.
    pub fn file_failures(&self, ord: &str) -> Result<Vec<FileFailure>, StoreError> {
        self.rows(
            &format!("SELECT {FAILURE_COLUMNS} FROM intake_failures WHERE ord = ?1 ORDER BY failures DESC, name"),
            params![ord],
        )
    }

    // ---------------------------------------------------------------- recovery

    /// Records a file found in the outbox or at the ORD under transmission id `id` (see `recover`):
    /// a row as `record_outbound` would have written, `delivered_at` set when the ORD holds it. The
    /// sequence is not moved here ([`Store::raise_sequence`]).
    pub fn record_recovered(
        &self,
        ord: &str,
        id: u64,
        previous: u64,
        w: &OutboundWrite,
        delivered_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let id = i64::try_from(id).map_err(|e| self.corrupt("transmission_id", e))?;
        let previous = i64::try_from(previous).map_err(|e| self.corrupt("previous_id", e))?;
        let (conn, sq) = (&self.conn, sqlite_err(&self.path));
        insert_sent(conn, ord, (id, previous), w, delivered_at).map_err(sq)?;
        exec(
            conn,
            "INSERT OR IGNORE INTO days (ord, day, state) VALUES (?1, ?2, 'open')",
            params![ord, day_text(w.day)],
        )
        .map(|_| ())
        .map_err(sq)
    }

    /// Marks the file of `ord` with transmission id `id` and name `name` delivered, if it is not
    /// yet; whether it changed anything.
    pub fn mark_delivered_by_name(
        &self,
        ord: &str,
        (id, name): (u64, &str),
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if self.sent_name(ord, id)?.as_deref() != Some(name) {
            return Ok(false);
        }
        exec(
            &self.conn,
            "UPDATE sent_files SET delivered_at = ?3 WHERE ord = ?1 AND transmission_id = ?2 AND delivered_at IS NULL",
            params![ord, bound(id), at.timestamp()],
        )
        .map(|n| n > 0)
        .in_store(self)
    }

    /// Moves the sequence of `ord` up to `last` (never down).
    pub fn raise_sequence(&self, ord: &str, last: u64) -> Result<(), StoreError> {
        let held = self.last_transmission_id(ord)?;
        if held.is_some_and(|h| h >= last) {
            return Ok(());
        }
        let last = i64::try_from(last).map_err(|e| self.corrupt("last_id", e))?;
        put_sequence(&self.conn, ord, last)
            .map(|_| ())
            .in_store(self)
    }

    /// Every transmission id the ledger has a row for, for `ord`, ascending.
    pub fn sent_ids(&self, ord: &str) -> Result<Vec<u64>, StoreError> {
        self.rows(
            "SELECT transmission_id FROM sent_files WHERE ord = ?1 ORDER BY transmission_id",
            params![ord],
        )
    }

    /// Whether the ledger has a received file of `ord` with this name and content.
    pub fn received_known(&self, ord: &str, name: &str, sha256: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND name = ?2 AND sha256 = ?3 LIMIT 1",
            params![ord, name, HashRef(sha256)],
        )
    }

    /// Whether the ledger has a mobility source with this name and content.
    pub fn mobility_source_known(&self, name: &str, sha256: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM mobility_sources WHERE name = ?1 AND sha256 = ?2 LIMIT 1",
            params![name, sha256],
        )
    }

    /// The highest transmission id of a file sent to `ord`, if any (through the (ord, id) index:
    /// `status` read every sent file of the ORD for it, 1.6 GB after a month at 10,000 CPEs).
    pub fn last_sent_id(&self, ord: &str) -> Result<Option<u64>, StoreError> {
        one(
            &self.conn,
            "SELECT MAX(transmission_id) FROM sent_files WHERE ord = ?1",
            params![ord],
            |r| r.get(0),
        )
        .in_store(self)
    }

    /// The last transmission id taken for `ord`, if any.
    pub fn last_transmission_id(&self, ord: &str) -> Result<Option<u64>, StoreError> {
        last_id_taken(&self.conn, ord).map_err(|e| self.read_err(e))
    }

    // ---------------------------------------------------------------- mobility

    pub fn mobility_source_seen(
        &self,
        name: &str,
        size: u64,
        mtime: i64,
    ) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM mobility_sources WHERE name = ?1 AND size = ?2 AND mtime = ?3 LIMIT 1",
            params![name, size, mtime],
        )
    }

    /// `last_updated` of the record held under `key`.
    pub fn mobility_last_updated(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let record: Option<StoredMobility> = self.row(
            &format!("SELECT {MOBILITY_COLUMNS} FROM mobility_records WHERE key = ?1"),
            params![key],
        )?;
        Ok(record.map(|r| r.last_updated))
    }

    /// Records a mobility source file and the records it puts in force, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn record_mobility(
        &mut self,
        name: &str,
        size: u64,
        mtime: i64,
        sha256: &str,
        status: MobilityFileStatus,
        report: &str,
        stored_path: &str,
        at: DateTime<Utc>,
        records: &[StoredMobility],
        days: &[(String, NaiveDate)],
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let sq = sqlite_err(path);
        let tx = conn.savepoint().map_err(sq)?;
        exec(
            &tx,
            "INSERT OR IGNORE INTO mobility_sources (name, size, mtime, sha256, status, report, ingested_at, stored_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![name, size, mtime, sha256, status.as_str(), report, time_text(at), stored_path],
        )
        .map_err(sq)?;
        for r in records {
            let energy = serde_json::to_string(&r.energy).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                what: "energy",
                detail: e.to_string(),
            })?;
            let first = r.energy.first().map(|q| q.start.timestamp());
            let last = r.energy.last().map(|q| q.start.timestamp());
            let updated = time_text(r.last_updated);
            // What the record changes: its old version's quarter-hours (it may have moved), the
            // original's for a credit, and its own.
            exec(
                &tx,
                "INSERT INTO dirty (ord, cpe, first_start, last_start)
                 SELECT ord, cpe, first_start, last_start FROM mobility_records
                 WHERE (key = ?1 OR key = ?2) AND first_start IS NOT NULL",
                params![r.key, r.credit_of],
            )
            .map_err(sq)?;
            if let (Some(f), Some(l)) = (first, last) {
                exec(
                    &tx,
                    "INSERT INTO dirty (ord, cpe, first_start, last_start) VALUES (?1, ?2, ?3, ?4)",
                    params![r.ord, Col(&r.cpe), f, l],
                )
                .map_err(sq)?;
            }
            let place = place_text(path, r.place.as_ref())?;
            let sum = mobility_sum(
                &r.key,
                &updated,
                &r.ord,
                r.cpe.as_str(),
                r.ceme.as_str(),
                r.credit_of.as_deref(),
                &energy,
                place.as_deref(),
            );
            exec(
                &tx,
                "INSERT INTO mobility_records (key, last_updated, ord, cpe, ceme, credit_of, first_start, last_start, energy, source, row_sum, place)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (key) DO UPDATE SET last_updated = excluded.last_updated, ord = excluded.ord, cpe = excluded.cpe,
                   ceme = excluded.ceme, credit_of = excluded.credit_of, first_start = excluded.first_start,
                   last_start = excluded.last_start, energy = excluded.energy, source = excluded.source, row_sum = excluded.row_sum,
                   place = excluded.place",
                params![r.key, updated, r.ord, Compact(&r.cpe), Col(&r.ceme), r.credit_of, first, last, Packed(energy), r.source, sum, place],
            )
            .map_err(sq)?;
        }
        open_days(&tx, days.iter().map(|(ord, day)| (ord.as_str(), *day))).map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Mobility records of `ord` with energy in `[from, to)`, less the credited ones.
    pub fn mobility_between(
        &self,
        ord: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredMobility>, StoreError> {
        self.rows(
            &mobility_overlapping("mobility_by_range", ""),
            params![ord, from.timestamp(), to.timestamp()],
        )
    }

    /// The mobility records that keep their place (written since version 19) with a quarter-hour
    /// at or after `from` (unix seconds), by key: those whose CPE and ORD a changed registry may
    /// decide again.
    pub fn mobility_placed_from(&self, from: i64) -> Result<Vec<StoredMobility>, StoreError> {
        self.rows(
            &format!(
                "SELECT {MOBILITY_COLUMNS} FROM mobility_records
                 WHERE place IS NOT NULL AND last_start >= ?1 ORDER BY key"
            ),
            params![from],
        )
    }

    /// Moves mobility record `r` (as read) to `ord` and `cpe`, in one transaction: the
    /// quarter-hours it leaves and those it joins are marked changed, and its days at `ord` are
    /// open days there.
    pub fn move_mobility(
        &mut self,
        r: &StoredMobility,
        ord: &str,
        cpe: Cpe,
        days: &[NaiveDate],
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let sq = sqlite_err(path);
        let energy = serde_json::to_string(&r.energy).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            what: "energy",
            detail: e.to_string(),
        })?;
        let place = place_text(path, r.place.as_ref())?;
        let sum = mobility_sum(
            &r.key,
            &time_text(r.last_updated),
            ord,
            cpe.as_str(),
            r.ceme.as_str(),
            r.credit_of.as_deref(),
            &energy,
            place.as_deref(),
        );
        let tx = conn.savepoint().map_err(sq)?;
        let mark = "INSERT INTO dirty (ord, cpe, first_start, last_start)
                    SELECT ord, cpe, first_start, last_start FROM mobility_records
                    WHERE key = ?1 AND first_start IS NOT NULL";
        exec(&tx, mark, params![r.key]).map_err(sq)?;
        exec(
            &tx,
            "UPDATE mobility_records SET ord = ?2, cpe = ?3, row_sum = ?4 WHERE key = ?1",
            params![r.key, ord, Compact(&cpe), sum],
        )
        .map_err(sq)?;
        exec(&tx, mark, params![r.key]).map_err(sq)?;
        open_days(&tx, days.iter().map(|day| (ord, *day))).map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// The registry digest the mobility records were last mapped with (`None`: never said).
    pub fn mobility_mapped_with(&self) -> Result<Option<String>, StoreError> {
        self.meta("mobility_mapped_with")
    }

    /// Records that every mobility record is mapped with the registry of `digest`.
    pub fn set_mobility_mapped_with(&self, digest: &str) -> Result<(), StoreError> {
        self.set_meta("mobility_mapped_with", digest)
    }

    /// The mobility record under `key` (to find the days a credit changes).
    pub fn mobility_record_days(
        &self,
        key: &str,
    ) -> Result<Option<(String, i64, i64)>, StoreError> {
        one(
            &self.conn,
            "SELECT ord, first_start, last_start FROM mobility_records WHERE key = ?1 AND first_start IS NOT NULL",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .in_store(self)
    }

    // ---------------------------------------------------------------- days

    pub fn days_state(&self, ord: &str) -> Result<DaysState, StoreError> {
        let mut state = DaysState::default();
        let days: Vec<(NaiveDate, DayState)> =
            self.rows("SELECT day, state FROM days WHERE ord = ?1", params![ord])?;
        for (day, s) in days {
            match s {
                DayState::Closed => state.closed.insert(day),
                DayState::Open => state.open.insert(day),
            };
        }
        let last: Option<Option<Col<NaiveDate>>> = one(
            &self.conn,
            "SELECT last_send FROM ord_state WHERE ord = ?1",
            params![ord],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        state.last_send = last.flatten().map(|d| d.0);
        Ok(state)
    }

    /// Closes days and records the daily send, in one transaction.
    pub fn finish_send(
        &mut self,
        ord: &str,
        today: NaiveDate,
        close: &[NaiveDate],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let sq = sqlite_err(path);
        let tx = conn.savepoint().map_err(sq)?;
        for d in close {
            exec(
                &tx,
                "INSERT INTO days (ord, day, state, closed_at) VALUES (?1, ?2, 'closed', ?3)
                 ON CONFLICT (ord, day) DO UPDATE SET state = 'closed', closed_at = excluded.closed_at",
                params![ord, day_text(*d), time_text(at)],
            )
            .map_err(sq)?;
        }
        exec(
            &tx,
            "INSERT INTO ord_state (ord, last_send) VALUES (?1, ?2) ON CONFLICT (ord) DO UPDATE SET last_send = excluded.last_send",
            params![ord, day_text(today)],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Closes days without a send (their window passed while nothing ran).
    pub fn close_days(
        &mut self,
        ord: &str,
        days: &[NaiveDate],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for d in days {
            exec(
                &self.conn,
                "UPDATE days SET state = 'closed', closed_at = ?3 WHERE ord = ?1 AND day = ?2",
                params![ord, day_text(*d), time_text(at)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- outbound

    /// CPEs that were sent a file for `day` before.
    pub fn sent_cpes(&self, ord: &str, day: NaiveDate) -> Result<Vec<Cpe>, StoreError> {
        self.rows(
            "SELECT DISTINCT cpe FROM sent_files WHERE ord = ?1 AND day = ?2",
            params![ord, Compact(&day)],
        )
    }

    /// The content hash of the last file sent for a CPE-day-supplier.
    pub fn last_content_hashes(
        &self,
        ord: &str,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<BTreeMap<SupplierKey, String>, StoreError> {
        Ok(self
            .sent_files_of_cpe_day(ord, cpe, day)?
            .into_iter()
            .map(|f| {
                let key = SupplierKey {
                    code: f.supplier,
                    tariff: f.tariff,
                };
                (key, f.content_hash)
            })
            .collect())
    }

    /// Takes the next transmission id of `ord`, lets `write` put the file in the outbox, and records it,
    /// all in one transaction: if `write` fails nothing is recorded and the id is not used.
    pub fn record_outbound<E>(
        &mut self,
        ord: &str,
        first_id: u64,
        write: impl FnOnce(u64, u64) -> Result<OutboundWrite, E>,
    ) -> Result<Result<SentFile, E>, StoreError> {
        let (path, _) = (self.path.clone(), ());
        let damaged = |e: RowError| match e {
            RowError::Sqlite(source) => StoreError::Sqlite {
                path: path.clone(),
                source,
            },
            RowError::Damaged(detail) => StoreError::Corrupt {
                path: path.clone(),
                what: "row (checksum mismatch)",
                detail,
            },
        };
        let sq = sqlite_err(&path);
        let tx = self.conn.savepoint().map_err(sq)?;
        let previous = last_id_taken(&tx, ord)
            .map_err(damaged)?
            .unwrap_or(first_id.saturating_sub(1));
        if previous >= MAX_TRANSMISSION_ID {
            return Err(StoreError::IdsExhausted {
                ord: ord.to_string(),
                last: previous,
            });
        }
        let id = previous + 1;
        let w = match write(id, previous) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        let (id_i, previous_i) = (to_i64(id), to_i64(previous));
        put_sequence(&tx, ord, id_i).map_err(sq)?;
        insert_sent(&tx, ord, (id_i, previous_i), &w, None).map_err(sq)?;
        let row_id = tx.last_insert_rowid();
        tx.commit().map_err(sq)?;
        Ok(Ok(SentFile {
            id: row_id,
            ord: ord.to_string(),
            name: w.name,
            sha256: w.sha256,
            transmission_id: id,
            previous_id: previous,
            cpe: w.cpe,
            supplier: w.supplier,
            tariff: w.tariff,
            day: w.day,
            content_hash: w.content_hash,
            delivered: false,
            pack: w.pack,
            pruned: false,
        }))
    }

    /// Files written for `ord` (all, or only those not yet delivered), in transmission order.
    pub fn sent_files(&self, ord: &str, only_pending: bool) -> Result<Vec<SentFile>, StoreError> {
        self.sent_query(ord, only_pending, 0, usize::MAX)
    }

    /// Every file sent for one CPE-day, in the order they were sent.
    pub fn sent_files_of_cpe_day(
        &self,
        ord: &str,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.rows(
            &format!("SELECT {SENT_COLUMNS} FROM sent_files WHERE ord = ?1 AND cpe = ?2 AND day = ?3 ORDER BY id"),
            params![ord, Compact(cpe), Compact(&day)],
        )
    }

    /// Up to `limit` files of `ord` not yet delivered, after transmission id `after`, in id order
    /// (delivery pages through them, so memory does not grow with the day's files).
    pub fn pending_after(
        &self,
        ord: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.sent_query(ord, true, after, limit)
    }

    fn sent_query(
        &self,
        ord: &str,
        only_pending: bool,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.rows(
            &sent_query_sql(only_pending),
            params![ord, bound(after), bound(limit)],
        )
    }

    pub fn mark_delivered(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "UPDATE sent_files SET delivered_at = ?2 WHERE id = ?1",
            params![id, at.timestamp()],
        )
        .map(|_| ())
        .in_store(self)
    }

    // ---------------------------------------------------------------- reports and events

    pub fn put_netting_result(
        &self,
        ord: &str,
        day: NaiveDate,
        cpe: &Cpe,
        at: DateTime<Utc>,
        anomalies: usize,
        report: &str,
    ) -> Result<bool, StoreError> {
        // Only a result that changed is written (and said to be new): the same netting of the
        // same inputs, re-run by a later send, is not a new version of its anomalies. Kept
        // compressed (the same text compresses to the same bytes, so the comparison holds).
        exec(
            &self.conn,
            "INSERT INTO netting_results (ord, day, cpe, computed_at, anomalies, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (ord, day, cpe) DO UPDATE SET computed_at = excluded.computed_at, anomalies = excluded.anomalies,
               report = excluded.report
             WHERE netting_results.report IS NOT excluded.report",
            params![ord, Col(&day), Col(cpe), Col(&at), bound(anomalies), Packed(report.to_string())],
        )
        .map(|changed| changed > 0)
        .in_store(self)
    }

    /// Records an event, logs it (WARN or ERROR by its kind, with `ord`, `kind`, `file` when the
    /// detail names one, and the cycle's span) and counts it for the metrics.
    pub fn event(
        &self,
        at: DateTime<Utc>,
        ord: Option<&str>,
        kind: EventKind,
        detail: &str,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO events (at, ord, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![time_text(at), ord, kind.as_str(), detail],
        )
        .in_store(self)?;
        let file = file_named_in(detail);
        let ord_shown = ord.unwrap_or("-");
        match kind.level() {
            EventLevel::Error => {
                tracing::error!(ord = %ord_shown, kind = %kind, file, event = true, "{detail}")
            }
            EventLevel::Warn => {
                tracing::warn!(ord = %ord_shown, kind = %kind, file, event = true, "{detail}")
            }
        }
        if let Ok(mut written) = self.events_written.lock() {
            written.push((ord.map(str::to_string), kind));
        }
        Ok(())
    }

    /// The events recorded through this store since the last call (for the cycle's summary).
    pub fn take_events_written(&self) -> Vec<(Option<String>, EventKind)> {
        self.events_written
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Events of a kind (for tests and `status`).
    pub fn events(&self, kind: EventKind) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT detail FROM events WHERE kind = ?1 ORDER BY id")
            .in_store(self)?;
        let rows = stmt
            .query_map(params![kind.as_str()], |r| r.get(0))
            .in_store(self)?;
        rows.collect::<Result<_, _>>().in_store(self)
    }

    /// Events recorded, oldest first, as `egme-ord events` lists them.
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        self.rows(
            "SELECT id, at, ord, kind, detail FROM events
             WHERE (?1 IS NULL OR ord = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR at >= ?3)
             ORDER BY id",
            params![
                filter.ord.as_deref(),
                filter.kind.map(EventKind::as_str),
                filter.since.map(time_text)
            ],
        )
    }

    /// Per day of `ord`: state, ORD data held, files sent, anomalies.
    /// How many files of `ord` were written and not yet delivered.
    pub fn pending_count(&self, ord: &str) -> Result<u64, StoreError> {
        one(&self.conn, PENDING_COUNT_SQL, params![ord], |r| {
            r.get::<_, u64>(0)
        })
        .in_store(self)
    }

    /// How `ord`'s cycle went (errors joined by `; `, empty: none) and until when the daemon
    /// leaves it out after it (`None`: it does not).
    pub fn record_ord_cycle(
        &self,
        ord: &str,
        at: DateTime<Utc>,
        errors: &[String],
        backoff_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO ord_state (ord, last_cycle_at, last_cycle_errors, backoff_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ord) DO UPDATE SET last_cycle_at = excluded.last_cycle_at,
               last_cycle_errors = excluded.last_cycle_errors, backoff_until = excluded.backoff_until",
            params![ord, Col(&at), errors.join("; "), backoff_until.as_ref().map(Col)],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The last change mark recorded for `ord` (0: none).
    pub fn dirty_max_id(&self, ord: &str) -> Result<i64, StoreError> {
        one(
            &self.conn,
            "SELECT COALESCE(MAX(id), 0) FROM dirty WHERE ord = ?1",
            params![ord],
            |r| r.get(0),
        )
        .in_store(self)
    }

    /// The change mark `day` was last netted against (`None`: never incrementally: net it whole).
    pub fn day_dirty_seen(&self, ord: &str, day: NaiveDate) -> Result<Option<i64>, StoreError> {
        let v: Option<Option<i64>> = one(
            &self.conn,
            "SELECT dirty_seen FROM days WHERE ord = ?1 AND day = ?2",
            params![ord, day_text(day)],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        Ok(v.flatten())
    }

    pub fn set_day_dirty_seen(&self, ord: &str, day: NaiveDate, id: i64) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "UPDATE days SET dirty_seen = ?3 WHERE ord = ?1 AND day = ?2",
            params![ord, day_text(day), id],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The CPEs of `day` (quarter-hours starting in `[from, to)`) with a change marked after `after`.
    pub fn dirty_cpes(
        &self,
        ord: &str,
        day: NaiveDate,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        after: i64,
    ) -> Result<BTreeSet<Cpe>, StoreError> {
        let cpes: Vec<Cpe> = self.rows(
            "SELECT DISTINCT cpe FROM dirty WHERE ord = ?1 AND id > ?2
               AND (day = ?3 OR (first_start < ?5 AND last_start >= ?4))",
            params![ord, after, day_text(day), from.timestamp(), to.timestamp()],
        )?;
        Ok(cpes.into_iter().collect())
    }

    /// Forgets change marks that end before `before`, and those every open day was netted
    /// against (no open day can need them any more).
    pub fn prune_dirty(
        &self,
        ord: &str,
        before: DateTime<Utc>,
        oldest: NaiveDate,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "DELETE FROM dirty WHERE ord = ?1 AND ((last_start IS NOT NULL AND last_start < ?2) OR (day IS NOT NULL AND day < ?3))",
            params![ord, before.timestamp(), day_text(oldest)],
        )
        .in_store(self)?;
        // And the marks every open day has already been netted against: a day nets only marks
        // after its own `dirty_seen`, and one without it (never netted, reopened) nets whole.
        exec(
            &self.conn,
            "DELETE FROM dirty WHERE ord = ?1 AND id <=
               (SELECT MIN(dirty_seen) FROM days WHERE ord = ?1 AND state = 'open' AND dirty_seen IS NOT NULL)",
            params![ord],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// What the ORD's netting depended on at its last whole send (registry and settings).
    pub fn netting_inputs(&self, ord: &str) -> Result<Option<String>, StoreError> {
        let v: Option<Option<String>> = one(
            &self.conn,
            "SELECT netting_inputs FROM ord_state WHERE ord = ?1",
            params![ord],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        Ok(v.flatten())
    }

    pub fn set_netting_inputs(&self, ord: &str, inputs: Option<&str>) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO ord_state (ord, netting_inputs) VALUES (?1, ?2)
             ON CONFLICT (ord) DO UPDATE SET netting_inputs = excluded.netting_inputs",
            params![ord, inputs],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The mobility of `cpes` with energy in `[from, to)` (as `mobility_between`, for a few CPEs).
    pub fn mobility_of_cpes_between(
        &self,
        ord: &str,
        cpes: &BTreeSet<Cpe>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredMobility>, StoreError> {
        // Each CPE's records by the (ord, CPE, first start) index: what it costs follows the
        // CPEs that changed, not the day's records.
        let mut out = Vec::new();
        let sql = mobility_overlapping("mobility_by_cpe", "AND cpe = ?4");
        for cpe in cpes {
            let rows: Vec<StoredMobility> = self.rows(
                &sql,
                params![ord, from.timestamp(), to.timestamp(), Compact(cpe)],
            )?;
            out.extend(rows);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The first day the ledger knows for `ord` (open or closed), if any.
    pub fn first_known_day(&self, ord: &str) -> Result<Option<NaiveDate>, StoreError> {
        let day: Option<Col<NaiveDate>> = one(
            &self.conn,
            "SELECT MIN(day) FROM days WHERE ord = ?1",
            params![ord],
            |r| r.get(0),
        )
        .in_store(self)?;
        Ok(day.map(|d| d.0))
    }

    /// The CPEs reported missing per day (`ord-file-missing`), with since when.
    pub fn missing_ord_files(
        &self,
        ord: &str,
    ) -> Result<BTreeMap<NaiveDate, BTreeSet<Cpe>>, StoreError> {
        let rows: Vec<(NaiveDate, Cpe)> = self.rows(
            "SELECT day, cpe FROM missing_ord_files WHERE ord = ?1 ORDER BY day, cpe",
            params![ord],
        )?;
        let mut out: BTreeMap<NaiveDate, BTreeSet<Cpe>> = BTreeMap::new();
        for (day, cpe) in rows {
            out.entry(day).or_default().insert(cpe);
        }
        Ok(out)
    }

    /// Records the CPEs of `day` newly missing and forgets the cleared ones.
    pub fn update_missing_ord_files(
        &self,
        ord: &str,
        day: NaiveDate,
        (new, cleared): (&[Cpe], &[Cpe]),
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for cpe in new {
            exec(
                &self.conn,
                "INSERT OR IGNORE INTO missing_ord_files (ord, day, cpe, since) VALUES (?1, ?2, ?3, ?4)",
                params![ord, Col(&day), Col(cpe), Col(&now)],
            )
            .in_store(self)?;
        }
        for cpe in cleared {
            exec(
                &self.conn,
                "DELETE FROM missing_ord_files WHERE ord = ?1 AND day = ?2 AND cpe = ?3",
                params![ord, Col(&day), Col(cpe)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    /// Forgets what was missing on days no longer asked for (closed, or out of the window).
    pub fn forget_missing_ord_files_except(
        &self,
        ord: &str,
        days: &[NaiveDate],
    ) -> Result<(), StoreError> {
        let held: Vec<NaiveDate> = self
            .missing_ord_files(ord)?
            .into_keys()
            .filter(|d| !days.contains(d))
            .collect();
        for day in held {
            exec(
                &self.conn,
                "DELETE FROM missing_ord_files WHERE ord = ?1 AND day = ?2",
                params![ord, Col(&day)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    /// ORD files received for days already closed (archived, not applied).
    pub fn late_ord_files(&self, ord: &str) -> Result<u64, StoreError> {
        one(
            &self.conn,
            "SELECT COUNT(*) FROM received_files WHERE ord = ?1 AND status = 'late'",
            params![ord],
            |r| r.get::<_, u64>(0),
        )
        .in_store(self)
    }

    /// The last cycle of `ord` as `record_ord_cycle` left it: when, its errors, its backoff.
    pub fn ord_cycle(&self, ord: &str) -> Result<Option<OrdCycle>, StoreError> {
        self.row(
            "SELECT last_cycle_at, last_cycle_errors, backoff_until FROM ord_state WHERE ord = ?1 AND last_cycle_at IS NOT NULL",
            params![ord],
        )
    }

    /// How many files of `ord` were rejected (and kept in the quarantine).
    pub fn quarantined_count(&self, ord: &str) -> Result<u64, StoreError> {
        one(
            &self.conn,
            "SELECT COUNT(*) FROM received_files WHERE ord = ?1 AND status = 'rejected'",
            params![ord],
            |r| r.get::<_, u64>(0),
        )
        .in_store(self)
    }

    pub fn status(&self, ord: &str) -> Result<Vec<DayStatus>, StoreError> {
        // A sent file's day is kept compact (schema 15): compared with the day's in that form.
        let key = day_key_of("d.day");
        self.rows(
            &format!("SELECT d.day, d.state,
               (SELECT COUNT(*) FROM ord_profiles p WHERE p.ord = d.ord AND p.day = d.day),
               (SELECT MAX(transmission_id) FROM ord_profiles p WHERE p.ord = d.ord AND p.day = d.day),
               (SELECT COUNT(*) FROM sent_files s WHERE s.ord = d.ord AND s.day = {key} AND s.delivered_at IS NOT NULL),
               (SELECT COUNT(*) FROM sent_files s WHERE s.ord = d.ord AND s.day = {key} AND s.delivered_at IS NULL),
               (SELECT COALESCE(SUM(anomalies), 0) FROM netting_results n WHERE n.ord = d.ord AND n.day = d.day),
               (SELECT COUNT(*) FROM received_files r WHERE r.ord = d.ord AND r.status = 'late'
                  AND r.first_day <= d.day AND r.last_day >= d.day)
             FROM days d WHERE d.ord = ?1 ORDER BY d.day"),
            params![ord],
        )
    }
}

/// The file an event's detail names (events write `NAME: …`), for the log line's `file` field.
fn file_named_in(detail: &str) -> Option<&str> {
    let (head, _) = detail.split_once(": ")?;
    (head.contains('.') && !head.contains(' ')).then_some(head)
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
    pub ord: Option<String>,
    pub kind: Option<EventKind>,
    pub since: Option<DateTime<Utc>>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub ord: Option<String>,
    /// The kind's name; an unknown name (from a newer version) is kept as it is.
    pub kind: String,
    pub level: Option<EventLevel>,
    pub detail: String,
}

/// What the outbox writer reports back to `record_outbound`.
#[derive(Debug, Clone)]
pub struct OutboundWrite {
    pub name: String,
    pub sha256: String,
    pub cpe: Cpe,
    pub supplier: String,
    pub tariff: TariffCycle,
    pub day: NaiveDate,
    pub content_hash: String,
    pub at: DateTime<Utc>,
    /// Where the bytes are in the outbox.
    pub pack: Option<PackSlice>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ledger at `p` after `sql` (its rows as an older version wrote them, and that version),
    /// closed and opened again: migrated.
    fn reopened_after(s: Store, p: &Path, sql: &str) -> Store {
        s.conn.execute_batch(sql).unwrap();
        drop(s);
        Store::open(p).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        (dir, s)
    }

    /// A mobility record of ORD `e`: 1.250 kWh in each quarter-hour starting at `starts`.
    fn mobility(
        key: &str,
        cpe: Cpe,
        starts: impl IntoIterator<Item = DateTime<Utc>>,
    ) -> StoredMobility {
        StoredMobility {
            key: key.into(),
            last_updated: DateTime::from_timestamp(1_729_900_800, 0).unwrap(),
            ord: "e".into(),
            cpe,
            ceme: CemeId::new("PT", "MOB").unwrap(),
            credit_of: None,
            energy: starts
                .into_iter()
                .map(|start| QuarterEnergy {
                    start,
                    kwh: rust_decimal::Decimal::new(1_250, 3),
                })
                .collect(),
            source: "cdrs.json".into(),
            place: Some(Place::Cpe(cpe)),
        }
    }

    /// A record moved by a changed registry reads back at its new CPE and ORD (its checksum
    /// holds), is found among the placed records, and marks the quarter-hours it left and joined;
    /// a row that keeps no place (written before version 19) reads back as it was.
    #[test]
    fn a_mobility_record_moved_by_the_registry_reads_back_at_its_new_place() {
        let (_dir, mut s) = store();
        let (a, b): (Cpe, Cpe) = (
            "PT0002000123681633GX".parse().unwrap(),
            Cpe::from_parts(2, 555_000_111).unwrap(),
        );
        let t0 = DateTime::from_timestamp(1_729_900_800, 0).unwrap();
        let mut old = mobility("cdr:old", a, [t0]);
        old.place = None;
        ingest(&mut s, &[mobility("cdr:m", a, [t0]), old]);
        let placed = s.mobility_placed_from(t0.timestamp()).unwrap();
        assert_eq!(
            placed.len(),
            1,
            "only rows that keep their place: {placed:?}"
        );
        let day = NaiveDate::from_ymd_opt(2024, 10, 26).unwrap();
        let marks = s.dirty_max_id("f").unwrap();
        s.move_mobility(&placed[0], "f", b, &[day]).unwrap();
        assert!(s.dirty_max_id("f").unwrap() > marks);
        let range = (t0, t0 + chrono::Duration::hours(1));
        let at_f = s.mobility_between("f", range.0, range.1).unwrap();
        assert_eq!(at_f.len(), 1);
        assert_eq!(
            (at_f[0].cpe, at_f[0].place.clone()),
            (b, Some(Place::Cpe(a)))
        );
        let at_e = s.mobility_between("e", range.0, range.1).unwrap();
        assert_eq!(at_e.len(), 1, "the old row stays: {at_e:?}");
        assert_eq!((at_e[0].key.as_str(), &at_e[0].place), ("cdr:old", &None));
        assert_eq!(s.mobility_mapped_with().unwrap(), None);
        s.set_mobility_mapped_with("abc").unwrap();
        assert_eq!(s.mobility_mapped_with().unwrap().as_deref(), Some("abc"));
    }

    /// Records `records` as one applied mobility file.
    fn ingest(s: &mut Store, records: &[StoredMobility]) {
        let at = DateTime::from_timestamp(1_729_900_800, 0).unwrap();
        let (status, report) = (MobilityFileStatus::Applied, "");
        s.record_mobility("cdrs.json", 1, 0, "x", status, report, "", at, records, &[])
            .unwrap();
    }

    fn write(name: &str) -> OutboundWrite {
        OutboundWrite {
            name: name.into(),
            sha256: crate::fsutil::sha256_hex(name.as_bytes()),
            cpe: Cpe::parse("PT0002000123681633GX").unwrap(),
            supplier: "02".into(),
            tariff: TariffCycle::BiHourlyDaily,
            day: NaiveDate::from_ymd_opt(2024, 7, 5).unwrap(),
            content_hash: crate::fsutil::sha256_hex(b"h"),
            at: Utc::now(),
            pack: Some(PackSlice {
                pack: "pack-0000000001.tar".into(),
                offset: 512,
                len: 3,
            }),
        }
    }

    #[test]
    fn outbound_ids_are_gap_free_and_a_failed_write_uses_none() {
        let (_d, mut s) = store();
        let a = s
            .record_outbound("e", 372, |id, prev| {
                Ok::<_, ()>(write(&format!("{id}-{prev}")))
            })
            .unwrap()
            .unwrap();
        assert_eq!((a.transmission_id, a.previous_id), (372, 371));
        assert!(s
            .record_outbound("e", 372, |_, _| Err::<OutboundWrite, _>("disk full"))
            .unwrap()
            .is_err());
        let b = s
            .record_outbound("e", 372, |id, prev| {
                Ok::<_, ()>(write(&format!("{id}-{prev}")))
            })
            .unwrap()
            .unwrap();
        assert_eq!((b.transmission_id, b.previous_id), (373, 372));
        assert_eq!(s.sent_files("e", true).unwrap().len(), 2);
        assert_eq!(s.last_sent_id("e").unwrap(), Some(373));
        assert_eq!(s.last_sent_id("other").unwrap(), None);
        s.mark_delivered(a.id, Utc::now()).unwrap();
        assert_eq!(s.sent_files("e", true).unwrap().len(), 1);
    }

    #[test]
    fn a_rolled_back_batch_uses_no_id_and_a_committed_one_keeps_all() {
        let (_d, mut s) = store();
        let take = |s: &mut Store| {
            s.record_outbound("e", 1, |id, prev| {
                Ok::<_, ()>(write(&format!("{id}-{prev}")))
            })
            .unwrap()
            .unwrap()
        };
        s.begin_batch().unwrap();
        take(&mut s);
        take(&mut s);
        s.rollback_batch();
        assert_eq!(s.sent_files("e", false).unwrap().len(), 0);
        s.begin_batch().unwrap();
        let a = take(&mut s);
        // A write that fails inside a batch is undone on its own; the batch goes on.
        assert!(s
            .record_outbound("e", 1, |_, _| Err::<OutboundWrite, _>("disk full"))
            .unwrap()
            .is_err());
        let b = take(&mut s);
        s.commit_batch().unwrap();
        assert_eq!((a.transmission_id, b.transmission_id), (1, 2));
        assert_eq!(s.sent_files("e", false).unwrap().len(), 2);
    }

    #[test]
    fn a_version_2_ledger_keeps_its_sent_files_as_files_of_their_own_and_records_new_ones_in_packs()
    {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        {
            // A ledger as version 2 left it, with one sent file.
            let c = Connection::open(&p).unwrap();
            c.execute_batch(MIGRATION_1).unwrap();
            c.execute_batch(MIGRATION_2).unwrap();
            c.pragma_update(None, "user_version", 2).unwrap();
            c.execute(
                "INSERT INTO sent_files (ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash, written_at)
                 VALUES ('e', 'old.sgl', ?1, 1, 0, 'PT0002000123681633GX', '02', '01', '2024-07-05', ?1, '2024-07-06T00:00:00Z')",
                [crate::fsutil::sha256_hex(b"old")],
            )
            .unwrap();
            c.execute("INSERT INTO sequences (ord, last_id) VALUES ('e', 1)", [])
                .unwrap();
        }
        let mut s = Store::open(&p).unwrap();
        let new = s
            .record_outbound("e", 1, |_, _| Ok::<_, ()>(write("new.sgl")))
            .unwrap()
            .unwrap();
        let sent = s.sent_files("e", false).unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].name.as_str(), &sent[0].pack), ("old.sgl", &None));
        assert_eq!(sent[1], new);
        assert_eq!(sent[1].transmission_id, 2);
        assert_eq!(sent[1].pack, write("new.sgl").pack);
    }

    #[test]
    fn sent_names_and_packs_are_kept_short_and_a_version_12_ledger_is_compacted_to_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let mut s = Store::open(&p).unwrap();
        let canonical = |id: u64, _| {
            let mut w = write("");
            w.name = crate::ledger::outbound_name(
                &w.supplier,
                w.tariff,
                w.cpe,
                w.day.succ_opt().unwrap(),
                id,
            );
            w.pack = Some(PackSlice {
                pack: crate::ledger::pack_name(1),
                offset: 512,
                len: 3,
            });
            Ok::<_, ()>(w)
        };
        s.record_outbound("e", 1, canonical).unwrap().unwrap();
        // A name and a pack of another form stay as they were.
        s.record_outbound("e", 1, |_, _| Ok::<_, ()>(write("legacy.sgl")))
            .unwrap()
            .unwrap();
        let before = s.sent_files("e", false).unwrap();
        let types = |c: &Connection| -> Vec<(String, String)> {
            c.prepare("SELECT typeof(name), typeof(pack) FROM sent_files ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let short = vec![
            ("blob".to_string(), "blob".to_string()),
            ("text".into(), "text".into()),
        ];
        assert_eq!(types(&s.conn), short);
        assert_eq!(before[0].name, canonical(1, 0).unwrap().name);
        assert_eq!(s.sent_name("e", 1).unwrap(), Some(before[0].name.clone()));
        assert_eq!(s.sent_names_between("e", 1, 2).unwrap().len(), 2);
        assert!(!s
            .mark_delivered_by_name("e", (1, "other.sgl"), Utc::now())
            .unwrap());
        // The same rows as a version-12 ledger wrote them: text.
        let s = reopened_after(
            s,
            &p,
            &format!(
                "UPDATE sent_files SET name = '{}', pack = '{}' WHERE transmission_id = 1;
                 PRAGMA user_version = 12;",
                before[0].name,
                crate::ledger::pack_name(1)
            ),
        );
        assert_eq!(types(&s.conn), short);
        assert_eq!(
            s.sent_files("e", false).unwrap(),
            before,
            "checksums hold, nothing changed"
        );
        assert!(s
            .mark_delivered_by_name("e", (1, &before[0].name), Utc::now())
            .unwrap());
    }

    #[test]
    fn sent_and_received_keys_are_kept_compact_and_a_version_14_ledger_is_compacted_to_the_same_rows(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let mut s = Store::open(&p).unwrap();
        s.record_outbound("e", 1, |_, _| Ok::<_, ()>(write("a.sgl")))
            .unwrap()
            .unwrap();
        let sha = crate::fsutil::sha256_hex(b"ord file");
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        let mut file = received("in.sgl", Some(512));
        file.sha256 = sha.clone();
        file.cpe = Some(cpe);
        s.record_inbound(&file, &[]).unwrap();
        let types = |c: &Connection| -> Vec<String> {
            c.query_row(
                "SELECT typeof(s.cpe), typeof(s.day), typeof(r.sha256), typeof(r.cpe),
                        length(s.cpe) + length(s.day) + length(r.sha256) + length(r.cpe)
                 FROM sent_files s, received_files r",
                [],
                |r| {
                    Ok(vec![
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get::<_, i64>(4)?.to_string(),
                    ])
                },
            )
            .unwrap()
        };
        let compact = ["blob", "blob", "blob", "blob", "48"]
            .map(String::from)
            .to_vec();
        assert_eq!(types(&s.conn), compact);
        let before = s.sent_files("e", false).unwrap();
        let day = before[0].day;
        assert_eq!(s.sent_cpes("e", day).unwrap(), vec![cpe]);
        assert_eq!(s.sent_files_of_cpe_day("e", &cpe, day).unwrap(), before);
        assert!(s.seen_content("e", &sha).unwrap());
        assert!(s.received_known("e", "in.sgl", &sha).unwrap());
        assert_eq!(s.received("e").unwrap()[0].2, sha);
        s.conn
            .execute(
                "INSERT INTO days (ord, day, state) VALUES ('e', ?1, 'open')",
                [day_text(day)],
            )
            .unwrap();
        let status = s.status("e").unwrap();
        assert_eq!(
            (status[0].day, status[0].files_pending),
            (day, 1),
            "{status:?}"
        );
        assert_eq!(s.outbox_pack_facts("e").unwrap().len(), 1);
        // The same rows as version 14 wrote them: text.
        let s = reopened_after(
            s,
            &p,
            &format!(
                "UPDATE sent_files SET cpe = '{cpe}', day = '{day}';
                 UPDATE received_files SET cpe = '{cpe}', sha256 = '{sha}';
                 PRAGMA user_version = 14;"
            ),
        );
        assert_eq!(types(&s.conn), compact);
        assert_eq!(
            s.sent_files("e", false).unwrap(),
            before,
            "checksums hold, nothing changed"
        );
        assert!(s.seen_content("e", &sha).unwrap());
    }

    #[test]
    fn a_packs_facts_say_closed_only_when_every_day_in_it_is_closed_and_delivered_only_when_every_file_is(
    ) {
        let (_d, mut s) = store();
        let day = |d| NaiveDate::from_ymd_opt(2024, 7, d).unwrap();
        for d in [5, 6] {
            s.record_outbound("e", 1, |_, _| {
                let mut w = write(&format!("{d}.sgl"));
                w.day = day(d);
                Ok::<_, ()>(w)
            })
            .unwrap()
            .unwrap();
        }
        let facts = |s: &Store| {
            let f = s.outbox_pack_facts("e").unwrap();
            assert_eq!(f.len(), 1, "{f:?}");
            (f[0].last_id, f[0].all_closed_at, f[0].all_delivered)
        };
        assert_eq!(facts(&s), (2, None, false));
        for d in [5, 6] {
            s.conn
                .execute(
                    "INSERT INTO days (ord, day, state) VALUES ('e', ?1, 'open')",
                    [day_text(day(d))],
                )
                .unwrap();
        }
        let (first, second) = (
            "2024-08-06T21:30:00Z".parse::<DateTime<Utc>>().unwrap(),
            "2024-08-07T21:30:00Z".parse::<DateTime<Utc>>().unwrap(),
        );
        s.close_days("e", &[day(5)], first).unwrap();
        assert_eq!(
            facts(&s),
            (2, None, false),
            "one day of the pack still open"
        );
        s.close_days("e", &[day(6)], second).unwrap();
        for f in s.sent_files("e", false).unwrap() {
            s.mark_delivered(f.id, second).unwrap();
        }
        assert_eq!(facts(&s), (2, Some(second), true));
    }

    #[test]
    fn pending_files_are_counted_and_paged_through_the_pending_index_not_the_history() {
        let (_d, s) = store();
        for sql in [sent_query_sql(true), PENDING_COUNT_SQL.to_string()] {
            let mut stmt = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let values: [&dyn rusqlite::ToSql; 3] = [&"e", &0, &10];
            let n = stmt.parameter_count();
            let plan: Vec<String> = stmt
                .query_map(&values[..n], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|p| p.contains("sent_pending")),
                "{sql}: {plan:?}"
            );
        }
    }

    fn received(name: &str, stored_offset: Option<u64>) -> ReceivedFile {
        ReceivedFile {
            ord: "e".into(),
            name: name.into(),
            size: 3,
            mtime: 0,
            sha256: format!("sha-{name}"),
            status: ReceivedStatus::Applied,
            diagnostics: "[]".into(),
            cpe: None,
            first_day: None,
            last_day: None,
            transmission_id: None,
            previous_id: None,
            ntransm: None,
            received_at: Utc::now(),
            stored_path: "archive/pack-0000000002.tar".into(),
            stored_offset,
        }
    }

    #[test]
    fn a_version_3_ledger_keeps_its_archive_files_and_the_next_received_id_only_grows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        {
            // A ledger as version 3 left it, with one archived file of its own.
            let c = Connection::open(&p).unwrap();
            for m in [MIGRATION_1, MIGRATION_2, MIGRATION_3] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            c.execute(
                "INSERT INTO received_files (ord, name, size, mtime, sha256, status, diagnostics, received_at, stored_path)
                 VALUES ('e', 'old.sgl', 3, 0, 'x', 'applied', '[]', '2024-07-06T00:00:00Z', 'archive/old.sgl')",
                [],
            )
            .unwrap();
        }
        let mut s = Store::open(&p).unwrap();
        assert_eq!(s.next_received_id().unwrap(), 2);
        // A batch rolled back gives its ids back: its rerun names the same pack.
        s.begin_batch().unwrap();
        s.record_inbound(&received("lost.sgl", Some(512)), &[])
            .unwrap();
        assert_eq!(s.next_received_id().unwrap(), 3);
        s.rollback_batch();
        assert_eq!(s.next_received_id().unwrap(), 2);
        s.begin_batch().unwrap();
        s.record_inbound(&received("new.sgl", Some(512)), &[])
            .unwrap();
        s.commit_batch().unwrap();
        assert_eq!(s.next_received_id().unwrap(), 3);
        let copies = s.received_copies("e").unwrap();
        let kept: Vec<(&str, &str, Option<u64>, u64)> = copies
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.stored_path.as_str(),
                    c.stored_offset,
                    c.size,
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("old.sgl", "archive/old.sgl", None, 3),
                ("new.sgl", "archive/pack-0000000002.tar", Some(512), 3)
            ]
        );
    }

    #[test]
    fn readings_and_energy_are_kept_compressed_and_a_version_10_ledgers_rows_are_compressed_on_upgrade(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 10, 26).unwrap();
        let mut profile = DayProfile::zeros(day, 96);
        for (i, r) in profile.readings.iter_mut().enumerate() {
            r.kwh = rust_decimal::Decimal::new(i as i64 * 137 % 5000, 3);
        }
        let start = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
        let record = StoredMobility {
            key: "cdr:X".into(),
            last_updated: start(0),
            ord: "e".into(),
            cpe,
            ceme: CemeId::new("PT", "MOB").unwrap(),
            credit_of: None,
            energy: (0..8)
                .map(|q| QuarterEnergy {
                    start: start(q),
                    kwh: rust_decimal::Decimal::new(1750, 3),
                })
                .collect(),
            source: "cdrs.json".into(),
            place: None,
        };
        {
            let mut s = Store::open(&p).unwrap();
            let mut file = received("a.sgl", Some(512));
            file.ord = "e".into();
            s.record_inbound(&file, &[(cpe, &profile)]).unwrap();
            ingest(&mut s, std::slice::from_ref(&record));
        }
        let c = Connection::open(&p).unwrap();
        let types = |c: &Connection| -> (String, String) {
            (
                c.query_row("SELECT typeof(readings) FROM ord_profiles", [], |r| {
                    r.get(0)
                })
                .unwrap(),
                c.query_row("SELECT typeof(energy) FROM mobility_records", [], |r| {
                    r.get(0)
                })
                .unwrap(),
            )
        };
        assert_eq!(types(&c), ("blob".into(), "blob".into()));
        let stored: usize = c
            .query_row("SELECT length(readings) FROM ord_profiles", [], |r| {
                r.get(0)
            })
            .unwrap();
        let json = serde_json::to_string(&profile).unwrap();
        assert!(
            stored * 4 < json.len(),
            "{stored} bytes from {}",
            json.len()
        );
        // As version 10 kept them: JSON text (the checksums were over the same text).
        c.execute("UPDATE ord_profiles SET readings = ?1", [&json])
            .unwrap();
        c.execute(
            "UPDATE mobility_records SET energy = ?1",
            [serde_json::to_string(&record.energy).unwrap()],
        )
        .unwrap();
        c.execute_batch(
            "ALTER TABLE sent_files DROP COLUMN pruned_at; ALTER TABLE received_files DROP COLUMN pruned_at;",
        )
        .unwrap();
        c.pragma_update(None, "user_version", 10).unwrap();
        let s = Store::open(&p).unwrap();
        assert_eq!(types(&c), ("blob".into(), "blob".into()));
        let (_, read) = s.profile_in_force("e", &cpe, day).unwrap().unwrap();
        assert_eq!(read, profile);
        let all = s.mobility_between("e", start(0), start(96)).unwrap();
        assert_eq!(all, [record]);
    }

    #[test]
    fn a_days_mobility_is_found_in_a_bounded_range_and_the_long_records_through_their_own_index() {
        // Before version 16 a day's records were found with only an upper bound on their first
        // quarter-hour: each query read the ORD's whole history. The bounded query must find
        // exactly what the overlap says, for records of every span.
        let (_d, mut s) = store();
        let t0 = 1_729_900_800; // 2024-10-26T00:00:00Z
        let at = |secs: i64| DateTime::from_timestamp(t0 + secs, 0).unwrap();
        let cpes: [Cpe; 2] = [
            "PT0002000123681633GX".parse().unwrap(),
            "PT0002000100000000DM".parse().unwrap(),
        ];
        let quarter = 900;
        let mut records = Vec::new();
        // (first quarter-hour, span) in seconds: within a day, across midnight, at and around
        // the long bound, days long; over nine days.
        let spans = [
            0,
            3_600,
            7 * 3_600,
            LONG_RECORD_SECS - quarter,
            LONG_RECORD_SECS,
        ];
        let spans = spans
            .into_iter()
            .chain([LONG_RECORD_SECS + quarter, 5 * 86_400]);
        for (i, span) in spans.enumerate() {
            for first in (0..9 * 86_400).step_by(5 * 3_600 + i * 1_800) {
                let n = records.len();
                let starts: BTreeSet<i64> = [first, first + span].into();
                let starts = starts.into_iter().map(|q| at(q - q % quarter));
                records.push(mobility(&format!("cdr:{n:05}"), cpes[n % 2], starts));
            }
        }
        // A credit cancels its original: neither is netted.
        let mut credit = records[3].clone();
        credit.key = "credit:00003".into();
        credit.credit_of = Some(records[3].key.clone());
        records.push(credit);
        ingest(&mut s, &records);
        let long: i64 = s
            .conn
            .query_row("SELECT count(*) FROM mobility_records INDEXED BY mobility_long WHERE ord = 'e' AND last_start - first_start > 172800", [], |r| r.get(0))
            .unwrap();
        assert!(long > 10, "{long} long records");
        let overlapping = |from: i64, to: i64, cpe: Option<Cpe>| -> Vec<String> {
            let credited: BTreeSet<&str> = records
                .iter()
                .filter_map(|r| r.credit_of.as_deref())
                .collect();
            let mut keys: Vec<String> = records
                .iter()
                .filter(|r| r.credit_of.is_none() && !credited.contains(r.key.as_str()))
                .filter(|r| cpe.is_none_or(|c| r.cpe == c))
                .filter(|r| {
                    let (first, last) = (r.energy[0].start, r.energy[r.energy.len() - 1].start);
                    first < at(to) && last >= at(from)
                })
                .map(|r| r.key.clone())
                .collect();
            keys.sort();
            keys
        };
        let keys = |rows: Vec<StoredMobility>| -> Vec<String> {
            rows.into_iter().map(|r| r.key).collect()
        };
        for day in -1..11 {
            for (from, to) in [
                (day * 86_400, (day + 1) * 86_400),
                (day * 86_400 + 3_600, day * 86_400 + 5_400),
            ] {
                let want = overlapping(from, to, None);
                assert_eq!(
                    keys(s.mobility_between("e", at(from), at(to)).unwrap()),
                    want,
                    "day {day}"
                );
                let one: BTreeSet<Cpe> = [cpes[1]].into();
                let want = overlapping(from, to, Some(cpes[1]));
                assert_eq!(
                    keys(
                        s.mobility_of_cpes_between("e", &one, at(from), at(to))
                            .unwrap()
                    ),
                    want,
                    "day {day}"
                );
                let both: BTreeSet<Cpe> = cpes.into();
                let got = s.mobility_of_cpes_between("e", &both, at(from), at(to));
                assert_eq!(keys(got.unwrap()), overlapping(from, to, None), "day {day}");
            }
        }
        assert!(!overlapping(3 * 86_400, 4 * 86_400, None).is_empty());
        // Both halves are searched by range: the first start bounded below and above, the long
        // records by their end.
        let sql = mobility_overlapping("mobility_by_range", "");
        let mut stmt = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["e", 0, 86_400], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(
                |p| p.contains("mobility_by_range (ord=? AND first_start>? AND first_start<?)")
            ),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|p| p.contains("mobility_long (ord=? AND last_start>?)")),
            "{plan:?}"
        );
        // A CPE's records by CPE and the day's range of first starts.
        let sql = mobility_overlapping("mobility_by_cpe", "AND cpe = ?4");
        let mut stmt = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["e", 0, 86_400, Compact(&cpes[0])], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let by_cpe = "mobility_by_cpe (ord=? AND cpe=? AND first_start>? AND first_start<?)";
        assert!(plan.iter().any(|p| p.contains(by_cpe)), "{plan:?}");
        let kept: (String, i64) = s
            .conn
            .query_row(
                "SELECT typeof(cpe), length(cpe) FROM mobility_records LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            kept,
            ("blob".into(), 7),
            "a record's CPE kept in its 7 bytes"
        );
        assert!(MIGRATION_16.contains(&format!("> {LONG_RECORD_SECS};")));
    }

    #[test]
    fn a_version_17_ledgers_mobility_cpes_are_compacted_and_found_by_cpe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let at = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
        let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
        let record = mobility("cdr:1", cpe, [at(4)]);
        {
            let mut s = Store::open(&p).unwrap();
            ingest(&mut s, std::slice::from_ref(&record));
            // As version 17 kept it: the CPE as text, no index by CPE.
            s.conn
                .execute_batch(&format!(
                    "DROP INDEX mobility_by_cpe; UPDATE mobility_records SET cpe = '{cpe}'; PRAGMA user_version = 17;"
                ))
                .unwrap();
        }
        let s = Store::open(&p).unwrap();
        let (kind, index): (String, i64) = s
            .conn
            .query_row(
                "SELECT (SELECT typeof(cpe) FROM mobility_records),
                        (SELECT count(*) FROM sqlite_schema WHERE name = 'mobility_by_cpe')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((kind.as_str(), index), ("blob", 1));
        let one: BTreeSet<Cpe> = [cpe].into();
        assert_eq!(
            s.mobility_of_cpes_between("e", &one, at(0), at(96))
                .unwrap(),
            std::slice::from_ref(&record)
        );
        assert_eq!(s.mobility_between("e", at(0), at(96)).unwrap(), [record]);
    }

    #[test]
    fn a_version_15_ledger_gains_the_long_mobility_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        drop(Store::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.execute_batch("DROP INDEX mobility_long; PRAGMA user_version = 15;")
            .unwrap();
        let s = Store::open(&p).unwrap();
        let n: i64 = s
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'mobility_long'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
        s.mobility_between("e", Utc::now(), Utc::now()).unwrap();
    }

    /// Every page of the ledger file at `p` (after its last connection closed), with its number.
    fn pages(p: &Path) -> Vec<(u64, Vec<u8>)> {
        let bytes = std::fs::read(p).unwrap();
        let size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
            1 => 65_536,
            n => usize::from(n),
        };
        bytes
            .chunks(size)
            .enumerate()
            .map(|(i, page)| (i as u64 + 1, page.to_vec()))
            .collect()
    }

    #[test]
    fn every_page_of_the_ledger_carries_its_checksum_and_a_flipped_byte_fails_the_query_that_reads_it(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let at = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
        let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
        let records: Vec<StoredMobility> = (0..2_000)
            .map(|i| mobility(&format!("cdr:{i:06}"), cpe, [at(i % 96)]))
            .collect();
        {
            let mut s = Store::open(&p).unwrap();
            ingest(&mut s, &records);
            assert_eq!(s.mobility_between("e", at(0), at(96)).unwrap().len(), 2_000);
        }
        let all = pages(&p);
        assert!(all.len() > 20, "{} pages", all.len());
        assert_eq!(
            all[0].1[20],
            page_sums::RESERVE,
            "the header reserves the checksum"
        );
        for (pgno, page) in &all {
            assert!(page_sums::sealed(page, *pgno), "page {pgno}");
        }
        // Flip a byte in each leaf page of the range index in turn; whichever the query reads fails it (none is read as if intact).
        let index_pages: Vec<u64> = {
            let c = Connection::open(&p).unwrap();
            let mut stmt = c
                .prepare("SELECT pageno FROM dbstat WHERE name = 'mobility_by_range' AND pagetype = 'leaf'")
                .unwrap();
            let mapped = stmt.query_map([], |r| r.get(0)).unwrap();
            mapped.collect::<Result<_, _>>().unwrap()
        };
        assert!(index_pages.len() > 1, "{index_pages:?}");
        let intact = std::fs::read(&p).unwrap();
        let size = all[0].1.len();
        for pgno in index_pages {
            let mut bytes = intact.clone();
            let at_byte = (pgno as usize - 1) * size + size / 2;
            bytes[at_byte] ^= 0x10;
            std::fs::write(&p, &bytes).unwrap();
            let s = Store::open(&p).unwrap();
            let e = s.mobility_between("e", at(0), at(96)).unwrap_err();
            assert!(
                e.to_string().contains("egme-ord recover"),
                "page {pgno}: {e}"
            );
            assert!(
                matches!(s.integrity_check(), Err(StoreError::Damaged { .. })),
                "page {pgno}"
            );
        }
    }

    #[test]
    fn a_page_of_zeros_in_the_ledger_fails_the_query_that_reads_it_even_where_sqlite_would_read_zeros(
    ) {
        // An overflow page of zeros is read by SQLite without complaint (a value's bytes turned
        // to zeros): the page checksum is what refuses it.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        let value: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        {
            let s = Store::open(&p).unwrap();
            s.conn.execute_batch("CREATE TABLE big (v BLOB)").unwrap();
            s.conn
                .execute("INSERT INTO big VALUES (?1)", [&value])
                .unwrap();
        }
        let overflow: Vec<u64> = {
            let c = Connection::open(&p).unwrap();
            let mut stmt = c
                .prepare("SELECT pageno FROM dbstat WHERE name = 'big' AND pagetype = 'overflow'")
                .unwrap();
            let mapped = stmt.query_map([], |r| r.get(0)).unwrap();
            mapped.collect::<Result<_, _>>().unwrap()
        };
        assert!(overflow.len() > 2, "{overflow:?}");
        let all = pages(&p);
        let size = all[0].1.len();
        let mut bytes = std::fs::read(&p).unwrap();
        let at = (overflow[1] as usize - 1) * size;
        bytes[at..at + size].fill(0);
        std::fs::write(&p, &bytes).unwrap();
        let s = Store::open(&p).unwrap();
        let read: rusqlite::Result<Vec<u8>> =
            s.conn.query_row("SELECT v FROM big", [], |r| r.get(0));
        let e = read.expect_err("a value with a page of zeros is not read");
        assert!(is_damage(&e), "{e}");
        assert!(matches!(
            s.integrity_check(),
            Err(StoreError::Damaged { .. })
        ));
    }

    #[test]
    fn a_ledger_without_page_checksums_is_given_them_once_and_one_that_lost_them_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        {
            // As an earlier egme-ord made it: no bytes reserved in its pages.
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE before_17 (x); INSERT INTO before_17 VALUES (1), (2);",
            )
            .unwrap();
        }
        assert_eq!(pages(&p)[0].1[20], 0);
        {
            let s = Store::open(&p).unwrap();
            let n: i64 = s
                .conn
                .query_row("SELECT count(*) FROM before_17", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2, "its rows kept");
        }
        let all = pages(&p);
        assert_eq!(all[0].1[20], page_sums::RESERVE);
        assert!(all.iter().all(|(n, page)| page_sums::sealed(page, *n)));
        drop(Store::open_checked(&p).unwrap());
        // The header's reserve changed on disk (and page 1's checksum with it no longer checked):
        // refused, not read with its pages misplaced.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[20] = 0;
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(Store::open(&p), Err(StoreError::Damaged { .. })));
    }

    #[test]
    fn a_pruned_change_marks_id_is_never_given_again() {
        // A day nets the marks after the last id it saw: a pruned mark's id given to a new mark
        // would hide that change from it (and its correction would not be sent).
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let mark = |s: &Store| -> i64 {
            s.conn
                .execute("INSERT INTO dirty (ord, cpe, day) VALUES ('e', 'PT0002000123681633GX', '2024-10-26')", [])
                .unwrap();
            s.conn.last_insert_rowid()
        };
        mark(&s);
        let last = mark(&s);
        s.conn.execute("DELETE FROM dirty", []).unwrap();
        assert!(mark(&s) > last);
    }

    #[test]
    fn reopening_keeps_the_schema_and_refuses_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sqlite");
        drop(Store::open(&p).unwrap());
        drop(Store::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Store::open(&p),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
