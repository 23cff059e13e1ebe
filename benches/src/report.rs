//! Turns run results into `docs/benchmarks.md`: medians per system and scale, ratios against
//! Silt's targets, how each figure moves with scale, and every run's raw figures.
//!
//! Only the part above [`NOTES_MARKER`] is generated; hand-written notes below it survive.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;

use crate::results::{Machine, QueryRun, RunResult};
use crate::server::System;

/// Everything after this line in the output file is kept when the report is regenerated.
pub const NOTES_MARKER: &str =
    "<!-- end of generated part: notes below this line are kept by silt-bench -->";

/// Median of the values present (mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// Which peer a target compares with, and how.
#[derive(Clone, Copy)]
enum Target {
    /// Silt must reach at least `x` times the peer.
    AtLeast(System, f64),
    /// Silt must stay at or below `x` times the peer.
    AtMost(System, f64),
}

struct Figure {
    name: &'static str,
    get: fn(&RunResult) -> Option<f64>,
    fmt: fn(f64) -> String,
    target: Option<Target>,
    /// Quote the worst run instead of the median (for losses, where one bad run matters).
    worst: bool,
    /// Whether Silt / peer ratios mean anything for this figure.
    ratios: bool,
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.0} k", x / 1e3)
    }
}
fn fmt_2(x: f64) -> String {
    format!("{x:.2}")
}
fn fmt_kib(x: f64) -> String {
    format!("{:.2} KiB", x / 1024.0)
}
fn fmt_secs(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2} s")
    } else {
        format!("{x:.1} s")
    }
}
fn fmt_us(x: f64) -> String {
    format!("{x:.2} µs")
}
fn fmt_pct(x: f64) -> String {
    format!("{:.3} %", x * 100.0)
}
fn fmt_mib(x: f64) -> String {
    format!("{:.0} MiB", x / (1024.0 * 1024.0))
}

fn figures() -> Vec<Figure> {
    vec![
        Figure {
            name: "ingest, samples/s",
            get: |r| r.samples_per_sec,
            fmt: fmt_rate,
            target: Some(Target::AtLeast(System::VictoriaMetrics, 1.5)),
            worst: false,
            ratios: true,
        },
        Figure {
            name: "disk, bytes/sample after compaction",
            get: |r| r.bytes_per_sample,
            fmt: fmt_2,
            target: Some(Target::AtMost(System::VictoriaMetrics, 0.8)),
            worst: false,
            ratios: true,
        },
        Figure {
            name: "peak RSS per active series",
            get: RunResult::rss_per_series,
            fmt: fmt_kib,
            target: Some(Target::AtMost(System::VictoriaMetrics, 0.5)),
            worst: false,
            ratios: true,
        },
        Figure {
            name: "restart until ready (WAL replay)",
            get: |r| r.restart_secs,
            fmt: fmt_secs,
            target: Some(Target::AtMost(System::Prometheus, 0.5)),
            worst: false,
            ratios: true,
        },
        Figure {
            name: "server CPU per sample during ingest",
            get: RunResult::cpu_us_per_sample,
            fmt: fmt_us,
            target: None,
            worst: false,
            ratios: true,
        },
        Figure {
            name: "peak RSS (absolute)",
            get: |r| r.peak_rss_bytes.map(|b| b as f64),
            fmt: fmt_mib,
            target: None,
            worst: false,
            ratios: true,
        },
        Figure {
            name: "peak RSS during restart",
            get: |r| r.restart_peak_rss_bytes.map(|b| b as f64),
            fmt: fmt_mib,
            target: None,
            worst: false,
            ratios: true,
        },
        Figure {
            name: "samples missing on read-back (worst run)",
            get: |r| {
                let c = r.count_check.as_ref()?;
                Some(1.0 - c.found_samples as f64 / c.expected_samples.max(1) as f64)
            },
            fmt: fmt_pct,
            target: None,
            worst: true,
            ratios: false,
        },
    ]
}

fn scale_title(series: u64, samples: u64, duration_secs: u64) -> String {
    format!(
        "{} series × {} ({:.1} M samples)",
        group_digits(series),
        human_duration(duration_secs),
        samples as f64 / 1e6
    )
}

pub(crate) fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn human_duration(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// Medians (or the worst value) per (series scale, system) for one figure.
fn medians(runs: &[RunResult], f: &Figure) -> BTreeMap<(u64, System), f64> {
    let mut vals: BTreeMap<(u64, System), Vec<f64>> = BTreeMap::new();
    for r in runs {
        if let (Some(s), Some(v)) = (r.system, (f.get)(r)) {
            vals.entry((r.series, s)).or_default().push(v);
        }
    }
    vals.into_iter()
        .filter_map(|(k, v)| {
            let agg = if f.worst {
                v.into_iter().filter(|x| x.is_finite()).reduce(f64::max)
            } else {
                median(v)
            };
            Some((k, agg?))
        })
        .collect()
}

/// Render the whole generated part of the report: the ingest runs' figures, the latest
/// query run per data size, then the ingest setup and every ingest run. `results_dirs`
/// names the directories the runs came from, as Markdown, for the header.
pub fn render(
    runs: &[RunResult],
    queries: &[QueryRun],
    machine: Option<&Machine>,
    results_dirs: &str,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Benchmarks\n");
    let _ = writeln!(
        o,
        "Generated by `benches/run.sh` (`silt-bench`) from the raw results in {results_dirs}. \
         Same generated node_exporter-like workload for every system, sent by remote write 1.0 \
         over loopback to servers started empty; systems alternate run by run; every figure is \
         the median over runs."
    );
    let _ = writeln!(o);
    if !runs.is_empty() {
        o.push_str(&render_ingest(runs));
    }
    o.push_str(&crate::query_report::render(queries));
    if !runs.is_empty() {
        o.push_str(&render_ingest_setup(runs, machine));
    }
    o
}

/// The ingest figures against the targets, and how they move with scale.
fn render_ingest(runs: &[RunResult]) -> String {
    let mut o = String::new();
    let figs = figures();
    let scales: BTreeSet<u64> = runs.iter().map(|r| r.series).collect();
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|s| runs.iter().any(|r| r.system == Some(*s)))
        .collect();
    let meds: Vec<_> = figs.iter().map(|f| medians(runs, f)).collect();

    // Summary against targets.
    let _ = writeln!(o, "## Against the targets\n");
    for &scale in &scales {
        let Some(any) = runs.iter().find(|r| r.series == scale) else {
            continue;
        };
        let nruns = runs
            .iter()
            .filter(|r| r.series == scale)
            .map(|r| r.run)
            .collect::<BTreeSet<_>>()
            .len();
        let _ = writeln!(
            o,
            "### {} — medians of {nruns} run{}\n",
            scale_title(any.series, any.samples, any.duration_secs),
            if nruns == 1 { "" } else { "s" }
        );
        let _ = write!(o, "| figure |");
        for s in &systems {
            let _ = write!(o, " {} |", s.title());
        }
        let _ = writeln!(o, " Silt / VM | Silt / Prometheus | target | status |");
        let _ = writeln!(o, "|---|{}---|---|---|---|", "---|".repeat(systems.len()));
        for (f, m) in figs.iter().zip(&meds) {
            let _ = write!(o, "| {} |", f.name);
            for s in &systems {
                let _ = write!(
                    o,
                    " {} |",
                    m.get(&(scale, *s)).map_or("–".into(), |v| (f.fmt)(*v))
                );
            }
            let ratio = |peer: System| -> Option<f64> {
                let r = m.get(&(scale, System::Silt))? / m.get(&(scale, peer))?;
                (f.ratios && r.is_finite()).then_some(r)
            };
            let rvm = ratio(System::VictoriaMetrics);
            let rpr = ratio(System::Prometheus);
            let fr = |r: Option<f64>| r.map_or("–".into(), |r| format!("{r:.2}×"));
            let _ = write!(o, " {} | {} |", fr(rvm), fr(rpr));
            match f.target {
                None => {
                    let _ = writeln!(o, " – | – |");
                }
                Some(t) => {
                    let (peer, x, at_least) = match t {
                        Target::AtLeast(p, x) => (p, x, true),
                        Target::AtMost(p, x) => (p, x, false),
                    };
                    let peer_name = if peer == System::VictoriaMetrics {
                        "VM"
                    } else {
                        "Prometheus"
                    };
                    let goal = format!("{} {x}× {peer_name}", if at_least { "≥" } else { "≤" });
                    let status = match ratio(peer) {
                        None => "not measured".to_string(),
                        Some(r) if (at_least && r >= x) || (!at_least && r <= x) => {
                            "**met**".into()
                        }
                        Some(r) => {
                            // How far from the target, as the factor still to gain.
                            let gap = if at_least { x / r } else { r / x };
                            format!("missed: {gap:.2}× to go")
                        }
                    };
                    let _ = writeln!(o, " {goal} | {status} |");
                }
            }
        }
        let _ = writeln!(o);
    }

    // Scaling.
    if scales.len() > 1 {
        let first = *scales.iter().next().unwrap_or(&1);
        let _ = writeln!(o, "## How the figures move with scale\n");
        let _ = writeln!(
            o,
            "Medians per scale; in brackets the factor against the smallest scale. Per-sample and \
             per-series figures should stay flat (×1.00) if cost grows no faster than the work; \
             restart time should grow no faster than the data replayed.\n"
        );
        let _ = write!(o, "| system | figure |");
        for s in &scales {
            let _ = write!(o, " {} series |", group_digits(*s));
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "|---|---|{}", "---|".repeat(scales.len()));
        for sys in &systems {
            for (f, m) in figs.iter().zip(&meds).take(5) {
                let _ = write!(o, "| {} | {} |", sys.title(), f.name);
                let base = m.get(&(first, *sys)).copied();
                for s in &scales {
                    let cell = match (m.get(&(*s, *sys)), base) {
                        (Some(v), Some(b)) if *s != first && b != 0.0 => {
                            format!("{} (×{:.2})", (f.fmt)(*v), v / b)
                        }
                        (Some(v), _) => (f.fmt)(*v),
                        (None, _) => "–".into(),
                    };
                    let _ = write!(o, " {cell} |");
                }
                let _ = writeln!(o);
            }
        }
        let _ = writeln!(o);
        let _ = write!(o, "Samples per scale: ");
        let parts: Vec<String> = scales
            .iter()
            .filter_map(|s| runs.iter().find(|r| r.series == *s))
            .map(|r| {
                format!(
                    "{} series × {} = {:.1} M",
                    group_digits(r.series),
                    human_duration(r.duration_secs),
                    r.samples as f64 / 1e6
                )
            })
            .collect();
        let _ = writeln!(o, "{}.\n", parts.join("; "));
    }

    o
}

/// The ingest benchmark's setup and every ingest run.
fn render_ingest_setup(runs: &[RunResult], machine: Option<&Machine>) -> String {
    let mut o = String::new();
    let nproc = machine.map_or(2, |m| m.nproc);
    // Method and machine.
    let _ = writeln!(o, "## Setup\n");
    if let Some(m) = machine {
        let _ = writeln!(
            o,
            "- Machine `{}`: {} CPUs ({}), {:.1} GiB RAM, kernel {}, {}; data directories on {}; run {}.",
            m.hostname,
            m.nproc,
            m.cpu_model,
            m.mem_total_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
            m.kernel,
            m.os,
            if m.filesystem.is_empty() {
                "the local disk".into()
            } else {
                m.filesystem.clone()
            },
            m.date
        );
        for (k, v) in &m.versions {
            let _ = writeln!(o, "- {k}: `{v}`");
        }
    }
    if let Some(r) = runs.first() {
        let _ = writeln!(
            o,
            "- Sender: all requests pre-encoded in memory before the clock starts (remote write 1.0, \
             protobuf + snappy block format, one sample per `TimeSeries` like Prometheus' queue \
             manager, ≤ {} samples per request); series sharded by hash over {} keep-alive \
             connections, each shard sent in time order by its own thread; 429/5xx retried with \
             backoff. samples/s = acknowledged samples / wall time until the last 2xx. Workload seed {}.",
            r.max_samples_per_request, r.connections, r.seed
        );
        if r.nice != 0 {
            let _ = writeln!(
                o,
                "- Priority: harness and servers ran at nice {} (process and session autogroup) so \
                 that other work on the shared machine (builds) takes CPU from them as little \
                 as possible; the `other CPU` column shows what it still took.",
                r.nice
            );
        }
    }
    let _ = writeln!(
        o,
        "- Workload: whole hosts of node_exporter-like series (per cpu×mode CPU counters in 1/100 s, \
         memory gauges in bytes with noise, filesystem sizes per mountpoint stepping slowly, network \
         and disk byte counters growing by noisy amounts, load averages, misc counters, two classic \
         `http_request_duration_seconds` histograms of 12 buckets, `up` and scrape series), \
         8–11 labels per series (`job`, `instance`, `env`, `region`, `availability_zone`, `cluster`, \
         `team`, family labels); 15 s scrapes with a per-host phase and ±5 ms jitter; data ends \
         shortly before the run so Prometheus accepts it."
    );
    let _ = writeln!(
        o,
        "- Servers: Silt `silt serve --listen 127.0.0.1:PORT --data-dir DIR` (default, durable \
         acknowledgements); VictoriaMetrics `-search.disableCache -retentionPeriod=100y`; Prometheus \
         `--web.enable-remote-write-receiver --web.enable-admin-api` with an empty scrape config. Each \
         run starts the server on a fresh directory and a free loopback port."
    );
    let _ = writeln!(
        o,
        "- Peak RSS: `VmHWM` from `/proc/<pid>/status` right after the last acknowledgement, divided by \
         active series. Restart: right after ingest, SIGKILL for Silt and Prometheus (a crash: their WAL is \
         replayed); VictoriaMetrics has no WAL and loses its last second of buffered samples on \
         SIGKILL, so it gets `/internal/force_flush` and SIGTERM (a clean stop, which favours it). \
         Then time from exec until `/-/ready` answers 200 (Silt, Prometheus) or `/health` and a \
         `count(up)` query answer 200 (VictoriaMetrics)."
    );
    let _ = writeln!(
        o,
        "- Disk: Silt `POST /api/v1/admin/tsdb/cut_head` + `/compact?force=true` \
         (merges the blocks of incomplete windows too, as VictoriaMetrics's force merge does; \
         without it the fresh data stays in 2 h blocks until each window completes), then the \
         size of the data dir; \
         VictoriaMetrics `/internal/force_flush` + `/internal/force_merge`, wait until no merge runs, \
         size of the data dir; Prometheus keeps 2–3 h in its head and WAL, so its figure is a TSDB \
         snapshot (`/api/v1/admin/tsdb/snapshot`, head written as a block): blocks only, no WAL. \
         Sizes are apparent bytes (`du -sb`), divided by acknowledged samples."
    );
    let _ = writeln!(
        o,
        "- Read-back check, after the restart: Silt and VictoriaMetrics export every metric name through \
         `/api/v1/export` and the harness counts series and timestamps; Prometheus answers \
         `sum(count_over_time(name[range]))` and `count(...)` per metric name. Missing samples show in \
         the tables above."
    );
    let _ = writeln!(
        o,
        "- Server CPU: user+system seconds of the server process during ingest. The machine is shared; \
         the column `other CPU` below is the share of all CPUs used by other processes during ingest, \
         a noise indicator."
    );
    let _ = writeln!(o);

    // Every run.
    let _ = writeln!(o, "## Every run\n");
    let _ = writeln!(
        o,
        "| series | system | run | samples/s | bytes/sample | RSS/series | restart | CPU/sample | read back | retries / rejected | other CPU | load before | error |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut sorted: Vec<&RunResult> = runs.iter().collect();
    sorted.sort_by_key(|r| (r.series, r.system, r.run));
    for r in sorted {
        let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("–".into(), f);
        let read_back = r.count_check.as_ref().map_or("–".into(), |c| {
            format!("{} / {}", c.found_samples, c.expected_samples)
        });
        let rr = r.ingest.as_ref().map_or("–".into(), |i| {
            format!("{} / {}", i.retries, i.rejected_samples)
        });
        let err = r
            .error
            .as_deref()
            .map(|e| e.lines().next().unwrap_or("").replace('|', "\\|"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            group_digits(r.series),
            r.system.map_or("?", System::name),
            r.run,
            opt(r.samples_per_sec, fmt_rate),
            opt(r.bytes_per_sample, fmt_2),
            opt(r.rss_per_series(), fmt_kib),
            opt(r.restart_secs, fmt_secs),
            opt(r.cpu_us_per_sample(), fmt_us),
            read_back,
            rr,
            opt(r.foreign_cpu_share(nproc), |x| format!(
                "{:.0} %",
                x * 100.0
            )),
            opt(r.loadavg_before, fmt_2),
            err
        );
    }
    let _ = writeln!(o);
    o
}

/// Write `out`, keeping whatever follows [`NOTES_MARKER`] in the existing file.
pub fn write_report(out: &Path, generated: &str) -> Result<()> {
    let notes = fs::read_to_string(out)
        .ok()
        .and_then(|old| old.split_once(NOTES_MARKER).map(|(_, n)| n.to_string()))
        .unwrap_or_else(|| {
            "\n\n## Notes\n\n(Hand-written analysis of the figures goes here.)\n".into()
        });
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(out, format!("{generated}{NOTES_MARKER}{notes}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::SendStats;

    fn run(system: System, run: u32, rate: f64, bps: f64, rss: u64, restart: f64) -> RunResult {
        RunResult {
            system: Some(system),
            series: 20_000,
            duration_secs: 6 * 3600,
            samples: 28_800_000,
            run,
            samples_per_sec: Some(rate),
            bytes_per_sample: Some(bps),
            peak_rss_bytes: Some(rss),
            restart_secs: Some(restart),
            ingest: Some(SendStats {
                ok_samples: 28_800_000,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn summary_has_ratios_and_target_status() {
        let runs = vec![
            run(System::Silt, 0, 2_000_000.0, 0.9, 100_000_000, 1.0),
            run(System::Silt, 1, 1_800_000.0, 0.9, 100_000_000, 1.2),
            run(
                System::VictoriaMetrics,
                0,
                1_000_000.0,
                1.0,
                400_000_000,
                3.0,
            ),
            run(
                System::VictoriaMetrics,
                1,
                1_000_000.0,
                1.0,
                400_000_000,
                3.0,
            ),
            run(System::Prometheus, 0, 200_000.0, 5.0, 300_000_000, 2.0),
            RunResult {
                count_check: Some(crate::verify::CountCheck {
                    expected_samples: 1000,
                    found_samples: 990,
                    ..Default::default()
                }),
                ..run(System::Prometheus, 1, 200_000.0, 5.0, 300_000_000, 2.0)
            },
        ];
        let md = render(&runs, &[], None, "`benches/results/x`");
        // Silt median 1.9 M vs 1.0 M: 1.90×, met; bytes 0.9 vs 1.0: 0.90× > 0.8×, missed.
        assert!(md.contains("| ingest, samples/s | 1.90 M | 1.00 M | 200 k | 1.90× | 9.50× | ≥ 1.5× VM | **met** |"), "{md}");
        assert!(
            md.contains("| 0.90× | 0.18× | ≤ 0.8× VM | missed: 1.12× to go |"),
            "{md}"
        );
        // Restart 1.1 s vs Prometheus 2.0 s = 0.55×: missed by 1.10×.
        assert!(
            md.contains("≤ 0.5× Prometheus | missed: 1.10× to go |"),
            "{md}"
        );
        assert!(md.contains("| 20,000 | silt | 1 |"));
        // Losses quote the worst run, without ratios.
        assert!(
            md.contains(
                "| samples missing on read-back (worst run) | – | – | 1.000 % | – | – | – | – |"
            ),
            "{md}"
        );
    }

    #[test]
    fn notes_below_the_marker_survive_regeneration() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.md");
        write_report(&p, "# one\n").unwrap();
        let first = fs::read_to_string(&p).unwrap();
        assert!(first.contains(NOTES_MARKER));
        fs::write(
            &p,
            first.replace(
                "(Hand-written analysis of the figures goes here.)",
                "my notes",
            ),
        )
        .unwrap();
        write_report(&p, "# two\n").unwrap();
        let second = fs::read_to_string(&p).unwrap();
        assert!(second.starts_with("# two\n"));
        assert!(second.ends_with("my notes\n"));
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(20_534), "20,534");
        assert_eq!(group_digits(1_000_000), "1,000,000");
        assert_eq!(group_digits(999), "999");
    }
}
