//! Tests of the SGL codec: one per rejection rule of SGL-NOTES §3, liberal acceptance, DST days.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::*;
use crate::calendar::{DayCalendar, LabelConvention, Span};
use crate::filename::{Direction, OrdFileName};
use crate::profile::{DayProfile, Reading, ReadingStatus};
use crate::region::Region;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A canonical one-day file for `region`: 12 kW in every quarter-hour, definitive.
fn canonical(region: Region, d: NaiveDate) -> String {
    let cal = DayCalendar::new(region.time_zone(), d, LabelConvention::Local);
    let mut s = format!(
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000001\t{0}\t{0}\n",
        d.format("%Y%m%d")
    );
    s.push_str("01\tD\tN\t06\tPOTENCIA\tK\t15M\t0\n04\tA+\n");
    for q in &cal.quarter_hours {
        s.push_str(&format!(
            "20\t{}\t{}\t0000000000012.000\t0\n",
            d.format("%Y%m%d"),
            q.label
        ));
    }
    s.push_str(&format!("99\t0000000\t0000001\t{:06}\n", cal.len()));
    s
}

fn july5() -> String {
    canonical(Region::Continent, day(2021, 7, 5))
}

fn read_with(text: &str, region: Region, dialect: &Dialect) -> Report {
    read(text.as_bytes(), &ReadOptions::new(region, dialect))
}

fn report(text: &str) -> Report {
    read_with(text, Region::Continent, &Dialect::default())
}

fn codes(text: &str) -> Vec<&'static str> {
    report(text)
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

/// Asserts the file is rejected with `code` (and the diagnostic points at `line`).
fn rejects(text: &str, code: Code, line: u32) -> Report {
    let r = report(text);
    assert!(r.file.is_none(), "must be rejected with {code}");
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.code == code && d.line == line),
        "expected {code} at line {line}, got {:#?}",
        r.diagnostics
    );
    r
}

fn replace_line(text: &str, line: usize, new: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = new;
    lines.join("\n") + "\n"
}

#[test]
fn canonical_file_is_valid_with_96_periods_and_total() {
    let r = report(&july5());
    assert_eq!(r.diagnostics, vec![]);
    let f = r.file.unwrap();
    assert_eq!(f.detail_count(), 96);
    // 12 kW for 96 quarter-hours = 288 kWh.
    assert_eq!(f.total_kwh(), Decimal::from(288));
    assert_eq!(f.header.transmission_id, 372);
    assert_eq!(f.criteria.value_kind, ValueKind::Power);
}

#[test]
fn e001_non_ascii_byte_is_rejected_at_its_column() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t0000000000012.000\t0é");
    let r = rejects(&t, Code::BadByte, 4);
    assert_eq!(
        r.diagnostics
            .iter()
            .find(|d| d.code == Code::BadByte)
            .unwrap()
            .column,
        37
    );
}

#[test]
fn e002_oversized_file_is_rejected_unread() {
    let dialect = Dialect {
        max_file_bytes: 100,
        ..Dialect::default()
    };
    let r = read_with(&july5(), Region::Continent, &dialect);
    assert_eq!(r.codes(), vec![Code::TooLarge]);
}

#[test]
fn e003_empty_file_is_rejected() {
    assert_eq!(codes(""), vec!["E003"]);
    assert_eq!(codes("\n\n  \n"), vec!["E003"]);
}

/// Regression (hostile input): a file of a million bad lines gave a million diagnostics (seconds, and
/// an errors file as large as the input); the reader now stops at the limit.
#[test]
fn e005_a_million_bad_lines_stop_at_the_limit() {
    let text = "x\n".repeat(1_000_000);
    let c = codes(&text);
    assert_eq!(c.len(), crate::sgl::read::MAX_DIAGNOSTICS + 1);
    assert_eq!(c.last().copied(), Some("E005"));
}

#[test]
fn e004_blank_line_inside_is_rejected_but_trailing_blank_lines_are_accepted() {
    let t = july5().replacen("04\tA+\n", "04\tA+\n\n", 1);
    rejects(&t, Code::BlankLine, 4);
    let trailing = july5() + "\n   \n\n";
    assert!(report(&trailing).file.is_some());
}

#[test]
fn e101_unknown_record_types_are_rejected() {
    let t = replace_line(&july5(), 3, "10\tA+");
    rejects(&t, Code::UnknownRecord, 3);
    let t = replace_line(&july5(), 3, "XX\tA+");
    rejects(&t, Code::UnknownRecord, 3);
}

#[test]
fn e102_records_out_of_order_are_rejected() {
    let mut lines: Vec<String> = july5().lines().map(String::from).collect();
    lines.swap(0, 1);
    rejects(&(lines.join("\n") + "\n"), Code::RecordOrder, 2);
    let after_totals = july5() + "20\t20210705\t2400\t0000000000012.000\t0\n";
    rejects(&after_totals, Code::RecordOrder, 101);
    let mut lines: Vec<String> = july5().lines().map(String::from).collect();
    let four = lines.remove(2);
    lines.insert(10, four);
    rejects(&(lines.join("\n") + "\n"), Code::RecordOrder, 11);
}

#[test]
fn e103_each_missing_record_is_reported() {
    let t = july5();
    let without = |prefix: &str| {
        t.lines()
            .filter(|l| !l.starts_with(prefix))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    rejects(&without("00"), Code::MissingRecord, 1);
    rejects(&without("01"), Code::MissingRecord, 2);
    rejects(&without("04"), Code::MissingRecord, 3);
    rejects(&without("99"), Code::MissingRecord, 100);
    let no_details = without("20");
    let r = report(&no_details);
    assert!(
        r.codes().contains(&Code::MissingRecord),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn e104_duplicate_header_is_rejected() {
    let t = july5();
    let first = t.lines().next().unwrap().to_string();
    let doubled = format!("{first}\n{t}");
    rejects(&doubled, Code::DuplicateRecord, 2);
}

#[test]
fn e105_wrong_field_count_is_rejected() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t0000000000012.000");
    rejects(&t, Code::FieldCount, 4);
}

#[test]
fn e201_bad_number_in_header_is_rejected() {
    let t = replace_line(
        &july5(),
        1,
        "00\tEDIS\t0099/1\t00000003X2\t0000000371\t00000001\t20210705\t20210705",
    );
    rejects(&t, Code::BadNumber, 1);
}

#[test]
fn e202_bad_date_is_rejected() {
    let t = replace_line(&july5(), 5, "20\t20210732\t0015\t0000000000012.000\t0");
    rejects(&t, Code::BadDate, 5);
}

#[test]
fn e203_bad_period_is_rejected() {
    let t = replace_line(&july5(), 5, "20\t20210705\t0016x\t0000000000012.000\t0");
    rejects(&t, Code::BadPeriod, 5);
    let t = replace_line(&july5(), 5, "20\t20210705\t2415\t0000000000012.000\t0");
    rejects(&t, Code::BadPeriod, 5);
}

#[test]
fn e204_bad_value_is_rejected() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t12,000\t0");
    rejects(&t, Code::BadValue, 4);
}

#[test]
fn e205_negative_value_is_rejected() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t-000000000012.000\t0");
    let r = rejects(&t, Code::NegativeValue, 4);
    assert_eq!(r.diagnostics[0].column, 18);
}

#[test]
fn e206_status_other_than_0_1_2_is_rejected() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t0000000000012.000\t3");
    rejects(&t, Code::BadStatus, 4);
}

#[test]
fn e207_fixed_fields_of_01_and_04_are_checked() {
    for bad in [
        "01\tX\tN\t06\tPOTENCIA\tK\t15M\t0",
        "01\tD\tY\t06\tPOTENCIA\tK\t15M\t0",
        "01\tD\tN\t07\tPOTENCIA\tK\t15M\t0",
        "01\tD\tN\t06\tWATTS\tK\t15M\t0",
        "01\tD\tN\t06\tPOTENCIA\tM\t15M\t0",
        "01\tD\tN\t06\tPOTENCIA\tK\t60M\t0",
        "01\tD\tN\t06\tPOTENCIA\tK\t15M\t1",
    ] {
        rejects(&replace_line(&july5(), 2, bad), Code::BadFixedField, 2);
    }
    rejects(&replace_line(&july5(), 3, "04\tA-"), Code::BadFixedField, 3);
}

#[test]
fn e301_selection_end_before_start_is_rejected() {
    let t = replace_line(
        &july5(),
        1,
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000001\t20210705\t20210704",
    );
    rejects(&t, Code::SelectionRange, 1);
    let t = replace_line(
        &july5(),
        1,
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000001\t20210705\t20990704",
    );
    rejects(&t, Code::SelectionRange, 1);
}

#[test]
fn e302_more_than_one_delivery_point_is_rejected() {
    let t = replace_line(
        &july5(),
        1,
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000002\t20210705\t20210705",
    );
    rejects(&t, Code::DeliveryPoints, 1);
}

#[test]
fn e303_entity_codes_are_checked_when_configured() {
    let dialect = Dialect::default();
    let mut options = ReadOptions::new(Region::Continent, &dialect);
    options.expected_origin = Some("EDIS");
    options.expected_destination = Some("0099/1");
    assert!(read(july5().as_bytes(), &options).file.is_some());
    options.expected_origin = Some("EEM");
    let r = read(july5().as_bytes(), &options);
    assert_eq!(r.codes(), vec![Code::Entity]);
}

#[test]
fn e401_date_outside_the_selection_is_rejected() {
    let t = replace_line(&july5(), 5, "20\t20210706\t0015\t0000000000012.000\t0");
    rejects(&t, Code::DateOutsideSelection, 5);
}

#[test]
fn e402_period_that_does_not_exist_on_the_spring_dst_day_is_rejected() {
    let t = canonical(Region::Continent, day(2024, 3, 31));
    // Line 8 is period 0215, the first after the gap: write 0130 instead.
    assert!(t.lines().nth(7).unwrap().contains("\t0215\t"));
    let bad = replace_line(&t, 8, "20\t20240331\t0130\t0000000000012.000\t0");
    rejects(&bad, Code::PeriodNotInDay, 8);
}

#[test]
fn e403_duplicate_period_is_rejected() {
    let t = replace_line(&july5(), 6, "20\t20210705\t0015\t0000000000012.000\t0");
    rejects(&t, Code::DuplicatePeriod, 6);
}

#[test]
fn e404_periods_and_dates_out_of_order_are_rejected() {
    let t = july5();
    let mut lines: Vec<&str> = t.lines().collect();
    lines.swap(4, 5);
    let r = rejects(&(lines.join("\n") + "\n"), Code::PeriodOrder, 6);
    // The swapped period is out of order, not also missing.
    assert!(
        !r.codes().contains(&Code::MissingPeriods),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn e405_missing_periods_are_rejected_with_their_labels() {
    let t = july5();
    let kept: Vec<&str> = t
        .lines()
        .filter(|l| !l.contains("\t0115\t") && !l.contains("\t0130\t"))
        .collect();
    let mut text = kept.join("\n") + "\n";
    text = text.replace("000096\n", "000094\n");
    let r = rejects(&text, Code::MissingPeriods, 97);
    assert!(
        r.diagnostics[0].message.contains("0115 0130"),
        "{}",
        r.diagnostics[0].message
    );
}

/// A 96-label local-96 file of `d` (12 kW everywhere, the spring gap 0 with status 2).
fn local_96(region: Region, d: NaiveDate) -> String {
    let cal = DayCalendar::new(region.time_zone(), d, LabelConvention::Local96);
    let mut s = format!(
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000001\t{0}\t{0}\n",
        d.format("%Y%m%d")
    );
    s.push_str("01\tD\tN\t06\tPOTENCIA\tK\t15M\t0\n04\tA+\n");
    for q in &cal.quarter_hours {
        let (value, status) = match q.span {
            Span::Gap => ("0000000000000.000", 2),
            Span::BothPasses => ("0000000000024.000", 0),
            Span::One => ("0000000000012.000", 0),
        };
        s.push_str(&format!(
            "20\t{}\t{}\t{value}\t{status}\n",
            d.format("%Y%m%d"),
            q.label
        ));
    }
    s.push_str("99\t0000000\t0000001\t000096\n");
    s
}

#[test]
fn e406_a_value_in_the_spring_gap_of_a_local_96_file_is_rejected() {
    let dialect = Dialect {
        time_convention: LabelConvention::Local96,
        ..Dialect::default()
    };
    let good = local_96(Region::Continent, day(2024, 3, 31));
    let r = read_with(&good, Region::Continent, &dialect);
    assert_eq!(
        r.diagnostics,
        vec![],
        "zeros with status 2 in the gap, header D"
    );
    let file = r.file.unwrap();
    assert_eq!(file.days[0].readings.len(), 96);
    // 92 real quarter-hours of 12 kW = 3 kWh each.
    assert_eq!(file.total_kwh(), Decimal::from(276));
    // Line 4 + 4 = 0115, the first label of the gap.
    let bad = replace_line(&good, 8, "20\t20240331\t0115\t0000000000001.000\t0");
    let r = read_with(&bad, Region::Continent, &dialect);
    assert!(r.file.is_none());
    let d = &r.diagnostics[0];
    assert_eq!(
        (d.code, d.line),
        (Code::GapNotZero, 8),
        "{:#?}",
        r.diagnostics
    );
    assert!(d.message.contains("expected 0, found 1"), "{}", d.message);
}

#[test]
fn a_local_96_autumn_day_holds_both_passes_of_the_repeated_hour() {
    let dialect = Dialect {
        time_convention: LabelConvention::Local96,
        ..Dialect::default()
    };
    let text = local_96(Region::Azores, day(2024, 10, 27));
    let r = read_with(&text, Region::Azores, &dialect);
    assert_eq!(r.diagnostics, vec![]);
    // 100 real quarter-hours of 3 kWh: the four folded labels carry 6 kWh each.
    assert_eq!(r.file.unwrap().total_kwh(), Decimal::from(300));
}

#[test]
fn e501_totals_that_do_not_match_are_rejected() {
    rejects(
        &july5().replace("000096\n", "000095\n"),
        Code::TotalsMismatch,
        100,
    );
    rejects(
        &july5().replace("99\t0000000", "99\t0000003"),
        Code::TotalsMismatch,
        100,
    );
    rejects(
        &july5().replace("\t0000001\t000096", "\t0000002\t000096"),
        Code::TotalsMismatch,
        100,
    );
}

#[test]
fn w703_zero_detail_services_is_only_a_warning() {
    let r = report(&july5().replace("\t0000001\t000096", "\t0000000\t000096"));
    assert!(r.file.is_some());
    assert_eq!(r.codes(), vec![Code::DetailServices]);
}

#[test]
fn e603_azores_name_date_must_equal_the_consumption_day() {
    let t = canonical(Region::Azores, day(2021, 7, 7)).replace("EDIS\t0099/1", "EDA\tMOBI");
    let dialect = Dialect::default();
    let name = OrdFileName::parse(
        "PT0014000100605384QR_20210708_01.txt",
        Region::Azores,
        Direction::Inbound,
    )
    .unwrap();
    let mut options = ReadOptions::new(Region::Azores, &dialect);
    options.name = Some(&name);
    let r = read(t.as_bytes(), &options);
    assert_eq!(r.codes(), vec![Code::NameDate]);
    let good = OrdFileName::parse(
        "PT0014000100605384QR_20210707_01.txt",
        Region::Azores,
        Direction::Inbound,
    )
    .unwrap();
    options.name = Some(&good);
    assert!(read(t.as_bytes(), &options).file.is_some());
}

#[test]
fn w701_definitive_status_with_missing_periods_is_a_warning() {
    let t = replace_line(&july5(), 4, "20\t20210705\t0015\t00000000000000.00\t2");
    let r = report(&t);
    assert_eq!(r.codes(), vec![Code::StatusInconsistent]);
    assert!(r.file.is_some());
}

#[test]
fn w702_previous_id_not_below_id_is_a_warning() {
    let t = replace_line(
        &july5(),
        1,
        "00\tEDIS\t0099/1\t0000000372\t0000000372\t00000001\t20210705\t20210705",
    );
    assert_eq!(codes(&t), vec!["W702"]);
}

#[test]
fn all_diagnostics_of_a_file_are_collected() {
    let mut t = replace_line(&july5(), 4, "20\t20210705\t0015\t-1\t0");
    t = replace_line(&t, 5, "20\t20210705\t0030\t0000000000012.000\t7");
    t = replace_line(&t, 2, "01\tD\tN\t06\tPOTENCIA\tK\t15M\t9");
    let got = codes(&t);
    for want in ["E205", "E206", "E207"] {
        assert!(got.contains(&want), "{want} missing from {got:?}");
    }
}

#[test]
fn liberal_input_crlf_bom_spaces_lowercase_is_accepted() {
    let t = july5()
        .replace('\t', "   ")
        .replace('\n', "\r\n")
        .replace("POTENCIA", "Potencia");
    let t = format!("\u{FEFF}{t}");
    let r = report(&t);
    assert_eq!(r.diagnostics, vec![]);
    assert_eq!(r.file.unwrap().total_kwh(), Decimal::from(288));
}

#[test]
fn semicolon_and_decimal_comma_dialect_is_accepted() {
    let dialect = Dialect {
        separator: Separator::Semicolon,
        decimal_comma: true,
        ..Dialect::default()
    };
    let t = july5().replace('\t', ";").replace("12.000", "12,000");
    let r = read_with(&t, Region::Continent, &dialect);
    assert_eq!(r.diagnostics, vec![]);
}

#[test]
fn energy_values_are_kwh_and_power_values_are_divided_by_four() {
    let t = july5().replace("POTENCIA", "ENERGIA");
    assert_eq!(report(&t).file.unwrap().total_kwh(), Decimal::from(1152));
}

#[test]
fn dst_days_of_2024_in_lisbon_and_the_azores_read_back() {
    for region in [Region::Continent, Region::Azores, Region::Madeira] {
        for (d, n) in [(day(2024, 3, 31), 92), (day(2024, 10, 27), 100)] {
            let t = canonical(region, d);
            let r = read_with(&t, region, &Dialect::default());
            assert_eq!(r.diagnostics, vec![], "{region} {d}");
            assert_eq!(r.file.unwrap().days[0].readings.len(), n);
        }
    }
    // The autumn day lists the repeated labels twice, in that order.
    let t = canonical(Region::Azores, day(2024, 10, 27));
    let labels: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| l.split('\t').nth(2).unwrap())
        .take(9)
        .collect();
    assert_eq!(
        labels,
        ["0015", "0030", "0045", "0100", "0015", "0030", "0045", "0100", "0115"]
    );
}

#[test]
fn a_96_period_file_on_the_autumn_day_is_missing_four_periods() {
    let t = july5().replace("20210705", "20241027");
    let r = report(&t);
    assert!(
        r.codes().contains(&Code::MissingPeriods),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn writer_output_is_the_canonical_form_and_reads_back() {
    let d = day(2021, 7, 5);
    let kw = |s: &str| Decimal::from_str(s).unwrap() / Decimal::from(4);
    let mut profile = DayProfile::zeros(d, 96);
    profile.readings[0] = Reading {
        kwh: kw("12.000"),
        status: ReadingStatus::Real,
    };
    profile.readings[4] = Reading {
        kwh: Decimal::ZERO,
        status: ReadingStatus::Missing,
    };
    let file = SglFile {
        header: Header {
            origin: "MOBI".into(),
            destination: "0099/1".into(),
            transmission_id: 372,
            previous_transmission_id: 371,
            delivery_points: 1,
            selection_start: d,
            selection_end: d,
        },
        criteria: Criteria {
            status: DataStatus::for_days(std::slice::from_ref(&profile)),
            interpolated: false,
            value_kind: ValueKind::Power,
        },
        days: vec![profile],
    };
    let bytes = write(&file, Region::Continent, &Dialect::default()).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "00\tMOBI\t0099/1\t0000000372\t0000000371\t00000001\t20210705\t20210705"
    );
    assert_eq!(lines[1], "01\tP\tN\t06\tPOTENCIA\tK\t15M\t0");
    assert_eq!(lines[2], "04\tA+");
    assert_eq!(lines[3], "20\t20210705\t0015\t0000000000012.000\t0");
    assert_eq!(lines[7], "20\t20210705\t0115\t0000000000000.000\t2");
    assert_eq!(lines[99], "99\t0000000\t0000001\t000096");
    let back = read(
        &bytes,
        &ReadOptions::new(Region::Continent, &Dialect::default()),
    );
    assert_eq!(back.diagnostics, vec![]);
    assert_eq!(back.file.unwrap(), file);
}

#[test]
fn writer_refuses_values_it_would_have_to_round() {
    let d = day(2021, 7, 5);
    let mut profile = DayProfile::zeros(d, 96);
    profile.readings[0].kwh = Decimal::from_str("0.0001").unwrap();
    let file = SglFile {
        header: Header {
            origin: "MOBI".into(),
            destination: "0099/1".into(),
            transmission_id: 1,
            previous_transmission_id: 0,
            delivery_points: 1,
            selection_start: d,
            selection_end: d,
        },
        criteria: Criteria {
            status: DataStatus::Definitive,
            interpolated: false,
            value_kind: ValueKind::Power,
        },
        days: vec![profile],
    };
    assert!(matches!(
        write(&file, Region::Continent, &Dialect::default()),
        Err(WriteError::Precision { index: 0, .. })
    ));
}

#[test]
fn a_month_of_readings_outside_the_selection_gives_at_most_the_diagnostic_cap() {
    // A 31-day file whose every 20 record carries a date the header does not select: thousands of
    // per-record problems, reported as MAX_DIAGNOSTICS and one line saying how many more.
    let mut s = String::from(
        "00\tEDIS\t0099/1\t0000000372\t0000000371\t00000001\t20241001\t20241031\n01\tD\tN\t06\tPOTENCIA\tK\t15M\t0\n04\tA+\n",
    );
    let december = DayCalendar::new(
        Region::Continent.time_zone(),
        day(2024, 12, 2),
        LabelConvention::Local,
    );
    let mut n = 0;
    for d in 1..=31 {
        for q in &december.quarter_hours {
            s.push_str(&format!(
                "20\t202412{d:02}\t{}\t0000000000012.000\t0\n",
                q.label
            ));
            n += 1;
        }
    }
    s.push_str(&format!("99\t0000000\t0000001\t{n:06}\n"));
    let r = report(&s);
    assert!(r.file.is_none());
    assert!(
        r.diagnostics.len() <= read::MAX_DIAGNOSTICS + 1,
        "{} diagnostics",
        r.diagnostics.len()
    );
    let last = r
        .diagnostics
        .iter()
        .find(|d| d.code == Code::TooManyErrors)
        .expect("a line saying how many more");
    assert!(last.message.contains("more problem(s)"), "{}", last.message);
    assert!(r
        .diagnostics
        .iter()
        .any(|d| d.code == Code::DateOutsideSelection));
}
