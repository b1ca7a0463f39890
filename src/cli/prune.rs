//! `egme-ord prune`: applies `[retention]` now — outbox packs, archive days, quarantine, reports and the netting inputs of long-closed days older than it allows (`--dry-run`: only says what).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use egme_ord::cycle::prune::{prune, PruneReport};

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Say what would be pruned; touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// As if it were this time (RFC 3339), as `once --now`: replays and tests.
    #[arg(long)]
    now: Option<String>,
}

fn print_text(r: &PruneReport) {
    let verb = if r.dry_run { "would prune" } else { "pruned" };
    for o in &r.ords {
        println!(
            "{}: {verb} {} outbox pack(s) ({} sent file(s)), {} archive day(s), {} quarantined and {} report file(s), the netting inputs of {} closed day(s): {} bytes",
            o.ord,
            o.outbox_packs.len(),
            o.sent_files_pruned,
            o.archive_days.len(),
            o.quarantined_files,
            o.report_files,
            o.ledger_days,
            o.bytes
        );
    }
    println!(
        "mobility: {verb} {} archive day(s); {} bytes in all (the ledger keeps every file's name, id, size and sha256)",
        r.mobility_archive_days.len(),
        r.bytes
    );
}

/// Exit 0: done (or, with `--dry-run`, listed); 2: could not run.
pub fn run(args: &PruneArgs) -> Result<u8> {
    let now = super::once::parse_now(args.now.as_deref())?;
    let mut ws = workspace::Workspace::open(&args.config)?;
    let report = prune(&ws.config, &mut ws.store, now, args.dry_run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(exit::OK)
}
