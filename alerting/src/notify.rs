//! Handing alerts over to Alertmanagers: the [`OutgoingAlert`] built from
//! a rule's alert instance (Prometheus's `SendAlerts`), the [`AlertSink`]
//! trait the binary wires to the built-in Alertmanager, and
//! [`ExternalAlertmanagers`], which POSTs batches to external ones exactly
//! as Prometheus's notifier does (`/api/v2/alerts`, a JSON array, a queue of
//! 10000 that drops the oldest, batches of 256, a 10 s timeout, no retry).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::{Condvar, Mutex};
use prometheus_client::registry::Registry;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::metrics::{Labels1, NotifierMetrics};
use crate::rule::{Alert, ns_to_datetime};

/// An alert as sent to an Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (`firedAt`, not `activeAt`).
    pub starts_at: DateTime<Utc>,
    /// Resolution time, or the lease (`validUntil`) of a firing alert.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
}

/// Where evaluated alerts go. `send` must not block (queue and return).
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<OutgoingAlert>);
}

/// An alert instance changing state (pending, firing, inactive), as seen
/// by one evaluation: what alert history records.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub time: DateTime<Utc>,
    /// The alert's labels (`alertname` included, external labels not).
    pub labels: BTreeMap<String, String>,
    pub from: crate::rule::AlertState,
    pub to: crate::rule::AlertState,
    /// The expression's value at the evaluation (none when it resolved).
    pub value: Option<f64>,
}

/// Told about every state change after each evaluation of an alerting
/// rule. Must not block.
pub trait StateObserver: Send + Sync {
    fn state_changes(&self, changes: Vec<StateChange>);
}

/// Sends to several sinks (e.g. the built-in and external Alertmanagers).
pub struct FanOut(pub Vec<Arc<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if let Some((last, rest)) = self.0.split_last() {
            for s in rest {
                s.send(alerts.clone());
            }
            last.send(alerts);
        }
    }
}

/// Turns alert instances of the rule with expression `expr` into
/// outgoing alerts: external labels are added where the alert has no such
/// label, `generatorURL` is `<external URL>/graph?g0.expr=...&g0.tab=1`.
pub fn to_outgoing(
    alerts: &[Alert],
    expr: &str,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
) -> Vec<OutgoingAlert> {
    let generator_url = format!("{external_url}{}", crate::template::table_link(expr));
    alerts
        .iter()
        .map(|a| {
            let mut labels: BTreeMap<String, String> = a
                .labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            for (k, v) in external_labels {
                labels.entry(k.clone()).or_insert_with(|| v.clone());
            }
            labels.retain(|_, v| !v.is_empty());
            OutgoingAlert {
                labels,
                annotations: a.annotations.clone(),
                starts_at: a
                    .fired_at
                    .map_or(DateTime::<Utc>::UNIX_EPOCH, ns_to_datetime),
                ends_at: a.resolved_at.or(a.valid_until).map(ns_to_datetime),
                generator_url: generator_url.clone(),
            }
        })
        .collect()
}

/// Go's `strfmt.DateTime` JSON form: RFC 3339 with milliseconds, `Z`.
pub fn format_millis(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One alert in Alertmanager's `PostableAlert` JSON shape.
struct Postable<'a>(&'a OutgoingAlert);

impl Serialize for Postable<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        if !a.annotations.is_empty() {
            m.serialize_entry("annotations", &a.annotations)?;
        }
        if let Some(e) = &a.ends_at {
            m.serialize_entry("endsAt", &format_millis(e))?;
        }
        m.serialize_entry("startsAt", &format_millis(&a.starts_at))?;
        if !a.generator_url.is_empty() {
            m.serialize_entry("generatorURL", &a.generator_url)?;
        }
        m.serialize_entry("labels", &a.labels)?;
        m.end()
    }
}

/// The JSON array body of `POST /api/v2/alerts`.
pub fn encode_alerts(alerts: &[OutgoingAlert]) -> Vec<u8> {
    let v: Vec<Postable<'_>> = alerts.iter().map(Postable).collect();
    // Maps of strings always serialise.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Settings of [`ExternalAlertmanagers`] (Prometheus's defaults).
#[derive(Debug, Clone)]
pub struct ExternalOptions {
    /// Alertmanager base URLs (`http://am:9093`, with any path prefix);
    /// alerts go to `<url>/api/v2/alerts`.
    pub urls: Vec<String>,
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub timeout: Duration,
    pub user_agent: String,
    /// Send what is queued before [`ExternalAlertmanagers::stop`] returns.
    pub drain_on_shutdown: bool,
}

impl ExternalOptions {
    pub fn new(urls: Vec<String>) -> ExternalOptions {
        ExternalOptions {
            urls,
            queue_capacity: 10_000,
            batch_size: 256,
            timeout: Duration::from_secs(10),
            user_agent: format!("Silt/{}", env!("CARGO_PKG_VERSION")),
            drain_on_shutdown: true,
        }
    }
}

/// The queue and state of one Alertmanager's send loop.
struct SendLoop {
    url: String,
    label: Labels1,
    queue: Mutex<LoopState>,
    wake: Condvar,
    opts: ExternalOptions,
    metrics: NotifierMetrics,
    agent: ureq::Agent,
}

struct LoopState {
    alerts: VecDeque<OutgoingAlert>,
    stopped: bool,
}

impl SendLoop {
    fn add(&self, alerts: &[OutgoingAlert]) {
        let cap = self.opts.queue_capacity;
        let mut q = self.queue.lock();
        if q.stopped {
            return;
        }
        let mut dropped = 0;
        let alerts = if alerts.len() > cap {
            dropped += alerts.len() - cap;
            &alerts[alerts.len() - cap..]
        } else {
            alerts
        };
        let over = (q.alerts.len() + alerts.len()).saturating_sub(cap);
        if over > 0 {
            dropped += over;
            q.alerts.drain(..over);
        }
        q.alerts.extend(alerts.iter().cloned());
        self.metrics
            .queue_length
            .get_or_create(&self.label)
            .set(q.alerts.len() as f64);
        drop(q);
        if dropped > 0 {
            tracing::warn!(alertmanager = %self.url, count = dropped, "alert notification queue full, dropping alerts");
            self.metrics
                .dropped
                .get_or_create(&self.label)
                .inc_by(dropped as u64);
        }
        self.wake.notify_one();
    }

    /// Takes the next batch; `None` once stopped and (when draining) empty.
    fn next_batch(&self) -> Option<Vec<OutgoingAlert>> {
        let mut q = self.queue.lock();
        loop {
            if !q.alerts.is_empty() && (!q.stopped || self.opts.drain_on_shutdown) {
                let n = q.alerts.len().min(self.opts.batch_size.max(1));
                let batch: Vec<OutgoingAlert> = q.alerts.drain(..n).collect();
                self.metrics
                    .queue_length
                    .get_or_create(&self.label)
                    .set(q.alerts.len() as f64);
                return Some(batch);
            }
            if q.stopped {
                let left = q.alerts.len();
                if left > 0 {
                    q.alerts.clear();
                    self.metrics
                        .dropped
                        .get_or_create(&self.label)
                        .inc_by(left as u64);
                }
                return None;
            }
            self.wake.wait(&mut q);
        }
    }

    fn run(&self) {
        while let Some(batch) = self.next_batch() {
            self.send_batch(&batch);
        }
    }

    fn send_batch(&self, batch: &[OutgoingAlert]) {
        let body = encode_alerts(batch);
        let begin = Instant::now();
        let result = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", &self.opts.user_agent)
            .send(&body[..]);
        let n = batch.len() as u64;
        let err = match result {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => Some(format!("bad response status {}", resp.status())),
            Err(e) => Some(e.to_string()),
        };
        match err {
            None => {
                self.metrics
                    .latency
                    .get_or_create(&self.label)
                    .observe(begin.elapsed().as_secs_f64());
                self.metrics.sent.get_or_create(&self.label).inc_by(n);
            }
            Some(e) => {
                tracing::error!(alertmanager = %self.url, count = n, error = %e, "error sending alerts");
                self.metrics.errors.get_or_create(&self.label).inc_by(n);
                self.metrics.dropped.get_or_create(&self.label).inc_by(n);
            }
        }
    }
}

/// Sends alerts to external Alertmanagers, one queue and thread each.
pub struct ExternalAlertmanagers {
    loops: Vec<Arc<SendLoop>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ExternalAlertmanagers {
    /// Starts one send loop per URL; metrics go into `registry`.
    pub fn new(opts: ExternalOptions, registry: &mut Registry) -> Arc<ExternalAlertmanagers> {
        Self::with_metrics(opts, NotifierMetrics::new(registry))
    }

    pub fn with_metrics(
        opts: ExternalOptions,
        metrics: NotifierMetrics,
    ) -> Arc<ExternalAlertmanagers> {
        metrics.queue_capacity.set(opts.queue_capacity as f64);
        metrics.alertmanagers.set(opts.urls.len() as f64);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut loops = Vec::new();
        let mut threads = Vec::new();
        for base in &opts.urls {
            let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
            let label = vec![("alertmanager".to_string(), url.clone())];
            for c in [&metrics.sent, &metrics.errors, &metrics.dropped] {
                let _ = c.get_or_create(&label);
            }
            let _ = metrics.queue_length.get_or_create(&label);
            let l = Arc::new(SendLoop {
                url,
                label,
                queue: Mutex::new(LoopState {
                    alerts: VecDeque::new(),
                    stopped: false,
                }),
                wake: Condvar::new(),
                opts: opts.clone(),
                metrics: metrics.clone(),
                agent: agent.clone(),
            });
            let runner = l.clone();
            match std::thread::Builder::new()
                .name("silt-notifier".into())
                .spawn(move || runner.run())
            {
                Ok(h) => threads.push(h),
                Err(e) => tracing::error!(error = %e, "cannot start notifier thread"),
            }
            loops.push(l);
        }
        Arc::new(ExternalAlertmanagers {
            loops,
            threads: Mutex::new(threads),
        })
    }

    /// Stops the send loops (sending what is queued first when
    /// `drain_on_shutdown`) and waits for them. Blocking.
    pub fn stop(&self) {
        for l in &self.loops {
            l.queue.lock().stopped = true;
            l.wake.notify_all();
        }
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }

    /// Alerts queued, per Alertmanager URL.
    pub fn queue_lengths(&self) -> Vec<(String, usize)> {
        self.loops
            .iter()
            .map(|l| (l.url.clone(), l.queue.lock().alerts.len()))
            .collect()
    }
}

impl AlertSink for ExternalAlertmanagers {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if alerts.is_empty() {
            return;
        }
        for l in &self.loops {
            l.add(&alerts);
        }
    }
}

impl Drop for ExternalAlertmanagers {
    fn drop(&mut self) {
        for l in &self.loops {
            l.queue.lock().stopped = true;
            l.wake.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> OutgoingAlert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), name.to_string());
        OutgoingAlert {
            labels,
            annotations: BTreeMap::new(),
            starts_at: DateTime::from_timestamp(1_787_306_400, 123_456_789).unwrap(),
            ends_at: Some(DateTime::from_timestamp(1_787_306_640, 0).unwrap()),
            generator_url: String::new(),
        }
    }

    #[test]
    fn json_matches_postable_alerts() {
        let body = String::from_utf8(encode_alerts(&[alert("X")])).unwrap();
        assert_eq!(
            body,
            r#"[{"endsAt":"2026-08-21T10:04:00.000Z","startsAt":"2026-08-21T10:00:00.123Z","labels":{"alertname":"X"}}]"#
        );
    }

    #[test]
    fn full_queue_drops_oldest() {
        let mut opts = ExternalOptions::new(vec![]);
        opts.queue_capacity = 3;
        let metrics = NotifierMetrics::unregistered();
        let l = SendLoop {
            url: "u".into(),
            label: vec![("alertmanager".into(), "u".into())],
            queue: Mutex::new(LoopState {
                alerts: VecDeque::new(),
                stopped: false,
            }),
            wake: Condvar::new(),
            opts,
            metrics: metrics.clone(),
            agent: ureq::Agent::new_with_defaults(),
        };
        l.add(&[alert("a"), alert("b")]);
        l.add(&[alert("c"), alert("d")]);
        let names: Vec<String> = l
            .queue
            .lock()
            .alerts
            .iter()
            .map(|a| a.labels["alertname"].clone())
            .collect();
        assert_eq!(names, ["b", "c", "d"]);
        assert_eq!(metrics.dropped.get_or_create(&l.label).get(), 1);
        l.add(&[alert("e"), alert("f"), alert("g"), alert("h")]);
        let names: Vec<String> = l
            .queue
            .lock()
            .alerts
            .iter()
            .map(|a| a.labels["alertname"].clone())
            .collect();
        assert_eq!(names, ["f", "g", "h"]);
        assert_eq!(metrics.dropped.get_or_create(&l.label).get(), 5);
    }
}
