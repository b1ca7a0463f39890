//! The netting report of one CPE-day as a typed row (pure): what its JSON carries and its CSV line, written by `csv`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::DayCalendar;
use crate::cpe::Cpe;
use crate::netting::NettingOutcome;

/// The CSV report's header line.
pub const CSV_HEADER: &str = "cpe,ord_transmission_id,ord_total_kwh,mobility_kwh,written_kwh,net_kwh,suppliers,anomalies,ord_missing_quarter_hours\n";

/// A quarter-hour where mobility was above the ORD's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnomalyRow {
    pub mobility_kwh: String,
    pub ord_kwh: String,
    /// The quarter-hour's label as the ORD writes it (e.g. `1515`).
    pub period: Option<String>,
    pub start: Option<DateTime<Utc>>,
}

/// One CPE-day of the netting report. Fields in the order the JSON has always had them
/// (alphabetical); quantities as exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpeDayReport {
    pub anomalies: Vec<AnomalyRow>,
    pub cpe: Cpe,
    pub mobility_kwh: String,
    pub net_kwh: Option<String>,
    pub ord_missing_quarter_hours: usize,
    pub ord_total_kwh: Option<String>,
    /// The ORD transmission in force for the CPE-day, if any.
    pub ord_transmission_id: Option<u64>,
    /// Energy written per supplier and tariff (`GALP/01`), those with any energy.
    pub suppliers: BTreeMap<String, String>,
    pub written_kwh: String,
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

impl CpeDayReport {
    /// The row of one netted CPE-day.
    pub fn new(
        cal: &DayCalendar,
        cpe: Cpe,
        ord_transmission_id: Option<u64>,
        o: &NettingOutcome,
    ) -> CpeDayReport {
        let mut suppliers: BTreeMap<String, Decimal> = BTreeMap::new();
        for (k, v) in &o.files {
            let total: Decimal = v.iter().copied().sum();
            if !total.is_zero() {
                *suppliers.entry(k.to_string()).or_default() += total;
            }
        }
        CpeDayReport {
            anomalies: o
                .anomalies
                .iter()
                .map(|a| AnomalyRow {
                    mobility_kwh: text(a.mobility_kwh),
                    ord_kwh: text(a.ord_kwh),
                    period: cal.quarter_hours.get(a.index).map(|q| q.label.to_string()),
                    start: cal.quarter_hours.get(a.index).map(|q| q.start),
                })
                .collect(),
            cpe,
            mobility_kwh: text(o.mobility_kwh),
            net_kwh: o
                .net_kwh
                .as_ref()
                .map(|n| text(n.iter().copied().sum::<Decimal>())),
            ord_missing_quarter_hours: o.ord_missing,
            ord_total_kwh: o.ord_total_kwh.map(text),
            ord_transmission_id,
            suppliers: suppliers.into_iter().map(|(k, v)| (k, text(v))).collect(),
            written_kwh: text(o.written_kwh),
        }
    }

    /// The row's CSV line (with its line end), under [`CSV_HEADER`]; suppliers in one cell as
    /// `GALP/01=2.5 MOBI/01=18.345`.
    pub fn csv_line(&self) -> String {
        let suppliers: Vec<String> = self
            .suppliers
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let record = [
            self.cpe.to_string(),
            self.ord_transmission_id
                .map(|v| v.to_string())
                .unwrap_or_default(),
            self.ord_total_kwh.clone().unwrap_or_default(),
            self.mobility_kwh.clone(),
            self.written_kwh.clone(),
            self.net_kwh.clone().unwrap_or_default(),
            suppliers.join(" "),
            self.anomalies.len().to_string(),
            self.ord_missing_quarter_hours.to_string(),
        ];
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        // Writing to memory cannot fail; an empty line would be the sign that it did.
        let _ = w.write_record(&record);
        let bytes = w.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(suppliers: &[(&str, &str)]) -> CpeDayReport {
        CpeDayReport {
            anomalies: Vec::new(),
            cpe: Cpe::parse("PT0002000123681633GX").unwrap(),
            mobility_kwh: "2.5".into(),
            net_kwh: None,
            ord_missing_quarter_hours: 96,
            ord_total_kwh: None,
            ord_transmission_id: None,
            suppliers: suppliers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            written_kwh: "2.5".into(),
        }
    }

    #[test]
    fn a_row_is_one_csv_line_and_a_cell_with_a_comma_is_quoted() {
        assert_eq!(
            row(&[("GALP/01", "2.5")]).csv_line(),
            "PT0002000123681633GX,,,2.5,2.5,,GALP/01=2.5,0,96\n"
        );
        assert_eq!(
            row(&[("A,B/01", "1")]).csv_line(),
            "PT0002000123681633GX,,,2.5,2.5,,\"A,B/01=1\",0,96\n"
        );
    }

    #[test]
    fn the_json_keeps_its_field_names_in_order() {
        let json = serde_json::to_string(&row(&[])).unwrap();
        assert!(
            json.starts_with(
                "{\"anomalies\":[],\"cpe\":\"PT0002000123681633GX\",\"mobility_kwh\":\"2.5\""
            ),
            "{json}"
        );
    }
}
