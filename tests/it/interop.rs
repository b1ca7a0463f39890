//! Interoperability: the demo's cycle against SFTP servers other than OpenSSH, each started by the test on 127.0.0.1 with the policies of servers ORDs run (docs/INTEROP.md).

use std::fs;
use std::path::Path;

use crate::support::asyncssh::{AsyncSsh, Policy};
use crate::support::proftpd::ProFtpd;
use crate::support::sshd::Sshd;
use crate::support::{
    assert_all_promises, assert_no_id_twice, events, once, ord_side, sftp_workspace, write_all,
    SftpServer, FIRST,
};
use egme_ord_core::demo;
use serde_json::Value;

const SECOND: &str = "2024-10-29T21:30:00Z";

/// Starts a server in the folder given.
type Start = Box<dyn Fn(&Path) -> Box<dyn SftpServer>>;

fn asyncssh(policy: Policy) -> Start {
    Box::new(move |dir: &Path| Box::new(AsyncSsh::start(dir, policy)) as Box<dyn SftpServer>)
}

fn proftpd(allow_overwrite: bool) -> Start {
    Box::new(move |dir: &Path| {
        Box::new(ProFtpd::start_sftp(dir, allow_overwrite)) as Box<dyn SftpServer>
    })
}

fn gesftpserver() -> Start {
    Box::new(|dir: &Path| {
        Box::new(Sshd::start_with_subsystem(
            dir,
            Path::new("/usr/libexec/gesftpserver"),
        )) as Box<dyn SftpServer>
    })
}

/// A demo workspace whose ORD folders are on the server `start` starts.
fn workspace_on(start: &Start) -> (tempfile::TempDir, Box<dyn SftpServer>, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let server = start(&tmp.path().join("server"));
    let root = tmp.path().join("ws");
    sftp_workspace(&root, server.as_ref(), server.as_ref(), "0s");
    (tmp, server, root)
}

/// A demo workspace whose ORD folders are on an asyncssh server with `policy`.
fn workspace(policy: Policy) -> (tempfile::TempDir, Box<dyn SftpServer>, std::path::PathBuf) {
    workspace_on(&asyncssh(policy))
}

/// What the same inputs give on local folders (the reference every server must match).
fn reference(steps: &[(&[demo::DemoFile], &str)]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::write(root.join("egme-ord.toml"), demo::config_toml("20:00", "0s")).unwrap();
    write_all(root, &demo::registry_files());
    for (files, now) in steps {
        write_all(root, files);
        let (code, s, err) = once(root, now);
        assert_eq!(code, Some(0), "reference: {s}\n{err}");
    }
    ord_side(root)
}

fn received_total(summary: &Value) -> u64 {
    summary["ords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["received"]["applied"].as_u64().unwrap_or(0))
        .sum()
}

/// The demo's cycle and a correction on the server `start` starts: the ORDs see what local
/// folders give, byte for byte, and every promise holds.
fn demo_and_correction(start: &Start, context: &str) {
    let expected = reference(&[
        (&demo::first_delivery(), FIRST),
        (&demo::correction(), SECOND),
    ]);
    let (_tmp, _server, root) = workspace_on(start);
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert!(received_total(&s) > 0, "{context}: nothing received: {s}");
    write_all(&root, &demo::correction());
    let (code, s, err) = once(&root, SECOND);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert_all_promises(&root, &expected, SECOND, context);
}

/// A stock asyncssh server drops a connection that sends any request before the login completed:
/// the keepalive is set only once authenticated.
#[test]
fn a_strict_server_accepts_the_login_because_the_keepalive_waits_for_authentication() {
    demo_and_correction(&asyncssh(Policy::default()), "stock asyncssh");
}

/// A Windows/MFT-like server: no OpenSSH extensions (no fsync, no posix-rename), a rename onto an
/// existing name refused with a generic failure, no permission bits in any attributes.
#[test]
fn a_windows_like_server_without_extensions_or_permissions_runs_the_demo_and_its_correction() {
    demo_and_correction(&asyncssh(Policy::mft()), "windows-like asyncssh");
}

/// Without permission bits a listing says no file type: the ORD files must still be received,
/// and after `state/` and `work/` are lost the fence must still see our files at the ORD and
/// refuse the send rather than use their ids again.
#[test]
fn a_server_without_permissions_in_its_attributes_still_lists_the_ord_files_and_the_fence_sees_ours(
) {
    let policy = Policy {
        no_permissions: true,
        ..Policy::default()
    };
    let (_tmp, _server, root) = workspace(policy);
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    let local = {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::write(r.join("egme-ord.toml"), demo::config_toml("20:00", "0s")).unwrap();
        write_all(r, &demo::registry_files());
        write_all(r, &demo::first_delivery());
        received_total(&once(r, FIRST).1)
    };
    assert_eq!(received_total(&s), local, "every ORD file received: {s}");
    let before = ord_side(&root);
    assert!(!before.is_empty());
    fs::remove_dir_all(root.join("state")).unwrap();
    fs::remove_dir_all(root.join("work")).unwrap();
    let (code, s, out) = once(&root, SECOND);
    assert_ne!(code, Some(0), "the send must be refused: {s}\n{out}");
    assert!(out.contains("egme-ord recover"), "{out}");
    assert_eq!(ord_side(&root), before, "nothing more may reach the ORDs");
    assert_no_id_twice(&root, "no permissions, state and work lost");
}

/// ProFTPD's `AllowOverwrite off` (its default): a put cut short leaves its temporary name, which
/// such a server never lets us open again. The next cycle must remove it and deliver every file,
/// leaving no temporary file.
#[test]
fn a_leftover_temporary_file_on_a_server_that_never_overwrites_does_not_stop_delivery() {
    leftovers_then_delivery(&asyncssh(Policy::no_overwrite()), "no-overwrite asyncssh");
}

/// Puts cut short earlier left the temporary names of a third of the files: the cycle delivers
/// every file once and leaves no temporary file.
fn leftovers_then_delivery(start: &Start, context: &str) {
    let expected = reference(&[(&demo::first_delivery(), FIRST)]);
    let (_tmp, _server, root) = workspace_on(start);
    write_all(&root, &demo::first_delivery());
    // What interrupted puts leave behind: the temporary name of every third file to be sent.
    for (i, key) in expected.keys().enumerate().filter(|(i, _)| i % 3 == 0) {
        let (ord, name) = key.split_once('/').unwrap();
        let dir = root.join("exchange").join(ord).join("to-ord");
        fs::write(
            dir.join(format!(".{name}.egme-tmp")),
            format!("partial {i}"),
        )
        .unwrap();
    }
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert_all_promises(&root, &expected, FIRST, context);
}

/// The demo's first cycle on an asyncssh server with `policy`, which must fail: the workspace and
/// the first ORD's errors.
fn refused_first_cycle(
    policy: Policy,
) -> (
    tempfile::TempDir,
    Box<dyn SftpServer>,
    std::path::PathBuf,
    String,
) {
    let (tmp, server, root) = workspace(policy);
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_ne!(code, Some(0), "{s}\n{err}");
    let errors = s["ords"][0]["errors"].to_string();
    (tmp, server, root, errors)
}

/// A server that refuses renames: the error names the operation, the remote paths and what the
/// ORD's administrator must grant.
#[test]
fn a_refused_rename_names_the_file_and_the_right_the_account_needs() {
    let (_tmp, _server, root, errors) = refused_first_cycle(Policy {
        no_rename: true,
        ..Policy::default()
    });
    assert!(
        errors.contains("rename")
            && errors.contains(".egme-tmp")
            && errors.contains("right to rename"),
        "{errors}"
    );
    // Nothing half-delivered: the temporary files are what stays, no final name.
    let sent: Vec<String> = ord_side(&root)
        .keys()
        .filter(|k| !k.contains("/."))
        .cloned()
        .collect();
    assert!(sent.is_empty(), "{sent:?}");
}

/// A server without `fsync@openssh.com` weakens "a delivered file survives the ORD's server
/// crashing": `validate-config` says so for each send folder there (and only there), the cycle
/// logs it, and a server that offers it is not mentioned.
#[test]
fn a_server_without_fsync_is_said_by_validate_config_and_by_the_cycle() {
    let validate = |root: &std::path::Path| {
        let o = crate::support::run(root, &["validate-config", "--json"]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (v["warnings"].to_string(), crate::support::text(&o))
    };
    let (_tmp, _server, root) = workspace(Policy {
        windows: true,
        ..Policy::default()
    });
    let (warnings, out) = validate(&root);
    for o in demo::ords() {
        assert!(
            warnings.contains(&format!(
                "{} send: the server does not offer fsync@openssh.com",
                o.name
            )),
            "{out}"
        );
        assert!(
            !warnings.contains(&format!("{} receive: the server does not", o.name)),
            "{out}"
        );
    }
    write_all(&root, &demo::first_delivery());
    let (code, _, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("does not offer fsync@openssh.com"), "{err}");
    // An event once per ORD (its send folder), not once per cycle; a line in `status`.
    let (code, _, err) = once(&root, SECOND);
    assert_eq!(code, Some(0), "{err}");
    let said = events(&root, "server-weakened");
    assert_eq!(said.len(), demo::ords().len(), "{said:#?}");
    for o in demo::ords() {
        assert!(
            said.iter()
                .any(|e| e.starts_with(&format!("\"{}\"", o.name))
                    && e.contains("does not offer fsync@openssh.com")),
            "{said:#?}"
        );
    }
    let status = crate::support::run(&root, &["status"]);
    let shown = crate::support::text(&status);
    assert_eq!(
        shown
            .matches("WEAKENED since 2024-10-28 21:30:00Z: send folder: the server does not offer fsync@openssh.com")
            .count(),
        demo::ords().len(),
        "{shown}"
    );
    let status = crate::support::run(&root, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        v[0]["send_server_lacks"]["lacks"][0]
            .as_str()
            .is_some_and(|l| l.contains("fsync@openssh.com")),
        "{v}"
    );
    let (_tmp2, _stock, stock_root) = workspace(Policy::default());
    let (warnings, out) = validate(&stock_root);
    assert!(!warnings.contains("fsync"), "{out}");
    write_all(&stock_root, &demo::first_delivery());
    let (code, _, err) = once(&stock_root, FIRST);
    assert_eq!(code, Some(0), "{err}");
    assert!(events(&stock_root, "server-weakened").is_empty());
    let shown = crate::support::text(&crate::support::run(&stock_root, &["status"]));
    assert!(!shown.contains("WEAKENED"), "{shown}");
}

/// A cycle killed right after its files reached the ORD and before the ledger recorded them, on
/// servers that never overwrite (ProFTPD's default) and that refuse a rename onto an existing name
/// with a generic failure (Windows/MFT): the next cycle finds each file already there with the
/// same bytes, records it delivered, and every promise holds.
#[test]
fn a_cycle_killed_after_its_puts_is_completed_by_the_next_on_servers_that_never_overwrite() {
    killed_after_puts(&asyncssh(Policy::no_overwrite()), "no-overwrite asyncssh");
    killed_after_puts(&asyncssh(Policy::mft()), "windows-like asyncssh");
}

/// A cycle killed after its puts, before the ledger recorded them; then the next cycle.
fn killed_after_puts(start: &Start, context: &str) {
    let expected = reference(&[(&demo::first_delivery(), FIRST)]);
    let (_tmp, server, root) = workspace_on(start);
    write_all(&root, &demo::first_delivery());
    let status = crate::support::bin()
        .args(["once", "--json", "--config"])
        .arg(root.join("egme-ord.toml"))
        .args(["--now", FIRST])
        .env("EGME_ORD_CRASH_AT", "after-delivery-put")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "{context}: the cycle must have been killed"
    );
    let there_before = ord_side(&root);
    assert!(!there_before.is_empty(), "{context}: files reached the ORD");
    let written_before = server.writes().map(|w| w.len());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{context}: {s}\n{err}");
    assert_all_promises(&root, &expected, FIRST, context);
    // The rerun learnt from the fence's listing which files were there already with the bytes
    // the ledger recorded: none of them was written again (its cost follows the files left).
    if let (Some(writes), Some(before)) = (server.writes(), written_before) {
        let rewritten: Vec<&String> = writes[before..]
            .iter()
            .filter(|path| {
                there_before
                    .keys()
                    .filter_map(|k| k.split_once('/').map(|(_, name)| name))
                    .filter(|name| !name.starts_with('.'))
                    .any(|name| path.contains(name))
            })
            .collect();
        assert!(
            rewritten.is_empty(),
            "{context}: files already at the ORD written again: {rewritten:?}"
        );
    }
}

/// Every check of the matrix on one server: the demo and a correction, leftovers of puts cut
/// short, a cycle killed after its puts.
fn the_matrix(start: &Start, context: &str) {
    demo_and_correction(start, context);
    leftovers_then_delivery(start, &format!("{context}, leftovers"));
    killed_after_puts(start, &format!("{context}, killed after its puts"));
}

/// A server whose rename onto an existing name silently replaces it (SFTPGo, Go's pkg/sftp): the
/// put never renames onto a name without knowing what is there (the fence's listing, then the
/// comparison of a pending file found there), so every promise holds.
#[test]
fn a_server_whose_rename_replaces_holds_every_promise() {
    the_matrix(
        &asyncssh(Policy {
            rename_replaces: true,
            ..Policy::default()
        }),
        "asyncssh, rename replaces",
    );
}

/// ProFTPD's mod_sftp as installed: `AllowOverwrite off`.
#[test]
fn proftpd_mod_sftp_with_allow_overwrite_off_holds_every_promise() {
    the_matrix(&proftpd(false), "ProFTPD mod_sftp, AllowOverwrite off");
}

#[test]
fn proftpd_mod_sftp_with_allow_overwrite_on_holds_every_promise() {
    the_matrix(&proftpd(true), "ProFTPD mod_sftp, AllowOverwrite on");
}

/// Green End SFTP Server (SFTP versions 3 to 6) as OpenSSH's sftp subsystem.
#[test]
fn gesftpserver_as_the_sftp_subsystem_holds_every_promise() {
    the_matrix(&gesftpserver(), "gesftpserver");
}

/// Adds `temp_name = pattern` to every send folder of the workspace's config.
fn with_temp_name(root: &Path, pattern: &str) {
    let path = root.join("egme-ord.toml");
    let config = fs::read_to_string(&path).unwrap();
    let edited: Vec<String> = config
        .lines()
        .map(|l| {
            if l.starts_with("send = {") {
                l.replacen(
                    "attempts = 2 }",
                    &format!("attempts = 2, temp_name = \"{pattern}\" }}"),
                    1,
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        edited.iter().filter(|l| l.contains("temp_name")).count(),
        demo::ords().len(),
        "{config}"
    );
    fs::write(&path, edited.join("\n") + "\n").unwrap();
}

/// A server that refuses names starting with a dot (as some Windows/MFT servers do): with the
/// default hidden temporary name the send fails and says what to grant or set; with
/// `temp_name = "{name}.part"` every file is delivered once and none is left behind.
#[test]
fn a_server_that_refuses_dot_names_is_served_with_a_part_suffix() {
    let policy = Policy {
        no_dot_names: true,
        ..Policy::default()
    };
    let (_tmp, _server, _, errors) = refused_first_cycle(policy);
    assert!(
        errors.contains(".egme-tmp")
            && errors.contains("start with a dot")
            && errors.contains("temp_name"),
        "{errors}"
    );
    let expected = reference(&[(&demo::first_delivery(), FIRST)]);
    let (_tmp, _server, root) = workspace(policy);
    with_temp_name(&root, "{name}.part");
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert_all_promises(&root, &expected, FIRST, "dot-names refused, {name}.part");
}

/// `temp_name = "upload/{name}"`: every file is written in a subfolder (made when missing) and
/// renamed into the send folder, so a pickup that takes every file it sees there never sees a
/// partial one; the subfolder is left empty.
#[test]
fn temporary_names_in_a_subfolder_keep_partial_files_out_of_the_send_folder() {
    let expected = reference(&[(&demo::first_delivery(), FIRST)]);
    let (_tmp, _server, root) = workspace(Policy::mft());
    with_temp_name(&root, "upload/{name}");
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    for o in demo::ords() {
        let upload = root.join("exchange").join(o.name).join("to-ord/upload");
        assert!(upload.is_dir(), "{}", upload.display());
        assert_eq!(crate::support::names(&upload), Vec::<String>::new());
        fs::remove_dir(&upload).unwrap();
    }
    assert_all_promises(&root, &expected, FIRST, "temp_name upload/{name}");
}

/// Leftovers of puts cut short whose files will not be put again (here: delivered since) are
/// removed before the next delivery, in the folder or in the `temp_name` subfolder; `verify` warns
/// of them until then, and nobody else's file is touched.
#[test]
fn leftovers_of_ours_are_cleaned_before_a_delivery_and_no_one_elses() {
    for pattern in [None, Some("upload/{name}")] {
        let context = pattern.unwrap_or("the default temp_name");
        let (_tmp, _server, root) = workspace(Policy::default());
        if let Some(p) = pattern {
            with_temp_name(&root, p);
        }
        write_all(&root, &demo::first_delivery());
        let (code, s, err) = once(&root, FIRST);
        assert_eq!(code, Some(0), "{context}: {s}\n{err}");
        let delivered: Vec<(&str, String)> = demo::ords()
            .iter()
            .flat_map(|o| {
                let dir = root.join("exchange").join(o.name).join("to-ord");
                crate::support::names(&dir)
                    .into_iter()
                    .filter(|n| n.ends_with(".sgl"))
                    .map(|n| (o.name, n))
            })
            .collect();
        let mut planted = Vec::new();
        for (ord, name) in delivered.iter().step_by(4) {
            let dir = root.join("exchange").join(ord).join("to-ord");
            fs::create_dir_all(dir.join("upload")).unwrap();
            let temp = match pattern {
                None => dir.join(format!(".{name}.egme-tmp")),
                Some(_) => dir.join("upload").join(name),
            };
            fs::write(&temp, "partial").unwrap();
            planted.push(temp);
        }
        let e_redes = root.join("exchange/e-redes/to-ord");
        let foreign = [
            e_redes.join(".someone-elses.sgl.egme-tmp"),
            e_redes.join("upload/someone-elses.sgl"),
        ];
        fs::create_dir_all(e_redes.join("upload")).unwrap();
        for f in &foreign {
            fs::write(f, "not ours").unwrap();
        }
        let o = crate::support::run(&root, &["verify"]);
        let said = crate::support::text(&o);
        assert!(
            said.contains("a temporary file of an upload cut short")
                && !said.contains("someone-elses"),
            "{context}: {said}"
        );
        let (code, s, err) = once(&root, SECOND);
        assert_eq!(code, Some(0), "{context}: {s}\n{err}");
        let left: Vec<_> = planted.iter().filter(|p| p.exists()).collect();
        assert!(
            left.is_empty(),
            "{context}: leftovers not cleaned: {left:?}"
        );
        assert!(
            foreign.iter().all(|f| f.exists()),
            "{context}: a file not ours was removed"
        );
        let said = crate::support::text(&crate::support::run(&root, &["verify"]));
        assert!(!said.contains("upload cut short"), "{context}: {said}");
    }
}

/// `validate-config --json` on the workspace at `root`: its exit code and the probe of `folder`
/// (`"<ord> <side>"`); the table is printed (the note quotes it).
fn probe_of(root: &Path, folder: &str, context: &str) -> (Option<i32>, Value) {
    let o = crate::support::run(root, &["validate-config"]);
    let table = crate::support::text(&o);
    eprintln!("--- {context}\n{table}");
    let o = crate::support::run(root, &["validate-config", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    let probe = v["probes"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["folder"] == folder).cloned())
        .unwrap_or(Value::Null);
    assert!(!probe.is_null(), "{context}: no probe of {folder}: {v}");
    // The probe leaves nothing behind in the send folder.
    let left: Vec<String> = ord_side(root).into_keys().collect();
    assert!(left.is_empty(), "{context}: the probe left {left:?}");
    (o.status.code(), probe)
}

/// The probe tells the servers of the matrix apart: what a rename onto an existing name does,
/// whether attributes carry permissions, fsync, a temporary name refused (an error naming
/// `temp_name`), each from the server itself.
#[test]
fn the_probe_tells_what_each_server_offers_and_does() {
    let servers: Vec<(&str, Start)> = vec![
        (
            "OpenSSH internal-sftp",
            Box::new(|dir: &Path| Box::new(Sshd::start(dir)) as Box<dyn SftpServer>),
        ),
        ("asyncssh stock", asyncssh(Policy::default())),
        (
            "asyncssh rename replaces",
            asyncssh(Policy {
                rename_replaces: true,
                ..Policy::default()
            }),
        ),
        ("asyncssh Windows/MFT-like", asyncssh(Policy::mft())),
        (
            "asyncssh never overwrites",
            asyncssh(Policy::no_overwrite()),
        ),
        (
            "asyncssh refuses dot-names",
            asyncssh(Policy {
                no_dot_names: true,
                ..Policy::default()
            }),
        ),
        ("ProFTPD mod_sftp AllowOverwrite off", proftpd(false)),
        ("ProFTPD mod_sftp AllowOverwrite on", proftpd(true)),
        ("gesftpserver", gesftpserver()),
    ];
    for (context, start) in &servers {
        let (_tmp, _server, root) = workspace_on(start);
        let (code, p) = probe_of(&root, "e-redes send", context);
        let onto = p["rename_onto_existing"]["outcome"].as_str().unwrap_or("");
        let fsync = p["fsync"].as_str().unwrap_or("");
        let perms = p["permissions"].as_str().unwrap_or("");
        let temp_ok = p["temp_name"].get("Ok").is_some();
        let expected: (&str, &str, &str, bool) = match *context {
            "OpenSSH internal-sftp" => ("refused", "yes", "yes", true),
            "asyncssh stock" => ("refused", "yes", "yes", true),
            // As SFTPGo's and Go pkg/sftp's plain rename: a warning, not an error.
            "asyncssh rename replaces" => ("replaces", "yes", "yes", true),
            "asyncssh Windows/MFT-like" => ("refused", "no", "no", true),
            "asyncssh never overwrites" => ("refused", "yes", "yes", true),
            "asyncssh refuses dot-names" => ("", "yes", "yes", false),
            "ProFTPD mod_sftp AllowOverwrite off" => ("refused", "yes", "yes", true),
            // mod_sftp refuses a v3 rename onto an existing name whatever AllowOverwrite says.
            "ProFTPD mod_sftp AllowOverwrite on" => ("refused", "yes", "yes", true),
            _ => ("refused", "yes", "yes", true),
        };
        assert_eq!((onto, fsync, perms, temp_ok), expected, "{context}: {p:#}");
        // A refused temporary name breaks delivery: an error naming the setting; the rest pass.
        assert_eq!(code, Some(if temp_ok { 0 } else { 1 }), "{context}: {p:#}");
        if !temp_ok {
            assert!(p["problems"].to_string().contains("temp_name"), "{p:#}");
        }
        assert!(
            p["server"]
                .as_str()
                .is_some_and(|b| b.starts_with("SSH-2.0-")),
            "{context}: {p:#}"
        );
        assert!(p["protocol"]
            .as_str()
            .is_some_and(|v| v.starts_with("SFTP ")));
    }
}

/// A server that does not read a folder's READDIRs in order (after the end of a folder, its first
/// names again): a listing with READDIRs outstanding sees names after the end, is not trusted,
/// and is asked again one READDIR at a time; the cycles give what local folders give.
#[test]
fn a_server_that_lists_a_folder_again_after_its_end_is_listed_one_readdir_at_a_time() {
    let expected = reference(&[
        (&demo::first_delivery(), FIRST),
        (&demo::correction(), SECOND),
    ]);
    let (_tmp, _server, root) = workspace(Policy {
        readdir_again: true,
        ..Policy::default()
    });
    write_all(&root, &demo::first_delivery());
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert!(
        err.contains("listed again, one READDIR at a time") && err.contains("out of sequence"),
        "{err}"
    );
    assert!(received_total(&s) > 0, "nothing received: {s}");
    write_all(&root, &demo::correction());
    let (code, s, err) = once(&root, SECOND);
    assert_eq!(code, Some(0), "{s}\n{err}");
    assert_all_promises(&root, &expected, SECOND, "READDIRs not read in order");
}

/// The files rejected by a cycle (its `rejected` events).
fn rejections(summary: &Value) -> usize {
    summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[1] == "rejected")
        .count()
}

/// The files in quarantine, all ORDs.
fn quarantined(summary: &Value) -> u64 {
    summary["ords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["quarantined"].as_u64().unwrap())
        .sum()
}

/// A receive folder of many READDIR batches (OpenSSH answers 100 names a batch), listed with
/// several READDIRs in flight: every name handed over once, on every server — the 1,500 names
/// that are not ORD files are each quarantined once, the demo's ORD files are all applied, and the
/// next cycle finds nothing new.
#[test]
fn a_folder_of_many_readdir_batches_is_listed_whole_by_every_server() {
    const JUNK: usize = 1_500;
    let servers: [(&str, Start); 4] = [
        (
            "OpenSSH",
            Box::new(|dir: &Path| Box::new(Sshd::start(dir)) as Box<dyn SftpServer>),
        ),
        ("gesftpserver", gesftpserver()),
        ("ProFTPD mod_sftp", proftpd(false)),
        ("asyncssh", asyncssh(Policy::default())),
    ];
    for (context, start) in &servers {
        let (_tmp, _server, root) = workspace_on(start);
        let from = root.join("exchange/e-redes/from-ord");
        for i in 0..JUNK {
            fs::write(from.join(format!("not-an-ord-file-{i:04}.txt")), b"x").unwrap();
        }
        write_all(&root, &demo::first_delivery());
        let (code, s, err) = once(&root, FIRST);
        assert_eq!(code, Some(0), "{context}: {s}\n{err}");
        assert_eq!(
            rejections(&s),
            JUNK,
            "{context}: each name rejected once: {}",
            s["ords"]
        );
        assert_eq!(quarantined(&s), JUNK as u64, "{context}: {s}");
        assert_eq!(
            received_total(&s),
            12,
            "{context}: every ORD file applied: {s}"
        );
        let (code, s, err) = once(&root, SECOND);
        assert_eq!(code, Some(0), "{context}: {s}\n{err}");
        assert_eq!(
            rejections(&s),
            0,
            "{context}: nothing new the second time: {}",
            s["ords"]
        );
        assert_eq!(
            received_total(&s),
            0,
            "{context}: nothing new the second time: {s}"
        );
        assert_eq!(quarantined(&s), JUNK as u64, "{context}: {s}");
    }
}
