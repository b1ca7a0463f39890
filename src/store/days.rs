//! Days per ORD: open and closed, the change marks that tell a day to net again, the netting inputs and results, `status`.

use egme_ord_core::ord_name::OrdName;
use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension};

use egme_ord_core::cpe::Cpe;
use egme_ord_core::planner::{DayState, DaysState};

use super::rows::DayStatus;
use super::sql::{bound, day_key_of, day_text, time_text, Col, Packed};
use super::{exec, one, sqlite_err, InStore, Store, StoreError};

impl Store {
    /// Reopens a closed day of `ord`: whether it was closed.
    pub fn reopen_day(&self, ord: &OrdName, day: NaiveDate) -> Result<bool, StoreError> {
        exec(
            &self.conn,
            "UPDATE days SET state = 'open', closed_at = NULL, dirty_seen = NULL WHERE ord = ?1 AND day = ?2 AND state = 'closed'",
            params![Col(ord), day_text(day)],
        )
        .map(|n| n > 0)
        .in_store(self)
    }

    pub fn days_state(&self, ord: &OrdName) -> Result<DaysState, StoreError> {
        let mut state = DaysState::default();
        let days: Vec<(NaiveDate, DayState)> = self.rows(
            "SELECT day, state FROM days WHERE ord = ?1",
            params![Col(ord)],
        )?;
        for (day, s) in days {
            match s {
                DayState::Closed => state.closed.insert(day),
                DayState::Open => state.open.insert(day),
            };
        }
        let last: Option<Option<Col<NaiveDate>>> = one(
            &self.conn,
            "SELECT last_send FROM ord_state WHERE ord = ?1",
            params![Col(ord)],
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
        ord: &OrdName,
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
                params![Col(ord), day_text(*d), time_text(at)],
            )
            .map_err(sq)?;
        }
        exec(
            &tx,
            "INSERT INTO ord_state (ord, last_send) VALUES (?1, ?2) ON CONFLICT (ord) DO UPDATE SET last_send = excluded.last_send",
            params![Col(ord), day_text(today)],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Closes days without a send (their window passed while nothing ran).
    pub fn close_days(
        &mut self,
        ord: &OrdName,
        days: &[NaiveDate],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for d in days {
            exec(
                &self.conn,
                "UPDATE days SET state = 'closed', closed_at = ?3 WHERE ord = ?1 AND day = ?2",
                params![Col(ord), day_text(*d), time_text(at)],
            )
            .in_store(self)?;
        }
        Ok(())
    }

    pub fn put_netting_result(
        &self,
        ord: &OrdName,
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
            params![Col(ord), Col(&day), Col(cpe), Col(&at), bound(anomalies), Packed(report.to_string())],
        )
        .map(|changed| changed > 0)
        .in_store(self)
    }

    /// The last change mark recorded for `ord` (0: none).
    pub fn dirty_max_id(&self, ord: &OrdName) -> Result<i64, StoreError> {
        one(
            &self.conn,
            "SELECT COALESCE(MAX(id), 0) FROM dirty WHERE ord = ?1",
            params![Col(ord)],
            |r| r.get(0),
        )
        .in_store(self)
    }

    /// The change mark `day` was last netted against (`None`: never incrementally: net it whole).
    pub fn day_dirty_seen(&self, ord: &OrdName, day: NaiveDate) -> Result<Option<i64>, StoreError> {
        let v: Option<Option<i64>> = one(
            &self.conn,
            "SELECT dirty_seen FROM days WHERE ord = ?1 AND day = ?2",
            params![Col(ord), day_text(day)],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        Ok(v.flatten())
    }

    pub fn set_day_dirty_seen(
        &self,
        ord: &OrdName,
        day: NaiveDate,
        id: i64,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "UPDATE days SET dirty_seen = ?3 WHERE ord = ?1 AND day = ?2",
            params![Col(ord), day_text(day), id],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The CPEs of `day` (quarter-hours starting in `[from, to)`) with a change marked after `after`.
    pub fn dirty_cpes(
        &self,
        ord: &OrdName,
        day: NaiveDate,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        after: i64,
    ) -> Result<BTreeSet<Cpe>, StoreError> {
        let cpes: Vec<Cpe> = self.rows(
            "SELECT DISTINCT cpe FROM dirty WHERE ord = ?1 AND id > ?2
               AND (day = ?3 OR (first_start < ?5 AND last_start >= ?4))",
            params![
                Col(ord),
                after,
                day_text(day),
                from.timestamp(),
                to.timestamp()
            ],
        )?;
        Ok(cpes.into_iter().collect())
    }

    /// Forgets change marks that end before `before`, and those every open day was netted
    /// against (no open day can need them any more).
    pub fn prune_dirty(
        &self,
        ord: &OrdName,
        before: DateTime<Utc>,
        oldest: NaiveDate,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "DELETE FROM dirty WHERE ord = ?1 AND ((last_start IS NOT NULL AND last_start < ?2) OR (day IS NOT NULL AND day < ?3))",
            params![Col(ord), before.timestamp(), day_text(oldest)],
        )
        .in_store(self)?;
        // And the marks every open day has already been netted against: a day nets only marks
        // after its own `dirty_seen`, and one without it (never netted, reopened) nets whole.
        exec(
            &self.conn,
            "DELETE FROM dirty WHERE ord = ?1 AND id <=
               (SELECT MIN(dirty_seen) FROM days WHERE ord = ?1 AND state = 'open' AND dirty_seen IS NOT NULL)",
            params![Col(ord)],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// What the ORD's netting depended on at its last whole send (registry and settings).
    pub fn netting_inputs(&self, ord: &OrdName) -> Result<Option<String>, StoreError> {
        let v: Option<Option<String>> = one(
            &self.conn,
            "SELECT netting_inputs FROM ord_state WHERE ord = ?1",
            params![Col(ord)],
            |r| r.get(0),
        )
        .optional()
        .in_store(self)?;
        Ok(v.flatten())
    }

    pub fn set_netting_inputs(
        &self,
        ord: &OrdName,
        inputs: Option<&str>,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO ord_state (ord, netting_inputs) VALUES (?1, ?2)
             ON CONFLICT (ord) DO UPDATE SET netting_inputs = excluded.netting_inputs",
            params![Col(ord), inputs],
        )
        .map(|_| ())
        .in_store(self)
    }

    pub fn status(&self, ord: &OrdName) -> Result<Vec<DayStatus>, StoreError> {
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
            params![Col(ord)],
        )
    }
}
