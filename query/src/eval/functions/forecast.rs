//! Silt's forecasting and anomaly functions (PromQL extensions, prefixed
//! `silt_` so they can never collide with Prometheus's):
//!
//! | function                                   | value at each step                                          |
//! |--------------------------------------------|-------------------------------------------------------------|
//! | `silt_forecast(v[r], h)`                   | expected value `h` seconds after the evaluation time         |
//! | `silt_forecast_lower(v[r], h, c)`          | lower bound of the central prediction interval of coverage `c` |
//! | `silt_forecast_upper(v[r], h, c)`          | upper bound of that interval                                 |
//! | `silt_time_to_threshold(v[r], x)`          | seconds until the forecast crosses `x`; `+Inf` if not within `r` |
//! | `silt_anomaly_score(v[r])`                 | the last sample's deviation in band half-widths (> 1: anomalous) |
//! | `silt_anomaly_lower(v[r])`, `silt_anomaly_upper(v[r])` | the band at the last sample                     |
//!
//! Each fits [`crate::forecast::Model`] to the window. So that a range
//! query does not refit at every step, the model is fit on the part of
//! the window between two *refit points* (multiples of `r / 168` rounded
//! up to a nice step, one hour for `[7d]`): samples in `[a, b)` with `a`
//! the first refit point after the window start and `b` the last at or
//! before its end. Later samples in `[b, end]` only update the level. The
//! result therefore depends only on the window and the data, the same in
//! instant and range queries, and consecutive steps of a range query
//! reuse one fit per series (memoized per thread, keyed by the call, the
//! series and the refit points).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use engine::Sample;

use super::FunctionError;
use super::annotations::Annotation;
use super::range::Window;
use crate::forecast::{FitOptions, ForecastError, Model, grid};

/// Coverage used where a function needs an interval but takes none.
const DEFAULT_COVERAGE: f64 = 0.8;
/// Refit points per window.
const REFITS_PER_WINDOW: i64 = 168;
/// Fitted models kept per thread.
const CACHE_SIZE: usize = 4;

/// One of the forecasting functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForecastFunction {
    Forecast,
    ForecastLower,
    ForecastUpper,
    TimeToThreshold,
    AnomalyScore,
    AnomalyLower,
    AnomalyUpper,
}

impl ForecastFunction {
    pub fn name(self) -> &'static str {
        use ForecastFunction::*;
        match self {
            Forecast => "silt_forecast",
            ForecastLower => "silt_forecast_lower",
            ForecastUpper => "silt_forecast_upper",
            TimeToThreshold => "silt_time_to_threshold",
            AnomalyScore => "silt_anomaly_score",
            AnomalyLower => "silt_anomaly_lower",
            AnomalyUpper => "silt_anomaly_upper",
        }
    }
}

/// Identifies one series of one evaluated call expression, so that steps
/// of a range query can share a fit. Get `call` from [`next_call_id`] once
/// per evaluation of the call; `series` is the series' index in its
/// argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef {
    pub call: u64,
    pub series: usize,
}

static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A process-wide unique id for one evaluation of a call expression.
pub fn next_call_id() -> u64 {
    NEXT_CALL.fetch_add(1, Ordering::Relaxed)
}

type Key = (SeriesRef, i64, i64);

thread_local! {
    static MODELS: RefCell<Vec<(Key, Result<Model, ForecastError>)>> = const { RefCell::new(Vec::new()) };
}

/// Evaluates `f` for one series at one step. `params` are the scalar
/// arguments after the range: `[h]`, `[h, c]`, `[x]` or none. A series too
/// short to fit gives `Ok(None)` and reports an info through `note`.
pub fn eval(
    f: ForecastFunction,
    w: &Window,
    eval_ms: i64,
    params: &[f64],
    series: Option<SeriesRef>,
    note: &mut dyn FnMut(Annotation),
) -> Result<Option<f64>, FunctionError> {
    use ForecastFunction::*;
    let param = |i: usize| params.get(i).copied().unwrap_or(f64::NAN);
    let function = f.name();
    let horizon = match f {
        Forecast | ForecastLower | ForecastUpper => {
            let h = param(0);
            if !(h > 0.0 && h.is_finite()) {
                return Err(FunctionError::InvalidHorizon { function, value: h });
            }
            h
        }
        _ => 0.0,
    };
    let coverage = match f {
        ForecastLower | ForecastUpper => {
            let c = param(1);
            if !(c > 0.0 && c < 1.0) {
                return Err(FunctionError::InvalidCoverage { function, value: c });
            }
            c
        }
        _ => DEFAULT_COVERAGE,
    };
    if w.samples.is_empty() || w.end_ms <= w.start_ms {
        return Ok(None);
    }
    let (a, b) = refit_points(w);
    let lo = w.samples.partition_point(|s| s.t < a);
    let hi = w.samples.partition_point(|s| s.t < b);
    let (fit, tail) = (&w.samples[lo..hi.max(lo)], &w.samples[hi.max(lo)..]);
    with_model(series.map(|s| (s, a, b)), fit, |model| {
        let model = match model {
            Ok(m) => m,
            Err(_) => {
                note(Annotation::ForecastTooShort { function });
                return Ok(None);
            }
        };
        let value = match f {
            Forecast | ForecastLower | ForecastUpper => {
                let target = eval_ms.saturating_add((horizon * 1000.0).round() as i64);
                let fc = model.forecast(tail, target, coverage).map_err(|_| {
                    FunctionError::InvalidCoverage {
                        function,
                        value: coverage,
                    }
                })?;
                match f {
                    Forecast => fc.mean,
                    ForecastLower => fc.lower,
                    _ => fc.upper,
                }
            }
            TimeToThreshold => {
                let x = param(0);
                if x.is_nan() {
                    return Ok(None);
                }
                model.time_to_threshold(tail, eval_ms, x, w.end_ms - w.start_ms)
            }
            AnomalyScore | AnomalyLower | AnomalyUpper => {
                let Some(&point) = w.samples.iter().rev().find(|s| !engine::is_stale_nan(s.v))
                else {
                    return Ok(None);
                };
                let band = model.anomaly(tail, point);
                match f {
                    AnomalyScore => band.score,
                    AnomalyLower => band.lower,
                    _ => band.upper,
                }
            }
        };
        Ok(Some(value))
    })
}

/// The refit points `(a, b)` of a window: the fit uses samples in `[a, b)`.
fn refit_points(w: &Window) -> (i64, i64) {
    let range = w.end_ms - w.start_ms;
    let r = grid::nice_step(range / REFITS_PER_WINDOW);
    let a = w.start_ms.div_euclid(r).saturating_add(1).saturating_mul(r);
    let b = w.end_ms.div_euclid(r).saturating_mul(r);
    (a, b)
}

/// Runs `f` on the model for `key` (fitting it to `fit` unless this thread
/// holds it already); without a key the model is fitted and dropped.
fn with_model<T>(
    key: Option<Key>,
    fit: &[Sample],
    f: impl FnOnce(Result<&mut Model, &mut ForecastError>) -> T,
) -> T {
    let opts = FitOptions::default();
    let Some(key) = key else {
        let mut m = Model::fit(fit, &opts);
        return f(m.as_mut());
    };
    MODELS.with(|cell| {
        let mut cache = cell.borrow_mut();
        let pos = match cache.iter().position(|(k, _)| *k == key) {
            Some(p) => p,
            None => {
                if cache.len() >= CACHE_SIZE {
                    let _evicted = cache.remove(0);
                }
                cache.push((key, Model::fit(fit, &opts)));
                cache.len() - 1
            }
        };
        f(cache[pos].1.as_mut())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    fn disk(days: i64) -> Vec<Sample> {
        (0..days * DAY / MIN)
            .map(|i| Sample {
                t: i * MIN,
                v: 1000.0 - i as f64 * 0.01,
            })
            .collect()
    }

    fn run(
        f: ForecastFunction,
        s: &[Sample],
        end: i64,
        range: i64,
        params: &[f64],
        series: Option<SeriesRef>,
    ) -> (Result<Option<f64>, FunctionError>, Vec<Annotation>) {
        let lo = s.partition_point(|x| x.t <= end - range);
        let hi = s.partition_point(|x| x.t <= end);
        let w = Window::new(&s[lo..hi], end - range, end);
        let mut notes = Vec::new();
        let r = eval(f, &w, end, params, series, &mut |a| notes.push(a));
        (r, notes)
    }

    #[test]
    fn linear_disk_forecast_and_time_to_empty() {
        let s = disk(3);
        let end = 3 * DAY - MIN;
        let (v, _) = run(ForecastFunction::Forecast, &s, end, DAY, &[3600.0], None);
        let want = 1000.0 - (end + 3_600_000) as f64 / MIN as f64 * 0.01;
        assert!((v.unwrap().unwrap() - want).abs() < 0.05);
        let (ttt, _) = run(
            ForecastFunction::TimeToThreshold,
            &s,
            end,
            DAY,
            &[950.0],
            None,
        );
        let want = (1000.0 - 950.0) / 0.01 * 60.0 - end as f64 / 1000.0;
        let got = ttt.unwrap().unwrap();
        assert!((got - want).abs() < 600.0, "{got} vs {want}");
        let (lo, _) = run(
            ForecastFunction::ForecastLower,
            &s,
            end,
            DAY,
            &[3600.0, 0.8],
            None,
        );
        let (hi, _) = run(
            ForecastFunction::ForecastUpper,
            &s,
            end,
            DAY,
            &[3600.0, 0.8],
            None,
        );
        assert!(lo.unwrap().unwrap() <= hi.unwrap().unwrap());
    }

    #[test]
    fn bad_parameters_fail_with_clear_messages() {
        let s = disk(1);
        let end = DAY - MIN;
        for h in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let (r, _) = run(ForecastFunction::Forecast, &s, end, DAY, &[h], None);
            assert!(r.unwrap_err().to_string().starts_with(
                "invalid horizon for silt_forecast(): must be a positive number of seconds"
            ),);
        }
        let (r, _) = run(
            ForecastFunction::ForecastUpper,
            &s,
            end,
            DAY,
            &[60.0, 1.0],
            None,
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "invalid coverage for silt_forecast_upper(): must lie strictly between 0 and 1, got 1"
        );
    }

    #[test]
    fn short_series_give_no_output_and_an_info() {
        let s = disk(1);
        let (r, notes) = run(
            ForecastFunction::AnomalyScore,
            &s[..5],
            5 * MIN,
            DAY,
            &[],
            None,
        );
        assert_eq!(r.unwrap(), None);
        assert_eq!(
            notes,
            vec![Annotation::ForecastTooShort {
                function: "silt_anomaly_score"
            }]
        );
    }

    #[test]
    fn cached_fits_match_fresh_ones() {
        let s: Vec<Sample> = (0..4 * DAY / MIN)
            .map(|i| Sample {
                t: i * MIN,
                v: ((i % 1440) as f64 / 229.0).sin() * 10.0 + (i % 7) as f64,
            })
            .collect();
        let key = SeriesRef {
            call: next_call_id(),
            series: 0,
        };
        for step in 0..30 {
            let end = 3 * DAY + step * 7 * MIN;
            for f in [
                ForecastFunction::Forecast,
                ForecastFunction::AnomalyUpper,
                ForecastFunction::TimeToThreshold,
            ] {
                let params = [7200.0];
                let (cached, _) = run(f, &s, end, 2 * DAY, &params, Some(key));
                let (fresh, _) = run(f, &s, end, 2 * DAY, &params, None);
                assert_eq!(
                    cached.unwrap().map(f64::to_bits),
                    fresh.unwrap().map(f64::to_bits)
                );
            }
        }
    }

    #[test]
    fn parser_checks_arity_and_types() {
        use crate::promql::parse;
        for ok in [
            "silt_forecast(x[7d], 3600)",
            "silt_forecast_lower(x[7d], 86400, 0.8)",
            "silt_forecast_upper(rate(x[5m])[7d:5m], 3600, 0.95)",
            "silt_time_to_threshold(x[7d], 0)",
            "silt_anomaly_score(x[7d]) > 1",
            "silt_anomaly_lower(x[7d] offset 1h)",
            "silt_anomaly_upper(x[7d])",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            (
                "silt_forecast(x[7d])",
                "expected 2 argument(s) in call to \"silt_forecast\", got 1",
            ),
            (
                "silt_forecast(x, 3600)",
                "expected type range vector in call to function \"silt_forecast\", got instant vector",
            ),
            ("silt_forecast_lower(x[1d], 60)", "expected 3 argument(s)"),
            (
                "silt_anomaly_score(x[1d], 3)",
                "expected 1 argument(s) in call to \"silt_anomaly_score\", got 2",
            ),
            (
                "silt_time_to_threshold(x[1d], \"a\")",
                "expected type scalar",
            ),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn refit_points_are_aligned_inside_the_window() {
        let w = Window::new(&[], 7 * DAY + 1234, 14 * DAY + 1234);
        let (a, b) = refit_points(&w);
        assert_eq!((a, b), (7 * DAY + 3_600_000, 14 * DAY));
    }
}
