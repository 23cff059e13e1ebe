//! WAL replay with enough series that replay batches and groups samples by
//! series (see `replay_wal` in `db.rs`): after a reopen, every series reads
//! back exactly as before, out-of-order samples, duplicates and stale
//! markers included.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Labels, MatchOp, Matcher, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

/// Above the replay's batching threshold (32 Ki series per applier) for
/// every applier count replay uses (at most 4).
fn series_count() -> usize {
    let appliers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    appliers * 36_000
}

fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(1 << 30);
    Db::open(o, &mut Registry::default()).expect("open")
}

fn labels(i: usize) -> Labels {
    Labels::new(&[
        ("__name__", "replay_test"),
        ("instance", &format!("host-{}", i / 50)),
        ("n", &i.to_string()),
    ])
}

/// The value for position `i` in a batch at round `r`: stale markers and
/// negative zero among ordinary values.
fn value(i: usize, r: i64) -> f64 {
    match (i + r as usize) % 97 {
        0 => f64::from_bits(STALE_NAN),
        1 => -0.0,
        _ => (i as f64) * 0.5 + r as f64,
    }
}

fn read_all(db: &Arc<Db>) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let q = db.querier(i64::MIN, i64::MAX);
    let m = Matcher::new(MatchOp::Equal, "__name__", "replay_test").unwrap();
    q.select(&[m])
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut out = Vec::new();
            q.samples(&e, i64::MIN, i64::MAX, &mut out).unwrap();
            let got = out.iter().map(|s| (s.t, s.v.to_bits())).collect();
            (e.labels, got)
        })
        .collect()
}

#[test]
fn batched_replay_restores_every_series_exactly() {
    let n = series_count();
    let dir = tempfile::tempdir().unwrap();
    let t0 = 1_700_000_000_000i64;
    let all: Vec<Labels> = (0..n).map(labels).collect();
    {
        let db = open(dir.path());
        // Rounds in order, then one out of order (between rounds 0 and 1),
        // then duplicates of round 1.
        for (r, t) in [
            (0, t0),
            (1, t0 + 30_000),
            (2, t0 + 60_000),
            (3, t0 + 15_000),
        ] {
            for chunk in all.chunks(5_000) {
                let batch = WriteBatch {
                    series: chunk
                        .iter()
                        .enumerate()
                        .map(|(j, l)| {
                            SeriesSamples::new(l.clone(), vec![Sample { t, v: value(j, r) }])
                        })
                        .collect(),
                    metadata: Vec::new(),
                };
                db.append(&batch).unwrap().wait_blocking().unwrap();
            }
        }
        // Duplicates of round 1 for a few series: same value, kept once.
        let dup = WriteBatch {
            series: all[..100]
                .iter()
                .enumerate()
                .map(|(j, l)| {
                    SeriesSamples::new(
                        l.clone(),
                        vec![Sample {
                            t: t0 + 30_000,
                            v: value(j, 1),
                        }],
                    )
                })
                .collect(),
            metadata: Vec::new(),
        };
        db.append(&dup).unwrap().wait_blocking().unwrap();
        let before = read_all(&db);
        assert_eq!(before.len(), n);
        assert!(before.iter().all(|(_, s)| s.len() == 4));
        db.close().unwrap();
        drop(db);
        let db = open(dir.path());
        assert_eq!(db.stats().head_series as usize, n);
        let after = read_all(&db);
        assert_eq!(after.len(), before.len());
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a, b, "series {} differs after replay", b.0);
        }
    }
}
