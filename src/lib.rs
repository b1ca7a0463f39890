//! egme-ord: SGL meter-data exchange between the EGME (MOBI.E) and the ORDs — the shells (ledger, transports, cycle, daemon, metrics) around the pure core, `egme_ord_core`, which every shell names where it uses it.

pub mod backup;
pub mod cycle;
pub mod daemon;
pub mod fsutil;
pub mod metrics;
pub mod pack;
pub mod store;
pub mod transport;

/// Tests' ORD names, from their literals.
#[cfg(test)]
pub(crate) fn ord_name(name: &str) -> egme_ord_core::ord_name::OrdName {
    egme_ord_core::ord_name::OrdName::parse(name).unwrap()
}
