//! The `samples` and `series` tables over a live engine: head data and
//! block data answer alike, filters narrow what is read without changing
//! answers, limits refuse, and `/api/v1/sql` renders the documented JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use engine::{Db, Labels, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sql::api::{SqlApi, SqlOptions, engine_context, routes};
use sql::table::TableLimits;
use tower::ServiceExt;

const MINUTE: i64 = 60_000;

fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    Db::open(o, &mut Registry::default()).unwrap()
}

fn append(db: &Arc<Db>, pairs: &[(&str, &str)], points: &[(i64, f64)]) {
    let batch = WriteBatch {
        series: vec![SeriesSamples::new(
            Labels::new(pairs),
            points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        )],
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();
}

/// Three series; `up{job="b"}` ends with a stale marker.
fn fill(db: &Arc<Db>) {
    append(
        db,
        &[("__name__", "up"), ("job", "a"), ("instance", "x:1")],
        &[(0, 1.0), (MINUTE, 1.0), (2 * MINUTE, 0.0)],
    );
    append(
        db,
        &[("__name__", "up"), ("job", "b")],
        &[(0, 1.0), (MINUTE, f64::from_bits(STALE_NAN))],
    );
    append(
        db,
        &[("__name__", "node_load1"), ("job", "a")],
        &[(30_000, 0.25), (90_000, 1.5)],
    );
}

async fn pretty(ctx: &SessionContext, sql: &str) -> String {
    let batches = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    pretty_format_batches(&batches).unwrap().to_string()
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

const UP_ROWS: &str = "
+--------+-------------------------+----------------------+-------+
| metric | labels                  | timestamp            | value |
+--------+-------------------------+----------------------+-------+
| up     | {instance: x:1, job: a} | 1970-01-01T00:00:00Z | 1.0   |
| up     | {instance: x:1, job: a} | 1970-01-01T00:01:00Z | 1.0   |
| up     | {instance: x:1, job: a} | 1970-01-01T00:02:00Z | 0.0   |
| up     | {job: b}                | 1970-01-01T00:00:00Z | 1.0   |
| up     | {job: b}                | 1970-01-01T00:01:00Z | NaN   |
+--------+-------------------------+----------------------+-------+";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_and_blocks_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db);
    let ctx = engine_context(&db, TableLimits::default()).unwrap();
    let sql = "SELECT * FROM samples WHERE metric = 'up' ORDER BY labels['job'], timestamp";
    let from_head = pretty(&ctx, sql).await;
    assert_eq!(lines(&from_head), lines(UP_ROWS), "{from_head}");

    let db2 = db.clone();
    tokio::task::spawn_blocking(move || db2.cut_head().unwrap())
        .await
        .unwrap()
        .expect("a block was cut");
    assert_eq!(db.stats().head_series, 3, "active series stay in the head");
    let from_blocks = pretty(&ctx, sql).await;
    assert_eq!(from_head, from_blocks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_without_changing_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db);
    let ctx = engine_context(&db, TableLimits::default()).unwrap();
    let cases = [
        (
            "SELECT count(*) AS n FROM samples WHERE labels['job'] = 'a'",
            "5",
        ),
        (
            "SELECT count(*) AS n FROM samples WHERE metric IN ('up', 'nope') \
             AND timestamp >= '1970-01-01T00:01:00Z'",
            "3",
        ),
        (
            "SELECT count(*) AS n FROM samples WHERE timestamp > '1970-01-01T00:00:30Z' \
             AND timestamp < '1970-01-01T00:02:00Z'",
            "3",
        ),
        (
            "SELECT count(*) AS n FROM samples WHERE timestamp BETWEEN \
             '1970-01-01T00:00:30Z' AND '1970-01-01T00:01:30Z'",
            "4",
        ),
        ("SELECT count(*) AS n FROM samples WHERE metric = ''", "0"),
        (
            "SELECT count(*) AS n FROM samples WHERE labels['instance'] IS NULL",
            "4",
        ),
        ("SELECT count(*) AS n FROM series", "3"),
        (
            "SELECT count(*) AS n FROM series WHERE labels['job'] = 'a' AND metric = 'up'",
            "1",
        ),
    ];
    for (sql, want) in cases {
        let got = pretty(&ctx, sql).await;
        let row = lines(&got)[3].clone();
        assert_eq!(
            row.trim_matches(|c| c == '|' || c == ' '),
            want,
            "{sql}\n{got}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_with_a_message_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db);
    let limits = TableLimits {
        max_samples: 4,
        max_series: 10,
    };
    let ctx = engine_context(&db, limits).unwrap();
    let err = ctx
        .sql("SELECT * FROM samples")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("query.max_samples"), "{err}");
    // Narrow enough: fine.
    let ok = pretty(
        &ctx,
        "SELECT count(*) FROM samples WHERE metric = 'node_load1'",
    )
    .await;
    assert!(ok.contains("| 2 "), "{ok}");
}

async fn call(db: &Arc<Db>, req: Request<Body>) -> (StatusCode, String, Value) {
    let app = routes(SqlApi::new(db.clone(), SqlOptions::default()));
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ctype, json)
}

fn get(query: &str) -> Request<Body> {
    let q: String = form_encode(query);
    Request::get(format!("/api/v1/sql?query={q}"))
        .body(Body::empty())
        .unwrap()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_renders_json_csv_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db);

    let (status, _, body) = call(
        &db,
        get(
            "SELECT labels, timestamp, value FROM samples WHERE metric = 'up' \
             AND labels['job'] = 'b' ORDER BY timestamp",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": {
            "columns": [
                {"name": "labels", "type": "MAP(VARCHAR, VARCHAR)"},
                {"name": "timestamp", "type": "TIMESTAMP"},
                {"name": "value", "type": "DOUBLE"}],
            "rows": [
                [{"job": "b"}, "1970-01-01T00:00:00Z", 1.0],
                [{"job": "b"}, "1970-01-01T00:01:00Z", "NaN"]]}})
    );

    // POST form with a CSV answer; a raw SQL body.
    let req = Request::post("/api/v1/sql")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "format=csv&query={}",
            form_encode(
                "SELECT metric, count(*) AS n FROM samples GROUP BY metric ORDER BY metric"
            )
        )))
        .unwrap();
    let (status, ctype, body) = call(&db, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert_eq!(body, Value::String("metric,n\nnode_load1,2\nup,5\n".into()));
    let req = Request::post("/api/v1/sql")
        .header("content-type", "application/sql")
        .body(Body::from("SELECT 1 + 1 AS two"))
        .unwrap();
    let (status, _, body) = call(&db, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["rows"], json!([[2]]));

    // Client errors are bad_data; statements that write are refused.
    for bad in [
        "",
        "SELEC 1",
        "SELECT nope FROM samples",
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE samples",
    ] {
        let (status, _, body) = call(&db, get(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{bad}: {body}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
}
