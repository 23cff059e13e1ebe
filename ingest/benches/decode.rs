//! Decode throughput of realistic remote-write requests (2,000 series of one
//! sample and 12 labels each, node_exporter-like), in samples per second:
//! the full path (snappy + streaming decoder + label validation + merging)
//! for both protocol versions, the prost-based reference decoder for
//! comparison, and a v1 request whose series the receiver's reference
//! cache already knows (the steady state of a scraping sender).
//!
//! Run with `cargo bench -p ingest --bench decode`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::proto::{self, v2};
use ingest::{Limits, RefCache, Version, decode, reference};
use prost::Message;

const SERIES: usize = 2000;

/// Label pairs of series `i`: 12 labels, values with realistic repetition.
fn series_labels(i: usize) -> Vec<(String, String)> {
    const METRICS: [&str; 8] = [
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_network_receive_bytes_total",
        "node_disk_io_time_seconds_total",
        "node_filesystem_avail_bytes",
        "node_load1",
        "node_network_transmit_packets_total",
        "node_vmstat_pgfault",
    ];
    const MODES: [&str; 8] = [
        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
    ];
    let host = i / 100;
    vec![
        ("__name__".into(), METRICS[i % 8].into()),
        (
            "instance".into(),
            format!("node-{host:04}.prod.example.net:9100"),
        ),
        ("job".into(), "node".into()),
        ("cpu".into(), (i % 16).to_string()),
        ("mode".into(), MODES[(i / 16) % 8].into()),
        ("cluster".into(), format!("eu-west-{}", host % 3)),
        ("datacenter".into(), format!("dc{}", host % 5)),
        ("env".into(), "production".into()),
        ("team".into(), "platform-infrastructure".into()),
        ("rack".into(), format!("r{:02}", host % 40)),
        ("kernel".into(), "6.1.0-18-amd64".into()),
        ("device".into(), format!("eth{}", i % 4)),
    ]
}

fn v1_request() -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: (0..SERIES)
            .map(|i| proto::TimeSeries {
                labels: series_labels(i)
                    .into_iter()
                    .map(|(n, v)| proto::Label::new(n, v))
                    .collect(),
                samples: vec![proto::Sample {
                    value: i as f64 * 1.5,
                    timestamp: 1_700_000_000_000 + i as i64,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
}

fn v2_request() -> v2::Request {
    let mut st = v2::SymbolTable::new();
    let timeseries = (0..SERIES)
        .map(|i| {
            let labels = series_labels(i);
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            v2::TimeSeries {
                labels_refs: st.refs(&pairs),
                samples: vec![v2::Sample {
                    value: i as f64,
                    timestamp: 1_700_000_000_000,
                    start_timestamp: 0,
                }],
                ..Default::default()
            }
        })
        .collect();
    v2::Request {
        symbols: st.into_symbols(),
        timeseries,
    }
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let v1_raw = v1_request().encode_to_vec();
    let v1_body = proto::snappy_compress(&v1_raw);
    let v2_raw = v2_request().encode_to_vec();
    let v2_body = proto::snappy_compress(&v2_raw);
    eprintln!(
        "request: {SERIES} series; v1 {} bytes raw, {} snappy; v2 {} bytes raw, {} snappy",
        v1_raw.len(),
        v1_body.len(),
        v2_raw.len(),
        v2_body.len()
    );

    // The machine is shared: wall-clock numbers below include time other
    // processes had the CPU. This thread's CPU time does not.
    cpu_report("v1 snappy, streaming", || {
        drop(decode(None, Some("snappy"), &v1_body, &limits))
    });
    cpu_report("v2 snappy, streaming", || {
        drop(decode(
            Some(proto::CONTENT_TYPE_V2),
            Some("snappy"),
            &v2_body,
            &limits,
        ))
    });
    cpu_report("v1 raw, prost reference", || {
        drop(reference::decode_raw(Version::V1, &v1_raw, &limits))
    });

    // The steady state: every series was appended before, so the cache
    // names them all and their labels are neither parsed nor validated.
    let dir = tempfile::tempdir().unwrap();
    let db = engine::Db::open(
        engine::Options {
            background: false,
            ..engine::Options::new(dir.path())
        },
        &mut prometheus_client::registry::Registry::default(),
    )
    .unwrap();
    let refs = RefCache::new();
    let first =
        reference::decode_raw_streaming_known(Version::V1, &v1_raw, &limits, &refs).unwrap();
    let summary = db
        .append_with_refs(&first.batch, &first.refs)
        .unwrap()
        .wait_blocking()
        .unwrap();
    refs.learn(&first.keys, &summary.refs);
    let known =
        reference::decode_raw_streaming_known(Version::V1, &v1_raw, &limits, &refs).unwrap();
    assert_eq!(known.refs.len(), SERIES, "every series known");
    cpu_report("v1 raw, streaming, series known", || {
        drop(reference::decode_raw_streaming_known(
            Version::V1,
            &v1_raw,
            &limits,
            &refs,
        ))
    });

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("v1_snappy_streaming", |b| {
        b.iter(|| decode(None, Some("snappy"), black_box(&v1_body), &limits).unwrap())
    });
    g.bench_function("v2_snappy_streaming", |b| {
        b.iter(|| {
            decode(
                Some(proto::CONTENT_TYPE_V2),
                Some("snappy"),
                black_box(&v2_body),
                &limits,
            )
            .unwrap()
        })
    });
    g.bench_function("v1_raw_streaming", |b| {
        b.iter(|| {
            reference::decode_raw_streaming(Version::V1, black_box(&v1_raw), &limits).unwrap()
        })
    });
    g.bench_function("v1_raw_streaming_known", |b| {
        b.iter(|| {
            reference::decode_raw_streaming_known(Version::V1, black_box(&v1_raw), &limits, &refs)
                .unwrap()
        })
    });
    g.bench_function("v1_raw_prost_reference", |b| {
        b.iter(|| reference::decode_raw(Version::V1, black_box(&v1_raw), &limits).unwrap())
    });
    g.bench_function("v1_snappy_only", |b| {
        b.iter(|| {
            snap::raw::Decoder::new()
                .decompress_vec(black_box(&v1_body))
                .unwrap()
        })
    });
    g.finish();
}

/// CPU time of this thread, in ns (Linux).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `f` for about 3 s and prints samples decoded per CPU-second.
fn cpu_report(name: &str, mut f: impl FnMut()) {
    let (Some(cpu0), wall) = (thread_cpu_ns(), Instant::now()) else {
        return;
    };
    let mut n = 0u64;
    while wall.elapsed() < Duration::from_secs(3) {
        f();
        n += 1;
    }
    let cpu = thread_cpu_ns().unwrap_or(cpu0) - cpu0;
    let per_series_ns = cpu as f64 / (n as f64 * SERIES as f64);
    eprintln!(
        "cpu: {name}: {:.2} M samples per CPU-second ({per_series_ns:.0} ns CPU per series, {n} requests, {:.0}% of wall time on CPU)",
        1e3 / per_series_ns,
        cpu as f64 / wall.elapsed().as_nanos() as f64 * 100.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
