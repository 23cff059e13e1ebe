//! API v2 shapes, driven through the router as a client would.

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeZone;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::receivers::{Notify, NotifyError};
use crate::types::Notification;
use crate::{Clock, Config, Options};

struct Quiet(String);

impl Notify for Quiet {
    fn notify<'a>(
        &'a self,
        _n: &'a Notification,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &str {
        &self.0
    }
}

const CONFIG: &str = r#"
global:
  resolve_timeout: 1h
  smtp_auth_password: hunter2
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: [severity="page"]
      receiver: pager
receivers:
  - name: team
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:9/secret-hook'}]
inhibit_rules:
  - source_matchers: [severity=page]
    target_matchers: [severity=info]
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 21, 10, 0, 0).unwrap()
}

fn am(dir: &std::path::Path) -> Arc<Alertmanager> {
    let cfg = Config::parse(CONFIG, "am.yml").unwrap();
    let mut reg = prometheus_client::registry::Registry::default();
    let opts = Options {
        clock: Clock::tokio_at(t0()),
        receiver_factory: Some(Arc::new(|rc, _, _| {
            Ok(Arc::new(Quiet(rc.name.clone())) as Arc<dyn Notify>)
        })),
        ..Options::default()
    };
    Alertmanager::with_options(cfg, dir, &mut reg, opts).unwrap()
}

async fn call(
    am: &Arc<Alertmanager>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = routes(am.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

#[tokio::test(start_paused = true)]
async fn alerts_round_trip_with_amtool_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let am = am(dir.path());
    let (st, body) = call(
        &am,
        "POST",
        "/api/v2/alerts",
        Some(json!([
            {"labels": {"alertname": "Hot", "severity": "page", "empty": ""}, "annotations": {"summary": "s"},
             "startsAt": "2026-08-21T09:59:00.123456Z", "generatorURL": "http://g"},
            {"labels": {"alertname": "Info", "severity": "info"}},
            {"labels": {}}
        ])),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        body.as_str()
            .unwrap()
            .contains("at least one label pair required")
    );

    let (st, alerts) = call(&am, "GET", "/api/v2/alerts", None).await;
    assert_eq!(st, StatusCode::OK);
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    let hot = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "Hot")
        .unwrap();
    assert_eq!(
        hot["labels"],
        json!({"alertname": "Hot", "severity": "page"})
    );
    assert_eq!(hot["startsAt"], "2026-08-21T09:59:00.123Z");
    assert_eq!(hot["endsAt"], "2026-08-21T11:00:00.000Z");
    assert_eq!(hot["updatedAt"], "2026-08-21T10:00:00.000Z");
    assert_eq!(hot["generatorURL"], "http://g");
    assert_eq!(hot["receivers"], json!([{"name": "pager"}]));
    assert_eq!(
        hot["status"],
        json!({"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []})
    );
    assert_eq!(hot["fingerprint"].as_str().unwrap().len(), 16);
    let info = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "Info")
        .unwrap();
    assert_eq!(info["status"]["state"], "suppressed");
    assert_eq!(info["status"]["inhibitedBy"], json!([hot["fingerprint"]]));
    assert_eq!(info["receivers"], json!([{"name": "team"}]));

    // Filters.
    let (_, v) = call(&am, "GET", "/api/v2/alerts?inhibited=false", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = call(
        &am,
        "GET",
        "/api/v2/alerts?filter=severity%3D%22info%22",
        None,
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = call(&am, "GET", "/api/v2/alerts?receiver=pag.*", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = call(
        &am,
        "GET",
        "/api/v2/alerts?filter=nolabel%3D~%22.%2A%22",
        None,
    )
    .await;
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "a missing label matches as empty"
    );
    let (_, v) = call(&am, "GET", "/api/v2/alerts?filter=severity%3D%22%22", None).await;
    assert_eq!(
        v.as_array().unwrap().len(),
        0,
        "an empty value must match a present label"
    );
    let (_, v) = call(&am, "GET", "/api/v2/alerts?filter=nolabel%3D%22%22", None).await;
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "an empty positive matcher on a missing label is skipped"
    );
    let (_, v) = call(
        &am,
        "GET",
        "/api/v2/alerts?filter=severity!%3D%22page%22",
        None,
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (st, _) = call(&am, "GET", "/api/v2/alerts?active=maybe", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Groups.
    let (_, groups) = call(&am, "GET", "/api/v2/alerts/groups", None).await;
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["labels"], json!({"alertname": "Hot"}));
    assert_eq!(groups[0]["receiver"], json!({"name": "pager"}));
    assert_eq!(groups[0]["alerts"].as_array().unwrap().len(), 1);
    let (_, groups) = call(&am, "GET", "/api/v2/alerts/groups?inhibited=false", None).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn silences_api() {
    let dir = tempfile::tempdir().unwrap();
    let am = am(dir.path());
    call(
        &am,
        "POST",
        "/api/v2/alerts",
        Some(json!([{"labels": {"alertname": "Hot"}}])),
    )
    .await;
    let post = json!({
        "matchers": [{"name": "alertname", "value": "Hot", "isRegex": false}],
        "startsAt": "2026-08-21T10:00:00Z",
        "endsAt": "2026-08-21T12:00:00Z",
        "createdBy": "alice",
        "comment": "maintenance"
    });
    let (st, v) = call(&am, "POST", "/api/v2/silences", Some(post.clone())).await;
    assert_eq!(st, StatusCode::OK);
    let id = v["silenceID"].as_str().unwrap().to_string();
    let (st, s) = call(&am, "GET", &format!("/api/v2/silence/{id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s,
        json!({
            "id": id,
            "status": {"state": "active"},
            "updatedAt": "2026-08-21T10:00:00.000Z",
            "comment": "maintenance",
            "createdBy": "alice",
            "endsAt": "2026-08-21T12:00:00.000Z",
            "matchers": [{"isEqual": true, "isRegex": false, "name": "alertname", "value": "Hot"}],
            "startsAt": "2026-08-21T10:00:00.000Z"
        })
    );
    let (_, alerts) = call(&am, "GET", "/api/v2/alerts", None).await;
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]));
    assert_eq!(alerts[0]["status"]["state"], "suppressed");

    // Invalid: end before start; unknown id.
    let mut bad = post.clone();
    bad["endsAt"] = json!("2026-08-21T09:00:00Z");
    assert_eq!(
        call(&am, "POST", "/api/v2/silences", Some(bad)).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut unknown = post.clone();
    unknown["id"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(
        call(&am, "POST", "/api/v2/silences", Some(unknown)).await.0,
        StatusCode::NOT_FOUND
    );

    // A pending one sorts after the active one; filters apply.
    let mut pending = post.clone();
    pending["startsAt"] = json!("2026-08-21T11:00:00Z");
    pending["matchers"] = json!([{"name": "job", "value": "x", "isRegex": false, "isEqual": false}, {"name": "a", "value": "b", "isRegex": true}]);
    let (_, v) = call(&am, "POST", "/api/v2/silences", Some(pending)).await;
    let pid = v["silenceID"].as_str().unwrap().to_string();
    let (_, list) = call(&am, "GET", "/api/v2/silences", None).await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str(), pid.as_str()]);
    let (_, list) = call(&am, "GET", "/api/v2/silences?filter=alertname%3DHot", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Silence filters compare matchers exactly, not by matching.
    let (_, list) = call(&am, "GET", "/api/v2/silences?filter=alertname%3D~Hot", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (_, list) = call(&am, "GET", "/api/v2/silences?filter=job!%3Dx", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Delete expires; unknown → 404.
    assert_eq!(
        call(&am, "DELETE", &format!("/api/v2/silence/{id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    let (_, s) = call(&am, "GET", &format!("/api/v2/silence/{id}"), None).await;
    assert_eq!(s["status"]["state"], "expired");
    assert_eq!(
        call(&am, "DELETE", "/api/v2/silence/nope", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&am, "GET", "/api/v2/silence/nope", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = call(&am, "GET", "/api/v2/silences?expired=false", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn status_receivers_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let am = am(dir.path());
    let (st, s) = call(&am, "GET", "/api/v2/status", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s["cluster"],
        json!({"name": "", "peers": [], "status": "disabled"})
    );
    assert_eq!(s["uptime"], "2026-08-21T10:00:00.000Z");
    assert!(s["versionInfo"]["version"].is_string());
    let original = s["config"]["original"].as_str().unwrap();
    assert!(original.contains("resolve_timeout"));
    assert!(!original.contains("hunter2"), "{original}");
    assert!(!original.contains("secret-hook"), "{original}");
    let (_, r) = call(&am, "GET", "/api/v2/receivers", None).await;
    assert_eq!(r, json!([{"name": "team"}, {"name": "pager"}]));

    let t = t0();
    am.history()
        .record(&crate::HistoryEvent::state_change(
            t,
            [("alertname".to_string(), "Hot".to_string())].into(),
            "pending",
            "firing",
            Some(3.0),
        ))
        .unwrap();
    let (st, h) = call(
        &am,
        "GET",
        "/api/v1/alerts/history?alertname=Hot&start=2026-08-21T09:00:00Z",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["status"], "success");
    let data = h["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["type"], "state_change");
    assert_eq!(data[0]["to"], "firing");
    let (_, h) = call(
        &am,
        "GET",
        "/api/v1/alerts/history?match[]=%7Balertname%3D%22Cold%22%7D&start=0",
        None,
    )
    .await;
    assert_eq!(h["data"], json!([]));
    let (st, h) = call(&am, "GET", "/api/v1/alerts/history?start=zzz", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(h["errorType"], "bad_data");
    am.stop().await;
}
