//! Wires rule evaluation (crate `alerting`) to the built-in Alertmanager
//! (crate `alertmanager`) and to external Alertmanagers: evaluated alerts
//! go to both, alert state changes go to the alert history, and a reload
//! (SIGHUP, `POST /-/reload`) re-reads Silt's configuration file, then the
//! rule files, the Alertmanager configuration and the report definitions
//! it names, keeping alert state, silences and the notification log.
//! Settings a running server cannot change (the listen address, the data
//! folder, limits, ...) are logged as needing a restart. The scheduled
//! reports (crate `reports`) run here too: they read the alert history and
//! mail through the built-in Alertmanager's SMTP settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alerting::{
    AlertSink, ExternalAlertmanagers, ExternalOptions, FanOut, GlobalConfig, ManagerOptions,
    OutgoingAlert, RuleManager, StateChange, StateObserver,
};
use alertmanager::{Alert, Alertmanager, History, HistoryEvent};
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use engine::Db;
use prometheus_client::registry::Registry;
use query::api::ConfigStatus;
use query::eval::QueryOptions;

use crate::config::{AlertingConfig, Config, ConfigSource, unix_ms_now};
use crate::report_stack::ReportStack;

/// The built-in Alertmanager's configuration when none is given: every
/// alert is kept and shown, nobody is notified.
const DEFAULT_ALERTMANAGER_CONFIG: &str =
    "route:\n  receiver: default\nreceivers:\n  - name: default\n";

/// The running alerting stack.
pub struct Alerting {
    rules: Arc<RuleManager>,
    am: Arc<Alertmanager>,
    external: Option<Arc<ExternalAlertmanagers>>,
    reports: ReportStack,
    /// Where reloads read the configuration from.
    source: ConfigSource,
    /// The configuration in effect: as started, with what reloads applied
    /// (settings that need a restart keep their start-time values, so
    /// every reload warns about them again).
    cfg: std::sync::Mutex<Config>,
    /// What the status API shows of it.
    status: Arc<ConfigStatus>,
    /// Held through a reload, so that two (SIGHUP and `/-/reload`) do not
    /// interleave their steps.
    reloading: tokio::sync::Mutex<()>,
}

/// Hands evaluated alerts to the built-in Alertmanager.
struct BuiltIn(Arc<Alertmanager>);

impl AlertSink for BuiltIn {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let now = Utc::now();
        let alerts = alerts
            .into_iter()
            .map(|a| Alert {
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                generator_url: a.generator_url,
                updated_at: now,
                timeout: false,
            })
            .collect();
        for (alert, why) in self.0.put_alerts(alerts) {
            tracing::warn!(alert = ?alert.labels, error = %why, "the built-in Alertmanager refused an alert");
        }
    }
}

/// Records alert state changes in the alert history.
struct HistoryRecorder(Arc<History>);

impl StateObserver for HistoryRecorder {
    fn state_changes(&self, changes: Vec<StateChange>) {
        let events: Vec<HistoryEvent> = changes
            .into_iter()
            .map(|c| {
                HistoryEvent::state_change(
                    c.time,
                    c.labels,
                    c.from.as_str(),
                    c.to.as_str(),
                    c.value,
                )
            })
            .collect();
        self.0.record_all(&events);
    }
}

/// The Alertmanager configuration `cfg` names, or the default.
fn alertmanager_config(cfg: &Config) -> anyhow::Result<alertmanager::Config> {
    if cfg.alerting.config_file.is_empty() {
        return alertmanager::Config::parse(DEFAULT_ALERTMANAGER_CONFIG, "<built-in>")
            .context("the built-in Alertmanager configuration");
    }
    let path = cfg.resolve_path(&cfg.alerting.config_file);
    alertmanager::Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn global(cfg: &Config, external_url: &str) -> GlobalConfig {
    GlobalConfig {
        evaluation_interval: cfg.rules.evaluation_interval.0,
        rule_query_offset: cfg.rules.query_offset.0,
        external_labels: cfg.rules.external_labels.clone(),
        external_url: external_url.trim_end_matches('/').to_owned(),
    }
}

/// The external URL: configured, or the listen address.
pub fn external_url(cfg: &Config, listen: &std::net::SocketAddr) -> String {
    if cfg.rules.external_url.is_empty() {
        format!("http://{listen}")
    } else {
        cfg.rules.external_url.trim_end_matches('/').to_owned()
    }
}

fn rule_files(cfg: &Config) -> anyhow::Result<Vec<PathBuf>> {
    alerting::expand_rule_files(&cfg.rule_file_patterns()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The report definitions: every `report_files` file's, then the inline ones.
fn report_definitions(cfg: &Config) -> anyhow::Result<Vec<reports::ReportDef>> {
    let files = alerting::expand_rule_files(&cfg.report_file_patterns())
        .map_err(|e| anyhow::anyhow!("report_files: {e}"))?;
    crate::report_stack::load_definitions(&files, &cfg.reports)
}

impl Alerting {
    /// Starts the built-in Alertmanager and the rule manager over `db`.
    /// Must run within the tokio runtime.
    pub async fn start(
        db: &Arc<Db>,
        cfg: &Config,
        source: ConfigSource,
        status: Arc<ConfigStatus>,
        external_url: String,
        registry: &mut Registry,
    ) -> anyhow::Result<Arc<Alerting>> {
        let am_config = alertmanager_config(cfg)?;
        let opts = alertmanager::Options {
            external_url: external_url.clone(),
            // Alert history is kept as long as metrics.
            history_retention: cfg
                .retention()
                .unwrap_or(Duration::from_secs(100 * 365 * 86400)),
            ..alertmanager::Options::default()
        };
        let am = Alertmanager::with_options(
            am_config,
            &cfg.data_dir.join("alertmanager"),
            // The crate's metrics carry Alertmanager's own names
            // (`alertmanager_alerts`, ...): no prefix here.
            registry,
            opts,
        )
        .map_err(|e| anyhow::anyhow!("starting the built-in Alertmanager: {e}"))?;

        let external = (!cfg.alerting.alertmanagers.is_empty()).then(|| {
            ExternalAlertmanagers::new(
                ExternalOptions::new(cfg.alerting.alertmanagers.clone()),
                registry,
            )
        });
        let mut sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(BuiltIn(am.clone()))];
        if let Some(e) = &external {
            sinks.push(e.clone());
        }
        let mut opts = ManagerOptions::new(db.clone());
        opts.engine = cfg.api_options()?.engine;
        opts.global = global(cfg, &external_url);
        opts.sink = Some(Arc::new(FanOut(sinks)));
        opts.observer = Some(Arc::new(HistoryRecorder(am.history().clone())));
        let rules = RuleManager::new(opts, registry);
        let files = rule_files(cfg)?;
        rules
            .update(&files)
            .await
            .map_err(|e| anyhow::anyhow!("loading rule files: {e}"))?;
        let running = rules.clone();
        tokio::spawn(async move { running.run().await });
        tracing::info!(files = files.len(), "rules loaded");
        let reports = ReportStack::start(
            db,
            report_definitions(cfg).context("loading report definitions")?,
            &cfg.data_dir,
            &external_url,
            QueryOptions {
                engine: cfg.api_options()?.engine,
                ..QueryOptions::default()
            },
            Some(&am),
        )?;
        Ok(Arc::new(Alerting {
            rules,
            am,
            external,
            reports,
            source,
            cfg: std::sync::Mutex::new(cfg.clone()),
            status,
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// Re-reads the configuration, then the rule files, the Alertmanager
    /// configuration and the report definitions it names. All are checked
    /// whole first: on an error nothing changes (and the status API shows
    /// that the reload failed).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = self.apply_reload().await;
        if result.is_err() {
            self.status.reload_failed();
        }
        result
    }

    async fn apply_reload(&self) -> anyhow::Result<()> {
        let cfg = (self.source)().context("reading the configuration")?;
        let am_config = alertmanager_config(&cfg)?;
        let files = rule_files(&cfg)?;
        let reports = report_definitions(&cfg)?;
        // Validate the rules before touching the Alertmanager, so that a bad
        // rule file does not leave half a reload behind.
        let checks = alerting::check_files(&files);
        if let Some(bad) = checks.iter().find(|c| !c.errors.is_empty()) {
            let errors: Vec<String> = bad.errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", errors.join("; "));
        }
        // Email reports are checked against the new SMTP defaults before
        // anything changes too (the report service checks again when it
        // takes them, after the Alertmanager and the rules have changed).
        let smtp = am_config.global.receivers.clone();
        reports::check_email(&reports, &smtp).map_err(|e| anyhow::anyhow!("{e}"))?;
        // What will be in effect: the reloaded settings, the rest as
        // started (rendered now, so nothing can fail after the swap).
        let mut effective = self
            .cfg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let unapplied = restart_only_changes(&effective, &cfg);
        effective.rule_files = cfg.rule_files;
        effective.report_files = cfg.report_files;
        effective.reports = cfg.reports;
        effective.alerting.config_file = cfg.alerting.config_file;
        let yaml = effective.to_yaml()?;
        self.am
            .reload(am_config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.rules
            .update(&files)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.reports.reload(reports, smtp)?;
        *self
            .cfg
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = effective;
        self.status.reloaded(yaml, unix_ms_now());
        if !unapplied.is_empty() {
            tracing::warn!(
                settings = unapplied.join(", "),
                "configuration changes that take effect only after a restart"
            );
        }
        tracing::info!(files = files.len(), "configuration reloaded");
        Ok(())
    }

    /// Stops the report schedules and rule evaluation, then the
    /// Alertmanagers' senders.
    pub async fn stop(&self) {
        self.reports.stop().await;
        self.rules.stop().await;
        self.am.stop().await;
        if let Some(e) = self.external.clone() {
            let _ = tokio::task::spawn_blocking(move || e.stop()).await;
        }
    }

    /// `/api/v1/rules`, `/api/v1/alerts`, the Alertmanager API v2,
    /// `/api/v1/alerts/history`, `/api/v1/reports...` and
    /// `POST|PUT /-/reload`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/-/reload", post(reload).put(reload))
            .with_state(self.clone())
            .merge(alerting::routes(self.rules.clone()))
            .merge(alertmanager::api::routes(self.am.clone()))
            .merge(self.reports.routes())
    }
}

/// The settings that differ between `running` and `new` but that a reload
/// does not apply (everything but `rule_files`, `report_files`, `reports`
/// and `alerting.config_file`), by their names in the file. Every field is
/// named, so a new one does not compile until it is sorted into one kind.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let Config {
        listen,
        data_dir,
        retention,
        durability,
        ingest,
        query,
        rule_files: _,
        rules,
        alerting: AlertingConfig {
            config_file: _,
            alertmanagers,
        },
        report_files: _,
        reports: _,
        capacity,
        self_scrape,
        log,
        base_dir: _,
    } = running;
    let checks = [
        ("listen", *listen == new.listen),
        ("data_dir", *data_dir == new.data_dir),
        ("retention", *retention == new.retention),
        ("durability", *durability == new.durability),
        ("ingest", *ingest == new.ingest),
        ("query", *query == new.query),
        ("rules", *rules == new.rules),
        (
            "alerting.alertmanagers",
            *alertmanagers == new.alerting.alertmanagers,
        ),
        ("capacity", *capacity == new.capacity),
        ("self_scrape", *self_scrape == new.self_scrape),
        ("log", *log == new.log),
    ];
    checks
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect()
}

async fn reload(State(a): State<Arc<Alerting>>) -> Response {
    match a.reload().await {
        Ok(()) => (StatusCode::OK, "").into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload failed; the running configuration stays");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e:#}\n"),
            )
                .into_response()
        }
    }
}
