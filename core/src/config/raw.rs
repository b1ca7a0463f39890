//! The configuration's sections as written (every key optional, so a missing key is our own mistake with its place) and their validation into the model.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::read::{read_section, KeyPath, Mistakes, Step};
use super::{
    parse_duration, parse_time_of_day, Endpoint, FtpSettings, OrdConfig, RegistryPaths,
    SftpSettings, Transport,
};
use crate::completeness::ExpectBy;
use crate::filename::MAX_TRANSMISSION_ID;
use crate::netting::{NettingPolicy, TariffFiles};
use crate::ord_name::OrdName;
use crate::planner::Schedule;
use crate::region::Region;
use crate::remote::TempName;
use crate::retention::Retention;
use crate::sgl::{Dialect, ValueKind};

/// The top of the file.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RawConfig {
    pub store: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    pub send_at: Option<String>,
    pub poll_interval: Option<String>,
    pub min_file_age: Option<String>,
    /// Default `send_deadline` of every ORD (local time, HH:MM); none: the end of the local day.
    pub send_deadline: Option<String>,
    /// A cycle whose time is more than this after the last cycle's refuses to run (clock guard).
    pub max_clock_step: Option<String>,
    /// After SIGTERM, how long `run` lets the cycle in flight finish before abandoning it.
    pub stop_timeout: Option<String>,
    /// Address for Prometheus metrics (e.g. 127.0.0.1:9464); none by default.
    pub metrics_listen: Option<String>,
    pub mobility: Option<RawMobility>,
    pub registry: Option<RawRegistry>,
    /// `[backup]`: where `run` copies the ledger and its files after every daily send.
    pub backup: Option<RawBackup>,
    /// `[reports]`: who may read the reports, and the time-of-use tables.
    pub reports: Option<RawReports>,
    /// `[retention]`: how long kept data stays (see `retention::Retention`).
    pub retention: Option<RawRetention>,
    /// Read one by one, so that mistakes in several ORDs are all reported.
    pub ord: Option<Vec<toml::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct RawBackup {
    /// A folder on another disk or a mounted share.
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct RawReports {
    /// A group whose members may read the reports (files 0640, folders 0750 of that group).
    pub group: Option<String>,
    /// Time-of-use tables (TOML); default: the ERSE mainland tables shipped with egme-ord.
    pub tou_tables: Option<Vec<PathBuf>>,
    /// Whether the daily send rewrites a day's report folder when the day changed (default true).
    pub day_folders: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(super) struct RawRetention {
    pub outbox: Option<String>,
    pub archive: Option<String>,
    pub reports: Option<String>,
    pub quarantine: Option<String>,
    pub ledger_details: Option<String>,
}

impl RawRetention {
    /// Each period: a duration in days (`3650d`), or `forever`; the default when absent.
    pub fn read(&self, m: &mut Mistakes) -> Retention {
        let defaults = Retention::default();
        let mut get = |k: &str, text: &Option<String>, default: Option<chrono::Duration>| {
            let Some(text) = text.as_deref() else {
                return default;
            };
            if text.trim() == "forever" {
                return None;
            }
            match parse_duration(text)
                .filter(|d| d.as_secs() % 86_400 == 0)
                .and_then(|d| chrono::Duration::from_std(d).ok())
            {
                Some(d) => Some(d),
                None => {
                    m.at(
                        KeyPath::root().key("retention").key(k),
                        format!("expected a number of days like 400d (0d: as soon as allowed), or \"forever\", found {text:?}"),
                    );
                    default
                }
            }
        };
        Retention {
            outbox: get("outbox", &self.outbox, defaults.outbox),
            archive: get("archive", &self.archive, defaults.archive),
            reports: get("reports", &self.reports, defaults.reports),
            quarantine: get("quarantine", &self.quarantine, defaults.quarantine),
            ledger_details: get(
                "ledger_details",
                &self.ledger_details,
                defaults.ledger_details,
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct RawMobility {
    pub inbox: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct RawRegistry {
    pub cpes: Option<PathBuf>,
    pub evses: Option<PathBuf>,
    pub cemes: Option<PathBuf>,
    pub tariff_overrides: Option<PathBuf>,
    pub other_ords: Option<Vec<String>>,
}

/// The default of `ids_left_warning`: 1 % of the 10-digit range.
const DEFAULT_IDS_LEFT_WARNING: u64 = (MAX_TRANSMISSION_ID + 1) / 100;

/// One `[[ord]]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(super) struct RawOrd {
    pub name: Option<String>,
    region: Option<Region>,
    ord_entity: Option<String>,
    egme_entity: Option<String>,
    inbound_destination: Option<String>,
    outbound_destination: Option<String>,
    /// Read by `read_endpoint`, by its transport's struct.
    receive: Option<toml::Value>,
    send: Option<toml::Value>,
    first_transmission_id: Option<u64>,
    /// How many ids may be left in the 10-digit range before every send warns.
    ids_left_warning: Option<u64>,
    netting_policy: Option<NettingPolicy>,
    tolerance_kwh: Option<Decimal>,
    tariff_files: Option<TariffFiles>,
    value_kind: Option<ValueKind>,
    window_days: Option<u32>,
    send_at: Option<String>,
    /// Local time after which the daily send goes out even though its intake failed.
    send_deadline: Option<String>,
    /// When an ORD file of day D is due (`D+1 20:00`; default D+1 at the send time).
    expect_by: Option<String>,
    dialect: Option<Dialect>,
}

/// `transport = "local"`: a folder of this machine (or a mount).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawLocal {
    path: Option<PathBuf>,
    /// Receive side only: move each file, once recorded, into this folder of the account.
    move_to: Option<String>,
    /// Send side only: the folder of the account the ORD moves our files into once it took them
    /// (relative to the send folder, or absolute); the fence reads it as a witness of ids used.
    ord_moves_to: Option<String>,
}

/// `transport = "sftp"`: a folder of an SFTP account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawSftp {
    path: Option<PathBuf>,
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
    /// Send side: the name a file is written under before its rename (default `.{name}.egme-tmp`).
    temp_name: Option<String>,
}

/// `transport = "ftps"` (or `"ftp"` with `allow_plaintext`): a folder of an FTP account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RawFtp {
    path: Option<PathBuf>,
    move_to: Option<String>,
    ord_moves_to: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    certificate_sha256: Option<String>,
    connect_timeout: Option<String>,
    io_timeout: Option<String>,
    attempts: Option<u32>,
    /// Required (true) for `transport = "ftp"`: credentials and data go in clear.
    allow_plaintext: Option<bool>,
}

/// Resolves a path written in the file: relative paths are relative to the file's folder.
pub(super) type Abs<'a> = &'a dyn Fn(&Path) -> PathBuf;

/// A duration setting: its text when given, else `default`; a mistake when it does not read as
/// one (or is zero where that makes no sense).
pub(super) fn duration(
    m: &mut Mistakes,
    key: KeyPath,
    text: Option<&str>,
    default: Duration,
    zero_ok: bool,
) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match parse_duration(text).filter(|d| zero_ok || !d.is_zero()) {
        Some(d) => d,
        None => {
            m.at(
                key,
                format!("expected a duration like 30s, 5m, 1h, 2d, found {text:?}"),
            );
            default
        }
    }
}

/// `metrics_listen`: `HOST:PORT`, `:PORT` (every address) or `localhost:PORT`.
pub(super) fn listen_address(m: &mut Mistakes, key: KeyPath, text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let port = |p: &str| p.parse::<u16>().ok();
    if let Some(p) = text.strip_prefix(':').and_then(port) {
        return Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, p)));
    }
    if let Some(p) = text.strip_prefix("localhost:").and_then(port) {
        return Some(SocketAddr::from((Ipv4Addr::LOCALHOST, p)));
    }
    let hint = match port(text) {
        Some(p) => format!("; a port alone is not an address: write \"127.0.0.1:{p}\" (this machine only) or \":{p}\" (every address)"),
        None => String::new(),
    };
    m.at(
        key,
        format!("expected an address HOST:PORT like 127.0.0.1:9464, found {text:?}{hint}"),
    );
    None
}

/// What an ORD's section takes from the top of the config when it does not say.
pub(super) struct OrdDefaults<'a> {
    pub send_at: Option<NaiveTime>,
    pub send_deadline: Option<&'a str>,
}

/// A time of day setting (`HH:MM`), a mistake when it does not read as one.
fn time_of_day(m: &mut Mistakes, key: KeyPath, text: &str) -> Option<NaiveTime> {
    let t = parse_time_of_day(text);
    if t.is_none() {
        m.at(key, format!("expected HH:MM, found {text:?}"));
    }
    t
}

/// A folder of the same account (`move_to`, `ord_moves_to`): no `..`.
fn account_folder(m: &mut Mistakes, key: KeyPath, folder: Option<String>) -> Option<String> {
    let f = folder?;
    if f.is_empty() || f.split('/').any(|part| part == "..") {
        m.at(key, format!("expected a folder without `..`, found {f:?}"));
        return None;
    }
    Some(f)
}

impl RawOrd {
    /// Validates one ORD's section at `at` (`ord[i]`); every mistake goes to `m`. `None` when a
    /// required key is missing.
    pub fn resolve(
        self,
        at: &KeyPath,
        defaults: &OrdDefaults<'_>,
        abs: Abs<'_>,
        m: &mut Mistakes,
    ) -> Option<OrdConfig> {
        let o = self;
        let name = m.required(
            at.key("name"),
            o.name,
            ": the ORD's name (e-redes, eda, eem, …)",
        );
        let region = m.required(at.key("region"), o.region, ": continent, azores or madeira");
        let ord_entity = m.required(
            at.key("ord_entity"),
            o.ord_entity,
            ": the ORD's code in the files' headers",
        );
        let egme_entity = o
            .egme_entity
            .unwrap_or_else(|| crate::check::EGME_ENTITY.to_string());
        let name = name.and_then(|n| ord_name(at, &n, m));
        check_codes(at, ord_entity.as_deref(), &egme_entity, m);
        let schedule_at = schedule(
            o.send_at.as_deref(),
            o.send_deadline.as_deref(),
            at,
            defaults,
            m,
        );
        let first_transmission_id = o.first_transmission_id.unwrap_or(1);
        if !(1..=MAX_TRANSMISSION_ID).contains(&first_transmission_id) {
            m.at(
                at.key("first_transmission_id"),
                format!("expected 1 to {MAX_TRANSMISSION_ID} (NTransm has 10 digits), found {first_transmission_id}"),
            );
        }
        let window_days = o.window_days.unwrap_or(30);
        if window_days == 0 {
            m.at(at.key("window_days"), "expected at least 1");
        }
        let dialect = o.dialect.unwrap_or_default();
        if !(1..=6).contains(&dialect.value_decimals) {
            m.at(
                at.key("dialect").key("value_decimals"),
                format!("expected 1 to 6, found {}", dialect.value_decimals),
            );
        }
        let tolerance_kwh = o.tolerance_kwh.unwrap_or(Decimal::new(1, 3));
        if tolerance_kwh.is_sign_negative() {
            m.at(at.key("tolerance_kwh"), "expected zero or more");
        }
        let expect_by = match o.expect_by.as_deref().map(ExpectBy::parse) {
            None => None,
            Some(Ok(e)) => Some(e),
            Some(Err(e)) => {
                m.at(at.key("expect_by"), e);
                None
            }
        };
        let folders = read_folders(o.receive, o.send, at, abs, m);
        let (name, region, ord_entity) = (name?, region?, ord_entity?);
        let (receive, send, processed_folder, send_picked_up_folder) = folders?;
        let (send_at, send_deadline) = schedule_at;
        // Continent files name the destination 0099/1; island files name the entities.
        let (inbound_default, outbound_default) = match region {
            Region::Continent => ("0099/1".to_string(), "0099/1".to_string()),
            _ => (egme_entity.clone(), ord_entity.clone()),
        };
        Some(OrdConfig {
            name,
            region,
            inbound_destination: o.inbound_destination.unwrap_or(inbound_default),
            outbound_destination: o.outbound_destination.unwrap_or(outbound_default),
            ord_entity,
            egme_entity,
            receive,
            send,
            processed_folder,
            send_picked_up_folder,
            first_transmission_id,
            ids_left_warning: o.ids_left_warning.unwrap_or(DEFAULT_IDS_LEFT_WARNING),
            netting_policy: o.netting_policy.unwrap_or_default(),
            tolerance_kwh,
            tariff_files: o.tariff_files.unwrap_or_default(),
            value_kind: o.value_kind.unwrap_or(ValueKind::Power),
            expect_by: expect_by
                .unwrap_or_else(|| ExpectBy::default_for(send_at.unwrap_or(NaiveTime::MIN))),
            schedule: Schedule {
                tz: region.time_zone(),
                send_at: send_at.unwrap_or(NaiveTime::MIN),
                window_days,
                send_deadline,
            },
            dialect,
        })
    }
}

/// The ORD's send time and deadline (its own or the config's), checked against each other.
fn schedule(
    send_at: Option<&str>,
    send_deadline: Option<&str>,
    at: &KeyPath,
    defaults: &OrdDefaults<'_>,
    m: &mut Mistakes,
) -> (Option<NaiveTime>, Option<NaiveTime>) {
    let send_at = match send_at {
        Some(s) => time_of_day(m, at.key("send_at"), s),
        None => defaults.send_at,
    };
    let deadline_key = if send_deadline.is_some() {
        at.key("send_deadline")
    } else {
        KeyPath::root().key("send_deadline")
    };
    let send_deadline = match send_deadline.or(defaults.send_deadline) {
        None => None,
        Some(text) => match time_of_day(m, deadline_key.clone(), text) {
            Some(d) if send_at.is_some_and(|s| d <= s) => {
                m.at(deadline_key, format!("{text} is not after the send time: the send would never wait for its intake"));
                None
            }
            other => other,
        },
    };
    (send_at, send_deadline)
}

/// The ORD's name: letters, digits, `-`, `_` (one component of a path), and not the mobility
/// inbox's folder name.
fn ord_name(at: &KeyPath, name: &str, m: &mut Mistakes) -> Option<OrdName> {
    match OrdName::parse(name) {
        Ok(ord) if ord == crate::work_dir::MOBILITY => {
            m.at(
                at.key("name"),
                format!("{name:?} is the mobility inbox's folder under work/archive and work/quarantine: name the ORD otherwise"),
            );
            None
        }
        Ok(ord) => Some(ord),
        Err(e) => {
            m.at(at.key("name"), e.to_string());
            None
        }
    }
}

/// The entity codes (no blanks).
fn check_codes(at: &KeyPath, ord_entity: Option<&str>, egme_entity: &str, m: &mut Mistakes) {
    for (key, value) in [
        ("ord_entity", ord_entity),
        ("egme_entity", Some(egme_entity)),
    ] {
        if let Some(value) = value {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                m.at(
                    at.key(key),
                    format!("expected a code without blanks, found {value:?}"),
                );
            }
        }
    }
}

/// An ORD's folders: the receive and send endpoints, and the folders of the account each side
/// may name (`move_to` on the receive side, `ord_moves_to` on the send side).
type Folders = (Endpoint, Endpoint, Option<String>, Option<String>);

fn read_folders(
    receive: Option<toml::Value>,
    send: Option<toml::Value>,
    at: &KeyPath,
    abs: Abs<'_>,
    m: &mut Mistakes,
) -> Option<Folders> {
    let receive = m.required(
        at.key("receive"),
        receive,
        ": the folder the ORD's files come from, e.g. { transport = \"local\", path = \"…\" }",
    );
    let send = m.required(
        at.key("send"),
        send,
        ": the folder our files go to, e.g. { transport = \"local\", path = \"…\" }",
    );
    let receive = receive.and_then(|v| read_endpoint(v, &at.key("receive"), abs, m));
    let send = send.and_then(|v| read_endpoint(v, &at.key("send"), abs, m));
    let (receive, send) = (receive?, send?);
    if send.move_to.is_some() {
        m.at(
            at.key("send").key("move_to"),
            "is only for the receive side",
        );
    }
    if receive.ord_moves_to.is_some() {
        m.at(
            at.key("receive").key("ord_moves_to"),
            "is only for the send side",
        );
    }
    let processed = account_folder(m, at.key("receive").key("move_to"), receive.move_to);
    let picked_up = account_folder(m, at.key("send").key("ord_moves_to"), send.ord_moves_to);
    Some((receive.endpoint, send.endpoint, processed, picked_up))
}

/// An endpoint read: where, and the two folder keys that belong to one side only.
struct ReadEndpoint {
    endpoint: Endpoint,
    move_to: Option<String>,
    ord_moves_to: Option<String>,
}

/// Reads an endpoint at `at` by its transport's struct: the keys a transport takes are that
/// struct's fields; a key of SFTP in a local endpoint says so, any other key is unknown.
fn read_endpoint(
    value: toml::Value,
    at: &KeyPath,
    abs: Abs<'_>,
    m: &mut Mistakes,
) -> Option<ReadEndpoint> {
    let toml::Value::Table(mut table) = value else {
        m.at(
            at.clone(),
            "expected a table like { transport = \"local\", path = \"…\" }",
        );
        return None;
    };
    let transport = match table.remove("transport") {
        None => {
            m.at(
                at.key("transport"),
                "is required: \"local\", \"sftp\", \"ftps\" or \"ftp\"",
            );
            return None;
        }
        Some(v) => match Transport::deserialize(v.clone()) {
            Ok(t) => t,
            Err(_) => {
                m.at(
                    at.key("transport"),
                    format!("expected \"local\", \"sftp\", \"ftps\" or \"ftp\", found {v}"),
                );
                return None;
            }
        },
    };
    let rest = toml::Value::Table(table);
    let sftp_keys = serde_aux::serde_introspection::serde_introspect::<RawSftp>();
    let ftp_keys = serde_aux::serde_introspection::serde_introspect::<RawFtp>();
    match transport {
        Transport::Local => {
            let (local, stray) = read_section::<RawLocal>(rest, at, m);
            for key in stray {
                let full = at.join(&key);
                let [Step::Key(k)] = key.0.as_slice() else {
                    m.unknown(full);
                    continue;
                };
                match (
                    sftp_keys.contains(&k.as_str()),
                    ftp_keys.contains(&k.as_str()),
                ) {
                    (true, true) => m.at(full, "is only for transport = \"sftp\" or \"ftps\""),
                    (true, false) => m.at(full, "is only for transport = \"sftp\""),
                    (false, true) => m.at(full, "is only for transport = \"ftps\" (or \"ftp\")"),
                    (false, false) => m.unknown(full),
                }
            }
            let local = local?;
            let path = m.required(at.key("path"), local.path, ": the folder")?;
            Some(ReadEndpoint {
                endpoint: Endpoint::Local { path: abs(&path) },
                move_to: local.move_to,
                ord_moves_to: local.ord_moves_to,
            })
        }
        Transport::Ftps | Transport::Ftp => {
            let (ftp, stray) = read_section::<RawFtp>(rest, at, m);
            for key in stray {
                let full = at.join(&key);
                match key.0.as_slice() {
                    [Step::Key(k)] if sftp_keys.contains(&k.as_str()) => {
                        m.at(full, "is only for transport = \"sftp\"")
                    }
                    _ => m.unknown(full),
                }
            }
            let mut ftp = ftp?;
            let (move_to, ord_moves_to) = (ftp.move_to.take(), ftp.ord_moves_to.take());
            let settings = ftp.resolve(transport == Transport::Ftps, at, abs, m)?;
            Some(ReadEndpoint {
                endpoint: Endpoint::Ftp(Box::new(settings)),
                move_to,
                ord_moves_to,
            })
        }
        Transport::Sftp => {
            let (sftp, stray) = read_section::<RawSftp>(rest, at, m);
            for key in stray {
                let full = at.join(&key);
                match key.0.as_slice() {
                    [Step::Key(k)] if ftp_keys.contains(&k.as_str()) => {
                        m.at(full, "is only for transport = \"ftps\" (or \"ftp\")")
                    }
                    _ => m.unknown(full),
                }
            }
            let mut sftp = sftp?;
            let (move_to, ord_moves_to) = (sftp.move_to.take(), sftp.ord_moves_to.take());
            let settings = sftp.resolve(at, abs, m)?;
            Some(ReadEndpoint {
                endpoint: Endpoint::Sftp(Box::new(settings)),
                move_to,
                ord_moves_to,
            })
        }
    }
}

impl RawSftp {
    /// Validates an SFTP endpoint's keys.
    fn resolve(self, at: &KeyPath, abs: Abs<'_>, m: &mut Mistakes) -> Option<SftpSettings> {
        let s = self;
        let nonempty = |v: Option<String>| v.filter(|x| !x.is_empty());
        let host = m.required(
            at.key("host"),
            nonempty(s.host),
            " for transport = \"sftp\" (the server's name or address)",
        );
        let user = m.required(
            at.key("user"),
            nonempty(s.user),
            " for transport = \"sftp\" (the account)",
        );
        let known_hosts = m.required(
            at.key("known_hosts"),
            s.known_hosts,
            " for transport = \"sftp\" (host keys are always checked)",
        );
        let path = m.required(at.key("path"), s.path, ": the remote folder");
        if s.key.is_none() && s.password_env.is_none() {
            m.at(
                at.key("key"),
                "(a private key file) or `password_env` is required for transport = \"sftp\"",
            );
        }
        if s.key.is_some() && s.password_env.is_some() {
            m.at(at.key("password_env"), "and `key` exclude each other");
        }
        if s.passphrase_env.is_some() && s.passphrase_file.is_some() {
            m.at(
                at.key("passphrase_file"),
                "and `passphrase_env` exclude each other",
            );
        }
        let secs = Duration::from_secs;
        let (connect_timeout, io_timeout) = timeouts(
            m,
            at,
            (s.connect_timeout.as_deref(), s.io_timeout.as_deref()),
        );
        let keepalive = duration(
            m,
            at.key("keepalive"),
            s.keepalive.as_deref(),
            secs(30),
            false,
        );
        Some(SftpSettings {
            host: host?,
            port: s.port.unwrap_or(22),
            user: user?,
            key: s.key.as_deref().map(abs),
            passphrase_env: s.passphrase_env,
            passphrase_file: s.passphrase_file.as_deref().map(abs),
            password_env: s.password_env,
            known_hosts: abs(&known_hosts?),
            path: path?.display().to_string(),
            connect_timeout,
            io_timeout,
            keepalive,
            attempts: s.attempts.unwrap_or(3).max(1),
            sessions: s.sessions.unwrap_or(1).clamp(1, 32),
            fsync: s.fsync.unwrap_or(true),
            temp_name: match s.temp_name.as_deref().map(TempName::parse) {
                None => TempName::default(),
                Some(Ok(t)) => t,
                Some(Err(why)) => {
                    m.at(at.key("temp_name"), why);
                    return None;
                }
            },
        })
    }
}

/// An endpoint's `connect_timeout` (default 15 s) and `io_timeout` (60 s), SFTP's and FTP's alike.
fn timeouts(
    m: &mut Mistakes,
    at: &KeyPath,
    (connect, io): (Option<&str>, Option<&str>),
) -> (Duration, Duration) {
    let secs = Duration::from_secs;
    (
        duration(m, at.key("connect_timeout"), connect, secs(15), false),
        duration(m, at.key("io_timeout"), io, secs(60), false),
    )
}

impl RawFtp {
    /// Validates an FTP(S) endpoint's keys; `tls`: `transport = "ftps"`.
    fn resolve(
        self,
        tls: bool,
        at: &KeyPath,
        abs: Abs<'_>,
        m: &mut Mistakes,
    ) -> Option<FtpSettings> {
        let s = self;
        let which = if tls { "ftps" } else { "ftp" };
        let nonempty = |v: Option<String>| v.filter(|x| !x.is_empty());
        let host = m.required(
            at.key("host"),
            nonempty(s.host),
            &format!(" for transport = \"{which}\" (the server's name or address)"),
        );
        let user = m.required(
            at.key("user"),
            nonempty(s.user),
            &format!(" for transport = \"{which}\" (the account)"),
        );
        let path = m.required(at.key("path"), s.path, ": the remote folder");
        match (&s.password_env, &s.password_file) {
            (None, None) => m.at(
                at.key("password_env"),
                format!("(or `password_file`) is required for transport = \"{which}\""),
            ),
            (Some(_), Some(_)) => m.at(
                at.key("password_file"),
                "and `password_env` exclude each other",
            ),
            _ => {}
        }
        if tls && s.allow_plaintext.is_some() {
            m.at(
                at.key("allow_plaintext"),
                "is only for transport = \"ftp\" (ftps is never plain)",
            );
        }
        if !tls && s.allow_plaintext != Some(true) {
            m.at(
                at.key("transport"),
                "\"ftp\" sends the password and the files in clear: use \"ftps\", or set allow_plaintext = true on this endpoint if the ORD offers nothing else",
            );
        }
        if !tls && (s.ca_file.is_some() || s.certificate_sha256.is_some()) {
            m.at(
                at.key(if s.ca_file.is_some() {
                    "ca_file"
                } else {
                    "certificate_sha256"
                }),
                "is only for transport = \"ftps\"",
            );
        }
        let pin = s
            .certificate_sha256
            .map(|p| p.replace(':', "").to_ascii_lowercase());
        if let Some(p) = &pin {
            if p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                m.at(
                    at.key("certificate_sha256"),
                    format!("expected the certificate's SHA-256 as 64 hex digits (`openssl x509 -noout -fingerprint -sha256`), found {} characters", p.len()),
                );
            }
        }
        let (connect_timeout, io_timeout) = timeouts(
            m,
            at,
            (s.connect_timeout.as_deref(), s.io_timeout.as_deref()),
        );
        Some(FtpSettings {
            host: host?,
            port: s.port.unwrap_or(21),
            user: user?,
            password_env: s.password_env,
            password_file: s.password_file.as_deref().map(abs),
            ca_file: s.ca_file.as_deref().map(abs),
            certificate_sha256: pin,
            path: path?.display().to_string(),
            connect_timeout,
            io_timeout,
            attempts: s.attempts.unwrap_or(3).max(1),
            tls,
        })
    }
}

impl RawRegistry {
    /// The registry's files, required except the overrides.
    pub fn resolve(self, abs: Abs<'_>, m: &mut Mistakes) -> Option<RegistryPaths> {
        let at = KeyPath::root().key("registry");
        let cpes = m.required(at.key("cpes"), self.cpes, ": the CPE → ORD file (cpes.csv)");
        let evses = m.required(
            at.key("evses"),
            self.evses,
            ": the EVSE → CPE file (evses.csv)",
        );
        let cemes = m.required(
            at.key("cemes"),
            self.cemes,
            ": the CEME codes file (cemes.csv)",
        );
        Some(RegistryPaths {
            cpes: abs(&cpes?),
            evses: abs(&evses?),
            cemes: abs(&cemes?),
            tariff_overrides: self.tariff_overrides.as_deref().map(abs),
            other_ords: self.other_ords.unwrap_or_default(),
        })
    }
}
