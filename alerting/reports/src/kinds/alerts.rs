//! Alert summary from the built-in Alertmanager's alert history: what
//! fired, for how long, how long it took to resolve, which rules are the
//! noisiest, and how many notifications went out or failed.
//!
//! Incidents are rebuilt per alert (fingerprint) from the rule manager's
//! state changes: `→ firing` opens one, `firing →` anything closes it.
//! An incident open at the start of the period (closed without an opening
//! in it) starts at the period's start; one still open at the end is cut
//! there and counted as still firing. Time to resolve counts incidents
//! that both started and ended in the period. Noisiest: most firings, then
//! the longest total firing time. The report's filter applies to the
//! alerts' labels.

use std::collections::{BTreeMap, HashMap};

use alertmanager::{EventKind, HistoryEvent, HistoryQuery};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Ctx, Points, quantile};
use crate::doc::{
    Bar, Cell, Chart, ChartKind, Column, Document, Highlight, Line, Section, Table, Tone, Unit,
    format_value,
};
use crate::error::RunError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    pub started_at: DateTime<Utc>,
    /// `None`: still firing at the end of the period.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Within the period.
    pub duration_seconds: f64,
    pub started_before_period: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSummary {
    pub alertname: String,
    pub severity: String,
    pub firings: usize,
    /// Distinct alerts (label sets) that fired.
    pub alerts: usize,
    pub firing_seconds: f64,
    pub still_firing: usize,
    pub mean_time_to_resolve: Option<f64>,
    pub median_time_to_resolve: Option<f64>,
    pub max_time_to_resolve: Option<f64>,
    /// Went pending and back without firing.
    pub pending_only: usize,
    pub notifications_sent: usize,
    pub notifications_failed: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    /// Noisiest first.
    pub rules: Vec<RuleSummary>,
    /// Longest first.
    pub incidents: Vec<Incident>,
    pub firings: usize,
    pub firing_seconds: f64,
    pub mean_time_to_resolve: Option<f64>,
    pub notifications_sent: usize,
    pub notifications_failed: usize,
    /// Alerts firing at once, over the period.
    #[serde(skip)]
    pub concurrency: Points,
}

fn alertname(e: &HistoryEvent) -> String {
    e.labels.get("alertname").cloned().unwrap_or_default()
}

/// Rebuilds incidents and per-rule counts from history events (oldest
/// first) for the period `[start, end]`.
pub fn summarize(
    events: &[HistoryEvent],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> AlertSummary {
    let secs =
        |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
    let mut open: HashMap<&str, (DateTime<Utc>, bool)> = HashMap::new();
    let mut pending: HashMap<&str, bool> = HashMap::new();
    let mut incidents = Vec::new();
    let mut pending_only: HashMap<String, usize> = HashMap::new();
    let mut sent: HashMap<String, usize> = HashMap::new();
    let mut failed: HashMap<String, usize> = HashMap::new();
    let mut last_labels: HashMap<&str, &HistoryEvent> = HashMap::new();
    let incident =
        |e: &HistoryEvent, from: DateTime<Utc>, before: bool, to: Option<DateTime<Utc>>| Incident {
            alertname: alertname(e),
            labels: e.labels.clone(),
            started_at: from,
            resolved_at: to,
            duration_seconds: secs(from, to.unwrap_or(end)),
            started_before_period: before,
        };
    for e in events {
        match e.kind {
            EventKind::NotificationSent => *sent.entry(alertname(e)).or_default() += 1,
            EventKind::NotificationFailed => *failed.entry(alertname(e)).or_default() += 1,
            EventKind::StateChange => {
                let fp = e.fingerprint.as_str();
                last_labels.insert(fp, e);
                let to = e.to.as_deref().unwrap_or("");
                let from = e.from.as_deref().unwrap_or("");
                if to == "firing" {
                    pending.remove(fp);
                    open.entry(fp).or_insert((e.time, false));
                } else if to == "pending" {
                    pending.insert(fp, true);
                } else {
                    if let Some((t0, before)) = open.remove(fp) {
                        incidents.push(incident(e, t0, before, Some(e.time)));
                    } else if from == "firing" {
                        // Fired before the period began.
                        incidents.push(incident(e, start, true, Some(e.time)));
                    } else if pending.remove(fp).is_some() {
                        *pending_only.entry(alertname(e)).or_default() += 1;
                    }
                }
            }
            EventKind::Silenced | EventKind::Inhibited => {}
        }
    }
    for (fp, (t0, before)) in open {
        if let Some(e) = last_labels.get(fp) {
            incidents.push(incident(e, t0, before, None));
        }
    }
    incidents.sort_by(|a, b| {
        b.duration_seconds
            .total_cmp(&a.duration_seconds)
            .then(a.started_at.cmp(&b.started_at))
    });

    let mut by_rule: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in &incidents {
        by_rule.entry(i.alertname.clone()).or_default().push(i);
    }
    for name in pending_only.keys().chain(sent.keys()).chain(failed.keys()) {
        by_rule.entry(name.clone()).or_default();
    }
    let ttr_of = |list: &[&Incident]| -> Vec<f64> {
        list.iter()
            .filter(|i| !i.started_before_period && i.resolved_at.is_some())
            .map(|i| i.duration_seconds)
            .collect()
    };
    let mut rules: Vec<RuleSummary> = by_rule
        .iter()
        .map(|(name, list)| {
            let ttr = ttr_of(list);
            let mut severities: BTreeMap<&str, usize> = BTreeMap::new();
            for i in list {
                if let Some(s) = i.labels.get("severity") {
                    *severities.entry(s.as_str()).or_default() += 1;
                }
            }
            let mut fingerprints: Vec<&BTreeMap<String, String>> =
                list.iter().map(|i| &i.labels).collect();
            fingerprints.sort();
            fingerprints.dedup();
            RuleSummary {
                alertname: name.clone(),
                severity: severities
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_default(),
                firings: list.len(),
                alerts: fingerprints.len(),
                firing_seconds: list.iter().map(|i| i.duration_seconds).sum(),
                still_firing: list.iter().filter(|i| i.resolved_at.is_none()).count(),
                mean_time_to_resolve: super::mean(&ttr),
                median_time_to_resolve: quantile(&ttr, 0.5),
                max_time_to_resolve: ttr.iter().copied().reduce(f64::max),
                pending_only: pending_only.get(name).copied().unwrap_or(0),
                notifications_sent: sent.get(name).copied().unwrap_or(0),
                notifications_failed: failed.get(name).copied().unwrap_or(0),
            }
        })
        .collect();
    rules.sort_by(|a, b| {
        b.firings
            .cmp(&a.firings)
            .then(b.firing_seconds.total_cmp(&a.firing_seconds))
            .then(a.alertname.cmp(&b.alertname))
    });
    let all: Vec<&Incident> = incidents.iter().collect();
    let ttr = ttr_of(&all);
    let step_ms = ((end - start).num_milliseconds() / 200).max(1000);
    let mut concurrency = Vec::new();
    let mut t = start.timestamp_millis();
    while t <= end.timestamp_millis() {
        let n = incidents
            .iter()
            .filter(|i| {
                i.started_at.timestamp_millis() <= t
                    && i.resolved_at.is_none_or(|r| r.timestamp_millis() > t)
            })
            .count();
        concurrency.push((t, n as f64));
        t += step_ms;
    }
    AlertSummary {
        firings: incidents.len(),
        firing_seconds: incidents.iter().map(|i| i.duration_seconds).sum(),
        mean_time_to_resolve: super::mean(&ttr),
        notifications_sent: sent.values().sum(),
        notifications_failed: failed.values().sum(),
        rules,
        incidents,
        concurrency,
    }
}

pub(crate) fn compute(ctx: &Ctx<'_>) -> Result<AlertSummary, RunError> {
    let history = ctx.src.history.as_ref().ok_or(RunError::NoHistory)?;
    let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let (start, end) = (at(ctx.start_ms), at(ctx.end_ms));
    let events = history
        .query(&HistoryQuery {
            start,
            end,
            alertname: None,
            matchers: Vec::new(),
            limit: usize::MAX,
        })
        .map_err(|e| RunError::History(e.to_string()))?;
    let filter = &ctx.def.filter;
    let events: Vec<HistoryEvent> = events
        .into_iter()
        .filter(|e| filter.matches(|n| e.labels.get(n).cloned()))
        .collect();
    Ok(summarize(&events, start, end))
}

pub(crate) fn document(ctx: &Ctx<'_>, r: &AlertSummary) -> Document {
    let top = ctx.def.alerts.top;
    let mut doc = super::new_document(ctx, serde_json::to_value(r).unwrap_or_default());
    let still: usize = r.rules.iter().map(|x| x.still_firing).sum();
    doc.highlights = vec![
        Highlight {
            label: "alerts fired".into(),
            value: r.firings.to_string(),
            tone: if r.firings == 0 {
                Tone::Good
            } else {
                Tone::Neutral
            },
        },
        Highlight {
            label: "rules that fired".into(),
            value: r.rules.iter().filter(|x| x.firings > 0).count().to_string(),
            tone: Tone::Neutral,
        },
        Highlight {
            label: "mean time to resolve".into(),
            value: r
                .mean_time_to_resolve
                .map_or("—".into(), |s| format_value(Unit::Seconds, s)),
            tone: Tone::Neutral,
        },
        Highlight {
            label: "still firing".into(),
            value: still.to_string(),
            tone: if still == 0 { Tone::Good } else { Tone::Warn },
        },
        Highlight {
            label: "notifications failed".into(),
            value: r.notifications_failed.to_string(),
            tone: if r.notifications_failed == 0 {
                Tone::Good
            } else {
                Tone::Bad
            },
        },
    ];
    let noisiest: Vec<&RuleSummary> = r.rules.iter().filter(|x| x.firings > 0).take(top).collect();
    let overview = Section::new("Overview")
        .chart(Chart {
            title: "Alerts firing at once".into(),
            unit: Unit::Count,
            kind: ChartKind::Line {
                lines: vec![Line {
                    name: "firing".into(),
                    points: r.concurrency.clone(),
                    dashed: false,
                }],
            },
            threshold: None,
        })
        .chart(Chart {
            title: "Noisiest rules (firings)".into(),
            unit: Unit::Count,
            kind: ChartKind::Bar {
                bars: noisiest
                    .iter()
                    .map(|x| Bar {
                        label: x.alertname.clone(),
                        value: x.firings as f64,
                        tone: Tone::Neutral,
                    })
                    .collect(),
            },
            threshold: None,
        });
    let rules = Section::new("Rules").table(Table {
        id: "rules".into(),
        title: "Rules, noisiest first".into(),
        columns: vec![
            Column::text("Rule"),
            Column::text("Severity"),
            Column::num("Firings", Unit::Count),
            Column::num("Alerts", Unit::Count),
            Column::num("Firing time", Unit::Seconds),
            Column::num("Mean to resolve", Unit::Seconds),
            Column::num("Median to resolve", Unit::Seconds),
            Column::num("Longest", Unit::Seconds),
            Column::num("Still firing", Unit::Count),
            Column::num("Pending only", Unit::Count),
            Column::num("Notifications", Unit::Count),
            Column::num("Failed", Unit::Count),
        ],
        rows: r
            .rules
            .iter()
            .map(|x| {
                vec![
                    Cell::text(&x.alertname),
                    Cell::text(&x.severity),
                    Cell::num(x.firings as f64),
                    Cell::num(x.alerts as f64),
                    Cell::num(x.firing_seconds),
                    Cell::opt(x.mean_time_to_resolve),
                    Cell::opt(x.median_time_to_resolve),
                    Cell::opt(x.max_time_to_resolve),
                    Cell::num(x.still_firing as f64),
                    Cell::num(x.pending_only as f64),
                    Cell::num(x.notifications_sent as f64),
                    Cell::num(x.notifications_failed as f64),
                ]
            })
            .collect(),
        empty: "Nothing fired in the period.".into(),
    });
    let fmt_labels = |l: &BTreeMap<String, String>| {
        l.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let longest = Section::new("Longest incidents").table(Table {
        id: "incidents".into(),
        title: format!("The {} longest incidents", r.incidents.len().min(top * 2)),
        columns: vec![
            Column::text("Rule"),
            Column::text("Labels"),
            Column::text("Started"),
            Column::text("Resolved"),
            Column::num("Duration", Unit::Seconds),
        ],
        rows: r
            .incidents
            .iter()
            .take(top * 2)
            .map(|i| {
                vec![
                    Cell::text(&i.alertname),
                    Cell::text(fmt_labels(&i.labels)),
                    Cell::text(if i.started_before_period {
                        format!("before {}", i.started_at.format("%Y-%m-%d %H:%M"))
                    } else {
                        i.started_at.format("%Y-%m-%d %H:%M").to_string()
                    }),
                    Cell::text(i.resolved_at.map_or("still firing".into(), |t| {
                        t.format("%Y-%m-%d %H:%M").to_string()
                    })),
                    Cell::num(i.duration_seconds),
                ]
            })
            .collect(),
        empty: "No incidents.".into(),
    });
    doc.sections = vec![overview, rules, longest];
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ev(min: i64, name: &str, inst: &str, from: &str, to: &str) -> HistoryEvent {
        let t =
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(min);
        let labels = [
            ("alertname", name),
            ("instance", inst),
            ("severity", "page"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        HistoryEvent::state_change(t, labels, from, to, None)
    }

    #[test]
    fn incidents_and_time_to_resolve() {
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let end = start + chrono::Duration::hours(10);
        let mut sent = HistoryEvent::new(
            start,
            EventKind::NotificationSent,
            ev(0, "Disk", "a", "", "").labels,
        );
        sent.receiver = Some("ops".into());
        let events = vec![
            // Fired before the period, resolved 30 minutes in.
            ev(30, "Disk", "a", "firing", "inactive"),
            ev(60, "Down", "a", "pending", "firing"),
            ev(70, "Down", "b", "inactive", "pending"),
            ev(75, "Down", "b", "pending", "inactive"),
            ev(80, "Down", "a", "firing", "inactive"),
            ev(100, "Down", "a", "pending", "firing"),
            ev(160, "Down", "a", "firing", "inactive"),
            // Still firing at the end.
            ev(540, "Disk", "b", "pending", "firing"),
            sent,
        ];
        let s = summarize(&events, start, end);
        assert_eq!(s.firings, 4);
        assert_eq!(s.notifications_sent, 1);
        // Two firings each: the longer total firing time ranks first.
        assert_eq!(s.rules[0].alertname, "Disk");
        let down = &s.rules[1];
        assert_eq!(down.alertname, "Down");
        assert_eq!(down.firings, 2);
        assert_eq!(down.alerts, 1);
        assert_eq!(down.pending_only, 1);
        assert_eq!(down.firing_seconds, 80.0 * 60.0);
        assert_eq!(down.mean_time_to_resolve, Some(40.0 * 60.0));
        assert_eq!(down.max_time_to_resolve, Some(60.0 * 60.0));
        assert_eq!(down.severity, "page");
        let disk = &s.rules[0];
        assert_eq!(disk.firings, 2);
        assert_eq!(disk.still_firing, 1);
        // Neither Disk incident both started and ended in the period.
        assert_eq!(disk.mean_time_to_resolve, None);
        assert_eq!(disk.firing_seconds, 30.0 * 60.0 + 60.0 * 60.0);
        assert_eq!(disk.notifications_sent, 1);
        assert!(s.incidents[0].duration_seconds >= s.incidents[1].duration_seconds);
        // Two alerts fire at once between minutes 60 and 80? No: Disk/a
        // ended at 30. At minute 545 one fires.
        let at = |min: i64| {
            let t = (start + chrono::Duration::minutes(min)).timestamp_millis();
            s.concurrency.iter().rev().find(|p| p.0 <= t).map(|p| p.1)
        };
        assert_eq!(at(10), Some(1.0));
        assert_eq!(at(65), Some(1.0));
        assert_eq!(at(90), Some(0.0));
        assert_eq!(at(599), Some(1.0));
    }
}
