//! The evaluator's error type: one variant per cause, each mapping to the
//! Prometheus API's `errorType` (see [`EvalError::error_type`]).

use std::time::Duration;

/// Why a query could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The query is well-formed but cannot be computed (duplicate label
    /// sets, many-to-many matching, a NaN `topk` parameter, ...). API: 422
    /// `execution`.
    #[error("{0}")]
    Execution(String),
    /// The query ran past its deadline. API: 503 `timeout`.
    #[error("query timed out in {stage} (timeout {limit:?})")]
    Timeout {
        stage: &'static str,
        limit: Duration,
    },
    /// More samples would be held in memory than `max_samples` allows.
    /// API: 422 `execution`.
    #[error(
        "query processing would load too many samples into memory in query execution (limit max_samples={limit})"
    )]
    TooManySamples { limit: usize },
    /// The selectors touched more series than `max_series` allows. API: 422
    /// `execution`.
    #[error("query would touch too many series (limit max_series={limit})")]
    TooManySeries { limit: usize },
    /// The caller cancelled the query. API: 422 `canceled`.
    #[error("query was canceled in {stage}")]
    Canceled { stage: &'static str },
    /// The request itself is invalid (bad range, step too small, an
    /// expression of the wrong type for a range query). API: 400 `bad_data`.
    #[error("{0}")]
    BadData(String),
    /// The storage failed while reading. API: 500 `internal`.
    #[error("expanding series: {0}")]
    Storage(#[from] engine::Error),
}

impl EvalError {
    /// The Prometheus API `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            EvalError::Execution(_)
            | EvalError::TooManySamples { .. }
            | EvalError::TooManySeries { .. } => "execution",
            EvalError::Timeout { .. } => "timeout",
            EvalError::Canceled { .. } => "canceled",
            EvalError::BadData(_) => "bad_data",
            EvalError::Storage(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            EvalError::Execution(_)
            | EvalError::TooManySamples { .. }
            | EvalError::TooManySeries { .. }
            | EvalError::Canceled { .. } => 422,
            EvalError::Timeout { .. } => 503,
            EvalError::BadData(_) => 400,
            EvalError::Storage(_) => 500,
        }
    }
}

pub(crate) fn exec(msg: impl Into<String>) -> EvalError {
    EvalError::Execution(msg.into())
}

pub(crate) type Result<T, E = EvalError> = std::result::Result<T, E>;
