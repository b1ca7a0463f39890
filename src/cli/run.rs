//! `egme-ord run`: the daemon. Cycles on a dedicated blocking thread (ssh2 is blocking); tokio only waits for signals.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Args;
use egme_ord::cycle::{CycleSummary, RunOptions};
use egme_ord::daemon::{self, SystemClock};
use egme_ord::metrics::{self, Metrics};

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Start the business clock at this time (RFC 3339) and let it run: replays and tests.
    #[arg(long)]
    now: Option<String>,
    /// Let the first cycle run even though its time is more than `max_clock_step` after the last
    /// cycle's (after a planned stop longer than that); later cycles are guarded again.
    #[arg(long)]
    allow_clock_jump: bool,
}

pub fn run(args: &RunArgs) -> Result<u8> {
    let start = args
        .now
        .as_deref()
        .map(|t| super::once::parse_now(Some(t)))
        .transpose()?;
    let mut ws = workspace::Workspace::open(&args.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = ws.config.metrics_listen {
        metrics::serve(&addr, metrics.clone(), stop.clone())
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        tracing::info!(address = %addr, "metrics listening");
    }
    tracing::info!(config = %args.config.display(), ords = ws.config.ords.len(), poll_interval_s = ws.config.poll_interval.as_secs(), "egme-ord started");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let worker_stop = stop.clone();
    let stop_timeout = ws.config.stop_timeout;
    let store_path = ws.config.store.clone();
    let ords: Vec<String> = ws.config.ords.iter().map(|o| o.name.clone()).collect();
    let unfinished = Arc::new(AtomicBool::new(false));
    let unfinished_in_report = unfinished.clone();
    runtime.block_on(async move {
        let signal_stop = stop.clone();
        tokio::spawn(async move {
            let terminate = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = terminate => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!(stop_timeout_s = stop_timeout.as_secs(), "stop requested: finishing the file in flight, then stopping");
            signal_stop.store(true, Ordering::SeqCst);
            // A transfer that hangs (a frozen server) is abandoned after stop_timeout: safe, as a
            // crash is (uploads are renamed into place only whole; the ledger batch rolls back).
            std::thread::spawn(move || {
                std::thread::sleep(stop_timeout);
                let pending: Vec<String> = egme_ord::store::Store::open(&store_path)
                    .map(|store| {
                        ords.iter()
                            .filter_map(|o| store.pending_count(o).ok().map(|n| format!("{o}: {n}")))
                            .collect()
                    })
                    .unwrap_or_default();
                tracing::error!(stop_timeout_s = stop_timeout.as_secs(), not_delivered = %pending.join(", "), "stop_timeout reached: the cycle in flight is abandoned; the files not delivered go out, in order, with the next cycle");
                std::process::exit(i32::from(exit::INVALID));
            });
        });
        let options = RunOptions {
            crash_at: std::env::var("EGME_ORD_CRASH_AT").ok(),
            allow_clock_jump: args.allow_clock_jump,
            ..RunOptions::default()
        };
        tokio::task::spawn_blocking(move || {
            let clock: Box<dyn daemon::Clock> = match start {
                Some(t) => Box::new(daemon::OffsetClock::starting_at(t)),
                None => Box::new(SystemClock),
            };
            daemon::run(
                &ws.config,
                &ws.registry,
                &mut ws.store,
                clock.as_ref(),
                &worker_stop,
                options,
                |summary, took| {
                    if summary.ords.iter().any(|o| o.files_pending > 0) {
                        unfinished_in_report.store(true, Ordering::SeqCst);
                    } else {
                        unfinished_in_report.store(false, Ordering::SeqCst);
                    }
                    log_summary(summary, took);
                    metrics.record(summary, took, Utc::now());
                },
            );
        })
        .await
    })?;
    if unfinished.load(Ordering::SeqCst) {
        tracing::warn!("egme-ord stopped with files not delivered: the next start delivers them");
        return Ok(exit::INVALID);
    }
    tracing::info!("egme-ord stopped");
    Ok(exit::OK)
}

/// One event per ORD and cycle, with counts and duration.
pub fn log_summary(s: &CycleSummary, took: Duration) {
    let m = &s.mobility;
    tracing::info!(
        duration_ms = took.as_millis() as u64,
        mobility_files = m.files,
        mobility_applied = m.records_applied,
        mobility_rejected = m.records_rejected,
        mobility_late = m.records_late,
        "cycle done"
    );
    for o in &s.ords {
        let received: usize = o.received.values().sum();
        tracing::info!(
            ord = %o.ord,
            received,
            rejected = o
                .received
                .get(&egme_ord::store::ReceivedStatus::Rejected)
                .copied()
                .unwrap_or(0),
            waiting = o.waiting,
            send_due = o.send_due,
            files_written = o.files_written,
            files_delivered = o.files_delivered,
            files_pending = o.files_pending,
            files_unreadable = o.files_unreadable,
            files_stuck = o.files_stuck.len(),
            send_held = o.send_held,
            anomalies = o.anomalies,
            backing_off = o.skipped_for_backoff,
            errors = o.errors.len(),
            "cycle summary"
        );
    }
}
