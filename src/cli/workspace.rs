//! Opening what a command works on: the config file, the registry and the store.

use std::fs;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use egme_ord::cycle::{load_registry, Cycle, CycleSummary, RunOptions};
use egme_ord::fsutil::{
    create_private_dir, create_private_file, read_input, resolve_links, store_path_problem,
    MAX_CONFIG_BYTES,
};
use egme_ord::store::StoreLock;
use egme_ord::store::{Store, StoreError};
use egme_ord_core::config::{layout, Config};
use egme_ord_core::registry::Registry;

pub struct Workspace {
    /// Held while the workspace lives: a second instance on the same store is refused.
    _lock: Option<StoreLock>,
    /// Where a damaged ledger was moved before a new one was started (`recover` only).
    pub damaged_kept_at: Option<std::path::PathBuf>,
    pub config: Config,
    pub registry: Registry,
    pub store: Store,
}

pub fn load_config(path: &Path) -> Result<Config> {
    let text = read_input(path, MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let config = Config::parse(&text, &absolute).map_err(|errors| {
        anyhow!(
            "{} error(s) in the config:\n  {}",
            errors.len(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })?;
    let linked = linked_collisions(&config);
    if !linked.is_empty() {
        return Err(anyhow!(
            "{} error(s) in the config:\n  {}",
            linked.len(),
            linked.join("\n  ")
        ));
    }
    Ok(config)
}

/// The folders that collide once their links are followed (the config's own spelling was
/// compared when it was read), each as `<file>: key `K`: message`.
pub fn linked_collisions(config: &Config) -> Vec<String> {
    layout::collisions(config, &resolve_links)
        .into_iter()
        .map(|c| {
            format!(
                "{}: key `{}`: {} (after following links)",
                config.file.display(),
                c.key(),
                c.message
            )
        })
        .collect()
}

/// Moves a ledger and its `-wal`/`-shm` to `<store>.<why>-<UTC time>[-wal|-shm]`.
pub fn set_ledger_aside(store: &Path, why: &str) -> Result<std::path::PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let kept = std::path::PathBuf::from(format!("{}.{why}-{stamp}", store.display()));
    for suffix in ["", "-wal", "-shm"] {
        let from = std::path::PathBuf::from(format!("{}{suffix}", store.display()));
        let to = std::path::PathBuf::from(format!("{}{suffix}", kept.display()));
        if from.exists() {
            fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(kept)
}

/// Fails unless `ord` is an ORD of `config` (read from `path`), naming the configured ones.
pub fn check_ord(config: &Config, path: &Path, ord: &str) -> Result<()> {
    if config.ord(ord).is_none() {
        return Err(anyhow!(
            "--ord {ord}: no such ORD in {} (configured: {})",
            path.display(),
            config.ord_names()
        ));
    }
    Ok(())
}

impl Workspace {
    /// Opens config, registry and store, holding the store's lock (for commands that change it).
    pub fn open(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, true, false)
    }

    /// Opens without the lock, for reading while a daemon runs (`status`).
    pub fn open_unlocked(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, false, false)
    }

    /// Opens an existing ledger for a command that only reads (`status`, `verify`): nothing is
    /// created, not even a folder; a ledger that is not there is an error naming its path.
    pub fn open_read_only(config_path: &Path) -> Result<Workspace> {
        let config = load_config(config_path)?;
        if !config.store.is_file() {
            return Err(anyhow!(
                "store {}: there is no ledger here: nothing has run on this config yet (`egme-ord once` or `run` creates it), or the path is wrong; if the ledger was lost, see `egme-ord recover` (docs/OPERATIONS.md)",
                config.store.display()
            ));
        }
        let registry = load_registry(&config).map_err(|e| anyhow!("{e}"))?;
        let store = Store::open(&config.store)?;
        Ok(Workspace {
            damaged_kept_at: None,
            _lock: None,
            config,
            registry,
            store,
        })
    }

    /// Opens for `recover`: with the lock, and a ledger that fails its integrity check is moved
    /// aside (`<store>.damaged-<UTC time>`, with its `-wal` and `-shm`) and a new one started.
    /// With `fresh`, the ledger is set aside (`<store>.replaced-<UTC time>`) whatever its state,
    /// and rebuilt from the witnesses alone.
    pub fn open_for_recovery(config_path: &Path, fresh: bool) -> Result<Workspace> {
        if fresh {
            let config = load_config(config_path)?;
            // The lock first: never move a ledger that a running daemon has open.
            let lock = StoreLock::acquire(&config.store)?;
            if config.store.exists() {
                let kept = set_ledger_aside(&config.store, "replaced")?;
                tracing::warn!(store = %config.store.display(), kept_at = %kept.display(), "ledger set aside (--fresh); a new one is rebuilt");
                drop(lock);
                let mut ws = Self::open_with(config_path, true, true)?;
                ws.damaged_kept_at = Some(kept);
                return Ok(ws);
            }
        }
        Self::open_with(config_path, true, true)
    }

    fn open_with(config_path: &Path, lock: bool, recovery: bool) -> Result<Workspace> {
        let config = load_config(config_path)?;
        let registry = load_registry(&config).map_err(|e| anyhow!("{e}"))?;
        if lock {
            if let Some(problem) = store_path_problem(&config.store) {
                return Err(anyhow!(
                    "store {}: {problem}: refused (docs/SECURITY.md)",
                    config.store.display()
                ));
            }
        }
        if let Some(parent) = config.store.parent() {
            create_private_dir(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        create_private_dir(&config.work_dir)
            .with_context(|| format!("cannot create {}", config.work_dir.display()))?;
        create_private_file(&config.store)
            .with_context(|| format!("cannot create {}", config.store.display()))?;
        let lock = if lock {
            Some(StoreLock::acquire(&config.store)?)
        } else {
            None
        };
        let mut damaged_kept_at = None;
        let opened = if recovery {
            Store::open_checked(&config.store)
        } else {
            Store::open(&config.store)
        };
        let store = match opened {
            Err(StoreError::Damaged { detail, .. }) if recovery => {
                let kept = set_ledger_aside(&config.store, "damaged")?;
                tracing::warn!(store = %config.store.display(), kept_at = %kept.display(), %detail, "damaged ledger kept aside; a new one is rebuilt");
                damaged_kept_at = Some(kept);
                create_private_file(&config.store)
                    .with_context(|| format!("cannot create {}", config.store.display()))?;
                Store::open(&config.store)?
            }
            other => other?,
        };
        Ok(Workspace {
            damaged_kept_at,
            _lock: lock,
            config,
            registry,
            store,
        })
    }

    pub fn cycle(
        &mut self,
        now: DateTime<Utc>,
        wall_now: DateTime<Utc>,
        options: RunOptions,
    ) -> CycleSummary {
        Cycle::new(
            &self.config,
            &self.registry,
            &mut self.store,
            now,
            wall_now,
            options,
        )
        .run()
    }
}
