//! One registry CSV as the operators save it (a spreadsheet's BOM, quotes, CRLF): columns found by their header names, each data row with its line.

use std::collections::HashMap;

use super::RegistryError;

/// The columns of one registry file: the ones it must have, in the order a file without a
/// header line gives them, and the ones it may have.
pub(super) struct Columns {
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

/// One data row: its line and its fields, read through the header.
pub(super) struct Row<'t> {
    pub line: usize,
    record: &'t csv::StringRecord,
    index: &'t HashMap<&'static str, usize>,
}

impl Row<'_> {
    /// The trimmed value of `column` (empty when the row does not have it).
    pub fn get(&self, column: &str) -> &str {
        self.index
            .get(column)
            .and_then(|&i| self.record.get(i))
            .unwrap_or("")
    }
}

/// A registry file read: where each column is, and the data rows.
pub(super) struct Table {
    pub file: String,
    index: HashMap<&'static str, usize>,
    records: Vec<(usize, csv::StringRecord)>,
    /// The columns a data row has, as the header (or the file type) gives them.
    shape: Vec<String>,
}

impl Table {
    /// Reads `text` (`file` names it in errors). A first line with a column's name in it is the
    /// header (columns by name, in any order, optional ones
    /// allowed); without one the required columns are taken in their order. Blank lines and
    /// lines starting with `#` are skipped. Mistakes go to `errors`; `None` when the file cannot
    /// be read as this table at all.
    pub fn read(
        file: &str,
        text: &str,
        columns: &Columns,
        errors: &mut Vec<RegistryError>,
    ) -> Option<Table> {
        let err = |errors: &mut Vec<RegistryError>, line: usize, message: String| {
            errors.push(RegistryError {
                file: file.to_string(),
                line,
                message,
            })
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let mut records = Vec::new();
        for r in reader.records() {
            match r {
                Ok(rec) => {
                    let line = rec.position().map_or(0, line_of);
                    if rec.iter().all(str::is_empty) {
                        continue;
                    }
                    records.push((line, rec));
                }
                Err(e) => {
                    let line = e.position().map_or(0, line_of);
                    err(errors, line, format!("not readable as CSV: {e}"));
                    return None;
                }
            }
        }
        let expected = columns.required.join(",");
        let Some((first_line, first)) = records.first() else {
            return Some(Table {
                file: file.to_string(),
                index: HashMap::new(),
                records,
                shape: Vec::new(),
            });
        };
        let first_line = *first_line;
        if first.len() == 1 && first.get(0).is_some_and(|f| f.contains(';')) {
            err(
                errors,
                first_line,
                format!("fields are separated by `;`: expected commas ({expected}); save the sheet as \"CSV UTF-8 (comma delimited)\""),
            );
            return None;
        }
        let is_header = first.iter().any(|f| {
            columns
                .required
                .iter()
                .chain(columns.optional)
                .any(|c| c.eq_ignore_ascii_case(f))
        });
        let mut index = HashMap::new();
        if is_header {
            index = header_index(first, columns, &mut |m| err(errors, first_line, m))?;
        } else {
            index.extend(columns.required.iter().enumerate().map(|(i, c)| (*c, i)));
        }
        let shape = if is_header {
            first.iter().map(str::to_string).collect()
        } else {
            columns.required.iter().map(|c| c.to_string()).collect()
        };
        if is_header {
            records.remove(0);
        }
        Some(Table {
            file: file.to_string(),
            index,
            records,
            shape,
        })
    }

    /// The data rows whose field count is the header's; the others are reported once each.
    pub fn rows<'t>(&'t self, errors: &mut Vec<RegistryError>) -> Vec<Row<'t>> {
        let mut out = Vec::new();
        for (line, record) in &self.records {
            if record.len() != self.shape.len() {
                errors.push(RegistryError {
                    file: self.file.clone(),
                    line: *line,
                    message: format!(
                        "expected {} fields ({}), found {}",
                        self.shape.len(),
                        self.shape.join(","),
                        record.len()
                    ),
                });
                continue;
            }
            out.push(Row {
                line: *line,
                record,
                index: &self.index,
            });
        }
        out
    }
}

/// Where each column is in a header line; `None` (after saying why through `err`) when a column
/// is unknown, given twice or missing.
fn header_index(
    header: &csv::StringRecord,
    columns: &Columns,
    err: &mut dyn FnMut(String),
) -> Option<HashMap<&'static str, usize>> {
    let mut index = HashMap::new();
    let mut ok = true;
    for (i, name) in header.iter().enumerate() {
        let known = columns
            .required
            .iter()
            .chain(columns.optional)
            .find(|c| c.eq_ignore_ascii_case(name));
        match known {
            Some(c) if index.insert(*c, i).is_some() => {
                err(format!("column `{c}` appears twice"));
                ok = false;
            }
            Some(_) => {}
            None => {
                let mut all: Vec<&str> = columns.required.to_vec();
                all.extend(columns.optional);
                err(format!(
                    "unknown column `{name}`: expected {}",
                    all.join(", ")
                ));
                ok = false;
            }
        }
    }
    for c in columns.required {
        if !index.contains_key(c) {
            err(format!(
                "column `{c}` is missing from the header (expected {})",
                columns.required.join(",")
            ));
            ok = false;
        }
    }
    ok.then_some(index)
}

/// A CSV position's line, 1-based.
fn line_of(p: &csv::Position) -> usize {
    usize::try_from(p.line()).unwrap_or(usize::MAX)
}
