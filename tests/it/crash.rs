//! Crash injection: `egme-ord once` killed with SIGKILL at random moments against a real sshd, then
//! rerun; in the end every promise must hold (compared with a run that was never killed).
//!
//! Iterations: `EGME_ORD_CRASH_ITERATIONS` (default 24, the CI figure; the long mode uses 120).
//! Seed: `EGME_ORD_CRASH_SEED` (printed, to replay a failure).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::sshd::Sshd;
use crate::support::Rng;
use crate::support::{
    assert_all_promises, once, one_server, ord_side, sftp_workspace, spawn_once, write_all, FIRST,
};
use egme_ord_core::demo;

const SECOND: &str = "2024-10-29T21:30:00Z";

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

/// Runs `egme-ord <args> --config <root>/egme-ord.toml`, killed (SIGKILL) after `after`, or with
/// the crash point `crash_at` (the process aborts there); returns whether it was cut short.
fn command_cut(
    root: &Path,
    args: &[&str],
    after: Option<Duration>,
    crash_at: Option<&str>,
) -> bool {
    let mut cmd = crate::support::bin();
    cmd.args(args)
        .arg("--config")
        .arg(root.join("egme-ord.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(point) = crash_at {
        cmd.env("EGME_ORD_CRASH_AT", point);
    }
    let mut child = cmd.spawn().unwrap();
    let Some(after) = after else {
        return !child.wait().unwrap().success();
    };
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

fn command_clean(root: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let o = crate::support::bin()
        .args(args)
        .arg("--config")
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    started.elapsed()
}

fn remove_ledger(root: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}/state/egme-ord.sqlite{suffix}", root.display()));
    }
}

/// `backup`, `recover` and `restore` cut short — at each of their crash points, then by SIGKILL at
/// random moments — and run again: every promise holds as after a run that was never cut.
#[test]
fn recover_backup_and_restore_killed_at_their_crash_points_and_at_random_moments_keep_every_promise(
) {
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
    eprintln!("recovery crash injection: {iterations} kills, EGME_ORD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let (_t1, _s1, reference) = one_server("0s");
    write_all(&reference, &demo::first_delivery());
    run_clean(&reference, FIRST);
    write_all(&reference, &demo::correction());
    run_clean(&reference, SECOND);
    let expected = ord_side(&reference);
    let backup_dir = reference.join("backup");
    let backup_took = command_clean(&reference, &["backup", backup_dir.to_str().unwrap()]);
    remove_ledger(&reference);
    let recover_took = command_clean(&reference, &["recover", "--now", SECOND]);
    remove_ledger(&reference);
    let restore_took = command_clean(
        &reference,
        &["restore", "--now", SECOND, backup_dir.to_str().unwrap()],
    );
    assert_all_promises(&reference, &expected, SECOND, "reference");

    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let (mut kills, mut episodes) = (0, 0);
    let points = [
        "backup-after-ledger",
        "backup-after-file",
        "recover-after-outbox",
        "recover-after-ord-folders",
        "recover-before-mark",
    ];
    while kills < iterations || episodes < points.len() {
        episodes += 1;
        let context = format!("EGME_ORD_CRASH_SEED={seed}, episode {episodes}");
        let root = tmp.path().join(format!("episode-{episodes}"));
        sftp_workspace(&root, &server, &server, "0s");
        write_all(&root, &demo::first_delivery());
        run_clean(&root, FIRST);
        let bk = root.join("backup");
        let bk_arg = bk.to_str().unwrap().to_string();
        // The first episodes go through each crash point once; all of them then kill at random.
        let point = points.get(episodes - 1).copied();
        let cut = |root: &Path, args: &[&str], took: Duration, rng: &mut Rng| -> bool {
            match point {
                Some(p) => command_cut(root, args, None, Some(p)),
                None => {
                    let window = took.as_millis().max(20) as u64 * 12 / 10;
                    command_cut(
                        root,
                        args,
                        Some(Duration::from_millis(rng.next() % window)),
                        None,
                    )
                }
            }
        };
        // A backup after the first day, cut short, then taken whole.
        while cut(&root, &["backup", &bk_arg], backup_took, &mut rng) {
            kills += 1;
            if point.is_some() {
                break;
            }
        }
        command_clean(&root, &["backup", &bk_arg]);
        write_all(&root, &demo::correction());
        run_clean(&root, SECOND);
        // The ledger lost: recover, cut short, then whole.
        remove_ledger(&root);
        while cut(&root, &["recover", "--now", SECOND], recover_took, &mut rng) {
            kills += 1;
            if point.is_some() {
                break;
            }
        }
        command_clean(&root, &["recover", "--now", SECOND]);
        assert_all_promises(
            &root,
            &expected,
            SECOND,
            &format!("{context}: after recover"),
        );
        // Lost again: the first day's backup restored (it recovers the second day), cut short.
        remove_ledger(&root);
        let restore = ["restore", "--now", SECOND, bk_arg.as_str()];
        while cut(&root, &restore, restore_took, &mut rng) {
            kills += 1;
            if point.is_some() {
                break;
            }
        }
        command_clean(&root, &restore);
        assert_all_promises(
            &root,
            &expected,
            SECOND,
            &format!("{context}: after restore"),
        );
    }
    eprintln!("recovery crash injection: {kills} processes cut short over {episodes} episodes, 0 invariant violations");
}
