//! Logs and metrics.
//!
//! Logs go to standard error through `tracing`: readable lines by default, JSON lines with
//! `BESLUT_LOG_FORMAT=json`, filtered by `RUST_LOG` (default `info`).
//!
//! Metrics are Prometheus text at `/metrics`. Request counts and latencies are recorded as
//! requests happen; the gauges that describe the database (cases by state, outbox depth and
//! age, failed deliveries, decisions) are read from it at each scrape, so several nodes on one
//! database report the same truth.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Starts logging once per process; later calls do nothing.
pub fn init() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        let _ = if std::env::var("BESLUT_LOG_FORMAT").is_ok_and(|f| f == "json") {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
    });
}

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let recorder =
            PrometheusBuilder::new().set_buckets(&buckets).expect("fixed buckets are valid").build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests start several servers); the
        // handle still renders what this one records.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
