//! The in-memory form of `series.parquet`: label sets with every distinct
//! string stored once, each series' row range and time range, checked
//! against the block's invariants as it is loaded.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::index::MemPostings;
use crate::labels::{Label, Labels};
use crate::varint::put_uvarint;
use crate::wal::Cursor;

use super::meta::BlockMeta;
use super::schema::{self, FileKind};

/// Label sets and row ranges of a block's series, indexed by series id.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    /// Distinct label names and values.
    symbols: Vec<Arc<str>>,
    /// Per series, `pairs[offsets[i]..offsets[i + 1]]` are its (name, value)
    /// symbol ids, sorted by name, as LEB128 varints back to back. A block
    /// keeps its table while it is open, and most ids are small (names and
    /// values shared by many series come first), so a pair takes 2 to 4
    /// bytes where two `u32`s took 8: at ten labels a series, about 45
    /// bytes less per series and block.
    offsets: Vec<u32>,
    pairs: Vec<u8>,
    pub(crate) first_row: Vec<u64>,
    pub(crate) num_rows: Vec<u32>,
    pub(crate) min_time: Vec<i64>,
    pub(crate) max_time: Vec<i64>,
}

impl SeriesTable {
    pub(crate) fn len(&self) -> usize {
        self.first_row.len()
    }

    /// The rows `[first, end)` of series `id` in `samples.parquet`, or
    /// `None` if the block has no such series.
    pub(crate) fn rows(&self, id: usize) -> Option<(u64, u64)> {
        let first = *self.first_row.get(id)?;
        Some((first, first + u64::from(self.num_rows[id])))
    }

    /// The (name, value) pairs of series `id` (which must be in range).
    pub(crate) fn pairs(&self, id: u32) -> impl Iterator<Item = (&str, &str)> {
        let (a, b) = (
            self.offsets[id as usize] as usize,
            self.offsets[id as usize + 1] as usize,
        );
        symbol_ids(&self.pairs[a..b])
            .map(|(n, v)| (&*self.symbols[n as usize], &*self.symbols[v as usize]))
    }

    pub(crate) fn labels(&self, id: u32) -> Labels {
        Labels::from_sorted_counted(
            self.pairs(id).count(),
            self.pairs(id).map(|(n, v)| Label::new(n, v)),
        )
    }

    /// Builds the inverted index over all series.
    pub(crate) fn postings(&self) -> MemPostings {
        let mut p = MemPostings::new();
        for id in 0..self.len() as u32 {
            p.add(id, self.pairs(id));
        }
        p
    }

    /// Approximate heap size in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.symbols.iter().map(|s| s.len() + 16).sum::<usize>()
            + self.offsets.len() * 4
            + self.pairs.len()
            + self.len() * (8 + 4 + 8 + 8)
    }

    /// Decodes and validates `series.parquet` against `meta`.
    pub(crate) fn load(path: &Path, data: Bytes, meta: &BlockMeta) -> Result<SeriesTable> {
        let bad = |d: String| Error::corruption(path, d);
        let builder = ParquetRecordBatchReaderBuilder::try_new(data)
            .map_err(|e| bad(format!("not a valid Parquet file: {e}")))?;
        let kvs = schema::check_file(path, builder.metadata(), FileKind::Series, meta.version)?;
        let rows = builder.metadata().file_metadata().num_rows();
        if u64::try_from(rows).ok() != Some(meta.num_series) {
            return Err(bad(format!(
                "{rows} rows, meta.json says {} series",
                meta.num_series
            )));
        }
        if let Some(n) = schema::kv_i64(path, &kvs, schema::KV_NUM_SERIES)?
            && u64::try_from(n).ok() != Some(meta.num_series)
        {
            return Err(bad(format!(
                "{} is {n}, meta.json says {}",
                schema::KV_NUM_SERIES,
                meta.num_series
            )));
        }
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let n = meta.num_series as usize;
        let mut loader = Loader {
            t: SeriesTable {
                symbols: Vec::new(),
                offsets: Vec::with_capacity(n + 1),
                pairs: Vec::new(),
                first_row: Vec::with_capacity(n),
                num_rows: Vec::with_capacity(n),
                min_time: Vec::with_capacity(n),
                max_time: Vec::with_capacity(n),
            },
            interned: HashMap::new(),
            next_row: 0,
            meta,
        };
        loader.t.offsets.push(0);
        for batch in reader {
            let batch = batch.map_err(|e| bad(format!("cannot decode: {e}")))?;
            loader.add_batch(&batch).map_err(bad)?;
        }
        if loader.t.len() != n {
            return Err(bad(format!(
                "{} series decoded, meta.json says {n}",
                loader.t.len()
            )));
        }
        if loader.next_row != meta.num_samples {
            return Err(bad(format!(
                "series cover {} rows, meta.json says {} samples",
                loader.next_row, meta.num_samples
            )));
        }
        // The pairs grew by doubling with no count to size them from: up
        // to half their memory would stay unused for the block's lifetime.
        loader.t.pairs.shrink_to_fit();
        loader.t.symbols.shrink_to_fit();
        Ok(loader.t)
    }
}

struct Loader<'a> {
    t: SeriesTable,
    interned: HashMap<Arc<str>, u32>,
    next_row: u64,
    meta: &'a BlockMeta,
}

impl Loader<'_> {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.interned.get(s) {
            return id;
        }
        let id = self.t.symbols.len() as u32;
        let s: Arc<str> = Arc::from(s);
        self.t.symbols.push(s.clone());
        self.interned.insert(s, id);
        id
    }

    /// Appends (name, value) to the pairs of the series being added.
    fn push_pair(&mut self, name: &str, value: &str) {
        let (n, v) = (self.intern(name), self.intern(value));
        put_uvarint(&mut self.t.pairs, u64::from(n));
        put_uvarint(&mut self.t.pairs, u64::from(v));
    }

    fn add_batch(&mut self, batch: &RecordBatch) -> std::result::Result<(), String> {
        let col = |i: usize| batch.column(i);
        let ids = col(0)
            .as_primitive_opt::<UInt32Type>()
            .ok_or("series_id is not UInt32")?;
        let labels = col(1).as_map_opt().ok_or("labels is not a map")?;
        let first_row = col(2)
            .as_primitive_opt::<UInt64Type>()
            .ok_or("first_row is not UInt64")?;
        let num_rows = col(3)
            .as_primitive_opt::<UInt32Type>()
            .ok_or("num_rows is not UInt32")?;
        let min_time = col(4)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or("min_time is not a timestamp")?;
        let max_time = col(5)
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or("max_time is not a timestamp")?;
        let keys = labels
            .keys()
            .as_string_opt::<i32>()
            .ok_or("label names are not strings")?;
        let values = labels
            .values()
            .as_string_opt::<i32>()
            .ok_or("label values are not strings")?;
        for c in batch.columns() {
            if c.null_count() > 0 {
                return Err("null in a required column".into());
            }
        }
        if keys.null_count() > 0 || values.null_count() > 0 {
            return Err("null label name or value".into());
        }
        let offsets = labels.value_offsets();
        for row in 0..batch.num_rows() {
            let id = self.t.len();
            if ids.value(row) as usize != id {
                return Err(format!("row {id} has series_id {}", ids.value(row)));
            }
            let (a, b) = (offsets[row] as usize, offsets[row + 1] as usize);
            if a > b || b > keys.len() {
                return Err(format!("series {id}: bad label offsets"));
            }
            let start = self.t.pairs.len();
            for i in a..b {
                let (name, value) = (keys.value(i), values.value(i));
                if name.is_empty() || value.is_empty() {
                    return Err(format!("series {id}: empty label name or value"));
                }
                if i > a && keys.value(i - 1) >= name {
                    return Err(format!("series {id}: label names not sorted and unique"));
                }
                self.push_pair(name, value);
            }
            if id > 0 {
                let prev = self.t.offsets[id - 1] as usize..start;
                if self.cmp_pairs(prev, start..self.t.pairs.len()) != Ordering::Less {
                    return Err(format!("series {id} does not sort after series {}", id - 1));
                }
            }
            self.t.offsets.push(
                u32::try_from(self.t.pairs.len()).map_err(|_| "too many labels".to_string())?,
            );
            let (first, n, lo, hi) = (
                first_row.value(row),
                num_rows.value(row),
                min_time.value(row),
                max_time.value(row),
            );
            if first != self.next_row {
                return Err(format!(
                    "series {id} starts at row {first}, want {}",
                    self.next_row
                ));
            }
            if n == 0 {
                return Err(format!("series {id} has no rows"));
            }
            if lo > hi || lo < self.meta.min_time || hi > self.meta.max_time {
                return Err(format!(
                    "series {id} time range [{lo}, {hi}] invalid or outside the block's"
                ));
            }
            if u64::from(n) > (hi.abs_diff(lo)).saturating_add(1) {
                return Err(format!(
                    "series {id}: {n} rows cannot have unique timestamps in [{lo}, {hi}]"
                ));
            }
            self.next_row += u64::from(n);
            if self.next_row > self.meta.num_samples {
                return Err(format!(
                    "series {id} ends past the block's {} samples",
                    self.meta.num_samples
                ));
            }
            self.t.first_row.push(first);
            self.t.num_rows.push(n);
            self.t.min_time.push(lo);
            self.t.max_time.push(hi);
        }
        Ok(())
    }

    /// Compares two label sets given as byte ranges of `pairs`, in
    /// [`Labels`] order.
    fn cmp_pairs(&self, a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> Ordering {
        let sym = |i: u32| &*self.t.symbols[i as usize];
        let (mut pa, mut pb) = (symbol_ids(&self.t.pairs[a]), symbol_ids(&self.t.pairs[b]));
        loop {
            match (pa.next(), pb.next()) {
                (Some(x), Some(y)) => {
                    let o = sym(x.0).cmp(sym(y.0)).then_with(|| sym(x.1).cmp(sym(y.1)));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                (x, y) => return x.is_some().cmp(&y.is_some()),
            }
        }
    }
}

/// The (name, value) symbol ids coded in `bytes` (as [`Loader`] writes
/// them: whole varints of `u32`s, in pairs).
fn symbol_ids(bytes: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut c = Cursor { b: bytes };
    std::iter::from_fn(move || Some((c.uvarint()? as u32, c.uvarint()? as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label sets coded as varint pairs decode to themselves and compare
    /// as [`Labels`] do, with ids past one varint byte and a set that is a
    /// prefix of another.
    #[test]
    fn coded_pairs_decode_and_compare_as_labels() {
        let meta = BlockMeta {
            version: super::super::BLOCK_VERSION,
            id: String::new(),
            min_time: 0,
            max_time: 0,
            num_series: 0,
            num_samples: 0,
            level: 0,
            sources: Vec::new(),
            wal_segment_max: None,
            files: Vec::new(),
        };
        let mut loader = Loader {
            t: SeriesTable::default(),
            interned: HashMap::new(),
            next_row: 0,
            meta: &meta,
        };
        // Ids 0..300 taken, so the labels below code in two bytes.
        for i in 0..300 {
            loader.intern(&format!("filler{i}"));
        }
        let sets: Vec<Labels> = [
            &[("a", "1")][..],
            &[("a", "1"), ("b", "2")],
            &[("a", "1"), ("b", "3")],
            &[("a", "10")],
            &[("b", "0")],
        ]
        .iter()
        .map(|s| Labels::new(s))
        .collect();
        loader.t.offsets.push(0);
        for set in &sets {
            for l in set.iter() {
                loader.push_pair(&l.name, &l.value);
            }
            loader.t.offsets.push(loader.t.pairs.len() as u32);
            loader.t.first_row.push(0);
        }
        let range = |i: usize| loader.t.offsets[i] as usize..loader.t.offsets[i + 1] as usize;
        for (i, a) in sets.iter().enumerate() {
            assert_eq!(&loader.t.labels(i as u32), a);
            for (j, b) in sets.iter().enumerate() {
                assert_eq!(loader.cmp_pairs(range(i), range(j)), a.cmp(b), "{a} vs {b}");
            }
        }
    }
}
