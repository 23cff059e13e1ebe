//! The receiver's own metrics, registered under `silt_remote_write_`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::decode::RequestStats;
use crate::negotiate::Version;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

pub(crate) struct Metrics {
    requests: Family<Labels2, Counter>,
    series: Counter,
    samples: Counter,
    histograms: Counter,
    exemplars: Counter,
    metadata: Counter,
    samples_written: Counter,
    bytes: Family<Labels1, Counter>,
    rejected_samples: Family<Labels1, Counter>,
    pub(crate) inflight_bytes: Gauge,
    duration: Family<Labels1, Histogram>,
}

impl Metrics {
    pub(crate) fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            requests: Family::default(),
            series: Counter::default(),
            samples: Counter::default(),
            histograms: Counter::default(),
            exemplars: Counter::default(),
            metadata: Counter::default(),
            samples_written: Counter::default(),
            bytes: Family::default(),
            rejected_samples: Family::default(),
            inflight_bytes: Gauge::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
        };
        let r = registry.sub_registry_with_prefix("silt_remote_write");
        r.register(
            "requests",
            "Remote-write requests by protocol version and HTTP status code",
            m.requests.clone(),
        );
        r.register(
            "series_received",
            "TimeSeries entries received (before merging repeats)",
            m.series.clone(),
        );
        r.register(
            "samples_received",
            "Float samples received",
            m.samples.clone(),
        );
        r.register(
            "histograms_received",
            "Native histogram samples received (not stored yet)",
            m.histograms.clone(),
        );
        r.register(
            "exemplars_received",
            "Exemplars received (not stored yet)",
            m.exemplars.clone(),
        );
        r.register(
            "metadata_received",
            "Metadata entries received",
            m.metadata.clone(),
        );
        r.register(
            "samples_written",
            "Float samples written durably",
            m.samples_written.clone(),
        );
        r.register(
            "received_bytes",
            "Request body bytes, compressed (as sent) and decoded",
            m.bytes.clone(),
        );
        r.register(
            "rejected_samples",
            "Samples, histograms and exemplars received but not written, by reason",
            m.rejected_samples.clone(),
        );
        r.register(
            "inflight_bytes",
            "Request bytes being decoded and appended now",
            m.inflight_bytes.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from request start to response, by protocol version",
            m.duration.clone(),
        );
        m
    }

    pub(crate) fn request(&self, version: Option<Version>, status: u16, seconds: f64) {
        let v = version_label(version);
        self.requests
            .get_or_create(&[("version", v), ("code", code_label(status))])
            .inc();
        self.duration
            .get_or_create(&[("version", v)])
            .observe(seconds);
    }

    pub(crate) fn received(&self, s: &RequestStats) {
        self.series.inc_by(s.series as u64);
        self.samples.inc_by(s.samples as u64);
        self.histograms.inc_by(s.histograms as u64);
        self.exemplars.inc_by(s.exemplars as u64);
        self.metadata.inc_by(s.metadata as u64);
        self.bytes
            .get_or_create(&[("encoding", "compressed")])
            .inc_by(s.compressed_bytes as u64);
        self.bytes
            .get_or_create(&[("encoding", "decoded")])
            .inc_by(s.decoded_bytes as u64);
    }

    pub(crate) fn written(&self, samples: usize) {
        self.samples_written.inc_by(samples as u64);
    }

    pub(crate) fn rejected(&self, reason: &'static str, n: usize) {
        if n > 0 {
            self.rejected_samples
                .get_or_create(&[("reason", reason)])
                .inc_by(n as u64);
        }
    }
}

fn version_label(v: Option<Version>) -> &'static str {
    match v {
        Some(Version::V1) => "1.0",
        Some(Version::V2) => "2.0",
        None => "unknown",
    }
}

fn code_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        204 => "204",
        400 => "400",
        405 => "405",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}
