//! egme-ord: SGL meter-data exchange between the EGME (MOBI.E) and the ORDs — the shells (ledger, transports, cycle, daemon, metrics) around the pure core `egme_ord_core`, whose modules are re-exported here under their own names.

pub use egme_ord_core::{
    apportion, backoff, calendar, check, completeness, config, cpe, day_report, demo, event, fence,
    filename, known_hosts, ledger, mobility, netting, planner, profile, region, registry, remote,
    report, retention, sgl, tou, verify, versions,
};

pub mod backup;
pub mod cycle;
pub mod daemon;
pub mod fsutil;
pub mod metrics;
pub mod pack;
pub mod store;
pub mod transport;
