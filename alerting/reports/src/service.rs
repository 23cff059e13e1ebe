//! The report service: holds the definitions, runs each report on its
//! cron schedule (a tokio task) and on demand, stores a record per run,
//! delivers the files, and tells the report's owner when a run fails.
//!
//! One run: compute the document (PromQL and the alert history, on a
//! blocking thread) → render the formats → store the run (record and
//! files) → deliver (folder, webhook, email) → record the outcome → on
//! failure call [`OwnerNotifier::failed`], on the first success after a
//! failure [`OwnerNotifier::recovered`] → prune old runs. A report never
//! runs twice at once. A failure never stops the schedule.
//!
//! Scheduling: the task sleeps until the earliest next firing time (at
//! most a minute at a time, so wall-clock jumps are noticed), runs every
//! report due then concurrently, with the period ending at the firing
//! time, and continues from the later of that time and now (firings
//! missed while a run was busy are coalesced, not replayed).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alertmanager::receivers::GlobalConfig;
use alertmanager::{Alert, Alertmanager};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Format, ReportDef};
use crate::deliver;
use crate::error::{ConfigError, ReportError, RunError};
use crate::kinds::{self, Sources};
use crate::render;
use crate::store::{OutputFile, RunRecord, RunStatus, Store, Trigger, run_id};

/// Told when a report fails and when it works again; the binary raises an
/// alert (see [`AlertmanagerNotifier`]).
pub trait OwnerNotifier: Send + Sync {
    fn failed(&self, def: &ReportDef, run: &RunRecord);
    fn recovered(&self, def: &ReportDef, run: &RunRecord);
}

/// Raises `SiltReportFailed` in the built-in Alertmanager, routed like any
/// alert (route on `owner`): labels `alertname`, `report`, `kind`,
/// `owner` (when set), `severity="warning"`; annotations `summary`,
/// `description` (the error) and `runs` (the runs' URL). It stays firing
/// for a day or until the next successful run resolves it.
pub struct AlertmanagerNotifier {
    am: Arc<Alertmanager>,
    external_url: String,
}

impl AlertmanagerNotifier {
    pub fn new(am: Arc<Alertmanager>, external_url: String) -> AlertmanagerNotifier {
        AlertmanagerNotifier { am, external_url }
    }

    fn alert(&self, def: &ReportDef, run: &RunRecord, ends_at: DateTime<Utc>) -> Alert {
        let mut labels = BTreeMap::from([
            ("alertname".to_string(), "SiltReportFailed".to_string()),
            ("report".to_string(), def.name.clone()),
            ("kind".to_string(), def.kind.as_str().to_string()),
            ("severity".to_string(), "warning".to_string()),
        ]);
        if let Some(o) = &def.owner {
            labels.insert("owner".into(), o.clone());
        }
        let runs = format!(
            "{}/api/v1/reports/{}/runs",
            self.external_url.trim_end_matches('/'),
            def.name
        );
        let annotations = BTreeMap::from([
            ("summary".to_string(), format!("Report {} failed", def.name)),
            (
                "description".to_string(),
                run.error.clone().unwrap_or_else(|| "unknown error".into()),
            ),
            ("runs".to_string(), runs.clone()),
        ]);
        Alert {
            labels,
            annotations,
            starts_at: run.started_at,
            ends_at: Some(ends_at),
            generator_url: runs,
            updated_at: Utc::now(),
            timeout: false,
        }
    }
}

impl OwnerNotifier for AlertmanagerNotifier {
    fn failed(&self, def: &ReportDef, run: &RunRecord) {
        let alert = self.alert(def, run, run.finished_at + chrono::Duration::days(1));
        for (_, why) in self.am.put_alerts(vec![alert]) {
            tracing::warn!(report = %def.name, error = %why, "the Alertmanager refused the report failure alert");
        }
    }

    fn recovered(&self, def: &ReportDef, run: &RunRecord) {
        let _ = self
            .am
            .put_alerts(vec![self.alert(def, run, run.finished_at)]);
    }
}

/// Service settings.
#[derive(Clone)]
pub struct Options {
    /// Where runs are stored (the binary: `<data_dir>/reports`).
    pub dir: PathBuf,
    /// Silt's external URL, for links in webhooks and emails.
    pub external_url: String,
    /// SMTP defaults for email delivery (the Alertmanager's `global`).
    pub smtp: GlobalConfig,
    pub notifier: Option<Arc<dyn OwnerNotifier>>,
    /// First webhook retry delay (default 1 s; doubled per attempt).
    pub webhook_backoff: Duration,
}

impl Options {
    pub fn new(dir: PathBuf) -> Options {
        Options {
            dir,
            external_url: String::new(),
            smtp: GlobalConfig::default(),
            notifier: None,
            webhook_backoff: Duration::from_secs(1),
        }
    }
}

/// A definition as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportInfo {
    pub name: String,
    pub kind: String,
    pub title: String,
    pub schedule: Option<String>,
    pub timezone: String,
    pub period: String,
    pub step: String,
    pub filter: String,
    pub formats: Vec<Format>,
    pub owner: Option<String>,
    pub delivery: BTreeMap<String, String>,
    pub next_run: Option<DateTime<Utc>>,
    pub running: bool,
    pub last_run: Option<RunRecord>,
}

/// The running report service.
pub struct Reports {
    defs: RwLock<Arc<Vec<Arc<ReportDef>>>>,
    sources: Sources,
    store: Store,
    opts: Options,
    /// SMTP defaults for email delivery: `opts.smtp` until a reload
    /// brings new ones ([`Reports::update`]).
    smtp: RwLock<Arc<GlobalConfig>>,
    running: Mutex<HashSet<String>>,
    /// Reports whose last run failed (to send `recovered`).
    failing: Mutex<HashSet<String>>,
    changed: tokio::sync::Notify,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Checks that every email delivery can be built against `smtp`.
pub fn check_email(defs: &[ReportDef], smtp: &GlobalConfig) -> Result<(), ConfigError> {
    for d in defs {
        if let Some(c) = &d.delivery.email {
            deliver::email_receiver(&d.name, c, smtp)
                .map_err(|e| ConfigError::field(&d.name, "delivery.email", e.to_string()))?;
        }
    }
    Ok(())
}

/// The earliest next firing after `after`, and the reports due then.
fn next_due(
    defs: &[Arc<ReportDef>],
    after: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Vec<Arc<ReportDef>>)> {
    let mut best: Option<(DateTime<Utc>, Vec<Arc<ReportDef>>)> = None;
    for d in defs {
        let Some(t) = d.schedule.as_ref().and_then(|s| s.next_after(after)) else {
            continue;
        };
        match &mut best {
            Some((bt, list)) if *bt == t => list.push(d.clone()),
            Some((bt, _)) if *bt < t => {}
            _ => best = Some((t, vec![d.clone()])),
        }
    }
    best
}

/// Removes the report from the running set when the run ends (or panics).
struct RunningGuard<'a>(&'a Reports, String);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.lock().remove(&self.1);
    }
}

impl Reports {
    /// Opens the run store and takes the definitions; the schedule starts
    /// with [`Reports::start`].
    pub fn new(
        defs: Vec<ReportDef>,
        sources: Sources,
        opts: Options,
    ) -> Result<Arc<Reports>, ReportError> {
        check_email(&defs, &opts.smtp)?;
        let store = Store::open(&opts.dir)?;
        let mut failing = HashSet::new();
        for d in &defs {
            if let Ok(Some(last)) = store.last(&d.name)
                && last.status == RunStatus::Failed
            {
                failing.insert(d.name.clone());
            }
        }
        Ok(Arc::new(Reports {
            defs: RwLock::new(Arc::new(defs.into_iter().map(Arc::new).collect())),
            sources,
            store,
            smtp: RwLock::new(Arc::new(opts.smtp.clone())),
            opts,
            running: Mutex::new(HashSet::new()),
            failing: Mutex::new(failing),
            changed: tokio::sync::Notify::new(),
            shutdown: watch::Sender::new(false),
            task: Mutex::new(None),
        }))
    }

    /// Starts the scheduler task. Must be called within a tokio runtime.
    pub fn start(self: &Arc<Self>) {
        let mut task = self.task.lock();
        if task.is_none() {
            *task = Some(tokio::spawn(self.clone().schedule()));
        }
    }

    /// Stops the scheduler; a run in progress is abandoned (its temporary
    /// folder is removed by the next prune).
    pub async fn stop(&self) {
        self.shutdown.send_replace(true);
        let task = self.task.lock().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
    }

    /// Replaces the definitions and the SMTP defaults email uses (a
    /// reload: the Alertmanager's reloaded `global`), checked together; on
    /// error nothing changes.
    pub fn update(&self, defs: Vec<ReportDef>, smtp: GlobalConfig) -> Result<(), ConfigError> {
        check_email(&defs, &smtp)?;
        *self.smtp.write() = Arc::new(smtp);
        *self.defs.write() = Arc::new(defs.into_iter().map(Arc::new).collect());
        self.changed.notify_one();
        Ok(())
    }

    pub fn definitions(&self) -> Vec<Arc<ReportDef>> {
        self.defs.read().iter().cloned().collect()
    }

    fn def(&self, name: &str) -> Result<Arc<ReportDef>, ReportError> {
        self.defs
            .read()
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| ReportError::UnknownReport(name.to_string()))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Definitions with their next and last runs.
    pub fn list(&self) -> Result<Vec<ReportInfo>, ReportError> {
        let now = Utc::now();
        let running = self.running.lock().clone();
        let mut out = Vec::new();
        for d in self.definitions() {
            let mut delivery = BTreeMap::new();
            if let Some(f) = &d.delivery.folder {
                delivery.insert("folder".to_string(), f.display().to_string());
            }
            if let Some(w) = &d.delivery.webhook {
                delivery.insert("webhook".to_string(), w.url.clone());
            }
            if let Some(e) = &d.delivery.email {
                delivery.insert("email".to_string(), e.to.clone().unwrap_or_default());
            }
            out.push(ReportInfo {
                name: d.name.clone(),
                kind: d.kind.as_str().to_string(),
                title: d.title.clone(),
                schedule: d.schedule.as_ref().map(ToString::to_string),
                timezone: d
                    .schedule
                    .as_ref()
                    .map_or("UTC".to_string(), |s| s.timezone().to_string()),
                period: query::promql::format_duration_ms(d.period.as_millis() as i64),
                step: query::promql::format_duration_ms(d.step.as_millis() as i64),
                filter: d.filter.text.clone(),
                formats: d.formats.clone(),
                owner: d.owner.clone(),
                delivery,
                next_run: d.schedule.as_ref().and_then(|s| s.next_after(now)),
                running: running.contains(&d.name),
                last_run: self.store.last(&d.name)?,
            });
        }
        Ok(out)
    }

    /// The runs of a report, newest first.
    pub fn runs(&self, name: &str) -> Result<Vec<RunRecord>, ReportError> {
        self.def(name)?;
        self.store.list(name)
    }

    /// Runs `name` now (period ending at `end`, default now) and returns
    /// its record, failed or not. Errors only when the run cannot start.
    pub async fn run_now(
        &self,
        name: &str,
        trigger: Trigger,
        end: Option<DateTime<Utc>>,
    ) -> Result<RunRecord, ReportError> {
        let def = self.def(name)?;
        if !self.running.lock().insert(name.to_string()) {
            return Err(ReportError::AlreadyRunning(name.to_string()));
        }
        let _guard = RunningGuard(self, name.to_string());
        Ok(self.run(def, trigger, end).await)
    }

    async fn run(
        &self,
        def: Arc<ReportDef>,
        trigger: Trigger,
        end: Option<DateTime<Utc>>,
    ) -> RunRecord {
        let clock = Instant::now();
        let started_at = Utc::now();
        let end = end.unwrap_or(started_at);
        let mut id = run_id(started_at);
        let mut n = 2;
        while self.store.dir().join(&def.name).join(&id).exists() {
            id = format!("{}-{n}", run_id(started_at));
            n += 1;
        }
        let sources = self.sources.clone();
        let d = def.clone();
        let computed = tokio::task::spawn_blocking(move || kinds::compute(&sources, &d, end))
            .await
            .unwrap_or_else(|e| Err(RunError::Internal(e.to_string())));
        let rendered = computed.and_then(|doc| {
            let files = render::render(&doc, &def.formats, &id)?;
            Ok((doc, files))
        });
        let period_start =
            end - chrono::Duration::from_std(def.period).unwrap_or(chrono::Duration::zero());
        let mut record = RunRecord {
            id: id.clone(),
            report: def.name.clone(),
            kind: def.kind.as_str().to_string(),
            trigger,
            started_at,
            finished_at: started_at,
            duration_seconds: 0.0,
            period_start,
            period_end: end,
            status: RunStatus::Succeeded,
            error: None,
            files: Vec::new(),
            deliveries: Vec::new(),
        };
        let finish = |r: &mut RunRecord| {
            r.finished_at = Utc::now();
            r.duration_seconds = clock.elapsed().as_secs_f64();
        };
        match rendered {
            Err(e) => {
                record.status = RunStatus::Failed;
                record.error = Some(e.to_string());
                finish(&mut record);
                if let Err(e) = self.store.save(&record, &[]) {
                    tracing::error!(report = %def.name, error = %e, "storing a failed report run");
                }
            }
            Ok((doc, files)) => {
                record.files = files
                    .iter()
                    .map(|f| OutputFile {
                        name: f.name.clone(),
                        content_type: f.content_type.to_string(),
                        size: f.bytes.len() as u64,
                    })
                    .collect();
                finish(&mut record);
                if let Err(e) = self.store.save(&record, &files) {
                    record.status = RunStatus::Failed;
                    record.error = Some(RunError::Store(e.to_string()).to_string());
                } else {
                    let ext = &self.opts.external_url;
                    let smtp = self.smtp.read().clone();
                    let outcomes = [
                        deliver::to_folder(&def, &record, &files),
                        deliver::to_webhook(&def, &record, &doc, ext, self.opts.webhook_backoff)
                            .await,
                        deliver::to_email(&def, &record, &doc, &files, &smtp, ext).await,
                    ];
                    record.deliveries = outcomes.into_iter().flatten().collect();
                    let failed: Vec<String> = record
                        .deliveries
                        .iter()
                        .filter(|d| !d.ok)
                        .map(|d| format!("{}: {}", d.target, d.error.as_deref().unwrap_or("")))
                        .collect();
                    if !failed.is_empty() {
                        record.status = RunStatus::Failed;
                        record.error = Some(RunError::Delivery(failed.join("; ")).to_string());
                    }
                    finish(&mut record);
                    if let Err(e) = self.store.update(&record) {
                        tracing::error!(report = %def.name, error = %e, "updating a report run record");
                    }
                }
            }
        }
        match record.status {
            RunStatus::Failed => {
                tracing::warn!(report = %def.name, run = %record.id, error = record.error.as_deref().unwrap_or(""), "report run failed");
                self.failing.lock().insert(def.name.clone());
                if let Some(n) = &self.opts.notifier {
                    n.failed(&def, &record);
                }
            }
            RunStatus::Succeeded => {
                tracing::info!(report = %def.name, run = %record.id, seconds = record.duration_seconds, "report run succeeded");
                if self.failing.lock().remove(&def.name)
                    && let Some(n) = &self.opts.notifier
                {
                    n.recovered(&def, &record);
                }
            }
        }
        if let Err(e) = self.store.prune(&def.name, def.keep_runs) {
            tracing::warn!(report = %def.name, error = %e, "pruning old report runs");
        }
        record
    }

    async fn schedule(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut after = Utc::now();
        loop {
            let next = next_due(&self.definitions(), after);
            let wait = next
                .as_ref()
                .map_or(Duration::from_secs(60), |(t, _)| {
                    (*t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
                })
                .min(Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.changed.notified() => {
                    after = Utc::now();
                    continue;
                }
                _ = shutdown.wait_for(|v| *v) => return,
            }
            let Some((t, due)) = next else { continue };
            if Utc::now() < t {
                continue;
            }
            let mut runs = tokio::task::JoinSet::new();
            for d in due {
                let this = self.clone();
                runs.spawn(async move {
                    match this.run_now(&d.name, Trigger::Schedule, Some(t)).await {
                        Ok(_) => {}
                        Err(e) => tracing::warn!(report = %d.name, error = %e, "scheduled report run skipped"),
                    }
                });
            }
            while runs.join_next().await.is_some() {}
            after = t.max(Utc::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn next_due_groups_reports_firing_together() {
        let defs: Vec<Arc<ReportDef>> = crate::config::parse(
            "reports:\n  - {name: a, kind: sla, period: 1d, schedule: '0 8 * * *'}\n  - {name: b, kind: sla, period: 1d, schedule: '0 */4 * * *'}\n  - {name: c, kind: sla, period: 1d}\n  - {name: d, kind: sla, period: 1d, schedule: '@daily', timezone: 'America/New_York'}\n",
            "t.yml",
        )
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
        let names = |v: &[Arc<ReportDef>]| v.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 5, 0, 0).unwrap();
        let (at, due) = next_due(&defs, t).unwrap();
        // Midnight in New York is 05:00 UTC: strictly after t, so b at 08:00 with a.
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap());
        assert_eq!(names(&due), vec!["a", "b"]);
        let (at, due) = next_due(&defs, at).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap());
        assert_eq!(names(&due), vec!["b"]);
        let (at, due) =
            next_due(&defs, Utc.with_ymd_and_hms(2026, 12, 2, 4, 30, 0).unwrap()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 12, 2, 5, 0, 0).unwrap());
        assert_eq!(names(&due), vec!["d"]);
        assert!(next_due(&defs[2..3], t).is_none());
    }
}
