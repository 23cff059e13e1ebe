//! `starts.parquet` (format version 4, optional): the start timestamps of a
//! block's samples, as runs ([`StartRun`]) per series. Written only when
//! some sample of the block has a start; read whole when the block opens
//! (a cumulative counter has one run per reset, so there are about as many
//! runs as series with starts).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray, UInt32Array};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::starts::StartRun;

use super::meta::BlockMeta;
use super::schema::{self, FileKind};
use super::series::SeriesTable;

/// Runs buffered per write of `starts.parquet`.
pub(crate) const STARTS_BATCH: usize = 1 << 16;

/// Runs waiting to be written, in file order.
#[derive(Default)]
pub(crate) struct StartRows {
    series_id: Vec<u32>,
    first: Vec<i64>,
    last: Vec<i64>,
    start: Vec<i64>,
}

impl StartRows {
    pub(crate) fn push(&mut self, id: u32, r: StartRun) {
        self.series_id.push(id);
        self.first.push(r.first);
        self.last.push(r.last);
        self.start.push(r.start);
    }

    pub(crate) fn len(&self) -> usize {
        self.series_id.len()
    }

    pub(crate) fn take_batch(&mut self) -> Result<RecordBatch> {
        let t = |v: &mut Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from(std::mem::take(v)).with_timezone("UTC"))
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(std::mem::take(&mut self.series_id))),
            t(&mut self.first),
            t(&mut self.last),
            t(&mut self.start),
        ];
        RecordBatch::try_new(schema::starts_schema(), cols)
            .map_err(|e| Error::Invalid(format!("block writer: starts batch: {e}")))
    }
}

/// A block's start-timestamp runs, by series.
#[derive(Debug, Default)]
pub(crate) struct BlockStarts {
    /// Series with runs, ascending.
    ids: Vec<u32>,
    /// `runs[offsets[i]..offsets[i + 1]]` are series `ids[i]`'s.
    offsets: Vec<u32>,
    runs: Vec<StartRun>,
}

impl BlockStarts {
    /// All runs of series `id` (none if it has none).
    pub(crate) fn runs(&self, id: u32) -> &[StartRun] {
        match self.ids.binary_search(&id) {
            Ok(i) => &self.runs[self.offsets[i] as usize..self.offsets[i + 1] as usize],
            Err(_) => &[],
        }
    }

    pub(crate) fn has(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 4
            + self.offsets.capacity() * 4
            + self.runs.capacity() * std::mem::size_of::<StartRun>()
    }

    /// Decodes and validates `starts.parquet`: rows sorted by series and
    /// time, runs disjoint and within their series' time range, no start
    /// of 0.
    pub(crate) fn load(
        path: &Path,
        data: Bytes,
        meta: &BlockMeta,
        series: &SeriesTable,
    ) -> Result<BlockStarts> {
        let bad = |d: String| Error::corruption(path, d);
        let builder = ParquetRecordBatchReaderBuilder::try_new(data)
            .map_err(|e| bad(format!("not a valid Parquet file: {e}")))?;
        schema::check_file(path, builder.metadata(), FileKind::Starts, meta.version)?;
        // Every run holds a sample: no more runs than samples (a small
        // damaged file cannot claim more and take the memory).
        let rows = builder.metadata().file_metadata().num_rows();
        if u64::try_from(rows).map_or(true, |n| n > meta.num_samples) {
            return Err(bad(format!(
                "{rows} rows, more than the block's {} samples",
                meta.num_samples
            )));
        }
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let mut s = BlockStarts {
            ids: Vec::new(),
            offsets: Vec::new(),
            // Grown as rows come (a damaged footer could claim many).
            runs: Vec::with_capacity((rows as usize).min(1 << 20)),
        };
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("cannot decode: {e}")))?;
            s.add_batch(&batch, series).map_err(bad)?;
        }
        if u32::try_from(s.runs.len()).is_err() {
            return Err(bad("too many runs".into()));
        }
        s.offsets.push(s.runs.len() as u32);
        s.ids.shrink_to_fit();
        s.offsets.shrink_to_fit();
        s.runs.shrink_to_fit();
        Ok(s)
    }

    fn add_batch(
        &mut self,
        batch: &RecordBatch,
        series: &SeriesTable,
    ) -> std::result::Result<(), String> {
        fn column<T: 'static>(b: &RecordBatch, i: usize) -> std::result::Result<&T, String> {
            let c = b.column(i);
            if c.null_count() > 0 {
                return Err(format!("column {i} has nulls"));
            }
            c.as_any()
                .downcast_ref::<T>()
                .ok_or_else(|| format!("column {i} has type {}", c.data_type()))
        }
        let ids = column::<UInt32Array>(batch, 0)?.values();
        let first = column::<TimestampMillisecondArray>(batch, 1)?.values();
        let last = column::<TimestampMillisecondArray>(batch, 2)?.values();
        let start = column::<TimestampMillisecondArray>(batch, 3)?.values();
        for i in 0..ids.len() {
            let (id, r) = (
                ids[i],
                StartRun {
                    first: first[i],
                    last: last[i],
                    start: start[i],
                },
            );
            let row = self.runs.len();
            let (Some(&lo), Some(&hi)) = (
                series.min_time.get(id as usize),
                series.max_time.get(id as usize),
            ) else {
                return Err(format!("row {row}: series {id} not in the block"));
            };
            if r.first > r.last || r.first < lo || r.last > hi {
                return Err(format!(
                    "row {row}: run {}..={} of series {id} outside its samples {lo}..={hi}",
                    r.first, r.last
                ));
            }
            if r.start == 0 {
                return Err(format!("row {row}: start timestamp 0 (unknown) stored"));
            }
            match self.ids.last() {
                Some(&prev) if prev == id => {
                    if self.runs[row - 1].last >= r.first {
                        return Err(format!(
                            "row {row}: runs of series {id} overlap or are out of order"
                        ));
                    }
                    let first = self.offsets[self.offsets.len() - 1] as usize;
                    if row - first >= series.num_rows[id as usize] as usize {
                        return Err(format!("row {row}: series {id} has more runs than samples"));
                    }
                }
                Some(&prev) if prev > id => {
                    return Err(format!("row {row}: series {id} after series {prev}"));
                }
                _ => {
                    self.ids.push(id);
                    self.offsets.push(row as u32);
                }
            }
            self.runs.push(r);
        }
        Ok(())
    }
}
