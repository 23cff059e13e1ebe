//! Silt's query layer: the PromQL front end (series selectors for now) and
//! the Prometheus-compatible HTTP read API. This is the only crate that
//! turns engine results into Prometheus JSON; the engine knows nothing of
//! HTTP, JSON or PromQL.

pub mod api;
pub mod capacity;
pub mod eval;
pub mod forecast;
pub mod gofmt;
pub mod promql;
