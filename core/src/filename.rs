//! `OrdFileName`: the five file-name patterns of the rule (SGL-NOTES §2), parsed into one typed value and formatted back.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use thiserror::Error;

use crate::cpe::{Cpe, CpeError, CPE_LEN};
use crate::region::Region;

/// Who sends the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// ORD → EGME: a CPE's total consumption.
    Inbound,
    /// EGME → ORD: mobility consumption per supplier and tariff cycle.
    Outbound,
}

/// Tariff and time-cycle code (`ZZ` / `YY` in the names).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
pub enum TariffCycle {
    /// `01` bi-horária, ciclo diário.
    BiHourlyDaily,
    /// `02` tri-horária, ciclo diário.
    TriHourlyDaily,
    /// `03` bi-horária, ciclo semanal.
    BiHourlyWeekly,
    /// `04` tri-horária, ciclo semanal.
    TriHourlyWeekly,
}

impl TariffCycle {
    pub const ALL: [TariffCycle; 4] = [
        TariffCycle::BiHourlyDaily,
        TariffCycle::TriHourlyDaily,
        TariffCycle::BiHourlyWeekly,
        TariffCycle::TriHourlyWeekly,
    ];

    pub fn code(self) -> &'static str {
        match self {
            TariffCycle::BiHourlyDaily => "01",
            TariffCycle::TriHourlyDaily => "02",
            TariffCycle::BiHourlyWeekly => "03",
            TariffCycle::TriHourlyWeekly => "04",
        }
    }

    pub fn from_code(code: &str) -> Option<TariffCycle> {
        TariffCycle::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// The party code at the start of a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "code")]
pub enum PartyCode {
    /// The ORD's internal request code, 1–6 digits (Continent and Madeira inbound).
    OrdRequest(String),
    /// No code: the Azores' inbound names start with the CPE.
    None,
    /// The supplier's 2-digit CSE code (Continent outbound).
    Cse(String),
    /// The supplier's 4-letter CEME code (Azores and Madeira outbound).
    Ceme(String),
}

/// What the date in the name means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateMeaning {
    Generation,
    Consumption,
}

/// The file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Extension {
    Sgl,
    Txt,
    /// Madeira's inbound example has none.
    None,
}

impl Extension {
    fn suffix(self) -> &'static str {
        match self {
            Extension::Sgl => ".sgl",
            Extension::Txt => ".txt",
            Extension::None => "",
        }
    }
}

/// The largest transmission id a name of ours can carry: NTransm is 10 digits (SGL-NOTES §2).
pub const MAX_TRANSMISSION_ID: u64 = 9_999_999_999;

/// The transmission number in a name, with its digit count so that formatting gives the name back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NTransm {
    pub value: u64,
    pub width: u8,
}

impl NTransm {
    /// Our own files: 10 digits.
    pub fn outbound(value: u64) -> NTransm {
        NTransm { value, width: 10 }
    }
}

/// A parsed file name of any of the five patterns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OrdFileName {
    pub direction: Direction,
    pub region: Region,
    pub party: PartyCode,
    pub tariff_cycle: Option<TariffCycle>,
    pub cpe: Cpe,
    pub date: NaiveDate,
    pub ntransm: NTransm,
    pub extension: Extension,
}

/// Why a name fits no pattern; `offset` is the 0-based character where the problem starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("file name {name:?} does not fit the {pattern_name} pattern {pattern}: {detail}")]
    Pattern {
        name: String,
        pattern_name: &'static str,
        pattern: &'static str,
        detail: String,
        offset: usize,
    },
    #[error("file name {name:?}: {source}")]
    Cpe {
        name: String,
        offset: usize,
        #[source]
        source: CpeError,
    },
}

impl NameError {
    pub fn offset(&self) -> usize {
        match self {
            NameError::Pattern { offset, .. } | NameError::Cpe { offset, .. } => *offset,
        }
    }
}

struct Shape {
    pattern_name: &'static str,
    pattern: &'static str,
}

/// One name being parsed against the pattern of its region and direction, phase by phase.
struct NameParser<'a> {
    name: &'a str,
    region: Region,
    direction: Direction,
    shape: Shape,
    /// Our names with an NTransm of more than 10 digits are taken (as evidence of ids used).
    any_width: bool,
}

impl NameParser<'_> {
    fn fail(&self, detail: String, offset: usize) -> NameError {
        NameError::Pattern {
            name: self.name.to_string(),
            pattern_name: self.shape.pattern_name,
            pattern: self.shape.pattern,
            detail,
            offset,
        }
    }

    /// The stem and the extension, which must be one the pattern allows.
    fn extension(&self) -> Result<(&str, Extension), NameError> {
        let name = self.name;
        let (stem, extension) = if let Some(stem) = name.strip_suffix(".sgl") {
            (stem, Extension::Sgl)
        } else if let Some(stem) = name.strip_suffix(".txt") {
            (stem, Extension::Txt)
        } else {
            (name, Extension::None)
        };
        let extension_ok = matches!(
            (self.direction, self.region, extension),
            (Direction::Outbound, _, Extension::Sgl)
                | (Direction::Inbound, Region::Continent, Extension::Sgl)
                | (
                    Direction::Inbound,
                    Region::Madeira,
                    Extension::Sgl | Extension::None
                )
                | (
                    Direction::Inbound,
                    Region::Azores,
                    Extension::Txt | Extension::Sgl
                )
        );
        if !extension_ok {
            return Err(self.fail("wrong or missing extension".into(), stem.len()));
        }
        Ok((stem, extension))
    }

    /// What stands before the CPE (which starts at `cpe_offset` of `head`): nothing (Azores
    /// inbound), the ORD's request code, or the supplier's code and the tariff cycle.
    fn party(
        &self,
        head: &str,
        cpe_offset: usize,
    ) -> Result<(PartyCode, Option<TariffCycle>), NameError> {
        let prefix = &head[..cpe_offset];
        if (self.direction, self.region) == (Direction::Inbound, Region::Azores) {
            if !prefix.is_empty() {
                return Err(self.fail(format!("unexpected {prefix:?} before the CPE"), 0));
            }
            return Ok((PartyCode::None, None));
        }
        let Some(code) = prefix.strip_suffix("PE") else {
            // A CPE of the wrong length after "PE…": report the CPE, not the "PE".
            if let Some(p) = head.find("PEPT") {
                let cpe_text = &head[p + 2..];
                let source = Cpe::parse(cpe_text).err().unwrap_or(CpeError::Length {
                    text: cpe_text.to_string(),
                    found: cpe_text.len(),
                });
                return Err(NameError::Cpe {
                    name: self.name.to_string(),
                    offset: p + 2,
                    source,
                });
            }
            return Err(self.fail(
                "expected \"PE\" before the CPE".into(),
                cpe_offset.saturating_sub(2),
            ));
        };
        match self.direction {
            Direction::Inbound => {
                if code.is_empty() || code.len() > 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.fail(
                        format!("ORD request code must be 1 to 6 digits, found {code:?}"),
                        0,
                    ));
                }
                Ok((PartyCode::OrdRequest(code.to_string()), None))
            }
            Direction::Outbound => self.supplier(code),
        }
    }

    /// An outbound name's supplier (CSE code on the mainland, CEME code on the islands) and tariff cycle.
    fn supplier(&self, code: &str) -> Result<(PartyCode, Option<TariffCycle>), NameError> {
        let (party, tariff) = if self.region == Region::Continent {
            if code.len() != 6
                || !code.bytes().all(|b| b.is_ascii_digit())
                || !code.starts_with("00")
            {
                return Err(self.fail(format!("expected 00 + CSE code (2 digits) + tariff code (2 digits), found {code:?}"), 0));
            }
            (PartyCode::Cse(code[2..4].to_string()), &code[4..6])
        } else {
            if code.len() != 6
                || !code[..4].bytes().all(|b| b.is_ascii_uppercase())
                || !code[4..].bytes().all(|b| b.is_ascii_digit())
            {
                return Err(self.fail(format!("expected CEME code (4 capital letters) + tariff code (2 digits), found {code:?}"), 0));
            }
            (PartyCode::Ceme(code[..4].to_string()), &code[4..6])
        };
        let Some(tc) = TariffCycle::from_code(tariff) else {
            return Err(self.fail(
                format!("tariff-cycle code must be 01, 02, 03 or 04, found {tariff:?}"),
                4,
            ));
        };
        Ok((party, Some(tc)))
    }

    /// The transmission number: 10 digits in our names, 1 to 10 in the ORDs'.
    fn ntransm(&self, text: &str, offset: usize) -> Result<NTransm, NameError> {
        let width_ok = match self.direction {
            Direction::Outbound if self.any_width => (10..=18).contains(&text.len()),
            Direction::Outbound => text.len() == 10,
            Direction::Inbound => (1..=10).contains(&text.len()),
        };
        if !width_ok || !text.bytes().all(|b| b.is_ascii_digit()) {
            let want = if self.direction == Direction::Outbound {
                "10 digits"
            } else {
                "1 to 10 digits"
            };
            return Err(self.fail(format!("NTransm must be {want}, found {text:?}"), offset));
        }
        let value = text
            .parse::<u64>()
            .map_err(|_| self.fail(format!("NTransm {text:?} is not a number"), offset))?;
        Ok(NTransm {
            value,
            width: text.len() as u8,
        })
    }
}

fn shape(region: Region, direction: Direction) -> Shape {
    match (direction, region) {
        (Direction::Inbound, Region::Continent) => Shape {
            pattern_name: "E-Redes inbound",
            pattern: "{n}PE{CPE}_{YYYYMMDD}_{NTransm}.sgl",
        },
        (Direction::Inbound, Region::Madeira) => Shape {
            pattern_name: "EEM inbound",
            pattern: "{n}PE{CPE}_{YYYYMMDD}_{NTransm}[.sgl]",
        },
        (Direction::Inbound, Region::Azores) => Shape {
            pattern_name: "EDA inbound",
            pattern: "{CPE}_{YYYYMMDD}_{NTransm}.txt",
        },
        (Direction::Outbound, Region::Continent) => Shape {
            pattern_name: "E-Redes outbound",
            pattern: "00{CSE}{tariff}PE{CPE}_{YYYYMMDD}_{NTransm:10}.sgl",
        },
        (Direction::Outbound, _) => Shape {
            pattern_name: "islands outbound",
            pattern: "{CEME:4 letters}{tariff}PE{CPE}_{YYYYMMDD}_{NTransm:10}.sgl",
        },
    }
}

impl OrdFileName {
    /// What the date in the name means: only the Azores' inbound names carry the consumption day.
    pub fn date_meaning(&self) -> DateMeaning {
        if self.direction == Direction::Inbound && self.region == Region::Azores {
            DateMeaning::Consumption
        } else {
            DateMeaning::Generation
        }
    }

    /// A name we write (EGME → ORD).
    pub fn outbound(
        region: Region,
        supplier: &str,
        tariff_cycle: TariffCycle,
        cpe: Cpe,
        generation_date: NaiveDate,
        transmission_id: u64,
    ) -> OrdFileName {
        let party = if region.uses_ceme_letters() {
            PartyCode::Ceme(supplier.to_string())
        } else {
            PartyCode::Cse(supplier.to_string())
        };
        OrdFileName {
            direction: Direction::Outbound,
            region,
            party,
            tariff_cycle: Some(tariff_cycle),
            cpe,
            date: generation_date,
            ntransm: NTransm::outbound(transmission_id),
            extension: Extension::Sgl,
        }
    }

    /// Parses `name` as a file of `region` going in `direction`.
    pub fn parse(
        name: &str,
        region: Region,
        direction: Direction,
    ) -> Result<OrdFileName, NameError> {
        OrdFileName::parse_with(name, region, direction, false)
    }

    /// Parses `name` as one of our outbound names of `region` whatever the number of digits of its
    /// NTransm (10 to 18, what the ledger can hold): the fence, `recover` and `verify` count every id a name of ours used,
    /// including one past the 10-digit range that an older version could write.
    pub fn parse_ours(name: &str, region: Region) -> Result<OrdFileName, NameError> {
        OrdFileName::parse_with(name, region, Direction::Outbound, true)
    }

    fn parse_with(
        name: &str,
        region: Region,
        direction: Direction,
        any_width: bool,
    ) -> Result<OrdFileName, NameError> {
        let p = NameParser {
            name,
            region,
            direction,
            shape: shape(region, direction),
            any_width,
        };
        if let Some(pos) = name.find(|c: char| !c.is_ascii_graphic()) {
            return Err(p.fail(
                format!(
                    "character {:?} is not allowed in a name",
                    name[pos..].chars().next().unwrap_or(' ')
                ),
                pos,
            ));
        }
        let (stem, extension) = p.extension()?;
        let parts: Vec<&str> = stem.split('_').collect();
        let [head, date_text, ntransm_text] = parts[..] else {
            return Err(p.fail(
                format!("expected 3 parts separated by '_', found {}", parts.len()),
                0,
            ));
        };
        let date_offset = head.len() + 1;
        let ntransm_offset = date_offset + date_text.len() + 1;
        // Head: party code + "PE" + CPE, or the bare CPE for the Azores' inbound files.
        if head.len() < CPE_LEN {
            return Err(p.fail(format!("{head:?} is too short to hold a CPE"), 0));
        }
        let cpe_offset = head.len() - CPE_LEN;
        let (party, tariff_cycle) = p.party(head, cpe_offset)?;
        let cpe = Cpe::parse(&head[cpe_offset..]).map_err(|source| NameError::Cpe {
            name: name.to_string(),
            offset: cpe_offset + source.offset(),
            source,
        })?;
        let date = parse_date(date_text).ok_or_else(|| {
            p.fail(
                format!("expected a date YYYYMMDD, found {date_text:?}"),
                date_offset,
            )
        })?;
        let ntransm = p.ntransm(ntransm_text, ntransm_offset)?;
        Ok(OrdFileName {
            direction,
            region,
            party,
            tariff_cycle,
            cpe,
            date,
            ntransm,
            extension,
        })
    }

    /// The region a name most likely belongs to: `.txt` or a `PT0014…` CPE → Azores, `PT0013…` → Madeira, else Continent.
    pub fn infer_region(name: &str) -> Region {
        if name.ends_with(".txt") {
            return Region::Azores;
        }
        let stem = name.split('_').next().unwrap_or("");
        let cpe_part = stem.get(stem.len().saturating_sub(CPE_LEN)..).unwrap_or("");
        if cpe_part.starts_with("PT0014") {
            Region::Azores
        } else if cpe_part.starts_with("PT0013") {
            Region::Madeira
        } else {
            Region::Continent
        }
    }

    /// Parses a name of `region` whose direction is unknown: the direction whose pattern fits wins;
    /// where both fit (a Continent `00YYZZPE…` name with a 10-digit NTransm) outbound is preferred.
    pub fn parse_any(name: &str, region: Region) -> Result<OrdFileName, NameError> {
        let outbound = OrdFileName::parse(name, region, Direction::Outbound);
        let inbound = OrdFileName::parse(name, region, Direction::Inbound);
        match (outbound, inbound) {
            (Ok(o), _) => Ok(o),
            (Err(_), Ok(i)) => Ok(i),
            (Err(o), Err(i)) => {
                // Report against the pattern the name resembles most.
                let looks_outbound = match region {
                    Region::Continent => {
                        name.len() > 6 && name.starts_with("00") && name.get(6..8) == Some("PE")
                    }
                    _ => {
                        name.bytes().take(4).all(|b| b.is_ascii_uppercase())
                            && !name.starts_with("PT")
                    }
                };
                Err(if looks_outbound { o } else { i })
            }
        }
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = text[..4].parse().ok()?;
    let m = text[4..6].parse().ok()?;
    let d = text[6..].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

impl fmt::Display for OrdFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.party {
            PartyCode::OrdRequest(code) => write!(f, "{code}PE")?,
            PartyCode::None => {}
            PartyCode::Cse(code) => write!(
                f,
                "00{code}{}PE",
                self.tariff_cycle.map_or("", TariffCycle::code)
            )?,
            PartyCode::Ceme(code) => write!(
                f,
                "{code}{}PE",
                self.tariff_cycle.map_or("", TariffCycle::code)
            )?,
        }
        write!(f, "{}_", self.cpe)?;
        // `%Y%m%d` without chrono's format parser (every sent name is written this way, and the
        // fence rebuilds the ledger's names of a folder nobody empties); the same text for the
        // years 0 to 9999, chrono's own beyond them.
        if (0..=9999).contains(&self.date.year()) {
            write!(
                f,
                "{:04}{:02}{:02}",
                self.date.year(),
                self.date.month(),
                self.date.day()
            )?;
        } else {
            write!(f, "{}", self.date.format("%Y%m%d"))?;
        }
        write!(
            f,
            "_{:0width$}{}",
            self.ntransm.value,
            self.extension.suffix(),
            width = usize::from(self.ntransm.width)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(name: &str, region: Region, direction: Direction) -> OrdFileName {
        let parsed =
            OrdFileName::parse(name, region, direction).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.to_string(), name);
        parsed
    }

    #[test]
    fn a_name_writes_its_date_as_chronos_y_m_d_in_every_year_it_can_hold() {
        let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
        for (y, m, d) in [
            (1, 1, 1),
            (999, 12, 31),
            (2024, 2, 29),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 6, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            let name = OrdFileName::outbound(
                Region::Continent,
                "02",
                TariffCycle::BiHourlyDaily,
                cpe,
                date,
                7,
            )
            .to_string();
            assert!(
                name.contains(&format!("_{}_", date.format("%Y%m%d"))),
                "{name}"
            );
        }
    }

    #[test]
    fn the_rules_five_example_names_parse_and_format_back() {
        let n = roundtrip(
            "171234PEPT0002000123681633GX_20190509_693.sgl",
            Region::Continent,
            Direction::Inbound,
        );
        assert_eq!(n.party, PartyCode::OrdRequest("171234".into()));
        assert_eq!(
            n.ntransm,
            NTransm {
                value: 693,
                width: 3
            }
        );
        assert_eq!(n.date_meaning(), DateMeaning::Generation);

        let n = roundtrip(
            "000999PEPT0013700005415700NY_20200618_0000000999",
            Region::Madeira,
            Direction::Inbound,
        );
        assert_eq!(n.extension, Extension::None);

        let n = roundtrip(
            "PT0014000100605384QR_20210707_01.txt",
            Region::Azores,
            Direction::Inbound,
        );
        assert_eq!(n.party, PartyCode::None);
        assert_eq!(n.date_meaning(), DateMeaning::Consumption);

        let n = roundtrip(
            "000201PEPT0002000123681633GX_20190509_0000000001.sgl",
            Region::Continent,
            Direction::Outbound,
        );
        assert_eq!(n.party, PartyCode::Cse("02".into()));
        assert_eq!(n.tariff_cycle, Some(TariffCycle::BiHourlyDaily));

        let n = roundtrip(
            "MOBI02PEPT0014000100386193PT_20210707_0000000001.sgl",
            Region::Azores,
            Direction::Outbound,
        );
        assert_eq!(n.party, PartyCode::Ceme("MOBI".into()));
        assert_eq!(n.tariff_cycle, Some(TariffCycle::TriHourlyDaily));
    }

    #[test]
    fn nineteen_character_cpe_in_the_rules_example_is_rejected() {
        let err = OrdFileName::parse(
            "12PEPT000200009999999XX_20200519_476.sgl",
            Region::Continent,
            Direction::Inbound,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                NameError::Cpe {
                    source: CpeError::Length { found: 19, .. },
                    offset: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn placeholder_cpe_in_a_name_is_rejected_with_expected_letters() {
        let err = OrdFileName::parse(
            "12PEPT0002000099999999XX_20210705_476.sgl",
            Region::Continent,
            Direction::Inbound,
        )
        .unwrap_err();
        let NameError::Cpe { offset, source, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(offset, 4 + 18);
        assert!(matches!(source, CpeError::CheckLetters { .. }));
    }

    #[test]
    fn names_that_fit_no_pattern_are_rejected() {
        for (name, region, direction) in [
            (
                "../171234PEPT0002000123681633GX_20190509_693.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "171234PEPT0002000123681633GX_20190509_693.txt",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "1712345PEPT0002000123681633GX_20190509_693.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "171234XXPT0002000123681633GX_20190509_693.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "171234PEPT0002000123681633GX_20191309_693.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "171234PEPT0002000123681633GX_20190509_.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "171234PEPT0002000123681633GX_20190509_69 3.sgl",
                Region::Continent,
                Direction::Inbound,
            ),
            (
                "000205PEPT0002000123681633GX_20190509_0000000001.sgl",
                Region::Continent,
                Direction::Outbound,
            ),
            (
                "000201PEPT0002000123681633GX_20190509_01.sgl",
                Region::Continent,
                Direction::Outbound,
            ),
            (
                "mobi01PEPT0014000100386193PT_20210707_0000000001.sgl",
                Region::Azores,
                Direction::Outbound,
            ),
            (
                "XPT0014000100605384QR_20210707_01.txt",
                Region::Azores,
                Direction::Inbound,
            ),
            ("", Region::Azores, Direction::Inbound),
        ] {
            assert!(
                OrdFileName::parse(name, region, direction).is_err(),
                "{name} must be rejected"
            );
        }
    }

    #[test]
    fn region_inference_follows_extension_and_distributor() {
        assert_eq!(
            OrdFileName::infer_region("PT0014000100605384QR_20210707_01.txt"),
            Region::Azores
        );
        assert_eq!(
            OrdFileName::infer_region("000999PEPT0013700005415700NY_20200618_0000000999"),
            Region::Madeira
        );
        assert_eq!(
            OrdFileName::infer_region("MOBI01PEPT0014000100386193PT_20210707_0000000001.sgl"),
            Region::Azores
        );
        assert_eq!(
            OrdFileName::infer_region("171234PEPT0002000123681633GX_20190509_693.sgl"),
            Region::Continent
        );
    }

    #[test]
    fn parse_any_prefers_outbound_only_when_the_outbound_pattern_fits() {
        let n = OrdFileName::parse_any(
            "000201PEPT0002000123681633GX_20190509_0000000001.sgl",
            Region::Continent,
        )
        .unwrap();
        assert_eq!(n.direction, Direction::Outbound);
        let n = OrdFileName::parse_any(
            "171234PEPT0002000123681633GX_20190509_693.sgl",
            Region::Continent,
        )
        .unwrap();
        assert_eq!(n.direction, Direction::Inbound);
    }

    #[test]
    fn our_names_past_ten_digits_are_recognised_as_ours_but_not_as_valid() {
        let name = "000201PEPT0002000123681633GX_20190509_10000000025.sgl";
        assert!(OrdFileName::parse(name, Region::Continent, Direction::Outbound).is_err());
        let n = OrdFileName::parse_ours(name, Region::Continent).unwrap();
        assert_eq!(n.ntransm.value, 10_000_000_025);
        assert_eq!(n.to_string(), name);
        // Fewer than 10 digits is not one of our names, nor is a u64 overflow.
        assert!(OrdFileName::parse_ours(
            "000201PEPT0002000123681633GX_20190509_000000001.sgl",
            Region::Continent
        )
        .is_err());
        assert!(OrdFileName::parse_ours(
            "000201PEPT0002000123681633GX_20190509_9999999999999999999.sgl",
            Region::Continent
        )
        .is_err());
    }
}
