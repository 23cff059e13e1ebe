//! API errors: one variant per cause, mapped to Prometheus's `errorType`
//! and HTTP status in one place ([`ApiError::error_type`] and
//! [`ErrorType::status`]), and rendered as the JSON error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::response;
use super::time::{DurationParamError, TimeError};
use crate::eval::EvalError;
use crate::gofmt;
use crate::promql::ParseError;

/// Prometheus's `errorType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    Unavailable,
    NotFound,
    NotAcceptable,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::NotAcceptable => "not_acceptable",
        }
    }

    /// The HTTP status Prometheus answers with (`getDefaultErrorCode`).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request"; a valid code, so this cannot fail.
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Internal | ErrorType::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        }
    }
}

/// Why the request body could not be read as a form.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// Larger than the configured limit (Go's `ParseForm` allows 10 MiB).
    #[error("http: POST too large")]
    TooLarge,
    #[error("reading the request body: {0}")]
    Read(String),
}

/// Why `limit` (or another count parameter) was rejected; Go's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("strconv.Atoi: parsing {}: invalid syntax", gofmt::quote(.0))]
    Syntax(String),
    #[error("strconv.Atoi: parsing {}: value out of range", gofmt::quote(.0))]
    Range(String),
    #[error("{0} must be non-negative")]
    Negative(&'static str),
}

/// Why the `match[]` selectors were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("match[] must contain at least one non-empty matcher")]
    Empty,
}

/// The cause inside an `invalid parameter "<name>": ...` error.
#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("invalid time value for '{param}': {source}")]
    Time {
        param: &'static str,
        #[source]
        source: TimeError,
    },
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Matchers(#[from] MatcherError),
    /// A bad `start`/`end` of a range query (no `invalid time value` prefix).
    #[error(transparent)]
    Timestamp(#[from] TimeError),
    #[error(transparent)]
    Duration(#[from] DurationParamError),
    /// The PromQL expression does not parse.
    #[error(transparent)]
    Query(#[from] ParseError),
    #[error("end timestamp must not be before start time")]
    EndBeforeStart,
    #[error(
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    )]
    NonPositiveStep,
    /// A range query over an expression that is neither a scalar nor an
    /// instant vector (Prometheus's `DocumentedType` names the type).
    #[error(
        "invalid expression type {} for range query, must be Scalar or instant Vector",
        gofmt::quote(.0)
    )]
    RangeQueryType(&'static str),
    /// A bad `/forecast` or `/capacity` parameter (model, coverage, ...).
    #[error(transparent)]
    Forecast(#[from] super::forecast::ForecastParamError),
}

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("error parsing form values: {0}")]
    Form(#[from] FormError),
    /// A parameter with a bad value; Prometheus prefixes the parameter name.
    #[error("invalid parameter {}: {source}", gofmt::quote(.param))]
    InvalidParam {
        param: &'static str,
        #[source]
        source: ParamError,
    },
    /// `/series` and `/export` need at least one selector.
    #[error("no match[] parameter provided")]
    NoMatchParam,
    /// Bad `match[]` on the label endpoints, which Prometheus reports
    /// without the `invalid parameter` prefix.
    #[error(transparent)]
    Matchers(MatcherError),
    #[error("invalid label name: {}", gofmt::quote(.0))]
    InvalidLabelName(String),
    /// Non-integer `limit`/`limit_per_metric` on `/metadata`.
    #[error("{0} must be a number")]
    NotANumber(&'static str),
    /// More series than the export is allowed to stream.
    #[error(
        "the number of matching series ({found}) exceeds the limit of {limit}; narrow down match[] or the time range"
    )]
    TooManySeries { found: usize, limit: usize },
    #[error("query timed out")]
    Timeout,
    /// A range query asking for more than 11,000 points per series.
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManyPoints,
    /// `query_exemplars` with `end < start` (Prometheus words it differently
    /// from the range query check).
    #[error("end timestamp must not be before start timestamp")]
    ExemplarEndBeforeStart,
    /// A PromQL error reported without the `invalid parameter` prefix
    /// (`query_exemplars`).
    #[error(transparent)]
    Query(ParseError),
    #[error("error parsing lookback delta duration: {0}")]
    LookbackDelta(DurationParamError),
    /// No query slot became free in time (`--query.max-concurrency`).
    #[error(
        "query timed out in query queue: all {max_concurrency} query slots busy for {} (limit max_concurrency={max_concurrency})",
        crate::promql::format_duration_ms(*.waited_ms)
    )]
    QueueFull {
        max_concurrency: usize,
        waited_ms: i64,
    },
    /// The query ran past its deadline (`timeout` / `--query.timeout`).
    #[error(
        "query timed out in {stage} (limit timeout={})",
        crate::promql::format_duration_ms(*.timeout_ms)
    )]
    QueryTimeout {
        stage: &'static str,
        timeout_ms: i64,
    },
    /// The evaluator failed (limits, execution errors, storage).
    #[error(transparent)]
    Eval(EvalError),
    /// `/status/tsdb` `limit` outside 1..=10000.
    #[error("limit must be a positive number")]
    TsdbLimitNotPositive,
    #[error("limit must not exceed {0}")]
    TsdbLimitTooLarge(usize),
    #[error("query was canceled")]
    Canceled,
    /// The storage engine failed.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A broken invariant inside Silt (e.g. a panicked worker task).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// `invalid parameter "<param>": invalid time value for '<param>': ...`
    pub fn time(param: &'static str, source: TimeError) -> ApiError {
        ApiError::InvalidParam {
            param,
            source: ParamError::Time { param, source },
        }
    }

    /// The one mapping from cause to Prometheus error type.
    pub fn error_type(&self) -> ErrorType {
        match self {
            ApiError::Form(_)
            | ApiError::InvalidParam { .. }
            | ApiError::NoMatchParam
            | ApiError::Matchers(_)
            | ApiError::InvalidLabelName(_)
            | ApiError::NotANumber(_)
            | ApiError::TooManyPoints
            | ApiError::ExemplarEndBeforeStart
            | ApiError::Query(_)
            | ApiError::LookbackDelta(_)
            | ApiError::TsdbLimitNotPositive
            | ApiError::TsdbLimitTooLarge(_) => ErrorType::BadData,
            ApiError::TooManySeries { .. } => ErrorType::Execution,
            ApiError::Timeout | ApiError::QueueFull { .. } | ApiError::QueryTimeout { .. } => {
                ErrorType::Timeout
            }
            // The evaluator names its own error type; its HTTP status comes
            // from the one table in `ErrorType::status`.
            ApiError::Eval(e) => match e.error_type() {
                "bad_data" => ErrorType::BadData,
                "execution" => ErrorType::Execution,
                "timeout" => ErrorType::Timeout,
                "canceled" => ErrorType::Canceled,
                _ => ErrorType::Internal,
            },
            ApiError::Canceled => ErrorType::Canceled,
            ApiError::Engine(engine::Error::Invalid(_)) => ErrorType::Execution,
            ApiError::Engine(engine::Error::Closed) => ErrorType::Unavailable,
            ApiError::Engine(_) | ApiError::Internal(_) => ErrorType::Internal,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let t = self.error_type();
        if t == ErrorType::Internal {
            tracing::error!(error = %self, "API request failed");
        }
        response::error(t, &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_prometheus() {
        let e = ApiError::time("start", TimeError("abc".into()));
        assert_eq!(
            e.to_string(),
            r#"invalid parameter "start": invalid time value for 'start': cannot parse "abc" to a valid timestamp"#
        );
        let e = ApiError::InvalidParam {
            param: "limit",
            source: LimitError::Syntax("x".into()).into(),
        };
        assert_eq!(
            e.to_string(),
            r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#
        );
        let e = ApiError::InvalidParam {
            param: "match[]",
            source: MatcherError::Empty.into(),
        };
        assert_eq!(
            e.to_string(),
            r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#
        );
        assert_eq!(
            ApiError::Matchers(MatcherError::Empty).to_string(),
            "match[] must contain at least one non-empty matcher"
        );
        assert_eq!(
            ApiError::InvalidLabelName("".into()).to_string(),
            r#"invalid label name: """#
        );
        assert_eq!(
            ApiError::NotANumber("limit").to_string(),
            "limit must be a number"
        );
        assert_eq!(
            ApiError::Form(FormError::TooLarge).to_string(),
            "error parsing form values: http: POST too large"
        );
    }

    #[test]
    fn one_mapping_to_type_and_status() {
        let cases = [
            (ApiError::NoMatchParam, "bad_data", 400),
            (
                ApiError::TooManySeries { found: 2, limit: 1 },
                "execution",
                422,
            ),
            (ApiError::Timeout, "timeout", 503),
            (ApiError::Canceled, "canceled", 499),
            (
                ApiError::Engine(engine::Error::Invalid("x".into())),
                "execution",
                422,
            ),
            (ApiError::Engine(engine::Error::Closed), "unavailable", 500),
            (
                ApiError::Engine(engine::Error::corruption("/x", "bad crc")),
                "internal",
                500,
            ),
            (ApiError::Internal("x".into()), "internal", 500),
        ];
        for (e, ty, status) in cases {
            assert_eq!(e.error_type().as_str(), ty, "{e}");
            assert_eq!(e.error_type().status().as_u16(), status, "{e}");
        }
        assert_eq!(ErrorType::NotFound.status().as_u16(), 404);
        assert_eq!(ErrorType::NotAcceptable.status().as_u16(), 406);
    }
}
