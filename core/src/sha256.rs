//! `Sha256`: the sha256 of a file or of a content — its 32 bytes, shown (in logs, JSON and row checksums) as 64 lowercase hex digits.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sha256: 32 bytes. Computed by the shells (the core hashes nothing); compared, kept and shown
/// here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub const fn from_bytes(bytes: [u8; 32]) -> Sha256 {
        Sha256(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A sha256 written as 64 lowercase hex digits, as egme-ord writes them; anything else
    /// (uppercase included: never ours) is not one.
    pub fn parse(hex: &str) -> Option<Sha256> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(Sha256(bytes))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written whole: every sent row read checksums its two hashes' text.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, b) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sha256, D::Error> {
        let text = String::deserialize(d)?;
        Sha256::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a sha256 (64 lowercase hex digits), found {text:?}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn a_sha256_reads_back_from_its_hex_and_from_json() {
        let sha = Sha256::parse(ABC).unwrap();
        assert_eq!(sha.to_string(), ABC);
        assert_eq!(sha.as_bytes()[0], 0xba);
        assert_eq!(Sha256::from_bytes(*sha.as_bytes()), sha);
        let json = serde_json::to_string(&sha).unwrap();
        assert_eq!(json, format!("\"{ABC}\""));
        assert_eq!(serde_json::from_str::<Sha256>(&json).unwrap(), sha);
    }

    #[test]
    fn only_64_lowercase_hex_digits_are_a_sha256() {
        for bad in [
            "",
            &ABC[1..],
            &format!("{ABC}0"),
            &ABC.to_uppercase(),
            &ABC.replacen('b', "g", 1),
            &ABC.replacen('b', "é", 1)[..64],
        ] {
            assert_eq!(Sha256::parse(bad), None, "{bad:?}");
        }
        assert!(serde_json::from_str::<Sha256>("\"x\"").is_err());
    }
}
