//! End to end: the requests Grafana's Prometheus datasource sends (health
//! check, exemplar probe, metrics browser, variables, a dashboard panel),
//! replayed over HTTP against the real `silt` binary in Grafana's default
//! mode: POST form bodies with the datasource's custom parameters appended
//! to the URL. See `shared/reference/http-api.md` §8.

mod common;

use common::{Client, Reply, Silt, Value, proto, series, success_data};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
/// Custom query parameters configured on the datasource.
const EXTRA: &str = "max_source_resolution=5m&foo=bar";

fn enc(s: &str) -> String {
    // Enough for PromQL and selectors in a form body.
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn post(client: &Client, path: &str, body: &str) -> Reply {
    client
        .post_raw(&format!("{path}?{EXTRA}"), &[FORM], body.as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[test]
fn grafana_datasource_calls() {
    let dir = tempfile::tempdir().unwrap();
    let silt = Silt::start(&dir.path().join("data"));
    let client = silt.client();
    let t0 = (common::now_ms() - 600_000) / 60_000 * 60_000;
    let points: Vec<(i64, f64)> = (0..20).map(|i| (t0 + i * 15_000, i as f64)).collect();
    client.write_ok(&proto::WriteRequest {
        timeseries: vec![
            series(&[("__name__", "gf_up"), ("job", "api")], &points),
            series(&[("__name__", "gf_up"), ("job", "db")], &points),
        ],
        metadata: vec![],
    });
    let (start, end) = (t0 / 1000 - 3600, t0 / 1000 + 3600);

    // Save & test: exactly this body, then the buildinfo heuristics.
    let r = post(&client, "/api/v1/query", "query=1%2B1&time=4");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
        )
    );
    let info = success_data(&client.get("/api/v1/status/buildinfo"));
    assert!(info["version"].is_string() && info.get("features").is_none());

    // Exemplar probe with milliseconds as seconds.
    let now = common::now_ms();
    let body = format!("query=test&start={}&end={now}", now - 1_800_000);
    assert_eq!(
        success_data(&post(&client, "/api/v1/query_exemplars", &body)),
        serde_json::json!([])
    );

    // Metrics browser and autocomplete.
    let names = success_data(&client.get(&format!(
        "/api/v1/label/__name__/values?start={start}&end={end}&limit=40000"
    )));
    assert_eq!(names, serde_json::json!(["gf_up"]));
    let body = format!(
        "start={start}&end={end}&limit=40000&match[]={}",
        enc("gf_up")
    );
    assert_eq!(
        success_data(&post(&client, "/api/v1/labels", &body)),
        serde_json::json!(["__name__", "job"])
    );
    let values = success_data(&client.get(&format!(
        "/api/v1/label/job/values?start={start}&end={end}&limit=40000&match[]={}",
        enc(r#"{__name__=~".*gf.*"}"#)
    )));
    assert_eq!(values, serde_json::json!(["api", "db"]));
    let body = format!(
        "match[]={}&start={start}&end={end}&limit=40000",
        enc(r#"{__name__!=""}"#)
    );
    let all = success_data(&post(&client, "/api/v1/series", &body));
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(success_data(&client.get("/api/v1/metadata?limit=40000")).is_object());

    // A dashboard panel: range query with stats, then the instant query of
    // a `query_result()` variable.
    let (from, to) = (t0 / 1000, t0 / 1000 + 285);
    let body = format!(
        "query={}&start={from}&end={to}&step=15&timeout=60s",
        enc("sum by (job) (rate(gf_up[1m]))")
    );
    let r = client
        .post_raw(
            &format!("/api/v1/query_range?{EXTRA}&stats=all"),
            &[FORM],
            body.as_bytes(),
        )
        .unwrap();
    let data = success_data(&r);
    assert_eq!(data["resultType"], "matrix");
    let result = data["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{data}");
    for s in result {
        let points = s["values"].as_array().unwrap();
        // No rate at the first step (one sample in the window); then one
        // point per step.
        assert_eq!(points.len(), 19, "{s}");
        for point in points {
            assert!(point[0].is_number() && point[1].is_string(), "{point}");
        }
        // Once the window is full, the counter grows by 1 every 15 s.
        let last: f64 = points[18][1].as_str().unwrap().parse().unwrap();
        assert!((last - 1.0 / 15.0).abs() < 1e-9, "{s}");
        assert_eq!(points[18][0], to);
    }
    assert!(data["stats"]["samples"]["totalQueryableSamples"].is_u64());
    let body = format!("query={}&time={to}", enc("count(gf_up)"));
    let data = success_data(&post(&client, "/api/v1/query", &body));
    assert_eq!(
        data["result"],
        serde_json::json!([{"metric": {}, "value": [to, "2"]}])
    );

    // Errors are JSON with a status Grafana parses (400/422/503).
    let r = post(&client, "/api/v1/query", "query=sum(");
    assert_eq!(r.status, 400);
    let v: Value = r.json();
    assert_eq!(v["errorType"], "bad_data");
    silt.stop();
}
