//! Quarter-hour mobility readings as CSV: `cpe,ceme,quarter_hour,kwh[,status]`, quarter_hour = RFC 3339 start.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

use super::ocpi::parse_time;
use super::{CemeId, MobilityRecord, Place, QuarterEnergy};
use crate::calendar::floor_to_quarter;
use crate::cpe::Cpe;

/// A CSV row that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: usize,
    pub reason: String,
}

/// Reads readings; `last_updated` orders versions (a later file's reading replaces an earlier one).
pub fn read_readings(
    text: &str,
    last_updated: DateTime<Utc>,
) -> (Vec<MobilityRecord>, Vec<RejectedRow>) {
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let row = raw.trim();
        if row.is_empty()
            || row.starts_with('#')
            || (line == 1 && row.to_ascii_lowercase().starts_with("cpe"))
        {
            continue;
        }
        match reading(row, last_updated) {
            Ok(r) => records.push(r),
            Err(reason) => rejected.push(RejectedRow { line, reason }),
        }
    }
    (records, rejected)
}

fn reading(row: &str, last_updated: DateTime<Utc>) -> Result<MobilityRecord, String> {
    let f: Vec<&str> = row.split(',').map(str::trim).collect();
    if !(4..=5).contains(&f.len()) {
        return Err(format!(
            "expected 4 or 5 fields (cpe,ceme,quarter_hour,kwh[,status]), found {}",
            f.len()
        ));
    }
    let cpe = Cpe::parse(f[0]).map_err(|e| e.to_string())?;
    let ceme =
        CemeId::parse(f[1]).ok_or_else(|| format!("CEME: expected CC-PPP, found {:?}", f[1]))?;
    let start = parse_time(f[2])
        .ok_or_else(|| format!("quarter_hour: expected an RFC 3339 time, found {:?}", f[2]))?;
    if floor_to_quarter(start) != start {
        return Err(format!(
            "quarter_hour {:?} is not the start of a quarter-hour",
            f[2]
        ));
    }
    let kwh = Decimal::from_str(f[3])
        .map_err(|_| format!("kwh: expected a decimal, found {:?}", f[3]))?;
    if kwh.is_sign_negative() && !kwh.is_zero() {
        return Err(format!("kwh: expected zero or more, found {kwh}"));
    }
    if let Some(status) = f.get(4) {
        if !matches!(*status, "0" | "1" | "2") {
            return Err(format!("status: expected 0, 1 or 2, found {status:?}"));
        }
    }
    Ok(MobilityRecord {
        key: format!("csv:{cpe}:{ceme}:{}", start.timestamp()),
        last_updated,
        place: Place::Cpe(cpe),
        ceme,
        credit_of: None,
        energy: vec![QuarterEnergy { start, kwh }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_rows_reported_by_line() {
        let now = parse_time("2024-01-02T00:00:00Z").unwrap();
        let text = "cpe,ceme,quarter_hour,kwh,status\nPT0002000123681633GX,PT-GAL,2024-01-01T10:15:00+00:00,1.250,0\nPT0002000123681633GX,PT-GAL,2024-01-01T10:20:00Z,1\nPT0002000099999999XX,PT-GAL,2024-01-01T10:15:00Z,1\n";
        let (ok, bad) = read_readings(text, now);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].total_kwh(), Decimal::from_str("1.250").unwrap());
        assert_eq!(bad.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4]);
        assert!(bad[1].reason.contains("check letters"));
    }
}
