//! Tests of the block writer, reader and merger: round trips against the
//! input, range reads, merges against a naive model, corruption handling
//! and the documented on-disk schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::merge::merge_with_layout;
use super::writer::{Layout, write_block_with_layout};
use super::*;
use crate::labels::{Labels, MatchOp, Matcher};
use crate::sample::{STALE_NAN, Sample};
use crate::starts::StartRun;

type Model = BTreeMap<Labels, Vec<Sample>>;

const TINY: Layout = Layout {
    page_rows: 7,
    row_group_rows: 40,
    times_kept: super::writer::SHARED_TIMES_KEPT,
};

fn write(dir: &Path, model: &Model, layout: Layout) -> Option<BlockMeta> {
    let it = model.iter().map(|(l, s)| Ok((l.clone(), s.clone())));
    write_block_with_layout(dir, &BlockWriteOptions::default(), layout, it).unwrap()
}

/// Merges `inputs` into a block in `dir` and opens it.
fn merge_open(dir: &Path, inputs: &[&Block]) -> Block {
    let meta = merge_blocks(dir, inputs, &BlockWriteOptions::default())
        .unwrap()
        .expect("a merged block");
    Block::open(&dir.join(&meta.id)).unwrap()
}

fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
    s.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn in_range(s: &[Sample], mint: i64, maxt: i64) -> Vec<Sample> {
    s.iter()
        .copied()
        .filter(|s| s.t >= mint && s.t <= maxt)
        .collect()
}

fn special_values() -> Vec<f64> {
    vec![
        f64::from_bits(STALE_NAN),
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::from_bits(0x7ff8_0000_dead_beef),
        f64::from_bits(0xfff0_0000_0000_0001),
        f64::MIN_POSITIVE / 2.0,
        f64::MAX,
    ]
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => (0u32..10_000).prop_map(f64::from),
        // Decimal-ish counters and gauges with 0-6 decimals, as parsed from text.
        3 => (-1_000_000_000_000i64..1_000_000_000_000, 0u32..7)
            .prop_map(|(m, k)| format!("{m}e-{k}").parse::<f64>().unwrap_or(0.0)),
        1 => (-20i32..20).prop_map(|e| 10f64.powi(e) * 1.5),
        2 => any::<u64>().prop_map(f64::from_bits),
        2 => proptest::sample::select(special_values()),
        1 => any::<f64>(),
    ]
}

fn arb_samples(max_len: usize) -> impl Strategy<Value = Vec<Sample>> {
    (
        -5_000i64..5_000,
        prop::collection::vec((1i64..40, arb_value()), 1..max_len),
    )
        .prop_map(|(start, deltas)| {
            let mut t = start;
            deltas
                .into_iter()
                .map(|(d, v)| {
                    t += d;
                    Sample { t, v }
                })
                .collect()
        })
}

fn arb_labels() -> impl Strategy<Value = Labels> {
    (
        proptest::sample::select(vec!["up", "a_total", "b", "node_cpu_seconds_total"]),
        prop::option::of(proptest::sample::select(vec!["api", "db", "x y", "ünï"])),
        prop::option::of(0u8..6),
    )
        .prop_map(|(name, job, inst)| {
            let inst = inst.map(|i| format!("host-{i}"));
            let mut pairs = vec![("__name__", name)];
            if let Some(j) = job {
                pairs.push(("job", j));
            }
            if let Some(i) = &inst {
                pairs.push(("instance", i.as_str()));
            }
            Labels::new(&pairs)
        })
}

/// Series whose values come from one family, so that whole pages are
/// decimal, double or mixed: counters with 0-6 decimals (family 0), the same
/// ending in a stale marker (1), integers (2), or `arb_value`'s mix (3).
fn arb_run_samples(max_len: usize) -> impl Strategy<Value = Vec<Sample>> {
    (
        0u8..4,
        arb_samples(max_len),
        0i32..7,
        -1_000_000i64..1_000_000_000,
    )
        .prop_map(|(family, mut samples, k, start)| {
            let p = 10f64.powi(k);
            let mut m = start;
            for s in samples.iter_mut() {
                m += s.t.rem_euclid(97);
                s.v = match family {
                    0 | 1 => m as f64 / p,
                    2 => m as f64,
                    _ => s.v,
                };
            }
            if family == 1
                && let Some(last) = samples.last_mut()
            {
                last.v = f64::from_bits(STALE_NAN);
            }
            samples
        })
}

fn arb_model() -> impl Strategy<Value = Model> {
    prop_oneof![
        prop::collection::btree_map(
            arb_labels(),
            prop_oneof![arb_samples(60), arb_run_samples(60)],
            1..25,
        ),
        arb_shared_model(),
    ]
}

/// Series drawing their timestamps from a few sequences, as series scraped
/// together do: equal sequences (stored once), and prefixes of them (not
/// equal, stored apart).
fn arb_shared_model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec(arb_samples(60), 1..4),
        prop::collection::btree_map(
            arb_labels(),
            (0usize..4, any::<bool>(), arb_run_samples(60)),
            1..25,
        ),
    )
        .prop_map(|(bases, series)| {
            series
                .into_iter()
                .map(|(labels, (base, prefix, values))| {
                    let times = &bases[base % bases.len()];
                    let n = if prefix && times.len() > 1 {
                        times.len() - 1
                    } else {
                        times.len()
                    };
                    let samples = times[..n]
                        .iter()
                        .zip(values.iter().cycle())
                        .map(|(t, v)| Sample { t: t.t, v: v.v })
                        .collect();
                    (labels, samples)
                })
                .collect()
        })
}

fn check_block_matches(block: &Block, model: &Model) {
    assert_eq!(block.num_series() as usize, model.len());
    let mut out = Vec::new();
    for (id, (labels, samples)) in model.iter().enumerate() {
        let id = id as u32;
        assert_eq!(&block.labels(id), labels);
        assert_eq!(
            block.series_time_range(id),
            (samples[0].t, samples[samples.len() - 1].t)
        );
        out.clear();
        block
            .read_samples(id, i64::MIN, i64::MAX, &mut out)
            .unwrap();
        assert_eq!(bits(&out), bits(samples), "series {labels}");
    }
    let meta = block.meta();
    assert_eq!(
        meta.num_samples,
        model.values().map(|s| s.len() as u64).sum::<u64>()
    );
    assert_eq!(meta.min_time, model.values().map(|s| s[0].t).min().unwrap());
    assert_eq!(
        meta.max_time,
        model.values().map(|s| s[s.len() - 1].t).max().unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(model in arb_model(), tiny in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let layout = if tiny { TINY } else { Layout::default() };
        let meta = write(dir.path(), &model, layout).unwrap();
        let block = Block::open(&dir.path().join(&meta.id)).unwrap();
        prop_assert_eq!(block.meta(), &meta);
        check_block_matches(&block, &model);
    }

    #[test]
    fn range_reads_and_read_many(
        model in arb_model(),
        a in -5_100i64..6_000,
        len in 0i64..800,
        cache_kib in prop::option::of(prop_oneof![Just(16usize), Just(1024)]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let meta = write(dir.path(), &model, TINY).unwrap();
        // Without a cache, with one that evicts all the time, with a roomy one.
        let cache = cache_kib.map(|k| Arc::new(BlockCache::new(k << 10)));
        let block = Block::open_cached(&dir.path().join(&meta.id), cache.clone()).unwrap();
        let (mint, maxt) = (a, a + len);
        let mut singles: Vec<(u32, Vec<(i64, u64)>)> = Vec::new();
        for (id, samples) in model.values().enumerate() {
            let want = in_range(samples, mint, maxt);
            // Twice: the second read finds the pages in the cache.
            for _ in 0..2 {
                let mut out = vec![Sample { t: -1, v: 1.0 }];
                block.read_samples(id as u32, mint, maxt, &mut out).unwrap();
                prop_assert_eq!(bits(&out[1..]), bits(&want)); // appends, keeps what was there
            }
            if !want.is_empty() {
                singles.push((id as u32, bits(&want)));
            }
        }
        // read_many over every other series, and over all of them.
        for step in [1usize, 2] {
            let ids: Vec<u32> = (0..block.num_series()).step_by(step).collect();
            let mut many = Vec::new();
            block.read_many(&ids, mint, maxt, &mut |id, s| many.push((id, bits(s)))).unwrap();
            let want: Vec<_> = singles.iter().filter(|(id, _)| ids.contains(id)).cloned().collect();
            prop_assert_eq!(many, want);
        }
        if let Some(c) = &cache {
            let st = c.stats();
            prop_assert!(st.bytes <= st.capacity);
            drop(block);
            prop_assert_eq!(c.stats().entries, 0, "pages leave with their block");
        }
    }

    #[test]
    fn merge_equals_sort_and_dedupe(models in prop::collection::vec(arb_model(), 1..4), cut in prop::option::of((-5_000i64..3_000, 0i64..3_000))) {
        let dir = tempfile::tempdir().unwrap();
        let mut blocks = Vec::new();
        for (i, m) in models.iter().enumerate() {
            let layout = if i % 2 == 0 { TINY } else { Layout::default() };
            let meta = write(dir.path(), m, layout).unwrap();
            blocks.push(Block::open(&dir.path().join(&meta.id)).unwrap());
        }
        let (mint, maxt) = cut.map_or((i64::MIN, i64::MAX), |(a, l)| (a, a + l));
        // Naive model: all samples tagged with their input index, later wins.
        let mut naive: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
        for m in &models {
            for (l, s) in m {
                let e = naive.entry(l.clone()).or_default();
                for x in s.iter().filter(|x| x.t >= mint && x.t <= maxt) {
                    e.insert(x.t, x.v);
                }
            }
        }
        naive.retain(|_, s| !s.is_empty());
        let inputs: Vec<&Block> = blocks.iter().collect();
        let out = merge_with_layout(dir.path(), &inputs, &BlockWriteOptions::default(), mint, maxt, TINY).unwrap();
        let Some(meta) = out else {
            prop_assert!(naive.is_empty());
            return Ok(());
        };
        let merged = Block::open(&dir.path().join(&meta.id)).unwrap();
        let model: Model = naive.into_iter().map(|(l, s)| (l, s.into_iter().map(|(t, v)| Sample { t, v }).collect())).collect();
        check_block_matches(&merged, &model);
        prop_assert_eq!(meta.level, 1);
        let mut sources: Vec<String> = blocks.iter().map(|b| b.meta().id.clone()).collect();
        sources.sort();
        prop_assert_eq!(&meta.sources, &sources);
    }
}

fn node_like(series: usize, samples: usize) -> Model {
    let mut m = Model::new();
    for i in 0..series {
        let l = Labels::new(&[
            ("__name__", "node_x"),
            ("cpu", &(i % 8).to_string()),
            ("instance", &format!("h{}", i / 8)),
        ]);
        let s = (0..samples)
            .map(|j| Sample {
                t: 1_000_000 + j as i64 * 15_000 + (j as i64 % 3),
                v: (i * j) as f64,
            })
            .collect();
        m.insert(l, s);
    }
    m
}

#[test]
fn long_series_and_many_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = node_like(30, 50);
    model.insert(
        Labels::new(&[("__name__", "long")]),
        (0..9_000)
            .map(|j| Sample {
                t: j * 10,
                v: j as f64,
            })
            .collect(),
    );
    let meta = write(
        dir.path(),
        &model,
        Layout {
            page_rows: 64,
            row_group_rows: 500,
            ..Layout::default()
        },
    )
    .unwrap();
    let block = Block::open(&dir.path().join(&meta.id)).unwrap();
    check_block_matches(&block, &model);
    // The long series is series 0 ("long" < "node_x"): a range in its middle.
    let mut out = Vec::new();
    block.read_samples(0, 45_000, 45_100, &mut out).unwrap();
    assert_eq!(
        out.iter().map(|s| s.t).collect::<Vec<_>>(),
        (4500..=4510).map(|j| j * 10).collect::<Vec<_>>()
    );
    // Edges: exactly the first and last timestamps, and just outside.
    out.clear();
    block
        .read_samples(1, 1_000_000, 1_000_000, &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    out.clear();
    block.read_samples(1, i64::MIN, 999_999, &mut out).unwrap();
    assert!(out.is_empty());
    let last = 1_000_000 + 49 * 15_000 + 1;
    block.read_samples(1, last, i64::MAX, &mut out).unwrap();
    assert_eq!(out.iter().map(|s| s.t).collect::<Vec<_>>(), vec![last]);
    assert!(
        block
            .read_samples(block.num_series(), 0, 1, &mut out)
            .is_err()
    );
    assert!(block.read_many(&[2, 1], 0, 1, &mut |_, _| {}).is_err());
}

#[test]
fn scans_leave_the_block_readable() {
    // A scan takes the row groups it read out of the resident set
    // (madvise); reads after it, and a second scan, see the same data.
    let dir = tempfile::tempdir().unwrap();
    // Row groups of tens of kilobytes: several whole memory pages each.
    let model = node_like(200, 1_000);
    let meta = write(
        dir.path(),
        &model,
        Layout {
            page_rows: 1_024,
            row_group_rows: 16_384,
            ..Layout::default()
        },
    )
    .unwrap();
    let block = Block::open(&dir.path().join(&meta.id)).unwrap();
    assert!(block.num_row_groups() > 4);
    let scan_all = || {
        let mut scan = block.scan(i64::MIN, i64::MAX);
        let mut all = Vec::new();
        let mut out = Vec::new();
        while let Some(id) = scan.next_series(&mut out).unwrap() {
            all.push((id, bits(&out)));
        }
        all
    };
    let first = scan_all();
    assert_eq!(first.len(), model.len());
    check_block_matches(&block, &model);
    assert_eq!(scan_all(), first);
}

#[test]
fn block_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Block>();
}

#[test]
fn postings_resolve_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let model = node_like(24, 3);
    let meta = write(dir.path(), &model, Layout::default()).unwrap();
    let block = Block::open(&dir.path().join(&meta.id)).unwrap();
    let ms = [
        Matcher::equal("cpu", "3"),
        Matcher::new(MatchOp::RegexMatch, "instance", "h[01]").unwrap(),
    ];
    let got: Vec<u32> = block.postings().select(&ms).iter().collect();
    let want: Vec<u32> = model
        .keys()
        .enumerate()
        .filter(|(_, l)| ms.iter().all(|m| m.matches_labels(l)))
        .map(|(i, _)| i as u32)
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 2);
}

#[test]
fn label_sets_are_kept_within_the_cache_budget() {
    let dir = tempfile::tempdir().unwrap();
    let model = node_like(24, 3);
    let meta = write(dir.path(), &model, Layout::default()).unwrap();
    let path = dir.path().join(&meta.id);
    let want: Vec<&Labels> = model.keys().collect();
    // Enough budget: the second call shares the first's set.
    let cache = Arc::new(BlockCache::new(1 << 20));
    let block = Block::open_cached(&path, Some(cache.clone())).unwrap();
    for (id, l) in want.iter().enumerate() {
        let a = block.labels(id as u32);
        let b = block.labels(id as u32);
        assert_eq!(&a, *l);
        assert!(std::ptr::eq(a.as_slice().as_ptr(), b.as_slice().as_ptr()));
    }
    assert!(block.labels(99).is_empty());
    assert!(cache.label_bytes() > 0);
    drop(block);
    assert_eq!(cache.label_bytes(), 0);
    // A budget too small for the slots (or no cache): built every time.
    for cache in [Some(Arc::new(BlockCache::new(2048))), None] {
        let block = Block::open_cached(&path, cache.clone()).unwrap();
        for (id, l) in want.iter().enumerate() {
            assert_eq!(&block.labels(id as u32), *l);
        }
        assert_eq!(cache.map_or(0, |c| c.label_bytes()), 0);
    }
}

/// With a cache, a selection is answered once and kept for the next query
/// with the same matchers, within the cache's selection budget; a block
/// makes room among its own selections for a new one.
#[test]
fn selections_are_kept_within_the_cache_budget() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), &node_like(24, 3), Layout::default()).unwrap();
    let path = dir.path().join(&meta.id);
    let all = vec![Matcher::equal("__name__", "node_x")];
    let some = vec![
        Matcher::equal("__name__", "node_x"),
        Matcher::new(MatchOp::RegexMatch, "cpu", "1|3").unwrap(),
    ];
    let cache = Arc::new(BlockCache::new(1 << 20));
    let block = Block::open_cached(&path, Some(cache.clone())).unwrap();
    let cost = |ms: &[Matcher]| {
        block.postings().select(ms).serialized_size() + crate::select_memo::matchers_bytes(ms)
    };
    let (cost_all, cost_some) = (cost(&all), cost(&some));
    for ms in [&all, &some] {
        let first = block.select(ms);
        assert!(!first.is_empty());
        assert_eq!(*first, block.postings().select(ms));
        assert!(Arc::ptr_eq(&first, &block.select(ms)));
    }
    assert_ne!(*block.select(&all), *block.select(&some));
    assert_eq!(cache.selection_bytes(), cost_all + cost_some);
    drop(block);
    assert_eq!(cache.selection_bytes(), 0);
    // Room for one of the two: the second takes the first's place.
    let cache = Arc::new(BlockCache::new(16 * (cost_all + cost_some - 1)));
    let block = Block::open_cached(&path, Some(cache.clone())).unwrap();
    let first = block.select(&all);
    assert!(Arc::ptr_eq(&first, &block.select(&all)));
    let second = block.select(&some);
    assert!(Arc::ptr_eq(&second, &block.select(&some)));
    assert_eq!(cache.selection_bytes(), cost_some);
    assert!(!Arc::ptr_eq(&first, &block.select(&all)));
    drop(block);
    assert_eq!(cache.selection_bytes(), 0);
    // A budget too small for any answer (or no cache): found every time.
    for cache in [Some(Arc::new(BlockCache::new(2048))), None] {
        let block = Block::open_cached(&path, cache.clone()).unwrap();
        let first = block.select(&all);
        assert_eq!(*first, block.postings().select(&all));
        assert!(!Arc::ptr_eq(&first, &block.select(&all)));
        assert_eq!(cache.map_or(0, |c| c.selection_bytes()), 0);
    }
}

/// A merge reads every series once: it builds label sets without keeping
/// them in its inputs' caches (where they would stay as long as the
/// inputs, and count against the budget queries share).
#[test]
fn merges_leave_label_caches_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = Arc::new(BlockCache::new(1 << 20));
    let a = write(tmp.path(), &node_like(30, 4), TINY).unwrap();
    let b = write(tmp.path(), &node_like(40, 2), TINY).unwrap();
    let a = Block::open_cached(&tmp.path().join(&a.id), Some(cache.clone())).unwrap();
    let b = Block::open_cached(&tmp.path().join(&b.id), Some(cache.clone())).unwrap();
    let out = tempfile::tempdir().unwrap();
    merge_blocks(out.path(), &[&a, &b], &BlockWriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(cache.label_bytes(), 0);
    assert_eq!(a.labels_uncached(3), a.labels(3));
    assert!(a.labels_uncached(999).is_empty());
}

/// `series.parquet` is written in row groups of at most
/// `SERIES_ROW_GROUP_ROWS` series (bounding the writer's memory), and read
/// back whole.
#[test]
fn series_table_spans_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let n = schema::SERIES_ROW_GROUP_ROWS * 2 + 5;
    let model = node_like(n, 2);
    let meta = write(dir.path(), &model, Layout::default()).unwrap();
    let path = dir.path().join(&meta.id);
    let (_, md) = printed_schema(&path.join(SERIES_FILE));
    assert_eq!(md.num_row_groups(), 3);
    assert!(
        md.row_groups()
            .iter()
            .all(|rg| rg.num_rows() as usize <= schema::SERIES_ROW_GROUP_ROWS)
    );
    check_block_matches(&Block::open(&path).unwrap(), &model);
}

#[test]
fn empty_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let it = vec![Ok((Labels::new(&[("__name__", "x")]), Vec::new()))].into_iter();
    assert!(
        write_block(dir.path(), &BlockWriteOptions::default(), it)
            .unwrap()
            .is_none()
    );
    assert!(
        write_block(
            dir.path(),
            &BlockWriteOptions::default(),
            std::iter::empty::<Result<BlockSeries>>()
        )
        .unwrap()
        .is_none()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bad_input_is_rejected_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Labels::new(&[("__name__", "a")]);
    let b = Labels::new(&[("__name__", "b")]);
    let s = |ts: &[i64]| ts.iter().map(|&t| Sample { t, v: 1.0 }).collect::<Vec<_>>();
    let cases: Vec<Vec<(Labels, Vec<Sample>)>> = vec![
        vec![(b.clone(), s(&[1])), (a.clone(), s(&[1]))],
        vec![(a.clone(), s(&[1])), (a.clone(), s(&[2]))],
        vec![(a.clone(), s(&[2, 1]))],
        vec![(a.clone(), s(&[1, 1]))],
    ];
    for case in cases {
        let r = write_block(
            dir.path(),
            &BlockWriteOptions::default(),
            case.into_iter().map(Ok),
        );
        assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    }
    let r = write_block(
        dir.path(),
        &BlockWriteOptions::default(),
        vec![
            Ok((a.clone(), s(&[1]))),
            Err(Error::Invalid("upstream".into())),
        ]
        .into_iter(),
    );
    assert!(matches!(r, Err(Error::Invalid(m)) if m == "upstream"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn options_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let opts = BlockWriteOptions {
        level: 1,
        sources: vec![],
        wal_segment_max: Some(7),
    };
    let it = node_like(2, 2).into_iter().map(Ok);
    let meta = write_block(dir.path(), &opts, it).unwrap().unwrap();
    assert_eq!((meta.level, meta.wal_segment_max), (1, Some(7)));
    assert_eq!(meta.sources, vec![meta.id.clone()]);
    let block = Block::open(&dir.path().join(&meta.id)).unwrap();
    assert_eq!(block.meta(), &meta);
    let on_disk: u64 = std::fs::read_dir(block.dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(block.size_bytes(), on_disk);
    assert_eq!(
        list_block_dirs(dir.path()).unwrap(),
        vec![block.dir().to_owned()]
    );
    // Merging one block with itself: level + 1, same sources, data unchanged.
    let out = merge_blocks(dir.path(), &[&block, &block], &BlockWriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        (out.level, out.wal_segment_max, out.sources.clone()),
        (2, Some(7), vec![meta.id.clone()])
    );
    let merged = Block::open(&dir.path().join(&out.id)).unwrap();
    check_block_matches(&merged, &node_like(2, 2));
    let bad = BlockWriteOptions {
        sources: vec!["a b".into()],
        ..BlockWriteOptions::default()
    };
    assert!(write_block(dir.path(), &bad, node_like(1, 1).into_iter().map(Ok)).is_err());
}

#[test]
fn reads_survive_deletion_of_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let model = node_like(10, 100);
    let meta = write(dir.path(), &model, TINY).unwrap();
    let block = Block::open(&dir.path().join(&meta.id)).unwrap();
    std::fs::remove_dir_all(block.dir()).unwrap();
    check_block_matches(&block, &model);
}

#[test]
fn incomplete_writes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let id = new_block_id();
    std::fs::create_dir(dir.path().join(format!("{id}.tmp"))).unwrap();
    std::fs::create_dir(dir.path().join("not-a-block.tmp")).unwrap();
    assert_eq!(
        remove_incomplete(dir.path()).unwrap(),
        vec![dir.path().join(format!("{id}.tmp"))]
    );
    assert!(dir.path().join("not-a-block.tmp").exists());
}

// ---- corruption ----

fn valid_block(dir: &Path) -> PathBuf {
    let meta = write(dir, &node_like(20, 40), TINY).unwrap();
    dir.join(meta.id)
}

/// Opens `block` and, if that works, reads everything: must not panic;
/// returns the first error.
fn open_and_read(block: &Path) -> Result<()> {
    let b = Block::open(block)?;
    let ids: Vec<u32> = (0..b.num_series()).collect();
    b.read_many(&ids, i64::MIN, i64::MAX, &mut |_, _| {})?;
    let mut out = Vec::new();
    for id in ids {
        b.read_samples(id, 0, i64::MAX, &mut out)?;
    }
    Ok(())
}

fn assert_corruption_names_one_of(r: Result<()>, files: &[&str]) {
    match r {
        Err(Error::Corruption { path, .. }) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            assert!(
                files.contains(&name),
                "error names {path:?}, want one of {files:?}"
            )
        }
        other => panic!("want corruption of one of {files:?}, got {other:?}"),
    }
}

fn assert_corruption_names(r: Result<()>, file: &str) {
    match r {
        Err(Error::Corruption { path, .. }) => {
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(file),
                "error names {path:?}, want {file}"
            )
        }
        other => panic!("want corruption of {file}, got {other:?}"),
    }
}

#[test]
fn truncated_or_flipped_files_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let block = valid_block(tmp.path());
    for name in [META_FILE, SAMPLES_FILE, SERIES_FILE, TIMESTAMPS_FILE] {
        let path = block.join(name);
        let orig = std::fs::read(&path).unwrap();
        let n = orig.len();
        // (meta.json ends in a newline, so n - 1 would still be valid JSON.)
        for cut in [0, 1, 4, n / 3, n / 2, n - 8, n - 2] {
            std::fs::write(&path, &orig[..cut]).unwrap();
            assert_corruption_names(open_and_read(&block), name);
        }
        for pos in [0, 3, n / 4, n / 2, n - 5, n - 1] {
            for bit in [0, 5] {
                let mut b = orig.clone();
                b[pos] ^= 1 << bit;
                std::fs::write(&path, &b).unwrap();
                assert_corruption_names(open_and_read(&block), name);
            }
        }
        std::fs::remove_file(&path).unwrap();
        assert_corruption_names(open_and_read(&block), name);
        std::fs::write(&path, &orig).unwrap();
        open_and_read(&block).unwrap();
    }
}

/// Rewrites meta.json so that its sizes and CRCs match the files on disk,
/// letting damaged Parquet reach the Parquet checks.
pub(crate) fn reseal(block: &Path) {
    let mut meta = read_meta(block).unwrap();
    for f in &mut meta.files {
        let bytes = std::fs::read(block.join(&f.name)).unwrap();
        f.size = bytes.len() as u64;
        f.crc32c = crc32c::crc32c(&bytes);
    }
    std::fs::write(block.join(META_FILE), meta.to_json()).unwrap();
}

#[test]
fn damaged_parquet_with_matching_crc_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let block = valid_block(tmp.path());
    for name in [SAMPLES_FILE, SERIES_FILE, TIMESTAMPS_FILE] {
        let path = block.join(name);
        let orig = std::fs::read(&path).unwrap();
        let n = orig.len();
        // Truncations can never be valid: the footer moves.
        for cut in [0, 7, n / 2, n - 9, n - 1] {
            std::fs::write(&path, &orig[..cut]).unwrap();
            reseal(&block);
            assert_corruption_names(open_and_read(&block), name);
        }
        // Flips anywhere: either still readable (a value changed) or
        // corruption of this file. Samples name their times by row, so a
        // damaged `ts_row` that still passes its own checks (consecutive,
        // in range) can surface as times out of order or out of range,
        // which name `timestamps.parquet`, and the other way round: with
        // the CRCs resealed, either of the two files may be named.
        let names: &[&str] = if name == SERIES_FILE {
            &[SERIES_FILE]
        } else {
            &[SAMPLES_FILE, TIMESTAMPS_FILE]
        };
        let mut rng_state = 0x9e37_79b9_u64;
        for _ in 0..300 {
            rng_state = rng_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pos = (rng_state >> 33) as usize % n;
            let mut b = orig.clone();
            b[pos] ^= 1 << ((rng_state >> 20) % 8);
            std::fs::write(&path, &b).unwrap();
            reseal(&block);
            if let Err(e) = open_and_read(&block) {
                assert_corruption_names_one_of(Err(e), names);
            }
        }
        std::fs::write(&path, &orig).unwrap();
        reseal(&block);
    }
    open_and_read(&block).unwrap();
}

#[test]
fn swapped_files_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let block = valid_block(tmp.path());
    std::fs::copy(block.join(SERIES_FILE), block.join(SAMPLES_FILE)).unwrap();
    reseal(&block);
    assert_corruption_names(open_and_read(&block), SAMPLES_FILE);
}

// ---- the documented format ----

/// The fenced block following `marker` in docs/format/block.md.
fn doc_block(marker: &str) -> String {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/format/block.md"),
    )
    .unwrap();
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?} not in block.md"));
    let rest = &doc[at..];
    let start = rest.find("```text\n").unwrap() + "```text\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_string()
}

fn printed_schema(path: &Path) -> (String, parquet::file::metadata::ParquetMetaData) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let md = r.metadata().clone();
    let mut s = Vec::new();
    parquet::schema::printer::print_schema(&mut s, md.file_metadata().schema());
    (String::from_utf8(s).unwrap(), md)
}

#[test]
fn written_files_match_documented_schema() {
    use parquet::basic::{Compression, Encoding};
    let tmp = tempfile::tempdir().unwrap();
    let block = valid_block(tmp.path());
    let (samples, md) = printed_schema(&block.join(SAMPLES_FILE));
    assert_eq!(samples, doc_block("<!-- schema:samples -->"));
    let (series, smd) = printed_schema(&block.join(SERIES_FILE));
    assert_eq!(series, doc_block("<!-- schema:series -->"));
    let (times, tmd) = printed_schema(&block.join(TIMESTAMPS_FILE));
    assert_eq!(times, doc_block("<!-- schema:timestamps -->"));
    let (with_starts, _) = block_with_starts(tmp.path(), Layout::default());
    let (starts, stmd) = printed_schema(&with_starts.join(STARTS_FILE));
    assert_eq!(starts, doc_block("<!-- schema:starts -->"));
    let starts_meta = read_meta(&with_starts).unwrap();
    for rg in stmd.row_groups() {
        for c in 0..4 {
            let col = rg.column(c);
            assert!(col.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED));
            assert!(matches!(col.compression(), Compression::ZSTD(_)));
        }
    }
    let kv = |m: &parquet::file::metadata::ParquetMetaData, k: &str| {
        m.file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .find(|e| e.key == k)
            .and_then(|e| e.value.clone())
    };
    let meta = read_meta(&block).unwrap();
    assert_eq!(kv(&md, "silt.format").as_deref(), Some(SAMPLES_FORMAT));
    assert_eq!(kv(&smd, "silt.format").as_deref(), Some(SERIES_FORMAT));
    assert_eq!(kv(&tmd, "silt.format").as_deref(), Some(TIMESTAMPS_FORMAT));
    assert_eq!(kv(&stmd, "silt.format").as_deref(), Some(STARTS_FORMAT));
    assert_eq!(kv(&stmd, "silt.block_id"), Some(starts_meta.id.clone()));
    assert_eq!(
        kv(&stmd, "silt.format_version"),
        Some(BLOCK_VERSION.to_string())
    );
    for rg in tmd.row_groups() {
        for c in 0..2 {
            assert!(
                rg.column(c)
                    .encodings()
                    .any(|e| e == Encoding::DELTA_BINARY_PACKED)
            );
            assert!(matches!(rg.column(c).compression(), Compression::ZSTD(_)));
            assert!(
                rg.column(c).offset_index_offset().is_some()
                    && rg.column(c).column_index_offset().is_some()
            );
        }
    }
    for m in [&md, &smd, &tmd] {
        assert_eq!(
            kv(m, "silt.format_version"),
            Some(BLOCK_VERSION.to_string())
        );
        assert_eq!(kv(m, "silt.block_id"), Some(meta.id.clone()));
        assert_eq!(kv(m, "silt.min_time"), Some(meta.min_time.to_string()));
        assert_eq!(kv(m, "silt.max_time"), Some(meta.max_time.to_string()));
        assert_eq!(kv(m, "silt.num_series"), Some(meta.num_series.to_string()));
        assert_eq!(
            kv(m, "silt.num_samples"),
            Some(meta.num_samples.to_string())
        );
    }
    for rg in md.row_groups() {
        let enc = |c: usize| rg.column(c).encodings().collect::<Vec<_>>();
        assert!(
            enc(0).contains(&Encoding::DELTA_BINARY_PACKED),
            "{:?}",
            enc(0)
        );
        assert!(
            enc(1).contains(&Encoding::DELTA_BINARY_PACKED),
            "{:?}",
            enc(1)
        );
        assert!(
            enc(2).contains(&Encoding::BYTE_STREAM_SPLIT),
            "{:?}",
            enc(2)
        );
        for c in [3, 4] {
            assert!(
                enc(c).contains(&Encoding::DELTA_BINARY_PACKED),
                "{c}: {:?}",
                enc(c)
            );
        }
        for c in 0..schema::SAMPLES_COLUMNS {
            assert!(matches!(rg.column(c).compression(), Compression::ZSTD(_)));
            assert!(
                rg.column(c).offset_index_offset().is_some()
                    && rg.column(c).column_index_offset().is_some()
            );
        }
        let sorting = rg.sorting_columns().unwrap();
        assert_eq!(
            sorting
                .iter()
                .map(|s| (s.column_idx, s.descending))
                .collect::<Vec<_>>(),
            vec![(0, false), (1, false)]
        );
    }
    // Pages: with TINY (7 rows a page, 40 rows a row group) and 40-sample
    // series, each series is cut into pages of 7,7,7,7,7,5 rows and each row
    // group ends on the first page that reaches 40 rows.
    let b = Block::open(&block).unwrap();
    assert_eq!(b.num_pages(), 20 * 6);
    assert_eq!(md.num_row_groups(), 20);
}

// ---- older format versions ----

/// What the version-1 golden block in `testdata/v1/` holds (it was written
/// by the version-1 writer with the `TINY` layout).
fn golden_v1_model() -> Model {
    let mut model = Model::new();
    let mut vals = special_values();
    vals.extend([1.5, 12345.67, 0.1, 1e300, 42.0]);
    model.insert(
        Labels::new(&[("__name__", "golden_special"), ("job", "g")]),
        vals.iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                t: 1_000 + i as i64 * 15_000,
                v,
            })
            .collect(),
    );
    model.insert(
        Labels::new(&[("__name__", "golden_counter"), ("job", "g")]),
        (0..20)
            .map(|i| Sample {
                t: 1_000 + i * 15_000 + i % 3,
                v: (1_234_567 + i * 37) as f64 / 100.0,
            })
            .collect(),
    );
    model
}

/// A golden block under `src/block/testdata/`.
fn golden_dir(block: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/block/testdata")
        .join(block)
}

fn golden_v1_dir() -> PathBuf {
    golden_dir("v1/01M8PX5DA5CZBNQNEPZMBJ9NCD")
}

#[test]
fn version_1_blocks_are_still_read() {
    let block = Block::open(&golden_v1_dir()).unwrap();
    assert_eq!(block.meta().version, 1);
    check_block_matches(&block, &golden_v1_model());
    let mut many = Vec::new();
    block
        .read_many(&[0, 1], i64::MIN, i64::MAX, &mut |id, s| {
            many.push((id, bits(s)))
        })
        .unwrap();
    assert_eq!(many.len(), 2);
}

fn golden_v2_dir() -> PathBuf {
    golden_dir("v2/01M8SBGKW695CTZ403P6Y8B833")
}

/// The version-2 golden block (written by the version-2 writer with the
/// `TINY` layout) holds what the version-1 one does.
#[test]
fn version_2_blocks_are_still_read() {
    let block = Block::open(&golden_v2_dir()).unwrap();
    assert_eq!(block.meta().version, 2);
    check_block_matches(&block, &golden_v1_model());
    let tmp = tempfile::tempdir().unwrap();
    let merged = merge_open(tmp.path(), &[&block]);
    assert_eq!(merged.meta().version, BLOCK_VERSION);
    check_block_matches(&merged, &golden_v1_model());
}

#[test]
fn merging_a_version_1_block_writes_the_current_version() {
    let tmp = tempfile::tempdir().unwrap();
    let old = Block::open(&golden_v1_dir()).unwrap();
    let merged = merge_open(tmp.path(), &[&old]);
    assert_eq!(merged.meta().version, BLOCK_VERSION);
    check_block_matches(&merged, &golden_v1_model());
}

#[test]
fn file_versions_must_match_meta() {
    // A version-2 meta.json over version-1 files is corruption of the
    // files, never a misread; version 3 wants a third file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("01M8PX5DA5CZBNQNEPZMBJ9NCD");
    std::fs::create_dir(&dir).unwrap();
    for f in [META_FILE, SAMPLES_FILE, SERIES_FILE] {
        std::fs::copy(golden_v1_dir().join(f), dir.join(f)).unwrap();
    }
    let mut meta = read_meta(&dir).unwrap();
    meta.version = 2;
    std::fs::write(dir.join(META_FILE), meta.to_json()).unwrap();
    let e = Block::open(&dir).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { path, detail } if path.ends_with(SERIES_FILE) && detail.contains("format_version")),
        "{e:?}"
    );
    meta.version = 3;
    std::fs::write(dir.join(META_FILE), meta.to_json()).unwrap();
    let e = Block::open(&dir).unwrap_err();
    assert!(
        matches!(&e, Error::Corruption { path, detail } if path.ends_with(META_FILE) && detail.contains(TIMESTAMPS_FILE)),
        "{e:?}"
    );
}

/// The decoded-page cache through the whole engine: a compaction that
/// merges blocks while a query holds them leaves that query's reads intact,
/// and the merged blocks' pages leave the cache once the query is done.
#[test]
fn cached_pages_outlive_compaction_only_as_long_as_their_readers() {
    use crate::db::{Db, Options};
    use crate::sample::{SeriesSamples, WriteBatch};
    use prometheus_client::registry::Registry;

    const HOUR: i64 = 3_600_000;
    const MINUTE: i64 = 60_000;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::new(tmp.path());
    o.background = false;
    o.block_duration = std::time::Duration::from_secs(3600);
    o.block_cache_bytes = 4 << 20;
    let mut registry = Registry::default();
    let db = Db::open(o, &mut registry).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let w = (now - 10 * HOUR).div_euclid(HOUR) * HOUR;
    let append = |minutes: std::ops::Range<i64>| {
        let series = (0..20)
            .map(|i| {
                SeriesSamples::new(
                    Labels::new(&[("__name__", "m"), ("i", &i.to_string())]),
                    minutes
                        .clone()
                        .map(|m| Sample::new(w + m * MINUTE, (i * 1000 + m) as f64))
                        .collect(),
                )
            })
            .collect();
        let batch = WriteBatch {
            series,
            metadata: Vec::new(),
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
    };
    // Two overlapping blocks in window w (a late cut), one in the next.
    append(0..40);
    db.cut_head().unwrap();
    append(40..55);
    db.cut_head().unwrap();
    append(61..62);
    db.cut_head().unwrap();
    let read_all = |q: &crate::Querier| -> Vec<Vec<(i64, u64)>> {
        let entries = q.select(&[Matcher::equal("__name__", "m")]).unwrap();
        entries
            .iter()
            .map(|e| {
                let mut out = Vec::new();
                q.samples(e, i64::MIN, i64::MAX, &mut out).unwrap();
                bits(&out)
            })
            .collect()
    };
    let q = db.querier(i64::MIN, i64::MAX);
    assert_eq!(q.blocks().len(), 3);
    let before = read_all(&q);
    assert_eq!(before.len(), 20);
    assert!(before.iter().all(|s| s.len() == 56));
    let cold = db.block_cache_stats();
    assert!(cold.misses > 0 && cold.entries > 0);
    assert_eq!(read_all(&q), before);
    let warm = db.block_cache_stats();
    assert_eq!(warm.misses, cold.misses, "second read decodes nothing");
    assert!(warm.hits > cold.hits);

    // Compaction merges window w while `q` still reads the old blocks.
    db.compact().unwrap();
    assert_eq!(db.querier(i64::MIN, i64::MAX).blocks().len(), 2);
    assert_eq!(read_all(&q), before);
    assert_eq!(db.block_cache_stats().entries, warm.entries);
    drop(q);
    // The merged blocks are gone, and their pages with them: only the
    // pages of the block that survived (window w + 1h) are left.
    let after_drop = db.block_cache_stats();
    assert!(after_drop.entries < warm.entries);
    assert!(after_drop.entries > 0);
    let q = db.querier(i64::MIN, i64::MAX);
    assert_eq!(read_all(&q), before);
    let st = db.block_cache_stats();
    assert!(st.misses > after_drop.misses, "the merged block is decoded");
    assert!(st.bytes <= st.capacity);

    // The cache's figures are on /metrics.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in [
        "silt_block_cache_hits_total",
        "silt_block_cache_misses_total",
        "silt_block_cache_size_bytes",
        "silt_block_cache_capacity_bytes",
        "silt_block_cache_entries",
        "silt_block_cache_evictions_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

/// Rows of a block's `timestamps.parquet`.
fn timestamp_rows(block: &Path) -> i64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(block.join(TIMESTAMPS_FILE)).unwrap();
    SerializedFileReader::new(f)
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows()
}

/// Series with equal timestamps share one sequence in `timestamps.parquet`;
/// a prefix of a sequence is a sequence of its own.
#[test]
fn equal_timestamps_are_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = node_like(20, 40);
    // One more series whose times are the shared ones but the last.
    let mut short = model.values().next().unwrap().clone();
    short.pop();
    model.insert(Labels::new(&[("__name__", "short")]), short);
    for layout in [TINY, Layout::default()] {
        let meta = write(tmp.path(), &model, layout).unwrap();
        let dir = tmp.path().join(&meta.id);
        assert_eq!(timestamp_rows(&dir), 40 + 39);
        let cache = Arc::new(BlockCache::new(1 << 20));
        for (cached, block) in [
            (false, Block::open(&dir).unwrap()),
            (true, Block::open_cached(&dir, Some(cache.clone())).unwrap()),
        ] {
            let mut got = Vec::new();
            let ids: Vec<u32> = (0..block.num_series()).collect();
            // A window inside the series: pages before and after it are skipped.
            let (mint, maxt) = (1_000_000 + 10 * 15_000, 1_000_000 + 20 * 15_000);
            block
                .read_many(&ids, mint, maxt, &mut |id, s| got.push((id, bits(s))))
                .unwrap();
            let want: Vec<_> = model
                .values()
                .enumerate()
                .map(|(id, s)| (id as u32, bits(&in_range(s, mint, maxt))))
                .collect();
            assert_eq!(got, want);
            if cached && layout == TINY {
                // Rows 10..20 of every series: with 7-row pages the window
                // needs 2 sample pages per series (21 series) and 2 pages
                // of each of the 2 sequences; pages wholly outside it are
                // skipped by the bounds `timestamps.parquet`'s page index
                // gives them.
                assert_eq!(cache.stats().entries, 2 * 21 + 2 * 2);
            }
            check_block_matches(&block, &model);
        }
    }
}

/// A merge keeps series that shared timestamps in its inputs sharing them
/// (by which input rows they came from, not by comparing).
#[test]
fn merges_keep_timestamps_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let early = node_like(20, 40);
    // Later samples of the same series, and one series of its own.
    let mut late = Model::new();
    for (l, s) in &early {
        late.insert(
            l.clone(),
            s.iter()
                .map(|x| Sample {
                    t: x.t + 40 * 15_000,
                    v: x.v + 1.0,
                })
                .collect(),
        );
    }
    late.insert(
        Labels::new(&[("__name__", "solo")]),
        vec![Sample { t: 5, v: 1.0 }],
    );
    let a = write(tmp.path(), &early, TINY).unwrap();
    let b = write(tmp.path(), &late, Layout::default()).unwrap();
    let a = Block::open(&tmp.path().join(&a.id)).unwrap();
    let b = Block::open(&tmp.path().join(&b.id)).unwrap();
    let out = tempfile::tempdir().unwrap();
    // No timestamps kept for comparison: only the merge's keys can share.
    let no_compare = Layout {
        times_kept: 0,
        ..TINY
    };
    let meta = merge_with_layout(
        out.path(),
        &[&a, &b],
        &BlockWriteOptions::default(),
        i64::MIN,
        i64::MAX,
        no_compare,
    )
    .unwrap()
    .unwrap();
    let dir = out.path().join(&meta.id);
    assert_eq!(timestamp_rows(&dir), 80 + 1);
    // The same series written whole (no keys) with nothing kept share nothing.
    let whole = write(tmp.path(), &early, no_compare).unwrap();
    assert_eq!(timestamp_rows(&tmp.path().join(&whole.id)), 20 * 40);
    let mut want = early.clone();
    for (l, s) in late {
        want.entry(l).or_default().extend(s);
    }
    check_block_matches(&Block::open(&dir).unwrap(), &want);
}

// ---- start timestamps (version 4) ----

fn run(first: i64, last: i64, start: i64) -> StartRun {
    StartRun { first, last, start }
}

/// Two series of `golden_v1_model`'s shape, the counter with two runs of
/// starts (joined from one-sample runs) and the other with none.
fn block_with_starts(dir: &Path, layout: Layout) -> (PathBuf, Vec<BlockSeries>) {
    let model = golden_v1_model();
    let series: Vec<BlockSeries> = model
        .into_iter()
        .map(|(labels, samples)| {
            let starts = if labels.metric_name() == Some("golden_counter") {
                // One run per sample, as the head hands them over.
                samples
                    .iter()
                    .enumerate()
                    .map(|(i, s)| run(s.t, s.t, if i < 7 { 500 } else { samples[6].t + 1 }))
                    .collect()
            } else {
                Vec::new()
            };
            BlockSeries {
                labels,
                samples,
                starts,
            }
        })
        .collect();
    let meta = write_block_with_layout(
        dir,
        &BlockWriteOptions::default(),
        layout,
        series.iter().cloned().map(Ok),
    )
    .unwrap()
    .unwrap();
    (dir.join(meta.id), series)
}

#[test]
fn starts_are_stored_as_canonical_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, series) = block_with_starts(tmp.path(), TINY);
    let meta = read_meta(&dir).unwrap();
    assert_eq!(meta.version, 4);
    let names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [SAMPLES_FILE, SERIES_FILE, STARTS_FILE, TIMESTAMPS_FILE]
    );
    let b = Block::open(&dir).unwrap();
    let counter = &series[0];
    assert_eq!(counter.labels.metric_name(), Some("golden_counter"));
    let t = |i: usize| counter.samples[i].t;
    assert!(b.series_has_starts(0) && !b.series_has_starts(1));
    assert_eq!(
        b.start_runs(0, i64::MIN, i64::MAX),
        [run(t(0), t(6), 500), run(t(7), t(19), t(6) + 1)]
    );
    // Runs reaching into the window only.
    assert_eq!(b.start_runs(0, t(7), t(8)), [run(t(7), t(19), t(6) + 1)]);
    assert_eq!(b.start_runs(0, t(19) + 1, i64::MAX), []);
    assert_eq!(b.start_runs(1, i64::MIN, i64::MAX), []);
    // A merge of the block with itself keeps them.
    let out = tempfile::tempdir().unwrap();
    let merged = merge_open(out.path(), &[&b, &b]);
    assert_eq!(
        merged.start_runs(0, i64::MIN, i64::MAX),
        b.start_runs(0, i64::MIN, i64::MAX)
    );
    // Without starts, no file and the same version.
    let plain = valid_block(tmp.path());
    let meta = read_meta(&plain).unwrap();
    assert_eq!(meta.version, 4);
    assert!(!meta.files.iter().any(|f| f.name == STARTS_FILE));
    assert!(!Block::open(&plain).unwrap().series_has_starts(0));
}

#[test]
fn the_writer_refuses_bad_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let samples: Vec<Sample> = (0..4).map(|i| Sample { t: i * 10, v: 1.0 }).collect();
    for (starts, want) in [
        (vec![run(0, 10, 1), run(10, 20, 2)], "overlap"),
        (vec![run(20, 30, 1), run(0, 10, 2)], "overlap"),
        (vec![run(0, 10, 0)], "bad start"),
        (vec![run(10, 0, 1)], "bad start"),
    ] {
        let s = BlockSeries {
            labels: Labels::new(&[("__name__", "x")]),
            samples: samples.clone(),
            starts,
        };
        let e = write_block(
            tmp.path(),
            &BlockWriteOptions::default(),
            [Ok(s)].into_iter(),
        )
        .unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Replaces the block's `starts.parquet` by one holding `rows` (series id,
/// run) and reseals the block.
fn rewrite_starts(block: &Path, rows: &[(u32, StartRun)]) {
    let mut r = super::starts::StartRows::default();
    for &(id, run) in rows {
        r.push(id, run);
    }
    let path = block.join(STARTS_FILE);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        file,
        schema::starts_schema(),
        Some(schema::starts_writer_properties("x")),
    )
    .unwrap();
    w.write(&r.take_batch().unwrap()).unwrap();
    w.close().unwrap();
    reseal(block);
}

#[test]
fn bad_starts_files_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, series) = block_with_starts(tmp.path(), TINY);
    let t = |i: usize| series[0].samples[i].t;
    let ok = [
        (0, run(t(0), t(3), 5)),
        (0, run(t(4), t(4), 6)),
        (1, run(series[1].samples[0].t, series[1].samples[0].t, 7)),
    ];
    rewrite_starts(&dir, &ok);
    open_and_read(&dir).unwrap();
    for (rows, want) in [
        (
            vec![(0, run(t(0), t(3), 5)), (0, run(t(3), t(4), 6))],
            "overlap",
        ),
        (
            vec![
                (1, run(series[1].samples[0].t, series[1].samples[0].t, 7)),
                (0, run(t(0), t(3), 5)),
            ],
            "after series",
        ),
        (vec![(0, run(t(0), t(3), 0))], "start timestamp 0"),
        (vec![(0, run(t(0) - 1, t(3), 5))], "outside its samples"),
        (vec![(0, run(t(3), t(0), 5))], "outside its samples"),
        (vec![(2, run(t(0), t(3), 5))], "not in the block"),
    ] {
        rewrite_starts(&dir, &rows);
        match Block::open(&dir) {
            Err(Error::Corruption { path, detail }) => {
                assert!(path.ends_with(STARTS_FILE), "{path:?}");
                assert!(detail.contains(want), "{detail} (want {want})");
            }
            other => panic!("want corruption, got {other:?}"),
        }
    }
    // A version-3 block may not have one.
    let mut meta = read_meta(&dir).unwrap();
    meta.version = 3;
    std::fs::write(dir.join(META_FILE), meta.to_json()).unwrap();
    assert_corruption_names(open_and_read(&dir), META_FILE);
}

fn golden_v3_dir() -> PathBuf {
    golden_dir("v3/01M91TNJGDEDN9Q2TZCHTMS3BE")
}

/// The version-3 golden block (written by the version-3 writer with the
/// `TINY` layout) holds what the version-1 one does, and has no starts.
#[test]
fn version_3_blocks_are_still_read() {
    let block = Block::open(&golden_v3_dir()).unwrap();
    assert_eq!(block.meta().version, 3);
    check_block_matches(&block, &golden_v1_model());
    assert!(!block.series_has_starts(0));
    let tmp = tempfile::tempdir().unwrap();
    let merged = merge_open(tmp.path(), &[&block]);
    assert_eq!(merged.meta().version, BLOCK_VERSION);
    check_block_matches(&merged, &golden_v1_model());
}

/// A merge within a window cuts the runs to the samples it keeps; merged
/// with a version-3 block of the same series and times, the later input's
/// starts (or lack of them) win.
#[test]
fn merges_cut_runs_and_take_the_later_inputs_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, series) = block_with_starts(tmp.path(), TINY);
    let b = Block::open(&dir).unwrap();
    let t = |i: usize| series[0].samples[i].t;
    let out = tempfile::tempdir().unwrap();
    let meta = merge_blocks_within(out.path(), &[&b], &BlockWriteOptions::default(), t(3), t(9))
        .unwrap()
        .unwrap();
    let cut = Block::open(&out.path().join(&meta.id)).unwrap();
    assert_eq!(
        cut.start_runs(0, i64::MIN, i64::MAX),
        [run(t(3), t(6), 500), run(t(7), t(9), t(6) + 1)]
    );
    let v3 = Block::open(&golden_v3_dir()).unwrap();
    for (inputs, want_starts) in [([&v3, &b], true), ([&b, &v3], false)] {
        let out = tempfile::tempdir().unwrap();
        let m = merge_open(out.path(), &inputs);
        check_block_matches(&m, &golden_v1_model());
        assert_eq!(m.series_has_starts(0), want_starts);
        if want_starts {
            assert_eq!(
                m.start_runs(0, i64::MIN, i64::MAX),
                b.start_runs(0, i64::MIN, i64::MAX)
            );
        }
    }
}

#[test]
fn starts_files_claiming_more_runs_than_samples_are_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, series) = block_with_starts(tmp.path(), TINY);
    // One-millisecond runs inside the special series' time range, one more
    // than it has samples.
    let (lo, n) = (series[1].samples[0].t, series[1].samples.len() as i64);
    let rows: Vec<(u32, StartRun)> = (0..=n).map(|i| (1, run(lo + i, lo + i, 9))).collect();
    rewrite_starts(&dir, &rows);
    match Block::open(&dir) {
        Err(Error::Corruption { path, detail }) => {
            assert!(path.ends_with(STARTS_FILE), "{path:?}");
            assert!(detail.contains("more runs than samples"), "{detail}");
        }
        other => panic!("want corruption, got {other:?}"),
    }
}

/// Blocks apart in time merge their runs as they are, and the writer joins
/// a run that goes on across them.
#[test]
fn merging_adjacent_blocks_joins_a_run_across_them() {
    let tmp = tempfile::tempdir().unwrap();
    let labels = Labels::new(&[("__name__", "c_total")]);
    let block = |from: i64, starts: Vec<StartRun>| {
        let samples: Vec<Sample> = (0..4)
            .map(|i| Sample {
                t: from + i * 10,
                v: 1.0,
            })
            .collect();
        let s = BlockSeries {
            labels: labels.clone(),
            samples,
            starts,
        };
        let meta = write_block(
            tmp.path(),
            &BlockWriteOptions::default(),
            [Ok(s)].into_iter(),
        )
        .unwrap()
        .unwrap();
        Block::open(&tmp.path().join(meta.id)).unwrap()
    };
    // 0..30 start 5 from 0 on; 100..130 start 5 then, from 120, start 115.
    let a = block(0, vec![run(0, 30, 5)]);
    let b = block(100, vec![run(100, 110, 5), run(120, 130, 115)]);
    let out = tempfile::tempdir().unwrap();
    let m = merge_open(out.path(), &[&a, &b]);
    assert_eq!(
        m.start_runs(0, i64::MIN, i64::MAX),
        [run(0, 110, 5), run(120, 130, 115)]
    );
}
