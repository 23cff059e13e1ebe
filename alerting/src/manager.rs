//! The rule manager: loads rule files into groups, runs each group on its
//! own schedule (a tokio task per group; evaluation itself on the blocking
//! pool), and reloads without losing the state of unchanged rules.
//!
//! Schedule (Prometheus's `Group.run`): the first evaluation is at the
//! group's next slot after start-up plus one interval; groups that must
//! restore `for` state evaluate once more and then restore; afterwards one
//! evaluation per interval, skipping (and counting) missed slots.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::{Label, Labels};
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use query::eval::{EngineOptions, QueryOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::group::{Group, GroupContext};
use crate::metrics::{RuleMetrics, group_label};
use crate::notify::{AlertSink, StateObserver};
use crate::rule::{AlertingRule, Nanos, RecordingRule, Rule, RuleKind, duration_ns};
use crate::rules::file::{self, RuleFileError};

/// The global settings rule evaluation depends on (Prometheus's
/// `global:` section and flags).
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    /// `evaluation_interval` (1m): the interval of groups without one.
    pub evaluation_interval: Duration,
    /// `rule_query_offset` (0s).
    pub rule_query_offset: Duration,
    pub external_labels: BTreeMap<String, String>,
    /// `--web.external-url`, without a trailing slash.
    pub external_url: String,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            external_labels: BTreeMap::new(),
            external_url: String::new(),
        }
    }
}

/// Everything the manager needs.
#[derive(Clone)]
pub struct ManagerOptions {
    pub db: Arc<engine::Db>,
    pub engine: EngineOptions,
    pub global: GlobalConfig,
    /// `--rules.alert.resend-delay` (1m).
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance` (1h).
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period` (10m).
    pub for_grace_period: Duration,
    /// Where alerts go; `None` keeps them in the manager only.
    pub sink: Option<Arc<dyn AlertSink>>,
    /// Told about alert state changes (alert history).
    pub observer: Option<Arc<dyn StateObserver>>,
}

impl ManagerOptions {
    /// Prometheus's defaults over `db`.
    pub fn new(db: Arc<engine::Db>) -> ManagerOptions {
        ManagerOptions {
            db,
            engine: EngineOptions::default(),
            global: GlobalConfig::default(),
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            sink: None,
            observer: None,
        }
    }
}

/// Why a (re)load was refused; the previous rules stay in force.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("error loading rules, previous rule set restored:{}", ErrorList(.0))]
    Files(Vec<RuleFileError>),
    #[error("invalid rule_files pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    #[error("the rule manager has been stopped")]
    Stopped,
}

struct ErrorList<'a>(&'a [RuleFileError]);

impl std::fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in self.0 {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

/// Expands `rule_files` patterns (shell globs, as Go's `filepath.Glob`)
/// into sorted, de-duplicated paths; a pattern matching nothing adds nothing.
pub fn expand_rule_files(patterns: &[String]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in patterns {
        let paths = glob::glob(p).map_err(|e| LoadError::Pattern {
            pattern: p.clone(),
            message: e.to_string(),
        })?;
        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        found.sort();
        out.extend(found);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

struct Running {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

struct State {
    /// Groups by key, in load order.
    groups: Vec<Arc<Group>>,
    tasks: HashMap<String, Running>,
    /// The first load restores `for` state; later ones do not.
    restored: bool,
    running: bool,
    stopped: bool,
    global: GlobalConfig,
}

/// Loads and runs rule groups. Create with [`RuleManager::new`], load with
/// [`RuleManager::update`], start with [`RuleManager::run`].
pub struct RuleManager {
    opts: ManagerOptions,
    metrics: RuleMetrics,
    state: tokio::sync::Mutex<State>,
    /// What the API reads, sorted by file and name.
    view: RwLock<Vec<Arc<Group>>>,
    done: watch::Sender<bool>,
}

impl RuleManager {
    /// A manager with no rules; metrics go into `registry`.
    pub fn new(opts: ManagerOptions, registry: &mut Registry) -> Arc<RuleManager> {
        Self::with_metrics(opts, RuleMetrics::new(registry))
    }

    pub fn with_metrics(opts: ManagerOptions, metrics: RuleMetrics) -> Arc<RuleManager> {
        let global = opts.global.clone();
        Arc::new(RuleManager {
            opts,
            metrics,
            state: tokio::sync::Mutex::new(State {
                groups: Vec::new(),
                tasks: HashMap::new(),
                restored: false,
                running: false,
                stopped: false,
                global,
            }),
            view: RwLock::new(Vec::new()),
            done: watch::channel(false).0,
        })
    }

    /// The groups, sorted by file then name.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.view.read().clone()
    }

    /// The global settings in force.
    pub async fn global(&self) -> GlobalConfig {
        self.state.lock().await.global.clone()
    }

    /// Loads `files` with the current global settings (see [`Self::reconfigure`]).
    pub async fn update(self: &Arc<Self>, files: &[PathBuf]) -> Result<(), LoadError> {
        let global = self.state.lock().await.global.clone();
        self.reconfigure(global, files).await
    }

    /// Loads `files` with new global settings. All files must be valid, or
    /// nothing changes and the errors are returned. Groups equal to their
    /// previous version keep running untouched; changed groups take over
    /// the state of their predecessor (same file and name); removed groups
    /// stop, and their series are marked stale two intervals later.
    pub async fn reconfigure(
        self: &Arc<Self>,
        global: GlobalConfig,
        files: &[PathBuf],
    ) -> Result<(), LoadError> {
        let mut st = self.state.lock().await;
        if st.stopped {
            return Err(LoadError::Stopped);
        }
        let ctx = Arc::new(self.context(&global));
        let new_groups = load_groups(files, &global, !st.restored, ctx)?;
        st.restored = true;
        st.global = global;

        let mut old: HashMap<String, Arc<Group>> =
            st.groups.drain(..).map(|g| (g.key(), g)).collect();
        let mut result = Vec::with_capacity(new_groups.len());
        for newg in new_groups {
            let key = newg.key();
            match old.remove(&key) {
                Some(oldg) if oldg.equals(&newg) => {
                    result.push(oldg);
                    continue;
                }
                Some(oldg) => {
                    if let Some(task) = st.tasks.remove(&key) {
                        let _ = task.stop.send(true);
                        let _ = task.handle.await;
                    }
                    newg.copy_state(&oldg);
                }
                None => {}
            }
            let newg = Arc::new(newg);
            if st.running {
                let task = self.spawn_group(newg.clone());
                st.tasks.insert(key, task);
            }
            result.push(newg);
        }
        for (key, oldg) in old {
            if let Some(task) = st.tasks.remove(&key) {
                let _ = task.stop.send(true);
                let _ = task.handle.await;
            }
            oldg.remove_metrics();
            if st.running {
                self.spawn_stale_cleanup(oldg);
            }
        }
        st.groups = result;
        self.publish(&st.groups);
        Ok(())
    }

    fn context(&self, global: &GlobalConfig) -> GroupContext {
        GroupContext {
            db: self.opts.db.clone(),
            query_options: QueryOptions {
                engine: self.opts.engine.clone(),
                ..QueryOptions::default()
            },
            external_labels: global.external_labels.clone(),
            external_url: global.external_url.clone(),
            resend_delay: self.opts.resend_delay,
            outage_tolerance: self.opts.outage_tolerance,
            for_grace_period: self.opts.for_grace_period,
            sink: self.opts.sink.clone(),
            observer: self.opts.observer.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn publish(&self, groups: &[Arc<Group>]) {
        let mut v = groups.to_vec();
        v.sort_by(|a, b| a.file.cmp(&b.file).then_with(|| a.name.cmp(&b.name)));
        *self.view.write() = v;
    }

    /// Starts evaluating (Prometheus holds evaluation until the storage is
    /// ready). Must be called inside a tokio runtime.
    pub async fn run(self: &Arc<Self>) {
        let mut st = self.state.lock().await;
        if st.running || st.stopped {
            return;
        }
        st.running = true;
        let groups = st.groups.clone();
        for g in groups {
            let task = self.spawn_group(g.clone());
            st.tasks.insert(g.key(), task);
        }
    }

    /// Stops every group after its current evaluation and waits for them.
    pub async fn stop(&self) {
        let mut st = self.state.lock().await;
        st.stopped = true;
        let _ = self.done.send(true);
        let tasks: Vec<Running> = st.tasks.drain().map(|(_, t)| t).collect();
        for t in &tasks {
            let _ = t.stop.send(true);
        }
        for t in tasks {
            let _ = t.handle.await;
        }
    }

    fn spawn_group(&self, group: Arc<Group>) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let metrics = self.metrics.clone();
        let handle = tokio::spawn(run_group(group, stop_rx, metrics));
        Running { stop, handle }
    }

    /// Marks a removed group's series stale after two intervals, unless
    /// the manager stops first (a renamed group has taken over by then).
    fn spawn_stale_cleanup(&self, group: Arc<Group>) {
        let mut done = self.done.subscribe();
        let wait = group.interval.saturating_mul(2);
        let now = now_ns();
        tokio::spawn(async move {
            tokio::select! {
                _ = wait_true(&mut done) => {}
                _ = tokio::time::sleep(wait) => {
                    let _ = tokio::task::spawn_blocking(move || group.mark_all_stale(now)).await;
                }
            }
        });
    }
}

/// Wall-clock nanoseconds since the epoch.
pub fn now_ns() -> Nanos {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Sleeps until wall-clock time `t`; false if stopped first.
async fn sleep_until_ns(t: Nanos, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = t.saturating_sub(now_ns()).max(0) as u64;
    tokio::select! {
        _ = wait_true(stop) => return false,
        _ = tokio::time::sleep(Duration::from_nanos(wait)) => {}
    }
    !*stop.borrow()
}

/// Resolves once the flag is true (or its sender is gone).
async fn wait_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}

async fn eval_at(group: &Arc<Group>, ts: Nanos) {
    let g = group.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || g.eval_iteration(ts)).await {
        tracing::error!(group = %group.name, error = %e, "rule group evaluation panicked");
    }
}

/// The evaluation loop of one group.
async fn run_group(group: Arc<Group>, mut stop: watch::Receiver<bool>, metrics: RuleMetrics) {
    let interval = duration_ns(group.interval).max(1);
    let label = group_label(&group.key());
    let mut ts = group.eval_timestamp(now_ns()) + interval;
    if !sleep_until_ns(ts, &mut stop).await {
        return;
    }
    eval_at(&group, ts).await;
    let mut restore_pending = group.should_restore();
    loop {
        if !sleep_until_ns(ts + interval, &mut stop).await {
            return;
        }
        let missed = (now_ns() - ts) / interval - 1;
        if missed > 0 {
            metrics
                .iterations_missed
                .get_or_create(&label)
                .inc_by(missed as u64);
            metrics
                .iterations_scheduled
                .get_or_create(&label)
                .inc_by(missed as u64);
        }
        ts += (missed.max(0) + 1) * interval;
        eval_at(&group, ts).await;
        if restore_pending {
            restore_pending = false;
            let g = group.clone();
            let now = now_ns();
            let _ = tokio::task::spawn_blocking(move || g.restore_for_state(now)).await;
        }
    }
}

/// Loads and validates `files` into groups (Prometheus's `LoadGroups`).
/// `should_restore` makes alerting rules wait for `for`-state restoration.
/// Used by [`RuleManager`] and usable on its own to evaluate groups at
/// chosen times (a rule unit-test runner).
pub fn load_groups(
    files: &[PathBuf],
    global: &GlobalConfig,
    should_restore: bool,
    ctx: Arc<GroupContext>,
) -> Result<Vec<Group>, LoadError> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match file::parse_file(path) {
            Ok(rgs) => parsed.push((path, rgs)),
            Err(errs) => errors.extend(errs),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Files(errors));
    }
    let mut groups = Vec::new();
    for (path, rgs) in parsed {
        for rg in rgs.groups {
            groups.push(build_group(path, rg, global, should_restore, ctx.clone()));
        }
    }
    Ok(groups)
}

fn labels_of(map: &BTreeMap<String, String>) -> Labels {
    let pairs = map.iter().map(|(k, v)| Label::new(k, v)).collect();
    // Validation already refused empty names; duplicates cannot occur in a map.
    Labels::from_pairs(pairs).unwrap_or_default()
}

fn build_group(
    path: &Path,
    rg: file::RuleGroup,
    global: &GlobalConfig,
    should_restore: bool,
    ctx: Arc<GroupContext>,
) -> Group {
    let mut rules = Vec::with_capacity(rg.rules.len());
    for r in rg.rules {
        // Validation parsed every expression already.
        let Ok(expr) = query::promql::parse(&r.expr) else {
            continue;
        };
        let mut merged = rg.labels.clone();
        merged.extend(r.labels.clone());
        let labels = labels_of(&merged);
        let query = expr.to_string();
        let kind = if r.alert.is_empty() {
            RuleKind::Recording(RecordingRule {
                name: r.record,
                expr,
                labels,
            })
        } else {
            RuleKind::Alerting(AlertingRule::new(
                r.alert,
                expr,
                r.for_,
                r.keep_firing_for,
                labels,
                r.annotations,
                !should_restore,
            ))
        };
        rules.push(Rule {
            kind,
            query,
            status: Default::default(),
        });
    }
    Group::new(
        rg.name,
        path.display().to_string(),
        // A zero interval would spin; Prometheus's default applies instead.
        match rg.interval.unwrap_or(global.evaluation_interval) {
            d if d.is_zero() => Duration::from_secs(60),
            d => d,
        },
        rg.limit,
        rg.query_offset,
        global.rule_query_offset,
        rules,
        should_restore,
        ctx,
    )
}

impl RuleManager {
    /// A group context for this manager's settings (to build groups
    /// outside the manager, e.g. for a unit-test runner).
    pub fn group_context(&self, global: &GlobalConfig) -> Arc<GroupContext> {
        Arc::new(self.context(global))
    }
}
