//! Retention: what the ledger knows of each outbox pack, and what pruning marked.

use egme_ord_core::ord_name::OrdName;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;

use egme_ord_core::planner::DayState;

use super::sql::{day_text, time_text, Col, PackName, PackNameRef};
use super::{exec, InStore, Store, StoreError};

impl Store {
    /// What the ledger knows of each outbox pack of `ord` not yet pruned (one pass over its sent
    /// files), and the ledger's last transmission id.
    pub fn outbox_pack_facts(
        &self,
        ord: &OrdName,
    ) -> Result<Vec<egme_ord_core::retention::PackFacts>, StoreError> {
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
                st.query_map(params![Col(ord)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .in_store(self)?;
        let days: Vec<(Col<NaiveDate>, Col<DayState>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT day, state, closed_at FROM days WHERE ord = ?1")
            .and_then(|mut st| {
                st.query_map(params![Col(ord)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
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
        let mut packs: BTreeMap<String, egme_ord_core::retention::PackFacts> = BTreeMap::new();
        let mut with_open_day = BTreeSet::new();
        for (pack, day, last, count, delivered) in rows {
            let facts = packs.entry(pack.0).or_insert_with_key(|pack| {
                egme_ord_core::retention::PackFacts {
                    pack: pack.clone(),
                    last_id: 0,
                    all_closed_at: None,
                    all_delivered: true,
                }
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
    pub fn pruned_packs(&self, ord: &OrdName) -> Result<BTreeSet<String>, StoreError> {
        self.rows(
            "SELECT pack FROM sent_files WHERE ord = ?1 AND pack IS NOT NULL
             GROUP BY pack HAVING COUNT(pruned_at) = COUNT(*)",
            params![Col(ord)],
        )
        .map(|v: Vec<PackName>| v.into_iter().map(|p| p.0).collect())
    }

    /// Marks the files of outbox pack `pack` as pruned (before the pack is deleted): how many.
    pub fn mark_pack_pruned(
        &self,
        ord: &OrdName,
        pack: &str,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        exec(
            &self.conn,
            "UPDATE sent_files SET pruned_at = ?3 WHERE ord = ?1 AND pack = ?2 AND pruned_at IS NULL",
            params![Col(ord), PackNameRef(pack), time_text(at)],
        )
        .in_store(self)
    }

    /// Marks the received files of `ord` kept under `folder` as pruned (before it is deleted).
    pub fn mark_kept_under_pruned(
        &self,
        ord: &OrdName,
        folder: &Path,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let prefix = format!("{}/", folder.display());
        exec(
            &self.conn,
            "UPDATE received_files SET pruned_at = ?3
             WHERE ord = ?1 AND substr(stored_path, 1, length(?2)) = ?2 AND pruned_at IS NULL",
            params![Col(ord), prefix, time_text(at)],
        )
        .in_store(self)
    }

    /// Marks the received file of `ord` kept at `file` (a quarantined copy) as pruned.
    pub fn mark_kept_file_pruned(
        &self,
        ord: &OrdName,
        file: &Path,
        at: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        exec(
            &self.conn,
            "UPDATE received_files SET pruned_at = ?3 WHERE ord = ?1 AND stored_path = ?2 AND pruned_at IS NULL",
            params![Col(ord), file.display().to_string(), time_text(at)],
        )
        .in_store(self)
    }

    /// Forgets the netting inputs (ORD profiles, netting results, missing-file marks, mobility
    /// records wholly before `keep_from`) of the closed days of `ord` before `keep_from` that closed
    /// before `closed_before`: how many days.
    pub fn prune_details(
        &self,
        ord: &OrdName,
        keep_from: NaiveDate,
        closed_before: DateTime<Utc>,
        keep_mobility_from: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let days: Vec<NaiveDate> = self.rows(
            "SELECT day FROM days WHERE ord = ?1 AND state = 'closed' AND day < ?2 AND closed_at < ?3
               AND (EXISTS (SELECT 1 FROM ord_profiles p WHERE p.ord = days.ord AND p.day = days.day)
                 OR EXISTS (SELECT 1 FROM netting_results n WHERE n.ord = days.ord AND n.day = days.day))",
            params![Col(ord), day_text(keep_from), time_text(closed_before)],
        )?;
        for day in &days {
            for table in ["ord_profiles", "netting_results", "missing_ord_files"] {
                exec(
                    &self.conn,
                    &format!("DELETE FROM {table} WHERE ord = ?1 AND day = ?2"),
                    params![Col(ord), day_text(*day)],
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
                    params![Col(ord), before.timestamp()],
                )
                .in_store(self)?;
            }
        }
        Ok(days.len())
    }
}
