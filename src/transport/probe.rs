//! `Probe`: what one folder's server offers and does (banner, protocol, extensions, attributes, temporary names, renames, fsync), for `validate-config`'s table.

use serde::Serialize;

/// The three names a write probe makes temporary names of (`egme-ord-probe-<ns>-a`, `-b`, `-c`),
/// unique to this moment.
pub fn probe_names() -> [String; 3] {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    ["a", "b", "c"].map(|tag| format!("egme-ord-probe-{stamp}-{tag}"))
}

/// What a write probe found: two temporary names created, the first renamed onto the second, the
/// survivor renamed to the third, all removed.
#[derive(Debug)]
pub struct Written {
    /// The first temporary name (created), or why it could not be.
    pub temp_name: Result<String, String>,
    pub rename: Option<Result<(), String>>,
    pub onto_existing: Option<RenameOntoExisting>,
    /// Probe files that could not be removed.
    pub left: Vec<String>,
}

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

    /// Records a write probe's findings: what breaks a promise as a problem with the fix, what
    /// weakens one as a warning. `temp_fix`: what the operator can change when no temporary name
    /// can be created; `replace_weakens`: whether a rename that replaces an existing name weakens
    /// a promise (over SFTP the put relies on the rename refusing; over FTP it checks first).
    pub fn record_writes(&mut self, w: Written, temp_fix: &str, replace_weakens: bool) {
        if let Err(e) = &w.temp_name {
            self.problems.push(format!("a temporary name cannot be created: {e}: the account needs the right to create and write files there, names that start with a dot included (ask the ORD's administrator){temp_fix}"));
        }
        if let Some(Err(e)) = &w.rename {
            self.problems.push(format!("a temporary name cannot be renamed: {e}: the account needs the right to rename its files there (ask the ORD's administrator; docs/INTEROP.md)"));
        }
        match &w.onto_existing {
            Some(RenameOntoExisting::Replaces) if replace_weakens => self.warnings.push("a rename onto an existing name replaces it: a put relies on the listing (the fence's, each cycle) and on our ids to never overwrite a file of another content (docs/INTEROP.md)".into()),
            Some(RenameOntoExisting::Unclear(how)) => self.warnings.push(format!("a rename onto an existing name neither failed nor replaced it ({how}): the put compares the file after each rename")),
            _ => {}
        }
        if !w.left.is_empty() {
            self.warnings.push(format!(
                "the probe's temporary files could not be removed: {} (the account needs the right to remove its own temporary names: a put cut short is cleaned that way)",
                w.left.join(", ")
            ));
        }
        self.temp_name = Some(w.temp_name);
        self.rename = w.rename;
        self.rename_onto_existing = w.onto_existing;
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
