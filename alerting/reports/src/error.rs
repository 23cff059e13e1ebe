//! The crate's errors: configuration mistakes (named by report and field),
//! failures of one run, and store and API errors.

use std::path::PathBuf;

/// A report definition that cannot be used. Every variant names the report
/// (or its position in the list when it has no usable name) and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("reports: {source_name}: {message}")]
    Yaml {
        source_name: String,
        message: String,
    },
    #[error("reports: reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("report {report}: field {field}: {message}")]
    Field {
        report: String,
        field: String,
        message: String,
    },
    #[error("report {0}: defined twice")]
    Duplicate(String),
}

impl ConfigError {
    pub(crate) fn field(report: &str, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            report: report.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Why one run of a report failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("query {query:?}: {message}")]
    Query { query: String, message: String },
    #[error("query {query:?}: expected an instant vector, got a {got}")]
    NotAVector { query: String, got: &'static str },
    #[error("no data: {0}")]
    NoData(String),
    #[error("alert history: {0}")]
    History(String),
    #[error("the alert summary needs the alert history, which is not available")]
    NoHistory,
    #[error("rendering {format}: {message}")]
    Render { format: String, message: String },
    #[error("storing the run: {0}")]
    Store(String),
    #[error("delivery failed: {0}")]
    Delivery(String),
    #[error("the report computation stopped unexpectedly: {0}")]
    Internal(String),
}

/// Errors of the service's operations (the API maps them to HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown report {0:?}")]
    UnknownReport(String),
    #[error("report {0:?} is already running")]
    AlreadyRunning(String),
    #[error("report {report:?} has no run {run:?}")]
    UnknownRun { report: String, run: String },
    #[error("run {run:?} of report {report:?} has no file {file:?}")]
    UnknownFile {
        report: String,
        run: String,
        file: String,
    },
    #[error("report store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("report store {path}: corrupt run record: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ReportError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> ReportError {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
