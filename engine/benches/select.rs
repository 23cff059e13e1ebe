//! Criterion benchmarks of series selection: matchers resolved over the
//! head's inverted index, and `Querier::select` (index, label sets, sorting)
//! over the head and over a cut block, on ~100k series of node_exporter shape
//! (600 hosts × 170 series: `__name__`, `instance`, `job`, `cpu`, `mode`,
//! `device`, `mountpoint`).
//!
//! Run with `cargo bench -p engine --bench select`. `index/*/cloning` runs a
//! copy of the earlier algorithm (every matcher's postings cloned and
//! unioned into an owned bitmap) on the same data, for a same-run comparison.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use engine::head::Head;
use engine::{Db, Labels, MatchOp, Matcher, Options, Sample, SeriesSamples, WriteBatch};
use roaring::RoaringBitmap;

const HOSTS: usize = 600;
const MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const MOUNTS: [(&str, &str); 5] = [
    ("/dev/sda1", "/"),
    ("/dev/sda2", "/boot"),
    ("/dev/sdb1", "/data"),
    ("tmpfs", "/run"),
    ("tmpfs", "/dev/shm"),
];

/// The 170 label sets of one node_exporter host.
fn host_series(host: usize) -> Vec<Labels> {
    let instance = format!("host-{host}:9100");
    let base = |name: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("__name__", name),
            ("instance", instance.as_str()),
            ("job", "node"),
        ];
        pairs.extend_from_slice(extra);
        Labels::new(&pairs)
    };
    let mut out = Vec::with_capacity(170);
    for cpu in 0..8 {
        let cpu = cpu.to_string();
        for mode in MODES {
            out.push(base(
                "node_cpu_seconds_total",
                &[("cpu", &cpu), ("mode", mode)],
            ));
        }
    }
    for name in [
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_filesystem_free_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
    ] {
        for (device, mountpoint) in MOUNTS {
            out.push(base(
                name,
                &[("device", device), ("mountpoint", mountpoint)],
            ));
        }
    }
    for name in [
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_network_receive_packets_total",
        "node_network_transmit_packets_total",
    ] {
        for device in ["eth0", "eth1", "lo"] {
            out.push(base(name, &[("device", device)]));
        }
    }
    for name in [
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
        "node_disk_io_time_seconds_total",
    ] {
        for device in ["sda", "sdb", "nvme0n1"] {
            out.push(base(name, &[("device", device)]));
        }
    }
    for i in 0..40 {
        out.push(base(&format!("node_memory_field{i:02}_bytes"), &[]));
    }
    for name in [
        "node_load1",
        "node_load5",
        "node_load15",
        "up",
        "node_boot_time_seconds",
        "node_time_seconds",
        "node_context_switches_total",
        "node_intr_total",
        "node_forks_total",
        "node_procs_running",
        "node_procs_blocked",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "node_vmstat_pgfault",
        "node_vmstat_pgmajfault",
        "node_vmstat_pswpin",
        "node_vmstat_pswpout",
        "node_entropy_available_bits",
        "node_sockstat_sockets_used",
        "node_uname_info",
    ] {
        out.push(base(name, &[]));
    }
    out
}

fn all_series() -> Vec<Labels> {
    (0..HOSTS).flat_map(host_series).collect()
}

fn re(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

/// The benchmarked selectors: dashboard and rule shapes.
fn cases() -> Vec<(&'static str, Vec<Matcher>)> {
    vec![
        (
            "cpu_mode_ne_idle",
            vec![
                Matcher::equal("__name__", "node_cpu_seconds_total"),
                re("mode", MatchOp::NotEqual, "idle"),
            ],
        ),
        (
            "instance_prefix_regex",
            vec![re("instance", MatchOp::RegexMatch, "host-1.*")],
        ),
        (
            "cpu_instance_prefix_regex",
            vec![
                Matcher::equal("__name__", "node_cpu_seconds_total"),
                re("instance", MatchOp::RegexMatch, "host-1.*"),
            ],
        ),
        (
            "load1_one_instance",
            vec![
                Matcher::equal("__name__", "node_load1"),
                Matcher::equal("instance", "host-42:9100"),
            ],
        ),
        ("up", vec![Matcher::equal("__name__", "up")]),
        (
            "fs_regex_mountpoint_nre",
            vec![
                re("__name__", MatchOp::RegexMatch, "node_filesystem_.*_bytes"),
                re("mountpoint", MatchOp::RegexNoMatch, "/boot|/run"),
            ],
        ),
        (
            "rule_net_device_nre",
            vec![
                Matcher::equal("__name__", "node_network_receive_bytes_total"),
                Matcher::equal("job", "node"),
                re("instance", MatchOp::RegexMatch, "host-1.*"),
                re("device", MatchOp::RegexNoMatch, "lo|veth.+|docker.+"),
            ],
        ),
        (
            // A Grafana multi-value variable: each alternative a prefix,
            // each prefix many values, met with a small result.
            "net_tx_alternation",
            vec![
                Matcher::equal("__name__", "node_network_transmit_bytes_total"),
                re("instance", MatchOp::RegexMatch, "(host-1|host-2).*"),
                re("device", MatchOp::NotEqual, "lo"),
            ],
        ),
        (
            "job_instance_general_regex",
            vec![
                Matcher::equal("job", "node"),
                re("instance", MatchOp::RegexMatch, ".*-4[0-9]:9100"),
            ],
        ),
    ]
}

/// The earlier algorithm, kept for a same-run comparison: each matcher's
/// accepted (or rejected) postings are cloned and unioned into an owned
/// bitmap, then intersected. (It reads the matcher's literal set and prefix
/// as worked out when the matcher was built, as the index now does: the
/// comparison is of the postings' handling.)
#[derive(Default)]
struct CloningIndex {
    by_name: HashMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl CloningIndex {
    fn new(series: &[Labels]) -> CloningIndex {
        let mut idx = CloningIndex::default();
        for (id, l) in series.iter().enumerate() {
            for p in l.iter() {
                idx.by_name
                    .entry(p.name.to_string())
                    .or_default()
                    .entry(p.value.to_string())
                    .or_default()
                    .insert(id as u32);
            }
            idx.all.insert(id as u32);
        }
        idx
    }

    fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let mut positive: Vec<RoaringBitmap> = Vec::new();
        let mut negative: Vec<RoaringBitmap> = Vec::new();
        if matchers.iter().all(Matcher::matches_empty) {
            positive.push(self.all.clone());
        }
        for m in matchers {
            if m.matches_empty() {
                let rejected = self.union_where(m, false);
                if !rejected.is_empty() {
                    negative.push(rejected);
                }
            } else {
                let accepted = self.union_where(m, true);
                if accepted.is_empty() {
                    return RoaringBitmap::new();
                }
                positive.push(accepted);
            }
        }
        positive.sort_by_key(RoaringBitmap::len);
        let mut it = positive.into_iter();
        let mut result = it.next().unwrap_or_default();
        for p in it {
            result &= p;
        }
        for n in negative {
            result -= n;
        }
        result
    }

    fn union_where(&self, m: &Matcher, want: bool) -> RoaringBitmap {
        let Some(values) = self.by_name.get(&m.name) else {
            return RoaringBitmap::new();
        };
        let mut out = RoaringBitmap::new();
        let direct = matches!(
            (m.op, want),
            (MatchOp::Equal, true)
                | (MatchOp::NotEqual, false)
                | (MatchOp::RegexMatch, true)
                | (MatchOp::RegexNoMatch, false)
        );
        if direct {
            match m.op {
                MatchOp::Equal | MatchOp::NotEqual => {
                    if let Some(p) = values.get(&m.value) {
                        out |= p;
                    }
                    return out;
                }
                _ => {
                    if let Some(set) = m.set_matches() {
                        for v in set {
                            if let Some(p) = values.get(v.as_str()) {
                                out |= p;
                            }
                        }
                        return out;
                    }
                    if let Some(prefix) = m.literal_prefix() {
                        let range =
                            values.range::<str, _>((Bound::Included(prefix), Bound::Unbounded));
                        for (v, p) in range {
                            if !v.starts_with(prefix) {
                                break;
                            }
                            if m.matches(v) == want {
                                out |= p;
                            }
                        }
                        return out;
                    }
                }
            }
        }
        for (v, p) in values {
            if m.matches(v) == want {
                out |= p;
            }
        }
        out
    }
}

/// A database holding `series` with one sample each at t = 1000; cut into a
/// block if `cut`.
fn db(series: &[Labels], cut: bool) -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = Options::new(dir.path());
    opts.background = false;
    opts.max_future = Duration::from_secs(u32::MAX.into());
    let mut registry = prometheus_client::registry::Registry::default();
    let db = Db::open(opts, &mut registry).expect("open db");
    for chunk in series.chunks(10_000) {
        let batch = WriteBatch {
            series: chunk
                .iter()
                .map(|l| SeriesSamples::new(l.clone(), vec![Sample { t: 1000, v: 1.0 }]))
                .collect(),
            metadata: Vec::new(),
        };
        db.append(&batch)
            .expect("append")
            .wait_blocking()
            .expect("durable");
    }
    if cut {
        db.cut_head().expect("cut").expect("a block");
    }
    (dir, db)
}

fn bench(c: &mut Criterion) {
    let series = all_series();
    let head = Head::new();
    for l in &series {
        head.get_or_create(l);
    }
    let cloning = CloningIndex::new(&series);
    let cases = cases();
    for (name, ms) in &cases {
        let want = head.select(ms);
        assert_eq!(want, cloning.select(ms), "{name}");
        eprintln!("{name}: {} series", want.len());
    }

    let mut g = c.benchmark_group("index");
    for (name, ms) in &cases {
        g.bench_function(format!("{name}/current"), |b| {
            b.iter(|| black_box(head.select(black_box(ms))))
        });
        g.bench_function(format!("{name}/cloning"), |b| {
            b.iter(|| black_box(cloning.select(black_box(ms))))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("head_labels");
    let ms = &cases[0].1;
    let found: Vec<_> = head
        .select(ms)
        .iter()
        .filter_map(|id| head.by_id(id))
        .collect();
    g.bench_function("labels_of_cpu_ne_idle", |b| {
        b.iter(|| {
            for s in &found {
                black_box(head.labels_of(s));
            }
        })
    });
    g.finish();

    // The head's part of `Querier::select`: matching series with their
    // labels, sorted by labels; by id look-ups and a sort comparing label
    // sets, or `Head::select_sorted` (comparing interned ids once, then,
    // as here from the second call on, its kept answer; `_after_churn`
    // times the first).
    let churn = AtomicU64::new(0);
    let mut g = c.benchmark_group("head_sorted");
    for (name, ms) in &cases {
        g.bench_function(format!("{name}/sort_labels"), |b| {
            b.iter(|| {
                let mut v: Vec<(Labels, u32)> = head
                    .select(ms)
                    .iter()
                    .filter_map(|id| head.by_id(id))
                    .map(|s| (head.labels_of(&s), s.id))
                    .collect();
                v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                black_box(v)
            })
        });
        g.bench_function(format!("{name}/select_sorted"), |b| {
            b.iter(|| black_box(head.select_sorted(ms, |_| true)))
        });
        // A series created (untimed) before each call: the kept answer is
        // past, and the call finds and sorts the series again.
        g.bench_function(format!("{name}/select_sorted_after_churn"), |b| {
            b.iter_batched(
                || {
                    let n = churn.fetch_add(1, Ordering::Relaxed).to_string();
                    head.get_or_create(&Labels::new(&[("__name__", "bench_churn"), ("n", &n)]))
                },
                |_| black_box(head.select_sorted(ms, |_| true)),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    for cut in [false, true] {
        let (_dir, db) = db(&series, cut);
        let q = db.querier(i64::MIN, i64::MAX);
        let mut g = c.benchmark_group(if cut { "querier_block" } else { "querier_head" });
        for (name, ms) in &cases {
            assert_eq!(
                q.select(ms).expect("select").len() as u64,
                head.select(ms).len(),
                "{name}"
            );
            g.bench_function(*name, |b| {
                b.iter(|| black_box(q.select(black_box(ms)).expect("select")))
            });
        }
        g.finish();
        drop(q);
        db.close().expect("close");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
