//! `/api/v1/forecast`: an instant-vector expression evaluated as a range
//! over its `history`, each series fitted (Silt's seasonal forecaster or
//! `predict_linear`'s line) and forecast from `time` to `time + horizon`
//! every `step`. The answer is a Prometheus `matrix`: per input series one
//! series per band, told apart by the `silt_forecast` label (`mean`,
//! `lower`, `upper`; `history` with `include_history=true`), so graphing
//! clients draw it like any range query. Series too short to fit are left
//! out with a warning. Evaluation and fitting share the query's slot,
//! deadline and sample limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use engine::{Label, Labels, Sample};

use super::error::{ApiError, ParamError};
use super::params::Params;
use super::response::{self, Annotations};
use super::result_json::push_result;
use super::time::parse_duration_ns;
use super::{Api, invalid, now_ms, timeout};
use crate::eval::{self, EvalError, QueryOptions, QueryOutput, Series, Value};
use crate::forecast::{FitOptions, Fitted, ModelKind, Seasonality};
use crate::promql::{self, ast::ValueType};

/// The label that tells a forecast's bands apart.
pub const BAND_LABEL: &str = "silt_forecast";
/// Default fitting window.
const DEFAULT_HISTORY_MS: i64 = 7 * 86_400_000;
/// Default forecast horizon.
const DEFAULT_HORIZON_MS: i64 = 86_400_000;
/// Default coverage of the bands.
pub const DEFAULT_COVERAGE: f64 = 0.8;
/// Points per series when `step` is not given.
const DEFAULT_POINTS: i64 = 1000;
/// Points the history is evaluated at (the forecaster resamples onto at
/// most 4,096 cells).
const HISTORY_POINTS: i64 = 4000;
/// Prometheus's limit on points per series of a range query.
const MAX_POINTS: i64 = 11_000;

/// Why a forecasting parameter was rejected (inside `invalid parameter
/// "<name>": ...`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastParamError {
    #[error("unknown model {}: expected one of {}", crate::gofmt::quote(.0), ModelKind::NAMES.join(", "))]
    UnknownModel(String),
    #[error("{0} must be a positive duration")]
    NotPositive(&'static str),
    #[error(
        "cannot parse {} to a coverage: expected a number strictly between 0 and 1",
        crate::gofmt::quote(.0)
    )]
    Coverage(String),
    #[error("cannot parse {} to a boolean: expected true or false", crate::gofmt::quote(.0))]
    Bool(String),
    #[error(
        "unknown seasonality {}: expected one of auto, none, daily, weekly",
        crate::gofmt::quote(.0)
    )]
    UnknownSeasonality(String),
    #[error("unknown check {}: expected one of {}", crate::gofmt::quote(.0), .1.join(", "))]
    UnknownCheck(String, Vec<String>),
}

/// A positive duration parameter in ms (float seconds or `1h30m`),
/// `default` when absent.
pub(super) fn positive_duration(
    params: &Params,
    key: &'static str,
    default: i64,
) -> Result<i64, ApiError> {
    match params.get(key) {
        "" => Ok(default),
        s => {
            let ns = parse_duration_ns(s).map_err(|e| invalid(key, e))?;
            let ms = ns / 1_000_000;
            if ms <= 0 {
                return Err(invalid(key, ForecastParamError::NotPositive(key)));
            }
            Ok(ms)
        }
    }
}

/// `coverage`: strictly between 0 and 1, default 0.8.
pub(super) fn coverage(params: &Params) -> Result<f64, ApiError> {
    match params.get("coverage") {
        "" => Ok(DEFAULT_COVERAGE),
        s => match s.parse::<f64>() {
            Ok(c) if c > 0.0 && c < 1.0 => Ok(c),
            _ => Err(invalid(
                "coverage",
                ForecastParamError::Coverage(s.to_string()),
            )),
        },
    }
}

fn flag(params: &Params, key: &'static str) -> Result<bool, ApiError> {
    match params.get(key) {
        "" | "false" | "0" => Ok(false),
        "true" | "1" => Ok(true),
        s => Err(invalid(key, ForecastParamError::Bool(s.to_string()))),
    }
}

/// What one forecast request asks for.
#[derive(Debug, Clone)]
struct Request {
    time: i64,
    history_ms: i64,
    horizon_ms: i64,
    step_ms: i64,
    model: ModelKind,
    seasonality: Seasonality,
    coverage: f64,
    include_history: bool,
}

/// `seasonality=auto|none|daily|weekly` (`weekly`: daily and weekly
/// profiles); `auto` (the default) keeps each season only when the data
/// shows it.
fn seasonality(params: &Params) -> Result<Seasonality, ApiError> {
    match params.get("seasonality") {
        "" | "auto" => Ok(Seasonality::Auto),
        "none" => Ok(Seasonality::None),
        "daily" => Ok(Seasonality::Daily),
        "weekly" => Ok(Seasonality::DailyWeekly),
        s => Err(invalid(
            "seasonality",
            ForecastParamError::UnknownSeasonality(s.to_string()),
        )),
    }
}

fn parse_request(params: &Params) -> Result<Request, ApiError> {
    let time = params.time("time", now_ms())?;
    let history_ms = positive_duration(params, "history", DEFAULT_HISTORY_MS)?;
    let horizon_ms = positive_duration(params, "horizon", DEFAULT_HORIZON_MS)?;
    let step_ms = match params.get("step") {
        "" => ((horizon_ms + DEFAULT_POINTS - 1) / DEFAULT_POINTS).max(1000),
        s => {
            let ns = parse_duration_ns(s).map_err(|e| invalid("step", e))?;
            if ns <= 0 {
                return Err(invalid("step", ParamError::NonPositiveStep));
            }
            (ns / 1_000_000).max(1)
        }
    };
    if horizon_ms / step_ms > MAX_POINTS {
        return Err(ApiError::TooManyPoints);
    }
    let model = match params.get("model") {
        "" => ModelKind::default(),
        s => ModelKind::parse(s)
            .ok_or_else(|| invalid("model", ForecastParamError::UnknownModel(s.to_string())))?,
    };
    Ok(Request {
        time,
        history_ms,
        horizon_ms,
        step_ms,
        model,
        seasonality: seasonality(params)?,
        coverage: coverage(params)?,
        include_history: flag(params, "include_history")?,
    })
}

/// `labels` with `BAND_LABEL` set to `band`.
fn with_band(labels: &Labels, band: &str) -> Labels {
    let mut v: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != BAND_LABEL)
        .cloned()
        .collect();
    let pos = v.partition_point(|l| l.name.as_str() < BAND_LABEL);
    v.insert(pos, Label::new(BAND_LABEL, band));
    Labels::from_sorted(v)
}

pub(crate) async fn forecast(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let req = parse_request(&params)?;
    let timeout = timeout(&api, &params)?;
    let text = params.get("query").to_string();
    let expr = promql::parse(&text).map_err(|e| invalid("query", e))?;
    let ty = expr.value_type();
    if !matches!(ty, ValueType::Scalar | ValueType::Vector) {
        return Err(invalid(
            "query",
            ParamError::RangeQueryType(match ty {
                ValueType::Matrix => "range vector",
                _ => "string",
            }),
        ));
    }
    let opts = QueryOptions {
        engine: api.options().engine.clone(),
        lookback_delta: None,
        query_text: text,
        cancel: None,
    };
    let db = api.db().clone();
    let (out, _) = api
        .slots()
        .run(timeout, opts, move |o| run(&db, &expr, &req, o))
        .await?;
    let mut data = String::with_capacity(256);
    data.push('{');
    push_result(&mut data, &out.value);
    data.push('}');
    Ok(response::success_raw(
        &data,
        Annotations {
            warnings: out.warnings,
            infos: out.infos,
        },
    ))
}

/// Evaluates the history and forecasts every series. Blocking.
fn run(
    db: &Arc<engine::Db>,
    expr: &promql::ast::Expr,
    req: &Request,
    o: &QueryOptions,
) -> Result<QueryOutput, EvalError> {
    let deadline = Instant::now() + o.engine.timeout;
    let check = || -> Result<(), EvalError> {
        if o.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(EvalError::Canceled { stage: "forecast" });
        }
        if Instant::now() >= deadline {
            return Err(EvalError::Timeout {
                stage: "forecast",
                limit: o.engine.timeout,
            });
        }
        Ok(())
    };
    let hist_step = crate::capacity::history_step(req.history_ms, HISTORY_POINTS);
    let start = req.time.saturating_sub(req.history_ms);
    let mut out = eval::range_query(db, expr, start, req.time, hist_step, o)?;
    let Value::Matrix(input) = std::mem::replace(&mut out.value, Value::Matrix(Vec::new())) else {
        return Ok(out);
    };
    let n = req.horizon_ms / req.step_ms;
    let per_series = 3 * n as usize;
    let mut total = 0usize;
    let mut result = Vec::with_capacity(input.len() * 3);
    for s in input {
        check()?;
        let opts = FitOptions {
            seasonality: req.seasonality,
            ..FitOptions::default()
        };
        let mut model = match Fitted::fit(req.model, &s.points, &opts) {
            Ok(m) => m,
            Err(e) => {
                out.warnings
                    .push(format!("series {} not forecast: {e}", s.labels));
                continue;
            }
        };
        total += per_series
            + if req.include_history {
                s.points.len()
            } else {
                0
            };
        if total > o.engine.max_samples {
            return Err(EvalError::TooManySamples {
                limit: o.engine.max_samples,
            });
        }
        let cap = n as usize;
        let (mut mean, mut lower, mut upper) = (
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
        );
        let targets: Vec<i64> = (1..=n)
            .map(|i| req.time.saturating_add(i * req.step_ms))
            .collect();
        let path = model
            .forecast_path(&targets, req.coverage)
            .map_err(|e| EvalError::BadData(e.to_string()))?;
        for (&t, f) in targets.iter().zip(&path) {
            mean.push(Sample::new(t, f.mean));
            lower.push(Sample::new(t, f.lower));
            upper.push(Sample::new(t, f.upper));
        }
        result.push(Series::new(with_band(&s.labels, "mean"), mean));
        result.push(Series::new(with_band(&s.labels, "lower"), lower));
        result.push(Series::new(with_band(&s.labels, "upper"), upper));
        if req.include_history {
            result.push(Series::new(with_band(&s.labels, "history"), s.points));
        }
    }
    result.sort_by(|a, b| a.labels.cmp(&b.labels));
    out.value = Value::Matrix(result);
    Ok(out)
}

#[cfg(test)]
mod tests;
