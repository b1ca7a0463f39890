//! Criterion benchmarks of the pipeline's pure core: CDR reading + allocation, and netting of a CPE-day.

// Benchmarks run on fixed inputs they build themselves: a panic there is a broken benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egme_ord_core::demo;
use egme_ord_core::filename::TariffCycle;
use egme_ord_core::mobility::ocpi::read_cdrs;
use egme_ord_core::netting::{net, NettingInput, NettingPolicy, TariffFiles};
use egme_ord_core::region::Region;
use egme_ord_core::registry::SupplierKey;
use rust_decimal::Decimal;

fn cdr_allocation(c: &mut Criterion) {
    // 1,000 sessions of 20 min to 5 h with hourly ENERGY periods, as one OCPI envelope.
    let start = Utc
        .with_ymd_and_hms(2024, 10, 26, 6, 0, 0)
        .single()
        .unwrap();
    let cdrs: Vec<serde_json::Value> = (0..1000i64)
        .map(|i| {
            demo::cdr(
                &format!("B-{i}"),
                ("PT", "GAL"),
                "PT*MOB*E1*1",
                start + Duration::minutes(i * 7 % 900),
                20 + i % 280,
                5_000 + i * 37,
                start,
            )
        })
        .collect();
    let bytes =
        serde_json::to_vec(&serde_json::json!({ "data": cdrs, "status_code": 1000 })).unwrap();
    let mut group = c.benchmark_group("mobility");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("read_and_allocate_1000_cdrs", |b| {
        b.iter(|| {
            let batch = read_cdrs(black_box(&bytes), Decimal::new(25, 5)).unwrap();
            assert_eq!(batch.records.len(), 1000);
            batch
        })
    });
    group.finish();
}

fn netting(c: &mut Criterion) {
    let day = demo::demo_days()[1];
    let ord = demo::ord_profile(Region::Continent, day, 3, 22);
    let n = ord.readings.len();
    // Three suppliers with mobility in every quarter-hour, values finer than the output unit.
    let mobility: BTreeMap<SupplierKey, Vec<Decimal>> = [
        ("02", TariffCycle::BiHourlyDaily),
        ("05", TariffCycle::TriHourlyDaily),
        ("07", TariffCycle::BiHourlyDaily),
    ]
    .iter()
    .enumerate()
    .map(|(k, (code, t))| {
        (
            SupplierKey {
                code: code.to_string(),
                tariff: *t,
            },
            (0..n)
                .map(|i| Decimal::new(((i * 7919 + k * 104_729) % 900_000) as i64, 6))
                .collect(),
        )
    })
    .collect();
    let previously_sent = BTreeSet::new();
    let input = NettingInput {
        quarter_hours: n,
        ord_total: Some(&ord),
        mobility: &mobility,
        previously_sent: &previously_sent,
        policy: NettingPolicy::Report,
        tolerance_kwh: Decimal::new(1, 3),
        unit_kwh: Decimal::new(25, 5),
        tariff_files: TariffFiles::AllFour,
    };
    let mut group = c.benchmark_group("netting");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cpe_day_3_suppliers_100_quarter_hours", |b| {
        b.iter(|| net(black_box(&input)))
    });
    group.finish();
}

criterion_group!(benches, cdr_allocation, netting);
criterion_main!(benches);
