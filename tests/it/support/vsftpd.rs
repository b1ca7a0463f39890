//! vsftpd for FTPS on 127.0.0.1, run from Debian's package unpacked by `scripts/test-servers`; its user logs in through the PAM service `egme-ord-test-vsftpd` that script writes (no account made); killed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::ftpd::passive_range;
use super::proftpd::{start_listening, stop_forking, unpacked};
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
        super::ftpd::tls_material(dir);
        let (low, high) = passive_range();
        let config_file = dir.join("vsftpd.conf");
        let config = |port: u16| {
            format!(
                "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=027\npam_service_name={PAM_SERVICE}\nssl_enable=YES\nforce_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrsa_cert_file={d}/server.pem\nrsa_private_key_file={d}/server.pem\nrequire_ssl_reuse=NO\nssl_ciphers=HIGH\npasv_enable=YES\npasv_min_port={low}\npasv_max_port={high}\npasv_address=127.0.0.1\nsecure_chroot_dir={d}/empty\nlocal_root={home}\nchroot_local_user=YES\nallow_writeable_chroot=YES\nseccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\nxferlog_enable=NO\nvsftpd_log_file={d}/vsftpd.log\n",
                d = dir.display(),
                home = home.display(),
            )
        };
        let started = start_listening(&config_file, config, || {
            let mut c = Command::new(root.join("usr/sbin/vsftpd"));
            c.arg(&config_file);
            c
        });
        match started {
            Some((child, port)) => Vsftpd {
                dir: dir.to_path_buf(),
                port,
                child: Some(child),
            },
            None => panic!("vsftpd did not start (config in {})", dir.display()),
        }
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
        stop_forking(&mut self.child);
    }
}
