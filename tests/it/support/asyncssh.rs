//! An independently written SSH/SFTP server (asyncssh, from PyPI) on 127.0.0.1 for the interoperability tests, with the policies of the servers ORDs run; killed on drop.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::sshd::keygen;
use super::{sftp_endpoint, write_known_hosts, SftpServer};

/// The policies `sftp_server.py` can take (its docstring says what each does).
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// No OpenSSH extensions; a rename onto an existing name fails with SSH_FX_FAILURE.
    pub windows: bool,
    /// No permission bits (so no file type) in any attributes.
    pub no_permissions: bool,
    /// Dot-names refused.
    pub no_dot_names: bool,
    /// ProFTPD's `AllowOverwrite off`: an existing file is never written nor renamed onto.
    pub no_overwrite: bool,
    /// Every rename refused.
    pub no_rename: bool,
    /// A rename onto an existing name replaces it (SFTPGo, Go's pkg/sftp).
    pub rename_replaces: bool,
    /// A folder's listing starts again after its end: READDIRs not read in order.
    pub readdir_again: bool,
}

impl Policy {
    /// Windows/MFT-like: no extensions, rename onto an existing name refused, no permissions.
    pub fn mft() -> Policy {
        Policy {
            windows: true,
            no_permissions: true,
            ..Policy::default()
        }
    }

    /// ProFTPD's default (`AllowOverwrite off`): an existing name is never opened for writing.
    pub fn no_overwrite() -> Policy {
        Policy {
            no_overwrite: true,
            ..Policy::default()
        }
    }

    fn args(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, flag) in [
            (self.windows, "--windows"),
            (self.no_permissions, "--no-permissions"),
            (self.no_dot_names, "--no-dot-names"),
            (self.no_overwrite, "--no-overwrite"),
            (self.no_rename, "--no-rename"),
            (self.rename_replaces, "--rename-replaces"),
            (self.readdir_again, "--readdir-again"),
        ] {
            if on {
                v.push(flag);
            }
        }
        v
    }
}

pub struct AsyncSsh {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl AsyncSsh {
    /// Starts the server in `dir` (keys are created there) with `policy`.
    pub fn start(dir: &Path, policy: Policy) -> AsyncSsh {
        fs::create_dir_all(dir).unwrap();
        keygen(&dir.join("hostkey"));
        keygen(&dir.join("userkey"));
        fs::copy(dir.join("userkey.pub"), dir.join("authorized_keys")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/sftp_server.py");
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("python3")
                .arg("-W")
                .arg("ignore")
                .arg(&script)
                .args(["--port", &port.to_string(), "--host-key"])
                .arg(dir.join("hostkey"))
                .arg("--authorized-keys")
                .arg(dir.join("authorized_keys"))
                .args(policy.args())
                .arg("--journal")
                .arg(dir.join("journal"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start python3 tests/it/support/sftp_server.py");
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = mpsc::channel();
            let tx2 = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx2.send(line);
                }
            });
            let mut said = Vec::new();
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
                if line.starts_with("listening on") {
                    let s = AsyncSsh {
                        dir: dir.to_path_buf(),
                        port,
                        child: Some(child),
                    };
                    write_known_hosts(&s.dir, s.port);
                    return s;
                }
                said.push(line);
                if said.iter().any(|l| l.contains("cannot start")) {
                    break;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                said.iter().all(|l| !l.contains("ModuleNotFoundError")),
                "the asyncssh tests need the Python package asyncssh: pip install asyncssh\n{said:?}"
            );
            if !said.iter().any(|l| l.contains("in use")) {
                panic!("the asyncssh server did not start: {said:?}");
            }
        }
        panic!("the asyncssh server found no free port");
    }
}

impl SftpServer for AsyncSsh {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn endpoint(&self, path: &Path, known_hosts: &Path) -> String {
        sftp_endpoint(self.port, &self.dir, path, known_hosts)
    }

    fn writes(&self) -> Option<Vec<String>> {
        let journal = fs::read_to_string(self.dir.join("journal")).unwrap_or_default();
        Some(journal.lines().map(str::to_string).collect())
    }
}

impl Drop for AsyncSsh {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
