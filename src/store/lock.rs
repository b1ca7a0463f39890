//! The store lock: one egme-ord process writes a ledger at a time (an exclusive `flock` on `<store>.lock`, held while the process lives).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use thiserror::Error;

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
}
