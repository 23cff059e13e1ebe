//! Capacity planning over node_exporter metrics: per host the average,
//! 95th percentile, maximum and growth of CPU, memory and disk use over
//! the period, days until each filesystem is full, and which machines are
//! over-provisioned (low use) or under-provisioned (high use).
//!
//! Queries (`H` the host label, `F` the report's filter, `FS` the
//! filesystem matchers, `W` the rate window, at least the step):
//! - CPU use: `1 - avg by (H) (rate(node_cpu_seconds_total{mode="idle",F}[W]))`
//! - memory use: `1 - max by (H) (node_memory_MemAvailable_bytes{F}) / max by (H) (node_memory_MemTotal_bytes{F})`
//! - disk use, per filesystem: `1 - node_filesystem_avail_bytes{FS,F} / node_filesystem_size_bytes{FS,F}`
//! - days until full: by default Silt's forecaster on
//!   `node_filesystem_avail_bytes{FS,F}` over the period
//!   ([`query::capacity`], the same search as `/api/v1/capacity`): when
//!   the expected path reaches 0, with the 80% interval from when the
//!   prediction bands reach it, searched up to [`HORIZON_DAYS`] days (or
//!   four periods) ahead; or a configured PromQL expression
//!   ([`crate::config::DEFAULT_DAYS_UNTIL_FULL`] is `predict_linear`'s),
//!   which gives no interval.
//!
//! Range queries give the series; average, p95 (linear interpolation, as
//! `quantile_over_time`), maximum and growth (least-squares slope times
//! the period) are taken from them here. A host's disk is its fullest
//! filesystem now.
//!
//! Classification (thresholds configurable, defaults in percent):
//! under-provisioned when CPU p95 is above 85, memory p95 above 90, the
//! fullest disk above 90 now, or a filesystem is full in under 30 days;
//! otherwise over-provisioned when CPU p95 is below 25 and memory p95
//! below 40.

use std::collections::BTreeMap;
use std::time::Duration;

use query::capacity::{Check, Settings, Threshold};
use query::forecast::{Direction, ModelKind};
use serde::Serialize;

use super::{Ctx, Points, downsample, finite, mean, quantile, slope_per_second};
use crate::config::{CapacityOptions, expand};
use crate::doc::{
    Bar, Cell, Chart, ChartKind, Column, Document, Highlight, Line, Section, Table, Tone, Unit,
    format_value,
};
use crate::error::RunError;

/// Use statistics of one series over the period (ratios 0..1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UseStats {
    pub avg: f64,
    pub p95: f64,
    pub max: f64,
    /// The last value in the period.
    pub last: f64,
    /// Change over the period on the least-squares line.
    pub growth: Option<f64>,
}

impl UseStats {
    fn of(points: &[(i64, f64)], period_s: f64) -> Option<UseStats> {
        let v = finite(points);
        Some(UseStats {
            avg: mean(&v)?,
            p95: quantile(&v, 0.95)?,
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            last: *v.last()?,
            growth: slope_per_second(points).map(|s| s * period_s),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filesystem {
    pub host: String,
    pub mountpoint: String,
    pub device: String,
    pub size_bytes: Option<f64>,
    pub usage: UseStats,
    /// `None` when free space is not shrinking (or unknown).
    pub days_until_full: Option<f64>,
    /// The interval of `days_until_full` at [`COVERAGE`] (forecaster
    /// only): earliest, and latest (`None` beyond the search horizon).
    pub days_until_full_lower: Option<f64>,
    pub days_until_full_upper: Option<f64>,
}

/// Coverage of the days-until-full interval.
pub const COVERAGE: f64 = 0.8;
/// How far ahead a filesystem's exhaustion is searched: this many days,
/// or four report periods when longer.
pub const HORIZON_DAYS: i64 = 90;

/// Days until full (and its interval) per filesystem.
#[derive(Debug, Clone, Copy, Default)]
struct Days {
    days: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provisioning {
    Under,
    Over,
    Balanced,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub host: String,
    pub cores: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub cpu: Option<UseStats>,
    pub memory: Option<UseStats>,
    /// The fullest filesystem's use.
    pub disk: Option<UseStats>,
    pub fullest_mountpoint: Option<String>,
    /// The soonest of its filesystems.
    pub days_until_full: Option<f64>,
    pub provisioning: Provisioning,
    pub reasons: Vec<String>,
}

/// The thresholds the classification used (ratios; days).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    pub over_cpu_p95_below: f64,
    pub over_memory_p95_below: f64,
    pub under_cpu_p95_above: f64,
    pub under_memory_p95_above: f64,
    pub under_disk_above: f64,
    pub under_days_until_full_below: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityReport {
    pub hosts: Vec<Host>,
    pub filesystems: Vec<Filesystem>,
    pub under_provisioned: Vec<String>,
    pub over_provisioned: Vec<String>,
    pub thresholds: Thresholds,
    #[serde(skip)]
    pub cpu_series: BTreeMap<String, Points>,
    #[serde(skip)]
    pub memory_series: BTreeMap<String, Points>,
}

fn pct(v: f64) -> String {
    format_value(Unit::Percent, v)
}

/// Under- and over-provisioning, with the reasons.
fn classify(h: &Host, o: &CapacityOptions) -> (Provisioning, Vec<String>) {
    let mut under = Vec::new();
    if let Some(c) = h.cpu
        && c.p95 > o.under_cpu_p95_above
    {
        under.push(format!(
            "CPU p95 {} > {}",
            pct(c.p95),
            pct(o.under_cpu_p95_above)
        ));
    }
    if let Some(m) = h.memory
        && m.p95 > o.under_memory_p95_above
    {
        under.push(format!(
            "memory p95 {} > {}",
            pct(m.p95),
            pct(o.under_memory_p95_above)
        ));
    }
    if let Some(d) = h.disk
        && d.last > o.under_disk_above
    {
        under.push(format!(
            "disk {} {} full > {}",
            h.fullest_mountpoint.as_deref().unwrap_or(""),
            pct(d.last),
            pct(o.under_disk_above)
        ));
    }
    if let Some(days) = h.days_until_full
        && days < o.under_days_until_full_below
    {
        under.push(format!(
            "a filesystem is full in {days:.1} days (< {})",
            o.under_days_until_full_below
        ));
    }
    if !under.is_empty() {
        return (Provisioning::Under, under);
    }
    match (h.cpu, h.memory) {
        (Some(c), Some(m)) if c.p95 < o.over_cpu_p95_below && m.p95 < o.over_memory_p95_below => (
            Provisioning::Over,
            vec![format!(
                "CPU p95 {} < {} and memory p95 {} < {}",
                pct(c.p95),
                pct(o.over_cpu_p95_below),
                pct(m.p95),
                pct(o.over_memory_p95_below)
            )],
        ),
        (None, None) => (Provisioning::Unknown, Vec::new()),
        _ => (Provisioning::Balanced, Vec::new()),
    }
}

/// Runs the capacity queries and classifies the hosts.
pub(crate) fn compute(ctx: &Ctx<'_>) -> Result<CapacityReport, RunError> {
    let o = &ctx.def.capacity;
    let h = o.host_label.as_str();
    let period_s = (ctx.end_ms - ctx.start_ms) as f64 / 1000.0;
    let window_ms = (o.rate_window.as_millis() as i64).max(ctx.step_ms);
    let window = query::promql::format_duration_ms(window_ms);
    let idle = ctx.selector("node_cpu_seconds_total", &[r#"mode="idle""#.to_string()]);
    let fs = o.filesystems.promql();
    let avail = ctx.selector("node_filesystem_avail_bytes", std::slice::from_ref(&fs));
    let size = ctx.selector("node_filesystem_size_bytes", std::slice::from_ref(&fs));
    let mem_avail = ctx.selector("node_memory_MemAvailable_bytes", &[]);
    let mem_total = ctx.selector("node_memory_MemTotal_bytes", &[]);

    let host_of = |l: &engine::Labels| l.get(h).unwrap_or("").to_string();
    let by_host = |rows: Vec<(engine::Labels, Points)>| -> BTreeMap<String, Points> {
        rows.into_iter().map(|(l, p)| (host_of(&l), p)).collect()
    };
    let cpu_series = by_host(ctx.range(&format!("1 - avg by ({h}) (rate({idle}[{window}]))"))?);
    let memory_series = by_host(ctx.range(&format!(
        "1 - max by ({h}) ({mem_avail}) / max by ({h}) ({mem_total})"
    ))?);
    let disk = ctx.range(&format!("1 - {avail} / {size}"))?;
    let fs_key = |l: &engine::Labels| (host_of(l), l.get("mountpoint").unwrap_or("").to_string());
    let sizes: BTreeMap<(String, String), f64> = ctx
        .instant(&size)?
        .into_iter()
        .map(|(l, v)| (fs_key(&l), v))
        .collect();
    let days: BTreeMap<(String, String), Days> = if o.days_until_full.is_empty() {
        forecast_days(ctx, &avail)?
            .into_iter()
            .map(|(l, d)| (fs_key(&l), d))
            .collect()
    } else {
        let days_q = expand(
            &o.days_until_full,
            &[
                ("avail", &avail),
                ("size", &size),
                ("period", &ctx.period_text()),
                ("filter", &ctx.def.filter.promql()),
            ],
        );
        ctx.instant(&days_q)?
            .into_iter()
            .map(|(l, v)| {
                let days = Some(v).filter(|d| d.is_finite() && *d >= 0.0);
                (
                    fs_key(&l),
                    Days {
                        days,
                        ..Days::default()
                    },
                )
            })
            .collect()
    };
    let cores: BTreeMap<String, f64> = ctx
        .instant(&format!("count by ({h}) ({idle})"))?
        .into_iter()
        .map(|(l, v)| (host_of(&l), v))
        .collect();
    let mem_bytes: BTreeMap<String, f64> = ctx
        .instant(&format!("max by ({h}) ({mem_total})"))?
        .into_iter()
        .map(|(l, v)| (host_of(&l), v))
        .collect();

    let mut filesystems = Vec::new();
    for (l, points) in &disk {
        let Some(usage) = UseStats::of(points, period_s) else {
            continue;
        };
        let key = fs_key(l);
        let d = days.get(&key).copied().unwrap_or_default();
        filesystems.push(Filesystem {
            host: key.0.clone(),
            mountpoint: key.1.clone(),
            device: l.get("device").unwrap_or("").to_string(),
            size_bytes: sizes.get(&key).copied(),
            usage,
            days_until_full: d.days,
            days_until_full_lower: d.lower,
            days_until_full_upper: d.upper,
        });
    }
    let mut names: Vec<String> = cpu_series
        .keys()
        .chain(memory_series.keys())
        .chain(filesystems.iter().map(|f| &f.host))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(RunError::NoData(format!(
            "no node_exporter series (node_cpu_seconds_total, node_memory_*, node_filesystem_*) with a {h} label{} in the period",
            if ctx.def.filter.text.is_empty() {
                String::new()
            } else {
                format!(" matching {}", ctx.def.filter.text)
            }
        )));
    }
    let mut hosts = Vec::new();
    for name in names {
        let fullest = filesystems
            .iter()
            .filter(|f| f.host == name)
            .max_by(|a, b| a.usage.last.total_cmp(&b.usage.last));
        let soonest = filesystems
            .iter()
            .filter(|f| f.host == name)
            .filter_map(|f| f.days_until_full)
            .min_by(f64::total_cmp);
        let mut host = Host {
            cores: cores.get(&name).copied(),
            memory_bytes: mem_bytes.get(&name).copied(),
            cpu: cpu_series
                .get(&name)
                .and_then(|p| UseStats::of(p, period_s)),
            memory: memory_series
                .get(&name)
                .and_then(|p| UseStats::of(p, period_s)),
            disk: fullest.map(|f| f.usage),
            fullest_mountpoint: fullest.map(|f| f.mountpoint.clone()),
            days_until_full: soonest,
            provisioning: Provisioning::Unknown,
            reasons: Vec::new(),
            host: name,
        };
        (host.provisioning, host.reasons) = classify(&host, o);
        hosts.push(host);
    }
    let list = |p: Provisioning| -> Vec<String> {
        hosts
            .iter()
            .filter(|h| h.provisioning == p)
            .map(|h| h.host.clone())
            .collect()
    };
    Ok(CapacityReport {
        under_provisioned: list(Provisioning::Under),
        over_provisioned: list(Provisioning::Over),
        thresholds: Thresholds {
            over_cpu_p95_below: o.over_cpu_p95_below,
            over_memory_p95_below: o.over_memory_p95_below,
            under_cpu_p95_above: o.under_cpu_p95_above,
            under_memory_p95_above: o.under_memory_p95_above,
            under_disk_above: o.under_disk_above,
            under_days_until_full_below: o.under_days_until_full_below,
        },
        hosts,
        filesystems,
        cpu_series,
        memory_series,
    })
}

/// Days until each filesystem's free bytes reach 0 on Silt's forecast
/// over the period, with the interval at [`COVERAGE`].
fn forecast_days(ctx: &Ctx<'_>, avail: &str) -> Result<Vec<(engine::Labels, Days)>, RunError> {
    let period_ms = ctx.end_ms - ctx.start_ms;
    let check = Check {
        name: "filesystem_space".into(),
        query: avail.to_string(),
        threshold: Threshold::Value(0.0),
        direction: Direction::Below,
        message: "filesystem {mountpoint}".into(),
        history: Duration::from_millis(period_ms.max(1) as u64),
        model: ModelKind::Seasonal,
    };
    let settings = Settings {
        time_ms: ctx.end_ms,
        horizon_ms: (HORIZON_DAYS * 86_400_000).max(period_ms.saturating_mul(4)),
        coverage: COVERAGE,
    };
    let a =
        query::capacity::assess(&ctx.src.db, &[check], &settings, &ctx.src.query).map_err(|e| {
            RunError::Query {
                query: avail.to_string(),
                message: e.to_string(),
            }
        })?;
    let days = |s: f64| s.is_finite().then_some(s / 86_400.0);
    Ok(a.findings
        .into_iter()
        .map(|f| {
            let d = days(f.exhaustion.seconds);
            (
                f.labels,
                Days {
                    days: d,
                    lower: d.and(days(f.exhaustion.earliest)),
                    upper: d.and(days(f.exhaustion.latest)),
                },
            )
        })
        .collect())
}

/// `2.5–4.1` (days), `2.5–` when the latest lies beyond the horizon.
fn interval_text(f: &Filesystem) -> String {
    match (f.days_until_full_lower, f.days_until_full_upper) {
        (Some(lo), Some(hi)) => format!("{lo:.1}–{hi:.1}"),
        (Some(lo), None) => format!("{lo:.1}–"),
        _ => String::new(),
    }
}

/// A resource's section: the `top` busiest hosts' series as lines (`title`
/// has a `{}` for their count) and every host's p95 as bars, both against
/// the under-provisioned threshold.
fn use_section(
    name: &str,
    title: &str,
    series: &BTreeMap<String, Points>,
    hosts: &[&Host],
    stats: impl Fn(&Host) -> Option<UseStats>,
    under_above: f64,
    top: usize,
) -> Section {
    let p95: BTreeMap<&str, f64> = series
        .iter()
        .map(|(k, p)| (k.as_str(), quantile(&finite(p), 0.95).unwrap_or(f64::NAN)))
        .collect();
    let threshold = || Some(("under-provisioned".into(), under_above));
    Section::new(name)
        .chart(Chart {
            title: title.replacen("{}", &top.min(series.len()).to_string(), 1),
            unit: Unit::Percent,
            kind: ChartKind::Line {
                lines: top_lines(series, |k| p95.get(k).copied().unwrap_or(f64::NAN), top),
            },
            threshold: threshold(),
        })
        .chart(Chart {
            title: format!("{name} use, 95th percentile by host"),
            unit: Unit::Percent,
            kind: ChartKind::Bar {
                bars: bars(hosts, |h| stats(h).map(|c| c.p95), under_above, top * 2),
            },
            threshold: threshold(),
        })
}

/// The `top` busiest hosts' series (by p95), as chart lines.
fn top_lines(
    series: &BTreeMap<String, Points>,
    p95: impl Fn(&str) -> f64,
    top: usize,
) -> Vec<Line> {
    let mut names: Vec<&String> = series.keys().collect();
    names.sort_by(|a, b| p95(b).total_cmp(&p95(a)));
    names
        .into_iter()
        .take(top)
        .map(|n| Line {
            name: n.clone(),
            points: downsample(&series[n], super::CHART_POINTS),
            dashed: false,
        })
        .collect()
}

fn bars(hosts: &[&Host], value: impl Fn(&Host) -> Option<f64>, warn: f64, top: usize) -> Vec<Bar> {
    let mut v: Vec<(String, f64)> = hosts
        .iter()
        .filter_map(|h| value(h).map(|x| (h.host.clone(), x)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.into_iter()
        .take(top)
        .map(|(label, value)| Bar {
            tone: if value > warn {
                Tone::Bad
            } else {
                Tone::Neutral
            },
            label,
            value,
        })
        .collect()
}

fn opt_stat(s: Option<UseStats>, f: fn(UseStats) -> Option<f64>) -> Cell {
    Cell::opt(s.and_then(f))
}

/// Lays the result out as a document.
pub(crate) fn document(ctx: &Ctx<'_>, r: &CapacityReport) -> Document {
    let o = &ctx.def.capacity;
    let mut doc = super::new_document(ctx, serde_json::to_value(r).unwrap_or_default());
    let soonest = r
        .filesystems
        .iter()
        .filter(|f| f.days_until_full.is_some())
        .min_by(|a, b| {
            a.days_until_full
                .unwrap_or(f64::MAX)
                .total_cmp(&b.days_until_full.unwrap_or(f64::MAX))
        });
    doc.highlights = vec![
        Highlight {
            label: "hosts".into(),
            value: r.hosts.len().to_string(),
            tone: Tone::Neutral,
        },
        Highlight {
            label: "under-provisioned".into(),
            value: r.under_provisioned.len().to_string(),
            tone: if r.under_provisioned.is_empty() {
                Tone::Good
            } else {
                Tone::Bad
            },
        },
        Highlight {
            label: "over-provisioned".into(),
            value: r.over_provisioned.len().to_string(),
            tone: if r.over_provisioned.is_empty() {
                Tone::Good
            } else {
                Tone::Warn
            },
        },
        match soonest {
            Some(f) => Highlight {
                label: format!("until {} on {} is full", f.mountpoint, f.host),
                value: format!("{:.1} days", f.days_until_full.unwrap_or(0.0)),
                tone: if f.days_until_full.unwrap_or(0.0) < o.under_days_until_full_below {
                    Tone::Bad
                } else {
                    Tone::Warn
                },
            },
            None => Highlight {
                label: "filesystems filling up".into(),
                value: "none".into(),
                tone: Tone::Good,
            },
        },
    ];

    let under: Vec<&Host> = r
        .hosts
        .iter()
        .filter(|h| h.provisioning == Provisioning::Under)
        .collect();
    let over: Vec<&Host> = r
        .hosts
        .iter()
        .filter(|h| h.provisioning == Provisioning::Over)
        .collect();
    let findings = Section::new("Findings")
        .text(format!(
            "Under-provisioned: CPU p95 above {}, memory p95 above {}, the fullest filesystem above {} now, or a filesystem full in under {} days. Over-provisioned: CPU p95 below {} and memory p95 below {}.",
            pct(o.under_cpu_p95_above),
            pct(o.under_memory_p95_above),
            pct(o.under_disk_above),
            o.under_days_until_full_below,
            pct(o.over_cpu_p95_below),
            pct(o.over_memory_p95_below),
        ))
        .table(Table {
            id: "under-provisioned".into(),
            title: "Under-provisioned machines".into(),
            columns: vec![Column::text("Host"), Column::text("Why")],
            rows: under
                .iter()
                .map(|h| vec![Cell::text(&h.host), Cell::text(h.reasons.join("; "))])
                .collect(),
            empty: "No machine is short of resources.".into(),
        })
        .table(Table {
            id: "over-provisioned".into(),
            title: "Over-provisioned machines".into(),
            columns: vec![
                Column::text("Host"),
                Column::num("Cores", Unit::Count),
                Column::num("Memory", Unit::Bytes),
                Column::num("CPU p95", Unit::Percent),
                Column::num("Memory p95", Unit::Percent),
            ],
            rows: over
                .iter()
                .map(|h| {
                    vec![
                        Cell::text(&h.host),
                        Cell::opt(h.cores),
                        Cell::opt(h.memory_bytes),
                        opt_stat(h.cpu, |s| Some(s.p95)),
                        opt_stat(h.memory, |s| Some(s.p95)),
                    ]
                })
                .collect(),
            empty: "No machine is idle enough to shrink.".into(),
        });

    let all: Vec<&Host> = r.hosts.iter().collect();
    let cpu = use_section(
        "CPU",
        "CPU use, the {} busiest hosts",
        &r.cpu_series,
        &all,
        |h| h.cpu,
        o.under_cpu_p95_above,
        o.top,
    );
    let memory = use_section(
        "Memory",
        "Memory use, the {} fullest hosts",
        &r.memory_series,
        &all,
        |h| h.memory,
        o.under_memory_p95_above,
        o.top,
    );
    let mut filling: Vec<&Filesystem> = r
        .filesystems
        .iter()
        .filter(|f| f.days_until_full.is_some())
        .collect();
    filling.sort_by(|a, b| {
        a.days_until_full
            .unwrap_or(f64::MAX)
            .total_cmp(&b.days_until_full.unwrap_or(f64::MAX))
    });
    let disk = Section::new("Disk")
        .chart(Chart {
            title: "Days until full, soonest filesystems".into(),
            unit: Unit::Number,
            kind: ChartKind::Bar {
                bars: filling
                    .iter()
                    .take(o.top * 2)
                    .map(|f| Bar {
                        label: format!("{} {}", f.host, f.mountpoint),
                        value: f.days_until_full.unwrap_or(0.0),
                        tone: if f.days_until_full.unwrap_or(0.0) < o.under_days_until_full_below {
                            Tone::Bad
                        } else {
                            Tone::Neutral
                        },
                    })
                    .collect(),
            },
            threshold: None,
        })
        .table(Table {
            id: "filesystems".into(),
            title: "Filesystems".into(),
            columns: vec![
                Column::text("Host"),
                Column::text("Mount point"),
                Column::text("Device"),
                Column::num("Size", Unit::Bytes),
                Column::num("Use now", Unit::Percent),
                Column::num("Use p95", Unit::Percent),
                Column::num("Growth", Unit::Percent),
                Column::num("Days until full", Unit::Number),
                Column::text(&format!("{}% interval (days)", COVERAGE * 100.0)),
            ],
            rows: r
                .filesystems
                .iter()
                .map(|f| {
                    vec![
                        Cell::text(&f.host),
                        Cell::text(&f.mountpoint),
                        Cell::text(&f.device),
                        Cell::opt(f.size_bytes),
                        Cell::num(f.usage.last),
                        Cell::num(f.usage.p95),
                        Cell::opt(f.usage.growth),
                        Cell::num(f.days_until_full.unwrap_or(f64::INFINITY)),
                        Cell::text(interval_text(f)),
                    ]
                })
                .collect(),
            empty: "No filesystem metrics in the period.".into(),
        });
    let hosts = Section::new("Hosts").table(Table {
        id: "hosts".into(),
        title: "Use by host over the period".into(),
        columns: vec![
            Column::text("Host"),
            Column::num("Cores", Unit::Count),
            Column::num("Memory", Unit::Bytes),
            Column::num("CPU avg", Unit::Percent),
            Column::num("CPU p95", Unit::Percent),
            Column::num("CPU growth", Unit::Percent),
            Column::num("Memory avg", Unit::Percent),
            Column::num("Memory p95", Unit::Percent),
            Column::num("Memory growth", Unit::Percent),
            Column::num("Disk now", Unit::Percent),
            Column::num("Disk growth", Unit::Percent),
            Column::num("Days until full", Unit::Number),
            Column::text("Status"),
        ],
        rows: r
            .hosts
            .iter()
            .map(|h| {
                vec![
                    Cell::text(&h.host),
                    Cell::opt(h.cores),
                    Cell::opt(h.memory_bytes),
                    opt_stat(h.cpu, |s| Some(s.avg)),
                    opt_stat(h.cpu, |s| Some(s.p95)),
                    opt_stat(h.cpu, |s| s.growth),
                    opt_stat(h.memory, |s| Some(s.avg)),
                    opt_stat(h.memory, |s| Some(s.p95)),
                    opt_stat(h.memory, |s| s.growth),
                    opt_stat(h.disk, |s| Some(s.last)),
                    opt_stat(h.disk, |s| s.growth),
                    Cell::num(h.days_until_full.unwrap_or(f64::INFINITY)),
                    Cell::text(match h.provisioning {
                        Provisioning::Under => "under-provisioned",
                        Provisioning::Over => "over-provisioned",
                        Provisioning::Balanced => "balanced",
                        Provisioning::Unknown => "unknown",
                    }),
                ]
            })
            .collect(),
        empty: "No hosts.".into(),
    });
    doc.sections = vec![findings, cpu, memory, disk, hosts];
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_days() {
        let usage = UseStats {
            avg: 0.5,
            p95: 0.6,
            max: 0.7,
            last: 0.7,
            growth: Some(0.1),
        };
        let mut f = Filesystem {
            host: "db-3".into(),
            mountpoint: "/var".into(),
            device: "/dev/sda1".into(),
            size_bytes: Some(1e9),
            usage,
            days_until_full: Some(3.2),
            days_until_full_lower: Some(2.46),
            days_until_full_upper: Some(4.1),
        };
        assert_eq!(interval_text(&f), "2.5–4.1");
        f.days_until_full_upper = None;
        assert_eq!(interval_text(&f), "2.5–");
        f.days_until_full_lower = None;
        assert_eq!(interval_text(&f), "");
    }
}
