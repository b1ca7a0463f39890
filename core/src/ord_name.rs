//! `OrdName`: an ORD's name as configured (`e-redes`, `eda`, `eem`) — the key of its rows in the ledger, its folders in the work folder, its label in logs and metrics.

use std::borrow::Borrow;
use std::ffi::OsStr;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// An ORD's name: letters, digits, `-` and `_`, at least one — so it is one safe component of a
/// path (`work/outbox/<name>/`) and a label that needs no quoting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrdName(String);

/// A text that is not an ORD's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected letters, digits, - or _, found {0:?}")]
pub struct BadOrdName(pub String);

impl OrdName {
    /// `text` as an ORD's name, if it is one.
    pub fn parse(text: &str) -> Result<OrdName, BadOrdName> {
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(OrdName(text.to_string()))
        } else {
            Err(BadOrdName(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrdName {
    type Error = BadOrdName;
    fn try_from(text: String) -> Result<OrdName, BadOrdName> {
        OrdName::parse(&text)
    }
}

impl From<OrdName> for String {
    fn from(name: OrdName) -> String {
        name.0
    }
}

impl std::str::FromStr for OrdName {
    type Err = BadOrdName;
    fn from_str(text: &str) -> Result<OrdName, BadOrdName> {
        OrdName::parse(text)
    }
}

impl fmt::Display for OrdName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OrdName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A name is one safe component of a path: `outbox.join(&ord.name)`.
impl AsRef<Path> for OrdName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

impl AsRef<OsStr> for OrdName {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(&self.0)
    }
}

/// Maps keyed by name are looked up by a name's text (`--ord e-redes`).
impl Borrow<str> for OrdName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for OrdName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OrdName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_letters_digits_dash_and_underscore() {
        for good in ["e-redes", "eda", "eem", "ORD_2", "x"] {
            assert_eq!(OrdName::parse(good).map(|n| n.to_string()), Ok(good.into()));
        }
        for bad in ["", "e redes", "../x", "a/b", "é", ".hidden", "x\n"] {
            assert_eq!(OrdName::parse(bad), Err(BadOrdName(bad.into())), "{bad:?}");
        }
    }

    #[test]
    fn a_name_reads_back_from_json_only_when_it_is_one() {
        let name = OrdName::parse("e-redes").unwrap();
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"e-redes\"");
        assert_eq!(serde_json::from_str::<OrdName>(&json).unwrap(), name);
        assert!(serde_json::from_str::<OrdName>("\"../etc\"").is_err());
    }
}
