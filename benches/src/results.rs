//! Result records: one JSON file per run, plus the machine description, under
//! `benches/results/<date>-<host>/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::compare::Diff;
use crate::du::DiskUsage;
use crate::queries::Query;
use crate::sender::SendStats;
use crate::server::System;
use crate::verify::CountCheck;

/// Everything measured in one run of one system on one workload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub system: Option<System>,
    pub series: u64,
    pub duration_secs: u64,
    pub samples: u64,
    pub run: u32,
    pub seed: u64,
    pub started_unix: u64,
    pub connections: usize,
    pub max_samples_per_request: usize,
    pub requests: u64,
    pub wire_bytes: u64,
    /// Scheduling priority of the harness and servers.
    #[serde(default)]
    pub nice: i32,
    /// Start of the empty server until ready.
    pub startup_secs: Option<f64>,
    pub ingest: Option<SendStats>,
    /// Acknowledged samples / wall time until the last 2xx.
    pub samples_per_sec: Option<f64>,
    /// CPU seconds the server used during ingest.
    pub server_cpu_secs: Option<f64>,
    /// CPU seconds the harness (sender) used during ingest.
    pub harness_cpu_secs: Option<f64>,
    /// CPU seconds the whole machine was busy during ingest (all processes).
    pub machine_busy_cpu_secs: Option<f64>,
    /// 1-minute load average when the run started.
    pub loadavg_before: Option<f64>,
    /// VmHWM right after ingest.
    pub peak_rss_bytes: Option<u64>,
    pub rss_after_ingest_bytes: Option<u64>,
    /// Signal used to stop the server before the restart (SIGKILL, or SIGTERM for
    /// VictoriaMetrics, which has no WAL).
    pub restart_signal: Option<String>,
    /// Signal until the old process exited.
    pub shutdown_secs: Option<f64>,
    /// Start until ready on the data left by the stop (WAL replay / recovery).
    pub restart_secs: Option<f64>,
    /// VmHWM of the restarted process when it became ready.
    pub restart_peak_rss_bytes: Option<u64>,
    pub count_check: Option<CountCheck>,
    pub compact_secs: Option<f64>,
    pub disk: Option<DiskUsage>,
    pub disk_what: Option<String>,
    /// Disk bytes (apparent) / acknowledged samples.
    pub bytes_per_sample: Option<f64>,
    /// VmHWM at the end (after read-back and compaction).
    pub final_peak_rss_bytes: Option<u64>,
    pub error: Option<String>,
}

impl RunResult {
    pub fn rss_per_series(&self) -> Option<f64> {
        self.peak_rss_bytes
            .map(|b| b as f64 / self.series.max(1) as f64)
    }

    /// Server CPU per acknowledged sample, microseconds.
    pub fn cpu_us_per_sample(&self) -> Option<f64> {
        let ok = self.ingest.as_ref()?.ok_samples;
        Some(self.server_cpu_secs? * 1e6 / ok.max(1) as f64)
    }

    /// Share of the machine's CPU used by other processes during ingest (0..1).
    pub fn foreign_cpu_share(&self, nproc: usize) -> Option<f64> {
        let wall = self.ingest.as_ref()?.wall_secs;
        let other = self.machine_busy_cpu_secs? - self.server_cpu_secs? - self.harness_cpu_secs?;
        Some((other / (wall * nproc.max(1) as f64)).max(0.0))
    }

    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-r{}.json",
            self.series,
            self.system.map_or("unknown", System::name),
            self.run
        )
    }
}

/// One run of the query benchmark: the data loaded into every system, then every query
/// timed on each. Stored as `query/query-<series>-<unix time>.json` under the results dir.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryRun {
    /// Dashboard data: node_exporter-like series, hosts, covered seconds, samples.
    pub series: u64,
    pub hosts: u64,
    pub duration_secs: u64,
    pub samples: u64,
    /// SLO data: `up{job="blackbox"}` series at `slo_interval_secs`.
    pub slo_series: u64,
    pub slo_duration_secs: u64,
    pub slo_interval_secs: u64,
    pub slo_samples: u64,
    /// Timed repetitions per query and system (after one warm-up).
    pub repetitions: u32,
    pub seed: u64,
    pub started_unix: u64,
    pub nice: i32,
    pub systems: Vec<System>,
    pub machine: Option<Machine>,
    pub loads: Vec<LoadResult>,
    pub queries: Vec<QueryResult>,
    /// Dashboard refreshes, per system: every query once, back to back
    /// (`latencies_ms` holds each refresh's total; none before session 42).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshes: Vec<SystemTiming>,
    pub error: Option<String>,
    /// How answers were timed: [`TIMED_TO_LAST_BYTE`], or none in runs before
    /// session 23, whose client inflated gzip answers inside the timed interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<String>,
    /// The newest span of the data that Silt still held in its head when queried (loaded
    /// after a cut); none in runs before session 47, whose head held about the last minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_span_secs: Option<u64>,
}

/// [`QueryRun::timing`] of runs whose clock stops at the answer's last byte
/// (gzip inflated after it; see `rawhttp`).
pub const TIMED_TO_LAST_BYTE: &str = "last-byte";

impl QueryRun {
    pub fn file_name(&self) -> String {
        format!("query-{}-{}.json", self.series, self.started_unix)
    }
}

/// Loading the data into one system before the queries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub system: Option<System>,
    pub send: Option<SendStats>,
    /// From the last acknowledgement until the probe query saw every `up` sample.
    pub visible_secs: Option<f64>,
    /// Every metric name of the dashboard data read back and counted.
    pub count_check: Option<CountCheck>,
    /// Wait until the server's CPU went quiet (background compaction done) before timing.
    pub settle_secs: Option<f64>,
    pub rss_after_load_bytes: Option<u64>,
    pub error: Option<String>,
}

/// One query (one evaluation form) on every system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryResult {
    pub query: Query,
    pub timings: Vec<SystemTiming>,
    /// Silt's answer against Prometheus' (series, timestamps, values within 1e-6 relative).
    pub silt_vs_prometheus: Option<Diff>,
}

impl QueryResult {
    pub fn timing(&self, s: System) -> Option<&SystemTiming> {
        self.timings.iter().find(|t| t.system == Some(s))
    }
}

/// One query on one system.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SystemTiming {
    pub system: Option<System>,
    /// Wall time of each timed repetition (request sent until the whole answer is read).
    pub latencies_ms: Vec<f64>,
    /// Series and points of the warm-up answer.
    pub series: Option<u64>,
    pub points: Option<u64>,
    /// CPU seconds the server used during the timed repetitions (user + system from
    /// `/proc/<pid>/stat`, which counts threads that exited too; 10 ms ticks).
    pub cpu_secs: Option<f64>,
    pub error: Option<String>,
}

impl SystemTiming {
    pub fn median_ms(&self) -> Option<f64> {
        crate::report::median(self.latencies_ms.clone())
    }

    pub fn min_ms(&self) -> Option<f64> {
        self.latencies_ms
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .reduce(f64::min)
    }

    /// Cores busy on average while the query ran: server CPU / wall time of the repetitions.
    pub fn cores_used(&self) -> Option<f64> {
        let wall: f64 = self.latencies_ms.iter().sum::<f64>() / 1000.0;
        let c = self.cpu_secs? / wall;
        (c.is_finite() && c > 0.0).then_some(c)
    }

    /// Raw samples per second per busy core at the median latency.
    pub fn samples_per_sec_per_core(&self, samples: u64) -> Option<f64> {
        Some(samples as f64 / (self.median_ms()? / 1000.0) / self.cores_used()?)
    }
}

/// The machine and software the runs used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub date: String,
    pub nproc: usize,
    pub mem_total_bytes: u64,
    pub cpu_model: String,
    pub kernel: String,
    pub os: String,
    pub filesystem: String,
    pub versions: BTreeMap<String, String>,
}

impl Machine {
    pub fn probe(work_dir: &Path) -> Machine {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let mem_kb: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|s| s.trim_matches('"').to_string())
            .unwrap_or_default();
        let filesystem = Command::new("df")
            .args(["--output=fstype", &work_dir.display().to_string()])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .nth(1)
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            date: today(),
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total_bytes: mem_kb * 1024,
            cpu_model,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            filesystem,
            versions: BTreeMap::new(),
        }
    }
}

/// Today's date (UTC) as YYYY-MM-DD.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_timestamp(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    format!(
        "{} {:02}:{:02} UTC",
        civil_date(days as i64),
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let s = serde_json::to_string_pretty(v)?;
    fs::write(path, s + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Load every run result and the machine file from `dir`.
pub fn load_dir(dir: &Path) -> Result<(Vec<RunResult>, Option<Machine>)> {
    let mut runs = Vec::new();
    let mut machine = None;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let s = fs::read_to_string(&p)?;
        if p.file_name().and_then(|n| n.to_str()) == Some("machine.json") {
            machine =
                Some(serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display()))?);
        } else {
            runs.push(
                serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display()))?,
            );
        }
    }
    Ok((runs, machine))
}

/// Every query run under `dir/query/`, oldest first (none if the directory is missing).
pub fn load_query_dir(dir: &Path) -> Result<Vec<QueryRun>> {
    let mut out: Vec<QueryRun> = load_json_dir(&dir.join("query"))?;
    out.sort_by_key(|r| r.started_unix);
    Ok(out)
}

/// Every `*.json` file of `dir` parsed as a `T` (none if the directory is
/// missing), in no particular order.
pub fn load_json_dir<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let s = fs::read_to_string(&p)?;
        out.push(serde_json::from_str(&s).with_context(|| format!("parsing {}", p.display()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
        assert_eq!(
            utc_timestamp(19_782 * 86_400 + 3_723),
            "2024-02-29 01:02 UTC"
        );
    }

    #[test]
    fn results_round_trip_through_a_directory() {
        let d = tempfile::tempdir().unwrap();
        let r = RunResult {
            system: Some(System::VictoriaMetrics),
            series: 20_000,
            run: 2,
            peak_rss_bytes: Some(40_000_000),
            ..Default::default()
        };
        write_json(&d.path().join(r.file_name()), &r).unwrap();
        write_json(&d.path().join("machine.json"), &Machine::probe(d.path())).unwrap();
        let (runs, m) = load_dir(d.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].file_name(), "20000-victoria-metrics-r2.json");
        assert_eq!(runs[0].rss_per_series(), Some(2000.0));
        assert!(m.unwrap().nproc >= 1);
        // Query runs live in their own subdirectory, which the run loader skips.
        let q = QueryRun {
            series: 4_000,
            started_unix: 7,
            ..Default::default()
        };
        write_json(&d.path().join("query").join(q.file_name()), &q).unwrap();
        assert_eq!(load_dir(d.path()).unwrap().0.len(), 1);
        let qs = load_query_dir(d.path()).unwrap();
        assert_eq!(qs.len(), 1);
        assert_eq!(qs[0].series, 4_000);
    }

    #[test]
    fn timing_figures() {
        let t = SystemTiming {
            latencies_ms: vec![100.0, 300.0, 200.0],
            cpu_secs: Some(0.3),
            ..Default::default()
        };
        assert_eq!(t.median_ms(), Some(200.0));
        assert_eq!(t.min_ms(), Some(100.0));
        // 0.3 s of CPU in 0.6 s of wall time: half a core.
        assert_eq!(t.cores_used(), Some(0.5));
        // 1e6 samples in 0.2 s on 0.5 cores.
        assert_eq!(t.samples_per_sec_per_core(1_000_000), Some(1e7));
        assert_eq!(SystemTiming::default().cores_used(), None);
    }
}
