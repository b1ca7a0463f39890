//! The unattended loop: a cycle every poll interval, per-ORD backoff after failures, a single instance, a clean stop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cycle::{Cycle, CycleSummary, RunOptions};
use crate::store::Store;
use egme_ord_core::config::Config;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::planner::SendState;
use egme_ord_core::registry::Registry;

/// The time, behind a trait so that the loop is tested on a controllable clock without sleeping.
pub trait Clock {
    /// The business time: which day it is, whether the send is due.
    fn now(&self) -> DateTime<Utc>;
    /// The real time, for a file's age (stability); a fake business clock keeps the real one here.
    fn wall_now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    /// Waits `duration`, returning early when `stop` is set.
    fn sleep(&self, duration: Duration, stop: &AtomicBool);
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration, stop: &AtomicBool) {
        let end = Instant::now() + duration;
        while !stop.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(
                Duration::from_millis(200).min(end.saturating_duration_since(Instant::now())),
            );
        }
    }
}

/// A business clock that starts at a given time and runs with the real one (`run --now`: replays).
pub struct OffsetClock {
    start: DateTime<Utc>,
    began: Instant,
}

impl OffsetClock {
    pub fn starting_at(start: DateTime<Utc>) -> OffsetClock {
        OffsetClock {
            start,
            began: Instant::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.began.elapsed()).unwrap_or_default()
    }

    fn sleep(&self, duration: Duration, stop: &AtomicBool) {
        SystemClock.sleep(duration, stop);
    }
}

/// How long an ORD that failed `failures` times in a row is left out: poll × 2^failures, at most an
/// hour, plus up to a quarter of jitter from `seed`.
pub fn backoff(poll: Duration, failures: u32, seed: u64) -> Duration {
    egme_ord_core::backoff::backoff(poll, failures, Duration::from_secs(3600), seed)
}

/// Runs cycles until `stop` is set: after each cycle `report` sees the summary. An ORD whose cycle
/// failed is left out of the next cycles for a growing backoff; the other ORDs are served as usual.
pub fn run(
    config: &Config,
    registry: &Registry,
    store: &mut Store,
    clock: &dyn Clock,
    stop: &Arc<AtomicBool>,
    options: RunOptions,
    mut report: impl FnMut(&CycleSummary, Duration),
) {
    let mut failing: BTreeMap<OrdName, (u32, DateTime<Utc>)> = BTreeMap::new();
    let mut cycles: u64 = 0;
    // The registry read again after SIGHUP, when it was valid.
    let mut reloaded: Option<Registry> = None;
    while !stop.load(Ordering::SeqCst) {
        reload_if_asked(config, &options, &mut reloaded);
        let now = clock.now();
        let mut opts = options.clone();
        opts.stop = Some(stop.clone());
        opts.skip_ords = failing
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(name, _)| name.clone())
            .collect();
        // `--allow-clock-jump` lets the first cycle through, not every later one.
        opts.allow_clock_jump = options.allow_clock_jump && cycles == 0;
        let started = Instant::now();
        let current = reloaded.as_ref().unwrap_or(registry);
        let mut summary = Cycle::new(config, current, store, now, clock.wall_now(), opts).run();
        let took = started.elapsed();
        for o in &mut summary.ords {
            if o.send == SendState::BackingOff {
                o.backoff_until = failing.get(&o.ord).map(|(_, until)| *until);
                continue;
            }
            if o.errors.is_empty() {
                failing.remove(&o.ord);
            } else {
                let failures = failing.get(&o.ord).map_or(0, |(f, _)| *f) + 1;
                // A daily send waiting for its intake is retried every poll interval, so that it
                // goes out in the first cycle whose intake succeeds, or at its deadline.
                let wait = if o.send == SendState::Held {
                    config.poll_interval
                } else {
                    backoff(config.poll_interval, failures, cycles ^ failures as u64)
                };
                let until = now
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::hours(1));
                tracing::warn!(ord = %o.ord, failures, retry_at = %until, "ORD failed: backing off");
                failing.insert(o.ord.clone(), (failures, until));
                o.backoff_until = Some(until);
                if let Err(e) = store.record_ord_cycle(&o.ord, now, &o.errors, Some(until)) {
                    tracing::warn!(ord = %o.ord, error = %e, "the backoff could not be recorded for `status`");
                }
            }
        }
        report(&summary, took);
        if summary.ords.iter().any(|o| o.days_sent > 0) {
            // Retention, once a day: after the daily send, before its backup.
            match crate::cycle::prune::prune(config, store, now, false) {
                Ok(r) if r.bytes > 0 => {
                    tracing::info!(bytes = r.bytes, "pruned what [retention] no longer keeps")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "prune after the daily send failed: nothing is lost, the disk keeps more than [retention] says until the next one")
                }
            }
        }
        if let Some(folder) = &config.backup_folder {
            if summary.ords.iter().any(|o| o.days_sent > 0) {
                match crate::backup::backup(
                    config,
                    store,
                    folder,
                    clock.wall_now(),
                    options.crash_at.as_deref(),
                ) {
                    Ok(r) => {
                        tracing::info!(folder = %folder.display(), files_copied = r.files_copied, bytes_copied = r.bytes_copied, "backup taken after the daily send")
                    }
                    Err(e) => {
                        tracing::error!(folder = %folder.display(), error = %e, "backup after the daily send failed: the standby copy is older than the ledger")
                    }
                }
            }
        }
        cycles += 1;
        wait_for_next_cycle(config, clock, stop, &options, &mut reloaded);
    }
}

/// Sleeps a poll interval. With a heartbeat (systemd's watchdog) or a SIGHUP to listen to, in
/// steps of a few seconds: the watchdog is fed while waiting and a registry reload is done at
/// once, not after the interval.
fn wait_for_next_cycle(
    config: &Config,
    clock: &dyn Clock,
    stop: &AtomicBool,
    options: &RunOptions,
    reloaded: &mut Option<Registry>,
) {
    if options.heartbeat.is_none() && options.reload_registry.is_none() {
        clock.sleep(config.poll_interval, stop);
        return;
    }
    let step = Duration::from_secs(2);
    let mut left = config.poll_interval;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let now = step.min(left);
        clock.sleep(now, stop);
        left = left.saturating_sub(now);
        options.beat();
        reload_if_asked(config, options, reloaded);
    }
}

/// After SIGHUP: the registry read and validated again; on a mistake the one in use is kept.
fn reload_if_asked(config: &Config, options: &RunOptions, reloaded: &mut Option<Registry>) {
    let Some(flag) = &options.reload_registry else {
        return;
    };
    if !flag.swap(false, Ordering::SeqCst) {
        return;
    }
    match crate::cycle::load_registry(config) {
        Ok(registry) => {
            tracing::info!(
                cpes = %config.registry.cpes.display(),
                "registry reloaded (SIGHUP): the next cycles use it"
            );
            *reloaded = Some(registry);
        }
        Err(e) => {
            tracing::error!(error = %e, "registry reload (SIGHUP) refused: the registry in use is kept; fix the files and send SIGHUP again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_at_an_hour_and_a_quarter() {
        let poll = Duration::from_secs(60);
        assert!(backoff(poll, 1, 0) >= Duration::from_secs(120));
        assert!(backoff(poll, 2, 7) >= Duration::from_secs(240));
        assert!(backoff(poll, 30, 7) <= Duration::from_secs(4500));
    }
}
