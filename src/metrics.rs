//! Prometheus metrics: counters per ORD taken from cycle summaries, served as text on an optional address.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cycle::CycleSummary;

#[derive(Debug, Default)]
struct State {
    received: BTreeMap<(String, String), u64>,
    sent: BTreeMap<String, u64>,
    anomalies: BTreeMap<String, u64>,
    failures: BTreeMap<String, u64>,
    unreadable: BTreeMap<String, u64>,
    stuck: BTreeMap<String, u64>,
    last_success: BTreeMap<String, i64>,
    cycles: u64,
    last_cycle_millis: u128,
    mobility_records: BTreeMap<String, u64>,
}

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    pub fn record(&self, s: &CycleSummary, took: Duration, at: DateTime<Utc>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        st.cycles += 1;
        st.last_cycle_millis = took.as_millis();
        for (kind, n) in [
            ("applied", s.mobility.records_applied),
            ("stale", s.mobility.records_stale),
            ("late", s.mobility.records_late),
            ("rejected", s.mobility.records_rejected),
        ] {
            *st.mobility_records.entry(kind.to_string()).or_default() += n as u64;
        }
        for o in &s.ords {
            for (status, n) in &o.received {
                *st.received
                    .entry((o.ord.clone(), status.as_str().to_string()))
                    .or_default() += *n as u64;
            }
            *st.sent.entry(o.ord.clone()).or_default() += o.files_delivered as u64;
            *st.anomalies.entry(o.ord.clone()).or_default() += o.anomalies as u64;
            *st.unreadable.entry(o.ord.clone()).or_default() += o.files_unreadable as u64;
            if !o.skipped_for_backoff {
                st.stuck.insert(o.ord.clone(), o.files_stuck.len() as u64);
            }
            if !o.errors.is_empty() {
                *st.failures.entry(o.ord.clone()).or_default() += 1;
            } else if !o.skipped_for_backoff {
                st.last_success.insert(o.ord.clone(), at.timestamp());
            }
        }
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let Ok(st) = self.state.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            "egme_ord_files_received_total",
            "counter",
            "ORD files received, by outcome (applied, duplicate, stale, rejected, late).",
        );
        let mut body = String::new();
        for ((ord, status), n) in &st.received {
            let _ = writeln!(
                body,
                "egme_ord_files_received_total{{ord=\"{ord}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(&body);
        let simple = |out: &mut String,
                      name: &str,
                      help: &str,
                      values: &BTreeMap<String, u64>,
                      kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (ord, n) in values {
                let _ = writeln!(out, "{name}{{ord=\"{ord}\"}} {n}");
            }
        };
        simple(
            &mut out,
            "egme_ord_files_sent_total",
            "Files delivered to the ORD.",
            &st.sent,
            "counter",
        );
        simple(
            &mut out,
            "egme_ord_anomalies_total",
            "Quarter-hours with mobility above the ORD's total, per send.",
            &st.anomalies,
            "counter",
        );
        simple(
            &mut out,
            "egme_ord_files_unreadable_total",
            "ORD files that could not be read in a cycle (vanished, no permission); the others were received.",
            &st.unreadable,
            "counter",
        );
        simple(
            &mut out,
            "egme_ord_files_stuck",
            "ORD files that could not be read in several cycles in a row (last cycle).",
            &st.stuck,
            "gauge",
        );
        simple(
            &mut out,
            "egme_ord_cycle_failures_total",
            "Cycles in which a step failed for the ORD.",
            &st.failures,
            "counter",
        );
        let last: BTreeMap<String, u64> = st
            .last_success
            .iter()
            .map(|(k, v)| (k.clone(), (*v).max(0) as u64))
            .collect();
        simple(
            &mut out,
            "egme_ord_last_success_timestamp_seconds",
            "Time of the last cycle without failure, per ORD.",
            &last,
            "gauge",
        );
        let _ = writeln!(out, "# HELP egme_ord_mobility_records_total Mobility records by outcome.\n# TYPE egme_ord_mobility_records_total counter");
        for (kind, n) in &st.mobility_records {
            let _ = writeln!(
                out,
                "egme_ord_mobility_records_total{{outcome=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP egme_ord_cycles_total Cycles run.\n# TYPE egme_ord_cycles_total counter\negme_ord_cycles_total {}", st.cycles);
        let _ = writeln!(
            out,
            "# HELP egme_ord_last_cycle_duration_seconds Duration of the last cycle.\n# TYPE egme_ord_last_cycle_duration_seconds gauge\negme_ord_last_cycle_duration_seconds {}.{:03}",
            st.last_cycle_millis / 1000,
            st.last_cycle_millis % 1000
        );
        out
    }
}

/// Serves `metrics` over HTTP on `addr` (any path) until `stop` is set.
pub fn serve(
    addr: &std::net::SocketAddr,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 2048];
                    let _ = stream.read(&mut buf);
                    let body = metrics.render();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::OrdSummary;

    #[test]
    fn counters_accumulate_per_ord() {
        let m = Metrics::default();
        let mut s = CycleSummary::default();
        let mut o = OrdSummary {
            ord: "eda".into(),
            files_delivered: 4,
            anomalies: 1,
            ..OrdSummary::default()
        };
        o.received.insert(crate::store::ReceivedStatus::Applied, 2);
        s.ords.push(o);
        m.record(&s, Duration::from_millis(1500), Utc::now());
        m.record(&s, Duration::from_millis(250), Utc::now());
        let text = m.render();
        assert!(
            text.contains("egme_ord_files_received_total{ord=\"eda\",status=\"applied\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("egme_ord_files_sent_total{ord=\"eda\"} 8"),
            "{text}"
        );
        assert!(
            text.contains("egme_ord_last_cycle_duration_seconds 0.250"),
            "{text}"
        );
    }
}
