//! Alerting end to end with real parts: the `silt` binary evaluates a rule
//! file over data it ingested, its built-in Alertmanager delivers to a
//! local webhook sink (payload checked field by field), and a real
//! Alertmanager (Debian's `prometheus-alertmanager`) receives the same
//! alert and shows it through its own API. Also: `silt check rules` gives
//! promtool's verdicts, and a bad reload keeps the running rules.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Silt, SiltOptions, Value, proto, series};

/// A request the sink received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 sink on 127.0.0.1 that answers 200 to everything and keeps
/// what it got.
struct Sink {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut headers = Vec::new();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            reader.read_line(&mut h).unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap();
                            }
                            headers.push((k.to_owned(), v.trim().to_owned()));
                        }
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        store.lock().unwrap().push(Received {
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n",
                        );
                    }
                });
            }
        });
        Sink { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A real Alertmanager on a free port, killed on drop.
struct RealAlertmanager {
    child: Child,
    url: String,
}

impl RealAlertmanager {
    fn start(bin: &Path, dir: &Path) -> RealAlertmanager {
        let config = dir.join("real-am.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_wait: 1s\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let port = common::free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join("real-am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus-alertmanager");
        let am = RealAlertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = common::Client::new(am.url.clone());
        wait_for(
            "the real Alertmanager to be ready",
            Duration::from_secs(30),
            || client.try_get("/-/ready").is_ok_and(|r| r.status == 200),
        );
        am
    }
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const RULES: &str = r#"groups:
  - name: node
    interval: 1s
    rules:
      - record: instance:load:max
        expr: max by (instance) (load)
      - alert: HighLoad
        expr: load > 1
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} load is {{ $value }}"
"#;

fn silt_config(rules: &Path, am_config: &Path, real_am: &str) -> String {
    format!(
        "rule_files: [{rules:?}]\n\
         alerting:\n  config_file: {am_config:?}\n  alertmanagers: [{real_am:?}]\n\
         rules:\n  external_url: http://silt.example:9300\n",
        rules = rules.display().to_string(),
        am_config = am_config.display().to_string(),
    )
}

#[test]
fn rules_notify_webhook_and_real_alertmanager() {
    let Some(am_bin) = common::require_program("prometheus-alertmanager") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start();
    let real = RealAlertmanager::start(&am_bin, dir.path());
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let am_config = dir.path().join("am.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {}/hook\n",
            sink.url
        ),
    )
    .unwrap();
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: silt_config(&rules, &am_config, &real.url),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();
    // Samples covering the next two minutes, so every evaluation sees them.
    let now = common::now_ms();
    let points =
        |v: f64| -> Vec<(i64, f64)> { (0..8).map(|i| (now - 5_000 + i * 15_000, v)).collect() };
    client.write_ok(&proto::WriteRequest {
        timeseries: vec![
            series(&[("__name__", "load"), ("instance", "a")], &points(5.0)),
            series(&[("__name__", "load"), ("instance", "b")], &points(7.0)),
            series(&[("__name__", "load"), ("instance", "c")], &points(0.5)),
        ],
        metadata: Vec::new(),
    });

    // The webhook gets one notification for the group with both alerts.
    wait_for("the webhook notification", Duration::from_secs(60), || {
        sink.received().iter().any(|r| {
            serde_json::from_str::<Value>(&r.body)
                .is_ok_and(|v| v["alerts"].as_array().is_some_and(|a| a.len() == 2))
        })
    });
    let hit = sink
        .received()
        .into_iter()
        .find(|r| {
            serde_json::from_str::<Value>(&r.body)
                .is_ok_and(|v| v["alerts"].as_array().is_some_and(|a| a.len() == 2))
        })
        .unwrap();
    assert_eq!(hit.path, "/hook");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert!(
        hit.header("user-agent")
            .unwrap()
            .starts_with("Alertmanager/")
    );
    assert!(hit.body.ends_with('\n'), "newline-terminated body");
    let p: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(p["version"], "4");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["receiver"], "hook");
    assert_eq!(p["groupKey"], "{}:{alertname=\"HighLoad\"}");
    assert_eq!(p["truncatedAlerts"], 0);
    assert_eq!(
        p["groupLabels"],
        serde_json::json!({"alertname": "HighLoad"})
    );
    assert_eq!(
        p["commonLabels"],
        serde_json::json!({"alertname": "HighLoad", "severity": "page"})
    );
    assert_eq!(p["commonAnnotations"], serde_json::json!({}));
    let alerts = p["alerts"].as_array().unwrap();
    let a = &alerts[0];
    assert_eq!(a["status"], "firing");
    assert_eq!(
        a["labels"],
        serde_json::json!({"alertname": "HighLoad", "instance": "a", "severity": "page"})
    );
    assert_eq!(
        a["annotations"],
        serde_json::json!({"summary": "a load is 5"})
    );
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(a["startsAt"].as_str().unwrap().ends_with('Z'));
    let fp = a["fingerprint"].as_str().unwrap();
    assert!(
        fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
        "{fp}"
    );
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("http://silt.example:9300/graph?g0.expr="),
        "{a}"
    );
    assert_eq!(alerts[1]["labels"]["instance"], "b");

    // The real Alertmanager shows both alerts through its API.
    let real_client = common::Client::new(real.url.clone());
    wait_for(
        "the real Alertmanager to hold the alerts",
        Duration::from_secs(30),
        || {
            let v = real_client.get("/api/v2/alerts").json();
            v.as_array().is_some_and(|a| {
                a.iter()
                    .filter(|x| x["labels"]["alertname"] == "HighLoad")
                    .count()
                    == 2
            })
        },
    );
    let real_alerts = real_client.get("/api/v2/alerts").json();
    let ra = real_alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["labels"]["instance"] == "a")
        .unwrap()
        .clone();
    assert_eq!(ra["annotations"]["summary"], "a load is 5");
    assert_eq!(ra["status"]["state"], "active");
    assert_eq!(
        ra["fingerprint"], fp,
        "same fingerprint in both Alertmanagers"
    );

    // Silt's own views: rules, alerts, ALERTS series, recording rule,
    // built-in Alertmanager API, history.
    let rules_json = common::success_data(&client.get("/api/v1/rules"));
    let group = &rules_json["groups"][0];
    assert_eq!(group["name"], "node");
    for rule in group["rules"].as_array().unwrap() {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    let firing = common::success_data(&client.get("/api/v1/alerts"));
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 2, "{firing}");
    wait_for("the ALERTS series", Duration::from_secs(30), || {
        let r = client.get_query(
            "/api/v1/query",
            &[("query", "ALERTS{alertstate=\"firing\"}")],
        );
        common::success_data(&r)["result"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    let rec = client.get_query("/api/v1/query", &[("query", "instance:load:max")]);
    assert_eq!(
        common::success_data(&rec)["result"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let am_alerts = client.get("/api/v2/alerts").json();
    assert_eq!(am_alerts.as_array().unwrap().len(), 2, "{am_alerts}");
    let history = common::success_data(
        &client.get_query("/api/v1/alerts/history", &[("alertname", "HighLoad")]),
    );
    assert!(
        history.as_array().is_some_and(|h| h.len() >= 2),
        "state changes recorded: {history}"
    );
    silt.stop();
}

#[test]
fn bad_reload_keeps_the_running_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: format!("rule_files: [{:?}]\n", rules.display().to_string()),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();
    std::fs::write(
        &rules,
        "groups:\n  - name: node\n    rules:\n      - alert: Broken\n        expr: load >\n",
    )
    .unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("rules.yml: 5:15:"),
        "names file and line: {}",
        r.body
    );
    let groups = common::success_data(&client.get("/api/v1/rules"));
    let names: Vec<&str> = groups["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["instance:load:max", "HighLoad"]);

    // A good file reloads.
    std::fs::write(&rules, RULES.replace("HighLoad", "VeryHighLoad")).unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    let groups = common::success_data(&client.get("/api/v1/rules"));
    assert_eq!(groups["groups"][0]["rules"][1]["name"], "VeryHighLoad");
    silt.stop();
}

/// A rule whose query fails when evaluated shows `health: err` and its
/// `lastError` in `/api/v1/rules`, is counted on `/metrics`, and the other
/// rules of its group still run.
#[test]
fn failing_rule_reports_its_error_and_the_group_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    // Renaming both series to one name gives two series with the same
    // labels: an evaluation error, not a parse error.
    std::fs::write(
        &rules,
        r#"groups:
  - name: mixed
    interval: 1s
    rules:
      - record: broken:same_labels
        expr: label_replace({__name__=~"m_a|m_b"}, "__name__", "m", "", "")
      - record: fine:sum
        expr: sum(m_a)
"#,
    )
    .unwrap();
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: format!("rule_files: [{:?}]\n", rules.display().to_string()),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();
    let now = common::now_ms();
    let points: Vec<(i64, f64)> = (0..10).map(|i| (now - 9_000 + i * 1_000, 1.0)).collect();
    client.write_ok(&common::proto::WriteRequest {
        timeseries: vec![
            common::series(&[("__name__", "m_a"), ("x", "1")], &points),
            common::series(&[("__name__", "m_b"), ("x", "1")], &points),
        ],
        metadata: vec![],
    });
    let rule = |i: usize| -> serde_json::Value {
        common::success_data(&client.get("/api/v1/rules"))["groups"][0]["rules"][i].clone()
    };
    wait_for("the broken rule to fail", Duration::from_secs(20), || {
        rule(0)["health"] == "err"
    });
    let broken = rule(0);
    let error = broken["lastError"].as_str().unwrap_or_default();
    assert!(error.contains("same labelset"), "lastError: {broken}");
    wait_for("the other rule to run", Duration::from_secs(20), || {
        rule(1)["health"] == "ok"
    });
    // Prometheus omits an empty lastError.
    assert!(rule(1)["lastError"].is_null(), "{}", rule(1));
    let metrics = client.get("/metrics").body;
    let failures: f64 = metrics
        .lines()
        .find(|l| l.starts_with("silt_rule_evaluation_failures_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failure counter in /metrics"));
    assert!(failures >= 1.0, "failures counted: {failures}");
    silt.stop();
}

/// A reload re-reads Silt's own configuration file: a rule file named
/// only after the start is loaded; a broken file is refused and the running
/// rules stay; a setting that needs a restart is named in the log.
#[test]
fn reload_rereads_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let silt = Silt::start(&dir.path().join("data"));
    let client = silt.client();
    let groups = common::success_data(&client.get("/api/v1/rules"));
    assert_eq!(groups["groups"], serde_json::json!([]));

    let config = silt.config_path().to_owned();
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{original}rule_files: [{:?}]\nquery:\n  max_samples: 1234\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    let groups = common::success_data(&client.get("/api/v1/rules"));
    assert_eq!(groups["groups"][0]["rules"][1]["name"], "HighLoad");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !silt.logs().contains("only after a restart") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = silt.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("only after a restart"))
        .unwrap_or_else(|| panic!("no restart warning in:\n{logs}"));
    assert!(line.contains("query"), "{line}");
    // The status API shows what is in effect: the new rule file, the
    // query limits as started.
    let yaml = common::success_data(&client.get("/api/v1/status/config"))["yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(yaml.contains("rules.yml"), "{yaml}");
    assert!(!yaml.contains("1234"), "{yaml}");
    let info = common::success_data(&client.get("/api/v1/status/runtimeinfo"));
    assert_eq!(info["reloadConfigSuccess"], true);

    std::fs::write(&config, format!("{original}rule_files: [\n")).unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("configuration"), "{}", r.body);
    let groups = common::success_data(&client.get("/api/v1/rules"));
    assert_eq!(groups["groups"][0]["rules"][1]["name"], "HighLoad");
    let info = common::success_data(&client.get("/api/v1/status/runtimeinfo"));
    assert_eq!(info["reloadConfigSuccess"], false);
    silt.stop();
}

/// A bad Alertmanager configuration on reload is refused with its file and
/// line, and the running routing (receivers, route) stays in force.
#[test]
fn bad_alertmanager_config_reload_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let am = dir.path().join("am.yml");
    let good = "route:\n  receiver: team-a\nreceivers:\n  - name: team-a\n    webhook_configs:\n      - url: http://127.0.0.1:9/hook\n";
    std::fs::write(&am, good).unwrap();
    let silt = Silt::start_with(
        &dir.path().join("data"),
        SiltOptions {
            extra_config: format!("alerting:\n  config_file: {:?}\n", am.display().to_string()),
            ..SiltOptions::default()
        },
    );
    let client = silt.client();
    let receivers = |client: &common::Client| -> Vec<String> {
        let r = client.get("/api/v2/receivers");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(receivers(&client), ["team-a"]);

    // The route names a receiver that does not exist (line 2).
    std::fs::write(
        &am,
        "route:\n  receiver: nobody\nreceivers:\n  - name: team-b\n",
    )
    .unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("am.yml"), "names the file: {}", r.body);
    assert!(r.body.contains("nobody"), "names the receiver: {}", r.body);
    assert_eq!(receivers(&client), ["team-a"], "the running config stays");

    // YAML that does not parse: the message has the line.
    std::fs::write(&am, "route:\n  receiver: team-a\n receivers: [\n").unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains("am.yml:3:"),
        "names file and line: {}",
        r.body
    );
    assert_eq!(receivers(&client), ["team-a"]);

    // A good file reloads.
    std::fs::write(&am, good.replace("team-a", "team-c")).unwrap();
    let r = client.post_empty("/-/reload");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(receivers(&client), ["team-c"]);
    silt.stop();
}

/// `silt check rules` and `promtool check rules` agree on good and bad
/// files; Silt's errors name the file and line.
#[test]
fn check_rules_agrees_with_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("good.yml", RULES),
        (
            "bad_expr.yml",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
        ),
        (
            "bad_both.yml",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
        ),
        (
            "dup_group.yml",
            "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n",
        ),
        ("unknown_field.yml", "groups:\n  - name: g\n    rulez: []\n"),
        (
            "for_on_record.yml",
            "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up\n        for: 5m\n",
        ),
    ];
    let promtool = common::require_program("promtool");
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let silt = Command::new(env!("CARGO_BIN_EXE_silt"))
            .args(["check", "rules"])
            .arg(&path)
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&silt.stdout),
            String::from_utf8_lossy(&silt.stderr)
        );
        let good = name == "good.yml";
        assert_eq!(silt.status.success(), good, "{name}: {out}");
        if !good {
            assert!(
                out.contains(&format!("{name}:")),
                "{name}: file:line in {out}"
            );
        }
        if let Some(bin) = &promtool {
            let p = Command::new(bin)
                .args(["check", "rules"])
                .arg(&path)
                .output()
                .unwrap();
            assert_eq!(
                p.status.success(),
                silt.status.success(),
                "{name}: promtool says {}{}",
                String::from_utf8_lossy(&p.stdout),
                String::from_utf8_lossy(&p.stderr)
            );
        }
    }
}
