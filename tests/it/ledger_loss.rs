//! Our own state failing: the ledger deleted, truncated, replaced by an older copy, shared with a
//! second store, deleted under a running daemon, damaged by flipped bytes. In every case no
//! transmission id reaches an ORD under two names, no outbox pack is overwritten, the cycle that
//! must refuse says why and names `recover`; after `recover` a cycle without new input sends
//! nothing, a changed CDR sends exactly what an undamaged twin sends, and `verify` is clean.

use crate::support::sshd::Sshd;
use crate::support::{
    assert_no_id_twice, bin, names_by_id, run, sftp_workspace, text, write_all, Rng,
};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use egme_ord_core::demo;
use egme_ord_core::filename::{Direction, OrdFileName};
use serde_json::Value;

const FIRST: &str = "2024-10-28T21:30:00Z";
const SECOND: &str = "2024-10-29T21:30:00Z";
const THIRD: &str = "2024-10-30T21:30:00Z";
const FOURTH: &str = "2024-10-31T21:30:00Z";

/// Where the ORDs' folders are.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Local,
    Sftp,
}

struct Ws {
    _tmp: tempfile::TempDir,
    _server: Option<Sshd>,
    root: PathBuf,
}

fn workspace(transport: Transport) -> Ws {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    fs::create_dir_all(&root).unwrap();
    let server = match transport {
        Transport::Local => {
            fs::write(root.join("egme-ord.toml"), demo::config_toml("20:00", "0s")).unwrap();
            write_all(&root, &demo::registry_files());
            None
        }
        Transport::Sftp => {
            let server = Sshd::start(&tmp.path().join("sshd"));
            sftp_workspace(&root, &server, &server, "0s");
            assert!(
                fs::read_to_string(root.join("egme-ord.toml"))
                    .unwrap()
                    .contains("transport = \"sftp\""),
                "the SFTP workspace must reach its ORD folders over SFTP"
            );
            Some(server)
        }
    };
    write_all(&root, &demo::first_delivery());
    Ws {
        _tmp: tmp,
        _server: server,
        root,
    }
}

fn once(root: &Path, now: &str) -> (Option<i32>, Value, String) {
    let o = run(root, &["once", "--json", "--now", now]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), v, text(&o))
}

fn once_ok(root: &Path, now: &str) -> Value {
    let (code, v, out) = once(root, now);
    assert_eq!(code, Some(0), "{out}");
    v
}

fn written(summary: &Value) -> BTreeMap<String, u64> {
    summary["ords"]
        .as_array()
        .map(|ords| {
            ords.iter()
                .map(|o| {
                    (
                        o["ord"].as_str().unwrap_or("").to_string(),
                        o["files_written"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every outbox pack (path → bytes' sha256), orphans included.
fn packs(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.join("work/outbox")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if egme_ord_core::ledger::is_pack_name(&p.to_string_lossy()) {
                out.insert(
                    p.clone(),
                    egme_ord::fsutil::sha256_hex(&fs::read(&p).unwrap()),
                );
            }
        }
    }
    out
}

fn assert_packs_kept(before: &BTreeMap<PathBuf, String>, root: &Path, context: &str) {
    let now = packs(root);
    for (p, sha) in before {
        assert_eq!(
            now.get(p),
            Some(sha),
            "{context}: outbox pack {} overwritten or gone",
            p.display()
        );
    }
}

fn ledger(root: &Path) -> PathBuf {
    root.join("state/egme-ord.sqlite")
}

fn copy_ledger(root: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", ledger(root).display()));
        if from.exists() {
            fs::copy(&from, to.join(format!("egme-ord.sqlite{suffix}"))).unwrap();
        }
    }
}

fn remove_ledger(root: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", ledger(root).display()));
    }
}

/// A CDR the demo did not have yet: changes one supplier of one E-Redes CPE on the 27th.
fn changed_cdr(root: &Path) {
    let ord = &demo::ords()[0];
    let cpe = ord.cpes[0];
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let cdr = demo::cdr(
        "S-00-B",
        ("PT", "GAL"),
        &demo::evse_id(&cpe, 1),
        at("2024-10-27T15:05:00Z"),
        130,
        31_250,
        at("2024-10-30T06:00:00Z"),
    );
    fs::write(
        root.join("mobility/cdrs-2024-10-30.json"),
        serde_json::to_vec(&serde_json::json!([cdr])).unwrap(),
    )
    .unwrap();
}

/// The first send, the demo's correction the day after (more ids), and a copy of the ledger taken
/// between the two.
fn two_days_of_sends(root: &Path, copy_at: &Path) {
    once_ok(root, FIRST);
    copy_ledger(root, copy_at);
    write_all(root, &demo::correction());
    let s = once_ok(root, SECOND);
    assert!(written(&s).values().sum::<u64>() > 0, "{s}");
}

/// What an undamaged workspace writes at THIRD (no new input) and at FOURTH (the changed CDR).
fn twin_writes(transport: Transport) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let twin = workspace(transport);
    let copy = twin.root.join("copy");
    two_days_of_sends(&twin.root, &copy);
    let third = written(&once_ok(&twin.root, THIRD));
    changed_cdr(&twin.root);
    let fourth = written(&once_ok(&twin.root, FOURTH));
    (third, fourth)
}

/// After the damage: the cycle refuses (non-zero, names the evidence and `recover`) without an id
/// used twice; `recover` (with `extra` arguments); then nothing to send, the changed CDR sends
/// what the twin sends, `verify` is clean, no id twice, no pack overwritten.
fn refuse_then_recover(
    ws: &Ws,
    before: &BTreeMap<PathBuf, String>,
    twin: &(BTreeMap<String, u64>, BTreeMap<String, u64>),
    extra: &[&str],
    context: &str,
) {
    let root = &ws.root;
    let (code, summary, out) = once(root, THIRD);
    assert_ne!(code, Some(0), "{context}: the cycle must refuse: {out}");
    assert!(
        out.contains("egme-ord recover"),
        "{context}: the refusal must name recover: {out}"
    );
    if code == Some(1) {
        assert!(
            out.contains("sending refused") || out.contains("not in place"),
            "{context}: {out}"
        );
        assert_eq!(
            written(&summary).values().sum::<u64>(),
            0,
            "{context}: nothing may be written when refused: {summary}"
        );
    }
    assert_no_id_twice(root, context);
    assert_packs_kept(before, root, context);
    let mut args = vec!["recover", "--json", "--now", THIRD];
    args.extend_from_slice(extra);
    let o = run(root, &args);
    assert_eq!(o.status.code(), Some(0), "{context}: recover: {}", text(&o));
    let (code, s, out) = once(root, THIRD);
    assert_eq!(code, Some(0), "{context}: after recover: {out}");
    assert_eq!(
        written(&s),
        twin.0,
        "{context}: after recover, a cycle without new input writes what the twin writes (nothing)"
    );
    assert!(twin.0.values().all(|n| *n == 0));
    changed_cdr(root);
    let (code, s, out) = once(root, FOURTH);
    assert_eq!(code, Some(0), "{context}: {out}");
    assert_eq!(
        written(&s),
        twin.1,
        "{context}: a changed CDR sends only the changed files: {s}"
    );
    let o = run(root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{context}: verify: {}", text(&o));
    let n = assert_no_id_twice(root, context);
    assert!(n > 90, "{context}: {n} ids at the ORDs");
    assert_packs_kept(before, root, context);
}

/// One damage scenario on one transport.
fn scenario(transport: Transport, damage: &str) {
    let context = format!("{damage} over {transport:?}");
    let twin = twin_writes(transport);
    let ws = workspace(transport);
    let copy = ws.root.join("copy");
    two_days_of_sends(&ws.root, &copy);
    let before = packs(&ws.root);
    match damage {
        "deleted" => remove_ledger(&ws.root),
        "truncated" => {
            fs::write(ledger(&ws.root), b"").unwrap();
        }
        "older-copy" => {
            remove_ledger(&ws.root);
            copy_ledger(&copy, &ws.root.join("state"));
        }
        other => panic!("no scenario {other}"),
    }
    refuse_then_recover(&ws, &before, &twin, &[], &context);
}

#[test]
fn a_deleted_ledger_is_refused_then_recovered_on_local_folders() {
    scenario(Transport::Local, "deleted");
}

#[test]
fn a_ledger_truncated_to_zero_bytes_is_refused_then_recovered_on_local_folders() {
    scenario(Transport::Local, "truncated");
}

#[test]
fn a_ledger_restored_from_an_older_copy_is_refused_then_recovered_on_local_folders() {
    scenario(Transport::Local, "older-copy");
}

#[test]
fn a_deleted_ledger_is_refused_then_recovered_over_sftp() {
    scenario(Transport::Sftp, "deleted");
}

#[test]
fn a_ledger_truncated_to_zero_bytes_is_refused_then_recovered_over_sftp() {
    scenario(Transport::Sftp, "truncated");
}

#[test]
fn a_ledger_restored_from_an_older_copy_is_refused_then_recovered_over_sftp() {
    scenario(Transport::Sftp, "older-copy");
}

/// A second config with a store (and work folder) of its own on the same ORD folders.
fn second_store(transport: Transport) {
    let context = format!("second store over {transport:?}");
    let twin = twin_writes(transport);
    let ws = workspace(transport);
    let copy = ws.root.join("copy");
    two_days_of_sends(&ws.root, &copy);
    let before = packs(&ws.root);
    let config = fs::read_to_string(ws.root.join("egme-ord.toml"))
        .unwrap()
        .replace(
            "store = \"state/egme-ord.sqlite\"",
            "store = \"state2/egme-ord.sqlite\"",
        )
        .replace("work_dir = \"work\"", "work_dir = \"work2\"");
    assert!(config.contains("state2/") && config.contains("\"work2\""));
    fs::write(ws.root.join("second.toml"), &config).unwrap();
    let o = bin()
        .args(["once", "--json", "--now", THIRD, "--config"])
        .arg(ws.root.join("second.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{context}: {}", text(&o));
    assert!(text(&o).contains("egme-ord recover"), "{}", text(&o));
    assert!(
        text(&o).contains("that the ledger has not used yet"),
        "{context}: the ORD's folder is the evidence: {}",
        text(&o)
    );
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(written(&summary).values().sum::<u64>(), 0, "{summary}");
    assert_no_id_twice(&ws.root, &context);
    // The first store goes on as if nothing happened.
    let s = once_ok(&ws.root, THIRD);
    assert_eq!(written(&s), twin.0, "{context}");
    changed_cdr(&ws.root);
    let s = once_ok(&ws.root, FOURTH);
    assert_eq!(written(&s), twin.1, "{context}");
    let o = run(&ws.root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{context}: {}", text(&o));
    assert_no_id_twice(&ws.root, &context);
    assert_packs_kept(&before, &ws.root, &context);
}

#[test]
fn a_second_store_on_the_same_ord_folders_is_refused_on_local_folders() {
    second_store(Transport::Local);
}

#[test]
fn a_second_store_on_the_same_ord_folders_is_refused_over_sftp() {
    second_store(Transport::Sftp);
}

/// The fence skips comparing what it compared before only while the send folder holds the same
/// names: a file of ours renamed at the ORD (what a file of another ledger under an id this one
/// used looks like) is found by the next cycle, after cycles that kept the folder as seen.
fn renamed_at_ord(transport: Transport) {
    let context = format!("renamed at the ORD over {transport:?}");
    let ws = workspace(transport);
    once_ok(&ws.root, FIRST);
    once_ok(&ws.root, SECOND);
    let kept: Vec<_> = demo::ords()
        .into_iter()
        .filter(|o| {
            ws.root
                .join("work/outbox")
                .join(o.name)
                .join(".send-folder-seen")
                .exists()
        })
        .collect();
    assert!(
        !kept.is_empty(),
        "{context}: the send folder as seen is kept after a clean cycle"
    );
    let ((ord, id), names) = names_by_id(&ws.root)
        .into_iter()
        .find(|((ord, _), _)| kept.iter().any(|o| o.name == ord))
        .expect("a file of ours at an ORD whose folder is kept as seen");
    let name = names.first().unwrap();
    let at = ws.root.join("exchange").join(&ord).join("to-ord");
    // Same id, another generation date: the name a second ledger could have given it.
    let date = name.split('_').nth(1).unwrap();
    let renamed = name.replace(&format!("_{date}_"), "_20200102_");
    assert_ne!(&renamed, name);
    fs::rename(at.join(name), at.join(&renamed)).unwrap();
    let (code, _, out) = once(&ws.root, THIRD);
    assert_eq!(
        code,
        Some(1),
        "{context}: id {id} of {ord} under another name is refused: {out}"
    );
    assert!(
        out.contains(&renamed),
        "{context}: the refusal names the file: {out}"
    );
    assert!(out.contains("egme-ord recover"), "{context}: {out}");
}

#[test]
fn a_file_of_ours_renamed_at_the_ord_is_refused_after_cycles_that_kept_the_folder_as_seen_on_local_folders(
) {
    renamed_at_ord(Transport::Local);
}

#[test]
fn a_file_of_ours_renamed_at_the_ord_is_refused_after_cycles_that_kept_the_folder_as_seen_over_sftp(
) {
    renamed_at_ord(Transport::Sftp);
}

/// `run` with its ledger deleted under it: the next cycle stops all work (the ledger is not in
/// place), nothing more is sent; the restart refuses; recover.
fn deleted_while_running(transport: Transport) {
    let context = format!("deleted while run runs over {transport:?}");
    let twin = twin_writes(transport);
    let ws = workspace(transport);
    let copy = ws.root.join("copy");
    two_days_of_sends(&ws.root, &copy);
    let before = packs(&ws.root);
    let config = fs::read_to_string(ws.root.join("egme-ord.toml"))
        .unwrap()
        .replace("poll_interval = \"5m\"", "poll_interval = \"1s\"");
    assert!(config.contains("poll_interval = \"1s\""));
    fs::write(ws.root.join("egme-ord.toml"), config).unwrap();
    let log = ws.root.join("run.log");
    let mut daemon = bin()
        .args(["run", "--now", THIRD, "--config"])
        .arg(ws.root.join("egme-ord.toml"))
        .env("EGME_ORD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(needle)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(wait_for("cycle"), "{context}: the daemon ran no cycle");
    remove_ledger(&ws.root);
    assert!(
        wait_for("removed or replaced"),
        "{context}: the daemon must notice: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let at_ords = names_by_id(&ws.root);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        names_by_id(&ws.root),
        at_ords,
        "{context}: nothing more is sent"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success());
    let _ = daemon.wait();
    refuse_then_recover(&ws, &before, &twin, &[], &context);
}

#[test]
fn a_ledger_deleted_while_run_runs_stops_the_daemon_and_is_recovered_on_local_folders() {
    deleted_while_running(Transport::Local);
}

#[test]
fn a_ledger_deleted_while_run_runs_stops_the_daemon_and_is_recovered_over_sftp() {
    deleted_while_running(Transport::Sftp);
}

#[test]
fn random_byte_flips_in_the_ledger_never_send_an_id_twice_and_recover_rebuilds_it_on_local_folders()
{
    byte_flips(Transport::Local, 20);
}

#[test]
fn random_byte_flips_in_the_ledger_never_send_an_id_twice_and_recover_rebuilds_it_over_sftp() {
    byte_flips(Transport::Sftp, 20);
}

/// `seeds` workspaces (more with `EGME_ORD_FLIP_SEEDS`), each a copy of one after two days of
/// sends, with 1–8 random bit flips in its ledger.
fn byte_flips(transport: Transport, seeds: u64) {
    let twin = twin_writes(transport);
    let base = workspace(transport);
    let copy = base.root.join("copy");
    two_days_of_sends(&base.root, &copy);
    let seeds = std::env::var("EGME_ORD_FLIP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seeds);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let first_seed = std::env::var("EGME_ORD_FIRST_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64);
    for seed in first_seed..first_seed + seeds {
        let tmp = tempfile::Builder::new()
            .disable_cleanup(std::env::var("EGME_ORD_KEEP").is_ok())
            .tempdir()
            .unwrap();
        let context = format!("byte flips, seed {seed} in {}", tmp.path().display());
        let root = tmp.path().join("ws");
        assert!(Command::new("cp")
            .arg("-a")
            .arg(&base.root)
            .arg(&root)
            .status()
            .unwrap()
            .success());
        let before = packs(&root);
        let mut bytes = fs::read(ledger(&root)).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for _ in 0..1 + rng.next() % 8 {
            let at = (rng.next() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (rng.next() % 8);
        }
        fs::write(ledger(&root), &bytes).unwrap();
        let (code, summary, out) = once(&root, THIRD);
        assert_no_id_twice(&root, &context);
        assert_packs_kept(&before, &root, &context);
        let outcome = match code {
            Some(0) => {
                // Not seen as damage: then the cycle did exactly what an intact ledger does.
                assert_eq!(
                    written(&summary),
                    twin.0,
                    "{context}: a ledger read as intact must not send unchanged files again: {summary}"
                );
                "not detected, nothing sent"
            }
            Some(1) => {
                assert!(out.contains("egme-ord recover"), "{context}: {out}");
                "refused for an ORD"
            }
            Some(2) => {
                assert!(out.contains("egme-ord recover"), "{context}: {out}");
                "refused at open"
            }
            other => panic!("{context}: exit {other:?}: {out}"),
        };
        *outcomes.entry(outcome.to_string()).or_default() += 1;
        // Rebuilt from the witnesses whatever the damage was.
        let o = run(&root, &["recover", "--json", "--fresh", "--now", THIRD]);
        assert_eq!(o.status.code(), Some(0), "{context}: recover: {}", text(&o));
        let (code, s, out) = once(&root, THIRD);
        assert_eq!(code, Some(0), "{context}: after recover: {out}");
        assert_eq!(written(&s), twin.0, "{context}");
        let o = run(&root, &["verify", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{context}: verify: {}", text(&o));
        assert_no_id_twice(&root, &context);
        assert_packs_kept(&before, &root, &context);
    }
    eprintln!("byte flips over {transport:?}, {seeds} seeds: {outcomes:?}");
}

/// `backup` taken again and again while `run` is in the middle of a day's send over SFTP; the
/// ledger and the whole work folder then lost; `restore` of a copy taken mid-send (which recovers):
/// no id at the ORD under two names, every id from 1 to the last there once, nothing more to send,
/// `verify` clean.
#[test]
fn a_backup_taken_while_run_is_mid_send_restores_and_recovers_with_nothing_duplicated_or_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let root = tmp.path().join("ws");
    let scale = demo::at_scale(400);
    write_all(&root, &scale.files);
    let to = root.join("remote/to-ord");
    fs::create_dir_all(&to).unwrap();
    let known_hosts = server.dir.join("known_hosts");
    let config = demo::at_scale_config(
        &server.endpoint(&root.join("remote/from-ord"), &known_hosts),
        &server.endpoint(&to, &known_hosts),
    );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    let log = root.join("run.log");
    let mut daemon = bin()
        .args(["run", "--now", "2024-11-05T21:30:00Z", "--config"])
        .arg(root.join("egme-ord.toml"))
        .env("EGME_ORD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut mid_send: Option<(PathBuf, u64)> = None;
    let mut taken = 0;
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("cycle done")
    {
        assert!(Instant::now() < deadline, "the daemon's cycle did not end");
        if !root.join("state/egme-ord.sqlite").exists() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        taken += 1;
        let dest = tmp.path().join(format!("backup-{taken}"));
        let o = bin()
            .args(["backup", "--json", "--config"])
            .arg(root.join("egme-ord.toml"))
            .arg(&dest)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "backup: {}", text(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        let last = report["sequences"]["e-redes"].as_u64().unwrap_or(0);
        if last > 0 && mid_send.is_none() {
            mid_send = Some((dest, last));
        }
    }
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success());
    let _ = daemon.wait();
    let sent = names_by_id(&root).len();
    let by_id: BTreeMap<u64, usize> = fs::read_dir(&to)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            OrdFileName::parse(
                &e.file_name().to_string_lossy(),
                egme_ord_core::region::Region::Continent,
                Direction::Outbound,
            )
            .ok()
        })
        .map(|n| (n.ntransm.value, 1))
        .collect();
    let final_last = by_id.keys().next_back().copied().unwrap_or(0);
    assert_eq!(final_last, scale.outputs, "the day's send completed");
    let (copy, at_copy) = mid_send.expect("a backup taken during the send");
    assert!(
        at_copy < final_last,
        "the copy was taken mid-send ({at_copy} of {final_last} ids, {taken} backups)"
    );
    // The disk is lost: ledger and work folder.
    fs::remove_dir_all(root.join("state")).unwrap();
    fs::remove_dir_all(root.join("work")).unwrap();
    let o = bin()
        .args([
            "restore",
            "--json",
            "--now",
            "2024-11-05T21:40:00Z",
            "--config",
        ])
        .arg(root.join("egme-ord.toml"))
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "restore: {}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["ords"][0]["sequence_after"].as_u64(),
        Some(final_last),
        "{report}"
    );
    let taken_in = report["ords"][0]["sent_from_outbox"].as_u64().unwrap_or(0)
        + report["ords"][0]["sent_from_ord"].as_u64().unwrap_or(0);
    assert_eq!(
        taken_in,
        final_last - at_copy,
        "what was sent after the copy: {report}"
    );
    let o = bin()
        .args([
            "once",
            "--json",
            "--now",
            "2024-11-05T21:45:00Z",
            "--config",
        ])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["ords"][0]["files_written"], 0, "{summary}");
    assert_eq!(summary["ords"][0]["files_delivered"], 0, "{summary}");
    let after: BTreeMap<String, ()> = fs::read_dir(&to)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), ()))
        .collect();
    assert_eq!(
        after.len() as u64,
        final_last,
        "every id once, nothing more"
    );
    assert_eq!(names_by_id(&root).len(), sent);
    let o = bin()
        .args(["verify", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "verify: {}", text(&o));
    eprintln!("{taken} backups during the send; restored the one at id {at_copy} of {final_last}");
}

#[test]
fn a_store_path_that_is_a_link_or_in_a_folder_others_can_write_is_refused_by_every_command_that_writes(
) {
    use std::os::unix::fs::PermissionsExt;
    let ws = workspace(Transport::Local);
    let root = &ws.root;
    let elsewhere = root.join("elsewhere.sqlite");
    fs::create_dir_all(root.join("state")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ledger(root)).unwrap();
    for args in [
        vec!["once", "--now", FIRST],
        vec!["run", "--now", FIRST],
        vec!["recover"],
    ] {
        let o = run(root, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("is a symbolic link"),
            "{args:?}: {}",
            text(&o)
        );
        assert!(!elsewhere.exists(), "{args:?}: the link was followed");
    }
    fs::remove_file(ledger(root)).unwrap();
    fs::set_permissions(root.join("state"), fs::Permissions::from_mode(0o777)).unwrap();
    for args in [vec!["once", "--now", FIRST], vec!["recover"]] {
        let o = run(root, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("others can write in it"), "{}", text(&o));
        assert!(!ledger(root).exists(), "{args:?}: the ledger was created");
    }
    fs::set_permissions(root.join("state"), fs::Permissions::from_mode(0o700)).unwrap();
    once_ok(root, FIRST);
}

/// The disk with the ledger and the outbox lost, and the ORD has moved our files away: the ORD
/// says which id it received last; `recover --last-sent-id` goes on after it.
#[test]
fn with_every_local_witness_lost_recover_goes_on_after_the_last_id_the_ord_reports() {
    let ws = workspace(Transport::Local);
    let root = &ws.root;
    let copy = root.join("copy");
    two_days_of_sends(root, &copy);
    let last = names_by_id(root)
        .keys()
        .filter(|(o, _)| o == "e-redes")
        .map(|(_, id)| *id)
        .max()
        .unwrap();
    remove_ledger(root);
    fs::remove_dir_all(root.join("work")).unwrap();
    let taken = root.join("taken-by-the-ord");
    fs::rename(root.join("exchange/e-redes/to-ord"), &taken).unwrap();
    fs::create_dir_all(root.join("exchange/e-redes/to-ord")).unwrap();
    let o = run(
        root,
        &[
            "recover",
            "--json",
            "--now",
            THIRD,
            "--ord",
            "e-redes",
            "--last-sent-id",
            &last.to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["ords"][0]["sequence_after"].as_u64(),
        Some(last),
        "{report}"
    );
    let (_, s, out) = once(root, THIRD);
    let e = s["ords"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ord"] == "e-redes")
        .unwrap()
        .clone();
    assert!(e["files_written"].as_u64().unwrap() > 0, "{out}");
    // Every id now at the ORD comes after the last one it had.
    let fresh: Vec<u64> = names_by_id(root)
        .keys()
        .filter(|(o, _)| o == "e-redes")
        .map(|(_, id)| *id)
        .collect();
    assert!(!fresh.is_empty());
    assert!(fresh.iter().all(|id| *id > last), "{fresh:?} after {last}");
    assert_eq!(fresh[0], last + 1, "gap-free after the ORD's last id");
}
