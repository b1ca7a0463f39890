//! `egme-ord report` and the day folder the send writes: the demo's 27 October (the autumn DST
//! day, 100 quarter-hours) as a page and two tidy CSVs whose mobility equals what was sent; the
//! page opened in a real headless Chromium.

use crate::pipeline::{once, received, workspace};
use crate::support::bin;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use egme_ord_core::demo;
use rust_decimal::Decimal;

const FIRST: &str = "2024-10-28T21:30:00Z";
const DAY: &str = "2024-10-27";

fn report(root: &Path, out: &Path) -> String {
    let o = bin()
        .args(["report", "--day", DAY, "--out"])
        .arg(out)
        .arg("--config")
        .arg(root.join("egme-ord.toml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{text}");
    text
}

/// The rows of a CSV written without quoting (no field has a comma), by header name.
fn rows(path: &Path) -> (String, Vec<BTreeMap<String, String>>) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let names: Vec<String> = header.split(',').map(str::to_string).collect();
    let rows = lines
        .map(|l| {
            names
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect();
    (header, rows)
}

fn kwh(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("not a decimal: {s:?}"))
}

#[test]
fn the_report_of_the_100_quarter_hour_day_has_its_files_and_the_csv_mobility_equals_what_was_sent()
{
    let ws = workspace();
    // The reports are for the analysts' group (here root's, gid 0: the test runs as root).
    let config = ws.path().join("egme-ord.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replace("[reports]\n", "[reports]\ngroup = \"0\"\n"),
    )
    .unwrap();
    once(ws.path(), FIRST);
    let out = ws.path().join("report-out");
    let printed = report(ws.path(), &out);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o750);
    assert_eq!(mode(&out.join("index.html")), 0o640);
    for f in [
        "index.html",
        "quarter-hours.csv",
        "supplier-quarter-hours.csv",
    ] {
        assert!(out.join(f).is_file(), "{f}: {printed}");
    }
    let (header, qh) = rows(&out.join("quarter-hours.csv"));
    assert_eq!(
        header,
        "day,ord,cpe,quarter_hour_start,ord_kwh,mobility_kwh,net_kwh"
    );
    let (sheader, sq) = rows(&out.join("supplier-quarter-hours.csv"));
    assert_eq!(
        sheader,
        "day,ord,cpe,ceme,tariff_cycle,quarter_hour_start,tou_period,mobility_kwh"
    );
    for o in demo::ords() {
        // Every CPE of the ORD has the day's 100 quarter-hours, labelled with the local offset.
        let mine: Vec<_> = qh.iter().filter(|r| r["ord"] == o.name).collect();
        assert_eq!(mine.len(), 100 * o.cpes.len(), "{}", o.name);
        assert!(mine.iter().all(|r| r["day"] == DAY));
        let starts: Vec<&str> = mine
            .iter()
            .take(100)
            .map(|r| r["quarter_hour_start"].as_str())
            .collect();
        assert!(
            starts.contains(&"2024-10-27T01:00:00+01:00")
                || starts.contains(&"2024-10-27T00:00:00-01:00"),
            "{starts:?}"
        );
        // The mobility in both CSVs is exactly what the ORD received for the day.
        let sent: Decimal = received(ws.path(), o.name)
            .iter()
            .filter(|f| f.4 == DAY)
            .map(|f| f.5)
            .sum();
        let in_qh: Decimal = mine.iter().map(|r| kwh(&r["mobility_kwh"])).sum();
        let in_sq: Decimal = sq
            .iter()
            .filter(|r| r["ord"] == o.name)
            .map(|r| kwh(&r["mobility_kwh"]))
            .sum();
        assert!(sent > Decimal::ZERO, "{}", o.name);
        assert_eq!(in_qh, sent, "{}: quarter-hours.csv", o.name);
        assert_eq!(in_sq, sent, "{}: supplier-quarter-hours.csv", o.name);
        // net = ORD - mobility where the ORD's total is known.
        for r in &mine {
            if !r["ord_kwh"].is_empty() {
                assert_eq!(
                    kwh(&r["net_kwh"]),
                    kwh(&r["ord_kwh"]) - kwh(&r["mobility_kwh"])
                );
            }
        }
    }
    // Mainland rows carry ERSE's periods; the islands have no shipped table.
    let periods: Vec<&str> = sq
        .iter()
        .filter(|r| r["ord"] == "e-redes")
        .map(|r| r["tou_period"].as_str())
        .collect();
    assert!(
        periods
            .iter()
            .all(|p| ["ponta", "cheias", "vazio", "fora_vazio"].contains(p)),
        "{periods:?}"
    );
    assert!(sq
        .iter()
        .filter(|r| r["ord"] == "eda")
        .all(|r| r["tou_period"].is_empty()));
    let page = fs::read_to_string(out.join("index.html")).unwrap();
    let cpes: usize = demo::ords().iter().map(|o| o.cpes.len()).sum();
    assert_eq!(page.matches("<svg").count(), cpes, "a chart per CPE");
    assert!(page.contains("(100 quarter-hours)"));
    assert!(!page.contains("<script"));
    // The send wrote the day's folder too.
    let day_folder = ws.path().join("work/reports/e-redes").join(DAY);
    for f in [
        "index.html",
        "quarter-hours.csv",
        "supplier-quarter-hours.csv",
    ] {
        assert!(
            day_folder.join(f).is_file(),
            "{f} in {}",
            day_folder.display()
        );
        assert_eq!(mode(&day_folder.join(f)), 0o640, "{f}");
    }
    for dir in [
        ws.path().join("work/reports"),
        ws.path().join("work/reports/e-redes"),
        day_folder.clone(),
    ] {
        assert_eq!(mode(&dir), 0o750, "{}", dir.display());
    }
}

fn chromium() -> PathBuf {
    let p = PathBuf::from("/usr/bin/chromium");
    assert!(
        p.exists(),
        "this test needs Debian's chromium: apt-get install -y chromium (scripts/test does it)"
    );
    p
}

#[test]
fn the_page_renders_in_a_headless_browser_without_errors() {
    let ws = workspace();
    once(ws.path(), FIRST);
    let out = ws.path().join("report-out");
    report(ws.path(), &out);
    let page = out.join("index.html");
    let profile = tempfile::tempdir().unwrap();
    let shot = ws.path().join("page.png");
    let browser = |extra: &[&str]| {
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let dom = browser(&["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "{log}");
    assert!(
        html.matches("<svg").count() >= 6,
        "the rendered DOM has the charts: {html}"
    );
    assert!(
        !log.contains("Uncaught") && !log.contains(":ERROR:CONSOLE"),
        "the page logged errors: {log}"
    );
    let o = browser(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1000,1800",
        "--hide-scrollbars",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("EGME_ORD_KEEP_SCREENSHOT") {
        fs::copy(&shot, keep).unwrap();
    }
}
