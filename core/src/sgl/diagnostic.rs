//! Diagnostics of the SGL codec: stable codes, severity, line and column, expected vs found.

use std::fmt;

use serde::Serialize;

/// Error or warning. Any error makes a file invalid; warnings are reported and the file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $slug:literal, $severity:ident, $doc:literal; )*) => {
        /// Every diagnostic the codec can give. The codes are stable: operators grep for them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( #[doc = $doc] $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            /// The stable code, e.g. `E205`.
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code,)* } }
            /// A short kebab-case name, e.g. `negative-value`.
            pub fn slug(self) -> &'static str { match self { $(Code::$variant => $slug,)* } }
            pub fn severity(self) -> Severity { match self { $(Code::$variant => Severity::$severity,)* } }
            /// One sentence: what the code means.
            pub fn description(self) -> &'static str { match self { $(Code::$variant => $doc,)* } }
        }
    };
}

codes! {
    BadByte = "E001", "bad-byte", Error, "A byte that is not printable ASCII (or TAB) in a line.";
    TooLarge = "E002", "too-large", Error, "The file is larger than the configured limit.";
    Empty = "E003", "empty", Error, "The file has no records.";
    TooManyErrors = "E005", "too-many-errors", Error, "More errors than the limit (100): checking stopped there and the rest of the file was not read.";
    BlankLine = "E004", "blank-line", Error, "A blank line before the last record (blank lines are allowed only at the end).";
    UnknownRecord = "E101", "unknown-record", Error, "A record type other than 00, 01, 04, 20, 99.";
    RecordOrder = "E102", "record-order", Error, "Records out of the order 00, 01, 04, 20…, 99.";
    MissingRecord = "E103", "missing-record", Error, "A required record (00, 01, 04, at least one 20, 99) is absent.";
    DuplicateRecord = "E104", "duplicate-record", Error, "A record that must appear once appears again.";
    FieldCount = "E105", "field-count", Error, "A record with the wrong number of fields.";
    BadNumber = "E201", "bad-number", Error, "A numeric field (id, count) that is not an unsigned integer.";
    BadDate = "E202", "bad-date", Error, "A date that is not a valid YYYYMMDD.";
    BadPeriod = "E203", "bad-period", Error, "A period that is not HHMM between 0015 and 2400.";
    BadValue = "E204", "bad-value", Error, "A value that is not a decimal number in the ORD's format.";
    NegativeValue = "E205", "negative-value", Error, "A negative value.";
    BadStatus = "E206", "bad-status", Error, "A reading status other than 0, 1, 2.";
    BadFixedField = "E207", "bad-fixed-field", Error, "A fixed field of 01 or 04 with another value (P/D, S/N, 06, POTENCIA/ENERGIA, K, 15M, 0, A+).";
    SelectionRange = "E301", "selection-range", Error, "The header's selection ends before it starts, or spans more than the limit.";
    DeliveryPoints = "E302", "delivery-points", Error, "The header's number of delivery points is not 1.";
    Entity = "E303", "entity", Error, "The header's origin or destination entity is not the one configured for this ORD.";
    DateOutsideSelection = "E401", "date-outside-selection", Error, "A 20 record dated outside the header's selection.";
    PeriodNotInDay = "E402", "period-not-in-day", Error, "A period label that does not exist on that day (e.g. 0130 on the spring DST day).";
    DuplicatePeriod = "E403", "duplicate-period", Error, "A period given twice (beyond the autumn DST repetition).";
    PeriodOrder = "E404", "period-order", Error, "Dates or periods out of chronological order.";
    MissingPeriods = "E405", "missing-periods", Error, "Quarter-hours of a selected day without a 20 record.";
    GapNotZero = "E406", "gap-not-zero", Error, "With `time_convention = \"local-96\"`: a value other than zero on a label of the spring DST gap (a local time that does not exist).";
    TotalsMismatch = "E501", "totals-mismatch", Error, "The 99 record's counts do not match the file.";
    NamePattern = "E601", "name-pattern", Error, "The file name fits none of the ORD's patterns.";
    NameCpe = "E602", "name-cpe", Error, "The CPE in the file name is malformed or has wrong check letters.";
    NotAFile = "E604", "not-a-file", Error, "A remote entry that is a symbolic link, or whose name is not UTF-8: not followed, not read.";
    NameDate = "E603", "name-date", Error, "An Azores name's consumption date differs from the header's selection.";
    StatusInconsistent = "W701", "status-inconsistent", Warning, "The 01 record says D (definitive) but some periods are missing or estimated.";
    TransmissionIds = "W702", "transmission-ids", Warning, "The previous transmission id is not lower than the transmission id.";
    DetailServices = "W703", "detail-services", Warning, "The 99 record counts 0 detail services per 20 record (1 expected; seen in the rule's example).";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One finding about a file. `line` and `column` are 1-based; line 0 means the file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub line: u32,
    pub column: u32,
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn new(line: usize, column: usize, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            code,
            severity: code.severity(),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Compiler style: `FILE:LINE:COL: error[CODE]: message`.
    pub fn render(&self, file: &str) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{file}:{}:{}: {level}[{}]: {}",
            self.line, self.column, self.code, self.message
        )
    }
}

/// Shows a field's text safely in a message (shortened, control characters escaped).
pub fn show(text: &str) -> String {
    const MAX: usize = 40;
    let mut shown: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    format!("{shown:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_severity_matches_prefix() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let want = if code.as_str().starts_with('E') {
                Severity::Error
            } else {
                Severity::Warning
            };
            assert_eq!(code.severity(), want, "{code}");
        }
    }

    #[test]
    fn every_code_is_documented_in_docs_diagnostics() {
        let doc = include_str!("../../../docs/DIAGNOSTICS.md");
        for code in Code::ALL {
            let row = format!("| `{}` | `{}` |", code.as_str(), code.slug());
            assert!(doc.contains(&row), "docs/DIAGNOSTICS.md lacks {row}");
        }
    }

    #[test]
    fn renders_in_compiler_style() {
        let d = Diagnostic::new(
            7,
            23,
            Code::NegativeValue,
            "value must not be negative, found \"-1.000\"",
        );
        assert_eq!(
            d.render("a.sgl"),
            "a.sgl:7:23: error[E205]: value must not be negative, found \"-1.000\""
        );
    }
}
