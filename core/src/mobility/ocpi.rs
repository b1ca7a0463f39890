//! OCPI 2.2.1 CDRs (one object, an array, or a response envelope) read into allocated mobility records.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use thiserror::Error;

use super::{allocate, CemeId, MobilityRecord, Place, Segment};

/// Longest session accepted (a longer one is a data error, not a charge).
pub const MAX_SESSION_DAYS: i64 = 7;

/// Largest energy accepted for one CDR or one charging-period dimension, in kWh: a 1 MW charger running
/// for the longest session is about 168,000 kWh, so more is a data error (and would overflow exact sums).
pub const MAX_CDR_KWH: i64 = 1_000_000;

/// A CDR file that is not a CDR document at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CdrFileError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error(
        "expected a CDR object, an array of CDRs or an OCPI envelope with \"data\", found {0}"
    )]
    Shape(&'static str),
}

/// One CDR that could not be used, with the reason (it is quarantined; the others go on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedCdr {
    pub index: usize,
    pub id: Option<String>,
    pub reason: String,
}

/// What a CDR file gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrBatch {
    pub records: Vec<MobilityRecord>,
    pub rejected: Vec<RejectedCdr>,
}

/// Reads CDRs; `quantum` is the preferred allocation step in kWh (the output precision).
pub fn read_cdrs(bytes: &[u8], quantum: Decimal) -> Result<CdrBatch, CdrFileError> {
    // The document is checked whole but kept as raw text; each CDR becomes a JSON tree only while it
    // is read (a day of 10,000 CDRs as one tree took ~100 MB).
    let json = |e: serde_json::Error| CdrFileError::Json(e.to_string());
    let doc: &RawValue = serde_json::from_slice(bytes).map_err(json)?;
    let items: Vec<&RawValue> = match first_byte(doc) {
        b'[' => serde_json::from_str(doc.get()).map_err(json)?,
        b'{' => {
            let map: BTreeMap<String, &RawValue> = serde_json::from_str(doc.get()).map_err(json)?;
            match map.get("data") {
                None => vec![doc],
                Some(data) => match first_byte(data) {
                    b'[' => serde_json::from_str(data.get()).map_err(json)?,
                    b'{' => vec![*data],
                    b'n' => Vec::new(),
                    _ => {
                        return Err(CdrFileError::Shape(
                            "an envelope whose \"data\" is neither an object nor an array",
                        ))
                    }
                },
            }
        }
        b'n' => return Err(CdrFileError::Shape("null")),
        b't' | b'f' => return Err(CdrFileError::Shape("a boolean")),
        b'"' => return Err(CdrFileError::Shape("a string")),
        _ => return Err(CdrFileError::Shape("a number")),
    };
    let mut batch = CdrBatch::default();
    for (index, raw) in items.into_iter().enumerate() {
        let item: Value = serde_json::from_str(raw.get()).map_err(json)?;
        match cdr_record(&item, quantum) {
            Ok(r) => batch.records.push(r),
            Err(reason) => batch.rejected.push(RejectedCdr {
                index,
                id: item.get("id").and_then(Value::as_str).map(str::to_string),
                reason,
            }),
        }
    }
    Ok(batch)
}

/// The first byte of a JSON value (its kind: `[`, `{`, `"`, `n`, `t`, `f`, or a number).
fn first_byte(v: &RawValue) -> u8 {
    v.get().trim_start().bytes().next().unwrap_or(b' ')
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    cur.as_str().filter(|s| !s.trim().is_empty())
}

fn time(v: &Value, path: &[&str]) -> Result<DateTime<Utc>, String> {
    let name = path.join(".");
    let s = text(v, path).ok_or_else(|| format!("missing {name}"))?;
    parse_time(s).ok_or_else(|| format!("{name}: expected an RFC 3339 time, found {s:?}"))
}

/// RFC 3339, also without an offset (OCPI times are UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(naive.and_utc())
}

/// A JSON number (or numeric string) as an exact decimal.
pub fn decimal(v: &Value) -> Option<Decimal> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Decimal::from_str(&s)
        .ok()
        .or_else(|| Decimal::from_scientific(&s).ok())
}

fn cdr_record(v: &Value, quantum: Decimal) -> Result<MobilityRecord, String> {
    if !v.is_object() {
        return Err("expected a CDR object".into());
    }
    let id = text(v, &["id"]).ok_or("missing id")?.to_string();
    let last_updated = time(v, &["last_updated"])?;
    let ceme = match (text(v, &["cdr_token", "country_code"]), text(v, &["cdr_token", "party_id"])) {
        (Some(c), Some(p)) => CemeId::new(c, p),
        _ => None,
    }
    .or_else(|| text(v, &["cdr_token", "contract_id"]).and_then(CemeId::from_contract_id))
    .ok_or("cannot tell the CEME: cdr_token has neither country_code + party_id nor an eMAID contract_id")?;
    let evse_id = text(v, &["cdr_location", "evse_id"]).map(str::to_string);
    let evse_uid = text(v, &["cdr_location", "evse_uid"]).map(str::to_string);
    if evse_id.is_none() && evse_uid.is_none() {
        return Err("missing cdr_location.evse_id and cdr_location.evse_uid".into());
    }
    let credit = v.get("credit").and_then(Value::as_bool).unwrap_or(false);
    if credit {
        let reference =
            text(v, &["credit_reference_id"]).ok_or("credit CDR without credit_reference_id")?;
        return Ok(MobilityRecord {
            key: format!("cdr:{id}"),
            last_updated,
            place: Place::Evse { evse_id, evse_uid },
            ceme,
            credit_of: Some(format!("cdr:{reference}")),
            energy: Vec::new(),
        });
    }
    let start = time(v, &["start_date_time"])?;
    let end = time(v, &["end_date_time"])?;
    if end < start {
        return Err(format!(
            "end_date_time {end} is before start_date_time {start}"
        ));
    }
    if end - start > Duration::days(MAX_SESSION_DAYS) {
        return Err(format!(
            "session lasts more than {MAX_SESSION_DAYS} days ({start} to {end})"
        ));
    }
    let total = v
        .get("total_energy")
        .and_then(decimal)
        .ok_or("missing or non-numeric total_energy")?;
    if total.is_sign_negative() && !total.is_zero() {
        return Err(format!("negative total_energy {total}"));
    }
    if total > Decimal::from(MAX_CDR_KWH) {
        return Err(format!(
            "total_energy {total} kWh is above the {MAX_CDR_KWH} kWh a session can hold"
        ));
    }
    let segments = segments(v, start, end)?;
    Ok(MobilityRecord {
        key: format!("cdr:{id}"),
        last_updated,
        place: Place::Evse { evse_id, evse_uid },
        ceme,
        credit_of: None,
        energy: allocate(total, &segments, quantum),
    })
}

/// The charging periods as segments: weighted by their energy when any period has one, else by duration.
fn segments(v: &Value, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Segment>, String> {
    let periods = match v.get("charging_periods") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err("charging_periods is not an array".into()),
    };
    let mut parsed: Vec<(DateTime<Utc>, Option<Decimal>)> = Vec::new();
    for (i, p) in periods.iter().enumerate() {
        let t = time(p, &["start_date_time"]).map_err(|e| format!("charging_periods[{i}]: {e}"))?;
        let dims = p
            .get("dimensions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let energy_of = |kind: &str| -> Result<Option<Decimal>, String> {
            let mut found = None;
            for d in dims
                .iter()
                .filter(|d| d.get("type").and_then(Value::as_str) == Some(kind))
            {
                let vol = d.get("volume").and_then(decimal).ok_or_else(|| {
                    format!("charging_periods[{i}]: {kind} without a numeric volume")
                })?;
                if vol.is_sign_negative() && !vol.is_zero() {
                    return Err(format!(
                        "charging_periods[{i}]: negative {kind} volume {vol}"
                    ));
                }
                if vol > Decimal::from(MAX_CDR_KWH) {
                    return Err(format!(
                        "charging_periods[{i}]: {kind} volume {vol} is above {MAX_CDR_KWH} kWh"
                    ));
                }
                found = Some(found.unwrap_or(Decimal::ZERO) + vol);
            }
            Ok(found)
        };
        let energy = match energy_of("ENERGY")? {
            Some(e) => Some(e),
            None => energy_of("ENERGY_IMPORT")?,
        };
        parsed.push((t, energy));
    }
    parsed.sort_by_key(|(t, _)| *t);
    if parsed.is_empty() {
        return Ok(vec![Segment {
            start,
            end,
            weight: Decimal::ONE,
        }]);
    }
    let by_energy = parsed.iter().any(|(_, e)| e.is_some_and(|e| !e.is_zero()));
    let mut out = Vec::new();
    // Periods are clamped to the session: a period stamped outside it (a clock error, or a hostile
    // file) must not stretch the allocation over years of quarter-hours.
    let clamp = |t: DateTime<Utc>| t.clamp(start, end);
    for (i, (t, energy)) in parsed.iter().enumerate() {
        let t = &clamp(*t);
        let seg_end = clamp(parsed.get(i + 1).map_or(end, |(next, _)| *next)).max(*t);
        let weight = if by_energy {
            energy.unwrap_or(Decimal::ZERO)
        } else {
            Decimal::from((seg_end - *t).num_milliseconds().max(0))
        };
        out.push(Segment {
            start: *t,
            end: seg_end,
            weight,
        });
    }
    if !by_energy && out.iter().all(|s| s.weight.is_zero()) {
        return Ok(vec![Segment {
            start,
            end,
            weight: Decimal::ONE,
        }]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example CDR of the OCPI 2.2.1 specification (energy only in total_energy, a TIME-only
    /// period, a token without party_id).
    pub const OCPI_EXAMPLE: &str = r#"{
      "country_code": "BE", "party_id": "BEC", "id": "12345",
      "start_date_time": "2015-06-29T21:39:09Z", "end_date_time": "2015-06-29T23:37:32Z",
      "cdr_token": { "uid": "012345678", "type": "RFID", "contract_id": "DE8ACC12E46L89" },
      "auth_method": "WHITELIST",
      "cdr_location": { "id": "LOC1", "name": "Gent Zuid", "address": "F.Rooseveltlaan 3A", "city": "Gent",
        "postal_code": "9000", "country": "BEL", "coordinates": { "latitude": "3.729944", "longitude": "51.047599" },
        "evse_uid": "3256", "evse_id": "BE*BEC*E041503003", "connector_id": "1",
        "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET", "connector_power_type": "AC_1_PHASE" },
      "currency": "EUR",
      "tariffs": [{ "country_code": "BE", "party_id": "BEC", "id": "12", "currency": "EUR",
        "elements": [{ "price_components": [{ "type": "TIME", "price": 2.00, "vat": 10.0, "step_size": 300 }] }],
        "last_updated": "2015-02-02T14:15:01Z" }],
      "charging_periods": [{ "start_date_time": "2015-06-29T21:39:09Z",
        "dimensions": [{ "type": "TIME", "volume": 1.973 }], "tariff_id": "12" }],
      "total_cost": { "excl_vat": 4.00, "incl_vat": 4.40 },
      "total_energy": 15.342, "total_time": 1.973,
      "total_time_cost": { "excl_vat": 4.00, "incl_vat": 4.40 },
      "last_updated": "2015-06-29T22:01:13Z"
    }"#;

    fn q() -> Decimal {
        Decimal::new(25, 5)
    }

    #[test]
    fn the_official_ocpi_example_is_allocated_from_total_energy() {
        let batch = read_cdrs(OCPI_EXAMPLE.as_bytes(), q()).unwrap();
        assert_eq!(batch.rejected, vec![]);
        let r = &batch.records[0];
        assert_eq!(r.key, "cdr:12345");
        assert_eq!(r.ceme.as_str(), "DE-8AC");
        assert_eq!(r.total_kwh(), Decimal::from_str("15.342").unwrap());
        assert_eq!(
            r.energy.first().unwrap().start.to_rfc3339(),
            "2015-06-29T21:30:00+00:00"
        );
        assert_eq!(
            r.energy.last().unwrap().start.to_rfc3339(),
            "2015-06-29T23:30:00+00:00"
        );
        assert_eq!(r.energy.len(), 9);
    }

    #[test]
    fn envelope_array_and_single_object_are_all_accepted() {
        let env = format!(
            r#"{{"data": [{OCPI_EXAMPLE}], "status_code": 1000, "timestamp": "2015-06-30T21:59:59Z"}}"#
        );
        assert_eq!(read_cdrs(env.as_bytes(), q()).unwrap().records.len(), 1);
        let arr = format!("[{OCPI_EXAMPLE}, {OCPI_EXAMPLE}]");
        assert_eq!(read_cdrs(arr.as_bytes(), q()).unwrap().records.len(), 2);
        assert!(read_cdrs(b"42", q()).is_err());
        assert!(read_cdrs(b"{not json", q()).is_err());
    }

    #[test]
    fn periods_with_energy_weight_the_allocation() {
        let cdr = r#"{"id":"a","last_updated":"2024-01-01T12:00:00Z","start_date_time":"2024-01-01T10:00:00Z",
          "end_date_time":"2024-01-01T10:30:00Z","cdr_token":{"country_code":"PT","party_id":"GAL"},
          "cdr_location":{"evse_id":"PT*MOB*E1"},"total_energy":10,
          "charging_periods":[{"start_date_time":"2024-01-01T10:00:00Z","dimensions":[{"type":"ENERGY","volume":8}]},
                              {"start_date_time":"2024-01-01T10:15:00Z","dimensions":[{"type":"ENERGY","volume":2}]}]}"#;
        let r = &read_cdrs(cdr.as_bytes(), q()).unwrap().records[0];
        let kwh: Vec<String> = r
            .energy
            .iter()
            .map(|e| e.kwh.normalize().to_string())
            .collect();
        assert_eq!(kwh, ["8", "2"]);
        assert_eq!(r.ceme.as_str(), "PT-GAL");
    }

    #[test]
    fn bad_cdrs_are_rejected_with_a_reason_and_the_rest_kept() {
        let arr = format!(
            r#"[{OCPI_EXAMPLE}, {{"id":"x"}}, {{"id":"neg","last_updated":"2024-01-01T00:00:00Z","start_date_time":"2024-01-01T00:00:00Z","end_date_time":"2024-01-01T01:00:00Z","cdr_token":{{"country_code":"PT","party_id":"GAL"}},"cdr_location":{{"evse_id":"E"}},"total_energy":-3}}]"#
        );
        let batch = read_cdrs(arr.as_bytes(), q()).unwrap();
        assert_eq!(batch.records.len(), 1);
        assert_eq!(batch.rejected.len(), 2);
        assert!(
            batch.rejected[0].reason.contains("last_updated"),
            "{:?}",
            batch.rejected
        );
        assert!(
            batch.rejected[1].reason.contains("negative"),
            "{:?}",
            batch.rejected
        );
    }

    #[test]
    fn credit_cdr_references_the_original() {
        let cdr = r#"{"id":"12345-C","credit":true,"credit_reference_id":"12345","last_updated":"2015-07-01T00:00:00Z",
          "cdr_token":{"country_code":"DE","party_id":"8AC"},"cdr_location":{"evse_uid":"3256"},"total_energy":-15.342}"#;
        let r = &read_cdrs(cdr.as_bytes(), q()).unwrap().records[0];
        assert_eq!(r.credit_of.as_deref(), Some("cdr:12345"));
        assert!(r.energy.is_empty());
    }

    /// Regression (fuzz `cdr_reader`, oom-73e65f96): a charging period stamped in the year 3500 made
    /// the previous period's segment run to it, and the allocation walked ~50 million quarter-hours.
    #[test]
    fn a_charging_period_far_outside_the_session_is_clamped_not_expanded() {
        let cdr = r#"{"id":"S-00-B","last_updated":"2024-10-28T06:00:00Z","start_date_time":"2024-10-27T15:05:00Z",
          "end_date_time":"2024-10-27T17:15:00Z","cdr_token":{"country_code":"PT","party_id":"GAL"},
          "cdr_location":{"evse_id":"PT*MOB*E1"},"total_energy":24.02,
          "charging_periods":[{"start_date_time":"2024-10-27T15:05:00Z","dimensions":[{"type":"ENERGY","volume":11.086}]},
                              {"start_date_time":"2024-10-27T16:05:00Z","dimensions":[{"type":"ENERGY","volume":11.086}]},
                              {"start_date_time":"3500-10-27T17:05:00Z","dimensions":[{"type":"ENERGY","volume":1.848}]}]}"#;
        let r = &read_cdrs(cdr.as_bytes(), q()).unwrap().records[0];
        assert_eq!(r.total_kwh(), Decimal::from_str("24.02").unwrap());
        let last = r.energy.last().unwrap().start.to_rfc3339();
        assert_eq!(last, "2024-10-27T17:15:00+00:00");
        assert!(r.energy.len() <= 10, "{} quarter-hours", r.energy.len());
    }

    /// Regression: an absurd energy would overflow the exact decimal sums; it is a rejected CDR instead.
    #[test]
    fn an_energy_beyond_what_a_session_can_hold_is_rejected_not_overflowed() {
        for (total, volume) in [("7.9e28", "1"), ("12", "79228162514264337593543950335")] {
            let cdr = format!(
                r#"{{"id":"big","last_updated":"2024-01-01T12:00:00Z","start_date_time":"2024-01-01T10:00:00Z",
                  "end_date_time":"2024-01-01T10:30:00Z","cdr_token":{{"country_code":"PT","party_id":"GAL"}},
                  "cdr_location":{{"evse_id":"PT*MOB*E1"}},"total_energy":{total},
                  "charging_periods":[{{"start_date_time":"2024-01-01T10:00:00Z","dimensions":[{{"type":"ENERGY","volume":{volume}}}]}}]}}"#
            );
            let batch = read_cdrs(cdr.as_bytes(), q()).unwrap();
            assert_eq!(batch.records.len(), 0, "{total} / {volume}");
            assert!(
                batch.rejected[0].reason.contains("above"),
                "{:?}",
                batch.rejected
            );
        }
    }
}
