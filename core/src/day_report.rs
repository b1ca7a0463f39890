//! The day at a glance (pure): per ORD and CPE the ORD's total, the mobility as sent (by supplier and tariff) and the net per quarter-hour, as two tidy CSVs and one self-contained HTML page with SVG charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::{OffsetComponents, Tz};
use rust_decimal::Decimal;

use crate::calendar::DayCalendar;
use crate::cpe::Cpe;
use crate::filename::TariffCycle;
use crate::region::Region;
use crate::tou::{TouPeriod, TouTables};

/// The header of `quarter-hours.csv`.
pub const QUARTER_HOURS_HEADER: [&str; 7] = [
    "day",
    "ord",
    "cpe",
    "quarter_hour_start",
    "ord_kwh",
    "mobility_kwh",
    "net_kwh",
];

/// The header of `supplier-quarter-hours.csv`.
pub const SUPPLIER_HEADER: [&str; 8] = [
    "day",
    "ord",
    "cpe",
    "ceme",
    "tariff_cycle",
    "quarter_hour_start",
    "tou_period",
    "mobility_kwh",
];

/// The last file sent for one supplier and tariff of a CPE-day, as its values read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSeries {
    /// The CEME (`PT-GAL`), or the supplier's code when the registry no longer knows it.
    pub ceme: String,
    pub tariff: TariffCycle,
    pub transmission_id: u64,
    pub name: String,
    /// kWh per quarter-hour of the day.
    pub kwh: Vec<Decimal>,
}

/// One CPE of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpeDay {
    pub cpe: Cpe,
    /// The ORD's total per quarter-hour (kWh), when its file arrived.
    pub ord_kwh: Option<Vec<Decimal>>,
    pub ord_transmission: Option<u64>,
    pub sent: Vec<SentSeries>,
}

/// One ORD's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdDay {
    pub ord: String,
    pub region: Region,
    pub tz: Tz,
    pub day: NaiveDate,
    pub calendar: DayCalendar,
    /// Mobility above the total by more than this is an anomaly.
    pub tolerance_kwh: Decimal,
    /// CPEs the registry gives the ORD that day.
    pub registered: usize,
    /// Of those, the ones without an ORD file.
    pub missing: Vec<Cpe>,
    pub cpes: Vec<CpeDay>,
}

fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

impl CpeDay {
    /// The mobility per quarter-hour: every supplier's file added up.
    pub fn mobility(&self, n: usize) -> Vec<Decimal> {
        let mut out = vec![Decimal::ZERO; n];
        for s in &self.sent {
            for (o, v) in out.iter_mut().zip(&s.kwh) {
                *o += *v;
            }
        }
        out
    }

    /// The quarter-hours where mobility is above the ORD's total by more than `tolerance`.
    pub fn anomalies(&self, n: usize, tolerance: Decimal) -> Vec<usize> {
        let Some(ord) = &self.ord_kwh else {
            return Vec::new();
        };
        self.mobility(n)
            .iter()
            .zip(ord)
            .enumerate()
            .filter(|(_, (m, o))| **m > **o + tolerance)
            .map(|(i, _)| i)
            .collect()
    }
}

impl OrdDay {
    fn start_text(&self, start: DateTime<Utc>) -> String {
        start.with_timezone(&self.tz).to_rfc3339()
    }

    /// Whether legal summer time is in force at `start` in the ORD's zone.
    fn summer(&self, start: DateTime<Utc>) -> bool {
        !self
            .tz
            .offset_from_utc_datetime(&start.naive_utc())
            .dst_offset()
            .is_zero()
    }

    fn period(
        &self,
        tou: &TouTables,
        tariff: TariffCycle,
        start: DateTime<Utc>,
    ) -> Option<TouPeriod> {
        let local = start.with_timezone(&self.tz).naive_local();
        tou.period(self.region, tariff, local, self.summer(start))
    }
}

/// `quarter-hours.csv`: one row per CPE and quarter-hour.
pub fn quarter_hours_csv(days: &[OrdDay]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(QUARTER_HOURS_HEADER)?;
    for d in days {
        let n = d.calendar.len();
        let day = d.day.to_string();
        for c in &d.cpes {
            let mobility = c.mobility(n);
            let cpe = c.cpe.to_string();
            for (i, q) in d.calendar.quarter_hours.iter().enumerate() {
                let ord = c.ord_kwh.as_ref().and_then(|o| o.get(i)).copied();
                w.write_record([
                    day.as_str(),
                    d.ord.as_str(),
                    cpe.as_str(),
                    &d.start_text(q.start),
                    &ord.map(text).unwrap_or_default(),
                    &text(mobility[i]),
                    &ord.map(|o| text(o - mobility[i])).unwrap_or_default(),
                ])?;
            }
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `supplier-quarter-hours.csv`: one row per CPE, supplier, tariff and quarter-hour with
/// mobility; `tou_period` empty where no table covers the region and day.
pub fn supplier_quarter_hours_csv(days: &[OrdDay], tou: &TouTables) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(SUPPLIER_HEADER)?;
    for d in days {
        let day = d.day.to_string();
        for c in &d.cpes {
            let cpe = c.cpe.to_string();
            for s in &c.sent {
                for (q, kwh) in d.calendar.quarter_hours.iter().zip(&s.kwh) {
                    if kwh.is_zero() {
                        continue;
                    }
                    let period = d.period(tou, s.tariff, q.start);
                    w.write_record([
                        day.as_str(),
                        d.ord.as_str(),
                        cpe.as_str(),
                        s.ceme.as_str(),
                        s.tariff.code(),
                        &d.start_text(q.start),
                        period.map_or("", TouPeriod::as_str),
                        &text(*kwh),
                    ])?;
                }
            }
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// kWh per supplier (`CEME tariff`) and period, for one CPE.
pub fn tou_breakdown(
    d: &OrdDay,
    c: &CpeDay,
    tou: &TouTables,
) -> BTreeMap<(String, String), BTreeMap<String, Decimal>> {
    let mut out: BTreeMap<(String, String), BTreeMap<String, Decimal>> = BTreeMap::new();
    for s in &c.sent {
        let row = out
            .entry((s.ceme.clone(), s.tariff.code().to_string()))
            .or_default();
        for (q, kwh) in d.calendar.quarter_hours.iter().zip(&s.kwh) {
            let period = d
                .period(tou, s.tariff, q.start)
                .map_or("(no table)".to_string(), |p| p.as_str().to_string());
            *row.entry(period).or_default() += *kwh;
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2",
];
const W: i64 = 720;
const H: i64 = 200;
const PAD: i64 = 30;

/// The supplier files of a CPE-day that carry energy, in the order of their colours.
fn visible(c: &CpeDay) -> Vec<&SentSeries> {
    c.sent
        .iter()
        .filter(|s| s.kwh.iter().any(|v| !v.is_zero()))
        .collect()
}

/// A coordinate with one decimal.
fn coord(v: Decimal) -> String {
    v.round_dp(1).normalize().to_string()
}

/// The SVG chart of one CPE-day: the ORD's total (black line), the mobility stacked by supplier
/// (areas), the net (dashed line), anomalies marked (red dots), hours along the bottom.
pub fn chart_svg(d: &OrdDay, c: &CpeDay) -> String {
    let n = d.calendar.len().max(1);
    let mobility = c.mobility(n);
    let top = c
        .ord_kwh
        .iter()
        .flatten()
        .chain(&mobility)
        .copied()
        .max()
        .unwrap_or(Decimal::ZERO)
        .max(Decimal::new(1, 3));
    let (w, h, pad) = (Decimal::from(W), Decimal::from(H), Decimal::from(PAD));
    let x = |i: usize| pad + (w - pad * Decimal::TWO) * Decimal::from(i) / Decimal::from(n);
    let y = |v: Decimal| h - pad - (h - pad * Decimal::TWO) * v.max(Decimal::ZERO) / top;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"CPE {} on {}\">",
        c.cpe, d.day
    );
    let _ = write!(
        svg,
        "<rect x=\"{PAD}\" y=\"{PAD}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
        W - 2 * PAD,
        H - 2 * PAD
    );
    // Stacked areas, one per supplier file.
    let mut base = vec![Decimal::ZERO; n];
    for (k, s) in visible(c).into_iter().enumerate() {
        let upper: Vec<Decimal> = base
            .iter()
            .zip(s.kwh.iter().chain(std::iter::repeat(&Decimal::ZERO)))
            .map(|(b, v)| *b + *v)
            .collect();
        let mut points = Vec::new();
        for (i, v) in upper.iter().enumerate() {
            points.push(format!("{},{}", coord(x(i)), coord(y(*v))));
            points.push(format!("{},{}", coord(x(i + 1)), coord(y(*v))));
        }
        for (i, v) in base.iter().enumerate().rev() {
            points.push(format!("{},{}", coord(x(i + 1)), coord(y(*v))));
            points.push(format!("{},{}", coord(x(i)), coord(y(*v))));
        }
        let _ = write!(
            svg,
            "<polygon class=\"mobility\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.8\"><title>{} {}</title></polygon>",
            points.join(" "),
            COLOURS[k % COLOURS.len()],
            escape(&s.ceme),
            s.tariff.code()
        );
        base = upper;
    }
    let line = |values: &[Decimal]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{},{} {},{}",
                    coord(x(i)),
                    coord(y(*v)),
                    coord(x(i + 1)),
                    coord(y(*v))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    if let Some(ord) = &c.ord_kwh {
        let _ = write!(
            svg,
            "<polyline class=\"ord-total\" points=\"{}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\"/>",
            line(ord)
        );
        let net: Vec<Decimal> = ord.iter().zip(&mobility).map(|(o, m)| *o - *m).collect();
        let _ = write!(
            svg,
            "<polyline class=\"net\" points=\"{}\" fill=\"none\" stroke=\"#2a9d8f\" stroke-width=\"1\" stroke-dasharray=\"4 2\"/>",
            line(&net)
        );
        for i in c.anomalies(n, d.tolerance_kwh) {
            let _ = write!(
                svg,
                "<circle class=\"anomaly\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"#d62728\"><title>mobility {} kWh above the ORD's {} kWh at {}</title></circle>",
                coord((x(i) + x(i + 1)) / Decimal::TWO),
                coord(y(mobility[i])),
                text(mobility[i]),
                text(ord[i]),
                d.calendar.quarter_hours.get(i).map(|q| q.label.to_string()).unwrap_or_default()
            );
        }
    }
    // Hours: a tick at every label ending a whole hour, named every six hours.
    for (i, q) in d.calendar.quarter_hours.iter().enumerate() {
        let end = q.label.end_minutes();
        if end % 360 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{:02}:00</text>",
                coord(x(i + 1)),
                H - 12,
                end / 60
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{PAD}\" y=\"{}\" font-size=\"10\">{} kWh</text></svg>",
        PAD - 8,
        text(top)
    );
    svg
}

/// The day's page: self-contained (inline CSS and SVG, no script, nothing from the network).
pub fn html(days: &[OrdDay], tou: &TouTables, generated: DateTime<Utc>) -> String {
    let title = days
        .first()
        .map_or("egme-ord".to_string(), |d| format!("egme-ord — {}", d.day));
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>\n<h1>{}</h1><p class=\"meta\">Generated {} from the ledger: the ORD's totals, the mobility as sent, the net.</p>\n",
        escape(&title),
        STYLE,
        escape(&title),
        generated.format("%Y-%m-%d %H:%M:%SZ")
    );
    for d in days {
        out.push_str(&ord_section(d, tou));
    }
    out.push_str("</body></html>\n");
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}h2{border-bottom:2px solid #444}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}.meta{color:#666}.missing{color:#d62728}.cpe{page-break-inside:avoid;margin-bottom:1.5em}@media print{body{margin:0}}";

fn ord_section(d: &OrdDay, tou: &TouTables) -> String {
    let n = d.calendar.len();
    let mut ord_total = Decimal::ZERO;
    let mut mobility_total = Decimal::ZERO;
    let mut net_total = Decimal::ZERO;
    let mut anomalies = 0;
    let mut ids: Vec<u64> = Vec::new();
    for c in &d.cpes {
        let m: Decimal = c.mobility(n).iter().copied().sum();
        mobility_total += m;
        if let Some(o) = &c.ord_kwh {
            let o: Decimal = o.iter().copied().sum();
            ord_total += o;
            net_total += o - m;
        }
        anomalies += c.anomalies(n, d.tolerance_kwh).len();
        ids.extend(c.sent.iter().map(|s| s.transmission_id));
    }
    ids.sort_unstable();
    let files = ids.len();
    let id_text = match (ids.first(), ids.last()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}–{b}"),
        _ => "none".to_string(),
    };
    let mut s = format!(
        "<section class=\"ord\"><h2>{} — {} ({} quarter-hours)</h2>\n<table class=\"totals\"><tr><th class=\"l\">CPEs registered</th><th>with an ORD file</th><th>ORD kWh</th><th>mobility kWh</th><th>net kWh</th><th>files sent</th><th>their ids</th><th>anomalies</th></tr><tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{files}</td><td>{id_text}</td><td>{anomalies}</td></tr></table>\n",
        escape(&d.ord),
        d.day,
        n,
        d.registered,
        d.cpes.iter().filter(|c| c.ord_kwh.is_some()).count(),
        text(ord_total),
        text(mobility_total),
        text(net_total),
    );
    if !d.missing.is_empty() {
        let list: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "<p class=\"missing\">No ORD file for {} CPE(s): {}</p>",
            d.missing.len(),
            list.join(", ")
        );
    }
    let table_name = tou
        .table_name(d.region, d.day)
        .unwrap_or("no table configured for this region");
    for c in &d.cpes {
        let _ = write!(
            s,
            "<div class=\"cpe\"><h3>{}</h3><p class=\"meta\">ORD transmission {}; black: the ORD's total, areas: the mobility sent per supplier, dashed: the net, red: mobility above the total.</p>{}",
            c.cpe,
            c.ord_transmission.map_or("none (no ORD file)".to_string(), |t| t.to_string()),
            chart_svg(d, c)
        );
        let legend: Vec<String> = visible(c)
            .into_iter()
            .enumerate()
            .map(|(k, s)| {
                format!(
                    "<span style=\"color:{}\">■</span> {} {}",
                    COLOURS[k % COLOURS.len()],
                    escape(&s.ceme),
                    s.tariff.code()
                )
            })
            .collect();
        if !legend.is_empty() {
            let _ = write!(s, "<p class=\"legend\">{}</p>", legend.join(" &nbsp; "));
        }
        let mut breakdown = tou_breakdown(d, c, tou);
        // Files of a supplier and tariff that carry nothing (the all-four zeros) are left out.
        breakdown.retain(|_, row| row.values().any(|v| !v.is_zero()));
        if !breakdown.is_empty() {
            let periods = ["ponta", "cheias", "vazio", "fora_vazio", "(no table)"];
            let used: Vec<&str> = periods
                .iter()
                .copied()
                .filter(|p| breakdown.values().any(|row| row.contains_key(*p)))
                .collect();
            let _ = write!(
                s,
                "<table class=\"tou\"><tr><th class=\"l\">supplier</th><th>tariff cycle</th>"
            );
            for p in &used {
                let _ = write!(s, "<th>{p} kWh</th>");
            }
            s.push_str("</tr>");
            for ((ceme, tariff), row) in &breakdown {
                let _ = write!(
                    s,
                    "<tr><td class=\"l\">{}</td><td>{tariff}</td>",
                    escape(ceme)
                );
                for p in &used {
                    let _ = write!(
                        s,
                        "<td>{}</td>",
                        row.get(*p).map_or("–".to_string(), |v| text(*v))
                    );
                }
                s.push_str("</tr>");
            }
            let _ = write!(
                s,
                "</table><p class=\"meta\">Periods: {}.</p>",
                escape(table_name)
            );
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::LabelConvention;

    fn day() -> OrdDay {
        let tz = Region::Continent.time_zone();
        let d = NaiveDate::from_ymd_opt(2024, 11, 5).unwrap();
        let calendar = DayCalendar::new(tz, d, LabelConvention::Local);
        let mut gal = vec![Decimal::ZERO; 96];
        gal[76] = Decimal::new(25, 1); // 19:00-19:15, ponta in the daily tri-horário
        gal[92] = Decimal::new(1, 0); // 23:00-23:15, vazio
        let mut ord = vec![Decimal::new(2, 0); 96];
        ord[92] = Decimal::new(5, 1);
        OrdDay {
            ord: "e-redes".into(),
            region: Region::Continent,
            tz,
            day: d,
            calendar,
            tolerance_kwh: Decimal::new(1, 3),
            registered: 2,
            missing: vec![Cpe::from_parts(2, 555_000_222).unwrap()],
            cpes: vec![CpeDay {
                cpe: Cpe::from_parts(2, 555_000_111).unwrap(),
                ord_kwh: Some(ord),
                ord_transmission: Some(7),
                sent: vec![SentSeries {
                    ceme: "PT-GAL".into(),
                    tariff: TariffCycle::TriHourlyDaily,
                    transmission_id: 41,
                    name: "000202PE…".into(),
                    kwh: gal,
                }],
            }],
        }
    }

    #[test]
    fn the_csvs_have_their_headers_one_row_per_quarter_hour_and_the_sent_values() {
        let d = day();
        let q = String::from_utf8(quarter_hours_csv(std::slice::from_ref(&d)).unwrap()).unwrap();
        let lines: Vec<&str> = q.lines().collect();
        assert_eq!(
            lines[0],
            "day,ord,cpe,quarter_hour_start,ord_kwh,mobility_kwh,net_kwh"
        );
        assert_eq!(lines.len(), 1 + 96);
        assert_eq!(
            lines[77],
            format!(
                "2024-11-05,e-redes,{},2024-11-05T19:00:00+00:00,2,2.5,-0.5",
                d.cpes[0].cpe
            )
        );
        let s = String::from_utf8(
            supplier_quarter_hours_csv(std::slice::from_ref(&d), &TouTables::erse_mainland())
                .unwrap(),
        )
        .unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "day,ord,cpe,ceme,tariff_cycle,quarter_hour_start,tou_period,mobility_kwh"
        );
        assert_eq!(lines.len(), 3, "{s}");
        assert!(
            lines[1].ends_with("PT-GAL,02,2024-11-05T19:00:00+00:00,ponta,2.5"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with("PT-GAL,02,2024-11-05T23:00:00+00:00,vazio,1"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn the_page_is_self_contained_with_a_chart_per_cpe_anomalies_marked_and_the_tou_table() {
        let generated = Utc.with_ymd_and_hms(2024, 11, 6, 20, 0, 0).unwrap();
        let page = html(&[day()], &TouTables::erse_mainland(), generated);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script") && !page.contains("https://"));
        assert_eq!(
            page.matches("http://").count(),
            page.matches("http://www.w3.org/2000/svg").count()
        );
        assert_eq!(page.matches("<svg").count(), 1);
        assert_eq!(
            page.matches("class=\"anomaly\"").count(),
            2,
            "19:00 and 23:00 exceed the total"
        );
        assert!(page.contains("<th>ponta kWh</th>") && page.contains("<td>2.5</td>"));
        assert!(page.contains("No ORD file for 1 CPE(s)"));
    }
}
