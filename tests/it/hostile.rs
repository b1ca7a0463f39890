//! Hostile input: malformed and malicious ORD files, names, remote links and CDRs, put on a real
//! sshd; each is rejected with its expected code and quarantined, and the cycle goes on.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::support::{once, one_server, ord_name, write_all, FIRST};
use chrono::NaiveDate;
use egme_ord::store::Store;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::demo;
use egme_ord_core::region::Region;

/// A valid E-Redes file for the `k`-th test CPE: (name, text).
fn valid(k: u64) -> (String, String) {
    let ord = &demo::ords()[0];
    let cpe = Cpe::from_parts(2, 700_000_000 + k).unwrap();
    let day = NaiveDate::from_ymd_opt(2024, 10, 26).unwrap();
    let f = demo::ord_file(
        ord,
        cpe,
        demo::ord_profile(Region::Continent, day, k, 0),
        500 + k,
        day.succ_opt().unwrap(),
    );
    let name = f.path.rsplit('/').next().unwrap().to_string();
    (name, String::from_utf8(f.bytes).unwrap())
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    (lines.join("\n") + "\n").into_bytes()
}

/// Replaces field `field` of line `line` (tab-separated).
fn set_field(text: &str, line: usize, field: usize, value: &str) -> Vec<u8> {
    let mut l = lines(text);
    let mut fields: Vec<String> = l[line].split('\t').map(str::to_string).collect();
    fields[field] = value.to_string();
    l[line] = fields.join("\t");
    join(&l)
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Content cases: (label, bytes, expected code). Each gets a valid name of its own.
fn content_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let (_, t) = valid(0);
    let l = lines(&t);
    let n = l.len();
    let mut utf16 = vec![0xFF, 0xFE];
    for u in t.encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00];
    gzip.extend(noise(2000, 7));
    let swap = |a: usize, b: usize| {
        let mut v = l.clone();
        v.swap(a, b);
        join(&v)
    };
    let without = |i: usize| {
        let mut v = l.clone();
        v.remove(i);
        join(&v)
    };
    let with_at = |i: usize, line: &str| {
        let mut v = l.clone();
        v.insert(i, line.to_string());
        join(&v)
    };
    vec![
        ("empty file", vec![], "E003"),
        ("only blank lines", b"\n\n   \n".to_vec(), "E003"),
        ("random binary", noise(4096, 1), "E001"),
        ("UTF-16 encoding", utf16, "E001"),
        (
            "Latin-1 byte",
            t.replacen("EDIS", "ED\u{c9}S", 1).into_bytes(),
            "E001",
        ),
        (
            "NUL byte",
            t.replacen("EDIS", "ED\0S", 1).into_bytes(),
            "E001",
        ),
        ("gzip data", gzip, "E001"),
        (
            "three million lines",
            "x\n".repeat(3_000_000).into_bytes(),
            "E005",
        ),
        (
            "beyond the size limit",
            vec![b'0'; 17 * 1024 * 1024],
            "E002",
        ),
        ("one 10 MB line", vec![b'9'; 10 * 1024 * 1024], "E101"),
        ("blank line inside", with_at(3, ""), "E004"),
        ("unknown record", with_at(3, "30\tX"), "E101"),
        (
            "totals first",
            {
                let mut v = l.clone();
                let last = v.pop().unwrap();
                v.insert(0, last);
                join(&v)
            },
            "E102",
        ),
        ("header missing", without(0), "E103"),
        ("header twice", with_at(1, &l[0]), "E104"),
        (
            "extra field",
            {
                let mut v = l.clone();
                v[3].push_str("\t0");
                join(&v)
            },
            "E105",
        ),
        (
            "semicolons for tabs",
            t.replace('\t', ";").into_bytes(),
            "E101",
        ),
        (
            "non-numeric transmission id",
            set_field(&t, 0, 3, "00000001a"),
            "E201",
        ),
        ("impossible date", set_field(&t, 0, 6, "20241332"), "E202"),
        ("period 2415", set_field(&t, 3, 2, "2415"), "E203"),
        ("value not a number", set_field(&t, 3, 3, "abc"), "E204"),
        ("value in exponent form", set_field(&t, 3, 3, "1e5"), "E204"),
        (
            "value of 40 digits",
            set_field(&t, 3, 3, &"9".repeat(40)),
            "E204",
        ),
        (
            "negative value",
            set_field(&t, 3, 3, "-0000000000001.000"),
            "E205",
        ),
        ("reading status 9", set_field(&t, 3, 4, "9"), "E206"),
        ("bad fixed field", set_field(&t, 1, 1, "X"), "E207"),
        (
            "selection ends before it starts",
            set_field(&t, 0, 7, "20241020"),
            "E301",
        ),
        (
            "two delivery points",
            set_field(&t, 0, 5, "00000002"),
            "E302",
        ),
        ("foreign origin entity", set_field(&t, 0, 1, "EVIL"), "E303"),
        (
            "detail outside the selection",
            set_field(&t, 3, 1, "20241025"),
            "E401",
        ),
        (
            "period twice",
            {
                let mut v = l.clone();
                v[4] = v[3].clone();
                join(&v)
            },
            "E403",
        ),
        ("periods out of order", swap(3, 4), "E404"),
        ("a quarter-hour missing", without(10), "E405"),
        (
            "totals do not match",
            set_field(&t, n - 1, 3, "000095"),
            "E501",
        ),
        ("record after the totals", with_at(n, &l[3]), "E102"),
    ]
}

/// Name cases: (label, name bytes, expected code). Each carries valid content.
fn name_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let (good, _) = valid(0);
    let s = |x: &str| x.as_bytes().to_vec();
    vec![
        ("backslash traversal", s("x\\..\\..\\etc\\passwd"), "E601"),
        (
            "backslash traversal with a valid tail",
            s(&format!("x\\..\\{good}")),
            "E601",
        ),
        ("newline", s("a\nb.sgl"), "E601"),
        ("carriage return", s(&format!("{good}\r")), "E601"),
        (
            "terminal escape",
            s("\u{1b}[2J\u{1b}[31mcleared.sgl"),
            "E601",
        ),
        ("tab", s("tab\there.sgl"), "E601"),
        ("DEL character", s("\u{7f}.sgl"), "E601"),
        ("spaces", s("name with spaces.sgl"), "E601"),
        ("shell substitution", s("$(reboot).sgl"), "E601"),
        ("shell separators", s(";rm -rf ~;.sgl"), "E601"),
        ("backticks", s("`id`.sgl"), "E601"),
        ("url-encoded traversal", s("%2e%2e%2fetc%2fpasswd"), "E601"),
        ("255 characters", vec![b'a'; 255], "E601"),
        ("non-ASCII UTF-8", s("ficheiro_ção.sgl"), "E601"),
        ("Windows device name", s("CON.sgl"), "E601"),
        ("leading dash", s("-rf.sgl"), "E601"),
        (
            "wrong CPE check letters",
            s(&good.replacen(&good[8..28], &format!("{}XX", &good[8..26]), 1)),
            "E602",
        ),
        (
            "upper-case extension",
            s(&good.replace(".sgl", ".SGL")),
            "E601",
        ),
        ("double extension", s(&format!("{good}.exe")), "E601"),
        (
            "another region's extension",
            s(&good.replace(".sgl", ".txt")),
            "E601",
        ),
        (
            "not UTF-8",
            vec![0xff, 0xfe, b'.', b's', b'g', b'l'],
            "E604",
        ),
    ]
}

#[test]
fn hostile_ord_files_names_links_and_cdrs_are_rejected_with_their_codes_and_the_cycle_goes_on() {
    let (_tmp, _server, root) = one_server("0s");
    write_all(&root, &demo::first_delivery());
    let inbox = root.join("exchange/e-redes/from-ord");
    // expected: name as the ledger records it → (label, code)
    let mut expected: BTreeMap<String, (String, &str)> = BTreeMap::new();
    for (k, (label, bytes, code)) in content_cases().into_iter().enumerate() {
        let (name, _) = valid(k as u64 + 1);
        fs::write(inbox.join(&name), bytes).unwrap();
        expected.insert(name, (label.to_string(), code));
    }
    let (_, good_text) = valid(0);
    for (label, name, code) in name_cases() {
        let path = inbox.join(std::ffi::OsStr::from_bytes(&name));
        fs::write(&path, &good_text).unwrap();
        expected.insert(
            String::from_utf8_lossy(&name).into_owned(),
            (label.to_string(), code),
        );
    }
    // Hidden names (an ORD's own temporary files while it uploads) are left alone: not read, not recorded.
    for hidden in ["..\\..\\etc\\passwd", ".upload-in-progress.sgl"] {
        fs::write(inbox.join(hidden), &good_text).unwrap();
    }
    // Links on the remote: never followed, never read.
    let secret = root.join("secret.txt");
    fs::write(&secret, "not for the ORD").unwrap();
    for (i, (label, target)) in [
        ("link to a secret file", secret.clone()),
        (
            "link to /etc/passwd",
            Path::new("/etc/passwd").to_path_buf(),
        ),
        ("link to a folder", root.join("registry")),
        ("dangling link", root.join("nowhere")),
    ]
    .into_iter()
    .enumerate()
    {
        let (name, _) = valid(900 + i as u64);
        std::os::unix::fs::symlink(&target, inbox.join(&name)).unwrap();
        expected.insert(name, (label.to_string(), "E604"));
    }
    // Hostile mobility inputs: whole files rejected, or single CDRs rejected while the rest is used.
    let mobility = root.join("mobility");
    let deep = "[".repeat(100_000);
    let mut utf16 = vec![0xFF, 0xFE];
    for u in "[]".encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let bad_files: Vec<(&str, Vec<u8>)> = vec![
        ("not-json.json", b"{\"data\": [".to_vec()),
        ("number.json", b"42".to_vec()),
        ("deeply-nested.json", deep.into_bytes()),
        ("utf16.json", utf16),
        ("binary.json", noise(3000, 3)),
        ("readme.txt", b"hello".to_vec()),
        ("evil\nname.json", b"[]".to_vec()),
        ("latin1.csv", b"cpe,ceme,quarter_hour,kwh\n\xe9\n".to_vec()),
    ];
    for (name, bytes) in &bad_files {
        fs::write(mobility.join(name), bytes).unwrap();
    }
    let cpe = demo::ords()[0].cpes[0];
    let evse = demo::evse_id(&cpe, 0);
    let cdr = |id: &str, start: &str, end: &str, energy: &str| {
        format!(
            r#"{{"id":"{id}","last_updated":"2024-10-28T07:00:00Z","start_date_time":"{start}","end_date_time":"{end}",
               "cdr_token":{{"country_code":"PT","party_id":"GAL"}},"cdr_location":{{"evse_id":"{evse}"}},"total_energy":{energy}}}"#
        )
    };
    let records = [
        cdr(
            "H-GOOD",
            "2024-10-26T10:00:00Z",
            "2024-10-26T11:00:00Z",
            "5.5",
        ),
        cdr(
            "H-HUGE",
            "2024-10-26T10:00:00Z",
            "2024-10-26T11:00:00Z",
            "1e30",
        ),
        cdr(
            "H-40DIGITS",
            "2024-10-26T10:00:00Z",
            "2024-10-26T11:00:00Z",
            &"9".repeat(40),
        ),
        cdr(
            "H-BACKWARDS",
            "2024-10-26T11:00:00Z",
            "2024-10-26T10:00:00Z",
            "1",
        ),
        cdr(
            "H-TEXT",
            "2024-10-26T10:00:00Z",
            "2024-10-26T11:00:00Z",
            "\"abc\"",
        ),
        cdr(
            "H-NEGATIVE",
            "2024-10-26T10:00:00Z",
            "2024-10-26T11:00:00Z",
            "-4",
        ),
        cdr(
            "H-LONG",
            "2024-10-01T10:00:00Z",
            "2024-10-26T11:00:00Z",
            "1",
        ),
        cdr("H-BADTIME", "yesterday", "2024-10-26T11:00:00Z", "1"),
        r#"{"id":"../../etc/passwd"}"#.to_string(),
    ];
    fs::write(
        mobility.join("hostile-cdrs.json"),
        format!("[{}]", records.join(",")),
    )
    .unwrap();

    let (code, summary, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{summary}\n{err}");

    // Every hostile ORD file: recorded once as rejected with its code, an errors file quarantined.
    let store = Store::open(&root.join("state/egme-ord.sqlite")).unwrap();
    let rows = store.received_copies(&ord_name("e-redes")).unwrap();
    let mut handled = 0;
    for (name, (label, code)) in &expected {
        let found: Vec<_> = rows
            .iter()
            .filter(|r| &r.name == name || (code == &"E604" && r.name.ends_with(name.as_str())))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{label}: {name:?} recorded {} times",
            found.len()
        );
        let r = found[0];
        assert_eq!(r.status.as_str(), "rejected", "{label}: {name:?}");
        let codes: Vec<String> = serde_json::from_str::<serde_json::Value>(&r.diagnostics)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(
            codes.iter().any(|c| c == code),
            "{label}: expected {code}, got {codes:?}"
        );
        handled += 1;
    }
    assert!(
        rows.iter().all(|r| !r.name.starts_with('.')),
        "a hidden file was read"
    );
    let quarantine = root.join("work/quarantine/e-redes");
    let errors_files = fs::read_dir(&quarantine)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".errors.txt"))
        .count();
    assert_eq!(
        errors_files,
        expected.len(),
        "one errors file per rejected file"
    );
    // Nothing was followed out of the inbox: no copy of the secret anywhere in the work folder.
    for e in walk(&root.join("work")) {
        let bytes = fs::read(&e).unwrap_or_default();
        assert!(
            !bytes.windows(15).any(|w| w == b"not for the ORD"),
            "{} holds the link target's content",
            e.display()
        );
    }
    // The cycle went on: the demo's own files were received and sent.
    let ords = summary["ords"].as_array().unwrap();
    assert!(
        ords.iter()
            .all(|o| o["files_delivered"].as_u64().unwrap() > 0),
        "{summary}"
    );
    assert_eq!(summary["ords"][0]["received"]["applied"], 6, "{summary}");

    // Mobility: each bad file rejected and quarantined; the bad CDRs rejected, the good one used.
    let m = &summary["mobility"];
    assert_eq!(m["files_rejected"], bad_files.len(), "{m}");
    // The demo's own CDR at an unregistered EVSE; the reader's rejections are in the file's report.
    assert_eq!(m["records_rejected"], 1, "{m}");
    let report =
        fs::read_to_string(root.join("work/quarantine/mobility/hostile-cdrs.json.rejected.txt"))
            .unwrap();
    for id in [
        "H-HUGE",
        "H-40DIGITS",
        "H-BACKWARDS",
        "H-TEXT",
        "H-NEGATIVE",
        "H-LONG",
        "H-BADTIME",
        "../../etc/passwd",
    ] {
        assert!(
            report.contains(id),
            "{id} not in the rejection report:\n{report}"
        );
    }
    assert!(!report.contains("H-GOOD"), "{report}");
    let quarantined_mobility = fs::read_dir(root.join("work/quarantine/mobility"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".errors.txt"))
        .count();
    assert_eq!(quarantined_mobility, bad_files.len());
    handled += bad_files.len() + 8;
    eprintln!("hostile inputs tried and handled: {handled}");
    assert!(handled >= 50);

    // A second cycle records nothing twice and reports nothing new.
    let (code, summary, err) = once(&root, FIRST);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        store.received_copies(&ord_name("e-redes")).unwrap().len(),
        rows.len(),
        "{summary}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
