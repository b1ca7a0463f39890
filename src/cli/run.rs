//! `egme-ord run`: the daemon. Cycles on a dedicated blocking thread (ssh2 is blocking); tokio only waits for signals.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::Args;
use egme_ord::cycle::{CycleSummary, Heartbeat, RunOptions};
use egme_ord::daemon::{self, SystemClock};
use egme_ord::metrics::{self, Metrics};
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::planner::SendState;

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
    let reload = Arc::new(AtomicBool::new(false));
    let ords: Vec<OrdName> = ws.config.ords.iter().map(|o| o.name.clone()).collect();
    let metrics = Arc::new(metrics_at_start(&ws, &ords)?);
    let nofile = raise_nofile();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The metrics listener is bound before READY=1: a unit that is "started" serves.
    let listener = ws
        .config
        .metrics_listen
        .map(|addr| bind_metrics(&runtime, addr))
        .transpose()?;
    tracing::info!(config = %args.config.display(), ords = ws.config.ords.len(), poll_interval_s = ws.config.poll_interval.as_secs(), "egme-ord started");
    let watchdog = sd_notify::watchdog_enabled();
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("started: first cycle"),
    ]);
    let worker_stop = stop.clone();
    let stop_timeout = ws.config.stop_timeout;
    let store_path = ws.config.store.clone();
    let unfinished = Arc::new(AtomicBool::new(false));
    let unfinished_in_report = unfinished.clone();
    let worker_reload = reload.clone();
    runtime.block_on(async move {
        if let Some(listener) = listener {
            let limits = metrics::ServeLimits::for_descriptors(nofile);
            tokio::spawn(metrics::serve(listener, metrics.clone(), limits));
        }
        tokio::spawn(signals(
            stop.clone(),
            reload.clone(),
            stop_timeout,
            store_path,
            ords,
        ));
        let heartbeat =
            watchdog.map(|_| Heartbeat(Arc::new(|| notify(&[sd_notify::NotifyState::Watchdog]))));
        let options = RunOptions {
            crash_at: std::env::var("EGME_ORD_CRASH_AT").ok(),
            allow_clock_jump: args.allow_clock_jump,
            heartbeat,
            reload_registry: Some(worker_reload),
            ..RunOptions::default()
        };
        let cycle_metrics = metrics.clone();
        tokio::task::spawn_blocking(move || {
            let clock: Box<dyn daemon::Clock> = match start {
                Some(t) => Box::new(daemon::OffsetClock::starting_at(t)),
                None => Box::new(SystemClock),
            };
            // Every step of a cycle says it is alive: to /healthz, and to systemd's watchdog.
            let on_step = cycle_metrics.clone();
            let watchdog = options.heartbeat.clone();
            let options = RunOptions {
                heartbeat: Some(Heartbeat(Arc::new(move || {
                    on_step.cycle_progressed();
                    if let Some(Heartbeat(beat)) = &watchdog {
                        beat();
                    }
                }))),
                ..options
            };
            daemon::run(
                &ws.config,
                &ws.registry,
                &mut ws.store,
                clock.as_ref(),
                &worker_stop,
                options,
                |summary, took| {
                    unfinished_in_report.store(
                        summary.ords.iter().any(|o| o.files_pending > 0),
                        Ordering::SeqCst,
                    );
                    log_summary(summary, took);
                    cycle_metrics.record(summary, took, Utc::now());
                    notify(&[sd_notify::NotifyState::Status(&status_line(summary, took))]);
                },
            );
        })
        .await
    })?;
    notify(&[sd_notify::NotifyState::Stopping]);
    if unfinished.load(Ordering::SeqCst) {
        tracing::warn!("egme-ord stopped with files not delivered: the next start delivers them");
        return Ok(exit::INVALID);
    }
    tracing::info!("egme-ord stopped");
    Ok(exit::OK)
}

/// The daemon's metrics before its first cycle: every series at 0, and each ORD's last daily send
/// as the ledger knows it.
fn metrics_at_start(ws: &workspace::Workspace, ords: &[OrdName]) -> Result<Metrics> {
    // A cycle in flight longer than this is a hung daemon for /healthz.
    let hung_after = (ws.config.poll_interval * 4).max(Duration::from_secs(3600));
    let metrics = Metrics::new(ords, ws.config.poll_interval, hung_after);
    for ord in &ws.config.ords {
        if let Some(at) = ws.store.days_state(&ord.name)?.last_send.and_then(|day| {
            day.and_time(ord.schedule.send_at)
                .and_local_timezone(ord.schedule.tz)
                .earliest()
        }) {
            metrics.set_last_daily_send(&ord.name, at.with_timezone(&Utc));
        }
    }
    Ok(metrics)
}

/// The metrics listener, bound on `addr`.
fn bind_metrics(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    tracing::info!(address = %addr, "metrics listening (/metrics, /healthz, /readyz)");
    Ok(listener)
}

/// Tells systemd (when it started us with `Type=notify`); nothing otherwise.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// SIGTERM/SIGINT stop the daemon (the file in flight is finished; after `stop_timeout` the
/// cycle is abandoned, as a crash would be); SIGHUP re-reads the registry.
async fn signals(
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    stop_timeout: Duration,
    store_path: PathBuf,
    ords: Vec<OrdName>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot listen for signals: stop egme-ord with SIGKILL only after checking no cycle runs");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: the registry is read again before the next step");
                notify(&[sd_notify::NotifyState::Reloading]);
                reload.store(true, Ordering::SeqCst);
            }
        }
    }
    tracing::info!(
        stop_timeout_s = stop_timeout.as_secs(),
        "stop requested: finishing the file in flight, then stopping"
    );
    notify(&[sd_notify::NotifyState::Stopping]);
    stop.store(true, Ordering::SeqCst);
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
}

/// The one-line summary of a cycle for `systemctl status` (STATUS=).
fn status_line(s: &CycleSummary, took: Duration) -> String {
    let failed: Vec<&str> = s
        .ords
        .iter()
        .filter(|o| !o.errors.is_empty())
        .map(|o| o.ord.as_str())
        .collect();
    let sent: usize = s.ords.iter().map(|o| o.files_delivered).sum();
    let received: usize = s
        .ords
        .iter()
        .map(|o| o.received.values().sum::<usize>())
        .sum();
    let pending: u64 = s.ords.iter().map(|o| o.files_pending).sum();
    let result = if failed.is_empty() {
        "ok".to_string()
    } else {
        format!("failed for {}", failed.join(", "))
    };
    format!(
        "last cycle {} ({} ms): {result}; {received} received, {sent} delivered, {pending} pending",
        Utc::now().format("%Y-%m-%d %H:%M:%SZ"),
        took.as_millis()
    )
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
                .get(&egme_ord_core::ledger::ReceivedStatus::Rejected)
                .copied()
                .unwrap_or(0),
            waiting = o.waiting,
            send_due = o.send.due(),
            files_written = o.files_written,
            files_delivered = o.files_delivered,
            files_pending = o.files_pending,
            files_unreadable = o.files_unreadable,
            files_stuck = o.files_stuck.len(),
            send_held = o.send == SendState::Held,
            anomalies = o.anomalies,
            backing_off = o.send == SendState::BackingOff,
            errors = o.errors.len(),
            "cycle summary"
        );
    }
}

/// Raises the soft limit on open descriptors to the hard one (systemd's default soft limit is
/// 1,024; the unit's LimitNOFILE sets both) and returns the limit in force.
fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "the open-file limit could not be raised to its hard limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    now.current.unwrap_or(u64::MAX)
}
