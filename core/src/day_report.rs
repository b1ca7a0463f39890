//! The day at a glance (pure): per ORD and CPE the ORD's total, the mobility as sent (by supplier and tariff) and the net per quarter-hour, as two tidy CSVs and one self-contained HTML page with SVG charts.

use crate::ord_name::OrdName;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

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

/// One ORD's day: what holds for all its CPEs, which come one at a time (a national day has
/// 10,000 of them: the page and the CSVs are written CPE by CPE, never the whole day in memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdDay {
    pub ord: OrdName,
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

/// The rows of one CPE-day in `quarter-hours.csv` (after [`QUARTER_HOURS_HEADER`]): one per
/// quarter-hour.
pub fn quarter_hour_rows<W: io::Write>(
    w: &mut csv::Writer<W>,
    d: &OrdDay,
    c: &CpeDay,
) -> Result<(), csv::Error> {
    let n = d.calendar.len();
    let day = d.day.to_string();
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
    Ok(())
}

/// The rows of one CPE-day in `supplier-quarter-hours.csv` (after [`SUPPLIER_HEADER`]): one per
/// supplier, tariff and quarter-hour with mobility; `tou_period` empty where no table covers the
/// region and day.
pub fn supplier_rows<W: io::Write>(
    w: &mut csv::Writer<W>,
    d: &OrdDay,
    c: &CpeDay,
    tou: &TouTables,
) -> Result<(), csv::Error> {
    let day = d.day.to_string();
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
    Ok(())
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

/// Appends formatted text to a page or chart being built (writing to a `String` cannot fail).
fn put(out: &mut String, args: std::fmt::Arguments<'_>) {
    // fmt::Write for String never returns an error.
    let _ = out.write_fmt(args);
}

/// A chart's frame: `n` quarter-hours along, kWh up to `top`, mapped to SVG coordinates.
struct Frame {
    n: usize,
    top: Decimal,
}

impl Frame {
    fn x(&self, i: usize) -> Decimal {
        let (w, pad) = (Decimal::from(W), Decimal::from(PAD));
        pad + (w - pad * Decimal::TWO) * Decimal::from(i) / Decimal::from(self.n)
    }

    fn y(&self, v: Decimal) -> Decimal {
        let (h, pad) = (Decimal::from(H), Decimal::from(PAD));
        h - pad - (h - pad * Decimal::TWO) * v.max(Decimal::ZERO) / self.top
    }

    /// A step line through `values`, one flat step per quarter-hour.
    fn line(&self, values: &[Decimal]) -> String {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{},{} {},{}",
                    coord(self.x(i)),
                    coord(self.y(*v)),
                    coord(self.x(i + 1)),
                    coord(self.y(*v))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
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
    let frame = Frame { n, top };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"CPE {} on {}\">",
        c.cpe, d.day
    );
    put(
        &mut svg,
        format_args!(
            "<rect x=\"{PAD}\" y=\"{PAD}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
            W - 2 * PAD,
            H - 2 * PAD
        ),
    );
    stacked_areas(&mut svg, &frame, c);
    if let Some(ord) = &c.ord_kwh {
        ord_and_net(&mut svg, &frame, d, c, ord, &mobility);
    }
    hour_ticks(&mut svg, &frame, d);
    put(
        &mut svg,
        format_args!(
            "<text x=\"{PAD}\" y=\"{}\" font-size=\"10\">{} kWh</text></svg>",
            PAD - 8,
            text(top)
        ),
    );
    svg
}

/// The mobility as stacked areas, one per supplier file.
fn stacked_areas(svg: &mut String, frame: &Frame, c: &CpeDay) {
    let (x, y) = (|i| frame.x(i), |v| frame.y(v));
    let mut base = vec![Decimal::ZERO; frame.n];
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
        put(
            svg,
            format_args!(
                "<polygon class=\"mobility\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.8\"><title>{} {}</title></polygon>",
                points.join(" "),
                COLOURS[k % COLOURS.len()],
                escape(&s.ceme),
                s.tariff.code()
            ),
        );
        base = upper;
    }
}

/// The ORD's total, the net, and the anomalies marked.
fn ord_and_net(
    svg: &mut String,
    frame: &Frame,
    d: &OrdDay,
    c: &CpeDay,
    ord: &[Decimal],
    mobility: &[Decimal],
) {
    put(
        svg,
        format_args!(
            "<polyline class=\"ord-total\" points=\"{}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\"/>",
            frame.line(ord)
        ),
    );
    let net: Vec<Decimal> = ord.iter().zip(mobility).map(|(o, m)| *o - *m).collect();
    put(
        svg,
        format_args!(
            "<polyline class=\"net\" points=\"{}\" fill=\"none\" stroke=\"#2a9d8f\" stroke-width=\"1\" stroke-dasharray=\"4 2\"/>",
            frame.line(&net)
        ),
    );
    for i in c.anomalies(frame.n, d.tolerance_kwh) {
        put(
            svg,
            format_args!(
                "<circle class=\"anomaly\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"#d62728\"><title>mobility {} kWh above the ORD's {} kWh at {}</title></circle>",
                coord((frame.x(i) + frame.x(i + 1)) / Decimal::TWO),
                coord(frame.y(mobility[i])),
                text(mobility[i]),
                text(ord[i]),
                d.calendar.quarter_hours.get(i).map(|q| q.label.to_string()).unwrap_or_default()
            ),
        );
    }
}

/// Hours: a tick at every label ending a whole hour, named every six hours.
fn hour_ticks(svg: &mut String, frame: &Frame, d: &OrdDay) {
    for (i, q) in d.calendar.quarter_hours.iter().enumerate() {
        let end = q.label.end_minutes();
        if end % 360 == 0 {
            put(
                svg,
                format_args!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{:02}:00</text>",
                    coord(frame.x(i + 1)),
                    H - 12,
                    end / 60
                ),
            );
        }
    }
}

/// How many CPE charts one ORD's section of the page draws: the CPEs with anomalies first, then
/// the others in CPE order. Every CPE has a row in the section's table and its quarter-hours in
/// the CSVs; a chart for each of a national day's 10,000 CPEs made a 135 MB page that no browser
/// opens and the daily send held in memory (docs/DECISIONS.md: reports for people).
pub const PAGE_CHARTS: usize = 200;

/// One ORD's section of the day's page, built CPE by CPE ([`OrdSection::add`]): the totals, a
/// table row per CPE, and up to [`PAGE_CHARTS`] charts.
#[derive(Debug, Clone)]
pub struct OrdSection {
    day: OrdDay,
    ord_total: Decimal,
    mobility_total: Decimal,
    net_total: Decimal,
    anomalies: usize,
    files: usize,
    ids: Option<(u64, u64)>,
    cpes: usize,
    with_file: usize,
    rows: String,
    /// Charts of CPEs with anomalies, then of the others (each at most [`PAGE_CHARTS`]).
    flagged: Vec<String>,
    others: Vec<String>,
}

impl OrdSection {
    pub fn new(day: OrdDay) -> Self {
        OrdSection {
            day,
            ord_total: Decimal::ZERO,
            mobility_total: Decimal::ZERO,
            net_total: Decimal::ZERO,
            anomalies: 0,
            files: 0,
            ids: None,
            cpes: 0,
            with_file: 0,
            rows: String::new(),
            flagged: Vec::new(),
            others: Vec::new(),
        }
    }

    /// Adds one CPE-day: its totals, its row, and its chart while there is room.
    pub fn add(&mut self, c: &CpeDay, tou: &TouTables) {
        let n = self.day.calendar.len();
        let mobility: Decimal = c.mobility(n).iter().copied().sum();
        let ord: Option<Decimal> = c.ord_kwh.as_ref().map(|o| o.iter().copied().sum());
        let anomalies = c.anomalies(n, self.day.tolerance_kwh).len();
        self.cpes += 1;
        self.mobility_total += mobility;
        if let Some(o) = ord {
            self.with_file += 1;
            self.ord_total += o;
            self.net_total += o - mobility;
        }
        self.anomalies += anomalies;
        self.files += c.sent.len();
        for id in c.sent.iter().map(|s| s.transmission_id) {
            self.ids = Some(self.ids.map_or((id, id), |(a, b)| (a.min(id), b.max(id))));
        }
        put(&mut self.rows, format_args!(
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{anomalies}</td></tr>",
            c.cpe,
            c.ord_transmission.map_or("–".to_string(), |t| t.to_string()),
            ord.map_or("–".to_string(), text),
            text(mobility),
            ord.map_or("–".to_string(), |o| text(o - mobility)),
            c.sent.len(),
        ));
        let charts = if anomalies > 0 {
            &mut self.flagged
        } else {
            &mut self.others
        };
        if charts.len() < PAGE_CHARTS {
            charts.push(cpe_div(&self.day, c, tou));
        }
    }

    fn html(&self) -> String {
        let d = &self.day;
        let id_text = match self.ids {
            Some((a, b)) if a == b => a.to_string(),
            Some((a, b)) => format!("{a}–{b}"),
            None => "none".to_string(),
        };
        let mut s = format!(
            "<section class=\"ord\"><h2>{} — {} ({} quarter-hours)</h2>\n<table class=\"totals\"><tr><th class=\"l\">CPEs registered</th><th>with an ORD file</th><th>ORD kWh</th><th>mobility kWh</th><th>net kWh</th><th>files sent</th><th>their ids</th><th>anomalies</th></tr><tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{id_text}</td><td>{}</td></tr></table>\n",
            escape(d.ord.as_str()),
            d.day,
            d.calendar.len(),
            d.registered,
            self.with_file,
            text(self.ord_total),
            text(self.mobility_total),
            text(self.net_total),
            self.files,
            self.anomalies,
        );
        if !d.missing.is_empty() {
            let list: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
            put(
                &mut s,
                format_args!(
                    "<p class=\"missing\">No ORD file for {} CPE(s): {}</p>\n",
                    d.missing.len(),
                    list.join(", ")
                ),
            );
        }
        put(&mut s, format_args!(
            "<details class=\"cpes\"><summary>Every CPE of the day ({})</summary><table class=\"cpes\"><tr><th class=\"l\">CPE</th><th>ORD transmission</th><th>ORD kWh</th><th>mobility kWh</th><th>net kWh</th><th>files sent</th><th>anomalies</th></tr>{}</table></details>\n",
            self.cpes, self.rows
        ));
        let flagged = self.flagged.len().min(PAGE_CHARTS);
        let shown = flagged + self.others.len().min(PAGE_CHARTS - flagged);
        if shown < self.cpes {
            put(&mut s, format_args!(
                "<p class=\"meta\">Charts for {shown} of the {} CPEs, those with anomalies first; every CPE is in the table above and in quarter-hours.csv.</p>\n",
                self.cpes
            ));
        }
        for chart in self.flagged.iter().chain(&self.others).take(shown) {
            s.push_str(chart);
        }
        s.push_str("</section>\n");
        s
    }
}

/// The day's page: self-contained (inline CSS and SVG, no script, nothing from the network).
pub fn html(sections: &[OrdSection], generated: DateTime<Utc>) -> String {
    let title = sections.first().map_or("egme-ord".to_string(), |s| {
        format!("egme-ord — {}", s.day.day)
    });
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>\n<h1>{}</h1><p class=\"meta\">Generated {} from the ledger: the ORD's totals, the mobility as sent, the net.</p>\n",
        escape(&title),
        STYLE,
        escape(&title),
        generated.format("%Y-%m-%d %H:%M:%SZ")
    );
    for section in sections {
        out.push_str(&section.html());
    }
    out.push_str("</body></html>\n");
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}h2{border-bottom:2px solid #444}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}.meta{color:#666}.missing{color:#d62728}.cpe{page-break-inside:avoid;margin-bottom:1.5em}@media print{body{margin:0}}";

/// One CPE's part of the page: its chart, legend and time-of-use table.
fn cpe_div(d: &OrdDay, c: &CpeDay, tou: &TouTables) -> String {
    let table_name = tou
        .table_name(d.region, d.day)
        .unwrap_or("no table configured for this region");
    let mut s = format!(
        "<div class=\"cpe\" id=\"cpe-{}\"><h3>{}</h3><p class=\"meta\">ORD transmission {}; black: the ORD's total, areas: the mobility sent per supplier, dashed: the net, red: mobility above the total.</p>{}",
        c.cpe,
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
        put(
            &mut s,
            format_args!("<p class=\"legend\">{}</p>", legend.join(" &nbsp; ")),
        );
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
        put(
            &mut s,
            format_args!(
                "<table class=\"tou\"><tr><th class=\"l\">supplier</th><th>tariff cycle</th>"
            ),
        );
        for p in &used {
            put(&mut s, format_args!("<th>{p} kWh</th>"));
        }
        s.push_str("</tr>");
        for ((ceme, tariff), row) in &breakdown {
            put(
                &mut s,
                format_args!("<tr><td class=\"l\">{}</td><td>{tariff}</td>", escape(ceme)),
            );
            for p in &used {
                put(
                    &mut s,
                    format_args!(
                        "<td>{}</td>",
                        row.get(*p).map_or("–".to_string(), |v| text(*v))
                    ),
                );
            }
            s.push_str("</tr>");
        }
        put(
            &mut s,
            format_args!(
                "</table><p class=\"meta\">Periods: {}.</p>",
                escape(table_name)
            ),
        );
    }
    s.push_str("</div>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::LabelConvention;

    fn day() -> (OrdDay, CpeDay) {
        let tz = Region::Continent.time_zone();
        let d = NaiveDate::from_ymd_opt(2024, 11, 5).unwrap();
        let calendar = DayCalendar::new(tz, d, LabelConvention::Local);
        let mut gal = vec![Decimal::ZERO; 96];
        gal[76] = Decimal::new(25, 1); // 19:00-19:15, ponta in the daily tri-horário
        gal[92] = Decimal::new(1, 0); // 23:00-23:15, vazio
        let mut ord = vec![Decimal::new(2, 0); 96];
        ord[92] = Decimal::new(5, 1);
        let d = OrdDay {
            ord: OrdName::parse("e-redes").unwrap(),
            region: Region::Continent,
            tz,
            day: d,
            calendar,
            tolerance_kwh: Decimal::new(1, 3),
            registered: 2,
            missing: vec![Cpe::from_parts(2, 555_000_222).unwrap()],
        };
        let c = CpeDay {
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
        };
        (d, c)
    }

    fn csv_of(rows: impl FnOnce(&mut csv::Writer<Vec<u8>>), header: &[&str]) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(header).unwrap();
        rows(&mut w);
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn the_csvs_have_their_headers_one_row_per_quarter_hour_and_the_sent_values() {
        let (d, c) = day();
        let q = csv_of(
            |w| quarter_hour_rows(w, &d, &c).unwrap(),
            &QUARTER_HOURS_HEADER,
        );
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
                c.cpe
            )
        );
        let tou = TouTables::erse_mainland();
        let s = csv_of(
            |w| supplier_rows(w, &d, &c, &tou).unwrap(),
            &SUPPLIER_HEADER,
        );
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
        let (d, c) = day();
        let mut section = OrdSection::new(d);
        section.add(&c, &TouTables::erse_mainland());
        let page = html(&[section], generated);
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

    #[test]
    fn a_national_day_charts_its_anomalous_cpes_first_and_lists_every_cpe() {
        let (d, c) = day();
        let tou = TouTables::erse_mainland();
        let mut section = OrdSection::new(d);
        let quiet = |k: u64| {
            let mut c = c.clone();
            c.cpe = Cpe::from_parts(2, 100_000_000 + k).unwrap();
            c.sent.clear();
            c
        };
        for k in 0..PAGE_CHARTS as u64 {
            section.add(&quiet(k), &tou);
        }
        // The anomalous CPE comes last, and is still drawn.
        section.add(&c, &tou);
        let page = html(
            &[section],
            Utc.with_ymd_and_hms(2024, 11, 6, 20, 0, 0).unwrap(),
        );
        assert_eq!(page.matches("<svg").count(), PAGE_CHARTS);
        assert!(
            page.contains(&format!("id=\"cpe-{}\"", c.cpe)),
            "the anomalous CPE is drawn"
        );
        assert!(!page.contains(&format!("id=\"cpe-{}\"", quiet(PAGE_CHARTS as u64 - 1).cpe)));
        assert!(page.contains(&format!(
            "Charts for {PAGE_CHARTS} of the {} CPEs",
            PAGE_CHARTS + 1
        )));
        assert_eq!(
            page.matches("<tr><td class=\"l\">PT0").count(),
            PAGE_CHARTS + 1,
            "a row per CPE"
        );
    }
}
