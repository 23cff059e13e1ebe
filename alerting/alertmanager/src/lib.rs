//! Silt's built-in Alertmanager: the routing tree, aggregation groups and
//! their timers, inhibition, silences, time intervals, the notification log
//! and the receivers that deliver notifications.
//!
//! Entry point: [`Alertmanager::new`] (within a tokio runtime) with a
//! [`Config`] from [`Config::load`]; alerts come in through
//! [`Alertmanager::put_alerts`] (the rule manager) or `POST /api/v2/alerts`
//! ([`api::routes`]). State in the data directory: `silences.json`
//! (snapshot), `nflog.jsonl` (notification log), `history/` (alert
//! history). Alerts themselves live in memory: senders re-send them.

pub mod api;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod duration;
pub mod history;
pub mod inhibit;
pub mod matchers;
pub mod metrics;
pub mod nflog;
pub mod receivers;
pub mod silence;
pub mod timeinterval;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;

pub use clock::Clock;
pub use config::{Config, ConfigError};
pub use dispatch::{AlertState, InvalidAlert};
pub use history::{EventKind, History, HistoryEvent, HistoryQuery};
pub use silence::{PostableSilence, Silence, SilenceMatcher, SilenceState, Silences};
pub use types::{Alert, AlertStatus, Fingerprint, LabelSet, Notification, NotificationReason};

use dispatch::{Inner, Runtime};
use receivers::{GlobalConfig, Notify, ReceiverConfig, ReceiverError, ReceiverMetrics, Templates};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
    #[error("template file {path}: {source}")]
    TemplateFile {
        path: String,
        source: std::io::Error,
    },
    #[error("template glob {0:?}: only the last path component may hold wildcards")]
    TemplateGlob(String),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Silences(#[from] silence::SilenceError),
    #[error(transparent)]
    Nflog(#[from] nflog::NflogError),
    #[error(transparent)]
    History(#[from] history::HistoryError),
}

/// Builds the notifier of one configured receiver.
pub type ReceiverFactory = Arc<
    dyn Fn(
            &ReceiverConfig,
            &GlobalConfig,
            &Arc<Templates>,
        ) -> Result<Arc<dyn Notify>, ReceiverError>
        + Send
        + Sync,
>;

/// Knobs beyond the configuration file.
#[derive(Clone)]
pub struct Options {
    pub clock: Clock,
    /// Alertmanager's `--web.external-url` (in notifications).
    pub external_url: String,
    /// Builds receivers; default: [`receivers::Receiver::new`].
    pub receiver_factory: Option<ReceiverFactory>,
    /// Expired silences are kept this long (default 120h).
    pub silence_retention: Duration,
    /// Alert history is kept this long (default 30 days).
    pub history_retention: Duration,
    /// How often resolved alerts, expired silences and notification log
    /// entries are collected (default 1m).
    pub maintenance_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::System,
            external_url: String::new(),
            receiver_factory: None,
            silence_retention: silence::DEFAULT_RETENTION,
            history_retention: Duration::from_secs(30 * 86400),
            maintenance_interval: Duration::from_secs(60),
        }
    }
}

/// The running Alertmanager.
pub struct Alertmanager {
    inner: Arc<Inner>,
    factory: ReceiverFactory,
}

/// Matches a file name against a glob of `*` and `?`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Reads the template files the configuration's globs name, sorted by path
/// within each glob (like Go's `filepath.Glob`).
pub fn read_templates(config: &Config) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for pattern in &config.templates {
        let full = config.base_dir.join(pattern);
        let dir = full
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let file_pat = full
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("")
            .to_string();
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(Error::TemplateGlob(pattern.clone()));
        }
        if !file_pat.contains(['*', '?']) {
            let text = std::fs::read_to_string(&full).map_err(|source| Error::TemplateFile {
                path: full.display().to_string(),
                source,
            })?;
            out.push((full.display().to_string(), text));
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // A glob matching nothing is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::TemplateFile {
                    path: dir.display().to_string(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| glob_match(file_pat.as_bytes(), f.as_bytes()))
            })
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|source| Error::TemplateFile {
                path: p.display().to_string(),
                source,
            })?;
            out.push((p.display().to_string(), text));
        }
    }
    Ok(out)
}

fn build_runtime(config: Config, factory: &ReceiverFactory) -> Result<Runtime, Error> {
    let templates = Arc::new(Templates::with_user(&read_templates(&config)?)?);
    let mut receivers = HashMap::new();
    for rc in &config.receivers {
        let r = factory(rc, &config.global.receivers, &templates)?;
        receivers.insert(rc.name.clone(), r);
    }
    let route = config::Route::build(&config.route);
    Ok(Runtime {
        config,
        route,
        receivers,
        generation: tokio::sync::watch::Sender::new(false),
    })
}

impl Alertmanager {
    /// Starts an Alertmanager with default [`Options`]. Must be called
    /// within a tokio runtime.
    pub fn new(
        config: Config,
        data_dir: &Path,
        registry: &mut Registry,
    ) -> Result<Arc<Alertmanager>, Error> {
        Alertmanager::with_options(config, data_dir, registry, Options::default())
    }

    pub fn with_options(
        config: Config,
        data_dir: &Path,
        registry: &mut Registry,
        opts: Options,
    ) -> Result<Arc<Alertmanager>, Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let factory: ReceiverFactory = match opts.receiver_factory.clone() {
            Some(f) => f,
            None => {
                let rm = ReceiverMetrics::new(registry);
                Arc::new(
                    move |rc: &ReceiverConfig, g: &GlobalConfig, t: &Arc<Templates>| {
                        let r = receivers::Receiver::new(rc, g, t.clone(), &rm)?;
                        Ok(Arc::new(r) as Arc<dyn Notify>)
                    },
                )
            }
        };
        let metrics = metrics::Metrics::new(registry);
        let runtime = build_runtime(config, &factory)?;
        let now = opts.clock.now();
        let silences = Silences::open(
            Some(&data_dir.join("silences.json")),
            opts.silence_retention,
            opts.clock.clone(),
        )?;
        let nflog = nflog::NotificationLog::open(Some(&data_dir.join("nflog.jsonl")), now)?;
        let history = Arc::new(History::open(&data_dir.join("history"))?);
        let inner = Arc::new(Inner::new(
            opts.clock.clone(),
            opts.external_url.clone(),
            runtime,
            silences,
            nflog,
            history,
            opts.history_retention,
            metrics,
        ));
        inner.spawn(inner.clone().watch_silences());
        let maint = inner.clone();
        let every = opts.maintenance_interval;
        inner.spawn(async move {
            let mut shutdown = maint.shutdown.subscribe();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => maint.maintenance(),
                    _ = shutdown.wait_for(|v| *v) => return,
                }
            }
        });
        Ok(Arc::new(Alertmanager { inner, factory }))
    }

    /// Stores and routes alerts (what the rule manager and
    /// `POST /api/v2/alerts` call). Alerts without `endsAt` resolve after
    /// `resolve_timeout` unless re-sent. Returns the invalid ones, which are
    /// not stored; valid ones are stored regardless.
    pub fn put_alerts(&self, alerts: Vec<Alert>) -> Vec<(Alert, InvalidAlert)> {
        self.inner.put_alerts(alerts)
    }

    /// Applies a new configuration: receivers are rebuilt and every alert
    /// is re-routed into new groups; silences, the notification log and
    /// alerts are kept (so nothing already notified is sent again). On
    /// error the old configuration stays.
    pub fn reload(&self, config: Config) -> Result<(), Error> {
        let rt = build_runtime(config, &self.factory)?;
        self.inner.install(rt);
        Ok(())
    }

    /// Stops every task; in-flight notifications are abandoned.
    pub async fn stop(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.runtime.read().generation.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.inner_tasks());
        while tasks.join_next().await.is_some() {}
    }

    fn inner_tasks(&self) -> parking_lot::MutexGuard<'_, tokio::task::JoinSet<()>> {
        self.inner.tasks()
    }

    pub fn silences(&self) -> &Silences {
        &self.inner.silences
    }

    /// The alert history (the rule manager records state changes here).
    pub fn history(&self) -> &Arc<History> {
        &self.inner.history
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        self.inner.runtime.read().config.clone()
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_file_names() {
        assert!(glob_match(b"*.tmpl", b"a.tmpl"));
        assert!(glob_match(b"*.tmpl", b".tmpl"));
        assert!(!glob_match(b"*.tmpl", b"a.tmpl.bak"));
        assert!(glob_match(b"a?c*", b"abcdef"));
        assert!(!glob_match(b"a?c", b"ac"));
    }

    #[tokio::test]
    async fn starts_with_real_receivers_and_template_globs() {
        let dir = tempfile::tempdir().unwrap();
        let tdir = dir.path().join("templates");
        std::fs::create_dir_all(&tdir).unwrap();
        std::fs::write(tdir.join("b.tmpl"), r#"{{ define "b" }}B{{ end }}"#).unwrap();
        std::fs::write(tdir.join("a.tmpl"), r#"{{ define "a" }}A{{ end }}"#).unwrap();
        std::fs::write(tdir.join("notes.txt"), "not a template").unwrap();
        let cfg_path = dir.path().join("am.yml");
        std::fs::write(
            &cfg_path,
            "route: {receiver: hook}\n\
             receivers: [{name: hook, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}]\n\
             templates: ['templates/*.tmpl']\n",
        )
        .unwrap();
        let config = Config::load(&cfg_path).unwrap();
        let files = read_templates(&config).unwrap();
        let names: Vec<&str> = files
            .iter()
            .map(|(p, _)| p.rsplit('/').next().unwrap_or(""))
            .collect();
        assert_eq!(names, vec!["a.tmpl", "b.tmpl"]);

        let mut registry = Registry::default();
        let am = Alertmanager::new(config, &dir.path().join("data"), &mut registry).unwrap();
        assert!(dir.path().join("data/history").is_dir());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for name in [
            "alertmanager_alerts_invalid_total 0",
            "alertmanager_dispatcher_aggregation_groups 0",
            "alertmanager_nflog_entries 0",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
        // A reload with a missing template file is refused.
        let bad = Config::parse(
            "route: {receiver: hook}\nreceivers: [{name: hook}]\ntemplates: ['/nonexistent/x.tmpl']\n",
            "am.yml",
        )
        .unwrap();
        assert!(matches!(am.reload(bad), Err(Error::TemplateFile { .. })));
        am.stop().await;
    }
}
