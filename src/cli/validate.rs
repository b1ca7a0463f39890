//! `egme-ord validate-config`: every mistake of a config in one run, and (unless told not to) the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use egme_ord::cycle::{load_registry, open_endpoint, CycleError};
use egme_ord::fsutil::{permission_problem, private_problem, read_input, MAX_CONFIG_BYTES};
use egme_ord::transport::{check_tls_settings, Probe};
use egme_ord_core::config::{Config, ConfigError, Endpoint};
use egme_ord_core::ord_name::OrdName;
use serde::Serialize;

use super::exit;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Check only the file and the registry's contents: no folders, keys or servers.
    #[arg(long)]
    no_environment: bool,
    /// One JSON object on standard output: {file, valid, errors: [{file, line, column, key,
    /// message}], problems: [..], ords: [..]}.
    #[arg(long)]
    json: bool,
}

/// What `validate-config` found.
#[derive(Debug, Serialize)]
struct Validation {
    file: String,
    valid: bool,
    /// Mistakes of the file itself, each with its place and key path.
    errors: Vec<ConfigError>,
    /// Problems of what it names: the registry, folders, keys, servers.
    problems: Vec<String>,
    /// What is allowed but likely a mistake (e.g. a registry key without a row on some days).
    warnings: Vec<String>,
    ords: Vec<OrdName>,
    checked: &'static str,
    /// What each folder's server offers and does (with the environment only).
    probes: Vec<Probe>,
}

pub fn run(args: &ValidateArgs) -> Result<u8> {
    let text = read_input(&args.config, MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read config {}", args.config.display()))?;
    let absolute = if args.config.is_absolute() {
        args.config.clone()
    } else {
        std::env::current_dir()?.join(&args.config)
    };
    let checked = if args.no_environment {
        "file and registry"
    } else {
        "file, registry, folders, keys and servers"
    };
    let mut v = Validation {
        file: args.config.display().to_string(),
        valid: false,
        errors: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        ords: Vec::new(),
        checked,
        probes: Vec::new(),
    };
    match Config::parse(&text, &absolute) {
        Err(errors) => v.errors = errors,
        Ok(config) => {
            v.ords = config.ords.iter().map(|o| o.name.clone()).collect();
            registry(&config, &mut v.problems, &mut v.warnings);
            plaintext(&config, &mut v.warnings);
            if !args.no_environment {
                v.problems
                    .extend(super::workspace::linked_collisions(&config));
                v.probes = environment(&config, &mut v.problems, &mut v.warnings);
            }
        }
    }
    v.valid = v.errors.is_empty() && v.problems.is_empty();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for e in &v.errors {
            println!("error: {e}");
        }
        for p in &v.problems {
            println!("error: {p}");
        }
        for w in &v.warnings {
            println!("warning: {w}");
        }
        if !v.probes.is_empty() {
            println!("what each folder's server offers and does:");
            for line in v.probes.iter().flat_map(Probe::lines) {
                println!("  {line}");
            }
        }
        if v.valid {
            println!(
                "{}: valid ({} ORD(s): {}; {checked})",
                v.file,
                v.ords.len(),
                v.ords.join(", ")
            );
        } else if !v.errors.is_empty() {
            println!("{}: {} error(s)", v.file, v.errors.len());
        } else {
            println!("{}: {} problem(s)", v.file, v.problems.len());
        }
    }
    Ok(if v.valid { exit::OK } else { exit::INVALID })
}

/// A folder egme-ord writes to: there and writable, or not there but creatable (the first run
/// creates it). Nothing is created here.
fn writable_dir(path: &Path, what: &str, problems: &mut Vec<String>) {
    let mut probe = path;
    while !probe.exists() {
        match probe.parent() {
            Some(parent) => probe = parent,
            None => break,
        }
    }
    if !probe.is_dir() {
        problems.push(format!(
            "{what} {}: {} is not a folder",
            path.display(),
            probe.display()
        ));
        return;
    }
    if rustix::fs::access(probe, rustix::fs::Access::WRITE_OK).is_err() {
        let which = if probe == path {
            "is not writable".to_string()
        } else {
            format!("cannot be created: {} is not writable", probe.display())
        };
        problems.push(format!("{what} {} {which}", path.display()));
    }
}

/// Endpoints on plain FTP (allowed, but in clear).
fn plaintext(config: &Config, warnings: &mut Vec<String>) {
    for ord in &config.ords {
        for (side, endpoint) in [("receive", &ord.receive), ("send", &ord.send)] {
            if let Endpoint::Ftp(s) = endpoint {
                if !s.tls {
                    warnings.push(format!(
                        "{} {side}: transport = \"ftp\" (allow_plaintext = true): the password and the files cross the network in clear; ask the ORD for FTPS",
                        ord.name
                    ));
                }
            }
        }
    }
}

/// The registry's files read and checked (their contents, not only their presence).
fn registry(config: &Config, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    match load_registry(config) {
        Ok(registry) => {
            warnings.extend(registry.warnings().iter().map(|w| format!("registry: {w}")))
        }
        Err(CycleError::Registry(errors)) => {
            problems.extend(errors.iter().map(|e| format!("registry: {e}")))
        }
        Err(e) => problems.push(format!("registry: {e}")),
    }
}

/// The environment's problems and warnings; each folder's probe, returned.
fn environment(
    config: &Config,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    if let Some(parent) = config.store.parent() {
        writable_dir(parent, "store folder", problems);
    }
    writable_dir(&config.work_dir, "work folder", problems);
    for private in [Some(config.work_dir.as_path()), config.store.parent()]
        .into_iter()
        .flatten()
        .filter(|p| p.exists())
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
            if let Endpoint::Ftp(s) = endpoint {
                if let Some(problem) = s
                    .password_file
                    .as_ref()
                    .and_then(|f| permission_problem(f, true))
                {
                    problems.push(format!("{at}: {problem}"));
                }
                if let Some(var) = &s.password_env {
                    if std::env::var_os(var).is_none() {
                        problems.push(format!("{at}: environment variable {var} is not set"));
                    }
                }
                if let Err(problem) = check_tls_settings(s) {
                    problems.push(format!("{at}: {problem}"));
                    continue;
                }
            }
            if let Endpoint::Local { path } = endpoint {
                // A mistyped path must not become a real, empty folder.
                if !path.is_dir() {
                    problems.push(format!(
                        "{at}: the folder {} does not exist: create it, or fix the path",
                        path.display()
                    ));
                    continue;
                }
            }
            let listed = open_endpoint(endpoint)
                .and_then(|mut dir| dir.list().map(|_| dir).map_err(CycleError::from));
            match listed {
                Ok(mut dir) => {
                    // A send folder is probed with temporary names written, renamed and removed.
                    let mut probe = dir.probe(side == "send");
                    probe.folder.clone_from(&at);
                    problems.extend(probe.problems.iter().map(|p| format!("{at}: {p}")));
                    warnings.extend(probe.warnings.iter().map(|w| format!("{at}: {w}")));
                    probes.push(probe);
                }
                Err(e) => problems.push(format!("{at}: cannot list the folder: {e}")),
            }
        }
    }
    probes
}
