//! Range-query benchmark of the evaluator on generated node_exporter-shaped
//! data: hosts with per-cpu×mode CPU counters (two decimals), memory and
//! filesystem gauges, network counters, load averages, a classic
//! histogram and `up`, 25 h at 15 s with a per-host phase and jitter,
//! written through the engine into compacted blocks plus a head.
//!
//! `cargo bench -p query --bench rollup -- [filter,...]`. Prints the
//! median and minimum of each query form (one warm-up, then
//! `SILT_BENCH_REPS` repetitions, default 7) and a digest of its answer
//! (labels, timestamps and value bits), so two builds can be compared for
//! identical results. Settings (environment):
//!
//! * `SILT_BENCH_HOSTS`: hosts to generate (default 48: about 2,240
//!   series, 13 M samples; 1,536 CPU series as in `docs/benchmarks.md`).
//! * `SILT_BENCH_DIR`: keep the generated data there and reuse it on the
//!   next run (default: a temporary directory removed at exit).
//! * `SILT_BENCH_ANSWERS`: write every answer as JSON to this file (for a
//!   value-by-value comparison of two builds).
//! * `SILT_BENCH_COLD`: before each repetition, write this many MiB of
//!   other memory, so the query meets the processor's caches as a server
//!   does after idle (other work ran meanwhile) rather than warm from the
//!   repetition before. Say 16 for more than this machine's L2.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Db, Durability, Label, Labels, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;
use query::eval::{QueryOptions, Value, instant_query, range_query};

const SCRAPE_MS: i64 = 15_000;
const HOUR: i64 = 3_600_000;
/// Data span: room for 24 h ranges of 1 h windows.
const SPAN_MS: i64 = 25 * HOUR;
const CPUS: usize = 4;
const MODES: [&str; 8] = [
    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
];
const MOUNTS: [&str; 3] = ["/", "/var", "/home"];
const DEVICES: [&str; 2] = ["lo", "eth0"];
const LE: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];

/// A deterministic 64-bit mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform value in `[0, 1)` from `(series, scrape)`.
fn unit(series: u64, k: u64) -> f64 {
    (mix(series.wrapping_mul(0x1_0000_0001).wrapping_add(k)) >> 11) as f64 / (1u64 << 53) as f64
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// How a series' values evolve scrape by scrape.
#[derive(Clone, Copy)]
enum Model {
    /// Increments uniform in `[0, max)`, rounded to two decimals.
    Counter {
        max: f64,
    },
    /// Integer increments uniform in `[0, max)`.
    IntCounter {
        max: f64,
    },
    /// `base ± spread`, rounded to an integer.
    IntGauge {
        base: f64,
        spread: f64,
    },
    /// Starts at `base`, moves by an integer step in `[-down, up)`.
    Drift {
        base: f64,
        down: f64,
        up: f64,
    },
    /// `base ± spread`, two decimals.
    Gauge {
        base: f64,
        spread: f64,
    },
    Const(f64),
}

struct SeriesDef {
    labels: Labels,
    host: u64,
    model: Model,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
        .expect("valid labels")
}

fn series_defs(hosts: usize) -> Vec<SeriesDef> {
    let mut out = Vec::new();
    for h in 0..hosts {
        let role = ["web", "api", "db", "cache", "batch"][h % 5];
        let inst = format!("{role}-{h}:9100");
        let host = h as u64;
        let mut add = |name: &str, extra: &[(&str, &str)], model| {
            let mut l = vec![
                ("__name__", name),
                ("instance", inst.as_str()),
                ("job", "node"),
            ];
            l.extend_from_slice(extra);
            out.push(SeriesDef {
                labels: labels(&l),
                host,
                model,
            });
        };
        for c in 0..CPUS {
            let cpu = c.to_string();
            for (m, mode) in MODES.iter().enumerate() {
                let max = [13.0, 1.5, 0.6, 0.2, 0.01, 0.05, 0.0, 0.02][m];
                add(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu), ("mode", mode)],
                    Model::Counter { max },
                );
            }
        }
        let mem = 16e9 + (h % 4) as f64 * 8e9;
        add(
            "node_memory_MemAvailable_bytes",
            &[],
            Model::IntGauge {
                base: mem * 0.5,
                spread: mem * 0.1,
            },
        );
        for (i, mp) in MOUNTS.iter().enumerate() {
            let size = 1e11 * (i + 1) as f64;
            let fs = [("device", "sda1"), ("fstype", "ext4"), ("mountpoint", *mp)];
            add("node_filesystem_size_bytes", &fs, Model::Const(size));
            add(
                "node_filesystem_avail_bytes",
                &fs,
                Model::Drift {
                    base: size * 0.6,
                    down: 40960.0,
                    up: 32768.0,
                },
            );
        }
        for dev in DEVICES {
            let max = if dev == "lo" { 2e4 } else { 4e6 };
            add(
                "node_network_receive_bytes_total",
                &[("device", dev)],
                Model::IntCounter { max },
            );
            add(
                "node_network_transmit_bytes_total",
                &[("device", dev)],
                Model::IntCounter { max: max / 2.0 },
            );
        }
        add(
            "node_load1",
            &[],
            Model::Gauge {
                base: 1.0 + (h % 3) as f64,
                spread: 0.8,
            },
        );
        add("up", &[], Model::Const(1.0));
        if h % 5 == 1 {
            for (i, le) in LE.iter().enumerate() {
                add(
                    "http_request_duration_seconds_bucket",
                    &[("le", le)],
                    Model::IntCounter {
                        max: 40.0 + 30.0 * i as f64,
                    },
                );
            }
        }
    }
    out
}

/// Scrape `k`'s timestamp for a host: a per-host phase plus ±5 ms jitter.
fn scrape_time(start: i64, host: u64, k: u64) -> i64 {
    let phase = (mix(host ^ 0xabc) % SCRAPE_MS as u64) as i64;
    let jitter = (mix(host.wrapping_mul(31) ^ k.wrapping_mul(0x5bd1)) % 11) as i64 - 5;
    start + phase + k as i64 * SCRAPE_MS + jitter
}

fn next_value(model: Model, id: u64, k: u64, state: &mut f64) -> f64 {
    let u = unit(id, k);
    match model {
        Model::Counter { max } => {
            *state = round2(*state + u * max);
            *state
        }
        Model::IntCounter { max } => {
            *state += (u * max).floor();
            *state
        }
        Model::IntGauge { base, spread } => (base + (u * 2.0 - 1.0) * spread).round(),
        Model::Drift { base, down, up } => {
            if k == 0 {
                *state = base;
            }
            *state += (u * (down + up)).floor() - down;
            *state
        }
        Model::Gauge { base, spread } => round2(base + (u * 2.0 - 1.0) * spread),
        Model::Const(v) => v,
    }
}

/// Writes the data set into `dir`; returns the time of its last scrape
/// window's end.
fn generate(dir: &Path, hosts: usize) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let end = (now - 60_000) / SCRAPE_MS * SCRAPE_MS;
    let start = end - SPAN_MS - SCRAPE_MS;
    let defs = series_defs(hosts);
    let mut o = Options::new(dir);
    o.background = false;
    o.durability = Durability::Async {
        interval: Duration::from_secs(10),
    };
    let db = Db::open(o, &mut Registry::default()).expect("open db");
    let mut state = vec![0.0f64; defs.len()];
    let scrapes = (SPAN_MS / SCRAPE_MS) as u64;
    let per_cut = (2 * HOUR / SCRAPE_MS) as u64;
    let t0 = Instant::now();
    let mut k0 = 0;
    while k0 < scrapes {
        let k1 = (k0 + per_cut).min(scrapes);
        // Batches of ~200 series so one batch stays small.
        for (ci, chunk) in defs.chunks(200).enumerate() {
            let mut batch = WriteBatch::default();
            for (j, d) in chunk.iter().enumerate() {
                let id = (ci * 200 + j) as u64;
                let samples = (k0..k1)
                    .map(|k| {
                        Sample::new(
                            scrape_time(start, d.host, k),
                            next_value(d.model, id, k, &mut state[id as usize]),
                        )
                    })
                    .collect();
                batch
                    .series
                    .push(SeriesSamples::new(d.labels.clone(), samples));
            }
            db.append(&batch)
                .expect("append")
                .wait_blocking()
                .expect("durable");
        }
        k0 = k1;
        if k0 < scrapes {
            db.cut_head().expect("cut head");
        }
    }
    db.compact().expect("compact");
    db.close().expect("close");
    eprintln!(
        "generated {} series × {} scrapes in {:.1} s",
        defs.len(),
        scrapes,
        t0.elapsed().as_secs_f64()
    );
    start + scrapes as i64 * SCRAPE_MS
}

struct Form {
    name: &'static str,
    expr: &'static str,
    /// Range in hours (0: instant).
    hours: i64,
}

const FORMS: &[Form] = &[
    Form {
        name: "cpu_by_instance",
        expr: "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        hours: 0,
    },
    Form {
        name: "cpu_by_instance",
        expr: "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        hours: 6,
    },
    Form {
        name: "cpu_by_instance",
        expr: "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        hours: 24,
    },
    Form {
        name: "cpu_busy",
        expr: "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
        hours: 0,
    },
    Form {
        name: "cpu_busy",
        expr: "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
        hours: 24,
    },
    Form {
        name: "increase_1h",
        expr: "sum by (instance) (increase(node_network_receive_bytes_total[1h]))",
        hours: 24,
    },
    Form {
        name: "irate_net",
        expr: "sum by (instance) (irate(node_network_receive_bytes_total{device!=\"lo\"}[5m]))",
        hours: 24,
    },
    Form {
        name: "p99",
        expr: "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        hours: 0,
    },
    Form {
        name: "p99",
        expr: "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        hours: 24,
    },
    Form {
        name: "topk_net",
        expr: "topk(10, sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\"}[5m])))",
        hours: 0,
    },
    Form {
        name: "topk_net",
        expr: "topk(10, sum by (instance) (rate(node_network_receive_bytes_total{device!=\"lo\"}[5m])))",
        hours: 24,
    },
    Form {
        name: "net_regex",
        expr: "sum by (instance) (rate(node_network_transmit_bytes_total{instance=~\"(web|api)-.*\",device!=\"lo\"}[5m]))",
        hours: 0,
    },
    Form {
        name: "net_regex",
        expr: "sum by (instance) (rate(node_network_transmit_bytes_total{instance=~\"(web|api)-.*\",device!=\"lo\"}[5m]))",
        hours: 6,
    },
    Form {
        name: "disk_ratio",
        expr: "node_filesystem_avail_bytes{mountpoint=~\"/var.*\"} / node_filesystem_size_bytes{mountpoint=~\"/var.*\"}",
        hours: 0,
    },
    Form {
        name: "disk_ratio",
        expr: "node_filesystem_avail_bytes{mountpoint=~\"/var.*\"} / node_filesystem_size_bytes{mountpoint=~\"/var.*\"}",
        hours: 6,
    },
    Form {
        name: "disk_ratio",
        expr: "node_filesystem_avail_bytes{mountpoint=~\"/var.*\"} / node_filesystem_size_bytes{mountpoint=~\"/var.*\"}",
        hours: 24,
    },
    Form {
        name: "disk_used_all",
        expr: "1 - node_filesystem_avail_bytes / node_filesystem_size_bytes",
        hours: 24,
    },
    Form {
        name: "mem_avg_1h",
        expr: "avg_over_time(node_memory_MemAvailable_bytes[1h])",
        hours: 0,
    },
    Form {
        name: "mem_avg_1h",
        expr: "avg_over_time(node_memory_MemAvailable_bytes[1h])",
        hours: 6,
    },
    Form {
        name: "mem_avg_1h",
        expr: "avg_over_time(node_memory_MemAvailable_bytes[1h])",
        hours: 24,
    },
    Form {
        name: "load_avg_1h",
        expr: "avg_over_time(node_load1[1h])",
        hours: 24,
    },
    Form {
        name: "load_max_1h",
        expr: "max_over_time(node_load1[1h])",
        hours: 24,
    },
    Form {
        name: "up_count",
        expr: "count by (job) (up)",
        hours: 0,
    },
    Form {
        name: "up_count",
        expr: "count by (job) (up)",
        hours: 24,
    },
    Form {
        name: "predict_linear",
        expr: "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600)",
        hours: 0,
    },
    Form {
        name: "predict_linear",
        expr: "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600)",
        hours: 6,
    },
    Form {
        name: "predict_linear",
        expr: "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600)",
        hours: 24,
    },
    Form {
        name: "deriv_1h",
        expr: "deriv(node_filesystem_avail_bytes[1h])",
        hours: 24,
    },
];

/// A digest of an answer: labels, timestamps and value bits in order.
fn digest(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match v {
        Value::Matrix(m) => {
            for s in m {
                s.labels.hash(&mut h);
                for p in &s.points {
                    (p.t, p.v.to_bits()).hash(&mut h);
                }
            }
        }
        Value::Vector(vs) => {
            for s in vs {
                s.labels.hash(&mut h);
                (s.t, s.v.to_bits()).hash(&mut h);
            }
        }
        Value::Scalar(t, x) => (t, x.to_bits()).hash(&mut h),
        Value::String(t, s) => (t, s).hash(&mut h),
    }
    h.finish()
}

fn answer_json(v: &Value) -> String {
    let mut out = String::from("[");
    let labels = |l: &Labels| {
        l.iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut first = true;
    let mut push = |l: &Labels, pts: &mut dyn Iterator<Item = (i64, f64)>| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&format!(
            "{{\"l\":\"{}\",\"p\":[",
            labels(l).replace('"', "'")
        ));
        let mut f = true;
        for (t, v) in pts {
            if !f {
                out.push(',');
            }
            f = false;
            out.push_str(&format!("[{t},\"{v:?}\"]"));
        }
        out.push_str("]}");
    };
    match v {
        Value::Matrix(m) => m
            .iter()
            .for_each(|s| push(&s.labels, &mut s.points.iter().map(|p| (p.t, p.v)))),
        Value::Vector(vs) => vs
            .iter()
            .for_each(|s| push(&s.labels, &mut std::iter::once((s.t, s.v)))),
        _ => {}
    }
    out.push(']');
    out
}

fn main() {
    // `cargo bench` passes `--bench`; every other argument is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .flat_map(|a| a.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|a| !a.is_empty())
        .collect();
    let hosts: usize = std::env::var("SILT_BENCH_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let reps: usize = std::env::var("SILT_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1);
    let cold_mib: usize = std::env::var("SILT_BENCH_COLD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut other = vec![0u8; cold_mib << 20];
    let tmp;
    let dir: PathBuf = match std::env::var("SILT_BENCH_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    let marker = dir.join("silt-bench-end");
    let end = match std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        Some(e) => e,
        None => {
            std::fs::create_dir_all(&dir).expect("data dir");
            let e = generate(&dir, hosts);
            std::fs::write(&marker, e.to_string()).expect("write marker");
            e
        }
    };
    let mut o = Options::new(&dir);
    o.background = false;
    let db: Arc<Db> = Db::open(o, &mut Registry::default()).expect("open db");
    let mut opts = QueryOptions::default();
    opts.engine.max_samples = 2_000_000_000;
    let eval_at = end - 10_777;
    let mut answers = Vec::new();
    for f in FORMS {
        let variant = if f.hours == 0 {
            "instant".to_string()
        } else {
            format!("range {}h", f.hours)
        };
        let key = format!("{} ({variant})", f.name);
        if !filters.is_empty() && !filters.iter().any(|x| key.contains(x.as_str())) {
            continue;
        }
        let expr = query::promql::parse(f.expr).expect("query parses");
        let run = || {
            if f.hours == 0 {
                instant_query(&db, &expr, eval_at, &opts)
            } else {
                range_query(&db, &expr, eval_at - f.hours * HOUR, eval_at, 60_000, &opts)
            }
            .expect("query runs")
        };
        let mut value = run().value;
        let mut times = Vec::with_capacity(reps);
        for rep in 0..reps {
            // One write a cache line evicts what the query left there.
            for line in other.chunks_mut(64) {
                line[0] = line[0].wrapping_add(rep as u8 | 1);
            }
            let t0 = Instant::now();
            value = std::hint::black_box(run()).value;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let points: usize = match &value {
            Value::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
            Value::Vector(v) => v.len(),
            _ => 1,
        };
        println!(
            "{key:28} {:8.2} ms (min {:7.2})  {points:7} points  digest {:016x}",
            times[times.len() / 2],
            times[0],
            digest(&value)
        );
        answers.push(format!("\"{key}\":{}", answer_json(&value)));
    }
    if let Ok(path) = std::env::var("SILT_BENCH_ANSWERS") {
        std::fs::write(path, format!("{{{}}}", answers.join(","))).expect("write answers");
    }
}
