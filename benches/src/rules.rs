//! The rules benchmark (issue 4): thousands of recording and alerting rules over a fleet's
//! node_exporter series, evaluated by Silt and by Prometheus on the same data, and timed per
//! evaluation round.
//!
//! 1. Data: the ingest workload (whole hosts, ~160 series each) covering `history` before now
//!    and enough time after it for the whole run. Encoded up front and cut into 15 s batches:
//!    the past goes in at start; every later batch is sent to both servers `lead` ahead of
//!    its time, so the series stay active and every sample a rule may read (timestamps at or
//!    before the evaluation time) is stored before the evaluation runs.
//! 2. Rules ([`crate::rules_gen`]): one file, read by both servers from the same path (the
//!    same group hashes, hence the same evaluation timestamps).
//! 3. Each system alone: the rule file appears, the server reloads (SIGHUP), every group runs
//!    once, `warmup` more rounds, then `rounds` rounds measured from the server's own rule
//!    metrics and `/proc/<pid>/stat`, one snapshot per interval; per-rule times from
//!    `/api/v1/rules`. Silt goes first and unloads its rules afterwards (the file is moved
//!    away, SIGHUP), then Prometheus.
//! 4. Comparison: both unload, then both load every n-th group (every scope kind, few
//!    enough that the two together stay within the machine: an overloaded server misses
//!    iterations and evaluates at other timestamps) at the same moment. After the longest
//!    `for` has passed, rounds are measured for both together, then the recorded series of a
//!    sample of recording rules and the alerts of both are compared.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::encode::{self, Encoded};
use crate::results::{self, Machine};
use crate::rules_check::{self, AlertsCheck, RecordingCheck};
use crate::rules_gen::{self, RuleSet, TEMPLATES};
use crate::rules_probe::{self, Round, Snapshot};
use crate::sender::{self, SendStats};
use crate::server::{Binaries, Server, System};
use crate::workload::{SCRAPE_INTERVAL_MS, Spec, Workload};

/// Upper bounds of the phases.
#[derive(Debug, Clone, Copy)]
pub struct RulesTimeouts {
    pub start: Duration,
    /// Sending the history to one server.
    pub load: Duration,
    /// From a reload until every group has run once.
    pub reload: Duration,
    pub stop: Duration,
}

#[derive(Debug, Clone)]
pub struct RulesOptions {
    pub series: usize,
    pub rules: usize,
    pub interval: Duration,
    /// Data before the start (rules read up to 10 minutes back).
    pub history: Duration,
    pub rounds: u32,
    pub warmup: u32,
    /// How far ahead of the clock live data is sent.
    pub lead: Duration,
    /// Caps every alerting rule's `for` (the comparison waits this long).
    pub max_for: Duration,
    /// Groups both systems evaluate at once for the comparison (every n-th group, so that
    /// the two together stay within the machine).
    pub check_groups: usize,
    /// Recording rules whose output is compared.
    pub check_rules: usize,
    pub connections: usize,
    pub max_samples: usize,
    pub seed: u64,
    pub results_dir: PathBuf,
    pub work_dir: PathBuf,
    pub bins: Binaries,
    /// `promtool`, to validate the generated file before the run (skipped if missing).
    pub promtool: PathBuf,
    pub timeouts: RulesTimeouts,
    pub keep_data: bool,
    pub nice: i32,
}

/// One server's rounds in one phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    pub system: Option<System>,
    /// `alone` or `together`.
    pub phase: String,
    /// Groups and rules the server reported loaded.
    pub groups: u64,
    pub rules: u64,
    /// From the reload signal until every group had run once.
    pub first_round_secs: Option<f64>,
    pub rounds: Vec<Round>,
    pub rss_bytes: Option<u64>,
    /// Rules with `health: err` in `/api/v1/rules`, and the first distinct errors.
    pub unhealthy_rules: Option<u64>,
    pub rule_errors: Vec<String>,
    pub error: Option<String>,
}

impl Window {
    fn median(&self, f: impl Fn(&Round) -> f64) -> Option<f64> {
        crate::report::median(self.rounds.iter().map(f).collect())
    }

    /// Sum of the group durations per round (median).
    pub fn group_secs(&self) -> Option<f64> {
        self.median(|r| r.group_secs)
    }

    pub fn cpu_secs(&self) -> Option<f64> {
        self.median(|r| r.cpu_secs)
    }

    pub fn slowest_group_secs(&self) -> Option<f64> {
        self.median(|r| r.slowest_group_secs)
    }

    /// Mean rule evaluation time over all rounds, seconds.
    pub fn mean_rule_secs(&self) -> Option<f64> {
        let n: u64 = self.rounds.iter().map(|r| r.rule_evals).sum();
        let s: f64 = self.rounds.iter().map(|r| r.rule_secs).sum();
        (n > 0).then(|| s / n as f64)
    }

    pub fn missed(&self) -> u64 {
        self.rounds.iter().map(|r| r.missed).sum()
    }

    pub fn failures(&self) -> u64 {
        self.rounds.iter().map(|r| r.failures).sum()
    }

    pub fn other_cpu_secs(&self) -> Option<f64> {
        self.median(|r| r.other_cpu_secs)
    }

    pub fn range(&self, f: impl Fn(&Round) -> f64) -> Option<(f64, f64)> {
        let v: Vec<f64> = self.rounds.iter().map(f).collect();
        let lo = v.iter().copied().reduce(f64::min)?;
        let hi = v.iter().copied().reduce(f64::max)?;
        Some((lo, hi))
    }
}

/// One template's mean evaluation time per rule, from each system's `alone` phase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TemplateTiming {
    pub template: String,
    pub alert: bool,
    pub expr: String,
    pub rules: u64,
    pub silt_ms: Option<f64>,
    pub prometheus_ms: Option<f64>,
}

/// Live data sent to one server during the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LiveFeed {
    pub system: Option<System>,
    pub batches: u64,
    pub samples: u64,
    pub rejected_samples: u64,
    pub retries: u64,
    /// Latest a batch was fully acknowledged after it was due, seconds.
    pub max_late_secs: f64,
    pub errors: Vec<String>,
}

/// History loaded into one server before the rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RulesLoad {
    pub system: Option<System>,
    pub send: Option<SendStats>,
    pub error: Option<String>,
}

/// One run of the rules benchmark, stored as `rules/rules-<series>-<rules>-<unix>.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RulesRun {
    pub started_unix: u64,
    pub series: u64,
    pub hosts: u64,
    pub rules: u64,
    pub alerting_rules: u64,
    pub groups: u64,
    pub groups_per_kind: Vec<(String, u64)>,
    pub interval_secs: f64,
    pub history_secs: u64,
    pub lead_secs: u64,
    pub max_for_secs: u64,
    pub rounds: u32,
    pub warmup: u32,
    pub seed: u64,
    pub nice: i32,
    pub machine: Option<Machine>,
    pub loads: Vec<RulesLoad>,
    pub live: Vec<LiveFeed>,
    /// Each system evaluating alone (the figures).
    pub alone: Vec<Window>,
    /// Both evaluating the comparison's groups at once.
    pub together: Vec<Window>,
    /// Groups and rules of the comparison.
    pub check_groups: u64,
    pub check_rules: u64,
    pub templates: Vec<TemplateTiming>,
    pub recording_check: Option<RecordingCheck>,
    pub alerts_check: Option<AlertsCheck>,
    pub error: Option<String>,
}

impl RulesRun {
    pub fn file_name(&self) -> String {
        format!(
            "rules-{}-{}-{}.json",
            self.series, self.rules, self.started_unix
        )
    }

    pub fn alone(&self, s: System) -> Option<&Window> {
        self.alone.iter().find(|w| w.system == Some(s))
    }

    pub fn together(&self, s: System) -> Option<&Window> {
        self.together.iter().find(|w| w.system == Some(s))
    }
}

/// Every rules run under `dir/rules/`, oldest first (none if the directory is missing).
pub fn load_dir(dir: &Path) -> Result<Vec<RulesRun>> {
    let mut out: Vec<RulesRun> = crate::results::load_json_dir(&dir.join("rules"))?;
    out.sort_by_key(|r| r.started_unix);
    Ok(out)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log(msg: &str) {
    eprintln!("[silt-bench {:>8.1}s] {msg}", crate::elapsed_secs());
}

/// Requests cut by time: the history (sent at start) and live batches with the wall time
/// (ms) each is due.
struct Batches {
    history: Encoded,
    live: Vec<(i64, Encoded)>,
}

fn empty(shards: usize) -> Encoded {
    Encoded {
        shards: (0..shards).map(|_| Vec::new()).collect(),
        samples: 0,
        raw_bytes: 0,
        wire_bytes: 0,
    }
}

/// Requests whose latest sample is before `start_ms + lead_ms` are history; the others go
/// in one batch per `interval_ms`, due `lead_ms` before the batch's end minus one interval,
/// so that at any moment every sample up to `lead - interval` ahead of the clock is sent.
fn split(enc: Encoded, start_ms: i64, lead_ms: i64, interval_ms: i64) -> Batches {
    let n = enc.shards.len();
    let mut history = empty(n);
    let mut live: Vec<Encoded> = Vec::new();
    let edge = start_ms + lead_ms;
    for (sh, reqs) in enc.shards.into_iter().enumerate() {
        for r in reqs {
            let target = if r.t_max < edge {
                &mut history
            } else {
                let b = ((r.t_max - edge) / interval_ms) as usize;
                while live.len() <= b {
                    live.push(empty(n));
                }
                &mut live[b]
            };
            target.samples += r.samples as u64;
            target.wire_bytes += r.body.len() as u64;
            target.shards[sh].push(r);
        }
    }
    let live = live
        .into_iter()
        .enumerate()
        .map(|(b, e)| (start_ms + b as i64 * interval_ms, e))
        .collect();
    Batches { history, live }
}

/// Sends the live batches to every server on time until stopped.
struct Feeder {
    stop: Arc<AtomicBool>,
    /// Wall time (ms) up to which data has been acknowledged by every server, minus the lead.
    covered_ms: Arc<std::sync::atomic::AtomicI64>,
    handle: thread::JoinHandle<Vec<LiveFeed>>,
}

impl Feeder {
    fn start(batches: Vec<(i64, Encoded)>, targets: Vec<(System, String)>) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let covered_ms = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let (s, c) = (stop.clone(), covered_ms.clone());
        let handle = thread::spawn(move || feed(batches, &targets, &s, &c));
        Feeder {
            stop,
            covered_ms,
            handle,
        }
    }

    fn finish(self) -> Vec<LiveFeed> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_default()
    }
}

fn feed(
    batches: Vec<(i64, Encoded)>,
    targets: &[(System, String)],
    stop: &AtomicBool,
    covered: &std::sync::atomic::AtomicI64,
) -> Vec<LiveFeed> {
    let mut out: Vec<LiveFeed> = targets
        .iter()
        .map(|(s, _)| LiveFeed {
            system: Some(*s),
            ..Default::default()
        })
        .collect();
    for (due, batch) in &batches {
        while now_ms() < *due {
            if stop.load(Ordering::Acquire) {
                return out;
            }
            thread::sleep(Duration::from_millis(50));
        }
        if stop.load(Ordering::Acquire) {
            return out;
        }
        let stats: Vec<SendStats> = thread::scope(|s| {
            let hs: Vec<_> = targets
                .iter()
                .map(|(_, url)| {
                    s.spawn(move || sender::send_all(url, batch, Duration::from_secs(60)))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let late = (now_ms() - due) as f64 / 1000.0;
        for (f, st) in out.iter_mut().zip(stats) {
            f.batches += 1;
            f.samples += st.ok_samples;
            f.rejected_samples += st.rejected_samples;
            f.retries += st.retries;
            f.max_late_secs = f.max_late_secs.max(late);
            for e in st.errors {
                if f.errors.len() < 5 {
                    f.errors.push(e);
                }
            }
        }
        covered.store(*due, Ordering::Release);
    }
    out
}

fn silt_config(rules_glob: &str, interval: Duration) -> String {
    format!(
        "rule_files: [{}]\nrules:\n  evaluation_interval: {}s\nself_scrape:\n  interval: 0s\n",
        serde_json::to_string(rules_glob).expect("string"),
        interval.as_secs()
    )
}

fn prometheus_config(rules_glob: Option<&str>, interval: Duration) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: {}s\nscrape_configs: []\n",
        interval.as_secs()
    );
    if let Some(g) = rules_glob {
        s.push_str(&format!(
            "rule_files:\n  - {}\n",
            serde_json::to_string(g).expect("string")
        ));
    }
    s
}

fn sighup(srv: &Server) -> Result<()> {
    let pid = srv.pid()?;
    // SAFETY: kill(2) on the pid of our own, still running child.
    if unsafe { libc::kill(pid as i32, libc::SIGHUP) } != 0 {
        bail!("SIGHUP {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Poll until `srv` reports `rules` rules loaded.
fn wait_loaded(srv: &Server, rules: u64, timeout: Duration) -> Result<Snapshot> {
    let t0 = Instant::now();
    loop {
        let s = rules_probe::snapshot(srv)?;
        if s.rules == rules {
            return Ok(s);
        }
        if t0.elapsed() > timeout {
            bail!(
                "{}: {} rules loaded after {timeout:?}, expected {rules}; log tail:\n{}",
                srv.system,
                s.rules,
                srv.log_tail()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Poll until every group has run at least once after `base`.
fn wait_all_ran(srv: &Server, base: &Snapshot, groups: u64, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        let s = rules_probe::snapshot(srv)?;
        if s.group_count - base.group_count >= groups as f64 {
            return Ok(());
        }
        if t0.elapsed() > timeout {
            bail!(
                "{}: {} of {groups} group iterations after {timeout:?}",
                srv.system,
                s.group_count - base.group_count
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// `rounds` consecutive intervals on every server, one snapshot each per interval.
fn measure(servers: &[&Server], rounds: u32, interval: Duration) -> Result<Vec<Vec<Round>>> {
    let mut prev: Vec<Snapshot> = servers
        .iter()
        .map(|s| rules_probe::snapshot(s))
        .collect::<Result<_>>()?;
    let t0 = Instant::now();
    let mut out = vec![Vec::new(); servers.len()];
    for r in 1..=rounds {
        let next = t0 + interval * r;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            thread::sleep(d);
        }
        for (i, s) in servers.iter().enumerate() {
            let snap = rules_probe::snapshot(s)?;
            out[i].push(Round::between(&prev[i], &snap));
            prev[i] = snap;
        }
    }
    Ok(out)
}

/// Per-rule health and times from `/api/v1/rules`, into the window and per template.
fn rule_report(srv: &Server, set: &RuleSet, w: &mut Window) -> Result<HashMap<usize, (f64, u64)>> {
    let rules = rules_probe::fetch_rules(srv)?;
    let group_index: HashMap<&str, usize> = set
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.scope.name.as_str(), i))
        .collect();
    let mut bad = 0u64;
    for r in &rules {
        if r.health == "err" {
            bad += 1;
            if let Some(e) = &r.last_error {
                let msg = format!("{}: {e}", r.name);
                if w.rule_errors.len() < 8 && !w.rule_errors.contains(&msg) {
                    w.rule_errors.push(msg);
                }
            }
        }
    }
    w.unhealthy_rules = Some(bad);
    Ok(rules_probe::sum_by(&rules, |r| {
        let g = set.groups.get(*group_index.get(r.group.as_str())?)?;
        Some(g.rules.get(r.index)?.template)
    }))
}

/// Check the generated file with promtool (when installed) and Silt.
fn validate(opts: &RulesOptions, path: &Path) -> Result<()> {
    let mut checks: Vec<(String, Command)> = Vec::new();
    if opts.promtool.exists() {
        let mut c = Command::new(&opts.promtool);
        c.args(["check", "rules"]).arg(path);
        checks.push(("promtool check rules".into(), c));
    }
    let mut c = Command::new(&opts.bins.silt);
    c.args(["check", "rules"]).arg(path);
    checks.push(("silt check rules".into(), c));
    for (what, mut c) in checks {
        let o = c.output().with_context(|| what.clone())?;
        if !o.status.success() {
            let mut msg = String::from_utf8_lossy(&o.stdout).into_owned();
            msg.push_str(&String::from_utf8_lossy(&o.stderr));
            bail!(
                "{what} refused the generated rules:\n{}",
                msg.chars().take(2000).collect::<String>()
            );
        }
    }
    Ok(())
}

/// The rule file the benchmark generates for these settings.
pub fn rule_file(
    series: usize,
    rules: usize,
    interval: Duration,
    max_for: Duration,
    seed: u64,
) -> Result<String> {
    let w = Workload::new(Spec {
        series,
        duration_ms: SCRAPE_INTERVAL_MS,
        end_ms: now_ms(),
        seed,
    });
    Ok(rules_gen::generate(&w, rules, interval.as_secs(), max_for.as_secs())?.to_yaml())
}

/// Run the rules benchmark and write its result file.
pub fn run(opts: &RulesOptions) -> Result<RulesRun> {
    let interval_ms = opts.interval.as_millis() as i64;
    if interval_ms < 1000 || interval_ms % 1000 != 0 {
        bail!("--interval must be whole seconds");
    }
    let dir = opts.work_dir.join("rules-bench");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let rules_dir = dir.join("rules");
    fs::create_dir_all(&rules_dir)?;
    let rules_glob = format!("{}/*.yml", rules_dir.display());
    let rule_file = rules_dir.join("fleet.yml");
    let parked = dir.join("fleet.yml.parked");
    let rdir = opts.results_dir.join("rules");
    fs::create_dir_all(&rdir)?;

    // Phases after the start: 2 × (reload, first round, warm-up, rounds), then `for` and
    // the rounds together; plus slack. The data must last until the end.
    let iv = opts.interval.as_secs_f64();
    let per_window = (opts.warmup + opts.rounds) as f64 * iv + 3.0 * iv + 30.0;
    let live_secs =
        2.0 * per_window + opts.max_for.as_secs_f64() + (opts.rounds as f64 + 4.0) * iv + 600.0;
    let start_ms = now_ms();
    let t0 = Instant::now();
    let w = Workload::new(Spec {
        series: opts.series,
        duration_ms: opts.history.as_millis() as i64 + (live_secs * 1000.0) as i64,
        end_ms: start_ms + (live_secs * 1000.0) as i64,
        seed: opts.seed,
    });
    let set = rules_gen::generate(
        &w,
        opts.rules,
        opts.interval.as_secs(),
        opts.max_for.as_secs(),
    )?;
    fs::write(&parked, set.to_yaml())?;
    validate(opts, &parked)?;
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let enc = encode::encode(&w, opts.connections, opts.max_samples, threads);
    let total_samples = enc.samples;
    let load_start = now_ms();
    let batches = split(
        enc,
        load_start,
        opts.lead.as_millis() as i64,
        interval_ms.min(SCRAPE_INTERVAL_MS),
    );
    log(&format!(
        "rules data: {} series on {} hosts, {:.1} M samples ({:.1} M history, {} live batches); \
         {} rules ({} alerting) in {} groups {:?}; prepared in {:.1}s",
        w.series.len(),
        w.hosts.len(),
        total_samples as f64 / 1e6,
        batches.history.samples as f64 / 1e6,
        batches.live.len(),
        set.rules(),
        set.alerting(),
        set.groups.len(),
        set.groups_per_kind(),
        t0.elapsed().as_secs_f64()
    ));

    let mut machine = Machine::probe(&opts.work_dir);
    for s in [System::Silt, System::Prometheus] {
        machine
            .versions
            .insert(s.title().to_string(), Server::version(s, &opts.bins));
    }
    let mut run = RulesRun {
        started_unix: (start_ms / 1000) as u64,
        series: w.series.len() as u64,
        hosts: w.hosts.len() as u64,
        rules: set.rules() as u64,
        alerting_rules: set.alerting() as u64,
        groups: set.groups.len() as u64,
        groups_per_kind: set
            .groups_per_kind()
            .into_iter()
            .map(|(k, n)| (k.to_string(), n as u64))
            .collect(),
        interval_secs: iv,
        history_secs: opts.history.as_secs(),
        lead_secs: opts.lead.as_secs(),
        max_for_secs: set.max_for_secs(),
        rounds: opts.rounds,
        warmup: opts.warmup,
        seed: opts.seed,
        nice: opts.nice,
        machine: Some(machine),
        ..Default::default()
    };

    // Servers: Silt reads the rule glob from its config; Prometheus gets it on reload.
    let silt_dir = dir.join("silt");
    let prom_dir = dir.join("prometheus");
    fs::create_dir_all(&silt_dir)?;
    fs::create_dir_all(&prom_dir)?;
    let silt_cfg = silt_dir.join("silt.yml");
    fs::write(&silt_cfg, silt_config(&rules_glob, opts.interval))?;
    let mut bins = opts.bins.clone();
    bins.silt_args
        .extend(["--config".to_string(), silt_cfg.display().to_string()]);
    let (silt, _) = Server::start(System::Silt, &bins, &silt_dir, opts.timeouts.start)
        .context("starting Silt")?;
    let (prom, _) = Server::start(System::Prometheus, &bins, &prom_dir, opts.timeouts.start)
        .context("starting Prometheus")?;

    let result = run_phases(
        opts,
        &set,
        &w,
        batches,
        &silt,
        &prom,
        &rule_file,
        &parked,
        &prom_dir,
        &rules_glob,
        &mut run,
    );
    if let Err(e) = &result {
        log(&format!("rules benchmark stopped: {e:#}"));
        run.error = Some(format!("{e:#}"));
    }
    for mut srv in [silt, prom] {
        if let Err(e) = srv.stop(opts.timeouts.stop) {
            log(&format!("{}: stop: {e:#}", srv.system));
        }
    }
    if !opts.keep_data {
        let _ = fs::remove_dir_all(&dir);
    }
    let path = rdir.join(run.file_name());
    results::write_json(&path, &run)?;
    log(&format!("rules results in {}", path.display()));
    Ok(run)
}

#[allow(clippy::too_many_arguments)] // reason: the run's parts, passed once from `run`
fn run_phases(
    opts: &RulesOptions,
    set: &RuleSet,
    w: &Workload,
    batches: Batches,
    silt: &Server,
    prom: &Server,
    rule_file: &Path,
    parked: &Path,
    prom_dir: &Path,
    rules_glob: &str,
    run: &mut RulesRun,
) -> Result<()> {
    let to = opts.timeouts;
    // History into both at once.
    log("loading the history into both servers");
    let loads: Vec<(System, SendStats)> = thread::scope(|s| {
        let hs: Vec<_> = [silt, prom]
            .into_iter()
            .map(|srv| {
                let url = srv.write_url();
                let h = &batches.history;
                (
                    srv.system,
                    s.spawn(move || sender::send_all(&url, h, to.load)),
                )
            })
            .collect();
        hs.into_iter()
            .map(|(sys, h)| (sys, h.join().unwrap_or_default()))
            .collect()
    });
    for (sys, st) in loads {
        log(&format!(
            "{sys}: history {} samples in {:.1}s, {} retries, {} rejected{}",
            st.ok_samples,
            st.wall_secs,
            st.retries,
            st.rejected_samples,
            st.errors
                .first()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        ));
        let bad = st.timed_out || st.rejected_samples > 0;
        run.loads.push(RulesLoad {
            system: Some(sys),
            error: bad.then(|| {
                format!(
                    "{} rejected, timed out: {}",
                    st.rejected_samples, st.timed_out
                )
            }),
            send: Some(st),
        });
        if bad {
            bail!("{sys}: history not loaded");
        }
    }
    let feeder = Feeder::start(
        batches.live,
        vec![
            (System::Silt, silt.write_url()),
            (System::Prometheus, prom.write_url()),
        ],
    );
    let result = phases(
        opts, set, w, silt, prom, rule_file, parked, prom_dir, rules_glob, run,
    );
    let covered = feeder.covered_ms.load(Ordering::Acquire);
    run.live = feeder.finish();
    if result.is_ok() && covered > 0 && covered < now_ms() - 2 * opts.interval.as_millis() as i64 {
        run.error = Some("the live data ran out before the end of the run".into());
    }
    result
}

#[allow(clippy::too_many_arguments)] // reason: the run's parts, passed once from `run`
fn phases(
    opts: &RulesOptions,
    set: &RuleSet,
    w: &Workload,
    silt: &Server,
    prom: &Server,
    rule_file: &Path,
    parked: &Path,
    prom_dir: &Path,
    rules_glob: &str,
    run: &mut RulesRun,
) -> Result<()> {
    let to = opts.timeouts;
    let n_rules = set.rules() as u64;
    let n_groups = set.groups.len() as u64;
    // Both must show every host before any rule runs.
    for srv in [silt, prom] {
        let t0 = Instant::now();
        loop {
            let a = rules_check::instant(srv, "count(up)", now_ms());
            let n = a
                .as_ref()
                .ok()
                .and_then(|a| a.series.values().next()?.first().map(|p| p.1))
                .unwrap_or(0.0);
            if n as usize == w.hosts.len() {
                break;
            }
            if t0.elapsed() > to.reload {
                bail!(
                    "{}: count(up) = {n}, expected {}",
                    srv.system,
                    w.hosts.len()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    let mut per_template: Vec<HashMap<usize, (f64, u64)>> = Vec::new();
    for (i, srv) in [silt, prom].into_iter().enumerate() {
        let mut win = Window {
            system: Some(srv.system),
            phase: "alone".into(),
            ..Default::default()
        };
        fs::copy(parked, rule_file)?;
        if srv.system == System::Prometheus {
            fs::write(
                prom_dir.join("prometheus.yml"),
                prometheus_config(Some(rules_glob), opts.interval),
            )?;
        }
        let t0 = Instant::now();
        sighup(srv)?;
        let base = wait_loaded(srv, n_rules, to.reload)?;
        win.groups = base.groups;
        win.rules = base.rules;
        wait_all_ran(srv, &base, n_groups, to.reload)?;
        win.first_round_secs = Some(t0.elapsed().as_secs_f64());
        log(&format!(
            "{}: {} rules in {} groups loaded, every group ran once after {:.1}s; warm-up",
            srv.system,
            win.rules,
            win.groups,
            t0.elapsed().as_secs_f64()
        ));
        thread::sleep(opts.interval * opts.warmup);
        let rounds = measure(&[srv], opts.rounds, opts.interval)?;
        win.rounds = rounds.into_iter().next().unwrap_or_default();
        win.rss_bytes = srv.rss().ok();
        per_template.push(rule_report(srv, set, &mut win).unwrap_or_else(|e| {
            win.error = Some(format!("/api/v1/rules: {e:#}"));
            HashMap::new()
        }));
        log(&window_summary(&win));
        run.alone.push(win);
        if i == 0 {
            // Silt unloads its rules before Prometheus' turn.
            fs::remove_file(rule_file)?;
            sighup(srv)?;
            wait_loaded(srv, 0, to.reload)?;
        }
    }
    run.templates = TEMPLATES
        .iter()
        .enumerate()
        .map(|(t, tpl)| {
            let ms = |m: &HashMap<usize, (f64, u64)>| {
                m.get(&t)
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| s / *n as f64 * 1000.0)
            };
            TemplateTiming {
                template: tpl.id.trim_start_matches(['_', ':']).to_string(),
                alert: tpl.alert.is_some(),
                expr: tpl.expr.to_string(),
                rules: per_template
                    .first()
                    .and_then(|m| m.get(&t))
                    .map_or(0, |x| x.1),
                silt_ms: per_template.first().and_then(ms),
                prometheus_ms: per_template.get(1).and_then(ms),
            }
        })
        .collect();

    // Comparison: both unload, then load the same subset at the same moment.
    let sub = set.every_nth_group(set.groups.len().div_ceil(opts.check_groups.max(1)));
    run.check_groups = sub.groups.len() as u64;
    run.check_rules = sub.rules() as u64;
    let prom_cfg = prom_dir.join("prometheus.yml");
    fs::write(&prom_cfg, prometheus_config(None, opts.interval))?;
    sighup(prom)?;
    wait_loaded(prom, 0, to.reload)?;
    fs::write(rule_file, sub.to_yaml())?;
    fs::write(
        &prom_cfg,
        prometheus_config(Some(rules_glob), opts.interval),
    )?;
    let t0 = Instant::now();
    sighup(silt)?;
    sighup(prom)?;
    let bases = [
        wait_loaded(silt, run.check_rules, to.reload)?,
        wait_loaded(prom, run.check_rules, to.reload)?,
    ];
    for (srv, base) in [silt, prom].into_iter().zip(&bases) {
        wait_all_ran(srv, base, run.check_groups, to.reload)?;
    }
    let settle = opts.max_for + opts.interval * 2;
    log(&format!(
        "comparison: both evaluating {} rules in {} groups; waiting {settle:?} (the longest `for` plus two intervals)",
        run.check_rules, run.check_groups
    ));
    thread::sleep(settle.saturating_sub(t0.elapsed()));
    let rounds = measure(&[silt, prom], opts.rounds.clamp(1, 4), opts.interval)?;
    for (srv, r) in [silt, prom].into_iter().zip(rounds) {
        let mut win = Window {
            system: Some(srv.system),
            phase: "together".into(),
            groups: run.check_groups,
            rules: run.check_rules,
            rounds: r,
            rss_bytes: srv.rss().ok(),
            ..Default::default()
        };
        if let Err(e) = rule_report(srv, &sub, &mut win) {
            win.error = Some(format!("/api/v1/rules: {e:#}"));
        }
        log(&window_summary(&win));
        run.together.push(win);
    }

    // Equal work: recorded series of a sample of recording rules, then the alerts.
    let recording: Vec<&str> = sub
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| !r.alert)
        .map(|r| r.output_selector.as_str())
        .collect();
    let step = (recording.len() / opts.check_rules.max(1)).max(1);
    // An odd step walks through the templates instead of repeating one.
    let step = if step > 1 && step.is_multiple_of(2) {
        step + 1
    } else {
        step
    };
    let sample: Vec<&str> = recording
        .iter()
        .step_by(step)
        .take(opts.check_rules)
        .copied()
        .collect();
    let at = now_ms() - opts.interval.as_millis() as i64 - 5_000;
    let range = opts.interval * 2 + Duration::from_secs(5);
    let rc = rules_check::check_recording(silt, prom, &sample, at, range);
    log(&format!(
        "recording rules: {} checked ({} with data), {} differ; {} / {} series; {} of {} points differ{}",
        rc.rules_checked,
        rc.rules_with_data,
        rc.rules_differing,
        rc.series_silt,
        rc.series_prometheus,
        rc.points_differing,
        rc.points_compared,
        rc.examples
            .first()
            .map_or(String::new(), |e| format!("; e.g. {e}"))
    ));
    run.recording_check = Some(rc);
    // The two answers are read a moment apart: take the closest of three tries.
    let mut best: Option<AlertsCheck> = None;
    for attempt in 0..3 {
        if attempt > 0 {
            thread::sleep(Duration::from_secs(3));
        }
        let c = rules_check::compare_alerts(
            &rules_check::fetch_alerts(silt)?,
            &rules_check::fetch_alerts(prom)?,
        );
        let done = c.differences() == 0;
        if best
            .as_ref()
            .is_none_or(|b| c.differences() < b.differences())
        {
            best = Some(c);
        }
        if done {
            break;
        }
    }
    if let Some(c) = &best {
        log(&format!(
            "alerts: Silt {} firing / {} pending, Prometheus {} / {}; {} the same, {} differ{}",
            c.silt_firing,
            c.silt_pending,
            c.prometheus_firing,
            c.prometheus_pending,
            c.same,
            c.differences(),
            c.examples
                .first()
                .map_or(String::new(), |e| format!("; e.g. {e}"))
        ));
    }
    run.alerts_check = best;
    Ok(())
}

fn window_summary(w: &Window) -> String {
    let f = |x: Option<f64>| x.map_or("–".into(), |v| format!("{v:.3}"));
    format!(
        "{} {}: per round group time {} s, CPU {} s, slowest group {} s, mean rule {} ms; \
         {} missed, {} failures, {} unhealthy rules{}",
        w.system.map_or("?", System::name),
        w.phase,
        f(w.group_secs()),
        f(w.cpu_secs()),
        f(w.slowest_group_secs()),
        f(w.mean_rule_secs().map(|s| s * 1000.0)),
        w.missed(),
        w.failures(),
        w.unhealthy_rules.unwrap_or(0),
        w.rule_errors
            .first()
            .map_or(String::new(), |e| format!(" (e.g. {e})"))
    )
}

/// Fails if a binary the benchmark needs is missing.
pub fn check_binaries(opts: &RulesOptions) -> Result<()> {
    for s in [System::Silt, System::Prometheus] {
        let p = opts.bins.path(s);
        if !p.exists() {
            return Err(anyhow!("{s}: binary {} not found", p.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Request;

    fn req(t_max: i64) -> Request {
        Request {
            body: vec![0; 10].into_boxed_slice(),
            samples: 2,
            t_max,
        }
    }

    #[test]
    fn requests_are_cut_into_history_and_timed_batches() {
        let enc = Encoded {
            shards: vec![
                vec![req(100), req(1_100), req(1_900), req(3_000)],
                vec![req(1_000), req(2_999)],
            ],
            samples: 12,
            raw_bytes: 0,
            wire_bytes: 60,
        };
        // Start at 0, lead 1 s, batches of 1 s: history is t_max < 1000.
        let b = split(enc, 0, 1_000, 1_000);
        assert_eq!(b.history.samples, 2);
        assert_eq!(b.history.shards[0].len(), 1);
        let due: Vec<i64> = b.live.iter().map(|(d, _)| *d).collect();
        assert_eq!(due, vec![0, 1_000, 2_000]);
        // [1000, 2000) due at 0: 1100, 1900 (shard 0) and 1000 (shard 1).
        assert_eq!(b.live[0].1.shards[0].len(), 2);
        assert_eq!(b.live[0].1.shards[1].len(), 1);
        assert_eq!(b.live[1].1.shards[1].len(), 1);
        assert_eq!(b.live[2].1.shards[0][0].t_max, 3_000);
        let total: u64 = b.history.samples + b.live.iter().map(|(_, e)| e.samples).sum::<u64>();
        assert_eq!(total, 12);
    }

    #[test]
    fn configs_point_both_servers_at_the_same_glob() {
        let s = silt_config("/d/rules/*.yml", Duration::from_secs(15));
        assert!(s.starts_with("rule_files: [\"/d/rules/*.yml\"]\n"));
        assert!(s.contains("evaluation_interval: 15s"));
        assert!(s.contains("self_scrape:\n  interval: 0s"));
        let p = prometheus_config(Some("/d/rules/*.yml"), Duration::from_secs(15));
        assert!(p.contains("rule_files:\n  - \"/d/rules/*.yml\"\n"));
        assert!(!prometheus_config(None, Duration::from_secs(15)).contains("rule_files"));
    }

    #[test]
    fn window_figures_are_medians_over_rounds() {
        let r = |g: f64, cpu: f64, missed: u64| Round {
            group_secs: g,
            cpu_secs: cpu,
            missed,
            rule_secs: g,
            rule_evals: 10,
            ..Default::default()
        };
        let w = Window {
            rounds: vec![r(1.0, 2.0, 0), r(3.0, 1.0, 1), r(2.0, 5.0, 0)],
            ..Default::default()
        };
        assert_eq!(w.group_secs(), Some(2.0));
        assert_eq!(w.cpu_secs(), Some(2.0));
        assert_eq!(w.missed(), 1);
        assert_eq!(w.mean_rule_secs(), Some(0.2));
        assert_eq!(w.range(|r| r.group_secs), Some((1.0, 3.0)));
        let run = RulesRun {
            series: 5,
            rules: 7,
            started_unix: 9,
            alone: vec![Window {
                system: Some(System::Silt),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(run.file_name(), "rules-5-7-9.json");
        assert!(run.alone(System::Silt).is_some());
        assert!(run.alone(System::Prometheus).is_none());
    }
}
