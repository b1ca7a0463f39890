//! Mobility records: their sources, the records mapped to an ORD and CPE, found by range and by CPE, moved when the registry changes.

use egme_ord_core::ord_name::OrdName;
use egme_ord_core::sha256::Sha256;
use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use egme_ord_core::cpe::Cpe;
use egme_ord_core::ledger::MobilityFileStatus;
use egme_ord_core::mobility::Place;
use egme_ord_core::remote::RemoteEntry;

use super::rows::{mobility_sum, StoredMobility, MOBILITY_COLUMNS};
use super::sql::{day_text, time_text, Col, Compact, Packed};
use super::{exec, one, sqlite_err, InStore, Store, StoreError};

/// The span (first to last quarter-hour with energy) above which a mobility record is in the
/// `mobility_long` index; the literal in `MIGRATION_16` and `mobility_overlapping` (SQLite uses a
/// partial index only for a query that repeats its condition).
pub(super) const LONG_RECORD_SECS: i64 = 172_800;

/// The mobility records of ORD `?1` with energy in `[?2, ?3)` (seconds), less the credited ones
/// and credits themselves, ordered by key; `extra` narrows them (e.g. `AND cpe = ?4`). A record
/// overlaps the range when its first quarter-hour starts before `?3` and its last at or after
/// `?2`; one of span at most [`LONG_RECORD_SECS`] then starts at or after `?2` less it, which
/// bounds the scan of the range index to the day's records; the longer ones are found by their
/// end in `mobility_long`. The two halves are disjoint and together all the overlapping ones.
///
/// `index`: `mobility_by_range` for a whole day, `mobility_by_cpe` (with `extra` naming the CPE)
/// for one CPE's records of it.
pub(super) fn mobility_overlapping(index: &str, extra: &str) -> String {
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

#[allow(clippy::too_many_arguments)]
/// Makes each `(ord, day)` an open day unless the ledger has it already.
pub(super) fn open_days<'a>(
    tx: &Connection,
    days: impl IntoIterator<Item = (&'a OrdName, NaiveDate)>,
) -> rusqlite::Result<()> {
    for (ord, day) in days {
        exec(
            tx,
            "INSERT OR IGNORE INTO days (ord, day, state) VALUES (?1, ?2, 'open')",
            params![Col(ord), day_text(day)],
        )?;
    }
    Ok(())
}

/// A record's place as the ledger keeps it (JSON), or `None`.
pub(super) fn place_text(path: &Path, place: Option<&Place>) -> Result<Option<String>, StoreError> {
    place
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: "place",
            detail: e.to_string(),
        })
}

impl Store {
    /// Whether the ledger has a mobility source with this name and content.
    pub fn mobility_source_known(&self, name: &str, sha256: &Sha256) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM mobility_sources WHERE name = ?1 AND sha256 = ?2 LIMIT 1",
            params![name, Col(sha256)],
        )
    }

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

    /// For each file of `listed` (a listing of the mobility inbox, sorted by name): whether it was
    /// already read, under the same name, size and mtime ([`Store::mobility_source_seen`] of
    /// each, told in one ordered pass over the ledger when the listing is large).
    pub fn mobility_among(&self, listed: &[RemoteEntry]) -> Result<Vec<bool>, StoreError> {
        let rows = one(
            &self.conn,
            "SELECT COALESCE(MAX(id), 0) FROM mobility_sources",
            [],
            |r| r.get::<_, u64>(0),
        )
        .in_store(self)?;
        self.recorded_among(
            listed,
            rows,
            |e| self.mobility_source_seen(e.name.as_str(), e.size, e.mtime),
            "SELECT name, size, mtime FROM mobility_sources
             WHERE name BETWEEN ?1 AND ?2 ORDER BY name",
            None,
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

    /// Records a mobility source file (`sha256`: `None` when its bytes were never read) and the
    /// records it puts in force, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn record_mobility(
        &mut self,
        name: &str,
        size: u64,
        mtime: i64,
        sha256: Option<&Sha256>,
        status: MobilityFileStatus,
        report: &str,
        stored_path: &str,
        at: DateTime<Utc>,
        records: &[StoredMobility],
        days: &[(OrdName, NaiveDate)],
    ) -> Result<(), StoreError> {
        let Store { conn, path, .. } = self;
        let sq = sqlite_err(path);
        let tx = conn.savepoint().map_err(sq)?;
        exec(
            &tx,
            "INSERT OR IGNORE INTO mobility_sources (name, size, mtime, sha256, status, report, ingested_at, stored_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![name, size, mtime, sha256.map_or(String::new(), Sha256::to_string), status.as_str(), report, time_text(at), stored_path],
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
                    params![Col(&r.ord), Col(&r.cpe), f, l],
                )
                .map_err(sq)?;
            }
            let place = place_text(path, r.place.as_ref())?;
            let sum = mobility_sum(
                &r.key,
                &updated,
                r.ord.as_str(),
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
                params![r.key, updated, Col(&r.ord), Compact(&r.cpe), Col(&r.ceme), r.credit_of, first, last, Packed(energy), r.source, sum, place],
            )
            .map_err(sq)?;
        }
        open_days(&tx, days.iter().map(|(ord, day)| (ord, *day))).map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Mobility records of `ord` with energy in `[from, to)`, less the credited ones.
    pub fn mobility_between(
        &self,
        ord: &OrdName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredMobility>, StoreError> {
        self.rows(
            &mobility_overlapping("mobility_by_range", ""),
            params![Col(ord), from.timestamp(), to.timestamp()],
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
        ord: &OrdName,
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
            ord.as_str(),
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
            params![r.key, Col(ord), Compact(&cpe), sum],
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

    /// The mobility of `cpes` with energy in `[from, to)` (as `mobility_between`, for a few CPEs).
    pub fn mobility_of_cpes_between(
        &self,
        ord: &OrdName,
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
                params![Col(ord), from.timestamp(), to.timestamp(), Compact(cpe)],
            )?;
            out.extend(rows);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
