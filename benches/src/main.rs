//! `silt-bench`: runs the ingest benchmark against Silt, VictoriaMetrics and Prometheus and
//! writes `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use silt_bench::encode;
use silt_bench::harness::{self, Options, Scale, Timeouts};
use silt_bench::report;
use silt_bench::results;
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
    /// Regenerate the report from recorded results.
    Report {
        /// Results directory (benches/results/<date>-<host>).
        #[arg(long)]
        results: PathBuf,
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
    /// Concurrent connections (shards) of the sender.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 2000)]
    max_samples_per_request: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where run results go [default: benches/results/<date>-<host>].
    #[arg(long)]
    results: Option<PathBuf>,
    /// Report to write (from every result in the results directory).
    #[arg(long)]
    out: Option<PathBuf>,
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
    /// Extra argument for `silt serve` (repeatable).
    #[arg(long = "silt-arg", allow_hyphen_values = true)]
    silt_args: Vec<String>,
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
    /// Keep the servers' data directories after each run.
    #[arg(long)]
    keep_data: bool,
    /// Scheduling priority (process and autogroup) for the harness and the servers it
    /// starts; negative needs root. On a shared machine, keeps concurrent builds in other
    /// sessions from skewing the figures.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    nice: i32,
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

fn write_report(results_dir: &Path, out: &Path) -> Result<()> {
    let (runs, machine) = results::load_dir(results_dir)?;
    let md = report::render(&runs, machine.as_ref(), &results_dir.display().to_string());
    report::write_report(out, &md)?;
    eprintln!("wrote {} ({} runs)", out.display(), runs.len());
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
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let results_dir = a
        .results
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("benches/results/{}-{host}", results::today())));
    let bins = Binaries {
        silt: a.silt_bin.clone().unwrap_or_else(default_silt_bin),
        victoria_metrics: a.vm_bin.clone(),
        prometheus: a.prometheus_bin.clone(),
        silt_args: a.silt_args.clone(),
    };
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
        connections: a.connections,
        max_samples: a.max_samples_per_request,
        seed: a.seed,
        results_dir: results_dir.clone(),
        work_dir: a
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("silt-bench")),
        bins,
        timeouts: Timeouts {
            start: a.start_timeout,
            ingest: a.ingest_timeout,
            restart: a.restart_timeout,
            check: a.check_timeout,
            compact: a.compact_timeout,
            stop: Duration::from_secs(120),
        },
        keep_data: a.keep_data,
        nice: a.nice,
    };
    if a.nice != 0 {
        // SAFETY: setpriority(2) on this process; children inherit the value.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, a.nice) };
        if rc != 0 {
            bail!(
                "setpriority({}): {}",
                a.nice,
                std::io::Error::last_os_error()
            );
        }
        // With autogroup scheduling, CPU is first shared between sessions, so the process
        // priority alone does not help against other sessions' builds: set the session's too.
        if let Err(e) = std::fs::write("/proc/self/autogroup", a.nice.to_string())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            bail!("setting the autogroup priority to {}: {e}", a.nice);
        }
    }
    let runs = harness::run(&opts).context("benchmark")?;
    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "{} runs, {failed} with errors; results in {}",
        runs.len(),
        results_dir.display()
    );
    if let Some(out) = &a.out {
        write_report(&results_dir, out)?;
    }
    Ok(())
}
