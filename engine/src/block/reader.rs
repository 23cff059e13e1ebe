//! Reading a block: [`Block::open`] verifies `meta.json`, both files' sizes
//! and CRC-32C, the Parquet schemas and the series table, memory-maps
//! `samples.parquet` and parses its footer and page index once. Reads then
//! build a row selection from the series' row range, narrowed to the pages
//! whose timestamps can overlap the query, so only those pages are decoded.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType, UInt32Type};
use bytes::Bytes;
use memmap2::Mmap;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy, RowSelector,
};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::page_index::column_index::ColumnIndexMetaData;

use crate::error::{Error, Result};
use crate::index::MemPostings;
use crate::labels::Labels;
use crate::sample::Sample;

use super::meta::{BlockMeta, read_meta};
use super::schema::{self, FileKind};
use super::series::SeriesTable;
use super::{SAMPLES_FILE, SERIES_FILE};

/// One data page of the timestamp column: its first row (global) and its
/// smallest and largest timestamp.
#[derive(Debug, Clone, Copy)]
struct TsPage {
    first_row: u64,
    min_t: i64,
    max_t: i64,
}

/// An open, verified, immutable block. Cheap to share (`Send + Sync`); reads
/// never re-parse the footer. The memory map keeps the data readable even
/// after the directory is deleted.
pub struct Block {
    dir: PathBuf,
    samples_path: PathBuf,
    meta: BlockMeta,
    size_bytes: u64,
    data: Bytes,
    reader_meta: ArrowReaderMetadata,
    /// First global row of each row group, plus the total at the end.
    rg_start: Vec<u64>,
    /// Timestamp-column pages of all row groups, in row order.
    pages: Vec<TsPage>,
    series: SeriesTable,
    postings: MemPostings,
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
    let bytes = if map {
        // SAFETY: block files are immutable once published: nothing writes or
        // truncates them, and deleting the directory leaves the mapping valid
        // (Linux keeps the inode until it is unmapped).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        Bytes::from_owner(mmap)
    } else {
        Bytes::from(std::fs::read(&path).map_err(|e| Error::io(&path, e))?)
    };
    if bytes.len() as u64 != fm.size {
        return Err(Error::corruption(
            &path,
            "file changed size while being opened",
        ));
    }
    let crc = crc32c::crc32c(&bytes);
    if crc != fm.crc32c {
        return Err(Error::corruption(
            &path,
            format!("CRC-32C is {crc:08x}, meta.json says {:08x}", fm.crc32c),
        ));
    }
    Ok(bytes)
}

impl Block {
    /// Opens and verifies the block in `dir`. Any inconsistency is
    /// [`Error::Corruption`] naming the offending file.
    pub fn open(dir: &Path) -> Result<Block> {
        let meta = read_meta(dir)?;
        let meta_path = dir.join(super::META_FILE);
        let mut names: Vec<&str> = meta.files.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if names != [SAMPLES_FILE, SERIES_FILE] {
            return Err(Error::corruption(
                &meta_path,
                format!("files are {names:?}, want {SAMPLES_FILE} and {SERIES_FILE}"),
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
        let samples_path = dir.join(SAMPLES_FILE);
        let data = load_file(dir, &meta, SAMPLES_FILE, true)?;
        let (reader_meta, rg_start, pages) =
            guarded(&samples_path, || open_samples(&samples_path, &data, &meta))?;
        let postings = series.postings();
        Ok(Block {
            dir: dir.to_owned(),
            samples_path,
            size_bytes: meta.files_size() + meta_size,
            meta,
            data,
            reader_meta,
            rg_start,
            pages,
            series,
            postings,
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
            + self.pages.len() * std::mem::size_of::<TsPage>()
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

    pub fn num_series(&self) -> u32 {
        self.series.len() as u32
    }

    /// Labels of series `id`; empty labels if `id` is out of range.
    pub fn labels(&self, id: u32) -> Labels {
        if (id as usize) < self.series.len() {
            self.series.labels(id)
        } else {
            Labels::default()
        }
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

    /// Number of samples of series `id` in the block.
    pub fn series_num_samples(&self, id: u32) -> u32 {
        self.series.num_rows.get(id as usize).copied().unwrap_or(0)
    }

    /// Appends the samples of series `id` with `mint <= t <= maxt` to `out`,
    /// sorted by time.
    pub fn read_samples(&self, id: u32, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
        self.read_many(&[id], mint, maxt, &mut |_, s| out.extend_from_slice(s))
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
        let mut wanted: Vec<(u32, u64, u64)> = Vec::with_capacity(ids.len());
        for &id in ids {
            let (lo, hi) = self.series_time_range(id);
            if hi < mint || lo > maxt {
                continue;
            }
            let (a, b) = self.narrow(id, mint, maxt);
            if a < b {
                wanted.push((id, a, b));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        self.read_ranges(&wanted, mint, maxt, f)
    }

    /// The row range of series `id`, without the leading and trailing pages
    /// that lie wholly inside the series and wholly outside `[mint, maxt]`.
    fn narrow(&self, id: u32, mint: i64, maxt: i64) -> (u64, u64) {
        let a = self.series.first_row[id as usize];
        let b = a + u64::from(self.series.num_rows[id as usize]);
        let page_end = |i: usize| {
            self.pages
                .get(i + 1)
                .map_or(self.rg_start[self.rg_start.len() - 1], |p| p.first_row)
        };
        // Page containing row a.
        let first = self
            .pages
            .partition_point(|p| p.first_row <= a)
            .saturating_sub(1);
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
        let mut j = self.pages.partition_point(|p| p.first_row < b);
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

    /// Builds one reader over the row groups touched by `wanted` (sorted,
    /// disjoint row ranges) and hands each series' in-range samples to `f`.
    fn read_ranges(
        &self,
        wanted: &[(u32, u64, u64)],
        mint: i64,
        maxt: i64,
        f: &mut dyn FnMut(u32, &[Sample]),
    ) -> Result<()> {
        let rg_of = |row: u64| self.rg_start.partition_point(|&s| s <= row) - 1;
        let mut row_groups: Vec<usize> = Vec::new();
        let mut selectors: Vec<RowSelector> = Vec::new();
        // Position in the concatenation of the chosen row groups, as global row.
        let mut pos: u64 = 0;
        let mut total = 0usize;
        for &(_, a, b) in wanted {
            for rg in rg_of(a)..=rg_of(b - 1) {
                if row_groups.last() != Some(&rg) {
                    if let Some(&prev) = row_groups.last()
                        && self.rg_start[prev + 1] > pos
                    {
                        selectors.push(RowSelector::skip((self.rg_start[prev + 1] - pos) as usize));
                    }
                    row_groups.push(rg);
                    pos = self.rg_start[rg];
                }
                let (s, e) = (a.max(self.rg_start[rg]), b.min(self.rg_start[rg + 1]));
                if s > pos {
                    selectors.push(RowSelector::skip((s - pos) as usize));
                }
                selectors.push(RowSelector::select((e - s) as usize));
                pos = e;
            }
            total += (b - a) as usize;
        }
        let path = &self.samples_path;
        let bad = |e: String| Error::corruption(path, e);
        let mut reader = guarded(path, || {
            ParquetRecordBatchReaderBuilder::new_with_metadata(
                self.data.clone(),
                self.reader_meta.clone(),
            )
            .with_row_groups(row_groups)
            .with_row_selection(RowSelection::from(selectors))
            .with_row_selection_policy(RowSelectionPolicy::Selectors)
            .with_batch_size(total.clamp(1, 64 * 1024))
            .build()
            .map_err(|e| bad(format!("cannot read: {e}")))
        })?;
        let mut sink = RangeSink {
            wanted,
            next: 0,
            got: 0,
            buf: Vec::new(),
            mint,
            maxt,
            path,
        };
        while let Some(batch) = guarded(path, || {
            reader
                .next()
                .transpose()
                .map_err(|e| bad(format!("cannot decode: {e}")))
        })? {
            sink.push(&batch, f)?;
        }
        if sink.next != wanted.len() {
            return Err(bad(format!(
                "decoded fewer rows than selected ({} of {} series)",
                sink.next,
                wanted.len()
            )));
        }
        Ok(())
    }

    /// Streams every series (in id order) with its samples in `[mint, maxt]`,
    /// decoding the file sequentially; used by merges.
    pub(crate) fn scan(&self, mint: i64, maxt: i64) -> Result<SeriesScan<'_>> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.data.clone(),
            self.reader_meta.clone(),
        )
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| Error::corruption(&self.samples_path, format!("cannot read: {e}")))?;
        Ok(SeriesScan {
            block: self,
            reader,
            batch: None,
            batch_pos: 0,
            id: 0,
            mint,
            maxt,
        })
    }
}

/// Splits decoded rows back into series and filters them by time.
struct RangeSink<'a> {
    wanted: &'a [(u32, u64, u64)],
    next: usize,
    /// Rows of `wanted[next]` received so far (they are in `buf`).
    got: u64,
    buf: Vec<Sample>,
    mint: i64,
    maxt: i64,
    path: &'a Path,
}

impl RangeSink<'_> {
    fn push(&mut self, batch: &RecordBatch, f: &mut dyn FnMut(u32, &[Sample])) -> Result<()> {
        let (sids, ts, vs) = columns(self.path, batch)?;
        let mut i = 0;
        while i < ts.len() {
            let Some(&(id, a, b)) = self.wanted.get(self.next) else {
                return Err(Error::corruption(
                    self.path,
                    "decoded more rows than selected",
                ));
            };
            let take = ((b - a - self.got) as usize).min(ts.len() - i);
            if sids[i..i + take].iter().any(|&s| s != id) {
                return Err(Error::corruption(
                    self.path,
                    format!("rows of series {id} carry another series_id"),
                ));
            }
            self.buf.extend(
                ts[i..i + take]
                    .iter()
                    .zip(&vs[i..i + take])
                    .map(|(&t, &v)| Sample { t, v }),
            );
            self.got += take as u64;
            i += take;
            if self.got == b - a {
                if self.buf.windows(2).any(|w| w[0].t >= w[1].t) {
                    return Err(Error::corruption(
                        self.path,
                        format!("timestamps of series {id} not increasing"),
                    ));
                }
                let lo = self.buf.partition_point(|s| s.t < self.mint);
                let hi = self.buf.partition_point(|s| s.t <= self.maxt);
                if lo < hi {
                    f(id, &self.buf[lo..hi]);
                }
                self.buf.clear();
                self.got = 0;
                self.next += 1;
            }
        }
        Ok(())
    }
}

/// The three columns of a decoded samples batch.
fn columns<'b>(path: &Path, batch: &'b RecordBatch) -> Result<(&'b [u32], &'b [i64], &'b [f64])> {
    let bad = || Error::corruption(path, "unexpected column types in decoded batch");
    if batch.num_columns() != 3 {
        return Err(bad());
    }
    let sids = batch
        .column(0)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(bad)?;
    let ts = batch
        .column(1)
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(bad)?;
    let vs = batch
        .column(2)
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(bad)?;
    Ok((sids.values(), ts.values(), vs.values()))
}

/// Sequential iterator over all series of a block; see [`Block::scan`].
pub(crate) struct SeriesScan<'a> {
    block: &'a Block,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    batch_pos: usize,
    id: u32,
    mint: i64,
    maxt: i64,
}

impl SeriesScan<'_> {
    /// The next series (possibly with no samples in range), or `None` at the end.
    pub(crate) fn next_series(&mut self, out: &mut Vec<Sample>) -> Result<Option<u32>> {
        out.clear();
        let block = self.block;
        if self.id as usize >= block.series.len() {
            return Ok(None);
        }
        let id = self.id;
        let path = &block.samples_path;
        let mut need = block.series.num_rows[id as usize] as usize;
        while need > 0 {
            let exhausted = self
                .batch
                .as_ref()
                .is_none_or(|b| self.batch_pos >= b.num_rows());
            if exhausted {
                let next = guarded(path, || {
                    self.reader
                        .next()
                        .transpose()
                        .map_err(|e| Error::corruption(path, format!("cannot decode: {e}")))
                })?;
                let Some(b) = next else {
                    return Err(Error::corruption(
                        path,
                        "fewer rows than series.parquet describes",
                    ));
                };
                self.batch = Some(b);
                self.batch_pos = 0;
                continue;
            }
            let Some(batch) = self.batch.as_ref() else {
                continue;
            };
            let (sids, ts, vs) = columns(path, batch)?;
            let take = need.min(ts.len() - self.batch_pos);
            let r = self.batch_pos..self.batch_pos + take;
            if sids[r.clone()].iter().any(|&s| s != id) {
                return Err(Error::corruption(
                    path,
                    format!("rows of series {id} carry another series_id"),
                ));
            }
            out.extend(
                ts[r.clone()]
                    .iter()
                    .zip(&vs[r])
                    .filter(|(t, _)| (self.mint..=self.maxt).contains(*t))
                    .map(|(&t, &v)| Sample { t, v }),
            );
            self.batch_pos += take;
            need -= take;
        }
        if out.windows(2).any(|w| w[0].t >= w[1].t) {
            return Err(Error::corruption(
                path,
                format!("timestamps of series {id} not increasing"),
            ));
        }
        self.id += 1;
        Ok(Some(id))
    }
}

type SamplesIndex = (ArrowReaderMetadata, Vec<u64>, Vec<TsPage>);

/// Parses the footer and page index of `samples.parquet` and checks them:
/// schema, format metadata, row count, and a page index whose page
/// locations lie inside their column chunks.
fn open_samples(path: &Path, data: &Bytes, meta: &BlockMeta) -> Result<SamplesIndex> {
    let bad = |d: String| Error::corruption(path, d);
    let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let rm = ArrowReaderMetadata::load(data, opts)
        .map_err(|e| bad(format!("not a valid Parquet file: {e}")))?;
    let md = rm.metadata().clone();
    let kvs = schema::check_file(path, &md, FileKind::Samples)?;
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
        if offset_index[rg_idx].len() != 3 || column_index[rg_idx].len() != 3 {
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
                    let (min_t, max_t) = (ci.min_values()[i], ci.max_values()[i]);
                    if min_t > max_t {
                        return Err(bad(format!(
                            "row group {rg_idx} page {i}: min timestamp above max"
                        )));
                    }
                    pages.push(TsPage {
                        first_row: start + l.first_row_index as u64,
                        min_t,
                        max_t,
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
    Ok((rm, rg_start, pages))
}
