//! The operators' registry: EVSE → CPE, CPE → ORD, CEME → supplier codes and tariff cycle, per-CPE overrides.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

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

/// The loaded, validated registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    evses: HashMap<String, Cpe>,
    cpes: BTreeMap<Cpe, String>,
    cemes: HashMap<CemeId, CemeEntry>,
    overrides: HashMap<(Cpe, CemeId), TariffCycle>,
}

mod table;

use table::{Columns, Table};

const CPES: Columns = Columns {
    required: &["cpe", "ord"],
    optional: &[],
};
const EVSES: Columns = Columns {
    required: &["evse", "cpe"],
    optional: &[],
};
const CEMES: Columns = Columns {
    required: &["ceme", "cse_code", "island_code", "tariff_cycle"],
    optional: &[],
};
const OVERRIDES: Columns = Columns {
    required: &["cpe", "ceme", "tariff_cycle"],
    optional: &[],
};

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
            if !known_ords.contains(&ord) {
                m.at(
                    row.line,
                    format!(
                        "unknown ORD {ord:?}: expected one of {}",
                        known_ords.join(", ")
                    ),
                );
                refused.cpes.insert(text.to_string());
            } else if let Some(prev) = self.cpes.insert(cpe, ord.to_string()) {
                m.at(
                    row.line,
                    format!("CPE {cpe} is listed twice (already for {prev})"),
                );
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
            if !self.cpes.contains_key(&cpe) && !refused.all_cpes && !refused.cpes.contains(text) {
                m.at(row.line, format!("CPE {cpe} is not in {cpes_file}"));
            }
            if self.evses.insert(evse.to_string(), cpe).is_some() {
                m.at(row.line, format!("EVSE {evse:?} is listed twice"));
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
            if m.errors.len() > before {
                refused.cemes.insert(text.to_string());
            }
            let entry = CemeEntry {
                cse_code: cse.map(str::to_string),
                island_code: island.map(str::to_string),
                tariff_cycle,
            };
            if self.cemes.insert(ceme.clone(), entry).is_some() {
                m.at(row.line, format!("CEME {ceme} is listed twice"));
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
            if !self.cemes.contains_key(&ceme_id)
                && !refused.all_cemes
                && !refused.cemes.contains(ceme)
            {
                m.at(row.line, format!("CEME {ceme_id} is not in {cemes_file}"));
            }
            if self.overrides.insert((cpe, ceme_id), t).is_some() {
                m.at(row.line, "this CPE and CEME are listed twice".into());
            }
        }
    }

    /// The CPE of a session's place.
    pub fn cpe_of(&self, place: &Place) -> Result<Cpe, String> {
        match place {
            Place::Cpe(cpe) => {
                if self.cpes.contains_key(cpe) {
                    Ok(*cpe)
                } else {
                    Err(format!("CPE {cpe} is not in the registry"))
                }
            }
            Place::Evse { evse_id, evse_uid } => evse_id
                .iter()
                .chain(evse_uid.iter())
                .find_map(|e| self.evses.get(e))
                .copied()
                .ok_or_else(|| {
                    format!(
                        "unknown EVSE (evse_id {}, evse_uid {}): not in the registry",
                        evse_id.as_deref().unwrap_or("-"),
                        evse_uid.as_deref().unwrap_or("-")
                    )
                }),
        }
    }

    pub fn ord_of(&self, cpe: &Cpe) -> Option<&str> {
        self.cpes.get(cpe).map(String::as_str)
    }

    /// CPEs served by `ord`.
    pub fn cpes_of<'a>(&'a self, ord: &'a str) -> impl Iterator<Item = Cpe> + 'a {
        self.cpes
            .iter()
            .filter(move |(_, o)| o.as_str() == ord)
            .map(|(c, _)| *c)
    }

    /// The supplier key for consumption of `ceme` at `cpe` in `region`.
    pub fn supplier(
        &self,
        cpe: &Cpe,
        ceme: &CemeId,
        region: Region,
    ) -> Result<SupplierKey, String> {
        let entry = self
            .cemes
            .get(ceme)
            .ok_or_else(|| format!("unknown CEME {ceme}: not in the registry"))?;
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
            .copied()
            .unwrap_or(entry.tariff_cycle);
        Ok(SupplierKey { code, tariff })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPES: &str = "cpe,ord\nPT0002000123681633GX,e-redes\nPT0014000100605384QR,eda\n";
    const EVSES: &str = "evse,cpe\nPT*MOB*E1,PT0002000123681633GX\n";
    const CEMES: &str = "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\n";

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
        let cpe = reg
            .cpe_of(&Place::Evse {
                evse_id: Some("PT*MOB*E1".into()),
                evse_uid: None,
            })
            .unwrap();
        assert_eq!(reg.ord_of(&cpe), Some("e-redes"));
        let gal = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Continent).unwrap().code,
            "02"
        );
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Azores).unwrap().code,
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
        assert_eq!(reg.ord_of(&cpe), Some("e-redes"));
        let gal = CemeId::parse("PT-GAL").unwrap();
        assert_eq!(
            reg.supplier(&cpe, &gal, Region::Continent).unwrap().code,
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
            reg.supplier(&cpe, &gal, Region::Azores).unwrap().code,
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
            .supplier(&cpe, &CemeId::parse("PT-GAL").unwrap(), Region::Continent)
            .unwrap();
        assert_eq!(key.tariff, TariffCycle::BiHourlyWeekly);
    }
}
