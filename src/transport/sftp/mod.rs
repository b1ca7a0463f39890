//! `SftpDir`: one folder of an SFTP account through ssh2 (blocking; run it off async worker threads).

mod pipeline;
mod probe;
mod wire;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ssh2::{
    DisconnectCode, ErrorCode, FileStat, HashType, OpenFlags, OpenType, RenameFlags, Session, Sftp,
};

use self::pipeline::{Broken, Fetched, Lanes, Pipe, Refused, Unlisted, Upload, Wire};
use self::wire::NameEntry;
use egme_ord_core::remote::{entry_kind, EntryKind};

/// SFTP channels per session for pipelined batches (each one an sftp-server process at the ORD):
/// two lanes flush twice as many files at once as one, without another handshake. Fewer are used
/// when the server refuses more channels (OpenSSH allows 10 per connection by default).
const LANES: usize = 2;
use super::{
    collect_listing, plain_name, Attributes, Found, OfferedKey, PutOutcome, RemoteDir, SafeName,
    TransportError, Visit,
};
use crate::fsutil::permission_problem;
use egme_ord_core::known_hosts::{KnownHosts, Verdict};

use egme_ord_core::config::SftpSettings;
use egme_ord_core::remote::Listing;

struct Connection {
    session: Session,
    sftp: Sftp,
    /// The pipelined SFTP channels (lanes) of this session, spoken to directly for batches.
    pipe: Option<Lanes<Pipe>>,
    /// The session's socket (libssh2 holds its own handle), for a graceful end: see [`linger`].
    socket: Option<TcpStream>,
}

/// How long the end of a session waits for the server to close the connection after our
/// disconnect (one round trip, usually).
const LINGER: Duration = Duration::from_secs(1);

impl Drop for Connection {
    /// Ends the session with an SSH disconnect, as a client should (the server otherwise logs a
    /// broken connection for each one). Best effort: a connection that already failed cannot say
    /// goodbye, and nothing depends on it.
    fn drop(&mut self) {
        self.pipe = None;
        let said =
            self.session
                .disconnect(Some(DisconnectCode::ByApplication), "egme-ord: done", None);
        if let (Ok(()), Some(socket)) = (said, &self.socket) {
            linger(socket);
        }
    }
}

/// Ends our side of `socket` once the disconnect is sent, then reads what the server still sends
/// until it closes (at most [`LINGER`]). A socket closed with bytes unread (the server's answers to
/// the channels' last messages) sends a reset instead of a close, and the reset may overtake our
/// disconnect: the server then drops it unread and logs no orderly end of the session.
fn linger(socket: &TcpStream) {
    if socket.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let until = std::time::Instant::now() + LINGER;
    let mut unread = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*socket).read(&mut unread) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// An SFTP folder; connects lazily, reuses the session, reconnects after a failure.
pub struct SftpDir {
    settings: SftpSettings,
    conn: Option<Connection>,
    seq: u64,
    /// The extra connections of `sessions = N`, opened on first use and kept for later batches.
    helpers: Vec<SftpDir>,
    /// What the server lacks (`weakened`) was logged, once per folder and process.
    weakness_said: bool,
    /// The subfolder of `temp_name` (if any) was found or made.
    temp_folder_ready: bool,
    /// The last listing failed because READDIRs were outstanding together ([`Unlisted`]): a
    /// whole listing ([`RemoteDir::list`]) is asked again, one READDIR at a time.
    listing_unsure: bool,
}

/// The servers (`user@host:port`) that answered READDIRs outstanding together in a way that left
/// a listing unsure ([`Unlisted`]): listed one READDIR at a time for the rest of the process.
static ONE_READDIR_AT_A_TIME: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

impl SftpDir {
    pub fn new(settings: SftpSettings) -> SftpDir {
        SftpDir {
            settings,
            conn: None,
            seq: 0,
            helpers: Vec::new(),
            weakness_said: false,
            temp_folder_ready: false,
            listing_unsure: false,
        }
    }

    fn ssh(&self, op: &'static str, e: impl std::fmt::Display) -> TransportError {
        TransportError::Ssh {
            dir: self.describe(),
            op,
            detail: e.to_string(),
        }
    }

    /// A failure of `op` on `path`: the server's words, the path, and for a refusal (permission
    /// denied, or a generic failure) what the ORD's administrator can change.
    fn refused(&self, op: &'static str, path: &Path, e: ssh2::Error) -> TransportError {
        let hint = match (e.code(), op) {
            (ErrorCode::SFTP(3 | 4), "create") => "; the account needs the right to create and write files in this folder, names that start with a dot included (ask the ORD's administrator, or set `temp_name` on this send folder, e.g. temp_name = \"{name}.part\"; docs/INTEROP.md)",
            (ErrorCode::SFTP(3 | 4), "rename") => "; the account needs the right to rename its files in this folder (ask the ORD's administrator; docs/INTEROP.md)",
            (ErrorCode::SFTP(3 | 4), "remove") => "; the account needs the right to delete its own temporary files in this folder (ask the ORD's administrator; docs/INTEROP.md)",
            _ => "",
        };
        self.ssh(op, format!("{}: {e}{hint}", path.display()))
    }

    fn remote(&self, name: impl AsRef<Path>) -> PathBuf {
        Path::new(&self.settings.path).join(name)
    }

    fn connect(&self) -> Result<Connection, TransportError> {
        let s = &self.settings;
        let addr: SocketAddr = (s.host.as_str(), s.port)
            .to_socket_addrs()
            .map_err(|source| TransportError::Connect {
                host: s.host.clone(),
                port: s.port,
                source,
            })?
            .next()
            .ok_or_else(|| TransportError::Connect {
                host: s.host.clone(),
                port: s.port,
                source: io::Error::other("no address"),
            })?;
        let connect_err = |source| TransportError::Connect {
            host: s.host.clone(),
            port: s.port,
            source,
        };
        let tcp = TcpStream::connect_timeout(&addr, s.connect_timeout).map_err(connect_err)?;
        // Without them a silent server would hold the cycle for ever. Without `nodelay`, Nagle's
        // algorithm held a small request (a READDIR) behind our previous small packet (a window
        // adjust) until the server's delayed acknowledgement: listing 300,000 names took 11.8 s
        // instead of 6.2 s (docs/PERFORMANCE.md).
        tcp.set_read_timeout(Some(s.io_timeout))
            .and_then(|()| tcp.set_write_timeout(Some(s.io_timeout)))
            .and_then(|()| tcp.set_nodelay(true))
            .map_err(connect_err)?;
        // A second handle on the socket for the session's end; without one the end is abrupt.
        let socket = tcp.try_clone().ok();
        let mut session = Session::new().map_err(|e| self.ssh("session", e))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(u32::try_from(s.io_timeout.as_millis()).unwrap_or(u32::MAX));
        session.handshake().map_err(|e| self.ssh("handshake", e))?;
        self.check_host_key(&session)?;
        self.authenticate(&session)?;
        // Only now: a keepalive (an SSH global request) sent before the login completes makes
        // strict servers drop the connection ("invalid request before authentication").
        session.set_keepalive(
            true,
            u32::try_from(s.keepalive.as_secs()).unwrap_or(60).max(1),
        );
        let sftp = session.sftp().map_err(|e| self.ssh("sftp subsystem", e))?;
        Ok(Connection {
            session,
            sftp,
            pipe: None,
            socket,
        })
    }

    /// Fails closed: the server's key must be in known_hosts for this host and port.
    fn check_host_key(&self, session: &Session) -> Result<(), TransportError> {
        let s = &self.settings;
        let (key, key_type) = session
            .host_key()
            .ok_or_else(|| self.ssh("host key", "the server offered no host key"))?;
        let fingerprint = session
            .host_key_hash(HashType::Sha256)
            .map(|h| format!("SHA256:{}", base64_unpadded(h)))
            .unwrap_or_else(|| "(no fingerprint)".into());
        let key_type = format!("{key_type:?}");
        let known_hosts = s.known_hosts.display().to_string();
        let text = crate::fsutil::read_input(&s.known_hosts, crate::fsutil::MAX_SECRET_BYTES)
            .map_err(|e| self.ssh("known_hosts", format!("cannot read {known_hosts}: {e}")))?;
        // Read with OpenSSH's rules, decided by the core; a bad line is skipped, not fatal.
        let known = KnownHosts::parse(&text);
        for skipped in &known.skipped {
            tracing::warn!(file = %known_hosts, line = skipped.line, reason = %skipped.reason, "known_hosts line skipped: it cannot be read (the other lines still count)");
        }
        let port = s.port;
        let offered = Box::new(OfferedKey {
            host: s.host.clone(),
            port,
            key_type,
            fingerprint,
            known_hosts,
        });
        match known.judge(&s.host, s.port, key) {
            Verdict::Known { .. } => Ok(()),
            Verdict::Revoked { line } => Err(TransportError::RevokedHostKey { offered, line }),
            Verdict::Changed { lines } => Err(TransportError::HostKeyMismatch {
                offered,
                lines: lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            Verdict::Unknown { cert_authority } => {
                let mut note = String::new();
                if cert_authority {
                    note.push_str("; a @cert-authority line names this host, but host certificates are not supported: list the host's own key");
                }
                if port != 22
                    && known.judge(&s.host, 22, key)
                        != (Verdict::Unknown {
                            cert_authority: false,
                        })
                {
                    note.push_str(&format!("; the key is listed for port 22 only: a line for port {port} is written [{}]:{port}", s.host));
                }
                Err(TransportError::UnknownHostKey { offered, note })
            }
        }
    }

    fn authenticate(&self, session: &Session) -> Result<(), TransportError> {
        let s = &self.settings;
        let auth_err = |detail: String| TransportError::Auth {
            user: s.user.clone(),
            host: s.host.clone(),
            port: s.port,
            detail,
        };
        for (file, secret) in [
            (s.key.as_ref(), true),
            (s.passphrase_file.as_ref(), true),
            (Some(&s.known_hosts), false),
        ] {
            if let Some(problem) = file.and_then(|f| permission_problem(f, secret)) {
                return Err(auth_err(format!("refused: {problem}")));
            }
        }
        if let Some(key) = &s.key {
            let passphrase = match (&s.passphrase_env, &s.passphrase_file) {
                (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                    auth_err(format!(
                        "environment variable {var} (the key's passphrase) is not set"
                    ))
                })?),
                (None, Some(file)) => Some(
                    crate::fsutil::read_input(file, crate::fsutil::MAX_SECRET_BYTES)
                        .map_err(|e| {
                            auth_err(format!(
                                "cannot read the passphrase file {}: {e}",
                                file.display()
                            ))
                        })?
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                ),
                (None, None) => None,
            };
            session
                .userauth_pubkey_file(&s.user, None, key, passphrase.as_deref())
                .map_err(|e| auth_err(key_problem(key, passphrase.is_some(), &e)))?;
        } else if let Some(var) = &s.password_env {
            let password = std::env::var(var).map_err(|_| {
                auth_err(format!(
                    "environment variable {var} (the password) is not set"
                ))
            })?;
            session
                .userauth_password(&s.user, &password)
                .map_err(|e| auth_err(e.message().to_string()))?;
        } else {
            return Err(auth_err("no key and no password configured".into()));
        }
        if session.authenticated() {
            Ok(())
        } else {
            Err(auth_err("the server did not accept the credentials".into()))
        }
    }

    /// Runs `op` on a connection, reconnecting once per further attempt after a failure
    /// (exponential backoff with jitter). Host-key and authentication failures are not retried.
    fn with_sftp<T>(
        &mut self,
        mut op: impl FnMut(&Self, &Sftp) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        self.retrying("connect", |me| {
            if me.conn.is_none() {
                me.conn = Some(me.connect().map_err(Attempt::of_connect)?);
            }
            let Some(conn) = me.conn.as_ref() else {
                return Err(Attempt::Again(me.ssh("connect", "no connection")));
            };
            op(me, &conn.sftp).map_err(|e| {
                if about_one_file(&e) {
                    Attempt::Stop(e)
                } else {
                    Attempt::Again(e)
                }
            })
        })
    }

    /// Runs `attempt` up to `attempts` times, waiting [`backoff`] before each retry; after an
    /// attempt that failed with [`Attempt::Again`] the connection is dropped (the next one
    /// reconnects). `what` names the operation when no attempt could be made.
    fn retrying<T>(
        &mut self,
        what: &'static str,
        mut attempt: impl FnMut(&mut Self) -> Result<T, Attempt>,
    ) -> Result<T, TransportError> {
        let attempts = self.settings.attempts.max(1);
        let mut last = None;
        for n in 0..attempts {
            if n > 0 {
                std::thread::sleep(backoff(n, self.seq));
            }
            match attempt(self) {
                Ok(v) => return Ok(v),
                Err(Attempt::Stop(e)) => return Err(e),
                Err(Attempt::Again(e)) => {
                    self.conn = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| self.ssh(what, "no attempt made")))
    }
}

/// How one attempt of an operation failed: worth another attempt on a new connection, or not.
enum Attempt {
    Again(TransportError),
    /// Host key, authentication, or a failure about one file: retrying cannot help.
    Stop(TransportError),
}

impl Attempt {
    /// A failure to connect: fatal ones ([`is_fatal`]) stop.
    fn of_connect(e: TransportError) -> Attempt {
        if is_fatal(&e) {
            Attempt::Stop(e)
        } else {
            Attempt::Again(e)
        }
    }
}

/// 0.5 s × 2^attempt (at most 30 s), plus up to 25 % jitter.
/// The wait before retry `attempt` of an operation: 0.5 s doubling, at most 30 s, jittered by the
/// operation's number and the process (several egme-ord processes retrying together spread out).
pub(in crate::transport) fn backoff(attempt: u32, seed: u64) -> Duration {
    egme_ord_core::backoff::backoff(
        Duration::from_millis(500),
        attempt,
        Duration::from_secs(30),
        seed ^ u64::from(std::process::id()).rotate_left(32),
    )
}

/// A regular file, or an entry whose type the server did not say (no permission bits): such a
/// one is opened as a file, and fails to read if it is none.
fn is_regular(stat: &FileStat) -> bool {
    stat.perm.is_none() || stat.file_type().is_file()
}

/// What a server without `fsync@openssh.com` means for the operator.
const NO_FSYNC: &str = "the server does not offer fsync@openssh.com: a delivered file is on the ORD's disk only once its server flushes it, so a crash of the ORD's server right after a delivery may lose it (ask the ORD; docs/INTEROP.md)";

/// Host-key and authentication failures: retrying cannot help.
fn is_fatal(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::UnknownHostKey { .. }
            | TransportError::HostKeyMismatch { .. }
            | TransportError::RevokedHostKey { .. }
            | TransportError::Auth { .. }
    )
}

/// Hands one entry of a listing to `visit` by its kind: a file (safe or unsafe name), a link as
/// odd, a name that is not UTF-8 as odd; folders and others are left out.
fn hand_over(entry: FolderEntry, visit: &mut dyn FnMut(Found<'_>) -> Visit) -> Visit {
    let name = match entry.name {
        Ok(name) => name,
        Err(shown) => return visit(Found::Odd(shown)),
    };
    match entry.kind {
        // `None`: not said by the server, not a folder: taken as a file, so that nothing at the
        // ORD goes unseen (reading it fails if it is no file).
        Some(EntryKind::File) | None => {
            let attributes = Attributes::given(entry.size, entry.mtime);
            match SafeName::from_string(name) {
                Ok(name) => visit(Found::File(name, attributes)),
                Err(name) => visit(Found::Unsafe(name, attributes)),
            }
        }
        Some(EntryKind::Link) => visit(Found::Odd(name)),
        Some(EntryKind::Folder | EntryKind::Other | EntryKind::Unknown) => Ok(()),
    }
}

/// One entry of a remote folder as the listing found it.
struct FolderEntry {
    /// The name, or (not UTF-8) the name as shown in messages.
    name: Result<String, String>,
    /// `None`: not said by the server, and not a folder.
    kind: Option<EntryKind>,
    size: u64,
    mtime: i64,
}

impl RemoteDir for SftpDir {
    fn describe(&self) -> String {
        let s = &self.settings;
        format!("sftp://{}@{}:{}{}", s.user, s.host, s.port, s.path)
    }

    fn list_each(
        &mut self,
        visit: &mut dyn FnMut(Found<'_>) -> Visit,
    ) -> Result<(), TransportError> {
        // Entries whose type the listing did not say: probed once the listing ended.
        let mut unknown = Vec::new();
        self.folder_entries(&mut |entry| match entry.kind {
            _ if entry.name.as_ref().is_ok_and(|n| n.starts_with('.')) => {
                // Hidden names are never files of a listing: never probed.
                visit(Found::Hidden(entry.name.unwrap_or_default()))
            }
            Some(EntryKind::Unknown) if entry.name.is_ok() => {
                unknown.push(entry);
                Ok(())
            }
            _ => hand_over(entry, visit),
        })?;
        if unknown.is_empty() {
            return Ok(());
        }
        self.probe_unknown(&mut unknown)?;
        let untyped = unknown.iter().filter(|e| e.kind.is_none()).count();
        if untyped > 0 {
            tracing::warn!(dir = %self.describe(), untyped, "the server's listing says no type for these entries (no permission bits, no typed long name, not even in lstat), and they do not open as folders: taken as files; docs/INTEROP.md");
        }
        for entry in unknown {
            hand_over(entry, visit)?;
        }
        Ok(())
    }

    /// The whole listing; one that READDIRs outstanding together left unsure is asked again at
    /// once, one READDIR at a time (nothing of the first was kept).
    fn list(&mut self) -> Result<Listing, TransportError> {
        self.listing_unsure = false;
        match collect_listing(self) {
            Err(e) if std::mem::take(&mut self.listing_unsure) => {
                tracing::warn!(dir = %self.describe(), error = %e, "listed again, one READDIR at a time");
                collect_listing(self)
            }
            listed => listed,
        }
    }

    fn remove_leftover(&mut self, temp: &str) -> Result<(), TransportError> {
        let path = self.remote(plain_name(&self.describe(), temp)?);
        self.with_sftp(|me, sftp| match sftp.unlink(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::SFTP(2) => Ok(()),
            Err(e) => Err(me.refused("remove", &path, e)),
        })
    }

    fn read(&mut self, name: &SafeName, limit: u64) -> Result<Vec<u8>, TransportError> {
        let path = self.remote(name);
        let about_file = |me: &Self, op: &'static str, e: ssh2::Error| {
            if file_status(&e) {
                TransportError::File {
                    dir: me.describe(),
                    op,
                    name: name.to_string(),
                    detail: e.to_string(),
                }
            } else {
                me.ssh(op, e)
            }
        };
        self.with_sftp(|me, sftp| {
            let stat = sftp.lstat(&path).map_err(|e| about_file(me, "stat", e))?;
            if !is_regular(&stat) {
                return Err(TransportError::UnsafeName {
                    dir: me.describe(),
                    name: name.to_string(),
                });
            }
            let file = sftp.open(&path).map_err(|e| about_file(me, "open", e))?;
            let mut bytes = Vec::new();
            file.take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| me.ssh("read", e))?;
            if bytes.len() as u64 > limit {
                return Err(TransportError::TooLarge {
                    dir: me.describe(),
                    name: name.to_string(),
                    size: bytes.len() as u64,
                    limit,
                });
            }
            Ok(bytes)
        })
    }

    fn put(&mut self, name: &SafeName, bytes: &[u8]) -> Result<PutOutcome, TransportError> {
        self.seq += 1;
        self.ensure_temp_folder();
        let final_path = self.remote(name);
        // One temporary name per file (`temp_name`; hidden by default: listings skip it). A put
        // cut short leaves it behind, and the next put of the same file, this cycle or the next,
        // removes or truncates it and renames it away.
        let temp_path = self.remote(self.settings.temp_name.of(name));
        self.with_sftp(|me, sftp| {
            // No stat first: the rename below refuses an existing name, and only then is the file
            // there compared (one round trip less per file; a re-put after a crash is the rare case).
            {
                let create = || {
                    sftp.open_mode(
                        &temp_path,
                        OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                        0o640,
                        OpenType::File,
                    )
                };
                // A leftover of ours (a put cut short) is removed and the create tried once more:
                // a server that never overwrites (ProFTPD's `AllowOverwrite off`) refuses to open
                // it again.
                let mut f = create()
                    .or_else(|_| {
                        // A leftover that cannot be removed makes the create below fail, with its error.
                        let _ = sftp.unlink(&temp_path);
                        create()
                    })
                    .map_err(|e| me.refused("create", &temp_path, e))?;
                f.write_all(bytes).map_err(|e| me.ssh("write", e))?;
                // fsync@openssh.com where offered (and configured); older servers lack it, which
                // is not an error here.
                if me.settings.fsync {
                    // A server without the extension was said when the session started (NO_FSYNC).
                    if let Err(e) = f.fsync() {
                        tracing::debug!(path = %temp_path.display(), error = %e, "fsync refused");
                    }
                }
            }
            // OpenSSH's plain rename refuses an existing target (link + unlink): no overwrite.
            match sftp.rename(
                &temp_path,
                &final_path,
                Some(RenameFlags::ATOMIC | RenameFlags::NATIVE),
            ) {
                Ok(()) => {}
                Err(e) => {
                    // The write's error is what is reported; a temporary file left is replaced next time.
                    let _ = sftp.unlink(&temp_path);
                    if let Some(outcome) = me.existing(sftp, &final_path, name.as_str(), bytes)? {
                        return Ok(outcome);
                    }
                    return Err(me.refused("rename", &temp_path, e));
                }
            }
            let stat = sftp
                .stat(&final_path)
                .map_err(|e| me.ssh("stat after rename", e))?;
            if stat.size != Some(bytes.len() as u64) {
                return Err(me.ssh(
                    "stat after rename",
                    format!(
                        "{name} has {:?} bytes, {} were written",
                        stat.size,
                        bytes.len()
                    ),
                ));
            }
            Ok(PutOutcome::Created)
        })
    }

    fn move_into(&mut self, name: &SafeName, folder: &str) -> Result<(), TransportError> {
        let from = self.remote(name);
        let target = if folder.starts_with('/') {
            PathBuf::from(folder)
        } else {
            self.remote(folder)
        };
        self.with_sftp(|me, sftp| {
            if sftp.stat(&target).is_err() {
                sftp.mkdir(&target, 0o750).map_err(|e| me.ssh("mkdir", e))?;
            }
            for i in 0..1000 {
                let candidate = if i == 0 {
                    target.join(name)
                } else {
                    target.join(format!("{name}.{i}"))
                };
                if sftp.stat(&candidate).is_ok() {
                    continue;
                }
                return sftp
                    .rename(&from, &candidate, None)
                    .map_err(|e| me.ssh("move", e));
            }
            Err(me.ssh(
                "move",
                format!("no free name for {name} in {}", target.display()),
            ))
        })
    }

    fn probe(&mut self, writes: bool) -> super::Probe {
        self.probe_server(writes)
    }

    fn weakened(&mut self) -> Vec<String> {
        let wanted = self.settings.fsync;
        match self.pipe() {
            Ok(pipe) if wanted && !pipe.offers_fsync() => vec![NO_FSYNC.to_string()],
            _ => Vec::new(),
        }
    }

    /// Pipelined over up to `sessions` connections; what the pipeline cannot do goes one by one.
    fn read_many(
        &mut self,
        names: &[SafeName],
        limit: u64,
    ) -> Vec<Result<Vec<u8>, TransportError>> {
        self.spread(names.len(), false, |dir, share| {
            dir.read_share(names, share, limit)
        })
    }

    /// Pipelined over up to `sessions` connections. With one session the files become visible in
    /// their order and the first failure ends the batch, as `put_in_order`.
    fn put_many(
        &mut self,
        files: &[(SafeName, Vec<u8>)],
    ) -> Vec<Result<PutOutcome, TransportError>> {
        let strict = self.settings.sessions <= 1;
        // Once per folder, before the batch is spread over the sessions.
        self.ensure_temp_folder();
        if !self.weakness_said {
            self.weakness_said = true;
            for w in self.weakened() {
                tracing::warn!(dir = %self.describe(), "{w}");
            }
        }
        self.spread(files.len(), strict, |dir, share| {
            dir.put_share(files, share, strict)
        })
    }
}

/// Why a private key was not accepted, in words an operator can act on (libssh2 reports a wrong
/// passphrase as an unsupported or unreadable key format).
fn key_problem(key: &Path, with_passphrase: bool, e: &ssh2::Error) -> String {
    let message = e.message();
    let unreadable = message.contains("format")
        || message.contains("passphrase")
        || message.contains("Unable to extract");
    match (unreadable, with_passphrase) {
        (true, true) => format!("key {}: cannot be opened with the passphrase given: the passphrase is wrong, or the file is not an ed25519, ECDSA or RSA private key ({message})", key.display()),
        (true, false) => format!("key {}: cannot be read: it may be protected by a passphrase (set passphrase_env or passphrase_file), or it is not an ed25519, ECDSA or RSA private key ({message})", key.display()),
        (false, _) => format!("key {}: {message}", key.display()),
    }
}

/// A failure that concerns one file only: the transfers after it can go on.
fn about_one_file(e: &TransportError) -> bool {
    e.about_one_file()
}

/// SFTP status codes that are about the file asked for, not the connection:
/// `SSH_FX_NO_SUCH_FILE` (2) and `SSH_FX_PERMISSION_DENIED` (3).
fn file_status(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::SFTP(2 | 3))
}

impl SftpDir {
    /// Runs `op` on the pipelined channels, reconnecting once per further attempt after the
    /// channel broke (as `with_sftp`).
    fn on_pipe<T>(
        &mut self,
        what: &'static str,
        mut op: impl FnMut(&mut Lanes<Pipe>) -> Result<T, Broken>,
    ) -> Result<T, TransportError> {
        self.retrying(what, |me| {
            let done = op(me.pipe().map_err(Attempt::of_connect)?);
            done.map_err(|Broken(why)| Attempt::Again(me.ssh(what, why)))
        })
    }

    /// `user@host:port`: what [`ONE_READDIR_AT_A_TIME`] remembers.
    fn server_key(&self) -> String {
        let s = &self.settings;
        format!("{}@{}:{}", s.user, s.host, s.port)
    }

    /// READDIRs kept outstanding in a listing of this server's folders.
    fn readdir_depth(&self) -> usize {
        let slow = ONE_READDIR_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&self.server_key());
        if slow {
            1
        } else {
            pipeline::READDIR_DEPTH
        }
    }

    /// This server's folders are listed one READDIR at a time from now on (this process).
    fn one_readdir_at_a_time(&mut self) {
        self.listing_unsure = true;
        ONE_READDIR_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.server_key());
    }

    /// Hands every entry of the folder (hidden ones too) to `each` as its batch arrives, with its
    /// kind as the listing says it: from the permission bits, else from the long name (`Unknown`
    /// where neither says). A connection lost before the first entry is tried again on a new
    /// one; after it, it is an error (the entries handed over are never handed again).
    fn folder_entries(
        &mut self,
        each: &mut dyn FnMut(FolderEntry) -> Visit,
    ) -> Result<(), TransportError> {
        let path = self.settings.path.clone();
        let depth = self.readdir_depth();
        let describe = self.describe();
        let mut handed = false;
        let mut failed = None;
        let listed = self.retrying("list", |me| {
            if handed {
                return Err(Attempt::Stop(me.ssh("list", "the connection was lost in the middle of the listing (the next cycle lists the folder again)")));
            }
            let pipe = me.pipe().map_err(Attempt::of_connect)?;
            let mut batch = |names: Vec<NameEntry>| {
                for n in names {
                    if n.filename == b"." || n.filename == b".." {
                        continue;
                    }
                    handed = true;
                    let entry = FolderEntry {
                        kind: Some(entry_kind(n.attrs.permissions, &n.longname)),
                        size: n.attrs.size.unwrap_or(0),
                        mtime: i64::from(n.attrs.mtime.unwrap_or(0)),
                        name: String::from_utf8(n.filename)
                            .map_err(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    };
                    if let Err(e) = each(entry) {
                        failed = Some(e);
                        return false;
                    }
                }
                true
            };
            pipeline::list_dir(pipe, &path, depth, &mut batch)
                .map_err(|Broken(why)| Attempt::Again(me.ssh("list", why)))
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        listed.map_err(|unlisted| {
            let refused = |Refused { code, message }| TransportError::Ssh {
                dir: describe.clone(),
                op: "list",
                detail: format!("the server refused to list {path}: {message} (SFTP status {code}); the account needs the right to list this folder"),
            };
            match unlisted {
                Unlisted::Refused(r) => refused(r),
                Unlisted::ReadRefused(r) if depth == 1 => refused(r),
                // With READDIRs outstanding, a refusal or names after the end leave it unsure
                // what the server read: nothing of the listing is used, and from now on this
                // process sends one READDIR at a time.
                Unlisted::ReadRefused(Refused { code, message }) => {
                    self.one_readdir_at_a_time();
                    TransportError::Ssh {
                        dir: describe,
                        op: "list",
                        detail: format!("the server refused a READDIR of {path} while {depth} were outstanding: {message} (SFTP status {code}); nothing of this listing is used; this process lists the server's folders one request at a time from now on; docs/INTEROP.md"),
                    }
                }
                Unlisted::OutOfSequence => {
                    self.one_readdir_at_a_time();
                    TransportError::Ssh {
                        dir: describe,
                        op: "list",
                        detail: format!("the server answered the listing of {path} out of sequence (names after the folder's end): it does not process a folder's READDIR requests in order, as SFTP requires, so nothing of this listing is used; this process lists the server's folders one request at a time from now on; docs/INTEROP.md"),
                    }
                }
            }
        })
    }

    /// Decides the kind of the entries the listing gave none for: from `lstat`, else whether
    /// they open and read as folders (all asked at once).
    fn probe_unknown(&mut self, entries: &mut [FolderEntry]) -> Result<(), TransportError> {
        let unknown: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].kind == Some(EntryKind::Unknown) && entries[i].name.is_ok())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = unknown
            .iter()
            .filter_map(|&i| entries[i].name.as_ref().ok())
            .map(|n| self.remote_text(n))
            .collect();
        let kinds = self.on_pipe("list", |pipe| pipeline::probe_kinds(pipe, &paths))?;
        for (&i, kind) in unknown.iter().zip(kinds) {
            entries[i].kind = kind;
        }
        Ok(())
    }
}

impl SftpDir {
    /// Makes the subfolder `temp_name` writes into, when it names one and it is not there (once
    /// per folder and process; a failure shows in the puts, which then name the path).
    fn ensure_temp_folder(&mut self) {
        if self.temp_folder_ready {
            return;
        }
        let Some(folder) = self.settings.temp_name.folder().map(|f| self.remote(f)) else {
            self.temp_folder_ready = true;
            return;
        };
        let made = self.with_sftp(|me, sftp| {
            if sftp.stat(&folder).is_err() {
                sftp.mkdir(&folder, 0o750)
                    .map_err(|e| me.refused("mkdir", &folder, e))?;
            }
            Ok(())
        });
        match made {
            Ok(()) => self.temp_folder_ready = true,
            Err(e) => tracing::warn!(error = %e, "the temp_name subfolder cannot be made"),
        }
    }
}

/// One item's result: `None` until it is known.
type Slot<T> = Option<Result<T, TransportError>>;

impl SftpDir {
    /// The remote path of `name` as text (the folder is configured as text, names are checked).
    fn remote_text(&self, name: impl AsRef<Path>) -> String {
        self.remote(name).to_string_lossy().into_owned()
    }

    /// The pipelined channels, connecting and opening them when needed.
    fn pipe(&mut self) -> Result<&mut Lanes<Pipe>, TransportError> {
        let describe = self.describe();
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let conn = self.conn.insert(conn);
        let opened = match conn.pipe.take() {
            Some(pipe) => pipe,
            None => {
                let first =
                    Pipe::open(&conn.session).map_err(|Broken(detail)| TransportError::Ssh {
                        dir: describe,
                        op: "sftp channel",
                        detail,
                    })?;
                let mut lanes = vec![first];
                while lanes.len() < LANES {
                    match Pipe::open(&conn.session) {
                        Ok(pipe) => lanes.push(pipe),
                        Err(Broken(why)) => {
                            tracing::debug!(%why, lanes = lanes.len(), "no further sftp channel; going on with fewer");
                            break;
                        }
                    }
                }
                Lanes::new(lanes)
            }
        };
        Ok(conn.pipe.insert(opened))
    }

    /// Runs `items` (positions in `share`) through `batch`, pipelined on one channel; the first item
    /// it could not finish goes through `single` (one by one, reconnecting and retrying as
    /// configured), then the batch resumes after it. A `single` failure that is not about its file
    /// (connection, timeout) ends the share: the items after it are reported not attempted, or,
    /// with `strict`, left out (as is everything after any failure).
    fn pipelined<T>(
        &mut self,
        share: &[usize],
        strict: bool,
        mut batch: impl FnMut(&mut Lanes<Pipe>, &[usize]) -> (Vec<Slot<T>>, Option<Broken>),
        mut single: impl FnMut(&mut SftpDir, usize) -> Result<T, TransportError>,
    ) -> Vec<Slot<T>> {
        let mut done: Vec<Slot<T>> = share.iter().map(|_| None).collect();
        let mut from = 0;
        while from < share.len() {
            let todo: Vec<usize> = (from..share.len()).filter(|&p| done[p].is_none()).collect();
            let items: Vec<usize> = todo.iter().map(|&p| share[p]).collect();
            match self.pipe() {
                Ok(pipe) => {
                    let (results, broken) = batch(pipe, &items);
                    for (&p, r) in todo.iter().zip(results) {
                        done[p] = r;
                    }
                    if let Some(Broken(why)) = broken {
                        tracing::debug!(dir = %self.describe(), %why, "pipelined transfer cut short; going on one by one");
                        self.conn = None;
                    }
                }
                Err(e) => {
                    tracing::debug!(dir = %self.describe(), error = %e, "no pipelined channel; going on one by one");
                }
            }
            let Some(p) = todo.iter().copied().find(|&p| done[p].is_none()) else {
                break;
            };
            let result = single(self, share[p]);
            let lost_connection = match &result {
                Err(e) if !about_one_file(e) => Some(e.to_string()),
                _ => None,
            };
            let stop = strict && result.is_err() || lost_connection.is_some();
            done[p] = Some(result);
            if stop {
                if let (Some(why), false) = (lost_connection, strict) {
                    for slot in done.iter_mut().skip(p + 1).filter(|s| s.is_none()) {
                        *slot = Some(Err(self.ssh(
                            "transfer",
                            format!("not attempted after an earlier failure: {why}"),
                        )));
                    }
                }
                break;
            }
            from = p + 1;
        }
        done
    }

    fn read_share(
        &mut self,
        names: &[SafeName],
        share: &[usize],
        limit: u64,
    ) -> Vec<Slot<Vec<u8>>> {
        let describe = self.describe();
        let paths: Vec<String> = names.iter().map(|n| self.remote_text(n.as_str())).collect();
        self.pipelined(
            share,
            false,
            |pipe, items| {
                let wanted: Vec<String> = items.iter().map(|&i| paths[i].clone()).collect();
                let (fetched, broken) = pipeline::read_all(pipe, &wanted, limit);
                let mut results: Vec<Slot<Vec<u8>>> = items
                    .iter()
                    .zip(fetched)
                    .map(|(i, fetched)| match fetched? {
                        Fetched::Bytes(bytes) => Some(Ok(bytes)),
                        Fetched::NotRegular => Some(Err(TransportError::UnsafeName {
                            dir: describe.clone(),
                            name: names[*i].to_string(),
                        })),
                        Fetched::TooLarge(size) => Some(Err(TransportError::TooLarge {
                            dir: describe.clone(),
                            name: names[*i].to_string(),
                            size,
                            limit,
                        })),
                        Fetched::Retry => None,
                    })
                    .collect();
                results.resize_with(items.len(), || None);
                (results, broken)
            },
            |dir, i| dir.read(&names[i], limit),
        )
    }

    fn put_share(
        &mut self,
        files: &[(SafeName, Vec<u8>)],
        share: &[usize],
        strict: bool,
    ) -> Vec<Slot<PutOutcome>> {
        let fsync = self.settings.fsync;
        let uploads: Vec<Upload> = files
            .iter()
            .map(|(name, bytes)| Upload {
                temp: self.remote_text(self.settings.temp_name.of(name)),
                target: self.remote_text(name.as_str()),
                bytes,
            })
            .collect();
        self.pipelined(
            share,
            strict,
            |pipe, items| {
                let batch: Vec<Upload> = items.iter().map(|&i| uploads[i].clone()).collect();
                let (created, broken) = pipeline::put_all(pipe, &batch, strict, fsync);
                let mut results: Vec<Slot<PutOutcome>> = created
                    .into_iter()
                    .map(|c| c.then_some(Ok(PutOutcome::Created)))
                    .collect();
                results.resize_with(items.len(), || None);
                (results, broken)
            },
            |dir, i| dir.put(&files[i].0, &files[i].1),
        )
    }

    /// Gives each of up to `sessions` connections its share of items 0..n (item i to session
    /// i mod N, each working through its share in order) and collects the results in item order.
    /// Items never attempted are left out at the end (strict, one session) or reported.
    /// The extra connections are kept for the next batch (a handshake costs more than a dozen
    /// small files).
    fn spread<T: Send>(
        &mut self,
        n: usize,
        strict: bool,
        op: impl Fn(&mut SftpDir, &[usize]) -> Vec<Slot<T>> + Sync,
    ) -> Vec<Result<T, TransportError>> {
        let sessions = (self.settings.sessions.max(1) as usize).min(n.max(1));
        let shares: Vec<Vec<usize>> = (0..sessions)
            .map(|k| (k..n).step_by(sessions).collect())
            .collect();
        while self.helpers.len() < sessions - 1 {
            self.helpers.push(SftpDir::new(self.settings.clone()));
        }
        let mut helpers = std::mem::take(&mut self.helpers);
        let mut slots: Vec<Slot<T>> = (0..n).map(|_| None).collect();
        std::thread::scope(|scope| {
            let op = &op;
            let handles: Vec<_> = helpers
                .iter_mut()
                .zip(shares.iter().skip(1))
                .map(|(dir, share)| scope.spawn(move || op(dir, share)))
                .collect();
            let own = op(self, &shares[0]);
            for (i, r) in shares[0].iter().zip(own) {
                slots[*i] = r;
            }
            for (h, share) in handles.into_iter().zip(shares.iter().skip(1)) {
                if let Ok(results) = h.join() {
                    for (i, r) in share.iter().zip(results) {
                        slots[*i] = r;
                    }
                }
            }
        });
        self.helpers = helpers;
        let mut out = Vec::with_capacity(n);
        for slot in slots {
            match slot {
                Some(r) => out.push(r),
                None if strict => break,
                None => out.push(Err(self.ssh(
                    "parallel transfer",
                    "not attempted: a session thread failed",
                ))),
            }
        }
        out
    }

    /// `Some(AlreadyThere)` when `path` holds `bytes`, a conflict when it holds others, `None` when absent.
    fn existing(
        &self,
        sftp: &Sftp,
        path: &Path,
        name: &str,
        bytes: &[u8],
    ) -> Result<Option<PutOutcome>, TransportError> {
        match sftp.stat(path) {
            Ok(_) => {
                let mut f = sftp.open(path).map_err(|e| self.ssh("open", e))?;
                let mut there = Vec::new();
                f.read_to_end(&mut there).map_err(|e| self.ssh("read", e))?;
                if there == bytes {
                    Ok(Some(PutOutcome::AlreadyThere))
                } else {
                    Err(TransportError::Conflict {
                        dir: self.describe(),
                        name: name.to_string(),
                    })
                }
            }
            Err(e) if e.code() == ErrorCode::SFTP(2) => Ok(None),
            Err(e) => Err(self.ssh("stat", e)),
        }
    }
}

/// Base64 without padding, as OpenSSH prints fingerprints.
fn base64_unpadded(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_unpadded_base64() {
        assert_eq!(base64_unpadded(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_unpadded(b"fooba"), "Zm9vYmE");
        assert_eq!(base64_unpadded(b"f"), "Zg");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1, 0) >= Duration::from_millis(1000));
        assert!(backoff(10, 0) <= Duration::from_millis(37_500));
    }
}
