//! The head's heap per series and per sample on the ingest benchmark's own
//! workload (counting allocator): `cargo run --release -p silt-bench
//! --example head_memory_workload -- [series] [scrapes]`.

use std::alloc::System;

use engine::Labels;
use engine::head::Head;
use silt_bench::counting::{Counting, live, series_and_scrapes};
use silt_bench::workload::{Spec, Workload};

#[global_allocator]
static A: Counting<System> = Counting(System);

fn main() {
    let (series, scrapes) = series_and_scrapes();
    let w = Workload::new(Spec {
        series,
        duration_ms: scrapes as i64 * 15_000,
        end_ms: 1_800_000_000_000,
        seed: 1,
    });
    let n = w.series.len();
    let mut handles = Vec::with_capacity(n);
    let mut state = vec![0.0f64; n];
    let base = live();
    let head = Head::new();
    for i in 0..n {
        let pairs = w.labels(i);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        handles.push(head.get_or_create(&Labels::new(&refs)).0);
    }
    let handles_bytes = handles.capacity() * 8;
    let report = |what: &str, samples: u64| {
        let live = live() - base - handles_bytes;
        println!(
            "{what}: {:.1} B/series heap ({:.2} B/sample over {samples}); head.memory_bytes {:.1} B/series",
            live as f64 / n as f64,
            live as f64 / (n as f64 * samples.max(1) as f64),
            head.memory_bytes() as f64 / n as f64,
        );
    };
    report("series created", 0);
    let mut after_first = 0;
    for k in 0..scrapes {
        for i in 0..n {
            let t = w.timestamp(w.series[i].host, k);
            let v = w.value(i, k, &mut state[i]);
            let mut d = handles[i].lock();
            if matches!(d.live.check(t, v), Ok(true)) {
                d.live.push(t, v, &head.columns);
            }
        }
        if k == 0 {
            after_first = live();
            report("after 1 scrape", 1);
        }
    }
    report(&format!("after {scrapes} scrapes"), scrapes);
    let grow = live() - after_first;
    println!(
        "scrapes 2..={scrapes}: {:.2} B/sample",
        grow as f64 / (n as f64 * (scrapes - 1) as f64)
    );
}
