//! `egme-ord recover`: rebuilds what the ledger must know from the outbox packs, the ORDs' folders and the archive.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::Args;
use egme_ord::cycle::{Cycle, RecoverOptions, RecoverReport, RunOptions};
use egme_ord_core::filename::MAX_TRANSMISSION_ID;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Only this ORD (default: every ORD of the config).
    #[arg(long)]
    ord: Option<String>,
    /// The last transmission id the ORD reports having received from us, when the local evidence
    /// (outbox) is gone too: the sequence goes on after it. Needs --ord.
    #[arg(long, requires = "ord", value_parser = clap::value_parser!(u64).range(0..=MAX_TRANSMISSION_ID))]
    last_sent_id: Option<u64>,
    /// Set the ledger aside (kept as `<store>.replaced-<time>`) and rebuild it from the witnesses
    /// alone: for a ledger that opens but holds wrong values (see docs/OPERATIONS.md).
    #[arg(long, conflicts_with = "ord")]
    fresh: bool,
    /// Judge the archived files' days as if it were this time (RFC 3339), as `once --now` does:
    /// replays and tests; defaults to the clock.
    #[arg(long)]
    now: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0: recovered; 1: recovered, with problems the operator must look at; 2: could not run.
pub fn run(args: &RecoverArgs) -> Result<u8> {
    let mut ws = workspace::Workspace::open_for_recovery(&args.config, args.fresh)?;
    if let Some(ord) = &args.ord {
        workspace::check_ord(&ws.config, &args.config, ord)?;
    }
    let now = super::once::parse_now(args.now.as_deref())?;
    let kept = ws.damaged_kept_at.clone();
    recover_and_report(
        &mut ws,
        now,
        &RecoverOptions {
            ord: args.ord.clone(),
            last_sent_id: args.last_sent_id,
        },
        kept.as_deref(),
        args.json,
    )
}

/// Runs `recover` on an opened workspace and prints its report (`kept`: where the previous ledger
/// was set aside, if it was); the exit code: 1 when problems are left to look at.
pub fn recover_and_report(
    ws: &mut workspace::Workspace,
    now: DateTime<Utc>,
    options: &RecoverOptions,
    kept: Option<&Path>,
    json: bool,
) -> Result<u8> {
    let run = RunOptions {
        crash_at: std::env::var("EGME_ORD_CRASH_AT").ok(),
        ..RunOptions::default()
    };
    let report = Cycle::new(
        &ws.config,
        &ws.registry,
        &mut ws.store,
        now,
        Utc::now(),
        run,
    )
    .recover(options)?;
    let kept = kept.map(|p| p.display().to_string());
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["previous_ledger_kept_at"] = serde_json::json!(kept);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&report, kept.as_deref());
    }
    Ok(if report.ords.iter().any(|o| !o.problems.is_empty()) {
        exit::INVALID
    } else {
        exit::OK
    })
}

fn print_report(r: &RecoverReport, damaged: Option<&str>) {
    if let Some(path) = damaged {
        println!("the previous ledger was kept at {path}");
    }
    println!("ledger {}", r.ledger_id);
    for o in &r.ords {
        let seq = |s: Option<u64>| s.map_or("none".to_string(), |v| v.to_string());
        println!(
            "  {}: last transmission id {} -> {}; sent files recorded again: {} from the outbox, {} from the ORD's folders; {} marked delivered; {} received file(s) from the archive",
            o.ord,
            seq(o.sequence_before),
            seq(o.sequence_after),
            o.sent_from_outbox,
            o.sent_from_ord,
            o.marked_delivered,
            o.received_from_archive
        );
        if !o.ids_without_a_copy.is_empty() {
            println!(
                "  {}: ids with no copy anywhere (the ORD may report them missing): {}",
                o.ord,
                o.ids_without_a_copy.join(", ")
            );
        }
        for p in &o.problems {
            println!("  {}: PROBLEM: {p}", o.ord);
        }
    }
    println!(
        "  mobility: {} file(s) recorded again from the archive",
        r.mobility_from_archive
    );
}
