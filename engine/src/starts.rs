//! Start timestamps as runs: the form blocks store them in and queries
//! read them in.
//!
//! A sample's start timestamp says when the value it counts began (remote
//! write 2.0's `start_timestamp`, OpenTelemetry's start time). A cumulative
//! counter keeps one start until it resets, so a series' starts are a few
//! runs of equal value: [`StartRun`] says "the samples from `first` to
//! `last` have start `start`". Samples no run covers have none. The head
//! keeps (time, start) pairs, one per sample that has a start, and hands
//! them out as runs of one sample ([`runs_from_pairs`]); a block writer
//! joins runs over consecutive samples ([`canonical_runs`]).

use crate::sample::Sample;

/// The samples of a series with `first <= t <= last` have start timestamp
/// `start` (ms, never 0: 0 means unknown). A series' runs are sorted by
/// time and do not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartRun {
    pub first: i64,
    pub last: i64,
    pub start: i64,
}

/// The head's (sample time, start) pairs as runs of one sample each.
pub fn runs_from_pairs(pairs: &[(i64, i64)]) -> impl Iterator<Item = StartRun> + '_ {
    pairs.iter().map(|&(t, start)| StartRun {
        first: t,
        last: t,
        start,
    })
}

/// Lays `run` over `runs` (sorted, disjoint): where they overlap in time,
/// `run` wins, as a later source's samples win over an earlier one's.
/// Appending in time order, the common case, is a push.
pub fn paint(runs: &mut Vec<StartRun>, run: StartRun) {
    if runs.last().is_none_or(|r| r.last < run.first) {
        runs.push(run);
        return;
    }
    // Runs wholly before and wholly after `run` stay; those it overlaps
    // keep only their parts outside it.
    let a = runs.partition_point(|r| r.last < run.first);
    let b = runs.partition_point(|r| r.first <= run.last);
    let mut mid = Vec::with_capacity(3);
    if let Some(r) = runs.get(a).filter(|r| r.first < run.first) {
        mid.push(StartRun {
            last: run.first - 1,
            ..*r
        });
    }
    mid.push(run);
    if let Some(r) = b
        .checked_sub(1)
        .map(|i| runs[i])
        .filter(|r| r.last > run.last)
    {
        mid.push(StartRun {
            first: run.last + 1,
            ..r
        });
    }
    runs.splice(a..b.max(a), mid);
}

/// The start timestamp of each of `samples` (sorted by time) into `out`
/// (cleared first), from `runs` (sorted, disjoint): 0 for a sample no run
/// covers.
pub fn align_starts(runs: &[StartRun], samples: &[Sample], out: &mut Vec<i64>) {
    out.clear();
    out.reserve(samples.len());
    let mut k = 0;
    for s in samples {
        while k < runs.len() && runs[k].last < s.t {
            k += 1;
        }
        out.push(match runs.get(k) {
            Some(r) if r.first <= s.t => r.start,
            _ => 0,
        });
    }
}

/// `runs` (sorted, disjoint) as a block stores them for `samples` (sorted
/// by time, strictly): each run reaching from its first covered sample to
/// its last, runs covering no sample dropped, and neighbours with the same
/// start and no sample between them joined. Appends to `out`.
pub fn canonical_runs(runs: &[StartRun], samples: &[Sample], out: &mut Vec<StartRun>) {
    let first_out = out.len();
    // Index of the sample after the last one the previous run covered.
    let mut next = 0;
    for r in runs {
        let a = next + samples[next..].partition_point(|s| s.t < r.first);
        let b = a + samples[a..].partition_point(|s| s.t <= r.last);
        if a == b {
            continue;
        }
        let run = StartRun {
            first: samples[a].t,
            last: samples[b - 1].t,
            start: r.start,
        };
        let joins = out.len() > first_out;
        match out.last_mut() {
            Some(prev) if joins && prev.start == run.start && a == next => prev.last = run.last,
            _ => out.push(run),
        }
        next = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(first: i64, last: i64, start: i64) -> StartRun {
        StartRun { first, last, start }
    }

    fn samples(times: &[i64]) -> Vec<Sample> {
        times.iter().map(|&t| Sample { t, v: 1.0 }).collect()
    }

    #[test]
    fn paint_splits_what_it_covers() {
        let mut runs = vec![run(0, 100, 1), run(200, 300, 2)];
        paint(&mut runs, run(50, 250, 3));
        assert_eq!(runs, [run(0, 49, 1), run(50, 250, 3), run(251, 300, 2)]);
        paint(&mut runs, run(60, 70, 4));
        assert_eq!(
            runs,
            [
                run(0, 49, 1),
                run(50, 59, 3),
                run(60, 70, 4),
                run(71, 250, 3),
                run(251, 300, 2)
            ]
        );
        paint(&mut runs, run(-10, 400, 5));
        assert_eq!(runs, [run(-10, 400, 5)]);
        paint(&mut runs, run(401, 401, 6));
        assert_eq!(runs, [run(-10, 400, 5), run(401, 401, 6)]);
        let mut before = vec![run(10, 20, 1)];
        paint(&mut before, run(0, 5, 2));
        assert_eq!(before, [run(0, 5, 2), run(10, 20, 1)]);
    }

    #[test]
    fn canonical_runs_join_consecutive_samples_only() {
        let s = samples(&[10, 20, 30, 40, 50]);
        let mut out = Vec::new();
        // One-sample runs of one start over 10..30 join; 40 has none, so
        // the run at 50 stays apart though its start is the same.
        let pairs = [(10, 7), (20, 7), (30, 7), (50, 7)];
        canonical_runs(&runs_from_pairs(&pairs).collect::<Vec<_>>(), &s, &mut out);
        assert_eq!(out, [run(10, 30, 7), run(50, 50, 7)]);
        // Run ends move onto samples; runs over no sample go.
        out.clear();
        canonical_runs(
            &[run(0, 15, 1), run(16, 19, 2), run(21, 45, 3)],
            &s,
            &mut out,
        );
        assert_eq!(out, [run(10, 10, 1), run(30, 40, 3)]);
    }

    fn arb_runs() -> impl Strategy<Value = Vec<StartRun>> {
        proptest::collection::vec((0i64..40, 0i64..8, 1i64..4), 0..12).prop_map(|spec| {
            let mut runs: Vec<StartRun> = Vec::new();
            for (a, len, start) in spec {
                paint(&mut runs, run(a, a + len, start));
            }
            runs
        })
    }

    proptest! {
        /// Painting gives every time the start of the last run laid over
        /// it, and leaves the runs sorted and disjoint.
        #[test]
        fn paint_matches_a_per_time_model(spec in proptest::collection::vec((0i64..40, 0i64..8, 1i64..4), 0..12)) {
            let mut runs = Vec::new();
            let mut model = [0i64; 48];
            for &(a, len, start) in &spec {
                paint(&mut runs, run(a, a + len, start));
                for t in a..=a + len {
                    model[t as usize] = start;
                }
            }
            prop_assert!(runs.windows(2).all(|w| w[0].last < w[1].first));
            prop_assert!(runs.iter().all(|r| r.first <= r.last));
            let all = samples(&(0..48).collect::<Vec<_>>());
            let mut got = Vec::new();
            align_starts(&runs, &all, &mut got);
            prop_assert_eq!(&got[..], &model[..]);
        }

        /// The canonical runs give every sample the start the runs gave it.
        #[test]
        fn canonical_runs_keep_every_samples_start(
            runs in arb_runs(),
            times in proptest::collection::btree_set(0i64..48, 0..30),
        ) {
            let s = samples(&times.into_iter().collect::<Vec<_>>());
            let (mut want, mut got) = (Vec::new(), Vec::new());
            align_starts(&runs, &s, &mut want);
            let mut canon = Vec::new();
            canonical_runs(&runs, &s, &mut canon);
            align_starts(&canon, &s, &mut got);
            prop_assert_eq!(want, got);
            // Canonical: ends on samples, and no two neighbours could join.
            for r in &canon {
                prop_assert!(s.iter().any(|x| x.t == r.first) && s.iter().any(|x| x.t == r.last));
            }
            for w in canon.windows(2) {
                let between = s.iter().any(|x| x.t > w[0].last && x.t < w[1].first);
                prop_assert!(w[0].start != w[1].start || between);
            }
        }
    }
}
