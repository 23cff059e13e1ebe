//! The reports HTTP API (JSON in Prometheus's envelope:
//! `{"status":"success","data":...}` or `{"status":"error","errorType":..,
//! "error":..}`):
//! - `GET /api/v1/reports`: definitions with next and last runs;
//! - `GET /api/v1/reports/{name}/runs`: runs, newest first;
//! - `POST /api/v1/reports/{name}/run`: runs now, answers the run record
//!   when it is done (200 whether the run succeeded or failed; 409 when
//!   it is already running);
//! - `GET /api/v1/reports/{name}/runs/{id}/{file}`: an output file.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::error::ReportError;
use crate::service::Reports;
use crate::store::Trigger;

fn ok<T: Serialize>(data: T) -> Response {
    axum::Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

fn error(e: &ReportError) -> Response {
    let (status, kind) = match e {
        ReportError::UnknownReport(_)
        | ReportError::UnknownRun { .. }
        | ReportError::UnknownFile { .. } => (StatusCode::NOT_FOUND, "not_found"),
        ReportError::AlreadyRunning(_) => (StatusCode::CONFLICT, "conflict"),
        ReportError::Config(_) => (StatusCode::BAD_REQUEST, "bad_data"),
        ReportError::Io { .. } | ReportError::Corrupt { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    (
        status,
        axum::Json(
            serde_json::json!({"status": "error", "errorType": kind, "error": e.to_string()}),
        ),
    )
        .into_response()
}

async fn list(State(r): State<Arc<Reports>>) -> Response {
    match tokio::task::spawn_blocking(move || r.list()).await {
        Ok(Ok(v)) => ok(v),
        Ok(Err(e)) => error(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn runs(State(r): State<Arc<Reports>>, Path(name): Path<String>) -> Response {
    match tokio::task::spawn_blocking(move || r.runs(&name)).await {
        Ok(Ok(v)) => ok(v),
        Ok(Err(e)) => error(&e),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn run(State(r): State<Arc<Reports>>, Path(name): Path<String>) -> Response {
    match r.run_now(&name, Trigger::Manual, None).await {
        Ok(rec) => ok(rec),
        Err(e) => error(&e),
    }
}

async fn file(
    State(r): State<Arc<Reports>>,
    Path((name, id, file)): Path<(String, String, String)>,
) -> Response {
    let found = r.store().file(&name, &id, &file);
    let (path, meta) = match found {
        Ok(x) => x,
        Err(e) => return error(&e),
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) => return error(&ReportError::io(&path, e)),
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", meta.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Reports are self-contained: nothing may load or run.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The reports API routes, to merge into the server's router.
pub fn routes(reports: Arc<Reports>) -> Router {
    Router::new()
        .route("/api/v1/reports", get(list))
        .route("/api/v1/reports/{name}/runs", get(runs))
        .route("/api/v1/reports/{name}/run", post(run))
        .route("/api/v1/reports/{name}/runs/{id}/{file}", get(file))
        .with_state(reports)
}
