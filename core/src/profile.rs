//! `DayProfile`: one CPE-day of quarter-hour energy readings (exact kWh + status), shared by codec and netting.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Status of a quarter-hour reading (field 5 of record `20`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ReadingStatus {
    /// `0`: a real reading.
    #[default]
    Real,
    /// `1`: missing, estimated.
    Estimated,
    /// `2`: missing, not estimated (value 0).
    Missing,
}

impl ReadingStatus {
    pub fn code(self) -> u8 {
        match self {
            ReadingStatus::Real => b'0',
            ReadingStatus::Estimated => b'1',
            ReadingStatus::Missing => b'2',
        }
    }

    pub fn from_code(code: &str) -> Option<ReadingStatus> {
        match code {
            "0" => Some(ReadingStatus::Real),
            "1" => Some(ReadingStatus::Estimated),
            "2" => Some(ReadingStatus::Missing),
            _ => None,
        }
    }
}

/// One quarter-hour: energy in kWh (exact) and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reading {
    pub kwh: Decimal,
    pub status: ReadingStatus,
}

/// A day of quarter-hour readings, index `i` being quarter-hour `i` of the day's `DayCalendar`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayProfile {
    pub day: NaiveDate,
    pub readings: Vec<Reading>,
}

impl DayProfile {
    /// A day of `len` real zero readings.
    pub fn zeros(day: NaiveDate, len: usize) -> DayProfile {
        DayProfile {
            day,
            readings: vec![Reading::default(); len],
        }
    }

    pub fn total_kwh(&self) -> Decimal {
        self.readings.iter().map(|r| r.kwh).sum()
    }

    /// Quarter-hours whose status is not `Real`.
    pub fn not_real_count(&self) -> usize {
        self.readings
            .iter()
            .filter(|r| r.status != ReadingStatus::Real)
            .count()
    }

    pub fn missing_count(&self) -> usize {
        self.readings
            .iter()
            .filter(|r| r.status == ReadingStatus::Missing)
            .count()
    }
}
