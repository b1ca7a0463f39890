//! rustls under suppaftp, as suppaftp's own `RustlsConnector` does it, keeping what the first completed handshake negotiated (TLS version and cipher suite) for the probe.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use suppaftp::{FtpError, FtpResult, ImplFtpStream, TlsConnector, TlsStream};

/// An FTPS session on [`Connector`]'s streams.
pub type TlsFtpStream = ImplFtpStream<Stream>;

/// What the first handshake negotiated, e.g. `TLS 1.3, TLS13_AES_256_GCM_SHA384`; shared by a
/// connector and its streams.
pub type Negotiated = Arc<OnceLock<String>>;

/// Makes TLS streams from one client configuration; each stream says what it negotiated once
/// its handshake completes.
pub struct Connector {
    config: Arc<ClientConfig>,
    negotiated: Negotiated,
}

impl Connector {
    pub fn new(config: ClientConfig, negotiated: Negotiated) -> Connector {
        Connector {
            config: Arc::new(config),
            negotiated,
        }
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

impl TlsConnector for Connector {
    type Stream = Stream;

    fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<Stream> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        let conn = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| FtpError::SecureError(e.to_string()))?;
        Ok(Stream {
            inner: Seen {
                stream: StreamOwned::new(conn, stream),
                negotiated: Arc::clone(&self.negotiated),
            },
            shutdown: true,
        })
    }
}

/// A TLS stream that records what its handshake negotiated, the first time it is read or written
/// after the handshake completed.
pub struct Seen {
    stream: StreamOwned<ClientConnection, TcpStream>,
    negotiated: Negotiated,
}

impl Seen {
    fn note(&self) {
        if self.negotiated.get().is_some() || self.stream.conn.is_handshaking() {
            return;
        }
        let version = self
            .stream
            .conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .map(|v| v.replace("TLSv1_", "TLS 1."));
        let suite = self
            .stream
            .conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str());
        if let Some(version) = version {
            self.negotiated.get_or_init(|| match suite {
                Some(suite) => format!("{version}, {suite}"),
                None => version,
            });
        }
    }
}

impl Read for Seen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.note();
        Ok(n)
    }
}

impl Write for Seen {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.note();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The stream suppaftp drives; sends TLS's close_notify when dropped (as suppaftp's own does),
/// unless suppaftp took the plain socket back.
pub struct Stream {
    inner: Seen,
    shutdown: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stream")
    }
}

impl TlsStream for Stream {
    type InnerStream = Seen;

    fn tcp_stream(mut self) -> FtpResult<TcpStream> {
        let mut stream = self
            .get_ref()
            .try_clone()
            .map_err(FtpError::ConnectionError)?;
        self.shutdown = false;
        // What is buffered goes out before the socket is used in clear.
        if let Err(e) = stream.flush() {
            tracing::debug!(error = %e, "flushing the socket after TLS ended");
        }
        Ok(stream)
    }

    fn get_ref(&self) -> &TcpStream {
        self.inner.stream.get_ref()
    }

    fn mut_ref(&mut self) -> &mut Seen {
        &mut self.inner
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.shutdown {
            return;
        }
        let s = &mut self.inner.stream;
        if let Err(e) = s.flush() {
            tracing::debug!(error = %e, "flushing a TLS stream when it ends");
        }
        s.conn.send_close_notify();
        if let Err(e) = s.conn.write_tls(&mut s.sock) {
            tracing::debug!(error = %e, "sending TLS close_notify");
        }
    }
}
