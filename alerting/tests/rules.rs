//! Rule evaluation over a real engine: recording output and staleness, the
//! alert state machine and its synthetic series, `keep_firing_for`,
//! `limit`, templates, `for` restoration across a reopen, reloads, the API
//! JSON, and the external Alertmanager sender against a local HTTP sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alerting::group::{Group, GroupContext};
use alerting::manager::{GlobalConfig, ManagerOptions, RuleManager, load_groups};
use alerting::metrics::RuleMetrics;
use alerting::notify::{AlertSink, ExternalAlertmanagers, ExternalOptions, OutgoingAlert};
use alerting::rule::{AlertState, Health};
use engine::{Db, Labels, Matcher, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;

fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    Db::open(o, &mut Registry::default()).expect("open db")
}

/// A minute-aligned time two hours ago, in nanoseconds.
fn base() -> i64 {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    (now - 2 * 3600 * S).div_euclid(MIN) * MIN
}

fn write(db: &Arc<Db>, labels: &[(&str, &str)], points: &[(i64, f64)]) {
    let batch = WriteBatch {
        series: vec![SeriesSamples::new(
            Labels::new(labels),
            points
                .iter()
                .map(|&(t, v)| Sample::new(t / 1_000_000, v))
                .collect(),
        )],
        metadata: vec![],
    };
    drop(db.append(&batch).expect("append"));
}

/// Raw samples of the series matching `name` (and more matchers), by series.
fn raw(db: &Arc<Db>, name: &str, extra: &[(&str, &str)]) -> Vec<(Labels, Vec<Sample>)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2);
    let mut ms = vec![Matcher::equal("__name__", name)];
    ms.extend(extra.iter().map(|(k, v)| Matcher::equal(*k, *v)));
    q.select(&ms)
        .unwrap()
        .into_iter()
        .map(|s| {
            let mut out = Vec::new();
            q.samples(&s, i64::MIN / 2, i64::MAX / 2, &mut out).unwrap();
            (s.labels.clone(), out)
        })
        .collect()
}

#[derive(Default)]
struct Capture(Mutex<Vec<OutgoingAlert>>);

impl AlertSink for Capture {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        self.0.lock().extend(alerts);
    }
}

fn context(db: &Arc<Db>, sink: Option<Arc<dyn AlertSink>>) -> Arc<GroupContext> {
    let mut opts = ManagerOptions::new(db.clone());
    opts.sink = sink;
    opts.global
        .external_labels
        .insert("cluster".into(), "eu1".into());
    opts.global.external_url = "http://silt.example:9090".into();
    let m = RuleManager::with_metrics(opts.clone(), RuleMetrics::unregistered());
    m.group_context(&opts.global)
}

fn rule_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn load(dir: &Path, text: &str, ctx: Arc<GroupContext>, should_restore: bool) -> Vec<Group> {
    let p = rule_file(dir, "rules.yml", text);
    let global = GlobalConfig {
        external_labels: ctx.external_labels.clone(),
        external_url: ctx.external_url.clone(),
        ..GlobalConfig::default()
    };
    load_groups(&[p], &global, should_restore, ctx).expect("load")
}

#[test]
fn recording_rule_writes_results_and_stale_markers() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(
        &db,
        &[("__name__", "up"), ("job", "node"), ("instance", "a")],
        &[(t0, 1.0), (t0 + MIN, 1.0)],
    );
    write(
        &db,
        &[("__name__", "up"), ("job", "node"), ("instance", "b")],
        &[(t0, 0.0)],
    );
    write(
        &db,
        &[("__name__", "up"), ("job", "api"), ("instance", "c")],
        &[(t0, 1.0)],
    );
    let groups = load(
        dir.path(),
        "groups:\n- name: rec\n  labels: {team: infra}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {source: rule}\n",
        context(&db, None),
        false,
    );
    let g = &groups[0];
    g.eval(t0);
    let out = raw(&db, "job:up:sum", &[]);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[1].0,
        Labels::new(&[
            ("__name__", "job:up:sum"),
            ("job", "node"),
            ("source", "rule"),
            ("team", "infra")
        ])
    );
    assert_eq!(out[1].1, vec![Sample::new(t0 / 1_000_000, 1.0)]);
    assert_eq!(g.rules[0].status().health, Health::Good);

    // Visible to PromQL.
    let expr = query::promql::parse("job:up:sum{job=\"api\"}").unwrap();
    let res = query::eval::instant_query(&db, &expr, t0 / 1_000_000, &Default::default()).unwrap();
    match res.value {
        query::eval::Value::Vector(v) => assert_eq!(v.len(), 1),
        other => panic!("{other:?}"),
    }

    // Six minutes later only `node/a` is fresh (the others are beyond the
    // 5m lookback): `api` disappears and gets a stale marker.
    let t1 = t0 + 6 * MIN;
    write(
        &db,
        &[("__name__", "up"), ("job", "node"), ("instance", "a")],
        &[(t1, 1.0)],
    );
    g.eval(t1);
    let out = raw(&db, "job:up:sum", &[("job", "api")]);
    let last = *out[0].1.last().unwrap();
    assert_eq!(last.t, t1 / 1_000_000);
    assert_eq!(last.v.to_bits(), STALE_NAN);
}

#[test]
fn recording_rule_duplicate_labelsets_and_limit_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(&db, &[("__name__", "a"), ("x", "1")], &[(t0, 1.0)]);
    write(&db, &[("__name__", "b"), ("x", "1")], &[(t0, 2.0)]);
    let groups = load(
        dir.path(),
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: '{x=\"1\"}'\n  - record: s\n    expr: label_replace({x=\"1\"}, \"n\", \"$1\", \"__name__\", \"(.*)\")\n",
        context(&db, None),
        false,
    );
    groups[0].eval(t0);
    let st = groups[0].rules[0].status();
    assert_eq!(st.health, Health::Bad);
    assert_eq!(
        st.last_error.as_deref(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
    let st = groups[0].rules[1].status();
    assert_eq!(
        st.last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert!(raw(&db, "r", &[]).is_empty() && raw(&db, "s", &[]).is_empty());
}

const ALERT_RULES: &str = r#"groups:
- name: node
  interval: 1m
  rules:
  - alert: HighLoad
    expr: load > 1
    for: 5m
    labels:
      severity: page
      instance_copy: "{{ $labels.instance }}"
    annotations:
      summary: "Load on {{ $labels.instance }} is {{ $value }} ({{ $externalLabels.cluster }})"
      total: '{{ with query "sum(load)" }}{{ . | first | value }}{{ end }}'
      broken: "{{ humanize \"abc\" }}"
"#;

#[test]
fn alert_state_machine_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let capture = Arc::new(Capture::default());
    let sink: Arc<dyn AlertSink> = capture.clone();
    let groups = load(dir.path(), ALERT_RULES, context(&db, Some(sink)), false);
    let g = &groups[0];
    let rule = g.rules[0].as_alerting().unwrap();
    let t0 = base();
    let series = [("__name__", "load"), ("instance", "a:9100")];
    let pts: Vec<(i64, f64)> = (0..=12)
        .map(|i| (t0 + i * MIN, if i <= 7 { 3.0 } else { 0.5 }))
        .collect();
    write(&db, &series, &pts);

    g.eval(t0);
    let alerts = rule.active_alerts();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(
        a.labels,
        Labels::new(&[
            ("alertname", "HighLoad"),
            ("instance", "a:9100"),
            ("instance_copy", "a:9100"),
            ("severity", "page"),
        ])
    );
    assert_eq!(a.annotations["summary"], "Load on a:9100 is 3 (eu1)");
    assert_eq!(a.annotations["total"], "3");
    assert!(
        a.annotations["broken"]
            .starts_with("<error expanding template: error executing template __alert_HighLoad:"),
        "{}",
        a.annotations["broken"]
    );
    assert!(capture.0.lock().is_empty(), "pending alerts are not sent");

    let pending = [("alertstate", "pending")];
    let ap = raw(&db, "ALERTS", &pending);
    assert_eq!(ap.len(), 1);
    assert_eq!(
        ap[0].0,
        Labels::new(&[
            ("__name__", "ALERTS"),
            ("alertname", "HighLoad"),
            ("alertstate", "pending"),
            ("instance", "a:9100"),
            ("instance_copy", "a:9100"),
            ("severity", "page"),
        ])
    );
    let fs = raw(&db, "ALERTS_FOR_STATE", &[]);
    assert_eq!(fs[0].1, vec![Sample::new(t0 / 1_000_000, (t0 / S) as f64)]);

    for i in 1..=5 {
        g.eval(t0 + i * MIN);
    }
    let t5 = t0 + 5 * MIN;
    let a = &rule.active_alerts()[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.fired_at, Some(t5));
    // The pending series went stale when the alert fired.
    let ap = raw(&db, "ALERTS", &pending);
    let last = *ap[0].1.last().unwrap();
    assert_eq!((last.t, last.v.to_bits()), (t5 / 1_000_000, STALE_NAN));
    let af = raw(&db, "ALERTS", &[("alertstate", "firing")]);
    assert_eq!(af[0].1, vec![Sample::new(t5 / 1_000_000, 1.0)]);
    // Sent once firing, with firedAt and a lease of 4 resend delays.
    {
        let sent = capture.0.lock();
        assert_eq!(sent.len(), 1);
        let o = &sent[0];
        assert_eq!(o.starts_at.timestamp_nanos_opt(), Some(t5));
        assert_eq!(o.ends_at.unwrap().timestamp_nanos_opt(), Some(t5 + 4 * MIN));
        assert_eq!(o.labels["cluster"], "eu1");
        assert_eq!(
            o.generator_url,
            "http://silt.example:9090/graph?g0.expr=load+%3E+1&g0.tab=1"
        );
    }
    // Not re-sent within the resend delay (1m): t6 is exactly 1m later.
    g.eval(t0 + 6 * MIN);
    assert_eq!(capture.0.lock().len(), 1);
    g.eval(t0 + 7 * MIN);
    assert_eq!(capture.0.lock().len(), 2);

    // Resolves at t8: sent at once with endsAt = resolvedAt, kept 15m.
    let t8 = t0 + 8 * MIN;
    g.eval(t8);
    assert!(rule.active_alerts().is_empty());
    let all = rule.alerts();
    assert_eq!(all[0].state, AlertState::Inactive);
    assert_eq!(all[0].resolved_at, Some(t8));
    {
        let sent = capture.0.lock();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[2].ends_at.unwrap().timestamp_nanos_opt(), Some(t8));
    }
    let af = raw(&db, "ALERTS", &[("alertstate", "firing")]);
    assert_eq!(af[0].1.last().unwrap().v.to_bits(), STALE_NAN);
    let fs = raw(&db, "ALERTS_FOR_STATE", &[]);
    assert_eq!(fs[0].1.last().unwrap().v.to_bits(), STALE_NAN);
    // Dropped after the resolved retention.
    g.eval(t8 + 16 * MIN);
    assert!(rule.alerts().is_empty());
}

#[test]
fn keep_firing_for_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let groups = load(
        dir.path(),
        "groups:\n- name: g\n  rules:\n  - alert: Flappy\n    expr: flap > 0\n    keep_firing_for: 3m\n- name: limited\n  limit: 1\n  rules:\n  - alert: Many\n    expr: many > 0\n",
        context(&db, None),
        false,
    );
    let t0 = base();
    write(&db, &[("__name__", "flap")], &[(t0, 1.0), (t0 + MIN, 0.0)]);
    let g = &groups[0];
    let rule = g.rules[0].as_alerting().unwrap();
    g.eval(t0);
    assert_eq!(rule.active_alerts()[0].state, AlertState::Firing);
    g.eval(t0 + MIN);
    let a = &rule.active_alerts()[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.keep_firing_since, Some(t0 + MIN));
    g.eval(t0 + 3 * MIN);
    assert_eq!(rule.active_alerts()[0].state, AlertState::Firing);
    g.eval(t0 + 4 * MIN);
    assert!(rule.active_alerts().is_empty());
    assert_eq!(rule.alerts()[0].resolved_at, Some(t0 + 4 * MIN));

    write(&db, &[("__name__", "many"), ("i", "1")], &[(t0, 1.0)]);
    write(&db, &[("__name__", "many"), ("i", "2")], &[(t0, 1.0)]);
    let g = &groups[1];
    g.eval(t0);
    let st = g.rules[0].status();
    assert_eq!(st.health, Health::Bad);
    assert_eq!(
        st.last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert!(g.rules[0].as_alerting().unwrap().alerts().is_empty());
}

#[test]
fn for_state_is_restored_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let dbdir = dir.path().join("db");
    let t0 = base();
    let text = "groups:\n- name: g\n  rules:\n  - alert: Slow\n    expr: lat > 1\n    for: 30m\n";
    {
        let db = open(&dbdir);
        write(
            &db,
            &[("__name__", "lat")],
            &(0..=40).map(|i| (t0 + i * MIN, 5.0)).collect::<Vec<_>>(),
        );
        let groups = load(dir.path(), text, context(&db, None), false);
        for i in 0..=10 {
            groups[0].eval(t0 + i * MIN);
        }
        assert_eq!(
            groups[0].rules[0].as_alerting().unwrap().active_alerts()[0].state,
            AlertState::Pending
        );
        db.close().unwrap();
    }
    // Down from t0+10m to t0+20m; restart evaluates at t0+20m, t0+21m, then restores.
    let db = open(&dbdir);
    let groups = load(dir.path(), text, context(&db, None), true);
    let g = &groups[0];
    let rule = g.rules[0].as_alerting().unwrap();
    assert!(g.should_restore() && !rule.restored());
    let t20 = t0 + 20 * MIN;
    g.eval(t20);
    g.eval(t20 + MIN);
    // Not restored yet: no new ALERTS_FOR_STATE samples after the outage.
    let fs = raw(&db, "ALERTS_FOR_STATE", &[]);
    assert_eq!(fs[0].1.last().unwrap().t, (t0 + 10 * MIN) / 1_000_000);
    let now = t20 + MIN;
    g.restore_for_state(now);
    assert!(rule.restored());
    // 10m of 30m were spent pending before going down; the outage shifts
    // activeAt by its length: t0 + (now - downAt).
    let a = &rule.active_alerts()[0];
    assert_eq!(a.active_at, t0 + (now - (t0 + 10 * MIN)));
    g.eval(now + MIN);
    let fs = raw(&db, "ALERTS_FOR_STATE", &[]);
    let last = *fs[0].1.last().unwrap();
    assert_eq!(
        last,
        Sample::new((now + MIN) / 1_000_000, (a.active_at / S) as f64)
    );
}

#[test]
fn restore_near_the_end_uses_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(
        &db,
        &[("__name__", "lat")],
        &(0..=40).map(|i| (t0 + i * MIN, 5.0)).collect::<Vec<_>>(),
    );
    let text = "groups:\n- name: g\n  rules:\n  - alert: Slow\n    expr: lat > 1\n    for: 15m\n";
    let first = load(dir.path(), text, context(&db, None), false);
    for i in 0..=10 {
        first[0].eval(t0 + i * MIN);
    }
    let groups = load(dir.path(), text, context(&db, None), true);
    let now = t0 + 12 * MIN;
    groups[0].eval(now);
    groups[0].restore_for_state(now);
    // 5m remained (< 10m grace): it fires 10m after the restart.
    let a = &groups[0].rules[0].as_alerting().unwrap().active_alerts()[0];
    assert_eq!(a.active_at, now + 10 * MIN - 15 * MIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_state_and_refuses_invalid_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(
        &db,
        &[("__name__", "load"), ("instance", "x")],
        &[(t0, 5.0)],
    );
    let mut opts = ManagerOptions::new(db.clone());
    opts.global.evaluation_interval = Duration::from_secs(30);
    let mut registry = Registry::default();
    let m = RuleManager::new(opts, &mut registry);
    let p = rule_file(
        dir.path(),
        "a.yml",
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: load > 1\n    for: 10m\n",
    );
    m.update(std::slice::from_ref(&p)).await.unwrap();
    let g = m.groups()[0].clone();
    assert_eq!(g.interval, Duration::from_secs(30));
    g.eval(t0);
    assert_eq!(g.rules[0].as_alerting().unwrap().active_alerts().len(), 1);

    // Unchanged file: the very same group object stays.
    m.update(std::slice::from_ref(&p)).await.unwrap();
    assert!(Arc::ptr_eq(&g, &m.groups()[0]));

    // Changed group (new rule added): the alert's state carries over.
    std::fs::write(&p, "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: load > 1\n    for: 10m\n  - record: r\n    expr: load\n").unwrap();
    m.update(std::slice::from_ref(&p)).await.unwrap();
    let g2 = m.groups()[0].clone();
    assert!(!Arc::ptr_eq(&g, &g2));
    let a = &g2.rules[0].as_alerting().unwrap().active_alerts()[0];
    assert_eq!(a.active_at, t0);
    assert!(
        g2.rules[0].as_alerting().unwrap().restored(),
        "rules loaded by a reload are not restored"
    );

    // Invalid file: error, old groups stay.
    std::fs::write(
        &p,
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: load >\n",
    )
    .unwrap();
    let err = m
        .update(std::slice::from_ref(&p))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not parse expression"), "{err}");
    assert!(Arc::ptr_eq(&g2, &m.groups()[0]));

    // The API shows the group and its alert.
    let app = alerting::routes(m.clone());
    let body = get(app.clone(), "/api/v1/rules?type=alert").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rules = &v["data"]["groups"][0]["rules"];
    assert_eq!(rules.as_array().unwrap().len(), 1);
    assert_eq!(rules[0]["type"], "alerting");
    assert_eq!(
        rules[0]["state"], "unknown",
        "never evaluated by the reloaded group"
    );
    assert_eq!(rules[0]["duration"], 600);
    assert_eq!(rules[0]["alerts"][0]["state"], "pending");
    assert_eq!(rules[0]["alerts"][0]["value"], "5e+00");
    assert_eq!(v["data"]["groups"][0]["interval"], 30);
    assert_eq!(
        v["data"]["groups"][0]["lastEvaluation"],
        "0001-01-01T00:00:00Z"
    );
    assert!(
        body.starts_with(&format!(
            r#"{{"status":"success","data":{{"groups":[{{"name":"g","file":"{}","rules":[{{"state":"unknown","name":"A","query":"load > 1","duration":600,"keepFiringFor":0,"labels":{{}},"annotations":{{}},"alerts":[{{"labels":{{"alertname":"A","instance":"x"}},"annotations":{{}},"state":"pending","activeAt":"#,
            p.display()
        )),
        "{body}"
    );
    assert!(body.ends_with(r#""health":"unknown","evaluationTime":0,"lastEvaluation":"0001-01-01T00:00:00Z","type":"alerting"}],"interval":30,"limit":0,"evaluationTime":0,"lastEvaluation":"0001-01-01T00:00:00Z"}]}}"#), "{body}");
    let body = get(app.clone(), "/api/v1/rules?type=record&exclude_alerts=true").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["groups"][0]["rules"][0]["name"], "r");
    assert_eq!(v["data"]["groups"][0]["rules"][0]["health"], "unknown");
    let body = get(app.clone(), "/api/v1/rules?type=bogus").await;
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"type\": not supported value \"bogus\""}"#
    );
    let body = get(app.clone(), "/api/v1/alerts").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["alerts"][0]["labels"]["alertname"], "A");
    assert_eq!(
        v["data"]["alerts"][0]["activeAt"],
        chrono::DateTime::from_timestamp_nanos(t0)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );

    // Metrics carry Prometheus's names with the silt_ prefix.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let key = format!("{};g", p.display());
    assert!(
        text.contains(&format!(
            "silt_rule_evaluations_total{{rule_group=\"{key}\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "silt_rule_group_interval_seconds{{rule_group=\"{key}\"}} 30.0"
        )),
        "{text}"
    );

    // Pagination over groups.
    std::fs::write(
        &p,
        "groups:\n- name: g1\n  rules:\n  - record: a\n    expr: load\n- name: g2\n  rules:\n  - record: b\n    expr: load\n",
    )
    .unwrap();
    m.update(std::slice::from_ref(&p)).await.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&get(app.clone(), "/api/v1/rules?group_limit=1").await).unwrap();
    assert_eq!(v["data"]["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["groups"][0]["name"], "g1");
    let token = v["data"]["groupNextToken"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    let uri = format!("/api/v1/rules?group_limit=1&group_next_token={token}");
    let v: serde_json::Value = serde_json::from_str(&get(app.clone(), &uri).await).unwrap();
    assert_eq!(v["data"]["groups"][0]["name"], "g2");
    assert!(v["data"].get("groupNextToken").is_none());
    let v: serde_json::Value =
        serde_json::from_str(&get(app.clone(), "/api/v1/rules?group_limit=0").await).unwrap();
    assert_eq!(
        v["error"],
        "invalid parameter \"group_limit\": group_limit needs to be greater than 0"
    );

    // Removing the file removes the group.
    let empty = rule_file(dir.path(), "b.yml", "groups: []\n");
    m.update(&[empty]).await.unwrap();
    assert!(m.groups().is_empty());
    m.stop().await;
}

async fn get(app: axum::Router, uri: &str) -> String {
    use tower::ServiceExt;
    let resp = app
        .oneshot(
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_runs_groups_on_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    write(&db, &[("__name__", "up"), ("job", "j")], &[(now - S, 1.0)]);
    let opts = ManagerOptions::new(db.clone());
    let m = RuleManager::with_metrics(opts, RuleMetrics::unregistered());
    let p = rule_file(
        dir.path(),
        "a.yml",
        "groups:\n- name: fast\n  interval: 1s\n  rules:\n  - record: job:up\n    expr: sum by (job) (up)\n",
    );
    m.update(&[p]).await.unwrap();
    m.run().await;
    let g = m.groups()[0].clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while g.stats().last_eval_timestamp.is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ts = g.stats().last_eval_timestamp.expect("evaluated");
    assert_eq!(
        g.eval_timestamp(ts),
        ts,
        "evaluations happen on the group's slots"
    );
    m.stop().await;
    let out = raw(&db, "job:up", &[]);
    assert_eq!(out.len(), 1);
    assert!(out[0].1.iter().all(|s| s.v == 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_alertmanager_receives_json_batches() {
    use axum::extract::State;
    use axum::http::HeaderMap;
    type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;
    async fn handler(
        State(seen): State<Seen>,
        headers: HeaderMap,
        body: String,
    ) -> axum::http::StatusCode {
        seen.lock().push((headers, body));
        axum::http::StatusCode::OK
    }
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/prefix/api/v2/alerts", axum::routing::post(handler))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut opts = ExternalOptions::new(vec![
        format!("http://{addr}/prefix/"),
        "http://127.0.0.1:1".into(),
    ]);
    opts.batch_size = 2;
    opts.timeout = Duration::from_secs(2);
    let mut registry = Registry::default();
    let ams = ExternalAlertmanagers::new(opts, &mut registry);
    let alerts: Vec<OutgoingAlert> = (0..3)
        .map(|i| OutgoingAlert {
            labels: [("alertname".to_string(), format!("A{i}"))]
                .into_iter()
                .collect(),
            annotations: [("summary".to_string(), "s".to_string())]
                .into_iter()
                .collect(),
            starts_at: chrono::DateTime::from_timestamp(1_700_000_000, 5_000_000).unwrap(),
            ends_at: Some(chrono::DateTime::from_timestamp(1_700_000_240, 0).unwrap()),
            generator_url: "http://g/graph".into(),
        })
        .collect();
    ams.send(alerts);
    let ams2 = ams.clone();
    tokio::task::spawn_blocking(move || ams2.stop())
        .await
        .unwrap();
    let seen = seen.lock();
    assert_eq!(seen.len(), 2, "3 alerts in batches of 2");
    let (headers, body) = &seen[0];
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers["user-agent"].to_str().unwrap().starts_with("Silt/"));
    assert_eq!(
        body,
        r#"[{"annotations":{"summary":"s"},"endsAt":"2023-11-14T22:17:20.000Z","startsAt":"2023-11-14T22:13:20.005Z","generatorURL":"http://g/graph","labels":{"alertname":"A0"}},{"annotations":{"summary":"s"},"endsAt":"2023-11-14T22:17:20.000Z","startsAt":"2023-11-14T22:13:20.005Z","generatorURL":"http://g/graph","labels":{"alertname":"A1"}}]"#
    );
    let v: serde_json::Value = serde_json::from_str(&seen[1].1).unwrap();
    assert_eq!(v[0]["labels"]["alertname"], "A2");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let good = format!("http://{addr}/prefix/api/v2/alerts");
    for line in [
        format!("silt_notifications_sent_total{{alertmanager=\"{good}\"}} 3"),
        format!("silt_notifications_errors_total{{alertmanager=\"{good}\"}} 0"),
        "silt_notifications_sent_total{alertmanager=\"http://127.0.0.1:1/api/v2/alerts\"} 0"
            .to_string(),
        "silt_notifications_errors_total{alertmanager=\"http://127.0.0.1:1/api/v2/alerts\"} 3"
            .to_string(),
        "silt_notifications_dropped_total{alertmanager=\"http://127.0.0.1:1/api/v2/alerts\"} 3"
            .to_string(),
        "silt_notifications_queue_capacity 10000.0".to_string(),
    ] {
        assert!(text.contains(&line), "{line} not in {text}");
    }
}

#[test]
fn realistic_mixin_file_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let p = rule_file(dir.path(), "node.yml", NODE_MIXIN);
    let checks = alerting::check_files(&[p]);
    assert!(checks[0].errors.is_empty(), "{:?}", checks[0].errors);
    assert_eq!(checks[0].rules, 6);
    let db = open(&dir.path().join("db"));
    let groups = load(dir.path(), NODE_MIXIN, context(&db, None), false);
    let t0 = base();
    for g in &groups {
        g.eval(t0);
        for r in &g.rules {
            assert_eq!(
                r.status().health,
                Health::Good,
                "{}: {:?}",
                r.name(),
                r.status().last_error
            );
        }
    }
}

const NODE_MIXIN: &str = r#"groups:
  - name: node-exporter.rules
    rules:
      - record: instance:node_num_cpu:sum
        expr: |
          count without (cpu, mode) (
            node_cpu_seconds_total{job="node",mode="idle"}
          )
      - record: instance:node_cpu_utilisation:rate5m
        expr: |
          1 - avg without (cpu) (
            sum without (mode) (rate(node_cpu_seconds_total{job="node", mode=~"idle|iowait|steal"}[5m]))
          )
      - record: instance:node_load1_per_cpu:ratio
        expr: |
          (
            node_load1{job="node"}
          /
            instance:node_num_cpu:sum{job="node"}
          )
  - name: node-exporter
    rules:
      - alert: NodeFilesystemSpaceFillingUp
        annotations:
          description: Filesystem on {{ $labels.device }}, mounted on {{ $labels.mountpoint }}, at {{ $labels.instance }} has only {{ printf "%.2f" $value }}% available space left and is filling up.
          summary: Filesystem is predicted to run out of space within the next 24 hours.
        expr: |
          (
            node_filesystem_avail_bytes{job="node",fstype!="",mountpoint!=""} / node_filesystem_size_bytes{job="node",fstype!="",mountpoint!=""} * 100 < 15
          and
            predict_linear(node_filesystem_avail_bytes{job="node",fstype!="",mountpoint!=""}[6h], 24*60*60) < 0
          and
            node_filesystem_readonly{job="node",fstype!="",mountpoint!=""} == 0
          )
        for: 1h
        labels:
          severity: warning
      - alert: NodeHighNumberConntrackEntriesUsed
        annotations:
          description: '{{ $labels.instance }} {{ $value | humanizePercentage }} of conntrack entries are used.'
          summary: Number of conntrack are getting close to the limit.
        expr: |
          (node_nf_conntrack_entries{job="node"} / node_nf_conntrack_entries_limit) > 0.75
        labels:
          severity: warning
      - alert: NodeClockNotSynchronising
        annotations:
          description: Clock at {{ $labels.instance }} is not synchronising. Ensure NTP is configured on this host.
          summary: Clock not synchronising.
        expr: |
          min_over_time(node_timex_sync_status{job="node"}[5m]) == 0
          and
          node_timex_maxerror_seconds{job="node"} >= 16
        for: 10m
        keep_firing_for: 5m
        labels:
          severity: warning
"#;

/// 5000 alert instances with templated labels and annotations, plus a
/// recording rule over the same series: one group evaluation.
#[test]
fn many_instances_in_one_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    let mut batch = WriteBatch::default();
    for i in 0..5000 {
        let inst = format!("host-{i}:9100");
        batch.series.push(SeriesSamples::new(
            Labels::new(&[("__name__", "load"), ("instance", &inst), ("job", "node")]),
            vec![Sample::new(t0 / 1_000_000, 2.0 + i as f64)],
        ));
    }
    drop(db.append(&batch).unwrap());
    let text = "groups:\n- name: big\n  rules:\n  - record: instance:load:x2\n    expr: load * 2\n  - alert: Load\n    expr: load > 1\n    labels: {severity: warn, host: '{{ $labels.instance | stripPort }}'}\n    annotations: {summary: 'Load {{ $value | humanize }} on {{ $labels.instance }}'}\n";
    let groups = load(dir.path(), text, context(&db, None), false);
    let start = std::time::Instant::now();
    groups[0].eval(t0);
    let first = start.elapsed();
    let start = std::time::Instant::now();
    groups[0].eval(t0 + MIN);
    let second = start.elapsed();
    eprintln!(
        "5000 instances: first evaluation {first:?}, second {second:?} (record {:?}, alert {:?})",
        groups[0].rules[0].status().evaluation_time,
        groups[0].rules[1].status().evaluation_time
    );
    let a = groups[0].rules[1].as_alerting().unwrap().active_alerts();
    assert_eq!(a.len(), 5000);
    assert_eq!(raw(&db, "ALERTS", &[]).len(), 5000);
    assert_eq!(raw(&db, "instance:load:x2", &[]).len(), 5000);
    assert!(
        a.iter()
            .any(|a| a.annotations["summary"] == "Load 5.001k on host-4999:9100")
    );
}

#[test]
fn raised_for_moves_firing_back_to_pending_and_copy_state_marks_removed_rules_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(
        &db,
        &[("__name__", "err")],
        &(0..=5).map(|i| (t0 + i * MIN, 1.0)).collect::<Vec<_>>(),
    );
    let ctx = context(&db, None);
    let old = load(
        dir.path(),
        "groups:\n- name: g\n  rules:\n  - alert: E\n    expr: err > 0\n  - record: gone\n    expr: err\n",
        ctx.clone(),
        false,
    );
    old[0].eval(t0);
    assert_eq!(
        old[0].rules[0].as_alerting().unwrap().active_alerts()[0].state,
        AlertState::Firing
    );
    let new = load(
        dir.path(),
        "groups:\n- name: g\n  rules:\n  - alert: E\n    expr: err > 0\n    for: 3m\n",
        ctx,
        false,
    );
    assert!(!new[0].equals(&old[0]));
    // `for` changed, so the rule's definition differs, but its identity
    // (name and labels) is the same: the instance carries over.
    new[0].copy_state(&old[0]);
    new[0].eval(t0 + MIN);
    let a = &new[0].rules[0].as_alerting().unwrap().active_alerts()[0];
    assert_eq!(
        (a.state, a.active_at, a.fired_at),
        (AlertState::Pending, t0, None)
    );
    // The removed recording rule's series went stale at that evaluation.
    let gone = raw(&db, "gone", &[]);
    let last = *gone[0].1.last().unwrap();
    assert_eq!(
        (last.t, last.v.to_bits()),
        ((t0 + MIN) / 1_000_000, STALE_NAN)
    );
    new[0].eval(t0 + 3 * MIN);
    assert_eq!(
        new[0].rules[0].as_alerting().unwrap().active_alerts()[0].state,
        AlertState::Firing
    );

    // A removed group marks everything it wrote stale.
    new[0].mark_all_stale(t0 + 4 * MIN);
    for name in ["ALERTS", "ALERTS_FOR_STATE"] {
        for (labels, samples) in raw(&db, name, &[]) {
            let last = *samples.last().unwrap();
            assert_eq!(last.v.to_bits(), STALE_NAN, "{labels}");
        }
    }
}

#[test]
fn query_offset_shifts_queries_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("db"));
    let t0 = base();
    write(&db, &[("__name__", "m")], &[(t0, 1.0), (t0 + 2 * MIN, 2.0)]);
    let groups = load(
        dir.path(),
        "groups:\n- name: g\n  query_offset: 2m\n  rules:\n  - record: m:copy\n    expr: m\n",
        context(&db, None),
        false,
    );
    assert_eq!(groups[0].effective_query_offset(), Duration::from_secs(120));
    groups[0].eval(t0 + 3 * MIN);
    // Queried at t0+1m (sees the t0 sample), written at t0+1m.
    let out = raw(&db, "m:copy", &[]);
    assert_eq!(out[0].1, vec![Sample::new((t0 + MIN) / 1_000_000, 1.0)]);
}
