//! Test helpers shared by the integration tests.

#![allow(dead_code)]

pub mod proxy;
pub mod sshd;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use egme_ord::demo::{self, DemoFile};
use serde_json::Value;
use sshd::Sshd;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egme-ord"))
}

/// Writes demo files under `root`.
pub fn write_all(root: &Path, files: &[DemoFile]) {
    for f in files {
        let p = root.join(&f.path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, &f.bytes).unwrap();
    }
}

/// Asserts that a cycle summary (`once --json`) wrote and delivered nothing.
pub fn assert_idle(summary: &Value, context: &str) {
    let ords = summary["ords"].as_array().expect("a cycle summary");
    assert!(
        ords.iter()
            .all(|o| o["files_written"] == 0 && o["files_delivered"] == 0),
        "{context}: a further cycle must send nothing: {summary}"
    );
}

/// A workspace whose ORDs' folders are reached over SFTP: receive on `recv`, send on `send`.
pub fn sftp_workspace(root: &Path, recv: &Sshd, send: &Sshd, min_age: &str) {
    let mut config = demo::config_toml("20:00", min_age);
    for o in demo::ords() {
        let from = root.join("exchange").join(o.name).join("from-ord");
        let to = root.join("exchange").join(o.name).join("to-ord");
        fs::create_dir_all(&from).unwrap();
        fs::create_dir_all(&to).unwrap();
        config = config.replace(
            &format!(
                "receive = {{ transport = \"local\", path = \"exchange/{}/from-ord\" }}",
                o.name
            ),
            &format!(
                "receive = {}",
                recv.endpoint(&from, &recv.dir.join("known_hosts"))
            ),
        );
        config = config.replace(
            &format!(
                "send = {{ transport = \"local\", path = \"exchange/{}/to-ord\" }}",
                o.name
            ),
            &format!(
                "send = {}",
                send.endpoint(&to, &send.dir.join("known_hosts"))
            ),
        );
    }
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(root, &demo::registry_files());
}

pub fn once(root: &Path, now: &str) -> (Option<i32>, Value, String) {
    let o: Output = bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", now])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (
        o.status.code(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn delivered(root: &Path) -> usize {
    demo::ords()
        .iter()
        .map(|o| names(&root.join("exchange").join(o.name).join("to-ord")).len())
        .sum()
}

pub const FIRST: &str = "2024-10-28T21:30:00Z";

/// A temporary folder with one sshd and a workspace whose ORD folders are on it.
pub fn one_server(min_age: &str) -> (tempfile::TempDir, Sshd, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Sshd::start(&tmp.path().join("sshd"));
    let root = tmp.path().join("ws");
    sftp_workspace(&root, &server, &server, min_age);
    (tmp, server, root)
}

/// Every file the ORDs can see: folder/name → bytes (hidden names included, so a temp file shows).
pub fn ord_side(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for o in demo::ords() {
        let dir = root.join("exchange").join(o.name).join("to-ord");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(format!("{}/{name}", o.name), fs::read(e.path()).unwrap());
        }
    }
    out
}
