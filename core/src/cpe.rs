//! `Cpe`: the delivery-point code `PT` + 16 digits + 2 check letters (SGL-NOTES §8).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The check-letter alphabet shared with Spain's CUPS.
const CHECK_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// Length of a CPE in characters.
pub const CPE_LEN: usize = 20;

/// A validated delivery-point code, e.g. `PT0002000123681633GX`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpe([u8; CPE_LEN]);

/// Why a text is not a CPE.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CpeError {
    #[error(
        "a CPE has {CPE_LEN} characters (PT + 16 digits + 2 letters), found {found} in {text:?}"
    )]
    Length { text: String, found: usize },
    #[error("a CPE starts with \"PT\", found {found:?}")]
    Country { found: String },
    #[error("CPE character {position} must be a digit, found {found:?}")]
    Digit { position: usize, found: char },
    #[error("CPE {text}: check letters expected {expected}, found {found}")]
    CheckLetters {
        text: String,
        expected: String,
        found: String,
    },
}

impl CpeError {
    /// 0-based character offset of the problem inside the CPE text.
    pub fn offset(&self) -> usize {
        match self {
            CpeError::Length { .. } | CpeError::Country { .. } => 0,
            CpeError::Digit { position, .. } => position.saturating_sub(1),
            CpeError::CheckLetters { .. } => 18,
        }
    }
}

/// The two check letters for 16 digits.
pub fn check_letters(digits: &[u8; 16]) -> [u8; 2] {
    let mut n: u64 = 0;
    for d in digits {
        n = (n * 10 + u64::from(d - b'0')) % 529;
    }
    [
        CHECK_LETTERS[(n / 23) as usize],
        CHECK_LETTERS[(n % 23) as usize],
    ]
}

impl Cpe {
    /// Parses and checks a CPE; the error names the expected check letters.
    pub fn parse(text: &str) -> Result<Cpe, CpeError> {
        let bytes = text.as_bytes();
        if bytes.len() != CPE_LEN || !text.is_ascii() {
            return Err(CpeError::Length {
                text: text.to_string(),
                found: text.chars().count(),
            });
        }
        if &bytes[..2] != b"PT" {
            return Err(CpeError::Country {
                found: text[..2].to_string(),
            });
        }
        let mut digits = [0u8; 16];
        for (i, b) in bytes[2..18].iter().enumerate() {
            if !b.is_ascii_digit() {
                return Err(CpeError::Digit {
                    position: i + 3,
                    found: char::from(*b),
                });
            }
            digits[i] = *b;
        }
        let expected = check_letters(&digits);
        if bytes[18..20] != expected {
            return Err(CpeError::CheckLetters {
                text: text.to_string(),
                expected: String::from_utf8_lossy(&expected).into_owned(),
                found: text[18..].to_string(),
            });
        }
        let mut raw = [0u8; CPE_LEN];
        raw.copy_from_slice(bytes);
        Ok(Cpe(raw))
    }

    /// Builds a CPE from a 4-digit distributor code and a 12-digit number, computing the letters.
    pub fn from_parts(distributor: u16, number: u64) -> Option<Cpe> {
        if distributor > 9999 || number > 999_999_999_999 {
            return None;
        }
        let body = format!("{distributor:04}{number:012}");
        let mut digits = [0u8; 16];
        digits.copy_from_slice(body.as_bytes());
        let letters = check_letters(&digits);
        let mut raw = [0u8; CPE_LEN];
        raw[..2].copy_from_slice(b"PT");
        raw[2..18].copy_from_slice(&digits);
        raw[18..].copy_from_slice(&letters);
        Some(Cpe(raw))
    }

    /// The 16 digits as one number: with the check letters they determine, the whole CPE (the
    /// ledger keeps it so, in 7 bytes instead of 20).
    pub fn number(&self) -> u64 {
        self.0[2..18]
            .iter()
            .fold(0, |n, d| n * 10 + u64::from(d - b'0'))
    }

    /// The CPE of 16 digits given as a number (below 10^16), its check letters computed.
    pub fn from_number(number: u64) -> Option<Cpe> {
        if number >= 10_000_000_000_000_000 {
            return None;
        }
        Cpe::from_parts(
            u16::try_from(number / 1_000_000_000_000).ok()?,
            number % 1_000_000_000_000,
        )
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse` and `from_parts`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The 4-digit distributor code (`0002` E-Redes, `0013` EEM, `0014` EDA in the rule's examples).
    pub fn distributor(&self) -> &str {
        &self.as_str()[2..6]
    }
}

impl fmt::Display for Cpe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Cpe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cpe({})", self.as_str())
    }
}

impl FromStr for Cpe {
    type Err = CpeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cpe::parse(s)
    }
}

impl Serialize for Cpe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Cpe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Cpe::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_real_examples_pass() {
        for text in [
            "PT0002000123681633GX",
            "PT0014000100605384QR",
            "PT0013700005415700NY",
            "PT0014000100386193PT",
        ] {
            assert_eq!(
                Cpe::parse(text).map(|c| c.to_string()),
                Ok(text.to_string())
            );
        }
    }

    #[test]
    fn placeholder_cpe_is_rejected_naming_the_expected_letters() {
        let err = Cpe::parse("PT0002000099999999XX").unwrap_err();
        let expected = check_letters(b"0002000099999999");
        let expected = String::from_utf8_lossy(&expected).into_owned();
        assert_eq!(
            err,
            CpeError::CheckLetters {
                text: "PT0002000099999999XX".into(),
                expected: expected.clone(),
                found: "XX".into()
            }
        );
        assert!(err.to_string().contains(&format!("expected {expected}")));
    }

    #[test]
    fn a_cpe_is_its_number_and_the_number_gives_it_back() {
        for text in [
            "PT0002000123681633GX",
            "PT0014000100605384QR",
            "PT0013700005415700NY",
        ] {
            let cpe = Cpe::parse(text).unwrap();
            assert_eq!(Cpe::from_number(cpe.number()), Some(cpe));
        }
        assert_eq!(
            Cpe::parse("PT0002000123681633GX").unwrap().number(),
            2_000_123_681_633
        );
        assert_eq!(
            Cpe::from_number(9_999_999_999_999_999).map(|c| c.number()),
            Some(9_999_999_999_999_999)
        );
        assert_eq!(Cpe::from_number(10_000_000_000_000_000), None);
    }

    #[test]
    fn nineteen_character_typo_of_the_rule_is_rejected() {
        assert!(matches!(
            Cpe::parse("PT000200009999999XX"),
            Err(CpeError::Length { found: 19, .. })
        ));
    }

    #[test]
    fn wrong_country_and_non_digits_are_rejected() {
        assert!(matches!(
            Cpe::parse("ES0002000123681633GX"),
            Err(CpeError::Country { .. })
        ));
        assert!(matches!(
            Cpe::parse("PT00020001236816A3GX"),
            Err(CpeError::Digit {
                position: 17,
                found: 'A'
            })
        ));
        assert!(Cpe::parse("PT0002000123681633GÉ").is_err());
    }

    #[test]
    fn from_parts_makes_valid_cpes() {
        let cpe = Cpe::from_parts(2, 123681633).map(|c| c.to_string());
        assert_eq!(cpe.as_deref(), Some("PT0002000123681633GX"));
        assert!(Cpe::from_parts(10000, 1).is_none());
    }
}
