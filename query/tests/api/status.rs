//! `/api/v1/status/*`.

use super::*;
use std::sync::Arc;

use query::api::{BuildInfo, ConfigStatus, StatusInfo};

#[tokio::test]
async fn buildinfo_flags_config_and_runtimeinfo() {
    let status = StatusInfo {
        build: BuildInfo {
            version: "1.2.3".into(),
            revision: "abc".into(),
            branch: "main".into(),
            build_user: "ci".into(),
            build_date: "20260101-00:00:00".into(),
            go_version: "rustc 1.95".into(),
        },
        flags: [("query.timeout", "2m"), ("query.max-samples", "50000000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        config: Arc::new(ConfigStatus::new(
            "retention: 15d\n".into(),
            1_700_000_000_000,
        )),
        storage_retention: "15d".into(),
    };
    let f = fixture_with(ApiOptions {
        status,
        ..ApiOptions::default()
    })
    .await;
    let r = get(&f.router, "/api/v1/status/buildinfo").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"version":"1.2.3","revision":"abc","branch":"main","buildUser":"ci","buildDate":"20260101-00:00:00","goVersion":"rustc 1.95"}}"#
    );
    let r = get(&f.router, "/api/v1/status/flags").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"query.max-samples":"50000000","query.timeout":"2m"}}"#
    );
    let r = get(&f.router, "/api/v1/status/config").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"yaml":"retention: 15d\n"}}"#
    );
    let data = get(&f.router, "/api/v1/status/runtimeinfo").await.data();
    for key in [
        "startTime",
        "CWD",
        "hostname",
        "serverTime",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GOGC",
        "GODEBUG",
    ] {
        assert!(data.get(key).is_some(), "{key} missing: {data}");
    }
    assert_eq!(data["storageRetention"], "15d");
    let start = data["startTime"].as_str().unwrap();
    assert!(start.ends_with('Z') && start.len() >= 20, "{start}");
    assert_eq!(data["lastConfigTime"], "2023-11-14T22:13:20Z");
    assert_eq!(data["reloadConfigSuccess"], true);

    // A reload shows; a failed one keeps the configuration and says so.
    let config = f.api.options().status.config.clone();
    config.reloaded("retention: 30d\n".into(), 1_700_000_060_000);
    let r = get(&f.router, "/api/v1/status/config").await;
    assert_eq!(
        r.text(),
        r#"{"status":"success","data":{"yaml":"retention: 30d\n"}}"#
    );
    config.reload_failed();
    let data = get(&f.router, "/api/v1/status/runtimeinfo").await.data();
    assert_eq!(data["lastConfigTime"], "2023-11-14T22:14:20Z");
    assert_eq!(data["reloadConfigSuccess"], false);
    let r = get(&f.router, "/api/v1/status/config").await;
    assert!(r.text().contains("retention: 30d"), "{}", r.text());
}

#[tokio::test]
async fn tsdb_cardinality() {
    let f = fixture().await;
    let data = get(&f.router, "/api/v1/status/tsdb").await.data();
    assert_eq!(data["headStats"]["numSeries"], 6);
    // The head's samples span T0 to node_cpu's last, 4 minutes on.
    assert_eq!(data["headStats"]["minTime"], T0);
    assert_eq!(data["headStats"]["maxTime"], T0 + 240_000);
    // up: 3 series; node_cpu, http.server.duration, specials: 1 each.
    assert_eq!(
        data["seriesCountByMetricName"][0],
        serde_json::json!({"name": "up", "value": 3})
    );
    assert_eq!(data["seriesCountByMetricName"].as_array().unwrap().len(), 4);
    assert_eq!(
        data["labelValueCountByLabelName"][0],
        serde_json::json!({"name": "__name__", "value": 4})
    );
    assert_eq!(
        data["seriesCountByLabelValuePair"][0],
        serde_json::json!({"name": "__name__=up", "value": 3})
    );
    // __name__: 4 values; job and instance: 2 and 3 values.
    assert_eq!(data["headStats"]["numLabelPairs"], 4 + 2 + 3 + 1 + 1 + 1);
    let mem = data["memoryInBytesByLabelName"].as_array().unwrap();
    assert_eq!(mem[0]["name"], "__name__", "{data}");

    let data = get(&f.router, "/api/v1/status/tsdb?limit=1").await.data();
    for key in [
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        assert_eq!(data[key].as_array().unwrap().len(), 1, "{key}");
    }
    for (limit, msg) in [
        ("0", "limit must be a positive number"),
        ("x", "limit must be a positive number"),
        ("10001", "limit must not exceed 10000"),
    ] {
        let r = get(&f.router, &format!("/api/v1/status/tsdb?limit={limit}")).await;
        assert_eq!(r.error(400, "bad_data"), msg);
    }
}
