//! SQL over Silt blocks through DataFusion.
//!
//! A block's two Parquet files are plain, self-describing Parquet (see
//! `docs/format/block.md`); this crate only registers them. [`block_context`]
//! builds a [`SessionContext`] with two tables spanning the given blocks:
//!
//! - `samples(block_id, series_id, timestamp, value)`
//! - `series(block_id, series_id, labels, first_row, num_rows, min_time, max_time)`
//!
//! `series_id` is local to a block, so joins use both keys:
//! `samples s JOIN series r ON s.block_id = r.block_id AND s.series_id = r.series_id`.
//! Label values are read with map indexing: `r.labels['job']`.
//!
//! The tables read the files on each query; a block deleted by compaction
//! after the context was built makes later queries over it fail.

use std::path::{Path, PathBuf};

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext, col, lit};

use engine::block::{SAMPLES_FILE, SERIES_FILE, read_meta};

/// Name of the table of all samples.
pub const SAMPLES_TABLE: &str = "samples";
/// Name of the table of all series.
pub const SERIES_TABLE: &str = "series";
/// The column added to both tables that names the block a row comes from.
pub const BLOCK_ID_COLUMN: &str = "block_id";

const SAMPLES_COLUMNS: [&str; 3] = ["series_id", "timestamp", "value"];
const SERIES_COLUMNS: [&str; 6] = [
    "series_id",
    "labels",
    "first_row",
    "num_rows",
    "min_time",
    "max_time",
];

/// A new session with the `samples` and `series` tables over `block_dirs`.
/// Each directory's `meta.json` is verified first (its id becomes
/// `block_id`); the Parquet files are not re-checksummed here. With no
/// blocks the tables are not registered.
pub async fn block_context(block_dirs: &[PathBuf]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    register_blocks(&ctx, block_dirs).await?;
    Ok(ctx)
}

/// Registers (or replaces) the `samples` and `series` tables of `ctx` over
/// `block_dirs`.
pub async fn register_blocks(ctx: &SessionContext, block_dirs: &[PathBuf]) -> Result<()> {
    let mut samples: Option<DataFrame> = None;
    let mut series: Option<DataFrame> = None;
    for dir in block_dirs {
        let meta = read_meta(dir).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let s = read_file(ctx, dir, SAMPLES_FILE, &meta.id, &SAMPLES_COLUMNS).await?;
        samples = Some(match samples {
            None => s,
            Some(acc) => acc.union(s)?,
        });
        let r = read_file(ctx, dir, SERIES_FILE, &meta.id, &SERIES_COLUMNS).await?;
        series = Some(match series {
            None => r,
            Some(acc) => acc.union(r)?,
        });
    }
    for (name, df) in [(SAMPLES_TABLE, samples), (SERIES_TABLE, series)] {
        if let Some(df) = df {
            ctx.deregister_table(name)?;
            ctx.register_table(name, df.into_view())?;
        }
    }
    Ok(())
}

/// One Parquet file as a data frame with a leading `block_id` column.
async fn read_file(
    ctx: &SessionContext,
    dir: &Path,
    file: &str,
    id: &str,
    columns: &[&str],
) -> Result<DataFrame> {
    let path = dir.join(file);
    let path = path.to_str().ok_or_else(|| {
        DataFusionError::Plan(format!("block path {} is not UTF-8", path.display()))
    })?;
    let df = ctx
        .read_parquet(path, ParquetReadOptions::default())
        .await?;
    let mut exprs = vec![lit(id.to_owned()).alias(BLOCK_ID_COLUMN)];
    exprs.extend(columns.iter().map(|c| col(format!("\"{c}\""))));
    df.select(exprs)
}
