//! `Store::read_query`: an operator's read-only SQL on the ledger (`egme-ord sql`), through the store's own connection, so every page read is checked and nothing is written.

use rusqlite::types::ValueRef;

use super::{InStore, Store, StoreError};

/// The columns a query returned and its rows, each value as JSON (blobs as hex).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Store {
    /// Runs one statement that only reads (SELECT, a read-only PRAGMA). Anything that would write
    /// is refused before it runs; the connection is also put in `query_only` mode, so not even a
    /// function with side effects can change the ledger.
    pub fn read_query(&self, sql: &str) -> Result<QueryRows, StoreError> {
        self.conn
            .pragma_update(None, "query_only", true)
            .in_store(self)?;
        let result = self.run_read(sql);
        let reset = self.conn.pragma_update(None, "query_only", false);
        let rows = result?;
        reset.in_store(self)?;
        Ok(rows)
    }

    fn run_read(&self, sql: &str) -> Result<QueryRows, StoreError> {
        let mut stmt = self.conn.prepare(sql).in_store(self)?;
        // SQLite compiles the first statement only: anything after it is refused, not ignored.
        let first = stmt.expanded_sql().unwrap_or_default();
        let rest = sql.strip_prefix(first.as_str()).unwrap_or("");
        let more = !rest.trim().trim_start_matches(';').trim().is_empty();
        if !stmt.readonly() || more {
            return Err(StoreError::NotReadOnly {
                statement: sql.chars().take(80).collect(),
            });
        }
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let n = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query([]).in_store(self)?;
        while let Some(row) = cursor.next().in_store(self)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i).in_store(self)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(v) => v.into(),
                    ValueRef::Real(v) => v.into(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(b) => b
                        .iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<String>()
                        .into(),
                });
            }
            rows.push(values);
        }
        Ok(QueryRows { columns, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ord_name;

    #[test]
    fn reads_and_refuses_writes_before_they_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ledger.sqlite")).unwrap();
        store
            .event(
                chrono::Utc::now(),
                Some(&ord_name("eda")),
                egme_ord_core::event::EventKind::Late,
                "x",
            )
            .unwrap();
        let q = store
            .read_query("SELECT ord, kind FROM events ORDER BY id")
            .unwrap();
        assert_eq!(q.columns, ["ord", "kind"]);
        assert_eq!(
            q.rows,
            [vec![serde_json::json!("eda"), serde_json::json!("late")]]
        );
        for write in [
            "DELETE FROM events",
            "UPDATE events SET ord = 'x'",
            "PRAGMA user_version = 7",
            "CREATE TABLE t (x)",
        ] {
            let e = store.read_query(write).unwrap_err();
            assert!(matches!(e, StoreError::NotReadOnly { .. }), "{write}: {e}");
        }
        // Two statements: refused whole, the first not run alone.
        let e = store
            .read_query("SELECT 1; DELETE FROM events")
            .unwrap_err();
        assert!(matches!(e, StoreError::NotReadOnly { .. }), "{e}");
        assert!(store.read_query("SELECT 1;").is_ok());
        assert_eq!(
            store
                .read_query("SELECT count(*) FROM events")
                .unwrap()
                .rows[0][0],
            1
        );
        // The connection reads and writes again afterwards.
        store
            .event(
                chrono::Utc::now(),
                None,
                egme_ord_core::event::EventKind::Late,
                "y",
            )
            .unwrap();
    }
}
