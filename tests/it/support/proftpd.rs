//! ProFTPD's `mod_sftp` on 127.0.0.1 for the interoperability tests, run from Debian's packages unpacked by `scripts/test-servers` (not installed: Debian's FTP servers conflict); killed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ftpd::{passive_range, PASSWORD, USER};
use super::sshd::{keygen, whoami};
use super::{sftp_endpoint, write_known_hosts, SftpServer};

/// Where `scripts/test-servers` unpacked the servers.
pub fn unpacked() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-servers/root");
    assert!(
        root.join("usr/sbin/proftpd").exists(),
        "these tests need ProFTPD and vsftpd unpacked in {}: run scripts/test (or scripts/test-servers {})",
        root.display(),
        root.parent().unwrap().display()
    );
    root
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct ProFtpd {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

/// The settings every ProFTPD of the tests shares: its own files in `dir`, 127.0.0.1:`port` only,
/// the user from `dir/passwd`, no lookups.
fn common(dir: &Path, port: u16, modules: &Path) -> String {
    format!(
        "ServerType standalone\nServerName \"egme-ord test\"\nDefaultServer on\nDefaultAddress 127.0.0.1\nSocketBindTight on\nPort {port}\nUser {user}\nGroup {group}\nPidFile {d}/proftpd.pid\nScoreboardFile {d}/scoreboard\nDelayTable none\nWtmpLog off\nUseIPv6 off\nUseReverseDNS off\nUseFtpUsers off\nModulePath {modules}\nAuthUserFile {d}/passwd\nAuthOrder mod_auth_file.c\nRequireValidShell off\nRootLogin on\nSystemLog {d}/proftpd.log\nTransferLog none\nMaxInstances 64\n",
        user = whoami(),
        group = id("-gn"),
        d = dir.display(),
        modules = modules.display(),
    )
}

/// Writes `config(port)` to `config_file` for a free port and starts `command` (which reads it),
/// waiting until it listens on 127.0.0.1:`port`; tries 20 ports. `None`: it never listened.
pub fn start_listening(
    config_file: &Path,
    config: impl Fn(u16) -> String,
    command: impl Fn() -> Command,
) -> Option<(Child, u16)> {
    for _ in 0..20 {
        let port = super::ftpd::free_port();
        fs::write(config_file, config(port)).unwrap();
        let mut child = command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((child, port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// Starts ProFTPD with the config `config(port)` on a free port, waiting until it listens.
fn launch(dir: &Path, config: impl Fn(u16) -> String) -> ProFtpd {
    let root = unpacked();
    let config_file = dir.join("proftpd.conf");
    let started = start_listening(&config_file, config, || {
        let mut c = Command::new(root.join("usr/sbin/proftpd"));
        c.args(["-n", "-q", "-c"]).arg(&config_file);
        c
    });
    match started {
        Some((child, port)) => ProFtpd {
            dir: dir.to_path_buf(),
            port,
            child: Some(child),
        },
        None => panic!(
            "proftpd did not start: {}",
            fs::read_to_string(dir.join("proftpd.log")).unwrap_or_default()
        ),
    }
}

impl ProFtpd {
    /// Starts `mod_sftp` in `dir` (keys, config and logs there); `allow_overwrite` is ProFTPD's
    /// `AllowOverwrite` (off is its default).
    pub fn start_sftp(dir: &Path, allow_overwrite: bool) -> ProFtpd {
        let root = unpacked();
        fs::create_dir_all(dir).unwrap();
        keygen(&dir.join("hostkey"));
        keygen(&dir.join("userkey"));
        // mod_sftp reads the keys a user may log in with in RFC 4716 form.
        let rfc4716 = Command::new("ssh-keygen")
            .args(["-e", "-f"])
            .arg(dir.join("userkey.pub"))
            .output()
            .unwrap();
        assert!(rfc4716.status.success());
        fs::write(dir.join("authorized_keys"), &rfc4716.stdout).unwrap();
        let passwd = dir.join("passwd");
        fs::write(
            &passwd,
            format!(
                "{}:x:{}:{}::{}:/bin/sh\n",
                whoami(),
                id("-u"),
                id("-g"),
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
        let modules = root.join("usr/lib/proftpd");
        let server = launch(dir, |port| {
            format!(
                "{common}LoadModule mod_sftp.c\nSFTPEngine on\nSFTPHostKey {d}/hostkey\nSFTPAuthorizedUserKeys file:{d}/authorized_keys\nSFTPAuthMethods publickey\nSFTPKeyBlacklist none\nSFTPLog {d}/sftp.log\nAllowOverwrite {overwrite}\n",
                common = common(dir, port, &modules),
                d = dir.display(),
                overwrite = if allow_overwrite { "on" } else { "off" },
            )
        });
        write_known_hosts(&server.dir, server.port);
        server
    }

    /// Starts ProFTPD's FTP with `mod_tls` required (explicit TLS) in `dir`, its one user (`USER`,
    /// `PASSWORD`) confined to `home`; the certificate is signed by a CA of the test's
    /// (`dir/ca.pem`). `AllowOverwrite` is off, its default.
    pub fn start_ftps(dir: &Path, home: &Path) -> ProFtpd {
        let root = unpacked();
        fs::create_dir_all(home).unwrap();
        super::ftpd::tls_material(dir);
        let params = sha_crypt::Sha512Params::new(1000).unwrap();
        let hash = sha_crypt::sha512_simple(PASSWORD, &params).unwrap();
        let passwd = dir.join("passwd");
        fs::write(
            &passwd,
            format!(
                "{USER}:{hash}:{}:{}::{}:/bin/sh\n",
                id("-u"),
                id("-g"),
                home.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
        let (low, high) = passive_range();
        let modules = root.join("usr/lib/proftpd");
        launch(dir, |port| {
            format!(
                "{common}LoadModule mod_tls.c\nTLSEngine on\nTLSRequired on\nTLSProtocol TLSv1.2 TLSv1.3\nTLSECCertificateFile {d}/server.pem\nTLSECCertificateKeyFile {d}/server.pem\nTLSVerifyClient off\nTLSOptions NoSessionReuseRequired\nTLSLog {d}/tls.log\nPassivePorts {low} {high}\nDefaultRoot ~\nAllowOverwrite off\n",
                common = common(dir, port, &modules),
                d = dir.display(),
            )
        })
    }

    /// A TOML endpoint table for `path` (from the user's folder) over FTPS on this server.
    pub fn ftp_endpoint(&self, path: &str, extra: &str) -> String {
        format!(
            "{{ transport = \"ftps\", ca_file = \"{}\", host = \"127.0.0.1\", port = {}, user = \"{USER}\", password_file = \"{}\", path = \"{path}\", connect_timeout = \"5s\", io_timeout = \"10s\", attempts = 2{extra} }}",
            self.dir.join("ca.pem").display(),
            self.port,
            self.dir.join("password").display()
        )
    }
}

impl SftpServer for ProFtpd {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn endpoint(&self, path: &Path, known_hosts: &Path) -> String {
        sftp_endpoint(self.port, &self.dir, path, known_hosts)
    }
}

/// Stops a server that forks a process per session: those first, then the listener.
pub fn stop_forking(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("pkill")
            .args(["-P", &c.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for ProFtpd {
    fn drop(&mut self) {
        stop_forking(&mut self.child);
    }
}
