//! `/api/v1/forecast` and `/api/v1/capacity` through the router, against
//! a `Db` holding a week of node_exporter series with known growth.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value as Json;
use tower::ServiceExt;

use crate::api::{Api, ApiOptions, routes};
use crate::capacity::tests::{NOW, node_db};

async fn router() -> (tempfile::TempDir, Router) {
    let (dir, db) = node_db().await;
    (dir, routes(Api::new(db, ApiOptions::default())))
}

async fn get(router: &Router, uri: &str) -> (u16, Json) {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Asserts a 400 `bad_data` and returns the message.
async fn bad(router: &Router, uri: &str) -> String {
    let (status, v) = get(router, uri).await;
    assert_eq!(status, 400, "{uri}: {v}");
    assert_eq!(v["errorType"], "bad_data", "{v}");
    v["error"].as_str().unwrap().to_string()
}

const VAR: &str = r#"node_filesystem_avail_bytes{mountpoint="/var"}"#;

#[tokio::test]
async fn forecast_bands_extend_the_series() {
    let (_dir, r) = router().await;
    let time = NOW / 1000;
    let uri = format!(
        "/api/v1/forecast?query={}&time={time}&horizon=2d&step=1h&include_history=true",
        enc(VAR)
    );
    let (status, v) = get(&r, &uri).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    let bands: Vec<&str> = result
        .iter()
        .map(|s| s["metric"]["silt_forecast"].as_str().unwrap())
        .collect();
    assert_eq!(bands, ["history", "lower", "mean", "upper"]);
    assert_eq!(result[2]["metric"]["mountpoint"], "/var");
    let mean = result[2]["values"].as_array().unwrap();
    assert_eq!(mean.len(), 48);
    assert_eq!(mean[0][0].as_f64().unwrap(), (time + 3600) as f64);
    assert_eq!(mean[47][0].as_f64().unwrap(), (time + 2 * 86_400) as f64);
    // 3 GB now, 1 GB a day less: 1 GB in two days.
    let value =
        |s: &Json, i: usize| -> f64 { s["values"][i][1].as_str().unwrap().parse().unwrap() };
    let last = value(&result[2], 47);
    assert!((last - 1e9).abs() < 0.1e9, "{last}");
    assert!(value(&result[1], 47) <= last && last <= value(&result[3], 47));
    assert!(result[0]["values"].as_array().unwrap().len() > 1000);
    assert!(v.get("warnings").is_none(), "{v}");
}

#[tokio::test]
async fn forecast_models_and_too_short_series() {
    let (_dir, r) = router().await;
    let time = NOW / 1000;
    let uri = format!(
        "/api/v1/forecast?query={}&time={time}&horizon=86400&model=linear&coverage=0.95",
        enc(VAR)
    );
    let (status, v) = get(&r, &uri).await;
    assert_eq!(status, 200, "{v}");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 3);
    // Default step: a thousandth of the horizon, whole seconds.
    assert_eq!(result[0]["values"].as_array().unwrap().len(), 1000);
    // Each seasonality is accepted and reaches the model: without a season
    // the mean path of the seasonal model is a line (trend plus level); a
    // daily profile forced onto the same history bends it.
    let mut paths = std::collections::BTreeMap::new();
    for season in ["auto", "daily", "weekly", "none"] {
        let uri = format!(
            "/api/v1/forecast?query={}&time={time}&horizon=1d&step=1h&seasonality={season}",
            enc(VAR)
        );
        let (status, v) = get(&r, &uri).await;
        assert_eq!(status, 200, "{season}: {v}");
        let mean = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metric"][super::BAND_LABEL] == "mean")
            .unwrap();
        let ys: Vec<f64> = mean["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().parse().unwrap())
            .collect();
        if season == "none" {
            // Straight up to the level, which each horizon of the ladder
            // smooths with its own factor: within 5 % of the mean step.
            let d = (ys[ys.len() - 1] - ys[0]) / (ys.len() - 1) as f64;
            assert!(
                ys.windows(2)
                    .all(|w| ((w[1] - w[0]) - d).abs() <= 0.05 * d.abs()),
                "{ys:?}"
            );
        }
        paths.insert(season, ys);
    }
    assert_ne!(paths["daily"], paths["none"]);
    // Ten seconds of history hold 11 points: too short, a warning, success.
    let uri = format!(
        "/api/v1/forecast?query={}&time={time}&history=10s",
        enc(VAR)
    );
    let (status, v) = get(&r, &uri).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["result"], serde_json::json!([]));
    let w = v["warnings"][0].as_str().unwrap();
    assert!(
        w.starts_with(r#"series node_filesystem_avail_bytes{device="/dev/sda1", fstype="ext4", instance="db-3", mountpoint="/var"} not forecast: series too short to fit: 11 finite samples"#),
        "{w}"
    );
}

#[tokio::test]
async fn forecast_parameter_errors_name_the_parameter() {
    let (_dir, r) = router().await;
    let q = enc(VAR);
    let cases = [
        (
            format!("query={q}&model=arima"),
            r#"invalid parameter "model": unknown model "arima": expected one of seasonal, linear"#,
        ),
        (
            format!("query={q}&horizon=3x"),
            r#"invalid parameter "horizon": cannot parse "3x" to a valid duration"#,
        ),
        (
            format!("query={q}&horizon=-1"),
            r#"invalid parameter "horizon": horizon must be a positive duration"#,
        ),
        (
            format!("query={q}&history=0"),
            r#"invalid parameter "history": history must be a positive duration"#,
        ),
        (
            format!("query={q}&coverage=1"),
            r#"invalid parameter "coverage": cannot parse "1" to a coverage: expected a number strictly between 0 and 1"#,
        ),
        (
            format!("query={q}&step=0"),
            r#"invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer"#,
        ),
        (
            format!("query={q}&horizon=30d&step=1s"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            format!("query={q}&seasonality=hourly"),
            r#"invalid parameter "seasonality": unknown seasonality "hourly": expected one of auto, none, daily, weekly"#,
        ),
        (
            format!("query={q}&include_history=yes"),
            r#"invalid parameter "include_history": cannot parse "yes" to a boolean: expected true or false"#,
        ),
        (
            format!("query={}", enc("up[5m]")),
            r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
        ),
    ];
    for (params, want) in cases {
        assert_eq!(bad(&r, &format!("/api/v1/forecast?{params}")).await, want);
    }
    let e = bad(&r, "/api/v1/forecast?query=up%7B").await;
    assert!(e.starts_with(r#"invalid parameter "query": "#), "{e}");
}

#[tokio::test]
async fn capacity_ranks_findings() {
    let (_dir, r) = router().await;
    let time = NOW / 1000;
    let (status, v) = get(&r, &format!("/api/v1/capacity?time={time}")).await;
    assert_eq!(status, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["horizon"], 30.0 * 86_400.0);
    assert_eq!(d["coverage"], 0.8);
    assert_eq!(
        d["checks"],
        serde_json::json!(["filesystem_space", "filesystem_inodes", "memory", "cpu"])
    );
    let findings = d["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{d}");
    let f = &findings[0];
    assert_eq!(f["check"], "filesystem_space");
    assert_eq!(f["labels"]["mountpoint"], "/var");
    assert_eq!(f["direction"], "below");
    assert_eq!(f["threshold"], 0.0);
    let secs = f["seconds"].as_f64().unwrap();
    assert!((secs / 86_400.0 - 3.0).abs() < 0.2, "{f}");
    assert!(f["lower"].as_f64().unwrap() <= secs);
    assert!(f["upper"].as_f64().unwrap() >= secs);
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("filesystem /var on db-3 is full in 3.0 days (80% interval "),
        "{f}"
    );
    // A horizon shorter than the time left: nothing.
    let (_, v) = get(&r, &format!("/api/v1/capacity?time={time}&horizon=1d")).await;
    assert_eq!(v["data"]["findings"], serde_json::json!([]));
    // Only the memory check: nothing either.
    let (_, v) = get(&r, &format!("/api/v1/capacity?time={time}&check=memory")).await;
    assert_eq!(v["data"]["checks"], serde_json::json!(["memory"]));
    assert_eq!(v["data"]["findings"], serde_json::json!([]));
}

#[tokio::test]
async fn capacity_parameter_errors() {
    let (_dir, r) = router().await;
    assert_eq!(
        bad(&r, "/api/v1/capacity?check=disk").await,
        r#"invalid parameter "check": unknown check "disk": expected one of filesystem_space, filesystem_inodes, memory, cpu"#
    );
    assert_eq!(
        bad(&r, "/api/v1/capacity?horizon=soon").await,
        r#"invalid parameter "horizon": cannot parse "soon" to a valid duration"#
    );
    assert_eq!(
        bad(&r, "/api/v1/capacity?coverage=0").await,
        r#"invalid parameter "coverage": cannot parse "0" to a coverage: expected a number strictly between 0 and 1"#
    );
    assert_eq!(
        bad(&r, "/api/v1/capacity?limit=-1").await,
        r#"invalid parameter "limit": limit must be non-negative"#
    );
}
