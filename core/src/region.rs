//! `Region`: the three grid regions (Continent, Azores, Madeira) and their legal time zones.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The region an ORD serves; it fixes the file-name patterns and the time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Mainland Portugal (E-Redes), `Europe/Lisbon`.
    Continent,
    /// Região Autónoma dos Açores (EDA), `Atlantic/Azores`.
    Azores,
    /// Região Autónoma da Madeira (EEM), `Atlantic/Madeira`.
    Madeira,
}

impl Region {
    pub const ALL: [Region; 3] = [Region::Continent, Region::Azores, Region::Madeira];

    pub fn time_zone(self) -> Tz {
        match self {
            Region::Continent => chrono_tz::Europe::Lisbon,
            Region::Azores => chrono_tz::Atlantic::Azores,
            Region::Madeira => chrono_tz::Atlantic::Madeira,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Region::Continent => "continent",
            Region::Azores => "azores",
            Region::Madeira => "madeira",
        }
    }

    /// Islands name mobility suppliers by a 4-letter CEME code; the mainland by a 2-digit CSE code.
    pub fn uses_ceme_letters(self) -> bool {
        !matches!(self, Region::Continent)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "continent" | "continente" | "mainland" => Ok(Region::Continent),
            "azores" | "acores" | "açores" | "raa" => Ok(Region::Azores),
            "madeira" | "ram" => Ok(Region::Madeira),
            other => Err(format!(
                "unknown region {other:?}: expected continent, azores or madeira"
            )),
        }
    }
}
