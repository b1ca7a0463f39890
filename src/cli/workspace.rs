//! Opening what a command works on: the config file, the registry and the store.

use std::fs;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use egme_ord::config::Config;
use egme_ord::cycle::{load_registry, Cycle, CycleSummary, RunOptions};
use egme_ord::daemon::StoreLock;
use egme_ord::fsutil::{create_private_dir, create_private_file};
use egme_ord::registry::Registry;
use egme_ord::store::Store;

pub struct Workspace {
    /// Held while the workspace lives: a second instance on the same store is refused.
    _lock: Option<StoreLock>,
    pub config: Config,
    pub registry: Registry,
    pub store: Store,
}

pub fn load_config(path: &Path) -> Result<Config> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Config::parse(&text, &absolute).map_err(|errors| {
        anyhow!(
            "{} error(s) in the config:\n  {}",
            errors.len(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })
}

impl Workspace {
    /// Opens config, registry and store, holding the store's lock (for commands that change it).
    pub fn open(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, true)
    }

    /// Opens without the lock, for reading while a daemon runs (`status`).
    pub fn open_unlocked(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, false)
    }

    fn open_with(config_path: &Path, lock: bool) -> Result<Workspace> {
        let config = load_config(config_path)?;
        let registry = load_registry(&config).map_err(|e| anyhow!("{e}"))?;
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
        let store = Store::open(&config.store)?;
        Ok(Workspace {
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
