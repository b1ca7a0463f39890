//! A dated registry: a mapping changed from some day applies from that day on; the days before it
//! keep the mapping that was in force, and nothing already sent for them goes out again.

use crate::pipeline::{once, ord_summary, received, workspace, Row};
use crate::support::write_all;

use std::fs;
use std::path::Path;

use chrono::{TimeZone, Utc};
use egme_ord_core::demo::{self, DemoFile};
use rust_decimal::Decimal;
use serde_json::json;

const FIRST: &str = "2024-10-28T21:30:00Z";
/// The D+1 send of 29 October.
const LATER: &str = "2024-10-30T21:30:00Z";

/// A PT-GAL session of 10 kWh on 29 October at `evse`, delivered on the 30th.
fn session_on_the_29th(evse: &str) -> DemoFile {
    let at = |d, h| Utc.with_ymd_and_hms(2024, 10, d, h, 0, 0).unwrap();
    let cdr = demo::cdr(
        "S-29",
        ("PT", "GAL"),
        evse,
        at(29, 14),
        60,
        10_000,
        at(30, 6),
    );
    DemoFile {
        path: "mobility/cdrs-2024-10-30.json".into(),
        bytes: serde_json::to_vec(&json!([cdr])).unwrap(),
    }
}

fn replace_in(root: &Path, file: &str, from: &str, to: &str) {
    let p = root.join("registry").join(file);
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{file}: {text}");
    fs::write(&p, text.replace(from, to)).unwrap();
}

/// The files of `day` received by e-redes.
fn of_day<'a>(files: &'a [Row], day: &str) -> Vec<&'a Row> {
    files.iter().filter(|f| f.4 == day).collect()
}

/// The first cycle sends 26–27 October; after the registry change the send of the 29th resends
/// nothing for them. Returns the e-redes files of the 29th and the later cycle's summary.
fn change_then_send(change: impl FnOnce(&Path), evse: &str) -> (Vec<Row>, String) {
    let ws = workspace();
    once(ws.path(), FIRST);
    let before = received(ws.path(), "e-redes");
    assert!(!before.is_empty());
    change(ws.path());
    write_all(ws.path(), &[session_on_the_29th(evse)]);
    let s = once(ws.path(), LATER);
    let after = received(ws.path(), "e-redes");
    for day in ["2024-10-26", "2024-10-27"] {
        assert_eq!(
            of_day(&after, day),
            of_day(&before, day),
            "nothing more may go out for {day}: its mapping did not change"
        );
    }
    let day29 = of_day(&after, "2024-10-29").into_iter().cloned().collect();
    assert_eq!(ord_summary(&s, "e-redes")["errors"], json!([]), "{s}");
    // What the intake refused, with its reasons.
    let mut rejected = String::new();
    if let Ok(dir) = fs::read_dir(ws.path().join("work/quarantine/mobility")) {
        for e in dir {
            rejected.push_str(&fs::read_to_string(e.unwrap().path()).unwrap_or_default());
        }
    }
    (day29, rejected)
}

#[test]
fn a_tariff_change_from_a_date_applies_from_that_day_and_resends_nothing_before_it() {
    let cpe0 = demo::ords()[0].cpes[0].to_string();
    let (day29, _) = change_then_send(
        |root| {
            replace_in(
                root,
                "cemes.csv",
                "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\n",
                "ceme,cse_code,island_code,tariff_cycle,valid_from,valid_to\nPT-GAL,02,GALP,01,,2024-10-29\nPT-GAL,02,GALP,03,2024-10-29,\n",
            );
            // The other rows gain empty dates (open-ended).
            replace_in(
                root,
                "cemes.csv",
                "PT-EDP,05,EDPC,02\n",
                "PT-EDP,05,EDPC,02,,\n",
            );
            replace_in(
                root,
                "cemes.csv",
                "PT-MOB,07,MOBI,01\n",
                "PT-MOB,07,MOBI,01,,\n",
            );
        },
        &demo::evse_id(&demo::ords()[0].cpes[0], 0),
    );
    let gal: Vec<_> = day29.iter().filter(|f| f.3 == cpe0).collect();
    let t03: Vec<_> = gal.iter().filter(|f| f.0.starts_with("000203")).collect();
    assert_eq!(t03.len(), 1, "{day29:?}");
    assert_eq!(t03[0].5, Decimal::new(10, 0));
    assert!(
        gal.iter()
            .filter(|f| f.0.starts_with("000201"))
            .all(|f| f.5.is_zero()),
        "the tariff-01 file of the 29th is absent or zero: {day29:?}"
    );
}

#[test]
fn an_evse_moved_to_another_cpe_from_a_date_counts_there_from_that_day() {
    let [cpe0, cpe1, _] = <[_; 3]>::try_from(demo::ords()[0].cpes.clone()).unwrap();
    let evse = demo::evse_id(&cpe0, 0);
    let (day29, _) = change_then_send(
        |root| {
            replace_in(
                root,
                "evses.csv",
                "evse,cpe\n",
                "evse,cpe,valid_from,valid_to\n",
            );
            let text = fs::read_to_string(root.join("registry/evses.csv")).unwrap();
            let mut out = String::new();
            for line in text.lines() {
                if line.starts_with(&format!("{evse},")) {
                    out.push_str(&format!(
                        "{evse},{cpe0},,2024-10-29\n{evse},{cpe1},2024-10-29,\n"
                    ));
                } else if line.starts_with("evse,") {
                    out.push_str(&format!("{line}\n"));
                } else {
                    out.push_str(&format!("{line},,\n"));
                }
            }
            fs::write(root.join("registry/evses.csv"), out).unwrap();
        },
        &evse,
    );
    let at = |cpe: &egme_ord_core::cpe::Cpe| -> Decimal {
        day29
            .iter()
            .filter(|f| f.3 == cpe.to_string())
            .map(|f| f.5)
            .sum()
    };
    assert_eq!(at(&cpe1), Decimal::new(10, 0), "{day29:?}");
    assert_eq!(at(&cpe0), Decimal::ZERO, "{day29:?}");
}

#[test]
fn a_cpe_that_leaves_on_a_date_is_not_netted_from_that_day() {
    let cpe0 = demo::ords()[0].cpes[0];
    let (day29, rejected) = change_then_send(
        |root| {
            replace_in(
                root,
                "cpes.csv",
                "cpe,ord\n",
                "cpe,ord,valid_from,valid_to\n",
            );
            let text = fs::read_to_string(root.join("registry/cpes.csv")).unwrap();
            let mut out = String::new();
            for line in text.lines() {
                if line.starts_with("cpe,") {
                    out.push_str(&format!("{line}\n"));
                } else if line.starts_with(cpe0.as_str()) {
                    out.push_str(&format!("{line},,2024-10-29\n"));
                } else {
                    out.push_str(&format!("{line},,\n"));
                }
            }
            fs::write(root.join("registry/cpes.csv"), out).unwrap();
        },
        &demo::evse_id(&cpe0, 0),
    );
    assert!(
        day29.iter().all(|f| f.3 != cpe0.to_string()),
        "no file for a CPE that left: {day29:?}"
    );
    // Its session of the 29th is refused with the reason, not netted.
    assert!(
        rejected.lines().any(|l| l.contains("S-29")
            && l.contains("not mapped to a CPE listed in the registry on the session's day")),
        "{rejected}"
    );
}

#[test]
fn a_cpe_that_leaves_after_its_sessions_arrived_is_not_netted_on_the_days_it_is_gone() {
    let cpe0 = demo::ords()[0].cpes[0];
    let ws = workspace();
    once(ws.path(), FIRST);
    // The session of the 29th arrives (and is mapped) before the registry says the CPE left.
    write_all(ws.path(), &[session_on_the_29th(&demo::evse_id(&cpe0, 0))]);
    once(ws.path(), "2024-10-29T21:30:00Z");
    let p = ws.path().join("registry/cpes.csv");
    let text = fs::read_to_string(&p).unwrap();
    let mut out = String::from("cpe,ord,valid_from,valid_to\n");
    for line in text.lines().skip(1) {
        let to = if line.starts_with(cpe0.as_str()) {
            "2024-10-29"
        } else {
            ""
        };
        out.push_str(&format!("{line},,{to}\n"));
    }
    fs::write(&p, out).unwrap();
    once(ws.path(), LATER);
    let after = received(ws.path(), "e-redes");
    assert!(
        of_day(&after, "2024-10-29")
            .iter()
            .all(|f| f.3 != cpe0.to_string()),
        "{after:?}"
    );
    let events = crate::support::bin()
        .args([
            "events",
            "--json",
            "--kind",
            "unmapped-mobility",
            "--config",
        ])
        .arg(ws.path().join("egme-ord.toml"))
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(
        events
            .lines()
            .any(|l| l.contains("S-29") && l.contains("not registered for e-redes on 2024-10-29")),
        "{events}"
    );
}
