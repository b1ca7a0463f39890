//! Events, each ORD's last cycle, and what the ledger learnt of each ORD's server.

use chrono::{DateTime, Utc};
use egme_ord_core::ord_name::OrdName;
use rusqlite::params;

use egme_ord_core::event::{EventKind, EventLevel};

use super::rows::{EventFilter, EventRecord, OrdCycle, ServerWeakness};
use super::sql::{time_text, Col};
use super::{exec, one, InStore, Store, StoreError};

/// The file an event's detail names (events write `NAME: …`), for the log line's `file` field.
pub(super) fn file_named_in(detail: &str) -> Option<&str> {
    let (head, _) = detail.split_once(": ")?;
    (head.contains('.') && !head.contains(' ')).then_some(head)
}

/// How many of an ORD's files (`?1`) were refused: by the `received_by_status` index (schema 20).
pub(super) const REJECTED_COUNT: &str =
    "SELECT COUNT(*) FROM received_files WHERE ord = ?1 AND status = 'rejected'";

impl Store {
    /// What the server of `ord`'s send folder was last seen to lack, and since when (`None`:
    /// nothing, or never looked at).
    pub fn server_weakness(&self, ord: &OrdName) -> Result<Option<ServerWeakness>, StoreError> {
        let value = self.meta(&format!("server_weakened:{ord}"))?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Records what the server of `ord`'s send folder lacks (`None`: nothing).
    pub fn set_server_weakness(
        &self,
        ord: &OrdName,
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

    /// Records an event, logs it (WARN or ERROR by its kind, with `ord`, `kind`, `file` when the
    /// detail names one, and the cycle's span) and counts it for the metrics.
    pub fn event(
        &self,
        at: DateTime<Utc>,
        ord: Option<&OrdName>,
        kind: EventKind,
        detail: &str,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO events (at, ord, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![time_text(at), ord.map(Col), kind.as_str(), detail],
        )
        .in_store(self)?;
        let file = file_named_in(detail);
        let ord_shown = ord.map_or("-", OrdName::as_str);
        match kind.level() {
            EventLevel::Error => {
                tracing::error!(ord = %ord_shown, kind = %kind, file, event = true, "{detail}")
            }
            EventLevel::Warn => {
                tracing::warn!(ord = %ord_shown, kind = %kind, file, event = true, "{detail}")
            }
        }
        if let Ok(mut written) = self.events_written.lock() {
            written.push((ord.map(OrdName::to_string), kind));
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
                filter.ord.as_ref().map(Col),
                filter.kind.map(EventKind::as_str),
                filter.since.map(time_text)
            ],
        )
    }

    /// How `ord`'s cycle went (errors joined by `; `, empty: none) and until when the daemon
    /// leaves it out after it (`None`: it does not).
    pub fn record_ord_cycle(
        &self,
        ord: &OrdName,
        at: DateTime<Utc>,
        errors: &[String],
        backoff_until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO ord_state (ord, last_cycle_at, last_cycle_errors, backoff_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ord) DO UPDATE SET last_cycle_at = excluded.last_cycle_at,
               last_cycle_errors = excluded.last_cycle_errors, backoff_until = excluded.backoff_until",
            params![Col(ord), Col(&at), errors.join("; "), backoff_until.as_ref().map(Col)],
        )
        .map(|_| ())
        .in_store(self)
    }

    /// The last cycle of `ord` as `record_ord_cycle` left it: when, its errors, its backoff.
    pub fn ord_cycle(&self, ord: &OrdName) -> Result<Option<OrdCycle>, StoreError> {
        self.row(
            "SELECT last_cycle_at, last_cycle_errors, backoff_until FROM ord_state WHERE ord = ?1 AND last_cycle_at IS NOT NULL",
            params![Col(ord)],
        )
    }

    /// How many files of `ord` were rejected (and kept in the quarantine).
    pub fn quarantined_count(&self, ord: &OrdName) -> Result<u64, StoreError> {
        one(&self.conn, REJECTED_COUNT, params![Col(ord)], |r| {
            r.get::<_, u64>(0)
        })
        .in_store(self)
    }
}
