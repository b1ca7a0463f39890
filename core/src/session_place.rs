//! Where a charging session belongs (pure): its CPE and ORD by the dated registry and the config, and the local days of that ORD its quarter-hours fall on.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::calendar::day_of_instant;
use crate::config::{Config, OrdConfig};
use crate::cpe::Cpe;
use crate::mobility::{CemeId, Place, QuarterEnergy};
use crate::registry::Registry;

/// The local days of `ord` that quarter-hours `energy` fall on (in its time zone and label
/// convention).
pub fn days_at(energy: &[QuarterEnergy], ord: &OrdConfig) -> BTreeSet<NaiveDate> {
    let (tz, convention) = (ord.schedule.tz, ord.dialect.time_convention);
    energy
        .iter()
        .map(|q| day_of_instant(tz, convention, q.start))
        .collect()
}

/// The CPE and configured ORD of a session at `place` that starts at `start`, for CEME `ceme`:
/// the registry's rows in force on the session's day as the ORD that would serve it counts days
/// decide. `Ok(None)`: an ORD another instance serves (`[registry] other_ords`); `Err`: why it
/// cannot be mapped (an unknown place, an ORD not configured, no supplier for the CEME that day).
pub fn place_session<'c>(
    config: &'c Config,
    registry: &Registry,
    place: &Place,
    start: DateTime<Utc>,
    ceme: &CemeId,
) -> Result<Option<(Cpe, &'c OrdConfig)>, String> {
    let fallback = config.ords.first().map(|o| o.schedule.tz);
    let (cpe, ord_name) = registry.place_on(place, |ord| match config.ord(ord) {
        Some(o) => day_of_instant(o.schedule.tz, o.dialect.time_convention, start),
        None => fallback.map_or(start.date_naive(), |tz| {
            start.with_timezone(&tz).date_naive()
        }),
    })?;
    if config.registry.other_ords.iter().any(|o| o == ord_name) {
        return Ok(None);
    }
    let ord = config
        .ord(ord_name)
        .ok_or_else(|| format!("ORD {ord_name} is not configured"))?;
    let day = day_of_instant(ord.schedule.tz, ord.dialect.time_convention, start);
    registry.supplier(&cpe, ceme, ord.region, day)?;
    Ok(Some((cpe, ord)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use crate::registry::RegistryTexts;
    use chrono::TimeZone;

    fn text(files: &[demo::DemoFile], path: &str) -> String {
        let f = files.iter().find(|f| f.path.ends_with(path)).unwrap();
        String::from_utf8(f.bytes.clone()).unwrap()
    }

    #[test]
    fn a_session_goes_to_its_evses_cpe_and_ord_another_instances_ord_is_left_and_an_unknown_place_refused(
    ) {
        let mut toml = demo::config_toml("20:00", "0s");
        toml = toml.replacen("[registry]", "[registry]\nother_ords = [\"eem\"]", 1);
        let config = Config::parse(&toml, std::path::Path::new("/d/egme-ord.toml")).unwrap();
        let files = demo::registry_files();
        let (cpes, evses, cemes) = (
            text(&files, "cpes.csv"),
            text(&files, "evses.csv"),
            text(&files, "cemes.csv"),
        );
        let texts = RegistryTexts {
            evses: ("evses.csv", &evses),
            cpes: ("cpes.csv", &cpes),
            cemes: ("cemes.csv", &cemes),
            overrides: None,
        };
        let registry = Registry::parse(&texts, &["e-redes", "eda", "eem"]).unwrap();
        let ords = demo::ords();
        let ceme = CemeId::new("PT", "GAL").unwrap();
        let at_evse = |cpe: &Cpe| Place::Evse {
            evse_id: Some(demo::evse_id(cpe, 1)),
            evse_uid: None,
        };
        // 23:30 UTC on 26 October is 00:30 on the 27th in Lisbon (summer time, UTC+1): the
        // ORD's day counts, not UTC's.
        let start = Utc.with_ymd_and_hms(2024, 10, 26, 23, 30, 0).unwrap();
        let (cpe, ord) =
            place_session(&config, &registry, &at_evse(&ords[0].cpes[0]), start, &ceme)
                .unwrap()
                .unwrap();
        assert_eq!((cpe, ord.name.as_str()), (ords[0].cpes[0], "e-redes"));
        let energy = [QuarterEnergy {
            start,
            kwh: rust_decimal::Decimal::ONE,
        }];
        assert_eq!(
            days_at(&energy, ord).into_iter().collect::<Vec<_>>(),
            [NaiveDate::from_ymd_opt(2024, 10, 27).unwrap()]
        );
        // EEM is served by another instance: left to it.
        let eem = ords.iter().find(|o| o.name == "eem").unwrap();
        assert_eq!(
            place_session(&config, &registry, &at_evse(&eem.cpes[0]), start, &ceme).unwrap(),
            None
        );
        // An EVSE the registry does not know: refused, with why.
        let unknown = Place::Evse {
            evse_id: Some("PT*MOB*E999*1".into()),
            evse_uid: None,
        };
        assert!(place_session(&config, &registry, &unknown, start, &ceme).is_err());
    }
}
