//! Network faults between egme-ord and a real sshd, through a loopback proxy that cuts, stalls or
//! slows the connections: egme-ord times out, backs off, resumes, and loses or repeats nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::proxy::{Fault, Proxy};
use crate::support::sshd::Sshd;
use crate::support::{
    assert_all_promises, once, ord_side, sftp_workspace, spawn_once, write_all, FIRST,
};
use egme_ord_core::demo;
use serde_json::Value;

/// What the ORDs must end up with: the same cycle on a direct connection.
fn reference(tmp: &Path, server: &Sshd) -> BTreeMap<String, Vec<u8>> {
    let root = tmp.join("reference");
    sftp_workspace(&root, server, server, "0s");
    write_all(&root, &demo::first_delivery());
    let (code, summary, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{summary}\n{err}");
    ord_side(&root)
}

/// A workspace whose folders of the ORDs in `through` are reached via the proxy, with short timeouts.
fn workspace(tmp: &Path, server: &Sshd, proxy: &Proxy, through: &[&str], name: &str) -> PathBuf {
    let root = tmp.join(name);
    sftp_workspace(&root, server, server, "0s");
    let known_hosts = server.dir.join("known_hosts");
    let line = fs::read_to_string(&known_hosts).unwrap();
    let first = line.lines().next().unwrap().to_string();
    if !line.contains(&format!("]:{} ", proxy.port)) {
        let again = first.replace(
            &format!("]:{} ", server.port),
            &format!("]:{} ", proxy.port),
        );
        fs::write(&known_hosts, format!("{line}{again}\n")).unwrap();
    }
    let config_path = root.join("egme-ord.toml");
    let config: String = fs::read_to_string(&config_path)
        .unwrap()
        .lines()
        .map(|l| {
            if through
                .iter()
                .any(|o| l.contains(&format!("exchange/{o}/")))
            {
                l.replace(
                    &format!("port = {}", server.port),
                    &format!("port = {}", proxy.port),
                )
                .replace("connect_timeout = \"5s\"", "connect_timeout = \"2s\"")
                .replace("io_timeout = \"10s\"", "io_timeout = \"2s\"")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(&config_path, config).unwrap();
    write_all(&root, &demo::first_delivery());
    root
}

/// A server, the reference run on it, a proxy in front of it, and a workspace whose ORDs in
/// `through` go via the proxy.
fn setup(
    through: &[&str],
    name: &str,
) -> (
    tempfile::TempDir,
    Sshd,
    Proxy,
    BTreeMap<String, Vec<u8>>,
    PathBuf,
) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let expected = reference(tmp.path(), &server);
    let proxy = Proxy::start(server.port);
    let root = workspace(tmp.path(), &server, &proxy, through, name);
    (tmp, server, proxy, expected, root)
}

/// Runs `once`, killing it if it has not ended after `limit` (a hang is a failure).
fn once_within(root: &Path, limit: Duration) -> (Option<i32>, Value, Duration) {
    let started = Instant::now();
    let mut child = spawn_once(root, FIRST);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("egme-ord once hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), summary, started.elapsed())
}

#[test]
fn connections_cut_mid_transfer_are_resumed_by_later_cycles_without_loss_or_repeat() {
    let (_tmp, _server, proxy, expected, root) = setup(&["e-redes", "eda", "eem"], "cut");
    // Each connection carries 60 KB, then is cut: a handshake and a few files at most.
    proxy.set(Fault::CutAfter(60_000));
    let mut runs = 0;
    let mut failed_runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 40, "no progress after {runs} cycles");
        let (code, _, _) = once_within(&root, Duration::from_secs(120));
        if code == Some(0) {
            break;
        }
        failed_runs += 1;
    }
    eprintln!(
        "cut: {runs} cycle(s) ({failed_runs} failed), {} connections",
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst)
    );
    // Six endpoints (three ORDs, receive and send): more connections means transfers were cut and
    // resumed on a new connection (within a cycle by its retries, or by a later cycle).
    let connections = proxy.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections > 6,
        "the cuts never hit a transfer ({connections} connections)"
    );
    proxy.set(Fault::Pass);
    assert_all_promises(&root, &expected, FIRST, "after the faults");
}

#[test]
fn a_hung_server_fails_its_ord_within_its_timeouts_and_the_other_ords_are_served() {
    // Only EDA's server hangs (it accepts the connection, then says nothing).
    let (_tmp, _server, proxy, expected, root) = setup(&["eda"], "stall");
    proxy.set(Fault::Stall);
    let (code, summary, took) = once_within(&root, Duration::from_secs(90));
    eprintln!("stall: the cycle ended after {took:?} with exit code {code:?}");
    assert_eq!(code, Some(1), "{summary}");
    for o in summary["ords"].as_array().unwrap() {
        if o["ord"] == "eda" {
            assert!(!o["errors"].as_array().unwrap().is_empty(), "{o}");
        } else {
            assert!(o["errors"].as_array().unwrap().is_empty(), "{o}");
            assert_eq!(o["files_delivered"], o["files_written"], "{o}");
            assert!(o["files_delivered"].as_u64().unwrap() > 0, "{o}");
        }
    }
    // Connect and IO timeouts of 2 s, 2 attempts, for receive: bounded, not hung.
    assert!(took < Duration::from_secs(60), "{took:?}");
    // The server answers again: the next cycle catches up.
    proxy.set(Fault::Pass);
    let (code, summary, _) = once_within(&root, Duration::from_secs(90));
    assert_eq!(code, Some(0), "{summary}");
    assert_all_promises(&root, &expected, FIRST, "after the faults");
}

#[test]
fn a_slow_link_is_slower_and_nothing_else() {
    let (_tmp, _server, proxy, expected, root) = setup(&["e-redes", "eda", "eem"], "slow");
    proxy.set(Fault::Slow);
    let (code, summary, took) = once_within(&root, Duration::from_secs(120));
    eprintln!("slow: the cycle took {took:?}");
    assert_eq!(code, Some(0), "{summary}");
    proxy.set(Fault::Pass);
    assert_all_promises(&root, &expected, FIRST, "after the faults");
}
