//! What a reader can know about a run of samples without visiting them
//! one by one: statistics of a decoded page's run of one series, computed
//! once and kept with the page (see
//! [`crate::db::Querier::visit_samples`]). A query folding a long window
//! (`avg_over_time(up[30d])`) then takes whole runs in O(1) instead of
//! streaming every sample through memory. And bounds on the gaps and
//! stale markers of all of a page's runs ([`Continuity`]), found when the
//! page is decoded, with which a count of the steps a series is visible
//! at takes a slice by its two ends.

use crate::sample::{Sample, is_stale_nan};

/// Integers below this magnitude are summed exactly in
/// [`RunSummary::int_sum`] (2^51: any 4,096 of them sum within an `i64`,
/// and a float holds each exactly).
pub const INT_LIMIT: f64 = 2_251_799_813_685_248.0;

/// Largest sum of magnitudes a [`FloatSum`] is kept for (2^1000): a fold
/// whose own sum's magnitude plus the run's stays below it meets no
/// overflow whether it adds the run's values one by one or its sum, so
/// both take the same path where Prometheus's average switches to an
/// incremental mean on overflow.
pub const FLOAT_SUM_LIMIT: f64 = 1.0715086071862673e301;

/// A run's values summed as Prometheus sums them (Kahan's compensated
/// sum, Neumaier's variant, from zero), and the sum of their magnitudes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatSum {
    pub sum: f64,
    pub c: f64,
    pub abs: f64,
}

/// What a reader knows of every slice of one page without visiting its
/// samples: bounds that hold for all of the page's series runs, found
/// when the page is decoded and checked. A query counting the steps a
/// series is visible at (`count`, `group`) takes an unbroken slice as one
/// range, from its first sample to its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuity {
    /// No two consecutive samples of a series lie further apart than
    /// this many milliseconds (`i64::MAX`: not known).
    pub max_gap: i64,
    /// Some sample may be a stale marker.
    pub stale: bool,
}

impl Continuity {
    /// Nothing known: any gap, stale markers possible.
    pub const UNKNOWN: Continuity = Continuity {
        max_gap: i64::MAX,
        stale: true,
    };

    /// Exactly what `run` (one series' samples, in time order) holds: its
    /// widest gap and whether it has a stale marker.
    pub fn of(run: &[Sample]) -> Continuity {
        Continuity {
            max_gap: run.windows(2).map(|w| w[1].t - w[0].t).max().unwrap_or(0),
            stale: run.iter().any(|s| is_stale_nan(s.v)),
        }
    }

    /// No stale marker, and no gap wider than `lookback`: each sample is
    /// visible until the next one, so the samples of a slice leave no
    /// time between its first and its last unseen.
    pub fn unbroken(&self, lookback: i64) -> bool {
        !self.stale && self.max_gap <= lookback
    }
}

/// Statistics of a run of samples (in time order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Some value is a stale marker.
    pub stale: bool,
    /// Some value is a NaN (stale markers included).
    pub nan: bool,
    /// Some value is below the one before it (a counter reset; a NaN is
    /// below nothing, nor anything below it), as Prometheus's rate
    /// functions compare them. Stale markers count as NaNs here, where the
    /// rate functions remove them first: a run with one (`stale`) must be
    /// read value by value.
    pub decreases: bool,
    /// When every value is an integer of magnitude below [`INT_LIMIT`]:
    /// their sum and the sum of their magnitudes, exact.
    pub int_sum: Option<(i128, i128)>,
    /// The first of the smallest and of the largest values, in order
    /// (`-0.0` and `0.0` are equal: the earlier one stands); `None` when
    /// some value is a NaN (which no order places).
    pub extremes: Option<(f64, f64)>,
    /// The compensated sum, when no value is a NaN or infinite and the
    /// magnitudes sum below [`FLOAT_SUM_LIMIT`].
    pub float_sum: Option<FloatSum>,
}

impl RunSummary {
    /// The summary of `run` (not empty).
    pub fn of(run: &[Sample]) -> RunSummary {
        let first = run.first().map_or(f64::NAN, |s| s.v);
        let (mut min, mut max) = (first, first);
        let (mut stale, mut nan, mut ints) = (false, false, true);
        let (mut decreases, mut prev) = (false, first);
        let (mut sum, mut abs) = (0i128, 0i128);
        // No partial sum can overflow while the magnitudes sum below the
        // limit, which is where the float sum is kept.
        let (mut fsum, mut fc, mut fabs, mut overflow) = (0.0, 0.0, 0.0f64, false);
        for s in run {
            let v = s.v;
            kahan_step(v, &mut fsum, &mut fc, &mut overflow);
            fabs += v.abs();
            stale |= is_stale_nan(v);
            nan |= v.is_nan();
            decreases |= v < prev;
            prev = v;
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
            if ints && v.abs() < INT_LIMIT && v.trunc() == v {
                let x = v as i64;
                sum += i128::from(x);
                abs += i128::from(x).abs();
            } else {
                ints = false;
            }
        }
        RunSummary {
            stale,
            nan,
            decreases,
            int_sum: ints.then_some((sum, abs)),
            extremes: (!nan).then_some((min, max)),
            // A NaN makes `fabs` NaN and an infinity infinite: neither
            // is below the limit.
            float_sum: (fabs < FLOAT_SUM_LIMIT).then_some(FloatSum {
                sum: fsum,
                c: fc,
                abs: fabs,
            }),
        }
    }
}

/// One addition of Prometheus's Kahan summation (Neumaier's variant:
/// the compensation takes the rounding error of the larger operand's
/// addition); `overflow` is set when the sum becomes infinite, and the
/// compensation is then dropped.
///
/// The error is Fast2Sum's on the operands ordered by magnitude, as
/// Prometheus computes it. TwoSum, which needs no ordering, is not a
/// substitute on its own: adding `-f64::MAX` to `3·2^970` overflows its
/// intermediate `t - sum` and leaves a NaN compensation under a finite sum
/// (`the_largest_values_keep_an_exact_compensation`). Loops over many
/// values use it guarded, through [`kahan_extend`].
#[inline(always)]
pub fn kahan_step(v: f64, sum: &mut f64, c: &mut f64, overflow: &mut bool) {
    let t = *sum + v;
    let (big, small) = if sum.abs() >= v.abs() {
        (*sum, v)
    } else {
        (v, *sum)
    };
    let nc = *c + ((big - t) + small);
    *overflow |= t.is_infinite();
    *c = if t.is_infinite() { 0.0 } else { nc };
    *sum = t;
}

/// One addition with the rounding error from Knuth's TwoSum, unguarded:
/// fewer operations than [`kahan_step`] (no ordering, no selects), and
/// the same sum and compensation bit for bit as long as the sum stays
/// finite and none of TwoSum's intermediate differences overflows. Where
/// one does (a sum that becomes infinite, or `-f64::MAX` added to `3·2^970`,
/// whose `t - sum` overflows), the compensation becomes infinite or NaN
/// and stays so: a sum and compensation both finite after any number of
/// steps mean every step was exact. [`kahan_extend`] relies on this.
#[inline(always)]
pub fn two_sum_step(v: f64, sum: &mut f64, c: &mut f64) {
    let t = *sum + v;
    let z = t - *sum;
    *c += (*sum - (t - z)) + (v - z);
    *sum = t;
}

/// Were all the [`two_sum_step`]s that led to this sum and compensation
/// exact (the same bits as [`kahan_step`]'s)? Yes if both are finite (see
/// [`two_sum_step`]; a sum not finite leaves a compensation that is not
/// either, so the sum's check is for the reader).
#[inline(always)]
pub fn two_sum_exact(sum: f64, c: f64) -> bool {
    sum.is_finite() && c.is_finite()
}

/// Values a [`two_sum_step`] pass of [`kahan_extend`] takes at once: what
/// a pass that turns out not exact costs twice.
const EXTEND_BLOCK: usize = 256;

/// Adds the values of `items` in turn, with the result of [`kahan_step`]
/// on each: a block at a time, [`two_sum_step`]s first, and only if the
/// sum or its compensation ends up not finite (an overflow, an infinite or
/// NaN value, or an overflowing intermediate difference), the block again
/// from its start with [`kahan_step`], as every later block whose sum is
/// no longer finite. Fewer operations per value than [`kahan_step`] alone,
/// whose compares and selects lengthen the chain of dependent additions
/// that bounds a single sum's loop.
#[inline]
pub fn kahan_extend<T>(
    items: &[T],
    value: impl Fn(&T) -> f64,
    sum: &mut f64,
    c: &mut f64,
    overflow: &mut bool,
) {
    for block in items.chunks(EXTEND_BLOCK) {
        if two_sum_exact(*sum, *c) {
            let (mut s, mut k) = (*sum, *c);
            for x in block {
                two_sum_step(value(x), &mut s, &mut k);
            }
            if two_sum_exact(s, k) {
                (*sum, *c) = (s, k);
                continue;
            }
        }
        for x in block {
            kahan_step(value(x), sum, c, overflow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN;
    use proptest::prelude::*;

    /// Prometheus's `kahanSumInc` as it is written: Fast2Sum on the
    /// operands ordered by magnitude, branching where the step selects.
    fn fast2sum_step(v: f64, sum: &mut f64, c: &mut f64) {
        let t = *sum + v;
        if t.is_infinite() {
            *c = 0.0;
        } else if sum.abs() >= v.abs() {
            *c += (*sum - t) + v;
        } else {
            *c += (v - t) + *sum;
        }
        *sum = t;
    }

    /// Values where error computations could part: every magnitude,
    /// cancellation, the largest finite values (whose intermediate
    /// differences could overflow) and multiples of their half unit in the
    /// last place (sums with them round to ties), subnormals, signed
    /// zeros, infinities and NaNs.
    fn addend() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e6f64..1e6,
            2 => any::<u64>().prop_map(f64::from_bits),
            1 => (0u64..64, any::<bool>()).prop_map(|(k, neg)| {
                let v = f64::from_bits(f64::MAX.to_bits() - k);
                if neg { -v } else { v }
            }),
            1 => (1i32..8, any::<bool>()).prop_map(|(k, neg)| {
                let v = f64::from(k) * 2f64.powi(970);
                if neg { -v } else { v }
            }),
            1 => (0u64..64, any::<bool>()).prop_map(|(k, neg)| {
                let v = f64::from_bits(k);
                if neg { -v } else { v }
            }),
            1 => prop::sample::select(vec![
                0.0,
                -0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                1e16,
                -1e16,
                1.0,
            ]),
        ]
    }

    /// Sequences long enough for several of [`kahan_extend`]'s blocks:
    /// ordinary values, among them now and then any addend or a pair whose
    /// sum rounds to a tie at the largest magnitudes (`k·2^970` then
    /// `∓MAX`, where TwoSum's intermediate difference overflows).
    fn long_sequence() -> impl Strategy<Value = Vec<f64>> {
        let tie = (prop::sample::select(vec![3.0, 7.0]), any::<bool>()).prop_map(|(k, neg)| {
            let sign = if neg { -1.0 } else { 1.0 };
            vec![sign * k * 2f64.powi(970), -sign * f64::MAX]
        });
        let piece = prop_oneof![
            60 => (-1e6f64..1e6).prop_map(|v| vec![v]),
            1 => addend().prop_map(|v| vec![v]),
            1 => tie,
        ];
        prop::collection::vec(piece, 0..700).prop_map(|p| p.concat())
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn the_largest_values_keep_an_exact_compensation() {
        // 3·2^970 - MAX rounds to a tie; TwoSum's `t - sum` overflows here.
        let (mut sum, mut c, mut overflow) = (0.0, 0.0, false);
        for v in [3.0 * 2f64.powi(970), -f64::MAX] {
            kahan_step(v, &mut sum, &mut c, &mut overflow);
        }
        assert!(!overflow);
        // The exact rounding error: (3·2^970 - MAX) - sum.
        assert_eq!(c, 2f64.powi(970), "{c:e}");
    }

    #[test]
    fn an_overflowing_twosum_step_leaves_a_compensation_that_is_not_finite() {
        // The case that makes TwoSum alone unsafe: the extension notices.
        let (mut sum, mut c) = (0.0, 0.0);
        for v in [3.0 * 2f64.powi(970), -f64::MAX] {
            two_sum_step(v, &mut sum, &mut c);
        }
        assert!(sum.is_finite() && !c.is_finite(), "{sum:e} {c:e}");
        let (mut sum, mut c, mut overflow) = (0.0, 0.0, false);
        let values = [3.0 * 2f64.powi(970), -f64::MAX];
        kahan_extend(&values, |&v| v, &mut sum, &mut c, &mut overflow);
        assert_eq!((c, overflow), (2f64.powi(970), false));
    }

    proptest! {
        /// Extending by a slice at a time is [`kahan_step`] on every value,
        /// from any state a sum can be in (here: after a first slice).
        #[test]
        fn kahan_extend_matches_the_step(
            values in prop_oneof![
                prop::collection::vec(addend(), 0..40),
                long_sequence(),
            ],
            cut in 0usize..1500,
        ) {
            let cut = cut.min(values.len());
            let (mut sum, mut c, mut overflow) = (0.0, 0.0, false);
            let (mut want_sum, mut want_c, mut want_overflow) = (0.0, 0.0, false);
            for part in [&values[..cut], &values[cut..]] {
                kahan_extend(part, |&v| v, &mut sum, &mut c, &mut overflow);
                for &v in part {
                    kahan_step(v, &mut want_sum, &mut want_c, &mut want_overflow);
                }
                prop_assert!(same(sum, want_sum), "sum {sum:e} != {want_sum:e}");
                prop_assert!(same(c, want_c), "c {c:e} != {want_c:e}");
                prop_assert_eq!(overflow, want_overflow);
            }
        }

        /// The step (selects, vectorisable) is Prometheus's (branches) bit
        /// for bit: sum, compensation and overflow after every value.
        #[test]
        fn kahan_step_matches_prometheus(values in prop::collection::vec(addend(), 0..40)) {
            let (mut sum, mut c, mut overflow) = (0.0, 0.0, false);
            let (mut want_sum, mut want_c) = (0.0, 0.0);
            for &v in &values {
                kahan_step(v, &mut sum, &mut c, &mut overflow);
                fast2sum_step(v, &mut want_sum, &mut want_c);
                prop_assert!(same(sum, want_sum), "sum {sum:e} != {want_sum:e} after {v:e}");
                prop_assert!(same(c, want_c), "c {c:e} != {want_c:e} after {v:e}");
            }
            prop_assert_eq!(overflow, values.iter().scan(0.0, |s, &v| {
                *s += v;
                Some(*s)
            }).any(|s: f64| s.is_infinite()));
        }
    }

    fn run(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample { t: i as i64, v })
            .collect()
    }

    #[test]
    fn integers_sum_exactly() {
        let s = RunSummary::of(&run(&[3.0, -5.0, 0.0, -0.0, 2.0]));
        assert_eq!(s.int_sum, Some((0, 10)));
        assert_eq!(
            (s.extremes, s.nan, s.stale),
            (Some((-5.0, 3.0)), false, false)
        );
        let big = INT_LIMIT - 1.0;
        assert_eq!(
            RunSummary::of(&run(&[big, big])).int_sum,
            Some((2 * (1 << 51) - 2, 2 * (1 << 51) - 2))
        );
    }

    #[test]
    fn fractions_large_values_and_nans_are_not_integers() {
        for v in [
            0.5,
            INT_LIMIT,
            -INT_LIMIT,
            f64::INFINITY,
            f64::NAN,
            f64::from_bits(STALE_NAN),
        ] {
            assert_eq!(RunSummary::of(&run(&[1.0, v])).int_sum, None, "{v}");
        }
        let s = RunSummary::of(&run(&[1.0, f64::from_bits(STALE_NAN)]));
        assert!(s.stale && s.nan);
        let s = RunSummary::of(&run(&[1.0, f64::NAN]));
        assert!(!s.stale && s.nan && s.extremes.is_none());
    }

    #[test]
    fn decreases_are_values_below_their_predecessor() {
        for (values, want) in [
            (&[1.0, 1.0, 2.0][..], false),
            (&[1.0], false),
            (&[2.0, 1.0], true),
            (&[1.0, 3.0, 2.0, 4.0], true),
            // NaN compares false both ways: 3 after a NaN is no decrease.
            (&[5.0, f64::NAN, 3.0], false),
            (&[5.0, f64::NAN, 3.0, 2.0], true),
            (&[5.0, f64::from_bits(STALE_NAN), 3.0], false),
            (&[0.0, -0.0], false),
        ] {
            assert_eq!(RunSummary::of(&run(values)).decreases, want, "{values:?}");
        }
    }

    #[test]
    fn float_sums_are_compensated_and_kept_only_when_safe() {
        // 0.1 ten times: a plain sum is 0.9999999999999999, the
        // compensated one is 1 with the sum and compensation apart.
        let s = RunSummary::of(&run(&[0.1; 10]));
        let f = s.float_sum.expect("a float sum");
        assert_eq!(f.sum + f.c, 1.0);
        assert_eq!(f.abs, [0.1; 10].iter().sum::<f64>());
        assert_eq!(s.int_sum, None);
        // Integers have one too; a NaN, an infinity or magnitudes summing
        // past the limit have none.
        assert_eq!(
            RunSummary::of(&run(&[3.0, -5.0])).float_sum,
            Some(FloatSum {
                sum: -2.0,
                c: 0.0,
                abs: 8.0
            })
        );
        let half = FLOAT_SUM_LIMIT / 2.0;
        for values in [
            &[1.0, f64::NAN][..],
            &[1.0, f64::from_bits(STALE_NAN)],
            &[1.0, f64::INFINITY],
            &[f64::NEG_INFINITY, 1.0],
            &[half, -half],
            &[f64::MAX, f64::MAX],
        ] {
            assert_eq!(RunSummary::of(&run(values)).float_sum, None, "{values:?}");
        }
        assert!(
            RunSummary::of(&run(&[half / 2.0, -half / 2.0]))
                .float_sum
                .is_some()
        );
    }

    #[test]
    fn the_first_of_equal_extremes_stands() {
        let s = RunSummary::of(&run(&[0.0, -0.0, 1.0]));
        assert_eq!(s.extremes.map(|e| e.0.to_bits()), Some(0.0f64.to_bits()));
        let s = RunSummary::of(&run(&[-0.0, 0.0, -1.0]));
        assert_eq!(s.extremes.map(|e| e.1.to_bits()), Some((-0.0f64).to_bits()));
    }
}
