//! The dispatcher's own metrics (alerts received and invalid, alerts and
//! silences by state, aggregation groups, notification log); the
//! per-integration notification metrics live in
//! [`crate::receivers::ReceiverMetrics`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabel {
    pub receiver: String,
}

#[derive(Clone, Default)]
pub struct Metrics {
    pub alerts_received: Family<StatusLabel, Counter>,
    pub alerts_invalid: Counter,
    pub alerts: Family<StateLabel, Gauge>,
    pub silences: Family<StateLabel, Gauge>,
    pub aggregation_groups: Gauge,
    pub nflog_queries: Counter,
    pub nflog_query_errors: Counter,
    pub nflog_entries: Gauge,
    pub nflog_gc: Counter,
    /// Group notifications per receiver as the dispatcher sees them
    /// (one per flush and receiver, whatever the integrations).
    pub dispatch_notifications: Family<ReceiverLabel, Counter>,
    pub dispatch_failures: Family<ReceiverLabel, Counter>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "alertmanager_alerts_received",
            "The total number of received alerts.",
            m.alerts_received.clone(),
        );
        registry.register(
            "alertmanager_alerts_invalid",
            "The total number of received alerts that were invalid.",
            m.alerts_invalid.clone(),
        );
        registry.register(
            "alertmanager_alerts",
            "How many alerts by state.",
            m.alerts.clone(),
        );
        registry.register(
            "alertmanager_silences",
            "How many silences by state.",
            m.silences.clone(),
        );
        registry.register(
            "alertmanager_dispatcher_aggregation_groups",
            "Number of active aggregation groups",
            m.aggregation_groups.clone(),
        );
        registry.register(
            "alertmanager_nflog_queries",
            "Number of notification log queries were received.",
            m.nflog_queries.clone(),
        );
        registry.register(
            "alertmanager_nflog_query_errors",
            "Number notification log received queries that failed.",
            m.nflog_query_errors.clone(),
        );
        registry.register(
            "alertmanager_nflog_entries",
            "Entries in the notification log.",
            m.nflog_entries.clone(),
        );
        registry.register(
            "alertmanager_nflog_gc_removed_entries",
            "Notification log entries removed by garbage collection.",
            m.nflog_gc.clone(),
        );
        registry.register(
            "alertmanager_dispatch_notifications",
            "Group notifications handed to each receiver.",
            m.dispatch_notifications.clone(),
        );
        registry.register(
            "alertmanager_dispatch_notifications_failed",
            "Group notifications a receiver failed to deliver.",
            m.dispatch_failures.clone(),
        );
        m
    }

    pub fn set_state(family: &Family<StateLabel, Gauge>, state: &str, v: i64) {
        family
            .get_or_create(&StateLabel {
                state: state.to_string(),
            })
            .set(v);
    }
}
