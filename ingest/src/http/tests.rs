//! Handler tests: status codes, headers and bodies for each outcome, against
//! a real database in a temporary directory.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Request};
use engine::{Matcher, Options, STALE_NAN, Sample};
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

use super::*;
use crate::decode::decode_raw;
use crate::proto::{self, CONTENT_TYPE_V1, CONTENT_TYPE_V2, v2};

struct Setup {
    app: Router,
    ingest: Arc<Ingest>,
    db: Arc<Db>,
    registry: Registry,
    _dir: tempfile::TempDir,
}

fn setup(limits: Limits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let opts = Options {
        background: false,
        ..Options::new(dir.path())
    };
    let db = Db::open(opts, &mut registry).unwrap();
    let ingest = Ingest::new(Arc::clone(&db), limits, &mut registry);
    Setup {
        app: routes(Arc::clone(&ingest)),
        ingest,
        db,
        registry,
        _dir: dir,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The three v2 counters, or None if absent.
    fn written(&self) -> Option<(usize, usize, usize)> {
        let n = |h| self.header(h).map(|v| v.parse::<usize>().unwrap());
        Some((
            n(HEADER_SAMPLES_WRITTEN)?,
            n(HEADER_HISTOGRAMS_WRITTEN)?,
            n(HEADER_EXEMPLARS_WRITTEN)?,
        ))
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn post(content_type: Option<&str>, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::builder().method(Method::POST).uri("/api/v1/write");
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    if let Some(ce) = encoding {
        b = b.header(header::CONTENT_ENCODING, ce);
    }
    b.body(Body::from(body)).unwrap()
}

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: proto::labels(labels),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn v1_body(series: Vec<proto::TimeSeries>) -> Vec<u8> {
    proto::encode_snappy(&proto::WriteRequest {
        timeseries: series,
        metadata: vec![],
    })
}

/// A series literal: labels and (timestamp, value) samples.
type SeriesLit<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn v2_body(series: &[SeriesLit<'_>]) -> Vec<u8> {
    let mut st = v2::SymbolTable::new();
    let timeseries = series
        .iter()
        .map(|(labels, samples)| v2::TimeSeries {
            labels_refs: st.refs(labels),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| v2::Sample {
                    value,
                    timestamp,
                    start_timestamp: 0,
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    proto::encode_snappy(&v2::Request {
        symbols: st.into_symbols(),
        timeseries,
    })
}

/// Every stored series matching `__name__=name`, with its samples.
fn read_back(db: &Arc<Db>, name: &str) -> Vec<(String, Vec<Sample>)> {
    let q = db.querier(i64::MIN, i64::MAX);
    let entries = q.select(&[Matcher::equal("__name__", name)]).unwrap();
    entries
        .iter()
        .map(|e| {
            let mut out = Vec::new();
            q.samples(e, i64::MIN, i64::MAX, &mut out).unwrap();
            (e.labels.to_string(), out)
        })
        .collect()
}

#[tokio::test]
async fn v1_write_is_stored_and_read_back() {
    let s = setup(Limits::default());
    let t = now_ms();
    let body = v1_body(vec![
        ts(
            &[
                ("job", "node"),
                ("__name__", "up"),
                ("instance", "a"),
                ("empty", ""),
            ],
            &[(t - 1000, 1.0)],
        ),
        ts(
            &[("__name__", "up"), ("instance", "a"), ("job", "node")],
            &[(t, f64::from_bits(STALE_NAN))],
        ),
    ]);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V1), Some("snappy"), body)).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(r.written(), None, "no v2 headers for v1 requests");
    let stored = read_back(&s.db, "up");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, r#"up{instance="a", job="node"}"#);
    let bits: Vec<(i64, u64)> = stored[0].1.iter().map(|x| (x.t, x.v.to_bits())).collect();
    assert_eq!(bits, vec![(t - 1000, 1f64.to_bits()), (t, STALE_NAN)]);
}

#[tokio::test]
async fn v2_write_sets_written_headers() {
    let s = setup(Limits::default());
    let t = now_ms();
    let body = v2_body(&[
        (&[("__name__", "a")], &[(t, 1.0), (t + 1, 2.0)]),
        (&[("__name__", "b")], &[(t, 3.0)]),
    ]);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), Some("snappy"), body)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(r.written(), Some((3, 0, 0)));
    assert_eq!(read_back(&s.db, "a")[0].1.len(), 2);
    // The alias path works the same.
    let body = v2_body(&[(&[("__name__", "c")], &[(t, 1.0)])]);
    let mut req = post(Some(CONTENT_TYPE_V2), None, body);
    *req.uri_mut() = "/api/v1/push".parse().unwrap();
    let r = send(&s.app, req).await;
    assert_eq!((r.status, r.written()), (204, Some((1, 0, 0))));
}

#[tokio::test]
async fn duplicate_timestamp_rejects_the_whole_request() {
    let s = setup(Limits::default());
    let t = now_ms();
    let first = v2_body(&[(&[("__name__", "d")], &[(t, 1.0)])]);
    assert_eq!(
        send(&s.app, post(Some(CONTENT_TYPE_V2), None, first.clone()))
            .await
            .status,
        204
    );
    // The exact same request again is an idempotent retry: accepted.
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, first)).await;
    assert_eq!((r.status, r.written()), (204, Some((1, 0, 0))));
    // A different value at the same timestamp, plus a new series: nothing is stored.
    let conflict = v2_body(&[
        (&[("__name__", "new_series")], &[(t, 5.0)]),
        (&[("__name__", "d")], &[(t, 2.0)]),
    ]);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, conflict)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("duplicate sample for timestamp"),
        "{}",
        r.body
    );
    assert!(r.body.contains("d{}"), "{}", r.body);
    assert_eq!(r.written(), Some((0, 0, 0)));
    assert!(
        read_back(&s.db, "new_series").is_empty(),
        "a rejected request stores nothing"
    );
    assert_eq!(read_back(&s.db, "d")[0].1, vec![Sample::new(t, 1.0)]);
}

#[tokio::test]
async fn too_far_in_future_is_400() {
    let s = setup(Limits::default());
    let body = v1_body(vec![ts(
        &[("__name__", "f")],
        &[(now_ms() + 3_600_000, 1.0)],
    )]);
    let r = send(&s.app, post(None, None, body)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("too far in the future") && r.body.contains("f{}"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn unsupported_content_type_and_encoding_are_415() {
    let s = setup(Limits::default());
    let body = v1_body(vec![ts(&[("__name__", "x")], &[(now_ms(), 1.0)])]);
    let r = send(&s.app, post(Some("application/json"), None, body.clone())).await;
    assert_eq!(r.status, 415);
    assert!(r.body.contains("application/json"), "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.written(), None, "version unknown: no v2 headers");
    let r = send(
        &s.app,
        post(
            Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"),
            None,
            body.clone(),
        ),
    )
    .await;
    assert_eq!(r.status, 415);
    let r = send(
        &s.app,
        post(Some(CONTENT_TYPE_V2), Some("gzip"), body.clone()),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.body.contains("gzip"));
    assert_eq!(
        r.written(),
        Some((0, 0, 0)),
        "v2 requests get the headers on 4xx too"
    );
    let mut req = post(None, None, body);
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_bytes(b"application/x-protobuf\xff").unwrap(),
    );
    assert_eq!(send(&s.app, req).await.status, 415);
    assert!(read_back(&s.db, "x").is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = setup(Limits {
        max_body_bytes: 100,
        ..Limits::default()
    });
    // Declared by Content-Length.
    let mut req = post(Some(CONTENT_TYPE_V2), None, vec![0; 101]);
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(101));
    let r = send(&s.app, req).await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("100 bytes"), "{}", r.body);
    assert_eq!(r.written(), Some((0, 0, 0)));
    // No Content-Length: refused while reading.
    assert_eq!(
        send(&s.app, post(None, None, vec![0; 120])).await.status,
        413
    );
    // Exactly at the limit is fine (and garbage, so 400).
    assert_eq!(
        send(&s.app, post(None, None, vec![0xff; 100])).await.status,
        400
    );
}

#[tokio::test]
async fn corrupt_bodies_are_400() {
    let s = setup(Limits::default());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "snappy garbage",
            vec![0x05, 0x00, b'a'],
            "invalid snappy block",
        ),
        (
            "framed snappy",
            b"\xff\x06\x00\x00sNaPpY\x00\x00\x00\x00".to_vec(),
            "framed",
        ),
        (
            "bad protobuf",
            proto::snappy_compress(&[0x0a, 0x05, 0x01]),
            "invalid protobuf io.prometheus.write.v2.Request",
        ),
        (
            "declared too large",
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            "over the limit",
        ),
        (
            "symbols[0]",
            proto::encode_snappy(&v2::Request {
                symbols: vec!["x".into()],
                timeseries: vec![],
            }),
            "symbols[0]",
        ),
    ];
    for (what, body, want) in cases {
        let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, body)).await;
        assert_eq!(r.status, 400, "{what}");
        assert!(r.body.contains(want), "{what}: {}", r.body);
        assert_eq!(r.written(), Some((0, 0, 0)), "{what}");
    }
}

#[tokio::test]
async fn invalid_series_reject_the_whole_request() {
    let s = setup(Limits::default());
    let t = now_ms();
    let body = v2_body(&[
        (&[("__name__", "ok")], &[(t, 1.0), (t + 1, 1.0)]),
        (&[("job", "nameless")], &[(t, 1.0)]),
        (&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(t, 1.0)]),
    ]);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, body)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.written(), Some((0, 0, 0)), "nothing was written");
    assert!(
        r.body
            .starts_with("2 invalid series rejected; nothing in this request was written"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#"series {job="nameless"}: no metric name"#),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"duplicate label name "a""#), "{}", r.body);
    assert!(
        read_back(&s.db, "ok").is_empty(),
        "the valid series was not written"
    );
    assert!(read_back(&s.db, "dup").is_empty());
}

#[tokio::test]
async fn histograms_are_reported_not_written() {
    let s = setup(Limits::default());
    let t = now_ms();
    let mut st = v2::SymbolTable::new();
    let hist = v2::Histogram {
        count: Some(proto::histogram::Count::CountInt(1)),
        timestamp: t,
        ..Default::default()
    };
    let hist_series = v2::TimeSeries {
        labels_refs: st.refs(&[("__name__", "h")]),
        histograms: vec![hist],
        ..Default::default()
    };
    let float_series = v2::TimeSeries {
        labels_refs: st.refs(&[("__name__", "g")]),
        samples: vec![v2::Sample {
            value: 1.0,
            timestamp: t,
            start_timestamp: 0,
        }],
        exemplars: vec![v2::Exemplar {
            labels_refs: vec![],
            value: 1.0,
            timestamp: t,
        }],
        ..Default::default()
    };
    let symbols = st.into_symbols();
    let mixed = v2::Request {
        symbols: symbols.clone(),
        timeseries: vec![hist_series.clone(), float_series],
    };
    let r = send(
        &s.app,
        post(Some(CONTENT_TYPE_V2), None, proto::encode_snappy(&mixed)),
    )
    .await;
    assert_eq!(
        (r.status, r.written()),
        (204, Some((1, 0, 0))),
        "{}",
        r.body
    );
    let only = v2::Request {
        symbols,
        timeseries: vec![hist_series],
    };
    let r = send(
        &s.app,
        post(Some(CONTENT_TYPE_V2), None, proto::encode_snappy(&only)),
    )
    .await;
    assert_eq!((r.status, r.written()), (400, Some((0, 0, 0))));
    assert!(
        r.body.contains("does not store native histograms"),
        "{}",
        r.body
    );
    let metrics = encode_metrics(&s.registry);
    assert!(
        metrics.contains(
            r#"silt_remote_write_rejected_samples_total{reason="native_histogram_unsupported"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"silt_remote_write_rejected_samples_total{reason="exemplar_unsupported"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let s = setup(Limits::default());
    for m in [Method::GET, Method::PUT, Method::DELETE] {
        let req = Request::builder()
            .method(m.clone())
            .uri("/api/v1/write")
            .body(Body::empty())
            .unwrap();
        let r = send(&s.app, req).await;
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("POST"), "{m}");
    }
}

#[tokio::test]
async fn overload_is_503_with_retry_after() {
    let s = setup(Limits {
        max_inflight_bytes: 1000,
        ..Limits::default()
    });
    let held = Arc::clone(&s.ingest.inflight)
        .try_acquire_many_owned(990)
        .unwrap();
    let body = v2_body(&[(&[("__name__", "o")], &[(now_ms(), 1.0)])]);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, body.clone())).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.written(), Some((0, 0, 0)));
    assert!(r.body.contains("overloaded"), "{}", r.body);
    drop(held);
    let r = send(&s.app, post(Some(CONTENT_TYPE_V2), None, body)).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        s.ingest.inflight.available_permits(),
        1000,
        "the budget is returned"
    );
}

#[tokio::test]
async fn empty_and_metadata_only_requests_are_204() {
    let s = setup(Limits::default());
    assert_eq!(send(&s.app, post(None, None, vec![])).await.status, 204);
    let r = send(
        &s.app,
        post(
            Some(CONTENT_TYPE_V2),
            None,
            proto::encode_snappy(&v2::Request::default()),
        ),
    )
    .await;
    assert_eq!((r.status, r.written()), (204, Some((0, 0, 0))));
    let meta = proto::WriteRequest {
        timeseries: vec![],
        metadata: vec![proto::MetricMetadata {
            r#type: proto::MetricType::Gauge as i32,
            metric_family_name: "temperature_celsius".into(),
            help: "Temperature.".into(),
            unit: "celsius".into(),
        }],
    };
    let r = send(
        &s.app,
        post(None, Some("snappy"), proto::encode_snappy(&meta)),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let stored = s.db.metadata();
    assert_eq!(stored["temperature_celsius"][0].help, "Temperature.");
}

#[tokio::test]
async fn zstd_bodies_are_accepted() {
    let s = setup(Limits::default());
    let raw = prost::Message::encode_to_vec(&proto::WriteRequest {
        timeseries: vec![ts(&[("__name__", "z")], &[(now_ms(), 1.0)])],
        metadata: vec![],
    });
    let r = send(&s.app, post(None, Some("zstd"), proto::zstd_compress(&raw))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(read_back(&s.db, "z").len(), 1);
}

#[tokio::test]
async fn request_metrics_are_counted() {
    let s = setup(Limits::default());
    let t = now_ms();
    send(
        &s.app,
        post(
            None,
            None,
            v1_body(vec![ts(&[("__name__", "m")], &[(t, 1.0)])]),
        ),
    )
    .await;
    send(
        &s.app,
        post(
            Some(CONTENT_TYPE_V2),
            None,
            v2_body(&[(&[("__name__", "m")], &[(t + 1, 1.0)])]),
        ),
    )
    .await;
    send(&s.app, post(Some("text/plain"), None, vec![])).await;
    let m = encode_metrics(&s.registry);
    for want in [
        r#"silt_remote_write_requests_total{version="1.0",code="204"} 1"#,
        r#"silt_remote_write_requests_total{version="2.0",code="204"} 1"#,
        r#"silt_remote_write_requests_total{version="unknown",code="415"} 1"#,
        "silt_remote_write_samples_received_total 2",
        "silt_remote_write_series_received_total 2",
        "silt_remote_write_samples_written_total 2",
        r#"silt_remote_write_received_bytes_total{encoding="decoded"}"#,
        "silt_remote_write_inflight_bytes 0",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
}

fn encode_metrics(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
    out
}

#[tokio::test]
async fn large_requests_decode_on_the_blocking_pool() {
    let s = setup(Limits::default());
    let t = now_ms();
    let pad = "x".repeat(200);
    let series: Vec<proto::TimeSeries> = (0..20_000)
        .map(|i| {
            ts(
                &[("__name__", "big"), ("i", &i.to_string()), ("pad", &pad)],
                &[(t, i as f64)],
            )
        })
        .collect();
    let req = proto::WriteRequest {
        timeseries: series,
        metadata: vec![],
    };
    let raw_len = prost::Message::encoded_len(&req);
    assert!(raw_len > INLINE_MAX_COST, "{raw_len}");
    let r = send(&s.app, post(None, None, proto::encode_snappy(&req))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(read_back(&s.db, "big").len(), 20_000);
}

#[tokio::test]
async fn repeated_v1_series_go_by_reference_and_survive_leaving_the_head() {
    let s = setup(Limits::default());
    let t = now_ms() - 60_000;
    let req = |k: i64, v: f64| {
        v1_body(vec![
            ts(&[("__name__", "r"), ("instance", "a")], &[(t + k, v)]),
            ts(&[("__name__", "r"), ("instance", "b")], &[(t + k, v)]),
        ])
    };
    let send_v1 = |body| send(&s.app, post(Some(CONTENT_TYPE_V1), Some("snappy"), body));
    assert_eq!(send_v1(req(0, 1.0)).await.status, 204);
    assert_eq!(s.ingest.refs.len(), 2, "both series learned");
    // The same series again: decoded into references, not label sets.
    let limits = Limits::default();
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&req(1, 2.0))
        .unwrap();
    let d = decode_raw(Version::V1, &raw, &limits, Some(&s.ingest.refs)).unwrap();
    assert_eq!((d.batch.series.len(), d.refs.len()), (0, 2));
    assert_eq!(send_v1(req(1, 2.0)).await.status, 204);
    // A conflict on a series named by reference still names its labels.
    let r = send_v1(req(1, 3.0)).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains(r#"r{instance="a"}"#), "{}", r.body);
    // A cut, then a generation without samples of theirs: the series
    // leave the head at the next cut, the references go stale, and the
    // request is retried by labels.
    s.db.cut_head().unwrap();
    let other = v1_body(vec![ts(&[("__name__", "other")], &[(t, 1.0)])]);
    assert_eq!(send_v1(other).await.status, 204);
    s.db.cut_head().unwrap();
    assert_eq!(send_v1(req(2, 4.0)).await.status, 204);
    assert!(s.ingest.refs.is_empty(), "stale references were forgotten");
    assert_eq!(send_v1(req(3, 5.0)).await.status, 204);
    assert_eq!(s.ingest.refs.len(), 2, "and learned again");
    for (labels, samples) in read_back(&s.db, "r") {
        let got: Vec<(i64, f64)> = samples.iter().map(|x| (x.t - t, x.v)).collect();
        assert_eq!(
            got,
            vec![(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0)],
            "{labels}"
        );
    }
}

/// Serves `app` on a free local port.
async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Writes `head` and `body` on `conn` and reads one response: its status
/// line and whether it was read whole.
async fn exchange(conn: &mut tokio::net::TcpStream, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text.lines().next().unwrap().to_string();
            }
        }
    }
}

#[tokio::test]
async fn refused_bodies_are_read_so_the_sender_gets_the_answer() {
    // A sender writes its whole body before reading the answer. Refused
    // unread, the body would be left in the socket, and closing a socket
    // with unread data resets the connection: the sender could lose the
    // 413 (and retry forever) instead of dropping the request.
    let s = setup(Limits {
        max_body_bytes: 100,
        ..Limits::default()
    });
    let addr = serve(s.app.clone()).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let big = vec![0u8; 4 << 20];
    let head = |ct: &str, len: usize| {
        format!(
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let status = exchange(&mut conn, &head(CONTENT_TYPE_V1, big.len()), &big).await;
    assert!(status.contains(" 413 "), "{status}");
    // The same connection goes on: an unsupported type, then a good write.
    let status = exchange(&mut conn, &head("text/plain", big.len()), &big).await;
    assert!(status.contains(" 415 "), "{status}");
    let body = v1_body(vec![ts(&[("__name__", "drained")], &[(now_ms(), 1.0)])]);
    let status = exchange(&mut conn, &head(CONTENT_TYPE_V1, body.len()), &body).await;
    assert!(status.contains(" 204 "), "{status}");
    assert_eq!(read_back(&s.db, "drained").len(), 1);
}
