//! Measures WAL replay: fills a data directory with `series` series ×
//! `rounds` samples (one 2,000-series batch at a time, asynchronous
//! durability), closes it without cutting a block, then times `Db::open`.
//! `cargo run --release -p engine --example replay -- [series] [rounds] [dir]`

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
    let options = || {
        let mut o = Options::new(&dir);
        o.background = false;
        o.durability = Durability::Async {
            interval: std::time::Duration::from_secs(1),
        };
        o.block_duration = std::time::Duration::from_secs(1 << 30);
        o
    };
    if !dir.join("wal").exists() || std::fs::read_dir(dir.join("wal")).unwrap().count() == 0 {
        let db = Db::open(options(), &mut Registry::default()).unwrap();
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
                        .map(|(i, l)| SeriesSamples {
                            labels: l.clone(),
                            samples: vec![Sample {
                                t,
                                v: (r * 10 + i % 7) as f64 * 0.25,
                            }],
                        })
                        .collect(),
                    metadata: Vec::new(),
                };
                drop(db.append(&batch).unwrap());
            }
        }
        println!(
            "wrote {} samples in {:.2}s",
            series * rounds,
            start.elapsed().as_secs_f64()
        );
        db.close().unwrap();
    }
    let wal_bytes: u64 = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let start = Instant::now();
    let db = Db::open(options(), &mut Registry::default()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stats = db.stats();
    println!(
        "replayed {:.1} MB of WAL in {secs:.2}s ({} head series)",
        wal_bytes as f64 / 1e6,
        stats.head_series
    );
}
