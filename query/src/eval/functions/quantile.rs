//! The φ-quantile of a set of floats, shared by the `quantile` aggregation,
//! `quantile_over_time` and `mad_over_time` (Prometheus's `quantile` in
//! `promql/quantile.go`): values are sorted with NaN first, and a rank
//! between two values interpolates linearly.

use std::cmp::Ordering;

/// Orders floats as Prometheus's quantile sort does: NaN before everything,
/// otherwise ascending. A total preorder, so sorting never panics.
#[inline]
pub fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The `q`-quantile of `values`, which it sorts in place.
///
/// Empty input or NaN `q` gives NaN; `q < 0` gives -Inf and `q > 1` +Inf
/// (the caller reports [`super::annotations::check_quantile`]).
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Median absolute deviation of `values` (sorted and overwritten in
/// place): NaN if any value is NaN, as Prometheus's `mad_over_time`.
pub fn median_absolute_deviation(values: &mut [f64]) -> f64 {
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let median = quantile(0.5, values);
    for v in values.iter_mut() {
        *v = (*v - median).abs();
    }
    quantile(0.5, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    // aggregators.test "Tests for quantile" and functions.test
    // "Tests for quantile_over_time".
    #[test]
    fn prometheus_script_cases() {
        let cases: [(f64, [f64; 3]); 5] = [
            (0.0, [0.0, 0.0, 0.0]),
            (0.5, [0.5, 1.0, 1.0]),
            (0.75, [0.75, 1.5, 2.5]),
            (0.8, [0.8, 1.6, 2.8]),
            (1.0, [1.0, 2.0, 4.0]),
        ];
        for (q, want) in cases {
            let got = [
                quantile(q, &mut [0.0, 1.0]),
                quantile(q, &mut [2.0, 0.0, 1.0]),
                quantile(q, &mut [4.0, 0.0, 1.0]),
            ];
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "q={q}: {got:?} vs {want:?}");
            }
        }
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert!(quantile(0.5, &mut []).is_nan());
    }

    // aggregators.test: data{test="NaN sample"} is NaN, 0, 1 (NaN sorts first).
    #[test]
    fn nan_sorts_first() {
        let q = |phi| quantile(phi, &mut [1.0, f64::NAN, 0.0]);
        assert!((q(0.8) - 0.6).abs() < 1e-12);
        assert!(q(0.2).is_nan());
        assert_eq!(q(1.0), 1.0);
    }

    // functions.test "Tests for mad_over_time".
    #[test]
    fn mad() {
        assert_eq!(
            median_absolute_deviation(&mut [4.0, 6.0, 2.0, 1.0, 999.0, 1.0, 2.0]),
            1.0
        );
        assert_eq!(
            median_absolute_deviation(&mut [1.0, 2.0, 3.0, 4.0, 5.0]),
            1.0
        );
        assert_eq!(median_absolute_deviation(&mut [7.0; 5]), 0.0);
        assert_eq!(median_absolute_deviation(&mut [5.0]), 0.0);
        assert!(median_absolute_deviation(&mut [1.0, 2.0, f64::NAN, 4.0]).is_nan());
    }

    #[test]
    fn sort_is_total_with_odd_values() {
        let mut v = [
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1.0,
        ];
        let m = quantile(0.5, &mut v);
        assert!(v[0].is_nan() && v[1].is_nan());
        assert_eq!(v[2], f64::NEG_INFINITY);
        assert_eq!(v[6], f64::INFINITY);
        assert_eq!(m, 0.0);
    }
}
