//! Field-level grammar of SGL lines, written with nom: field splitting, numbers, dates, values.

use chrono::NaiveDate;
use nom::bytes::complete::{take_till1, take_while, take_while_m_n};
use nom::character::complete::{char, digit0, digit1, one_of};
use nom::combinator::{all_consuming, opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;
use rust_decimal::Decimal;

use super::dialect::Separator;

/// A field and its 1-based column in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub column: usize,
    pub text: &'a str,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn blanks(input: &str) -> IResult<&str, &str> {
    take_while(is_blank)(input)
}

fn word(input: &str) -> IResult<&str, &str> {
    take_till1(is_blank)(input)
}

fn semicolon_field(input: &str) -> IResult<&str, &str> {
    take_while(|c| c != ';')(input)
}

/// Splits a line into fields, clearing `out` first.
pub fn split_fields<'a>(line: &'a str, separator: Separator, out: &mut Vec<Field<'a>>) {
    out.clear();
    let column = |rest: &str| line.len() - rest.len() + 1;
    match separator {
        Separator::Whitespace => {
            let mut rest = line;
            while let Ok((after_blanks, _)) = blanks(rest) {
                rest = after_blanks;
                let Ok((after, text)) = word(rest) else {
                    break;
                };
                out.push(Field {
                    column: column(rest),
                    text,
                });
                rest = after;
            }
        }
        Separator::Semicolon => {
            let mut rest = line;
            while let Ok((after, raw)) = semicolon_field(rest) {
                let leading = raw.len() - raw.trim_start_matches(is_blank).len();
                out.push(Field {
                    column: column(rest) + leading,
                    text: raw.trim_matches(is_blank),
                });
                match after.strip_prefix(';') {
                    Some(next) => rest = next,
                    None => break,
                }
            }
            // A trailing separator leaves one empty field: ignore it.
            if out.len() > 1 && out.last().is_some_and(|f| f.text.is_empty()) {
                out.pop();
            }
        }
    }
}

/// An unsigned integer of any padding (at most 19 digits).
pub fn unsigned(text: &str) -> Option<u64> {
    let (_, digits) = all_consuming(digit1::<&str, ()>)(text).ok()?;
    let significant = digits.trim_start_matches('0');
    if significant.len() > 19 {
        return None;
    }
    significant.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A date `YYYYMMDD`.
pub fn date(text: &str) -> Option<NaiveDate> {
    let digits = |n| take_while_m_n::<_, &str, ()>(n, n, |c: char| c.is_ascii_digit());
    let (_, (y, m, d)) = all_consuming(tuple((digits(4), digits(2), digits(2))))(text).ok()?;
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Why a value field is not a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    Malformed,
    Negative,
    TooPrecise,
}

/// Most decimals accepted in a value (exactness of kW → kWh needs headroom below Decimal's 28).
pub const MAX_VALUE_DECIMALS: usize = 20;

/// A decimal value, e.g. `0000000000012.000`, with `.` or `,` as decimal separator.
pub fn value(text: &str, decimal_separator: u8) -> Result<Decimal, ValueError> {
    let sep = char::from(decimal_separator);
    let number = recognize(tuple((
        opt(one_of::<&str, _, ()>("+-")),
        digit0,
        opt(pair(char(sep), digit0)),
    )));
    let (_, matched) = all_consuming(number)(text).map_err(|_| ValueError::Malformed)?;
    let (negative, unsigned_text) = match matched.as_bytes().first() {
        Some(b'-') => (true, &matched[1..]),
        Some(b'+') => (false, &matched[1..]),
        _ => (false, matched),
    };
    let (int_part, frac_part) = match unsigned_text.split_once(sep) {
        Some((i, f)) => (i, f),
        None => (unsigned_text, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(ValueError::Malformed);
    }
    if frac_part.len() > MAX_VALUE_DECIMALS {
        return Err(ValueError::TooPrecise);
    }
    let int_significant = int_part.trim_start_matches('0');
    if int_significant.len() + frac_part.len() > 28 {
        return Err(ValueError::TooPrecise);
    }
    let mut mantissa: i128 = 0;
    for b in int_significant.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    if negative && mantissa != 0 {
        return Err(ValueError::Negative);
    }
    Decimal::try_from_i128_with_scale(mantissa, frac_part.len() as u32)
        .map_err(|_| ValueError::TooPrecise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn texts(line: &str, sep: Separator) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        split_fields(line, sep, &mut out);
        out.iter().map(|f| (f.column, f.text)).collect()
    }

    #[test]
    fn whitespace_fields_accept_tabs_and_runs_of_spaces() {
        assert_eq!(
            texts("20\t20210705  0015 \t 12.000\t0  ", Separator::Whitespace),
            vec![
                (1, "20"),
                (4, "20210705"),
                (14, "0015"),
                (21, "12.000"),
                (28, "0")
            ]
        );
        assert!(texts("   ", Separator::Whitespace).is_empty());
    }

    #[test]
    fn semicolon_fields_trim_blanks_and_a_trailing_separator() {
        assert_eq!(
            texts("20; 20210705 ;0015;12,000;0;", Separator::Semicolon),
            vec![
                (1, "20"),
                (5, "20210705"),
                (15, "0015"),
                (20, "12,000"),
                (27, "0")
            ]
        );
    }

    #[test]
    fn values_parse_by_value_whatever_the_padding() {
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(value("0000000000012.000", b'.'), Ok(d("12.000")));
        assert_eq!(value("00000000000000.00", b'.'), Ok(d("0")));
        assert_eq!(value("0000000000000.020", b'.'), Ok(d("0.020")));
        assert_eq!(value("12,5", b','), Ok(d("12.5")));
        assert_eq!(value(".5", b'.'), Ok(d("0.5")));
        assert_eq!(value("-0.000", b'.'), Ok(d("0")));
        assert_eq!(value("-1.000", b'.'), Err(ValueError::Negative));
        for bad in ["", ".", "1.2.3", "1e3", "12,5", "abc", "1 2"] {
            assert_eq!(value(bad, b'.'), Err(ValueError::Malformed), "{bad:?}");
        }
        assert_eq!(
            value("0.000000000000000000000000000001", b'.'),
            Err(ValueError::TooPrecise)
        );
        assert_eq!(
            value("99999999999999999999999999999", b'.'),
            Err(ValueError::TooPrecise)
        );
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(unsigned("0000000372"), Some(372));
        assert_eq!(unsigned("00000000000000000000000000001"), Some(1));
        assert_eq!(unsigned("99999999999999999999"), None);
        assert_eq!(unsigned("12a"), None);
        assert_eq!(unsigned(""), None);
        assert_eq!(date("20210705"), NaiveDate::from_ymd_opt(2021, 7, 5));
        assert_eq!(date("20210230"), None);
        assert_eq!(date("2021075"), None);
    }
}
