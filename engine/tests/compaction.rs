//! Cuts write one block per aligned window, and compaction merges a
//! window's blocks once, when the window is complete: late samples (a
//! sender lagging behind another) make consecutive cuts overlap in time,
//! which must not chain every new block into one ever-growing merge.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Labels, Matcher, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    Db::open(o, &mut Registry::default()).unwrap()
}

fn append(db: &Arc<Db>, job: &str, ts: impl Iterator<Item = i64>) {
    let batch = WriteBatch {
        series: vec![SeriesSamples::new(
            Labels::new(&[("__name__", "up"), ("job", job)]),
            ts.map(|t| Sample::new(t, (t / MINUTE) as f64)).collect(),
        )],
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();
}

/// (min_time, max_time) of every block, sorted.
fn blocks(db: &Arc<Db>) -> Vec<(i64, i64)> {
    let q = db.querier(i64::MIN, i64::MAX);
    let mut out: Vec<_> = q
        .blocks()
        .iter()
        .map(|b| (b.meta().min_time, b.meta().max_time))
        .collect();
    out.sort();
    out
}

fn read(db: &Arc<Db>, job: &str) -> Vec<i64> {
    let q = db.querier(i64::MIN, i64::MAX);
    let entries = q.select(&[Matcher::equal("job", job)]).unwrap();
    assert_eq!(entries.len(), 1);
    let mut out = Vec::new();
    q.samples(&entries[0], i64::MIN, i64::MAX, &mut out)
        .unwrap();
    out.iter().map(|s| s.t).collect()
}

#[test]
fn lagging_samples_merge_once_per_window() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let w = 1_700_000_000_000i64.div_euclid(HOUR) * HOUR;

    // Cut 1: `a` up to w+50m, `b` lagging one minute behind.
    append(&db, "a", (0..=50).map(|m| w + m * MINUTE));
    append(&db, "b", (0..=49).map(|m| w + m * MINUTE));
    db.cut_head().unwrap();
    assert_eq!(blocks(&db), vec![(w, w + 50 * MINUTE)]);

    // Cut 2: `b`'s late sample (inside window w, before cut 1's newest)
    // and both series in the next window.
    append(&db, "b", [w + 50 * MINUTE].into_iter());
    append(&db, "a", [w + HOUR + MINUTE].into_iter());
    append(&db, "b", [w + HOUR + MINUTE].into_iter());
    db.cut_head().unwrap();
    // One block per window: nothing straddles w + 1h.
    assert_eq!(
        blocks(&db),
        vec![
            (w, w + 50 * MINUTE),
            (w + 50 * MINUTE, w + 50 * MINUTE),
            (w + HOUR + MINUTE, w + HOUR + MINUTE),
        ]
    );

    // Window w is complete (the newest data is past it): its two blocks
    // merge into one; window w + 1h has one block and stays as it is.
    db.compact().unwrap();
    assert_eq!(
        blocks(&db),
        vec![(w, w + 50 * MINUTE), (w + HOUR + MINUTE, w + HOUR + MINUTE)]
    );
    // Another late sample for window w: merged into its window again,
    // never into window w + 1h's block.
    append(&db, "a", [w + 55 * MINUTE].into_iter());
    db.cut_head().unwrap();
    db.compact().unwrap();
    assert_eq!(
        blocks(&db),
        vec![(w, w + 55 * MINUTE), (w + HOUR + MINUTE, w + HOUR + MINUTE)]
    );

    let mut want_a: Vec<i64> = (0..=50).map(|m| w + m * MINUTE).collect();
    want_a.extend([w + 55 * MINUTE, w + HOUR + MINUTE]);
    assert_eq!(read(&db, "a"), want_a);
    let mut want_b: Vec<i64> = (0..=50).map(|m| w + m * MINUTE).collect();
    want_b.push(w + HOUR + MINUTE);
    assert_eq!(read(&db, "b"), want_b);
}

#[test]
fn a_cut_over_many_windows_writes_only_windows_with_data() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(tmp.path());
    let w = 1_700_000_000_000i64.div_euclid(HOUR) * HOUR;
    // Backfill: three samples ten hours apart.
    append(&db, "a", [w, w + 10 * HOUR, w + 20 * HOUR].into_iter());
    db.cut_head().unwrap();
    assert_eq!(
        blocks(&db),
        vec![
            (w, w),
            (w + 10 * HOUR, w + 10 * HOUR),
            (w + 20 * HOUR, w + 20 * HOUR)
        ]
    );
    assert_eq!(read(&db, "a"), vec![w, w + 10 * HOUR, w + 20 * HOUR]);
}

#[test]
fn forced_compaction_merges_incomplete_windows_of_the_largest_size() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::new(tmp.path());
    o.background = false;
    o.block_duration = Duration::from_secs(3600);
    o.max_block_duration = Duration::from_secs(6 * 3600);
    let db = Db::open(o, &mut Registry::default()).unwrap();
    let w = 1_700_000_000_000i64.div_euclid(6 * HOUR) * 6 * HOUR;
    // The last hour of one 6 h window, then the first three of the next:
    // four cuts.
    for h in [-1, 0, 1, 2] {
        append(&db, "a", (0..60).map(|m| w + h * HOUR + m * MINUTE));
        db.cut_head().unwrap();
    }
    // Scheduled compaction waits for windows to complete: the complete
    // windows hold one block each; the 3 h and 6 h windows holding
    // several are not complete yet.
    db.compact().unwrap();
    assert_eq!(blocks(&db).len(), 4);
    // Forced: one block per 6 h window, never across the window boundary.
    db.compact_all().unwrap();
    assert_eq!(
        blocks(&db),
        vec![(w - HOUR, w - MINUTE), (w, w + 2 * HOUR + 59 * MINUTE)]
    );
    let mut want: Vec<i64> = Vec::new();
    for h in [-1, 0, 1, 2] {
        want.extend((0..60).map(|m| w + h * HOUR + m * MINUTE));
    }
    assert_eq!(read(&db, "a"), want);
    // Nothing left to do: a second forced run changes nothing.
    db.compact_all().unwrap();
    assert_eq!(blocks(&db).len(), 2);
}
