//! The least-squares line `predict_linear` fits, as a forecaster: the
//! line over the samples, with a normal prediction interval from the
//! residuals (`s * sqrt(1 + 1/n + (x - x̄)² / Sxx)`).

use engine::Sample;

use super::{Forecast, ForecastError, check_coverage};

/// Fewest finite samples a line is fitted to (two give no residuals).
pub const LINEAR_MIN_SAMPLES: usize = 3;

/// A fitted line. Times are seconds after `base_ms` (the first sample), so
/// millisecond timestamps keep their precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearModel {
    base_ms: i64,
    n: f64,
    /// Mean time (seconds after `base_ms`) and mean value.
    x_mean: f64,
    y_mean: f64,
    sxx: f64,
    /// Value units per second.
    slope: f64,
    /// Residual standard deviation (`n - 2` degrees of freedom).
    sigma: f64,
}

impl LinearModel {
    /// Fits the line to the finite samples of `samples` (NaN, ±Inf and
    /// stale markers are ignored).
    pub fn fit(samples: &[Sample]) -> Result<LinearModel, ForecastError> {
        let finite = || samples.iter().filter(|s| s.v.is_finite());
        let have = finite().count();
        let Some(first) = finite().next() else {
            return Err(ForecastError::TooFewSamples {
                have,
                need: LINEAR_MIN_SAMPLES,
            });
        };
        if have < LINEAR_MIN_SAMPLES {
            return Err(ForecastError::TooFewSamples {
                have,
                need: LINEAR_MIN_SAMPLES,
            });
        }
        let base_ms = first.t;
        let x = |s: &Sample| (s.t - base_ms) as f64 / 1000.0;
        let n = have as f64;
        let x_mean = finite().map(x).sum::<f64>() / n;
        let y_mean = finite().map(|s| s.v).sum::<f64>() / n;
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for s in finite() {
            let dx = x(s) - x_mean;
            sxx += dx * dx;
            sxy += dx * (s.v - y_mean);
        }
        if sxx <= 0.0 {
            // Every sample at one time: no line.
            return Err(ForecastError::TooFewSamples {
                have: 1,
                need: LINEAR_MIN_SAMPLES,
            });
        }
        let slope = sxy / sxx;
        let sse: f64 = finite()
            .map(|s| {
                let r = s.v - (y_mean + slope * (x(s) - x_mean));
                r * r
            })
            .sum();
        Ok(LinearModel {
            base_ms,
            n,
            x_mean,
            y_mean,
            sxx,
            slope,
            sigma: (sse / (n - 2.0)).sqrt(),
        })
    }

    /// Value units per second.
    pub fn slope_per_second(&self) -> f64 {
        self.slope
    }

    /// The line at `target_ms` with a central prediction interval of
    /// `coverage` (in (0, 1)).
    pub fn forecast(&self, target_ms: i64, coverage: f64) -> Result<Forecast, ForecastError> {
        check_coverage(coverage)?;
        let dx = (target_ms - self.base_ms) as f64 / 1000.0 - self.x_mean;
        let mean = self.y_mean + self.slope * dx;
        let se = self.sigma * (1.0 + 1.0 / self.n + dx * dx / self.sxx).sqrt();
        let half = normal_quantile(0.5 + coverage / 2.0) * se;
        Ok(Forecast {
            mean,
            lower: mean - half,
            upper: mean + half,
        })
    }
}

/// The standard normal quantile function (Acklam's rational
/// approximation, relative error below 1.2e-9), for `p` in (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p.is_nan() || p <= 0.0 {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::NAN
        };
    }
    if p >= 1.0 {
        return if p == 1.0 { f64::INFINITY } else { f64::NAN };
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles() {
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.281_551_565_5),
            (0.975, 1.959_963_985),
            (0.01, -2.326_347_874),
            (0.999, 3.090_232_306),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
        }
        assert!(normal_quantile(1.5).is_nan());
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn an_exact_line_has_no_spread() {
        let s: Vec<Sample> = (0..10)
            .map(|i| Sample::new(1_700_000_000_000 + i * 60_000, 100.0 - i as f64))
            .collect();
        let m = LinearModel::fit(&s).unwrap();
        assert!((m.slope_per_second() + 1.0 / 60.0).abs() < 1e-12);
        let f = m.forecast(1_700_000_000_000 + 100 * 60_000, 0.8).unwrap();
        assert!((f.mean - 0.0).abs() < 1e-9, "{f:?}");
        assert!((f.upper - f.lower).abs() < 1e-9);
    }

    #[test]
    fn noise_widens_the_interval_away_from_the_data() {
        let s: Vec<Sample> = (0..100)
            .map(|i| {
                Sample::new(
                    i * 1000,
                    2.0 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 },
                )
            })
            .collect();
        let m = LinearModel::fit(&s).unwrap();
        let near = m.forecast(100_000, 0.8).unwrap();
        let far = m.forecast(1_000_000, 0.8).unwrap();
        assert!((near.mean - 200.0).abs() < 0.5, "{near:?}");
        assert!(near.upper - near.lower > 2.0 * 1.28 * 0.9, "{near:?}");
        assert!(far.upper - far.lower > near.upper - near.lower);
        assert!(m.forecast(0, 1.0).is_err());
    }

    #[test]
    fn too_few_samples() {
        let s = [
            Sample::new(0, 1.0),
            Sample::new(1, f64::NAN),
            Sample::new(2, 3.0),
        ];
        assert_eq!(
            LinearModel::fit(&s),
            Err(ForecastError::TooFewSamples { have: 2, need: 3 })
        );
        assert!(LinearModel::fit(&[]).is_err());
    }
}
