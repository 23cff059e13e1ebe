//! Reads of the head through the decoded-chunk cache while appends and
//! cuts go on: every read sees each series' samples exactly, without gaps,
//! repeats or stale chunks, and at least everything acknowledged before
//! the read began.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use engine::{Db, Labels, MatchOp, Matcher, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

const SERIES: usize = 24;
const STEP: i64 = 15_000;

fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    Db::open(o, &mut Registry::default()).expect("open")
}

fn labels(i: usize) -> Labels {
    Labels::new(&[("__name__", "load"), ("instance", &format!("host-{i}"))])
}

/// Two decimals (a decimal chunk on the target's column), or an
/// irrational number for every seventh series (XOR chunks).
fn value(i: usize, k: i64) -> f64 {
    if i % 7 == 6 {
        ((k + i as i64) as f64).sqrt()
    } else {
        (k * (i as i64 + 1) % 10_000) as f64 / 100.0
    }
}

/// Checks every series read at once: samples `0..=n` of each, `n` at least
/// `acked` (the last index acknowledged before the read).
fn check_read(db: &Arc<Db>, acked: i64) {
    let q = db.querier(i64::MIN, i64::MAX);
    let all = Matcher::new(MatchOp::Equal, "__name__", "load").unwrap();
    let entries = q.select(&[all]).unwrap();
    if acked < 0 {
        return;
    }
    assert_eq!(entries.len(), SERIES);
    let mut out = Vec::new();
    for e in &entries {
        let i: usize = e.labels.get("instance").unwrap()[5..].parse().unwrap();
        out.clear();
        q.samples(e, i64::MIN, i64::MAX, &mut out).unwrap();
        assert!(
            out.len() as i64 > acked,
            "series {i}: {} of {}",
            out.len(),
            acked + 1
        );
        for (k, s) in out.iter().enumerate() {
            let want = Sample::new(k as i64 * STEP, value(i, k as i64));
            assert_eq!(
                (s.t, s.v.to_bits()),
                (want.t, want.v.to_bits()),
                "series {i}, sample {k}"
            );
        }
    }
}

#[test]
fn reads_during_appends_and_cuts_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let acked = Arc::new(AtomicI64::new(-1));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked) = (db.clone(), acked.clone());
        std::thread::spawn(move || {
            for k in 0..1_500 {
                let mut batch = WriteBatch::default();
                for i in 0..SERIES {
                    let s = Sample::new(k * STEP, value(i, k));
                    batch.series.push(SeriesSamples::new(labels(i), vec![s]));
                }
                db.append(&batch).unwrap().wait_blocking().unwrap();
                acked.store(k, Ordering::Release);
                // A cut every 400 samples a series, in the middle of a chunk.
                if k % 400 == 399 {
                    db.cut_head().unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, acked, done) = (db.clone(), acked.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Acquire) {
                    check_read(&db, acked.load(Ordering::Acquire));
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    writer.join().unwrap();
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    check_read(&db, 1_499);
    assert!(db.block_cache_stats().hits > 0);
}
