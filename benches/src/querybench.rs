//! The query benchmark: load the same data (dashboard workload and SLO set) into every
//! system by remote write, wait until each shows all of it and has gone quiet, then time
//! every query of [`crate::queries`] on each system in turn over the HTTP API.
//!
//! Caches never answer: VictoriaMetrics runs with `-search.disableCache`, gets `nocache=1`
//! on every query and a `/internal/resetRollupResultCache` before every repetition;
//! Prometheus and Silt have no result cache. Index caches stay on (VictoriaMetrics's
//! tag-filters cache, Silt's kept selections). Each query gets one warm-up per system (whose
//! answer is checked), then `repetitions` timed runs per system, the systems interleaved
//! and their order rotated from one repetition to the next; before each timed request the
//! harness waits until the servers are idle (see `wait_quiet`), so one system's after-work
//! is not charged to the next. Then a few dashboard refreshes per system: every query once,
//! back to back (`time_refreshes`), which no warm-up helps.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};

use crate::compare::{self, Answer};
use crate::encode::{self, Encoded};
use crate::queries::{self, Data, Eval, Query};
use crate::rawhttp::Client;
use crate::results::{self, LoadResult, Machine, QueryResult, QueryRun, SystemTiming};
use crate::sender;
use crate::server::{self, Binaries, Server, System};
use crate::slo::{SloSpec, SloWorkload};
use crate::verify;
use crate::workload::{Spec, Workload};

/// Relative tolerance for Silt's values against Prometheus'.
pub const VALUE_TOLERANCE: f64 = 1e-6;

/// Upper bounds of each phase.
#[derive(Debug, Clone, Copy)]
pub struct QueryTimeouts {
    pub start: Duration,
    /// Sending all data to one system.
    pub load: Duration,
    /// Until the data is visible, and the full read-back.
    pub check: Duration,
    /// Waiting for a server to go quiet after the load (exceeding it is not an error).
    pub settle: Duration,
    /// One query request.
    pub request: Duration,
    /// All queries together.
    pub queries: Duration,
    pub stop: Duration,
}

#[derive(Debug, Clone)]
pub struct QueryOptions {
    pub series: usize,
    pub duration: Duration,
    /// 0 leaves the SLO data set out.
    pub slo_series: usize,
    pub slo_duration: Duration,
    pub slo_interval: Duration,
    pub repetitions: u32,
    pub systems: Vec<System>,
    pub connections: usize,
    pub max_samples: usize,
    /// Time window the sender keeps all shards within (see [`sender::send_in_time_order`]).
    pub send_window: Duration,
    /// Silt is sent the data up to this long before the end, cuts its head into blocks,
    /// then is sent the rest, which its head holds while queried (0: no cut).
    pub head_span: Duration,
    /// Read back every metric name after the load (as the ingest benchmark does).
    pub full_check: bool,
    /// Only run queries whose name contains one of these (all if empty).
    pub only: Vec<String>,
    pub seed: u64,
    pub results_dir: PathBuf,
    pub work_dir: PathBuf,
    pub bins: Binaries,
    pub timeouts: QueryTimeouts,
    pub keep_data: bool,
    pub nice: i32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log(msg: &str) {
    eprintln!("[silt-bench {:>8.1}s] {msg}", crate::elapsed_secs());
}

/// Seconds with millisecond precision, as the HTTP API takes them.
pub fn secs(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    format!("{sign}{}.{:03}", a / 1000, a % 1000)
}

/// The request path and parameters of `q` for `system` (identical for every system except
/// VictoriaMetrics' `nocache=1`).
pub fn request_params(q: &Query, system: System) -> (&'static str, Vec<(&'static str, String)>) {
    let mut p = vec![("query", q.expr.clone())];
    let path = match q.eval {
        Eval::Instant { time_ms } => {
            p.push(("time", secs(time_ms)));
            "/api/v1/query"
        }
        Eval::Range {
            start_ms,
            end_ms,
            step_ms,
        } => {
            p.push(("start", secs(start_ms)));
            p.push(("end", secs(end_ms)));
            p.push(("step", secs(step_ms)));
            "/api/v1/query_range"
        }
    };
    if system == System::VictoriaMetrics {
        p.push(("nocache", "1".into()));
    }
    (path, p)
}

/// Send one query; returns (time to the answer's last byte, status, body).
fn execute(client: &mut Client, srv: &Server, q: &Query) -> Result<(Duration, u16, String)> {
    let (path, params) = request_params(q, srv.system);
    let a = client
        .get(path, &params)
        .with_context(|| format!("GET {}{path}", srv.base()))?;
    let body = String::from_utf8(a.body).context("the answer is not UTF-8")?;
    Ok((a.elapsed, a.status, body))
}

fn answer_of(status: u16, body: &str) -> Result<Answer> {
    match compare::parse(body) {
        Ok(a) if status == 200 => Ok(a),
        Ok(_) => bail!("HTTP {status}"),
        Err(e) => bail!("HTTP {status}: {e}; {}", truncate(body.trim(), 300)),
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Run the whole query benchmark and write its result file.
pub fn run(opts: &QueryOptions) -> Result<QueryRun> {
    let hold: Option<u64> = match std::env::var("SILT_BENCH_HOLD") {
        Ok(v) => Some(
            v.parse()
                .with_context(|| format!("SILT_BENCH_HOLD={v:?}: a number of seconds"))?,
        ),
        Err(_) => None,
    };
    fs::create_dir_all(&opts.work_dir)?;
    let qdir = opts.results_dir.join("query");
    fs::create_dir_all(&qdir)?;
    let mut machine = Machine::probe(&opts.work_dir);
    for s in &opts.systems {
        machine
            .versions
            .insert(s.title().to_string(), Server::version(*s, &opts.bins));
    }

    // Data: both sets end a minute ago (old enough for VictoriaMetrics' latency offset).
    let t0 = Instant::now();
    let end_ms = now_ms() - 60_000;
    let dash = Workload::new(Spec {
        series: opts.series,
        duration_ms: opts.duration.as_millis() as i64,
        end_ms,
        seed: opts.seed,
    });
    let slo = (opts.slo_series > 0).then(|| {
        SloWorkload::new(SloSpec {
            series: opts.slo_series,
            duration_ms: opts.slo_duration.as_millis() as i64,
            interval_ms: opts.slo_interval.as_millis().max(1) as i64,
            end_ms,
            seed: opts.seed,
        })
    });
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let dash_enc = encode::encode(&dash, opts.connections, opts.max_samples, threads);
    // Requests of at most 10 minutes, well within Prometheus' 1 h out-of-order bound.
    let slo_enc = slo.as_ref().map(|s| s.encode(opts.max_samples, 600_000));
    let data = Data::new(&dash, slo.as_ref());
    let mut qs = queries::build(&data);
    if !opts.only.is_empty() {
        qs.retain(|q| opts.only.iter().any(|o| q.name.contains(o.as_str())));
    }
    log(&format!(
        "query data: {} series on {} hosts × {} scrapes ({} samples){}; {} queries; prepared in {:.1}s",
        dash.series.len(),
        dash.hosts.len(),
        dash.scrapes,
        dash_enc.samples,
        slo.as_ref().map_or(String::new(), |s| format!(
            " + SLO {} series × {} scrapes ({} samples)",
            s.spec.series,
            s.scrapes,
            s.total_samples()
        )),
        qs.len(),
        t0.elapsed().as_secs_f64()
    ));

    let mut run = QueryRun {
        series: dash.series.len() as u64,
        hosts: dash.hosts.len() as u64,
        duration_secs: (dash.scrapes as i64 * crate::workload::SCRAPE_INTERVAL_MS / 1000) as u64,
        samples: dash_enc.samples,
        slo_series: slo.as_ref().map_or(0, |s| s.spec.series as u64),
        slo_duration_secs: slo
            .as_ref()
            .map_or(0, |s| (s.scrapes as i64 * s.spec.interval_ms / 1000) as u64),
        slo_interval_secs: slo
            .as_ref()
            .map_or(0, |s| (s.spec.interval_ms / 1000) as u64),
        slo_samples: slo.as_ref().map_or(0, SloWorkload::total_samples),
        repetitions: opts.repetitions,
        seed: opts.seed,
        started_unix: (now_ms() / 1000) as u64,
        nice: opts.nice,
        systems: opts.systems.clone(),
        machine: Some(machine),
        timing: Some(results::TIMED_TO_LAST_BYTE.into()),
        head_span_secs: opts
            .systems
            .contains(&System::Silt)
            .then_some(opts.head_span.as_secs()),
        ..Default::default()
    };

    // Load every system, one at a time; keep the servers that have all the data.
    let mut sources: Vec<&Encoded> = vec![&dash_enc];
    sources.extend(slo_enc.as_ref());
    let mut servers: Vec<Server> = Vec::new();
    for &sys in &opts.systems {
        let run_dir = opts.work_dir.join(format!("query-{}", sys.name()));
        let mut lr = LoadResult {
            system: Some(sys),
            ..Default::default()
        };
        match load(sys, &run_dir, &dash, slo.as_ref(), &sources, opts, &mut lr) {
            Ok(srv) => servers.push(srv),
            Err(e) => {
                log(&format!("{sys}: load failed: {e:#}"));
                lr.error = Some(format!("{e:#}"));
            }
        }
        run.loads.push(lr);
    }

    // Background work (head compaction, merges) must not run while the clock does.
    for srv in &servers {
        let secs = settle(srv, opts.timeouts.settle)?;
        if let Some(lr) = run.loads.iter_mut().find(|l| l.system == Some(srv.system)) {
            lr.settle_secs = Some(secs);
            lr.rss_after_load_bytes = srv.rss().ok();
        }
        log(&format!("{}: quiet after {secs:.1}s", srv.system));
    }

    if let Err(e) = time_queries(&servers, &qs, opts, &mut run) {
        log(&format!("queries stopped: {e:#}"));
        run.error = Some(format!("{e:#}"));
    } else {
        time_refreshes(&servers, &qs, opts, &mut run);
    }

    // For profiling the servers in the state the load left (README).
    if let Some(secs) = hold {
        for srv in &servers {
            log(&format!(
                "{}: held on port {} for {secs} s",
                srv.system, srv.port
            ));
        }
        thread::sleep(Duration::from_secs(secs));
    }
    for mut srv in servers {
        if let Err(e) = srv.stop(opts.timeouts.stop) {
            log(&format!("{}: stop: {e:#}", srv.system));
        }
    }
    if !opts.keep_data {
        for sys in &opts.systems {
            let _ = fs::remove_dir_all(opts.work_dir.join(format!("query-{}", sys.name())));
        }
    }
    let path = qdir.join(run.file_name());
    results::write_json(&path, &run)?;
    log(&format!("query results in {}", path.display()));
    Ok(run)
}

/// Start `sys` empty, send everything, wait until it is all visible, read it back.
fn load(
    sys: System,
    run_dir: &Path,
    dash: &Workload,
    slo: Option<&SloWorkload>,
    sources: &[&Encoded],
    opts: &QueryOptions,
    lr: &mut LoadResult,
) -> Result<Server> {
    let to = &opts.timeouts;
    if run_dir.exists() {
        fs::remove_dir_all(run_dir)?;
    }
    fs::create_dir_all(run_dir)?;
    let (srv, _) = Server::start(sys, &opts.bins, run_dir, to.start).context("start")?;
    log(&format!("{sys}: loading"));
    let window = opts.send_window.as_millis().max(1) as i64;
    // Silt's head cuts itself into blocks when it spans two hours: cut it before the last
    // `head_span`, so that the head holds it as in steady operation, not whatever the
    // backfill's last cut left.
    let cut = sys == System::Silt && !opts.head_span.is_zero();
    let split = if cut {
        dash.spec.end_ms - opts.head_span.as_millis() as i64
    } else {
        i64::MAX
    };
    let st = sender::send_split(&srv.write_url(), sources, window, split, to.load, || {
        srv.cut_head().context("cut the head")
    })?;
    log(&format!(
        "{sys}: sent {} samples in {:.1}s, {} retries, {} rejected{}",
        st.ok_samples,
        st.wall_secs,
        st.retries,
        st.rejected_samples,
        st.errors
            .first()
            .map_or(String::new(), |e| format!(" (first: {e})"))
    ));
    let failed = st.timed_out || st.rejected_samples > 0;
    let timed_out = st.timed_out;
    lr.send = Some(st);
    if timed_out {
        bail!("load did not finish within {:?}", to.load);
    }
    if failed {
        bail!("samples were rejected");
    }
    srv.flush().context("flush")?;

    // Probe until every `up` sample of both data sets is visible.
    let t0 = Instant::now();
    let expected = expected_up_samples(dash, slo);
    let oldest = slo.map_or(dash.start_ms, |s| s.start_ms.min(dash.start_ms));
    let range_s = (dash.spec.end_ms - oldest) / 1000 + 60;
    let probe = Query {
        name: "probe".into(),
        expr: format!("sum(count_over_time(up[{range_s}s]))"),
        eval: Eval::Instant {
            time_ms: dash.spec.end_ms,
        },
        ..Default::default()
    };
    let mut client = Client::new(&format!("127.0.0.1:{}", srv.port), to.request);
    let mut last;
    loop {
        match execute(&mut client, &srv, &probe).and_then(|(_, st, body)| answer_of(st, &body)) {
            Ok(a) => {
                let n = a
                    .series
                    .values()
                    .next()
                    .and_then(|p| p.first())
                    .map_or(0.0, |p| p.1);
                if n as u64 == expected {
                    break;
                }
                last = format!("{n} of {expected} `up` samples");
            }
            Err(e) => last = format!("{e:#}"),
        }
        if t0.elapsed() > to.check {
            bail!("data not visible after {:?}: {last}", to.check);
        }
        thread::sleep(Duration::from_millis(250));
    }
    lr.visible_secs = Some(t0.elapsed().as_secs_f64());
    if opts.full_check {
        // The dashboard data only (the SLO set's `up` has job="blackbox").
        let c = verify::check_matching(&srv, dash, "job=\"node\"", to.check)
            .context("read-back check")?;
        let summary = format!(
            "{} of {} samples, {} of {} series",
            c.found_samples, c.expected_samples, c.found_series, c.expected_series
        );
        if !c.ok() {
            // Recorded and reported; the queries still run (their answers will show it).
            log(&format!("{sys}: INCOMPLETE: read back {summary}"));
            lr.error = Some(format!(
                "read back {summary}; first differences {:?}",
                &c.mismatches[..c.mismatches.len().min(3)]
            ));
        } else {
            log(&format!("{sys}: all data visible, read back {summary}"));
        }
        lr.count_check = Some(c);
    }
    Ok(srv)
}

fn expected_up_samples(dash: &Workload, slo: Option<&SloWorkload>) -> u64 {
    dash.hosts.len() as u64 * dash.scrapes + slo.map_or(0, SloWorkload::total_samples)
}

/// Wait until the server used under 3 % of a core in each of two consecutive seconds, at
/// most `timeout`; returns the seconds waited.
fn settle(srv: &Server, timeout: Duration) -> Result<f64> {
    let t0 = Instant::now();
    let pid = srv.pid()?;
    let mut quiet = 0;
    let mut prev = server::proc_cpu_secs(pid)?;
    while quiet < 2 && t0.elapsed() < timeout {
        thread::sleep(Duration::from_secs(1));
        let now = server::proc_cpu_secs(pid)?;
        quiet = if now - prev < 0.03 { quiet + 1 } else { 0 };
        prev = now;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Time every query on every loaded server.
fn time_queries(
    servers: &[Server],
    qs: &[Query],
    opts: &QueryOptions,
    run: &mut QueryRun,
) -> Result<()> {
    let t0 = Instant::now();
    let mut clients: Vec<Client> = servers
        .iter()
        .map(|s| Client::new(&format!("127.0.0.1:{}", s.port), opts.timeouts.request))
        .collect();
    let n = servers.len();
    for (qi, q) in qs.iter().enumerate() {
        if t0.elapsed() > opts.timeouts.queries {
            bail!(
                "query phase exceeded {:?} after {qi} of {} queries",
                opts.timeouts.queries,
                qs.len()
            );
        }
        let mut timings: Vec<SystemTiming> = servers
            .iter()
            .map(|s| SystemTiming {
                system: Some(s.system),
                ..Default::default()
            })
            .collect();
        // Warm-up, and the answers to compare.
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(n);
        for (i, srv) in servers.iter().enumerate() {
            reset_caches(srv);
            let a = execute(&mut clients[i], srv, q).and_then(|(_, st, body)| answer_of(st, &body));
            match a {
                Ok(a) => {
                    timings[i].series = Some(a.series_count());
                    timings[i].points = Some(a.points());
                    answers.push(Some(a));
                }
                Err(e) => {
                    timings[i].error = Some(format!("{e:#}"));
                    answers.push(None);
                }
            }
        }
        let answer_of_sys = |s: System| {
            servers
                .iter()
                .position(|x| x.system == s)
                .and_then(|i| answers[i].as_ref())
        };
        let diff = match (
            answer_of_sys(System::Silt),
            answer_of_sys(System::Prometheus),
        ) {
            (Some(a), Some(b)) => Some(compare::compare(a, b, VALUE_TOLERANCE)),
            _ => None,
        };

        // Timed repetitions, systems interleaved, order rotating.
        let mut cpu = vec![0.0f64; n];
        for r in 0..opts.repetitions as usize {
            for j in 0..n {
                let i = (j + r + qi) % n;
                if timings[i].error.is_some() {
                    continue;
                }
                let srv = &servers[i];
                reset_caches(srv);
                wait_quiet(servers);
                // A server that died answers no more queries; that is an error of its own.
                let cpu_now = || srv.pid().and_then(server::proc_cpu_secs).ok();
                let c0 = cpu_now();
                let res = execute(&mut clients[i], srv, q);
                let c1 = cpu_now();
                match res.and_then(|(d, st, body)| Ok((d, answer_of(st, &body)?))) {
                    Ok((d, a)) => {
                        timings[i].latencies_ms.push(d.as_secs_f64() * 1000.0);
                        if let (Some(c0), Some(c1)) = (c0, c1) {
                            cpu[i] += c1 - c0;
                        }
                        if Some(a.series_count()) != timings[i].series {
                            timings[i].error = Some(format!(
                                "repetition {r} returned {} series, the warm-up {:?}",
                                a.series_count(),
                                timings[i].series
                            ));
                        }
                    }
                    Err(e) => timings[i].error = Some(format!("repetition {r}: {e:#}")),
                }
            }
        }
        for (t, c) in timings.iter_mut().zip(cpu) {
            if !t.latencies_ms.is_empty() {
                t.cpu_secs = Some(c);
            }
        }
        let res = QueryResult {
            query: q.clone(),
            timings,
            silt_vs_prometheus: diff,
        };
        log(&query_summary(&res));
        run.queries.push(res);
    }
    Ok(())
}

/// Dashboard refreshes after the per-query timings: every query once, in the benchmark's
/// order, back to back, on one system at a time; [`REFRESHES`] rounds, the systems'
/// order rotating, each after [`wait_quiet`]. Unlike the per-query timings, where a
/// query's warm-up leaves its data ready for its repetitions, each query here follows
/// all the others: what a system keeps between queries (Silt's block cache, the
/// kernel's page cache) must hold the whole dashboard's data to help.
fn time_refreshes(servers: &[Server], qs: &[Query], opts: &QueryOptions, run: &mut QueryRun) {
    let mut clients: Vec<Client> = servers
        .iter()
        .map(|s| Client::new(&format!("127.0.0.1:{}", s.port), opts.timeouts.request))
        .collect();
    let n = servers.len();
    let mut timings: Vec<SystemTiming> = servers
        .iter()
        .map(|s| SystemTiming {
            system: Some(s.system),
            cpu_secs: Some(0.0),
            ..Default::default()
        })
        .collect();
    for r in 0..REFRESHES {
        for j in 0..n {
            let i = (j + r) % n;
            if timings[i].error.is_some() {
                continue;
            }
            let srv = &servers[i];
            reset_caches(srv);
            wait_quiet(servers);
            let cpu_now = || srv.pid().and_then(server::proc_cpu_secs).ok();
            let c0 = cpu_now();
            let mut total = Duration::ZERO;
            for q in qs {
                let res = execute(&mut clients[i], srv, q)
                    .and_then(|(d, st, body)| answer_of(st, &body).map(|_| d));
                match res {
                    Ok(d) => total += d,
                    Err(e) => {
                        timings[i].error = Some(format!("refresh {r}, {}: {e:#}", q.name));
                        break;
                    }
                }
            }
            if timings[i].error.is_none() {
                timings[i].latencies_ms.push(total.as_secs_f64() * 1000.0);
                if let (Some(c0), Some(c1), Some(c)) = (c0, cpu_now(), &mut timings[i].cpu_secs) {
                    *c += c1 - c0;
                }
            }
        }
    }
    for t in &timings {
        log(&format!(
            "refresh {}: {}",
            t.system.map_or("?".into(), |s| s.to_string()),
            t.error
                .clone()
                .unwrap_or_else(|| format!("{:.1?} ms", t.latencies_ms))
        ));
    }
    run.refreshes = timings;
}

/// Dashboard refreshes timed per system ([`time_refreshes`]).
const REFRESHES: usize = 5;

/// Wait (at most a second) until the servers together used at most one clock tick of CPU
/// in a 50 ms stretch (the kernel's CPU accounting is no finer), so that one
/// system's after-work (Go's garbage collector after Prometheus answered, VictoriaMetrics'
/// background merges) does not run on the two cores while the next system is timed.
fn wait_quiet(servers: &[Server]) {
    let pids: Vec<u32> = servers.iter().filter_map(|s| s.pid().ok()).collect();
    let total = || -> f64 {
        pids.iter()
            .filter_map(|&p| server::proc_cpu_secs(p).ok())
            .sum()
    };
    // SAFETY: sysconf has no preconditions.
    let tick = 1.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let t0 = Instant::now();
    let mut prev = total();
    while t0.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(50));
        let now = total();
        if now - prev <= tick * 1.01 {
            return;
        }
        prev = now;
    }
}

/// VictoriaMetrics' rollup result cache (disabled by flag; reset anyway so nothing is cached).
fn reset_caches(srv: &Server) {
    if srv.system == System::VictoriaMetrics {
        let agent = server::http_agent(Duration::from_secs(10));
        if let Ok(mut r) = agent
            .get(format!("{}/internal/resetRollupResultCache", srv.base()))
            .call()
        {
            let _ = r.body_mut().read_to_vec();
        }
    }
}

fn query_summary(r: &QueryResult) -> String {
    let mut s = format!("{}:", r.query.id());
    for t in &r.timings {
        let name = t.system.map_or("?", System::name);
        match (&t.error, t.median_ms()) {
            (Some(e), _) => s.push_str(&format!(" {name} ERROR {}", truncate(e, 200))),
            (None, Some(m)) => s.push_str(&format!(
                " {name} {m:.1} ms ({} series)",
                t.series.unwrap_or(0)
            )),
            (None, None) => s.push_str(&format!(" {name} -")),
        }
    }
    if let Some(d) = &r.silt_vs_prometheus
        && !d.is_empty()
    {
        s.push_str(&format!(
            "; silt vs prometheus differ: {} / {} series only in one, {} of {} points; e.g. {}",
            d.only_first,
            d.only_second,
            d.points_differing,
            d.points_compared,
            d.examples.first().map_or("", String::as_str)
        ));
    }
    s
}

/// The check a report applies: do all systems agree on the series count (and match the
/// workload's expectation where it has one)?
pub fn series_counts_agree(r: &QueryResult) -> bool {
    let counts: Vec<u64> = r.timings.iter().filter_map(|t| t.series).collect();
    let same = counts.windows(2).all(|p| p[0] == p[1]);
    let expected = r
        .query
        .expected_series
        .is_none_or(|e| counts.iter().all(|&c| c == e));
    same && expected && counts.len() == r.timings.len()
}

/// Fails if the binaries the options name are missing.
pub fn check_binaries(opts: &QueryOptions) -> Result<()> {
    for s in &opts.systems {
        let p = opts.bins.path(*s);
        if !p.exists() {
            return Err(anyhow!("{s}: binary {} not found", p.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_are_the_same_for_every_system_but_vm_nocache() {
        let q = Query {
            expr: "up".into(),
            eval: Eval::Range {
                start_ms: 1_700_000_000_123,
                end_ms: 1_700_003_600_123,
                step_ms: 60_000,
            },
            ..Default::default()
        };
        let (path, silt) = request_params(&q, System::Silt);
        assert_eq!(path, "/api/v1/query_range");
        assert_eq!(
            silt,
            vec![
                ("query", "up".to_string()),
                ("start", "1700000000.123".into()),
                ("end", "1700003600.123".into()),
                ("step", "60.000".into())
            ]
        );
        assert_eq!(request_params(&q, System::Prometheus).1, silt);
        let (_, vm) = request_params(&q, System::VictoriaMetrics);
        assert_eq!(&vm[..4], &silt[..]);
        assert_eq!(vm[4], ("nocache", "1".to_string()));
        let i = Query {
            eval: Eval::Instant { time_ms: 5 },
            ..q
        };
        assert_eq!(request_params(&i, System::Silt).0, "/api/v1/query");
        assert_eq!(request_params(&i, System::Silt).1[1].1, "0.005");
        assert_eq!(secs(-1_500), "-1.500");
    }

    fn timing(s: System, series: Option<u64>) -> SystemTiming {
        SystemTiming {
            system: Some(s),
            series,
            ..Default::default()
        }
    }

    #[test]
    fn series_counts_must_agree_and_meet_the_expectation() {
        let mut r = QueryResult {
            query: Query {
                expected_series: Some(3),
                ..Default::default()
            },
            timings: vec![
                timing(System::Silt, Some(3)),
                timing(System::Prometheus, Some(3)),
                timing(System::VictoriaMetrics, Some(3)),
            ],
            silt_vs_prometheus: None,
        };
        assert!(series_counts_agree(&r));
        r.timings[2].series = Some(4);
        assert!(!series_counts_agree(&r));
        r.query.expected_series = None;
        r.timings[2].series = Some(3);
        r.timings[1].series = None; // Prometheus failed: nothing to agree on
        assert!(!series_counts_agree(&r));
        r.timings[1].series = Some(2);
        r.timings[0].series = Some(2);
        r.timings[2].series = Some(2);
        assert!(series_counts_agree(&r));
    }
}
