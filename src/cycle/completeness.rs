//! Completeness: per ORD and day due, the registry's CPEs without an ORD file (the core's `completeness` decides; this reads the ledger, records, and raises `ord-file-missing`).

use std::collections::BTreeSet;

use super::{Cycle, CycleError, OrdSummary};
use egme_ord_core::completeness::{days_due, missing_change};
use egme_ord_core::config::OrdConfig;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::event::EventKind;

/// At most this many CPEs are named in one event (the rest are counted).
const NAMED: usize = 20;

impl Cycle<'_> {
    /// After a successful intake: for each day whose files are due (`expect_by`), the CPEs the
    /// registry gives the ORD that day without an ORD file; newly missing ones are an event, the
    /// ones whose file arrived are cleared. `intake_ok = false` only counts what is recorded.
    pub(super) fn completeness(
        &mut self,
        ord: &OrdConfig,
        sum: &mut OrdSummary,
        intake_ok: bool,
    ) -> Result<(), CycleError> {
        sum.ord_files_late = self.store.late_ord_files(&ord.name)?;
        if intake_ok {
            self.judge_completeness(ord)?;
        }
        sum.ord_files_missing = self
            .store
            .missing_ord_files(&ord.name)?
            .values()
            .map(BTreeSet::len)
            .sum();
        Ok(())
    }

    fn judge_completeness(&mut self, ord: &OrdConfig) -> Result<(), CycleError> {
        let state = self.store.days_state(&ord.name)?;
        let today = ord.schedule.today(self.now);
        let due = days_due(
            self.store.first_known_day(&ord.name)?,
            (today, ord.schedule.window_days),
            &state.closed,
            (ord.expect_by, ord.schedule.tz),
            self.now,
        );
        let reported = self.store.missing_ord_files(&ord.name)?;
        let none = BTreeSet::new();
        self.store
            .forget_missing_ord_files_except(&ord.name, &due)?;
        for day in &due {
            let arrived: BTreeSet<Cpe> = self
                .store
                .profile_cpes(&ord.name, *day)?
                .into_iter()
                .collect();
            let change = missing_change(
                self.registry.cpes_of(&ord.name, *day),
                &arrived,
                reported.get(day).unwrap_or(&none),
            );
            if change.new.is_empty() && change.cleared.is_empty() {
                continue;
            }
            self.store.update_missing_ord_files(
                &ord.name,
                *day,
                (&change.new, &change.cleared),
                self.now,
            )?;
            if !change.cleared.is_empty() {
                tracing::info!(ord = %ord.name, %day, cleared = change.cleared.len(), still_missing = change.missing.len(), "ORD files arrived for CPEs reported missing");
            }
            if !change.new.is_empty() {
                let mut named: Vec<String> =
                    change.new.iter().take(NAMED).map(Cpe::to_string).collect();
                if change.new.len() > NAMED {
                    named.push(format!("and {} more", change.new.len() - NAMED));
                }
                self.store.event(
                    self.now,
                    Some(&ord.name),
                    EventKind::OrdFileMissing,
                    &format!(
                        "day {day}: no ORD file by {} for {} of the {} CPE(s) the registry gives {}: {}; `egme-ord status` lists them, a file arriving clears them",
                        ord.expect_by,
                        change.new.len(),
                        change.missing.len() + arrived.len(),
                        ord.name,
                        named.join(" ")
                    ),
                )?;
            }
        }
        Ok(())
    }
}
