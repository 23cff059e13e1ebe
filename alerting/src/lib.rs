//! Silt's rule evaluation: Prometheus rule files (recording and alerting
//! rules) evaluated over the PromQL evaluator, alert state, and the hand-off
//! of alerts to Alertmanagers (built-in through [`AlertSink`], external
//! through [`ExternalAlertmanagers`]).
//!
//! Layout: `rules` (file format and validation, `promtool check rules`),
//! `template` (label/annotation templates over [`gotmpl`]), `rule` (one
//! rule's evaluation and the alert state machine), `group` (a group's
//! evaluation, staleness, schedule, `for` restoration), `manager` (loading,
//! reloading, the per-group tasks), `notify` (alert hand-off), `api`
//! (`/api/v1/rules`, `/api/v1/alerts`), `metrics`.

pub mod api;
pub mod group;
pub mod manager;
pub mod metrics;
pub mod notify;
pub mod rule;
pub mod rules;
pub mod template;
pub mod unittest;

pub use api::routes;
pub use group::{Group, GroupContext, GroupStats, group_key};
pub use manager::{
    GlobalConfig, LoadError, ManagerOptions, RuleManager, expand_rule_files, load_groups,
};
pub use metrics::{NotifierMetrics, RuleMetrics};
pub use notify::{
    AlertSink, ExternalAlertmanagers, ExternalOptions, FanOut, OutgoingAlert, StateChange,
    StateObserver,
};
pub use rule::{Alert, AlertState, Health};
pub use rules::file::{FileCheck, RuleFileError, check_files, report};
