//! Capacity planning: when will a resource run out. Each [`Check`] is a
//! PromQL expression evaluated over its history, a threshold and a
//! direction; every series is fitted with Silt's forecaster and searched
//! for the time its forecast reaches the threshold, with the interval the
//! prediction bands give ([`crate::forecast::exhaustion`]). Findings are
//! ranked by the soonest exhaustion. `/api/v1/capacity` and the capacity
//! report use this; the built-in checks over node_exporter metrics are in
//! [`checks`].

pub mod checks;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use engine::{Db, Label, Labels, METRIC_NAME};

pub use checks::{
    BuiltinOptions, Check, CheckError, DEFAULT_FILESYSTEMS, Threshold, builtin_checks,
    expand_message, validate_all, when_text,
};

use crate::eval::{self, EvalError, QueryOptions, Value};
use crate::forecast::{Direction, Exhaustion, FitOptions, Fitted, exhaustion};
use crate::promql;

/// Points a check's history is evaluated at (the forecaster resamples
/// onto at most 4,096 cells anyway).
const HISTORY_POINTS: i64 = 4000;

/// The step (whole seconds, at least one) that evaluates `history_ms` at
/// about `points` points.
pub fn history_step(history_ms: i64, points: i64) -> i64 {
    let s = (history_ms / points.max(1)).max(1000);
    (s + 999) / 1000 * 1000
}

/// What a capacity run looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// "Now": the end of every history and the start of every forecast.
    pub time_ms: i64,
    /// How far ahead exhaustion is searched.
    pub horizon_ms: i64,
    /// Coverage of the interval (in (0, 1)).
    pub coverage: f64,
}

/// The outlook of one series of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub check: String,
    /// The series' labels (metric name included when the query keeps it).
    pub labels: Labels,
    /// `filesystem /var on db-3 is full in 3.2 days (80% interval
    /// 2.5–4.1)`.
    pub message: String,
    /// Seconds until exhaustion (`+Inf`: not within the horizon), earliest
    /// and latest at the coverage.
    pub exhaustion: Exhaustion,
    /// The last value at or before the time.
    pub current: f64,
    pub threshold: f64,
    pub direction: Direction,
}

impl Finding {
    /// Whether the expected exhaustion lies within the horizon.
    pub fn exhausts(&self) -> bool {
        self.exhaustion.seconds.is_finite()
    }
}

/// The result of a run: every series of every check (ranked: soonest
/// exhaustion first), and warnings (series too short to fit, thresholds
/// missing).
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("check {check}: {source}")]
    Parse {
        check: String,
        #[source]
        source: promql::ParseError,
    },
    /// The evaluator failed (limits, timeouts, storage); the original
    /// error is kept so callers can map it as for any query.
    #[error("check {check}: {source}")]
    Eval {
        check: String,
        #[source]
        source: EvalError,
    },
    #[error("check {check}: the threshold query gave a {got}, not an instant vector or scalar")]
    ThresholdType { check: String, got: &'static str },
    #[error(transparent)]
    Coverage(crate::forecast::ForecastError),
    #[error("check {check}: {source}")]
    Forecast {
        check: String,
        #[source]
        source: crate::forecast::ForecastError,
    },
}

impl CapacityError {
    /// As an evaluator error, for the API's error mapping: evaluator
    /// errors as they were, the rest as execution errors.
    pub fn into_eval(self) -> EvalError {
        match self {
            CapacityError::Eval { source, .. } => source,
            other => EvalError::Execution(other.to_string()),
        }
    }
}

/// `labels` without the metric name: how threshold series are matched.
fn without_name(labels: &Labels) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .cloned()
            .collect::<Vec<Label>>(),
    )
}

/// Checks the deadline and the cancel flag between series.
struct Budget<'a> {
    deadline: Instant,
    limit: Duration,
    opts: &'a QueryOptions,
}

impl Budget<'_> {
    fn check(&self) -> Result<(), EvalError> {
        if self
            .opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(EvalError::Canceled {
                stage: "capacity forecast",
            });
        }
        if Instant::now() >= self.deadline {
            return Err(EvalError::Timeout {
                stage: "capacity forecast",
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// The options for one evaluation: what is left of the deadline.
    fn opts(&self, query: &str) -> QueryOptions {
        let mut o = self.opts.clone();
        o.engine.timeout = self.deadline.saturating_duration_since(Instant::now());
        o.query_text = query.to_string();
        o
    }
}

/// Runs `checks` at `s`, within `opts`' limits (its timeout covers the
/// whole run). Blocking: call from the blocking pool.
pub fn assess(
    db: &Arc<Db>,
    checks: &[Check],
    s: &Settings,
    opts: &QueryOptions,
) -> Result<Assessment, CapacityError> {
    crate::forecast::check_coverage(s.coverage).map_err(CapacityError::Coverage)?;
    let budget = Budget {
        deadline: Instant::now() + opts.engine.timeout,
        limit: opts.engine.timeout,
        opts,
    };
    let mut out = Assessment::default();
    for check in checks {
        run_check(db, check, s, &budget, &mut out)?;
    }
    out.findings.sort_by(|a, b| {
        let key = |f: &Finding| (f.exhaustion.seconds, f.exhaustion.earliest);
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    Ok(out)
}

fn run_check(
    db: &Arc<Db>,
    check: &Check,
    s: &Settings,
    budget: &Budget<'_>,
    out: &mut Assessment,
) -> Result<(), CapacityError> {
    let name = || check.name.clone();
    let eval_err = |source| CapacityError::Eval {
        check: name(),
        source,
    };
    let expr = promql::parse(&check.query).map_err(|source| CapacityError::Parse {
        check: name(),
        source,
    })?;
    let history_ms = (check.history.as_millis() as i64).max(1);
    let step_ms = history_step(history_ms, HISTORY_POINTS);
    let start_ms = s.time_ms.saturating_sub(history_ms);
    let series = match eval::range_query(
        db,
        &expr,
        start_ms,
        s.time_ms,
        step_ms,
        &budget.opts(&check.query),
    )
    .map_err(eval_err)?
    .value
    {
        Value::Matrix(m) => m,
        // A range query always gives a matrix.
        _ => Vec::new(),
    };
    if series.is_empty() {
        return Ok(());
    }
    let thresholds = thresholds(db, check, s, budget)?;
    for sr in series {
        budget.check().map_err(eval_err)?;
        let key = without_name(&sr.labels);
        let threshold = match &thresholds {
            Thresholds::All(v) => *v,
            Thresholds::ByLabels(m) => match m.get(&key) {
                Some(v) => *v,
                None => {
                    out.warnings.push(format!(
                        "capacity check {}: no threshold for series {}, skipped",
                        check.name, sr.labels
                    ));
                    continue;
                }
            },
        };
        let Some(current) = sr
            .points
            .iter()
            .rev()
            .find(|p| p.v.is_finite())
            .map(|p| p.v)
        else {
            continue;
        };
        let mut model = match Fitted::fit(check.model, &sr.points, &FitOptions::default()) {
            Ok(m) => m,
            Err(e) => {
                out.warnings.push(format!(
                    "capacity check {}: series {} skipped: {e}",
                    check.name, sr.labels
                ));
                continue;
            }
        };
        let ex = exhaustion(
            &mut model,
            current,
            s.time_ms,
            threshold,
            check.direction,
            s.horizon_ms,
            s.coverage,
        )
        .map_err(|source| CapacityError::Forecast {
            check: name(),
            source,
        })?;
        let subject = expand_message(&check.message, |n| sr.labels.get(n).map(str::to_string));
        let message = if ex.seconds.is_finite() {
            format!(
                "{subject} {}",
                when_text(
                    ex.seconds,
                    ex.earliest,
                    ex.latest,
                    s.coverage,
                    s.horizon_ms as f64 / 1000.0
                )
            )
        } else {
            format!(
                "{subject}: not within {}",
                promql::format_duration_ms(s.horizon_ms)
            )
        };
        out.findings.push(Finding {
            check: check.name.clone(),
            labels: sr.labels,
            message,
            exhaustion: ex,
            current,
            threshold,
            direction: check.direction,
        });
    }
    Ok(())
}

enum Thresholds {
    All(f64),
    ByLabels(HashMap<Labels, f64>),
}

fn thresholds(
    db: &Arc<Db>,
    check: &Check,
    s: &Settings,
    budget: &Budget<'_>,
) -> Result<Thresholds, CapacityError> {
    let q = match &check.threshold {
        Threshold::Value(v) => return Ok(Thresholds::All(*v)),
        Threshold::Query(q) => q,
    };
    let expr = promql::parse(q).map_err(|source| CapacityError::Parse {
        check: check.name.clone(),
        source,
    })?;
    let value = eval::instant_query(db, &expr, s.time_ms, &budget.opts(q))
        .map_err(|source| CapacityError::Eval {
            check: check.name.clone(),
            source,
        })?
        .value;
    match value {
        Value::Scalar(_, v) => Ok(Thresholds::All(v)),
        Value::Vector(v) if v.len() == 1 && without_name(&v[0].labels).is_empty() => {
            Ok(Thresholds::All(v[0].v))
        }
        Value::Vector(v) => Ok(Thresholds::ByLabels(
            v.into_iter()
                .map(|s| (without_name(&s.labels), s.v))
                .collect(),
        )),
        other => Err(CapacityError::ThresholdType {
            check: check.name.clone(),
            got: other.type_name(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests;
