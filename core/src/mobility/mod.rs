//! Mobility consumption: charging sessions (OCPI CDRs, quarter-hour CSV) allocated to quarter-hours in exact kWh.

pub mod csv;
pub mod ocpi;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::apportion;
use crate::calendar::{floor_to_quarter, QUARTER_MINUTES};
use crate::cpe::Cpe;

/// The kinds of file the mobility inbox takes, known by their names' extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MobilityInput {
    /// `.json`: OCPI 2.2.1 CDRs, each with the CPO's version stamp (`last_updated`).
    OcpiCdrs,
    /// `.csv`: quarter-hour readings, whose rows carry no update time (the file's mtime stands
    /// for it).
    QuarterHourReadings,
}

impl MobilityInput {
    /// The kind of a file by its name; `None`: not an input the inbox takes.
    pub fn of_name(name: &str) -> Option<MobilityInput> {
        if name.ends_with(".json") {
            Some(MobilityInput::OcpiCdrs)
        } else if name.ends_with(".csv") {
            Some(MobilityInput::QuarterHourReadings)
        } else {
            None
        }
    }
}

/// A mobility supplier (CEME, an OCPI eMSP), written `CC-PPP` (country + party id), upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CemeId(String);

impl CemeId {
    /// From an OCPI country code and party id.
    pub fn new(country: &str, party: &str) -> Option<CemeId> {
        let ok = country.len() == 2
            && country.bytes().all(|b| b.is_ascii_alphabetic())
            && party.len() == 3
            && party.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| {
            CemeId(format!(
                "{}-{}",
                country.to_ascii_uppercase(),
                party.to_ascii_uppercase()
            ))
        })
    }

    /// From `CC-PPP`, `CCPPP` or `CC*PPP`.
    pub fn parse(text: &str) -> Option<CemeId> {
        let compact: String = text.chars().filter(|c| !matches!(c, '-' | '*')).collect();
        if compact.len() != 5 || !compact.is_ascii() {
            return None;
        }
        CemeId::new(&compact[..2], &compact[2..])
    }

    /// From an eMAID contract id (`PT-GAL-C12345678-X`, `DE8ACC12E46L89`): its country + provider prefix.
    pub fn from_contract_id(contract_id: &str) -> Option<CemeId> {
        let compact: String = contract_id
            .chars()
            .filter(|c| !matches!(c, '-' | '*'))
            .take(5)
            .collect();
        CemeId::parse(&compact)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CemeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Energy of one quarter-hour, identified by its UTC start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterEnergy {
    pub start: DateTime<Utc>,
    pub kwh: Decimal,
}

/// Where a session happened: an EVSE (mapped to its CPE by the registry) or directly a CPE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    Evse {
        evse_id: Option<String>,
        evse_uid: Option<String>,
    },
    Cpe(Cpe),
}

/// One mobility input, allocated to quarter-hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MobilityRecord {
    /// `cdr:<id>` or `csv:<cpe>:<ceme>:<quarter-hour>`: the same key means the same session.
    pub key: String,
    pub last_updated: DateTime<Utc>,
    pub place: Place,
    pub ceme: CemeId,
    /// A credit CDR: the key of the record it reverses (its own energy is not used).
    pub credit_of: Option<String>,
    pub energy: Vec<QuarterEnergy>,
}

impl MobilityRecord {
    pub fn total_kwh(&self) -> Decimal {
        self.energy.iter().map(|q| q.kwh).sum()
    }
}

/// A stretch of time carrying a weight (energy or duration) to be spread uniformly over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub weight: Decimal,
}

/// The allocation quantum for `total`: `preferred` when it divides `total`, else `total`'s last decimal.
pub fn quantum_for(total: Decimal, preferred: Decimal) -> Decimal {
    if !preferred.is_zero() && (total % preferred).is_zero() {
        preferred
    } else {
        Decimal::new(1, total.scale().max(1))
    }
}

/// Spreads `total_kwh` over the quarter-hours the segments cover, each segment's weight uniformly in
/// time, in multiples of `quantum`. The result adds up to `total_kwh` exactly (sorted, zeros left out).
pub fn allocate(
    total_kwh: Decimal,
    segments: &[Segment],
    preferred_quantum: Decimal,
) -> Vec<QuarterEnergy> {
    let quantum = quantum_for(total_kwh, preferred_quantum);
    let mut weights: BTreeMap<DateTime<Utc>, Decimal> = BTreeMap::new();
    let step = Duration::minutes(QUARTER_MINUTES);
    for seg in segments {
        let span = (seg.end - seg.start).num_milliseconds();
        if span <= 0 {
            *weights.entry(floor_to_quarter(seg.start)).or_default() += seg.weight;
            continue;
        }
        let mut qh = floor_to_quarter(seg.start);
        while qh < seg.end {
            let from = qh.max(seg.start);
            let to = (qh + step).min(seg.end);
            let overlap = (to - from).num_milliseconds();
            if overlap > 0 {
                let share = seg.weight * Decimal::from(overlap) / Decimal::from(span);
                *weights.entry(qh).or_default() += share;
            }
            qh += step;
        }
    }
    if weights.is_empty() {
        return Vec::new();
    }
    let starts: Vec<DateTime<Utc>> = weights.keys().copied().collect();
    let w: Vec<Decimal> = weights.values().copied().collect();
    let units = apportion::to_units(total_kwh, quantum);
    apportion::apportion(units, &w)
        .into_iter()
        .zip(starts)
        .filter(|(u, _)| *u != 0)
        .map(|(u, start)| QuarterEnergy {
            start,
            kwh: apportion::from_units(u, quantum),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_session_is_spread_uniformly_and_conserved() {
        let seg = Segment {
            start: t("2024-07-05T10:05:00Z"),
            end: t("2024-07-05T10:35:00Z"),
            weight: Decimal::ONE,
        };
        let out = allocate(
            Decimal::from_str("3.000").unwrap(),
            &[seg],
            Decimal::from_str("0.00025").unwrap(),
        );
        let kwh: Vec<String> = out.iter().map(|q| q.kwh.normalize().to_string()).collect();
        assert_eq!(kwh, ["1", "1.5", "0.5"]);
        assert_eq!(out[0].start, t("2024-07-05T10:00:00Z"));
    }

    #[test]
    fn awkward_thirds_still_add_up_exactly() {
        let seg = Segment {
            start: t("2024-07-05T10:00:00Z"),
            end: t("2024-07-05T10:45:00Z"),
            weight: Decimal::ONE,
        };
        let out = allocate(
            Decimal::from_str("1.001").unwrap(),
            &[seg],
            Decimal::from_str("0.00025").unwrap(),
        );
        let total: Decimal = out.iter().map(|q| q.kwh).sum();
        assert_eq!(total, Decimal::from_str("1.001").unwrap());
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn ceme_ids_from_party_and_contract() {
        assert_eq!(CemeId::new("pt", "gal").unwrap().as_str(), "PT-GAL");
        assert_eq!(
            CemeId::from_contract_id("DE8ACC12E46L89").unwrap().as_str(),
            "DE-8AC"
        );
        assert_eq!(
            CemeId::from_contract_id("PT-EDP-C12345678-X")
                .unwrap()
                .as_str(),
            "PT-EDP"
        );
        assert!(CemeId::parse("P").is_none());
    }

    proptest! {
        #[test]
        fn allocation_conserves_energy_exactly(
            start in 0i64..100_000_000,
            lengths in prop::collection::vec((0i64..20_000, 0u32..50_000), 1..6),
            total_milli in 0i64..500_000,
        ) {
            let mut at = DateTime::from_timestamp(1_700_000_000 + start, 0).unwrap();
            let mut segs = Vec::new();
            for (len, w) in lengths {
                let end = at + Duration::seconds(len);
                segs.push(Segment { start: at, end, weight: Decimal::from(w) });
                at = end;
            }
            let total = Decimal::new(total_milli, 3);
            let out = allocate(total, &segs, Decimal::new(25, 5));
            let sum: Decimal = out.iter().map(|q| q.kwh).sum();
            prop_assert_eq!(sum, total);
        }
    }
}
