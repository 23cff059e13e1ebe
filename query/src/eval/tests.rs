//! Evaluator tests on hand-built syntax trees against a real `engine::Db`
//! (the conformance runner in `tests/conformance.rs` covers the rest).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use engine::{
    Db, Durability, Labels, MatchOp, Matcher, Options, Sample, SeriesSamples, WriteBatch,
};

use super::*;
use crate::promql::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Duration, Expr, Function,
    MatrixSelector, RangeMode, SubqueryExpr, ValueType, VectorSelector,
};

static RATE: Function = Function {
    name: "rate",
    arg_types: &[ValueType::Matrix],
    variadic: 0,
    return_type: ValueType::Vector,
    experimental: false,
};

static SUM_OVER_TIME: Function = Function {
    name: "sum_over_time",
    arg_types: &[ValueType::Matrix],
    variadic: 0,
    return_type: ValueType::Vector,
    experimental: false,
};

type TestSeries<'a> = (&'a [(&'a str, &'a str)], Vec<(i64, f64)>);

fn db(series: &[TestSeries]) -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path());
    opts.background = false;
    opts.durability = Durability::Async {
        interval: StdDuration::from_millis(2),
    };
    let db = Db::open(opts, &mut prometheus_client::registry::Registry::default()).unwrap();
    let batch = WriteBatch {
        series: series
            .iter()
            .map(|(l, s)| {
                SeriesSamples::new(
                    Labels::new(l),
                    s.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
                )
            })
            .collect(),
        metadata: Vec::new(),
    };
    drop(db.append(&batch).unwrap());
    (dir, db)
}

/// Owned label sets as the pairs [`db`] takes.
fn borrowed<const N: usize>(labels: &[[(String, String); N]]) -> Vec<Vec<(&str, &str)>> {
    labels
        .iter()
        .map(|l| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
        .collect()
}

/// `n` label sets of metric `name`: series `i` has `id` `i` (two digits)
/// and is in group `g` `i % groups`.
fn numbered(name: &str, n: usize, groups: usize) -> Vec<[(String, String); 3]> {
    (0..n)
        .map(|i| {
            [
                ("__name__".to_string(), name.to_string()),
                ("g".to_string(), (i % groups).to_string()),
                ("id".to_string(), format!("{i:02}")),
            ]
        })
        .collect()
}

/// A xorshift generator: the same numbers on every run.
pub(super) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

fn sel(name: &str) -> VectorSelector {
    VectorSelector {
        name: Some(name.into()),
        matchers: vec![Matcher::new(MatchOp::Equal, "__name__", name).unwrap()],
        offset: None,
        at: None,
        range_mode: RangeMode::Normal,
        position: 0,
    }
}

fn vector(name: &str) -> Expr {
    Expr::Vector(sel(name))
}

fn matrix(name: &str, range_ms: i64) -> Expr {
    Expr::Matrix(MatrixSelector {
        vector: sel(name),
        range: Duration::Literal(range_ms),
    })
}

fn call(f: &'static Function, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: f,
        args,
        position: 0,
    })
}

fn opts() -> QueryOptions {
    QueryOptions::default()
}

/// `metric` every 10s from 0 to 100s, value = t/10.
fn counter_db() -> (tempfile::TempDir, Arc<Db>) {
    let s: Vec<(i64, f64)> = (0..=10).map(|i| (i * 10_000, i as f64)).collect();
    db(&[
        (&[("__name__", "m"), ("job", "a")], s.clone()),
        (
            &[("__name__", "m"), ("job", "b")],
            s.iter().map(|&(t, v)| (t, v * 2.0)).collect(),
        ),
    ])
}

fn vector_values(v: &Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(s) => s.iter().map(|s| (s.labels.to_string(), s.v)).collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

#[test]
fn instant_selector_lookback_and_staleness() {
    let stale = f64::from_bits(engine::STALE_NAN);
    let (_d, db) = db(&[(
        &[("__name__", "x")],
        vec![(0, 1.0), (30_000, 2.0), (60_000, stale)],
    )]);
    let q = |t| vector_values(&instant_query(&db, &vector("x"), t, &opts()).unwrap().value);
    assert_eq!(q(30_000), vec![("x{}".into(), 2.0)]);
    assert_eq!(q(59_999), vec![("x{}".into(), 2.0)]);
    assert!(q(60_000).is_empty(), "stale marker hides the series");
    let (_d, db) = self::db(&[(&[("__name__", "y")], vec![(30_000, 2.0)])]);
    let q = |t| vector_values(&instant_query(&db, &vector("y"), t, &opts()).unwrap().value);
    assert_eq!(q(329_999).len(), 1);
    assert!(q(330_000).is_empty(), "lookback window is left-open");
}

#[test]
fn range_query_rolls_up_rate_per_series() {
    let (_d, db) = counter_db();
    let e = call(&RATE, vec![matrix("m", 30_000)]);
    let out = range_query(&db, &e, 30_000, 100_000, 10_000, &opts()).unwrap();
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[0].labels,
        Labels::new(&[("job", "a")]),
        "rate drops the name"
    );
    assert_eq!(m[0].points.len(), 8);
    for p in &m[0].points {
        assert!((p.v - 0.1).abs() < 1e-12, "{p:?}");
    }
    assert_eq!(
        out.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"m\""
        ]
    );
}

#[test]
fn offset_and_at_modifiers() {
    let (_d, db) = counter_db();
    let mut s = sel("m");
    s.offset = Some(Duration::Literal(20_000));
    let v = vector_values(
        &instant_query(&db, &Expr::Vector(s.clone()), 100_000, &opts())
            .unwrap()
            .value,
    );
    assert_eq!(v[0].1, 8.0);
    s.offset = None;
    s.at = Some(AtModifier::Time(50_000));
    let out = range_query(&db, &Expr::Vector(s), 0, 100_000, 50_000, &opts()).unwrap();
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert!(m[0].points.iter().all(|p| p.v == 5.0));
    assert_eq!(m[0].points.len(), 3);
}

#[test]
fn binary_matching_and_aggregation() {
    let (_d, db) = counter_db();
    let sum = Expr::Aggregate(AggregateExpr {
        op: AggregateOp::Sum,
        expr: Box::new(vector("m")),
        param: None,
        grouping: vec![],
        without: false,
        position: 0,
    });
    let v = vector_values(&instant_query(&db, &sum, 100_000, &opts()).unwrap().value);
    assert_eq!(v, vec![("{}".into(), 30.0)]);
    let div = Expr::Binary(BinaryExpr {
        op: BinaryOp::Div,
        lhs: Box::new(vector("m")),
        rhs: Box::new(sum),
        return_bool: false,
        matching: Some(crate::promql::ast::VectorMatching {
            card: crate::promql::ast::Cardinality::ManyToOne,
            labels: vec![],
            on: true,
            ..Default::default()
        }),
    });
    let v = vector_values(&instant_query(&db, &div, 100_000, &opts()).unwrap().value);
    assert_eq!(
        v,
        vec![
            ("{job=\"a\"}".into(), 10.0 / 30.0),
            ("{job=\"b\"}".into(), 20.0 / 30.0)
        ]
    );
    let one_to_one = Expr::Binary(BinaryExpr {
        op: BinaryOp::Add,
        lhs: Box::new(vector("m")),
        rhs: Box::new(Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Count,
            expr: Box::new(vector("m")),
            param: None,
            grouping: vec![],
            without: false,
            position: 0,
        })),
        return_bool: false,
        matching: Some(crate::promql::ast::VectorMatching {
            labels: vec![],
            on: true,
            ..Default::default()
        }),
    });
    let err = instant_query(&db, &one_to_one, 100_000, &opts()).unwrap_err();
    assert!(
        err.to_string()
            .contains("many-to-one matching must be explicit"),
        "{err}"
    );
    let Expr::Binary(mut b) = one_to_one else {
        unreachable!()
    };
    std::mem::swap(&mut b.lhs, &mut b.rhs);
    let err = instant_query(&db, &Expr::Binary(b), 100_000, &opts()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {} on the right hand-side of the operation: \
         [{__name__=\"m\", job=\"a\"}, {__name__=\"m\", job=\"b\"}];many-to-many matching \
         not allowed: matching labels must be unique on one side"
    );
}

#[test]
fn subquery_is_left_open_and_aligned() {
    let (_d, db) = counter_db();
    let sq = Expr::Subquery(SubqueryExpr {
        expr: Box::new(vector("m")),
        range: Duration::Literal(50_000),
        step: Some(Duration::Literal(10_000)),
        offset: None,
        at: None,
        position: 0,
    });
    let e = call(&SUM_OVER_TIME, vec![sq]);
    let v = vector_values(&instant_query(&db, &e, 100_000, &opts()).unwrap().value);
    // (50s, 100s] at 60..100 → 6+7+8+9+10.
    assert_eq!(v[0].1, 40.0);
}

#[test]
fn limits_are_enforced_and_named() {
    let (_d, db) = counter_db();
    let mut o = opts();
    o.engine.max_samples = 5;
    let err = range_query(&db, &vector("m"), 0, 100_000, 10_000, &o).unwrap_err();
    assert!(
        matches!(err, EvalError::TooManySamples { limit: 5 }),
        "{err}"
    );
    assert!(err.to_string().contains("max_samples"));
    let mut o = opts();
    o.engine.max_series = 1;
    let err = instant_query(&db, &vector("m"), 0, &o).unwrap_err();
    assert!(matches!(err, EvalError::TooManySeries { limit: 1 }));
    let mut o = opts();
    o.engine.timeout = StdDuration::ZERO;
    let err = instant_query(&db, &vector("m"), 0, &o).unwrap_err();
    assert!(matches!(err, EvalError::Timeout { .. }));
    assert_eq!(err.error_type(), "timeout");
}

#[test]
fn range_query_rejects_range_vectors() {
    let (_d, db) = counter_db();
    let err = range_query(&db, &matrix("m", 10_000), 0, 10, 1, &opts()).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}

#[test]
fn cancellation_is_reported() {
    let (_d, db) = counter_db();
    let mut o = opts();
    o.cancel = Some(Arc::new(std::sync::atomic::AtomicBool::new(true)));
    let err = instant_query(&db, &vector("m"), 0, &o).unwrap_err();
    assert!(matches!(err, EvalError::Canceled { .. }));
    assert_eq!(err.error_type(), "canceled");
}

#[test]
fn many_series_roll_up_in_parallel_in_order() {
    type Owned = (Vec<(String, String)>, Vec<(i64, f64)>);
    let series: Vec<Owned> = (0..300)
        .map(|i| {
            (
                vec![
                    ("__name__".to_string(), "m".to_string()),
                    ("i".to_string(), format!("{i:03}")),
                ],
                (0..=10).map(|k| (k * 10_000, (k * i) as f64)).collect(),
            )
        })
        .collect();
    let borrowed: Vec<Vec<(&str, &str)>> = series
        .iter()
        .map(|(l, _)| l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
        .collect();
    let input: Vec<TestSeries> = borrowed
        .iter()
        .zip(&series)
        .map(|(l, (_, s))| (l.as_slice(), s.clone()))
        .collect();
    let (_d, db) = db(&input);
    let mut o = opts();
    o.engine.parallelism = 4;
    let e = call(&RATE, vec![matrix("m", 30_000)]);
    let out = range_query(&db, &e, 30_000, 100_000, 10_000, &o).unwrap();
    let Value::Matrix(m) = out.value else {
        panic!()
    };
    assert_eq!(m.len(), 300, "the all-zero series has rate 0 and is kept");
    assert!(m.windows(2).all(|w| w[0].labels < w[1].labels));
    let i7 = m.iter().find(|s| s.labels.get("i") == Some("007")).unwrap();
    assert!(i7.points.iter().all(|p| (p.v - 0.7).abs() < 1e-9));
    assert_eq!(out.stats.series_touched, 300);
}

/// Steps far apart take the per-window read path; results must equal
/// instant queries at each step.
#[test]
fn sparse_steps_match_instant_queries() {
    let stale = f64::from_bits(engine::STALE_NAN);
    let mut s: Vec<(i64, f64)> = (0..180).map(|i| (i * 60_000, (i * i) as f64)).collect();
    s[90].1 = stale;
    let (_d, db) = db(&[(&[("__name__", "x")], s)]);
    for e in [vector("x"), call(&RATE, vec![matrix("x", 300_000)])] {
        let out = range_query(&db, &e, 0, 180 * 60_000, 30 * 60_000, &opts()).unwrap();
        let Value::Matrix(m) = out.value else {
            panic!()
        };
        let got: Vec<(i64, f64)> = m[0].points.iter().map(|p| (p.t, p.v)).collect();
        let mut want = Vec::new();
        for k in 0..=6 {
            let t = k * 30 * 60_000;
            if let Value::Vector(v) = instant_query(&db, &e, t, &opts()).unwrap().value
                && let Some(s) = v.first()
            {
                want.push((t, s.v));
            }
        }
        assert_eq!(got, want);
        assert!(
            out.stats.samples_loaded < 60,
            "only the windows are read: {:?}",
            out.stats
        );
    }
}

/// Aggregations fill few groups series by series and many groups step by
/// step; both give the exact per-step results (integers, so any summation
/// order is exact), including series that end and drop out after the
/// lookback. `sum` and `count` over enough points split the groups into
/// runs for threads (13 groups on 2 threads: runs of 2 and a last of 1).
#[test]
fn aggregation_by_few_and_many_groups() {
    const SERIES: usize = 400;
    const STEPS: i64 = 200;
    let last = |i: usize| STEPS - 1 - (i % 50) as i64;
    let value = |i: usize, k: i64| (i as i64 * 1000 + k) as f64;
    let labels: Vec<[(String, String); 4]> = (0..SERIES)
        .map(|i| {
            [
                ("__name__".to_string(), "agg".to_string()),
                ("g".to_string(), (i % 2).to_string()),
                ("h".to_string(), format!("{:02}", i % 13)),
                ("id".to_string(), format!("{i:03}")),
            ]
        })
        .collect();
    let pairs = borrowed(&labels);
    let series: Vec<TestSeries> = (0..SERIES)
        .map(|i| {
            let samples = (0..=last(i)).map(|k| (k * 10_000, value(i, k))).collect();
            (pairs[i].as_slice(), samples)
        })
        .collect();
    let (_d, db) = db(&series);
    // Lookback 5m: series i is seen at step s while s <= last(i) + 29.
    let seen = |i: usize, s: i64| (s <= last(i) + 29).then(|| value(i, s.min(last(i))));
    for op in [
        AggregateOp::Sum,
        AggregateOp::Count,
        AggregateOp::Max,
        AggregateOp::Min,
        AggregateOp::Avg,
    ] {
        for by in ["g", "h", "id"] {
            let e = Expr::Aggregate(AggregateExpr {
                op,
                expr: Box::new(vector("agg")),
                param: None,
                grouping: vec![by.into()],
                without: false,
                position: 0,
            });
            let mut o = opts();
            o.engine.parallelism = 2;
            let out = range_query(&db, &e, 0, (STEPS - 1) * 10_000, 10_000, &o).unwrap();
            let Value::Matrix(got) = out.value else {
                panic!("not a matrix")
            };
            let column = match by {
                "g" => 1,
                "h" => 2,
                _ => 3,
            };
            let key = |i: usize| labels[i][column].1.clone();
            let mut want: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
            for s in 0..STEPS {
                let mut groups: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
                for i in 0..SERIES {
                    if let Some(v) = seen(i, s) {
                        groups.entry(key(i)).or_default().push(v);
                    }
                }
                for (k, vs) in groups {
                    let sum: f64 = vs.iter().sum();
                    let v = match op {
                        AggregateOp::Sum => sum,
                        AggregateOp::Count => vs.len() as f64,
                        AggregateOp::Max => vs.iter().copied().fold(f64::MIN, f64::max),
                        AggregateOp::Min => vs.iter().copied().fold(f64::MAX, f64::min),
                        _ => sum / vs.len() as f64,
                    };
                    want.entry(k).or_default().push((s * 10_000, v));
                }
            }
            let got: std::collections::BTreeMap<String, Vec<(i64, f64)>> = got
                .iter()
                .map(|s| {
                    let k = s.labels.get(by).unwrap_or_default().to_string();
                    (k, s.points.iter().map(|p| (p.t, p.v)).collect())
                })
                .collect();
            assert_eq!(got, want, "{op:?} by {by}");
        }
    }
}

/// `count` and `group` over an instant selector count each series from
/// the steps its samples cover: equal to counting its points, across gaps
/// longer than the lookback, stale markers, samples on and between the
/// steps, offsets and grids finer and coarser than the samples; in the
/// head, and in blocks, where slices from pages without a gap wider than
/// the lookback or a stale marker are taken by their two ends.
#[test]
fn folded_counts_follow_gaps_and_stale_markers() {
    const SERIES: usize = 40;
    // `c` has gaps and stale markers; `r` (in pages of its own, but the
    // first) has neither, and its gaps reach the lookback.
    let (c, r) = (numbered("c", SERIES, 3), numbered("r", SERIES, 3));
    let (c, r) = (borrowed(&c), borrowed(&r));
    let stale = f64::from_bits(engine::STALE_NAN);
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut rnd = move |n: u64| next() % n;
    let mut series: Vec<TestSeries> = Vec::new();
    for (pairs, regular) in [(&c, false), (&r, true)] {
        for (i, pairs) in pairs.iter().enumerate() {
            let mut t = (i as i64 % 7) * 40_000;
            let mut samples = Vec::new();
            while t < 7_200_000 {
                let v = match rnd(40) {
                    0 if !regular => stale,
                    _ => 1.0,
                };
                samples.push((t, v));
                // Mostly 15 s apart, sometimes exactly the lookback, or
                // more, or a step of the grid.
                t += match rnd(30) {
                    0 => 300_000,
                    1 if !regular => 300_001,
                    2 => 299_999,
                    3 if !regular => 60_000 * (1 + rnd(12) as i64),
                    4 => 1,
                    _ => 15_000,
                };
            }
            series.push((pairs.as_slice(), samples));
        }
    }
    let (_d, db) = db(&series);
    let queries = [
        ("count by (g)", "c"),
        ("count", "c"),
        ("group by (g)", "c"),
        ("count by (g)", "c offset 90s"),
        ("count by (id)", "c"),
        ("count by (g)", "r"),
        ("group", "r offset 1m"),
    ];
    counts_equal_counted_points(&db, &queries);
    db.cut_head().unwrap();
    let whole = crate::eval::selector::tests::slices_taken_whole();
    counts_equal_counted_points(&db, &queries);
    let taken = crate::eval::selector::tests::slices_taken_whole() - whole;
    assert!(taken >= 100, "{taken} slices taken by their ends");
}

/// Each `op (arg)` of `queries`, over ranges on several grids, one and
/// two threads, is bit for bit `op ((arg) * 1)`, which counts points.
fn counts_equal_counted_points(db: &Arc<Db>, queries: &[(&str, &str)]) {
    for &(op, arg) in queries {
        let fe = crate::promql::parse(&format!("{op} ({arg})")).unwrap();
        let re = crate::promql::parse(&format!("{op} (({arg}) * 1)")).unwrap();
        for (start, step) in [(0, 15_000), (1_000, 30_000), (59_999, 60_000), (0, 420_000)] {
            for threads in [1, 2] {
                let mut o = opts();
                o.engine.parallelism = threads;
                let a = range_query(db, &fe, start, 7_500_000, step, &o).unwrap();
                let b = range_query(db, &re, start, 7_500_000, step, &o).unwrap();
                let points = |v: &Value| -> Vec<(String, Vec<(i64, u64)>)> {
                    let Value::Matrix(m) = v else {
                        panic!("not a matrix")
                    };
                    m.iter()
                        .map(|s| {
                            let p = s.points.iter().map(|p| (p.t, p.v.to_bits())).collect();
                            (s.labels.to_string(), p)
                        })
                        .collect()
                };
                let (pa, pb) = (points(&a.value), points(&b.value));
                assert!(!pa.is_empty());
                assert_eq!(
                    pa, pb,
                    "{op} ({arg}) from {start} step {step}, {threads} threads"
                );
            }
        }
    }
}

/// A folded count holds its cells, not a point per step of each series:
/// over a grid much finer than the samples, its peak stays near the
/// cells, where counting points would hold another step's worth.
#[test]
fn folded_counts_hold_no_point_per_step() {
    let labels = numbered("c", 8, 1);
    let pairs = borrowed(&labels);
    let series: Vec<TestSeries> = pairs
        .iter()
        .map(|l| (l.as_slice(), (0..30).map(|k| (k * 240_000, 1.0)).collect()))
        .collect();
    let (_d, db) = db(&series);
    let e = crate::promql::parse("count(c)").unwrap();
    let mut o = opts();
    o.engine.parallelism = 1;
    let steps = 7_201;
    let out = range_query(&db, &e, 0, (steps - 1) * 1_000, 1_000, &o).unwrap();
    let Value::Matrix(m) = &out.value else {
        panic!("not a matrix")
    };
    assert_eq!(m[0].points.len(), steps as usize);
    assert!(m[0].points.iter().all(|p| p.v == 8.0));
    let peak = out.stats.peak_samples;
    assert!(peak < steps as u64 * 3 / 2, "peak {peak} for {steps} cells");
}

/// `topk`, `bottomk` and `limitk` over a range pick at every step the
/// series and values an instant query at that step picks, ties and NaN
/// included (a range query's steps skip the instant answer's sort).
#[test]
fn k_aggregations_over_a_range_pick_what_instant_queries_pick() {
    const SERIES: usize = 12;
    const STEPS: i64 = 30;
    let labels = numbered("k", SERIES, 2);
    let pairs = borrowed(&labels);
    // Few distinct values (many ties), a NaN now and then, and series
    // that start late.
    let value = |i: usize, k: i64| match (i as i64 * 7 + k * 3) % 11 {
        0 => f64::NAN,
        r => (r % 4) as f64,
    };
    let series: Vec<TestSeries> = (0..SERIES)
        .map(|i| {
            let from = (i % 5) as i64 * 3;
            let samples = (from..STEPS).map(|k| (k * 60_000, value(i, k))).collect();
            (pairs[i].as_slice(), samples)
        })
        .collect();
    let (_d, db) = db(&series);
    type Picked = Vec<(String, u64)>;
    let picked = |v: &Value, t: i64| -> Picked {
        let mut p: Picked = match v {
            Value::Vector(v) => v
                .iter()
                .map(|s| (s.labels.get("id").unwrap().to_string(), s.v.to_bits()))
                .collect(),
            Value::Matrix(m) => m
                .iter()
                .filter_map(|s| {
                    let p = s.points.iter().find(|p| p.t == t)?;
                    Some((s.labels.get("id").unwrap().to_string(), p.v.to_bits()))
                })
                .collect(),
            _ => panic!("not a vector"),
        };
        p.sort();
        p
    };
    for op in [AggregateOp::Topk, AggregateOp::Bottomk, AggregateOp::Limitk] {
        for grouping in [vec![], vec!["g".to_string()]] {
            let e = Expr::Aggregate(AggregateExpr {
                op,
                expr: Box::new(vector("k")),
                param: Some(Box::new(Expr::Number(3.0))),
                grouping: grouping.clone(),
                without: false,
                position: 0,
            });
            let range = range_query(&db, &e, 0, (STEPS - 1) * 60_000, 60_000, &opts()).unwrap();
            for k in 0..STEPS {
                let t = k * 60_000;
                let instant = instant_query(&db, &e, t, &opts()).unwrap();
                assert_eq!(
                    picked(&range.value, t),
                    picked(&instant.value, t),
                    "{op:?} by {grouping:?} at step {k}"
                );
            }
        }
    }
}

#[test]
fn prepared_queries_estimate_their_size_and_answer_the_same() {
    let (_d, db) = counter_db();
    let e = Expr::Binary(BinaryExpr {
        op: BinaryOp::Add,
        lhs: Box::new(call(&RATE, vec![matrix("m", 30_000)])),
        rhs: Box::new(vector("m")),
        return_bool: false,
        matching: None,
    });
    let p = prepare(&db, e.clone(), 30_000, 100_000, 10_000, &opts()).unwrap();
    // One selection (both selectors have the same matchers) of 2 series ×
    // (8 steps + 4 samples a minute over the 700 s read, from 5 m
    // lookback + 30 s range before the start to 5 m lookback after the end).
    assert_eq!(p.cost(), 2 * (8 + 47));
    let prepared = p.run(&opts()).unwrap();
    let direct = range_query(&db, &e, 30_000, 100_000, 10_000, &opts()).unwrap();
    assert_eq!(prepared.value, direct.value);
    assert_eq!(prepared.stats, direct.stats);
    // Instant: the end is ignored.
    let p = prepare(&db, vector("m"), 50_000, 0, 0, &opts()).unwrap();
    assert_eq!(p.cost(), 2 * (1 + 40));
    assert_eq!(
        vector_values(&p.run(&opts()).unwrap().value),
        vector_values(
            &instant_query(&db, &vector("m"), 50_000, &opts())
                .unwrap()
                .value
        )
    );
    // A subquery's inner grid is not estimated.
    let sq = Expr::Subquery(SubqueryExpr {
        expr: Box::new(vector("m")),
        range: Duration::Literal(50_000),
        step: Some(Duration::Literal(10_000)),
        offset: None,
        at: None,
        position: 0,
    });
    let e = call(&SUM_OVER_TIME, vec![sq]);
    assert_eq!(
        prepare(&db, e, 100_000, 0, 0, &opts()).unwrap().cost(),
        u64::MAX
    );
    assert!(matches!(
        prepare(&db, vector("m"), 10, 0, -1, &opts()),
        Err(EvalError::BadData(_))
    ));
}

/// Aggregations over an instant selector or a range function with a
/// kernel are folded into the argument's evaluation (`fold.rs`); the
/// same aggregation over `arg * 1` (the same values, never folded) is
/// the reference, bit for bit: every sum must add its inputs in series
/// order, whatever the split over threads (by group, by series for
/// counts, unfolded where one group holds most series). Values are not
/// integers, so the order shows; annotations come in the same order.
/// Folded, the query never holds its argument's result, which the peak
/// sample count shows.
#[test]
fn folded_aggregations_equal_unfolded_bit_for_bit() {
    const SERIES: usize = 120;
    // `e` and `f`: two names, so that the order of rate's "not a counter"
    // infos shows; `k`: one group holding most series.
    let labels: Vec<[(String, String); 5]> = (0..SERIES)
        .map(|i| {
            let name = if i % 10 == 3 { "e" } else { "f" };
            let k = if i % 5 == 0 {
                format!("s{i}")
            } else {
                "big".to_string()
            };
            [
                ("__name__".to_string(), name.to_string()),
                ("g".to_string(), (i % 3).to_string()),
                ("h".to_string(), format!("{:02}", (i * 7) % 11)),
                ("id".to_string(), format!("{i:03}")),
                ("k".to_string(), k),
            ]
        })
        .collect();
    let pairs = borrowed(&labels);
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut rnd = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let series: Vec<TestSeries> = (0..SERIES)
        .map(|i| {
            // Counters with resets, some starting late or ending early,
            // one with a NaN and one with a stale marker.
            let (from, to) = ((i % 5) as i64 * 20, 400 - (i % 7) as i64 * 15);
            let mut v = 0.0;
            let samples = (from..to)
                .map(|k| {
                    v += rnd() * 1e3 + 0.1;
                    if k % 97 == (i as i64 % 97) {
                        v = rnd();
                    }
                    let x = match (i, k) {
                        (17, 200) => f64::NAN,
                        (18, 250) => f64::from_bits(engine::STALE_NAN),
                        _ => v,
                    };
                    (k * 15_000 + (i as i64 % 4) * 1_000, x)
                })
                .collect();
            (pairs[i].as_slice(), samples)
        })
        .collect();
    let (_d, db) = db(&series);
    let queries = [
        ("by (g)", "rate(f[5m])"),
        ("by (h)", "rate(f[1m])"),
        ("by (h)", "increase(f[10m])"),
        ("by (h)", "avg_over_time(f[3m])"),
        ("by (h)", "predict_linear(f[5m], 600)"),
        ("without (id)", "max_over_time(f[2m])"),
        ("by (h)", "f"),
        ("by (g, h)", "f offset 1m"),
        ("", "f"),
        ("by (h)", "last_over_time(f[5m])"),
        ("by (h)", "rate(f[5m] @ 3000)"),
        ("by (h)", "rate({__name__=~\"e|f\"}[5m])"),
        ("by (k)", "rate({__name__=~\"e|f\"}[5m])"),
        ("by (k)", "{__name__=~\"e|f\"}"),
    ];
    for op in ["sum", "avg", "count", "min", "max", "group"] {
        for (grouping, arg) in queries {
            let folded = format!("{op} {grouping} ({arg})");
            let reference = format!("{op} {grouping} (({arg}) * 1)");
            let fe = crate::promql::parse(&folded).unwrap();
            let re = crate::promql::parse(&reference).unwrap();
            for threads in [1, 2, 4] {
                let mut o = opts();
                o.engine.parallelism = threads;
                let a = range_query(&db, &fe, 60_000, 6_000_000, 45_000, &o).unwrap();
                let b = range_query(&db, &re, 60_000, 6_000_000, 45_000, &o).unwrap();
                let (Value::Matrix(ma), Value::Matrix(mb)) = (&a.value, &b.value) else {
                    panic!("not matrices")
                };
                let bits = |m: &Vec<crate::eval::Series>| -> Vec<(String, Vec<(i64, u64)>)> {
                    m.iter()
                        .map(|s| {
                            let p = s.points.iter().map(|p| (p.t, p.v.to_bits())).collect();
                            (s.labels.to_string(), p)
                        })
                        .collect()
                };
                assert!(!ma.is_empty(), "{folded}");
                assert_eq!(
                    bits(ma),
                    bits(mb),
                    "{folded} vs {reference}, {threads} threads"
                );
                assert_eq!(a.warnings, b.warnings, "{folded}");
                assert_eq!(a.infos, b.infos, "{folded}");
                for t in [1_000_000, 3_333_333, 6_000_000] {
                    let a = instant_query(&db, &fe, t, &o).unwrap();
                    let b = instant_query(&db, &re, t, &o).unwrap();
                    assert_eq!(
                        format!("{:?}", a.value),
                        format!("{:?}", b.value),
                        "{folded} at {t}, {threads} threads (same groups in the same order)"
                    );
                }
            }
        }
    }
    // Folded, a query holds its groups, not a point per series and step.
    let mut o = opts();
    o.engine.parallelism = 2;
    let run = |q: &str| {
        let e = crate::promql::parse(q).unwrap();
        range_query(&db, &e, 60_000, 6_000_000, 15_000, &o)
            .unwrap()
            .stats
            .peak_samples
    };
    // Split by group (11 groups) and by series (`count` over 3 groups).
    for (q, reference) in [
        ("sum by (h) (rate(f[5m]))", "sum by (h) (rate(f[5m]) * 1)"),
        ("count by (g) (f)", "count by (g) (f * 1)"),
    ] {
        let (folded, unfolded) = (run(q), run(reference));
        assert!(
            folded * 2 < unfolded,
            "{q}: peak samples folded {folded}, unfolded {unfolded}"
        );
    }
}

/// Four series `g{kind=...}` of 12,100 samples 10 s apart, 12,000 of
/// them cut into blocks and 100 in the head: integers (whole page runs
/// with summaries), fractions, stale markers and NaNs among small values,
/// and one (`overlap`) with a backfilled sample in the head inside the
/// blocks' time, which the in-place readers must leave to the merging
/// read. Also returns each series' samples in time order, and the last
/// sample's time.
#[allow(clippy::type_complexity)]
pub(crate) fn blocks_and_head_db() -> (
    tempfile::TempDir,
    Arc<Db>,
    Vec<(&'static str, Vec<(i64, f64)>)>,
    i64,
) {
    let stale = f64::from_bits(engine::STALE_NAN);
    let n = 12_000i64;
    let value = |kind: &str, i: i64| match kind {
        "int" => (i % 97) as f64,
        "frac" => (i as f64 * 0.37).sin() * 1e3,
        "odd" if i % 1_000 == 500 => stale,
        "odd" if i % 1_777 == 3 => f64::NAN,
        "odd" => (i % 13) as f64 - 6.0,
        // A counter reset every 1,024 samples: most page runs and chunks
        // hold none.
        "counter" => ((i % 1_024) * 3) as f64,
        _ => (i % 5) as f64,
    };
    let kinds = ["int", "frac", "odd", "counter", "overlap"];
    let labels: Vec<[(&str, &str); 2]> = kinds
        .iter()
        .map(|&k| [("__name__", "g"), ("kind", k)])
        .collect();
    let series: Vec<TestSeries> = labels
        .iter()
        .zip(kinds)
        .map(|(l, k)| (&l[..], (0..n).map(|i| (i * 10_000, value(k, i))).collect()))
        .collect();
    let (_d, db) = db(&series);
    db.cut_head().unwrap();
    // More in the head, and a backfilled sample inside the blocks' time.
    let more = |k: &str, samples: Vec<(i64, f64)>| {
        SeriesSamples::new(
            Labels::new(&[("__name__", "g"), ("kind", k)]),
            samples
                .into_iter()
                .map(|(t, v)| Sample::new(t, v))
                .collect(),
        )
    };
    let batch = WriteBatch {
        series: kinds
            .iter()
            .map(|&k| more(k, (n..n + 100).map(|i| (i * 10_000, value(k, i))).collect()))
            .chain([more("overlap", vec![(5_000_005, 7.5)])])
            .collect(),
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();
    let mut model: Vec<(&'static str, Vec<(i64, f64)>)> = kinds
        .iter()
        .map(|&k| (k, (0..n + 100).map(|i| (i * 10_000, value(k, i))).collect()))
        .collect();
    let (_, overlap) = model
        .iter_mut()
        .find(|(k, _)| *k == "overlap")
        .expect("an overlap series");
    overlap.push((5_000_005, 7.5));
    overlap.sort_by_key(|&(t, _)| t);
    (_d, db, model, (n + 99) * 10_000)
}

/// Instant windows over blocks and the head are folded in place
/// (`RangeArg::series_kernel`); a range query of two steps computes the
/// same first window the gathering way (`Kernel::run`). Both must agree
/// bit for bit (sums of fractions, which the fold may take from runs'
/// compensated sums, within a few units in the last place): series of
/// integers (whole page runs from summaries), of fractions, with stale
/// markers and NaNs, and one whose head overlaps a block (backfill),
/// where the fold falls back to the merging read. Rates see the counter
/// resets inside slices and across their joints, and take the runs of a
/// counter without resets by their ends (from their summaries). `deriv`
/// and `predict_linear` fold Prometheus's sums, which the range kernel's
/// exact ones match within 1e-7. Windows moved by `offset` and pinned by
/// `@` fold the same window as the range query's step (`predict_linear`
/// from the step's time).
#[test]
fn folded_instant_windows_equal_gathered_ones_over_blocks() {
    let (_d, db, _, end) = blocks_and_head_db();
    for f in [
        "count_over_time",
        "present_over_time",
        "sum_over_time",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "first_over_time",
        "last_over_time",
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "deriv",
        "predict_linear",
    ] {
        for (window, t) in [
            ("[40d]", end),
            ("[1d]", end - 3_333),
            ("[30h]", 90_000_777),
            ("[2h] offset 1h", end - 77_000),
            ("[90m] @ 60000.5", 100_000_000),
        ] {
            let param = if f == "predict_linear" { ", 3600" } else { "" };
            let q = format!("{f}(g{window}{param})");
            let e = crate::promql::parse(&q).unwrap();
            let folded = vector_values(&instant_query(&db, &e, t, &opts()).unwrap().value);
            let gathered = match range_query(&db, &e, t, t + 60_000, 60_000, &opts())
                .unwrap()
                .value
            {
                Value::Matrix(m) => m
                    .iter()
                    .filter(|s| s.points.first().is_some_and(|p| p.t == t))
                    .map(|s| (s.labels.to_string(), s.points[0].v))
                    .collect::<Vec<_>>(),
                other => panic!("not a matrix: {other:?}"),
            };
            let mut folded = folded;
            folded.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(folded.len(), 5, "{q} at {t}");
            assert_eq!(folded.len(), gathered.len(), "{q} at {t}");
            let tolerance = match f {
                "sum_over_time" | "avg_over_time" => 6.0 * f64::EPSILON,
                "deriv" | "predict_linear" => 2e-7,
                _ => 0.0,
            };
            for (a, b) in folded.iter().zip(&gathered) {
                let same = a.1.to_bits() == b.1.to_bits()
                    || (a.1.is_nan() && b.1.is_nan())
                    || tolerance > 0.0 && (a.1 - b.1).abs() <= tolerance * b.1.abs();
                assert!(a.0 == b.0 && same, "{q} at {t}: {a:?} vs {b:?}");
            }
        }
    }
}

/// An instant selector over a range walks the stored slices in place
/// (`InstantSel::walk`), or merges where a backfilled sample overlaps a
/// block: every step's point must be the model's latest sample at or
/// before it within the lookback, stale markers ending a series, NaNs
/// kept, and nothing past the data's end plus the lookback.
#[test]
fn instant_selector_over_a_range_equals_the_model_over_blocks_and_head() {
    let (_d, db, model, end) = blocks_and_head_db();
    let lookback = 300_000;
    for (start, stop, step) in [
        (7_777, end + 600_000, 61_000),
        (4_990_000, 5_010_000, 1_000),
        (end - 20_000, end + 400_000, 15_000),
        // The last sample exactly a lookback before the second step: out.
        (end, end + 600_000, 300_000),
        // One step, and a step so long that a time past the grid overflows.
        (5_000_000, 5_000_000, i64::MAX),
    ] {
        let e = crate::promql::parse("g").unwrap();
        let got = match range_query(&db, &e, start, stop, step, &opts())
            .unwrap()
            .value
        {
            Value::Matrix(m) => m,
            other => panic!("not a matrix: {other:?}"),
        };
        for (kind, samples) in &model {
            let mut want = Vec::new();
            let mut ts = start;
            while ts <= stop {
                let i = samples.partition_point(|&(t, _)| t <= ts);
                if let Some(&(t, v)) = i.checked_sub(1).map(|i| &samples[i])
                    && t > ts - lookback
                    && !engine::is_stale_nan(v)
                {
                    want.push((ts, v));
                }
                if ts > stop - step {
                    break;
                }
                ts += step;
            }
            let series = got.iter().find(|s| s.labels.get("kind") == Some(*kind));
            let have: Vec<(i64, f64)> = series
                .map(|s| s.points.iter().map(|p| (p.t, p.v)).collect())
                .unwrap_or_default();
            assert_eq!(
                have.len(),
                want.len(),
                "{kind} over {start}..{stop} by {step}"
            );
            for (a, b) in have.iter().zip(&want) {
                let same = a.1.to_bits() == b.1.to_bits() || (a.1.is_nan() && b.1.is_nan());
                assert!(
                    a.0 == b.0 && same,
                    "{kind} over {start}..{stop} by {step}: {a:?} vs {b:?}"
                );
            }
        }
    }
}

/// The walk in place counts the samples it reads against the query's
/// budget as the gathering read does.
#[test]
fn instant_selector_over_a_range_keeps_to_the_sample_budget() {
    let (_d, db, _, end) = blocks_and_head_db();
    let e = crate::promql::parse("g{kind=\"int\"}").unwrap();
    let mut o = opts();
    o.engine.max_samples = 10_000;
    // 12,100 samples in the window, 200 steps.
    let err = range_query(&db, &e, 300_000, end, (end - 300_000) / 199, &o).unwrap_err();
    assert!(err.to_string().contains("max_samples"), "{err}");
    o.engine.max_samples = 13_000;
    range_query(&db, &e, 300_000, end, (end - 300_000) / 199, &o).unwrap();
}

/// Start timestamps reach `rate`/`increase`/`irate`/`resets` on every path
/// that evaluates them: the range kernel, the instant fold and the folded
/// aggregation (`sum(rate(..))`) agree with each other, and differ from the
/// same samples without starts (a restart by start timestamp whose value
/// did not drop is a reset). A subquery passes no starts on.
#[test]
fn start_timestamps_reach_every_rate_path() {
    let (_d, db) = db(&[]);
    let minute = 60_000;
    // Counts up by 60 a minute; restarted (by its start) at 10m, 15m and
    // 16m without its value dropping.
    let values: Vec<(i64, f64)> = (1..=20).map(|i| (i * minute, (i * 60) as f64)).collect();
    let start = |t: i64| match t / minute {
        10..=14 => 10 * minute - 30_000,
        15 => 15 * minute - 1,
        16..=20 => 16 * minute - 20_000,
        _ => 1,
    };
    let series = |kind: &str, starts: bool| SeriesSamples {
        labels: Labels::new(&[("__name__", "c_total"), ("kind", kind)]),
        samples: values.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        start_timestamps: if starts {
            values.iter().map(|&(t, _)| start(t)).collect()
        } else {
            Vec::new()
        },
    };
    let batch = WriteBatch {
        series: vec![series("plain", false), series("st", true)],
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();

    let parse = |q: &str| crate::promql::parse(q).unwrap();
    let (from, to, step) = (6 * minute, 20 * minute, 30_000);
    let matrix = |q: &str| match range_query(&db, &parse(q), from, to, step, &opts())
        .unwrap()
        .value
    {
        Value::Matrix(m) => m,
        other => panic!("{other:?}"),
    };
    for f in ["rate", "increase", "irate", "resets"] {
        let per_series = matrix(&format!("{f}(c_total[5m])"));
        assert_eq!(per_series.len(), 2, "{f}");
        let (plain, st) = (&per_series[0].points, &per_series[1].points);
        assert_ne!(plain, st, "{f}: the starts change the answer");
        // The folded aggregation sums the same per-series values.
        let sum = matrix(&format!("sum(({f}(c_total{{kind=\"st\"}}[5m])))"));
        assert_eq!(&sum[0].points, st, "{f}: sum over one series");
        // Instant queries (the fold) answer what each step did.
        for p in st {
            let q = parse(&format!("{f}(c_total{{kind=\"st\"}}[5m])"));
            let v = vector_values(&instant_query(&db, &q, p.t, &opts()).unwrap().value);
            assert_eq!(v.len(), 1, "{f} at {}", p.t);
            assert_eq!(v[0].1.to_bits(), p.v.to_bits(), "{f} at {}", p.t);
        }
        // A subquery's points carry no starts.
        let sub = matrix(&format!("{f}(c_total[5m:1m])"));
        assert_eq!(sub[0].points, sub[1].points, "{f} over a subquery");
    }
    // By hand, at 12m over (7m, 12m]: 480 .. 720, restarted at 10m (its
    // start after the 9m sample): 720 − 480 + 540 = 780, extrapolated by
    // the minute to the window's start: 780 × 300 / 240 = 975 (without
    // the start: 240 × 300 / 240 = 300).
    let at_12m = |kind: &str| {
        let q = parse(&format!("increase(c_total{{kind=\"{kind}\"}}[5m])"));
        vector_values(&instant_query(&db, &q, 12 * minute, &opts()).unwrap().value)[0].1
    };
    assert_eq!((at_12m("st"), at_12m("plain")), (975.0, 300.0));
    // `resets` counts the three restarts in the windows that hold them.
    let resets = matrix("max(resets(c_total{kind=\"st\"}[20m]))");
    assert_eq!(resets[0].points.last().map(|p| p.v), Some(3.0));
    // An `anchored` window counts from the sample at or before its start:
    // at 14m30s the restart at 10m (its start after the 9m sample, the
    // anchor) counts; the plain window's first sample is the 10m one.
    let at = 14 * minute + 30_000;
    let resets_at = |q: &str| -> Vec<f64> {
        let v = vector_values(&instant_query(&db, &parse(q), at, &opts()).unwrap().value);
        v.iter().map(|x| x.1).collect()
    };
    assert_eq!(resets_at("resets(c_total[5m] anchored)"), [0.0, 1.0]);
    assert_eq!(resets_at("resets(c_total[5m])"), [0.0, 0.0]);
    // At 15m30s the anchor is the 10m sample: the 15m restart counts, the
    // 10m one (whose sample is the anchor) does not.
    let at = 15 * minute + 30_000;
    let resets_at = |q: &str| -> Vec<f64> {
        let v = vector_values(&instant_query(&db, &parse(q), at, &opts()).unwrap().value);
        v.iter().map(|x| x.1).collect()
    };
    assert_eq!(resets_at("resets(c_total[5m] anchored)"), [0.0, 1.0]);
    // A range query answers at every step what the instant query does.
    let anchored = matrix("resets(c_total{kind=\"st\"}[5m] anchored)");
    assert!(anchored[0].points.iter().any(|p| p.v > 0.0));
    for p in &anchored[0].points {
        let q = parse("resets(c_total{kind=\"st\"}[5m] anchored)");
        let v = vector_values(&instant_query(&db, &q, p.t, &opts()).unwrap().value);
        assert_eq!(v[0].1.to_bits(), p.v.to_bits(), "anchored at {}", p.t);
    }
}

/// Starts that reach back before the previous sample (and are not its
/// start) warn once per series, counting the windows that saw one.
#[test]
fn start_overlaps_warn_once_with_their_count() {
    let (_d, db) = db(&[]);
    let minute = 60_000;
    // Every sample's start lies 90 s back: before the previous sample, and
    // never the previous start.
    let times: Vec<i64> = (1..=10).map(|i| i * minute).collect();
    let batch = WriteBatch {
        series: vec![SeriesSamples {
            labels: Labels::new(&[("__name__", "c_total")]),
            samples: times.iter().map(|&t| Sample::new(t, t as f64)).collect(),
            start_timestamps: times.iter().map(|&t| t - 90_000).collect(),
        }],
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();
    let e = crate::promql::parse("rate(c_total[2m])").unwrap();
    // Steps at 4m, 5m, 6m: each window holds two samples, an overlap.
    let out = range_query(&db, &e, 4 * minute, 6 * minute, minute, &opts()).unwrap();
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].ends_with("for metric \"c_total\" (3 occurrences)"),
        "{}",
        out.warnings[0]
    );
    let out = instant_query(&db, &e, 4 * minute, &opts()).unwrap();
    assert!(
        !out.warnings[0].contains("occurrences"),
        "{:?}",
        out.warnings
    );
}

/// `start_timestamp(x)` gives the start of the sample the selector sees
/// at each step (0 when unknown, or for a series without any), and
/// nothing for an expression, whose values carry no starts.
#[test]
fn start_timestamp_reads_the_visible_samples_start() {
    let (_d, db) = db(&[]);
    let batch = WriteBatch {
        series: vec![
            SeriesSamples {
                labels: Labels::new(&[("__name__", "x"), ("k", "a")]),
                samples: vec![
                    Sample::new(10_000, 1.0),
                    Sample::new(20_000, 2.0),
                    Sample::new(30_000, 3.0),
                ],
                start_timestamps: vec![10_001, 0, -5_000],
            },
            SeriesSamples::new(
                Labels::new(&[("__name__", "x"), ("k", "b")]),
                vec![Sample::new(20_000, 2.0)],
            ),
        ],
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait_blocking().unwrap();
    let e = crate::promql::parse("start_timestamp(x)").unwrap();
    let Value::Matrix(m) = range_query(&db, &e, 0, 40_000, 5_000, &opts())
        .unwrap()
        .value
    else {
        panic!()
    };
    let got: Vec<(String, Vec<(i64, f64)>)> = m
        .iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.points.iter().map(|p| (p.t, p.v)).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "{k=\"a\"}".to_string(),
                vec![
                    (10_000, 10.001),
                    (15_000, 10.001),
                    (20_000, 0.0),
                    (25_000, 0.0),
                    (30_000, -5.0),
                    (35_000, -5.0),
                    (40_000, -5.0)
                ]
            ),
            (
                "{k=\"b\"}".to_string(),
                vec![
                    (20_000, 0.0),
                    (25_000, 0.0),
                    (30_000, 0.0),
                    (35_000, 0.0),
                    (40_000, 0.0)
                ]
            ),
        ]
    );
    let e = crate::promql::parse("start_timestamp(x * 1)").unwrap();
    let out = instant_query(&db, &e, 30_000, &opts()).unwrap();
    assert!(vector_values(&out.value).is_empty());
}

/// Over a cut, with starts from the block and the head, a range query
/// answers at every step what an instant query there does, windows across
/// the cut included. Steps far apart (each step reading its own window)
/// too.
#[test]
fn start_timestamps_over_a_cut_match_instant_queries() {
    let (_d, db) = db(&[]);
    let minute = 60_000;
    // Counts up by 60 a minute; restarts by start (the value not dropping)
    // at 10m and 30m.
    let start = |t: i64| match t / minute {
        10..=29 => 10 * minute - 30_000,
        30.. => 30 * minute - 30_000,
        _ => 1,
    };
    let append = |minutes: std::ops::RangeInclusive<i64>| {
        let times: Vec<i64> = minutes.map(|m| m * minute).collect();
        let batch = WriteBatch {
            series: vec![SeriesSamples {
                labels: Labels::new(&[("__name__", "c_total")]),
                samples: times
                    .iter()
                    .map(|&t| Sample::new(t, (t / 1000) as f64))
                    .collect(),
                start_timestamps: times.iter().map(|&t| start(t)).collect(),
            }],
            metadata: Vec::new(),
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
    };
    append(1..=20);
    db.cut_head().unwrap();
    append(21..=40);
    let parse = |q: &str| crate::promql::parse(q).unwrap();
    // Far-apart steps (each reading its own window) from 10m: the windows
    // (8m, 10m] and (28m, 30m] hold the restarts.
    for (q, from, step) in [
        ("increase(c_total[5m])", 6 * minute, minute),
        ("resets(c_total[5m])", 6 * minute, minute),
        ("irate(c_total[5m])", 6 * minute, minute),
        ("rate(c_total[2m])", 10 * minute, 10 * minute),
        ("resets(c_total[2m])", 10 * minute, 10 * minute),
    ] {
        let e = parse(q);
        let out = range_query(&db, &e, from, 40 * minute, step, &opts()).unwrap();
        // No start seems to overlap a sample before it, on either side
        // of the cut.
        assert!(out.warnings.is_empty(), "{q}: {:?}", out.warnings);
        let Value::Matrix(m) = out.value else {
            panic!()
        };
        assert_eq!(m.len(), 1, "{q}");
        for p in &m[0].points {
            let v = vector_values(&instant_query(&db, &e, p.t, &opts()).unwrap().value);
            assert_eq!(v.len(), 1, "{q} at {}", p.t);
            assert_eq!(v[0].1.to_bits(), p.v.to_bits(), "{q} at {}", p.t);
        }
    }
    // Both restarts are seen: at 10m from the block's starts, at 30m from
    // the head's.
    let resets = |t: i64| {
        let v = instant_query(&db, &parse("resets(c_total[5m])"), t, &opts()).unwrap();
        vector_values(&v.value)[0].1
    };
    assert_eq!((resets(12 * minute), resets(32 * minute)), (1.0, 1.0));
}
