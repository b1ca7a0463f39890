//! The operators' registry: EVSE → CPE, CPE → ORD, CEME → supplier codes and tariff cycle, per-CPE overrides.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::ord_name::OrdName;
use chrono::NaiveDate;

use thiserror::Error;

use crate::cpe::Cpe;
use crate::filename::TariffCycle;
use crate::mobility::{CemeId, Place};
use crate::region::Region;

/// A registry mistake, with the file and line it is on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {message}")]
pub struct RegistryError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A CEME's codes towards the ORDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CemeEntry {
    /// 2-digit CSE code used by E-Redes (mainland).
    pub cse_code: Option<String>,
    /// 4-letter code used by EDA and EEM (islands).
    pub island_code: Option<String>,
    pub tariff_cycle: TariffCycle,
}

/// The supplier a file is for: its code towards the ORD and the tariff cycle.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SupplierKey {
    pub code: String,
    pub tariff: TariffCycle,
}

impl fmt::Display for SupplierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code, self.tariff.code())
    }
}

/// The texts of the registry files, each with the name used in errors.
#[derive(Debug, Clone, Default)]
pub struct RegistryTexts<'a> {
    pub evses: (&'a str, &'a str),
    pub cpes: (&'a str, &'a str),
    pub cemes: (&'a str, &'a str),
    pub overrides: Option<(&'a str, &'a str)>,
}

/// The loaded, validated registry: every key's rows over time (at most one in force on a day),
/// looked up for a consumption day.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    evses: HashMap<String, Timeline<Cpe>>,
    cpes: BTreeMap<Cpe, Timeline<String>>,
    cemes: HashMap<CemeId, Timeline<CemeEntry>>,
    overrides: HashMap<(Cpe, CemeId), Timeline<TariffCycle>>,
    /// What is allowed but likely a mistake (a key without a row on some days it is used).
    warnings: Vec<RegistryError>,
    /// A digest of the files it was read from (set by the shell): a changed registry re-nets.
    digest: String,
}

mod dated;
mod table;

use dated::Timeline;
pub use dated::Validity;
use table::{Columns, Row, Table};

/// The columns every registry file may add: the days a row is in force.
const DATES: &[&str] = &["valid_from", "valid_to"];

const CPES: Columns = Columns {
    required: &["cpe", "ord"],
    optional: DATES,
};
const EVSES: Columns = Columns {
    required: &["evse", "cpe"],
    optional: DATES,
};
const CEMES: Columns = Columns {
    required: &["ceme", "cse_code", "island_code", "tariff_cycle"],
    optional: DATES,
};
const OVERRIDES: Columns = Columns {
    required: &["cpe", "ceme", "tariff_cycle"],
    optional: DATES,
};

/// A row's validity, or the mistake (reported at its line).
fn validity_of(row: &Row<'_>) -> Result<Validity, String> {
    Validity::parse(row.get("valid_from"), row.get("valid_to"))
}

/// The message for a row whose days overlap an earlier row of the same key.
fn overlap(what: &str, validity: &Validity, other_line: usize) -> String {
    if *validity == Validity::ALWAYS {
        format!("{what} is listed twice (also on line {other_line}); rows of one key need valid_from/valid_to that do not overlap")
    } else {
        format!("{what} is listed twice for overlapping days ({validity} overlaps line {other_line}); rows of one key need valid_from/valid_to that do not overlap")
    }
}

/// The mistakes of one file, each with its line.
struct Mistakes<'e> {
    file: String,
    errors: &'e mut Vec<RegistryError>,
}

impl Mistakes<'_> {
    fn at(&mut self, line: usize, message: String) {
        self.errors.push(RegistryError {
            file: self.file.clone(),
            line,
            message,
        });
    }
}

/// What the files parsed so far hold, to check references against and to keep one mistake from
/// being reported again by the rows that refer to it.
#[derive(Default)]
struct Refused {
    cpes: HashSet<String>,
    cemes: HashSet<String>,
    /// A whole file could not be read: nothing is reported missing from it.
    all_cpes: bool,
    all_cemes: bool,
}

impl Registry {
    /// Parses and validates all files; every mistake is reported once, not just the first (a row
    /// that refers to a row refused earlier is not reported again).
    pub fn parse(
        texts: &RegistryTexts<'_>,
        known_ords: &[&str],
    ) -> Result<Registry, Vec<RegistryError>> {
        let mut errors = Vec::new();
        let mut reg = Registry::default();
        let mut refused = Refused::default();
        reg.read_cpes(texts.cpes, known_ords, &mut refused, &mut errors);
        reg.read_evses(texts.evses, texts.cpes.0, &refused, &mut errors);
        reg.read_cemes(texts.cemes, &mut refused, &mut errors);
        if let Some(overrides) = texts.overrides {
            reg.read_overrides(overrides, texts.cemes.0, &refused, &mut errors);
        }
        reg.warn_gaps(texts);
        if errors.is_empty() {
            Ok(reg)
        } else {
            Err(errors)
        }
    }

    fn read_cpes(
        &mut self,
        (file, text): (&str, &str),
        known_ords: &[&str],
        refused: &mut Refused,
        errors: &mut Vec<RegistryError>,
    ) {
        let Some(table) = Table::read(file, text, &CPES, errors) else {
            refused.all_cpes = true;
            return;
        };
        let rows = table.rows(errors);
        let mut m = Mistakes {
            file: file.to_string(),
            errors,
        };
        for row in rows {
            let (text, ord) = (row.get("cpe"), row.get("ord"));
            let cpe = match Cpe::parse(text) {
                Ok(cpe) => cpe,
                Err(e) => {
                    m.at(row.line, e.to_string());
                    refused.cpes.insert(text.to_string());
                    continue;
                }
            };
            let validity = match validity_of(&row) {
                Ok(v) => v,
                Err(e) => {
                    m.at(row.line, e);
                    refused.cpes.insert(text.to_string());
                    continue;
                }
            };
            if !known_ords.contains(&ord) {
                m.at(
                    row.line,
                    format!(
                        "unknown ORD {ord:?}: expected one of {}",
                        known_ords.join(", ")
                    ),
                );
                refused.cpes.insert(text.to_string());
            } else if let Err(other) =
                self.cpes
                    .entry(cpe)
                    .or_default()
                    .insert(validity, row.line, ord.to_string())
            {
                m.at(row.line, overlap(&format!("CPE {cpe}"), &validity, other));
            }
        }
    }

    fn read_evses(
        &mut self,
        (file, text): (&str, &str),
        cpes_file: &str,
        refused: &Refused,
        errors: &mut Vec<RegistryError>,
    ) {
        let Some(table) = Table::read(file, text, &EVSES, errors) else {
            return;
        };
        let rows = table.rows(errors);
        let mut m = Mistakes {
            file: file.to_string(),
            errors,
        };
        for row in rows {
            let (evse, text) = (row.get("evse"), row.get("cpe"));
            if evse.is_empty() {
                m.at(
                    row.line,
                    "EVSE: expected an id, found an empty field".into(),
                );
                continue;
            }
            let cpe = match Cpe::parse(text) {
                Ok(cpe) => cpe,
                Err(e) => {
                    m.at(row.line, e.to_string());
                    continue;
                }
            };
            let validity = match validity_of(&row) {
                Ok(v) => v,
                Err(e) => {
                    m.at(row.line, e);
                    continue;
                }
            };
            match self.cpes.get(&cpe) {
                None if !refused.all_cpes && !refused.cpes.contains(text) => {
                    m.at(row.line, format!("CPE {cpe} is not in {cpes_file}"));
                }
                Some(rows) => {
                    if let Some(day) = rows.first_uncovered(&validity, |_| true) {
                        self.warnings.push(RegistryError {
                            file: file.to_string(),
                            line: row.line,
                            message: format!(
                                "EVSE {evse:?} points to CPE {cpe}, which {cpes_file} does not list {}: sessions there on those days are unmapped",
                                uncovered(day)
                            ),
                        });
                    }
                }
                None => {}
            }
            if let Err(other) = self
                .evses
                .entry(evse.to_string())
                .or_default()
                .insert(validity, row.line, cpe)
            {
                m.at(
                    row.line,
                    overlap(&format!("EVSE {evse:?}"), &validity, other),
                );
            }
        }
    }

    fn read_cemes(
        &mut self,
        (file, text): (&str, &str),
        refused: &mut Refused,
        errors: &mut Vec<RegistryError>,
    ) {
        let Some(table) = Table::read(file, text, &CEMES, errors) else {
            refused.all_cemes = true;
            return;
        };
        let rows = table.rows(errors);
        let mut m = Mistakes {
            file: file.to_string(),
            errors,
        };
        for row in rows {
            let text = row.get("ceme");
            let Some(ceme) = CemeId::parse(text) else {
                m.at(
                    row.line,
                    format!("CEME: expected CC-PPP (country + party id), found {text:?}"),
                );
                refused.cemes.insert(text.to_string());
                continue;
            };
            let before = m.errors.len();
            let cse = Some(row.get("cse_code")).filter(|c| !c.is_empty());
            if let Some(c) = cse {
                if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_digit()) {
                    m.at(
                        row.line,
                        format!("CSE code: expected 2 digits, found {c:?}"),
                    );
                }
            }
            let island = Some(row.get("island_code")).filter(|c| !c.is_empty());
            if let Some(c) = island {
                if c.len() != 4 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    m.at(
                        row.line,
                        format!("island code: expected 4 capital letters, found {c:?}"),
                    );
                }
            }
            let tariff = row.get("tariff_cycle");
            let Some(tariff_cycle) = TariffCycle::from_code(tariff) else {
                m.at(
                    row.line,
                    format!("tariff cycle: expected 01, 02, 03 or 04, found {tariff:?}"),
                );
                refused.cemes.insert(text.to_string());
                continue;
            };
            let validity = match validity_of(&row) {
                Ok(v) => v,
                Err(e) => {
                    m.at(row.line, e);
                    refused.cemes.insert(text.to_string());
                    continue;
                }
            };
            if m.errors.len() > before {
                refused.cemes.insert(text.to_string());
            }
            let entry = CemeEntry {
                cse_code: cse.map(str::to_string),
                island_code: island.map(str::to_string),
                tariff_cycle,
            };
            if let Err(other) = self
                .cemes
                .entry(ceme.clone())
                .or_default()
                .insert(validity, row.line, entry)
            {
                m.at(row.line, overlap(&format!("CEME {ceme}"), &validity, other));
            }
        }
    }

    fn read_overrides(
        &mut self,
        (file, text): (&str, &str),
        cemes_file: &str,
        refused: &Refused,
        errors: &mut Vec<RegistryError>,
    ) {
        let Some(table) = Table::read(file, text, &OVERRIDES, errors) else {
            return;
        };
        let rows = table.rows(errors);
        let mut m = Mistakes {
            file: file.to_string(),
            errors,
        };
        for row in rows {
            let (cpe, ceme, tariff) = (row.get("cpe"), row.get("ceme"), row.get("tariff_cycle"));
            let cpe = match Cpe::parse(cpe) {
                Ok(cpe) => cpe,
                Err(e) => {
                    m.at(row.line, e.to_string());
                    continue;
                }
            };
            let Some(ceme_id) = CemeId::parse(ceme) else {
                m.at(row.line, format!("CEME: expected CC-PPP, found {ceme:?}"));
                continue;
            };
            let Some(t) = TariffCycle::from_code(tariff) else {
                m.at(
                    row.line,
                    format!("tariff cycle: expected 01..04, found {tariff:?}"),
                );
                continue;
            };
            let validity = match validity_of(&row) {
                Ok(v) => v,
                Err(e) => {
                    m.at(row.line, e);
                    continue;
                }
            };
            if !self.cemes.contains_key(&ceme_id)
                && !refused.all_cemes
                && !refused.cemes.contains(ceme)
            {
                m.at(row.line, format!("CEME {ceme_id} is not in {cemes_file}"));
            }
            if let Err(other) = self
                .overrides
                .entry((cpe, ceme_id))
                .or_default()
                .insert(validity, row.line, t)
            {
                m.at(row.line, overlap("this CPE and CEME", &validity, other));
            }
        }
    }

    /// The registry with the digest of its files (the shell hashes them).
    pub fn with_digest(mut self, digest: String) -> Registry {
        self.digest = digest;
        self
    }

    /// The digest of the files it was read from (empty when none was set).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// What is allowed but likely a mistake, each with its file and line: a key without a row on
    /// some days between two of its rows, an EVSE pointing to a CPE on days the CPE is not listed.
    pub fn warnings(&self) -> &[RegistryError] {
        &self.warnings
    }

    /// The gaps between the rows of one key, as warnings.
    fn warn_gaps(&mut self, texts: &RegistryTexts<'_>) {
        let mut found = Vec::new();
        let mut gaps = |file: &str, what: String, consequence: &str, gaps: Vec<_>| {
            for (from, to, before, after) in gaps {
                found.push(RegistryError {
                    file: file.to_string(),
                    line: after,
                    message: format!(
                        "{what} has no row from {from} before {to} (between line {before} and this line): {consequence}"
                    ),
                });
            }
        };
        for (cpe, rows) in &self.cpes {
            gaps(
                texts.cpes.0,
                format!("CPE {cpe}"),
                "it is not netted on those days",
                rows.gaps(),
            );
        }
        for (evse, rows) in &self.evses {
            gaps(
                texts.evses.0,
                format!("EVSE {evse:?}"),
                "its sessions on those days are unmapped",
                rows.gaps(),
            );
        }
        for (ceme, rows) in &self.cemes {
            gaps(
                texts.cemes.0,
                format!("CEME {ceme}"),
                "its sessions on those days are unmapped",
                rows.gaps(),
            );
        }
        found.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        self.warnings.extend(found);
    }

    /// The CPE and ORD of a session's place on the session's day. `day_in(ord)` is that day in
    /// the time zone (and label convention) of `ord`: a row is chosen when it is in force on the
    /// day as the ORD it would send to counts days.
    pub fn place_on(
        &self,
        place: &Place,
        day_in: impl Fn(&str) -> NaiveDate,
    ) -> Result<(Cpe, &str), String> {
        let ord_on = |cpe: &Cpe, in_force: &dyn Fn(NaiveDate) -> bool| {
            self.cpes.get(cpe).and_then(|rows| {
                rows.rows().find_map(|r| {
                    let day = day_in(&r.value);
                    (r.validity.contains(day) && in_force(day)).then_some(r.value.as_str())
                })
            })
        };
        match place {
            Place::Cpe(cpe) => match ord_on(cpe, &|_| true) {
                Some(ord) => Ok((*cpe, ord)),
                None if self.cpes.contains_key(cpe) => Err(format!(
                    "CPE {cpe} is not in the registry on the session's day"
                )),
                None => Err(format!("CPE {cpe} is not in the registry")),
            },
            Place::Evse { evse_id, evse_uid } => {
                let ids = || evse_id.iter().chain(evse_uid.iter());
                let shown = format!(
                    "(evse_id {}, evse_uid {})",
                    evse_id.as_deref().unwrap_or("-"),
                    evse_uid.as_deref().unwrap_or("-")
                );
                let known: Vec<&Timeline<Cpe>> = ids().filter_map(|e| self.evses.get(e)).collect();
                if known.is_empty() {
                    return Err(format!("unknown EVSE {shown}: not in the registry"));
                }
                for rows in &known {
                    for r in rows.rows() {
                        if let Some(ord) = ord_on(&r.value, &|day| r.validity.contains(day)) {
                            return Ok((r.value, ord));
                        }
                    }
                }
                Err(format!(
                    "EVSE {shown} is not mapped to a CPE listed in the registry on the session's day"
                ))
            }
        }
    }

    /// The CEME whose code towards an ORD of `region` is `code` on `day` (the reverse of
    /// `supplier`, for reports).
    pub fn ceme_of_code(&self, code: &str, region: Region, day: NaiveDate) -> Option<&CemeId> {
        self.cemes
            .iter()
            .filter(|(_, rows)| {
                rows.on(day).is_some_and(|e| {
                    let c = if region.uses_ceme_letters() {
                        &e.island_code
                    } else {
                        &e.cse_code
                    };
                    c.as_deref() == Some(code)
                })
            })
            .map(|(id, _)| id)
            .min()
    }

    /// The ORD of `cpe` on `day`.
    pub fn ord_of(&self, cpe: &Cpe, day: NaiveDate) -> Option<&str> {
        self.cpes
            .get(cpe)
            .and_then(|rows| rows.on(day))
            .map(String::as_str)
    }

    /// Whether `cpe` is listed for `ord` on some day.
    pub fn ever_of(&self, cpe: &Cpe, ord: &OrdName) -> bool {
        self.cpes
            .get(cpe)
            .is_some_and(|rows| rows.rows().any(|r| r.value == ord.as_str()))
    }

    /// The CPEs served by `ord` on `day`.
    pub fn cpes_of<'a>(
        &'a self,
        ord: &'a OrdName,
        day: NaiveDate,
    ) -> impl Iterator<Item = Cpe> + 'a {
        self.cpes
            .iter()
            .filter(move |(_, rows)| rows.on(day).is_some_and(|o| o == ord.as_str()))
            .map(|(c, _)| *c)
    }

    /// The supplier key for consumption of `ceme` at `cpe` in `region` on `day`: the CEME's row and
    /// the CPE's tariff override in force that day.
    pub fn supplier(
        &self,
        cpe: &Cpe,
        ceme: &CemeId,
        region: Region,
        day: NaiveDate,
    ) -> Result<SupplierKey, String> {
        let rows = self
            .cemes
            .get(ceme)
            .ok_or_else(|| format!("unknown CEME {ceme}: not in the registry"))?;
        let entry = rows
            .on(day)
            .ok_or_else(|| format!("CEME {ceme} has no row in the registry in force on {day}"))?;
        let code = if region.uses_ceme_letters() {
            &entry.island_code
        } else {
            &entry.cse_code
        };
        let code = code.clone().ok_or_else(|| {
            let which = if region.uses_ceme_letters() {
                "4-letter island code"
            } else {
                "CSE code"
            };
            format!("CEME {ceme} has no {which} in the registry")
        })?;
        let tariff = self
            .overrides
            .get(&(*cpe, ceme.clone()))
            .and_then(|rows| rows.on(day))
            .copied()
            .unwrap_or(entry.tariff_cycle);
        Ok(SupplierKey { code, tariff })
    }
}

/// "from D" / "on every day" for the first day a reference is not covered.
fn uncovered(day: Option<NaiveDate>) -> String {
    match day {
        Some(d) => format!("from {d}"),
        None => "on the days before its first row there".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPES: &str = "cpe,ord\nPT0002000123681633GX,e-redes\nPT0014000100605384QR,eda\n";
    const EVSES: &str = "evse,cpe\nPT*MOB*E1,PT0002000123681633GX\n";
    const CEMES: &str = "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\n";

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()
    }

    fn texts<'a>(cpes: &'a str, evses: &'a str, cemes: &'a str) -> RegistryTexts<'a> {
        RegistryTexts {
            evses: ("evses.csv", evses),
            cpes: ("cpes.csv", cpes),
            cemes: ("cemes.csv", cemes),
            overrides: None,
        }
    }

    #[test]
    fn a_good_registry_maps_evses_cpes_and_suppliers() {
        let reg = Registry::parse(&texts(CPES, EVSES, CEMES), &["e-redes", "eda"]).unwrap();
        let (cpe, ord) = reg
            .place_on(
                &Place::Evse {
                    evse_id: Some("PT*MOB*E1".into()),
                    evse_uid: None,
                },
                |_| day(),
            )
            .unwrap();
        assert_eq!(ord, "e-redes");
        assert_eq!(reg.ord_of(&cpe, day()), Some("e-redes"));
        let gal = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Continent, day())
                .unwrap()
                .code,
            "02"
        );
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Azores, day())
                .unwrap()
                .code,
            "GALP"
        );
    }

    #[test]
    fn every_mistake_is_reported_with_file_and_line() {
        let cpes = "cpe,ord\nPT0002000123681633GX,e-redes\nPT0002000099999999XX,e-redes\nPT0014000100605384QR,mars\n";
        let evses = "evse,cpe\nE1,PT0002000123681633GX\nE1,PT0002000123681633GX\n";
        let cemes = "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,2,galp,07\n";
        let errs = Registry::parse(&texts(cpes, evses, cemes), &["e-redes"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cpes.csv:3:") && e.contains("check letters expected")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cpes.csv:4:") && e.contains("unknown ORD")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("evses.csv:3:") && e.contains("twice")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cemes.csv:2:") && e.contains("CSE code")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cemes.csv:2:") && e.contains("tariff cycle")),
            "{shown:?}"
        );
    }

    #[test]
    fn a_registry_saved_by_a_spreadsheet_with_bom_quotes_and_crlf_is_read() {
        let cpes = "\u{feff}\"cpe\",\"ord\"\r\n\"PT0002000123681633GX\",\"e-redes\"\r\n\"PT0014000100605384QR\",\"eda\"\r\n";
        let evses = "\u{feff}evse,cpe\r\n\"PT*MOB*E1\",PT0002000123681633GX\r\n";
        let cemes = "\u{feff}\"ceme\",\"cse_code\",\"island_code\",\"tariff_cycle\"\r\n\"PT-GAL\",\"02\",\"GALP\",\"01\"\r\n";
        let reg = Registry::parse(&texts(cpes, evses, cemes), &["e-redes", "eda"]).unwrap();
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        assert_eq!(reg.ord_of(&cpe, day()), Some("e-redes"));
        let gal = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Continent, day())
                .unwrap()
                .code,
            "02"
        );
    }

    #[test]
    fn a_registry_separated_by_semicolons_gets_one_error_with_a_hint() {
        let cpes = "cpe;ord\nPT0002000123681633GX;e-redes\n";
        let errs = Registry::parse(&texts(cpes, EVSES, CEMES), &["e-redes", "eda"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        // One error for the file, none for the EVSE whose CPE it would have listed.
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(shown[0].starts_with("cpes.csv:1:"), "{shown:?}");
        assert!(
            shown[0].contains("separated by `;`") && shown[0].contains("comma"),
            "{shown:?}"
        );
    }

    #[test]
    fn columns_are_found_by_their_header_names_in_any_order() {
        let cemes = "tariff_cycle,ceme,island_code,cse_code\n01,PT-GAL,GALP,02\n";
        let reg = Registry::parse(&texts(CPES, EVSES, cemes), &["e-redes", "eda"]).unwrap();
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        let gal = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Azores, day())
                .unwrap()
                .code,
            "GALP"
        );
        // A misspelt column is named, with what is expected.
        let cemes = "ceme,cse_code,islandcode,tariff_cycle\nPT-GAL,02,GALP,01\n";
        let errs = Registry::parse(&texts(CPES, EVSES, cemes), &["e-redes", "eda"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.contains("unknown column `islandcode`")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.contains("column `island_code` is missing")),
            "{shown:#?}"
        );
    }

    #[test]
    fn one_mistake_gives_one_error_not_a_knock_on_error_in_the_rows_that_refer_to_it() {
        // The CPE's row names an unknown ORD: its EVSE is not reported again as "not in cpes.csv";
        // a CEME refused for its tariff is not reported again by an override that names it.
        let cpes = "cpe,ord\nPT0002000123681633GX,mars\n";
        let cemes = "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,09\n";
        let mut t = texts(cpes, EVSES, cemes);
        t.overrides = Some((
            "overrides.csv",
            "cpe,ceme,tariff_cycle\nPT0002000123681633GX,PT-GAL,03\n",
        ));
        let errs = Registry::parse(&t, &["e-redes", "eda"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("cpes.csv:2:") && shown[0].contains("unknown ORD"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("cemes.csv:2:") && shown[1].contains("tariff cycle"),
            "{shown:?}"
        );
    }

    #[test]
    fn the_shipped_example_registry_is_valid() {
        let t = RegistryTexts {
            cpes: (
                "cpes.csv",
                include_str!("../../../config/registry/cpes.csv"),
            ),
            evses: (
                "evses.csv",
                include_str!("../../../config/registry/evses.csv"),
            ),
            cemes: (
                "cemes.csv",
                include_str!("../../../config/registry/cemes.csv"),
            ),
            overrides: Some((
                "tariff_overrides.csv",
                include_str!("../../../config/registry/tariff_overrides.csv"),
            )),
        };
        assert!(Registry::parse(&t, &["e-redes", "eda", "eem"]).is_ok());
    }

    #[test]
    fn per_cpe_override_changes_the_tariff() {
        let mut t = texts(CPES, EVSES, CEMES);
        t.overrides = Some((
            "overrides.csv",
            "cpe,ceme,tariff_cycle\nPT0002000123681633GX,PT-GAL,03\n",
        ));
        let reg = Registry::parse(&t, &["e-redes", "eda"]).unwrap();
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        let key = reg
            .supplier(
                &cpe,
                &CemeId::parse("PT-GAL").unwrap(),
                Region::Continent,
                day(),
            )
            .unwrap();
        assert_eq!(key.tariff, TariffCycle::BiHourlyWeekly);
    }

    fn on(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const CPE0: &str = "PT0002000123681633GX";
    const CPE1: &str = "PT0014000100605384QR";

    fn evse(id: &str) -> Place {
        Place::Evse {
            evse_id: Some(id.into()),
            evse_uid: None,
        }
    }

    #[test]
    fn a_dated_tariff_change_applies_from_its_day_and_not_before() {
        let cemes = "ceme,cse_code,island_code,tariff_cycle,valid_from,valid_to\nPT-GAL,02,GALP,01,,2024-10-29\nPT-GAL,02,GALP,03,2024-10-29,\n";
        let reg = Registry::parse(&texts(CPES, EVSES, cemes), &["e-redes", "eda"]).unwrap();
        let (cpe, gal) = (Cpe::parse(CPE0).unwrap(), CemeId::parse("PT-GAL").unwrap());
        let tariff = |d| {
            reg.supplier(&cpe, &gal, Region::Continent, on(d))
                .unwrap()
                .tariff
        };
        assert_eq!(tariff("2024-10-27"), TariffCycle::from_code("01").unwrap());
        assert_eq!(tariff("2024-10-28"), TariffCycle::from_code("01").unwrap());
        assert_eq!(tariff("2024-10-29"), TariffCycle::from_code("03").unwrap());
        assert!(reg.warnings().is_empty(), "{:?}", reg.warnings());
    }

    #[test]
    fn a_dated_override_applies_only_on_its_days() {
        let mut t = texts(CPES, EVSES, CEMES);
        t.overrides = Some((
            "overrides.csv",
            "cpe,ceme,tariff_cycle,valid_from,valid_to\nPT0002000123681633GX,PT-GAL,04,2024-11-01,\n",
        ));
        let reg = Registry::parse(&t, &["e-redes", "eda"]).unwrap();
        let (cpe, gal) = (Cpe::parse(CPE0).unwrap(), CemeId::parse("PT-GAL").unwrap());
        let tariff = |d| {
            reg.supplier(&cpe, &gal, Region::Continent, on(d))
                .unwrap()
                .tariff
                .code()
        };
        assert_eq!(tariff("2024-10-31"), "01");
        assert_eq!(tariff("2024-11-01"), "04");
    }

    #[test]
    fn an_evse_moved_from_a_date_maps_each_session_by_its_day() {
        let cpes = "cpe,ord\nPT0002000123681633GX,e-redes\nPT0002000555000111QN,e-redes\n";
        let cpes = cpes.replace(
            "PT0002000555000111QN",
            &Cpe::from_parts(2, 555_000_111).unwrap().to_string(),
        );
        let other = Cpe::from_parts(2, 555_000_111).unwrap();
        let evses = format!(
            "evse,cpe,valid_from,valid_to\nE1,{CPE0},,2024-10-29\nE1,{other},2024-10-29,\n"
        );
        let reg = Registry::parse(&texts(&cpes, &evses, CEMES), &["e-redes"]).unwrap();
        let at = |d| reg.place_on(&evse("E1"), |_| on(d)).unwrap().0;
        assert_eq!(at("2024-10-28"), Cpe::parse(CPE0).unwrap());
        assert_eq!(at("2024-10-29"), other);
    }

    #[test]
    fn a_cpe_that_leaves_is_not_served_from_that_day() {
        let cpes =
            format!("cpe,ord,valid_from,valid_to\n{CPE0},e-redes,,2024-10-29\n{CPE1},eda,,\n");
        let reg = Registry::parse(&texts(&cpes, EVSES, CEMES), &["e-redes", "eda"]).unwrap();
        let cpe = Cpe::parse(CPE0).unwrap();
        assert_eq!(reg.ord_of(&cpe, on("2024-10-28")), Some("e-redes"));
        assert_eq!(reg.ord_of(&cpe, on("2024-10-29")), None);
        assert_eq!(
            reg.cpes_of(&OrdName::parse("e-redes").unwrap(), on("2024-10-28"))
                .count(),
            1
        );
        assert_eq!(
            reg.cpes_of(&OrdName::parse("e-redes").unwrap(), on("2024-10-29"))
                .count(),
            0
        );
        assert!(reg.ever_of(&cpe, &OrdName::parse("e-redes").unwrap()));
        let err = reg
            .place_on(&evse("PT*MOB*E1"), |_| on("2024-10-30"))
            .unwrap_err();
        assert!(err.contains("not mapped to a CPE"), "{err}");
        // Its EVSE still points to it after it left: allowed, with a warning at the EVSE's line.
        let w: Vec<String> = reg.warnings().iter().map(ToString::to_string).collect();
        assert!(
            w.iter().any(|w| w.starts_with("evses.csv:2:")
                && w.contains("from 2024-10-29")
                && w.contains("unmapped")),
            "{w:?}"
        );
    }

    #[test]
    fn a_cpe_moved_to_another_ord_is_mapped_in_that_ords_time_zone() {
        // From 2024-10-29 the CPE is served by eda (an hour behind): a session at 23:30 mainland
        // time on the 28th is 22:30 on the 28th in the Azores, still e-redes'; one at 00:30 on
        // the 29th mainland is 23:30 on the 28th in the Azores: e-redes' row has ended by then on
        // the mainland's day, and eda's has not begun on the Azores' day, so it is unmapped.
        let cpes = format!(
            "cpe,ord,valid_from,valid_to\n{CPE0},e-redes,,2024-10-29\n{CPE0},eda,2024-10-29,\n"
        );
        let reg = Registry::parse(&texts(&cpes, EVSES, CEMES), &["e-redes", "eda"]).unwrap();
        let day_in = |mainland: &'static str, azores: &'static str| {
            move |ord: &str| {
                if ord == "eda" {
                    on(azores)
                } else {
                    on(mainland)
                }
            }
        };
        let place = evse("PT*MOB*E1");
        assert_eq!(
            reg.place_on(&place, day_in("2024-10-28", "2024-10-28"))
                .unwrap()
                .1,
            "e-redes"
        );
        assert!(reg
            .place_on(&place, day_in("2024-10-29", "2024-10-28"))
            .is_err());
        assert_eq!(
            reg.place_on(&place, day_in("2024-10-29", "2024-10-29"))
                .unwrap()
                .1,
            "eda"
        );
    }

    #[test]
    fn overlapping_rows_of_one_key_are_refused_with_both_lines() {
        let cemes = "ceme,cse_code,island_code,tariff_cycle,valid_from,valid_to\nPT-GAL,02,GALP,01,,2024-10-30\nPT-GAL,02,GALP,03,2024-10-29,\n";
        let cpes = format!(
            "cpe,ord,valid_from\n{CPE0},e-redes,\n{CPE0},e-redes,2024-01-01\n{CPE1},eda,\n"
        );
        let errs = Registry::parse(&texts(&cpes, EVSES, cemes), &["e-redes", "eda"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cemes.csv:3:") && e.contains("overlaps line 2")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e.starts_with("cpes.csv:3:") && e.contains("line 2")),
            "{shown:#?}"
        );
    }

    #[test]
    fn bad_validity_dates_are_refused_with_file_and_line() {
        let cemes = "ceme,cse_code,island_code,tariff_cycle,valid_from,valid_to\nPT-GAL,02,GALP,01,29-10-2024,\n";
        let errs = Registry::parse(&texts(CPES, EVSES, cemes), &["e-redes", "eda"]).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(shown[0].starts_with("cemes.csv:2: valid_from"), "{shown:?}");
    }

    #[test]
    fn a_gap_between_two_rows_of_a_key_is_a_warning_at_the_later_row() {
        let cemes = "ceme,cse_code,island_code,tariff_cycle,valid_from,valid_to\nPT-GAL,02,GALP,01,,2024-10-29\nPT-GAL,02,GALP,03,2024-10-30,\n";
        let reg = Registry::parse(&texts(CPES, EVSES, cemes), &["e-redes", "eda"]).unwrap();
        let w: Vec<String> = reg.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("cemes.csv:3:") && w[0].contains("from 2024-10-29 before 2024-10-30"),
            "{w:?}"
        );
        let err = reg
            .supplier(
                &Cpe::parse(CPE0).unwrap(),
                &CemeId::parse("PT-GAL").unwrap(),
                Region::Continent,
                on("2024-10-29"),
            )
            .unwrap_err();
        assert!(err.contains("in force on 2024-10-29"), "{err}");
    }
}
