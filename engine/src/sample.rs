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

/// Samples for one series, in any order.
#[derive(Debug, Clone, Default)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
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
