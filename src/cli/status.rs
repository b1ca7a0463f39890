//! `egme-ord status`: per ORD and day, the ORD version held, files sent, open/closed, anomalies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use egme_ord::store::{DayStatus, FileFailure, OrdCycle, ServerWeakness, Store};
use egme_ord_core::config::OrdConfig;
use egme_ord_core::cpe::Cpe;
use serde_json::json;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &StatusArgs) -> Result<u8> {
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    let now = Utc::now();
    let mut all = Vec::new();
    for ord in &ws.config.ords {
        let status = OrdStatus::read(&ws.store, ord, now)?;
        if args.json {
            all.push(status.json(ord));
        } else {
            status.print(ord);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(exit::OK)
}

/// What `status` shows of one ORD, as the ledger knows it.
struct OrdStatus {
    days: Vec<DayStatus>,
    last_send: Option<NaiveDate>,
    last_id: Option<u64>,
    unreadable: Vec<FileFailure>,
    cycle: Option<OrdCycle>,
    quarantined: u64,
    missing: BTreeMap<NaiveDate, BTreeSet<Cpe>>,
    late: u64,
    weakened: Option<ServerWeakness>,
    next_send: DateTime<Utc>,
    backoff: Option<DateTime<Utc>>,
}

impl OrdStatus {
    fn read(store: &Store, ord: &OrdConfig, now: DateTime<Utc>) -> Result<OrdStatus> {
        let last_send = store.days_state(&ord.name)?.last_send;
        let cycle = store.ord_cycle(&ord.name)?;
        let backoff = cycle
            .as_ref()
            .and_then(|c| c.backoff_until)
            .filter(|u| *u > now);
        Ok(OrdStatus {
            days: store.status(&ord.name)?,
            last_send,
            last_id: store.last_sent_id(&ord.name)?,
            unreadable: store.file_failures(&ord.name)?,
            cycle,
            quarantined: store.quarantined_count(&ord.name)?,
            missing: store.missing_ord_files(&ord.name)?,
            late: store.late_ord_files(&ord.name)?,
            weakened: store.server_weakness(&ord.name)?,
            next_send: ord.schedule.next_send(last_send, now),
            backoff,
        })
    }

    fn json(&self, ord: &OrdConfig) -> serde_json::Value {
        let missing: Vec<_> = self
            .missing
            .iter()
            .map(|(day, cpes)| json!({ "day": day, "cpes": cpes.iter().map(ToString::to_string).collect::<Vec<_>>() }))
            .collect();
        json!({ "ord": ord.name, "region": ord.region, "last_send": self.last_send, "next_send": self.next_send, "last_transmission_id": self.last_id, "last_cycle": self.cycle, "backing_off_until": self.backoff, "quarantined": self.quarantined, "ord_files_missing": missing, "expect_by": ord.expect_by.to_string(), "late_ord_files": self.late, "days": self.days, "unreadable_files": self.unreadable, "send_server_lacks": self.weakened })
    }

    fn print(&self, ord: &OrdConfig) {
        println!(
            "{} ({}): last daily send {}, last transmission id {}",
            ord.name,
            ord.region,
            self.last_send
                .map_or("never".to_string(), |d| d.to_string()),
            self.last_id.map_or("none".to_string(), |i| i.to_string())
        );
        let last_cycle = match &self.cycle {
            None => "none yet".to_string(),
            Some(c) if c.errors.is_empty() => format!("{} ok", c.at.format("%Y-%m-%d %H:%M:%SZ")),
            Some(c) => format!("{} FAILED: {}", c.at.format("%Y-%m-%d %H:%M:%SZ"), c.errors),
        };
        println!("  last cycle {last_cycle}");
        println!(
            "  next daily send {}; {}; {} file(s) in the quarantine",
            self.next_send.format("%Y-%m-%d %H:%M:%SZ"),
            self.backoff
                .map_or("not backing off".to_string(), |u| format!(
                    "BACKING OFF until {}",
                    u.format("%Y-%m-%d %H:%M:%SZ")
                )),
            self.quarantined
        );
        println!(
            "  {} ORD file(s) received for closed days (archived, not applied)",
            self.late
        );
        if let Some(w) = &self.weakened {
            println!(
                "  WEAKENED since {}: send folder: {}",
                w.since.format("%Y-%m-%d %H:%M:%SZ"),
                w.lacks.join("; ")
            );
        }
        for (day, cpes) in &self.missing {
            let listed: Vec<String> = cpes.iter().map(ToString::to_string).collect();
            println!(
                "  MISSING: no ORD file of {day} by {} for {} CPE(s): {}",
                ord.expect_by,
                cpes.len(),
                listed.join(" ")
            );
        }
        self.print_days();
    }

    /// The unreadable files, then the table of days.
    fn print_days(&self) {
        println!(
            "  {:<10}  {:<6}  {:>9}  {:>7}  {:>13}  {:>10}  {:>7}  {:>9}  {:>4}",
            "day",
            "state",
            "ORD CPEs",
            "missing",
            "ORD last id",
            "files sent",
            "pending",
            "anomalies",
            "late"
        );
        for f in &self.unreadable {
            let stuck = if f.failures >= egme_ord::cycle::STUCK_AFTER {
                "STUCK: "
            } else {
                ""
            };
            println!(
                "  {stuck}{} could not be read in {} cycle(s) in a row since {}: {}",
                f.name, f.failures, f.first_at, f.last_error
            );
        }
        for d in &self.days {
            println!(
                "  {:<10}  {:<6}  {:>9}  {:>7}  {:>13}  {:>10}  {:>7}  {:>9}  {:>4}",
                d.day.to_string(),
                d.state,
                d.cpes_with_ord_data,
                self.missing.get(&d.day).map_or(0, |m| m.len()),
                d.latest_ord_transmission
                    .map_or("-".to_string(), |v| v.to_string()),
                d.files_sent,
                d.files_pending,
                d.anomalies,
                d.late_ord_files
            );
        }
    }
}
