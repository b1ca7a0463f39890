//! Configuration: global settings and one section per ORD, from TOML; unknown keys are errors naming file and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use serde::Deserialize;
use thiserror::Error;

use crate::netting::{NettingPolicy, TariffFiles};
use crate::planner::Schedule;
use crate::region::Region;
use crate::sgl::{Dialect, ValueKind};

/// A configuration mistake, with the file (and line/column or key where known).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    store: PathBuf,
    work_dir: PathBuf,
    #[serde(default = "default_send_at")]
    send_at: String,
    #[serde(default = "default_poll")]
    poll_interval: String,
    #[serde(default = "default_min_age")]
    min_file_age: String,
    /// Default `send_deadline` of every ORD (local time, HH:MM); none: the end of the local day.
    send_deadline: Option<String>,
    /// A cycle whose time is more than this after the last cycle's refuses to run (clock guard).
    #[serde(default = "default_clock_step")]
    max_clock_step: String,
    /// After SIGTERM, how long `run` lets the cycle in flight finish before abandoning it.
    #[serde(default = "default_stop_timeout")]
    stop_timeout: String,
    /// Address for Prometheus metrics (e.g. 127.0.0.1:9464); none by default.
    metrics_listen: Option<String>,
    mobility: RawMobility,
    registry: RawRegistry,
    /// `[backup]`: where `run` copies the ledger and its files after every daily send.
    backup: Option<RawBackup>,
    /// Deserialized one by one, so that mistakes in several ORDs are all reported.
    #[serde(default)]
    ord: Vec<toml::Value>,
}

fn default_send_at() -> String {
    "20:00".into()
}
fn default_poll() -> String {
    "5m".into()
}
fn default_stop_timeout() -> String {
    "30s".into()
}
fn default_clock_step() -> String {
    "2d".into()
}
fn default_min_age() -> String {
    "30s".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawBackup {
    /// A folder on another disk or a mounted share.
    folder: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawMobility {
    inbox: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawRegistry {
    cpes: PathBuf,
    evses: PathBuf,
    cemes: PathBuf,
    tariff_overrides: Option<PathBuf>,
    #[serde(default)]
    other_ords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawOrd {
    name: String,
    region: Region,
    ord_entity: String,
    #[serde(default = "default_egme_entity")]
    egme_entity: String,
    inbound_destination: Option<String>,
    outbound_destination: Option<String>,
    receive: RawEndpoint,
    send: RawEndpoint,
    #[serde(default = "one")]
    first_transmission_id: u64,
    #[serde(default)]
    netting_policy: NettingPolicy,
    #[serde(default = "default_tolerance")]
    tolerance_kwh: Decimal,
    #[serde(default)]
    tariff_files: TariffFiles,
    #[serde(default = "default_value_kind")]
    value_kind: ValueKind,
    #[serde(default = "default_window")]
    window_days: u32,
    send_at: Option<String>,
    /// Local time after which the daily send goes out even though its intake failed.
    send_deadline: Option<String>,
    #[serde(default)]
    dialect: Dialect,
}

fn default_egme_entity() -> String {
    crate::check::EGME_ENTITY.into()
}
fn one() -> u64 {
    1
}
fn default_tolerance() -> Decimal {
    Decimal::new(1, 3)
}
fn default_value_kind() -> ValueKind {
    ValueKind::Power
}
fn default_window() -> u32 {
    30
}

/// An endpoint section as written: `transport` chooses the struct that reads the other keys, so
/// the keys each transport takes are the fields of its struct and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawEndpoint {
    kind: RawTransport,
    /// Keys the chosen transport does not take.
    stray: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RawTransport {
    Local(RawLocal),
    Sftp(Box<RawSftp>),
}

/// `transport = "local"`: a folder of this machine (or a mount).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawLocal {
    path: PathBuf,
    /// Receive side only: move each file, once recorded, into this folder of the account.
    move_to: Option<String>,
    /// Send side only: the folder of the account the ORD moves our files into once it took them
    /// (relative to the send folder, or absolute); the fence reads it as a witness of ids used.
    ord_moves_to: Option<String>,
}

/// `transport = "sftp"`: a folder of an SFTP account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawSftp {
    path: PathBuf,
    move_to: Option<String>,
    ord_moves_to: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    key: Option<PathBuf>,
    passphrase_env: Option<String>,
    passphrase_file: Option<PathBuf>,
    password_env: Option<String>,
    known_hosts: Option<PathBuf>,
    connect_timeout: Option<String>,
    io_timeout: Option<String>,
    keepalive: Option<String>,
    attempts: Option<u32>,
    sessions: Option<u32>,
    /// Send side: ask the server to flush each file to disk before it is renamed (default true).
    fsync: Option<bool>,
}

impl<'de> Deserialize<'de> for RawEndpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let transport: Transport = table
            .remove("transport")
            .ok_or_else(|| D::Error::missing_field("transport"))?
            .try_into()
            .map_err(|e: toml::de::Error| {
                D::Error::custom(format!("key `transport`: {}", e.message().trim()))
            })?;
        let mut stray = Vec::new();
        let value = toml::Value::Table(table);
        let mut note = |path: serde_ignored::Path<'_>| stray.push(path.to_string());
        let kind = match transport {
            Transport::Local => RawTransport::Local(
                serde_ignored::deserialize(value, &mut note).map_err(D::Error::custom)?,
            ),
            Transport::Sftp => RawTransport::Sftp(Box::new(
                serde_ignored::deserialize(value, &mut note).map_err(D::Error::custom)?,
            )),
        };
        Ok(RawEndpoint { kind, stray })
    }
}

impl RawEndpoint {
    fn move_to(&self) -> Option<&String> {
        match &self.kind {
            RawTransport::Local(l) => l.move_to.as_ref(),
            RawTransport::Sftp(s) => s.move_to.as_ref(),
        }
    }

    fn ord_moves_to(&self) -> Option<&String> {
        match &self.kind {
            RawTransport::Local(l) => l.ord_moves_to.as_ref(),
            RawTransport::Sftp(s) => s.ord_moves_to.as_ref(),
        }
    }

    /// The keys of this endpoint no transport takes (unknown keys, reported with their line).
    fn unknown_keys(&self) -> impl Iterator<Item = &String> {
        let sftp = serde_aux::serde_introspection::serde_introspect::<RawSftp>();
        self.stray.iter().filter(|k| !sftp.contains(&k.as_str()))
    }
}

/// How files reach an ORD's folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A local (or mounted) folder.
    Local,
    /// An SFTP account (ssh2), host keys checked against known_hosts.
    Sftp,
}

/// Where and how to reach one SFTP folder. Secrets are never stored here: only where to find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (ed25519 or RSA); `None` with `password_env` set means password authentication.
    pub key: Option<PathBuf>,
    /// Environment variable holding the key's passphrase.
    pub passphrase_env: Option<String>,
    /// File holding the key's passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding a password (only when configured explicitly).
    pub password_env: Option<String>,
    pub known_hosts: PathBuf,
    /// The remote folder.
    pub path: String,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub keepalive: Duration,
    /// Connection attempts per operation (1 = no retry).
    pub attempts: u32,
    /// Parallel sessions for batches of transfers (1 = one session, strict order).
    pub sessions: u32,
    /// Uploads: `fsync@openssh.com` on each file before its rename, where the server offers it.
    pub fsync: bool,
}

/// One folder of an exchange account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Local { path: PathBuf },
    Sftp(Box<SftpSettings>),
}

impl Endpoint {
    /// The same account's folder `folder`: relative to this endpoint's folder, or absolute.
    pub fn subfolder(&self, folder: &str) -> Endpoint {
        match self {
            Endpoint::Local { path } => Endpoint::Local {
                path: path.join(folder),
            },
            Endpoint::Sftp(settings) => {
                let mut s = (**settings).clone();
                s.path = if folder.starts_with('/') {
                    folder.to_string()
                } else {
                    format!("{}/{folder}", s.path.trim_end_matches('/'))
                };
                Endpoint::Sftp(Box::new(s))
            }
        }
    }
}

impl RawEndpoint {
    /// Validates the endpoint; `at` names it in errors, `abs` resolves local paths.
    fn resolve(
        &self,
        at: &str,
        abs: &dyn Fn(&Path) -> PathBuf,
        errors: &mut Vec<String>,
    ) -> Endpoint {
        match &self.kind {
            RawTransport::Local(l) => {
                // Keys of the other transport (unknown keys are reported with their line).
                let sftp = serde_aux::serde_introspection::serde_introspect::<RawSftp>();
                for key in self.stray.iter().filter(|k| sftp.contains(&k.as_str())) {
                    errors.push(format!(
                        "{at}: key `{key}` is only for transport = \"sftp\""
                    ));
                }
                Endpoint::Local { path: abs(&l.path) }
            }
            RawTransport::Sftp(s) => Endpoint::Sftp(Box::new(s.resolve(at, abs, errors))),
        }
    }
}

impl RawSftp {
    /// Validates an SFTP endpoint's keys.
    fn resolve(
        &self,
        at: &str,
        abs: &dyn Fn(&Path) -> PathBuf,
        errors: &mut Vec<String>,
    ) -> SftpSettings {
        let s = self;
        let mut need = |key: &str, v: &Option<String>| -> String {
            match v {
                Some(x) if !x.is_empty() => x.clone(),
                _ => {
                    errors.push(format!(
                        "{at}: key `{key}` is required for transport = \"sftp\""
                    ));
                    String::new()
                }
            }
        };
        let host = need("host", &s.host);
        let user = need("user", &s.user);
        if s.known_hosts.is_none() {
            errors.push(format!("{at}: key `known_hosts` is required for transport = \"sftp\" (host keys are always checked)"));
        }
        if s.key.is_none() && s.password_env.is_none() {
            errors.push(format!("{at}: key `key` (a private key file) or `password_env` is required for transport = \"sftp\""));
        }
        if s.key.is_some() && s.password_env.is_some() {
            errors.push(format!(
                "{at}: keys `key` and `password_env` exclude each other"
            ));
        }
        if s.passphrase_env.is_some() && s.passphrase_file.is_some() {
            errors.push(format!(
                "{at}: keys `passphrase_env` and `passphrase_file` exclude each other"
            ));
        }
        let mut duration = |key: &str, v: &Option<String>, default: u64| -> Duration {
            match v {
                None => Duration::from_secs(default),
                Some(text) => parse_duration(text)
                    .filter(|d| !d.is_zero())
                    .unwrap_or_else(|| {
                        errors.push(format!(
                            "{at}: key `{key}`: expected a duration like 30s, found {text:?}"
                        ));
                        Duration::from_secs(default)
                    }),
            }
        };
        let connect_timeout = duration("connect_timeout", &s.connect_timeout, 15);
        let io_timeout = duration("io_timeout", &s.io_timeout, 60);
        let keepalive = duration("keepalive", &s.keepalive, 30);
        SftpSettings {
            host,
            port: s.port.unwrap_or(22),
            user,
            key: s.key.as_deref().map(abs),
            passphrase_env: s.passphrase_env.clone(),
            passphrase_file: s.passphrase_file.as_deref().map(abs),
            password_env: s.password_env.clone(),
            known_hosts: s.known_hosts.as_deref().map(abs).unwrap_or_default(),
            path: s.path.display().to_string(),
            connect_timeout,
            io_timeout,
            keepalive,
            attempts: s.attempts.unwrap_or(3).max(1),
            sessions: s.sessions.unwrap_or(1).clamp(1, 32),
            fsync: s.fsync.unwrap_or(true),
        }
    }
}

impl RawOrd {
    /// Validates one ORD's section (`at` names it in errors, `abs` resolves local paths); every
    /// mistake goes to `errors`.
    fn resolve(
        &self,
        at: &str,
        defaults: &OrdDefaults<'_>,
        abs: &dyn Fn(&Path) -> PathBuf,
        errors: &mut Vec<String>,
    ) -> OrdConfig {
        let o = self;
        for (key, value) in [
            ("ord_entity", &o.ord_entity),
            ("egme_entity", &o.egme_entity),
        ] {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push(format!(
                    "{at}: key `{key}`: expected a code without blanks, found {value:?}"
                ));
            }
        }
        let ord_send_at = match &o.send_at {
            Some(s) => {
                let t = parse_time_of_day(s);
                if t.is_none() {
                    errors.push(format!("{at}: key `send_at`: expected HH:MM, found {s:?}"));
                }
                t
            }
            None => defaults.send_at,
        };
        let send_deadline = match o.send_deadline.as_deref().or(defaults.send_deadline) {
            None => None,
            Some(text) => match parse_time_of_day(text) {
                None => {
                    errors.push(format!(
                        "{at}: key `send_deadline`: expected HH:MM, found {text:?}"
                    ));
                    None
                }
                Some(d) if ord_send_at.is_some_and(|s| d <= s) => {
                    errors.push(format!(
                        "{at}: key `send_deadline`: {text} is not after the send time: the send would never wait for its intake"
                    ));
                    None
                }
                Some(d) => Some(d),
            },
        };
        if o.window_days == 0 {
            errors.push(format!("{at}: key `window_days`: expected at least 1"));
        }
        if !(1..=6).contains(&o.dialect.value_decimals) {
            errors.push(format!(
                "{at}: key `dialect.value_decimals`: expected 1 to 6, found {}",
                o.dialect.value_decimals
            ));
        }
        if o.tolerance_kwh.is_sign_negative() {
            errors.push(format!("{at}: key `tolerance_kwh`: expected zero or more"));
        }
        // Continent files name the destination 0099/1; island files name the entities.
        let (inbound_default, outbound_default) = match o.region {
            Region::Continent => ("0099/1".to_string(), "0099/1".to_string()),
            _ => (o.egme_entity.clone(), o.ord_entity.clone()),
        };
        OrdConfig {
            name: o.name.clone(),
            region: o.region,
            ord_entity: o.ord_entity.clone(),
            egme_entity: o.egme_entity.clone(),
            inbound_destination: o.inbound_destination.clone().unwrap_or(inbound_default),
            outbound_destination: o.outbound_destination.clone().unwrap_or(outbound_default),
            receive: {
                let mut messages = Vec::new();
                let e = o
                    .receive
                    .resolve(&format!("{at}: receive"), abs, &mut messages);
                errors.extend(messages);
                e
            },
            send: {
                let mut messages = Vec::new();
                let e = o.send.resolve(&format!("{at}: send"), abs, &mut messages);
                errors.extend(messages);
                e
            },
            processed_folder: {
                if o.send.move_to().is_some() {
                    errors.push(format!(
                        "{at}: send: key `move_to` is only for the receive side"
                    ));
                }
                if let Some(f) = o.receive.move_to() {
                    if f.is_empty() || f.split('/').any(|part| part == "..") {
                        errors.push(format!("{at}: receive: key `move_to`: expected a folder without `..`, found {f:?}"));
                    }
                }
                o.receive.move_to().cloned()
            },
            send_picked_up_folder: {
                if o.receive.ord_moves_to().is_some() {
                    errors.push(format!(
                        "{at}: receive: key `ord_moves_to` is only for the send side"
                    ));
                }
                if let Some(f) = o.send.ord_moves_to() {
                    if f.is_empty() || f.split('/').any(|part| part == "..") {
                        errors.push(format!("{at}: send: key `ord_moves_to`: expected a folder without `..`, found {f:?}"));
                    }
                }
                o.send.ord_moves_to().cloned()
            },
            first_transmission_id: o.first_transmission_id,
            netting_policy: o.netting_policy,
            tolerance_kwh: o.tolerance_kwh,
            tariff_files: o.tariff_files,
            value_kind: o.value_kind,
            schedule: Schedule {
                tz: o.region.time_zone(),
                send_at: ord_send_at.unwrap_or(NaiveTime::MIN),
                window_days: o.window_days,
                send_deadline,
            },
            dialect: o.dialect.clone(),
        }
    }
}

/// What an ORD's section takes from the top of the config when it does not say.
struct OrdDefaults<'a> {
    send_at: Option<NaiveTime>,
    send_deadline: Option<&'a str>,
}

/// One ORD's settings, validated and with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdConfig {
    pub name: String,
    pub region: Region,
    /// The ORD's code in headers (origin of its files).
    pub ord_entity: String,
    /// Our code in headers (origin of our files).
    pub egme_entity: String,
    /// The destination the ORD writes in its headers.
    pub inbound_destination: String,
    /// The destination we write in our headers.
    pub outbound_destination: String,
    /// Where the ORD's files are picked up.
    pub receive: Endpoint,
    /// Where our files are put for the ORD.
    pub send: Endpoint,
    /// A folder (of the receive account) where files are moved once recorded; by default they stay.
    pub processed_folder: Option<String>,
    /// The folder of the send account the ORD moves our files into, if it does (a fence witness).
    pub send_picked_up_folder: Option<String>,
    pub first_transmission_id: u64,
    pub netting_policy: NettingPolicy,
    pub tolerance_kwh: Decimal,
    pub tariff_files: TariffFiles,
    pub value_kind: ValueKind,
    pub schedule: Schedule,
    pub dialect: Dialect,
}

impl OrdConfig {
    /// kWh of one unit of the last written digit (0.00025 for POTENCIA with 3 decimals).
    pub fn unit_kwh(&self) -> Decimal {
        let digit = Decimal::new(1, self.dialect.value_decimals);
        match self.value_kind {
            ValueKind::Power => digit / Decimal::from(4),
            ValueKind::Energy => digit,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: PathBuf,
    pub store: PathBuf,
    pub work_dir: PathBuf,
    pub poll_interval: Duration,
    pub min_file_age: Duration,
    /// The clock guard: a cycle more than this after the last one refuses to run.
    pub max_clock_step: Duration,
    /// After SIGTERM, how long the cycle in flight may take before `run` abandons it.
    pub stop_timeout: Duration,
    /// Where `run` serves Prometheus metrics, if anywhere.
    pub metrics_listen: Option<String>,
    /// Where `run` takes a backup (ledger and its files) after every daily send, if anywhere.
    pub backup_folder: Option<PathBuf>,
    pub mobility_inbox: PathBuf,
    pub registry: RegistryPaths,
    pub ords: Vec<OrdConfig>,
}

/// Where the registry files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPaths {
    pub cpes: PathBuf,
    pub evses: PathBuf,
    pub cemes: PathBuf,
    pub tariff_overrides: Option<PathBuf>,
    /// ORDs in the registry that other egme-ord instances serve: their records are skipped here.
    pub other_ords: Vec<String>,
}

/// `30s`, `5m`, `1h`, `2d` (or plain seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .ok()
        .or_else(|| NaiveTime::parse_from_str(text, "%H:%M:%S").ok())
}

impl Config {
    /// Parses `text` (read from `file`); relative paths are resolved against the file's folder.
    /// Every semantic mistake is reported; a syntax or unknown-key error stops at the first.
    pub fn parse(text: &str, file: &Path) -> Result<Config, Vec<ConfigError>> {
        let file_name = file.display().to_string();
        let err = |message: String| ConfigError {
            file: file_name.clone(),
            message,
        };
        let doc: toml::Value =
            toml::from_str(text).map_err(|e| vec![err(toml_message(&e, text))])?;
        let mut unknown: Vec<String> = Vec::new();
        let top: Result<RawConfig, toml::de::Error> =
            serde_ignored::deserialize(doc, |path| unknown.push(path.to_string()));
        let mut errors = Vec::new();
        let mut raw_ords: Vec<RawOrd> = Vec::new();
        let raw = match top {
            Ok(raw) => {
                for (i, value) in raw.ord.iter().enumerate() {
                    let name = value
                        .get("name")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("?")
                        .to_string();
                    match serde_ignored::deserialize::<_, _, RawOrd>(value.clone(), |path| {
                        unknown.push(format!("ord[{i}].{path}"))
                    }) {
                        Ok(o) => {
                            for (side, e) in [("receive", &o.receive), ("send", &o.send)] {
                                unknown.extend(
                                    e.unknown_keys().map(|k| format!("ord[{i}].{side}.{k}")),
                                );
                            }
                            raw_ords.push(o)
                        }
                        Err(e) => {
                            errors.push(err(format!("ord[{i}] ({name}): {}", e.message().trim())))
                        }
                    }
                }
                Some(raw)
            }
            Err(e) => {
                errors.push(err(e.message().trim().to_string()));
                None
            }
        };
        errors.extend(unknown.iter().map(|p| {
            let key = p.rsplit('.').next().unwrap_or(p);
            match key_line(text, key) {
                Some(line) => err(format!("line {line}: unknown key `{p}`")),
                None => err(format!("unknown key `{p}`")),
            }
        }));
        let Some(raw) = raw else {
            return Err(errors);
        };
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let send_at = parse_time_of_day(&raw.send_at);
        if send_at.is_none() {
            errors.push(err(format!(
                "key `send_at`: expected HH:MM, found {:?}",
                raw.send_at
            )));
        }
        let poll_interval = parse_duration(&raw.poll_interval).filter(|d| !d.is_zero());
        if poll_interval.is_none() {
            errors.push(err(format!(
                "key `poll_interval`: expected a duration like 30s, 5m, 1h, found {:?}",
                raw.poll_interval
            )));
        }
        let min_file_age = parse_duration(&raw.min_file_age);
        if min_file_age.is_none() {
            errors.push(err(format!(
                "key `min_file_age`: expected a duration like 30s, 5m, found {:?}",
                raw.min_file_age
            )));
        }
        let max_clock_step = parse_duration(&raw.max_clock_step).filter(|d| !d.is_zero());
        if max_clock_step.is_none() {
            errors.push(err(format!(
                "key `max_clock_step`: expected a duration like 12h, 2d, found {:?}",
                raw.max_clock_step
            )));
        }
        let stop_timeout = parse_duration(&raw.stop_timeout);
        if stop_timeout.is_none() {
            errors.push(err(format!(
                "key `stop_timeout`: expected a duration like 30s, found {:?}",
                raw.stop_timeout
            )));
        }
        if raw.ord.is_empty() {
            errors.push(err("no [[ord]] section: expected at least one ORD".into()));
        }
        let mut ords = Vec::new();
        for (i, o) in raw_ords.iter().enumerate() {
            let at = format!("ord[{i}] ({})", o.name);
            if o.name.is_empty()
                || !o
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                errors.push(err(format!(
                    "{at}: key `name`: expected letters, digits, - or _, found {:?}",
                    o.name
                )));
            }
            if raw_ords.iter().filter(|x| x.name == o.name).count() > 1 {
                errors.push(err(format!(
                    "{at}: key `name`: {:?} is used by more than one ORD",
                    o.name
                )));
            }
            let mut messages = Vec::new();
            let defaults = OrdDefaults {
                send_at,
                send_deadline: raw.send_deadline.as_deref(),
            };
            let resolved = o.resolve(&at, &defaults, &abs, &mut messages);
            errors.extend(messages.into_iter().map(&err));
            ords.push(resolved);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            file: file.to_path_buf(),
            store: abs(&raw.store),
            work_dir: abs(&raw.work_dir),
            poll_interval: poll_interval.unwrap_or(Duration::from_secs(300)),
            min_file_age: min_file_age.unwrap_or_default(),
            max_clock_step: max_clock_step.unwrap_or(Duration::from_secs(2 * 86_400)),
            stop_timeout: stop_timeout.unwrap_or(Duration::from_secs(30)),
            metrics_listen: raw.metrics_listen.clone(),
            backup_folder: raw.backup.as_ref().map(|b| abs(&b.folder)),
            mobility_inbox: abs(&raw.mobility.inbox),
            registry: RegistryPaths {
                cpes: abs(&raw.registry.cpes),
                evses: abs(&raw.registry.evses),
                cemes: abs(&raw.registry.cemes),
                tariff_overrides: raw.registry.tariff_overrides.as_deref().map(abs),
                other_ords: raw.registry.other_ords.clone(),
            },
            ords,
        })
    }

    /// The configured ORDs' names, comma-separated (for messages).
    pub fn ord_names(&self) -> String {
        self.ords
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn ord(&self, name: &str) -> Option<&OrdConfig> {
        self.ords.iter().find(|o| o.name == name)
    }
}

/// The first line where `key` is assigned (`key =` at the start of a line or inside an inline table).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let code = l.split('#').next().unwrap_or("");
            code.match_indices(key).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + key.len()..].trim_start();
                before.is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '\t')
                    && after.starts_with('=')
            })
        })
        .map(|i| i + 1)
}

/// A TOML error as `line L, column C: message`.
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
store = "state/egme.sqlite"
work_dir = "work"
send_at = "20:00"
[mobility]
inbox = "mobility"
[registry]
cpes = "registry/cpes.csv"
evses = "registry/evses.csv"
cemes = "registry/cemes.csv"
[[ord]]
name = "e-redes"
region = "continent"
ord_entity = "EDIS"
receive = { transport = "local", path = "exchange/e-redes/out" }
send = { transport = "local", path = "exchange/e-redes/in" }
"#;

    #[test]
    fn a_good_config_resolves_paths_and_defaults() {
        let c = Config::parse(GOOD, Path::new("/etc/egme/egme.toml")).unwrap();
        assert_eq!(c.store, PathBuf::from("/etc/egme/state/egme.sqlite"));
        let o = &c.ords[0];
        assert_eq!(o.inbound_destination, "0099/1");
        assert_eq!(o.egme_entity, "MOBI");
        assert_eq!(o.unit_kwh(), Decimal::new(25, 5));
        assert_eq!(o.schedule.window_days, 30);
        assert_eq!(c.poll_interval, Duration::from_secs(300));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_file_key_and_line() {
        let text = GOOD.replace("send_at = \"20:00\"", "send_at = \"20:00\"\nsend_att = 1");
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown = errs[0].to_string();
        assert!(
            shown.starts_with("egme.toml: line 5: unknown key `send_att`"),
            "{shown}"
        );
        assert!(shown.contains("send_att"), "{shown}");
    }

    #[test]
    fn several_semantic_mistakes_are_reported_together() {
        let text = GOOD
            .replace(
                "send_at = \"20:00\"",
                "send_at = \"25:00\"\npoll_interval = \"often\"",
            )
            .replace("name = \"e-redes\"", "name = \"e redes\"");
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn every_mistake_of_a_config_with_several_is_reported_in_one_run() {
        // A misspelt key in the first ORD's endpoint, an unknown transport in the second, an
        // unknown region in the third, a misspelt top-level key. (A value error in an ORD still
        // hides that ORD's unknown keys: they are reported once its values parse.)
        let good = GOOD.replace(
            "path = \"exchange/e-redes/in\" }",
            "path = \"exchange/e-redes/in\", hots = \"x\" }",
        );
        assert_ne!(good, GOOD, "the misspelt key must land in the config");
        let text = good.replace("store = ", "stor = \"x\"\nstore = ")
            + "[[ord]]\nname = \"eda\"\nregion = \"azores\"\nord_entity = \"EDA\"\nreceive = { transport = \"ftp\", path = \"a\" }\nsend = { transport = \"sftp\", path = \"b\" }\n"
            + "[[ord]]\nname = \"eem\"\nregion = \"mars\"\nord_entity = \"EEM\"\nreceive = { transport = \"local\", path = \"a\" }\nsend = { transport = \"local\", path = \"b\" }\n";
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let has = |needle: &str| shown.iter().any(|e| e.contains(needle));
        assert!(has("unknown key `stor`"), "{shown:#?}");
        assert!(has("ord[2] (eem)") && has("mars"), "{shown:#?}");
        assert!(has("ord[1] (eda)") && has("ftp"), "{shown:#?}");
        // The misspelt key of the first ORD's endpoint, with its line and where it is.
        assert!(has("line 17: unknown key `ord[0].send.hots`"), "{shown:#?}");
        assert_eq!(shown.len(), 4, "{shown:#?}");
    }

    #[test]
    fn sftp_endpoints_need_host_user_known_hosts_and_a_credential() {
        let text = GOOD.replace(
            "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
            "send = { transport = \"sftp\", path = \"/in\", key = \"k\", password_env = \"P\" }",
        );
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        for needle in [
            "`host` is required",
            "`user` is required",
            "`known_hosts` is required",
            "exclude each other",
        ] {
            assert!(
                shown.iter().any(|e| e.contains(needle)),
                "{needle}: {shown:#?}"
            );
        }
    }

    #[test]
    fn a_local_endpoint_names_keys_of_sftp_as_such_and_other_keys_as_unknown() {
        // The keys each transport takes are its struct's fields: `host` belongs to SFTP, `hots`
        // to no transport, `move_to` to both.
        let text = GOOD.replace(
            "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
            "send = { transport = \"local\", path = \"exchange/e-redes/in\", host = \"h\", sessions = 2, hots = \"x\" }",
        );
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let has = |needle: &str| shown.iter().any(|e| e.contains(needle));
        assert!(
            has("send: key `host` is only for transport = \"sftp\""),
            "{shown:#?}"
        );
        assert!(
            has("send: key `sessions` is only for transport = \"sftp\""),
            "{shown:#?}"
        );
        assert!(has("unknown key `ord[0].send.hots`"), "{shown:#?}");
        assert_eq!(shown.len(), 3, "{shown:#?}");
        // An endpoint without `transport` says so.
        let text = GOOD.replace(
            "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
            "send = { path = \"exchange/e-redes/in\" }",
        );
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        assert!(errs[0].to_string().contains("transport"), "{errs:?}");
    }

    #[test]
    fn the_server_fsync_is_on_unless_turned_off_and_only_for_sftp() {
        let sftp = |extra: &str| {
            GOOD.replace(
                "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
                &format!("send = {{ transport = \"sftp\", path = \"/in\", host = \"h\", user = \"u\", key = \"k\", known_hosts = \"kh\"{extra} }}"),
            )
        };
        let fsync_of =
            |text: &str| match &Config::parse(text, Path::new("egme.toml")).unwrap().ords[0].send {
                Endpoint::Sftp(s) => s.fsync,
                Endpoint::Local { .. } => panic!("not sftp"),
            };
        assert!(fsync_of(&sftp("")));
        assert!(!fsync_of(&sftp(", fsync = false")));
        let local = GOOD.replace(
            "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
            "send = { transport = \"local\", path = \"exchange/e-redes/in\", fsync = false }",
        );
        let errs = Config::parse(&local, Path::new("egme.toml")).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.to_string().contains("`fsync` is only for")),
            "{errs:?}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("5 minutes"), None);
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_shipped_per_ord_configs_are_valid_and_use_sftp() {
        for (text, name) in [
            (include_str!("../../config/e-redes.toml"), "e-redes"),
            (include_str!("../../config/eda.toml"), "eda"),
            (include_str!("../../config/eem.toml"), "eem"),
        ] {
            let c = Config::parse(text, Path::new("/etc/egme-ord/x.toml"))
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(c.ords.len(), 1);
            assert_eq!(c.ords[0].name, name);
            assert_eq!(c.registry.other_ords.len(), 2);
            assert!(
                matches!(c.ords[0].receive, Endpoint::Sftp(_))
                    && matches!(c.ords[0].send, Endpoint::Sftp(_))
            );
        }
    }

    #[test]
    fn a_backup_folder_and_the_folder_the_ord_moves_our_files_into_are_read() {
        let text = include_str!("../../config/example.toml")
            .replace("# send_deadline = \"23:00\"", "send_deadline = \"23:00\"")
            .replace("# max_clock_step = \"2d\"", "max_clock_step = \"3d\"")
            .replace("# stop_timeout = \"30s\"", "stop_timeout = \"20s\"")
            .replace("# [backup]", "[backup]")
            .replace("# folder = \"/mnt/standby/egme-ord\"", "folder = \"standby\"")
            .replacen(
                "send = { transport = \"local\", path = \"/srv/exchange/e-redes/inbox\" }",
                "send = { transport = \"local\", path = \"/srv/exchange/e-redes/inbox\", ord_moves_to = \"taken\" }",
                1,
            );
        let c = Config::parse(&text, Path::new("/etc/egme-ord/egme-ord.toml")).unwrap();
        assert_eq!(
            c.backup_folder,
            Some(PathBuf::from("/etc/egme-ord/standby"))
        );
        assert_eq!(c.max_clock_step, Duration::from_secs(3 * 86_400));
        assert_eq!(c.stop_timeout, Duration::from_secs(20));
        assert_eq!(
            c.ords[0].schedule.send_deadline,
            NaiveTime::from_hms_opt(23, 0, 0)
        );
        assert_eq!(c.ords[0].send_picked_up_folder.as_deref(), Some("taken"));
        assert_eq!(
            c.ords[0].send.subfolder("taken"),
            Endpoint::Local {
                path: PathBuf::from("/srv/exchange/e-redes/inbox/taken")
            }
        );
        let wrong = text.replacen(
            "path = \"/srv/exchange/e-redes/outbox\" }",
            "path = \"/srv/exchange/e-redes/outbox\", ord_moves_to = \"x\" }",
            1,
        );
        let errors = Config::parse(&wrong, Path::new("/etc/egme-ord/egme-ord.toml")).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("only for the send side")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let text = include_str!("../../config/example.toml");
        let c = Config::parse(text, Path::new("/etc/egme-ord/egme-ord.toml")).unwrap();
        assert_eq!(c.ords.len(), 3);
        assert_eq!(c.ords[1].outbound_destination, "EDA");
        assert_eq!(
            c.registry.cpes,
            PathBuf::from("/etc/egme-ord/registry/cpes.csv")
        );
    }
}
