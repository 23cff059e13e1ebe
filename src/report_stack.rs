//! Wires the reports service (crate `reports`) into the binary: loads the
//! report definitions (files and inline), starts the scheduler over the
//! engine with the built-in Alertmanager's alert history and SMTP
//! settings, raises `SiltReportFailed` in that Alertmanager when a report
//! fails, serves `/api/v1/reports...`, and is what `silt report run NAME`
//! talks to.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alertmanager::Alertmanager;
use anyhow::Context;
use axum::Router;
use engine::Db;
use query::eval::QueryOptions;
use reports::{AlertmanagerNotifier, ReportDef, Reports, RunRecord, RunStatus, Sources};

/// Reads and validates report definitions: every file's `reports:` list,
/// then the inline ones, as one list (names unique across all).
pub fn load_definitions(
    files: &[PathBuf],
    inline: &[serde_yaml::Value],
) -> anyhow::Result<Vec<ReportDef>> {
    let mut values = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading reports file {}", f.display()))?;
        values.extend(reports::config::values(&text, &f.display().to_string())?);
    }
    values.extend(inline.iter().cloned());
    Ok(reports::config::from_values(&values)?)
}

/// The running report service.
pub struct ReportStack {
    reports: Arc<Reports>,
}

impl ReportStack {
    /// Starts the scheduler. `data_dir` is Silt's; runs go to
    /// `<data_dir>/reports`. With `am`, the alert summary reads its
    /// history, email uses its `global.smtp_*` and failures raise alerts
    /// in it. Must run within the tokio runtime.
    pub fn start(
        db: &Arc<Db>,
        definitions: Vec<ReportDef>,
        data_dir: &Path,
        external_url: &str,
        query: QueryOptions,
        am: Option<&Arc<Alertmanager>>,
    ) -> anyhow::Result<ReportStack> {
        let mut opts = reports::Options::new(data_dir.join("reports"));
        opts.external_url = external_url.to_string();
        if let Some(am) = am {
            opts.smtp = am.config().global.receivers;
            opts.notifier = Some(Arc::new(AlertmanagerNotifier::new(
                am.clone(),
                external_url.to_string(),
            )));
        }
        let sources = Sources {
            db: db.clone(),
            history: am.map(|a| a.history().clone()),
            query,
        };
        let n = definitions.len();
        let reports =
            Reports::new(definitions, sources, opts).context("starting the report service")?;
        reports.start();
        tracing::info!(reports = n, "report schedules started");
        Ok(ReportStack { reports })
    }

    /// Replaces the definitions and the SMTP defaults email uses (the
    /// reloaded Alertmanager's `global`); on error nothing changes.
    pub fn reload(
        &self,
        definitions: Vec<ReportDef>,
        smtp: alertmanager::receivers::GlobalConfig,
    ) -> anyhow::Result<()> {
        Ok(self.reports.update(definitions, smtp)?)
    }

    pub async fn stop(&self) {
        self.reports.stop().await;
    }

    /// `/api/v1/reports...`, to merge into the server's router.
    pub fn routes(&self) -> Router {
        reports::routes(self.reports.clone())
    }
}

/// `silt report run NAME`: asks the server at `base_url` to run the report
/// and prints the run; an error when the run failed.
pub async fn run_remote(base_url: &str, name: &str) -> anyhow::Result<RunRecord> {
    let rec = reports::client::run(base_url, name, Duration::from_secs(3600)).await?;
    println!(
        "report {} run {}: {} in {:.1}s (period {} to {})",
        rec.report,
        rec.id,
        match rec.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        },
        rec.duration_seconds,
        rec.period_start.format("%Y-%m-%d %H:%M"),
        rec.period_end.format("%Y-%m-%d %H:%M"),
    );
    for f in &rec.files {
        println!(
            "  {}/api/v1/reports/{}/runs/{}/{}",
            base_url.trim_end_matches('/'),
            rec.report,
            rec.id,
            f.name
        );
    }
    for d in &rec.deliveries {
        match &d.error {
            None => println!("  delivered: {} {}", d.target, d.detail),
            Some(e) => println!("  NOT delivered: {} {}: {e}", d.target, d.detail),
        }
    }
    if rec.status == RunStatus::Failed {
        anyhow::bail!(
            "report {name} failed: {}",
            rec.error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(rec)
}
