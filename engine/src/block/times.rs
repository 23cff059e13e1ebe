//! `timestamps.parquet` (format version 3): the distinct timestamp
//! sequences of a block, each stored once; a row of `samples.parquet`
//! names its timestamp by row here (`ts_row`). Opening parses the footer and
//! page index and checks them; reads decode whole pages, which the block
//! caches like its sample pages.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::Int64Type;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;

use crate::error::{Error, Result};

use super::meta::BlockMeta;
use super::schema::{self, FileKind};

/// One data page: its first row (global) and its smallest and largest
/// timestamp.
#[derive(Debug, Clone, Copy)]
struct Page {
    first_row: u64,
    min_t: i64,
    max_t: i64,
}

/// An open, checked `timestamps.parquet`.
pub(crate) struct Times {
    path: PathBuf,
    data: Bytes,
    metadata: Arc<ParquetMetaData>,
    /// First global row of each row group, plus the total at the end.
    rg_start: Vec<u64>,
    pages: Vec<Page>,
    /// An idle reader of the timestamp column, for the next decode.
    cursor: Mutex<Option<Cursor>>,
}

/// The timestamp column of row group `rg`, positioned at global row `pos`.
struct Cursor {
    rg: usize,
    pos: u64,
    col: ColumnReaderImpl<Int64Type>,
}

impl Times {
    /// Parses and checks `data`, the bytes of `path`: schema and format
    /// metadata for the block's version, and a page index in which every
    /// page lies inside its column chunk and the `row` column counts rows.
    pub(crate) fn open(path: &Path, data: Bytes, meta: &BlockMeta) -> Result<Times> {
        let bad = |d: String| Error::corruption(path, d);
        let md = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&data)
            .map_err(|e| bad(format!("not a valid Parquet file: {e}")))?;
        schema::check_file(path, &md, FileKind::Timestamps, meta.version)?;
        let (Some(offset_index), Some(column_index)) = (md.offset_index(), md.column_index())
        else {
            return Err(bad("page index missing".into()));
        };
        if offset_index.len() != md.num_row_groups() || column_index.len() != md.num_row_groups() {
            return Err(bad("page index does not cover every row group".into()));
        }
        let file_len = data.len() as u64;
        let mut rg_start = Vec::with_capacity(md.num_row_groups() + 1);
        let mut pages = Vec::new();
        let mut start = 0u64;
        for (g, rg) in md.row_groups().iter().enumerate() {
            let num_rows = u64::try_from(rg.num_rows())
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad(format!("row group {g} is empty")))?;
            rg_start.push(start);
            if offset_index[g].len() != 2 || column_index[g].len() != 2 {
                return Err(bad(format!(
                    "row group {g}: page index has wrong column count"
                )));
            }
            let locs: Vec<_> = (0..2)
                .map(|c| offset_index[g][c].page_locations())
                .collect();
            if locs[0].len() != locs[1].len() {
                return Err(bad(format!("row group {g}: columns break pages apart")));
            }
            if locs[0].is_empty() || locs[0][0].first_row_index != 0 {
                return Err(bad(format!(
                    "row group {g}: page index does not start at row 0"
                )));
            }
            for c in 0..2 {
                let (cs, clen) = rg.column(c).byte_range();
                let ce = cs
                    .checked_add(clen)
                    .filter(|&e| e <= file_len)
                    .ok_or_else(|| {
                        bad(format!("row group {g} column {c}: chunk outside the file"))
                    })?;
                for (i, l) in locs[c].iter().enumerate() {
                    let size = u64::try_from(l.compressed_page_size).unwrap_or(u64::MAX);
                    let off = l.offset as u64;
                    let first_ok = l.first_row_index == locs[0][i].first_row_index
                        && l.first_row_index
                            < locs[c]
                                .get(i + 1)
                                .map_or(rg.num_rows(), |n| n.first_row_index)
                        && (i > 0 || l.first_row_index == 0);
                    if l.offset < 0
                        || off < cs
                        || off.checked_add(size).is_none_or(|e| e > ce)
                        || !first_ok
                    {
                        return Err(bad(format!(
                            "row group {g} column {c} page {i}: bad page location"
                        )));
                    }
                }
            }
            let (ColumnIndexMetaData::INT64(rows), ColumnIndexMetaData::INT64(ts)) =
                (&column_index[g][0], &column_index[g][1])
            else {
                return Err(bad(format!("row group {g}: column index missing")));
            };
            let n = locs[0].len();
            if rows.min_values().len() != n
                || rows.max_values().len() != n
                || ts.min_values().len() != n
                || ts.max_values().len() != n
            {
                return Err(bad(format!(
                    "row group {g}: column index has wrong page count"
                )));
            }
            for (i, l) in locs[0].iter().enumerate() {
                let first = start + l.first_row_index as u64;
                let end = start
                    + locs[0]
                        .get(i + 1)
                        .map_or(num_rows, |n| n.first_row_index as u64);
                // `row` counts rows: its page minimum and maximum say where
                // the page sits.
                if rows.min_values()[i] as u64 != first || rows.max_values()[i] as u64 != end - 1 {
                    return Err(bad(format!(
                        "row group {g} page {i}: row column does not count rows {first}..{end}"
                    )));
                }
                let (min_t, max_t) = (ts.min_values()[i], ts.max_values()[i]);
                if min_t > max_t {
                    return Err(bad(format!(
                        "row group {g} page {i}: min timestamp above max"
                    )));
                }
                pages.push(Page {
                    first_row: first,
                    min_t,
                    max_t,
                });
            }
            start += num_rows;
        }
        rg_start.push(start);
        Ok(Times {
            path: path.to_owned(),
            data,
            metadata: Arc::new(md),
            rg_start,
            pages,
            cursor: Mutex::new(None),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn num_rows(&self) -> u64 {
        self.rg_start[self.rg_start.len() - 1]
    }

    pub(crate) fn num_pages(&self) -> usize {
        self.pages.len()
    }

    /// The page holding `row` (which must be below [`Times::num_rows`]).
    pub(crate) fn page_of(&self, row: u64) -> usize {
        self.pages
            .partition_point(|p| p.first_row <= row)
            .saturating_sub(1)
    }

    /// One past the last row of page `i`.
    fn page_end(&self, i: usize) -> u64 {
        self.pages
            .get(i + 1)
            .map_or(self.num_rows(), |p| p.first_row)
    }

    /// Bounds on the timestamps of rows `lo..=hi` from the page index
    /// (exact when the rows are whole pages). Rows spread over more than
    /// three pages get no bounds (`i64::MIN..=i64::MAX`): only a
    /// `samples.parquet` page inside one series needs them, and its rows are
    /// one run of at most a page's length, so a page with rows of several
    /// series cannot make this cost more than a few steps.
    pub(crate) fn bounds(&self, lo: u64, hi: u64) -> (i64, i64) {
        let (a, b) = (self.page_of(lo), self.page_of(hi));
        if b > a + 2 || self.pages.is_empty() {
            return (i64::MIN, i64::MAX);
        }
        self.pages[a..=b.max(a)]
            .iter()
            .fold((i64::MAX, i64::MIN), |(mn, mx), p| {
                (mn.min(p.min_t), mx.max(p.max_t))
            })
    }

    /// Decodes page `i`: its first row and its timestamps.
    pub(crate) fn decode_page(&self, i: usize) -> Result<(u64, Box<[i64]>)> {
        let path = &self.path;
        let first = self.pages[i].first_row;
        let n = (self.page_end(i) - first) as usize;
        let rg = self.rg_start.partition_point(|&s| s <= first) - 1;
        let mut c = match self.cursor.lock().take() {
            Some(c) if c.rg == rg && c.pos <= first => c,
            _ => self.new_cursor(rg)?,
        };
        let err = |e: parquet::errors::ParquetError| {
            Error::corruption(path, format!("cannot decode: {e}"))
        };
        let skip = (first - c.pos) as usize;
        if skip > 0 {
            if c.col.skip_records(skip).map_err(err)? != skip {
                return Err(Error::corruption(
                    path,
                    "fewer rows than the page index promises",
                ));
            }
            c.pos = first;
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let before = out.len();
            let (records, _, _) = c
                .col
                .read_records(n - before, None, None, &mut out)
                .map_err(err)?;
            if records == 0 || out.len() != before + records {
                return Err(Error::corruption(
                    path,
                    "fewer rows than the page index promises",
                ));
            }
        }
        c.pos += n as u64;
        if c.pos < self.rg_start[rg + 1] {
            *self.cursor.lock() = Some(c);
        }
        Ok((first, out.into_boxed_slice()))
    }

    fn new_cursor(&self, rg: usize) -> Result<Cursor> {
        let path = &self.path;
        let md = &self.metadata;
        let rows = (self.rg_start[rg + 1] - self.rg_start[rg]) as usize;
        let locations = md
            .offset_index()
            .ok_or_else(|| Error::corruption(path, "page index missing"))?[rg][1]
            .page_locations()
            .clone();
        let reader = super::pages::column_pages(
            Arc::new(self.data.clone()),
            md.row_group(rg).column(1),
            rows,
            locations,
        )
        .map_err(|e| Error::corruption(path, format!("row group {rg}: {e}")))?;
        Ok(Cursor {
            rg,
            pos: self.rg_start[rg],
            col: ColumnReaderImpl::new(md.file_metadata().schema_descr().column(1), reader),
        })
    }
}
