//! egme-ord's pure core: the SGL codec, the quarter-hour calendar, CPEs, file names, mobility allocation, the registry, the netting engine, the planner, the fence, the configuration model and the demo data — functions of their inputs, with no IO and no clock.

pub mod apportion;
pub mod backoff;
pub mod calendar;
pub mod check;
pub mod completeness;
pub mod config;
pub mod cpe;
pub mod day_report;
pub mod demo;
pub mod event;
pub mod fence;
pub mod filename;
pub mod known_hosts;
pub mod ledger;
pub mod mobility;
pub mod netting;
pub mod planner;
pub mod profile;
pub mod region;
pub mod registry;
pub mod remote;
pub mod report;
pub mod sgl;
pub mod tou;
pub mod verify;
pub mod versions;
