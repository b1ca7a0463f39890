//! Sent files and the transmission sequences: ids taken gap-free, files recorded, delivered and paged through.

use egme_ord_core::ord_name::OrdName;
use egme_ord_core::sha256::Sha256;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::{TariffCycle, MAX_TRANSMISSION_ID};
use egme_ord_core::ledger::SentFile;
use egme_ord_core::registry::SupplierKey;

use super::rows::{sent_sum, sequence_sum, OutboundWrite, SENT_COLUMNS};
use super::sql::{bound, day_text, Col, Compact, PackNameRef, RowError};
use super::{exec, one, sqlite_err, to_i64, InStore, Store, StoreError};
use super::{rows, sql};

/// The last id taken for `ord`, its row checked: `Err(None)` a SQLite error is in the first
/// field, a damaged row in the second.
pub(super) fn last_id_taken(conn: &Connection, ord: &OrdName) -> Result<Option<u64>, RowError> {
    let row: Option<(i64, Option<i64>)> = one(
        conn,
        "SELECT last_id, row_sum FROM sequences WHERE ord = ?1",
        params![Col(ord)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(RowError::Sqlite)?;
    let Some((last, sum)) = row else {
        return Ok(None);
    };
    if sum != Some(sequence_sum(ord.as_str(), last)) {
        return Err(RowError::Damaged(format!("sequence of {ord}")));
    }
    u64::try_from(last)
        .map(Some)
        .map_err(|_| RowError::Damaged(format!("sequence of {ord}: {last}")))
}

/// Writes the sequence of `ord` with its checksum.
pub(super) fn put_sequence(conn: &Connection, ord: &OrdName, last: i64) -> rusqlite::Result<usize> {
    exec(
        conn,
        "INSERT INTO sequences (ord, last_id, row_sum) VALUES (?1, ?2, ?3)
         ON CONFLICT (ord) DO UPDATE SET last_id = excluded.last_id, row_sum = excluded.row_sum",
        params![Col(ord), last, sequence_sum(ord.as_str(), last)],
    )
}

/// Inserts a sent file's row with its checksum.
pub(super) fn insert_sent(
    conn: &Connection,
    ord: &OrdName,
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
        ord.as_str(),
        &w.name,
        &w.sha256.to_string(),
        (id, previous),
        (w.cpe.as_str(), &w.supplier, w.tariff.code()),
        &day,
        &w.content_hash.to_string(),
        (pack, offset, len),
    );
    exec(
        conn,
        "INSERT INTO sent_files (ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash, written_at,
                                 delivered_at, pack, pack_offset, pack_len, row_sum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            Col(ord), kept_name, Compact(&w.sha256), id, previous, Compact(&w.cpe), w.supplier, Col(&w.tariff), Compact(&w.day), Compact(&w.content_hash),
            w.at.timestamp(), delivered_at.map(|t| t.timestamp()), pack.map(PackNameRef), offset, len, sum
        ],
    )
}

/// The files of an ORD after an id, in id order (only the pending ones: through `sent_pending`).
pub(super) fn sent_query_sql(only_pending: bool) -> String {
    format!(
        "SELECT {SENT_COLUMNS}
         FROM sent_files WHERE ord = ?1 AND transmission_id > ?2 {} ORDER BY transmission_id LIMIT ?3",
        if only_pending { "AND delivered_at IS NULL" } else { "" }
    )
}

/// How many files of an ORD are pending (through `sent_pending`).
pub(super) const PENDING_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM sent_files WHERE ord = ?1 AND delivered_at IS NULL";

/// How a sent file's name is written (schema 13): the one-byte offset of its generation date when
/// the name is exactly what its columns give (`ledger::name_offset`), else the text.
pub(super) fn kept_sent_name(
    name: &str,
    supplier: &str,
    tariff: TariffCycle,
    cpe: Cpe,
    (day, id): (NaiveDate, i64),
) -> rusqlite::types::Value {
    let offset = u64::try_from(id)
        .ok()
        .and_then(|id| egme_ord_core::ledger::name_offset(name, supplier, tariff, cpe, (day, id)))
        .and_then(|k| u8::try_from(k).ok());
    match offset {
        Some(k) => rusqlite::types::Value::Blob(vec![k]),
        None => rusqlite::types::Value::Text(name.to_string()),
    }
}

impl Store {
    /// The sequence of every ORD the ledger has one for.
    pub fn sequences(&self) -> Result<BTreeMap<OrdName, u64>, StoreError> {
        let ords: Vec<Col<OrdName>> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT ord FROM sequences ORDER BY ord")
                .in_store(self)?;
            let rows = stmt.query_map([], |r| r.get(0)).in_store(self)?;
            rows.collect::<Result<_, _>>().in_store(self)?
        };
        let mut out = BTreeMap::new();
        for Col(ord) in ords {
            if let Some(last) = self.last_transmission_id(&ord)? {
                out.insert(ord, last);
            }
        }
        Ok(out)
    }

    /// The name recorded for transmission id `id` of `ord`, if the ledger has a row for it.
    pub fn sent_name(&self, ord: &OrdName, id: u64) -> Result<Option<String>, StoreError> {
        Ok(self.sent_names_between(ord, id, id)?.remove(&id))
    }

    /// The names the ledger recorded for the ids of `ord` from `lo` to `hi`, in one read (the
    /// fence compares a whole listing of the ORD's folder with them).
    pub fn sent_names_between(
        &self,
        ord: &OrdName,
        lo: u64,
        hi: u64,
    ) -> Result<BTreeMap<u64, String>, StoreError> {
        let mut names = BTreeMap::new();
        self.each_sent_name_between(ord, lo, hi, |id, name| {
            names.insert(id, name);
        })?;
        Ok(names)
    }

    /// [`Store::sent_names_between`] one row at a time, in id order, nothing held: for a send
    /// folder nobody empties, whose listing names every file ever sent.
    pub fn each_sent_name_between(
        &self,
        ord: &OrdName,
        lo: u64,
        hi: u64,
        mut each: impl FnMut(u64, String),
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT transmission_id, name, supplier, tariff, cpe, day FROM sent_files
                 WHERE ord = ?1 AND transmission_id BETWEEN ?2 AND ?3 ORDER BY transmission_id",
            )
            .in_store(self)?;
        let rows = st
            .query_map(params![Col(ord), bound(lo), bound(hi)], |r| {
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
            })
            .in_store(self)?;
        for row in rows {
            let (id, name) = row.in_store(self)?.map_err(|e| self.read_err(e))?;
            each(id, name);
        }
        Ok(())
    }

    /// Records a file found in the outbox or at the ORD under transmission id `id` (see `recover`):
    /// a row as `record_outbound` would have written, `delivered_at` set when the ORD holds it. The
    /// sequence is not moved here ([`Store::raise_sequence`]).
    pub fn record_recovered(
        &self,
        ord: &OrdName,
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
            params![Col(ord), day_text(w.day)],
        )
        .map(|_| ())
        .map_err(sq)
    }

    /// Marks the file of `ord` with transmission id `id` and name `name` delivered, if it is not
    /// yet; whether it changed anything.
    pub fn mark_delivered_by_name(
        &self,
        ord: &OrdName,
        (id, name): (u64, &str),
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if self.sent_name(ord, id)?.as_deref() != Some(name) {
            return Ok(false);
        }
        exec(
            &self.conn,
            "UPDATE sent_files SET delivered_at = ?3 WHERE ord = ?1 AND transmission_id = ?2 AND delivered_at IS NULL",
            params![Col(ord), bound(id), at.timestamp()],
        )
        .map(|n| n > 0)
        .in_store(self)
    }

    /// Moves the sequence of `ord` up to `last` (never down).
    pub fn raise_sequence(&self, ord: &OrdName, last: u64) -> Result<(), StoreError> {
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
    pub fn sent_ids(&self, ord: &OrdName) -> Result<Vec<u64>, StoreError> {
        self.rows(
            "SELECT transmission_id FROM sent_files WHERE ord = ?1 ORDER BY transmission_id",
            params![Col(ord)],
        )
    }

    /// The highest transmission id of a file sent to `ord`, if any (through the (ord, id) index:
    /// `status` read every sent file of the ORD for it, 1.6 GB after a month at 10,000 CPEs).
    pub fn last_sent_id(&self, ord: &OrdName) -> Result<Option<u64>, StoreError> {
        one(
            &self.conn,
            "SELECT MAX(transmission_id) FROM sent_files WHERE ord = ?1",
            params![Col(ord)],
            |r| r.get(0),
        )
        .in_store(self)
    }

    /// The last transmission id taken for `ord`, if any.
    pub fn last_transmission_id(&self, ord: &OrdName) -> Result<Option<u64>, StoreError> {
        last_id_taken(&self.conn, ord).map_err(|e| self.read_err(e))
    }

    /// CPEs that were sent a file for `day` before.
    pub fn sent_cpes(&self, ord: &OrdName, day: NaiveDate) -> Result<Vec<Cpe>, StoreError> {
        self.rows(
            "SELECT DISTINCT cpe FROM sent_files WHERE ord = ?1 AND day = ?2",
            params![Col(ord), Compact(&day)],
        )
    }

    /// The content hash of the last file sent for a CPE-day-supplier.
    pub fn last_content_hashes(
        &self,
        ord: &OrdName,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<BTreeMap<SupplierKey, Sha256>, StoreError> {
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
        ord: &OrdName,
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
                ord: ord.clone(),
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
            ord: ord.clone(),
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
    pub fn sent_files(
        &self,
        ord: &OrdName,
        only_pending: bool,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.sent_query(ord, only_pending, 0, usize::MAX)
    }

    /// Every file sent for one CPE-day, in the order they were sent.
    pub fn sent_files_of_cpe_day(
        &self,
        ord: &OrdName,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.rows(
            &format!("SELECT {SENT_COLUMNS} FROM sent_files WHERE ord = ?1 AND cpe = ?2 AND day = ?3 ORDER BY id"),
            params![Col(ord), Compact(cpe), Compact(&day)],
        )
    }

    /// Up to `limit` files of `ord` not yet delivered, after transmission id `after`, in id order
    /// (delivery pages through them, so memory does not grow with the day's files).
    pub fn pending_after(
        &self,
        ord: &OrdName,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.sent_query(ord, true, after, limit)
    }

    pub(super) fn sent_query(
        &self,
        ord: &OrdName,
        only_pending: bool,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SentFile>, StoreError> {
        self.rows(
            &sent_query_sql(only_pending),
            params![Col(ord), bound(after), bound(limit)],
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

    /// Per day of `ord`: state, ORD data held, files sent, anomalies.
    /// How many files of `ord` were written and not yet delivered.
    pub fn pending_count(&self, ord: &OrdName) -> Result<u64, StoreError> {
        one(&self.conn, PENDING_COUNT_SQL, params![Col(ord)], |r| {
            r.get::<_, u64>(0)
        })
        .in_store(self)
    }
}
