#![no_main]
//! Fuzz target block_open: replaces one file of a valid block with the fuzz
//! input and opens and reads the block. The first input byte picks the
//! file and whether `meta.json` is resealed (sizes and CRCs recomputed) so
//! the damaged Parquet gets past the checksums to the Parquet checks.
//!
//! Invariants: no panic; every error is `Corruption` naming the replaced
//! file; when open succeeds, `read_many` equals per-series `read_samples`,
//! every series' samples are sorted and inside its time range, and its
//! start-timestamp runs are sorted, disjoint, inside that range and never 0.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use engine::block::{Block, BlockSeries, BlockWriteOptions, META_FILE, SAMPLES_FILE, SERIES_FILE, STARTS_FILE, TIMESTAMPS_FILE, read_meta, write_block};
use engine::{Error, Labels, STALE_NAN, Sample, StartRun};
use libfuzzer_sys::fuzz_target;

/// A pristine block (directory) and a scratch copy location.
struct Fixture {
    pristine: PathBuf,
    scratch: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("silt-fuzz-block-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let mut series: Vec<BlockSeries> = (0..12)
            .map(|i| {
                let labels = Labels::new(&[("__name__", "m"), ("i", &format!("{i:02}")), ("job", if i % 2 == 0 { "a" } else { "b" })]);
                // Pairs of series share their timestamps (one sequence in
                // timestamps.parquet for both).
                let samples = (0..(20 + (i / 2) * 30))
                    .map(|j| {
                        // Decimal runs with stale markers (stored as mantissas plus
                        // doubles) and, every fourth series, non-decimal runs.
                        let v = if j % 17 == 0 {
                            f64::from_bits(STALE_NAN)
                        } else if i % 4 == 3 {
                            (j as f64 + 0.5).sqrt()
                        } else {
                            (i * j) as f64 * 0.25
                        };
                        Sample::new(1_000 + j as i64 * 15_000 + (j as i64 % 3), v)
                    })
                    .collect::<Vec<Sample>>();
                // Every third series has start timestamps: a counter's run
                // per reset (every 25 samples).
                let starts = if i % 3 == 0 {
                    samples
                        .chunks(25)
                        .map(|c| StartRun { first: c[0].t, last: c[c.len() - 1].t, start: c[0].t - 7 })
                        .collect()
                } else {
                    Vec::new()
                };
                BlockSeries { labels, samples, starts }
            })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let meta = write_block(&root, &BlockWriteOptions::default(), series.into_iter().map(Ok)).unwrap().unwrap();
        Fixture { pristine: root.join(&meta.id), scratch: root.join("scratch") }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn reseal(dir: &Path) {
    let mut meta = read_meta(dir).unwrap();
    for f in &mut meta.files {
        let bytes = std::fs::read(dir.join(&f.name)).unwrap();
        f.size = bytes.len() as u64;
        f.crc32c = crc32c(&bytes);
    }
    std::fs::write(dir.join(META_FILE), meta.to_json()).unwrap();
}

/// CRC-32C (Castagnoli), bitwise; the fuzz crate does not depend on crc32c.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

fn check(dir: &Path, file: &str) {
    let block = match Block::open(dir) {
        Ok(b) => b,
        Err(e) => return expect_corruption(e, file),
    };
    let n = block.num_series();
    let ids: Vec<u32> = (0..n).collect();
    let mut many: Vec<(u32, Vec<(i64, u64)>)> = Vec::new();
    if let Err(e) = block.read_many(&ids, i64::MIN, i64::MAX, &mut |id, s| {
        many.push((id, s.iter().map(|s| (s.t, s.v.to_bits())).collect()))
    }) {
        return expect_corruption(e, file);
    }
    let mut singles = Vec::new();
    let mut out = Vec::new();
    for id in ids {
        out.clear();
        if let Err(e) = block.read_samples(id, i64::MIN, i64::MAX, &mut out) {
            return expect_corruption(e, file);
        }
        let (lo, hi) = block.series_time_range(id);
        assert!(out.windows(2).all(|w| w[0].t < w[1].t), "unsorted samples");
        assert!(out.iter().all(|s| s.t >= lo && s.t <= hi), "sample outside the series' time range");
        let labels = block.labels(id);
        assert!(labels.as_slice().windows(2).all(|w| w[0].name < w[1].name), "labels not sorted");
        let runs = block.start_runs(id, i64::MIN, i64::MAX);
        assert!(runs.windows(2).all(|w| w[0].last < w[1].first), "runs overlap");
        assert!(runs.iter().all(|r| r.start != 0 && lo <= r.first && r.first <= r.last && r.last <= hi), "bad run");
        assert_eq!(block.series_has_starts(id), !runs.is_empty());
        if !out.is_empty() {
            singles.push((id, out.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>()));
        }
    }
    assert_eq!(many, singles, "read_many differs from read_samples");
}

fn expect_corruption(e: Error, file: &str) {
    // Samples name their times by row (`ts_row`): damage to one of the two
    // files that passes its own checks can surface as the other's (times out
    // of order or range name timestamps.parquet).
    // Runs are checked against the series' time ranges: a damaged series
    // table that passes its own checks can surface as starts.parquet's.
    let allowed: &[&str] = match file {
        SAMPLES_FILE | TIMESTAMPS_FILE => &[SAMPLES_FILE, TIMESTAMPS_FILE],
        SERIES_FILE => &[SERIES_FILE, STARTS_FILE],
        other => &[other],
    };
    match e {
        Error::Corruption { path, .. } => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(allowed.contains(&name), "corruption of {file} names {path:?}")
        }
        other => panic!("want corruption of {file}, got {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let fx = fixture();
    copy_dir(&fx.pristine, &fx.scratch);
    let (file, resealed) = match selector % 9 {
        0 => (META_FILE, false),
        1 => (SAMPLES_FILE, true),
        2 => (SERIES_FILE, true),
        3 => (SAMPLES_FILE, false),
        4 => (SERIES_FILE, false),
        5 => (TIMESTAMPS_FILE, true),
        6 => (TIMESTAMPS_FILE, false),
        7 => (STARTS_FILE, true),
        _ => (STARTS_FILE, false),
    };
    std::fs::write(fx.scratch.join(file), body).unwrap();
    if resealed {
        reseal(&fx.scratch);
    }
    check(&fx.scratch, file);
});
