//! One cycle of the daemon's job over its folders: intake, mobility, netting and sending, delivery.

mod completeness;
mod day_report;
mod deliver;
mod fence;
mod intake;
mod mobility_intake;
pub mod prune;
mod recover;
mod send;

use egme_ord_core::event::EventKind;
use egme_ord_core::planner::SendState;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::fsutil::DeferredSync;
use crate::pack::PackBuilder;
use crate::store::{Store, StoreError};
use crate::transport::{FtpDir, LocalDir, RemoteDir, SftpDir, TransportError};
use egme_ord_core::config::{Config, Endpoint};
use egme_ord_core::ledger::ReceivedStatus;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::registry::{Registry, RegistryError, RegistryTexts};
use egme_ord_core::sgl::WriteError;
use egme_ord_core::work_dir::Source;

pub use day_report::{load_tou, share_path, write_day_report};
pub use fence::{
    leftovers, leftovers_listed, mark_path, outbox_packs, read_mark, set_aside, witnesses,
    write_mark,
};
pub use intake::STUCK_AFTER;
pub use recover::{OrdRecovery, RecoverOptions, RecoverReport};

/// What can stop a cycle (or one ORD's part of it).
#[derive(Debug, Error)]
pub enum CycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("registry: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Registry(Vec<RegistryError>),
    #[error("cannot write {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: WriteError,
    },
    /// An operator's command that cannot be carried out as asked (the message says why).
    #[error("{0}")]
    Refused(String),
    /// The clock guard refused the cycle: `message` has both times and what to do.
    #[error("{0}")]
    ClockJump(String),
    /// The fence refused the ORD's send: `message` names the evidence and what recovers.
    #[error("{message}")]
    Fenced { ord: OrdName, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl Fn(io::Error) -> CycleError + '_ {
    move |source| CycleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Test hook: the process aborts at the named point (set by `EGME_ORD_CRASH_AT`, see docs).
pub(crate) fn crashpoint(crash_at: Option<&str>, point: &str) {
    if crash_at == Some(point) {
        std::process::abort();
    }
}

/// Per-ORD counts of one cycle.
#[derive(Debug, Clone, Serialize)]
pub struct OrdSummary {
    pub ord: OrdName,
    /// Received files by outcome: applied, duplicate, stale, rejected, late.
    pub received: BTreeMap<ReceivedStatus, usize>,
    /// Files not yet stable (still being written), left for a later cycle.
    pub waiting: usize,
    /// Entries that are not regular files with usable names (links, non-UTF-8 names).
    pub skipped: Vec<String>,
    /// Files that could not be read this cycle (vanished, no permission): retried next cycle;
    /// the other files were received.
    pub files_unreadable: usize,
    /// Files that could not be read in `STUCK_AFTER` cycles or more in a row.
    pub files_stuck: Vec<String>,
    /// What became of the daily send (or the ORD left out, backing off).
    #[serde(flatten)]
    pub send: SendState,
    pub days_sent: usize,
    pub days_closed: usize,
    pub days_missed: usize,
    pub files_written: usize,
    pub files_delivered: usize,
    /// Files written (in this cycle or before) and not delivered at the end of the cycle.
    pub files_pending: u64,
    pub anomalies: usize,
    /// Anomalies of netting results that changed (a new version of a CPE-day): counted once.
    pub anomalies_new: usize,
    /// Rejected files of this ORD kept in the quarantine (all cycles).
    pub quarantined: u64,
    /// Until when the daemon leaves the ORD out after this cycle's failure (set by `run`).
    pub backoff_until: Option<DateTime<Utc>>,
    /// CPE-days netted this cycle (the daily send nets only those whose inputs changed).
    pub cpe_days_netted: usize,
    /// CPE-days without an ORD file after `expect_by` (open days within the window).
    pub ord_files_missing: usize,
    /// ORD files received for days already closed (all cycles): archived, not applied.
    pub ord_files_late: u64,
    pub errors: Vec<String>,
}

impl OrdSummary {
    /// An ORD's summary before the cycle did anything for it.
    pub fn new(ord: OrdName) -> OrdSummary {
        OrdSummary {
            ord,
            received: BTreeMap::new(),
            waiting: 0,
            skipped: Vec::new(),
            files_unreadable: 0,
            files_stuck: Vec::new(),
            send: SendState::default(),
            days_sent: 0,
            days_closed: 0,
            days_missed: 0,
            files_written: 0,
            files_delivered: 0,
            files_pending: 0,
            anomalies: 0,
            anomalies_new: 0,
            quarantined: 0,
            backoff_until: None,
            cpe_days_netted: 0,
            ord_files_missing: 0,
            ord_files_late: 0,
            errors: Vec::new(),
        }
    }
}

/// Mobility intake counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MobilitySummary {
    pub files: usize,
    pub files_rejected: usize,
    pub records_applied: usize,
    pub records_stale: usize,
    pub records_late: usize,
    pub records_rejected: usize,
    /// Records for ORDs that other egme-ord instances serve (`registry.other_ords`), skipped here.
    pub records_other_ord: usize,
    pub errors: Vec<String>,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleSummary {
    pub now: Option<DateTime<Utc>>,
    /// The cycle's id, also on every log line of the cycle (its `cycle` span).
    pub cycle: String,
    pub mobility: MobilitySummary,
    pub ords: Vec<OrdSummary>,
    /// The events recorded in this cycle, per ORD (`-`: not one ORD's) and kind.
    pub events: Vec<(String, EventKind)>,
}

impl CycleSummary {
    /// A cycle that did not run at all (the ledger is not in place, the clock jumped): `why` is
    /// every ORD's error.
    fn refused(now: DateTime<Utc>, config: &Config, why: &str) -> CycleSummary {
        CycleSummary {
            now: Some(now),
            mobility: MobilitySummary {
                errors: vec![why.to_string()],
                ..MobilitySummary::default()
            },
            ords: config
                .ords
                .iter()
                .map(|o| OrdSummary {
                    errors: vec![why.to_string()],
                    ..OrdSummary::new(o.name.clone())
                })
                .collect(),
            ..CycleSummary::default()
        }
    }

    /// Whether something needs the operator: a step failed, or a file is stuck.
    pub fn failed(&self) -> bool {
        !self.mobility.errors.is_empty()
            || self
                .ords
                .iter()
                .any(|o| !o.errors.is_empty() || !o.files_stuck.is_empty())
    }
}

/// Settings of a run that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Crash injection point for tests (`EGME_ORD_CRASH_AT`).
    pub crash_at: Option<String>,
    /// ORDs left out of this cycle (backing off after failures).
    pub skip_ords: std::collections::BTreeSet<OrdName>,
    /// Set by a signal: the cycle stops between two files (everything done so far is recorded).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Run even if the clock guard finds the time jumped (`--allow-clock-jump`).
    pub allow_clock_jump: bool,
    /// Test hook (`EGME_ORD_PAUSE_AFTER_LIST`): after listing an ORD's folder, the intake creates
    /// this file and waits (at most a minute) until it is removed, so a test can change the folder
    /// between the listing and the reads.
    pub pause_after_list: Option<PathBuf>,
    /// `once --dry-run`: the ORDs' folders are listed and read but never written, and outbox
    /// files are read from `dry_run_outbox_of` (the real work folder) when the cycle's own work
    /// folder (a throwaway one) does not have them.
    pub dry_run_outbox_of: Option<PathBuf>,
    /// Called at the start of every cycle and batch (`run` feeds systemd's watchdog with it: a
    /// cycle stuck in one step stops calling it).
    pub heartbeat: Option<Heartbeat>,
    /// Set by SIGHUP: the daemon re-reads the registry before its next step.
    pub reload_registry: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// `once --renet-all`: every open CPE-day is netted again, changed or not (a changed netting
    /// policy the settings do not show, or after `recover`).
    pub renet_all: bool,
}

/// A function called to say the cycle is alive.
#[derive(Clone)]
pub struct Heartbeat(pub std::sync::Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Heartbeat")
    }
}

impl RunOptions {
    /// Says the cycle is alive (to the watchdog, when there is one).
    pub fn beat(&self) {
        if let Some(Heartbeat(beat)) = &self.heartbeat {
            beat();
        }
    }
}

/// Test hook: see [`RunOptions::pause_after_list`].
pub(crate) fn pause_after_list(marker: Option<&Path>) {
    let Some(marker) = marker else { return };
    if fs::write(marker, b"listed\n").is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while marker.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl RunOptions {
    pub(crate) fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Reads and validates the registry files named in the config.
pub fn load_registry(config: &Config) -> Result<Registry, CycleError> {
    let read = |p: &Path| {
        crate::fsutil::read_input(p, crate::fsutil::MAX_REGISTRY_BYTES).map_err(io_err(p))
    };
    let cpes = read(&config.registry.cpes)?;
    let evses = read(&config.registry.evses)?;
    let cemes = read(&config.registry.cemes)?;
    let overrides = config
        .registry
        .tariff_overrides
        .as_deref()
        .map(read)
        .transpose()?;
    let names = [
        config.registry.cpes.display().to_string(),
        config.registry.evses.display().to_string(),
        config.registry.cemes.display().to_string(),
        config
            .registry
            .tariff_overrides
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    ];
    let texts = RegistryTexts {
        cpes: (&names[0], &cpes),
        evses: (&names[1], &evses),
        cemes: (&names[2], &cemes),
        overrides: overrides.as_deref().map(|t| (names[3].as_str(), t)),
    };
    let ords: Vec<&str> = config
        .ords
        .iter()
        .map(|o| o.name.as_str())
        .chain(config.registry.other_ords.iter().map(String::as_str))
        .collect();
    let mut digest = String::new();
    for (name, text) in [(&names[0], &cpes), (&names[1], &evses), (&names[2], &cemes)]
        .into_iter()
        .chain(overrides.as_ref().map(|t| (&names[3], t)))
    {
        digest.push_str(&format!("{name}\n{}\n", text.len()));
        digest.push_str(text);
    }
    let registry = Registry::parse(&texts, &ords)
        .map_err(CycleError::Registry)?
        .with_digest(crate::fsutil::sha256_hex(digest.as_bytes()));
    for w in registry.warnings() {
        tracing::warn!(file = %w.file, line = w.line, "registry: {}", w.message);
    }
    Ok(registry)
}

/// Opens one folder of an exchange account.
pub fn open_endpoint(endpoint: &Endpoint) -> Result<Box<dyn RemoteDir + Send>, CycleError> {
    match endpoint {
        Endpoint::Local { path } => {
            if !path.is_dir() {
                fs::create_dir_all(path).map_err(io_err(path))?;
            }
            Ok(Box::new(LocalDir::new(path)))
        }
        Endpoint::Sftp(settings) => Ok(Box::new(SftpDir::new((**settings).clone()))),
        Endpoint::Ftp(settings) => Ok(Box::new(FtpDir::new((**settings).clone()))),
    }
}

/// The cycle's context: configuration, registry, store, the business time and the wall clock.
pub struct Cycle<'a> {
    pub config: &'a Config,
    pub registry: &'a Registry,
    pub store: &'a mut Store,
    /// The business time: what day it is, what is due (from `--now` or the clock).
    pub now: DateTime<Utc>,
    /// The wall clock, for file stability (a file's age).
    pub wall_now: DateTime<Utc>,
    pub options: RunOptions,
    /// Files written in the open ledger batch, synced together before it commits.
    pending: DeferredSync,
    /// The ledger's identity, read by the fence (for the high-water marks).
    ledger_id: Option<String>,
    /// Set when the fence could not check the ORD's folders: this cycle delivers nothing.
    hold_delivery: bool,
    /// `resend`: every file is written again, whether its content changed or not.
    resending: bool,
    /// The generation date of the ORD's last file written: no name gets an earlier one (a clock
    /// that went back within `max_clock_step` does not make generation dates go backwards).
    generation_floor: Option<chrono::NaiveDate>,
    /// What the fence's listing of the ORD's send folder showed of the files still pending: a
    /// cycle killed after its puts left them there, and the delivery compares before putting.
    at_ord: fence::AtOrd,
    /// The send folder as the fence found it agreeing, plus what the delivery put since
    /// ([`Cycle::keep_seen`]); `None` once anything about it is not known.
    send_seen: Option<egme_ord_core::fence::SeenFolder>,
}

impl<'a> Cycle<'a> {
    pub fn new(
        config: &'a Config,
        registry: &'a Registry,
        store: &'a mut Store,
        now: DateTime<Utc>,
        wall_now: DateTime<Utc>,
        options: RunOptions,
    ) -> Cycle<'a> {
        Cycle {
            config,
            registry,
            store,
            now,
            wall_now,
            options,
            pending: DeferredSync::default(),
            ledger_id: None,
            hold_delivery: false,
            resending: false,
            generation_floor: None,
            at_ord: fence::AtOrd::new(),
            send_seen: None,
        }
    }

    /// Runs `step` as one ledger batch: its files and rows become durable together (files synced
    /// first, then one commit); on an error nothing of it is recorded.
    pub(crate) fn in_batch<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, CycleError>,
    ) -> Result<T, CycleError> {
        self.options.beat();
        self.store.begin_batch()?;
        self.pending.begin();
        let result = step(self).and_then(|value| {
            self.pending
                .sync()
                .map_err(|(path, source)| CycleError::Io { path, source })?;
            self.store.commit_batch()?;
            Ok(value)
        });
        if result.is_err() {
            self.pending.discard();
            self.store.rollback_batch();
        }
        result
    }

    /// Opens an ORD folder; in a dry run, one that is never written.
    pub(crate) fn endpoint(
        &self,
        endpoint: &Endpoint,
    ) -> Result<Box<dyn RemoteDir + Send>, CycleError> {
        let dir = open_endpoint(endpoint)?;
        Ok(if self.options.dry_run_outbox_of.is_some() {
            Box::new(crate::transport::DryRun(dir))
        } else {
            dir
        })
    }

    /// The folder where received files from `from` (an ORD, the mobility inbox) are archived today.
    pub(crate) fn archive_dir(&self, from: Source<'_>) -> PathBuf {
        self.config.work().archive_day(from, self.now.date_naive())
    }

    /// Writes a batch's pack into `dir` (synced before the batch commits, see [`DeferredSync`]);
    /// nothing when the batch added no file. `crash_point` names the moment right after it.
    pub(crate) fn write_pack(
        &mut self,
        dir: &Path,
        pack: PackBuilder,
        crash_point: &str,
    ) -> Result<(), CycleError> {
        let Some((name, bytes)) = pack.finish().map_err(io_err(dir))? else {
            return Ok(());
        };
        let path = dir.join(&name);
        if path.exists() {
            // Left by a batch that never committed (or by a ledger that was lost): kept, never
            // overwritten.
            let to = set_aside(dir, &name).map_err(io_err(&path))?;
            tracing::warn!(pack = %path.display(), kept_at = %to.display(), "a pack of the same name was already there: set aside");
        }
        self.pending
            .write_private(&path, &bytes)
            .map_err(io_err(&path))?;
        crashpoint(self.options.crash_at.as_deref(), crash_point);
        Ok(())
    }

    /// Quarantines a rejected file from `from` (an ORD, the mobility inbox): its bytes (when they
    /// were read) under `quarantine/<source>/<name>` (a `.1`, `.2`… suffix when taken) and `report` beside
    /// it as `<name>.errors.txt`; synced with the open batch, if any. Returns the file's path.
    pub(crate) fn quarantine(
        &mut self,
        from: Source<'_>,
        name: &str,
        bytes: Option<&[u8]>,
        report: &str,
    ) -> Result<PathBuf, CycleError> {
        let dir = self.config.work().quarantine(from);
        let path = crate::fsutil::unique_path(&dir, &crate::fsutil::local_name(name));
        if let Some(b) = bytes {
            self.pending.write_atomic(&path, b).map_err(io_err(&path))?;
        }
        let errors = PathBuf::from(format!("{}.errors.txt", path.display()));
        self.pending
            .write_atomic(&errors, report.as_bytes())
            .map_err(io_err(&errors))?;
        Ok(path)
    }

    /// Keeps `bytes` zstd-compressed under `archive/<source>/<date of now>/<name>.zst`; the same bytes
    /// twice are kept once, other bytes under a taken name get a `.1`, `.2`… suffix. Returns the path.
    pub(crate) fn archive(
        &mut self,
        from: Source<'_>,
        name: &str,
        bytes: &[u8],
    ) -> Result<String, CycleError> {
        let dir = self.archive_dir(from);
        let name = format!("{name}{}", crate::pack::ZST_SUFFIX);
        let kept = crate::pack::compress_file(bytes).map_err(io_err(&dir))?;
        let mut path = dir.join(&name);
        loop {
            match self.pending.write_new_atomic(&path, &kept) {
                Ok(_) => return Ok(path.display().to_string()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    path = crate::fsutil::unique_path(&dir, &name)
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
    }

    /// Counts the ORD's files still to deliver; a cycle stopped (SIGTERM) with files left says so
    /// as unfinished work, never as success.
    fn count_pending(&mut self, ord: &egme_ord_core::config::OrdConfig, sum: &mut OrdSummary) {
        match self.store.pending_count(&ord.name) {
            Ok(n) => sum.files_pending = n,
            Err(e) => sum.errors.push(format!("delivery: {e}")),
        }
        match self.store.quarantined_count(&ord.name) {
            Ok(n) => sum.quarantined = n,
            Err(e) => sum.errors.push(format!("quarantine: {e}")),
        }
        if self.options.stopping() && sum.files_pending > 0 {
            sum.errors.push(format!(
                "stopped before delivering {} file(s): they are delivered, in order, by the next cycle",
                sum.files_pending
            ));
        }
    }

    /// The clock guard: refuses a cycle whose time jumped ahead of the last cycle's (by more than
    /// `max_clock_step`) or of the real clock, unless allowed; records this cycle's time otherwise.
    fn guard_clock(&mut self) -> Result<(), CycleError> {
        let last = self.store.last_cycle_now()?;
        let step = chrono::Duration::from_std(self.config.max_clock_step)
            .unwrap_or_else(|_| chrono::Duration::days(2));
        let mut allowed = false;
        if let Err(jump) = egme_ord_core::planner::check_clock(last, self.now, self.wall_now, step)
        {
            if !self.options.allow_clock_jump || !jump.waivable() {
                let what = if jump.waivable() {
                    "If the time is right (after a stop longer than max_clock_step, or a replay), run `egme-ord once --config FILE --allow-clock-jump`; if the clock is wrong, fix it (NTP): the cycles go on by themselves once it is back within max_clock_step of the last cycle's time"
                } else {
                    "--allow-clock-jump does not let a cycle run more than max_clock_step ahead of the real clock: fix the clock or --now"
                };
                let message = format!(
                    "{jump}: no day is closed and nothing is sent. {what}; if a cycle already closed days by mistake, `egme-ord reopen --config FILE --ord NAME --day D`"
                );
                self.store
                    .event(self.now, None, EventKind::ClockJump, &message)?;
                return Err(CycleError::ClockJump(message));
            }
            let message = format!("{jump}: allowed (--allow-clock-jump)");
            tracing::warn!("{message}");
            self.store
                .event(self.now, None, EventKind::ClockJumpAllowed, &message)?;
            allowed = true;
        }
        self.store
            .set_last_cycle_now(egme_ord_core::planner::next_clock_reference(
                last, self.now, allowed,
            ))?;
        Ok(())
    }

    /// Runs one whole cycle. Failures of one ORD are recorded in its summary; the others go on.
    pub fn run(&mut self) -> CycleSummary {
        let cycle = format!(
            "{}-{}",
            self.wall_now.format("%Y%m%dT%H%M%S%.3fZ"),
            std::process::id()
        );
        // At ERROR level so that the span (and its id) is on every line whatever the filter.
        let span = tracing::error_span!("cycle", cycle = %cycle);
        let _in_cycle = span.enter();
        let mut summary = self.run_in_span();
        summary.cycle = cycle;
        for o in summary
            .ords
            .iter()
            .filter(|o| o.send != SendState::BackingOff)
        {
            if let Err(e) = self
                .store
                .record_ord_cycle(&o.ord, self.now, &o.errors, None)
            {
                tracing::warn!(ord = %o.ord, error = %e, "the cycle's outcome could not be recorded for `status`");
            }
        }
        summary.events = self
            .store
            .take_events_written()
            .into_iter()
            .map(|(ord, kind)| (ord.unwrap_or_else(|| "-".into()), kind))
            .collect();
        summary
    }

    fn run_in_span(&mut self) -> CycleSummary {
        self.options.beat();
        let config = self.config;
        if let Err(e) = self.store.check_in_place() {
            tracing::error!(error = %e, "the ledger is not in place: nothing is done");
            return CycleSummary::refused(self.now, config, &e.to_string());
        }
        if let Err(e) = self.guard_clock() {
            tracing::error!(error = %e, "the cycle does not run");
            return CycleSummary::refused(self.now, config, &e.to_string());
        }
        let mut summary = CycleSummary {
            now: Some(self.now),
            ..CycleSummary::default()
        };
        let mut ord_summaries: Vec<OrdSummary> = config
            .ords
            .iter()
            .map(|o| OrdSummary {
                send: if self.options.skip_ords.contains(&o.name) {
                    SendState::BackingOff
                } else {
                    SendState::NotDue
                },
                ..OrdSummary::new(o.name.clone())
            })
            .collect();
        let intake_failed = self.all_intakes(&mut ord_summaries, &mut summary.mobility);
        for (ord, sum) in config.ords.iter().zip(ord_summaries.iter_mut()) {
            if sum.send == SendState::BackingOff || self.options.stopping() {
                continue;
            }
            let failed_intake = intake_failed.get(&ord.name).map(String::as_str);
            if let Err(e) = self.completeness(ord, sum, failed_intake.is_none()) {
                tracing::error!(ord = %ord.name, error = %e, "completeness check failed");
                sum.errors.push(format!("completeness: {e}"));
            }
            self.send_and_deliver(ord, sum, failed_intake);
        }
        summary.ords = ord_summaries;
        summary
    }

    /// Every ORD's intake, then the mobility intake; why an ORD's intake (or the mobility intake)
    /// failed this cycle, per ORD: its send waits for it.
    fn all_intakes(
        &mut self,
        ord_summaries: &mut [OrdSummary],
        mobility: &mut MobilitySummary,
    ) -> BTreeMap<OrdName, String> {
        let config = self.config;
        let mut intake_failed: BTreeMap<OrdName, String> = BTreeMap::new();
        for (ord, sum) in config.ords.iter().zip(ord_summaries.iter_mut()) {
            if sum.send == SendState::BackingOff || self.options.stopping() {
                continue;
            }
            if let Err(e) = self.intake(ord, sum) {
                tracing::error!(ord = %ord.name, error = %e, "intake failed");
                sum.errors.push(format!("intake: {e}"));
                intake_failed.insert(ord.name.clone(), e.to_string());
            }
        }
        if !self.options.stopping() {
            if let Err(e) = self
                .mobility_intake(mobility)
                .and_then(|()| self.remap_mobility())
            {
                tracing::error!(error = %e, "mobility intake failed");
                mobility.errors.push(e.to_string());
                for o in &config.ords {
                    intake_failed
                        .entry(o.name.clone())
                        .or_insert_with(|| format!("mobility intake: {e}"));
                }
            }
        }
        intake_failed
    }

    /// One ORD's fence, send and delivery; each failure goes to its summary.
    fn send_and_deliver(
        &mut self,
        ord: &egme_ord_core::config::OrdConfig,
        sum: &mut OrdSummary,
        failed_intake: Option<&str>,
    ) {
        self.hold_delivery = false;
        let errors = sum.errors.len();
        match self.fence(ord) {
            Err(e) => {
                tracing::error!(ord = %ord.name, error = %e, "send refused");
                sum.errors.push(format!("send: {e}"));
                return;
            }
            Ok(Some(unchecked)) => {
                tracing::error!(ord = %ord.name, error = %unchecked, "the ORD's send folder could not be checked: nothing is delivered this cycle");
                sum.errors.push(format!("delivery: the ORD's send folder could not be checked, nothing delivered: {unchecked}"));
                self.hold_delivery = true;
            }
            Ok(None) => {}
        }
        let mut uploader = None;
        if let Err(e) = self.send(ord, sum, &mut uploader, failed_intake) {
            tracing::error!(ord = %ord.name, error = %e, "send failed");
            sum.errors.push(format!("send: {e}"));
        }
        // What the send handed over is finished first; then anything still pending (files of
        // earlier cycles when no send was due) — unless that delivery already failed this cycle.
        if !self.hold_delivery {
            let delivered = match uploader {
                Some(up) => self
                    .finish_upload(ord, up, sum)
                    .and_then(|()| self.deliver(ord, sum)),
                None => self.deliver(ord, sum),
            };
            if let Err(e) = delivered {
                tracing::error!(ord = %ord.name, error = %e, "delivery failed");
                sum.errors.push(format!("delivery: {e}"));
            }
        }
        // The send folder as it now is, for the next fence: only after a cycle without a failure.
        if sum.errors.len() > errors || self.hold_delivery {
            self.send_seen = None;
        }
        if let Err(e) = self.keep_seen(ord) {
            tracing::error!(ord = %ord.name, error = %e, "the send folder's record");
            sum.errors.push(format!("send folder record: {e}"));
        }
        self.count_pending(ord, sum);
    }
}
