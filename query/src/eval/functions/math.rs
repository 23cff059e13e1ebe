//! Element-wise functions on float samples: `abs`, `ceil`, `floor`, `exp`,
//! `sqrt`, `ln`, `log2`, `log10`, `sgn`, the trigonometric family, `deg`,
//! `rad`, plus `round`, `clamp*`, `min_of`/`max_of` and `pi`. The
//! evaluator applies them to every float sample of the argument (native
//! histograms are skipped in Prometheus; Silt has none) and drops the
//! metric name from the result.

use std::f64::consts::PI;

/// A one-argument element-wise function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MathFunction {
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sgn,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Deg,
    Rad,
}

impl MathFunction {
    pub fn from_name(name: &str) -> Option<Self> {
        use MathFunction::*;
        Some(match name {
            "abs" => Abs,
            "ceil" => Ceil,
            "floor" => Floor,
            "exp" => Exp,
            "sqrt" => Sqrt,
            "ln" => Ln,
            "log2" => Log2,
            "log10" => Log10,
            "sgn" => Sgn,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "asin" => Asin,
            "acos" => Acos,
            "atan" => Atan,
            "sinh" => Sinh,
            "cosh" => Cosh,
            "tanh" => Tanh,
            "asinh" => Asinh,
            "acosh" => Acosh,
            "atanh" => Atanh,
            "deg" => Deg,
            "rad" => Rad,
            _ => return None,
        })
    }

    #[inline]
    pub fn apply(self, v: f64) -> f64 {
        use MathFunction::*;
        match self {
            Abs => v.abs(),
            Ceil => v.ceil(),
            Floor => v.floor(),
            Exp => v.exp(),
            Sqrt => v.sqrt(),
            Ln => v.ln(),
            Log2 => v.log2(),
            Log10 => v.log10(),
            Sgn => sgn(v),
            Sin => v.sin(),
            Cos => v.cos(),
            Tan => v.tan(),
            Asin => v.asin(),
            Acos => v.acos(),
            Atan => v.atan(),
            Sinh => v.sinh(),
            Cosh => v.cosh(),
            Tanh => v.tanh(),
            Asinh => v.asinh(),
            Acosh => v.acosh(),
            Atanh => v.atanh(),
            // Same operation order as Prometheus, so results are bit-equal.
            Deg => v * 180.0 / PI,
            Rad => v * PI / 180.0,
        }
    }
}

/// -1, +1, or the value itself for ±0 and NaN.
pub fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest`,
/// ties up (toward +Inf), computed through the inverse as Prometheus does.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// The bounds for `clamp(v, min, max)`; `None` when `max < min`, in which
/// case Prometheus returns an empty vector.
pub fn clamp_bounds(min: f64, max: f64) -> Option<(f64, f64)> {
    (max >= min || min.is_nan() || max.is_nan()).then_some((min, max))
}

/// `clamp`: `max(min, min(max, v))` with Go's NaN-propagating max/min.
/// `clamp_min(v, m)` is `clamp(v, m, +Inf)`, `clamp_max(v, m)` is
/// `clamp(v, -Inf, m)`.
#[inline]
pub fn clamp(v: f64, min: f64, max: f64) -> f64 {
    go_max(min, go_min(max, v))
}

/// Go's `math.Max`: NaN if either is NaN; `max(+0, -0)` is +0.
pub fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_positive() { a } else { b }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN if either is NaN; `min(+0, -0)` is -0.
pub fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// `pi()`.
pub fn pi() -> f64 {
    PI
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits_eq(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    // functions.test: "Test for abs, ceil(), floor(), round()".
    #[test]
    fn rounding_family() {
        let inputs = [
            2.5,
            2.0,
            -2.5,
            -2.0,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let abs = [
            2.5,
            2.0,
            2.5,
            2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
        ];
        let ceil = [
            3.0,
            2.0,
            -2.0,
            -2.0,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let floor = [
            2.0,
            2.0,
            -3.0,
            -2.0,
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let rnd = [
            3.0,
            2.0,
            -2.0,
            -2.0,
            0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for (i, &v) in inputs.iter().enumerate() {
            assert!(bits_eq(MathFunction::Abs.apply(v), abs[i]), "abs {v}");
            assert!(bits_eq(MathFunction::Ceil.apply(v), ceil[i]), "ceil {v}");
            assert!(bits_eq(MathFunction::Floor.apply(v), floor[i]), "floor {v}");
            let r = round(v, 1.0);
            assert!(r == rnd[i] || (r.is_nan() && rnd[i].is_nan()), "round {v}");
        }
        assert_eq!(round(5.0, 10.0), 10.0);
        assert_eq!(round(4.9, 10.0), 0.0);
        assert_eq!(round(1.23456, 0.01), 1.23);
        assert_eq!(round(-1.5, 1.0), -1.0);
    }

    #[test]
    fn sgn_keeps_nan_and_zero() {
        assert_eq!(sgn(f64::NEG_INFINITY), -1.0);
        assert_eq!(sgn(f64::INFINITY), 1.0);
        assert!(sgn(f64::NAN).is_nan());
        assert_eq!(sgn(-50.0), -1.0);
        assert!(bits_eq(sgn(-0.0), -0.0));
        assert_eq!(sgn(100.0), 1.0);
    }

    // functions.test: clamp, clamp_min, clamp_max.
    #[test]
    fn clamp_family() {
        let vals = [-50.0, 0.0, 100.0];
        let got: Vec<f64> = vals
            .iter()
            .map(|&v| clamp(v, f64::NEG_INFINITY, 75.0))
            .collect();
        assert_eq!(got, [-50.0, 0.0, 75.0]);
        let got: Vec<f64> = vals
            .iter()
            .map(|&v| clamp(v, -25.0, f64::INFINITY))
            .collect();
        assert_eq!(got, [-25.0, 0.0, 100.0]);
        let got: Vec<f64> = vals.iter().map(|&v| clamp(v, -25.0, 75.0)).collect();
        assert_eq!(got, [-25.0, 0.0, 75.0]);
        assert!(vals.iter().all(|&v| clamp(v, 0.0, f64::NAN).is_nan()));
        assert!(vals.iter().all(|&v| clamp(v, f64::NAN, 0.0).is_nan()));
        assert_eq!(clamp_bounds(5.0, -5.0), None);
        assert_eq!(clamp_bounds(-5.0, 5.0), Some((-5.0, 5.0)));
        assert!(clamp_bounds(0.0, f64::NAN).is_some());
    }

    #[test]
    fn go_min_max() {
        assert_eq!(go_min(3.0, 5.0), 3.0);
        assert_eq!(go_max(-2.0, -5.0), -2.0);
        assert!(go_min(f64::NAN, 3.0).is_nan());
        assert!(go_max(3.0, f64::NAN).is_nan());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
    }

    // functions.test: exp, ln, sqrt, log2, log10.
    #[test]
    fn exp_log_family() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
        assert!(close(MathFunction::Exp.apply(10.0), 22026.465794806718));
        assert!(close(
            MathFunction::Exp.apply(-10.0),
            4.5399929762484854e-05
        ));
        assert!(close(MathFunction::Ln.apply(10.0), std::f64::consts::LN_10));
        assert_eq!(MathFunction::Ln.apply(0.0), f64::NEG_INFINITY);
        assert!(MathFunction::Ln.apply(-10.0).is_nan());
        assert!(close(MathFunction::Sqrt.apply(20.0), 4.47213595499958));
        assert!(close(MathFunction::Log2.apply(10.0), 3.3219280948873626));
        assert_eq!(MathFunction::Log10.apply(10.0), 1.0);
        assert!(MathFunction::Log10.apply(-10.0).is_nan());
    }

    // trig_functions.test spot checks.
    #[test]
    fn trig_family() {
        assert_eq!(MathFunction::Deg.apply(PI), 180.0);
        assert_eq!(MathFunction::Rad.apply(180.0), PI);
        assert_eq!(MathFunction::Sin.apply(0.0), 0.0);
        assert_eq!(MathFunction::Cos.apply(0.0), 1.0);
        assert!(MathFunction::Acosh.apply(0.5).is_nan());
        assert_eq!(MathFunction::Atanh.apply(1.0), f64::INFINITY);
        assert_eq!(pi(), PI);
        assert_eq!(MathFunction::from_name("atanh"), Some(MathFunction::Atanh));
        assert_eq!(MathFunction::from_name("round"), None);
    }
}
