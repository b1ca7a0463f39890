//! Test helpers shared by the integration tests.

pub mod asyncssh;
pub mod ftpd;
pub mod proftpd;
pub mod proxy;
pub mod sshd;
pub mod vsftpd;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use egme_ord_core::demo::{self, DemoFile};
use egme_ord_core::filename::OrdFileName;
use serde_json::Value;
use sshd::Sshd;

/// The binary under test.
/// An ORD's name from a test's literal.
pub fn ord_name(name: &str) -> egme_ord_core::ord_name::OrdName {
    egme_ord_core::ord_name::OrdName::parse(name).unwrap()
}

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

/// An SFTP server a test started: where its keys are, and a config endpoint for a folder on it.
pub trait SftpServer {
    fn dir(&self) -> &Path;
    fn endpoint(&self, path: &Path, known_hosts: &Path) -> String;
    /// Every path the server opened for writing so far, in order, where it keeps that journal.
    fn writes(&self) -> Option<Vec<String>> {
        None
    }
}

impl SftpServer for Sshd {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn endpoint(&self, path: &Path, known_hosts: &Path) -> String {
        Sshd::endpoint(self, path, known_hosts)
    }
}

/// A config endpoint for `path` on an SFTP server on 127.0.0.1:`port` whose user key is
/// `dir/userkey`.
pub fn sftp_endpoint(port: u16, dir: &Path, path: &Path, known_hosts: &Path) -> String {
    format!(
        "{{ transport = \"sftp\", host = \"127.0.0.1\", port = {}, user = \"{}\", key = \"{}\", known_hosts = \"{}\", path = \"{}\", connect_timeout = \"5s\", io_timeout = \"10s\", attempts = 2 }}",
        port,
        sshd::whoami(),
        dir.join("userkey").display(),
        known_hosts.display(),
        path.display()
    )
}

/// Writes `dir/known_hosts` with the server's key `dir/hostkey.pub` for 127.0.0.1:`port`.
pub fn write_known_hosts(dir: &Path, port: u16) {
    let key = fs::read_to_string(dir.join("hostkey.pub")).unwrap();
    let mut parts = key.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        port,
        parts.next().unwrap(),
        parts.next().unwrap()
    );
    fs::write(dir.join("known_hosts"), line).unwrap();
}

/// A workspace whose ORDs' folders are reached over SFTP: receive on `recv`, send on `send`.
pub fn sftp_workspace(root: &Path, recv: &dyn SftpServer, send: &dyn SftpServer, min_age: &str) {
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
                recv.endpoint(&from, &recv.dir().join("known_hosts"))
            ),
        );
        config = config.replace(
            &format!(
                "send = {{ transport = \"local\", path = \"exchange/{}/to-ord\" }}",
                o.name
            ),
            &format!(
                "send = {}",
                send.endpoint(&to, &send.dir().join("known_hosts"))
            ),
        );
    }
    // Every endpoint must have been replaced: a change of the demo's TOML would otherwise leave
    // these tests on local folders without a word.
    assert_eq!(
        config.matches("transport = \"sftp\"").count(),
        2 * demo::ords().len(),
        "sftp_workspace: the demo config no longer has the endpoint lines it replaces:\n{config}"
    );
    assert!(!config.contains("transport = \"local\""), "{config}");
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

/// The events of `kind` the ledger of `root` holds, as `"ORD": detail`, oldest first.
pub fn events(root: &Path, kind: &str) -> Vec<String> {
    let o = run(root, &["events", "--json", "--kind", kind]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}: {}", e["ord"], e["detail"].as_str().unwrap_or_default())
        })
        .collect()
}

/// Starts `once --json` on `root` as if at `now`; standard output piped, standard error dropped.
pub fn spawn_once(root: &Path, now: &str) -> std::process::Child {
    bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", now])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Every promise, on a demo workspace that went through crashes or faults: the ORDs see exactly
/// `expected` (a run that suffered nothing), byte for byte — every output once, the same gap-free
/// ids, no temporary or partial file; `verify` finds no error; every ORD file was ingested exactly
/// once; and a further cycle at `now` has nothing left to do.
pub fn assert_all_promises(
    root: &Path,
    expected: &std::collections::BTreeMap<String, Vec<u8>>,
    now: &str,
    context: &str,
) {
    let got = ord_side(root);
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{context}: missing {missing:?}, extra {extra:?}"
    );
    for (k, bytes) in expected {
        assert_eq!(&got[k], bytes, "{context}: {k} differs from the reference");
    }
    let out = bin()
        .args(["verify", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{context}: {report}");
    assert_eq!(out.status.code(), Some(0), "{context}");
    let store = egme_ord::store::Store::open(&root.join("state/egme-ord.sqlite")).unwrap();
    for o in demo::ords() {
        let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
        for r in store.received_copies(&ord_name(o.name)).unwrap() {
            *seen.entry(r.name).or_default() += 1;
        }
        let dir = root.join("exchange").join(o.name).join("from-ord");
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert_eq!(
                seen.get(&name),
                Some(&1),
                "{context}: {name} ingested {:?} times",
                seen.get(&name)
            );
        }
        assert!(seen.values().all(|n| *n == 1), "{context}: {seen:?}");
    }
    let (code, summary, err) = once(root, now);
    assert_eq!(code, Some(0), "{context}: {err}");
    assert_idle(&summary, context);
}

pub fn run(root: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .arg("--config")
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Per ORD and transmission id, every name under which the ORD has one of our files.
pub fn names_by_id(root: &Path) -> BTreeMap<(String, u64), BTreeSet<String>> {
    let mut out: BTreeMap<(String, u64), BTreeSet<String>> = BTreeMap::new();
    for o in demo::ords() {
        let dir = root.join("exchange").join(o.name).join("to-ord");
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(n) = OrdFileName::parse_ours(&name, o.region) {
                out.entry((o.name.to_string(), n.ntransm.value))
                    .or_default()
                    .insert(name);
            }
        }
    }
    out
}

/// No id at any ORD under two names; returns how many ids were checked.
pub fn assert_no_id_twice(root: &Path, context: &str) -> usize {
    let by_id = names_by_id(root);
    let twice: Vec<_> = by_id.iter().filter(|(_, names)| names.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{context}: ids under two names: {twice:?}"
    );
    by_id.len()
}

/// A small deterministic generator (xorshift64*): the seeds are the test's.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
