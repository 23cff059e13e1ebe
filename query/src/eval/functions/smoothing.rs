//! Trend functions over a window: `deriv` and `predict_linear` (least
//! squares with Kahan-compensated sums) and `double_exponential_smoothing`
//! (Holt's linear method). Each needs at least two samples.

use engine::Sample;
use engine::summary::{kahan_step, two_sum_exact, two_sum_step};

use super::FunctionError;
use super::range::Window;

/// Least-squares fit of the samples with x in seconds relative to
/// `intercept_ms`: returns `(slope per second, value at intercept_ms)`.
/// A constant series has slope 0 (or NaN for a constant ±Inf).
pub fn linear_regression(samples: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let mut fit = LineFit::new(Some(intercept_ms));
    fit.extend(samples);
    fit.result()
}

/// Prometheus's least-squares sums (`linearRegression`), fed a window's
/// samples in time order a slice at a time: the same operations in the
/// same order as over the whole window at once, so the same result bit
/// for bit. An instant query folds a stored series' samples into it where
/// they lie ([`crate::eval::rollup::WindowFold`]).
#[derive(Debug, Clone, Copy)]
pub struct LineFit {
    /// Where x is 0, in ms: `None` until the first sample for a fit from
    /// the first sample's time (`deriv`).
    origin: Option<i64>,
    n: usize,
    init_y: f64,
    const_y: bool,
    /// Σx, Σy, Σxy and Σx², Kahan-compensated as Prometheus's are
    /// ([`kahan_step`]), and their compensations.
    sums: [f64; 4],
    comps: [f64; 4],
}

impl LineFit {
    /// A fit with x in seconds from `origin_ms`, or from the first
    /// sample's time when `None`.
    pub fn new(origin_ms: Option<i64>) -> LineFit {
        LineFit {
            origin: origin_ms,
            n: 0,
            init_y: 0.0,
            const_y: true,
            sums: [0.0; 4],
            comps: [0.0; 4],
        }
    }

    /// Adds the next samples (later than those added so far).
    pub fn extend(&mut self, samples: &[Sample]) {
        let Some(first) = samples.first() else {
            return;
        };
        let origin = *self.origin.get_or_insert(first.t);
        if self.n == 0 {
            // The first value is the one the others are compared with
            // (a NaN first value is not "different" from itself).
            self.init_y = first.v;
        }
        // The window's first sample is not compared with itself (a NaN
        // would differ). Without stopping early, which vectorises.
        let rest = if self.n == 0 { &samples[1..] } else { samples };
        let init_y = self.init_y;
        self.const_y &= rest.iter().fold(true, |same, s| same & (s.v == init_y));
        self.n += samples.len();
        let terms = |s: &Sample| {
            let x = (s.t - origin) as f64 / 1e3;
            [x, s.v, x * s.v, x * x]
        };
        // The four sums in registers, each addition's rounding error from
        // TwoSum: exact if every sum is still so at the end
        // ([`two_sum_exact`]), else the samples again as Prometheus adds
        // them; only that way once a sum is not.
        let exact =
            |sums: &[f64; 4], comps: &[f64; 4]| (0..4).all(|k| two_sum_exact(sums[k], comps[k]));
        if exact(&self.sums, &self.comps) {
            let (mut sums, mut comps) = (self.sums, self.comps);
            for s in samples {
                for (k, v) in terms(s).into_iter().enumerate() {
                    two_sum_step(v, &mut sums[k], &mut comps[k]);
                }
            }
            if exact(&sums, &comps) {
                (self.sums, self.comps) = (sums, comps);
                return;
            }
        }
        // The overflow flag is not needed: an overflowed sum keeps no
        // compensation, and `result` adds it unconditionally.
        let mut overflow = false;
        for s in samples {
            for (k, v) in terms(s).into_iter().enumerate() {
                kahan_step(v, &mut self.sums[k], &mut self.comps[k], &mut overflow);
            }
        }
    }

    /// `(slope per second, value at the origin)`; NaNs without samples.
    pub fn result(&self) -> (f64, f64) {
        if self.n == 0 {
            return (f64::NAN, f64::NAN);
        }
        if self.const_y {
            if self.init_y.is_infinite() {
                return (f64::NAN, f64::NAN);
            }
            return (0.0, self.init_y);
        }
        let n = self.n as f64;
        // Prometheus adds the compensation unconditionally here (it is 0
        // for a sum that overflowed).
        let [sum_x, sum_y, sum_xy, sum_x2] = std::array::from_fn(|k| self.sums[k] + self.comps[k]);
        let cov_xy = sum_xy - sum_x * sum_y / n;
        let var_x = sum_x2 - sum_x * sum_x / n;
        let slope = cov_xy / var_x;
        let intercept = sum_y / n - slope * sum_x / n;
        (slope, intercept)
    }
}

/// `deriv(v[r])`: per-second slope of the least-squares line.
pub fn deriv(w: &Window) -> Option<f64> {
    if w.samples.len() < 2 {
        return None;
    }
    // x relative to the first sample keeps the sums small (Prometheus
    // issue 2674).
    Some(linear_regression(w.samples, w.samples[0].t).0)
}

/// `predict_linear(v[r], t)`: the fitted line's value `t` seconds after
/// the evaluation time `eval_ms` (the step time, not the window end, which
/// differs under `offset` and `@`).
pub fn predict_linear(w: &Window, eval_ms: i64, t_seconds: f64) -> Option<f64> {
    if w.samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(w.samples, eval_ms);
    Some(slope * t_seconds + intercept)
}

/// Checks `double_exponential_smoothing`'s factors; both must lie strictly
/// between 0 and 1. Prometheus fails the query otherwise.
pub fn check_smoothing_factors(sf: f64, tf: f64) -> Result<(), FunctionError> {
    if !(sf > 0.0 && sf < 1.0) {
        return Err(FunctionError::InvalidSmoothingFactor(sf));
    }
    if !(tf > 0.0 && tf < 1.0) {
        return Err(FunctionError::InvalidTrendFactor(tf));
    }
    Ok(())
}

/// `double_exponential_smoothing(v[r], sf, tf)`: the smoothed value at the
/// last sample. Validate the factors first with
/// [`check_smoothing_factors`].
pub fn double_exponential_smoothing(w: &Window, sf: f64, tf: f64) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = s[0].v;
    let mut b = s[1].v - s[0].v;
    for (i, sample) in s.iter().enumerate().skip(1) {
        let x = sf * sample.v;
        // The trend: the initial difference first, then blended.
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::testutil::{Series, assert_close};

    // functions.test "Tests for deriv() and predict_linear()" (load 5m).
    #[test]
    fn deriv_script_cases() {
        let total = Series::load(300_000, "0+80x10");
        assert_close(
            total.eval(3_000_000, 3_000_000, deriv),
            Some(0.26666666666666666),
        );
        let middle = Series::load(300_000, "0+10x4 0+10x5");
        assert_close(
            middle.eval(3_000_000, 6_000_000, deriv),
            Some(0.010606060606060607),
        );
        let inf = Series::load(300_000, "-Inf 0+80x10 Inf");
        assert_close(inf.eval(6_000_000, 6_000_000, deriv), Some(f64::NAN));
        assert_eq!(Series::load(300_000, "1").eval(0, 60_000, deriv), None);
    }

    #[test]
    fn predict_linear_script_cases() {
        let middle = Series::load(300_000, "0+10x4 0+10x5");
        let at = 3_000_000;
        let p = |eval_ms, end_ms, range_ms, t| {
            let w = middle.window(end_ms, range_ms);
            predict_linear(&w, eval_ms, t)
        };
        assert_close(p(at, at, 3_000_000, 3600.0), Some(70.0));
        // `[55m] @ 3000`: the window ends at 3000s whatever the eval time.
        assert_close(p(at, at, 3_300_000, 3600.0), Some(76.81818181818181));
        assert_close(p(600_000, at, 3_300_000, 3600.0), Some(51.36363636363637));
        assert_close(p(4_200_000, at, 3_300_000, 3600.0), Some(89.54545454545455));
        let inf = Series::load(300_000, "-Inf 0+80x10 Inf");
        let w = inf.window(6_000_000, 6_000_000);
        assert_close(predict_linear(&w, 6_000_000, 6000.0), Some(f64::NAN));
    }

    #[test]
    fn regression_of_constant_series() {
        let c = Series::load(1_000, "5 5 5");
        assert_eq!(linear_regression(&c.samples, 0), (0.0, 5.0));
        let i = Series::load(1_000, "Inf Inf");
        let (slope, intercept) = linear_regression(&i.samples, 0);
        assert!(slope.is_nan() && intercept.is_nan());
    }

    // functions.test "Tests for double_exponential_smoothing" (load 10s).
    #[test]
    fn smoothing_script_cases() {
        let at = 8_000_000;
        for (values, want) in [
            ("0+10x1000 100+30x1000", 8000.0),
            ("0+20x1000 200+30x1000", 16000.0),
            ("0+30x1000 300+80x1000", 24000.0),
            ("0+40x2000", 32000.0),
            ("8000-10x1000", 0.0),
            ("0-20x1000", -16000.0),
            ("0+30x1000 300-80x1000", 24000.0),
            ("0-40x1000 0+40x1000", -32000.0),
        ] {
            let series = Series::load(10_000, values);
            let got = series.eval(at, 60_000, |w| double_exponential_smoothing(w, 0.01, 0.1));
            assert_close(got, Some(want));
        }
        let mixed = [
            ("0+10x1000 100+30x1000", 30100.0),
            ("0+20x1000 200+30x1000", 30200.0),
            ("0+30x1000 300+80x1000", 80300.0),
            ("0+40x2000", 80000.0),
        ];
        for (values, want) in mixed {
            let series = Series::load(10_000, values);
            let got = series.eval(20_010_000, 60_000, |w| {
                double_exponential_smoothing(w, 0.01, 0.1)
            });
            assert_close(got, Some(want));
        }
    }

    #[test]
    fn smoothing_factor_validation() {
        assert!(check_smoothing_factors(0.5, 0.5).is_ok());
        assert_eq!(
            check_smoothing_factors(1.0, 0.5).unwrap_err().to_string(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        );
        assert_eq!(
            check_smoothing_factors(0.5, f64::NAN)
                .unwrap_err()
                .to_string(),
            "invalid trend factor. Expected: 0 < tf < 1, got: NaN"
        );
    }

    /// Prometheus's `linearRegression` written out as one loop over the
    /// window, as its source reads: the reference [`LineFit`] must match.
    fn linear_regression_reference(samples: &[Sample], intercept_ms: i64) -> (f64, f64) {
        // `kahanSumInc` as Prometheus writes it (Fast2Sum on the operands
        // ordered by magnitude, the compensation zeroed on overflow).
        fn inc(inc: f64, sum: f64, mut c: f64) -> (f64, f64) {
            let t = sum + inc;
            if t.is_infinite() {
                c = 0.0;
            } else if sum.abs() >= inc.abs() {
                c += (sum - t) + inc;
            } else {
                c += (inc - t) + sum;
            }
            (t, c)
        }
        let init_y = samples[0].v;
        let mut const_y = true;
        let (mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0);
        let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
        for (i, s) in samples.iter().enumerate() {
            if const_y && i > 0 && s.v != init_y {
                const_y = false;
            }
            let x = (s.t - intercept_ms) as f64 / 1e3;
            (sum_x, c_x) = inc(x, sum_x, c_x);
            (sum_y, c_y) = inc(s.v, sum_y, c_y);
            (sum_xy, c_xy) = inc(x * s.v, sum_xy, c_xy);
            (sum_x2, c_x2) = inc(x * x, sum_x2, c_x2);
        }
        if const_y {
            if init_y.is_infinite() {
                return (f64::NAN, f64::NAN);
            }
            return (0.0, init_y);
        }
        let n = samples.len() as f64;
        let (sum_x, sum_y, sum_xy, sum_x2) =
            (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
        let cov_xy = sum_xy - sum_x * sum_y / n;
        let var_x = sum_x2 - sum_x * sum_x / n;
        let slope = cov_xy / var_x;
        (slope, sum_y / n - slope * sum_x / n)
    }

    #[test]
    fn a_fit_whose_sum_rounds_to_a_tie_at_the_largest_values_is_prometheus() {
        // Σy = 3·2^970 - MAX rounds to a tie, where TwoSum's intermediate
        // difference overflows; Σxy stays finite (x is half a second). The
        // slope overflows, but a NaN compensation would make both NaN.
        let samples = [
            Sample::new(60_000, 3.0 * 2f64.powi(970)),
            Sample::new(60_500, -f64::MAX),
        ];
        let got = linear_regression(&samples, 60_000);
        let want = linear_regression_reference(&samples, 60_000);
        assert!(!got.0.is_nan() && !got.1.is_nan(), "{got:?}");
        assert_eq!(
            (got.0.to_bits(), got.1.to_bits()),
            (want.0.to_bits(), want.1.to_bits())
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn same(a: f64, b: f64) -> bool {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        }

        proptest! {
            /// A fit fed a slice at a time, cut anywhere, is Prometheus's
            /// bit for bit: from the evaluation time and from the first
            /// sample (`deriv`), first values NaN or infinite included.
            #[test]
            fn line_fits_match_prometheus(
                values in prop::collection::vec(prop_oneof![
                    6 => -1e12f64..1e12,
                    2 => (0i64..1000).prop_map(|i| i as f64),
                    1 => Just(5.0),
                    1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0)],
                    // Sums that overflow, or cancel at the largest values,
                    // ties included.
                    1 => prop_oneof![
                        Just(f64::MAX),
                        Just(-f64::MAX),
                        Just(1.7e308),
                        Just(3.0 * 2f64.powi(970)),
                    ],
                ], 1..200),
                jitter in -7_000i64..7_000,
                cuts in prop::collection::vec(0usize..200, 0..5),
                eval in -1_000_000i64..5_000_000,
            ) {
                let samples: Vec<Sample> = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Sample::new(i as i64 * 15_000 + (i as i64 * jitter) % 5_000, v))
                    .collect();
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(samples.len())).collect();
                cuts.sort_unstable();
                for origin in [Some(eval), None] {
                    let mut fit = LineFit::new(origin);
                    let mut from = 0;
                    for &c in cuts.iter().chain([&samples.len()]) {
                        fit.extend(&samples[from..c]);
                        from = c;
                    }
                    let got = fit.result();
                    let want = linear_regression_reference(&samples, origin.unwrap_or(samples[0].t));
                    prop_assert!(
                        same(got.0, want.0) && same(got.1, want.1),
                        "{:?} from {:?}: {:?} vs {:?}", values, origin, got, want
                    );
                }
            }
        }
    }
}
