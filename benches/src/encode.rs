//! Pre-encodes the workload into remote-write 1.0 requests (protobuf + snappy block format).
//!
//! Requests are built the way Prometheus' queue manager sends them: series are sharded by
//! hash over N shards (one connection each), every shard walks the scrapes in time order and
//! emits one `TimeSeries` (full label set, one sample) per sample, cutting a request every
//! `max_samples` samples. The protobuf is written by hand from pre-encoded label bytes, which
//! is byte-compatible with `prometheus.WriteRequest` (checked against `ingest::proto` in tests)
//! and fast enough to prepare hundreds of millions of samples before the clock starts.

use std::thread;

use crate::rng;
use crate::workload::Workload;

/// One ready-to-send request body.
#[derive(Debug)]
pub struct Request {
    /// Snappy-compressed (block format) `WriteRequest`.
    pub body: Box<[u8]>,
    /// Samples it carries.
    pub samples: u32,
    /// Latest sample timestamp in it (ms), for senders that keep all shards in time order.
    pub t_max: i64,
}

/// Compresses request bodies (snappy block format), reusing its buffers.
pub struct Compressor {
    encoder: snap::raw::Encoder,
    scratch: Vec<u8>,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            encoder: snap::raw::Encoder::new(),
            scratch: Vec::new(),
        }
    }
}

impl Compressor {
    /// A request carrying the protobuf `raw` (`samples` samples, latest at `t_max`).
    pub fn request(&mut self, raw: &[u8], samples: u32, t_max: i64) -> Request {
        self.scratch
            .resize(snap::raw::max_compress_len(raw.len()), 0);
        let len = self
            .encoder
            .compress(raw, &mut self.scratch)
            .expect("snappy compression into a large enough buffer cannot fail");
        Request {
            body: self.scratch[..len].to_vec().into_boxed_slice(),
            samples,
            t_max,
        }
    }
}

/// All requests of a workload, per shard, in send order.
#[derive(Debug)]
pub struct Encoded {
    pub shards: Vec<Vec<Request>>,
    pub samples: u64,
    /// Protobuf bytes before compression.
    pub raw_bytes: u64,
    /// Bytes on the wire (compressed bodies).
    pub wire_bytes: u64,
}

impl Encoded {
    /// Number of requests over all shards.
    pub fn requests(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }
}

#[inline]
pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Append `TimeSeries.labels` (field 1) holding `Label { name = 1, value = 2 }`.
pub fn put_label(buf: &mut Vec<u8>, name: &str, value: &str) {
    let inner = 1
        + varint_len(name.len() as u64)
        + name.len()
        + 1
        + varint_len(value.len() as u64)
        + value.len();
    buf.push(0x0a);
    put_varint(buf, inner as u64);
    buf.push(0x0a);
    put_varint(buf, name.len() as u64);
    buf.extend_from_slice(name.as_bytes());
    buf.push(0x12);
    put_varint(buf, value.len() as u64);
    buf.extend_from_slice(value.as_bytes());
}

/// Append `WriteRequest.timeseries` (field 1): the given encoded labels plus one sample.
#[inline]
pub fn put_timeseries(buf: &mut Vec<u8>, labels_pb: &[u8], t_ms: i64, v: f64) {
    let sample_len = 1 + 8 + 1 + varint_len(t_ms as u64);
    let ts_len = labels_pb.len() + 1 + varint_len(sample_len as u64) + sample_len;
    buf.push(0x0a);
    put_varint(buf, ts_len as u64);
    buf.extend_from_slice(labels_pb);
    buf.push(0x12);
    put_varint(buf, sample_len as u64);
    buf.push(0x09);
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
    buf.push(0x10);
    put_varint(buf, t_ms as u64);
}

/// Which shard (connection) series `i` is sent on.
pub fn shard_of(seed: u64, i: usize, shards: usize) -> usize {
    (rng::hash(seed, 0x4000_0000_0000, i as u64, 0) % shards as u64) as usize
}

/// Encode the whole workload into per-shard request lists, using `threads` threads.
pub fn encode(w: &Workload, shards: usize, max_samples: usize, threads: usize) -> Encoded {
    let shards = shards.max(1);
    let max_samples = max_samples.max(1);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); shards];
    for i in 0..w.series.len() {
        members[shard_of(w.spec.seed, i, shards)].push(i as u32);
    }
    let threads = threads.clamp(1, shards);
    let mut out: Vec<Option<(Vec<Request>, u64)>> = (0..shards).map(|_| None).collect();
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let members = &members;
                s.spawn(move || {
                    (t..shards)
                        .step_by(threads)
                        .map(|sh| (sh, encode_shard(w, &members[sh], max_samples)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (sh, r) in h.join().expect("encoder thread panicked") {
                out[sh] = Some(r);
            }
        }
    });
    let mut enc = Encoded {
        shards: Vec::with_capacity(shards),
        samples: 0,
        raw_bytes: 0,
        wire_bytes: 0,
    };
    for (reqs, raw) in out.into_iter().flatten() {
        enc.samples += reqs.iter().map(|r| r.samples as u64).sum::<u64>();
        enc.wire_bytes += reqs.iter().map(|r| r.body.len() as u64).sum::<u64>();
        enc.raw_bytes += raw;
        enc.shards.push(reqs);
    }
    enc
}

/// Encode one shard: scrapes in time order, each scrape all member series.
fn encode_shard(w: &Workload, members: &[u32], max_samples: usize) -> (Vec<Request>, u64) {
    let mut state = vec![0f64; members.len()];
    let mut raw = Vec::with_capacity(max_samples * 320);
    let mut comp = Compressor::default();
    let mut reqs = Vec::new();
    let mut n = 0u32;
    let mut t_max = i64::MIN;
    let mut raw_total = 0u64;
    let mut flush = |raw: &mut Vec<u8>, n: &mut u32, t_max: &mut i64, reqs: &mut Vec<Request>| {
        if *n == 0 {
            return;
        }
        raw_total += raw.len() as u64;
        reqs.push(comp.request(raw, *n, *t_max));
        raw.clear();
        *n = 0;
        *t_max = i64::MIN;
    };
    for k in 0..w.scrapes {
        for (j, &i) in members.iter().enumerate() {
            let i = i as usize;
            let t = w.timestamp(w.series[i].host, k);
            let v = w.value(i, k, &mut state[j]);
            put_timeseries(&mut raw, w.labels_pb(i), t, v);
            n += 1;
            t_max = t_max.max(t);
            if n as usize == max_samples {
                flush(&mut raw, &mut n, &mut t_max, &mut reqs);
            }
        }
    }
    flush(&mut raw, &mut n, &mut t_max, &mut reqs);
    (reqs, raw_total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Spec;
    use prost::Message;

    fn workload() -> Workload {
        Workload::new(Spec {
            series: 1_000,
            duration_ms: 600_000,
            end_ms: 1_700_000_000_000,
            seed: 9,
        })
    }

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn requests_decode_as_remote_write_and_cover_every_sample_in_order() {
        let w = workload();
        let enc = encode(&w, 4, 500, 2);
        assert_eq!(enc.samples, w.total_samples());
        assert_eq!(enc.shards.len(), 4);
        let mut last_t: std::collections::HashMap<Vec<(String, String)>, i64> = Default::default();
        let mut total = 0u64;
        for shard in &enc.shards {
            for r in shard {
                assert!(r.samples <= 500);
                let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
                let req = ingest::proto::WriteRequest::decode(raw.as_slice()).unwrap();
                assert_eq!(req.timeseries.len(), r.samples as usize);
                let latest = req
                    .timeseries
                    .iter()
                    .map(|ts| ts.samples[0].timestamp)
                    .max();
                assert_eq!(latest, Some(r.t_max));
                for ts in &req.timeseries {
                    assert_eq!(ts.samples.len(), 1);
                    let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
                    assert_eq!(names[0], "__name__");
                    assert!(names.windows(2).all(|p| p[0] < p[1]), "unsorted {names:?}");
                    assert!((8..=12).contains(&names.len()));
                    let key: Vec<(String, String)> = ts
                        .labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect();
                    let t = ts.samples[0].timestamp;
                    if let Some(prev) = last_t.insert(key, t) {
                        assert!(t > prev, "series not in time order");
                    }
                    total += 1;
                }
            }
        }
        assert_eq!(total, w.total_samples());
        assert_eq!(last_t.len(), w.series.len(), "label sets must be unique");
    }

    #[test]
    fn values_round_trip_bit_exact() {
        let w = workload();
        let enc = encode(&w, 1, 10_000, 1);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&enc.shards[0][0].body)
            .unwrap();
        let req = ingest::proto::WriteRequest::decode(raw.as_slice()).unwrap();
        // With one shard, the first request holds scrape 0 of series 0, 1, 2, ...
        for (i, ts) in req.timeseries.iter().take(w.series.len()).enumerate() {
            let mut st = 0.0;
            let v = w.value(i, 0, &mut st);
            assert_eq!(ts.samples[0].value.to_bits(), v.to_bits());
            assert_eq!(ts.samples[0].timestamp, w.timestamp(w.series[i].host, 0));
        }
    }
}
