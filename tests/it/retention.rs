//! Retention: `prune` (and `--dry-run`) removes the bytes of long-closed days that `[retention]` no longer keeps, the ledger keeps every file's name, id, size and sha256, `verify` stays clean and the sequence goes on.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::pipeline::{once, walk, workspace};
use crate::support::{assert_no_id_twice, run, text};

/// Every file under `dir` with its size.
fn files(dir: &Path) -> BTreeMap<String, u64> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let len = fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect()
}

fn prune(root: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["prune", "--json", "--now", "2027-01-15T00:00:00Z"];
    args.extend_from_slice(extra);
    let o = run(root, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn prune_removes_what_retention_no_longer_keeps_and_the_ledger_fence_and_verify_hold() {
    let ws = workspace();
    let root = ws.path();
    once(root, "2024-10-28T21:30:00Z");
    once(root, "2024-10-29T21:30:00Z");
    // Every day of October past its D+30 window: closed (a stop of six weeks, said to be one).
    let o = run(
        root,
        &[
            "once",
            "--json",
            "--allow-clock-jump",
            "--now",
            "2024-12-10T21:30:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let work = root.join("work");
    let outbox = work.join("outbox/e-redes");
    let packs_before: Vec<String> = files(&outbox)
        .into_keys()
        .filter(|p| p.ends_with(".tar.zst"))
        .collect();
    assert!(packs_before.len() >= 2, "{packs_before:?}");

    // The defaults keep the exchanged bytes ten years (nothing pruned yet) and the netting inputs
    // of closed days thirteen months (those of October 2024 forgotten by 2027).
    let r = prune(root, &[]);
    assert_eq!(r["bytes"], 0, "{r}");
    let eredes = &r["ords"][0];
    assert_eq!(eredes["ord"], "e-redes");
    assert_eq!(eredes["ledger_days"], 2, "{r}");

    let config = root.join("egme-ord.toml");
    let mut text_of = fs::read_to_string(&config).unwrap();
    text_of.push_str(
        "\n[retention]\noutbox = \"0d\"\narchive = \"0d\"\nquarantine = \"0d\"\nreports = \"0d\"\nledger_details = \"0d\"\n",
    );
    fs::write(&config, text_of).unwrap();

    // A dry run says what, and touches nothing.
    let before = files(&work);
    let dry = prune(root, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["bytes"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(files(&work), before);

    let r = prune(root, &[]);
    assert_eq!(r["bytes"], dry["bytes"], "{r}\n{dry}");
    let eredes = r["ords"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ord"] == "e-redes")
        .unwrap();
    assert_eq!(
        eredes["outbox_packs"].as_array().unwrap().len(),
        packs_before.len() - 1,
        "{r}"
    );
    assert!(
        !eredes["archive_days"].as_array().unwrap().is_empty(),
        "{r}"
    );
    // The newest pack stays: it witnesses the last id for the fence.
    let left: Vec<String> = files(&outbox)
        .into_keys()
        .filter(|p| p.ends_with(".tar.zst"))
        .collect();
    assert_eq!(left, packs_before[packs_before.len() - 1..]);
    assert!(files(&work.join("archive/e-redes")).is_empty());
    assert!(files(&work.join("reports/e-redes")).is_empty());

    // The ledger still knows every file: verify is clean, the ORD's folder still matches it.
    let o = run(root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let status = run(root, &["status", "--json"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));

    // Pruned again: nothing more.
    assert_eq!(prune(root, &[])["bytes"], 0);

    // The sequence goes on after the last id: a new send, no id twice.
    let ids_before = assert_no_id_twice(root, "before");
    once(root, "2024-12-11T21:30:00Z");
    assert!(assert_no_id_twice(root, "after") >= ids_before);
}
