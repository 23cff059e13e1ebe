//! Measures `Db::append` throughput on a node_exporter-like shape: many
//! series, one sample each per batch, 2,000 series per batch, several
//! concurrent writers. `cargo run --release -p engine --example append_throughput -- [series] [rounds] [writers]`

use std::sync::Arc;
use std::time::Instant;

use engine::{Db, Labels, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(20_000);
    let rounds = args.get(1).copied().unwrap_or(60);
    let writers = args.get(2).copied().unwrap_or(4);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path());
    opts.background = false;
    let db = Db::open(opts, &mut Registry::default()).unwrap();
    let labels: Arc<Vec<Labels>> = Arc::new(
        (0..series)
            .map(|i| {
                let host = format!("host-{:05}.example.org:9100", i / 200);
                let cpu = format!("{}", i % 8);
                let mode = ["idle", "user", "system", "iowait", "irq"][i % 5].to_string();
                Labels::new(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", &cpu),
                    ("datacenter", "eu-west-1"),
                    ("env", "production"),
                    ("instance", &host),
                    ("job", "node"),
                    ("mode", &mode),
                    ("series", &format!("{}", i % 200 / 40)),
                ])
            })
            .collect(),
    );
    let t0 = 1_700_000_000_000i64;
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let db = db.clone();
            let labels = labels.clone();
            std::thread::spawn(move || {
                for r in 0..rounds {
                    let t = t0 + r as i64 * 15_000;
                    for chunk in (0..labels.len())
                        .filter(|i| i % writers == w)
                        .collect::<Vec<_>>()
                        .chunks(2000)
                    {
                        let batch = WriteBatch {
                            series: chunk
                                .iter()
                                .map(|&i| {
                                    SeriesSamples::new(
                                        labels[i].clone(),
                                        vec![Sample::new(t, (r * 7 + i) as f64 * 0.25)],
                                    )
                                })
                                .collect(),
                            metadata: vec![],
                        };
                        db.append(&batch).unwrap().wait_blocking().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let total = series * rounds;
    println!(
        "{total} samples in {secs:.2}s: {:.0} samples/s; head {} series, {} bytes ({:.0} B/series)",
        total as f64 / secs,
        db.stats().head_series,
        db.head_memory_bytes(),
        db.head_memory_bytes() as f64 / series as f64
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
    {
        println!("{line}");
    }
    let start = Instant::now();
    db.cut_head().unwrap();
    println!(
        "cut: {:.2}s; block bytes {} ({:.3} B/sample)",
        start.elapsed().as_secs_f64(),
        db.stats().block_bytes,
        db.stats().block_bytes as f64 / total as f64
    );
}
