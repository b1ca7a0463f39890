//! The ledger's schema: every migration in ascending order, each beside its rewrite of the rows, and `Store::migrate`.

use chrono::NaiveDate;
use rusqlite::{params, Connection};

use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::TariffCycle;
use egme_ord_core::sha256::Sha256;

use super::rows::{mobility_sum, profile_sum, sent_sum, sequence_sum};
use super::sent::kept_sent_name;
use super::sql;
use super::sql::{Col, Column, PackNameRef, Packed};
use super::{one, sqlite_err, InStore, Store, StoreError};

pub(super) const SCHEMA_VERSION: i64 = 20;

pub(super) const MIGRATION_1: &str = "
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

/// Version 2: the last inbound id per ORD by index (it was a scan per received file: quadratic).
pub(super) const MIGRATION_2: &str = "
CREATE INDEX received_by_transmission ON received_files (ord, transmission_id);
";

/// Version 3: sent files kept in outbox packs, each at a slice of its pack (NULL: a file of its own,
/// as written before version 3).
pub(super) const MIGRATION_3: &str = "
ALTER TABLE sent_files ADD COLUMN pack TEXT;
ALTER TABLE sent_files ADD COLUMN pack_offset INTEGER;
ALTER TABLE sent_files ADD COLUMN pack_len INTEGER;
";

/// Version 4: received ORD files archived in packs, each at an offset of its pack (its length is the
/// file's size; NULL: a file of its own, as kept before version 4, and every quarantined file).
pub(super) const MIGRATION_4: &str = "
ALTER TABLE received_files ADD COLUMN stored_offset INTEGER;
";

/// Version 5: the ledger's own identity (`ledger_id`, random, made once), which the outbox's
/// high-water mark carries: a re-created or different ledger is recognised as such.
pub(super) const MIGRATION_5: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// Version 6: a checksum of each row that decides what is sent (sent files, ORD profiles, mobility
/// records, sequences), computed on write and checked on every read: a byte flipped on disk is
/// refused as damage instead of being netted or compared. Filled for existing rows by
/// `fill_row_sums`.
pub(super) const MIGRATION_6: &str = "
ALTER TABLE sent_files ADD COLUMN row_sum INTEGER;
ALTER TABLE ord_profiles ADD COLUMN row_sum INTEGER;
ALTER TABLE mobility_records ADD COLUMN row_sum INTEGER;
ALTER TABLE sequences ADD COLUMN row_sum INTEGER;
";

/// Gives every row of the checked tables its checksum (the migration to version 6).
pub(super) fn fill_row_sums(tx: &Connection) -> rusqlite::Result<()> {
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
pub(super) fn fill_table_sums(
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

/// Version 7: files of an ORD that could not be read (vanished, no permission), with how many
/// cycles in a row they failed: the other files go on, these are retried and reported as stuck.
pub(super) const MIGRATION_7: &str = "
CREATE TABLE intake_failures (
  ord TEXT NOT NULL, name TEXT NOT NULL, failures INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL,
  last_error TEXT NOT NULL, PRIMARY KEY (ord, name));
";

/// Version 8: per ORD, how its last cycle went and until when the daemon leaves it out (for
/// `status`, which runs beside the daemon).
pub(super) const MIGRATION_8: &str = "
ALTER TABLE ord_state ADD COLUMN last_cycle_at TEXT;
ALTER TABLE ord_state ADD COLUMN last_cycle_errors TEXT;
ALTER TABLE ord_state ADD COLUMN backoff_until TEXT;
";

/// Version 9: per ORD and day, the CPEs reported missing (`ord-file-missing`) and since when, so
/// that each is reported once and cleared when its file arrives.
pub(super) const MIGRATION_9: &str = "
CREATE TABLE missing_ord_files (
  ord TEXT NOT NULL, day TEXT NOT NULL, cpe TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (ord, day, cpe));
";

/// Version 10: incremental netting. `dirty` holds what changed since (ORD profiles by day,
/// mobility records by the range of their quarter-hours, old and new); a day remembers the last
/// mark it was netted against (`days.dirty_seen`), an ORD the inputs its netting depends on
/// besides them (`ord_state.netting_inputs`: registry and settings).
pub(super) const MIGRATION_10: &str = "
CREATE TABLE dirty (
  id INTEGER PRIMARY KEY, ord TEXT NOT NULL, cpe TEXT NOT NULL, day TEXT, first_start INTEGER, last_start INTEGER);
CREATE INDEX dirty_by_ord ON dirty (ord, id);
ALTER TABLE days ADD COLUMN dirty_seen INTEGER;
ALTER TABLE ord_state ADD COLUMN netting_inputs TEXT;
";

/// Version 11: ORD profiles' readings and mobility records' energy kept zstd-compressed (BLOBs;
/// see `sql::Packed`), the rows already there compressed by `pack_columns` (no change of
/// checksums: they are over the text); and when a sent or received file's kept copy was pruned
/// (retention: the row, with its name, id, size and sha256, stays).
pub(super) const MIGRATION_11: &str = "
ALTER TABLE sent_files ADD COLUMN pruned_at TEXT;
ALTER TABLE received_files ADD COLUMN pruned_at TEXT;
";

/// Compresses the readings and energy of the rows written before version 11.
pub(super) fn pack_columns(tx: &Connection) -> rusqlite::Result<()> {
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

/// Version 12: sent files smaller, for they are kept forever — sha256 and content hash as their 32
/// bytes (`Col<Sha256>`; checksums unchanged, they are over the hex), and no index on (ord, name):
/// the name holds the transmission id, which has its own. The table is rebuilt (SQLite cannot drop
/// a UNIQUE constraint); a value that is not hex is kept as it is, and read as damage.
/// Also: when a file was written and delivered as Unix seconds, not text; one index by (ord, day,
/// CPE) for the per-CPE-day and per-day queries (its entries are in row order within a key).
/// And change marks numbered by AUTOINCREMENT: a mark's id must never be reused once pruned (a day
/// nets the marks after the last id it saw; a reused lower id would be skipped and a change not
/// sent).
pub(super) const MIGRATION_12: &str = "
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

/// Version 13: sent files' names and packs kept short — a name that is exactly what the row's
/// columns give (`ledger::outbound_name`) as the one-byte offset of its date, a pack as its first
/// id (`sql::PackName`); both BLOBs, any other value stays text. Checksums are unchanged (over the
/// names as read back). The rows are rewritten by `compact_sent_files`; the table keeps its pages
/// (free pages are used again by the rows that follow; `VACUUM` gives them back to the disk).
pub(super) const MIGRATION_13: &str = "";

/// Rewrites the names and packs of the sent files written before version 13, 10,000 rows at a
/// time (a ledger of years does not go through memory at once).
pub(super) fn compact_sent_files(tx: &Connection) -> rusqlite::Result<()> {
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

/// Version 14: an index of the files not yet delivered only. Counting them and paging through
/// them went through the (ord, transmission id) index from the ORD's first file: a scan of its
/// whole history at every cycle (66 ms at 500 CPEs after a month, growing for ever); this index
/// holds only the pending rows.
pub(super) const MIGRATION_14: &str = "
CREATE INDEX IF NOT EXISTS sent_pending ON sent_files (ord, transmission_id) WHERE delivered_at IS NULL;
";

/// Version 15: the values every sent file's row repeats, kept for ever, in their compact forms
/// (`sql::Compact`): its CPE as the 7 bytes of its 16 digits, its day as 2 bytes (days since
/// 1970-01-01), and a received file's sha256 as its 32 bytes (in the row and in two indexes) and
/// CPE as 7. Checksums are unchanged (over the text as read back); the rows are rewritten by
/// `compact_keys`, a value that does not parse is left as it is (and read as damage).
pub(super) const MIGRATION_15: &str = "";

/// Rewrites the CPEs, days and sha256s of the rows written before version 15, 10,000 rows at a
/// time.
pub(super) fn compact_keys(tx: &Connection) -> rusqlite::Result<()> {
    fn day(text: &str) -> Option<Vec<u8>> {
        NaiveDate::from_text(text)?.to_blob()
    }
    fn sha256(text: &str) -> Option<Vec<u8>> {
        Sha256::from_text(text)?.to_blob()
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
pub(super) fn compact_cpe(text: &str) -> Option<Vec<u8>> {
    Cpe::from_text(text)?.to_blob()
}

/// How a column's text becomes its compact form (`None`: kept as it is).
pub(super) type Compaction = fn(&str) -> Option<Vec<u8>>;

/// Rewrites each (table, column) still in text into its compact form, 10,000 rows at a time.
pub(super) fn compact_columns(
    tx: &Connection,
    columns: &[(&str, &str, Compaction)],
) -> rusqlite::Result<()> {
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

/// Version 16: the mobility records that span more than [`LONG_RECORD_SECS`](super::mobility::LONG_RECORD_SECS) in an index of their
/// own, by end. A day's records were found through the (ord, first start, last start) index with
/// only an upper bound on the first start: every query read the ORD's whole history up to the day
/// (9 ms per CPE after a month at 500 CPEs; seconds after a year at 10,000). Now a record of at
/// most that span is found between the day's start less the span and its end, and the few longer
/// ones through this index (see `mobility_overlapping`).
pub(super) const MIGRATION_16: &str = "
CREATE INDEX IF NOT EXISTS mobility_long ON mobility_records (ord, last_start) WHERE last_start - first_start > 172800;
";

/// Version 17: a checksum in every page (`page_sums`), given to an older ledger by `seal_pages`
/// before the migrations run (a `VACUUM`, which cannot run inside their transaction).
pub(super) const MIGRATION_17: &str = "";

/// Version 18: a day's mobility of a few CPEs (the incremental send's changed ones) found by CPE:
/// an index by (ord, CPE, first start), the records' CPEs kept as their 7 bytes (`sql::Compact`,
/// as the sent files' since version 15; checksums over the text) so that the index costs less
/// than it saves. Before, each changed CPE's records were looked for among all of the day's, and
/// more than eight changed CPEs read the whole day: at N = 10,000 with 30 days open, a quarter of
/// the daily cycle went on decoding the mobility of CPEs that had not changed. The rows are
/// rewritten by `compact_columns`, then the index is made.
pub(super) const MIGRATION_18: &str = "";

/// The index of version 18, made once the CPEs are compact.
pub(super) const MOBILITY_BY_CPE: &str =
    "CREATE INDEX IF NOT EXISTS mobility_by_cpe ON mobility_records (ord, cpe, first_start);";

/// Version 19: each mobility record keeps its place (the EVSE, or the CPE a reading names) as the
/// input gave it, so that its CPE and ORD can be decided again when the dated registry changes:
/// the live ledger, a recovered one and `recover --fresh` then map the same inputs alike
/// (`Cycle::remap_mobility`). Rows written before have none (`NULL`) and keep their mapping; the
/// checksum covers the place only where there is one, so theirs stay valid. The column is added
/// by `add_column` (once: `ALTER TABLE` is not idempotent).
pub(super) const MIGRATION_19: &str = "";

/// Version 20: the CPEs with an ORD file for a day found by day, and the late and refused ORD
/// files counted by status. Both were read through indexes that lead with the ORD only: every
/// cycle went through the ORD's whole history once per open day (completeness, then each day
/// sent) and once for each count, so that with 30 days open at 500 CPEs these queries alone cost
/// a fifth of the daily cycle (`bench/month-ab.sh`), and grew with every day kept.
pub(super) const MIGRATION_20: &str = "
CREATE INDEX IF NOT EXISTS profiles_by_day ON ord_profiles (ord, day, cpe);
CREATE INDEX IF NOT EXISTS received_by_status ON received_files (ord, status);
";

/// Adds column `column` (of `decl`) to `table` unless it is there.
pub(super) fn add_column(
    tx: &Connection,
    table: &str,
    column: &str,
    decl: &str,
) -> rusqlite::Result<()> {
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

/// Version 18's rewrite: the mobility records' CPEs compacted, then their index by CPE.
fn compact_mobility_cpes(tx: &Connection) -> rusqlite::Result<()> {
    compact_columns(tx, &[("mobility_records", "cpe", compact_cpe)])?;
    tx.execute_batch(MOBILITY_BY_CPE)
}

/// Version 19's change: the mobility records' `place` column.
fn add_place(tx: &Connection) -> rusqlite::Result<()> {
    add_column(tx, "mobility_records", "place", "TEXT")
}

/// One step of the schema: its SQL, then, for some, a rewrite of the rows in Rust.
struct Migration {
    sql: &'static str,
    rewrite: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

/// Every migration in order: entry `i` takes a ledger from version `i` to `i + 1` (so there are
/// exactly [`SCHEMA_VERSION`] of them).
const MIGRATIONS: [Migration; SCHEMA_VERSION as usize] = [
    Migration {
        sql: MIGRATION_1,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_2,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_3,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_4,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_5,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_6,
        rewrite: Some(fill_row_sums),
    },
    Migration {
        sql: MIGRATION_7,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_8,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_9,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_10,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_11,
        rewrite: Some(pack_columns),
    },
    Migration {
        sql: MIGRATION_12,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_13,
        rewrite: Some(compact_sent_files),
    },
    Migration {
        sql: MIGRATION_14,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_15,
        rewrite: Some(compact_keys),
    },
    Migration {
        sql: MIGRATION_16,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_17,
        rewrite: None,
    },
    Migration {
        sql: MIGRATION_18,
        rewrite: Some(compact_mobility_cpes),
    },
    Migration {
        sql: MIGRATION_19,
        rewrite: Some(add_place),
    },
    Migration {
        sql: MIGRATION_20,
        rewrite: None,
    },
];

impl Store {
    /// Brings the ledger to [`SCHEMA_VERSION`], one migration at a time, each in its own
    /// transaction; a ledger newer than this build is refused ([`StoreError::TooNew`]).
    pub(super) fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 =
            one(&self.conn, "PRAGMA user_version", [], |r| r.get(0)).in_store(self)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (target, step) in (1..).zip(&MIGRATIONS) {
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
            tx.execute_batch(step.sql).map_err(sq)?;
            if let Some(rewrite) = step.rewrite {
                rewrite(&tx).map_err(sq)?;
            }
            tx.pragma_update(None, "user_version", target).map_err(sq)?;
            tx.commit().map_err(sq)?;
        }
        Ok(())
    }
}
