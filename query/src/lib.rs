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

/// Stack of every thread that parses or evaluates queries (the server's
/// Tokio workers and blocking pool, the evaluation helpers). Passes over a
/// query's tree recurse once per level, and the parser allows
/// [`promql::MAX_DEPTH`] levels; this leaves a release build
/// several times the room it needs there. Untouched stack costs no memory.
pub const STACK_BYTES: usize = 8 << 20;
