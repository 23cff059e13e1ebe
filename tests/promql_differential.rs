//! Differential PromQL test against a real Prometheus: Debian's
//! `prometheus` (2.42) and Silt ingest the same generated data through
//! remote write 1.0, then about 600 listed queries and 500 composed at
//! random ([`random_queries`]), each as instant and range queries, must give
//! the same answers on both (same result type, series, timestamps; values
//! within 1e-6 relative or [`CANCELLATION`]). Silt follows Prometheus 3;
//! where 2.42 differs *because* Prometheus 3 changed semantics, the query
//! is listed in [`EXCLUDED`] with its reason (the same list is in
//! `docs/promql-differences.md`).
//!
//! The data are designed so that most version differences cannot arise:
//! every sample timestamp is ≡ 5 (mod 10) ms, every query time is ≡ 7
//! (mod 10) ms and every range, offset and step is a multiple of 10 ms, so no
//! sample ever sits on a window boundary (left-open windows, Prometheus 3),
//! and subquery steps (multiples of 10 ms from the epoch) never meet one
//! either. Counters start well above zero and reset to values far from zero,
//! and every series exists long before the first query window, so the
//! changed zero-point cutoff of `rate` extrapolation (2.51) never applies.
//!
//! Needs `/usr/bin/prometheus` (`.ci/run` installs it); without it the test
//! fails in CI and skips locally.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Silt, SiltOptions, Value, proto};

/// Queries where Prometheus 2.42 and Silt (Prometheus 3 semantics) differ
/// on purpose, with the reason. Keep in sync with
/// `docs/promql-differences.md`.
const EXCLUDED: &[(&str, &str)] = &[
    (
        "diff_temperature_celsius atan2 3",
        "`atan2` drops `__name__` since Prometheus 2.47 (#12595), like the other \
         arithmetic operators; 2.42 keeps it. Values agree; the variant over \
         `rate(..)` (no name) is compared.",
    ),
    (
        "2 atan2 diff_queue_length",
        "`atan2` drops `__name__` since Prometheus 2.47 (#12595); 2.42 keeps it.",
    ),
    (
        "max_over_time(sum_over_time(max_over_time(diff_queue_length[3m])[12m:2m])[30m:5m])",
        "left-open subqueries (Prometheus 3.0.1, #15431, FORMAT.md Version notes A.2): \
         the inner subquery runs at the outer one's step points (multiples of 5m), \
         so its window start t-12m falls on its own 2m grid; 2.42 includes that \
         point (7 points, sum 35), Prometheus 3 does not (6 points). The \
         `[12m10ms:2m]` variant avoids the boundary and is compared.",
    ),
];

/// Relative tolerance for values (as Prometheus's own test runner).
const EPSILON: f64 = 1e-6;

/// Differences below this are equal too. The data's values are at most
/// about 1e5, so this is the rounding left where a sum or mean of them
/// cancels to near zero, which Prometheus 3 computes differently on purpose
/// (Kahan sums, a direct mean: FORMAT.md A.4), not another answer.
const CANCELLATION: f64 = 1e-9;

/// Queries composed at random ([`random_queries`]) besides the listed ones.
const RANDOM_QUERIES: usize = 500;

// ---------------------------------------------------------------------------
// Processes

/// The Prometheus child process, killed when dropped.
struct Prometheus {
    child: Child,
    log: PathBuf,
    client: Client,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        // No scrape targets: only the remote-written data exist. The
        // evaluation interval is the default subquery step (`x[10m:]`).
        std::fs::write(
            &config,
            "global:\n  evaluation_interval: 1m\nscrape_configs: []\n",
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", common::free_port());
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--query.lookback-delta=5m")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting prometheus: {e}"));
        let mut prom = Prometheus {
            child,
            log,
            client: Client::new(format!("http://{addr}")),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if matches!(prom.client.try_get("/-/ready"), Ok(r) if r.status == 200) {
                return prom;
            }
            if let Ok(Some(status)) = prom.child.try_wait() {
                panic!("prometheus exited with {status}; log:\n{}", prom.log());
            }
            assert!(Instant::now() < deadline, "prometheus not ready after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGTERM lets it shut down.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log());
        }
    }
}

// ---------------------------------------------------------------------------
// Data

/// SplitMix64: a tiny deterministic generator (no dependence on `rand`'s
/// algorithm choices).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Length of the generated data.
const SPAN_MS: i64 = 2 * 3600 * 1000;
const INTERVAL_MS: i64 = 15_000;

/// One series: labels and samples in time order.
struct GenSeries {
    labels: Vec<(String, String)>,
    samples: Vec<(i64, f64)>,
}

impl GenSeries {
    fn new(name: &str, labels: &[(&str, &str)]) -> GenSeries {
        let mut all = vec![("__name__".to_owned(), name.to_owned())];
        all.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        GenSeries {
            labels: all,
            samples: Vec::new(),
        }
    }
}

/// Scrape times of one target: every 15 s from its phase, ±0.5 s jitter in
/// 10 ms steps; all ≡ 5 (mod 10) ms because `t0` is.
fn scrape_times(rng: &mut Rng, t0: i64, phase_ms: i64) -> Vec<i64> {
    let n = (SPAN_MS - phase_ms) / INTERVAL_MS;
    (0..n)
        .map(|i| t0 + phase_ms + i * INTERVAL_MS + (rng.below(101) as i64 - 50) * 10)
        .collect()
}

const JOBS: [&str; 2] = ["api", "web"];
const INSTANCES: [&str; 3] = ["host-1:9100", "host-2:9100", "host-3.example:9100"];
const BUCKETS: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];

/// The whole data set, deterministic for a given `t0`.
fn generate(t0: i64) -> Vec<GenSeries> {
    let mut rng = Rng(0x5117_d1ff);
    let mut out = Vec::new();
    for (j, job) in JOBS.iter().enumerate() {
        for (i, inst) in INSTANCES.iter().enumerate() {
            let base = [("job", *job), ("instance", *inst)];
            let phase = ((j * 3 + i) as i64 * 2_370) % INTERVAL_MS;
            let times = scrape_times(&mut rng, t0, phase);
            // The instance that goes away for a while (stale markers).
            let flapping = *job == "web" && i == 1;
            let gone = |t: i64| flapping && (t0 + 4_700_000..t0 + 5_900_000).contains(&t);

            // Counters with resets to values far from zero.
            for (m, method) in ["GET", "POST"].iter().enumerate() {
                let mut s = GenSeries::new(
                    "diff_requests_total",
                    &[base[0], base[1], ("method", method)],
                );
                let mut v = 1000.0 + rng.below(4000) as f64;
                let step = 1.0 + (j * 6 + i * 2 + m) as f64;
                let reset_at = [
                    (rng.below(300) + 60) as usize,
                    (rng.below(100) + 380) as usize,
                ];
                for (k, &t) in times.iter().enumerate() {
                    if reset_at.contains(&k) && (i + m) % 2 == 0 {
                        v = 300.0 + rng.below(200) as f64;
                    } else {
                        v += (rng.below(20) as f64) * step / 4.0;
                    }
                    s.samples.push((t, v));
                }
                out.push(s);
            }
            let mut errors = GenSeries::new("diff_errors_total", &base);
            let mut e = 500.0 + (i * 100) as f64;
            for &t in &times {
                if rng.below(5) == 0 {
                    e += 1.0 + rng.below(3) as f64;
                }
                errors.samples.push((t, e));
            }
            out.push(errors);

            // Gauges.
            let mut temp = GenSeries::new(
                "diff_temperature_celsius",
                &[
                    base[0],
                    base[1],
                    ("zone", if i == 2 { "attic" } else { "cellar" }),
                ],
            );
            let mut c = 15.0 + 5.0 * i as f64 + j as f64;
            for &t in &times {
                c += rng.unit() - 0.5;
                temp.samples.push((t, (c * 100.0).round() / 100.0));
            }
            out.push(temp);

            let mut queue = GenSeries::new("diff_queue_length", &base);
            let mut up = GenSeries::new("diff_up", &base);
            let mut was_gone = false;
            for &t in &times {
                if gone(t) {
                    if !was_gone {
                        let stale = f64::from_bits(common::STALE_NAN);
                        queue.samples.push((t, stale));
                        up.samples.push((t, stale));
                    }
                    was_gone = true;
                    continue;
                }
                was_gone = false;
                queue.samples.push((t, rng.below(6) as f64));
                up.samples.push((t, 1.0));
            }
            out.push(queue);
            out.push(up);

            let mut info = GenSeries::new(
                "diff_build_info",
                &[
                    base[0],
                    base[1],
                    ("version", if i == 0 { "1.2.3" } else { "1.3.0" }),
                ],
            );
            info.samples = times.iter().map(|&t| (t, 1.0)).collect();
            out.push(info);

            // A classic histogram for instances 1 and 2.
            if i < 2 {
                let mut cum = [0.0f64; 7];
                let mut count = 0.0;
                let mut sum = 0.0;
                let seed = 200.0 + rng.below(300) as f64;
                cum.iter_mut()
                    .enumerate()
                    .for_each(|(b, c)| *c = seed * (b + 1) as f64);
                count += cum[6];
                sum += seed * 3.0;
                let mut buckets: Vec<GenSeries> = BUCKETS
                    .iter()
                    .map(|le| {
                        GenSeries::new(
                            "diff_latency_seconds_bucket",
                            &[base[0], base[1], ("le", le)],
                        )
                    })
                    .collect();
                let mut hsum = GenSeries::new("diff_latency_seconds_sum", &base);
                let mut hcount = GenSeries::new("diff_latency_seconds_count", &base);
                let reset_at = 200 + 50 * j + 30 * i;
                for (k, &t) in times.iter().enumerate() {
                    if k == reset_at && j == 1 {
                        cum = [0.0; 7];
                        count = 0.0;
                        sum = 0.0;
                    }
                    let n = rng.below(30);
                    for _ in 0..n {
                        let x = rng.unit().powi(2) * (1.0 + j as f64 + i as f64);
                        let first = BUCKETS
                            .iter()
                            .position(|le| le.parse::<f64>().is_ok_and(|b| x <= b))
                            .unwrap_or(6);
                        cum.iter_mut().skip(first).for_each(|c| *c += 1.0);
                        count += 1.0;
                        sum += x;
                    }
                    for (b, s) in buckets.iter_mut().enumerate() {
                        s.samples.push((t, cum[b]));
                    }
                    hsum.samples.push((t, sum));
                    hcount.samples.push((t, count));
                }
                out.extend(buckets);
                out.push(hsum);
                out.push(hcount);
            }
        }
    }
    // A gauge with NaN samples (both versions treat NaN alike).
    let times = scrape_times(&mut rng, t0, 7_770);
    let mut ratio = GenSeries::new("diff_ratio", &[("job", "batch"), ("instance", "cron:1")]);
    for (k, &t) in times.iter().enumerate() {
        let v = if k % 37 == 5 { f64::NAN } else { rng.unit() };
        ratio.samples.push((t, v));
    }
    out.push(ratio);
    out
}

/// Sends all data to one server, oldest first, in 10-minute slices, so a
/// Prometheus head never sees an out-of-order or too-old sample.
fn ingest(client: &Client, data: &[GenSeries], t0: i64) {
    let slice = 600_000;
    let mut from = t0;
    while from < t0 + SPAN_MS + INTERVAL_MS {
        let to = from + slice;
        let timeseries = data
            .iter()
            .filter_map(|s| {
                let samples: Vec<proto::Sample> = s
                    .samples
                    .iter()
                    .filter(|(t, _)| (from..to).contains(t))
                    .map(|&(timestamp, v)| proto::Sample {
                        value: Some(v),
                        timestamp,
                    })
                    .collect();
                (!samples.is_empty()).then(|| proto::TimeSeries {
                    labels: s
                        .labels
                        .iter()
                        .map(|(n, v)| proto::Label {
                            name: n.as_bytes().to_vec(),
                            value: v.as_bytes().to_vec(),
                        })
                        .collect(),
                    samples,
                })
            })
            .collect();
        client.write_ok(&proto::WriteRequest {
            timeseries,
            metadata: Vec::new(),
        });
        from = to;
    }
}

// ---------------------------------------------------------------------------
// Queries

/// One query: the text Silt gets, and the text Prometheus 2.42 gets when it
/// spells the same thing differently (a renamed function).
struct Query {
    silt: String,
    prom: String,
    /// Instant-query results whose order is defined (`sort`, `sort_desc`).
    ordered: bool,
}

fn q(text: impl Into<String>) -> Query {
    let silt = text.into();
    Query {
        ordered: silt.starts_with("sort(") || silt.starts_with("sort_desc("),
        prom: silt.clone(),
        silt,
    }
}

/// Seconds with millisecond precision, as PromQL's `@` takes them.
fn secs(ms: i64) -> String {
    common::ms_param(ms)
}

fn queries(t0: i64) -> Vec<Query> {
    let mut out = Vec::new();
    let selectors = [
        r#"diff_requests_total"#,
        r#"diff_requests_total{job="api"}"#,
        r#"diff_requests_total{job!="api",method="GET"}"#,
        r#"diff_requests_total{instance=~"host-[12]:.*"}"#,
        r#"diff_requests_total{instance!~".*example.*",method!="POST"}"#,
        r#"{__name__=~"diff_(requests|errors)_total",job=~"api|web"}"#,
        r#"diff_errors_total"#,
    ];
    let gauges = [
        r#"diff_temperature_celsius"#,
        r#"diff_queue_length{job=~"a.*"}"#,
        r#"diff_queue_length"#,
        r#"diff_ratio"#,
        r#"diff_up{instance!="host-3.example:9100"}"#,
    ];
    let ranges = ["1m", "5m", "17m", "1h"];

    // Plain selectors, with offset and @.
    for s in selectors.iter().chain(&gauges) {
        out.push(q(*s));
        out.push(q(format!("{s} offset 7m")));
    }
    out.push(q(format!(
        "diff_temperature_celsius @ {}",
        secs(t0 + 3_000_007)
    )));
    out.push(q(format!("diff_up @ {}", secs(t0 + 5_000_017))));
    out.push(q("diff_up offset -3m"));
    // timestamp() of a selector pinned by @ with an offset: the last sample
    // in both (T - lookback, T] and the offset window.
    for off in ["20s", "-1m", "4m30s", "-4m50s"] {
        out.push(q(format!(
            "timestamp(diff_temperature_celsius @ {} offset {off})",
            secs(t0 + 3_000_007)
        )));
        out.push(q(format!("timestamp(diff_up @ end() offset {off})")));
    }
    out.push(q(r#"diff_latency_seconds_bucket{le=~"0\\.[0-9]+"}"#));
    out.push(q(r#"{job="api",__name__!~"diff_latency.*"}"#));
    out.push(q(r#"diff_nonexistent"#));
    out.push(q(r#"diff_requests_total{method=""}"#));

    // Names dropped at once (neither server delays their removal, A.8):
    // label functions, `by (__name__)` and `or` no longer see them, and a
    // range function over two names fails where their series meet.
    let two_names = r#"{__name__=~"diff_(requests|errors)_total",job=~"api|web"}"#;
    out.push(q(format!("rate({two_names}[5m])")));
    out.push(q(format!("sum by (job) (rate({two_names}[5m]))")));
    out.push(q(format!("sum by (__name__) (rate({two_names}[5m]))")));
    out.push(q(format!("-{two_names}")));
    // Two names over the same label sets: equal once rate() drops them.
    let same_labels = r#"{__name__=~"diff_latency_seconds_(sum|count)"}"#;
    out.push(q(format!("rate({same_labels}[5m])")));
    out.push(q(format!("sum by (job) (rate({same_labels}[5m]))")));
    out.push(q(format!("count by (__name__) (rate({same_labels}[5m]))")));
    out.push(q(format!("last_over_time({same_labels}[5m])")));
    out.push(q(
        r#"label_replace(rate(diff_requests_total[5m]), "name", "$1", "__name__", "(.+)")"#,
    ));
    out.push(q(
        r#"label_replace(diff_requests_total, "name", "$1", "__name__", "diff_(.+)")"#,
    ));
    out.push(q("count by (__name__) (rate(diff_requests_total[5m]))"));
    out.push(q("diff_requests_total or rate(diff_errors_total[5m])"));
    out.push(q("rate(diff_errors_total[5m]) or diff_requests_total"));
    out.push(q(
        "sum by (__name__, job) (diff_up or rate(diff_requests_total[5m]))",
    ));
    out.push(q(r#"diff_requests_total{nolabel!=""}"#));
    out.push(q(r#"diff_requests_total{method=~""}"#));

    // Counter functions × selectors × ranges.
    for f in ["rate", "irate", "increase", "resets", "changes"] {
        for s in &selectors {
            for r in &ranges {
                out.push(q(format!("{f}({s}[{r}])")));
            }
        }
    }
    // Gauge functions × gauges × ranges.
    for f in [
        "delta",
        "idelta",
        "deriv",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "last_over_time",
        "present_over_time",
    ] {
        for s in &gauges {
            for r in ["2m", "10m", "1h"] {
                out.push(q(format!("{f}({s}[{r}])")));
            }
        }
    }
    for s in &gauges[..3] {
        out.push(q(format!("quantile_over_time(0.3, {s}[10m])")));
        out.push(q(format!("quantile_over_time(0.95, {s}[1h])")));
        out.push(q(format!("predict_linear({s}[10m], 600)")));
        out.push(q(format!("predict_linear({s}[30m], -120.5)")));
        out.push(q(format!("absent_over_time({s}[1m])")));
        // holt_winters was renamed in Prometheus 3; same algorithm.
        out.push(Query {
            silt: format!("double_exponential_smoothing({s}[10m], 0.5, 0.3)"),
            prom: format!("holt_winters({s}[10m], 0.5, 0.3)"),
            ordered: false,
        });
    }
    out.push(q(r#"absent_over_time(diff_nonexistent{job="x"}[5m])"#));
    out.push(q(r#"absent(diff_nonexistent{job="x",instance=~"y"})"#));
    out.push(q(r#"absent(diff_up{job="web"})"#));
    out.push(q(r#"rate(diff_requests_total[5m] offset 10m)"#));
    out.push(q(format!(
        "increase(diff_requests_total[10m] @ {})",
        secs(t0 + 4_400_027)
    )));

    // Aggregations.
    for agg in [
        "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
    ] {
        out.push(q(format!("{agg}(rate(diff_requests_total[5m]))")));
        out.push(q(format!("{agg} by (job) (rate(diff_requests_total[5m]))")));
        out.push(q(format!(
            "{agg} without (instance) (diff_temperature_celsius)"
        )));
        out.push(q(format!("{agg}(diff_queue_length) by (job, instance)")));
    }
    for k in ["1", "3"] {
        out.push(q(format!("topk({k}, rate(diff_requests_total[5m]))")));
        out.push(q(format!(
            "bottomk({k}, diff_temperature_celsius) by (job)"
        )));
        out.push(q(format!("topk by (job) ({k}, diff_queue_length)")));
    }
    out.push(q("quantile(0.5, rate(diff_requests_total[5m]))"));
    out.push(q("quantile by (job) (0.9, diff_temperature_celsius)"));
    out.push(q("count_values(\"value\", diff_queue_length)"));
    out.push(q("count_values by (job) (\"q\", diff_queue_length)"));
    out.push(q("sum(diff_ratio)"));
    out.push(q("max(diff_ratio) + min(diff_ratio)"));

    // Binary operators.
    for op in ["+", "-", "*", "/", "%", "^", "atan2"] {
        out.push(q(format!("diff_temperature_celsius {op} 3")));
        out.push(q(format!("2 {op} diff_queue_length")));
        out.push(q(format!("rate(diff_requests_total[5m]) {op} 0.7")));
        out.push(q(format!(
            "rate(diff_requests_total[5m]) {op} on(job, instance) group_left sum by (job, instance) (diff_queue_length)"
        )));
    }
    for op in ["==", "!=", ">", "<", ">=", "<="] {
        out.push(q(format!("diff_queue_length {op} 2")));
        out.push(q(format!("diff_queue_length {op} bool 2")));
    }
    out.push(q("rate(diff_errors_total[5m]) / on(job, instance) group_left sum by (job, instance) (rate(diff_requests_total[5m]))"));
    out.push(q(
        "rate(diff_requests_total[5m]) * on(job, instance) group_left(version) diff_build_info",
    ));
    out.push(q(
        "diff_build_info * on(job, instance) group_right(version) diff_queue_length",
    ));
    out.push(q(
        "rate(diff_requests_total[5m]) / ignoring(method) group_left rate(diff_errors_total[5m])",
    ));
    out.push(q("diff_queue_length > on(job, instance) diff_up"));
    out.push(q(
        "diff_queue_length + ignoring(zone) diff_temperature_celsius",
    ));
    out.push(q(
        "diff_temperature_celsius > bool on(job, instance) diff_queue_length",
    ));
    out.push(q("diff_queue_length and diff_queue_length > 2"));
    out.push(q("diff_queue_length or diff_up"));
    out.push(q("diff_queue_length unless diff_queue_length < 3"));
    out.push(q(
        "diff_queue_length and on(job) diff_up{instance=\"host-1:9100\"}",
    ));
    out.push(q(
        "diff_temperature_celsius unless ignoring(zone) diff_queue_length == 0",
    ));
    out.push(q(
        "sum by (job) (diff_queue_length) / sum by (job) (diff_up)",
    ));
    out.push(q("-diff_temperature_celsius"));
    out.push(q("scalar(sum(diff_up)) * diff_queue_length"));
    out.push(q("scalar(diff_up)"));
    out.push(q("1 + 2 * 3 ^ 2"));
    out.push(q("time() - 30"));
    out.push(q("vector(1) + vector(2)"));
    out.push(q("(diff_queue_length > 1) == bool (diff_queue_length < 4)"));

    // Vector functions.
    for f in [
        "abs",
        "ceil",
        "floor",
        "exp",
        "sqrt",
        "ln",
        "log2",
        "log10",
        "sgn",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "sinh",
        "cosh",
        "tanh",
        "deg",
        "rad",
        "timestamp",
    ] {
        out.push(q(format!("{f}(diff_temperature_celsius / 40)")));
    }
    out.push(q("timestamp(diff_up)"));
    out.push(q("round(diff_temperature_celsius)"));
    out.push(q("round(diff_temperature_celsius, 0.25)"));
    out.push(q("clamp(diff_temperature_celsius, 16, 20)"));
    out.push(q("clamp_min(diff_temperature_celsius, 18)"));
    out.push(q("clamp_max(diff_ratio, 0.5)"));
    out.push(q("sort(diff_temperature_celsius)"));
    out.push(q("sort_desc(rate(diff_requests_total[5m]))"));
    out.push(q("sort(sum by (job) (diff_queue_length))"));
    out.push(q(
        r#"label_replace(diff_up, "host", "$1", "instance", "([^:]+):.*")"#,
    ));
    out.push(q(
        r#"label_replace(diff_up, "port", "p$2", "instance", "(.*):(\\d+)")"#,
    ));
    out.push(q(r#"label_replace(diff_up, "job", "", "job", "web")"#));
    out.push(q(r#"label_join(diff_up, "id", "/", "job", "instance")"#));
    out.push(q(
        r#"label_join(diff_queue_length, "job", "-", "instance")"#,
    ));
    out.push(q(
        r#"label_join(diff_queue_length, "job", "-", "job", "instance")"#,
    ));
    for f in [
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "day_of_year",
        "days_in_month",
        "month",
        "year",
    ] {
        out.push(q(format!("{f}()")));
        out.push(q(format!("{f}(diff_up)")));
    }
    out.push(q("vector(time())"));

    // Classic histograms.
    for r in ["5m", "30m"] {
        for phi in ["0.5", "0.9", "0.99"] {
            out.push(q(format!(
                "histogram_quantile({phi}, rate(diff_latency_seconds_bucket[{r}]))"
            )));
        }
        out.push(q(format!(
            "histogram_quantile(0.9, sum by (job, le) (rate(diff_latency_seconds_bucket[{r}])))"
        )));
        out.push(q(format!(
            "rate(diff_latency_seconds_sum[{r}]) / rate(diff_latency_seconds_count[{r}])"
        )));
    }
    out.push(q("histogram_quantile(0.75, diff_latency_seconds_bucket)"));

    // Edge cases and @ start()/end().
    for text in [
        r#""a string""#,
        "42",
        "-Inf",
        "NaN",
        "scalar(vector(3))",
        "diff_temperature_celsius @ end()",
        "rate(diff_requests_total[5m] @ start())",
        "max_over_time(diff_queue_length[10m] @ end())",
        "quantile(0, diff_temperature_celsius)",
        "quantile(1.5, diff_temperature_celsius)",
        "quantile(-1, diff_temperature_celsius)",
        "quantile_over_time(0.5, diff_ratio[1h])",
        "histogram_quantile(1.5, rate(diff_latency_seconds_bucket[5m]))",
        "histogram_quantile(-0.5, rate(diff_latency_seconds_bucket[5m]))",
        "histogram_quantile(0.5, sum by (le) (rate(diff_latency_seconds_bucket[10m])))",
        "count by (le) (diff_latency_seconds_bucket)",
        "count_values(\"le\", diff_latency_seconds_bucket)",
        "stddev_over_time(diff_build_info[30m])",
        "deriv(diff_build_info[10m])",
        "changes(diff_ratio[1h])",
        "resets(diff_latency_seconds_count[2h])",
        "irate(diff_ratio[1m])",
        "idelta(diff_requests_total[30s])",
        "rate(diff_requests_total[20s])",
        "increase(diff_up[1h])",
        "last_over_time(diff_up[10m])",
        "present_over_time(diff_up[3m])",
        "timestamp(diff_up offset 1m)",
        "time() - timestamp(diff_queue_length)",
        "sort_desc(topk(4, diff_temperature_celsius))",
        "count(count by (instance) (diff_up))",
        "absent(sum(diff_nonexistent))",
        "sum(diff_queue_length) / count(diff_queue_length)",
        "-sum by (job) (diff_queue_length)",
        "sgn(delta(diff_temperature_celsius[10m]))",
        "round(diff_temperature_celsius - 20.5)",
        "floor(-diff_temperature_celsius)",
        "diff_temperature_celsius % -3",
        "-diff_temperature_celsius % 3",
        "vector(1) and on() diff_up{job=\"api\"}",
        "diff_requests_total > on(job, instance) group_left diff_errors_total",
        "sum by (job) (rate(diff_requests_total[5m])) > bool 1",
        "diff_up{job=\"web\"} or on(instance) diff_up{job=\"api\"}",
        r#"label_replace(rate(diff_requests_total[5m]), "m", "$1", "method", "(G).*")"#,
        "topk(scalar(count(diff_up)) - 2, diff_temperature_celsius)",
        "bottomk(2, diff_ratio)",
        "topk(2, diff_ratio)",
        "max(diff_ratio)",
        "avg_over_time(diff_ratio[5m])",
    ] {
        out.push(q(text));
    }

    // Subqueries.
    for sq in ["[30m:1m]", "[10m:45s]", "[20m:]", "[1h:6m]"] {
        out.push(q(format!(
            "max_over_time(rate(diff_requests_total[5m]){sq})"
        )));
        out.push(q(format!("avg_over_time(diff_temperature_celsius{sq})")));
        out.push(q(format!("count_over_time(diff_up{sq})")));
    }
    out.push(q("rate(diff_requests_total[10m:30s])"));
    out.push(q(
        "max_over_time(deriv(diff_temperature_celsius[5m])[20m:1m] offset 5m)",
    ));
    out.push(q(format!(
        "min_over_time(sum(diff_queue_length)[15m:1m] @ {})",
        secs(t0 + 6_000_037)
    )));
    out.push(q(
        "max_over_time(sum_over_time(max_over_time(diff_queue_length[3m])[12m:2m])[30m:5m])",
    ));
    out.push(q(
        "max_over_time(sum_over_time(max_over_time(diff_queue_length[3m])[12m10ms:2m])[30m:5m])",
    ));
    out
}

/// Random compositions, for what the lists above do not combine: selectors,
/// range functions, subqueries, aggregations (`count_values` too), classic
/// `histogram_quantile`, operators with matching, and element-wise, date and
/// label functions nested to three levels, deterministic for the seed. They stay
/// clear of the deliberate version differences: no `atan2`, no subquery
/// inside a subquery (left-open inner windows, FORMAT.md A.2), no `rate`
/// or `increase` of a subquery (whose values can be near zero: the
/// extrapolation cutoff, A.5), no renamed or new functions. Nor the means
/// and fits that Prometheus 3 computes in other ways (`avg`,
/// `avg_over_time`, `stddev_over_time`, `deriv`, `predict_linear`: A.4,
/// Kahan sums and a direct mean): a comparison, `round`, `%` or a
/// `count_values` label turns their last bits into another answer. Nor
/// `topk` and `bottomk`, which choose among equal values by the order of
/// their input, which neither version defines. Names are dropped at once in
/// both (Silt's default, as Prometheus's; A.8 is the feature that delays it),
/// so `or`, `by (__name__)` and `label_replace` of `__name__` are drawn.
///
/// `SILT_DIFF_SEED`, `SILT_DIFF_RANDOM` (how many) and `SILT_DIFF_DEPTH`
/// explore other draws.
fn random_queries(n: usize) -> Vec<Query> {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env("SILT_DIFF_SEED").unwrap_or(0xd1ff_5eed));
    let n = env("SILT_DIFF_RANDOM").map_or(n, |k| k as usize);
    let depth = env("SILT_DIFF_DEPTH").map_or(3, |d| d as u32);
    (0..n)
        .map(|_| {
            let mut query = q(expr(&mut rng, depth, false));
            // holt_winters was renamed in Prometheus 3 (C.23); same algorithm.
            query.prom = query
                .silt
                .replace("double_exponential_smoothing(", "holt_winters(");
            query
        })
        .collect()
}

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

const COUNTERS: [&str; 5] = [
    "diff_requests_total",
    r#"diff_requests_total{method="GET"}"#,
    r#"diff_requests_total{job=~"a.*",instance!="host-2:9100"}"#,
    "diff_errors_total",
    "diff_latency_seconds_count",
];
const GAUGES: [&str; 6] = [
    "diff_temperature_celsius",
    "diff_queue_length",
    r#"diff_queue_length{instance=~"host-[13].*"}"#,
    "diff_ratio",
    "diff_up",
    "diff_build_info",
];
const GROUPINGS: [&str; 8] = [
    "",
    " by (__name__)",
    " by (job)",
    " by (job, instance)",
    " without (instance)",
    " by (zone)",
    " without (method, zone)",
    " by (instance, method)",
];

/// A vector expression at most `depth` levels deep; `sub`: inside a
/// subquery already.
fn expr(rng: &mut Rng, depth: u32, sub: bool) -> String {
    let ranges = ["1m", "5m", "17m", "1h"];
    let offset = || {
        [
            " offset 5m",
            " offset 30s",
            "",
            " @ end()",
            " @ start() offset -1m",
        ]
    };
    let kinds = if depth == 0 { 3 } else { 13 };
    match rng.below(kinds) {
        0 => {
            let s = pick(
                rng,
                &GAUGES.iter().chain(&COUNTERS).copied().collect::<Vec<_>>(),
            );
            format!("{s}{}", pick(rng, &offset()))
        }
        1 => {
            let f = pick(
                rng,
                &["rate", "increase", "irate", "resets", "changes", "delta"],
            );
            let s = pick(rng, &COUNTERS);
            format!("{f}({s}[{}]{})", pick(rng, &ranges), pick(rng, &offset()))
        }
        2 => {
            let f = pick(
                rng,
                &[
                    "min_over_time",
                    "max_over_time",
                    "sum_over_time",
                    "count_over_time",
                    "last_over_time",
                    "idelta",
                    "changes",
                    "present_over_time",
                    "quantile_over_time",
                    "double_exponential_smoothing",
                    "absent_over_time",
                ],
            );
            let (g, r) = (pick(rng, &GAUGES), pick(rng, &ranges));
            match f {
                "quantile_over_time" => format!("{f}(0.3, {g}[{r}])"),
                "double_exponential_smoothing" => format!("{f}({g}[{r}], 0.5, 0.3)"),
                _ => format!("{f}({g}[{r}])"),
            }
        }
        3 | 4 => {
            // Not `stddev` and `stdvar`, whose NaN and ±Inf handling
            // changed (A.11; `diff_ratio` has NaNs), nor `avg` (A.4).
            let agg = pick(rng, &["sum", "min", "max", "count", "group"]);
            let g = pick(rng, &GROUPINGS);
            format!("{agg}{g} ({})", expr(rng, depth - 1, sub))
        }
        5 => {
            let phi = pick(rng, &["0", "0.25", "0.75", "1"]);
            let g = pick(rng, &GROUPINGS);
            format!("quantile{g} ({phi}, {})", expr(rng, depth - 1, sub))
        }
        6 | 7 => {
            let op = pick(
                rng,
                &[
                    "+", "-", "*", "/", ">", "<=", "==", "!=", ">= bool", "and", "unless", "or",
                ],
            );
            let on = pick(
                rng,
                &[
                    "",
                    " on (job, instance)",
                    " ignoring (method)",
                    " on (job)",
                    " ignoring (zone, version)",
                ],
            );
            let (a, b) = (expr(rng, depth - 1, sub), expr(rng, depth - 1, sub));
            // Many-to-one matching from a side with one series per target,
            // either way round, maybe copying a label of the one side.
            if rng.below(3) == 0 && !["and", "unless", "or"].contains(&op) {
                let one = format!("max by (job, instance, zone) ({b})");
                // (A parenthesis right after `group_right` opens its labels.)
                let copy = pick(rng, &[" ()", " (zone)"]);
                if rng.below(2) == 0 {
                    format!("({a}) {op} on (job, instance) group_left{copy} {one}")
                } else {
                    format!("{one} {op} on (job, instance) group_right{copy} ({a})")
                }
            } else {
                format!("({a}) {op}{on} ({b})")
            }
        }
        8 => {
            let op = pick(rng, &["+", "-", "*", "/", "^", ">", "<", "== bool"]);
            let x = pick(rng, &["2", "0.5", "-3", "1e3", "0"]);
            if rng.below(2) == 0 {
                format!("({}) {op} {x}", expr(rng, depth - 1, sub))
            } else {
                format!("{x} {op} ({})", expr(rng, depth - 1, sub))
            }
        }
        9 => {
            let inner = expr(rng, depth - 1, sub);
            match rng.below(22) {
                0 => format!("abs({inner})"),
                1 => format!("clamp_min({inner}, 0.5)"),
                2 => format!("clamp({inner}, 1, 50)"),
                3 => format!("sqrt(abs({inner}))"),
                4 => format!("timestamp({inner})"),
                5 => format!(r#"label_replace({inner}, "host", "$1", "instance", "([^:]+):.*")"#),
                6 => format!("absent({inner})"),
                7 => format!(r#"label_join({inner}, "id", "-", "job", "instance")"#),
                8 => format!("exp(clamp_max({inner}, 5))"),
                9 => format!("ln(abs({inner}))"),
                10 => format!("sgn({inner})"),
                11 => {
                    let other = expr(rng, depth - 1, sub);
                    format!("({inner}) * scalar(sum({other}))")
                }
                12 => format!(r#"label_replace({inner}, "name", "$1", "__name__", "diff_(.+)")"#),
                13 => format!("floor({inner})"),
                14 => format!("ceil(({inner}) * 10)"),
                15 => format!("hour(timestamp({inner}))"),
                16 => format!("minute(timestamp({inner}))"),
                17 => format!("day_of_week(timestamp({inner}))"),
                18 => format!("vector(scalar({inner}))"),
                19 => format!("log2(abs({inner}))"),
                20 => format!("sort_desc({inner})"),
                // Unary minus over `or` could join series that meet at no
                // step, which 2.42 refuses (A.7); `-1 *` merges in both.
                _ if inner.contains(" or ") => format!("-1 * ({inner})"),
                _ => format!("-({inner})"),
            }
        }
        11 => {
            // Classic histograms: the buckets' rates summed by `le` and
            // maybe a target label.
            let phi = pick(rng, &["0.5", "0.9", "0.99", "1", "0"]);
            let by = pick(rng, &["le", "le, job", "le, instance"]);
            let sel = pick(
                rng,
                &[
                    "diff_latency_seconds_bucket",
                    r#"diff_latency_seconds_bucket{job="api"}"#,
                ],
            );
            let r = pick(rng, &ranges);
            format!("histogram_quantile({phi}, sum by ({by}) (rate({sel}[{r}])))")
        }
        12 => {
            // Integer values, so the value labels agree.
            let g = pick(rng, &GROUPINGS);
            let inner = pick(
                rng,
                &[
                    "changes(diff_queue_length[10m])",
                    "diff_up",
                    "count_over_time(diff_requests_total[5m])",
                    "floor(diff_queue_length / 10)",
                ],
            );
            format!(r#"count_values{g} ("v", {inner})"#)
        }
        _ if !sub => {
            let f = pick(
                rng,
                &[
                    "max_over_time",
                    "count_over_time",
                    "delta",
                    "last_over_time",
                ],
            );
            let window = pick(
                rng,
                &[
                    "[10m:1m]",
                    "[30m:2m]",
                    "[20m:]",
                    "[7m:30s]",
                    "[10m:1m] offset 3m",
                    "[5m:20s] @ end()",
                ],
            );
            format!("{f}(({}){window})", expr(rng, depth - 1, true))
        }
        _ => expr(rng, depth - 1, sub),
    }
}

// ---------------------------------------------------------------------------
// Comparison

/// Prometheus 3.9 raises the many-to-one error of a comparison without
/// `group_left`/`group_right` whether or not the matched elements pass the
/// filter; 2.42 only when more than one passes, and answers otherwise
/// (FORMAT.md A.6, #17668). Random compositions meet it.
fn is_many_to_one_filter_error(query: &str, prom: &Answer, silt: &Answer) -> bool {
    ["==", "!=", ">", "<"].iter().any(|op| query.contains(op))
        && !matches!(prom, Answer::Error(_))
        && matches!(silt, Answer::Error(e) if e.contains("many-to-one matching must be explicit"))
}

/// A value as compared: exact for NaN/±Inf, relative tolerance otherwise,
/// or an absolute one of [`CANCELLATION`].
fn values_equal(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() || a == b {
        return a == b;
    }
    let d = (a - b).abs();
    d <= EPSILON * a.abs().max(b.abs()) || d <= CANCELLATION
}

fn parse_value(v: &Value) -> f64 {
    f64::from_bits(common::json_value_bits(v))
}

fn parse_time(v: &Value) -> i64 {
    (v.as_f64().expect("numeric timestamp") * 1000.0).round() as i64
}

type Points = Vec<(i64, f64)>;

/// A result normalized for comparison.
#[derive(Debug)]
enum Answer {
    Error(String),
    Scalar(i64, f64),
    Text(String),
    Series(Vec<(BTreeMap<String, String>, Points)>),
}

fn answer(body: &Value, ordered: bool) -> Answer {
    if body["status"] != "success" {
        return Answer::Error(format!("{}: {}", body["errorType"], body["error"]));
    }
    let data = &body["data"];
    let point = |p: &Value| (parse_time(&p[0]), parse_value(&p[1]));
    match data["resultType"].as_str() {
        Some("scalar") => {
            let (t, v) = point(&data["result"]);
            Answer::Scalar(t, v)
        }
        Some("string") => Answer::Text(data["result"][1].to_string()),
        Some(kind @ ("vector" | "matrix")) => {
            let mut series: Vec<_> = data["result"]
                .as_array()
                .expect("result list")
                .iter()
                .map(|s| {
                    let metric: BTreeMap<String, String> =
                        serde_json::from_value(s["metric"].clone()).expect("label map");
                    let points = if kind == "vector" {
                        vec![point(&s["value"])]
                    } else {
                        s["values"]
                            .as_array()
                            .expect("values")
                            .iter()
                            .map(point)
                            .collect()
                    };
                    (metric, points)
                })
                .collect();
            if !(ordered && kind == "vector") {
                series.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Answer::Series(series)
        }
        other => Answer::Error(format!("unknown result type {other:?}")),
    }
}

/// `None` when the answers agree, else what differs.
fn difference(prom: &Answer, silt: &Answer, ordered: bool) -> Option<String> {
    match (prom, silt) {
        (Answer::Error(_), Answer::Error(_)) => None,
        (Answer::Scalar(ta, a), Answer::Scalar(tb, b)) => {
            (ta != tb || !values_equal(*a, *b)).then(|| "scalar differs".to_owned())
        }
        (Answer::Text(a), Answer::Text(b)) => (a != b).then(|| "string differs".to_owned()),
        (Answer::Series(a), Answer::Series(b)) => {
            if ordered {
                // Sorted output: the order of values is defined (ties are
                // not), so compare the value sequence, then the sets.
                let va: Vec<f64> = a.iter().map(|s| s.1[0].1).collect();
                let vb: Vec<f64> = b.iter().map(|s| s.1[0].1).collect();
                if va.len() != vb.len() || va.iter().zip(&vb).any(|(x, y)| !values_equal(*x, *y)) {
                    return Some("sort order differs".to_owned());
                }
                let mut a: Vec<_> = a.iter().collect();
                let mut b: Vec<_> = b.iter().collect();
                a.sort_by(|x, y| x.0.cmp(&y.0));
                b.sort_by(|x, y| x.0.cmp(&y.0));
                return series_difference(&a, &b);
            }
            series_difference(&a.iter().collect::<Vec<_>>(), &b.iter().collect::<Vec<_>>())
        }
        _ => Some("result kinds differ".to_owned()),
    }
}

type SeriesRef<'a> = &'a (BTreeMap<String, String>, Points);

fn series_difference(a: &[SeriesRef<'_>], b: &[SeriesRef<'_>]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} series vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        if x.0 != y.0 {
            return Some(format!("labels {:?} vs {:?}", x.0, y.0));
        }
        if x.1.len() != y.1.len() {
            return Some(format!("{:?}: {} points vs {}", x.0, x.1.len(), y.1.len()));
        }
        for (p, s) in x.1.iter().zip(&y.1) {
            if p.0 != s.0 || !values_equal(p.1, s.1) {
                return Some(format!("{:?}: point {p:?} vs {s:?}", x.0));
            }
        }
    }
    None
}

fn truncated(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// One query mode: an instant query at `time`, or a range query.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

fn run(client: &Client, text: &str, mode: Mode) -> String {
    let r = match mode {
        Mode::Instant(t) => {
            client.get_query("/api/v1/query", &[("query", text), ("time", &secs(t))])
        }
        Mode::Range { start, end, step } => client.get_query(
            "/api/v1/query_range",
            &[
                ("query", text),
                ("start", &secs(start)),
                ("end", &secs(end)),
                ("step", &secs(step)),
            ],
        ),
    };
    r.body
}

#[test]
fn promql_answers_match_prometheus_2_42() {
    let Some(bin) = common::require_program("prometheus") else {
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(&bin, tmp.path());
    let silt = Silt::start_with(
        &tmp.path().join("silt"),
        SiltOptions {
            extra_config: "query:\n  timeout: 60s\n".into(),
            ..SiltOptions::default()
        },
    );
    let silt_client = silt.client();

    // The data end one to two hours ago. t0 is a whole hour plus 5 ms, so
    // every subquery grid (steps dividing an hour) meets the data the same
    // way in every run, and all sample times are ≡ 5 (mod 10) ms.
    let t0 = (common::now_ms() - SPAN_MS - 60_000) / 3_600_000 * 3_600_000 + 5;
    let data = generate(t0);
    ingest(&prom.client, &data, t0);
    ingest(&silt_client, &data, t0);
    let samples: usize = data.iter().map(|s| s.samples.len()).sum();
    eprintln!(
        "ingested {} series, {samples} samples into both in {:?}",
        data.len(),
        started.elapsed()
    );

    // Query times ≡ 7 (mod 10) ms; steps and ranges are multiples of 10 ms.
    let modes = [
        Mode::Instant(t0 + 4_217_412),
        Mode::Instant(t0 + 7_122_002),
        Mode::Instant(t0 + 5_703_332),
        Mode::Instant(t0 + SPAN_MS + 183_332),
        Mode::Range {
            start: t0 + 3_700_002,
            end: t0 + SPAN_MS + 90_002,
            step: 61_230,
        },
        Mode::Range {
            start: t0 + 5_000_002,
            end: t0 + 5_900_002,
            step: 17_010,
        },
    ];
    // `SILT_DIFF_QUERIES` (one per line) replaces the set, to look into a
    // difference: every answer is printed.
    let only = std::env::var("SILT_DIFF_QUERIES").ok();
    let queries = match &only {
        Some(list) => list
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(q)
            .collect(),
        None => {
            let mut all = queries(t0);
            all.extend(random_queries(RANDOM_QUERIES));
            all
        }
    };
    let (mut matched, mut excluded, mut both_errors) = (0usize, Vec::new(), 0usize);
    let mut failures = String::new();
    let mut failed = 0usize;
    let mut runs = 0usize;
    let mut many_to_one = 0usize;
    for (n, query) in queries.iter().enumerate() {
        // Every query runs as a range query and at two instants (rotating).
        let picks = [modes[n % 4], modes[(n + 1) % 4], modes[4 + n % 2]];
        let mut diffs = Vec::new();
        for mode in picks {
            runs += 1;
            let p_body = run(&prom.client, &query.prom, mode);
            let s_body = run(&silt_client, &query.silt, mode);
            let parse = |b: &str| serde_json::from_str::<Value>(b).unwrap_or(Value::Null);
            let ordered = query.ordered && matches!(mode, Mode::Instant(_));
            let pa = answer(&parse(&p_body), ordered);
            let sa = answer(&parse(&s_body), ordered);
            if only.is_some() {
                eprintln!(
                    "{:?} {mode:?}\n  prometheus: {p_body}\n  silt:       {s_body}",
                    query.silt
                );
            }
            if let (Answer::Error(e), Answer::Error(_)) = (&pa, &sa) {
                both_errors += 1;
                eprintln!("  both error {:?} {mode:?}: {e}", query.silt);
            }
            if let Some(d) = difference(&pa, &sa, ordered) {
                if is_many_to_one_filter_error(&query.silt, &pa, &sa) {
                    many_to_one += 1;
                    continue;
                }
                diffs.push((mode, d, p_body, s_body));
            }
        }
        if diffs.is_empty() {
            matched += 1;
            continue;
        }
        if let Some((_, reason)) = EXCLUDED.iter().find(|(t, _)| *t == query.silt) {
            excluded.push((query.silt.clone(), *reason));
            continue;
        }
        failed += 1;
        for (mode, d, p, s) in diffs {
            let _ = writeln!(
                failures,
                "\nMISMATCH {:?} {mode:?}: {d}\n  prometheus: {}\n  silt:       {}",
                query.silt,
                truncated(&p, 600),
                truncated(&s, 600)
            );
        }
    }
    let unused: Vec<&str> = EXCLUDED
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !excluded.iter().any(|(e, _)| e == t))
        .collect();
    eprintln!(
        "{} queries ({runs} runs per server): {matched} matched, {} excluded, {failed} failed; \
         {both_errors} runs errored on both, {many_to_one} only on Silt as Prometheus 3.9 \
         does (many-to-one filters, A.6); {:?} in all",
        queries.len(),
        excluded.len(),
        started.elapsed()
    );
    for (text, reason) in &excluded {
        eprintln!("  excluded {text:?}: {reason}");
    }
    for text in &unused {
        eprintln!("  NOTE: excluded query now matches (or no longer exists): {text:?}");
    }
    assert!(
        failed == 0,
        "{failed} queries differ from Prometheus 2.42:{failures}"
    );
    drop(prom);
    silt.stop();
}
