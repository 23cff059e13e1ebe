//! Forecasts over either model behind one type ([`Fitted`]: Silt's
//! seasonal forecaster or `predict_linear`'s line), and when a forecast
//! crosses a threshold with its interval ([`exhaustion`]): the expected
//! path gives the time, the prediction bands give the earliest and latest
//! time at the coverage. The HTTP API's `/api/v1/forecast` and
//! `/api/v1/capacity` and the capacity report use these.

use engine::Sample;

use super::linear::LinearModel;
use super::{FitOptions, Forecast, ForecastError, Model};

/// Which model a forecast uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelKind {
    /// Silt's seasonal forecaster ([`Model`]).
    #[default]
    Seasonal,
    /// The least-squares line of `predict_linear` ([`LinearModel`]).
    Linear,
}

impl ModelKind {
    /// Every model's name, as the API spells it.
    pub const NAMES: [&'static str; 2] = ["seasonal", "linear"];

    pub fn parse(s: &str) -> Option<ModelKind> {
        match s {
            "seasonal" => Some(ModelKind::Seasonal),
            "linear" => Some(ModelKind::Linear),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Seasonal => "seasonal",
            ModelKind::Linear => "linear",
        }
    }
}

/// A fitted model of either kind.
#[derive(Debug, Clone)]
pub enum Fitted {
    Seasonal(Box<Model>),
    Linear(LinearModel),
}

impl Fitted {
    /// Fits `kind` to `samples` (sorted by time).
    pub fn fit(
        kind: ModelKind,
        samples: &[Sample],
        opts: &FitOptions,
    ) -> Result<Fitted, ForecastError> {
        Ok(match kind {
            ModelKind::Seasonal => Fitted::Seasonal(Box::new(Model::fit(samples, opts)?)),
            ModelKind::Linear => Fitted::Linear(LinearModel::fit(samples)?),
        })
    }

    /// The forecast at `target_ms` with a central interval of `coverage`.
    pub fn forecast(&mut self, target_ms: i64, coverage: f64) -> Result<Forecast, ForecastError> {
        match self {
            Fitted::Seasonal(m) => m.forecast(&[], target_ms, coverage),
            Fitted::Linear(m) => m.forecast(target_ms, coverage),
        }
    }

    /// Forecasts at many `targets` (a path into the future); for the
    /// seasonal model see [`Model::forecast_path`].
    pub fn forecast_path(
        &mut self,
        targets: &[i64],
        coverage: f64,
    ) -> Result<Vec<Forecast>, ForecastError> {
        match self {
            Fitted::Seasonal(m) => m.forecast_path(&[], targets, coverage),
            Fitted::Linear(m) => targets.iter().map(|&t| m.forecast(t, coverage)).collect(),
        }
    }

    /// One point of a path ([`Fitted::forecast_path`]).
    fn path_point(&mut self, target_ms: i64, coverage: f64) -> Result<Forecast, ForecastError> {
        match self {
            Fitted::Seasonal(m) => m.forecast_on_ladder(&[], target_ms, coverage),
            Fitted::Linear(m) => m.forecast(target_ms, coverage),
        }
    }

    /// Whether the forecast follows a daily profile (a threshold may then
    /// be crossed at a daily peak, so crossings are searched hourly).
    fn daily(&self) -> bool {
        match self {
            Fitted::Seasonal(m) => m.seasons().0,
            Fitted::Linear(_) => false,
        }
    }
}

/// Which way a resource runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// When the value falls to the threshold (free bytes reaching 0).
    Below,
    /// When the value rises to the threshold (use reaching 90%).
    Above,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "below" => Some(Direction::Below),
            "above" => Some(Direction::Above),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Below => "below",
            Direction::Above => "above",
        }
    }

    /// Whether `v` has reached `threshold`.
    pub fn reached(self, v: f64, threshold: f64) -> bool {
        match self {
            Direction::Below => v <= threshold,
            Direction::Above => v >= threshold,
        }
    }
}

/// Seconds until a threshold is reached, `+Inf` when not within the
/// horizon searched: on the expected path, and the earliest and latest at
/// the coverage (when the pessimistic and the optimistic band reach it).
/// `earliest <= seconds <= latest`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhaustion {
    pub seconds: f64,
    pub earliest: f64,
    pub latest: f64,
}

/// Most forecasts a crossing search evaluates on its scan.
const MAX_SCAN: i64 = 1024;
/// Scan points over the horizon without a daily profile.
const SCAN: i64 = 128;
/// Bisection rounds that narrow a crossing found between scan points.
const REFINE: usize = 8;

/// When the forecast from `from_ms` reaches `threshold` in `direction`,
/// searched up to `horizon_ms` ahead. `current` is the value now: when it
/// has already reached the threshold, every time is 0.
pub fn exhaustion(
    model: &mut Fitted,
    current: f64,
    from_ms: i64,
    threshold: f64,
    direction: Direction,
    horizon_ms: i64,
    coverage: f64,
) -> Result<Exhaustion, ForecastError> {
    super::check_coverage(coverage)?;
    if direction.reached(current, threshold) {
        return Ok(Exhaustion {
            seconds: 0.0,
            earliest: 0.0,
            latest: 0.0,
        });
    }
    let horizon_ms = horizon_ms.max(1);
    let n = if model.daily() {
        (horizon_ms / 3_600_000).clamp(SCAN, MAX_SCAN)
    } else {
        SCAN
    };
    let dt = (horizon_ms as f64 / n as f64).max(1.0);
    // Band order: expected, pessimistic, optimistic.
    let pick = |f: &Forecast, band: usize| match (band, direction) {
        (0, _) => f.mean,
        (1, Direction::Below) | (2, Direction::Above) => f.lower,
        _ => f.upper,
    };
    let mut found: [Option<(f64, f64, f64, f64)>; 3] = [None; 3];
    let mut prev = [current; 3];
    let mut prev_t = 0.0;
    let times: Vec<f64> = (1..=n).map(|i| dt * i as f64).collect();
    let targets: Vec<i64> = times.iter().map(|t| from_ms + t.round() as i64).collect();
    let path = model.forecast_path(&targets, coverage)?;
    for (&t, f) in times.iter().zip(&path) {
        for (band, slot) in found.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let v = pick(f, band);
            if direction.reached(v, threshold) {
                *slot = Some((prev_t, prev[band], t, v));
            }
            prev[band] = v;
        }
        prev_t = t;
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    let mut secs = [f64::INFINITY; 3];
    for (band, slot) in found.iter().enumerate() {
        let Some((mut t0, mut v0, mut t1, mut v1)) = *slot else {
            continue;
        };
        for _ in 0..REFINE {
            if t1 - t0 <= 1000.0 {
                break;
            }
            let mid = (t0 + t1) / 2.0;
            let v = pick(
                &model.path_point(from_ms + mid.round() as i64, coverage)?,
                band,
            );
            if direction.reached(v, threshold) {
                (t1, v1) = (mid, v);
            } else {
                (t0, v0) = (mid, v);
            }
        }
        let frac = if v1 == v0 {
            1.0
        } else {
            ((threshold - v0) / (v1 - v0)).clamp(0.0, 1.0)
        };
        secs[band] = (t0 + frac * (t1 - t0)) / 1000.0;
    }
    let seconds = secs[0];
    Ok(Exhaustion {
        seconds,
        earliest: secs[1].min(seconds),
        latest: secs[2].max(seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_006_400_000;
    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    /// A week of free bytes falling 1 GB a day from 10 GB, every 5
    /// minutes, with a little deterministic noise.
    fn filling() -> Vec<Sample> {
        (0..7 * 288)
            .map(|i| {
                let t = T0 + i * 5 * MIN;
                let days = (i * 5 * MIN) as f64 / DAY as f64;
                let noise = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
                Sample::new(t, 10e9 - 1e9 * days + 2e7 * noise)
            })
            .collect()
    }

    #[test]
    fn a_disk_filling_linearly_is_full_on_time() {
        let s = filling();
        let now = s.last().unwrap().t;
        let current = s.last().unwrap().v;
        // 10 GB - 7 GB used in a week: 3 GB left, 3 days.
        for kind in [ModelKind::Seasonal, ModelKind::Linear] {
            let mut m = Fitted::fit(kind, &s, &FitOptions::default()).unwrap();
            let e = exhaustion(&mut m, current, now, 0.0, Direction::Below, 30 * DAY, 0.8).unwrap();
            let days = e.seconds / 86_400.0;
            assert!((days - 3.0).abs() < 0.15, "{kind:?}: {e:?}");
            assert!(e.earliest <= e.seconds && e.seconds <= e.latest, "{e:?}");
            assert!(e.earliest / 86_400.0 > 2.0, "{kind:?}: {e:?}");
            assert!(
                e.latest.is_finite() && e.latest / 86_400.0 < 5.0,
                "{kind:?}: {e:?}"
            );
        }
    }

    #[test]
    fn a_flat_disk_is_never_full_and_a_full_one_is_full_now() {
        let s: Vec<Sample> = filling()
            .iter()
            .enumerate()
            .map(|(i, p)| Sample::new(p.t, 5e9 + if i % 2 == 0 { 1e6 } else { -1e6 }))
            .collect();
        let now = s.last().unwrap().t;
        let mut m = Fitted::fit(ModelKind::Seasonal, &s, &FitOptions::default()).unwrap();
        let e = exhaustion(&mut m, 5e9, now, 0.0, Direction::Below, 30 * DAY, 0.8).unwrap();
        assert_eq!(e.seconds, f64::INFINITY, "{e:?}");
        assert_eq!(e.earliest, f64::INFINITY, "{e:?}");
        let e = exhaustion(&mut m, 5e9, now, 6e9, Direction::Below, 30 * DAY, 0.8).unwrap();
        assert_eq!((e.seconds, e.earliest, e.latest), (0.0, 0.0, 0.0));
        assert_eq!(
            exhaustion(&mut m, 5e9, now, 0.0, Direction::Below, DAY, 1.5),
            Err(ForecastError::InvalidCoverage(1.5))
        );
    }

    #[test]
    fn rising_use_reaches_a_threshold_above() {
        let s: Vec<Sample> = (0..200)
            .map(|i| Sample::new(T0 + i * MIN, 0.5 + 0.001 * i as f64))
            .collect();
        let now = s.last().unwrap().t;
        let mut m = Fitted::fit(ModelKind::Linear, &s, &FitOptions::default()).unwrap();
        // 0.699 now, 0.001 a minute: 0.9 in 201 minutes.
        let e = exhaustion(&mut m, 0.699, now, 0.9, Direction::Above, DAY, 0.8).unwrap();
        assert!((e.seconds - 201.0 * 60.0).abs() < 60.0, "{e:?}");
    }

    #[test]
    fn names() {
        assert_eq!(ModelKind::parse("linear"), Some(ModelKind::Linear));
        assert_eq!(ModelKind::parse("holt"), None);
        for n in ModelKind::NAMES {
            assert_eq!(ModelKind::parse(n).unwrap().name(), n);
        }
        assert_eq!(Direction::parse("above"), Some(Direction::Above));
        assert_eq!(Direction::parse("up"), None);
    }
}
