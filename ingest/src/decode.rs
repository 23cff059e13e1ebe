//! The synchronous core of the receiver: request bytes → [`Decoded`].

use engine::{Sample, SeriesRef, WriteBatch};

use crate::Limits;
use crate::decompress::decompress_into;
use crate::error::{IngestError, InvalidSeries};
use crate::negotiate::{Encoding, Version, parse_content_encoding, parse_content_type};
use crate::refs::RefCache;

/// What a request contained, as counted while decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Body size as received.
    pub compressed_bytes: usize,
    /// Body size after decompression.
    pub decoded_bytes: usize,
    /// `TimeSeries` entries (before merging repeated series).
    pub series: usize,
    /// Float samples, in valid and invalid series.
    pub samples: usize,
    /// Native histogram samples (not stored yet).
    pub histograms: usize,
    /// Exemplars (not stored yet).
    pub exemplars: usize,
    /// Metadata entries (v1) or series carrying a metadata message (v2).
    pub metadata: usize,
}

/// A decoded request: the batch to append plus what was left out and why.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub version: Version,
    /// Valid series with float samples (repeated series merged, first-seen
    /// order) and deduplicated metadata.
    pub batch: WriteBatch,
    /// Series named by a reference remembered from an earlier request
    /// (repeated series merged), appended with the batch.
    pub refs: Vec<(SeriesRef, Vec<Sample>)>,
    /// The [`crate::RefCache`] key of each `batch.series` entry, if known.
    pub keys: Vec<Option<u128>>,
    pub stats: RequestStats,
    /// Series that were rejected; if any, nothing is written and the
    /// request is answered 400.
    pub invalid: InvalidSeries,
}

impl Decoded {
    /// Float samples the batch holds (what a successful append writes).
    pub fn samples_to_write(&self) -> usize {
        self.batch.num_samples() + self.refs.iter().map(|r| r.1.len()).sum::<usize>()
    }

    /// Nothing to append: no samples, no metadata.
    pub fn is_empty(&self) -> bool {
        self.batch.series.is_empty() && self.refs.is_empty() && self.batch.metadata.is_empty()
    }

    /// The error to answer: invalid series (then nothing was written), or a
    /// request whose data was all of kinds Silt does not store yet. `None`:
    /// answer 2xx.
    pub fn rejection(&self) -> Option<IngestError> {
        if !self.invalid.is_empty() {
            return Some(IngestError::InvalidSeries(self.invalid.clone()));
        }
        let unsupported = self.stats.histograms + self.stats.exemplars;
        if unsupported > 0 && self.samples_to_write() == 0 {
            return Some(IngestError::NothingStorable {
                histograms: self.stats.histograms,
                exemplars: self.stats.exemplars,
            });
        }
        None
    }
}

/// Decodes one remote-write request: `Content-Type` picks the protocol
/// version, `Content-Encoding` the compression (see [`parse_content_type`]
/// and [`parse_content_encoding`]); `body` is the raw HTTP body.
///
/// Request-level problems are errors (415, 413, 400); invalid series are
/// collected in [`Decoded::invalid`] (up to a few reasons) so the 400
/// answer can name them all; the caller then writes nothing.
pub fn decode(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> Result<Decoded, IngestError> {
    let version = parse_content_type(content_type)?;
    let encoding = parse_content_encoding(content_encoding)?;
    decode_body(version, encoding, body, limits, None)
}

/// [`decode`] after negotiation.
pub(crate) fn decode_body(
    version: Version,
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
    refs: Option<&RefCache>,
) -> Result<Decoded, IngestError> {
    if body.len() > limits.max_body_bytes {
        return Err(IngestError::BodyTooLarge {
            limit: limits.max_body_bytes,
        });
    }
    // The decompression buffer is reused per thread: allocating and freeing
    // a large buffer per request costs more than decoding a small request
    // (page faults, and glibc consolidating its free lists on every large free).
    let mut raw = DECODE_BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let result = decompress_into(encoding, body, limits, &mut raw)
        .and_then(|()| decode_raw(version, &raw, limits, refs));
    if raw.capacity() <= RETAINED_BUFFER_BYTES {
        DECODE_BUFFER.with(|b| *b.borrow_mut() = raw);
    }
    let mut decoded = result?;
    decoded.stats.compressed_bytes = body.len();
    Ok(decoded)
}

/// Decompression buffers up to this size are kept for the thread's next request.
const RETAINED_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    static DECODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes an uncompressed protobuf message.
pub(crate) fn decode_raw(
    version: Version,
    raw: &[u8],
    limits: &Limits,
    refs: Option<&RefCache>,
) -> Result<Decoded, IngestError> {
    let mut decoded = match version {
        Version::V1 => crate::v1::decode(raw, limits, refs)?,
        Version::V2 => crate::v2::decode(raw, limits)?,
    };
    decoded.stats.decoded_bytes = raw.len();
    Ok(decoded)
}

#[cfg(test)]
mod tests;
