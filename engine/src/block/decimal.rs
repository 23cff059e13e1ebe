//! Decimal value encoding of `samples.parquet` (format version 2): a value
//! `v` is stored as an integer mantissa `m` and a scale `k` with
//! `v == (m as f64) / 10^k` bit for bit, so decimal fractions such as
//! `12345.67` become small, delta-friendly integers. Values that cannot be
//! written so (NaN, ±Inf, `-0.0`, too many digits) stay `f64`.
//!
//! **Invariant (writer):** a row is stored decimal only if the reader's
//! formula, [`decode`], reproduces its bits; the writer checks every row
//! with that very function, so the choice of scale is a size heuristic and
//! never a correctness concern.

/// Largest scale written or accepted: `10^k` is an exact `f64` for `k <= 22`
/// and an exact `i64` for `k <= 18` (which SQL readers need).
pub const MAX_SCALE: u8 = 18;

/// `value_scale` of a row whose value is stored as a double in `value`.
pub const DOUBLE_SCALE: i8 = -1;

/// Largest `|m|` stored: every integer up to `2^53` is an exact `f64`.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;

/// `10^k` for `k` in `0..=MAX_SCALE`, each exact.
pub const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// The value of mantissa `m` at scale `k` (`k <= MAX_SCALE`): `m` converted
/// to `f64` (exact for `|m| <= 2^53`), divided by the exact `10^k` with one
/// IEEE 754 rounding. This is the reader's formula, documented in
/// `docs/format/block.md`.
#[inline]
pub fn decode(m: i64, k: u8) -> f64 {
    m as f64 / POW10[k as usize]
}

/// The sample value of a version-2 row from its `value`, `value_int` and
/// `value_scale` columns (`docs/format/block.md`), as the block reader
/// computes it; `None` if `value_scale` is outside `-1..=18` (corruption).
/// For SQL and other readers of the raw columns.
pub fn sample_value(value: f64, value_int: i64, value_scale: i8) -> Option<f64> {
    match value_scale {
        DOUBLE_SCALE => Some(value),
        // In 0..=MAX_SCALE, so the cast is lossless.
        k if (0..=MAX_SCALE as i8).contains(&k) => Some(decode(value_int, k as u8)),
        _ => None,
    }
}

/// The mantissa of `v` at scale `k`, if `v` is exactly `decode(m, k)` with
/// `|m| <= 2^53`.
#[inline]
pub fn encode(v: f64, k: u8) -> Option<i64> {
    let x = (v * POW10[k as usize]).round();
    // ±Inf and huge values fail the bound.
    if x.is_nan() || x.abs() > MAX_MANTISSA {
        return None;
    }
    let m = x as i64;
    (decode(m, k).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at which `v` is decimal, if any. A scale is tried
/// with the division of [`encode`] only when `v · 10^k` is within a few
/// ulps of an integer (true for the right scale, false for most others).
pub(crate) fn min_scale(v: f64) -> Option<u8> {
    if !v.is_finite() {
        return None;
    }
    for k in 0..=MAX_SCALE {
        let x = v * POW10[k as usize];
        // `v` is finite, so `x` is not NaN.
        if x.abs() > MAX_MANTISSA {
            return None;
        }
        if (x - x.round()).abs() <= x.abs() * (4.0 * f64::EPSILON) && encode(v, k).is_some() {
            return Some(k);
        }
    }
    None
}

/// Estimated bits per row stored as `f64` (8 bytes, barely compressible).
const DOUBLE_BITS: u64 = 64;
/// Estimated extra bits per row for each decimal digit of scale beyond the
/// row's own smallest scale (`log2(10)`, rounded up).
const DIGIT_BITS: u64 = 4;

/// Chooses the scale for a run of values (one series within one page):
/// the `k` that minimises an estimate of the encoded size, where rows whose
/// own smallest scale exceeds `k` cost a full `f64` and the other rows pay
/// for the digits they carry beyond their own. `None` if no row is decimal.
pub fn choose_scale(values: impl IntoIterator<Item = f64>) -> Option<u8> {
    let mut hist = [0u64; MAX_SCALE as usize + 1];
    let mut any = false;
    let mut max_k = 0usize;
    // Rows repeat their predecessor's value often (gauges, idle counters).
    let mut prev: Option<(u64, Option<u8>)> = None;
    for v in values {
        let k = match prev {
            Some((bits, k)) if bits == v.to_bits() => k,
            _ => min_scale(v),
        };
        prev = Some((v.to_bits(), k));
        if let Some(k) = k {
            hist[k as usize] += 1;
            any = true;
            max_k = max_k.max(k as usize);
        }
    }
    if !any {
        return None;
    }
    let mut best = (u64::MAX, 0u8);
    for k in 0..=max_k {
        let cost: u64 = hist
            .iter()
            .enumerate()
            .map(|(j, &n)| {
                if j > k {
                    n * DOUBLE_BITS
                } else {
                    n * (k - j) as u64 * DIGIT_BITS
                }
            })
            .sum();
        if cost < best.0 {
            best = (cost, k as u8);
        }
    }
    Some(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN;
    use proptest::prelude::*;

    #[test]
    fn powers_of_ten_are_exact() {
        for (k, p) in POW10.iter().enumerate() {
            assert_eq!(*p as i128, 10i128.pow(k as u32));
        }
    }

    #[test]
    fn decimal_fractions_get_their_scale() {
        assert_eq!(min_scale(12345.67), Some(2));
        assert_eq!(min_scale(0.1), Some(1));
        assert_eq!(min_scale(42.0), Some(0));
        assert_eq!(min_scale(0.0), Some(0));
        assert_eq!(min_scale(-3.125), Some(3));
        assert_eq!(min_scale(1e-12), Some(12));
        assert_eq!(encode(12345.67, 2), Some(1_234_567));
        assert_eq!(encode(12345.67, 4), Some(123_456_700));
        assert_eq!(encode(12345.67, 1), None);
    }

    #[test]
    fn non_decimal_values_are_refused() {
        for v in [
            f64::from_bits(STALE_NAN),
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.1 + 0.2,
            1e300,
            f64::MIN_POSITIVE,
            2f64.powi(60) + 2048.0,
        ] {
            assert_eq!(min_scale(v), None, "{v:e}");
            for k in 0..=MAX_SCALE {
                assert_eq!(encode(v, k), None, "{v:e} at {k}");
            }
        }
    }

    #[test]
    fn scale_is_chosen_by_cost() {
        assert_eq!(choose_scale([1.0, 2.5, 3.25]), Some(2));
        assert_eq!(choose_scale([f64::NAN, -0.0]), None);
        assert_eq!(choose_scale([]), None);
        // One row with many digits does not inflate a long run.
        let mut run = vec![1.5; 100];
        run.push(0.123_456_789_012);
        assert_eq!(choose_scale(run), Some(1));
        // Mixed runs keep their decimals.
        assert_eq!(
            choose_scale([1.0, f64::from_bits(STALE_NAN), 2.75]),
            Some(2)
        );
    }

    fn decimalish() -> impl Strategy<Value = f64> {
        prop_oneof![
            (any::<i32>(), 0u32..7).prop_map(|(m, k)| f64::from(m) / 10f64.powi(k as i32)),
            (-(1i64 << 53)..(1i64 << 53), 0u8..=MAX_SCALE).prop_map(|(m, k)| decode(m, k)),
            any::<u64>().prop_map(f64::from_bits),
            any::<f64>(),
        ]
    }

    proptest! {
        #[test]
        fn min_scale_is_the_smallest_exact_scale(v in decimalish()) {
            let brute = (0..=MAX_SCALE).find(|&k| encode(v, k).is_some());
            prop_assert_eq!(min_scale(v), brute);
        }

        #[test]
        fn encode_is_exact_or_refuses(v in decimalish(), k in 0u8..=MAX_SCALE) {
            if let Some(m) = encode(v, k) {
                prop_assert_eq!(decode(m, k).to_bits(), v.to_bits());
                prop_assert!(m.unsigned_abs() <= 1 << 53);
            }
        }

        #[test]
        fn decimal_strings_are_decimal(m in -100_000_000_000i64..100_000_000_000, k in 0u32..7) {
            // What a scrape parser produces from a decimal string.
            let (sign, a, p) = (if m < 0 { "-" } else { "" }, m.unsigned_abs(), 10u64.pow(k));
            let s = format!("{sign}{}.{:0width$}", a / p, a % p, width = k as usize);
            let v: f64 = s.parse().unwrap();
            let k = min_scale(v).unwrap();
            prop_assert!(k <= 6);
            prop_assert_eq!(decode(encode(v, k).unwrap(), k).to_bits(), v.to_bits());
        }
    }
}
