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
use engine::block::{Block, BlockWriteOptions, SAMPLES_FILE, TIMESTAMPS_FILE, write_block};
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
    /// `node_network_receive_bytes_total`: integers growing by 0–200,000
    /// bytes per scrape.
    CounterBytes,
    /// `node_hwmon_temp_celsius`: quarter degrees doing a random walk of ±1 °C.
    GaugeQuantum,
}

const KINDS: [Kind; 7] = [
    Kind::Constant,
    Kind::CounterInt,
    Kind::CounterDec2,
    Kind::GaugeInt,
    Kind::GaugeDec2,
    Kind::CounterBytes,
    Kind::GaugeQuantum,
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

/// A mix with byte counters and quantised gauges: 30% constant, 15%
/// integer counters, 20% two-decimal counters, 10% byte counters, 15%
/// integer gauges, 5% two-decimal gauges, 5% quarter-degree gauges.
fn realistic_kind(i: usize) -> Kind {
    match i % 20 {
        0..=5 => Kind::Constant,
        6..=8 => Kind::CounterInt,
        9..=12 => Kind::CounterDec2,
        13..=14 => Kind::CounterBytes,
        15..=17 => Kind::GaugeInt,
        18 => Kind::GaugeDec2,
        _ => Kind::GaugeQuantum,
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
        Kind::CounterBytes => rng.random_range(1_000_000..1_000_000_000_000),
        Kind::GaugeQuantum => rng.random_range(120..320),
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
            Kind::CounterBytes => {
                int += rng.random_range(0..=200_000);
                int as f64
            }
            Kind::GaugeQuantum => {
                int = (int + rng.random_range(-4..=4)).clamp(0, 500);
                int as f64 / 4.0
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
    /// Compressed bytes of series_id, ts_row, value, value_int,
    /// value_scale in samples.parquet.
    columns: [u64; 5],
    /// Size of timestamps.parquet.
    times_bytes: u64,
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
    let mut columns = [0u64; 5];
    for rg in reader.metadata().row_groups() {
        for (c, total) in columns.iter_mut().enumerate().take(rg.num_columns()) {
            *total += rg.column(c).compressed_size() as u64;
        }
    }
    let times_bytes = std::fs::metadata(block.dir().join(TIMESTAMPS_FILE))
        .unwrap()
        .len();
    Measured {
        times_bytes,
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

/// Small enough for debug builds: bounds on bytes per sample per kind
/// (about 10% above what format version 2 measures).
#[test]
fn bytes_per_sample_stay_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    // (kind, upper bound on total bytes/sample with 200 series × 1,440
    // samples, ±3 ms jitter; version 1 measured 0.69, 2.35, 4.78, 1.82,
    // 5.0, 4.15, 1.53)
    let bounds = [
        (Kind::Constant, 0.85),
        (Kind::CounterInt, 1.95),
        (Kind::CounterDec2, 2.0),
        (Kind::GaugeInt, 2.05),
        (Kind::GaugeDec2, 1.4),
        (Kind::CounterBytes, 3.45),
        (Kind::GaugeQuantum, 1.45),
    ];
    for (kind, bound) in bounds {
        let m = measure(tmp.path(), dataset(200, 1440, 3, |_| kind));
        let b = per_sample(m.total_bytes, m.samples);
        let col = |c: usize| per_sample(m.columns[c], m.samples);
        let times = per_sample(m.times_bytes, m.samples);
        println!(
            "{kind:?}: {b:.3} bytes/sample (series_id {:.3}, ts_row {:.3}, value {:.3}, value_int {:.3}, value_scale {:.3}, timestamps.parquet {times:.3})",
            col(0),
            col(1),
            col(2),
            col(3),
            col(4)
        );
        assert!(b < bound, "{kind:?}: {b:.3} bytes/sample, bound {bound}");
        // Timestamps with ±3 ms jitter, different in every series: about 4
        // bits of noise per sample; the references to them next to nothing.
        assert!(times < 0.65, "{kind:?} timestamps: {times:.3}");
        assert!(col(1) < 0.03, "{kind:?} ts_row: {:.3}", col(1));
        assert!(col(0) < 0.02, "{kind:?} series ids: {:.3}", col(0));
        // Every kind is decimal: `value` holds only filler zeros, and the
        // scale column costs next to nothing.
        assert!(col(2) < 0.02, "{kind:?} value column: {:.3}", col(2));
        assert!(col(4) < 0.02, "{kind:?} value_scale column: {:.3}", col(4));
    }
    // Perfectly regular timestamps cost almost nothing (the file's footer
    // and page index included).
    let m = measure(tmp.path(), dataset(200, 1440, 0, |_| Kind::Constant));
    assert!(
        per_sample(m.times_bytes, m.samples) < 0.1,
        "regular timestamps: {}",
        per_sample(m.times_bytes, m.samples)
    );
    // Series scraped together share their (jittered) timestamps: stored
    // once per instance (100 series), they cost next to nothing.
    let mut data = dataset(200, 1440, 3, |_| Kind::Constant);
    share_times_per_instance(&mut data);
    let m = measure(tmp.path(), data);
    let (times, refs) = (
        per_sample(m.times_bytes, m.samples),
        per_sample(m.columns[1], m.samples),
    );
    println!("shared timestamps: timestamps.parquet {times:.4}, ts_row {refs:.4}");
    assert!(
        times + refs < 0.03,
        "shared timestamps: {times:.4} + {refs:.4}"
    );
}

/// Gives every series the timestamps of the first series of its instance,
/// as a scrape does.
fn share_times_per_instance(data: &mut [(Labels, Vec<Sample>)]) {
    let mut first: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for (labels, samples) in data.iter_mut() {
        let times = first
            .entry(labels.get("instance").unwrap_or_default().to_owned())
            .or_insert_with(|| samples.iter().map(|s| s.t).collect());
        for (s, &t) in samples.iter_mut().zip(times.iter()) {
            s.t = t;
        }
    }
}

/// Values that are not decimal (arbitrary doubles, as from a `rate()`
/// recording rule) cost what they cost in version 1: the filler columns add
/// almost nothing.
#[test]
fn non_decimal_values_cost_no_more_than_doubles() {
    let tmp = tempfile::tempdir().unwrap();
    let mut data = dataset(50, 1440, 3, |_| Kind::GaugeDec2);
    let mut rng = StdRng::seed_from_u64(7);
    for (_, samples) in &mut data {
        for s in samples.iter_mut() {
            s.v = rng.random::<f64>() * 1000.0 / 3.0;
        }
    }
    let m = measure(tmp.path(), data);
    let col = |c: usize| per_sample(m.columns[c], m.samples);
    println!(
        "random doubles: value {:.3}, value_int {:.3}, value_scale {:.3}",
        col(2),
        col(3),
        col(4)
    );
    assert!(col(3) + col(4) < 0.03, "filler: {:.3}", col(3) + col(4));
    assert!(col(2) < 8.1, "value: {:.3}", col(2));
}

/// Which kind series `i` of a data set is.
type KindOf = Box<dyn Fn(usize) -> Kind>;

#[test]
fn full_report() {
    if std::env::var_os("SILT_BLOCK_REPORT").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (n_series, n_samples) = (2000, 1440);
    println!("== {n_series} series x {n_samples} samples, 15 s scrapes, ±3 ms jitter ==");
    println!(
        "{:<12} {:>9} {:>7} {:>7} {:>7} {:>9} {:>7} {:>7} {:>11}",
        "kind", "total B/s", "sid", "ts", "value", "value_int", "scale", "other", "v1 (est.)"
    );
    let mut mixed = None;
    let mut kinds: Vec<(String, KindOf)> = KINDS
        .iter()
        .map(|&k| {
            (
                format!("{k:?}"),
                Box::new(move |_| k) as Box<dyn Fn(usize) -> Kind>,
            )
        })
        .collect();
    kinds.push(("mixed".into(), Box::new(mixed_kind)));
    kinds.push(("realistic".into(), Box::new(realistic_kind)));
    for (name, kind_of) in kinds {
        let data = dataset(n_series, n_samples, 3, kind_of);
        // The version-1 value column (DOUBLE, BYTE_STREAM_SPLIT, zstd 3).
        let lens: Vec<usize> = data.iter().map(|(_, s)| s.len()).collect();
        let values: Vec<f64> = data
            .iter()
            .flat_map(|(_, s)| s.iter().map(|x| x.v))
            .collect();
        let v1_value = column_size(
            Arc::new(Float64Array::from(values)),
            &lens,
            4096,
            Encoding::BYTE_STREAM_SPLIT,
            false,
            Some(3),
        );
        let m = measure(tmp.path(), data);
        let other = m.total_bytes - m.columns.iter().sum::<u64>();
        let v1 = m.total_bytes - m.columns[2..].iter().sum::<u64>() + v1_value;
        println!(
            "{name:<12} {:>9.3} {:>7.3} {:>7.3} {:>7.3} {:>9.3} {:>7.3} {:>7.3} {:>11.3}   (write {:.2} M samples/s)",
            per_sample(m.total_bytes, m.samples),
            per_sample(m.columns[0], m.samples),
            per_sample(m.columns[1], m.samples),
            per_sample(m.columns[2], m.samples),
            per_sample(m.columns[3], m.samples),
            per_sample(m.columns[4], m.samples),
            per_sample(other, m.samples),
            per_sample(v1, m.samples),
            m.samples as f64 / m.write_secs / 1e6,
        );
        if name == "mixed" {
            mixed = Some(m);
        }
    }
    let m = mixed.unwrap();
    read_speed(&m.block);
    alternatives(n_samples);
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

/// Writes columns with other settings, outside the block format, to
/// compare encodings. Pages follow the block writer's rule.
fn alternatives(n_samples: usize) {
    println!(
        "== value encodings per kind, 200 x {n_samples}: bytes/sample (pages <= 4096; DBP = DELTA_BINARY_PACKED) =="
    );
    println!(
        "{:<12} {:>9} {:>9} {:>10} {:>10} {:>12}",
        "kind", "BSS zstd", "mant DBP", "mant+zstd", "delta DBP", "delta+zstd"
    );
    for kind in KINDS {
        let d = dataset(200, n_samples, 3, |_| kind);
        let t = d.iter().map(|(_, s)| s.len()).sum::<usize>() as f64;
        let lens: Vec<usize> = d.iter().map(|(_, s)| s.len()).collect();
        let scale = match kind {
            Kind::CounterDec2 | Kind::GaugeDec2 => 100.0,
            Kind::GaugeQuantum => 100.0,
            _ => 1.0,
        };
        let ints: Vec<i64> = d
            .iter()
            .flat_map(|(_, s)| s.iter().map(move |x| (x.v * scale).round() as i64))
            .collect();
        // First differences within each series (the first value kept).
        let deltas: Vec<i64> = d
            .iter()
            .flat_map(|(_, s)| {
                let mut prev = 0i64;
                s.iter().map(move |x| {
                    let m = (x.v * scale).round() as i64;
                    let out = m - prev;
                    prev = m;
                    out
                })
            })
            .collect();
        let floats: ArrayRef = Arc::new(Float64Array::from(
            d.iter()
                .flat_map(|(_, s)| s.iter().map(|x| x.v))
                .collect::<Vec<_>>(),
        ));
        let size =
            |col: ArrayRef, enc, level| column_size(col, &lens, 4096, enc, false, level) as f64 / t;
        let dbp = Encoding::DELTA_BINARY_PACKED;
        let ints: ArrayRef = Arc::new(Int64Array::from(ints));
        let deltas: ArrayRef = Arc::new(Int64Array::from(deltas));
        println!(
            "{:<12} {:>9.3} {:>9.3} {:>10.3} {:>10.3} {:>12.3}",
            format!("{kind:?}"),
            size(floats, Encoding::BYTE_STREAM_SPLIT, Some(3)),
            size(ints.clone(), dbp, None),
            size(ints, dbp, Some(3)),
            size(deltas.clone(), dbp, None),
            size(deltas, dbp, Some(3)),
        );
    }
    println!("== timestamp column bytes/sample by jitter (DELTA_BINARY_PACKED) ==");
    for jitter in [0, 1, 3, 10] {
        let d = dataset(200, n_samples, jitter, |_| Kind::Constant);
        let t = d.iter().map(|(_, s)| s.len()).sum::<usize>() as f64;
        let lens: Vec<usize> = d.iter().map(|(_, s)| s.len()).collect();
        let ts: ArrayRef = Arc::new(Int64Array::from(
            d.iter()
                .flat_map(|(_, s)| s.iter().map(|x| x.t))
                .collect::<Vec<_>>(),
        ));
        let size = |level| {
            column_size(
                ts.clone(),
                &lens,
                4096,
                Encoding::DELTA_BINARY_PACKED,
                false,
                level,
            ) as f64
                / t
        };
        println!(
            "  ±{jitter} ms: uncompressed {:.3}, zstd(1) {:.3}, zstd(3) {:.3}",
            size(None),
            size(Some(1)),
            size(Some(3))
        );
    }
}

/// Compressed size of one column written with the block writer's page
/// rule; `level` is the zstd level, `None` for no compression.
fn column_size(
    col: ArrayRef,
    lens: &[usize],
    page_rows: usize,
    enc: Encoding,
    dict: bool,
    level: Option<i32>,
) -> u64 {
    let field = Field::new("v", col.data_type().clone(), false);
    let schema = Arc::new(Schema::new(vec![field]));
    let compression = match level {
        Some(l) => Compression::ZSTD(ZstdLevel::try_new(l).unwrap()),
        None => Compression::UNCOMPRESSED,
    };
    let mut props = WriterProperties::builder()
        .set_compression(compression)
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

/// Start timestamps on disk: a cumulative counter's (one start per reset)
/// cost next to nothing (measured 0.065 bytes a sample, mostly the file's
/// own metadata on this small block); a delta series' (each start the
/// previous sample's time, a run per sample) cost three jittered time
/// columns (4.1 bytes a sample), until a run kind for "the previous
/// sample's time" comes with OpenTelemetry's delta data.
#[test]
fn start_timestamps_cost_little() {
    use engine::StartRun;
    use engine::block::{BlockSeries, STARTS_FILE};
    let data = dataset(200, 480, 5, |_| Kind::CounterInt);
    let n = 200 * 480;
    for (delta, bound) in [(false, 0.1), (true, 4.6)] {
        let dir = tempfile::tempdir().unwrap();
        let series = data.iter().map(|(labels, samples)| {
            let starts: Vec<StartRun> = if delta {
                samples
                    .windows(2)
                    .map(|w| StartRun {
                        first: w[1].t,
                        last: w[1].t,
                        start: w[0].t,
                    })
                    .collect()
            } else {
                // A reset every 160 samples.
                samples
                    .chunks(160)
                    .map(|c| StartRun {
                        first: c[0].t,
                        last: c[c.len() - 1].t,
                        start: c[0].t - 1_000,
                    })
                    .collect()
            };
            Ok(BlockSeries {
                labels: labels.clone(),
                samples: samples.clone(),
                starts,
            })
        });
        let meta = write_block(dir.path(), &BlockWriteOptions::default(), series)
            .unwrap()
            .unwrap();
        let bytes = std::fs::metadata(dir.path().join(&meta.id).join(STARTS_FILE))
            .unwrap()
            .len();
        let per = per_sample(bytes, n);
        println!("start timestamps, delta {delta}: {bytes} bytes, {per:.3} bytes a sample");
        assert!(per < bound, "delta {delta}: {per:.3} bytes a sample");
    }
}
