//! The netting engine: ORD total vs mobility per quarter-hour, anomalies, and the rounded per-supplier files.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::apportion::{from_units, round_to_target, to_units};
use crate::filename::TariffCycle;
use crate::profile::{DayProfile, ReadingStatus};
use crate::registry::SupplierKey;

/// What to do when mobility exceeds the ORD's total in a quarter-hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NettingPolicy {
    /// Report the anomaly; send the mobility as measured (the default).
    #[default]
    Report,
    /// Report it and cap the mobility at the ORD's total.
    Cap,
}

/// Which tariff files a supplier gets per CPE and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TariffFiles {
    /// All four codes, the unassigned ones with zeros (the rule: "at least 4 files daily").
    #[default]
    AllFour,
    /// Only the assigned code.
    AssignedOnly,
}

/// Mobility above the ORD's total in one quarter-hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub index: usize,
    pub ord_kwh: Decimal,
    pub mobility_kwh: Decimal,
}

/// Everything the engine needs for one CPE-day.
#[derive(Debug, Clone)]
pub struct NettingInput<'a> {
    pub quarter_hours: usize,
    pub ord_total: Option<&'a DayProfile>,
    /// Exact kWh per quarter-hour, per supplier key (vectors of length `quarter_hours`).
    pub mobility: &'a BTreeMap<SupplierKey, Vec<Decimal>>,
    /// Keys sent a file for this CPE-day before (so a correction to zero is sent).
    pub previously_sent: &'a BTreeSet<SupplierKey>,
    pub policy: NettingPolicy,
    pub tolerance_kwh: Decimal,
    /// kWh of one unit of the last written digit (0.00025 for POTENCIA with 3 decimals).
    pub unit_kwh: Decimal,
    pub tariff_files: TariffFiles,
}

/// The outcome for one CPE-day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NettingOutcome {
    /// Per file: rounded kWh per quarter-hour, each a whole number of units.
    pub files: BTreeMap<SupplierKey, Vec<Decimal>>,
    pub anomalies: Vec<Anomaly>,
    /// ORD total − mobility per quarter-hour (after capping), when the ORD's profile is known.
    pub net_kwh: Option<Vec<Decimal>>,
    pub ord_total_kwh: Option<Decimal>,
    /// Exact mobility of the inputs (after capping).
    pub mobility_kwh: Decimal,
    /// What the files carry in all.
    pub written_kwh: Decimal,
    /// Quarter-hours the ORD marked missing (status 2).
    pub ord_missing: usize,
}

/// Per supplier key, kWh per quarter-hour.
type BySupplier = BTreeMap<SupplierKey, Vec<Decimal>>;

/// Nets one CPE-day. Pure; never panics on mismatched lengths (they are padded or cut).
pub fn net(input: &NettingInput<'_>) -> NettingOutcome {
    let n = input.quarter_hours;
    let mut mobility: BySupplier = input
        .mobility
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            v.resize(n, Decimal::ZERO);
            (k.clone(), v)
        })
        .collect();
    let (anomalies, ord_missing) = check_against_total(input, &mut mobility);
    let rounded = round_to_units(&mobility, n, input.unit_kwh);
    let files = files_of(input, &rounded, n);
    let mobility_kwh: Decimal = mobility.values().flatten().copied().sum();
    let written_kwh: Decimal = files.values().flatten().copied().sum();
    let net_kwh = input.ord_total.map(|ord| {
        (0..n)
            .map(|q| ord.readings.get(q).map_or(Decimal::ZERO, |r| r.kwh) - total_at(&mobility, q))
            .collect()
    });
    NettingOutcome {
        files,
        anomalies,
        net_kwh,
        ord_total_kwh: input.ord_total.map(DayProfile::total_kwh),
        mobility_kwh,
        written_kwh,
        ord_missing,
    }
}

/// All suppliers' mobility in quarter-hour `q`.
fn total_at(m: &BySupplier, q: usize) -> Decimal {
    m.values().map(|v| v[q]).sum()
}

/// Mobility above the ORD's total (beyond the tolerance) is an anomaly; under `cap` it is scaled
/// down to the total. Returns the anomalies and the quarter-hours the ORD marked missing.
fn check_against_total(
    input: &NettingInput<'_>,
    mobility: &mut BySupplier,
) -> (Vec<Anomaly>, usize) {
    let mut anomalies = Vec::new();
    let mut ord_missing = 0;
    let Some(ord) = input.ord_total else {
        return (anomalies, ord_missing);
    };
    for q in 0..input.quarter_hours.min(ord.readings.len()) {
        let reading = ord.readings[q];
        if reading.status == ReadingStatus::Missing {
            ord_missing += 1;
            continue;
        }
        let m = total_at(mobility, q);
        if m > reading.kwh + input.tolerance_kwh {
            anomalies.push(Anomaly {
                index: q,
                ord_kwh: reading.kwh,
                mobility_kwh: m,
            });
            if input.policy == NettingPolicy::Cap && !m.is_zero() {
                for v in mobility.values_mut() {
                    v[q] = v[q] * reading.kwh / m;
                }
            }
        }
    }
    (anomalies, ord_missing)
}

/// Rounds to whole `unit`s: the day's per-quarter-hour totals so the day's total is kept, then each
/// quarter-hour's total split among the suppliers (largest remainder both times).
fn round_to_units(mobility: &BySupplier, n: usize, unit: Decimal) -> BySupplier {
    let per_q: Vec<Decimal> = (0..n).map(|q| total_at(mobility, q) / unit).collect();
    let day_target = to_units(per_q.iter().copied().sum::<Decimal>(), Decimal::ONE);
    let rounded_q = round_to_target(&per_q, day_target);
    let keys: Vec<&SupplierKey> = mobility.keys().collect();
    let mut rounded: BySupplier = keys
        .iter()
        .map(|k| ((*k).clone(), vec![Decimal::ZERO; n]))
        .collect();
    for (q, &target) in rounded_q.iter().enumerate() {
        let shares: Vec<Decimal> = keys.iter().map(|k| mobility[*k][q] / unit).collect();
        for (k, units) in keys.iter().zip(round_to_target(&shares, target)) {
            if let Some(v) = rounded.get_mut(*k) {
                v[q] = from_units(units, unit);
            }
        }
    }
    rounded
}

/// The files: every supplier with mobility or sent before; all four tariff codes when configured.
fn files_of(input: &NettingInput<'_>, rounded: &BySupplier, n: usize) -> BySupplier {
    let mut files = BySupplier::new();
    let known = || rounded.keys().chain(input.previously_sent.iter());
    let codes: BTreeSet<&str> = known().map(|k| k.code.as_str()).collect();
    for code in codes {
        let tariffs: Vec<TariffCycle> = match input.tariff_files {
            TariffFiles::AllFour => TariffCycle::ALL.to_vec(),
            TariffFiles::AssignedOnly => known()
                .filter(|k| k.code == code)
                .map(|k| k.tariff)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        for tariff in tariffs {
            let key = SupplierKey {
                code: code.to_string(),
                tariff,
            };
            let values = rounded
                .get(&key)
                .cloned()
                .unwrap_or_else(|| vec![Decimal::ZERO; n]);
            files.insert(key, values);
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Reading;
    use chrono::NaiveDate;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn key(code: &str, t: TariffCycle) -> SupplierKey {
        SupplierKey {
            code: code.into(),
            tariff: t,
        }
    }

    fn input<'a>(
        m: &'a BTreeMap<SupplierKey, Vec<Decimal>>,
        prev: &'a BTreeSet<SupplierKey>,
        ord: Option<&'a DayProfile>,
        policy: NettingPolicy,
    ) -> NettingInput<'a> {
        NettingInput {
            quarter_hours: 4,
            ord_total: ord,
            mobility: m,
            previously_sent: prev,
            policy,
            tolerance_kwh: d("0.001"),
            unit_kwh: d("0.00025"),
            tariff_files: TariffFiles::AllFour,
        }
    }

    fn ord(values: &[&str]) -> DayProfile {
        DayProfile {
            day: NaiveDate::from_ymd_opt(2024, 7, 5).unwrap(),
            readings: values
                .iter()
                .map(|v| Reading {
                    kwh: d(v),
                    status: ReadingStatus::Real,
                })
                .collect(),
        }
    }

    #[test]
    fn four_tariff_files_per_supplier_with_the_consumption_in_the_assigned_one() {
        let m = BTreeMap::from([(
            key("02", TariffCycle::BiHourlyDaily),
            vec![d("1"), d("0.5"), d("0"), d("0")],
        )]);
        let prev = BTreeSet::new();
        let out = net(&input(&m, &prev, None, NettingPolicy::Report));
        assert_eq!(out.files.len(), 4);
        assert_eq!(out.files[&key("02", TariffCycle::BiHourlyDaily)][0], d("1"));
        assert_eq!(
            out.files[&key("02", TariffCycle::TriHourlyWeekly)],
            vec![Decimal::ZERO; 4]
        );
        assert_eq!(out.written_kwh, d("1.5"));
    }

    #[test]
    fn mobility_above_the_total_is_an_anomaly_reported_and_capped_only_under_cap() {
        let m = BTreeMap::from([(
            key("02", TariffCycle::BiHourlyDaily),
            vec![d("2"), d("0"), d("0"), d("0")],
        )]);
        let prev = BTreeSet::new();
        let o = ord(&["1.5", "1", "1", "1"]);
        let out = net(&input(&m, &prev, Some(&o), NettingPolicy::Report));
        assert_eq!(
            out.anomalies,
            vec![Anomaly {
                index: 0,
                ord_kwh: d("1.5"),
                mobility_kwh: d("2")
            }]
        );
        assert_eq!(out.written_kwh, d("2"));
        assert_eq!(out.net_kwh.as_ref().unwrap()[0], d("-0.5"));
        let capped = net(&input(&m, &prev, Some(&o), NettingPolicy::Cap));
        assert_eq!(capped.written_kwh, d("1.5"));
        assert_eq!(capped.net_kwh.unwrap()[0], d("0"));
    }

    #[test]
    fn a_supplier_sent_before_gets_zero_files() {
        let m = BTreeMap::new();
        let prev = BTreeSet::from([key("07", TariffCycle::BiHourlyDaily)]);
        let out = net(&input(&m, &prev, None, NettingPolicy::Report));
        assert_eq!(out.files.len(), 4);
        assert!(out.files.values().flatten().all(|v| v.is_zero()));
    }

    proptest! {
        #[test]
        fn rounding_keeps_the_days_total_and_each_quarter_hours_split(
            a in prop::collection::vec(0u32..10_000_000, 4),
            b in prop::collection::vec(0u32..10_000_000, 4),
        ) {
            // Values with 6 decimals: finer than the 0.00025 kWh unit.
            let va: Vec<Decimal> = a.iter().map(|&x| Decimal::new(i64::from(x), 6)).collect();
            let vb: Vec<Decimal> = b.iter().map(|&x| Decimal::new(i64::from(x), 6)).collect();
            let m = BTreeMap::from([(key("01", TariffCycle::BiHourlyDaily), va.clone()), (key("02", TariffCycle::TriHourlyDaily), vb.clone())]);
            let prev = BTreeSet::new();
            let out = net(&input(&m, &prev, None, NettingPolicy::Report));
            let exact: Decimal = va.iter().chain(&vb).copied().sum();
            let unit = d("0.00025");
            // The files carry the exact total rounded to the unit, every value a whole number of units.
            prop_assert_eq!(out.written_kwh, from_units(to_units(exact, unit), unit));
            for v in out.files.values().flatten() {
                prop_assert!((*v % unit).is_zero());
            }
            for q in 0..4 {
                let exact_q = va[q] + vb[q];
                let written_q: Decimal = out.files.values().map(|v| v[q]).sum();
                prop_assert!((written_q - exact_q).abs() < unit);
            }
        }
    }
}
