//! Streaming decoder for remote-write 1.0 (`prometheus.WriteRequest`).
//!
//! Walks the protobuf once without building prost structs: label bytes are
//! borrowed from the decompressed buffer until validation copies them into
//! the engine's labels; exemplars and histograms are counted and skipped.

use engine::Sample;

use crate::Limits;
use crate::decode::Decoded;
use crate::error::IngestError;
use crate::negotiate::Version;
use crate::refs::RefCache;
use crate::series::{Pair, Sink};
use crate::wire::{Reader, WireError, WireType, expect, string};

const MESSAGE: &str = "prometheus.WriteRequest";

pub(crate) fn decode(
    raw: &[u8],
    limits: &Limits,
    refs: Option<&RefCache>,
) -> Result<Decoded, IngestError> {
    let protobuf = |source| IngestError::Protobuf {
        message: MESSAGE,
        source,
    };
    // Typical requests hold about one series per 300 bytes.
    let mut sink = Sink::new(limits, (raw.len() / 300).min(limits.max_series_per_request));
    sink.refs = refs;
    let mut scratch = Scratch::default();
    let mut r = Reader::new(raw);
    let mut series = 0usize;
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(protobuf)?;
        match field {
            1 => {
                expect("WriteRequest.timeseries", wt, WireType::Len).map_err(protobuf)?;
                let body = r.len_delimited().map_err(protobuf)?;
                series += 1;
                if series > limits.max_series_per_request {
                    return Err(IngestError::TooManySeries {
                        limit: limits.max_series_per_request,
                    });
                }
                time_series(body, limits, &mut scratch).map_err(protobuf)?;
                let key = match (refs, scratch.label_span) {
                    (Some(_), Some((a, b))) => Some(RefCache::key(&body[a..b])),
                    _ => None,
                };
                // A series the cache knows had these very label bytes
                // parsed and validated before: its labels are not parsed.
                if sink.v1_known(key, &scratch.samples, scratch.histograms, scratch.exemplars) {
                    continue;
                }
                scratch.parse_labels().map_err(protobuf)?;
                sink.v1_series(
                    &scratch.pairs,
                    scratch.labels,
                    &scratch.samples,
                    scratch.histograms,
                    scratch.exemplars,
                    key,
                );
            }
            3 => {
                expect("WriteRequest.metadata", wt, WireType::Len).map_err(protobuf)?;
                let body = r.len_delimited().map_err(protobuf)?;
                metadata(body, &mut sink).map_err(protobuf)?;
            }
            _ => r.skip(field, wt).map_err(protobuf)?,
        }
    }
    Ok(sink.finish(Version::V1))
}

/// One series' fields, reused across series.
#[derive(Default)]
struct Scratch<'a> {
    /// The bodies of the series' `Label` fields, up to the label limit,
    /// parsed into `pairs` only when needed ([`Scratch::parse_labels`]).
    fields: Vec<&'a [u8]>,
    pairs: Vec<Pair<'a>>,
    /// Labels in the series (`fields` stops growing at the limit).
    labels: usize,
    samples: Vec<Sample>,
    histograms: usize,
    exemplars: usize,
    /// Byte range of the label fields in the series' body, when they are
    /// contiguous (the series' key for [`RefCache`]).
    label_span: Option<(usize, usize)>,
}

fn time_series<'a>(body: &'a [u8], limits: &Limits, s: &mut Scratch<'a>) -> Result<(), WireError> {
    s.fields.clear();
    s.pairs.clear();
    s.samples.clear();
    s.labels = 0;
    s.histograms = 0;
    s.exemplars = 0;
    s.label_span = None;
    let mut contiguous = true;
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let at = body.len() - r.remaining();
        let (field, wt) = r.key()?;
        match field {
            1 => {
                expect("TimeSeries.labels", wt, WireType::Len)?;
                let field = r.len_delimited()?;
                s.labels += 1;
                if s.fields.len() < limits.max_labels_per_series {
                    s.fields.push(field);
                } else {
                    // Past the limit the series is refused; a malformed
                    // label still makes the request malformed.
                    label(field)?;
                }
                let end = body.len() - r.remaining();
                s.label_span = match s.label_span {
                    None => Some((at, end)),
                    Some((a, b)) => {
                        contiguous &= b == at;
                        Some((a, end))
                    }
                };
            }
            2 => {
                expect("TimeSeries.samples", wt, WireType::Len)?;
                s.samples.push(sample(r.len_delimited()?)?);
            }
            3 => {
                expect("TimeSeries.exemplars", wt, WireType::Len)?;
                r.len_delimited()?;
                s.exemplars += 1;
            }
            4 => {
                expect("TimeSeries.histograms", wt, WireType::Len)?;
                r.len_delimited()?;
                s.histograms += 1;
            }
            _ => r.skip(field, wt)?,
        }
    }
    if !contiguous {
        s.label_span = None;
    }
    Ok(())
}

impl Scratch<'_> {
    /// Parses the stored `Label` fields into `pairs`.
    fn parse_labels(&mut self) -> Result<(), WireError> {
        self.pairs.clear();
        for field in &self.fields {
            self.pairs.push(label(field)?);
        }
        Ok(())
    }
}

#[inline]
fn label(body: &[u8]) -> Result<Pair<'_>, WireError> {
    let mut r = Reader::new(body);
    let (mut name, mut value): Pair<'_> = (b"", b"");
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                expect("Label.name", wt, WireType::Len)?;
                name = r.len_delimited()?;
            }
            2 => {
                expect("Label.value", wt, WireType::Len)?;
                value = r.len_delimited()?;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok((name, value))
}

/// A v1 sample: `double value = 1; int64 timestamp = 2;`. The value keeps
/// its exact bits (stale markers are NaNs with a payload).
#[inline]
fn sample(body: &[u8]) -> Result<Sample, WireError> {
    let mut r = Reader::new(body);
    let mut s = Sample { t: 0, v: 0.0 };
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                expect("Sample.value", wt, WireType::Fixed64)?;
                s.v = f64::from_bits(r.fixed64()?);
            }
            2 => {
                expect("Sample.timestamp", wt, WireType::Varint)?;
                s.t = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

fn metadata(body: &[u8], sink: &mut Sink<'_>) -> Result<(), WireError> {
    let mut r = Reader::new(body);
    let (mut metric_type, mut family, mut help, mut unit) = (0i32, "", "", "");
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                expect("MetricMetadata.type", wt, WireType::Varint)?;
                metric_type = r.varint()? as i32;
            }
            2 => family = string(&mut r, "MetricMetadata.metric_family_name", wt)?,
            4 => help = string(&mut r, "MetricMetadata.help", wt)?,
            5 => unit = string(&mut r, "MetricMetadata.unit", wt)?,
            _ => r.skip(field, wt)?,
        }
    }
    sink.v1_metadata(metric_type, family, help, unit);
    Ok(())
}
