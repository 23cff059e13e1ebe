//! `GET /api/v1/metadata`: type, help and unit per metric family, from the
//! metadata remote-write senders reported.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;

use super::Api;
use super::error::ApiError;
use super::params::{Params, atoi};
use super::response::{self, Annotations};

#[derive(Serialize, PartialEq, Eq)]
struct Entry<'a> {
    #[serde(rename = "type")]
    metric_type: &'static str,
    help: &'a str,
    unit: &'a str,
}

/// A count parameter of this endpoint: absent = -1 (all).
fn count(params: &Params, key: &'static str) -> Result<i64, ApiError> {
    match params.get(key) {
        "" => Ok(-1),
        s => atoi(s).map_err(|_| ApiError::NotANumber(key)),
    }
}

pub(crate) async fn metadata(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    // Prometheus: `limit` caps the number of metrics (0 returns nothing,
    // negative means all); `limit_per_metric` caps entries per metric when > 0.
    let limit = count(&params, "limit")?;
    let limit_per_metric = count(&params, "limit_per_metric")?;
    let metric = params.get("metric");
    let all = api.db().metadata();
    let mut data: BTreeMap<&str, Vec<Entry<'_>>> = BTreeMap::new();
    for (family, entries) in &all {
        if !metric.is_empty() && family != metric {
            continue;
        }
        if limit >= 0 && data.len() as i64 >= limit {
            break;
        }
        let mut list: Vec<Entry<'_>> = Vec::new();
        // Newest first; identical (type, help, unit) entries once.
        for m in entries.iter().rev() {
            let e = Entry {
                metric_type: m.metric_type.as_str(),
                help: &m.help,
                unit: &m.unit,
            };
            if limit_per_metric > 0 && list.len() as i64 >= limit_per_metric {
                break;
            }
            if !list.contains(&e) {
                list.push(e);
            }
        }
        data.insert(family, list);
    }
    Ok(response::success(data, Annotations::default()))
}
