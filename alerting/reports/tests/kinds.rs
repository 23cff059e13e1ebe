//! Each report kind over generated node_exporter data in a temp engine:
//! the numbers the report states are the numbers the data holds.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use reports::{Document, Format, Sources, config};

fn def(yaml: &str) -> reports::ReportDef {
    config::parse(yaml, "test.yml").expect("valid").remove(0)
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    sources: Sources,
    end: i64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let end = end_ms();
    fill(&db, end);
    let history = history(&dir.path().join("history"), end);
    Fixture {
        _dir: dir,
        sources: Sources {
            db,
            history: Some(history),
            query: Default::default(),
        },
        end,
    }
}

fn run(f: &Fixture, yaml: &str) -> Document {
    reports::compute(&f.sources, &def(yaml), at(f.end)).expect("report computes")
}

#[test]
fn every_kind_states_the_data() {
    let f = fixture();

    // ---- capacity ----
    let doc = run(
        &f,
        "reports:\n  - {name: cap, kind: capacity, period: 2d, filters: {selector: '{job=\"node\"}'}}\n",
    );
    let cap: serde_json::Value = doc.data.clone();
    let hosts = cap["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 4);
    let host = |name: &str| hosts.iter().find(|h| h["host"] == name).unwrap().clone();
    let busy = host("busy");
    assert!(
        (busy["cpu"]["avg"].as_f64().unwrap() - 0.95).abs() < 0.005,
        "{busy}"
    );
    assert!((busy["cpu"]["p95"].as_f64().unwrap() - 0.95).abs() < 0.005);
    assert_eq!(busy["provisioning"], "under");
    assert!(
        busy["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("CPU p95 95.0 %")
    );
    assert_eq!(busy["cores"], 2.0);
    assert!((busy["memory"]["p95"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    let idle = host("idle");
    assert_eq!(idle["provisioning"], "over");
    assert!((idle["cpu"]["p95"].as_f64().unwrap() - 0.05).abs() < 0.005);
    let filling = host("filling");
    assert_eq!(filling["provisioning"], "under");
    assert_eq!(filling["fullest_mountpoint"], "/data");
    let days = filling["days_until_full"].as_f64().unwrap();
    assert!((days - 0.2 / 0.075).abs() < 0.05, "days until full {days}");
    // Disk use grew 15 points over the two days (0.3 of size in 4 days).
    let growth = filling["disk"]["growth"].as_f64().unwrap();
    assert!((growth - 0.15).abs() < 0.005, "growth {growth}");
    let normal = host("normal");
    assert_eq!(normal["provisioning"], "balanced");
    assert!(normal["days_until_full"].is_null());
    assert_eq!(
        cap["under_provisioned"],
        serde_json::json!(["busy", "filling"])
    );
    assert_eq!(cap["over_provisioned"], serde_json::json!(["idle"]));
    // tmpfs is not counted: 2 filesystems per host.
    assert_eq!(cap["filesystems"].as_array().unwrap().len(), 8);
    assert_eq!(cap["thresholds"]["under_cpu_p95_above"], 0.85);
    // The document carries charts and tables.
    let files = reports::render::render(&doc, &Format::ALL, "test").unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for n in [
        "report.html",
        "report.json",
        "report.md",
        "hosts.csv",
        "filesystems.csv",
        "under-provisioned.csv",
    ] {
        assert!(names.contains(&n), "{n} missing in {names:?}");
    }
    let html = String::from_utf8(files[0].bytes.clone()).unwrap();
    assert!(html.matches("<svg").count() >= 5);
    assert!(html.contains("<td>busy</td>"));
    let csv = files.iter().find(|f| f.name == "hosts.csv").unwrap();
    let csv = String::from_utf8(csv.bytes.clone()).unwrap();
    assert!(csv.starts_with("Host,Cores,Memory (bytes),CPU avg (ratio)"));
    assert_eq!(csv.lines().count(), 5);

    // ---- SLA ----
    let doc = run(
        &f,
        "reports:\n  - {name: sla, kind: sla, period: 2d, filters: {selector: '{job=\"web\"}'}, sla: {objective: 99.9}}\n",
    );
    let sla: serde_json::Value = doc.data.clone();
    let targets = sla["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["target"], "web / t-90");
    let u = targets[0]["uptime"].as_f64().unwrap();
    assert!((u - 0.9).abs() < 0.002, "uptime {u}");
    assert_eq!(targets[0]["met"], false);
    let burn = targets[0]["budget_used"].as_f64().unwrap();
    assert!((burn - 100.0).abs() < 2.0, "budget used {burn}");
    assert_eq!(targets[1]["uptime"], 1.0);
    assert_eq!(targets[1]["met"], true);
    assert_eq!(sla["breached"], 1);

    // ---- alert summary ----
    let doc = run(&f, "reports:\n  - {name: al, kind: alerts, period: 2d}\n");
    let al: serde_json::Value = doc.data.clone();
    assert_eq!(al["firings"], 3);
    let rules = al["rules"].as_array().unwrap();
    assert_eq!(rules[0]["alertname"], "HostDown");
    assert_eq!(rules[0]["firings"], 2);
    assert_eq!(rules[0]["mean_time_to_resolve"], 45.0 * 60.0);
    assert_eq!(rules[1]["alertname"], "DiskFull");
    assert_eq!(rules[1]["still_firing"], 1);
    // The filter applies to alert labels.
    let doc = run(
        &f,
        "reports:\n  - {name: al, kind: alerts, period: 2d, filters: {selector: '{instance=\"c\"}'}}\n",
    );
    assert_eq!(doc.data["firings"], 1);

    // ---- trends ----
    let doc = run(
        &f,
        "reports:\n  - {name: tr, kind: trends, period: 2d, filters: {selector: '{job=\"node\"}'}}\n",
    );
    let tr: serde_json::Value = doc.data.clone();
    let row = |name: &str| {
        tr["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == name)
            .unwrap()
            .clone()
    };
    let cpu = row("CPU use");
    let (cur, prev) = (
        cpu["current_mean"].as_f64().unwrap(),
        cpu["previous_mean"].as_f64().unwrap(),
    );
    assert!((cur - 0.5).abs() < 0.005, "current {cur}");
    assert!((prev - 0.45).abs() < 0.005, "previous {prev}");
    assert!((cpu["change"].as_f64().unwrap() - 0.05).abs() < 0.01);
    assert_eq!(row("Targets up")["current_mean"], 4.0);
    assert!(doc.sections[0].blocks.len() >= 5, "a chart per metric");
}

#[test]
fn no_data_is_a_clear_error() {
    let f = fixture();
    let d = def(
        "reports:\n  - {name: cap, kind: capacity, period: 2d, filters: {selector: '{job=\"nope\"}'}}\n",
    );
    let e = reports::compute(&f.sources, &d, at(f.end)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("no data: no node_exporter series"),
        "{e}"
    );
    let d = def("reports:\n  - {name: al, kind: alerts, period: 2d}\n");
    let s = Sources {
        history: None,
        ..f.sources.clone()
    };
    assert_eq!(
        reports::compute(&s, &d, at(f.end)).unwrap_err(),
        reports::RunError::NoHistory
    );
}
