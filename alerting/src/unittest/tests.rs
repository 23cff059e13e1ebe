//! Test files run end to end over a real database: verdicts and the
//! wording of promtool's failure reports.

use super::*;

const RULES: &str = r#"
groups:
- name: rec
  rules:
  - record: job:up:sum
    expr: sum by (job) (up)
- name: alerts
  rules:
  - alert: InstanceDown
    expr: up == 0
    for: 2m
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.instance }} of {{ $labels.job }} down"
      value: "{{ $value }}"
      empty: ""
  - alert: Flapping
    expr: flap > 0
    keep_firing_for: 3m
"#;

/// Writes `rules.yml` and `test.yml` into a fresh directory and runs the test.
fn run(test: &str) -> FileReport {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let path = dir.path().join("test.yml");
    std::fs::write(&path, test).unwrap();
    test_file(&path)
}

fn errors(r: &FileReport) -> Vec<String> {
    r.errors.iter().map(|e| e.to_string()).collect()
}

const PASSING: &str = r#"
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'up{job="api", instance="a"}'
    values: '1 1 0 0 0 0 1'
  - series: 'up{job="api", instance="b"}'
    values: '1x6'
  - series: 'flap'
    values: '1 0 0 0 0 0'
  alert_rule_test:
  - eval_time: 2m
    alertname: InstanceDown
  - eval_time: 4m
    alertname: InstanceDown
    exp_alerts:
    - exp_labels: {severity: page, job: api, instance: a}
      exp_annotations: {summary: "a of api down", value: "0", empty: ""}
  - eval_time: 6m
    alertname: InstanceDown
  - eval_time: 0m
    alertname: Flapping
    exp_alerts:
    - exp_labels: {}
  - eval_time: 3m
    alertname: Flapping
    exp_alerts:
    - exp_labels: {}
  - eval_time: 4m
    alertname: Flapping
  promql_expr_test:
  - expr: job:up:sum
    eval_time: 3m
    exp_samples:
    - labels: 'job:up:sum{job="api"}'
      value: 1
  - expr: ALERTS{alertstate="firing"}
    eval_time: 4m
    exp_samples:
    - labels: 'ALERTS{alertname="InstanceDown", alertstate="firing", instance="a", job="api", severity="page"}'
      value: 1
  - expr: scalar(sum(up))
    eval_time: 1m
    exp_samples:
    - labels: '{}'
      value: 2
  - expr: absent(nothing)
    eval_time: 0m
    exp_samples:
    - labels: '{}'
      value: 1
  - expr: nothing
    eval_time: 1m
"#;

#[test]
fn a_passing_file_passes() {
    let r = run(PASSING);
    assert!(r.passed(), "{:#?}", errors(&r));
}

#[test]
fn wrong_value_fails_with_promtool_report() {
    let r = run(&PASSING.replace(
        "    - labels: 'job:up:sum{job=\"api\"}'\n      value: 1",
        "    - labels: 'job:up:sum{job=\"api\"}'\n      value: 2",
    ));
    assert_eq!(
        errors(&r),
        vec![
            "    expr: \"job:up:sum\", time: 3m,\n        exp: {__name__=\"job:up:sum\", job=\"api\"} 2E+00\n        got: {__name__=\"job:up:sum\", job=\"api\"} 1E+00"
        ]
    );
}

#[test]
fn missing_and_extra_alerts_fail() {
    // Expected firing at 3m, but `for: 2m` holds it pending until 4m.
    let r = run(&PASSING.replace("  - eval_time: 2m\n    alertname: InstanceDown\n", "  - eval_time: 3m\n    alertname: InstanceDown\n    exp_alerts:\n    - exp_labels: {severity: page, job: api, instance: a}\n"));
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        e[0],
        "    alertname: InstanceDown, time: 3m, \n        exp:[\n            0:\n              Labels:{alertname=\"InstanceDown\", instance=\"a\", job=\"api\", severity=\"page\"}\n              Annotations:{}\n            ], \n        got:[]"
    );
    // Firing at 5m, but expected nothing.
    let r = run(&PASSING.replace("eval_time: 6m", "eval_time: 5m"));
    let e = errors(&r);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("    alertname: InstanceDown, time: 5m, \n        exp:[], \n        got:[\n            0:\n              Labels:{alertname=\"InstanceDown\""), "{}", e[0]);
}

#[test]
fn annotations_compare_exactly() {
    let r = run(&PASSING.replace("summary: \"a of api down\"", "summary: \"a down\""));
    assert_eq!(errors(&r).len(), 1);
    // An expected empty annotation must be there; a missing one fails.
    let r = run(&PASSING.replace(", empty: \"\"}", "}"));
    assert_eq!(errors(&r).len(), 1);
}

#[test]
fn nan_never_matches_and_empty_labels_are_kept() {
    let r = run(r#"
tests:
- promql_expr_test:
  - expr: vector(NaN)
    eval_time: 0s
    exp_samples: [{labels: '{}', value: .nan}]
  - expr: vector(1)
    eval_time: 0s
    exp_samples: [{labels: '{a=""}', value: 1}]
  - expr: vector(1)
    eval_time: 0s
    exp_samples: [{labels: '', value: 1}]
  - expr: vector(0.1+0.2)
    eval_time: 0s
    exp_samples: [{labels: '{}', value: 0.3}]
"#);
    let e = errors(&r);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains("exp: {} NaN\n        got: {} NaN"),
        "{}",
        e[0]
    );
    assert!(e[1].contains("exp: {a=\"\"} 1E+00"), "{}", e[1]);
    assert!(e[2].contains("got: {} 3.0000000000000004E-01"), "{}", e[2]);
}

#[test]
fn zero_interval_keeps_the_first_value() {
    let r = run(r#"
tests:
- input_series:
  - series: m
    values: 5 6 7
  promql_expr_test:
  - expr: m
    eval_time: 2m
    exp_samples: [{labels: m, value: 5}]
  - expr: count_over_time(m[10m])
    eval_time: 2m
    exp_samples: [{labels: '{}', value: 1}]
"#);
    assert!(r.passed(), "{:#?}", errors(&r));
}

#[test]
fn input_is_loaded_only_up_to_the_last_step() {
    // Steps are 0, 2m, 4m: the sample at 5m is never loaded, though the
    // query runs at 5m.
    let r = run(r#"
evaluation_interval: 2m
tests:
- interval: 1m
  input_series:
  - series: m
    values: 0 1 2 3 4 5
  promql_expr_test:
  - expr: m
    eval_time: 5m
    exp_samples: [{labels: m, value: 4}]
  - expr: m
    eval_time: 3m
    exp_samples: [{labels: m, value: 3}]
"#);
    assert!(r.passed(), "{:#?}", errors(&r));
}

#[test]
fn series_notation_expands() {
    let r = run(r#"
tests:
- interval: 1m
  input_series:
  - series: 'm{k="v"}'
    values: '1+1x2 _ 10-2x1 stale Inf'
  promql_expr_test:
  - expr: m
    eval_time: 2m
    exp_samples: [{labels: 'm{k="v"}', value: 3}]
  - expr: m
    eval_time: 3m
    exp_samples: [{labels: 'm{k="v"}', value: 3}]
  - expr: m
    eval_time: 5m
    exp_samples: [{labels: 'm{k="v"}', value: 8}]
  - expr: m
    eval_time: 6m
  - expr: m
    eval_time: 7m
    exp_samples: [{labels: 'm{k="v"}', value: .inf}]
"#);
    assert!(r.passed(), "{:#?}", errors(&r));
}

#[test]
fn rule_errors_stop_the_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: a / on(x) group_left b\n",
    )
    .unwrap();
    let path = dir.path().join("t.yml");
    std::fs::write(
        &path,
        r#"
rule_files: [bad.yml]
tests:
- interval: 1m
  input_series:
  - {series: 'a{x="1"}', values: '1'}
  - {series: 'b{x="1", y="1"}', values: '1'}
  - {series: 'b{x="1", y="2"}', values: '1'}
  promql_expr_test:
  - expr: r
    eval_time: 5m
"#,
    )
    .unwrap();
    let e = errors(&test_file(&path));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("    rule: r, time: 0s, err: "), "{}", e[0]);
}

#[test]
fn file_level_errors() {
    let e = errors(&run("rule_files: [rules.yml]\nbogus: 1\n"));
    assert_eq!(
        e,
        vec!["yaml: unmarshal errors:\n  line 2: field bogus not found in type main.unitTestFile"]
    );
    let e = errors(&run("group_eval_order: [a, b, a]\n"));
    assert_eq!(e, vec!["group name repeated in evaluation order: a"]);
    let e = errors(&run(
        "tests:\n- name: t1\n  alert_rule_test:\n  - eval_time: 5m\n",
    ));
    assert_eq!(
        e,
        vec![
            "an item under alert_rule_test misses required attribute alertname at eval_time 5m (in TestGroup t1)"
        ]
    );
    let e = errors(&run(
        "tests:\n- input_series:\n  - {series: 'm', values: '1 x'}\n",
    ));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("input series m: "), "{}", e[0]);
    let e = errors(&run(
        "tests:\n- promql_expr_test:\n  - {expr: 'vector(1)', eval_time: 0s, exp_samples: [{labels: 'm{a=~\"x\"}', value: 1}]}\n",
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("    expr: \"vector(1)\", time: 0s, err: labels \"m{a=~\\\"x\\\"}\": "),
        "{}",
        e[0]
    );
    let e = errors(&run(
        "tests:\n- promql_expr_test:\n  - {expr: 'sum(', eval_time: 1m}\n",
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("    expr: \"sum(\", time: 1m, err: "),
        "{}",
        e[0]
    );
    let e = errors(&run(
        "tests:\n- promql_expr_test:\n  - {expr: 'm[5m]', eval_time: 1m}\n",
    ));
    assert_eq!(
        e,
        vec!["    expr: \"m[5m]\", time: 1m, err: rule result is not a vector or scalar"]
    );
    let r = test_file(Path::new("/nonexistent/t.yml"));
    assert_eq!(
        errors(&r),
        vec!["open /nonexistent/t.yml: no such file or directory"]
    );
}

#[test]
fn bad_rule_files_fail_and_missing_patterns_warn() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n- name: g\n  rules:\n  - record: r\n    expr: 'sum('\n",
    )
    .unwrap();
    let path = dir.path().join("t.yml");
    std::fs::write(&path, "rule_files: [bad.yml, 'none-*.yml']\ntests:\n- {}\n").unwrap();
    let r = test_file(&path);
    assert_eq!(r.errors.len(), 1);
    assert!(matches!(r.errors[0], UnitTestError::RuleFile(_)));
    assert_eq!(r.unmatched_patterns.len(), 1);
    assert!(r.unmatched_patterns[0].ends_with("none-*.yml"));
}

#[test]
fn group_eval_order_decides_what_a_later_group_sees() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yml"),
        r#"
groups:
- name: second
  rules:
  - record: copy
    expr: base
- name: first
  rules:
  - record: base
    expr: vector(1)
"#,
    )
    .unwrap();
    let test = |order: &str| {
        let path = dir.path().join("t.yml");
        std::fs::write(
            &path,
            format!(
                "rule_files: [r.yml]\n{order}tests:\n- promql_expr_test:\n  - expr: copy\n    eval_time: 0s\n    exp_samples: [{{labels: copy, value: 1}}]\n"
            ),
        )
        .unwrap();
        test_file(&path)
    };
    // `copy` exists at time 0 only if `first` ran before `second`;
    // unlisted groups keep file order.
    let ordered = errors(&test("group_eval_order: [first, second]\n"));
    assert!(ordered.is_empty(), "{ordered:#?}");
    let unordered = errors(&test(""));
    assert_eq!(unordered.len(), 1, "{unordered:#?}");
    assert!(unordered[0].contains("got: nil"), "{}", unordered[0]);
}

#[test]
fn run_files_prints_promtool_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let ok = dir.path().join("ok.yml");
    std::fs::write(&ok, PASSING).unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "group_eval_order: [a, a]\n").unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(run_files(std::slice::from_ref(&ok), &mut out, &mut err).unwrap());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("Unit Testing:  {}\n  SUCCESS\n\n", ok.display())
    );
    assert!(err.is_empty());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(!run_files(&[ok.clone(), bad.clone()], &mut out, &mut err).unwrap());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "Unit Testing:  {}\n  SUCCESS\n\nUnit Testing:  {}\n\n\n",
            ok.display(),
            bad.display()
        )
    );
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "  FAILED:\ngroup name repeated in evaluation order: a\n"
    );
}

/// The end-to-end test files (tests/data/rules_unittest, compared with
/// promtool by tests/rules_unittest.rs) give the verdicts their names say.
#[test]
fn shared_test_files_give_their_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/rules_unittest");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".test.yml") {
            continue;
        }
        n += 1;
        let r = test_file(&path);
        assert_eq!(
            r.passed(),
            name.starts_with("pass_"),
            "{name}: {:#?}",
            errors(&r)
        );
    }
    assert!(n >= 8, "only {n} files in {}", dir.display());
}
