//! The SFTP probe: banner, version and extensions, attributes, and (on a send folder) temporary names created, renamed and renamed onto each other, then removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, RenameFlags, Sftp};

use super::SftpDir;
use crate::transport::probe::{probe_names, Written};
use crate::transport::{Offered, Probe, RemoteDir, RenameOntoExisting};
use egme_ord_core::remote::SafeName;

impl SftpDir {
    pub(super) fn probe_server(&mut self, writes: bool) -> Probe {
        let mut p = Probe::new(self.describe());
        match self.pipe() {
            Ok(lanes) => {
                if let Some(first) = lanes.first() {
                    let server = first.server();
                    p.protocol = Some(format!("SFTP {}", server.version));
                    p.extensions = server.extensions.iter().map(|(n, _)| n.clone()).collect();
                    p.fsync = Some(Offered::from(server.offers(super::wire::FSYNC_EXTENSION)));
                }
            }
            Err(e) => {
                p.problems.push(format!("cannot open an SFTP channel: {e}"));
                return p;
            }
        }
        p.server = self
            .conn
            .as_ref()
            .and_then(|c| c.session.banner().map(str::to_string));
        let folder = PathBuf::from(&self.settings.path);
        match self.with_sftp(|_, sftp| Ok(attributes(sftp, &folder))) {
            Ok((perm, mtime)) => {
                p.permissions = Some(perm);
                p.mtime = Some(mtime);
                if perm == Offered::No {
                    p.warnings.push("the server's attributes carry no permission bits: each listed entry's type is probed (long name, lstat, opening it as a folder), and entries it still cannot tell are taken as files".into());
                }
            }
            Err(e) => p
                .problems
                .push(format!("cannot read the folder's attributes: {e}")),
        }
        if writes {
            p.warnings.extend(self.weakened());
            self.ensure_temp_folder();
            match self.with_sftp(|me, sftp| Ok(me.write_probe(sftp))) {
                Ok(w) => {
                    let fix = format!(", or set `temp_name` on this send folder (now \"{}\"; e.g. \"{{name}}.part\" or \"upload/{{name}}\"; docs/INTEROP.md)", self.settings.temp_name);
                    p.record_writes(w, &fix, true);
                }
                Err(e) => p.problems.push(format!("cannot probe writing: {e}")),
            }
        }
        p
    }

    /// Creates two temporary names, renames one onto the other, then to a third, and removes
    /// them all. Nothing under a final name is ever made.
    fn write_probe(&self, sftp: &Sftp) -> Written {
        let [a, b, c] = probe_names().map(|n| {
            let temp = SafeName::new(&n).map(|n| self.settings.temp_name.of(&n));
            self.remote(temp.unwrap_or_default())
        });
        let shown = |p: &Path| p.display().to_string();
        let mut w = Written {
            temp_name: Ok(shown(&a)),
            rename: None,
            onto_existing: None,
            left: Vec::new(),
        };
        if let Err(e) = create(sftp, &a, b"a").and_then(|()| create(sftp, &b, b"bb")) {
            w.temp_name = Err(e.to_string());
        } else {
            let flags = Some(RenameFlags::ATOMIC | RenameFlags::NATIVE);
            w.onto_existing = Some(match sftp.rename(&a, &b, flags) {
                Err(e) => RenameOntoExisting::Refused(status(&e)),
                Ok(()) => match sftp.stat(&b) {
                    Ok(FileStat { size: Some(1), .. }) => RenameOntoExisting::Replaces,
                    other => RenameOntoExisting::Unclear(format!(
                        "the rename was accepted, and the target then reads as {other:?}"
                    )),
                },
            });
            // What is left of the two is renamed to a fresh name: the rename a put needs.
            let from = if sftp.stat(&a).is_ok() { &a } else { &b };
            w.rename = Some(sftp.rename(from, &c, flags).map_err(|e| status(&e)));
        }
        for path in [&a, &b, &c] {
            if sftp.stat(path).is_ok() && sftp.unlink(path).is_err() {
                w.left.push(shown(path));
            }
        }
        w
    }
}

/// Writes `bytes` to a new file at `path` (never reopening an existing one).
fn create(sftp: &Sftp, path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = sftp
        .open_mode(
            path,
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
            0o640,
            OpenType::File,
        )
        .map_err(|e| format!("{}: {}", path.display(), status(&e)))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: write: {e}", path.display()))
}

/// An SFTP failure as the server's status.
fn status(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(2) => "no such file".into(),
        ErrorCode::SFTP(3) => "permission denied".into(),
        ErrorCode::SFTP(4) => "failure".into(),
        ErrorCode::SFTP(11) => "file already exists".into(),
        _ => e.to_string(),
    }
}

/// Whether the folder's attributes (its own, and its entries') carry permissions and times: any
/// entry that carries them says yes; a folder with nothing in it says what its own `stat` says.
fn attributes(sftp: &Sftp, folder: &Path) -> (Offered, Offered) {
    let mut stats: Vec<FileStat> = sftp
        .readdir(folder)
        .map(|entries| entries.into_iter().map(|(_, s)| s).collect())
        .unwrap_or_default();
    if let Ok(own) = sftp.stat(folder) {
        stats.push(own);
    }
    if stats.is_empty() {
        return (Offered::Unknown, Offered::Unknown);
    }
    (
        Offered::from(stats.iter().any(|s| s.perm.is_some())),
        Offered::from(stats.iter().any(|s| s.mtime.is_some())),
    )
}
