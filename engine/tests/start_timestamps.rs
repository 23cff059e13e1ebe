//! Start timestamps: kept with their samples in the head, through a WAL
//! replay and through head checkpoints, in blocks cut from the head and
//! merged by compaction, and read back aligned with the samples a querier
//! gives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{
    AppendError, Db, Labels, MatchOp, Matcher, Options, Querier, Sample, SeriesEntry,
    SeriesSamples, StartRun, WriteBatch, align_starts,
};
use prometheus_client::registry::Registry;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn open(dir: &Path, checkpoint_on_close: bool) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    o.checkpoint_wal_bytes = 0;
    o.checkpoint_on_close = checkpoint_on_close;
    Db::open(o, &mut Registry::default()).expect("open")
}

/// Closes `db` and opens its folder again.
fn reopen(db: Arc<Db>, dir: &Path, checkpoint_on_close: bool) -> Arc<Db> {
    db.close().unwrap();
    drop(db);
    open(dir, checkpoint_on_close)
}

/// The series named `name`.
fn entry(q: &Querier, name: &str) -> SeriesEntry {
    let m = Matcher::new(MatchOp::Equal, "__name__", name).unwrap();
    q.select(&[m]).unwrap().remove(0)
}

fn labels(name: &str) -> Labels {
    Labels::new(&[("__name__", name), ("job", "otel")])
}

/// `n` samples a minute apart from `from` (value = index), with starts.
fn series(name: &str, from: i64, n: i64, start: impl Fn(i64) -> i64) -> SeriesSamples {
    let times: Vec<i64> = (0..n).map(|i| from + i * MIN).collect();
    SeriesSamples {
        labels: labels(name),
        samples: times.iter().map(|&t| Sample::new(t, t as f64)).collect(),
        start_timestamps: times.iter().map(|&t| start(t)).collect(),
    }
}

fn append(db: &Arc<Db>, series: Vec<SeriesSamples>) {
    let batch = WriteBatch {
        series,
        metadata: Vec::new(),
    };
    db.append(&batch).expect("append").wait_blocking().unwrap();
}

/// A series' metric name and its samples' (time, start), `None` when the
/// querier says none of them has a start.
type Starts = (String, Option<Vec<(i64, i64)>>);

/// Every series' (sample time, start) over `[mint, maxt]`.
fn starts(db: &Arc<Db>, mint: i64, maxt: i64) -> Vec<Starts> {
    let q = db.querier(mint, maxt);
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    q.select(&[all])
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut samples = Vec::new();
            q.samples(&e, mint, maxt, &mut samples).unwrap();
            let starts = q.start_timestamps(&e, mint, maxt).unwrap();
            assert!(
                starts.iter().all(|r| r.start != 0
                    && r.first <= r.last
                    && r.last >= mint
                    && r.first <= maxt)
            );
            assert!(starts.windows(2).all(|w| w[0].last < w[1].first));
            let mut out = vec![-1];
            align_starts(&starts, &samples, &mut out);
            assert_eq!(out.len(), samples.len());
            let name = e.labels.metric_name().unwrap().to_string();
            (
                name,
                (!starts.is_empty()).then(|| samples.iter().map(|s| s.t).zip(out).collect()),
            )
        })
        .collect()
}

#[test]
fn starts_read_back_with_their_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    // A counter started 30 s before its first sample, a delta series
    // (each start is the previous sample's time), and a plain series.
    append(
        &db,
        vec![
            series("cumulative", T0, 4, |_| T0 - 30_000),
            series("delta", T0, 4, |t| t - MIN),
            SeriesSamples::new(labels("plain"), vec![Sample::new(T0, 1.0)]),
        ],
    );
    // The counter again, twice in one batch (unsorted, so the batch is
    // merged): a sample without a start, an out-of-order sample with one,
    // and a repeat of a stored sample with another start (the stored
    // sample and its start stay).
    append(
        &db,
        vec![
            SeriesSamples {
                labels: labels("cumulative"),
                samples: vec![
                    Sample::new(T0 + 5 * MIN, 0.5),
                    Sample::new(T0 + 4 * MIN, 4.0),
                ],
                start_timestamps: vec![T0 + 4 * MIN + 1, 0],
            },
            SeriesSamples {
                labels: labels("cumulative"),
                samples: vec![
                    Sample::new(T0 + MIN / 2, 9.0),
                    Sample::new(T0 + MIN, (T0 + MIN) as f64),
                ],
                start_timestamps: vec![T0 + MIN / 4, T0 + 7],
            },
        ],
    );
    let expect_cumulative = vec![
        (T0, T0 - 30_000),
        (T0 + MIN / 2, T0 + MIN / 4),
        (T0 + MIN, T0 - 30_000),
        (T0 + 2 * MIN, T0 - 30_000),
        (T0 + 3 * MIN, T0 - 30_000),
        (T0 + 4 * MIN, 0),
        (T0 + 5 * MIN, T0 + 4 * MIN + 1),
    ];
    let expect_delta: Vec<(i64, i64)> =
        (0..4).map(|i| (T0 + i * MIN, T0 + (i - 1) * MIN)).collect();
    let all = starts(&db, i64::MIN, i64::MAX);
    assert_eq!(
        all,
        vec![
            ("cumulative".to_string(), Some(expect_cumulative.clone())),
            ("delta".to_string(), Some(expect_delta.clone())),
            ("plain".to_string(), None),
        ]
    );

    // A window: only its samples, and a series none of whose samples there
    // has a start says so.
    let part = starts(&db, T0 + 4 * MIN, T0 + 5 * MIN);
    assert_eq!(
        part,
        vec![(
            "cumulative".to_string(),
            Some(expect_cumulative[5..].to_vec())
        )]
    );
    let q = db.querier(i64::MIN, i64::MAX);
    let e = entry(&q, "cumulative");
    let mut out = Vec::new();
    // Aligned with fewer samples than were read (a caller dropping some).
    let some = [
        Sample::new(T0 + MIN / 2, 9.0),
        Sample::new(T0 + 3 * MIN, 0.0),
    ];
    align_starts(
        &q.start_timestamps(&e, i64::MIN, i64::MAX).unwrap(),
        &some,
        &mut out,
    );
    assert_eq!(out, vec![T0 + MIN / 4, T0 - 30_000]);
    assert!(
        q.start_timestamps(&e, T0 + 4 * MIN, T0 + 4 * MIN)
            .unwrap()
            .is_empty()
    );
    // A series without starts: none, without looking.
    assert!(!entry(&q, "plain").has_starts() && e.has_starts());

    // Starts not one per sample: refused, nothing stored.
    let mut bad = series("cumulative", T0 + 10 * MIN, 3, |_| T0);
    bad.start_timestamps.pop();
    let err = db
        .append(&WriteBatch {
            series: vec![bad],
            metadata: Vec::new(),
        })
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::StartTimestamps {
                samples: 3,
                starts: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(starts(&db, i64::MIN, i64::MAX), all);
}

#[test]
fn starts_survive_restarts_by_wal_and_by_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    append(&db, vec![series("cumulative", T0, 5, |_| T0 - 1)]);
    append(&db, vec![series("delta", T0, 3, |t| t - MIN)]);
    let before = starts(&db, i64::MIN, i64::MAX);
    assert_eq!(before.len(), 2);

    // WAL replay.
    let db = reopen(db, dir.path(), true);
    assert!(!db.stats().checkpoint_loaded);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), before);

    // From the checkpoint written on close (its samples' WAL records are
    // skipped, starts included), then the WAL after it.
    let db = reopen(db, dir.path(), true);
    assert!(db.stats().checkpoint_loaded);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), before);
    append(
        &db,
        vec![series("cumulative", T0 + 5 * MIN, 2, |_| {
            T0 + 4 * MIN + 30_000
        })],
    );
    let after = starts(&db, i64::MIN, i64::MAX);
    let db = reopen(db, dir.path(), false);
    assert!(db.stats().checkpoint_loaded);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), after);
    let (_, cumulative) = &after[0];
    assert_eq!(cumulative.as_ref().unwrap().len(), 7);
}

/// A retry of samples stored without their starts (a crash cut the log
/// between them) fills the starts in; a stored start stays.
#[test]
fn a_retry_fills_in_missing_starts_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    let mut without = series("cumulative", T0, 3, |_| 0);
    without.start_timestamps.clear();
    append(&db, vec![without]);
    append(&db, vec![series("cumulative", T0, 2, |_| T0 - 5)]);
    append(&db, vec![series("cumulative", T0, 3, |_| T0 - 9)]);
    let want = vec![(T0, T0 - 5), (T0 + MIN, T0 - 5), (T0 + 2 * MIN, T0 - 9)];
    let got = starts(&db, i64::MIN, i64::MAX);
    assert_eq!(got, vec![("cumulative".to_string(), Some(want))]);
    let db = reopen(db, dir.path(), false);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), got);
}

/// Starts go with their samples into the blocks cut from the head, stay
/// there when blocks merge (where two blocks hold a time, the later one's
/// start wins, as its sample does) and when the folder is opened again.
#[test]
fn blocks_keep_starts_through_cuts_merges_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    // A counter (a reset at +3 min: a new start), a delta series (a run
    // per sample), a plain series.
    append(
        &db,
        vec![
            series("cumulative", T0, 6, |t| {
                if t < T0 + 3 * MIN {
                    T0 - 1
                } else {
                    T0 + 3 * MIN - 5
                }
            }),
            series("delta", T0, 4, |t| t - MIN),
            SeriesSamples::new(labels("plain"), vec![Sample::new(T0, 1.0)]),
        ],
    );
    let before = starts(&db, i64::MIN, i64::MAX);
    db.cut_head().unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), before, "from the block");
    let q = db.querier(i64::MIN, i64::MAX);
    assert!(entry(&q, "cumulative").has_starts() && !entry(&q, "plain").has_starts());
    // The counter's six samples are two runs in the block.
    assert_eq!(
        q.start_timestamps(&entry(&q, "cumulative"), T0, T0)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        q.start_timestamps(&entry(&q, "cumulative"), i64::MIN, i64::MAX)
            .unwrap(),
        [
            StartRun {
                first: T0,
                last: T0 + 2 * MIN,
                start: T0 - 1
            },
            StartRun {
                first: T0 + 3 * MIN,
                last: T0 + 5 * MIN,
                start: T0 + 3 * MIN - 5
            },
        ]
    );
    drop(q);

    // A second block over the same window (out-of-order data): two of the
    // counter's times again, one with another start and one without any
    // (the second block's samples win, and so do their starts or their
    // lack of one), and two new samples whose one run of starts spans a
    // sample of the first block (which keeps its own start).
    append(
        &db,
        vec![SeriesSamples {
            labels: labels("cumulative"),
            samples: vec![
                Sample::new(T0 + MIN, 1.0),
                Sample::new(T0 + MIN + 30_000, 1.5),
                Sample::new(T0 + 2 * MIN + 30_000, 2.5),
                Sample::new(T0 + 4 * MIN, 3.0),
            ],
            start_timestamps: vec![T0 + 30_000, T0 + 100, T0 + 100, 0],
        }],
    );
    let reset = T0 + 3 * MIN - 5;
    let want_cumulative = vec![
        (T0, T0 - 1),
        (T0 + MIN, T0 + 30_000),
        (T0 + MIN + 30_000, T0 + 100),
        (T0 + 2 * MIN, T0 - 1),
        (T0 + 2 * MIN + 30_000, T0 + 100),
        (T0 + 3 * MIN, reset),
        (T0 + 4 * MIN, 0),
        (T0 + 5 * MIN, reset),
    ];
    let mut want = before.clone();
    want[0].1 = Some(want_cumulative);
    assert_eq!(
        starts(&db, i64::MIN, i64::MAX),
        want,
        "a block and the head"
    );
    db.cut_head().unwrap();
    assert_eq!(db.stats().blocks, 2);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), want, "two blocks");
    db.compact_all().unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), want, "merged");
    // The merged block keeps them as runs over consecutive samples.
    let q = db.querier(i64::MIN, i64::MAX);
    assert_eq!(
        q.start_timestamps(&entry(&q, "cumulative"), i64::MIN, i64::MAX)
            .unwrap()
            .len(),
        7
    );
    drop(q);

    let db = reopen(db, dir.path(), false);
    assert_eq!(starts(&db, i64::MIN, i64::MAX), want, "reopened");
    // A window inside the block.
    let part = starts(&db, T0 + 2 * MIN, T0 + 3 * MIN);
    assert_eq!(
        part[0].1.as_deref(),
        Some(&want[0].1.as_ref().unwrap()[3..6])
    );
}

/// A sample sent twice in one request, once without its start and once
/// with it (a v2 sender repeating a series), keeps the start.
#[test]
fn a_repeat_in_one_batch_brings_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), false);
    append(
        &db,
        vec![SeriesSamples {
            labels: labels("cumulative"),
            samples: vec![
                Sample::new(T0, 1.0),
                Sample::new(T0 + MIN, 2.0),
                Sample::new(T0, 1.0),
            ],
            start_timestamps: vec![0, T0 - 9, T0 - 8],
        }],
    );
    assert_eq!(
        starts(&db, i64::MIN, i64::MAX),
        vec![(
            "cumulative".to_string(),
            Some(vec![(T0, T0 - 8), (T0 + MIN, T0 - 9)])
        )]
    );
}
