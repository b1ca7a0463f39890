//! The ledger: one SQLite file (WAL, migrations by `user_version`). Only this module knows SQL.
//!
//! `mod.rs` keeps the [`Store`] itself: opening a ledger, its checks, batches, the errors and the
//! query helpers. The rest of `impl Store` is spread by table family: `sent` (sent files and the
//! sequences), `received` (ORD files and their versions), `mobility`, `days`, `events`,
//! `retention`, `meta` (the ledger's identity and single values); `schema` holds the migrations, `rows` the row types and their checksums, `sql`
//! the compact column forms, `page_sums` the page checksums (the one room for unsafe code).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

mod days;
mod events;
mod lock;
mod meta;
mod mobility;
mod page_sums;
mod query;
mod received;
mod retention;
mod rows;
mod schema;
mod sent;
mod sql;

pub use lock::{set_ledger_aside, Ledger, LockError, OpenMode, StoreLock};
pub use query::QueryRows;
pub use rows::{
    DayStatus, EventFilter, EventRecord, FileFailure, OrdCycle, OutboundWrite, ProfileVersion,
    ReceivedFile, ServerWeakness, StoredMobility,
};

use egme_ord_core::event::EventKind;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::remote::{Recognition, RemoteEntry};
use sql::{Col, FromRow, RowError};

/// A listing of fewer files than this is told recorded or not by one lookup per file.
const SCAN_FROM: u64 = 64;
/// About what one lookup costs against one step of an ordered pass: a listing is told in one pass
/// when its files, times this, are at least the records there are.
const LOOKUP_COST: u64 = 8;

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
    IdsExhausted { ord: OrdName, last: u64 },
    #[error("store {path}: the ledger file was removed or replaced while egme-ord had it open: nothing more is recorded or sent. Stop egme-ord; if the file is gone, run `egme-ord recover --config FILE` before starting it again (docs/OPERATIONS.md)")]
    Replaced { path: PathBuf },
    #[error("store {path}: there is no ledger here: nothing has run on this config yet (`egme-ord once` or `run` creates it), or the path is wrong; if the ledger was lost, see `egme-ord recover` (docs/OPERATIONS.md)")]
    Missing { path: PathBuf },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move {from} to {to}")]
    SetAside {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
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

/// A u64 id as SQLite's INTEGER (ids beyond i64 cannot be written: saturated, then refused by
/// the UNIQUE constraints rather than wrapped).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
            // A failed ROLLBACK leaves SQLite to roll the transaction back when the connection closes;
            // nothing of the batch was committed either way.
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
    /// For each file of `listed` (sorted by name), whether the ledger recorded it: by `lookup` of
    /// each when the listing is small against `rows` (an upper bound of the records), else by
    /// one ordered pass over the records whose names fall in the listing's range (a folder nobody
    /// empties then costs one step per record, not one search per file). `scan` reads `(name,
    /// size, mtime)` in name order for the names between `?1` and `?2`, and `?3` is `ord` when
    /// given.
    fn recorded_among(
        &self,
        listed: &[RemoteEntry],
        rows: u64,
        lookup: impl FnMut(&RemoteEntry) -> Result<bool, StoreError>,
        scan: &str,
        ord: Option<&OrdName>,
    ) -> Result<Vec<bool>, StoreError> {
        let (Some(first), Some(last)) = (listed.first(), listed.last()) else {
            return Ok(Vec::new());
        };
        let n = listed.len() as u64;
        if n < SCAN_FROM || n.saturating_mul(LOOKUP_COST) < rows {
            return listed.iter().map(lookup).collect();
        }
        let mut recognition = Recognition::new(listed);
        let mut st = self.conn.prepare_cached(scan).in_store(self)?;
        let (first, last) = (first.name.as_str(), last.name.as_str());
        let mut found = match ord {
            Some(ord) => st.query(params![first, last, Col(ord)]),
            None => st.query(params![first, last]),
        }
        .in_store(self)?;
        while let Some(r) = found.next().in_store(self)? {
            let name = sql::text(r, 0).in_store(self)?;
            recognition.record(name, r.get(1).in_store(self)?, r.get(2).in_store(self)?);
        }
        Ok(recognition.recorded())
    }

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
}

#[cfg(test)]
mod tests;
