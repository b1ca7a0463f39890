//! Configuration: global settings and one section per ORD, from TOML; every mistake named with its file, line, column and key path.

pub mod layout;
mod raw;
mod read;

use crate::remote::TempName;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::completeness::ExpectBy;
use crate::netting::{NettingPolicy, TariffFiles};
use crate::ord_name::OrdName;
use crate::planner::Schedule;
use crate::region::Region;
use crate::retention::Retention;
use crate::sgl::{Dialect, ValueKind};
use raw::{duration, listen_address, OrdDefaults, RawConfig, RawOrd};
use read::{read_section, KeyPath, Mistake, Mistakes, Places};

/// A configuration mistake: the file, where in it (line and column, 1-based, and the key path
/// such as `ord[1].region`) when it is about a key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[error("{}", self.shown())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    fn shown(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", self.file, self.message),
            _ => format!("{}: {}", self.file, self.message),
        }
    }

    /// A mistake of the file that is not about one key (it cannot be read, say).
    pub fn general(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    fn of(file: &str, places: &Places<'_>, m: Mistake) -> ConfigError {
        let Some(key) = m.key else {
            return ConfigError::general(file, m.message);
        };
        let place = if m.unknown {
            places.of_key(&key)
        } else {
            places.of(&key)
        };
        let ord = m.ord.map(|n| format!(" ({n})")).unwrap_or_default();
        let message = if m.unknown {
            format!("unknown key `{key}`{ord}")
        } else if m.message.starts_with(['(', ' '])
            || m.message.starts_with("is ")
            || m.message.starts_with("and ")
        {
            format!("key `{key}`{ord} {}", m.message.trim_start())
        } else {
            format!("key `{key}`{ord}: {}", m.message)
        };
        ConfigError {
            file: file.to_string(),
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
            key: Some(key.to_string()),
            message,
        }
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
    /// An FTP account over explicit TLS (`AUTH TLS`, passive mode), the certificate verified.
    Ftps,
    /// Plain FTP (credentials and data in clear): only with `allow_plaintext = true`.
    Ftp,
}

/// Where and how to reach one FTP(S) folder. Secrets are never stored here: only where to find
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FtpSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (its first line).
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) the server's certificate must chain to; `None`: the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// The server certificate's SHA-256 (of its DER bytes, hex, `:` allowed): when set, only that
    /// certificate is accepted (a self-signed server).
    pub certificate_sha256: Option<String>,
    /// The remote folder.
    pub path: String,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// Connection attempts per operation (1 = no retry).
    pub attempts: u32,
    /// TLS on the control and data connections; `false` only for `transport = "ftp"` with
    /// `allow_plaintext = true`.
    pub tls: bool,
}

impl FtpSettings {
    /// `ftps://user@host:port/path` (or `ftp://`), never a secret.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "ftps" } else { "ftp" };
        format!(
            "{scheme}://{}@{}:{}{}",
            self.user, self.host, self.port, self.path
        )
    }
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
    /// Uploads: the name each file is written under before its rename.
    pub temp_name: TempName,
}

/// One folder of an exchange account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Local { path: PathBuf },
    Sftp(Box<SftpSettings>),
    Ftp(Box<FtpSettings>),
}

impl Endpoint {
    /// How a file put here is named while it is written: `temp_name` for SFTP, the hidden
    /// default elsewhere.
    pub fn temp_name(&self) -> TempName {
        match self {
            Endpoint::Sftp(s) => s.temp_name.clone(),
            Endpoint::Local { .. } | Endpoint::Ftp(_) => TempName::default(),
        }
    }

    /// The same account's folder `folder`: relative to this endpoint's folder, or absolute.
    pub fn subfolder(&self, folder: &str) -> Endpoint {
        match self {
            Endpoint::Local { path } => Endpoint::Local {
                path: path.join(folder),
            },
            Endpoint::Sftp(settings) => {
                let mut s = (**settings).clone();
                s.path = remote_subfolder(&s.path, folder);
                Endpoint::Sftp(Box::new(s))
            }
            Endpoint::Ftp(settings) => {
                let mut s = (**settings).clone();
                s.path = remote_subfolder(&s.path, folder);
                Endpoint::Ftp(Box::new(s))
            }
        }
    }
}

/// A remote account's folder `folder`: relative to `base`, or absolute.
pub fn remote_subfolder(base: &str, folder: &str) -> String {
    if folder.starts_with('/') {
        folder.to_string()
    } else {
        format!("{}/{folder}", base.trim_end_matches('/'))
    }
}

/// One ORD's settings, validated and with absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdConfig {
    pub name: OrdName,
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
    /// Every send warns once fewer ids than this are left before [`crate::filename::MAX_TRANSMISSION_ID`].
    pub ids_left_warning: u64,
    pub netting_policy: NettingPolicy,
    pub tolerance_kwh: Decimal,
    pub tariff_files: TariffFiles,
    pub value_kind: ValueKind,
    pub schedule: Schedule,
    /// When the ORD's files of a day are due; after it a CPE without one is `ord-file-missing`.
    pub expect_by: ExpectBy,
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
    pub metrics_listen: Option<SocketAddr>,
    /// Where `run` takes a backup (ledger and its files) after every daily send, if anywhere.
    pub backup_folder: Option<PathBuf>,
    pub mobility_inbox: PathBuf,
    pub registry: RegistryPaths,
    pub reports: ReportSettings,
    /// How long kept data stays (`[retention]`; applied by `run` once a day and by `prune`).
    pub retention: Retention,
    pub ords: Vec<OrdConfig>,
}

/// Who may read the reports and how periods are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// The group the reports are readable by (files 0640, folders 0750); none: the service's own.
    pub group: Option<String>,
    /// Time-of-use tables; empty: the ERSE mainland tables shipped with egme-ord.
    pub tou_tables: Vec<PathBuf>,
    /// The daily send rewrites `work/reports/<ord>/<day>/` for each day it changed (reading every
    /// file of that day back). False by default: at national scale a day folder is ~16 KB per
    /// CPE-day, rewritten for every open day a correction touches; `egme-ord report` writes one on
    /// demand.
    pub day_folders: bool,
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
    /// The work folder, by what each of its folders holds.
    pub fn work(&self) -> crate::work_dir::WorkDir<'_> {
        crate::work_dir::WorkDir::new(&self.work_dir)
    }

    /// Parses `text` (read from `file`); relative paths are resolved against the file's folder.
    /// Every mistake of every section is reported, each with its line, column and key path.
    pub fn parse(text: &str, file: &Path) -> Result<Config, Vec<ConfigError>> {
        let file_name = file.display().to_string();
        let doc: toml::Value = toml::from_str(text)
            .map_err(|e| vec![ConfigError::general(&file_name, toml_message(&e, text))])?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut m = Mistakes::default();
        let config = Config::read(doc, file, &abs, &mut m);
        if let Some(c) = config.as_ref().filter(|_| m.list.is_empty()) {
            for collision in layout::collisions(c, &layout::normalise) {
                m.at(collision.key, collision.message);
            }
        }
        if m.list.is_empty() {
            if let Some(config) = config {
                return Ok(config);
            }
        }
        let places = Places::new(text);
        let mut errors: Vec<ConfigError> = m
            .list
            .into_iter()
            .map(|mistake| ConfigError::of(&file_name, &places, mistake))
            .collect();
        if errors.is_empty() {
            errors.push(ConfigError::general(
                &file_name,
                "the configuration is incomplete",
            ));
        }
        Ok(()).and(Err(errors))
    }

    /// Reads the whole document; `None` when something required is missing or wrong.
    fn read(doc: toml::Value, file: &Path, abs: raw::Abs<'_>, m: &mut Mistakes) -> Option<Config> {
        let root = KeyPath::root();
        let (raw, unknown) = read_section::<RawConfig>(doc, &root, m);
        for key in unknown {
            m.unknown(key);
        }
        let raw = raw.unwrap_or_default();
        let ords = Config::read_ords(&raw, abs, m);
        let key = |k: &str| root.key(k);
        let timings = Timings::read(&raw, m);
        let store = m.required(
            root.key("store"),
            raw.store,
            ": the ledger's file (e.g. \"state/egme-ord.sqlite\")",
        );
        let work_dir = m.required(
            root.key("work_dir"),
            raw.work_dir,
            ": the folder for the outbox, archive, quarantine and reports",
        );
        let metrics_listen = raw
            .metrics_listen
            .as_deref()
            .map(|text| listen_address(m, key("metrics_listen"), text));
        let mobility = m.required(
            key("mobility"),
            raw.mobility,
            ": a [mobility] section with `inbox`",
        );
        let inbox = mobility.and_then(|s| {
            m.required(
                key("mobility").key("inbox"),
                s.inbox,
                ": the folder CDR and readings files arrive in",
            )
        });
        let registry = m.required(
            key("registry"),
            raw.registry,
            ": a [registry] section with `cpes`, `evses` and `cemes`",
        );
        let registry = registry.and_then(|r| r.resolve(abs, m));
        let backup_folder = raw.backup.map(|b| {
            m.required(
                key("backup").key("folder"),
                b.folder,
                ": a folder on another disk",
            )
        });
        Some(Config {
            file: file.to_path_buf(),
            store: abs(&store?),
            work_dir: abs(&work_dir?),
            poll_interval: timings.poll_interval,
            min_file_age: timings.min_file_age,
            max_clock_step: timings.max_clock_step,
            stop_timeout: timings.stop_timeout,
            metrics_listen: metrics_listen.map_or(Some(None), |a| a.map(Some))?,
            backup_folder: backup_folder.map_or(Some(None), |f| f.map(|f| Some(abs(&f))))?,
            mobility_inbox: abs(&inbox?),
            registry: registry?,
            reports: ReportSettings {
                group: raw
                    .reports
                    .as_ref()
                    .and_then(|r| r.group.clone())
                    .filter(|g| !g.is_empty()),
                tou_tables: raw
                    .reports
                    .as_ref()
                    .and_then(|r| r.tou_tables.as_ref())
                    .map(|t| t.iter().map(|p| abs(p)).collect())
                    .unwrap_or_default(),
                day_folders: raw
                    .reports
                    .as_ref()
                    .and_then(|r| r.day_folders)
                    .unwrap_or(false),
            },
            retention: raw.retention.clone().unwrap_or_default().read(m),
            ords: ords?,
        })
    }

    /// Every `[[ord]]` section, each read and validated on its own (a mistake in one does not
    /// hide the others'; each is named by its own index).
    fn read_ords(raw: &RawConfig, abs: raw::Abs<'_>, m: &mut Mistakes) -> Option<Vec<OrdConfig>> {
        let root = KeyPath::root();
        let sections = raw.ord.clone().unwrap_or_default();
        if sections.is_empty() && !m.reported(&root.key("ord")) {
            m.general("no [[ord]] section: expected at least one ORD");
        }
        let send_at = match raw.send_at.as_deref() {
            None => parse_time_of_day("20:00"),
            Some(text) => {
                let t = parse_time_of_day(text);
                if t.is_none() {
                    m.at(
                        root.key("send_at"),
                        format!("expected HH:MM, found {text:?}"),
                    );
                }
                t
            }
        };
        let defaults = OrdDefaults {
            send_at,
            send_deadline: raw.send_deadline.as_deref(),
        };
        let mut ords = Vec::new();
        let mut complete = true;
        for (i, value) in sections.into_iter().enumerate() {
            let at = root.key("ord").index(i);
            m.ord = value
                .get("name")
                .and_then(toml::Value::as_str)
                .map(str::to_string);
            let (section, unknown) = read_section::<RawOrd>(value, &at, m);
            for key in unknown {
                m.unknown(at.join(&key));
            }
            match section.and_then(|o| o.resolve(&at, &defaults, abs, m)) {
                Some(o) => ords.push((at, o)),
                None => complete = false,
            }
            m.ord = None;
        }
        for (at, o) in &ords {
            if ords.iter().filter(|(_, x)| x.name == o.name).count() > 1 {
                m.ord = Some(o.name.to_string());
                m.at(
                    at.key("name"),
                    format!("{:?} is used by more than one ORD", o.name),
                );
                m.ord = None;
            }
        }
        complete.then(|| ords.into_iter().map(|(_, o)| o).collect())
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

/// The durations of the top of the file, each with its default.
struct Timings {
    poll_interval: Duration,
    min_file_age: Duration,
    max_clock_step: Duration,
    stop_timeout: Duration,
}

impl Timings {
    fn read(raw: &RawConfig, m: &mut Mistakes) -> Timings {
        let secs = Duration::from_secs;
        let mut get = |k: &str, text: &Option<String>, default: u64, zero_ok: bool| {
            duration(
                m,
                KeyPath::root().key(k),
                text.as_deref(),
                secs(default),
                zero_ok,
            )
        };
        Timings {
            poll_interval: get("poll_interval", &raw.poll_interval, 300, false),
            min_file_age: get("min_file_age", &raw.min_file_age, 30, true),
            max_clock_step: get("max_clock_step", &raw.max_clock_step, 2 * 86_400, false),
            stop_timeout: get("stop_timeout", &raw.stop_timeout, 30, true),
        }
    }
}

/// A TOML syntax error as `line L, column C: message`.
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
        assert!(
            !c.reports.day_folders,
            "day folders are written on demand unless asked for (16 KB per CPE-day at scale)"
        );
        let c = Config::parse(
            &format!("{GOOD}[reports]\nday_folders = true\n"),
            Path::new("/etc/egme/egme.toml"),
        )
        .unwrap();
        assert!(c.reports.day_folders);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_file_key_and_line() {
        let text = GOOD.replace("send_at = \"20:00\"", "send_at = \"20:00\"\nsend_att = 1");
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown = errs[0].to_string();
        assert_eq!(shown, "egme.toml:5:1: unknown key `send_att`");
        assert_eq!((errs[0].line, errs[0].column), (Some(5), Some(1)));
        assert_eq!(errs[0].key.as_deref(), Some("send_att"));
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
        // A misspelt key in the first ORD's endpoint, an unknown transport in the second (whose
        // SFTP send also lacks its keys), an unknown region in the third, a misspelt top-level key.
        let good = GOOD.replace(
            "path = \"exchange/e-redes/in\" }",
            "path = \"exchange/e-redes/in\", hots = \"x\" }",
        );
        assert_ne!(good, GOOD, "the misspelt key must land in the config");
        let text = good.replace("store = ", "stor = \"x\"\nstore = ")
            + "[[ord]]\nname = \"eda\"\nregion = \"azores\"\nord_entity = \"EDA\"\nreceive = { transport = \"ftpx\", path = \"a\" }\nsend = { transport = \"sftp\", path = \"b\" }\n"
            + "[[ord]]\nname = \"eem\"\nregion = \"mars\"\nord_entity = \"EEM\"\nreceive = { transport = \"local\", path = \"a\" }\nsend = { transport = \"local\", path = \"b\" }\n";
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let has = |needle: &str| shown.iter().any(|e| e.contains(needle));
        assert!(has("unknown key `stor`"), "{shown:#?}");
        assert!(
            has("key `ord[2].region` (eem): unknown variant `mars`"),
            "{shown:#?}"
        );
        assert!(has("key `ord[1].receive.transport` (eda): expected \"local\", \"sftp\", \"ftps\" or \"ftp\", found \"ftpx\""), "{shown:#?}");
        assert!(
            has("key `ord[1].send.host` (eda) is required"),
            "{shown:#?}"
        );
        // The misspelt key of the first ORD's endpoint, with its line, column and where it is.
        assert!(
            has("egme.toml:17:61: unknown key `ord[0].send.hots` (e-redes)"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 8, "{shown:#?}");
    }

    #[test]
    fn a_first_transmission_id_past_ten_digits_is_refused() {
        let ord = |first: &str| {
            format!("[[ord]]\nname = \"one\"\nregion = \"azores\"\nord_entity = \"X\"\nreceive = {{ transport = \"local\", path = \"a\" }}\nsend = {{ transport = \"local\", path = \"b\" }}\nfirst_transmission_id = {first}\n")
        };
        let head = GOOD.split("[[ord]]").next().unwrap().to_string();
        for bad in ["10000000000", "0"] {
            let errs =
                Config::parse(&(head.clone() + &ord(bad)), Path::new("egme.toml")).unwrap_err();
            let e = errs
                .iter()
                .find(|e| e.key.as_deref() == Some("ord[0].first_transmission_id"))
                .unwrap_or_else(|| panic!("{bad}: {errs:?}"));
            assert!(e.message.contains("expected 1 to 9999999999"), "{e:?}");
        }
        let c = Config::parse(&(head + &ord("9999999990")), Path::new("egme.toml")).unwrap();
        assert_eq!(c.ords[0].first_transmission_id, 9_999_999_990);
        assert_eq!(c.ords[0].ids_left_warning, 100_000_000);
    }

    #[test]
    fn an_ord_named_as_the_mobility_inbox_or_not_as_a_path_component_is_refused() {
        let ord = |name: &str| {
            format!("[[ord]]\nname = \"{name}\"\nregion = \"azores\"\nord_entity = \"X\"\nreceive = {{ transport = \"local\", path = \"a\" }}\nsend = {{ transport = \"local\", path = \"b\" }}\n")
        };
        let head = GOOD.split("[[ord]]").next().unwrap().to_string();
        for (bad, says) in [
            ("mobility", "the mobility inbox's folder"),
            ("../eda", "expected letters, digits, - or _"),
            ("e redes", "expected letters, digits, - or _"),
        ] {
            let errs =
                Config::parse(&(head.clone() + &ord(bad)), Path::new("egme.toml")).unwrap_err();
            let e = errs
                .iter()
                .find(|e| e.key.as_deref() == Some("ord[0].name"))
                .unwrap_or_else(|| panic!("{bad}: {errs:?}"));
            assert!(e.message.contains(says), "{e:?}");
        }
        let c = Config::parse(&(head + &ord("mobility-2")), Path::new("egme.toml")).unwrap();
        assert_eq!(c.ords[0].name, "mobility-2");
    }

    #[test]
    fn mistakes_in_three_ord_sections_are_all_reported_with_line_column_and_key_path() {
        // A bad enum value and an unknown key in the first, a wrong type in the second, a missing
        // key in the third; each named by its own index, whatever failed before it.
        let ord = |name: &str, extra: &str| {
            format!("[[ord]]\nname = \"{name}\"\nregion = \"azores\"\nord_entity = \"X\"\nreceive = {{ transport = \"local\", path = \"a\" }}\nsend = {{ transport = \"local\", path = \"b\" }}\n{extra}")
        };
        let head = GOOD.split("[[ord]]").next().unwrap().to_string();
        let text = head
            + &ord("one", "netting_policy = \"clip\"\nwindow_dayz = 3\n")
            + &ord("two", "window_days = \"ten\"\n")
            + &ord("three", "").replace("ord_entity = \"X\"\n", "");
        let errs = Config::parse(&text, Path::new("egme.toml")).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let find = |key: &str| {
            errs.iter()
                .find(|e| e.key.as_deref() == Some(key))
                .unwrap_or_else(|| panic!("{key}: {shown:#?}"))
        };
        let policy = find("ord[0].netting_policy");
        assert!(
            policy.message.contains("unknown variant `clip`"),
            "{policy:?}"
        );
        assert!(policy.message.contains("(one)"), "{policy:?}");
        let unknown = find("ord[0].window_dayz");
        assert!(unknown.message.contains("unknown key"), "{unknown:?}");
        let wrong = find("ord[1].window_days");
        assert!(
            wrong.message.contains("invalid type: string \"ten\""),
            "{wrong:?}"
        );
        assert!(wrong.message.contains("(two)"), "{wrong:?}");
        let missing = find("ord[2].ord_entity");
        assert!(missing.message.contains("is required"), "{missing:?}");
        // Each with its line (and the value's column) in the file.
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        assert_eq!(policy.line, Some(line_of("\"clip\"")), "{policy:?}");
        assert_eq!(policy.column, Some(18), "{policy:?}");
        assert_eq!(unknown.line, Some(line_of("window_dayz")), "{unknown:?}");
        assert_eq!(wrong.line, Some(line_of("\"ten\"")), "{wrong:?}");
        assert_eq!(
            missing.line,
            Some(line_of("name = \"three\"") - 1),
            "{missing:?}"
        );
        assert_eq!(errs.len(), 4, "{shown:#?}");
    }

    #[test]
    fn metrics_listen_takes_an_address_or_a_port_after_a_colon_and_refuses_a_bare_port() {
        let with = |value: &str| {
            GOOD.replace(
                "send_at = \"20:00\"",
                &format!("send_at = \"20:00\"\nmetrics_listen = \"{value}\""),
            )
        };
        let addr = |value: &str| {
            Config::parse(&with(value), Path::new("egme.toml")).map(|c| c.metrics_listen)
        };
        assert_eq!(
            addr("127.0.0.1:9464").unwrap().unwrap().to_string(),
            "127.0.0.1:9464"
        );
        // Prometheus' own habit: `:9464` listens on every address.
        assert_eq!(addr(":9464").unwrap().unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(
            addr("localhost:9464").unwrap().unwrap().to_string(),
            "127.0.0.1:9464"
        );
        let errs = addr("9465").unwrap_err();
        assert!(errs[0].message.contains("key `metrics_listen`"), "{errs:?}");
        assert!(
            errs[0].message.contains("\":9465\" (every address)"),
            "{errs:?}"
        );
        assert!(addr("somewhere").is_err());
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
            "`ord[0].send.host` (e-redes) is required",
            "`ord[0].send.user` (e-redes) is required",
            "`ord[0].send.known_hosts` (e-redes) is required",
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
            has("key `ord[0].send.host` (e-redes) is only for transport = \"sftp\""),
            "{shown:#?}"
        );
        assert!(
            has("key `ord[0].send.sessions` (e-redes) is only for transport = \"sftp\""),
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
    fn ftps_endpoints_are_read_and_plain_ftp_needs_allow_plaintext() {
        let with = |send: &str| {
            GOOD.replace(
                "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
                &format!("send = {send}"),
            )
        };
        let messages = |text: &str| -> Vec<String> {
            Config::parse(text, Path::new("egme.toml"))
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let c = Config::parse(
            &with("{ transport = \"ftps\", host = \"ftp.eda.pt\", user = \"mobie\", password_file = \"secrets/eda\", ca_file = \"eda-ca.pem\", path = \"/in\" }"),
            Path::new("/etc/egme-ord/eda.toml"),
        )
        .unwrap();
        let Endpoint::Ftp(s) = &c.ords[0].send else {
            panic!("not ftp: {:?}", c.ords[0].send)
        };
        assert!(s.tls);
        assert_eq!(s.port, 21);
        assert_eq!(
            s.ca_file.as_deref(),
            Some(Path::new("/etc/egme-ord/eda-ca.pem"))
        );
        assert_eq!(s.url(), "ftps://mobie@ftp.eda.pt:21/in");
        // A password is required; plain FTP without allow_plaintext is refused; keys of SFTP
        // are named as such.
        let shown = messages(&with("{ transport = \"ftps\", host = \"h\", user = \"u\", path = \"/in\", known_hosts = \"kh\" }"));
        assert!(
            shown
                .iter()
                .any(|m| m.contains("password_env") && m.contains("is required")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|m| m.contains("known_hosts") && m.contains("only for transport = \"sftp\"")),
            "{shown:#?}"
        );
        let shown = messages(&with("{ transport = \"ftp\", host = \"h\", user = \"u\", password_env = \"P\", path = \"/in\" }"));
        assert!(
            shown
                .iter()
                .any(|m| m.contains("in clear") && m.contains("allow_plaintext = true")),
            "{shown:#?}"
        );
        let c = Config::parse(
            &with("{ transport = \"ftp\", host = \"h\", user = \"u\", password_env = \"P\", path = \"/in\", allow_plaintext = true }"),
            Path::new("egme.toml"),
        )
        .unwrap();
        assert!(matches!(&c.ords[0].send, Endpoint::Ftp(s) if !s.tls));
        let shown = messages(&with("{ transport = \"ftps\", host = \"h\", user = \"u\", password_env = \"P\", path = \"/in\", certificate_sha256 = \"ab:cd\" }"));
        assert!(
            shown.iter().any(|m| m.contains("64 hex digits")),
            "{shown:#?}"
        );
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
                _ => panic!("not sftp"),
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
                .any(|e| e.to_string().contains(".fsync` (e-redes) is only for")),
            "{errs:?}"
        );
    }

    #[test]
    fn the_temporary_name_is_hidden_unless_set_checked_and_only_for_sftp() {
        let sftp = |extra: &str| {
            GOOD.replace(
                "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
                &format!("send = {{ transport = \"sftp\", path = \"/in\", host = \"h\", user = \"u\", key = \"k\", known_hosts = \"kh\"{extra} }}"),
            )
        };
        let temp_of =
            |text: &str| match &Config::parse(text, Path::new("egme.toml")).unwrap().ords[0].send {
                Endpoint::Sftp(s) => s.temp_name.to_string(),
                _ => panic!("not sftp"),
            };
        assert_eq!(temp_of(&sftp("")), crate::remote::DEFAULT_TEMP_NAME);
        assert_eq!(
            temp_of(&sftp(", temp_name = \"{name}.part\"")),
            "{name}.part"
        );
        let errs =
            Config::parse(&sftp(", temp_name = \"x.part\""), Path::new("egme.toml")).unwrap_err();
        assert!(
            errs.iter().any(|e| e
                .to_string()
                .contains(".temp_name` (e-redes): must contain {name}")),
            "{errs:?}"
        );
        let local = GOOD.replace(
            "send = { transport = \"local\", path = \"exchange/e-redes/in\" }",
            "send = { transport = \"local\", path = \"exchange/e-redes/in\", temp_name = \"{name}.part\" }",
        );
        let errs = Config::parse(&local, Path::new("egme.toml")).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.to_string().contains(".temp_name` (e-redes) is only for")),
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
            (include_str!("../../../config/e-redes.toml"), "e-redes"),
            (include_str!("../../../config/eda.toml"), "eda"),
            (include_str!("../../../config/eem.toml"), "eem"),
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
        let text = include_str!("../../../config/example.toml")
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
        let text = include_str!("../../../config/example.toml");
        let c = Config::parse(text, Path::new("/etc/egme-ord/egme-ord.toml")).unwrap();
        assert_eq!(c.ords.len(), 3);
        assert_eq!(c.ords[1].outbound_destination, "EDA");
        assert_eq!(
            c.registry.cpes,
            PathBuf::from("/etc/egme-ord/registry/cpes.csv")
        );
    }
}
