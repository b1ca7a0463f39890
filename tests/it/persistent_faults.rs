//! Faults that persist: a clock that jumps, an intake that fails at send time, a disk that fills
//! during the send, an operator's undo (`reopen`) and replay (`resend`).

use crate::support::sshd::Sshd;
use crate::support::{
    assert_no_id_twice, bin, names_by_id, ord_name, run, sftp_workspace, text, write_all,
};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use egme_ord::store::Store;
use egme_ord_core::demo;
use egme_ord_core::filename::{Direction, OrdFileName};
use serde_json::Value;

const FIRST: &str = "2024-10-28T21:30:00Z";
const SECOND: &str = "2024-10-29T21:30:00Z";

fn local_workspace() -> tempfile::TempDir {
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

fn once(root: &Path, now: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["once", "--json", "--now", now];
    args.extend_from_slice(extra);
    let o = run(root, &args);
    (
        o.status.code(),
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        text(&o),
    )
}

fn ord<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["ords"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["ord"] == name))
        .unwrap_or(&Value::Null)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn closed(root: &Path, ord: &str) -> BTreeSet<NaiveDate> {
    Store::open(&root.join("state/egme-ord.sqlite"))
        .unwrap()
        .days_state(&ord_name(ord))
        .unwrap()
        .closed
}

#[test]
fn a_clock_forty_days_ahead_is_refused_allowed_it_closes_the_days_and_reopen_lets_a_later_correction_out(
) {
    let ws = local_workspace();
    let root = ws.path();
    let (code, _, out) = once(root, FIRST, &[]);
    assert_eq!(code, Some(0), "{out}");
    let ahead = "2024-12-07T21:30:00Z";
    let (code, s, out) = once(root, ahead, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("clock may have jumped"), "{out}");
    assert!(
        out.contains("2024-12-07 21:30:00 UTC") && out.contains("2024-10-28 21:30:00 UTC"),
        "both times: {out}"
    );
    assert!(out.contains("--allow-clock-jump"), "{out}");
    assert_eq!(ord(&s, "e-redes")["days_missed"], 0);
    assert!(closed(root, "e-redes").is_empty(), "no day closed");
    // Allowed: the days close as missed.
    let (code, s, out) = once(root, ahead, &["--allow-clock-jump"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ord(&s, "e-redes")["days_missed"], 2, "{s}");
    assert!(closed(root, "e-redes").contains(&day("2024-10-27")));
    // Back at the real date: the operator reopens the 27th; a correction then goes out.
    let o = run(
        root,
        &[
            "reopen",
            "--ord",
            "e-redes",
            "--day",
            "2024-10-27",
            "--now",
            SECOND,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!closed(root, "e-redes").contains(&day("2024-10-27")));
    let before = names_by_id(root).len();
    write_all(root, &demo::correction());
    // Forty days before the last cycle: refused too, until the operator says this time is right.
    let (code, _, out) = once(root, SECOND, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("before the last cycle's"), "{out}");
    let (code, s, out) = once(root, SECOND, &["--allow-clock-jump"]);
    assert_eq!(code, Some(0), "{out}");
    let e = ord(&s, "e-redes");
    assert!(e["files_written"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(e["files_delivered"], e["files_written"], "{e}");
    assert!(
        s["mobility"]["records_late"].as_u64().unwrap() >= 1,
        "the credit for the 26th, still closed, is late: {s}"
    );
    assert_eq!(
        names_by_id(root).len() as u64,
        before as u64 + e["files_written"].as_u64().unwrap()
    );
    assert_no_id_twice(root, "persistent faults");
    // Reopening an open day, or one past its window, says so.
    let o = run(
        root,
        &[
            "reopen",
            "--ord",
            "e-redes",
            "--day",
            "2024-10-27",
            "--now",
            SECOND,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = run(
        root,
        &[
            "reopen",
            "--ord",
            "e-redes",
            "--day",
            "2024-10-26",
            "--now",
            "2024-11-30T12:00:00Z",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("past its D+30 window"), "{}", text(&o));
    let o = run(root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn resend_sends_a_days_files_again_under_new_ids_and_refuses_a_closed_day() {
    let ws = local_workspace();
    let root = ws.path();
    let (code, _, out) = once(root, FIRST, &[]);
    assert_eq!(code, Some(0), "{out}");
    let day27: Vec<String> = names_by_id(root)
        .into_iter()
        .filter(|((o, _), _)| o == "eda")
        .flat_map(|(_, n)| n)
        .collect();
    let before = day27.len();
    let o = run(
        root,
        &[
            "resend",
            "--ord",
            "eda",
            "--day",
            "2024-10-27",
            "--now",
            FIRST,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after: Vec<String> = names_by_id(root)
        .into_iter()
        .filter(|((o, _), _)| o == "eda")
        .flat_map(|(_, n)| n)
        .collect();
    // EDA's demo CPEs have 16 files for the 27th: each sent again once.
    assert_eq!(after.len(), before + 16, "{}", text(&o));
    // The fence's record of the send folder counts the files resent: the next fence can trust it.
    let seen: Value =
        serde_json::from_slice(&fs::read(root.join("work/outbox/eda/.send-folder-seen")).unwrap())
            .unwrap();
    let at_ord = fs::read_dir(root.join("exchange/eda/to-ord"))
        .unwrap()
        .count();
    assert_eq!(at_ord, before + 16);
    assert_eq!(seen["digest"]["names"], at_ord, "{seen}");
    assert_no_id_twice(root, "persistent faults");
    let o = run(root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A further cycle has nothing to send: the resent content is the content held.
    let (code, s, out) = once(root, FIRST, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ord(&s, "eda")["files_written"], 0, "{s}");
    // A day that is not open (or today) is refused.
    let o = run(
        root,
        &[
            "resend",
            "--ord",
            "eda",
            "--day",
            "2024-10-28",
            "--now",
            FIRST,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot be sent again"), "{}", text(&o));
}

/// The receive account down at `send_at`, the send account up: nothing is sent; five minutes
/// later, with the receive side back, the day goes out with the ORD's totals. With the receive side
/// still down at the last cycle of the local day, it goes out without them, with an ERROR event.
#[test]
fn a_send_waits_for_its_intake_until_the_last_cycle_of_the_day_over_sftp() {
    let tmp = tempfile::tempdir().unwrap();
    let mut recv = Sshd::start(&tmp.path().join("recv"));
    let send = Sshd::start(&tmp.path().join("send"));
    // The reference: nothing failed.
    let reference = tmp.path().join("reference");
    sftp_workspace(&reference, &recv, &send, "0s");
    write_all(&reference, &demo::first_delivery());
    let (code, expected, out) = once(&reference, FIRST, &[]);
    assert_eq!(code, Some(0), "{out}");

    let root = tmp.path().join("ws");
    sftp_workspace(&root, &recv, &send, "0s");
    write_all(&root, &demo::first_delivery());
    recv.stop();
    let (code, s, out) = once(&root, FIRST, &[]);
    assert_eq!(code, Some(1), "{out}");
    for o in s["ords"].as_array().unwrap() {
        assert_eq!(o["files_written"], 0, "{o}");
        assert_eq!(o["send_held"], true, "{o}");
        assert_eq!(o["send_due"], false, "{o}");
    }
    assert!(names_by_id(&root).is_empty());
    recv.restart();
    let (code, s, out) = once(&root, "2024-10-28T21:35:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    for name in ["e-redes", "eda", "eem"] {
        let (got, want) = (ord(&s, name), ord(&expected, name));
        assert_eq!(got["files_written"], want["files_written"], "{name}: {got}");
        assert_eq!(
            got["anomalies"], want["anomalies"],
            "{name}: with the ORD's totals"
        );
        assert_eq!(got["sent_without_intake"], false);
    }
    assert!(ord(&s, "eem")["anomalies"].as_u64().unwrap() > 0);

    // Another workspace, the receive side down all evening.
    let late = tmp.path().join("late");
    sftp_workspace(&late, &recv, &send, "0s");
    write_all(&late, &demo::first_delivery());
    recv.stop();
    // 23:58 in Lisbon and Madeira, 22:58 in the Azores; the next cycle (5 min) is tomorrow for
    // the first two only.
    let (code, s, out) = once(&late, "2024-10-28T23:58:00Z", &[]);
    assert_eq!(code, Some(1), "{out}");
    for name in ["e-redes", "eem"] {
        let o = ord(&s, name);
        assert_eq!(o["sent_without_intake"], true, "{name}: {o}");
        assert!(o["files_written"].as_u64().unwrap() > 0, "{name}: {o}");
    }
    assert_eq!(ord(&s, "eda")["send_held"], true, "{s}");
    assert_eq!(ord(&s, "eda")["files_written"], 0, "{s}");
    let events = Store::open(&late.join("state/egme-ord.sqlite"))
        .unwrap()
        .events(egme_ord_core::event::EventKind::SendWithoutIntake)
        .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[0].contains("totals of the day may be missing"),
        "{events:?}"
    );
}

/// Mounts a small tmpfs at `at` (the tests run as root, as CI does).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "this test mounts a tmpfs: it needs root, as CI has");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_work_disk_full_during_the_send_leaves_the_day_to_the_next_cycle_of_the_same_day() {
    let ws = local_workspace();
    let root = ws.path();
    let work = Tmpfs::mount(&root.join("work"), "1m");
    // The intake before send time, then the disk fills.
    let (code, _, out) = once(root, "2024-10-28T10:00:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    let fill = work.0.join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1k", "count=4000"])
        .arg(format!("of={}", fill.display()))
        .output();
    let (code, s, out) = once(root, FIRST, &[]);
    assert_eq!(code, Some(1), "{out}");
    for o in s["ords"].as_array().unwrap() {
        assert_eq!(
            o["files_written"], 0,
            "nothing written counts as written: {o}"
        );
        assert!(o["errors"].to_string().contains("No space left"), "{o}");
    }
    assert!(names_by_id(root).is_empty());
    fs::remove_file(&fill).unwrap();
    let (code, s, out) = once(root, "2024-10-28T21:35:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ord(&s, "e-redes")["days_sent"], 2, "{s}");
    assert_eq!(names_by_id(root).len(), 88, "the day's files, each once");
    assert_no_id_twice(root, "persistent faults");
    let o = run(root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    drop(work);
}

mod jumping_clock {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use egme_ord::cycle::{load_registry, RunOptions};
    use egme_ord::daemon::{self, Clock};
    use egme_ord_core::config::Config;

    /// A clock that moves on by the poll interval, except once, when it jumps 40 days ahead.
    struct JumpingClock {
        now: Cell<DateTime<Utc>>,
        sleeps: Cell<u32>,
    }

    impl Clock for JumpingClock {
        fn now(&self) -> DateTime<Utc> {
            self.now.get()
        }
        fn sleep(&self, duration: Duration, _stop: &AtomicBool) {
            let n = self.sleeps.get() + 1;
            self.sleeps.set(n);
            let step = if n == 1 {
                chrono::Duration::days(40)
            } else {
                chrono::Duration::from_std(duration).unwrap()
            };
            self.now.set(self.now.get() + step);
        }
    }

    #[test]
    fn the_daemon_under_a_clock_that_jumps_forty_days_closes_no_day_and_sends_nothing() {
        let ws = local_workspace();
        let root = ws.path();
        let config = Config::parse(
            &fs::read_to_string(root.join("egme-ord.toml")).unwrap(),
            &root.join("egme-ord.toml"),
        )
        .unwrap();
        let registry = load_registry(&config).unwrap();
        fs::create_dir_all(config.store.parent().unwrap()).unwrap();
        let mut store = Store::open(&config.store).unwrap();
        let clock = JumpingClock {
            now: Cell::new(FIRST.parse().unwrap()),
            sleeps: Cell::new(0),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let rows: RefCell<Vec<(usize, usize, String)>> = RefCell::new(Vec::new());
        daemon::run(
            &config,
            &registry,
            &mut store,
            &clock,
            &stop,
            RunOptions::default(),
            |s, _| {
                let written: usize = s.ords.iter().map(|o| o.files_written).sum();
                let missed: usize = s.ords.iter().map(|o| o.days_missed + o.days_closed).sum();
                rows.borrow_mut()
                    .push((written, missed, s.ords[0].errors.join("; ")));
                if rows.borrow().len() == 4 {
                    stop.store(true, Ordering::SeqCst);
                }
            },
        );
        let rows = rows.into_inner();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].0, 88, "the first cycle sends the day: {rows:?}");
        for (written, closed, errors) in &rows[1..] {
            assert_eq!((*written, *closed), (0, 0), "{rows:?}");
            assert!(errors.contains("clock may have jumped"), "{errors}");
        }
        assert!(store
            .days_state(&ord_name("e-redes"))
            .unwrap()
            .closed
            .is_empty());
        assert_eq!(names_by_id(root).len(), 88);
    }
}

/// A non-root account on the test sshd (the test runs as root, as CI does): created once.
fn sftp_user() -> &'static str {
    const USER: &str = "egme-ord-sftp";
    let exists = std::process::Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let _ = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
            .status();
    }
    // A locked account ("!") is refused by sshd without PAM, even with a key.
    let ok = std::process::Command::new("usermod")
        .args(["-p", "*", USER])
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "this test creates the SFTP user {USER}: it needs root, as CI has"
    );
    USER
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// One ORD file the SFTP user may not read (mode 000 at the ORD) among E-Redes's 7, and two files
/// deleted between the listing and the reads: the others are received in the same cycle, the
/// unreadable one is retried, counted, and reported as stuck after three cycles.
#[test]
fn one_unreadable_or_vanished_file_does_not_stop_the_others_over_sftp_as_a_non_root_user() {
    let user = sftp_user();
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let server = Sshd::start(&tmp.path().join("sshd"));
    chmod(&server.dir, 0o755);
    chmod(&server.dir.join("authorized_keys"), 0o644);
    let root = tmp.path().join("ws");
    sftp_workspace(&root, &server, &server, "0s");
    write_all(&root, &demo::first_delivery());
    // A seventh E-Redes file: the correction's, without its CDRs.
    let extra: Vec<_> = demo::correction()
        .into_iter()
        .filter(|f| f.path.contains("from-ord"))
        .collect();
    assert_eq!(extra.len(), 1);
    write_all(&root, &extra);
    // Every folder on the way readable by the SFTP user; the send folders writable by it.
    for d in [root.clone(), root.join("exchange")] {
        chmod(&d, 0o755);
    }
    for o in demo::ords() {
        let ex = root.join("exchange").join(o.name);
        chmod(&ex, 0o755);
        chmod(&ex.join("from-ord"), 0o755);
        chmod(&ex.join("to-ord"), 0o777);
        for e in fs::read_dir(ex.join("from-ord")).unwrap().flatten() {
            chmod(&e.path(), 0o644);
        }
    }
    let config = fs::read_to_string(root.join("egme-ord.toml"))
        .unwrap()
        .replace(
            &format!("user = \"{}\"", crate::support::sshd::whoami()),
            &format!("user = \"{user}\""),
        );
    assert!(config.contains(&format!("user = \"{user}\"")));
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    let from = root.join("exchange/e-redes/from-ord");
    let mut names: Vec<String> = fs::read_dir(&from)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7);
    let locked = names[0].clone();
    chmod(&from.join(&locked), 0o000);
    let (code, s, out) = once(&root, "2024-10-28T10:00:00Z", &[]);
    assert_eq!(
        code,
        Some(0),
        "one unreadable file is not a failed intake: {out}"
    );
    let e = ord(&s, "e-redes");
    assert_eq!(e["received"]["applied"], 6, "{e}");
    assert_eq!(e["files_unreadable"], 1, "{e}");
    assert!(e["errors"].as_array().unwrap().is_empty(), "{e}");
    assert_eq!(
        ord(&s, "eda")["received"]["applied"],
        4,
        "the other ORDs as usual"
    );
    for i in 2..=3 {
        let (code, s, out) = once(&root, &format!("2024-10-28T10:0{i}:00Z"), &[]);
        let e = ord(&s, "e-redes");
        assert_eq!(e["files_unreadable"], 1, "{e}");
        if i == 3 {
            assert_eq!(code, Some(1), "a stuck file needs the operator: {out}");
            assert_eq!(e["files_stuck"][0], locked.as_str(), "{e}");
        }
    }
    let o = run(&root, &["status"]);
    assert!(
        text(&o).contains(&format!("STUCK: {locked} could not be read in 3 cycle(s)")),
        "{}",
        text(&o)
    );
    // Readable again: received, and no longer counted.
    chmod(&from.join(&locked), 0o644);
    let (code, s, out) = once(&root, "2024-10-28T10:05:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ord(&s, "e-redes")["received"]["applied"], 1, "{s}");
    assert!(!text(&run(&root, &["status"])).contains("could not be read"));

    // Two new files, deleted between the listing and the reads: the third is received.
    let ord0 = &demo::ords()[0];
    let day = demo::demo_days()[1];
    let mut fresh = Vec::new();
    for (k, tid) in [(0usize, 701u64), (1, 702), (2, 703)] {
        let f = demo::ord_file(
            ord0,
            ord0.cpes[k],
            demo::ord_profile(ord0.region, day, 7, 40),
            tid,
            day,
        );
        write_all(&root, std::slice::from_ref(&f));
        chmod(&root.join(&f.path), 0o644);
        fresh.push(root.join(&f.path));
    }
    let marker = tmp.path().join("listed");
    let mut child = bin()
        .args([
            "once",
            "--json",
            "--now",
            "2024-10-28T10:10:00Z",
            "--config",
        ])
        .arg(root.join("egme-ord.toml"))
        .env("EGME_ORD_PAUSE_AFTER_LIST", &marker)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the intake did not list"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    fs::remove_file(&fresh[0]).unwrap();
    fs::remove_file(&fresh[1]).unwrap();
    fs::remove_file(&marker).unwrap();
    // The other ORDs pause after their listing too: let them go on.
    let out = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
            break (status, stdout);
        }
        if marker.exists() {
            let _ = fs::remove_file(&marker);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let s: Value = serde_json::from_str(&out.1).unwrap();
    let e = ord(&s, "e-redes");
    assert_eq!(
        e["received"]["applied"], 1,
        "the file still there is received: {e}"
    );
    assert_eq!(e["files_unreadable"], 2, "{e}");
    assert!(e["errors"].as_array().unwrap().is_empty(), "{e}");
    // Gone for good: forgotten at the next listing.
    let (_, _, _) = once(&root, "2024-10-28T10:15:00Z", &[]);
    assert!(!text(&run(&root, &["status"])).contains("could not be read"));
}

/// Every process below `pid` (sshd's per-connection processes and their sftp servers).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let o = std::process::Command::new("pgrep")
            .args(["-P", &p.to_string()])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Ok(c) = line.trim().parse::<u32>() {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

fn signal(pids: &[u32], sig: &str) {
    for p in pids {
        let _ = std::process::Command::new("kill")
            .args([sig, &p.to_string()])
            .status();
    }
}

/// SIGTERM while the ORD's server is frozen (SIGSTOP on its sshd sessions) in the middle of a
/// day's delivery: `run` exits within stop_timeout + 5 s, non-zero, saying how many files were
/// not delivered; the next cycle delivers them, each once.
#[test]
fn sigterm_with_a_frozen_server_stops_within_stop_timeout_and_the_restart_delivers_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let root = tmp.path().join("ws");
    let scale = demo::at_scale(300);
    write_all(&root, &scale.files);
    let to = root.join("remote/to-ord");
    fs::create_dir_all(&to).unwrap();
    let known_hosts = server.dir.join("known_hosts");
    let config = format!(
        "stop_timeout = \"3s\"\n{}",
        demo::at_scale_config(
            &server.endpoint(&root.join("remote/from-ord"), &known_hosts),
            &server.endpoint(&to, &known_hosts),
        )
    );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    let log = root.join("run.log");
    let mut daemon = bin()
        .args(["run", "--now", "2024-11-05T21:30:00Z", "--config"])
        .arg(root.join("egme-ord.toml"))
        .env("EGME_ORD_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"file sent\"")
    {
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let frozen = descendants(server.pid());
    assert!(!frozen.is_empty(), "the sshd sessions to freeze");
    signal(&frozen, "-STOP");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let asked = std::time::Instant::now();
    signal(&[daemon.id()], "-TERM");
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(3 + 5),
            "run did not stop within stop_timeout + 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = asked.elapsed();
    signal(&frozen, "-CONT");
    signal(&frozen, "-KILL");
    let text_log = fs::read_to_string(&log).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "unfinished work is not success: {text_log}"
    );
    assert!(
        text_log.contains("stop_timeout reached") && text_log.contains("e-redes: "),
        "the log says what was not delivered: {text_log}"
    );
    let at_ord = fs::read_dir(&to)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count() as u64;
    assert!(
        at_ord < scale.outputs,
        "stopped mid-delivery ({at_ord} of {})",
        scale.outputs
    );
    // The restart delivers the rest, each once.
    let (code, s, out) = once(&root, "2024-11-05T21:40:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s["ords"][0]["files_pending"], 0, "{s}");
    let names: Vec<String> = fs::read_dir(&to)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(names.len() as u64, scale.outputs, "every file once");
    let ids: BTreeSet<u64> = names
        .iter()
        .filter_map(|n| {
            OrdFileName::parse(
                n,
                egme_ord_core::region::Region::Continent,
                Direction::Outbound,
            )
            .ok()
        })
        .map(|n| n.ntransm.value)
        .collect();
    assert_eq!(ids.len() as u64, scale.outputs);
    let o = run(&root, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "stopped in {took:?} with {at_ord} of {} delivered",
        scale.outputs
    );
}

/// Every file under `dir`: relative path → sha256 (and the folders, as empty entries).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                todo.push(p);
            } else {
                out.insert(rel, egme_ord::fsutil::sha256_hex(&fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn once_dry_run_leaves_the_ledger_the_work_folder_and_the_ord_folders_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let root = tmp.path().join("ws");
    sftp_workspace(&root, &server, &server, "0s");
    // Received files are moved away at the ORD: a dry run must not move them.
    let config: String = fs::read_to_string(root.join("egme-ord.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("receive = ") {
                l.replace("attempts = 2 }", "attempts = 2, move_to = \"processed\" }") + "\n"
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(config.matches("move_to").count(), 3);
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(&root, &demo::first_delivery());
    let (code, _, out) = once(&root, "2024-10-28T10:00:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    // New input arrives: a cycle at FIRST would receive the correction and send the day.
    let extra: Vec<_> = demo::correction();
    write_all(&root, &extra);
    let before = tree(&root);
    let (code, s, out) = once(&root, FIRST, &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s["dry_run"], true);
    let e = ord(&s, "e-redes");
    assert_eq!(
        e["received"]["applied"], 1,
        "it says what it would receive: {e}"
    );
    assert!(e["files_written"].as_u64().unwrap() > 0, "and send: {e}");
    assert_eq!(e["files_written"], e["files_delivered"], "{e}");
    let after = tree(&root);
    assert_eq!(before, after, "the dry run changed something");
    // The real cycle then does what the dry run said.
    let (code, real, out) = once(&root, FIRST, &[]);
    assert_eq!(code, Some(0), "{out}");
    for name in ["e-redes", "eda", "eem"] {
        assert_eq!(
            ord(&real, name)["files_written"],
            ord(&s, name)["files_written"],
            "{name}"
        );
        assert_eq!(
            ord(&real, name)["received"],
            ord(&s, name)["received"],
            "{name}"
        );
    }
}

/// The decision on same-name re-uploads (docs/DECISIONS.md): a listed file whose name, size and
/// mtime are those of a file already received is that file, and is not read again; the same
/// name with another size or mtime is read, and its content goes through versions as usual.
#[test]
fn a_same_name_re_upload_is_read_when_its_size_or_mtime_changed_and_not_when_both_were_kept() {
    let ws = local_workspace();
    let root = ws.path();
    let (code, _, out) = once(root, "2024-10-28T10:00:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    // E-Redes's first CPE on the 27th: the 2nd file of first_delivery (tid 102).
    let ord0 = &demo::ords()[0];
    let d2 = demo::demo_days()[1];
    let original = demo::ord_file(
        ord0,
        ord0.cpes[0],
        demo::ord_profile(ord0.region, d2, 0, 22),
        102,
        d2.succ_opt().unwrap(),
    );
    let path = root.join(&original.path);
    assert_eq!(
        fs::read(&path).unwrap(),
        original.bytes,
        "the file the demo delivered"
    );
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let corrected = demo::ord_file(
        ord0,
        ord0.cpes[0],
        demo::ord_profile(ord0.region, d2, 0, 35),
        102,
        d2.succ_opt().unwrap(),
    );
    assert_eq!(corrected.path, original.path);
    assert_eq!(corrected.bytes.len(), original.bytes.len(), "same size");
    assert_ne!(corrected.bytes, original.bytes);
    // `put -p`: same name, same size, mtime preserved.
    fs::write(&path, &corrected.bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (code, s, out) = once(root, "2024-10-28T10:05:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        ord(&s, "e-redes")["received"]
            .as_object()
            .unwrap()
            .is_empty(),
        "not read again: {s}"
    );
    // With a new mtime it is read, and applied (same ids: the latest receipt wins).
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime - std::time::Duration::from_secs(60))
        .unwrap();
    let (code, s, out) = once(root, "2024-10-28T10:10:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(ord(&s, "e-redes")["received"]["applied"], 1, "{s}");
}
