//! `backup` and `restore`: an online, consistent copy of the ledger and of the files it references (outbox, archive, quarantine), and putting it back.
//!
//! A backup folder holds `egme-ord.sqlite` (SQLite's online backup of the ledger, checked with
//! `integrity_check` — every page and its checksum — before it replaces the previous copy), `work/` (the outbox, archive and quarantine
//! files, copied after the ledger: files are only ever added, so every file the copied ledger names
//! is there; a file already in the backup with the same size is not copied again) and
//! `backup.json` (what was taken, when, with each ORD's last transmission id). Restoring puts the
//! ledger back and adds the work files that are missing (never replacing one); the caller then
//! runs `recover`, which brings the ledger up to what was sent after the copy was taken.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::fsutil::{create_private_dir, write_atomic};
use crate::store::{Store, StoreError};
use egme_ord_core::config::Config;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::work_dir::{WorkDir, KEPT};

/// The ledger's copy in a backup folder.
pub const LEDGER_COPY: &str = "egme-ord.sqlite";
/// What a backup folder says of itself.
pub const MANIFEST: &str = "backup.json";

#[derive(Debug, Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a backup of egme-ord ({detail}): nothing restored")]
    NotABackup { path: PathBuf, detail: String },
    #[error("{path}: a backup of another deployment (its config {theirs_file} serves {theirs}; this config {ours_file} serves {ours}): nothing restored. Restore it with its own config, or pass --other-deployment if this is meant")]
    OtherDeployment {
        path: PathBuf,
        theirs_file: String,
        theirs: String,
        ours_file: String,
        ours: String,
    },
}

/// Who a backup belongs to: the config it was taken with and the ORDs that config serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The config file's name (`e-redes.toml`), not its folder: a restore on another host is fine.
    pub config: String,
    pub ords: Vec<OrdName>,
}

impl Deployment {
    pub fn of(config: &Config) -> Deployment {
        let mut ords: Vec<OrdName> = config.ords.iter().map(|o| o.name.clone()).collect();
        ords.sort();
        Deployment {
            config: config
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ords,
        }
    }
}

/// What `backup.json` says (older backups lack `deployment`).
#[derive(Debug, Deserialize)]
struct Manifest {
    ledger_id: String,
    deployment: Option<Deployment>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup took.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub dest: PathBuf,
    pub ledger_id: String,
    pub deployment: Deployment,
    pub taken_at: DateTime<Utc>,
    /// Each ORD's last transmission id in the copied ledger.
    pub sequences: BTreeMap<OrdName, u64>,
    pub files_copied: usize,
    pub bytes_copied: u64,
    pub files_already_there: usize,
}

/// What a restore put back.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub from: PathBuf,
    pub ledger_id: String,
    pub files_added: usize,
    /// Work files that are in the backup and in the work folder with other sizes: left as they are.
    pub files_differing: Vec<String>,
    /// What the restore could not check or found missing: the operator must look (exit 1).
    pub problems: Vec<String>,
}

/// Copies `from` to `to` (a temporary name, fsync, rename): a reader never sees half a file.
fn copy_atomic(from: &Path, to: &Path) -> Result<u64, BackupError> {
    let bytes = fs::read(from).map_err(io_err(from))?;
    if let Some(dir) = to.parent() {
        create_private_dir(dir).map_err(io_err(dir))?;
    }
    write_atomic(to, &bytes).map_err(io_err(to))?;
    Ok(bytes.len() as u64)
}

/// Every regular file under `root` (relative paths), temporary and hidden names left out except
/// the fence's high-water mark.
fn files_under(root: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = root.join(&rel);
        let read = match fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other.map_err(io_err(&dir))?,
        };
        for e in read {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let kind = e.file_type().map_err(io_err(&e.path()))?;
            if kind.is_dir() {
                dirs.push(rel.join(&name));
            } else if kind.is_file() && (!name.starts_with('.') || name == ".high-water-mark") {
                out.push(rel.join(&name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Takes a backup of `store` (and of `config`'s work files) into `dest`.
pub fn backup(
    config: &Config,
    store: &Store,
    dest: &Path,
    now: DateTime<Utc>,
    crash_at: Option<&str>,
) -> Result<BackupReport, BackupError> {
    create_private_dir(dest).map_err(io_err(dest))?;
    let tmp = dest.join(format!(".{LEDGER_COPY}.tmp"));
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(io_err(&tmp))?;
    }
    crate::fsutil::create_private_file(&tmp).map_err(io_err(&tmp))?;
    store.backup_into(&tmp)?;
    // The copy is checked (integrity, row checksums of the sequences) before it replaces the last one.
    let (ledger_id, sequences) = {
        let copy = Store::open_checked(&tmp)?;
        (copy.ledger_id()?, copy.sequences()?)
    };
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&tmp))?;
    let ledger = dest.join(LEDGER_COPY);
    fs::rename(&tmp, &ledger).map_err(io_err(&ledger))?;
    crate::cycle::crashpoint(crash_at, "backup-after-ledger");
    let (mut files_copied, mut bytes_copied, mut files_already_there) = (0, 0, 0);
    for kept in KEPT {
        let from_root = config.work_dir.join(kept);
        let to_root = dest.join("work").join(kept);
        for rel in files_under(&from_root)? {
            let (from, to) = (from_root.join(&rel), to_root.join(&rel));
            let size = fs::metadata(&from).map_err(io_err(&from))?.len();
            let mark = rel.file_name().is_some_and(|n| n == ".high-water-mark");
            if !mark && fs::metadata(&to).is_ok_and(|m| m.len() == size) {
                files_already_there += 1;
                continue;
            }
            bytes_copied += copy_atomic(&from, &to)?;
            files_copied += 1;
            crate::cycle::crashpoint(crash_at, "backup-after-file");
        }
    }
    let report = BackupReport {
        dest: dest.to_path_buf(),
        ledger_id,
        deployment: Deployment::of(config),
        taken_at: now,
        sequences,
        files_copied,
        bytes_copied,
        files_already_there,
    };
    let manifest = dest.join(MANIFEST);
    let text = serde_json::to_vec_pretty(&report).map_err(|e| BackupError::Io {
        path: manifest.clone(),
        source: io::Error::other(e),
    })?;
    write_atomic(&manifest, &text).map_err(io_err(&manifest))?;
    Ok(report)
}

/// A backup folder that [`inspect`] accepted, ready for [`restore`].
#[derive(Debug)]
pub struct Inspected {
    from: PathBuf,
    ledger_id: String,
    /// What could not be checked or is missing: the operator must look (exit 1).
    problems: Vec<String>,
}

/// Checks the backup in `from` before anything is replaced: it is a backup, of this deployment
/// (unless `other_deployment`); keeps the copied ledger's id and what could not be checked or is
/// missing.
pub fn inspect(
    config: &Config,
    from: &Path,
    other_deployment: bool,
) -> Result<Inspected, BackupError> {
    let ledger = from.join(LEDGER_COPY);
    if !ledger.is_file() {
        return Err(BackupError::NotABackup {
            path: from.to_path_buf(),
            detail: format!("no {LEDGER_COPY}"),
        });
    }
    let (ledger_id, sequences) = Store::open(&ledger)
        .and_then(|s| Ok((s.ledger_id()?, s.sequences()?)))
        .map_err(|e| BackupError::NotABackup {
            path: ledger.clone(),
            detail: e.to_string(),
        })?;
    let mut problems = Vec::new();
    let ours = Deployment::of(config);
    let manifest_path = from.join(MANIFEST);
    let manifest: Option<Manifest> = match fs::read(&manifest_path) {
        Ok(bytes) => {
            match serde_json::from_slice(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    problems.push(format!("{}: unreadable ({e}): the backup's deployment and time could not be checked", manifest_path.display()));
                    None
                }
            }
        }
        Err(e) => {
            problems.push(format!("{}: {e}: the backup's deployment and time could not be checked (a backup without it may be incomplete)", manifest_path.display()));
            None
        }
    };
    let theirs = manifest.as_ref().and_then(|m| m.deployment.clone());
    // The ORDs the copied ledger has sequences for belong to the backup's deployment too.
    let theirs_ords: Vec<OrdName> = match &theirs {
        Some(d) => d.ords.clone(),
        None => sequences.keys().cloned().collect(),
    };
    let foreign = theirs_ords.iter().any(|o| !ours.ords.contains(o));
    if foreign && !other_deployment {
        return Err(BackupError::OtherDeployment {
            path: from.to_path_buf(),
            theirs_file: theirs
                .as_ref()
                .map_or("(not recorded)".into(), |d| d.config.clone()),
            theirs: names(&theirs_ords),
            ours_file: ours.config.clone(),
            ours: names(&ours.ords),
        });
    }
    if foreign {
        problems.push(format!(
            "restored a backup of another deployment ({}) into this config ({}): --other-deployment",
            names(&theirs_ords),
            names(&ours.ords)
        ));
    }
    if let Some(m) = manifest.as_ref().filter(|m| m.ledger_id != ledger_id) {
        problems.push(format!(
            "{}: names ledger {}, the copied ledger is {ledger_id}: the backup folder mixes two backups",
            manifest_path.display(),
            m.ledger_id
        ));
    }
    if !sequences.is_empty() && !WorkDir::new(&from.join("work")).outboxes().is_dir() {
        problems.push(format!(
            "{}: no work/outbox, though the ledger records sent files: the sent files' copies are missing (`verify` will report them; the ORDs' folders are the only evidence left of what was sent)",
            from.display()
        ));
    }
    Ok(Inspected {
        from: from.to_path_buf(),
        ledger_id,
        problems,
    })
}

/// Puts the backup `checked` back: its ledger at `config.store` (which must not exist: the
/// caller set the old one aside), and every work file of the backup that the work folder lacks.
/// The caller holds the store's lock and runs `recover` next.
pub fn restore(config: &Config, checked: Inspected) -> Result<RestoreReport, BackupError> {
    let Inspected {
        from,
        ledger_id,
        problems,
    } = checked;
    let from = from.as_path();
    let ledger = from.join(LEDGER_COPY);
    copy_atomic(&ledger, &config.store)?;
    let (mut files_added, mut files_differing) = (0, Vec::new());
    for kept in KEPT {
        let from_root = from.join("work").join(kept);
        let to_root = config.work_dir.join(kept);
        for rel in files_under(&from_root)? {
            let (src, dst) = (from_root.join(&rel), to_root.join(&rel));
            match fs::metadata(&dst) {
                Ok(m) => {
                    let size = fs::metadata(&src).map_err(io_err(&src))?.len();
                    let mark = rel.file_name().is_some_and(|n| n == ".high-water-mark");
                    if m.len() != size && !mark {
                        files_differing.push(dst.display().to_string());
                    }
                }
                Err(_) => {
                    copy_atomic(&src, &dst)?;
                    files_added += 1;
                }
            }
        }
    }
    Ok(RestoreReport {
        from: from.to_path_buf(),
        ledger_id,
        files_added,
        files_differing,
        problems,
    })
}

/// ORD names as one line: `e-redes, eda`.
fn names(ords: &[OrdName]) -> String {
    ords.iter()
        .map(OrdName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
