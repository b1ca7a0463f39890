//! `egme-ord reopen` and `egme-ord resend`: an operator's undo for a day closed by mistake, and a replay of a day's files for an ORD that lost them.

use egme_ord_core::event::EventKind;
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::{NaiveDate, Utc};
use clap::Args;
use egme_ord::cycle::{Cycle, RunOptions};

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct DayArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The ORD, as named in the config.
    #[arg(long)]
    ord: String,
    /// The day (YYYY-MM-DD).
    #[arg(long)]
    day: NaiveDate,
    /// As if it were this time (RFC 3339), as `once --now`: replays and tests.
    #[arg(long)]
    now: Option<String>,
}

/// Reopens a closed day: its next send goes out (under new ids) with whatever changed since.
pub fn run_reopen(args: &DayArgs) -> Result<u8> {
    let now = super::once::parse_now(args.now.as_deref())?;
    let ws = workspace::Workspace::open(&args.config)?;
    let ord = workspace::check_ord(&ws.config, &args.config, &args.ord)?;
    let state = ws.store.days_state(&ord.name)?;
    if !state.closed.contains(&args.day) {
        println!(
            "{}: day {} is not closed: nothing to reopen",
            ord.name, args.day
        );
        return Ok(exit::INVALID);
    }
    let oldest = ord.schedule.oldest_open(ord.schedule.today(now));
    if args.day < oldest {
        bail!(
            "{}: day {} is past its D+{} window (the oldest day that may still be sent today is {oldest}): reopening it could send nothing",
            ord.name,
            args.day,
            ord.schedule.window_days
        );
    }
    ws.store.reopen_day(&ord.name, args.day)?;
    ws.store.event(
        Utc::now(),
        Some(&ord.name),
        EventKind::DayReopened,
        &format!("day {} reopened by the operator: its next send goes out with what changed, under new ids", args.day),
    )?;
    println!(
        "{}: day {} reopened; the next daily send sends what changed for it (under new ids); `egme-ord resend` sends all its files again",
        ord.name, args.day
    );
    Ok(exit::OK)
}

/// Sends a day's files again under new ids and delivers them.
pub fn run_resend(args: &DayArgs) -> Result<u8> {
    let now = super::once::parse_now(args.now.as_deref())?;
    let mut ws = workspace::Workspace::open(&args.config)?;
    workspace::check_ord(&ws.config, &args.config, &args.ord)?;
    let options = RunOptions {
        crash_at: std::env::var("EGME_ORD_CRASH_AT").ok(),
        ..RunOptions::default()
    };
    let sum = Cycle::new(
        &ws.config,
        &ws.registry,
        &mut ws.store,
        now,
        Utc::now(),
        options,
    )
    .resend(&args.ord, args.day)?;
    println!(
        "{}: day {}: {} file(s) sent again under new ids, {} delivered",
        sum.ord, args.day, sum.files_written, sum.files_delivered
    );
    Ok(if sum.files_delivered == sum.files_written {
        exit::OK
    } else {
        exit::INVALID
    })
}
