//! The binary's glue (`src/report_stack.rs`, compiled here too): definitions
//! from a file and inline, the service over the engine and a real built-in
//! Alertmanager, a failing report raising `SiltReportFailed` there, and
//! `silt report run` against a served API.

mod common;

#[path = "../../../src/report_stack.rs"]
mod report_stack;

use std::sync::Arc;

use alertmanager::Alertmanager;
use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_runs_reports_and_alerts_owners() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    fill(&db, end_ms());
    let file = dir.path().join("reports.yml");
    std::fs::write(
        &file,
        "reports:\n  - {name: sla, kind: sla, period: 2d, schedule: '@weekly', filters: {selector: '{job=\"web\"}'}}\n",
    )
    .unwrap();
    let inline: Vec<serde_yaml::Value> = serde_yaml::from_str(
        "- {name: broken, kind: capacity, period: 2d, owner: infra, filters: {selector: '{job=\"none\"}'}}\n",
    )
    .unwrap();
    let defs = report_stack::load_definitions(std::slice::from_ref(&file), &inline).unwrap();
    assert_eq!(defs.len(), 2);
    // The same name twice across file and inline is refused.
    let dup: Vec<serde_yaml::Value> =
        serde_yaml::from_str("- {name: sla, kind: sla, period: 1d}\n").unwrap();
    let err = report_stack::load_definitions(std::slice::from_ref(&file), &dup).unwrap_err();
    assert_eq!(format!("{err:#}"), "report sla: defined twice");

    let am_cfg = alertmanager::Config::parse(
        "route:\n  receiver: default\nreceivers:\n  - name: default\n",
        "am.yml",
    )
    .unwrap();
    let am = Alertmanager::new(am_cfg, &dir.path().join("am"), &mut Registry::default()).unwrap();
    let stack = report_stack::ReportStack::start(
        &db,
        defs,
        dir.path(),
        "http://silt.example",
        Default::default(),
        Some(&am),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = stack.routes();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rec = report_stack::run_remote(&base, "sla").await.unwrap();
    assert!(rec.files.iter().any(|f| f.name == "report.html"));
    assert!(
        dir.path()
            .join("reports/sla")
            .join(&rec.id)
            .join("report.html")
            .is_file()
    );

    let err = report_stack::run_remote(&base, "broken").await.unwrap_err();
    assert!(
        format!("{err:#}").starts_with("report broken failed: no data"),
        "{err:#}"
    );
    let err = report_stack::run_remote(&base, "nope").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("status 404: unknown report \"nope\""),
        "{err:#}"
    );

    // The failure is an alert in the built-in Alertmanager, for its owner.
    let resp = alertmanager::api::routes(am.clone())
        .oneshot(Request::get("/api/v2/alerts").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let alerts: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let a = &alerts.as_array().unwrap()[0];
    assert_eq!(a["labels"]["alertname"], "SiltReportFailed");
    assert_eq!(a["labels"]["report"], "broken");
    assert_eq!(a["labels"]["owner"], "infra");
    assert!(
        a["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("no data")
    );

    // A reload replaces the definitions; a bad one changes nothing.
    let fixed: Vec<serde_yaml::Value> = serde_yaml::from_str(
        "- {name: broken, kind: capacity, period: 2d, owner: infra, filters: {selector: '{job=\"node\"}'}}\n",
    )
    .unwrap();
    stack
        .reload(
            report_stack::load_definitions(&[], &fixed).unwrap(),
            am.config().global.receivers,
        )
        .unwrap();
    let rec = report_stack::run_remote(&base, "broken").await.unwrap();
    assert!(rec.files.iter().any(|f| f.name == "hosts.csv"));
    let err = report_stack::run_remote(&base, "sla").await.unwrap_err();
    assert!(format!("{err:#}").contains("404"), "{err:#}");

    // Email reports are checked against the SMTP defaults the reload
    // brings: refused without a sender and smarthost (nothing changes),
    // taken with them.
    let mailed: Vec<serde_yaml::Value> = serde_yaml::from_str(
        "- {name: mailed, kind: capacity, period: 2d, owner: infra, filters: {selector: '{job=\"node\"}'}, delivery: {email: {to: ops@example.com}}}\n",
    )
    .unwrap();
    let defs = || report_stack::load_definitions(&[], &mailed).unwrap();
    let err = stack
        .reload(defs(), am.config().global.receivers)
        .unwrap_err();
    assert!(format!("{err:#}").contains("email: missing"), "{err:#}");
    report_stack::run_remote(&base, "broken").await.unwrap();
    let mut smtp = am.config().global.receivers;
    smtp.smtp_smarthost = Some("127.0.0.1:1".into());
    smtp.smtp_from = Some("silt@example.com".into());
    stack.reload(defs(), smtp).unwrap();
    let err = report_stack::run_remote(&base, "broken").await.unwrap_err();
    assert!(format!("{err:#}").contains("404"), "{err:#}");

    stack.stop().await;
    let _: Arc<Alertmanager> = am.clone();
    am.stop().await;
}
