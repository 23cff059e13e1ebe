//! Self-monitoring: every interval Silt renders its own `/metrics`, parses
//! the text as a scraper would, and appends the samples to its own database
//! with `job="silt"` and `instance="<listen address>"`, plus the synthetic
//! `up`, `scrape_duration_seconds` and `scrape_samples_scraped` series.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Db, Label, Labels, MetricMetadata, Sample, SeriesSamples, WriteBatch};
use tokio::sync::watch;

use crate::exposition::{self, Exposition};
use crate::server::Registries;

/// The `job` label of self-scraped series.
pub const JOB: &str = "silt";

/// Builds the batch a scrape at `now_ms` would store. Target labels win
/// over scraped ones; a scraped `job` or `instance` is kept as
/// `exported_job` / `exported_instance` (Prometheus's `honor_labels: false`).
/// Samples whose labels are unusable are skipped and counted in the result.
pub fn to_batch(expo: &Exposition, now_ms: i64, instance: &str) -> (WriteBatch, usize) {
    let mut batch = WriteBatch::default();
    let mut skipped = 0;
    for s in &expo.samples {
        let mut pairs = Vec::with_capacity(s.labels.len() + 3);
        pairs.push(Label::new(engine::METRIC_NAME, s.name.as_str()));
        for (name, value) in &s.labels {
            let label = match name.as_str() {
                "job" | "instance" => Label::new(format!("exported_{name}"), value.as_str()),
                _ => Label::new(name.as_str(), value.as_str()),
            };
            pairs.push(label);
        }
        pairs.push(Label::new("job", JOB));
        pairs.push(Label::new("instance", instance));
        match Labels::from_pairs(pairs) {
            Ok(labels) => batch.series.push(SeriesSamples::new(
                labels,
                vec![Sample::new(s.timestamp_ms.unwrap_or(now_ms), s.value)],
            )),
            Err(_) => skipped += 1,
        }
    }
    batch.metadata = expo
        .metadata
        .values()
        .cloned()
        .collect::<Vec<MetricMetadata>>();
    (batch, skipped)
}

/// The series a scraper adds about the scrape itself.
fn scrape_series(
    instance: &str,
    now_ms: i64,
    up: bool,
    duration: Duration,
    scraped: usize,
) -> Vec<SeriesSamples> {
    [
        ("up", if up { 1.0 } else { 0.0 }),
        ("scrape_duration_seconds", duration.as_secs_f64()),
        ("scrape_samples_scraped", scraped as f64),
    ]
    .into_iter()
    .map(|(name, v)| {
        SeriesSamples::new(
            Labels::new(&[("__name__", name), ("job", JOB), ("instance", instance)]),
            vec![Sample::new(now_ms, v)],
        )
    })
    .collect()
}

/// Scrapes once and stores the result. Returns how many samples were stored.
pub async fn scrape_once(
    db: &Arc<Db>,
    registries: &Registries,
    instance: &str,
) -> Result<usize, engine::AppendError> {
    let start = Instant::now();
    let now = crate::config::unix_ms_now();
    let text = registries.encode();
    let (mut batch, up, scraped) = match exposition::parse(&text) {
        Ok(expo) => {
            let (batch, skipped) = to_batch(&expo, now, instance);
            if skipped > 0 {
                tracing::warn!(skipped, "self-scrape skipped samples with invalid labels");
            }
            let n = batch.series.len();
            (batch, true, n)
        }
        Err(e) => {
            tracing::warn!("self-scrape could not parse /metrics: {e}");
            (WriteBatch::default(), false, 0)
        }
    };
    batch
        .series
        .extend(scrape_series(instance, now, up, start.elapsed(), scraped));
    let n = batch.num_samples();
    db.append(&batch)?.wait().await?;
    Ok(n)
}

/// Scrapes every `interval` (the first time at once) until `stop` turns true.
pub async fn run(
    db: Arc<Db>,
    registries: Arc<Registries>,
    instance: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match scrape_once(&db, &registries, &instance).await {
            Ok(n) => tracing::debug!(samples = n, "self-scrape stored"),
            Err(e) => tracing::warn!("self-scrape could not store its samples: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_has_target_labels_and_metadata() {
        let expo = exposition::parse(
            "# TYPE a counter\n# HELP a Things.\na_total{job=\"x\",k=\"v\"} 3\nb{instance=\"i\"} 1 1000\nc{e=\"\"} 2\n",
        )
        .unwrap();
        let (batch, skipped) = to_batch(&expo, 5000, "127.0.0.1:9300");
        assert_eq!(skipped, 0);
        let a = &batch.series[0];
        assert_eq!(a.labels.get("__name__"), Some("a_total"));
        assert_eq!(a.labels.get("job"), Some("silt"));
        assert_eq!(a.labels.get("exported_job"), Some("x"));
        assert_eq!(a.labels.get("instance"), Some("127.0.0.1:9300"));
        assert_eq!(a.labels.get("k"), Some("v"));
        assert_eq!(a.samples, vec![Sample::new(5000, 3.0)]);
        let b = &batch.series[1];
        assert_eq!(b.labels.get("exported_instance"), Some("i"));
        assert_eq!(b.samples, vec![Sample::new(1000, 1.0)]);
        // Empty label values are dropped, as in Prometheus.
        assert_eq!(batch.series[2].labels.get("e"), None);
        assert_eq!(batch.metadata.len(), 1);
        assert_eq!(batch.metadata[0].metric_family, "a");
        assert_eq!(batch.metadata[0].help, "Things.");
    }

    #[test]
    fn scrape_series_are_up_duration_and_count() {
        let s = scrape_series("i:1", 7, true, Duration::from_millis(5), 42);
        let names: Vec<_> = s
            .iter()
            .map(|s| s.labels.metric_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["up", "scrape_duration_seconds", "scrape_samples_scraped"]
        );
        assert_eq!(s[0].samples[0].v, 1.0);
        assert_eq!(s[2].samples[0].v, 42.0);
        assert!(
            s.iter()
                .all(|s| s.labels.get("job") == Some("silt") && s.samples[0].t == 7)
        );
    }
}
