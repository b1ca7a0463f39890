//! Commands that only read never create a ledger, a folder or a file; the operator's inputs
//! (`EGME_ORD_LOG`, a pipe closed early) are handled as documented.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::{bin, write_all};
use egme_ord_core::demo;

/// Every path under `root`, recursively.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// The demo's config and registry, without anything a run would create.
fn fresh_config(root: &Path) -> PathBuf {
    write_all(root, &demo::registry_files());
    let path = root.join("egme.toml");
    fs::write(&path, demo::config_toml("20:00", "0s")).unwrap();
    path
}

#[test]
fn status_verify_and_backup_on_a_missing_store_exit_2_and_nothing_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(dir.path());
    let before = tree(dir.path());
    assert!(!dir.path().join("state").exists());
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["verify"],
        vec!["backup", "bk"],
    ] {
        let o = bin()
            .args(&args)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {shown}");
        assert!(shown.contains("state/egme-ord.sqlite"), "{args:?}: {shown}");
        assert_eq!(tree(dir.path()), before, "{args:?} created something");
    }
    // validate-config is the first-start check: a ledger not made yet is not a mistake (the first
    // run makes it), and it creates nothing either; here the ORDs' local folders are missing.
    for (args, code) in [
        (vec!["validate-config", "--no-environment"], 0),
        (vec!["validate-config"], 1),
    ] {
        let o = bin()
            .args(&args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {o:?}");
        assert_eq!(tree(dir.path()), before, "{args:?} created something");
    }
}

#[test]
fn validate_config_creates_no_folder_and_names_a_local_folder_that_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(dir.path());
    fs::create_dir(dir.path().join("state")).unwrap();
    let before = tree(dir.path());
    let o = bin()
        .args(["validate-config", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    let problems = v["problems"].to_string();
    assert!(
        problems.contains("exchange/e-redes/from-ord does not exist"),
        "{problems}"
    );
    assert_eq!(
        tree(dir.path()),
        before,
        "validate-config created something"
    );
}

#[test]
fn validate_config_json_gives_each_mistake_with_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(dir.path());
    let text = fs::read_to_string(&config).unwrap().replacen(
        "region = \"azores\"",
        "region = \"atlantis\"",
        1,
    );
    fs::write(&config, text).unwrap();
    let o = bin()
        .args(["validate-config", "--json", "--no-environment", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &v["errors"][0];
    assert_eq!(e["key"], "ord[1].region", "{v}");
    assert!(e["line"].as_u64().unwrap() > 1, "{v}");
    assert!(e["column"].as_u64().is_some(), "{v}");
    assert!(e["message"].as_str().unwrap().contains("atlantis"), "{v}");
}

#[test]
fn validate_config_without_the_environment_still_reads_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let config = fresh_config(dir.path());
    fs::write(
        dir.path().join("registry/cpes.csv"),
        "cpe,ord\nPT00X,e-redes\n",
    )
    .unwrap();
    let o = bin()
        .args(["validate-config", "--no-environment", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("registry: ") && out.contains("cpes.csv:2:"),
        "{out}"
    );
}

#[test]
fn an_invalid_egme_ord_log_is_an_error_and_the_variable_is_in_the_help() {
    let o = bin()
        .args(["check", "x.sgl"])
        .env("EGME_ORD_LOG", "info,=[")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EGME_ORD_LOG"));
    let help = bin().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("EGME_ORD_LOG"));
}

#[test]
fn a_report_whose_reader_goes_away_ends_quietly_without_a_panic() {
    // `demo` builds a workspace with a ledger, then `status --json` is read one line at a time
    // by a reader that closes the pipe after the first.
    let dir = tempfile::tempdir().unwrap();
    let demo = bin()
        .args(["demo", "ws"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(demo.status.success(), "{demo:?}");
    let config = dir.path().join("ws/egme-ord.toml");
    for _ in 0..20 {
        let mut child = bin()
            .args(["status", "--json", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        drop(out);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert_ne!(o.status.code(), Some(101), "{err}");
    }
}
