//! `egme-ord check`: reads files from disk and prints `check`'s findings in compiler style or JSON.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, ValueEnum};
use egme_ord_core::calendar::LabelConvention;
use egme_ord_core::check::{check_file, FileCheck};
use egme_ord_core::filename::Direction;
use egme_ord_core::region::Region;
use egme_ord_core::sgl::{Code, Diagnostic, Dialect};

use super::exit;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RegionArg {
    Continent,
    Azores,
    Madeira,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DirectionArg {
    /// ORD → EGME files.
    Inbound,
    /// EGME → ORD files.
    Outbound,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ConventionArg {
    /// Local legal time: 92/96/100 periods, repeated labels on the autumn day (the default).
    Local,
    /// UTC days of 96 periods.
    Utc,
    /// 96 local labels every day: the spring gap's four labels zero, the autumn repeated hour's
    /// labels holding both passes summed.
    #[value(name = "local-96")]
    Local96,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Region of the files; inferred from each name when absent (.txt or PT0014… → azores, PT0013… → madeira).
    #[arg(long, value_enum)]
    region: Option<RegionArg>,
    /// Direction of the files; inferred from each name when absent.
    #[arg(long, value_enum)]
    direction: Option<DirectionArg>,
    /// How the files label periods (an ORD's `time_convention`).
    #[arg(long, value_enum, default_value = "local")]
    time_convention: ConventionArg,
    /// One JSON object per file, one per line.
    #[arg(long)]
    json: bool,
    /// Files or folders (a folder's files are checked, not its subfolders).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: &CheckArgs) -> Result<u8> {
    let dialect = Dialect {
        time_convention: match args.time_convention {
            ConventionArg::Local => LabelConvention::Local,
            ConventionArg::Utc => LabelConvention::Utc,
            ConventionArg::Local96 => LabelConvention::Local96,
        },
        ..Dialect::default()
    };
    let region = args.region.map(|r| match r {
        RegionArg::Continent => Region::Continent,
        RegionArg::Azores => Region::Azores,
        RegionArg::Madeira => Region::Madeira,
    });
    let direction = args.direction.map(|d| match d {
        DirectionArg::Inbound => Direction::Inbound,
        DirectionArg::Outbound => Direction::Outbound,
    });
    let mut io_errors = 0usize;
    let mut invalid = 0usize;
    let mut valid = 0usize;
    let mut out = std::io::stdout().lock();
    for path in expand(&args.files, &mut io_errors) {
        let display = path.display().to_string();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let checked = match read_limited(&path, dialect.max_file_bytes) {
            Ok(Some(bytes)) => check_file(&name, &bytes, region, direction, &dialect),
            Ok(None) => too_large(&name, region, direction, &dialect),
            Err(e) => {
                io_errors += 1;
                eprintln!("{display}: io error: {e}");
                continue;
            }
        };
        if checked.is_valid() {
            valid += 1;
        } else {
            invalid += 1;
        }
        if args.json {
            let value = serde_json::json!({
                "file": display,
                "valid": checked.is_valid(),
                "region": checked.region,
                "direction": checked.direction,
                "name": checked.name,
                "diagnostics": checked.diagnostics,
                "summary": checked.summary,
            });
            if writeln!(out, "{value}").is_err() {
                break; // stdout closed (`| head`): stop quietly
            }
        } else if print_human(&mut out, &display, &checked).is_err() {
            break;
        }
    }
    if !args.json {
        eprintln!(
            "checked {} files: {valid} valid, {invalid} invalid, {io_errors} unreadable",
            valid + invalid + io_errors
        );
    }
    Ok(if io_errors > 0 {
        exit::USAGE
    } else if invalid > 0 {
        exit::INVALID
    } else {
        exit::OK
    })
}

fn print_human(out: &mut impl Write, display: &str, checked: &FileCheck) -> std::io::Result<()> {
    for d in &checked.diagnostics {
        writeln!(out, "{}", d.render(display))?;
    }
    if let Some(s) = &checked.summary {
        writeln!(
            out,
            "{display}: ok: CPE {} · {} · {} day(s) · {} periods · {} kWh · {}",
            s.cpe, checked.region, s.days, s.periods, s.total_kwh, s.status
        )?;
    }
    Ok(())
}

/// Files named, with folders expanded to their files (sorted); missing paths are reported.
fn expand(paths: &[PathBuf], io_errors: &mut usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => match fs::read_dir(p) {
                Ok(entries) => {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect();
                    files.sort();
                    out.extend(files);
                }
                Err(e) => {
                    *io_errors += 1;
                    eprintln!("{}: io error: {e}", p.display());
                }
            },
            Ok(_) => out.push(p.clone()),
            Err(e) => {
                *io_errors += 1;
                eprintln!("{}: io error: {e}", p.display());
            }
        }
    }
    out
}

/// Reads at most `limit` bytes; `None` when the file is larger (it is then not read whole).
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn too_large(
    name: &str,
    region: Option<egme_ord_core::region::Region>,
    direction: Option<Direction>,
    dialect: &Dialect,
) -> FileCheck {
    let mut c = check_file(name, b"", region, direction, dialect);
    c.diagnostics.retain(|d| d.line == 0);
    c.diagnostics.push(Diagnostic::new(
        0,
        0,
        Code::TooLarge,
        format!(
            "file is larger than the limit of {} bytes: not read",
            dialect.max_file_bytes
        ),
    ));
    c.summary = None;
    c
}
