//! Per-receiver, per-integration notification metrics, named as
//! Alertmanager names them (`alertmanager_notifications_total` and friends)
//! with a `receiver` label added.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct IntegrationLabels {
    pub receiver: String,
    pub integration: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FailureLabels {
    pub receiver: String,
    pub integration: String,
    pub reason: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([1.0, 5.0, 10.0, 15.0, 20.0])
}

type HistogramFamily = Family<IntegrationLabels, Histogram, fn() -> Histogram>;

/// The metric families every receiver records into. Cheap to clone (the
/// families are shared); create once per registry with
/// [`ReceiverMetrics::new`] and hand a clone to every
/// [`Receiver`](crate::receivers::Receiver).
#[derive(Clone)]
pub struct ReceiverMetrics {
    notifications: Family<IntegrationLabels, Counter>,
    failed: Family<FailureLabels, Counter>,
    requests: Family<IntegrationLabels, Counter>,
    requests_failed: Family<IntegrationLabels, Counter>,
    latency: HistogramFamily,
    rate_limited: Family<IntegrationLabels, Counter>,
}

impl std::fmt::Debug for ReceiverMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverMetrics")
    }
}

impl ReceiverMetrics {
    /// Registers `alertmanager_notifications_total`,
    /// `alertmanager_notifications_failed_total{reason}`,
    /// `alertmanager_notification_requests_total`,
    /// `alertmanager_notification_requests_failed_total`,
    /// `alertmanager_notification_latency_seconds` (labels `receiver`,
    /// `integration`) and `alertmanager_notifications_rate_limited_total`
    /// (Silt: notifications that waited for the receiver's rate limit).
    pub fn new(registry: &mut Registry) -> ReceiverMetrics {
        let m = ReceiverMetrics::unregistered();
        registry.register(
            "alertmanager_notifications",
            "The total number of attempted notifications.",
            m.notifications.clone(),
        );
        registry.register(
            "alertmanager_notifications_failed",
            "The total number of failed notifications.",
            m.failed.clone(),
        );
        registry.register(
            "alertmanager_notification_requests",
            "The total number of attempted notification requests.",
            m.requests.clone(),
        );
        registry.register(
            "alertmanager_notification_requests_failed",
            "The total number of failed notification requests.",
            m.requests_failed.clone(),
        );
        registry.register(
            "alertmanager_notification_latency_seconds",
            "The latency of notifications in seconds.",
            m.latency.clone(),
        );
        registry.register(
            "alertmanager_notifications_rate_limited",
            "Notifications that had to wait for the receiver's rate limit.",
            m.rate_limited.clone(),
        );
        m
    }

    /// Metrics recorded nowhere visible (for tests and tools).
    pub fn unregistered() -> ReceiverMetrics {
        ReceiverMetrics {
            notifications: Family::default(),
            failed: Family::default(),
            requests: Family::default(),
            requests_failed: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            rate_limited: Family::default(),
        }
    }

    fn labels(receiver: &str, integration: &str) -> IntegrationLabels {
        IntegrationLabels {
            receiver: receiver.to_string(),
            integration: integration.to_string(),
        }
    }

    pub(crate) fn notification(&self, receiver: &str, integration: &str) {
        self.notifications
            .get_or_create(&Self::labels(receiver, integration))
            .inc();
    }

    pub(crate) fn failed(&self, receiver: &str, integration: &str, reason: &str) {
        self.failed
            .get_or_create(&FailureLabels {
                receiver: receiver.to_string(),
                integration: integration.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn request(&self, receiver: &str, integration: &str, failed: bool) {
        let l = Self::labels(receiver, integration);
        self.requests.get_or_create(&l).inc();
        if failed {
            self.requests_failed.get_or_create(&l).inc();
        }
    }

    pub(crate) fn latency(&self, receiver: &str, integration: &str, d: Duration) {
        self.latency
            .get_or_create(&Self::labels(receiver, integration))
            .observe(d.as_secs_f64());
    }

    pub(crate) fn rate_limited(&self, receiver: &str, integration: &str) {
        self.rate_limited
            .get_or_create(&Self::labels(receiver, integration))
            .inc();
    }

    /// Counter values, for tests: (notifications, requests, requests_failed).
    pub fn counts(&self, receiver: &str, integration: &str) -> (u64, u64, u64) {
        let l = Self::labels(receiver, integration);
        (
            self.notifications.get_or_create(&l).get(),
            self.requests.get_or_create(&l).get(),
            self.requests_failed.get_or_create(&l).get(),
        )
    }

    /// `notifications_failed_total` for one reason, for tests.
    pub fn failed_count(&self, receiver: &str, integration: &str, reason: &str) -> u64 {
        self.failed
            .get_or_create(&FailureLabels {
                receiver: receiver.to_string(),
                integration: integration.to_string(),
                reason: reason.to_string(),
            })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_and_labels() {
        let mut reg = Registry::default();
        let m = ReceiverMetrics::new(&mut reg);
        m.notification("team", "slack");
        m.request("team", "slack", true);
        m.failed("team", "slack", "serverError");
        m.latency("team", "slack", Duration::from_millis(300));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            r#"alertmanager_notifications_total{receiver="team",integration="slack"} 1"#,
            r#"alertmanager_notifications_failed_total{receiver="team",integration="slack",reason="serverError"} 1"#,
            r#"alertmanager_notification_requests_total{receiver="team",integration="slack"} 1"#,
            r#"alertmanager_notification_requests_failed_total{receiver="team",integration="slack"} 1"#,
            r#"alertmanager_notification_latency_seconds_bucket{le="1.0",receiver="team",integration="slack"} 1"#,
        ] {
            assert!(out.contains(line), "{line}\n{out}");
        }
        assert_eq!(m.counts("team", "slack"), (1, 1, 1));
    }
}
