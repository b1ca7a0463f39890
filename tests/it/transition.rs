//! The end of the EGME's role (Decreto-Lei 93/2025: 31 December 2026), rehearsed on the demo's
//! dates as docs/OPERATIONS.md ("The transition") tells an operator to do it: every CPE's registry
//! row ended on a date, the D+30 tail after it, then the deployment wound down.

use crate::pipeline::{once, ord_summary, received, workspace};
use crate::support::{events, run, text, write_all};

use std::fs;
use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use egme_ord_core::demo::{self, DemoFile};
use serde_json::{json, Value};

/// The `valid_to` every CPE row gets: the first day the CPEs are off (`31 December` → 1 January).
const END: &str = "2024-10-30";
/// The last day in force.
const LAST: &str = "2024-10-29";

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A session at the demo's first E-Redes CPE, `kwh_milli` on `on` at 14:00 UTC, stamped `stamp`.
fn session(id: &str, on: NaiveDate, kwh_milli: i64, stamp: NaiveDate, file: &str) -> DemoFile {
    let at = |d: NaiveDate, h: u32| Utc.from_utc_datetime(&d.and_hms_opt(h, 0, 0).unwrap());
    let cpe = demo::ords()[0].cpes[0];
    let cdr = demo::cdr(
        id,
        ("PT", "GAL"),
        &demo::evse_id(&cpe, 0),
        at(on, 14),
        60,
        kwh_milli,
        at(stamp, 6),
    );
    DemoFile {
        path: format!("mobility/{file}"),
        bytes: serde_json::to_vec(&json!([cdr])).unwrap(),
    }
}

/// Ends every CPE row of the registry on `END` (the rows gain the date columns).
fn end_every_cpe(root: &Path) {
    let p = root.join("registry/cpes.csv");
    let text = fs::read_to_string(&p).unwrap();
    let mut out = String::from("cpe,ord,valid_from,valid_to\n");
    for line in text.lines().skip(1) {
        out.push_str(&format!("{line},,{END}\n"));
    }
    fs::write(&p, out).unwrap();
}

fn cycle(root: &Path, on: NaiveDate) -> Value {
    once(root, &format!("{on}T21:30:00Z"))
}

fn written(s: &Value) -> u64 {
    ["e-redes", "eda", "eem"]
        .iter()
        .map(|o| ord_summary(s, o)["files_written"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn cpes_taken_off_on_a_date_keep_their_d_plus_30_tail_then_the_deployment_winds_down() {
    let ws = workspace();
    let root = ws.path();
    cycle(root, day("2024-10-28"));
    // The operator ends every CPE's row (validate-config accepts it), then reloads.
    end_every_cpe(root);
    let o = run(root, &["validate-config", "--no-environment"]);
    assert!(o.status.success(), "{}", text(&o));
    // A session on the last day in force, one the day after (not the EGME's any more).
    write_all(
        root,
        &[
            session("S-LAST", day(LAST), 12_000, day("2024-10-30"), "a.json"),
            session("S-AFTER", day(END), 7_000, day("2024-10-31"), "b.json"),
        ],
    );
    let tail_end = day(LAST) + Duration::days(30);
    let mut on = day("2024-10-29");
    let mut correction_sent_at = None;
    while on <= tail_end + Duration::days(3) {
        if on == day("2024-11-20") {
            // Inside the tail: the CPO corrects the last day's session.
            write_all(root, &[session("S-LAST", day(LAST), 9_500, on, "c.json")]);
        }
        if on == tail_end + Duration::days(2) {
            // After the tail: the same correction again, too late.
            write_all(root, &[session("S-LAST", day(LAST), 8_000, on, "d.json")]);
        }
        let before = received(root, "e-redes").len();
        let s = cycle(root, on);
        let new: Vec<_> = received(root, "e-redes").split_off(before);
        if on == day("2024-11-20") {
            assert!(
                new.iter().any(|f| f.4 == LAST),
                "the tail's correction of {LAST} must be sent on {on}: {new:?}"
            );
            correction_sent_at = Some(on);
        }
        if on > tail_end {
            assert_eq!(
                written(&s),
                0,
                "nothing is written after the tail ({on}): {s}"
            );
        }
        on += Duration::days(1);
    }
    assert!(correction_sent_at.is_some());
    // Nothing was ever sent for a day the CPEs were off.
    for ord in ["e-redes", "eda", "eem"] {
        let after: Vec<_> = received(root, ord)
            .into_iter()
            .filter(|f| day(&f.4) >= day(END))
            .collect();
        assert!(
            after.is_empty(),
            "{ord}: files for days after the end: {after:?}"
        );
    }
    // The session after the end is refused at intake with its reason, never netted.
    let mut quarantined = String::new();
    for e in fs::read_dir(root.join("work/quarantine/mobility")).unwrap() {
        quarantined.push_str(&fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    assert!(
        quarantined.contains(
            "cdr:S-AFTER: EVSE (evse_id PT*MOB*E0123681633*1, evse_uid uid-PT*MOB*E0123681633*1) \
             is not mapped to a CPE listed in the registry on the session's day"
        ),
        "{quarantined}"
    );
    assert!(
        events(root, "late-mobility")
            .iter()
            .any(|e| e.contains("S-LAST")),
        "the correction after the tail is said, not sent"
    );
    // Every day is closed: the deployment has nothing left to do and can be wound down.
    let o = run(root, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    for ord in status.as_array().unwrap() {
        for d in ord["days"].as_array().unwrap() {
            assert_eq!(d["state"], "closed", "{}: {d}", ord["ord"]);
        }
    }
    let o = run(root, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    let dest = root.join("final-backup").display().to_string();
    let o = run(root, &["backup", &dest]);
    assert!(o.status.success(), "the final backup: {}", text(&o));
}
