//! The PromQL function library: pure functions the evaluator calls per
//! series and step, independent of the AST and of storage. Semantics follow
//! Prometheus 3 (`promql/functions.go`, `promql/quantile.go`,
//! `util/annotations`) for float samples; Silt has no native histograms.
//!
//! # Interface for the evaluator
//!
//! **Range-vector functions** ([`RangeFunction`], implementations in
//! [`range`], [`smoothing`], [`extended`]). Per call expression:
//! `RangeFunction::from_name(name)`, then `check_mode(selector.range_mode)?`
//! (Prometheus's "anchored modifier can only be used with: …" error). Per
//! series and step build a [`Window`] and call
//! `f.eval(&window, mode, eval_ms, &params, &mut scratch)?`:
//! * `Window { samples, start_ms, end_ms }`: float samples sorted by time,
//!   stale markers removed; `start_ms = eval - offset - range` (exclusive),
//!   `end_ms = eval - offset` (inclusive; the `@` time when set). Samples
//!   are those in `(start_ms, end_ms]`, except `anchored`:
//!   `(start_ms - lookback, end_ms]` and `smoothed`:
//!   `(start_ms - lookback, end_ms + lookback]` (see [`extended`]).
//!   Subqueries use the same bounds with the subquery's range.
//! * `params`: the scalar arguments at this step, in call order without
//!   the range argument (`predict_linear` `[t]`, `quantile_over_time`
//!   `[q]`, `double_exponential_smoothing` `[sf, tf]`).
//! * `Ok(None)` means no output sample for that series at that step.
//!   The output series drops the metric name (except `last_over_time`,
//!   `first_over_time`, which keep the labels, as in Prometheus).
//! * Annotations: for `rate`/`increase`, per series with output, push
//!   [`annotations::possible_non_counter`] of its metric name; for
//!   `quantile_over_time`, [`annotations::check_quantile`] once if any
//!   series produced output (position: the parameter for the quantile,
//!   the range argument for the counter info).
//! * `absent_over_time` is not a window function: a step is absent when no
//!   series has a sample in its window; its labels come from
//!   [`labels::absent_labels`] of the selector's matchers (empty set for
//!   other expressions). `absent` uses the same labels.
//! * Instant queries of an `anchored`/`smoothed` matrix selector return
//!   [`extended::extend_floats`]; a `smoothed` instant-vector selector
//!   takes [`extended::smoothed_value_at`] at `eval - offset`.
//!
//! **Element-wise** ([`math`], [`time`]): `MathFunction::from_name(name)`
//! then `.apply(v)` per float sample; `round(v, to_nearest)` (default 1),
//! `clamp(v, min, max)` after `clamp_bounds(min, max)` (None → empty
//! result), `clamp_min(v, m)` = `clamp(v, m, +Inf)`, `clamp_max(v, m)` =
//! `clamp(v, -Inf, m)`; `go_min`/`go_max` for `min_of`/`max_of`; `pi()`.
//! `DateFunction::from_name(name)` then `.apply(unix_seconds)`; with no
//! argument apply it to `(eval_ms / 1000) as f64` (integer division
//! first, as Prometheus). All drop the metric name.
//!
//! **Labels** ([`labels`], [`sort`]): `LabelReplace::new(dst, repl, src,
//! regex)?` once, then `.apply(&labels) -> Option<Labels>` per series
//! (None: unchanged). `LabelJoin::new(dst, sep, &srcs)?` then
//! `.apply(&labels)`. `sort`/`sort_desc` use
//! [`sort::cmp_value_asc`]/[`sort::cmp_value_desc`] (NaN last); in range
//! queries report [`Annotation::SortInRangeQuery`].
//! `sort_by_label[_desc]` use [`sort::cmp_by_labels`] /
//! [`sort::cmp_by_labels_desc`]. Sort stably.
//!
//! **Histograms** ([`histogram`]): `Histograms::new(series labels)` once,
//! then per step `.group((series, value) samples, &mut annos, &mut slots)`
//! → one [`histogram::BucketGroup`] (labels without `le`) per classic
//! histogram, then `bucket_quantile(q, &mut group.buckets)` or
//! `bucket_fraction(lower, upper, &mut group.buckets)`. Report
//! `check_quantile(q)` once per call, and for each
//! `BucketQuantile { forced_monotonicity: Some(fix), .. }` an
//! `Annotation::ForcedMonotonicity(MonotonicityFix::new(metric_name, eval_ms, fix))`
//! (the metric name of the group's labels). Results drop the metric name.
//!
//! **Quantile aggregation** ([`quantile`]): `quantile::quantile(q, &mut
//! values)` sorts in place (NaN first) and interpolates; `check_quantile`
//! gives the warning.
//!
//! **Annotations** ([`annotations`]): de-duplicate by
//! [`Annotation::key`], fold repeats with [`Annotation::merge`], render
//! `format!("{} ({line}:{col})", a.message())`; [`Annotation::severity`]
//! splits warnings from infos.
//!
//! **Errors**: [`FunctionError`] values are query failures; their
//! `Display` is Prometheus's message.
//!
//! **Forecasting** ([`forecast`], Silt's own `silt_*` functions): range
//! functions like the others, reached through [`RangeFunction`]; the
//! evaluator calls [`RangeFunction::eval_with`] with the series' identity
//! (so a range query reuses one fit per series) and an annotation sink
//! (series too short to fit give no output and an info).
//!
//! [`kahan`] holds the compensated summation also used by `sum`/`avg`.

pub mod annotations;
pub mod call;
pub mod extended;
pub mod forecast;
pub mod histogram;
pub mod kahan;
pub mod labels;
pub mod math;
pub mod quantile;
pub mod range;
pub mod smoothing;
pub mod sort;
pub mod start;
pub mod time;

#[cfg(test)]
mod testutil;

pub use annotations::{Annotation, MonotonicityFix, Severity};
pub use call::RangeFunction;
pub use math::MathFunction;
pub use range::Window;
pub use time::DateFunction;

use crate::promql::ast::RangeMode;

/// Why a function call fails the whole query.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FunctionError {
    #[error("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", go_f(*.0))]
    InvalidSmoothingFactor(f64),
    #[error("invalid trend factor. Expected: 0 < tf < 1, got: {}", go_f(*.0))]
    InvalidTrendFactor(f64),
    #[error("invalid regular expression in label_replace(): {0}")]
    InvalidRegex(String),
    #[error("invalid destination label name in {function}(): {name}")]
    InvalidDestinationLabel {
        function: &'static str,
        name: String,
    },
    #[error("invalid source label name in label_join(): {0}")]
    InvalidSourceLabel(String),
    #[error(
        "invalid horizon for {function}(): must be a positive number of seconds, got {}",
        go_g(*.value)
    )]
    InvalidHorizon { function: &'static str, value: f64 },
    #[error(
        "invalid coverage for {function}(): must lie strictly between 0 and 1, got {}",
        go_g(*.value)
    )]
    InvalidCoverage { function: &'static str, value: f64 },
    #[error("{} - not with {function}", mode_allowed(*.mode))]
    ModeNotSupported {
        mode: RangeMode,
        function: &'static str,
    },
}

fn mode_allowed(mode: RangeMode) -> &'static str {
    match mode {
        RangeMode::Smoothed => "smoothed modifier can only be used with: delta, increase, rate",
        _ => "anchored modifier can only be used with: changes, delta, increase, rate, resets",
    }
}

/// A parameter as PromQL prints numbers (`1`, `0.5`, `NaN`, `+Inf`).
fn go_g(v: f64) -> String {
    annotations::format_g(v, None)
}

/// Go's `%f`: six decimals, `NaN`, `+Inf`, `-Inf`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}
