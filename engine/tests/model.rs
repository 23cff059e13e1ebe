//! Model-based test: random sequences of appends (in order, out of order,
//! duplicates, conflicts), cuts, compactions, clean reopens and crash-like
//! reopens (copying the data folder of a live database) against a plain
//! `BTreeMap` model. Every read must match the model bit for bit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Labels, Matcher, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn options(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    o.wal_segment_size = 64 << 10;
    o
}

fn open(dir: &Path) -> Arc<Db> {
    Db::open(options(dir), &mut Registry::default()).expect("open")
}

fn series_labels(i: usize) -> Labels {
    let job = format!("job{}", i % 3);
    let inst = format!("host-{i}");
    Labels::new(&[
        (
            "__name__",
            if i.is_multiple_of(2) {
                "node_cpu"
            } else {
                "node_mem"
            },
        ),
        ("job", &job),
        ("instance", &inst),
    ])
}

fn value(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..10) {
        0 => f64::from_bits(STALE_NAN),
        1 => f64::NAN,
        2 => -0.0,
        3 => f64::INFINITY,
        _ => (rng.random_range(0..100_000) as f64) / 100.0,
    }
}

fn check(db: &Arc<Db>, model: &Model, label: &str) {
    let q = db.querier(i64::MIN, i64::MAX);
    let select = || {
        q.select(&[Matcher::new(engine::MatchOp::RegexMatch, "__name__", "node_.*").unwrap()])
            .unwrap()
    };
    let entries = select();
    // The first merge compares blocks' encoded labels and leaves the
    // blocks holding one series sharing a label set; the second compares
    // those sets.
    let again = select();
    let summary =
        |e: &[engine::SeriesEntry]| -> Vec<String> { e.iter().map(|e| format!("{e:?}")).collect() };
    assert_eq!(summary(&again), summary(&entries), "{label}: second select");
    let got_labels: Vec<&Labels> = entries.iter().map(|e| &e.labels).collect();
    let want_labels: Vec<&Labels> = model
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(got_labels, want_labels, "{label}: series differ");
    for e in &entries {
        let mut out = Vec::new();
        q.samples(e, i64::MIN, i64::MAX, &mut out).unwrap();
        let got: Vec<(i64, u64)> = out.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let want: Vec<(i64, u64)> = model[&e.labels].iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(got, want, "{label}: samples of {} differ", e.labels);
        // A sub-range read agrees too.
        if let (Some(first), Some(last)) = (want.first(), want.last()) {
            let (a, b) = (
                first.0 + (last.0 - first.0) / 3,
                last.0 - (last.0 - first.0) / 3,
            );
            let mut part = Vec::new();
            q.samples(e, a, b, &mut part).unwrap();
            let want_part: Vec<(i64, u64)> = want
                .iter()
                .copied()
                .filter(|(t, _)| *t >= a && *t <= b)
                .collect();
            assert_eq!(
                part.iter()
                    .map(|s| (s.t, s.v.to_bits()))
                    .collect::<Vec<_>>(),
                want_part,
                "{label}: range read"
            );
        }
    }
}

/// Replaces the blocks folder with a file: a cut then freezes the head and
/// fails to write its blocks, and stays pending until the next cut.
fn break_blocks(dir: &Path) {
    std::fs::rename(dir.join("blocks"), dir.join("blocks.aside")).unwrap();
    std::fs::write(dir.join("blocks"), b"").unwrap();
}

fn restore_blocks(dir: &Path) {
    std::fs::remove_file(dir.join("blocks")).unwrap();
    std::fs::rename(dir.join("blocks.aside"), dir.join("blocks")).unwrap();
}

fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    // A cut is pending (see `break_blocks`).
    let mut stuck = false;
    let mut model: Model = BTreeMap::new();
    let base = 1_700_000_000_000i64;
    let mut clock = [base; 8];
    for step in 0..steps {
        match rng.random_range(0..100) {
            0..70 => {
                let mut batch = WriteBatch::default();
                let mut staged: Model = BTreeMap::new();
                let mut conflict = false;
                for _ in 0..rng.random_range(1..5) {
                    let i = rng.random_range(0..8);
                    let labels = series_labels(i);
                    let mut samples = Vec::new();
                    for _ in 0..rng.random_range(1..20) {
                        let t = match rng.random_range(0..10) {
                            0 => clock[i] - rng.random_range(0..3_600_000), // out of order / backfill
                            1 => clock[i] - 7 * 24 * 3_600_000 + rng.random_range(0..1000), // old backfill
                            _ => {
                                clock[i] += rng.random_range(1..30_000);
                                clock[i]
                            }
                        };
                        let v = value(&mut rng);
                        samples.push(Sample::new(t, v));
                    }
                    for s in &samples {
                        let existing = model
                            .get(&labels)
                            .and_then(|m| m.get(&s.t))
                            .or(staged.get(&labels).and_then(|m| m.get(&s.t)));
                        match existing {
                            Some(&bits) if bits != s.v.to_bits() => conflict = true,
                            _ => {
                                staged
                                    .entry(labels.clone())
                                    .or_default()
                                    .insert(s.t, s.v.to_bits());
                            }
                        }
                    }
                    batch.series.push(SeriesSamples::new(labels, samples));
                }
                match db.append(&batch) {
                    Ok(ticket) => {
                        assert!(!conflict, "step {step}: conflicting batch accepted");
                        ticket.wait_blocking().unwrap();
                        for (l, m) in staged {
                            model.entry(l).or_default().extend(m);
                        }
                    }
                    Err(e) => {
                        assert!(conflict, "step {step}: batch rejected: {e}");
                        assert!(
                            e.to_string().contains("duplicate sample for timestamp"),
                            "{e}"
                        );
                    }
                }
            }
            70..84 if stuck => {
                // The pending cut is resumed by the next one.
                restore_blocks(dir.path());
                stuck = false;
                db.cut_head().unwrap();
            }
            70..78 => {
                db.cut_head().unwrap();
            }
            78..84 => {
                db.compact().unwrap();
            }
            84..88 => {
                // Clean close: writes a head checkpoint the reopen loads
                // (with a cut pending, holding its frozen data too).
                if std::mem::take(&mut stuck) {
                    restore_blocks(dir.path());
                }
                db.close().unwrap();
                drop(db);
                db = open(dir.path());
            }
            88..90 => {
                // A checkpoint mid-run: later appends, cuts and crash copies
                // replay the WAL after it.
                db.checkpoint().unwrap();
            }
            90..95 => {
                // Crash-like: copy the folder of the live database (every
                // acknowledged write is fsynced) and open the copy.
                let copy = tempfile::tempdir().unwrap();
                copy_dir(dir.path(), copy.path());
                if stuck {
                    restore_blocks(copy.path());
                }
                let other = open(copy.path());
                check(&other, &model, &format!("step {step} crash copy"));
                other.close().unwrap();
            }
            95..97 if !stuck => {
                // A cut that cannot write its blocks: appends, checkpoints
                // (holding the frozen data) and crash copies go on.
                break_blocks(dir.path());
                match db.cut_head() {
                    Err(_) => stuck = true,
                    Ok(None) => restore_blocks(dir.path()),
                    Ok(Some(id)) => panic!("step {step}: cut wrote block {id} into a file"),
                }
            }
            _ => check(&db, &model, &format!("step {step}")),
        }
    }
    if stuck {
        restore_blocks(dir.path());
    }
    check(&db, &model, "end");
    db.cut_head().unwrap();
    db.compact().unwrap();
    check(&db, &model, "end after cut+compact");
    let stats = db.stats();
    // Series with data in the cut generation stay in the head (active
    // series are not re-created at every cut), without data.
    assert!(stats.head_series as usize <= model.len());
    assert!(stats.blocks >= 1);
    assert_eq!(
        stats.block_samples as usize,
        model.values().map(|m| m.len()).sum::<usize>(),
        "compaction leaves no duplicates"
    );
    db.close().unwrap();
    drop(db);
    let db = open(dir.path());
    check(&db, &model, "end after reopen");
    assert_eq!(db.stats().head_series, 0, "the cut WAL replays nothing");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            // Files may vanish under a live database (WAL truncation); skip those.
            let _ = std::fs::copy(e.path(), &target);
        }
    }
}

#[test]
fn random_operations_match_model() {
    for seed in 0..6 {
        run(seed, 250);
    }
}

#[test]
fn rejected_batch_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let a = series_labels(0);
    let b = series_labels(1);
    let t0 = 1_700_000_000_000;
    let ok = WriteBatch {
        series: vec![SeriesSamples::new(a.clone(), vec![Sample::new(t0, 1.0)])],
        metadata: vec![],
    };
    db.append(&ok).unwrap().wait_blocking().unwrap();
    let bad = WriteBatch {
        series: vec![
            SeriesSamples::new(b.clone(), vec![Sample::new(t0, 5.0)]),
            SeriesSamples::new(a.clone(), vec![Sample::new(t0, 2.0)]),
        ],
        metadata: vec![],
    };
    let err = db.append(&bad).err().expect("conflict rejected");
    assert!(err.is_client_error());
    assert!(err.to_string().contains("duplicate sample for timestamp"));
    let q = db.querier(i64::MIN, i64::MAX);
    let found = q
        .select(&[Matcher::new(engine::MatchOp::RegexMatch, "__name__", ".+").unwrap()])
        .unwrap();
    assert_eq!(found.len(), 1, "series b must not appear");
    let mut out = Vec::new();
    q.samples(&found[0], i64::MIN, i64::MAX, &mut out).unwrap();
    assert_eq!(out, vec![Sample::new(t0, 1.0)]);
}

#[test]
fn too_far_in_future_and_missing_name_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    let batch = WriteBatch {
        series: vec![SeriesSamples::new(
            series_labels(0),
            vec![Sample::new(future, 1.0)],
        )],
        metadata: vec![],
    };
    let err = db.append(&batch).err().unwrap();
    assert!(err.to_string().contains("too far in the future"), "{err}");
    let batch = WriteBatch {
        series: vec![SeriesSamples::new(
            Labels::new(&[("job", "x")]),
            vec![Sample::new(1, 1.0)],
        )],
        metadata: vec![],
    };
    assert!(
        db.append(&batch)
            .err()
            .unwrap()
            .to_string()
            .contains("no metric name")
    );
}
