//! The daily send: netting per CPE-day, outbound files written atomically and recorded with their ids, delivery, reports.

use egme_ord_core::event::EventKind;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::deliver::Uploader;
use super::{io_err, Cycle, CycleError, OrdSummary};
use crate::fsutil::{sha256_hex, sha256_of, write_atomic};
use crate::pack::PackBuilder;
use crate::store::{OutboundWrite, StoreError};
use egme_ord_core::calendar::DayCalendar;
use egme_ord_core::config::OrdConfig;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::{OrdFileName, MAX_TRANSMISSION_ID};
use egme_ord_core::netting::{self, NettingInput};
use egme_ord_core::planner;
use egme_ord_core::profile::{DayProfile, Reading, ReadingStatus};
use egme_ord_core::registry::SupplierKey;
use egme_ord_core::report::{CpeDayReport, CSV_HEADER};
use egme_ord_core::sgl::{self, Criteria, DataStatus, Header, SglFile};
use egme_ord_core::sha256::Sha256;

fn today_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Identifies a file's content regardless of its ids and generation date.
pub(super) fn content_hash(day: NaiveDate, key: &SupplierKey, values: &[Decimal]) -> Sha256 {
    let mut s = format!("{day}|{}|{}|", key.code, key.tariff.code());
    for v in values {
        // Writing to a String cannot fail.
        let _ = write!(s, "{},", v.normalize());
    }
    sha256_of(s.as_bytes())
}

/// One CPE's mobility of a day, as read: per record its supplier and its (quarter-hour, kWh).
type CpeMobility = Vec<(SupplierKey, Vec<(usize, Decimal)>)>;

/// A CPE's mobility per supplier on each of the day's `n` quarter-hours, as the netting takes it
/// (a supplier with a record has its series, zeros included).
fn per_quarter_hour(n: usize, mobility: &CpeMobility) -> BTreeMap<SupplierKey, Vec<Decimal>> {
    let mut out: BTreeMap<SupplierKey, Vec<Decimal>> = BTreeMap::new();
    for (key, energy) in mobility {
        let values = out
            .entry(key.clone())
            .or_insert_with(|| vec![Decimal::ZERO; n]);
        for &(i, kwh) in energy {
            if let Some(v) = values.get_mut(i) {
                *v += kwh;
            }
        }
    }
    out
}

impl Cycle<'_> {
    /// `egme-ord resend`: the day's files written again under new ids, whether their content
    /// changed or not (an ORD lost them), then delivered. The fence runs first; the day must be
    /// open and within its D+window.
    pub fn resend(&mut self, ord_name: &str, day: NaiveDate) -> Result<OrdSummary, CycleError> {
        let config = self.config;
        let Some(ord) = config.ord(ord_name) else {
            return Err(CycleError::Refused(format!(
                "no ORD {ord_name} in the config"
            )));
        };
        let state = self.store.days_state(&ord.name)?;
        let today = ord.schedule.today(self.now);
        if !state.open.contains(&day)
            || !ord.schedule.accepts(day, self.now, &state.closed)
            || day >= today
        {
            return Err(CycleError::Refused(format!(
                "{ord_name}: day {day} cannot be sent again: it must be open, before today ({today}) and within its D+{} window{}",
                ord.schedule.window_days,
                if state.closed.contains(&day) { " (it is closed: `egme-ord reopen` it first)" } else { "" }
            )));
        }
        let mut sum = OrdSummary::new(ord.name.clone());
        if let Some(unchecked) = self.fence(ord)? {
            return Err(unchecked);
        }
        let left = self.ids_left(ord);
        self.note_ids_exhausted(ord, left)?;
        self.generation_floor = self.last_generation_date(ord)?;
        self.resending = true;
        let mut uploader = None;
        let sent = self.send_day(ord, day, today, None, &mut sum, &mut uploader);
        self.resending = false;
        let delivered = match uploader {
            Some(up) => self.finish_upload(ord, up, &mut sum),
            None => Ok(()),
        };
        self.note_ids_exhausted(ord, sent)?;
        delivered?;
        // The send folder as the fence found it plus what the resend put there, for the next
        // fence (otherwise the record of the cycle before vouches for nothing, and the next
        // fence compares every file again).
        self.keep_seen(ord)?;
        sum.days_sent = 1;
        self.store.event(
            self.now,
            Some(&ord.name),
            EventKind::Resend,
            &format!(
                "day {day}: {} file(s) sent again under new ids, {} delivered",
                sum.files_written, sum.files_delivered
            ),
        )?;
        Ok(sum)
    }

    /// Nets and writes the days due; each committed batch of files is handed to `uploader` (started
    /// on first use) so that delivery runs beside the netting. `failed_intake`: why this cycle's
    /// intake of the ORD (or of the mobility inbox) failed; the send then waits for a cycle whose
    /// intake succeeds, until its deadline.
    pub(super) fn send(
        &mut self,
        ord: &OrdConfig,
        sum: &mut OrdSummary,
        uploader: &mut Option<Uploader>,
        failed_intake: Option<&str>,
    ) -> Result<(), CycleError> {
        let sent = self.send_days_due(ord, sum, uploader, failed_intake);
        self.note_ids_exhausted(ord, sent)
    }

    /// [`Cycle::send`], less the event when the ORD's ids run out.
    fn send_days_due(
        &mut self,
        ord: &OrdConfig,
        sum: &mut OrdSummary,
        uploader: &mut Option<Uploader>,
        failed_intake: Option<&str>,
    ) -> Result<(), CycleError> {
        let state = self.store.days_state(&ord.name)?;
        let conditions = planner::SendConditions {
            intake_ok: failed_intake.is_none(),
            next_cycle: self.now
                + chrono::Duration::from_std(self.config.poll_interval)
                    .unwrap_or_else(|_| chrono::Duration::minutes(5)),
        };
        let plan = planner::plan(&ord.schedule, &state, self.now, conditions);
        sum.send = plan.send_state();
        if plan.held_for_intake {
            tracing::warn!(ord = %ord.name, reason = failed_intake.unwrap_or(""), "the daily send waits for a cycle whose intake succeeds");
        }
        if plan.without_intake {
            let message = format!(
                "the daily send of {} went out at its deadline without this cycle's intake ({}): the ORD's totals of the day may be missing, so anomalies were not checked and `cap` not applied against them; a correction goes out with the next send once the intake succeeds",
                today_text(plan.today),
                failed_intake.unwrap_or("")
            );
            tracing::error!(ord = %ord.name, "{message}");
            self.store.event(
                self.now,
                Some(&ord.name),
                EventKind::SendWithoutIntake,
                &message,
            )?;
        }
        if !plan.missed_days.is_empty() {
            self.store
                .close_days(&ord.name, &plan.missed_days, self.now)?;
            let list: Vec<String> = plan.missed_days.iter().map(ToString::to_string).collect();
            self.store.event(self.now, Some(&ord.name), EventKind::MissedDays, &format!(
                "closed without a send, their D+{} window passed while egme-ord did not run: {}", ord.schedule.window_days, list.join(", ")))?;
            sum.days_missed = plan.missed_days.len();
        }
        if !plan.send_due {
            return Ok(());
        }
        self.ids_left(ord)?;
        self.generation_floor = self.last_generation_date(ord)?;
        // No whole-ledger check here: every page the netting reads is checked against its
        // checksum as it is read (store::page_sums), so the cost follows what the send reads.
        // What the netting depends on besides the marked changes: when it differs from the last
        // whole send's, every open day is netted again.
        let inputs = self.netting_inputs(ord);
        let whole = self.options.renet_all
            || self.store.netting_inputs(&ord.name)?.as_deref() != Some(inputs.as_str());
        for day in &plan.send_days {
            if self.options.stopping() {
                // The send is not marked done: the next run redoes it (unchanged files are skipped).
                return Ok(());
            }
            self.send_changed(ord, (*day, plan.today), whole, sum, uploader)?;
        }
        self.store
            .finish_send(&ord.name, plan.today, &plan.close_days, self.now)?;
        self.store.set_netting_inputs(&ord.name, Some(&inputs))?;
        if let Some(oldest) = plan.send_days.first() {
            let cal = DayCalendar::new(ord.schedule.tz, *oldest, ord.dialect.time_convention);
            if let Some(start) = cal.start() {
                self.store.prune_dirty(&ord.name, start, *oldest)?;
            }
        }
        sum.days_sent = plan.send_days.len();
        sum.days_closed = plan.close_days.len();
        Ok(())
    }

    /// Records the ERROR event when `result` is the ORD's ids running out (before the send, or
    /// when the store refused an id past 9999999999 during it).
    fn note_ids_exhausted<T>(
        &mut self,
        ord: &OrdConfig,
        result: Result<T, CycleError>,
    ) -> Result<T, CycleError> {
        if let Err(CycleError::Store(e @ StoreError::IdsExhausted { .. })) = &result {
            let message = e.to_string();
            self.store
                .event(self.now, Some(&ord.name), EventKind::IdsExhausted, &message)?;
        }
        result
    }

    /// Refuses the send when the ORD's ids reached the last a 10-digit NTransm holds; warns (a
    /// WARN event) when fewer than `ids_left_warning` are left.
    fn ids_left(&mut self, ord: &OrdConfig) -> Result<(), CycleError> {
        let last = self
            .store
            .last_transmission_id(&ord.name)?
            .unwrap_or(ord.first_transmission_id.saturating_sub(1));
        let left = MAX_TRANSMISSION_ID.saturating_sub(last);
        if left == 0 {
            return Err(StoreError::IdsExhausted {
                ord: ord.name.clone(),
                last,
            }
            .into());
        }
        if left < ord.ids_left_warning {
            let message = format!(
                "{left} transmission id(s) left before {MAX_TRANSMISSION_ID}, the last a 10-digit NTransm holds (last used: {last}): agree with the ORD how its sequence goes on before they run out (docs/OPERATIONS.md, \"Transmission ids running out\")"
            );
            self.store.event(
                self.now,
                Some(&ord.name),
                EventKind::IdsRunningOut,
                &message,
            )?;
        }
        Ok(())
    }

    /// The generation date in the name of the ORD's last file written, if the ledger has it.
    fn last_generation_date(&self, ord: &OrdConfig) -> Result<Option<NaiveDate>, CycleError> {
        let Some(last) = self.store.last_transmission_id(&ord.name)? else {
            return Ok(None);
        };
        Ok(self
            .store
            .sent_name(&ord.name, last)?
            .and_then(|name| OrdFileName::parse_ours(&name, ord.region).ok())
            .map(|n| n.date))
    }

    /// What an ORD's netting depends on besides its inputs' change marks: the registry's files
    /// and the ORD's netting settings.
    fn netting_inputs(&self, ord: &OrdConfig) -> String {
        let settings = format!(
            "{}|{:?}|{}|{:?}|{:?}|{:?}|{}|{}",
            self.registry.digest(),
            ord.netting_policy,
            ord.tolerance_kwh,
            ord.tariff_files,
            ord.value_kind,
            ord.dialect,
            ord.egme_entity,
            ord.outbound_destination
        );
        sha256_hex(settings.as_bytes())
    }

    /// Nets and sends day `day`: its whole (`whole`, a day never netted incrementally, a resend)
    /// or only the CPEs whose inputs changed since it was last netted (the ledger's marks).
    fn send_changed(
        &mut self,
        ord: &OrdConfig,
        (day, today): (NaiveDate, NaiveDate),
        whole: bool,
        sum: &mut OrdSummary,
        uploader: &mut Option<Uploader>,
    ) -> Result<(), CycleError> {
        let mark = self.store.dirty_max_id(&ord.name)?;
        let seen = self.store.day_dirty_seen(&ord.name, day)?;
        let only = match seen {
            Some(after) if !whole && !self.resending => {
                let cal = DayCalendar::new(ord.schedule.tz, day, ord.dialect.time_convention);
                let (Some(start), Some(end)) = (cal.start(), cal.end()) else {
                    return Ok(());
                };
                Some(self.store.dirty_cpes(&ord.name, day, (start, end), after)?)
            }
            _ => None,
        };
        if only.as_ref().is_some_and(BTreeSet::is_empty) {
            return Ok(());
        }
        self.send_day(ord, day, today, only.as_ref(), sum, uploader)?;
        self.store.set_day_dirty_seen(&ord.name, day, mark)?;
        Ok(())
    }

    fn send_day(
        &mut self,
        ord: &OrdConfig,
        day: NaiveDate,
        today: NaiveDate,
        only: Option<&BTreeSet<Cpe>>,
        sum: &mut OrdSummary,
        uploader: &mut Option<Uploader>,
    ) -> Result<(), CycleError> {
        let cal = DayCalendar::new(ord.schedule.tz, day, ord.dialect.time_convention);
        let (Some(start), Some(end)) = (cal.start(), cal.end()) else {
            return Ok(());
        };
        let written_before = sum.files_written;
        let mut by_cpe = self.mobility_by_cpe(ord, &cal, (start, end), only)?;
        let cpes: BTreeSet<Cpe> = match only {
            Some(changed) => changed.clone(),
            None => {
                let mut cpes: BTreeSet<Cpe> = by_cpe.keys().copied().collect();
                cpes.extend(self.store.profile_cpes(&ord.name, day)?);
                cpes.extend(self.store.sent_cpes(&ord.name, day)?);
                cpes
            }
        };
        // One ledger batch per BATCH CPEs: their files go into one outbox pack, written and synced
        // before the batch commits.
        sum.cpe_days_netted += cpes.len();
        let cpes: Vec<Cpe> = cpes.into_iter().collect();
        let n = cal.len();
        let mut rows = Vec::with_capacity(cpes.len());
        for chunk in cpes.chunks(super::intake::BATCH) {
            let committed = self.store.last_transmission_id(&ord.name)?;
            // Counted only once the batch commits (a rolled-back batch wrote nothing).
            let counted = (sum.files_written, sum.anomalies, sum.anomalies_new);
            let batch = self.in_batch(|me| {
                let mut rows = Vec::with_capacity(chunk.len());
                let mut pack = PackBuilder::new(me.now);
                for &cpe in chunk {
                    // Dense (a value per quarter-hour and supplier) one CPE at a time: for the
                    // whole day at once that was 37 MB at N = 10,000.
                    let mobility = by_cpe
                        .remove(&cpe)
                        .map(|m| per_quarter_hour(n, &m))
                        .unwrap_or_default();
                    let row =
                        me.net_cpe(ord, &cal, (day, today), cpe, &mobility, &mut pack, sum)?;
                    rows.push(row);
                }
                // The ids this batch uses are reserved in the high-water mark before its pack is
                // written (a pack the mark does not cover is evidence of a lost ledger).
                let reserved = me.store.last_transmission_id(&ord.name)?;
                if reserved != committed {
                    let before = ord.first_transmission_id.saturating_sub(1);
                    me.mark(ord, committed.unwrap_or(before), reserved.unwrap_or(before))?;
                }
                let outbox = me.outbox_dir(&ord.name);
                me.write_pack(&outbox, pack, "after-outbox-write")?;
                Ok(rows)
            });
            let chunk_rows = match batch {
                Ok(rows) => rows,
                Err(e) => {
                    (sum.files_written, sum.anomalies, sum.anomalies_new) = counted;
                    return Err(e);
                }
            };
            let now_committed = self.store.last_transmission_id(&ord.name)?;
            if now_committed != committed {
                let last = now_committed.unwrap_or(0);
                self.mark(ord, last, last)?;
            }
            rows.extend(chunk_rows);
            self.hand_over(ord, uploader, sum)?;
        }
        // A send that changed nothing of the day writes no report (the last one stands); a
        // whole netting always records one.
        let changed = sum.files_written > written_before;
        if changed || only.is_none() {
            self.write_reports(ord, day, &rows)?;
        }
        if changed && self.config.reports.day_folders {
            self.write_day_folder(ord, day);
        }
        Ok(())
    }

    /// The day's report folder (`work/reports/<ord>/<day>/`: the page and the tidy CSVs), after a
    /// send that changed the day. It is derived from the ledger and the outbox: a failure to
    /// write it is logged, the send stands.
    fn write_day_folder(&self, ord: &OrdConfig, day: NaiveDate) {
        let top = self.config.work().reports();
        let dir = top.join(&ord.name).join(day.to_string());
        let group = self.config.reports.group.as_deref();
        let (config, registry, store) = (self.config, self.registry, &*self.store);
        let written = super::write_day_report(config, registry, store, &[ord], day, &dir, self.now)
            .and_then(|_| super::share_path(&top, &dir, group));
        if let Err(e) = written {
            tracing::warn!(ord = %ord.name, %day, error = %e, "the day's report folder could not be written (the send stands): `egme-ord report` writes it on demand");
        }
    }

    /// The day's mobility of `ord` (records with energy in `[start, end)`), per CPE: each record's
    /// supplier and its energy by quarter-hour of the day (sparse: sessions last a few
    /// quarter-hours); a record the registry cannot map is an event.
    fn mobility_by_cpe(
        &mut self,
        ord: &OrdConfig,
        cal: &DayCalendar,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        only: Option<&BTreeSet<Cpe>>,
    ) -> Result<BTreeMap<Cpe, CpeMobility>, CycleError> {
        let mut by_cpe: BTreeMap<Cpe, CpeMobility> = BTreeMap::new();
        let day = cal.day;
        let records = match only {
            Some(cpes) => self
                .store
                .mobility_of_cpes_between(&ord.name, cpes, start, end)?,
            None => self.store.mobility_between(&ord.name, start, end)?,
        };
        for r in records {
            let mapped = match self.registry.ord_of(&r.cpe, day) {
                Some(o) if ord.name == o => self.registry.supplier(&r.cpe, &r.ceme, ord.region, day),
                _ => Err(format!(
                    "CPE {} is not registered for {} on {day}: its mobility of that day is not netted",
                    r.cpe, ord.name
                )),
            };
            let key = match mapped {
                Ok(k) => k,
                Err(reason) => {
                    self.store.event(
                        self.now,
                        Some(&ord.name),
                        EventKind::UnmappedMobility,
                        &format!("{}: {reason}", r.key),
                    )?;
                    continue;
                }
            };
            let energy = r
                .energy
                .iter()
                .filter_map(|q| cal.index_of_start(q.start).map(|i| (i, q.kwh)))
                .collect();
            by_cpe.entry(r.cpe).or_default().push((key, energy));
        }
        Ok(by_cpe)
    }

    /// Nets one CPE-day (`days`: the day and today), adds the files whose content changed to
    /// `pack`, and records the result.
    #[allow(clippy::too_many_arguments)]
    fn net_cpe(
        &mut self,
        ord: &OrdConfig,
        cal: &DayCalendar,
        (day, today): (NaiveDate, NaiveDate),
        cpe: Cpe,
        mobility: &BTreeMap<SupplierKey, Vec<Decimal>>,
        pack: &mut PackBuilder,
        sum: &mut OrdSummary,
    ) -> Result<ReportRow, CycleError> {
        let n = cal.len();
        let (version, profile) = match self.store.profile_in_force(&ord.name, &cpe, day)? {
            Some((v, p)) => (Some(v.transmission_id), Some(p)),
            None => (None, None),
        };
        // The last content sent per supplier; its keys are the suppliers sent a file before.
        let hashes = self.store.last_content_hashes(&ord.name, &cpe, day)?;
        let previously_sent: BTreeSet<SupplierKey> = hashes.keys().cloned().collect();
        let outcome = netting::net(&NettingInput {
            quarter_hours: n,
            ord_total: profile.as_ref(),
            mobility,
            previously_sent: &previously_sent,
            policy: ord.netting_policy,
            tolerance_kwh: ord.tolerance_kwh,
            unit_kwh: ord.unit_kwh(),
            tariff_files: ord.tariff_files,
        });
        for (key, values) in &outcome.files {
            let hash = content_hash(day, key, values);
            if hashes.get(key) == Some(&hash) && !self.resending {
                continue;
            }
            self.write_outbound(ord, cpe, (day, today), key, values, hash, pack)?;
            sum.files_written += 1;
        }
        sum.anomalies += outcome.anomalies.len();
        let row = ReportRow::new(&CpeDayReport::new(cal, cpe, version, &outcome));
        let changed = self.store.put_netting_result(
            &ord.name,
            day,
            &cpe,
            self.now,
            outcome.anomalies.len(),
            &row.json,
        )?;
        if changed {
            sum.anomalies_new += outcome.anomalies.len();
        }
        Ok(row)
    }

    /// Builds one outbound file, adds it to `pack` and records it under the next transmission id.
    #[allow(clippy::too_many_arguments)]
    fn write_outbound(
        &mut self,
        ord: &OrdConfig,
        cpe: Cpe,
        (day, today): (NaiveDate, NaiveDate),
        key: &SupplierKey,
        values: &[Decimal],
        hash: Sha256,
        pack: &mut PackBuilder,
    ) -> Result<(), CycleError> {
        let now = self.now;
        // Never before the last file's generation date (the clock may have gone back a little).
        let today = self
            .generation_floor
            .map_or(today, |floor| today.max(floor));
        let result = self.store.record_outbound(
            &ord.name,
            ord.first_transmission_id,
            |id, previous| -> Result<OutboundWrite, CycleError> {
                let name = OrdFileName::outbound(ord.region, &key.code, key.tariff, cpe, today, id)
                    .to_string();
                let file = SglFile {
                    header: Header {
                        origin: ord.egme_entity.clone(),
                        destination: ord.outbound_destination.clone(),
                        transmission_id: id,
                        previous_transmission_id: previous,
                        delivery_points: 1,
                        selection_start: day,
                        selection_end: day,
                    },
                    criteria: Criteria {
                        status: DataStatus::Definitive,
                        interpolated: false,
                        value_kind: ord.value_kind,
                    },
                    days: vec![DayProfile {
                        day,
                        readings: values
                            .iter()
                            .map(|v| Reading {
                                kwh: *v,
                                status: ReadingStatus::Real,
                            })
                            .collect(),
                    }],
                };
                let bytes = sgl::write(&file, ord.region, &ord.dialect).map_err(|source| {
                    CycleError::Write {
                        name: name.clone(),
                        source,
                    }
                })?;
                let slice = pack
                    .add(id, &name, &bytes)
                    .map_err(|source| CycleError::Io {
                        path: PathBuf::from(&name),
                        source,
                    })?;
                Ok(OutboundWrite {
                    name,
                    sha256: sha256_of(&bytes),
                    cpe,
                    supplier: key.code.clone(),
                    tariff: key.tariff,
                    day,
                    content_hash: hash,
                    at: now,
                    pack: Some(slice),
                })
            },
        )?;
        result.map(|_| ())
    }

    fn write_reports(
        &self,
        ord: &OrdConfig,
        day: NaiveDate,
        rows: &[ReportRow],
    ) -> Result<(), CycleError> {
        let dir = self.config.work().report_day(&ord.name, day);
        let stamp = self.now.format("%Y%m%dT%H%M%SZ");
        let json_path = dir.join(format!("netting-{stamp}.json"));
        // Assembled from the rows' JSON text: the day's report is never held as one JSON tree.
        // The CPEs the registry gives the ORD that day without an ORD file (completeness).
        let arrived: BTreeSet<Cpe> = self
            .store
            .profile_cpes(&ord.name, day)?
            .into_iter()
            .collect();
        let registered: Vec<Cpe> = self.registry.cpes_of(&ord.name, day).collect();
        let missing: Vec<String> = registered
            .iter()
            .filter(|c| !arrived.contains(c))
            .map(Cpe::to_string)
            .collect();
        let head = json!({ "ord": ord.name, "day": day, "computed_at": self.now, "registered_cpes": registered.len(), "ord_files_missing": missing }).to_string();
        let mut doc =
            String::with_capacity(rows.iter().map(|r| r.json.len() + 2).sum::<usize>() + 64);
        doc.push_str(head.strip_suffix('}').unwrap_or(&head));
        doc.push_str(",\"cpes\":[\n");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                doc.push_str(",\n");
            }
            doc.push_str(&r.json);
        }
        doc.push_str("\n]}\n");
        write_atomic(&json_path, doc.as_bytes()).map_err(io_err(&json_path))?;
        let mut csv = String::from(CSV_HEADER);
        for r in rows {
            csv.push_str(&r.csv);
        }
        let csv_path = dir.join(format!("netting-{stamp}.csv"));
        write_atomic(&csv_path, csv.as_bytes()).map_err(io_err(&csv_path))
    }
}

/// One CPE-day of the netting report, as JSON text and as a CSV line.
struct ReportRow {
    json: String,
    csv: String,
}

impl ReportRow {
    fn new(r: &CpeDayReport) -> ReportRow {
        ReportRow {
            json: serde_json::to_string(r).unwrap_or_default(),
            csv: r.csv_line(),
        }
    }
}
