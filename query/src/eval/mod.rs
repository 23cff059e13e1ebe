//! The PromQL evaluator: runs a parsed expression ([`crate::promql::ast`])
//! against an [`engine::Db`] snapshot, with Prometheus 3 semantics.
//!
//! Entry points: [`instant_query`] and [`range_query`]. Both take an
//! [`Arc<engine::Db>`], the syntax tree and [`QueryOptions`], and return a
//! [`QueryOutput`] (the [`Value`] plus warnings, infos and statistics) or an
//! [`EvalError`] whose [`EvalError::error_type`] is the API's `errorType`.
//!
//! How it evaluates: like Prometheus, every node is evaluated once over the
//! whole step grid `start, start+step, ..., end` (an instant query is a grid
//! of one step). Selectors load each series once, over the union of the
//! windows all steps need, and roll up across steps with two cursors over
//! the sorted samples; range-vector functions run per series across all
//! steps (spread over cores once a query has run for half a millisecond),
//! most of them with state carried from window to window (`rollup`).
//! Instant vectors flow between nodes as series with one point per step at
//! which they have a value; scalars as one value per step.
//!
//! Module map: `evaluator` (the node dispatch, subqueries, the query
//! context with limits), `selector` (storage reads, lookback, staleness,
//! `offset`, `@`, range windows), `binary` (operators and vector matching),
//! `aggregate` (`sum` ... `limit_ratio`), `call` (function wiring: the
//! pure functions live in `functions`), `rollup` (per-series kernels of
//! the common range functions), `info` (`info()`), `pool` (helper
//! threads for per-series work), `annotations`, `value`, `error`.
//!
//! Limits: [`EngineOptions::timeout`] (checked per series and every 256
//! steps → [`EvalError::Timeout`]), [`EngineOptions::max_samples`] (samples
//! held at once: raw samples of the series being read plus every node's
//! result while its parent runs → [`EvalError::TooManySamples`]),
//! [`EngineOptions::max_series`] (series selected by the query →
//! [`EvalError::TooManySeries`]) and [`QueryOptions::cancel`]
//! ([`EvalError::Canceled`]).
//!
//! Always on (as in the conformance runner's Prometheus configuration):
//! delayed `__name__` removal, experimental functions, duration
//! expressions, `anchored`/`smoothed` selectors, `fill` modifiers.

mod aggregate;
mod annotations;
mod binary;
mod call;
mod error;
mod evaluator;
mod fold;
pub mod functions;
mod groups;
mod info;
mod pool;
mod rollup;
mod selector;
mod value;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::promql::ast::Expr;

pub use error::EvalError;
pub(crate) use evaluator::cores;
pub(crate) use pool::with_helpers;
pub use value::{Point, Sample, Series, Value};

/// Engine-wide settings. `Default` gives Prometheus's defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`5m`).
    pub lookback_delta: Duration,
    /// Most samples held in memory at once by one query
    /// (`--query.max-samples`, 50,000,000).
    pub max_samples: usize,
    /// Most series one query may select (`usize::MAX`: no limit).
    pub max_series: usize,
    /// Query deadline (`--query.timeout`, 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`x[10m:]`): Prometheus's
    /// global evaluation interval (1m).
    pub default_subquery_step: Duration,
    /// Worker threads for per-series work (0: the machine's cores).
    pub parallelism: usize,
    /// Delayed name removal (Prometheus's `promql-delayed-name-removal`
    /// feature, off by default there as here): functions and operators
    /// that drop the metric name only mark it, and marked names are
    /// dropped when the evaluation ends, so `label_replace`, `by
    /// (__name__)` and set operators still see them. Off, each node drops
    /// the names it drops at once, and series that become equal fail or
    /// merge there.
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            max_series: usize::MAX,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            parallelism: 0,
            delayed_name_removal: false,
        }
    }
}

/// Per-query settings.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub engine: EngineOptions,
    /// The API's `lookback_delta` parameter; overrides the engine's.
    pub lookback_delta: Option<Duration>,
    /// The query text, used to give annotations their `(line:col)`
    /// position; empty leaves positions out.
    pub query_text: String,
    /// Set to `true` from another thread to cancel the query.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What one query touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples read from storage.
    pub samples_loaded: u64,
    /// Series selected from storage.
    pub series_touched: u64,
    /// Most samples held in memory at once.
    pub peak_samples: u64,
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    pub value: Value,
    /// `PromQL warning: ...` annotations.
    pub warnings: Vec<String>,
    /// `PromQL info: ...` annotations.
    pub infos: Vec<String>,
    pub stats: QueryStats,
}

/// Evaluates `expr` at `time_ms`. A range-vector expression gives a
/// [`Value::Matrix`], a string literal a [`Value::String`].
pub fn instant_query(
    db: &Arc<engine::Db>,
    expr: &Expr,
    time_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryOutput, EvalError> {
    evaluator::run(db, expr, time_ms, time_ms, 0, opts)
}

/// Evaluates `expr` at `start_ms, start_ms + step_ms, ..., <= end_ms`. The
/// expression must be a scalar or an instant vector; the result is always
/// a [`Value::Matrix`] sorted by labels (a scalar becomes one series `{}`).
pub fn range_query(
    db: &Arc<engine::Db>,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryOutput, EvalError> {
    if step_ms <= 0 {
        return Err(EvalError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    if end_ms < start_ms {
        return Err(EvalError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    evaluator::run(db, expr, start_ms, end_ms, step_ms, opts)
}

/// A query prepared by [`prepare`]: checked, its snapshot taken and its
/// series selected, with an estimate of its size. The API runs a small
/// one where it is (on the tokio worker) and sends a large one to the
/// blocking pool, where a client that hangs up can cancel it.
pub struct PreparedQuery {
    plan: evaluator::Plan,
    expr: Arc<Expr>,
    cost: u64,
}

impl PreparedQuery {
    /// The estimated work: the sum over the query's selectors of series ×
    /// (steps + samples read per series, assuming a 15 s scrape interval);
    /// `u64::MAX` for queries with subqueries, whose inner grids are not
    /// counted. About 10 ns of evaluation per unit on a 2-core machine.
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Evaluates the query. `opts` must be the options it was prepared with.
    pub fn run(self, opts: &QueryOptions) -> Result<QueryOutput, EvalError> {
        self.plan.run(&self.expr, opts)
    }
}

/// Prepares `expr` for evaluation at `start_ms, start_ms + step_ms, ...,
/// <= end_ms` (`step_ms == 0`: an instant query at `start_ms`, `end_ms`
/// ignored): the checks
/// of [`instant_query`] and [`range_query`] and the selection of every
/// selector's series, which the evaluation then reuses.
pub fn prepare(
    db: &Arc<engine::Db>,
    expr: impl Into<Arc<Expr>>,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<PreparedQuery, EvalError> {
    if step_ms < 0 {
        return Err(EvalError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        ));
    }
    let end_ms = if step_ms == 0 { start_ms } else { end_ms };
    if end_ms < start_ms {
        return Err(EvalError::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    let expr = expr.into();
    let plan = evaluator::Plan::new(db, &expr, start_ms, end_ms, step_ms, opts)?;
    let cost = plan.preselect(&expr);
    Ok(PreparedQuery { plan, expr, cost })
}

#[cfg(test)]
mod tests;
