//! Start timestamps as runs: the form blocks store them in and queries
//! read them in.
//!
//! A sample's start timestamp says when the value it counts began (remote
//! write 2.0's `start_timestamp`, OpenTelemetry's start time). A cumulative
//! counter keeps one start until it resets, so a series' starts are a few
//! runs of equal value: [`StartRun`] says "the samples from `first` to
//! `last` have start `start`". Samples no run covers have none. The head
//! keeps (time, start) pairs, one per sample that has a start, compressed
//! ([`StartLog`]), and hands them out as runs of one sample
//! ([`runs_from_pairs`]); a block writer joins runs over consecutive
//! samples ([`canonical_runs`]).

use crate::sample::Sample;
use crate::varint::{put_uvarint, unzigzag, zigzag};
use crate::wal::Cursor;

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
pub(crate) fn runs_from_pairs(pairs: &[(i64, i64)]) -> impl Iterator<Item = StartRun> + '_ {
    pairs.iter().map(|&(t, start)| StartRun {
        first: t,
        last: t,
        start,
    })
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
pub(crate) fn canonical_runs(runs: &[StartRun], samples: &[Sample], out: &mut Vec<StartRun>) {
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

/// Entries between two [`Mark`]s of a [`StartLog`].
const MARK_EVERY: u32 = 64;
/// Side-list pairs a [`StartLog`] keeps before folding them back into its
/// log once they are an eighth of it.
const SIDE_KEPT: usize = 32;

/// Where decoding a [`StartLog`] may resume: the byte offset of an entry
/// and the state before it.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    off: u32,
    /// The previous entry's time, its distance to the one before, and
    /// its start.
    t: i64,
    dt: i64,
    st: i64,
}

/// A head series' (sample time, start) pairs, compressed: entries in time
/// order as varints of the time's delta of delta and the start's delta
/// (a counter's samples, a scrape interval apart with one start, cost two
/// bytes each; 16 as plain pairs), with a mark every [`MARK_EVERY`]
/// entries to resume decoding near a time. Pairs that do not come after
/// the last one (out-of-order samples, starts filled in later) go to a
/// small sorted side list that wins over the log on equal times.
#[derive(Debug, Default)]
pub(crate) struct StartLog {
    bytes: Vec<u8>,
    marks: Vec<Mark>,
    len: u32,
    /// The state after the last entry.
    last: Mark,
    side: Vec<(i64, i64)>,
}

impl StartLog {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0 && self.side.is_empty()
    }

    /// Records start `st` of the sample at `t`, replacing any it had.
    pub(crate) fn set(&mut self, t: i64, st: i64) {
        if self.len > 0 && t <= self.last.t {
            match self.side.binary_search_by_key(&t, |&(s, _)| s) {
                Ok(i) => self.side[i].1 = st,
                Err(i) => self.side.insert(i, (t, st)),
            }
            // Many out-of-order pairs: back into the log, compressed.
            if self.side.len() > SIDE_KEPT && self.side.len() * 8 > self.len as usize {
                let mut all = Vec::with_capacity(self.len as usize + self.side.len());
                self.read(i64::MIN, i64::MAX, &mut all);
                *self = StartLog::default();
                for (t, st) in all {
                    self.set(t, st);
                }
            }
            return;
        }
        if self.len.is_multiple_of(MARK_EVERY) && self.len > 0 {
            self.marks.push(Mark {
                off: self.bytes.len() as u32,
                ..self.last
            });
        }
        let dt = t.wrapping_sub(self.last.t);
        put_uvarint(&mut self.bytes, zigzag(dt.wrapping_sub(self.last.dt)));
        put_uvarint(&mut self.bytes, zigzag(st.wrapping_sub(self.last.st)));
        self.last = Mark {
            off: self.bytes.len() as u32,
            t,
            dt,
            st,
        };
        self.len += 1;
    }

    /// Calls `f(t, st)` for the log's entries (not the side list's) from
    /// the last mark before `mint` on, in time order, until it returns
    /// `false`.
    fn scan(&self, mint: i64, mut f: impl FnMut(i64, i64) -> bool) {
        let k = self.marks.partition_point(|m| m.t < mint);
        let mut m = match k {
            0 => Mark::default(),
            k => self.marks[k - 1],
        };
        let mut c = Cursor {
            b: &self.bytes[m.off as usize..],
        };
        // The log holds whole entries only.
        while let (Some(ddt), Some(dst)) = (c.uvarint(), c.uvarint()) {
            m.dt = m.dt.wrapping_add(unzigzag(ddt));
            m.t = m.t.wrapping_add(m.dt);
            m.st = m.st.wrapping_add(unzigzag(dst));
            if !f(m.t, m.st) {
                return;
            }
        }
    }

    /// The start of the sample at `t`, if it has one.
    pub(crate) fn get(&self, t: i64) -> Option<i64> {
        if let Ok(i) = self.side.binary_search_by_key(&t, |&(s, _)| s) {
            return Some(self.side[i].1);
        }
        if self.len == 0 || t > self.last.t {
            return None;
        }
        let mut found = None;
        self.scan(t, |et, st| {
            if et == t {
                found = Some(st);
            }
            et < t
        });
        found
    }

    /// Appends the (time, start) pairs with `mint <= t <= maxt` to `out`,
    /// sorted by time.
    pub(crate) fn read(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, i64)>) {
        let from = out.len();
        if self.len > 0 && self.last.t >= mint {
            self.scan(mint, |t, st| {
                if t > maxt {
                    return false;
                }
                if t >= mint {
                    out.push((t, st));
                }
                true
            });
        }
        let a = self.side.partition_point(|&(t, _)| t < mint);
        let b = self.side.partition_point(|&(t, _)| t <= maxt);
        let side = &self.side[a..b.max(a)];
        if side.is_empty() {
            return;
        }
        // Merge; on a time in both, the side list's start.
        let log = out.split_off(from);
        let (mut i, mut j) = (0, 0);
        while i < log.len() || j < side.len() {
            match (log.get(i), side.get(j)) {
                (Some(l), Some(s)) if l.0 < s.0 => {
                    out.push(*l);
                    i += 1;
                }
                (Some(l), Some(s)) => {
                    out.push(*s);
                    i += usize::from(l.0 == s.0);
                    j += 1;
                }
                (Some(l), None) => {
                    out.push(*l);
                    i += 1;
                }
                (None, Some(s)) => {
                    out.push(*s);
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.marks.capacity() * std::mem::size_of::<Mark>()
            + self.side.capacity() * std::mem::size_of::<(i64, i64)>()
    }

    /// Drops spare capacity (a sealed generation grows no more).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.marks.shrink_to_fit();
        self.side.shrink_to_fit();
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

    /// Sorted, disjoint runs over times 0..48.
    fn arb_runs() -> impl Strategy<Value = Vec<StartRun>> {
        proptest::collection::vec((0i64..4, 0i64..6, 1i64..4), 0..10).prop_map(|spec| {
            let mut runs = Vec::new();
            let mut t = 0;
            for (gap, len, start) in spec {
                let first = t + gap;
                runs.push(run(first, first + len, start));
                t = first + len + 1;
            }
            runs
        })
    }

    #[test]
    fn a_counters_starts_cost_two_bytes_a_sample() {
        let mut log = StartLog::default();
        for i in 0..1000 {
            log.set(1_700_000_000_000 + i * 15_000 + i % 3, 1_699_999_000_000);
        }
        assert!(log.bytes.len() < 2 * 1000 + 20, "{}", log.bytes.len());
        assert_eq!(
            log.get(1_700_000_000_000 + 500 * 15_000 + 2),
            Some(1_699_999_000_000)
        );
        assert_eq!(log.get(1_700_000_000_000 + 500 * 15_000), None);
    }

    proptest! {
        /// The log answers as a map from time to start, whatever the
        /// order and repeats of `set` (extreme values included), across
        /// its marks and after folding its side list back.
        #[test]
        fn start_log_matches_a_map(
            prefix in proptest::collection::vec(
                (prop_oneof![1i64..40, Just(1i64 << 40)], prop_oneof![0i64..3, Just(i64::MIN), Just(i64::MAX), any::<i64>()]),
                0..300,
            ),
            sets in proptest::collection::vec(
                (prop_oneof![0i64..4000, Just(i64::MIN), Just(i64::MAX), any::<i64>()], any::<i64>()),
                0..300,
            ),
            windows in proptest::collection::vec(
                (prop_oneof![0i64..4000, any::<i64>()], prop_oneof![0i64..4000, any::<i64>()]),
                1..6,
            ),
        ) {
            let mut log = StartLog::default();
            let mut model = std::collections::BTreeMap::new();
            // A run in time order first (the common case, crossing marks
            // with varied steps and starts), then the rest in any order.
            let mut t = -1_000i64;
            for &(dt, st) in &prefix {
                t = t.saturating_add(dt);
                log.set(t, st);
                model.insert(t, st);
            }
            for &(t, st) in &sets {
                log.set(t, st);
                model.insert(t, st);
            }
            prop_assert_eq!(log.is_empty(), model.is_empty());
            for (&t, &st) in &model {
                prop_assert_eq!(log.get(t), Some(st));
            }
            let mut all = Vec::new();
            log.read(i64::MIN, i64::MAX, &mut all);
            prop_assert_eq!(all, model.iter().map(|(&t, &s)| (t, s)).collect::<Vec<_>>());
            for (a, b) in windows {
                let mut got = vec![(-1, -1)];
                log.read(a, b, &mut got);
                let mut want = vec![(-1, -1)];
                if a <= b {
                    want.extend(model.range(a..=b).map(|(&t, &s)| (t, s)));
                }
                prop_assert_eq!(got, want, "window {}..={}", a, b);
                if !model.contains_key(&a) {
                    prop_assert_eq!(log.get(a), None);
                }
            }
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
