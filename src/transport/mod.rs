//! `RemoteDir`: one folder of an ORD exchange account (list, read, atomic put); local, SFTP and FTP(S) implementations.

mod dry_run;
mod ftp;
mod local;
mod probe;
mod sftp;

pub use dry_run::DryRun;
pub use ftp::{check_tls_settings, FtpDir};
pub use local::LocalDir;
pub use probe::{Offered, Probe, RenameOntoExisting};
pub use sftp::SftpDir;

use std::io;

use thiserror::Error;

use egme_ord_core::remote::{upload_temp_name, Listing, RemoteEntry, SafeName, UnsafeEntry};

/// A transport failure, with the folder and file it concerns.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("{dir}: {op} {name}: {source}")]
    Io {
        dir: String,
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{dir}: {name} already exists with other content: not overwritten")]
    Conflict { dir: String, name: String },
    #[error("{dir}: {name} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        dir: String,
        name: String,
        size: u64,
        limit: u64,
    },
    #[error("{dir}: unsafe file name {name:?}")]
    UnsafeName { dir: String, name: String },
    /// A failure that belongs to one file (it vanished, it may not be read): the folder and the
    /// connection are fine, the other files go on.
    #[error("{dir}: {op} {name}: {detail}")]
    File {
        dir: String,
        op: &'static str,
        name: String,
        detail: String,
    },
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("{dir}: {op}: {detail}")]
    Ssh {
        dir: String,
        op: &'static str,
        detail: String,
    },
    #[error("host key of {}:{} is not in {} (offered {} key {}): refused; add it to known_hosts after checking it with the ORD{note}", .offered.host, .offered.port, .offered.known_hosts, .offered.key_type, .offered.fingerprint)]
    UnknownHostKey {
        offered: Box<OfferedKey>,
        /// More to say (a `@cert-authority` line for the host, a plain entry for port 22).
        note: String,
    },
    #[error("host key of {}:{} does not match {} line(s) {lines} (offered {} key {}): refused, possible man-in-the-middle; if the ORD changed its key, confirm the new fingerprint with them and replace the line", .offered.host, .offered.port, .offered.known_hosts, .offered.key_type, .offered.fingerprint)]
    HostKeyMismatch {
        offered: Box<OfferedKey>,
        lines: String,
    },
    #[error("host key of {}:{} ({} key {}) is marked @revoked in {} line {line}: refused; do not add it back: ask the ORD for the server's new key and confirm its fingerprint with them", .offered.host, .offered.port, .offered.key_type, .offered.fingerprint, .offered.known_hosts)]
    RevokedHostKey {
        offered: Box<OfferedKey>,
        line: usize,
    },
    #[error("TLS certificate of {host}:{port} refused: {detail}; the ORD's server must present a certificate that chains to ca_file (or the system's roots) and names {host}, or set certificate_sha256 to the fingerprint the ORD confirms")]
    Certificate {
        host: String,
        port: u16,
        detail: String,
    },
    #[error("authentication of {user}@{host}:{port} failed: {detail}")]
    Auth {
        user: String,
        host: String,
        port: u16,
        detail: String,
    },
}

impl TransportError {
    /// Whether the failure concerns one file only (the other files of the folder can go on).
    pub fn about_one_file(&self) -> bool {
        matches!(
            self,
            TransportError::Conflict { .. }
                | TransportError::TooLarge { .. }
                | TransportError::UnsafeName { .. }
                | TransportError::File { .. }
        )
    }
}

/// The host key a server offered, and where it was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedKey {
    pub host: String,
    pub port: u16,
    pub key_type: String,
    /// `SHA256:…`, as OpenSSH prints it.
    pub fingerprint: String,
    pub known_hosts: String,
}

/// What a listing's visitor says after an entry: go on, or the error that ends the listing.
pub type Visit = Result<(), TransportError>;

/// One entry of a folder as a streamed listing hands it over ([`RemoteDir::list_each`]).
pub enum Found<'a> {
    /// A regular file with a safe name (or an entry whose type the server did not say and that is
    /// no folder, taken as a file so that nothing at the ORD goes unseen).
    File(SafeName, Attributes<'a>),
    /// A regular file whose name is not safe: recorded and reported, never read.
    Unsafe(String, Attributes<'a>),
    /// A link, or a name that is not valid UTF-8 (shown lossily): never followed nor read.
    Odd(String),
    /// A hidden (dot) name, of any type: never a file of the listing; the temporary names of
    /// uploads are among them.
    Hidden(String),
}

/// A listed file's size and modification time (seconds since the epoch): given with the entry
/// (SFTP and FTP listings carry them), or read when asked (a local folder's listing gives names
/// and types only; each file's attributes cost a `stat`, paid only by the steps that need them).
pub struct Attributes<'a>(AttributesFrom<'a>);

enum AttributesFrom<'a> {
    Given(u64, i64),
    Asked(&'a dyn Fn() -> Result<(u64, i64), TransportError>),
}

impl<'a> Attributes<'a> {
    /// Attributes the listing gave.
    pub fn given(size: u64, mtime: i64) -> Attributes<'a> {
        Attributes(AttributesFrom::Given(size, mtime))
    }

    /// Attributes read by `ask` when they are needed.
    pub fn asked(ask: &'a dyn Fn() -> Result<(u64, i64), TransportError>) -> Attributes<'a> {
        Attributes(AttributesFrom::Asked(ask))
    }

    /// `(size, mtime)`.
    pub fn get(&self) -> Result<(u64, i64), TransportError> {
        match &self.0 {
            AttributesFrom::Given(size, mtime) => Ok((*size, *mtime)),
            AttributesFrom::Asked(ask) => ask(),
        }
    }
}

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The same bytes were already there (a delivery repeated after a crash).
    AlreadyThere,
}

/// One folder of an exchange account. Implementations: `LocalDir` (local or mounted folders), `SftpDir`, and `DryRun` around either.
pub trait RemoteDir {
    /// A description for messages (path or URL, never a secret).
    fn describe(&self) -> String;
    /// Hands every entry of the folder to `visit` as the server gives it, in the server's order,
    /// holding none of them (a folder nobody empties costs what `visit` keeps): regular files
    /// with their safe or unsafe names, hidden (dot) names of any type, links and names that are
    /// not valid UTF-8 as odd; folders left out. An error of `visit` ends the listing and is
    /// returned. A connection lost after the first entry was handed over is an error, never a
    /// second pass that hands entries over again.
    fn list_each(
        &mut self,
        visit: &mut dyn FnMut(Found<'_>) -> Visit,
    ) -> Result<(), TransportError>;

    /// The whole listing, every file with its attributes, sorted ([`Listing`]): for the steps
    /// that need all of it (a small folder, or one the operator asked about).
    fn list(&mut self) -> Result<Listing, TransportError> {
        collect_listing(self)
    }
    /// Removes `temp`, a name in this folder that is the temporary name of a put of ours cut
    /// short ([`egme_ord_core::remote::TempName::leftovers`]); a name already gone is no error. Never
    /// used on any other name.
    fn remove_leftover(&mut self, temp: &str) -> Result<(), TransportError>;
    /// What this folder's server does not offer that weakens a promise (e.g. no flush to disk),
    /// in words for the operator; asked after a listing, which connects.
    fn weakened(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// What the server offers and does, for `validate-config`'s table; with `writes` (a send
    /// folder), whether a temporary name can be created and renamed, and what a rename onto an
    /// existing name does — with temporary names only, all removed again.
    fn probe(&mut self, writes: bool) -> Probe {
        let _ = writes;
        Probe::new(self.describe())
    }
    /// Reads a whole file of at most `limit` bytes.
    fn read(&mut self, name: &SafeName, limit: u64) -> Result<Vec<u8>, TransportError>;
    /// Puts a file atomically (temporary name, then rename); never overwrites other content.
    fn put(&mut self, name: &SafeName, bytes: &[u8]) -> Result<PutOutcome, TransportError>;
    /// Moves a file into `folder` (relative to this folder, or absolute), creating it when needed;
    /// a name already taken there gets a `.1`, `.2`… suffix. Nothing is ever deleted.
    fn move_into(&mut self, name: &SafeName, folder: &str) -> Result<(), TransportError>;

    /// Reads several files, results in the same order; an implementation may use several connections.
    fn read_many(
        &mut self,
        names: &[SafeName],
        limit: u64,
    ) -> Vec<Result<Vec<u8>, TransportError>> {
        names.iter().map(|n| self.read(n, limit)).collect()
    }

    /// Puts several files in order. Sequentially (the default) it stops at the first failure: the
    /// result list is then shorter than `files`, and the files past it were not attempted.
    fn put_many(
        &mut self,
        files: &[(SafeName, Vec<u8>)],
    ) -> Vec<Result<PutOutcome, TransportError>> {
        put_in_order(self, files)
    }
}

/// The whole listing of `dir` through its [`RemoteDir::list_each`], sorted: what
/// [`RemoteDir::list`] gives unless an implementation says otherwise.
pub(crate) fn collect_listing<D: RemoteDir + ?Sized>(
    dir: &mut D,
) -> Result<Listing, TransportError> {
    let mut listing = Listing::default();
    dir.list_each(&mut |found| {
        match found {
            Found::File(name, attributes) => {
                let (size, mtime) = attributes.get()?;
                listing.files.push(RemoteEntry { name, size, mtime });
            }
            Found::Unsafe(name, attributes) => {
                let (size, mtime) = attributes.get()?;
                listing.unsafe_files.push(UnsafeEntry { name, size, mtime });
            }
            Found::Odd(name) => listing.odd.push(name),
            Found::Hidden(name) => listing.hidden.push(name),
        }
        Ok(())
    })?;
    listing.sort();
    Ok(listing)
}

/// `name` when it is one name of the folder (no separator, not `.` or `..`, not empty); the
/// names removed as leftovers come from a listing of the folder, this holds them to it.
pub(crate) fn plain_name<'a>(dir: &str, name: &'a str) -> Result<&'a str, TransportError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(TransportError::UnsafeName {
            dir: dir.to_string(),
            name: name.to_string(),
        });
    }
    Ok(name)
}

/// Puts files one after the other, stopping at the first failure (the results then end there).
pub fn put_in_order<D: RemoteDir + ?Sized>(
    dir: &mut D,
    files: &[(SafeName, Vec<u8>)],
) -> Vec<Result<PutOutcome, TransportError>> {
    let mut out = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let r = dir.put(name, bytes);
        let failed = r.is_err();
        out.push(r);
        if failed {
            break;
        }
    }
    out
}
