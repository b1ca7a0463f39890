//! Legal but odd: input at the end of its range, folders that collide through their spelling,
//! clocks that lie, files that are not files. Each is refused (or handled) before it can cost an id,
//! a byte or a day.

use crate::support::{bin, events, names_by_id, run, text, write_all};

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egme_ord_core::demo;
use egme_ord_core::filename::{OrdFileName, MAX_TRANSMISSION_ID};
use serde_json::Value;

const FIRST: &str = "2024-10-28T21:30:00Z";
const SECOND: &str = "2024-10-29T21:30:00Z";

/// The demo's workspace on local folders, its config changed by `edit`.
fn demo_workspace(edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("egme-ord.toml"),
        edit(demo::config_toml("20:00", "0s")),
    )
    .unwrap();
    write_all(&root, &demo::registry_files());
    write_all(&root, &demo::first_delivery());
    for o in demo::ords() {
        fs::create_dir_all(root.join("exchange").join(o.name).join("to-ord")).unwrap();
    }
    (tmp, root)
}

/// Every ORD's sequence starting at `first`.
fn starting_at(first: u64) -> impl FnOnce(String) -> String {
    move |config| {
        let mut out = String::new();
        for line in config.lines() {
            out.push_str(line);
            out.push('\n');
            if line.starts_with("send = ") {
                out.push_str(&format!("first_transmission_id = {first}\n"));
            }
        }
        out
    }
}

fn once(root: &Path, now: &str) -> (Option<i32>, Value, String) {
    once_with(root, now, &[])
}

/// `once --json --now NOW EXTRA…`: its exit code, its summary and everything it printed.
fn once_with(root: &Path, now: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["once", "--json", "--now", now];
    args.extend_from_slice(extra);
    let o = run(root, &args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), v, text(&o))
}

#[test]
fn transmission_ids_never_pass_the_ten_digit_ntransm() {
    let (_tmp, root) = demo_workspace(starting_at(9_999_999_990));
    let o = run(&root, &["validate-config"]);
    assert!(o.status.success(), "{}", text(&o));
    let (code, summary, out) = once(&root, FIRST);
    assert_ne!(
        code,
        Some(0),
        "a send that runs out of ids must fail: {out}"
    );
    // Nothing past 9999999999 was written or delivered; ids up to it were.
    let ids = names_by_id(&root);
    assert!(!ids.is_empty(), "{summary}");
    for ((ord, id), names) in &ids {
        assert!(*id <= MAX_TRANSMISSION_ID, "{ord}: {names:?}");
    }
    // A batch that runs out is rolled back whole: e-redes' 26 files need more than its 10 ids.
    assert!(!ids.keys().any(|(ord, _)| ord == "e-redes"), "{ids:?}");
    // Our own check calls every file we delivered valid (no E601).
    for o in demo::ords() {
        let dir = root.join("exchange").join(o.name).join("to-ord");
        let c = bin().arg("check").arg(&dir).output().unwrap();
        assert!(c.status.success(), "{}: {}", o.name, text(&c));
    }
    // Said as an ERROR event, with the WARN before it.
    let exhausted = events(&root, "ids-exhausted");
    assert!(
        exhausted
            .iter()
            .any(|d| d.contains("9999999999") && d.contains("Transmission ids running out")),
        "{exhausted:?}\n{out}"
    );
    assert!(!events(&root, "ids-running-out").is_empty(), "{out}");
    // The next cycle refuses again, and writes nothing.
    let before = names_by_id(&root);
    let (code, _, out) = once(&root, SECOND);
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(names_by_id(&root), before);
}

#[test]
fn recover_counts_our_names_past_ten_digits_and_large_last_sent_ids_in_time() {
    let (_tmp, root) = demo_workspace(|c| c);
    let (code, _, out) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{out}");
    // An older version wrote ids past 9999999999 to eda; then state/ and work/ are lost.
    let to_ord = root.join("exchange/eda/to-ord");
    let some = fs::read_dir(&to_ord)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".sgl"))
        .unwrap();
    let (stem, _) = some.rsplit_once('_').unwrap();
    let past = format!("{stem}_10000000025.sgl");
    fs::copy(to_ord.join(&some), to_ord.join(&past)).unwrap();
    fs::remove_dir_all(root.join("state")).unwrap();
    fs::remove_dir_all(root.join("work")).unwrap();
    let r = run(&root, &["recover", "--now", FIRST]);
    let shown = text(&r);
    assert_eq!(
        r.status.code(),
        Some(1),
        "a used id past the range is a problem: {shown}"
    );
    assert!(shown.contains("10000000025"), "{shown}");
    // The id is never used again: eda's send is refused, the other ORDs are served.
    write_all(&root, &demo::correction());
    let before = names_by_id(&root);
    let (code, summary, out) = once(&root, SECOND);
    assert_ne!(code, Some(0), "{out}");
    let after = names_by_id(&root);
    let new: Vec<_> = after.keys().filter(|k| !before.contains_key(k)).collect();
    assert!(new.iter().all(|(ord, _)| ord != "eda"), "{new:?}");
    assert!(new.iter().any(|(ord, _)| ord == "e-redes"), "{summary}");
    assert!(
        events(&root, "ids-exhausted")
            .iter()
            .any(|d| d.contains("eda")),
        "{out}"
    );
    // `--last-sent-id` at the top of the range is handled in time; past it, refused as a usage error.
    for (given, code) in [
        (MAX_TRANSMISSION_ID.to_string(), Some(1)),
        ((MAX_TRANSMISSION_ID + 1).to_string(), Some(2)),
        (u64::MAX.to_string(), Some(2)),
    ] {
        let started = Instant::now();
        let r = run(
            &root,
            &[
                "recover",
                "--ord",
                "e-redes",
                "--last-sent-id",
                &given,
                "--now",
                SECOND,
            ],
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{given}");
        assert_eq!(r.status.code(), code, "{given}: {}", text(&r));
    }
}

/// `validate-config` on the demo's config changed by `edit`: its exit code and output.
fn validate(
    edit: impl FnOnce(String) -> String,
    setup: impl FnOnce(&Path),
) -> (Option<i32>, String) {
    let (_tmp, root) = demo_workspace(edit);
    setup(&root);
    let o = run(&root, &["validate-config"]);
    let shown = text(&o);
    // The cycle refuses the same config at its start, and writes nothing.
    let (code, _, out) = once(&root, FIRST);
    if o.status.code() != Some(0) {
        assert_eq!(code, Some(2), "{out}");
        assert!(names_by_id(&root).is_empty());
    }
    (o.status.code(), shown)
}

/// A change to the demo's config.
type Edit = Box<dyn FnOnce(String) -> String>;

fn line_replaced(from: &'static str, to: &'static str) -> impl FnOnce(String) -> String {
    move |c| {
        assert!(c.contains(from), "{from}");
        c.replacen(from, to, 1)
    }
}

#[test]
fn folders_that_collide_through_their_spelling_are_refused_naming_both_paths() {
    let cases: [(&str, Edit, &[&str]); 4] = [
        (
            "eda's send folder is e-redes' through `..`",
            Box::new(line_replaced(
                "path = \"exchange/eda/to-ord\"",
                "path = \"exchange/eda/../e-redes/./to-ord\"",
            )),
            &[
                "ord[1].send.path",
                "exchange/e-redes/to-ord",
                "eda's send folder",
                "e-redes's send folder",
            ],
        ),
        (
            "work_dir inside e-redes' send folder",
            Box::new(line_replaced(
                "work_dir = \"work\"",
                "work_dir = \"exchange/e-redes/to-ord/work\"",
            )),
            &[
                "work_dir",
                "exchange/e-redes/to-ord/work",
                "e-redes's send folder",
            ],
        ),
        (
            "the ledger inside eda's receive folder",
            Box::new(line_replaced(
                "store = \"state/egme-ord.sqlite\"",
                "store = \"exchange/eda/from-ord/egme-ord.sqlite\"",
            )),
            &[
                "the ledger (store)",
                "exchange/eda/from-ord/egme-ord.sqlite",
                "eda's receive folder",
            ],
        ),
        (
            "eem receives from its own send folder",
            Box::new(line_replaced(
                "path = \"exchange/eem/from-ord\"",
                "path = \"exchange/eem/./to-ord\"",
            )),
            &[
                "ord[2].send.path",
                "eem's send folder",
                "eem's receive folder",
                "read back our own files",
            ],
        ),
    ];
    for (what, edit, said) in cases {
        let (code, shown) = validate(edit, |_| {});
        assert_eq!(code, Some(1), "{what}: {shown}");
        for s in said {
            assert!(shown.contains(s), "{what}: {s:?} not said in\n{shown}");
        }
    }
}

#[test]
fn folders_that_collide_through_a_link_are_refused_naming_both_paths() {
    let (code, shown) = validate(
        line_replaced(
            "path = \"exchange/eda/to-ord\"",
            "path = \"exchange/alias/to-ord\"",
        ),
        |root| {
            std::os::unix::fs::symlink(root.join("exchange/e-redes"), root.join("exchange/alias"))
                .unwrap()
        },
    );
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("after following links"), "{shown}");
    assert!(
        shown.contains("eda's send folder") && shown.contains("e-redes's send folder"),
        "{shown}"
    );
    // The demo's own layout is valid.
    let (code, shown) = validate(|c| c, |_| {});
    assert_eq!(code, Some(0), "{shown}");
}

#[test]
fn two_ords_sending_to_one_remote_folder_of_one_account_are_refused() {
    let sftp = |host: &str, path: &str| {
        format!("{{ transport = \"sftp\", host = \"{host}\", port = 22, user = \"egme\", key = \"k\", known_hosts = \"kh\", path = \"{path}\" }}")
    };
    // The same account spelt with another case of its host, the same folder with `.` and a `/`.
    let e_redes = format!("send = {}", sftp("Ord.example", "in/egme"));
    let eda = format!("send = {}", sftp("ord.example", "in/./egme/"));
    let (_tmp, root) = demo_workspace(|c| {
        c.replacen(
            "send = { transport = \"local\", path = \"exchange/e-redes/to-ord\" }",
            &e_redes,
            1,
        )
        .replacen(
            "send = { transport = \"local\", path = \"exchange/eda/to-ord\" }",
            &eda,
            1,
        )
    });
    let o = run(&root, &["validate-config", "--no-environment"]);
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(shown.contains("egme@ord.example:22:in/egme"), "{shown}");
    assert!(
        shown.contains("eda's send folder") && shown.contains("e-redes's send folder"),
        "{shown}"
    );
}

/// Every generation date in the names of one ORD's files, by transmission id.
fn generation_dates(root: &Path, ord: &str) -> Vec<(u64, chrono::NaiveDate)> {
    let region = demo::ords().iter().find(|o| o.name == ord).unwrap().region;
    let mut out: Vec<(u64, chrono::NaiveDate)> = names_by_id(root)
        .into_iter()
        .filter(|((o, _), _)| o == ord)
        .flat_map(|(_, names)| names)
        .map(|n| {
            let n = OrdFileName::parse_ours(&n, region).unwrap();
            (n.ntransm.value, n.date)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_dead_rtc_at_boot_is_refused_not_taken_as_the_reference_and_cycles_resume_once_ntp_fixes_it() {
    let (_tmp, root) = demo_workspace(|c| c);
    assert_eq!(once_with(&root, FIRST, &[]).0, Some(0));
    // The RTC says 1970: refused, as is a clock three days back (max_clock_step is 2 days).
    for wrong in ["1970-01-01T00:00:10Z", "2024-10-25T21:30:00Z"] {
        let (code, _, out) = once_with(&root, wrong, &[]);
        assert_eq!(code, Some(1), "{wrong}: {out}");
        assert!(out.contains("before the last cycle's"), "{wrong}: {out}");
    }
    // NTP fixes it: the next cycle runs by itself, no --allow-clock-jump.
    write_all(&root, &demo::correction());
    let (code, _, out) = once_with(&root, SECOND, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!names_by_id(&root).is_empty());
}

#[test]
fn a_clock_that_goes_back_within_the_step_never_makes_generation_dates_go_backwards() {
    let (_tmp, root) = demo_workspace(|c| c);
    assert_eq!(once_with(&root, SECOND, &[]).0, Some(0));
    let first = generation_dates(&root, "e-redes");
    assert!(
        first.iter().all(|(_, d)| d.to_string() == "2024-10-29"),
        "{first:?}"
    );
    // A day back (within max_clock_step): the correction goes out, named no earlier.
    write_all(&root, &demo::correction());
    let (code, _, out) = once_with(&root, "2024-10-28T21:35:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
    let all = generation_dates(&root, "e-redes");
    assert!(all.len() > first.len(), "a correction went out: {out}");
    assert!(
        all.windows(2).all(|w| w[0].1 <= w[1].1),
        "generation dates go backwards: {all:?}"
    );
    // The clock right again: cycles go on by themselves.
    let (code, _, out) = once_with(&root, "2024-10-29T21:40:00Z", &[]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn allow_clock_jump_never_lets_a_cycle_run_far_ahead_of_the_real_clock() {
    let (_tmp, root) = demo_workspace(|c| c);
    assert_eq!(once_with(&root, FIRST, &[]).0, Some(0));
    let (code, _, out) = once_with(&root, "2100-01-01T00:00:00Z", &["--allow-clock-jump"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ahead of the real clock"), "{out}");
    assert!(
        events(&root, "missed-days").is_empty(),
        "no day closed as missed"
    );
    assert!(!events(&root, "clock-jump").is_empty());
}

/// Runs `args` with a deadline: a command that hangs fails the test instead of hanging it.
fn run_within(root: &Path, args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let child = bin()
        .args(args)
        .arg("--config")
        .arg(root.join("egme-ord.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Its output read as it comes (a full pipe must not look like a hang).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(o) => {
            let o = o.unwrap();
            (o.status.code(), text(&o))
        }
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            panic!("{args:?} did not finish in {limit:?}");
        }
    }
}

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

#[test]
fn a_config_or_registry_that_is_not_a_regular_file_is_refused_without_reading_it() {
    let limit = Duration::from_secs(20);
    // The registry's CPE file as a FIFO, then as /dev/zero: validate-config and once refuse it.
    for odd in ["fifo", "/dev/zero"] {
        let (_tmp, root) = demo_workspace(|c| c);
        let cpes = root.join("registry/cpes.csv");
        if odd == "fifo" {
            mkfifo(&cpes);
        } else {
            fs::remove_file(&cpes).unwrap();
            std::os::unix::fs::symlink(odd, &cpes).unwrap();
        }
        for args in [&["validate-config"][..], &["once", "--now", FIRST]] {
            let (code, out) = run_within(&root, args, limit);
            assert_ne!(code, Some(0), "{odd} {args:?}: {out}");
            assert!(
                out.contains("not a regular file") && out.contains("cpes.csv"),
                "{odd} {args:?}: {out}"
            );
        }
    }
    // The config itself.
    let (_tmp, root) = demo_workspace(|c| c);
    mkfifo(&root.join("egme-ord.toml"));
    let (code, out) = run_within(&root, &["validate-config"], limit);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("a FIFO"), "{out}");
    fs::remove_file(root.join("egme-ord.toml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("egme-ord.toml")).unwrap();
    let (code, out) = run_within(&root, &["once", "--now", FIRST], limit);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("a character device"), "{out}");
}

#[test]
fn a_config_with_many_unknown_keys_is_read_in_linear_time_and_a_huge_one_is_refused() {
    let (_tmp, root) = demo_workspace(|c| c);
    let config = fs::read_to_string(root.join("egme-ord.toml")).unwrap();
    let (head, rest) = config.split_once("[mobility]").unwrap();
    let with = |n: usize| {
        let keys: String = (0..n).map(|i| format!("unknown_key_{i} = 1\n")).collect();
        format!("{head}{keys}[mobility]{rest}")
    };
    // 40,000 keys (~0.9 MB, under the 1 MiB cap): every one reported, in time.
    fs::write(root.join("egme-ord.toml"), with(40_000)).unwrap();
    let (code, out) = run_within(
        &root,
        &["validate-config", "--no-environment"],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1), "{}", &out[out.len().saturating_sub(500)..]);
    assert!(
        out.contains("40000 error(s)"),
        "{}",
        &out[out.len().saturating_sub(500)..]
    );
    assert!(
        out.contains(":8:1: unknown key `unknown_key_0`"),
        "{}",
        &out[..500]
    );
    // 400,000 keys (9 MB): refused before it is parsed.
    fs::write(root.join("egme-ord.toml"), with(400_000)).unwrap();
    let (code, out) = run_within(&root, &["validate-config"], Duration::from_secs(10));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("more than the 1048576 bytes"), "{out}");
}

/// The demo's workspace with only the ORDs named kept in its config (a deployment per ORD).
fn deployment_of(ords: &'static [&'static str]) -> impl FnOnce(String) -> String {
    move |config| {
        let others: Vec<String> = demo::ords()
            .iter()
            .filter(|o| !ords.contains(&o.name))
            .map(|o| format!("{:?}", o.name))
            .collect();
        let config = config.replacen(
            "[registry]\n",
            &format!("[registry]\nother_ords = [{}]\n", others.join(", ")),
            1,
        );
        let mut sections = config.split("\n[[ord]]\n");
        let mut out = sections.next().unwrap().to_string();
        for s in sections {
            let (body, tail) = s
                .split_once("\n[reports]")
                .map_or((s, None), |(b, t)| (b, Some(t)));
            if ords
                .iter()
                .any(|o| body.contains(&format!("name = \"{o}\"")))
            {
                out.push_str("\n[[ord]]\n");
                out.push_str(body);
            }
            if let Some(t) = tail {
                out.push_str("\n[reports]");
                out.push_str(t);
            }
        }
        out
    }
}

#[test]
fn restore_refuses_another_deployments_backup_and_reports_missing_evidence_as_a_problem() {
    let (_eda_tmp, eda) = demo_workspace(deployment_of(&["eda"]));
    let (_ered_tmp, e_redes) = demo_workspace(deployment_of(&["e-redes"]));
    for root in [&eda, &e_redes] {
        assert_eq!(once_with(root, FIRST, &[]).0, Some(0));
    }
    let backups = tempfile::tempdir().unwrap();
    let eda_backup = backups.path().join("eda");
    let o = run(&eda, &["backup", eda_backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // eda's backup into e-redes' config: refused, naming both; nothing replaced.
    let ledger = e_redes.join("state/egme-ord.sqlite");
    let before = fs::read(&ledger).unwrap();
    let o = run(
        &e_redes,
        &["restore", "--now", SECOND, eda_backup.to_str().unwrap()],
    );
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("another deployment") && shown.contains("eda") && shown.contains("e-redes"),
        "{shown}"
    );
    assert_eq!(
        fs::read(&ledger).unwrap(),
        before,
        "the ledger was replaced"
    );
    // A backup without its outbox nor its backup.json: restored, but not a success.
    let o = run(
        &e_redes,
        &["backup", backups.path().join("e").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    fs::remove_dir_all(backups.path().join("e/work/outbox")).unwrap();
    fs::remove_file(backups.path().join("e/backup.json")).unwrap();
    fs::remove_dir_all(e_redes.join("work/outbox")).unwrap();
    let o = run(
        &e_redes,
        &[
            "restore",
            "--now",
            SECOND,
            backups.path().join("e").to_str().unwrap(),
        ],
    );
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("no work/outbox") && shown.contains("backup.json"),
        "{shown}"
    );
}

#[test]
fn a_restored_backup_older_than_max_clock_step_does_not_refuse_the_cycles_after_it() {
    let (_tmp, root) = demo_workspace(|c| c);
    assert_eq!(once_with(&root, FIRST, &[]).0, Some(0));
    let backup = root.join("backup");
    let o = run(&root, &["backup", backup.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // Five days later (max_clock_step is two), the ledger is lost and the backup restored.
    let later = "2024-11-02T21:30:00Z";
    assert_eq!(once_with(&root, "2024-10-30T21:30:00Z", &[]).0, Some(0));
    assert_eq!(once_with(&root, "2024-11-01T21:30:00Z", &[]).0, Some(0));
    let o = run(
        &root,
        &["restore", "--now", later, backup.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (code, _, out) = once_with(&root, later, &[]);
    assert_eq!(code, Some(0), "{out}");
}

/// After a crash, the ledger is looked into with `egme-ord sql` (the sqlite3 shell would
/// checkpoint its write-ahead log without the page checksums and leave it "damaged"): reads
/// answer, anything that writes is refused before it runs, and the next cycle and `verify` find
/// the ledger whole.
#[test]
fn the_ledger_is_read_after_a_crash_with_egme_ord_sql_and_stays_whole() {
    let (_tmp, root) = demo_workspace(|c| c);
    let crashed = bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", crate::support::FIRST])
        .env("EGME_ORD_CRASH_AT", "after-delivery-put")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the cycle must have crashed");
    let o = run(
        &root,
        &[
            "sql",
            "SELECT ord, count(*) AS files FROM sent_files GROUP BY ord ORDER BY ord",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.starts_with("ord\tfiles\n") && out.contains("e-redes\t"),
        "{out}"
    );
    let o = run(
        &root,
        &["sql", "--json", "SELECT count(*) AS n FROM events"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["n"].is_u64(), "{v}");
    for write in ["DELETE FROM sent_files", "PRAGMA journal_mode = DELETE"] {
        let o = run(&root, &["sql", write]);
        assert_eq!(o.status.code(), Some(2), "{write}: {}", text(&o));
        assert!(
            text(&o).contains("only a statement that reads"),
            "{}",
            text(&o)
        );
    }
    let (code, s, out) = once(&root, crate::support::FIRST);
    assert_eq!(code, Some(0), "{s}\n{out}");
    let o = run(&root, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// `recover` after `state/` and `work/` are lost: the outbox is missing evidence (the ORD may
/// have taken files away, which its folders no longer show), a problem with what to do (exit 1),
/// not a success; once the operator gives the ORD's last id, it is settled (exit 0).
#[test]
fn recover_without_the_outbox_reports_the_missing_evidence() {
    let (_tmp, root) = demo_workspace(|c| c);
    let (code, _, out) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{out}");
    let last_eda = names_by_id(&root)
        .keys()
        .filter(|(o, _)| o == "eda")
        .map(|(_, id)| *id)
        .max()
        .unwrap();
    fs::remove_dir_all(root.join("state")).unwrap();
    fs::remove_dir_all(root.join("work")).unwrap();
    let r = run(&root, &["recover", "--now", FIRST]);
    let shown = text(&r);
    assert_eq!(r.status.code(), Some(1), "{shown}");
    for o in demo::ords() {
        assert!(
            shown.contains(&format!("{}: PROBLEM: the outbox", o.name))
                && shown.contains("--last-sent-id"),
            "{shown}"
        );
    }
    // The operator asks eda for its last id and gives it: settled for eda.
    fs::remove_dir_all(root.join("state")).unwrap();
    fs::remove_dir_all(root.join("work")).unwrap();
    let r = run(
        &root,
        &[
            "recover",
            "--now",
            FIRST,
            "--ord",
            "eda",
            "--last-sent-id",
            &last_eda.to_string(),
        ],
    );
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
}
