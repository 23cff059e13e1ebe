//! What the rules benchmark reads from a running server: its rule-evaluation metrics
//! (Prometheus' `prometheus_rule_*` families; Silt exposes the same ones as `silt_rule_*`),
//! its CPU time, and `/api/v1/rules` (per-rule evaluation time and health). Consecutive
//! snapshots one interval apart give one evaluation round each.

use std::collections::HashMap;
use std::fs;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::server::{Server, System};

/// The prefix of the rule metrics of `s`.
pub fn metric_prefix(s: System) -> &'static str {
    match s {
        System::Silt => "silt",
        _ => "prometheus",
    }
}

/// Rule-evaluation counters of one server at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub at: Instant,
    /// `<p>_rule_group_duration_seconds` `_sum` and `_count`: every group iteration.
    pub group_sum: f64,
    pub group_count: f64,
    /// `<p>_rule_evaluation_duration_seconds` `_sum` and `_count`: every rule evaluation.
    pub rule_sum: f64,
    pub rule_count: f64,
    /// `<p>_rule_group_iterations_missed_total`, summed over groups.
    pub missed: f64,
    /// `<p>_rule_evaluation_failures_total`, summed over groups.
    pub failures: f64,
    /// Largest `<p>_rule_group_last_duration_seconds`.
    pub slowest_group: f64,
    /// Groups with a `<p>_rule_group_rules` series, and their rules.
    pub groups: u64,
    pub rules: u64,
    /// Server CPU seconds (user + system).
    pub cpu: f64,
    /// CPU seconds the whole machine was busy (all processes).
    pub machine_busy: f64,
}

/// A Prometheus text-format value (`NaN`, `+Inf` included).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The rule metrics in a `/metrics` body (`prefix`: `silt` or `prometheus`).
pub fn parse_metrics(body: &str, prefix: &str) -> Snapshot {
    let mut s = Snapshot {
        at: Instant::now(),
        group_sum: 0.0,
        group_count: 0.0,
        rule_sum: 0.0,
        rule_count: 0.0,
        missed: 0.0,
        failures: 0.0,
        slowest_group: 0.0,
        groups: 0,
        rules: 0,
        cpu: 0.0,
        machine_busy: 0.0,
    };
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.trim_end().rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        let Some(rest) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("_rule_"))
        else {
            continue;
        };
        let Some(v) = parse_value(value) else {
            continue;
        };
        match rest {
            "group_duration_seconds_sum" => s.group_sum += v,
            "group_duration_seconds_count" => s.group_count += v,
            "evaluation_duration_seconds_sum" => s.rule_sum += v,
            "evaluation_duration_seconds_count" => s.rule_count += v,
            "group_iterations_missed_total" => s.missed += v,
            "evaluation_failures_total" => s.failures += v,
            "group_last_duration_seconds" => s.slowest_group = s.slowest_group.max(v),
            "group_rules" => {
                s.groups += 1;
                s.rules += v as u64;
            }
            _ => {}
        }
    }
    s
}

/// Busy CPU seconds of the whole machine since boot, from `/proc/stat`.
pub fn machine_busy_secs() -> f64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(cpu) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    total.saturating_sub(idle) as f64 / hz
}

/// Read `srv`'s rule metrics and CPU time now.
pub fn snapshot(srv: &Server) -> Result<Snapshot> {
    let url = format!("{}/metrics", srv.base());
    let mut r = srv
        .agent()
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .context("reading /metrics")?;
    if status != 200 {
        bail!("GET {url}: {status}");
    }
    let mut s = parse_metrics(&body, metric_prefix(srv.system));
    s.cpu = srv.cpu_secs()?;
    s.machine_busy = machine_busy_secs();
    Ok(s)
}

/// One evaluation interval of one server: the difference of two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub wall_secs: f64,
    /// Sum of the durations of the group iterations that ended in the interval.
    pub group_secs: f64,
    pub group_evals: u64,
    /// Sum of the rule evaluation durations in the interval.
    pub rule_secs: f64,
    pub rule_evals: u64,
    pub missed: u64,
    pub failures: u64,
    /// The slowest group's last duration at the end of the interval.
    pub slowest_group_secs: f64,
    /// The server's CPU seconds in the interval.
    pub cpu_secs: f64,
    /// CPU seconds every other process on the machine used in the interval.
    pub other_cpu_secs: f64,
}

impl Round {
    pub fn between(a: &Snapshot, b: &Snapshot) -> Round {
        let d = |x: f64, y: f64| (y - x).max(0.0);
        let cpu = d(a.cpu, b.cpu);
        Round {
            wall_secs: (b.at - a.at).as_secs_f64(),
            group_secs: d(a.group_sum, b.group_sum),
            group_evals: d(a.group_count, b.group_count).round() as u64,
            rule_secs: d(a.rule_sum, b.rule_sum),
            rule_evals: d(a.rule_count, b.rule_count).round() as u64,
            missed: d(a.missed, b.missed).round() as u64,
            failures: d(a.failures, b.failures).round() as u64,
            slowest_group_secs: b.slowest_group,
            cpu_secs: cpu,
            other_cpu_secs: (d(a.machine_busy, b.machine_busy) - cpu).max(0.0),
        }
    }
}

/// One rule as `/api/v1/rules` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRule {
    pub group: String,
    /// Position in its group.
    pub index: usize,
    pub name: String,
    pub health: String,
    pub last_error: Option<String>,
    pub evaluation_secs: f64,
}

#[derive(Deserialize)]
struct RulesBody {
    status: String,
    data: Option<RulesData>,
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RulesGroup>,
}

#[derive(Deserialize)]
struct RulesGroup {
    name: String,
    rules: Vec<RulesRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesRule {
    name: String,
    #[serde(default)]
    health: String,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    evaluation_time: f64,
}

/// Parse an `/api/v1/rules` answer.
pub fn parse_rules(body: &str) -> Result<Vec<ApiRule>> {
    let b: RulesBody = serde_json::from_str(body).context("parsing /api/v1/rules")?;
    if b.status != "success" {
        bail!("/api/v1/rules: status {}", b.status);
    }
    let mut out = Vec::new();
    for g in b.data.map(|d| d.groups).unwrap_or_default() {
        for (index, r) in g.rules.into_iter().enumerate() {
            out.push(ApiRule {
                group: g.name.clone(),
                index,
                name: r.name,
                health: r.health,
                last_error: r.last_error.filter(|e| !e.is_empty()),
                evaluation_secs: r.evaluation_time,
            });
        }
    }
    Ok(out)
}

/// Fetch `srv`'s `/api/v1/rules`.
pub fn fetch_rules(srv: &Server) -> Result<Vec<ApiRule>> {
    let url = format!("{}/api/v1/rules", srv.base());
    let mut r = srv
        .agent()
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .context("reading /api/v1/rules")?;
    parse_rules(&body)
}

/// Per-rule evaluation time summed by key (e.g. template), with the rule count.
pub fn sum_by<K: std::hash::Hash + Eq>(
    rules: &[ApiRule],
    key: impl Fn(&ApiRule) -> Option<K>,
) -> HashMap<K, (f64, u64)> {
    let mut m: HashMap<K, (f64, u64)> = HashMap::new();
    for r in rules {
        if let Some(k) = key(r) {
            let e = m.entry(k).or_default();
            e.0 += r.evaluation_secs;
            e.1 += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROM: &str = r#"# HELP prometheus_rule_group_duration_seconds The duration of rule group evaluations.
# TYPE prometheus_rule_group_duration_seconds summary
prometheus_rule_group_duration_seconds{quantile="0.5"} 0.01
prometheus_rule_group_duration_seconds_sum 12.5
prometheus_rule_group_duration_seconds_count 40
prometheus_rule_evaluation_duration_seconds_sum 11
prometheus_rule_evaluation_duration_seconds_count 400
prometheus_rule_group_iterations_missed_total{rule_group="/r.yml;a"} 1
prometheus_rule_group_iterations_missed_total{rule_group="/r.yml;b"} 2
prometheus_rule_evaluation_failures_total{rule_group="/r.yml;a"} 0
prometheus_rule_group_last_duration_seconds{rule_group="/r.yml;a"} 0.25
prometheus_rule_group_last_duration_seconds{rule_group="/r.yml;b"} NaN
prometheus_rule_group_last_duration_seconds{rule_group="/r.yml;c"} 0.5
prometheus_rule_group_rules{rule_group="/r.yml;a"} 10
prometheus_rule_group_rules{rule_group="/r.yml;b"} 7
go_goroutines 50
"#;

    #[test]
    fn parses_prometheus_rule_metrics() {
        let s = parse_metrics(PROM, "prometheus");
        assert_eq!(s.group_sum, 12.5);
        assert_eq!(s.group_count, 40.0);
        assert_eq!(s.rule_sum, 11.0);
        assert_eq!(s.rule_count, 400.0);
        assert_eq!(s.missed, 3.0);
        assert_eq!(s.slowest_group, 0.5);
        assert_eq!((s.groups, s.rules), (2, 17));
        // Silt's names carry its own prefix; nothing else is read.
        let silt = PROM.replace("prometheus_", "silt_");
        assert_eq!(parse_metrics(&silt, "silt").group_sum, 12.5);
        assert_eq!(parse_metrics(&silt, "prometheus").group_sum, 0.0);
    }

    #[test]
    fn a_round_is_the_difference_of_two_snapshots() {
        let a = parse_metrics(PROM, "prometheus");
        let mut b = a;
        b.at = a.at + std::time::Duration::from_secs(15);
        b.group_sum += 3.0;
        b.group_count += 20.0;
        b.cpu = a.cpu + 4.0;
        b.machine_busy = a.machine_busy + 5.5;
        let r = Round::between(&a, &b);
        assert_eq!(r.wall_secs, 15.0);
        assert_eq!(r.group_secs, 3.0);
        assert_eq!(r.group_evals, 20);
        assert_eq!(r.cpu_secs, 4.0);
        assert_eq!(r.other_cpu_secs, 1.5);
        assert_eq!(r.missed, 0);
    }

    #[test]
    fn parses_the_rules_api() {
        let body = r#"{"status":"success","data":{"groups":[{"name":"g","file":"f","interval":15,
            "rules":[{"name":"r1","query":"up","health":"ok","evaluationTime":0.002,"lastEvaluation":"x","type":"recording"},
                     {"name":"A","query":"up","health":"err","lastError":"boom","evaluationTime":0.5,"type":"alerting","alerts":[]}]}]}}"#;
        let r = parse_rules(body).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].index, 1);
        assert_eq!(r[1].last_error.as_deref(), Some("boom"));
        let by = sum_by(&r, |x| Some(x.group.clone()));
        assert_eq!(by["g"], (0.502, 2));
    }
}
