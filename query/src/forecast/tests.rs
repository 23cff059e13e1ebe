//! Tests of the forecaster on series with known structure.

use engine::{STALE_NAN, Sample};

use super::model::{Clipper, without_local_level};
use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// Deterministic noise in [-1, 1) (a 64-bit LCG, high bits).
fn noise(i: u64, seed: u64) -> f64 {
    let mut z = (i ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    z ^= z >> 33;
    z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

fn series(days: i64, step: i64, f: impl Fn(i64) -> f64) -> Vec<Sample> {
    let start = 1_700_000_000_000 / DAY * DAY;
    (0..days * DAY / step)
        .map(|i| {
            let t = start + i * step;
            Sample { t, v: f(t - start) }
        })
        .collect()
}

fn daily(t: i64) -> f64 {
    (2.0 * std::f64::consts::PI * (t % DAY) as f64 / DAY as f64).sin()
}

#[test]
fn seasonal_series_is_forecast_back() {
    let s = series(14, 5 * MIN, |t| {
        100.0 + 20.0 * daily(t) + t as f64 / DAY as f64 + noise(t as u64, 1)
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    assert!(m.seasons().0, "daily season detected");
    let last = s.last().unwrap().t;
    for h in [HOUR, 6 * HOUR, DAY, 3 * DAY] {
        let t = last + h;
        let want = 100.0 + 20.0 * daily(t - s[0].t) + (t - s[0].t) as f64 / DAY as f64;
        let f = m.forecast(&[], t, 0.8).unwrap();
        assert!((f.mean - want).abs() < 1.5, "h={h}: {} vs {want}", f.mean);
        assert!(f.lower <= f.mean && f.mean <= f.upper);
        assert!(f.upper - f.lower < 6.0, "interval {f:?}");
    }
    assert!((m.slope_per_second() * 86_400.0 - 1.0).abs() < 0.1);
}

#[test]
fn constant_series() {
    let s = series(3, MIN, |_| 42.0);
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let last = s.last().unwrap();
    let f = m.forecast(&[], last.t + DAY, 0.9).unwrap();
    assert_eq!((f.mean, f.lower, f.upper), (42.0, 42.0, 42.0));
    assert_eq!(
        m.time_to_threshold(&[], last.t, 50.0, 7 * DAY),
        f64::INFINITY
    );
    assert_eq!(m.time_to_threshold(&[], last.t, 42.0, 7 * DAY), 0.0);
    let b = m.anomaly(&[], *last);
    assert_eq!((b.expected, b.score), (42.0, 0.0));
    let b = m.anomaly(&[], Sample { t: last.t, v: 43.0 });
    assert_eq!(b.score, f64::INFINITY);
}

#[test]
fn short_series_are_rejected() {
    let s = series(1, HOUR, |t| t as f64);
    let err = Model::fit(&s[..10], &FitOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "series too short to fit: 10 finite samples, need at least 16"
    );
    // Many samples crammed into few cells.
    let s: Vec<Sample> = (0..100).map(|i| Sample { t: i, v: 1.0 }).collect();
    assert!(matches!(
        Model::fit(&s, &FitOptions::default()),
        Err(ForecastError::TooShort { .. })
    ));
    let mut m = Model::fit(&series(1, MIN, |_| 1.0), &FitOptions::default()).unwrap();
    for c in [0.0, 1.0, -0.5, f64::NAN] {
        let err = m.forecast(&[], 0, c).unwrap_err();
        assert!(matches!(err, ForecastError::InvalidCoverage(x) if x.to_bits() == c.to_bits()));
    }
}

#[test]
fn non_finite_values_and_stale_markers_are_ignored() {
    let s = series(3, 2 * MIN, |t| 10.0 + daily(t) + noise(t as u64, 2));
    let mut dirty = Vec::new();
    for (i, x) in s.iter().enumerate() {
        dirty.push(*x);
        let bad = [
            f64::NAN,
            f64::from_bits(STALE_NAN),
            f64::INFINITY,
            f64::NEG_INFINITY,
        ][i % 4];
        dirty.push(Sample { t: x.t + 1, v: bad });
    }
    let opts = FitOptions::default();
    let (mut a, mut b) = (
        Model::fit(&s, &opts).unwrap(),
        Model::fit(&dirty, &opts).unwrap(),
    );
    let t = s.last().unwrap().t + 6 * HOUR;
    let (fa, fb) = (
        a.forecast(&[], t, 0.8).unwrap(),
        b.forecast(&[], t, 0.8).unwrap(),
    );
    assert_eq!(fa.mean.to_bits(), fb.mean.to_bits());
    assert_eq!(fa.upper.to_bits(), fb.upper.to_bits());
}

/// A disk filled every day and cleaned every night at 02:00 never fills.
#[test]
fn nightly_cleanup_is_no_false_alarm() {
    let s = series(7, MIN, |t| {
        let since_cleanup = (t - 2 * HOUR).rem_euclid(DAY) as f64 / DAY as f64;
        20.0 + 70.0 * since_cleanup + 0.3 * noise(t as u64, 3)
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let last = s.last().unwrap().t;
    assert_eq!(m.time_to_threshold(&[], last, 95.0, 7 * DAY), f64::INFINITY);
    // It does reach 80 % every evening, though.
    let ttt = m.time_to_threshold(&[], last, 80.0, 7 * DAY);
    assert!(ttt.is_finite() && ttt < 86_400.0, "{ttt}");
}

#[test]
fn growing_disk_crossing_time() {
    // 1 unit per hour, daily wiggle, threshold 40 units above the end.
    let s = series(7, MIN, |t| {
        t as f64 / HOUR as f64 + 3.0 * daily(t) + 0.5 * noise(t as u64, 4)
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let last = s.last().unwrap().t;
    let thr = (last - s[0].t) as f64 / HOUR as f64 + 40.0;
    let ttt = m.time_to_threshold(&[], last, thr, 7 * DAY);
    assert!((ttt / 3600.0 - 40.0).abs() < 6.0, "{}", ttt / 3600.0);
    // Away from the trend: never.
    assert_eq!(
        m.time_to_threshold(&[], last, -100.0, 7 * DAY),
        f64::INFINITY
    );
}

#[test]
fn anomalies_score_above_one() {
    let s = series(14, 5 * MIN, |t| 50.0 + 10.0 * daily(t) + noise(t as u64, 5));
    let m = Model::fit(&s, &FitOptions::default()).unwrap();
    let last = *s.last().unwrap();
    let normal = m.anomaly(&[], last);
    assert!(normal.score < 1.0, "{normal:?}");
    assert!(normal.lower < last.v && last.v < normal.upper);
    let spike = m.anomaly(
        &[],
        Sample {
            t: last.t,
            v: last.v + 15.0,
        },
    );
    assert!(spike.score > 1.0, "{spike:?}");
    // A value normal at another hour is anomalous now (seasonal break).
    let t_next = last.t + 5 * MIN;
    let opposite = 50.0 - 10.0 * daily(t_next - s[0].t);
    let b = m.anomaly(
        &[],
        Sample {
            t: t_next,
            v: opposite,
        },
    );
    assert_eq!(
        b.score > 1.0,
        (2.0 * 10.0 * daily(t_next - s[0].t)).abs() > b.upper - b.expected
    );
}

/// An idle CPU as CloudWatch reports it (NAB's ec2_cpu_utilization
/// series): mostly one quantum, often the next, a burst a few times a day.
/// Its everyday jumps are not anomalies; a burst beyond anything its
/// history shows is.
#[test]
fn quantised_idle_series_flags_only_what_its_history_does_not_show() {
    let s = series(14, 5 * MIN, |t| {
        let u = noise(t as u64, 9);
        if u > 0.994 {
            1.5
        } else if u > 0.5 {
            0.134
        } else {
            0.066
        }
    });
    let m = Model::fit(&s, &FitOptions::default()).unwrap();
    let t = s.last().unwrap().t + 5 * MIN;
    for v in [0.066, 0.134] {
        let b = m.anomaly(&[], Sample { t, v });
        assert!(b.score < 1.0, "{v}: {b:?}");
    }
    let b = m.anomaly(&[], Sample { t, v: 5.0 });
    assert!(b.score > 1.0, "{b:?}");
    // Light tails keep the band at 5 robust sigmas: uniform noise in
    // [-1, 1) has a robust sigma of 0.74 (half its MAD of 0.5 is the
    // quartile), so 3.7, whatever its largest draws.
    let g = series(14, 5 * MIN, |t| 50.0 + noise(t as u64, 5));
    let m = Model::fit(&g, &FitOptions::default()).unwrap();
    let b = m.anomaly(&[], Sample { t, v: 50.0 });
    assert!((b.upper - b.expected - 3.7).abs() < 0.3, "{b:?}");
}

/// A disk written to in bursts (NAB's ec2_disk_write_bytes): zero most
/// of the time. A burst of two samples just before the cut-off is not the
/// new level (three in a row would be).
#[test]
fn bursts_on_a_mostly_zero_series_do_not_move_the_level() {
    let s = series(10, 5 * MIN, |t| {
        let u = noise(t as u64, 11);
        let recent = t > 10 * DAY - 15 * MIN;
        if recent || u > 0.97 {
            4.0e8 * (1.5 + u)
        } else {
            0.0
        }
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let end = s.last().unwrap().t;
    for h in [HOUR, 6 * HOUR, DAY] {
        let f = m.forecast(&[], end + h, 0.8).unwrap();
        assert!(f.mean.abs() < 1.0e6, "{h}: {f:?}");
    }
}

#[test]
fn tail_updates_the_level() {
    let s = series(4, MIN, |t| 10.0 + noise(t as u64, 6) * 0.1);
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let last = s.last().unwrap().t;
    let tail: Vec<Sample> = (1..=30)
        .map(|i| Sample {
            t: last + i * MIN,
            v: 20.0,
        })
        .collect();
    let f = m.forecast(&tail, last + 31 * MIN, 0.8).unwrap();
    assert!((f.mean - 20.0).abs() < 0.5, "{f:?}");
}

/// Daily pattern, level shifts in both weeks and heavy spikes: the daily
/// profile is still found (shifts are not remainder noise), no weekly one
/// is made of the shifts, and the forecast starts from the new level.
#[test]
fn level_shifts_keep_the_season_and_are_followed() {
    let start = 1_700_000_000_000 / DAY * DAY;
    let shift = |t: i64| -> f64 {
        let d = (t - start) as f64 / DAY as f64;
        let mut x = 0.0;
        if d >= 4.3 {
            x += 8.0;
        }
        if d >= 9.6 {
            x -= 14.0;
        }
        if d >= 13.2 {
            x += 10.0;
        }
        x
    };
    let s = series(14, 5 * MIN, |t| {
        let spike = if (t / (5 * MIN)) % 397 == 0 {
            15.0
        } else {
            0.0
        };
        100.0 + 5.0 * daily(t) + shift(start + t) + 0.7 * noise(t as u64, 7) + spike
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    assert_eq!(m.seasons(), (true, false));
    let last = s.last().unwrap().t;
    for h in [HOUR, 6 * HOUR, DAY] {
        let t = last + h;
        let want = 104.0 + 5.0 * daily(t - s[0].t);
        let f = m.forecast(&[], t, 0.8).unwrap();
        assert!((f.mean - want).abs() < 1.0, "h={h}: {} vs {want}", f.mean);
    }
}

/// A weekly pattern (lower weekends) is kept next to the daily one.
#[test]
fn weekly_pattern_is_found() {
    let start = 1_700_000_000_000 / DAY * DAY;
    let s = series(21, 5 * MIN, |t| {
        let weekday = ((start + t) / DAY + 3).rem_euclid(7); // Monday = 0
        let weekend = if weekday >= 5 { -20.0 } else { 0.0 };
        100.0 + 10.0 * daily(t) + weekend + noise(t as u64, 8)
    });
    let m = Model::fit(&s, &FitOptions::default()).unwrap();
    assert_eq!(m.seasons(), (true, true));
}

/// A disk filled all week and cleaned on Sunday at 03:10: the forecast
/// drops with it, not across a 30-minute ramp.
#[test]
fn weekly_cleanup_drop_stays_sharp() {
    let start = 1_700_000_000_000 / DAY * DAY;
    // Days since the last Sunday 03:10 (the epoch was a Thursday).
    let since = |t: i64| ((t + 4 * DAY - 190 * MIN).rem_euclid(7 * DAY)) as f64 / DAY as f64;
    let s = series(14, 5 * MIN, |t| {
        30.0 + 6.0 * since(start + t) + 0.1 * noise(t as u64, 9)
    });
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    assert!(m.seasons().1, "weekly season found");
    let last = s.last().unwrap().t;
    // The next Sunday, 10 minutes before and 10 minutes after the drop.
    let sunday = (last + 7 * DAY) - (last + 4 * DAY).rem_euclid(7 * DAY) + 190 * MIN;
    let sunday = if sunday - 7 * DAY > last {
        sunday - 7 * DAY
    } else {
        sunday
    };
    for (t, want) in [(sunday - 10 * MIN, 72.0), (sunday + 10 * MIN, 30.0)] {
        let f = m.forecast(&[], t, 0.8).unwrap();
        assert!((f.mean - want).abs() < 1.5, "{} vs {want}", f.mean);
    }
}

#[test]
fn level_resets_then_learns_the_new_level_as_a_running_mean() {
    let mut c = Clipper::new(1.0);
    let mut level = 0.0;
    // One spike moves the level by the clipped amount only.
    level = c.update(level, 50.0, 0.1);
    assert!((level - 0.3).abs() < 1e-12, "{level}");
    level = c.update(level, 0.0, 0.1);
    // Three on one side: a shift.
    for v in [10.5, 9.5, 10.2] {
        level = c.update(level, v, 0.01);
    }
    assert_eq!(level, 10.2);
    // Then each value since the shift weighs 1 / (values since it): the
    // fourth moves the level a quarter of the way.
    level = c.update(level, 9.8, 0.01);
    assert!((level - 10.1).abs() < 1e-12, "{level}");
    for _ in 0..1000 {
        level = c.update(level, 11.0, 0.01);
    }
    assert!((level - 11.0).abs() < 0.01, "{level}");
}

#[test]
fn local_level_removes_steps_but_not_the_season() {
    let p = 48;
    let y: Vec<f64> = (0..20 * p)
        .map(|i| {
            let season = (2.0 * std::f64::consts::PI * i as f64 / p as f64).sin();
            season + if i >= 9 * p + 7 { 10.0 } else { 0.0 }
        })
        .collect();
    let mut buf = Vec::new();
    let r = without_local_level(&y, p, &mut buf);
    let off = r
        .iter()
        .enumerate()
        .filter(|&(i, v)| {
            let season = (2.0 * std::f64::consts::PI * i as f64 / p as f64).sin();
            (v - season).abs() > 0.5
        })
        .count();
    assert!(off <= p, "{off} cells off");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn intervals_nest_and_contain_the_mean(
            seed in 0u64..1000,
            amp in 0.0f64..20.0,
            trend in -5.0f64..5.0,
            noise_amp in 0.0f64..5.0,
            days in 1i64..10,
            h_min in 1i64..5000,
        ) {
            let s = series(days, 5 * MIN, |t| {
                amp * daily(t) + trend * t as f64 / DAY as f64 + noise_amp * noise(t as u64, seed)
            });
            let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
            let target = s.last().unwrap().t + h_min * MIN;
            let mut prev = (f64::INFINITY, f64::NEG_INFINITY);
            let mut mean = None;
            for c in [0.1, 0.5, 0.8, 0.95, 0.99] {
                let f = m.forecast(&[], target, c).unwrap();
                prop_assert!(f.lower <= f.mean && f.mean <= f.upper);
                prop_assert!(f.lower <= prev.0 && f.upper >= prev.1);
                prev = (f.lower, f.upper);
                prop_assert!(mean.is_none_or(|m: f64| m.to_bits() == f.mean.to_bits()));
                mean = Some(f.mean);
            }
            let b = m.anomaly(&[], *s.last().unwrap());
            prop_assert!(b.lower <= b.expected && b.expected <= b.upper);
        }
    }
}

#[test]
fn horizon_ladder_steps_by_at_most_half() {
    use super::model::ladder_rung;
    let rungs: Vec<usize> = (1..=50).map(ladder_rung).collect();
    assert_eq!(&rungs[..13], &[1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]);
    for k in 1..5000 {
        let r = ladder_rung(k);
        assert!(r >= k && 2 * r <= 3 * k.max(2), "{k} -> {r}");
    }
}

/// A path reads the ladder's horizons: on a rung it is the point forecast
/// exactly, between rungs its mean and bands stay between the point
/// forecasts' of the neighbouring rungs' spread.
#[test]
fn forecast_paths_match_point_forecasts_on_the_ladder() {
    let s = series(14, 5 * MIN, |t| {
        100.0 + 20.0 * daily(t) + t as f64 / DAY as f64 + 3.0 * noise(t as u64, 12)
    });
    let end = s.last().unwrap().t;
    let mut m = Model::fit(&s, &FitOptions::default()).unwrap();
    let targets: Vec<i64> = (1..=288).map(|i| end + i * 5 * MIN).collect();
    let path = m.forecast_path(&[], &targets, 0.8).unwrap();
    let mut fresh = Model::fit(&s, &FitOptions::default()).unwrap();
    for (i, (&t, p)) in targets.iter().zip(&path).enumerate() {
        let k = i + 1;
        let point = fresh.forecast(&[], t, 0.8).unwrap();
        if super::model::ladder_rung(k) == k {
            assert_eq!(*p, point, "k {k}");
        } else {
            // Same structure; the level and the bands come from a horizon
            // at most 1.5 times further out.
            assert!(
                (p.mean - point.mean).abs() < 5.0,
                "k {k}: {p:?} vs {point:?}"
            );
            let (wp, wq) = (p.upper - p.lower, point.upper - point.lower);
            assert!(wp > 0.5 * wq && wp < 2.0 * wq, "k {k}: {p:?} vs {point:?}");
        }
        assert!(p.lower <= p.mean && p.mean <= p.upper);
    }
    assert!(m.forecast_path(&[], &targets, 1.5).is_err());
}
