//! Report definitions: the YAML format, its defaults and its validation.
//! Every error names the report and the field (see `docs/reports.md`).
//!
//! ```yaml
//! reports:
//!   - name: weekly-capacity
//!     kind: capacity            # capacity | sla | alerts | trends
//!     schedule: "0 8 * * mon"   # five-field cron or @daily...; absent: on demand only
//!     timezone: Europe/Paris    # default UTC
//!     period: 7d
//!     filters: {selector: '{job="node", env="prod"}'}
//!     formats: [html, csv, json, markdown]
//!     owner: ops
//!     delivery:
//!       folder: /srv/reports
//!       webhook: {url: "https://hooks.example.com/reports"}
//!       email: {to: ops@example.com, from: silt@example.com, smarthost: "mail:587"}
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use alertmanager::receivers::EmailConfig;
use chrono_tz::Tz;
use engine::Matcher;
use serde::{Deserialize, Serialize};

use crate::cron::Schedule;
use crate::error::ConfigError;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Per host CPU, memory and disk use, growth, days until full, over-
    /// and under-provisioned machines.
    Capacity,
    /// Uptime per target against an objective, error-budget burn.
    Sla,
    /// What fired, for how long, time to resolve, noisiest rules.
    Alerts,
    /// Period over period change of key metrics.
    Trends,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Capacity => "capacity",
            Kind::Sla => "sla",
            Kind::Alerts => "alerts",
            Kind::Trends => "trends",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "capacity" => Kind::Capacity,
            "sla" | "availability" => Kind::Sla,
            "alerts" | "alert_summary" => Kind::Alerts,
            "trends" => Kind::Trends,
            _ => return None,
        })
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Csv,
    Json,
    Markdown,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Html, Format::Csv, Format::Json, Format::Markdown];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }
    }

    fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "html" => Format::Html,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "markdown" | "md" => Format::Markdown,
            _ => return None,
        })
    }
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A ratio 0..1 shown as a percentage.
    Percent,
    Bytes,
    /// Seconds shown as a duration.
    Seconds,
    Count,
    /// A plain number.
    #[serde(alias = "none")]
    Number,
}

/// Label matchers that restrict every series a report reads (and, for the
/// alert summary, the alerts it counts).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// As written, e.g. `{job="node"}`; empty for no filter.
    pub text: String,
    pub matchers: Vec<Matcher>,
}

impl Filter {
    /// The matchers as PromQL, comma-separated, without braces (empty for
    /// no filter): what `$filter` expands to.
    pub fn promql(&self) -> String {
        self.matchers
            .iter()
            .map(|m| query::promql::DisplayMatcher(m).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether a label set (looked up by `get`) passes every matcher; a
    /// missing label is the empty string, as in PromQL.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(get(&m.name).as_deref().unwrap_or("")))
    }
}

/// Capacity-planning settings. Thresholds are ratios (0..1); the YAML
/// gives them in percent.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    /// The label that names a host (default `instance`).
    pub host_label: String,
    /// Matchers that pick the filesystems counted (default: no tmpfs,
    /// overlay, squashfs and other virtual filesystems).
    pub filesystems: Filter,
    /// `rate()` window for CPU (default 5m; never below the step).
    pub rate_window: Duration,
    /// Days until a filesystem is full, per filesystem. Empty (the
    /// default): Silt's forecaster over the period, with an interval (see
    /// `kinds::capacity`). Otherwise a PromQL template with `$avail` (the
    /// free-bytes selector), `$size`, `$period`, `$filter`, such as
    /// [`DEFAULT_DAYS_UNTIL_FULL`]; the result must keep the host label and
    /// `mountpoint`.
    pub days_until_full: String,
    pub over_cpu_p95_below: f64,
    pub over_memory_p95_below: f64,
    pub under_cpu_p95_above: f64,
    pub under_memory_p95_above: f64,
    pub under_disk_above: f64,
    pub under_days_until_full_below: f64,
    /// Series drawn in each line chart, bars in each ranking (default 8).
    pub top: usize,
}

/// Days until free bytes reach 0 on the line `predict_linear` fits over
/// the period: today's fitted value over the fitted daily decrease; `+Inf`
/// when free space is not shrinking. The days-until-full expression before
/// Silt's forecaster became the default; still accepted as a template.
pub const DEFAULT_DAYS_UNTIL_FULL: &str = "predict_linear($avail[$period], 0) / clamp_min(predict_linear($avail[$period], 0) - predict_linear($avail[$period], 86400), 0)";

/// Filesystems left out of capacity planning by default.
pub const DEFAULT_FILESYSTEMS: &str =
    r#"{fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|autofs|proc|sysfs|fuse\\..*"}"#;

impl Default for CapacityOptions {
    fn default() -> Self {
        CapacityOptions {
            host_label: "instance".into(),
            filesystems: parse_filter(DEFAULT_FILESYSTEMS).unwrap_or_default(),
            rate_window: Duration::from_secs(300),
            days_until_full: String::new(),
            over_cpu_p95_below: 0.25,
            over_memory_p95_below: 0.40,
            under_cpu_p95_above: 0.85,
            under_memory_p95_above: 0.90,
            under_disk_above: 0.90,
            under_days_until_full_below: 30.0,
            top: 8,
        }
    }
}

/// SLA settings.
#[derive(Debug, Clone)]
pub struct SlaOptions {
    /// `up` (scrape targets) or `probe_success` (blackbox probes), or any
    /// 0/1 metric.
    pub metric: String,
    /// The objective as a ratio (YAML: percent, default 99.9).
    pub objective: f64,
    /// Labels that identify a target (default `job`, `instance`).
    pub by: Vec<String>,
    pub top: usize,
}

impl Default for SlaOptions {
    fn default() -> Self {
        SlaOptions {
            metric: "up".into(),
            objective: 0.999,
            by: vec!["job".into(), "instance".into()],
            top: 8,
        }
    }
}

/// Alert-summary settings.
#[derive(Debug, Clone)]
pub struct AlertsOptions {
    /// Rules shown in the rankings (default 10).
    pub top: usize,
}

impl Default for AlertsOptions {
    fn default() -> Self {
        AlertsOptions { top: 10 }
    }
}

/// One key metric of a trends report: a PromQL expression (templated
/// with `$filter`, `$window`) averaged over this period and the previous.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendMetric {
    pub name: String,
    pub expr: String,
    pub unit: Unit,
}

/// Trends settings.
#[derive(Debug, Clone)]
pub struct TrendOptions {
    pub metrics: Vec<TrendMetric>,
}

impl Default for TrendOptions {
    fn default() -> Self {
        let m = |name: &str, expr: &str, unit| TrendMetric {
            name: name.into(),
            expr: expr.into(),
            unit,
        };
        TrendOptions {
            metrics: vec![
                m(
                    "CPU use",
                    r#"1 - avg(rate(node_cpu_seconds_total{mode="idle",$filter}[$window]))"#,
                    Unit::Percent,
                ),
                m(
                    "Memory use",
                    "1 - sum(node_memory_MemAvailable_bytes{$filter}) / sum(node_memory_MemTotal_bytes{$filter})",
                    Unit::Percent,
                ),
                m(
                    "Disk use",
                    r#"1 - sum(node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs",$filter}) / sum(node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs",$filter})"#,
                    Unit::Percent,
                ),
                m("Targets up", "sum(up{$filter})", Unit::Count),
                m("Availability", "avg(up{$filter})", Unit::Percent),
            ],
        }
    }
}

/// A webhook target: the run is POSTed as JSON, with retries.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTarget {
    pub url: String,
    /// Attempts in all (default 3); 5xx, 429 and network errors are
    /// retried with backoff from 1 s.
    pub max_attempts: u32,
    /// Per attempt (default 30s).
    pub timeout: Duration,
}

/// Where a run's files go besides the run store.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Written to `<folder>/<report>/<run id>/`, atomically.
    pub folder: Option<PathBuf>,
    pub webhook: Option<WebhookTarget>,
    /// Alertmanager's `email_configs` fields (SMTP settings fall back to
    /// the Alertmanager's `global.smtp_*`); the report sets the body.
    pub email: Option<EmailConfig>,
}

/// A validated report definition.
#[derive(Debug, Clone)]
pub struct ReportDef {
    pub name: String,
    pub kind: Kind,
    pub title: String,
    pub schedule: Option<Schedule>,
    pub period: Duration,
    /// Resolution of range queries; default period / 1000, at least 1m.
    pub step: Duration,
    pub filter: Filter,
    pub formats: Vec<Format>,
    /// Who is alerted when a run fails (the `owner` label of the alert).
    pub owner: Option<String>,
    pub delivery: Delivery,
    /// Runs kept on disk (default 30).
    pub keep_runs: usize,
    pub capacity: CapacityOptions,
    pub sla: SlaOptions,
    pub alerts: AlertsOptions,
    pub trends: TrendOptions,
}

// ---- raw YAML ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    reports: Vec<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    name: String,
    kind: String,
    title: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    period: Option<String>,
    step: Option<String>,
    #[serde(default)]
    filters: RawFilters,
    formats: Option<Vec<String>>,
    owner: Option<String>,
    #[serde(default)]
    delivery: RawDelivery,
    keep_runs: Option<usize>,
    capacity: Option<RawCapacity>,
    sla: Option<RawSla>,
    alerts: Option<RawAlerts>,
    trends: Option<RawTrends>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilters {
    selector: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    folder: Option<String>,
    webhook: Option<RawWebhook>,
    email: Option<EmailConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    max_attempts: Option<u32>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    host_label: Option<String>,
    filesystems: Option<String>,
    rate_window: Option<String>,
    days_until_full: Option<String>,
    #[serde(default)]
    over_provisioned: RawOver,
    #[serde(default)]
    under_provisioned: RawUnder,
    top: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOver {
    cpu_p95_below: Option<f64>,
    memory_p95_below: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnder {
    cpu_p95_above: Option<f64>,
    memory_p95_above: Option<f64>,
    disk_above: Option<f64>,
    days_until_full_below: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    metric: Option<String>,
    objective: Option<f64>,
    by: Option<Vec<String>>,
    top: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    top: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrends {
    metrics: Vec<RawTrendMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrendMetric {
    name: String,
    expr: String,
    #[serde(default = "default_unit")]
    unit: Unit,
}

fn default_unit() -> Unit {
    Unit::Number
}

// ---- validation ----

/// Parses `{a="b", ...}` (label matchers only).
pub fn parse_filter(text: &str) -> Result<Filter, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Filter::default());
    }
    let sel = query::promql::parse_vector_selector(text).map_err(|e| e.to_string())?;
    if sel.name.is_some() {
        return Err("give label matchers only, e.g. {job=\"node\"}, without a metric name".into());
    }
    if sel.matchers.iter().any(|m| m.name == engine::METRIC_NAME) {
        return Err("matchers on __name__ are not allowed in a filter".into());
    }
    Ok(Filter {
        text: text.to_string(),
        matchers: sel.matchers,
    })
}

/// Parses a Prometheus duration (`7d`, `1h30m`); zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = query::promql::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration (like 7d, 12h, 30m): {e}"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: must be longer than 0"));
    }
    Ok(d)
}

/// `[A-Za-z0-9_.-]`, not starting with `.`: names are path and URL parts.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Expands `$name` placeholders, longest names first.
pub fn expand(template: &str, vars: &[(&str, &str)]) -> String {
    let mut vars: Vec<&(&str, &str)> = vars.iter().collect();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${k}"), v);
    }
    out
}

fn percent(report: &str, field: &str, v: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    match v {
        None => Ok(default),
        Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        Some(p) => Err(ConfigError::field(
            report,
            field,
            format!("{p} is not a percentage between 0 and 100"),
        )),
    }
}

fn top(report: &str, field: &str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ConfigError::field(
            report,
            field,
            format!("{n} is not between 1 and 1000"),
        )),
    }
}

/// Checks that a templated expression parses once expanded.
fn check_expr(
    report: &str,
    field: &str,
    expr: &str,
    vars: &[(&str, &str)],
) -> Result<(), ConfigError> {
    let expanded = expand(expr, vars);
    query::promql::parse(&expanded)
        .map(|_| ())
        .map_err(|e| ConfigError::field(report, field, format!("{expanded:?}: {e}")))
}

fn only_for(report: &str, field: &str, kind: Kind, wanted: Kind) -> Result<(), ConfigError> {
    if kind == wanted {
        Ok(())
    } else {
        Err(ConfigError::field(
            report,
            field,
            format!(
                "only for kind {}, this report is {}",
                wanted.as_str(),
                kind.as_str()
            ),
        ))
    }
}

fn validate(r: RawReport) -> Result<ReportDef, ConfigError> {
    let name = r.name.clone();
    let n = name.as_str();
    let f = |field: &str, message: String| ConfigError::field(n, field, message);
    if !valid_name(n) {
        return Err(f(
            "name",
            "must be 1-128 letters, digits, '_', '-' or '.', not starting with '.'".into(),
        ));
    }
    let kind = Kind::parse(&r.kind).ok_or_else(|| {
        f(
            "kind",
            format!(
                "unknown kind {:?} (known: capacity, sla, alerts, trends)",
                r.kind
            ),
        )
    })?;
    let tz: Tz = match &r.timezone {
        None => Tz::UTC,
        Some(z) => z.parse().map_err(|_| {
            f(
                "timezone",
                format!("unknown time zone {z:?} (an IANA name such as Europe/Paris)"),
            )
        })?,
    };
    let schedule = match &r.schedule {
        None => None,
        Some(s) => Some(Schedule::parse(s, tz).map_err(|e| f("schedule", e.to_string()))?),
    };
    let period = match &r.period {
        None => return Err(f("period", "missing (a duration such as 7d)".into())),
        Some(p) => parse_duration(p).map_err(|e| f("period", e))?,
    };
    let step = match &r.step {
        Some(s) => parse_duration(s).map_err(|e| f("step", e))?,
        None => Duration::from_secs((period.as_secs() / 1000).max(60) / 60 * 60),
    };
    if step > period {
        return Err(f("step", "must not be longer than the period".into()));
    }
    if period.as_millis() / step.as_millis().max(1) > 20_000 {
        return Err(f(
            "step",
            "more than 20000 steps per period: choose a longer step".into(),
        ));
    }
    let filter = match &r.filters.selector {
        None => Filter::default(),
        Some(s) => parse_filter(s).map_err(|e| f("filters.selector", format!("{s:?}: {e}")))?,
    };
    let formats = match &r.formats {
        None => Format::ALL.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for s in list {
                let fm = Format::parse(s).ok_or_else(|| {
                    f(
                        "formats",
                        format!("unknown format {s:?} (known: html, csv, json, markdown)"),
                    )
                })?;
                if !out.contains(&fm) {
                    out.push(fm);
                }
            }
            if out.is_empty() {
                return Err(f("formats", "empty: give at least one format".into()));
            }
            out.sort();
            out
        }
    };
    let webhook = match r.delivery.webhook {
        None => None,
        Some(w) => {
            let ok = w.url.starts_with("http://") || w.url.starts_with("https://");
            if !ok || w.url.parse::<reqwest::Url>().is_err() {
                return Err(f(
                    "delivery.webhook.url",
                    format!("{:?} is not an http(s) URL", w.url),
                ));
            }
            let attempts = w.max_attempts.unwrap_or(3);
            if !(1..=20).contains(&attempts) {
                return Err(f(
                    "delivery.webhook.max_attempts",
                    format!("{attempts} is not between 1 and 20"),
                ));
            }
            let timeout = match &w.timeout {
                None => Duration::from_secs(30),
                Some(t) => parse_duration(t).map_err(|e| f("delivery.webhook.timeout", e))?,
            };
            Some(WebhookTarget {
                url: w.url,
                max_attempts: attempts,
                timeout,
            })
        }
    };
    if let Some(email) = &r.delivery.email
        && email.to.as_deref().is_none_or(|t| t.trim().is_empty())
    {
        return Err(f("delivery.email.to", "missing".into()));
    }
    let folder = r.delivery.folder.as_ref().map(PathBuf::from);
    if folder.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(f("delivery.folder", "empty path".into()));
    }
    let keep_runs = match r.keep_runs {
        None => 30,
        Some(k) if (1..=10_000).contains(&k) => k,
        Some(k) => return Err(f("keep_runs", format!("{k} is not between 1 and 10000"))),
    };

    let period_text = query::promql::format_duration_ms(period.as_millis() as i64);
    let filter_text = filter.promql();
    let mut capacity = CapacityOptions::default();
    if let Some(c) = r.capacity {
        only_for(n, "capacity", kind, Kind::Capacity)?;
        if let Some(h) = c.host_label {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(f(
                    "capacity.host_label",
                    format!("{h:?} is not a label name"),
                ));
            }
            capacity.host_label = h;
        }
        if let Some(s) = c.filesystems {
            capacity.filesystems =
                parse_filter(&s).map_err(|e| f("capacity.filesystems", format!("{s:?}: {e}")))?;
        }
        if let Some(w) = c.rate_window {
            capacity.rate_window = parse_duration(&w).map_err(|e| f("capacity.rate_window", e))?;
        }
        if let Some(e) = c.days_until_full {
            capacity.days_until_full = e;
        }
        let d = CapacityOptions::default();
        capacity.over_cpu_p95_below = percent(
            n,
            "capacity.over_provisioned.cpu_p95_below",
            c.over_provisioned.cpu_p95_below,
            d.over_cpu_p95_below,
        )?;
        capacity.over_memory_p95_below = percent(
            n,
            "capacity.over_provisioned.memory_p95_below",
            c.over_provisioned.memory_p95_below,
            d.over_memory_p95_below,
        )?;
        capacity.under_cpu_p95_above = percent(
            n,
            "capacity.under_provisioned.cpu_p95_above",
            c.under_provisioned.cpu_p95_above,
            d.under_cpu_p95_above,
        )?;
        capacity.under_memory_p95_above = percent(
            n,
            "capacity.under_provisioned.memory_p95_above",
            c.under_provisioned.memory_p95_above,
            d.under_memory_p95_above,
        )?;
        capacity.under_disk_above = percent(
            n,
            "capacity.under_provisioned.disk_above",
            c.under_provisioned.disk_above,
            d.under_disk_above,
        )?;
        if let Some(days) = c.under_provisioned.days_until_full_below {
            if !days.is_finite() || days < 0.0 {
                return Err(f(
                    "capacity.under_provisioned.days_until_full_below",
                    format!("{days} is not a number of days"),
                ));
            }
            capacity.under_days_until_full_below = days;
        }
        capacity.top = top(n, "capacity.top", c.top, d.top)?;
    }
    if kind == Kind::Capacity && !capacity.days_until_full.is_empty() {
        check_expr(
            n,
            "capacity.days_until_full",
            &capacity.days_until_full,
            &[
                ("avail", "node_filesystem_avail_bytes"),
                ("size", "node_filesystem_size_bytes"),
                ("period", &period_text),
                ("filter", &filter_text),
            ],
        )?;
    }
    let mut sla = SlaOptions::default();
    if let Some(s) = r.sla {
        only_for(n, "sla", kind, Kind::Sla)?;
        if let Some(m) = s.metric {
            if m.is_empty()
                || m.starts_with(|c: char| c.is_ascii_digit())
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            {
                return Err(f("sla.metric", format!("{m:?} is not a metric name")));
            }
            sla.metric = m;
        }
        if let Some(o) = s.objective {
            if !(o.is_finite() && o > 0.0 && o < 100.0) {
                return Err(f(
                    "sla.objective",
                    format!("{o} is not a percentage above 0 and below 100 (such as 99.9)"),
                ));
            }
            sla.objective = o / 100.0;
        }
        if let Some(by) = s.by {
            if by.is_empty() {
                return Err(f("sla.by", "give at least one label".into()));
            }
            sla.by = by;
        }
        sla.top = top(n, "sla.top", s.top, 8)?;
    }
    let mut alerts = AlertsOptions::default();
    if let Some(a) = r.alerts {
        only_for(n, "alerts", kind, Kind::Alerts)?;
        alerts.top = top(n, "alerts.top", a.top, 10)?;
    }
    let mut trends = TrendOptions::default();
    if let Some(t) = r.trends {
        only_for(n, "trends", kind, Kind::Trends)?;
        if t.metrics.is_empty() {
            return Err(f("trends.metrics", "give at least one metric".into()));
        }
        trends.metrics = t
            .metrics
            .into_iter()
            .map(|m| TrendMetric {
                name: m.name,
                expr: m.expr,
                unit: m.unit,
            })
            .collect();
    }
    if kind == Kind::Trends {
        for (i, m) in trends.metrics.iter().enumerate() {
            check_expr(
                n,
                &format!("trends.metrics[{i}].expr"),
                &m.expr,
                &[
                    ("filter", &filter_text),
                    ("window", "5m"),
                    ("period", &period_text),
                ],
            )?;
        }
    }
    let title = r.title.unwrap_or_else(|| {
        let what = match kind {
            Kind::Capacity => "Capacity planning",
            Kind::Sla => "Availability (SLA)",
            Kind::Alerts => "Alert summary",
            Kind::Trends => "Trends",
        };
        format!("{what}: {n}")
    });
    Ok(ReportDef {
        name,
        kind,
        title,
        schedule,
        period,
        step,
        filter,
        formats,
        owner: r.owner.filter(|o| !o.is_empty()),
        delivery: Delivery {
            folder,
            webhook,
            email: r.delivery.email,
        },
        keep_runs,
        capacity,
        sla,
        alerts,
        trends,
    })
}

/// Validates a list of report definitions (the `reports:` list as YAML
/// values).
pub fn from_values(values: &[serde_yaml::Value]) -> Result<Vec<ReportDef>, ConfigError> {
    let mut out: Vec<ReportDef> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let label = v
            .get("name")
            .and_then(|n| n.as_str())
            .map_or_else(|| format!("#{}", i + 1), str::to_string);
        let raw: RawReport = serde_yaml::from_value(v.clone()).map_err(|e| ConfigError::Field {
            report: label.clone(),
            field: "-".into(),
            message: e.to_string(),
        })?;
        let def = validate(raw)?;
        if out.iter().any(|d| d.name == def.name) {
            return Err(ConfigError::Duplicate(def.name));
        }
        out.push(def);
    }
    Ok(out)
}

/// The unvalidated `reports:` list of a YAML document (to merge lists
/// from several files before [`from_values`]).
pub fn values(yaml: &str, source: &str) -> Result<Vec<serde_yaml::Value>, ConfigError> {
    let raw: RawFile = serde_yaml::from_str(yaml).map_err(|e| ConfigError::Yaml {
        source_name: source.to_string(),
        message: e.to_string(),
    })?;
    Ok(raw.reports)
}

/// Parses a YAML document with a top-level `reports:` list.
pub fn parse(yaml: &str, source: &str) -> Result<Vec<ReportDef>, ConfigError> {
    from_values(&values(yaml, source)?)
}

/// Reads and parses a reports file.
pub fn load(path: &Path) -> Result<Vec<ReportDef>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<ReportDef, ConfigError> {
        parse(yaml, "test.yml").map(|mut v| v.remove(0))
    }

    fn err(yaml: &str) -> String {
        one(yaml).unwrap_err().to_string()
    }

    #[test]
    fn full_definition() {
        let d = one(r#"
reports:
  - name: weekly
    kind: capacity
    schedule: "0 8 * * mon"
    timezone: Europe/Paris
    period: 7d
    filters: {selector: '{job="node", env=~"prod|staging"}'}
    formats: [html, md, html]
    owner: ops
    delivery:
      folder: /tmp/reports
      webhook: {url: "http://127.0.0.1:1/hook", max_attempts: 5, timeout: 10s}
      email: {to: ops@example.com, from: silt@example.com, smarthost: "localhost:25"}
    capacity:
      over_provisioned: {cpu_p95_below: 10}
      under_provisioned: {days_until_full_below: 14}
"#)
        .unwrap();
        assert_eq!(d.kind, Kind::Capacity);
        assert_eq!(d.period, Duration::from_secs(7 * 86400));
        assert_eq!(d.step, Duration::from_secs(600));
        assert_eq!(d.formats, vec![Format::Html, Format::Markdown]);
        assert_eq!(d.filter.promql(), r#"job="node",env=~"prod|staging""#);
        assert_eq!(d.capacity.over_cpu_p95_below, 0.10);
        assert_eq!(d.capacity.over_memory_p95_below, 0.40);
        assert_eq!(d.capacity.under_days_until_full_below, 14.0);
        assert_eq!(d.delivery.webhook.unwrap().max_attempts, 5);
        assert_eq!(d.schedule.unwrap().timezone(), chrono_tz::Europe::Paris);
        assert_eq!(d.owner.as_deref(), Some("ops"));
    }

    #[test]
    fn errors_name_report_and_field() {
        let base = "reports:\n  - name: r1\n    kind: sla\n    period: 1d\n";
        assert_eq!(
            err(&format!("{base}    schedule: '0 25 * * *'\n")),
            r#"report r1: field schedule: cron "0 25 * * *": hour field "25": value 25 out of range 0-23"#
        );
        assert_eq!(
            err("reports:\n  - name: r1\n    kind: forecast\n    period: 1d\n"),
            r#"report r1: field kind: unknown kind "forecast" (known: capacity, sla, alerts, trends)"#
        );
        assert!(
            err("reports:\n  - name: r1\n    kind: sla\n    period: a week\n")
                .starts_with(r#"report r1: field period: "a week" is not a duration"#)
        );
        assert_eq!(
            err("reports:\n  - name: r1\n    kind: sla\n"),
            "report r1: field period: missing (a duration such as 7d)"
        );
        assert!(
            err(&format!("{base}    sla: {{objective: 100}}\n")).contains("field sla.objective")
        );
        assert!(
            err(&format!("{base}    capacity: {{top: 3}}\n"))
                .contains("field capacity: only for kind capacity, this report is sla")
        );
        assert!(err(&format!("{base}    formats: [pdf]\n")).contains("unknown format \"pdf\""));
        assert!(
            err(&format!(
                "{base}    filters: {{selector: 'up{{job=\"x\"}}'}}\n"
            ))
            .contains("field filters.selector")
        );
        assert!(err(&format!("{base}    timezone: Mars/Olympus\n")).contains("field timezone"));
        assert!(
            err(&format!(
                "{base}    delivery: {{webhook: {{url: 'ftp://x'}}}}\n"
            ))
            .contains("field delivery.webhook.url")
        );
        assert!(
            err(&format!("{base}    colour: blue\n"))
                .starts_with("report r1: field -: unknown field `colour`")
        );
        assert!(
            err(&format!(
                "{base}  - name: r1\n    kind: sla\n    period: 1d\n"
            ))
            .contains("defined twice")
        );
        assert!(
            err("reports:\n  - name: ../x\n    kind: sla\n    period: 1d\n").contains("field name")
        );
        assert!(err(
            "reports:\n  - name: t\n    kind: trends\n    period: 1d\n    trends: {metrics: [{name: x, expr: 'sum(('}]}\n"
        )
        .contains("field trends.metrics[0].expr"));
        assert!(err(
            "reports:\n  - name: c\n    kind: capacity\n    period: 1d\n    capacity: {days_until_full: 'foo('}\n"
        )
        .contains("field capacity.days_until_full"));
        // A report without a name is named by its position.
        assert!(err("reports:\n  - kind: sla\n").starts_with("report #1:"));
    }

    #[test]
    fn default_queries_parse() {
        let d = one("reports:\n  - name: t\n    kind: trends\n    period: 1d\n    filters: {selector: '{job=\"node\"}'}\n").unwrap();
        assert_eq!(d.trends.metrics.len(), 5);
        assert_eq!(d.step, Duration::from_secs(60));
        // Without a filter, `{mode="idle",}` and `{}` must parse too.
        assert!(one("reports:\n  - name: t\n    kind: trends\n    period: 1d\n").is_ok());
        assert!(one("reports:\n  - name: c\n    kind: capacity\n    period: 1d\n").is_ok());
    }

    #[test]
    fn default_filesystem_filter_parses() {
        let f = parse_filter(DEFAULT_FILESYSTEMS).unwrap();
        assert_eq!(f.matchers.len(), 1);
        assert!(!f.matchers[0].matches("tmpfs"));
        assert!(!f.matchers[0].matches("fuse.sshfs"));
        assert!(f.matchers[0].matches("ext4"));
        assert_eq!(CapacityOptions::default().filesystems.matchers.len(), 1);
    }

    #[test]
    fn expand_longest_first() {
        assert_eq!(
            expand(
                "$avail / $availability",
                &[("avail", "a"), ("availability", "b")]
            ),
            "a / b"
        );
    }
}
