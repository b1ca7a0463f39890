//! `Probe`: what one folder's server offers and does (banner, protocol, extensions, attributes, temporary names, renames, fsync), for `validate-config`'s table.

use serde::Serialize;

/// Whether the server offers something, as far as the probe could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offered {
    Yes,
    No,
    /// The probe could not tell (e.g. an empty folder says nothing of its files' attributes).
    Unknown,
}

impl Offered {
    pub fn from(yes: bool) -> Offered {
        if yes {
            Offered::Yes
        } else {
            Offered::No
        }
    }

    fn word(self) -> &'static str {
        match self {
            Offered::Yes => "yes",
            Offered::No => "no",
            Offered::Unknown => "unknown",
        }
    }
}

/// What a rename onto a name that exists does on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "detail")]
pub enum RenameOntoExisting {
    /// Refused, the existing file kept: what egme-ord's put relies on to never overwrite.
    Refused(String),
    /// The existing file silently replaced (SFTPGo, Go's pkg/sftp, FTP's RNTO on most servers).
    Replaces,
    /// Neither clearly: accepted, yet the target does not hold the renamed file.
    Unclear(String),
}

/// What probing one folder's server found. Fields the probe did not reach stay `None`.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Which folder (`<ord> <side>`) and where (a URL, never a secret).
    pub folder: String,
    pub location: String,
    /// The server's banner (SSH identification string, FTP welcome).
    pub server: Option<String>,
    /// `SFTP 3`, `FTP over TLS 1.3`, `local folder`.
    pub protocol: Option<String>,
    /// SFTP extensions, or the FTP features (FEAT).
    pub extensions: Vec<String>,
    /// Whether listed attributes carry permission bits (the file type) and times.
    pub permissions: Option<Offered>,
    pub mtime: Option<Offered>,
    /// The temporary name a put writes under: whether one could be created (and removed).
    pub temp_name: Option<Result<String, String>>,
    /// Whether a temporary name could be renamed (to another temporary name).
    pub rename: Option<Result<(), String>>,
    pub rename_onto_existing: Option<RenameOntoExisting>,
    /// `fsync@openssh.com` (SFTP), whether written files can be flushed on the server's disk.
    pub fsync: Option<Offered>,
    /// What breaks a promise, with the fix: `validate-config` fails on these.
    pub problems: Vec<String>,
    /// What weakens a promise.
    pub warnings: Vec<String>,
}

impl Probe {
    pub fn new(location: String) -> Probe {
        Probe {
            folder: String::new(),
            location,
            server: None,
            protocol: None,
            extensions: Vec::new(),
            permissions: None,
            mtime: None,
            temp_name: None,
            rename: None,
            rename_onto_existing: None,
            fsync: None,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The table's lines for this folder (a header, then one indented `what  value` line per
    /// thing probed).
    pub fn lines(&self) -> Vec<String> {
        let mut rows: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &self.server {
            rows.push(("server", s.clone()));
        }
        if let Some(p) = &self.protocol {
            rows.push(("protocol", p.clone()));
        }
        if !self.extensions.is_empty() {
            rows.push(("extensions", self.extensions.join(", ")));
        }
        if let (Some(p), Some(m)) = (self.permissions, self.mtime) {
            rows.push((
                "attributes",
                format!("permissions {}, mtime {}", p.word(), m.word()),
            ));
        }
        if let Some(t) = &self.temp_name {
            rows.push((
                "temp name",
                match t {
                    Ok(name) => format!("{name} created and removed"),
                    Err(e) => format!("REFUSED: {e}"),
                },
            ));
        }
        if let Some(r) = &self.rename {
            rows.push((
                "rename",
                match r {
                    Ok(()) => "allowed".to_string(),
                    Err(e) => format!("REFUSED: {e}"),
                },
            ));
        }
        if let Some(r) = &self.rename_onto_existing {
            rows.push((
                "onto existing",
                match r {
                    RenameOntoExisting::Refused(how) => {
                        format!("refused ({how}): never overwrites")
                    }
                    RenameOntoExisting::Replaces => "REPLACES the existing file".to_string(),
                    RenameOntoExisting::Unclear(how) => format!("unclear: {how}"),
                },
            ));
        }
        if let Some(f) = self.fsync {
            rows.push(("fsync", f.word().to_string()));
        }
        let mut out = vec![format!("{} ({}):", self.folder, self.location)];
        out.extend(rows.into_iter().map(|(k, v)| format!("  {k:<14} {v}")));
        out
    }
}
