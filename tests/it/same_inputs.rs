//! The same inputs, the same files: twin workspaces fed the same sessions and the same registry
//! changes (back-dated EVSE and CPE moves) over a month of daily cycles, one losing its ledger
//! midway and another its whole `state/` and `work/`, each recovering, write byte-identical files
//! at every ORD in every cycle.

use crate::support::{run, text, write_all};

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use egme_ord_core::demo::{self, DemoFile};
use serde_json::{json, Value};

/// Daily cycles from 28 October 2024.
const CYCLES: i64 = 31;
/// The cycle before which the registry moves an EVSE to another CPE from four days earlier.
const EVSE_MOVE: i64 = 6;
/// The cycle before which the registry moves a CPE to another ORD from three days earlier.
const CPE_MOVE: i64 = 11;
/// The cycle before which the twin loses its ledger.
const LOSS: i64 = 14;

fn day(i: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 10, 28).unwrap() + Duration::days(i)
}

fn now(i: i64) -> String {
    format!("{}T21:30:00Z", day(i))
}

/// The sessions delivered before cycle `i`: one on the day before at each of two EVSEs (the one
/// the EVSE move concerns, and one of the CPE that changes ORD), each a little different.
fn sessions(i: i64) -> DemoFile {
    let e_redes = &demo::ords()[0];
    let at = |d: NaiveDate, h: u32| Utc.from_utc_datetime(&d.and_hms_opt(h, 0, 0).unwrap());
    let before = day(i) - Duration::days(1);
    let cdrs: Vec<Value> = [
        (demo::evse_id(&e_redes.cpes[0], 0), 13),
        (demo::evse_id(&e_redes.cpes[2], 0), 9),
    ]
    .iter()
    .enumerate()
    .map(|(k, (evse, hour))| {
        demo::cdr(
            &format!("TWIN-{i}-{k}"),
            ("PT", "GAL"),
            evse,
            at(before, *hour),
            45 + 15 * k as i64,
            4_000 + 250 * i + 1_000 * k as i64,
            at(day(i), 6),
        )
    })
    .collect();
    DemoFile {
        path: format!("mobility/cdrs-twin-{i:02}.json"),
        bytes: serde_json::to_vec(&json!(cdrs)).unwrap(),
    }
}

/// Rewrites the `key` rows of registry `file` (the first column) with `rows`, adding the date
/// columns when the file has none.
fn rewrite_rows(root: &Path, file: &str, key: &str, rows: &str) {
    let p = root.join("registry").join(file);
    let text = fs::read_to_string(&p).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let dated = header.contains("valid_from");
    let mut out = if dated {
        format!("{header}\n")
    } else {
        format!("{header},valid_from,valid_to\n")
    };
    let mut found = false;
    for line in lines {
        if line.split(',').next() == Some(key) {
            if !found {
                out.push_str(rows);
                found = true;
            }
        } else if dated {
            out.push_str(&format!("{line}\n"));
        } else {
            out.push_str(&format!("{line},,\n"));
        }
    }
    assert!(found, "{file} has no row for {key}: {text}");
    fs::write(&p, out).unwrap();
}

/// The registry changes made before cycle `i`, if any.
fn registry_change(root: &Path, i: i64) {
    let e_redes = &demo::ords()[0];
    if i == EVSE_MOVE {
        let evse = demo::evse_id(&e_redes.cpes[0], 0);
        let from = day(i) - Duration::days(4);
        rewrite_rows(
            root,
            "evses.csv",
            &evse,
            &format!(
                "{evse},{},,{from}\n{evse},{},{from},\n",
                e_redes.cpes[0], e_redes.cpes[1]
            ),
        );
    }
    if i == CPE_MOVE {
        let cpe = e_redes.cpes[2];
        let from = day(i) - Duration::days(3);
        rewrite_rows(
            root,
            "cpes.csv",
            &cpe.to_string(),
            &format!("{cpe},e-redes,,{from}\n{cpe},eem,{from},\n"),
        );
    }
}

/// Every file at the ORDs: `ord/name` → bytes.
fn at_ords(root: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::support::ord_side(root)
}

/// What a cycle added at the ORDs.
fn added(before: &BTreeMap<String, Vec<u8>>, root: &Path) -> BTreeMap<String, Vec<u8>> {
    at_ords(root)
        .into_iter()
        .filter(|(k, _)| !before.contains_key(k))
        .collect()
}

fn once(root: &Path, i: i64) -> (Option<i32>, String) {
    let o = run(root, &["once", "--json", "--now", &now(i)]);
    (o.status.code(), text(&o))
}

fn once_ok(root: &Path, i: i64) {
    let (code, out) = once(root, i);
    assert_eq!(code, Some(0), "cycle {i} ({}): {out}", now(i));
}

fn workspace() -> tempfile::TempDir {
    crate::pipeline::workspace()
}

/// Names of the files of `files` with the bytes, for a message.
fn shown(files: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    files.keys().map(String::as_str).collect()
}

#[test]
fn a_recovered_ledger_nets_as_the_live_one_through_back_dated_evse_and_cpe_moves() {
    let live = workspace();
    let twin = workspace();
    let bare = workspace();
    let (a, b, c) = (live.path(), twin.path(), bare.path());
    for i in 0..CYCLES {
        for root in [a, b, c] {
            write_all(root, &[sessions(i)]);
            registry_change(root, i);
        }
        if i == LOSS {
            for suffix in ["", "-wal", "-shm"] {
                let _ = fs::remove_file(b.join(format!("state/egme-ord.sqlite{suffix}")));
            }
            let (code, out) = once(b, i);
            assert_ne!(code, Some(0), "a lost ledger must be refused: {out}");
            let o = run(b, &["recover"]);
            assert!(o.status.success(), "recover: {}", text(&o));
            fs::remove_dir_all(c.join("state")).unwrap();
            fs::remove_dir_all(c.join("work")).unwrap();
            let (code, out) = once(c, i);
            assert_ne!(
                code,
                Some(0),
                "lost state/ and work/ must be refused: {out}"
            );
            // Without the outbox, recover says it cannot count what the ORDs took away and asks
            // for each ORD's last id: the ORDs answer (here: the highest id in their folders).
            let o = run(c, &["recover"]);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(text(&o).contains("--last-sent-id"), "{}", text(&o));
            let mut last: BTreeMap<String, u64> = BTreeMap::new();
            for (ord, id) in crate::support::names_by_id(c).into_keys() {
                let l = last.entry(ord).or_default();
                *l = (*l).max(id);
            }
            for (ord, id) in &last {
                let o = run(
                    c,
                    &["recover", "--ord", ord, "--last-sent-id", &id.to_string()],
                );
                assert!(o.status.success(), "recover --ord {ord}: {}", text(&o));
            }
        }
        let before = [at_ords(a), at_ords(b), at_ords(c)];
        once_ok(a, i);
        let new_a = added(&before[0], a);
        for (root, before, who) in [
            (b, &before[1], "ledger lost"),
            (c, &before[2], "state/ and work/ lost"),
        ] {
            once_ok(root, i);
            let new = added(before, root);
            assert_eq!(
                shown(&new_a),
                shown(&new),
                "cycle {i} ({}): the twin whose {who} wrote other files",
                now(i)
            );
            for (name, bytes) in &new_a {
                assert_eq!(
                    Some(bytes),
                    new.get(name),
                    "cycle {i}: {name} differs at the twin whose {who}"
                );
            }
        }
        if i == EVSE_MOVE || i == CPE_MOVE {
            // The sessions already sent move: their new CPE gets files in this very cycle.
            let cpes = &demo::ords()[0].cpes;
            let to = if i == EVSE_MOVE { cpes[1] } else { cpes[2] };
            assert!(
                new_a.keys().any(|k| k.contains(to.as_str())),
                "cycle {i}: the back-dated move must send for {to}: {:?}",
                shown(&new_a)
            );
        }
    }
    let moved = crate::support::events(a, "mobility-moved");
    assert!(
        moved.iter().any(|e| e.contains("eem")) && moved.iter().any(|e| e.contains("e-redes")),
        "{moved:?}"
    );
}
