//! One entry point for every range-vector function: [`RangeFunction`]
//! maps a PromQL name to its implementation and checks which
//! `anchored`/`smoothed` modes it accepts, so the evaluator wires all of
//! them with one `match`-free call per series and step.

use crate::promql::ast::RangeMode;

use super::FunctionError;
use super::annotations::Annotation;
use super::extended;
use super::forecast::{self, ForecastFunction, SeriesRef};
use super::range::{self, Window};
use super::smoothing;

/// A function whose main argument is a range vector and whose result is one
/// float per series (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeFunction {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Resets,
    Changes,
    Deriv,
    PredictLinear,
    DoubleExponentialSmoothing,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
    FirstOverTime,
    PresentOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    MadOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    /// One of Silt's `silt_*` forecasting functions.
    Silt(ForecastFunction),
}

const ALL: [RangeFunction; 33] = {
    use RangeFunction::*;
    [
        Rate,
        Increase,
        Delta,
        Irate,
        Idelta,
        Resets,
        Changes,
        Deriv,
        PredictLinear,
        DoubleExponentialSmoothing,
        AvgOverTime,
        SumOverTime,
        CountOverTime,
        MinOverTime,
        MaxOverTime,
        LastOverTime,
        FirstOverTime,
        PresentOverTime,
        StddevOverTime,
        StdvarOverTime,
        QuantileOverTime,
        MadOverTime,
        TsOfMinOverTime,
        TsOfMaxOverTime,
        TsOfFirstOverTime,
        TsOfLastOverTime,
        Silt(ForecastFunction::Forecast),
        Silt(ForecastFunction::ForecastLower),
        Silt(ForecastFunction::ForecastUpper),
        Silt(ForecastFunction::TimeToThreshold),
        Silt(ForecastFunction::AnomalyScore),
        Silt(ForecastFunction::AnomalyLower),
        Silt(ForecastFunction::AnomalyUpper),
    ]
};

impl RangeFunction {
    /// The function for a PromQL name (`absent_over_time` is not here: the
    /// evaluator derives it from which steps have samples, with
    /// [`super::labels::absent_labels`]).
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        use RangeFunction::*;
        match self {
            Rate => "rate",
            Increase => "increase",
            Delta => "delta",
            Irate => "irate",
            Idelta => "idelta",
            Resets => "resets",
            Changes => "changes",
            Deriv => "deriv",
            PredictLinear => "predict_linear",
            DoubleExponentialSmoothing => "double_exponential_smoothing",
            AvgOverTime => "avg_over_time",
            SumOverTime => "sum_over_time",
            CountOverTime => "count_over_time",
            MinOverTime => "min_over_time",
            MaxOverTime => "max_over_time",
            LastOverTime => "last_over_time",
            FirstOverTime => "first_over_time",
            PresentOverTime => "present_over_time",
            StddevOverTime => "stddev_over_time",
            StdvarOverTime => "stdvar_over_time",
            QuantileOverTime => "quantile_over_time",
            MadOverTime => "mad_over_time",
            TsOfMinOverTime => "ts_of_min_over_time",
            TsOfMaxOverTime => "ts_of_max_over_time",
            TsOfFirstOverTime => "ts_of_first_over_time",
            TsOfLastOverTime => "ts_of_last_over_time",
            Silt(f) => f.name(),
        }
    }

    /// Checks that the range argument's mode is allowed for this function
    /// (Prometheus's `AnchoredSafeFunctions` / `SmoothedSafeFunctions`).
    pub fn check_mode(self, mode: RangeMode) -> Result<(), FunctionError> {
        use RangeFunction::*;
        let ok = match mode {
            RangeMode::Normal => true,
            RangeMode::Anchored => matches!(self, Rate | Increase | Delta | Resets | Changes),
            RangeMode::Smoothed => matches!(self, Rate | Increase | Delta),
        };
        if ok {
            Ok(())
        } else {
            Err(FunctionError::ModeNotSupported {
                mode,
                function: self.name(),
            })
        }
    }

    /// Evaluates the function for one series at one step.
    ///
    /// * `w`: the series' samples and window bounds; for `anchored` and
    ///   `smoothed` modes the samples must extend beyond the window as
    ///   described in [`super::extended`].
    /// * `eval_ms`: the step's evaluation time (`predict_linear` measures
    ///   its horizon from it).
    /// * `params`: the scalar arguments in call order, without the range
    ///   argument: `[t]` for `predict_linear`, `[q]` for
    ///   `quantile_over_time`, `[sf, tf]` for
    ///   `double_exponential_smoothing`; empty for the others.
    /// * `scratch`: a buffer reused across calls (quantiles sort a copy).
    ///
    /// `Ok(None)`: no output sample for this series at this step. Call
    /// [`RangeFunction::check_mode`] once per call expression first.
    pub fn eval(
        self,
        w: &Window,
        mode: RangeMode,
        eval_ms: i64,
        params: &[f64],
        scratch: &mut Vec<f64>,
    ) -> Result<Option<f64>, FunctionError> {
        self.eval_with(w, mode, eval_ms, params, scratch, None, &mut |_| {})
    }

    /// [`RangeFunction::eval`] with the series' identity (lets the
    /// `silt_*` functions reuse a fit across the steps of a range query;
    /// `None`: no reuse) and a sink for the annotations a function reports
    /// per series (`silt_*` on a series too short to fit).
    #[allow(clippy::too_many_arguments)] // reason: one call site in the evaluator; a struct would only rename them
    pub fn eval_with(
        self,
        w: &Window,
        mode: RangeMode,
        eval_ms: i64,
        params: &[f64],
        scratch: &mut Vec<f64>,
        series: Option<SeriesRef>,
        note: &mut dyn FnMut(Annotation),
    ) -> Result<Option<f64>, FunctionError> {
        use RangeFunction::*;
        let param = |i: usize| params.get(i).copied();
        let value = match (self, mode) {
            (Rate | Increase | Delta, RangeMode::Anchored | RangeMode::Smoothed) => {
                let smoothed = mode == RangeMode::Smoothed;
                extended::extended_rate(w, smoothed, self != Delta, self == Rate)
            }
            (Resets, RangeMode::Anchored) => extended::anchored_resets(w),
            (Changes, RangeMode::Anchored) => extended::anchored_changes(w),
            (_, RangeMode::Anchored | RangeMode::Smoothed) => {
                self.check_mode(mode)?;
                None
            }
            (Rate, _) => range::rate(w),
            (Increase, _) => range::increase(w),
            (Delta, _) => range::delta(w),
            (Irate, _) => range::irate(w),
            (Idelta, _) => range::idelta(w),
            (Resets, _) => range::resets(w),
            (Changes, _) => range::changes(w),
            (Deriv, _) => smoothing::deriv(w),
            (PredictLinear, _) => match param(0) {
                Some(t) => smoothing::predict_linear(w, eval_ms, t),
                None => None,
            },
            (DoubleExponentialSmoothing, _) => match (param(0), param(1)) {
                (Some(sf), Some(tf)) if !w.samples.is_empty() => {
                    smoothing::check_smoothing_factors(sf, tf)?;
                    smoothing::double_exponential_smoothing(w, sf, tf)
                }
                _ => None,
            },
            (AvgOverTime, _) => range::avg_over_time(w),
            (SumOverTime, _) => range::sum_over_time(w),
            (CountOverTime, _) => range::count_over_time(w),
            (MinOverTime, _) => range::min_over_time(w),
            (MaxOverTime, _) => range::max_over_time(w),
            (LastOverTime, _) => range::last_over_time(w),
            (FirstOverTime, _) => range::first_over_time(w),
            (PresentOverTime, _) => range::present_over_time(w),
            (StddevOverTime, _) => range::stddev_over_time(w),
            (StdvarOverTime, _) => range::stdvar_over_time(w),
            (QuantileOverTime, _) => match param(0) {
                Some(q) => range::quantile_over_time(w, q, scratch),
                None => None,
            },
            (MadOverTime, _) => range::mad_over_time(w, scratch),
            (TsOfMinOverTime, _) => range::ts_of_min_over_time(w),
            (TsOfMaxOverTime, _) => range::ts_of_max_over_time(w),
            (TsOfFirstOverTime, _) => range::ts_of_first_over_time(w),
            (TsOfLastOverTime, _) => range::ts_of_last_over_time(w),
            (Silt(f), _) => return forecast::eval(f, w, eval_ms, params, series, note),
        };
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::testutil::{Series, assert_close};

    #[test]
    fn names_round_trip() {
        for f in ALL {
            assert_eq!(RangeFunction::from_name(f.name()), Some(f));
        }
        assert_eq!(RangeFunction::from_name("absent_over_time"), None);
        assert_eq!(RangeFunction::from_name("abs"), None);
    }

    // extended_vectors.test: the modifier errors.
    #[test]
    fn mode_errors_match_prometheus() {
        let err = |f: &str, mode| {
            RangeFunction::from_name(f)
                .unwrap()
                .check_mode(mode)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("deriv", RangeMode::Smoothed),
            "smoothed modifier can only be used with: delta, increase, rate - not with deriv"
        );
        assert_eq!(
            err("resets", RangeMode::Smoothed),
            "smoothed modifier can only be used with: delta, increase, rate - not with resets"
        );
        assert_eq!(
            err("max_over_time", RangeMode::Anchored),
            "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with max_over_time"
        );
        for f in ["rate", "increase", "delta", "resets", "changes"] {
            assert!(
                RangeFunction::from_name(f)
                    .unwrap()
                    .check_mode(RangeMode::Anchored)
                    .is_ok()
            );
        }
        for f in ALL {
            assert!(f.check_mode(RangeMode::Normal).is_ok());
        }
    }

    #[test]
    fn dispatch_uses_params_and_modes() {
        let mut scratch = Vec::new();
        let series = Series::load(300_000, "0+10x4 0+10x5");
        let w = series.window(3_000_000, 3_000_000);
        let eval = |f: RangeFunction, mode, params: &[f64], scratch: &mut Vec<f64>| {
            f.eval(&w, mode, 3_000_000, params, scratch).unwrap()
        };
        assert_close(
            eval(
                RangeFunction::PredictLinear,
                RangeMode::Normal,
                &[3600.0],
                &mut scratch,
            ),
            Some(70.0),
        );
        assert_close(
            eval(
                RangeFunction::QuantileOverTime,
                RangeMode::Normal,
                &[0.5],
                &mut scratch,
            ),
            Some(25.0),
        );
        assert_eq!(
            eval(
                RangeFunction::PredictLinear,
                RangeMode::Normal,
                &[],
                &mut scratch
            ),
            None
        );
        assert_close(
            eval(RangeFunction::Resets, RangeMode::Normal, &[], &mut scratch),
            Some(1.0),
        );
        assert_eq!(
            RangeFunction::DoubleExponentialSmoothing
                .eval(&w, RangeMode::Normal, 0, &[0.0, 0.5], &mut scratch)
                .unwrap_err()
                .to_string(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 0.000000"
        );
        assert!(
            RangeFunction::Deriv
                .eval(&w, RangeMode::Smoothed, 0, &[], &mut scratch)
                .is_err()
        );
        // Anchored increase from the anchor at t=0: 40 + 50 across the reset.
        let anchored = Window::new(series.between(-300_000, 3_000_000), 0, 3_000_000);
        let got = RangeFunction::Increase
            .eval(&anchored, RangeMode::Anchored, 3_000_000, &[], &mut scratch)
            .unwrap();
        assert_close(got, Some(90.0));
    }

    mod properties {
        use super::*;
        use engine::{STALE_NAN, Sample};
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                4 => -1e3f64..1e3,
                1 => Just(f64::NAN),
                1 => Just(f64::from_bits(STALE_NAN)),
                1 => Just(f64::INFINITY),
                1 => Just(f64::NEG_INFINITY),
                1 => Just(0.0),
                1 => Just(-0.0),
                1 => Just(f64::MAX),
            ]
        }

        fn samples() -> impl Strategy<Value = Vec<Sample>> {
            prop::collection::vec((-50i64..50, value()), 0..12).prop_map(|mut v| {
                v.sort_by_key(|(t, _)| *t);
                v.dedup_by_key(|(t, _)| *t);
                v.into_iter()
                    .map(|(t, v)| Sample { t: t * 1000, v })
                    .collect()
            })
        }

        proptest! {
            // Every function in every allowed mode, on arbitrary windows
            // (values, bounds, sample placement): no panic, and the
            // counting functions agree with the input.
            #[test]
            fn never_panics(
                s in samples(),
                start in -60i64..60,
                len in 0i64..60,
                params in prop::collection::vec(value(), 0..3),
            ) {
                let (start, end) = (start * 1000, (start + len) * 1000);
                let mut scratch = Vec::new();
                for f in ALL {
                    for mode in [RangeMode::Normal, RangeMode::Anchored, RangeMode::Smoothed] {
                        if f.check_mode(mode).is_err() {
                            continue;
                        }
                        let w = Window::new(&s, start, end);
                        let _ = f.eval(&w, mode, end, &params, &mut scratch);
                    }
                }
                let w = Window::new(&s, start, end);
                let count = RangeFunction::CountOverTime
                    .eval(&w, RangeMode::Normal, end, &[], &mut scratch)
                    .unwrap();
                prop_assert_eq!(count, (!s.is_empty()).then_some(s.len() as f64));
                let _ = extended::extend_floats(&w, true);
                let _ = extended::extend_floats(&w, false);
                let _ = extended::smoothed_value_at(&s, end);
            }
        }
    }
}
