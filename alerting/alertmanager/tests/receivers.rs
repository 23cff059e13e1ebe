//! Receivers against local sinks on 127.0.0.1: an HTTP server that records
//! every request and answers from a script, and a small ESMTP server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use alertmanager::receivers::{
    GlobalConfig, NotifyError, Receiver, ReceiverConfig, ReceiverMetrics, SendError, Templates,
    USER_AGENT, dedup_key,
};
use alertmanager::types::{Alert, LabelSet, Notification, NotificationReason};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Recorded {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

#[derive(Clone, Default)]
struct Sink {
    log: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Option<Reply>>>,
}

impl Sink {
    /// Starts a sink answering `default` once the script is used up.
    async fn start(default: Reply, script: Vec<Reply>) -> (Sink, String) {
        let sink = Sink::default();
        *sink.default.lock() = Some(default);
        sink.script.lock().extend(script);
        let s = sink.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { s.handle(method, uri, headers, body).await }
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (sink, format!("http://{addr}"))
    }

    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        self.log.lock().push(Recorded {
            method: method.to_string(),
            path: uri.to_string(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let r = {
            let next = self.script.lock().pop_front();
            next.unwrap_or_else(|| self.default.lock().clone().unwrap())
        };
        tokio::time::sleep(r.delay).await;
        let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
        for (k, v) in r.headers {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        resp
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().clone()
    }
}

fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 21, 10, 0, 0).unwrap()
        + chrono::Duration::nanoseconds(123_400_000)
}

fn alert(instance: &str, resolved: bool) -> Alert {
    Alert {
        labels: ls(&[
            ("alertname", "NodeDown"),
            ("instance", instance),
            ("severity", "critical"),
        ]),
        annotations: ls(&[("summary", "Node is unreachable")]),
        starts_at: t0(),
        ends_at: resolved.then(|| t0() + chrono::Duration::minutes(5)),
        generator_url: "http://prometheus:9090/graph?g0.expr=up".to_string(),
        updated_at: t0(),
        timeout: false,
    }
}

/// `firing` firing alerts web-1.. and `resolved` resolved alerts db-1..
fn notification(firing: usize, resolved: usize) -> Notification {
    let mut alerts: Vec<Alert> = (1..=firing)
        .map(|i| alert(&format!("web-{i}"), false))
        .collect();
    alerts.extend((1..=resolved).map(|i| alert(&format!("db-{i}"), true)));
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    Notification {
        receiver: "team-x".to_string(),
        group_key: "{}:{alertname=\"NodeDown\"}".to_string(),
        group_labels: ls(&[("alertname", "NodeDown")]),
        common_labels: ls(&[("alertname", "NodeDown"), ("severity", "critical")]),
        common_annotations: ls(&[("summary", "Node is unreachable")]),
        route_labels: LabelSet::new(),
        external_url: "http://silt:9090".to_string(),
        reason: NotificationReason::First,
        alerts,
        now: t0() + chrono::Duration::hours(1),
        repeat: 0,
    }
}

fn receiver(yaml: &str) -> (Receiver, ReceiverMetrics) {
    receiver_with(yaml, &GlobalConfig::default(), Templates::defaults())
}

fn receiver_with(yaml: &str, global: &GlobalConfig, t: Templates) -> (Receiver, ReceiverMetrics) {
    let cfg: ReceiverConfig = serde_yaml::from_str(yaml).unwrap();
    let m = ReceiverMetrics::unregistered();
    let r = Receiver::new(&cfg, global, Arc::new(t), &m).unwrap();
    (r, m)
}

#[tokio::test]
async fn webhook_payload_field_by_field() {
    let (sink, url) = Sink::start(reply(200, ""), vec![]).await;
    let (r, m) = receiver(&format!(
        "name: team-x\nwebhook_configs:\n- url: {url}/hook\n  max_alerts: 2\n"
    ));
    r.notify(&notification(2, 1)).await.unwrap();
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/hook");
    assert_eq!(q.header("content-type"), "application/json");
    assert_eq!(q.header("user-agent"), USER_AGENT);
    assert!(USER_AGENT.starts_with("Alertmanager/"));
    assert!(q.body.ends_with("}\n"), "newline-terminated");
    let b = q.json();
    assert_eq!(b["version"], "4");
    assert_eq!(b["groupKey"], "{}:{alertname=\"NodeDown\"}");
    assert_eq!(b["truncatedAlerts"], 1);
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "team-x");
    assert_eq!(b["groupLabels"], json!({"alertname": "NodeDown"}));
    // Common labels are recomputed over the alerts sent (db-1 and web-1).
    assert_eq!(
        b["commonLabels"],
        json!({"alertname": "NodeDown", "severity": "critical"})
    );
    assert_eq!(
        b["commonAnnotations"],
        json!({"summary": "Node is unreachable"})
    );
    assert_eq!(b["externalURL"], "http://silt:9090");
    assert_eq!(b["notification_reason"], "first notification");
    let alerts = b["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    // Sorted by labels: db-1 (resolved) comes first.
    assert_eq!(alerts[0]["status"], "resolved");
    assert_eq!(alerts[0]["endsAt"], "2026-08-21T10:05:00.1234Z");
    assert_eq!(alerts[1]["status"], "firing");
    assert_eq!(alerts[1]["labels"]["instance"], "web-1");
    assert_eq!(alerts[1]["annotations"]["summary"], "Node is unreachable");
    assert_eq!(alerts[1]["startsAt"], "2026-08-21T10:00:00.1234Z");
    assert_eq!(alerts[1]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        alerts[1]["generatorURL"],
        "http://prometheus:9090/graph?g0.expr=up"
    );
    let fp = alerts[1]["fingerprint"].as_str().unwrap();
    assert_eq!(fp.len(), 16);
    assert!(
        fp.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(m.counts("team-x", "webhook"), (1, 1, 0));
}

#[tokio::test]
async fn webhook_custom_payload() {
    let (sink, url) = Sink::start(reply(200, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nwebhook_configs:\n- url: {url}/\n  payload:\n    title: '{{{{ .CommonLabels.alertname }}}} is {{{{ .Status }}}}'\n    count: '{{{{ len .Alerts }}}}'\n    '{{{{ .GroupLabels.alertname }}}}': [1, true, '{{{{ .ExternalURL }}}}']\n"
    ));
    r.notify(&notification(2, 0)).await.unwrap();
    let b = sink.requests()[0].json();
    assert_eq!(
        b,
        json!({"title": "NodeDown is firing", "count": 2, "NodeDown": [1, true, "http://silt:9090"]})
    );
}

#[tokio::test]
async fn send_resolved_false_filters_resolved_alerts() {
    let (sink, url) = Sink::start(reply(200, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nwebhook_configs:\n- url: {url}/\n  send_resolved: false\n"
    ));
    r.notify(&notification(1, 2)).await.unwrap();
    let b = sink.requests()[0].json();
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(b["alerts"][0]["labels"]["instance"], "web-1");
    // All resolved: nothing to send.
    let mut n = notification(0, 2);
    n.reason = NotificationReason::AllAlertsResolved;
    r.notify(&n).await.unwrap();
    // Only resolutions for a send_resolved=false integration: nothing either.
    let mut n = notification(1, 2);
    n.reason = NotificationReason::SomeAlertsResolved;
    r.notify(&n).await.unwrap();
    assert_eq!(sink.requests().len(), 1);
    assert!(!r.send_resolved());
}

#[tokio::test]
async fn retries_500_then_succeeds_and_counts() {
    let (sink, url) =
        Sink::start(reply(200, ""), vec![reply(500, "boom"), reply(503, "busy")]).await;
    let (r, m) = receiver(&format!("name: team-x\nwebhook_configs:\n- url: {url}/\n"));
    let start = std::time::Instant::now();
    r.notify(&notification(1, 0)).await.unwrap();
    assert_eq!(sink.requests().len(), 3);
    // Backoff 0.5 s then 0.75 s, each ±50 %.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(m.counts("team-x", "webhook"), (1, 3, 2));
    assert_eq!(m.failed_count("team-x", "webhook", "serverError"), 0);
}

#[tokio::test]
async fn no_retry_on_400() {
    let (sink, url) = Sink::start(reply(400, "bad payload"), vec![]).await;
    let (r, m) = receiver(&format!("name: team-x\nwebhook_configs:\n- url: {url}/\n"));
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert_eq!(sink.requests().len(), 1);
    let NotifyError::Integrations {
        failures, total, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*total, 1);
    assert_eq!(failures[0].integration, "webhook[0]");
    assert!(
        matches!(&failures[0].error, SendError::Status { status: 400, body } if body == "bad payload")
    );
    assert_eq!(m.failed_count("team-x", "webhook", "clientError"), 1);
    assert_eq!(m.counts("team-x", "webhook"), (1, 1, 1));
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let mut limited = reply(429, "slow down");
    limited.headers.push(("retry-after", "2".to_string()));
    let (sink, url) = Sink::start(reply(200, ""), vec![limited]).await;
    let (r, _) = receiver(&format!("name: team-x\nwebhook_configs:\n- url: {url}/\n"));
    let start = std::time::Instant::now();
    r.notify(&notification(1, 0)).await.unwrap();
    assert_eq!(sink.requests().len(), 2);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn retry_after_beyond_deadline_gives_up() {
    let mut limited = reply(429, "");
    limited.headers.push(("retry-after", "60".to_string()));
    let (sink, url) = Sink::start(limited, vec![]).await;
    let (r, m) = receiver(&format!(
        "name: team-x\nnotify_deadline: 5s\nwebhook_configs:\n- url: {url}/\n"
    ));
    let start = std::time::Instant::now();
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(sink.requests().len(), 1);
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(
        m.failed_count("team-x", "webhook", "contextDeadlineExceeded"),
        1
    );
}

#[tokio::test]
async fn timeout_is_counted() {
    let mut slow = reply(200, "");
    slow.delay = Duration::from_secs(5);
    let (sink, url) = Sink::start(slow, vec![]).await;
    let (r, m) = receiver(&format!(
        "name: team-x\nnotify_deadline: 1500ms\nwebhook_configs:\n- url: {url}/\n  timeout: 300ms\n"
    ));
    let start = std::time::Instant::now();
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let NotifyError::Integrations { failures, .. } = &err else {
        panic!("{err}")
    };
    let SendError::DeadlineExceeded { attempts, last } = &failures[0].error else {
        panic!("{err}")
    };
    assert!(*attempts >= 2, "{attempts}");
    assert!(matches!(**last, SendError::Timeout(_)));
    let (notifications, requests, failed) = m.counts("team-x", "webhook");
    assert_eq!(notifications, 1);
    assert_eq!(requests, u64::from(*attempts));
    assert_eq!(failed, requests);
    assert!(sink.requests().len() >= 2);
    assert_eq!(
        m.failed_count("team-x", "webhook", "contextDeadlineExceeded"),
        1
    );
}

#[tokio::test]
async fn rate_limit_paces_notifications() {
    let (sink, url) = Sink::start(reply(200, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nrate_limit: {{per_second: 4, burst: 1}}\nwebhook_configs:\n- url: {url}/\n"
    ));
    let start = std::time::Instant::now();
    for _ in 0..3 {
        r.notify(&notification(1, 0)).await.unwrap();
    }
    assert_eq!(sink.requests().len(), 3);
    // Burst 1 then 0.25 s per token.
    assert!(
        start.elapsed() >= Duration::from_millis(490),
        "{:?}",
        start.elapsed()
    );
    // A deadline shorter than the wait is refused.
    let (r, m) = receiver(&format!(
        "name: team-x\nnotify_deadline: 1s\nrate_limit: {{per_second: 0.1}}\nwebhook_configs:\n- url: {url}/\n"
    ));
    r.notify(&notification(1, 0)).await.unwrap();
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(matches!(err, NotifyError::RateLimited { .. }), "{err}");
    assert_eq!(m.failed_count("team-x", "webhook", "rateLimited"), 1);
}

#[tokio::test]
async fn http_config_authorization() {
    let (sink, url) = Sink::start(reply(200, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nwebhook_configs:\n- url: {url}/a\n  http_config: {{bearer_token: s3cret}}\n- url: {url}/b\n  http_config: {{basic_auth: {{username: user, password: pass}}}}\n"
    ));
    r.notify(&notification(1, 0)).await.unwrap();
    let mut reqs = sink.requests();
    reqs.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(reqs[0].header("authorization"), "Bearer s3cret");
    assert_eq!(reqs[1].header("authorization"), "Basic dXNlcjpwYXNz");
}

#[tokio::test]
async fn slack_attachment_and_smart_summary() {
    let (sink, url) = Sink::start(reply(200, "ok"), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nslack_configs:\n- api_url: {url}/services/T/B/X\n  channel: '#ops'\n  send_resolved: true\n"
    ));
    r.notify(&notification(12, 3)).await.unwrap();
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 1, "one message per group");
    assert_eq!(reqs[0].path, "/services/T/B/X");
    assert_eq!(reqs[0].header("content-type"), "application/json");
    let b = reqs[0].json();
    assert_eq!(b["channel"], "#ops");
    assert_eq!(b["username"], "Alertmanager");
    let a = &b["attachments"][0];
    let title = "[FIRING:12, RESOLVED:3] NodeDown — 12 instances: web-1, web-2, web-3, web-4, web-5 and 7 more";
    assert_eq!(a["title"], title);
    assert_eq!(a["title_link"], "http://silt:9090/#/alerts?receiver=team-x");
    assert_eq!(
        a["fallback"],
        format!("{title} | http://silt:9090/#/alerts?receiver=team-x")
    );
    assert_eq!(a["color"], "danger");
    assert_eq!(a["mrkdwn_in"], json!(["fallback", "pretext", "text"]));
    let text = a["text"].as_str().unwrap();
    assert!(text.starts_with("Node is unreachable\n"), "{text}");
    assert!(
        text.contains("*Firing (12):* web-1, web-2, web-3, web-4, web-5, web-6, web-7, web-8, web-9, web-10, web-11, web-12\n"),
        "{text}"
    );
    assert!(
        text.contains("*Resolved (3):* db-1, db-2, db-3\n"),
        "{text}"
    );
    assert!(text.contains("_Labels:_ severity=critical"), "{text}");
}

#[tokio::test]
async fn slack_error_body_fails_without_retry() {
    let (sink, url) = Sink::start(reply(200, "invalid_token"), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nslack_configs:\n- api_url: {url}/\n"
    ));
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(err.to_string().contains("invalid_token"), "{err}");
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test]
async fn slack_from_global_url_and_send_resolved_default_false() {
    let (sink, url) = Sink::start(reply(200, "ok"), vec![]).await;
    let global = GlobalConfig {
        slack_api_url: Some(format!("{url}/global")),
        ..GlobalConfig::default()
    };
    let (r, _) = receiver_with(
        "name: team-x\nslack_configs:\n- {}\n",
        &global,
        Templates::defaults(),
    );
    r.notify(&notification(1, 1)).await.unwrap();
    let q = &sink.requests()[0];
    assert_eq!(q.path, "/global");
    assert_eq!(
        q.json()["attachments"][0]["title"],
        "[FIRING:1] NodeDown — web-1"
    );
}

#[tokio::test]
async fn slack_app_token_posts_to_web_api() {
    let mut ok = reply(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#);
    ok.headers
        .push(("content-type", "application/json".to_string()));
    let mut not_ok = reply(200, r#"{"ok":false,"error":"channel_not_found"}"#);
    not_ok
        .headers
        .push(("content-type", "application/json".to_string()));
    let (sink, url) = Sink::start(not_ok, vec![ok]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nslack_configs:\n- app_token: xoxb-1\n  app_url: {url}/api/chat.postMessage\n  channel: C1\n"
    ));
    r.notify(&notification(1, 0)).await.unwrap();
    let q = &sink.requests()[0];
    assert_eq!(q.path, "/api/chat.postMessage");
    assert_eq!(q.header("authorization"), "Bearer xoxb-1");
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(err.to_string().contains("channel_not_found"), "{err}");
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn template_overrides() {
    let (sink, url) = Sink::start(reply(200, "ok"), vec![]).await;
    let user = Templates::with_user(&[(
        "team.tmpl".to_string(),
        r#"{{ define "__subject" }}{{ .Status | toUpper }} {{ .CommonLabels.alertname }} ({{ len .Alerts.Firing }}){{ end }}"#
            .to_string(),
    )])
    .unwrap();
    let (r, _) = receiver_with(
        &format!(
            "name: team-x\nslack_configs:\n- api_url: {url}/\n  text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'\n  color: '{{{{ if eq .Status \"firing\" }}}}#ff0000{{{{ end }}}}'\n"
        ),
        &GlobalConfig::default(),
        user,
    );
    r.notify(&notification(2, 0)).await.unwrap();
    let a = &sink.requests()[0].json()["attachments"][0];
    assert_eq!(a["title"], "FIRING NodeDown (2)");
    assert_eq!(a["text"], "web-1 web-2 ");
    assert_eq!(a["color"], "#ff0000");
}

#[tokio::test]
async fn bad_template_is_a_config_error() {
    let cfg: ReceiverConfig =
        serde_yaml::from_str("name: x\nslack_configs:\n- api_url: http://x/\n  title: '{{ .Foo'\n")
            .unwrap();
    let err = Receiver::new(
        &cfg,
        &GlobalConfig::default(),
        Arc::new(Templates::defaults()),
        &ReceiverMetrics::unregistered(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("template"), "{err}");
}

#[tokio::test]
async fn discord_embed_and_limits() {
    let (sink, url) = Sink::start(reply(204, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\ndiscord_configs:\n- webhook_url: {url}/api/webhooks/1/tok\n  username: silt\n"
    ));
    let mut n = notification(3, 0);
    n.group_labels = ls(&[("alertname", &"X".repeat(400))]);
    r.notify(&n).await.unwrap();
    let q = &sink.requests()[0];
    assert_eq!(q.path, "/api/webhooks/1/tok");
    let b = q.json();
    assert_eq!(b["content"], "");
    assert_eq!(b["username"], "silt");
    let e = &b["embeds"][0];
    assert_eq!(e["color"], 0x992D22);
    let title = e["title"].as_str().unwrap();
    assert_eq!(title.chars().count(), 256);
    assert!(title.ends_with('…'));
    let d = e["description"].as_str().unwrap();
    assert!(d.contains("**Firing (3):** web-1, web-2, web-3"), "{d}");
    // Resolved groups are green.
    r.notify(&notification(0, 1)).await.unwrap();
    assert_eq!(sink.requests()[1].json()["embeds"][0]["color"], 0x2ECC71);
}

#[tokio::test]
async fn discord_description_truncated_to_4096() {
    let (sink, url) = Sink::start(reply(204, ""), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\ndiscord_configs:\n- webhook_url: {url}/\n  message: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ .Annotations.summary }}}} {{{{ .GeneratorURL }}}}{{{{ end }}}}'\n"
    ));
    r.notify(&notification(200, 0)).await.unwrap();
    let d = sink.requests()[0].json()["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(d.chars().count(), 4096);
    assert!(d.ends_with('…'));
}

#[tokio::test]
async fn msteams_message_card_and_adaptive_card() {
    let (sink, url) = Sink::start(reply(200, "1"), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nmsteams_configs:\n- webhook_url: {url}/v1\nmsteamsv2_configs:\n- webhook_url: {url}/v2\n"
    ));
    r.notify(&notification(2, 0)).await.unwrap();
    let mut reqs = sink.requests();
    reqs.sort_by(|a, b| a.path.cmp(&b.path));
    let v1 = reqs[0].json();
    assert_eq!(v1["@context"], "http://schema.org/extensions");
    assert_eq!(v1["type"], "MessageCard");
    assert_eq!(v1["themeColor"], "8C1A1A");
    assert_eq!(
        v1["title"],
        "[FIRING:2] NodeDown — 2 instances: web-1, web-2"
    );
    assert_eq!(v1["summary"], v1["title"]);
    assert!(
        v1["text"]
            .as_str()
            .unwrap()
            .contains("**Firing (2):** web-1, web-2")
    );
    let v2 = reqs[1].json();
    assert_eq!(v2["type"], "message");
    let att = &v2["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["contentUrl"], Json::Null);
    let c = &att["content"];
    assert_eq!(c["type"], "AdaptiveCard");
    assert_eq!(c["version"], "1.2");
    assert_eq!(
        c["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(c["msteams"]["width"], "full");
    assert_eq!(c["body"][0]["text"], v1["title"]);
    assert_eq!(c["body"][0]["color"], "Attention");
    assert_eq!(c["body"][0]["weight"], "Bolder");
    assert_eq!(c["body"][1]["wrap"], true);
}

#[tokio::test]
async fn msteams_throttled_200_is_retried() {
    let (sink, url) = Sink::start(
        reply(200, "1"),
        vec![reply(
            200,
            "Microsoft Teams endpoint returned HTTP error 429",
        )],
    )
    .await;
    let (r, _) = receiver(&format!(
        "name: team-x\nmsteams_configs:\n- webhook_url: {url}/\n"
    ));
    r.notify(&notification(1, 0)).await.unwrap();
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn telegram_send_message() {
    let (sink, url) = Sink::start(reply(200, r#"{"ok":true,"result":{}}"#), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\ntelegram_configs:\n- api_url: {url}\n  bot_token: '123:abc'\n  chat_id: -1001\n  message_thread_id: 7\n"
    ));
    let mut n = notification(2, 0);
    for a in &mut n.alerts {
        a.annotations
            .insert("summary".into(), "p99 > 2s & <rising>".into());
    }
    r.notify(&n).await.unwrap();
    let q = &sink.requests()[0];
    assert_eq!(q.path, "/bot123:abc/sendMessage");
    let b = q.json();
    assert_eq!(b["chat_id"], -1001);
    assert_eq!(b["parse_mode"], "HTML");
    assert_eq!(b["message_thread_id"], 7);
    assert_eq!(b["disable_notification"], false);
    assert_eq!(b["link_preview_options"]["is_disabled"], true);
    let text = b["text"].as_str().unwrap();
    assert!(
        text.starts_with("<b>[FIRING:2] NodeDown — 2 instances: web-1, web-2</b>\n"),
        "{text}"
    );
    // Values are HTML-escaped.
    assert!(text.contains("p99 &gt; 2s &amp; &lt;rising&gt;"), "{text}");
}

#[tokio::test]
async fn telegram_long_message_fits_4096() {
    let (sink, url) = Sink::start(reply(200, r#"{"ok":true}"#), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\ntelegram_configs:\n- api_url: {url}\n  bot_token: t\n  chat_id: 1\n"
    ));
    let mut n = notification(60, 0);
    for (i, a) in n.alerts.iter_mut().enumerate() {
        a.annotations
            .insert("summary".into(), format!("disk {i} {}", "x".repeat(600)));
    }
    r.notify(&n).await.unwrap();
    let text = sink.requests()[0].json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.chars().count() <= 4096);
    assert!(text.ends_with('…'), "{}", &text[text.len() - 50..]);
    assert!(text.starts_with("<b>[FIRING:60]"));
}

#[tokio::test]
async fn telegram_flood_control_uses_retry_after() {
    let (sink, url) = Sink::start(
        reply(200, r#"{"ok":true}"#),
        vec![reply(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#,
        )],
    )
    .await;
    let (r, _) = receiver(&format!(
        "name: team-x\ntelegram_configs:\n- api_url: {url}\n  bot_token: t\n  chat_id: 1\n"
    ));
    let start = std::time::Instant::now();
    r.notify(&notification(1, 0)).await.unwrap();
    assert_eq!(sink.requests().len(), 2);
    assert!(start.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn pagerduty_events_v2() {
    let (sink, url) = Sink::start(
        reply(202, r#"{"status":"success","message":"Event processed"}"#),
        vec![],
    )
    .await;
    let (r, _) = receiver(&format!(
        "name: team-x\npagerduty_configs:\n- routing_key: R0UT1NGKEY\n  url: {url}/v2/enqueue\n  severity: '{{{{ .CommonLabels.severity }}}}'\n  details:\n    team: x\n  images:\n  - src: https://img/x.png\n    alt: graph\n  links:\n  - href: https://runbook\n    text: Runbook\n"
    ));
    let n = notification(2, 1);
    r.notify(&n).await.unwrap();
    let q = &sink.requests()[0];
    assert_eq!(q.path, "/v2/enqueue");
    let b = q.json();
    assert_eq!(b["routing_key"], "R0UT1NGKEY");
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], dedup_key(&n.group_key));
    assert_eq!(b["dedup_key"].as_str().unwrap().len(), 64);
    assert_eq!(b["client"], "Alertmanager");
    assert_eq!(b["client_url"], "http://silt:9090/#/alerts?receiver=team-x");
    let p = &b["payload"];
    assert_eq!(
        p["summary"],
        "[FIRING:2, RESOLVED:1] NodeDown — 2 instances: web-1, web-2"
    );
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["source"], "Alertmanager");
    let d = &p["custom_details"];
    assert_eq!(d["num_firing"], 2);
    assert_eq!(d["num_resolved"], 1);
    assert_eq!(d["team"], "x");
    let firing = d["firing"].as_array().unwrap();
    assert_eq!(firing.len(), 2);
    assert_eq!(firing[0]["labels"]["instance"], "web-1");
    assert_eq!(firing[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(d["resolved"][0]["status"], "resolved");
    assert_eq!(
        b["images"][0],
        json!({"src": "https://img/x.png", "alt": "graph", "href": ""})
    );
    assert_eq!(
        b["links"][0],
        json!({"href": "https://runbook", "text": "Runbook"})
    );
    // All resolved: resolve event with the same dedup key.
    r.notify(&notification(0, 2)).await.unwrap();
    let b = sink.requests()[1].json();
    assert_eq!(b["event_action"], "resolve");
    assert_eq!(b["dedup_key"], dedup_key(&n.group_key));
}

#[tokio::test]
async fn pagerduty_oversized_event_drops_custom_details() {
    let (sink, url) = Sink::start(reply(202, "{}"), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\npagerduty_configs:\n- routing_key: k\n  url: {url}/\n"
    ));
    let mut n = notification(300, 0);
    for a in &mut n.alerts {
        a.annotations.insert("description".into(), "y".repeat(2000));
    }
    r.notify(&n).await.unwrap();
    let q = &sink.requests()[0];
    assert!(q.body.len() < 512_000, "{}", q.body.len());
    let d = &q.json()["payload"]["custom_details"];
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("Custom details have been removed")
    );
    assert!(d.get("firing").is_none());
}

#[tokio::test]
async fn notify_until_through_the_trait_stops_at_the_callers_deadline() {
    use alertmanager::receivers::Notify;
    let (sink, url) = Sink::start(reply(503, "down"), vec![]).await;
    let (r, m) = receiver(&format!("name: team-x\nwebhook_configs:\n- url: {url}/\n"));
    let notifier: Arc<dyn Notify> = Arc::new(r);
    let start = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1200);
    let err = notifier
        .notify_until(&notification(1, 0), deadline)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1300),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains("503"), "{err}");
    assert!(sink.requests().len() >= 2);
    assert_eq!(
        m.failed_count("team-x", "webhook", "contextDeadlineExceeded"),
        1
    );
}

#[tokio::test]
async fn pagerduty_retries_429() {
    let (sink, url) = Sink::start(reply(202, "{}"), vec![reply(429, "{}")]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\npagerduty_configs:\n- routing_key: k\n  url: {url}/\n"
    ));
    r.notify(&notification(1, 0)).await.unwrap();
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn all_integrations_notified_and_partial_failure_reported() {
    let (ok_sink, ok_url) = Sink::start(reply(200, "ok"), vec![]).await;
    let (_bad_sink, bad_url) = Sink::start(reply(404, "no such hook"), vec![]).await;
    let (r, _) = receiver(&format!(
        "name: team-x\nwebhook_configs:\n- url: {ok_url}/w\n- url: {bad_url}/w\nslack_configs:\n- api_url: {ok_url}/s\n"
    ));
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    let NotifyError::Integrations {
        failures, total, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*total, 3);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].integration, "webhook[1]");
    assert_eq!(ok_sink.requests().len(), 2);
}

// ---- SMTP ----

#[derive(Debug, Default, Clone)]
struct Smtp {
    commands: Vec<String>,
    data: String,
    /// The session was upgraded with STARTTLS.
    tls: bool,
}

/// How the SMTP sink behaves.
#[derive(Clone)]
struct SmtpMode {
    /// Offer STARTTLS with this acceptor.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// The AUTH mechanisms advertised.
    auth: &'static str,
}

/// Speaks enough ESMTP for lettre: EHLO (with STARTTLS and AUTH), AUTH
/// PLAIN and LOGIN, MAIL, RCPT, DATA, QUIT.
async fn smtp_sink_with(mode: SmtpMode) -> (Arc<Mutex<Vec<Smtp>>>, u16) {
    let log: Arc<Mutex<Vec<Smtp>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let l = log.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (l, mode) = (l.clone(), mode.clone());
            tokio::spawn(async move {
                let mut s = Smtp::default();
                sock.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                if let Some(plain) = smtp_session(sock, &mut s, &mode, false).await {
                    let tls = mode.tls.clone().unwrap().accept(plain).await.unwrap();
                    s.tls = true;
                    smtp_session(tls, &mut s, &mode, true).await;
                }
                l.lock().push(s);
            });
        }
    });
    (log, port)
}

async fn smtp_sink() -> (Arc<Mutex<Vec<Smtp>>>, u16) {
    smtp_sink_with(SmtpMode {
        tls: None,
        auth: "PLAIN LOGIN",
    })
    .await
}

/// Runs the dialogue; returns the stream when the client asked for
/// STARTTLS.
async fn smtp_session<S>(stream: S, s: &mut Smtp, mode: &SmtpMode, in_tls: bool) -> Option<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut rd = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let cmd = line.trim_end().to_string();
        s.commands.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") {
            let tls = if mode.tls.is_some() && !in_tls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            format!(
                "250-sink\r\n{tls}250-AUTH {}\r\n250 8BITMIME\r\n",
                mode.auth
            )
        } else if upper == "STARTTLS" {
            rd.get_mut()
                .write_all(b"220 2.0.0 ready\r\n")
                .await
                .unwrap();
            return Some(rd.into_inner());
        } else if upper.starts_with("AUTH PLAIN") {
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            for prompt in ["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"] {
                rd.get_mut().write_all(prompt.as_bytes()).await.unwrap();
                let mut l = String::new();
                rd.read_line(&mut l).await.unwrap();
                s.commands.push(l.trim_end().to_string());
            }
            "235 2.7.0 Authentication successful\r\n".into()
        } else if upper.starts_with("DATA") {
            rd.get_mut().write_all(b"354 go ahead\r\n").await.unwrap();
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if rd.read_line(&mut l).await.unwrap() == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            s.data = data;
            "250 2.0.0 queued\r\n".into()
        } else if upper.starts_with("QUIT") {
            rd.get_mut().write_all(b"221 bye\r\n").await.unwrap();
            return None;
        } else {
            "250 ok\r\n".into()
        };
        rd.get_mut().write_all(answer.as_bytes()).await.unwrap();
    }
}

/// Decodes quoted-printable (soft breaks and `=XX`).
fn qp_decode(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn email_over_smtp_with_auth_plain_and_multipart() {
    let (log, port) = smtp_sink().await;
    let global = GlobalConfig {
        smtp_from: Some("Silt <silt@example.org>".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        smtp_require_tls: false,
        ..GlobalConfig::default()
    };
    let (r, m) = receiver_with(
        "name: team-x\nemail_configs:\n- to: 'ops@example.org, oncall@example.org'\n  auth_username: user\n  auth_password: pass\n  hello: silt.local\n  threading: {enabled: true, thread_by_date: none}\n  headers:\n    x-team: '{{ .GroupLabels.alertname }}'\n",
        &global,
        Templates::defaults(),
    );
    r.notify(&notification(2, 0)).await.unwrap();
    assert_eq!(m.counts("team-x", "email"), (1, 1, 0));
    let sessions = log.lock().clone();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.commands[0], "EHLO silt.local");
    assert!(
        s.commands
            .contains(&"AUTH PLAIN AHVzZXIAcGFzcw==".to_string()),
        "{:?}",
        s.commands
    );
    assert!(
        s.commands
            .iter()
            .any(|c| c == "MAIL FROM:<silt@example.org>"
                || c.starts_with("MAIL FROM:<silt@example.org> ")),
        "{:?}",
        s.commands
    );
    assert!(
        s.commands
            .contains(&"RCPT TO:<ops@example.org>".to_string()),
        "{:?}",
        s.commands
    );
    assert!(
        s.commands
            .contains(&"RCPT TO:<oncall@example.org>".to_string())
    );

    let (head, body) = s.data.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.split("\r\n")
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_else(|| panic!("no {name} header in\n{head}"))
    };
    assert_eq!(header("From"), "Silt <silt@example.org>");
    assert!(header("To").contains("ops@example.org"));
    assert!(header("To").contains("oncall@example.org"));
    // The em dash makes the subject RFC 2047 encoded.
    let subject = header("Subject");
    assert!(
        subject.starts_with("[FIRING:2] NodeDown =?utf-8?b?4oCU?= 2 instances"),
        "{subject}"
    );
    assert_eq!(header("X-Team"), "NodeDown");
    let id = header("Message-Id");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    assert!(!header("Date").is_empty());
    let root = format!(
        "<alert-{}-@alertmanager>",
        &dedup_key("{}:{alertname=\"NodeDown\"}")[..16]
    );
    assert_eq!(header("References"), root);
    assert_eq!(header("In-Reply-To"), root);
    assert_eq!(header("MIME-Version"), "1.0");
    assert!(header("Content-Type").starts_with("multipart/alternative"));

    let text_at = body.find("Content-Type: text/plain").expect("text part");
    let html_at = body.find("Content-Type: text/html").expect("html part");
    assert!(text_at < html_at, "text part first");
    assert!(body.contains("Content-Transfer-Encoding: quoted-printable"));
    let decoded = qp_decode(body);
    assert!(decoded.contains("[FIRING:2] NodeDown — 2 instances: web-1, web-2"));
    assert!(decoded.contains("Firing (2): web-1, web-2"));
    assert!(decoded.contains("<h2 style=\"color:#b00020\">"));
    assert!(decoded.contains("http://prometheus:9090/graph?g0.expr=up"));
}

#[tokio::test]
async fn email_require_tls_without_starttls_fails() {
    let (log, port) = smtp_sink().await;
    let global = GlobalConfig {
        smtp_from: Some("silt@example.org".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        ..GlobalConfig::default()
    };
    let (r, _) = receiver_with(
        "name: team-x\nnotify_deadline: 2s\nemail_configs:\n- to: ops@example.org\n",
        &global,
        Templates::defaults(),
    );
    let err = r.notify(&notification(1, 0)).await.unwrap_err();
    assert!(
        err.to_string().contains("smtp")
            || err.to_string().contains("TLS")
            || err.to_string().contains("tls"),
        "{err}"
    );
    assert!(
        log.lock().iter().all(|s| s.data.is_empty()),
        "no message sent in clear"
    );
}

#[tokio::test]
async fn email_starttls_and_auth_login() {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let (log, port) = smtp_sink_with(SmtpMode {
        tls: Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))),
        auth: "LOGIN",
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let global = GlobalConfig {
        smtp_from: Some("silt@example.org".into()),
        smtp_smarthost: Some(format!("127.0.0.1:{port}")),
        ..GlobalConfig::default()
    };
    let (r, _) = receiver_with(
        &format!(
            "name: team-x\nemail_configs:\n- to: ops@example.org\n  auth_username: user\n  auth_password: pass\n  tls_config: {{ca_file: '{}', server_name: localhost}}\n",
            ca.display()
        ),
        &global,
        Templates::defaults(),
    );
    r.notify(&notification(1, 0)).await.unwrap();
    let s = log.lock()[0].clone();
    assert!(s.tls, "upgraded with STARTTLS: {:?}", s.commands);
    let starttls = s.commands.iter().position(|c| c == "STARTTLS").unwrap();
    let auth = s.commands.iter().position(|c| c == "AUTH LOGIN").unwrap();
    assert!(
        starttls < auth,
        "credentials only after TLS: {:?}",
        s.commands
    );
    assert_eq!(s.commands[auth + 1], "dXNlcg==");
    assert_eq!(s.commands[auth + 2], "cGFzcw==");
    assert!(s.data.contains("Content-Type: multipart/alternative"));
}
