//! A rule group: its rules evaluated in order at one timestamp, the
//! samples written back with stale markers for series that disappeared,
//! the evaluation schedule (Prometheus's `EvalTimestamp`), `for`-state
//! restoration from `ALERTS_FOR_STATE`, and the state carried over a reload.
//!
//! Evaluation is synchronous and takes its timestamp as an argument, so
//! the manager's timers and a unit-test runner drive the same code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use engine::{AppendError, Labels, MatchOp, Matcher, STALE_NAN, Sample, SeriesSamples, WriteBatch};
use parking_lot::Mutex;
use query::eval::QueryOptions;

use crate::metrics::{RuleMetrics, group_label};
use crate::notify::{AlertSink, StateChange, StateObserver, to_outgoing};
use crate::rule::{AlertState, EvalEnv, Nanos, Rule, RuleError, RuleKind, duration_ns, ns_to_ms};

/// Settings shared by all groups of a manager.
#[derive(Clone)]
pub struct GroupContext {
    pub db: Arc<engine::Db>,
    pub query_options: QueryOptions,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// Firing alerts are re-sent at most this often (`--rules.alert.resend-delay`).
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period: Duration,
    pub sink: Option<Arc<dyn AlertSink>>,
    /// Told about alert state changes (alert history).
    pub observer: Option<Arc<dyn StateObserver>>,
    pub metrics: RuleMetrics,
}

/// `<file>;<name>`: groups are unique by file and name.
pub fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

/// A series the engine refused: its index in the batch, labels and why.
type Refused = (usize, (Labels, String));

/// State only the evaluating thread touches.
#[derive(Default)]
struct EvalState {
    /// Series each rule wrote at its last successful evaluation.
    series_prev: Vec<HashSet<Labels>>,
    /// Series of removed rules still to be marked stale.
    stale_series: Vec<Labels>,
}

/// The group's last iteration.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupStats {
    pub evaluation_time: Duration,
    /// Wall-clock start of the last iteration.
    pub last_evaluation: Option<DateTime<Utc>>,
    /// Scheduled timestamp of the last iteration.
    pub last_eval_timestamp: Option<Nanos>,
}

/// A loaded rule group.
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub limit: i64,
    /// `None`: the manager's default offset applies.
    pub query_offset: Option<Duration>,
    pub(crate) default_query_offset: Duration,
    pub rules: Vec<Rule>,
    pub(crate) ctx: Arc<GroupContext>,
    state: Mutex<EvalState>,
    stats: Mutex<GroupStats>,
    /// Rules wait for restoration before writing `ALERTS` series.
    pub(crate) should_restore: std::sync::atomic::AtomicBool,
}

impl Group {
    #[allow(clippy::too_many_arguments)] // reason: mirrors Prometheus's GroupOptions one to one
    pub fn new(
        name: String,
        file: String,
        interval: Duration,
        limit: i64,
        query_offset: Option<Duration>,
        default_query_offset: Duration,
        rules: Vec<Rule>,
        should_restore: bool,
        ctx: Arc<GroupContext>,
    ) -> Group {
        let n = rules.len();
        let g = Group {
            name,
            file,
            interval,
            limit,
            query_offset,
            default_query_offset,
            rules,
            ctx,
            state: Mutex::new(EvalState {
                series_prev: vec![HashSet::new(); n],
                stale_series: Vec::new(),
            }),
            stats: Mutex::new(GroupStats::default()),
            should_restore: std::sync::atomic::AtomicBool::new(should_restore),
        };
        let l = group_label(&g.key());
        g.ctx
            .metrics
            .group_interval
            .get_or_create(&l)
            .set(interval.as_secs_f64());
        g.ctx.metrics.group_rules.get_or_create(&l).set(n as f64);
        g
    }

    pub fn key(&self) -> String {
        group_key(&self.file, &self.name)
    }

    /// The offset queries run behind the evaluation time.
    pub fn effective_query_offset(&self) -> Duration {
        self.query_offset.unwrap_or(self.default_query_offset)
    }

    pub fn stats(&self) -> GroupStats {
        *self.stats.lock()
    }

    pub fn should_restore(&self) -> bool {
        self.should_restore.load(Ordering::Acquire)
    }

    /// Prometheus's group hash: `labels.Hash` of `{file=..., name=...}`.
    fn hash(&self) -> u64 {
        let mut b = Vec::with_capacity(self.file.len() + self.name.len() + 12);
        for (k, v) in [("file", &self.file), ("name", &self.name)] {
            b.extend_from_slice(k.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        xxhash_rust::xxh64::xxh64(&b, 0)
    }

    /// The latest evaluation slot at or before `start` (ns): slots are
    /// `k * interval + offset` with the offset from the group's hash.
    pub fn eval_timestamp(&self, start: Nanos) -> Nanos {
        let interval = duration_ns(self.interval).max(1);
        let offset = (self.hash() % interval as u64) as i64;
        let adj = start - offset;
        let base = adj - adj.rem_euclid(interval);
        base + offset
    }

    /// One iteration at `ts`: evaluates every rule, writes the results,
    /// records duration and time. Blocking (queries and appends).
    pub fn eval_iteration(&self, ts: Nanos) {
        let key = self.key();
        let l = group_label(&key);
        let m = &self.ctx.metrics;
        m.iterations_scheduled.get_or_create(&l).inc();
        let start = Instant::now();
        let wall = Utc::now();
        self.eval(ts);
        let took = start.elapsed();
        m.group_duration.observe(took.as_secs_f64());
        let rule_sum: f64 = self
            .rules
            .iter()
            .map(|r| r.status.lock().evaluation_time.as_secs_f64())
            .sum();
        m.group_last_rule_duration_sum
            .get_or_create(&l)
            .set(rule_sum);
        m.group_last_duration
            .get_or_create(&l)
            .set(took.as_secs_f64());
        m.group_last_eval_time
            .get_or_create(&l)
            .set(ts as f64 / 1e9);
        let mut s = self.stats.lock();
        s.evaluation_time = took;
        s.last_evaluation = Some(wall);
        s.last_eval_timestamp = Some(ts);
    }

    /// Evaluates all rules sequentially at `ts` (Prometheus's `Group.Eval`).
    pub fn eval(&self, ts: Nanos) {
        let ctx = &self.ctx;
        let env = EvalEnv {
            db: &ctx.db,
            query_options: &ctx.query_options,
            external_labels: &ctx.external_labels,
            external_url: &ctx.external_url,
        };
        let offset = self.effective_query_offset();
        let t_ms = ns_to_ms(ts - duration_ns(offset));
        let l = group_label(&self.key());
        let mut state = self.state.lock();
        let mut samples_total = 0usize;
        for (i, rule) in self.rules.iter().enumerate() {
            let start = Instant::now();
            let wall = Utc::now();
            ctx.metrics.evals.get_or_create(&l).inc();
            let before = match (&ctx.observer, rule.as_alerting()) {
                (Some(_), Some(ar)) => Some(ar.states()),
                _ => None,
            };
            let result = rule.eval(&env, ts, offset, self.limit);
            if let (Some(observer), Some(before), Some(ar)) =
                (&ctx.observer, before, rule.as_alerting())
            {
                let changes = state_changes(&before, &ar.alerts(), ts);
                if !changes.is_empty() {
                    observer.state_changes(changes);
                }
            }
            let outcome = match result {
                Err(e) => Err(e),
                Ok(vector) => {
                    samples_total += vector.len();
                    if let RuleKind::Alerting(ar) = &rule.kind {
                        // Without a sink the bookkeeping still advances, so
                        // the API shows the same state as with one.
                        let alerts = ar.alerts_to_send(ts, ctx.resend_delay, self.interval);
                        if let Some(sink) = &ctx.sink
                            && !alerts.is_empty()
                        {
                            sink.send(to_outgoing(
                                &alerts,
                                &rule.query,
                                &ctx.external_labels,
                                &ctx.external_url,
                            ));
                        }
                    }
                    let prev = state.series_prev.get(i).cloned().unwrap_or_default();
                    match self.write(vector, &prev, t_ms) {
                        Ok(returned) => {
                            if let Some(slot) = state.series_prev.get_mut(i) {
                                *slot = returned;
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            let took = start.elapsed();
            ctx.metrics.eval_duration.observe(took.as_secs_f64());
            let mut st = rule.status.lock();
            st.evaluation_time = took;
            st.last_evaluation = Some(wall);
            match outcome {
                Ok(()) => {
                    st.health = crate::rule::Health::Good;
                    st.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, rule = %rule.name(), error = %e, "evaluating rule failed");
                    st.health = crate::rule::Health::Bad;
                    st.last_error = Some(e.to_string());
                    ctx.metrics.eval_failures.get_or_create(&l).inc();
                }
            }
        }
        ctx.metrics
            .group_samples
            .get_or_create(&l)
            .set(samples_total as f64);
        let stale = std::mem::take(&mut state.stale_series);
        if !stale.is_empty() && self.write_stale(&stale, t_ms).is_err() {
            state.stale_series = stale;
        }
    }

    /// Writes a rule's samples and stale markers for the series it wrote
    /// last time but not now. Returns the series written.
    fn write(
        &self,
        vector: Vec<(Labels, f64)>,
        prev: &HashSet<Labels>,
        t_ms: i64,
    ) -> Result<HashSet<Labels>, RuleError> {
        let mut returned: HashSet<Labels> = HashSet::with_capacity(vector.len());
        let mut batch = WriteBatch::default();
        for (labels, v) in vector {
            returned.insert(labels.clone());
            batch
                .series
                .push(SeriesSamples::new(labels, vec![Sample::new(t_ms, v)]));
        }
        let results = batch.series.len();
        for labels in prev {
            if !returned.contains(labels) {
                batch.series.push(SeriesSamples::new(
                    labels.clone(),
                    vec![Sample::new(t_ms, f64::from_bits(STALE_NAN))],
                ));
            }
        }
        let rejected = self.append(&mut batch)?;
        let mut first_err = None;
        for (idx, e) in rejected {
            // Samples of the result count as the rule's error; refused stale
            // markers are expected when another rule writes the series.
            if idx < results {
                returned.remove(&e.0);
                first_err.get_or_insert(e.1);
            }
        }
        match first_err {
            Some(e) => Err(RuleError::Append(e)),
            None => Ok(returned),
        }
    }

    /// Appends `batch`, taking out series the engine refuses (duplicate
    /// timestamp with another value, too old, too far ahead) and retrying,
    /// as Prometheus's appender drops such samples one by one. Returns the
    /// refused series (index in the original batch, labels, error).
    fn append(&self, batch: &mut WriteBatch) -> Result<Vec<Refused>, RuleError> {
        let mut index: Vec<usize> = (0..batch.series.len()).collect();
        let mut rejected = Vec::new();
        while !batch.series.is_empty() {
            match self.ctx.db.append(batch) {
                Ok(ticket) => {
                    // Rule output is as durable as the WAL's mode makes it;
                    // the evaluation does not wait for the fsync.
                    drop(ticket);
                    break;
                }
                Err(e) => {
                    let bad = match &e {
                        AppendError::Duplicate { labels, .. }
                        | AppendError::TooFarInFuture { labels, .. }
                        | AppendError::TooOld { labels, .. }
                        | AppendError::NoMetricName { labels }
                        | AppendError::StartTimestamps { labels, .. } => labels.clone(),
                        AppendError::Internal(_) | AppendError::StaleSeriesRef { .. } => {
                            return Err(RuleError::Append(e.to_string()));
                        }
                    };
                    let Some(pos) = batch.series.iter().position(|s| s.labels == bad) else {
                        return Err(RuleError::Append(e.to_string()));
                    };
                    batch.series.remove(pos);
                    let orig = index.remove(pos);
                    rejected.push((orig, (bad, e.to_string())));
                }
            }
        }
        Ok(rejected)
    }

    fn write_stale(&self, series: &[Labels], t_ms: i64) -> Result<(), RuleError> {
        let mut batch = WriteBatch::default();
        for labels in series {
            batch.series.push(SeriesSamples::new(
                labels.clone(),
                vec![Sample::new(t_ms, f64::from_bits(STALE_NAN))],
            ));
        }
        self.append(&mut batch).map(|_| ())
    }

    /// Marks every series the group wrote last as stale at `ts` (a removed
    /// group, two intervals after it stopped).
    pub fn mark_all_stale(&self, ts: Nanos) {
        let mut state = self.state.lock();
        let mut series: Vec<Labels> = std::mem::take(&mut state.stale_series);
        for s in state.series_prev.iter_mut() {
            series.extend(s.drain());
        }
        drop(state);
        if series.is_empty() {
            return;
        }
        let t_ms = ns_to_ms(ts - duration_ns(self.effective_query_offset()));
        if let Err(e) = self.write_stale(&series, t_ms) {
            tracing::warn!(group = %self.name, error = %e, "writing stale markers for a removed group failed");
        }
    }

    /// Restores the `for` state of active alerts from `ALERTS_FOR_STATE`
    /// as of `now` (Prometheus's `RestoreForState`).
    pub fn restore_for_state(&self, now: Nanos) {
        let started = Instant::now();
        let ctx = &self.ctx;
        let maxt = ns_to_ms(now);
        let mint = ns_to_ms(now - duration_ns(ctx.outage_tolerance));
        let q = ctx.db.querier(mint, maxt);
        let grace = duration_ns(ctx.for_grace_period);
        for rule in &self.rules {
            let Some(ar) = rule.as_alerting() else {
                continue;
            };
            let hold = duration_ns(ar.hold);
            if ar.hold < ctx.for_grace_period {
                ar.restored.store(true, Ordering::Release);
                continue;
            }
            let mut matchers = Vec::new();
            for l in ar.for_state_series(None).iter() {
                if l.value.contains("{{") {
                    continue;
                }
                if let Ok(m) = Matcher::new(MatchOp::Equal, l.name.as_str(), l.value.as_str()) {
                    matchers.push(m);
                }
            }
            let series = match q.select(&matchers) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(alert = %ar.name, error = %e, "failed to restore 'for' state");
                    ar.restored.store(true, Ordering::Release);
                    continue;
                }
            };
            let mut by_labels: HashMap<Labels, &engine::SeriesEntry> = HashMap::new();
            for s in &series {
                let l = Labels::from_sorted(
                    s.labels
                        .iter()
                        .filter(|l| l.name != engine::METRIC_NAME)
                        .cloned()
                        .collect(),
                );
                by_labels.insert(l, s);
            }
            if by_labels.is_empty() {
                ar.restored.store(true, Ordering::Release);
                continue;
            }
            let mut buf = Vec::new();
            for a in ar.active.lock().values_mut() {
                let Some(entry) = by_labels.get(&a.labels) else {
                    continue;
                };
                buf.clear();
                if let Err(e) = q.samples(entry, mint, maxt, &mut buf) {
                    tracing::error!(alert = %ar.name, error = %e, "failed to restore 'for' state");
                    continue;
                }
                let Some(last) = buf.last() else {
                    continue;
                };
                if engine::is_stale_nan(last.v) {
                    continue;
                }
                let down_at = last.t.div_euclid(1000).saturating_mul(1_000_000_000);
                let mut active_at = (last.v as i64).saturating_mul(1_000_000_000);
                let remaining = hold - (down_at - active_at);
                if remaining <= 0 {
                    // It was firing; it fires again at the next evaluation.
                } else if remaining < grace {
                    active_at = now + grace - hold;
                } else {
                    active_at += now - down_at;
                }
                a.active_at = active_at;
            }
            ar.restored.store(true, Ordering::Release);
        }
        ctx.metrics
            .group_last_restore_duration
            .get_or_create(&group_label(&self.key()))
            .set(started.elapsed().as_secs_f64());
        self.should_restore.store(false, Ordering::Release);
    }

    /// Prometheus's `Group.Equals`: same identity, settings and rules.
    pub fn equals(&self, other: &Group) -> bool {
        self.name == other.name
            && self.file == other.file
            && self.interval == other.interval
            && self.limit == other.limit
            && self.query_offset == other.query_offset
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| a.same_definition(b))
    }

    /// Takes over the state of `from` (the same group before a reload):
    /// rules matched by name and labels keep their written series and
    /// alert instances; series of rules that are gone are marked stale at
    /// the next evaluation.
    pub fn copy_state(&self, from: &Group) {
        *self.stats.lock() = from.stats();
        let mut by_identity: HashMap<(String, Labels), Vec<usize>> = HashMap::new();
        for (i, r) in from.rules.iter().enumerate() {
            by_identity.entry(r.identity()).or_default().push(i);
        }
        let from_state = from.state.lock();
        let mut state = self.state.lock();
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(list) = by_identity.get_mut(&rule.identity()) else {
                continue;
            };
            if list.is_empty() {
                continue;
            }
            let fi = list.remove(0);
            if let (Some(dst), Some(src)) =
                (state.series_prev.get_mut(i), from_state.series_prev.get(fi))
            {
                dst.clone_from(src);
            }
            if let (Some(new), Some(old)) = (
                rule.as_alerting(),
                from.rules.get(fi).and_then(|r| r.as_alerting()),
            ) {
                let old_active = old.active.lock().clone();
                new.active.lock().extend(old_active);
            }
        }
        state.stale_series = from_state.stale_series.clone();
        for list in by_identity.values() {
            for &fi in list {
                if let Some(s) = from_state.series_prev.get(fi) {
                    state.stale_series.extend(s.iter().cloned());
                }
            }
        }
    }

    /// Forgets the group's metric series (the group was removed).
    pub(crate) fn remove_metrics(&self) {
        self.ctx.metrics.remove_group(&self.key());
    }
}

/// The instances whose state differs between `before` (label set → state)
/// and `after`; an instance gone from `after` became inactive.
fn state_changes(
    before: &HashMap<Labels, AlertState>,
    after: &[crate::rule::Alert],
    ts: Nanos,
) -> Vec<StateChange> {
    let time = crate::rule::ns_to_datetime(ts);
    let map = |l: &Labels| -> BTreeMap<String, String> {
        l.iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect()
    };
    let mut out = Vec::new();
    let mut seen = HashSet::with_capacity(after.len());
    for a in after {
        seen.insert(&a.labels);
        let from = before
            .get(&a.labels)
            .copied()
            .unwrap_or(AlertState::Inactive);
        if from != a.state {
            out.push(StateChange {
                time,
                labels: map(&a.labels),
                from,
                to: a.state,
                value: (a.state != AlertState::Inactive).then_some(a.value),
            });
        }
    }
    for (labels, &from) in before {
        if from != AlertState::Inactive && !seen.contains(labels) {
            out.push(StateChange {
                time,
                labels: map(labels),
                from,
                to: AlertState::Inactive,
                value: None,
            });
        }
    }
    out
}
