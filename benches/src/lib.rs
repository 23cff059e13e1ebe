//! Silt's whole-program benchmark harness: a node_exporter-like remote-write workload run
//! against Silt, VictoriaMetrics and Prometheus side by side (see `benches/README.md`).

pub mod compare;
pub mod counting;
pub mod du;
pub mod encode;
pub mod forecast;
pub mod forecast_baselines;
pub mod forecast_gen;
pub mod forecast_nab;
pub mod forecast_real;
pub mod harness;
pub mod queries;
pub mod query_report;
pub mod querybench;
pub mod rawhttp;
pub mod report;
pub mod results;
pub mod rng;
pub mod rules;
pub mod rules_check;
pub mod rules_gen;
pub mod rules_probe;
pub mod rules_report;
pub mod sender;
pub mod server;
pub mod slo;
pub mod verify;
pub mod workload;

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Seconds since the harness first asked (for log lines).
pub fn elapsed_secs() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}
