//! Criterion micro-benchmarks of the head's chunks: the XOR chunk's append,
//! iterate and read_range over 120- and 1,000-sample chunks of realistic
//! scrape data, and the in-order head chunk's (decimal where the values
//! allow) append and iterate over 240-sample chunks.
//!
//! Run with `cargo bench -p engine --bench chunk`. Each dataset's encoded size
//! (bytes/sample) is printed once on stderr before its benchmarks.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::Sample;
use engine::chunk::XorChunk;
use engine::head_chunk::HeadChunk;
use engine::time_column::Columns;

/// Deterministic xorshift, so every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 15 s scrapes with 0-2 ms of jitter; values by kind.
fn dataset(kind: &str, n: usize) -> Vec<Sample> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut v = match kind {
        "constant" => 1.0,
        "counter" => 1_000_000.0,
        _ => 0.5,
    };
    (0..n)
        .map(|i| {
            let t = 1_700_000_000_000 + i as i64 * 15_000 + rng.below(3) as i64;
            v = match kind {
                "constant" => v,
                "counter" => v + rng.below(1000) as f64,
                _ => rng.unit(),
            };
            Sample::new(t, v)
        })
        .collect()
}

fn encode(samples: &[Sample]) -> XorChunk {
    let mut c = XorChunk::new();
    for s in samples {
        c.append(s.t, s.v);
    }
    c
}

const KINDS: [&str; 3] = ["constant", "counter", "gauge"];
const SIZES: [usize; 2] = [120, 1000];

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_append");
    for kind in KINDS {
        for n in SIZES {
            let samples = dataset(kind, n);
            let chunk = encode(&samples);
            eprintln!(
                "{kind}/{n}: {:.3} bytes/sample",
                chunk.bytes().len() as f64 / n as f64
            );
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(kind, n), &samples, |b, samples| {
                b.iter(|| {
                    let mut c = XorChunk::new();
                    for s in samples {
                        c.append(s.t, s.v);
                    }
                    black_box(c)
                })
            });
        }
    }
    group.finish();
}

/// Touches every decoded sample, so the decoding cannot be skipped.
fn fold(samples: impl Iterator<Item = Sample>) -> (i64, u64) {
    samples.fold((0i64, 0u64), |(t, v), s| {
        (t.wrapping_add(s.t), v ^ s.v.to_bits())
    })
}

fn bench_iterate(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_iterate");
    for kind in KINDS {
        for n in SIZES {
            let chunk = encode(&dataset(kind, n));
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(kind, n), &chunk, |b, chunk| {
                b.iter(|| black_box(fold(black_box(chunk).iter())))
            });
        }
    }
    group.finish();
}

/// Reads the middle half of each chunk: decodes 3/4 of it, copies 1/2.
fn bench_read_range(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_read_range");
    for kind in KINDS {
        for n in SIZES {
            let samples = dataset(kind, n);
            let chunk = encode(&samples);
            let (mint, maxt) = (samples[n / 4].t, samples[3 * n / 4].t);
            let mut out = Vec::with_capacity(n);
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::new(kind, n), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&chunk).read_range(mint, maxt, &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

/// The head's in-order chunk, at its sealing size: counters of integers and
/// of hundredths (decimal), and uniform gauges (XOR).
fn bench_head_chunk(c: &mut Criterion) {
    const N: usize = 240;
    let head = |samples: &[Sample]| {
        let mut chunk = HeadChunk::default();
        for s in samples {
            chunk.append(s.t, s.v);
        }
        chunk
    };
    // Iterating goes through `HeadChunk::iter` (a boxed iterator), as the
    // head's reads do: not comparable with `bench_iterate`'s direct
    // `XorChunk::iter`.
    let mut group = c.benchmark_group("head_chunk");
    group.throughput(Throughput::Elements(N as u64));
    let hundredths = || -> Vec<Sample> {
        dataset("counter", N)
            .into_iter()
            .map(|s| Sample::new(s.t, s.v / 100.0))
            .collect()
    };
    // As a query reads a sealed chunk: `read_range` into a kept buffer
    // from `mint` on, then a fold over what it read.
    let mut out = Vec::with_capacity(N);
    let mut read = |group: &mut criterion::BenchmarkGroup<_>, id, chunk: &HeadChunk, mint| {
        group.bench_function(id, |b| {
            b.iter(|| {
                out.clear();
                black_box(chunk).read_range(mint, i64::MAX, &mut out);
                black_box(fold(out.iter().copied()))
            })
        });
    };
    for kind in ["counter", "hundredths", "gauge"] {
        let samples: Vec<Sample> = match kind {
            "hundredths" => hundredths(),
            _ => dataset(kind, N),
        };
        let mut chunk = head(&samples);
        chunk.shrink_to_fit();
        eprintln!(
            "head {kind}/{N}: {:.3} bytes/sample ({})",
            chunk.memory_bytes() as f64 / N as f64,
            if chunk.is_decimal() { "decimal" } else { "XOR" }
        );
        group.bench_with_input(BenchmarkId::new("append", kind), &samples, |b, samples| {
            b.iter(|| black_box(head(samples)))
        });
        group.bench_with_input(BenchmarkId::new("iterate", kind), &chunk, |b, chunk| {
            b.iter(|| black_box(fold(black_box(chunk).iter())))
        });
        // Whole, and its second half.
        read(
            &mut group,
            BenchmarkId::new("read_all", kind),
            &chunk,
            i64::MIN,
        );
        let mid = samples[N / 2].t;
        read(&mut group, BenchmarkId::new("read_half", kind), &chunk, mid);
    }
    // A chunk whose timestamps are in a column shared with another
    // series' chunk (as a target's series are in the head).
    let cols = Columns::default();
    let mut target: [HeadChunk; 3] = Default::default();
    for s in &hundredths() {
        for c in &mut target {
            c.append_in(s.t, s.v, Some(&cols));
        }
    }
    let shared = target
        .iter()
        .find(|c| c.is_shared())
        .expect("a chunk of the target is on a column");
    let id = BenchmarkId::new("read_all", "hundredths_shared");
    read(&mut group, id, shared, i64::MIN);
    // Its second half: the values before it decoded, not yielded.
    let mid = hundredths()[N / 2].t;
    let id = BenchmarkId::new("read_half", "hundredths_shared");
    read(&mut group, id, shared, mid);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_append, bench_iterate, bench_read_range, bench_head_chunk
}
criterion_main!(benches);
