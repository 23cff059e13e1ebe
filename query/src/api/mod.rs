//! The Prometheus-compatible HTTP API (storage-level read-back for now:
//! series, label names and values, metadata, and a VictoriaMetrics-style
//! raw export). Handlers turn engine results into Prometheus JSON; PromQL
//! query endpoints will join them here.
//!
//! Engine calls run on Tokio's blocking pool: they may read blocks from
//! disk and must not stall the async workers.

mod cors;
mod error;
mod export;
pub mod format;
mod labels;
mod metadata;
mod params;
mod response;
mod series;
pub mod time;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use engine::{Db, Matcher, Querier, SeriesEntry};

pub use cors::{CorsOrigin, apply_cors, with_cors};
pub use error::{ApiError, ErrorType, FormError, LimitError, MatcherError, ParamError};
pub use labels::unescape_name;
pub use params::Params;
pub use response::Annotations;

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
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_export_series: 1_000_000,
            max_form_bytes: 10 << 20,
            cors_origin: CorsOrigin::any(),
        }
    }
}

/// Shared state of the API handlers.
pub struct Api {
    db: Arc<Db>,
    opts: ApiOptions,
}

impl Api {
    pub fn new(db: Arc<Db>, opts: ApiOptions) -> Arc<Api> {
        Arc::new(Api { db, opts })
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

/// The warning Prometheus adds when `limit` cut a result short.
const TRUNCATED: &str = "results truncated due to limit";

/// Truncates `items` to `limit` (0 = no limit), warning when it does.
fn apply_limit<T>(items: &mut Vec<T>, limit: usize, annotations: &mut Annotations) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        annotations.warn(TRUNCATED);
    }
}
