//! Crash injection: `egme-ord once` killed with SIGKILL at random moments against a real sshd, then
//! rerun; in the end every promise must hold (compared with a run that was never killed).
//!
//! Iterations: `EGME_ORD_CRASH_ITERATIONS` (default 24, the CI figure; the long mode uses 120).
//! Seed: `EGME_ORD_CRASH_SEED` (printed, to replay a failure).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use egme_ord::demo;
use support::sshd::Sshd;
use support::{
    assert_all_promises, once, one_server, ord_side, sftp_workspace, spawn_once, write_all, FIRST,
};

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
    let mut child = spawn_once(root, now);
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
        assert_all_promises(
            &root,
            &expected,
            SECOND,
            &format!("EGME_ORD_CRASH_SEED={seed}, episode {episodes}"),
        );
    }
    eprintln!("crash injection: {kills} processes killed over {episodes} episodes, 0 invariant violations");
}
