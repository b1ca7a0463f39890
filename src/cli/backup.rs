//! `egme-ord backup` and `egme-ord restore`: an online copy of the ledger and its files, and putting it back (then `recover`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::Utc;
use clap::Args;
use egme_ord::backup;
use egme_ord::cycle::RecoverOptions;
use egme_ord::store::StoreLock;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The backup folder (another disk or a mounted share); created if missing, updated in place.
    dest: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Safe beside a running daemon: takes no lock, reads the ledger through SQLite's backup API.
pub fn run_backup(args: &BackupArgs) -> Result<u8> {
    let config = workspace::load_config(&args.config)?;
    if !config.store.is_file() {
        bail!(
            "store {}: no ledger to back up (nothing has run on this config yet)",
            config.store.display()
        );
    }
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    let crash_at = std::env::var("EGME_ORD_CRASH_AT").ok();
    let report = backup::backup(
        &ws.config,
        &ws.store,
        &args.dest,
        Utc::now(),
        crash_at.as_deref(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "backup of ledger {} in {}: {} file(s) copied ({} bytes), {} already there; last ids: {}",
            report.ledger_id,
            report.dest.display(),
            report.files_copied,
            report.bytes_copied,
            report.files_already_there,
            report
                .sequences
                .iter()
                .map(|(o, n)| format!("{o} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(exit::OK)
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// A folder written by `egme-ord backup`.
    from: PathBuf,
    /// As for `recover`: judge the archived files' days as if it were this time (RFC 3339).
    #[arg(long)]
    now: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Restore a backup taken with a config that serves other ORDs (its `backup.json` says which).
    #[arg(long)]
    other_deployment: bool,
}

/// Stops if a daemon runs (the lock); sets the current ledger aside, puts the backup back, adds
/// the missing work files, then recovers (whatever was sent after the backup is taken in again).
pub fn run_restore(args: &RestoreArgs) -> Result<u8> {
    let config = workspace::load_config(&args.config)?;
    let now = super::once::parse_now(args.now.as_deref())?;
    if let Some(parent) = config.store.parent() {
        egme_ord::fsutil::create_private_dir(parent)?;
    }
    let kept = {
        let _lock = StoreLock::acquire(&config.store)?;
        // Checked before the current ledger is set aside: a refused backup replaces nothing.
        let checked = backup::inspect(&config, &args.from, args.other_deployment)?;
        let kept = if config.store.exists() {
            Some(egme_ord::store::set_ledger_aside(
                &config.store,
                "replaced",
            )?)
        } else {
            None
        };
        let restored = backup::restore(&config, checked)?;
        if !args.json {
            println!(
                "restored ledger {} from {}: {} work file(s) added{}",
                restored.ledger_id,
                restored.from.display(),
                restored.files_added,
                if restored.files_differing.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} differ from the backup and were left as they are",
                        restored.files_differing.len()
                    )
                }
            );
        }
        for p in &restored.problems {
            eprintln!("restore: PROBLEM: {p}");
        }
        (kept, restored.problems.len())
    };
    let (kept, problems) = kept;
    let mut ws = workspace::Workspace::open_for_recovery(&args.config, false)?;
    // The clock guard's reference is the restore's time, not the backup's: a backup older than
    // max_clock_step would otherwise refuse every cycle after it.
    ws.store.set_last_cycle_now(now)?;
    let code = super::recover::recover_and_report(
        &mut ws,
        now,
        &RecoverOptions::default(),
        kept.as_deref(),
        args.json,
    )?;
    Ok(if problems > 0 {
        code.max(exit::INVALID)
    } else {
        code
    })
}
