//! Where the server's memory goes on the ingest benchmark's workload: the
//! same remote-write 1.0 requests the benchmark sends, decoded and appended
//! in one process (reference cache, `Db` with its WAL, no HTTP), under
//! mimalloc as in the `silt` binary. Prints the live heap, the resident set
//! and, per mimalloc size bin, the bytes its pages hold against the bytes
//! in use: the gap is fragmentation. `cargo run --release -p silt-bench
//! --example ingest_memory_workload -- [series] [scrapes]`.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::{Db, Durability, Options};
use ingest::{Limits, RefCache, Version, reference};
use libmimalloc_sys::{mi_heap_area_t, mi_heap_t};
use silt_bench::counting::{Counting, live, series_and_scrapes};
use silt_bench::encode::encode;
use silt_bench::workload::{Spec, Workload};

#[global_allocator]
static A: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

unsafe extern "C" {
    /// mimalloc v3's process heap (the sys crate names it only for v2).
    fn mi_heap_main() -> *mut mi_heap_t;
}

/// Per block size: (committed bytes, bytes in use).
type Bins = BTreeMap<usize, (usize, usize)>;

unsafe extern "C" fn visit(
    _heap: *const mi_heap_t,
    area: *const mi_heap_area_t,
    _block: *mut c_void,
    _block_size: usize,
    arg: *mut c_void,
) -> bool {
    // SAFETY: `arg` is the `Bins` passed to `mi_heap_visit_blocks` below;
    // `area` is valid for the call.
    let (bins, area) = unsafe { (&mut *(arg as *mut Bins), &*area) };
    let e = bins.entry(area.block_size).or_default();
    e.0 += area.committed;
    e.1 += area.used * area.block_size;
    true
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        >> 10
}

fn main() {
    let (series, scrapes) = series_and_scrapes();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let w = Workload::new(Spec {
        series,
        duration_ms: scrapes as i64 * 15_000,
        end_ms: now,
        seed: 1,
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let enc = encode(&w, 16, 2000, threads);
    drop(w);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background: false,
        durability: Durability::Async {
            interval: Duration::from_secs(1),
        },
        ..Options::new(dir.path())
    };
    let base_live = live();
    let base_rss = rss_mib();
    let db = Db::open(opts, &mut Default::default()).unwrap();
    let refs = RefCache::new();
    let limits = Limits::default();
    let mut raw = Vec::new();
    let longest = enc.shards.iter().map(Vec::len).max().unwrap_or(0);
    // Round-robin over the shards: about the time order the benchmark's
    // concurrent senders keep.
    for k in 0..longest {
        for shard in &enc.shards {
            let Some(req) = shard.get(k) else { continue };
            raw.resize(snap::raw::decompress_len(&req.body).unwrap(), 0);
            snap::raw::Decoder::new()
                .decompress(&req.body, &mut raw)
                .unwrap();
            let d =
                reference::decode_raw_streaming_known(Version::V1, &raw, &limits, &refs).unwrap();
            let ticket = db.append_with_refs(&d.batch, &d.refs).unwrap();
            refs.learn(&d.keys, &ticket.summary().refs);
            ticket.wait_blocking().unwrap();
        }
    }
    drop(raw);
    let live = (live() - base_live) >> 20;
    println!(
        "{series} series, {} samples: live heap {live} MiB (head by its own count {} MiB, reference cache {} MiB), RSS {} MiB over {base_rss} MiB before",
        enc.samples,
        db.head_memory_bytes() >> 20,
        refs.memory_bytes() >> 20,
        rss_mib() - base_rss,
    );
    let mut bins = Bins::new();
    // SAFETY: one thread allocates here; the visitor and its argument match.
    unsafe {
        libmimalloc_sys::mi_heap_visit_blocks(
            mi_heap_main(),
            false,
            Some(visit),
            &mut bins as *mut Bins as *mut c_void,
        )
    };
    let (mut committed, mut used) = (0, 0);
    println!(
        "{:>9} {:>10} {:>10} {:>6}",
        "bin", "pages KiB", "used KiB", "used"
    );
    for (size, (c, u)) in &bins {
        committed += c;
        used += u;
        if c - u >= 1 << 20 {
            println!(
                "{size:>9} {:>10} {:>10} {:>5.0}%",
                c >> 10,
                u >> 10,
                100.0 * *u as f64 / *c as f64
            );
        }
    }
    println!(
        "all bins: {} MiB in pages, {} MiB in use (bins with at least 1 MiB free shown; the encoded workload included)",
        committed >> 20,
        used >> 20
    );
}
