//! The query part of `docs/benchmarks.md`: per query and evaluation form, the median latency
//! of each system, Silt against the faster peer (target: at most 0.5×, never slower than
//! either), whether the answers agree, and the scan rate of the heaviest query.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::queries::FLOOR;
use crate::querybench::series_counts_agree;
use crate::report::{group_digits, human_duration};
use crate::results::{QueryResult, QueryRun};
use crate::server::System;

/// Silt's target: at most this fraction of the faster peer's median latency.
pub const TARGET_RATIO: f64 = 0.5;

const PEERS: [System; 2] = [System::Prometheus, System::VictoriaMetrics];
const ORDER: [System; 3] = [System::Silt, System::Prometheus, System::VictoriaMetrics];

fn short(s: System) -> &'static str {
    match s {
        System::Silt => "Silt",
        System::Prometheus => "Prometheus",
        System::VictoriaMetrics => "VM",
    }
}

/// Silt's median against the faster peer's: (ratio, that peer, Silt slower than both).
pub fn versus_faster_peer(r: &QueryResult) -> Option<(f64, System, bool)> {
    let silt = r.timing(System::Silt)?.median_ms()?;
    let peers: Vec<(f64, System)> = PEERS
        .iter()
        .filter_map(|&p| Some((r.timing(p)?.median_ms()?, p)))
        .collect();
    let &(fast, peer) = peers.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
    let slower_than_all = peers.iter().all(|(m, _)| silt > *m);
    Some((silt / fast, peer, slower_than_all && peers.len() > 1))
}

/// The status cell: met, or how far from the target, and whether Silt lost to a peer.
pub fn status(r: &QueryResult) -> String {
    match versus_faster_peer(r) {
        None => "not measured".into(),
        Some((x, _, _)) if x <= TARGET_RATIO => "**met**".into(),
        Some((x, peer, all)) => {
            let mut s = format!("missed: {:.2}× to go", x / TARGET_RATIO);
            if x > 1.0 {
                if all {
                    s.push_str("; **slower than both peers**");
                } else {
                    let _ = write!(s, "; **slower than {}**", short(peer));
                }
            }
            s
        }
    }
}

fn fmt_ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_count(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.0} k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

fn latency_cell(r: &QueryResult, s: System) -> String {
    match r.timing(s) {
        None => "–".into(),
        Some(t) if t.error.is_some() && t.latencies_ms.is_empty() => "error".into(),
        Some(t) => match (t.median_ms(), t.min_ms()) {
            (Some(m), Some(n)) => {
                let err = if t.error.is_some() { " (error)" } else { "" };
                format!("{} ({}){err}", fmt_ms(m), fmt_ms(n))
            }
            _ => "–".into(),
        },
    }
}

fn series_cell(r: &QueryResult, systems: &[System]) -> String {
    let counts: Vec<String> = systems
        .iter()
        .map(|&s| {
            r.timing(s)
                .and_then(|t| t.series)
                .map_or("–".into(), |n| n.to_string())
        })
        .collect();
    let mut c = counts.join(" / ");
    if !series_counts_agree(r) {
        c = format!("**{c}**");
        if let Some(e) = r.query.expected_series {
            let _ = write!(c, " (expected {e})");
        }
    }
    c
}

fn values_cell(r: &QueryResult) -> String {
    match &r.silt_vs_prometheus {
        None => "–".into(),
        Some(d) if d.is_empty() => format!("yes ({} points)", d.points_compared),
        Some(d) => {
            let mut s = format!(
                "**no**: {} of {} points",
                d.points_differing,
                d.points_compared + d.points_differing
            );
            if d.only_first + d.only_second > 0 {
                let _ = write!(
                    s,
                    ", series only in Silt {} / only in Prometheus {}",
                    d.only_first, d.only_second
                );
            }
            s
        }
    }
}

fn data_title(r: &QueryRun) -> String {
    let mut t = format!(
        "{} series ({} hosts) × {} at 15 s ({:.1} M samples)",
        group_digits(r.series),
        r.hosts,
        human_duration(r.duration_secs),
        r.samples as f64 / 1e6
    );
    if r.slo_series > 0 {
        let _ = write!(
            t,
            " + SLO set: {} `up` series × {} d at {} s ({:.1} M samples)",
            r.slo_series,
            r.slo_duration_secs / 86_400,
            r.slo_interval_secs,
            r.slo_samples as f64 / 1e6
        );
    }
    if let Some(secs) = r.head_span_secs.filter(|&s| s > 0) {
        let _ = write!(t, "; Silt's head holds the last {}", human_duration(secs));
    }
    t
}

/// The query section: the latest run per dashboard data size.
pub fn render(runs: &[QueryRun]) -> String {
    let mut latest: BTreeMap<u64, &QueryRun> = BTreeMap::new();
    for r in runs {
        let e = latest.entry(r.series).or_insert(r);
        if r.started_unix >= e.started_unix {
            *e = r;
        }
    }
    let mut o = String::new();
    if latest.is_empty() {
        return o;
    }
    let _ = writeln!(o, "## Queries\n");
    let _ = writeln!(
        o,
        "The same data loaded into every system; each query run once to warm up, then timed \
         over HTTP on each system in turn. Cells: median ms (minimum in brackets). Target: \
         Silt ≤ {TARGET_RATIO}× the faster peer's median, and never slower than either peer. \
         Series: count returned by Silt / Prometheus / VM (bold: they disagree or miss the \
         count the workload fixes). Silt = Prometheus: every series, timestamp and value \
         within 1e-6 relative.\n"
    );
    for r in latest.values() {
        render_run(&mut o, r);
    }
    o
}

fn render_run(o: &mut String, r: &QueryRun) {
    let systems: Vec<System> = ORDER
        .into_iter()
        .filter(|s| r.systems.contains(s))
        .collect();
    let _ = writeln!(
        o,
        "### {} — {} repetition{}, run {}\n",
        data_title(r),
        r.repetitions,
        if r.repetitions == 1 { "" } else { "s" },
        crate::results::utc_timestamp(r.started_unix)
    );
    if let Some(e) = &r.error {
        let _ = writeln!(o, "**The run stopped early:** {}\n", e.replace('\n', " "));
    }
    let (mut met, mut slower, mut measured, mut count_bad, mut value_bad) = (0, 0, 0, 0, 0);
    let _ = write!(o, "| query | form | samples |");
    for s in &systems {
        let _ = write!(o, " {} ms |", s.title());
    }
    let _ = writeln!(
        o,
        " Silt ÷ faster peer | target ≤ {TARGET_RATIO}× | series | Silt = Prometheus |"
    );
    let _ = writeln!(
        o,
        "|---|---|---|{}---|---|---|---|",
        "---|".repeat(systems.len())
    );
    for q in query_set(r) {
        let cmp = versus_faster_peer(q);
        if let Some((x, _, _)) = cmp {
            measured += 1;
            met += usize::from(x <= TARGET_RATIO);
            slower += usize::from(x > 1.0);
        }
        count_bad += usize::from(!series_counts_agree(q));
        value_bad += usize::from(q.silt_vs_prometheus.as_ref().is_some_and(|d| !d.is_empty()));
        let _ = write!(
            o,
            "| `{}` | {} | {} |",
            q.query.expr.replace('|', "\\|"),
            q.query.variant,
            fmt_count(q.query.samples_selected)
        );
        for &s in &systems {
            let _ = write!(o, " {} |", latency_cell(q, s));
        }
        let ratio = cmp.map_or("–".into(), |(x, p, _)| format!("{x:.2}× {}", short(p)));
        let _ = writeln!(
            o,
            " {ratio} | {} | {} | {} |",
            status(q),
            series_cell(q, &systems),
            values_cell(q)
        );
    }
    let _ = writeln!(
        o,
        "\nSilt meets the target on {met} of {measured} query forms and is slower than a peer on \
         {slower}; series counts disagree on {count_bad}; Silt's answer differs from \
         Prometheus' on {value_bad}.\n"
    );
    render_floor(o, r, &systems);
    render_heaviest(o, r, &systems);
    render_refreshes(o, r, &systems);
    render_problems(o, r);
    render_loads(o, r, &systems);
}

/// The run's queries judged against the target: all but the floor.
fn query_set(r: &QueryRun) -> impl Iterator<Item = &QueryResult> {
    r.queries.iter().filter(|q| q.query.purpose != FLOOR)
}

/// The floor query's medians, and for each form that missed the target the
/// time above the floor, Silt's against the faster peer's.
fn render_floor(o: &mut String, r: &QueryRun, systems: &[System]) {
    let Some(f) = r.queries.iter().find(|q| q.query.purpose == FLOOR) else {
        return;
    };
    let floor = |s: System| f.timing(s).and_then(|t| t.median_ms());
    let cells: Vec<String> = systems
        .iter()
        .map(|&s| match floor(s) {
            Some(_) => format!("{} {} ms", s.title(), latency_cell(f, s)),
            None => format!("{} {}", s.title(), latency_cell(f, s)),
        })
        .collect();
    let _ = write!(
        o,
        "Per-request floor: `{}`, which reads no data, timed the same way, median (min): {}. \
         It is what every answer costs here (the HTTP exchange over loopback, the idle wait's \
         wake-up).",
        f.query.expr,
        cells.join(", ")
    );
    let above: Vec<String> = query_set(r)
        .filter_map(|q| {
            let (x, peer, _) = versus_faster_peer(q)?;
            if x <= TARGET_RATIO {
                return None;
            }
            let silt = q.timing(System::Silt)?.median_ms()? - floor(System::Silt)?;
            let theirs = q.timing(peer)?.median_ms()? - floor(peer)?;
            (theirs > 0.0).then(|| {
                format!(
                    "`{}` {} {:.2}× ({} against {} ms)",
                    q.query.name,
                    q.query.variant,
                    silt.max(0.0) / theirs,
                    fmt_ms(silt.max(0.0)),
                    fmt_ms(theirs)
                )
            })
        })
        .collect();
    if !above.is_empty() {
        let _ = write!(
            o,
            " Above each system's floor, the forms that missed the target take, Silt against \
             the faster peer: {}.",
            above.join("; ")
        );
    }
    let _ = writeln!(o, "\n");
}

fn render_heaviest(o: &mut String, r: &QueryRun, systems: &[System]) {
    let Some(h) = r
        .queries
        .iter()
        .rev()
        .max_by_key(|q| q.query.samples_selected)
    else {
        return;
    };
    let _ = write!(
        o,
        "Scan rate on the heaviest query, `{}` ({}), {} raw samples selected (every sample of \
         the matched series within the range plus its window, each counted once): ",
        h.query.expr,
        h.query.variant,
        group_digits(h.query.samples_selected)
    );
    let parts: Vec<String> = systems
        .iter()
        .filter_map(|&s| {
            let t = h.timing(s)?;
            Some(
                match (
                    t.samples_per_sec_per_core(h.query.samples_selected),
                    t.cores_used(),
                ) {
                    (Some(x), Some(c)) => format!(
                        "{} {:.1} M samples/s per core ({c:.2} cores busy)",
                        s.title(),
                        x / 1e6
                    ),
                    _ => format!("{} –", s.title()),
                },
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "{}. Per core = samples ÷ median latency ÷ cores busy (server CPU time over the timed \
         repetitions ÷ their wall time).\n",
        parts.join("; ")
    );
}

/// The dashboard refreshes: every query once, back to back, per system.
fn render_refreshes(o: &mut String, r: &QueryRun, systems: &[System]) {
    let timing = |s: System| r.refreshes.iter().find(|t| t.system == Some(s));
    let Some(silt) = timing(System::Silt).and_then(|t| t.median_ms()) else {
        return;
    };
    let refreshes = r
        .refreshes
        .iter()
        .map(|t| t.latencies_ms.len())
        .max()
        .unwrap_or(0);
    let cells: Vec<String> = systems
        .iter()
        .filter_map(|&s| {
            let t = timing(s)?;
            Some(match (t.median_ms(), t.min_ms(), &t.error) {
                (Some(m), Some(lo), None) => {
                    format!("{} {} ({}) ms", s.title(), fmt_ms(m), fmt_ms(lo))
                }
                (_, _, Some(e)) => format!("{} failed: {}", s.title(), e.replace('\n', " ")),
                _ => format!("{} –", s.title()),
            })
        })
        .collect();
    let faster_peer = systems
        .iter()
        .filter(|&&s| s != System::Silt)
        .filter_map(|&s| Some((timing(s)?.median_ms()?, s)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let ratio = faster_peer.map_or(String::new(), |(m, s)| {
        format!("; Silt ÷ faster peer {:.2}× {}", silt / m, short(s))
    });
    let _ = writeln!(
        o,
        "Dashboard refresh: every query above and the floor once, back to back, on one system \
         at a time ({refreshes} refreshes, the systems' order rotating), total per refresh, \
         median (min): {}{ratio}. Unlike the rows above, where a query's warm-up leaves its \
         data ready for its repetitions, each query here follows all the others: what a \
         system keeps between queries (Silt's decoded-page cache at its default size; the \
         kernel's page cache) must hold the whole dashboard's data to help.\n",
        cells.join(", ")
    );
}

fn render_problems(o: &mut String, r: &QueryRun) {
    let mut lines = Vec::new();
    for q in &r.queries {
        for t in &q.timings {
            if let Some(e) = &t.error {
                lines.push(format!(
                    "- `{}` ({}) on {}: {}",
                    q.query.expr,
                    q.query.variant,
                    t.system.map_or("?", System::title),
                    e.lines().next().unwrap_or("").replace('|', "\\|")
                ));
            }
        }
        if let Some(d) = q.silt_vs_prometheus.as_ref().filter(|d| !d.is_empty()) {
            lines.push(format!(
                "- `{}` ({}): Silt ≠ Prometheus, e.g. {}",
                q.query.expr,
                q.query.variant,
                d.examples.join("; ")
            ));
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(o, "Errors and differences:\n");
        for l in lines {
            let _ = writeln!(o, "{l}");
        }
        let _ = writeln!(o);
    }
}

fn render_loads(o: &mut String, r: &QueryRun, systems: &[System]) {
    let _ = writeln!(
        o,
        "Loading (not a benchmark figure: all shards kept within a time window so Prometheus \
         accepts the data in order):\n"
    );
    let _ = writeln!(
        o,
        "| system | samples sent | visible after | read back | quiet after | RSS after load | error |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for &s in systems {
        let Some(l) = r.loads.iter().find(|l| l.system == Some(s)) else {
            continue;
        };
        let secs = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.1} s"));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            s.title(),
            l.send.as_ref().map_or("–".into(), |st| format!(
                "{} in {:.1} s",
                group_digits(st.ok_samples),
                st.wall_secs
            )),
            secs(l.visible_secs),
            l.count_check.as_ref().map_or("–".into(), |c| format!(
                "{} / {}",
                group_digits(c.found_samples),
                group_digits(c.expected_samples)
            )),
            secs(l.settle_secs),
            l.rss_after_load_bytes
                .map_or("–".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0)),
            l.error.as_deref().map_or(String::new(), |e| e
                .lines()
                .next()
                .unwrap_or("")
                .replace('|', "\\|"))
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Method: VictoriaMetrics runs with `-search.disableCache -search.latencyOffset=0s`, gets \
         `nocache=1` on every query and `/internal/resetRollupResultCache` before each \
         repetition; Prometheus (`--query.max-samples=2000000000 --query.timeout=10m`) and Silt \
         (`--retention 90d --query.timeout 10m --query.max-samples 2000000000`) have no result \
         cache. Index caches stay on: VictoriaMetrics's (tag filters to series, which \
         `-search.disableCache` leaves on) and Silt's kept selections (matchers to series, per \
         block and for the head); Prometheus has none. Before timing, each server's CPU use must fall below 3 % of a core (background \
         compaction and merges done). Instant queries are evaluated {:.3} s before the data ends, \
         range queries end there, at a 60 s step (SLO: 1 h): times on no scrape or step grid. \
         The systems take turns within each repetition, in a rotating order, each request sent \
         once the servers together used at most one clock tick of CPU in 50 ms (at most 1 s \
         wait); latency is the wall time \
         from sending the request to {}.\n",
        crate::queries::EVAL_OFFSET_MS as f64 / 1000.0,
        if r.timing.as_deref() == Some(crate::results::TIMED_TO_LAST_BYTE) {
            "the last byte of the answer over loopback (the request accepts gzip, as Grafana's \
             does, so each server's compression is timed; the client inflates the answer after \
             the clock stops, as it parses the JSON)"
        } else {
            "reading the whole answer over loopback (the client accepted gzip and inflated the \
             answer as it read it: the client's inflate was timed too)"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Diff;
    use crate::queries::{Eval, Query};
    use crate::results::SystemTiming;

    fn timing(s: System, ms: &[f64], series: u64) -> SystemTiming {
        SystemTiming {
            system: Some(s),
            latencies_ms: ms.to_vec(),
            series: Some(series),
            cpu_secs: Some(ms.iter().sum::<f64>() / 1000.0),
            ..Default::default()
        }
    }

    fn result(silt: f64, prom: f64, vm: f64) -> QueryResult {
        QueryResult {
            query: Query {
                name: "cpu".into(),
                purpose: "dashboard".into(),
                expr: "sum by (instance) (rate(node_cpu_seconds_total[5m]))".into(),
                variant: "range 6 h".into(),
                eval: Eval::Instant { time_ms: 0 },
                samples_selected: 2_000_000,
                expected_series: Some(25),
            },
            timings: vec![
                timing(System::Silt, &[silt, silt * 2.0, silt * 0.9], 25),
                timing(System::Prometheus, &[prom], 25),
                timing(System::VictoriaMetrics, &[vm], 25),
            ],
            silt_vs_prometheus: Some(Diff {
                points_compared: 9_025,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ratio_against_the_faster_peer_and_status() {
        let r = result(40.0, 1500.0, 100.0);
        let (x, peer, all) = versus_faster_peer(&r).unwrap();
        assert_eq!((x, peer, all), (0.4, System::VictoriaMetrics, false));
        assert_eq!(status(&r), "**met**");
        assert_eq!(status(&result(80.0, 1500.0, 100.0)), "missed: 1.60× to go");
        assert_eq!(
            status(&result(150.0, 1500.0, 100.0)),
            "missed: 3.00× to go; **slower than VM**"
        );
        assert_eq!(
            status(&result(2000.0, 1500.0, 100.0)),
            "missed: 40.00× to go; **slower than both peers**"
        );
        let mut none = result(1.0, 1.0, 1.0);
        none.timings.remove(0);
        assert_eq!(status(&none), "not measured");
    }

    #[test]
    fn table_row_summary_and_scan_rate() {
        let mut bad = result(150.0, 1500.0, 100.0);
        bad.query.variant = "instant".into();
        bad.timings[2].series = Some(24);
        bad.silt_vs_prometheus = Some(Diff {
            points_compared: 10,
            points_differing: 2,
            only_first: 1,
            examples: vec!["{instance=\"a\"} at 5 ms: 1 vs 2".into()],
            ..Default::default()
        });
        let run = QueryRun {
            series: 4_012,
            hosts: 25,
            duration_secs: 25 * 3600,
            samples: 24_072_000,
            slo_series: 200,
            slo_duration_secs: 31 * 86_400,
            slo_interval_secs: 60,
            slo_samples: 8_928_000,
            repetitions: 3,
            systems: System::ALL.to_vec(),
            queries: vec![result(40.0, 1500.0, 100.0), bad],
            ..Default::default()
        };
        let md = render(std::slice::from_ref(&run));
        assert!(md.contains("### 4,012 series (25 hosts) × 25 h at 15 s (24.1 M samples) + SLO set: 200 `up` series × 31 d at 60 s (8.9 M samples)"), "{md}");
        assert!(
            md.contains("| `sum by (instance) (rate(node_cpu_seconds_total[5m]))` | range 6 h | 2.0 M | 40.0 (36.0) | 1500 (1500) | 100 (100) | 0.40× VM | **met** | 25 / 25 / 25 | yes (9025 points) |"),
            "{md}"
        );
        assert!(
            md.contains("| **25 / 25 / 24** (expected 25) | **no**: 2 of 12 points, series only in Silt 1 / only in Prometheus 0 |"),
            "{md}"
        );
        assert!(md.contains("Silt meets the target on 1 of 2 query forms and is slower than a peer on 1; series counts disagree on 1; Silt's answer differs from Prometheus' on 1."), "{md}");
        // Both have 2 M samples; the first is the heaviest. Silt: 2e6 / 0.04 s / 1 core.
        assert!(
            md.contains("Silt 50.0 M samples/s per core (1.00 cores busy)"),
            "{md}"
        );
        assert!(md.contains("Silt ≠ Prometheus, e.g. {instance=\"a\"} at 5 ms: 1 vs 2"));
        // Runs before session 42 have no refreshes, and no line for them.
        assert!(!md.contains("Dashboard refresh"), "{md}");
        let refresh = |s: System, ms: &[f64], error: Option<&str>| SystemTiming {
            system: Some(s),
            latencies_ms: ms.to_vec(),
            error: error.map(str::to_owned),
            ..Default::default()
        };
        let with_refreshes = QueryRun {
            refreshes: vec![
                refresh(System::Silt, &[30.0, 20.0, 25.0], None),
                refresh(System::VictoriaMetrics, &[50.0, 60.0, 55.0], None),
                refresh(System::Prometheus, &[], Some("refresh 0, q: HTTP 500")),
            ],
            ..run.clone()
        };
        let md = render(std::slice::from_ref(&with_refreshes));
        assert!(
            md.contains("(3 refreshes, the systems' order rotating), total per refresh, median (min): Silt 25.0 (20.0) ms, Prometheus failed: refresh 0, q: HTTP 500, VictoriaMetrics 55.0 (50.0) ms; Silt ÷ faster peer 0.45× VM."),
            "{md}"
        );
        // A newer run of the same size replaces the older one.
        let newer = QueryRun {
            started_unix: 10,
            queries: vec![],
            error: Some("query phase exceeded".into()),
            ..run.clone()
        };
        let md = render(&[run, newer]);
        assert!(md.contains("**The run stopped early:** query phase exceeded"));
        assert!(!md.contains("range 6 h"));
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn the_floor_is_reported_apart_with_the_missed_forms_above_it() {
        let mut floor = result(0.3, 0.9, 0.4);
        floor.query.name = "floor".into();
        floor.query.purpose = FLOOR.into();
        floor.query.expr = "vector(1)".into();
        floor.query.variant = "instant".into();
        // Missed: 0.5 against VM's 0.8, 0.63×; above the floors 0.2 against 0.4.
        let mut missed = result(0.5, 2.0, 0.8);
        missed.query.name = "regex".into();
        missed.query.variant = "instant".into();
        let run = QueryRun {
            repetitions: 1,
            systems: System::ALL.to_vec(),
            queries: vec![result(40.0, 1500.0, 100.0), missed, floor],
            ..Default::default()
        };
        let md = render(std::slice::from_ref(&run));
        assert!(!md.contains("| `vector(1)`"), "{md}");
        assert!(
            md.contains("Silt meets the target on 1 of 2 query forms"),
            "{md}"
        );
        assert!(
            md.contains("Per-request floor: `vector(1)`, which reads no data, timed the same way, median (min): Silt 0.30 (0.27) ms, Prometheus 0.90 (0.90) ms, VictoriaMetrics 0.40 (0.40) ms."),
            "{md}"
        );
        assert!(
            md.contains("the faster peer: `regex` instant 0.50× (0.20 against 0.40 ms)."),
            "{md}"
        );
        // A system whose floor failed: no figure, and no form measured
        // above it.
        let mut failed = run.clone();
        let f = failed.queries.last_mut().unwrap();
        f.timings[2].latencies_ms.clear();
        f.timings[2].error = Some("refused".into());
        let md = render(std::slice::from_ref(&failed));
        assert!(
            md.contains("Prometheus 0.90 (0.90) ms, VictoriaMetrics error."),
            "{md}"
        );
        assert!(!md.contains("the faster peer: `regex`"), "{md}");
        // No floor query (older runs): no floor line.
        let old = QueryRun {
            queries: vec![result(40.0, 1500.0, 100.0)],
            ..run
        };
        assert!(!render(&[old]).contains("Per-request floor"));
    }
}
