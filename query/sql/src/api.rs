//! `GET|POST /api/v1/sql`: SQL over the engine's data (the tables of
//! [`crate::table`]), answered in the Prometheus API's envelope.
//!
//! Parameters (URL query or urlencoded form body, as for `/api/v1/query`):
//! `query` (the SQL statement) and `format` (`json`, the default, or
//! `csv`). A body sent as `Content-Type: application/sql` or `text/plain`
//! is the statement itself.
//!
//! JSON answer: `{"status":"success","data":{"columns":[{"name","type"}],
//! "rows":[[...], ...]}}`. Integers and finite floats are JSON numbers,
//! NaN and infinities the strings `"NaN"`, `"+Inf"`, `"-Inf"` (as
//! Prometheus writes them), maps JSON objects, timestamps RFC 3339 strings,
//! NULL `null`. At most [`SqlOptions::max_rows`] rows are returned; more
//! adds a warning. Errors: 400 `bad_data` (no query, SQL that does not
//! parse or plan, a statement that is not a query), 422 `execution` (a
//! limit or a failure while running), 503 `timeout`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use engine::Db;
use futures::StreamExt;
use query::api::{ErrorType, Params};
use serde_json::{Map, Value, json};

use crate::table::{EngineTable, SAMPLES, SERIES, TableLimits};

/// Limits of the SQL endpoint.
#[derive(Debug, Clone, Copy)]
pub struct SqlOptions {
    pub limits: TableLimits,
    /// Deadline of one statement (the PromQL `query.timeout`).
    pub timeout: Duration,
    /// Most rows one answer returns.
    pub max_rows: usize,
    /// Largest request body read.
    pub max_body_bytes: usize,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            limits: TableLimits::default(),
            timeout: Duration::from_secs(120),
            max_rows: 100_000,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The endpoint's state.
pub struct SqlApi {
    db: Arc<Db>,
    opts: SqlOptions,
}

impl SqlApi {
    pub fn new(db: Arc<Db>, opts: SqlOptions) -> Arc<SqlApi> {
        Arc::new(SqlApi { db, opts })
    }

    /// A session with the `samples` and `series` tables over the engine.
    pub fn context(&self) -> Result<SessionContext, DataFusionError> {
        engine_context(&self.db, self.opts.limits)
    }
}

/// A session with the `samples` and `series` tables over `db`.
pub fn engine_context(
    db: &Arc<Db>,
    limits: TableLimits,
) -> Result<SessionContext, DataFusionError> {
    let config = SessionConfig::new().with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table(SAMPLES, Arc::new(EngineTable::samples(db.clone(), limits)))?;
    ctx.register_table(SERIES, Arc::new(EngineTable::series(db.clone(), limits)))?;
    Ok(ctx)
}

/// `/api/v1/sql`, GET and POST.
pub fn routes(api: Arc<SqlApi>) -> Router {
    Router::new()
        .route("/api/v1/sql", get(handle).post(handle))
        .with_state(api)
}

/// Why a statement failed, with its API error type.
#[derive(Debug)]
struct SqlError {
    kind: ErrorType,
    message: String,
}

impl SqlError {
    fn bad_data(message: impl Into<String>) -> SqlError {
        SqlError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    /// DataFusion's error, classified: planning and parsing are the
    /// client's fault, everything else happened while running.
    fn from_datafusion(e: DataFusionError) -> SqlError {
        let kind = match e.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => ErrorType::BadData,
            _ => ErrorType::Execution,
        };
        SqlError {
            kind,
            message: e.find_root().to_string(),
        }
    }
}

impl IntoResponse for SqlError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "errorType": self.kind.as_str(),
            "error": self.message,
        });
        (self.kind.status(), axum::Json(body)).into_response()
    }
}

enum Format {
    Json,
    Csv,
}

async fn handle(State(api): State<Arc<SqlApi>>, req: Request) -> Response {
    match run(&api, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(api: &SqlApi, req: Request) -> Result<Response, SqlError> {
    let (parts, body) = req.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body: Bytes = axum::body::to_bytes(body, api.opts.max_body_bytes)
        .await
        .map_err(|e| SqlError::bad_data(format!("reading the request body: {e}")))?;
    let raw_statement =
        content_type.starts_with("application/sql") || content_type.starts_with("text/plain");
    let form = (!raw_statement && content_type.starts_with("application/x-www-form-urlencoded"))
        .then_some(&body[..]);
    let params = Params::from_parts(parts.uri.query(), form);
    let statement = if raw_statement {
        std::str::from_utf8(&body)
            .map_err(|_| SqlError::bad_data("the request body is not UTF-8"))?
            .to_owned()
    } else {
        params.get("query").to_owned()
    };
    if statement.trim().is_empty() {
        return Err(SqlError::bad_data(
            "missing parameter \"query\": an SQL statement",
        ));
    }
    let format = match params.get("format") {
        "" | "json" => Format::Json,
        "csv" => Format::Csv,
        other => {
            return Err(SqlError::bad_data(format!(
                "unknown format {other:?}: json or csv"
            )));
        }
    };
    let ctx = api.context().map_err(SqlError::from_datafusion)?;
    let work = execute(&ctx, &statement, api.opts.max_rows);
    let (batches, truncated) = tokio::time::timeout(api.opts.timeout, work)
        .await
        .map_err(|_| SqlError {
            kind: ErrorType::Timeout,
            message: format!(
                "query timed out in expression evaluation (query.timeout {:?})",
                api.opts.timeout
            ),
        })??;
    let mut warnings = Vec::new();
    if truncated {
        warnings.push(format!(
            "the result has more than {} rows; only the first {} are returned",
            api.opts.max_rows, api.opts.max_rows
        ));
    }
    Ok(match format {
        Format::Json => json_response(&batches, &warnings),
        Format::Csv => csv_response(&batches, &warnings),
    })
}

/// Plans and runs `statement` (read-only: no DDL or DML), collecting at most
/// `max_rows` rows; the flag says whether rows were left out.
async fn execute(
    ctx: &SessionContext,
    statement: &str,
    max_rows: usize,
) -> Result<(Vec<RecordBatch>, bool), SqlError> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(statement, options)
        .await
        .map_err(SqlError::from_datafusion)?;
    let mut stream = df
        .execute_stream()
        .await
        .map_err(SqlError::from_datafusion)?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(SqlError::from_datafusion)?;
        if rows + batch.num_rows() > max_rows {
            batches.push(batch.slice(0, max_rows - rows));
            return Ok((batches, true));
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok((batches, false))
}

fn json_response(batches: &[RecordBatch], warnings: &[String]) -> Response {
    let columns: Vec<Value> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": sql_type(f.data_type())}))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            rows.push(Value::Array(
                batch
                    .columns()
                    .iter()
                    .map(|c| cell(c.as_ref(), i))
                    .collect(),
            ));
        }
    }
    let mut body = json!({
        "status": "success",
        "data": {"columns": columns, "rows": rows},
    });
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The SQL name of a column type (DataFusion's own for the rare ones).
fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Interval(_) => "INTERVAL".into(),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!(
                "MAP({}, {})",
                sql_type(fields[0].data_type()),
                sql_type(fields[1].data_type())
            ),
            other => format!("MAP({other})"),
        },
        other => other.to_string(),
    }
}

/// Prometheus's spelling of a float that JSON cannot hold.
fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v == f64::INFINITY {
        Value::from("+Inf")
    } else if v == f64::NEG_INFINITY {
        Value::from("-Inf")
    } else {
        Value::from(v)
    }
}

/// One cell as JSON.
fn cell(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::from(array.as_boolean().value(i)),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let text = display(array, i);
            text.parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<u64>().map(Value::from))
                .unwrap_or(Value::String(text))
        }
        DataType::Map(..) => {
            let map = array.as_map().value(i);
            let keys = map.column(0);
            let values = map.column(1);
            let mut out = Map::new();
            for j in 0..map.len() {
                out.insert(display(keys.as_ref(), j), cell(values.as_ref(), j));
            }
            Value::Object(out)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Value::String(display(array, i))
        }
        _ => Value::String(display(array, i)),
    }
}

fn display(array: &dyn Array, i: usize) -> String {
    let options = FormatOptions::default().with_null("");
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => f.value(i).to_string(),
        Err(e) => format!("<{e}>"),
    }
}

fn csv_response(batches: &[RecordBatch], warnings: &[String]) -> Response {
    let mut out = String::new();
    if let Some(b) = batches.first() {
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| csv_field(f.name()))
            .collect();
        out.push_str(&names.join(","));
        out.push('\n');
    }
    for batch in batches {
        for i in 0..batch.num_rows() {
            let fields: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| match cell(c.as_ref(), i) {
                    Value::Null => String::new(),
                    Value::String(s) => csv_field(&s),
                    other => csv_field(&other.to_string()),
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    let mut response = Response::new(Body::from(out));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Some(w) = warnings.first()
        && let Ok(v) = HeaderValue::from_str(w)
    {
        response.headers_mut().insert("x-silt-warning", v);
    }
    response
}

/// RFC 4180 quoting when needed.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
