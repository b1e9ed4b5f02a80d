//! Logs and metrics. `init_tracing` picks human-readable or JSON logs; [`Metrics`] holds every
//! Prometheus metric of the process in one registry that `/metrics` renders.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
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
/// One check of an audit, as the public monitor shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckStatus {
    pub name: &'static str,
    pub about: &'static str,
    pub violations: usize,
}

/// What the last audit found, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditStatus {
    pub ran_at_us: i64,
    /// `full` (the whole journal read) or `incremental` (only what was written since).
    pub kind: &'static str,
    pub last_full_at_us: i64,
    pub duration_us: i64,
    pub accounts: usize,
    pub journal_lines: u64,
    pub checks: Vec<CheckStatus>,
}

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
    /// Violations found by the last audit, per check (zero sum, floors, demurrage once, ...).
    pub audit_check_violations: IntGaugeVec,
    /// The last audit's result per check, for the public invariant monitor.
    audit_status: std::sync::Arc<std::sync::Mutex<Option<AuditStatus>>>,
    pub clearing_runs: IntCounterVec,
    /// Of the last applied run, in units of account (observability only: money stays exact
    /// in the database; these are floats).
    pub clearing_gross_before: Gauge,
    pub clearing_cleared: Gauge,
    pub clearing_gross_after: Gauge,
    pub clearing_participants: IntGauge,
    pub clearing_duration: Histogram,
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
        let audit_check_violations = IntGaugeVec::new(
            Opts::new(
                "ledger_audit_check_violations",
                "Invariant violations found by the last ledger audit, per check",
            ),
            &["check"],
        )
        .expect("metric");
        let clearing_runs = IntCounterVec::new(
            Opts::new("clearing_runs_total", "Clearing runs by kind"),
            &["kind"],
        )
        .expect("metric");
        let gauge = |name: &str, help: &str| Gauge::new(name, help).expect("metric");
        let clearing_gross_before =
            gauge("clearing_gross_before", "Gross debt before the last run");
        let clearing_cleared = gauge("clearing_cleared", "Debt set off by the last run");
        let clearing_gross_after = gauge("clearing_gross_after", "Gross debt after the last run");
        let clearing_participants = IntGauge::new(
            "clearing_participants",
            "Businesses with debt set off in the last run",
        )
        .expect("metric");
        let clearing_duration = Histogram::with_opts(
            HistogramOpts::new("clearing_run_duration_seconds", "Clearing run duration")
                .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(transfers.clone()),
            Box::new(transfers_refused.clone()),
            Box::new(audit_ok.clone()),
            Box::new(audit_violations.clone()),
            Box::new(audit_check_violations.clone()),
            Box::new(clearing_runs.clone()),
            Box::new(clearing_gross_before.clone()),
            Box::new(clearing_cleared.clone()),
            Box::new(clearing_gross_after.clone()),
            Box::new(clearing_participants.clone()),
            Box::new(clearing_duration.clone()),
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
            audit_check_violations,
            audit_violations,
            audit_status: std::sync::Arc::default(),
            clearing_runs,
            clearing_gross_before,
            clearing_cleared,
            clearing_gross_after,
            clearing_participants,
            clearing_duration,
        }
    }

    /// Keeps the last audit's result for the public monitor.
    pub fn record_audit(&self, status: AuditStatus) {
        *self
            .audit_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
    }

    /// The last audit's result, if one ran.
    pub fn audit_status(&self) -> Option<AuditStatus> {
        self.audit_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Registers a metric owned by another crate (the order book's, the clearing house's).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::warn!(%error, "metric not registered");
        }
    }

    /// A counter family's total over all its labels, by its full name (with the `scrip_`
    /// prefix); `None` when no such counter is registered. Counters count events, so the
    /// float Prometheus keeps them in holds a whole number.
    pub fn counter_total(&self, name: &str) -> Option<u64> {
        let families = self.registry.gather();
        let family = families.iter().find(|f| f.name() == name)?;
        let total: f64 = family
            .metric
            .iter()
            .filter_map(|m| m.counter.as_ref().map(|c| c.value()))
            .sum();
        // Whole and non-negative by construction; `as` would saturate, never wrap.
        Some(total.max(0.0).round() as u64)
    }

    /// The last audit's verdict: `Some(true)` clean, `Some(false)` failing, `None` not run yet.
    pub fn audit_clean(&self) -> Option<bool> {
        match self.audit_ok.get() {
            1 => Some(true),
            0 if self.audit_violations.get() > 0 => Some(false),
            _ => None,
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
