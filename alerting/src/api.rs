//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON shapes
//! (`web/api/v1/api.go`), as axum routes over a [`RuleManager`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use engine::{Labels, Matcher};
use query::api::Params;
use serde::Serialize;
use serde_json::{Number, Value, json};

use crate::group::Group;
use crate::manager::RuleManager;
use crate::rule::{Alert, AlertState, Rule, RuleKind, ns_to_datetime};

/// The routes `/api/v1/rules` and `/api/v1/alerts` (GET and POST).
pub fn routes(manager: Arc<RuleManager>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules_handler).post(rules_handler))
        .route("/api/v1/alerts", get(alerts_handler).post(alerts_handler))
        .with_state(manager)
}

fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    Params::from_parts(query.as_deref(), is_form.then_some(&body[..]))
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// Prometheus's success envelope (`status` first, as Go writes it).
#[derive(Serialize)]
struct Success<T: Serialize> {
    status: &'static str,
    data: T,
}

fn success<T: Serialize>(data: T) -> Response {
    match serde_json::to_vec(&Success {
        status: "success",
        data,
    }) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"status": "error", "errorType": "internal", "error": e.to_string()}),
        ),
    }
}

/// Prometheus's error envelope.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    status: &'static str,
    error_type: &'static str,
    error: String,
}

fn bad_data(message: String) -> Response {
    match serde_json::to_vec(&Failure {
        status: "error",
        error_type: "bad_data",
        error: message,
    }) {
        Ok(body) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn alerts_handler(State(m): State<Arc<RuleManager>>) -> Response {
    success(alerts_json(&m))
}

async fn rules_handler(
    State(m): State<Arc<RuleManager>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(query.clone(), &headers, &body);
    // `type` and `exclude_alerts` come from the URL only, as in Prometheus.
    let url = Params::from_parts(query.as_deref(), None);
    match rules_json(&m, &p, &url) {
        Ok(v) => success(v),
        Err(e) => bad_data(e),
    }
}

/// Go's `time.Time` JSON: RFC 3339 with nanoseconds, trailing zeros trimmed.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// A float as Go's `encoding/json` writes it (integers without `.0`).
/// Durations and evaluation times are always finite.
fn go_float(v: f64) -> Number {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        Number::from(v as i64)
    } else {
        Number::from_f64(v).unwrap_or_else(|| Number::from(0))
    }
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// An alert of `/api/v1/alerts` and of alerting rules (`api.Alert`),
/// fields in Prometheus's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertJson {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: &'static str,
    active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<String>,
    value: String,
}

fn alert_json(a: &Alert) -> AlertJson {
    AlertJson {
        labels: labels_map(&a.labels),
        annotations: a.annotations.clone(),
        state: a.state.as_str(),
        active_at: go_time(Some(ns_to_datetime(a.active_at))),
        keep_firing_since: a
            .keep_firing_since
            .map(|k| go_time(Some(ns_to_datetime(k)))),
        value: query::gofmt::format_float_e(a.value),
    }
}

/// The `data` of `/api/v1/alerts`.
#[derive(Serialize)]
pub struct AlertDiscovery {
    alerts: Vec<AlertJson>,
}

/// The pending and firing alerts of every rule.
pub fn alerts_json(m: &RuleManager) -> AlertDiscovery {
    let mut alerts = Vec::new();
    for g in m.groups() {
        for r in &g.rules {
            if let Some(ar) = r.as_alerting() {
                alerts.extend(ar.active_alerts().iter().map(alert_json));
            }
        }
    }
    AlertDiscovery { alerts }
}

fn set(values: Vec<&str>) -> HashSet<String> {
    values.into_iter().map(str::to_string).collect()
}

/// `rule.State()`: `unknown` before the first evaluation.
fn rule_state(r: &Rule) -> AlertState {
    if r.status().last_evaluation.is_none() {
        return AlertState::Unknown;
    }
    r.as_alerting().map_or(AlertState::Inactive, |a| a.state())
}

/// `api.AlertingRule` or `api.RecordingRule`, fields in Prometheus's order.
#[derive(Serialize)]
#[serde(untagged)]
pub enum RuleJson {
    #[serde(rename_all = "camelCase")]
    Alerting {
        state: &'static str,
        name: String,
        query: String,
        duration: Number,
        keep_firing_for: Number,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        /// `null` with `exclude_alerts`.
        alerts: Option<Vec<AlertJson>>,
        health: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
        evaluation_time: Number,
        last_evaluation: String,
        #[serde(rename = "type")]
        typ: &'static str,
    },
    #[serde(rename_all = "camelCase")]
    Recording {
        name: String,
        query: String,
        labels: BTreeMap<String, String>,
        health: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
        evaluation_time: Number,
        last_evaluation: String,
        #[serde(rename = "type")]
        typ: &'static str,
    },
}

fn rule_json(r: &Rule, exclude_alerts: bool) -> RuleJson {
    let st = r.status();
    match &r.kind {
        RuleKind::Alerting(a) => RuleJson::Alerting {
            state: rule_state(r).as_str(),
            name: a.name.clone(),
            query: r.query.clone(),
            duration: go_float(a.hold.as_secs_f64()),
            keep_firing_for: go_float(a.keep_firing_for.as_secs_f64()),
            labels: labels_map(&a.labels),
            annotations: a.annotations.clone(),
            alerts: (!exclude_alerts).then(|| a.active_alerts().iter().map(alert_json).collect()),
            health: st.health.as_str(),
            last_error: st.last_error.clone(),
            evaluation_time: go_float(st.evaluation_time.as_secs_f64()),
            last_evaluation: go_time(st.last_evaluation),
            typ: "alerting",
        },
        RuleKind::Recording(rr) => RuleJson::Recording {
            name: rr.name.clone(),
            query: r.query.clone(),
            labels: labels_map(&rr.labels),
            health: st.health.as_str(),
            last_error: st.last_error.clone(),
            evaluation_time: go_float(st.evaluation_time.as_secs_f64()),
            last_evaluation: go_time(st.last_evaluation),
            typ: "recording",
        },
    }
}

fn parse_matchers(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut out = Vec::new();
    for v in values {
        let vs = query::promql::parse_vector_selector(v).map_err(|e| e.to_string())?;
        if vs.matchers.iter().all(|m| m.matches("")) {
            return Err("match[] must contain at least one non-empty matcher".into());
        }
        out.push(vs.matchers);
    }
    Ok(out)
}

fn matches_sets(sets: &[Vec<Matcher>], labels: &Labels) -> bool {
    sets.is_empty()
        || sets.iter().any(|set| {
            set.iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `api.RuleGroup`, fields in Prometheus's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupJson {
    name: String,
    file: String,
    rules: Vec<RuleJson>,
    interval: Number,
    limit: i64,
    evaluation_time: Number,
    last_evaluation: String,
}

/// The `data` of `/api/v1/rules`.
#[derive(Serialize)]
pub struct RuleDiscovery {
    groups: Vec<GroupJson>,
    #[serde(rename = "groupNextToken", skip_serializing_if = "Option::is_none")]
    group_next_token: Option<String>,
}

fn group_json(g: &Group, rules: Vec<RuleJson>) -> GroupJson {
    let stats = g.stats();
    GroupJson {
        name: g.name.clone(),
        file: g.file.clone(),
        rules,
        interval: go_float(g.interval.as_secs_f64()),
        limit: g.limit,
        evaluation_time: go_float(stats.evaluation_time.as_secs_f64()),
        last_evaluation: go_time(stats.last_evaluation),
    }
}

/// The `data` of `/api/v1/rules` for the request parameters `p` (`url`:
/// the URL query alone, where `type` and `exclude_alerts` are read).
pub fn rules_json(m: &RuleManager, p: &Params, url: &Params) -> Result<RuleDiscovery, String> {
    let names = set(p.all("rule_name[]"));
    let groups_filter = set(p.all("rule_group[]"));
    let files = set(p.all("file[]"));
    let sets = parse_matchers(&p.all("match[]"))?;
    let typ = url.get("type").to_lowercase();
    if !typ.is_empty() && typ != "alert" && typ != "record" {
        return Err(format!(
            "invalid parameter \"type\": not supported value {}",
            query::gofmt::quote(&typ)
        ));
    }
    let want_alerts = typ.is_empty() || typ == "alert";
    let want_records = typ.is_empty() || typ == "record";
    let exclude = url.get("exclude_alerts").to_lowercase();
    let exclude_alerts = if exclude.is_empty() {
        false
    } else {
        parse_bool(&exclude).ok_or_else(|| {
            format!(
                "invalid parameter \"exclude_alerts\": error converting exclude_alerts: strconv.ParseBool: parsing {}: invalid syntax",
                query::gofmt::quote(&exclude)
            )
        })?
    };
    let (max_groups, next_token) = pagination(url)?;
    let mut found_token = false;
    let mut group_next_token = None;
    let mut out = Vec::new();
    for g in m.groups() {
        if max_groups > 0 && !next_token.is_empty() && !found_token {
            if next_token != group_token(&g) {
                continue;
            }
            found_token = true;
        }
        if !groups_filter.is_empty() && !groups_filter.contains(&g.name) {
            continue;
        }
        if !files.is_empty() && !files.contains(&g.file) {
            continue;
        }
        let mut rules = Vec::new();
        for r in &g.rules {
            if !matches_sets(&sets, r.labels()) {
                continue;
            }
            if !names.is_empty() && !names.contains(r.name()) {
                continue;
            }
            let is_alert = r.as_alerting().is_some();
            if (is_alert && !want_alerts) || (!is_alert && !want_records) {
                continue;
            }
            rules.push(rule_json(r, exclude_alerts));
        }
        if !rules.is_empty() {
            if max_groups > 0 && out.len() as i64 == max_groups {
                group_next_token = Some(group_token(&g));
                break;
            }
            out.push(group_json(&g, rules));
        }
    }
    if max_groups > 0 && !next_token.is_empty() && !found_token {
        return Err(format!(
            "invalid parameter \"group_next_token\": invalid group_next_token '{next_token}'. were rule groups changed?"
        ));
    }
    Ok(RuleDiscovery {
        groups: out,
        group_next_token,
    })
}

/// The pagination token of a group: hex SHA-256 of `<file>;<name>`.
fn group_token(g: &Group) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(g.key().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `group_limit` (0: no pagination) and `group_next_token`.
fn pagination(url: &Params) -> Result<(i64, String), String> {
    let limit = url.get("group_limit");
    let token = url.get("group_next_token");
    if !token.is_empty() && limit.is_empty() {
        return Err("invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups".into());
    }
    if limit.is_empty() {
        return Ok((0, String::new()));
    }
    let n: i64 = match limit.parse::<i32>() {
        Ok(n) => n.into(),
        Err(_) => {
            return Err(format!(
                "invalid parameter \"group_limit\": group_limit needs to be a valid number: strconv.ParseInt: parsing {}: {}",
                query::gofmt::quote(limit),
                if !limit.is_empty()
                    && limit
                        .trim_start_matches(['+', '-'])
                        .chars()
                        .all(|c| c.is_ascii_digit())
                {
                    "value out of range"
                } else {
                    "invalid syntax"
                }
            ));
        }
    };
    if n <= 0 {
        return Err(
            "invalid parameter \"group_limit\": group_limit needs to be greater than 0".into(),
        );
    }
    Ok((n, token.to_string()))
}
