//! The decoded-page cache: data pages of open blocks, and the head's
//! chunks (see [`crate::head::Chunks::read_cached`]), decoded once into
//! `(timestamp, value)` samples and shared by every query and thread, within
//! a global byte budget.
//!
//! A block's `samples.parquet` page holds up to 4,096 rows of whole series
//! (see `docs/format/block.md`); decoding one costs a zstd decompression and
//! a delta decoding per column, reading a cached one a copy. Entries are
//! keyed by (block, page): the block's key is unique per opened [`Block`]
//! instance (never a file name, which a later block could reuse), and a
//! block drops its entries when it is dropped, i.e. once compaction or
//! retention has unpublished it and the last query reading it has finished.
//! A query keeps the pages it holds (`Arc`) alive after they leave the
//! cache; they no longer count against the budget.
//!
//! Eviction follows W-TinyLFU (Einziger, Friedman and Manes, "TinyLFU: a
//! highly efficient cache admission policy", 2017; Caffeine's policy) per
//! shard. A new page enters a small FIFO window (a tenth of the shard's
//! budget). A page leaving the window joins the main queue while that has
//! room; once it is full, the page is admitted only if it was read more
//! often lately than the main queue's next victim (found CLOCK-wise: an
//! entry read since it was queued is queued again), which it then
//! replaces; otherwise it is dropped. Reads are counted per key, found or
//! not, and the counts halve every ten reads per entry held, so they
//! follow what is read now. A dashboard that reads more pages per refresh
//! than the cache holds so keeps a stable part of them cached (under LRU,
//! and the second-chance LRU Silt had before, every page was evicted
//! before its next read: no hits at all), and a query that scans many
//! pages once does not push out the pages read over and over. The counts
//! take a map entry per key read lately, outside the budget: at most about
//! twenty per entry held (counting at least 64 entries a shard). Keys hash
//! to one of [`SHARDS`] shards, each with an equal share of the budget.
//!
//! The cache also keeps the budgets of what blocks keep for queries,
//! reserved and released by the blocks themselves, who give their share
//! back when they are dropped: their label sets ([`Block::labels`], a
//! quarter of its capacity, not evicted) and the answers of their
//! recent selections ([`Block::select`], a sixteenth, evicted by their
//! own block only).
//!
//! [`Block`]: super::Block
//! [`Block::select`]: super::Block::select
//! [`Block::labels`]: super::Block::labels

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::head_chunk::Resume;
use crate::sample::Sample;
use crate::summary::{Continuity, RunSummary};

/// Bit set in the page number of a `timestamps.parquet` page (version 3),
/// so that its pages and `samples.parquet`'s share a block's key space.
pub(crate) const TIMES_PAGE: u32 = 1 << 31;

/// Shards of the cache (a power of two).
const SHARDS: usize = 16;

/// Bytes an entry costs beyond its samples (map slot, queue slot, `Arc`
/// header, boxed slice).
const ENTRY_OVERHEAD: usize = 96;

/// One decoded data page: the samples of global rows
/// `first_row..first_row + samples.len()` of a block, validated (series ids
/// as the series table says, timestamps increasing within each series); or
/// a page of `timestamps.parquet`, rows `first_row..first_row +
/// times.len()` of that file.
#[derive(Debug)]
pub struct DecodedPage {
    pub(crate) first_row: u64,
    pub(crate) samples: Box<[Sample]>,
    pub(crate) times: Box<[i64]>,
    /// Bounds on every series run of `samples` (gaps, stale markers).
    pub(crate) continuity: Continuity,
    /// Summaries of the series runs (and chunks of runs) asked for so
    /// far: `(start, end, summary)` of `samples[start..end]`, sorted by
    /// `(start, end)` (a run and its first chunk start together).
    summaries: Mutex<Vec<(u32, u32, RunSummary)>>,
    /// Found in the cache at least once since it was decoded.
    reused: AtomicBool,
    /// For a head chunk decoded while open: where its decoding stopped.
    pub(crate) resume: Option<Resume>,
}

impl DecodedPage {
    pub(crate) fn new(
        first_row: u64,
        samples: Box<[Sample]>,
        continuity: Continuity,
    ) -> DecodedPage {
        DecodedPage {
            first_row,
            samples,
            times: Box::default(),
            continuity,
            summaries: Mutex::default(),
            reused: AtomicBool::new(false),
            resume: None,
        }
    }

    /// A head chunk's samples (all it had when decoded), with where its
    /// decoding stopped (see [`crate::head::Chunks::read_cached`]). Its
    /// reader copies the samples out: nothing is known of their continuity.
    pub(crate) fn head_chunk(samples: Box<[Sample]>, resume: Option<Resume>) -> DecodedPage {
        DecodedPage {
            resume,
            ..DecodedPage::new(0, samples, Continuity::UNKNOWN)
        }
    }

    /// A page of `timestamps.parquet`.
    pub(crate) fn times(first_row: u64, times: Box<[i64]>) -> DecodedPage {
        DecodedPage {
            first_row,
            samples: Box::default(),
            times,
            continuity: Continuity::UNKNOWN,
            summaries: Mutex::default(),
            reused: AtomicBool::new(false),
            resume: None,
        }
    }

    /// The summary of `samples[start..end]` (a whole run of one series,
    /// or a chunk of one; not empty), computed on first use and kept with
    /// the page (the reader asks only for runs and chunks long enough
    /// that its 128 bytes are small next to their 16 a sample; they are
    /// not charged to the cache's budget).
    pub(crate) fn summary(&self, start: usize, end: usize) -> RunSummary {
        let (a, b) = (start as u32, end as u32);
        let find = |v: &[(u32, u32, RunSummary)]| {
            let i = v.partition_point(|&(s, e, _)| (s, e) < (a, b));
            (
                i,
                v.get(i).filter(|&&(s, e, _)| s == a && e == b).map(|x| x.2),
            )
        };
        if let (_, Some(s)) = find(&self.summaries.lock()) {
            return s;
        }
        let summary = RunSummary::of(&self.samples[start..end]);
        let mut v = self.summaries.lock();
        match find(&v) {
            (_, Some(s)) => s,
            (i, None) => {
                v.insert(i, (a, b, summary));
                summary
            }
        }
    }

    /// Notes that a read found the page already decoded.
    pub(crate) fn mark_reused(&self) {
        // Read first: pages many threads read stay shared in their caches.
        if !self.reused.load(Ordering::Relaxed) {
            self.reused.store(true, Ordering::Relaxed);
        }
    }

    /// Has a read found the page already decoded? (The next series of a
    /// read that decoded a page shared by several finds it so too: their
    /// runs are summarised on first use, as before.) A page read only once
    /// (a scan, or data that outgrows the cache and is evicted before it
    /// comes round again) is not worth summarising: a summary costs more
    /// than the one fold over the samples it would save.
    pub(crate) fn reused(&self) -> bool {
        self.reused.load(Ordering::Relaxed)
    }

    /// One past the last global row.
    pub(crate) fn end_row(&self) -> u64 {
        self.first_row + self.samples.len() as u64
    }

    /// Bytes the entry is charged.
    fn cost(&self) -> usize {
        std::mem::size_of_val(&*self.samples) + std::mem::size_of_val(&*self.times) + ENTRY_OVERHEAD
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    block: u64,
    page: u64,
}

impl Key {
    /// Fibonacci hashing of both parts: neighbouring pages of one block
    /// spread over the shards, and over a shard's table.
    fn mix(&self) -> u64 {
        (self.block.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.page)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn shard(&self) -> usize {
        (self.mix() >> 32) as usize & (SHARDS - 1)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.mix());
    }
}

struct Slot {
    page: Arc<DecodedPage>,
    cost: usize,
    /// Read since it was queued.
    used: bool,
    /// In the main queue (else in the window).
    main: bool,
    /// Stamp under which the entry stands in its queue (older queue
    /// entries of the same key are stale). Every (re)queueing takes a new
    /// stamp, so a queue entry is live exactly when its stamp is the slot's.
    queued: u64,
}

/// The window's share of a shard's budget, in tenths.
const WINDOW_TENTHS: usize = 1;

/// Reads counted per entry held before the counts halve.
const SAMPLE_PER_ENTRY: usize = 10;

/// The count of reads a key keeps at most.
const MAX_COUNT: u8 = 15;

/// Hands a shard's table the hash a [`Key`] mixes itself ([`Key::mix`]):
/// SipHash over the two integers took a tenth of a cache hit.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached: a key writes one u64.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

#[derive(Default)]
struct Shard {
    map: SlotMap,
    /// Entries new to the shard, oldest first, with the stamp they were
    /// queued under.
    window: VecDeque<(Key, u64)>,
    /// Entries admitted past the window, in CLOCK order.
    main: VecDeque<(Key, u64)>,
    /// Recent reads per key ([`Key::mix`]), halved every
    /// [`SAMPLE_PER_ENTRY`] reads per entry held.
    counts: HashMap<u64, u8, BuildHasherDefault<KeyHasher>>,
    /// Reads since the counts last halved.
    reads: usize,
    bytes: usize,
    window_bytes: usize,
    clock: u64,
}

/// What [`Shard::shrink`] evicted: entries and bytes.
type Evicted = (u64, usize);

type SlotMap = HashMap<Key, Slot, BuildHasherDefault<KeyHasher>>;

/// Whether a queue entry `(key, stamp)` stands for the entry in `map`.
fn is_live(map: &SlotMap, key: Key, stamp: u64) -> bool {
    map.get(&key).is_some_and(|slot| slot.queued == stamp)
}

impl Shard {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Counts a read of `key`.
    fn count(&mut self, key: Key) {
        let n = self.counts.entry(key.mix()).or_insert(0);
        *n = (*n + 1).min(MAX_COUNT);
        self.reads += 1;
        if self.reads >= SAMPLE_PER_ENTRY * self.map.len().max(64) {
            self.reads = 0;
            self.counts.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
        }
    }

    fn reads_of(&self, key: Key) -> u8 {
        self.counts.get(&key.mix()).copied().unwrap_or(0)
    }

    /// The queue's first live entry (stale ones, of replaced or removed
    /// keys, are dropped on the way).
    fn pop_live(&mut self, main: bool) -> Option<Key> {
        loop {
            let queue = if main {
                &mut self.main
            } else {
                &mut self.window
            };
            let (key, stamp) = queue.pop_front()?;
            if is_live(&self.map, key, stamp) {
                return Some(key);
            }
        }
    }

    /// Caches `page` under `key` (not in the map) in the window, or in the
    /// main queue with `main`.
    fn add(&mut self, key: Key, page: Arc<DecodedPage>, cost: usize, used: bool, main: bool) {
        let queued = self.tick();
        self.map.insert(
            key,
            Slot {
                page,
                cost,
                used,
                main,
                queued,
            },
        );
        self.bytes += cost;
        if main {
            self.main.push_back((key, queued));
        } else {
            self.window.push_back((key, queued));
            self.window_bytes += cost;
        }
    }

    /// Queues a live entry (from the window, or the main queue's front) at
    /// the back of the main queue, not read since.
    fn requeue(&mut self, key: Key) {
        let stamp = self.tick();
        let Some(slot) = self.map.get_mut(&key) else {
            return;
        };
        if !slot.main {
            self.window_bytes -= slot.cost;
        }
        (slot.used, slot.main, slot.queued) = (false, true, stamp);
        self.main.push_back((key, stamp));
    }

    /// The main queue's next victim, taken off the queue: its first entry
    /// not read since it was queued (those read are queued again).
    fn main_victim(&mut self) -> Option<Key> {
        loop {
            let key = self.pop_live(true)?;
            if self.map.get(&key).is_some_and(|slot| slot.used) {
                self.requeue(key);
                continue;
            }
            return Some(key);
        }
    }

    /// Puts a victim [`Shard::main_victim`] took back at the queue's front.
    fn keep_victim(&mut self, key: Key) {
        if let Some(slot) = self.map.get(&key) {
            self.main.push_front((key, slot.queued));
        }
    }

    /// Drops `key`'s entry (its queue entry goes stale); its cost, 0 if
    /// there was none.
    fn evict(&mut self, key: Key) -> usize {
        let Some(slot) = self.map.remove(&key) else {
            return 0;
        };
        self.bytes -= slot.cost;
        if !slot.main {
            self.window_bytes -= slot.cost;
        }
        slot.cost
    }

    /// Evicts until `bytes <= budget` (see the module's notes).
    fn shrink(&mut self, budget: usize) -> Evicted {
        let (mut n, mut freed) = (0, 0);
        let window_budget = budget / 10 * WINDOW_TENTHS;
        let main_budget = budget - window_budget;
        while self.bytes > budget {
            let main_bytes = self.bytes - self.window_bytes;
            if self.window_bytes <= window_budget && main_bytes > 0 {
                // The main queue is over its share (so not empty: every
                // live entry stands in its queue).
                let Some(victim) = self.main_victim() else {
                    break;
                };
                freed += self.evict(victim);
                n += 1;
                continue;
            }
            // The window is over its share, or the main queue empty: the
            // window holds a live entry.
            let Some(candidate) = self.pop_live(false) else {
                break;
            };
            let cost = self.map.get(&candidate).map_or(0, |slot| slot.cost);
            if main_bytes + cost <= main_budget {
                self.requeue(candidate);
                continue;
            }
            let victim = self.main_victim();
            match victim {
                Some(victim) if self.reads_of(candidate) > self.reads_of(victim) => {
                    freed += self.evict(victim);
                    self.requeue(candidate);
                }
                _ => {
                    if let Some(victim) = victim {
                        self.keep_victim(victim);
                    }
                    freed += self.evict(candidate);
                }
            }
            n += 1;
        }
        (n, freed)
    }

    /// Drops queue entries of keys replaced or removed once they are well
    /// over the live ones.
    fn compact(&mut self) {
        if self.window.len() + self.main.len() > 2 * self.map.len() + 64 {
            let Shard {
                map, window, main, ..
            } = self;
            for queue in [window, main] {
                queue.retain(|&(k, s)| is_live(map, k, s));
            }
        }
    }
}

/// Counters and gauges of the cache on `/metrics`.
#[derive(Clone, Default)]
struct CacheMetrics {
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    bytes: Gauge,
    entries: Gauge,
    capacity: Gauge,
}

/// Hits, misses and size, for tests and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
    pub capacity: u64,
}

/// Decoded pages of all open blocks within a byte budget. `Send + Sync`;
/// share it as `Arc<BlockCache>`.
pub struct BlockCache {
    shards: Box<[Mutex<Shard>]>,
    shard_budget: usize,
    capacity: usize,
    metrics: CacheMetrics,
    /// Bytes of label sets blocks keep, and their budget.
    label_bytes: AtomicUsize,
    label_budget: usize,
    /// Bytes of selections blocks keep, and their budget.
    selection_bytes: AtomicUsize,
    selection_budget: usize,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Adds `bytes` to `held` unless that passes `budget`.
fn reserve(held: &AtomicUsize, budget: usize, bytes: usize) -> bool {
    held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
        held.checked_add(bytes).filter(|&n| n <= budget)
    })
    .is_ok()
}

/// Keys of opened blocks: unique for the process's lifetime.
static NEXT_BLOCK_KEY: AtomicU64 = AtomicU64::new(1);

/// A fresh cache key for an opened block.
pub(crate) fn new_block_key() -> u64 {
    NEXT_BLOCK_KEY.fetch_add(1, Ordering::Relaxed)
}

impl BlockCache {
    /// A cache holding at most about `capacity` bytes of decoded pages
    /// (each shard gets an equal share; a page larger than a share is never
    /// cached).
    pub fn new(capacity: usize) -> BlockCache {
        let metrics = CacheMetrics::default();
        metrics.capacity.set(capacity as i64);
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: capacity / SHARDS,
            capacity,
            metrics,
            label_bytes: AtomicUsize::new(0),
            label_budget: capacity / 4,
            selection_bytes: AtomicUsize::new(0),
            selection_budget: capacity / 16,
        }
    }

    /// Reserves `bytes` of the label-set budget; `false` (nothing reserved)
    /// if they do not fit.
    pub(crate) fn reserve_labels(&self, bytes: usize) -> bool {
        reserve(&self.label_bytes, self.label_budget, bytes)
    }

    /// Reserves `bytes` of the selections' budget; `false` (nothing
    /// reserved) if they do not fit.
    pub(crate) fn reserve_selection(&self, bytes: usize) -> bool {
        reserve(&self.selection_bytes, self.selection_budget, bytes)
    }

    /// Gives back bytes reserved with [`BlockCache::reserve_selection`].
    pub(crate) fn release_selection(&self, bytes: usize) {
        self.selection_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes of selections blocks keep now.
    pub fn selection_bytes(&self) -> usize {
        self.selection_bytes.load(Ordering::Relaxed)
    }

    /// Gives back label-set bytes reserved with [`BlockCache::reserve_labels`].
    pub(crate) fn release_labels(&self, bytes: usize) {
        self.label_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes of label sets blocks keep now.
    pub fn label_bytes(&self) -> usize {
        self.label_bytes.load(Ordering::Relaxed)
    }

    /// Registers `silt_block_cache_*` metrics (hits, misses, evictions,
    /// entries, size and capacity in bytes).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("silt_block_cache");
        let m = &self.metrics;
        r.register(
            "hits",
            "Block page reads answered from the decoded-page cache",
            m.hits.clone(),
        );
        r.register(
            "misses",
            "Block page reads that decoded the page",
            m.misses.clone(),
        );
        r.register(
            "evictions",
            "Decoded pages evicted to stay within the budget",
            m.evictions.clone(),
        );
        r.register("entries", "Decoded pages in the cache", m.entries.clone());
        r.register_with_unit(
            "size",
            "Bytes of decoded pages in the cache",
            Unit::Bytes,
            m.bytes.clone(),
        );
        r.register_with_unit(
            "capacity",
            "Byte budget of the decoded-page cache",
            Unit::Bytes,
            m.capacity.clone(),
        );
    }

    /// Whether anything can be cached at all.
    pub fn is_enabled(&self) -> bool {
        self.shard_budget > ENTRY_OVERHEAD
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The cached page `page` of block `block`, if present (counts a hit or
    /// a miss).
    pub(crate) fn get(&self, block: u64, page: u64) -> Option<Arc<DecodedPage>> {
        let key = Key { block, page };
        let mut shard = self.shards[key.shard()].lock();
        shard.count(key);
        match shard.map.get_mut(&key) {
            Some(slot) => {
                slot.used = true;
                let page = slot.page.clone();
                drop(shard);
                self.metrics.hits.inc();
                Some(page)
            }
            None => {
                drop(shard);
                self.metrics.misses.inc();
                None
            }
        }
    }

    /// Counts a hit served without a lookup (a reader's remembered page).
    pub(crate) fn note_hit(&self) {
        self.metrics.hits.inc();
    }

    /// Caches a freshly decoded page (replacing an entry another thread may
    /// have inserted meanwhile, in its queue and with its uses), evicting
    /// pages of its shard beyond the budget (see the module's notes).
    pub(crate) fn insert(&self, block: u64, page: u64, decoded: Arc<DecodedPage>) {
        let cost = decoded.cost();
        if cost > self.shard_budget {
            return;
        }
        let key = Key { block, page };
        let mut shard = self.shards[key.shard()].lock();
        let old = shard.map.get(&key).map(|o| (o.used, o.main));
        let replaced = shard.evict(key);
        let (used, main) = old.unwrap_or((false, false));
        shard.add(key, decoded, cost, used, main);
        let delta = cost as i64 - replaced as i64;
        let entries = 1 - i64::from(old.is_some());
        let (evicted, freed) = shard.shrink(self.shard_budget);
        shard.compact();
        drop(shard);
        self.metrics.bytes.inc_by(delta - freed as i64);
        self.metrics.entries.inc_by(entries - evicted as i64);
        self.metrics.evictions.inc_by(evicted);
    }

    /// Drops every page of block `block` (called when the block is
    /// dropped). Pages a running query still holds stay valid for it.
    pub(crate) fn remove_block(&self, block: u64) {
        let (mut n, mut freed) = (0i64, 0usize);
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let Shard {
                map,
                window,
                main,
                bytes,
                window_bytes,
                ..
            } = &mut *shard;
            let before = map.len();
            map.retain(|k, slot| {
                let keep = k.block != block;
                if !keep {
                    *bytes -= slot.cost;
                    if !slot.main {
                        *window_bytes -= slot.cost;
                    }
                    freed += slot.cost;
                }
                keep
            });
            if map.len() != before {
                n += (before - map.len()) as i64;
                window.retain(|(k, _)| k.block != block);
                main.retain(|(k, _)| k.block != block);
            }
        }
        self.metrics.bytes.dec_by(freed as i64);
        self.metrics.entries.dec_by(n);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.metrics.hits.get(),
            misses: self.metrics.misses.get(),
            evictions: self.metrics.evictions.get(),
            entries: self.metrics.entries.get().max(0) as u64,
            bytes: self.metrics.bytes.get().max(0) as u64,
            capacity: self.capacity as u64,
        }
    }

    /// Bytes held, summed over the shards (what `stats().bytes` tracks).
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(first_row: u64, n: usize) -> Arc<DecodedPage> {
        let samples: Vec<Sample> = (0..n)
            .map(|i| Sample {
                t: i as i64,
                v: first_row as f64,
            })
            .collect();
        Arc::new(DecodedPage::new(
            first_row,
            samples.into_boxed_slice(),
            Continuity::UNKNOWN,
        ))
    }

    const PAGE_COST: usize = 100 * 16 + ENTRY_OVERHEAD;

    #[test]
    fn a_page_keeps_one_summary_per_slice_asked_for() {
        let samples: Vec<Sample> = (0..600).map(|i| Sample::new(i, (i % 10) as f64)).collect();
        let p = DecodedPage::new(0, samples.clone().into_boxed_slice(), Continuity::UNKNOWN);
        // A run and its first chunk start at the same row; asked for in
        // turn, each is found again rather than added once more.
        for _ in 0..3 {
            for (a, b) in [(0, 600), (0, 256), (256, 512), (512, 600)] {
                assert_eq!(p.summary(a, b), RunSummary::of(&samples[a..b]));
            }
        }
        let kept: Vec<(u32, u32)> = p.summaries.lock().iter().map(|&(a, b, _)| (a, b)).collect();
        assert_eq!(kept, [(0, 256), (0, 600), (256, 512), (512, 600)]);
    }

    #[test]
    fn hits_and_misses_are_counted() {
        let c = BlockCache::new(1 << 20);
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, page(0, 100));
        let p = c.get(1, 0).unwrap();
        assert_eq!(p.samples.len(), 100);
        assert!(c.get(2, 0).is_none(), "another block's page 0");
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.entries), (1, 2, 1));
        assert_eq!(s.bytes as usize, PAGE_COST);
        assert_eq!(c.held_bytes(), PAGE_COST);
    }

    #[test]
    fn budget_is_respected_and_a_page_in_use_stays() {
        // Room for about 4 pages per shard.
        let c = BlockCache::new(SHARDS * PAGE_COST * 4);
        for p in 0..2_000u64 {
            c.insert(7, p, page(p, 100));
            // Keep page 0 in use: it must survive every eviction round.
            assert!(c.get(7, 0).is_some(), "page 0 evicted after {p}");
            assert!(c.held_bytes() <= c.capacity());
        }
        let s = c.stats();
        assert!(s.evictions > 0);
        assert_eq!(s.bytes as usize, c.held_bytes());
        assert!(s.entries as usize <= SHARDS * 4);
        // The newest page is in the window.
        assert!(c.get(7, 1_999).is_some());
    }

    /// Reads page `p` of block 7 as a reader does (decoding and caching it
    /// on a miss); whether it was a hit.
    fn read(c: &BlockCache, p: u64) -> bool {
        if c.get(7, p).is_some() {
            return true;
        }
        c.insert(7, p, page(p, 100));
        false
    }

    #[test]
    fn a_loop_over_more_pages_than_fit_keeps_a_part_cached() {
        // Room for about 20 pages a shard, 320 in all; each round reads
        // 960 pages in the same order, as a dashboard's refresh does. An
        // LRU (and second-chance LRU) evicts every page before its next
        // read: no hits at all.
        let c = BlockCache::new(SHARDS * PAGE_COST * 20);
        let mut hits = Vec::new();
        for _ in 0..6 {
            hits.push((0..960).filter(|&p| read(&c, p)).count());
            assert!(c.held_bytes() <= c.capacity());
        }
        assert_eq!(hits[0], 0);
        // Most of what fits stays: 320 of 960 at best, the window's tenth
        // passing through.
        assert!(
            hits[3..].iter().all(|&h| h >= 200),
            "hits per round {hits:?}"
        );
        let s = c.stats();
        assert_eq!(s.bytes as usize, c.held_bytes());
    }

    #[test]
    fn a_scan_does_not_push_out_pages_read_over_and_over() {
        let c = BlockCache::new(SHARDS * PAGE_COST * 20);
        // 160 pages read in turn, four times: about half the cache.
        for _ in 0..4 {
            for p in 0..160 {
                read(&c, p);
            }
        }
        // One query reads 5,000 other pages once.
        for p in 1_000..6_000 {
            read(&c, p);
        }
        let kept = (0..160).filter(|&p| c.get(7, p).is_some()).count();
        assert!(kept >= 150, "{kept} of 160 pages kept");
    }

    #[test]
    fn a_new_working_set_takes_the_place_of_the_old() {
        // Two sets of 250 pages; the cache holds 320. The first is read
        // until its counts are at their most, which the second's can only
        // equal: only the halving of the first's (every 640 reads a shard,
        // about 40 rounds) lets the second win.
        let c = BlockCache::new(SHARDS * PAGE_COST * 20);
        for _ in 0..usize::from(MAX_COUNT) + 5 {
            (0..250).for_each(|p| _ = read(&c, p));
        }
        let hits: Vec<usize> = (0..80)
            .map(|_| (1_000..1_250).filter(|&p| read(&c, p)).count())
            .collect();
        assert!(
            hits[70..].iter().all(|&h| h >= 200),
            "hits per round {hits:?}"
        );
    }

    #[test]
    fn pages_larger_than_a_share_and_a_zero_budget_are_not_cached() {
        let c = BlockCache::new(0);
        assert!(!c.is_enabled());
        c.insert(1, 0, page(0, 10));
        assert!(c.get(1, 0).is_none());
        let c = BlockCache::new(SHARDS * PAGE_COST);
        c.insert(1, 0, page(0, 101));
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, page(0, 100));
        assert!(c.get(1, 0).is_some());
    }

    #[test]
    fn replacing_an_entry_keeps_the_accounting() {
        let c = BlockCache::new(1 << 20);
        for _ in 0..1_000 {
            c.insert(3, 9, page(0, 100));
        }
        let s = c.stats();
        assert_eq!((s.entries, s.bytes as usize), (1, PAGE_COST));
        let shard = c.shards[Key { block: 3, page: 9 }.shard()].lock();
        assert!(shard.window.len() + shard.main.len() <= 2 * shard.map.len() + 64);
    }

    #[test]
    fn removing_a_block_keeps_pages_held_by_readers() {
        let c = BlockCache::new(1 << 20);
        for p in 0..50 {
            c.insert(1, p, page(p, 100));
            c.insert(2, p, page(1_000 + p, 100));
        }
        let held = c.get(1, 7).unwrap();
        c.remove_block(1);
        assert!((0..50).all(|p| c.get(1, p).is_none()));
        assert!((0..50).all(|p| c.get(2, p).is_some()));
        // The reader's page is intact after its block left the cache.
        assert_eq!(held.first_row, 7);
        assert!(held.samples.iter().all(|s| s.v == 7.0));
        let s = c.stats();
        assert_eq!((s.entries, s.bytes as usize), (50, 50 * PAGE_COST));
        assert_eq!(c.held_bytes(), 50 * PAGE_COST);
    }

    #[test]
    fn concurrent_readers_and_writers_stay_within_budget() {
        let c = Arc::new(BlockCache::new(SHARDS * PAGE_COST * 8));
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let c = c.clone();
                s.spawn(move || {
                    for i in 0..5_000u64 {
                        let (b, p) = (i % 3 + t % 2, (i * 7 + t) % 300);
                        match c.get(b, p) {
                            Some(pg) => assert_eq!(pg.first_row, p),
                            None => c.insert(b, p, page(p, 100)),
                        }
                        if i % 1_000 == 999 {
                            c.remove_block(b);
                        }
                    }
                });
            }
        });
        let s = c.stats();
        assert_eq!(s.bytes as usize, c.held_bytes());
        assert!(c.held_bytes() <= c.capacity());
        let entries: usize = c.shards.iter().map(|s| s.lock().map.len()).sum();
        assert_eq!(s.entries as usize, entries);
        assert!(s.hits > 0 && s.misses > 0);
    }
}
