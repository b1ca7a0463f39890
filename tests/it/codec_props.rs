//! Property tests of the codec: writer → reader round-trips (DST days of all regions included),
//! file names parse ∘ format = identity, and no input ever makes the reader panic.

use chrono::NaiveDate;
use egme_ord_core::calendar::{DayCalendar, LabelConvention, Span};
use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::{Direction, NTransm, OrdFileName, PartyCode, TariffCycle};
use egme_ord_core::profile::{DayProfile, Reading, ReadingStatus};
use egme_ord_core::region::Region;
use egme_ord_core::sgl::{
    self, Criteria, DataStatus, Dialect, Header, LineEnding, ReadOptions, Separator, SglFile,
    ValueKind,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn region() -> impl Strategy<Value = Region> {
    prop_oneof![
        Just(Region::Continent),
        Just(Region::Azores),
        Just(Region::Madeira)
    ]
}

/// Days from 2019 to 2031, with the DST days of 2024 drawn often.
fn day() -> impl Strategy<Value = NaiveDate> {
    let base = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
    prop_oneof![
        (0u64..4700).prop_map(move |n| base + chrono::Days::new(n)),
        Just(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()),
        Just(NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()),
        Just(NaiveDate::from_ymd_opt(2025, 3, 30).unwrap()),
        Just(NaiveDate::from_ymd_opt(2025, 10, 26).unwrap()),
    ]
}

/// The DST days of 2024 and 2025 (the Azores change at the same instants, an hour earlier in
/// local time), or the day before one.
fn dst_day() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        Just(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()),
        Just(NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()),
        Just(NaiveDate::from_ymd_opt(2025, 3, 29).unwrap()),
        Just(NaiveDate::from_ymd_opt(2025, 10, 26).unwrap()),
    ]
}

fn status() -> impl Strategy<Value = ReadingStatus> {
    prop_oneof![8 => Just(ReadingStatus::Real), 1 => Just(ReadingStatus::Estimated), 1 => Just(ReadingStatus::Missing)]
}

fn dialect() -> impl Strategy<Value = Dialect> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(2u32), Just(3u32)],
    )
        .prop_map(|(semi, crlf, comma, decimals)| Dialect {
            separator: if semi {
                Separator::Semicolon
            } else {
                Separator::Whitespace
            },
            line_ending: if crlf {
                LineEnding::Crlf
            } else {
                LineEnding::Lf
            },
            decimal_comma: comma,
            value_decimals: decimals,
            ..Dialect::default()
        })
}

/// A file of 1–3 consecutive days whose values are writable exactly in `decimals`.
fn file_for(
    region: Region,
    first: NaiveDate,
    days: usize,
    kind: ValueKind,
    (decimals, convention): (u32, LabelConvention),
    seeds: &[(u32, ReadingStatus)],
) -> SglFile {
    let tz = region.time_zone();
    let mut profiles = Vec::new();
    let mut k = 0usize;
    for d in first.iter_days().take(days) {
        let cal = DayCalendar::new(tz, d, convention);
        let readings = cal
            .quarter_hours
            .iter()
            .map(|q| {
                let (raw, mut status) = seeds[k % seeds.len()];
                k += 1;
                if q.span == Span::Gap {
                    // A label of the spring gap (local-96): it holds no time.
                    status = ReadingStatus::Missing;
                }
                let value = if status == ReadingStatus::Missing {
                    Decimal::ZERO
                } else {
                    Decimal::new(i64::from(raw), decimals)
                };
                Reading {
                    kwh: kind.to_kwh(value),
                    status,
                }
            })
            .collect();
        profiles.push(DayProfile { day: d, readings });
    }
    let last = profiles.last().map(|p| p.day).unwrap_or(first);
    SglFile {
        header: Header {
            origin: "MOBI".into(),
            destination: "EDA".into(),
            transmission_id: 7,
            previous_transmission_id: 6,
            delivery_points: 1,
            selection_start: first,
            selection_end: last,
        },
        criteria: Criteria {
            status: DataStatus::for_days(&profiles),
            interpolated: false,
            value_kind: kind,
        },
        days: profiles,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn writer_then_reader_gives_the_same_file(
        region in region(),
        first in day(),
        days in 1usize..=3,
        energy in any::<bool>(),
        dialect in dialect(),
        seeds in prop::collection::vec((0u32..2_000_000, status()), 1..50),
    ) {
        let kind = if energy { ValueKind::Energy } else { ValueKind::Power };
        let file = file_for(region, first, days, kind, (dialect.value_decimals, LabelConvention::Local), &seeds);
        let bytes = sgl::write(&file, region, &dialect).expect("writable");
        let report = sgl::read(&bytes, &ReadOptions::new(region, &dialect));
        prop_assert_eq!(&report.diagnostics, &vec![]);
        prop_assert_eq!(report.file.as_ref(), Some(&file));
    }

    #[test]
    fn local_96_writer_then_reader_gives_the_same_file_on_the_dst_days_of_every_zone(
        region in region(),
        first in dst_day(),
        days in 1usize..=3,
        energy in any::<bool>(),
        dialect in dialect(),
        seeds in prop::collection::vec((0u32..2_000_000, status()), 1..50),
    ) {
        let dialect = Dialect { time_convention: LabelConvention::Local96, ..dialect };
        let kind = if energy { ValueKind::Energy } else { ValueKind::Power };
        let file = file_for(region, first, days, kind, (dialect.value_decimals, LabelConvention::Local96), &seeds);
        prop_assert!(file.days.iter().all(|d| d.readings.len() == 96));
        let bytes = sgl::write(&file, region, &dialect).expect("writable");
        let report = sgl::read(&bytes, &ReadOptions::new(region, &dialect));
        prop_assert_eq!(&report.diagnostics, &vec![]);
        prop_assert_eq!(report.file.as_ref(), Some(&file));
    }

    #[test]
    fn outbound_names_format_then_parse_to_the_same_value(
        region in region(),
        supplier_digits in 0u8..100,
        letters in "[A-Z]{4}",
        tariff in 0usize..4,
        distributor in 0u16..10000,
        number in 0u64..1_000_000_000_000,
        date in day(),
        id in 0u64..10_000_000_000,
    ) {
        let cpe = Cpe::from_parts(distributor, number).unwrap();
        let supplier = if region == Region::Continent { format!("{supplier_digits:02}") } else { letters };
        let name = OrdFileName::outbound(region, &supplier, TariffCycle::ALL[tariff], cpe, date, id);
        let text = name.to_string();
        prop_assert_eq!(OrdFileName::parse(&text, region, Direction::Outbound), Ok(name));
    }

    #[test]
    fn inbound_names_parse_then_format_to_the_same_text(
        region in region(),
        code in "[0-9]{1,6}",
        distributor in 0u16..10000,
        number in 0u64..1_000_000_000_000,
        date in day(),
        ntransm in "[0-9]{1,10}",
        no_extension in any::<bool>(),
    ) {
        let cpe = Cpe::from_parts(distributor, number).unwrap();
        let text = match region {
            Region::Azores => format!("{cpe}_{}_{ntransm}.txt", date.format("%Y%m%d")),
            Region::Madeira if no_extension => format!("{code}PE{cpe}_{}_{ntransm}", date.format("%Y%m%d")),
            _ => format!("{code}PE{cpe}_{}_{ntransm}.sgl", date.format("%Y%m%d")),
        };
        let parsed = OrdFileName::parse(&text, region, Direction::Inbound);
        prop_assert!(parsed.is_ok(), "{:?}", parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.to_string(), text);
        prop_assert_eq!(parsed.cpe, cpe);
        prop_assert_eq!(parsed.ntransm, NTransm { value: ntransm.parse().unwrap(), width: ntransm.len() as u8 });
        if region != Region::Azores {
            prop_assert_eq!(parsed.party, PartyCode::OrdRequest(code));
        }
    }

    #[test]
    fn arbitrary_bytes_give_diagnostics_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), region in region()) {
        let dialect = Dialect::default();
        let report = sgl::read(&bytes, &ReadOptions::new(region, &dialect));
        // A Report carries a file if and only if it has no error, in both directions.
        prop_assert_eq!(report.file.is_some(), !report.has_errors());
        prop_assert_eq!(report.has_errors(), report.diagnostics.iter().any(|d| d.is_error()));
    }

    #[test]
    fn arbitrary_names_never_panic(name in "\\PC{0,80}", region in region()) {
        let _ = OrdFileName::parse_any(&name, region);
        let _ = OrdFileName::parse(&name, region, Direction::Inbound);
        let _ = OrdFileName::infer_region(&name);
    }

    #[test]
    fn mutations_of_valid_files_give_errors_or_a_valid_file_never_a_panic(
        region in region(),
        first in day(),
        seeds in prop::collection::vec((0u32..2_000_000, status()), 1..20),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..5, any::<u8>()), 1..8),
    ) {
        let dialect = Dialect::default();
        let file = file_for(region, first, 1, ValueKind::Power, (3, LabelConvention::Local), &seeds);
        let mut bytes = sgl::write(&file, region, &dialect).expect("writable");
        for (at, op, byte) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                2 => bytes.insert(i, byte),
                3 => bytes.truncate(i),
                _ => { let dup: Vec<u8> = bytes[i..].iter().take(40).copied().collect(); bytes.splice(i..i, dup); }
            }
        }
        let report = sgl::read(&bytes, &ReadOptions::new(region, &dialect));
        // Either a clean file or at least one error: never a file with errors, never a panic.
        prop_assert_eq!(report.file.is_some(), !report.has_errors());
        if let Some(f) = report.file {
            for d in &f.days {
                prop_assert_eq!(d.readings.len(), DayCalendar::new(region.time_zone(), d.day, LabelConvention::Local).len());
            }
        }
    }
}
