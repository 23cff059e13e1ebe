//! Head checkpoints: a head restored from a checkpoint plus the WAL after it
//! reads back exactly as a full WAL replay of the same folder does (and as
//! the live database did), with appends going on while checkpoints are
//! taken, cuts at the same time, out-of-order samples and stale markers; a
//! damaged or stale checkpoint falls back to the full replay.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use engine::{Db, Labels, MatchOp, Matcher, Options, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;

fn options(dir: &Path, checkpoint_on_close: bool) -> Options {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    o.wal_segment_size = 64 << 10;
    o.checkpoint_wal_bytes = 0;
    o.checkpoint_on_close = checkpoint_on_close;
    // Several batches of series and positions per checkpoint.
    o.checkpoint_batch_series = 3;
    o
}

fn open(dir: &Path, checkpoint_on_close: bool) -> Arc<Db> {
    Db::open(options(dir, checkpoint_on_close), &mut Registry::default()).expect("open")
}

fn labels(i: usize) -> Labels {
    let instance = format!("host-{i}");
    // Every fifth series has a value over 24 bytes (held on the heap, not
    // in its pair), in multi-byte UTF-8.
    let path = format!("/var/lib/silt/a-long-mount-point/ünïcødé-{i}");
    let mut pairs = vec![
        ("__name__", if i.is_multiple_of(3) { "cpu" } else { "mem" }),
        ("instance", instance.as_str()),
    ];
    if i.is_multiple_of(5) {
        pairs.push(("path", path.as_str()));
    }
    Labels::new(&pairs)
}

type Series = Vec<(Labels, Vec<(i64, u64)>)>;

/// Everything a querier shows: series with their samples (bits), label
/// names and values.
#[derive(Debug, PartialEq)]
struct View {
    series: Series,
    names: Vec<String>,
    instances: Vec<String>,
}

fn view(db: &Arc<Db>) -> View {
    let q = db.querier(i64::MIN, i64::MAX);
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    let series = q
        .select(&[all])
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut out = Vec::new();
            q.samples(&e, i64::MIN, i64::MAX, &mut out).unwrap();
            (e.labels, out.iter().map(|s| (s.t, s.v.to_bits())).collect())
        })
        .collect();
    View {
        series,
        names: q.label_names(&[]).unwrap(),
        instances: q.label_values("instance", &[]).unwrap(),
    }
}

fn copy_dir(from: &Path, to: &Path, with_checkpoints: bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let target = to.join(&name);
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target, with_checkpoints);
        } else if with_checkpoints || !name.starts_with("checkpoint.") {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn checkpoint_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("checkpoint.")
        })
        .collect();
    out.sort();
    out
}

/// Opens a copy of the closed folder `dir` without its checkpoints (a full
/// WAL replay) and `dir` itself (checkpoint plus the WAL after it); both
/// must read the same. Returns that view and whether `dir`'s open loaded a
/// checkpoint.
fn reopen_both(dir: &Path) -> (View, bool) {
    let plain_dir = tempfile::tempdir().unwrap();
    copy_dir(dir, plain_dir.path(), false);
    let plain = open(plain_dir.path(), false);
    assert!(!plain.stats().checkpoint_loaded);
    let want = view(&plain);
    plain.close().unwrap();
    let db = open(dir, false);
    let got = view(&db);
    let loaded = db.stats().checkpoint_loaded;
    db.close().unwrap();
    assert_eq!(got, want, "checkpoint + WAL differs from a full WAL replay");
    (got, loaded)
}

/// A deterministic value per series and timestamp (so writers racing on a
/// series agree), with stale markers, NaN, -0.0 and non-decimals among
/// decimal values.
fn value_of(series: usize, t: i64) -> f64 {
    match (t / 1000 + series as i64).rem_euclid(23) {
        0 => f64::from_bits(STALE_NAN),
        1 => f64::NAN,
        2 => -0.0,
        3 => 0.1 + 0.2,
        _ => (t / 1000 % 10_000) as f64 * 0.25 + series as f64,
    }
}

fn batch(entries: &[(usize, i64)], value: impl Fn(usize, i64) -> f64) -> WriteBatch {
    WriteBatch {
        series: entries
            .iter()
            .map(|&(i, t)| SeriesSamples::new(labels(i), vec![Sample { t, v: value(i, t) }]))
            .collect(),
        metadata: Vec::new(),
    }
}

/// Fills a database with a few hundred samples in 12 series, in order and
/// out of order.
fn fill(db: &Arc<Db>, from: i64, rounds: i64) {
    for r in from..from + rounds {
        let mut entries: Vec<(usize, i64)> = (0..12).map(|i| (i, T0 + r * 15_000)).collect();
        // Out of order: a sample between two earlier rounds.
        if r > 2 {
            entries.push((r as usize % 12, T0 + (r - 2) * 15_000 + 7_000));
        }
        db.append(&batch(&entries, value_of))
            .unwrap()
            .wait_blocking()
            .unwrap();
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// (series, offset from the series' clock in seconds: negative is out
    /// of order, value kind).
    Append(Vec<(usize, i64, u8)>),
    /// Every series at one timestamp, as a scrape of one target (offset
    /// in seconds past the newest clock, value kind): the head's chunks
    /// then share timestamp columns.
    Scrape(i64, u8),
    Checkpoint,
    Cut,
    /// Close (writing a checkpoint or not) and reopen.
    Reopen(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => prop::collection::vec((0usize..6, -3600i64..60, 0u8..8), 1..40).prop_map(Op::Append),
        8 => (0i64..30, 4u8..8).prop_map(|(off, kind)| Op::Scrape(off, kind)),
        3 => Just(Op::Checkpoint),
        1 => Just(Op::Cut),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn value_kind(kind: u8, t: i64) -> f64 {
    match kind {
        0 => f64::from_bits(STALE_NAN),
        1 => f64::from_bits(0x7ff8_0000_0000_0001),
        2 => -0.0,
        3 => f64::INFINITY,
        4 => (t % 977) as f64 / 3.0,
        _ => (t % 100_000) as f64 * 0.01,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn checkpoint_plus_wal_replays_like_the_whole_wal(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(dir.path(), false);
        let mut clock = [T0; 6];
        let mut checkpointed = false;
        for op in ops {
            match op {
                Op::Append(entries) => {
                    let mut b = WriteBatch::default();
                    for (i, off, kind) in entries {
                        let t = if off >= 0 {
                            clock[i] += off * 1000 + 1;
                            clock[i]
                        } else {
                            clock[i] + off * 1000
                        };
                        b.series.push(SeriesSamples::new(labels(i), vec![Sample { t, v: value_kind(kind, t) }]));
                    }
                    // Conflicting duplicates are rejected whole (and leave
                    // series without data behind in the live head).
                    if let Ok(ticket) = db.append(&b) {
                        ticket.wait_blocking().unwrap();
                    }
                }
                Op::Scrape(off, kind) => {
                    let t = clock.iter().max().unwrap() + off * 1000 + 1;
                    let mut b = WriteBatch::default();
                    for (i, c) in clock.iter_mut().enumerate() {
                        *c = t;
                        b.series.push(SeriesSamples::new(labels(i), vec![Sample { t, v: value_kind(kind, t + i as i64) }]));
                    }
                    db.append(&b).unwrap().wait_blocking().unwrap();
                }
                Op::Checkpoint => {
                    db.checkpoint().unwrap();
                    checkpointed = true;
                }
                Op::Cut => {
                    // A cut with nothing to cut leaves checkpoints valid.
                    if db.cut_head().unwrap().is_some() {
                        prop_assert!(checkpoint_files(dir.path()).is_empty(), "a cut deletes checkpoints");
                        checkpointed = false;
                    }
                }
                Op::Reopen(with_checkpoint) => {
                    let before = view(&db).series;
                    if with_checkpoint {
                        // What a close with `checkpoint_on_close` does.
                        db.checkpoint().unwrap();
                        checkpointed = true;
                    }
                    db.close().unwrap();
                    drop(db);
                    db = open(dir.path(), false);
                    prop_assert_eq!(db.stats().checkpoint_loaded, checkpointed);
                    prop_assert_eq!(view(&db).series, before);
                }
            }
        }
        let live = view(&db).series;
        db.close().unwrap();
        drop(db);
        let (got, loaded) = reopen_both(dir.path());
        prop_assert_eq!(loaded, checkpointed);
        prop_assert_eq!(got.series, live);
    }
}

#[test]
fn checkpoints_taken_during_concurrent_appends_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for r in 0..150i64 {
                    // Own series 3w..3w+3 plus series 12 shared by all
                    // writers (same values: duplicates, never conflicts),
                    // and an out-of-order sample now and then.
                    let t = T0 + r * 15_000;
                    let mut entries: Vec<(usize, i64)> =
                        (3 * w..3 * w + 3).map(|i| (i, t)).collect();
                    entries.push((12, t));
                    if r % 7 == 3 {
                        entries.push((3 * w, t - 22_000));
                    }
                    db.append(&batch(&entries, value_of))
                        .unwrap()
                        .wait_blocking()
                        .unwrap();
                }
            })
        })
        .collect();
    let checkpointer = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                db.checkpoint().unwrap();
                n += 1;
            }
            n
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    assert!(checkpointer.join().unwrap() >= 1);
    // One more append after the last checkpoint, so replay has a tail.
    fill(&db, 1000, 2);
    let live = view(&db).series;
    assert_eq!(live.len(), 13);
    db.close().unwrap();
    drop(db);
    assert_eq!(
        checkpoint_files(dir.path()).len(),
        1,
        "older checkpoints deleted"
    );
    let (got, loaded) = reopen_both(dir.path());
    assert!(loaded);
    assert_eq!(got.series, live);
}

#[test]
fn checkpoints_during_cuts_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || fill(&db, 0, 300))
    };
    let cutter = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                db.cut_head().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Some of these may land while a cut writes its blocks (and hold its
    // frozen data), some between cuts: none may block or lose the other's
    // work. Each cut's publish deletes the checkpoints before it, so what
    // is reloaded below is the last one, taken with no cut pending; the
    // contents of a checkpoint taken during a cut are checked by
    // `a_crash_while_a_cut_writes_its_blocks_restarts_from_the_checkpoint_taken_meanwhile`.
    for _ in 0..20 {
        db.checkpoint().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.join().unwrap();
    done.store(true, Ordering::Release);
    cutter.join().unwrap();
    db.checkpoint().unwrap();
    fill(&db, 300, 3);
    let live = view(&db).series;
    db.close().unwrap();
    drop(db);
    let (got, loaded) = reopen_both(dir.path());
    assert!(loaded);
    assert_eq!(got.series, live);
}

/// A crash while a cut writes its blocks: the checkpoint taken meanwhile
/// holds the frozen generation and the new one, so the restart loads it
/// and replays only the WAL after it, reads back as a full replay does, and
/// still refuses a different value at any stored time, also for series
/// whose first write after the freeze went under the frozen data.
#[test]
fn a_crash_while_a_cut_writes_its_blocks_restarts_from_the_checkpoint_taken_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let append = |db: &Arc<Db>,
                  entries: &[(usize, i64)],
                  value: &dyn Fn(usize, i64) -> f64|
     -> Result<(), String> {
        let ticket = db
            .append(&batch(entries, value))
            .map_err(|e| e.to_string())?;
        ticket.wait_blocking().map_err(|e| e.to_string())?;
        Ok(())
    };
    fill(&db, 0, 200);
    // Series 12 only before the cut.
    for r in 0..100 {
        append(&db, &[(12, T0 + r * 15_000)], &value_of).unwrap();
    }
    // The blocks folder as a file: the cut freezes the head, then fails.
    let blocks = dir.path().join("blocks");
    std::fs::rename(&blocks, dir.path().join("blocks.aside")).unwrap();
    std::fs::write(&blocks, b"").unwrap();
    assert!(db.cut_head().is_err());
    // First writes of the new generation under the frozen data: series 5
    // then goes on past it, series 12 does not.
    let under = T0 + 50 * 15_000 + 3_000;
    append(&db, &[(5, under), (12, under)], &value_of).unwrap();
    fill(&db, 200, 100);
    let stats = db.checkpoint().unwrap();
    assert!(stats.cut_pending);
    // After the checkpoint, a little WAL (for series 0 alone: the others'
    // newest samples are the checkpoint's).
    for r in 300..310 {
        append(&db, &[(0, T0 + r * 15_000)], &value_of).unwrap();
    }
    // Crash: the folder as it is, with the blocks folder put back.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path(), true);
    std::fs::remove_file(copy.path().join("blocks")).unwrap();
    std::fs::rename(copy.path().join("blocks.aside"), copy.path().join("blocks")).unwrap();
    let (got, loaded) = reopen_both(copy.path());
    assert!(loaded);
    assert_eq!(got.series, view(&db).series);
    let other = open(copy.path(), false);
    let s = other.stats();
    assert!(s.checkpoint_loaded);
    assert!(
        s.replayed_wal_bytes * 20 < s.wal_bytes,
        "replayed {} of {} WAL bytes",
        s.replayed_wal_bytes,
        s.wal_bytes
    );
    let different = |i: usize, t: i64| {
        let v = value_of(i, t);
        if v.is_nan() { 1.0 } else { v + 1.0 }
    };
    for (i, t) in [
        (5, under),
        (5, T0 + 299 * 15_000),
        (12, under),
        (12, T0 + 99 * 15_000),
        (0, T0 + 309 * 15_000),
    ] {
        let e = append(&other, &[(i, t)], &different).unwrap_err();
        assert!(e.contains("duplicate sample"), "series {i} at {t}: {e}");
    }
    other.close().unwrap();
    std::fs::remove_file(&blocks).unwrap();
    std::fs::rename(dir.path().join("blocks.aside"), &blocks).unwrap();
    db.close().unwrap();
}

#[test]
fn damaged_checkpoints_fall_back_to_the_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    fill(&db, 0, 300);
    db.checkpoint().unwrap();
    fill(&db, 300, 20);
    let live = view(&db);
    db.close().unwrap();
    drop(db);
    let Ok([ckpt]) = <[_; 1]>::try_from(checkpoint_files(dir.path())) else {
        panic!("one checkpoint")
    };
    let bytes = std::fs::read(&ckpt).unwrap();
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("no end record", bytes[..bytes.len() - 3].to_vec()),
        ("bit flip", {
            let mut b = bytes.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x20;
            b
        }),
        ("bad magic", {
            let mut b = bytes.clone();
            b[0] = b'X';
            b
        }),
        ("empty", Vec::new()),
    ];
    for (what, damaged) in damages {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path(), true);
        let name = ckpt.file_name().unwrap();
        std::fs::write(copy.path().join("wal").join(name), &damaged).unwrap();
        let db = open(copy.path(), false);
        assert!(!db.stats().checkpoint_loaded, "{what}");
        assert_eq!(view(&db), live, "{what}");
        db.close().unwrap();
    }
    // Intact, it is used and gives the same.
    let (got, loaded) = reopen_both(dir.path());
    assert!(loaded);
    assert_eq!(got, live);
}

#[test]
fn a_checkpoint_older_than_a_cut_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    fill(&db, 0, 100);
    db.checkpoint().unwrap();
    let Ok([ckpt]) = <[_; 1]>::try_from(checkpoint_files(dir.path())) else {
        panic!("one checkpoint")
    };
    let saved = std::fs::read(&ckpt).unwrap();
    fill(&db, 100, 10);
    db.cut_head().unwrap().unwrap();
    assert!(checkpoint_files(dir.path()).is_empty());
    fill(&db, 110, 10);
    let live = view(&db).series;
    db.close().unwrap();
    drop(db);
    // As if the process died after publishing the block, before deleting
    // the checkpoint.
    std::fs::write(&ckpt, saved).unwrap();
    let db = open(dir.path(), false);
    assert!(!db.stats().checkpoint_loaded);
    assert!(!ckpt.exists(), "stale checkpoint deleted");
    assert_eq!(view(&db).series, live);
    db.close().unwrap();
}

#[test]
fn close_checkpoint_leaves_almost_no_wal_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), true);
    fill(&db, 0, 200);
    let live = view(&db);
    db.close().unwrap();
    drop(db);
    let db = open(dir.path(), true);
    let stats = db.stats();
    assert!(stats.checkpoint_loaded);
    assert_eq!(stats.replayed_wal_bytes, 0);
    assert_eq!(view(&db), live);
    // Appends after a restored head continue its chunks.
    fill(&db, 200, 150);
    let live = view(&db);
    db.close().unwrap();
    drop(db);
    let (got, loaded) = reopen_both(dir.path());
    assert!(loaded);
    assert_eq!(got, live);
}

#[test]
fn checkpoint_duration_and_size_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    let db = Db::open(options(dir.path(), false), &mut registry).unwrap();
    fill(&db, 0, 50);
    let stats = db.checkpoint().unwrap();
    assert_eq!(stats.series, 12);
    assert_eq!(
        std::fs::metadata(&stats.path).unwrap().len(),
        stats.bytes,
        "reported size is the file's"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        "silt_head_checkpoints_total 1".to_string(),
        format!("silt_head_checkpoint_size_bytes {}", stats.bytes),
        "silt_head_checkpoint_duration_seconds_count 1".to_string(),
        "silt_head_checkpoint_failures_total 0".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    db.close().unwrap();
}

#[test]
fn appends_that_make_a_checkpoint_due_wake_the_background_thread() {
    // The periodic round comes every 10 s; a checkpoint due after a burst
    // of appends is written long before that.
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), false);
    o.background = true;
    o.checkpoint_wal_bytes = 32 << 10;
    let db = Db::open(o, &mut Registry::default()).unwrap();
    let start = std::time::Instant::now();
    for round in 0..40i64 {
        let batch = WriteBatch {
            series: (0..200)
                .map(|i| {
                    SeriesSamples::new(
                        labels(i),
                        vec![Sample::new(
                            T0 + round * 15_000,
                            (round * i as i64) as f64 * 0.1,
                        )],
                    )
                })
                .collect(),
            metadata: Vec::new(),
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
    }
    let has_checkpoint = || {
        std::fs::read_dir(dir.path().join("wal")).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("checkpoint.")
        })
    };
    while !has_checkpoint() && start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        has_checkpoint(),
        "no checkpoint {:?} after the appends",
        start.elapsed()
    );
    db.close().unwrap();
}
