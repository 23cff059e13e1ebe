//! Range-vector functions over one series' window of float samples:
//! `rate`/`increase`/`delta` with Prometheus's extrapolation, `irate`,
//! `idelta`, `resets`, `changes` and the `*_over_time` aggregations.
//!
//! Every function takes a [`Window`] holding the samples of the left-open
//! interval `(start_ms, end_ms]` (stale markers removed, sorted by time,
//! possibly empty) and returns `None` when Prometheus emits no sample for
//! the series at this step. The anchored/smoothed variants live in
//! [`super::extended`].

use engine::Sample;

use super::kahan::{self, KahanSum};
use super::quantile;

/// One series' samples for one evaluation step of a range function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window<'a> {
    /// Float samples in `(start_ms, end_ms]` for normal selectors (see
    /// [`super::extended`] for what anchored/smoothed selectors pass),
    /// sorted by time, stale markers removed.
    pub samples: &'a [Sample],
    /// Exclusive start: `eval_time - offset - range`.
    pub start_ms: i64,
    /// Inclusive end: `eval_time - offset` (or the `@` time).
    pub end_ms: i64,
}

impl<'a> Window<'a> {
    pub fn new(samples: &'a [Sample], start_ms: i64, end_ms: i64) -> Self {
        Window {
            samples,
            start_ms,
            end_ms,
        }
    }

    /// The range in seconds ([`range_seconds`]).
    pub fn range_seconds(&self) -> f64 {
        range_seconds(self.start_ms, self.end_ms)
    }
}

/// The range `(start_ms, end_ms]` in seconds, as Go's
/// `Duration.Seconds()` computes it (whole seconds plus the fractional
/// part), for bit-equal rates.
pub fn range_seconds(start_ms: i64, end_ms: i64) -> f64 {
    let ms = end_ms - start_ms;
    let frac = ms % 1000;
    if frac == 0 {
        // The same value without a division (0 / 1e9 adds +0).
        return (ms / 1000) as f64;
    }
    (ms / 1000) as f64 + (frac * 1_000_000) as f64 / 1e9
}

/// `rate(v[r])`: per-second increase of a counter, extrapolated.
pub fn rate(w: &Window) -> Option<f64> {
    extrapolated_rate(w, true, true)
}

/// `increase(v[r])`: increase of a counter, extrapolated.
pub fn increase(w: &Window) -> Option<f64> {
    extrapolated_rate(w, true, false)
}

/// `delta(v[r])`: difference of a gauge, extrapolated.
pub fn delta(w: &Window) -> Option<f64> {
    extrapolated_rate(w, false, false)
}

/// Prometheus's `extrapolatedRate` for float samples: the difference between
/// the last and first sample (plus, for counters, the value before each
/// decrease), extrapolated toward the window's edges when the first/last
/// sample lies within 1.1 average sample intervals of them, else by half
/// an interval; for counters never below the point where the counter
/// would have been zero. Needs at least two samples.
pub fn extrapolated_rate(w: &Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    // Counter resets are rare: a scan without a chain of dependent additions
    // finds out whether there is any before the in-order sum (which the
    // compiler would otherwise turn into an add-and-blend per sample).
    let resets = is_counter && has_decrease(w.samples);
    extrapolated_rate_known(w, is_counter, is_rate, resets)
}

/// [`extrapolated_rate`] when the caller already knows whether some
/// sample of the window is below its predecessor (`has_decrease`; only
/// read for counters): O(1) without one, as the range-query rollup keeps
/// the positions of a series' decreases.
#[inline]
pub fn extrapolated_rate_known(
    w: &Window,
    is_counter: bool,
    is_rate: bool,
    has_decrease: bool,
) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter && has_decrease {
        for v in before_decreases(s) {
            result += v;
        }
    }
    extrapolate(w, result, is_counter, is_rate, None)
}

/// Prometheus's extrapolation of `result`, the change over the window's
/// samples (at least one), to the window's edges: toward each edge by
/// the distance to it when that is under 1.1 average sample intervals,
/// else by half an interval; for counters never below the point where
/// the counter would have been zero. A counter's `zero_start` (a start
/// timestamp inside the window, after the window's start and before the
/// first sample: see [`super::start`]) is where it was zero: the change
/// then runs from there, plus the first sample's value, and is not
/// extrapolated toward the start. Without one, a single sample has no
/// change to extrapolate.
#[inline]
pub(crate) fn extrapolate(
    w: &Window,
    result: f64,
    is_counter: bool,
    is_rate: bool,
    zero_start: Option<i64>,
) -> Option<f64> {
    let ends = WindowEnds {
        first: *w.samples.first()?,
        last: *w.samples.last()?,
        len: w.samples.len(),
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    };
    extrapolate_ends(&ends, result, is_counter, is_rate, zero_start)
}

/// What [`extrapolate`] reads of a window: its first and last samples,
/// how many it holds (at least one), and its edges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowEnds {
    pub first: Sample,
    pub last: Sample,
    pub len: usize,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// [`extrapolate`] from the window's ends alone (a window folded a slice
/// at a time: [`crate::eval::rollup::WindowFold`]).
#[inline]
pub(crate) fn extrapolate_ends(
    w: &WindowEnds,
    mut result: f64,
    is_counter: bool,
    is_rate: bool,
    zero_start: Option<i64>,
) -> Option<f64> {
    let (first, last) = (w.first, w.last);
    let intervals = w.len - 1;
    let mut duration_to_start = (first.t - w.start_ms) as f64 / 1000.0;
    let mut duration_to_end = (w.end_ms - last.t) as f64 / 1000.0;
    let mut sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_interval = if intervals > 0 {
        sampled_interval / intervals as f64
    } else {
        0.0
    };
    let threshold = average_interval * 1.1;

    if let Some(st) = zero_start {
        duration_to_start = 0.0;
        sampled_interval = (last.t - st) as f64 / 1000.0;
        result += first.v;
    } else if intervals == 0 {
        return None;
    } else {
        if duration_to_start >= threshold {
            duration_to_start = average_interval / 2.0;
        }
        if is_counter {
            // A counter cannot go below zero: do not extrapolate past the
            // point where the line through the samples reaches it.
            let mut duration_to_zero = duration_to_start;
            if result > 0.0 && first.v >= 0.0 {
                duration_to_zero = sampled_interval * (first.v / result);
            }
            if duration_to_zero < duration_to_start {
                duration_to_start = duration_to_zero;
            }
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }
    let mut factor = 1.0;
    if sampled_interval != 0.0 {
        factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    }
    if is_rate {
        factor /= range_seconds(w.start_ms, w.end_ms);
    }
    Some(result * factor)
}

/// The value before each sample below its predecessor (a counter reset;
/// NaN compares false), in order: what a counter's change adds back.
#[inline]
pub(crate) fn before_decreases(s: &[Sample]) -> impl Iterator<Item = f64> + '_ {
    s.windows(2)
        .filter(|pair| pair[1].v < pair[0].v)
        .map(|pair| pair[0].v)
}

/// Whether some sample's value is below its predecessor's (NaN compares
/// false, as in the reset loop).
#[inline]
pub(crate) fn has_decrease(s: &[Sample]) -> bool {
    let mut any = false;
    for pair in s.windows(2) {
        any |= pair[1].v < pair[0].v;
    }
    any
}

/// `irate(v[r])`: per-second rate between the last two samples (after a
/// counter reset, the last value itself).
pub fn irate(w: &Window) -> Option<f64> {
    instant_value(w.samples, true)
}

/// `idelta(v[r])`: difference between the last two samples.
pub fn idelta(w: &Window) -> Option<f64> {
    instant_value(w.samples, false)
}

/// `irate` (`is_rate`) or `idelta` of samples whose last two are `s`'s.
pub(crate) fn instant_value(s: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = s else {
        return None;
    };
    let interval_ms = last.t - prev.t;
    if interval_ms == 0 {
        return None;
    }
    let mut result = last.v;
    // A decrease is a counter reset for irate: keep the last value. NaNs
    // compare false and take the difference.
    if !is_rate || last.v.partial_cmp(&prev.v) != Some(std::cmp::Ordering::Less) {
        result = last.v - prev.v;
    }
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

/// `resets(v[r])`: number of decreases between consecutive samples.
pub fn resets(w: &Window) -> Option<f64> {
    count_resets(w.samples)
}

/// `changes(v[r])`: number of value changes between consecutive samples
/// (NaN to NaN is no change).
pub fn changes(w: &Window) -> Option<f64> {
    count_changes(w.samples)
}

pub(crate) fn count_resets(s: &[Sample]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    Some(s.windows(2).filter(|p| p[1].v < p[0].v).count() as f64)
}

pub(crate) fn count_changes(s: &[Sample]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let changed = |p: &&[Sample]| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan());
    Some(s.windows(2).filter(changed).count() as f64)
}

/// The sum of the values when it is exact whatever the order: every value
/// an integer of magnitude at most 2^32 and at most 2^21 values, so every
/// partial sum is below 2^53. Kahan summation in order then never rounds
/// and its compensation stays +0, so this is its result bit for bit,
/// without its chain of dependent additions (`up`, counts, 0/1 gauges).
/// Signed zeros cannot differ either: an exact sum of zero is +0 unless
/// every value is −0, and then the callers' `+ c` (here `+ 0.0`) makes it
/// +0 as well.
#[inline]
fn exact_integer_sum(s: &[Sample]) -> Option<f64> {
    // Adding and subtracting 1.5 * 2^52 rounds any |v| < 2^51 to an integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    const MAX: f64 = 4_294_967_296.0;
    if s.len() > 1 << 21 {
        return None;
    }
    let bad = |v: f64| ((v + ROUND) - ROUND != v) | (v.abs() > MAX);
    // Four independent lanes, no branches: the loop runs at load speed.
    // Exact partial sums make the grouping irrelevant.
    let mut acc = [0.0f64; 4];
    let mut any_bad = [false; 4];
    let chunks = s.chunks_exact(4);
    let rest = chunks.remainder();
    let mut add = |c: &[Sample]| {
        for ((b, a), x) in any_bad.iter_mut().zip(acc.iter_mut()).zip(c) {
            *b |= bad(x.v);
            *a += x.v;
        }
    };
    chunks.for_each(&mut add);
    add(rest);
    (!any_bad.iter().any(|&b| b)).then(|| (acc[0] + acc[1]) + (acc[2] + acc[3]))
}

/// `avg_over_time`: Kahan-compensated mean, switching to an incremental
/// mean if the running sum would overflow (as Prometheus does).
pub fn avg_over_time(w: &Window) -> Option<f64> {
    if w.samples.len() >= 2
        && let Some(sum) = exact_integer_sum(w.samples)
    {
        // What the loop below computes when no partial sum rounds.
        let count = w.samples.len() as f64;
        return Some(sum / count + 0.0 / count);
    }
    let (first, rest) = w.samples.split_first()?;
    let mut sum = first.v;
    let mut c = 0.0;
    let mut mean = 0.0;
    let mut count = 1.0;
    let mut incremental = false;
    for (i, s) in rest.iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan::inc(s.v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan::inc(s.v / count, q * mean, q * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

/// `sum_over_time`: Kahan-compensated sum.
pub fn sum_over_time(w: &Window) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    if let Some(sum) = exact_integer_sum(w.samples) {
        return Some(sum + 0.0);
    }
    let mut sum = KahanSum::new();
    w.samples.iter().for_each(|s| sum.add(s.v));
    Some(sum.value())
}

/// `count_over_time`.
pub fn count_over_time(w: &Window) -> Option<f64> {
    (!w.samples.is_empty()).then_some(w.samples.len() as f64)
}

/// `present_over_time`: 1 if there is any sample.
pub fn present_over_time(w: &Window) -> Option<f64> {
    (!w.samples.is_empty()).then_some(1.0)
}

/// `last_over_time`.
pub fn last_over_time(w: &Window) -> Option<f64> {
    w.samples.last().map(|s| s.v)
}

/// `first_over_time`.
pub fn first_over_time(w: &Window) -> Option<f64> {
    w.samples.first().map(|s| s.v)
}

/// `ts_of_first_over_time`: time (seconds) of the first sample.
pub fn ts_of_first_over_time(w: &Window) -> Option<f64> {
    w.samples.first().map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_last_over_time`: time (seconds) of the last sample.
pub fn ts_of_last_over_time(w: &Window) -> Option<f64> {
    w.samples.last().map(|s| s.t as f64 / 1000.0)
}

/// `max_over_time`: the largest value; a NaN is replaced by any later value
/// and only survives if all are NaN.
pub fn max_over_time(w: &Window) -> Option<f64> {
    select_over_time(w.samples, |cur, best| cur > best || best.is_nan()).map(|s| s.v)
}

/// `min_over_time`, with the same NaN rule as [`max_over_time`].
pub fn min_over_time(w: &Window) -> Option<f64> {
    select_over_time(w.samples, |cur, best| cur < best || best.is_nan()).map(|s| s.v)
}

/// `ts_of_max_over_time`: time (seconds) of the last occurrence of the
/// maximum.
pub fn ts_of_max_over_time(w: &Window) -> Option<f64> {
    select_over_time(w.samples, |cur, best| cur >= best || best.is_nan())
        .map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_min_over_time`: time (seconds) of the last occurrence of the
/// minimum.
pub fn ts_of_min_over_time(w: &Window) -> Option<f64> {
    select_over_time(w.samples, |cur, best| cur <= best || best.is_nan())
        .map(|s| s.t as f64 / 1000.0)
}

fn select_over_time(s: &[Sample], better: impl Fn(f64, f64) -> bool) -> Option<Sample> {
    let mut best = *s.first()?;
    for x in s {
        if better(x.v, best.v) {
            best = *x;
        }
    }
    Some(best)
}

/// `stdvar_over_time`: population variance (Welford with Kahan
/// compensation, as Prometheus).
pub fn stdvar_over_time(w: &Window) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w.samples {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan::inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan::inc(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    Some((aux + c_aux) / count)
}

/// `stddev_over_time`: population standard deviation.
pub fn stddev_over_time(w: &Window) -> Option<f64> {
    stdvar_over_time(w).map(f64::sqrt)
}

/// `quantile_over_time(q, v[r])`. `scratch` is reused across calls to
/// avoid allocating per step. Report [`super::annotations::check_quantile`]
/// once per call that produced output.
pub fn quantile_over_time(w: &Window, q: f64, scratch: &mut Vec<f64>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    fill_values(w.samples, scratch);
    Some(quantile::quantile(q, scratch))
}

/// `mad_over_time`: median absolute deviation from the median (NaN if any
/// value is NaN).
pub fn mad_over_time(w: &Window, scratch: &mut Vec<f64>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    fill_values(w.samples, scratch);
    Some(quantile::median_absolute_deviation(scratch))
}

fn fill_values(samples: &[Sample], scratch: &mut Vec<f64>) {
    scratch.clear();
    scratch.extend(samples.iter().map(|s| s.v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::testutil::{Series, assert_close, s};
    use proptest::prelude::*;

    /// `avg_over_time` and `sum_over_time` by the Kahan loops alone (what
    /// they compute without the exact-integer fast path).
    fn kahan_avg_and_sum(v: &[f64]) -> (u64, u64) {
        let samples: Vec<Sample> = v
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample { t: i as i64, v })
            .collect();
        // A NaN at the end defeats the fast path; the loops over the rest
        // are what the fast path must match.
        let (mut sum, mut c, mut count) = (samples[0].v, 0.0, 1.0);
        for (i, x) in samples[1..].iter().enumerate() {
            count = (i + 2) as f64;
            (sum, c) = kahan::inc(x.v, sum, c);
        }
        let avg = sum / count + c / count;
        let mut k = KahanSum::new();
        samples.iter().for_each(|x| k.add(x.v));
        (avg.to_bits(), k.value().to_bits())
    }

    proptest! {
        #[test]
        fn exact_integer_sums_match_kahan_bit_for_bit(
            v in prop::collection::vec(
                prop_oneof![
                    Just(0.0), Just(1.0), Just(-0.0), Just(4294967296.0), Just(-4294967296.0),
                    Just(4294967297.0), Just(0.5), Just(f64::NAN), Just(f64::INFINITY),
                    (-1000i64..1000).prop_map(|i| i as f64),
                    (-(1i64 << 32)..(1i64 << 32)).prop_map(|i| i as f64),
                ],
                1..300,
            )
        ) {
            let samples: Vec<Sample> = v
                .iter()
                .enumerate()
                .map(|(i, &v)| Sample { t: i as i64, v })
                .collect();
            let w = Window::new(&samples, -1, v.len() as i64);
            let (avg, sum) = kahan_avg_and_sum(&v);
            prop_assert_eq!(sum_over_time(&w).map(f64::to_bits), Some(sum));
            if v.len() >= 2 && !v.iter().any(|x| x.is_nan() || x.is_infinite()) {
                prop_assert_eq!(avg_over_time(&w).map(f64::to_bits), Some(avg));
            }
            let fast = exact_integer_sum(&samples).is_some();
            let integral = v.iter().all(|&x| x.fract() == 0.0 && x.abs() <= 4294967296.0);
            prop_assert_eq!(fast, integral);
        }

        #[test]
        fn integer_windows_take_the_fast_path_with_kahan_bits(
            v in prop::collection::vec(
                prop_oneof![
                    Just(0.0), Just(-0.0), Just(1.0),
                    (-(1i64 << 32)..=(1i64 << 32)).prop_map(|i| i as f64),
                ],
                1..2_000,
            )
        ) {
            let samples: Vec<Sample> = v
                .iter()
                .enumerate()
                .map(|(i, &v)| Sample { t: i as i64, v })
                .collect();
            prop_assert!(exact_integer_sum(&samples).is_some());
            let w = Window::new(&samples, -1, v.len() as i64);
            let (avg, sum) = kahan_avg_and_sum(&v);
            prop_assert_eq!(sum_over_time(&w).map(f64::to_bits), Some(sum));
            if v.len() >= 2 {
                prop_assert_eq!(avg_over_time(&w).map(f64::to_bits), Some(avg));
            }
        }
    }

    // functions.test "Tests for increase()" with load 5m.
    #[test]
    fn increase_script_cases() {
        let foo = Series::load(300_000, "0+10x10");
        let bar = Series::load(300_000, "0+18x5 0+18x5");
        let dings = Series::load(300_000, "10+10x10");
        let bumms = Series::load(300_000, "1+10x10");
        let at = 3_000_000;
        for (series, want) in [
            (&foo, 100.0),
            (&bar, 160.0),
            (&dings, 100.0),
            (&bumms, 100.0),
        ] {
            assert_close(series.eval(at, 3_000_000, increase), Some(want));
        }
        for (series, want) in [
            (&foo, 100.0),
            (&bar, 162.0),
            (&dings, 105.0),
            (&bumms, 101.0),
        ] {
            assert_close(series.eval(at, 6_000_000, increase), Some(want));
        }
        // Counter reset: 0 1 2 3 2 3 4 is read as 0 1 2 3 (0 1) 2 3 4.
        let reset = Series::load(300_000, "0 1 2 3 2 3 4");
        assert_close(reset.eval(1_800_000, 1_800_000, increase), Some(7.0));
    }

    // functions.test "Tests for rate()".
    #[test]
    fn rate_script_cases() {
        let middle = Series::load(300_000, "0+27x4 0+27x5");
        assert_close(middle.eval(3_000_000, 3_000_000, rate), Some(0.08));
        let end = Series::load(300_000, "0+10x9 0 10");
        assert_close(end.eval(3_000_000, 300_000, rate), None);
        assert_close(end.eval(3_000_000, 360_000, rate), Some(0.0));
        let window = Series::load(300_000, "0+80x10");
        assert_close(
            window.eval(3_000_000, 3_000_000, rate),
            Some(0.26666666666666666),
        );
        // rate(x[10m] offset 5m) at 50m is a window ending at 45m.
        let offset_a = Series::load(300_000, "0+10x10");
        assert_close(
            offset_a.eval(2_700_000, 600_000, rate),
            Some(0.03333333333333333),
        );
        // Zero cutoff for left-side extrapolation (load 4m).
        let starts = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0];
        let at_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
        for (start, want) in starts.iter().zip(at_10m) {
            let series = Series::load(240_000, &format!("{start}+240x10"));
            assert_close(series.eval(600_000, 1_200_000, rate), Some(want));
            assert_close(series.eval(3_000_000, 1_200_000, rate), Some(0.6));
        }
    }

    // extended_vectors.test "Reference from PROM-52": normal increase.
    #[test]
    fn increase_reference_datasets() {
        let full = Series::load(15_000, "1+1x4 9+1x4");
        let want = [
            None,
            Some(1.833333333),
            Some(2.833333333),
            Some(4.0),
            Some(4.0),
            Some(8.0),
            Some(8.0),
            Some(8.0),
            Some(4.0),
        ];
        for (i, want) in want.into_iter().enumerate() {
            let at = 5_000 + 15_000 * i as i64;
            assert_close(full.eval(at, 60_000, increase), want);
        }
        let partial = Series::load(15_000, "1+1x2 _ _ 9+1x4");
        let want = [
            None,
            Some(1.833333333),
            Some(2.833333333),
            Some(3.166666666),
            Some(2.166666666),
            Some(8.0),
            Some(1.833333333),
            Some(2.833333333),
            Some(4.0),
        ];
        for (i, want) in want.into_iter().enumerate() {
            let at = 5_000 + 15_000 * i as i64;
            assert_close(partial.eval(at, 60_000, increase), want);
        }
    }

    #[test]
    fn delta_is_not_counter_aware() {
        // Gauge going down: no reset correction, no zero clamp.
        let w = s(&[(10_000, 10.0), (20_000, 5.0), (30_000, 0.0)]);
        let win = Window::new(&w, 0, 40_000);
        // 2 intervals of 10s; extrapolate 10s on both sides → 40s/20s.
        assert_close(delta(&win), Some(-20.0));
        // As a counter: 10 → 5 → 0 are two resets, an increase of 5 that
        // extrapolates to 10.
        assert_close(increase(&win), Some(10.0));
        assert_eq!(rate(&Window::new(&w[..1], 0, 40_000)), None);
    }

    #[test]
    fn range_seconds_like_go() {
        assert_eq!(Window::new(&[], 0, 1_500).range_seconds(), 1.5);
        assert_eq!(Window::new(&[], -1_001, 0).range_seconds(), 1.0 + 0.001);
        assert_eq!(Window::new(&[], 0, 300_000).range_seconds(), 300.0);
    }

    // functions.test "Tests for irate()".
    #[test]
    fn irate_idelta_script_cases() {
        let foo = Series::load(300_000, "0+10x10");
        let bar = Series::load(300_000, "0+10x5 0+10x5");
        assert_close(
            foo.eval(3_000_000, 3_000_000, irate),
            Some(0.03333333333333333),
        );
        assert_close(
            bar.eval(3_000_000, 3_000_000, irate),
            Some(0.03333333333333333),
        );
        assert_close(bar.eval(1_800_000, 3_000_000, irate), Some(0.0));
        let nan = Series::load(300_000, "1 NaN NaN 5 11");
        let got: Vec<Option<f64>> = (0..5)
            .map(|i| nan.eval(i * 300_000, 901_000, irate))
            .collect();
        assert!(got[0].is_none());
        assert!(got[1..4].iter().all(|v| v.unwrap().is_nan()));
        assert_close(got[4], Some(0.02));
        // idelta keeps the sign and is not per-second.
        let w = s(&[(0, 5.0), (10_000, 3.0)]);
        assert_close(idelta(&Window::new(&w, -1, 10_000)), Some(-2.0));
        assert_close(irate(&Window::new(&w, -1, 10_000)), Some(0.3));
        let same_t = s(&[(10_000, 1.0), (10_000, 2.0)]);
        assert_eq!(irate(&Window::new(&same_t, 0, 10_000)), None);
    }

    // functions.test "Tests for resets()" and "Tests for changes()".
    #[test]
    fn resets_changes_script_cases() {
        let foo = Series::load(300_000, "1 2 3 0 1 0 0 1 2 0");
        let bar = Series::load(300_000, "1 2 3 4 5 1 2 3 4 5");
        let biz = Series::load(300_000, "0 0 0 0 0 1 1 1 1 1");
        let at = 3_000_000;
        // resets at 50m over [5m] is empty: the last sample is at 45m.
        assert_eq!(foo.eval(at, 300_000, resets), None);
        for (range, want) in [
            (600_000, [0.0, 0.0, 0.0]),
            (1_200_000, [1.0, 0.0, 0.0]),
            (1_800_000, [1.0, 0.0, 0.0]),
            (1_920_000, [2.0, 1.0, 0.0]),
            (3_000_000, [3.0, 1.0, 0.0]),
        ] {
            let got = [&foo, &bar, &biz].map(|x| x.eval(at, range, resets).unwrap());
            assert_eq!(got, want, "resets range {range}");
        }
        for (range, want) in [
            (360_000, [0.0, 0.0, 0.0]),
            (1_200_000, [2.0, 2.0, 0.0]),
            (1_800_000, [3.0, 4.0, 0.0]),
            (3_000_000, [7.0, 8.0, 1.0]),
        ] {
            let got = [&foo, &bar, &biz].map(|x| x.eval(at, range, changes).unwrap());
            assert_eq!(got, want, "changes range {range}");
        }
        let all_nan = Series::load(300_000, "NaN NaN NaN");
        let some_nan = Series::load(300_000, "0 NaN 0");
        assert_eq!(all_nan.eval(900_000, 1_200_000, changes), Some(0.0));
        assert_eq!(some_nan.eval(900_000, 1_200_000, changes), Some(2.0));
    }

    // functions.test "Tests for avg_over_time" (load 10s, at 55s).
    #[test]
    fn avg_over_time_script_cases() {
        let avg = |values: &str| Series::load(10_000, values).eval(55_000, 60_000, avg_over_time);
        let sum = |values: &str| Series::load(10_000, values).eval(55_000, 60_000, sum_over_time);
        assert_eq!(
            Series::load(10_000, "1 2 3 4 5").eval(55_000, 10_000, avg_over_time),
            None
        );
        assert_eq!(
            Series::load(10_000, "1 2 3 4 5").eval(55_000, 20_000, avg_over_time),
            Some(5.0)
        );
        let inf = f64::INFINITY;
        // Parsed like the script's text, so the literal keeps its digits.
        let big: f64 = "9.988465674311579e+307".parse().unwrap();
        for (values, want) in [
            ("1 2 3 4 5", 3.0),
            ("1 2 3 4 Inf", inf),
            ("1 2 3 4 -Inf", -inf),
            ("1 2 3 Inf -Inf", f64::NAN),
            ("Inf 0 Inf", inf),
            ("Inf Inf Inf -Inf", f64::NAN),
            ("1 2 3 -Inf -Inf", -inf),
            ("-Inf 0 -Inf", -inf),
            ("-Inf -Inf -Inf Inf", f64::NAN),
            ("1 2 -Inf -Inf Inf", f64::NAN),
            ("9.988465674311579e+307 9.988465674311579e+307", big),
            (
                "-9.988465674311579e+307 -9.988465674311579e+307 -9.988465674311579e+307",
                -big,
            ),
            ("-9.988465674311579e+307 9.988465674311579e+307", 0.0),
            ("1 2 3 NaN NaN", f64::NAN),
        ] {
            assert_close(avg(values), Some(want));
        }
        assert_close(
            sum("9.988465674311579e+307 9.988465674311579e+307"),
            Some(inf),
        );
        let nan11 = Series::load(10_000, "1 2 3 NaN NaN");
        assert_close(nan11.eval(20_000, 60_000, avg_over_time), Some(2.0));
        assert_close(nan11.eval(30_000, 60_000, avg_over_time), Some(f64::NAN));
        // Very big intermediate values (at 1m over [2m]).
        let big = Series::load(10_000, "1 1e100 1 -1e100");
        assert_eq!(big.eval(60_000, 120_000, sum_over_time), Some(2.0));
        assert_eq!(big.eval(60_000, 120_000, avg_over_time), Some(0.5));
    }

    // functions.test "More tests for extreme values" (load 5s, at 55s).
    #[test]
    fn avg_over_time_extreme_values() {
        let avg = |values: &str| Series::load(5_000, values).eval(55_000, 60_000, avg_over_time);
        for (values, want) in [
            ("1e10 1e-6 1e-6 1e-6 1e-6 1e-6", 1.6666666666666675e+09),
            (
                "5.30921651659898 0.961118537914768 1.62091361305318 0.865089463758091 0.323055185914577 0.951811357687154",
                1.67186744582113,
            ),
            (
                "1.78264e50 0.76342771 1.9592258 7.69805412 458.90154",
                3.56528E+49,
            ),
            (
                "0.76342771 1.9592258 7.69805412 1.78264e50 458.90154",
                3.56528E+49,
            ),
            (
                "1.78264E+50 0.76342771 1.9592258 2.258E+220 7.69805412 458.90154",
                3.76333333333333E+219,
            ),
            (
                "-1.78264E+50 0.76342771 1.9592258 -2.258E+220 7.69805412 -458.90154",
                -3.76333333333333E+219,
            ),
            (
                "-1.78264E+215 0.76342771 1.9592258 2.258E+220 7.69805412 -458.90154",
                3.76330362266667E+219,
            ),
            (
                "-1.78264E+215 0.76342771 1.9592258 2.258E+220 7.69805412 1.78264E+215 -458.90154",
                3.225714285714286e+219,
            ),
            (
                "-1.78264E+219 0.76342771 1.9592258 2.3757689E+217 -2.3757689E+217 2.258E+220 7.69805412 1.78264E+219 -458.90154",
                2.5088888888888888e+219,
            ),
            (
                "-2.258E+220 -1.78264E+219 0.76342771 1.9592258 2.3757689E+217 -2.3757689E+217 2.258E+220 7.69805412 1.78264E+219 -458.90154",
                0.0,
            ),
        ] {
            assert_close(avg(values), Some(want));
        }
        // Exact equality after direct mean (foo 52+0x100, load 10s, at 10m).
        let foo = Series::load(10_000, "52+0x100");
        for range in [100_000, 110_000, 120_000, 130_000] {
            assert_eq!(foo.eval(600_000, range, avg_over_time), Some(52.0));
        }
        // Dense samples: sum_over_time(metric[N ms]) at 4s with load 1ms.
        let dense = Series::load(1, "1+0x4000");
        for range in [1000, 1001, 1002, 1003, 2000, 2003, 3000, 3003] {
            assert_eq!(dense.eval(4_000, range, sum_over_time), Some(range as f64));
        }
    }

    // functions.test "Tests for stddev_over_time and stdvar_over_time".
    #[test]
    fn variance_script_cases() {
        let m = Series::load(10_000, "0 8 8 2 3");
        assert_close(m.eval(60_000, 120_000, stdvar_over_time), Some(10.56));
        assert_close(m.eval(60_000, 120_000, stddev_over_time), Some(3.249615));
        let constant = Series::load(
            10_000,
            "1.5990505637277868 1.5990505637277868 1.5990505637277868",
        );
        assert_eq!(constant.eval(55_000, 60_000, stdvar_over_time), Some(0.0));
        assert_eq!(constant.eval(55_000, 60_000, stddev_over_time), Some(0.0));
    }

    // functions.test "Tests for *_over_time" (load 10s, at 1m over [2m]).
    #[test]
    fn min_max_first_last_script_cases() {
        let cases = [
            ("2 0 3", 0.0, 3.0, 2.0, 3.0),
            ("2 0 NaN", 0.0, 2.0, 2.0, f64::NAN),
            ("2 NaN 1", 1.0, 2.0, 2.0, 1.0),
            ("NaN 0 1", 0.0, 1.0, f64::NAN, 1.0),
            ("NaN NaN NaN", f64::NAN, f64::NAN, f64::NAN, f64::NAN),
            ("_ 5 2 _ 4 _", 2.0, 5.0, 5.0, 4.0),
        ];
        for (values, min, max, first, last) in cases {
            let m = Series::load(10_000, values);
            let eval = |f: fn(&Window) -> Option<f64>| m.eval(60_000, 120_000, f);
            assert_close(eval(min_over_time), Some(min));
            assert_close(eval(max_over_time), Some(max));
            assert_close(eval(first_over_time), Some(first));
            assert_close(eval(last_over_time), Some(last));
            assert_close(eval(count_over_time), Some(m.samples.len() as f64));
            assert_close(eval(present_over_time), Some(1.0));
        }
        let empty = Series::load(10_000, "_ _ _");
        let fs: [fn(&Window) -> Option<f64>; 5] = [
            min_over_time,
            max_over_time,
            count_over_time,
            present_over_time,
            last_over_time,
        ];
        for f in fs {
            assert_eq!(empty.eval(60_000, 120_000, f), None);
        }
    }

    // functions.test ts_of_* (load 10s53ms).
    #[test]
    fn ts_of_script_cases() {
        let m = Series::load(10_053, "1 2 3 0 5 6 2 1 4");
        assert_close(m.eval(90_000, 90_000, ts_of_min_over_time), Some(30.159));
        assert_close(m.eval(90_000, 90_000, ts_of_max_over_time), Some(50.265));
        let last = Series::load(10_053, "1 2 3 _ _");
        assert_close(
            last.eval(90_000, 90_000, ts_of_last_over_time),
            Some(20.106),
        );
        assert_close(
            last.eval(95_000, 90_000, ts_of_last_over_time),
            Some(20.106),
        );
        let first = Series::load(10_053, "_ _ 1 2 3 _ _");
        assert_close(
            first.eval(90_000, 90_000, ts_of_first_over_time),
            Some(20.106),
        );
        assert_eq!(first.eval(15_000, 90_000, ts_of_first_over_time), None);
        // Ties: the last occurrence wins.
        let ties = s(&[(1_000, 1.0), (2_000, 5.0), (3_000, 1.0), (4_000, 5.0)]);
        let w = Window::new(&ties, 0, 4_000);
        assert_eq!(ts_of_max_over_time(&w), Some(4.0));
        assert_eq!(ts_of_min_over_time(&w), Some(3.0));
    }

    // functions.test "Tests for quantile_over_time" and mad_over_time.
    #[test]
    fn quantile_and_mad_over_time() {
        let mut scratch = Vec::new();
        let uneven = Series::load(10_000, "0 1 4");
        let w = uneven.window(60_000, 120_000);
        assert_close(quantile_over_time(&w, 0.75, &mut scratch), Some(2.5));
        assert_close(quantile_over_time(&w, 0.8, &mut scratch), Some(2.8));
        assert_close(
            quantile_over_time(&w, -1.0, &mut scratch),
            Some(f64::NEG_INFINITY),
        );
        // The window itself is untouched by the sort.
        assert_eq!(w.samples[2].v, 4.0);
        let m = Series::load(10_000, "4 6 2 1 999 1 2");
        assert_close(
            mad_over_time(&m.window(70_000, 70_000), &mut scratch),
            Some(1.0),
        );
        let nan = Series::load(10_000, "1 2 NaN 4");
        assert_close(
            mad_over_time(&nan.window(30_000, 40_000), &mut scratch),
            Some(f64::NAN),
        );
        assert_eq!(mad_over_time(&Window::new(&[], 0, 1), &mut scratch), None);
    }
}
