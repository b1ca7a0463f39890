//! egme-ord: SGL meter-data exchange between the EGME (MOBI.E) and the ORDs; the pure core lives here.

pub mod apportion;
pub mod backup;
pub mod calendar;
pub mod check;
pub mod config;
pub mod cpe;
pub mod cycle;
pub mod daemon;
pub mod demo;
pub mod fence;
pub mod filename;
pub mod fsutil;
pub mod metrics;
pub mod mobility;
pub mod netting;
pub mod pack;
pub mod planner;
pub mod profile;
pub mod region;
pub mod registry;
pub mod sgl;
pub mod store;
pub mod transport;
pub mod verify;
