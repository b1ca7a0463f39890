//! File-system helpers for the shells: atomic writes (temp name, fsync, rename), sha256, safe names.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use egme_ord_core::sha256::Sha256;
use sha2::Digest;

/// The sha256 of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> Sha256 {
    Sha256::from_bytes(sha2::Sha256::digest(bytes).into())
}

/// Lower-case hex sha256 of `bytes` (for what is not a file's or a content's: a name, a digest).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_of(bytes).to_string()
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// Writes `bytes` to `path` atomically: a hidden temporary file in the same folder, fsync, rename, fsync of
/// the folder. A reader never sees a partial file. Replaces an existing file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, tmp) = write_temp(path, &temp_name(path), bytes, true)?;
    fs::rename(&tmp, path)?;
    sync_dir(&dir)
}

/// A file written as a stream and put in place atomically by [`AtomicFile::commit`] (buffered,
/// under the hidden temporary name, fsync, rename, fsync of the folder): for files too large to
/// hold in memory. Dropped without a commit, the temporary file is removed and `path` is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<io::BufWriter<fs::File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let tmp = temp_name(path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = fs::File::create(&tmp)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out: Some(io::BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        if let Some(out) = self.out.take() {
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            fs::rename(&self.tmp, &self.path)?;
            sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(self.path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("the file was committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            // An unfinished temporary file: removed when possible; one left is replaced by the next write.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `tmp`, the hidden temporary name of `path` (synced when `sync`); returns the
/// folder and that name.
fn write_temp(path: &Path, tmp: &Path, bytes: &[u8], sync: bool) -> io::Result<(PathBuf, PathBuf)> {
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    fs::create_dir_all(&dir)?;
    let tmp = tmp.to_path_buf();
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    if sync {
        f.sync_all()?;
    }
    Ok((dir, tmp))
}

/// Atomic writes whose fsyncs are deferred to one `sync` for the whole batch.
///
/// Between `begin` and `sync`, `write_atomic` and `write_new_atomic` rename unsynced files into
/// place; `sync` then fsyncs each file and each folder once. The caller commits the ledger rows that
/// name these files only after `sync`: a crash before it leaves at most unreferenced files (which a
/// rerun rewrites, or keeps beside under a suffix), never a ledger row naming a file that is not on
/// disk. Outside a batch both writes sync at once, like the free functions.
#[derive(Debug, Default)]
pub struct DeferredSync {
    open: bool,
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl DeferredSync {
    pub fn begin(&mut self) {
        self.discard();
        self.open = true;
    }

    /// Like [`write_atomic`], synced at `sync` when a batch is open.
    pub fn write_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if !self.open {
            return write_atomic(path, bytes);
        }
        let (dir, tmp) = write_temp(path, &temp_name(path), bytes, false)?;
        fs::rename(&tmp, path)?;
        self.files.push(path.to_path_buf());
        self.dirs.insert(dir);
        Ok(())
    }

    /// For private files that nothing reads before the batch commits (the outbox): within a batch,
    /// writes `path` in place, without a temporary name, since a file a crash cut short is not
    /// referenced by the ledger and is rewritten by the rerun. Outside a batch, [`write_atomic`].
    pub fn write_private(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if !self.open {
            return write_atomic(path, bytes);
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !self.dirs.contains(&dir) {
            fs::create_dir_all(&dir)?;
        }
        fs::write(path, bytes)?;
        self.files.push(path.to_path_buf());
        self.dirs.insert(dir);
        Ok(())
    }

    /// Like [`write_new_atomic`], synced at `sync` when a batch is open.
    pub fn write_new_atomic(&mut self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        if !self.open {
            return write_new_atomic(path, bytes);
        }
        let written = new_file(path, &temp_name(path), bytes, false)?;
        // Synced even when it was already there: it may come from a batch that was rolled back.
        self.files.push(path.to_path_buf());
        self.dirs
            .insert(path.parent().unwrap_or(Path::new(".")).to_path_buf());
        Ok(written)
    }

    /// Makes every file written since `begin` durable (files, then their folders) and ends the batch.
    /// On failure, the error comes with the file or folder that could not be synced.
    pub fn sync(&mut self) -> Result<(), (PathBuf, io::Error)> {
        if cfg!(target_os = "linux") && self.files.len() >= SYNCFS_FROM {
            sync_file_systems(&self.dirs)?;
        } else {
            for f in &self.files {
                fs::File::open(f)
                    .and_then(|h| h.sync_all())
                    .map_err(|e| (f.clone(), e))?;
            }
            for d in &self.dirs {
                sync_dir(d).map_err(|e| (d.clone(), e))?;
            }
        }
        self.discard();
        Ok(())
    }

    /// Ends the batch without syncing (after an error: nothing written in it is referenced).
    pub fn discard(&mut self) {
        self.open = false;
        self.files.clear();
        self.dirs.clear();
    }
}

/// From this many files on, a batch is made durable (on Linux) with one `syncfs` per file system
/// instead of an fsync per file and per folder.
const SYNCFS_FROM: usize = 16;

/// Makes everything written on the file systems holding `dirs` durable: one `syncfs(2)` each.
/// On a journalled file system a batch of 256 files synced one by one is 256 journal commits and
/// device flushes in a row (36 s of a 51 s cycle at 5,000 CPEs); `syncfs` is one. It also flushes
/// other programs' writes to that file system, which is why it is used only for batches.
#[cfg(target_os = "linux")]
fn sync_file_systems(dirs: &BTreeSet<PathBuf>) -> Result<(), (PathBuf, io::Error)> {
    use std::os::unix::fs::MetadataExt;
    let mut synced = BTreeSet::new();
    for d in dirs {
        let handle = fs::File::open(d).map_err(|e| (d.clone(), e))?;
        let device = handle.metadata().map_err(|e| (d.clone(), e))?.dev();
        if synced.insert(device) {
            rustix::fs::syncfs(&handle).map_err(|e| (d.clone(), io::Error::from(e)))?;
        }
    }
    Ok(())
}

/// Not offered elsewhere: batches are synced file by file there.
#[cfg(not(target_os = "linux"))]
fn sync_file_systems(_dirs: &BTreeSet<PathBuf>) -> Result<(), (PathBuf, io::Error)> {
    Ok(())
}

/// Like `write_atomic`, but never replaces an existing file: `Ok(false)` when `path` already exists
/// with the same bytes, an `AlreadyExists` error when it exists with other bytes.
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    new_file(path, &temp_name(path), bytes, true)
}

/// Like [`write_new_atomic`], through the given temporary name, which is removed afterwards in every
/// case. For a folder with a single writer (an ORD's folder under the store lock): a put cut short
/// by a crash leaves its temporary file, and the next put of the same file replaces and removes it.
pub fn write_new_atomic_via(path: &Path, tmp: &Path, bytes: &[u8]) -> io::Result<bool> {
    let result = new_file(path, tmp, bytes, true);
    // The temporary name is gone after a rename; after a failure, the next put replaces it.
    let _ = fs::remove_file(tmp);
    result
}

fn new_file(path: &Path, tmp: &Path, bytes: &[u8], sync: bool) -> io::Result<bool> {
    if let Ok(existing) = fs::read(path) {
        return if existing == bytes {
            Ok(false)
        } else {
            Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists with other content: not overwritten",
                    path.display()
                ),
            ))
        };
    }
    let (dir, tmp) = write_temp(path, tmp, bytes, sync)?;
    // A hard link fails if the final name exists: no overwrite even in a race.
    let linked = fs::hard_link(&tmp, path);
    // The temporary link: a failure to remove it leaves a file the next write replaces.
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return new_file(path, &tmp, bytes, sync)
        }
        Err(e) => return Err(e),
    }
    if sync {
        sync_dir(&dir)?;
    }
    Ok(true)
}

/// The temporary name used while writing `path`: hidden, so folder listings skip it.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    match fs::File::open(dir) {
        Ok(d) => d.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

/// The largest config file read (a real one is a few kB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The largest registry CSV read (a million CPEs at ~60 bytes a row fit well under it).
pub const MAX_REGISTRY_BYTES: u64 = 256 << 20;
/// The largest small secret or list read: a password or passphrase file, a CA file.
pub const MAX_SECRET_BYTES: u64 = 1 << 20;
/// The largest time-of-use table read.
pub const MAX_TOU_BYTES: u64 = 16 << 20;

/// Reads an input file an operator names (a config, a registry CSV, a secret, a ToU table) as
/// text: refused without reading it when it is not a regular file (a FIFO is opened without
/// blocking, a device such as `/dev/zero` is never read), and when it holds more than `cap`
/// bytes. The error says which, with the path.
pub fn read_input(path: &Path, cap: u64) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_dir() {
            "a folder"
        } else if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind}, not a regular file: refused without reading it; name a file here"),
        ));
    }
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{size} bytes or more, more than the {cap} bytes egme-ord reads from such a file: refused; is it the right file?"),
        )
    };
    if meta.len() > cap {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

/// What is wrong with the permissions of a file, as OpenSSH judges them: a secret (private key,
/// passphrase) must not be readable or writable by group or others; any other file (known_hosts)
/// must not be writable by them. `None` when fine.
pub fn permission_problem(path: &Path, secret: bool) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Some(format!("{}: not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if secret && mode & 0o077 != 0 {
        return Some(format!("{}: permissions {mode:04o} are too open for a secret: expected 0600 or stricter (chmod 600)", path.display()));
    }
    if !secret && mode & 0o022 != 0 {
        return Some(format!("{}: permissions {mode:04o} let others write it: expected 0644 or stricter (chmod go-w)", path.display()));
    }
    if let Err(e) = fs::File::open(path) {
        return Some(format!("{}: {e}", path.display()));
    }
    None
}

/// `path` normalised with its links followed as far as it exists: the longest existing ancestor
/// canonicalised, the rest appended (`..` and `.` taken lexically).
pub fn resolve_links(path: &Path) -> PathBuf {
    let path = egme_ord_core::config::layout::normalise(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = fs::canonicalize(existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path,
        }
    }
}

/// Creates `dir` (and its parents) if missing; a folder it creates is private (0700): the archive,
/// quarantine, outbox and ledger hold meter data of identified delivery points. An existing folder
/// keeps the mode its operator gave it (`private_problem` reports it when open to others).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates an empty private file (0600) at `path` unless it exists (SQLite then gives its `-wal` and
/// `-shm` files the same mode).
pub fn create_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// What is too open about a folder or file that holds meter data: readable or writable by others.
pub fn private_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o007 != 0).then(|| {
        format!(
            "{}: permissions {mode:04o} let any local user in: expected no access for others (chmod o-rwx)",
            path.display()
        )
    })
}

/// What makes the ledger's path unsafe to write: the path (or its `-wal`/`-shm`) is a symbolic
/// link, which SQLite would follow to wherever it points, or its folder lets others write in it
/// (anyone could swap the ledger). `None` when fine, or when the folder does not exist yet.
pub fn store_path_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(format!(
                "{} is a symbolic link: the ledger must be a regular file (put the real path in `store`)",
                p.display()
            ));
        }
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    let mode = fs::metadata(parent).ok()?.permissions().mode() & 0o7777;
    // A sticky folder (/tmp) still lets others create a file under the ledger's name first.
    (mode & 0o002 != 0).then(|| {
        format!(
            "the ledger's folder {} has permissions {mode:04o}: others can write in it and replace the ledger; expected 0700 or 0750 (chmod o-w)",
            parent.display()
        )
    })
}

use egme_ord_core::remote::is_safe_name;

/// The name under which a remote file is kept locally: its own when safe, else `unsafe-name-<sha256
/// of the name>` (the real name is then quoted in the errors file beside it).
pub fn local_name(name: &str) -> String {
    if is_safe_name(name) {
        name.to_string()
    } else {
        format!("unsafe-name-{}", sha256_hex(name.as_bytes()))
    }
}

/// A path in `dir` for `name` that does not exist yet (suffix `.1`, `.2`, … when needed).
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|i| dir.join(format!("{name}.{i}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The bytes of the files under `dir`, at every depth (links not followed; what cannot be read
/// counts nothing).
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => dirs.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_path_that_is_a_link_or_in_an_open_folder_is_a_problem() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.sqlite");
        assert_eq!(store_path_problem(&store), None);
        std::os::unix::fs::symlink(dir.path().join("x"), format!("{}-wal", store.display()))
            .unwrap();
        assert!(store_path_problem(&store)
            .unwrap()
            .contains("symbolic link"));
        fs::remove_file(format!("{}-wal", store.display())).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(store_path_problem(&store)
            .unwrap()
            .contains("others can write"));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(store_path_problem(&store), None);
    }

    #[test]
    fn a_streamed_file_replaces_the_old_one_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        fs::write(&path, b"old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(
            fs::read(&path).unwrap(),
            b"old",
            "an abandoned stream leaves the file"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "and no temporary file"
        );
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"old",
            "not in place before the commit"
        );
        assert_eq!(f.commit().unwrap(), path);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_deferred_batch_writes_in_place_and_still_never_overwrites_other_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut batch = DeferredSync::default();
        batch.begin();
        let out = dir.path().join("outbox/a.sgl");
        batch.write_private(&out, b"one").unwrap();
        batch.write_private(&out, b"two").unwrap();
        let kept = dir.path().join("archive/b.sgl");
        assert!(batch.write_new_atomic(&kept, b"x").unwrap());
        assert!(!batch.write_new_atomic(&kept, b"x").unwrap());
        assert!(batch.write_new_atomic(&kept, b"y").is_err());
        batch.sync().unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"two");
        assert_eq!(fs::read(&kept).unwrap(), b"x");
        // No temporary file is left beside them.
        let hidden = |d: &Path| {
            fs::read_dir(d)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with('.'))
        };
        assert!(!hidden(&dir.path().join("outbox")) && !hidden(&dir.path().join("archive")));
    }

    #[test]
    fn a_batch_past_the_syncfs_threshold_is_synced_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut batch = DeferredSync::default();
        batch.begin();
        for i in 0..SYNCFS_FROM * 2 {
            let folder = if i % 2 == 0 { "outbox" } else { "archive" };
            batch
                .write_private(&dir.path().join(folder).join(format!("{i}.sgl")), b"x")
                .unwrap();
        }
        assert_eq!(batch.files.len(), SYNCFS_FROM * 2);
        batch.sync().unwrap();
        assert!(batch.files.is_empty() && batch.dirs.is_empty() && !batch.open);
        // A folder that vanished before the sync is reported, with its path.
        batch.begin();
        for i in 0..SYNCFS_FROM {
            batch
                .write_private(&dir.path().join("gone").join(format!("{i}")), b"x")
                .unwrap();
        }
        fs::remove_dir_all(dir.path().join("gone")).unwrap();
        let (path, _) = batch.sync().unwrap_err();
        assert!(path.ends_with("gone"), "{}", path.display());
    }

    #[test]
    fn folders_and_the_store_file_egme_ord_creates_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("a/work");
        create_private_dir(&work).unwrap();
        let store = dir.path().join("a/store.sqlite");
        create_private_file(&store).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&work), 0o700);
        assert_eq!(mode(&store), 0o600);
        assert_eq!(private_problem(&work), None);
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_problem(&work).unwrap().contains("0755"));
    }

    #[test]
    fn write_new_never_overwrites_other_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.sgl");
        assert!(write_new_atomic(&p, b"one").unwrap());
        assert!(!write_new_atomic(&p, b"one").unwrap());
        assert_eq!(
            write_new_atomic(&p, b"two").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [
            "",
            "..",
            "../x.sgl",
            "/etc/passwd",
            "a\\b",
            ".hidden",
            "a b",
            "é.sgl",
            "a\nb",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        assert!(is_safe_name(
            "171234PEPT0002000123681633GX_20190509_693.sgl"
        ));
    }

    #[test]
    fn secrets_must_not_be_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        fs::write(&key, b"k").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(permission_problem(&key, true)
            .unwrap()
            .contains("chmod 600"));
        assert!(permission_problem(&key, false).is_none());
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(permission_problem(&key, true).is_none());
        fs::set_permissions(&key, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(permission_problem(&key, false).unwrap().contains("go-w"));
        assert!(permission_problem(&dir.path().join("missing"), true).is_some());
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
