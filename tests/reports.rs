//! Scheduled reports through the real binary: a report defined inline in
//! Silt's configuration runs on demand with `silt report run NAME`, over
//! data ingested by remote write, and its outputs are served.

mod common;

use common::{Silt, SiltOptions, now_ms, series};

#[test]
fn report_run_over_ingested_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: format!(
                "reports:\n  - name: uptime\n    kind: sla\n    period: 1h\n    formats: [html, csv, json]\n    delivery:\n      folder: {:?}\n    sla:\n      objective: 99\n",
                out.display().to_string()
            ),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();

    // Two targets over the last hour, one minute apart: web-1 always up,
    // web-2 down for the last 6 minutes (90 % up).
    let now = now_ms();
    let points = |down_from: usize| -> Vec<(i64, f64)> {
        (0..60)
            .map(|i| {
                let t = now - (59 - i as i64) * 60_000;
                (t, if i >= down_from { 0.0 } else { 1.0 })
            })
            .collect()
    };
    client.write_ok(&common::proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "up"), ("job", "web"), ("instance", "web-1")],
                &points(60),
            ),
            series(
                &[("__name__", "up"), ("job", "web"), ("instance", "web-2")],
                &points(54),
            ),
        ],
        metadata: vec![],
    });

    let listed = common::success_data(&client.get("/api/v1/reports"));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap_or_else(|| panic!("a list of reports: {listed}"))
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["uptime"]);

    let run = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["report", "run", "uptime", "--url"])
        .arg(format!("http://{}", silt.addr))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "silt report run failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    let html_url = stdout
        .split_whitespace()
        .find(|w| w.ends_with(".html"))
        .unwrap_or_else(|| panic!("an HTML output in {stdout}"));
    let path = html_url
        .strip_prefix(&format!("http://{}", silt.addr))
        .unwrap();
    let page = client.get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "a chart in the page");
    assert!(page.body.contains("web-2"), "the targets in the page");

    // The JSON output has the uptime per target: web-2 was up 90 % of the
    // hour, within a sample's width.
    let json_path = path.replace(".html", ".json");
    let doc = client.get(&json_path).json();
    let targets = doc["data"]["targets"]
        .as_array()
        .unwrap_or_else(|| panic!("targets in {doc}"));
    let uptime = |instance: &str| -> f64 {
        targets
            .iter()
            .find(|t| t["labels"]["instance"] == instance)
            .unwrap_or_else(|| panic!("{instance} in {doc}"))["uptime"]
            .as_f64()
            .unwrap()
    };
    assert!((uptime("web-1") - 1.0).abs() < 1e-9);
    assert!(
        (uptime("web-2") - 0.9).abs() < 1.0 / 60.0,
        "{}",
        uptime("web-2")
    );
    assert_eq!(
        doc["data"]["breached"], 1,
        "web-2 misses the 99 % objective"
    );

    // And the folder delivery wrote the files.
    let delivered: Vec<_> = walk(&out);
    assert!(
        delivered.iter().any(|p| p.ends_with(".html")),
        "{delivered:?}"
    );

    // An unknown report is a clear error and a failed exit status.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["report", "run", "nope", "--url"])
        .arg(format!("http://{}", silt.addr))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nope"), "names the report: {err}");
    silt.stop();
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}
