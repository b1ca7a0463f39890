//! Opening what a command works on: the config file, the registry and the store.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use egme_ord::cycle::{load_registry, Cycle, CycleSummary, RunOptions};
use egme_ord::fsutil::{create_private_dir, read_input, resolve_links, MAX_CONFIG_BYTES};
use egme_ord::store::{Ledger, OpenMode, Store, StoreError, StoreLock};
use egme_ord_core::config::{layout, Config, OrdConfig};
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

/// The configured ORD named `ord` (`--ord`); an error naming the configured ones when `config`
/// (read from `path`) has none of that name.
pub fn check_ord<'a>(config: &'a Config, path: &Path, ord: &str) -> Result<&'a OrdConfig> {
    match config.ord(ord) {
        Some(o) => Ok(o),
        None => Err(anyhow!(
            "--ord {ord}: no such ORD in {} (configured: {})",
            path.display(),
            config.ord_names()
        )),
    }
}

impl Workspace {
    /// Opens config, registry and store, holding the store's lock (for commands that change it).
    pub fn open(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, OpenMode::Locked)
    }

    /// Opens without the lock, for reading while a daemon runs (`status`).
    pub fn open_unlocked(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, OpenMode::Unlocked)
    }

    /// Opens an existing ledger for a command that only reads (`status`, `verify`): nothing is
    /// created, not even a folder; a ledger that is not there is an error naming its path.
    pub fn open_read_only(config_path: &Path) -> Result<Workspace> {
        Self::open_with(config_path, OpenMode::Existing)
    }

    /// Opens for `recover` ([`OpenMode::Recovery`]): with the lock; a ledger that fails its
    /// integrity check (or any, with `fresh`) is set aside and a new one started.
    pub fn open_for_recovery(config_path: &Path, fresh: bool) -> Result<Workspace> {
        Self::open_with(config_path, OpenMode::Recovery { fresh })
    }

    fn open_with(config_path: &Path, mode: OpenMode) -> Result<Workspace> {
        let config = load_config(config_path)?;
        if mode == OpenMode::Existing && !config.store.is_file() {
            // Said before anything else is read, as `Ledger::open` would say it.
            return Err(StoreError::Missing {
                path: config.store.clone(),
            }
            .into());
        }
        let registry = load_registry(&config).map_err(|e| anyhow!("{e}"))?;
        let ledger = Ledger::open(&config.store, mode)?;
        if mode != OpenMode::Existing {
            create_private_dir(&config.work_dir)
                .with_context(|| format!("cannot create {}", config.work_dir.display()))?;
        }
        Ok(Workspace {
            damaged_kept_at: ledger.set_aside,
            _lock: ledger.lock,
            config,
            registry,
            store: ledger.store,
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
