//! Size and speed of blocks on node_exporter-like data (15 s scrapes with a
//! few ms of jitter): bytes per sample per kind of series, and guards that
//! keep them from regressing.
//!
//! `SILT_BLOCK_REPORT=1 cargo test --release -p engine --test block_size -- --nocapture`
//! runs the full-size measurement (2,000 series × 1,440 samples), prints
//! write/read throughput and compares alternative value encodings.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{Field, Schema};
use engine::block::{Block, BlockWriteOptions, SAMPLES_FILE, write_block};
use engine::{Labels, Sample};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnPath;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `node_uname_info`, filesystem sizes: one value forever.
    Constant,
    /// Packet/interrupt counters: integers growing slowly, by 0–100 per scrape.
    CounterInt,
    /// `node_cpu_seconds_total`: two decimals growing by 0.00–1.50 per scrape.
    CounterDec2,
    /// Memory gauges: multiples of 4096 doing a random walk of ±10 pages.
    GaugeInt,
    /// `node_load1`: two decimals doing a random walk of ±0.05.
    GaugeDec2,
}

const KINDS: [Kind; 5] = [
    Kind::Constant,
    Kind::CounterInt,
    Kind::CounterDec2,
    Kind::GaugeInt,
    Kind::GaugeDec2,
];

/// The mix of a node_exporter target: 35% constant, 20% integer counters,
/// 20% two-decimal counters, 15% integer gauges, 10% two-decimal gauges.
fn mixed_kind(i: usize) -> Kind {
    match i % 20 {
        0..=6 => Kind::Constant,
        7..=10 => Kind::CounterInt,
        11..=14 => Kind::CounterDec2,
        15..=17 => Kind::GaugeInt,
        _ => Kind::GaugeDec2,
    }
}

const START: i64 = 1_700_000_000_000;

fn gen_samples(kind: Kind, n: usize, jitter_ms: i64, rng: &mut StdRng) -> Vec<Sample> {
    let mut out = Vec::with_capacity(n);
    let mut int: i64 = match kind {
        Kind::Constant => rng.random_range(1..64) * 1_000_000_000,
        Kind::CounterInt => rng.random_range(1_000_000..1_000_000_000),
        Kind::CounterDec2 => rng.random_range(100_000..100_000_000),
        Kind::GaugeInt => rng.random_range(100_000..4_000_000) * 4096,
        Kind::GaugeDec2 => rng.random_range(0..400),
    };
    let offset = rng.random_range(0..15_000);
    for j in 0..n {
        let t = START + offset + j as i64 * 15_000 + rng.random_range(-jitter_ms..=jitter_ms);
        let v = match kind {
            Kind::Constant => int as f64,
            Kind::CounterInt => {
                int += rng.random_range(0..=100);
                int as f64
            }
            Kind::CounterDec2 => {
                int += rng.random_range(0..=150);
                int as f64 / 100.0
            }
            Kind::GaugeInt => {
                int = (int + rng.random_range(-10..=10) * 4096).max(0);
                int as f64
            }
            Kind::GaugeDec2 => {
                int = (int + rng.random_range(-5..=5)).max(0);
                int as f64 / 100.0
            }
        };
        out.push(Sample { t, v });
    }
    out
}

/// `num_series` series, sorted by labels, of kinds chosen by `kind_of`.
fn dataset(
    num_series: usize,
    samples: usize,
    jitter_ms: i64,
    kind_of: impl Fn(usize) -> Kind,
) -> Vec<(Labels, Vec<Sample>)> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut out: Vec<(Labels, Vec<Sample>)> = (0..num_series)
        .map(|i| {
            let kind = kind_of(i);
            let name = format!("node_{kind:?}_{}", i % 20).to_lowercase();
            let labels = Labels::new(&[
                ("__name__", &name),
                ("instance", &format!("host-{:03}.example.org:9100", i / 100)),
                ("job", "node"),
                ("device", &format!("dev{}", (i / 20) % 5)),
            ]);
            (labels, gen_samples(kind, samples, jitter_ms, &mut rng))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

struct Measured {
    block: Block,
    total_bytes: u64,
    samples: u64,
    /// Compressed bytes of series_id, timestamp, value in samples.parquet.
    columns: [u64; 3],
    write_secs: f64,
}

fn measure(parent: &std::path::Path, data: Vec<(Labels, Vec<Sample>)>) -> Measured {
    let start = Instant::now();
    let meta = write_block(
        parent,
        &BlockWriteOptions::default(),
        data.into_iter().map(Ok),
    )
    .unwrap()
    .unwrap();
    let write_secs = start.elapsed().as_secs_f64();
    let block = Block::open(&parent.join(&meta.id)).unwrap();
    let reader =
        SerializedFileReader::new(std::fs::File::open(block.dir().join(SAMPLES_FILE)).unwrap())
            .unwrap();
    let mut columns = [0u64; 3];
    for rg in reader.metadata().row_groups() {
        for (c, total) in columns.iter_mut().enumerate() {
            *total += rg.column(c).compressed_size() as u64;
        }
    }
    Measured {
        total_bytes: block.size_bytes(),
        samples: meta.num_samples,
        columns,
        block,
        write_secs,
    }
}

fn per_sample(bytes: u64, samples: u64) -> f64 {
    bytes as f64 / samples as f64
}

/// Small enough for debug builds: bounds on bytes per sample per kind.
#[test]
fn bytes_per_sample_stay_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    // (kind, upper bound on total bytes/sample with 200 series × 1,440 samples, ±3 ms jitter)
    let bounds = [
        (Kind::Constant, 0.45),
        (Kind::CounterInt, 3.2),
        (Kind::CounterDec2, 6.7),
        (Kind::GaugeInt, 3.0),
        (Kind::GaugeDec2, 1.8),
    ];
    for (kind, bound) in bounds {
        let m = measure(tmp.path(), dataset(200, 1440, 3, |_| kind));
        let b = per_sample(m.total_bytes, m.samples);
        println!(
            "{kind:?}: {b:.3} bytes/sample (series_id {:.3}, timestamp {:.3}, value {:.3})",
            per_sample(m.columns[0], m.samples),
            per_sample(m.columns[1], m.samples),
            per_sample(m.columns[2], m.samples)
        );
        assert!(
            b < bound * 100.0,
            "{kind:?}: {b:.3} bytes/sample, bound {bound}"
        );
        // Timestamps with ±3 ms jitter: about 3 bits of noise per sample.
        assert!(
            per_sample(m.columns[1], m.samples) < 50.0,
            "{kind:?} timestamps"
        );
        assert!(
            per_sample(m.columns[0], m.samples) < 0.02,
            "{kind:?} series ids"
        );
    }
    // Perfectly regular timestamps cost almost nothing.
    let m = measure(tmp.path(), dataset(200, 1440, 0, |_| Kind::Constant));
    assert!(
        per_sample(m.columns[1], m.samples) < 0.05,
        "regular timestamps: {}",
        per_sample(m.columns[1], m.samples)
    );
}

#[test]
fn full_report() {
    if std::env::var_os("SILT_BLOCK_REPORT").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (n_series, n_samples) = (2000, 1440);
    println!("== {n_series} series x {n_samples} samples, 15 s scrapes, ±3 ms jitter ==");
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "total B/s", "sid", "ts", "value", "other"
    );
    let mut mixed = None;
    for (name, kind_of) in [
        (
            "Constant",
            Box::new(|_| Kind::Constant) as Box<dyn Fn(usize) -> Kind>,
        ),
        ("CounterInt", Box::new(|_| Kind::CounterInt)),
        ("CounterDec2", Box::new(|_| Kind::CounterDec2)),
        ("GaugeInt", Box::new(|_| Kind::GaugeInt)),
        ("GaugeDec2", Box::new(|_| Kind::GaugeDec2)),
        ("mixed", Box::new(mixed_kind)),
    ] {
        let m = measure(tmp.path(), dataset(n_series, n_samples, 3, kind_of));
        let other = m.total_bytes - m.columns.iter().sum::<u64>();
        println!(
            "{name:<12} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}   (write {:.2} M samples/s)",
            per_sample(m.total_bytes, m.samples),
            per_sample(m.columns[0], m.samples),
            per_sample(m.columns[1], m.samples),
            per_sample(m.columns[2], m.samples),
            per_sample(other, m.samples),
            m.samples as f64 / m.write_secs / 1e6,
        );
        if name == "mixed" {
            mixed = Some(m);
        }
    }
    let m = mixed.unwrap();
    read_speed(&m.block);
    alternatives(n_series, n_samples);
}

fn read_speed(block: &Block) {
    let n = block.num_series();
    let samples = block.meta().num_samples as f64;
    let mut out = Vec::new();
    let start = Instant::now();
    for id in 0..n {
        out.clear();
        block
            .read_samples(id, i64::MIN, i64::MAX, &mut out)
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read_samples, whole series: {:.1} M samples/s, {:.1} us/series",
        samples / secs / 1e6,
        secs * 1e6 / f64::from(n)
    );
    let (lo, hi) = (block.meta().max_time - 3_600_000, block.meta().max_time);
    let start = Instant::now();
    let mut got = 0;
    for id in 0..n {
        out.clear();
        block.read_samples(id, lo, hi, &mut out).unwrap();
        got += out.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read_samples, last hour: {:.1} us/series ({got} samples)",
        secs * 1e6 / f64::from(n)
    );
    for step in [1, 10] {
        let ids: Vec<u32> = (0..n).step_by(step).collect();
        let start = Instant::now();
        let mut got = 0usize;
        block
            .read_many(&ids, i64::MIN, i64::MAX, &mut |_, s| got += s.len())
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "read_many, every {step} series: {:.1} M samples/s",
            got as f64 / secs / 1e6
        );
    }
}

/// Writes the mixed data set with other settings, outside the block format,
/// to compare value encodings. Pages follow the block writer's rule.
fn alternatives(n_series: usize, n_samples: usize) {
    let data = dataset(n_series, n_samples, 3, mixed_kind);
    let total: usize = data.iter().map(|(_, s)| s.len()).sum();
    println!("== value column alternatives (mixed data, bytes/sample of the value column) ==");
    let values: Vec<f64> = data
        .iter()
        .flat_map(|(_, s)| s.iter().map(|x| x.v))
        .collect();
    let lens: Vec<usize> = data.iter().map(|(_, s)| s.len()).collect();
    for (name, enc, dict) in [
        ("BYTE_STREAM_SPLIT", Encoding::BYTE_STREAM_SPLIT, false),
        ("PLAIN", Encoding::PLAIN, false),
        ("RLE_DICTIONARY", Encoding::PLAIN, true),
    ] {
        for level in [1, 3, 9] {
            for page_rows in [1024, 4096, 16384] {
                let col: ArrayRef = Arc::new(Float64Array::from(values.clone()));
                let size = column_size(col, &lens, page_rows, enc, dict, level);
                println!(
                    "  {name:<18} zstd({level}) pages<={page_rows:<6} {:.3}",
                    size as f64 / total as f64
                );
            }
        }
    }
    // Proposal: per series, the smallest k in 0..=6 with v == round(v·10^k) / 10^k
    // for every sample (bit-exact), stored as INT64 DELTA_BINARY_PACKED; other
    // series keep DOUBLE.
    let mut scaled: Vec<i64> = Vec::new();
    let mut rest: Vec<f64> = Vec::new();
    let (mut scaled_lens, mut rest_lens) = (Vec::new(), Vec::new());
    for (_, s) in &data {
        let k = (0..=6).find(|&k| {
            let p = 10f64.powi(k);
            s.iter().all(|x| {
                x.v.is_finite()
                    && (x.v * p).abs() < 9e15
                    && ((x.v * p).round() / p).to_bits() == x.v.to_bits()
            })
        });
        match k {
            Some(k) => {
                let p = 10f64.powi(k);
                scaled.extend(s.iter().map(|x| (x.v * p).round() as i64));
                scaled_lens.push(s.len());
            }
            None => {
                rest.extend(s.iter().map(|x| x.v));
                rest_lens.push(s.len());
            }
        }
    }
    let a = column_size(
        Arc::new(Int64Array::from(scaled)),
        &scaled_lens,
        4096,
        Encoding::DELTA_BINARY_PACKED,
        false,
        3,
    );
    let b = if rest.is_empty() {
        0
    } else {
        column_size(
            Arc::new(Float64Array::from(rest)),
            &rest_lens,
            4096,
            Encoding::BYTE_STREAM_SPLIT,
            false,
            3,
        )
    };
    println!(
        "  decimal-scaled INT64 DELTA + DOUBLE rest, zstd(3): {:.3}",
        (a + b) as f64 / total as f64
    );
    println!(
        "== per kind, 200 series x {n_samples}: value column bytes/sample (zstd 3, pages <= 4096) =="
    );
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>12}",
        "kind", "BSS", "PLAIN", "DICT", "scaled INT64"
    );
    for kind in KINDS {
        let d = dataset(200, n_samples, 3, |_| kind);
        let t = d.iter().map(|(_, s)| s.len()).sum::<usize>() as f64;
        let lens: Vec<usize> = d.iter().map(|(_, s)| s.len()).collect();
        let scale = if matches!(kind, Kind::CounterDec2 | Kind::GaugeDec2) {
            100.0
        } else {
            1.0
        };
        let ints: Vec<i64> = d
            .iter()
            .flat_map(|(_, s)| s.iter().map(move |x| (x.v * scale).round() as i64))
            .collect();
        let floats = || -> ArrayRef {
            Arc::new(Float64Array::from(
                d.iter()
                    .flat_map(|(_, s)| s.iter().map(|x| x.v))
                    .collect::<Vec<_>>(),
            ))
        };
        let bss =
            column_size(floats(), &lens, 4096, Encoding::BYTE_STREAM_SPLIT, false, 3) as f64 / t;
        let plain = column_size(floats(), &lens, 4096, Encoding::PLAIN, false, 3) as f64 / t;
        let dict = column_size(floats(), &lens, 4096, Encoding::PLAIN, true, 3) as f64 / t;
        let scaled = column_size(
            Arc::new(Int64Array::from(ints)),
            &lens,
            4096,
            Encoding::DELTA_BINARY_PACKED,
            false,
            3,
        ) as f64
            / t;
        println!(
            "{:<12} {bss:>8.3} {plain:>8.3} {dict:>8.3} {scaled:>12.3}",
            format!("{kind:?}")
        );
    }
    println!("== timestamp column bytes/sample by jitter (DELTA_BINARY_PACKED, zstd 3) ==");
    for jitter in [0, 1, 3, 10] {
        let d = dataset(200, n_samples, jitter, |_| Kind::Constant);
        let t = d.iter().map(|(_, s)| s.len()).sum::<usize>() as f64;
        let lens: Vec<usize> = d.iter().map(|(_, s)| s.len()).collect();
        let ts: Vec<i64> = d.iter().flat_map(|(_, s)| s.iter().map(|x| x.t)).collect();
        let size = column_size(
            Arc::new(Int64Array::from(ts)),
            &lens,
            4096,
            Encoding::DELTA_BINARY_PACKED,
            false,
            3,
        );
        println!("  ±{jitter} ms: {:.3}", size as f64 / t);
    }
}

/// Compressed size of one column written with the block writer's page rule.
fn column_size(
    col: ArrayRef,
    lens: &[usize],
    page_rows: usize,
    enc: Encoding,
    dict: bool,
    level: i32,
) -> u64 {
    let field = Field::new("v", col.data_type().clone(), false);
    let schema = Arc::new(Schema::new(vec![field]));
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(level).unwrap()))
        .set_dictionary_enabled(dict)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_write_batch_size(page_rows)
        .set_data_page_row_count_limit(1)
        .set_data_page_size_limit(1 << 30)
        .set_max_row_group_row_count(None);
    if !dict {
        props = props.set_column_encoding(ColumnPath::from("v"), enc);
    }
    let props = props.build();
    let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).unwrap();
    let mut write = |from: usize, len: usize| {
        let batch = RecordBatch::try_new(schema.clone(), vec![col.slice(from, len)]).unwrap();
        w.write(&batch).unwrap();
    };
    // Same page rule as the block writer: whole series up to page_rows, long
    // series cut into near-equal pages.
    let (mut pos, mut pending) = (0usize, 0usize);
    for &len in lens {
        if pending + len > page_rows && pending > 0 {
            write(pos - pending, pending);
            pending = 0;
        }
        if len <= page_rows {
            pending += len;
        } else {
            let per = len.div_ceil(len.div_ceil(page_rows));
            let mut at = pos;
            while at < pos + len {
                let l = per.min(pos + len - at);
                write(at, l);
                at += l;
            }
        }
        pos += len;
    }
    if pending > 0 {
        write(pos - pending, pending);
    }
    let meta = w.close().unwrap();
    meta.row_groups()
        .iter()
        .map(|rg| rg.column(0).compressed_size() as u64)
        .sum()
}

#[test]
fn dataset_kinds_are_what_they_claim() {
    let mut rng = StdRng::seed_from_u64(1);
    let c = gen_samples(Kind::CounterDec2, 100, 3, &mut rng);
    assert!(c.windows(2).all(|w| w[0].v <= w[1].v && w[0].t < w[1].t));
    assert!(
        c.iter()
            .all(|s| format!("{:.2}", s.v).parse::<f64>().unwrap().to_bits() == s.v.to_bits())
    );
    let k = gen_samples(Kind::Constant, 100, 0, &mut rng);
    assert!(
        k.windows(2)
            .all(|w| w[0].v == w[1].v && w[1].t - w[0].t == 15_000)
    );
}

/// `SILT_BLOCK_PROFILE=1`: only the read loops, for a profiler.
#[test]
fn read_profile() {
    if std::env::var_os("SILT_BLOCK_PROFILE").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = measure(tmp.path(), dataset(2000, 1440, 3, mixed_kind));
    let mut out = Vec::new();
    let start = Instant::now();
    for _ in 0..5 {
        for id in 0..m.block.num_series() {
            out.clear();
            m.block
                .read_samples(id, i64::MIN, i64::MAX, &mut out)
                .unwrap();
        }
    }
    println!(
        "read_samples: {:.1} us/series",
        start.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
}
