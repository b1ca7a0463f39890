//! The day's report folder (`egme-ord report` and the daily send): the core's `day_report` fed from the ledger, the outbox packs and the registry; written atomically, readable by the configured group.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::{io_err, CycleError};
use crate::fsutil::{write_atomic, AtomicFile};
use crate::pack::PackReader;
use crate::store::Store;
use egme_ord_core::calendar::DayCalendar;
use egme_ord_core::config::{Config, OrdConfig};
use egme_ord_core::cpe::Cpe;
use egme_ord_core::day_report::{self, CpeDay, OrdDay, OrdSection, SentSeries};
use egme_ord_core::registry::Registry;
use egme_ord_core::sgl::{self, ReadOptions};
use egme_ord_core::tou::TouTables;

/// The time-of-use tables the config names, or the ERSE mainland tables shipped with egme-ord.
pub fn load_tou(config: &Config) -> Result<TouTables, CycleError> {
    if config.reports.tou_tables.is_empty() {
        return Ok(TouTables::erse_mainland());
    }
    let mut all = TouTables::default();
    for path in &config.reports.tou_tables {
        let text =
            crate::fsutil::read_input(path, crate::fsutil::MAX_TOU_BYTES).map_err(io_err(path))?;
        let tables = TouTables::parse(&path.display().to_string(), &text).map_err(|e| {
            CycleError::Refused(format!("{e}; fix the file named in [reports] tou_tables"))
        })?;
        all = all.merge(tables);
    }
    Ok(all)
}

/// What holds for all CPEs of one ORD's day, and the CPEs of that day (a file sent or an ORD
/// profile held).
fn ord_day_head(
    registry: &Registry,
    store: &Store,
    ord: &OrdConfig,
    day: NaiveDate,
) -> Result<(OrdDay, BTreeSet<Cpe>), CycleError> {
    let registered: BTreeSet<Cpe> = registry.cpes_of(&ord.name, day).collect();
    let with_profile: BTreeSet<Cpe> = store.profile_cpes(&ord.name, day)?.into_iter().collect();
    let head = OrdDay {
        ord: ord.name.clone(),
        region: ord.region,
        tz: ord.schedule.tz,
        day,
        calendar: DayCalendar::new(ord.schedule.tz, day, ord.dialect.time_convention),
        tolerance_kwh: ord.tolerance_kwh,
        registered: registered.len(),
        missing: registered.difference(&with_profile).copied().collect(),
    };
    let mut cpes: BTreeSet<Cpe> = store.sent_cpes(&ord.name, day)?.into_iter().collect();
    cpes.extend(with_profile);
    Ok((head, cpes))
}

/// The day `head` of `ord` as the ledger knows it, CPE by CPE: each CPE's ORD total in force and
/// the last file sent per supplier and tariff, its values read back from the outbox pack (what the
/// ORD received), given to `each` in CPE order. Only one CPE-day is held at a time.
fn each_cpe_day(
    config: &Config,
    registry: &Registry,
    store: &Store,
    ord: &OrdConfig,
    head: &OrdDay,
    cpes: BTreeSet<Cpe>,
    mut each: impl FnMut(&CpeDay) -> Result<(), CycleError>,
) -> Result<(), CycleError> {
    let (day, n) = (head.day, head.calendar.len());
    let outbox = config.work().outbox(&ord.name);
    let mut packs = PackReader::new(&outbox);
    for cpe in cpes {
        let mut last: BTreeMap<(String, String), egme_ord_core::ledger::SentFile> = BTreeMap::new();
        for f in store.sent_files_of_cpe_day(&ord.name, &cpe, day)? {
            last.insert((f.supplier.clone(), f.tariff.code().to_string()), f);
        }
        let mut sent = Vec::with_capacity(last.len());
        for ((supplier, _), f) in last {
            let bytes = packs
                .read(&f.name, f.pack.as_ref())
                .map_err(|(path, e)| CycleError::Io { path, source: e })?;
            let report = sgl::read(&bytes, &ReadOptions::new(ord.region, &ord.dialect));
            let Some(file) = report.file else {
                return Err(CycleError::Refused(format!(
                    "{}: the sent file no longer reads back ({} diagnostics): run `egme-ord verify`",
                    f.name,
                    report.diagnostics.len()
                )));
            };
            let kwh = file
                .days
                .into_iter()
                .find(|d| d.day == day)
                .map(|d| d.readings.into_iter().map(|r| r.kwh).collect())
                .unwrap_or_else(|| vec![rust_decimal::Decimal::ZERO; n]);
            let ceme = registry
                .ceme_of_code(&supplier, ord.region, day)
                .map_or(supplier.clone(), ToString::to_string);
            sent.push(SentSeries {
                ceme,
                tariff: f.tariff,
                transmission_id: f.transmission_id,
                name: f.name,
                kwh,
            });
        }
        let profile = store.profile_in_force(&ord.name, &cpe, day)?;
        let cpe_day = CpeDay {
            cpe,
            ord_transmission: profile.as_ref().map(|(v, _)| v.transmission_id),
            ord_kwh: profile.map(|(_, p)| p.readings.into_iter().map(|r| r.kwh).collect()),
            sent,
        };
        each(&cpe_day)?;
    }
    Ok(())
}

/// The group id of `group` (a name in /etc/group, or a number).
fn group_id(group: &str) -> Result<u32, CycleError> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    let path = Path::new("/etc/group");
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| {
            CycleError::Refused(format!(
                "[reports] group = {group:?} is not a group of this machine (/etc/group): create it (groupadd {group}) or fix the setting"
            ))
        })
}

/// `path` readable by `group` (files 0640, folders 0750) when one is configured.
fn share(path: &Path, group: Option<u32>, folder: bool) -> Result<(), CycleError> {
    let Some(gid) = group else {
        return Ok(());
    };
    rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid))).map_err(|e| {
        CycleError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        }
    })?;
    let mode = if folder { 0o750 } else { 0o640 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Writes `index.html`, `quarter-hours.csv` and `supplier-quarter-hours.csv` of `day` for `ords`
/// into `dir` (each atomically), reading the day CPE by CPE: the CSVs are streamed to disk and the
/// page keeps a row per CPE and at most [`day_report::PAGE_CHARTS`] charts per ORD, so memory does
/// not grow with the day's CPEs. With `[reports] group`, the files and `dir` are readable by it.
pub fn write_day_report(
    config: &Config,
    registry: &Registry,
    store: &Store,
    ords: &[&OrdConfig],
    day: NaiveDate,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, CycleError> {
    let tou = load_tou(config)?;
    let gid = config.reports.group.as_deref().map(group_id).transpose()?;
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    share(dir, gid, true)?;
    let csv_file = |name: &str, header: &[&str]| {
        let path = dir.join(name);
        let mut w = csv::Writer::from_writer(AtomicFile::create(&path).map_err(io_err(&path))?);
        w.write_record(header).map_err(csv_err(&path))?;
        Ok::<_, CycleError>((w, path))
    };
    let (mut quarter_hours, qh_path) =
        csv_file("quarter-hours.csv", &day_report::QUARTER_HOURS_HEADER)?;
    let (mut suppliers, sq_path) =
        csv_file("supplier-quarter-hours.csv", &day_report::SUPPLIER_HEADER)?;
    let mut sections = Vec::with_capacity(ords.len());
    for ord in ords {
        let (head, cpes) = ord_day_head(registry, store, ord, day)?;
        let mut section = OrdSection::new(head.clone());
        each_cpe_day(config, registry, store, ord, &head, cpes, |c| {
            day_report::quarter_hour_rows(&mut quarter_hours, &head, c)
                .map_err(csv_err(&qh_path))?;
            day_report::supplier_rows(&mut suppliers, &head, c, &tou).map_err(csv_err(&sq_path))?;
            section.add(c, &tou);
            Ok(())
        })?;
        sections.push(section);
    }
    let page = dir.join("index.html");
    write_atomic(&page, day_report::html(&sections, now).as_bytes()).map_err(io_err(&page))?;
    let mut written = vec![page];
    for (w, path) in [(quarter_hours, qh_path), (suppliers, sq_path)] {
        let file = w.into_inner().map_err(|e| CycleError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        written.push(file.commit().map_err(io_err(&path))?);
    }
    for path in &written {
        share(path, gid, false)?;
    }
    Ok(written)
}

/// A CSV error writing `path`, as the I/O error it is.
fn csv_err(path: &Path) -> impl Fn(csv::Error) -> CycleError + '_ {
    move |e| CycleError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The folders from `top` down to `dir` (inclusive) made readable by the group, so that its
/// members can reach the report (`top` is the work folder's `reports`).
pub fn share_path(top: &Path, dir: &Path, group: Option<&str>) -> Result<(), CycleError> {
    let gid = group.map(group_id).transpose()?;
    let mut p = dir.to_path_buf();
    loop {
        share(&p, gid, true)?;
        if p == top || !p.pop() || !p.starts_with(top) {
            return Ok(());
        }
    }
}
