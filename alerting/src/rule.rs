//! Recording and alerting rules at run time: one evaluation of a rule
//! (query, relabel, the alert state machine of Prometheus's
//! `rules/alerting.go`), the alert instances, and each rule's health.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::{Label, Labels, METRIC_NAME};
use parking_lot::Mutex;
use query::eval::{QueryOptions, Value as QueryValue};
use query::promql::ast::Expr;

use crate::template::{QueryContext, RuleTemplates};

/// Nanoseconds since the Unix epoch (Prometheus keeps rule times as Go
/// `time.Time`, with nanosecond precision).
pub type Nanos = i64;

/// How long a resolved alert is kept (and re-sent).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

pub const ALERT_METRIC_NAME: &str = "ALERTS";
pub const ALERT_FOR_STATE_METRIC_NAME: &str = "ALERTS_FOR_STATE";
pub const ALERT_NAME_LABEL: &str = "alertname";
pub const ALERT_STATE_LABEL: &str = "alertstate";

/// Milliseconds of a nanosecond time (Prometheus's `timestamp.FromTime`).
pub fn ns_to_ms(ns: Nanos) -> i64 {
    ns.div_euclid(1_000_000)
}

pub fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A nanosecond time as a UTC date.
pub fn ns_to_datetime(ns: Nanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// The state of an alert instance, ordered as Prometheus orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Unknown,
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Unknown => "unknown",
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One instance of an alerting rule (one label set).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// The expression's value at the last evaluation.
    pub value: f64,
    pub active_at: Nanos,
    pub fired_at: Option<Nanos>,
    pub resolved_at: Option<Nanos>,
    pub last_sent_at: Option<Nanos>,
    pub valid_until: Option<Nanos>,
    pub keep_firing_since: Option<Nanos>,
}

impl Alert {
    /// Prometheus's `needsSending`.
    fn needs_sending(&self, ts: Nanos, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        last.saturating_add(duration_ns(resend_delay)) < ts
    }
}

/// `ok`, `err` or `unknown` (not evaluated yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Good,
    Bad,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

/// What the API shows about a rule's last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    pub health: Health,
    pub last_error: Option<String>,
    pub evaluation_time: Duration,
    /// Wall-clock start of the last evaluation.
    pub last_evaluation: Option<DateTime<Utc>>,
}

impl Default for RuleStatus {
    fn default() -> Self {
        RuleStatus {
            health: Health::Unknown,
            last_error: None,
            evaluation_time: Duration::ZERO,
            last_evaluation: None,
        }
    }
}

/// A recording rule.
#[derive(Debug)]
pub struct RecordingRule {
    pub name: String,
    pub expr: Expr,
    /// Group labels overridden by rule labels.
    pub labels: Labels,
}

/// An alerting rule and its instances.
#[derive(Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: Expr,
    pub hold: Duration,
    pub keep_firing_for: Duration,
    /// Label templates (group labels overridden by rule labels).
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub(crate) restored: AtomicBool,
    pub(crate) active: Mutex<HashMap<Labels, Alert>>,
}

#[derive(Debug)]
pub enum RuleKind {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

/// A rule of a group with its evaluation status.
#[derive(Debug)]
pub struct Rule {
    pub kind: RuleKind,
    /// The expression as Prometheus prints it (`Query().String()`).
    pub query: String,
    pub(crate) status: Mutex<RuleStatus>,
}

/// What one evaluation needs from the manager.
pub struct EvalEnv<'a> {
    pub db: &'a std::sync::Arc<engine::Db>,
    pub query_options: &'a QueryOptions,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
}

/// Why a rule evaluation failed (shown as the rule's `lastError`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("{0}")]
    Query(String),
    #[error("rule result is not a vector or scalar: {0}")]
    NotAVector(&'static str),
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateRecordingLabelSet,
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateAlertLabelSet,
    #[error("exceeded limit of {limit} with {count} series")]
    SeriesLimit { limit: i64, count: usize },
    #[error("exceeded limit of {limit} with {count} alerts")]
    AlertLimit { limit: i64, count: usize },
    #[error("{0}")]
    Append(String),
}

/// Sets (or, for an empty value, deletes) one label: `labels.Builder.Set`.
fn set_label(v: &mut Vec<Label>, name: &str, value: &str) {
    match v.binary_search_by(|l| l.name.as_str().cmp(name)) {
        Ok(i) if value.is_empty() => {
            v.remove(i);
        }
        Ok(i) => v[i].value = value.into(),
        Err(_) if value.is_empty() => {}
        Err(i) => v.insert(i, Label::new(name, value)),
    }
}

fn build(v: Vec<Label>) -> Labels {
    Labels::from_sorted(v)
}

/// Runs the rule's query at `t_ms` (Prometheus's `EngineQueryFunc`: a
/// scalar becomes one sample without labels).
pub(crate) fn run_query(
    env: &EvalEnv<'_>,
    expr: &Expr,
    t_ms: i64,
) -> Result<Vec<(Labels, f64)>, RuleError> {
    let out = query::eval::instant_query(env.db, expr, t_ms, env.query_options)
        .map_err(|e| RuleError::Query(e.to_string()))?;
    match out.value {
        QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        QueryValue::Scalar(_, v) => Ok(vec![(Labels::default(), v)]),
        other => Err(RuleError::NotAVector(other.type_name())),
    }
}

impl Rule {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording(r) => &r.name,
            RuleKind::Alerting(r) => &r.name,
        }
    }

    /// The rule's labels (templates for alerting rules).
    pub fn labels(&self) -> &Labels {
        match &self.kind {
            RuleKind::Recording(r) => &r.labels,
            RuleKind::Alerting(r) => &r.labels,
        }
    }

    pub fn status(&self) -> RuleStatus {
        self.status.lock().clone()
    }

    pub fn as_alerting(&self) -> Option<&AlertingRule> {
        match &self.kind {
            RuleKind::Alerting(a) => Some(a),
            RuleKind::Recording(_) => None,
        }
    }

    /// Identity used to carry state across reloads: name and labels
    /// (Prometheus's `nameAndLabels`).
    pub(crate) fn identity(&self) -> (String, Labels) {
        (self.name().to_string(), self.labels().clone())
    }

    /// Equality of definitions (Prometheus compares the rules' YAML).
    pub(crate) fn same_definition(&self, other: &Rule) -> bool {
        if self.query != other.query {
            return false;
        }
        match (&self.kind, &other.kind) {
            (RuleKind::Recording(a), RuleKind::Recording(b)) => {
                a.name == b.name && a.labels == b.labels
            }
            (RuleKind::Alerting(a), RuleKind::Alerting(b)) => {
                a.name == b.name
                    && a.hold == b.hold
                    && a.keep_firing_for == b.keep_firing_for
                    && a.labels == b.labels
                    && a.annotations == b.annotations
            }
            _ => false,
        }
    }

    /// Evaluates the rule at `ts` (queries at `ts - query_offset`) and
    /// returns the samples to write at that time.
    pub(crate) fn eval(
        &self,
        env: &EvalEnv<'_>,
        ts: Nanos,
        query_offset: Duration,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        let qt = ts - duration_ns(query_offset);
        match &self.kind {
            RuleKind::Recording(r) => r.eval(env, ns_to_ms(qt), limit),
            RuleKind::Alerting(r) => r.eval(env, ts, qt, limit),
        }
    }
}

impl RecordingRule {
    fn eval(
        &self,
        env: &EvalEnv<'_>,
        t_ms: i64,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        let res = run_query(env, &self.expr, t_ms)?;
        let mut out = Vec::with_capacity(res.len());
        let mut seen = HashSet::with_capacity(res.len());
        for (labels, v) in res {
            let mut l: Vec<Label> = labels.iter().cloned().collect();
            set_label(&mut l, METRIC_NAME, &self.name);
            for rl in self.labels.iter() {
                set_label(&mut l, &rl.name, &rl.value);
            }
            let labels = build(l);
            if !seen.insert(labels.clone()) {
                return Err(RuleError::DuplicateRecordingLabelSet);
            }
            out.push((labels, v));
        }
        if limit > 0 && out.len() as i64 > limit {
            return Err(RuleError::SeriesLimit {
                limit,
                count: out.len(),
            });
        }
        Ok(out)
    }
}

impl AlertingRule {
    /// A new rule; `restored` false makes it wait for `for`-state
    /// restoration before it writes `ALERTS` series.
    pub fn new(
        name: String,
        expr: Expr,
        hold: Duration,
        keep_firing_for: Duration,
        labels: Labels,
        annotations: BTreeMap<String, String>,
        restored: bool,
    ) -> AlertingRule {
        AlertingRule {
            name,
            expr,
            hold,
            keep_firing_for,
            labels,
            annotations,
            restored: AtomicBool::new(restored),
            active: Mutex::new(HashMap::new()),
        }
    }

    pub fn restored(&self) -> bool {
        self.restored.load(Ordering::Acquire)
    }

    /// Copies of all instances (including resolved ones still retained).
    /// Every instance's state, by label set.
    pub fn states(&self) -> HashMap<Labels, AlertState> {
        self.active
            .lock()
            .iter()
            .map(|(k, a)| (k.clone(), a.state))
            .collect()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.active.lock().values().cloned().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Pending and firing instances (what `/api/v1/alerts` shows).
    pub fn active_alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .active
            .lock()
            .values()
            .filter(|a| a.resolved_at.is_none())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// The rule's state: the highest of its instances'; `unknown` before
    /// the first evaluation (the caller knows that).
    pub fn state(&self) -> AlertState {
        self.active
            .lock()
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
            .max(AlertState::Inactive)
    }

    fn eval(
        &self,
        env: &EvalEnv<'_>,
        ts: Nanos,
        qt: Nanos,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        let res = run_query(env, &self.expr, ns_to_ms(qt))?;
        let mut fresh: HashMap<Labels, Alert> = HashMap::with_capacity(res.len());
        // Most alerting rules return nothing: their templates are parsed only when needed.
        if !res.is_empty() {
            let ctx = QueryContext {
                db: env.db.clone(),
                time_ms: ns_to_ms(ts),
                options: env.query_options.clone(),
            };
            // Label templates first, then annotations, in name order.
            let texts: Vec<&str> = self
                .labels
                .iter()
                .map(|l| l.value.as_str())
                .chain(self.annotations.values().map(String::as_str))
                .collect();
            let templates = RuleTemplates::new(
                &self.name,
                &texts,
                env.external_labels,
                env.external_url,
                Some(ctx),
            );
            let n_labels = self.labels.len();
            for (labels, value) in res {
                let data = templates.data(&labels, value);
                let mut l: Vec<Label> = labels
                    .iter()
                    .filter(|l| l.name != METRIC_NAME)
                    .cloned()
                    .collect();
                for (i, rl) in self.labels.iter().enumerate() {
                    set_label(&mut l, &rl.name, &templates.expand_or_error(i, &data));
                }
                set_label(&mut l, ALERT_NAME_LABEL, &self.name);
                let annotations = self
                    .annotations
                    .keys()
                    .enumerate()
                    .map(|(i, k)| (k.clone(), templates.expand_or_error(n_labels + i, &data)))
                    .collect();
                let labels = build(l);
                if fresh.contains_key(&labels) {
                    return Err(RuleError::DuplicateAlertLabelSet);
                }
                fresh.insert(
                    labels.clone(),
                    Alert {
                        state: AlertState::Pending,
                        labels,
                        annotations,
                        value,
                        active_at: ts,
                        fired_at: None,
                        resolved_at: None,
                        last_sent_at: None,
                        valid_until: None,
                        keep_firing_since: None,
                    },
                );
            }
        }

        let mut active = self.active.lock();
        let present: HashSet<Labels> = fresh.keys().cloned().collect();
        for (key, a) in fresh {
            match active.get_mut(&key) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    active.insert(key, a);
                }
            }
        }

        let restored = self.restored();
        let hold = duration_ns(self.hold);
        let keep_for = duration_ns(self.keep_firing_for);
        let retention = duration_ns(RESOLVED_RETENTION);
        let mut out = Vec::new();
        let mut num_active = 0usize;
        let mut delete = Vec::new();
        for (key, a) in active.iter_mut() {
            if !present.contains(key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    if ts - since < keep_for {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || a.resolved_at.is_some_and(|r| ts - r > retention)
                {
                    delete.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if a.state == AlertState::Firing && ts - a.active_at < hold {
                a.state = AlertState::Pending;
                a.fired_at = None;
                a.last_sent_at = None;
                a.keep_firing_since = None;
            }
            if restored {
                out.push((self.alerts_series(a), 1.0));
                out.push((
                    self.for_state_series(Some(a)),
                    a.active_at.div_euclid(1_000_000_000) as f64,
                ));
            }
        }
        for key in delete {
            active.remove(&key);
        }
        if limit > 0 && num_active as i64 > limit {
            active.clear();
            return Err(RuleError::AlertLimit {
                limit,
                count: num_active,
            });
        }
        Ok(out)
    }

    /// `ALERTS{alertname, alertstate, <labels>}`.
    fn alerts_series(&self, a: &Alert) -> Labels {
        let mut l: Vec<Label> = self.labels.iter().cloned().collect();
        for al in a.labels.iter() {
            set_label(&mut l, &al.name, &al.value);
        }
        set_label(&mut l, METRIC_NAME, ALERT_METRIC_NAME);
        set_label(&mut l, ALERT_NAME_LABEL, &self.name);
        set_label(&mut l, ALERT_STATE_LABEL, a.state.as_str());
        build(l)
    }

    /// `ALERTS_FOR_STATE{alertname, <labels>}`; without an alert, the
    /// labels every instance's series shares.
    pub(crate) fn for_state_series(&self, a: Option<&Alert>) -> Labels {
        let mut l: Vec<Label> = self.labels.iter().cloned().collect();
        if let Some(a) = a {
            for al in a.labels.iter() {
                set_label(&mut l, &al.name, &al.value);
            }
        }
        set_label(&mut l, METRIC_NAME, ALERT_FOR_STATE_METRIC_NAME);
        set_label(&mut l, ALERT_NAME_LABEL, &self.name);
        build(l)
    }

    /// Marks instances as sent at `ts` and returns those to send
    /// (Prometheus's `sendAlerts`).
    pub(crate) fn alerts_to_send(
        &self,
        ts: Nanos,
        resend_delay: Duration,
        interval: Duration,
    ) -> Vec<Alert> {
        let delta = duration_ns(interval.max(resend_delay));
        let mut out = Vec::new();
        for a in self.active.lock().values_mut() {
            if a.needs_sending(ts, resend_delay) {
                a.last_sent_at = Some(ts);
                a.valid_until = Some(ts.saturating_add(delta.saturating_mul(4)));
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}
