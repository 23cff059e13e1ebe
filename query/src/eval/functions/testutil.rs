//! Test helpers: series in the promqltest load notation (`1+1x4 _ 9`),
//! windows cut the way the evaluator cuts them, and a tolerant comparison
//! matching the test scripts' (relative 1e-6, NaN equals NaN).

use engine::Sample;

use super::range::Window;

/// Samples from `(t_ms, v)` pairs.
pub fn s(pairs: &[(i64, f64)]) -> Vec<Sample> {
    pairs.iter().map(|&(t, v)| Sample { t, v }).collect()
}

/// One loaded series.
pub struct Series {
    pub samples: Vec<Sample>,
}

impl Series {
    /// `load <step>` with one series' values: `N`, `_`, `_xN`, `NxK`,
    /// `A+DxK`, `A-DxK` (K+1 values), starting at t=0.
    pub fn load(step_ms: i64, values: &str) -> Series {
        let mut samples = Vec::new();
        let mut slot = 0i64;
        for item in values.split_whitespace() {
            if item == "_" {
                slot += 1;
                continue;
            }
            if let Some(n) = item.strip_prefix("_x") {
                slot += n.parse::<i64>().expect("_xN");
                continue;
            }
            let Some((head, times)) = item.rsplit_once('x') else {
                samples.push(Sample {
                    t: slot * step_ms,
                    v: parse(item),
                });
                slot += 1;
                continue;
            };
            let times: i64 = times.parse().expect("xK");
            // Split "A+D" / "A-D" at the operator after the first character.
            let (start, d) = match head[1..].find(['+', '-']) {
                Some(i) => {
                    let (a, d) = head.split_at(i + 1);
                    (parse(a), parse(d))
                }
                None => (parse(head), 0.0),
            };
            for k in 0..=times {
                samples.push(Sample {
                    t: slot * step_ms,
                    v: start + d * k as f64,
                });
                slot += 1;
            }
        }
        Series { samples }
    }

    /// The window `(at - range, at]`.
    pub fn window(&self, at_ms: i64, range_ms: i64) -> Window<'_> {
        let start = at_ms - range_ms;
        let lo = self.samples.partition_point(|s| s.t <= start);
        let hi = self.samples.partition_point(|s| s.t <= at_ms);
        Window::new(&self.samples[lo..hi], start, at_ms)
    }

    /// Samples in `(from, to]`.
    pub fn between(&self, from_ms: i64, to_ms: i64) -> &[Sample] {
        let lo = self.samples.partition_point(|s| s.t <= from_ms);
        let hi = self.samples.partition_point(|s| s.t <= to_ms);
        &self.samples[lo..hi]
    }

    pub fn eval(
        &self,
        at_ms: i64,
        range_ms: i64,
        f: impl Fn(&Window) -> Option<f64>,
    ) -> Option<f64> {
        f(&self.window(at_ms, range_ms))
    }
}

fn parse(s: &str) -> f64 {
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        "nan" => f64::NAN,
        _ => s.parse().unwrap_or_else(|_| panic!("bad number {s:?}")),
    }
}

/// Equal within a relative 1e-6 (or both NaN, or both None).
#[track_caller]
pub fn assert_close(got: Option<f64>, want: Option<f64>) {
    let ok = match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) => {
            (g.is_nan() && w.is_nan())
                || g == w
                || ((g - w).abs() / (g.abs() + w.abs()).min(f64::MAX) < 1e-6)
        }
        _ => false,
    };
    assert!(ok, "got {got:?}, want {want:?}");
}

#[test]
fn load_notation() {
    let v: Vec<f64> = Series::load(1, "1+2x2 _ 10-2x1 -1-1x1 5x1 _x2 7")
        .samples
        .iter()
        .map(|s| s.v)
        .collect();
    assert_eq!(v, [1.0, 3.0, 5.0, 10.0, 8.0, -1.0, -2.0, 5.0, 5.0, 7.0]);
    let t: Vec<i64> = Series::load(10, "1 _ 2 _x2 3")
        .samples
        .iter()
        .map(|s| s.t)
        .collect();
    assert_eq!(t, [0, 20, 50]);
}
