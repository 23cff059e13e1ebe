//! Metric metadata (type, help, unit) per metric family, as remote-write
//! senders report it. Kept in memory, logged in the WAL and snapshotted into
//! the data folder so `/api/v1/metadata` survives restarts.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The metric type, as in Prometheus's exposition formats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    #[default]
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }

    /// Stable numeric code used in the WAL (same numbering as remote write).
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> MetricType {
        match code {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricMetadata {
    pub metric_family: String,
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// The latest metadata seen per metric family. Several distinct entries per
/// family are kept (as Prometheus does when targets disagree), newest last,
/// bounded per family.
#[derive(Default)]
pub struct MetadataStore {
    inner: RwLock<BTreeMap<String, Vec<MetricMetadata>>>,
}

/// At most this many distinct metadata entries are kept per family.
const MAX_PER_FAMILY: usize = 8;

impl MetadataStore {
    /// Records `m`; returns true if it was new (and so worth logging).
    pub fn observe(&self, m: &MetricMetadata) -> bool {
        {
            let inner = self.inner.read();
            if let Some(list) = inner.get(&m.metric_family)
                && list.last() == Some(m)
            {
                return false;
            }
        }
        let mut inner = self.inner.write();
        let list = inner.entry(m.metric_family.clone()).or_default();
        if list.last() == Some(m) {
            return false;
        }
        list.retain(|x| x != m);
        list.push(m.clone());
        if list.len() > MAX_PER_FAMILY {
            list.remove(0);
        }
        true
    }

    /// All metadata, by family name.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        self.inner.read().clone()
    }

    pub fn all(&self) -> Vec<MetricMetadata> {
        self.inner.read().values().flatten().cloned().collect()
    }
}
