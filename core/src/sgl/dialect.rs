//! `Dialect`: how one ORD writes its files (separator, line ending, value format, time convention, size limit).

use serde::{Deserialize, Serialize};

use crate::calendar::LabelConvention;

/// How fields are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Separator {
    /// Reading: one TAB or any run of TABs and spaces. Writing: one TAB (the default).
    #[default]
    Whitespace,
    /// `;`, with blanks around a field ignored when reading.
    Semicolon,
}

/// Line ending written (both are accepted when reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

/// One ORD's file dialect; `Dialect::default()` is the canonical form of SGL-NOTES §3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dialect {
    pub separator: Separator,
    pub line_ending: LineEnding,
    /// Width of a written value, zero-padded on the left (17 in the rule's examples).
    pub value_width: usize,
    /// Decimals of a written value (3).
    pub value_decimals: u32,
    /// Whether values use a decimal comma instead of a point.
    pub decimal_comma: bool,
    /// How period labels map to time.
    pub time_convention: LabelConvention,
    /// Files larger than this are rejected without being parsed.
    pub max_file_bytes: u64,
    /// Longest selection (days) a header may declare.
    pub max_selection_days: u32,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            separator: Separator::Whitespace,
            line_ending: LineEnding::Lf,
            value_width: 17,
            value_decimals: 3,
            decimal_comma: false,
            time_convention: LabelConvention::Local,
            max_file_bytes: 16 * 1024 * 1024,
            max_selection_days: 366,
        }
    }
}

impl Dialect {
    pub fn decimal_separator(&self) -> u8 {
        if self.decimal_comma {
            b','
        } else {
            b'.'
        }
    }
}
