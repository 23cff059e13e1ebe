//! Kahan–Neumaier compensated summation, as Prometheus's `util/kahansum`
//! does it: the compensation is reset once the running sum is infinite, so
//! an overflow yields ±Inf instead of NaN. Shared by the `*_over_time`
//! functions and the evaluator's `sum`/`avg`. The step itself is the
//! engine's ([`engine::summary::kahan_step`]), which the page summaries'
//! float sums, the range windows' loops and the linear regression use
//! directly.

/// Adds `inc` to `sum` with compensation `c`; returns the new `(sum, c)`.
/// The caller adds `c` to `sum` at the end (unless `sum` is infinite).
#[inline]
pub fn inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let (mut sum, mut c, mut overflow) = (sum, c, false);
    engine::summary::kahan_step(inc, &mut sum, &mut c, &mut overflow);
    (sum, c)
}

/// A running compensated sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn add(&mut self, v: f64) {
        (self.sum, self.c) = inc(v, self.sum, self.c);
    }

    /// The compensated total: the raw sum when it is infinite (where the
    /// compensation is meaningless), `sum + c` otherwise.
    pub fn value(&self) -> f64 {
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.c
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compensates_cancellation() {
        // Naive summation gives 0 here; Neumaier keeps the small terms.
        let mut s = KahanSum::new();
        for v in [1.0, 1e100, 1.0, -1e100] {
            s.add(v);
        }
        assert_eq!(s.value(), 2.0);
    }

    #[test]
    fn overflow_is_infinite_not_nan() {
        let mut s = KahanSum::new();
        s.add(f64::MAX);
        s.add(f64::MAX);
        assert_eq!(s.value(), f64::INFINITY);
        s.add(1.0);
        assert_eq!(s.value(), f64::INFINITY);
    }

    #[test]
    fn nan_propagates() {
        let mut s = KahanSum::new();
        s.add(1.0);
        s.add(f64::NAN);
        assert!(s.value().is_nan());
    }
}
