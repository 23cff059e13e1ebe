//! Silt's configuration: the embedded defaults (`default-config.yml`), a
//! user's YAML file merged over them key by key, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::duration::HumanDuration;

/// The built-in configuration; also the reference for every key.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default-config.yml");

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub retention: HumanDuration,
    pub durability: DurabilityConfig,
    pub ingest: IngestConfig,
    pub self_scrape: SelfScrapeConfig,
    pub log: LogConfig,
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
        Config::from_layers(Some(&text))
            .with_context(|| format!("in config file {}", path.display()))
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

    fn validate(&self) -> anyhow::Result<()> {
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
        if self.log.level.trim().is_empty() {
            anyhow::bail!("log.level must not be empty");
        }
        Ok(())
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

    /// The engine's options.
    pub fn engine_options(&self) -> engine::Options {
        let mut opts = engine::Options::new(self.data_dir.clone());
        opts.retention = self.retention();
        opts.durability = self.durability();
        opts.max_future = self.ingest.max_future.0;
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
        assert_eq!(cfg.self_scrape_interval(), Some(Duration::from_secs(15)));
        assert_eq!(cfg.ingest.max_future.0, Duration::from_secs(600));
        assert_eq!(cfg.log.level, "info");
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
        ] {
            let err = Config::from_layers(Some(bad));
            assert!(err.is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn yaml_round_trips() {
        let cfg = Config::from_layers(Some("retention: 1y\n")).unwrap();
        let again = Config::from_layers(Some(&cfg.to_yaml().unwrap())).unwrap();
        assert_eq!(cfg, again);
    }
}
