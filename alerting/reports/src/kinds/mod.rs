//! The report kinds and what they share: running PromQL over the engine
//! for a report's period, and the statistics taken from the results.
//!
//! Every kind reads `[end - period, end]`: instant queries at `end`, range
//! queries over the period at the report's step. Queries are blocking
//! (the evaluator runs on the calling thread): call [`compute`] from
//! `spawn_blocking`.

pub mod alerts;
pub mod capacity;
pub mod sla;
pub mod trends;

use std::sync::Arc;

use alertmanager::History;
use chrono::{DateTime, Utc};
use engine::{Db, Labels};
use query::eval::{QueryOptions, Value};

use crate::config::{Kind, ReportDef};
use crate::doc::Document;
use crate::error::RunError;

/// Where reports read from.
#[derive(Clone)]
pub struct Sources {
    pub db: Arc<Db>,
    /// The built-in Alertmanager's alert history (for the alert summary).
    pub history: Option<Arc<History>>,
    /// Engine limits (timeout, max samples) for the reports' queries.
    pub query: QueryOptions,
}

/// A time series from a range query: labels (metric name dropped) and
/// `(ms, value)` points.
pub type Points = Vec<(i64, f64)>;

/// The query context of one run.
pub(crate) struct Ctx<'a> {
    pub src: &'a Sources,
    pub def: &'a ReportDef,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

impl Ctx<'_> {
    fn parse(&self, q: &str) -> Result<query::promql::ast::Expr, RunError> {
        query::promql::parse(q).map_err(|e| RunError::Query {
            query: q.to_string(),
            message: e.to_string(),
        })
    }

    fn opts(&self, q: &str) -> QueryOptions {
        let mut o = self.src.query.clone();
        o.query_text = q.to_string();
        o
    }

    /// Evaluates `q` at the end of the period.
    pub fn instant(&self, q: &str) -> Result<Vec<(Labels, f64)>, RunError> {
        let expr = self.parse(q)?;
        let out = query::eval::instant_query(&self.src.db, &expr, self.end_ms, &self.opts(q))
            .map_err(|e| RunError::Query {
                query: q.to_string(),
                message: e.to_string(),
            })?;
        match out.value {
            Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
            Value::Scalar(_, v) => Ok(vec![(Labels::default(), v)]),
            other => Err(RunError::NotAVector {
                query: q.to_string(),
                got: other.type_name(),
            }),
        }
    }

    /// Evaluates `q` over `[start_ms, end_ms]` every `step_ms`.
    pub fn range_between(
        &self,
        q: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<(Labels, Points)>, RunError> {
        let expr = self.parse(q)?;
        let out = query::eval::range_query(
            &self.src.db,
            &expr,
            start_ms,
            end_ms,
            step_ms,
            &self.opts(q),
        )
        .map_err(|e| RunError::Query {
            query: q.to_string(),
            message: e.to_string(),
        })?;
        match out.value {
            Value::Matrix(m) => Ok(m
                .into_iter()
                .map(|s| (s.labels, s.points.iter().map(|p| (p.t, p.v)).collect()))
                .collect()),
            other => Err(RunError::NotAVector {
                query: q.to_string(),
                got: other.type_name(),
            }),
        }
    }

    /// Evaluates `q` over the period at the report's step.
    pub fn range(&self, q: &str) -> Result<Vec<(Labels, Points)>, RunError> {
        self.range_between(q, self.start_ms, self.end_ms, self.step_ms)
    }

    /// The period as PromQL (`7d`).
    pub fn period_text(&self) -> String {
        query::promql::format_duration_ms(self.end_ms - self.start_ms)
    }

    /// `metric{extra,filter}` with the report's filter.
    pub fn selector(&self, metric: &str, extra: &[String]) -> String {
        let mut parts: Vec<String> = extra.iter().filter(|s| !s.is_empty()).cloned().collect();
        let f = self.def.filter.promql();
        if !f.is_empty() {
            parts.push(f);
        }
        format!("{metric}{{{}}}", parts.join(","))
    }
}

/// Computes report `def` for the period ending at `end`. Blocking.
pub fn compute(src: &Sources, def: &ReportDef, end: DateTime<Utc>) -> Result<Document, RunError> {
    let end_ms = end.timestamp_millis();
    let period_ms = def.period.as_millis() as i64;
    let ctx = Ctx {
        src,
        def,
        start_ms: end_ms - period_ms,
        end_ms,
        step_ms: (def.step.as_millis() as i64).max(1),
    };
    let mut doc = match def.kind {
        Kind::Capacity => capacity::document(&ctx, &capacity::compute(&ctx)?),
        Kind::Sla => sla::document(&ctx, &sla::compute(&ctx)?),
        Kind::Alerts => alerts::document(&ctx, &alerts::compute(&ctx)?),
        Kind::Trends => trends::document(&ctx, &trends::compute(&ctx)?),
    };
    doc.generated_at = Utc::now();
    Ok(doc)
}

/// An empty document for `ctx`'s report; kinds fill it in.
pub(crate) fn new_document(ctx: &Ctx<'_>, data: serde_json::Value) -> Document {
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
    Document {
        report: ctx.def.name.clone(),
        kind: ctx.def.kind.as_str().to_string(),
        title: ctx.def.title.clone(),
        generated_at: Utc::now(),
        start: at(ctx.start_ms),
        end: at(ctx.end_ms),
        filter: ctx.def.filter.text.clone(),
        highlights: Vec::new(),
        sections: Vec::new(),
        data,
    }
}

// ---- statistics ----

/// Finite values of a series.
pub(crate) fn finite(points: &[(i64, f64)]) -> Vec<f64> {
    points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect()
}

pub(crate) fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The q-quantile with linear interpolation between closest ranks
/// (Prometheus's `quantile_over_time`).
pub(crate) fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let w = rank - lo as f64;
    Some(v[lo] * (1.0 - w) + v[hi] * w)
}

/// Least-squares slope in value per second; `None` with fewer than two
/// distinct points.
pub(crate) fn slope_per_second(points: &[(i64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|p| (p.0 as f64 / 1000.0, p.1))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in &pts {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// At most `max` points: averages of consecutive buckets (charts need no
/// more points than pixels).
pub(crate) fn downsample(points: &[(i64, f64)], max: usize) -> Points {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let vals: Vec<f64> = c.iter().map(|p| p.1).filter(|v| v.is_finite()).collect();
            let t = c[c.len() / 2].0;
            (t, mean(&vals).unwrap_or(f64::NAN))
        })
        .collect()
}

/// `{a="x", b="y"}` without the metric name, for display.
pub(crate) fn label_text(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .filter(|l| l.name != engine::METRIC_NAME)
        .map(|l| format!("{}=\"{}\"", l.name, l.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Points per chart line.
pub(crate) const CHART_POINTS: usize = 240;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(mean(&v), Some(50.5));
        assert!((quantile(&v, 0.95).unwrap() - 95.05).abs() < 1e-9);
        assert_eq!(quantile(&[3.0], 0.95), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
        let line: Vec<(i64, f64)> = (0..10).map(|i| (i * 1000, 2.0 * i as f64 + 1.0)).collect();
        assert!((slope_per_second(&line).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(slope_per_second(&line[..1]), None);
        let d = downsample(&line, 5);
        assert_eq!(d.len(), 5);
        assert_eq!(d[0].1, 2.0);
    }
}
