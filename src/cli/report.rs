//! `egme-ord report`: the day at a glance, read-only — `index.html` (charts and time-of-use tables) and two tidy CSVs of what was sent.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use chrono::{NaiveDate, Utc};
use clap::Args;
use egme_ord::cycle::write_day_report;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The consumption day (YYYY-MM-DD).
    #[arg(long)]
    day: NaiveDate,
    /// Only this ORD (default: every configured ORD).
    #[arg(long)]
    ord: Option<String>,
    /// The folder to write index.html, quarter-hours.csv and supplier-quarter-hours.csv into.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &ReportArgs) -> Result<u8> {
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    let ords: Vec<_> = ws
        .config
        .ords
        .iter()
        .filter(|o| args.ord.as_ref().is_none_or(|n| o.name == n.as_str()))
        .collect();
    if ords.is_empty() {
        return Err(anyhow!(
            "no ORD {} in {}: expected one of {}",
            args.ord.as_deref().unwrap_or(""),
            args.config.display(),
            ws.config
                .ords
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let written = write_day_report(
        &ws.config,
        &ws.registry,
        &ws.store,
        &ords,
        args.day,
        &args.out,
        Utc::now(),
    )?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(exit::OK)
}
