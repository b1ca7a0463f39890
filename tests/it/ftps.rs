//! The island ORD over FTPS (explicit TLS) against a real pure-ftpd started by the test: the whole
//! cycle, a certificate that does not match, a connection cut mid-upload, crashes; plain FTP only
//! when allowed.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::ftpd::{Ftpd, Tls};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{
    assert_all_promises, assert_idle, assert_no_id_twice, once, ord_side, spawn_once, write_all,
    Rng, FIRST,
};
use egme_ord_core::demo;
use egme_ord_core::region::Region;
use egme_ord_core::sgl::{self, Dialect, ReadOptions};

const SECOND: &str = "2024-10-29T21:30:00Z";

/// A demo workspace whose eda (Azores) is reached over the server's FTP: its folders are the
/// workspace's own `exchange/eda/…`, the server's user folder being `exchange`. `edit` changes
/// each endpoint table (a proxy's port, another CA).
fn ftp_workspace(root: &Path, server: &Ftpd, edit: impl Fn(String) -> String) {
    ftp_workspace_on(root, |path| server.endpoint(path, ""), edit);
}

/// As `ftp_workspace`, for any FTP server: `endpoint(path)` is its endpoint table for `path`.
fn ftp_workspace_on(
    root: &Path,
    endpoint: impl Fn(&str) -> String,
    edit: impl Fn(String) -> String,
) {
    let mut config = demo::config_toml("20:00", "0s");
    for (dir, key) in [("from-ord", "receive"), ("to-ord", "send")] {
        fs::create_dir_all(root.join("exchange/eda").join(dir)).unwrap();
        config = config.replace(
            &format!("{key} = {{ transport = \"local\", path = \"exchange/eda/{dir}\" }}"),
            &format!("{key} = {}", edit(endpoint(&format!("/eda/{dir}")))),
        );
    }
    assert!(config.contains("transport = \"ftp"), "{config}");
    fs::write(root.join("egme-ord.toml"), config).unwrap();
    write_all(root, &demo::registry_files());
}

fn start(tmp: &Path, tls: Tls) -> Ftpd {
    Ftpd::start(&tmp.join("ftpd"), &tmp.join("ws/exchange"), tls)
}

fn ord<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["ords"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ord"] == name)
        .unwrap()
}

/// Reads every file eda got and checks it is whole: (name, id) in id order.
fn eda_got(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in fs::read_dir(root.join("exchange/eda/to-ord")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "a temporary file is left: {name}");
        let dialect = Dialect::default();
        let r = sgl::read(
            &fs::read(&p).unwrap(),
            &ReadOptions::new(Region::Azores, &dialect),
        );
        let f = r
            .file
            .unwrap_or_else(|| panic!("{name}: {:?}", r.diagnostics));
        out.push((name, f.header.transmission_id));
    }
    out.sort_by_key(|f| f.1);
    out
}

fn assert_ids_once_gap_free(got: &[(String, u64)]) {
    let ids: Vec<u64> = got.iter().map(|f| f.1).collect();
    let expected: Vec<u64> = (1..=got.len() as u64).collect();
    assert_eq!(ids, expected, "ids once each, 1..N: {got:?}");
}

#[test]
fn an_island_ord_over_ftps_is_received_netted_and_sent_with_ids_once_and_no_partial_file_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    let server = start(tmp.path(), Tls::Required);
    // Received files are moved into `processed` on the ORD's server once recorded.
    ftp_workspace(&root, &server, |e| {
        if e.contains("/eda/from-ord") {
            e.replace(" }", ", move_to = \"processed\" }")
        } else {
            e
        }
    });
    write_all(&root, &demo::first_delivery());
    server.give_to_user();
    let sent_by_ord = fs::read_dir(root.join("exchange/eda/from-ord"))
        .unwrap()
        .count();
    // A watcher of the ORD's folder: every name it sees holds a whole file.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (root.join("exchange/eda/to-ord"), stop.clone());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !stop.load(Ordering::SeqCst) {
                for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') || !seen.insert(name.clone()) {
                        continue;
                    }
                    let bytes = fs::read(e.path()).unwrap_or_default();
                    let dialect = Dialect::default();
                    let r = sgl::read(&bytes, &ReadOptions::new(Region::Azores, &dialect));
                    assert!(r.file.is_some(), "a watcher saw a partial {name}");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            seen.len()
        })
    };
    let first = once(&root, FIRST);
    stop.store(true, Ordering::SeqCst);
    let watched = watcher.join().expect("the watcher saw only whole files");
    let got = first_cycle_delivered_to_eda(&root, first, sent_by_ord);
    assert_eq!(watched, got.len());
    let from = root.join("exchange/eda/from-ord");
    let names = |d: &Path| -> BTreeSet<String> {
        fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(names(&from).is_empty(), "moved away: {:?}", names(&from));
    assert_eq!(names(&from.join("processed")).len(), sent_by_ord);
    // validate-config logs in and lists both folders over FTPS.
    let v = crate::support::run(&root, &["validate-config"]);
    assert_eq!(v.status.code(), Some(0), "{}", crate::support::text(&v));
    correction_then_idle_and_verify(&root, || server.give_to_user());
}

/// The first cycle (`once`'s outcome) took in the `sent_by_ord` files eda sent and delivered eda's
/// files, ids once each and gap-free; returns them.
fn first_cycle_delivered_to_eda(
    root: &Path,
    (code, s, err): (Option<i32>, serde_json::Value, String),
    sent_by_ord: usize,
) -> Vec<(String, u64)> {
    assert_eq!(code, Some(0), "{s}\n{err}");
    let eda = ord(&s, "eda");
    assert_eq!(eda["errors"], serde_json::json!([]), "{s}");
    assert_eq!(eda["received"]["applied"], sent_by_ord, "{s}");
    let got = eda_got(root);
    assert!(
        !got.is_empty() && eda["files_delivered"] == got.len(),
        "{s}"
    );
    assert_ids_once_gap_free(&got);
    got
}

/// The correction the next day (`written` runs once its files are written): only what changed,
/// ids going on; then nothing more, and what egme-ord keeps matches what the ORD has.
fn correction_then_idle_and_verify(root: &Path, written: impl Fn()) {
    write_all(root, &demo::correction());
    written();
    let (code, s, err) = once(root, SECOND);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert_ids_once_gap_free(&eda_got(root));
    let (_, s, _) = once(root, "2024-10-30T21:30:00Z");
    assert_idle(&s, "after the correction");
    let v = crate::support::run(root, &["verify", "--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", crate::support::text(&v));
}

#[test]
fn a_certificate_that_does_not_match_is_refused_and_a_pinned_one_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    let server = start(tmp.path(), Tls::Required);
    // Signed by another CA than the one in ca_file.
    let other = server.other_ca_file.display().to_string();
    let ca = server.ca_file.display().to_string();
    ftp_workspace(&root, &server, |e| e.replace(&ca, &other));
    write_all(&root, &demo::first_delivery());
    server.give_to_user();
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1), "a failed step, the other ORDs served: {s}");
    let errors = ord(&s, "eda")["errors"].to_string();
    assert!(
        errors.contains("TLS certificate of 127.0.0.1") && errors.contains("refused"),
        "{errors}"
    );
    assert_eq!(ord(&s, "eda")["received"], serde_json::json!({}), "{s}");
    assert!(
        ord(&s, "e-redes")["files_delivered"].as_u64().unwrap() > 0,
        "{s}"
    );
    // A wrong pin is refused and says what was offered; the right one is accepted.
    let pin = |fp: String| {
        let ca = ca.clone();
        move |e: String| {
            e.replace(&format!(", ca_file = \"{ca}\""), "")
                .replace(" }", &format!(", certificate_sha256 = \"{fp}\" }}"))
        }
    };
    ftp_workspace(&root, &server, pin("ab".repeat(32)));
    let (_, s, _) = once(&root, FIRST);
    let errors = ord(&s, "eda")["errors"].to_string();
    assert!(
        errors.contains(&server.fingerprint) && errors.contains("not the certificate_sha256"),
        "{errors}"
    );
    ftp_workspace(&root, &server, pin(server.fingerprint.clone()));
    let (_, s, _) = once(&root, FIRST);
    assert_eq!(ord(&s, "eda")["errors"], serde_json::json!([]), "{s}");
    assert!(
        ord(&s, "eda")["files_delivered"].as_u64().unwrap() > 0,
        "{s}"
    );
}

/// An FTPS server of the matrix, as the cut and kill checks need it.
trait FtpsServer {
    fn port(&self) -> u16;
    /// Its endpoint table for `path` (from the user's folder).
    fn endpoint(&self, path: &str) -> String;
    /// Gives the files written since it started to its user, where that is another one.
    fn give_to_user(&self) {}
}

impl FtpsServer for Ftpd {
    fn port(&self) -> u16 {
        self.port
    }
    fn endpoint(&self, path: &str) -> String {
        Ftpd::endpoint(self, path, "")
    }
    fn give_to_user(&self) {
        Ftpd::give_to_user(self);
    }
}

impl FtpsServer for crate::support::proftpd::ProFtpd {
    fn port(&self) -> u16 {
        self.port
    }
    fn endpoint(&self, path: &str) -> String {
        self.ftp_endpoint(path, "")
    }
}

impl FtpsServer for crate::support::vsftpd::Vsftpd {
    fn port(&self) -> u16 {
        self.port
    }
    fn endpoint(&self, path: &str) -> String {
        self.ftp_endpoint(path)
    }
}

/// Starts an FTPS server in `tmp` whose user's folder is `tmp/ws/exchange`.
type StartFtps = fn(&Path) -> Box<dyn FtpsServer>;

fn pure_ftpd(tmp: &Path) -> Box<dyn FtpsServer> {
    Box::new(start(tmp, Tls::Required))
}

fn proftpd_mod_tls(tmp: &Path) -> Box<dyn FtpsServer> {
    Box::new(crate::support::proftpd::ProFtpd::start_ftps(
        &tmp.join("proftpd"),
        &tmp.join("ws/exchange"),
    ))
}

fn vsftpd(tmp: &Path) -> Box<dyn FtpsServer> {
    Box::new(crate::support::vsftpd::Vsftpd::start_ftps(
        &tmp.join("vsftpd"),
        &tmp.join("ws/exchange"),
    ))
}

/// vsftpd: no MLSD (LIST and MDTM instead), TLS on the data connections without session reuse.
#[test]
fn an_island_ord_over_ftps_on_vsftpd_is_received_netted_and_sent_with_ids_once() {
    island_cycle(vsftpd);
}

/// The demo's first delivery in a workspace at `tmp/ws` whose eda is on the FTPS server
/// `start_ftps` starts in `tmp`: the server (kept running while held) and the workspace.
fn demo_on(start_ftps: StartFtps, tmp: &Path) -> (Box<dyn FtpsServer>, std::path::PathBuf) {
    let root = tmp.join("ws");
    let server = start_ftps(tmp);
    ftp_workspace_on(&root, |path| server.endpoint(path), |e| e);
    write_all(&root, &demo::first_delivery());
    server.give_to_user();
    (server, root)
}

/// The island ORD's first cycle, a correction, an idle cycle and `verify` on the server
/// `start_ftps` starts: ids once, gap-free.
fn island_cycle(start_ftps: StartFtps) {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, root) = demo_on(start_ftps, tmp.path());
    let sent_by_ord = fs::read_dir(root.join("exchange/eda/from-ord"))
        .unwrap()
        .count();
    first_cycle_delivered_to_eda(&root, once(&root, FIRST), sent_by_ord);
    correction_then_idle_and_verify(&root, || {});
}

#[test]
fn a_connection_cut_mid_upload_on_vsftpd_is_resumed_without_duplicates() {
    cut_mid_upload(vsftpd, "vsftpd");
}

#[test]
fn sigkill_at_random_moments_on_vsftpd_loses_nothing_and_sends_nothing_twice() {
    killed_at_random(vsftpd, "vsftpd");
}

#[test]
fn a_connection_cut_mid_upload_is_resumed_without_duplicates() {
    cut_mid_upload(pure_ftpd, "pure-ftpd");
}

/// ProFTPD as installed never overwrites (`AllowOverwrite off`): a temporary name left by the cut
/// upload must not stop the next put of that file.
#[test]
fn a_connection_cut_mid_upload_on_proftpd_mod_tls_is_resumed_without_duplicates() {
    cut_mid_upload(proftpd_mod_tls, "ProFTPD mod_tls");
}

/// The control connection of eda's send cut every few kilobytes: the cycle goes on with new
/// connections, the next one delivers the rest, every id once.
fn cut_mid_upload(start_ftps: StartFtps, context: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    let server = start_ftps(tmp.path());
    let proxy = Proxy::start(server.port());
    let port = format!("port = {}", server.port());
    let through = format!("port = {}", proxy.port);
    ftp_workspace_on(
        &root,
        |path| server.endpoint(path),
        |e| {
            if e.contains("/eda/to-ord") {
                e.replace(&port, &through)
            } else {
                e
            }
        },
    );
    write_all(&root, &demo::first_delivery());
    server.give_to_user();
    // Each control connection is cut after a few kilobytes: in the middle of the uploads.
    proxy.set(Fault::CutAfter(9_000));
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert!(
        proxy.connections.load(Ordering::SeqCst) > 1,
        "{context}: the cut forced reconnections"
    );
    proxy.set(Fault::Pass);
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert_eq!(ord(&s, "eda")["files_pending"], 0, "{context}: {s}");
    let got = eda_got(&root);
    assert_ids_once_gap_free(&got);
    assert_no_id_twice(&root, &format!("{context}, after the cut"));
    let (_, s, _) = once(&root, SECOND);
    assert_eq!(
        ord(&s, "eda")["errors"],
        serde_json::json!([]),
        "{context}: {s}"
    );
    let left: Vec<_> = fs::read_dir(root.join("exchange/eda/to-ord"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{context}: temporary files left: {left:?}");
}

#[test]
fn sigkill_at_random_moments_on_an_ftps_ord_loses_nothing_and_sends_nothing_twice() {
    killed_at_random(pure_ftpd, "pure-ftpd");
}

#[test]
fn sigkill_at_random_moments_on_proftpd_mod_tls_loses_nothing_and_sends_nothing_twice() {
    killed_at_random(proftpd_mod_tls, "ProFTPD mod_tls");
}

/// `once` SIGKILLed at random moments of its first cycle, then run to the end: every promise.
fn killed_at_random(start_ftps: StartFtps, context: &str) {
    let kills_wanted: usize = std::env::var("EGME_ORD_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(8, |n: usize| (n / 3).max(1));
    let mut rng = Rng(0x5eed_f7b5 | 1);
    // The reference: never killed.
    let reference = tempfile::tempdir().unwrap();
    let (server, rroot) = demo_on(start_ftps, reference.path());
    let started = Instant::now();
    let (code, s, err) = once(&rroot, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    let took = started.elapsed();
    let expected = ord_side(&rroot);
    drop(server);

    let tmp = tempfile::tempdir().unwrap();
    let (_server, root) = demo_on(start_ftps, tmp.path());
    let mut kills = 0;
    for _ in 0..200 {
        // Within the first half of the reference's time: a run that happens to be faster than
        // the reference (a busy machine measured it) is still killed, not left to finish.
        let after = Duration::from_micros(rng.next() % (took.as_micros() as u64 / 2).max(1));
        let mut child = spawn_once(&root, FIRST);
        let deadline = Instant::now() + after;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        if !killed {
            break;
        }
        kills += 1;
        if kills >= kills_wanted {
            break;
        }
    }
    assert!(kills > 0, "{context}: no run was killed");
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert_all_promises(
        &root,
        &expected,
        FIRST,
        &format!("{context}, after {kills} kill(s)"),
    );
}

#[test]
fn plain_ftp_is_refused_without_allow_plaintext_and_with_it_works_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    let server = start(tmp.path(), Tls::Off);
    ftp_workspace(&root, &server, |e| e);
    let v = crate::support::run(&root, &["validate-config", "--no-environment"]);
    let out = crate::support::text(&v);
    assert_eq!(v.status.code(), Some(1), "{out}");
    assert!(out.contains("allow_plaintext = true"), "{out}");
    ftp_workspace(&root, &server, |e| {
        e.replace(" }", ", allow_plaintext = true }")
    });
    let v = crate::support::run(&root, &["validate-config", "--no-environment"]);
    let out = crate::support::text(&v);
    assert_eq!(v.status.code(), Some(0), "{out}");
    assert!(
        out.contains("warning:") && out.contains("in clear"),
        "{out}"
    );
    write_all(&root, &demo::first_delivery());
    server.give_to_user();
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert_eq!(ord(&s, "eda")["errors"], serde_json::json!([]), "{s}");
    assert_ids_once_gap_free(&eda_got(&root));
    assert!(
        err.lines()
            .any(|l| l.contains("WARN") && l.contains("plain FTP")),
        "{err}"
    );
}

/// ProFTPD's `mod_tls` (explicit TLS, `AllowOverwrite off`), run from Debian's package unpacked by
/// `scripts/test-servers`: the island ORD's cycle, a correction and `verify`, ids once each.
#[test]
fn an_island_ord_over_ftps_on_proftpd_mod_tls_is_received_netted_and_sent_with_ids_once() {
    island_cycle(proftpd_mod_tls);
}

/// `validate-config` probes the island ORD's FTPS folders on pure-ftpd and on ProFTPD mod_tls:
/// the server's welcome, its features, temporary names stored, renamed and removed, what RNTO
/// onto an existing name does (reported; the put checks the name first whatever it does).
#[test]
fn the_probe_tells_what_each_ftps_server_offers_and_does() {
    let tmp = tempfile::tempdir().unwrap();
    let pure = start(tmp.path(), Tls::Required);
    ftp_workspace(&tmp.path().join("ws"), &pure, |e| e);
    pure.give_to_user();
    let tmp2 = tempfile::tempdir().unwrap();
    let root2 = tmp2.path().join("ws");
    let proftpd = crate::support::proftpd::ProFtpd::start_ftps(
        &tmp2.path().join("proftpd"),
        &root2.join("exchange"),
    );
    ftp_workspace_on(&root2, |path| proftpd.ftp_endpoint(path, ""), |e| e);
    let tmp3 = tempfile::tempdir().unwrap();
    let root3 = tmp3.path().join("ws");
    let vsftpd = vsftpd(tmp3.path());
    ftp_workspace_on(&root3, |path| vsftpd.endpoint(path), |e| e);
    for (root, context) in [
        (tmp.path().join("ws"), "pure-ftpd"),
        (root2.clone(), "ProFTPD mod_tls"),
        (root3.clone(), "vsftpd"),
    ] {
        // The other ORDs' local folders.
        for ord in ["e-redes", "eem"] {
            for side in ["from-ord", "to-ord"] {
                fs::create_dir_all(root.join("exchange").join(ord).join(side)).unwrap();
            }
        }
        let o = crate::support::run(&root, &["validate-config"]);
        let table = crate::support::text(&o);
        eprintln!("--- {context}\n{table}");
        assert!(o.status.success(), "{context}: {table}");
        let o = crate::support::run(&root, &["validate-config", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let p = v["probes"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["folder"] == "eda send"))
            .cloned()
            .unwrap_or_default();
        assert!(
            p["protocol"]
                .as_str()
                .is_some_and(|t| t.starts_with("FTP over explicit TLS (AUTH TLS, PROT P): TLS 1.")),
            "{context}: the negotiated TLS version is said: {p:#}"
        );
        assert!(p["server"].as_str().is_some(), "{context}: {p:#}");
        let features = p["extensions"].to_string();
        assert!(
            features.contains("SIZE") && features.contains("MDTM"),
            "{context}: {p:#}"
        );
        assert!(p["temp_name"].get("Ok").is_some(), "{context}: {p:#}");
        assert!(p["rename"].get("Ok").is_some(), "{context}: {p:#}");
        assert!(
            p["rename_onto_existing"]["outcome"].is_string(),
            "{context}: {p:#}"
        );
        // Nothing left in the send folder.
        let left: Vec<_> = fs::read_dir(root.join("exchange/eda/to-ord"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{context}: {left:?}");
    }
}
