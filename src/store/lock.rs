//! Opening the ledger's file ([`Ledger::open`]): the path checks, the store lock (one egme-ord process writes a ledger at a time: an exclusive `flock` on `<store>.lock`, held while the process lives), a ledger set aside.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use chrono::Utc;
use thiserror::Error;

use super::{Store, StoreError};
use crate::fsutil::{create_private_dir, create_private_file, store_path_problem};

/// How a command opens the ledger ([`Ledger::open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// A ledger that is there, without the lock: nothing is created, not even a folder
    /// (`status`, `verify`).
    Existing,
    /// Created when missing, without the lock (reading while a daemon runs).
    Unlocked,
    /// Created when missing, its path checked, with the lock (the commands that change it).
    Locked,
    /// For `recover`: as `Locked`, then SQLite's integrity check; a ledger that fails it is set
    /// aside (`<store>.damaged-<UTC time>`) and a new one started. With `fresh`, the ledger is set
    /// aside whatever its state (`<store>.replaced-<UTC time>`).
    Recovery { fresh: bool },
}

/// A ledger as a command opened it.
pub struct Ledger {
    pub store: Store,
    /// Held while the command runs: a second instance on the same store is refused.
    pub lock: Option<StoreLock>,
    /// Where a ledger was set aside before a new one was started (`recover` only).
    pub set_aside: Option<PathBuf>,
}

impl Ledger {
    /// The one place that opens a ledger file for a command, as `mode` says.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Ledger, StoreError> {
        let lock = match mode {
            OpenMode::Existing => {
                if !path.is_file() {
                    return Err(StoreError::Missing {
                        path: path.to_path_buf(),
                    });
                }
                None
            }
            OpenMode::Unlocked => {
                create_ledger_file(path)?;
                None
            }
            OpenMode::Locked => {
                let lock = lock_checked(path)?;
                create_ledger_file(path)?;
                Some(lock)
            }
            OpenMode::Recovery { fresh } => return Ledger::recover(path, fresh),
        };
        Ok(Ledger {
            store: Store::open(path)?,
            lock,
            set_aside: None,
        })
    }

    /// [`OpenMode::Recovery`].
    fn recover(path: &Path, fresh: bool) -> Result<Ledger, StoreError> {
        // The lock first: never move a ledger that a running daemon has open.
        let lock = lock_checked(path)?;
        let mut set_aside = None;
        if fresh && path.exists() {
            let kept = set_ledger_aside(path, "replaced")?;
            tracing::warn!(store = %path.display(), kept_at = %kept.display(), "ledger set aside (--fresh); a new one is rebuilt");
            set_aside = Some(kept);
        }
        create_ledger_file(path)?;
        let store = match Store::open_checked(path) {
            Err(StoreError::Damaged { detail, .. }) => {
                let kept = set_ledger_aside(path, "damaged")?;
                tracing::warn!(store = %path.display(), kept_at = %kept.display(), %detail, "damaged ledger kept aside; a new one is rebuilt");
                set_aside = Some(kept);
                create_ledger_file(path)?;
                Store::open(path)?
            }
            other => other?,
        };
        Ok(Ledger {
            store,
            lock: Some(lock),
            set_aside,
        })
    }
}

/// The lock on the ledger at `path` (its folder made when missing), once the path is found safe
/// to write.
fn lock_checked(path: &Path) -> Result<StoreLock, StoreError> {
    if let Some(detail) = store_path_problem(path) {
        return Err(StoreError::Unsafe {
            path: path.to_path_buf(),
            detail,
        });
    }
    create_ledger_folder(path)?;
    Ok(StoreLock::acquire(path)?)
}

fn created(at: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = at.to_path_buf();
    move |source| StoreError::Create { path, source }
}

/// The ledger's folder (private), unless there.
fn create_ledger_folder(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => create_private_dir(parent).map_err(created(parent)),
        None => Ok(()),
    }
}

/// The ledger's folder and an empty private file, unless there (SQLite then gives its `-wal`
/// and `-shm` files the file's mode).
fn create_ledger_file(path: &Path) -> Result<(), StoreError> {
    create_ledger_folder(path)?;
    create_private_file(path).map_err(created(path))
}

/// Moves a ledger and its `-wal`/`-shm` to `<store>.<why>-<UTC time>[-wal|-shm]`; where it went.
pub fn set_ledger_aside(store: &Path, why: &str) -> Result<PathBuf, StoreError> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let kept = PathBuf::from(format!("{}.{why}-{stamp}", store.display()));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", store.display()));
        let to = PathBuf::from(format!("{}{suffix}", kept.display()));
        if from.exists() {
            std::fs::rename(&from, &to).map_err(|source| StoreError::SetAside {
                from: from.clone(),
                to: to.clone(),
                source,
            })?;
        }
    }
    Ok(kept)
}

/// Another instance holds the store.
#[derive(Debug, Error)]
pub enum LockError {
    #[error("another egme-ord holds the store {store} (lock file {lock}): refusing to start a second instance")]
    Held { store: PathBuf, lock: PathBuf },
    #[error("cannot lock the store {store} ({lock}): {source}")]
    Io {
        store: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on `<store>.lock`, held while the process lives.
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub fn acquire(store: &Path) -> Result<StoreLock, LockError> {
        let lock = PathBuf::from(format!("{}.lock", store.display()));
        let io = |source| LockError::Io {
            store: store.to_path_buf(),
            lock: lock.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                store: store.to_path_buf(),
                lock,
            }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.sqlite");
        let first = StoreLock::acquire(&store).unwrap();
        assert!(matches!(
            StoreLock::acquire(&store),
            Err(LockError::Held { .. })
        ));
        drop(first);
        assert!(StoreLock::acquire(&store).is_ok());
    }

    #[test]
    fn an_existing_ledger_is_opened_as_it_is_and_a_missing_one_is_named_with_nothing_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("state/ledger.sqlite");
        assert!(matches!(
            Ledger::open(&store, OpenMode::Existing),
            Err(StoreError::Missing { .. })
        ));
        assert!(!dir.path().join("state").exists(), "nothing created");
        let unlocked = Ledger::open(&store, OpenMode::Unlocked).unwrap();
        assert!(unlocked.lock.is_none() && store.is_file());
        let id = unlocked.store.ledger_id().unwrap();
        let existing = Ledger::open(&store, OpenMode::Existing).unwrap();
        assert_eq!(existing.store.ledger_id().unwrap(), id);
        assert!(existing.lock.is_none() && existing.set_aside.is_none());
    }

    #[test]
    fn a_locked_ledger_is_refused_to_a_second_opener_and_an_unsafe_path_to_any() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("state/ledger.sqlite");
        let first = Ledger::open(&store, OpenMode::Locked).unwrap();
        assert!(first.lock.is_some());
        assert!(matches!(
            Ledger::open(&store, OpenMode::Locked),
            Err(StoreError::Lock(LockError::Held { .. }))
        ));
        assert!(matches!(
            Ledger::open(&store, OpenMode::Recovery { fresh: true }),
            Err(StoreError::Lock(LockError::Held { .. }))
        ));
        drop(first);
        let link = dir.path().join("state/link.sqlite");
        std::os::unix::fs::symlink(&store, &link).unwrap();
        assert!(matches!(
            Ledger::open(&link, OpenMode::Locked),
            Err(StoreError::Unsafe { .. })
        ));
    }

    #[test]
    fn recovery_sets_a_damaged_ledger_aside_and_fresh_sets_any_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("ledger.sqlite");
        let id = Ledger::open(&store, OpenMode::Locked)
            .unwrap()
            .store
            .ledger_id()
            .unwrap();
        // A sound ledger is kept by recovery, and set aside by a fresh one.
        let kept = Ledger::open(&store, OpenMode::Recovery { fresh: false }).unwrap();
        assert_eq!(kept.store.ledger_id().unwrap(), id);
        assert!(kept.set_aside.is_none());
        drop(kept);
        let fresh = Ledger::open(&store, OpenMode::Recovery { fresh: true }).unwrap();
        let aside = fresh.set_aside.clone().unwrap();
        assert!(aside.to_string_lossy().contains(".replaced-"), "{aside:?}");
        assert_ne!(fresh.store.ledger_id().unwrap(), id);
        drop(fresh);
        // Not a ledger at all: set aside as damaged, a new one started.
        for suffix in ["-wal", "-shm"] {
            // Not there when SQLite removed them on close: nothing to remove.
            let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
        }
        std::fs::write(&store, vec![0x5a; 8192]).unwrap();
        let rebuilt = Ledger::open(&store, OpenMode::Recovery { fresh: false }).unwrap();
        let aside = rebuilt.set_aside.clone().unwrap();
        assert!(aside.to_string_lossy().contains(".damaged-"), "{aside:?}");
        assert_eq!(std::fs::read(&aside).unwrap(), vec![0x5a; 8192]);
    }
}
