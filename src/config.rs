//! Silt's configuration: the embedded defaults (`default-config.yml`), a
//! user's YAML file merged over them key by key, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::duration::HumanDuration;

/// The built-in configuration; also the reference for every key.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default-config.yml");

/// Reads the configuration again, as at start (the file, then the
/// command line's flags): what a reload applies.
pub type ConfigSource = Arc<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// Now, in Unix milliseconds.
pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub retention: HumanDuration,
    pub durability: DurabilityConfig,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    /// Prometheus rule files (recording and alerting rules): globs,
    /// relative to the config file's folder.
    pub rule_files: Vec<String>,
    pub rules: RulesConfig,
    pub alerting: AlertingConfig,
    /// Files holding a `reports:` list of scheduled report definitions
    /// (docs/reports.md): globs, relative to the config file's folder.
    pub report_files: Vec<String>,
    /// Report definitions written inline (checked like the files').
    pub reports: Vec<serde_yaml::Value>,
    /// `/api/v1/capacity`'s checks (docs/forecasting.md).
    pub capacity: CapacityConfig,
    pub self_scrape: SelfScrapeConfig,
    pub log: LogConfig,
    /// The folder relative paths in the file are resolved against (the
    /// config file's; the working directory without one).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Acknowledge a write only after it is fsynced (group commit).
    Sync,
    /// Acknowledge at once; fsync every `durability.interval`.
    Async,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurabilityConfig {
    pub mode: DurabilityMode,
    pub interval: HumanDuration,
    /// WAL bytes after which a head checkpoint is written at the latest
    /// (sooner while the head is small); 0: none.
    pub checkpoint_wal_bytes: u64,
    /// Write a head checkpoint on a clean shutdown.
    pub checkpoint_on_close: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_future: HumanDuration,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
    pub max_series_per_request: usize,
    pub max_labels_per_series: usize,
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
    pub max_inflight_bytes: usize,
}

/// Limits of PromQL queries (Prometheus's `--query.*` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    pub timeout: HumanDuration,
    pub max_samples: usize,
    /// 0: no limit.
    pub max_series: usize,
    pub lookback_delta: HumanDuration,
    /// Prometheus's `promql-delayed-name-removal` feature (off there by
    /// default too): names a function drops are dropped when the
    /// evaluation ends, not at once.
    pub delayed_name_removal: bool,
    pub max_concurrency: usize,
    pub max_queue_wait: HumanDuration,
    /// Budget of the shared cache of decoded block pages: bytes (0 turns
    /// it off) or `auto`, a share of the machine's memory.
    pub block_cache_bytes: ByteBudget,
}

/// A byte budget: a number of bytes, or `auto` to follow the memory the
/// process may use ([`ByteBudget::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteBudget {
    Auto,
    Bytes(usize),
}

impl ByteBudget {
    /// Share of memory `auto` takes.
    pub const AUTO_SHARE: u64 = 8;
    /// Budget `auto` keeps to when memory is unknown, and at least (unless
    /// that would be more than a quarter of memory): the fixed default
    /// before `auto`.
    pub const AUTO_FLOOR: u64 = 256 << 20;

    /// Bytes, `auto` resolved against `memory` (bytes the process may use).
    pub fn resolve(self, memory: Option<u64>) -> usize {
        match self {
            ByteBudget::Bytes(n) => n,
            ByteBudget::Auto => {
                let bytes = memory.map_or(Self::AUTO_FLOOR, |m| {
                    (m / Self::AUTO_SHARE).max(Self::AUTO_FLOOR.min(m / 4))
                });
                usize::try_from(bytes).unwrap_or(usize::MAX)
            }
        }
    }
}

impl Serialize for ByteBudget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ByteBudget::Auto => s.serialize_str("auto"),
            ByteBudget::Bytes(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ByteBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Bytes(usize),
            Word(String),
        }
        match Repr::deserialize(d)? {
            Repr::Bytes(n) => Ok(ByteBudget::Bytes(n)),
            Repr::Word(w) if w == "auto" => Ok(ByteBudget::Auto),
            Repr::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?} is neither a number of bytes nor auto"
            ))),
        }
    }
}

/// Bytes of memory this process may use: the machine's (`MemTotal`), or
/// the lowest limit of its control group and the groups above it
/// ([`cgroup_limit_files`]) when lower; `None` when neither can be read.
pub fn memory_limit() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kib = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
        let kib: u64 = kib.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    });
    let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let cgroup = cgroup_limit_files(&groups)
        .iter()
        // "max" (v2) does not parse: no limit there. v1 writes a number
        // near 2^63 for none, which MemTotal undercuts.
        .filter_map(|f| std::fs::read_to_string(f).ok()?.trim().parse::<u64>().ok())
        .min();
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The files holding the memory limits that apply to a process whose
/// `/proc/self/cgroup` reads `groups`: `memory.max` (cgroup v2, the `0::`
/// line) or `memory.limit_in_bytes` (v1, the line of the `memory`
/// controller) of its group and of every group above it, under the usual
/// mount points. Inside a container with its own cgroup namespace the
/// group is `/`, whose file is the container's limit.
fn cgroup_limit_files(groups: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut dir = PathBuf::from(root);
        files.push(dir.join(file));
        for part in path.split('/').filter(|p| !p.is_empty() && *p != "..") {
            dir.push(part);
            files.push(dir.join(file));
        }
    }
    files
}

/// Rule evaluation (Prometheus's `global:` keys that concern rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Default interval of rule groups without their own.
    pub evaluation_interval: HumanDuration,
    /// Default `query_offset` of rule groups without their own.
    pub query_offset: HumanDuration,
    /// Added to alerts sent out (names not already present).
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// The URL Silt is reached at, for links in alerts; empty: http://<listen>.
    pub external_url: String,
}

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Alertmanager-format YAML (route, receivers, inhibit_rules,
    /// time_intervals, templates) for the built-in Alertmanager, relative to
    /// the config file's folder; empty: keep alerts (API, history) and
    /// notify nobody.
    pub config_file: String,
    /// Base URLs of external Alertmanagers that also get every alert, as
    /// Prometheus sends them (`POST <url>/api/v2/alerts`).
    pub alertmanagers: Vec<String>,
}

/// Capacity checks: the built-in ones over node_exporter metrics and
/// configured ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Run the built-in checks (filesystem space and inodes, memory, CPU).
    pub builtin: bool,
    /// Matchers (without braces) picking the filesystems checked.
    pub filesystems: String,
    /// Share of a filesystem kept free: 0.05 counts it full at 95%.
    pub filesystem_headroom: f64,
    /// Share of `MemTotal` that counts as memory running out.
    pub memory_headroom: f64,
    /// CPU use (0..1) that counts as saturated.
    pub cpu_saturation: f64,
    /// Fitting window of the built-in checks (and the default of the
    /// configured ones).
    pub history: HumanDuration,
    pub checks: Vec<CapacityCheckConfig>,
}

/// One configured capacity check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityCheckConfig {
    pub name: String,
    /// Instant-vector PromQL, evaluated over the history.
    pub query: String,
    /// A number, or PromQL giving a threshold per series (matched on
    /// labels, the metric name ignored).
    pub threshold: ThresholdConfig,
    /// `below` (runs out when falling to the threshold) or `above`.
    pub direction: String,
    /// The finding's sentence before its time; `{label}` is replaced.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HumanDuration>,
    /// `seasonal` (default) or `linear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ThresholdConfig {
    Value(f64),
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfScrapeConfig {
    pub interval: HumanDuration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

impl Config {
    /// The built-in defaults.
    #[cfg(test)]
    pub fn builtin() -> Config {
        Config::from_layers(None)
            .expect("the embedded default config is valid (checked by a unit test)")
    }

    /// Loads the defaults, merged with `path` if given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Config::from_layers(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut cfg = Config::from_layers(Some(&text))
            .with_context(|| format!("in config file {}", path.display()))?;
        cfg.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(cfg)
    }

    /// The defaults with `overlay` (YAML text) merged over them.
    pub fn from_layers(overlay: Option<&str>) -> anyhow::Result<Config> {
        let mut base: Value = serde_yaml::from_str(DEFAULT_CONFIG_YAML)
            .context("parsing the embedded default config")?;
        if let Some(text) = overlay {
            let user: Value = serde_yaml::from_str(text).context("parsing YAML")?;
            match user {
                Value::Null => {}
                Value::Mapping(m) => merge(&mut base, m),
                _ => anyhow::bail!("the config must be a YAML mapping (key: value)"),
            }
        }
        let cfg: Config = serde_yaml::from_value(base).context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.durability.mode == DurabilityMode::Async && self.durability.interval.0.is_zero() {
            anyhow::bail!("durability.interval must be positive in async mode");
        }
        let i = &self.ingest;
        for (key, value) in [
            ("max_body_bytes", i.max_body_bytes),
            ("max_decoded_bytes", i.max_decoded_bytes),
            ("max_series_per_request", i.max_series_per_request),
            ("max_labels_per_series", i.max_labels_per_series),
            ("max_label_name_bytes", i.max_label_name_bytes),
            ("max_label_value_bytes", i.max_label_value_bytes),
            ("max_inflight_bytes", i.max_inflight_bytes),
        ] {
            if value == 0 {
                anyhow::bail!("ingest.{key} must be positive");
            }
        }
        let q = &self.query;
        for (key, d) in [
            ("timeout", &q.timeout),
            ("lookback_delta", &q.lookback_delta),
        ] {
            if d.0.is_zero() {
                anyhow::bail!("query.{key} must be positive");
            }
        }
        if q.max_samples == 0 {
            anyhow::bail!("query.max_samples must be positive");
        }
        if q.max_concurrency == 0 {
            anyhow::bail!("query.max_concurrency must be positive");
        }
        if self.log.level.trim().is_empty() {
            anyhow::bail!("log.level must not be empty");
        }
        self.capacity_checks()?;
        Ok(())
    }

    /// `/api/v1/capacity`'s checks: the built-in ones (unless turned off)
    /// then the configured ones, validated.
    pub fn capacity_checks(&self) -> anyhow::Result<Vec<query::capacity::Check>> {
        use query::capacity::{BuiltinOptions, Check, Threshold};
        use query::forecast::{Direction, ModelKind};
        let c = &self.capacity;
        for (key, v) in [
            ("filesystem_headroom", c.filesystem_headroom),
            ("memory_headroom", c.memory_headroom),
        ] {
            if !(0.0..1.0).contains(&v) {
                anyhow::bail!("capacity.{key} must be at least 0 and below 1, got {v}");
            }
        }
        if !(c.cpu_saturation > 0.0 && c.cpu_saturation <= 1.0) {
            anyhow::bail!(
                "capacity.cpu_saturation must be above 0 and at most 1, got {}",
                c.cpu_saturation
            );
        }
        let mut checks = if c.builtin {
            query::capacity::builtin_checks(&BuiltinOptions {
                filesystems: c.filesystems.clone(),
                filesystem_headroom: c.filesystem_headroom,
                memory_headroom: c.memory_headroom,
                cpu_saturation: c.cpu_saturation,
                history: c.history.0,
            })
        } else {
            Vec::new()
        };
        for k in &c.checks {
            let direction = Direction::parse(&k.direction).with_context(|| {
                format!(
                    "capacity check {}: direction {:?}: expected below or above",
                    k.name, k.direction
                )
            })?;
            let model = match k.model.as_deref() {
                None => ModelKind::default(),
                Some(m) => ModelKind::parse(m).with_context(|| {
                    format!(
                        "capacity check {}: model {m:?}: expected one of {}",
                        k.name,
                        ModelKind::NAMES.join(", ")
                    )
                })?,
            };
            checks.push(Check {
                name: k.name.clone(),
                query: k.query.clone(),
                threshold: match &k.threshold {
                    ThresholdConfig::Value(v) => Threshold::Value(*v),
                    ThresholdConfig::Query(q) => Threshold::Query(q.clone()),
                },
                direction,
                message: k.message.clone(),
                history: k.history.as_ref().map_or(c.history.0, |h| h.0),
                model,
            });
        }
        query::capacity::validate_all(&checks).context("in capacity")?;
        Ok(checks)
    }

    /// `path` resolved against [`Config::base_dir`].
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() || self.base_dir.as_os_str().is_empty() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The rule file globs, resolved against [`Config::base_dir`].
    pub fn rule_file_patterns(&self) -> Vec<String> {
        self.rule_files
            .iter()
            .map(|g| self.resolve_path(g).to_string_lossy().into_owned())
            .collect()
    }

    /// The report file globs, resolved against [`Config::base_dir`].
    pub fn report_file_patterns(&self) -> Vec<String> {
        self.report_files
            .iter()
            .map(|g| self.resolve_path(g).to_string_lossy().into_owned())
            .collect()
    }

    /// Retention as the engine wants it: `None` keeps everything.
    pub fn retention(&self) -> Option<Duration> {
        Some(self.retention.0).filter(|d| !d.is_zero())
    }

    /// Self-scrape interval; `None` when turned off.
    pub fn self_scrape_interval(&self) -> Option<Duration> {
        Some(self.self_scrape.interval.0).filter(|d| !d.is_zero())
    }

    pub fn durability(&self) -> engine::Durability {
        match self.durability.mode {
            DurabilityMode::Sync => engine::Durability::Sync,
            DurabilityMode::Async => engine::Durability::Async {
                interval: self.durability.interval.0,
            },
        }
    }

    /// The remote-write receiver's limits.
    pub fn ingest_limits(&self) -> ingest::Limits {
        let i = &self.ingest;
        ingest::Limits {
            max_body_bytes: i.max_body_bytes,
            max_decoded_bytes: i.max_decoded_bytes,
            max_series_per_request: i.max_series_per_request,
            max_labels_per_series: i.max_labels_per_series,
            max_label_name_bytes: i.max_label_name_bytes,
            max_label_value_bytes: i.max_label_value_bytes,
            max_inflight_bytes: i.max_inflight_bytes,
        }
    }

    /// `/api/v1/sql`'s limits: the PromQL ones (a scan's samples and
    /// series, the timeout) apply to SQL too.
    pub fn sql_options(&self) -> sql::api::SqlOptions {
        let q = &self.query;
        sql::api::SqlOptions {
            limits: sql::table::TableLimits {
                max_samples: q.max_samples,
                max_series: if q.max_series == 0 {
                    usize::MAX
                } else {
                    q.max_series
                },
            },
            timeout: q.timeout.0,
            ..sql::api::SqlOptions::default()
        }
    }

    /// The query API's limits and status information.
    pub fn api_options(&self) -> anyhow::Result<query::api::ApiOptions> {
        let q = &self.query;
        let mut opts = query::api::ApiOptions::default();
        opts.engine.timeout = q.timeout.0;
        opts.engine.max_samples = q.max_samples;
        opts.engine.max_series = if q.max_series == 0 {
            usize::MAX
        } else {
            q.max_series
        };
        opts.engine.lookback_delta = q.lookback_delta.0;
        opts.engine.delayed_name_removal = q.delayed_name_removal;
        opts.concurrency = query::api::ConcurrencyOptions {
            max_concurrency: q.max_concurrency,
            max_queue_wait: q.max_queue_wait.0,
        };
        opts.status = query::api::StatusInfo {
            build: query::api::BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..query::api::BuildInfo::default()
            },
            flags: self.flags(),
            config: Arc::new(query::api::ConfigStatus::new(
                self.to_yaml()?,
                unix_ms_now(),
            )),
            storage_retention: self.retention.to_string(),
        };
        opts.capacity_checks = self.capacity_checks()?;
        Ok(opts)
    }

    /// The settings under Prometheus's flag names, for `/api/v1/status/flags`.
    pub fn flags(&self) -> std::collections::BTreeMap<String, String> {
        let q = &self.query;
        [
            ("web.listen-address", self.listen.to_string()),
            ("storage.tsdb.path", self.data_dir.display().to_string()),
            ("storage.tsdb.retention.time", self.retention.to_string()),
            ("query.timeout", q.timeout.to_string()),
            ("query.max-samples", q.max_samples.to_string()),
            ("query.lookback-delta", q.lookback_delta.to_string()),
            (
                "query.delayed-name-removal",
                q.delayed_name_removal.to_string(),
            ),
            ("query.max-concurrency", q.max_concurrency.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The engine's options.
    pub fn engine_options(&self) -> engine::Options {
        let mut opts = engine::Options::new(self.data_dir.clone());
        opts.retention = self.retention();
        opts.durability = self.durability();
        opts.checkpoint_wal_bytes = self.durability.checkpoint_wal_bytes;
        opts.checkpoint_on_close = self.durability.checkpoint_on_close;
        opts.max_future = self.ingest.max_future.0;
        opts.block_cache_bytes = self.query.block_cache_bytes.resolve(memory_limit());
        opts
    }

    /// The effective configuration as YAML.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        serde_yaml::to_string(self).context("serialising the configuration")
    }
}

/// Merges `overlay` into `base` key by key; nested mappings merge, other
/// values replace, `null` leaves the base as it is.
fn merge(base: &mut Value, overlay: Mapping) {
    let Value::Mapping(base_map) = base else {
        *base = Value::Mapping(overlay);
        return;
    };
    for (key, value) in overlay {
        match (base_map.get_mut(&key), value) {
            (_, Value::Null) => {}
            (Some(slot @ Value::Mapping(_)), Value::Mapping(m)) => merge(slot, m),
            (Some(slot), v) => *slot = v,
            (None, v) => {
                base_map.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let cfg = Config::builtin();
        assert_eq!(cfg.listen, "127.0.0.1:9300".parse().unwrap());
        assert_eq!(cfg.data_dir, PathBuf::from("./silt-data"));
        assert_eq!(cfg.retention(), Some(Duration::from_secs(15 * 86_400)));
        assert_eq!(cfg.durability(), engine::Durability::Sync);
        let engine = cfg.engine_options();
        assert_eq!(
            engine.checkpoint_wal_bytes,
            engine::db::DEFAULT_CHECKPOINT_WAL_BYTES
        );
        assert!(engine.checkpoint_on_close);
        assert_eq!(cfg.self_scrape_interval(), Some(Duration::from_secs(15)));
        assert_eq!(cfg.ingest.max_future.0, Duration::from_secs(600));
        assert_eq!(cfg.log.level, "info");
        assert_eq!(cfg.query.timeout.0, Duration::from_secs(120));
        assert_eq!(cfg.query.max_concurrency, 20);
    }

    #[test]
    fn query_limits_reach_the_api_options() {
        let builtin = Config::builtin().api_options().unwrap();
        let defaults = query::api::ApiOptions::default();
        assert_eq!(builtin.engine.timeout, defaults.engine.timeout);
        assert_eq!(builtin.engine.max_samples, defaults.engine.max_samples);
        assert_eq!(builtin.engine.max_series, usize::MAX);
        assert_eq!(
            builtin.engine.lookback_delta,
            defaults.engine.lookback_delta
        );
        assert!(!builtin.engine.delayed_name_removal);
        assert!(!defaults.engine.delayed_name_removal);
        assert_eq!(
            builtin.concurrency.max_concurrency,
            defaults.concurrency.max_concurrency
        );
        let cfg = Config::from_layers(Some(
            "query:\n  timeout: 10s\n  max_series: 7\n  max_concurrency: 3\n  delayed_name_removal: true\n",
        ))
        .unwrap();
        let opts = cfg.api_options().unwrap();
        assert_eq!(opts.engine.timeout, Duration::from_secs(10));
        assert_eq!(opts.engine.max_series, 7);
        assert_eq!(opts.concurrency.max_concurrency, 3);
        assert!(opts.engine.delayed_name_removal);
        assert_eq!(opts.status.flags["query.delayed-name-removal"], "true");
        assert_eq!(opts.status.flags["query.timeout"], "10s");
        assert!(opts.status.config.yaml().contains("max_concurrency: 3"));
        assert_eq!(opts.status.storage_retention, "15d");
    }

    #[test]
    fn the_block_cache_follows_memory_unless_given_in_bytes() {
        assert_eq!(Config::builtin().query.block_cache_bytes, ByteBudget::Auto);
        const GIB: u64 = 1 << 30;
        let auto = ByteBudget::Auto;
        assert_eq!(auto.resolve(Some(24 * GIB)), 3 << 30);
        // Small machines: 256 MiB, unless that is over a quarter.
        assert_eq!(auto.resolve(Some(GIB)), 256 << 20);
        assert_eq!(auto.resolve(Some(GIB / 2)), 128 << 20);
        assert_eq!(auto.resolve(None), 256 << 20);
        assert_eq!(ByteBudget::Bytes(5).resolve(Some(24 * GIB)), 5);
        let limit = memory_limit().expect("MemTotal on Linux");
        assert!(limit > 0);
        // The limits that apply: a group's and its ancestors', v2 and v1;
        // in a container's own namespace, its root group's.
        let cases: [(&str, &[&str]); 5] = [
            (
                "0::/system.slice/silt.service\n",
                &[
                    "/sys/fs/cgroup/memory.max",
                    "/sys/fs/cgroup/system.slice/memory.max",
                    "/sys/fs/cgroup/system.slice/silt.service/memory.max",
                ],
            ),
            (
                "12:cpu,cpuacct:/x\n9:memory:/docker/abc\n1:name=systemd:/y\n",
                &[
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/docker/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                ],
            ),
            ("0::/\n", &["/sys/fs/cgroup/memory.max"]),
            ("", &[]),
            ("garbage\n", &[]),
        ];
        for (groups, want) in cases {
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(cgroup_limit_files(groups), want, "{groups:?}");
        }
        assert!(Config::builtin().engine_options().block_cache_bytes >= 128 << 20);

        let cfg = Config::from_layers(Some("query:\n  block_cache_bytes: 0\n")).unwrap();
        assert_eq!(cfg.engine_options().block_cache_bytes, 0);
        let cfg = Config::from_layers(Some("query:\n  block_cache_bytes: 1048576\n")).unwrap();
        assert_eq!(cfg.engine_options().block_cache_bytes, 1 << 20);
        assert!(
            cfg.to_yaml()
                .unwrap()
                .contains("block_cache_bytes: 1048576")
        );
        assert!(
            Config::builtin()
                .to_yaml()
                .unwrap()
                .contains("block_cache_bytes: auto")
        );
        let e = Config::from_layers(Some("query:\n  block_cache_bytes: lots\n")).unwrap_err();
        assert!(
            format!("{e:#}").contains("\"lots\" is neither a number of bytes nor auto"),
            "{e:#}"
        );
    }

    #[test]
    fn embedded_limits_are_the_receivers_defaults() {
        assert_eq!(Config::builtin().ingest_limits(), ingest::Limits::default());
    }

    #[test]
    fn overlay_changes_only_its_keys() {
        let cfg = Config::from_layers(Some(
            "retention: 0\ndurability:\n  mode: async\n  interval: 200ms\nself_scrape:\n  interval: 1s\ningest:\n  max_body_bytes: 1000\n",
        ))
        .unwrap();
        assert_eq!(cfg.retention(), None);
        assert_eq!(
            cfg.durability(),
            engine::Durability::Async {
                interval: Duration::from_millis(200)
            }
        );
        assert_eq!(cfg.self_scrape_interval(), Some(Duration::from_secs(1)));
        assert_eq!(cfg.ingest.max_body_bytes, 1000);
        // Untouched keys keep their defaults.
        let builtin = Config::builtin();
        assert_eq!(
            cfg.ingest.max_decoded_bytes,
            builtin.ingest.max_decoded_bytes
        );
        assert_eq!(cfg.listen, builtin.listen);
        assert_eq!(cfg.log, builtin.log);
    }

    #[test]
    fn empty_file_and_null_sections_are_defaults() {
        assert_eq!(Config::from_layers(Some("")).unwrap(), Config::builtin());
        assert_eq!(
            Config::from_layers(Some("ingest:\nlog:\n")).unwrap(),
            Config::builtin()
        );
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        for bad in [
            "retension: 1d",
            "ingest:\n  max_body: 1",
            "retention: 15",
            "listen: nowhere",
            "durability:\n  mode: maybe",
            "durability:\n  mode: async\n  interval: 0",
            "- a list",
            "ingest:\n  max_body_bytes: 0",
            "self_scrape:\n  interval: -1",
            "query:\n  timeout: 0",
            "query:\n  max_concurrency: 0",
            "query:\n  max_samples: 0",
            "query:\n  lookback_delta: 0",
            "query:\n  max_sample: 1",
        ] {
            let err = Config::from_layers(Some(bad));
            assert!(err.is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn capacity_checks_from_the_config() {
        let names = |cfg: &Config| -> Vec<String> {
            cfg.api_options()
                .unwrap()
                .capacity_checks
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(
            names(&Config::builtin()),
            ["filesystem_space", "filesystem_inodes", "memory", "cpu"]
        );
        assert_eq!(
            Config::builtin().capacity.filesystems,
            query::capacity::DEFAULT_FILESYSTEMS
        );
        let cfg = Config::from_layers(Some(
            "capacity:\n  builtin: false\n  checks:\n    - name: queue\n      query: sum by (instance) (queue_bytes)\n      threshold: 1e9\n      direction: above\n      message: queue on {instance} reaches 1 GB\n      model: linear\n    - name: fs\n      query: node_filesystem_avail_bytes\n      threshold: 0.1 * node_filesystem_size_bytes\n      direction: below\n      message: '{mountpoint} is full'\n      history: 2d\n",
        ))
        .unwrap();
        let checks = cfg.api_options().unwrap().capacity_checks;
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].threshold, query::capacity::Threshold::Value(1e9));
        assert_eq!(checks[0].model, query::forecast::ModelKind::Linear);
        assert_eq!(checks[0].history, Duration::from_secs(7 * 86_400));
        assert_eq!(
            checks[1].threshold,
            query::capacity::Threshold::Query("0.1 * node_filesystem_size_bytes".into())
        );
        assert_eq!(checks[1].history, Duration::from_secs(2 * 86_400));
        let again = Config::from_layers(Some(&cfg.to_yaml().unwrap())).unwrap();
        assert_eq!(cfg, again);
        for (bad, want) in [
            (
                "capacity:\n  filesystem_headroom: 1",
                "capacity.filesystem_headroom",
            ),
            (
                "capacity:\n  checks:\n    - {name: x, query: 'up', threshold: 1, direction: sideways, message: m}",
                "direction \"sideways\"",
            ),
            (
                "capacity:\n  checks:\n    - {name: x, query: 'up{', threshold: 1, direction: above, message: m}",
                "check x: query",
            ),
            (
                "capacity:\n  checks:\n    - {name: cpu, query: 'up', threshold: 1, direction: above, message: m}",
                "two checks are named \"cpu\"",
            ),
        ] {
            let err = format!("{:#}", Config::from_layers(Some(bad)).unwrap_err());
            assert!(err.contains(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn yaml_round_trips() {
        let cfg = Config::from_layers(Some("retention: 1y\n")).unwrap();
        let again = Config::from_layers(Some(&cfg.to_yaml().unwrap())).unwrap();
        assert_eq!(cfg, again);
    }
}
