//! What the operations team sees of a running daemon: events in the logs, `egme-ord events` and the
//! metrics; the HTTP endpoint under idle connections; systemd's notify protocol; SIGHUP.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, once, write_all, FIRST};
use egme_ord_core::demo;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A demo workspace whose daemon polls every second and serves metrics on `port`.
fn workspace(root: &Path, port: u16) {
    let config = demo::config_toml("20:00", "0s").replace(
        "poll_interval = \"5m\"",
        &format!("poll_interval = \"1s\"\nmetrics_listen = \"127.0.0.1:{port}\""),
    );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(root, &demo::registry_files());
}

/// The daemon, its logs in `root/log.jsonl`.
fn start(root: &Path, envs: &[(&str, &str)]) -> Child {
    let mut cmd = bin();
    cmd.args(["run", "--now", "2024-10-29T21:30:00Z", "--config"])
        .arg(root.join("egme-ord.toml"))
        .stderr(fs::File::create(root.join("log.jsonl")).unwrap())
        .stdout(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits until the logs contain `needle` `times` times (at most 20 s).
fn wait_for(root: &Path, needle: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = fs::read_to_string(root.join("log.jsonl")).unwrap_or_default();
        if logs.matches(needle).count() >= times || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request; the status code and body.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

fn stop(mut daemon: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while daemon.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = daemon.kill();
}

#[test]
fn the_demo_missing_transmission_is_a_warn_line_an_events_entry_and_a_counted_metric() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    workspace(root, port);
    write_all(root, &demo::first_delivery());
    let (code, _, err) = once(root, FIRST);
    assert_eq!(code, Some(0), "{err}");
    // The correction brings E-Redes' transmission 900, whose previous id is not 106.
    write_all(root, &demo::correction());
    let daemon = start(root, &[]);
    let logs = wait_for(root, "cycle summary", 3);
    let (_, metrics) = http(port, "GET", "/metrics");
    let events = bin()
        .args([
            "events",
            "--json",
            "--kind",
            "missing-transmission",
            "--config",
        ])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    stop(daemon);
    let line = logs
        .lines()
        .find(|l| l.contains("\"kind\":\"missing-transmission\""))
        .unwrap_or_else(|| panic!("no event line in:\n{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
    assert_eq!(v["ord"], "e-redes", "{line}");
    assert!(v["file"].as_str().unwrap().ends_with("_900.sgl"), "{line}");
    assert!(v["span"]["cycle"].is_string(), "the cycle id: {line}");
    assert_eq!(events.status.code(), Some(0));
    let listed = String::from_utf8_lossy(&events.stdout);
    let entries: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["ord"], "e-redes");
    assert_eq!(entries[0]["level"], "warn");
    assert!(
        metrics.contains("egme_ord_events_total{ord=\"e-redes\",kind=\"missing-transmission\"} 1"),
        "{metrics}"
    );
    // Every labelled series exists for every ORD, even with nothing to count.
    assert!(
        metrics.contains("egme_ord_events_total{ord=\"eem\",kind=\"missing-transmission\"} 0"),
        "{metrics}"
    );
}

#[test]
fn the_endpoint_answers_its_paths_and_methods_and_a_scrape_is_fast_with_50_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    workspace(root, port);
    let daemon = start(root, &[]);
    wait_for(root, "cycle summary", 1);
    // Fifty clients that connect and say nothing.
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let started = Instant::now();
    let (code, body) = http(port, "GET", "/metrics");
    let took = started.elapsed();
    let answers = [
        http(port, "GET", "/healthz").0,
        http(port, "GET", "/readyz").0,
        http(port, "GET", "/nope").0,
        http(port, "POST", "/metrics").0,
    ];
    // The container's HEALTHCHECK: `egme-ord probe` exits 0 on 200 only.
    let probe = |path: &str| {
        bin()
            .args(["probe", &format!("http://127.0.0.1:{port}{path}")])
            .output()
            .unwrap()
            .status
            .code()
    };
    let probes = [probe("/healthz"), probe("/nope")];
    drop(idle);
    stop(daemon);
    assert_eq!(code, 200);
    assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
    assert_eq!(answers, [200, 200, 404, 405]);
    assert_eq!(probes, [Some(0), Some(1)]);
    // The scrape is clean for Prometheus' own checker.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("these tests need promtool (Debian: apt-get install prometheus); scripts/test installs it");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "{checked:?}\n{body}"
    );
}

#[test]
fn under_systemd_run_says_ready_feeds_the_watchdog_and_sighup_reloads_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    workspace(root, port);
    let socket_path = root.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let daemon = start(
        root,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !(said.contains("READY=1") && said.contains("WATCHDOG=1")) && Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
            said.push('\n');
        }
    }
    assert!(said.contains("READY=1"), "{said}");
    assert!(said.contains("WATCHDOG=1"), "{said}");
    assert!(said.contains("STATUS="), "{said}");
    // Drained from now on, as systemd drains it: a full socket would block the daemon's notify.
    let draining = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let drain = {
        let draining = draining.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while draining.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = socket.recv(&mut buf);
            }
        })
    };
    // A changed registry, then SIGHUP: reloaded.
    let cemes = root.join("registry/cemes.csv");
    let text = fs::read_to_string(&cemes).unwrap();
    fs::write(
        &cemes,
        text.replace("PT-GAL,02,GALP,01", "PT-GAL,02,GALP,03"),
    )
    .unwrap();
    let hup = |pid: u32| {
        assert!(Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success())
    };
    hup(daemon.id());
    let logs = wait_for(root, "registry reloaded", 1);
    assert!(logs.contains("registry reloaded"), "{logs}");
    // A broken registry, then SIGHUP: refused, the one in use kept, the daemon goes on.
    fs::write(
        root.join("registry/cpes.csv"),
        "cpe,ord\nPT00BROKEN,e-redes\n",
    )
    .unwrap();
    let cycles_before = logs.matches("\"message\":\"cycle done\"").count();
    hup(daemon.id());
    let logs = wait_for(root, "registry reload (SIGHUP) refused", 1);
    assert!(logs.contains("registry reload (SIGHUP) refused"), "{logs}");
    let logs = wait_for(root, "\"message\":\"cycle done\"", cycles_before + 2);
    let mut daemon = daemon;
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon must survive SIGHUP: {logs}"
    );
    assert!(
        logs.matches("\"message\":\"cycle done\"").count() >= cycles_before + 2,
        "cycles go on after a refused reload: {logs}"
    );
    // A registry file that is not a file (endless bytes: /dev/zero), then SIGHUP: refused at
    // once, nothing read into memory, the daemon goes on.
    fs::remove_file(root.join("registry/cpes.csv")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", root.join("registry/cpes.csv")).unwrap();
    let cycles_before = logs.matches("\"message\":\"cycle done\"").count();
    hup(daemon.id());
    let logs = wait_for(root, "registry reload (SIGHUP) refused", 2);
    assert_eq!(
        logs.matches("registry reload (SIGHUP) refused").count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("not a regular file"), "{logs}");
    let logs = wait_for(root, "\"message\":\"cycle done\"", cycles_before + 1);
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon must survive a registry that is /dev/zero: {logs}"
    );
    stop(daemon);
    draining.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = drain.join();
}

/// `egme-ord status --json` of the workspace, the ORD named `ord`.
fn status_of(root: &Path, ord: &str) -> serde_json::Value {
    let o = bin()
        .args(["status", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|o| o["ord"] == ord)
        .cloned()
        .unwrap()
}

fn missing_events(root: &Path) -> Vec<String> {
    let o = bin()
        .args(["events", "--json", "--kind", "ord-file-missing", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_withheld_ord_file_is_missing_after_expect_by_in_events_metrics_and_status_until_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    workspace(root, port);
    // E-Redes does not deliver the 27th of its third CPE.
    let cpe = demo::ords()[0].cpes[2];
    let withheld_name = format!("{cpe}_20241028_");
    let (withheld, rest): (Vec<_>, Vec<_>) = demo::first_delivery()
        .into_iter()
        .partition(|f| f.path.starts_with("exchange/e-redes/") && f.path.contains(&withheld_name));
    assert_eq!(withheld.len(), 1);
    write_all(root, &rest);
    // Before expect_by (D+1 at send_at, 20:00 on the 28th): nothing is missing yet.
    let (code, s, err) = once(root, "2024-10-28T19:00:00Z");
    assert_eq!(code, Some(0), "{err}");
    assert!(missing_events(root).is_empty());
    assert_eq!(s["ords"][0]["ord_files_missing"], 0, "{s}");
    // After it, a daemon's cycle: the event, the gauge, the status.
    let mut cmd = bin();
    cmd.args(["run", "--now", FIRST, "--config"])
        .arg(root.join("egme-ord.toml"))
        .stderr(fs::File::create(root.join("log.jsonl")).unwrap())
        .stdout(Stdio::null());
    let daemon = cmd.spawn().unwrap();
    let logs = wait_for(root, "cycle summary", 1);
    let (_, metrics) = http(port, "GET", "/metrics");
    stop(daemon);
    assert!(
        metrics
            .lines()
            .any(|l| l == "egme_ord_ord_files_missing{ord=\"e-redes\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "egme_ord_ord_files_missing{ord=\"eda\"} 0"),
        "{metrics}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("\"kind\":\"ord-file-missing\""))
        .unwrap_or_else(|| panic!("no event line in:\n{logs}"));
    assert!(
        line.contains(&cpe.to_string()) && line.contains("day 2024-10-27"),
        "{line}"
    );
    assert_eq!(missing_events(root).len(), 1);
    let st = status_of(root, "e-redes");
    assert_eq!(
        st["ord_files_missing"],
        serde_json::json!([{ "day": "2024-10-27", "cpes": [cpe.to_string()] }]),
        "{st}"
    );
    // The day's netting report names it too.
    let reports = root.join("work/reports/e-redes/2024-10-27");
    let json = fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&fs::read(json).unwrap()).unwrap();
    assert_eq!(report["registered_cpes"], 3, "{report}");
    assert_eq!(
        report["ord_files_missing"],
        serde_json::json!([cpe.to_string()])
    );
    // Another cycle does not report it again.
    let (_, s, _) = once(root, "2024-10-28T21:40:00Z");
    assert_eq!(s["ords"][0]["ord_files_missing"], 1, "{s}");
    assert_eq!(missing_events(root).len(), 1);
    // The file arrives: cleared everywhere.
    write_all(root, &withheld);
    let (_, s, _) = once(root, "2024-10-28T21:50:00Z");
    assert_eq!(s["ords"][0]["ord_files_missing"], 0, "{s}");
    assert_eq!(
        status_of(root, "e-redes")["ord_files_missing"],
        serde_json::json!([])
    );
    assert_eq!(missing_events(root).len(), 1);
}

/// A person at a terminal reads lines, a pipe or journald gets JSON: the demo (whose cycles warn)
/// run under a pseudo-terminal (`script`, util-linux) logs plain lines, the same run with its
/// standard error piped logs one JSON object per line.
#[test]
fn logs_are_lines_for_a_person_at_a_terminal_and_json_in_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_egme-ord");
    let at_terminal = Command::new("script")
        .args([
            "-qec",
            &format!("{exe} demo {}", tmp.path().join("tty").display()),
        ])
        .arg("/dev/null")
        .output()
        .expect("`script` (util-linux) gives the demo a terminal");
    let seen = String::from_utf8_lossy(&at_terminal.stdout);
    assert!(
        seen.contains("WARN") && !seen.contains("{\"timestamp\""),
        "at a terminal: {seen}"
    );
    let piped = bin()
        .arg("demo")
        .arg(tmp.path().join("pipe"))
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&piped.stderr);
    assert!(
        logs.lines()
            .next()
            .is_some_and(|l| l.starts_with("{\"timestamp\"")),
        "piped: {logs}"
    );
}
