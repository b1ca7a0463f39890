//! Command-line interface: argument parsing, exit codes, and one module per command.

mod backup;
mod check;
mod days;
mod demo;
mod events;
mod manual;
mod once;
mod probe;
mod prune;
mod recover;
mod report;
mod run;
mod sql;
mod status;
mod validate;
mod verify;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in the README.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// The command ran but found invalid input (e.g. a file rejected by `check`) or a failed step.
    pub const INVALID: u8 = 1;
    /// Usage, configuration or IO error: nothing could be judged.
    pub const USAGE: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "egme-ord",
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (revision ",
        env!("EGME_ORD_REVISION"),
        ", ",
        env!("EGME_ORD_BUILD_DATE"),
        ")"
    ),
    about = "SGL meter-data exchange between MOBI.E (EGME) and the ORDs",
    after_help = "Environment:\n  EGME_ORD_LOG  log filter on standard error (`error`, `warn`, `info`, `debug`, `trace`, or\n                per module: `info,egme_ord::transport=debug`); default `info` for `run`,\n                `warn` for the other commands. A value that is not a filter is an error.\n\nExit codes: 0 success; 1 invalid input or a failed step; 2 usage, configuration or IO error."
)]
struct Cli {
    /// Log format on standard error: json (one event per line), pretty (for a person), or auto
    /// (the default: pretty when standard error is a terminal, json otherwise and under journald).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Json,
    Pretty,
    Auto,
}

impl LogFormat {
    /// `Auto` decided: pretty for a person at a terminal, JSON for journald, files and pipes.
    fn resolved(self) -> LogFormat {
        use std::io::IsTerminal;
        match self {
            LogFormat::Auto
                if std::io::stderr().is_terminal()
                    && std::env::var_os("JOURNAL_STREAM").is_none() =>
            {
                LogFormat::Pretty
            }
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Logs go to standard error; the level comes from `EGME_ORD_LOG` (e.g. `debug`), by default
/// `info` for `run` and `warn` for the other commands, whose output is their report. A value
/// that is not a filter is refused (said, exit 2), not silently replaced by the default.
fn init_logging(format: LogFormat, daemon: bool) -> Result<(), String> {
    let default = if daemon { "info" } else { "warn" };
    let filter = match std::env::var("EGME_ORD_LOG") {
        Ok(text) => tracing_subscriber::EnvFilter::try_new(&text).map_err(|e| {
            format!("EGME_ORD_LOG={text:?} is not a log filter ({e}): expected e.g. `info`, `debug` or `info,egme_ord::transport=debug`")
        })?,
        Err(_) => tracing_subscriber::EnvFilter::new(default),
    };
    // Under systemd (JOURNAL_STREAM set), each line starts with its syslog priority (`<4>` for
    // WARN…), which journald reads and strips: `journalctl -p warning` then shows what it should.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr { journal });
    // Fails only when a subscriber is already set (a test that set up its own): that one logs.
    let _ = match format.resolved() {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json | LogFormat::Auto => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}

/// Standard error for the logs, each line with its syslog priority prefix under journald.
struct Stderr {
    journal: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            prefix: if self.journal { "<6>" } else { "" },
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogLine {
        let prefix = match (self.journal, *meta.level()) {
            (false, _) => "",
            (true, tracing::Level::ERROR) => "<3>",
            (true, tracing::Level::WARN) => "<4>",
            (true, tracing::Level::INFO) => "<6>",
            (true, _) => "<7>",
        };
        LogLine {
            prefix,
            buf: Vec::new(),
        }
    }
}

/// One log line, written to standard error in one piece when it is complete.
struct LogLine {
    prefix: &'static str,
    buf: Vec<u8>,
}

impl std::io::Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let mut line = Vec::with_capacity(self.prefix.len() + self.buf.len());
        line.extend_from_slice(self.prefix.as_bytes());
        line.extend_from_slice(&self.buf);
        // Standard error is where the logs go: a failure to write there has nowhere else to be told.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &line);
    }
}

/// For a command that prints a report: a reader that goes away (`status | head -1`) ends it
/// quietly, as it ends `cat`, instead of a panic on the closed pipe. Not for `run`, whose
/// sockets must never end the daemon.
fn quiet_on_closed_pipe() {
    // Before any thread is started (what the crate's one unsafe call needs).
    sigpipe::reset();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate SGL files (names and contents) and summarise the valid ones.
    Check(check::CheckArgs),
    /// The daemon: a cycle every poll interval, the daily send at send_at, until SIGTERM/SIGINT.
    Run(run::RunArgs),
    /// Run one whole cycle: intake, mobility, netting, the daily send when due, delivery.
    Once(once::OnceArgs),
    /// Show per ORD and day: ORD data held, files sent, open/closed, anomalies.
    Status(status::StatusArgs),
    /// The day at a glance: index.html (charts, time-of-use periods) and tidy CSVs, read-only.
    Report(report::ReportArgs),
    /// List the events the ledger recorded (missing transmissions, missed days, rejected files, …).
    Events(events::EventsArgs),
    /// Run one read-only SQL statement on the ledger (safe beside the daemon; never use the sqlite3 shell on it).
    Sql(sql::SqlArgs),
    /// Report every mistake of a config in one run; with the environment, also keys, folders and servers.
    ValidateConfig(validate::ValidateArgs),
    /// Check the ledger against the archive, the outbox and the ORDs' send folders (ids, copies, duplicates).
    Verify(verify::VerifyArgs),
    /// Rebuild what the ledger must know from the outbox, the ORDs' folders and the archive (after a ledger was lost, damaged or restored).
    Recover(recover::RecoverArgs),
    /// An online copy of the ledger and of the files it references into a folder (safe while the daemon runs).
    Backup(backup::BackupArgs),
    /// Put a backup back (the current ledger is kept aside), then recover what was sent after it.
    Restore(backup::RestoreArgs),
    /// Apply [retention] now: old outbox packs, archive days, quarantine, reports and netting inputs of long-closed days.
    Prune(prune::PruneArgs),
    /// Reopen a day closed by mistake (e.g. by a clock jump): its next send goes out under new ids.
    Reopen(days::DayArgs),
    /// Send all of a day's files again under new ids (for an ORD that lost them).
    Resend(days::DayArgs),
    /// Build a demo workspace on local folders and run a D+1 cycle and a later correction.
    Demo(demo::DemoArgs),
    /// Print the man page (roff): `egme-ord man > egme-ord.1`.
    Man,
    /// Print shell completions: `egme-ord completions bash|zsh|fish`.
    Completions(manual::CompletionsArgs),
    /// GET a local health URL and exit 0 on 200 (a container's HEALTHCHECK).
    Probe(probe::ProbeArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            // Printing clap's own message: a closed terminal leaves only the exit code to tell.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let daemon = matches!(cli.command, Command::Run(_));
    if let Err(e) = init_logging(cli.log_format, daemon) {
        eprintln!("egme-ord: error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    if !daemon {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Once(args) => once::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Events(args) => events::run(&args),
        Command::Sql(args) => sql::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::ValidateConfig(args) => validate::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Recover(args) => recover::run(&args),
        Command::Backup(args) => backup::run_backup(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Reopen(args) => days::run_reopen(&args),
        Command::Resend(args) => days::run_resend(&args),
        Command::Restore(args) => backup::run_restore(&args),
        Command::Man => manual::run_man(),
        Command::Completions(args) => manual::run_completions(&args),
        Command::Probe(args) => probe::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if daemon && cli.log_format.resolved() == LogFormat::Json => {
            // The daemon's fatal errors are log events like everything else it says (journald).
            tracing::error!(error = %format!("{e:#}"), exit_code = exit::USAGE, "egme-ord cannot run");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            eprintln!("egme-ord: error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
