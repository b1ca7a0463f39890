//! The SGL writer: the canonical form of SGL-NOTES §3 (or an ORD's dialect), refusing values it cannot write exactly.

use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use thiserror::Error;

use super::dialect::{Dialect, LineEnding, Separator};
use super::{SglFile, ValueKind};
use crate::calendar::{DayCalendar, Span};
use crate::profile::{DayProfile, ReadingStatus};
use crate::region::Region;

/// Why a file cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteError {
    #[error("day {day}: the profile has {found} quarter-hours, the calendar {expected}")]
    ProfileLength {
        day: NaiveDate,
        expected: usize,
        found: usize,
    },
    #[error("day {day}, quarter-hour {index}: {value} cannot be written with {decimals} decimals without rounding")]
    Precision {
        day: NaiveDate,
        index: usize,
        value: Decimal,
        decimals: u32,
    },
    #[error("day {day}, quarter-hour {index}: negative value {value}")]
    Negative {
        day: NaiveDate,
        index: usize,
        value: Decimal,
    },
    #[error("days must be consecutive from the selection start {start} to its end {end}")]
    Selection { start: NaiveDate, end: NaiveDate },
    #[error("day {day}, quarter-hour {index}: {value} in the hour the clocks skipped (local-96 writes it as 0)")]
    GapNotZero {
        day: NaiveDate,
        index: usize,
        value: Decimal,
    },
}

/// Writes `file` for `region` in `dialect`. The totals record is computed, never taken from the caller.
pub fn write(file: &SglFile, region: Region, dialect: &Dialect) -> Result<Vec<u8>, WriteError> {
    let h = &file.header;
    let c = &file.criteria;
    let consecutive = file.days.first().map(|d| d.day) == Some(h.selection_start)
        && file.days.last().map(|d| d.day) == Some(h.selection_end)
        && file
            .days
            .windows(2)
            .all(|w| w[0].day.succ_opt() == Some(w[1].day));
    if !consecutive {
        return Err(WriteError::Selection {
            start: h.selection_start,
            end: h.selection_end,
        });
    }
    let sep = match dialect.separator {
        Separator::Whitespace => '\t',
        Separator::Semicolon => ';',
    };
    let eol = match dialect.line_ending {
        LineEnding::Lf => "\n",
        LineEnding::Crlf => "\r\n",
    };
    let mut out = String::with_capacity(64 + file.detail_count() * 40);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "00{sep}{}{sep}{}{sep}{:010}{sep}{:010}{sep}{:08}{sep}{}{sep}{}{eol}",
        h.origin,
        h.destination,
        h.transmission_id,
        h.previous_transmission_id,
        h.delivery_points,
        h.selection_start.format("%Y%m%d"),
        h.selection_end.format("%Y%m%d"),
    );
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "01{sep}{}{sep}{}{sep}06{sep}{}{sep}K{sep}15M{sep}0{eol}04{sep}A+{eol}",
        c.status.letter(),
        if c.interpolated { 'S' } else { 'N' },
        c.value_kind.keyword(),
    );
    let mut records = 0usize;
    for day in &file.days {
        records += write_day(&mut out, day, c.value_kind, region, dialect, (sep, eol))?;
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "99{sep}{:07}{sep}{:07}{sep}{:06}{eol}", 0, 1, records);
    Ok(out.into_bytes())
}

/// One day's 20 records, on the day's calendar in the dialect's convention; how many.
fn write_day(
    out: &mut String,
    day: &DayProfile,
    kind: ValueKind,
    region: Region,
    dialect: &Dialect,
    (sep, eol): (char, &str),
) -> Result<usize, WriteError> {
    let cal = DayCalendar::new(region.time_zone(), day.day, dialect.time_convention);
    if cal.len() != day.readings.len() {
        return Err(WriteError::ProfileLength {
            day: day.day,
            expected: cal.len(),
            found: day.readings.len(),
        });
    }
    let date = day.day.format("%Y%m%d").to_string();
    for (index, (qh, reading)) in cal.quarter_hours.iter().zip(&day.readings).enumerate() {
        // A label of the spring gap (local-96) holds no time: 0, status 2 (missing, not estimated).
        let status = if qh.span == Span::Gap {
            if !reading.kwh.is_zero() {
                return Err(WriteError::GapNotZero {
                    day: day.day,
                    index,
                    value: reading.kwh,
                });
            }
            ReadingStatus::Missing
        } else {
            reading.status
        };
        let text = value_text(day.day, index, reading.kwh, kind, dialect)?;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "20{sep}{date}{sep}{}{sep}{text}{sep}{}{eol}",
            qh.label,
            char::from(status.code())
        );
    }
    Ok(cal.len())
}

/// A reading of `kwh` as the file's value (kW for POTENCIA), refused rather than rounded.
fn value_text(
    day: NaiveDate,
    index: usize,
    kwh: Decimal,
    kind: ValueKind,
    dialect: &Dialect,
) -> Result<String, WriteError> {
    let value = kind.from_kwh(kwh).ok_or(WriteError::Precision {
        day,
        index,
        value: kwh,
        decimals: dialect.value_decimals,
    })?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(WriteError::Negative { day, index, value });
    }
    let rounded = value.round_dp(dialect.value_decimals);
    if rounded != value {
        return Err(WriteError::Precision {
            day,
            index,
            value,
            decimals: dialect.value_decimals,
        });
    }
    Ok(format_value(rounded.abs(), dialect))
}

/// `value` with exactly the dialect's decimals, zero-padded on the left to its width.
fn format_value(value: Decimal, dialect: &Dialect) -> String {
    let decimals = dialect.value_decimals as usize;
    let mut text = format!("{value:.decimals$}");
    if dialect.decimal_comma {
        text = text.replace('.', ",");
    }
    if text.len() < dialect.value_width {
        let mut padded = "0".repeat(dialect.value_width - text.len());
        padded.push_str(&text);
        text = padded;
    }
    text
}
