//! Dispatcher behaviour on paused tokio time: group timers, dedup,
//! inhibition, time intervals, silences, escalation, growing repeat
//! intervals and the notification log across restarts.

mod common;

use std::time::Duration;

use alertmanager::{Clock, NotificationReason, PostableSilence, SilenceMatcher};
use chrono::TimeZone;
use common::*;
use tokio::time::Instant;

const BASIC: &str = r#"
global: {resolve_timeout: 1d}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers: [{name: team}]
"#;

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

#[tokio::test(start_paused = true)]
async fn group_wait_interval_repeat_and_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A"), ("i", "1")], t0())]);
    at(start, 29).await;
    assert!(log.take().is_empty(), "nothing before group_wait");
    at(start, 31).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::First);
    assert_eq!(n[0].repeat, 0);
    assert_eq!(n[0].group_key, r#"{}:{alertname="A"}"#);
    assert_eq!(n[0].receiver, "team");
    assert_eq!(n[0].alerts[0].ends_at, None, "firing alerts carry no end");
    let q = alertmanager::HistoryQuery {
        start: t0(),
        end: t0() + secs(3600),
        alertname: Some("A".into()),
        matchers: vec![],
        limit: 100,
    };
    let events = am.history().query(&q).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, alertmanager::EventKind::NotificationSent);
    assert_eq!(events[0].receiver.as_deref(), Some("team"));
    assert_eq!(events[0].reason.as_deref(), Some("first notification"));

    // A new alert in the group waits for the next group_interval (t=330).
    am.put_alerts(vec![alert(
        &[("alertname", "A"), ("i", "2")],
        t0() + secs(60),
    )]);
    at(start, 329).await;
    assert!(log.take().is_empty());
    at(start, 331).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::NewAlertsAdded);
    assert_eq!(n[0].alerts.len(), 2);
    assert_eq!(n[0].repeat, 1);

    // Nothing changes: the repeat comes at the first flush more than 1h
    // after the last notification (330 + 3600 is not strictly after, so
    // 4230).
    at(start, 3931).await;
    assert!(log.take().is_empty());
    at(start, 4231).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::RepeatIntervalElapsed);

    // One resolves: "some alerts resolved" at the next flush.
    am.put_alerts(vec![resolved(
        &[("alertname", "A"), ("i", "1")],
        t0(),
        t0() + secs(4300),
    )]);
    at(start, 4531).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::SomeAlertsResolved);
    assert_eq!(n[0].resolved().count(), 1);
    assert_eq!(n[0].firing().count(), 1);

    // All resolve.
    am.put_alerts(vec![resolved(
        &[("alertname", "A"), ("i", "2")],
        t0(),
        t0() + secs(4600),
    )]);
    at(start, 4831).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::AllAlertsResolved);
    // The group is gone; a new firing alert starts over with group_wait.
    at(start, 5000).await;
    am.put_alerts(vec![alert(
        &[("alertname", "A"), ("i", "3")],
        t0() + secs(5000),
    )]);
    at(start, 5029).await;
    assert!(log.take().is_empty());
    at(start, 5031).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::First);
    am.stop().await;
}

fn start_am(
    yaml: &str,
    dir: &std::path::Path,
    log: &Log,
) -> std::sync::Arc<alertmanager::Alertmanager> {
    start(yaml, dir, Clock::tokio_at(t0()), log)
}

#[tokio::test(start_paused = true)]
async fn resolved_before_group_wait_is_never_notified() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    at(start, 10).await;
    am.put_alerts(vec![resolved(&[("alertname", "A")], t0(), t0() + secs(10))]);
    at(start, 2000).await;
    assert!(log.take().is_empty());
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn old_alert_in_new_group_flushes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0() - secs(600))]);
    at(start, 1).await;
    assert_eq!(log.take().len(), 1);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn inhibition_and_no_self_inhibition() {
    let yaml = r#"
global: {resolve_timeout: 1d}
route: {receiver: team, group_by: ['...'], group_wait: 30s, group_interval: 5m}
receivers: [{name: team}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [cluster]
  - source_matchers: [alertname=NodeDown]
    target_matchers: [alertname=NodeDown]
    equal: [dc]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(yaml, dir.path(), &log);
    am.put_alerts(vec![
        alert(
            &[
                ("alertname", "Hot"),
                ("severity", "critical"),
                ("cluster", "eu"),
            ],
            t0(),
        ),
        alert(
            &[
                ("alertname", "Warm"),
                ("severity", "warning"),
                ("cluster", "eu"),
            ],
            t0(),
        ),
        alert(
            &[
                ("alertname", "Warm"),
                ("severity", "warning"),
                ("cluster", "us"),
            ],
            t0(),
        ),
        alert(
            &[("alertname", "NodeDown"), ("dc", "x"), ("host", "a")],
            t0(),
        ),
        alert(
            &[("alertname", "NodeDown"), ("dc", "x"), ("host", "b")],
            t0(),
        ),
    ]);
    at(start, 31).await;
    let mut got: Vec<String> = log
        .take()
        .iter()
        .map(|n| common::labels_string(&n.alerts[0].labels))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "alertname=Hot,cluster=eu,severity=critical",
            "alertname=NodeDown,dc=x,host=a",
            "alertname=NodeDown,dc=x,host=b",
            "alertname=Warm,cluster=us,severity=warning",
        ]
    );
    // Once the source resolves the target is notified at its next flush.
    am.put_alerts(vec![resolved(
        &[
            ("alertname", "Hot"),
            ("severity", "critical"),
            ("cluster", "eu"),
        ],
        t0(),
        t0() + secs(60),
    )]);
    at(start, 331).await;
    let n = log.take();
    let warm: Vec<_> = n
        .iter()
        .filter(|n| n.alerts[0].labels["alertname"] == "Warm")
        .collect();
    assert_eq!(warm.len(), 1);
    assert_eq!(warm[0].reason, NotificationReason::First);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn time_intervals_mute_and_activate() {
    // t0 is Monday 10:00 UTC.
    let yaml = r#"
global: {resolve_timeout: 1d}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  routes:
    - matchers: [alertname=Muted]
      mute_time_intervals: [mornings]
    - matchers: [alertname=Active]
      active_time_intervals: [mornings]
    - matchers: [alertname=Inactive]
      active_time_intervals: [weekend]
receivers: [{name: team}]
time_intervals:
  - name: mornings
    time_intervals: [{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '10:30'}]}]
  - name: weekend
    time_intervals: [{weekdays: [saturday, sunday]}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(yaml, dir.path(), &log);
    am.put_alerts(vec![
        alert(&[("alertname", "Muted")], t0()),
        alert(&[("alertname", "Active")], t0()),
        alert(&[("alertname", "Inactive")], t0()),
    ]);
    at(start, 31).await;
    assert_eq!(names(&log.take()), vec![vec!["Active".to_string()]]);
    // After 10:30 the mute ends: Muted is notified at the next flush.
    at(start, 1831).await;
    let n = log.take();
    assert_eq!(names(&n), vec![vec!["Muted".to_string()]]);
    am.stop().await;
}

fn silence_on(name: &str, ends: chrono::DateTime<chrono::Utc>) -> PostableSilence {
    PostableSilence {
        id: None,
        matchers: vec![SilenceMatcher {
            name: "alertname".into(),
            value: name.into(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at: None,
        ends_at: Some(ends),
        created_by: "test".into(),
        comment: "c".into(),
        annotations: None,
    }
}

#[tokio::test(start_paused = true)]
async fn silence_expiry_notifies_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    // Silenced from the start: nothing at group_wait.
    am.silences()
        .set(silence_on("A", t0() + secs(100)))
        .unwrap();
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    at(start, 31).await;
    assert!(log.take().is_empty());
    let q = alertmanager::HistoryQuery {
        start: t0(),
        end: t0() + secs(3600),
        alertname: None,
        matchers: vec![],
        limit: 100,
    };
    let events = am.history().query(&q).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, alertmanager::EventKind::Silenced);
    assert_eq!(events[0].silenced_by.len(), 1);
    // The silence ends at t=100: notified then, not at the next flush (330).
    at(start, 99).await;
    assert!(log.take().is_empty());
    at(start, 101).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::First);

    // Silenced after being notified: nothing while silenced ...
    let id = am
        .silences()
        .set(silence_on("A", t0() + secs(3000)))
        .unwrap();
    at(start, 1000).await;
    assert!(log.take().is_empty());
    // ... and deleting the silence notifies at once, before the repeat
    // interval.
    am.silences().expire(&id).unwrap();
    at(start, 1001).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::NewAlertsAdded);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn notification_log_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let clock = Clock::tokio_at(t0());
    let am = common::start(BASIC, dir.path(), clock.clone(), &log);
    let a = alert(&[("alertname", "A")], t0());
    am.put_alerts(vec![a.clone()]);
    at(start, 31).await;
    assert_eq!(log.take().len(), 1);
    am.stop().await;
    drop(am);

    // A new process: the sender re-sends the alert; the group is new and the
    // alert old, so it flushes at once — and the log says it was notified.
    let am = common::start(BASIC, dir.path(), clock.clone(), &log);
    am.put_alerts(vec![a.clone()]);
    at(start, 100).await;
    assert!(log.take().is_empty(), "no duplicate after restart");
    // Repeats still follow the logged time (31 + 3600 → first flush after).
    at(start, 3600).await;
    assert!(log.take().is_empty());
    at(start, 3700).await;
    let n = log.take();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].reason, NotificationReason::RepeatIntervalElapsed);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn escalation_after_n_notifications() {
    let yaml = r#"
global: {resolve_timeout: 1d}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  repeat_interval: 10m
  escalate: [{after: 2, receiver: lead}]
receivers: [{name: team}, {name: lead}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(yaml, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    at(start, 31).await;
    let n = log.take();
    assert_eq!(
        n.iter().map(|n| n.receiver.as_str()).collect::<Vec<_>>(),
        vec!["team"]
    );
    // First repeat at 31 + 660 = 691 (strictly more than 10m later).
    at(start, 692).await;
    let n = log.take();
    assert_eq!(
        n.iter()
            .map(|n| (n.receiver.as_str(), n.repeat))
            .collect::<Vec<_>>(),
        vec![("team", 1)]
    );
    // Third notification: two sent without resolution, so the lead joins.
    at(start, 1352).await;
    let mut n = log.take();
    n.sort_by(|a, b| a.receiver.cmp(&b.receiver));
    assert_eq!(
        n.iter()
            .map(|n| (n.receiver.as_str(), n.reason, n.repeat))
            .collect::<Vec<_>>(),
        vec![
            ("lead", NotificationReason::First, 0),
            ("team", NotificationReason::RepeatIntervalElapsed, 2)
        ]
    );
    // The resolution goes to both.
    am.put_alerts(vec![resolved(
        &[("alertname", "A")],
        t0(),
        t0() + secs(1400),
    )]);
    at(start, 1412).await;
    let mut n = log.take();
    n.sort_by(|a, b| a.receiver.cmp(&b.receiver));
    assert_eq!(
        n.iter()
            .map(|n| (n.receiver.as_str(), n.reason))
            .collect::<Vec<_>>(),
        vec![
            ("lead", NotificationReason::AllAlertsResolved),
            ("team", NotificationReason::AllAlertsResolved)
        ]
    );
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn growing_repeat_intervals() {
    let yaml = r#"
global: {resolve_timeout: 1d}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  repeat_intervals: [10m, 30m]
receivers: [{name: team}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(yaml, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    let mut times = Vec::new();
    for s in (31..7000).step_by(60) {
        at(start, s + 1).await;
        if !log.take().is_empty() {
            times.push(s);
        }
    }
    // First at 30; repeats 10m later (690), then every 30m (2550, 4410, 6270).
    assert_eq!(times, vec![31, 691, 2551, 4411, 6271]);
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failing_receiver_delays_nothing_and_is_retried() {
    let yaml = r#"
global: {resolve_timeout: 1d}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 1m
  routes:
    - {receiver: broken, continue: true}
    - {receiver: team}
receivers: [{name: team}, {name: broken}]
"#;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    log.fail("broken", true);
    let start = Instant::now();
    let am = start_am(yaml, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    at(start, 31).await;
    let n = log.take();
    assert_eq!(
        n.iter().map(|n| n.receiver.as_str()).collect::<Vec<_>>(),
        vec!["team"]
    );
    at(start, 91).await;
    assert!(log.take().is_empty());
    assert_eq!(
        log.attempts
            .lock()
            .iter()
            .filter(|r| *r == "broken")
            .count(),
        2
    );
    log.fail("broken", false);
    at(start, 151).await;
    let n = log.take();
    assert_eq!(
        n.iter()
            .map(|n| (n.receiver.as_str(), n.reason))
            .collect::<Vec<_>>(),
        vec![("broken", NotificationReason::First)]
    );
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_alerts_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    am.put_alerts(vec![alert(&[("alertname", "A")], t0())]);
    at(start, 31).await;
    assert_eq!(log.take().len(), 1);
    // An invalid configuration is refused and the old one stays.
    let bad = alertmanager::Config::parse(
        "route: {receiver: x}\nreceivers: [{name: x}, {name: x}]",
        "bad.yml",
    );
    assert!(bad.is_err());
    let cfg = alertmanager::Config::parse(&BASIC.replace("1h", "2h"), "am.yml").unwrap();
    am.reload(cfg).unwrap();
    at(start, 200).await;
    assert!(log.take().is_empty(), "reload must not re-notify");
    assert_eq!(
        am.config().route.repeat_interval.unwrap().0,
        Duration::from_secs(7200)
    );
    am.stop().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_alerts_are_reported_and_valid_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let start = Instant::now();
    let am = start_am(BASIC, dir.path(), &log);
    let mut bad = alert(&[("alertname", "B")], t0());
    bad.ends_at = Some(t0() - secs(10));
    let invalid = am.put_alerts(vec![
        alert(&[("alertname", "A")], t0()),
        alert(&[], t0()),
        alert(&[("0bad", "x")], t0()),
        bad,
    ]);
    assert_eq!(invalid.len(), 3);
    at(start, 31).await;
    assert_eq!(names(&log.take()), vec![vec!["A".to_string()]]);
    let _ = chrono::Utc.timestamp_opt(0, 0);
    am.stop().await;
}
