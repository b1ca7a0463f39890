//! Benchmark data: N mainland CPEs for one day (ORD files), 1–3 CEMEs each with OCPI CDRs, and the registry.
//!
//! `cargo run --release --example bench-generate -- N OUT_DIR` writes:
//! `OUT_DIR/remote/from-ord/` (N ORD files), `OUT_DIR/mobility/cdrs.json`, `OUT_DIR/registry/*.csv`.
//! The day is Monday 4 November 2024 (96 quarter-hours); the files are dated the 5th.

use std::fs;
use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use egme_ord::cpe::Cpe;
use egme_ord::demo::{self, DemoOrd};
use egme_ord::region::Region;
use serde_json::json;

const CEMES: [(&str, &str); 3] = [("PT", "GAL"), ("PT", "EDP"), ("PT", "MOB")];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        return Err("usage: bench-generate N OUT_DIR".into());
    };
    let out = Path::new(out);
    let day = NaiveDate::from_ymd_opt(2024, 11, 4).ok_or("day")?;
    let generated = NaiveDate::from_ymd_opt(2024, 11, 5).ok_or("day")?;
    let updated = Utc
        .with_ymd_and_hms(2024, 11, 5, 6, 0, 0)
        .single()
        .ok_or("time")?;
    let cpes: Vec<Cpe> = (0..n)
        .filter_map(|i| Cpe::from_parts(2, 600_000_000 + i))
        .collect();
    let ord = DemoOrd {
        name: "e-redes",
        region: Region::Continent,
        entity: "EDIS",
        cpes: cpes.clone(),
    };
    let inbox = out.join("remote/from-ord");
    fs::create_dir_all(&inbox)?;
    fs::create_dir_all(out.join("remote/to-ord"))?;
    fs::create_dir_all(out.join("mobility"))?;
    fs::create_dir_all(out.join("registry"))?;
    let mut cpes_csv = String::from("cpe,ord\n");
    let mut evses_csv = String::from("evse,cpe\n");
    let mut cdrs = Vec::new();
    let mut outputs = 0u64;
    for (k, cpe) in cpes.iter().enumerate() {
        let profile = demo::ord_profile(Region::Continent, day, k as u64, 22);
        let file = demo::ord_file(&ord, *cpe, profile, k as u64 + 1, generated);
        let name = file.path.rsplit('/').next().ok_or("name")?;
        fs::write(inbox.join(name), &file.bytes)?;
        cpes_csv.push_str(&format!("{cpe},e-redes\n"));
        let cemes = 1 + (k * 7 + k / 3) % 3;
        outputs += 4 * cemes as u64;
        for c in 0..cemes {
            let evse = demo::evse_id(cpe, c);
            evses_csv.push_str(&format!("{evse},{cpe}\n"));
            let start = Utc
                .with_ymd_and_hms(2024, 11, 4, 13, 0, 0)
                .single()
                .ok_or("time")?
                + Duration::minutes(((k * 13 + c * 47) % 120) as i64);
            let minutes = 45 + ((k + c * 31) % 120) as i64;
            let milli_kwh = minutes * 7_000 / 60 + (k % 1000) as i64;
            cdrs.push(demo::cdr(
                &format!("B-{k}-{c}"),
                CEMES[(k + c) % 3],
                &evse,
                start,
                minutes,
                milli_kwh,
                updated,
            ));
        }
    }
    fs::write(
        out.join("mobility/cdrs.json"),
        serde_json::to_vec(&json!({ "data": cdrs, "status_code": 1000 }))?,
    )?;
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
    println!(
        "{n} ORD files, {} CDRs, {outputs} expected outputs",
        cdrs.len()
    );
    Ok(())
}
