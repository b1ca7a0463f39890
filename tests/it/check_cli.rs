//! `egme-ord check` driven as a binary: fixtures, one invalid file per rejection rule, exit codes, JSON.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egme-ord"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn check(args: &[&str]) -> Output {
    bin()
        .arg("check")
        .args(args)
        .output()
        .expect("run egme-ord")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_valid_fixture_passes_with_a_summary_line() {
    let dir = fixtures().join("valid");
    let o = check(&[dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let files = fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        out.lines().filter(|l| l.contains(": ok: CPE ")).count(),
        files,
        "{out}"
    );
    assert!(
        out.contains("92 periods") && out.contains("100 periods") && out.contains("2976 periods")
    );
}

#[test]
fn rule_examples_with_placeholder_and_19_character_cpes_are_rejected() {
    let dir = fixtures().join("rule-examples");
    let o = check(&[dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("12PEPT0002000099999999XX_20210705_476.sgl:0:23: error[E602]"),
        "{out}"
    );
    assert!(out.contains("check letters expected DG, found XX"), "{out}");
    assert!(
        out.contains("12PEPT000200009999999XX_20200519_476.sgl:0:5: error[E602]"),
        "{out}"
    );
    assert!(out.contains("found 19"), "{out}");
}

#[test]
fn each_invalid_fixture_is_rejected_with_its_expected_code() {
    let root = fixtures().join("invalid");
    let mut cases = 0;
    for case in fs::read_dir(&root).unwrap() {
        let case = case.unwrap().path();
        let expect = fs::read_to_string(case.join("EXPECT")).unwrap();
        let file = fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap() != "EXPECT")
            .unwrap();
        let o = check(&["--json", file.to_str().unwrap()]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{}: {out}", case.display());
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["valid"], false);
        let got: Vec<&str> = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap())
            .collect();
        for want in expect.split_whitespace() {
            assert!(
                got.contains(&want),
                "{}: expected {want}, got {got:?}",
                case.display()
            );
        }
        cases += 1;
    }
    assert!(cases >= 25, "only {cases} cases");
}

#[test]
fn diagnostics_are_in_compiler_style_with_line_and_column() {
    let file =
        fixtures().join("invalid/negative-value/171234PEPT0002000123681633GX_20210706_693.sgl");
    let o = check(&[file.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("_693.sgl:4:18: error[E205]: value: expected a value of zero or more, found \"-000000000012.000\""), "{out}");
}

#[test]
fn a_missing_path_exits_2_and_the_other_files_are_still_checked() {
    let good = fixtures().join("valid/PT0014000100605384QR_20210707_01.txt");
    let o = check(&["/nonexistent/file.sgl", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/file.sgl: io error"));
    assert!(stdout(&o).contains(": ok: CPE PT0014000100605384QR"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(check(&[]).status.code(), Some(2));
    assert_eq!(check(&["--region", "mars", "x"]).status.code(), Some(2));
}

#[test]
fn region_flag_overrides_inference() {
    // An Azores file read as Continent: its name fits no Continent pattern.
    let file = fixtures().join("valid/PT0014000100605384QR_20210707_01.txt");
    let o = check(&["--region", "continent", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("error[E601]"));
}

#[test]
fn json_output_has_summary_for_valid_files() {
    let file = fixtures().join("valid/000999PEPT0013700005415700NY_20200520_0000000999");
    let o = check(&["--json", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["region"], "madeira");
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["summary"]["total_kwh"], "0.029");
    assert_eq!(v["summary"]["status"], "D");
}

#[test]
fn oversized_file_is_rejected_without_reading_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("171234PEPT0002000123681633GX_20210706_693.sgl");
    let f = fs::File::create(&path).unwrap();
    f.set_len(17 * 1024 * 1024).unwrap();
    let o = check(&["--json", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("\"E002\""));
}

#[test]
fn binary_garbage_is_rejected_never_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("171234PEPT0002000123681633GX_20210706_693.sgl");
    let bytes: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(&path, bytes).unwrap();
    let o = check(&[path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn local_96_fixtures_of_both_dst_days_pass_with_their_convention_and_name_it_without() {
    let dir = fixtures().join("local-96");
    let o = check(&["--time-convention", "local-96", dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(": ok: CPE ")).count(),
        4,
        "{out}"
    );
    assert_eq!(out.matches("96 periods").count(), 4, "{out}");
    // Read as `local` (the default), every DST day is refused, and the message names the setting.
    let o = check(&[dir.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for code in ["error[E402]", "error[E405]"] {
        assert!(
            out.lines()
                .any(|l| l.contains(code) && l.contains("time_convention = \"local-96\"")),
            "{code}: {out}"
        );
    }
}
