//! `egme-ord demo`: writes a demo workspace, runs the D+1 cycle and a later correction, and shows what came out.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use clap::Args;
use egme_ord::cycle::RunOptions;
use egme_ord_core::demo::{self, DemoFile};
use egme_ord_core::event::EventKind;

use super::{exit, once, workspace};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the workspace (must not exist, or be empty).
    #[arg(default_value = "egme-demo")]
    dir: PathBuf,
}

fn write_all(root: &Path, files: &[DemoFile]) -> Result<()> {
    for f in files {
        let path = root.join(&f.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, &f.bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub fn run(args: &DemoArgs) -> Result<u8> {
    let root = &args.dir;
    if root.exists()
        && fs::read_dir(root)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} exists and is not empty: choose another folder or remove it",
            root.display()
        );
    }
    fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let config_path = root.join("egme-ord.toml");
    fs::write(&config_path, demo::config_toml("20:00", "0s"))?;
    write_all(root, &demo::registry_files())?;
    write_all(root, &demo::first_delivery())?;
    println!("demo workspace: {}", root.display());
    println!("  config {}, registry in registry/, ORD files in exchange/<ord>/from-ord/, CDRs in mobility/", config_path.display());

    let [first, second] = demo::cycle_times();
    let mut ws = workspace::Workspace::open(&config_path)?;
    println!("\n1. The D+1 send for 27 October 2024 (the autumn DST day, 100 quarter-hours) and D+2 for the 26th:");
    let s1 = ws.cycle(first, Utc::now(), RunOptions::default());
    once::print_summary(&s1);

    write_all(root, &demo::correction())?;
    println!("\n2. A day later: a corrected CDR, a credit CDR and a corrected E-Redes file arrive; only changed files are re-sent:");
    let s2 = ws.cycle(second, Utc::now(), RunOptions::default());
    once::print_summary(&s2);

    println!("\nWhat each ORD received (exchange/<ord>/to-ord/):");
    for (ord, first) in ws.config.ords.iter().zip(&s1.ords) {
        let sent = ws.store.sent_files(&ord.name, false)?;
        println!(
            "  {}: {} files, transmission ids {}..{}",
            ord.name,
            sent.len(),
            sent.first().map_or(0, |f| f.transmission_id),
            sent.last().map_or(0, |f| f.transmission_id)
        );
        for f in sent.iter().skip(first.files_written) {
            println!("    {} (new version after the correction)", f.name);
        }
    }
    explain_warnings(s1.events.iter().chain(&s2.events).map(|(_, kind)| *kind));
    println!(
        "\nNetting reports (CSV and JSON) and each day's page: {}",
        root.join("work/reports").display()
    );
    println!(
        "The 100-quarter-hour day at a glance: {}",
        root.join("work/reports/e-redes/2024-10-27/index.html")
            .display()
    );
    println!(
        "Quarantined inputs with their reasons: {}",
        root.join("work/quarantine").display()
    );
    println!("Try: egme-ord status --config {}", config_path.display());
    println!(
        "     egme-ord check {}",
        root.join("exchange/e-redes/to-ord").display()
    );
    Ok(if s1.failed() || s2.failed() {
        exit::INVALID
    } else {
        exit::OK
    })
}

/// Every kind of warning the demo's cycles logged (on standard error), each once, with why the
/// demo's own data gives it: a newcomer's first screen holds no unexplained warning.
fn explain_warnings(kinds: impl Iterator<Item = EventKind>) {
    let kinds: BTreeSet<EventKind> = kinds.collect();
    if kinds.is_empty() {
        return;
    }
    println!("\nThe warnings logged above, and why the demo's data gives them:");
    for kind in kinds {
        let why = match kind {
            EventKind::MobilityRejected => {
                "one CDR names an EVSE the registry does not know (PT*MOB*E999*1): it is quarantined with its reason, the others are applied"
            }
            EventKind::MissingTransmission => {
                "the corrected E-Redes file is numbered 900 after 106: it is applied, and the gap is reported in case files 107-899 were lost"
            }
            EventKind::OrdFileMissing => {
                "the demo brings no ORD files for the 28th: after D+1 20:00 the CPEs without one are named (`status` lists them); a file arriving clears them"
            }
            other => {
                println!("  {}: not one the demo should give; `egme-ord events` shows it", other.as_str());
                continue;
            }
        };
        println!("  {}: {why}", kind.as_str());
    }
}
