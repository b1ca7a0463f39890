//! `check`: validates one file's name and content together and summarises it (pure; the CLI does the IO).

use rust_decimal::Decimal;
use serde::Serialize;

use crate::filename::{Direction, NameError, OrdFileName};
use crate::region::Region;
use crate::sgl::{self, Code, DataStatus, Diagnostic, Dialect, ReadOptions, Report, SglFile};

/// The code the EGME uses as origin entity in the files it writes.
pub const EGME_ENTITY: &str = "MOBI";

/// A valid file in one line: what an operator wants to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub cpe: String,
    pub days: usize,
    pub periods: usize,
    pub total_kwh: Decimal,
    pub status: char,
}

/// Everything `check` found about one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    pub region: Region,
    pub direction: Option<Direction>,
    pub name: Option<OrdFileName>,
    pub diagnostics: Vec<Diagnostic>,
    pub summary: Option<Summary>,
}

impl FileCheck {
    pub fn is_valid(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The diagnostic for a file name that fits no pattern (line 0, column of the problem).
pub fn name_diagnostic(err: &NameError) -> Diagnostic {
    let code = match err {
        NameError::Pattern { .. } => Code::NamePattern,
        NameError::Cpe { .. } => Code::NameCpe,
    };
    Diagnostic::new(0, err.offset() + 1, code, err.to_string())
}

/// Who an ORD file received by the intake must come from, and how it is written.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub region: Region,
    pub dialect: &'a Dialect,
    /// The ORD's entity code, the file's origin.
    pub origin: &'a str,
    /// The EGME's code as the ORD's files name it, their destination.
    pub destination: &'a str,
}

/// An ORD file as the intake checks it: its name as an inbound name of the sender's region, its
/// content read with the sender's dialect, origin and destination. The name and file when both
/// parsed, and every diagnostic (a file that parsed may still carry errors: the caller decides
/// from their severity).
pub fn check_received(
    name: &str,
    bytes: &[u8],
    sender: &Sender<'_>,
) -> (Option<(OrdFileName, SglFile)>, Vec<Diagnostic>) {
    let parsed = OrdFileName::parse(name, sender.region, Direction::Inbound);
    let mut diagnostics = Vec::new();
    if let Err(e) = &parsed {
        diagnostics.push(name_diagnostic(e));
    }
    let name = parsed.ok();
    let options = ReadOptions {
        region: sender.region,
        dialect: sender.dialect,
        expected_origin: Some(sender.origin),
        expected_destination: Some(sender.destination),
        name: name.as_ref(),
    };
    let report = sgl::read(bytes, &options);
    diagnostics.extend(report.diagnostics);
    (name.zip(report.file), diagnostics)
}

/// Checks a file: `name` is its base name, `region`/`direction` are inferred when `None`.
pub fn check_file(
    name: &str,
    bytes: &[u8],
    region: Option<Region>,
    direction: Option<Direction>,
    dialect: &Dialect,
) -> FileCheck {
    let region = region.unwrap_or_else(|| OrdFileName::infer_region(name));
    let parsed = match direction {
        Some(d) => OrdFileName::parse(name, region, d),
        None => OrdFileName::parse_any(name, region),
    };
    let mut diagnostics = Vec::new();
    let mut parsed_name = match parsed {
        Ok(n) => Some(n),
        Err(e) => {
            diagnostics.push(name_diagnostic(&e));
            None
        }
    };
    let report = read_with_name(bytes, region, dialect, parsed_name.as_ref());
    // A Continent `00YYZZPE…` name fits both directions: the header's origin decides.
    if direction.is_none() {
        if let (Some(n), Some(file)) = (&parsed_name, &report.file) {
            if n.direction == Direction::Outbound && file.header.origin != EGME_ENTITY {
                if let Ok(inbound) = OrdFileName::parse(name, region, Direction::Inbound) {
                    parsed_name = Some(inbound);
                }
            }
        }
    }
    let summary = match (&report.file, &parsed_name) {
        (Some(file), Some(n)) => Some(Summary {
            cpe: n.cpe.to_string(),
            days: file.days.len(),
            periods: file.detail_count(),
            total_kwh: file.total_kwh().normalize(),
            status: match file.criteria.status {
                DataStatus::Provisional => 'P',
                DataStatus::Definitive => 'D',
            },
        }),
        _ => None,
    };
    diagnostics.extend(report.diagnostics);
    FileCheck {
        region,
        direction: parsed_name.as_ref().map(|n| n.direction),
        name: parsed_name,
        diagnostics,
        summary,
    }
}

fn read_with_name(
    bytes: &[u8],
    region: Region,
    dialect: &Dialect,
    name: Option<&OrdFileName>,
) -> Report {
    let mut options = ReadOptions::new(region, dialect);
    options.name = name;
    sgl::read(bytes, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_file_is_checked_as_its_senders_name_origin_and_destination() {
        let name = "171234PEPT0002000123681633GX_20210706_693.sgl";
        let bytes =
            include_bytes!("../../fixtures/valid/171234PEPT0002000123681633GX_20210706_693.sgl");
        let dialect = Dialect::default();
        let from = |origin, destination| Sender {
            region: Region::Continent,
            dialect: &dialect,
            origin,
            destination,
        };
        let (checked, diagnostics) = check_received(name, bytes, &from("EDIS", "0099/1"));
        assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
        let (parsed, file) = checked.expect("name and file parsed");
        assert_eq!(parsed.cpe.to_string(), "PT0002000123681633GX");
        assert_eq!(file.header.transmission_id, 372);
        // Another ORD's origin: an error, the file still parsed (the caller quarantines it).
        let (_, diagnostics) = check_received(name, bytes, &from("EEM", "0099/1"));
        assert!(
            diagnostics.iter().any(Diagnostic::is_error),
            "{diagnostics:?}"
        );
        // A name that is not an inbound name: no name, its diagnostic at line 0.
        let (checked, diagnostics) = check_received("x.sgl", bytes, &from("EDIS", "0099/1"));
        assert!(checked.is_none());
        assert!(diagnostics.iter().any(|d| d.line == 0 && d.is_error()));
    }

    #[test]
    fn bad_name_and_bad_content_are_both_reported() {
        let c = check_file("hello.sgl", b"00\tX\n", None, None, &Dialect::default());
        assert!(!c.is_valid());
        assert_eq!(c.diagnostics[0].code, Code::NamePattern);
        assert!(c.diagnostics.len() > 2);
        assert!(c.summary.is_none());
    }
}
