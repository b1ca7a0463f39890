//! The `meta` table: the ledger's identity (`ledger_id`), the clock guard's last `now`, and the other single values a ledger keeps.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::sql::{time_text, Col};
use super::{exec, one, InStore, Store, StoreError};

impl Store {
    /// Gives a ledger without one its random identity (once; kept for its lifetime).
    pub(super) fn ensure_ledger_id(&mut self) -> Result<(), StoreError> {
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
    pub(super) fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
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
    pub(super) fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map(|_| ())
        .in_store(self)
    }
}
