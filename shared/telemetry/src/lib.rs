//! Logs and metrics. `init_tracing` picks human-readable or JSON logs; [`Metrics`] holds every
//! Prometheus metric of the process in one registry that `/metrics` renders.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Log format: `Pretty` for a terminal, `Json` for production log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber; `RUST_LOG` overrides `default_filter`. Safe to call twice
/// (the second call is ignored), so tests can call it freely.
pub fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Every metric Scrip exports. Cloning shares the same underlying metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub transfers: IntCounter,
    pub transfers_refused: IntCounterVec,
    /// 1 when the last ledger audit found every invariant intact, 0 when it did not.
    pub audit_ok: IntGauge,
    pub audit_violations: IntGauge,
}

impl Metrics {
    /// Builds the registry. Registration only fails on duplicate names, which is a bug here.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("scrip".into()), None).expect("valid prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["method", "route", "status"],
        )
        .expect("metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("metric");
        let transfers =
            IntCounter::new("ledger_transfers_total", "Transfers committed").expect("metric");
        let transfers_refused = IntCounterVec::new(
            Opts::new(
                "ledger_transfers_refused_total",
                "Transfers refused, by reason",
            ),
            &["reason"],
        )
        .expect("metric");
        let audit_ok = IntGauge::new(
            "ledger_audit_ok",
            "1 when the last ledger audit found every invariant intact",
        )
        .expect("metric");
        let audit_violations = IntGauge::new(
            "ledger_audit_violations",
            "Invariant violations found by the last ledger audit",
        )
        .expect("metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(transfers.clone()),
            Box::new(transfers_refused.clone()),
            Box::new(audit_ok.clone()),
            Box::new(audit_violations.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics");
        Self {
            registry,
            http_requests,
            http_duration,
            transfers,
            transfers_refused,
            audit_ok,
            audit_violations,
        }
    }

    /// Registers a metric owned by another crate (the order book's, the clearing house's).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::warn!(%error, "metric not registered");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
