//! The in-memory head: every series written since the last cut, its samples
//! in compressed chunks, and an inverted index over its labels.
//!
//! Each series keeps its in-order samples in Gorilla-compressed chunks of up
//! to [`CHUNK_SAMPLES`] samples, and samples that arrive older than its newest
//! one (backfill, out-of-order senders) in separate out-of-order chunks that
//! reads merge in. Series are found by a hash of their labels; labels are
//! interned ([`Symbols`]) so a series costs a few dozen bytes plus its data.
//!
//! **Invariant (cut):** a cut moves each series' `live` data to `frozen` while
//! writers are held out ([`crate::Db`] owns that barrier), so every sample is
//! either in the frozen generation (and in WAL segments before the cut) or in
//! the live one (and in WAL segments from the cut on).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard, RwLock};

use crate::chunk::XorChunk;
use crate::head_chunk::HeadChunk;
use crate::index::MemPostings;
use crate::labels::{Label, Labels, Matcher};
use crate::sample::Sample;
use crate::symbols::Symbols;

/// In-order chunks are sealed at this many samples.
pub const CHUNK_SAMPLES: usize = 120;
/// Out-of-order samples are buffered uncompressed up to this many, then compressed.
const OOO_BUFFER: usize = 32;
/// The series map's keys are already 128-bit hashes of the labels
/// (XXH3): hashing them again (SipHash) cost a tenth of ingest CPU. The
/// shard is picked by the low bits; the map uses the high ones.
#[derive(Default, Clone, Copy)]
struct BuildHashedKey;

impl std::hash::BuildHasher for BuildHashedKey {
    type Hasher = HashedKey;
    fn build_hasher(&self) -> HashedKey {
        HashedKey(0)
    }
}

/// See [`BuildHashedKey`]; only `u128` keys are ever hashed with it.
struct HashedKey(u64);

impl std::hash::Hasher for HashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; fold anything else in correctly anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v >> 64) as u64;
    }
}

const SHARDS: usize = 64;

/// Samples of one series in one generation.
#[derive(Default)]
pub struct Chunks {
    sealed: Vec<HeadChunk>,
    open: HeadChunk,
    /// Compressed out-of-order runs; may overlap each other and the in-order data.
    ooo_chunks: Vec<XorChunk>,
    /// Recent out-of-order samples, sorted by time.
    ooo: Vec<Sample>,
}

/// A conflicting sample already stored.
#[derive(Debug, Clone, Copy)]
pub struct Conflict {
    pub t: i64,
    pub stored: f64,
}

impl Chunks {
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
            && self.sealed.is_empty()
            && self.ooo.is_empty()
            && self.ooo_chunks.is_empty()
    }

    /// Newest in-order timestamp, if any.
    fn in_order_max(&self) -> Option<i64> {
        if !self.open.is_empty() {
            Some(self.open.max_t())
        } else {
            self.sealed.last().map(HeadChunk::max_t)
        }
    }

    /// The stored value at `t`, if any.
    pub fn value_at(&self, t: i64) -> Option<f64> {
        if let Ok(i) = self.ooo.binary_search_by_key(&t, |s| s.t) {
            return Some(self.ooo[i].v);
        }
        for c in self.sealed.iter().chain(std::iter::once(&self.open)) {
            if !c.is_empty()
                && c.min_t() <= t
                && t <= c.max_t()
                && let Some(s) = c.iter().find(|s| s.t == t)
            {
                return Some(s.v);
            }
        }
        for c in &self.ooo_chunks {
            if !c.is_empty()
                && c.min_t() <= t
                && t <= c.max_t()
                && let Some(s) = c.iter().find(|s| s.t == t)
            {
                return Some(s.v);
            }
        }
        None
    }

    /// Checks whether appending (t, v) is allowed: `Ok(true)` if it is new,
    /// `Ok(false)` if it is an exact duplicate, `Err` on a conflicting value.
    pub fn check(&self, t: i64, v: f64) -> Result<bool, Conflict> {
        // Out-of-order data only ever holds samples older than the newest
        // in-order one, so anything newer is new.
        match self.in_order_max() {
            Some(max) if t <= max => {}
            _ => return Ok(true),
        }
        match self.value_at(t) {
            None => Ok(true),
            Some(stored) if stored.to_bits() == v.to_bits() => Ok(false),
            Some(stored) => Err(Conflict { t, stored }),
        }
    }

    /// Appends a sample already checked with [`Chunks::check`] to be new.
    pub fn push(&mut self, t: i64, v: f64) {
        match self.in_order_max() {
            Some(max) if t <= max => {
                let i = self.ooo.partition_point(|s| s.t < t);
                self.ooo.insert(i, Sample::new(t, v));
                if self.ooo.len() >= OOO_BUFFER {
                    let mut c = XorChunk::new();
                    for s in self.ooo.drain(..) {
                        c.append(s.t, s.v);
                    }
                    c.shrink_to_fit();
                    self.ooo_chunks.push(c);
                }
            }
            _ => {
                self.open.append(t, v);
                if self.open.len() >= CHUNK_SAMPLES {
                    let mut sealed = std::mem::take(&mut self.open);
                    sealed.shrink_to_fit();
                    self.sealed.push(sealed);
                }
            }
        }
    }

    /// Appends samples in `[mint, maxt]` to `out`, sorted by time, exact
    /// duplicates removed (out-of-order data may repeat a timestamp only with
    /// the same value, which `check` guarantees).
    pub fn read(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        for c in self.sealed.iter().chain(std::iter::once(&self.open)) {
            if !c.is_empty() && c.max_t() >= mint && c.min_t() <= maxt {
                c.read_range(mint, maxt, out);
            }
        }
        if self.ooo.is_empty() && self.ooo_chunks.is_empty() {
            return;
        }
        for c in &self.ooo_chunks {
            if c.max_t() >= mint && c.min_t() <= maxt {
                c.read_range(mint, maxt, out);
            }
        }
        out.extend(self.ooo.iter().filter(|s| s.t >= mint && s.t <= maxt));
        out[start..].sort_by_key(|s| s.t);
        dedup_sorted(out, start);
    }

    pub fn num_samples(&self) -> usize {
        self.sealed.iter().map(HeadChunk::len).sum::<usize>()
            + self.open.len()
            + self.ooo_chunks.iter().map(XorChunk::len).sum::<usize>()
            + self.ooo.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.sealed
            .iter()
            .map(HeadChunk::memory_bytes)
            .sum::<usize>()
            + self.open.memory_bytes()
            + self
                .ooo_chunks
                .iter()
                .map(XorChunk::memory_bytes)
                .sum::<usize>()
            + self.ooo.capacity() * std::mem::size_of::<Sample>()
            + self.sealed.capacity() * std::mem::size_of::<HeadChunk>()
    }

    /// (min, max) timestamps, if any samples.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let mut r: Option<(i64, i64)> = None;
        let mut add = |a: i64, b: i64| {
            r = Some(match r {
                None => (a, b),
                Some((x, y)) => (x.min(a), y.max(b)),
            })
        };
        for c in self.sealed.iter().chain(std::iter::once(&self.open)) {
            if !c.is_empty() {
                add(c.min_t(), c.max_t());
            }
        }
        for c in &self.ooo_chunks {
            if !c.is_empty() {
                add(c.min_t(), c.max_t());
            }
        }
        if let (Some(f), Some(l)) = (self.ooo.first(), self.ooo.last()) {
            add(f.t, l.t);
        }
        r
    }
}

/// Removes entries with a repeated timestamp from `out[start..]`, keeping the last.
pub fn dedup_sorted(out: &mut Vec<Sample>, start: usize) {
    if out.len() - start < 2 {
        return;
    }
    let mut w = start;
    for r in start..out.len() {
        if w > start && out[w - 1].t == out[r].t {
            out[w - 1] = out[r];
        } else {
            out[w] = out[r];
            w += 1;
        }
    }
    out.truncate(w);
}

/// Mutable state of a series.
#[derive(Default)]
pub struct SeriesData {
    pub live: Chunks,
    /// Data of the generation being written to a block.
    pub frozen: Option<Chunks>,
    /// WAL epoch in which this series' labels were last logged.
    pub wal_epoch: u32,
}

/// A series in the head.
pub struct MemSeries {
    pub id: u32,
    hash: u128,
    /// Interned (name, value) ids, sorted by name.
    labels: Box<[(u32, u32)]>,
    pub data: Mutex<SeriesData>,
}

impl MemSeries {
    pub fn lock(&self) -> MutexGuard<'_, SeriesData> {
        self.data.lock()
    }
}

/// The head.
pub struct Head {
    symbols: Symbols,
    shards: Box<[RwLock<HashMap<u128, u32, BuildHashedKey>>]>,
    series: RwLock<Vec<Option<Arc<MemSeries>>>>,
    postings: RwLock<MemPostings>,
    num_series: AtomicU32,
    /// Current WAL epoch (bumped at every cut).
    pub wal_epoch: AtomicU32,
    live_min_t: AtomicI64,
    live_max_t: AtomicI64,
}

impl Default for Head {
    fn default() -> Self {
        Head::new()
    }
}

impl Head {
    pub fn new() -> Head {
        Head {
            symbols: Symbols::new(),
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            series: RwLock::new(Vec::new()),
            postings: RwLock::new(MemPostings::new()),
            num_series: AtomicU32::new(0),
            wal_epoch: AtomicU32::new(1),
            live_min_t: AtomicI64::new(i64::MAX),
            live_max_t: AtomicI64::new(i64::MIN),
        }
    }

    pub fn num_series(&self) -> u32 {
        self.num_series.load(Ordering::Relaxed)
    }

    /// (min, max) time of live (not yet cut) samples.
    pub fn live_range(&self) -> Option<(i64, i64)> {
        let (a, b) = (
            self.live_min_t.load(Ordering::Relaxed),
            self.live_max_t.load(Ordering::Relaxed),
        );
        (a <= b).then_some((a, b))
    }

    pub fn note_live(&self, t: i64) {
        self.live_min_t.fetch_min(t, Ordering::Relaxed);
        self.live_max_t.fetch_max(t, Ordering::Relaxed);
    }

    fn shard(&self, hash: u128) -> &RwLock<HashMap<u128, u32, BuildHashedKey>> {
        &self.shards[(hash as usize) % SHARDS]
    }

    /// The series with these labels, if present.
    pub fn get(&self, labels: &Labels) -> Option<Arc<MemSeries>> {
        self.get_by_hash(labels.identity_hash())
    }

    fn get_by_hash(&self, hash: u128) -> Option<Arc<MemSeries>> {
        let id = *self.shard(hash).read().get(&hash)?;
        self.by_id(id)
    }

    /// The series with these labels, created (with a fresh id) if absent.
    /// Returns whether it was created.
    pub fn get_or_create(&self, labels: &Labels) -> (Arc<MemSeries>, bool) {
        let hash = labels.identity_hash();
        if let Some(s) = self.get_by_hash(hash) {
            return (s, false);
        }
        let mut shard = self.shard(hash).write();
        if let Some(&id) = shard.get(&hash)
            && let Some(s) = self.by_id(id)
        {
            return (s, false);
        }
        let s = self.insert_locked(&mut shard, None, hash, labels);
        (s, true)
    }

    /// Creates a series with a given id (WAL replay). If a series with these
    /// labels exists already, returns it instead.
    pub fn create_with_id(&self, id: u32, labels: &Labels) -> Arc<MemSeries> {
        let hash = labels.identity_hash();
        if let Some(s) = self.get_by_hash(hash) {
            return s;
        }
        let mut shard = self.shard(hash).write();
        self.insert_locked(&mut shard, Some(id), hash, labels)
    }

    /// Inserts a new series; `id` is given on replay, else the next free one
    /// is taken (under the series-list lock, so concurrent creators in other
    /// shards never share an id).
    fn insert_locked(
        &self,
        shard: &mut HashMap<u128, u32, BuildHashedKey>,
        id: Option<u32>,
        hash: u128,
        labels: &Labels,
    ) -> Arc<MemSeries> {
        let interned: Box<[(u32, u32)]> = labels
            .iter()
            .map(|l| (self.symbols.intern(&l.name), self.symbols.intern(&l.value)))
            .collect();
        let s = {
            let mut series = self.series.write();
            let id = id.unwrap_or(series.len() as u32);
            let s = Arc::new(MemSeries {
                id,
                hash,
                labels: interned,
                data: Mutex::new(SeriesData::default()),
            });
            if series.len() <= id as usize {
                series.resize(id as usize + 1, None);
            }
            series[id as usize] = Some(s.clone());
            s
        };
        let id = s.id;
        shard.insert(hash, id);
        self.postings.write().add(
            id,
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
        self.num_series.fetch_add(1, Ordering::Relaxed);
        s
    }

    pub fn by_id(&self, id: u32) -> Option<Arc<MemSeries>> {
        self.series.read().get(id as usize).and_then(Option::clone)
    }

    /// The labels of a series.
    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        self.symbols.resolve_with(|r| {
            Labels::from_sorted(
                s.labels
                    .iter()
                    .map(|&(n, v)| Label::new(r(n), r(v)))
                    .collect(),
            )
        })
    }

    /// Ids of series matching every matcher.
    pub fn select(&self, matchers: &[Matcher]) -> roaring::RoaringBitmap {
        self.postings.read().select(matchers)
    }

    /// Calls `f` with the head's index under its read lock.
    pub fn with_postings<R>(&self, f: impl FnOnce(&MemPostings) -> R) -> R {
        f(&self.postings.read())
    }

    /// Every series (a snapshot of the list).
    pub fn all_series(&self) -> Vec<Arc<MemSeries>> {
        self.series.read().iter().flatten().cloned().collect()
    }

    /// Moves every series' live data to its frozen slot. Caller holds the
    /// write barrier and guarantees no frozen generation is pending.
    /// Returns the (min, max) time of what was frozen.
    pub fn freeze(&self) -> Option<(i64, i64)> {
        for s in self.all_series() {
            let mut d = s.lock();
            debug_assert!(d.frozen.is_none());
            if !d.live.is_empty() {
                d.frozen = Some(std::mem::take(&mut d.live));
            }
        }
        let range = self.live_range();
        self.live_min_t.store(i64::MAX, Ordering::Relaxed);
        self.live_max_t.store(i64::MIN, Ordering::Relaxed);
        self.wal_epoch.fetch_add(1, Ordering::Relaxed);
        range
    }

    /// Series with frozen data, sorted by labels.
    pub fn frozen_series(&self) -> Vec<(Labels, Arc<MemSeries>)> {
        let mut out: Vec<(Labels, Arc<MemSeries>)> = self
            .all_series()
            .into_iter()
            .filter(|s| s.lock().frozen.is_some())
            .map(|s| (self.labels_of(&s), s))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Drops all frozen data and removes series idle since the previous cut.
    /// Caller holds the write barrier. Returns the number of series removed.
    pub fn drop_frozen_and_gc(&self) -> usize {
        let mut removed = 0;
        for s in self.all_series() {
            // A series that had data in the generation just written is
            // kept even if nothing arrived since the freeze: it is most
            // likely active (dropping it would re-create it, with a new id
            // and a new WAL series record, at its next sample). Series idle
            // for a whole generation go.
            let empty = {
                let mut d = s.lock();
                let had_data = d.frozen.take().is_some_and(|f| !f.is_empty());
                d.live.is_empty() && !had_data
            };
            if empty {
                self.remove(&s);
                removed += 1;
            }
        }
        removed
    }

    fn remove(&self, s: &MemSeries) {
        let labels = self.labels_of(s);
        {
            let mut shard = self.shard(s.hash).write();
            if shard.get(&s.hash) == Some(&s.id) {
                shard.remove(&s.hash);
            }
        }
        self.series.write()[s.id as usize] = None;
        self.postings.write().remove(
            s.id,
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
        self.num_series.fetch_sub(1, Ordering::Relaxed);
    }

    /// Next id to hand out (one past the largest ever used).
    pub fn next_id(&self) -> u32 {
        self.series.read().len() as u32
    }

    /// Approximate memory used by series data, labels and index.
    pub fn memory_bytes(&self) -> usize {
        let series = self.all_series();
        let data: usize = series
            .iter()
            .map(|s| {
                let d = s.lock();
                d.live.memory_bytes()
                    + d.frozen.as_ref().map_or(0, Chunks::memory_bytes)
                    + s.labels.len() * 8
                    + 96
            })
            .sum();
        data + self.symbols.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_ooo_and_duplicates() {
        let mut c = Chunks::default();
        for t in (0..300).map(|i| i * 10) {
            assert!(c.check(t, t as f64).unwrap());
            c.push(t, t as f64);
        }
        // exact duplicate: accepted, not new
        assert!(!c.check(100, 100.0).unwrap());
        // conflicting value
        assert!(c.check(100, 1.0).is_err());
        // out of order, new
        for t in (0..100).map(|i| i * 10 + 5) {
            assert!(c.check(t, -1.0).unwrap());
            c.push(t, -1.0);
        }
        assert!(c.check(55, 2.0).is_err());
        let mut out = Vec::new();
        c.read(0, 100, &mut out);
        let ts: Vec<i64> = out.iter().map(|s| s.t).collect();
        let want: Vec<i64> = (0..=20).map(|i| i * 5).collect();
        assert_eq!(ts, want);
        assert_eq!(c.num_samples(), 400);
        assert_eq!(c.time_range(), Some((0, 2990)));
    }

    #[test]
    fn series_lookup_create_and_gc() {
        let h = Head::new();
        let a = Labels::new(&[("__name__", "up"), ("job", "a")]);
        let b = Labels::new(&[("__name__", "up"), ("job", "b")]);
        let (sa, created) = h.get_or_create(&a);
        assert!(created);
        let (sa2, created) = h.get_or_create(&a);
        assert!(!created);
        assert_eq!(sa.id, sa2.id);
        let (sb, _) = h.get_or_create(&b);
        assert_ne!(sa.id, sb.id);
        assert_eq!(h.labels_of(&sb), b);
        sa.lock().live.push(1, 1.0);
        assert_eq!(h.select(&[Matcher::equal("__name__", "up")]).len(), 2);
        h.freeze();
        assert_eq!(h.frozen_series().len(), 1);
        // `b` never had data: removed. `a` had data in the frozen
        // generation: kept (still active, most likely), same id.
        assert_eq!(h.drop_frozen_and_gc(), 1);
        assert_eq!(h.num_series(), 1);
        assert!(h.get(&b).is_none());
        assert_eq!(h.get(&a).map(|s| s.id), Some(sa.id));
        // Idle for a whole generation: removed at the next cut.
        h.freeze();
        assert_eq!(h.drop_frozen_and_gc(), 1);
        assert_eq!(h.num_series(), 0);
        assert!(h.get(&a).is_none());
        assert_eq!(h.select(&[Matcher::equal("__name__", "up")]).len(), 0);
    }
}
