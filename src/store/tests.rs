//! The store's unit tests: migrations from every older version, the checksums, the ids, the ranges.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection};

use crate::fsutil::sha256_of;
use crate::ord_name;
use egme_ord_core::cpe::Cpe;
use egme_ord_core::filename::TariffCycle;
use egme_ord_core::ledger::PackSlice;
use egme_ord_core::ledger::{MobilityFileStatus, ReceivedStatus};
use egme_ord_core::mobility::{CemeId, Place, QuarterEnergy};
use egme_ord_core::profile::DayProfile;
use egme_ord_core::remote::SafeName;

use super::mobility::*;
use super::received::PROFILE_CPES;
use super::rows::*;
use super::schema::*;
use super::sent::*;
use super::sql::*;
use super::*;

/// The ledger at `p` after `sql` (its rows as an older version wrote them, and that version),
/// closed and opened again: migrated.
fn reopened_after(s: Store, p: &Path, sql: &str) -> Store {
    s.conn.execute_batch(sql).unwrap();
    drop(s);
    Store::open(p).unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
    (dir, s)
}

/// A mobility record of ORD `e`: 1.250 kWh in each quarter-hour starting at `starts`.
fn mobility(
    key: &str,
    cpe: Cpe,
    starts: impl IntoIterator<Item = DateTime<Utc>>,
) -> StoredMobility {
    StoredMobility {
        key: key.into(),
        last_updated: DateTime::from_timestamp(1_729_900_800, 0).unwrap(),
        ord: ord_name("e"),
        cpe,
        ceme: CemeId::new("PT", "MOB").unwrap(),
        credit_of: None,
        energy: starts
            .into_iter()
            .map(|start| QuarterEnergy {
                start,
                kwh: rust_decimal::Decimal::new(1_250, 3),
            })
            .collect(),
        source: "cdrs.json".into(),
        place: Some(Place::Cpe(cpe)),
    }
}

/// A record moved by a changed registry reads back at its new CPE and ORD (its checksum
/// holds), is found among the placed records, and marks the quarter-hours it left and joined;
/// a row that keeps no place (written before version 19) reads back as it was.
#[test]
fn a_mobility_record_moved_by_the_registry_reads_back_at_its_new_place() {
    let (_dir, mut s) = store();
    let (a, b): (Cpe, Cpe) = (
        "PT0002000123681633GX".parse().unwrap(),
        Cpe::from_parts(2, 555_000_111).unwrap(),
    );
    let t0 = DateTime::from_timestamp(1_729_900_800, 0).unwrap();
    let mut old = mobility("cdr:old", a, [t0]);
    old.place = None;
    ingest(&mut s, &[mobility("cdr:m", a, [t0]), old]);
    let placed = s.mobility_placed_from(t0.timestamp()).unwrap();
    assert_eq!(
        placed.len(),
        1,
        "only rows that keep their place: {placed:?}"
    );
    let day = NaiveDate::from_ymd_opt(2024, 10, 26).unwrap();
    let marks = s.dirty_max_id(&ord_name("f")).unwrap();
    s.move_mobility(&placed[0], &ord_name("f"), b, &[day])
        .unwrap();
    assert!(s.dirty_max_id(&ord_name("f")).unwrap() > marks);
    let range = (t0, t0 + chrono::Duration::hours(1));
    let at_f = s
        .mobility_between(&ord_name("f"), range.0, range.1)
        .unwrap();
    assert_eq!(at_f.len(), 1);
    assert_eq!(
        (at_f[0].cpe, at_f[0].place.clone()),
        (b, Some(Place::Cpe(a)))
    );
    let at_e = s
        .mobility_between(&ord_name("e"), range.0, range.1)
        .unwrap();
    assert_eq!(at_e.len(), 1, "the old row stays: {at_e:?}");
    assert_eq!((at_e[0].key.as_str(), &at_e[0].place), ("cdr:old", &None));
    assert_eq!(s.mobility_mapped_with().unwrap(), None);
    s.set_mobility_mapped_with("abc").unwrap();
    assert_eq!(s.mobility_mapped_with().unwrap().as_deref(), Some("abc"));
}

/// Records `records` as one applied mobility file.
fn ingest(s: &mut Store, records: &[StoredMobility]) {
    let at = DateTime::from_timestamp(1_729_900_800, 0).unwrap();
    let (status, report) = (MobilityFileStatus::Applied, "");
    s.record_mobility(
        "cdrs.json",
        1,
        0,
        Some(&sha256_of(b"x")),
        status,
        report,
        "",
        at,
        records,
        &[],
    )
    .unwrap();
}

fn write(name: &str) -> OutboundWrite {
    OutboundWrite {
        name: name.into(),
        sha256: sha256_of(name.as_bytes()),
        cpe: Cpe::parse("PT0002000123681633GX").unwrap(),
        supplier: "02".into(),
        tariff: TariffCycle::BiHourlyDaily,
        day: NaiveDate::from_ymd_opt(2024, 7, 5).unwrap(),
        content_hash: sha256_of(b"h"),
        at: Utc::now(),
        pack: Some(PackSlice {
            pack: "pack-0000000001.tar".into(),
            offset: 512,
            len: 3,
        }),
    }
}

#[test]
fn outbound_ids_are_gap_free_and_a_failed_write_uses_none() {
    let (_d, mut s) = store();
    let a = s
        .record_outbound(&ord_name("e"), 372, |id, prev| {
            Ok::<_, ()>(write(&format!("{id}-{prev}")))
        })
        .unwrap()
        .unwrap();
    assert_eq!((a.transmission_id, a.previous_id), (372, 371));
    assert!(s
        .record_outbound(&ord_name("e"), 372, |_, _| Err::<OutboundWrite, _>(
            "disk full"
        ))
        .unwrap()
        .is_err());
    let b = s
        .record_outbound(&ord_name("e"), 372, |id, prev| {
            Ok::<_, ()>(write(&format!("{id}-{prev}")))
        })
        .unwrap()
        .unwrap();
    assert_eq!((b.transmission_id, b.previous_id), (373, 372));
    assert_eq!(s.sent_files(&ord_name("e"), true).unwrap().len(), 2);
    assert_eq!(s.last_sent_id(&ord_name("e")).unwrap(), Some(373));
    assert_eq!(s.last_sent_id(&ord_name("other")).unwrap(), None);
    s.mark_delivered(a.id, Utc::now()).unwrap();
    assert_eq!(s.sent_files(&ord_name("e"), true).unwrap().len(), 1);
}

#[test]
fn a_rolled_back_batch_uses_no_id_and_a_committed_one_keeps_all() {
    let (_d, mut s) = store();
    let take = |s: &mut Store| {
        s.record_outbound(&ord_name("e"), 1, |id, prev| {
            Ok::<_, ()>(write(&format!("{id}-{prev}")))
        })
        .unwrap()
        .unwrap()
    };
    s.begin_batch().unwrap();
    take(&mut s);
    take(&mut s);
    s.rollback_batch();
    assert_eq!(s.sent_files(&ord_name("e"), false).unwrap().len(), 0);
    s.begin_batch().unwrap();
    let a = take(&mut s);
    // A write that fails inside a batch is undone on its own; the batch goes on.
    assert!(s
        .record_outbound(&ord_name("e"), 1, |_, _| Err::<OutboundWrite, _>(
            "disk full"
        ))
        .unwrap()
        .is_err());
    let b = take(&mut s);
    s.commit_batch().unwrap();
    assert_eq!((a.transmission_id, b.transmission_id), (1, 2));
    assert_eq!(s.sent_files(&ord_name("e"), false).unwrap().len(), 2);
}

#[test]
fn a_version_2_ledger_keeps_its_sent_files_as_files_of_their_own_and_records_new_ones_in_packs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    {
        // A ledger as version 2 left it, with one sent file.
        let c = Connection::open(&p).unwrap();
        c.execute_batch(MIGRATION_1).unwrap();
        c.execute_batch(MIGRATION_2).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute(
            "INSERT INTO sent_files (ord, name, sha256, transmission_id, previous_id, cpe, supplier, tariff, day, content_hash, written_at)
             VALUES ('e', 'old.sgl', ?1, 1, 0, 'PT0002000123681633GX', '02', '01', '2024-07-05', ?1, '2024-07-06T00:00:00Z')",
            [crate::fsutil::sha256_hex(b"old")],
        )
        .unwrap();
        c.execute("INSERT INTO sequences (ord, last_id) VALUES ('e', 1)", [])
            .unwrap();
    }
    let mut s = Store::open(&p).unwrap();
    let new = s
        .record_outbound(&ord_name("e"), 1, |_, _| Ok::<_, ()>(write("new.sgl")))
        .unwrap()
        .unwrap();
    let sent = s.sent_files(&ord_name("e"), false).unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[0].name.as_str(), &sent[0].pack), ("old.sgl", &None));
    assert_eq!(sent[1], new);
    assert_eq!(sent[1].transmission_id, 2);
    assert_eq!(sent[1].pack, write("new.sgl").pack);
}

#[test]
fn sent_names_and_packs_are_kept_short_and_a_version_12_ledger_is_compacted_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let mut s = Store::open(&p).unwrap();
    let canonical = |id: u64, _| {
        let mut w = write("");
        w.name = egme_ord_core::ledger::outbound_name(
            &w.supplier,
            w.tariff,
            w.cpe,
            w.day.succ_opt().unwrap(),
            id,
        );
        w.pack = Some(PackSlice {
            pack: egme_ord_core::ledger::pack_name(1),
            offset: 512,
            len: 3,
        });
        Ok::<_, ()>(w)
    };
    s.record_outbound(&ord_name("e"), 1, canonical)
        .unwrap()
        .unwrap();
    // A name and a pack of another form stay as they were.
    s.record_outbound(&ord_name("e"), 1, |_, _| Ok::<_, ()>(write("legacy.sgl")))
        .unwrap()
        .unwrap();
    let before = s.sent_files(&ord_name("e"), false).unwrap();
    let types = |c: &Connection| -> Vec<(String, String)> {
        c.prepare("SELECT typeof(name), typeof(pack) FROM sent_files ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let short = vec![
        ("blob".to_string(), "blob".to_string()),
        ("text".into(), "text".into()),
    ];
    assert_eq!(types(&s.conn), short);
    assert_eq!(before[0].name, canonical(1, 0).unwrap().name);
    assert_eq!(
        s.sent_name(&ord_name("e"), 1).unwrap(),
        Some(before[0].name.clone())
    );
    assert_eq!(s.sent_names_between(&ord_name("e"), 1, 2).unwrap().len(), 2);
    assert!(!s
        .mark_delivered_by_name(&ord_name("e"), (1, "other.sgl"), Utc::now())
        .unwrap());
    // The same rows as a version-12 ledger wrote them: text.
    let s = reopened_after(
        s,
        &p,
        &format!(
            "UPDATE sent_files SET name = '{}', pack = '{}' WHERE transmission_id = 1;
             PRAGMA user_version = 12;",
            before[0].name,
            egme_ord_core::ledger::pack_name(1)
        ),
    );
    assert_eq!(types(&s.conn), short);
    assert_eq!(
        s.sent_files(&ord_name("e"), false).unwrap(),
        before,
        "checksums hold, nothing changed"
    );
    assert!(s
        .mark_delivered_by_name(&ord_name("e"), (1, &before[0].name), Utc::now())
        .unwrap());
}

#[test]
fn sent_and_received_keys_are_kept_compact_and_a_version_14_ledger_is_compacted_to_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let mut s = Store::open(&p).unwrap();
    s.record_outbound(&ord_name("e"), 1, |_, _| Ok::<_, ()>(write("a.sgl")))
        .unwrap()
        .unwrap();
    let sha = sha256_of(b"ord file");
    let cpe = Cpe::parse("PT0002000123681633GX").unwrap();
    let mut file = received("in.sgl", Some(512));
    file.sha256 = Some(sha);
    file.cpe = Some(cpe);
    s.record_inbound(&file, &[]).unwrap();
    let types = |c: &Connection| -> Vec<String> {
        c.query_row(
            "SELECT typeof(s.cpe), typeof(s.day), typeof(r.sha256), typeof(r.cpe),
                    length(s.cpe) + length(s.day) + length(r.sha256) + length(r.cpe)
             FROM sent_files s, received_files r",
            [],
            |r| {
                Ok(vec![
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, i64>(4)?.to_string(),
                ])
            },
        )
        .unwrap()
    };
    let compact = ["blob", "blob", "blob", "blob", "48"]
        .map(String::from)
        .to_vec();
    assert_eq!(types(&s.conn), compact);
    let before = s.sent_files(&ord_name("e"), false).unwrap();
    let day = before[0].day;
    assert_eq!(s.sent_cpes(&ord_name("e"), day).unwrap(), vec![cpe]);
    assert_eq!(
        s.sent_files_of_cpe_day(&ord_name("e"), &cpe, day).unwrap(),
        before
    );
    assert!(s.seen_content(&ord_name("e"), &sha).unwrap());
    assert!(s.received_known(&ord_name("e"), "in.sgl", &sha).unwrap());
    assert_eq!(s.received(&ord_name("e")).unwrap()[0].2, Some(sha));
    s.conn
        .execute(
            "INSERT INTO days (ord, day, state) VALUES ('e', ?1, 'open')",
            [day_text(day)],
        )
        .unwrap();
    let status = s.status(&ord_name("e")).unwrap();
    assert_eq!(
        (status[0].day, status[0].files_pending),
        (day, 1),
        "{status:?}"
    );
    assert_eq!(s.outbox_pack_facts(&ord_name("e")).unwrap().len(), 1);
    // The same rows as version 14 wrote them: text.
    let s = reopened_after(
        s,
        &p,
        &format!(
            "UPDATE sent_files SET cpe = '{cpe}', day = '{day}';
             UPDATE received_files SET cpe = '{cpe}', sha256 = '{sha}';
             PRAGMA user_version = 14;"
        ),
    );
    assert_eq!(types(&s.conn), compact);
    assert_eq!(
        s.sent_files(&ord_name("e"), false).unwrap(),
        before,
        "checksums hold, nothing changed"
    );
    assert!(s.seen_content(&ord_name("e"), &sha).unwrap());
}

#[test]
fn a_packs_facts_say_closed_only_when_every_day_in_it_is_closed_and_delivered_only_when_every_file_is(
) {
    let (_d, mut s) = store();
    let day = |d| NaiveDate::from_ymd_opt(2024, 7, d).unwrap();
    for d in [5, 6] {
        s.record_outbound(&ord_name("e"), 1, |_, _| {
            let mut w = write(&format!("{d}.sgl"));
            w.day = day(d);
            Ok::<_, ()>(w)
        })
        .unwrap()
        .unwrap();
    }
    let facts = |s: &Store| {
        let f = s.outbox_pack_facts(&ord_name("e")).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        (f[0].last_id, f[0].all_closed_at, f[0].all_delivered)
    };
    assert_eq!(facts(&s), (2, None, false));
    for d in [5, 6] {
        s.conn
            .execute(
                "INSERT INTO days (ord, day, state) VALUES ('e', ?1, 'open')",
                [day_text(day(d))],
            )
            .unwrap();
    }
    let (first, second) = (
        "2024-08-06T21:30:00Z".parse::<DateTime<Utc>>().unwrap(),
        "2024-08-07T21:30:00Z".parse::<DateTime<Utc>>().unwrap(),
    );
    s.close_days(&ord_name("e"), &[day(5)], first).unwrap();
    assert_eq!(
        facts(&s),
        (2, None, false),
        "one day of the pack still open"
    );
    s.close_days(&ord_name("e"), &[day(6)], second).unwrap();
    for f in s.sent_files(&ord_name("e"), false).unwrap() {
        s.mark_delivered(f.id, second).unwrap();
    }
    assert_eq!(facts(&s), (2, Some(second), true));
}

#[test]
fn pending_files_are_counted_and_paged_through_the_pending_index_not_the_history() {
    let (_d, s) = store();
    for sql in [sent_query_sql(true), PENDING_COUNT_SQL.to_string()] {
        let mut stmt = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let values: [&dyn rusqlite::ToSql; 3] = [&"e", &0, &10];
        let n = stmt.parameter_count();
        let plan: Vec<String> = stmt
            .query_map(&values[..n], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("sent_pending")),
            "{sql}: {plan:?}"
        );
    }
}

fn received(name: &str, stored_offset: Option<u64>) -> ReceivedFile {
    ReceivedFile {
        ord: ord_name("e"),
        name: name.into(),
        size: 3,
        mtime: 0,
        sha256: Some(sha256_of(name.as_bytes())),
        status: ReceivedStatus::Applied,
        diagnostics: "[]".into(),
        cpe: None,
        first_day: None,
        last_day: None,
        transmission_id: None,
        previous_id: None,
        ntransm: None,
        received_at: Utc::now(),
        stored_path: Some("archive/pack-0000000002.tar".into()),
        stored_offset,
    }
}

#[test]
fn a_version_3_ledger_keeps_its_archive_files_and_the_next_received_id_only_grows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    {
        // A ledger as version 3 left it, with one archived file of its own.
        let c = Connection::open(&p).unwrap();
        for m in [MIGRATION_1, MIGRATION_2, MIGRATION_3] {
            c.execute_batch(m).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        c.execute(
            "INSERT INTO received_files (ord, name, size, mtime, sha256, status, diagnostics, received_at, stored_path)
             VALUES ('e', 'old.sgl', 3, 0, ?1, 'applied', '[]', '2024-07-06T00:00:00Z', 'archive/old.sgl')",
            [sha256_of(b"old").to_string()],
        )
        .unwrap();
    }
    let mut s = Store::open(&p).unwrap();
    assert_eq!(s.next_received_id().unwrap(), 2);
    // A batch rolled back gives its ids back: its rerun names the same pack.
    s.begin_batch().unwrap();
    s.record_inbound(&received("lost.sgl", Some(512)), &[])
        .unwrap();
    assert_eq!(s.next_received_id().unwrap(), 3);
    s.rollback_batch();
    assert_eq!(s.next_received_id().unwrap(), 2);
    s.begin_batch().unwrap();
    s.record_inbound(&received("new.sgl", Some(512)), &[])
        .unwrap();
    s.commit_batch().unwrap();
    assert_eq!(s.next_received_id().unwrap(), 3);
    let copies = s.received_copies(&ord_name("e")).unwrap();
    let kept: Vec<(&str, Option<&str>, Option<u64>, u64)> = copies
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.stored_path.as_deref(),
                c.stored_offset,
                c.size,
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("old.sgl", Some("archive/old.sgl"), None, 3),
            ("new.sgl", Some("archive/pack-0000000002.tar"), Some(512), 3)
        ]
    );
}

#[test]
fn readings_and_energy_are_kept_compressed_and_a_version_10_ledgers_rows_are_compressed_on_upgrade()
{
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
    let day = NaiveDate::from_ymd_opt(2024, 10, 26).unwrap();
    let mut profile = DayProfile::zeros(day, 96);
    for (i, r) in profile.readings.iter_mut().enumerate() {
        r.kwh = rust_decimal::Decimal::new(i as i64 * 137 % 5000, 3);
    }
    let start = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
    let record = StoredMobility {
        key: "cdr:X".into(),
        last_updated: start(0),
        ord: ord_name("e"),
        cpe,
        ceme: CemeId::new("PT", "MOB").unwrap(),
        credit_of: None,
        energy: (0..8)
            .map(|q| QuarterEnergy {
                start: start(q),
                kwh: rust_decimal::Decimal::new(1750, 3),
            })
            .collect(),
        source: "cdrs.json".into(),
        place: None,
    };
    {
        let mut s = Store::open(&p).unwrap();
        let mut file = received("a.sgl", Some(512));
        file.ord = ord_name("e");
        s.record_inbound(&file, &[(cpe, &profile)]).unwrap();
        ingest(&mut s, std::slice::from_ref(&record));
    }
    let c = Connection::open(&p).unwrap();
    let types = |c: &Connection| -> (String, String) {
        (
            c.query_row("SELECT typeof(readings) FROM ord_profiles", [], |r| {
                r.get(0)
            })
            .unwrap(),
            c.query_row("SELECT typeof(energy) FROM mobility_records", [], |r| {
                r.get(0)
            })
            .unwrap(),
        )
    };
    assert_eq!(types(&c), ("blob".into(), "blob".into()));
    let stored: usize = c
        .query_row("SELECT length(readings) FROM ord_profiles", [], |r| {
            r.get(0)
        })
        .unwrap();
    let json = serde_json::to_string(&profile).unwrap();
    assert!(
        stored * 4 < json.len(),
        "{stored} bytes from {}",
        json.len()
    );
    // As version 10 kept them: JSON text (the checksums were over the same text).
    c.execute("UPDATE ord_profiles SET readings = ?1", [&json])
        .unwrap();
    c.execute(
        "UPDATE mobility_records SET energy = ?1",
        [serde_json::to_string(&record.energy).unwrap()],
    )
    .unwrap();
    c.execute_batch(
        "ALTER TABLE sent_files DROP COLUMN pruned_at; ALTER TABLE received_files DROP COLUMN pruned_at;",
    )
    .unwrap();
    c.pragma_update(None, "user_version", 10).unwrap();
    let s = Store::open(&p).unwrap();
    assert_eq!(types(&c), ("blob".into(), "blob".into()));
    let (_, read) = s
        .profile_in_force(&ord_name("e"), &cpe, day)
        .unwrap()
        .unwrap();
    assert_eq!(read, profile);
    let all = s
        .mobility_between(&ord_name("e"), start(0), start(96))
        .unwrap();
    assert_eq!(all, [record]);
}

/// 2024-10-26T00:00:00Z and `secs` after.
fn span_at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_729_900_800 + secs, 0).unwrap()
}

/// Records of every span over nine days, alternately of the two CPEs, and a credit that cancels
/// one of them.
fn mobility_of_every_span(cpes: [Cpe; 2]) -> Vec<StoredMobility> {
    let at = span_at;
    let quarter = 900;
    let mut records = Vec::new();
    // (first quarter-hour, span) in seconds: within a day, across midnight, at and around
    // the long bound, days long; over nine days.
    let spans = [
        0,
        3_600,
        7 * 3_600,
        LONG_RECORD_SECS - quarter,
        LONG_RECORD_SECS,
    ];
    let spans = spans
        .into_iter()
        .chain([LONG_RECORD_SECS + quarter, 5 * 86_400]);
    for (i, span) in spans.enumerate() {
        for first in (0..9 * 86_400).step_by(5 * 3_600 + i * 1_800) {
            let n = records.len();
            let starts: BTreeSet<i64> = [first, first + span].into();
            let starts = starts.into_iter().map(|q| at(q - q % quarter));
            records.push(mobility(&format!("cdr:{n:05}"), cpes[n % 2], starts));
        }
    }
    // A credit cancels its original: neither is netted.
    let mut credit = records[3].clone();
    credit.key = "credit:00003".into();
    credit.credit_of = Some(records[3].key.clone());
    records.push(credit);
    records
}

/// The keys of the records (credits and what they cancel left out) of `cpe` (or any) whose
/// quarter-hours overlap `[from, to)`, sorted: what the ledger's queries must find.
fn overlapping_keys(
    records: &[StoredMobility],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cpe: Option<Cpe>,
) -> Vec<String> {
    let credited: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.credit_of.as_deref())
        .collect();
    let mut keys: Vec<String> = records
        .iter()
        .filter(|r| r.credit_of.is_none() && !credited.contains(r.key.as_str()))
        .filter(|r| cpe.is_none_or(|c| r.cpe == c))
        .filter(|r| {
            let (first, last) = (r.energy[0].start, r.energy[r.energy.len() - 1].start);
            first < to && last >= from
        })
        .map(|r| r.key.clone())
        .collect();
    keys.sort();
    keys
}

/// SQLite's plan of `sql` with `params`: one line per step.
fn query_plan(s: &Store, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
    let mut stmt = s
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let plan = stmt.query_map(params, |r| r.get(3)).unwrap();
    plan.collect::<Result<_, _>>().unwrap()
}

#[test]
fn a_days_mobility_is_found_in_a_bounded_range_and_the_long_records_through_their_own_index() {
    // Before version 16 a day's records were found with only an upper bound on their first
    // quarter-hour: each query read the ORD's whole history. The bounded query must find
    // exactly what the overlap says, for records of every span.
    let (_d, mut s) = store();
    let at = span_at;
    let cpes: [Cpe; 2] = [
        "PT0002000123681633GX".parse().unwrap(),
        "PT0002000100000000DM".parse().unwrap(),
    ];
    let records = mobility_of_every_span(cpes);
    ingest(&mut s, &records);
    let long: i64 = s
        .conn
        .query_row("SELECT count(*) FROM mobility_records INDEXED BY mobility_long WHERE ord = 'e' AND last_start - first_start > 172800", [], |r| r.get(0))
        .unwrap();
    assert!(long > 10, "{long} long records");
    let overlapping = |from, to, cpe| overlapping_keys(&records, at(from), at(to), cpe);
    let keys =
        |rows: Vec<StoredMobility>| -> Vec<String> { rows.into_iter().map(|r| r.key).collect() };
    for day in -1..11 {
        for (from, to) in [
            (day * 86_400, (day + 1) * 86_400),
            (day * 86_400 + 3_600, day * 86_400 + 5_400),
        ] {
            let want = overlapping(from, to, None);
            assert_eq!(
                keys(
                    s.mobility_between(&ord_name("e"), at(from), at(to))
                        .unwrap()
                ),
                want,
                "day {day}"
            );
            let one: BTreeSet<Cpe> = [cpes[1]].into();
            let want = overlapping(from, to, Some(cpes[1]));
            assert_eq!(
                keys(
                    s.mobility_of_cpes_between(&ord_name("e"), &one, at(from), at(to))
                        .unwrap()
                ),
                want,
                "day {day}"
            );
            let both: BTreeSet<Cpe> = cpes.into();
            let got = s.mobility_of_cpes_between(&ord_name("e"), &both, at(from), at(to));
            assert_eq!(keys(got.unwrap()), overlapping(from, to, None), "day {day}");
        }
    }
    assert!(!overlapping(3 * 86_400, 4 * 86_400, None).is_empty());
    // Both halves are searched by range: the first start bounded below and above, the long
    // records by their end.
    let sql = mobility_overlapping("mobility_by_range", "");
    let plan = query_plan(&s, &sql, params!["e", 0, 86_400]);
    assert!(
        plan.iter()
            .any(|p| p.contains("mobility_by_range (ord=? AND first_start>? AND first_start<?)")),
        "{plan:?}"
    );
    assert!(
        plan.iter()
            .any(|p| p.contains("mobility_long (ord=? AND last_start>?)")),
        "{plan:?}"
    );
    // A CPE's records by CPE and the day's range of first starts.
    let sql = mobility_overlapping("mobility_by_cpe", "AND cpe = ?4");
    let plan = query_plan(&s, &sql, params!["e", 0, 86_400, Compact(&cpes[0])]);
    let by_cpe = "mobility_by_cpe (ord=? AND cpe=? AND first_start>? AND first_start<?)";
    assert!(plan.iter().any(|p| p.contains(by_cpe)), "{plan:?}");
    let kept: (String, i64) = s
        .conn
        .query_row(
            "SELECT typeof(cpe), length(cpe) FROM mobility_records LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        kept,
        ("blob".into(), 7),
        "a record's CPE kept in its 7 bytes"
    );
    assert!(MIGRATION_16.contains(&format!("> {LONG_RECORD_SECS};")));
}

#[test]
fn a_version_17_ledgers_mobility_cpes_are_compacted_and_found_by_cpe() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let at = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
    let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
    let record = mobility("cdr:1", cpe, [at(4)]);
    {
        let mut s = Store::open(&p).unwrap();
        ingest(&mut s, std::slice::from_ref(&record));
        // As version 17 kept it: the CPE as text, no index by CPE.
        s.conn
            .execute_batch(&format!(
                "DROP INDEX mobility_by_cpe; UPDATE mobility_records SET cpe = '{cpe}'; PRAGMA user_version = 17;"
            ))
            .unwrap();
    }
    let s = Store::open(&p).unwrap();
    let (kind, index): (String, i64) = s
        .conn
        .query_row(
            "SELECT (SELECT typeof(cpe) FROM mobility_records),
                    (SELECT count(*) FROM sqlite_schema WHERE name = 'mobility_by_cpe')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), index), ("blob", 1));
    let one: BTreeSet<Cpe> = [cpe].into();
    assert_eq!(
        s.mobility_of_cpes_between(&ord_name("e"), &one, at(0), at(96))
            .unwrap(),
        std::slice::from_ref(&record)
    );
    assert_eq!(
        s.mobility_between(&ord_name("e"), at(0), at(96)).unwrap(),
        [record]
    );
}

#[test]
fn a_version_15_ledger_gains_the_long_mobility_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    drop(Store::open(&p).unwrap());
    let c = Connection::open(&p).unwrap();
    c.execute_batch("DROP INDEX mobility_long; PRAGMA user_version = 15;")
        .unwrap();
    let s = Store::open(&p).unwrap();
    let n: i64 = s
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'mobility_long'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    s.mobility_between(&ord_name("e"), Utc::now(), Utc::now())
        .unwrap();
}

/// Every page of the ledger file at `p` (after its last connection closed), with its number.
fn pages(p: &Path) -> Vec<(u64, Vec<u8>)> {
    let bytes = std::fs::read(p).unwrap();
    let size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    bytes
        .chunks(size)
        .enumerate()
        .map(|(i, page)| (i as u64 + 1, page.to_vec()))
        .collect()
}

#[test]
fn every_page_of_the_ledger_carries_its_checksum_and_a_flipped_byte_fails_the_query_that_reads_it()
{
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let at = |q: i64| DateTime::from_timestamp(1_729_900_800 + q * 900, 0).unwrap();
    let cpe: Cpe = "PT0002000123681633GX".parse().unwrap();
    let records: Vec<StoredMobility> = (0..2_000)
        .map(|i| mobility(&format!("cdr:{i:06}"), cpe, [at(i % 96)]))
        .collect();
    {
        let mut s = Store::open(&p).unwrap();
        ingest(&mut s, &records);
        assert_eq!(
            s.mobility_between(&ord_name("e"), at(0), at(96))
                .unwrap()
                .len(),
            2_000
        );
    }
    let all = pages(&p);
    assert!(all.len() > 20, "{} pages", all.len());
    assert_eq!(
        all[0].1[20],
        page_sums::RESERVE,
        "the header reserves the checksum"
    );
    for (pgno, page) in &all {
        assert!(page_sums::sealed(page, *pgno), "page {pgno}");
    }
    // Flip a byte in each leaf page of the range index in turn; whichever the query reads fails it (none is read as if intact).
    let index_pages: Vec<u64> = {
        let c = Connection::open(&p).unwrap();
        let mut stmt = c
            .prepare(
                "SELECT pageno FROM dbstat WHERE name = 'mobility_by_range' AND pagetype = 'leaf'",
            )
            .unwrap();
        let mapped = stmt.query_map([], |r| r.get(0)).unwrap();
        mapped.collect::<Result<_, _>>().unwrap()
    };
    assert!(index_pages.len() > 1, "{index_pages:?}");
    let intact = std::fs::read(&p).unwrap();
    let size = all[0].1.len();
    for pgno in index_pages {
        let mut bytes = intact.clone();
        let at_byte = (pgno as usize - 1) * size + size / 2;
        bytes[at_byte] ^= 0x10;
        std::fs::write(&p, &bytes).unwrap();
        let s = Store::open(&p).unwrap();
        let e = s
            .mobility_between(&ord_name("e"), at(0), at(96))
            .unwrap_err();
        assert!(
            e.to_string().contains("egme-ord recover"),
            "page {pgno}: {e}"
        );
        assert!(
            matches!(s.integrity_check(), Err(StoreError::Damaged { .. })),
            "page {pgno}"
        );
    }
}

#[test]
fn a_page_of_zeros_in_the_ledger_fails_the_query_that_reads_it_even_where_sqlite_would_read_zeros()
{
    // An overflow page of zeros is read by SQLite without complaint (a value's bytes turned
    // to zeros): the page checksum is what refuses it.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    let value: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    {
        let s = Store::open(&p).unwrap();
        s.conn.execute_batch("CREATE TABLE big (v BLOB)").unwrap();
        s.conn
            .execute("INSERT INTO big VALUES (?1)", [&value])
            .unwrap();
    }
    let overflow: Vec<u64> = {
        let c = Connection::open(&p).unwrap();
        let mut stmt = c
            .prepare("SELECT pageno FROM dbstat WHERE name = 'big' AND pagetype = 'overflow'")
            .unwrap();
        let mapped = stmt.query_map([], |r| r.get(0)).unwrap();
        mapped.collect::<Result<_, _>>().unwrap()
    };
    assert!(overflow.len() > 2, "{overflow:?}");
    let all = pages(&p);
    let size = all[0].1.len();
    let mut bytes = std::fs::read(&p).unwrap();
    let at = (overflow[1] as usize - 1) * size;
    bytes[at..at + size].fill(0);
    std::fs::write(&p, &bytes).unwrap();
    let s = Store::open(&p).unwrap();
    let read: rusqlite::Result<Vec<u8>> = s.conn.query_row("SELECT v FROM big", [], |r| r.get(0));
    let e = read.expect_err("a value with a page of zeros is not read");
    assert!(is_damage(&e), "{e}");
    assert!(matches!(
        s.integrity_check(),
        Err(StoreError::Damaged { .. })
    ));
}

#[test]
fn a_ledger_without_page_checksums_is_given_them_once_and_one_that_lost_them_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    {
        // As an earlier egme-ord made it: no bytes reserved in its pages.
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE before_17 (x); INSERT INTO before_17 VALUES (1), (2);",
        )
        .unwrap();
    }
    assert_eq!(pages(&p)[0].1[20], 0);
    {
        let s = Store::open(&p).unwrap();
        let n: i64 = s
            .conn
            .query_row("SELECT count(*) FROM before_17", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "its rows kept");
    }
    let all = pages(&p);
    assert_eq!(all[0].1[20], page_sums::RESERVE);
    assert!(all.iter().all(|(n, page)| page_sums::sealed(page, *n)));
    drop(Store::open_checked(&p).unwrap());
    // The header's reserve changed on disk (and page 1's checksum with it no longer checked):
    // refused, not read with its pages misplaced.
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[20] = 0;
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(Store::open(&p), Err(StoreError::Damaged { .. })));
}

#[test]
fn a_pruned_change_marks_id_is_never_given_again() {
    // A day nets the marks after the last id it saw: a pruned mark's id given to a new mark
    // would hide that change from it (and its correction would not be sent).
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let mark = |s: &Store| -> i64 {
        s.conn
            .execute("INSERT INTO dirty (ord, cpe, day) VALUES ('e', 'PT0002000123681633GX', '2024-10-26')", [])
            .unwrap();
        s.conn.last_insert_rowid()
    };
    mark(&s);
    let last = mark(&s);
    s.conn.execute("DELETE FROM dirty", []).unwrap();
    assert!(mark(&s) > last);
}

#[test]
fn reopening_keeps_the_schema_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.sqlite");
    drop(Store::open(&p).unwrap());
    drop(Store::open(&p).unwrap());
    let c = Connection::open(&p).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    assert!(matches!(
        Store::open(&p),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn docs_ledger_md_describes_every_table_of_the_ledger_and_no_other() {
    let (_dir, s) = store();
    let mut tables: Vec<String> = s
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/LEDGER.md")).unwrap();
    let section = doc
        .split("## Tables")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut documented: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    documented.sort();
    assert_eq!(
        documented, tables,
        "docs/LEDGER.md's table of tables against the ledger's schema"
    );
}

/// A listing of `names` where the files whose number ends in 4 changed size and those ending in 6
/// changed time since they were recorded (size 3, time 0).
fn listing_of(numbers: impl Iterator<Item = u32>) -> Vec<RemoteEntry> {
    numbers
        .map(|i| RemoteEntry {
            name: SafeName::new(&format!("f{i:04}.sgl")).unwrap(),
            size: if i % 10 == 4 { 4 } else { 3 },
            mtime: if i % 10 == 6 { 1 } else { 0 },
        })
        .collect()
}

/// Whether the file numbered `i` of [`listing_of`] was recorded (the even ones) unchanged.
fn recorded_unchanged(i: u32) -> bool {
    i.is_multiple_of(2) && i % 10 != 4 && i % 10 != 6
}

/// For each file of `listed` (from [`listing_of`]), whether it was recorded unchanged.
fn recorded_unchanged_among(listed: &[RemoteEntry]) -> Vec<bool> {
    listed
        .iter()
        .map(|e| recorded_unchanged(e.name.as_str()[1..5].parse().unwrap()))
        .collect()
}

#[test]
fn a_large_listing_is_told_received_in_one_pass_exactly_as_a_lookup_of_each_file_tells_it() {
    let (_d, mut s) = store();
    s.begin_batch().unwrap();
    for i in (0..200).step_by(2) {
        s.record_inbound(&received(&format!("f{i:04}.sgl"), Some(512)), &[])
            .unwrap();
    }
    // Another ORD's record under a name the listing holds tells nothing of this ORD's.
    let mut other = received("f0001.sgl", Some(512));
    other.ord = ord_name("a");
    s.record_inbound(&other, &[]).unwrap();
    s.commit_batch().unwrap();

    // 150 names (the ordered pass), then 10 (a lookup of each), from the middle of the range.
    for listed in [listing_of(0..150), listing_of(40..50)] {
        let told = s.received_among(&ord_name("e"), &listed).unwrap();
        let each: Vec<bool> = listed
            .iter()
            .map(|e| {
                s.seen_file(&ord_name("e"), e.name.as_str(), e.size, e.mtime)
                    .unwrap()
            })
            .collect();
        assert_eq!(told, each);
        assert_eq!(told, recorded_unchanged_among(&listed));
    }
    assert!(150 >= SCAN_FROM && 150 * LOOKUP_COST >= s.next_received_id().unwrap());
    const { assert!(10 < SCAN_FROM) };
}

#[test]
fn a_large_mobility_inbox_is_told_read_in_one_pass_exactly_as_a_lookup_of_each_file_tells_it() {
    let (_d, mut s) = store();
    for i in (0..200).step_by(2) {
        let name = format!("f{i:04}.sgl");
        s.record_mobility(
            &name,
            3,
            0,
            Some(&sha256_of(name.as_bytes())),
            MobilityFileStatus::Applied,
            "",
            "mobility/x",
            Utc::now(),
            &[],
            &[],
        )
        .unwrap();
    }
    for listed in [listing_of(0..150), listing_of(40..50)] {
        let told = s.mobility_among(&listed).unwrap();
        let each: Vec<bool> = listed
            .iter()
            .map(|e| {
                s.mobility_source_seen(e.name.as_str(), e.size, e.mtime)
                    .unwrap()
            })
            .collect();
        assert_eq!(told, each);
        assert_eq!(told, recorded_unchanged_among(&listed));
    }
}

#[test]
fn a_days_cpes_and_the_late_and_refused_counts_are_read_by_day_and_status_not_through_the_history()
{
    // Before version 20 these went through indexes that lead with the ORD only: every cycle read
    // the ORD's whole history once per open day and once per count.
    let (_d, s) = store();
    let day = params!["e", "2024-11-04"];
    let ord = params!["e"];
    for (sql, params, index) in [
        (PROFILE_CPES, day, "profiles_by_day (ord=? AND day=?)"),
        (
            super::received::LATE_COUNT,
            ord,
            "received_by_status (ord=? AND status=?)",
        ),
        (
            super::events::REJECTED_COUNT,
            ord,
            "received_by_status (ord=? AND status=?)",
        ),
    ] {
        let plan = query_plan(&s, sql, params);
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{sql}: {plan:?}"
        );
    }
}
