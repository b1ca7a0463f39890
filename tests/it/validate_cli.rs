//! `egme-ord validate-config` without the environment: every mistake of a config in one run.

use std::process::Command;

#[test]
fn a_config_with_several_mistakes_gets_all_of_them_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egme.toml");
    std::fs::write(
        &path,
        r#"
store = "s.sqlite"
work_dir = "work"
send_at = "25:00"
poll_intervall = "5m"
[mobility]
inbox = "m"
[registry]
cpes = "c.csv"
evses = "e.csv"
cemes = "x.csv"
[[ord]]
name = "e-redes"
region = "continent"
ord_entity = "EDIS"
receive = { transport = "local", path = "in", host = "x" }
send = { transport = "sftp", path = "/out" }
[[ord]]
name = "eda"
region = "atlantis"
ord_entity = "EDA"
receive = { transport = "local", path = "a" }
send = { transport = "local", path = "b" }
"#,
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_egme-ord"))
        .args(["validate-config", "--no-environment", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for needle in [
        "egme.toml:5:1: unknown key `poll_intervall`",
        "egme.toml:20:10: key `ord[1].region` (eda): unknown variant `atlantis`",
        "key `ord[0].receive.host` (e-redes) is only for transport = \"sftp\"",
        "key `ord[0].send.known_hosts` (e-redes) is required",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    let Some(count) = out.lines().last().and_then(|l| l.split(": ").nth(1)) else {
        panic!("{out}")
    };
    assert!(
        count.starts_with(char::is_numeric)
            && count.split(' ').next().unwrap().parse::<u32>().unwrap() >= 5,
        "{out}"
    );
}

#[test]
fn a_missing_config_file_exits_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_egme-ord"))
        .args(["validate-config", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
