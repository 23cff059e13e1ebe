//! Timestamps shared by the head chunks of one scrape target.
//!
//! Every series of a scrape carries the scrape's timestamp, so the series of
//! one target append the same timestamps in the same order. Coded in each
//! series they cost 1–6 bits a sample (the more jitter, the more); a
//! [`TimeColumn`] keeps them once, and a decimal head chunk that follows
//! one codes only its values (`crate::head_chunk`).
//!
//! A column is append-only and holds at most [`COLUMN_CAP`] timestamps,
//! strictly ascending. A chunk uses the slots `start..start + count` of its
//! column: appending `t` at slot `i` either finds `t` there (another series
//! of the target put it there) or, at the column's end, puts it there
//! ([`TimeColumn::claim`]). A chunk whose next timestamp differs from the
//! column's moves to a column that holds its timestamps followed by the new
//! one, or to a copy of its own ([`Columns::rejoin`]); a chunk seals when
//! its column is full, so the chunks of a target seal together and the next
//! ones find each other again by their first timestamp.
//!
//! [`Columns`] is the head's registry of columns that may still grow, keyed
//! by their first timestamp. It only finds columns; chunks own them (by
//! `Arc`), and the registry drops a column once it is full or no chunk
//! holds it.
//!
//! Memory: a column takes about a kilobyte (offsets from its first
//! timestamp as `i32`), so sharing pays from about eight series a target
//! with jittered timestamps. Series found with fewer on their column at the
//! seal go back to coding their own timestamps (`crate::head::Chunks`).
//! Timestamps that series share by chance (senders that stamp each series
//! themselves) make no lasting column: a column is made for the second
//! chunk that starts at a timestamp, and forked only at a chunk's second
//! sample.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Timestamps a column holds: one in-order head chunk's worth.
pub const COLUMN_CAP: usize = crate::head::CHUNK_SAMPLES;

/// Up to [`COLUMN_CAP`] ascending timestamps, appended to concurrently.
pub struct TimeColumn {
    first: i64,
    /// Slots written; a slot is written before `len` covers it (release),
    /// and never changes after.
    len: AtomicU32,
    push: Mutex<()>,
    /// Another chunk than its maker joined it (see [`TimeColumn::joined`]).
    joined: AtomicBool,
    /// Timestamps minus `first`. Boxed: the registry's weak references
    /// keep a dropped column's own allocation until it prunes them, but
    /// not this one.
    offs: Box<[AtomicI32; COLUMN_CAP]>,
}

/// What [`TimeColumn::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The slot holds the timestamp (another chunk put it there).
    Found,
    /// The slot was the column's end and now holds the timestamp.
    Pushed,
    /// The slot holds another timestamp, or the column cannot take it.
    Mismatch,
}

impl std::fmt::Debug for TimeColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeColumn")
            .field("first", &self.first)
            .field("len", &self.len())
            .finish()
    }
}

impl TimeColumn {
    /// Heap bytes of a column (its `Arc` and its offsets).
    pub const BYTES: usize = 2 * std::mem::size_of::<usize>()
        + std::mem::size_of::<TimeColumn>()
        + COLUMN_CAP * std::mem::size_of::<i32>();

    /// A column holding `ts` (ascending, at most [`COLUMN_CAP`], each
    /// within `i32` milliseconds of the first); `None` if they do not fit.
    pub fn new(ts: &[i64]) -> Option<Arc<TimeColumn>> {
        let &first = ts.first()?;
        if ts.len() > COLUMN_CAP || ts.windows(2).any(|w| w[0] >= w[1]) {
            return None;
        }
        let col = TimeColumn {
            first,
            len: AtomicU32::new(0),
            push: Mutex::new(()),
            joined: AtomicBool::new(false),
            offs: Box::new([const { AtomicI32::new(0) }; COLUMN_CAP]),
        };
        for (slot, &t) in col.offs.iter().zip(ts) {
            slot.store(
                i32::try_from(t.checked_sub(first)?).ok()?,
                Ordering::Relaxed,
            );
        }
        col.len.store(ts.len() as u32, Ordering::Release);
        Some(Arc::new(col))
    }

    /// Whether a chunk other than the one it was made for has joined it:
    /// a chunk left alone on such a column was sharing by chance.
    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_joined(&self) {
        if !self.joined() {
            self.joined.store(true, Ordering::Relaxed);
        }
    }

    pub fn first(&self) -> i64 {
        self.first
    }

    /// Slots written.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() == COLUMN_CAP
    }

    /// The timestamp in slot `i`, which must be below [`TimeColumn::len`].
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        self.first + i64::from(self.offs[i].load(Ordering::Relaxed))
    }

    /// The timestamps in slots `from..to` (`to` at most the length).
    pub fn slice(&self, from: usize, to: usize) -> Vec<i64> {
        (from..to).map(|i| self.get(i)).collect()
    }

    /// The slot holding `t`, if any.
    pub fn position(&self, t: i64) -> Option<usize> {
        let len = self.len();
        let i = self.first_at_or_after(0..len, t);
        (i < len && self.get(i) == t).then_some(i)
    }

    /// The first slot of `slots` (written ones) at or after `t`, or the
    /// range's end: a bisection.
    pub fn first_at_or_after(&self, slots: std::ops::Range<usize>, t: i64) -> usize {
        let (mut lo, mut hi) = (slots.start, slots.end);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Whether slot `i` holds `t`, putting it there if `i` is the column's
    /// end. The caller's chunk holds the slots before `i`, so the column
    /// has at least `i` slots, and `t` is above slot `i - 1`.
    #[inline]
    pub fn claim(&self, i: usize, t: i64) -> Claim {
        if i < self.len() {
            return if self.get(i) == t {
                Claim::Found
            } else {
                Claim::Mismatch
            };
        }
        let _push = self.push.lock();
        let len = self.len.load(Ordering::Relaxed) as usize;
        if i < len {
            return if self.get(i) == t {
                Claim::Found
            } else {
                Claim::Mismatch
            };
        }
        let off = t
            .checked_sub(self.first)
            .and_then(|d| i32::try_from(d).ok());
        match off {
            Some(off) if i == len && len < COLUMN_CAP => {
                self.offs[i].store(off, Ordering::Relaxed);
                self.len.store(len as u32 + 1, Ordering::Release);
                Claim::Pushed
            }
            _ => Claim::Mismatch,
        }
    }

    /// Whether slots `at..at + ts.len()` hold `ts` and slot
    /// `at + ts.len()` holds `next` or is the column's end with room.
    fn continues(&self, at: usize, ts: &[i64], next: i64) -> bool {
        let len = self.len();
        let end = at + ts.len();
        if end > len || end >= COLUMN_CAP {
            return false;
        }
        let same = ts.iter().enumerate().all(|(k, &t)| self.get(at + k) == t);
        same && (end == len || self.get(end) == next)
    }
}

/// The head's registry of columns that may still grow, by their first and
/// their last timestamp, and of first timestamps seen once.
#[derive(Default)]
pub struct Columns {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Each open column under its first and (if another) its last
    /// timestamp. Weak: chunks own columns, and one no chunk holds goes.
    by_time: HashMap<i64, Vec<Weak<TimeColumn>>>,
    /// First timestamps of chunks that found no column: a second chunk
    /// starting there makes one. A timestamp only one series has (a
    /// sender that stamps each series itself) so costs no column.
    pending: HashSet<i64>,
    /// The newest timestamp a chunk started at.
    newest: i64,
    /// Entries after the last prune: the next is due at twice as many.
    pruned_at: usize,
}

/// Pending first timestamps older than this (behind the newest) are
/// forgotten: the series of one scrape arrive well within it.
const PENDING_MS: i64 = 2 * 60 * 1000;

impl Registry {
    /// Open columns filed under `t`, with the slot holding `t` in each.
    fn at(&self, t: i64) -> impl Iterator<Item = (Arc<TimeColumn>, usize)> + '_ {
        self.by_time
            .get(&t)
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .filter_map(move |c| c.position(t).map(|i| (c, i)))
    }

    fn file(&mut self, t: i64, col: &Arc<TimeColumn>) {
        self.by_time.entry(t).or_default().push(Arc::downgrade(col));
    }

    fn unfile(&mut self, t: i64, col: &Arc<TimeColumn>) {
        if let Some(cols) = self.by_time.get_mut(&t) {
            cols.retain(|c| !std::ptr::eq(c.as_ptr(), Arc::as_ptr(col)));
            if cols.is_empty() {
                self.by_time.remove(&t);
            }
        }
    }

    /// Whether a chunk asked for a column at `t` before (and found
    /// none): then the mark is used up and a column is due. Otherwise `t`
    /// is marked pending.
    fn seen_before(&mut self, t: i64) -> bool {
        self.newest = self.newest.max(t);
        if self.pending.remove(&t) {
            return true;
        }
        self.pending.insert(t);
        self.maybe_prune();
        false
    }

    fn entries(&self) -> usize {
        self.by_time.len() + self.pending.len()
    }

    /// Drops columns no chunk holds, and old pending timestamps, once the
    /// registry has doubled since the last time (amortised O(1)).
    fn maybe_prune(&mut self) {
        if self.entries() < (2 * self.pruned_at).max(1024) {
            return;
        }
        self.by_time.retain(|_, cols| {
            cols.retain(|c| c.upgrade().is_some_and(|c| !c.is_full()));
            !cols.is_empty()
        });
        let horizon = self.newest.saturating_sub(PENDING_MS);
        self.pending.retain(|&t| t >= horizon);
        self.pruned_at = self.entries();
    }
}

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Columns")
            .field("open", &self.len())
            .finish()
    }
}

impl Columns {
    /// A column and slot for a chunk whose first timestamp is `t`: an
    /// open column holding `t` as its first or last timestamp (the
    /// target's column, also for a series new in the target); else, unless
    /// `solo`, a new column if another chunk started at `t` before. `None`:
    /// the chunk codes its own timestamps.
    pub fn join(&self, t: i64, solo: bool) -> Option<(Arc<TimeColumn>, usize)> {
        let mut r = self.inner.lock();
        if let Some(found) = r.at(t).find(|(c, i)| i + 1 < COLUMN_CAP && !c.is_full()) {
            found.0.mark_joined();
            return Some(found);
        }
        if solo {
            return None;
        }
        if !r.seen_before(t) {
            return None;
        }
        let c = TimeColumn::new(&[t])?;
        r.file(t, &c);
        Some((c, 0))
    }

    /// A column and slot for a chunk whose timestamps so far, `ts`, are
    /// followed by `next`, which its column does not take: one that holds
    /// `ts` and then `next` or room for it; else, at the chunk's second
    /// timestamp, a new column holding `ts` if another chunk diverged to
    /// `next` before. `None`: the chunk codes
    /// its own timestamps from then on. The caller then claims `next` at
    /// the slot returned plus `ts.len()`.
    pub fn rejoin(&self, ts: &[i64], next: i64) -> Option<(Arc<TimeColumn>, usize)> {
        let (&first, &last) = (ts.first()?, ts.last()?);
        let mut r = self.inner.lock();
        // A column that continues `ts` is filed under its first timestamp
        // (at or before `first`: found by `last` then) or its last (`last`
        // or `next`).
        for key in [first, last, next] {
            let found = r
                .at(key)
                .filter_map(|(c, _)| Some((c.position(first)?, c)))
                .find(|(at, c)| c.continues(*at, ts, next));
            if let Some((at, c)) = found {
                c.mark_joined();
                return Some((c, at));
            }
        }
        // Forks only at a chunk's second timestamp (targets scraped at the
        // same millisecond part there), and as in `join` for the second
        // chunk that diverges to `next`: timestamps shared by chance cost
        // no lasting column.
        if ts.len() > 1 {
            return None;
        }
        if !r.seen_before(next) {
            return None;
        }
        let c = TimeColumn::new(ts)?;
        r.file(first, &c);
        if last != first {
            r.file(last, &c);
        }
        Some((c, 0))
    }

    /// Files `col` under its new last timestamp `t` (pushed into slot
    /// `i`), or drops it when that filled it.
    pub fn pushed(&self, col: &Arc<TimeColumn>, i: usize, t: i64) {
        let mut r = self.inner.lock();
        let before = col.get(i - 1);
        if before != col.first() {
            r.unfile(before, col);
        }
        if col.len() == COLUMN_CAP {
            // Out-of-order `pushed` calls may have left it filed under
            // inner timestamps too.
            for k in 0..COLUMN_CAP {
                r.unfile(col.get(k), col);
            }
        } else {
            r.file(t, col);
        }
    }

    /// Open columns filed (for tests and statistics).
    pub fn len(&self) -> usize {
        let r = self.inner.lock();
        let mut seen: Vec<*const TimeColumn> = r
            .by_time
            .values()
            .flatten()
            .filter(|c| c.strong_count() > 0)
            .map(Weak::as_ptr)
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims slot `start + i` of a chunk's column, filing pushes.
    fn claim(cols: &Columns, c: &Arc<TimeColumn>, i: usize, t: i64) -> Claim {
        let got = c.claim(i, t);
        if got == Claim::Pushed {
            cols.pushed(c, i, t);
        }
        got
    }

    #[test]
    fn claims_find_push_and_refuse() {
        let c = TimeColumn::new(&[100]).unwrap();
        assert_eq!(c.claim(0, 100), Claim::Found);
        assert_eq!(c.claim(1, 200), Claim::Pushed);
        assert_eq!(c.claim(1, 200), Claim::Found);
        assert_eq!(c.claim(1, 201), Claim::Mismatch);
        assert_eq!(
            c.claim(2, 100 + (1 << 31)),
            Claim::Mismatch,
            "offset past i32"
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c.position(200), Some(1));
        assert_eq!(c.position(150), None);
        for i in 2..COLUMN_CAP {
            assert_eq!(c.claim(i, 100 * (i as i64 + 1)), Claim::Pushed);
        }
        assert!(c.is_full());
        assert_eq!(c.claim(COLUMN_CAP, i64::MAX), Claim::Mismatch);
        assert!(TimeColumn::new(&[5, 5]).is_none());
        assert!(TimeColumn::new(&[0, 1 << 31]).is_none());
    }

    #[test]
    fn the_second_chunk_at_a_timestamp_makes_the_column() {
        let cols = Columns::default();
        // The first codes its own timestamps; the second makes a column.
        assert!(cols.join(1_000, false).is_none());
        let (a, i) = cols.join(1_000, false).unwrap();
        assert!(i == 0 && !a.joined());
        let (b, j) = cols.join(1_000, false).unwrap();
        assert!(Arc::ptr_eq(&a, &b) && j == 0 && a.joined());
        assert_eq!(claim(&cols, &a, 1, 16_000), Claim::Pushed);
        assert_eq!(claim(&cols, &a, 2, 31_000), Claim::Pushed);
        // A series new in the target joins at the column's last timestamp;
        // one in between finds nothing.
        let (c, k) = cols.join(31_000, false).unwrap();
        assert!(Arc::ptr_eq(&a, &c) && k == 2);
        assert!(cols.join(16_000, true).is_none());
        // Solo: own timestamps unless a column is there, and no pending
        // mark either.
        assert!(cols.join(46_000, true).is_none());
        assert!(cols.join(46_000, false).is_none());
        assert_eq!(cols.len(), 1);
    }

    #[test]
    fn diverging_chunks_find_their_fork() {
        let cols = Columns::default();
        // Two targets scraped at the same first millisecond.
        cols.join(1_000, false);
        let (a, _) = cols.join(1_000, false).unwrap();
        assert_eq!(claim(&cols, &a, 1, 16_000), Claim::Pushed);
        let (b, _) = cols.join(1_000, false).unwrap();
        assert_eq!(b.claim(1, 16_003), Claim::Mismatch);
        // The first to diverge codes its own timestamps, the second forks.
        assert!(cols.rejoin(&[1_000], 16_003).is_none());
        let (fork, at) = cols.rejoin(&[1_000], 16_003).unwrap();
        assert!(!Arc::ptr_eq(&a, &fork) && at == 0);
        assert_eq!(claim(&cols, &fork, 1, 16_003), Claim::Pushed);
        // The second target's next series lands on either column; from the
        // first, it finds the fork.
        let (again, at) = cols.rejoin(&[1_000], 16_003).unwrap();
        assert!(Arc::ptr_eq(&fork, &again) && at == 0);
        assert_eq!(again.claim(1, 16_003), Claim::Found);
        // Further on too: found by the last timestamp.
        assert_eq!(claim(&cols, &fork, 2, 31_000), Claim::Pushed);
        let (late, at) = cols.rejoin(&[16_003], 31_000).unwrap();
        assert!(Arc::ptr_eq(&fork, &late) && at == 1);
        // Past the second timestamp, no forks: own timestamps.
        for _ in 0..2 {
            assert!(cols.rejoin(&[1_000, 16_003], 31_001).is_none());
        }
    }

    #[test]
    fn registry_forgets_full_and_unheld_columns() {
        let cols = Columns::default();
        cols.join(0, false);
        let (a, _) = cols.join(0, false).unwrap();
        for i in 1..COLUMN_CAP {
            assert_eq!(claim(&cols, &a, i, i as i64), Claim::Pushed);
        }
        assert!(cols.is_empty());
        cols.join(10_000, false);
        let (b, _) = cols.join(10_000, false).unwrap();
        assert_eq!(cols.len(), 1);
        drop(b);
        assert_eq!(cols.len(), 0);
        // Unique timestamps (a sender stamping each series) leave only
        // pending marks, pruned as time moves on.
        for t in 0..5_000 {
            assert!(cols.join(20_000 + t * 1_000, false).is_none());
        }
        assert!(cols.inner.lock().pending.len() < 5_000);
        assert!(cols.is_empty());
    }

    #[test]
    fn concurrent_appenders_agree() {
        let cols = Arc::new(Columns::default());
        cols.join(5, false);
        // Four series of one target start their chunks, then append
        // concurrently.
        let joined: Vec<_> = (0..4).map(|_| cols.join(5, false).unwrap()).collect();
        let threads: Vec<_> = joined
            .into_iter()
            .map(|(c, start)| {
                let cols = Arc::clone(&cols);
                std::thread::spawn(move || {
                    for i in 1..COLUMN_CAP {
                        assert_ne!(
                            claim(&cols, &c, start + i, 5 + 15 * i as i64),
                            Claim::Mismatch
                        );
                    }
                    c
                })
            })
            .collect();
        let got: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got.iter().all(|c| Arc::ptr_eq(c, &got[0])));
        assert!(got[0].is_full());
        assert_eq!(got[0].slice(0, 3), vec![5, 20, 35]);
        assert!(cols.is_empty());
    }
}
