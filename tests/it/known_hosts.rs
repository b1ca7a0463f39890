//! known_hosts read with OpenSSH's rules, against a real OpenSSH server started by the test: a
//! revoked key, a plain entry for another port, a bad line, hashed and `[host]:port` entries.

use std::fs;
use std::process::Command;

use crate::support::sshd::Sshd;
use crate::support::{once, one_server, write_all, FIRST};
use egme_ord_core::demo;

/// The server's host key as `type base64`.
fn host_key(server: &Sshd) -> String {
    let line = fs::read_to_string(server.dir.join("hostkey.pub")).unwrap();
    let mut parts = line.split_whitespace();
    format!("{} {}", parts.next().unwrap(), parts.next().unwrap())
}

fn errors_of(s: &serde_json::Value) -> String {
    s["ords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["errors"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_key_marked_revoked_is_refused_as_revoked_even_when_a_plain_line_lists_it() {
    let (_tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    let key = host_key(&server);
    let kh = server.dir.join("known_hosts");
    fs::write(
        &kh,
        format!("[127.0.0.1]:{} {key}\n@revoked * {key}\n", server.port),
    )
    .unwrap();
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1), "{s}");
    let errors = errors_of(&s);
    assert!(
        errors.contains("is marked @revoked in") && errors.contains("line 2"),
        "{errors}"
    );
    assert!(errors.contains("do not add it back"), "{errors}");
    assert!(!errors.contains("add it to known_hosts"), "{errors}");
    // Revoked alone: still revoked, never "unknown, add it".
    fs::write(&kh, format!("@revoked [127.0.0.1]:{} {key}\n", server.port)).unwrap();
    let (_, s, _) = once(&root, FIRST);
    assert!(errors_of(&s).contains("@revoked"), "{s}");
}

#[test]
fn a_plain_entry_means_port_22_so_it_does_not_admit_a_server_on_another_port() {
    let (_tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    assert_ne!(server.port, 22);
    fs::write(
        server.dir.join("known_hosts"),
        format!("127.0.0.1 {}\n", host_key(&server)),
    )
    .unwrap();
    let (code, s, _) = once(&root, FIRST);
    assert_eq!(code, Some(1), "{s}");
    let errors = errors_of(&s);
    assert!(errors.contains("is not in"), "{errors}");
    assert!(
        errors.contains(&format!("written [127.0.0.1]:{}", server.port)),
        "{errors}"
    );
}

#[test]
fn a_line_that_cannot_be_read_is_skipped_with_its_file_and_line_and_the_valid_line_still_counts() {
    let (_tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    let kh = server.dir.join("known_hosts");
    fs::write(
        &kh,
        format!(
            "# the ORDs' servers\nthis line is not a key\n[127.0.0.1]:{} {}\n",
            server.port,
            host_key(&server)
        ),
    )
    .unwrap();
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    let warning = err
        .lines()
        .find(|l| l.contains("known_hosts line skipped"))
        .unwrap_or_else(|| panic!("no warning in:\n{err}"));
    assert!(warning.contains("\"line\":2"), "{warning}");
    assert!(warning.contains(&kh.display().to_string()), "{warning}");
    assert!(warning.contains("WARN"), "{warning}");
}

#[test]
fn hashed_names_and_host_port_entries_are_accepted() {
    let (_tmp, server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    let kh = server.dir.join("known_hosts");
    // `[host]:port` (the support writes this form): accepted.
    server.write_known_hosts(&kh, &server.dir.join("hostkey.pub"));
    let (code, s, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{s}\n{err}");
    // The same file hashed by OpenSSH's own tool (`ssh-keygen -H`): still accepted.
    let hashed = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(hashed.status.success(), "{hashed:?}");
    let text = fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let (code, s, err) = once(&root, "2024-10-29T21:30:00Z");
    assert_eq!(code, Some(0), "{s}\n{err}");
}
