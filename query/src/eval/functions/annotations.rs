//! The warnings and infos PromQL functions report (Prometheus's
//! `util/annotations`). Functions return an [`Annotation`]; the evaluator
//! de-duplicates them by [`Annotation::key`], merges repeats with
//! [`Annotation::merge`] and renders [`Annotation::message`] followed by
//! ` (<line>:<col>)` of the argument the annotation refers to.

use crate::gofmt;

/// Whether an annotation is a warning or an info (the API returns them in
/// separate lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Warning,
    Info,
}

/// One annotation, without its position.
#[derive(Debug, Clone, PartialEq)]
pub enum Annotation {
    /// `rate`/`increase` over a float series whose name does not end in
    /// `_total`, `_sum`, `_count` or `_bucket` (see [`possible_non_counter`]).
    /// Position: the range argument.
    PossibleNonCounter { metric_name: String },
    /// A quantile parameter that is NaN or outside [0, 1] (`quantile`,
    /// `quantile_over_time`, `histogram_quantile`). Position: the parameter.
    InvalidQuantile { value: f64 },
    /// `limit_ratio` with a ratio outside [-1, 1]. Position: the parameter.
    InvalidRatio { value: f64, capped_to: f64 },
    /// A classic-histogram sample whose `le` label is missing or not a
    /// float. `metric_name` is empty when unknown. Position: the vector
    /// argument.
    BadBucketLabel { metric_name: String, le: String },
    /// `histogram_quantile` had to make bucket counts monotonic. Repeats
    /// (other series or steps with the same metric name) are merged into
    /// one annotation. Position: the vector argument.
    ForcedMonotonicity(MonotonicityFix),
    /// `sort`/`sort_desc` in a range query. Position: the call.
    SortInRangeQuery,
    /// A Silt forecasting function (`silt_*`) skipped a series too short
    /// to fit. Position: the range argument.
    ForecastTooShort { function: &'static str },
    /// `rate`/`increase` saw a sample whose start timestamp reaches back
    /// before the previous sample without being its start: the two count
    /// some events twice. Repeats (other windows and series of the metric)
    /// merge, counting their `count`s. Position: the range argument.
    StartTimeOverlap { metric_name: String, count: u64 },
}

/// Details of a monotonicity fix, accumulated over merged repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct MonotonicityFix {
    /// Empty when unknown.
    pub metric_name: String,
    /// Evaluation times (ms) of the first and last fixed sample.
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// Smallest and largest upper bound of a bucket that was raised.
    pub min_bucket: f64,
    pub max_bucket: f64,
    /// The largest decrease that was removed.
    pub max_diff: f64,
    /// How many histograms needed fixing.
    pub samples: u64,
}

impl MonotonicityFix {
    /// A fix of one histogram at evaluation time `ts_ms`, from the bucket
    /// data [`super::histogram::bucket_quantile`] reports.
    pub fn new(
        metric_name: impl Into<String>,
        ts_ms: i64,
        fix: super::histogram::ForcedMonotonicity,
    ) -> Self {
        MonotonicityFix {
            metric_name: metric_name.into(),
            min_ts_ms: ts_ms,
            max_ts_ms: ts_ms,
            min_bucket: fix.min_bucket,
            max_bucket: fix.max_bucket,
            max_diff: fix.max_diff,
            samples: 1,
        }
    }
}

/// The info `rate` and `increase` attach to a float series that might not
/// be a counter: the metric name is set and lacks a counter suffix. The
/// evaluator calls this per series that produced output.
pub fn possible_non_counter(metric_name: &str) -> Option<Annotation> {
    const SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];
    if metric_name.is_empty() || SUFFIXES.iter().any(|s| metric_name.ends_with(s)) {
        return None;
    }
    Some(Annotation::PossibleNonCounter {
        metric_name: metric_name.to_string(),
    })
}

/// The warning for a quantile parameter outside [0, 1] (or NaN), if any.
pub fn check_quantile(q: f64) -> Option<Annotation> {
    (q.is_nan() || !(0.0..=1.0).contains(&q)).then_some(Annotation::InvalidQuantile { value: q })
}

const MONOTONICITY_TEXT: &str = "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)";

impl Annotation {
    pub fn severity(&self) -> Severity {
        match self {
            Annotation::PossibleNonCounter { .. } | Annotation::ForcedMonotonicity(_) => {
                Severity::Info
            }
            Annotation::InvalidQuantile { .. }
            | Annotation::InvalidRatio { .. }
            | Annotation::BadBucketLabel { .. }
            | Annotation::SortInRangeQuery
            | Annotation::StartTimeOverlap { .. } => Severity::Warning,
            Annotation::ForecastTooShort { .. } => Severity::Info,
        }
    }

    /// The de-duplication key: annotations with equal keys are one
    /// annotation (Prometheus keys its set by the message without query
    /// details). Combine them with [`Annotation::merge`].
    pub fn key(&self) -> String {
        match self {
            Annotation::ForcedMonotonicity(fix) => with_metric_name(
                format!("PromQL info: {MONOTONICITY_TEXT}"),
                &fix.metric_name,
            ),
            Annotation::StartTimeOverlap { metric_name, .. } => format!(
                "PromQL warning: sample has start time that overlaps with previous sample timestamp for metric {}",
                gofmt::quote(metric_name)
            ),
            _ => self.message(),
        }
    }

    /// Folds a repeat (same [`Annotation::key`]) into `self`. Only the
    /// monotonicity info accumulates (time span, bucket span, max diff,
    /// count), and the start overlaps' count; for the others the texts are
    /// identical and nothing changes.
    pub fn merge(&mut self, other: &Annotation) {
        if let (
            Annotation::StartTimeOverlap { count, .. },
            Annotation::StartTimeOverlap { count: more, .. },
        ) = (&mut *self, other)
        {
            *count += more;
            return;
        }
        if let (Annotation::ForcedMonotonicity(a), Annotation::ForcedMonotonicity(b)) =
            (self, other)
        {
            a.min_ts_ms = a.min_ts_ms.min(b.min_ts_ms);
            a.max_ts_ms = a.max_ts_ms.max(b.max_ts_ms);
            if b.min_bucket < a.min_bucket {
                a.min_bucket = b.min_bucket;
            }
            if b.max_bucket > a.max_bucket {
                a.max_bucket = b.max_bucket;
            }
            if b.max_diff > a.max_diff {
                a.max_diff = b.max_diff;
            }
            a.samples += b.samples;
        }
    }

    /// The full text as Prometheus's API shows it, minus the trailing
    /// ` (<line>:<col>)`, e.g. `PromQL warning: quantile value should be
    /// between 0 and 1, got 1.5`.
    pub fn message(&self) -> String {
        match self {
            Annotation::PossibleNonCounter { metric_name } => format!(
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
                gofmt::quote(metric_name)
            ),
            Annotation::InvalidQuantile { value } => format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                format_g(*value, None)
            ),
            Annotation::InvalidRatio { value, capped_to } => format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                format_g(*value, None),
                format_g(*capped_to, None)
            ),
            Annotation::BadBucketLabel { metric_name, le } => with_metric_name(
                format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {}",
                    gofmt::quote(le)
                ),
                metric_name,
            ),
            Annotation::ForcedMonotonicity(fix) => format!(
                "{}, from buckets {} to {}, with a max diff of {}, over {} samples from {} to {}",
                self.key(),
                format_g(fix.min_bucket, None),
                format_g(fix.max_bucket, None),
                format_g(fix.max_diff, Some(2)),
                fix.samples,
                rfc3339(fix.min_ts_ms),
                rfc3339(fix.max_ts_ms),
            ),
            Annotation::StartTimeOverlap { count, .. } if *count > 1 => {
                format!("{} ({count} occurrences)", self.key())
            }
            Annotation::StartTimeOverlap { .. } => self.key(),
            Annotation::SortInRangeQuery => "PromQL warning: sort is ineffective for range queries since results are always ordered by labels".to_string(),
            Annotation::ForecastTooShort { function } => format!(
                "PromQL info: {function}: series too short to fit, skipped (needs at least {} finite samples over {} grid cells)",
                crate::forecast::MIN_SAMPLES,
                crate::forecast::MIN_CELLS
            ),
        }
    }
}

fn with_metric_name(mut text: String, metric_name: &str) -> String {
    if !metric_name.is_empty() {
        text.push_str(" for metric name ");
        text.push_str(&gofmt::quote(metric_name));
    }
    text
}

/// `time.Unix(ms/1000, 0).UTC().Format(time.RFC3339)`.
fn rfc3339(ms: i64) -> String {
    let secs = ms / 1000; // Go's integer division truncates, as Rust's does.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = super::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Go's `%g` (`precision` `None`) and `%.<p>g` for a float.
pub(crate) fn format_g(v: f64, precision: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let neg = v.is_sign_negative();
    let sign = if neg { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    // Decimal digits (no trailing zeros) and the exponent of the first one.
    let sci = match precision {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    let nd = digits.len() as i64;
    let dp = exp + 1; // position of the decimal point relative to the digits
    let (eprec, prec) = match precision {
        None => (6, nd),
        Some(p) => {
            let p = p.max(1) as i64;
            let eprec = if p > nd && nd >= dp { nd } else { p };
            (eprec, p)
        }
    };
    let digit = |i: i64| -> char {
        if (0..nd).contains(&i) {
            char::from(digits[i as usize])
        } else {
            '0'
        }
    };
    let mut out = String::from(sign);
    if exp < -4 || exp >= eprec {
        let prec = prec.min(nd);
        out.push(digit(0));
        if prec > 1 {
            out.push('.');
            (1..prec).for_each(|i| out.push(digit(i)));
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else {
        let prec = if prec > dp { nd } else { prec };
        let decimals = (prec - dp).max(0);
        if dp > 0 {
            (0..dp).for_each(|i| out.push(digit(i)));
        } else {
            out.push('0');
        }
        if decimals > 0 {
            out.push('.');
            (0..decimals).for_each(|i| out.push(digit(dp + i)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_go() {
        for (v, want) in [
            (1.5, "1.5"),
            (-0.5, "-0.5"),
            (2.0, "2"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1, "0.1"),
        ] {
            assert_eq!(format_g(v, None), want, "{v}");
        }
        for (v, want) in [
            (5.0, "5"),
            (1.0, "1"),
            (0.5, "0.5"),
            (123.0, "1.2e+02"),
            (12.0, "12"),
            (0.123456, "0.12"),
            (9.99, "10"),
            (99.9, "1e+02"),
            (0.00001234, "1.2e-05"),
        ] {
            assert_eq!(format_g(v, Some(2)), want, "{v}");
        }
    }

    #[test]
    fn messages_match_prometheus() {
        assert_eq!(
            possible_non_counter("http_requests").unwrap().message(),
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"http_requests\""
        );
        assert_eq!(possible_non_counter("x_total"), None);
        assert_eq!(possible_non_counter("x_bucket"), None);
        assert_eq!(possible_non_counter(""), None);
        assert_eq!(
            check_quantile(f64::NAN).unwrap().message(),
            "PromQL warning: quantile value should be between 0 and 1, got NaN"
        );
        assert_eq!(check_quantile(0.0), None);
        assert_eq!(check_quantile(1.0), None);
        assert_eq!(
            check_quantile(-1.0).unwrap().message(),
            "PromQL warning: quantile value should be between 0 and 1, got -1"
        );
        assert_eq!(
            Annotation::InvalidRatio {
                value: 1.1,
                capped_to: 1.0
            }
            .message(),
            "PromQL warning: ratio value should be between -1 and 1, got 1.1, capping to 1"
        );
        let bad = Annotation::BadBucketLabel {
            metric_name: "series".into(),
            le: "Hello World".into(),
        };
        assert_eq!(
            bad.message(),
            "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"Hello World\" for metric name \"series\""
        );
        assert_eq!(bad.severity(), Severity::Warning);
        assert_eq!(
            Annotation::SortInRangeQuery.message(),
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels"
        );
    }

    #[test]
    fn monotonicity_merges_and_renders() {
        let fix = |ts, min, max, diff| {
            Annotation::ForcedMonotonicity(MonotonicityFix {
                metric_name: "nonmonotonic_bucket".into(),
                min_ts_ms: ts,
                max_ts_ms: ts,
                min_bucket: min,
                max_bucket: max,
                max_diff: diff,
                samples: 1,
            })
        };
        let mut a = fix(3_000_000, 1.0, 100.0, 1.0);
        let b = fix(2_940_000, 0.5, 1000.0, 1.25);
        assert_eq!(a.key(), b.key());
        assert_eq!(a.severity(), Severity::Info);
        a.merge(&b);
        assert_eq!(
            a.message(),
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"nonmonotonic_bucket\", from buckets 0.5 to 1000, with a max diff of 1.2, over 2 samples from 1970-01-01T00:49:00Z to 1970-01-01T00:50:00Z"
        );
    }
}
