//! A throwaway OpenSSH server on 127.0.0.1 for the tests: its own keys, config and port; killed on drop.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// Lines added to the generated sshd_config.
    extra_config: String,
    /// The SFTP server sshd runs (`internal-sftp`, or a program's path).
    subsystem: String,
}

/// A new ed25519 key pair at `path` (and `path.pub`), without a passphrase.
pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
}

/// The sshd binary, or a panic that says what to install.
pub fn sshd_binary() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/sshd");
    assert!(
        p.exists(),
        "these tests need OpenSSH's sshd: apt-get install -y openssh-server"
    );
    p
}

impl Sshd {
    /// Starts a server in `dir` (keys and config are created there).
    pub fn start(dir: &Path) -> Sshd {
        Sshd::start_with(dir, "")
    }

    /// Like [`Sshd::start`], with `extra` lines in its sshd_config.
    pub fn start_with(dir: &Path, extra: &str) -> Sshd {
        sshd_binary();
        let _ = fs::create_dir_all("/run/sshd");
        fs::create_dir_all(dir).unwrap();
        keygen(&dir.join("hostkey"));
        keygen(&dir.join("userkey"));
        fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Sshd {
            dir: dir.to_path_buf(),
            port,
            child: None,
            extra_config: extra.to_string(),
            subsystem: "internal-sftp".to_string(),
        };
        s.write_known_hosts(&dir.join("known_hosts"), &dir.join("hostkey.pub"));
        s.restart();
        s
    }

    /// A server whose SFTP subsystem is the program `sftp_server` instead of OpenSSH's own.
    pub fn start_with_subsystem(dir: &Path, sftp_server: &Path) -> Sshd {
        assert!(
            sftp_server.exists(),
            "{} is missing (scripts/test installs it)",
            sftp_server.display()
        );
        let mut s = Sshd::start(dir);
        s.subsystem = sftp_server.display().to_string();
        s.restart();
        s
    }

    /// A known_hosts line for this server with the public key in `pub_file`.
    pub fn write_known_hosts(&self, path: &Path, pub_file: &Path) {
        let key = fs::read_to_string(pub_file).unwrap();
        let mut parts = key.split_whitespace();
        let line = format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        );
        fs::write(path, line).unwrap();
    }

    /// The listening sshd's process id (its sessions are its children).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it listens.
    pub fn restart(&mut self) {
        self.stop();
        let d = &self.dir;
        let config = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\nSubsystem sftp {}\nLogLevel ERROR\n{}",
            self.port,
            d.join("hostkey").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display(),
            self.subsystem,
            self.extra_config
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        for _ in 0..50 {
            let mut child = Command::new(sshd_binary())
                .args(["-D", "-e", "-o", "LogLevel=INFO", "-f"])
                .arg(d.join("sshd_config"))
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("start sshd");
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = mpsc::channel();
            // Everything sshd logs also goes to `sshd.log`, for tests that read what it saw.
            let log = d.join("sshd.log");
            std::thread::spawn(move || {
                let mut log = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .ok();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(f) = log.as_mut() {
                        use std::io::Write;
                        let _ = writeln!(f, "{line}");
                    }
                    let _ = tx.send(line);
                }
            });
            let mut ready = false;
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
                if line.contains("Server listening on") {
                    ready = true;
                    break;
                }
                if line.contains("Address already in use") {
                    break;
                }
            }
            if ready {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sshd did not start on port {}", self.port);
    }

    /// A TOML endpoint table for `path` on this server.
    pub fn endpoint(&self, path: &Path, known_hosts: &Path) -> String {
        format!(
            "{{ transport = \"sftp\", host = \"127.0.0.1\", port = {}, user = \"{}\", key = \"{}\", known_hosts = \"{}\", path = \"{}\", connect_timeout = \"5s\", io_timeout = \"10s\", attempts = 2 }}",
            self.port,
            whoami(),
            self.dir.join("userkey").display(),
            known_hosts.display(),
            path.display()
        )
    }
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
