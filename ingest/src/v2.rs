//! Streaming decoder for remote-write 2.0 (`io.prometheus.write.v2.Request`).
//!
//! Two passes over the top-level message: the first collects the symbol
//! table and the series' byte ranges (protobuf fields may come in any
//! order), the second decodes each series against the symbols.

use engine::Sample;

use crate::Limits;
use crate::decode::Decoded;
use crate::error::IngestError;
use crate::negotiate::Version;
use crate::series::{MetaRefs, Pair, Sink};
use crate::wire::{Reader, WireError, WireType, expect, repeated_u32};

const MESSAGE: &str = "io.prometheus.write.v2.Request";

pub(crate) fn decode(raw: &[u8], limits: &Limits) -> Result<Decoded, IngestError> {
    let protobuf = |source| IngestError::Protobuf {
        message: MESSAGE,
        source,
    };
    let mut symbols: Vec<&[u8]> = Vec::new();
    let mut series: Vec<&[u8]> = Vec::new();
    let mut r = Reader::new(raw);
    while !r.is_empty() {
        let (field, wt) = r.key().map_err(protobuf)?;
        match field {
            4 => {
                expect("Request.symbols", wt, WireType::Len).map_err(protobuf)?;
                symbols.push(r.len_delimited().map_err(protobuf)?);
            }
            5 => {
                expect("Request.timeseries", wt, WireType::Len).map_err(protobuf)?;
                if series.len() == limits.max_series_per_request {
                    return Err(IngestError::TooManySeries {
                        limit: limits.max_series_per_request,
                    });
                }
                series.push(r.len_delimited().map_err(protobuf)?);
            }
            _ => r.skip(field, wt).map_err(protobuf)?,
        }
    }
    check_first_symbol(&symbols)?;
    let mut sink = Sink::new(limits, series.len());
    let mut scratch = Scratch::default();
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    for body in series {
        time_series(body, limits, &mut scratch).map_err(protobuf)?;
        scratch.resolve_starts();
        sink.v2_series(
            &symbols,
            &mut pairs,
            &scratch.refs,
            scratch.ref_count,
            &scratch.samples,
            &scratch.starts,
            scratch.histograms,
            scratch.exemplars,
            scratch.metadata,
        );
    }
    Ok(sink.finish(Version::V2))
}

/// The spec requires `symbols[0] == ""` (references 0 mean "empty").
pub(crate) fn check_first_symbol(symbols: &[&[u8]]) -> Result<(), IngestError> {
    match symbols.first() {
        Some(first) if !first.is_empty() => Err(IngestError::FirstSymbolNotEmpty(
            String::from_utf8_lossy(&first[..first.len().min(100)]).into_owned(),
        )),
        _ => Ok(()),
    }
}

/// One series' fields, reused across series.
#[derive(Default)]
struct Scratch {
    refs: Vec<u32>,
    /// References in the series (`refs` stops growing past the limit).
    ref_count: usize,
    samples: Vec<Sample>,
    /// Each sample's `start_timestamp` (0: unset), from the first sample
    /// that has one on (earlier ones padded by
    /// [`Scratch::resolve_starts`]); empty while none has.
    starts: Vec<i64>,
    /// The legacy per-series `created_timestamp` (0: unset).
    created: i64,
    histograms: usize,
    exemplars: usize,
    metadata: Option<MetaRefs>,
}

impl Scratch {
    /// Gives samples without a start the series' legacy
    /// `created_timestamp` (earlier 2.0 drafts send only that), and makes
    /// `starts` one per sample if any is known (it stays empty if none is).
    fn resolve_starts(&mut self) {
        if self.created == 0 && self.starts.is_empty() {
            return;
        }
        self.starts.resize(self.samples.len(), 0);
        if self.created != 0 {
            for st in &mut self.starts {
                if *st == 0 {
                    *st = self.created;
                }
            }
        }
    }
}

fn time_series(body: &[u8], limits: &Limits, s: &mut Scratch) -> Result<(), WireError> {
    s.refs.clear();
    s.samples.clear();
    s.starts.clear();
    s.created = 0;
    s.ref_count = 0;
    s.histograms = 0;
    s.exemplars = 0;
    s.metadata = None;
    // One reference past the limit is kept so an over-long series is seen.
    let cap = limits
        .max_labels_per_series
        .saturating_mul(2)
        .saturating_add(2);
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match field {
            1 => repeated_u32(
                &mut r,
                "TimeSeries.labels_refs",
                wt,
                &mut s.refs,
                cap,
                &mut s.ref_count,
            )?,
            2 => {
                expect("TimeSeries.samples", wt, WireType::Len)?;
                let (sample, start) = sample(r.len_delimited()?)?;
                // Starts are kept one per sample once one is known.
                if start != 0 {
                    s.starts.resize(s.samples.len(), 0);
                    s.starts.push(start);
                } else if !s.starts.is_empty() {
                    s.starts.push(0);
                }
                s.samples.push(sample);
            }
            3 => {
                expect("TimeSeries.histograms", wt, WireType::Len)?;
                r.len_delimited()?;
                s.histograms += 1;
            }
            4 => {
                expect("TimeSeries.exemplars", wt, WireType::Len)?;
                r.len_delimited()?;
                s.exemplars += 1;
            }
            5 => {
                expect("TimeSeries.metadata", wt, WireType::Len)?;
                // A repeated singular message field merges into the first.
                metadata(
                    r.len_delimited()?,
                    s.metadata.get_or_insert_with(MetaRefs::default),
                )?;
            }
            6 => {
                // Legacy `int64 created_timestamp` (2.0 drafts before it
                // moved into `Sample`): the start of every sample that has
                // none of its own.
                expect("TimeSeries.created_timestamp", wt, WireType::Varint)?;
                s.created = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}

/// A v2 sample: `double value = 1; int64 timestamp = 2; int64
/// start_timestamp = 3;` (0: unset), as the sample and its start.
#[inline]
fn sample(body: &[u8]) -> Result<(Sample, i64), WireError> {
    let mut r = Reader::new(body);
    let mut s = Sample { t: 0, v: 0.0 };
    let mut start = 0;
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
            3 => {
                expect("Sample.start_timestamp", wt, WireType::Varint)?;
                start = r.varint()? as i64;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok((s, start))
}

fn metadata(body: &[u8], m: &mut MetaRefs) -> Result<(), WireError> {
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (field, wt) = r.key()?;
        match field {
            1 => {
                expect("Metadata.type", wt, WireType::Varint)?;
                m.metric_type = r.varint()? as i32;
            }
            3 => {
                expect("Metadata.help_ref", wt, WireType::Varint)?;
                m.help_ref = r.varint()? as u32;
            }
            4 => {
                expect("Metadata.unit_ref", wt, WireType::Varint)?;
                m.unit_ref = r.varint()? as u32;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(())
}
