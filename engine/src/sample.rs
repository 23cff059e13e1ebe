//! The sample type and the write batch the engine ingests.
//!
//! A sample is a millisecond timestamp and a float value. Values are kept
//! bit-exact end to end: the Prometheus stale marker is one particular NaN
//! ([`STALE_NAN`]) and must never be canonicalised. Native histograms will
//! arrive as a second value kind beside `Sample`; the WAL and block formats
//! reserve room for them.

use crate::labels::Labels;
use crate::metadata::MetricMetadata;

/// Bit pattern of Prometheus's staleness marker (a signalling NaN).
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// True if `v` is exactly the stale marker (compared by bits, not `is_nan`).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}

/// One float sample: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Equality by timestamp and value bits (so NaNs compare by payload).
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.bit_eq(other)
    }
}
impl Eq for Sample {}

/// Runs shorter than this are searched by bisection in
/// [`first_at_or_after`]: they span a cache line or two anyway.
const INTERPOLATE_FROM: usize = 16;

/// The index of the first sample of `s` (sorted by time) at or after `t`: `s.partition_point(|x| x.t < t)`, found by
/// interpolation. Scrapes come at regular intervals, so the index in
/// proportion to time is at most a few samples off; probing there and
/// galloping reads two or three cache lines where bisecting a long run
/// (a day of 15 s scrapes is 5,760 samples, 90 KiB) reads a dozen, each a
/// miss when the run has gone cold. Irregular runs cost at most twice the
/// bisection's probes.
pub fn first_at_or_after(s: &[Sample], t: i64) -> usize {
    let n = s.len();
    if n < INTERPOLATE_FROM {
        return s.partition_point(|x| x.t < t);
    }
    let (t0, t1) = (s[0].t, s[n - 1].t);
    if t <= t0 {
        return 0;
    }
    if t > t1 {
        return n;
    }
    // t0 < t <= t1, so t1 > t0 and the guess lies in 0..n.
    let span = i128::from(t1) - i128::from(t0);
    let guess = ((i128::from(t) - i128::from(t0)) * (n - 1) as i128 / span) as usize;
    partition_point_near(s, guess, |x| x.t < t)
}

/// `s.partition_point(pred)`, searched outward from `guess` by galloping
/// (probes 1, 2, 4, ... away, then bisection between the last two): a few
/// probes near a good guess, at most about twice bisection's for a bad one.
pub fn partition_point_near<T>(s: &[T], guess: usize, pred: impl Fn(&T) -> bool) -> usize {
    let n = s.len();
    if n == 0 {
        return 0;
    }
    let guess = guess.min(n - 1);
    let (lo, hi) = if pred(&s[guess]) {
        // The answer is past `guess`: gallop right from it.
        let (mut lo, mut step) = (guess + 1, 1);
        loop {
            let probe = lo + step;
            if probe >= n {
                break (lo, n);
            }
            if !pred(&s[probe]) {
                break (lo, probe);
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // The answer is `guess` or before: gallop left.
        let (mut hi, mut step) = (guess, 1);
        loop {
            let Some(probe) = hi.checked_sub(step) else {
                break (0, hi);
            };
            if pred(&s[probe]) {
                break (probe + 1, hi);
            }
            hi = probe;
            step *= 2;
        }
    };
    // The answer lies in lo..=hi: `pred` holds before `lo` and fails at
    // `hi` (if in `s`).
    lo + s[lo..hi].partition_point(pred)
}

/// Samples for one series, in any order.
#[derive(Debug, Clone, Default)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    /// The samples' start timestamps (when each sample's value began
    /// accumulating, as remote write 2.0 and OpenTelemetry send them; ms,
    /// 0 = unknown): one per sample, or none at all.
    pub start_timestamps: Vec<i64>,
}

impl SeriesSamples {
    /// Samples without start timestamps.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> SeriesSamples {
        SeriesSamples {
            labels,
            samples,
            start_timestamps: Vec::new(),
        }
    }
}

/// What one request asks the engine to store. A batch is applied whole or not
/// at all: [`crate::Db::append`] validates every sample before it changes
/// anything.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub series: Vec<SeriesSamples>,
    pub metadata: Vec<MetricMetadata>,
}

impl WriteBatch {
    pub fn num_samples(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against bisection, over regular runs with jitter and gaps (where
        /// interpolation guesses near) and arbitrary sorted times (where it
        /// may guess far), for targets inside, between and outside them.
        #[test]
        fn first_at_or_after_is_partition_point(
            start in -1_000_000i64..1_000_000,
            steps in proptest::collection::vec((1i64..30_000, 0u8..4), 0..300),
            regular in any::<bool>(),
            probes in proptest::collection::vec(-1_100_000i64..10_000_000, 1..40),
        ) {
            let mut t = start;
            let mut s = Vec::with_capacity(steps.len());
            for &(gap, kind) in &steps {
                s.push(Sample::new(t, 0.0));
                t += if regular {
                    // 15 s scrapes, a little late or early, now and then missed.
                    15_000 + gap % 200 - 100 + if kind == 0 { 15_000 * (gap % 40) } else { 0 }
                } else {
                    gap
                };
            }
            for &p in &probes {
                prop_assert_eq!(first_at_or_after(&s, p), s.partition_point(|x| x.t < p), "target {}", p);
            }
            for x in &s {
                for d in [-1, 0, 1] {
                    let p = x.t + d;
                    prop_assert_eq!(first_at_or_after(&s, p), s.partition_point(|x| x.t < p), "target {}", p);
                }
            }
        }
    }

    proptest! {
        /// From any guess, in or past the slice.
        #[test]
        fn partition_point_near_is_partition_point(
            mut v in proptest::collection::vec(0u32..1000, 0..200),
            guess in 0usize..250,
            x in 0u32..1001,
        ) {
            v.sort_unstable();
            prop_assert_eq!(partition_point_near(&v, guess, |&y| y < x), v.partition_point(|&y| y < x));
        }
    }

    #[test]
    fn first_at_or_after_at_the_ends_and_extremes() {
        let s: Vec<Sample> = (0..100).map(|i| Sample::new(i * 10, 0.0)).collect();
        for (t, want) in [
            (i64::MIN, 0),
            (-5, 0),
            (0, 0),
            (1, 1),
            (985, 99),
            (990, 99),
            (991, 100),
            (i64::MAX, 100),
        ] {
            assert_eq!(first_at_or_after(&s, t), want, "target {t}");
        }
        let wide = [
            Sample::new(i64::MIN, 0.0),
            Sample::new(0, 0.0),
            Sample::new(i64::MAX, 0.0),
        ];
        let mut long = wide.to_vec();
        long.splice(1..1, (0..20).map(|i| Sample::new(i64::MIN / 2 + i, 0.0)));
        for t in [
            i64::MIN,
            i64::MIN + 1,
            i64::MIN / 2 + 5,
            -1,
            0,
            1,
            i64::MAX - 1,
            i64::MAX,
        ] {
            assert_eq!(
                first_at_or_after(&long, t),
                long.partition_point(|x| x.t < t),
                "target {t}"
            );
        }
        assert_eq!(first_at_or_after(&[], 5), 0);
    }
}
