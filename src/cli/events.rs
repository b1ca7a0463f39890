//! `egme-ord events`: the events the ledger recorded (missing transmissions, missed days, refused files, …), filtered, as text or JSON lines.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use egme_ord::store::EventFilter;
use egme_ord_core::event::EventKind;
use egme_ord_core::ord_name::OrdName;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Only this ORD's events.
    #[arg(long)]
    ord: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2024-10-28T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only events of this kind (e.g. missing-transmission, missed-days, rejected, file-stuck).
    #[arg(long)]
    kind: Option<String>,
    /// One JSON object per line: {id, at, ord, kind, level, detail}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &EventsArgs) -> Result<u8> {
    let kind = args
        .kind
        .as_deref()
        .map(|k| {
            EventKind::from_code(k).ok_or_else(|| {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                anyhow!("--kind {k:?}: expected one of {}", all.join(", "))
            })
        })
        .transpose()?;
    let since = args
        .since
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    anyhow!(
                        "--since {t:?}: expected an RFC 3339 time like 2024-10-28T00:00:00Z ({e})"
                    )
                })
        })
        .transpose()?;
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    let ord = args
        .ord
        .as_deref()
        .map(|ord| workspace::check_ord(&ws.config, &args.config, ord).map(|o| o.name.clone()))
        .transpose()?;
    let filter = EventFilter { ord, kind, since };
    for e in ws.store.list_events(&filter)? {
        if args.json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            println!(
                "{} {} {:5} {}: {}",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                e.ord.as_ref().map_or("-", OrdName::as_str),
                e.level.map_or("?", |l| match l {
                    egme_ord_core::event::EventLevel::Warn => "WARN",
                    egme_ord_core::event::EventLevel::Error => "ERROR",
                }),
                e.kind,
                e.detail
            );
        }
    }
    Ok(exit::OK)
}
