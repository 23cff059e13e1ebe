//! End to end with a real client: Debian's `promtool query instant|range|
//! series|labels` (Prometheus's Go API client, which POSTs form bodies and
//! parses the JSON strictly) against the real `silt` binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Silt, SiltOptions, Value, proto, series};

/// Runs promtool with `args`; returns (success, stdout, stderr).
fn promtool(bin: &Path, args: &[&str]) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin)
        .args(args)
        .output()
        .expect("running promtool");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn json(args: &[&str], bin: &Path) -> Value {
    let (ok, out, err) = promtool(bin, args);
    assert!(ok, "promtool {args:?} failed: {err}{out}");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("promtool {args:?}: not JSON ({e}): {out}"))
}

#[test]
fn promtool_query_instant_range_series_labels() {
    let Some(bin) = common::require_program("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: "query:\n  timeout: 30s\n".into(),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();
    // Five samples 15 s apart, ten minutes ago, on a whole minute.
    let t0 = (common::now_ms() - 600_000) / 60_000 * 60_000;
    let samples = |scale: f64| -> Vec<(i64, f64)> {
        (0..5)
            .map(|i| (t0 + i * 15_000, scale * (i + 1) as f64))
            .collect()
    };
    client.write_ok(&proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "pt_requests"), ("job", "a"), ("instance", "x")],
                &samples(1.0),
            ),
            series(
                &[("__name__", "pt_requests"), ("job", "b"), ("instance", "y")],
                &samples(10.0),
            ),
            series(&[("__name__", "pt_other"), ("job", "a")], &samples(0.5)),
        ],
        metadata: vec![],
    });
    let url = format!("http://{}", silt.addr);
    let t_last = (t0 + 60_000) / 1000;
    let at = t_last.to_string();

    // Instant: a sum, as JSON and as promtool's text format.
    let v = json(
        &[
            "query",
            "instant",
            "-o",
            "json",
            "--time",
            &at,
            &url,
            "sum(pt_requests)",
        ],
        &bin,
    );
    assert_eq!(
        v,
        serde_json::json!([{"metric": {}, "value": [t_last, "55"]}])
    );
    let (ok, out, err) = promtool(
        &bin,
        &[
            "query",
            "instant",
            "--time",
            &at,
            &url,
            r#"pt_requests{job="a"}"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!(r#"pt_requests{{instance="x", job="a"}} => 5 @[{t_last}]"#)
    );
    // RFC 3339 time; a scalar result.
    let (ok, out, err) = promtool(
        &bin,
        &[
            "query",
            "instant",
            "--time",
            "2024-01-02T03:04:05Z",
            &url,
            "1+1",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "scalar: 2 @[1704164645]");

    // Range: every point of one series.
    let start = (t0 / 1000).to_string();
    let v = json(
        &[
            "query",
            "range",
            "-o",
            "json",
            "--start",
            &start,
            "--end",
            &at,
            "--step",
            "15s",
            &url,
            r#"pt_requests{job="b"}"#,
        ],
        &bin,
    );
    let want: Vec<Value> = (0..5)
        .map(|i| serde_json::json!([t0 / 1000 + i * 15, ((i + 1) * 10).to_string()]))
        .collect();
    assert_eq!(
        v,
        serde_json::json!([{
            "metric": {"__name__": "pt_requests", "instance": "y", "job": "b"},
            "values": want,
        }])
    );

    // Series.
    let v = json(
        &[
            "query",
            "series",
            "-o",
            "json",
            "--match",
            "pt_requests",
            &url,
        ],
        &bin,
    );
    assert_eq!(
        v,
        serde_json::json!([
            {"__name__": "pt_requests", "instance": "x", "job": "a"},
            {"__name__": "pt_requests", "instance": "y", "job": "b"},
        ])
    );

    // Label values, all and restricted by a selector.
    let (ok, out, err) = promtool(&bin, &["query", "labels", &url, "job"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["a", "b"]);
    let (ok, out, err) = promtool(
        &bin,
        &["query", "labels", "--match", "pt_other", &url, "__name__"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pt_other");

    // Errors reach promtool as Prometheus API errors.
    let (ok, _, err) = promtool(&bin, &["query", "instant", &url, "sum(pt_requests"]);
    assert!(!ok);
    assert!(
        err.contains("bad_data") && err.contains("parse error"),
        "{err}"
    );
    let (ok, _, err) = promtool(
        &bin,
        &[
            "query", "range", "--start", "0", "--end", "100000", "--step", "1s", &url, "1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("exceeded maximum resolution of 11,000 points"),
        "{err}"
    );
    silt.stop();
}
