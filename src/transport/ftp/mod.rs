//! `FtpDir`: one folder of an FTP account over explicit TLS (`AUTH TLS`, `PROT P`, passive mode; suppaftp on rustls), or plain FTP where the operator allowed it — the same semantics as SFTP.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use suppaftp::list::{File as ListedFile, ListParser};
use suppaftp::types::FileType;
use suppaftp::{FtpError, FtpStream, Status};

use self::tls::{Connector, Negotiated, TlsFtpStream};

use super::probe::{probe_names, Written};
use super::{
    upload_temp_name, Attributes, Found, Offered, Probe, PutOutcome, RemoteDir, RenameOntoExisting,
    SafeName, TransportError, Visit,
};
use egme_ord_core::config::FtpSettings;

mod tls;

/// An open session: over TLS, or plain.
enum Conn {
    Tls(Box<TlsFtpStream>),
    Plain(Box<FtpStream>),
}

/// Runs `$body` with `$s` bound to the session, whichever kind it is.
macro_rules! on {
    ($conn:expr, $s:ident => $body:expr) => {
        match $conn {
            Conn::Tls($s) => $body,
            Conn::Plain($s) => $body,
        }
    };
}

/// One folder of an FTP(S) account; connects on first use and again after a failure.
pub struct FtpDir {
    settings: FtpSettings,
    conn: Option<Conn>,
    /// Whether the server answered MLSD (machine listings with UTC times); `None`: not asked yet.
    mlsd: Option<bool>,
    /// Operations run, to spread the retries of several processes.
    seq: u64,
    /// What the first TLS handshake negotiated (version, cipher suite), for the probe.
    negotiated: Negotiated,
}

impl FtpDir {
    pub fn new(settings: FtpSettings) -> FtpDir {
        FtpDir {
            settings,
            conn: None,
            mlsd: None,
            seq: 0,
            negotiated: Negotiated::default(),
        }
    }

    fn remote(&self, name: impl AsRef<str>) -> String {
        format!(
            "{}/{}",
            self.settings.path.trim_end_matches('/'),
            name.as_ref()
        )
    }

    fn err(&self, op: &'static str, detail: impl std::fmt::Display) -> TransportError {
        TransportError::Ssh {
            dir: self.describe(),
            op,
            detail: detail.to_string(),
        }
    }

    fn password(&self) -> Result<String, TransportError> {
        let s = &self.settings;
        let auth = |detail: String| TransportError::Auth {
            user: s.user.clone(),
            host: s.host.clone(),
            port: s.port,
            detail,
        };
        if let Some(var) = &s.password_env {
            return std::env::var(var).map_err(|_| {
                auth(format!(
                    "environment variable {var} (the password) is not set"
                ))
            });
        }
        if let Some(file) = &s.password_file {
            let text =
                crate::fsutil::read_input(file, crate::fsutil::MAX_SECRET_BYTES).map_err(|e| {
                    auth(format!(
                        "the password file {} cannot be read: {e}",
                        file.display()
                    ))
                })?;
            return Ok(text.lines().next().unwrap_or("").to_string());
        }
        Err(auth("no password configured".into()))
    }

    /// A TCP connection with the endpoint's timeouts.
    fn tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect_timeout(&addr, self.settings.connect_timeout)?;
        stream.set_read_timeout(Some(self.settings.io_timeout))?;
        stream.set_write_timeout(Some(self.settings.io_timeout))?;
        Ok(stream)
    }

    fn connect(&mut self) -> Result<Conn, TransportError> {
        let s = self.settings.clone();
        let connect_err = |source: io::Error| TransportError::Connect {
            host: s.host.clone(),
            port: s.port,
            source,
        };
        let addr = (s.host.as_str(), s.port)
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(io::Error::other("the name has no address")))?;
        let control = self.tcp(addr).map_err(connect_err)?;
        let (timeout, io_timeout) = (s.connect_timeout, s.io_timeout);
        // Data connections go to the control connection's address whatever PASV answers (a
        // server behind NAT announces its inner address), with the same timeouts.
        let data = move |to: SocketAddr| -> suppaftp::FtpResult<TcpStream> {
            let stream =
                TcpStream::connect_timeout(&to, timeout).map_err(FtpError::ConnectionError)?;
            stream
                .set_read_timeout(Some(io_timeout))
                .and_then(|()| stream.set_write_timeout(Some(io_timeout)))
                .map_err(FtpError::ConnectionError)?;
            Ok(stream)
        };
        let password = self.password()?;
        let mut conn = if s.tls {
            let tls = tls_config(&s).map_err(|detail| self.certificate(detail))?;
            let mut ftp = TlsFtpStream::connect_with_stream(control)
                .map_err(|e| self.ftp_err("connect", e))?
                .passive_stream_builder(data);
            ftp.set_passive_nat_workaround(true);
            let ftp = ftp
                .into_secure(Connector::new(tls, Arc::clone(&self.negotiated)), &s.host)
                .map_err(|e| self.ftp_err("AUTH TLS", e))?;
            Conn::Tls(Box::new(ftp))
        } else {
            tracing::warn!(endpoint = %self.describe(), "plain FTP (allow_plaintext = true): the password and the files cross the network in clear");
            let mut ftp = FtpStream::connect_with_stream(control)
                .map_err(|e| self.ftp_err("connect", e))?
                .passive_stream_builder(data);
            ftp.set_passive_nat_workaround(true);
            Conn::Plain(Box::new(ftp))
        };
        let login = on!(&mut conn, f => f.login(s.user.as_str(), password.as_str()));
        if let Err(e) = login {
            return Err(match e {
                FtpError::UnexpectedResponse(r) => TransportError::Auth {
                    user: s.user.clone(),
                    host: s.host.clone(),
                    port: s.port,
                    detail: response_text(&r),
                },
                other => self.ftp_err("login", other),
            });
        }
        on!(&mut conn, f => f.transfer_type(FileType::Binary))
            .map_err(|e| self.ftp_err("TYPE I", e))?;
        Ok(conn)
    }

    fn certificate(&self, detail: String) -> TransportError {
        TransportError::Certificate {
            host: self.settings.host.clone(),
            port: self.settings.port,
            detail,
        }
    }

    /// An FTP failure as a transport error; a TLS failure (the certificate refused) says so.
    fn ftp_err(&self, op: &'static str, e: FtpError) -> TransportError {
        match &e {
            FtpError::SecureError(detail) => return self.certificate(detail.clone()),
            FtpError::ConnectionError(io) => {
                if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return self.certificate(tls.to_string());
                }
            }
            _ => {}
        }
        self.err(op, ftp_text(&e))
    }

    /// Runs `op` on a session, reconnecting once per further attempt after a failure
    /// (exponential backoff with jitter). Certificate and authentication failures, and what
    /// concerns one file, are not retried.
    fn with_conn<T>(
        &mut self,
        mut op: impl FnMut(&mut Self, &mut Conn) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        self.seq += 1;
        let attempts = self.settings.attempts.max(1);
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(super::sftp::backoff(attempt, self.seq));
            }
            let mut conn = match self.conn.take() {
                Some(c) => c,
                None => match self.connect() {
                    Ok(c) => c,
                    Err(e @ (TransportError::Certificate { .. } | TransportError::Auth { .. })) => {
                        return Err(e)
                    }
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                },
            };
            match op(self, &mut conn) {
                Ok(v) => {
                    self.conn = Some(conn);
                    return Ok(v);
                }
                Err(e) if e.about_one_file() => {
                    self.conn = Some(conn);
                    return Err(e);
                }
                Err(e @ TransportError::Certificate { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.err("connect", "no attempt made")))
    }

    /// Every entry of the folder (hidden ones too): by MLSD where the server offers it, else
    /// by LIST with each file's size and MDTM.
    fn entries(&mut self, conn: &mut Conn) -> Result<Vec<ListedFile>, TransportError> {
        let dir = self.settings.path.clone();
        if self.mlsd != Some(false) {
            match on!(conn, f => f.mlsd(Some(&dir))) {
                Ok(lines) => {
                    self.mlsd = Some(true);
                    return Ok(lines
                        .iter()
                        .filter_map(|l| ListParser::parse_mlsd(l).ok())
                        .collect());
                }
                Err(FtpError::UnexpectedResponse(r))
                    if self.mlsd.is_none() && is_unknown_command(&r) =>
                {
                    self.mlsd = Some(false);
                }
                Err(e) => return Err(self.ftp_err("MLSD", e)),
            }
        }
        let lines = on!(conn, f => f.list(Some(&format!("-a {dir}"))))
            .or_else(|_| on!(conn, f => f.list(Some(&dir))))
            .map_err(|e| self.ftp_err("LIST", e))?;
        Ok(lines
            .iter()
            .filter_map(|l| {
                ListParser::parse_posix(l)
                    .or_else(|_| ListParser::parse_dos(l))
                    .ok()
            })
            .collect())
    }

    /// The size of `path` on the server, `None` when there is no such file.
    /// Stores two temporary names, renames one onto the other, the survivor to a third, and
    /// removes them all. RNTO onto an existing name is reported, not relied on: a put checks
    /// the name (SIZE) before it renames.
    fn write_probe(&mut self, p: &mut Probe) {
        let [a, b, c] = probe_names().map(|n| {
            SafeName::new(&n)
                .map(|n| self.remote(upload_temp_name(&n)))
                .unwrap_or_default()
        });
        let found = self.with_conn(|me, conn| {
            let stored = [(&a, &b"a"[..]), (&b, &b"bb"[..])]
                .into_iter()
                .try_for_each(|(path, mut bytes)| {
                    on!(conn, f => f.put_file(path, &mut bytes))
                        .map(|_| ())
                        .map_err(|e| format!("{path}: {}", ftp_text(&e)))
                });
            if let Err(e) = stored {
                return Ok((Err(e), None, None));
            }
            let onto = match on!(conn, f => f.rename(&a, &b)) {
                Err(e) => RenameOntoExisting::Refused(ftp_text(&e)),
                Ok(()) => match me.size_of(conn, &b)? {
                    Some(1) => RenameOntoExisting::Replaces,
                    other => RenameOntoExisting::Unclear(format!(
                        "RNTO accepted, and the target's SIZE is then {other:?}"
                    )),
                },
            };
            let from = if me.size_of(conn, &a)?.is_some() {
                &a
            } else {
                &b
            };
            let renamed = on!(conn, f => f.rename(from, &c)).map_err(|e| ftp_text(&e));
            Ok((Ok(a.clone()), Some(renamed), Some(onto)))
        });
        let mut left = Vec::new();
        let cleaned = self.with_conn(|me, conn| {
            for path in [&a, &b, &c] {
                if me.size_of(conn, path)?.is_some() && on!(conn, f => f.rm(path)).is_err() {
                    left.push(path.clone());
                }
            }
            Ok(())
        });
        if cleaned.is_err() {
            // The connection failed during the clean-up: any of the probe's names may be left.
            left = vec![a.clone(), b.clone(), c.clone()];
        }
        let w = match found {
            Ok((temp_name, rename, onto_existing)) => Written {
                temp_name,
                rename,
                onto_existing,
                left,
            },
            Err(e) => Written {
                temp_name: Err(format!("cannot probe writing: {e}")),
                rename: None,
                onto_existing: None,
                left,
            },
        };
        // RNTO that replaces is reported, not a weakness: a put checks the name first.
        p.record_writes(w, "; docs/INTEROP.md", false);
    }

    fn size_of(&self, conn: &mut Conn, path: &str) -> Result<Option<u64>, TransportError> {
        match on!(conn, f => f.size(path)) {
            Ok(n) => Ok(Some(n as u64)),
            Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => Ok(None),
            Err(e) => Err(self.ftp_err("SIZE", e)),
        }
    }

    /// The whole of `path`, at most `limit` bytes (more is an error).
    fn fetch(
        &self,
        conn: &mut Conn,
        path: &str,
        name: &str,
        limit: u64,
    ) -> Result<Vec<u8>, TransportError> {
        let read = on!(conn, f => f.retr(path, |r| {
            let mut bytes = Vec::new();
            r.take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(FtpError::ConnectionError)?;
            Ok(bytes)
        }));
        let bytes = match read {
            Ok(b) => b,
            Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => {
                return Err(TransportError::File {
                    dir: self.describe(),
                    op: "read",
                    name: name.to_string(),
                    detail: response_text(&r),
                })
            }
            Err(e) => return Err(self.ftp_err("RETR", e)),
        };
        if bytes.len() as u64 > limit {
            return Err(TransportError::TooLarge {
                dir: self.describe(),
                name: name.to_string(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes)
    }
}

/// The folder's regular files from a listing: `(name, size, mtime)`, hidden ones left out, links
/// reported as odd.
/// A listing sorted: regular files `(name, size, mtime)`, links, hidden names.
type Sorted = (Vec<(String, u64, i64)>, Vec<String>, Vec<String>);

fn sort_listing(files: &[ListedFile]) -> Sorted {
    let mut regular = Vec::new();
    let mut odd = Vec::new();
    let mut hidden = Vec::new();
    for f in files {
        let name = f.name();
        if name == "." || name == ".." || name.is_empty() {
            continue;
        }
        if name.starts_with('.') {
            hidden.push(name.to_string());
            continue;
        }
        if f.is_symlink() {
            odd.push(name.to_string());
        } else if f.is_file() {
            regular.push((
                name.to_string(),
                f.size() as u64,
                unix_seconds(f.modified()),
            ));
        }
    }
    (regular, odd, hidden)
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 500/502: the server does not know the command.
fn is_unknown_command(r: &suppaftp::types::Response) -> bool {
    matches!(
        r.status,
        Status::CommandNotImplemented | Status::BadCommand | Status::BadArguments
    )
}

fn response_text(r: &suppaftp::types::Response) -> String {
    format!(
        "{} {}",
        r.status.code(),
        String::from_utf8_lossy(&r.body).trim()
    )
}

fn ftp_text(e: &FtpError) -> String {
    match e {
        FtpError::UnexpectedResponse(r) => format!("the server answered {}", response_text(r)),
        other => other.to_string(),
    }
}

/// The TLS settings of an endpoint: the pinned certificate, or the CA file, or the system roots.
fn tls_config(s: &FtpSettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if let Some(pin) = &s.certificate_sha256 {
        let verifier = Pinned {
            sha256: pin.clone(),
            provider,
        };
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &s.ca_file {
        Some(file) => {
            let pem = crate::fsutil::read_input(file, crate::fsutil::MAX_SECRET_BYTES)
                .map_err(|e| format!("ca_file {}: {e}", file.display()))?;
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes());
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", file.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", file.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "ca_file {}: no certificate in it (expected PEM)",
                    file.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system certificate rustls cannot parse is left out; the others still verify the server.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no system root certificate found (install ca-certificates, or set ca_file or certificate_sha256)".into());
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Accepts only the certificate whose SHA-256 was configured; the handshake's signatures are
/// still checked against it.
#[derive(Debug)]
struct Pinned {
    sha256: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let offered = crate::fsutil::sha256_hex(end_entity.as_ref());
        if offered == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has SHA-256 {offered}, not the certificate_sha256 configured ({}); if the ORD changed its certificate, confirm the new fingerprint with them",
                self.sha256
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl RemoteDir for FtpDir {
    fn describe(&self) -> String {
        self.settings.url()
    }

    /// The listing is read whole before it is handed over: the FTP library gives MLSD's and
    /// LIST's lines as one list (docs/PERFORMANCE.md, "Folders nobody empties").
    fn list_each(
        &mut self,
        visit: &mut dyn FnMut(Found<'_>) -> Visit,
    ) -> Result<(), TransportError> {
        let (regular, odd, hidden) = self.with_conn(|me, conn| {
            let files = me.entries(conn)?;
            let (mut regular, odd, hidden) = sort_listing(&files);
            if me.mlsd == Some(false) {
                // LIST's times are the server's local time, to the minute: ask MDTM (UTC).
                for (name, _, mtime) in &mut regular {
                    let path = me.remote(name.as_str());
                    if let Ok(t) = on!(conn, f => f.mdtm(&path)) {
                        *mtime = t.and_utc().timestamp();
                    }
                }
            }
            Ok((regular, odd, hidden))
        })?;
        for name in hidden {
            visit(Found::Hidden(name))?;
        }
        for name in odd {
            visit(Found::Odd(name))?;
        }
        for (name, size, mtime) in regular {
            let attributes = Attributes::given(size, mtime);
            match SafeName::from_string(name) {
                Ok(name) => visit(Found::File(name, attributes))?,
                Err(name) => visit(Found::Unsafe(name, attributes))?,
            }
        }
        Ok(())
    }

    fn read(&mut self, name: &SafeName, limit: u64) -> Result<Vec<u8>, TransportError> {
        let path = self.remote(name);
        self.with_conn(|me, conn| {
            if let Some(size) = me.size_of(conn, &path)? {
                if size > limit {
                    return Err(TransportError::TooLarge {
                        dir: me.describe(),
                        name: name.to_string(),
                        size,
                        limit,
                    });
                }
            }
            me.fetch(conn, &path, name.as_str(), limit)
        })
    }

    fn probe(&mut self, writes: bool) -> Probe {
        let mut p = Probe::new(self.describe());
        let checked = match (&self.settings.certificate_sha256, &self.settings.ca_file) {
            (Some(_), _) => "its certificate pinned by certificate_sha256",
            (None, Some(_)) => "its certificate chained to ca_file",
            (None, None) => "its certificate chained to the system's roots",
        };
        p.protocol = Some(if self.settings.tls {
            format!("FTP over explicit TLS (AUTH TLS, PROT P), {checked}")
        } else {
            "plain FTP: the password and the files in clear".to_string()
        });
        let facts = self.with_conn(|me, conn| {
            let welcome = on!(conn, f => f.get_welcome_msg().map(str::to_string));
            let features = on!(conn, f => f.feat()).map_err(|e| me.ftp_err("FEAT", e))?;
            let mut names: Vec<String> = features.into_keys().collect();
            names.sort();
            Ok((welcome, names))
        });
        match facts {
            Ok((welcome, features)) => {
                // A welcome may span lines: one line, at most 200 characters, for the table.
                p.server = welcome.map(|w| {
                    let one: Vec<&str> =
                        w.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                    one.join(" ").chars().take(200).collect()
                });
                p.extensions = features;
            }
            Err(e) => {
                p.problems
                    .push(format!("cannot ask the server's features: {e}"));
                return p;
            }
        }
        if self.settings.tls {
            let negotiated = self
                .negotiated
                .get()
                .map_or("version not seen", String::as_str);
            p.protocol = Some(format!(
                "FTP over explicit TLS (AUTH TLS, PROT P): {negotiated}; {checked}"
            ));
        }
        let has = |f: &str| p.extensions.iter().any(|e| e.eq_ignore_ascii_case(f));
        let (mlsd, size, mdtm) = (has("MLST"), has("SIZE"), has("MDTM"));
        p.mtime = Some(Offered::from(mlsd || mdtm));
        // FTP listings say the type (MLSD's type fact, LIST's mode string).
        p.permissions = Some(Offered::Yes);
        if !size {
            p.warnings.push("the server does not list SIZE in FEAT: each put's check of the name and of the size after the rename needs it".into());
        }
        if writes {
            self.write_probe(&mut p);
        }
        p
    }

    fn put(&mut self, name: &SafeName, bytes: &[u8]) -> Result<PutOutcome, TransportError> {
        let final_path = self.remote(name);
        // One temporary name per file (hidden: listings skip it). A put cut short leaves it
        // behind, and the next put of the same file replaces it (or removes it first, where the
        // server refuses to overwrite).
        let temp_path = self.remote(upload_temp_name(name));
        self.with_conn(|me, conn| {
            let mut reader = bytes;
            let stored = match on!(conn, f => f.put_file(&temp_path, &mut reader)) {
                // A leftover of ours (an upload cut short) on a server that never overwrites
                // (ProFTPD's `AllowOverwrite off`, its default): removed, and stored once more.
                Err(FtpError::UnexpectedResponse(r)) if r.status == Status::FileUnavailable => {
                    // A removal refused here shows as the store below failing, with its own error.
                    let _ = on!(conn, f => f.rm(&temp_path));
                    let mut reader = bytes;
                    on!(conn, f => f.put_file(&temp_path, &mut reader))
                }
                other => other,
            };
            stored.map_err(|e| me.ftp_err("STOR", e))?;
            // RNTO replaces an existing file on most servers: the name is checked first. Only
            // egme-ord writes our names (one instance per store, under its lock), so nothing can
            // take the name between the check and the rename (docs/DECISIONS.md: FTPS).
            if me.size_of(conn, &final_path)?.is_some() {
                // The final name is there: the temporary one is a leftover the next put replaces.
                let _ = on!(conn, f => f.rm(&temp_path));
                let there = me.fetch(conn, &final_path, name.as_str(), bytes.len() as u64 + 1)?;
                return if there == bytes {
                    Ok(PutOutcome::AlreadyThere)
                } else {
                    Err(TransportError::Conflict {
                        dir: me.describe(),
                        name: name.to_string(),
                    })
                };
            }
            on!(conn, f => f.rename(&temp_path, &final_path)).map_err(|e| me.ftp_err("RNTO", e))?;
            let size = me.size_of(conn, &final_path)?;
            if size != Some(bytes.len() as u64) {
                return Err(me.err(
                    "SIZE after rename",
                    format!("{name} has {size:?} bytes, {} were written", bytes.len()),
                ));
            }
            Ok(PutOutcome::Created)
        })
    }

    fn remove_leftover(&mut self, temp: &str) -> Result<(), TransportError> {
        let path = self.remote(super::plain_name(&self.describe(), temp)?);
        self.with_conn(|me, conn| match on!(conn, f => f.rm(&path)) {
            Ok(()) => Ok(()),
            // 550 says "not found" and "not allowed" alike: gone is no error.
            Err(_) if me.size_of(conn, &path)?.is_none() => Ok(()),
            Err(e) => Err(me.err(
                "remove",
                format!("{path}: {e}; the account needs the right to delete its own temporary files in this folder (ask the ORD's administrator; docs/INTEROP.md)"),
            )),
        })
    }

    fn move_into(&mut self, name: &SafeName, folder: &str) -> Result<(), TransportError> {
        let from = self.remote(name);
        let target = egme_ord_core::config::remote_subfolder(&self.settings.path, folder)
            .trim_end_matches('/')
            .to_string();
        self.with_conn(|me, conn| {
            // MKD fails when the folder exists: what matters is that the rename below works.
            let _ = on!(conn, f => f.mkdir(&target));
            for i in 0..1000 {
                let candidate = if i == 0 {
                    format!("{target}/{name}")
                } else {
                    format!("{target}/{name}.{i}")
                };
                if me.size_of(conn, &candidate)?.is_some() {
                    continue;
                }
                return on!(conn, f => f.rename(&from, &candidate))
                    .map_err(|e| me.ftp_err("move", e));
            }
            Err(me.err("move", format!("no free name for {name} in {target}")))
        })
    }
}

/// The CA file or pin of an endpoint, as `validate-config` checks it without connecting.
pub fn check_tls_settings(s: &FtpSettings) -> Result<(), String> {
    if s.tls {
        tls_config(s).map(|_| ())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn mlsd_lines_sort_into_regular_files_links_and_hidden_names() {
        let lines = [
            "type=file;size=6;modify=20241028120000;UNIX.mode=0644; a.sgl",
            "type=file;size=3;modify=20241028120000; .a.sgl.egme-ord-upload",
            "type=dir;modify=20241028120000; processed",
            "type=OS.unix=symlink;modify=20241028120000; link.sgl",
            "type=cdir;modify=20241028120000; .",
        ];
        let files: Vec<ListedFile> = lines
            .iter()
            .filter_map(|l| ListParser::parse_mlsd(l).ok())
            .collect();
        let (regular, _odd, _hidden) = sort_listing(&files);
        assert_eq!(regular, vec![("a.sgl".to_string(), 6, 1_730_116_800)]);
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let s = FtpSettings {
            host: "h".into(),
            port: 21,
            user: "u".into(),
            password_env: Some("P".into()),
            password_file: None,
            ca_file: Some(Path::new("/nonexistent/ca.pem").to_path_buf()),
            certificate_sha256: None,
            path: "/".into(),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(1),
            attempts: 1,
            tls: true,
        };
        let e = check_tls_settings(&s).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
