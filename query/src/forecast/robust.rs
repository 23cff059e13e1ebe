//! Robust statistics the forecaster is built on: medians, MAD, empirical
//! quantiles and the Theil–Sen slope. All ignore NaN inputs and work on a
//! caller's scratch buffer so hot loops do not allocate.

/// `1 / Φ⁻¹(0.75)`: turns a median absolute deviation into a standard
/// deviation for normal data.
pub const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The median of the non-NaN values (`NaN` when there are none). Reorders
/// `buf`, which is overwritten with the finite values of `values`.
pub fn median_into(values: &[f64], buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend(values.iter().copied().filter(|v| !v.is_nan()));
    median_in_place(buf)
}

/// The median of `buf` (no NaN allowed), reordering it; `NaN` when empty.
pub fn median_in_place(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = n / 2;
    let (lower, m, _) = buf.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        return m;
    }
    let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (below + m) / 2.0
}

/// The median absolute deviation from `center` of the non-NaN values.
pub fn mad_into(values: &[f64], center: f64, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend(
        values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| (v - center).abs()),
    );
    median_in_place(buf)
}

/// The `q`-quantile (0 ≤ q ≤ 1) of sorted, NaN-free values, linearly
/// interpolated between order statistics (Hyndman–Fan type 7, as numpy
/// and R default to). `NaN` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The Theil–Sen slope of the points `(x, y)`: the median of the slopes
/// between all pairs with different `x` (NaN points skipped). Quadratic in
/// the number of points, which is meant to be small (one per day or
/// block). `None` with fewer than two usable points.
pub fn theil_sen(points: &[(f64, f64)], buf: &mut Vec<f64>) -> Option<f64> {
    buf.clear();
    for (i, &(x1, y1)) in points.iter().enumerate() {
        if y1.is_nan() {
            continue;
        }
        for &(x2, y2) in &points[i + 1..] {
            if y2.is_nan() || x2 == x1 {
                continue;
            }
            buf.push((y2 - y1) / (x2 - x1));
        }
    }
    let m = median_in_place(buf);
    (!m.is_nan()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let mut b = Vec::new();
        assert_eq!(median_into(&[3.0, 1.0, 2.0], &mut b), 2.0);
        assert_eq!(median_into(&[4.0, 1.0, 2.0, 3.0], &mut b), 2.5);
        assert_eq!(median_into(&[f64::NAN, 5.0], &mut b), 5.0);
        assert!(median_into(&[f64::NAN], &mut b).is_nan());
        assert_eq!(mad_into(&[1.0, 2.0, 3.0, 100.0], 2.5, &mut b), 1.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let s = [0.0, 10.0, 20.0, 30.0];
        assert_eq!(quantile_sorted(&s, 0.0), 0.0);
        assert_eq!(quantile_sorted(&s, 1.0), 30.0);
        assert!((quantile_sorted(&s, 0.5) - 15.0).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn theil_sen_ignores_an_outlier() {
        let mut pts: Vec<(f64, f64)> = (0..9).map(|i| (i as f64, 2.0 * i as f64 + 1.0)).collect();
        pts[4].1 = 1000.0;
        let mut b = Vec::new();
        assert_eq!(theil_sen(&pts, &mut b), Some(2.0));
        assert_eq!(theil_sen(&pts[..1], &mut b), None);
    }
}
