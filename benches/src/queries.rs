//! The query set of the query benchmark: dashboard and alert queries over the node_exporter
//! workload, and an SLO query over the long `up` data set, each as an instant query and as
//! range queries where the data covers them.
//!
//! Every query carries what the workload says about it: the series it must return (where
//! that is fixed) and the raw samples its selectors cover, counted from the generated
//! timestamps, for the samples-per-second figure.

use serde::{Deserialize, Serialize};

use crate::slo::{self, SloWorkload};
use crate::workload::{SCRAPE_INTERVAL_MS, Workload};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Prometheus' default lookback for instant vector selectors.
const LOOKBACK_MS: i64 = 5 * MIN;
/// The instant queries' time: this far before the data ends, so not on any scrape or step grid.
pub const EVAL_OFFSET_MS: i64 = 10_777;

/// When a query is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Eval {
    Instant {
        time_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

impl Default for Eval {
    fn default() -> Self {
        Eval::Instant { time_ms: 0 }
    }
}

impl Eval {
    pub fn is_range(&self) -> bool {
        matches!(self, Eval::Range { .. })
    }

    /// The time span `(lo, hi]` whose samples a selector with `window_ms` reads.
    fn span(&self, window_ms: i64) -> (i64, i64) {
        match *self {
            Eval::Instant { time_ms } => (time_ms - window_ms, time_ms),
            Eval::Range {
                start_ms, end_ms, ..
            } => (start_ms - window_ms, end_ms),
        }
    }
}

/// One query to run on every system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Short name of the query (same for its instant and range forms).
    pub name: String,
    /// `dashboard`, `alert`, `slo` or [`FLOOR`].
    pub purpose: String,
    pub expr: String,
    /// `instant`, `range 6 h`, ….
    pub variant: String,
    pub eval: Eval,
    /// Distinct raw samples its selectors cover (each sample once, however many steps read it).
    pub samples_selected: u64,
    /// Series every system must return, where the workload fixes it.
    pub expected_series: Option<u64>,
}

impl Query {
    /// `name (variant)`, for logs and tables.
    pub fn id(&self) -> String {
        format!("{} ({})", self.name, self.variant)
    }
}

/// A label condition of a selector, as far as the counting needs it.
#[derive(Debug, Clone, Copy)]
enum Cond {
    Eq(&'static str, &'static str),
    Ne(&'static str, &'static str),
    /// `name=~"(a|b).*"`: the value starts with one of the prefixes.
    Prefix(&'static str, &'static [&'static str]),
}

impl Cond {
    fn holds(&self, labels: &[(String, String)]) -> bool {
        let get = |n: &str| {
            labels
                .iter()
                .find(|(k, _)| k == n)
                .map_or("", |(_, v)| v.as_str())
        };
        match *self {
            Cond::Eq(n, v) => get(n) == v,
            Cond::Ne(n, v) => get(n) != v,
            Cond::Prefix(n, ps) => ps.iter().any(|p| get(n).starts_with(p)),
        }
    }
}

/// A series selector of a query: metric name, conditions, and the window it reads.
#[derive(Debug, Clone)]
struct Sel {
    metric: &'static str,
    conds: Vec<Cond>,
    window_ms: i64,
}

impl Sel {
    fn new(metric: &'static str, conds: &[Cond], window_ms: i64) -> Sel {
        Sel {
            metric,
            conds: conds.to_vec(),
            window_ms,
        }
    }

    fn matches(&self, labels: &[(String, String)]) -> bool {
        labels
            .iter()
            .any(|(n, v)| n == "__name__" && v == self.metric)
            && self.conds.iter().all(|c| c.holds(labels))
    }
}

/// What the group-by of a query's result keys on, to know its series count.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One series per selected series (of the first selector).
    PerSeries,
    /// One per distinct value of a label over the selected series.
    By(&'static str),
    /// A single series.
    One,
    /// `topk(k, by instance)`: k per step; the union over steps is not fixed.
    TopK(u64),
}

struct Template {
    name: &'static str,
    purpose: &'static str,
    expr: &'static str,
    sels: Vec<Sel>,
    shape: Shape,
    /// Range forms allowed (false for the 24 h windows, whose range form needs two days).
    ranges: bool,
}

/// The workloads the queries run on, with their labels decoded once.
pub struct Data<'a> {
    pub dash: &'a Workload,
    pub slo: Option<&'a SloWorkload>,
    dash_labels: Vec<Vec<(String, String)>>,
    slo_labels: Vec<Vec<(String, String)>>,
}

impl<'a> Data<'a> {
    pub fn new(dash: &'a Workload, slo: Option<&'a SloWorkload>) -> Data<'a> {
        Data {
            dash,
            slo,
            dash_labels: (0..dash.series.len()).map(|i| dash.labels(i)).collect(),
            slo_labels: slo.map_or_else(Vec::new, |s| {
                (0..s.spec.series).map(|i| s.labels(i)).collect()
            }),
        }
    }

    /// The instant queries' evaluation time.
    pub fn eval_ms(&self) -> i64 {
        self.dash.spec.end_ms - EVAL_OFFSET_MS
    }

    /// Start of the dashboard data: no host has a sample before this.
    fn dash_start_ms(&self) -> i64 {
        self.dash.start_ms + SCRAPE_INTERVAL_MS
    }

    /// Series of either data set matched by `sel`, as (labels, samples in the span).
    fn matched(&self, sel: &Sel, eval: &Eval) -> Vec<(&[(String, String)], u64)> {
        let (lo, hi) = eval.span(sel.window_ms);
        let mut out = Vec::new();
        for (i, l) in self.dash_labels.iter().enumerate() {
            if sel.matches(l) {
                let host = self.dash.series[i].host;
                out.push((l.as_slice(), self.dash.scrapes_between(host, lo, hi)));
            }
        }
        if let Some(s) = self.slo {
            for (i, l) in self.slo_labels.iter().enumerate() {
                if sel.matches(l) {
                    out.push((l.as_slice(), s.series_samples_between(i, lo, hi)));
                }
            }
        }
        out
    }
}

fn templates(has_slo: bool) -> Vec<Template> {
    use Cond::*;
    let cpu = "node_cpu_seconds_total";
    let mut t = vec![
        Template {
            name: "cpu_by_instance",
            purpose: "dashboard",
            expr: "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
            sels: vec![Sel::new(cpu, &[], 5 * MIN)],
            shape: Shape::By("instance"),
            ranges: true,
        },
        Template {
            name: "cpu_busy",
            purpose: "dashboard",
            expr: "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
            sels: vec![Sel::new(cpu, &[Eq("mode", "idle")], 5 * MIN)],
            shape: Shape::By("instance"),
            ranges: true,
        },
        Template {
            name: "http_p99",
            purpose: "dashboard",
            expr: "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
            sels: vec![Sel::new(
                "http_request_duration_seconds_bucket",
                &[],
                5 * MIN,
            )],
            shape: Shape::One,
            ranges: true,
        },
        Template {
            name: "topk_net_rx",
            purpose: "dashboard",
            expr: "topk(10, sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\"}[5m])))",
            sels: vec![Sel::new(
                "node_network_receive_bytes_total",
                &[Ne("device", "lo")],
                5 * MIN,
            )],
            shape: Shape::TopK(10),
            ranges: true,
        },
        Template {
            name: "net_tx_regex",
            purpose: "dashboard",
            expr: "sum by (instance) (rate(node_network_transmit_bytes_total{instance=~\"(web|api)-.*\",device!=\"lo\"}[5m]))",
            sels: vec![Sel::new(
                "node_network_transmit_bytes_total",
                &[Prefix("instance", &["web-", "api-"]), Ne("device", "lo")],
                5 * MIN,
            )],
            shape: Shape::By("instance"),
            ranges: true,
        },
        Template {
            name: "disk_var_ratio",
            purpose: "dashboard",
            expr: "node_filesystem_avail_bytes{mountpoint=~\"/var.*\"} / node_filesystem_size_bytes{mountpoint=~\"/var.*\"}",
            sels: vec![
                Sel::new(
                    "node_filesystem_avail_bytes",
                    &[Prefix("mountpoint", &["/var"])],
                    LOOKBACK_MS,
                ),
                Sel::new(
                    "node_filesystem_size_bytes",
                    &[Prefix("mountpoint", &["/var"])],
                    LOOKBACK_MS,
                ),
            ],
            shape: Shape::PerSeries,
            ranges: true,
        },
        Template {
            name: "mem_avail_1h",
            purpose: "dashboard",
            expr: "avg_over_time(node_memory_MemAvailable_bytes[1h])",
            sels: vec![Sel::new("node_memory_MemAvailable_bytes", &[], HOUR)],
            shape: Shape::PerSeries,
            ranges: true,
        },
        Template {
            name: "load1_24h",
            purpose: "dashboard",
            expr: "avg_over_time(node_load1[24h])",
            sels: vec![Sel::new("node_load1", &[], DAY)],
            shape: Shape::PerSeries,
            ranges: false,
        },
        Template {
            name: "up_by_job",
            purpose: "alert",
            expr: "count by (job) (up)",
            sels: vec![Sel::new("up", &[], LOOKBACK_MS)],
            shape: Shape::By("job"),
            ranges: true,
        },
        Template {
            name: "fs_predict_4h",
            purpose: "alert",
            expr: "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600)",
            sels: vec![Sel::new("node_filesystem_avail_bytes", &[], HOUR)],
            shape: Shape::PerSeries,
            ranges: true,
        },
    ];
    if has_slo {
        t.push(Template {
            name: "slo_up_30d",
            purpose: "slo",
            expr: "avg_over_time(up{job=\"blackbox\"}[30d])",
            sels: vec![Sel::new("up", &[Eq("job", slo::JOB)], 30 * DAY)],
            shape: Shape::PerSeries,
            ranges: true,
        });
    }
    t.push(Template {
        name: "floor",
        purpose: FLOOR,
        expr: "vector(1)",
        sels: Vec::new(),
        shape: Shape::One,
        ranges: false,
    });
    t
}

/// The purpose of the query that reads no data, `vector(1)`: each system's
/// per-request floor (HTTP, parsing, the answer, waking up after the idle
/// wait before every timed request), timed like the others and reported
/// apart from the query set.
pub const FLOOR: &str = "floor";

/// "6 h", "24 h", "50 min", "3 d".
fn span_name(ms: i64) -> String {
    if ms % HOUR == 0 && ms <= 2 * DAY {
        format!("{} h", ms / HOUR)
    } else if ms % DAY == 0 {
        format!("{} d", ms / DAY)
    } else {
        format!("{} min", ms / MIN)
    }
}

/// The evaluations of a query whose longest window is `window_ms`, over data starting at
/// `data_start`: the instant query if the data covers one window, a short range (6 h, or
/// what the data allows, at 60 s) and a 24 h range (at 60 s) where the data covers them.
/// SLO queries (30 d windows) get a 24 h range at a 1 h step instead.
fn evals(
    eval_ms: i64,
    window_ms: i64,
    data_start: i64,
    ranges: bool,
    slo: bool,
) -> Vec<(String, Eval)> {
    let mut out = Vec::new();
    let covered = eval_ms - data_start;
    if covered < window_ms {
        return out;
    }
    out.push(("instant".to_string(), Eval::Instant { time_ms: eval_ms }));
    if !ranges {
        return out;
    }
    let room = covered - window_ms;
    let mut range = |span: i64, step: i64| {
        out.push((
            format!("range {}", span_name(span)),
            Eval::Range {
                start_ms: eval_ms - span,
                end_ms: eval_ms,
                step_ms: step,
            },
        ));
    };
    if slo {
        if room >= DAY {
            range(DAY, HOUR);
        }
        return out;
    }
    let short = (room.min(6 * HOUR) / MIN) * MIN;
    if short >= 10 * MIN {
        range(short, MIN);
    }
    if room >= DAY && short < DAY {
        range(DAY, MIN);
    }
    out
}

/// The whole query set for the data.
pub fn build(data: &Data) -> Vec<Query> {
    let eval_ms = data.eval_ms();
    let mut out = Vec::new();
    for t in templates(data.slo.is_some()) {
        let is_slo = t.purpose == "slo";
        // Only queries whose metrics exist (a tiny workload still has every family).
        if !t
            .sels
            .iter()
            .all(|s| is_slo || data.dash.families.iter().any(|f| f == s.metric))
        {
            continue;
        }
        let window = t.sels.iter().map(|s| s.window_ms).max().unwrap_or(0);
        let start = match (is_slo, data.slo) {
            (true, Some(s)) => s.start_ms + s.spec.interval_ms,
            _ => data.dash_start_ms(),
        };
        for (variant, eval) in evals(eval_ms, window, start, t.ranges, is_slo) {
            let mut samples = 0;
            // A query without selectors (the floor) returns its one series.
            let mut expected = t.sels.is_empty().then_some(1);
            for (k, sel) in t.sels.iter().enumerate() {
                let m = data.matched(sel, &eval);
                samples += m.iter().map(|(_, n)| n).sum::<u64>();
                if k == 0 {
                    expected = expected_series(t.shape, &m, eval.is_range());
                }
            }
            out.push(Query {
                name: t.name.to_string(),
                purpose: t.purpose.to_string(),
                expr: t.expr.to_string(),
                variant,
                eval,
                samples_selected: samples,
                expected_series: expected,
            });
        }
    }
    out
}

fn expected_series(
    shape: Shape,
    matched: &[(&[(String, String)], u64)],
    range: bool,
) -> Option<u64> {
    let with_data: Vec<&[(String, String)]> = matched
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, _)| *l)
        .collect();
    let distinct = |name: &str| {
        let mut vals: Vec<&str> = with_data
            .iter()
            .map(|l| {
                l.iter()
                    .find(|(k, _)| k == name)
                    .map_or("", |(_, v)| v.as_str())
            })
            .collect();
        vals.sort_unstable();
        vals.dedup();
        vals.len() as u64
    };
    match shape {
        Shape::PerSeries => Some(with_data.len() as u64),
        Shape::By(label) => Some(distinct(label)),
        Shape::One => Some(u64::from(!with_data.is_empty())),
        Shape::TopK(k) if !range => Some(k.min(distinct("instance"))),
        Shape::TopK(_) => None,
    }
}

/// The query that covers the most raw samples (the scan-rate figure's query).
pub fn heaviest(queries: &[Query]) -> Option<&Query> {
    // The first of equals (max_by_key returns the last).
    queries.iter().rev().max_by_key(|q| q.samples_selected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::SloSpec;
    use crate::workload::Spec;

    const END: i64 = 1_700_000_000_000;

    fn dash(hours: i64) -> Workload {
        Workload::new(Spec {
            series: 1_000,
            duration_ms: hours * HOUR,
            end_ms: END,
            seed: 3,
        })
    }

    fn slo_w(days: i64) -> SloWorkload {
        SloWorkload::new(SloSpec {
            series: 10,
            duration_ms: days * DAY,
            interval_ms: 60_000,
            end_ms: END,
            seed: 3,
        })
    }

    fn find<'a>(qs: &'a [Query], name: &str, variant: &str) -> Option<&'a Query> {
        qs.iter().find(|q| q.name == name && q.variant == variant)
    }

    #[test]
    fn full_day_gets_instant_6h_and_24h_forms() {
        let w = dash(25);
        let s = slo_w(32);
        let data = Data::new(&w, Some(&s));
        let qs = build(&data);
        let hosts = w.hosts.len() as u64;
        let q = find(&qs, "cpu_by_instance", "range 6 h").unwrap();
        assert_eq!(q.expected_series, Some(hosts));
        assert_eq!(
            q.eval,
            Eval::Range {
                start_ms: END - EVAL_OFFSET_MS - 6 * HOUR,
                end_ms: END - EVAL_OFFSET_MS,
                step_ms: MIN
            }
        );
        assert!(find(&qs, "cpu_by_instance", "range 24 h").is_some());
        // 24 h windows: instant only.
        assert!(find(&qs, "load1_24h", "instant").is_some());
        assert!(
            !qs.iter()
                .any(|q| q.name == "load1_24h" && q.eval.is_range())
        );
        // Both `up` jobs; the SLO query over its 10 series, instant and a 24 h range at 1 h.
        assert_eq!(
            find(&qs, "up_by_job", "instant").unwrap().expected_series,
            Some(2)
        );
        let slo = find(&qs, "slo_up_30d", "range 24 h").unwrap();
        assert_eq!(slo.expected_series, Some(10));
        assert!(matches!(slo.eval, Eval::Range { step_ms: HOUR, .. }));
        // The regex selectors match one filesystem per host and only web/api hosts.
        assert_eq!(
            find(&qs, "disk_var_ratio", "instant")
                .unwrap()
                .expected_series,
            Some(hosts)
        );
        let tx = find(&qs, "net_tx_regex", "instant")
            .unwrap()
            .expected_series
            .unwrap();
        assert!(tx > 0 && tx < hosts, "{tx} of {hosts}");
        assert_eq!(
            find(&qs, "topk_net_rx", "instant").unwrap().expected_series,
            Some(hosts.min(10))
        );
        assert_eq!(
            find(&qs, "topk_net_rx", "range 6 h")
                .unwrap()
                .expected_series,
            None
        );
        assert_eq!(
            find(&qs, "http_p99", "instant").unwrap().expected_series,
            Some(1)
        );
    }

    #[test]
    fn sample_counts_follow_the_workload() {
        let w = dash(25);
        let data = Data::new(&w, None);
        let qs = build(&data);
        // avg_over_time(node_load1[24h]) at the end: one series per host, 5760 scrapes a day.
        let q = find(&qs, "load1_24h", "instant").unwrap();
        let hosts = w.hosts.len() as u64;
        let per = q.samples_selected as f64 / hosts as f64;
        assert!((per - 5760.0).abs() <= 1.0, "{per} samples per series");
        // A 6 h range of a 5m rate reads 6 h 5 min of every CPU series.
        let cpu_series = w
            .series
            .iter()
            .filter(|s| w.families[s.family as usize] == "node_cpu_seconds_total")
            .count() as f64;
        let q = find(&qs, "cpu_by_instance", "range 6 h").unwrap();
        let per = q.samples_selected as f64 / cpu_series;
        assert!((per - 1460.0).abs() <= 1.0, "{per}");
        // Without the SLO set there is one `up` job and no SLO query.
        assert_eq!(
            find(&qs, "up_by_job", "instant").unwrap().expected_series,
            Some(1)
        );
        assert!(!qs.iter().any(|q| q.purpose == "slo"));
        assert_eq!(heaviest(&qs).unwrap().variant, "range 24 h");
    }

    #[test]
    fn short_data_gets_shorter_ranges_and_drops_long_windows() {
        let w = dash(2);
        let s = slo_w(2);
        let data = Data::new(&w, Some(&s));
        let qs = build(&data);
        // 2 h of data: a 5m-rate range spans what remains (1 h 54 min or so), no 24 h range.
        let q = qs
            .iter()
            .find(|q| q.name == "cpu_by_instance" && q.eval.is_range())
            .unwrap();
        let Eval::Range {
            start_ms, end_ms, ..
        } = q.eval
        else {
            unreachable!()
        };
        assert!(end_ms - start_ms < 2 * HOUR && end_ms - start_ms >= HOUR);
        assert!(!qs.iter().any(|q| q.variant == "range 24 h"));
        // Windows longer than the data are left out, the SLO query too.
        assert!(
            !qs.iter()
                .any(|q| q.name == "load1_24h" || q.purpose == "slo")
        );
        // The 1 h windows fit as instant queries and as a short range.
        assert!(find(&qs, "mem_avail_1h", "instant").is_some());
        assert_eq!(span_name(54 * MIN), "54 min");
    }
}
