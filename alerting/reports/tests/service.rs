//! The report service end to end: runs on demand through the HTTP API,
//! run records and downloads, delivery to a folder, a webhook (retried
//! after a 503) and an SMTP server, and a failing report that records the
//! failure and tells its owner, then recovers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alertmanager::receivers::GlobalConfig;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use reports::{
    Options, OwnerNotifier, ReportDef, Reports, RunRecord, RunStatus, Sources, Trigger, config,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower::ServiceExt;

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String, Option<String>)>>);

impl OwnerNotifier for Recorder {
    fn failed(&self, def: &ReportDef, run: &RunRecord) {
        self.0
            .lock()
            .push(("failed".into(), def.name.clone(), run.error.clone()));
    }
    fn recovered(&self, def: &ReportDef, _run: &RunRecord) {
        self.0
            .lock()
            .push(("recovered".into(), def.name.clone(), None));
    }
}

/// A webhook receiver that answers 503 to the first request.
async fn webhook_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (g, calls) = (g.clone(), calls.clone());
            async move {
                let n = {
                    let mut c = calls.lock();
                    *c += 1;
                    *c
                };
                if n == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// A minimal plain SMTP server that keeps each message's DATA.
async fn smtp_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            g.lock().push(data.take().unwrap_or_default());
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (addr.to_string(), got)
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_demand_delivers_and_alerts_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    fill(&db, end_ms());
    let (hook, hooked) = webhook_server().await;
    let (smtp, mails) = smtp_server().await;
    let out = dir.path().join("out");
    let yaml = format!(
        r#"
reports:
  - name: weekly-capacity
    kind: capacity
    schedule: "0 8 * * mon"
    period: 2d
    filters: {{selector: '{{job="node"}}'}}
    owner: ops
    delivery:
      folder: {out}
      webhook: {{url: "{hook}", max_attempts: 3}}
      email: {{to: ops@example.com, from: silt@example.com, smarthost: "{smtp}", require_tls: false}}
  - name: broken-sla
    kind: sla
    period: 2d
    owner: web-team
    filters: {{selector: '{{job="nothing-here"}}'}}
"#,
        out = out.display()
    );
    let defs = config::parse(&yaml, "reports.yml").unwrap();
    let recorder = Arc::new(Recorder::default());
    let mut opts = Options::new(dir.path().join("reports"));
    opts.external_url = "http://silt.example:9090".into();
    opts.notifier = Some(recorder.clone());
    opts.webhook_backoff = Duration::from_millis(10);
    let sources = Sources {
        db,
        history: None,
        query: Default::default(),
    };
    let svc = Reports::new(defs, sources, opts).unwrap();
    svc.start();
    let app = reports::routes(svc.clone());

    // Run the capacity report through the API.
    let (status, _, body) = call(
        &app,
        Request::post("/api/v1/reports/weekly-capacity/run")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let rec: RunRecord = serde_json::from_value(v["data"].clone()).unwrap();
    assert_eq!(rec.status, RunStatus::Succeeded, "{:?}", rec.error);
    assert_eq!(rec.trigger, Trigger::Manual);
    assert!(rec.files.iter().any(|f| f.name == "report.html"));
    assert_eq!(rec.deliveries.len(), 3, "{:?}", rec.deliveries);
    assert!(rec.deliveries.iter().all(|d| d.ok), "{:?}", rec.deliveries);
    let webhook = rec
        .deliveries
        .iter()
        .find(|d| d.target == "webhook")
        .unwrap();
    assert_eq!(webhook.attempts, 2, "the 503 was retried");

    // Folder: a complete run folder.
    let folder = out.join("weekly-capacity").join(&rec.id);
    assert!(folder.join("report.html").is_file());
    assert!(folder.join("hosts.csv").is_file());
    // Webhook: the document and links.
    let payload = hooked.lock()[0].clone();
    assert_eq!(payload["report"], "weekly-capacity");
    assert_eq!(payload["runId"], rec.id.as_str());
    assert_eq!(
        payload["links"]["report.html"],
        format!(
            "http://silt.example:9090/api/v1/reports/weekly-capacity/runs/{}/report.html",
            rec.id
        )
    );
    assert_eq!(
        payload["document"]["data"]["under_provisioned"],
        serde_json::json!(["busy", "filling"])
    );
    // Email: HTML and text parts through the Alertmanager email receiver.
    let mail = mails.lock()[0].clone();
    assert!(
        mail.contains("Subject: Capacity planning: weekly-capacity"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains("text/html"));
    assert!(mail.contains("text/plain"));
    assert!(mail.contains("svg"));

    // Runs listing and download.
    let (status, _, body) = get(&app, "/api/v1/reports/weekly-capacity/runs").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"][0]["id"], rec.id.as_str());
    let (status, ct, body) = get(
        &app,
        &format!(
            "/api/v1/reports/weekly-capacity/runs/{}/report.html",
            rec.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(String::from_utf8(body).unwrap().contains("<svg"));
    let (status, _, _) = get(
        &app,
        &format!("/api/v1/reports/weekly-capacity/runs/{}/run.json", rec.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&app, "/api/v1/reports/nope/runs").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A failing report: recorded, owner told, schedule untouched.
    let (status, _, body) = call(
        &app,
        Request::post("/api/v1/reports/broken-sla/run")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["status"], "failed");
    assert!(
        v["data"]["error"]
            .as_str()
            .unwrap()
            .starts_with("no data: no up{job=\"nothing-here\"} samples")
    );
    {
        let got = recorder.0.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "failed");
        assert_eq!(got[0].1, "broken-sla");
    }

    // The listing shows schedules, next and last runs.
    let (_, _, body) = get(&app, "/api/v1/reports").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let list = v["data"].as_array().unwrap();
    assert_eq!(list[0]["name"], "weekly-capacity");
    assert_eq!(list[0]["schedule"], "0 8 * * mon");
    assert!(list[0]["next_run"].as_str().unwrap().contains("T08:00:00"));
    assert_eq!(list[0]["last_run"]["id"], rec.id.as_str());
    assert_eq!(list[1]["last_run"]["status"], "failed");
    assert!(list[1]["next_run"].is_null());

    // Fixed: the next run succeeds and the owner's alert is resolved.
    let fixed = config::parse(
        "reports:\n  - {name: broken-sla, kind: sla, period: 2d, owner: web-team, filters: {selector: '{job=\"web\"}'}}\n",
        "reports.yml",
    )
    .unwrap();
    svc.update(fixed, GlobalConfig::default()).unwrap();
    let rec = svc
        .run_now("broken-sla", Trigger::Manual, None)
        .await
        .unwrap();
    assert_eq!(rec.status, RunStatus::Succeeded, "{:?}", rec.error);

    // An email report without its own SMTP settings needs the defaults a
    // reload brings: refused without them (nothing changes), then mailed
    // through them.
    let mailed = || {
        config::parse(
            "reports:\n  - {name: mailed, kind: capacity, period: 2d, owner: ops, filters: {selector: '{job=\"node\"}'}, delivery: {email: {to: ops@example.com}}}\n",
            "reports.yml",
        )
        .unwrap()
    };
    let err = svc.update(mailed(), GlobalConfig::default()).unwrap_err();
    assert!(err.to_string().contains("email: missing"), "{err}");
    assert!(svc.run_now("mailed", Trigger::Manual, None).await.is_err());
    let smtp_defaults = GlobalConfig {
        smtp_from: Some("silt@example.com".into()),
        smtp_smarthost: Some(smtp.clone()),
        smtp_require_tls: false,
        ..GlobalConfig::default()
    };
    svc.update(mailed(), smtp_defaults).unwrap();
    let before = mails.lock().len();
    let rec = svc.run_now("mailed", Trigger::Manual, None).await.unwrap();
    assert_eq!(rec.status, RunStatus::Succeeded, "{:?}", rec.deliveries);
    assert_eq!(
        mails.lock().len(),
        before + 1,
        "mailed through the new smarthost"
    );
    assert_eq!(recorder.0.lock().last().unwrap().0, "recovered");
    assert!(matches!(
        svc.run_now("weekly-capacity", Trigger::Manual, None).await,
        Err(reports::ReportError::UnknownReport(_))
    ));
    svc.stop().await;
}

#[tokio::test]
async fn bad_email_settings_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let defs = config::parse(
        "reports:\n  - {name: r, kind: sla, period: 1d, delivery: {email: {to: a@example.com}}}\n",
        "reports.yml",
    )
    .unwrap();
    let sources = Sources {
        db,
        history: None,
        query: Default::default(),
    };
    let err = Reports::new(defs, sources, Options::new(dir.path().join("r")))
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("report r: field delivery.email:"), "{err}");
    assert!(err.contains("missing from"), "{err}");
}
