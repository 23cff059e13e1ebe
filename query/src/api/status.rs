//! `/api/v1/status/*`: build and runtime information, the command-line
//! flags and configuration the binary passes in ([`StatusInfo`]), and
//! `/status/tsdb` cardinality statistics computed from a querier.
//!
//! Cardinality is computed by selecting every series (`__name__=~".+"`)
//! and counting labels, over the whole database (head and blocks), where
//! Prometheus counts the head only. That costs one pass over all series'
//! labels per request; an engine method walking the postings (names,
//! values and posting-list lengths) would make it cheaper.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::params::{Params, atoi};
use super::response::{self, Annotations};
use super::time::format_rfc3339_ms;
use super::{Api, blocking, now_ms};

/// Build information for `/status/buildinfo`: all strings. No `features`
/// object (Grafana would take Silt for Mimir).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    /// Prometheus reports its Go version; Silt the Rust toolchain.
    pub go_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: "unknown".into(),
            branch: "unknown".into(),
            build_user: "unknown".into(),
            build_date: "unknown".into(),
            go_version: "unknown".into(),
        }
    }
}

/// What the binary tells the status endpoints.
#[derive(Debug, Clone, Default)]
pub struct StatusInfo {
    pub build: BuildInfo,
    /// Flag name → value, as `/status/flags` lists them
    /// (`"query.timeout": "2m"`).
    pub flags: BTreeMap<String, String>,
    /// The configuration loaded and whether the last reload took
    /// (`/status/config`, `/status/runtimeinfo`); shared with whatever
    /// reloads it.
    pub config: Arc<ConfigStatus>,
    /// Retention as shown by `/status/runtimeinfo` (`15d`).
    pub storage_retention: String,
}

/// The configuration in effect as `/status/config` and
/// `/status/runtimeinfo` report it. The binary records each reload here.
#[derive(Debug)]
pub struct ConfigStatus(RwLock<Loaded>);

impl Default for ConfigStatus {
    fn default() -> Self {
        ConfigStatus::new(String::new(), 0)
    }
}

#[derive(Debug)]
struct Loaded {
    /// The effective configuration as YAML.
    yaml: String,
    /// When it was loaded (Unix ms); 0 until something is.
    at_ms: i64,
    /// Whether the last reload succeeded (a failed one keeps the
    /// configuration before it).
    last_reload_ok: bool,
}

impl ConfigStatus {
    /// The configuration loaded at start, `at_ms`.
    pub fn new(yaml: String, at_ms: i64) -> ConfigStatus {
        ConfigStatus(RwLock::new(Loaded {
            yaml,
            at_ms,
            last_reload_ok: true,
        }))
    }

    /// A reload applied `yaml` at `at_ms`.
    pub fn reloaded(&self, yaml: String, at_ms: i64) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
            yaml,
            at_ms,
            last_reload_ok: true,
        };
    }

    /// A reload failed: the configuration stays, the failure shows.
    pub fn reload_failed(&self) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .last_reload_ok = false;
    }

    /// The configuration in effect, as YAML.
    pub fn yaml(&self) -> String {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .yaml
            .clone()
    }

    /// When the configuration in effect was loaded (Unix ms; 0 if never)
    /// and whether the last reload succeeded, without copying the YAML.
    fn load_state(&self) -> (i64, bool) {
        let l = self.0.read().unwrap_or_else(|e| e.into_inner());
        (l.at_ms, l.last_reload_ok)
    }
}

pub(crate) async fn buildinfo(State(api): State<Arc<Api>>) -> Response {
    response::success(&api.options().status.build, Annotations::default())
}

pub(crate) async fn flags(State(api): State<Arc<Api>>) -> Response {
    response::success(&api.options().status.flags, Annotations::default())
}

pub(crate) async fn config(State(api): State<Arc<Api>>) -> Response {
    response::success(
        json!({"yaml": api.options().status.config.yaml()}),
        Annotations::default(),
    )
}

/// Threads of this process (Prometheus shows goroutines).
fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) async fn runtimeinfo(State(api): State<Arc<Api>>) -> Response {
    let started = format_rfc3339_ms(api.started_ms());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (at_ms, last_reload_ok) = api.options().status.config.load_state();
    // Before anything loads (tests), the server's start.
    let config_ms = if at_ms > 0 { at_ms } else { api.started_ms() };
    response::success(
        json!({
            "startTime": started,
            "CWD": cwd,
            "hostname": hostname,
            "serverTime": format_rfc3339_ms(now_ms()),
            "reloadConfigSuccess": last_reload_ok,
            "lastConfigTime": format_rfc3339_ms(config_ms),
            "corruptionCount": 0,
            "goroutineCount": thread_count(),
            "GOMAXPROCS": cpus,
            "GOMEMLIMIT": i64::MAX,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": api.options().status.storage_retention,
        }),
        Annotations::default(),
    )
}

/// Largest `limit` of `/status/tsdb`.
const MAX_TSDB_LIMIT: usize = 10_000;

#[derive(Serialize, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    name: String,
    value: u64,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeadStats {
    num_series: u64,
    num_label_pairs: u64,
    chunk_count: u64,
    min_time: i64,
    max_time: i64,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TsdbStatus {
    head_stats: HeadStats,
    series_count_by_metric_name: Vec<Stat>,
    label_value_count_by_label_name: Vec<Stat>,
    memory_in_bytes_by_label_name: Vec<Stat>,
    series_count_by_label_value_pair: Vec<Stat>,
}

/// The `limit` largest entries, by value then name.
fn top(counts: HashMap<String, u64>, limit: usize) -> Vec<Stat> {
    let mut v: Vec<Stat> = counts
        .into_iter()
        .map(|(name, value)| Stat { name, value })
        .collect();
    v.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    v.truncate(limit);
    v
}

/// Bytes of a varint holding `n` (Prometheus's label size estimate).
fn varint_len(n: usize) -> u64 {
    let mut len = 1;
    let mut n = n >> 7;
    while n > 0 {
        len += 1;
        n >>= 7;
    }
    len
}

/// Cardinality statistics of the head of `db`, as Prometheus's
/// `MemPostings.Stats`: from the index's counts, without visiting series.
fn tsdb_status(db: &Arc<engine::Db>, limit: usize) -> TsdbStatus {
    let counts = db.head_label_counts();
    let mut by_metric = HashMap::new();
    let mut value_counts = HashMap::new();
    let mut memory = HashMap::new();
    let mut by_pair = HashMap::new();
    let mut num_label_pairs = 0u64;
    for (name, values) in &counts.labels {
        value_counts.insert(name.clone(), values.len() as u64);
        num_label_pairs += values.len() as u64;
        let mut bytes = 0u64;
        for (value, n) in values {
            if name == engine::METRIC_NAME {
                by_metric.insert(value.clone(), *n);
            }
            by_pair.insert(format!("{name}={value}"), *n);
            let size = varint_len(name.len())
                + name.len() as u64
                + varint_len(value.len())
                + value.len() as u64;
            bytes += size * n;
        }
        memory.insert(name.clone(), bytes);
    }
    let (min_time, max_time) = db.head_time_range().unwrap_or((i64::MAX, i64::MIN));
    TsdbStatus {
        head_stats: HeadStats {
            num_series: counts.num_series,
            num_label_pairs,
            chunk_count: 0,
            min_time,
            max_time,
        },
        series_count_by_metric_name: top(by_metric, limit),
        label_value_count_by_label_name: top(value_counts, limit),
        memory_in_bytes_by_label_name: top(memory, limit),
        series_count_by_label_value_pair: top(by_pair, limit),
    }
}

pub(crate) async fn tsdb(
    State(api): State<Arc<Api>>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = match params.get("limit") {
        "" => 10,
        s => match atoi(s) {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(ApiError::TsdbLimitNotPositive),
        },
    };
    if limit > MAX_TSDB_LIMIT {
        return Err(ApiError::TsdbLimitTooLarge(MAX_TSDB_LIMIT));
    }
    let db = api.db().clone();
    let status = blocking(move || Ok(tsdb_status(&db, limit))).await?;
    Ok(response::success(status, Annotations::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_sorts_by_value_then_name_and_cuts() {
        let counts: HashMap<String, u64> = [("b", 2), ("a", 2), ("c", 5), ("d", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let names: Vec<String> = top(counts, 3).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }

    #[test]
    fn varints() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
    }
}
