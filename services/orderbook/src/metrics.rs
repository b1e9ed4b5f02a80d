//! The exchange's Prometheus metrics, registered into the process's [`scrip_telemetry::Metrics`].

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts};

#[derive(Clone, Debug)]
pub struct ExchangeMetrics {
    /// Order commands (place, cancel, reduce) by outcome: `accepted` or the refusal's code.
    pub commands: IntCounterVec,
    pub trades: IntCounter,
    /// Time to match, settle and commit one batch of commands.
    pub batch_seconds: Histogram,
    /// Commands per committed batch (the group-commit factor).
    pub batch_size: Histogram,
    /// Resting orders per market.
    pub resting_orders: IntGaugeVec,
    /// Batches refused because the book and the ledger's plan disagreed (a bug; alert on it).
    pub broken_batches: IntCounter,
}

impl ExchangeMetrics {
    /// Builds the metrics and registers them. Registration only fails on duplicate names,
    /// which `Metrics::register` logs.
    pub fn new(metrics: &scrip_telemetry::Metrics) -> Self {
        let commands = IntCounterVec::new(
            Opts::new("exchange_commands_total", "Order commands by outcome"),
            &["outcome"],
        )
        .expect("metric");
        let trades = IntCounter::new("exchange_trades_total", "Trades settled").expect("metric");
        let broken_batches = IntCounter::new(
            "exchange_broken_batches_total",
            "Batches refused because the order book and the ledger's plan disagreed",
        )
        .expect("metric");
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "exchange_batch_duration_seconds",
                "Matching, settlement and commit of one batch of order commands",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("metric");
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("exchange_batch_size", "Order commands per committed batch")
                .buckets(vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                ]),
        )
        .expect("metric");
        let resting_orders = IntGaugeVec::new(
            Opts::new(
                "exchange_resting_orders",
                "Orders resting in the book, per market",
            ),
            &["market"],
        )
        .expect("metric");
        for collector in [
            Box::new(commands.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(trades.clone()),
            Box::new(batch_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(resting_orders.clone()),
            Box::new(broken_batches.clone()),
        ] {
            metrics.register(collector);
        }
        Self {
            commands,
            trades,
            batch_seconds,
            batch_size,
            resting_orders,
            broken_batches,
        }
    }
}
