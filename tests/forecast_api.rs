//! End to end: `/api/v1/forecast` and `/api/v1/capacity` on the real
//! binary, over data sent by remote write: a filesystem losing 1 GB a day
//! is found full at the right time by the built-in check and by a check
//! from the config file; forecasts extend the series; bad parameters get
//! 400 with the parameter named.

mod common;

use common::{Silt, SiltOptions, proto, series, success_data};

const DAY: i64 = 86_400_000;
const GB: f64 = 1e9;

/// Three days every 5 minutes ending at `end` of `f(days before end)`.
fn samples(end: i64, f: impl Fn(f64) -> f64) -> Vec<(i64, f64)> {
    let step = 300_000;
    (0..=3 * DAY / step)
        .map(|i| {
            let t = end - 3 * DAY + i * step;
            (t, f((end - t) as f64 / DAY as f64))
        })
        .collect()
}

#[test]
fn forecasts_and_capacity_findings_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let silt = Silt::start_with(
        &tmp.path().join("data"),
        SiltOptions {
            extra_config: "capacity:\n  checks:\n    - name: var_use\n      query: 1 - node_filesystem_avail_bytes / node_filesystem_size_bytes\n      threshold: 0.9\n      direction: above\n      message: '{mountpoint} on {instance} reaches 90%'\n      history: 3d\n      model: linear\n".into(),
            ..SiltOptions::default()
        },
    );
    let c = silt.client();
    // Whole minutes, a little in the past.
    let end = (common::now_ms() - 60_000) / 60_000 * 60_000;
    let fs = |name: &'static str| {
        [
            ("__name__", name),
            ("instance", "db-3"),
            ("mountpoint", "/var"),
            ("fstype", "ext4"),
        ]
    };
    // 3 GB free now, 1 GB a day less; 20 GB in all (85% used now, +5%
    // a day: 90% in a day).
    c.write_ok(&proto::WriteRequest {
        timeseries: vec![
            series(
                &fs("node_filesystem_avail_bytes"),
                &samples(end, |d| 3.0 * GB + d * GB),
            ),
            series(
                &fs("node_filesystem_size_bytes"),
                &samples(end, |_| 20.0 * GB),
            ),
        ],
        metadata: vec![],
    });
    let time = common::ms_param(end);

    let data = success_data(&c.get_query("/api/v1/capacity", &[("time", &time)]));
    assert_eq!(
        data["checks"],
        serde_json::json!([
            "filesystem_space",
            "filesystem_inodes",
            "memory",
            "cpu",
            "var_use"
        ])
    );
    let findings = data["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{data}");
    // Soonest first: 90% use in a day, then full in three.
    assert_eq!(findings[0]["check"], "var_use");
    let secs = |f: &serde_json::Value| f["seconds"].as_f64().unwrap();
    assert!((secs(&findings[0]) / 86_400.0 - 1.0).abs() < 0.1, "{data}");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("/var on db-3 reaches 90% in "),
        "{data}"
    );
    assert_eq!(findings[1]["check"], "filesystem_space");
    assert!((secs(&findings[1]) / 86_400.0 - 3.0).abs() < 0.2, "{data}");
    assert!(
        findings[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("filesystem /var on db-3 is full in 3.0 days (80% interval "),
        "{data}"
    );

    let data = success_data(&c.get_query(
        "/api/v1/forecast",
        &[
            ("query", r#"node_filesystem_avail_bytes{mountpoint="/var"}"#),
            ("time", &time),
            ("history", "3d"),
            ("horizon", "1d"),
            ("step", "1h"),
        ],
    ));
    let result = data["result"].as_array().unwrap();
    assert_eq!(result.len(), 3, "{data}");
    let mean = result
        .iter()
        .find(|s| s["metric"]["silt_forecast"] == "mean")
        .unwrap();
    let values = mean["values"].as_array().unwrap();
    assert_eq!(values.len(), 24);
    let last: f64 = values[23][1].as_str().unwrap().parse().unwrap();
    assert!((last - 2.0 * GB).abs() < 0.1 * GB, "{last}");

    let r = c.get_query(
        "/api/v1/forecast",
        &[("query", "node_filesystem_avail_bytes"), ("model", "arima")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["errorType"], "bad_data");
    assert_eq!(
        r.json()["error"],
        r#"invalid parameter "model": unknown model "arima": expected one of seasonal, linear"#
    );
    let r = c.get_query("/api/v1/capacity", &[("horizon", "soon")]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["error"],
        r#"invalid parameter "horizon": cannot parse "soon" to a valid duration"#
    );
}

#[test]
fn a_bad_capacity_check_stops_the_config_with_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("silt.yml");
    std::fs::write(
        &file,
        "capacity:\n  checks:\n    - {name: q, query: 'up[5m]', threshold: 1, direction: above, message: m}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["print-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("check q: query must be an instant vector or a scalar, got range vector"),
        "{err}"
    );
}
