//! The rule manager's and the notifier's metrics: Prometheus's names with
//! the `silt_` prefix (`silt_rule_evaluations_total{rule_group=...}`,
//! `silt_notifications_sent_total{alertmanager=...}`, ...).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub(crate) type Labels1 = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

/// Rule evaluation metrics, labelled by `rule_group` (`<file>;<name>`).
#[derive(Clone)]
pub struct RuleMetrics {
    pub(crate) eval_duration: Histogram,
    pub(crate) group_duration: Histogram,
    pub(crate) iterations_missed: Family<Labels1, Counter>,
    pub(crate) iterations_scheduled: Family<Labels1, Counter>,
    pub(crate) evals: Family<Labels1, Counter>,
    pub(crate) eval_failures: Family<Labels1, Counter>,
    pub(crate) group_interval: Family<Labels1, FGauge>,
    pub(crate) group_last_eval_time: Family<Labels1, FGauge>,
    pub(crate) group_last_duration: Family<Labels1, FGauge>,
    pub(crate) group_last_rule_duration_sum: Family<Labels1, FGauge>,
    pub(crate) group_last_restore_duration: Family<Labels1, FGauge>,
    pub(crate) group_rules: Family<Labels1, FGauge>,
    pub(crate) group_samples: Family<Labels1, FGauge>,
}

fn duration_buckets() -> Histogram {
    Histogram::new([0.01, 0.1, 1.0, 10.0])
}

impl RuleMetrics {
    /// Metrics registered into `registry`.
    pub fn new(registry: &mut Registry) -> RuleMetrics {
        let m = RuleMetrics::unregistered();
        registry.register(
            "silt_rule_evaluation_duration_seconds",
            "The duration for a rule to execute",
            m.eval_duration.clone(),
        );
        registry.register(
            "silt_rule_group_duration_seconds",
            "The duration of rule group evaluations",
            m.group_duration.clone(),
        );
        registry.register(
            "silt_rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation",
            m.iterations_missed.clone(),
        );
        registry.register(
            "silt_rule_group_iterations",
            "The total number of scheduled rule group evaluations, whether executed or missed",
            m.iterations_scheduled.clone(),
        );
        registry.register(
            "silt_rule_evaluations",
            "The total number of rule evaluations",
            m.evals.clone(),
        );
        registry.register(
            "silt_rule_evaluation_failures",
            "The total number of rule evaluation failures",
            m.eval_failures.clone(),
        );
        registry.register(
            "silt_rule_group_interval_seconds",
            "The interval of a rule group",
            m.group_interval.clone(),
        );
        registry.register(
            "silt_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds",
            m.group_last_eval_time.clone(),
        );
        registry.register(
            "silt_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation",
            m.group_last_duration.clone(),
        );
        registry.register(
            "silt_rule_group_last_rule_duration_sum_seconds",
            "The sum of time in seconds it took to evaluate each rule in the group regardless of concurrency",
            m.group_last_rule_duration_sum.clone(),
        );
        registry.register(
            "silt_rule_group_last_restore_duration_seconds",
            "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` series",
            m.group_last_restore_duration.clone(),
        );
        registry.register(
            "silt_rule_group_rules",
            "The number of rules",
            m.group_rules.clone(),
        );
        registry.register(
            "silt_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation",
            m.group_samples.clone(),
        );
        m
    }

    /// Metrics not exposed anywhere (tests, the unit-test runner).
    pub fn unregistered() -> RuleMetrics {
        RuleMetrics {
            eval_duration: duration_buckets(),
            group_duration: duration_buckets(),
            iterations_missed: Family::default(),
            iterations_scheduled: Family::default(),
            evals: Family::default(),
            eval_failures: Family::default(),
            group_interval: Family::default(),
            group_last_eval_time: Family::default(),
            group_last_duration: Family::default(),
            group_last_rule_duration_sum: Family::default(),
            group_last_restore_duration: Family::default(),
            group_rules: Family::default(),
            group_samples: Family::default(),
        }
    }

    /// Drops the series of a group that no longer exists.
    pub(crate) fn remove_group(&self, key: &str) {
        let l = group_label(key);
        self.iterations_missed.remove(&l);
        self.iterations_scheduled.remove(&l);
        self.evals.remove(&l);
        self.eval_failures.remove(&l);
        self.group_interval.remove(&l);
        self.group_last_eval_time.remove(&l);
        self.group_last_duration.remove(&l);
        self.group_last_rule_duration_sum.remove(&l);
        self.group_last_restore_duration.remove(&l);
        self.group_rules.remove(&l);
        self.group_samples.remove(&l);
    }
}

/// `{rule_group="<file>;<name>"}`.
pub(crate) fn group_label(key: &str) -> Labels1 {
    vec![("rule_group".to_string(), key.to_string())]
}

/// Notifier metrics, labelled by `alertmanager` (the full POST URL).
#[derive(Clone)]
pub struct NotifierMetrics {
    pub(crate) latency: Family<Labels1, Histogram>,
    pub(crate) errors: Family<Labels1, Counter>,
    pub(crate) sent: Family<Labels1, Counter>,
    pub(crate) dropped: Family<Labels1, Counter>,
    pub(crate) queue_length: Family<Labels1, FGauge>,
    pub(crate) queue_capacity: FGauge,
    pub(crate) alertmanagers: FGauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new([0.01, 0.1, 1.0, 10.0])
}

impl NotifierMetrics {
    pub fn new(registry: &mut Registry) -> NotifierMetrics {
        let m = NotifierMetrics::unregistered();
        registry.register(
            "silt_notifications_latency_seconds",
            "Latency of sending alert notifications",
            m.latency.clone(),
        );
        registry.register(
            "silt_notifications_errors",
            "Total number of sent alerts affected by errors",
            m.errors.clone(),
        );
        registry.register(
            "silt_notifications_sent",
            "Total number of alerts sent",
            m.sent.clone(),
        );
        registry.register(
            "silt_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager",
            m.dropped.clone(),
        );
        registry.register(
            "silt_notifications_queue_length",
            "The number of alert notifications in the queue",
            m.queue_length.clone(),
        );
        registry.register(
            "silt_notifications_queue_capacity",
            "The capacity of the alert notifications queue",
            m.queue_capacity.clone(),
        );
        registry.register(
            "silt_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active",
            m.alertmanagers.clone(),
        );
        m
    }

    pub fn unregistered() -> NotifierMetrics {
        NotifierMetrics {
            latency: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            sent: Family::default(),
            dropped: Family::default(),
            queue_length: Family::default(),
            queue_capacity: FGauge::default(),
            alertmanagers: FGauge::default(),
        }
    }
}
