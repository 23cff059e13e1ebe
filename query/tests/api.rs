//! Handler tests for the HTTP API against a real `Db` in a temp dir,
//! driven through the router with `tower::ServiceExt::oneshot`. The PromQL
//! endpoints (and Grafana's call list) are in `api/promql.rs`, the status
//! endpoints in `api/status.rs`.

#[path = "api/promql.rs"]
mod promql;
#[path = "api/status.rs"]
mod status;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use engine::{
    Db, Labels, MetricMetadata, MetricType, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch,
};
use query::api::{Api, ApiOptions, routes};
use serde_json::Value;
use tower::ServiceExt;

const T0: i64 = 1_700_000_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    router: Router,
    api: std::sync::Arc<Api>,
}

/// Every special value the export must carry bit-exactly.
fn special_values() -> Vec<f64> {
    vec![
        f64::from_bits(STALE_NAN),
        f64::from_bits(0x7ff8_0000_0000_0001), // Go's math.NaN()
        f64::NAN,
        f64::from_bits(0xfff8_0000_0000_0000), // negative NaN
        f64::from_bits(0x7ff4_0000_0000_dead), // signalling NaN with payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        0.1,
        1e21,
        1e-7,
        -123.456,
    ]
}

fn series_data() -> Vec<(Labels, Vec<Sample>)> {
    let ramp = |n: i64, step: i64| {
        (0..n)
            .map(|i| Sample::new(T0 + i * step, i as f64))
            .collect::<Vec<_>>()
    };
    vec![
        (
            Labels::new(&[("__name__", "up"), ("job", "api"), ("instance", "a")]),
            ramp(10, 15_000),
        ),
        (
            Labels::new(&[("__name__", "up"), ("job", "api"), ("instance", "b")]),
            ramp(10, 15_000),
        ),
        (
            Labels::new(&[("__name__", "up"), ("job", "db"), ("instance", "c")]),
            ramp(3, 15_000),
        ),
        (
            Labels::new(&[
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", "0"),
                ("mode", "idle"),
            ]),
            ramp(5, 60_000),
        ),
        (
            Labels::new(&[
                ("__name__", "http.server.duration"),
                ("service.name", "checkout"),
            ]),
            vec![Sample::new(T0, 0.25)],
        ),
        (
            Labels::new(&[("__name__", "specials")]),
            special_values()
                .into_iter()
                .enumerate()
                .map(|(i, v)| Sample::new(T0 + i as i64 * 1000, v))
                .collect(),
        ),
    ]
}

async fn fixture_with(opts: ApiOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let db = Db::open(Options::new(dir.path()), &mut registry).unwrap();
    let batch = WriteBatch {
        series: series_data()
            .into_iter()
            .map(|(labels, samples)| SeriesSamples::new(labels, samples))
            .collect(),
        metadata: vec![
            MetricMetadata {
                metric_family: "up".into(),
                metric_type: MetricType::Gauge,
                help: "Target is up.".into(),
                unit: String::new(),
            },
            MetricMetadata {
                metric_family: "node_cpu_seconds_total".into(),
                metric_type: MetricType::Counter,
                help: "CPU time.".into(),
                unit: "seconds".into(),
            },
            MetricMetadata {
                metric_family: "node_cpu_seconds_total".into(),
                metric_type: MetricType::Counter,
                help: "Seconds the CPUs spent in each mode.".into(),
                unit: "seconds".into(),
            },
        ],
    };
    db.append(&batch).unwrap().wait().await.unwrap();
    let api = Api::new(db, opts);
    let router = routes(api.clone());
    Fixture {
        _dir: dir,
        router,
        api,
    }
}

async fn fixture() -> Fixture {
    fixture_with(ApiOptions::default()).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a Prometheus error envelope and returns its message.
    fn error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/json");
        let v = self.json();
        assert_eq!(v["status"], "error");
        assert_eq!(v["errorType"], error_type, "{v}");
        v["error"].as_str().unwrap().to_string()
    }

    /// Asserts a success envelope and returns `data`.
    fn data(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/json");
        let v = self.json();
        assert_eq!(v["status"], "success", "{v}");
        v["data"].clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.json()["warnings"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }
}

async fn send(router: &Router, req: Request<Body>) -> Reply {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Percent-encodes a query value (enough for selectors).
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_form(router: &Router, uri: &str, body: &str) -> Reply {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(router, req).await
}

// ---------------------------------------------------------------- /series

#[tokio::test]
async fn series_returns_sorted_label_objects() {
    let f = fixture().await;
    let r = get(&f.router, &format!("/api/v1/series?match[]={}", enc("up"))).await;
    let data = r.data();
    assert_eq!(
        data,
        serde_json::json!([
            {"__name__": "up", "instance": "a", "job": "api"},
            {"__name__": "up", "instance": "b", "job": "api"},
            {"__name__": "up", "instance": "c", "job": "db"},
        ])
    );
    assert!(r.warnings().is_empty());
    assert!(
        !r.text().contains("warnings"),
        "empty fields are omitted: {}",
        r.text()
    );
}

#[tokio::test]
async fn series_merges_body_and_query_and_ignores_unknown_params() {
    let f = fixture().await;
    // Grafana: form body plus custom parameters appended to the URL of the POST.
    let body = format!(
        "match[]={}&start={}&end={}",
        enc(r#"up{job="db"}"#),
        T0 / 1000 - 60,
        T0 / 1000 + 3600
    );
    let uri = format!(
        "/api/v1/series?max_source_resolution=5m&foo=bar&match[]={}",
        enc("node_cpu_seconds_total")
    );
    let data = post_form(&f.router, &uri, &body).await.data();
    assert_eq!(
        data,
        serde_json::json!([
            {"__name__": "node_cpu_seconds_total", "cpu": "0", "mode": "idle"},
            {"__name__": "up", "instance": "c", "job": "db"},
        ])
    );
}

#[tokio::test]
async fn series_union_is_deduplicated() {
    let f = fixture().await;
    let uri = format!(
        "/api/v1/series?match[]={}&match[]={}",
        enc(r#"up{job="api"}"#),
        enc(r#"{instance=~"a|c"}"#)
    );
    let data = get(&f.router, &uri).await.data();
    assert_eq!(data.as_array().unwrap().len(), 3, "{data}");
}

#[tokio::test]
async fn series_utf8_selector() {
    let f = fixture().await;
    let uri = format!(
        "/api/v1/series?match[]={}",
        enc(r#"{"http.server.duration", "service.name"=~"check.*"}"#)
    );
    let data = get(&f.router, &uri).await.data();
    assert_eq!(
        data,
        serde_json::json!([{"__name__": "http.server.duration", "service.name": "checkout"}])
    );
}

#[tokio::test]
async fn series_limit_truncates_with_warning() {
    let f = fixture().await;
    let r = get(&f.router, "/api/v1/series?match[]=up&limit=2").await;
    assert_eq!(r.data().as_array().unwrap().len(), 2);
    assert_eq!(r.warnings(), vec!["results truncated due to limit"]);
    let r = get(&f.router, "/api/v1/series?match[]=up&limit=3").await;
    assert_eq!(r.data().as_array().unwrap().len(), 3);
    assert!(
        r.warnings().is_empty(),
        "exactly at the limit is not truncated"
    );
    let r = get(&f.router, "/api/v1/series?match[]=up&limit=0").await;
    assert_eq!(r.data().as_array().unwrap().len(), 3, "0 = no limit");
}

#[tokio::test]
async fn series_parameter_errors() {
    let f = fixture().await;
    let cases = [
        ("/api/v1/series", "no match[] parameter provided".to_string()),
        ("/api/v1/series?start=1", "no match[] parameter provided".to_string()),
        (
            &*format!("/api/v1/series?match[]={}", enc("{}")),
            r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#.to_string(),
        ),
        (
            &*format!("/api/v1/series?match[]={}", enc(r#"{__name__=~".*"}"#)),
            r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#.to_string(),
        ),
        (
            &*format!("/api/v1/series?match[]=up&match[]={}", enc("{job=~\".*\"}")),
            r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#.to_string(),
        ),
        (
            &*format!("/api/v1/series?match[]={}", enc("up{")),
            r#"invalid parameter "match[]": 1:4: parse error: unexpected end of input inside braces"#.to_string(),
        ),
        (
            "/api/v1/series?match[]=",
            r#"invalid parameter "match[]": unknown position: parse error: unexpected end of input"#.to_string(),
        ),
        (
            &*format!("/api/v1/series?match[]={}", enc(r#"up{job=~"("}"#)),
            r#"invalid parameter "match[]": 1:4: parse error: invalid regular expression "(": unclosed group"#
                .to_string(),
        ),
        ("/api/v1/series?match[]=up&limit=-1", r#"invalid parameter "limit": limit must be non-negative"#.to_string()),
        (
            "/api/v1/series?match[]=up&limit=abc",
            r#"invalid parameter "limit": strconv.Atoi: parsing "abc": invalid syntax"#.to_string(),
        ),
        (
            "/api/v1/series?match[]=up&start=abc",
            r#"invalid parameter "start": invalid time value for 'start': cannot parse "abc" to a valid timestamp"#
                .to_string(),
        ),
        (
            "/api/v1/series?match[]=up&end=2015-13-01T00:00:00Z",
            r#"invalid parameter "end": invalid time value for 'end': cannot parse "2015-13-01T00:00:00Z" to a valid timestamp"#
                .to_string(),
        ),
    ];
    for (uri, want) in cases {
        assert_eq!(
            get(&f.router, uri).await.error(400, "bad_data"),
            want,
            "{uri}"
        );
    }
    // The same rules through a POST body.
    let msg = post_form(&f.router, "/api/v1/series", "match[]=%7B%7D")
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#
    );
}

#[tokio::test]
async fn series_time_formats() {
    let f = fixture().await;
    for (start, end) in [
        (
            "-292273086-05-16T16:47:06Z".to_string(),
            "292277025-08-18T07:12:54.999999999Z".to_string(),
        ),
        (
            "2023-11-14T22:00:00Z".to_string(),
            "2023-11-14T23:00:00.5+01:00".to_string(),
        ),
        (
            (T0 as f64 / 1000.0 - 0.5).to_string(),
            (T0 as f64 / 1000.0 + 1e6).to_string(),
        ),
        // Grafana's exemplar probe sends milliseconds as seconds: parses, matches nothing useful.
        ((T0 - 1_800_000).to_string(), T0.to_string()),
    ] {
        let uri = format!(
            "/api/v1/series?match[]=up&start={}&end={}",
            enc(&start),
            enc(&end)
        );
        assert!(get(&f.router, &uri).await.data().is_array(), "{uri}");
    }
}

// ---------------------------------------------------------------- /labels

#[tokio::test]
async fn label_names_all_and_filtered() {
    let f = fixture().await;
    let data = get(&f.router, "/api/v1/labels").await.data();
    assert_eq!(
        data,
        serde_json::json!(["__name__", "cpu", "instance", "job", "mode", "service.name"])
    );
    let data = get(
        &f.router,
        &format!("/api/v1/labels?match[]={}", enc(r#"up{job="db"}"#)),
    )
    .await
    .data();
    assert_eq!(data, serde_json::json!(["__name__", "instance", "job"]));
    let uri = format!(
        "/api/v1/labels?match[]={}&match[]={}",
        enc("node_cpu_seconds_total"),
        enc(r#"{"http.server.duration"}"#)
    );
    let data = get(&f.router, &uri).await.data();
    assert_eq!(
        data,
        serde_json::json!(["__name__", "cpu", "mode", "service.name"])
    );
    let data = post_form(
        &f.router,
        "/api/v1/labels",
        &format!("match[]={}", enc("up")),
    )
    .await
    .data();
    assert_eq!(data, serde_json::json!(["__name__", "instance", "job"]));
    let data = get(
        &f.router,
        &format!("/api/v1/labels?match[]={}", enc("nope")),
    )
    .await
    .data();
    assert_eq!(data, serde_json::json!([]), "always an array");
}

#[tokio::test]
async fn label_names_limit_and_errors() {
    let f = fixture().await;
    let r = get(&f.router, "/api/v1/labels?limit=2").await;
    assert_eq!(r.data(), serde_json::json!(["__name__", "cpu"]));
    assert_eq!(r.warnings(), vec!["results truncated due to limit"]);
    // The label endpoints report bad selectors without the parameter prefix.
    let msg = get(&f.router, &format!("/api/v1/labels?match[]={}", enc("up{")))
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        "1:4: parse error: unexpected end of input inside braces"
    );
    let msg = get(&f.router, &format!("/api/v1/labels?match[]={}", enc("{}")))
        .await
        .error(400, "bad_data");
    assert_eq!(msg, "match[] must contain at least one non-empty matcher");
    let msg = get(&f.router, "/api/v1/labels?limit=x")
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#
    );
    let msg = get(&f.router, "/api/v1/labels?end=soon")
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        r#"invalid parameter "end": invalid time value for 'end': cannot parse "soon" to a valid timestamp"#
    );
}

// ---------------------------------------------------------------- /label/<name>/values

#[tokio::test]
async fn label_values() {
    let f = fixture().await;
    let data = get(&f.router, "/api/v1/label/job/values").await.data();
    assert_eq!(data, serde_json::json!(["api", "db"]));
    let data = get(&f.router, "/api/v1/label/__name__/values?limit=40000")
        .await
        .data();
    assert_eq!(
        data,
        serde_json::json!([
            "http.server.duration",
            "node_cpu_seconds_total",
            "specials",
            "up"
        ])
    );
    let uri = format!(
        "/api/v1/label/instance/values?match[]={}",
        enc(r#"up{job="api"}"#)
    );
    assert_eq!(
        get(&f.router, &uri).await.data(),
        serde_json::json!(["a", "b"])
    );
    let uri = format!(
        "/api/v1/label/instance/values?match[]={}&match[]={}",
        enc(r#"{job="db"}"#),
        enc(r#"{instance="a"}"#)
    );
    assert_eq!(
        get(&f.router, &uri).await.data(),
        serde_json::json!(["a", "c"])
    );
    // Grafana's metric search while typing.
    let uri = format!(
        "/api/v1/label/__name__/values?match[]={}&limit=1000",
        enc(r#"{__name__=~".*cpu.*"}"#)
    );
    assert_eq!(
        get(&f.router, &uri).await.data(),
        serde_json::json!(["node_cpu_seconds_total"])
    );
    assert_eq!(
        get(&f.router, "/api/v1/label/nonexistent/values")
            .await
            .data(),
        serde_json::json!([])
    );
    let data = post_form(&f.router, "/api/v1/label/job/values", "match[]=up")
        .await
        .data();
    assert_eq!(data, serde_json::json!(["api", "db"]), "POST accepted");
}

#[tokio::test]
async fn label_values_escaped_names_limit_and_errors() {
    let f = fixture().await;
    let data = get(&f.router, "/api/v1/label/U__service_2e_name/values")
        .await
        .data();
    assert_eq!(data, serde_json::json!(["checkout"]));
    let data = get(&f.router, "/api/v1/label/service.name/values")
        .await
        .data();
    assert_eq!(data, serde_json::json!(["checkout"]));
    let r = get(&f.router, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(r.data(), serde_json::json!(["api"]));
    assert_eq!(r.warnings(), vec!["results truncated due to limit"]);
    let msg = get(&f.router, "/api/v1/label/%FF/values")
        .await
        .error(400, "bad_data");
    assert_eq!(msg, "invalid label name: \"\u{FFFD}\"");
    let msg = get(&f.router, "/api/v1/label/U__/values")
        .await
        .error(400, "bad_data");
    assert_eq!(msg, r#"invalid label name: """#);
    let msg = get(
        &f.router,
        &format!("/api/v1/label/job/values?match[]={}", enc("{a=~\"\"}")),
    )
    .await
    .error(400, "bad_data");
    assert_eq!(msg, "match[] must contain at least one non-empty matcher");
    let msg = get(&f.router, "/api/v1/label/job/values?start=x")
        .await
        .error(400, "bad_data");
    assert!(msg.starts_with(r#"invalid parameter "start""#), "{msg}");
}

// ---------------------------------------------------------------- /metadata

#[tokio::test]
async fn metadata() {
    let f = fixture().await;
    let data = get(&f.router, "/api/v1/metadata").await.data();
    assert_eq!(
        data,
        serde_json::json!({
            "node_cpu_seconds_total": [
                {"type": "counter", "help": "Seconds the CPUs spent in each mode.", "unit": "seconds"},
                {"type": "counter", "help": "CPU time.", "unit": "seconds"},
            ],
            "up": [{"type": "gauge", "help": "Target is up.", "unit": ""}],
        })
    );
    assert_eq!(
        get(&f.router, "/api/v1/metadata?limit=0").await.data(),
        serde_json::json!({})
    );
    assert_eq!(
        get(&f.router, "/api/v1/metadata?limit=1")
            .await
            .data()
            .as_object()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get(&f.router, "/api/v1/metadata?limit=-1")
            .await
            .data()
            .as_object()
            .unwrap()
            .len(),
        2
    );
    let data = get(&f.router, "/api/v1/metadata?metric=up").await.data();
    assert_eq!(
        data,
        serde_json::json!({"up": [{"type": "gauge", "help": "Target is up.", "unit": ""}]})
    );
    let data = get(
        &f.router,
        "/api/v1/metadata?limit_per_metric=1&metric=node_cpu_seconds_total",
    )
    .await
    .data();
    assert_eq!(data["node_cpu_seconds_total"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&f.router, "/api/v1/metadata?metric=nope").await.data(),
        serde_json::json!({})
    );
    assert_eq!(
        get(&f.router, "/api/v1/metadata?limit=x")
            .await
            .error(400, "bad_data"),
        "limit must be a number"
    );
    assert_eq!(
        get(&f.router, "/api/v1/metadata?limit_per_metric=1.5")
            .await
            .error(400, "bad_data"),
        "limit_per_metric must be a number"
    );
}

// ---------------------------------------------------------------- /export

/// Decodes export lines into (labels, samples), using `nan_bits` for NaNs.
fn decode_export(body: &[u8]) -> Vec<(Value, Vec<Sample>)> {
    let text = std::str::from_utf8(body).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}"));
        let values = v["values"].as_array().unwrap();
        let timestamps = v["timestamps"].as_array().unwrap();
        assert_eq!(values.len(), timestamps.len());
        let nan_bits: Vec<(usize, u64)> = v["nan_bits"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let hex = p[1].as_str().unwrap().trim_start_matches("0x");
                        (
                            p[0].as_u64().unwrap() as usize,
                            u64::from_str_radix(hex, 16).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let samples = values
            .iter()
            .zip(timestamps)
            .enumerate()
            .map(|(i, (val, t))| {
                let v = match val {
                    Value::Null => {
                        let bits = nan_bits
                            .iter()
                            .find(|(j, _)| *j == i)
                            .expect("every NaN has its bits")
                            .1;
                        f64::from_bits(bits)
                    }
                    Value::String(s) if s == "Infinity" => f64::INFINITY,
                    Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                    Value::Number(n) => n.as_f64().unwrap(),
                    other => panic!("unexpected value {other}"),
                };
                Sample::new(t.as_i64().unwrap(), v)
            })
            .collect();
        out.push((v["metric"].clone(), samples));
    }
    out
}

#[tokio::test]
async fn export_round_trips_every_value_bit_exactly() {
    let f = fixture().await;
    let r = get(
        &f.router,
        &format!("/api/v1/export?match[]={}", enc(r#"{__name__=~".+"}"#)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/stream+json");
    let got = decode_export(&r.body);
    let mut want = series_data();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), want.len());
    for ((metric, samples), (labels, want_samples)) in got.iter().zip(&want) {
        let want_metric: serde_json::Map<String, Value> = labels
            .iter()
            .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
            .collect();
        assert_eq!(metric, &Value::Object(want_metric));
        assert_eq!(samples.len(), want_samples.len(), "{labels}");
        for (g, w) in samples.iter().zip(want_samples) {
            assert_eq!(
                (g.t, g.v.to_bits()),
                (w.t, w.v.to_bits()),
                "{labels}: got {:?} want {:?}",
                g,
                w
            );
        }
    }
}

#[tokio::test]
async fn export_window_split_lines_and_post() {
    let f = fixture().await;
    // [T0+15s, T0+45s] inclusive: samples 1, 2, 3 of each `up` series.
    let uri = format!(
        "/api/v1/export?match[]={}&start={}&end={}",
        enc(r#"up{job="api"}"#),
        (T0 + 15_000) / 1000,
        (T0 + 45_000) / 1000
    );
    let got = decode_export(&get(&f.router, &uri).await.body);
    assert_eq!(got.len(), 2);
    for (_, samples) in &got {
        assert_eq!(
            samples.iter().map(|s| s.t).collect::<Vec<_>>(),
            vec![T0 + 15_000, T0 + 30_000, T0 + 45_000]
        );
    }
    let r = post_form(
        &f.router,
        "/api/v1/export?max_rows_per_line=4",
        &format!("match[]={}", enc(r#"up{instance="a"}"#)),
    )
    .await;
    let got = decode_export(&r.body);
    assert_eq!(
        got.iter().map(|(_, s)| s.len()).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    // Huge "seconds" (Grafana's probe) parse and select nothing.
    let uri = format!(
        "/api/v1/export?match[]=up&start={}&end={}",
        T0,
        T0 + 1_800_000
    );
    let r = get(&f.router, &uri).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn export_errors() {
    let f = fixture().await;
    assert_eq!(
        get(&f.router, "/api/v1/export")
            .await
            .error(400, "bad_data"),
        "no match[] parameter provided"
    );
    let msg = get(&f.router, &format!("/api/v1/export?match[]={}", enc("{}")))
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#
    );
    let msg = get(&f.router, "/api/v1/export?match[]=up&max_rows_per_line=-2")
        .await
        .error(400, "bad_data");
    assert_eq!(
        msg,
        r#"invalid parameter "max_rows_per_line": max_rows_per_line must be non-negative"#
    );
    let small = fixture_with(ApiOptions {
        max_export_series: 2,
        ..ApiOptions::default()
    })
    .await;
    let msg = get(&small.router, "/api/v1/export?match[]=up")
        .await
        .error(422, "execution");
    assert!(msg.contains("exceeds the limit of 2"), "{msg}");
    assert_eq!(
        get(
            &small.router,
            &format!("/api/v1/export?match[]={}", enc(r#"up{job="api"}"#))
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn export_is_gzipped_when_asked() {
    use std::io::Read as _;
    let f = fixture().await;
    let app = f
        .router
        .clone()
        .layer(tower_http::compression::CompressionLayer::new());
    let uri = format!("/api/v1/export?match[]={}", enc(r#"{__name__=~".+"}"#));
    let plain = send(&app, Request::get(&uri).body(Body::empty()).unwrap()).await;
    let req = Request::get(&uri)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let zipped = send(&app, req).await;
    assert_eq!(zipped.status, StatusCode::OK);
    assert_eq!(zipped.headers[header::CONTENT_ENCODING], "gzip");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, plain.body);
    // JSON endpoints too.
    let req = Request::get("/api/v1/labels")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let zipped = send(&app, req).await;
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert!(
        String::from_utf8(decoded)
            .unwrap()
            .starts_with(r#"{"status":"success","data":["__name__""#)
    );
}

// ---------------------------------------------------------------- CORS

#[tokio::test]
async fn cors_headers_and_preflight() {
    let f = fixture().await;
    let req = Request::get("/api/v1/labels")
        .header(header::ORIGIN, "https://grafana.example")
        .body(Body::empty())
        .unwrap();
    let r = send(&f.router, req).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_METHODS],
        "GET, POST, OPTIONS"
    );
    assert_eq!(r.headers[header::VARY], "Origin");
    let r = get(&f.router, "/api/v1/labels").await;
    assert_eq!(r.headers[header::VARY], "Origin");
    assert!(
        r.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
        "no Origin, no CORS headers"
    );
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/series")
        .header(header::ORIGIN, "https://grafana.example")
        .body(Body::empty())
        .unwrap();
    let r = send(&f.router, req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(
        r.headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "Accept, Authorization, Content-Type, Origin"
    );
    // Errors carry CORS headers too.
    let req = Request::get("/api/v1/series")
        .header(header::ORIGIN, "https://x")
        .body(Body::empty())
        .unwrap();
    let r = send(&f.router, req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn oversized_form_bodies_are_rejected() {
    let f = fixture_with(ApiOptions {
        max_form_bytes: 64,
        ..ApiOptions::default()
    })
    .await;
    let body = format!("match[]=up&pad={}", "x".repeat(100));
    let msg = post_form(&f.router, "/api/v1/series", &body)
        .await
        .error(400, "bad_data");
    assert_eq!(msg, "error parsing form values: http: POST too large");
    // Bodies that are not forms are ignored, as Go's ParseForm does.
    let req = Request::post("/api/v1/series?match[]=up")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        send(&f.router, req).await.data().as_array().unwrap().len(),
        3
    );
}
