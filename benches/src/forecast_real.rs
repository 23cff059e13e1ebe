//! Real series for the forecasting backtest: node_exporter metrics read
//! from a Prometheus-compatible `query_range` API (paged under the
//! 11,000-points-per-series limit) and written as `/api/v1/export` JSON
//! lines, and the horizons and cut-offs a recording of a given length can
//! test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::forecast_gen::{DAY, HOUR, MIN};

/// Why real series cannot be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },
    #[error("query `{query}`: unexpected answer: {message}")]
    BadAnswer { query: String, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The node_exporter series the backtest reads, as (name written into the
/// export's `__name__`, PromQL expression). Counters are turned into
/// per-second rates over one minute; pseudo filesystems and loopback,
/// virtual network and zram devices are left out.
pub const NODE_QUERIES: [(&str, &str); 12] = [
    (
        "node_filesystem_avail_bytes",
        r#"node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|proc|sysfs|fuse.*"}"#,
    ),
    (
        "node_memory_MemAvailable_bytes",
        "node_memory_MemAvailable_bytes",
    ),
    ("node_memory_Cached_bytes", "node_memory_Cached_bytes"),
    ("node_load1", "node_load1"),
    ("node_load15", "node_load15"),
    (
        "cpu_busy_ratio",
        r#"1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{mode="idle"}[1m]))"#,
    ),
    (
        "cpu_iowait_ratio",
        r#"avg without (cpu, mode) (rate(node_cpu_seconds_total{mode="iowait"}[1m]))"#,
    ),
    (
        "network_receive_bytes_rate",
        r#"rate(node_network_receive_bytes_total{device!~"lo|ifb.*|veth.*|docker.*"}[1m])"#,
    ),
    (
        "network_transmit_bytes_rate",
        r#"rate(node_network_transmit_bytes_total{device!~"lo|ifb.*|veth.*|docker.*"}[1m])"#,
    ),
    (
        "disk_written_bytes_rate",
        r#"rate(node_disk_written_bytes_total{device!~"zram.*|loop.*|ram.*"}[1m])"#,
    ),
    (
        "disk_io_time_ratio",
        r#"rate(node_disk_io_time_seconds_total{device!~"zram.*|loop.*|ram.*"}[1m])"#,
    ),
    (
        "context_switches_rate",
        "rate(node_context_switches_total[1m])",
    ),
];

/// Points per series and request: under the API's limit of 11,000.
pub const PAGE_POINTS: i64 = 10_000;

/// What a fetch wrote.
#[derive(Debug, Clone, Default)]
pub struct FetchSummary {
    pub series: usize,
    pub samples: usize,
    pub requests: usize,
    /// First and last timestamp found (ms), when any.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// One series being assembled from pages.
struct Assembled {
    metric: serde_json::Map<String, serde_json::Value>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
}

/// The pages `[start, end]` is read in at `step_ms`: at most
/// [`PAGE_POINTS`] points each, consecutive, not overlapping.
pub fn pages(start_ms: i64, end_ms: i64, step_ms: i64) -> Vec<(i64, i64)> {
    let step = step_ms.max(1);
    let mut out = Vec::new();
    let mut s = start_ms;
    while s <= end_ms {
        let e = (s + (PAGE_POINTS - 1) * step).min(end_ms);
        out.push((s, e));
        s = e + step;
    }
    out
}

/// Reads [`NODE_QUERIES`] over `[end - lookback, end]` at `step_ms` from
/// the `query_range` API at `base` (e.g. `http://127.0.0.1:19090`) and
/// writes one export JSON line per series to `out`.
pub fn fetch(
    base: &str,
    end_ms: i64,
    lookback_ms: i64,
    step_ms: i64,
    out: &Path,
) -> Result<FetchSummary, FetchError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let step = step_ms.max(1000);
    let end = end_ms - end_ms.rem_euclid(step);
    let start = end - lookback_ms.max(step);
    let url = format!("{}/api/v1/query_range", base.trim_end_matches('/'));
    let mut summary = FetchSummary::default();
    let mut series: BTreeMap<String, Assembled> = BTreeMap::new();
    for (name, query) in NODE_QUERIES {
        for (s, e) in pages(start, end, step) {
            let body = get(&agent, &url, query, s, e, step)?;
            summary.requests += 1;
            add_page(&body, name, query, &mut series)?;
        }
    }
    let mut text = String::new();
    for a in series.values() {
        if a.timestamps.is_empty() {
            continue;
        }
        summary.series += 1;
        summary.samples += a.timestamps.len();
        summary.first_ms = Some(
            summary
                .first_ms
                .map_or(a.timestamps[0], |f| f.min(a.timestamps[0])),
        );
        let last = a.timestamps[a.timestamps.len() - 1];
        summary.last_ms = Some(summary.last_ms.map_or(last, |l| l.max(last)));
        let values: Vec<serde_json::Value> = a
            .values
            .iter()
            .map(|v| serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into))
            .collect();
        let line = serde_json::json!({
            "metric": a.metric,
            "values": values,
            "timestamps": a.timestamps,
        });
        let _ = writeln!(text, "{line}");
    }
    std::fs::write(out, text).map_err(|source| FetchError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(summary)
}

fn get(
    agent: &ureq::Agent,
    url: &str,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<String, FetchError> {
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let http = |message: String| FetchError::Http {
        url: url.to_string(),
        message,
    };
    let mut resp = agent
        .get(url)
        .query("query", query)
        .query("start", secs(start_ms))
        .query("end", secs(end_ms))
        .query("step", secs(step_ms))
        .call()
        .map_err(|e| http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .map_err(|e| http(e.to_string()))?;
    if status != 200 {
        let head: String = body.chars().take(300).collect();
        return Err(http(format!("HTTP {status}: {head}")));
    }
    Ok(body)
}

/// Adds one `query_range` answer (a matrix) to `series`, keyed by the
/// labels with `__name__` set to `name`.
fn add_page(
    body: &str,
    name: &str,
    query: &str,
    series: &mut BTreeMap<String, Assembled>,
) -> Result<(), FetchError> {
    let bad = |message: &str| FetchError::BadAnswer {
        query: query.to_string(),
        message: message.to_string(),
    };
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| bad(&e.to_string()))?;
    if v.get("status").and_then(|s| s.as_str()) != Some("success") {
        let err = v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no status");
        return Err(bad(err));
    }
    let result = v
        .pointer("/data/result")
        .and_then(|r| r.as_array())
        .ok_or_else(|| bad("no data.result array"))?;
    for r in result {
        let mut metric = r
            .get("metric")
            .and_then(|m| m.as_object())
            .cloned()
            .unwrap_or_default();
        metric.insert("__name__".into(), name.into());
        let key = serde_json::Value::Object(metric.clone()).to_string();
        let a = series.entry(key).or_insert_with(|| Assembled {
            metric,
            timestamps: Vec::new(),
            values: Vec::new(),
        });
        let points = r
            .get("values")
            .and_then(|p| p.as_array())
            .ok_or_else(|| bad("a series without values"))?;
        for p in points {
            let (Some(t), Some(x)) = (
                p.get(0).and_then(|t| t.as_f64()),
                p.get(1).and_then(|x| x.as_str()),
            ) else {
                return Err(bad("a point is not [time, \"value\"]"));
            };
            let t = (t * 1000.0).round() as i64;
            let x = parse_value(x).ok_or_else(|| bad("a value is not a number"))?;
            if a.timestamps.last().is_some_and(|&l| l >= t) {
                continue;
            }
            a.timestamps.push(t);
            a.values.push(x);
        }
    }
    Ok(())
}

/// A sample value as Prometheus prints it (`NaN`, `+Inf`, `-Inf` too).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Horizons a recording can be tested at, longest last.
pub const HORIZON_LADDER: [(i64, &str); 7] = [
    (5 * MIN, "5 m"),
    (15 * MIN, "15 m"),
    (30 * MIN, "30 m"),
    (HOUR, "1 h"),
    (6 * HOUR, "6 h"),
    (DAY, "24 h"),
    (3 * DAY, "72 h"),
];

/// How a recording of a given span is backtested.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Up to four horizons (ms, label), shortest first.
    pub horizons: Vec<(i64, String)>,
    /// Sample spacing the series are regularised to.
    pub step_ms: i64,
    /// Cut-offs, as distances back from the end of the recording.
    pub cutoffs_back_ms: Vec<i64>,
    /// Least history before any cut-off.
    pub min_history_ms: i64,
}

/// The backtest plan for a recording of `span_ms`: the (up to) four
/// longest horizons of [`HORIZON_LADDER`] no longer than a quarter of the
/// span (so the earliest cut-off still has half the span as history);
/// cut-offs from `longest horizon` before the end, `spacing` apart (13 h
/// from a 24-hour horizon on, a third of the longest horizon below it),
/// at most `max_cutoffs`, each with at least half the span before it.
/// `None` when the span is too short for the shortest horizon.
pub fn plan(span_ms: i64, max_cutoffs: usize) -> Option<Plan> {
    let fits: Vec<(i64, &str)> = HORIZON_LADDER
        .iter()
        .copied()
        .filter(|&(h, _)| 4 * h <= span_ms)
        .collect();
    let skip = fits.len().saturating_sub(4);
    let horizons: Vec<(i64, String)> = fits[skip..]
        .iter()
        .map(|&(h, l)| (h, l.to_string()))
        .collect();
    let h_max = horizons.last()?.0;
    let step_ms = if span_ms < DAY {
        15_000
    } else if span_ms < 7 * DAY {
        60_000
    } else {
        5 * MIN
    };
    let spacing = if h_max >= DAY { 13 * HOUR } else { h_max / 3 };
    let min_history_ms = span_ms / 2;
    let cutoffs_back_ms: Vec<i64> = (0..max_cutoffs.max(1) as i64)
        .map(|j| h_max + j * spacing)
        .take_while(|&back| span_ms - back >= min_history_ms)
        .collect();
    Some(Plan {
        horizons,
        step_ms,
        cutoffs_back_ms,
        min_history_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stay_under_the_point_limit_and_tile_the_range() {
        let p = pages(0, 30_000 * 15_000, 15_000);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], (0, (PAGE_POINTS - 1) * 15_000));
        for w in p.windows(2) {
            assert_eq!(w[1].0, w[0].1 + 15_000);
        }
        assert!(p.iter().all(|(s, e)| (e - s) / 15_000 < PAGE_POINTS));
        assert_eq!(p.last().unwrap().1, 30_000 * 15_000);
        assert_eq!(pages(5, 5, 1000), vec![(5, 5)]);
    }

    #[test]
    fn pages_are_assembled_per_series() {
        let mut series = BTreeMap::new();
        let page = |t0: f64| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"device":"eth0"}},"values":[[{t0},"1"],[{},"NaN"]]}}]}}}}"#,
                t0 + 15.0
            )
        };
        add_page(&page(100.0), "net", "q", &mut series).unwrap();
        add_page(&page(130.0), "net", "q", &mut series).unwrap();
        assert_eq!(series.len(), 1);
        let a = series.values().next().unwrap();
        assert_eq!(a.timestamps, vec![100_000, 115_000, 130_000, 145_000]);
        assert!(a.values[1].is_nan());
        assert_eq!(a.metric.get("__name__").unwrap(), "net");
        let err = add_page(
            r#"{"status":"error","error":"bad"}"#,
            "net",
            "q",
            &mut series,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad"));
    }

    #[test]
    fn plans_follow_the_span() {
        assert_eq!(plan(10 * MIN, 8), None);
        let p = plan(2 * HOUR, 8).unwrap();
        let labels: Vec<&str> = p.horizons.iter().map(|h| h.1.as_str()).collect();
        assert_eq!(labels, ["5 m", "15 m", "30 m"]);
        assert_eq!(p.step_ms, 15_000);
        assert_eq!(p.cutoffs_back_ms, [30 * MIN, 40 * MIN, 50 * MIN, 60 * MIN]);
        let p = plan(21 * DAY, 8).unwrap();
        let labels: Vec<&str> = p.horizons.iter().map(|h| h.1.as_str()).collect();
        assert_eq!(labels, ["1 h", "6 h", "24 h", "72 h"]);
        assert_eq!(p.cutoffs_back_ms.len(), 8);
        assert_eq!(p.step_ms, 5 * MIN);
    }
}
