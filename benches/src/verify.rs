//! Reads back what each system stored and compares sample and series counts with what was
//! sent, per metric name, so a fast but lossy system is caught.
//!
//! Silt and VictoriaMetrics are read raw through `/api/v1/export` (JSON lines, one series per
//! line); Prometheus, which has no raw export, through `sum(count_over_time(..))` and
//! `count(count_over_time(..))` instant queries covering the whole range.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::server::{Server, System};
use crate::workload::{SCRAPE_INTERVAL_MS, Workload};

/// Result of reading everything back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountCheck {
    pub method: String,
    pub expected_samples: u64,
    pub found_samples: u64,
    pub expected_series: u64,
    pub found_series: u64,
    /// Metric names whose counts differ: (name, expected samples, found samples).
    pub mismatches: Vec<(String, u64, u64)>,
    pub secs: f64,
}

impl CountCheck {
    pub fn ok(&self) -> bool {
        self.expected_samples == self.found_samples && self.expected_series == self.found_series
    }
}

#[derive(Deserialize)]
struct ExportLine {
    timestamps: Vec<i64>,
}

/// Count what `server` holds for every metric name of `w`.
pub fn check(server: &Server, w: &Workload, timeout: Duration) -> Result<CountCheck> {
    check_matching(server, w, "", timeout)
}

/// [`check`], every selector narrowed by `extra` (e.g. `job="node"`, when other data shares
/// the metric names).
pub fn check_matching(
    server: &Server,
    w: &Workload,
    extra: &str,
    timeout: Duration,
) -> Result<CountCheck> {
    let t0 = Instant::now();
    let per_family = w.series_per_family();
    let mut c = CountCheck {
        method: match server.system {
            System::Prometheus => "sum/count(count_over_time(name[range])) per metric name",
            _ => "/api/v1/export per metric name",
        }
        .into(),
        ..Default::default()
    };
    // A window that covers every sample: from before the first scrape to the end.
    let start_ms = w.start_ms - SCRAPE_INTERVAL_MS;
    let end_ms = w.spec.end_ms;
    for (f, name) in w.families.iter().enumerate() {
        if t0.elapsed() > timeout {
            bail!("count check exceeded {timeout:?}");
        }
        let exp_series = per_family[f];
        let exp_samples = exp_series * w.scrapes;
        let (series, samples) = match server.system {
            System::Prometheus => prom_counts(server, &selector(name, extra), start_ms, end_ms)?,
            _ => export_counts(server, &selector(name, extra), start_ms, end_ms)?,
        };
        c.expected_series += exp_series;
        c.expected_samples += exp_samples;
        c.found_series += series;
        c.found_samples += samples;
        if series != exp_series || samples != exp_samples {
            c.mismatches.push((name.clone(), exp_samples, samples));
        }
    }
    c.secs = t0.elapsed().as_secs_f64();
    Ok(c)
}

fn secs(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// `{__name__="name"}`, or `{__name__="name",extra}`.
fn selector(name: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!("{{__name__=\"{name}\"}}")
    } else {
        format!("{{__name__=\"{name}\",{extra}}}")
    }
}

fn export_counts(server: &Server, sel: &str, start_ms: i64, end_ms: i64) -> Result<(u64, u64)> {
    let url = format!("{}/api/v1/export", server.base());
    let mut resp = server
        .agent()
        .get(&url)
        .query("match[]", sel)
        .query("start", secs(start_ms))
        .query("end", secs(end_ms))
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        bail!("export of {sel}: {status} {}", body.trim());
    }
    let reader = BufReader::with_capacity(1 << 20, resp.body_mut().as_reader());
    let (mut series, mut samples) = (0u64, 0u64);
    for line in reader.lines() {
        let line = line.context("reading export")?;
        if line.trim().is_empty() {
            continue;
        }
        let l: ExportLine =
            serde_json::from_str(&line).with_context(|| format!("export line of {sel}"))?;
        series += 1;
        samples += l.timestamps.len() as u64;
    }
    Ok((series, samples))
}

fn prom_counts(server: &Server, sel: &str, start_ms: i64, end_ms: i64) -> Result<(u64, u64)> {
    let range_s = (end_ms - start_ms) / 1000 + 1;
    let inner = format!("count_over_time({sel}[{range_s}s])");
    let samples = prom_scalar(server, &format!("sum({inner})"), end_ms)?;
    let series = prom_scalar(server, &format!("count({inner})"), end_ms)?;
    Ok((series, samples))
}

fn prom_scalar(server: &Server, q: &str, at_ms: i64) -> Result<u64> {
    let url = format!("{}/api/v1/query", server.base());
    let mut resp = server
        .agent()
        .get(&url)
        .query("query", q)
        .query("time", secs(at_ms))
        .call()
        .with_context(|| format!("GET {url}?query={q}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status != 200 {
        bail!("query {q}: {status} {}", body.trim());
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let result = v["data"]["result"]
        .as_array()
        .ok_or_else(|| anyhow!("query {q}: unexpected answer {body}"))?;
    match result.first() {
        None => Ok(0),
        Some(r) => r["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|x| x as u64)
            .ok_or_else(|| anyhow!("query {q}: bad value in {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_the_metric_and_extra_matchers() {
        assert_eq!(selector("up", ""), r#"{__name__="up"}"#);
        assert_eq!(
            selector("up", r#"job="node""#),
            r#"{__name__="up",job="node"}"#
        );
    }

    #[test]
    fn seconds_keep_millisecond_precision() {
        assert_eq!(secs(1_700_000_000_123), "1700000000.123");
        assert_eq!(secs(5), "0.005");
    }

    #[test]
    fn export_line_parses_victoria_metrics_format() {
        let l: ExportLine = serde_json::from_str(
            r#"{"metric":{"__name__":"up","job":"node"},"values":[1,1,1],"timestamps":[1,2,3]}"#,
        )
        .unwrap();
        assert_eq!(l.timestamps.len(), 3);
    }
}
