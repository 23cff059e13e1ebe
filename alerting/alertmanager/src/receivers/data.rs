//! What an integration renders: the alerts it sends (after `send_resolved`
//! filtering and truncation), Alertmanager's template data for them, and
//! the Go time formats their payloads use.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use gotmpl::Value;
use serde_json::json;

use super::summary::Summary;
use crate::types::{Alert, LabelSet, Notification};

/// The alerts one integration sends for one notification, with the
/// common labels and annotations recomputed over them (as Alertmanager
/// computes its template data from the alerts it was handed).
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub n: &'a Notification,
    pub alerts: Vec<&'a Alert>,
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
}

impl<'a> View<'a> {
    /// All alerts of `n`, or only the firing ones when `send_resolved` is
    /// false.
    pub fn new(n: &'a Notification, send_resolved: bool) -> View<'a> {
        let alerts: Vec<&Alert> = n
            .alerts
            .iter()
            .filter(|a| send_resolved || !a.resolved_at(n.now))
            .collect();
        View::of(n, alerts)
    }

    pub fn of(n: &'a Notification, alerts: Vec<&'a Alert>) -> View<'a> {
        let (common_labels, common_annotations) = common(&alerts);
        View {
            n,
            alerts,
            common_labels,
            common_annotations,
        }
    }

    /// "firing" if any alert fires, else "resolved".
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| !a.resolved_at(self.n.now)) {
            "firing"
        } else {
            "resolved"
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &'a Alert> + '_ {
        self.alerts
            .iter()
            .copied()
            .filter(|a| !a.resolved_at(self.n.now))
    }

    pub fn resolved(&self) -> impl Iterator<Item = &'a Alert> + '_ {
        self.alerts
            .iter()
            .copied()
            .filter(|a| a.resolved_at(self.n.now))
    }

    /// `<externalURL>/#/alerts?receiver=<urlquery receiver>`.
    pub fn alertmanager_url(&self) -> String {
        format!(
            "{}/#/alerts?receiver={}",
            self.n.external_url,
            gotmpl::query_escape(&quote_meta(&self.n.receiver))
        )
    }
}

fn common(alerts: &[&Alert]) -> (LabelSet, LabelSet) {
    let Some(first) = alerts.first() else {
        return (LabelSet::new(), LabelSet::new());
    };
    let mut labels = first.labels.clone();
    let mut annotations = first.annotations.clone();
    for a in &alerts[1..] {
        labels.retain(|k, v| a.labels.get(k) == Some(v));
        annotations.retain(|k, v| a.annotations.get(k) == Some(v));
    }
    (labels, annotations)
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name
/// in template data and webhook payloads.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `time.RFC3339Nano` in UTC: fraction with trailing zeros trimmed,
/// none when zero. `None` is Go's zero time.
pub fn go_rfc3339(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        fraction(t.nanosecond())
    )
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{} +0000 UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        fraction(t.nanosecond())
    )
}

fn fraction(nanos: u32) -> String {
    // chrono represents a leap second as nanos >= 1e9; Go has none.
    let nanos = nanos % 1_000_000_000;
    if nanos == 0 {
        return String::new();
    }
    let s = format!(".{nanos:09}");
    s.trim_end_matches('0').to_string()
}

fn kv_value(kv: &LabelSet) -> Value {
    Value::Map(
        kv.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn alert_value(a: &Alert, now: DateTime<Utc>) -> Value {
    let mut m = BTreeMap::new();
    m.insert("Status".to_string(), Value::from(a.status_at(now).as_str()));
    m.insert("Labels".to_string(), kv_value(&a.labels));
    m.insert("Annotations".to_string(), kv_value(&a.annotations));
    m.insert(
        "StartsAt".to_string(),
        Value::String(go_time_string(Some(a.starts_at))),
    );
    m.insert(
        "EndsAt".to_string(),
        Value::String(go_time_string(a.ends_at)),
    );
    m.insert(
        "GeneratorURL".to_string(),
        Value::String(a.generator_url.clone()),
    );
    m.insert(
        "Fingerprint".to_string(),
        Value::String(a.fingerprint().to_string()),
    );
    Value::Map(m)
}

/// Alertmanager's template data for all alerts of `n`: `Receiver`,
/// `Status`, `Alerts` (each `Status`, `Labels`, `Annotations`, `StartsAt`,
/// `EndsAt`, `GeneratorURL`, `Fingerprint`), `GroupLabels`, `CommonLabels`,
/// `CommonAnnotations`, `RouteLabels`, `ExternalURL`, `NotificationReason`,
/// plus `GroupKey` and Silt's `Summary` (the smart aggregation, see
/// [`Summary`]). Times print as Go's `time.Time` does.
pub fn template_data(n: &Notification) -> Value {
    view_data(&View::new(n, true))
}

pub(crate) fn view_data(v: &View<'_>) -> Value {
    let n = v.n;
    let mut m = BTreeMap::new();
    m.insert(
        "Receiver".to_string(),
        Value::String(quote_meta(&n.receiver)),
    );
    m.insert("Status".to_string(), Value::from(v.status()));
    m.insert(
        "Alerts".to_string(),
        Value::List(v.alerts.iter().map(|a| alert_value(a, n.now)).collect()),
    );
    m.insert("GroupLabels".to_string(), kv_value(&n.group_labels));
    m.insert("CommonLabels".to_string(), kv_value(&v.common_labels));
    m.insert(
        "CommonAnnotations".to_string(),
        kv_value(&v.common_annotations),
    );
    m.insert("RouteLabels".to_string(), kv_value(&n.route_labels));
    m.insert(
        "ExternalURL".to_string(),
        Value::String(n.external_url.clone()),
    );
    m.insert(
        "NotificationReason".to_string(),
        Value::from(n.reason.as_str()),
    );
    m.insert("GroupKey".to_string(), Value::String(n.group_key.clone()));
    m.insert(
        "AlertmanagerURL".to_string(),
        Value::String(v.alertmanager_url()),
    );
    m.insert("Summary".to_string(), Summary::of(v).to_value());
    Value::Map(m)
}

fn alert_json(a: &Alert, now: DateTime<Utc>) -> serde_json::Value {
    json!({
        "status": a.status_at(now).as_str(),
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": go_rfc3339(Some(a.starts_at)),
        "endsAt": go_rfc3339(a.ends_at),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint().to_string(),
    })
}

/// Alertmanager's JSON form of template data (`template.Data`), the body
/// of webhook payloads; `truncated` alerts were cut by `max_alerts`.
pub fn data_json(v: &View<'_>, truncated: u64) -> serde_json::Value {
    let n = v.n;
    json!({
        "receiver": quote_meta(&n.receiver),
        "status": v.status(),
        "alerts": v.alerts.iter().map(|a| alert_json(a, n.now)).collect::<Vec<_>>(),
        "notification_reason": n.reason.as_str(),
        "groupLabels": n.group_labels,
        "commonLabels": v.common_labels,
        "commonAnnotations": v.common_annotations,
        "routeLabels": n.route_labels,
        "externalURL": n.external_url,
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
    })
}

/// JSON list of alerts as Alertmanager's `toJson` prints `template.Alert`s
/// (PagerDuty's default `firing`/`resolved` details).
pub fn alerts_json<'b>(
    alerts: impl Iterator<Item = &'b Alert>,
    now: DateTime<Utc>,
) -> serde_json::Value {
    serde_json::Value::Array(alerts.map(|a| alert_json(a, now)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_times() {
        let t = Utc.with_ymd_and_hms(2026, 8, 21, 10, 0, 0).unwrap();
        assert_eq!(go_rfc3339(Some(t)), "2026-08-21T10:00:00Z");
        let t2 = t + chrono::Duration::nanoseconds(123_400_000);
        assert_eq!(go_rfc3339(Some(t2)), "2026-08-21T10:00:00.1234Z");
        let t3 = t + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(go_rfc3339(Some(t3)), "2026-08-21T10:00:00.123456789Z");
        assert_eq!(go_rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(
            go_time_string(Some(t2)),
            "2026-08-21 10:00:00.1234 +0000 UTC"
        );
    }

    #[test]
    fn quote_meta_escapes_regex_specials() {
        assert_eq!(quote_meta("team-a"), "team-a");
        assert_eq!(quote_meta("a.b(c)"), r"a\.b\(c\)");
    }
}
