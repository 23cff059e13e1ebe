//! Admin endpoints: `POST|PUT /api/v1/admin/tsdb/snapshot` (Prometheus's),
//! and Silt's own `cut_head` (cut the head into a block now) and `compact`
//! (one round of compaction and retention now).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use engine::Db;
use serde::Serialize;

#[derive(Clone)]
pub struct Admin {
    pub db: Arc<Db>,
    pub data_dir: PathBuf,
}

/// The Prometheus API envelope, as far as these endpoints need it.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn success<T: Serialize>(data: Option<T>) -> Response {
    axum::Json(Envelope {
        status: "success",
        data,
        error_type: None,
        error: None,
    })
    .into_response()
}

fn bad_data(message: String) -> Response {
    let body = Envelope::<()> {
        status: "error",
        data: None,
        error_type: Some("bad_data"),
        error: Some(message),
    };
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn internal(message: String) -> Response {
    let body = Envelope::<()> {
        status: "error",
        data: None,
        error_type: Some("internal"),
        error: Some(message),
    };
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

pub fn routes(admin: Admin) -> Router {
    Router::new()
        .route("/api/v1/admin/tsdb/snapshot", post(snapshot).put(snapshot))
        .route("/api/v1/admin/tsdb/cut_head", post(cut_head).put(cut_head))
        .route("/api/v1/admin/tsdb/compact", post(compact).put(compact))
        .with_state(admin)
}

/// `<UTC yyyymmddThhmmssZ>-<16 hex digits>`, as Prometheus names snapshots.
pub fn snapshot_name(now: SystemTime, random: u64) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    format!("{stamp}-{random:016x}")
}

/// Runs blocking engine work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> engine::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("task failed: {e}")),
    }
}

/// Prometheus accepts `skip_head`; Silt's snapshot always includes the
/// head (a superset of what was asked), so the parameter is ignored.
async fn snapshot(State(admin): State<Admin>) -> Response {
    let name = snapshot_name(SystemTime::now(), rand::random());
    let dir = admin.data_dir.join("snapshots").join(&name);
    let db = admin.db.clone();
    let target = dir.clone();
    match blocking(move || db.snapshot(&target)).await {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "snapshot written");
            #[derive(Serialize)]
            struct Data {
                name: String,
            }
            success(Some(Data { name }))
        }
        Err(e) => internal(format!("create snapshot: {e}")),
    }
}

async fn cut_head(State(admin): State<Admin>) -> Response {
    let db = admin.db.clone();
    match blocking(move || db.cut_head()).await {
        Ok(block) => {
            #[derive(Serialize)]
            struct Data {
                block: Option<String>,
            }
            success(Some(Data { block }))
        }
        Err(e) => internal(format!("cut head: {e}")),
    }
}

/// `?force=true` also merges incomplete windows ([`Db::compact_all`]).
async fn compact(
    State(admin): State<Admin>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let force = match params.get("force").map(String::as_str) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return bad_data(format!(
                "invalid parameter \"force\": {other:?} is not a boolean (true, false, 1, 0)"
            ));
        }
    };
    let db = admin.db.clone();
    match blocking(move || {
        if force {
            db.compact_all()
        } else {
            db.compact()
        }
    })
    .await
    {
        Ok(()) => {
            #[derive(Serialize)]
            struct Data {
                blocks: u64,
            }
            success(Some(Data {
                blocks: admin.db.stats().blocks,
            }))
        }
        Err(e) => internal(format!("compact: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let t = UNIX_EPOCH + Duration::from_secs(1_512_940_344);
        assert_eq!(
            snapshot_name(t, 0x2be6_50b6_d019_eb54),
            "20171210T211224Z-2be650b6d019eb54"
        );
        assert_eq!(snapshot_name(t, 1), "20171210T211224Z-0000000000000001");
    }
}
