//! A real sender: Debian's `prometheus` scrapes Debian's
//! `prometheus-node-exporter` every second and remote-writes to Silt. The
//! series and samples Prometheus stored itself (read from its own API) must
//! have arrived in Silt exactly, with metadata, and Prometheus must count no
//! failed sample, although Silt is killed (SIGKILL) and restarted on the same
//! address in the middle of it.
//!
//! Needs `/usr/bin/prometheus` and `/usr/bin/prometheus-node-exporter`
//! (`.ci/run` installs them); without them the test fails in CI and skips
//! locally.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Silt, SiltOptions, Value};

/// A helper process killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}; log:\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGTERM lets it clean up.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- {} log (last lines) ---\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

fn wait_http(client: &Client, path: &str, proc: &mut Proc, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if matches!(client.try_get(path), Ok(r) if r.status == 200) {
            return;
        }
        proc.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} not answering {path} after {timeout:?}",
            proc.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until Prometheus holds at least `n` scrapes of node_exporter.
fn wait_for_scrapes(prom: &Client, prom_proc: &mut Proc, node: &mut Proc, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        prom_proc.assert_running();
        node.assert_running();
        let up = prom_query(
            prom,
            "count_over_time(up{job=\"node\"}[1m])",
            common::now_ms(),
        );
        let scrapes = up
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if scrapes >= n as f64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape node_exporter {n} times: {up:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn prometheus_config(dir: &Path, node: &str, silt: &str) -> PathBuf {
    let cfg = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{node}']
remote_write:
  - url: http://{silt}/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 30ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 1s
"#
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Prometheus instant query; returns `data.result`.
fn prom_query(prom: &Client, query: &str, time_ms: i64) -> Vec<Value> {
    let r = prom.get_query(
        "/api/v1/query",
        &[("query", query), ("time", &common::ms_param(time_ms))],
    );
    let data = common::success_data(&r);
    data["result"].as_array().cloned().unwrap_or_default()
}

fn metric_map(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v.clone()).expect("label map")
}

/// A value as the comparison sees it: exact bits, except that every NaN is
/// one class (the Prometheus API prints any NaN as "NaN").
fn comparable(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        f64::NAN.to_bits()
    } else {
        bits
    }
}

type Samples = BTreeMap<BTreeMap<String, String>, Vec<(i64, u64)>>;

/// Samples of `{job="node"}` Prometheus stored in `(end - window, end]`.
fn prometheus_samples(prom: &Client, end_ms: i64, window_s: i64) -> Samples {
    let mut out = Samples::new();
    for series in prom_query(prom, &format!("{{job=\"node\"}}[{window_s}s]"), end_ms) {
        let samples = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, comparable(common::json_value_bits(&p[1])))
            })
            .filter(|(t, _)| *t > end_ms - window_s * 1000 && *t <= end_ms)
            .collect::<Vec<_>>();
        if !samples.is_empty() {
            out.insert(metric_map(&series["metric"]), samples);
        }
    }
    out
}

/// The same from Silt's export (stale markers are not part of Prometheus's
/// range query results, so they are left out here too).
fn silt_samples(silt: &Client, end_ms: i64, window_s: i64) -> Samples {
    let mut out = Samples::new();
    for e in silt.export(r#"{job="node"}"#, end_ms - window_s * 1000, end_ms) {
        let samples: Vec<(i64, u64)> = e
            .samples
            .iter()
            .filter(|(t, v)| {
                *t > end_ms - window_s * 1000 && *t <= end_ms && *v != common::STALE_NAN
            })
            .map(|(t, v)| (*t, comparable(*v)))
            .collect();
        if !samples.is_empty() {
            out.insert(e.metric, samples);
        }
    }
    out
}

fn describe_difference(want: &Samples, got: &Samples) -> String {
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.contains_key(*k))
        .take(5)
        .collect();
    let differing: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .take(3)
        .map(|(k, v)| (k, v, &got[k]))
        .collect();
    format!(
        "prometheus has {} series, silt {}; missing in silt (first 5): {missing:?}; extra in silt: {extra:?}; differing samples (first 3, prometheus then silt): {differing:?}",
        want.len(),
        got.len()
    )
}

#[test]
fn prometheus_remote_write_of_node_exporter_arrives_exactly() {
    let (Some(prometheus), Some(node_exporter)) = (
        common::require_program("prometheus"),
        common::require_program("prometheus-node-exporter"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // A fixed port, so that Silt can be restarted under the sender.
    let opts = SiltOptions {
        listen: Some(format!("127.0.0.1:{}", common::free_port())),
        ..SiltOptions::default()
    };
    let mut silt = Silt::start_with(&tmp.path().join("silt"), opts);
    let silt_client = silt.client();

    let node_addr = format!("127.0.0.1:{}", common::free_port());
    let mut node = Proc::spawn(
        "node_exporter",
        Command::new(node_exporter).arg(format!("--web.listen-address={node_addr}")),
        tmp.path().join("node_exporter.log"),
    );
    wait_http(
        &Client::new(format!("http://{node_addr}")),
        "/metrics",
        &mut node,
        Duration::from_secs(30),
    );

    let prom_addr = format!("127.0.0.1:{}", common::free_port());
    let config = prometheus_config(tmp.path(), &node_addr, &silt.addr);
    let mut prom_proc = Proc::spawn(
        "prometheus",
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--log.level=info"),
        tmp.path().join("prometheus.log"),
    );
    let prom = Client::new(format!("http://{prom_addr}"));
    wait_http(&prom, "/-/ready", &mut prom_proc, Duration::from_secs(60));

    // Let Prometheus scrape and send for a few seconds, crash Silt (SIGKILL)
    // and start it again on the same address: Prometheus retries what was
    // not acknowledged, so nothing may be missing.
    let window_s: i64 = 12;
    wait_for_scrapes(&prom, &mut prom_proc, &mut node, 4);
    silt = silt.crash_and_restart();
    wait_for_scrapes(&prom, &mut prom_proc, &mut node, window_s as usize + 2);

    // Compare a window that ended a moment ago; remote write lags a little,
    // so poll until Silt has everything (or time runs out).
    let end_ms = common::now_ms() - 1000;
    let want = prometheus_samples(&prom, end_ms, window_s);
    assert!(
        want.len() > 100,
        "node_exporter should give hundreds of series, got {}",
        want.len()
    );
    assert!(
        want.keys()
            .any(|k| k.get("__name__").map(String::as_str) == Some("node_load1"))
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = silt_samples(&silt_client, end_ms, window_s);
        if got == want || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        got == want,
        "samples differ: {}",
        describe_difference(&want, &got)
    );
    let samples: usize = want.values().map(Vec::len).sum();
    eprintln!(
        "{} series and {samples} samples of Prometheus's own storage found exactly in Silt",
        want.len()
    );

    // The series API agrees on the same window.
    let names: BTreeSet<String> = want
        .keys()
        .filter_map(|k| k.get("__name__").cloned())
        .collect();
    let silt_series: BTreeSet<BTreeMap<String, String>> = silt_client
        .series(r#"{job="node"}"#, end_ms - window_s * 1000 + 1, end_ms)
        .into_iter()
        .collect();
    for k in want.keys() {
        assert!(silt_series.contains(k), "{k:?} missing from /api/v1/series");
    }

    // Metadata arrived (Prometheus sends it in separate requests).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let meta = common::success_data(
            &silt_client.get_query("/api/v1/metadata", &[("metric", "node_load1")]),
        );
        if let Some(m) = meta["node_load1"].as_array().and_then(|a| a.first()) {
            assert_eq!(m["type"], "gauge", "{meta}");
            assert!(m["help"].as_str().is_some_and(|h| !h.is_empty()), "{meta}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no metadata for node_load1 in silt: {meta}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Prometheus saw every request accepted (its own /metrics).
    let own = prom.get("/metrics").body;
    for metric in [
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_metadata_failed_total",
    ] {
        let lines: Vec<&str> = own.lines().filter(|l| l.starts_with(metric)).collect();
        assert!(!lines.is_empty(), "prometheus does not report {metric}");
        for line in lines {
            assert!(line.ends_with(" 0"), "Prometheus counted failures: {line}");
        }
    }
    let sent: f64 = own
        .lines()
        .filter(|l| l.starts_with("prometheus_remote_storage_samples_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        sent >= samples as f64,
        "Prometheus reports {sent} samples sent, fewer than the {samples} compared"
    );
    eprintln!("{} metric names compared", names.len());
    drop(prom_proc);
    drop(node);
    silt.stop();
}
