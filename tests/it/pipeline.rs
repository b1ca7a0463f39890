//! The netting pipeline driven through the binary (`once --now`) on local folders: conservation,
//! versions, corrections, closing at D+30, late inputs, and crash safety.

use crate::support::{assert_idle, bin, write_all};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use egme_ord_core::demo::{self, DemoFile};
use egme_ord_core::filename::{Direction, OrdFileName};
use egme_ord_core::region::Region;
use egme_ord_core::sgl::{self, Dialect, ReadOptions};
use rust_decimal::Decimal;
use serde_json::Value;

pub(crate) fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("egme-ord.toml"),
        demo::config_toml("20:00", "0s"),
    )
    .unwrap();
    write_all(dir.path(), &demo::registry_files());
    write_all(dir.path(), &demo::first_delivery());
    dir
}

fn once_with(root: &Path, now: &str, crash_at: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", now]);
    if let Some(point) = crash_at {
        cmd.env("EGME_ORD_CRASH_AT", point);
    }
    cmd.output().unwrap()
}

pub(crate) fn once(root: &Path, now: &str) -> Value {
    let o = once_with(root, now, None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "once failed: {out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&out).unwrap()
}

pub(crate) fn ord_summary<'a>(s: &'a Value, ord: &str) -> &'a Value {
    s["ords"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ord"] == ord)
        .unwrap()
}

const FIRST: &str = "2024-10-28T21:30:00Z";
const SECOND: &str = "2024-10-29T21:30:00Z";

fn region_of(ord: &str) -> Region {
    match ord {
        "e-redes" => Region::Continent,
        "eda" => Region::Azores,
        _ => Region::Madeira,
    }
}

/// A file an ORD received: (name, header transmission id, previous id, CPE, day, kWh).
pub(crate) type Row = (String, u64, u64, String, String, Decimal);

/// Every file an ORD received, in transmission order.
pub(crate) fn received(root: &Path, ord: &str) -> Vec<Row> {
    let dir = root.join("exchange").join(ord).join("to-ord");
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "temporary file visible to the ORD: {name}"
        );
        let parsed = OrdFileName::parse(&name, region_of(ord), Direction::Outbound).unwrap();
        let dialect = Dialect::default();
        let r = sgl::read(
            &fs::read(&p).unwrap(),
            &ReadOptions::new(region_of(ord), &dialect),
        );
        let f = r
            .file
            .unwrap_or_else(|| panic!("{name}: {:?}", r.diagnostics));
        out.push((
            name,
            f.header.transmission_id,
            f.header.previous_transmission_id,
            parsed.cpe.to_string(),
            f.days[0].day.to_string(),
            f.total_kwh(),
        ));
    }
    out.sort_by_key(|r| r.1);
    out
}

fn assert_gap_free(files: &[Row]) {
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            f.1,
            i as u64 + 1,
            "transmission ids must run 1..N without gaps: {:?}",
            files.iter().map(|f| f.1).collect::<Vec<_>>()
        );
        assert_eq!(f.2, i as u64, "previous id of {}", f.0);
    }
}

#[test]
fn conservation_every_cpe_receives_exactly_its_sessions_energy_across_midnight_and_dst() {
    let ws = workspace();
    once(ws.path(), FIRST);
    // Each CPE k of ORD n had sessions of 18.345 + k, 24.020 and 30.001 kWh; the night one spans
    // midnight and the DST change of 27 October, so it is split between the two days.
    for (n, ord) in demo::ords().iter().enumerate() {
        let files = received(ws.path(), ord.name);
        assert_gap_free(&files);
        for (k, cpe) in ord.cpes.iter().enumerate() {
            let expected = Decimal::new(18_345 + 1_000 * k as i64 + 24_020 + 30_001, 3);
            let got: Decimal = files
                .iter()
                .filter(|f| f.3 == cpe.as_str())
                .map(|f| f.5)
                .sum();
            assert_eq!(got, expected, "ORD {n} CPE {cpe}");
            let days: BTreeSet<&str> = files
                .iter()
                .filter(|f| f.3 == cpe.as_str())
                .map(|f| f.4.as_str())
                .collect();
            assert_eq!(days, BTreeSet::from(["2024-10-26", "2024-10-27"]));
        }
    }
}

#[test]
fn conservation_per_cpe_and_day_the_reports_show_files_carrying_exactly_the_mobility() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let mut rows = 0;
    for path in walk(&ws.path().join("work/reports"))
        .iter()
        .filter(|p| p.ends_with(".json"))
    {
        let doc: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        for cpe in doc["cpes"].as_array().unwrap() {
            assert_eq!(cpe["mobility_kwh"], cpe["written_kwh"], "{path}: {cpe}");
            rows += 1;
        }
    }
    // Six CPEs, two days each.
    assert_eq!(rows, 12);
}

#[test]
fn every_file_the_pipeline_writes_passes_check() {
    let ws = workspace();
    once(ws.path(), FIRST);
    write_all(ws.path(), &demo::correction());
    once(ws.path(), SECOND);
    let o = bin()
        .arg("check")
        .arg("--direction")
        .arg("outbound")
        .args(["e-redes", "eda", "eem"].map(|o| ws.path().join("exchange").join(o).join("to-ord")))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let dst_files = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("100 periods"))
        .count();
    assert!(dst_files > 0);
}

#[test]
fn a_correction_sends_new_versions_only_for_changed_files_and_zeros_for_removed_consumption() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let before = received(ws.path(), "e-redes");
    write_all(ws.path(), &demo::correction());
    let s = once(ws.path(), SECOND);
    assert_eq!(ord_summary(&s, "e-redes")["files_written"], 2);
    assert_eq!(ord_summary(&s, "eda")["files_written"], 0);
    let after = received(ws.path(), "e-redes");
    assert_gap_free(&after);
    let new: Vec<_> = after.iter().skip(before.len()).collect();
    assert_eq!(new.len(), 2);
    // The credit removed PT-EDP's session at CPE 1 on the 26th: its tariff-03 file goes to zero.
    let cpe1 = demo::ords()[0].cpes[1].to_string();
    let zero = new.iter().find(|f| f.3 == cpe1).unwrap();
    assert!(zero.0.starts_with("000503PE"), "{}", zero.0);
    assert_eq!(zero.5, Decimal::ZERO);
    assert_eq!(zero.4, "2024-10-26");
    // The re-sent CDR raised CPE 0's session of the 27th from 24.020 to 26.500 kWh.
    let cpe0 = demo::ords()[0].cpes[0].to_string();
    let raised = new.iter().find(|f| f.3 == cpe0).unwrap();
    let old = before
        .iter()
        .rfind(|f| f.3 == cpe0 && f.4 == "2024-10-27" && f.0.starts_with("000201"))
        .unwrap();
    assert_eq!(raised.5 - old.5, Decimal::new(2_480, 3));
    // A third cycle with nothing new sends nothing.
    let s = once(ws.path(), "2024-10-30T21:30:00Z");
    assert_eq!(ord_summary(&s, "e-redes")["files_written"], 0);
}

#[test]
fn ord_versions_newer_supersedes_duplicate_is_a_no_op_stale_is_archived_not_applied() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let ord = &demo::ords()[0];
    let cpe = ord.cpes[0];
    let day = demo::demo_days()[1];
    // Newer: transmission 900 for CPE 0 on the 27th.
    write_all(ws.path(), &demo::correction());
    let s = once(ws.path(), SECOND);
    assert_eq!(ord_summary(&s, "e-redes")["received"]["applied"], 1);
    // Duplicate: the same bytes again under another name.
    let newer = demo::correction().pop().unwrap();
    let dup_path = newer.path.replace("_900", "_901");
    write_all(
        ws.path(),
        &[DemoFile {
            path: dup_path,
            bytes: newer.bytes.clone(),
        }],
    );
    // Stale: transmission 50 for the same CPE-day, older than the 900 held.
    let stale = demo::ord_file(ord, cpe, demo::ord_profile(ord.region, day, 0, 5), 50, day);
    write_all(ws.path(), &[stale]);
    let s = once(ws.path(), "2024-10-30T21:30:00Z");
    let r = &ord_summary(&s, "e-redes")["received"];
    assert_eq!(
        (
            r["duplicate"].as_u64(),
            r["stale"].as_u64(),
            r.get("applied")
        ),
        (Some(1), Some(1), None),
        "{s}"
    );
    // The version in force is still 900, and the stale file is archived.
    let v = status_json(ws.path());
    let d27 = v[0]["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["day"] == "2024-10-27")
        .unwrap();
    assert_eq!(d27["latest_ord_transmission"], 900);
    let archived = archived(&ws.path().join("work/archive/e-redes"));
    assert!(
        archived.keys().any(|name| name.contains("_050.sgl")),
        "{:?}",
        archived.keys()
    );
}

#[test]
fn a_day_closes_after_its_d_plus_30_send_late_inputs_are_reported_and_nothing_more_is_sent() {
    let ws = workspace();
    once(ws.path(), FIRST);
    // D+30 of 26 October is 25 November: that send closes the 26th (a replay that jumps 28 days,
    // past the clock guard's step).
    let o = bin()
        .args([
            "once",
            "--json",
            "--allow-clock-jump",
            "--now",
            "2024-11-25T21:30:00Z",
            "--config",
        ])
        .arg(ws.path().join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ord_summary(&s, "e-redes")["days_closed"], 1);
    let sent_before = received(ws.path(), "e-redes").len();
    // A late CDR for the 26th and a late ORD file for it.
    let ord = &demo::ords()[0];
    let late_cdr = demo::cdr(
        "LATE-1",
        ("PT", "GAL"),
        &demo::evse_id(&ord.cpes[0], 0),
        "2024-10-26T10:00:00Z".parse().unwrap(),
        60,
        7_000,
        "2024-11-26T00:00:00Z".parse().unwrap(),
    );
    write_all(
        ws.path(),
        &[DemoFile {
            path: "mobility/late.json".into(),
            bytes: serde_json::to_vec(&late_cdr).unwrap(),
        }],
    );
    let day = demo::demo_days()[0];
    write_all(
        ws.path(),
        &[demo::ord_file(
            ord,
            ord.cpes[0],
            demo::ord_profile(ord.region, day, 0, 1),
            950,
            "2024-11-26".parse().unwrap(),
        )],
    );
    let s = once(ws.path(), "2024-11-26T21:30:00Z");
    assert_eq!(s["mobility"]["records_late"], 1, "{s}");
    assert_eq!(ord_summary(&s, "e-redes")["received"]["late"], 1, "{s}");
    assert_eq!(
        received(ws.path(), "e-redes").len(),
        sent_before,
        "nothing may be sent for a closed day"
    );
    let v = status_json(ws.path());
    let states: BTreeMap<String, String> = v[0]["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states.get("2024-10-26").map(String::as_str), Some("closed"));
    assert_eq!(states.get("2024-10-27").map(String::as_str), Some("closed"));
    // The late ORD file is counted for its day and for the ORD (status and the cycle's summary,
    // which feeds the `ord_files_late` gauge).
    assert_eq!(v[0]["late_ord_files"], 1, "{v}");
    let late: BTreeMap<String, u64> = v[0]["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap().to_string(),
                d["late_ord_files"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(late.get("2024-10-26"), Some(&1), "{v}");
    assert_eq!(late.get("2024-10-27"), Some(&0), "{v}");
    assert_eq!(ord_summary(&s, "e-redes")["ord_files_late"], 1, "{s}");
}

#[test]
fn a_crash_at_any_point_then_a_rerun_loses_nothing_and_sends_nothing_twice() {
    let clean = workspace();
    once(clean.path(), FIRST);
    let expected: BTreeMap<&str, Vec<Row>> = ["e-redes", "eda", "eem"]
        .into_iter()
        .map(|o| (o, received(clean.path(), o)))
        .collect();
    for point in [
        "after-intake-archive",
        "after-outbox-write",
        "before-delivery",
        "after-delivery-put",
    ] {
        let ws = workspace();
        let crashed = once_with(ws.path(), FIRST, Some(point));
        assert_eq!(
            crashed.status.code(),
            None,
            "{point}: the process must have been killed"
        );
        once(ws.path(), FIRST);
        for (ord, want) in &expected {
            let got = received(ws.path(), ord);
            assert_gap_free(&got);
            let strip = |v: &Vec<Row>| {
                v.iter()
                    .map(|f| (f.3.clone(), f.4.clone(), f.5))
                    .collect::<BTreeSet<_>>()
            };
            assert_eq!(got.len(), want.len(), "{point}/{ord}: file count");
            assert_eq!(strip(&got), strip(want), "{point}/{ord}: content");
        }
        // Running again changes nothing.
        let s = once(ws.path(), FIRST);
        assert_idle(&s, point);
    }
}

#[test]
fn demo_command_builds_a_workspace_and_refuses_a_non_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("egme-demo");
    let o = bin().arg("demo").arg(&target).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("new version after the correction"), "{out}");
    // Every warning the demo logs is one its summary explains.
    let logged: std::collections::BTreeSet<String> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap();
            line["kind"].as_str().unwrap_or("(no kind)").to_string()
        })
        .collect();
    assert!(
        !logged.is_empty(),
        "the demo shows warnings and their reasons"
    );
    let explained = out
        .split("why the demo's data gives them:")
        .nth(1)
        .unwrap_or("");
    for kind in &logged {
        assert!(
            explained.contains(&format!("  {kind}: "))
                && !explained.contains("not one the demo should give"),
            "warning {kind} logged by the demo, not explained:\n{out}"
        );
    }
    assert!(
        target
            .join("exchange/eda/to-ord")
            .read_dir()
            .unwrap()
            .count()
            > 0
    );
    let again = bin().arg("demo").arg(&target).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
}

fn status_json(root: &Path) -> Value {
    let o = bin()
        .args(["status", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every file under `dir`, at every depth, by path.
pub(crate) fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The files kept under `dir`, by name: the members of its tar packs and the files of their own.
fn archived(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut kept = BTreeMap::new();
    for path in walk(dir) {
        let p = Path::new(&path);
        if egme_ord_core::ledger::is_pack_name(&path) {
            for m in egme_ord::pack::pack_members(p).unwrap() {
                kept.insert(m.name, m.bytes);
            }
        } else {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            kept.insert(name, fs::read(p).unwrap());
        }
    }
    kept
}

/// Changes one byte of the member `name` (whose bytes are `original`) inside whichever of `packs`
/// holds it, as if someone edited it (decompressed, changed, compressed again: a valid zstd stream,
/// without a seek table); returns that pack.
fn flip_a_byte_of<P: AsRef<Path>>(packs: &[P], name: &str, original: &[u8]) -> PathBuf {
    let pack = packs
        .iter()
        .map(|p| p.as_ref())
        .find(|p| {
            egme_ord::pack::pack_members(p)
                .unwrap()
                .iter()
                .any(|m| m.name == name)
        })
        .unwrap()
        .to_path_buf();
    let mut tar = zstd::stream::decode_all(&fs::read(&pack).unwrap()[..]).unwrap();
    let at = tar
        .windows(original.len())
        .position(|w| w == original)
        .unwrap();
    tar[at + 10] ^= 1;
    fs::write(&pack, zstd::stream::encode_all(&tar[..], 3).unwrap()).unwrap();
    pack
}

#[test]
fn the_archive_keeps_the_received_bytes_in_tar_packs_and_verify_catches_a_changed_pack() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let archive = ws.path().join("work/archive/e-redes");
    let packs: Vec<String> = walk(&archive);
    assert!(
        !packs.is_empty()
            && packs
                .iter()
                .all(|p| p.ends_with(".tar.zst") && p.contains("/pack-")),
        "{packs:?}"
    );
    // The packs hold exactly the files the ORD put out, byte for byte (all of them are valid).
    let received: BTreeMap<String, Vec<u8>> =
        fs::read_dir(ws.path().join("exchange/e-redes/from-ord"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).unwrap())
            })
            .collect();
    assert!(!received.is_empty());
    assert_eq!(archived(&archive), received);
    let (code, report) = verify_json(ws.path());
    assert_eq!(
        (code, &report["errors"]),
        (Some(0), &Value::from(0)),
        "{report}"
    );

    // One byte changed inside a received file's bytes in its pack.
    let (name, original) = received.iter().next().unwrap();
    let pack = flip_a_byte_of(&packs, name, original);
    let (code, report) = verify_json(ws.path());
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.to_string().contains(&format!(
            "{name}: the kept copy {} (at byte",
            pack.display()
        )),
        "{report}"
    );
}

#[test]
fn a_daemon_serving_one_ord_skips_the_other_ords_records_instead_of_quarantining_them() {
    let ws = workspace();
    let config = fs::read_to_string(ws.path().join("egme-ord.toml")).unwrap();
    // Keep only the E-Redes section; the islands are served by other instances.
    let cut = config.find("\n[[ord]]\nname = \"eda\"").unwrap();
    let config = config[..cut].replace(
        "tariff_overrides = \"registry/tariff_overrides.csv\"",
        "tariff_overrides = \"registry/tariff_overrides.csv\"\nother_ords = [\"eda\", \"eem\"]",
    );
    fs::write(ws.path().join("egme-ord.toml"), config).unwrap();
    let s = once(ws.path(), FIRST);
    assert_eq!(s["ords"].as_array().unwrap().len(), 1);
    assert_eq!(s["mobility"]["records_other_ord"], 9, "{s}");
    assert_eq!(s["mobility"]["records_applied"], 9, "{s}");
    // Only the unknown EVSE is quarantined.
    assert_eq!(s["mobility"]["records_rejected"], 1, "{s}");
    assert_eq!(received(ws.path(), "e-redes").len(), 40);
}

fn verify_json(root: &Path) -> (Option<i32>, Value) {
    let o = bin()
        .args(["verify", "--json", "--no-remote", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap())
}

#[test]
fn the_outbox_keeps_the_sent_bytes_in_tar_packs_and_verify_catches_a_changed_or_missing_pack() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let outbox = ws.path().join("work/outbox/e-redes");
    // Beside the packs, only the fence's hidden high-water mark and its record of the send folder.
    assert!(outbox.join(".high-water-mark").is_file());
    assert!(outbox.join(".send-folder-seen").is_file());
    let packs: Vec<PathBuf> = fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name() != Some(".high-water-mark".as_ref())
                && p.file_name() != Some(".send-folder-seen".as_ref())
        })
        .collect();
    assert!(!packs.is_empty());
    let mut kept = BTreeMap::new();
    for p in &packs {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("pack-") && name.ends_with(".tar.zst"),
            "{name}"
        );
        kept.extend(
            egme_ord::pack::pack_members(p)
                .unwrap()
                .into_iter()
                .map(|m| (m.name, m.bytes)),
        );
    }
    // The packs hold exactly the files the ORD received, byte for byte.
    let sent: BTreeMap<String, Vec<u8>> = fs::read_dir(ws.path().join("exchange/e-redes/to-ord"))
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, fs::read(e.path()).unwrap())
        })
        .collect();
    assert_eq!(kept, sent);
    // `tar --zstd` extracts the very bytes that were sent.
    let extracted = tempfile::tempdir().unwrap();
    for p in &packs {
        let status = std::process::Command::new("tar")
            .args(["--zstd", "-xf"])
            .arg(p)
            .arg("-C")
            .arg(extracted.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar --zstd -xf {}", p.display());
    }
    for (name, bytes) in &sent {
        assert_eq!(
            &fs::read(extracted.path().join(name)).unwrap(),
            bytes,
            "{name}"
        );
    }
    let (code, report) = verify_json(ws.path());
    assert_eq!(
        (code, &report["errors"]),
        (Some(0), &Value::from(0)),
        "{report}"
    );

    // One byte changed inside a sent file's bytes in its pack.
    let (first_name, first_bytes) = kept.iter().next().unwrap();
    let as_written: Vec<(PathBuf, Vec<u8>)> = packs
        .iter()
        .map(|p| (p.to_path_buf(), fs::read(p).unwrap()))
        .collect();
    let pack = flip_a_byte_of(&packs, first_name, first_bytes);
    let (code, report) = verify_json(ws.path());
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report
            .to_string()
            .contains(&format!("{first_name}: the outbox copy differs")),
        "{report}"
    );

    let assert_missing = || {
        let (code, report) = verify_json(ws.path());
        assert_eq!(code, Some(1), "{report}");
        assert!(
            report.to_string().contains(&format!(
                "{first_name}: recorded as written but missing from the outbox"
            )),
            "{report}"
        );
    };

    // One byte of the compressed pack changed: its frame no longer decompresses, and each of its
    // files is missing (none is read back as other bytes).
    let compressed = &as_written.iter().find(|(p, _)| *p == pack).unwrap().1;
    let mut frames = compressed.clone();
    frames[compressed.len() / 2] ^= 0x10;
    fs::write(&pack, &frames).unwrap();
    assert_missing();

    // The pack gone: each of its files is missing.
    fs::remove_file(pack).unwrap();
    assert_missing();
}

/// The third day: a new session on the 29th and a corrected one of the 26th.
fn third_day() -> Vec<DemoFile> {
    let at = |d, h| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 10, d, h, 0, 0).unwrap();
    let cpe = demo::ords()[0].cpes[2];
    let new = demo::cdr(
        "S-29-X",
        ("PT", "MOB"),
        &demo::evse_id(&cpe, 0),
        at(29, 9),
        90,
        12_000,
        at(30, 6),
    );
    let fixed = demo::cdr(
        "S-02-A",
        ("PT", "MOB"),
        &demo::evse_id(&cpe, 0),
        at(26, 14),
        95,
        21_000,
        at(30, 6),
    );
    vec![DemoFile {
        path: "mobility/cdrs-2024-10-30.json".into(),
        bytes: serde_json::to_vec(&serde_json::json!([new, fixed])).unwrap(),
    }]
}

#[test]
fn incremental_netting_and_renet_all_send_byte_identical_files() {
    let run = |renet_all: bool| {
        let ws = workspace();
        let mut netted = Vec::new();
        let cycles: [(&str, Vec<DemoFile>); 3] = [
            (FIRST, Vec::new()),
            (SECOND, demo::correction()),
            ("2024-10-30T21:30:00Z", third_day()),
        ];
        for (now, inputs) in cycles {
            write_all(ws.path(), &inputs);
            let mut cmd = bin();
            cmd.args(["once", "--json", "--now", now, "--config"])
                .arg(ws.path().join("egme-ord.toml"));
            if renet_all {
                cmd.arg("--renet-all");
            }
            let o = cmd.output().unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let s: Value = serde_json::from_slice(&o.stdout).unwrap();
            netted.push(
                ord_summary(&s, "e-redes")["cpe_days_netted"]
                    .as_u64()
                    .unwrap(),
            );
        }
        (crate::support::ord_side(ws.path()), netted, ws)
    };
    let (incremental, inc_netted, _a) = run(false);
    let (whole, whole_netted, _b) = run(true);
    assert_eq!(
        incremental.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (k, bytes) in &incremental {
        assert_eq!(bytes, &whole[k], "{k}: byte for byte");
    }
    // The first send nets everything either way; later ones net only what changed.
    assert_eq!(inc_netted[0], whole_netted[0]);
    assert!(
        inc_netted[1] < whole_netted[1] && inc_netted[2] < whole_netted[2],
        "incremental {inc_netted:?} vs whole {whole_netted:?}"
    );
}
