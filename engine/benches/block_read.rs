//! Criterion benchmarks of reading a block's samples, every series in
//! turn as a query's selector does:
//!
//! - `cold`: the block has no page cache, so every read decodes its pages
//!   (what a query over data no longer in the cache pays);
//! - `half`: a cache with room for half the block, the block read through
//!   in order again and again (a dashboard whose data outgrows the
//!   cache): an LRU cache decoded, cached and evicted every page before
//!   it was read again; the W-TinyLFU cache keeps a stable part of them;
//! - `warm`: a cache holding the whole block.
//!
//! Two shapes: `up_10d`, 200 `up` series of 0/1 at a 60 s interval over 10
//! days (the SLO query's data); `node_6h`, 400 counters and gauges of
//! node_exporter shape at 15 s over 6 hours. Throughput is in samples.
//!
//! Run with `cargo bench -p engine --bench block_read`.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::block::{Block, BlockCache, BlockSeries, BlockWriteOptions, write_block};
use engine::{Labels, Sample};

/// Deterministic noise in `0..1` (xorshift).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 200 `up` series, 14,400 samples each (10 days at 60 s), a per-series
/// phase, down one scrape in 500.
fn up_10d() -> Vec<BlockSeries> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    (0..200)
        .map(|i| {
            let instance = format!("probe-{i:03}");
            let labels = Labels::new(&[
                ("__name__", "up"),
                ("instance", &instance),
                ("job", "blackbox"),
            ]);
            let phase = i * 297;
            let samples = (0..14_400)
                .map(|k| Sample {
                    t: phase + k * 60_000,
                    v: if noise.next() < 0.002 { 0.0 } else { 1.0 },
                })
                .collect();
            (labels, samples).into()
        })
        .collect()
}

/// 400 series of node_exporter shape, 1,440 samples each (6 h at 15 s):
/// CPU-seconds counters in hundredths, byte counters growing by noisy
/// amounts, and gauges with noise.
fn node_6h() -> Vec<BlockSeries> {
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let mut out: Vec<BlockSeries> = (0..400)
        .map(|i| {
            let (name, kind) = match i % 4 {
                0 | 1 => ("node_cpu_seconds_total", 0),
                2 => ("node_network_receive_bytes_total", 1),
                _ => ("node_memory_MemAvailable_bytes", 2),
            };
            let instance = format!("host-{:02}", i / 16);
            let id = format!("{i}");
            let labels = Labels::new(&[
                ("__name__", name),
                ("instance", &instance),
                ("job", "node"),
                ("series", &id),
            ]);
            let phase = (i as i64 / 16) * 611;
            let mut v = 1000.0 + 10.0 * f64::from(i);
            let samples = (0..1_440)
                .map(|k| {
                    let value = match kind {
                        0 => {
                            v += (noise.next() * 1500.0).round() / 100.0;
                            (v * 100.0).round() / 100.0
                        }
                        1 => {
                            v += (noise.next() * 1e6).round();
                            v
                        }
                        _ => 8e9 + (noise.next() * 1e8).round(),
                    };
                    Sample {
                        t: phase + k * 15_000,
                        v: value,
                    }
                })
                .collect();
            (labels, samples).into()
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn write(parent: &Path, series: Vec<BlockSeries>) -> std::path::PathBuf {
    let meta = write_block(
        parent,
        &BlockWriteOptions::default(),
        series.into_iter().map(Ok),
    )
    .expect("write block")
    .expect("a block");
    parent.join(&meta.id)
}

/// Reads every series of `block` whole, in id order, and counts the
/// samples (the slices go to `black_box`, so that what is timed is the
/// read, not work on the samples).
fn read_all(block: &Block) -> usize {
    let mut n = 0;
    for id in 0..block.num_series() {
        block
            .visit_samples(id, i64::MIN, i64::MAX, false, &mut |s, _, _| {
                n += black_box(s).len();
                ControlFlow::Continue(())
            })
            .expect("read");
    }
    n
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, series) in [("up_10d", up_10d()), ("node_6h", node_6h())] {
        let samples: usize = series.iter().map(|s| s.samples.len()).sum();
        let path = write(dir.path(), series);
        let mut g = c.benchmark_group(format!("block_read/{name}"));
        g.throughput(Throughput::Elements(samples as u64));

        let cold = Block::open_cached(&path, None).expect("open");
        g.bench_function("cold", |b| b.iter(|| black_box(read_all(&cold))));

        // Room for half the block's pages, read through in order.
        let half = Arc::new(BlockCache::new(samples * 16 / 2));
        let halved = Block::open_cached(&path, Some(half)).expect("open");
        g.bench_function("half", |b| b.iter(|| black_box(read_all(&halved))));

        let big = Arc::new(BlockCache::new(1 << 30));
        let warm = Block::open_cached(&path, Some(big)).expect("open");
        read_all(&warm);
        g.bench_function("warm", |b| b.iter(|| black_box(read_all(&warm))));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
