//! Received ORD files: what was seen, the ORD version in force per CPE-day, unreadable, missing and late ORD files.

use egme_ord_core::ord_name::OrdName;
use egme_ord_core::sha256::Sha256;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;

use egme_ord_core::cpe::Cpe;
use egme_ord_core::ledger::{ReceivedCopy, ReceivedStatus};
use egme_ord_core::profile::DayProfile;
use egme_ord_core::remote::RemoteEntry;

use super::rows::{
    profile_sum, FileFailure, ProfileRow, ProfileVersion, ReceivedFile, COPY_COLUMNS,
    FAILURE_COLUMNS, PROFILE_COLUMNS,
};
use super::sql::{day_text, time_text, Col, Compact, Packed, ReceivedSha};
use super::{exec, one, sqlite_err, to_i64, InStore, Store, StoreError};

/// The CPEs with an ORD profile for a day (`?1` the ORD, `?2` the day): by the `profiles_by_day`
/// index (schema 20), not through the ORD's whole history.
pub(super) const PROFILE_CPES: &str = "SELECT cpe FROM ord_profiles WHERE ord = ?1 AND day = ?2";

/// How many of an ORD's files (`?1`) came late: by the `received_by_status` index (schema 20).
pub(super) const LATE_COUNT: &str =
    "SELECT COUNT(*) FROM received_files WHERE ord = ?1 AND status = 'late'";

impl Store {
    /// Whether a file with this name, size and mtime was already received from `ord`.
    pub fn seen_file(
        &self,
        ord: &OrdName,
        name: &str,
        size: u64,
        mtime: i64,
    ) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND name = ?2 AND size = ?3 AND mtime = ?4 LIMIT 1",
            params![Col(ord), name, size, mtime],
        )
    }

    /// For each file of `listed` (a listing of `ord`'s receive folder, sorted by name): whether it
    /// was already received, under the same name, size and mtime ([`Store::seen_file`] of each,
    /// told in one ordered pass over the ledger when the listing is large).
    pub fn received_among(
        &self,
        ord: &OrdName,
        listed: &[RemoteEntry],
    ) -> Result<Vec<bool>, StoreError> {
        let rows = self.next_received_id()?;
        self.recorded_among(
            listed,
            rows,
            |e| self.seen_file(ord, e.name.as_str(), e.size, e.mtime),
            "SELECT name, size, mtime FROM received_files
             WHERE ord = ?3 AND name BETWEEN ?1 AND ?2 ORDER BY name",
            Some(ord),
        )
    }

    /// Whether identical bytes were already received (and usable) from `ord`.
    pub fn seen_content(&self, ord: &OrdName, sha256: &Sha256) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND sha256 = ?2 AND status != 'rejected' LIMIT 1",
            params![Col(ord), Compact(sha256)],
        )
    }

    /// The ORD version in force for a CPE-day, if any.
    pub fn profile_version(
        &self,
        ord: &OrdName,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Option<ProfileVersion>, StoreError> {
        Ok(self.profile_row(ord, cpe, day)?.map(|p| p.version))
    }

    /// The ORD profile in force for a CPE-day and its version, from one read of its row.
    pub fn profile_in_force(
        &self,
        ord: &OrdName,
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
    pub(super) fn profile_row(
        &self,
        ord: &OrdName,
        cpe: &Cpe,
        day: NaiveDate,
    ) -> Result<Option<ProfileRow>, StoreError> {
        self.row(
            &format!("SELECT {PROFILE_COLUMNS} FROM ord_profiles WHERE ord = ?1 AND cpe = ?2 AND day = ?3"),
            params![Col(ord), Col(cpe), Col(&day)],
        )
    }

    pub(super) fn cpes_of_day(
        &self,
        sql: &str,
        ord: &OrdName,
        day: NaiveDate,
    ) -> Result<Vec<Cpe>, StoreError> {
        self.rows(sql, params![Col(ord), Col(&day)])
    }

    /// CPEs with an ORD profile for `day`.
    pub fn profile_cpes(&self, ord: &OrdName, day: NaiveDate) -> Result<Vec<Cpe>, StoreError> {
        self.cpes_of_day(PROFILE_CPES, ord, day)
    }

    /// The highest transmission id received (valid files) from `ord`.
    pub fn last_inbound_id(&self, ord: &OrdName) -> Result<Option<u64>, StoreError> {
        one(
            &self.conn,
            "SELECT MAX(transmission_id) FROM received_files WHERE ord = ?1 AND status != 'rejected'",
            params![Col(ord)],
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
                Col(&file.ord), file.name, file.size, file.mtime, ReceivedSha(file.sha256), file.status.as_str(), file.diagnostics,
                file.cpe.as_ref().map(Compact), file.first_day.map(day_text), file.last_day.map(day_text),
                file.transmission_id, file.previous_id, file.ntransm,
                time_text(file.received_at), file.stored_path.as_deref().unwrap_or(""), file.stored_offset
            ],
        )
        .map_err(sq)?;
        let file_id: i64 = one(
            &tx,
            "SELECT id FROM received_files WHERE ord = ?1 AND name = ?2 AND size = ?3 AND mtime = ?4 AND sha256 = ?5",
            params![Col(&file.ord), file.name, file.size, file.mtime, ReceivedSha(file.sha256)],
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
            let sum = profile_sum(
                file.ord.as_str(),
                cpe.as_str(),
                &day,
                tid,
                ntransm,
                &readings,
            );
            exec(
                &tx,
                "INSERT INTO ord_profiles (ord, cpe, day, received_file_id, transmission_id, ntransm, received_at, readings, row_sum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (ord, cpe, day) DO UPDATE SET received_file_id = excluded.received_file_id,
                   transmission_id = excluded.transmission_id, ntransm = excluded.ntransm,
                   received_at = excluded.received_at, readings = excluded.readings, row_sum = excluded.row_sum",
                params![
                    Col(&file.ord), cpe.as_str(), day, file_id, tid, ntransm,
                    time_text(file.received_at), Packed(readings), sum
                ],
            )
            .map_err(sq)?;
            exec(
                &tx,
                "INSERT OR IGNORE INTO days (ord, day, state) VALUES (?1, ?2, 'open')",
                params![Col(&file.ord), day_text(profile.day)],
            )
            .map_err(sq)?;
            exec(
                &tx,
                "INSERT INTO dirty (ord, cpe, day) VALUES (?1, ?2, ?3)",
                params![Col(&file.ord), cpe.as_str(), day_text(profile.day)],
            )
            .map_err(sq)?;
        }
        tx.commit().map_err(sq)
    }

    /// Inbound files received, oldest first, as recorded (for `status` and `verify`).
    pub fn received(
        &self,
        ord: &OrdName,
    ) -> Result<Vec<(String, ReceivedStatus, Option<Sha256>)>, StoreError> {
        self.rows(
            "SELECT name, status, sha256 FROM received_files WHERE ord = ?1 ORDER BY id",
            params![Col(ord)],
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
    pub fn received_copies(&self, ord: &OrdName) -> Result<Vec<ReceivedCopy>, StoreError> {
        self.rows(
            &format!("SELECT {COPY_COLUMNS} FROM received_files WHERE ord = ?1 ORDER BY id"),
            params![Col(ord)],
        )
    }

    /// Counts one more cycle in which `name` of `ord` could not be read; returns the count.
    pub fn record_file_failure(
        &self,
        ord: &OrdName,
        name: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<u32, StoreError> {
        let at = time_text(at);
        exec(
            &self.conn,
            "INSERT INTO intake_failures (ord, name, failures, first_at, last_at, last_error) VALUES (?1, ?2, 1, ?3, ?3, ?4)
             ON CONFLICT (ord, name) DO UPDATE SET failures = failures + 1, last_at = excluded.last_at, last_error = excluded.last_error",
            params![Col(ord), name, at, error],
        )
        .in_store(self)?;
        one(
            &self.conn,
            "SELECT failures FROM intake_failures WHERE ord = ?1 AND name = ?2",
            params![Col(ord), name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .in_store(self)
    }

    /// Forgets the failures of `name` (it was read), or of every file of `ord` not in `listed`
    /// (gone from the ORD's folder).
    pub fn clear_file_failure(&self, ord: &OrdName, name: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "DELETE FROM intake_failures WHERE ord = ?1 AND name = ?2",
            params![Col(ord), name],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The files of `ord` that could not be read, most failures first.
    pub fn file_failures(&self, ord: &OrdName) -> Result<Vec<FileFailure>, StoreError> {
        self.rows(
            &format!("SELECT {FAILURE_COLUMNS} FROM intake_failures WHERE ord = ?1 ORDER BY failures DESC, name"),
            params![Col(ord)],
        )
    }

    /// Whether the ledger has a received file of `ord` with this name and content.
    pub fn received_known(
        &self,
        ord: &OrdName,
        name: &str,
        sha256: &Sha256,
    ) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM received_files WHERE ord = ?1 AND name = ?2 AND sha256 = ?3 LIMIT 1",
            params![Col(ord), name, Compact(sha256)],
        )
    }

    /// The first day the ledger knows for `ord` (open or closed), if any.
    pub fn first_known_day(&self, ord: &OrdName) -> Result<Option<NaiveDate>, StoreError> {
        let day: Option<Col<NaiveDate>> = one(
            &self.conn,
            "SELECT MIN(day) FROM days WHERE ord = ?1",
            params![Col(ord)],
            |r| r.get(0),
        )
        .in_store(self)?;
        Ok(day.map(|d| d.0))
    }

    /// The CPEs reported missing per day (`ord-file-missing`), with since when.
    pub fn missing_ord_files(
        &self,
        ord: &OrdName,
    ) -> Result<BTreeMap<NaiveDate, BTreeSet<Cpe>>, StoreError> {
        let rows: Vec<(NaiveDate, Cpe)> = self.rows(
            "SELECT day, cpe FROM missing_ord_files WHERE ord = ?1 ORDER BY day, cpe",
            params![Col(ord)],
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
        ord: &OrdName,
        day: NaiveDate,
        (new, cleared): (&[Cpe], &[Cpe]),
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for cpe in new {
            exec(
                &self.conn,
                "INSERT OR IGNORE INTO missing_ord_files (ord, day, cpe, since) VALUES (?1, ?2, ?3, ?4)",
                params![Col(ord), Col(&day), Col(cpe), Col(&now)],
            )
            .in_store(self)?;
        }
        for cpe in cleared {
            exec(
                &self.conn,
                "DELETE FROM missing_ord_files WHERE ord = ?1 AND day = ?2 AND cpe = ?3",
                params![Col(ord), Col(&day), Col(cpe)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    /// Forgets what was missing on days no longer asked for (closed, or out of the window).
    pub fn forget_missing_ord_files_except(
        &self,
        ord: &OrdName,
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
                params![Col(ord), Col(&day)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    /// ORD files received for days already closed (archived, not applied).
    pub fn late_ord_files(&self, ord: &OrdName) -> Result<u64, StoreError> {
        one(&self.conn, LATE_COUNT, params![Col(ord)], |r| {
            r.get::<_, u64>(0)
        })
        .in_store(self)
    }
}
