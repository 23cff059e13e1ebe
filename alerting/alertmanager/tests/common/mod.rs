//! Shared test harness: a recording receiver and an Alertmanager on paused
//! tokio time.

#![allow(dead_code)] // reason: each test binary uses a different subset

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alertmanager::receivers::{Notify, NotifyError};
use alertmanager::{Alert, Alertmanager, Clock, Config, LabelSet, Notification, Options};
use chrono::{DateTime, TimeZone, Utc};
use parking_lot::Mutex;

/// 2026-11-30 is a Monday.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap()
}

#[derive(Default, Clone)]
pub struct Log {
    pub sent: Arc<Mutex<Vec<Notification>>>,
    /// Receivers that fail while listed.
    pub failing: Arc<Mutex<Vec<String>>>,
    pub attempts: Arc<Mutex<Vec<String>>>,
}

impl Log {
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.sent.lock())
    }

    pub fn fail(&self, receiver: &str, on: bool) {
        let mut f = self.failing.lock();
        f.retain(|r| r != receiver);
        if on {
            f.push(receiver.to_string());
        }
    }
}

pub struct Recorder {
    name: String,
    log: Log,
    send_resolved: Arc<AtomicBool>,
}

impl Notify for Recorder {
    fn notify<'a>(
        &'a self,
        n: &'a Notification,
    ) -> Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>> {
        Box::pin(async move {
            self.log.attempts.lock().push(self.name.clone());
            if self.log.failing.lock().contains(&self.name) {
                return Err(NotifyError::RateLimited {
                    receiver: self.name.clone(),
                });
            }
            self.log.sent.lock().push(n.clone());
            Ok(())
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved.load(Ordering::Relaxed)
    }
}

pub fn options(clock: Clock, log: &Log) -> Options {
    let log = log.clone();
    Options {
        clock,
        external_url: "http://silt:9090".into(),
        receiver_factory: Some(Arc::new(move |rc, _g, _t| {
            Ok(Arc::new(Recorder {
                name: rc.name.clone(),
                log: log.clone(),
                send_resolved: Arc::new(AtomicBool::new(true)),
            }) as Arc<dyn Notify>)
        })),
        ..Options::default()
    }
}

pub fn start(yaml: &str, dir: &Path, clock: Clock, log: &Log) -> Arc<Alertmanager> {
    let config = Config::parse(yaml, "am.yml").unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    Alertmanager::with_options(config, dir, &mut registry, options(clock, log)).unwrap()
}

pub fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn alert(pairs: &[(&str, &str)], starts: DateTime<Utc>) -> Alert {
    Alert {
        labels: labels(pairs),
        annotations: LabelSet::new(),
        starts_at: starts,
        ends_at: None,
        generator_url: "http://silt/graph".into(),
        updated_at: starts,
        timeout: false,
    }
}

pub fn resolved(pairs: &[(&str, &str)], starts: DateTime<Utc>, ends: DateTime<Utc>) -> Alert {
    Alert {
        ends_at: Some(ends),
        ..alert(pairs, starts)
    }
}

/// Advances paused time to `secs` after the harness started.
pub async fn at(start: tokio::time::Instant, secs: u64) {
    tokio::time::sleep_until(start + Duration::from_secs(secs)).await;
    // Let woken tasks finish their work at this instant.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

pub fn names(ns: &[Notification]) -> Vec<Vec<String>> {
    ns.iter()
        .map(|n| {
            n.alerts
                .iter()
                .map(|a| a.labels.get("alertname").cloned().unwrap_or_default())
                .collect()
        })
        .collect()
}

pub fn labels_string(l: &LabelSet) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
