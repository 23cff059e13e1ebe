//! A slow, obviously-correct decoder for differential tests and fuzzing:
//! prost decodes the whole message into [`crate::proto`] structs, which are
//! then fed to the same validation as the streaming decoder.
//!
//! It is stricter than the streaming decoder in one way: prost checks the
//! UTF-8 of every `string` field and the structure of histograms and
//! exemplars, which the streaming decoder skips or checks only where used.
//! So: reference `Ok` implies streaming `Ok` with an equal result.

use engine::Sample;
use prost::Message;

use crate::Limits;
use crate::decode::{Decoded, RequestStats};
use crate::error::IngestError;
use crate::negotiate::Version;
use crate::proto;
use crate::series::{MetaRefs, Pair, Sink};
use crate::wire::WireError;

/// Decodes an uncompressed protobuf body the slow way.
pub fn decode_raw(version: Version, raw: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    let mut decoded = match version {
        Version::V1 => v1(raw, limits)?,
        Version::V2 => v2(raw, limits)?,
    };
    decoded.stats.decoded_bytes = raw.len();
    Ok(decoded)
}

/// The streaming decoder on an uncompressed body (for comparison with
/// [`decode_raw`]).
pub fn decode_raw_streaming(
    version: Version,
    raw: &[u8],
    limits: &Limits,
) -> Result<Decoded, IngestError> {
    crate::decode::decode_raw(version, raw, limits, None)
}

/// The streaming decoder on an uncompressed body with a reference cache:
/// series the cache knows are decoded into references (for benchmarks).
pub fn decode_raw_streaming_known(
    version: Version,
    raw: &[u8],
    limits: &Limits,
    refs: &crate::RefCache,
) -> Result<Decoded, IngestError> {
    crate::decode::decode_raw(version, raw, limits, Some(refs))
}

fn prost_error(message: &'static str) -> impl Fn(prost::DecodeError) -> IngestError {
    move |e| IngestError::Protobuf {
        message,
        source: WireError::Reference(e.to_string()),
    }
}

fn v1(raw: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    let req = proto::WriteRequest::decode(raw).map_err(prost_error("prometheus.WriteRequest"))?;
    if req.timeseries.len() > limits.max_series_per_request {
        return Err(IngestError::TooManySeries {
            limit: limits.max_series_per_request,
        });
    }
    let mut sink = Sink::new(limits, req.timeseries.len());
    for ts in &req.timeseries {
        let pairs: Vec<Pair<'_>> = ts
            .labels
            .iter()
            .take(limits.max_labels_per_series)
            .map(|l| (l.name.as_bytes(), l.value.as_bytes()))
            .collect();
        let samples: Vec<Sample> = ts
            .samples
            .iter()
            .map(|s| Sample::new(s.timestamp, s.value))
            .collect();
        sink.v1_series(
            &pairs,
            ts.labels.len(),
            &samples,
            ts.histograms.len(),
            ts.exemplars.len(),
            None,
        );
    }
    for m in &req.metadata {
        sink.v1_metadata(m.r#type, &m.metric_family_name, &m.help, &m.unit);
    }
    Ok(sink.finish(Version::V1))
}

fn v2(raw: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    let req =
        proto::v2::Request::decode(raw).map_err(prost_error("io.prometheus.write.v2.Request"))?;
    if req.timeseries.len() > limits.max_series_per_request {
        return Err(IngestError::TooManySeries {
            limit: limits.max_series_per_request,
        });
    }
    let symbols: Vec<&[u8]> = req.symbols.iter().map(|s| s.as_bytes()).collect();
    crate::v2::check_first_symbol(&symbols)?;
    let mut sink = Sink::new(limits, req.timeseries.len());
    let mut pairs = Vec::new();
    let cap = limits
        .max_labels_per_series
        .saturating_mul(2)
        .saturating_add(2);
    for ts in &req.timeseries {
        let refs = &ts.labels_refs[..ts.labels_refs.len().min(cap)];
        let samples: Vec<Sample> = ts
            .samples
            .iter()
            .map(|s| Sample::new(s.timestamp, s.value))
            .collect();
        // A sample's own start, else the series' legacy created
        // timestamp; none at all when no sample has one.
        let mut starts: Vec<i64> = ts
            .samples
            .iter()
            .map(|s| match s.start_timestamp {
                0 => ts.created_timestamp,
                st => st,
            })
            .collect();
        if starts.iter().all(|&st| st == 0) {
            starts.clear();
        }
        let meta = ts.metadata.map(|m| MetaRefs {
            metric_type: m.r#type,
            help_ref: m.help_ref,
            unit_ref: m.unit_ref,
        });
        sink.v2_series(
            &symbols,
            &mut pairs,
            refs,
            ts.labels_refs.len(),
            &samples,
            &starts,
            ts.histograms.len(),
            ts.exemplars.len(),
            meta,
        );
    }
    Ok(sink.finish(Version::V2))
}

/// Whether two decoded requests are the same (samples compared by bits;
/// the compressed size is not compared).
pub fn equivalent(a: &Decoded, b: &Decoded) -> bool {
    let stats = |d: &Decoded| RequestStats {
        compressed_bytes: 0,
        ..d.stats
    };
    a.version == b.version
        && stats(a) == stats(b)
        && a.invalid == b.invalid
        && a.batch.metadata == b.batch.metadata
        && a.batch.series.len() == b.batch.series.len()
        && a.batch.series.iter().zip(&b.batch.series).all(|(x, y)| {
            x.labels == y.labels
                && x.samples == y.samples
                && x.start_timestamps == y.start_timestamps
        })
}

/// Checks what every successful decode must guarantee: labels sorted by
/// unique non-empty names, no empty values, a metric name, within the
/// limits; every batch series has samples; counts add up.
pub fn check_invariants(d: &Decoded, limits: &Limits) -> Result<(), String> {
    for s in &d.batch.series {
        let l = s.labels.as_slice();
        if !l.windows(2).all(|w| w[0].name < w[1].name) {
            return Err(format!("labels not sorted or not unique: {:?}", s.labels));
        }
        if l.iter().any(|x| x.name.is_empty() || x.value.is_empty()) {
            return Err(format!("empty label name or value: {:?}", s.labels));
        }
        if s.labels.metric_name().is_none() {
            return Err(format!("no metric name: {:?}", s.labels));
        }
        if l.len() > limits.max_labels_per_series
            || l.iter().any(|x| {
                x.name.len() > limits.max_label_name_bytes
                    || x.value.len() > limits.max_label_value_bytes
            })
        {
            return Err(format!("limits exceeded: {:?}", s.labels));
        }
        if s.samples.is_empty() {
            return Err(format!(
                "series without samples in the batch: {:?}",
                s.labels
            ));
        }
        let starts = &s.start_timestamps;
        if !starts.is_empty()
            && (starts.len() != s.samples.len() || starts.iter().all(|&st| st == 0))
        {
            return Err(format!(
                "{} start timestamps for {} samples (none known: {}): {:?}",
                starts.len(),
                s.samples.len(),
                starts.iter().all(|&st| st == 0),
                s.labels
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if !d.batch.series.iter().all(|s| seen.insert(&s.labels)) {
        return Err("a series appears twice in the batch".into());
    }
    if d.batch.num_samples() + d.invalid.samples > d.stats.samples {
        return Err(format!(
            "{} + {} samples out of {} received",
            d.batch.num_samples(),
            d.invalid.samples,
            d.stats.samples
        ));
    }
    if d.invalid.series > d.stats.series || d.stats.series > limits.max_series_per_request {
        return Err(format!("series counts: {:?} / {:?}", d.invalid, d.stats));
    }
    if let Some(e) = d.rejection()
        && e.status() != 400
    {
        return Err(format!("rejection with status {}: {e}", e.status()));
    }
    Ok(())
}
