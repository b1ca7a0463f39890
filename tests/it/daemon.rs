//! The daemon: its loop on a controllable clock (D+1 send, a correction on D+5, the closing after
//! D+30), and `egme-ord run` as a process (logs, metrics, single instance, clean stop on SIGTERM).

use crate::support::write_all;

use std::cell::{Cell, RefCell};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use egme_ord::cycle::{load_registry, RunOptions};
use egme_ord::daemon::{self, Clock};
use egme_ord::store::Store;
use egme_ord_core::config::Config;
use egme_ord_core::demo::{self, DemoFile};

/// Per cycle: time, E-Redes files written, E-Redes days closed, late mobility records.
type CycleRow = (DateTime<Utc>, usize, usize, u64);

struct FakeClock {
    now: Cell<DateTime<Utc>>,
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        self.now.get()
    }
    fn sleep(&self, duration: Duration, _stop: &AtomicBool) {
        self.now
            .set(self.now.get() + chrono::Duration::from_std(duration).unwrap());
    }
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sent_names(root: &Path, ord: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root.join("exchange").join(ord).join("to-ord"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort_by_key(|n| n.rsplit('_').next().unwrap().to_string());
    v
}

#[test]
fn on_a_controllable_clock_the_d_plus_1_send_a_d_plus_5_correction_and_the_closing_after_d_plus_30()
{
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(
        root.join("egme-ord.toml"),
        demo::config_toml("20:00", "0s")
            .replace("poll_interval = \"5m\"", "poll_interval = \"3h\""),
    )
    .unwrap();
    write_all(root, &demo::registry_files());
    write_all(root, &demo::first_delivery());
    let config = Config::parse(
        &fs::read_to_string(root.join("egme-ord.toml")).unwrap(),
        &root.join("egme-ord.toml"),
    )
    .unwrap();
    let registry = load_registry(&config).unwrap();
    fs::create_dir_all(config.store.parent().unwrap()).unwrap();
    let mut store = Store::open(&config.store).unwrap();
    let clock = FakeClock {
        now: Cell::new(t("2024-10-28T00:00:00Z")),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let log: RefCell<Vec<CycleRow>> = RefCell::new(Vec::new());
    let corrected = Cell::new(false);
    let late = Cell::new(false);
    daemon::run(
        &config,
        &registry,
        &mut store,
        &clock,
        &stop,
        RunOptions::default(),
        |s, _| {
            let now = s.now.unwrap();
            let e = &s.ords[0];
            log.borrow_mut().push((
                now,
                e.files_written,
                e.days_closed,
                s.mobility.records_late as u64,
            ));
            if now >= t("2024-11-01T12:00:00Z") && !corrected.replace(true) {
                write_all(root, &demo::correction());
            }
            if now >= t("2024-11-27T12:00:00Z") && !late.replace(true) {
                let cpe = demo::ords()[0].cpes[0];
                let cdr = demo::cdr(
                    "LATE",
                    ("PT", "GAL"),
                    &demo::evse_id(&cpe, 0),
                    t("2024-10-27T10:00:00Z"),
                    30,
                    2_000,
                    t("2024-11-27T00:00:00Z"),
                );
                write_all(
                    root,
                    &[DemoFile {
                        path: "mobility/late.json".into(),
                        bytes: serde_json::to_vec(&cdr).unwrap(),
                    }],
                );
            }
            if now >= t("2024-11-29T00:00:00Z") {
                stop.store(true, Ordering::SeqCst);
            }
        },
    );
    let log = log.into_inner();
    let writes: Vec<(DateTime<Utc>, usize)> =
        log.iter().filter(|l| l.1 > 0).map(|l| (l.0, l.1)).collect();
    // D+1: the first cycle at or after 20:00 local on 28 October sends both days.
    assert_eq!(writes[0], (t("2024-10-28T21:00:00Z"), 40), "{writes:?}");
    // D+5: the correction arrives on 1 November and is sent that evening, two changed files only.
    assert_eq!(writes[1], (t("2024-11-01T21:00:00Z"), 2), "{writes:?}");
    assert_eq!(
        writes.len(),
        2,
        "nothing else changed, nothing else sent: {writes:?}"
    );
    // Closing: the 26th after its D+30 send on 25 November, the 27th on the 26th.
    let closes: Vec<DateTime<Utc>> = log.iter().filter(|l| l.2 > 0).map(|l| l.0).collect();
    assert_eq!(
        closes,
        vec![t("2024-11-25T21:00:00Z"), t("2024-11-26T21:00:00Z")]
    );
    // A CDR for a closed day is late: reported, nothing sent.
    assert_eq!(log.iter().map(|l| l.3).sum::<u64>(), 1);
    let names = sent_names(root, "e-redes");
    assert_eq!(names.len(), 42);
    assert!(
        names[..40].iter().all(|n| n.contains("_20241028_")),
        "{names:?}"
    );
    assert!(
        names[40..].iter().all(|n| n.contains("_20241101_")),
        "{names:?}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The demo's config and registry in `root`, polled every second, with metrics on a free port
/// (returned).
fn daemon_workspace(root: &Path) -> u16 {
    let port = free_port();
    let config = demo::config_toml("00:00", "0s").replace(
        "poll_interval = \"5m\"",
        &format!("poll_interval = \"1s\"\nmetrics_listen = \"127.0.0.1:{port}\""),
    );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(root, &demo::registry_files());
    port
}

#[test]
fn run_logs_json_serves_metrics_refuses_a_second_instance_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = daemon_workspace(root);
    let log_path = root.join("log.jsonl");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_egme-ord"))
        .args(["run", "--config"])
        .arg(root.join("egme-ord.toml"))
        .stderr(fs::File::create(&log_path).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first cycle.
    let mut logs = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        logs = fs::read_to_string(&log_path).unwrap_or_default();
        if logs.contains("cycle summary") {
            break;
        }
    }
    assert!(logs.contains("cycle summary"), "{logs}");
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
    // Metrics.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(
        body.contains("egme_ord_cycles_total")
            && body.contains("egme_ord_files_sent_total{ord=\"eda\"}"),
        "{body}"
    );
    // A second instance on the same store is refused.
    let second = Command::new(env!("CARGO_BIN_EXE_egme-ord"))
        .args(["once", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another egme-ord holds the store"));
    // status works while the daemon runs.
    let status = Command::new(env!("CARGO_BIN_EXE_egme-ord"))
        .args(["status", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    // SIGTERM: a clean stop.
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut code = None;
    for _ in 0..100 {
        if let Some(st) = daemon.try_wait().unwrap() {
            code = st.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, Some(0), "the daemon did not stop cleanly within 10 s");
    assert!(fs::read_to_string(&log_path)
        .unwrap()
        .contains("egme-ord stopped"));
}

/// The `LimitNOFILE` the shipped unit sets.
fn unit_nofile() -> u64 {
    let unit = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/egme-ord@.service"
    ))
    .unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("the unit sets LimitNOFILE")
        .trim()
        .parse()
        .unwrap()
}

/// This test process's own soft limit raised to its hard one (it opens 1,100 connections).
fn raise_own_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn scrape(port: u16) -> (Duration, String) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    (started.elapsed(), body)
}

#[test]
fn idle_connections_to_the_metrics_port_never_stop_the_cycles_nor_a_scrape_under_the_units_limit() {
    idle_connections(unit_nofile());
}

#[test]
fn idle_connections_to_the_metrics_port_never_stop_the_cycles_nor_a_scrape_under_1024_descriptors()
{
    idle_connections(1024);
}

fn idle_connections(nofile: u64) {
    let own = raise_own_nofile();
    assert!(
        own > 1_300,
        "this test needs 1,300 descriptors, the hard limit is {own}"
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = daemon_workspace(root);
    write_all(root, &demo::first_delivery());
    let log_path = root.join("log.jsonl");
    // Under the limit (or this machine's hard limit, when lower).
    let nofile = nofile.min(own);
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" run --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_egme-ord"))
        .arg(root.join("egme-ord.toml"))
        .stderr(fs::File::create(&log_path).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cycles = || {
        fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches("cycle summary")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while cycles() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        cycles() > 0,
        "{}",
        fs::read_to_string(&log_path).unwrap_or_default()
    );
    // 1,100 idle connections, a slowloris head and a 10 MB request.
    let idle: Vec<TcpStream> = (0..1_100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let mut big = TcpStream::connect(("127.0.0.1", port)).unwrap();
    big.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let header = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10 << 20)
    );
    let _ = big.write_all(header.as_bytes());
    // A scrape answers in under a second, and the cycles go on.
    let (took, body) = scrape(port);
    assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
    assert!(body.contains("egme_ord_cycles_total"), "{body}");
    let before = cycles();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cycles() < before + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        cycles() >= before + 3,
        "the cycles stopped: {}",
        &logs[logs.len().saturating_sub(3000)..]
    );
    assert!(
        !logs.contains("Too many open files"),
        "{}",
        &logs[logs.len().saturating_sub(3000)..]
    );
    drop(idle);
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
}
