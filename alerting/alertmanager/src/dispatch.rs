//! The dispatcher: the alert store, routing into aggregation groups, the
//! groups' timers (C.2) and the notification pipeline run at every flush:
//! time-interval mute → inhibition → silences → dedup against the
//! notification log → one task per receiver → log.
//!
//! Timers (tokio time, so tests run on paused time): a new group waits
//! `group_wait` (no wait when its first alert started more than
//! `group_wait` ago), then flushes every `group_interval`. A flush notifies
//! a receiver when the dedup stage says so (first notification, new firing
//! alerts, all resolved, new resolved alerts with `send_resolved`, or the
//! repeat interval — `repeat_intervals[repeats]` — elapsed). When a silence
//! ends or is deleted while alerts it held back still fire, their groups
//! flush at once and those alerts count as new.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::{Clock, add, sub};
use crate::config::{Config, Route, RouteOpts};
use crate::history::{EventKind, History, HistoryEvent};
use crate::inhibit::InhibitIndex;
use crate::matchers::labelset_string;
use crate::metrics::{Metrics, ReceiverLabel};
use crate::nflog::{Entry, NotificationLog};
use crate::receivers::Notify;
use crate::silence::{DEFAULT_RETENTION, Silences};
use crate::timeinterval::any_contains;
use crate::types::{Alert, Fingerprint, LabelSet, Notification, NotificationReason};

/// A loaded configuration with its receivers built.
pub(crate) struct Runtime {
    pub config: Config,
    pub route: Route,
    pub receivers: HashMap<String, Arc<dyn Notify>>,
    /// Stops this configuration's aggregation groups (on reload).
    pub generation: watch::Sender<bool>,
}

/// One aggregation group: a route and the values of its `group_by` labels.
pub(crate) struct Group {
    pub key: String,
    pub labels: LabelSet,
    pub opts: RouteOpts,
    pub alerts: Mutex<BTreeMap<Fingerprint, Alert>>,
    wake: tokio::sync::Notify,
    /// Alerts a silence held back at the last flush.
    silenced: Mutex<HashSet<Fingerprint>>,
    /// Alerts an inhibition held back at the last flush.
    inhibited: Mutex<HashSet<Fingerprint>>,
    /// Alerts released from a silence since the last flush.
    unsilenced: Mutex<HashSet<Fingerprint>>,
}

pub(crate) type GroupId = (usize, Fingerprint);

pub(crate) struct Inner {
    pub clock: Clock,
    pub external_url: String,
    pub runtime: RwLock<Arc<Runtime>>,
    pub alerts: Mutex<HashMap<Fingerprint, Alert>>,
    alerts_version: AtomicU64,
    pub groups: Mutex<HashMap<GroupId, Arc<Group>>>,
    pub silences: Silences,
    pub nflog: NotificationLog,
    pub history: Arc<History>,
    pub history_retention: Duration,
    pub metrics: Metrics,
    pub shutdown: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    inhibit_cache: Mutex<Option<(u64, Arc<InhibitIndex>)>>,
    pub started: DateTime<Utc>,
}

/// An alert's state as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertState {
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
    pub muted_by: Vec<String>,
}

impl AlertState {
    pub fn suppressed(&self) -> bool {
        !(self.silenced_by.is_empty() && self.inhibited_by.is_empty() && self.muted_by.is_empty())
    }
}

/// Why an alert could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlert {
    #[error("at least one label pair required")]
    NoLabels,
    #[error("invalid label name {0:?}")]
    LabelName(String),
    #[error("invalid annotation name {0:?}")]
    AnnotationName(String),
    #[error("start time must be before end time")]
    EndBeforeStart,
}

pub(crate) fn validate_alert(a: &Alert) -> Result<(), InvalidAlert> {
    if a.labels.is_empty() {
        return Err(InvalidAlert::NoLabels);
    }
    for k in a.labels.keys() {
        if !crate::matchers::valid_label_name(k) {
            return Err(InvalidAlert::LabelName(k.clone()));
        }
    }
    for k in a.annotations.keys() {
        if !crate::matchers::valid_label_name(k) {
            return Err(InvalidAlert::AnnotationName(k.clone()));
        }
    }
    if a.ends_at.is_some_and(|e| e < a.starts_at) {
        return Err(InvalidAlert::EndBeforeStart);
    }
    Ok(())
}

/// Alertmanager's `Alert.Merge`: the younger alert wins, but the earliest
/// start is kept, and a later explicit end wins over a timeout end.
fn merge(old: &Alert, new: &Alert, now: DateTime<Utc>) -> Alert {
    let (a, o) = if new.updated_at < old.updated_at {
        (new, old)
    } else {
        (old, new)
    };
    let mut res = o.clone();
    if a.starts_at < o.starts_at {
        res.starts_at = a.starts_at;
    }
    if o.resolved_at(now) {
        if a.resolved_at(now) && a.ends_at > o.ends_at {
            res.ends_at = a.ends_at;
        }
    } else if a.ends_at > o.ends_at && !a.timeout {
        res.ends_at = a.ends_at;
    }
    res
}

impl Inner {
    #[allow(clippy::too_many_arguments)] // reason: one call site, each argument a distinct part
    pub fn new(
        clock: Clock,
        external_url: String,
        runtime: Runtime,
        silences: Silences,
        nflog: NotificationLog,
        history: Arc<History>,
        history_retention: Duration,
        metrics: Metrics,
    ) -> Inner {
        let started = clock.now();
        Inner {
            clock,
            external_url,
            runtime: RwLock::new(Arc::new(runtime)),
            alerts: Mutex::new(HashMap::new()),
            alerts_version: AtomicU64::new(0),
            groups: Mutex::new(HashMap::new()),
            silences,
            nflog,
            history,
            history_retention,
            metrics,
            shutdown: watch::Sender::new(false),
            tasks: Mutex::new(JoinSet::new()),
            inhibit_cache: Mutex::new(None),
            started,
        }
    }

    pub fn tasks(&self) -> parking_lot::MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock()
    }

    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().spawn(fut);
    }

    /// Stores alerts (merging with known ones) and routes them. Invalid
    /// alerts are skipped and reported.
    pub fn put_alerts(self: &Arc<Self>, alerts: Vec<Alert>) -> Vec<(Alert, InvalidAlert)> {
        let now = self.clock.now();
        let rt = self.runtime.read().clone();
        let resolve_timeout = rt.config.global.resolve_timeout;
        let mut invalid = Vec::new();
        let mut accepted = Vec::with_capacity(alerts.len());
        {
            let mut store = self.alerts.lock();
            for mut a in alerts {
                a.labels.retain(|_, v| !v.is_empty());
                if let Err(e) = validate_alert(&a) {
                    self.metrics.alerts_invalid.inc();
                    invalid.push((a, e));
                    continue;
                }
                a.updated_at = now;
                if a.ends_at.is_none() {
                    a.ends_at = Some(add(now, resolve_timeout));
                    a.timeout = true;
                }
                let status = a.status_at(now).as_str();
                self.metrics
                    .alerts_received
                    .get_or_create(&crate::metrics::StatusLabel {
                        status: status.to_string(),
                    })
                    .inc();
                let fp = a.fingerprint();
                if let Some(old) = store.get(&fp) {
                    let (old_end, new_end) = (old.ends_at, a.ends_at);
                    let overlaps = (new_end > Some(old.starts_at) && new_end < old_end)
                        || (a.starts_at > old.starts_at && Some(a.starts_at) < old_end);
                    if overlaps {
                        a = merge(old, &a, now);
                    }
                }
                store.insert(fp, a.clone());
                accepted.push(a);
            }
        }
        self.alerts_version.fetch_add(1, Ordering::Relaxed);
        for a in &accepted {
            self.route_alert(&rt, a, now);
        }
        invalid
    }

    fn route_alert(self: &Arc<Self>, rt: &Arc<Runtime>, alert: &Alert, now: DateTime<Utc>) {
        for route in rt.route.matching(&alert.labels) {
            let labels = route.group_labels(&alert.labels);
            let id = (route.idx, Fingerprint::of(&labels));
            let mut groups = self.groups.lock();
            if let Some(g) = groups.get(&id) {
                g.alerts.lock().insert(alert.fingerprint(), alert.clone());
                continue;
            }
            let g = Arc::new(Group {
                key: format!("{}:{}", route.key, labelset_string(&labels)),
                labels,
                opts: route.opts.clone(),
                alerts: Mutex::new(BTreeMap::from([(alert.fingerprint(), alert.clone())])),
                wake: tokio::sync::Notify::new(),
                silenced: Mutex::new(HashSet::new()),
                inhibited: Mutex::new(HashSet::new()),
                unsilenced: Mutex::new(HashSet::new()),
            });
            groups.insert(id, g.clone());
            self.metrics.aggregation_groups.set(groups.len() as i64);
            drop(groups);
            let first_wait = if add(alert.starts_at, route.opts.group_wait) < now {
                Duration::ZERO
            } else {
                route.opts.group_wait
            };
            let inner = self.clone();
            let rt = rt.clone();
            self.spawn(async move { run_group(inner, rt, id, g, first_wait).await });
        }
    }

    /// Removes the group if it holds no alerts; true if removed.
    fn try_destroy(&self, id: GroupId, g: &Arc<Group>) -> bool {
        let mut groups = self.groups.lock();
        if !g.alerts.lock().is_empty() {
            return false;
        }
        if groups.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, g)) {
            groups.remove(&id);
        }
        self.metrics.aggregation_groups.set(groups.len() as i64);
        true
    }

    /// The inhibition index for `now`, rebuilt when alerts changed or a
    /// source alert resolved.
    pub fn inhibit_index(&self, rt: &Runtime, now: DateTime<Utc>) -> Arc<InhibitIndex> {
        let version = self.alerts_version.load(Ordering::Relaxed);
        let mut cache = self.inhibit_cache.lock();
        if let Some((v, idx)) = cache.as_ref()
            && *v == version
            && idx.valid_until.is_none_or(|t| now < t)
        {
            return idx.clone();
        }
        let store = self.alerts.lock();
        let idx = Arc::new(InhibitIndex::build(
            &rt.config.inhibit_rules,
            store.values(),
            now,
        ));
        *cache = Some((version, idx.clone()));
        idx
    }

    /// Names of the route's time intervals that mute it at `now`.
    pub fn muted_by(&self, rt: &Runtime, opts: &RouteOpts, now: DateTime<Utc>) -> Vec<String> {
        let intervals = &rt.config.time_intervals;
        let mut out: Vec<String> = opts
            .mute_time_intervals
            .iter()
            .filter(|n| intervals.get(*n).is_some_and(|i| any_contains(i, now)))
            .cloned()
            .collect();
        if !opts.active_time_intervals.is_empty()
            && !opts
                .active_time_intervals
                .iter()
                .any(|n| intervals.get(n).is_some_and(|i| any_contains(i, now)))
        {
            out.extend(opts.active_time_intervals.iter().cloned());
        }
        out
    }

    /// The API state of an alert at `now`.
    pub fn alert_state(
        &self,
        rt: &Runtime,
        idx: &InhibitIndex,
        a: &Alert,
        now: DateTime<Utc>,
    ) -> AlertState {
        let mut muted_by = Vec::new();
        for r in rt.route.matching(&a.labels) {
            for m in self.muted_by(rt, &r.opts, now) {
                if !muted_by.contains(&m) {
                    muted_by.push(m);
                }
            }
        }
        AlertState {
            silenced_by: self.silences.silenced_by(&a.labels, now),
            inhibited_by: idx
                .inhibited_by(&a.labels)
                .map(|f| vec![f.to_string()])
                .unwrap_or_default(),
            muted_by,
        }
    }

    /// Re-routes every stored alert into new groups of `rt` (after a
    /// reload); the old groups stop.
    pub fn install(self: &Arc<Self>, rt: Runtime) {
        let rt = Arc::new(rt);
        let old = std::mem::replace(&mut *self.runtime.write(), rt.clone());
        old.generation.send_replace(true);
        self.groups.lock().clear();
        *self.inhibit_cache.lock() = None;
        let now = self.clock.now();
        let alerts: Vec<Alert> = self.alerts.lock().values().cloned().collect();
        for a in &alerts {
            self.route_alert(&rt, a, now);
        }
    }

    /// Periodic housekeeping: drop resolved alerts from the store, GC
    /// silences, the notification log and history, refresh gauges.
    pub fn maintenance(&self) {
        let now = self.clock.now();
        {
            let mut store = self.alerts.lock();
            let before = store.len();
            store.retain(|_, a| !a.resolved_at(now));
            if store.len() != before {
                self.alerts_version.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Err(e) = self.silences.gc() {
            tracing::warn!(error = %e, "silences GC");
        }
        match self.nflog.gc(now) {
            Ok(n) => {
                self.metrics.nflog_gc.inc_by(n as u64);
            }
            Err(e) => tracing::warn!(error = %e, "notification log GC"),
        };
        if let Err(e) = self.history.retain(sub(now, self.history_retention)) {
            tracing::warn!(error = %e, "alert history retention");
        }
        self.update_gauges(now);
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
    }

    pub fn update_gauges(&self, now: DateTime<Utc>) {
        for (state, n) in self.silences.count_by_state(now) {
            Metrics::set_state(&self.metrics.silences, state.as_str(), n as i64);
        }
        self.metrics.nflog_entries.set(self.nflog.len() as i64);
        let rt = self.runtime.read().clone();
        let idx = self.inhibit_index(&rt, now);
        let alerts: Vec<Alert> = self.alerts.lock().values().cloned().collect();
        let (mut active, mut suppressed) = (0, 0);
        for a in alerts.iter().filter(|a| !a.resolved_at(now)) {
            if self.alert_state(&rt, &idx, a, now).suppressed() {
                suppressed += 1;
            } else {
                active += 1;
            }
        }
        Metrics::set_state(&self.metrics.alerts, "active", active);
        Metrics::set_state(&self.metrics.alerts, "suppressed", suppressed);
        Metrics::set_state(&self.metrics.alerts, "unprocessed", 0);
    }

    /// Called when silences changed or one started/ended: groups holding
    /// firing alerts that a silence held back and no longer does flush now.
    pub fn silences_changed(&self) {
        let now = self.clock.now();
        let groups: Vec<Arc<Group>> = self.groups.lock().values().cloned().collect();
        for g in groups {
            let held: Vec<Fingerprint> = g.silenced.lock().iter().copied().collect();
            if held.is_empty() {
                continue;
            }
            let alerts = g.alerts.lock();
            let released: Vec<Fingerprint> = held
                .into_iter()
                .filter(|fp| {
                    alerts.get(fp).is_some_and(|a| {
                        !a.resolved_at(now) && self.silences.silenced_by(&a.labels, now).is_empty()
                    })
                })
                .collect();
            drop(alerts);
            if !released.is_empty() {
                g.unsilenced.lock().extend(released);
                g.wake.notify_one();
            }
        }
    }

    /// Waits for silence changes and transitions (starts, ends) and calls
    /// [`Inner::silences_changed`].
    pub async fn watch_silences(self: Arc<Self>) {
        let mut changes = self.silences.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let now = self.clock.now();
            let next = self.silences.next_transition(now);
            let sleep = match next {
                Some(t) => tokio::time::sleep_until(self.clock.instant_at(t)),
                None => tokio::time::sleep(Duration::from_secs(3600)),
            };
            tokio::select! {
                _ = sleep => {}
                r = changes.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|v| *v) => return,
            }
            self.silences_changed();
            self.update_gauges(self.clock.now());
        }
    }
}

async fn run_group(
    inner: Arc<Inner>,
    rt: Arc<Runtime>,
    id: GroupId,
    g: Arc<Group>,
    first_wait: Duration,
) {
    let mut generation = rt.generation.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    if *generation.borrow() || *shutdown.borrow() {
        return;
    }
    let mut next = tokio::time::Instant::now() + first_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = g.wake.notified() => {}
            _ = generation.wait_for(|v| *v) => return,
            _ = shutdown.wait_for(|v| *v) => return,
        }
        next = tokio::time::Instant::now() + g.opts.group_interval;
        tokio::select! {
            _ = flush(&inner, &rt, &g) => {}
            _ = generation.wait_for(|v| *v) => return,
            _ = shutdown.wait_for(|v| *v) => return,
        }
        if inner.try_destroy(id, &g) {
            return;
        }
    }
}

/// The dedup stage (`notify/dedup_stage.go`), plus Silt's release from a
/// silence counting as new.
fn needs_update(
    entry: Option<&Entry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
    released: bool,
) -> Option<NotificationReason> {
    let Some(e) = entry else {
        return (!firing.is_empty()).then_some(NotificationReason::First);
    };
    if !e.is_firing_subset(firing) {
        return Some(if e.firing.is_empty() {
            NotificationReason::First
        } else {
            NotificationReason::NewAlertsAdded
        });
    }
    if firing.is_empty() {
        return (!e.firing.is_empty()).then_some(NotificationReason::AllAlertsResolved);
    }
    if send_resolved && !e.is_resolved_subset(resolved) {
        return Some(NotificationReason::SomeAlertsResolved);
    }
    if released {
        return Some(NotificationReason::NewAlertsAdded);
    }
    (e.timestamp < sub(now, repeat)).then_some(NotificationReason::RepeatIntervalElapsed)
}

/// A receiver's notifier, its last log entry and the dedup verdict.
type Decision = (Arc<dyn Notify>, Option<Entry>, Option<NotificationReason>);

struct Planned {
    receiver: String,
    notifier: Arc<dyn Notify>,
    reason: NotificationReason,
    prev: Option<Entry>,
}

/// One flush of a group; true if nothing failed (resolved alerts that were
/// part of it are then dropped from the group).
async fn flush(inner: &Arc<Inner>, rt: &Arc<Runtime>, g: &Arc<Group>) -> bool {
    let now = inner.clock.now();
    let snapshot: Vec<Alert> = g.alerts.lock().values().cloned().collect();
    if snapshot.is_empty() {
        return true;
    }
    let ok = pipeline(inner, rt, g, &snapshot, now).await;
    if ok {
        let mut alerts = g.alerts.lock();
        for a in snapshot.iter().filter(|a| a.resolved_at(now)) {
            let fp = a.fingerprint();
            if alerts
                .get(&fp)
                .is_some_and(|cur| cur.updated_at == a.updated_at)
            {
                alerts.remove(&fp);
            }
        }
    }
    ok
}

async fn pipeline(
    inner: &Arc<Inner>,
    rt: &Arc<Runtime>,
    g: &Arc<Group>,
    snapshot: &[Alert],
    now: DateTime<Utc>,
) -> bool {
    if !inner.muted_by(rt, &g.opts, now).is_empty() {
        return true;
    }
    let idx = inner.inhibit_index(rt, now);
    let mut kept = Vec::with_capacity(snapshot.len());
    let mut silenced = HashSet::new();
    let mut inhibited = HashSet::new();
    let mut events = Vec::new();
    {
        let was_silenced = g.silenced.lock();
        let was_inhibited = g.inhibited.lock();
        for a in snapshot {
            let fp = a.fingerprint();
            if let Some(by) = idx.inhibited_by(&a.labels) {
                if !was_inhibited.contains(&fp) && !a.resolved_at(now) {
                    let mut e = HistoryEvent::new(now, EventKind::Inhibited, a.labels.clone());
                    e.inhibited_by = vec![by.to_string()];
                    e.group_key = Some(g.key.clone());
                    events.push(e);
                }
                inhibited.insert(fp);
                continue;
            }
            let by = inner.silences.silenced_by(&a.labels, now);
            if !by.is_empty() {
                if !was_silenced.contains(&fp) && !a.resolved_at(now) {
                    let mut e = HistoryEvent::new(now, EventKind::Silenced, a.labels.clone());
                    e.silenced_by = by;
                    e.group_key = Some(g.key.clone());
                    events.push(e);
                }
                silenced.insert(fp);
                continue;
            }
            kept.push(a.clone());
        }
    }
    *g.silenced.lock() = silenced;
    *g.inhibited.lock() = inhibited;
    let released = std::mem::take(&mut *g.unsilenced.lock());
    inner.history.record_all(&events);
    if kept.is_empty() {
        return true;
    }

    let mut firing = Vec::new();
    let mut resolved = Vec::new();
    let mut is_released = false;
    for a in &mut kept {
        if a.resolved_at(now) {
            resolved.push(a.fingerprint().0);
        } else {
            firing.push(a.fingerprint().0);
            is_released |= released.contains(&a.fingerprint());
            a.ends_at = None;
        }
    }
    firing.sort_unstable();
    resolved.sort_unstable();
    kept.sort_by(|a, b| a.labels.cmp(&b.labels));

    // Plan: the route's receiver, then escalation receivers.
    let mut plan: Vec<Planned> = Vec::new();
    let decide = |name: &str| -> Option<Decision> {
        let notifier = rt.receivers.get(name)?.clone();
        inner.metrics.nflog_queries.inc();
        let prev = inner.nflog.query(&g.key, name);
        let repeat = g
            .opts
            .repeat_interval(prev.as_ref().map_or(0, |e| e.repeats));
        let reason = needs_update(
            prev.as_ref(),
            &firing,
            &resolved,
            notifier.send_resolved(),
            repeat,
            now,
            is_released,
        );
        Some((notifier, prev, reason))
    };
    let Some((notifier, prev, reason)) = decide(&g.opts.receiver) else {
        tracing::error!(receiver = %g.opts.receiver, "receiver not built");
        return false;
    };
    // Notifications the group has had before this one since it started
    // firing.
    let primary_count = match reason {
        Some(NotificationReason::First) => 0,
        _ => prev.as_ref().map_or(0, |e| e.count),
    };
    if let Some(reason) = reason {
        plan.push(Planned {
            receiver: g.opts.receiver.clone(),
            notifier,
            reason,
            prev,
        });
    }
    for esc in &g.opts.escalate {
        if esc.receiver == g.opts.receiver || plan.iter().any(|p| p.receiver == esc.receiver) {
            continue;
        }
        let escalating = reason.is_some() && !firing.is_empty() && primary_count >= esc.after;
        let has_firing = inner
            .nflog
            .query(&g.key, &esc.receiver)
            .is_some_and(|e| !e.firing.is_empty());
        if !(escalating || has_firing) {
            continue;
        }
        if let Some((notifier, prev, Some(reason))) = decide(&esc.receiver) {
            plan.push(Planned {
                receiver: esc.receiver.clone(),
                notifier,
                reason,
                prev,
            });
        }
    }
    if plan.is_empty() {
        return true;
    }

    // One task per receiver; a slow or failing receiver delays no other.
    let deadline = g.opts.group_interval.max(Duration::from_secs(1));
    let mut handles = Vec::with_capacity(plan.len());
    for p in plan {
        let count_before = match p.reason {
            NotificationReason::First => 0,
            _ => p.prev.as_ref().map_or(0, |e| e.count),
        };
        let n = Notification {
            receiver: p.receiver.clone(),
            group_key: g.key.clone(),
            group_labels: g.labels.clone(),
            common_labels: common(kept.iter().map(|a| &a.labels)),
            common_annotations: common(kept.iter().map(|a| &a.annotations)),
            route_labels: g.opts.labels.clone(),
            external_url: inner.external_url.clone(),
            reason: p.reason,
            alerts: kept.clone(),
            now,
            repeat: count_before,
        };
        let notifier = p.notifier.clone();
        let handle = tokio::spawn(async move {
            // The receiver stops retrying at the deadline by itself; the
            // timeout (one second later) only guards against one that
            // does not.
            let until = tokio::time::Instant::now() + deadline;
            let guard = deadline + Duration::from_secs(1);
            let r = tokio::time::timeout(guard, notifier.notify_until(&n, until)).await;
            let r = match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("notification deadline of {deadline:?} exceeded")),
            };
            (n, r)
        });
        handles.push((p, count_before, handle));
    }
    let mut all_ok = true;
    let max_repeat = g
        .opts
        .repeat_intervals
        .iter()
        .copied()
        .max()
        .unwrap_or_default();
    let expiry = (2 * max_repeat).max(DEFAULT_RETENTION);
    for (p, count_before, handle) in handles {
        let (n, result) = match handle.await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "notification task failed");
                all_ok = false;
                continue;
            }
        };
        let label = ReceiverLabel {
            receiver: p.receiver.clone(),
        };
        inner
            .metrics
            .dispatch_notifications
            .get_or_create(&label)
            .inc();
        let mut events = Vec::with_capacity(n.alerts.len());
        for a in &n.alerts {
            let kind = if result.is_ok() {
                EventKind::NotificationSent
            } else {
                EventKind::NotificationFailed
            };
            let mut e = HistoryEvent::new(now, kind, a.labels.clone());
            e.receiver = Some(p.receiver.clone());
            e.group_key = Some(g.key.clone());
            e.reason = Some(p.reason.as_str().to_string());
            e.status = Some(a.status_at(now).as_str().to_string());
            e.error = result.as_ref().err().cloned();
            events.push(e);
        }
        inner.history.record_all(&events);
        match result {
            Ok(()) => {
                let entry = Entry {
                    group_key: g.key.clone(),
                    receiver: p.receiver.clone(),
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                    timestamp: now,
                    expires_at: add(now, expiry),
                    count: count_before + 1,
                    repeats: if p.reason == NotificationReason::RepeatIntervalElapsed {
                        p.prev.as_ref().map_or(0, |e| e.repeats) + 1
                    } else {
                        0
                    },
                };
                if let Err(e) = blocking(|| inner.nflog.log(entry)) {
                    inner.metrics.nflog_query_errors.inc();
                    tracing::error!(error = %e, "notification log");
                    all_ok = false;
                }
            }
            Err(e) => {
                inner.metrics.dispatch_failures.get_or_create(&label).inc();
                tracing::warn!(receiver = %p.receiver, group = %g.key, error = %e, "notify failed");
                all_ok = false;
            }
        }
    }
    all_ok
}

/// Runs blocking I/O (an fsync) without stalling other tasks on a
/// multi-threaded runtime; inline on a current-thread one.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The pairs present with the same value in every set.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(firing: Vec<u64>, resolved: Vec<u64>, t: DateTime<Utc>) -> Entry {
        Entry {
            group_key: "g".into(),
            receiver: "r".into(),
            firing,
            resolved,
            timestamp: t,
            expires_at: t,
            count: 1,
            repeats: 0,
        }
    }

    #[test]
    fn dedup_reasons() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let h = Duration::from_secs(3600);
        use NotificationReason::*;
        assert_eq!(
            needs_update(None, &[1], &[], true, h, t, false),
            Some(First)
        );
        assert_eq!(needs_update(None, &[], &[1], true, h, t, false), None);
        let e = entry(vec![1], vec![], t);
        assert_eq!(
            needs_update(Some(&e), &[1, 2], &[], true, h, t, false),
            Some(NewAlertsAdded)
        );
        assert_eq!(
            needs_update(Some(&e), &[], &[1], false, h, t, false),
            Some(AllAlertsResolved)
        );
        let e2 = entry(vec![1, 2], vec![], t);
        assert_eq!(
            needs_update(Some(&e2), &[1], &[2], true, h, t, false),
            Some(SomeAlertsResolved)
        );
        assert_eq!(
            needs_update(Some(&e2), &[1], &[2], false, h, t, false),
            None
        );
        assert_eq!(
            needs_update(
                Some(&e),
                &[1],
                &[],
                true,
                h,
                t + chrono::Duration::minutes(59),
                false
            ),
            None
        );
        assert_eq!(
            needs_update(
                Some(&e),
                &[1],
                &[],
                true,
                h,
                t + chrono::Duration::minutes(61),
                false
            ),
            Some(RepeatIntervalElapsed)
        );
        assert_eq!(
            needs_update(Some(&e), &[1], &[], true, h, t, true),
            Some(NewAlertsAdded)
        );
        let resolved = entry(vec![], vec![1], t);
        assert_eq!(
            needs_update(Some(&resolved), &[1], &[], true, h, t, false),
            Some(First)
        );
        assert_eq!(
            needs_update(Some(&resolved), &[], &[], true, h, t, false),
            None
        );
    }

    #[test]
    fn merge_keeps_start_and_explicit_end() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mk = |start: i64, end: i64, upd: i64, timeout: bool| Alert {
            labels: LabelSet::from([("a".to_string(), "b".to_string())]),
            annotations: LabelSet::new(),
            starts_at: t + chrono::Duration::minutes(start),
            ends_at: Some(t + chrono::Duration::minutes(end)),
            generator_url: String::new(),
            updated_at: t + chrono::Duration::minutes(upd),
            timeout,
        };
        let m = merge(&mk(0, 10, 0, true), &mk(5, 15, 5, true), t);
        assert_eq!(m.starts_at, t);
        assert_eq!(m.ends_at, Some(t + chrono::Duration::minutes(15)));
        // An older explicit end later than the newer timeout end wins.
        let m = merge(&mk(0, 30, 0, false), &mk(5, 15, 5, true), t);
        assert_eq!(m.ends_at, Some(t + chrono::Duration::minutes(30)));
    }
}
