//! `/api/v1/capacity`: runs the configured capacity checks
//! ([`ApiOptions::capacity_checks`](super::ApiOptions), by default the
//! built-in node_exporter ones) at `time` and answers with the series that
//! run out within `horizon`, soonest first: check, labels, a sentence,
//! seconds until exhaustion with the interval at `coverage`, the current
//! value and the threshold. The run takes a query slot and keeps to the
//! query deadline and limits.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::Api;
use super::error::ApiError;
use super::forecast::{ForecastParamError, coverage, positive_duration};
use super::params::Params;
use super::response::{self, Annotations, LabelsJson};
use super::{invalid, now_ms, timeout};
use crate::capacity::{self, Assessment, Check, Finding, Settings};
use crate::eval::{QueryOptions, QueryOutput, QueryStats, Value};

/// Default search horizon: 30 days.
const DEFAULT_HORIZON_MS: i64 = 30 * 86_400_000;

#[derive(Serialize)]
struct FindingJson<'a> {
    check: &'a str,
    labels: LabelsJson<'a>,
    message: &'a str,
    /// Seconds until exhaustion.
    seconds: f64,
    /// Earliest at the coverage.
    lower: f64,
    /// Latest at the coverage; `null` beyond the horizon.
    upper: Option<f64>,
    current: f64,
    threshold: f64,
    direction: &'static str,
}

impl<'a> From<&'a Finding> for FindingJson<'a> {
    fn from(f: &'a Finding) -> Self {
        FindingJson {
            check: &f.check,
            labels: LabelsJson(&f.labels),
            message: &f.message,
            seconds: f.exhaustion.seconds,
            lower: f.exhaustion.earliest,
            upper: f
                .exhaustion
                .latest
                .is_finite()
                .then_some(f.exhaustion.latest),
            current: f.current,
            threshold: f.threshold,
            direction: f.direction.name(),
        }
    }
}

#[derive(Serialize)]
struct CapacityJson<'a> {
    /// Unix seconds.
    time: f64,
    /// Seconds.
    horizon: f64,
    coverage: f64,
    checks: Vec<&'a str>,
    findings: Vec<FindingJson<'a>>,
}

/// The checks `check` parameters name (all when none is given).
fn select_checks(all: &[Check], params: &Params) -> Result<Vec<Check>, ApiError> {
    let wanted = params.all("check");
    if wanted.is_empty() {
        return Ok(all.to_vec());
    }
    for w in &wanted {
        if !all.iter().any(|c| c.name == *w) {
            return Err(invalid(
                "check",
                ForecastParamError::UnknownCheck(
                    w.to_string(),
                    all.iter().map(|c| c.name.clone()).collect(),
                ),
            ));
        }
    }
    Ok(all
        .iter()
        .filter(|c| wanted.contains(&c.name.as_str()))
        .cloned()
        .collect())
}

pub(crate) async fn capacity(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let time_ms = params.time("time", now_ms())?;
    let horizon_ms = positive_duration(&params, "horizon", DEFAULT_HORIZON_MS)?;
    let coverage = coverage(&params)?;
    let limit = params.limit("limit")?;
    let checks = select_checks(&api.options().capacity_checks, &params)?;
    let timeout = timeout(&api, &params)?;
    let settings = Settings {
        time_ms,
        horizon_ms,
        coverage,
    };
    let opts = QueryOptions {
        engine: api.options().engine.clone(),
        ..QueryOptions::default()
    };
    let db = api.db().clone();
    // The slots run evaluator closures; the assessment travels beside.
    let slot: Arc<Mutex<Option<Assessment>>> = Arc::default();
    let put = slot.clone();
    let names: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
    api.slots()
        .run(timeout, opts, move |o| {
            let a = capacity::assess(&db, &checks, &settings, o).map_err(|e| e.into_eval())?;
            if let Ok(mut s) = put.lock() {
                *s = Some(a);
            }
            Ok(QueryOutput {
                value: Value::Matrix(Vec::new()),
                warnings: Vec::new(),
                infos: Vec::new(),
                stats: QueryStats::default(),
            })
        })
        .await?;
    let a = slot
        .lock()
        .ok()
        .and_then(|mut s| s.take())
        .ok_or_else(|| ApiError::Internal("the capacity run left no result".into()))?;
    let mut annotations = Annotations::default();
    for w in a.warnings {
        annotations.warn(w);
    }
    let mut findings: Vec<FindingJson<'_>> = a
        .findings
        .iter()
        .filter(|f| f.exhausts())
        .map(FindingJson::from)
        .collect();
    super::apply_limit(&mut findings, limit, &mut annotations);
    Ok(response::success(
        CapacityJson {
            time: time_ms as f64 / 1000.0,
            horizon: horizon_ms as f64 / 1000.0,
            coverage,
            checks: names.iter().map(String::as_str).collect(),
            findings,
        },
        annotations,
    ))
}
