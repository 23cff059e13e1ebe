//! Baseline forecasters for the backtest: naive, seasonal naive (any
//! period), plain additive Holt-Winters with a daily season (parameters
//! by grid search on one-step squared error), and `predict_linear` (the
//! query layer's own least squares). Intervals for the first three come
//! from the quantiles of their in-sample errors at the same horizon, the
//! method Silt's model uses, so coverage is compared like for like.

use engine::Sample;
use query::eval::functions::range::Window;
use query::eval::functions::smoothing;
use query::forecast::robust::quantile_sorted;

/// A point forecast and its interval (`lower`/`upper` NaN when none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
}

fn interval(mean: f64, errors: &mut [f64], coverage: f64) -> Point {
    errors.sort_unstable_by(f64::total_cmp);
    let lo = quantile_sorted(errors, (1.0 - coverage) / 2.0);
    let hi = quantile_sorted(errors, (1.0 + coverage) / 2.0);
    Point {
        mean,
        lower: mean + lo,
        upper: mean + hi,
    }
}

/// Forecast `h` samples ahead of the end of a regular series `y` by its
/// value `lag` samples before the target (`lag >= h`): lag = h is the
/// naive forecast, lag = the smallest multiple of a period ≥ h is the
/// seasonal naive one.
pub fn lagged(y: &[f64], h: usize, lag: usize, coverage: f64) -> Option<Point> {
    let n = y.len();
    if lag < h || lag > n || n < lag + 2 {
        return None;
    }
    let mean = y[n + h - 1 - lag];
    let mut errors: Vec<f64> = (lag..n).map(|t| y[t] - y[t - lag]).collect();
    Some(interval(mean, &mut errors, coverage))
}

/// The seasonal-naive lag for horizon `h` and period `p` (in samples).
pub fn seasonal_lag(h: usize, p: usize) -> usize {
    h.div_ceil(p).max(1) * p
}

/// Plain additive Holt-Winters with period `m` (samples).
#[derive(Debug, Clone, Copy)]
pub struct HoltWinters {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

const HW_ALPHAS: [f64; 5] = [0.05, 0.1, 0.2, 0.4, 0.7];
const HW_BETAS: [f64; 3] = [0.0, 0.01, 0.05];
const HW_GAMMAS: [f64; 3] = [0.05, 0.1, 0.3];

impl HoltWinters {
    /// Runs the recursions over `y`, calling `visit(t, level, trend,
    /// season)` after each update from `t = m` on; returns the one-step
    /// squared error sum.
    fn run(&self, y: &[f64], m: usize, mut visit: impl FnMut(usize, f64, f64, &[f64])) -> f64 {
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let mut level = mean(&y[..m]);
        let mut trend = if y.len() >= 2 * m {
            (mean(&y[m..2 * m]) - level) / m as f64
        } else {
            0.0
        };
        let mut season: Vec<f64> = y[..m].iter().map(|v| v - level).collect();
        let mut sse = 0.0;
        for (t, &v) in y.iter().enumerate().skip(m) {
            let s = season[t % m];
            let e = v - (level + trend + s);
            sse += e * e;
            let new_level = self.alpha * (v - s) + (1.0 - self.alpha) * (level + trend);
            trend = self.beta * (new_level - level) + (1.0 - self.beta) * trend;
            level = new_level;
            season[t % m] = self.gamma * (v - level) + (1.0 - self.gamma) * s;
            visit(t, level, trend, &season);
        }
        sse
    }

    /// Parameters minimising the one-step squared error on `y`.
    pub fn fit(y: &[f64], m: usize) -> Option<HoltWinters> {
        if m == 0 || y.len() < 2 * m + 2 {
            return None;
        }
        let mut best: Option<(f64, HoltWinters)> = None;
        for alpha in HW_ALPHAS {
            for beta in HW_BETAS {
                for gamma in HW_GAMMAS {
                    let hw = HoltWinters { alpha, beta, gamma };
                    let sse = hw.run(y, m, |_, _, _, _| {});
                    if sse.is_finite() && best.is_none_or(|(b, _)| sse < b) {
                        best = Some((sse, hw));
                    }
                }
            }
        }
        best.map(|(_, hw)| hw)
    }

    /// The forecast `h` samples after the end of `y`, with the interval
    /// from in-sample `h`-step errors.
    pub fn forecast(&self, y: &[f64], m: usize, h: usize, coverage: f64) -> Point {
        let n = y.len();
        let mut errors = Vec::with_capacity(n);
        let mut last = (0.0, 0.0, 0.0);
        self.run(y, m, |t, l, b, s| {
            let f = l + h as f64 * b + s[(t + h) % m];
            if let Some(&a) = y.get(t + h) {
                errors.push(a - f);
            }
            if t == n - 1 {
                last = (l, b, s[(t + h) % m]);
            }
        });
        let mean = last.0 + h as f64 * last.1 + last.2;
        interval(mean, &mut errors, coverage)
    }
}

/// `predict_linear(v[window], h)` evaluated at `cutoff` over `samples`
/// (all at or before `cutoff`).
pub fn predict_linear(
    samples: &[Sample],
    cutoff: i64,
    window_ms: i64,
    h_seconds: f64,
) -> Option<f64> {
    let lo = samples.partition_point(|s| s.t <= cutoff - window_ms);
    let w = Window::new(&samples[lo..], cutoff - window_ms, cutoff);
    smoothing::predict_linear(&w, cutoff, h_seconds)
}

/// Seconds until the `predict_linear` line over `window_ms` reaches
/// `threshold` (from below), `+Inf` when it does not rise; 0 when it is
/// already above.
pub fn linear_time_to_threshold(
    samples: &[Sample],
    cutoff: i64,
    window_ms: i64,
    threshold: f64,
) -> f64 {
    let lo = samples.partition_point(|s| s.t <= cutoff - window_ms);
    let w = &samples[lo..];
    if w.len() < 2 {
        return f64::INFINITY;
    }
    let (slope, at_cutoff) = smoothing::linear_regression(w, cutoff);
    if at_cutoff >= threshold {
        return 0.0;
    }
    if slope > 0.0 {
        (threshold - at_cutoff) / slope
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagged_forecasts() {
        let y: Vec<f64> = (0..20).map(|i| (i % 5) as f64).collect();
        // Naive: the last value.
        assert_eq!(lagged(&y, 1, 1, 0.8).unwrap().mean, 4.0);
        // Seasonal naive with period 5 repeats the cycle exactly.
        let p = lagged(&y, 3, seasonal_lag(3, 5), 0.8).unwrap();
        assert_eq!((p.mean, p.lower, p.upper), (2.0, 2.0, 2.0));
        assert!(lagged(&y, 30, 30, 0.8).is_none());
    }

    #[test]
    fn holt_winters_follows_a_seasonal_trend() {
        let m = 12;
        let y: Vec<f64> = (0..240)
            .map(|i| {
                0.5 * i as f64
                    + [
                        0.0, 3.0, 5.0, 3.0, 0.0, -3.0, -5.0, -3.0, 0.0, 1.0, 0.0, -1.0,
                    ][i % m]
            })
            .collect();
        let hw = HoltWinters::fit(&y, m).unwrap();
        let p = hw.forecast(&y, m, 5, 0.8);
        let want = 0.5 * 244.0
            + [
                0.0, 3.0, 5.0, 3.0, 0.0, -3.0, -5.0, -3.0, 0.0, 1.0, 0.0, -1.0,
            ][244 % m];
        assert!((p.mean - want).abs() < 0.5, "{} vs {want}", p.mean);
    }

    #[test]
    fn linear_time_to_threshold_of_a_line() {
        let s: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 60_000,
                v: i as f64,
            })
            .collect();
        let cutoff = 99 * 60_000;
        let ttt = linear_time_to_threshold(&s, cutoff, 3_600_000, 159.0);
        assert!((ttt - 3600.0).abs() < 1e-6, "{ttt}");
        assert_eq!(linear_time_to_threshold(&s, cutoff, 3_600_000, 50.0), 0.0);
        let p = predict_linear(&s, cutoff, 3_600_000, 60.0).unwrap();
        assert!((p - 100.0).abs() < 1e-9);
    }
}
