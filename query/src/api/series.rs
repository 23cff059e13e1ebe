//! `GET|POST /api/v1/series`: the label sets of the series matching any
//! `match[]` selector in `[start, end]`, deduplicated and sorted.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::error::{ApiError, ParamError};
use super::params::{Params, parse_match_params};
use super::response::{self, Annotations, LabelsJson};
use super::time::{MAX_TIME_MS, MIN_TIME_MS};
use super::{Api, apply_limit, blocking, select_union};

pub(crate) async fn series(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let selectors = params.all("match[]");
    if selectors.is_empty() {
        return Err(ApiError::NoMatchParam);
    }
    let limit = params.limit("limit")?;
    let start = params.time("start", MIN_TIME_MS)?;
    let end = params.time("end", MAX_TIME_MS)?;
    let sets = parse_match_params(&selectors).map_err(|e| ApiError::InvalidParam {
        param: "match[]",
        source: ParamError::Matchers(e),
    })?;
    let db = api.db().clone();
    let mut series = blocking(move || select_union(&db.querier(start, end), &sets)).await?;
    let mut annotations = Annotations::default();
    apply_limit(&mut series, limit, &mut annotations);
    let data: Vec<LabelsJson<'_>> = series.iter().map(|s| LabelsJson(&s.labels)).collect();
    Ok(response::success(data, annotations))
}
