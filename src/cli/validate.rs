//! `egme-ord validate-config`: every mistake of a config in one run, and (unless told not to) the environment.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use egme_ord::config::{Config, Endpoint};
use egme_ord::cycle::{load_registry, open_endpoint, CycleError};
use egme_ord::fsutil::{create_private_dir, permission_problem, private_problem};

use super::exit;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Check only the file: no registry, folders, keys or servers.
    #[arg(long)]
    no_environment: bool,
}

pub fn run(args: &ValidateArgs) -> Result<u8> {
    let text = fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    let absolute = if args.config.is_absolute() {
        args.config.clone()
    } else {
        std::env::current_dir()?.join(&args.config)
    };
    let config = match Config::parse(&text, &absolute) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            println!("{}: {} error(s)", args.config.display(), errors.len());
            return Ok(exit::INVALID);
        }
    };
    let mut problems: Vec<String> = Vec::new();
    if !args.no_environment {
        environment(&config, &mut problems);
    }
    for p in &problems {
        println!("error: {p}");
    }
    if problems.is_empty() {
        let checked = if args.no_environment {
            "file only"
        } else {
            "file, registry, folders, keys and servers"
        };
        println!(
            "{}: valid ({} ORD(s): {}; {checked})",
            args.config.display(),
            config.ords.len(),
            config.ord_names()
        );
        Ok(exit::OK)
    } else {
        println!("{}: {} problem(s)", args.config.display(), problems.len());
        Ok(exit::INVALID)
    }
}

fn writable_dir(path: &Path, what: &str, problems: &mut Vec<String>) {
    if let Err(e) = create_private_dir(path) {
        problems.push(format!("{what} {}: {e}", path.display()));
        return;
    }
    let probe = path.join(format!(".egme-ord-probe-{}", std::process::id()));
    match fs::write(&probe, b"") {
        Ok(()) => {
            let _ = fs::remove_file(&probe);
        }
        Err(e) => problems.push(format!("{what} {} is not writable: {e}", path.display())),
    }
}

fn environment(config: &Config, problems: &mut Vec<String>) {
    match load_registry(config) {
        Ok(_) => {}
        Err(CycleError::Registry(errors)) => {
            problems.extend(errors.iter().map(|e| format!("registry: {e}")))
        }
        Err(e) => problems.push(format!("registry: {e}")),
    }
    if let Some(parent) = config.store.parent() {
        writable_dir(parent, "store folder", problems);
    }
    writable_dir(&config.work_dir, "work folder", problems);
    for private in [Some(config.work_dir.as_path()), config.store.parent()]
        .into_iter()
        .flatten()
    {
        if let Some(problem) = private_problem(private) {
            problems.push(problem);
        }
    }
    if config.store.exists() {
        if let Some(problem) = private_problem(&config.store) {
            problems.push(problem);
        }
    }
    writable_dir(&config.mobility_inbox, "mobility inbox", problems);
    for ord in &config.ords {
        for (side, endpoint) in [("receive", &ord.receive), ("send", &ord.send)] {
            let at = format!("{} {side}", ord.name);
            if let Endpoint::Sftp(s) = endpoint {
                for (file, secret) in [
                    (s.key.as_ref(), true),
                    (s.passphrase_file.as_ref(), true),
                    (Some(&s.known_hosts), false),
                ] {
                    if let Some(problem) = file.and_then(|f| permission_problem(f, secret)) {
                        problems.push(format!("{at}: {problem}"));
                    }
                }
                for var in [&s.passphrase_env, &s.password_env].into_iter().flatten() {
                    if std::env::var_os(var).is_none() {
                        problems.push(format!("{at}: environment variable {var} is not set"));
                    }
                }
            }
            match open_endpoint(endpoint).and_then(|mut dir| dir.list().map_err(CycleError::from)) {
                Ok(_) => {}
                Err(e) => problems.push(format!("{at}: cannot list the folder: {e}")),
            }
        }
    }
}
