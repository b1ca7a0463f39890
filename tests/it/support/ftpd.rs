//! A throwaway FTP server (Debian's pure-ftpd) on 127.0.0.1 for the tests: explicit TLS with a certificate made by the test (its own CA), one virtual user, its own ports; killed on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The uid and gid the virtual user's files belong to (nobody).
const NOBODY: u32 = 65534;
pub const USER: &str = "egme";
pub const PASSWORD: &str = "ftp-test-password";

/// TLS on the server: required (FTPS) or off (plain FTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Required,
    Off,
}

pub struct Ftpd {
    pub dir: PathBuf,
    /// The user's folder (the FTP root `/`).
    pub home: PathBuf,
    pub port: u16,
    /// The CA that signed the server's certificate (PEM), for `ca_file`.
    pub ca_file: PathBuf,
    /// Another CA's certificate, that did not sign it.
    pub other_ca_file: PathBuf,
    /// The server certificate's SHA-256, hex.
    pub fingerprint: String,
    tls: Tls,
    passive: (u16, u16),
    child: Option<Child>,
}

/// pure-ftpd and pure-pw, or a panic that says what to install.
fn binaries() -> (PathBuf, PathBuf) {
    let ftpd = PathBuf::from("/usr/sbin/pure-ftpd");
    let pw = PathBuf::from("/usr/bin/pure-pw");
    assert!(
        ftpd.exists() && pw.exists(),
        "these tests need Debian's pure-ftpd: apt-get install -y pure-ftpd (scripts/test does it)"
    );
    (ftpd, pw)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A range of 16 passive ports, different for each server of this process.
pub fn passive_range() -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::SeqCst);
    let base = 20_000 + ((std::process::id() as u16 % 97) * 113 + slot * 16) % 20_000;
    (base, base + 15)
}

/// A CA and a server certificate it signed for localhost and 127.0.0.1: (CA PEM, cert+key PEM,
/// the certificate's DER).
pub fn certificates() -> (String, String, Vec<u8>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "egme-ord test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (
        ca.pem(),
        format!("{}{}", cert.pem(), key.serialize_pem()),
        cert.der().to_vec(),
    )
}

/// Writes into `dir` what an FTPS server of the tests needs: `ca.pem` (the test CA), `server.pem`
/// (its certificate and key, signed by that CA) and `password` (the user's), the secrets 0600.
pub fn tls_material(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).unwrap();
    let (ca, server_pem, _) = certificates();
    fs::write(dir.join("ca.pem"), ca).unwrap();
    fs::write(dir.join("server.pem"), server_pem).unwrap();
    fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    for secret in ["password", "server.pem"] {
        fs::set_permissions(dir.join(secret), fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Ftpd {
    /// Starts a server with its own files in `dir`, the user's folder (FTP `/`) at `home`.
    pub fn start(dir: &Path, home: &Path, tls: Tls) -> Ftpd {
        let (_, pw) = binaries();
        fs::create_dir_all(dir).unwrap();
        fs::create_dir_all(home).unwrap();
        // The server runs the user as nobody: it must reach and write its folder.
        let mut p = home.to_path_buf();
        while p.pop() && p != Path::new("/") && !p.as_os_str().is_empty() {
            let mode = fs::metadata(&p).unwrap().permissions().mode();
            if mode & 0o005 != 0o005 {
                fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o755)).unwrap();
            }
        }
        let (ca, server, der) = certificates();
        let (other_ca, _, _) = certificates();
        fs::write(dir.join("ca.pem"), ca).unwrap();
        fs::write(dir.join("other-ca.pem"), other_ca).unwrap();
        fs::write(dir.join("server.pem"), server).unwrap();
        fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
        fs::set_permissions(dir.join("password"), fs::Permissions::from_mode(0o600)).unwrap();
        // The user's line as pure-pw writes it, with a SHA-512 crypt hash: pure-pw's own argon2id
        // costs the server seconds at every login.
        let passwd = dir.join("pureftpd.passwd");
        let params = sha_crypt::Sha512Params::new(1000).unwrap();
        let hash = sha_crypt::sha512_simple(PASSWORD, &params).unwrap();
        fs::write(
            &passwd,
            format!(
                "{USER}:{hash}:{NOBODY}:{NOBODY}::{}/./::::::::::::\n",
                home.display()
            ),
        )
        .unwrap();
        let ok = Command::new(&pw)
            .arg("mkdb")
            .arg(dir.join("pureftpd.pdb"))
            .arg("-f")
            .arg(&passwd)
            .status()
            .unwrap();
        assert!(ok.success(), "pure-pw mkdb");
        let fingerprint = egme_ord::fsutil::sha256_hex(&der);
        let mut s = Ftpd {
            dir: dir.to_path_buf(),
            home: home.to_path_buf(),
            port: free_port(),
            ca_file: dir.join("ca.pem"),
            other_ca_file: dir.join("other-ca.pem"),
            fingerprint,
            tls,
            passive: passive_range(),
            child: None,
        };
        s.restart();
        s
    }

    /// Gives the virtual user (nobody) every file and folder under its home.
    pub fn give_to_user(&self) {
        let ok = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(&self.home)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let (ftpd, _) = binaries();
        self.give_to_user();
        let d = &self.dir;
        let mut cmd = Command::new(ftpd);
        cmd.arg("-S")
            .arg(format!("127.0.0.1,{}", self.port))
            .arg("-l")
            .arg(format!("puredb:{}", d.join("pureftpd.pdb").display()))
            .args(["-E", "-A", "-H", "-z", "-D", "-u", "1"])
            .arg("-p")
            .arg(format!("{}:{}", self.passive.0, self.passive.1))
            .args(["-P", "127.0.0.1"])
            .arg("-g")
            .arg(d.join("pure-ftpd.pid"));
        match self.tls {
            Tls::Required => {
                cmd.args(["-Y", "2", "-2"]).arg(d.join("server.pem"));
            }
            Tls::Off => {
                cmd.args(["-Y", "0"]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(fs::File::create(d.join("pure-ftpd.log")).unwrap())
            .spawn()
            .expect("start pure-ftpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "pure-ftpd did not start on port {}: {}",
            self.port,
            fs::read_to_string(d.join("pure-ftpd.log")).unwrap_or_default()
        );
    }

    /// A TOML endpoint table for `path` (from the user's folder, e.g. `/eda/from-ord`);
    /// `extra`: more keys (`, ca_file = "…"`).
    pub fn endpoint(&self, path: &str, extra: &str) -> String {
        let transport = match self.tls {
            Tls::Required => format!(
                "transport = \"ftps\", ca_file = \"{}\"",
                self.ca_file.display()
            ),
            Tls::Off => "transport = \"ftp\"".to_string(),
        };
        format!(
            "{{ {transport}, host = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\", path = \"{path}\", connect_timeout = \"5s\", io_timeout = \"10s\", attempts = 2{extra} }}",
            self.port,
            self.dir.join("password").display()
        )
    }
}

impl Drop for Ftpd {
    fn drop(&mut self) {
        self.stop();
    }
}
