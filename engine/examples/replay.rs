//! Measures restart: fills a data directory with `series` series ×
//! `rounds` samples (one 2,000-series batch at a time, asynchronous
//! durability), closes it without cutting a block, then times `Db::open`
//! (head checkpoint load and WAL replay).
//! `cargo run --release -p engine --example replay -- [series] [rounds] [dir] [mode]`
//!
//! `mode` says which head checkpoints the fill writes: `periodic` (the
//! default: one whenever 256 MiB of WAL were written since the last, as
//! the background trigger does, none at close: what a SIGKILL after the
//! ingest leaves), `close` (a clean shutdown's) or `none` (full WAL
//! replay). A `dir` that already holds a WAL is only reopened (never
//! writing a checkpoint), so runs can be repeated.

use std::time::Instant;

use engine::{Db, Durability, Labels, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let series: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(120);
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(2)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let mode = args.get(3).map_or("periodic", String::as_str);
    assert!(
        ["periodic", "close", "none"].contains(&mode),
        "mode is periodic, close or none"
    );
    let options = || {
        let mut o = Options::new(&dir);
        o.background = false;
        o.checkpoint_on_close = false;
        o.durability = Durability::Async {
            interval: std::time::Duration::from_secs(1),
        };
        o.block_duration = std::time::Duration::from_secs(1 << 30);
        o
    };
    if !dir.join("wal").exists() || std::fs::read_dir(dir.join("wal")).unwrap().count() == 0 {
        let mut o = options();
        o.checkpoint_on_close = mode == "close";
        let db = Db::open(o, &mut Registry::default()).unwrap();
        let every = engine::db::DEFAULT_CHECKPOINT_WAL_BYTES;
        let mut checkpointed_at = 0u64;
        let labels: Vec<Labels> = (0..series)
            .map(|i| {
                Labels::new(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", &(i % 8).to_string()),
                    ("instance", &format!("host-{:05}.example.org:9100", i / 40)),
                    ("job", "node"),
                    ("mode", ["idle", "user", "system", "iowait", "irq"][i % 5]),
                ])
            })
            .collect();
        let t0 = 1_700_000_000_000i64;
        let start = Instant::now();
        for r in 0..rounds {
            let t = t0 + r as i64 * 15_000;
            for chunk in labels.chunks(2000) {
                let batch = WriteBatch {
                    series: chunk
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            SeriesSamples::new(
                                l.clone(),
                                vec![Sample {
                                    t,
                                    v: (r * 10 + i % 7) as f64 * 0.25,
                                }],
                            )
                        })
                        .collect(),
                    metadata: Vec::new(),
                };
                drop(db.append(&batch).unwrap());
            }
            let wal_bytes = db.stats().wal_bytes;
            if mode == "periodic" && wal_bytes >= checkpointed_at + every {
                let c = db.checkpoint().unwrap();
                println!(
                    "checkpoint after {:.1} MB of WAL: {:.1} MB in {:.2}s",
                    wal_bytes as f64 / 1e6,
                    c.bytes as f64 / 1e6,
                    c.seconds
                );
                checkpointed_at = wal_bytes;
            }
        }
        println!(
            "wrote {} samples in {:.2}s",
            series * rounds,
            start.elapsed().as_secs_f64()
        );
        db.close().unwrap();
    }
    let wal_bytes: u64 = engine::wal::list_segments(&dir.join("wal"))
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    let start = Instant::now();
    let db = Db::open(options(), &mut Registry::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stats = db.stats();
    println!(
        "opened {:.1} MB of WAL in {secs:.2}s ({} head series; checkpoint loaded: {}, WAL replayed: {:.1} MB)",
        wal_bytes as f64 / 1e6,
        stats.head_series,
        stats.checkpoint_loaded,
        stats.replayed_wal_bytes as f64 / 1e6
    );
}
