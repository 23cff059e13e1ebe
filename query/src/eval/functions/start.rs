//! `rate`, `increase`, `irate` and `resets` over samples that carry start
//! timestamps (Prometheus's `use-start-timestamps`).
//!
//! A sample's start timestamp (ST, milliseconds; 0 = unknown) says since
//! when its value has been accumulating: a cumulative counter keeps one ST
//! until it restarts, a delta series gives each sample the previous
//! sample's time. Two things follow for counters:
//!
//! * a sample whose ST lies after the previous sample's time started
//!   afresh, which is a counter reset even when the value did not drop
//!   (and a delta sample, whose ST is the previous sample's time, is one
//!   too, unless the previous sample's ST was unknown or its own time:
//!   OTel's cumulative series with an unknown start);
//! * `rate`/`increase` need not extrapolate to the window's start when
//!   the first sample's ST lies inside the window: the counter was zero
//!   then, so the increase runs from the ST to the last sample, and one
//!   sample is enough.
//!
//! `sts[i]` is the ST of `w.samples[i]`. Samples without one (0) behave as
//! they do in [`super::range`], so a window of unknown STs gives exactly
//! the plain functions' results.

use engine::Sample;

use super::range::{self, Window};

/// Whether the sample (`cur_st`, `cur_t`) restarted its counter after the
/// sample (`prev_st`, `prev_t`) before it.
pub fn is_reset(prev_st: i64, prev_t: i64, cur_st: i64, cur_t: i64) -> bool {
    // Unknown, invalid (after the sample) or OTel's "unknown start" (the
    // sample's own time): no information.
    if cur_st == 0 || cur_st >= cur_t {
        return false;
    }
    if cur_st != prev_t {
        // Before the previous sample: the same accumulation went on.
        return cur_st > prev_t;
    }
    // The ST is the previous sample's time: a delta sample (a reset), or a
    // cumulative series whose first sample had no known start (not one).
    // A previous ST after its own sample is invalid and counts as unknown.
    prev_st != 0 && prev_st < prev_t
}

/// Whether a sample's ST reaches back before the previous sample's time
/// without being the previous sample's ST: the two samples count some of
/// the same events (Prometheus warns once per series).
pub fn overlaps(prev_st: i64, prev_t: i64, cur_st: i64) -> bool {
    cur_st != 0 && cur_st < prev_t && cur_st != prev_st
}

/// What [`rate`] found besides its value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateOut {
    pub value: Option<f64>,
    /// Some pair of consecutive samples [`overlaps`].
    pub overlap: bool,
}

/// `rate` (`is_rate`) or `increase` of a counter window whose samples carry
/// the start timestamps `sts` (aligned with `w.samples`).
pub fn rate(w: &Window, sts: &[i64], is_rate: bool) -> RateOut {
    let s = w.samples;
    let (Some(first), Some(last)) = (s.first(), s.last()) else {
        return RateOut::default();
    };
    debug_assert_eq!(s.len(), sts.len());
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    let mut result = last.v - first.v;
    let mut overlap = false;
    for i in 1..s.len() {
        let (prev, cur) = (s[i - 1], s[i]);
        overlap = overlap || overlaps(st(i - 1), prev.t, st(i));
        if cur.v < prev.v || is_reset(st(i - 1), prev.t, st(i), cur.t) {
            result += prev.v;
        }
    }
    // The counter was zero at its start, if that lies inside the window.
    let zero_start = Some(st(0)).filter(|&st0| st0 != 0 && st0 > w.start_ms && st0 < first.t);
    RateOut {
        value: range::extrapolate(w, result, true, is_rate, zero_start),
        overlap,
    }
}

/// `irate` over the window's last two samples: after a reset (a decrease
/// or a restart by ST) the last value itself, per second.
pub fn irate(w: &Window, sts: &[i64]) -> Option<f64> {
    let n = w.samples.len();
    let [.., prev, last] = w.samples else {
        return None;
    };
    let interval_ms = last.t - prev.t;
    if interval_ms == 0 {
        return None;
    }
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    let restarted = is_reset(st(n - 2), prev.t, st(n - 1), last.t);
    let mut result = last.v;
    if !(last.v < prev.v || restarted) {
        result = last.v - prev.v;
    }
    Some(result / (interval_ms as f64 / 1000.0))
}

/// `resets`: decreases and restarts by ST between consecutive samples.
pub fn resets(w: &Window, sts: &[i64]) -> Option<f64> {
    let s: &[Sample] = w.samples;
    if s.is_empty() {
        return None;
    }
    let st = |i: usize| sts.get(i).copied().unwrap_or(0);
    let n = (1..s.len())
        .filter(|&i| s[i].v < s[i - 1].v || is_reset(st(i - 1), s[i - 1].t, st(i), s[i].t))
        .count();
    Some(n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::functions::range;
    use proptest::prelude::*;

    fn window(s: &[Sample], start: i64, end: i64) -> Window<'_> {
        Window::new(s, start, end)
    }

    #[test]
    fn resets_follow_the_start_timestamps_meaning() {
        // Unknown, invalid and "unknown start" STs say nothing.
        assert!(!is_reset(0, 60_000, 0, 120_000));
        assert!(!is_reset(0, 60_000, 120_000, 120_000));
        assert!(!is_reset(0, 60_000, 130_000, 120_000));
        // An ST after the previous sample: restarted.
        assert!(is_reset(30_000, 60_000, 90_000, 120_000));
        // An ST before it: the same accumulation.
        assert!(!is_reset(30_000, 60_000, 30_000, 120_000));
        // The previous sample's time: a delta, unless the previous ST was
        // unknown, its own time, or invalid.
        assert!(is_reset(1, 60_000, 60_000, 120_000));
        assert!(!is_reset(0, 60_000, 60_000, 120_000));
        assert!(!is_reset(60_000, 60_000, 60_000, 120_000));
        assert!(!is_reset(120_000, 60_000, 60_000, 120_000));
    }

    #[test]
    fn overlaps_need_an_earlier_foreign_start() {
        assert!(!overlaps(0, 60_000, 0));
        assert!(!overlaps(0, 60_000, 60_000)); // a delta
        assert!(!overlaps(30_000, 60_000, 30_000)); // cumulative
        assert!(overlaps(0, 60_000, 30_000));
        assert!(overlaps(-60_000, 60_000, 1));
    }

    #[test]
    fn a_start_inside_the_window_replaces_extrapolation() {
        // One sample of 60 at 2m whose counter started at 1m, in (-2m, 3m]:
        // 60 over the minute since the start, no extrapolation to the right.
        let s = [Sample::new(120_000, 60.0)];
        let w = window(&s, -120_000, 180_000);
        let out = rate(&w, &[60_000], true);
        assert_eq!(out.value, Some(60.0 / 300.0));
        // Without the ST: a single sample has no rate.
        assert_eq!(rate(&w, &[0], true).value, None);
        // An ST at or before the window's start is not used.
        let w = window(&s, 60_000, 180_000);
        assert_eq!(rate(&w, &[60_000], false).value, None);
    }

    proptest! {
        #[test]
        fn unknown_starts_give_the_plain_functions(
            values in proptest::collection::vec(-5i32..50, 0..12),
            gaps in proptest::collection::vec(1i64..90_000, 12),
            start in -200_000i64..200_000,
            len in 1i64..600_000,
        ) {
            let mut t = start + gaps[0] % len.max(1);
            let mut s = Vec::new();
            for (i, v) in values.iter().enumerate() {
                if t > start + len {
                    break;
                }
                s.push(Sample::new(t, f64::from(*v)));
                t += gaps[i];
            }
            let sts = vec![0; s.len()];
            let w = window(&s, start, start + len);
            let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(x), Some(y)) => x.to_bits() == y.to_bits(),
                (None, None) => true,
                _ => false,
            };
            prop_assert!(same(rate(&w, &sts, true).value, range::rate(&w)));
            prop_assert!(same(rate(&w, &sts, false).value, range::increase(&w)));
            prop_assert!(same(irate(&w, &sts), range::irate(&w)));
            prop_assert!(same(resets(&w, &sts), range::resets(&w)));
            prop_assert!(!rate(&w, &sts, true).overlap);
            // One start at or before the window's start, as a counter that
            // never restarted has: no reset, no overlap, no zero point in
            // the window, so the plain answers again.
            let before = vec![start - i64::from(values.len() as u8) * 1_000 - 1; s.len()];
            prop_assert!(same(rate(&w, &before, true).value, range::rate(&w)));
            prop_assert!(same(irate(&w, &before), range::irate(&w)));
            prop_assert!(same(resets(&w, &before), range::resets(&w)));
            prop_assert!(!rate(&w, &before, false).overlap);
        }
    }
}
