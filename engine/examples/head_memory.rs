//! Measures the head's heap use per series and per sample with a counting
//! allocator: node_exporter-like label sets (10 labels, a few hundred hosts)
//! and values (counters with random increments, noisy gauges, full-precision
//! doubles), 15 s scrapes stamped per host with ±5 ms jitter.
//! `cargo run --release -p engine --example head_memory -- [series] [scrapes]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use engine::Labels;
use engine::head::Head;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        COUNT.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout as asked.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        COUNT.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: p came from alloc with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p came from alloc with this layout.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// splitmix64: a deterministic hash for the generated values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(a: u64, b: u64) -> f64 {
    (mix(a.wrapping_mul(0x1_0000_0001) ^ b) >> 11) as f64 / (1u64 << 53) as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let series = args.first().copied().unwrap_or(200_000);
    let scrapes = args.get(1).copied().unwrap_or(240);
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            let host = i / 1600;
            Labels::new(&[
                ("__name__", &format!("node_metric_{}_total", i % 1600 / 16)),
                ("cpu", &format!("{}", i % 16)),
                (
                    "datacenter",
                    ["eu-west-1", "us-east-1", "ap-south-1"][host % 3],
                ),
                ("env", "production"),
                ("instance", &format!("host-{host:05}.example.org:9100")),
                ("job", "node"),
                ("mode", ["idle", "user", "system", "iowait"][i % 4]),
                ("rack", &format!("r{}", host % 40)),
                ("team", ["storage", "web", "db"][host % 3]),
                ("zone", &format!("z{}", host % 7)),
            ])
        })
        .collect();
    let base_bytes = LIVE.load(Ordering::Relaxed);
    let head = Head::new();
    let t0 = 1_700_000_000_000i64;
    let mut state: Vec<f64> = vec![0.0; series];
    let report = |what: &str, head: &Head, samples: usize| {
        let live = LIVE.load(Ordering::Relaxed) - base_bytes;
        println!(
            "{what}: {:.0} B/series heap ({:.2} B/sample over {samples} samples/series), {} allocations; head.memory_bytes {:.0} B/series",
            live as f64 / series as f64,
            live as f64 / (series * samples) as f64,
            COUNT.load(Ordering::Relaxed),
            head.memory_bytes() as f64 / series as f64,
        );
    };
    for k in 0..scrapes {
        for (i, l) in labels.iter().enumerate() {
            let (s, _) = head.get_or_create(l);
            // One timestamp per host and scrape, as a scrape stamps all
            // its series: the host's phase plus ±5 ms jitter.
            let host = i / 1600;
            let jitter = (mix((host as u64) << 20 | k as u64) % 11) as i64 - 5;
            let t = t0 + k as i64 * 15_000 + (host % 2000) as i64 * 7 + jitter;
            let u = unit(i as u64, k as u64);
            let v = match i % 10 {
                // Counters: hundredths of seconds, bytes.
                0..=4 => {
                    state[i] += (1500.0 * (0.8 + 0.4 * u)).floor();
                    state[i] / 100.0
                }
                5..=6 => {
                    state[i] += (1e5 * u).floor();
                    state[i]
                }
                // Gauges: quantised noise, slow changes.
                7 => ((50.0 + 10.0 * u) * 100.0).round() / 100.0,
                8 => 8e9 - (i as f64) * 4096.0 - if u < 0.1 { 4096.0 } else { 0.0 },
                // Full-precision doubles.
                _ => u * 0.37,
            };
            let mut d = s.lock();
            if matches!(d.live.check(t, v), Ok(true)) {
                d.live.push(t, v, &head.columns);
            }
        }
        if k == 0 || k == 7 || k + 1 == scrapes {
            report(&format!("after {} scrapes", k + 1), &head, k + 1);
        }
    }
}
