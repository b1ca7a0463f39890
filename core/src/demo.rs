//! Demo and test data: a three-ORD workspace on local folders, ORD files and OCPI CDRs (pure: returns file contents).

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use crate::calendar::{DayCalendar, LabelConvention, Span};
use crate::cpe::Cpe;
use crate::filename::{Direction, Extension, NTransm, OrdFileName, PartyCode};
use crate::profile::{DayProfile, Reading, ReadingStatus};
use crate::region::Region;
use crate::sgl::{self, Criteria, DataStatus, Dialect, Header, SglFile, ValueKind};

/// A file to create, relative to the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// One demo ORD: its name, region, entity code, folder and CPEs.
pub struct DemoOrd {
    pub name: &'static str,
    pub region: Region,
    pub entity: &'static str,
    pub cpes: Vec<Cpe>,
}

/// The three ORDs with a few CPEs each (the rule's real CPEs among them).
pub fn ords() -> Vec<DemoOrd> {
    let cpe = |s: &str| Cpe::parse(s).ok();
    vec![
        DemoOrd {
            name: "e-redes",
            region: Region::Continent,
            entity: "EDIS",
            cpes: [
                cpe("PT0002000123681633GX"),
                Cpe::from_parts(2, 555_000_111),
                Cpe::from_parts(2, 555_000_222),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
        DemoOrd {
            name: "eda",
            region: Region::Azores,
            entity: "EDA",
            cpes: [cpe("PT0014000100605384QR"), cpe("PT0014000100386193PT")]
                .into_iter()
                .flatten()
                .collect(),
        },
        DemoOrd {
            name: "eem",
            region: Region::Madeira,
            entity: "EEM",
            cpes: [cpe("PT0013700005415700NY")]
                .into_iter()
                .flatten()
                .collect(),
        },
    ]
}

/// EVSE id of the `i`-th charger at a CPE.
pub fn evse_id(cpe: &Cpe, i: usize) -> String {
    format!("PT*MOB*E{}*{}", &cpe.as_str()[8..18], i + 1)
}

/// The config, pointing at folders relative to itself.
pub fn config_toml(send_at: &str, min_file_age: &str) -> String {
    let mut s = format!(
        r#"# egme-ord demo configuration: three ORDs on local folders.
store = "state/egme-ord.sqlite"     # the ledger (SQLite)
work_dir = "work"                   # archive, quarantine, outbox, reports
send_at = "{send_at}"                   # daily send, local time of each ORD
poll_interval = "5m"                # for `egme-ord run`
min_file_age = "{min_file_age}"                 # files younger than this are left for the next cycle

[mobility]
inbox = "mobility"                  # OCPI CDR .json and quarter-hour .csv files

[registry]
cpes = "registry/cpes.csv"
evses = "registry/evses.csv"
cemes = "registry/cemes.csv"
tariff_overrides = "registry/tariff_overrides.csv"
"#
    );
    for o in ords() {
        s.push_str(&format!(
            r#"
[[ord]]
name = "{name}"
region = "{region}"
ord_entity = "{entity}"
receive = {{ transport = "local", path = "exchange/{name}/from-ord" }}
send = {{ transport = "local", path = "exchange/{name}/to-ord" }}
"#,
            name = o.name,
            region = o.region,
            entity = o.entity
        ));
    }
    s.push_str(
        r#"
[reports]
day_folders = true                  # the demo's days are small: each send rewrites the changed days' pages
"#,
    );
    s
}

/// Registry files.
pub fn registry_files() -> Vec<DemoFile> {
    let mut cpes = String::from("cpe,ord\n");
    let mut evses = String::from("evse,cpe\n");
    for o in ords() {
        for c in &o.cpes {
            cpes.push_str(&format!("{c},{}\n", o.name));
            for i in 0..2 {
                evses.push_str(&format!("{},{c}\n", evse_id(c, i)));
            }
        }
    }
    let cemes = "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\nPT-EDP,05,EDPC,02\nPT-MOB,07,MOBI,01\n";
    let overrides = format!("cpe,ceme,tariff_cycle\n{},PT-EDP,03\n", ords()[0].cpes[1]);
    vec![
        DemoFile {
            path: "registry/cpes.csv".into(),
            bytes: cpes.into_bytes(),
        },
        DemoFile {
            path: "registry/evses.csv".into(),
            bytes: evses.into_bytes(),
        },
        DemoFile {
            path: "registry/cemes.csv".into(),
            bytes: cemes.as_bytes().to_vec(),
        },
        DemoFile {
            path: "registry/tariff_overrides.csv".into(),
            bytes: overrides.into_bytes(),
        },
    ]
}

/// A CPE's total for a day: a base load shaped by the hour, with `bump_kw` added on afternoon hours.
pub fn ord_profile(region: Region, day: NaiveDate, seed: u64, bump_kw: u32) -> DayProfile {
    ord_profile_in(region, day, seed, bump_kw, LabelConvention::Local)
}

/// [`ord_profile`] labelled in `convention`: with `local-96` the spring gap holds 0 (status 2)
/// and each label of the autumn repeated hour both passes.
pub fn ord_profile_in(
    region: Region,
    day: NaiveDate,
    seed: u64,
    bump_kw: u32,
    convention: LabelConvention,
) -> DayProfile {
    let cal = DayCalendar::new(region.time_zone(), day, convention);
    let readings = cal
        .quarter_hours
        .iter()
        .enumerate()
        .map(|(i, q)| {
            match q.span {
                Span::Gap => {
                    return Reading {
                        kwh: Decimal::ZERO,
                        status: ReadingStatus::Missing,
                    }
                }
                Span::BothPasses | Span::One => {}
            }
            let passes = Decimal::from(if q.span == Span::BothPasses { 2 } else { 1 });
            let hour = u64::from(q.label.end_minutes() / 60);
            let mut kw = 12 + (seed + hour * 7 + i as u64) % 9;
            if (13..=18).contains(&hour) {
                kw += u64::from(bump_kw);
            }
            // kW with one decimal → kWh = kW / 4, exact.
            Reading {
                kwh: passes * Decimal::new(kw as i64 * 10 + (i as i64 % 10), 1) / Decimal::from(4),
                status: ReadingStatus::Real,
            }
        })
        .collect();
    DayProfile { day, readings }
}

/// An ORD file for one CPE-day, named by the ORD's pattern.
pub fn ord_file(
    ord: &DemoOrd,
    cpe: Cpe,
    profile: DayProfile,
    transmission_id: u64,
    generated: NaiveDate,
) -> DemoFile {
    ord_file_in(
        ord,
        cpe,
        profile,
        (transmission_id, generated),
        &Dialect::default(),
    )
}

/// [`ord_file`] written in `dialect`.
pub fn ord_file_in(
    ord: &DemoOrd,
    cpe: Cpe,
    profile: DayProfile,
    (transmission_id, generated): (u64, NaiveDate),
    dialect: &Dialect,
) -> DemoFile {
    let day = profile.day;
    let destination = if ord.region == Region::Continent {
        "0099/1"
    } else {
        crate::check::EGME_ENTITY
    };
    let file = SglFile {
        header: Header {
            origin: ord.entity.into(),
            destination: destination.into(),
            transmission_id,
            previous_transmission_id: transmission_id.saturating_sub(1),
            delivery_points: 1,
            selection_start: day,
            selection_end: day,
        },
        criteria: Criteria {
            status: DataStatus::for_days(std::slice::from_ref(&profile)),
            interpolated: false,
            value_kind: ValueKind::Power,
        },
        days: vec![profile],
    };
    let bytes = sgl::write(&file, ord.region, dialect).unwrap_or_default();
    let name = match ord.region {
        Region::Azores => OrdFileName {
            direction: Direction::Inbound,
            region: ord.region,
            party: PartyCode::None,
            tariff_cycle: None,
            cpe,
            date: day,
            ntransm: NTransm {
                value: transmission_id,
                width: 2,
            },
            extension: Extension::Txt,
        },
        _ => OrdFileName {
            direction: Direction::Inbound,
            region: ord.region,
            party: PartyCode::OrdRequest(format!("{}", 170_000 + transmission_id % 10_000)),
            tariff_cycle: None,
            cpe,
            date: generated,
            ntransm: NTransm {
                value: transmission_id,
                width: if ord.region == Region::Madeira { 10 } else { 3 },
            },
            extension: if ord.region == Region::Madeira {
                Extension::None
            } else {
                Extension::Sgl
            },
        },
    };
    DemoFile {
        path: format!("exchange/{}/from-ord/{name}", ord.name),
        bytes,
    }
}

/// An OCPI 2.2.1 CDR with one period per hour, its energy in ENERGY dimensions.
pub fn cdr(
    id: &str,
    party: (&str, &str),
    evse: &str,
    start: DateTime<Utc>,
    minutes: i64,
    energy_milli_kwh: i64,
    last_updated: DateTime<Utc>,
) -> serde_json::Value {
    let end = start + Duration::minutes(minutes);
    let total = Decimal::new(energy_milli_kwh, 3);
    let hours = (minutes + 59) / 60;
    let mut periods = Vec::new();
    let mut left = energy_milli_kwh;
    for h in 0..hours {
        let share = if h == hours - 1 {
            left
        } else {
            energy_milli_kwh * 60 / minutes.max(1)
        };
        left -= share;
        periods.push(json!({
            "start_date_time": (start + Duration::hours(h)).to_rfc3339(),
            "dimensions": [{ "type": "ENERGY", "volume": serde_json::Number::from_string_unchecked(Decimal::new(share, 3).to_string()) }]
        }));
    }
    json!({
        "country_code": "PT", "party_id": "MOB", "id": id,
        "start_date_time": start.to_rfc3339(), "end_date_time": end.to_rfc3339(),
        "cdr_token": { "country_code": party.0, "party_id": party.1, "uid": "0123456789", "type": "RFID", "contract_id": format!("{}-{}-C12345678-X", party.0, party.1) },
        "auth_method": "WHITELIST",
        "cdr_location": { "id": "LOC1", "evse_uid": format!("uid-{evse}"), "evse_id": evse, "connector_id": "1" },
        "currency": "EUR",
        "charging_periods": periods,
        "total_energy": serde_json::Number::from_string_unchecked(total.to_string()),
        "total_time": Decimal::new(minutes * 1000 / 60, 3).to_string(),
        "last_updated": last_updated.to_rfc3339(),
    })
}

/// The demo's days: 26 and 27 October 2024 (the 27th is the autumn DST day, 100 quarter-hours).
pub fn demo_days() -> [NaiveDate; 2] {
    [
        NaiveDate::from_ymd_opt(2024, 10, 26).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2024, 10, 27).unwrap_or_default(),
    ]
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_default()
}

/// The first delivery: ORD files for both days and the CDRs of both days (sessions across midnight and DST).
pub fn first_delivery() -> Vec<DemoFile> {
    let mut files = Vec::new();
    let [d1, d2] = demo_days();
    let mut tid = 100;
    for ord in ords() {
        for (k, cpe) in ord.cpes.iter().enumerate() {
            for day in [d1, d2] {
                tid += 1;
                let generated = day.succ_opt().unwrap_or(day);
                let mut profile = ord_profile(ord.region, day, k as u64, 22);
                if ord.region == Region::Madeira && day == d1 {
                    // A meter reading too low during the afternoon session: the report shows anomalies.
                    for r in profile.readings.iter_mut().skip(56).take(16) {
                        r.kwh = Decimal::new(25, 2);
                    }
                }
                files.push(ord_file(&ord, *cpe, profile, tid, generated));
            }
        }
    }
    let updated = at(2024, 10, 28, 6, 0);
    let mut cdrs = Vec::new();
    for (n, ord) in ords().iter().enumerate() {
        for (k, cpe) in ord.cpes.iter().enumerate() {
            let party = [("PT", "GAL"), ("PT", "EDP"), ("PT", "MOB")][(n + k) % 3];
            // An afternoon session on each day.
            cdrs.push(cdr(
                &format!("S-{n}{k}-A"),
                party,
                &evse_id(cpe, 0),
                at(2024, 10, 26, 14, 10 + k as u32),
                95,
                18_345 + 1_000 * k as i64,
                updated,
            ));
            cdrs.push(cdr(
                &format!("S-{n}{k}-B"),
                party,
                &evse_id(cpe, 1),
                at(2024, 10, 27, 15, 5),
                130,
                24_020,
                updated,
            ));
            // A night session across midnight and across the DST change (01:00 UTC on the 27th).
            cdrs.push(cdr(
                &format!("S-{n}{k}-N"),
                ("PT", "GAL"),
                &evse_id(cpe, 0),
                at(2024, 10, 26, 22, 40),
                240,
                30_001,
                updated,
            ));
        }
    }
    // A session at an EVSE nobody registered: quarantined with its reason, the rest goes on.
    cdrs.push(cdr(
        "S-UNKNOWN",
        ("PT", "GAL"),
        "PT*MOB*E999*1",
        at(2024, 10, 26, 10, 0),
        60,
        5_000,
        updated,
    ));
    files.push(DemoFile {
        path: "mobility/cdrs-2024-10-28.json".into(),
        bytes: serde_json::to_vec_pretty(
            &json!({ "data": cdrs, "status_code": 1000, "timestamp": updated.to_rfc3339() }),
        )
        .unwrap_or_default(),
    });
    files
}

/// A later correction: one CDR re-sent with more energy, one credited, and a corrected ORD file.
pub fn correction() -> Vec<DemoFile> {
    let [_, d2] = demo_days();
    let updated = at(2024, 10, 29, 6, 0);
    let ord = &ords()[0];
    let cpe = ord.cpes[0];
    let corrected = cdr(
        "S-00-B",
        ("PT", "GAL"),
        &evse_id(&cpe, 1),
        at(2024, 10, 27, 15, 5),
        130,
        26_500,
        updated,
    );
    let credit = json!({
        "country_code": "PT", "party_id": "MOB", "id": "S-01-A-CREDIT", "credit": true, "credit_reference_id": "S-01-A",
        "start_date_time": at(2024, 10, 26, 14, 11).to_rfc3339(), "end_date_time": at(2024, 10, 26, 15, 46).to_rfc3339(),
        "cdr_token": { "country_code": "PT", "party_id": "EDP", "uid": "1", "type": "RFID" },
        "cdr_location": { "id": "LOC1", "evse_uid": "x", "evse_id": evse_id(&ord.cpes[1], 0) },
        "total_energy": -19.345, "last_updated": updated.to_rfc3339(),
    });
    vec![
        DemoFile {
            path: "mobility/cdrs-2024-10-29.json".into(),
            bytes: serde_json::to_vec_pretty(&json!([corrected, credit])).unwrap_or_default(),
        },
        ord_file(
            ord,
            cpe,
            ord_profile(ord.region, d2, 0, 30),
            900,
            d2.succ_opt().and_then(|d| d.succ_opt()).unwrap_or(d2),
        ),
    ]
}

/// When the demo's cycles run: the D+1 send of the 27th (D+2 of the 26th), then the day after.
pub fn cycle_times() -> [DateTime<Utc>; 2] {
    [at(2024, 10, 28, 21, 30), at(2024, 10, 29, 21, 30)]
}

/// A national-scale day for benchmarks and load tests: `n` mainland CPEs (E-Redes) with one ORD
/// file each for Monday 4 November 2024 (dated the 5th, in `remote/from-ord/`), 1–3 CEMEs per CPE
/// with one OCPI CDR each (`mobility/cdrs.json`), and the registry. Paths are relative to the
/// workspace; the send is expected in `remote/to-ord/`.
pub struct Scale {
    pub files: Vec<DemoFile>,
    pub cdrs: usize,
    /// The files the first send writes (4 tariff files per supplier).
    pub outputs: u64,
}

/// The configuration of an [`at_scale`] workspace: E-Redes only, its folders at `receive` and
/// `send` (TOML inline tables), the daily send at 21:00.
pub fn at_scale_config(receive: &str, send: &str) -> String {
    format!(
        r#"store = "state/egme-ord.sqlite"
work_dir = "work"
send_at = "21:00"
min_file_age = "0s"
[mobility]
inbox = "mobility"
[registry]
cpes = "registry/cpes.csv"
evses = "registry/evses.csv"
cemes = "registry/cemes.csv"
tariff_overrides = "registry/tariff_overrides.csv"
[[ord]]
name = "e-redes"
region = "continent"
ord_entity = "EDIS"
receive = {receive}
send = {send}
"#
    )
}

/// See [`Scale`].
pub fn at_scale(n: u64) -> Scale {
    const CEMES: [(&str, &str); 3] = [("PT", "GAL"), ("PT", "EDP"), ("PT", "MOB")];
    let day = NaiveDate::from_ymd_opt(2024, 11, 4).unwrap_or_default();
    let generated = day.succ_opt().unwrap_or(day);
    let at = |h: u32, m: i64| {
        Utc.with_ymd_and_hms(2024, 11, 4, h, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::minutes(m)
    };
    let updated = at(6, 24 * 60);
    let cpes: Vec<Cpe> = (0..n)
        .filter_map(|i| Cpe::from_parts(2, 600_000_000 + i))
        .collect();
    let ord = DemoOrd {
        name: "e-redes",
        region: Region::Continent,
        entity: "EDIS",
        cpes: cpes.clone(),
    };
    let mut files = Vec::with_capacity(cpes.len() + 5);
    let mut cpes_csv = String::from("cpe,ord\n");
    let mut evses_csv = String::from("evse,cpe\n");
    let mut cdrs = Vec::new();
    let mut outputs = 0u64;
    for (k, cpe) in cpes.iter().enumerate() {
        let profile = ord_profile(Region::Continent, day, k as u64, 22);
        let file = ord_file(&ord, *cpe, profile, k as u64 + 1, generated);
        let name = file.path.rsplit('/').next().unwrap_or_default().to_string();
        files.push(DemoFile {
            path: format!("remote/from-ord/{name}"),
            bytes: file.bytes,
        });
        cpes_csv.push_str(&format!("{cpe},e-redes\n"));
        let cemes = 1 + (k * 7 + k / 3) % 3;
        outputs += 4 * cemes as u64;
        for c in 0..cemes {
            let evse = evse_id(cpe, c);
            evses_csv.push_str(&format!("{evse},{cpe}\n"));
            let start = at(13, ((k * 13 + c * 47) % 120) as i64);
            let minutes = 45 + ((k + c * 31) % 120) as i64;
            let milli_kwh = minutes * 7_000 / 60 + (k % 1000) as i64;
            cdrs.push(cdr(
                &format!("B-{k}-{c}"),
                CEMES[(k + c) % 3],
                &evse,
                start,
                minutes,
                milli_kwh,
                updated,
            ));
        }
    }
    let count = cdrs.len();
    let text = |path: &str, content: String| DemoFile {
        path: path.to_string(),
        bytes: content.into_bytes(),
    };
    files.push(text(
        "mobility/cdrs.json",
        json!({ "data": cdrs, "status_code": 1000 }).to_string(),
    ));
    files.push(text("registry/cpes.csv", cpes_csv));
    files.push(text("registry/evses.csv", evses_csv));
    files.push(text(
        "registry/cemes.csv",
        "ceme,cse_code,island_code,tariff_cycle\nPT-GAL,02,GALP,01\nPT-EDP,05,EDPC,02\nPT-MOB,07,MOBI,01\n".into(),
    ));
    files.push(text(
        "registry/tariff_overrides.csv",
        "cpe,ceme,tariff_cycle\n".into(),
    ));
    Scale {
        files,
        cdrs: count,
        outputs,
    }
}
