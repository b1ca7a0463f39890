//! `LocalDir`: a local (or mounted) folder as a `RemoteDir`.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{Attributes, Found, PutOutcome, RemoteDir, SafeName, TransportError, Visit};
use crate::fsutil::write_new_atomic_via;

/// A local (or mounted) folder.
#[derive(Debug, Clone)]
pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    pub fn new(dir: &Path) -> LocalDir {
        LocalDir {
            dir: dir.to_path_buf(),
        }
    }

    fn io(&self, op: &'static str, name: &str, source: io::Error) -> TransportError {
        TransportError::Io {
            dir: self.describe(),
            op,
            name: name.to_string(),
            source,
        }
    }

    /// An IO error reading one file: a file that vanished or may not be read is that file's
    /// failure alone; anything else (the disk, the mount) is the folder's.
    fn file_io(&self, op: &'static str, name: &str, source: io::Error) -> TransportError {
        match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => TransportError::File {
                dir: self.describe(),
                op,
                name: name.to_string(),
                detail: source.to_string(),
            },
            _ => self.io(op, name, source),
        }
    }

    fn path(&self, name: &SafeName) -> PathBuf {
        self.dir.join(name)
    }
}

impl RemoteDir for LocalDir {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn list_each(
        &mut self,
        visit: &mut dyn FnMut(Found<'_>) -> Visit,
    ) -> Result<(), TransportError> {
        let read = fs::read_dir(&self.dir).map_err(|e| self.io("list", "", e))?;
        for entry in read {
            let entry = entry.map_err(|e| self.io("list", "", e))?;
            let name = match entry.file_name().into_string() {
                Ok(name) if name.starts_with('.') => {
                    visit(Found::Hidden(name))?;
                    continue;
                }
                Ok(name) => name,
                Err(name) => {
                    visit(Found::Odd(name.to_string_lossy().into_owned()))?;
                    continue;
                }
            };
            // The type the folder's entry gives (no `stat` where the file system says it); a
            // link is not followed (and not ingested).
            let kind = entry.file_type().map_err(|e| self.io("stat", &name, e))?;
            if kind.is_symlink() {
                visit(Found::Odd(name))?;
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            // Size and time only when the step asks (the fence needs neither for most names).
            let ask = || {
                let meta = entry
                    .metadata()
                    .map_err(|e| self.io("stat", &entry.file_name().to_string_lossy(), e))?;
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                Ok((meta.len(), mtime))
            };
            match SafeName::from_string(name) {
                Ok(safe) => visit(Found::File(safe, Attributes::asked(&ask)))?,
                Err(name) => visit(Found::Unsafe(name, Attributes::asked(&ask)))?,
            }
        }
        Ok(())
    }

    fn read(&mut self, name: &SafeName, limit: u64) -> Result<Vec<u8>, TransportError> {
        let path = self.path(name);
        let file = fs::File::open(&path).map_err(|e| self.file_io("open", name.as_str(), e))?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.file_io("read", name.as_str(), e))?;
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

    fn probe(&mut self, _writes: bool) -> super::Probe {
        let mut p = super::Probe::new(self.describe());
        p.protocol = Some(
            "local folder: files written under a hidden name, then linked (never replace)".into(),
        );
        p
    }

    fn put(&mut self, name: &SafeName, bytes: &[u8]) -> Result<PutOutcome, TransportError> {
        let path = self.path(name);
        // One temporary name per file, as over SFTP: a put cut short by a crash leaves it behind
        // (hidden, so never listed), and the next put of the same file replaces and removes it.
        let temp = self.dir.join(super::upload_temp_name(name));
        match write_new_atomic_via(&path, &temp, bytes) {
            Ok(true) => Ok(PutOutcome::Created),
            Ok(false) => Ok(PutOutcome::AlreadyThere),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(TransportError::Conflict {
                dir: self.describe(),
                name: name.to_string(),
            }),
            Err(e) => Err(self.io("put", name.as_str(), e)),
        }
    }

    fn remove_leftover(&mut self, temp: &str) -> Result<(), TransportError> {
        let path = self.dir.join(super::plain_name(&self.describe(), temp)?);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("remove", temp, e)),
            _ => Ok(()),
        }
    }

    fn move_into(&mut self, name: &SafeName, folder: &str) -> Result<(), TransportError> {
        let from = self.path(name);
        let target = self.dir.join(folder);
        fs::create_dir_all(&target).map_err(|e| self.io("mkdir", folder, e))?;
        let to = crate::fsutil::unique_path(&target, name.as_str());
        fs::rename(&from, &to).map_err(|e| self.io("move", name.as_str(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(name: &str) -> SafeName {
        SafeName::new(name).unwrap()
    }

    #[test]
    fn a_put_cut_short_by_a_crash_leaves_no_temporary_file_after_the_next_put() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = LocalDir::new(dir.path());
        let temp = dir
            .path()
            .join(egme_ord_core::remote::upload_temp_name(&n("c.sgl")));
        // Killed while writing: the temporary file holds part of the bytes.
        fs::write(&temp, b"par").unwrap();
        assert_eq!(
            d.put(&n("c.sgl"), b"complete").unwrap(),
            PutOutcome::Created
        );
        assert!(!temp.exists());
        // Killed after the link, before the clean-up: the file is there, so is its temporary name.
        fs::write(&temp, b"complete").unwrap();
        assert_eq!(
            d.put(&n("c.sgl"), b"complete").unwrap(),
            PutOutcome::AlreadyThere
        );
        assert!(!temp.exists());
        assert_eq!(fs::read(dir.path().join("c.sgl")).unwrap(), b"complete");
        assert_eq!(d.list().unwrap().hidden, Vec::<String>::new());
    }

    #[test]
    fn local_dir_lists_regular_files_only_and_puts_atomically() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.sgl"), b"b").unwrap();
        fs::write(dir.path().join(".a.sgl.tmp-1"), b"partial").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.sgl")).unwrap();
        let mut d = LocalDir::new(dir.path());
        let listing = d.list().unwrap();
        assert_eq!(
            listing
                .files
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            ["b.sgl"]
        );
        assert_eq!(listing.odd, ["link.sgl"]);
        assert_eq!(d.put(&n("c.sgl"), b"c").unwrap(), PutOutcome::Created);
        assert_eq!(d.put(&n("c.sgl"), b"c").unwrap(), PutOutcome::AlreadyThere);
        assert!(matches!(
            d.put(&n("c.sgl"), b"other"),
            Err(TransportError::Conflict { .. })
        ));
        // A name that leaves the folder cannot even be asked for: `read` takes a SafeName.
        assert!(SafeName::new("../etc/passwd").is_none());
        assert!(matches!(
            d.read(&n("b.sgl"), 0),
            Err(TransportError::TooLarge { .. })
        ));
    }
}
