//! End-to-end ingest throughput over loopback HTTP, in one process: a real
//! `Db` in a temporary directory, the axum routes on 127.0.0.1, and
//! `connections` concurrent senders (like Prometheus shards, each owning its
//! series) posting pre-encoded remote-write 1.0 requests of 2,000 series ×
//! 1 sample × 12 labels. Used to choose between decoding inline on the
//! async worker and on tokio's blocking pool.
//!
//! `cargo run --release -p ingest --example load -- [inline|blocking] [connections] [rounds] [sync|async]`

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use engine::{Db, Durability, Options};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ingest::{Ingest, Limits, proto, routes};

const SERIES_PER_REQUEST: usize = 2000;

fn labels(conn: usize, i: usize) -> Vec<proto::Label> {
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
    let host = conn * 20 + i / 100;
    let pairs = [
        ("__name__", METRICS[i % 8].to_string()),
        ("instance", format!("node-{host:04}.prod.example.net:9100")),
        ("job", "node".to_string()),
        ("cpu", (i % 16).to_string()),
        ("mode", MODES[(i / 16) % 8].to_string()),
        ("cluster", format!("eu-west-{}", host % 3)),
        ("datacenter", format!("dc{}", host % 5)),
        ("env", "production".to_string()),
        ("team", "platform-infrastructure".to_string()),
        ("rack", format!("r{:02}", host % 40)),
        ("kernel", "6.1.0-18-amd64".to_string()),
        ("device", format!("eth{}", i % 4)),
    ];
    pairs
        .into_iter()
        .map(|(n, v)| proto::Label::new(n, v))
        .collect()
}

/// User + system CPU time of this process (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name come field 3 (state) onwards;
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let inline = args.get(1).is_none_or(|m| m != "blocking");
    let connections: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(40);
    let sync = args.get(4).is_none_or(|d| d != "async");

    // Pre-encode every body so the senders cost little CPU.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start_t = now - rounds as i64 * 15_000;
    let bodies: Vec<Vec<Bytes>> = (0..connections)
        .map(|c| {
            let series: Vec<Vec<proto::Label>> =
                (0..SERIES_PER_REQUEST).map(|i| labels(c, i)).collect();
            (0..rounds)
                .map(|r| {
                    let req = proto::WriteRequest {
                        timeseries: series
                            .iter()
                            .enumerate()
                            .map(|(i, l)| proto::TimeSeries {
                                labels: l.clone(),
                                samples: vec![proto::Sample {
                                    value: (r * i) as f64,
                                    timestamp: start_t + r as i64 * 15_000,
                                }],
                                ..Default::default()
                            })
                            .collect(),
                        metadata: vec![],
                    };
                    Bytes::from(proto::encode_snappy(&req))
                })
                .collect()
        })
        .collect();

    // The server gets a 2-worker runtime (and tokio's blocking pool); the
    // senders run on their own thread so they do not take its workers.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = server_rt.block_on(async {
        let mut registry = prometheus_client::registry::Registry::default();
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Async {
                interval: Duration::from_secs(1),
            }
        };
        let opts = Options {
            durability,
            background: false,
            ..Options::new(dir.path())
        };
        let db = Db::open(opts, &mut registry).unwrap();
        let ingest = Ingest::new(db, Limits::default(), &mut registry).with_inline_decode(inline);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, routes(ingest)).await.unwrap() });
        addr
    });

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let url: hyper::Uri = format!("http://{addr}/api/v1/write").parse().unwrap();
        let started = Instant::now();
        let cpu0 = process_cpu_seconds();
        let mut tasks = Vec::new();
        for conn_bodies in bodies {
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                for body in conn_bodies {
                    let req = hyper::Request::post(url.clone())
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "snappy")
                        .body(Full::new(body))
                        .unwrap();
                    let resp = client.request(req).await.unwrap();
                    if resp.status() != 204 {
                        let status = resp.status();
                        let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
                        panic!("{status}: {}", String::from_utf8_lossy(&body));
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds() - cpu0;
        let samples = connections * rounds * SERIES_PER_REQUEST;
        println!(
            "{} decode, {connections} connections, {} acks: {samples} samples in {secs:.2} s = {:.0} samples/s; \
             {cpu:.2} CPU-s (server and senders) = {:.0} samples per CPU-second",
            if inline { "inline" } else { "blocking-pool" },
            if sync { "fsynced" } else { "async" },
            samples as f64 / secs,
            samples as f64 / cpu
        );
    });
    drop(server_rt);
}
