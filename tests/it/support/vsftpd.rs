//! vsftpd for FTPS on 127.0.0.1, run from Debian's package unpacked by `scripts/test-servers`; its user logs in through the PAM service `egme-ord-test-vsftpd` that script writes (no account made); killed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ftpd::{certificates, free_port, passive_range, PASSWORD};
use super::proftpd::unpacked;
use super::sshd::whoami;

/// The PAM service the test vsftpd logs its user in with.
const PAM_SERVICE: &str = "egme-ord-test-vsftpd";

pub struct Vsftpd {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Vsftpd {
    /// Starts vsftpd with explicit TLS required on its control and data connections in `dir`, its
    /// user (the test's own) confined to `home`; the certificate is signed by a CA of the test's
    /// (`dir/ca.pem`).
    pub fn start_ftps(dir: &Path, home: &Path) -> Vsftpd {
        let root = unpacked();
        assert!(
            Path::new("/etc/pam.d").join(PAM_SERVICE).exists(),
            "the vsftpd tests need the PAM service /etc/pam.d/{PAM_SERVICE}: run scripts/test (or, as root, scripts/test-servers DEST)"
        );
        fs::create_dir_all(dir.join("empty")).unwrap();
        fs::create_dir_all(home).unwrap();
        let (ca, server_pem, _) = certificates();
        fs::write(dir.join("ca.pem"), ca).unwrap();
        fs::write(dir.join("server.pem"), server_pem).unwrap();
        fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for secret in ["password", "server.pem"] {
            fs::set_permissions(dir.join(secret), fs::Permissions::from_mode(0o600)).unwrap();
        }
        let (low, high) = passive_range();
        for _ in 0..20 {
            let port = free_port();
            let config = format!(
                "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=027\npam_service_name={PAM_SERVICE}\nssl_enable=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrsa_cert_file={d}/server.pem\nrsa_private_key_file={d}/server.pem\nrequire_ssl_reuse=NO\nssl_ciphers=HIGH\npasv_enable=YES\npasv_min_port={low}\npasv_max_port={high}\npasv_address=127.0.0.1\nsecure_chroot_dir={d}/empty\nlocal_root={home}\nchroot_local_user=YES\nallow_writeable_chroot=YES\nseccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\nxferlog_enable=NO\nvsftpd_log_file={d}/vsftpd.log\n",
                d = dir.display(),
                home = home.display(),
            );
            fs::write(dir.join("vsftpd.conf"), config).unwrap();
            let mut child = Command::new(root.join("usr/sbin/vsftpd"))
                .arg(dir.join("vsftpd.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start vsftpd");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Vsftpd {
                        dir: dir.to_path_buf(),
                        port,
                        child: Some(child),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("vsftpd did not start (config in {})", dir.display());
    }

    /// A TOML endpoint table for `path` (from the user's folder) over FTPS on this server.
    pub fn ftp_endpoint(&self, path: &str) -> String {
        format!(
            "{{ transport = \"ftps\", ca_file = \"{}\", host = \"127.0.0.1\", port = {}, user = \"{}\", password_file = \"{}\", path = \"{path}\", connect_timeout = \"5s\", io_timeout = \"10s\", attempts = 2 }}",
            self.dir.join("ca.pem").display(),
            self.port,
            whoami(),
            self.dir.join("password").display()
        )
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // vsftpd forks a process per session: those first, then the listener.
            let _ = Command::new("pkill")
                .args(["-P", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
