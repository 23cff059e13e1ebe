//! Prometheus 3's experimental extended range selectors (`anchored`,
//! `smoothed`; `extended_vectors.test`).
//!
//! These need samples around the window, so the evaluator selects more
//! than `(start, end]` (lookback `L`, default 5m):
//!
//! | mode       | [`Window::samples`] must hold        | functions allowed                        |
//! |------------|--------------------------------------|------------------------------------------|
//! | `anchored` | `(start - L, end]`                   | `rate increase delta resets changes`     |
//! | `smoothed` | `(start - L, end + L]`               | `rate increase delta`                    |
//!
//! `start_ms`/`end_ms` stay the window's own bounds. `anchored` measures
//! from the last sample at or before `start` (the "anchor") to the last
//! sample in the window, without extrapolation. `smoothed` interpolates
//! linearly to the exact window bounds from the neighbouring samples.
//!
//! A matrix selector with a mode returned as a value (an instant query of
//! `x[5m] anchored`) is built with [`extend_floats`]; a `smoothed`
//! instant-vector selector uses [`smoothed_value_at`].

use engine::Sample;

use super::range::{Window, count_changes, count_resets};

/// `rate`/`increase`/`delta` for `anchored` (`smoothed == false`) and
/// `smoothed` selectors (Prometheus's `extendedRate`).
pub fn extended_rate(w: &Window, smoothed: bool, is_counter: bool, is_rate: bool) -> Option<f64> {
    let f = w.samples;
    if f.is_empty() {
        return None;
    }
    let (start, end) = (w.start_ms, w.end_ms);
    let mut last = f.len() - 1;
    // The last sample at or before start (else the first).
    let first = f[..last]
        .partition_point(|s| s.t <= start)
        .saturating_sub(1);
    if smoothed {
        // The first sample at or after end (else the last).
        last = f[..last].partition_point(|s| s.t < end);
    }
    if f[last].t <= start || (smoothed && f[first].t > end) {
        return None;
    }
    let left = if smoothed && f[first].t < start {
        interpolate(f[first], f[first + 1], start, is_counter)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > end {
        interpolate(f[last - 1], f[last], end, is_counter)
    } else {
        f[last].v
    };
    let mut result = right - left;
    if is_counter {
        // Resets strictly inside the window; the boundary values already
        // account for resets between the edge samples and their neighbours.
        let lo = if f[first].t <= start {
            first + 1
        } else {
            first
        };
        let hi = if f[last].t >= end { last } else { last + 1 };
        result += correct_for_counter_resets(left, right, f.get(lo..hi).unwrap_or(&[]));
    }
    if is_rate {
        result /= w.range_seconds();
    }
    Some(result)
}

/// Linear interpolation at `t` between two samples; for counters a
/// decrease is a reset, so the line starts from 0 instead of `a`.
fn interpolate(a: Sample, b: Sample, t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && b.v < a.v { 0.0 } else { a.v };
    y1 + (b.v - y1) * (t - a.t) as f64 / (b.t - a.t) as f64
}

fn correct_for_counter_resets(left: f64, right: f64, inner: &[Sample]) -> f64 {
    let mut correction = 0.0;
    let mut prev = left;
    for s in inner {
        if s.v < prev {
            correction += prev;
        }
        prev = s.v;
    }
    if right < prev {
        correction += prev;
    }
    correction
}

/// The samples an `anchored` `resets`/`changes` looks at: from the last
/// sample at or before `start` onward. `None` when no sample lies after
/// `start`.
fn anchored_samples<'a>(w: &Window<'a>) -> Option<&'a [Sample]> {
    Some(&w.samples[anchor_index(w)?..])
}

/// Where an `anchored` window's samples begin: the last at or before its
/// start (or the first, without one); `None` when no sample lies after
/// the start.
pub fn anchor_index(w: &Window) -> Option<usize> {
    let after = w.samples.partition_point(|s| s.t <= w.start_ms);
    (after < w.samples.len()).then(|| after.saturating_sub(1))
}

/// `resets(v[r] anchored)`.
pub fn anchored_resets(w: &Window) -> Option<f64> {
    count_resets(anchored_samples(w)?)
}

/// `changes(v[r] anchored)`.
pub fn anchored_changes(w: &Window) -> Option<f64> {
    count_changes(anchored_samples(w)?)
}

/// The value of an `anchored`/`smoothed` matrix selector (Prometheus's
/// `extendFloats`): a sample at `start` (the anchor's value, or the
/// interpolation for `smoothed`), the samples strictly inside the window,
/// and a sample at `end` (the last value, or the interpolation). Empty when
/// no sample lies after `start`. Input as for [`extended_rate`].
pub fn extend_floats(w: &Window, smoothed: bool) -> Vec<Sample> {
    let f = w.samples;
    if f.is_empty() {
        return Vec::new();
    }
    let (start, end) = (w.start_ms, w.end_ms);
    let mut last = f.len() - 1;
    let first = f[..last]
        .partition_point(|s| s.t <= start)
        .saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|s| s.t < end);
    }
    if f[last].t <= start {
        return Vec::new();
    }
    let left = if smoothed && f[first].t < start {
        interpolate(f[first], f[first + 1], start, false)
    } else {
        f[first].v
    };
    let right = if smoothed && last > 0 && f[last].t > end {
        interpolate(f[last - 1], f[last], end, false)
    } else {
        f[last].v
    };
    let lo = if f[first].t <= start {
        first + 1
    } else {
        first
    };
    let hi = if f[last].t >= end { last } else { last + 1 };
    let inner = f.get(lo..hi).unwrap_or(&[]);
    let mut out = Vec::with_capacity(inner.len() + 2);
    out.push(Sample { t: start, v: left });
    out.extend_from_slice(inner);
    out.push(Sample { t: end, v: right });
    out
}

/// The value of a `smoothed` instant-vector selector at data time `t`:
/// the sample at `t`, else the interpolation between its neighbours, else
/// the last value before `t`. `samples` must hold `(t - L, t + L]`.
pub fn smoothed_value_at(samples: &[Sample], t: i64) -> Option<f64> {
    let i = samples.partition_point(|s| s.t < t);
    match (samples.get(i), i.checked_sub(1).map(|j| samples[j])) {
        (Some(next), _) if next.t == t => Some(next.v),
        (Some(&next), Some(prev)) => Some(interpolate(prev, next, t, false)),
        (None, Some(prev)) => Some(prev.v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::testutil::{Series, assert_close, s};

    const LOOKBACK: i64 = 300_000;

    /// Evaluates like the evaluator would: select the extended range, keep
    /// the window bounds.
    fn eval(
        series: &Series,
        at: i64,
        range: i64,
        smoothed: bool,
        f: impl Fn(&Window) -> Option<f64>,
    ) -> Option<f64> {
        let start = at - range;
        let to = if smoothed { at + LOOKBACK } else { at };
        let w = Window::new(series.between(start - LOOKBACK, to), start, at);
        f(&w)
    }

    fn anchored_increase(w: &Window) -> Option<f64> {
        extended_rate(w, false, true, false)
    }

    fn smoothed_increase(w: &Window) -> Option<f64> {
        extended_rate(w, true, true, false)
    }

    // extended_vectors.test "Reference from PROM-52".
    #[test]
    fn reference_datasets() {
        let full = Series::load(15_000, "1+1x4 9+1x4");
        let anchored = [0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 7.0, 7.0, 7.0];
        let smoothed = [
            0.333333333,
            1.333333333,
            2.333333333,
            3.333333333,
            5.0,
            7.0,
            7.0,
            7.0,
            6.0,
        ];
        for i in 0..9 {
            let at = 5_000 + 15_000 * i as i64;
            assert_close(
                eval(&full, at, 60_000, false, anchored_increase),
                Some(anchored[i]),
            );
            assert_close(
                eval(&full, at, 60_000, true, smoothed_increase),
                Some(smoothed[i]),
            );
        }
        let partial = Series::load(15_000, "1+1x2 _ _ 9+1x4");
        let anchored = [0.0, 1.0, 2.0, 2.0, 2.0, 7.0, 7.0, 8.0, 9.0];
        let smoothed = [
            0.333333333,
            1.333333333,
            2.666666666,
            4.666666666,
            6.333333333,
            7.0,
            6.666666666,
            5.666666666,
            4.666666666,
        ];
        for i in 0..9 {
            let at = 5_000 + 15_000 * i as i64;
            assert_close(
                eval(&partial, at, 60_000, false, anchored_increase),
                Some(anchored[i]),
            );
            assert_close(
                eval(&partial, at, 60_000, true, smoothed_increase),
                Some(smoothed[i]),
            );
        }
    }

    #[test]
    fn left_open_interval() {
        let m = Series::load(60_000, "1 2 _ 4 5");
        assert_close(
            eval(&m, 120_000, 60_000, true, smoothed_increase),
            Some(1.0),
        );
        assert_close(eval(&m, 120_000, 60_000, false, anchored_increase), None);
    }

    // extended_vectors.test "Basic test with counter resets".
    #[test]
    fn counter_resets() {
        let ids = [
            Series::load(60_000, "1+1x4 1+1x4"),
            Series::load(60_000, "3 2+2x9"),
            Series::load(60_000, "5+3x2 3+3x6"),
        ];
        let delta_a = |w: &Window| extended_rate(w, false, false, false);
        let at = 90_000;
        for (s, want) in ids.iter().zip([1.0, 2.0, 3.0]) {
            assert_close(eval(s, at, 60_000, true, smoothed_increase), Some(want));
            assert_close(eval(s, at, 60_000, false, anchored_increase), Some(want));
        }
        for (s, want) in ids.iter().zip([1.0, -1.0, 3.0]) {
            assert_close(eval(s, at, 60_000, false, delta_a), Some(want));
        }
        for at in [180_000, 210_000] {
            for (s, want) in ids.iter().zip([1.0, 2.0, -8.0]) {
                assert_close(eval(s, at, 60_000, false, delta_a), Some(want));
            }
        }
        for (s, want) in ids.iter().zip([5.0, 10.0, 15.0]) {
            assert_close(
                eval(s, 375_000, 300_000, true, smoothed_increase),
                Some(want),
            );
            assert_close(
                eval(s, 360_000, 300_000, true, smoothed_increase),
                Some(want),
            );
            assert_close(
                eval(s, 300_000, 300_000, false, anchored_increase),
                Some(want),
            );
            assert_close(eval(s, 900_000, 300_000, false, anchored_increase), None);
        }
    }

    #[test]
    fn smoothed_delta_and_rate() {
        let delta_s = |w: &Window| extended_rate(w, true, false, false);
        let one = Series::load(60_000, "11 -1 100 0");
        let two = Series::load(60_000, "0 0 100 0 0 11 -1");
        assert_close(eval(&one, 330_000, 300_000, true, delta_s), Some(-5.0));
        assert_close(eval(&two, 330_000, 300_000, true, delta_s), Some(5.0));
        assert_close(eval(&one, 345_000, 300_000, true, delta_s), Some(-2.0));
        assert_close(eval(&two, 345_000, 300_000, true, delta_s), Some(2.0));
        let m = Series::load(60_000, "9 8 5 4");
        assert_close(
            eval(&m, 135_000, 120_000, true, smoothed_increase),
            Some(12.0),
        );
        // Interpolation across a counter reset.
        let reset = Series::load(15_000, "100 10");
        let rate_s = |w: &Window| extended_rate(w, true, true, true);
        assert_close(
            eval(&reset, 12_000, 10_000, true, rate_s),
            Some(0.666666666666667),
        );
        // Data only after or only before the range.
        let late = Series::load(10_000, "_ 5+1x4");
        assert_eq!(eval(&late, 5_000, 5_000, true, rate_s), None);
        assert_close(
            eval(&late, 15_000, 10_000, true, smoothed_increase),
            Some(0.5),
        );
        assert_eq!(eval(&late, 60_000, 5_000, true, rate_s), None);
    }

    // extended_vectors.test changes/resets with and without `anchored`.
    #[test]
    fn anchored_changes_and_resets() {
        let ids = [
            Series::load(60_000, "1+1x10"),
            Series::load(60_000, "1 1+1x10"),
            Series::load(60_000, "99-1x10"),
            Series::load(60_000, "99 99-1x10"),
        ];
        let run = |at, f: fn(&Window) -> Option<f64>| -> Vec<f64> {
            ids.iter()
                .map(|s| eval(s, at, 300_000, false, f).unwrap())
                .collect()
        };
        assert_eq!(run(300_000, anchored_changes), [5.0, 4.0, 5.0, 4.0]);
        assert_eq!(run(360_000, anchored_changes), [5.0, 5.0, 5.0, 5.0]);
        assert_eq!(run(330_000, anchored_changes), [5.0, 4.0, 5.0, 4.0]);
        assert_eq!(run(330_000, anchored_resets), [0.0, 0.0, 5.0, 4.0]);

        let one = Series::load(60_000, "2 _ 1 _ _ _ _ _ 0");
        let two = Series::load(60_000, "99-1x10");
        let a = |s, at, range, f: fn(&Window) -> Option<f64>| eval(s, at, range, false, f);
        assert_eq!(a(&one, 120_000, 60_000, anchored_changes), Some(1.0));
        assert_eq!(a(&two, 120_000, 60_000, anchored_changes), Some(1.0));
        assert_eq!(a(&one, 180_000, 60_000, anchored_changes), None);
        assert_eq!(a(&one, 480_000, 60_000, anchored_changes), Some(0.0));
        assert_eq!(a(&one, 480_000, 60_001, anchored_changes), Some(1.0));
        assert_eq!(a(&two, 480_000, 60_001, anchored_changes), Some(2.0));
        assert_eq!(a(&one, 120_000, 60_000, anchored_resets), Some(1.0));
        assert_eq!(a(&one, 480_000, 60_000, anchored_resets), Some(0.0));
        assert_eq!(a(&one, 480_000, 60_001, anchored_resets), Some(1.0));
        assert_eq!(a(&two, 480_000, 60_001, anchored_resets), Some(2.0));
    }

    // extended_vectors.test "metric smoothed" (load 10s).
    #[test]
    fn smoothed_instant_selector() {
        let v = |values: &str, t: i64| {
            let series = Series::load(10_000, values);
            smoothed_value_at(series.between(t - LOOKBACK, t + LOOKBACK), t)
        };
        assert_eq!(v("1+1x10", 10_000), Some(2.0));
        assert_eq!(v("1+1x10", 15_000), Some(2.5));
        assert_eq!(v("1+1x10", 5_000), Some(1.5));
        assert_eq!(v("1+1x10", 105_000), Some(11.0));
        assert_eq!(v("1+1x4 1+1x5", 45_000), Some(3.0));
        assert_eq!(v("0 5 100 2 8", 30_000), Some(2.0));
        assert_eq!(v("_ 5", 5_000), None);
    }

    #[test]
    fn extend_floats_shapes() {
        let f = s(&[(0, 1.0), (10_000, 2.0), (20_000, 3.0), (30_000, 4.0)]);
        // Anchored (5s, 25s]: anchor 1@0 moved to 5s, inner 2, 3, last 3@25s.
        let w = Window::new(&f[..3], 5_000, 25_000);
        assert_eq!(
            extend_floats(&w, false),
            s(&[(5_000, 1.0), (10_000, 2.0), (20_000, 3.0), (25_000, 3.0)])
        );
        // Smoothed: interpolated at both bounds.
        let w = Window::new(&f, 5_000, 25_000);
        assert_eq!(
            extend_floats(&w, true),
            s(&[(5_000, 1.5), (10_000, 2.0), (20_000, 3.0), (25_000, 3.5)])
        );
        assert!(extend_floats(&Window::new(&f[..1], 5_000, 25_000), false).is_empty());
        assert!(extend_floats(&Window::new(&[], 5_000, 25_000), true).is_empty());
    }
}
