//! Alert history: a queryable, append-only log of alert state changes
//! (recorded by the rule manager) and of notifications sent, failed,
//! silenced and inhibited (recorded by the dispatcher).
//!
//! On disk: one JSON-lines segment per UTC day, `<dir>/YYYY-MM-DD.jsonl`,
//! one [`HistoryEvent`] per line. [`History::retain`] deletes whole days;
//! [`History::query`] reads the days a time range touches. A torn last line
//! is skipped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::matchers::{Matcher, matches_all};
use crate::types::LabelSet;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("alert history {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An alerting rule's alert changed state (`from` → `to`:
    /// inactive/pending/firing/resolved).
    StateChange,
    NotificationSent,
    NotificationFailed,
    /// The alert was held back by a silence at a flush (`silenced_by`).
    Silenced,
    /// The alert was held back by an inhibiting alert (`inhibited_by`).
    Inhibited,
}

/// One history record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub time: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The alert's labels.
    pub labels: LabelSet,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "groupKey")]
    pub group_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Alert status in the notification ("firing"/"resolved").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "silencedBy")]
    pub silenced_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "inhibitedBy")]
    pub inhibited_by: Vec<String>,
}

impl HistoryEvent {
    /// An event with only the common fields set.
    pub fn new(time: DateTime<Utc>, kind: EventKind, labels: LabelSet) -> HistoryEvent {
        let fingerprint = crate::types::Fingerprint::of(&labels).to_string();
        HistoryEvent {
            time,
            kind,
            labels,
            fingerprint,
            from: None,
            to: None,
            value: None,
            receiver: None,
            group_key: None,
            reason: None,
            status: None,
            error: None,
            silenced_by: Vec::new(),
            inhibited_by: Vec::new(),
        }
    }

    /// A rule manager's state change (`from`/`to` as Prometheus names the
    /// states: "inactive", "pending", "firing"; or "resolved").
    pub fn state_change(
        time: DateTime<Utc>,
        labels: LabelSet,
        from: &str,
        to: &str,
        value: Option<f64>,
    ) -> HistoryEvent {
        let mut e = HistoryEvent::new(time, EventKind::StateChange, labels);
        e.from = Some(from.to_string());
        e.to = Some(to.to_string());
        e.value = value;
        e
    }
}

/// A history query: `[start, end]`, optionally one alert name and label
/// matchers (all must match), at most `limit` events (oldest first).
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub alertname: Option<String>,
    pub matchers: Vec<Matcher>,
    pub limit: usize,
}

struct Current {
    day: NaiveDate,
    file: File,
}

pub struct History {
    dir: PathBuf,
    current: Mutex<Option<Current>>,
}

fn day_of_file(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".jsonl")?;
    NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
}

impl History {
    /// Opens (creating) the history directory.
    pub fn open(dir: &Path) -> Result<History, HistoryError> {
        std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(History {
            dir: dir.to_path_buf(),
            current: Mutex::new(None),
        })
    }

    fn segment(&self, day: NaiveDate) -> PathBuf {
        self.dir.join(format!("{}.jsonl", day.format("%Y-%m-%d")))
    }

    /// Appends one event to its day's segment.
    pub fn record(&self, event: &HistoryEvent) -> Result<(), HistoryError> {
        self.append(std::slice::from_ref(event))
    }

    /// Appends events, one write per run of events of the same day.
    pub fn append(&self, events: &[HistoryEvent]) -> Result<(), HistoryError> {
        let mut cur = self.current.lock();
        let mut i = 0;
        while i < events.len() {
            let day = events[i].time.date_naive();
            let mut buf = Vec::new();
            while i < events.len() && events[i].time.date_naive() == day {
                buf.extend(serde_json::to_vec(&events[i]).unwrap_or_default());
                buf.push(b'\n');
                i += 1;
            }
            let path = self.segment(day);
            let io = |source| HistoryError::Io {
                path: path.display().to_string(),
                source,
            };
            if cur.as_ref().is_none_or(|c| c.day != day) {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io)?;
                *cur = Some(Current { day, file });
            }
            if let Some(c) = cur.as_mut() {
                c.file.write_all(&buf).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Records events, logging (not returning) failures: history must
    /// never hold up notifications.
    pub fn record_all(&self, events: &[HistoryEvent]) {
        if let Err(err) = self.append(events) {
            tracing::warn!(error = %err, "recording alert history");
        }
    }

    fn days(&self) -> Result<Vec<NaiveDate>, HistoryError> {
        let io = |source| HistoryError::Io {
            path: self.dir.display().to_string(),
            source,
        };
        let mut days = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if let Some(d) = entry.file_name().to_str().and_then(day_of_file) {
                days.push(d);
            }
        }
        days.sort();
        Ok(days)
    }

    /// Events in `[q.start, q.end]` matching the query, oldest first.
    pub fn query(&self, q: &HistoryQuery) -> Result<Vec<HistoryEvent>, HistoryError> {
        let (first, last) = (q.start.date_naive(), q.end.date_naive());
        let mut out = Vec::new();
        for day in self
            .days()?
            .into_iter()
            .filter(|d| *d >= first && *d <= last)
        {
            let path = self.segment(day);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(HistoryError::Io {
                        path: path.display().to_string(),
                        source,
                    });
                }
            };
            let mut day_events = Vec::new();
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                let Ok(e) = serde_json::from_str::<HistoryEvent>(&line) else {
                    continue;
                };
                if e.time < q.start || e.time > q.end {
                    continue;
                }
                if let Some(name) = &q.alertname
                    && e.labels.get("alertname") != Some(name)
                {
                    continue;
                }
                if !matches_all(&q.matchers, &e.labels) {
                    continue;
                }
                day_events.push(e);
            }
            day_events.sort_by_key(|e| e.time);
            out.extend(day_events);
            if out.len() >= q.limit {
                out.truncate(q.limit);
                break;
            }
        }
        Ok(out)
    }

    /// Deletes the segments of days that ended before `older_than`;
    /// returns how many.
    pub fn retain(&self, older_than: DateTime<Utc>) -> Result<usize, HistoryError> {
        let cutoff = older_than.date_naive();
        let mut removed = 0;
        let mut cur = self.current.lock();
        for day in self.days()? {
            if day < cutoff {
                if cur.as_ref().is_some_and(|c| c.day == day) {
                    *cur = None;
                }
                let path = self.segment(day);
                std::fs::remove_file(&path).map_err(|source| HistoryError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchers::parse_matchers;
    use chrono::TimeZone;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn records_queries_and_retains_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let d1 = Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap();
        let d2 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
        h.record(&HistoryEvent::state_change(
            d1,
            ls(&[("alertname", "A"), ("env", "prod")]),
            "pending",
            "firing",
            Some(1.0),
        ))
        .unwrap();
        h.record(&HistoryEvent::state_change(
            d2,
            ls(&[("alertname", "B"), ("env", "dev")]),
            "inactive",
            "pending",
            None,
        ))
        .unwrap();
        let mut sent = HistoryEvent::new(
            d2,
            EventKind::NotificationSent,
            ls(&[("alertname", "A"), ("env", "prod")]),
        );
        sent.receiver = Some("team".into());
        h.record(&sent).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

        let all = HistoryQuery {
            start: d1 - chrono::Duration::hours(1),
            end: d2,
            alertname: None,
            matchers: vec![],
            limit: 100,
        };
        assert_eq!(h.query(&all).unwrap().len(), 3);
        let q = HistoryQuery {
            alertname: Some("A".into()),
            ..all.clone()
        };
        let got = h.query(&q).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].to.as_deref(), Some("firing"));
        assert_eq!(got[1].kind, EventKind::NotificationSent);
        let q = HistoryQuery {
            matchers: parse_matchers("env=dev").unwrap(),
            ..all.clone()
        };
        assert_eq!(h.query(&q).unwrap().len(), 1);
        let q = HistoryQuery {
            start: d2,
            ..all.clone()
        };
        assert_eq!(h.query(&q).unwrap().len(), 2);

        assert_eq!(h.retain(d2).unwrap(), 1);
        assert_eq!(h.query(&all).unwrap().len(), 2);
        // Recording keeps working after its day was cut.
        h.record(&sent).unwrap();
        assert_eq!(h.query(&all).unwrap().len(), 3);
    }
}
