//! An ORD on `time_convention = "local-96"` (96 local labels every day) through the whole cycle:
//! its DST-day files are read, netted in UTC instants and answered in its convention, with both
//! passes of the autumn repeated hour in one label and nothing lost.

use crate::pipeline::{once, ord_summary};
use crate::support::write_all;

use std::fs;

use egme_ord_core::calendar::LabelConvention;
use egme_ord_core::demo;
use egme_ord_core::sgl::{self, Dialect, ReadOptions};
use rust_decimal::Decimal;

#[test]
fn a_local_96_ord_is_netted_across_the_autumn_dst_day_without_losing_a_quarter_hour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The last [[ord]] of the demo config is eem (Madeira, Lisbon's time zone).
    let config =
        demo::config_toml("20:00", "0s") + "\n[ord.dialect]\ntime_convention = \"local-96\"\n";
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(root, &demo::registry_files());
    let eem = demo::ords().into_iter().find(|o| o.name == "eem").unwrap();
    let mut files: Vec<_> = demo::first_delivery()
        .into_iter()
        .filter(|f| !f.path.starts_with("exchange/eem/"))
        .collect();
    let local_96 = Dialect {
        time_convention: LabelConvention::Local96,
        ..Dialect::default()
    };
    let cpe = eem.cpes[0];
    for (k, day) in demo::demo_days().into_iter().enumerate() {
        let profile = demo::ord_profile_in(eem.region, day, 0, 22, LabelConvention::Local96);
        assert_eq!(profile.readings.len(), 96);
        files.push(demo::ord_file_in(
            &eem,
            cpe,
            profile,
            (500 + k as u64, day.succ_opt().unwrap()),
            &local_96,
        ));
    }
    write_all(root, &files);
    let s = once(root, "2024-10-28T21:30:00Z");
    let sum = ord_summary(&s, "eem");
    assert_eq!(sum["errors"], serde_json::json!([]), "{s}");
    assert_eq!(
        sum["received"]["applied"], 2,
        "both local-96 files are read: {s}"
    );

    // What eem received: every file has 96 labels; per quarter-hour label, the 27th's mobility.
    let mut total = Decimal::ZERO;
    let mut day27 = vec![Decimal::ZERO; 96];
    for e in fs::read_dir(root.join("exchange/eem/to-ord")).unwrap() {
        let bytes = fs::read(e.unwrap().path()).unwrap();
        let r = sgl::read(&bytes, &ReadOptions::new(eem.region, &local_96));
        let f = r.file.unwrap_or_else(|| panic!("{:?}", r.diagnostics));
        for d in &f.days {
            assert_eq!(d.readings.len(), 96, "{}", d.day);
            if d.day == demo::demo_days()[1] {
                for (i, r) in d.readings.iter().enumerate() {
                    day27[i] += r.kwh;
                }
            }
        }
        total += f.total_kwh();
    }
    // The CPE's three sessions: 18.345 + 24.020 + 30.001 kWh, none lost in the folded hour.
    assert_eq!(total, Decimal::new(72_366, 3));
    // The night session (22:40 UTC on the 26th, 4 h at a steady rate) covers local 01:00–02:00
    // twice: each label of the repeated hour holds both passes, twice a label after it.
    let (folded, after) = (day27[4], day27[9]);
    assert!(after > Decimal::ZERO, "{day27:?}");
    assert!(
        (folded - after * Decimal::from(2)).abs() < Decimal::new(1, 2),
        "label 0115 = {folded}, label 0230 = {after}: {day27:?}"
    );
}
