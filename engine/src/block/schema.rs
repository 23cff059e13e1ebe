//! The Arrow/Parquet schemas of a block's Parquet files, the writer
//! properties that fix their encodings, and the checks a reader applies to a
//! file's schema and metadata before trusting it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::basic::{
    Compression, Encoding, IntType, LogicalType, Repetition, TimeUnit as PqTimeUnit, TimestampType,
    Type as PhysicalType, ZstdLevel,
};
use parquet::file::metadata::{KeyValue, ParquetMetaData, SortingColumn};
use parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion,
};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};

use super::{
    BLOCK_VERSION, OLDEST_SUPPORTED_VERSION, SAMPLES_FORMAT, SERIES_FORMAT, STARTS_FORMAT,
    TIMESTAMPS_FORMAT,
};

/// Column names of `samples.parquet`, in file order.
pub const COL_SERIES_ID: &str = "series_id";
pub const COL_TIMESTAMP: &str = "timestamp";
/// Version 3: the row of `timestamps.parquet` holding the sample's time.
pub const COL_TS_ROW: &str = "ts_row";
pub const COL_VALUE: &str = "value";
pub const COL_VALUE_INT: &str = "value_int";
pub const COL_VALUE_SCALE: &str = "value_scale";
/// Number of leaf columns of `samples.parquet` in the current version.
pub const SAMPLES_COLUMNS: usize = 5;

/// Column names of `timestamps.parquet`, in file order: `row` (the row
/// number) and [`COL_TIMESTAMP`].
pub const COL_ROW: &str = "row";

/// Column names of `series.parquet`, in file order.
pub const COL_LABELS: &str = "labels";
pub const COL_FIRST_ROW: &str = "first_row";
pub const COL_NUM_ROWS: &str = "num_rows";
pub const COL_MIN_TIME: &str = "min_time";
pub const COL_MAX_TIME: &str = "max_time";

/// Column names of `starts.parquet` (version 4), in file order, after
/// [`COL_SERIES_ID`].
pub const COL_FIRST_TIME: &str = "first_time";
pub const COL_LAST_TIME: &str = "last_time";
pub const COL_START_TIME: &str = "start_time";

/// Names of the Parquet schema roots.
pub const SAMPLES_ROOT: &str = "silt_samples";
pub const SERIES_ROOT: &str = "silt_series";
pub const TIMESTAMPS_ROOT: &str = "silt_timestamps";
pub const STARTS_ROOT: &str = "silt_starts";

/// Key/value metadata keys.
pub const KV_FORMAT: &str = "silt.format";
pub const KV_FORMAT_VERSION: &str = "silt.format_version";
pub const KV_MIN_TIME: &str = "silt.min_time";
pub const KV_MAX_TIME: &str = "silt.max_time";
pub const KV_NUM_SERIES: &str = "silt.num_series";
pub const KV_NUM_SAMPLES: &str = "silt.num_samples";
pub const KV_BLOCK_ID: &str = "silt.block_id";

/// Upper bound on rows per data page of `samples.parquet`; a page holds
/// whole series up to this many rows, a longer series is cut into
/// near-equal pages of at most this many rows.
pub const MAX_PAGE_ROWS: usize = 4096;
/// A row group is closed after the first page that brings it to at least
/// this many rows.
pub const ROW_GROUP_ROWS: usize = 1 << 20;
/// zstd level for every file.
pub const ZSTD_LEVEL: i32 = 3;
/// Rows per row group of `series.parquet`. The writer holds a row group's
/// encoded label maps until it closes, so this bounds a block write's
/// series memory (about 3 MiB with node_exporter-like labels).
pub const SERIES_ROW_GROUP_ROWS: usize = 4096;

/// The timestamp type of all time columns: milliseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Arrow schema of `samples.parquet` (current version).
pub fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES_ID, DataType::UInt32, false),
        Field::new(COL_TS_ROW, DataType::UInt64, false),
        Field::new(COL_VALUE, DataType::Float64, false),
        Field::new(COL_VALUE_INT, DataType::Int64, false),
        Field::new(COL_VALUE_SCALE, DataType::Int8, false),
    ]))
}

/// Arrow schema of `timestamps.parquet`.
pub fn timestamps_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_ROW, DataType::UInt64, false),
        Field::new(COL_TIMESTAMP, timestamp_type(), false),
    ]))
}

/// Arrow schema of `starts.parquet`.
pub fn starts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES_ID, DataType::UInt32, false),
        Field::new(COL_FIRST_TIME, timestamp_type(), false),
        Field::new(COL_LAST_TIME, timestamp_type(), false),
        Field::new(COL_START_TIME, timestamp_type(), false),
    ]))
}

/// The entries struct of the `labels` map.
pub fn label_entries_field() -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ])),
        false,
    ))
}

/// Arrow schema of `series.parquet`.
pub fn series_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(COL_SERIES_ID, DataType::UInt32, false),
        Field::new(
            COL_LABELS,
            DataType::Map(label_entries_field(), false),
            false,
        ),
        Field::new(COL_FIRST_ROW, DataType::UInt64, false),
        Field::new(COL_NUM_ROWS, DataType::UInt32, false),
        Field::new(COL_MIN_TIME, timestamp_type(), false),
        Field::new(COL_MAX_TIME, timestamp_type(), false),
    ]))
}

fn created_by() -> String {
    concat!("silt ", env!("CARGO_PKG_VERSION"), " (parquet-rs)").to_owned()
}

fn kv(key: &str, value: impl ToString) -> KeyValue {
    KeyValue::new(key.to_owned(), value.to_string())
}

/// The properties both paged files (`samples.parquet`, `timestamps.parquet`)
/// share: page boundaries are decided by the block writer, every
/// `ArrowWriter::write` call becomes one page (the row-count limit of 1
/// flushes a page after each write; the byte limit is out of reach); page
/// statistics, zstd, no dictionaries; every column `DELTA_BINARY_PACKED`
/// unless set otherwise.
fn paged_properties(format: &str, block_id: &str) -> WriterPropertiesBuilder {
    base_properties(format, block_id)
        .set_dictionary_enabled(false)
        .set_encoding(Encoding::DELTA_BINARY_PACKED)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_write_batch_size(MAX_PAGE_ROWS)
        .set_data_page_row_count_limit(1)
        .set_data_page_size_limit(1 << 30)
}

/// What every file's properties share: data page format v1, `created_by`,
/// zstd, and the format keys.
fn base_properties(format: &str, block_id: &str) -> WriterPropertiesBuilder {
    let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default());
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_created_by(created_by())
        .set_compression(zstd)
        .set_key_value_metadata(Some(vec![
            kv(KV_FORMAT, format),
            kv(KV_FORMAT_VERSION, BLOCK_VERSION),
            kv(KV_BLOCK_ID, block_id),
        ]))
}

fn ascending(columns: &[i32]) -> Option<Vec<SortingColumn>> {
    Some(
        columns
            .iter()
            .map(|&column_idx| SortingColumn {
                column_idx,
                descending: false,
                nulls_first: false,
            })
            .collect(),
    )
}

/// Writer properties of `samples.parquet`.
pub fn samples_writer_properties(block_id: &str) -> WriterProperties {
    paged_properties(SAMPLES_FORMAT, block_id)
        .set_column_encoding(ColumnPath::from(COL_VALUE), Encoding::BYTE_STREAM_SPLIT)
        .set_sorting_columns(ascending(&[0, 1]))
        .build()
}

/// Writer properties of `timestamps.parquet`.
pub fn timestamps_writer_properties(block_id: &str) -> WriterProperties {
    paged_properties(TIMESTAMPS_FORMAT, block_id)
        .set_sorting_columns(ascending(&[0]))
        .build()
}

/// Writer properties of `starts.parquet`: every column
/// `DELTA_BINARY_PACKED` (a counter's runs follow each other by about the
/// same time), zstd, chunk statistics.
pub fn starts_writer_properties(block_id: &str) -> WriterProperties {
    base_properties(STARTS_FORMAT, block_id)
        .set_dictionary_enabled(false)
        .set_encoding(Encoding::DELTA_BINARY_PACKED)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_sorting_columns(ascending(&[0, 1]))
        .build()
}

/// Writer properties of `series.parquet`.
pub fn series_writer_properties(block_id: &str) -> WriterProperties {
    let mut b = base_properties(SERIES_FORMAT, block_id)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(SERIES_ROW_GROUP_ROWS))
        .set_sorting_columns(ascending(&[0]));
    // The integer and time columns delta-encode; the labels keep their
    // dictionaries.
    for col in [
        COL_SERIES_ID,
        COL_FIRST_ROW,
        COL_NUM_ROWS,
        COL_MIN_TIME,
        COL_MAX_TIME,
    ] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(col), false)
            .set_column_encoding(ColumnPath::from(col), Encoding::DELTA_BINARY_PACKED);
    }
    b.build()
}

/// Key/value metadata appended when a file is finished.
pub fn summary_kv(
    min_time: i64,
    max_time: i64,
    num_series: u64,
    num_samples: u64,
) -> Vec<KeyValue> {
    vec![
        kv(KV_MIN_TIME, min_time),
        kv(KV_MAX_TIME, max_time),
        kv(KV_NUM_SERIES, num_series),
        kv(KV_NUM_SAMPLES, num_samples),
    ]
}

/// One expected leaf column: dotted path, physical type, logical type.
struct Leaf {
    path: &'static str,
    physical: PhysicalType,
    logical: Option<LogicalType>,
    repetition: Repetition,
}

fn ts_logical() -> Option<LogicalType> {
    Some(LogicalType::Timestamp(TimestampType {
        is_adjusted_to_u_t_c: true,
        unit: PqTimeUnit::MILLIS,
    }))
}

fn uint(bits: i8) -> Option<LogicalType> {
    Some(LogicalType::Integer(IntType {
        bit_width: bits,
        is_signed: false,
    }))
}

fn string() -> Option<LogicalType> {
    Some(LogicalType::String)
}

fn int8() -> Option<LogicalType> {
    Some(LogicalType::Integer(IntType {
        bit_width: 8,
        is_signed: true,
    }))
}

/// The `series_id` leaf every file but `timestamps.parquet` starts with.
fn series_id_leaf() -> Leaf {
    Leaf {
        path: COL_SERIES_ID,
        physical: PhysicalType::INT32,
        logical: uint(32),
        repetition: Repetition::REQUIRED,
    }
}

/// A time column: milliseconds, UTC.
fn time_leaf(path: &'static str) -> Leaf {
    Leaf {
        path,
        physical: PhysicalType::INT64,
        logical: ts_logical(),
        repetition: Repetition::REQUIRED,
    }
}

/// Leaves of `samples.parquet` in format `version` (1 to 3).
fn samples_leaves(version: u32) -> Vec<Leaf> {
    use PhysicalType as P;
    const R: Repetition = Repetition::REQUIRED;
    let mut leaves = vec![
        series_id_leaf(),
        if version >= 3 {
            Leaf {
                path: COL_TS_ROW,
                physical: P::INT64,
                logical: uint(64),
                repetition: R,
            }
        } else {
            time_leaf(COL_TIMESTAMP)
        },
    ];
    if version == 1 {
        leaves.push(Leaf {
            path: COL_VALUE,
            physical: P::DOUBLE,
            logical: None,
            repetition: R,
        });
    } else {
        leaves.extend([
            Leaf {
                path: COL_VALUE,
                physical: P::DOUBLE,
                logical: None,
                repetition: R,
            },
            Leaf {
                path: COL_VALUE_INT,
                physical: P::INT64,
                logical: None,
                repetition: R,
            },
            Leaf {
                path: COL_VALUE_SCALE,
                physical: P::INT32,
                logical: int8(),
                repetition: R,
            },
        ]);
    }
    leaves
}

fn timestamps_leaves() -> Vec<Leaf> {
    use PhysicalType as P;
    const R: Repetition = Repetition::REQUIRED;
    vec![
        Leaf {
            path: COL_ROW,
            physical: P::INT64,
            logical: uint(64),
            repetition: R,
        },
        time_leaf(COL_TIMESTAMP),
    ]
}

fn starts_leaves() -> Vec<Leaf> {
    vec![
        series_id_leaf(),
        time_leaf(COL_FIRST_TIME),
        time_leaf(COL_LAST_TIME),
        time_leaf(COL_START_TIME),
    ]
}

fn series_leaves() -> Vec<Leaf> {
    use PhysicalType as P;
    const R: Repetition = Repetition::REQUIRED;
    vec![
        series_id_leaf(),
        Leaf {
            path: "labels.entries.key",
            physical: P::BYTE_ARRAY,
            logical: string(),
            repetition: R,
        },
        Leaf {
            path: "labels.entries.value",
            physical: P::BYTE_ARRAY,
            logical: string(),
            repetition: R,
        },
        Leaf {
            path: COL_FIRST_ROW,
            physical: P::INT64,
            logical: uint(64),
            repetition: R,
        },
        Leaf {
            path: COL_NUM_ROWS,
            physical: P::INT32,
            logical: uint(32),
            repetition: R,
        },
        time_leaf(COL_MIN_TIME),
        time_leaf(COL_MAX_TIME),
    ]
}

/// Which of a block's Parquet files is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Samples,
    Series,
    /// `timestamps.parquet` (version 3 on).
    Timestamps,
    /// `starts.parquet` (version 4 on, optional).
    Starts,
}

/// Checks a file's `silt.format` / `silt.format_version` metadata and its
/// Parquet schema (leaf paths, physical and logical types, repetition) for
/// that version. `version` is the block's version from `meta.json`; the
/// file must carry the same. Returns the key/value metadata as a map.
pub fn check_file(
    path: &Path,
    md: &ParquetMetaData,
    kind: FileKind,
    version: u32,
) -> Result<HashMap<String, String>> {
    let bad = |d: String| Error::corruption(path, d);
    if !(OLDEST_SUPPORTED_VERSION..=BLOCK_VERSION).contains(&version) {
        return Err(bad(format!(
            "unsupported format version {version} (this build reads \
             {OLDEST_SUPPORTED_VERSION} to {BLOCK_VERSION})"
        )));
    }
    let kvs = check_format_keys(path, md, kind, version)?;
    let leaves = match kind {
        FileKind::Samples => samples_leaves(version),
        FileKind::Series => series_leaves(),
        FileKind::Timestamps => timestamps_leaves(),
        FileKind::Starts => starts_leaves(),
    };
    let schema = md.file_metadata().schema_descr();
    if schema.num_columns() != leaves.len() {
        return Err(bad(format!(
            "{} leaf columns, want {}",
            schema.num_columns(),
            leaves.len()
        )));
    }
    for (i, want) in leaves.iter().enumerate() {
        let col = schema.column(i);
        let got_path = col.path().string();
        if got_path != want.path {
            return Err(bad(format!(
                "column {i} is {got_path:?}, want {:?}",
                want.path
            )));
        }
        if col.physical_type() != want.physical {
            return Err(bad(format!(
                "column {got_path} has physical type {}, want {}",
                col.physical_type(),
                want.physical
            )));
        }
        if col.logical_type_ref() != want.logical.as_ref() {
            return Err(bad(format!(
                "column {got_path} has logical type {:?}, want {:?}",
                col.logical_type_ref(),
                want.logical
            )));
        }
        if col.self_type().get_basic_info().repetition() != want.repetition {
            return Err(bad(format!("column {got_path} is not {}", want.repetition)));
        }
    }
    Ok(kvs)
}

/// Reads the key/value metadata and checks `silt.format` and
/// `silt.format_version`.
fn check_format_keys(
    path: &Path,
    md: &ParquetMetaData,
    kind: FileKind,
    version: u32,
) -> Result<HashMap<String, String>> {
    let bad = |d: String| Error::corruption(path, d);
    let format = match kind {
        FileKind::Samples => SAMPLES_FORMAT,
        FileKind::Series => SERIES_FORMAT,
        FileKind::Timestamps => TIMESTAMPS_FORMAT,
        FileKind::Starts => STARTS_FORMAT,
    };
    let mut kvs = HashMap::new();
    for kv in md
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
    {
        if let Some(v) = &kv.value {
            kvs.insert(kv.key.clone(), v.clone());
        }
    }
    match kvs.get(KV_FORMAT).map(String::as_str) {
        Some(f) if f == format => {}
        other => return Err(bad(format!("{KV_FORMAT} is {other:?}, want {format:?}"))),
    }
    let version = version.to_string();
    match kvs.get(KV_FORMAT_VERSION) {
        Some(v) if *v == version => {}
        other => {
            return Err(bad(format!(
                "{KV_FORMAT_VERSION} is {other:?}, want {version:?}"
            )));
        }
    }
    Ok(kvs)
}

/// Parses an integer key/value entry, if present.
pub fn kv_i64(path: &Path, kvs: &HashMap<String, String>, key: &str) -> Result<Option<i64>> {
    kvs.get(key)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| Error::corruption(path, format!("{key}={v:?} is not an integer")))
        })
        .transpose()
}
