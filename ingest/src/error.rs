//! Why a remote-write request failed, and the one mapping from failure to
//! HTTP status code ([`IngestError::status`]).
//!
//! Senders retry 5xx forever and drop the data on any other 4xx, so the
//! split matters: data we will never accept is 400 (or 413/415), transient
//! trouble on our side is 500/503.

use std::fmt;

use crate::wire::WireError;

/// A failed remote-write request.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "unsupported Content-Type {0:?}: expected application/x-protobuf, optionally with \
         proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request"
    )]
    UnsupportedContentType(String),
    #[error(
        "unsupported remote-write message {0:?} in Content-Type: this server accepts \
         prometheus.WriteRequest and io.prometheus.write.v2.Request"
    )]
    UnsupportedProto(String),
    #[error("unsupported Content-Encoding {0:?}: expected snappy or zstd")]
    UnsupportedEncoding(String),
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The compressed body declares (or decompresses to) more than the limit.
    #[error("body decompresses to {declared} bytes, over the limit of {limit} bytes")]
    DecodedTooLarge { declared: u64, limit: usize },
    #[error(
        "body is in the snappy framed (stream) format; remote write requires the snappy block \
         (raw) format"
    )]
    SnappyFramed,
    #[error("invalid snappy block: {0}")]
    Snappy(#[source] snap::Error),
    #[error("invalid zstd body: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("invalid protobuf {message}: {source}")]
    Protobuf {
        message: &'static str,
        #[source]
        source: WireError,
    },
    #[error("request has more than {limit} series (the per-request limit)")]
    TooManySeries { limit: usize },
    #[error("invalid symbol table: symbols[0] must be the empty string, got {0:?}")]
    FirstSymbolNotEmpty(String),
    /// Some series were invalid; nothing of the request was written.
    #[error("{0}")]
    InvalidSeries(InvalidSeries),
    /// The request carried only data kinds Silt does not store yet.
    #[error(
        "nothing in this request was written: Silt does not store native histograms or exemplars \
         yet ({histograms} histogram samples and {exemplars} exemplars received, 0 written); \
         float samples are stored"
    )]
    NothingStorable { histograms: usize, exemplars: usize },
    /// The engine refused the batch (nothing of it was stored). Client errors
    /// keep the engine's message, which for a conflicting sample contains
    /// `duplicate sample for timestamp`.
    #[error("{}", append_message(.0))]
    Append(engine::AppendError),
    /// The batch was accepted but could not be made durable.
    #[error("could not commit the write: {0}")]
    Commit(#[source] engine::Error),
    #[error(
        "overloaded: {requested} bytes requested while the remote-write in-flight budget of \
         {limit} bytes is spent; retry later"
    )]
    Overloaded { requested: usize, limit: usize },
    #[error("internal error: {0}")]
    Internal(String),
}

impl IngestError {
    /// The HTTP status code for this failure; the only such mapping.
    pub fn status(&self) -> u16 {
        match self {
            IngestError::UnsupportedContentType(_)
            | IngestError::UnsupportedProto(_)
            | IngestError::UnsupportedEncoding(_) => 415,
            IngestError::BodyTooLarge { .. } => 413,
            IngestError::BodyRead(_)
            | IngestError::DecodedTooLarge { .. }
            | IngestError::SnappyFramed
            | IngestError::Snappy(_)
            | IngestError::Zstd(_)
            | IngestError::Protobuf { .. }
            | IngestError::TooManySeries { .. }
            | IngestError::FirstSymbolNotEmpty(_)
            | IngestError::InvalidSeries(_)
            | IngestError::NothingStorable { .. } => 400,
            IngestError::Append(e) if e.is_client_error() => 400,
            IngestError::Append(engine::AppendError::Internal(e)) | IngestError::Commit(e) => {
                engine_status(e)
            }
            IngestError::Append(_) => 500,
            IngestError::Overloaded { .. } => 503,
            IngestError::Internal(_) => 500,
        }
    }

    /// A short, stable label for metrics (`reason="..."`).
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::UnsupportedContentType(_) => "unsupported_content_type",
            IngestError::UnsupportedProto(_) => "unsupported_proto",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
            IngestError::BodyTooLarge { .. } => "body_too_large",
            IngestError::BodyRead(_) => "body_read",
            IngestError::DecodedTooLarge { .. } => "decoded_too_large",
            IngestError::SnappyFramed | IngestError::Snappy(_) => "invalid_snappy",
            IngestError::Zstd(_) => "invalid_zstd",
            IngestError::Protobuf { .. } | IngestError::FirstSymbolNotEmpty(_) => {
                "invalid_protobuf"
            }
            IngestError::TooManySeries { .. } => "too_many_series",
            IngestError::InvalidSeries(_) => "invalid_series",
            IngestError::NothingStorable { .. } => "unsupported_data",
            IngestError::Append(engine::AppendError::Duplicate { .. }) => "duplicate_timestamp",
            IngestError::Append(engine::AppendError::TooFarInFuture { .. }) => "too_far_in_future",
            IngestError::Append(engine::AppendError::TooOld { .. }) => "too_old",
            IngestError::Append(engine::AppendError::NoMetricName { .. }) => "no_metric_name",
            IngestError::Append(_) | IngestError::Commit(_) | IngestError::Internal(_) => {
                "internal"
            }
            IngestError::Overloaded { .. } => "overloaded",
        }
    }
}

/// The engine's message; a conflicting sample always carries the phrase
/// `duplicate sample for timestamp`, which Grafana's recording-rule writer
/// recognises and ignores.
fn append_message(e: &engine::AppendError) -> String {
    let msg = e.to_string();
    match e {
        engine::AppendError::Duplicate { .. } if !msg.contains(DUPLICATE_PHRASE) => {
            format!("{DUPLICATE_PHRASE}: {msg}")
        }
        _ => msg,
    }
}

const DUPLICATE_PHRASE: &str = "duplicate sample for timestamp";

/// A closed database is a transient condition (shutdown, restart): 503 so the
/// sender retries elsewhere or later. Everything else internal is 500.
fn engine_status(e: &engine::Error) -> u16 {
    match e {
        engine::Error::Closed => 503,
        _ => 500,
    }
}

/// Which part of a label was bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPart {
    Name,
    Value,
    MetadataHelp,
    MetadataUnit,
}

impl fmt::Display for LabelPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelPart::Name => "label name",
            LabelPart::Value => "label value",
            LabelPart::MetadataHelp => "metadata help",
            LabelPart::MetadataUnit => "metadata unit",
        })
    }
}

/// Why one series of a request was rejected. `series` is the series printed
/// Prometheus-style (`name{a="b"}`, truncated if huge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("series {series}: {part} is not valid UTF-8")]
    InvalidUtf8 { series: String, part: LabelPart },
    #[error("series {series}: empty label name")]
    EmptyLabelName { series: String },
    #[error("series {series}: duplicate label name {name:?}")]
    DuplicateLabelName { series: String, name: String },
    #[error("series {series}: no metric name (__name__ label)")]
    MissingMetricName { series: String },
    #[error("series {series}: {count} labels, over the limit of {limit} labels per series")]
    TooManyLabels {
        series: String,
        count: usize,
        limit: usize,
    },
    #[error("series {series}: a label name is {len} bytes long, over the limit of {limit} bytes")]
    LabelNameTooLong {
        series: String,
        len: usize,
        limit: usize,
    },
    #[error(
        "series {series}: the value of label {name:?} is {len} bytes long, over the limit of {limit} bytes"
    )]
    LabelValueTooLong {
        series: String,
        name: String,
        len: usize,
        limit: usize,
    },
    #[error("series {series}: labels_refs has odd length {len} (it must hold name/value pairs)")]
    OddLabelRefs { series: String, len: usize },
    #[error(
        "series {series}: symbol reference {reference} is out of range (the request has {symbols} symbols)"
    )]
    SymbolOutOfRange {
        series: String,
        reference: u32,
        symbols: usize,
    },
    #[error("series {series}: a TimeSeries must contain at least one sample or histogram")]
    NoSamples { series: String },
}

/// The series of one request that were rejected (the whole request is
/// then refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvalidSeries {
    /// How many `TimeSeries` entries were rejected.
    pub series: usize,
    /// Float samples in them (not written).
    pub samples: usize,
    /// The first few reasons, in request order.
    pub errors: Vec<SeriesError>,
}

impl InvalidSeries {
    /// At most this many reasons are kept and printed.
    pub const MAX_REPORTED: usize = 5;

    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    pub(crate) fn push(&mut self, error: SeriesError, samples: usize) {
        self.series += 1;
        self.samples += samples;
        if self.errors.len() < Self::MAX_REPORTED {
            self.errors.push(error);
        }
    }
}

impl fmt::Display for InvalidSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} invalid series rejected; nothing in this request was written ({} float samples \
             in the invalid series)",
            self.series, self.samples
        )?;
        for (i, e) in self.errors.iter().enumerate() {
            write!(f, "{} {e}", if i == 0 { ":" } else { ";" })?;
        }
        let more = self.series.saturating_sub(self.errors.len());
        if more > 0 {
            write!(f, "; and {more} more")?;
        }
        Ok(())
    }
}
