//! `egme-ord once`: one whole cycle on the configured folders, a printed summary, non-zero exit on failure.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use egme_ord::cycle::{CycleSummary, RunOptions};

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct OnceArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Run as if it were this time (RFC 3339), e.g. to replay a day; defaults to the clock.
    #[arg(long)]
    now: Option<String>,
    /// Run even though the time is more than `max_clock_step` after the last cycle's, or ahead of
    /// the real clock (the clock guard): after a long planned stop, or a replay.
    #[arg(long)]
    allow_clock_jump: bool,
    /// Print what the cycle would receive, send, close and report, and write nothing: no ledger
    /// change, no file in the work folder, nothing put or moved at the ORDs (it runs on a
    /// throwaway copy of the ledger, reading the folders as they are).
    #[arg(long)]
    dry_run: bool,
    /// Net every open CPE-day again, changed or not (the daily send normally nets only the
    /// CPE-days whose inputs changed, and everything after a registry or settings change).
    #[arg(long)]
    renet_all: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>> {
    match now {
        None => Ok(Utc::now()),
        Some(text) => Ok(DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--now: expected an RFC 3339 time like 2024-07-06T20:00:00+01:00, found {text:?}"))?
            .with_timezone(&Utc)),
    }
}

pub fn run(args: &OnceArgs) -> Result<u8> {
    let now = parse_now(args.now.as_deref())?;
    if args.dry_run {
        return dry_run(args, now);
    }
    let mut ws = workspace::Workspace::open(&args.config)?;
    let options = RunOptions {
        crash_at: std::env::var("EGME_ORD_CRASH_AT").ok(),
        allow_clock_jump: args.allow_clock_jump,
        renet_all: args.renet_all,
        pause_after_list: std::env::var_os("EGME_ORD_PAUSE_AFTER_LIST").map(PathBuf::from),
        ..RunOptions::default()
    };
    let summary = ws.cycle(now, Utc::now(), options);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(if summary.failed() {
        exit::INVALID
    } else {
        exit::OK
    })
}

pub fn print_summary(s: &CycleSummary) {
    if let Some(now) = s.now {
        println!("cycle at {}", now.to_rfc3339());
    }
    let m = &s.mobility;
    println!(
        "  mobility: {} file(s) read, {} rejected; records: {} applied, {} stale, {} late, {} quarantined",
        m.files, m.files_rejected, m.records_applied, m.records_stale, m.records_late, m.records_rejected
    );
    for e in &m.errors {
        println!("  mobility: ERROR: {e}");
    }
    for o in &s.ords {
        let received: Vec<String> = o
            .received
            .iter()
            .map(|(k, v)| format!("{v} {}", k.as_str()))
            .collect();
        println!(
            "  {}: received [{}]{}; send {}: {} day(s), {} file(s) written, {} delivered, {} closed, {} missed, {} anomalies",
            o.ord,
            if received.is_empty() { "none".to_string() } else { received.join(", ") },
            if o.waiting > 0 { format!(", {} waiting to be stable", o.waiting) } else { String::new() },
            if o.send.due() { "due" } else { "not due" },
            o.days_sent,
            o.files_written,
            o.files_delivered,
            o.days_closed,
            o.days_missed,
            o.anomalies
        );
        for e in &o.errors {
            println!("  {}: ERROR: {e}", o.ord);
        }
    }
}

/// `once --dry-run`: the cycle on a copy of the ledger and a throwaway work folder, with the ORD
/// folders read but never written.
fn dry_run(args: &OnceArgs, now: DateTime<Utc>) -> Result<u8> {
    let ws = workspace::Workspace::open_unlocked(&args.config)?;
    let scratch = std::env::temp_dir().join(format!(
        "egme-ord-dry-run-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    egme_ord::fsutil::create_private_dir(&scratch)?;
    let result =
        (|| -> Result<CycleSummary> {
            let copy = scratch.join("egme-ord.sqlite");
            egme_ord::fsutil::create_private_file(&copy)?;
            ws.store.backup_into(&copy)?;
            let mut config = ws.config.clone();
            config.store = copy.clone();
            config.work_dir = scratch.join("work");
            let mut store = egme_ord::store::Store::open(&copy)?;
            let options = RunOptions {
                allow_clock_jump: args.allow_clock_jump,
                renet_all: args.renet_all,
                dry_run_outbox_of: Some(ws.config.work_dir.clone()),
                ..RunOptions::default()
            };
            Ok(egme_ord::cycle::Cycle::new(
                &config,
                &ws.registry,
                &mut store,
                now,
                Utc::now(),
                options,
            )
            .run())
        })();
    // The scratch copy of a dry run; one left behind (a busy file) holds nothing of the ledger's.
    let _ = std::fs::remove_dir_all(&scratch);
    let summary = result?;
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["dry_run"] = serde_json::json!(true);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("dry run: what this cycle would do; nothing was written (ledger, work folder and ORD folders are as they were)");
        print_summary(&summary);
    }
    Ok(if summary.failed() {
        exit::INVALID
    } else {
        exit::OK
    })
}
