//! Reading a block: [`Block::open`] verifies `meta.json`, every file's size
//! and CRC-32C, the Parquet schemas and the series table, memory-maps
//! `samples.parquet` (and `timestamps.parquet`) and parses their footers and
//! page indexes once. A read takes
//! the series' row range, narrows it to the pages whose timestamps can
//! overlap the query, and decodes only those pages with pooled column
//! cursors (parquet's typed column readers over the memory map, their
//! pages decompressed with the thread's zstd context: `pages.rs`). Columns
//! a page's column index determines ([`PageShape`]: the series ids, a
//! single series' consecutive `ts_row`s, a single value scale) are filled
//! in from it instead of decoded.
//!
//! From version 3 a sample's timestamp lives in `timestamps.parquet` (see
//! [`Times`]): the cursor reads each row's `ts_row` where older versions
//! have the timestamp, and [`Block::resolve_times`] swaps it for the time
//! before anything else looks at the rows.

use std::fs::File;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use memmap2::Mmap;
use parking_lot::Mutex;
use parquet::column::page::PageReader;
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{DataType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;
use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::index::MemPostings;
use crate::labels::{Labels, Matcher};
use crate::sample::{Sample, first_at_or_after, is_stale_nan, partition_point_near};
use crate::select_memo::{self, SelectMemo};
use crate::starts::StartRun;
use crate::summary::{Continuity, RunSummary};

use super::cache::{self, BlockCache, DecodedPage};
use super::decimal;
use super::meta::{BlockMeta, read_meta};
use super::pages;
use super::schema::{self, FileKind};
use super::series::SeriesTable;
use super::starts::BlockStarts;
use super::times::Times;
use super::{SAMPLES_FILE, SERIES_FILE, STARTS_FILE, TIMESTAMPS_FILE};

/// One data page of `samples.parquet`: its first row (global) and its
/// smallest and largest timestamp (version 3: bounds from the pages of
/// `timestamps.parquet` its rows refer to).
#[derive(Debug, Clone, Copy)]
struct TsPage {
    first_row: u64,
    min_t: i64,
    max_t: i64,
    shape: PageShape,
}

/// What the column index says of a page's rows, for the columns it
/// determines (see `docs/format/block.md`, "How a reader reads one
/// series"): a reader fills these in instead of decoding them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PageShape {
    /// The page's `series_id` minimum and maximum are the series the
    /// series table places at its first and last rows: each row's id is
    /// the table's (rows are sorted by `series_id`).
    series_as_table: bool,
    /// The first row's `ts_row`, the others following one by one (version
    /// 3): a page of one series (by the above) whose `ts_row` maximum is
    /// its minimum plus its rows less one. (A series' `ts_row`s are
    /// consecutive.)
    ts_row: Option<i64>,
    /// Every row's `value_scale` (version 2): its minimum equals its
    /// maximum.
    scale: Option<i8>,
}

/// An open, verified, immutable block. Cheap to share (`Send + Sync`); reads
/// never re-parse the footer. The memory map keeps the data readable even
/// after the directory is deleted.
pub struct Block {
    dir: PathBuf,
    samples_path: PathBuf,
    meta: BlockMeta,
    size_bytes: u64,
    data: Arc<Bytes>,
    metadata: Arc<ParquetMetaData>,
    /// Idle column cursors for reuse (see [`Cursor`]).
    pool: Mutex<Vec<Cursor>>,
    /// First global row of each row group, plus the total at the end.
    rg_start: Vec<u64>,
    /// Timestamp-column pages of all row groups, in row order.
    pages: Vec<TsPage>,
    /// Does `samples.parquet` have the decimal value columns (version 2)?
    decimal: bool,
    /// `timestamps.parquet` (version 3): column 1 of `samples.parquet`
    /// holds rows of it instead of timestamps.
    times: Option<Times>,
    /// Without a cache: the last few decoded pages of `timestamps.parquet`,
    /// newest last (consecutive series mostly refer to a few sequences).
    times_memo: Mutex<Vec<(usize, Arc<DecodedPage>)>>,
    series: SeriesTable,
    /// The samples' start timestamps (empty before version 4, or when none
    /// has one).
    starts: BlockStarts,
    postings: MemPostings,
    /// Decoded pages shared with other blocks, and this block's key there.
    cache: Option<Arc<BlockCache>>,
    cache_key: u64,
    /// Label sets built for queries, per series id, kept within the cache's
    /// label budget (`None`: the slots did not fit). Allocated at the
    /// first query.
    label_slots: OnceLock<Option<Box<[OnceLock<Labels>]>>>,
    /// Bytes reserved in the cache's label budget (slots and sets).
    label_bytes: AtomicUsize,
    /// Answers of recent selections ([`Block::select`]), and the bytes
    /// they reserved in the cache's selection budget.
    selects: SelectMemo<Arc<RoaringBitmap>>,
    select_bytes: AtomicUsize,
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(c) = &self.cache {
            c.remove_block(self.cache_key);
            c.release_labels(*self.label_bytes.get_mut());
            c.release_selection(*self.select_bytes.get_mut());
        }
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Runs `f`, turning a panic inside a third-party decoder into a
/// corruption error naming `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::corruption(
            path,
            "decoder panicked on malformed data",
        ))
    })
}

/// Reads a whole data file, checking its size and CRC-32C against meta.
fn load_file(dir: &Path, meta: &BlockMeta, name: &str, map: bool) -> Result<Bytes> {
    let path = dir.join(name);
    let fm = meta.files.iter().find(|f| f.name == name).ok_or_else(|| {
        Error::corruption(dir.join(super::META_FILE), format!("no entry for {name}"))
    })?;
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::corruption(&path, "file missing"),
        _ => Error::io(&path, e),
    })?;
    let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    if len != fm.size {
        return Err(Error::corruption(
            &path,
            format!("size is {len} bytes, meta.json says {}", fm.size),
        ));
    }
    if len < 12 {
        return Err(Error::corruption(
            &path,
            format!("{len} bytes is too short for Parquet"),
        ));
    }
    let (bytes, crc) = if map {
        // The checksum is read through the page cache, not the mapping: a
        // mapping keeps every page it touched in the process's resident set
        // (a freshly written block would count in full), and reads touch
        // only the pages they need.
        let crc = crc_of_file(&file).map_err(|e| Error::io(&path, e))?;
        // SAFETY: block files are immutable once published: nothing writes or
        // truncates them, and deleting the directory leaves the mapping valid
        // (Linux keeps the inode until it is unmapped).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        (Bytes::from_owner(mmap), crc)
    } else {
        let bytes = Bytes::from(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        let crc = crc32c::crc32c(&bytes);
        (bytes, crc)
    };
    if bytes.len() as u64 != fm.size {
        return Err(Error::corruption(
            &path,
            "file changed size while being opened",
        ));
    }
    if crc != fm.crc32c {
        return Err(Error::corruption(
            &path,
            format!("CRC-32C is {crc:08x}, meta.json says {:08x}", fm.crc32c),
        ));
    }
    Ok(bytes)
}

/// CRC-32C of a whole file, read in 1 MiB pieces.
fn crc_of_file(file: &File) -> std::io::Result<u32> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0;
    let mut reader = file;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

impl Block {
    /// Opens and verifies the block in `dir`. Any inconsistency is
    /// [`Error::Corruption`] naming the offending file. Reads decode pages
    /// afresh every time; see [`Block::open_cached`].
    pub fn open(dir: &Path) -> Result<Block> {
        Block::open_cached(dir, None)
    }

    /// [`Block::open`], with reads going through `cache` (decoded pages
    /// shared across reads; the block's pages leave the cache when the
    /// block is dropped).
    pub fn open_cached(dir: &Path, cache: Option<Arc<BlockCache>>) -> Result<Block> {
        let meta = read_meta(dir)?;
        let meta_path = dir.join(super::META_FILE);
        let mut names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        let has_starts = meta.version >= 4 && names.contains(&STARTS_FILE);
        let want: &[&str] = match (meta.version, has_starts) {
            (4.., true) => &[SAMPLES_FILE, SERIES_FILE, STARTS_FILE, TIMESTAMPS_FILE],
            (3.., _) => &[SAMPLES_FILE, SERIES_FILE, TIMESTAMPS_FILE],
            _ => &[SAMPLES_FILE, SERIES_FILE],
        };
        if names != want {
            return Err(Error::corruption(
                &meta_path,
                format!("files are {names:?}, want {want:?}"),
            ));
        }
        let meta_size = std::fs::metadata(&meta_path)
            .map_err(|e| Error::io(&meta_path, e))?
            .len();
        let series_path = dir.join(SERIES_FILE);
        let series_bytes = load_file(dir, &meta, SERIES_FILE, false)?;
        let series = guarded(&series_path, || {
            SeriesTable::load(&series_path, series_bytes, &meta)
        })?;
        let times = if meta.version >= 3 {
            let path = dir.join(TIMESTAMPS_FILE);
            let data = load_file(dir, &meta, TIMESTAMPS_FILE, true)?;
            Some(guarded(&path, || Times::open(&path, data, &meta))?)
        } else {
            None
        };
        let starts = if has_starts {
            let path = dir.join(STARTS_FILE);
            let data = load_file(dir, &meta, STARTS_FILE, false)?;
            guarded(&path, || BlockStarts::load(&path, data, &meta, &series))?
        } else {
            BlockStarts::default()
        };
        let samples_path = dir.join(SAMPLES_FILE);
        let data = load_file(dir, &meta, SAMPLES_FILE, true)?;
        let (metadata, rg_start, pages) = guarded(&samples_path, || {
            open_samples(&samples_path, &data, &meta, times.as_ref(), &series)
        })?;
        let postings = series.postings();
        let decimal = meta.version >= 2;
        Ok(Block {
            dir: dir.to_owned(),
            samples_path,
            size_bytes: meta.files_size() + meta_size,
            meta,
            data: Arc::new(data),
            metadata,
            pool: Mutex::new(Vec::new()),
            rg_start,
            pages,
            decimal,
            times,
            times_memo: Mutex::new(Vec::new()),
            series,
            starts,
            postings,
            cache: cache.filter(|c| c.is_enabled()),
            cache_key: cache::new_block_key(),
            label_slots: OnceLock::new(),
            label_bytes: AtomicUsize::new(0),
            selects: SelectMemo::default(),
            select_bytes: AtomicUsize::new(0),
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Size of all files of the block on disk.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Approximate heap memory held by the open block (labels, index,
    /// page table; the memory map is not counted).
    pub fn heap_bytes(&self) -> usize {
        self.series.heap_bytes()
            + self.starts.heap_bytes()
            + (self.pages.len() + self.times.as_ref().map_or(0, Times::num_pages))
                * std::mem::size_of::<TsPage>()
            + self.rg_start.len() * 8
    }

    /// Number of data pages of the timestamp column.
    pub fn num_pages(&self) -> usize {
        self.pages.len()
    }

    /// The inverted index over the block's series (ids are series ids).
    pub fn postings(&self) -> &MemPostings {
        &self.postings
    }

    /// Ids of the series matching every matcher ([`MemPostings::select`]).
    /// With a block cache, the answer is kept for the next query with the
    /// same matchers ([`crate::select_memo`]) within the cache's selection
    /// budget; where that is spent, the block makes room among its own
    /// (least recently used first).
    pub fn select(&self, matchers: &[Matcher]) -> Arc<RoaringBitmap> {
        let Some(cache) = &self.cache else {
            return Arc::new(self.postings.select(matchers));
        };
        if let Some(ids) = self.selects.get(matchers, 0) {
            return ids;
        }
        let ids = Arc::new(self.postings.select(matchers));
        let bytes = ids.serialized_size() + select_memo::matchers_bytes(matchers);
        let reserved = cache.reserve_selection(bytes) || {
            let freed = self.selects.shrink(bytes);
            self.select_bytes.fetch_sub(freed, Ordering::Relaxed);
            cache.release_selection(freed);
            cache.reserve_selection(bytes)
        };
        if reserved {
            self.select_bytes.fetch_add(bytes, Ordering::Relaxed);
            let freed = self
                .selects
                .put(matchers, 0, ids.clone(), bytes, usize::MAX);
            self.select_bytes.fetch_sub(freed, Ordering::Relaxed);
            cache.release_selection(freed);
        }
        ids
    }

    pub fn num_series(&self) -> u32 {
        self.series.len() as u32
    }

    /// Labels of series `id`; empty labels if `id` is out of range.
    ///
    /// With a block cache, the set built for the first query is kept for
    /// later ones (a clone is a reference count), within the cache's label
    /// budget.
    pub fn labels(&self, id: u32) -> Labels {
        if (id as usize) >= self.series.len() {
            return Labels::default();
        }
        let (Some(cache), Some(slot)) = (&self.cache, self.label_slot(id)) else {
            return self.series.labels(id);
        };
        if let Some(l) = slot.get() {
            return l.clone();
        }
        let l = self.series.labels(id);
        self.fill_slot(cache, slot, &l);
        l
    }

    /// Series `id`'s label set if the label cache holds it: nothing is
    /// built or allocated, not even the block's slots.
    pub fn cached_labels(&self, id: u32) -> Option<&Labels> {
        self.label_slots.get()?.as_ref()?.get(id as usize)?.get()
    }

    /// Caches `labels`, which the caller found equal to series `id`'s, as
    /// that series' label set, if the slot is empty and the budget allows:
    /// blocks that hold the same series then hand out one shared set, so
    /// merging their matches compares pointers ([`Labels`]' order). The
    /// set counts in full against the budget in every block holding it
    /// (what it costs is not known once the block that built it is gone);
    /// once the budget is spent, merges compare pairs as before.
    pub fn share_labels(&self, id: u32, labels: &Labels) {
        if (id as usize) >= self.series.len() {
            return;
        }
        let (Some(cache), Some(slot)) = (&self.cache, self.label_slot(id)) else {
            return;
        };
        if slot.get().is_none() {
            debug_assert!(
                self.series
                    .pairs(id)
                    .eq(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
            );
            self.fill_slot(cache, slot, labels);
        }
    }

    /// Puts `l` in an empty label slot if the cache's label budget takes
    /// its bytes (a set shared with other blocks counts in each).
    fn fill_slot(&self, cache: &BlockCache, slot: &OnceLock<Labels>, l: &Labels) {
        let bytes = l.heap_bytes();
        if cache.reserve_labels(bytes) {
            if slot.set(l.clone()).is_ok() {
                self.label_bytes.fetch_add(bytes, Ordering::Relaxed);
            } else {
                cache.release_labels(bytes);
            }
        }
    }

    /// Labels of series `id` built afresh, bypassing the label cache (for
    /// reads of every series once, such as merges); empty labels if `id`
    /// is out of range.
    pub fn labels_uncached(&self, id: u32) -> Labels {
        if (id as usize) >= self.series.len() {
            return Labels::default();
        }
        self.series.labels(id)
    }

    /// The label-set slot of series `id` (in range), if the block keeps them.
    fn label_slot(&self, id: u32) -> Option<&OnceLock<Labels>> {
        let cache = self.cache.as_ref()?;
        let slots = self.label_slots.get_or_init(|| {
            let n = self.series.len();
            let bytes = n * std::mem::size_of::<OnceLock<Labels>>();
            cache.reserve_labels(bytes).then(|| {
                self.label_bytes.fetch_add(bytes, Ordering::Relaxed);
                (0..n).map(|_| OnceLock::new()).collect()
            })
        });
        slots.as_ref().map(|s| &s[id as usize])
    }

    /// Label pairs of series `id` without allocating; empty if out of range.
    pub fn label_pairs(&self, id: u32) -> impl Iterator<Item = (&str, &str)> {
        let n = if (id as usize) < self.series.len() {
            Some(id)
        } else {
            None
        };
        n.into_iter().flat_map(|id| self.series.pairs(id))
    }

    /// Smallest and largest timestamp of series `id` (`(i64::MAX, i64::MIN)`
    /// if out of range).
    pub fn series_time_range(&self, id: u32) -> (i64, i64) {
        match self.series.min_time.get(id as usize) {
            Some(&lo) => (lo, self.series.max_time[id as usize]),
            None => (i64::MAX, i64::MIN),
        }
    }

    /// Whether some sample of series `id` has a start timestamp.
    #[inline]
    pub fn series_has_starts(&self, id: u32) -> bool {
        self.starts.has(id)
    }

    /// The start-timestamp runs of series `id` that reach into
    /// `[mint, maxt]` (sorted, disjoint; none if it has none).
    pub fn start_runs(&self, id: u32, mint: i64, maxt: i64) -> &[StartRun] {
        let runs = self.starts.runs(id);
        let a = runs.partition_point(|r| r.last < mint);
        let b = runs.partition_point(|r| r.first <= maxt);
        &runs[a..b.max(a)]
    }

    /// Number of samples of series `id` in the block.
    pub fn series_num_samples(&self, id: u32) -> u32 {
        self.series.num_rows.get(id as usize).copied().unwrap_or(0)
    }

    /// About how many samples of series `id` lie in `[mint, maxt]`,
    /// assuming they are spread evenly over the series' time range (for
    /// reserving buffers; never more than the series has).
    pub fn estimate_samples(&self, id: u32, mint: i64, maxt: i64) -> usize {
        let n = self.series_num_samples(id) as usize;
        let (lo, hi) = self.series_time_range(id);
        if n == 0 || hi < mint || lo > maxt {
            return 0;
        }
        let (a, b) = (lo.max(mint), hi.min(maxt));
        if hi == lo {
            return n;
        }
        let part = (i128::from(b) - i128::from(a)) * n as i128 / (i128::from(hi) - i128::from(lo));
        (part as usize + 1).min(n)
    }

    /// Appends the samples of series `id` with `mint <= t <= maxt` to `out`,
    /// sorted by time.
    pub fn read_samples(&self, id: u32, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
        self.visit_samples(id, mint, maxt, false, &mut |s, _, _| {
            out.extend_from_slice(s);
            ControlFlow::Continue(())
        })
    }

    /// Hands `sink` the samples of series `id` with `mint <= t <= maxt`,
    /// in time order, a slice at a time: from the decoded-page cache
    /// without copying them, when the block has one.
    ///
    /// With `summaries`, a slice that is all of the series' rows in a
    /// cached page, or a whole chunk of them where the time range cuts
    /// them ([`summarized_chunks`]), comes with the page's [`RunSummary`]
    /// of it (kept, or computed once) when the page was found decoded,
    /// not when this read decoded it; readers that would not use it pass
    /// `false`. The read ends early when `sink` breaks.
    pub fn visit_samples(
        &self,
        id: u32,
        mint: i64,
        maxt: i64,
        summaries: bool,
        sink: &mut RunSink<'_>,
    ) -> Result<()> {
        if let Some(cache) = &self.cache {
            if id as usize >= self.series.len() {
                return Err(Error::Invalid(format!(
                    "series id {id} out of range (block has {})",
                    self.series.len()
                )));
            }
            let Some((a, b)) = self.wanted_rows(id, mint, maxt) else {
                return Ok(());
            };
            return PagedRead::new(self, cache).read_runs(id, a, b, mint, maxt, summaries, sink);
        }
        let mut go = true;
        self.read_many(&[id], mint, maxt, &mut |_, s| {
            if go {
                go = sink(s, None, Continuity::UNKNOWN).is_continue();
            }
        })
    }

    /// The rows of series `id` (in range) that can hold samples in
    /// `[mint, maxt]`, if any.
    fn wanted_rows(&self, id: u32, mint: i64, maxt: i64) -> Option<(u64, u64)> {
        let (lo, hi) = self.series_time_range(id);
        if hi < mint || lo > maxt {
            return None;
        }
        let (a, b) = self.narrow(id, mint, maxt);
        (a < b).then_some((a, b))
    }

    /// Reads many series in one pass. `ids` must be strictly ascending.
    /// Decodes each needed page once and calls `f(id, samples)` for every
    /// series with at least one sample in `[mint, maxt]`, in id order.
    pub fn read_many(
        &self,
        ids: &[u32],
        mint: i64,
        maxt: i64,
        f: &mut dyn FnMut(u32, &[Sample]),
    ) -> Result<()> {
        if let Some(w) = ids.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::Invalid(format!(
                "read_many: ids not strictly ascending ({} then {})",
                w[0], w[1]
            )));
        }
        if let Some(&last) = ids.last()
            && last as usize >= self.series.len()
        {
            return Err(Error::Invalid(format!(
                "series id {last} out of range (block has {})",
                self.series.len()
            )));
        }
        // Row ranges to read, one per series that can contribute.
        let wanted: Vec<(u32, u64, u64)> = ids
            .iter()
            .filter_map(|&id| self.wanted_rows(id, mint, maxt).map(|(a, b)| (id, a, b)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if let Some(cache) = &self.cache {
            let mut read = PagedRead::new(self, cache);
            let mut buf = Vec::new();
            for &(id, a, b) in &wanted {
                buf.clear();
                read.read(id, a, b, mint, maxt, &mut |s| buf.extend_from_slice(s))?;
                if !buf.is_empty() {
                    f(id, &buf);
                }
            }
            return Ok(());
        }
        self.read_ranges(&wanted, mint, maxt, f)
    }

    /// The number of pages starting at or before global row `row`
    /// (`pages.partition_point(|p| p.first_row <= row)`), searched from
    /// where `row` lies in proportion: pages hold the same number of rows
    /// except at row-group ends, so the guess is a page or two off, where
    /// bisecting a large block's thousand pages probes ten cold places.
    fn pages_through(&self, row: u64) -> usize {
        let rows = self.rg_start.last().copied().unwrap_or(0).max(1);
        let guess = (u128::from(row) * self.pages.len() as u128 / u128::from(rows)) as usize;
        partition_point_near(&self.pages, guess, |p| p.first_row <= row)
    }

    /// One past the last global row of timestamp page `i`.
    fn page_end(&self, i: usize) -> u64 {
        self.pages
            .get(i + 1)
            .map_or(self.rg_start[self.rg_start.len() - 1], |p| p.first_row)
    }

    /// The row range of series `id` (in range), without the leading and trailing pages
    /// that lie wholly inside the series and wholly outside `[mint, maxt]`.
    fn narrow(&self, id: u32, mint: i64, maxt: i64) -> (u64, u64) {
        let (a, b) = self.series.rows(id as usize).expect("series id in range");
        let page_end = |i: usize| self.page_end(i);
        // Page containing row a.
        let first = self.pages_through(a).saturating_sub(1);
        let mut lo = a;
        let mut i = first;
        while i < self.pages.len()
            && self.pages[i].first_row >= a
            && page_end(i) <= b
            && self.pages[i].max_t < mint
        {
            lo = page_end(i);
            i += 1;
        }
        let mut hi = b;
        // Pages starting before row `b`.
        let mut j = b.checked_sub(1).map_or(0, |r| self.pages_through(r));
        while j > i && j > 0 {
            let p = &self.pages[j - 1];
            if p.first_row >= lo && page_end(j - 1) <= b && p.min_t > maxt {
                hi = p.first_row;
                j -= 1;
            } else {
                break;
            }
        }
        (lo, hi.max(lo))
    }

    /// Reads the row ranges of `wanted` (ascending, disjoint) with pooled
    /// column cursors and hands each series' in-range samples to `f`.
    fn read_ranges(
        &self,
        wanted: &[(u32, u64, u64)],
        mint: i64,
        maxt: i64,
        f: &mut dyn FnMut(u32, &[Sample]),
    ) -> Result<()> {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let (cols, buf) = &mut *scratch;
                let r = self.read_ranges_with(wanted, mint, maxt, f, cols, buf);
                // Threads live long: do not keep the buffers of a huge read.
                if buf.capacity() > SCRATCH_KEEP_ROWS {
                    *scratch = (Columns::default(), Vec::new());
                }
                r
            }
            // Re-entered from `f`: fresh buffers.
            Err(_) => self.read_ranges_with(
                wanted,
                mint,
                maxt,
                f,
                &mut Columns::default(),
                &mut Vec::new(),
            ),
        })
    }

    fn read_ranges_with(
        &self,
        wanted: &[(u32, u64, u64)],
        mint: i64,
        maxt: i64,
        f: &mut dyn FnMut(u32, &[Sample]),
        cols: &mut Columns,
        buf: &mut Vec<Sample>,
    ) -> Result<()> {
        let path = &self.samples_path;
        let mut cursor: Option<Cursor> = None;
        for &(id, a, b) in wanted {
            buf.clear();
            let mut row = a;
            while row < b {
                let rg = self.rg_start.partition_point(|&s| s <= row) - 1;
                let rg_end = self.rg_start[rg + 1];
                let reusable = cursor.as_ref().is_some_and(|c| c.rg == rg && c.pos <= row);
                if !reusable {
                    if let Some(c) = cursor.take() {
                        self.release(c);
                    }
                    cursor = Some(self.acquire(rg, row)?);
                }
                let Some(c) = cursor.as_mut() else { continue };
                let n = b.min(rg_end) - row;
                self.read_rows(c, row, n as usize, cols)?;
                if !all_of_series(&cols.sid, id) {
                    return Err(Error::corruption(
                        path,
                        format!("rows of series {id} carry another series_id"),
                    ));
                }
                buf.extend(cols.ts.iter().zip(&cols.v).map(|(&t, &v)| Sample { t, v }));
                row += n;
            }
            if !increasing(buf) {
                return Err(self.disorder(id));
            }
            let lo = buf.partition_point(|s| s.t < mint);
            let hi = buf.partition_point(|s| s.t <= maxt);
            if lo < hi {
                f(id, &buf[lo..hi]);
            }
        }
        if let Some(c) = cursor {
            self.release(c);
        }
        Ok(())
    }

    /// Decodes rows `row..row + n` with cursor `c` (positioned at or before
    /// `row`) into `cols`, timestamps resolved. Returns the `ts_row` of row
    /// `row` (version 3).
    fn read_rows(
        &self,
        c: &mut Cursor,
        row: u64,
        n: usize,
        cols: &mut Columns,
    ) -> Result<Option<u64>> {
        let path = &self.samples_path;
        cols.sid.clear();
        cols.ts.clear();
        cols.v.clear();
        guarded(path, || {
            c.skip_to(path, row)?;
            // A page at a time: each has its own shape.
            let (mut at, end) = (row, row + n as u64);
            while at < end {
                let i = self.pages_through(at) - 1;
                let m = (self.page_end(i).min(end) - at) as usize;
                let mut shape = self.pages[i].shape;
                // The shape's `ts_row` is its first row's: rows from `at`.
                shape.ts_row = shape
                    .ts_row
                    .map(|r| r + (at - self.pages[i].first_row) as i64);
                c.read(path, m, shape, cols)?;
                if shape.series_as_table {
                    self.fill_series_ids(at, m, &mut cols.sid);
                }
                at += m as u64;
            }
            Ok(())
        })?;
        if self.times.is_none() {
            return Ok(None);
        }
        let first = cols.ts.first().map(|&r| r as u64);
        self.resolve_times(row, &mut cols.ts)?;
        Ok(first)
    }

    /// Appends the series id the series table gives each of global rows
    /// `row..row + n`.
    fn fill_series_ids(&self, row: u64, n: usize, out: &mut Vec<i32>) {
        let t = &self.series;
        let end = row + n as u64;
        let mut s = t.first_row.partition_point(|&f| f <= row).saturating_sub(1);
        let mut at = row;
        while at < end {
            let upto = t.rows(s).map_or(end, |(_, e)| e.min(end)).max(at);
            out.resize(out.len() + (upto - at) as usize, s as i32);
            (at, s) = (upto, s + 1);
        }
    }

    /// Replaces the `ts_row`s of global rows `first..first + ts.len()`
    /// (version 3) by the timestamps they name. Within a series they must
    /// be consecutive (the writer refers each series to one whole sequence),
    /// so a series' times are one run of `timestamps.parquet`; and because
    /// each sequence was one series' timestamps, a series whose times then
    /// do not increase points at `timestamps.parquet` ([`Block::disorder`]).
    fn resolve_times(&self, first: u64, ts: &mut [i64]) -> Result<()> {
        let Some(times) = &self.times else {
            return Ok(());
        };
        let total = times.num_rows();
        let t = &self.series;
        let mut s = t
            .first_row
            .partition_point(|&f| f <= first)
            .saturating_sub(1);
        let mut page: Option<Arc<DecodedPage>> = None;
        let mut k = 0;
        while k < ts.len() {
            // This series' rows within `ts`.
            let series_end = t.rows(s).map_or(u64::MAX, |(_, end)| end);
            let end = ((series_end.saturating_sub(first)) as usize).min(ts.len());
            let (start, mut row) = (ts[k], ts[k]);
            // Checked without stopping early, which vectorises; the
            // first bad row is looked for only to name it.
            let broken = ts[k..end].iter().enumerate().fold(false, |bad, (d, &x)| {
                bad | (x.wrapping_sub(start) != d as i64)
            });
            if broken {
                let j = (k..end)
                    .find(|&j| ts[j] != start.wrapping_add((j - k) as i64))
                    .unwrap_or(k);
                return Err(Error::corruption(
                    &self.samples_path,
                    format!(
                        "ts_row of series {s} not consecutive at row {}",
                        first + j as u64
                    ),
                ));
            }
            let last = start.checked_add((end - k) as i64 - 1);
            if start < 0 || last.is_none_or(|l| l as u64 >= total) {
                return Err(Error::corruption(
                    &self.samples_path,
                    format!(
                        "ts_row {start} of series {s} outside {TIMESTAMPS_FILE} ({total} rows)"
                    ),
                ));
            }
            let segment = k;
            while k < end {
                let r = row as u64;
                let holds =
                    |p: &DecodedPage| p.first_row <= r && r < p.first_row + p.times.len() as u64;
                let p = match page {
                    Some(p) if holds(&p) => p,
                    _ => self.times_page(times, times.page_of(r))?,
                };
                if !holds(&p) {
                    return Err(Error::corruption(
                        times.path(),
                        format!("page does not hold row {r}"),
                    ));
                }
                let off = (r - p.first_row) as usize;
                let n = (p.times.len() - off).min(end - k);
                ts[k..k + n].copy_from_slice(&p.times[off..off + n]);
                k += n;
                row += n as i64;
                page = Some(p);
            }
            // The series' time range bounds its timestamps (order is
            // checked by the caller, so the ends suffice).
            if let (Some(&lo), Some(&hi)) = (t.min_time.get(s), t.max_time.get(s))
                && segment < end
                && (ts[segment] < lo || ts[end - 1] > hi)
            {
                return Err(Error::corruption(
                    times.path(),
                    format!("timestamps of series {s} outside its time range"),
                ));
            }
            s += 1;
        }
        Ok(())
    }

    /// The error for timestamps of series `id` that do not increase: the
    /// samples file's fault before version 3, the timestamps file's from it.
    fn disorder(&self, id: impl std::fmt::Display) -> Error {
        let detail = format!("timestamps of series {id} not increasing");
        match &self.times {
            Some(t) => Error::corruption(t.path(), detail),
            None => Error::corruption(&self.samples_path, detail),
        }
    }

    /// Decoded page `i` of `timestamps.parquet`: through the cache like
    /// sample pages, or without one from the block's few last pages.
    fn times_page(&self, times: &Times, i: usize) -> Result<Arc<DecodedPage>> {
        let decode = || -> Result<DecodedPage> {
            let (first, t) = guarded(times.path(), || times.decode_page(i))?;
            Ok(DecodedPage::times(first, t))
        };
        if let Some(cache) = &self.cache {
            let id = page_id(times.path(), i)? | cache::TIMES_PAGE;
            return cached_page(&LAST_TIMES_PAGE, cache, self.cache_key, id, decode);
        }
        let found = self
            .times_memo
            .lock()
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, p)| p.clone());
        if let Some(p) = found {
            return Ok(p);
        }
        let p = Arc::new(decode()?);
        let mut memo = self.times_memo.lock();
        if memo.len() >= TIMES_MEMO {
            memo.remove(0);
        }
        memo.push((i, p.clone()));
        Ok(p)
    }

    /// A cursor on row group `rg` positioned at or before global row `row`:
    /// from the pool if one fits, else new.
    fn acquire(&self, rg: usize, row: u64) -> Result<Cursor> {
        {
            let mut pool = self.pool.lock();
            let best = pool
                .iter()
                .enumerate()
                .filter(|(_, c)| c.rg == rg && c.pos <= row)
                .max_by_key(|(_, c)| c.pos)
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Ok(pool.remove(i));
            }
        }
        guarded(&self.samples_path, || self.new_cursor(rg))
    }

    /// Returns a cursor to the pool (dropped if it is at the end of its row
    /// group). The pool is kept in order of use: when it is full, the least
    /// recently returned cursor makes room, so cursors left behind by
    /// earlier reads (positioned past where new reads start) age out instead
    /// of keeping every new cursor from being pooled.
    fn release(&self, c: Cursor) {
        if c.pos >= self.rg_start[c.rg + 1] {
            return;
        }
        let mut pool = self.pool.lock();
        if pool.len() >= CURSOR_POOL {
            pool.remove(0);
        }
        pool.push(c);
    }

    fn new_cursor(&self, rg: usize) -> Result<Cursor> {
        let path = &self.samples_path;
        let md = &self.metadata;
        let rg_meta = md.row_group(rg);
        let rows = (self.rg_start[rg + 1] - self.rg_start[rg]) as usize;
        let offset_index = md
            .offset_index()
            .ok_or_else(|| Error::corruption(path, "page index missing"))?;
        let schema = md.file_metadata().schema_descr();
        let page_reader = |c: usize| -> Result<Box<dyn PageReader>> {
            let locations = offset_index[rg][c].page_locations().clone();
            pages::column_pages(self.data.clone(), rg_meta.column(c), rows, locations)
                .map_err(|e| Error::corruption(path, format!("row group {rg} column {c}: {e}")))
        };
        Ok(Cursor {
            rg,
            pos: self.rg_start[rg],
            sid: ColumnReaderImpl::new(schema.column(0), page_reader(0)?),
            ts: ColumnReaderImpl::new(schema.column(1), page_reader(1)?),
            v: ColumnReaderImpl::new(schema.column(2), page_reader(2)?),
            dec: if self.decimal {
                Some((
                    ColumnReaderImpl::new(schema.column(3), page_reader(3)?),
                    ColumnReaderImpl::new(schema.column(4), page_reader(4)?),
                ))
            } else {
                None
            },
        })
    }

    /// Checks decoded rows `first..first + n` (a page): each row's series id
    /// is the one the series table gives that row, and timestamps increase
    /// within each series. Returns what the page knows of its runs: the
    /// widest gap between consecutive samples of a series (0 when no
    /// series has two), and whether a value is a stale marker.
    fn check_page(&self, first: u64, cols: &Columns) -> Result<Continuity> {
        let path = &self.samples_path;
        let t = &self.series;
        if cols.sid.len() != cols.ts.len() || cols.ts.len() != cols.v.len() {
            return Err(Error::corruption(path, "columns differ in length"));
        }
        let mut s = t
            .first_row
            .partition_point(|&f| f <= first)
            .saturating_sub(1);
        let (mut max_gap, mut stale) = (0i64, false);
        // A series' run at a time, each checked without stopping early
        // (which vectorises); the offending row is looked for only to
        // name it.
        let mut k = 0;
        while k < cols.ts.len() {
            let row = first + k as u64;
            let Some((_, series_end)) = t.rows(s) else {
                let sid = cols.sid[k];
                return Err(Error::corruption(
                    path,
                    format!("row {row} carries series_id {sid}, the series table has no more"),
                ));
            };
            if series_end <= row {
                s += 1;
                continue;
            }
            let end = ((series_end - first) as usize).min(cols.ts.len());
            if !all_of_series(&cols.sid[k..end], s as u32) {
                let j = (k..end)
                    .find(|&j| cols.sid[j] as u32 != s as u32)
                    .unwrap_or(k);
                return Err(Error::corruption(
                    path,
                    format!(
                        "row {} carries series_id {}, the series table says {s}",
                        first + j as u64,
                        cols.sid[j]
                    ),
                ));
            }
            let ts = &cols.ts[k..end];
            let (gap, disorder) = ts
                .iter()
                .zip(ts.get(1..).unwrap_or_default())
                .fold((0i64, false), |(gap, bad), (&a, &b)| {
                    (gap.max(b.saturating_sub(a)), bad | (b <= a))
                });
            if disorder {
                return Err(self.disorder(s));
            }
            max_gap = max_gap.max(gap);
            stale |= cols.v[k..end]
                .iter()
                .fold(false, |st, &v| st | is_stale_nan(v));
            (k, s) = (end, s + 1);
        }
        Ok(Continuity { max_gap, stale })
    }

    /// Row groups of `samples.parquet`.
    #[cfg(test)]
    pub(crate) fn num_row_groups(&self) -> usize {
        self.rg_start.len() - 1
    }

    /// Takes row group `rg`'s bytes out of the process's resident set: the
    /// mapping stays, the file's pages stay in the page cache, and a later
    /// read maps them in again. Sequential scans call it behind them, so a
    /// merge reading blocks through once does not keep them all resident.
    fn unmap_row_group(&self, rg: usize) {
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for c in self.metadata.row_group(rg).columns() {
            let (offset, len) = c.byte_range();
            lo = lo.min(offset);
            hi = hi.max(offset.saturating_add(len));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        // Whole pages inside the row group only: its neighbours stay.
        let start = lo.div_ceil(page) * page;
        let end = (hi.min(self.data.len() as u64) / page) * page;
        if start >= end {
            return;
        }
        // SAFETY: `data` of samples.parquet is always a read-only shared
        // mapping of the whole file (`load_file` with `map`), whose start
        // is page-aligned, and `start..end` lies inside it. MADV_DONTNEED on
        // a shared file mapping only drops page-table entries: the next
        // access reads the same (immutable) file contents again, so readers
        // on other threads see no change but a page fault.
        let rc = unsafe {
            libc::madvise(
                self.data.as_ptr().add(start as usize) as *mut libc::c_void,
                (end - start) as usize,
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            tracing::debug!(path = %self.samples_path.display(), rg, "madvise failed");
        }
    }

    /// Streams every series (in id order) with its samples in `[mint, maxt]`,
    /// decoding the file sequentially; used by merges.
    pub(crate) fn scan(&self, mint: i64, maxt: i64) -> SeriesScan<'_> {
        SeriesScan {
            block: self,
            cursor: None,
            cols: Columns::default(),
            id: 0,
            mint,
            maxt,
            ts_start: None,
        }
    }
}

thread_local! {
    /// Decode buffers of [`Block::read_ranges`], kept per thread so that
    /// reading series after series does not allocate.
    static SCRATCH: std::cell::RefCell<(Columns, Vec<Sample>)> =
        std::cell::RefCell::new((Columns::default(), Vec::new()));

    /// The decoded page a thread used last, as (block cache key, page
    /// index, page): neighbouring series share pages, so reading series
    /// after series mostly finds its page here, without the cache's locks.
    static LAST_PAGE: LastPage = const { std::cell::RefCell::new(None) };

    /// The same for pages of `timestamps.parquet` (version 3).
    static LAST_TIMES_PAGE: LastPage = const { std::cell::RefCell::new(None) };
}

/// A thread's last decoded page: (block cache key, page id, page).
type LastPage = std::cell::RefCell<Option<(u64, u32, Arc<DecodedPage>)>>;

/// Page `id` (in the cache's numbering) of the block with cache key `key`:
/// the thread's last page in `last`, else from `cache`, else `decode`d
/// and cached; it becomes the thread's last page.
fn cached_page(
    last: &'static std::thread::LocalKey<LastPage>,
    cache: &BlockCache,
    key: u64,
    id: u32,
    decode: impl FnOnce() -> Result<DecodedPage>,
) -> Result<Arc<DecodedPage>> {
    let hit = last.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(k, j, _)| *k == key && *j == id)
            .map(|(_, _, p)| p.clone())
    });
    if let Some(p) = hit {
        cache.note_hit();
        p.mark_reused();
        return Ok(p);
    }
    let p = match cache.get(key, u64::from(id)) {
        Some(p) => {
            p.mark_reused();
            p
        }
        None => {
            let p = Arc::new(decode()?);
            cache.insert(key, u64::from(id), p.clone());
            p
        }
    };
    last.with(|l| *l.borrow_mut() = Some((key, id, p.clone())));
    Ok(p)
}

/// Page index `i` of the file at `path` as a cache page id (below
/// [`cache::TIMES_PAGE`], the bit that tells the two files apart).
fn page_id(path: &Path, i: usize) -> Result<u32> {
    u32::try_from(i)
        .ok()
        .filter(|&i| i < cache::TIMES_PAGE)
        .ok_or_else(|| Error::corruption(path, "too many pages for the cache"))
}

/// A read through the decoded-page cache: pages come from the cache or are
/// decoded whole (with a pooled cursor, returned when the read ends),
/// checked and cached.
struct PagedRead<'a> {
    block: &'a Block,
    cache: &'a BlockCache,
    cursor: Option<Cursor>,
}

impl Drop for PagedRead<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.cursor.take() {
            self.block.release(c);
        }
    }
}

impl<'a> PagedRead<'a> {
    fn new(block: &'a Block, cache: &'a BlockCache) -> PagedRead<'a> {
        PagedRead {
            block,
            cache,
            cursor: None,
        }
    }

    /// Hands `sink` the samples of rows `[a, b)`, all of series `id` (in
    /// range: the block's public reads check), with `mint <= t <= maxt`,
    /// in order, one slice per page.
    fn read(
        &mut self,
        id: u32,
        a: u64,
        b: u64,
        mint: i64,
        maxt: i64,
        sink: &mut dyn FnMut(&[Sample]),
    ) -> Result<()> {
        self.read_runs(id, a, b, mint, maxt, false, &mut |s, _, _| {
            sink(s);
            ControlFlow::Continue(())
        })
    }

    /// [`PagedRead::read`], with each slice's summary (`summaries`) when
    /// it is all of the series' rows in its page, or a whole chunk of
    /// them (with `summaries` a cut run comes in several slices); ends
    /// when `sink` breaks.
    #[allow(clippy::too_many_arguments)]
    fn read_runs(
        &mut self,
        id: u32,
        a: u64,
        b: u64,
        mint: i64,
        maxt: i64,
        summaries: bool,
        sink: &mut RunSink<'_>,
    ) -> Result<()> {
        let (first_row, end_row) = self
            .block
            .series
            .rows(id as usize)
            .expect("series id in range");
        let mut row = a;
        let mut last_t = None;
        while row < b {
            let i = self.block.pages_through(row) - 1;
            let page = self.page(i)?;
            if row < page.first_row || row >= page.end_row() {
                return Err(Error::corruption(
                    &self.block.samples_path,
                    format!("page {i} does not hold row {row}"),
                ));
            }
            let lo = (row - page.first_row) as usize;
            let hi = (b.min(page.end_row()) - page.first_row) as usize;
            let run = &page.samples[lo..hi];
            // Within a page the decoder checked the order; across pages here.
            if let (Some(t), Some(first)) = (last_t, run.first())
                && first.t <= t
            {
                return Err(self.block.disorder(id));
            }
            last_t = run.last().map(|x| x.t);
            // Only the first and last pages of a read reach outside the
            // range: `from..to` of the page is in it.
            let from = match run.first() {
                Some(x) if x.t < mint => lo + first_at_or_after(run, mint),
                _ => lo,
            };
            // `maxt < x.t`, so `maxt + 1` does not overflow.
            let to = match run.last() {
                Some(x) if x.t > maxt => lo + first_at_or_after(run, maxt + 1),
                _ => hi,
            };
            if from < to {
                // The series' rows in this page.
                let whole = (
                    (first_row.max(page.first_row) - page.first_row) as usize,
                    (end_row.min(page.end_row()) - page.first_row) as usize,
                );
                // A page decoded for this read gets no summaries (see
                // `DecodedPage::reused`): the caller folds its samples.
                let go = if !summaries || !page.reused() {
                    sink(&page.samples[from..to], None, page.continuity)
                } else if (from, to) == whole {
                    let summary = (to - from >= SUMMARY_MIN_RUN).then(|| page.summary(from, to));
                    sink(&page.samples[from..to], summary, page.continuity)
                } else {
                    summarized_chunks(&page, whole, from, to, sink)
                };
                if go.is_break() {
                    return Ok(());
                }
            }
            row = page.first_row + hi as u64;
        }
        Ok(())
    }

    /// Decoded page `i`: the thread's last page, the cache, or decoded now.
    fn page(&mut self, i: usize) -> Result<Arc<DecodedPage>> {
        let id = page_id(&self.block.samples_path, i)?;
        let (cache, key) = (self.cache, self.block.cache_key);
        cached_page(&LAST_PAGE, cache, key, id, || self.decode(i))
    }

    /// Decodes page `i` of all columns and checks it: every row carries
    /// the series id the series table gives its row, and timestamps
    /// increase within each series.
    fn decode(&mut self, i: usize) -> Result<DecodedPage> {
        let block = self.block;
        let path = &block.samples_path;
        let first = block.pages[i].first_row;
        let n = (block.page_end(i) - first) as usize;
        let rg = block.rg_start.partition_point(|&s| s <= first) - 1;
        let reusable = self
            .cursor
            .as_ref()
            .is_some_and(|c| c.rg == rg && c.pos <= first);
        if !reusable {
            if let Some(c) = self.cursor.take() {
                block.release(c);
            }
            self.cursor = Some(block.acquire(rg, first)?);
        }
        let Some(c) = self.cursor.as_mut() else {
            return Err(Error::corruption(path, "no cursor"));
        };
        let mut decode = |cols: &mut Columns| -> Result<DecodedPage> {
            block.read_rows(c, first, n, cols)?;
            let continuity = block.check_page(first, cols)?;
            let samples = cols
                .ts
                .iter()
                .zip(&cols.v)
                .map(|(&t, &v)| Sample { t, v })
                .collect();
            Ok(DecodedPage::new(first, samples, continuity))
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => decode(&mut scratch.0),
            Err(_) => decode(&mut Columns::default()),
        })
    }
}

/// What [`Block::visit_samples`] hands each slice to, with the slice's
/// summary when it is a whole run or chunk, and its page's
/// [`Continuity`]: `Break` ends the read.
pub type RunSink<'a> = dyn FnMut(&[Sample], Option<RunSummary>, Continuity) -> ControlFlow<()> + 'a;

/// Shortest run (or last chunk of a run) a page keeps a summary of: a
/// kept summary costs 128 bytes, as much as eight samples, uncharged to
/// the cache's budget, and a short run is cheap to scan anyway.
const SUMMARY_MIN_RUN: usize = 64;

/// Rows of the chunks a cut run is summarised in ([`summarized_chunks`]).
const SUMMARY_CHUNK: usize = 256;

/// Hands `sink` rows `from..to` of `page`, a part of the series' run
/// `whole` that a read's time range cut: the chunks of
/// [`SUMMARY_CHUNK`] rows from the run's start that lie within with
/// their summaries, the rest without. A window that ends inside a run
/// (an instant query's window ends at its evaluation time, in the newest
/// block) scans at most a chunk at either end instead of the whole part;
/// chunks are counted from the run's start, so windows cut anywhere
/// share their summaries. A page keeps at most one summary per chunk and
/// one per run: about 3 % of its samples' bytes (6 % at worst, with the
/// list's spare room).
fn summarized_chunks(
    page: &DecodedPage,
    (start, end): (usize, usize),
    from: usize,
    to: usize,
    sink: &mut RunSink<'_>,
) -> ControlFlow<()> {
    let mut pos = from;
    while pos < to {
        // The chunk holding `pos`.
        let chunk_start = start + (pos - start) / SUMMARY_CHUNK * SUMMARY_CHUNK;
        let chunk_end = (chunk_start + SUMMARY_CHUNK).min(end);
        let summary =
            (pos == chunk_start && chunk_end <= to && chunk_end - chunk_start >= SUMMARY_MIN_RUN)
                .then(|| page.summary(chunk_start, chunk_end));
        let next = chunk_end.min(to);
        sink(&page.samples[pos..next], summary, page.continuity)?;
        pos = next;
    }
    ControlFlow::Continue(())
}

/// Decoded `timestamps.parquet` pages a block keeps when it has no cache.
const TIMES_MEMO: usize = 8;

/// Rows beyond which a thread's decode buffers are freed after a read.
const SCRATCH_KEEP_ROWS: usize = 1 << 16;

/// Cursors kept per block for reuse: creating one costs five zstd
/// decompression and five compression contexts (each a `cpuid`, which
/// traps to the hypervisor on virtual machines: tens of microseconds),
/// reusing one costs nothing. Enough for a few threads each reading its
/// share of the series in ascending order; each idle cursor holds its
/// decompression contexts and current pages (several hundred KiB).
const CURSOR_POOL: usize = 4;

/// Decoded columns for a run of rows: series ids, timestamps and the
/// reconstructed values, plus the raw value columns of version 2.
#[derive(Default)]
struct Columns {
    sid: Vec<i32>,
    ts: Vec<i64>,
    v: Vec<f64>,
    double: Vec<f64>,
    int: Vec<i64>,
    scale: Vec<i32>,
}

impl Columns {
    /// Appends to `v` the values of the version-2 value columns: a row with
    /// `value_scale = k >= 0` has the value `decimal::decode(value_int, k)`,
    /// a row with `value_scale = -1` the double `value`. `double` and `int`
    /// may be empty when no row uses them.
    fn merge_values(&mut self, path: &Path) -> Result<()> {
        let n = self.scale.len();
        let bad_len = |v: usize| v != n && v != 0;
        if bad_len(self.double.len()) || bad_len(self.int.len()) {
            return Err(Error::corruption(path, "value columns differ in length"));
        }
        self.v.reserve(n);
        // Common case: one decimal scale for the whole run (the writer picks
        // a scale per series and page): the same formula, without a branch
        // per row.
        if let Some(&k) = self.scale.first()
            && k != i32::from(decimal::DOUBLE_SCALE)
            && self.int.len() == n
            && self.scale.iter().all(|&s| s == k)
        {
            let p = usize::try_from(k)
                .ok()
                .and_then(|i| decimal::POW10.get(i))
                .copied()
                .ok_or_else(|| Error::corruption(path, format!("value_scale {k} out of range")))?;
            self.v.extend(self.int.iter().map(|&m| m as f64 / p));
            return Ok(());
        }
        let pow = |s: i32| {
            usize::try_from(s)
                .ok()
                .and_then(|i| decimal::POW10.get(i))
                .copied()
                .ok_or_else(|| Error::corruption(path, format!("value_scale {s} out of range")))
        };
        let missing = || Error::corruption(path, "value column skipped but needed");
        // Scales change only between runs: cache the last power of ten.
        let (mut k, mut p) = (0, 1.0);
        for (r, &s) in self.scale.iter().enumerate() {
            let v = if s == i32::from(decimal::DOUBLE_SCALE) {
                *self.double.get(r).ok_or_else(missing)?
            } else {
                if s != k {
                    (k, p) = (s, pow(s)?);
                }
                *self.int.get(r).ok_or_else(missing)? as f64 / p
            };
            self.v.push(v);
        }
        Ok(())
    }
}

/// Column readers of one row group, all positioned at global row `pos`.
/// Moving forward skips whole pages without decompressing them (the page
/// index gives their row counts); moving backward needs a new cursor.
struct Cursor {
    rg: usize,
    pos: u64,
    sid: ColumnReaderImpl<Int32Type>,
    ts: ColumnReaderImpl<Int64Type>,
    v: ColumnReaderImpl<DoubleType>,
    /// `value_int` and `value_scale` (version 2).
    dec: Option<(ColumnReaderImpl<Int64Type>, ColumnReaderImpl<Int32Type>)>,
}

impl Cursor {
    fn skip_to(&mut self, path: &Path, row: u64) -> Result<()> {
        let n = (row - self.pos) as usize;
        if n == 0 {
            return Ok(());
        }
        let err = |e: parquet::errors::ParquetError| {
            Error::corruption(path, format!("cannot skip rows: {e}"))
        };
        let (int, scale) = match &mut self.dec {
            Some((i, s)) => (
                i.skip_records(n).map_err(err)?,
                s.skip_records(n).map_err(err)?,
            ),
            None => (n, n),
        };
        let skipped = [
            self.sid.skip_records(n).map_err(err)?,
            self.ts.skip_records(n).map_err(err)?,
            self.v.skip_records(n).map_err(err)?,
            int,
            scale,
        ];
        if skipped != [n; 5] {
            return Err(Error::corruption(
                path,
                format!("skipped {skipped:?} rows, want {n}"),
            ));
        }
        self.pos = row;
        Ok(())
    }

    /// Decodes the next `n` rows, all within one page of shape `shape`,
    /// and appends them to `out`. Columns the shape gives are not decoded
    /// (skipped, which for a whole page costs no decompression) but
    /// filled in from it; but not `series_id`, which the caller fills in
    /// from the series table when the shape says so.
    fn read(&mut self, path: &Path, n: usize, shape: PageShape, out: &mut Columns) -> Result<()> {
        // The caller fills in the series ids the table gives.
        if shape.series_as_table {
            skip_column(path, &mut self.sid, n)?;
        } else {
            read_column(path, &mut self.sid, n, &mut out.sid)?;
        }
        match shape.ts_row {
            Some(first) => {
                skip_column(path, &mut self.ts, n)?;
                out.ts.extend((first..).take(n));
            }
            None => read_column(path, &mut self.ts, n, &mut out.ts)?,
        }
        match &mut self.dec {
            None => read_column(path, &mut self.v, n, &mut out.v)?,
            Some((int, scale)) => {
                out.double.clear();
                out.int.clear();
                out.scale.clear();
                // One scale for the page: its value column alone.
                if let Some(k) = shape.scale {
                    skip_column(path, scale, n)?;
                    if k == decimal::DOUBLE_SCALE {
                        skip_column(path, int, n)?;
                        read_column(path, &mut self.v, n, &mut out.v)?;
                    } else {
                        skip_column(path, &mut self.v, n)?;
                        read_column(path, int, n, &mut out.int)?;
                        // `open_samples` admits only scales in 0..=18.
                        let p = decimal::POW10[k as usize];
                        out.v.extend(out.int.iter().map(|&m| m as f64 / p));
                    }
                    self.pos += n as u64;
                    return Ok(());
                }
                read_column(path, scale, n, &mut out.scale)?;
                // Decode a value column only if a row uses it; skipping
                // whole pages costs no decompression.
                let doubles = out
                    .scale
                    .iter()
                    .filter(|&&s| s == i32::from(decimal::DOUBLE_SCALE))
                    .count();
                if doubles > 0 {
                    read_column(path, &mut self.v, n, &mut out.double)?;
                } else {
                    skip_column(path, &mut self.v, n)?;
                }
                if doubles < n {
                    read_column(path, int, n, &mut out.int)?;
                } else {
                    skip_column(path, int, n)?;
                }
                out.merge_values(path)?;
            }
        }
        self.pos += n as u64;
        Ok(())
    }
}

/// Do all of `ids` name series `id`? (Without stopping early, which
/// vectorises: the answer is almost always yes.)
fn all_of_series(ids: &[i32], id: u32) -> bool {
    !ids.iter().fold(false, |bad, &s| bad | (s as u32 != id))
}

/// Do the timestamps of `s` strictly increase? (Without stopping early.)
fn increasing(s: &[Sample]) -> bool {
    let next = s.get(1..).unwrap_or_default();
    !s.iter()
        .zip(next)
        .fold(false, |bad, (a, b)| bad | (a.t >= b.t))
}

/// Decodes the next `n` values of `r` and appends them to `out`.
fn read_column<T: DataType>(
    path: &Path,
    r: &mut ColumnReaderImpl<T>,
    n: usize,
    out: &mut Vec<T::T>,
) -> Result<()> {
    out.reserve(n);
    let want = out.len() + n;
    while out.len() < want {
        let before = out.len();
        let (records, _, _) = r
            .read_records(want - before, None, None, out)
            .map_err(|e| Error::corruption(path, format!("cannot decode: {e}")))?;
        if records == 0 || out.len() != before + records {
            return Err(Error::corruption(
                path,
                "fewer rows than the page index promises",
            ));
        }
    }
    Ok(())
}

fn skip_column<T: DataType>(path: &Path, r: &mut ColumnReaderImpl<T>, n: usize) -> Result<()> {
    let skipped = r
        .skip_records(n)
        .map_err(|e| Error::corruption(path, format!("cannot skip rows: {e}")))?;
    if skipped != n {
        return Err(Error::corruption(
            path,
            format!("skipped {skipped} rows, want {n}"),
        ));
    }
    Ok(())
}

/// Sequential iterator over all series of a block; see [`Block::scan`].
/// Row groups it has read through leave the resident set.
pub(crate) struct SeriesScan<'a> {
    block: &'a Block,
    cursor: Option<Cursor>,
    cols: Columns,
    id: u32,
    mint: i64,
    maxt: i64,
    /// Version 3: the first `ts_row` of the series last returned.
    ts_start: Option<u64>,
}

impl Drop for SeriesScan<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.cursor.take() {
            self.block.unmap_row_group(c.rg);
        }
    }
}

impl SeriesScan<'_> {
    /// Which timestamps the series last returned has, as `(first row in
    /// timestamps.parquet, rows)`: two series of this block with the same
    /// key have the same timestamps (version 3; `None` before it).
    pub(crate) fn times_key(&self) -> Option<(u64, u32)> {
        let n = *self
            .block
            .series
            .num_rows
            .get(self.id.checked_sub(1)? as usize)?;
        Some((self.ts_start?, n))
    }

    /// The next series (possibly with no samples in range), or `None` at the end.
    pub(crate) fn next_series(&mut self, out: &mut Vec<Sample>) -> Result<Option<u32>> {
        out.clear();
        self.ts_start = None;
        let block = self.block;
        let path = &block.samples_path;
        let id = self.id;
        if id as usize >= block.series.len() {
            return Ok(None);
        }
        let (mut row, end) = block.series.rows(id as usize).expect("series id in range");
        while row < end {
            let rg = block.rg_start.partition_point(|&s| s <= row) - 1;
            if self.cursor.as_ref().is_none_or(|c| c.rg != rg) {
                if let Some(done) = self.cursor.take() {
                    block.unmap_row_group(done.rg);
                }
                self.cursor = Some(guarded(path, || block.new_cursor(rg))?);
            }
            let Some(c) = self.cursor.as_mut() else {
                continue;
            };
            let n = end.min(block.rg_start[rg + 1]) - row;
            let cols = &mut self.cols;
            let first = block.read_rows(c, row, n as usize, cols)?;
            if row == block.series.first_row[id as usize] {
                self.ts_start = first;
            }
            if !all_of_series(&cols.sid, id) {
                return Err(Error::corruption(
                    path,
                    format!("rows of series {id} carry another series_id"),
                ));
            }
            let (mint, maxt) = (self.mint, self.maxt);
            out.extend(
                cols.ts
                    .iter()
                    .zip(&cols.v)
                    .filter(|(t, _)| (mint..=maxt).contains(*t))
                    .map(|(&t, &v)| Sample { t, v }),
            );
            row += n;
        }
        if !increasing(out) {
            return Err(block.disorder(id));
        }
        self.id += 1;
        Ok(Some(id))
    }
}

type SamplesIndex = (Arc<ParquetMetaData>, Vec<u64>, Vec<TsPage>);

/// The minimum and maximum of an `INT32` column over rows `first..end` of
/// a row group (of `rows` rows), if the column has a page of exactly those
/// rows and the column index gives both.
fn page_min_max_i32(
    offsets: &OffsetIndexMetaData,
    index: &ColumnIndexMetaData,
    (first, end): (i64, i64),
    rows: i64,
) -> Option<(i32, i32)> {
    let locs = offsets.page_locations();
    let j = locs
        .binary_search_by_key(&first, |l| l.first_row_index)
        .ok()?;
    let page_end = locs.get(j + 1).map_or(rows, |n| n.first_row_index);
    let ColumnIndexMetaData::INT32(ci) = index else {
        return None;
    };
    // Parquet does not check the column index against the offset index.
    let pages = ci.min_values().len().min(ci.max_values().len());
    if page_end != end || j >= pages || j as u64 >= ci.num_pages() {
        return None;
    }
    Some((*ci.min_value(j)?, *ci.max_value(j)?))
}

/// Parses the footer and page index of `samples.parquet` and checks them:
/// schema, format metadata, row count, and a page index whose page
/// locations lie inside their column chunks.
fn open_samples(
    path: &Path,
    data: &Bytes,
    meta: &BlockMeta,
    times: Option<&Times>,
    series: &SeriesTable,
) -> Result<SamplesIndex> {
    let bad = |d: String| Error::corruption(path, d);
    let md = ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Required)
        .parse_and_finish(data)
        .map_err(|e| bad(format!("not a valid Parquet file: {e}")))?;
    let kvs = schema::check_file(path, &md, FileKind::Samples, meta.version)?;
    let rows = md.file_metadata().num_rows();
    if u64::try_from(rows).ok() != Some(meta.num_samples) {
        return Err(bad(format!(
            "{rows} rows, meta.json says {} samples",
            meta.num_samples
        )));
    }
    for (key, want) in [
        (schema::KV_MIN_TIME, meta.min_time),
        (schema::KV_MAX_TIME, meta.max_time),
    ] {
        match schema::kv_i64(path, &kvs, key)? {
            Some(v) if v == want => {}
            other => return Err(bad(format!("{key} is {other:?}, meta.json says {want}"))),
        }
    }
    let (Some(offset_index), Some(column_index)) = (md.offset_index(), md.column_index()) else {
        return Err(bad("page index missing".into()));
    };
    if offset_index.len() != md.num_row_groups() || column_index.len() != md.num_row_groups() {
        return Err(bad("page index does not cover every row group".into()));
    }
    let file_len = data.len() as u64;
    let columns = if meta.version >= 2 {
        schema::SAMPLES_COLUMNS
    } else {
        3
    };
    let mut rg_start = Vec::with_capacity(md.num_row_groups() + 1);
    let mut pages = Vec::new();
    let mut start = 0u64;
    for (rg_idx, rg) in md.row_groups().iter().enumerate() {
        let num_rows = u64::try_from(rg.num_rows())
            .map_err(|_| bad(format!("row group {rg_idx}: negative row count")))?;
        if num_rows == 0 {
            return Err(bad(format!("row group {rg_idx} is empty")));
        }
        rg_start.push(start);
        if offset_index[rg_idx].len() != columns || column_index[rg_idx].len() != columns {
            return Err(bad(format!(
                "row group {rg_idx}: page index has wrong column count"
            )));
        }
        for (c, oi) in offset_index[rg_idx].iter().enumerate() {
            let chunk = rg.column(c);
            let (cs, clen) = chunk.byte_range();
            let ce = cs
                .checked_add(clen)
                .filter(|&e| e <= file_len)
                .ok_or_else(|| {
                    bad(format!(
                        "row group {rg_idx} column {c}: chunk [{cs}, +{clen}) outside the file"
                    ))
                })?;
            let locs = oi.page_locations();
            if locs.is_empty() || locs[0].first_row_index != 0 {
                return Err(bad(format!(
                    "row group {rg_idx} column {c}: page index does not start at row 0"
                )));
            }
            for (i, l) in locs.iter().enumerate() {
                let (off, size) = (
                    l.offset as u64,
                    u64::try_from(l.compressed_page_size).unwrap_or(u64::MAX),
                );
                if l.offset < 0 || off < cs || off.checked_add(size).is_none_or(|e| e > ce) {
                    return Err(bad(format!(
                        "row group {rg_idx} column {c} page {i}: outside its column chunk"
                    )));
                }
                let next_first = locs.get(i + 1).map_or(rg.num_rows(), |n| n.first_row_index);
                if l.first_row_index >= next_first || next_first > rg.num_rows() {
                    return Err(bad(format!(
                        "row group {rg_idx} column {c} page {i}: bad first row"
                    )));
                }
            }
            if c == 1 {
                let ColumnIndexMetaData::INT64(ci) = &column_index[rg_idx][1] else {
                    return Err(bad(format!(
                        "row group {rg_idx}: timestamp column index missing"
                    )));
                };
                if ci.min_values().len() != locs.len() || ci.max_values().len() != locs.len() {
                    return Err(bad(format!(
                        "row group {rg_idx}: timestamp column index has wrong page count"
                    )));
                }
                for (i, l) in locs.iter().enumerate() {
                    let (lo, hi) = (ci.min_values()[i], ci.max_values()[i]);
                    if lo > hi {
                        return Err(bad(format!(
                            "row group {rg_idx} page {i}: min timestamp above max"
                        )));
                    }
                    let (min_t, max_t) = match times {
                        None => (lo, hi),
                        Some(t) => {
                            if lo < 0 || hi as u64 >= t.num_rows() {
                                return Err(bad(format!(
                                    "row group {rg_idx} page {i}: ts_row {lo}..={hi} outside \
                                     {TIMESTAMPS_FILE} ({} rows)",
                                    t.num_rows()
                                )));
                            }
                            t.bounds(lo as u64, hi as u64)
                        }
                    };
                    let end = locs.get(i + 1).map_or(rg.num_rows(), |n| n.first_row_index);
                    let min_max = |c: usize| -> Option<(i32, i32)> {
                        page_min_max_i32(
                            &offset_index[rg_idx][c],
                            &column_index[rg_idx][c],
                            (l.first_row_index, end),
                            rg.num_rows(),
                        )
                    };
                    // The series the table places at the page's first and last rows.
                    let series_at = |row: i64| {
                        let row = start + row as u64;
                        series
                            .first_row
                            .partition_point(|&f| f <= row)
                            .saturating_sub(1) as i32
                    };
                    let ends = (series_at(l.first_row_index), series_at(end - 1));
                    let series_as_table = min_max(0) == Some(ends);
                    let consecutive = hi.checked_sub(lo) == Some(end - l.first_row_index - 1);
                    let one_series = series_as_table && ends.0 == ends.1;
                    let shape = PageShape {
                        series_as_table,
                        ts_row: (one_series && times.is_some() && consecutive).then_some(lo),
                        scale: if meta.version >= 2 {
                            min_max(4)
                                .filter(|(lo, hi)| lo == hi)
                                .and_then(|(k, _)| i8::try_from(k).ok())
                                .filter(|&k| {
                                    k >= decimal::DOUBLE_SCALE
                                        && k as i16 <= i16::from(decimal::MAX_SCALE)
                                })
                        } else {
                            None
                        },
                    };
                    pages.push(TsPage {
                        first_row: start + l.first_row_index as u64,
                        min_t,
                        max_t,
                        shape,
                    });
                }
            }
        }
        start += num_rows;
    }
    if start != meta.num_samples {
        return Err(bad(format!(
            "row groups hold {start} rows, meta.json says {} samples",
            meta.num_samples
        )));
    }
    rg_start.push(start);
    Ok((Arc::new(md), rg_start, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(double: &[f64], int: &[i64], scale: &[i32]) -> Columns {
        Columns {
            double: double.to_vec(),
            int: int.to_vec(),
            scale: scale.to_vec(),
            ..Columns::default()
        }
    }

    #[test]
    fn values_are_rebuilt_per_row() {
        let stale = f64::from_bits(crate::sample::STALE_NAN);
        let mut c = columns(
            &[0.0, 0.0, stale, 0.0],
            &[1_234_567, 1_234_568, 1_234_568, 7],
            &[2, 2, -1, 0],
        );
        c.merge_values(Path::new("samples.parquet")).unwrap();
        let bits: Vec<u64> = c.v.iter().map(|v| v.to_bits()).collect();
        let want = [12345.67f64, 12345.68, stale, 7.0].map(f64::to_bits);
        assert_eq!(bits, want);
        // A skipped (empty) column is fine when no row needs it.
        let mut c = columns(&[], &[5, 6], &[1, 1]);
        c.merge_values(Path::new("samples.parquet")).unwrap();
        assert_eq!(c.v, [0.5, 0.6]);
        // One scale for the whole run (the fast path): the same formula.
        let ints = [-7, 0, 1, 99_999_999, i64::from(i32::MAX), -(1 << 53)];
        for k in [0u8, 2, 9, 18] {
            let mut c = columns(&[], &ints, &[i32::from(k); 6]);
            c.merge_values(Path::new("samples.parquet")).unwrap();
            let got: Vec<u64> = c.v.iter().map(|v| v.to_bits()).collect();
            let want: Vec<u64> = ints
                .iter()
                .map(|&m| decimal::decode(m, k).to_bits())
                .collect();
            assert_eq!(got, want, "scale {k}");
        }
        let mut c = columns(&[], &[1], &[19]);
        assert!(c.merge_values(Path::new("samples.parquet")).is_err());
    }

    #[test]
    fn bad_value_columns_are_corruption() {
        for c in [
            columns(&[0.0], &[1], &[19]),
            columns(&[0.0], &[1], &[-2]),
            columns(&[0.0, 0.0], &[1], &[0, 0]),
            columns(&[], &[1], &[-1]),
        ] {
            let mut c = c;
            let e = c.merge_values(Path::new("samples.parquet")).unwrap_err();
            assert!(matches!(e, Error::Corruption { .. }), "{e:?}");
        }
    }

    /// Pages wholly inside one series take `series_id`, `ts_row` and (when
    /// one scale) `value_scale` from the column index, and read back the
    /// same as pages decoded whole, cached or not.
    #[test]
    fn page_shapes_come_from_the_column_index() {
        use crate::labels::Labels;
        let dir = tempfile::tempdir().unwrap();
        let long_int: Vec<Sample> = (0..9_000)
            .map(|j| Sample {
                t: j * 15_000,
                v: (j * 7 % 1000) as f64,
            })
            .collect();
        // Decimals with a NaN now and then: two scales in every page.
        let long_mixed: Vec<Sample> = (0..9_000)
            .map(|j| Sample {
                t: j * 15_000 + 3,
                v: if j % 100 == 0 {
                    f64::NAN
                } else {
                    j as f64 / 4.0
                },
            })
            .collect();
        let short: Vec<Sample> = (0..50).map(|j| Sample { t: j, v: 1.0 }).collect();
        let model = vec![
            (Labels::new(&[("__name__", "a_long_int")]), long_int),
            (Labels::new(&[("__name__", "b_long_mixed")]), long_mixed),
            (
                Labels::new(&[("__name__", "c_short"), ("i", "1")]),
                short.clone(),
            ),
            (Labels::new(&[("__name__", "c_short"), ("i", "2")]), short),
        ];
        let meta = super::super::write_block(
            dir.path(),
            &super::super::BlockWriteOptions::default(),
            model.clone().into_iter().map(Ok),
        )
        .unwrap()
        .unwrap();
        let path = dir.path().join(&meta.id);
        let block = Block::open(&path).unwrap();
        // Reads decompress with the thread's context (`pages.rs`), not
        // with one of parquet's per column chunk.
        let mut first = Vec::new();
        block
            .read_samples(0, i64::MIN, i64::MAX, &mut first)
            .unwrap();
        assert!(super::super::pages::thread_context_made());
        let shapes: Vec<PageShape> = block.pages.iter().map(|p| p.shape).collect();
        // 9,000 rows: three pages of 3,000 each for the long series, and
        // one page for both short ones.
        assert_eq!(shapes.len(), 7, "{shapes:?}");
        for (i, s) in shapes[..3].iter().enumerate() {
            assert!(s.series_as_table);
            assert_eq!(s.scale, Some(0));
            let first = block.pages[i].first_row as i64;
            assert_eq!(s.ts_row.map(|r| r - first), shapes[0].ts_row, "page {i}");
        }
        for s in &shapes[3..6] {
            assert!(s.series_as_table);
            assert!(s.ts_row.is_some());
            assert_eq!(s.scale, None);
        }
        // Two series share the last page (ids from the table, times
        // decoded); both store their values at scale 0.
        let shared = PageShape {
            series_as_table: true,
            ts_row: None,
            scale: Some(0),
        };
        assert_eq!(shapes[6], shared);

        let cached = Block::open_cached(&path, Some(Arc::new(BlockCache::new(64 << 20)))).unwrap();
        for b in [&block, &cached] {
            for (id, (_, want)) in model.iter().enumerate() {
                let mut got = Vec::new();
                b.read_samples(id as u32, i64::MIN, i64::MAX, &mut got)
                    .unwrap();
                let bits =
                    |s: &[Sample]| s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(want), "series {id}");
                // A range starting inside a page, across the next ones.
                got.clear();
                b.read_samples(id as u32, want[1].t, i64::MAX, &mut got)
                    .unwrap();
                assert_eq!(
                    bits(&got),
                    bits(&want[1..]),
                    "series {id} from its second sample"
                );
            }
        }
    }
}
