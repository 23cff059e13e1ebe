//! `silt-bench`: runs the ingest benchmark against Silt, VictoriaMetrics and Prometheus and
//! writes `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use silt_bench::encode;
use silt_bench::harness::{self, Options, Scale, Timeouts};
use silt_bench::querybench::{self, QueryOptions, QueryTimeouts};
use silt_bench::report;
use silt_bench::results;
use silt_bench::rules::{self, RulesOptions, RulesTimeouts};
use silt_bench::server::{Binaries, System};
use silt_bench::workload::{Spec, Workload};

#[derive(Parser)]
#[command(
    version,
    about = "Silt / VictoriaMetrics / Prometheus benchmark harness"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the ingest benchmark (ingest rate, disk, RSS, restart) and write the report.
    Ingest(Box<IngestArgs>),
    /// Run the query benchmark (same data in every system, dashboard/alert/SLO queries timed
    /// over HTTP) and, with --out, write the report.
    Query(Box<QueryArgs>),
    /// Run the rules benchmark (the same rule file evaluated by Silt and Prometheus over the
    /// same live data, timed per round) and, with --out, write the report.
    Rules(Box<RulesArgs>),
    /// Backtest the forecasting and anomaly functions (generated series, optionally real ones)
    /// and write the results into docs/forecasting.md.
    Forecast(Box<silt_bench::forecast::ForecastArgs>),
    /// Regenerate the report from recorded results (ingest runs and query runs).
    Report {
        /// Results directory (benches/results/<date>-<host>); repeat it to report the runs of
        /// several together (say, an ingest run and a later query run).
        #[arg(long, required = true)]
        results: Vec<PathBuf>,
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
    },
    /// Generate and encode a workload, print its statistics, send nothing.
    Workload {
        #[arg(long, default_value_t = 20_000)]
        series: usize,
        #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 2000)]
        max_samples_per_request: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Active series (one scale; see also --scale).
    #[arg(long)]
    series: Option<usize>,
    /// Hours of 15 s scrapes for --series.
    #[arg(long, default_value_t = 6.0)]
    hours: f64,
    /// SERIES:DURATION, e.g. 200000:1h; repeat for several scales (run smallest first).
    #[arg(long = "scale", value_parser = parse_scale)]
    scales: Vec<Scale>,
    /// Runs per system and scale (systems alternate within each run).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "silt,victoria-metrics,prometheus"
    )]
    systems: Vec<System>,
    /// Where run results go [default: benches/results/<date>-<host>].
    #[arg(long)]
    results: Option<PathBuf>,
    /// Report to write (from every result in the results directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    ingest_timeout: Duration,
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    restart_timeout: Duration,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    check_timeout: Duration,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    compact_timeout: Duration,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// Series of the dashboard data (whole node_exporter hosts of ~160 series).
    #[arg(long, default_value_t = 4_000)]
    series: usize,
    /// Time covered by the dashboard data (15 s scrapes); 25h leaves room for 24 h windows
    /// and 24 h ranges of 5m rates.
    #[arg(long, default_value = "25h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// `up{job="blackbox"}` series of the SLO data set (0: none).
    #[arg(long, default_value_t = 200)]
    slo_series: usize,
    /// Time covered by the SLO data; 32d fits a 30d window and its 24 h range.
    #[arg(long, default_value = "32d", value_parser = humantime::parse_duration)]
    slo_duration: Duration,
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    slo_interval: Duration,
    /// Timed repetitions per query and system, after one warm-up.
    #[arg(long, default_value_t = 7)]
    repetitions: u32,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "silt,victoria-metrics,prometheus"
    )]
    systems: Vec<System>,
    /// Only queries whose name contains one of these (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// All shards are kept within this window of each other while loading (Prometheus
    /// rejects samples more than 1 h behind the newest).
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    send_window: Duration,
    /// Silt gets the data up to this long before the end, cuts its head, then gets the
    /// rest, which its head holds while queried, as in steady operation, where the head
    /// holds from none to two hours (0: no cut; the backfill's own cuts leave about the
    /// last minute).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    head_span: Duration,
    /// Skip the full read-back of every metric name after loading (the probe query still
    /// waits for every `up` sample).
    #[arg(long)]
    no_full_check: bool,
    /// Results directory; query runs go to its `query/` subdirectory. Use the ingest run's
    /// directory to get one report with both [default: benches/results/<date>-<host>].
    #[arg(long)]
    results: Option<PathBuf>,
    /// Report to write (ingest runs and query runs of the results directory).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    load_timeout: Duration,
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    check_timeout: Duration,
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    settle_timeout: Duration,
    /// One query request.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// All queries of the run together.
    #[arg(long, default_value = "90m", value_parser = humantime::parse_duration)]
    queries_timeout: Duration,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Args)]
struct RulesArgs {
    /// Active series (whole node_exporter hosts of ~160 series).
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Recording and alerting rules (groups of all rule templates, one per scope).
    #[arg(long, default_value_t = 10_000)]
    rules: usize,
    /// Evaluation interval of every group.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Data before the start (the rules read up to 10 minutes back).
    #[arg(long, default_value = "12m", value_parser = humantime::parse_duration)]
    history: Duration,
    /// Measured rounds per system.
    #[arg(long, default_value_t = 8)]
    rounds: u32,
    /// Rounds after every group ran once and before the measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Live data is sent this far ahead of the clock.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    lead: Duration,
    /// Caps every alerting rule's `for` (the comparison waits this long).
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    max_for: Duration,
    /// Groups both evaluate at once for the comparison (every n-th group).
    #[arg(long, default_value_t = 40)]
    check_groups: usize,
    /// Recording rules whose output is compared between Silt and Prometheus.
    #[arg(long, default_value_t = 200)]
    check_rules: usize,
    /// Results directory; runs go to its `rules/` subdirectory.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Report to write (every run of the results directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Validates the generated rule file first (skipped if missing).
    #[arg(long, default_value = "/usr/bin/promtool")]
    promtool_bin: PathBuf,
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    load_timeout: Duration,
    /// From a rule reload until every group ran once.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    reload_timeout: Duration,
    /// Print the generated rule file and exit.
    #[arg(long)]
    print_rules: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Flags every server benchmark shares: the binaries, the sender, the data
/// directories and the scheduling priority.
#[derive(clap::Args)]
struct ServerArgs {
    /// Concurrent connections (shards) of the sender.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 2000)]
    max_samples_per_request: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Parent of the servers' data directories [default: $TMPDIR/silt-bench].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Silt binary [default: `silt` next to this program, else target/release/silt].
    #[arg(long, env = "SILT_BIN")]
    silt_bin: Option<PathBuf>,
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    vm_bin: PathBuf,
    #[arg(long, default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    /// Extra argument for `silt serve` (repeatable; the query benchmark puts
    /// its defaults `--retention 90d --query.timeout 10m
    /// --query.max-samples 2000000000` first).
    #[arg(long = "silt-arg", allow_hyphen_values = true)]
    silt_args: Vec<String>,
    /// Keep the servers' data directories after each run.
    #[arg(long)]
    keep_data: bool,
    /// Scheduling priority (process and autogroup) for the harness and the servers it
    /// starts; negative needs root. On a shared machine, keeps concurrent builds in other
    /// sessions from skewing the figures.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    nice: i32,
}

impl ServerArgs {
    fn work_dir(&self) -> PathBuf {
        self.work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("silt-bench"))
    }

    /// The servers' binaries; `silt_args` go before the user's `--silt-arg`s.
    fn binaries(&self, mut silt_args: Vec<String>, vm_args: Vec<String>) -> Binaries {
        silt_args.extend(self.silt_args.iter().cloned());
        Binaries {
            silt: self.silt_bin.clone().unwrap_or_else(default_silt_bin),
            victoria_metrics: self.vm_bin.clone(),
            prometheus: self.prometheus_bin.clone(),
            silt_args,
            vm_args,
        }
    }
}

fn parse_scale(s: &str) -> Result<Scale, String> {
    let (n, d) = s
        .split_once(':')
        .ok_or_else(|| format!("expected SERIES:DURATION, got {s:?}"))?;
    let series = n
        .replace(['_', ','], "")
        .parse()
        .map_err(|e| format!("series {n:?}: {e}"))?;
    let duration = humantime::parse_duration(d).map_err(|e| format!("duration {d:?}: {e}"))?;
    Ok(Scale { series, duration })
}

fn default_silt_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("silt")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release/silt"))
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("silt-bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    silt_bench::elapsed_secs();
    match Cli::parse().cmd {
        Cmd::Ingest(a) => ingest(*a),
        Cmd::Query(a) => query(*a),
        Cmd::Rules(a) => rules_bench(*a),
        Cmd::Forecast(a) => Ok(silt_bench::forecast::cli(*a)?),
        Cmd::Report { results, out } => write_report(&results, &out),
        Cmd::Workload {
            series,
            duration,
            connections,
            max_samples_per_request,
            seed,
        } => {
            let t0 = Instant::now();
            let w = Workload::new(Spec {
                series,
                duration_ms: duration.as_millis() as i64,
                end_ms: 1_700_000_000_000,
                seed,
            });
            let t1 = Instant::now();
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            let enc = encode::encode(&w, connections, max_samples_per_request, threads);
            println!(
                "{} series on {} hosts ({} metric names, {:.2} labels/series), {} scrapes, {} samples\n\
                 {} requests: {:.1} MiB protobuf, {:.1} MiB snappy = {:.2} bytes/sample on the wire\n\
                 generated in {:.2}s, encoded in {:.2}s",
                w.series.len(),
                w.hosts.len(),
                w.families.len(),
                w.avg_labels(),
                w.scrapes,
                enc.samples,
                enc.requests(),
                enc.raw_bytes as f64 / 1048576.0,
                enc.wire_bytes as f64 / 1048576.0,
                enc.wire_bytes as f64 / enc.samples as f64,
                (t1 - t0).as_secs_f64(),
                t1.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn write_report(results_dirs: &[PathBuf], out: &Path) -> Result<()> {
    let (mut runs, mut queries, mut rule_runs, mut machine) =
        (Vec::new(), Vec::new(), Vec::new(), None);
    for dir in results_dirs {
        let (r, m) = results::load_dir(dir)?;
        runs.extend(r);
        machine = machine.or(m);
        queries.extend(results::load_query_dir(dir)?);
        rule_runs.extend(rules::load_dir(dir)?);
    }
    queries.sort_by_key(|r| r.started_unix);
    rule_runs.sort_by_key(|r| r.started_unix);
    let names: Vec<String> = results_dirs
        .iter()
        .map(|d| format!("`{}`", d.display()))
        .collect();
    let mut md = report::render(&runs, &queries, machine.as_ref(), &names.join(" and "));
    md.push_str(&silt_bench::rules_report::render(&rule_runs));
    report::write_report(out, &md)?;
    eprintln!(
        "wrote {} ({} ingest runs, {} query runs)",
        out.display(),
        runs.len(),
        queries.len()
    );
    Ok(())
}

fn default_results_dir() -> PathBuf {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    PathBuf::from(format!("benches/results/{}-{host}", results::today()))
}

/// Run this process (and the servers it starts) at `nice`.
fn set_priority(nice: i32) -> Result<()> {
    if nice == 0 {
        return Ok(());
    }
    // SAFETY: setpriority(2) on this process; children inherit the value.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if rc != 0 {
        bail!("setpriority({nice}): {}", std::io::Error::last_os_error());
    }
    // With autogroup scheduling, CPU is first shared between sessions, so the process
    // priority alone does not help against other sessions' builds: set the session's too.
    if let Err(e) = std::fs::write("/proc/self/autogroup", nice.to_string())
        && e.kind() != std::io::ErrorKind::NotFound
    {
        bail!("setting the autogroup priority to {nice}: {e}");
    }
    Ok(())
}

fn query(a: QueryArgs) -> Result<()> {
    let results_dir = a.results.clone().unwrap_or_else(default_results_dir);
    let silt_args: Vec<String> = [
        "--retention",
        "90d",
        "--query.timeout",
        "10m",
        "--query.max-samples",
        "2000000000",
    ]
    .map(String::from)
    .to_vec();
    let opts = QueryOptions {
        series: a.series,
        duration: a.duration,
        slo_series: a.slo_series,
        slo_duration: a.slo_duration,
        slo_interval: a.slo_interval,
        repetitions: a.repetitions.max(1),
        systems: a.systems.clone(),
        connections: a.server.connections,
        max_samples: a.server.max_samples_per_request,
        send_window: a.send_window,
        head_span: a.head_span,
        full_check: !a.no_full_check,
        only: a.only.clone(),
        seed: a.server.seed,
        results_dir: results_dir.clone(),
        work_dir: a.server.work_dir(),
        // VictoriaMetrics: data visible at once (the benchmark waits for it anyway).
        bins: a
            .server
            .binaries(silt_args, vec!["-search.latencyOffset=0s".into()]),
        timeouts: QueryTimeouts {
            start: a.start_timeout,
            load: a.load_timeout,
            check: a.check_timeout,
            settle: a.settle_timeout,
            request: a.request_timeout,
            queries: a.queries_timeout,
            stop: Duration::from_secs(120),
        },
        keep_data: a.server.keep_data,
        nice: a.server.nice,
    };
    querybench::check_binaries(&opts)?;
    set_priority(a.server.nice)?;
    let run = querybench::run(&opts).context("query benchmark")?;
    eprintln!(
        "{} queries timed{}; results in {}",
        run.queries.len(),
        run.error
            .as_deref()
            .map_or(String::new(), |e| format!(" (stopped: {e})")),
        results_dir.display()
    );
    if let Some(out) = &a.out {
        write_report(std::slice::from_ref(&results_dir), out)?;
    }
    Ok(())
}

fn rules_bench(a: RulesArgs) -> Result<()> {
    if a.print_rules {
        print!(
            "{}",
            rules::rule_file(a.series, a.rules, a.interval, a.max_for, a.server.seed)?
        );
        return Ok(());
    }
    let results_dir = a.results.clone().unwrap_or_else(default_results_dir);
    let opts = RulesOptions {
        series: a.series,
        rules: a.rules,
        interval: a.interval,
        history: a.history,
        rounds: a.rounds.max(1),
        warmup: a.warmup,
        lead: a.lead,
        max_for: a.max_for,
        check_groups: a.check_groups,
        check_rules: a.check_rules,
        connections: a.server.connections,
        max_samples: a.server.max_samples_per_request,
        seed: a.server.seed,
        results_dir: results_dir.clone(),
        work_dir: a.server.work_dir(),
        bins: a.server.binaries(Vec::new(), Vec::new()),
        promtool: a.promtool_bin.clone(),
        timeouts: RulesTimeouts {
            start: a.start_timeout,
            load: a.load_timeout,
            reload: a.reload_timeout,
            stop: Duration::from_secs(120),
        },
        keep_data: a.server.keep_data,
        nice: a.server.nice,
    };
    rules::check_binaries(&opts)?;
    set_priority(a.server.nice)?;
    let run = rules::run(&opts).context("rules benchmark")?;
    eprintln!(
        "{} rules over {} series{}; results in {}",
        run.rules,
        run.series,
        run.error
            .as_deref()
            .map_or(String::new(), |e| format!(" (stopped: {e})")),
        results_dir.display()
    );
    if let Some(out) = &a.out {
        write_report(std::slice::from_ref(&results_dir), out)?;
    }
    Ok(())
}

fn ingest(a: IngestArgs) -> Result<()> {
    let mut scales = a.scales.clone();
    if let Some(series) = a.series {
        scales.push(Scale {
            series,
            duration: Duration::from_secs_f64(a.hours * 3600.0),
        });
    }
    if scales.is_empty() {
        bail!("give --series N [--hours H] or --scale SERIES:DURATION");
    }
    let results_dir = a.results.clone().unwrap_or_else(default_results_dir);
    let bins = a.server.binaries(Vec::new(), Vec::new());
    for s in &a.systems {
        let p = bins.path(*s);
        if !p.exists() {
            bail!("{s}: binary {} not found", p.display());
        }
    }
    let opts = Options {
        scales,
        runs: a.runs.max(1),
        systems: a.systems.clone(),
        connections: a.server.connections,
        max_samples: a.server.max_samples_per_request,
        seed: a.server.seed,
        results_dir: results_dir.clone(),
        work_dir: a.server.work_dir(),
        bins,
        timeouts: Timeouts {
            start: a.start_timeout,
            ingest: a.ingest_timeout,
            restart: a.restart_timeout,
            check: a.check_timeout,
            compact: a.compact_timeout,
            stop: Duration::from_secs(120),
        },
        keep_data: a.server.keep_data,
        nice: a.server.nice,
    };
    set_priority(a.server.nice)?;
    let runs = harness::run(&opts).context("benchmark")?;
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "{} runs, {failed} with errors; results in {}",
        runs.len(),
        results_dir.display()
    );
    if let Some(out) = &a.out {
        write_report(std::slice::from_ref(&results_dir), out)?;
    }
    Ok(())
}
