//! Writing a block: streams sorted series into `samples.parquet`,
//! `timestamps.parquet` and `series.parquet` inside `<parent>/<id>.tmp/`,
//! writes `meta.json` last, fsyncs everything and renames the directory
//! into place.
//!
//! A series' timestamps go to `timestamps.parquet` only if no earlier
//! series of the block had exactly the same ones; otherwise its samples
//! refer to that earlier sequence. Series scraped from one target share
//! their timestamps (Prometheus stamps a whole scrape with one time), so a
//! block stores about one timestamp sequence per target.
//!
//! Memory is bounded by one row group of encoded pages per Parquet file
//! (about [`ROW_GROUP_ROWS`] rows, compressed), one page of pending rows, a
//! batch of series rows and what is kept for sharing (at most
//! [`SHARED_TIMES_KEPT`] timestamps, [`KEYED_KEPT`] merge keys): the block
//! as a whole is never held in memory.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{MapBuilder, MapFieldNames, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int8Array, Int64Array, RecordBatch, TimestampMillisecondArray,
    UInt32Array, UInt64Array,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::sample::Sample;
use crate::starts::StartRun;
use crate::varint::zigzag;

use super::meta::{BlockMeta, FileMeta};
use super::schema::{self, MAX_PAGE_ROWS, ROW_GROUP_ROWS};
use super::starts::{STARTS_BATCH, StartRows};
use super::{META_FILE, SAMPLES_FILE, SERIES_FILE, STARTS_FILE, TIMESTAMPS_FILE, decimal, id};

/// How a new block is labelled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockWriteOptions {
    /// Compaction level to record (the lead uses 0 or 1 for head-cut blocks).
    pub level: u32,
    /// Source block ids to record. Empty means "this block is its own
    /// source": `[its id]`, as for a block cut from the head.
    pub sources: Vec<String>,
    /// Highest WAL segment fully contained in the block, if cut from the head.
    pub wal_segment_max: Option<u64>,
}

/// Writes one block from `series`, which must come sorted by labels (each
/// label set once) with samples sorted by strictly increasing timestamp.
/// Series without samples are skipped. Streams: never holds the whole block
/// in memory. Returns the published block's meta, or `None` (nothing
/// written) when there is no sample at all.
pub fn write_block<S: Into<BlockSeries>>(
    parent: &Path,
    opts: &BlockWriteOptions,
    series: impl Iterator<Item = Result<S>>,
) -> Result<Option<BlockMeta>> {
    write_block_with_layout(parent, opts, Layout::default(), series)
}

/// One series of a block being written: its labels, its samples (sorted,
/// strictly increasing times) and their start timestamps (sorted,
/// disjoint runs; the writer keeps them in canonical form, see
/// [`crate::starts::canonical_runs`]).
#[derive(Debug, Clone, Default)]
pub struct BlockSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub starts: Vec<StartRun>,
}

impl From<(Labels, Vec<Sample>)> for BlockSeries {
    fn from((labels, samples): (Labels, Vec<Sample>)) -> BlockSeries {
        BlockSeries {
            labels,
            samples,
            starts: Vec::new(),
        }
    }
}

/// Page and row-group sizing of the paged files, and how many timestamps a
/// head cut keeps for comparison (tests use tiny ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Most rows per data page (at most [`MAX_PAGE_ROWS`]).
    pub(crate) page_rows: usize,
    /// A row group closes after the page that brings it to this many rows.
    pub(crate) row_group_rows: usize,
    /// Timestamps remembered for comparison ([`SHARED_TIMES_KEPT`]).
    pub(crate) times_kept: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            page_rows: MAX_PAGE_ROWS,
            row_group_rows: ROW_GROUP_ROWS,
            times_kept: SHARED_TIMES_KEPT,
        }
    }
}

/// [`write_block`] with an explicit layout.
pub(crate) fn write_block_with_layout<S: Into<BlockSeries>>(
    parent: &Path,
    opts: &BlockWriteOptions,
    layout: Layout,
    series: impl Iterator<Item = Result<S>>,
) -> Result<Option<BlockMeta>> {
    let mut w = BlockWriter::new(parent, opts, layout)?;
    for item in series {
        let s: BlockSeries = match item {
            Ok(s) => s.into(),
            Err(e) => {
                w.abort();
                return Err(e);
            }
        };
        if let Err(e) = w.append_keyed(s.labels, &s.samples, None, &s.starts) {
            w.abort();
            return Err(e);
        }
    }
    w.finish()
}

/// A `Write` that counts bytes and computes their CRC-32C on the way
/// through.
struct CrcWriter<W> {
    inner: W,
    size: u64,
    crc: u32,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileSink = CrcWriter<BufWriter<File>>;

fn create_sink(path: &Path) -> Result<FileSink> {
    let f = File::create_new(path).map_err(|e| Error::io(path, e))?;
    Ok(CrcWriter {
        // Parquet's writer buffers its own pages; this only gathers the
        // small writes (page headers, footers) into fewer system calls.
        inner: BufWriter::with_capacity(64 << 10, f),
        size: 0,
        crc: 0,
    })
}

/// Flushes, fsyncs and describes a finished file.
fn close_sink(path: &Path, name: &str, sink: FileSink) -> Result<FileMeta> {
    let CrcWriter { inner, size, crc } = sink;
    let file = inner
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(FileMeta {
        name: name.to_owned(),
        size,
        crc32c: crc,
    })
}

/// Fsyncs a directory so that entries created or renamed in it persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Series rows waiting to be written to `series.parquet`.
struct SeriesRows {
    ids: Vec<u32>,
    labels: MapBuilder<StringBuilder, StringBuilder>,
    first_row: Vec<u64>,
    num_rows: Vec<u32>,
    min_time: Vec<i64>,
    max_time: Vec<i64>,
}

/// Series rows per `series.parquet` write.
const SERIES_BATCH: usize = 4096;

impl SeriesRows {
    fn new() -> Self {
        let names = MapFieldNames {
            entry: "entries".into(),
            key: "key".into(),
            value: "value".into(),
        };
        SeriesRows {
            ids: Vec::new(),
            labels: MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
                .with_values_field(Arc::new(arrow_schema::Field::new(
                    "value",
                    arrow_schema::DataType::Utf8,
                    false,
                ))),
            first_row: Vec::new(),
            num_rows: Vec::new(),
            min_time: Vec::new(),
            max_time: Vec::new(),
        }
    }

    fn push(&mut self, id: u32, labels: &Labels, first_row: u64, samples: &[Sample]) -> Result<()> {
        self.ids.push(id);
        for l in labels {
            self.labels.keys().append_value(&l.name);
            self.labels.values().append_value(&l.value);
        }
        self.labels
            .append(true)
            .map_err(|e| Error::Invalid(format!("labels map: {e}")))?;
        self.first_row.push(first_row);
        self.num_rows.push(samples.len() as u32);
        self.min_time.push(samples[0].t);
        self.max_time.push(samples[samples.len() - 1].t);
        Ok(())
    }

    fn take_batch(&mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(std::mem::take(&mut self.ids))),
            Arc::new(self.labels.finish()),
            Arc::new(UInt64Array::from(std::mem::take(&mut self.first_row))),
            Arc::new(UInt32Array::from(std::mem::take(&mut self.num_rows))),
            Arc::new(
                TimestampMillisecondArray::from(std::mem::take(&mut self.min_time))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMillisecondArray::from(std::mem::take(&mut self.max_time))
                    .with_timezone("UTC"),
            ),
        ];
        RecordBatch::try_new(schema::series_schema(), cols)
            .map_err(|e| Error::Invalid(format!("series batch: {e}")))
    }
}

/// Bits per row (of mantissa deltas) from which a run is stored as
/// doubles: decimal encoding would save less than an eighth.
const NOISE_BITS: u64 = 56;

/// The value columns of the page being assembled: per row either a
/// decimal mantissa (`value_int`) with its scale (`value_scale >= 0`), or a
/// double (`value`, with `value_scale = -1`).
struct PageValues {
    double: Vec<f64>,
    int: Vec<i64>,
    scale: Vec<i8>,
}

impl PageValues {
    fn with_capacity(cap: usize) -> Self {
        PageValues {
            double: Vec::with_capacity(cap),
            int: Vec::with_capacity(cap),
            scale: Vec::with_capacity(cap),
        }
    }

    /// Adds one run (one series within one page): one scale for the run,
    /// each row decimal if it is exactly representable at that scale. The
    /// unused column of a row gets the value that costs least: `0.0` in
    /// `value`, the previous mantissa in `value_int` (a zero delta). A run
    /// whose mantissas are noise (deltas of nearly 64 bits, as for values
    /// computed in floating point that happen to be short decimals) is
    /// stored as doubles.
    fn push_run(&mut self, samples: &[Sample]) {
        let start = self.int.len();
        let Some(k) = decimal::choose_scale(samples.iter().map(|s| s.v)) else {
            self.push_doubles(samples);
            return;
        };
        let (mut prev, mut bits) = (0i64, 0u64);
        for s in samples {
            match decimal::encode(s.v, k) {
                Some(m) => {
                    self.double.push(0.0);
                    self.int.push(m);
                    // MAX_SCALE < 128.
                    self.scale.push(k as i8);
                    let delta = m.wrapping_sub(prev);
                    bits += u64::from(64 - zigzag(delta).leading_zeros());
                    prev = m;
                }
                None => {
                    self.double.push(s.v);
                    self.int.push(prev);
                    self.scale.push(decimal::DOUBLE_SCALE);
                    bits += 64;
                }
            }
        }
        if bits >= NOISE_BITS * samples.len() as u64 {
            self.double.truncate(start);
            self.int.truncate(start);
            self.scale.truncate(start);
            self.push_doubles(samples);
        }
    }

    fn push_doubles(&mut self, samples: &[Sample]) {
        self.double.extend(samples.iter().map(|s| s.v));
        self.int.extend(std::iter::repeat_n(0, samples.len()));
        self.scale
            .extend(std::iter::repeat_n(decimal::DOUBLE_SCALE, samples.len()));
    }

    /// The `value`, `value_int` and `value_scale` arrays.
    fn into_arrays(self) -> [ArrayRef; 3] {
        [
            Arc::new(Float64Array::from(self.double)),
            Arc::new(Int64Array::from(self.int)),
            Arc::new(Int8Array::from(self.scale)),
        ]
    }
}

/// Timestamps kept in memory for sharing at most (32 MiB): past that, new
/// sequences are still written, only not offered to later series.
pub(crate) const SHARED_TIMES_KEPT: usize = 4 << 20;

/// Merge keys remembered at most (each a few words).
const KEYED_KEPT: usize = 1 << 20;

/// The timestamp sequences already in `timestamps.parquet`, by hash, so a
/// series with the same timestamps refers to them instead of writing them
/// again. Equality is checked on the kept sequence, never assumed from the
/// hash.
struct SharedTimes {
    /// Hash → (first row in `timestamps.parquet`, index into `kept`).
    by_hash: HashMap<u64, Vec<(u64, usize)>>,
    kept: Vec<Box<[i64]>>,
    kept_len: usize,
    /// Most timestamps `kept` may hold.
    budget: usize,
}

impl SharedTimes {
    fn new(budget: usize) -> SharedTimes {
        SharedTimes {
            by_hash: HashMap::new(),
            kept: Vec::new(),
            kept_len: 0,
            budget,
        }
    }

    fn hash(times: &[i64]) -> u64 {
        let mut h = times.len() as u64;
        for &t in times {
            h = (h.rotate_left(5) ^ t as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        h
    }

    /// The first row of an earlier sequence equal to `times`, if any.
    fn find(&self, hash: u64, times: &[i64]) -> Option<u64> {
        self.by_hash
            .get(&hash)?
            .iter()
            .find(|&&(_, i)| *self.kept[i] == *times)
            .map(|&(row, _)| row)
    }

    /// Remembers `times`, written from row `row`, while within the budget.
    fn keep(&mut self, hash: u64, times: &[i64], row: u64) {
        if self.kept_len + times.len() > self.budget {
            return;
        }
        self.kept_len += times.len();
        self.by_hash
            .entry(hash)
            .or_default()
            .push((row, self.kept.len()));
        self.kept.push(times.into());
    }
}

/// The streaming block writer behind [`write_block`] and merges.
pub(crate) struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    id: String,
    opts: BlockWriteOptions,
    layout: Layout,
    samples: Option<ArrowWriter<FileSink>>,
    series: Option<ArrowWriter<FileSink>>,
    timestamps: Option<ArrowWriter<FileSink>>,
    /// `starts.parquet`, created with the first run to write.
    starts: Option<ArrowWriter<FileSink>>,
    start_rows: StartRows,
    /// Scratch: the canonical runs of the series being appended.
    runs: Vec<StartRun>,
    // Rows of the page being assembled.
    page_sid: Vec<u32>,
    page_ts_row: Vec<u64>,
    page_v: PageValues,
    rows_in_group: usize,
    // Rows of the timestamps page being assembled, rows of timestamps.parquet
    // written before them, rows in its current row group.
    ts_page: Vec<i64>,
    ts_flushed: u64,
    ts_rows_in_group: usize,
    shared: SharedTimes,
    /// Timestamp keys from merges (see [`BlockWriter::append_keyed`]) →
    /// first row of their sequence; at most [`KEYED_KEPT`] keys.
    keyed: HashMap<Box<[u64]>, u64>,
    /// Scratch: the timestamps of the series being appended.
    times: Vec<i64>,
    series_rows: SeriesRows,
    last_labels: Option<Labels>,
    num_series: u32,
    num_samples: u64,
    min_time: i64,
    max_time: i64,
}

impl BlockWriter {
    pub(crate) fn new(
        parent: &Path,
        opts: &BlockWriteOptions,
        layout: Layout,
    ) -> Result<BlockWriter> {
        let layout = Layout {
            page_rows: layout.page_rows.clamp(1, MAX_PAGE_ROWS),
            row_group_rows: layout.row_group_rows.max(1),
            times_kept: layout.times_kept,
        };
        if let Some(bad) = opts.sources.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        }) {
            return Err(Error::Invalid(format!(
                "block writer: source {bad:?} has characters outside [0-9A-Za-z._-]"
            )));
        }
        let id = id::new_block_id();
        let tmp = parent.join(format!("{id}{}", super::TMP_SUFFIX));
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = BlockWriter {
            parent: parent.to_owned(),
            tmp,
            id,
            opts: opts.clone(),
            layout,
            samples: None,
            series: None,
            timestamps: None,
            starts: None,
            start_rows: StartRows::default(),
            runs: Vec::new(),
            page_sid: Vec::with_capacity(layout.page_rows),
            page_ts_row: Vec::with_capacity(layout.page_rows),
            page_v: PageValues::with_capacity(layout.page_rows),
            rows_in_group: 0,
            ts_page: Vec::with_capacity(layout.page_rows),
            ts_flushed: 0,
            ts_rows_in_group: 0,
            shared: SharedTimes::new(layout.times_kept),
            keyed: HashMap::new(),
            times: Vec::new(),
            series_rows: SeriesRows::new(),
            last_labels: None,
            num_series: 0,
            num_samples: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
        };
        if let Err(e) = w.open_files() {
            w.abort();
            return Err(e);
        }
        Ok(w)
    }

    fn open_files(&mut self) -> Result<()> {
        let id = &self.id;
        self.samples = Some(open_writer(
            &self.tmp,
            SAMPLES_FILE,
            schema::samples_schema(),
            schema::samples_writer_properties(id),
            schema::SAMPLES_ROOT,
        )?);
        self.timestamps = Some(open_writer(
            &self.tmp,
            TIMESTAMPS_FILE,
            schema::timestamps_schema(),
            schema::timestamps_writer_properties(id),
            schema::TIMESTAMPS_ROOT,
        )?);
        self.series = Some(open_writer(
            &self.tmp,
            SERIES_FILE,
            schema::series_schema(),
            schema::series_writer_properties(id),
            schema::SERIES_ROOT,
        )?);
        Ok(())
    }

    /// Adds one series with its samples' start-timestamp runs (sorted,
    /// disjoint). Labels must sort after the previous series' labels;
    /// timestamps must strictly increase. An empty series is skipped.
    ///
    /// Series appended with equal `key`s are known to have equal
    /// timestamps (a merge names the input sequences a series' timestamps
    /// come from): a known key reuses its sequence without comparing,
    /// exactly and in constant memory per sequence however long it is.
    pub(crate) fn append_keyed(
        &mut self,
        labels: Labels,
        samples: &[Sample],
        key: Option<&[u64]>,
        starts: &[StartRun],
    ) -> Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        if let Some(prev) = &self.last_labels
            && prev >= &labels
        {
            return Err(Error::Invalid(format!(
                "block writer: series {labels} does not sort after {prev}"
            )));
        }
        if let Some(w) = samples.windows(2).find(|w| w[0].t >= w[1].t) {
            return Err(Error::Invalid(format!(
                "block writer: timestamps of {labels} not strictly increasing ({} then {})",
                w[0].t, w[1].t
            )));
        }
        if self.num_series == u32::MAX || samples.len() > u32::MAX as usize {
            return Err(Error::Invalid(
                "block writer: too many series or samples for one block".into(),
            ));
        }
        if let Some(w) = starts.windows(2).find(|w| w[0].last >= w[1].first) {
            return Err(Error::Invalid(format!(
                "block writer: start timestamp runs of {labels} overlap or are out of order \
                 ({}..={} then {}..={})",
                w[0].first, w[0].last, w[1].first, w[1].last
            )));
        }
        if let Some(r) = starts.iter().find(|r| r.first > r.last || r.start == 0) {
            return Err(Error::Invalid(format!(
                "block writer: bad start timestamp run of {labels} ({}..={} start {})",
                r.first, r.last, r.start
            )));
        }
        let id = self.num_series;
        self.add_starts(id, samples, starts)?;
        let first_row = self.num_samples;
        self.min_time = self.min_time.min(samples[0].t);
        self.max_time = self.max_time.max(samples[samples.len() - 1].t);
        let ts_row = match key.map(|k| (k, self.keyed.get(k).copied())) {
            Some((_, Some(row))) => row,
            Some((k, None)) => {
                let row = self.timestamps_row(samples)?;
                if self.keyed.len() < KEYED_KEPT {
                    self.keyed.insert(k.into(), row);
                }
                row
            }
            None => self.timestamps_row(samples)?,
        };

        let page_rows = self.layout.page_rows;
        if self.page_ts_row.len() + samples.len() > page_rows {
            self.flush_page()?;
        }
        if samples.len() <= page_rows {
            self.buffer(id, samples, ts_row);
        } else {
            // Cut a long series into near-equal pages of at most page_rows.
            let per_page = per_page(samples.len(), page_rows);
            for (i, chunk) in samples.chunks(per_page).enumerate() {
                self.buffer(id, chunk, ts_row + (i * per_page) as u64);
                self.flush_page()?;
            }
        }
        self.series_rows.push(id, &labels, first_row, samples)?;
        if self.series_rows.ids.len() >= SERIES_BATCH {
            self.flush_series()?;
        }
        self.num_series += 1;
        self.num_samples += samples.len() as u64;
        self.last_labels = Some(labels);
        Ok(())
    }

    /// Buffers series `id`'s start-timestamp runs in canonical form, and
    /// writes them out every [`STARTS_BATCH`] runs.
    fn add_starts(&mut self, id: u32, samples: &[Sample], starts: &[StartRun]) -> Result<()> {
        if starts.is_empty() {
            return Ok(());
        }
        self.runs.clear();
        crate::starts::canonical_runs(starts, samples, &mut self.runs);
        for &r in &self.runs {
            self.start_rows.push(id, r);
        }
        if self.start_rows.len() >= STARTS_BATCH {
            self.flush_starts()?;
        }
        Ok(())
    }

    fn flush_starts(&mut self) -> Result<()> {
        if self.start_rows.len() == 0 {
            return Ok(());
        }
        if self.starts.is_none() {
            self.starts = Some(open_writer(
                &self.tmp,
                STARTS_FILE,
                schema::starts_schema(),
                schema::starts_writer_properties(&self.id),
                schema::STARTS_ROOT,
            )?);
        }
        let batch = self.start_rows.take_batch()?;
        write_batch(self.starts.as_mut(), &self.tmp.join(STARTS_FILE), &batch)
    }

    /// Adds a run of one series' samples to the page being assembled; their
    /// timestamps are rows `ts_row..` of `timestamps.parquet`.
    fn buffer(&mut self, id: u32, samples: &[Sample], ts_row: u64) {
        self.page_sid.extend(std::iter::repeat_n(id, samples.len()));
        self.page_ts_row
            .extend(ts_row..ts_row + samples.len() as u64);
        self.page_v.push_run(samples);
    }

    /// The first row of `timestamps.parquet` holding `samples`' timestamps:
    /// an earlier series' equal sequence, or the sequence written now (in
    /// pages laid out as the samples' are).
    fn timestamps_row(&mut self, samples: &[Sample]) -> Result<u64> {
        let mut times = std::mem::take(&mut self.times);
        times.clear();
        times.extend(samples.iter().map(|s| s.t));
        let hash = SharedTimes::hash(&times);
        if let Some(row) = self.shared.find(hash, &times) {
            self.times = times;
            return Ok(row);
        }
        let row = self.ts_flushed + self.ts_page.len() as u64;
        let page_rows = self.layout.page_rows;
        if self.ts_page.len() + times.len() > page_rows {
            self.flush_ts_page()?;
        }
        if times.len() <= page_rows {
            self.ts_page.extend_from_slice(&times);
        } else {
            for chunk in times.chunks(per_page(times.len(), page_rows)) {
                self.ts_page.extend_from_slice(chunk);
                self.flush_ts_page()?;
            }
        }
        self.shared.keep(hash, &times, row);
        self.times = times;
        Ok(row)
    }

    /// Writes the pending timestamps as one data page per column.
    fn flush_ts_page(&mut self) -> Result<()> {
        if self.ts_page.is_empty() {
            return Ok(());
        }
        let rows = self.ts_page.len();
        let first = self.ts_flushed;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(first..first + rows as u64)),
            Arc::new(
                TimestampMillisecondArray::from(std::mem::replace(
                    &mut self.ts_page,
                    Vec::with_capacity(self.layout.page_rows),
                ))
                .with_timezone("UTC"),
            ),
        ];
        write_page(
            self.timestamps.as_mut(),
            &self.tmp.join(TIMESTAMPS_FILE),
            schema::timestamps_schema(),
            cols,
            &mut self.ts_rows_in_group,
            self.layout.row_group_rows,
        )?;
        self.ts_flushed += rows as u64;
        Ok(())
    }

    /// Writes the pending rows as one data page per column and closes the
    /// row group once it is large enough.
    fn flush_page(&mut self) -> Result<()> {
        if self.page_ts_row.is_empty() {
            return Ok(());
        }
        let cap = self.layout.page_rows;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(std::mem::replace(
                &mut self.page_sid,
                Vec::with_capacity(cap),
            ))),
            Arc::new(UInt64Array::from(std::mem::replace(
                &mut self.page_ts_row,
                Vec::with_capacity(cap),
            ))),
        ];
        let mut cols = cols;
        cols.extend(
            std::mem::replace(&mut self.page_v, PageValues::with_capacity(cap)).into_arrays(),
        );
        write_page(
            self.samples.as_mut(),
            &self.tmp.join(SAMPLES_FILE),
            schema::samples_schema(),
            cols,
            &mut self.rows_in_group,
            self.layout.row_group_rows,
        )
    }

    fn flush_series(&mut self) -> Result<()> {
        if self.series_rows.ids.is_empty() {
            return Ok(());
        }
        let batch = self.series_rows.take_batch()?;
        write_batch(self.series.as_mut(), &self.tmp.join(SERIES_FILE), &batch)
    }

    /// Deletes the temporary directory (best effort; used on errors).
    pub(crate) fn abort(&mut self) {
        self.samples = None;
        self.series = None;
        self.timestamps = None;
        self.starts = None;
        let _ = fs::remove_dir_all(&self.tmp);
    }

    /// Completes the files, writes `meta.json` and publishes the block.
    pub(crate) fn finish(mut self) -> Result<Option<BlockMeta>> {
        if self.num_series == 0 {
            self.abort();
            return Ok(None);
        }
        match self.finish_inner() {
            Ok(meta) => Ok(Some(meta)),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    fn finish_inner(&mut self) -> Result<BlockMeta> {
        self.flush_page()?;
        self.flush_ts_page()?;
        self.flush_series()?;
        self.flush_starts()?;
        let kv = schema::summary_kv(
            self.min_time,
            self.max_time,
            u64::from(self.num_series),
            self.num_samples,
        );
        let mut files = Vec::with_capacity(4);
        let starts = self.starts.take().map(|w| (STARTS_FILE, Some(w)));
        for (name, writer) in [
            (SAMPLES_FILE, self.samples.take()),
            (SERIES_FILE, self.series.take()),
            (TIMESTAMPS_FILE, self.timestamps.take()),
        ]
        .into_iter()
        .chain(starts)
        {
            let path = self.tmp.join(name);
            let mut writer =
                writer.ok_or_else(|| Error::Invalid("block writer already finished".into()))?;
            for e in &kv {
                writer.append_key_value_metadata(e.clone());
            }
            let sink = writer.into_inner().map_err(|e| Error::Parquet {
                path: path.clone(),
                source: e,
            })?;
            files.push(close_sink(&path, name, sink)?);
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sources = self.opts.sources.clone();
        if sources.is_empty() {
            sources.push(self.id.clone());
        }
        sources.sort();
        sources.dedup();
        let meta = BlockMeta {
            version: super::BLOCK_VERSION,
            id: self.id.clone(),
            min_time: self.min_time,
            max_time: self.max_time,
            num_series: u64::from(self.num_series),
            num_samples: self.num_samples,
            level: self.opts.level,
            sources,
            wal_segment_max: self.opts.wal_segment_max,
            files,
        };
        let path = self.tmp.join(META_FILE);
        let mut f = File::create_new(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(&meta.to_json())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        drop(f);
        sync_dir(&self.tmp)?;
        let dest = self.parent.join(&self.id);
        fs::rename(&self.tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        sync_dir(&self.parent)?;
        Ok(meta)
    }
}

/// Writes `batch` to `writer` (of the file at `path`), as it buffers it.
fn write_batch(
    writer: Option<&mut ArrowWriter<FileSink>>,
    path: &Path,
    batch: &RecordBatch,
) -> Result<()> {
    let w = writer.ok_or_else(|| Error::Invalid("block writer already finished".into()))?;
    w.write(batch).map_err(|e| Error::Parquet {
        path: path.to_owned(),
        source: e,
    })
}

/// A Parquet writer of `name` in the block directory `tmp`.
fn open_writer(
    tmp: &Path,
    name: &str,
    schema: arrow_schema::SchemaRef,
    props: parquet::file::properties::WriterProperties,
    root: &str,
) -> Result<ArrowWriter<FileSink>> {
    let path = tmp.join(name);
    ArrowWriter::try_new_with_options(
        create_sink(&path)?,
        schema,
        ArrowWriterOptions::new()
            .with_properties(props)
            .with_schema_root(root.into()),
    )
    .map_err(|e| Error::Parquet { path, source: e })
}

/// Writes `cols` to `writer` (of the file at `path`) as one data page per
/// column, and closes the row group once `rows_in_group` reaches
/// `row_group_rows`.
fn write_page(
    writer: Option<&mut ArrowWriter<FileSink>>,
    path: &Path,
    schema: arrow_schema::SchemaRef,
    cols: Vec<ArrayRef>,
    rows_in_group: &mut usize,
    row_group_rows: usize,
) -> Result<()> {
    let rows = cols.first().map_or(0, |c| c.len());
    let batch = RecordBatch::try_new(schema, cols)
        .map_err(|e| Error::Invalid(format!("{}: batch: {e}", path.display())))?;
    let w = writer.ok_or_else(|| Error::Invalid("block writer already finished".into()))?;
    let err = |e| Error::Parquet {
        path: path.to_owned(),
        source: e,
    };
    w.write(&batch).map_err(err)?;
    *rows_in_group += rows;
    if *rows_in_group >= row_group_rows {
        w.flush().map_err(err)?;
        *rows_in_group = 0;
    }
    Ok(())
}

/// Rows per page when a run of `n > page_rows` rows is cut into near-equal
/// pages of at most `page_rows`.
fn per_page(n: usize, page_rows: usize) -> usize {
    n.div_ceil(n.div_ceil(page_rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_times_compare_values_and_respect_the_budget() {
        let mut st = SharedTimes::new(4);
        let a = [1i64, 2, 3];
        let h = SharedTimes::hash(&a);
        assert_eq!(st.find(h, &a), None);
        st.keep(h, &a, 7);
        assert_eq!(st.find(h, &a), Some(7));
        // Same hash (forced), other values: not shared.
        assert_eq!(st.find(h, &[1, 2, 4]), None);
        assert_eq!(st.find(SharedTimes::hash(&a[..2]), &a[..2]), None);
        // Past the budget a sequence is not kept.
        let big = vec![5i64; 2];
        let hb = SharedTimes::hash(&big);
        st.keep(hb, &big, 10);
        assert_eq!(st.find(hb, &big), None);
        assert_eq!(st.kept_len, 3);
    }
}
