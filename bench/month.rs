//! Month benchmark data, one day at a time: `bench-month N OUT_DIR DAY` writes day DAY's ORD files
//! (N mainland CPEs, one file each), its CDRs (2–3 sessions per CPE) and corrections of 5 % of the
//! CPEs' sessions of earlier days (a newer `last_updated`, 1 kWh more); DAY 0 also writes the
//! registry and `OUT_DIR/egme-ord.toml` (local folders `remote/from-ord`, `remote/to-ord`, or the
//! receive and send endpoints given as 4th and 5th arguments, TOML inline tables).
//! Day 0 is Monday 4 November 2024.

use std::fs;
use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use egme_ord_core::demo::{self, DemoOrd};
use egme_ord_core::region::Region;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out), Some(idx)) = (
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
        args.get(2),
        args.get(3).and_then(|s| s.parse::<i64>().ok()),
    ) else {
        return Err("usage: bench-month N OUT_DIR DAY [RECEIVE SEND]".into());
    };
    let out = Path::new(out);
    let first = NaiveDate::from_ymd_opt(2024, 11, 4).ok_or("date")?;
    let day = first + Duration::days(idx);
    let generated = day + Duration::days(1);
    let updated = Utc.from_utc_datetime(&generated.and_hms_opt(6, 0, 0).ok_or("time")?);
    let cpes: Vec<_> = (0..n)
        .filter_map(|i| egme_ord_core::cpe::Cpe::from_parts(2, 600_000_000 + i))
        .collect();
    let ord = DemoOrd {
        name: "e-redes",
        region: Region::Continent,
        entity: "EDIS",
        cpes: cpes.clone(),
    };
    const CEMES: [(&str, &str); 3] = [("PT", "GAL"), ("PT", "EDP"), ("PT", "MOB")];
    let sessions = |k: usize| 2 + (k % 2); // 2.5 a day on average
    let cdr_of = |d: i64, k: usize, c: usize, extra_kwh: i64, updated| {
        let day = first + Duration::days(d);
        let start = Utc.from_utc_datetime(&day.and_hms_opt(8, 0, 0).unwrap_or_default())
            + Duration::minutes(((k * 13 + c * 211) % 600) as i64);
        let minutes = 30 + ((k + c * 31) % 150) as i64;
        let milli = minutes * 7_000 / 60 + (k % 1000) as i64 + extra_kwh * 1000;
        demo::cdr(
            &format!("M-{d}-{k}-{c}"),
            CEMES[(k + c) % 3],
            &demo::evse_id(&cpes[k], c),
            start,
            minutes,
            milli,
            updated,
        )
    };
    fs::create_dir_all(out.join("remote/from-ord"))?;
    fs::create_dir_all(out.join("remote/to-ord"))?;
    fs::create_dir_all(out.join("mobility"))?;
    let mut cdrs = Vec::new();
    for (k, cpe) in cpes.iter().enumerate() {
        let profile = demo::ord_profile(Region::Continent, day, k as u64 + idx as u64, 22);
        let tid = idx as u64 * n + k as u64 + 1;
        let file = demo::ord_file(&ord, *cpe, profile, tid, generated);
        let name = file.path.rsplit('/').next().unwrap_or_default().to_string();
        fs::write(out.join("remote/from-ord").join(name), file.bytes)?;
        for c in 0..sessions(k) {
            cdrs.push(cdr_of(idx, k, c, 0, updated));
        }
        // 5 % of the CPEs: one session of an earlier open day corrected.
        if idx > 0 && (k as i64 * 7 + idx * 13) % 20 == 0 {
            let back = 1 + (k as i64 % idx.min(29));
            cdrs.push(cdr_of(idx - back, k, 0, 1, updated));
        }
    }
    let envelope = serde_json::json!({ "data": cdrs, "status_code": 1000 });
    fs::write(
        out.join("mobility").join(format!("cdrs-{day}.json")),
        envelope.to_string(),
    )?;
    if idx == 0 {
        let mut cpes_csv = String::from("cpe,ord\n");
        let mut evses_csv = String::from("evse,cpe\n");
        for (k, cpe) in cpes.iter().enumerate() {
            cpes_csv.push_str(&format!("{cpe},e-redes\n"));
            for c in 0..sessions(k) {
                evses_csv.push_str(&format!("{},{cpe}\n", demo::evse_id(cpe, c)));
            }
        }
        fs::create_dir_all(out.join("registry"))?;
        fs::write(out.join("registry/cpes.csv"), cpes_csv)?;
        fs::write(out.join("registry/evses.csv"), evses_csv)?;
        fs::write(
            out.join("registry/cemes.csv"),
            "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\nPT-EDP,05,EDPC,02\nPT-MOB,07,MOBI,01\n",
        )?;
        fs::write(
            out.join("registry/tariff_overrides.csv"),
            "cpe,ceme,tariff_cycle\n",
        )?;
        fs::write(
            out.join("egme-ord.toml"),
            demo::at_scale_config(
                args.get(4).map_or(
                    "{ transport = \"local\", path = \"remote/from-ord\" }",
                    String::as_str,
                ),
                args.get(5).map_or(
                    "{ transport = \"local\", path = \"remote/to-ord\" }",
                    String::as_str,
                ),
            ),
        )?;
    }
    println!("{day}: {n} ORD files, {} CDRs", cdrs.len());
    Ok(())
}
