//! The in-memory head: every series written since the last cut, its samples
//! in compressed chunks, and an inverted index over its labels.
//!
//! Each series keeps its in-order samples in Gorilla-compressed chunks of up
//! to [`CHUNK_SAMPLES`] samples, and samples that arrive older than its newest
//! one (backfill, out-of-order senders) in separate out-of-order chunks that
//! reads merge in. Series are found by a hash of their labels; labels are
//! interned ([`Symbols`]): a series takes 112 bytes (128 with its `Arc`, one
//! allocator size class; a unit test keeps it there), a few bytes of label
//! ids, its postings, and its data.
//!
//! **Invariant (cut):** a cut moves each series' `live` data to `frozen` while
//! writers are held out ([`crate::Db`] owns that barrier), so every sample is
//! either in the frozen generation (and in WAL segments before the cut) or in
//! the live one (and in WAL segments from the cut on).

use std::cell::UnsafeCell;
use std::cmp::Ordering as CmpOrdering;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use hashbrown::HashTable;
use parking_lot::lock_api::RawMutex as _;
use parking_lot::{Mutex, RawMutex, RwLock};

use crate::block::cache::{BlockCache, DecodedPage, new_block_key};
use crate::chunk::XorChunk;
use crate::head_chunk::HeadChunk;
use crate::index::MemPostings;
use crate::labels::{Label, Labels, Matcher, identity_hash};
use crate::sample::{Sample, first_at_or_after};
use crate::select_memo::{self, SelectMemo};
use crate::starts::StartLog;
use crate::symbols::Symbols;
use crate::time_column::Columns;
use crate::varint::put_uvarint;
use crate::wal::Cursor;

/// In-order chunks are sealed at this many samples (an hour at 15 s). Each
/// chunk costs about 80 bytes besides its samples (its header, append state
/// and buffer rounding), so Prometheus's 120 cost 0.3 bytes more per sample; a read
/// decodes at most one partial chunk more at either end.
pub const CHUNK_SAMPLES: usize = 240;
/// Chunks a shared timestamp column needs to pay for itself (it takes
/// about a kilobyte; a chunk coding jittered timestamps itself, about 160
/// bytes).
const SHARE_MIN: usize = 8;
/// In-order chunks with fewer samples are decoded for every read, not
/// cached ([`Chunks::read_cached`]): an entry would cost more than it saves.
pub const CACHE_MIN_SAMPLES: usize = 16;
/// Out-of-order samples are buffered uncompressed up to this many, then compressed.
const OOO_BUFFER: usize = 32;
/// Shards of the series map, picked by the low bits of a series' identity
/// hash.
const SHARDS: usize = 64;

/// Default budget of [`Head::labels_of`]'s label-set cache: 256 MiB.
pub const DEFAULT_LABEL_CACHE_BYTES: usize = 256 << 20;

/// Budget of [`Head::select_sorted`]'s remembered selections: 8 MiB, two
/// million series ids (four bytes each).
pub const SELECT_MEMO_BYTES: usize = 8 << 20;

/// Samples of one series in one generation.
#[derive(Default)]
pub struct Chunks {
    /// Boxed rather than a `Vec`: grown one chunk at a time anyway, and 8
    /// bytes less in every series.
    sealed: Box<[HeadChunk]>,
    open: HeadChunk,
    /// Out-of-order data and start timestamps, allocated for the few
    /// series that get any.
    extra: Option<Box<Extra>>,
}

/// What few series have: out-of-order samples and start timestamps.
#[derive(Default)]
struct Extra {
    /// Compressed out-of-order runs; may overlap each other and the
    /// in-order data.
    chunks: Vec<XorChunk>,
    /// Recent out-of-order samples, sorted by time.
    buf: Vec<Sample>,
    /// The start timestamps of the samples that have one.
    starts: StartLog,
}

/// A conflicting sample already stored.
#[derive(Debug, Clone, Copy)]
pub struct Conflict {
    pub t: i64,
    pub stored: f64,
}

impl Chunks {
    /// The chunks as they are: sealed in-order chunks, the open one, the
    /// compressed out-of-order runs and the out-of-order buffer.
    pub fn parts(&self) -> (&[HeadChunk], &HeadChunk, &[XorChunk], &[Sample]) {
        (&self.sealed, &self.open, self.ooo_chunks(), self.ooo_buf())
    }

    fn ooo_chunks(&self) -> &[XorChunk] {
        self.extra.as_ref().map_or(&[], |o| &o.chunks)
    }

    fn ooo_buf(&self) -> &[Sample] {
        self.extra.as_ref().map_or(&[], |o| &o.buf)
    }

    /// Chunks from [`Chunks::parts`] (a head checkpoint); `None` if they
    /// break the invariants reads and appends rely on: in-order chunks
    /// non-empty (but the open one), ascending and disjoint in time, the
    /// out-of-order buffer sorted, shorter than its limit and older than
    /// the newest in-order sample.
    pub fn from_parts(
        sealed: Vec<HeadChunk>,
        open: HeadChunk,
        ooo_chunks: Vec<XorChunk>,
        ooo: Vec<Sample>,
    ) -> Option<Chunks> {
        let mut prev: Option<i64> = None;
        for c in sealed.iter().chain((!open.is_empty()).then_some(&open)) {
            if c.is_empty() || c.min_t() > c.max_t() || prev.is_some_and(|p| p >= c.min_t()) {
                return None;
            }
            prev = Some(c.max_t());
        }
        let sorted = ooo.windows(2).all(|w| w[0].t < w[1].t);
        let older = ooo.last().is_none_or(|s| prev.is_some_and(|p| s.t <= p));
        if !sorted || !older || ooo.len() >= OOO_BUFFER || ooo_chunks.iter().any(XorChunk::is_empty)
        {
            return None;
        }
        let extra = (!ooo.is_empty() || !ooo_chunks.is_empty()).then(|| {
            Box::new(Extra {
                chunks: ooo_chunks,
                buf: ooo,
                starts: StartLog::default(),
            })
        });
        Some(Chunks {
            sealed: sealed.into_boxed_slice(),
            open,
            extra,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
            && self.sealed.is_empty()
            && self.ooo_buf().is_empty()
            && self.ooo_chunks().is_empty()
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
        let buf = self.ooo_buf();
        if let Ok(i) = buf.binary_search_by_key(&t, |s| s.t) {
            return Some(buf[i].v);
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
        for c in self.ooo_chunks() {
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

    /// Appends a sample already checked with [`Chunks::check`] to be new;
    /// in-order samples share their timestamps through `cols` when they
    /// can (`crate::time_column`).
    pub fn push(&mut self, t: i64, v: f64, cols: &Columns) {
        match self.in_order_max() {
            Some(max) if t <= max => {
                let ooo = self.extra.get_or_insert_with(Box::default);
                let i = ooo.buf.partition_point(|s| s.t < t);
                ooo.buf.insert(i, Sample::new(t, v));
                if ooo.buf.len() >= OOO_BUFFER {
                    let mut c = XorChunk::new();
                    for s in ooo.buf.drain(..) {
                        c.append(s.t, s.v);
                    }
                    c.shrink_to_fit();
                    ooo.chunks.reserve_exact(1);
                    ooo.chunks.push(c);
                }
            }
            _ => {
                self.open.append_in(t, v, Some(cols));
                if self.open.len() >= CHUNK_SAMPLES || self.open.column_full() {
                    let mut sealed = std::mem::take(&mut self.open);
                    // A column costs about a kilobyte: with few chunks on
                    // it, each codes its own timestamps for less. Such a
                    // series stays solo: it joins a column only where
                    // another series has started one.
                    // (Until the next cut, which starts every series anew.)
                    let holders = sealed.column_holders();
                    if holders != 0 && holders < SHARE_MIN {
                        sealed = sealed.with_own_times(true);
                        self.open = HeadChunk::solo();
                    } else if sealed.is_solo() {
                        self.open = HeadChunk::solo();
                    }
                    sealed.shrink_to_fit();
                    // One slot at a time: a head holds a few chunks per
                    // series, and the doubling growth's spare slots (64
                    // bytes each) cost more than the reallocation every
                    // CHUNK_SAMPLES samples.
                    let mut all = std::mem::take(&mut self.sealed).into_vec();
                    all.reserve_exact(1);
                    all.push(sealed);
                    self.sealed = all.into_boxed_slice();
                }
            }
        }
    }

    /// Records the start timestamp `st` (not 0) of the sample at `t`,
    /// stored with [`Chunks::push`] (a WAL replay may record it first).
    pub fn set_start(&mut self, t: i64, st: i64) {
        self.extra
            .get_or_insert_with(Box::default)
            .starts
            .set(t, st);
    }

    /// Whether some sample has a start timestamp.
    pub fn has_starts(&self) -> bool {
        self.extra.as_ref().is_some_and(|o| !o.starts.is_empty())
    }

    /// The start timestamp of the sample at `t`, if it has one.
    pub fn start_at(&self, t: i64) -> Option<i64> {
        self.extra.as_ref()?.starts.get(t)
    }

    /// Appends the (sample time, start timestamp) pairs of the samples in
    /// `[mint, maxt]` that have one to `out`, sorted by time.
    pub fn read_starts(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, i64)>) {
        if let Some(o) = &self.extra {
            o.starts.read(mint, maxt, out);
        }
    }

    /// Appends samples in `[mint, maxt]` to `out`, sorted by time, exact
    /// duplicates removed (out-of-order data may repeat a timestamp only with
    /// the same value, which `check` guarantees).
    pub fn read(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        for (_, c) in self.in_order(mint, maxt) {
            c.read_range(mint, maxt, out);
        }
        self.read_out_of_order(mint, maxt, out, start);
    }

    /// [`Chunks::read`] with the in-order chunks of at least
    /// [`CACHE_MIN_SAMPLES`] decoded through `cache`, under `key` (this
    /// generation's, see [`Head::chunk_keys`]) and the series id `series`:
    /// a chunk is decoded once for every query that reads it, an open one
    /// again only from where its last decoding stopped.
    pub(crate) fn read_cached(
        &self,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        cache: &BlockCache,
        (key, series): (u64, u32),
    ) {
        let start = out.len();
        let sealed = self.sealed.len();
        for (i, c) in self.in_order(mint, maxt) {
            if c.len() < CACHE_MIN_SAMPLES {
                c.read_range(mint, maxt, out);
                continue;
            }
            // The open chunk is the next sealed one: its index stays.
            let page = u64::from(series) << 32 | i as u64;
            let decoded = match cache.get(key, page) {
                Some(p) if p.samples.len() == c.len() => p,
                got => {
                    // Decoded in part, when it had fewer samples (a
                    // longer entry cannot be this chunk's: decode anew).
                    let (done, resume) = got
                        .as_ref()
                        .filter(|p| p.samples.len() < c.len())
                        .map_or((&[][..], None), |p| (&p.samples[..], p.resume));
                    let mut v = Vec::with_capacity(c.len());
                    v.extend_from_slice(done);
                    let resume = c.decode_rest(done.len(), resume.as_ref(), &mut v);
                    let resume = resume.filter(|_| i == sealed);
                    let p = Arc::new(DecodedPage::head_chunk(v.into_boxed_slice(), resume));
                    cache.insert(key, page, Arc::clone(&p));
                    p
                }
            };
            let s = &decoded.samples;
            let lo = first_at_or_after(s, mint);
            let hi = maxt
                .checked_add(1)
                .map_or(s.len(), |t| first_at_or_after(s, t));
            out.extend_from_slice(&s[lo..hi.max(lo)]);
        }
        self.read_out_of_order(mint, maxt, out, start);
    }

    /// The in-order chunks (sealed, then the open one) holding samples in
    /// `[mint, maxt]`, with their indexes.
    fn in_order(&self, mint: i64, maxt: i64) -> impl Iterator<Item = (usize, &HeadChunk)> {
        self.sealed
            .iter()
            .chain(std::iter::once(&self.open))
            .enumerate()
            .filter(move |(_, c)| !c.is_empty() && c.max_t() >= mint && c.min_t() <= maxt)
    }

    /// Merges the out-of-order samples in `[mint, maxt]` into `out[start..]`
    /// (the in-order ones, sorted).
    fn read_out_of_order(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>, start: usize) {
        let Some(ooo) = self
            .extra
            .as_ref()
            .filter(|o| !o.chunks.is_empty() || !o.buf.is_empty())
        else {
            return;
        };
        for c in &ooo.chunks {
            if c.max_t() >= mint && c.min_t() <= maxt {
                c.read_range(mint, maxt, out);
            }
        }
        out.extend(ooo.buf.iter().filter(|s| s.t >= mint && s.t <= maxt));
        out[start..].sort_by_key(|s| s.t);
        dedup_sorted(out, start);
    }

    pub fn num_samples(&self) -> usize {
        self.sealed.iter().map(HeadChunk::len).sum::<usize>()
            + self.open.len()
            + self.ooo_chunks().iter().map(XorChunk::len).sum::<usize>()
            + self.ooo_buf().len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.sealed
            .iter()
            .map(HeadChunk::memory_bytes)
            .sum::<usize>()
            + self.open.memory_bytes()
            + self.extra.as_ref().map_or(0, |o| {
                std::mem::size_of::<Extra>()
                    // `XorChunk::memory_bytes` counts the struct, which the
                    // vector's slots hold here.
                    + o.chunks
                        .iter()
                        .map(|c| c.memory_bytes() - std::mem::size_of::<XorChunk>())
                        .sum::<usize>()
                    + o.chunks.capacity() * std::mem::size_of::<XorChunk>()
                    + o.buf.capacity() * std::mem::size_of::<Sample>()
                    + o.starts.memory_bytes()
            })
            + self.sealed.len() * std::mem::size_of::<HeadChunk>()
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
        for c in self.ooo_chunks() {
            if !c.is_empty() {
                add(c.min_t(), c.max_t());
            }
        }
        if let (Some(f), Some(l)) = (self.ooo_buf().first(), self.ooo_buf().last()) {
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
    pub frozen: Option<Box<Chunks>>,
    /// LSN (of this process's WAL) after the last append applied to this
    /// series; head checkpoints record it (see `crate::checkpoint`).
    pub wal_lsn: u64,
}

/// [`MemSeries::wal_epoch`] of a series restored at open (from the WAL or
/// a checkpoint): its labels are in the segments replayed, not in the
/// current epoch's.
pub const REPLAYED_EPOCH: u16 = u16::MAX;

/// The head's WAL epoch from open until the first cut.
pub const FIRST_EPOCH: u32 = 1;

/// A head WAL epoch as a series records it ([`MemSeries::wal_epoch`]):
/// 1 + its remainder modulo 2^16 − 2, so never 0 (the tag of a series not
/// logged yet) nor [`REPLAYED_EPOCH`]. Tags repeat only every 65,534 cuts,
/// and a series' tag is never more than two behind: every append logs the
/// labels of a series not logged in the current epoch, and a series idle
/// through a whole generation leaves the head
/// ([`Head::drop_frozen_and_gc`]).
pub fn epoch_tag(epoch: u32) -> u16 {
    (epoch % (u32::from(u16::MAX) - 1)) as u16 + 1
}

/// A series in the head: 112 bytes, 128 with its `Arc` (an allocator size
/// class; the next is 160). Its lock is a raw one beside the id so that it
/// fills padding: a `Mutex` around the data took 8 bytes.
pub struct MemSeries {
    pub id: u32,
    /// [`epoch_tag`] of the WAL epoch in which this series' labels were
    /// last logged ([`REPLAYED_EPOCH`]: restored at open and not logged
    /// since). Read and written with the series locked, as part of its
    /// data.
    pub wal_epoch: AtomicU16,
    lock: RawMutex,
    /// Interned (name, value) ids, sorted by name.
    labels: IdPairs,
    data: UnsafeCell<SeriesData>,
}

// SAFETY: `data` is only reached through a `SeriesGuard`, which holds
// `lock`.
unsafe impl Sync for MemSeries {}

impl MemSeries {
    fn new(id: u32, labels: IdPairs) -> MemSeries {
        MemSeries {
            id,
            wal_epoch: AtomicU16::new(0),
            lock: RawMutex::INIT,
            labels,
            data: UnsafeCell::new(SeriesData::default()),
        }
    }

    pub fn lock(&self) -> SeriesGuard<'_> {
        self.lock.lock();
        SeriesGuard {
            s: self,
            _not_send: PhantomData,
        }
    }
}

/// A locked series' data (see [`MemSeries::lock`]).
pub struct SeriesGuard<'a> {
    s: &'a MemSeries,
    /// Unlocked on the thread that locked, as a `MutexGuard` is.
    _not_send: PhantomData<*const ()>,
}

impl Deref for SeriesGuard<'_> {
    type Target = SeriesData;
    fn deref(&self) -> &SeriesData {
        // SAFETY: the guard holds the series' lock.
        unsafe { &*self.s.data.get() }
    }
}

impl DerefMut for SeriesGuard<'_> {
    fn deref_mut(&mut self) -> &mut SeriesData {
        // SAFETY: the guard holds the series' lock, and `&mut self` is the
        // only reference through it.
        unsafe { &mut *self.s.data.get() }
    }
}

impl Drop for SeriesGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard locked it, and unlocks it once.
        unsafe { self.s.lock.unlock() }
    }
}

/// A series' interned label pairs: (name id, value id) as LEB128 varints,
/// back to back. Most ids are small (names, and values shared by many
/// series, are interned first), so a pair takes 2–4 bytes rather than 8:
/// at a million series that is about 40 MB less.
///
/// A thin pointer: the allocation starts with the pairs' byte length (a
/// varint), so a series holds 8 bytes for them where a boxed slice takes
/// 16.
struct IdPairs(NonNull<u8>);

// SAFETY: an `IdPairs` owns its allocation and never changes it after
// `new`; shared references only read it.
unsafe impl Send for IdPairs {}
unsafe impl Sync for IdPairs {}

impl IdPairs {
    fn new(pairs: impl Iterator<Item = (u32, u32)>) -> IdPairs {
        let mut body = Vec::new();
        for (n, v) in pairs {
            put_uvarint(&mut body, u64::from(n));
            put_uvarint(&mut body, u64::from(v));
        }
        let prefix = (usize::BITS - (body.len() | 1).leading_zeros()).div_ceil(7) as usize;
        let mut b = Vec::with_capacity(prefix + body.len());
        put_uvarint(&mut b, body.len() as u64);
        debug_assert_eq!(b.len(), prefix);
        b.extend_from_slice(&body);
        let whole = Box::into_raw(b.into_boxed_slice());
        IdPairs(NonNull::new(whole.cast::<u8>()).expect("a box is never null"))
    }

    /// The allocation as `new` made it, and where the pairs start in it
    /// (after the length prefix).
    fn whole(&self) -> (&[u8], usize) {
        let p = self.0.as_ptr();
        let (mut len, mut i) = (0usize, 0usize);
        loop {
            // SAFETY: `new` wrote a whole varint at the start of the
            // allocation, and this stops at its last byte.
            let b = unsafe { *p.add(i) };
            len |= usize::from(b & 0x7f) << (7 * i);
            i += 1;
            if b < 0x80 {
                break;
            }
        }
        // SAFETY: the allocation holds the prefix and `len` bytes after it,
        // initialised and never written again.
        (unsafe { std::slice::from_raw_parts(p, i + len) }, i)
    }

    fn iter(&self) -> impl Iterator<Item = (u32, u32)> + Clone + '_ {
        let (whole, start) = self.whole();
        let mut c = Cursor { b: &whole[start..] };
        // Written by `new`: every varint is a whole `u32`.
        std::iter::from_fn(move || Some((c.uvarint()? as u32, c.uvarint()? as u32)))
    }

    fn heap_bytes(&self) -> usize {
        self.whole().0.len()
    }
}

impl Drop for IdPairs {
    fn drop(&mut self) {
        let n = self.heap_bytes();
        let whole = std::ptr::slice_from_raw_parts_mut(self.0.as_ptr(), n);
        // SAFETY: this is the boxed slice `new` turned into a pointer, with
        // the same length; nothing else owns it.
        drop(unsafe { Box::from_raw(whole) });
    }
}

/// One shard of [`Head`]'s label-set cache: series id → label set.
type LabelCacheShard = Mutex<HashTable<(u32, Labels)>>;

/// The head.
pub struct Head {
    symbols: Symbols,
    /// Identity hash ([`Labels::identity_hash`]) → series id. Entries hold
    /// only the id: a lookup compares the labels of the series it finds
    /// (interned ids resolved, no copy), and growing a table hashes its
    /// series' labels again. The map costs under 10 bytes a series. Lock
    /// order: a shard, then `series`, then the symbol table.
    shards: Box<[RwLock<HashTable<u32>>]>,
    series: RwLock<Vec<Option<Arc<MemSeries>>>>,
    postings: RwLock<MemPostings>,
    num_series: AtomicU32,
    /// Current WAL epoch (bumped at every cut).
    pub wal_epoch: AtomicU32,
    live_min_t: AtomicI64,
    live_max_t: AtomicI64,
    /// Label sets built by queries, by series id (see [`Head::labels_of`]):
    /// kept beside the series rather than in them, as few series are
    /// queried and a slot in every series cost 24 bytes each.
    label_cache: Box<[LabelCacheShard]>,
    /// Heap bytes of the label sets cached, and the budget.
    label_cache_bytes: AtomicUsize,
    label_cache_budget: AtomicUsize,
    /// Sorted selections of recent queries ([`Head::select_sorted`]).
    selects: SelectMemo<Arc<[u32]>>,
    /// Timestamp columns that in-order chunks may still join.
    pub columns: Columns,
    /// Some series was given a start timestamp since the head was made
    /// ([`Head::note_starts`]): until then, no series has any to look up.
    starts_seen: AtomicBool,
    /// Keys of the decoded-chunk cache ([`Chunks::read_cached`]), a fresh
    /// one per generation (from the blocks' key space, so never one a
    /// block or another head had): the live chunks', the frozen ones', and
    /// the next live generation's, which runs ahead of the live key while
    /// a freeze moves the series.
    chunk_keys: [AtomicU64; 3],
}

const LIVE_KEY: usize = 0;
const FROZEN_KEY: usize = 1;
const NEXT_KEY: usize = 2;

impl Default for Head {
    fn default() -> Self {
        Head::new()
    }
}

impl Head {
    pub fn new() -> Head {
        Head {
            symbols: Symbols::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            series: RwLock::new(Vec::new()),
            postings: RwLock::new(MemPostings::new()),
            num_series: AtomicU32::new(0),
            wal_epoch: AtomicU32::new(FIRST_EPOCH),
            live_min_t: AtomicI64::new(i64::MAX),
            live_max_t: AtomicI64::new(i64::MIN),
            label_cache: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            label_cache_bytes: AtomicUsize::new(0),
            label_cache_budget: AtomicUsize::new(DEFAULT_LABEL_CACHE_BYTES),
            selects: SelectMemo::default(),
            columns: Columns::default(),
            starts_seen: AtomicBool::new(false),
            chunk_keys: {
                let key = new_block_key();
                [AtomicU64::new(key), AtomicU64::new(0), AtomicU64::new(key)]
            },
        }
    }

    /// The cache keys of a series' live and frozen chunks, for
    /// [`Chunks::read_cached`]; `None` while a freeze moves the series
    /// (whether this one has moved is not known then). Call with the
    /// series locked: a freeze cannot move it meanwhile, so a freeze that
    /// has not started by the last load has not moved it, and one that
    /// has finished by the first has.
    pub fn chunk_keys(&self) -> Option<(u64, u64)> {
        let live = self.chunk_keys[LIVE_KEY].load(Ordering::SeqCst);
        let frozen = self.chunk_keys[FROZEN_KEY].load(Ordering::SeqCst);
        let next = self.chunk_keys[NEXT_KEY].load(Ordering::SeqCst);
        (live == next).then_some((live, frozen))
    }

    /// The cache key of the frozen chunks: the cut drops their entries
    /// with them ([`BlockCache::remove_block`]).
    pub fn frozen_chunk_key(&self) -> u64 {
        self.chunk_keys[FROZEN_KEY].load(Ordering::SeqCst)
    }

    /// Sets the byte budget of the label-set cache (0 disables it). Sets
    /// already cached stay until the next cut.
    pub fn set_label_cache_budget(&self, bytes: usize) {
        self.label_cache_budget.store(bytes, Ordering::Relaxed);
    }

    /// Heap bytes of label sets cached now.
    pub fn label_cache_bytes(&self) -> usize {
        self.label_cache_bytes.load(Ordering::Relaxed)
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

    /// Records that a series of the head now holds start timestamps (call
    /// before the series' lock is released).
    pub fn note_starts(&self) {
        if !self.starts_seen.load(Ordering::Relaxed) {
            self.starts_seen.store(true, Ordering::Release);
        }
    }

    /// Whether any series may hold start timestamps.
    pub fn starts_seen(&self) -> bool {
        self.starts_seen.load(Ordering::Acquire)
    }

    pub fn note_live(&self, t: i64) {
        self.live_min_t.fetch_min(t, Ordering::Relaxed);
        self.live_max_t.fetch_max(t, Ordering::Relaxed);
    }

    /// The shard of an identity hash: bits 32–37, so that the bits a
    /// shard's table uses (the low ones for the bucket, the top seven for
    /// its tag) vary within the shard.
    fn shard(&self, hash: u64) -> &RwLock<HashTable<u32>> {
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    /// The series with these labels, if present.
    pub fn get(&self, labels: &Labels) -> Option<Arc<MemSeries>> {
        let hash = labels.identity_hash();
        let shard = self.shard(hash).read();
        self.find_in(&shard, hash, labels)
    }

    /// The series of `shard` (locked by the caller) with these labels
    /// (`hash` their identity hash).
    fn find_in(
        &self,
        shard: &HashTable<u32>,
        hash: u64,
        labels: &Labels,
    ) -> Option<Arc<MemSeries>> {
        let series = self.series.read();
        self.symbols.resolve_with(|r| {
            let id = *shard.find(hash, |&id| {
                series_at(&series, id).is_some_and(|s| {
                    let mut theirs = s.labels.iter();
                    labels.iter().all(|l| {
                        theirs
                            .next()
                            .is_some_and(|(n, v)| r(n) == l.name && r(v) == l.value)
                    }) && theirs.next().is_none()
                })
            })?;
            series_at(&series, id).cloned()
        })
    }

    /// The identity hash of a series' labels, from its interned ids.
    fn hash_of<'a>(s: &MemSeries, r: &dyn Fn(u32) -> &'a str) -> u64 {
        identity_hash(s.labels.iter().map(|(n, v)| (r(n), r(v))))
    }

    /// The series with these labels, created (with a fresh id) if absent.
    /// Returns whether it was created.
    pub fn get_or_create(&self, labels: &Labels) -> (Arc<MemSeries>, bool) {
        let hash = labels.identity_hash();
        if let Some(s) = self.find_in(&self.shard(hash).read(), hash, labels) {
            return (s, false);
        }
        let mut shard = self.shard(hash).write();
        if let Some(s) = self.find_in(&shard, hash, labels) {
            return (s, false);
        }
        let s = self.insert_locked(&mut shard, None, hash, labels);
        (s, true)
    }

    /// Creates a series with a given id (WAL replay, checkpoint load),
    /// marked [`REPLAYED_EPOCH`]. If a series with these labels exists
    /// already, returns it instead.
    pub fn create_with_id(&self, id: u32, labels: &Labels) -> Arc<MemSeries> {
        let hash = labels.identity_hash();
        if let Some(s) = self.find_in(&self.shard(hash).read(), hash, labels) {
            return s;
        }
        let mut shard = self.shard(hash).write();
        if let Some(s) = self.find_in(&shard, hash, labels) {
            return s;
        }
        let s = self.insert_locked(&mut shard, Some(id), hash, labels);
        {
            let _data = s.lock();
            s.wal_epoch.store(REPLAYED_EPOCH, Ordering::Relaxed);
        }
        s
    }

    /// Inserts a new series; `id` is given on replay, else the next free one
    /// is taken (under the series-list lock, so concurrent creators in other
    /// shards never share an id).
    fn insert_locked(
        &self,
        shard: &mut HashTable<u32>,
        id: Option<u32>,
        hash: u64,
        labels: &Labels,
    ) -> Arc<MemSeries> {
        let interned = IdPairs::new(
            labels
                .iter()
                .map(|l| (self.symbols.intern(&l.name), self.symbols.intern(&l.value))),
        );
        let s = {
            let mut series = self.series.write();
            let id = id.unwrap_or(series.len() as u32);
            let s = Arc::new(MemSeries::new(id, interned));
            if series.len() <= id as usize {
                series.resize(id as usize + 1, None);
            }
            series[id as usize] = Some(s.clone());
            s
        };
        let id = s.id;
        // Growing the shard hashes its entries' labels again, all present:
        // `remove` takes an entry out of its shard (locked here) before
        // its slot in `series`. Under the list's read lock: lookups in
        // other shards go on meanwhile (unless a creation waits for the
        // write lock: the lock is fair).
        let series = self.series.read();
        self.symbols.resolve_with(|r| {
            shard.insert_unique(hash, id, |&other| {
                series_at(&series, other).map_or(0, |o| Head::hash_of(o, r))
            })
        });
        drop(series);
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

    /// The labels of a series, for a query.
    ///
    /// Series keep their labels as interned ids, a few bytes per pair; the
    /// owned label set a query needs is built at the first query that
    /// selects the series and kept for later ones (a clone is a reference
    /// count), within a byte budget ([`DEFAULT_LABEL_CACHE_BYTES`]). The
    /// cache is emptied at every cut, so it holds the series queried since.
    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        if let Some(l) = self.cached_labels(s) {
            return l;
        }
        let l = self.build_labels(s);
        let bytes = l.heap_bytes();
        let budget = self.label_cache_budget.load(Ordering::Relaxed);
        if self.label_cache_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > budget {
            self.label_cache_bytes.fetch_sub(bytes, Ordering::Relaxed);
            return l;
        }
        let mut shard = self.label_cache_shard(s.id).lock();
        match shard.entry(id_hash(s.id), |e| e.0 == s.id, |e| id_hash(e.0)) {
            // Built meanwhile by another query: share that one.
            hashbrown::hash_table::Entry::Occupied(e) => {
                self.label_cache_bytes.fetch_sub(bytes, Ordering::Relaxed);
                e.get().1.clone()
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert((s.id, l.clone()));
                l
            }
        }
    }

    /// The labels of a series without adding them to the cache (cuts,
    /// snapshots and removal visit every series once).
    pub(crate) fn labels_uncached(&self, s: &MemSeries) -> Labels {
        self.cached_labels(s)
            .unwrap_or_else(|| self.build_labels(s))
    }

    fn label_cache_shard(&self, id: u32) -> &LabelCacheShard {
        &self.label_cache[id as usize % SHARDS]
    }

    fn cached_labels(&self, s: &MemSeries) -> Option<Labels> {
        let shard = self.label_cache_shard(s.id).lock();
        shard
            .find(id_hash(s.id), |e| e.0 == s.id)
            .map(|e| e.1.clone())
    }

    fn build_labels(&self, s: &MemSeries) -> Labels {
        self.symbols.resolve_with(|r| {
            Labels::from_sorted_counted(
                s.labels.iter().count(),
                s.labels.iter().map(|(n, v)| Label::new(r(n), r(v))),
            )
        })
    }

    /// Ids of series matching every matcher.
    pub fn select(&self, matchers: &[Matcher]) -> roaring::RoaringBitmap {
        self.postings.read().select(matchers)
    }

    /// Series matching every matcher for which `keep` holds, with their
    /// labels ([`Head::labels_of`]) and ids, sorted by labels
    /// ([`sort_by_labels`]).
    ///
    /// The sorted ids of all the matching series are kept for the next
    /// query with the same matchers, until a series is created or removed
    /// ([`crate::select_memo`]); `keep` is asked afresh each time.
    pub fn select_sorted(
        &self,
        matchers: &[Matcher],
        mut keep: impl FnMut(&MemSeries) -> bool,
    ) -> Vec<(Labels, u32)> {
        let (found, _) = self.sorted_matches(matchers);
        found
            .iter()
            .filter(|s| keep(s))
            .map(|s| (self.labels_of(s), s.id))
            .collect()
    }

    /// The series matching every matcher, sorted by labels, and whether
    /// their order was kept from an earlier query (at the index's
    /// generation) rather than found, sorted and kept now.
    fn sorted_matches(&self, matchers: &[Matcher]) -> (Vec<Arc<MemSeries>>, bool) {
        let postings = self.postings.read();
        let generation = postings.generation();
        if let Some(sorted) = self.selects.get(matchers, generation) {
            drop(postings);
            return (self.series_of(sorted.iter().copied()), true);
        }
        let ids = postings.select(matchers);
        drop(postings);
        // A series removed meanwhile is missing here, one created is not
        // in `ids`: either way the generation kept with the answer is
        // past, and no later query finds it.
        let mut found = self.series_of(ids);
        self.symbols.resolve_with(|r| sort_by_labels(&mut found, r));
        // Kept only if still the index's answer (under churn, a past one
        // would only push out others).
        if self.postings.read().generation() == generation {
            let sorted: Arc<[u32]> = found.iter().map(|s| s.id).collect();
            let bytes = std::mem::size_of_val(&*sorted) + select_memo::matchers_bytes(matchers);
            self.selects
                .put(matchers, generation, sorted, bytes, SELECT_MEMO_BYTES);
        }
        (found, false)
    }

    /// The series of these ids that are still in the head, in order.
    fn series_of(&self, ids: impl IntoIterator<Item = u32>) -> Vec<Arc<MemSeries>> {
        let series = self.series.read();
        ids.into_iter()
            .filter_map(|id| series_at(&series, id).cloned())
            .collect()
    }

    /// Calls `f` with the head's index under its read lock.
    pub fn with_postings<R>(&self, f: impl FnOnce(&MemPostings) -> R) -> R {
        f(&self.postings.read())
    }

    /// Every series (a snapshot of the list).
    pub fn all_series(&self) -> Vec<Arc<MemSeries>> {
        self.series.read().iter().flatten().cloned().collect()
    }

    /// Up to `max` series with ids from `start` on, by id: for visiting
    /// every series in batches without a list of them all.
    pub fn series_from(&self, start: u32, max: usize) -> Vec<Arc<MemSeries>> {
        let series = self.series.read();
        let rest = series.get(start as usize..).unwrap_or_default();
        rest.iter().flatten().take(max).cloned().collect()
    }

    /// Moves every series' live data to its frozen slot. Caller holds the
    /// write barrier and guarantees no frozen generation is pending.
    /// Returns the (min, max) time of what was frozen.
    pub fn freeze(&self) -> Option<(i64, i64)> {
        let next = new_block_key();
        self.chunk_keys[NEXT_KEY].store(next, Ordering::SeqCst);
        for s in self.all_series() {
            let mut d = s.lock();
            debug_assert!(d.frozen.is_none());
            if !d.live.is_empty() {
                let mut frozen = std::mem::take(&mut d.live);
                if let Some(x) = &mut frozen.extra {
                    x.starts.shrink_to_fit();
                }
                d.frozen = Some(Box::new(frozen));
            }
        }
        let live = self.chunk_keys[LIVE_KEY].load(Ordering::SeqCst);
        self.chunk_keys[FROZEN_KEY].store(live, Ordering::SeqCst);
        self.chunk_keys[LIVE_KEY].store(next, Ordering::SeqCst);
        let range = self.live_range();
        self.live_min_t.store(i64::MAX, Ordering::Relaxed);
        self.live_max_t.store(i64::MIN, Ordering::Relaxed);
        self.wal_epoch.fetch_add(1, Ordering::Relaxed);
        range
    }

    /// Series with frozen data, sorted by labels.
    ///
    /// The sort ([`sort_by_labels`]) builds no label set: the cut builds each one as it
    /// writes the series ([`Head::labels_uncached`]). Built all at once
    /// they took more memory than the rest of a 1 M-series head.
    pub fn frozen_series(&self) -> Vec<Arc<MemSeries>> {
        let mut out: Vec<Arc<MemSeries>> = self
            .all_series()
            .into_iter()
            .filter(|s| s.lock().frozen.is_some())
            .collect();
        // A snapshot of the strings rather than the table's lock: sorting
        // every series takes long enough to hold up new ones.
        let strings = self.symbols.snapshot();
        sort_by_labels(&mut out, &|id| &strings[id as usize]);
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
        self.clear_label_cache();
        removed
    }

    /// Empties the label-set cache (also of sets a query cached for a
    /// series removed meanwhile).
    fn clear_label_cache(&self) {
        for shard in self.label_cache.iter() {
            let mut shard = shard.lock();
            let bytes: usize = shard.iter().map(|e| e.1.heap_bytes()).sum();
            shard.clear();
            shard.shrink_to_fit(|e| id_hash(e.0));
            self.label_cache_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Takes a series out of the maps and the index. Its cached label set
    /// stays until the cache is emptied ([`Head::drop_frozen_and_gc`] does
    /// right after its removals); ids are never reused, so no other series
    /// can find it.
    fn remove(&self, s: &MemSeries) {
        let labels = self.labels_uncached(s);
        {
            let hash = labels.identity_hash();
            let mut shard = self.shard(hash).write();
            if let Ok(entry) = shard.find_entry(hash, |&id| id == s.id) {
                entry.remove();
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
                    + d.frozen
                        .as_ref()
                        .map_or(0, |f| f.memory_bytes() + std::mem::size_of::<Chunks>())
                    + s.labels.heap_bytes()
                    // The series with its `Arc`, its slot in the series
                    // list and about a shard entry.
                    + std::mem::size_of::<MemSeries>()
                    + 2 * std::mem::size_of::<usize>()
                    + 16
            })
            .sum();
        data + self.symbols.memory_bytes() + self.label_cache_bytes()
    }
}

/// Sorts head series by their labels, comparing interned ids and looking
/// at strings (`r`) only where two series differ, so the long common
/// prefixes (same metric name, same job) cost integer comparisons. The
/// pairs are copied side by side first, so the sort reads contiguous
/// memory rather than one allocation per series.
fn sort_by_labels<'a>(series: &mut Vec<Arc<MemSeries>>, r: &dyn Fn(u32) -> &'a str) {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut order: Vec<(u32, u32, u32)> = Vec::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        let start = pairs.len() as u32;
        pairs.extend(s.labels.iter());
        order.push((start, pairs.len() as u32 - start, i as u32));
    }
    let of = |&(start, len, _): &(u32, u32, u32)| &pairs[start as usize..(start + len) as usize];
    order.sort_unstable_by(|a, b| cmp_interned(of(a), of(b), r));
    let mut slots: Vec<Option<Arc<MemSeries>>> = series.drain(..).map(Some).collect();
    series.extend(
        order
            .iter()
            .filter_map(|&(_, _, i)| slots[i as usize].take()),
    );
}

/// A series id's place in its label-cache shard's table (the low bits
/// picked the shard; a multiplicative hash spreads the rest).
fn id_hash(id: u32) -> u64 {
    u64::from(id / SHARDS as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn series_at(series: &[Option<Arc<MemSeries>>], id: u32) -> Option<&Arc<MemSeries>> {
    series.get(id as usize).and_then(Option::as_ref)
}

/// Compares two interned label sets in [`Labels`]' order; `r` resolves ids.
fn cmp_interned<'a>(a: &[(u32, u32)], b: &[(u32, u32)], r: &dyn Fn(u32) -> &'a str) -> CmpOrdering {
    for (x, y) in a.iter().zip(b) {
        if x == y {
            continue;
        }
        let o = if x.0 == y.0 {
            CmpOrdering::Equal
        } else {
            r(x.0).cmp(r(y.0))
        };
        let o = o.then_with(|| r(x.1).cmp(r(y.1)));
        if o != CmpOrdering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series and its `Arc` counts fit the allocator's 128-byte class
    /// (the next is 160): at a million series, 32 MB less. The head chunk
    /// in it takes 56 bytes.
    #[test]
    fn series_fit_their_allocation_class() {
        let arc_counts = 2 * std::mem::size_of::<usize>();
        assert!(std::mem::size_of::<MemSeries>() + arc_counts <= 128);
        assert_eq!(std::mem::size_of::<HeadChunk>(), 56);
    }

    fn read_all(c: &Chunks) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        c.read(i64::MIN, i64::MAX, &mut out);
        out.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// Series of a target on one column read back exactly, seal together
    /// when it fills, and then share the next one.
    #[test]
    fn series_of_a_target_share_timestamps() {
        let cols = Columns::default();
        let mut series: Vec<Chunks> = (0..20).map(|_| Chunks::default()).collect();
        let mut want: Vec<Vec<(i64, u64)>> = vec![Vec::new(); series.len()];
        for k in 0..(CHUNK_SAMPLES as i64 + 30) {
            let t = 1_000 + k * 15_000 + (k * 7919) % 11 - 5;
            for (i, c) in series.iter_mut().enumerate() {
                let v = (k * (i as i64 + 1)) as f64 / 100.0;
                c.push(t, v, &cols);
                want[i].push((t, v.to_bits()));
            }
        }
        for (c, w) in series.iter().zip(&want) {
            assert_eq!(&read_all(c), w);
            assert_eq!(c.sealed.len(), 1);
        }
        // The first series at a timestamp codes its own; the second makes
        // the column the rest join.
        let (first, rest) = series.split_first().unwrap();
        assert!(!first.sealed[0].is_shared() && !first.open.is_shared());
        for c in rest {
            assert!(c.sealed[0].is_shared() && c.open.is_shared());
            assert_eq!(c.sealed[0].column_holders(), rest.len());
        }
        // The full column is out of the registry, the open one in it.
        assert_eq!(cols.len(), 1);
        // Values only: well under a byte a sample for these.
        let bytes: usize = rest.iter().map(|c| c.sealed[0].memory_bytes()).sum();
        assert!(bytes < rest.len() * CHUNK_SAMPLES, "{bytes}");
    }

    /// Requests that carry several samples of each series (a sender
    /// catching up) still share: a series is not left alone on a column
    /// before the rest of its target has joined.
    #[test]
    fn series_sent_a_few_samples_at_a_time_share_timestamps() {
        let cols = Columns::default();
        let mut series: Vec<Chunks> = (0..10).map(|_| Chunks::default()).collect();
        let mut want: Vec<Vec<(i64, u64)>> = vec![Vec::new(); series.len()];
        for batch in 0..(CHUNK_SAMPLES as i64 / 8) {
            for (i, c) in series.iter_mut().enumerate() {
                for k in 8 * batch..8 * batch + 8 {
                    let t = 5_000 + k * 15_000 + k % 3;
                    c.push(t, (k + i as i64) as f64, &cols);
                    want[i].push((t, ((k + i as i64) as f64).to_bits()));
                }
            }
        }
        for (c, w) in series.iter().zip(&want) {
            assert_eq!(&read_all(c), w);
        }
        let shared = series.iter().filter(|c| c.sealed[0].is_shared()).count();
        assert_eq!(shared, series.len() - 1);
    }

    /// Targets that collide on timestamps, series that arrive mid-column,
    /// values that leave the decimal coding, and out-of-order samples: all
    /// read back exactly.
    #[test]
    fn diverging_and_late_series_read_back_exactly() {
        let cols = Columns::default();
        let mut series: Vec<Chunks> = (0..12).map(|_| Chunks::default()).collect();
        let mut want: Vec<Vec<(i64, u64)>> = vec![Vec::new(); series.len()];
        for k in 0..(2 * CHUNK_SAMPLES as i64 + 17) {
            for (i, c) in series.iter_mut().enumerate() {
                // Targets 0 and 1 start on the same millisecond, then
                // differ by a millisecond now and then; series 8 and up
                // join late; series 5 goes NaN once and series 6 needs
                // more digits.
                let target = i % 3;
                let jitter = if target == 1 && k % 5 == 3 { 1 } else { 0 };
                let t = 1_000 + k * 15_000 + jitter + if target == 2 { 7 } else { 0 };
                if i >= 8 && k < 100 {
                    continue;
                }
                let v = match (i, k) {
                    (5, 50) => f64::NAN,
                    (6, k) if k > 120 => k as f64 + 0.125,
                    _ => (k + i as i64) as f64,
                };
                c.push(t, v, &cols);
                want[i].push((t, v.to_bits()));
                if i == 10 && k == 150 {
                    // Late in target 1, which kept the column the two
                    // targets shared until they parted at k = 3: on it
                    // from slot 100 on.
                    assert!(c.open.is_shared() && c.open.len() == 51);
                }
                if k % 40 == 39 && i % 2 == 0 {
                    // An older sample, into the out-of-order data.
                    let old = t - 7_500;
                    c.push(old, 1.5, &cols);
                    let at = want[i].partition_point(|s| s.0 < old);
                    want[i].insert(at, (old, 1.5f64.to_bits()));
                }
            }
        }
        for (i, (c, w)) in series.iter().zip(&want).enumerate() {
            assert_eq!(&read_all(c), w, "series {i}");
        }
    }

    /// Series with too few others on their column go back to their own
    /// timestamps at the seal, and stay there.
    #[test]
    fn solo_series_code_their_own_timestamps() {
        let cols = Columns::default();
        let mut series: Vec<Chunks> = (0..3).map(|_| Chunks::default()).collect();
        let mut want = Vec::new();
        for k in 0..(3 * CHUNK_SAMPLES as i64 - 10) {
            let t = k * 10_000 + k % 3;
            for c in &mut series {
                c.push(t, 2.0, &cols);
            }
            want.push((t, 2.0f64.to_bits()));
        }
        for (i, c) in series.iter().enumerate() {
            assert_eq!(read_all(c), want);
            assert_eq!(c.sealed.len(), 2);
            for h in c.sealed.iter().chain([&c.open]) {
                // The first series never had a column; the others had one
                // for their first chunk, with too few on it.
                assert!(!h.is_shared() && h.is_solo() == (i > 0), "{h:?}");
            }
        }
        assert!(cols.is_empty());
    }

    #[test]
    fn id_pairs_round_trip_in_few_bytes() {
        let pairs = [(0, 127), (128, 16_383), (16_384, u32::MAX), (5, 3)];
        let p = IdPairs::new(pairs.iter().copied());
        assert_eq!(p.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(p.heap_bytes(), 1 + 1 + 1 + 2 + 2 + 3 + 5 + 1 + 1);
        let empty = IdPairs::new(std::iter::empty());
        assert_eq!((empty.iter().count(), empty.heap_bytes()), (0, 1));
        // A length prefix of two bytes: 200 pairs of two one-byte ids.
        let long = IdPairs::new((0..200).map(|i| (i % 100, 7)));
        assert_eq!(long.heap_bytes(), 2 + 400);
        assert!(long.iter().eq((0..200).map(|i| (i % 100, 7))));
    }

    #[test]
    fn in_order_ooo_and_duplicates() {
        let (mut c, cols) = (Chunks::default(), Columns::default());
        for t in (0..300).map(|i| i * 10) {
            assert!(c.check(t, t as f64).unwrap());
            c.push(t, t as f64, &cols);
        }
        // exact duplicate: accepted, not new
        assert!(!c.check(100, 100.0).unwrap());
        // conflicting value
        assert!(c.check(100, 1.0).is_err());
        // out of order, new
        for t in (0..100).map(|i| i * 10 + 5) {
            assert!(c.check(t, -1.0).unwrap());
            c.push(t, -1.0, &cols);
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

    fn bits(v: &[Sample]) -> Vec<(i64, u64)> {
        v.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// Reads through the decoded-chunk cache give exactly what plain reads
    /// give while samples keep arriving: in order (growing the open chunk
    /// an entry was decoded from, re-coding it to a larger scale or to
    /// XOR, sealing it) and out of order.
    #[test]
    fn cached_reads_match_plain_reads_while_samples_arrive() {
        let cache = BlockCache::new(64 << 20);
        let cols = Columns::default();
        let mut series: Vec<Chunks> = (0..12).map(|_| Chunks::default()).collect();
        let read_both = |c: &Chunks, id: u32, mint: i64, maxt: i64| {
            let (mut plain, mut cached) = (vec![Sample::new(7, 7.0)], vec![Sample::new(7, 7.0)]);
            c.read(mint, maxt, &mut plain);
            c.read_cached(mint, maxt, &mut cached, &cache, (1, id));
            assert_eq!(bits(&cached), bits(&plain), "series {id}, [{mint}, {maxt}]");
            plain.len() - 1
        };
        let mut read = 0;
        for k in 0..(2 * CHUNK_SAMPLES as i64 + 50) {
            let t = 1_000 + k * 15_000 + (k * 7919) % 11 - 5;
            for (i, c) in series.iter_mut().enumerate() {
                let v = match i % 4 {
                    // More digits from sample 100 on: a rescale.
                    0 if k >= 100 => k as f64 / 1000.0,
                    // Not decimal from sample 150 on: XOR.
                    1 if k >= 150 => (k as f64).sqrt(),
                    _ => (k * (i as i64 + 1)) as f64 / 100.0,
                };
                c.push(t, v, &cols);
                if i % 3 == 2 && k % 37 == 5 && c.check(t - 7, -1.0).is_ok_and(|new| new) {
                    c.push(t - 7, -1.0, &cols);
                }
            }
            if k % 13 == 0 || k % 29 == 3 {
                for (i, c) in series.iter().enumerate() {
                    let id = i as u32;
                    read += read_both(c, id, i64::MIN, i64::MAX);
                    read += read_both(c, id, t - 300_000, t);
                    read += read_both(c, id, t - 3_600_000, t - 600_000);
                }
            }
        }
        let s = cache.stats();
        assert!(read > 0 && s.hits > 0 && s.misses > 0, "{read} {s:?}");
    }

    /// A freeze gives the live chunks a new cache key: a new generation's
    /// chunk never reads what an earlier one's entry holds, though its
    /// series id, index and length are the same.
    #[test]
    fn each_generation_reads_its_own_cache_entries() {
        let h = Head::new();
        let cache = BlockCache::new(64 << 20);
        let (s, _) = h.get_or_create(&Labels::new(&[("__name__", "up")]));
        let fill = |base: f64| {
            let mut d = s.lock();
            for k in 0..100 {
                d.live.push(k * 15_000, base + k as f64, &h.columns);
            }
        };
        let read = |frozen: bool| {
            let d = s.lock();
            let (live, fk) = h.chunk_keys().expect("no freeze running");
            let (c, key) = match (frozen, &d.frozen) {
                (true, Some(f)) => (&**f, fk),
                _ => (&d.live, live),
            };
            let (mut plain, mut cached) = (Vec::new(), Vec::new());
            c.read(i64::MIN, i64::MAX, &mut plain);
            c.read_cached(i64::MIN, i64::MAX, &mut cached, &cache, (key, s.id));
            assert_eq!(bits(&cached), bits(&plain));
            plain[0].v
        };
        fill(1.0);
        assert_eq!(read(false), 1.0);
        h.freeze();
        fill(500.0);
        assert_eq!(read(false), 500.0);
        assert_eq!(read(true), 1.0);
        assert_eq!(cache.stats().entries, 2);
        h.drop_frozen_and_gc();
        cache.remove_block(h.frozen_chunk_key());
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(read(false), 500.0);
    }

    #[test]
    fn labels_are_cached_within_budget_until_the_cut() {
        let h = Head::new();
        let a = Labels::new(&[("__name__", "up"), ("job", "a")]);
        let b = Labels::new(&[("__name__", "up"), ("job", "b")]);
        let (sa, _) = h.get_or_create(&a);
        let (sb, _) = h.get_or_create(&b);
        let first = h.labels_of(&sa);
        assert_eq!(first, a);
        // The second query gets the same shared set.
        assert!(std::ptr::eq(
            first.as_slice().as_ptr(),
            h.labels_of(&sa).as_slice().as_ptr()
        ));
        assert_eq!(h.label_cache_bytes(), a.heap_bytes());
        // Over budget: built, not kept.
        h.set_label_cache_budget(a.heap_bytes());
        assert_eq!(h.labels_of(&sb), b);
        assert_eq!(h.label_cache_bytes(), a.heap_bytes());
        assert!(h.cached_labels(&sb).is_none());
        // A cut empties the cache; a removed series gives its bytes back.
        sa.lock().live.push(1, 1.0, &h.columns);
        h.freeze();
        assert_eq!(h.labels_uncached(&h.frozen_series()[0]), a);
        h.drop_frozen_and_gc();
        assert_eq!(h.label_cache_bytes(), 0);
        assert!(h.cached_labels(&sa).is_none());
    }

    /// `up` series created out of label order, with names that sort
    /// differently from their interning order.
    fn up_series_out_of_order() -> Vec<Labels> {
        [("b", "2"), ("a", "10"), ("b", "1"), ("a", "9"), ("c", "")]
            .into_iter()
            .map(|(job, inst)| Labels::new(&[("__name__", "up"), ("job", job), ("instance", inst)]))
            .collect()
    }

    #[test]
    fn select_sorted_orders_by_labels() {
        let h = Head::new();
        let mut all = Vec::new();
        for l in up_series_out_of_order() {
            let (s, _) = h.get_or_create(&l);
            all.push((l, s.id));
        }
        h.get_or_create(&Labels::new(&[("__name__", "down"), ("job", "a")]));
        let got = h.select_sorted(&[Matcher::equal("__name__", "up")], |_| true);
        all.sort();
        assert_eq!(got, all);
        let odd = h.select_sorted(&[Matcher::equal("__name__", "up")], |s| s.id % 2 == 1);
        let want: Vec<_> = all.into_iter().filter(|(_, id)| id % 2 == 1).collect();
        assert_eq!(odd, want);
    }

    /// A selection kept from an earlier query is used only while no series
    /// was created or removed since.
    #[test]
    fn select_sorted_sees_series_created_and_removed_since() {
        let h = Head::new();
        let up = |job: &str| Labels::new(&[("__name__", "up"), ("job", job)]);
        let ms = [Matcher::equal("__name__", "up")];
        let ids = |got: Vec<(Labels, u32)>| got.into_iter().map(|(_, id)| id).collect::<Vec<_>>();
        let c = h.get_or_create(&up("c")).0.id;
        let a = h.get_or_create(&up("a")).0;
        a.lock().live.push(1, 1.0, &h.columns);
        let a = a.id;
        // Whether the order was kept from the previous call.
        let kept = || h.sorted_matches(&ms).1;
        assert_eq!(ids(h.select_sorted(&ms, |_| true)), [a, c]);
        assert!(kept());
        assert_eq!(ids(h.select_sorted(&ms, |s| s.id == c)), [c]);
        assert_eq!(h.selects.len(), 1);
        let b = h.get_or_create(&up("b")).0.id;
        h.get_or_create(&Labels::new(&[("__name__", "down")]));
        assert!(!kept());
        assert!(kept());
        assert_eq!(ids(h.select_sorted(&ms, |_| true)), [a, b, c]);
        // The idle series (b and c) go at the next cut.
        h.freeze();
        assert_eq!(h.drop_frozen_and_gc(), 3);
        assert_eq!(ids(h.select_sorted(&ms, |_| true)), [a]);
        assert!(kept());
        assert_eq!(h.selects.len(), 1);
    }

    #[test]
    fn frozen_series_come_in_label_order() {
        let h = Head::new();
        let mut want = up_series_out_of_order();
        for l in &want {
            h.get_or_create(l).0.lock().live.push(1, 1.0, &h.columns);
        }
        // A series without data is not part of the cut.
        h.get_or_create(&Labels::new(&[("__name__", "idle")]));
        h.freeze();
        let got: Vec<Labels> = h
            .frozen_series()
            .iter()
            .map(|s| h.labels_uncached(s))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn lookups_survive_growth_and_removal() {
        // Enough series to grow every shard's table several times, with
        // removals in between: each lookup finds its own series or none.
        let h = Head::new();
        let labels = |i: u32| Labels::new(&[("__name__", "m"), ("i", &i.to_string())]);
        let mut ids = Vec::new();
        for i in 0..5_000 {
            let (s, created) = h.get_or_create(&labels(i));
            assert!(created);
            ids.push(s.id);
            if i % 3 == 0 {
                h.remove(&s);
            }
        }
        for i in 0..5_000u32 {
            match h.get(&labels(i)) {
                Some(s) => {
                    assert!(i % 3 != 0, "series {i} was removed");
                    assert_eq!(s.id, ids[i as usize]);
                    assert_eq!(h.labels_uncached(&s), labels(i));
                }
                None => assert_eq!(i % 3, 0, "series {i} lost"),
            }
        }
        // A removed series comes back with a new id.
        let (again, created) = h.get_or_create(&labels(0));
        assert!(created && again.id >= 5_000);
        assert_eq!(h.num_series(), 5_000 - 1666);
    }

    /// Lookups compare labels (the head keeps no hash to compare): sets
    /// that extend one another, or differ in one value or in where a
    /// name ends, are different series.
    #[test]
    fn lookups_compare_whole_label_sets() {
        let h = Head::new();
        let sets = [
            Labels::new(&[("__name__", "up")]),
            Labels::new(&[("__name__", "up"), ("job", "a")]),
            Labels::new(&[("__name__", "up"), ("job", "a"), ("x", "1")]),
            Labels::new(&[("__name__", "up"), ("job", "b")]),
            Labels::new(&[("__name__", "up"), ("jo", "ba")]),
            Labels::new(&[("__name__", "upj"), ("ob", "a")]),
        ];
        let ids: Vec<u32> = sets.iter().map(|l| h.get_or_create(l).0.id).collect();
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), sets.len());
        for (l, id) in sets.iter().zip(&ids) {
            assert_eq!(h.get(l).map(|s| s.id), Some(*id));
        }
        assert!(h.get(&Labels::new(&[("__name__", "down")])).is_none());
    }

    /// A tag is never a new series' 0 (its labels would not be logged in
    /// that epoch) nor the replayed mark, and consecutive epochs differ.
    /// Two label sets under one hash (forced: XXH3 collisions cannot be
    /// found) stay two series, each found by its own labels.
    #[test]
    fn sets_sharing_a_hash_are_told_apart_by_their_labels() {
        let h = Head::new();
        let a = Labels::new(&[("__name__", "up"), ("job", "a")]);
        let b = Labels::new(&[("__name__", "up"), ("job", "b")]);
        let hash = 42;
        let mut shard = h.shard(hash).write();
        let sa = h.insert_locked(&mut shard, None, hash, &a);
        assert!(h.find_in(&shard, hash, &b).is_none());
        let sb = h.insert_locked(&mut shard, None, hash, &b);
        assert_ne!(sa.id, sb.id);
        assert_eq!(h.find_in(&shard, hash, &a).map(|s| s.id), Some(sa.id));
        assert_eq!(h.find_in(&shard, hash, &b).map(|s| s.id), Some(sb.id));
    }

    #[test]
    fn epoch_tags_skip_the_unlogged_and_replayed_marks() {
        let fresh = MemSeries::new(0, IdPairs::new(std::iter::empty()));
        assert_eq!(fresh.wal_epoch.load(Ordering::Relaxed), 0);
        for e in (0..=u32::from(u16::MAX) * 3).chain(u32::MAX - 70_000..=u32::MAX) {
            let t = epoch_tag(e);
            assert!(t != 0 && t != REPLAYED_EPOCH, "epoch {e}: tag {t}");
            assert_ne!(t, epoch_tag(e.wrapping_add(1)), "epoch {e}");
        }
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
        sa.lock().live.push(1, 1.0, &h.columns);
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
