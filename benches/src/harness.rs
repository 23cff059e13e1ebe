//! The ingest benchmark: for each scale, generate and pre-encode the workload once, then run
//! every system on it, alternating the order run by run, and record one result per run.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::encode::{self, Encoded};
use crate::results::{self, Machine, RunResult};
use crate::sender;
use crate::server::{self, Binaries, Server, System};
use crate::verify;
use crate::workload::{Spec, Workload};

/// One workload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub series: usize,
    pub duration: Duration,
}

/// Upper bounds for each phase of a run; a phase that exceeds its bound fails the run.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub start: Duration,
    pub ingest: Duration,
    pub restart: Duration,
    pub check: Duration,
    pub compact: Duration,
    pub stop: Duration,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scales: Vec<Scale>,
    pub runs: u32,
    pub systems: Vec<System>,
    pub connections: usize,
    pub max_samples: usize,
    pub seed: u64,
    pub results_dir: PathBuf,
    pub work_dir: PathBuf,
    pub bins: Binaries,
    pub timeouts: Timeouts,
    pub keep_data: bool,
    /// Scheduling priority the harness runs at (recorded only).
    pub nice: i32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Busy CPU seconds of the whole machine so far (everything but idle and iowait).
fn machine_busy_secs() -> Option<f64> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).unwrap_or(&0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(busy as f64 / hz)
}

fn loadavg() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn log(msg: &str) {
    eprintln!("[silt-bench {:>8.1}s] {msg}", crate::elapsed_secs());
}

/// Run the whole benchmark; returns every run's result (also written under `results_dir`).
pub fn run(opts: &Options) -> Result<Vec<RunResult>> {
    fs::create_dir_all(&opts.results_dir)?;
    fs::create_dir_all(&opts.work_dir)?;
    let mut machine = Machine::probe(&opts.work_dir);
    for s in &opts.systems {
        machine
            .versions
            .insert(s.title().to_string(), Server::version(*s, &opts.bins));
    }
    results::write_json(&opts.results_dir.join("machine.json"), &machine)?;
    let mut all = Vec::new();
    for scale in &opts.scales {
        let t0 = Instant::now();
        let spec = Spec {
            series: scale.series,
            duration_ms: scale.duration.as_millis() as i64,
            // A minute back, so that every sample is old enough for VictoriaMetrics'
            // -search.latencyOffset and never in the future for anyone.
            end_ms: now_ms() - 60_000,
            seed: opts.seed,
        };
        let w = Workload::new(spec);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let enc = encode::encode(&w, opts.connections, opts.max_samples, threads);
        log(&format!(
            "workload: {} series on {} hosts, {} scrapes, {} samples, {:.1} labels/series; {} requests, \
             {:.0} MiB protobuf, {:.0} MiB snappy ({:.1} bytes/sample on the wire); prepared in {:.1}s",
            w.series.len(),
            w.hosts.len(),
            w.scrapes,
            enc.samples,
            w.avg_labels(),
            enc.requests(),
            enc.raw_bytes as f64 / 1048576.0,
            enc.wire_bytes as f64 / 1048576.0,
            enc.wire_bytes as f64 / enc.samples as f64,
            t0.elapsed().as_secs_f64()
        ));
        for r in 0..opts.runs {
            let n = opts.systems.len();
            for i in 0..n {
                let sys = opts.systems[(i + r as usize) % n];
                let res = run_one(sys, &w, &enc, r, opts);
                let path = opts.results_dir.join(res.file_name());
                results::write_json(&path, &res)?;
                log(&summary(&res));
                all.push(res);
            }
        }
    }
    Ok(all)
}

fn summary(r: &RunResult) -> String {
    let f = |v: Option<f64>, d: usize| v.map_or("-".into(), |x| format!("{x:.d$}"));
    format!(
        "{} r{} {} series: {} samples/s, {} bytes/sample, {} KiB RSS/series, restart {} s, read back {}{}",
        r.system.map_or("?", System::name),
        r.run,
        r.series,
        f(r.samples_per_sec, 0),
        f(r.bytes_per_sample, 3),
        f(r.rss_per_series().map(|b| b / 1024.0), 2),
        f(r.restart_secs, 2),
        r.count_check.as_ref().map_or("-".into(), |c| format!(
            "{}/{}",
            c.found_samples, c.expected_samples
        )),
        r.error
            .as_deref()
            .map_or(String::new(), |e| format!("; ERROR: {e}"))
    )
}

/// One system on one workload; failures are recorded in the result, not returned.
pub fn run_one(sys: System, w: &Workload, enc: &Encoded, run: u32, opts: &Options) -> RunResult {
    let mut res = RunResult {
        system: Some(sys),
        series: w.series.len() as u64,
        duration_secs: (w.scrapes as i64 * crate::workload::SCRAPE_INTERVAL_MS / 1000) as u64,
        samples: enc.samples,
        run,
        seed: opts.seed,
        started_unix: (now_ms() / 1000) as u64,
        connections: opts.connections,
        max_samples_per_request: opts.max_samples,
        requests: enc.requests() as u64,
        wire_bytes: enc.wire_bytes,
        nice: opts.nice,
        ..Default::default()
    };
    let run_dir = opts
        .work_dir
        .join(format!("{}-{}-r{run}", w.series.len(), sys.name()));
    log(&format!("{sys} r{run}: starting in {}", run_dir.display()));
    if let Err(e) = phases(sys, w, enc, opts, &run_dir, &mut res) {
        res.error = Some(format!("{e:#}"));
    }
    if !opts.keep_data {
        let _ = fs::remove_dir_all(&run_dir);
    }
    res
}

fn phases(
    sys: System,
    w: &Workload,
    enc: &Encoded,
    opts: &Options,
    run_dir: &Path,
    res: &mut RunResult,
) -> Result<()> {
    let to = &opts.timeouts;
    if run_dir.exists() {
        fs::remove_dir_all(run_dir)?;
    }
    fs::create_dir_all(run_dir)?;
    // Let the previous run's writeback finish before the clock runs.
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    res.loadavg_before = loadavg();
    let (mut srv, startup) = Server::start(sys, &opts.bins, run_dir, to.start).context("start")?;
    res.startup_secs = Some(startup.as_secs_f64());

    // Ingest.
    let cpu0 = srv.cpu_secs()?;
    let me0 = server::proc_cpu_secs(std::process::id())?;
    let busy0 = machine_busy_secs();
    let stats = sender::send_all(&srv.write_url(), enc, to.ingest);
    res.server_cpu_secs = Some(srv.cpu_secs()? - cpu0);
    res.harness_cpu_secs = Some(server::proc_cpu_secs(std::process::id())? - me0);
    res.machine_busy_cpu_secs = busy0.and_then(|b| Some(machine_busy_secs()? - b));
    res.samples_per_sec = Some(stats.samples_per_sec());
    res.peak_rss_bytes = Some(srv.peak_rss()?);
    res.rss_after_ingest_bytes = Some(srv.rss()?);
    let timed_out = stats.timed_out;
    log(&format!(
        "{sys} r{run}: ingest {:.1}s, {:.0} samples/s, {} retries, {} rejected{}",
        stats.wall_secs,
        stats.samples_per_sec(),
        stats.retries,
        stats.rejected_samples,
        stats
            .errors
            .first()
            .map_or(String::new(), |e| format!(" (first: {e})")),
        run = res.run
    ));
    res.ingest = Some(stats);
    if timed_out {
        anyhow::bail!("ingest did not finish within {:?}", to.ingest);
    }

    // Crash-restart.
    srv.flush().context("flush before restart")?;
    let (signal, signal_name) = srv.restart_signal();
    res.restart_signal = Some(signal_name.to_string());
    let (down, restart) = srv.restart(signal, to.restart).context("restart")?;
    res.shutdown_secs = Some(down.as_secs_f64());
    res.restart_secs = Some(restart.as_secs_f64());
    res.restart_peak_rss_bytes = Some(srv.peak_rss()?);

    // Everything acknowledged must read back, after the crash too.
    let check = verify::check(&srv, w, to.check).context("read-back check")?;
    if !check.ok() {
        log(&format!(
            "{sys}: read back {} of {} samples, {} of {} series; first mismatches {:?}",
            check.found_samples,
            check.expected_samples,
            check.found_series,
            check.expected_series,
            &check.mismatches[..check.mismatches.len().min(3)]
        ));
    }
    res.count_check = Some(check);

    // Disk after compaction.
    let t0 = Instant::now();
    let (disk, what) = srv.compact_and_measure(to.compact).context("compaction")?;
    res.compact_secs = Some(t0.elapsed().as_secs_f64());
    let acked = res.ingest.as_ref().map_or(0, |i| i.ok_samples);
    res.bytes_per_sample = Some(disk.apparent_bytes as f64 / acked.max(1) as f64);
    res.disk = Some(disk);
    res.disk_what = Some(what);
    res.final_peak_rss_bytes = Some(srv.peak_rss()?);
    srv.stop(to.stop).context("stop")?;
    Ok(())
}
