//! `silt-bench forecast`: the backtest of Silt's forecaster against naive,
//! seasonal naive (1 day, 1 week), Holt-Winters and `predict_linear` on
//! generated series (optionally also real ones from `/api/v1/export`),
//! time to threshold on disks, anomaly detection on injected anomalies,
//! and the fit cost. Results go into `docs/forecasting.md` between the
//! `<!-- backtest:begin -->` and `<!-- backtest:end -->` markers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::Sample;
use query::eval::functions::forecast::{self as ff, ForecastFunction, SeriesRef};
use query::eval::functions::range::Window;
use query::forecast::{FitOptions, Model};

use crate::forecast_baselines::{self as base, HoltWinters};
use crate::forecast_gen::{self as fgen, DAY, FAMILIES, Family, HOUR, MIN};
use crate::forecast_nab::{self as nab, NabSeries};

use crate::forecast_real as real;

/// Why the backtest cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("reading real series from {path}: {source}")]
    ReadReal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: not an export line: {message}")]
    BadRealLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} has no `<!-- backtest:begin -->` / `<!-- backtest:end -->` markers")]
    NoMarkers(PathBuf),
    #[error("--fetch-real needs --real FILE to write the series to")]
    FetchWithoutFile,
    #[error(transparent)]
    Fetch(#[from] real::FetchError),
    #[error(transparent)]
    Nab(#[from] nab::NabError),
}

fn log(msg: &str) {
    eprintln!("[{:7.1}s] {msg}", crate::elapsed_secs());
}

/// `silt-bench forecast` arguments.
#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Generated series per family (six families).
    #[arg(long, default_value_t = 60)]
    pub per_family: usize,
    /// Rolling cut-off points per series, 13 h apart.
    #[arg(long, default_value_t = 8)]
    pub cutoffs: usize,
    /// Days of history each forecast sees.
    #[arg(long, default_value_t = 14)]
    pub history_days: i64,
    /// Sample spacing of the generated series, in seconds.
    #[arg(long, default_value_t = 300)]
    pub step_seconds: i64,
    /// Disks for time to threshold (every other one fills).
    #[arg(long, default_value_t = 400)]
    pub disks: usize,
    /// Series with injected anomalies.
    #[arg(long, default_value_t = 120)]
    pub anomaly_series: usize,
    /// Series for the fit-cost measurement (7 days of 1-minute samples).
    #[arg(long, default_value_t = 1000)]
    pub cost_series: usize,
    /// JSON lines from /api/v1/export to backtest as well.
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// Before the backtest, read node_exporter series from this
    /// Prometheus-compatible API (e.g. http://127.0.0.1:19090) with
    /// `query_range` and write them to the `--real` file.
    #[arg(long)]
    pub fetch_real: Option<String>,
    /// How far back `--fetch-real` reads (data before the recording
    /// started is simply absent).
    #[arg(long, default_value = "28d", value_parser = humantime::parse_duration)]
    pub fetch_lookback: std::time::Duration,
    /// Resolution `--fetch-real` reads at (the scrape interval).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub fetch_step: std::time::Duration,
    /// A checkout of the Numenta Anomaly Benchmark (github.com/numenta/NAB):
    /// backtest its real AWS CloudWatch server metrics too, forecasts and
    /// anomaly detection against its labelled windows.
    #[arg(long)]
    pub nab: Option<PathBuf>,
    /// Only fetch (with `--fetch-real`), do not run the backtest.
    #[arg(long)]
    pub fetch_only: bool,
    /// Backtest only these families of the forecasting set (names as in
    /// the report, comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub families: Vec<String>,
    /// Write the results into this file between its backtest markers.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the backtest from the command line: prints the Markdown and, with
/// `--out`, writes it into the document.
pub fn cli(a: ForecastArgs) -> Result<(), BacktestError> {
    if let Some(base) = &a.fetch_real {
        let out = a.real.as_ref().ok_or(BacktestError::FetchWithoutFile)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let sum = real::fetch(
            base,
            now,
            a.fetch_lookback.as_millis() as i64,
            a.fetch_step.as_millis() as i64,
            out,
        )?;
        log(&format!(
            "fetched {} series, {} samples in {} requests into {}",
            sum.series,
            sum.samples,
            sum.requests,
            out.display()
        ));
        if a.fetch_only {
            return Ok(());
        }
    }
    let opts = Options {
        seed: a.seed,
        per_family: a.per_family,
        cutoffs: a.cutoffs.max(1),
        history_ms: a.history_days.max(1) * DAY,
        step_ms: a.step_seconds.max(1) * 1000,
        disks: a.disks,
        anomaly_series: a.anomaly_series,
        cost_series: a.cost_series,
        real: a.real,
        nab: a.nab,
        families: a.families,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let res = run(&opts)?;
    let md = render(&res);
    println!("{md}");
    if let Some(out) = a.out {
        write_into(&out, &md)?;
    }
    Ok(())
}

/// Backtest settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Series per family in the forecasting set.
    pub per_family: usize,
    /// Rolling cut-off points per series (13 h apart).
    pub cutoffs: usize,
    /// History each forecast sees.
    pub history_ms: i64,
    /// Sample spacing of generated series.
    pub step_ms: i64,
    /// Disks for time to threshold (half fill within 72 h).
    pub disks: usize,
    /// Series for anomaly detection.
    pub anomaly_series: usize,
    /// Series for the fit-cost measurement (7 days of 1-minute samples).
    pub cost_series: usize,
    /// Optional JSON lines from `/api/v1/export` to backtest too.
    pub real: Option<PathBuf>,
    /// Optional NAB checkout to backtest too.
    pub nab: Option<PathBuf>,
    /// Families to backtest (empty: all).
    pub families: Vec<String>,
    pub threads: usize,
}

pub const HORIZONS: [(i64, &str); 4] = [
    (HOUR, "1 h"),
    (6 * HOUR, "6 h"),
    (DAY, "24 h"),
    (3 * DAY, "72 h"),
];
pub const MODELS: [&str; 6] = [
    "silt",
    "naive",
    "snaive 1d",
    "snaive 1w",
    "holt-winters",
    "predict_linear[1d]",
];
const COVERAGE: f64 = 0.8;

/// Sums per (model, horizon): scaled absolute errors, forecasts, and
/// outcomes inside the 80 % interval (of forecasts that had one).
#[derive(Debug, Clone, Default)]
pub struct Acc {
    /// Column labels when the horizons are not [`HORIZONS`] (real data).
    pub labels: Vec<String>,
    pub scaled: [[f64; 4]; 6],
    pub count: [[u64; 4]; 6],
    pub covered: [[u64; 4]; 6],
    pub with_interval: [[u64; 4]; 6],
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        for m in 0..6 {
            for h in 0..4 {
                self.scaled[m][h] += o.scaled[m][h];
                self.count[m][h] += o.count[m][h];
                self.covered[m][h] += o.covered[m][h];
                self.with_interval[m][h] += o.with_interval[m][h];
            }
        }
    }

    pub fn mase(&self, m: usize, h: usize) -> f64 {
        self.scaled[m][h] / self.count[m][h].max(1) as f64
    }

    pub fn coverage(&self, m: usize, h: usize) -> Option<f64> {
        (self.with_interval[m][h] > 0)
            .then(|| self.covered[m][h] as f64 / self.with_interval[m][h] as f64)
    }
}

/// Mean absolute in-sample error of the forecast by the value `lag`
/// samples earlier (0 when there is no such pair).
fn lag_scale(y: &[f64], lag: usize) -> f64 {
    if lag == 0 || y.len() <= lag {
        return 0.0;
    }
    (lag..y.len())
        .map(|t| (y[t] - y[t - lag]).abs())
        .sum::<f64>()
        / (y.len() - lag) as f64
}

/// Backtests one series at the given cut-offs and (up to four) horizons;
/// a horizon of 0 is skipped (its column stays as it is).
/// The MASE scale is the in-sample one-day seasonal naive error; with
/// less than two days of history, the naive error at the horizon.
fn backtest_series(
    samples: &[Sample],
    cutoffs: &[i64],
    history_ms: i64,
    horizons: &[i64],
    acc: &mut Acc,
) {
    for &cutoff in cutoffs {
        let lo = samples.partition_point(|s| s.t <= cutoff - history_ms);
        let hi = samples.partition_point(|s| s.t <= cutoff);
        let hist = &samples[lo..hi];
        if hist.len() < 100 {
            continue;
        }
        let step = hist[1].t - hist[0].t;
        if step <= 0 {
            continue;
        }
        let y: Vec<f64> = hist.iter().map(|s| s.v).collect();
        let p_d = (DAY / step) as usize;
        let p_w = 7 * p_d;
        let daily_scale = (y.len() >= 2 * p_d).then(|| lag_scale(&y, p_d));
        let mut model = Model::fit(hist, &FitOptions::default()).ok();
        let hw = HoltWinters::fit(&y, p_d);
        for (hi_idx, &h_ms) in horizons.iter().enumerate().take(4) {
            if h_ms <= 0 {
                continue;
            }
            let target = cutoff + h_ms;
            let Some(actual) = samples
                .get(samples.partition_point(|s| s.t < target))
                .filter(|s| s.t == target)
                .map(|s| s.v)
            else {
                continue;
            };
            let h = (h_ms / step) as usize;
            let scale = daily_scale.unwrap_or_else(|| lag_scale(&y, h));
            if scale.is_nan() || scale <= 0.0 {
                continue;
            }
            let preds: [Option<base::Point>; 6] = [
                model.as_mut().and_then(|m| {
                    m.forecast(&[], target, COVERAGE).ok().map(|f| base::Point {
                        mean: f.mean,
                        lower: f.lower,
                        upper: f.upper,
                    })
                }),
                base::lagged(&y, h, h, COVERAGE),
                base::lagged(&y, h, base::seasonal_lag(h, p_d), COVERAGE),
                base::lagged(&y, h, base::seasonal_lag(h, p_w), COVERAGE),
                hw.map(|hw| hw.forecast(&y, p_d, h, COVERAGE)),
                base::predict_linear(hist, cutoff, DAY, h_ms as f64 / 1000.0).map(|mean| {
                    base::Point {
                        mean,
                        lower: f64::NAN,
                        upper: f64::NAN,
                    }
                }),
            ];
            for (m, p) in preds.iter().enumerate() {
                // A model without a forecast falls back to naive so that
                // every model is scored on the same points.
                let p = p.or(preds[1]);
                let Some(p) = p else { continue };
                acc.scaled[m][hi_idx] += (actual - p.mean).abs() / scale;
                acc.count[m][hi_idx] += 1;
                if !p.lower.is_nan() {
                    acc.with_interval[m][hi_idx] += 1;
                    if p.lower <= actual && actual <= p.upper {
                        acc.covered[m][hi_idx] += 1;
                    }
                }
            }
        }
    }
}

/// Runs `f` over `0..n` on `threads` threads, merging per-thread results.
fn par<T: Default + Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize, &mut T) + Sync,
    merge: impl Fn(&mut T, T),
) -> T {
    let threads = threads.max(1);
    let parts: Vec<T> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let f = &f;
                s.spawn(move || {
                    let mut acc = T::default();
                    for i in (k..n).step_by(threads) {
                        f(i, &mut acc);
                    }
                    acc
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut out = T::default();
    for p in parts {
        merge(&mut out, p);
    }
    out
}

/// Time-to-threshold results for one method.
#[derive(Debug, Clone, Copy, Default)]
pub struct TttScore {
    /// Disks that crossed within 72 h / of those predicted within a
    /// quarter of their lead time.
    pub crossings: u64,
    pub hits: u64,
    /// Disks that never filled / of those alarmed (crossing predicted
    /// within 72 h).
    pub never: u64,
    pub false_alarms: u64,
}

pub const TTT_METHODS: [&str; 3] = ["silt [7d]", "predict_linear [6h]", "predict_linear [1d]"];

#[derive(Debug, Clone, Default)]
struct TttAcc([TttScore; 3]);

fn ttt_disk(opts: &Options, i: usize, acc: &mut TttAcc) {
    let cutoff = fgen::START_MS + 14 * DAY;
    let len = 21 * DAY;
    let filling = i.is_multiple_of(2);
    let d = fgen::disk(opts.seed, i as u64, filling, cutoff, len, opts.step_ms);
    let s = &d.samples;
    let hi = s.partition_point(|x| x.t <= cutoff);
    let actual = s[hi..]
        .iter()
        .find(|x| x.v >= 100.0)
        .map(|x| (x.t - cutoff) as f64 / 1000.0);
    let hist_lo = s.partition_point(|x| x.t <= cutoff - 7 * DAY);
    let hist = &s[hist_lo..hi];
    let silt = Model::fit(hist, &FitOptions::default())
        .map(|mut m| m.time_to_threshold(&[], cutoff, 100.0, 7 * DAY))
        .unwrap_or(f64::INFINITY);
    let preds = [
        silt,
        base::linear_time_to_threshold(&s[..hi], cutoff, 6 * HOUR, 100.0),
        base::linear_time_to_threshold(&s[..hi], cutoff, DAY, 100.0),
    ];
    let limit = (3 * DAY / 1000) as f64;
    // Already full at the cut-off: not a forecasting question.
    if s[..hi].last().is_some_and(|x| x.v >= 100.0) {
        return;
    }
    for (m, &p) in preds.iter().enumerate() {
        let sc = &mut acc.0[m];
        match actual {
            Some(a) if a <= limit => {
                sc.crossings += 1;
                if (p - a).abs() <= 0.25 * a {
                    sc.hits += 1;
                }
            }
            None => {
                sc.never += 1;
                if p <= limit {
                    sc.false_alarms += 1;
                }
            }
            Some(_) => {}
        }
    }
}

/// Event-level anomaly detection results.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventScore {
    pub events: u64,
    pub true_events: u64,
    pub injected: u64,
    pub detected: u64,
}

impl EventScore {
    fn merge(&mut self, o: &EventScore) {
        self.events += o.events;
        self.true_events += o.true_events;
        self.injected += o.injected;
        self.detected += o.detected;
    }
    pub fn precision(&self) -> f64 {
        self.true_events as f64 / self.events.max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.detected as f64 / self.injected.max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

pub const ANOMALY_METHODS: [&str; 2] = [
    "silt_anomaly_score(v[14d]) > 1",
    "rolling z-score (1 d) > 3",
];
const ANOMALY_RANGE: i64 = 14 * DAY;

#[derive(Debug, Clone, Default)]
struct AnomalyAcc([EventScore; 2], [[u64; 2]; 4]);

/// Merges flagged timestamps (sorted) into events: gaps up to `gap` join.
fn events(flags: &[i64], gap: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &t in flags {
        match out.last_mut() {
            Some(e) if t - e.1 <= gap => e.1 = t,
            _ => out.push((t, t)),
        }
    }
    out
}

/// Scores `found` events against `windows` (inclusive): an event is true
/// when it overlaps a window, a window is detected when an event overlaps
/// it. Returns which windows were detected.
fn score_windows(found: &[(i64, i64)], windows: &[(i64, i64)], sc: &mut EventScore) -> Vec<bool> {
    let hit = |e: &(i64, i64), w: &(i64, i64)| e.0 <= w.1 && e.1 >= w.0;
    sc.events += found.len() as u64;
    sc.true_events += found
        .iter()
        .filter(|e| windows.iter().any(|w| hit(e, w)))
        .count() as u64;
    sc.injected += windows.len() as u64;
    let detected: Vec<bool> = windows
        .iter()
        .map(|w| found.iter().any(|e| hit(e, w)))
        .collect();
    sc.detected += detected.iter().filter(|&&d| d).count() as u64;
    detected
}

/// [`score_windows`] for injected anomalies, each counted from 10 minutes
/// before to 30 minutes after it; Silt's (`m == 0`) detections by kind.
fn score_events(
    found: &[(i64, i64)],
    injected: &[fgen::Injected],
    sc: &mut EventScore,
    by_kind: &mut [[u64; 2]; 4],
    m: usize,
) {
    let windows: Vec<(i64, i64)> = injected
        .iter()
        .map(|a| (a.start - 10 * MIN, a.end + 30 * MIN))
        .collect();
    let detected = score_windows(found, &windows, sc);
    if m == 0 {
        for (a, d) in injected.iter().zip(detected) {
            by_kind[a.kind as usize][1] += 1;
            by_kind[a.kind as usize][0] += u64::from(d);
        }
    }
}

/// Times from `from` on where `silt_anomaly_score(v[14d]) > 1`, the
/// PromQL function evaluated at every sample (2-hour refits).
fn silt_flags(s: &[Sample], from: i64) -> Vec<i64> {
    let key = SeriesRef {
        call: ff::next_call_id(),
        series: 0,
    };
    let mut flags = Vec::new();
    let start = s.partition_point(|x| x.t < from);
    let mut lo = 0;
    for j in start..s.len() {
        let t = s[j].t;
        while s[lo].t <= t - ANOMALY_RANGE {
            lo += 1;
        }
        let w = Window::new(&s[lo..=j], t - ANOMALY_RANGE, t);
        let score = ff::eval(
            ForecastFunction::AnomalyScore,
            &w,
            t,
            &[],
            Some(key),
            &mut |_| {},
        );
        if let Ok(Some(x)) = score
            && x > 1.0
        {
            flags.push(t);
        }
    }
    flags
}

/// Times from `from` on where the z-score against the previous day's
/// samples (`win` of them) exceeds 3.
fn zscore_flags(s: &[Sample], from: i64, win: usize) -> Vec<i64> {
    let mut flags = Vec::new();
    let (mut sum, mut sum2) = (0.0, 0.0);
    for (j, x) in s.iter().enumerate() {
        if j >= win {
            let n = win as f64;
            let mean = sum / n;
            let sd = (sum2 / n - mean * mean).max(0.0).sqrt();
            if x.t >= from && sd > 0.0 && ((x.v - mean) / sd).abs() > 3.0 {
                flags.push(x.t);
            }
            let old = s[j - win].v;
            sum -= old;
            sum2 -= old * old;
        }
        sum += x.v;
        sum2 += x.v * x.v;
    }
    flags
}

fn anomaly_series(opts: &Options, i: usize, acc: &mut AnomalyAcc) {
    let from = fgen::START_MS + 14 * DAY;
    let to = fgen::START_MS + 21 * DAY;
    let (s, injected) = fgen::anomalous(opts.seed, i as u64, 21 * DAY, opts.step_ms, from, to);
    let gap = 3 * opts.step_ms;
    let found = events(&silt_flags(&s, from), gap);
    score_events(&found, &injected, &mut acc.0[0], &mut acc.1, 0);
    let win = (DAY / opts.step_ms) as usize;
    let found = events(&zscore_flags(&s, from, win), gap);
    score_events(&found, &injected, &mut acc.0[1], &mut acc.1, 1);
}

/// Scores both detectors on a NAB series against its labelled windows:
/// an event (flags at most three samples apart) is true when it overlaps
/// a window, a window is detected when an event overlaps it. Scoring
/// starts after NAB's probationary period (15 % of the series) or two
/// days, whichever is longer, so the detectors have history to learn
/// from; windows ending before that do not count.
fn nab_anomalies(s: &NabSeries, acc: &mut [EventScore; 2]) {
    let (Some(first), Some(last)) = (s.samples.first(), s.samples.last()) else {
        return;
    };
    let step = median_spacing(&s.samples).max(1);
    let from = first.t + ((last.t - first.t) * 15 / 100).max(2 * DAY);
    let windows: Vec<(i64, i64)> = s.windows.iter().copied().filter(|w| w.1 >= from).collect();
    let win = (DAY / step).max(1) as usize;
    let flags = [
        silt_flags(&s.samples, from),
        zscore_flags(&s.samples, from, win),
    ];
    for (m, f) in flags.iter().enumerate() {
        score_windows(&events(f, 3 * step), &windows, &mut acc[m]);
    }
}

fn median_spacing(s: &[Sample]) -> i64 {
    let mut d: Vec<i64> = s.windows(2).map(|w| w[1].t - w[0].t).collect();
    if d.is_empty() {
        return 0;
    }
    let mid = d.len() / 2;
    *d.select_nth_unstable(mid).1
}

/// Fit cost: 1,000 series of 7 days at 1-minute samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub series: usize,
    pub samples_per_series: usize,
    /// Fit plus one forecast per series, one thread.
    pub instant_one_thread_ms: f64,
    /// The same on `threads` threads.
    pub instant_parallel_ms: f64,
    pub threads: usize,
    /// One series, `silt_forecast(x[7d], 86400)` as a 1-day range query
    /// at 1-minute steps (1,441 steps, hourly refits), per series.
    pub range_per_series_ms: f64,
}

fn cost(opts: &Options) -> Cost {
    let n = opts.cost_series;
    let data: Vec<Vec<Sample>> = (0..n)
        .map(|i| {
            fgen::series(
                FAMILIES[i % FAMILIES.len()],
                opts.seed ^ 0xc057,
                i as u64,
                7 * DAY,
                MIN,
            )
        })
        .collect();
    let one = |s: &Vec<Sample>| -> f64 {
        let end = s.last().map_or(0, |x| x.t);
        Model::fit(s, &FitOptions::default())
            .ok()
            .and_then(|mut m| m.forecast(&[], end + DAY, COVERAGE).ok())
            .map_or(0.0, |f| f.mean)
    };
    let t0 = Instant::now();
    let mut sink = 0.0;
    for s in &data {
        sink += one(s);
    }
    let single = t0.elapsed().as_secs_f64() * 1000.0;
    let t1 = Instant::now();
    let total: f64 = par(
        n,
        opts.threads,
        |i, acc: &mut f64| *acc += one(&data[i]),
        |a, b| *a += b,
    );
    let parallel = t1.elapsed().as_secs_f64() * 1000.0;
    std::hint::black_box(sink + total);
    // A range query over one day of 1-minute steps on an 8-day series.
    let long = fgen::series(Family::Web, opts.seed ^ 0xc058, 0, 8 * DAY, MIN);
    let reps = 3;
    let t2 = Instant::now();
    for r in 0..reps {
        let key = SeriesRef {
            call: ff::next_call_id(),
            series: r,
        };
        let first = fgen::START_MS + 7 * DAY;
        for step in 0..=1440 {
            let t = first + step * MIN;
            let lo = long.partition_point(|x| x.t <= t - 7 * DAY);
            let hi = long.partition_point(|x| x.t <= t);
            let w = Window::new(&long[lo..hi], t - 7 * DAY, t);
            let _ = std::hint::black_box(ff::eval(
                ForecastFunction::Forecast,
                &w,
                t,
                &[86_400.0],
                Some(key),
                &mut |_| {},
            ));
        }
    }
    Cost {
        series: n,
        samples_per_series: data.first().map_or(0, Vec::len),
        instant_one_thread_ms: single,
        instant_parallel_ms: parallel,
        threads: opts.threads,
        range_per_series_ms: t2.elapsed().as_secs_f64() * 1000.0 / reps as f64,
    }
}

/// Reads series from `/api/v1/export` JSON lines (`metric`, `values`,
/// `timestamps`; `null` values are NaN).
pub fn read_real(path: &Path) -> Result<Vec<(String, Vec<Sample>)>, BacktestError> {
    let text = std::fs::read_to_string(path).map_err(|source| BacktestError::ReadReal {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| BacktestError::BadRealLine {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let name = v.get("metric").map(|m| m.to_string()).unwrap_or_default();
        let (Some(vals), Some(ts)) = (
            v.get("values").and_then(|x| x.as_array()),
            v.get("timestamps").and_then(|x| x.as_array()),
        ) else {
            return Err(bad("missing values or timestamps".into()));
        };
        let samples: Vec<Sample> = vals
            .iter()
            .zip(ts)
            .filter_map(|(v, t)| {
                Some(Sample {
                    t: t.as_i64()?,
                    v: v.as_f64().unwrap_or(f64::NAN),
                })
            })
            .collect();
        out.push((name, samples));
    }
    Ok(out)
}

/// Regularises real samples onto `step_ms` (last sample per slot, gaps
/// carried forward) so the baselines can index by lag.
fn regularise(s: &[Sample], step_ms: i64) -> Vec<Sample> {
    let Some(first) = s.iter().find(|x| x.v.is_finite()) else {
        return Vec::new();
    };
    let start = first.t - first.t.rem_euclid(step_ms) + step_ms;
    let end = s.last().map_or(start, |x| x.t);
    let mut out = Vec::new();
    let mut j = 0;
    let mut last = first.v;
    let mut t = start;
    while t <= end {
        while j < s.len() && s[j].t <= t {
            if s[j].v.is_finite() {
                last = s[j].v;
            }
            j += 1;
        }
        out.push(Sample { t, v: last });
        t += step_ms;
    }
    out
}

/// Longest silence inside one stretch of a recording; a longer one (the
/// recorder was not running) splits it, as Prometheus' 5-minute lookback
/// would stop seeing the series.
const MAX_GAP_MS: i64 = 5 * MIN;

/// The stretches of `s` without a gap of more than `max_gap_ms` between
/// finite samples, each with its finite samples only.
fn stretches(s: &[Sample], max_gap_ms: i64) -> Vec<Vec<Sample>> {
    let mut out: Vec<Vec<Sample>> = Vec::new();
    for x in s.iter().filter(|x| x.v.is_finite()) {
        match out.last_mut() {
            Some(cur) if cur.last().is_some_and(|l| x.t - l.t <= max_gap_ms) => cur.push(*x),
            _ => out.push(vec![*x]),
        }
    }
    out
}

/// One real data set: what it is, what its recording allowed testing,
/// the accuracy, and (with labelled anomalies) detection scores.
#[derive(Debug, Clone, Default)]
pub struct RealSet {
    /// Section heading.
    pub title: String,
    /// Table name.
    pub name: String,
    pub note: String,
    pub acc: Option<Acc>,
    /// Per [`ANOMALY_METHODS`], against labelled windows.
    pub anomaly: Option<[EventScore; 2]>,
    pub anomaly_note: String,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub overall: Acc,
    pub by_family: Vec<(String, Acc)>,
    pub ttt: [TttScore; 3],
    pub anomaly: [EventScore; 2],
    /// Per anomaly kind: (detected by silt, injected).
    pub anomaly_kinds: [[u64; 2]; 4],
    pub cost: Cost,
    pub seconds: f64,
    pub opts_line: String,
    /// Real data sets (`--real`, `--nab`).
    pub real: Vec<RealSet>,
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn human(ms: i64) -> String {
    if ms >= 2 * DAY {
        return format!("{:.1} days", ms as f64 / DAY as f64);
    }
    let secs = (ms.max(0) / 1000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs - secs % 60)).to_string()
}

/// Backtests real series at the horizons and cut-offs their recorded
/// span allows (see [`real::plan`]), each stretch without a gap on its
/// own; returns the accuracy (none when too short) and a sentence on
/// what was tested.
fn backtest_recording(opts: &Options, series: &[&[Sample]]) -> (Option<Acc>, String) {
    // A recording with gaps (the recorder stopped) is tested stretch by
    // stretch: a forecast across a gap would be scored on a flat line or
    // against data its horizon does not describe.
    let pieces: Vec<Vec<Vec<Sample>>> = series
        .iter()
        .map(|s| stretches(s, MAX_GAP_MS.max(4 * median_spacing(s))))
        .collect();
    let spans: Vec<i64> = pieces
        .iter()
        .flatten()
        .filter_map(|p| Some(p.last()?.t - p.first()?.t))
        .collect();
    let longest = spans.iter().copied().max().unwrap_or(0);
    let n_stretches = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let Some(plan) = real::plan(longest, opts.cutoffs) else {
        return (
            None,
            format!(
                "its longest stretch without a gap ({}) is too short for the shortest horizon (5 m needs 20 m).",
                human(longest)
            ),
        );
    };
    let jobs: Vec<(usize, usize)> = pieces
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.len()).map(move |j| (i, j)))
        .collect();
    let cutoffs_total = std::sync::atomic::AtomicUsize::new(0);
    let mut acc = par(
        jobs.len(),
        opts.threads,
        |k, acc: &mut Acc| {
            let (i, j) = jobs[k];
            let s = regularise(&pieces[i][j], plan.step_ms);
            let (Some(start), Some(end)) = (s.first().map(|x| x.t), s.last().map(|x| x.t)) else {
                return;
            };
            let Some(p) = real::plan(end - start, opts.cutoffs) else {
                return;
            };
            // The table's columns are the longest stretch's horizons; a
            // shorter stretch tests those that fit it.
            let horizons: Vec<i64> = plan
                .horizons
                .iter()
                .map(|h| if p.horizons.contains(h) { h.0 } else { 0 })
                .collect();
            let cuts: Vec<i64> = p
                .cutoffs_back_ms
                .iter()
                .map(|b| {
                    let c = end - b;
                    c - c.rem_euclid(plan.step_ms)
                })
                .filter(|&c| c - start >= p.min_history_ms)
                .collect();
            cutoffs_total.fetch_add(cuts.len(), std::sync::atomic::Ordering::Relaxed);
            backtest_series(&s, &cuts, opts.history_ms, &horizons, acc);
        },
        |a, b| a.merge(&b),
    );
    acc.labels = plan.horizons.iter().map(|h| h.1.clone()).collect();
    let labels = acc.labels.join(", ");
    let scale = if longest >= 2 * DAY {
        "as for the generated series"
    } else {
        "by the in-sample error of the naive forecast at the same horizon (less than two days: no one-day seasonal naive forecast, and the seasonal baselines fall back to naive)"
    };
    let stretches = if n_stretches > 1 {
        format!(
            "{n_stretches} stretches without a gap (the longest {}), each backtested on its own",
            human(longest)
        )
    } else {
        "no gap".to_string()
    };
    let note = format!(
        "regularised to {} s, {stretches}. Testable horizons (at most a quarter of a stretch): {labels}; per stretch, cut-offs from its longest testable horizon before its end, {} apart, each with at least half the stretch as history ({} cut-offs in all). MASE is scaled {scale}.",
        plan.step_ms / 1000,
        if plan.horizons.last().is_some_and(|h| h.0 >= DAY) {
            "13 h".to_string()
        } else {
            "a third of that horizon".to_string()
        },
        cutoffs_total.into_inner(),
    );
    (Some(acc), note)
}

/// Backtests the node_exporter recording (`--real`).
fn backtest_node(opts: &Options, series: &[(String, Vec<Sample>)]) -> RealSet {
    let finite = |s: &[Sample]| {
        let first = s.iter().find(|x| x.v.is_finite())?.t;
        let last = s.iter().rev().find(|x| x.v.is_finite())?.t;
        Some((first, last))
    };
    let bounds: Vec<(i64, i64)> = series.iter().filter_map(|(_, s)| finite(s)).collect();
    let mut set = RealSet {
        title: "Real node_exporter data".into(),
        name: "real (node_exporter)".into(),
        ..RealSet::default()
    };
    let (Some(first), Some(last)) = (
        bounds.iter().map(|b| b.0).min(),
        bounds.iter().map(|b| b.1).max(),
    ) else {
        set.note = "Real data: the export holds no samples.".into();
        return set;
    };
    let mut names: Vec<String> = series
        .iter()
        .filter_map(|(m, _)| {
            let v: serde_json::Value = serde_json::from_str(m).ok()?;
            Some(v.get("__name__")?.as_str()?.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    let samples: Vec<&[Sample]> = series.iter().map(|(_, s)| s.as_slice()).collect();
    let (acc, tested) = backtest_recording(opts, &samples);
    set.note = format!(
        "{} series ({}) recorded over {} ({} to {}), read from a Prometheus scraping this machine's node_exporter every 15 s (it runs only while this machine's work sessions do, hence the gaps); {tested}",
        series.len(),
        names.join(", "),
        human(last - first),
        rfc3339(first),
        rfc3339(last)
    );
    set.acc = acc;
    set
}

/// Backtests NAB's real server metrics (`--nab`): forecasts and anomaly
/// detection against the labelled windows.
fn backtest_nab(opts: &Options, series: &[NabSeries]) -> RealSet {
    let samples: Vec<&[Sample]> = series.iter().map(|s| s.samples.as_slice()).collect();
    let (acc, tested) = backtest_recording(opts, &samples);
    let an = par(
        series.len(),
        opts.threads,
        |i, acc: &mut [EventScore; 2]| nab_anomalies(&series[i], acc),
        |a, b| {
            for m in 0..2 {
                a[m].merge(&b[m]);
            }
        },
    );
    let days: Vec<i64> = series
        .iter()
        .filter_map(|s| Some((s.samples.last()?.t - s.samples.first()?.t) / DAY))
        .collect();
    RealSet {
        title: "Real server metrics: the Numenta Anomaly Benchmark".into(),
        name: "real (NAB server metrics)".into(),
        note: format!(
            "{} series from NAB (github.com/numenta/NAB, MIT): {} AWS CloudWatch series of EC2 and RDS instances and an ELB (CPU utilisation, disk write bytes, network in, request count) and {} with known causes ({}), sampled every 5 minutes over {}–{} days; {tested}",
            series.len(),
            series
                .iter()
                .filter(|s| s.name.starts_with("realAWSCloudwatch/"))
                .count(),
            nab::KNOWN_CAUSE.len(),
            nab::KNOWN_CAUSE
                .iter()
                .map(|k| k.trim_start_matches("realKnownCause/").trim_end_matches(".csv"))
                .collect::<Vec<_>>()
                .join(", "),
            days.iter().min().unwrap_or(&0),
            days.iter().max().unwrap_or(&0),
        ),
        acc,
        anomaly: Some(an),
        anomaly_note: "Against NAB's labelled anomaly windows (combined_windows.json): an event (flags at most three samples apart) is true when it overlaps a window; a window is found when an event overlaps it. Scoring starts after NAB's probationary 15 % of each series (at least two days), so both detectors have history; the anomaly score sees at most the preceding 14 days.".into(),
    }
}

/// Runs the whole backtest.
pub fn run(opts: &Options) -> Result<Results, BacktestError> {
    let started = Instant::now();
    let len = opts.history_ms + (opts.cutoffs as i64 - 1) * 13 * HOUR + 3 * DAY + HOUR;
    let cutoffs: Vec<i64> = (0..opts.cutoffs as i64)
        .map(|j| fgen::START_MS + opts.history_ms + j * 13 * HOUR)
        .collect();
    let horizons = HORIZONS.map(|h| h.0);
    let mut res = Results::default();
    for family in FAMILIES {
        if !opts.families.is_empty() && !opts.families.iter().any(|f| f == family.name()) {
            continue;
        }
        log(&format!("forecast backtest: {}", family.name()));
        let acc = par(
            opts.per_family,
            opts.threads,
            |i, acc: &mut Acc| {
                let id = i as u64 * 16 + family as u64;
                let s = fgen::series(family, opts.seed, id, len, opts.step_ms);
                backtest_series(&s, &cutoffs, opts.history_ms, &horizons, acc);
            },
            |a, b| a.merge(&b),
        );
        res.overall.merge(&acc);
        res.by_family.push((family.name().to_string(), acc));
    }
    if let Some(path) = &opts.real {
        let series = read_real(path)?;
        log(&format!("forecast backtest: {} real series", series.len()));
        res.real.push(backtest_node(opts, &series));
    }
    if let Some(root) = &opts.nab {
        let series = nab::read_nab(root)?;
        log(&format!("forecast backtest: {} NAB series", series.len()));
        res.real.push(backtest_nab(opts, &series));
    }
    log("forecast backtest: time to threshold");
    let ttt = par(
        opts.disks,
        opts.threads,
        |i, acc: &mut TttAcc| ttt_disk(opts, i, acc),
        |a, b| {
            for m in 0..3 {
                a.0[m].crossings += b.0[m].crossings;
                a.0[m].hits += b.0[m].hits;
                a.0[m].never += b.0[m].never;
                a.0[m].false_alarms += b.0[m].false_alarms;
            }
        },
    );
    res.ttt = ttt.0;
    log("forecast backtest: anomalies");
    let an = par(
        opts.anomaly_series,
        opts.threads,
        |i, acc: &mut AnomalyAcc| anomaly_series(opts, i, acc),
        |a, b| {
            for m in 0..2 {
                a.0[m].merge(&b.0[m]);
            }
            for k in 0..4 {
                a.1[k][0] += b.1[k][0];
                a.1[k][1] += b.1[k][1];
            }
        },
    );
    res.anomaly = an.0;
    res.anomaly_kinds = an.1;
    log("forecast backtest: fit cost");
    res.cost = cost(opts);
    res.seconds = started.elapsed().as_secs_f64();
    res.opts_line = format!(
        "seed {}, {} series per family × {} families, {} cut-offs 13 h apart, {} days of history at {} s samples; {} disks; {} anomaly series; {} threads",
        opts.seed,
        opts.per_family,
        FAMILIES.len(),
        opts.cutoffs,
        opts.history_ms / DAY,
        opts.step_ms / 1000,
        opts.disks,
        opts.anomaly_series,
        opts.threads
    );
    Ok(res)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn mase_table(out: &mut String, acc: &Acc) {
    let labels: Vec<String> = if acc.labels.is_empty() {
        HORIZONS.iter().map(|h| h.1.to_string()).collect()
    } else {
        acc.labels.clone()
    };
    let cols = labels.len().min(4);
    out.push_str("| model |");
    for h in &labels[..cols] {
        let _ = write!(out, " MASE {h} |");
    }
    for h in &labels[..cols] {
        let _ = write!(out, " 80 % cover {h} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(2 * cols));
    out.push('\n');
    for (m, name) in MODELS.iter().enumerate() {
        let _ = write!(out, "| {name} |");
        for h in 0..cols {
            let best = (1..6).map(|b| acc.mase(b, h)).fold(f64::INFINITY, f64::min);
            let v = acc.mase(m, h);
            if m == 0 {
                let _ = write!(out, " **{v:.3}** ({:+.0} %) |", 100.0 * (v / best - 1.0));
            } else {
                let _ = write!(out, " {v:.3} |");
            }
        }
        for h in 0..cols {
            match acc.coverage(m, h) {
                Some(c) => {
                    let _ = write!(out, " {} |", pct(c));
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
}

fn anomaly_table(out: &mut String, scores: &[EventScore; 2], truth: &str) {
    let _ = writeln!(
        out,
        "| method | events flagged | precision | {truth} | recall | F1 |\n|---|---:|---:|---:|---:|---:|"
    );
    for (m, name) in ANOMALY_METHODS.iter().enumerate() {
        let s = scores[m];
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | **{:.3}** |",
            s.events,
            pct(s.precision()),
            s.injected,
            pct(s.recall()),
            s.f1()
        );
    }
}

/// The results as Markdown.
pub fn render(res: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Run: {} ({:.0} s).\n", res.opts_line, res.seconds);
    out.push_str("### Accuracy, all generated series\n\nMASE: mean absolute error at the horizon divided by the in-sample mean absolute error of the one-day seasonal naive forecast (lower is better); in brackets, Silt against the best baseline at that horizon. Coverage: share of outcomes inside the 80 % interval.\n\n");
    mase_table(&mut out, &res.overall);
    out.push_str("\n### Per family\n\n");
    for (name, acc) in &res.by_family {
        let _ = writeln!(
            out,
            "**{name}** ({} forecasts per horizon)\n",
            acc.count[0][0]
        );
        mase_table(&mut out, acc);
        out.push('\n');
    }
    for set in &res.real {
        let _ = writeln!(out, "### {}\n\n{}\n", set.title, set.note);
        if let Some(acc) = &set.acc {
            let _ = writeln!(
                out,
                "**{}** ({} forecasts per horizon)\n",
                set.name, acc.count[0][0]
            );
            mase_table(&mut out, acc);
            out.push('\n');
        }
        if let Some(an) = &set.anomaly {
            let _ = writeln!(out, "Anomaly detection. {}\n", set.anomaly_note);
            anomaly_table(&mut out, an, "labelled windows");
            out.push('\n');
        }
    }
    out.push_str("### Time to threshold (disks, threshold 100 %, cut-off after 14 days)\n\n| method | crossings within 72 h | predicted within ¼ of lead time | never-filling disks | false alarms (crossing predicted ≤ 72 h) |\n|---|---:|---:|---:|---:|\n");
    for (m, name) in TTT_METHODS.iter().enumerate() {
        let s = res.ttt[m];
        let _ = writeln!(
            out,
            "| {name} | {} | {} ({}) | {} | {} ({}) |",
            s.crossings,
            s.hits,
            pct(s.hits as f64 / s.crossings.max(1) as f64),
            s.never,
            s.false_alarms,
            pct(s.false_alarms as f64 / s.never.max(1) as f64)
        );
    }
    out.push_str("\n### Anomaly detection (events, 7 evaluated days per series)\n\n");
    anomaly_table(&mut out, &res.anomaly, "injected");
    out.push_str("\nSilt's recall by kind: ");
    let kinds = ["spikes", "dips", "level shifts", "seasonal breaks"];
    let parts: Vec<String> = kinds
        .iter()
        .zip(res.anomaly_kinds)
        .map(|(k, [d, n])| format!("{k} {d}/{n}"))
        .collect();
    out.push_str(&parts.join(", "));
    out.push_str(".\n\n### Fit cost\n\n");
    let c = res.cost;
    let _ = writeln!(
        out,
        "{} series × {} samples (7 days at 1 min), fit plus a 24 h forecast each: **{:.0} ms** on one thread, **{:.0} ms** on {} threads. A range query `silt_forecast(x[7d], 86400)` over one day at 1-minute steps (1,441 steps, hourly refits): {:.1} ms per series.",
        c.series,
        c.samples_per_series,
        c.instant_one_thread_ms,
        c.instant_parallel_ms,
        c.threads,
        c.range_per_series_ms
    );
    out
}

/// Replaces the text between the backtest markers of `doc` with `body`.
pub fn write_into(doc: &Path, body: &str) -> Result<(), BacktestError> {
    const BEGIN: &str = "<!-- backtest:begin -->";
    const END: &str = "<!-- backtest:end -->";
    let text = std::fs::read_to_string(doc).map_err(|source| BacktestError::Write {
        path: doc.to_path_buf(),
        source,
    })?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(BacktestError::NoMarkers(doc.to_path_buf()));
    };
    if e < b {
        return Err(BacktestError::NoMarkers(doc.to_path_buf()));
    }
    let new = format!("{}{BEGIN}\n{body}\n{}", &text[..b], &text[e..]);
    std::fs::write(doc, new).map_err(|source| BacktestError::Write {
        path: doc.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_merge_and_match() {
        let ev = events(&[0, 5, 10, 100, 105], 5);
        assert_eq!(ev, vec![(0, 10), (100, 105)]);
        let injected = [fgen::Injected {
            kind: fgen::AnomalyKind::Spike,
            start: 100,
            end: 100,
        }];
        let mut sc = EventScore::default();
        let mut kinds = [[0; 2]; 4];
        score_events(&ev, &injected, &mut sc, &mut kinds, 0);
        assert_eq!(
            (sc.events, sc.true_events, sc.injected, sc.detected),
            (2, 2, 1, 1)
        );
        assert_eq!(kinds[0], [1, 1]);
    }

    #[test]
    fn small_backtest_runs_and_renders() {
        let opts = Options {
            seed: 1,
            per_family: 1,
            cutoffs: 1,
            history_ms: 7 * DAY,
            step_ms: 15 * MIN,
            disks: 2,
            anomaly_series: 1,
            cost_series: 2,
            real: None,
            nab: None,
            families: Vec::new(),
            threads: 1,
        };
        let res = run(&opts).unwrap();
        assert_eq!(res.overall.count[0][0], FAMILIES.len() as u64);
        let md = render(&res);
        assert!(md.contains("| silt |") && md.contains("Fit cost"));
    }

    #[test]
    fn real_series_are_read_from_export_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        std::fs::write(
            &p,
            "{\"metric\":{\"__name__\":\"up\"},\"values\":[1,null,3],\"timestamps\":[1000,2000,3000]}\n",
        )
        .unwrap();
        let r = read_real(&p).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1.len(), 3);
        assert!(r[0].1[1].v.is_nan());
        let reg = regularise(&r[0].1, 1000);
        assert_eq!(reg.iter().map(|s| s.v).collect::<Vec<_>>(), vec![1.0, 3.0]);
        let gappy: Vec<Sample> = [0, 15, 30, 400, 415, 420]
            .iter()
            .map(|&t| Sample {
                t: t * 1000,
                v: t as f64,
            })
            .collect();
        let parts = stretches(&gappy, MAX_GAP_MS);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 3);
        assert_eq!(parts[1][0].t, 400_000);
        std::fs::write(&p, "nope\n").unwrap();
        assert!(matches!(
            read_real(&p),
            Err(BacktestError::BadRealLine { line: 1, .. })
        ));
    }
}
