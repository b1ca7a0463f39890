//! The pipeline over SFTP against a real OpenSSH server started by the test on 127.0.0.1.

use std::fs;
use std::process::Command;

use crate::support::sshd::Sshd;
use crate::support::{
    assert_idle, bin, delivered, names, once, one_server, sftp_workspace as workspace, write_all,
    FIRST,
};
use egme_ord_core::demo;
use serde_json::Value;

#[test]
fn a_full_cycle_over_sftp_across_the_three_regions() {
    let (_tmp, _server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    // Watch the ORDs' folders while the cycle runs: a file under its final name is always complete.
    let watched: Vec<_> = demo::ords()
        .iter()
        .map(|o| root.join("exchange").join(o.name).join("to-ord"))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher = std::thread::spawn(move || {
        let mut checked = 0;
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            for d in &watched {
                for e in fs::read_dir(d).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let bytes = fs::read(e.path()).unwrap();
                    let text = String::from_utf8(bytes).unwrap();
                    assert!(
                        text.ends_with('\n') && text.lines().last().unwrap().starts_with("99"),
                        "partial file visible: {name}"
                    );
                    checked += 1;
                }
            }
        }
        checked
    });
    let (code, s, err) = once(&root, FIRST);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(watcher.join().unwrap() > 0);
    assert_eq!(code, Some(0), "{s}\n{err}");
    for o in s["ords"].as_array().unwrap() {
        assert_eq!(o["files_written"], o["files_delivered"], "{o}");
        assert!(o["files_delivered"].as_u64().unwrap() > 0);
    }
    assert_eq!(delivered(&root), 88);
    for o in demo::ords() {
        assert!(names(&root.join("exchange").join(o.name).join("to-ord"))
            .iter()
            .all(|n| !n.starts_with('.')));
    }
    let check = bin()
        .arg("check")
        .args(
            demo::ords()
                .iter()
                .map(|o| root.join("exchange").join(o.name).join("to-ord")),
        )
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0));
}

#[test]
fn a_host_key_that_does_not_match_or_is_unknown_is_refused_with_its_fingerprint() {
    let (tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    // Another key under this host's name.
    let other = tmp.path().join("other");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(ok.success());
    server.write_known_hosts(
        &server.dir.join("known_hosts"),
        &tmp.path().join("other.pub"),
    );
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1));
    let errors = s["ords"][0]["errors"].to_string();
    assert!(
        errors.contains("does not match") && errors.contains("SHA256:"),
        "{errors}"
    );
    assert_eq!(s["ords"][0]["received"], serde_json::json!({}));
    // Unknown: an empty known_hosts.
    fs::write(server.dir.join("known_hosts"), "").unwrap();
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1));
    assert!(
        s["ords"][0]["errors"].to_string().contains("is not in"),
        "{s}"
    );
    assert_eq!(delivered(&root), 0);
}

#[test]
fn a_growing_file_waits_until_stable_and_a_corrected_file_under_the_same_name_is_ingested() {
    let (_tmp, _server, root) = one_server("60s");
    let ord = &demo::ords()[0];
    let day = demo::demo_days()[0];
    let file = demo::ord_file(
        ord,
        ord.cpes[0],
        demo::ord_profile(ord.region, day, 0, 22),
        101,
        day,
    );
    let path = root.join(&file.path);
    // Half written, just now.
    fs::write(&path, &file.bytes[..file.bytes.len() / 2]).unwrap();
    let (_, s, _) = once(&root, FIRST);
    assert_eq!(s["ords"][0]["waiting"], 1, "{s}");
    assert_eq!(s["ords"][0]["received"], serde_json::json!({}));
    // Complete and unchanged for long enough.
    fs::write(&path, &file.bytes).unwrap();
    let old = Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(old.success());
    let (_, s, _) = once(&root, FIRST);
    assert_eq!(s["ords"][0]["received"]["applied"], 1, "{s}");
    // A corrected version under the same name.
    let corrected = demo::ord_file(
        ord,
        ord.cpes[0],
        demo::ord_profile(ord.region, day, 0, 30),
        101,
        day,
    );
    fs::write(&path, &corrected.bytes).unwrap();
    assert!(Command::new("touch")
        .args(["-d", "1 minute ago"])
        .arg(&path)
        .status()
        .unwrap()
        .success());
    let (_, s, _) = once(&root, "2024-10-29T21:30:00Z");
    assert_eq!(s["ords"][0]["received"]["applied"], 1, "{s}");
}

#[test]
fn the_send_server_down_mid_cycle_then_back_completes_with_nothing_lost_or_duplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Sshd::start(&tmp.path().join("recv"));
    let mut send = Sshd::start(&tmp.path().join("send"));
    let root = tmp.path().join("ws");
    workspace(&root, &recv, &send, "0s");
    write_all(&root, &demo::first_delivery());
    send.stop();
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1), "{s}");
    for o in s["ords"].as_array().unwrap() {
        assert!(o["files_written"].as_u64().unwrap() > 0);
        assert_eq!(o["files_delivered"], 0);
        assert!(o["errors"].to_string().contains("cannot connect"), "{o}");
    }
    send.restart();
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert_eq!(delivered(&root), 88);
    let (_, s, _) = once(&root, FIRST);
    assert_idle(&s, "after the send server came back");
}

#[test]
fn validate_config_checks_key_permissions_known_hosts_and_that_each_folder_is_listable() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, mut server, root) = one_server("0s");
    let validate = || {
        bin()
            .args(["validate-config", "--config"])
            .arg(root.join("egme-ord.toml"))
            .output()
            .unwrap()
    };
    let o = validate();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let key = server.dir.join("userkey");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let o = validate();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("too open for a secret"), "{out}");
    // The daemon refuses such a key too, as OpenSSH does.
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1));
    assert!(
        s["ords"][0]["errors"].to_string().contains("too open"),
        "{s}"
    );
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    server.stop();
    let o = validate();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(out.matches("cannot list the folder").count(), 6, "{out}");
}

#[test]
fn the_daemon_run_does_a_full_cycle_over_sftp_then_stops_on_sigterm() {
    let (_tmp, _server, root) = one_server("0s");
    let config = fs::read_to_string(root.join("egme-ord.toml"))
        .unwrap()
        .replace("poll_interval = \"5m\"", "poll_interval = \"1s\"");
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(&root, &demo::first_delivery());
    let mut daemon = bin()
        .args(["run", "--now", FIRST, "--config"])
        .arg(root.join("egme-ord.toml"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut n = 0;
    for _ in 0..300 {
        n = delivered(&root);
        if n >= 88 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(n, 88);
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = daemon.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    // Another cycle after the stop finds nothing left to do.
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(0));
    assert_idle(&s, "after the daemon stopped");
}

#[test]
fn an_rsa_key_with_a_passphrase_from_the_environment_authenticates() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let key = server.dir.join("rsakey");
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "rsa",
            "-b",
            "3072",
            "-m",
            "PEM",
            "-N",
            "s3cret pass",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    fs::copy(
        server.dir.join("rsakey.pub"),
        server.dir.join("authorized_keys"),
    )
    .unwrap();
    let root = tmp.path().join("ws");
    workspace(&root, &server, &server, "0s");
    let config = fs::read_to_string(root.join("egme-ord.toml"))
        .unwrap()
        .replace(
            &format!("key = \"{}\"", server.dir.join("userkey").display()),
            &format!(
                "key = \"{}\", passphrase_env = \"EGME_TEST_PASSPHRASE\"",
                key.display()
            ),
        );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(&root, &demo::first_delivery());
    let run = |pass: Option<&str>| {
        let mut cmd = bin();
        cmd.args(["once", "--json", "--now", FIRST, "--config"])
            .arg(root.join("egme-ord.toml"));
        match pass {
            Some(p) => cmd.env("EGME_TEST_PASSPHRASE", p),
            None => cmd.env_remove("EGME_TEST_PASSPHRASE"),
        };
        let o = cmd.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(None);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("EGME_TEST_PASSPHRASE") && out.contains("is not set"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "a secret must never be printed");
    let (code, out) = run(Some("wrong"));
    assert_eq!(code, Some(1), "{out}");
    // Named as a passphrase problem, not as libssh2's "unsupported key format".
    assert!(out.contains("the passphrase is wrong"), "{out}");
    assert!(
        !out.contains("wrong\""),
        "a secret must never be printed: {out}"
    );
    let (code, out) = run(Some("s3cret pass"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(delivered(&root), 88);
}

#[test]
fn with_move_to_received_files_go_to_a_processed_folder_and_are_ingested_once() {
    let (_tmp, _server, root) = one_server("0s");
    let config = fs::read_to_string(root.join("egme-ord.toml")).unwrap();
    // Receive endpoints get move_to = "processed".
    let config = config
        .lines()
        .map(|l| {
            if l.starts_with("receive = {") {
                l.replacen(
                    "transport = \"sftp\"",
                    "transport = \"sftp\", move_to = \"processed\"",
                    1,
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    let from = root.join("exchange/e-redes/from-ord");
    assert_eq!(names(&from), vec!["processed".to_string()]);
    assert_eq!(names(&from.join("processed")).len(), 6);
    let (_, s, _) = once(&root, FIRST);
    assert_eq!(s["ords"][0]["received"], serde_json::json!({}), "{s}");
}

#[test]
fn four_parallel_sessions_per_endpoint_transfer_everything_exactly_once() {
    let (_tmp, _server, root) = one_server("0s");
    let config = fs::read_to_string(root.join("egme-ord.toml"))
        .unwrap()
        .replace("attempts = 2 }", "attempts = 2, sessions = 4 }");
    assert_eq!(config.matches("sessions = 4").count(), 6);
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    let received: usize = s["ords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["received"]["applied"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(received, 12);
    for o in demo::ords() {
        let mut ids: Vec<u64> = names(&root.join("exchange").join(o.name).join("to-ord"))
            .iter()
            .map(|n| {
                n.trim_end_matches(".sgl")
                    .rsplit('_')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        ids.sort();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "{}",
            o.name
        );
    }
    assert_eq!(delivered(&root), 88);
}

/// One day of `n` CPEs (`demo::at_scale`) in a workspace under `tmp`, its ORD folders on `server`,
/// run by `egme-ord once` with the log at `log_level`.
struct AtScale {
    root: std::path::PathBuf,
    to: std::path::PathBuf,
    scale: demo::Scale,
    summary: Value,
    log: String,
}

fn once_at_scale(tmp: &std::path::Path, server: &Sshd, n: u64, log_level: &str) -> AtScale {
    let root = tmp.join("ws");
    let scale = demo::at_scale(n);
    write_all(&root, &scale.files);
    let to = root.join("remote/to-ord");
    fs::create_dir_all(&to).unwrap();
    let known_hosts = server.dir.join("known_hosts");
    let config = demo::at_scale_config(
        &server.endpoint(&root.join("remote/from-ord"), &known_hosts),
        &server.endpoint(&to, &known_hosts),
    );
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    let out = bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", "2024-11-05T21:30:00Z"])
        .env("EGME_ORD_LOG", log_level)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{summary}");
    AtScale {
        root,
        to,
        scale,
        summary,
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The transmission ids of the "file sent" log lines, in the order they were recorded.
fn sent_ids(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "file sent")
        .filter_map(|v| v["transmission_id"].as_u64())
        .collect()
}

/// Guards the delivery that overlaps the send: with 300 CPEs the send writes its files in two
/// ledger batches and hands them to the upload worker in pages (more than the worker may have
/// waiting), over one session, so they must arrive and be recorded in transmission order, each
/// exactly once, with nothing left pending and nothing hidden left on the ORD side.
#[test]
fn a_day_of_300_cpes_is_delivered_while_it_is_netted_in_order_each_file_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let AtScale {
        root,
        to,
        scale,
        summary,
        log,
    } = once_at_scale(tmp.path(), &server, 300, "info");
    let ord = &summary["ords"][0];
    assert_eq!(ord["files_written"].as_u64(), Some(scale.outputs), "{ord}");
    assert_eq!(
        ord["files_delivered"].as_u64(),
        Some(scale.outputs),
        "{ord}"
    );
    assert_eq!(
        sent_ids(&log),
        (1..=scale.outputs).collect::<Vec<_>>(),
        "recorded in transmission order, each once"
    );
    let there = names(&to);
    assert_eq!(there.len() as u64, scale.outputs);
    assert!(
        there.iter().all(|n| !n.starts_with('.')),
        "no temporary file left"
    );
    let (_, again, _) = crate::support::once(&root, "2024-11-05T21:40:00Z");
    assert_idle(&again, "after the big day");
}

/// Guards the lanes (several SFTP channels per session): a server that allows only two channels
/// per connection (ssh2's own and one lane) still gets every file, once, in transmission order.
#[test]
fn a_server_that_allows_fewer_channels_per_connection_still_gets_every_file_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start_with(&tmp.path().join("sshd"), "MaxSessions 2\n");
    let AtScale {
        to,
        scale,
        summary,
        log,
        ..
    } = once_at_scale(tmp.path(), &server, 40, "debug");
    assert!(
        log.contains("no further sftp channel; going on with fewer"),
        "the second lane was refused"
    );
    assert!(
        !log.contains("pipelined transfer cut short") && !log.contains("no pipelined channel"),
        "the one lane carried the batches"
    );
    let ord = &summary["ords"][0];
    assert_eq!(ord["received"]["applied"].as_u64(), Some(40), "{ord}");
    assert_eq!(
        ord["files_delivered"].as_u64(),
        Some(scale.outputs),
        "{ord}"
    );
    assert_eq!(sent_ids(&log), (1..=scale.outputs).collect::<Vec<_>>());
    assert_eq!(names(&to).len() as u64, scale.outputs);
}

/// Every session ends with an SSH disconnect (by application), as a client should: the server
/// logs each one, and none as a connection reset or a broken pipe. Also guards the end's linger:
/// a socket closed with the server's last bytes unread sent a reset that could overtake the
/// disconnect, and about one run in twenty lost one session's end.
#[test]
fn every_session_ends_with_an_ssh_disconnect() {
    let (_tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    let o = crate::support::run(&root, &["validate-config"]);
    assert!(o.status.success(), "{}", crate::support::text(&o));
    // sshd logs a session's end once its process has seen it, which on a loaded machine may
    // take a while after our process ended: the log is read again until it says as many ends as
    // sessions, or 10 s have passed. (A session that ends abruptly is logged at INFO as nothing
    // at all: it is missing from the count.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (log, accepted, disconnects) = loop {
        let log = fs::read_to_string(server.dir.join("sshd.log")).unwrap_or_default();
        let accepted = log.matches("Accepted publickey").count();
        let disconnects = log.matches(": egme-ord: done").count();
        if disconnects >= accepted || std::time::Instant::now() > deadline {
            break (log, accepted, disconnects);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(accepted > 0, "{log}");
    assert_eq!(disconnects, accepted, "{log}");
    for abrupt in [
        "Connection reset",
        "Broken pipe",
        "Timeout, client not responding",
    ] {
        assert!(!log.contains(abrupt), "{abrupt}: {log}");
    }
}
