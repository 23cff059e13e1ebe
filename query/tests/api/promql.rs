//! `/api/v1/query`, `/query_range`, `/query_exemplars`, `/format_query`,
//! `/parse_query`: exact bodies, errors, limits, and Grafana's calls.

use super::*;
use query::api::ConcurrencyOptions;
use query::eval::{QueryOptions, QueryOutput};
use std::time::Duration;

/// T0 in seconds, as clients send it.
const T0S: i64 = T0 / 1000;

async fn text_of(router: &Router, uri: &str) -> (u16, String) {
    let r = get(router, uri).await;
    (r.status.as_u16(), r.text())
}

async fn instant(router: &Router, query: &str, time: &str) -> Reply {
    get(
        router,
        &format!("/api/v1/query?query={}&time={}", enc(query), enc(time)),
    )
    .await
}

async fn range(router: &Router, query: &str, start: i64, end: i64, step: &str) -> Reply {
    get(
        router,
        &format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={}",
            enc(query),
            enc(step)
        ),
    )
    .await
}

// ---------------------------------------------------------------- result shapes

#[tokio::test]
async fn grafana_health_check_is_exactly_scalar_4_2() {
    let f = fixture().await;
    let want = r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#;
    // Grafana's default: POST with a form body.
    let r = post_form(&f.router, "/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, want));
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    // GET, and with a configured query timeout.
    assert_eq!(
        text_of(&f.router, "/api/v1/query?query=1%2B1&time=4&timeout=60s").await,
        (200, want.to_string())
    );
}

#[tokio::test]
async fn instant_vector_exact_body() {
    let f = fixture().await;
    let r = instant(&f.router, r#"up{job="db"}"#, &(T0S + 20).to_string()).await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"c","job":"db"},"value":[1700000020,"1"]}]}}"#
    );
    // Millisecond times keep three decimals; RFC 3339 works as well.
    let r = instant(&f.router, r#"up{job="db"}"#, "2023-11-14T22:13:35.050Z").await;
    assert_eq!(
        r.data()["result"][0]["value"],
        serde_json::json!([1700000015.05, "1"])
    );
    assert!(r.text().contains("[1700000015.050,\"1\"]"), "{}", r.text());
}

#[tokio::test]
async fn range_query_exact_body() {
    let f = fixture().await;
    let want = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"c","job":"db"},"values":[[1700000000,"0"],[1700000015,"1"],[1700000030,"2"]]}]}}"#;
    let r = range(&f.router, r#"up{job="db"}"#, T0S, T0S + 30, "15").await;
    assert_eq!(r.text(), want);
    // Duration steps and RFC 3339 bounds give the same answer.
    let uri = format!(
        "/api/v1/query_range?query={}&start=2023-11-14T22:13:20Z&end=2023-11-14T22:13:50Z&step=15s",
        enc(r#"up{job="db"}"#)
    );
    assert_eq!(get(&f.router, &uri).await.text(), want);
    // A scalar range query is one series without labels.
    let r = range(&f.router, "1+1", T0S, T0S + 30, "30").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"2"],[1700000030,"2"]]}]}}"#
    );
}

#[tokio::test]
async fn instant_matrix_string_and_scalar_results() {
    let f = fixture().await;
    let r = instant(&f.router, r#"up{job="db"}[1m]"#, &(T0S + 30).to_string()).await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"c","job":"db"},"values":[[1700000000,"0"],[1700000015,"1"],[1700000030,"2"]]}]}}"#
    );
    let r = instant(&f.router, r#""hello""#, "100").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"string","result":[100,"hello"]}}"#
    );
    // Scalars: Go's float formatting of both the time and the value.
    let r = instant(&f.router, "time()", "1435781451.05").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.05,"1435781451.05"]}}"#
    );
    let r = instant(&f.router, "1e-7", "1").await;
    assert_eq!(r.data()["result"], serde_json::json!([1, "0.0000001"]));
}

#[tokio::test]
async fn special_values_are_strings() {
    let f = fixture().await;
    for (offset, want) in [
        (1, "NaN"),
        (5, "+Inf"),
        (6, "-Inf"),
        (7, "-0"),
        (13, "1e+21"),
        (14, "1e-07"),
        (15, "-123.456"),
    ] {
        let r = instant(&f.router, "specials", &(T0S + offset).to_string()).await;
        assert_eq!(
            r.data()["result"][0]["value"][1],
            want,
            "at +{offset}s: {}",
            r.text()
        );
    }
    let t = (T0S + 2).to_string();
    let scalar = instant(&f.router, "scalar(specials)", &t).await;
    assert_eq!(scalar.data()["result"][1], "NaN");
    let inf = instant(&f.router, "-Inf", "1").await;
    assert_eq!(inf.data()["result"], serde_json::json!([1, "-Inf"]));
    // The stale marker at T0 ends the series: nothing is returned.
    let r = instant(&f.router, "specials", &T0S.to_string()).await;
    assert_eq!(r.data()["result"], serde_json::json!([]));
}

// ---------------------------------------------------------------- parameters

#[tokio::test]
async fn post_body_and_url_parameters_merge() {
    let f = fixture().await;
    // Grafana: the form body, plus custom parameters and stats=all in the URL.
    let body = format!(
        "query={}&start={T0S}&end={}&step=15&timeout=60s",
        enc(r#"up{job="db"}"#),
        T0S + 30
    );
    let r = post_form(
        &f.router,
        "/api/v1/query_range?max_source_resolution=5m&foo=bar&stats=all",
        &body,
    )
    .await;
    let data = r.data();
    assert_eq!(data["result"][0]["values"].as_array().unwrap().len(), 3);
    assert!(
        data["stats"]["samples"]["totalQueryableSamples"].is_u64(),
        "{data}"
    );
    assert!(data["stats"]["timings"]["evalTotalTime"].is_f64(), "{data}");
    // Body values win over URL values.
    let r = post_form(
        &f.router,
        "/api/v1/query?query=3&time=9",
        "query=1%2B1&time=4",
    )
    .await;
    assert_eq!(r.data()["result"], serde_json::json!([4, "2"]));
}

#[tokio::test]
async fn limit_lookback_delta_and_stats_parameters() {
    let f = fixture().await;
    let t = (T0S + 200).to_string();
    let r = get(
        &f.router,
        &format!("/api/v1/query?query=up&time={t}&limit=1"),
    )
    .await;
    assert_eq!(r.data()["result"].as_array().unwrap().len(), 1);
    assert_eq!(r.warnings(), vec!["results truncated due to limit"]);
    let r = get(&f.router, &format!("/api/v1/query?query=up&time={t}")).await;
    assert_eq!(r.data()["result"].as_array().unwrap().len(), 3);
    // The api series stop at T0+135s: a 1m lookback no longer sees them.
    let r = get(
        &f.router,
        &format!("/api/v1/query?query=up&time={t}&lookback_delta=1m"),
    )
    .await;
    assert_eq!(r.data()["result"], serde_json::json!([]));
    let r = get(&f.router, "/api/v1/query?query=1&time=1&stats=yes").await;
    assert_eq!(
        r.warnings(),
        vec![
            "value \"yes\" for parameter \"stats\" is deprecated and will be rejected in the next major release, use \"true\" or \"all\""
        ]
    );
    assert!(r.data()["stats"].is_object());
    let r = get(&f.router, "/api/v1/query?query=1&time=1").await;
    assert!(r.data().get("stats").is_none());
}

#[tokio::test]
async fn parameter_errors_are_bad_data() {
    let f = fixture().await;
    let cases: Vec<(String, String)> = vec![
        (
            "/api/v1/query?query=up%2B&time=1".into(),
            r#"invalid parameter "query": 1:4: parse error: unexpected end of input"#.into(),
        ),
        (
            "/api/v1/query?time=1".into(),
            r#"invalid parameter "query": unknown position: parse error: no expression found in input"#.into(),
        ),
        (
            "/api/v1/query?query=1&time=yesterday".into(),
            r#"invalid parameter "time": invalid time value for 'time': cannot parse "yesterday" to a valid timestamp"#.into(),
        ),
        (
            "/api/v1/query?query=1&limit=-1".into(),
            r#"invalid parameter "limit": limit must be non-negative"#.into(),
        ),
        (
            "/api/v1/query?query=1&timeout=soon".into(),
            r#"invalid parameter "timeout": cannot parse "soon" to a valid duration"#.into(),
        ),
        (
            "/api/v1/query?query=1&lookback_delta=x".into(),
            r#"error parsing lookback delta duration: cannot parse "x" to a valid duration"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=x&end=2&step=1".into(),
            r#"invalid parameter "start": cannot parse "x" to a valid timestamp"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=1&step=1".into(),
            r#"invalid parameter "end": cannot parse "" to a valid timestamp"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=2&end=1&step=1".into(),
            r#"invalid parameter "end": end timestamp must not be before start time"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=1&end=2".into(),
            r#"invalid parameter "step": cannot parse "" to a valid duration"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=1&end=2&step=0".into(),
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#.into(),
        ),
        (
            "/api/v1/query_range?query=1&start=1&end=2&step=-1m".into(),
            r#"invalid parameter "step": cannot parse "-1m" to a valid duration"#.into(),
        ),
        (
            "/api/v1/query_range?query=up%5B5m%5D&start=1&end=2&step=1".into(),
            r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#.into(),
        ),
        (
            "/api/v1/query_range?query=%22s%22&start=1&end=2&step=1".into(),
            r#"invalid parameter "query": invalid expression type "string" for range query, must be Scalar or instant Vector"#.into(),
        ),
    ];
    for (uri, want) in cases {
        let r = get(&f.router, &uri).await;
        assert_eq!(r.error(400, "bad_data"), want, "{uri}");
    }
}

#[test]
fn too_deep_a_query_is_bad_data_and_the_server_answers_on() {
    // The server's threads have `STACK_BYTES`; a debug build's frames are
    // several times a release build's.
    let stack = 4 * query::STACK_BYTES;
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_stack_size(stack)
                .build()
                .unwrap()
                .block_on(too_deep_queries())
        })
        .unwrap()
        .join()
        .unwrap();
}

async fn too_deep_queries() {
    let f = fixture().await;
    // 20 KB: overflowed the handler's stack before depth was limited.
    let sum = vec!["1"; 5000].join("%2B");
    let parens = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    for q in [sum, parens] {
        let r = get(&f.router, &format!("/api/v1/query?query={q}&time=1")).await;
        let e = r.error(400, "bad_data");
        assert!(
            e.contains("expression nested too deeply: more than 256 levels"),
            "{e}"
        );
    }
    // The deepest allowed chain is answered.
    let sum = vec!["1"; 256].join("%2B");
    let r = get(&f.router, &format!("/api/v1/query?query={sum}&time=1")).await;
    assert_eq!(r.data()["result"][1], "256");
}

#[tokio::test]
async fn eleven_thousand_points_per_series_at_most() {
    let f = fixture().await;
    // Exactly 11,000 intervals is allowed ...
    let r = range(&f.router, "1", 0, 11_000, "1").await;
    assert_eq!(
        r.data()["result"][0]["values"].as_array().unwrap().len(),
        11_001
    );
    // ... one more is not, whatever the step's form.
    for (end, step) in [(11_001, "1"), (110_010, "10s"), (5_500_500, "500")] {
        let r = range(&f.router, "1", 0, end, step).await;
        assert_eq!(
            r.error(400, "bad_data"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        );
    }
    // Sub-second steps count in nanoseconds, as in Go.
    let r = range(&f.router, "1", 0, 6, "0.0005").await;
    r.error(400, "bad_data");
    let r = range(&f.router, "1", 0, 5, "0.0005").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

// ---------------------------------------------------------------- execution errors and limits

#[tokio::test]
async fn execution_errors_are_422() {
    let f = fixture().await;
    let t = (T0S + 30).to_string();
    let r = instant(&f.router, r#"up{job="api"} + on() up{job="db"}"#, &t).await;
    let msg = r.error(422, "execution");
    assert!(msg.contains("match"), "{msg}");
}

async fn fixture_with_engine(edit: impl FnOnce(&mut ApiOptions)) -> Fixture {
    let mut opts = ApiOptions::default();
    edit(&mut opts);
    fixture_with(opts).await
}

#[tokio::test]
async fn max_samples_and_max_series_are_422_naming_the_limit() {
    let f = fixture_with_engine(|o| o.engine.max_samples = 5).await;
    let t = (T0S + 200).to_string();
    let r = instant(&f.router, "up[10m]", &t).await;
    let msg = r.error(422, "execution");
    assert!(
        msg.starts_with("query processing would load too many samples into memory")
            && msg.contains("max_samples=5"),
        "{msg}"
    );
    let f = fixture_with_engine(|o| o.engine.max_series = 2).await;
    let r = instant(&f.router, "up", &t).await;
    let msg = r.error(422, "execution");
    assert!(msg.contains("max_series=2"), "{msg}");
    // Under the limit, the same query works.
    let r = instant(&f.router, r#"up{job="api"}"#, &t).await;
    assert_eq!(r.data()["result"].as_array().unwrap().len(), 2);
}

/// A query that takes far longer than a millisecond: a subquery at 1 ms
/// steps over the fixture's data (about 170 ms in a debug build).
const SLOW: &str = "max_over_time(count_over_time((up + 1)[1h:1ms])[1h:1s])";

#[tokio::test]
async fn timeouts_are_503_naming_the_limit() {
    let f = fixture().await;
    // A zero timeout has passed before the query starts.
    let r = get(&f.router, "/api/v1/query?query=1&time=1&timeout=0").await;
    let msg = r.error(503, "timeout");
    assert!(msg.starts_with("query timed out in"), "{msg}");
    assert!(msg.contains("timeout=0s"), "{msg}");
    // A tiny configured timeout stops an evaluation long before it would
    // finish (in the queue or the evaluator: the deadline covers both).
    let f = fixture_with_engine(|o| o.engine.timeout = Duration::from_millis(1)).await;
    let started = std::time::Instant::now();
    let q = SLOW;
    let r = instant(&f.router, q, &(T0S + 300).to_string()).await;
    let msg = r.error(503, "timeout");
    assert!(msg.contains("timeout=1ms"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    // The `timeout` parameter cannot raise the configured limit.
    let r = get(
        &f.router,
        &format!(
            "/api/v1/query?query={}&time={}&timeout=1h",
            enc(q),
            T0S + 300
        ),
    )
    .await;
    assert!(r.error(503, "timeout").contains("timeout=1ms"));
}

#[tokio::test]
async fn excess_concurrent_queries_get_503() {
    let f = fixture_with_engine(|o| {
        o.concurrency = ConcurrencyOptions {
            max_concurrency: 1,
            max_queue_wait: Duration::from_millis(200),
        };
    })
    .await;
    // Another query holds the only slot until told to finish.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let api = f.api.clone();
    let busy = tokio::spawn(async move {
        api.slots()
            .run(
                Duration::from_secs(30),
                QueryOptions::default(),
                move |_| {
                    let _ = held.recv();
                    Ok(QueryOutput {
                        value: query::eval::Value::Scalar(0, 0.0),
                        warnings: vec![],
                        infos: vec![],
                        stats: Default::default(),
                    })
                },
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let r = get(&f.router, "/api/v1/query?query=1&time=1").await;
    let msg = r.error(503, "timeout");
    assert_eq!(
        msg,
        "query timed out in query queue: all 1 query slots busy for 200ms (limit max_concurrency=1)"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    // A query whose own deadline is shorter waits only that long.
    let r = get(&f.router, "/api/v1/query?query=1&time=1&timeout=50ms").await;
    assert!(r.error(503, "timeout").contains("busy for 50ms"));
    // Once the slot is free, queries run again.
    release.send(()).unwrap();
    assert!(busy.await.unwrap().is_ok());
    let r = get(&f.router, "/api/v1/query?query=1&time=1").await;
    assert_eq!(r.data()["result"], serde_json::json!([1, "1"]));
}

// ---------------------------------------------------------------- exemplars, format, parse

#[tokio::test]
async fn exemplars_are_empty_and_accept_grafanas_probe() {
    let f = fixture().await;
    // Grafana's probe sends milliseconds as seconds.
    let now_ms = 1_723_456_789_000i64;
    let body = format!("query=test&start={}&end={now_ms}", now_ms - 1_800_000);
    let r = post_form(&f.router, "/api/v1/query_exemplars", &body).await;
    assert_eq!(r.text(), r#"{"status":"success","data":[]}"#);
    let r = get(&f.router, "/api/v1/query_exemplars?query=1%2B1").await;
    assert_eq!((r.status.as_u16(), r.body.len()), (204, 0));
    let r = get(&f.router, "/api/v1/query_exemplars?query=up&start=2&end=1").await;
    assert_eq!(
        r.error(400, "bad_data"),
        "end timestamp must not be before start timestamp"
    );
    let r = get(&f.router, "/api/v1/query_exemplars?query=up%7B").await;
    assert!(r.error(400, "bad_data").contains("parse error"));
}

#[tokio::test]
async fn format_query_and_parse_query() {
    let f = fixture().await;
    let r = get(
        &f.router,
        &format!(
            "/api/v1/format_query?query={}",
            enc("sum(rate(x[5m]))by(job)")
        ),
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#
    );
    let r = post_form(&f.router, "/api/v1/format_query", "query=foo%7B").await;
    assert!(
        r.error(400, "bad_data")
            .starts_with(r#"invalid parameter "query": 1:5: parse error"#)
    );
    let r = get(&f.router, "/api/v1/parse_query?query=1%2B1").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"bool":false,"lhs":{"type":"numberLiteral","val":"1"},"matching":null,"op":"+","rhs":{"type":"numberLiteral","val":"1"},"type":"binaryExpr"}}"#
    );
    let r = post_form(&f.router, "/api/v1/parse_query", "query=up%5B5m%5D").await;
    let data = r.data();
    assert_eq!(data["type"], "matrixSelector");
    assert_eq!(data["range"], 300_000);
}

// ---------------------------------------------------------------- Grafana's call list

/// Replays what Grafana's Prometheus datasource sends (reference §8), in
/// its default POST mode with custom parameters on the URL.
#[tokio::test]
async fn grafana_call_list() {
    let f = fixture().await;
    let (start, end) = (T0S - 3600, T0S + 3600);
    let extra = "max_source_resolution=5m&foo=bar";

    // Save & test.
    let r = post_form(
        &f.router,
        &format!("/api/v1/query?{extra}"),
        "query=1%2B1&time=4",
    )
    .await;
    assert_eq!(r.data()["result"], serde_json::json!([4, "2"]));
    let r = get(&f.router, "/api/v1/status/buildinfo").await;
    let info = r.data();
    assert!(info["version"].is_string() && info.get("features").is_none());

    // Datasource initialisation: the exemplar probe (milliseconds).
    let body = format!(
        "query=test&start={}&end={}",
        end * 1000 - 1_800_000,
        end * 1000
    );
    let r = post_form(
        &f.router,
        &format!("/api/v1/query_exemplars?{extra}"),
        &body,
    )
    .await;
    assert_eq!(r.json()["status"], "success");

    // Metric name list and search.
    let r = get(
        &f.router,
        &format!("/api/v1/label/__name__/values?start={start}&end={end}&limit=40000"),
    )
    .await;
    let names = r.data();
    assert!(names.as_array().unwrap().contains(&"up".into()), "{names}");
    let r = get(
        &f.router,
        &format!(
            "/api/v1/label/__name__/values?match[]={}&limit=1000&start={start}&end={end}",
            enc(r#"{__name__=~".*node.*"}"#)
        ),
    )
    .await;
    assert_eq!(r.data(), serde_json::json!(["node_cpu_seconds_total"]));

    // Label names (POST), filtered label names, label values.
    let body = format!("start={start}&end={end}&limit=40000");
    let r = post_form(&f.router, &format!("/api/v1/labels?{extra}"), &body).await;
    assert!(r.data().as_array().unwrap().contains(&"job".into()));
    let body = format!(
        "match[]={}&start={start}&end={end}&limit=40000",
        enc(r#"{__name__=~".*up.*"}"#)
    );
    let r = post_form(&f.router, "/api/v1/labels", &body).await;
    assert_eq!(r.data(), serde_json::json!(["__name__", "instance", "job"]));
    let r = get(
        &f.router,
        &format!(
            "/api/v1/label/job/values?start={start}&end={end}&limit=40000&match[]={}",
            enc("up")
        ),
    )
    .await;
    assert_eq!(r.data(), serde_json::json!(["api", "db"]));

    // Metadata for autocomplete.
    let r = get(&f.router, "/api/v1/metadata?limit=40000").await;
    assert_eq!(r.data()["up"][0]["type"], "gauge");

    // Series (series-endpoint strategy and variable queries).
    let body = format!(
        "match[]={}&start={start}&end={end}&limit=40000",
        enc(r#"{__name__!=""}"#)
    );
    let r = post_form(&f.router, &format!("/api/v1/series?{extra}"), &body).await;
    assert_eq!(r.data().as_array().unwrap().len(), 6);

    // query_result(): an instant query at an integer time.
    let body = format!("query={}&time={}", enc("count(up)"), T0S + 30);
    let r = post_form(&f.router, "/api/v1/query", &body).await;
    assert_eq!(
        r.data()["result"],
        serde_json::json!([{"metric": {}, "value": [1700000030, "3"]}])
    );

    // A dashboard panel: aligned range query, step in seconds, timeout,
    // stats, custom URL parameters.
    let body = format!(
        "query={}&start={T0S}&end={}&step=15&timeout=60s",
        enc("sum by (job) (up)"),
        T0S + 30
    );
    let r = post_form(
        &f.router,
        &format!("/api/v1/query_range?{extra}&stats=all"),
        &body,
    )
    .await;
    let data = r.data();
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(
        data["result"],
        serde_json::json!([
            {"metric": {"job": "api"}, "values": [[1700000000, "0"], [1700000015, "2"], [1700000030, "4"]]},
            {"metric": {"job": "db"}, "values": [[1700000000, "0"], [1700000015, "1"], [1700000030, "2"]]},
        ])
    );
    // An Explore "instant" at an un-aligned fractional end time.
    let body = format!("query=up&time={}.123", T0S + 30);
    let r = post_form(&f.router, "/api/v1/query", &body).await;
    assert_eq!(r.data()["result"].as_array().unwrap().len(), 3);
    // Errors come back as JSON with the statuses Grafana parses.
    let r = post_form(
        &f.router,
        "/api/v1/query_range",
        "query=up&start=1&end=2&step=0",
    )
    .await;
    r.error(400, "bad_data");
}
