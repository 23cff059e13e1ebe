//! Configuration parsing, validation and routing-tree tests.

use super::*;

const FULL: &str = r#"
global:
  resolve_timeout: 2m
  smtp_smarthost: 'mail:25'
  smtp_from: 'am@example.org'
route:
  receiver: default
  group_by: [alertname, cluster]
  group_wait: 10s
  routes:
    - matchers: ['team="frontend"']
      receiver: frontend
      repeat_intervals: [1h, 4h, 24h]
      escalate: [{after: 3, receiver: lead}]
      routes:
        - match: {severity: critical}
          receiver: pager
          continue: true
        - match_re: {env: "prod|staging"}
          group_by: ['...']
    - matchers: ['team=~"back.*"', 'env!="dev"']
      receiver: backend
      mute_time_intervals: [offhours]
      active_time_intervals: [business]
      group_interval: 1m
      repeat_interval: 2h
receivers:
  - name: default
  - name: frontend
    webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]
  - name: pager
  - name: backend
  - name: lead
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
  - source_match: {a: b}
    target_match_re: {c: "d.*"}
time_intervals:
  - name: business
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '17:00'}]
mute_time_intervals:
  - name: offhours
    time_intervals:
      - weekdays: ['saturday', 'sunday']
templates: ['templates/*.tmpl']
"#;

fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err(text: &str) -> String {
    Config::parse(text, "am.yml").unwrap_err().to_string()
}

#[test]
fn parses_a_full_configuration() {
    let c = Config::parse(FULL, "/etc/silt/am.yml").unwrap();
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(120));
    assert_eq!(
        c.global.receivers.smtp_from.as_deref(),
        Some("am@example.org")
    );
    assert_eq!(c.receivers.len(), 5);
    assert_eq!(c.inhibit_rules.len(), 2);
    assert_eq!(c.inhibit_rules[1].target_matchers[0].op, MatchType::Regexp);
    assert_eq!(c.time_intervals.len(), 2);
    assert_eq!(c.base_dir, PathBuf::from("/etc/silt"));
    assert_eq!(c.templates, vec!["templates/*.tmpl".to_string()]);
}

#[test]
fn routing_matches_continue_and_inherits() {
    let c = Config::parse(FULL, "am.yml").unwrap();
    let root = Route::build(&c.route);
    let names = |labels: &LabelSet| -> Vec<String> {
        root.matching(labels)
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect()
    };
    // No child matches: the root handles it.
    assert_eq!(names(&ls(&[("alertname", "X")])), vec!["default"]);
    // continue: pager, then the next sibling (regex) inherits `frontend`.
    let l = ls(&[
        ("team", "frontend"),
        ("severity", "critical"),
        ("env", "prod"),
    ]);
    assert_eq!(names(&l), vec!["pager", "frontend"]);
    // Without continue matching stops at the first match.
    let l = ls(&[("team", "frontend"), ("env", "prod")]);
    let routes = root.matching(&l);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].opts.group_by, GroupBy::All);
    // Inherited options.
    let r = routes[0];
    assert_eq!(r.opts.group_wait, Duration::from_secs(10));
    assert_eq!(r.opts.group_interval, DEFAULT_GROUP_INTERVAL);
    assert_eq!(
        r.opts.repeat_intervals,
        vec![
            Duration::from_secs(3600),
            Duration::from_secs(4 * 3600),
            Duration::from_secs(86400)
        ]
    );
    assert_eq!(r.opts.escalate.len(), 1);
    // The frontend node itself when no grandchild matches.
    assert_eq!(names(&ls(&[("team", "frontend")])), vec!["frontend"]);
    // Negative matcher: env!="dev" excludes dev.
    assert_eq!(
        names(&ls(&[("team", "backend"), ("env", "dev")])),
        vec!["default"]
    );
    let l = ls(&[("team", "backend")]);
    let b = root.matching(&l)[0];
    assert_eq!(b.opts.receiver, "backend");
    assert_eq!(b.opts.repeat_intervals, vec![Duration::from_secs(7200)]);
    assert_eq!(b.opts.mute_time_intervals, vec!["offhours".to_string()]);
    assert_eq!(
        b.opts.group_by,
        GroupBy::Labels(["alertname".to_string(), "cluster".to_string()].into())
    );
    // Repeat schedule: the last value repeats.
    let f = root.matching(&ls(&[("team", "frontend")]))[0].opts.clone();
    assert_eq!(f.repeat_interval(0), Duration::from_secs(3600));
    assert_eq!(f.repeat_interval(1), Duration::from_secs(4 * 3600));
    assert_eq!(f.repeat_interval(7), Duration::from_secs(86400));
}

#[test]
fn route_and_group_keys_are_alertmanagers() {
    let c = Config::parse(FULL, "am.yml").unwrap();
    let root = Route::build(&c.route);
    assert_eq!(root.key, "{}");
    let l = ls(&[
        ("team", "frontend"),
        ("severity", "critical"),
        ("env", "prod"),
    ]);
    let keys: Vec<&str> = root.matching(&l).iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            r#"{}/{team="frontend"}/{severity="critical"}"#,
            r#"{}/{team="frontend"}/{env=~"prod|staging"}"#
        ]
    );
    // Matchers are sorted by name, value, type.
    let l = ls(&[("team", "backend")]);
    assert_eq!(
        root.matching(&l)[0].key,
        r#"{}/{env!="dev",team=~"back.*"}"#
    );
    let labels = ls(&[("alertname", "X"), ("cluster", "eu"), ("other", "y")]);
    let g = root.group_labels(&labels);
    assert_eq!(
        format!("{}:{}", root.key, crate::matchers::labelset_string(&g)),
        r#"{}:{alertname="X", cluster="eu"}"#
    );
    // Missing group_by labels are left out.
    assert_eq!(
        crate::matchers::labelset_string(&root.group_labels(&ls(&[("alertname", "X")]))),
        r#"{alertname="X"}"#
    );
}

#[test]
fn validation_like_amtool() {
    let base = "route: {receiver: a}\nreceivers: [{name: a}]\n";
    assert!(Config::parse(base, "am.yml").is_ok());
    assert!(err("receivers: [{name: a}]").contains("no routes provided"));
    assert!(
        err("route: {receiver: b}\nreceivers: [{name: a}]")
            .contains(r#"undefined receiver "b" used in route"#)
    );
    assert!(
        err("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]").contains("is not unique")
    );
    assert!(
        err("route: {receiver: a, matchers: ['x=y']}\nreceivers: [{name: a}]")
            .contains("root route must not have any matchers")
    );
    assert!(
        err("route: {}\nreceivers: [{name: a}]")
            .contains("root route must specify a default receiver")
    );
    assert!(
        err("route: {receiver: a, continue: true}\nreceivers: [{name: a}]")
            .contains("continue in root route")
    );
    assert!(
        err("route: {receiver: a, routes: [{mute_time_intervals: [x]}]}\nreceivers: [{name: a}]")
            .contains(r#"undefined time interval "x" used in route"#)
    );
    assert!(
        err("route: {receiver: a, routes: [{group_by: ['...', a]}]}\nreceivers: [{name: a}]")
            .contains("wildcard")
    );
    assert!(
        err("route: {receiver: a, group_by: [a, a]}\nreceivers: [{name: a}]")
            .contains("duplicated label")
    );
    assert!(
        err("route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]")
            .contains("group_interval cannot be zero")
    );
    assert!(
        err("route: {receiver: a, repeat_intervals: []}\nreceivers: [{name: a}]")
            .contains("cannot be empty")
    );
    assert!(
        err("route: {receiver: a, escalate: [{after: 2, receiver: z}]}\nreceivers: [{name: a}]")
            .contains("undefined receiver \"z\" used in escalate")
    );
    assert!(
        err("route: {receiver: a, escalate: [{after: 0, receiver: a}]}\nreceivers: [{name: a}]")
            .contains("at least 1")
    );
    assert!(
        err("route: {receiver: a, group_wait: 5x}\nreceivers: [{name: a}]").contains("duration")
    );
    assert!(
        err(&format!(
            "{base}time_intervals: [{{name: t}}]\nmute_time_intervals: [{{name: t}}]"
        ))
        .contains("not unique")
    );
    assert!(
        err(&format!(
            "{base}inhibit_rules: [{{source_matchers: ['a=~(']}}]"
        ))
        .contains("regular expression")
    );
    assert!(err(&format!("{base}global: {{smtp_frm: x}}")).contains("unknown field `smtp_frm`"));
}

#[test]
fn unknown_fields_are_rejected_with_a_location() {
    let e = Config::parse(
        "route:\n  receiver: a\n  recever: b\nreceivers: [{name: a}]\n",
        "am.yml",
    )
    .unwrap_err();
    match e {
        ConfigError::Yaml { line, message, .. } => {
            assert_eq!(line, 3);
            assert!(message.contains("unknown field `recever`"), "{message}");
        }
        other => panic!("unexpected {other}"),
    }
    let e = err("route: {receiver: a}\nreceivers: [{name: a}]\nfoo: 1\n");
    assert!(e.starts_with("am.yml:3:"), "{e}");
}

#[test]
fn validation_errors_point_at_the_line() {
    let e =
        err("route:\n  receiver: a\n  routes:\n    - receiver: missing\nreceivers:\n  - name: a\n");
    assert_eq!(e, r#"am.yml:4: undefined receiver "missing" used in route"#);
    let e = err("route: {receiver: a}\nreceivers:\n  - name: a\n  - name: a\n");
    assert_eq!(e, r#"am.yml:4: notification config name "a" is not unique"#);
    assert_eq!(err("receivers: [{name: a}]"), "am.yml: no routes provided");
}
