//! The PromQL endpoints: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/query_exemplars`, `/api/v1/format_query`, `/api/v1/parse_query`.
//! Parameters are checked in Prometheus's order and with its wording; the
//! evaluation goes through [`super::limits::Slots`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ParamError};
use super::gzip;
use super::limits::Timings;
use super::params::{Params, parse_limit};
use super::response::{self, Annotations};
use super::result_json::{
    ResultOut, push_result, push_stats, result_len_estimate, result_len_hint,
};
use super::time::{MAX_TIME_MS, MIN_TIME_MS, parse_duration_ns};
use super::{Api, ast_json, invalid, now_ms, timeout};
use crate::eval::{self, QueryOptions, QueryOutput, Value};
use crate::promql::{self, ast::Expr, ast::ValueType};

/// Prometheus's limit on points per series of a range query.
const MAX_POINTS: i128 = 11_000;

fn parse_query(params: &Params) -> Result<Expr, ApiError> {
    promql::parse(params.get("query")).map_err(|e| invalid("query", e))
}

/// [`parse_query`] through the API's cache of parsed queries.
fn parse_cached(api: &Api, params: &Params) -> Result<Arc<Expr>, ApiError> {
    api.parsed
        .parse(params.get("query"))
        .map_err(|e| invalid("query", e))
}

/// Per-query options: the engine's, `lookback_delta`, the query text.
fn query_options(api: &Api, params: &Params) -> Result<QueryOptions, ApiError> {
    let lookback_delta = match params.get("lookback_delta") {
        "" => None,
        s => {
            let ns = parse_duration_ns(s).map_err(ApiError::LookbackDelta)?;
            // Prometheus ignores a zero or negative override.
            (ns > 0).then(|| Duration::from_nanos(ns as u64))
        }
    };
    Ok(QueryOptions {
        engine: api.options().engine.clone(),
        lookback_delta,
        query_text: params.get("query").to_string(),
        cancel: None,
    })
}

/// Builds the success envelope around a query result.
fn respond(
    mut out: QueryOutput,
    timings: Timings,
    limit: usize,
    stats: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut annotations = Annotations {
        warnings: std::mem::take(&mut out.warnings),
        infos: std::mem::take(&mut out.infos),
    };
    let truncated = match &mut out.value {
        Value::Vector(v) if limit > 0 && v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if limit > 0 && m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        annotations.warn(super::TRUNCATED);
    }
    if !matches!(stats, "" | "true" | "all") {
        annotations.warn(format!(
            "value {} for parameter \"stats\" is deprecated and will be rejected in the next major release, use \"true\" or \"all\"",
            crate::gofmt::quote(stats)
        ));
    }
    let len_hint = result_len_hint(&out.value) + 256;
    let write = |o: &mut dyn ResultOut| {
        o.buf().push_str(response::SUCCESS_START);
        o.buf().push('{');
        push_result(o, &out.value);
        let body = o.buf();
        if !stats.is_empty() {
            push_stats(body, &out.stats, &timings);
        }
        body.push('}');
        response::push_success_end(body, annotations);
    };
    // The hint errs high: below it, the estimate need not be made.
    if gzip::accepted(headers) && len_hint >= gzip::PIPELINE_FROM {
        let expected = result_len_estimate(&out.value) + 256;
        if expected >= gzip::PIPELINE_FROM {
            // Deflated on several cores while it is written.
            let gz = gzip::gzip_written(crate::eval::cores(), expected, |w| write(w));
            return Ok(response::success_gzipped(gz));
        }
    }
    // Shorter answers are gzipped whole, if at all, by `gzip::compress_whole`.
    let mut body = String::with_capacity(len_hint + 64);
    write(&mut body);
    Ok(response::success_body(body))
}

pub(crate) async fn query(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = parse_limit(params.get("limit"), "limit").map_err(|e| invalid("limit", e))?;
    let time = params.time("time", now_ms())?;
    let timeout = timeout(&api, &params)?;
    let opts = query_options(&api, &params)?;
    let expr = parse_cached(&api, &params)?;
    let db = api.db().clone();
    // Small queries are evaluated on this worker thread, with no thread
    // hand-off; large ones on the blocking pool (see `Slots::run_prepared`).
    let (out, timings) = api
        .slots()
        .run_prepared(timeout, opts, move |o| {
            eval::prepare(&db, expr, time, time, 0, o)
        })
        .await?;
    respond(out, timings, limit, params.get("stats"), &headers)
}

pub(crate) async fn query_range(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = parse_limit(params.get("limit"), "limit").map_err(|e| invalid("limit", e))?;
    let start = super::time::parse_time(params.get("start")).map_err(|e| invalid("start", e))?;
    let end = super::time::parse_time(params.get("end")).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid("end", ParamError::EndBeforeStart));
    }
    let step_ns = parse_duration_ns(params.get("step")).map_err(|e| invalid("step", e))?;
    if step_ns <= 0 {
        return Err(invalid("step", ParamError::NonPositiveStep));
    }
    // Go: `end.Sub(start) / step > 11000`, integer nanoseconds (the
    // difference saturates at the largest duration).
    let span_ns = (i128::from(end) - i128::from(start)) * 1_000_000;
    if span_ns.min(i128::from(i64::MAX)) / i128::from(step_ns) > MAX_POINTS {
        return Err(ApiError::TooManyPoints);
    }
    let step_ms = (step_ns / 1_000_000).max(1);
    let timeout = timeout(&api, &params)?;
    let opts = query_options(&api, &params)?;
    let expr = parse_cached(&api, &params)?;
    let ty = expr.value_type();
    if !matches!(ty, ValueType::Scalar | ValueType::Vector) {
        return Err(invalid("query", ParamError::RangeQueryType(documented(ty))));
    }
    let db = api.db().clone();
    let (out, timings) = api
        .slots()
        .run_prepared(timeout, opts, move |o| {
            eval::prepare(&db, expr, start, end, step_ms, o)
        })
        .await?;
    respond(out, timings, limit, params.get("stats"), &headers)
}

/// Prometheus's `DocumentedType`.
fn documented(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

/// Does the expression read any series?
fn has_selector(e: &Expr) -> bool {
    match e {
        Expr::Number(_) | Expr::String(_) => false,
        Expr::Vector(_) | Expr::Matrix(_) => true,
        Expr::Subquery(s) => has_selector(&s.expr),
        Expr::Paren(e) | Expr::Unary(_, e) => has_selector(e),
        Expr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        Expr::Aggregate(a) => has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector),
        Expr::Call(c) => c.args.iter().any(has_selector),
    }
}

/// Silt stores no exemplars yet: a valid query gets an empty list (204
/// without selectors, as in Prometheus), so clients that probe for
/// exemplar support (Grafana) see a working endpoint.
pub(crate) async fn query_exemplars(params: Params) -> Result<Response, ApiError> {
    let start = params.time("start", MIN_TIME_MS)?;
    let end = params.time("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::ExemplarEndBeforeStart);
    }
    let expr = promql::parse(params.get("query")).map_err(ApiError::Query)?;
    if !has_selector(&expr) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(response::success(Vec::<()>::new(), Annotations::default()))
}

pub(crate) async fn format_query(params: Params) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    Ok(response::success(
        promql::pretty(&expr),
        Annotations::default(),
    ))
}

pub(crate) async fn parse_query_ast(params: Params) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    Ok(response::success(
        ast_json::translate(&expr),
        Annotations::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::QueryStats;
    use axum::http::HeaderValue;
    use std::io::Read;

    fn output() -> QueryOutput {
        QueryOutput {
            value: super::super::result_json::test_matrix(64, 600, 60_000),
            warnings: vec!["PromQL warning: w".into()],
            infos: vec!["PromQL info: i".into()],
            stats: QueryStats::default(),
        }
    }

    async fn body(resp: Response) -> Vec<u8> {
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn instant_and_range_queries_parse_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let db = engine::Db::open(
            engine::Options::new(dir.path()),
            &mut prometheus_client::registry::Registry::default(),
        )
        .unwrap();
        let api = Api::new(db, super::super::ApiOptions::default());
        let params = |q: &str| Params::from_parts(Some(q), None);
        let ok = |r: Result<Response, ApiError>| assert_eq!(r.ok().unwrap().status(), 200);
        let instant = |q: &str| query(State(api.clone()), HeaderMap::new(), params(q));
        ok(instant("query=1%2B1&time=1").await);
        assert_eq!(api.parsed.len(), 1);
        let range = params("query=2*3&start=1&end=60&step=15");
        ok(query_range(State(api.clone()), HeaderMap::new(), range).await);
        assert_eq!(api.parsed.len(), 2);
        // Asked again: found, not added.
        ok(instant("query=1%2B1&time=2").await);
        assert_eq!(api.parsed.len(), 2);
    }

    #[tokio::test]
    async fn a_gzipped_answer_inflates_to_the_plain_one() {
        let plain = respond(output(), Timings::default(), 20, "all", &HeaderMap::new()).unwrap();
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = body(plain).await;
        assert!(plain.len() >= gzip::PIPELINE_FROM);
        let mut headers = HeaderMap::new();
        headers.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
        let gz = respond(output(), Timings::default(), 20, "all", &headers).unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&body(gz).await[..])
            .read_to_end(&mut text)
            .unwrap();
        assert_eq!(text, plain);
        // The limit cut the answer and said so; stats and annotations are there.
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["data"]["result"].as_array().unwrap().len(), 20);
        assert!(v["data"]["stats"]["samples"].is_object());
        assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
        assert_eq!(v["infos"][0], "PromQL info: i");
    }
}
