//! known_hosts read with OpenSSH's rules (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT) and the server's offered key judged against it: hashed names, `[host]:port`, patterns with negation, `@revoked`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A host's key.
    None,
    /// `@revoked`: this key must never be accepted, whatever other lines say.
    Revoked,
    /// `@cert-authority`: a CA for host certificates (not supported: see `docs/DECISIONS.md`).
    CertAuthority,
}

/// Which hosts a line is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the host name, keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns (`*`, `?`), each possibly negated with `!`.
    Patterns(Vec<(bool, String)>),
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub marker: Marker,
    hosts: Hosts,
    pub key_type: String,
    /// The public key blob (base64-decoded).
    pub key: Vec<u8>,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub reason: String,
}

/// A known_hosts file read: the usable lines, and the lines skipped (each worth a warning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    pub entries: Vec<Entry>,
    pub skipped: Vec<Skipped>,
}

/// What known_hosts says of a key a server offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Listed for this host (and port): accepted.
    Known { line: usize },
    /// Listed as `@revoked`: refused, whatever else is listed.
    Revoked { line: usize },
    /// This host has a key of this type listed, and it is another: refused (changed key).
    Changed { lines: Vec<usize> },
    /// Not listed for this host and port; `cert_authority`: a `@cert-authority` line names the
    /// host (its certificates are not supported).
    Unknown { cert_authority: bool },
}

impl KnownHosts {
    /// Reads a known_hosts file. Never fails: a line that cannot be read is skipped (and listed
    /// with why), so one bad line does not make a shared file useless.
    pub fn parse(text: &str) -> KnownHosts {
        let mut out = KnownHosts::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match parse_line(l) {
                Ok(mut e) => {
                    e.line = line;
                    out.entries.push(e);
                }
                Err(reason) => out.skipped.push(Skipped { line, reason }),
            }
        }
        out
    }

    /// Judges the key blob `offered` of `host` on `port` (OpenSSH's rules: a plain name matches
    /// port 22 only; any other port is written `[host]:port`).
    pub fn judge(&self, host: &str, port: u16, offered: &[u8]) -> Verdict {
        let name = if port == 22 {
            host.to_string()
        } else {
            format!("[{host}]:{port}")
        };
        let offered_type = key_type_of(offered);
        let for_host: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.hosts.matches(&name))
            .collect();
        if let Some(e) = for_host
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == offered)
        {
            return Verdict::Revoked { line: e.line };
        }
        let keys: Vec<&&Entry> = for_host
            .iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if let Some(e) = keys.iter().find(|e| e.key == offered) {
            return Verdict::Known { line: e.line };
        }
        let changed: Vec<usize> = keys
            .iter()
            .filter(|e| Some(e.key_type.as_str()) == offered_type.as_deref())
            .map(|e| e.line)
            .collect();
        if !changed.is_empty() {
            return Verdict::Changed { lines: changed };
        }
        Verdict::Unknown {
            cert_authority: for_host.iter().any(|e| e.marker == Marker::CertAuthority),
        }
    }
}

/// One line: `[@marker] hosts keytype base64 [comment]`.
fn parse_line(l: &str) -> Result<Entry, String> {
    let mut fields = l.split_whitespace();
    let mut first = fields.next().unwrap_or("");
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return Err(format!("unknown marker {m:?}")),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("a marker without host patterns")?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next().ok_or("no key type after the host patterns")?;
    let encoded = fields.next().ok_or("no key after the key type")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the key is not base64: {e}"))?;
    match key_type_of(&key) {
        Some(t) if t == key_type => {}
        Some(t) => return Err(format!("the key is a {t} key, the line says {key_type}")),
        None => return Err("the key is not an SSH public key".into()),
    }
    Ok(Entry {
        line: 0,
        marker,
        hosts,
        key_type: key_type.to_string(),
        key,
    })
}

fn parse_hosts(field: &str) -> Result<Hosts, String> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest
            .split_once('|')
            .ok_or("a hashed name without its hash")?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b64.decode(salt).map_err(|e| format!("hashed name: {e}"))?;
        let hash = b64.decode(hash).map_err(|e| format!("hashed name: {e}"))?;
        if salt.len() != 20 || hash.len() != 20 {
            return Err("hashed name: expected a 20-byte salt and hash".into());
        }
        return Ok(Hosts::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return Err(format!("unknown hashed-name format {field:?}"));
    }
    let patterns: Vec<(bool, String)> = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('!') {
            Some(negated) => (true, negated.to_ascii_lowercase()),
            None => (false, p.to_ascii_lowercase()),
        })
        .collect();
    if patterns.is_empty() {
        return Err("no host pattern".into());
    }
    Ok(Hosts::Patterns(patterns))
}

impl Hosts {
    /// Whether `name` (`host`, or `[host]:port` off port 22) is one of these hosts: a negated
    /// pattern that matches excludes it whatever else matches.
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let name = name.to_ascii_lowercase();
                let mut any = false;
                for (negated, p) in patterns {
                    if glob(p.as_bytes(), name.as_bytes()) {
                        if *negated {
                            return false;
                        }
                        any = true;
                    }
                }
                any
            }
        }
    }
}

/// `*` (any run) and `?` (any one character) matching, as OpenSSH's `match_pattern`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The key type a public key blob names (its first SSH string), if it is one.
fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    std::str::from_utf8(name).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up public key blob of `key_type` (`seed` makes it distinct).
    fn blob(key_type: &str, seed: u8) -> Vec<u8> {
        let mut b = (key_type.len() as u32).to_be_bytes().to_vec();
        b.extend(key_type.as_bytes());
        b.extend([0, 0, 0, 32]);
        b.extend([seed; 32]);
        b
    }

    fn line(hosts: &str, key: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        format!("{hosts} {} {b64}\n", key_type_of(key).unwrap())
    }

    fn hashed(name: &str, salt: [u8; 20]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(name.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "|1|{}|{}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_plain_name_means_port_22_and_brackets_name_another_port() {
        let k = blob("ssh-ed25519", 1);
        let kh = KnownHosts::parse(&line("127.0.0.1", &k));
        assert_eq!(kh.judge("127.0.0.1", 22, &k), Verdict::Known { line: 1 });
        assert_eq!(
            kh.judge("127.0.0.1", 2222, &k),
            Verdict::Unknown {
                cert_authority: false
            }
        );
        let kh = KnownHosts::parse(&line("[127.0.0.1]:2222", &k));
        assert_eq!(kh.judge("127.0.0.1", 2222, &k), Verdict::Known { line: 1 });
        assert!(matches!(
            kh.judge("127.0.0.1", 22, &k),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn revoked_wins_over_a_plain_line_of_the_same_key() {
        let k = blob("ssh-ed25519", 1);
        let text = line("[h]:2222", &k) + &line("@revoked *", &k);
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.judge("h", 2222, &k), Verdict::Revoked { line: 2 });
        // A revoked key alone is revoked, not unknown.
        let kh = KnownHosts::parse(&line("@revoked [h]:2222", &k));
        assert_eq!(kh.judge("h", 2222, &k), Verdict::Revoked { line: 1 });
    }

    #[test]
    fn hashed_names_comma_lists_wildcards_and_negation() {
        let k = blob("ecdsa-sha2-nistp256", 3);
        let kh = KnownHosts::parse(&line(&hashed("[sftp.eda.pt]:2222", [7; 20]), &k));
        assert_eq!(
            kh.judge("sftp.eda.pt", 2222, &k),
            Verdict::Known { line: 1 }
        );
        assert!(matches!(
            kh.judge("sftp.eem.pt", 2222, &k),
            Verdict::Unknown { .. }
        ));
        let kh = KnownHosts::parse(&line("a.example,*.eredes.pt,!bad.eredes.pt", &k));
        assert!(matches!(
            kh.judge("sftp.eredes.pt", 22, &k),
            Verdict::Known { .. }
        ));
        assert!(matches!(
            kh.judge("A.EXAMPLE", 22, &k),
            Verdict::Known { .. }
        ));
        assert!(matches!(
            kh.judge("bad.eredes.pt", 22, &k),
            Verdict::Unknown { .. }
        ));
        let kh = KnownHosts::parse(&line("[10.0.0.?]:2222", &k));
        assert!(matches!(
            kh.judge("10.0.0.7", 2222, &k),
            Verdict::Known { .. }
        ));
    }

    #[test]
    fn another_key_of_the_same_type_is_a_change_and_of_another_type_is_unknown() {
        let listed = blob("ssh-ed25519", 1);
        let kh = KnownHosts::parse(&line("h", &listed));
        assert_eq!(
            kh.judge("h", 22, &blob("ssh-ed25519", 2)),
            Verdict::Changed { lines: vec![1] }
        );
        assert!(matches!(
            kh.judge("h", 22, &blob("ssh-rsa", 2)),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn a_bad_line_is_skipped_with_its_line_and_the_others_still_count() {
        let k = blob("ssh-ed25519", 1);
        let text = "# comment\nthis is not a key line\n".to_string()
            + &line("h", &k)
            + "@what h ssh-ed25519 AAAA\nh ssh-ed25519 !!notbase64!!\n";
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.judge("h", 22, &k), Verdict::Known { line: 3 });
        let lines: Vec<usize> = kh.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 5], "{:?}", kh.skipped);
    }

    #[test]
    fn a_cert_authority_line_is_read_and_named_when_the_key_is_not_listed() {
        let k = blob("ssh-ed25519", 1);
        let kh = KnownHosts::parse(&line(
            "@cert-authority *.eredes.pt",
            &blob("ssh-ed25519", 9),
        ));
        assert_eq!(
            kh.judge("sftp.eredes.pt", 22, &k),
            Verdict::Unknown {
                cert_authority: true
            }
        );
    }

    #[test]
    fn nothing_in_a_file_panics_the_reader() {
        for text in [
            "@revoked",
            "|1|",
            "|1|a|b c d",
            "h ssh-ed25519",
            "h x AAAA",
            "\u{0}\u{ff}",
        ] {
            let kh = KnownHosts::parse(text);
            assert!(kh.entries.is_empty(), "{text:?}");
            let _ = kh.judge("h", 22, b"");
        }
    }
}
