//! The operators' registry: EVSE → CPE, CPE → ORD, CEME → supplier codes and tariff cycle, per-CPE overrides.

use std::collections::{BTreeMap, HashMap};
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

fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        Some((i + 1, l.split(',').map(str::trim).collect()))
    })
}

fn is_header(first: &str, word: &str) -> bool {
    first.eq_ignore_ascii_case(word)
}

impl Registry {
    /// Parses and validates all files; every mistake is reported, not just the first.
    pub fn parse(
        texts: &RegistryTexts<'_>,
        known_ords: &[&str],
    ) -> Result<Registry, Vec<RegistryError>> {
        let mut errors = Vec::new();
        let mut reg = Registry::default();
        let err = |errors: &mut Vec<RegistryError>, file: &str, line: usize, message: String| {
            errors.push(RegistryError {
                file: file.to_string(),
                line,
                message,
            });
        };

        let (file, text) = texts.cpes;
        for (line, f) in rows(text) {
            if is_header(f[0], "cpe") {
                continue;
            }
            if f.len() != 2 {
                err(
                    &mut errors,
                    file,
                    line,
                    format!("expected 2 fields (cpe,ord), found {}", f.len()),
                );
                continue;
            }
            match Cpe::parse(f[0]) {
                Err(e) => err(&mut errors, file, line, e.to_string()),
                Ok(cpe) => {
                    if !known_ords.contains(&f[1]) {
                        err(
                            &mut errors,
                            file,
                            line,
                            format!(
                                "unknown ORD {:?}: expected one of {}",
                                f[1],
                                known_ords.join(", ")
                            ),
                        );
                    } else if let Some(prev) = reg.cpes.insert(cpe, f[1].to_string()) {
                        err(
                            &mut errors,
                            file,
                            line,
                            format!("CPE {cpe} is listed twice (already for {prev})"),
                        );
                    }
                }
            }
        }

        let (file, text) = texts.evses;
        for (line, f) in rows(text) {
            if is_header(f[0], "evse") {
                continue;
            }
            if f.len() != 2 || f[0].is_empty() {
                err(
                    &mut errors,
                    file,
                    line,
                    format!("expected 2 fields (evse,cpe), found {}", f.len()),
                );
                continue;
            }
            match Cpe::parse(f[1]) {
                Err(e) => err(&mut errors, file, line, e.to_string()),
                Ok(cpe) => {
                    if !reg.cpes.contains_key(&cpe) {
                        err(
                            &mut errors,
                            file,
                            line,
                            format!("CPE {cpe} is not in {}", texts.cpes.0),
                        );
                    }
                    if reg.evses.insert(f[0].to_string(), cpe).is_some() {
                        err(
                            &mut errors,
                            file,
                            line,
                            format!("EVSE {:?} is listed twice", f[0]),
                        );
                    }
                }
            }
        }

        let (file, text) = texts.cemes;
        for (line, f) in rows(text) {
            if is_header(f[0], "ceme") {
                continue;
            }
            if f.len() != 4 {
                err(
                    &mut errors,
                    file,
                    line,
                    format!(
                        "expected 4 fields (ceme,cse_code,island_code,tariff_cycle), found {}",
                        f.len()
                    ),
                );
                continue;
            }
            let Some(ceme) = CemeId::parse(f[0]) else {
                err(
                    &mut errors,
                    file,
                    line,
                    format!(
                        "CEME: expected CC-PPP (country + party id), found {:?}",
                        f[0]
                    ),
                );
                continue;
            };
            let cse = (!f[1].is_empty()).then(|| f[1].to_string());
            if let Some(c) = &cse {
                if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_digit()) {
                    err(
                        &mut errors,
                        file,
                        line,
                        format!("CSE code: expected 2 digits, found {c:?}"),
                    );
                }
            }
            let island = (!f[2].is_empty()).then(|| f[2].to_string());
            if let Some(c) = &island {
                if c.len() != 4 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    err(
                        &mut errors,
                        file,
                        line,
                        format!("island code: expected 4 capital letters, found {c:?}"),
                    );
                }
            }
            let Some(tariff_cycle) = TariffCycle::from_code(f[3]) else {
                err(
                    &mut errors,
                    file,
                    line,
                    format!("tariff cycle: expected 01, 02, 03 or 04, found {:?}", f[3]),
                );
                continue;
            };
            if reg
                .cemes
                .insert(
                    ceme.clone(),
                    CemeEntry {
                        cse_code: cse,
                        island_code: island,
                        tariff_cycle,
                    },
                )
                .is_some()
            {
                err(
                    &mut errors,
                    file,
                    line,
                    format!("CEME {ceme} is listed twice"),
                );
            }
        }

        if let Some((file, text)) = texts.overrides {
            for (line, f) in rows(text) {
                if is_header(f[0], "cpe") {
                    continue;
                }
                if f.len() != 3 {
                    err(
                        &mut errors,
                        file,
                        line,
                        format!(
                            "expected 3 fields (cpe,ceme,tariff_cycle), found {}",
                            f.len()
                        ),
                    );
                    continue;
                }
                let cpe = Cpe::parse(f[0]);
                let ceme = CemeId::parse(f[1]);
                let tariff = TariffCycle::from_code(f[2]);
                match (cpe, ceme, tariff) {
                    (Ok(cpe), Some(ceme), Some(t)) => {
                        if !reg.cemes.contains_key(&ceme) {
                            err(
                                &mut errors,
                                file,
                                line,
                                format!("CEME {ceme} is not in {}", texts.cemes.0),
                            );
                        }
                        if reg.overrides.insert((cpe, ceme), t).is_some() {
                            err(
                                &mut errors,
                                file,
                                line,
                                "this CPE and CEME are listed twice".into(),
                            );
                        }
                    }
                    (Err(e), _, _) => err(&mut errors, file, line, e.to_string()),
                    (_, None, _) => err(
                        &mut errors,
                        file,
                        line,
                        format!("CEME: expected CC-PPP, found {:?}", f[1]),
                    ),
                    (_, _, None) => err(
                        &mut errors,
                        file,
                        line,
                        format!("tariff cycle: expected 01..04, found {:?}", f[2]),
                    ),
                }
            }
        }
        if errors.is_empty() {
            Ok(reg)
        } else {
            Err(errors)
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
    fn the_shipped_example_registry_is_valid() {
        let t = RegistryTexts {
            cpes: ("cpes.csv", include_str!("../../config/registry/cpes.csv")),
            evses: ("evses.csv", include_str!("../../config/registry/evses.csv")),
            cemes: ("cemes.csv", include_str!("../../config/registry/cemes.csv")),
            overrides: Some((
                "tariff_overrides.csv",
                include_str!("../../config/registry/tariff_overrides.csv"),
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
