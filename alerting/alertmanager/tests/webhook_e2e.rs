//! End to end on real time: alerts posted to `/api/v2/alerts` reach a
//! webhook server through the dispatcher and the real webhook receiver.

use std::sync::Arc;
use std::time::Duration;

use alertmanager::{Alertmanager, Config};
use axum::body::Body;
use axum::http::Request;
use parking_lot::Mutex;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_alert_reaches_the_webhook() {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .push(serde_json::from_slice(&body).unwrap_or_default());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let yaml = format!(
        "route: {{receiver: hook, group_by: [alertname], group_wait: 100ms, group_interval: 1s}}\n\
         receivers: [{{name: hook, webhook_configs: [{{url: 'http://{addr}/hook'}}]}}]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let am = Alertmanager::new(
        Config::parse(&yaml, "am.yml").unwrap(),
        dir.path(),
        &mut registry,
    )
    .unwrap();
    let api = alertmanager::api::routes(am.clone());
    let body = r#"[{"labels": {"alertname": "HighLatency", "instance": "a:9100"}, "annotations": {"summary": "slow"}}]"#;
    let resp = api
        .oneshot(
            Request::post("/api/v2/alerts")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.lock().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.lock().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["version"], "4");
    assert_eq!(n["status"], "firing");
    assert_eq!(n["receiver"], "hook");
    assert_eq!(n["groupKey"], r#"{}:{alertname="HighLatency"}"#);
    assert_eq!(
        n["groupLabels"],
        serde_json::json!({"alertname": "HighLatency"})
    );
    assert_eq!(n["alerts"][0]["labels"]["instance"], "a:9100");
    assert_eq!(n["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // No second notification at the next group interval (nothing changed).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(received.lock().len(), 1);
    am.stop().await;
    server.abort();
}
