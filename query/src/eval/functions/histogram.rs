//! `histogram_quantile` and `histogram_fraction` over classic histograms:
//! series with an `le` label holding cumulative bucket counts
//! (Prometheus's `BucketQuantile`, `BucketFraction` and the bucket grouping
//! of `resetHistograms`).
//!
//! Flow for the evaluator: [`Histograms::new`] finds each input series'
//! histogram (labels without `le`) once, then per step
//! [`Histograms::group`] splits the vector into histograms, reporting
//! unparsable `le` values; then [`bucket_quantile`] /
//! [`bucket_fraction`] per group. A [`ForcedMonotonicity`] from
//! `bucket_quantile` becomes an [`Annotation::ForcedMonotonicity`] via
//! [`super::annotations::MonotonicityFix::new`].

use std::cmp::Ordering;

use engine::{Labels, METRIC_NAME, is_stale_nan};

use super::annotations::Annotation;
use crate::eval::groups::{Groups, Keep};

/// The label holding a classic bucket's upper bound.
pub const BUCKET_LABEL: &str = "le";

/// Relative differences between adjacent cumulative counts below this are
/// treated as floating-point noise and flattened silently.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// One classic bucket: its upper bound and cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// One classic histogram of an input vector: the series' labels without
/// `le`, and its buckets in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketGroup {
    pub labels: Labels,
    pub buckets: Vec<Bucket>,
}

/// The classic histograms a set of series belong to, worked out once for
/// every step of a range query: each series' histogram (its labels without
/// `le`, numbered in order of first appearance) and bucket bound, or the
/// annotation its `le` earns: a `le` missing or not a float
/// ([`Annotation::BadBucketLabel`], named after the series' metric name,
/// as with Prometheus's delayed name removal).
pub struct Histograms {
    /// Each histogram's labels, by number.
    labels: Vec<Labels>,
    /// Per series: (histogram, upper bound), or why it is no bucket.
    of: Vec<Result<(usize, f64), Annotation>>,
}

impl Histograms {
    pub fn new<'a>(series: impl IntoIterator<Item = &'a Labels>) -> Histograms {
        let mut groups = Groups::keeping(Keep::AllBut(BUCKET_LABEL));
        let of = series
            .into_iter()
            .map(|l| {
                let le = l.get(BUCKET_LABEL).unwrap_or("");
                match parse_le(le) {
                    Some(upper_bound) => Ok((groups.group(l), upper_bound)),
                    None => Err(Annotation::BadBucketLabel {
                        metric_name: l.get(METRIC_NAME).unwrap_or("").to_string(),
                        le: le.to_string(),
                    }),
                }
            })
            .collect();
        Histograms {
            labels: groups.into_keys(),
            of,
        }
    }

    /// One step's samples `(series, count)` as histograms in order of
    /// first appearance in the step; each sample of a series that is no
    /// bucket pushes its annotation. `slots` is scratch space kept between
    /// steps.
    pub fn group(
        &self,
        samples: impl IntoIterator<Item = (usize, f64)>,
        annotations: &mut Vec<Annotation>,
        slots: &mut Vec<usize>,
    ) -> Vec<BucketGroup> {
        slots.clear();
        slots.resize(self.labels.len(), usize::MAX);
        let mut groups: Vec<BucketGroup> = Vec::new();
        for (i, count) in samples {
            match &self.of[i] {
                Err(a) => annotations.push(a.clone()),
                Ok((g, upper_bound)) => {
                    if slots[*g] == usize::MAX {
                        slots[*g] = groups.len();
                        groups.push(BucketGroup {
                            labels: self.labels[*g].clone(),
                            buckets: Vec::new(),
                        });
                    }
                    groups[slots[*g]].buckets.push(Bucket {
                        upper_bound: *upper_bound,
                        count,
                    });
                }
            }
        }
        groups
    }
}

/// Go's `strconv.ParseFloat(le, 64)` for decimal input: `Inf`/`Infinity`
/// (signed, any case), `NaN` (unsigned, any case), no `_` separators; out
/// of range is an error. Hexadecimal floats are not accepted.
pub fn parse_le(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if !unsigned
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Where `histogram_quantile` had to raise bucket counts to make them
/// monotonic (counts must not decrease with the upper bound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForcedMonotonicity {
    pub min_bucket: f64,
    pub max_bucket: f64,
    pub max_diff: f64,
}

/// The result of [`bucket_quantile`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    pub value: f64,
    /// Set when decreasing counts were flattened (report it as an info).
    pub forced_monotonicity: Option<ForcedMonotonicity>,
}

/// The `q`-quantile of a classic histogram, interpolating linearly within
/// the bucket that holds the rank. Sorts and coalesces `buckets` in place.
///
/// Rules (Prometheus's `BucketQuantile`): NaN `q` → NaN, `q < 0` → -Inf,
/// `q > 1` → +Inf; no `+Inf` bucket, fewer than two buckets or zero
/// observations → NaN. Buckets with equal bounds are summed; decreasing
/// counts are flattened (reported) after tiny relative differences are
/// ignored (not reported). A rank in the `+Inf` bucket gives the
/// second-highest bound; the lowest bucket is assumed to start at 0 when
/// its bound is positive, and its bound is returned when it is ≤ 0.
pub fn bucket_quantile(q: f64, buckets: &mut [Bucket]) -> BucketQuantile {
    let done = |value| BucketQuantile {
        value,
        forced_monotonicity: None,
    };
    if q.is_nan() {
        return done(f64::NAN);
    }
    if q < 0.0 {
        return done(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return done(f64::INFINITY);
    }
    let Some(len) = sort_and_coalesce(buckets) else {
        return done(f64::NAN);
    };
    let buckets = &mut buckets[..len];
    let forced_monotonicity = ensure_monotonic(buckets, SMALL_DELTA_TOLERANCE);
    let with = |value| BucketQuantile {
        value,
        forced_monotonicity,
    };
    if buckets.len() < 2 {
        return with(f64::NAN);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return with(f64::NAN);
    }
    let mut rank = q * observations;
    // First bucket (excluding +Inf) whose count reaches the rank.
    let last = buckets.len() - 1;
    let b = buckets[..last]
        .partition_point(|x| matches!(x.count.partial_cmp(&rank), Some(Ordering::Less) | None));
    let value = if b == last {
        buckets[last - 1].upper_bound
    } else if b == 0 && buckets[0].upper_bound <= 0.0 {
        buckets[0].upper_bound
    } else {
        let bucket_end = buckets[b].upper_bound;
        let mut bucket_start = 0.0;
        let mut count = buckets[b].count;
        if b > 0 {
            bucket_start = buckets[b - 1].upper_bound;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        bucket_start + (bucket_end - bucket_start) * (rank / count)
    };
    with(value)
}

/// `histogram_fraction(lower, upper)` of a classic histogram: the
/// estimated share of observations in `[lower, upper]`, interpolating
/// linearly within buckets (observations in the `+Inf` bucket and in a
/// `-Inf`-based first bucket count only as whole buckets). Sorts and
/// coalesces `buckets` in place.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [Bucket]) -> f64 {
    let Some(len) = sort_and_coalesce(buckets) else {
        return f64::NAN;
    };
    let buckets = &buckets[..len];
    let count = buckets[len - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let mut rank = 0.0;
    let mut lower_rank = None;
    let mut upper_rank = None;
    let mut lower_bound = if buckets[0].upper_bound <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper_bound;
        }
        let upper_bound = b.upper_bound;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if lower_rank.is_none() && lower_bound >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && lower_bound >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        if lower_rank.is_none() && lower_bound < lower && upper_bound > lower {
            lower_rank = Some(interpolate(lower));
        }
        if upper_rank.is_none() && lower_bound < upper && upper_bound > upper {
            upper_rank = Some(interpolate(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = b.count;
    }
    let cap = |r: Option<f64>| match r {
        Some(r) if r.partial_cmp(&count) != Some(Ordering::Greater) => r,
        _ => count,
    };
    (cap(upper_rank) - cap(lower_rank)) / count
}

/// Sorts by upper bound, requires the last bound to be +Inf and sums
/// buckets with equal bounds. Returns the new length, or `None` when the
/// input is empty or lacks a +Inf bucket.
fn sort_and_coalesce(buckets: &mut [Bucket]) -> Option<usize> {
    // total_cmp: a total order (never panics); a NaN bound sorts after +Inf,
    // which makes the histogram invalid, as it has no defined place.
    buckets.sort_unstable_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
    if buckets.last()?.upper_bound != f64::INFINITY {
        return None;
    }
    let mut i = 0;
    for j in 1..buckets.len() {
        if buckets[j].upper_bound == buckets[i].upper_bound {
            buckets[i].count += buckets[j].count;
        } else {
            i += 1;
            buckets[i] = buckets[j];
        }
    }
    Some(i + 1)
}

/// Flattens decreasing cumulative counts (Prometheus's
/// `ensureMonotonicAndIgnoreSmallDeltas`).
fn ensure_monotonic(buckets: &mut [Bucket], tolerance: f64) -> Option<ForcedMonotonicity> {
    let mut fix: Option<ForcedMonotonicity> = None;
    let mut prev = buckets.first()?.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            let f = fix.get_or_insert(ForcedMonotonicity {
                min_bucket: f64::INFINITY,
                max_bucket: f64::NEG_INFINITY,
                max_diff: 0.0,
            });
            if b.upper_bound < f.min_bucket {
                f.min_bucket = b.upper_bound;
            }
            if b.upper_bound > f.max_bucket {
                f.max_bucket = b.upper_bound;
            }
            if prev - curr > f.max_diff {
                f.max_diff = prev - curr;
            }
            continue;
        }
        prev = curr;
    }
    fix
}

/// Prometheus's `almost.Equal`: both stale markers, both NaN, or a relative
/// difference below `epsilon`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(upper_bound, count)| Bucket { upper_bound, count })
            .collect()
    }

    fn q(phi: f64, pairs: &[(f64, f64)]) -> f64 {
        bucket_quantile(phi, &mut buckets(pairs)).value
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    const INF: f64 = f64::INFINITY;

    // histograms.test: testhistogram_bucket / testhistogram3_bucket at 50m.
    #[test]
    fn quantile_script_cases() {
        let positive = [(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 120.0)];
        let negative = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (INF, 30.0)];
        assert!(close(q(0.0, &positive), 0.0));
        assert!(close(q(0.25, &positive), 0.06));
        assert!(close(q(0.5, &positive), 0.15));
        assert!(close(q(0.75, &positive), 0.6));
        assert!(close(q(1.0, &positive), 1.0));
        assert!(close(q(0.0, &negative), -0.2));
        assert!(close(q(0.5, &negative), -0.15));
        assert!(close(q(1.0, &negative), 0.3));
        // testhistogram2: q(1/6), q(1/2), q(5/6) in bucket middles.
        let h2 = [
            (0.0, 0.0),
            (2.0, 10.0),
            (4.0, 20.0),
            (6.0, 30.0),
            (INF, 30.0),
        ];
        assert!(close(q(1.0 / 6.0, &h2), 1.0));
        assert!(close(q(0.5, &h2), 3.0));
        assert!(close(q(5.0 / 6.0, &h2), 5.0));
        // testhistogram3 negative starts at -0.25 with an empty first bucket.
        let h3 = [
            (-0.25, 0.0),
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (INF, 20.0),
        ];
        assert!(close(q(0.0, &h3), -0.25));
        let h3p = [
            (0.0, 0.0),
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (INF, 110.0),
        ];
        assert!(close(q(0.0, &h3p), 0.0));
        assert!(close(q(0.25, &h3p), 0.055));
        // Out-of-range φ.
        assert_eq!(q(-0.1, &positive), f64::NEG_INFINITY);
        assert_eq!(q(1.01, &positive), INF);
        assert!(q(f64::NAN, &positive).is_nan());
    }

    #[test]
    fn quantile_invalid_inputs() {
        assert!(
            q(0.5, &[(1.0, 5.0), (2.0, 10.0)]).is_nan(),
            "no +Inf bucket"
        );
        assert!(q(0.5, &[(INF, 10.0)]).is_nan(), "single bucket");
        assert!(
            q(0.5, &[(1.0, 0.0), (INF, 0.0)]).is_nan(),
            "no observations"
        );
        assert!(q(0.5, &[]).is_nan());
        // A NaN bound makes the histogram invalid rather than panicking.
        assert!(q(0.5, &[(f64::NAN, 1.0), (1.0, 1.0), (INF, 2.0)]).is_nan());
    }

    // histograms.test: mixed_bucket (equal bounds written differently are
    // summed after parsing) and rank in the +Inf bucket.
    #[test]
    fn coalescing_and_inf_bucket() {
        let les = ["0.1", "0.2", "2e-1", "2.0e-1", "+Inf"];
        let counts = [1.0, 1.0, 1.0, 1.0, 4.0];
        let mut b: Vec<Bucket> = les
            .iter()
            .zip(counts)
            .map(|(le, count)| Bucket {
                upper_bound: parse_le(le).unwrap(),
                count,
            })
            .collect();
        // Buckets: 0.1→1, 0.2→3, +Inf→4; rank 2 is in (0.1, 0.2].
        assert!(close(bucket_quantile(0.5, &mut b).value, 0.15));
        // Rank in the +Inf bucket returns the second-highest bound.
        assert_eq!(q(0.99, &[(1.0, 1.0), (2.0, 2.0), (INF, 10.0)]), 2.0);
    }

    // histograms.test: nonmonotonic_bucket at 50m.
    #[test]
    fn monotonicity_is_forced() {
        let h = [
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (INF, 80.0),
        ];
        let r = bucket_quantile(0.01, &mut buckets(&h));
        assert!(close(r.value, 0.0045));
        assert_eq!(
            r.forced_monotonicity,
            Some(ForcedMonotonicity {
                min_bucket: 1.0,
                max_bucket: INF,
                max_diff: 10.0
            })
        );
        assert!(close(q(0.5, &h), 8.5));
        assert!(close(q(0.99, &h), 979.75));
        // Tiny relative noise is flattened silently.
        let noisy = [(1.0, 1e13), (2.0, 1e13 - 1.0), (INF, 1e13)];
        let r = bucket_quantile(0.5, &mut buckets(&noisy));
        assert_eq!(r.forced_monotonicity, None);
        assert!(close(r.value, 0.5));
    }

    // histograms.test "Test histogram_fraction" (classic variants).
    #[test]
    fn fraction_script_cases() {
        let f = |lo, hi, pairs: &[(f64, f64)]| bucket_fraction(lo, hi, &mut buckets(pairs));
        let h2 = [
            (0.0, 0.0),
            (2.0, 10.0),
            (4.0, 20.0),
            (6.0, 30.0),
            (INF, 30.0),
        ];
        assert!(close(f(0.0, 4.0, &h2), 0.6666666666666666));
        assert!(close(f(0.0, 6.0, &h2), 1.0));
        assert!(close(f(0.0, 3.5, &h2), 0.5833333333333334));
        let h3 = [
            (0.0, 0.0),
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (INF, 110.0),
        ];
        assert!(close(f(0.0, 0.2, &h3), 0.6363636363636364));
        let h3n = [
            (-0.25, 0.0),
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (INF, 20.0),
        ];
        assert!(close(f(0.0, 0.2, &h3n), 0.0));
        let first = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
        assert!(close(f(0.0, 1.5, &first), 0.02));
        let neg_inf = [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (INF, 100.0)];
        assert!(close(f(f64::NEG_INFINITY, -1.5, &neg_inf), 0.135));
        assert!(close(f(f64::NEG_INFINITY, INF, &neg_inf), 1.0));
        assert!(close(f(f64::NEG_INFINITY, INF, &first), 1.0));
        assert_eq!(f(2.0, 2.0, &first), 0.0);
        assert_eq!(f(3.0, 2.0, &first), 0.0);
        assert!(f(f64::NAN, 1.0, &first).is_nan());
        assert!(f(0.0, f64::NAN, &first).is_nan());
        assert!(f(0.0, 5.0, &[(1.0, 0.0), (INF, 0.0)]).is_nan());
        assert!(f(0.0, 5.0, &[(1.0, 1.0)]).is_nan(), "no +Inf bucket");
        assert_eq!(f(4.0, 5.0, &first), 0.0, "both in the +Inf bucket");
    }

    #[test]
    fn parse_le_follows_go() {
        assert_eq!(parse_le("0.1"), Some(0.1));
        assert_eq!(parse_le(".2"), Some(0.2));
        assert_eq!(parse_le("1e0"), Some(1.0));
        assert_eq!(parse_le("+Inf"), Some(INF));
        assert_eq!(parse_le("+inf"), Some(INF));
        assert_eq!(parse_le("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_le("NaN").unwrap().is_nan());
        assert_eq!(parse_le("+NaN"), None);
        assert_eq!(parse_le(""), None);
        assert_eq!(parse_le("Hello World"), None);
        assert_eq!(parse_le("1_000"), None);
        assert_eq!(parse_le("1e999"), None);
        assert_eq!(parse_le(" 1"), None);
    }

    #[test]
    fn grouping_drops_le_and_reports_bad_labels() {
        let a1 = Labels::new(&[("__name__", "h_bucket"), ("job", "a"), ("le", "1")]);
        let b1 = Labels::new(&[("__name__", "h_bucket"), ("job", "b"), ("le", "+Inf")]);
        let a2 = Labels::new(&[("__name__", "h_bucket"), ("job", "a"), ("le", "+Inf")]);
        let bad = Labels::new(&[("__name__", "series"), ("le", "Hello World")]);
        let none = Labels::new(&[("__name__", "series")]);
        let mut annos = Vec::new();
        let histograms = Histograms::new([&a1, &b1, &bad, &a2, &none]);
        let samples = [1.0, 2.0, 3.0, 4.0, 5.0].into_iter().enumerate();
        let groups = histograms.group(samples, &mut annos, &mut Vec::new());
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].labels,
            Labels::new(&[("__name__", "h_bucket"), ("job", "a")])
        );
        assert_eq!(groups[0].buckets, buckets(&[(1.0, 1.0), (INF, 4.0)]));
        assert_eq!(groups[1].buckets, buckets(&[(INF, 2.0)]));
        assert_eq!(
            annos,
            vec![
                Annotation::BadBucketLabel {
                    metric_name: "series".into(),
                    le: "Hello World".into()
                },
                Annotation::BadBucketLabel {
                    metric_name: "series".into(),
                    le: String::new()
                },
            ]
        );
    }

    /// The grouping as the evaluator did it step by step before
    /// [`Histograms`]: a label set without `le` built per sample and looked
    /// up in a map.
    fn model_groups(samples: &[(&Labels, f64)]) -> (Vec<BucketGroup>, Vec<Annotation>) {
        let (mut groups, mut annos) = (Vec::<BucketGroup>::new(), Vec::new());
        let mut index: std::collections::HashMap<Labels, usize> = Default::default();
        for &(labels, count) in samples {
            let le = labels.get(BUCKET_LABEL).unwrap_or("");
            let Some(upper_bound) = parse_le(le) else {
                annos.push(Annotation::BadBucketLabel {
                    metric_name: labels.get(METRIC_NAME).unwrap_or("").to_string(),
                    le: le.to_string(),
                });
                continue;
            };
            let key = Labels::from_sorted(
                labels
                    .iter()
                    .filter(|l| l.name != BUCKET_LABEL)
                    .cloned()
                    .collect(),
            );
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push(BucketGroup {
                    labels: key,
                    buckets: Vec::new(),
                });
                groups.len() - 1
            });
            groups[i].buckets.push(Bucket { upper_bound, count });
        }
        (groups, annos)
    }

    /// A range query's steps see different series, in series order: each
    /// step's groups are those a map built for that step alone gives.
    #[test]
    fn histograms_found_once_group_each_step_as_a_map_per_step_does() {
        let series = [
            Labels::new(&[("job", "b"), ("le", "1")]),
            Labels::new(&[("job", "a"), ("le", "1")]),
            Labels::new(&[("le", "x")]),
            Labels::new(&[("job", "a"), ("le", "+Inf")]),
            Labels::new(&[("job", "b"), ("le", "+Inf")]),
            Labels::new(&[("__name__", "h"), ("job", "a"), ("le", "2")]),
        ];
        let histograms = Histograms::new(series.iter());
        let mut slots = Vec::new();
        let steps: [&[usize]; 5] = [&[0, 1, 2, 3, 4, 5], &[1, 3], &[3, 4, 0], &[], &[2, 5]];
        for (k, step) in steps.iter().enumerate() {
            let samples: Vec<(usize, f64)> =
                step.iter().map(|&i| (i, (k * 10 + i) as f64)).collect();
            let mut got_annos = Vec::new();
            let got = histograms.group(samples.iter().copied(), &mut got_annos, &mut slots);
            let labelled: Vec<(&Labels, f64)> =
                samples.iter().map(|&(i, x)| (&series[i], x)).collect();
            let (want, want_annos) = model_groups(&labelled);
            assert_eq!(got, want, "step {k}");
            assert_eq!(got_annos, want_annos, "step {k}");
        }
        // The first step: `job="b"` first, and the named series apart.
        let first = histograms.group((0..6).map(|i| (i, 1.0)), &mut Vec::new(), &mut slots);
        let labels: Vec<String> = first.iter().map(|g| g.labels.to_string()).collect();
        assert_eq!(labels, [r#"{job="b"}"#, r#"{job="a"}"#, r#"h{job="a"}"#]);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Arbitrary buckets (NaN bounds and counts included) never
            // panic; for a valid histogram the quantile lies between the
            // lowest bound (or 0) and the second-highest bound.
            #[test]
            fn quantile_is_bounded(
                bounds in prop::collection::vec(prop_oneof![-100.0f64..100.0, Just(f64::NAN)], 0..8),
                counts in prop::collection::vec(prop_oneof![0.0f64..1e6, Just(f64::NAN)], 8),
                q in prop_oneof![0.0f64..=1.0, Just(f64::NAN), Just(-1.0), Just(2.0)],
                with_inf in any::<bool>(),
            ) {
                let mut b: Vec<Bucket> = bounds
                    .iter()
                    .zip(&counts)
                    .map(|(&upper_bound, &count)| Bucket { upper_bound, count })
                    .collect();
                if with_inf {
                    b.push(Bucket { upper_bound: f64::INFINITY, count: counts[7] });
                }
                let valid = b.iter().all(|x| !x.upper_bound.is_nan() && !x.count.is_nan());
                let finite: Vec<f64> = b.iter().map(|x| x.upper_bound).filter(|u| u.is_finite()).collect();
                let _ = bucket_fraction(0.0, 1.0, &mut b.clone());
                let r = bucket_quantile(q, &mut b).value;
                if valid && (0.0..=1.0).contains(&q) && !r.is_nan() {
                    let lo = finite.iter().copied().fold(0.0f64, f64::min);
                    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    prop_assert!(r >= lo - 1e-9 && r <= hi + 1e-9, "{r} not in [{lo}, {hi}]");
                }
            }
        }
    }
}
