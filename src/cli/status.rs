//! `egme-ord status`: per ORD and day, the ORD version held, files sent, open/closed, anomalies.

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
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
    let mut all = Vec::new();
    for ord in &ws.config.ords {
        let days = ws.store.status(&ord.name)?;
        let state = ws.store.days_state(&ord.name)?;
        let last_id = ws.store.last_sent_id(&ord.name)?;
        let unreadable = ws.store.file_failures(&ord.name)?;
        let cycle = ws.store.ord_cycle(&ord.name)?;
        let quarantined = ws.store.quarantined_count(&ord.name)?;
        let missing = ws.store.missing_ord_files(&ord.name)?;
        let late = ws.store.late_ord_files(&ord.name)?;
        let weakened = ws.store.server_weakness(&ord.name)?;
        let next_send = next_send(ord, state.last_send, Utc::now());
        let backoff = cycle
            .as_ref()
            .and_then(|c| c.backoff_until)
            .filter(|u| *u > Utc::now());
        if args.json {
            let missing: Vec<_> = missing
                .iter()
                .map(|(day, cpes)| json!({ "day": day, "cpes": cpes.iter().map(ToString::to_string).collect::<Vec<_>>() }))
                .collect();
            all.push(json!({ "ord": ord.name, "region": ord.region, "last_send": state.last_send, "next_send": next_send, "last_transmission_id": last_id, "last_cycle": cycle, "backing_off_until": backoff, "quarantined": quarantined, "ord_files_missing": missing, "expect_by": ord.expect_by.to_string(), "late_ord_files": late, "days": days, "unreadable_files": unreadable, "send_server_lacks": weakened }));
            continue;
        }
        println!(
            "{} ({}): last daily send {}, last transmission id {}",
            ord.name,
            ord.region,
            state
                .last_send
                .map_or("never".to_string(), |d| d.to_string()),
            last_id.map_or("none".to_string(), |i| i.to_string())
        );
        let last_cycle = match &cycle {
            None => "none yet".to_string(),
            Some(c) if c.errors.is_empty() => format!("{} ok", c.at.format("%Y-%m-%d %H:%M:%SZ")),
            Some(c) => format!("{} FAILED: {}", c.at.format("%Y-%m-%d %H:%M:%SZ"), c.errors),
        };
        println!("  last cycle {last_cycle}");
        println!(
            "  next daily send {}; {}; {quarantined} file(s) in the quarantine",
            next_send.format("%Y-%m-%d %H:%M:%SZ"),
            backoff.map_or("not backing off".to_string(), |u| format!(
                "BACKING OFF until {}",
                u.format("%Y-%m-%d %H:%M:%SZ")
            ))
        );
        println!("  {late} ORD file(s) received for closed days (archived, not applied)");
        if let Some(w) = &weakened {
            println!(
                "  WEAKENED since {}: send folder: {}",
                w.since.format("%Y-%m-%d %H:%M:%SZ"),
                w.lacks.join("; ")
            );
        }
        for (day, cpes) in &missing {
            let listed: Vec<String> = cpes.iter().map(ToString::to_string).collect();
            println!(
                "  MISSING: no ORD file of {day} by {} for {} CPE(s): {}",
                ord.expect_by,
                cpes.len(),
                listed.join(" ")
            );
        }
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
        for f in &unreadable {
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
        for d in days {
            println!(
                "  {:<10}  {:<6}  {:>9}  {:>7}  {:>13}  {:>10}  {:>7}  {:>9}  {:>4}",
                d.day.to_string(),
                d.state,
                d.cpes_with_ord_data,
                missing.get(&d.day).map_or(0, |m| m.len()),
                d.latest_ord_transmission
                    .map_or("-".to_string(), |v| v.to_string()),
                d.files_sent,
                d.files_pending,
                d.anomalies,
                d.late_ord_files
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(exit::OK)
}

/// When the next daily send is due: today's `send_at` (local) unless today's went out, then
/// tomorrow's; a time already past means the next cycle sends.
fn next_send(
    ord: &egme_ord::config::OrdConfig,
    last_send: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let today = now.with_timezone(&ord.schedule.tz).date_naive();
    let day = if last_send == Some(today) {
        today.succ_opt().unwrap_or(today)
    } else {
        today
    };
    day.and_time(ord.schedule.send_at)
        .and_local_timezone(ord.schedule.tz)
        .earliest()
        .map_or(now, |t| t.with_timezone(&Utc))
}
