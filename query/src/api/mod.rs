//! The Prometheus-compatible HTTP API: PromQL queries (`query`,
//! `query_range`, `format_query`, `parse_query`, `query_exemplars`),
//! series, label names and values, metadata, status pages, a
//! VictoriaMetrics-style raw export, and Silt's forecasting endpoints
//! (`forecast`, `capacity`). Handlers turn engine and evaluator
//! results into Prometheus JSON.
//!
//! Engine calls and evaluations run on Tokio's blocking pool: they may
//! read blocks from disk and must not stall the async workers (which keep
//! serving ingest). Queries are admitted through [`limits::Slots`].

mod ast_json;
mod capacity;
mod cors;
pub mod deflate;
mod error;
mod export;
mod forecast;
pub mod format;
pub mod gzip;
mod labels;
pub mod limits;
mod metadata;
mod params;
mod parse_cache;
mod query;
mod response;
mod result_json;
mod series;
pub mod status;
pub mod time;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use engine::{Db, Matcher, Querier, SeriesEntry};

pub use ast_json::translate as ast_to_json;
pub use cors::{CorsOrigin, apply_cors, with_cors};
pub use error::{ApiError, ErrorType, FormError, LimitError, MatcherError, ParamError};
pub use forecast::{BAND_LABEL, ForecastParamError};
pub use labels::unescape_name;
pub use limits::{ConcurrencyOptions, Slots};
pub use params::Params;
pub use response::Annotations;
pub use status::{BuildInfo, ConfigStatus, StatusInfo};

use crate::eval::EngineOptions;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// `/api/v1/export` refuses (422) to stream more series than this.
    pub max_export_series: usize,
    /// Largest urlencoded POST body read for parameters (Go's `ParseForm`
    /// allows 10 MiB).
    pub max_form_bytes: usize,
    /// Origins allowed by CORS (default: any).
    pub cors_origin: CorsOrigin,
    /// The evaluator's limits: timeout, max samples, max series, lookback.
    pub engine: EngineOptions,
    /// Query slots and how long a query may wait for one.
    pub concurrency: ConcurrencyOptions,
    /// What the status endpoints report.
    pub status: StatusInfo,
    /// The checks `/api/v1/capacity` runs (validated by the caller with
    /// [`crate::capacity::validate_all`]); default: the built-in ones.
    pub capacity_checks: Vec<crate::capacity::Check>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_export_series: 1_000_000,
            max_form_bytes: 10 << 20,
            cors_origin: CorsOrigin::any(),
            engine: EngineOptions::default(),
            concurrency: ConcurrencyOptions::default(),
            status: StatusInfo::default(),
            capacity_checks: crate::capacity::builtin_checks(&Default::default()),
        }
    }
}

/// Shared state of the API handlers.
pub struct Api {
    db: Arc<Db>,
    opts: ApiOptions,
    slots: Slots,
    started_ms: i64,
    parsed: parse_cache::ParseCache,
}

impl Api {
    pub fn new(db: Arc<Db>, opts: ApiOptions) -> Arc<Api> {
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Arc::new(Api {
            db,
            slots: Slots::new(opts.concurrency.clone()),
            opts,
            started_ms,
            parsed: parse_cache::ParseCache::default(),
        })
    }

    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// When the API was created (the server's start, for runtimeinfo).
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    pub fn options(&self) -> &ApiOptions {
        &self.opts
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

/// The API's routes, with CORS applied. `GET` and `POST` are accepted on
/// every endpoint (Grafana may POST where Prometheus only documents GET).
pub fn routes(api: Arc<Api>) -> Router {
    let cors = api.opts.cors_origin.clone();
    let router = Router::new()
        .route("/api/v1/query", get(query::query).post(query::query))
        .route(
            "/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/api/v1/query_exemplars",
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .route(
            "/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(query::parse_query_ast).post(query::parse_query_ast),
        )
        .route(
            "/api/v1/status/buildinfo",
            get(status::buildinfo).post(status::buildinfo),
        )
        .route(
            "/api/v1/status/runtimeinfo",
            get(status::runtimeinfo).post(status::runtimeinfo),
        )
        .route(
            "/api/v1/status/flags",
            get(status::flags).post(status::flags),
        )
        .route(
            "/api/v1/status/config",
            get(status::config).post(status::config),
        )
        .route("/api/v1/status/tsdb", get(status::tsdb).post(status::tsdb))
        .route("/api/v1/series", get(series::series).post(series::series))
        .route(
            "/api/v1/labels",
            get(labels::label_names).post(labels::label_names),
        )
        .route(
            "/api/v1/label/{name}/values",
            get(labels::label_values).post(labels::label_values),
        )
        .route(
            "/api/v1/metadata",
            get(metadata::metadata).post(metadata::metadata),
        )
        .route("/api/v1/export", get(export::export).post(export::export))
        .route(
            "/api/v1/forecast",
            get(forecast::forecast).post(forecast::forecast),
        )
        .route(
            "/api/v1/capacity",
            get(capacity::capacity).post(capacity::capacity),
        )
        .with_state(api);
    with_cors(router, cors)
}

/// Runs engine work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
}

/// The series matching any of `sets`, sorted by labels, without duplicates.
fn select_union(q: &Querier, sets: &[Vec<Matcher>]) -> Result<Vec<SeriesEntry>, ApiError> {
    if let [only] = sets {
        return Ok(q.select(only)?);
    }
    let mut all = Vec::new();
    for set in sets {
        all.extend(q.select(set)?);
    }
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    all.dedup_by(|a, b| a.labels == b.labels);
    Ok(all)
}

/// A bad parameter `param`.
fn invalid(param: &'static str, source: impl Into<ParamError>) -> ApiError {
    ApiError::InvalidParam {
        param,
        source: source.into(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The query deadline: `--query.timeout`, lowered by a `timeout` parameter.
fn timeout(api: &Api, params: &Params) -> Result<std::time::Duration, ApiError> {
    let max = api.options().engine.timeout;
    match params.get("timeout") {
        "" => Ok(max),
        s => {
            let ns = time::parse_duration_ns(s).map_err(|e| invalid("timeout", e))?;
            Ok(std::time::Duration::from_nanos(ns.max(0) as u64).min(max))
        }
    }
}

/// The warning Prometheus adds when `limit` cut a result short.
const TRUNCATED: &str = "results truncated due to limit";

/// Truncates `items` to `limit` (0 = no limit), warning when it does.
fn apply_limit<T>(items: &mut Vec<T>, limit: usize, annotations: &mut Annotations) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        annotations.warn(TRUNCATED);
    }
}
