//! Starts, probes, restarts and stops the systems under test (Silt, VictoriaMetrics,
//! Prometheus), each on a free 127.0.0.1 port with its own empty data directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::du::{self, DiskUsage};

/// A system under test.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Silt,
    #[value(name = "victoria-metrics", alias = "vm")]
    VictoriaMetrics,
    #[value(alias = "prom")]
    Prometheus,
}

impl System {
    pub const ALL: [System; 3] = [System::Silt, System::VictoriaMetrics, System::Prometheus];

    pub fn name(self) -> &'static str {
        match self {
            System::Silt => "silt",
            System::VictoriaMetrics => "victoria-metrics",
            System::Prometheus => "prometheus",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            System::Silt => "Silt",
            System::VictoriaMetrics => "VictoriaMetrics",
            System::Prometheus => "Prometheus",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the binaries are and extra arguments for each.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub silt: PathBuf,
    pub victoria_metrics: PathBuf,
    pub prometheus: PathBuf,
    pub silt_args: Vec<String>,
    /// Extra flags for VictoriaMetrics (later ones win over the defaults).
    pub vm_args: Vec<String>,
}

impl Binaries {
    pub fn path(&self, s: System) -> &Path {
        match s {
            System::Silt => &self.silt,
            System::VictoriaMetrics => &self.victoria_metrics,
            System::Prometheus => &self.prometheus,
        }
    }
}

/// A running server with its data directory.
pub struct Server {
    pub system: System,
    pub port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    agent: ureq::Agent,
}

/// A free port on 127.0.0.1 (bound and released; good enough on a quiet loopback).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a probe socket")?;
    Ok(l.local_addr()?.port())
}

pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

impl Server {
    /// Start `system` with an empty data directory under `run_dir`; returns once it is ready.
    pub fn start(
        system: System,
        bins: &Binaries,
        run_dir: &Path,
        timeout: Duration,
    ) -> Result<(Server, Duration)> {
        let port = free_port()?;
        let data_dir = run_dir.join("data");
        if data_dir.exists() {
            fs::remove_dir_all(&data_dir)
                .with_context(|| format!("clearing {}", data_dir.display()))?;
        }
        fs::create_dir_all(&data_dir)?;
        let listen = format!("127.0.0.1:{port}");
        let d = data_dir.display().to_string();
        let args: Vec<String> = match system {
            System::Silt => {
                let mut a = vec![
                    "serve".into(),
                    "--listen".into(),
                    listen,
                    "--data-dir".into(),
                    d,
                ];
                a.extend(bins.silt_args.iter().cloned());
                a
            }
            System::VictoriaMetrics => vec![
                format!("-httpListenAddr={listen}"),
                format!("-storageDataPath={d}"),
                "-search.disableCache".into(),
                "-retentionPeriod=100y".into(),
                "-search.maxUniqueTimeseries=10000000".into(),
                "-search.maxQueryDuration=10m".into(),
            ]
            .into_iter()
            .chain(bins.vm_args.iter().cloned())
            .collect(),
            System::Prometheus => {
                let cfg = run_dir.join("prometheus.yml");
                fs::write(
                    &cfg,
                    "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
                )?;
                vec![
                    format!("--config.file={}", cfg.display()),
                    format!("--storage.tsdb.path={d}"),
                    format!("--web.listen-address={listen}"),
                    "--web.enable-remote-write-receiver".into(),
                    "--web.enable-admin-api".into(),
                    "--storage.tsdb.retention.time=100y".into(),
                    "--query.timeout=10m".into(),
                    "--query.max-samples=2000000000".into(),
                ]
            }
        };
        let mut s = Server {
            system,
            port,
            data_dir,
            log_path: run_dir.join(format!("{}.log", system.name())),
            program: bins.path(system).to_path_buf(),
            args,
            child: None,
            agent: http_agent(Duration::from_secs(600)),
        };
        let t0 = Instant::now();
        s.spawn()?;
        s.wait_ready(t0, timeout)?;
        Ok((s, t0.elapsed()))
    }

    fn spawn(&mut self) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base())
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    pub fn pid(&self) -> Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| anyhow!("{} is not running", self.system))
    }

    fn get_status(&self, path: &str) -> Option<u16> {
        let agent = http_agent(Duration::from_secs(5));
        agent
            .get(format!("{}{path}", self.base()))
            .call()
            .ok()
            .map(|mut r| {
                let _ = r.body_mut().read_to_vec();
                r.status().as_u16()
            })
    }

    fn is_ready(&self) -> bool {
        match self.system {
            System::Silt | System::Prometheus => self.get_status("/-/ready") == Some(200),
            System::VictoriaMetrics => {
                self.get_status("/health") == Some(200)
                    && self.get_status("/api/v1/query?query=count(up)") == Some(200)
            }
        }
    }

    /// Poll readiness every 10 ms until `t0 + timeout`; fail early if the process exits.
    fn wait_ready(&mut self, t0: Instant, timeout: Duration) -> Result<()> {
        loop {
            if self.is_ready() {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Some(st) = c.try_wait()?
            {
                bail!(
                    "{} exited during start-up ({st}); log tail:\n{}",
                    self.system,
                    self.log_tail()
                );
            }
            if t0.elapsed() > timeout {
                bail!(
                    "{} not ready after {timeout:?}; log tail:\n{}",
                    self.system,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last 2 KiB of the server's log.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(&self.log_path) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(2048)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    fn proc_status_kb(&self, field: &str) -> Result<u64> {
        let pid = self.pid()?;
        let s = fs::read_to_string(format!("/proc/{pid}/status"))?;
        s.lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
    }

    /// Peak resident set size so far (VmHWM), bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        Ok(self.proc_status_kb("VmHWM")? * 1024)
    }

    /// Current resident set size (VmRSS), bytes.
    pub fn rss(&self) -> Result<u64> {
        Ok(self.proc_status_kb("VmRSS")? * 1024)
    }

    /// User + system CPU seconds the process has used.
    pub fn cpu_secs(&self) -> Result<f64> {
        proc_cpu_secs(self.pid()?)
    }

    /// Kill with `signal`, wait for the exit; returns how long the exit took.
    pub fn kill(&mut self, signal: i32, timeout: Duration) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let t0 = Instant::now();
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        loop {
            if child.try_wait()?.is_some() {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                child.kill()?;
                child.wait()?;
                bail!(
                    "{} ignored signal {signal} for {timeout:?}; killed",
                    self.system
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop with `signal`, then start again on the same data; returns (time the old process
    /// took to exit, time from exec until ready).
    pub fn restart(&mut self, signal: i32, timeout: Duration) -> Result<(Duration, Duration)> {
        let down = self.kill(signal, timeout)?;
        let t0 = Instant::now();
        self.spawn()?;
        self.wait_ready(t0, timeout)?;
        Ok((down, t0.elapsed()))
    }

    /// The signal the restart measurement uses: SIGKILL (a crash: the WAL is replayed) for
    /// the systems with a write-ahead log; VictoriaMetrics has none and loses its last second
    /// of buffered samples on SIGKILL, so it gets SIGTERM and persists them on the way down.
    pub fn restart_signal(&self) -> (i32, &'static str) {
        match self.system {
            System::VictoriaMetrics => (libc::SIGTERM, "SIGTERM"),
            _ => (libc::SIGKILL, "SIGKILL"),
        }
    }

    /// Graceful stop: SIGTERM, SIGKILL after `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> Result<Duration> {
        self.kill(libc::SIGTERM, timeout)
    }

    /// Make everything acknowledged visible to queries and on disk (VictoriaMetrics buffers
    /// about a second in memory; the others persist on acknowledgement).
    pub fn flush(&self) -> Result<()> {
        if self.system == System::VictoriaMetrics {
            self.expect_ok("GET", "/internal/force_flush")?;
        }
        Ok(())
    }

    /// Silt: cut the whole head into blocks now.
    pub fn cut_head(&self) -> Result<()> {
        self.expect_ok("POST", "/api/v1/admin/tsdb/cut_head")
            .map(drop)
    }

    fn expect_ok(&self, method: &str, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base());
        let res = match method {
            "POST" => self.agent.post(&url).send_empty(),
            _ => self.agent.get(&url).call(),
        };
        let mut r = res.with_context(|| format!("{method} {url}"))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            bail!("{method} {url}: {status} {}", body.trim());
        }
        Ok(body)
    }

    /// Compact everything into its final on-disk form and measure it.
    ///
    /// - Silt: cut the head into a block, run a compaction round, measure the data dir.
    /// - VictoriaMetrics: flush, force-merge, wait until no merge runs, measure the data dir.
    /// - Prometheus: its head is only written as blocks after 2–3 h, so take a TSDB snapshot
    ///   (head included, written as a block) and measure the snapshot: blocks only, no WAL.
    pub fn compact_and_measure(&self, timeout: Duration) -> Result<(DiskUsage, String)> {
        let t0 = Instant::now();
        match self.system {
            System::Silt => {
                self.cut_head()?;
                self.expect_ok("POST", "/api/v1/admin/tsdb/compact?force=true")?;
                Ok((
                    du::measure(&self.data_dir)?,
                    "data dir after cut_head + forced compact".into(),
                ))
            }
            System::VictoriaMetrics => {
                self.expect_ok("GET", "/internal/force_flush")?;
                self.expect_ok("GET", "/internal/force_merge")?;
                self.wait_vm_merges(t0, timeout)?;
                Ok((
                    du::measure(&self.data_dir)?,
                    "data dir after force_flush + force_merge".into(),
                ))
            }
            System::Prometheus => {
                let body = self.expect_ok("POST", "/api/v1/admin/tsdb/snapshot")?;
                let v: serde_json::Value = serde_json::from_str(&body)?;
                let name = v["data"]["name"]
                    .as_str()
                    .ok_or_else(|| anyhow!("snapshot answer without a name: {body}"))?;
                let dir = self.data_dir.join("snapshots").join(name);
                Ok((
                    du::measure(&dir)?,
                    "TSDB snapshot (blocks incl. head, no WAL)".into(),
                ))
            }
        }
    }

    fn wait_vm_merges(&self, t0: Instant, timeout: Duration) -> Result<()> {
        // The force merge runs in the background: wait until it and every other merge is done,
        // twice in a row a second apart.
        let mut quiet = 0;
        thread::sleep(Duration::from_millis(500));
        while quiet < 2 {
            if t0.elapsed() > timeout {
                bail!("VictoriaMetrics merges still running after {timeout:?}");
            }
            let m = self.expect_ok("GET", "/metrics")?;
            let busy: f64 = m
                .lines()
                .filter(|l| {
                    l.starts_with("vm_active_force_merges") || l.starts_with("vm_active_merges")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            quiet = if busy == 0.0 { quiet + 1 } else { 0 };
            thread::sleep(Duration::from_secs(1));
        }
        Ok(())
    }

    /// The version string the binary reports (or, when it reports none, as Debian's
    /// package does for VictoriaMetrics, the installed package's version).
    pub fn version(system: System, bins: &Binaries) -> String {
        let flag = match system {
            System::VictoriaMetrics => "-version",
            _ => "--version",
        };
        let first_line = |o: std::process::Output| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let v = Command::new(bins.path(system))
            .arg(flag)
            .output()
            .map(first_line)
            .unwrap_or_default();
        if system == System::Silt {
            // Silt has no release tags yet: say which build ran.
            let built = fs::metadata(bins.path(system))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| crate::results::utc_timestamp(d.as_secs()))
                .unwrap_or_default();
            return format!("{v}, binary built {built}");
        }
        if !v.is_empty() {
            return v;
        }
        Command::new("dpkg-query")
            .args([
                "-W",
                "-f=${Package} ${Version} (Debian package)",
                system.name(),
            ])
            .output()
            .map(first_line)
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// User + system CPU seconds of a process, from /proc/<pid>/stat.
pub fn proc_cpu_secs(pid: u32) -> Result<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("bad /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}
