//! Silt's Prometheus remote-write receiver (protocol 1.0 and 2.0).
//!
//! Input to output: an HTTP `POST` body (snappy- or zstd-compressed protobuf)
//! → [`decode`] (content negotiation, bounded decompression, a streaming
//! protobuf decoder that checks every limit before it allocates, label
//! validation, merging of repeated series) → an [`engine::WriteBatch`] →
//! [`engine::Db::append`] → a durable commit → `204 No Content`.
//!
//! * [`decode`] is the pure, synchronous core: bytes in, [`Decoded`] or an
//!   [`IngestError`] out. It never panics on input (fuzzed in
//!   `fuzz/fuzz_targets/remote_write_v*.rs`).
//! * [`Ingest`] and [`routes`] are the axum layer: body limits, overload
//!   control, metrics and the `X-Prometheus-Remote-Write-*-Written` headers.
//! * [`proto`] holds the protobuf messages of both protocol versions as prost
//!   structs, for senders, tests and benchmarks.
//!
//! **Invariant:** every [`engine::Labels`] this crate hands to the engine came
//! out of [`engine::Labels::from_pairs`], has a metric name, and respects the
//! [`Limits`]. `IngestError::status` is the only place that maps a failure to
//! an HTTP status code.
//!
//! Native histograms and exemplars are decoded and counted but not stored yet:
//! see `docs/ingest.md` for what the receiver answers when a request carries
//! them.

mod decode;
mod decompress;
mod error;
mod http;
mod metrics;
mod negotiate;
pub mod proto;
#[doc(hidden)]
pub mod reference;
mod refs;
mod series;
mod v1;
mod v2;
mod wire;

pub use decode::{Decoded, RequestStats, decode};
pub use error::{IngestError, InvalidSeries, LabelPart, SeriesError};
pub use http::{Ingest, routes};
pub use negotiate::{Encoding, Version, parse_content_encoding, parse_content_type};
pub use refs::RefCache;
pub use wire::WireError;

/// Bounds on what one request may contain. Every limit is checked before the
/// memory it protects is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body (compressed), in bytes. Larger → 413.
    pub max_body_bytes: usize,
    /// Largest decompressed body, in bytes. A snappy header (or zstd frame
    /// header) declaring more → 400 before anything is allocated.
    pub max_decoded_bytes: usize,
    /// Most `TimeSeries` entries in one request. More → 400.
    pub max_series_per_request: usize,
    /// Most labels in one series (as sent, empty values included). More → 400.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes. Longer → 400.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes. Longer → 400.
    pub max_label_value_bytes: usize,
    /// Budget of request bytes (compressed + decompressed) being decoded and
    /// appended at once; when spent, new requests get 503 + `Retry-After`.
    pub max_inflight_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        const MIB: usize = 1 << 20;
        Limits {
            max_body_bytes: 32 * MIB,
            max_decoded_bytes: 64 * MIB,
            max_series_per_request: 100_000,
            max_labels_per_series: 64,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 16 * 1024,
            max_inflight_bytes: 256 * MIB,
        }
    }
}
