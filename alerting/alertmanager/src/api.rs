//! Alertmanager's HTTP API v2 (C.5) — `/api/v2/alerts`, `/alerts/groups`,
//! `/silences`, `/silence/{id}`, `/status`, `/receivers` — in the shapes
//! `amtool` and Grafana read, plus Silt's alert history at
//! `/api/v1/alerts/history` in the Prometheus API envelope.
//!
//! Times are printed as go-openapi's `strfmt.DateTime` does:
//! `2006-01-02T15:04:05.000Z` (UTC, milliseconds).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Alertmanager;
use crate::dispatch::AlertState;
use crate::history::HistoryQuery;
use crate::matchers::{MatchType, Matcher, parse_matchers};
use crate::silence::{PostableSilence, Silence, SilenceError, SilenceMatcher, SilenceState};
use crate::types::{Alert, LabelSet};

type Am = State<Arc<Alertmanager>>;

/// The API routes, to be merged into the server's router.
pub fn routes(am: Arc<Alertmanager>) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(get_status))
        .route("/api/v2/receivers", get(get_receivers))
        .route("/api/v1/alerts/history", get(get_history))
        .with_state(am)
}

/// `strfmt.DateTime` printing.
pub fn api_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A malformed request parameter: 400 with the message as a JSON string.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(Value::String(message.into()))).into_response()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters in order, repeated keys kept.
fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

struct Params(Vec<(String, String)>);

impl Params {
    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.all(key).last()
    }

    fn flag(&self, key: &str) -> Result<bool, BadRequest> {
        match self.one(key) {
            None => Ok(true),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(v) => Err(BadRequest(format!(
                "{key} in query must be of type boolean: {v:?}"
            ))),
        }
    }

    fn filters(&self) -> Result<Vec<Matcher>, BadRequest> {
        let mut out = Vec::new();
        for f in self.all("filter") {
            out.extend(parse_matchers(f).map_err(|e| BadRequest(e.to_string()))?);
        }
        Ok(out)
    }

    fn receiver(&self) -> Result<Option<Regex>, BadRequest> {
        match self.one("receiver") {
            None | Some("") => Ok(None),
            Some(r) => Regex::new(&format!("^(?:{r})$"))
                .map(Some)
                .map_err(|e| BadRequest(format!("failed to parse receiver param: {e}"))),
        }
    }
}

/// Alertmanager's `matchFilterLabels`: a matcher with an empty value is
/// skipped when the label is present (negative) or absent (positive);
/// otherwise it must match the value (empty when missing).
fn match_filter_labels(ms: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    ms.iter().all(|m| {
        let v = labels.get(&m.name);
        let negative = matches!(m.op, MatchType::NotEqual | MatchType::NotRegexp);
        if m.value.is_empty() && v.is_some() == negative {
            return true;
        }
        m.matches_value(v.map_or("", String::as_str))
    })
}

/// Alertmanager's `checkMatcherSetMatchesFilterLabels`: every filter
/// matcher must appear in the silence with the same name, type and value.
fn silence_matches_filter(s: &Silence, filter: &[Matcher]) -> bool {
    filter.iter().all(|f| {
        s.matchers.iter().any(|m| {
            m.name == f.name
                && MatchType::from_flags(m.is_regex, m.is_equal) == f.op
                && m.value == f.value
        })
    })
}

/// Prometheus's `LabelSet.Before`: smaller sets first, then by value over
/// the sorted union of names (a missing name sorts first).
fn labelset_before(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

fn gettable_alert(a: &Alert, receivers: &[String], st: &AlertState) -> Value {
    let state = if st.suppressed() {
        "suppressed"
    } else {
        "active"
    };
    json!({
        "annotations": a.annotations,
        "endsAt": a.ends_at.map(api_time).unwrap_or_else(|| "0001-01-01T00:00:00.000Z".to_string()),
        "fingerprint": a.fingerprint().to_string(),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": api_time(a.starts_at),
        "status": {
            "inhibitedBy": st.inhibited_by,
            "mutedBy": st.muted_by,
            "silencedBy": st.silenced_by,
            "state": state,
        },
        "updatedAt": api_time(a.updated_at),
        "generatorURL": a.generator_url,
        "labels": a.labels,
    })
}

struct AlertFilter {
    active: bool,
    silenced: bool,
    inhibited: bool,
    muted: bool,
    unprocessed: bool,
    matchers: Vec<Matcher>,
}

impl AlertFilter {
    fn from(p: &Params) -> Result<AlertFilter, BadRequest> {
        Ok(AlertFilter {
            active: p.flag("active")?,
            silenced: p.flag("silenced")?,
            inhibited: p.flag("inhibited")?,
            muted: p.flag("muted")?,
            unprocessed: p.flag("unprocessed")?,
            matchers: p.filters()?,
        })
    }

    fn keep(&self, a: &Alert, st: &AlertState, now: DateTime<Utc>) -> bool {
        if a.resolved_at(now) {
            return false;
        }
        let _ = self.unprocessed; // Silt processes alerts synchronously on receipt.
        if !self.active && !st.suppressed() {
            return false;
        }
        if !self.silenced && !st.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !st.inhibited_by.is_empty() {
            return false;
        }
        if !self.muted && !st.muted_by.is_empty() {
            return false;
        }
        match_filter_labels(&self.matchers, &a.labels)
    }
}

async fn get_alerts(State(am): Am, RawQuery(q): RawQuery) -> Response {
    let p = Params(query_pairs(&q));
    let (filter, recv) = match (AlertFilter::from(&p), p.receiver()) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let inner = am.inner();
    let now = inner.clock.now();
    let rt = inner.runtime.read().clone();
    let idx = inner.inhibit_index(&rt, now);
    let alerts: Vec<Alert> = inner.alerts.lock().values().cloned().collect();
    let mut out = Vec::new();
    for a in &alerts {
        // One entry per matching route, duplicates kept (as Alertmanager).
        let receivers: Vec<String> = rt
            .route
            .matching(&a.labels)
            .iter()
            .map(|r| r.opts.receiver.clone())
            .collect();
        if let Some(re) = &recv
            && !receivers.iter().any(|r| re.is_match(r))
        {
            continue;
        }
        let st = inner.alert_state(&rt, &idx, a, now);
        if !filter.keep(a, &st, now) {
            continue;
        }
        out.push((
            a.fingerprint().to_string(),
            gettable_alert(a, &receivers, &st),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    axum::Json(out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()).into_response()
}

#[derive(Deserialize)]
struct PostableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

/// RFC 3339 → time; empty or Go's zero time → `None`.
fn parse_api_time(s: &Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => {
            let t = DateTime::parse_from_rfc3339(v)
                .map_err(|e| format!("invalid time {v:?}: {e}"))?
                .with_timezone(&Utc);
            Ok((t.timestamp() != -62135596800).then_some(t))
        }
    }
}

async fn post_alerts(State(am): Am, body: axum::body::Bytes) -> Response {
    let posted: Vec<PostableAlert> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid alerts: {e}")),
    };
    let now = am.inner().clock.now();
    let mut errors = Vec::new();
    let mut alerts = Vec::with_capacity(posted.len());
    for p in posted {
        let (starts, ends) = match (parse_api_time(&p.starts_at), parse_api_time(&p.ends_at)) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => {
                am.inner().metrics.alerts_invalid.inc();
                errors.push(e);
                continue;
            }
        };
        alerts.push(Alert {
            labels: p.labels,
            annotations: p.annotations,
            starts_at: starts.or(ends).unwrap_or(now),
            ends_at: ends,
            generator_url: p.generator_url,
            updated_at: now,
            timeout: false,
        });
    }
    for (a, e) in am.put_alerts(alerts) {
        errors.push(format!(
            "{}: {e}",
            crate::matchers::labelset_string(&a.labels)
        ));
    }
    if errors.is_empty() {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::BAD_REQUEST, errors.join(";"))
    }
}

async fn get_groups(State(am): Am, RawQuery(q): RawQuery) -> Response {
    let p = Params(query_pairs(&q));
    let (filter, recv) = match (AlertFilter::from(&p), p.receiver()) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let inner = am.inner();
    let now = inner.clock.now();
    let rt = inner.runtime.read().clone();
    let idx = inner.inhibit_index(&rt, now);
    let groups: Vec<_> = inner.groups.lock().values().cloned().collect();
    let mut out = Vec::new();
    for g in groups {
        if let Some(re) = &recv
            && !re.is_match(&g.opts.receiver)
        {
            continue;
        }
        let alerts: Vec<Alert> = g.alerts.lock().values().cloned().collect();
        let mut shown = Vec::new();
        for a in &alerts {
            let st = inner.alert_state(&rt, &idx, a, now);
            if filter.keep(a, &st, now) {
                shown.push((
                    a.fingerprint().to_string(),
                    gettable_alert(a, std::slice::from_ref(&g.opts.receiver), &st),
                ));
            }
        }
        if shown.is_empty() {
            continue;
        }
        shown.sort_by(|a, b| a.0.cmp(&b.0));
        out.push((
            g.labels.clone(),
            g.opts.receiver.clone(),
            json!({
                "labels": g.labels,
                "receiver": {"name": g.opts.receiver},
                "alerts": shown.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                "routeLabels": g.opts.labels,
            }),
        ));
    }
    out.sort_by(|a, b| labelset_before(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
    axum::Json(out.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>()).into_response()
}

fn gettable_silence(s: &Silence, now: DateTime<Utc>) -> Value {
    let mut v = json!({
        "id": s.id,
        "status": {"state": s.state_at(now).as_str()},
        "updatedAt": api_time(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": api_time(s.ends_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "isEqual": m.is_equal,
            "isRegex": m.is_regex,
            "name": m.name,
            "value": m.value,
        })).collect::<Vec<_>>(),
        "startsAt": api_time(s.starts_at),
    });
    if let Some(a) = &s.annotations {
        v["annotations"] = json!(a);
    }
    v
}

/// Alertmanager's `SortSilences`: active (soonest end first), pending
/// (soonest start first), expired (latest end first).
fn sort_silences(v: &mut [Silence], now: DateTime<Utc>) {
    let rank = |s: &Silence| match s.state_at(now) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    v.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match a.state_at(now) {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
}

async fn get_silences(State(am): Am, RawQuery(q): RawQuery) -> Response {
    let p = Params(query_pairs(&q));
    let matchers = match p.filters() {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let flag = |k| p.flag(k);
    let (active, pending, expired) = match (flag("active"), flag("pending"), flag("expired")) {
        (Ok(a), Ok(p), Ok(e)) => (a, p, e),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e.into_response(),
    };
    let now = am.inner().clock.now();
    let mut list: Vec<Silence> = am
        .silences()
        .list()
        .into_iter()
        .filter(|s| match s.state_at(now) {
            SilenceState::Active => active,
            SilenceState::Pending => pending,
            SilenceState::Expired => expired,
        })
        .filter(|s| silence_matches_filter(s, &matchers))
        .collect();
    sort_silences(&mut list, now);
    axum::Json(
        list.iter()
            .map(|s| gettable_silence(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize)]
struct PostedSilence {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    matchers: Vec<SilenceMatcher>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "createdBy")]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    annotations: Option<LabelSet>,
}

fn silence_error(e: SilenceError) -> Response {
    match e {
        SilenceError::NotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        SilenceError::Invalid(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn post_silence(State(am): Am, body: axum::body::Bytes) -> Response {
    let p: PostedSilence = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")),
    };
    let (starts, ends) = match (parse_api_time(&p.starts_at), parse_api_time(&p.ends_at)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let postable = PostableSilence {
        id: p.id.filter(|s| !s.is_empty()),
        matchers: p.matchers,
        starts_at: starts,
        ends_at: ends,
        created_by: p.created_by,
        comment: p.comment,
        annotations: p.annotations,
    };
    match am.silences().set(postable) {
        Ok(id) => axum::Json(json!({"silenceID": id})).into_response(),
        Err(e) => silence_error(e),
    }
}

async fn get_silence(State(am): Am, Path(id): Path<String>) -> Response {
    let now = am.inner().clock.now();
    match am.silences().get(&id) {
        Some(s) => axum::Json(gettable_silence(&s, now)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(am): Am, Path(id): Path<String>) -> Response {
    match am.silences().expire(&id) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => silence_error(e),
    }
}

/// The configuration text with secret values replaced by `<secret>`, as
/// Alertmanager hides secrets in `/api/v2/status`.
pub fn redact_config(original: &str) -> String {
    fn is_secret(key: &str, parent_is_integration: bool) -> bool {
        let k = key.to_ascii_lowercase();
        k.contains("password")
            || k.contains("secret")
            || k.contains("token")
            || k.ends_with("_key")
            || k == "credentials"
            || k.ends_with("api_url")
            || k == "webhook_url"
            || (parent_is_integration && k == "url")
    }
    fn walk(v: &mut serde_yaml::Value, in_integration: bool) {
        match v {
            serde_yaml::Value::Mapping(m) => {
                for (k, val) in m.iter_mut() {
                    let key = k.as_str().unwrap_or("");
                    if val.is_string() && is_secret(key, in_integration) {
                        *val = serde_yaml::Value::String("<secret>".into());
                    } else {
                        walk(val, key.ends_with("_configs"));
                    }
                }
            }
            serde_yaml::Value::Sequence(s) => {
                for x in s {
                    walk(x, in_integration);
                }
            }
            _ => {}
        }
    }
    match serde_yaml::from_str::<serde_yaml::Value>(original) {
        Ok(mut v) => {
            walk(&mut v, false);
            serde_yaml::to_string(&v).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

async fn get_status(State(am): Am) -> Response {
    let inner = am.inner();
    let original = inner.runtime.read().config.original.clone();
    axum::Json(json!({
        "cluster": {"name": "", "peers": [], "status": "disabled"},
        "config": {"original": redact_config(&original)},
        "uptime": api_time(inner.started),
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": "",
            "version": env!("CARGO_PKG_VERSION"),
        },
    }))
    .into_response()
}

async fn get_receivers(State(am): Am) -> Response {
    let rt = am.inner().runtime.read().clone();
    axum::Json(
        rt.config
            .receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

fn prom_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "error", "errorType": "bad_data", "error": message})),
    )
        .into_response()
}

/// Prometheus API time: RFC 3339 or Unix seconds.
fn parse_prom_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        let ms = (f * 1000.0).round() as i64;
        return DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("invalid time {s:?}"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid time {s:?}: {e}"))
}

async fn get_history(State(am): Am, RawQuery(q): RawQuery) -> Response {
    let p = Params(query_pairs(&q));
    let now = am.inner().clock.now();
    let end = match p.one("end").map(parse_prom_time).transpose() {
        Ok(t) => t.unwrap_or(now),
        Err(e) => return prom_error(e),
    };
    let start = match p.one("start").map(parse_prom_time).transpose() {
        Ok(t) => t.unwrap_or(end - chrono::Duration::hours(24)),
        Err(e) => return prom_error(e),
    };
    if end < start {
        return prom_error("end timestamp must not be before start time".into());
    }
    let limit = match p.one("limit").map(str::parse::<usize>).transpose() {
        Ok(l) => l.unwrap_or(10_000),
        Err(e) => return prom_error(format!("invalid limit: {e}")),
    };
    let mut sets = Vec::new();
    for m in p.all("match[]") {
        match parse_matchers(m) {
            Ok(ms) => sets.push(ms),
            Err(e) => return prom_error(e.to_string()),
        }
    }
    let query = HistoryQuery {
        start,
        end,
        alertname: p
            .one("alertname")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        matchers: if sets.len() == 1 {
            sets.pop().unwrap_or_default()
        } else {
            Vec::new()
        },
        limit: if sets.len() > 1 { usize::MAX } else { limit },
    };
    let history = am.history().clone();
    let result = tokio::task::spawn_blocking(move || history.query(&query)).await;
    let mut events = match result {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({"status": "error", "errorType": "internal", "error": e.to_string()}),
                ),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({"status": "error", "errorType": "internal", "error": e.to_string()}),
                ),
            )
                .into_response();
        }
    };
    if sets.len() > 1 {
        events.retain(|e| {
            sets.iter()
                .any(|ms| crate::matchers::matches_all(ms, &e.labels))
        });
        events.truncate(limit);
    }
    axum::Json(json!({"status": "success", "data": events})).into_response()
}

#[cfg(test)]
mod tests;
