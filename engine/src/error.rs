//! Engine errors. [`AppendError`] is the caller's fault (bad data, answered
//! with 400 by the HTTP layer); [`Error`] is the engine's own (I/O,
//! corruption; answered with 500/503).

use std::path::PathBuf;

use crate::labels::Labels;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An internal or environmental failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file failed a magic, version, checksum or structure check.
    #[error("corrupt file {path}: {detail}")]
    Corruption { path: PathBuf, detail: String },
    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The WAL writer failed earlier; the engine refuses further writes
    /// rather than acknowledge samples it cannot make durable.
    #[error("write-ahead log unavailable: {0}")]
    WalFailed(String),
    #[error("the database is closed")]
    Closed,
    /// Another process (or another open `Db` in this one) holds the data
    /// directory's lock file.
    #[error("data directory {path} is in use by another Silt (its lock file {path}/lock is held)", path = .0.display())]
    Locked(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn corruption(path: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Corruption {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// Why a write batch was rejected. Nothing of a rejected batch is stored.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Same series and timestamp as a stored sample, different value.
    #[error(
        "duplicate sample for timestamp {t} with a different value (stored {stored}, got {got}) in series {labels}"
    )]
    Duplicate {
        labels: Labels,
        t: i64,
        stored: f64,
        got: f64,
    },
    /// Timestamp further in the future than the engine accepts.
    #[error(
        "sample timestamp {t} is too far in the future (more than {max_future_ms} ms ahead of now={now}) in series {labels}"
    )]
    TooFarInFuture {
        labels: Labels,
        t: i64,
        now: i64,
        max_future_ms: i64,
    },
    /// Timestamp older than the retention period: it would be deleted at once.
    #[error(
        "sample timestamp {t} is older than the retention period (oldest accepted {min_t}) in series {labels}"
    )]
    TooOld { labels: Labels, t: i64, min_t: i64 },
    /// A series without a metric name.
    #[error("series {labels} has no metric name (__name__)")]
    NoMetricName { labels: Labels },
    /// Start timestamps given, but not one per sample.
    #[error("series {labels} has {samples} samples but {starts} start timestamps")]
    StartTimestamps {
        labels: Labels,
        samples: usize,
        starts: usize,
    },
    /// A [`crate::SeriesRef`] whose series has left the head; nothing was
    /// stored, retry by labels.
    #[error("series reference {id} is stale (the series left the head); retry by labels")]
    StaleSeriesRef { id: u32 },
    /// The engine could not accept the batch for an internal reason.
    #[error(transparent)]
    Internal(#[from] Error),
}

impl AppendError {
    /// True when the sender must not retry (HTTP 4xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            AppendError::Internal(_) | AppendError::StaleSeriesRef { .. }
        )
    }
}
