//! The SGL codec: records 00/01/04/20/99 read with full validation and written in canonical form.

pub mod diagnostic;
pub mod dialect;
mod lex;
mod read;
mod write;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::filename::OrdFileName;
use crate::profile::{DayProfile, ReadingStatus};
use crate::region::Region;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use dialect::{Dialect, LineEnding, Separator};
pub use read::read;
pub use write::{write, WriteError};

/// Record `00`: transmission control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub origin: String,
    pub destination: String,
    pub transmission_id: u64,
    pub previous_transmission_id: u64,
    pub delivery_points: u64,
    pub selection_start: NaiveDate,
    pub selection_end: NaiveDate,
}

/// `P`rovisional or `D`efinitive (record `01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DataStatus {
    Provisional,
    Definitive,
}

impl DataStatus {
    pub fn letter(self) -> char {
        match self {
            DataStatus::Provisional => 'P',
            DataStatus::Definitive => 'D',
        }
    }

    /// The rule: `P` whenever a period is missing or estimated (status 1 or 2), else `D`.
    pub fn for_days(days: &[DayProfile]) -> DataStatus {
        let not_real = days
            .iter()
            .flat_map(|d| &d.readings)
            .any(|r| r.status != ReadingStatus::Real);
        if not_real {
            DataStatus::Provisional
        } else {
            DataStatus::Definitive
        }
    }
}

/// What a value means: average kW over the quarter-hour (`POTENCIA`) or kWh (`ENERGIA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    Power,
    Energy,
}

impl ValueKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ValueKind::Power => "POTENCIA",
            ValueKind::Energy => "ENERGIA",
        }
    }

    /// kWh of a quarter-hour from a file value.
    pub fn to_kwh(self, value: Decimal) -> Decimal {
        match self {
            ValueKind::Power => value / Decimal::from(4),
            ValueKind::Energy => value,
        }
    }

    /// A file value from the kWh of a quarter-hour.
    pub fn from_kwh(self, kwh: Decimal) -> Option<Decimal> {
        match self {
            ValueKind::Power => kwh.checked_mul(Decimal::from(4)),
            ValueKind::Energy => Some(kwh),
        }
    }
}

/// Record `01`: data criteria (the fixed fields 06, K, 15M, 0 are checked, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Criteria {
    pub status: DataStatus,
    pub interpolated: bool,
    pub value_kind: ValueKind,
}

/// A whole valid file: header, criteria, and one profile per selected day (in kWh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SglFile {
    pub header: Header,
    pub criteria: Criteria,
    pub days: Vec<DayProfile>,
}

impl SglFile {
    /// Number of `20` records.
    pub fn detail_count(&self) -> usize {
        self.days.iter().map(|d| d.readings.len()).sum()
    }

    pub fn total_kwh(&self) -> Decimal {
        self.days.iter().map(DayProfile::total_kwh).sum()
    }
}

/// What the reader needs to know besides the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions<'a> {
    pub region: Region,
    pub dialect: &'a Dialect,
    /// The ORD's entity codes, when known (a config); `None` accepts any.
    pub expected_origin: Option<&'a str>,
    pub expected_destination: Option<&'a str>,
    /// The parsed file name, for the checks that tie name and content together.
    pub name: Option<&'a OrdFileName>,
}

impl<'a> ReadOptions<'a> {
    pub fn new(region: Region, dialect: &'a Dialect) -> ReadOptions<'a> {
        ReadOptions {
            region,
            dialect,
            expected_origin: None,
            expected_destination: None,
            name: None,
        }
    }
}

/// The outcome of reading: the file when it has no error, and every diagnostic found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub file: Option<SglFile>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn codes(&self) -> Vec<Code> {
        self.diagnostics.iter().map(|d| d.code).collect()
    }
}

#[cfg(test)]
mod tests;
