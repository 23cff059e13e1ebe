//! Immutable on-disk blocks: a directory of Parquet files (two before
//! format version 3, three from it, and from version 4 a fourth when some
//! sample has a start timestamp) and a
//! checksummed `meta.json`, written once, memory-mapped for reading, merged
//! by compaction and deleted whole. The format is specified in
//! `docs/format/block.md`.
//!
//! Writer, reader, merger, in the tantivy pattern:
//! - [`write_block`] streams sorted series into `<parent>/<id>.tmp/`, writes
//!   `meta.json` last, fsyncs and renames the directory to `<parent>/<id>`.
//! - [`Block::open`] verifies everything (magic, version, checksums, schema,
//!   series table) and keeps the Parquet footer and page index parsed, so a
//!   read decodes only the pages of the series it asks for.
//! - [`merge_blocks`] k-way merges blocks by labels, one series at a time.
//!
//! **Invariant:** a directory without a valid `meta.json` is not a block;
//! the rename is the commit point. Directories named `<id>.tmp` are
//! leftovers of interrupted writes and may be deleted
//! ([`remove_incomplete`]).

pub(crate) mod cache;
pub(crate) mod decimal;
mod id;
mod merge;
mod meta;
mod pages;
mod reader;
pub mod schema;
mod series;
mod starts;
mod times;
mod writer;

use std::path::{Path, PathBuf};

pub use cache::{BlockCache, CacheStats};
pub use decimal::sample_value;
pub use id::{ID_LEN, block_id_time, new_block_id, new_block_id_at, parse_block_id};
pub use merge::{merge_blocks, merge_blocks_within};
pub use meta::{BlockMeta, FileMeta, read_meta};
pub use reader::Block;
pub use writer::{BlockSeries, BlockWriteOptions, write_block};

use crate::error::{Error, Result};

/// `meta.json` `format` value.
pub const BLOCK_FORMAT: &str = "silt-block";
/// Format version written (and the newest one read). Version 2 stores
/// decimal values as integer mantissas (`value_int`, `value_scale`);
/// version 3 stores each distinct timestamp sequence once, in
/// `timestamps.parquet`, and samples refer to it by row (`ts_row`);
/// version 4 adds `starts.parquet`, the samples' start timestamps, when
/// some sample has one.
pub const BLOCK_VERSION: u32 = 4;
/// Oldest format version still read: version 1 (values only as `DOUBLE`).
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;
/// `silt.format` of `samples.parquet`.
pub const SAMPLES_FORMAT: &str = "silt-block-samples";
/// `silt.format` of `series.parquet`.
pub const SERIES_FORMAT: &str = "silt-block-series";
/// `silt.format` of `timestamps.parquet` (version 3).
pub const TIMESTAMPS_FORMAT: &str = "silt-block-timestamps";
/// `silt.format` of `starts.parquet` (version 4).
pub const STARTS_FORMAT: &str = "silt-block-starts";

pub const META_FILE: &str = "meta.json";
pub const SAMPLES_FILE: &str = "samples.parquet";
pub const SERIES_FILE: &str = "series.parquet";
/// The shared timestamp sequences (version 3 on).
pub const TIMESTAMPS_FILE: &str = "timestamps.parquet";
/// The samples' start timestamps (version 4 on; only when some has one).
pub const STARTS_FILE: &str = "starts.parquet";
/// Suffix of a block directory being written.
pub const TMP_SUFFIX: &str = ".tmp";

/// Directories under `parent` whose name is a block id (candidates for
/// [`Block::open`]), sorted by id, i.e. by creation time.
pub fn list_block_dirs(parent: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(parent).map_err(|e| Error::io(parent, e))? {
        let entry = entry.map_err(|e| Error::io(parent, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| parse_block_id(n).is_some())
            && entry
                .file_type()
                .map_err(|e| Error::io(entry.path(), e))?
                .is_dir()
        {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes `<id>.tmp` directories under `parent` (interrupted writes).
/// Call only when no block is being written there. Returns what it removed.
pub fn remove_incomplete(parent: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(parent).map_err(|e| Error::io(parent, e))? {
        let entry = entry.map_err(|e| Error::io(parent, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(TMP_SUFFIX)) else {
            continue;
        };
        if parse_block_id(stem).is_some() {
            let path = entry.path();
            std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        writer::sync_dir(parent)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
