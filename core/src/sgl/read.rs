//! The SGL reader: every line checked against SGL-NOTES §3, all diagnostics collected, days built on the calendar.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::diagnostic::{show, Code, Diagnostic};
use super::lex::{self, Field, ValueError};
use super::{Criteria, DataStatus, Header, ReadOptions, Report, SglFile, ValueKind};
use crate::calendar::{DayCalendar, LabelConvention, PeriodLabel, Span};
use crate::filename::DateMeaning;
use crate::profile::{DayProfile, Reading, ReadingStatus};
use crate::region::Region;

/// Reads and validates one file. Never panics, whatever the bytes.
/// Errors reported per file at most; past them the reader stops (a file of a million bad lines is
/// rejected in one pass, with a report an operator can read).
pub const MAX_DIAGNOSTICS: usize = 100;

pub fn read(bytes: &[u8], options: &ReadOptions<'_>) -> Report {
    let mut reader = Reader::new(options);
    if bytes.len() as u64 > options.dialect.max_file_bytes {
        reader.diag(
            0,
            0,
            Code::TooLarge,
            format!(
                "file has {} bytes, more than the limit of {} bytes",
                bytes.len(),
                options.dialect.max_file_bytes
            ),
        );
        return reader.finish_without_content();
    }
    reader.read_lines(bytes);
    reader.finish()
}

/// Ranks give the record order 00 < 01 < 04 < 20 < 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Header = 1,
    Criteria = 2,
    DetailType = 3,
    Detail = 4,
    Totals = 5,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::Header => "00",
            Kind::Criteria => "01",
            Kind::DetailType => "04",
            Kind::Detail => "20",
            Kind::Totals => "99",
        }
    }

    fn field_count(self) -> usize {
        match self {
            Kind::Header | Kind::Criteria => 8,
            Kind::DetailType => 2,
            Kind::Detail => 5,
            Kind::Totals => 4,
        }
    }

    fn layout(self) -> &'static str {
        match self {
            Kind::Header => "00 origin destination id previous-id delivery-points start end",
            Kind::Criteria => "01 P|D S|N 06 POTENCIA|ENERGIA K 15M 0",
            Kind::DetailType => "04 A+",
            Kind::Detail => "20 YYYYMMDD HHMM value status",
            Kind::Totals => "99 accumulated detail-services detail-records",
        }
    }
}

struct Detail {
    line: usize,
    date_column: usize,
    period_column: usize,
    value_column: usize,
    date: NaiveDate,
    label: PeriodLabel,
    value: Decimal,
    status: ReadingStatus,
}

struct Totals {
    line: usize,
    columns: [usize; 3],
    accumulated: u64,
    detail_services: u64,
    detail_records: u64,
}

struct Reader<'o> {
    options: &'o ReadOptions<'o>,
    diagnostics: Vec<Diagnostic>,
    stage: Option<Kind>,
    /// Line where each record kind was first seen (index: `Kind as usize`), valid or not.
    seen: [Option<usize>; 6],
    header: Option<(Header, [usize; 8])>,
    criteria: Option<Criteria>,
    totals: Option<Totals>,
    details: Vec<Detail>,
    detail_lines: u64,
    records: usize,
    last_line: usize,
    criteria_status_column: usize,
    /// Cache: the last date text of a 20 record and its value.
    last_date: Option<(String, NaiveDate)>,
    /// The line where reading stopped after `MAX_DIAGNOSTICS` errors.
    stopped_at: Option<usize>,
}

/// The selected days' quarter-hours, filled by the 20 records in file order.
struct DayGrid {
    region: Region,
    start: NaiveDate,
    end: NaiveDate,
    convention: LabelConvention,
    calendars: Vec<DayCalendar>,
    slots: Vec<Vec<Option<(Decimal, ReadingStatus)>>>,
    /// Per day, the quarter-hour after the last one filled in order.
    cursor: Vec<usize>,
    last_line_of_day: Vec<usize>,
    current_day: usize,
}

impl DayGrid {
    fn new(
        region: Region,
        convention: LabelConvention,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Option<DayGrid> {
        let day_count = usize::try_from((end - start).num_days() + 1).ok()?;
        let calendars: Vec<DayCalendar> = start
            .iter_days()
            .take(day_count)
            .map(|d| DayCalendar::new(region.time_zone(), d, convention))
            .collect();
        Some(DayGrid {
            region,
            convention,
            start,
            end,
            slots: calendars.iter().map(|c| vec![None; c.len()]).collect(),
            cursor: vec![0; calendars.len()],
            last_line_of_day: vec![0; calendars.len()],
            current_day: 0,
            calendars,
        })
    }

    /// Puts one 20 record in its quarter-hour; what is wrong with it, if anything.
    fn place(&mut self, d: &Detail) -> Option<Diagnostic> {
        let (start, end) = (self.start, self.end);
        if d.date < start || d.date > end {
            return Some(Diagnostic::new(
                d.line,
                d.date_column,
                Code::DateOutsideSelection,
                format!(
                    "reading date: expected a day from {} to {} (the header's selection), found {}",
                    start.format("%Y%m%d"),
                    end.format("%Y%m%d"),
                    d.date.format("%Y%m%d")
                ),
            ));
        }
        let di = usize::try_from((d.date - start).num_days()).unwrap_or(0);
        if di < self.current_day {
            return Some(Diagnostic::new(
                d.line,
                d.date_column,
                Code::PeriodOrder,
                format!(
                    "reading date {} comes after readings of {}: dates must not go back",
                    d.date.format("%Y%m%d"),
                    self.calendars[self.current_day].day.format("%Y%m%d")
                ),
            ));
        }
        self.current_day = di;
        self.last_line_of_day[di] = d.line;
        let cal = &self.calendars[di];
        let j = self.cursor[di];
        if let Some(k) = (j..cal.len()).find(|&k| cal.quarter_hours[k].label == d.label) {
            self.slots[di][k] = Some((d.value, d.status));
            self.cursor[di] = k + 1;
            if cal.quarter_hours[k].span == Span::Gap && !d.value.is_zero() {
                return Some(Diagnostic::new(
                    d.line,
                    d.value_column,
                    Code::GapNotZero,
                    format!(
                        "period {} of {} is in the hour the clocks skipped (local-96 labels it but it holds no time): expected 0, found {}",
                        d.label,
                        d.date.format("%Y%m%d"),
                        d.value
                    ),
                ));
            }
            return None;
        }
        let behind: Vec<usize> = (0..j)
            .filter(|&k| cal.quarter_hours[k].label == d.label)
            .collect();
        let day = d.date.format("%Y%m%d");
        if behind.is_empty() {
            let note = if cal.len() != 96 {
                format!(" (a {}-period DST day){}", cal.len(), self.local_96_hint())
            } else {
                String::new()
            };
            return Some(Diagnostic::new(
                d.line,
                d.period_column,
                Code::PeriodNotInDay,
                format!(
                    "period {} does not exist on {day} in {} time{note}",
                    d.label, self.region
                ),
            ));
        }
        if let Some(&free) = behind.iter().find(|&&k| self.slots[di][k].is_none()) {
            self.slots[di][free] = Some((d.value, d.status));
            let previous = cal.quarter_hours[j - 1].label;
            return Some(Diagnostic::new(
                d.line,
                d.period_column,
                Code::PeriodOrder,
                format!(
                    "period {} of {day} comes after period {previous}: periods must be in time order",
                    d.label
                ),
            ));
        }
        let times = if behind.len() > 1 {
            format!(" (it occurs {} times that day)", behind.len())
        } else {
            String::new()
        };
        Some(Diagnostic::new(
            d.line,
            d.period_column,
            Code::DuplicatePeriod,
            format!("period {} of {day} is given again{times}", d.label),
        ))
    }

    /// One diagnostic per day with quarter-hours no record filled, at that day's last line
    /// (`fallback_line` for a day with none).
    fn missing(&self, fallback_line: usize) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (di, cal) in self.calendars.iter().enumerate() {
            let missing: Vec<String> = cal
                .quarter_hours
                .iter()
                .zip(&self.slots[di])
                .filter(|(_, s)| s.is_none())
                .map(|(q, _)| q.label.to_string())
                .collect();
            if missing.is_empty() {
                continue;
            }
            let line = if self.last_line_of_day[di] > 0 {
                self.last_line_of_day[di]
            } else {
                fallback_line
            };
            let mut listed = missing
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            if missing.len() > 8 {
                listed.push_str(" …");
            }
            let hint = if cal.len() == 100 && missing.len() == 4 {
                self.local_96_hint()
            } else {
                ""
            };
            out.push(Diagnostic::new(line, 1, Code::MissingPeriods, format!(
                "day {}: expected {} quarter-hours, {} have no 20 record ({listed}); a missing quarter-hour is a line with status 2{hint}",
                cal.day.format("%Y%m%d"), cal.len(), missing.len())));
        }
        out
    }

    /// With the `local` convention on a DST day, what to set when the file has 96 periods.
    fn local_96_hint(&self) -> &'static str {
        if self.convention == LabelConvention::Local {
            "; a file with 96 periods on a DST day labels every day in local time: set time_convention = \"local-96\" for this ORD (check: --time-convention local-96)"
        } else {
            ""
        }
    }

    /// The days read, each quarter-hour in kWh.
    fn into_days(self, kind: ValueKind) -> Vec<DayProfile> {
        self.calendars
            .iter()
            .zip(self.slots)
            .map(|(cal, day_slots)| DayProfile {
                day: cal.day,
                readings: day_slots
                    .into_iter()
                    .map(|s| {
                        let (value, status) = s.unwrap_or((Decimal::ZERO, ReadingStatus::Missing));
                        Reading {
                            kwh: kind.to_kwh(value),
                            status,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

impl<'o> Reader<'o> {
    fn new(options: &'o ReadOptions<'o>) -> Reader<'o> {
        Reader {
            options,
            diagnostics: Vec::new(),
            stage: None,
            seen: [None; 6],
            header: None,
            criteria: None,
            totals: None,
            details: Vec::new(),
            detail_lines: 0,
            records: 0,
            last_line: 0,
            criteria_status_column: 1,
            last_date: None,
            stopped_at: None,
        }
    }

    fn diag(&mut self, line: usize, column: usize, code: Code, message: impl Into<String>) {
        if self.diagnostics.len() < MAX_DIAGNOSTICS {
            self.diagnostics
                .push(Diagnostic::new(line, column, code, message));
        }
    }

    fn read_lines(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let separator = self.options.dialect.separator;
        let mut fields: Vec<Field<'_>> = Vec::with_capacity(8);
        let mut blank_since: Option<usize> = None;
        let mut line_no = 0usize;
        for raw in bytes.split(|&b| b == b'\n') {
            line_no += 1;
            if self.diagnostics.len() >= MAX_DIAGNOSTICS {
                self.stopped_at = Some(line_no);
                break;
            }
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(|&b| b == b' ' || b == b'\t') {
                blank_since.get_or_insert(line_no);
                continue;
            }
            if let Some(blank) = blank_since.take() {
                self.diag(
                    blank,
                    1,
                    Code::BlankLine,
                    "blank line before the end of the file: expected a record",
                );
            }
            self.last_line = line_no;
            if let Some(pos) = raw
                .iter()
                .position(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
            {
                self.diag(
                    line_no,
                    pos + 1,
                    Code::BadByte,
                    format!("expected printable ASCII, found byte 0x{:02X}", raw[pos]),
                );
                continue;
            }
            // Only printable ASCII and TAB remain, so this cannot fail.
            let Ok(line) = std::str::from_utf8(raw) else {
                continue;
            };
            lex::split_fields(line, separator, &mut fields);
            self.record(line_no, &fields);
        }
        if self.last_line == 0 {
            self.last_line = line_no.max(1);
        }
    }

    fn record(&mut self, line: usize, fields: &[Field<'_>]) {
        self.records += 1;
        let Some(first) = fields.first() else { return };
        let kind = match first.text {
            "00" => Kind::Header,
            "01" => Kind::Criteria,
            "04" => Kind::DetailType,
            "20" => Kind::Detail,
            "99" => Kind::Totals,
            other => {
                if other == "10" {
                    self.diag(line, first.column, Code::UnknownRecord,
                        "record type 10 (accumulated services) is not supported: expected 00, 01, 04, 20 or 99");
                } else {
                    self.diag(
                        line,
                        first.column,
                        Code::UnknownRecord,
                        format!(
                            "expected a record type 00, 01, 04, 20 or 99, found {}",
                            show(other)
                        ),
                    );
                }
                return;
            }
        };
        if kind == Kind::Detail {
            self.detail_lines += 1;
        }
        self.check_order(line, first.column, kind);
        self.seen[kind as usize].get_or_insert(line);
        if fields.len() != kind.field_count() {
            let column = fields
                .get(kind.field_count())
                .map_or(line_end_column(fields), |f| f.column);
            self.diag(
                line,
                column,
                Code::FieldCount,
                format!(
                    "record {} has {} fields ({}), found {}",
                    kind.code(),
                    kind.field_count(),
                    kind.layout(),
                    fields.len()
                ),
            );
            return;
        }
        match kind {
            Kind::Header => self.header(line, fields),
            Kind::Criteria => self.criteria(line, fields),
            Kind::DetailType => self.detail_type(line, fields),
            Kind::Detail => self.detail(line, fields),
            Kind::Totals => self.totals(line, fields),
        }
    }

    fn check_order(&mut self, line: usize, column: usize, kind: Kind) {
        if kind != Kind::Detail && self.seen[kind as usize].is_some() {
            self.diag(
                line,
                column,
                Code::DuplicateRecord,
                format!("record {} must appear once, found it again", kind.code()),
            );
        } else if let Some(stage) = self.stage {
            if stage == Kind::Totals {
                self.diag(
                    line,
                    column,
                    Code::RecordOrder,
                    format!(
                        "expected the end of the file after the 99 record, found record {}",
                        kind.code()
                    ),
                );
            } else if kind < stage {
                self.diag(
                    line,
                    column,
                    Code::RecordOrder,
                    format!(
                        "record {} must come before record {}, found it after",
                        kind.code(),
                        stage.code()
                    ),
                );
            }
        }
        self.stage = Some(self.stage.map_or(kind, |s| s.max(kind)));
    }

    fn number(&mut self, line: usize, field: &Field<'_>, what: &str) -> Option<u64> {
        let n = lex::unsigned(field.text);
        if n.is_none() {
            self.diag(
                line,
                field.column,
                Code::BadNumber,
                format!(
                    "{what}: expected an unsigned integer, found {}",
                    show(field.text)
                ),
            );
        }
        n
    }

    fn date(&mut self, line: usize, field: &Field<'_>, what: &str) -> Option<NaiveDate> {
        let d = lex::date(field.text);
        if d.is_none() {
            self.diag(
                line,
                field.column,
                Code::BadDate,
                format!(
                    "{what}: expected a date YYYYMMDD, found {}",
                    show(field.text)
                ),
            );
        }
        d
    }

    fn header(&mut self, line: usize, f: &[Field<'_>]) {
        let origin = f[1].text.to_string();
        let destination = f[2].text.to_string();
        self.check_entity(line, &f[1], "origin", self.options.expected_origin);
        self.check_entity(
            line,
            &f[2],
            "destination",
            self.options.expected_destination,
        );
        let id = self.number(line, &f[3], "transmission id");
        let previous = self.number(line, &f[4], "previous transmission id");
        let points = self.number(line, &f[5], "number of delivery points");
        let start = self.date(line, &f[6], "selection start");
        let end = self.date(line, &f[7], "selection end");
        if let Some(points) = points {
            if points != 1 {
                self.diag(
                    line,
                    f[5].column,
                    Code::DeliveryPoints,
                    format!(
                        "number of delivery points: expected 00000001 (one CPE per file), found {}",
                        show(f[5].text)
                    ),
                );
            }
        }
        if let (Some(id), Some(previous)) = (id, previous) {
            if previous >= id && id != 0 {
                self.diag(line, f[4].column, Code::TransmissionIds, format!(
                    "previous transmission id {previous} is not lower than the transmission id {id}"));
            }
        }
        let selection = start
            .zip(end)
            .filter(|&(start, end)| self.check_selection(line, f, start, end));
        if let (Some(id), Some(previous), Some(points), Some((start, end)), None) =
            (id, previous, points, selection, &self.header)
        {
            let mut columns = [0; 8];
            for (c, field) in columns.iter_mut().zip(f) {
                *c = field.column;
            }
            self.header = Some((
                Header {
                    origin,
                    destination,
                    transmission_id: id,
                    previous_transmission_id: previous,
                    delivery_points: points,
                    selection_start: start,
                    selection_end: end,
                },
                columns,
            ));
        }
    }

    /// The header's origin or destination against the one this ORD's files must name.
    fn check_entity(
        &mut self,
        line: usize,
        field: &Field<'_>,
        which: &str,
        expected: Option<&str>,
    ) {
        let Some(expected) = expected else {
            return;
        };
        if field.text != expected {
            self.diag(
                line,
                field.column,
                Code::Entity,
                format!(
                    "{which} entity: expected {}, found {}",
                    show(expected),
                    show(field.text)
                ),
            );
        }
    }

    /// Whether the selection runs forward and within the dialect's limit (said if not).
    fn check_selection(
        &mut self,
        line: usize,
        f: &[Field<'_>],
        start: NaiveDate,
        end: NaiveDate,
    ) -> bool {
        let span = (end - start).num_days();
        if span < 0 {
            self.diag(
                line,
                f[7].column,
                Code::SelectionRange,
                format!(
                    "selection end {} is before its start {}",
                    f[7].text, f[6].text
                ),
            );
            return false;
        }
        if span >= i64::from(self.options.dialect.max_selection_days) {
            self.diag(
                line,
                f[7].column,
                Code::SelectionRange,
                format!(
                    "selection spans {} days, more than the limit of {}",
                    span + 1,
                    self.options.dialect.max_selection_days
                ),
            );
            return false;
        }
        true
    }

    fn fixed(
        &mut self,
        line: usize,
        field: &Field<'_>,
        what: &str,
        allowed: &[&str],
        ignore_case: bool,
    ) -> Option<usize> {
        let found = allowed.iter().position(|a| {
            if ignore_case {
                a.eq_ignore_ascii_case(field.text)
            } else {
                *a == field.text
            }
        });
        if found.is_none() {
            self.diag(
                line,
                field.column,
                Code::BadFixedField,
                format!(
                    "{what}: expected {}, found {}",
                    allowed.join(" or "),
                    show(field.text)
                ),
            );
        }
        found
    }

    fn criteria(&mut self, line: usize, f: &[Field<'_>]) {
        self.criteria_status_column = f[1].column;
        let status = self.fixed(line, &f[1], "data status", &["P", "D"], false);
        let interpolation = self.fixed(line, &f[2], "interpolation", &["S", "N"], false);
        self.fixed(line, &f[3], "aggregation criterion", &["06"], false);
        let kind = self.fixed(line, &f[4], "value kind", &["POTENCIA", "ENERGIA"], true);
        self.fixed(line, &f[5], "unit", &["K"], true);
        self.fixed(line, &f[6], "interval", &["15M"], true);
        self.fixed(line, &f[7], "losses", &["0"], false);
        if let (Some(status), Some(interpolation), Some(kind)) = (status, interpolation, kind) {
            if self.criteria.is_none() {
                self.criteria = Some(Criteria {
                    status: if status == 0 {
                        DataStatus::Provisional
                    } else {
                        DataStatus::Definitive
                    },
                    interpolated: interpolation == 0,
                    value_kind: if kind == 0 {
                        ValueKind::Power
                    } else {
                        ValueKind::Energy
                    },
                });
            }
        }
    }

    fn detail_type(&mut self, line: usize, f: &[Field<'_>]) {
        self.fixed(line, &f[1], "quantity", &["A+"], false);
    }

    fn detail(&mut self, line: usize, f: &[Field<'_>]) {
        let date = match &self.last_date {
            Some((text, date)) if text == f[1].text => Some(*date),
            _ => {
                let parsed = self.date(line, &f[1], "reading date");
                if let Some(d) = parsed {
                    self.last_date = Some((f[1].text.to_string(), d));
                }
                parsed
            }
        };
        let label = PeriodLabel::parse(f[2].text);
        if label.is_none() {
            self.diag(
                line,
                f[2].column,
                Code::BadPeriod,
                format!(
                    "period: expected HHMM from 0015 to 2400 ending a quarter-hour, found {}",
                    show(f[2].text)
                ),
            );
        }
        let value = match lex::value(f[3].text, self.options.dialect.decimal_separator()) {
            Ok(v) => Some(v),
            Err(e) => {
                let (code, what) = match e {
                    ValueError::Negative => (Code::NegativeValue, "a value of zero or more"),
                    ValueError::Malformed => (
                        Code::BadValue,
                        if self.options.dialect.decimal_comma {
                            "a decimal number with a decimal comma"
                        } else {
                            "a decimal number with a decimal point"
                        },
                    ),
                    ValueError::TooPrecise => (
                        Code::BadValue,
                        "a decimal number of at most 28 digits and 20 decimals",
                    ),
                };
                self.diag(
                    line,
                    f[3].column,
                    code,
                    format!("value: expected {what}, found {}", show(f[3].text)),
                );
                None
            }
        };
        let status = ReadingStatus::from_code(f[4].text);
        if status.is_none() {
            self.diag(
                line,
                f[4].column,
                Code::BadStatus,
                format!(
                    "status: expected 0 (real), 1 (estimated) or 2 (missing), found {}",
                    show(f[4].text)
                ),
            );
        }
        if let (Some(date), Some(label), Some(value), Some(status)) = (date, label, value, status) {
            self.details.push(Detail {
                line,
                date_column: f[1].column,
                period_column: f[2].column,
                value_column: f[3].column,
                date,
                label,
                value,
                status,
            });
        }
    }

    fn totals(&mut self, line: usize, f: &[Field<'_>]) {
        let accumulated = self.number(line, &f[1], "total accumulated services");
        let services = self.number(line, &f[2], "detail services per 20 record");
        let records = self.number(line, &f[3], "number of 20 records");
        if let (Some(accumulated), Some(detail_services), Some(detail_records)) =
            (accumulated, services, records)
        {
            if self.totals.is_none() {
                self.totals = Some(Totals {
                    line,
                    columns: [f[1].column, f[2].column, f[3].column],
                    accumulated,
                    detail_services,
                    detail_records,
                });
            }
        }
    }
}

fn line_end_column(fields: &[Field<'_>]) -> usize {
    fields.last().map_or(1, |f| f.column + f.text.len())
}

impl Reader<'_> {
    fn finish_without_content(mut self) -> Report {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        Report {
            file: None,
            diagnostics: self.diagnostics,
        }
    }

    fn finish(mut self) -> Report {
        if let Some(line) = self.stopped_at {
            self.diagnostics.push(Diagnostic::new(
                line,
                1,
                Code::TooManyErrors,
                format!("{MAX_DIAGNOSTICS} errors before line {line}: checking stopped, the rest of the file was not read"),
            ));
            return self.finish_without_content();
        }
        if self.records == 0 {
            self.diag(
                1,
                1,
                Code::Empty,
                "expected records 00, 01, 04, 20…, 99, found an empty file",
            );
            return self.finish_without_content();
        }
        self.check_presence();
        self.check_totals();
        let days = self.check_details();
        self.check_name();
        self.check_status();
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        let has_errors = self.diagnostics.iter().any(Diagnostic::is_error);
        let file = match (has_errors, self.header, self.criteria, days) {
            (false, Some((header, _)), Some(criteria), Some(days)) => Some(SglFile {
                header,
                criteria,
                days,
            }),
            _ => None,
        };
        Report {
            file,
            diagnostics: self.diagnostics,
        }
    }

    fn seen(&self, kind: Kind) -> Option<usize> {
        self.seen[kind as usize]
    }

    fn check_presence(&mut self) {
        if self.seen(Kind::Header).is_none() {
            self.diag(
                1,
                1,
                Code::MissingRecord,
                "expected a 00 header record first, found none",
            );
        }
        if self.seen(Kind::Criteria).is_none() {
            let line = self.seen(Kind::Header).map_or(1, |l| l + 1);
            self.diag(
                line,
                1,
                Code::MissingRecord,
                "expected a 01 criteria record after the header, found none",
            );
        }
        match (self.seen(Kind::DetailType), self.seen(Kind::Detail)) {
            (None, Some(first_detail)) => self.diag(
                first_detail,
                1,
                Code::MissingRecord,
                "expected a 04 record (A+) before the first 20 record, found none",
            ),
            (Some(line), None) => self.diag(
                line,
                1,
                Code::MissingRecord,
                "record 04 announces detail records, but no 20 record follows",
            ),
            (None, None) => {
                let line = self.seen(Kind::Totals).unwrap_or(self.last_line);
                self.diag(
                    line,
                    1,
                    Code::MissingRecord,
                    "expected at least one 20 detail record, found none",
                );
            }
            (Some(_), Some(_)) => {}
        }
        if self.seen(Kind::Totals).is_none() {
            self.diag(
                self.last_line + 1,
                1,
                Code::MissingRecord,
                "expected a 99 totals record at the end, found none",
            );
        }
    }

    fn check_totals(&mut self) {
        let Some(t) = self.totals.take() else { return };
        if t.accumulated != 0 {
            self.diag(t.line, t.columns[0], Code::TotalsMismatch, format!(
                "total accumulated services: expected 0 (the file has no type-10 records), found {}", t.accumulated));
        }
        match t.detail_services {
            1 => {}
            0 if self.detail_lines > 0 => self.diag(
                t.line,
                t.columns[1],
                Code::DetailServices,
                "detail services per 20 record: expected 1 (A+), found 0; accepted",
            ),
            0 => {}
            n => self.diag(
                t.line,
                t.columns[1],
                Code::TotalsMismatch,
                format!("detail services per 20 record: expected 1 (A+), found {n}"),
            ),
        }
        if t.detail_records != self.detail_lines {
            self.diag(
                t.line,
                t.columns[2],
                Code::TotalsMismatch,
                format!(
                    "number of 20 records: expected {} (the records in the file), found {}",
                    self.detail_lines, t.detail_records
                ),
            );
        }
        self.totals = Some(t);
    }

    /// Walks every selected day's calendar against the 20 records; returns the days when all fit.
    fn check_details(&mut self) -> Option<Vec<DayProfile>> {
        let (start, end) = {
            let (h, _) = self.header.as_ref()?;
            (h.selection_start, h.selection_end)
        };
        let errors_before = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let region = self.options.region;
        let mut grid = DayGrid::new(region, self.options.dialect.time_convention, start, end)?;
        let mut problems: Vec<Diagnostic> = Vec::new();
        for d in &self.details {
            if let Some(problem) = grid.place(d) {
                problems.push(problem);
            }
        }
        let fallback_line = self.seen(Kind::Totals).unwrap_or(self.last_line);
        problems.extend(grid.missing(fallback_line));
        self.add_capped(problems);
        let errors_after = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let kind = self.criteria.as_ref()?.value_kind;
        if errors_after != errors_before {
            return None;
        }
        Some(grid.into_days(kind))
    }

    /// Adds `problems` up to `MAX_DIAGNOSTICS` in all; if some do not fit, says where checking
    /// stopped instead of listing thousands (a month of wrong dates is one mistake, not 3,000).
    fn add_capped(&mut self, problems: Vec<Diagnostic>) {
        let room = MAX_DIAGNOSTICS.saturating_sub(self.diagnostics.len());
        let mut problems = problems.into_iter();
        self.diagnostics.extend(problems.by_ref().take(room));
        if let Some(first_left) = problems.next() {
            let left = 1 + problems.count();
            let line = usize::try_from(first_left.line).unwrap_or(usize::MAX);
            self.diagnostics.push(Diagnostic::new(
                line,
                1,
                Code::TooManyErrors,
                format!("{MAX_DIAGNOSTICS} errors before line {line}: {left} more problem(s) of the readings not listed"),
            ));
        }
    }

    fn check_name(&mut self) {
        let (Some(name), Some((header, columns))) = (self.options.name, self.header.as_ref())
        else {
            return;
        };
        if name.date_meaning() != DateMeaning::Consumption {
            return;
        }
        if name.date != header.selection_start || name.date != header.selection_end {
            let message = format!(
                "the name's consumption date {} must equal the header's selection, found {} to {}",
                name.date.format("%Y%m%d"),
                header.selection_start.format("%Y%m%d"),
                header.selection_end.format("%Y%m%d")
            );
            let line = self.seen(Kind::Header).unwrap_or(1);
            let column = columns[6];
            self.diag(line, column, Code::NameDate, message);
        }
    }

    /// The (day, label) pairs of the detail records that fall in a spring DST gap (`local-96`).
    fn gap_labels(&self) -> std::collections::HashSet<(NaiveDate, PeriodLabel)> {
        let mut out = std::collections::HashSet::new();
        if self.options.dialect.time_convention != LabelConvention::Local96 {
            return out;
        }
        let tz = self.options.region.time_zone();
        let mut days: Vec<NaiveDate> = self.details.iter().map(|d| d.date).collect();
        days.dedup();
        for day in days {
            let cal = DayCalendar::new(tz, day, LabelConvention::Local96);
            out.extend(
                cal.quarter_hours
                    .iter()
                    .filter(|q| q.span == Span::Gap)
                    .map(|q| (day, q.label)),
            );
        }
        out
    }

    fn check_status(&mut self) {
        let Some(criteria) = self.criteria else {
            return;
        };
        if criteria.status != DataStatus::Definitive {
            return;
        }
        // With local-96 the labels of the spring gap hold no time: their status says nothing.
        let gaps = self.gap_labels();
        let not_real = self
            .details
            .iter()
            .filter(|d| d.status != ReadingStatus::Real && !gaps.contains(&(d.date, d.label)))
            .count();
        if not_real > 0 {
            let line = self.seen(Kind::Criteria).unwrap_or(1);
            self.diag(line, self.criteria_status_column, Code::StatusInconsistent, format!(
                "data status: expected P (provisional) because {not_real} periods are estimated or missing, found D"));
        }
    }
}
