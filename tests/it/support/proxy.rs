//! A loopback TCP proxy for fault tests: passes, cuts, stalls or slows the connections to a server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the proxy does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Close each connection once it has carried this many bytes (both ways together).
    CutAfter(u64),
    /// Stop forwarding and keep the connections open: a hung server.
    Stall,
    /// Forward in 256-byte steps with a pause: a slow link (about 100 KB/s per direction).
    Slow,
}

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    cut_after: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            port,
            mode: Arc::new(AtomicU8::new(0)),
            cut_after: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(AtomicU64::new(0)),
        };
        let (mode, cut_after, stop, connections) = (
            proxy.mode.clone(),
            proxy.cut_after.clone(),
            proxy.stop.clone(),
            proxy.connections.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let carried = Arc::new(AtomicU64::new(0));
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (mode, cut_after, stop, carried) = (
                        mode.clone(),
                        cut_after.clone(),
                        stop.clone(),
                        carried.clone(),
                    );
                    std::thread::spawn(move || pump(from, to, &mode, &cut_after, &stop, &carried));
                }
            }
        });
        proxy
    }

    pub fn set(&self, fault: Fault) {
        let (m, n) = match fault {
            Fault::Pass => (0, 0),
            Fault::CutAfter(n) => (1, n),
            Fault::Stall => (2, 0),
            Fault::Slow => (3, 0),
        };
        self.cut_after.store(n, Ordering::SeqCst);
        self.mode.store(m, Ordering::SeqCst);
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mode: &AtomicU8,
    cut_after: &AtomicU64,
    stop: &AtomicBool,
    carried: &AtomicU64,
) {
    let mut buf = [0u8; 16 * 1024];
    let close = |a: &TcpStream, b: &TcpStream| {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    };
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                close(&from, &to);
                return;
            }
            Ok(n) => n,
        };
        let mut sent = 0;
        while sent < n {
            if stop.load(Ordering::SeqCst) {
                close(&from, &to);
                return;
            }
            match mode.load(Ordering::SeqCst) {
                1 => {
                    let total = carried.fetch_add((n - sent) as u64, Ordering::SeqCst);
                    if total + (n - sent) as u64 > cut_after.load(Ordering::SeqCst) {
                        close(&from, &to);
                        return;
                    }
                }
                2 => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                _ => {}
            }
            let step = if mode.load(Ordering::SeqCst) == 3 {
                std::thread::sleep(Duration::from_millis(2));
                (n - sent).min(256)
            } else {
                n - sent
            };
            if to.write_all(&buf[sent..sent + step]).is_err() {
                close(&from, &to);
                return;
            }
            sent += step;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
