//! SQL over Silt's data through DataFusion.
//!
//! Two ways in. [`table`]: the `samples` and `series` tables over a live
//! [`engine::Db`] (head and blocks, as PromQL sees them), served by
//! `/api/v1/sql` ([`api`]); this is what users and reports query. And this
//! module's raw block tables, for looking at the storage itself:
//!
//! A block's Parquet files are plain, self-describing Parquet (see
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
//! `samples.value` is the sample value, bit-exact: for version-2 blocks it
//! is computed from the stored `value`, `value_int` and `value_scale`
//! columns by the scalar function [`SAMPLE_VALUE_UDF`] (the engine's own
//! formula), so SQL sees the same `DOUBLE` column for every version. From
//! version 3 `samples.timestamp` comes from `timestamps.parquet`, joined on
//! `samples.ts_row = timestamps.row`.
//!
//! The tables read the files on each query; a block deleted by compaction
//! after the context was built makes later queries over it fail.

pub mod api;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int8Type, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::JoinType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::{DataFrame, Expr, ParquetReadOptions, SessionContext, col, lit};

use engine::block::{SAMPLES_FILE, SERIES_FILE, TIMESTAMPS_FILE, read_meta, sample_value};

/// Name of the table of all samples.
pub const SAMPLES_TABLE: &str = "samples";
/// Name of the table of all series.
pub const SERIES_TABLE: &str = "series";
/// The column added to both tables that names the block a row comes from.
pub const BLOCK_ID_COLUMN: &str = "block_id";

/// Name of the scalar function `silt_sample_value(value, value_int,
/// value_scale) -> DOUBLE` that turns version-2 value columns into the
/// sample value; registered by [`register_blocks`].
pub const SAMPLE_VALUE_UDF: &str = "silt_sample_value";

const SAMPLES_KEYS: [&str; 2] = ["series_id", "timestamp"];
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
    let udf = sample_value_udf();
    ctx.register_udf(udf.clone());
    let mut samples: Option<DataFrame> = None;
    let mut series: Option<DataFrame> = None;
    for dir in block_dirs {
        let meta = read_meta(dir).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut cols: Vec<Expr> = if meta.version >= 3 {
            vec![quoted("series_id"), quoted("ts_row")]
        } else {
            SAMPLES_KEYS.iter().map(|c| quoted(c)).collect()
        };
        cols.push(if meta.version >= 2 {
            udf.call(vec![
                quoted("value"),
                quoted("value_int"),
                quoted("value_scale"),
            ])
            .alias("value")
        } else {
            quoted("value")
        });
        let mut s = read_file(ctx, dir, SAMPLES_FILE, &meta.id, cols).await?;
        if meta.version >= 3 {
            let times = read_parquet(ctx, dir, TIMESTAMPS_FILE)
                .await?
                .select(vec![quoted("row"), quoted("timestamp")])?;
            s = s
                .join(times, JoinType::Inner, &["ts_row"], &["row"], None)?
                .select(vec![
                    quoted(BLOCK_ID_COLUMN),
                    quoted("series_id"),
                    quoted("timestamp"),
                    quoted("value"),
                ])?;
        }
        samples = Some(match samples {
            None => s,
            Some(acc) => acc.union(s)?,
        });
        let cols = SERIES_COLUMNS.iter().map(|c| quoted(c)).collect();
        let r = read_file(ctx, dir, SERIES_FILE, &meta.id, cols).await?;
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

/// A column reference that keeps the name's case (and SQL keywords) as is.
fn quoted(name: &str) -> Expr {
    col(format!("\"{name}\""))
}

/// `silt_sample_value(value DOUBLE, value_int BIGINT, value_scale TINYINT)
/// -> DOUBLE`: the engine's formula (`engine::block::sample_value`); an
/// out-of-range scale is an execution error, a null input gives null.
pub fn sample_value_udf() -> ScalarUDF {
    create_udf(
        SAMPLE_VALUE_UDF,
        vec![DataType::Float64, DataType::Int64, DataType::Int8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let [v, m, k] = arrays.as_slice() else {
                return Err(DataFusionError::Internal(format!(
                    "{SAMPLE_VALUE_UDF} takes 3 arguments, got {}",
                    arrays.len()
                )));
            };
            let (v, m, k) = (
                v.as_primitive::<Float64Type>(),
                m.as_primitive::<Int64Type>(),
                k.as_primitive::<Int8Type>(),
            );
            let out = (0..v.len())
                .map(|i| {
                    if v.is_null(i) || m.is_null(i) || k.is_null(i) {
                        return Ok(None);
                    }
                    sample_value(v.value(i), m.value(i), k.value(i))
                        .map(Some)
                        .ok_or_else(|| {
                            DataFusionError::Execution(format!(
                                "corrupt block: value_scale {} out of range",
                                k.value(i)
                            ))
                        })
                })
                .collect::<Result<Float64Array>>()?;
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        }),
    )
}

/// One Parquet file as a data frame with a leading `block_id` column and
/// then `columns`.
async fn read_file(
    ctx: &SessionContext,
    dir: &Path,
    file: &str,
    id: &str,
    columns: Vec<Expr>,
) -> Result<DataFrame> {
    let df = read_parquet(ctx, dir, file).await?;
    let mut exprs = vec![lit(id.to_owned()).alias(BLOCK_ID_COLUMN)];
    exprs.extend(columns);
    df.select(exprs)
}

/// One Parquet file of a block as a data frame.
async fn read_parquet(ctx: &SessionContext, dir: &Path, file: &str) -> Result<DataFrame> {
    let path = dir.join(file);
    let path = path.to_str().ok_or_else(|| {
        DataFusionError::Plan(format!("block path {} is not UTF-8", path.display()))
    })?;
    ctx.read_parquet(path, ParquetReadOptions::default()).await
}
