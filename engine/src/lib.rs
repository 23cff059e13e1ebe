//! Silt's storage engine: a write-ahead log, an in-memory head of compressed
//! chunks with an inverted label index, and immutable Parquet blocks that are
//! compacted and expired in the background.
//!
//! The engine knows nothing of HTTP, JSON or PromQL. Its entry point is [`Db`]:
//! [`Db::append`] takes a [`WriteBatch`] and returns a [`CommitTicket`] that
//! resolves once the batch is durable; [`Db::querier`] returns a [`Querier`],
//! a consistent snapshot of head and blocks for a time range.

pub mod block;
pub mod checkpoint;
pub mod chunk;
pub mod db;
pub mod error;
pub mod head;
pub mod head_chunk;
pub mod index;
pub mod labels;
pub mod metadata;
pub mod sample;
pub mod select_memo;
pub mod starts;
pub mod summary;
pub mod symbols;
pub mod time_column;
mod varint;
pub mod wal;

pub use db::{
    AppendSummary, CheckpointStats, CommitTicket, Db, DbStats, Durability, HeadLabelCounts,
    Options, Querier, SeriesEntry, SeriesRef,
};
pub use error::{AppendError, Error, Result};
pub use labels::{Label, Labels, METRIC_NAME, MatchOp, Matcher};
pub use metadata::{MetricMetadata, MetricType};
pub use sample::{STALE_NAN, Sample, SeriesSamples, WriteBatch, is_stale_nan};
pub use starts::{StartRun, align_starts};
pub use summary::{Continuity, RunSummary};
