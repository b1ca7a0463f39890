//! Crash injection: `egme-ord once` killed with SIGKILL at random moments against a real sshd, then
//! rerun; in the end every promise must hold (compared with a run that was never killed).
//!
//! Iterations: `EGME_ORD_CRASH_ITERATIONS` (default 24, the CI figure; the long mode uses 120).
//! Seed: `EGME_ORD_CRASH_SEED` (printed, to replay a failure).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use egme_ord::demo;
use serde_json::Value;
use support::sshd::Sshd;
use support::{assert_idle, bin, once, one_server, ord_side, sftp_workspace, write_all, FIRST};

const SECOND: &str = "2024-10-29T21:30:00Z";

/// xorshift64*: enough randomness for kill times, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn run_clean(root: &Path, now: &str) -> Duration {
    let started = Instant::now();
    let (code, summary, err) = once(root, now);
    assert_eq!(code, Some(0), "{summary}\n{err}");
    started.elapsed()
}

/// Starts `once` and kills it (SIGKILL) after `after`; returns whether it was still running.
fn kill_after(root: &Path, now: &str, after: Duration) -> bool {
    let mut child = bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", now])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

#[test]
fn sigkill_at_random_moments_loses_nothing_sends_nothing_twice_and_leaves_no_partial_file() {
    let iterations: usize = std::env::var("EGME_ORD_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("EGME_ORD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("crash injection: {iterations} iterations, EGME_ORD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    // The reference: the same two cycles, never killed.
    let (_t1, _s1, reference) = one_server("0s");
    write_all(&reference, &demo::first_delivery());
    let first_took = run_clean(&reference, FIRST);
    write_all(&reference, &demo::correction());
    let second_took = run_clean(&reference, SECOND);
    let expected = ord_side(&reference);
    assert!(expected.len() > 80);
    assert!(
        expected.keys().all(|k| !k.contains("/.")),
        "{:?}",
        expected.keys()
    );

    // Episodes: a fresh workspace on the same server, each cycle killed at random moments until a
    // run completes on its own; episodes repeat until the kills add up to `iterations`.
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let mut kills = 0;
    let mut episodes = 0;
    while kills < iterations {
        episodes += 1;
        let root = tmp.path().join(format!("episode-{episodes}"));
        sftp_workspace(&root, &server, &server, "0s");
        for (now, files, took) in [
            (FIRST, demo::first_delivery(), first_took),
            (SECOND, demo::correction(), second_took),
        ] {
            write_all(&root, &files);
            let window = took.as_millis().max(20) as u64 * 12 / 10;
            loop {
                let after = Duration::from_millis(rng.next() % window);
                if !kill_after(&root, now, after) {
                    break;
                }
                kills += 1;
            }
            run_clean(&root, now);
        }
        check_invariants(&root, &expected, seed);
    }
    eprintln!("crash injection: {kills} processes killed over {episodes} episodes, 0 invariant violations");
}

/// Every promise, checked on a workspace that was killed and rerun.
fn check_invariants(root: &Path, expected: &BTreeMap<String, Vec<u8>>, seed: u64) {
    let root = root.to_path_buf();
    // The ORDs see exactly the reference's files, byte for byte: every expected output
    // once, the same gap-free ids, no temporary or partial file.
    let got = ord_side(&root);
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seed {seed}: missing {missing:?}, extra {extra:?}"
    );
    for (k, bytes) in expected {
        assert_eq!(
            &got[k], bytes,
            "seed {seed}: {k} differs from the reference"
        );
    }
    // The ledger agrees with the folders: every file received once, every copy there, ids gap-free.
    let out = bin()
        .args(["verify", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "seed {seed}: {report}");
    assert_eq!(out.status.code(), Some(0));
    // Every ORD file ingested exactly once.
    let store = egme_ord::store::Store::open(&root.join("state/egme-ord.sqlite")).unwrap();
    for o in demo::ords() {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for r in store.received_copies(o.name).unwrap() {
            *seen.entry(r.name).or_default() += 1;
        }
        let dir = root.join("exchange").join(o.name).join("from-ord");
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert_eq!(
                seen.get(&name),
                Some(&1),
                "seed {seed}: {name} ingested {:?} times",
                seen.get(&name)
            );
        }
        assert!(seen.values().all(|n| *n == 1), "seed {seed}: {seen:?}");
    }
    // Nothing is left to do.
    let (code, summary, err) = once(&root, SECOND);
    assert_eq!(code, Some(0), "{err}");
    assert_idle(&summary, "after the crashes");
}
