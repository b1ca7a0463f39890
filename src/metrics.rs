//! Prometheus metrics (prometheus-client) kept from cycle summaries, and the HTTP endpoint (axum on the daemon's tokio runtime): `/metrics`, `/healthz`, `/readyz`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::cycle::{CycleSummary, OrdSummary};
use egme_ord_core::event::EventKind;
use egme_ord_core::ledger::ReceivedStatus;
use egme_ord_core::ord_name::OrdName;
use egme_ord_core::planner::SendState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrdLabel {
    ord: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    ord: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceivedLabels {
    ord: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// A gauge of seconds since the epoch (or any whole number).
type IntGauge = Gauge<i64, std::sync::atomic::AtomicI64>;
/// A gauge of a fraction.
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series, registered once; labelled ones exist from the start for every configured ORD.
struct Series {
    events: Family<EventLabels, Counter>,
    received: Family<ReceivedLabels, Counter>,
    sent: Family<OrdLabel, Counter>,
    anomalies: Family<OrdLabel, Counter>,
    unreadable: Family<OrdLabel, Counter>,
    failures: Family<OrdLabel, Counter>,
    pending: Family<OrdLabel, IntGauge>,
    quarantined: Family<OrdLabel, IntGauge>,
    stuck: Family<OrdLabel, IntGauge>,
    missing: Family<OrdLabel, IntGauge>,
    late: Family<OrdLabel, IntGauge>,
    backoff: Family<OrdLabel, IntGauge>,
    backoff_until: Family<OrdLabel, IntGauge>,
    last_success: Family<OrdLabel, IntGauge>,
    last_daily_send: Family<OrdLabel, IntGauge>,
    mobility_records: Family<OutcomeLabel, Counter>,
    cycles: Counter,
    cycle_duration: Histogram,
    last_cycle_duration: FloatGauge,
    last_cycle: IntGauge,
    poll_interval: IntGauge,
}

/// How the daemon is doing, for `/healthz` and `/readyz`.
#[derive(Debug, Default)]
struct Health {
    /// When the cycle in flight last made progress (started a step; none between cycles).
    in_flight_since: Option<Instant>,
    /// Why the last cycle failed, if it did (ORD: first error).
    last_failures: Vec<String>,
    cycles: u64,
}

/// The daemon's metrics and health since it started.
pub struct Metrics {
    registry: Registry,
    series: Series,
    health: Mutex<Health>,
    /// A cycle in flight for longer than this makes `/healthz` fail (a hung cycle).
    hung_after: Duration,
}

impl Series {
    /// Every series, empty.
    fn new() -> Series {
        Series {
            events: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            anomalies: Family::default(),
            unreadable: Family::default(),
            failures: Family::default(),
            pending: Family::default(),
            quarantined: Family::default(),
            stuck: Family::default(),
            missing: Family::default(),
            late: Family::default(),
            backoff: Family::default(),
            backoff_until: Family::default(),
            last_success: Family::default(),
            last_daily_send: Family::default(),
            mobility_records: Family::default(),
            cycles: Counter::default(),
            cycle_duration: Histogram::new(exponential_buckets(0.25, 2.0, 14)),
            last_cycle_duration: FloatGauge::default(),
            last_cycle: IntGauge::default(),
            poll_interval: IntGauge::default(),
        }
    }

    /// The build and the series of files and anomalies, registered.
    fn register_files(&self, registry: &mut Registry) {
        registry.register(
            "build",
            "The running build: version and git revision",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "revision",
                    option_env!("EGME_ORD_REVISION").unwrap_or("unknown"),
                ),
            ]),
        );
        registry.register(
            "events",
            "Ledger events by ORD (`-`: not one ORD's) and kind",
            self.events.clone(),
        );
        registry.register(
            "files_received",
            "ORD files received, by outcome",
            self.received.clone(),
        );
        registry.register(
            "files_sent",
            "Files delivered to the ORD",
            self.sent.clone(),
        );
        registry.register(
            "anomalies",
            "Quarter-hours with mobility above the ORD's total, once per CPE-day version",
            self.anomalies.clone(),
        );
        registry.register(
            "files_unreadable",
            "ORD files that could not be read in a cycle (the others were received)",
            self.unreadable.clone(),
        );
        registry.register(
            "cycle_failures",
            "Cycles in which a step failed for the ORD",
            self.failures.clone(),
        );
        registry.register(
            "files_pending",
            "Files written and not yet delivered (end of the last cycle)",
            self.pending.clone(),
        );
        registry.register(
            "files_quarantined",
            "Rejected ORD files kept in the quarantine",
            self.quarantined.clone(),
        );
        registry.register(
            "files_stuck",
            "ORD files that could not be read in several cycles in a row",
            self.stuck.clone(),
        );
        registry.register(
            "ord_files_missing",
            "CPE-days the registry gives the ORD without an ORD file after expect_by (open days)",
            self.missing.clone(),
        );
        registry.register(
            "ord_files_late",
            "ORD files received for days already closed: archived, not applied",
            self.late.clone(),
        );
    }

    /// The series of backoff, timestamps and cycles, registered.
    fn register_cycles(&self, registry: &mut Registry) {
        registry.register(
            "backoff",
            "1 while the ORD is left out of cycles after a failure",
            self.backoff.clone(),
        );
        registry.register(
            "backoff_until_timestamp_seconds",
            "Until when the ORD is left out (0: not backing off)",
            self.backoff_until.clone(),
        );
        registry.register(
            "last_successful_cycle_timestamp_seconds",
            "Time of the last cycle without failure, per ORD (0: none yet)",
            self.last_success.clone(),
        );
        registry.register(
            "last_daily_send_timestamp_seconds",
            "Time of the last completed daily send, per ORD (0: none known)",
            self.last_daily_send.clone(),
        );
        registry.register(
            "mobility_records",
            "Mobility records by outcome",
            self.mobility_records.clone(),
        );
        registry.register("cycles", "Cycles run", self.cycles.clone());
        registry.register(
            "cycle_duration_seconds",
            "How long cycles took",
            self.cycle_duration.clone(),
        );
        registry.register(
            "last_cycle_duration_seconds",
            "Duration of the last cycle",
            self.last_cycle_duration.clone(),
        );
        registry.register(
            "last_cycle_timestamp_seconds",
            "When the last cycle ended",
            self.last_cycle.clone(),
        );
        registry.register(
            "poll_interval_seconds",
            "The configured time between cycles (alerts compare with it)",
            self.poll_interval.clone(),
        );
    }

    /// Every labelled series of `ords` (and the ORD-less `-` events) at 0 from the start: an
    /// alert on `time() - …` fires for an ORD that never succeeded.
    fn zero_for(&self, ords: &[OrdName]) {
        for ord in ords.iter().map(OrdName::as_str).chain(["-"]) {
            for kind in EventKind::ALL {
                let _ = self.events.get_or_create(&EventLabels {
                    ord: ord.to_string(),
                    kind: kind.as_str().to_string(),
                });
            }
        }
        for ord in ords {
            let o = OrdLabel {
                ord: ord.to_string(),
            };
            for status in ReceivedStatus::ALL {
                let _ = self.received.get_or_create(&ReceivedLabels {
                    ord: ord.to_string(),
                    status: status.as_str().to_string(),
                });
            }
            for family in [
                &self.sent,
                &self.anomalies,
                &self.unreadable,
                &self.failures,
            ] {
                let _ = family.get_or_create(&o);
            }
            for family in [
                &self.pending,
                &self.quarantined,
                &self.stuck,
                &self.missing,
                &self.late,
                &self.backoff,
                &self.backoff_until,
                &self.last_success,
                &self.last_daily_send,
            ] {
                let _ = family.get_or_create(&o);
            }
        }
        for outcome in ["applied", "stale", "late", "rejected"] {
            let _ = self.mobility_records.get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            });
        }
    }
}

impl Metrics {
    /// Metrics for `ords`, every labelled series at 0 (a `time() - …` alert fires for an ORD that
    /// never succeeded); `hung_after`: how long a cycle may take before `/healthz` fails.
    pub fn new(ords: &[OrdName], poll_interval: Duration, hung_after: Duration) -> Metrics {
        let mut registry = Registry::with_prefix("egme_ord");
        let series = Series::new();
        series.register_files(&mut registry);
        series.register_cycles(&mut registry);
        series.zero_for(ords);
        series
            .poll_interval
            .set(i64::try_from(poll_interval.as_secs()).unwrap_or(i64::MAX));
        Metrics {
            registry,
            series,
            health: Mutex::default(),
            hung_after,
        }
    }

    /// What the ledger knows before the first cycle: the last daily send of an ORD.
    pub fn set_last_daily_send(&self, ord: &OrdName, at: DateTime<Utc>) {
        let _ = self
            .series
            .last_daily_send
            .get_or_create(&OrdLabel {
                ord: ord.to_string(),
            })
            .set(at.timestamp());
    }

    /// A cycle starts or goes on to its next step (for `/healthz`: a cycle whose step takes too
    /// long is a hung daemon).
    pub fn cycle_progressed(&self) {
        if let Ok(mut h) = self.health.lock() {
            h.in_flight_since = Some(Instant::now());
        }
    }

    /// A cycle ended, `at` (wall clock) after `took`: its summary goes into the series.
    pub fn record(&self, s: &CycleSummary, took: Duration, at: DateTime<Utc>) {
        let series = &self.series;
        series.cycles.inc();
        series.cycle_duration.observe(took.as_secs_f64());
        series.last_cycle_duration.set(took.as_secs_f64());
        series.last_cycle.set(at.timestamp());
        for (kind, n) in [
            ("applied", s.mobility.records_applied),
            ("stale", s.mobility.records_stale),
            ("late", s.mobility.records_late),
            ("rejected", s.mobility.records_rejected),
        ] {
            series
                .mobility_records
                .get_or_create(&OutcomeLabel {
                    outcome: kind.into(),
                })
                .inc_by(n as u64);
        }
        for (ord, kind) in &s.events {
            series
                .events
                .get_or_create(&EventLabels {
                    ord: ord.clone(),
                    kind: kind.as_str().to_string(),
                })
                .inc();
        }
        let failures: Vec<String> = s
            .ords
            .iter()
            .filter_map(|o| self.record_ord(o, at))
            .collect();
        if let Ok(mut h) = self.health.lock() {
            h.in_flight_since = None;
            h.last_failures = failures;
            h.cycles += 1;
        }
    }

    /// One ORD's part of a cycle's summary into its series; its first error, if the cycle
    /// failed for it (for `/readyz`).
    fn record_ord(&self, o: &OrdSummary, at: DateTime<Utc>) -> Option<String> {
        let series = &self.series;
        let label = OrdLabel {
            ord: o.ord.to_string(),
        };
        for (status, n) in &o.received {
            series
                .received
                .get_or_create(&ReceivedLabels {
                    ord: o.ord.to_string(),
                    status: status.as_str().to_string(),
                })
                .inc_by(*n as u64);
        }
        series
            .sent
            .get_or_create(&label)
            .inc_by(o.files_delivered as u64);
        series
            .anomalies
            .get_or_create(&label)
            .inc_by(o.anomalies_new as u64);
        series
            .unreadable
            .get_or_create(&label)
            .inc_by(o.files_unreadable as u64);
        let backing_off = o.backoff_until.filter(|u| *u > at);
        series
            .backoff
            .get_or_create(&label)
            .set(i64::from(backing_off.is_some()));
        series
            .backoff_until
            .get_or_create(&label)
            .set(backing_off.map_or(0, |u| u.timestamp()));
        if o.send == SendState::BackingOff {
            return None;
        }
        series
            .pending
            .get_or_create(&label)
            .set(to_i64(o.files_pending));
        series
            .quarantined
            .get_or_create(&label)
            .set(to_i64(o.quarantined));
        series
            .missing
            .get_or_create(&label)
            .set(to_i64(o.ord_files_missing as u64));
        series
            .late
            .get_or_create(&label)
            .set(to_i64(o.ord_files_late));
        series
            .stuck
            .get_or_create(&label)
            .set(o.files_stuck.len() as i64);
        if o.days_sent > 0 {
            series
                .last_daily_send
                .get_or_create(&label)
                .set(at.timestamp());
        }
        if let Some(first) = o.errors.first() {
            series.failures.get_or_create(&label).inc();
            return Some(format!("{}: {first}", o.ord));
        }
        series
            .last_success
            .get_or_create(&label)
            .set(at.timestamp());
        None
    }

    /// The Prometheus text format (0.0.4, what `promtool check metrics` and every scraper read).
    pub fn render(&self) -> String {
        let mut open_metrics = String::new();
        // Encoding into a String cannot fail (fmt::Write for String never errs; the encoder's
        // own errors are only those of the writer).
        let _ = prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry);
        prometheus_text(&open_metrics)
    }

    /// `/healthz`: the process answers and no cycle has been in flight for longer than it may.
    fn healthz(&self) -> (StatusCode, String) {
        let since = self.health.lock().ok().and_then(|h| h.in_flight_since);
        match since.map(|s| s.elapsed()) {
            Some(t) if t > self.hung_after => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "a cycle step has been in flight for {} s (more than {} s): hung\n",
                    t.as_secs(),
                    self.hung_after.as_secs()
                ),
            ),
            _ => (StatusCode::OK, "ok\n".into()),
        }
    }

    /// `/readyz`: configuration, registry and ledger are open (they are, or `run` would not
    /// serve), and the last cycle did not fail.
    fn readyz(&self) -> (StatusCode, String) {
        let failures = self
            .health
            .lock()
            .map(|h| h.last_failures.clone())
            .unwrap_or_default();
        if failures.is_empty() {
            (StatusCode::OK, "ready\n".into())
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the last cycle failed:\n{}\n", failures.join("\n")),
            )
        }
    }
}

/// prometheus-client writes OpenMetrics text; the classic text format differs only in how a
/// counter's and an info's family are named (`x_total`, `x_info`, as their samples are), in
/// having no info type (a gauge of 1) and no `# EOF`.
fn prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                other => (name.to_string(), other),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The HTTP endpoint: `GET /metrics`, `/healthz`, `/readyz`; other paths 404, other methods 405.
/// Connections are served concurrently on the tokio runtime, so idle or slow clients never delay
/// a scrape.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route(
            "/healthz",
            get(|State(m): State<Arc<Metrics>>| async move { m.healthz() }),
        )
        .route(
            "/readyz",
            get(|State(m): State<Arc<Metrics>>| async move { m.readyz() }),
        )
        .with_state(metrics)
}

/// How the metrics endpoint bounds what clients can take: descriptors, memory and time.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections served at once; at the limit the oldest is closed for the new one.
    pub connections: usize,
    /// A request's head must arrive within this (slowloris).
    pub header_timeout: Duration,
    /// A whole connection (one request: keep-alive is off) ends after this.
    pub connection_timeout: Duration,
    /// The most a request's head may hold (a 10 MB request is refused).
    pub max_request_bytes: usize,
}

impl ServeLimits {
    /// Limits for a process allowed `nofile` descriptors: at most a quarter of them (and never more
    /// than 4,096) for metrics clients, so the cycle's work never starves for descriptors.
    pub fn for_descriptors(nofile: u64) -> ServeLimits {
        ServeLimits {
            connections: usize::try_from((nofile / 4).clamp(8, 4096)).unwrap_or(4096),
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(30),
            max_request_bytes: 16 * 1024,
        }
    }
}

/// Serves `router(metrics)` on `listener` within `limits`, until the runtime ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>, limits: ServeLimits) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let app = router(metrics);
    // The connections being served, oldest first. At the limit the oldest is closed to make room:
    // a scrape is answered in milliseconds, so the oldest is an idle client, and a new scrape is
    // always served however many idle connections someone holds open.
    let mut live: std::collections::VecDeque<tokio::task::AbortHandle> =
        std::collections::VecDeque::new();
    let mut shed_logged = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                // wait a little rather than spin.
                tracing::warn!(error = %e, "the metrics endpoint could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        live.retain(|h| !h.is_finished());
        if live.len() >= limits.connections {
            if let Some(oldest) = live.pop_front() {
                oldest.abort();
            }
            if !shed_logged {
                tracing::warn!(limit = limits.connections, %peer, "metrics connections at their limit: the oldest are closed to make room");
                shed_logged = true;
            }
        } else {
            shed_logged = false;
        }
        let service = TowerToHyperService::new(app.clone());
        let task = tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_request_bytes)
                .keep_alive(false);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            // A connection that outlives its timeout is dropped: nothing to tell its client.
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
        });
        live.push_back(task.abort_handle());
    }
}

async fn metrics_page(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::OrdSummary;
    use crate::ord_name;

    #[test]
    fn every_series_exists_from_the_start_and_counters_accumulate_per_ord() {
        let m = Metrics::new(
            &[ord_name("eda")],
            Duration::from_secs(300),
            Duration::from_secs(60),
        );
        let text = m.render();
        for series in [
            "egme_ord_last_successful_cycle_timestamp_seconds{ord=\"eda\"} 0",
            "egme_ord_events_total{ord=\"eda\",kind=\"missing-transmission\"} 0",
            "egme_ord_files_received_total{ord=\"eda\",status=\"rejected\"} 0",
            "egme_ord_backoff{ord=\"eda\"} 0",
            "egme_ord_build_info{version=",
        ] {
            assert!(text.contains(series), "{series}:\n{text}");
        }
        let mut s = CycleSummary::default();
        let mut o = OrdSummary {
            files_delivered: 4,
            anomalies: 3,
            anomalies_new: 1,
            ..OrdSummary::new(ord_name("eda"))
        };
        o.received.insert(ReceivedStatus::Applied, 2);
        s.ords.push(o);
        s.events
            .push(("eda".into(), EventKind::MissingTransmission));
        m.record(&s, Duration::from_millis(1500), Utc::now());
        m.record(&s, Duration::from_millis(250), Utc::now());
        let text = m.render();
        for series in [
            "egme_ord_files_received_total{ord=\"eda\",status=\"applied\"} 4",
            "egme_ord_files_sent_total{ord=\"eda\"} 8",
            "egme_ord_anomalies_total{ord=\"eda\"} 2",
            "egme_ord_events_total{ord=\"eda\",kind=\"missing-transmission\"} 2",
            "egme_ord_last_cycle_duration_seconds 0.25",
            "egme_ord_cycle_duration_seconds_count 2",
        ] {
            assert!(text.contains(series), "{series}:\n{text}");
        }
    }

    #[test]
    fn readyz_fails_after_a_failed_cycle_and_healthz_after_a_hung_one() {
        let m = Metrics::new(
            &[ord_name("eda")],
            Duration::from_secs(300),
            Duration::from_millis(50),
        );
        assert_eq!(m.readyz().0, StatusCode::OK);
        let mut s = CycleSummary::default();
        s.ords.push(OrdSummary {
            errors: vec!["intake: cannot connect".into()],
            ..OrdSummary::new(ord_name("eda"))
        });
        m.record(&s, Duration::from_secs(1), Utc::now());
        let (code, body) = m.readyz();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("eda: intake: cannot connect"), "{body}");
        m.cycle_progressed();
        assert_eq!(m.healthz().0, StatusCode::OK);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(m.healthz().0, StatusCode::SERVICE_UNAVAILABLE);
    }

    /// Every `egme_ord_…` name in `text`.
    fn names_in(text: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(i) = rest.find("egme_ord_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
        out
    }

    #[test]
    fn the_shipped_dashboard_and_alert_rules_name_only_series_the_daemon_exports() {
        let m = Metrics::new(
            &[ord_name("eda")],
            Duration::from_secs(300),
            Duration::from_secs(60),
        );
        let mut s = CycleSummary::default();
        s.ords.push(OrdSummary::new(ord_name("eda")));
        m.record(&s, Duration::from_secs(1), Utc::now());
        let exported: std::collections::BTreeSet<String> = m
            .render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect();
        for (file, text) in [
            (
                "config/grafana/egme-ord.json",
                include_str!("../config/grafana/egme-ord.json"),
            ),
            (
                "config/prometheus/egme-ord.rules.yml",
                include_str!("../config/prometheus/egme-ord.rules.yml"),
            ),
        ] {
            let named = names_in(text);
            assert!(!named.is_empty(), "{file}");
            for name in named {
                assert!(
                    exported.contains(&name),
                    "{file} names {name}, which is not exported"
                );
            }
        }
    }
}
