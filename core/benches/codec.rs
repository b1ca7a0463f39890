//! Criterion benchmarks of the codec: parse + validate of a 96-period file and a 31-day file.

// Benchmarks run on fixed inputs they build themselves: a panic there is a broken benchmark.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use egme_ord_core::region::Region;
use egme_ord_core::sgl::{self, Dialect, ReadOptions};

const DAY_FILE: &[u8] =
    include_bytes!("../../fixtures/valid/171234PEPT0002000123681633GX_20210706_693.sgl");
const MONTH_FILE: &[u8] =
    include_bytes!("../../fixtures/valid/3PEPT0002000123681633GX_20240201_3.sgl");

fn parse_validate(c: &mut Criterion) {
    let dialect = Dialect::default();
    let options = ReadOptions::new(Region::Continent, &dialect);
    let mut group = c.benchmark_group("parse_validate");
    for (name, bytes) in [("96_periods", DAY_FILE), ("31_days", MONTH_FILE)] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let report = sgl::read(black_box(bytes), &options);
                assert!(report.file.is_some());
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_validate);
criterion_main!(benches);
