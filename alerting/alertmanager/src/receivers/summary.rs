//! Smart aggregation: one line that summarises a whole group, e.g.
//! `[FIRING:12] NodeDown — 12 instances: web-1, web-2, web-3, web-4, web-5
//! and 7 more`, and the parts the default message bodies are built from.
//!
//! Each alert is named by its `instance` label, else by the labels that
//! set it apart from the group's common labels (the value alone when one
//! label does, `name=value` pairs otherwise), else by its alert name. The
//! group is named by its group label values, else its common `alertname`.
//! Per-alert detail lines are kept only for alerts whose
//! `summary`/`description`/`message` annotation is not common to all.

use std::collections::BTreeMap;

use gotmpl::Value;

use super::data::View;
use crate::types::{Alert, Notification};

/// Names listed in the title before "and N more".
pub const TITLE_NAMES: usize = 5;
/// Names listed in a message body before "and N more".
pub const BODY_NAMES: usize = 50;
/// Per-alert detail lines in a body before "and N more".
pub const DETAIL_LINES: usize = 10;

const TEXT_ANNOTATIONS: [&str; 3] = ["summary", "description", "message"];

/// One alert in the summary: its short name and its own annotation text
/// (empty when its text is the group's common text).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub title: String,
    /// The group's name (group label values, or the common alert name).
    pub name: String,
    /// "instances" when every alert is named by its `instance` label, else
    /// "alerts".
    pub noun: &'static str,
    pub firing: Vec<Entry>,
    pub resolved: Vec<Entry>,
    /// The common `summary` (or `description`, `message`) annotation.
    pub common_text: String,
    /// Common labels other than the group labels and `alertname`, as
    /// `name=value` joined by ", ".
    pub common_labels: String,
}

fn alert_name(a: &Alert, v: &View<'_>) -> (String, bool) {
    if let Some(i) = a.labels.get("instance").filter(|i| !i.is_empty()) {
        return (i.clone(), true);
    }
    let distinct: Vec<(&String, &String)> = a
        .labels
        .iter()
        .filter(|(k, val)| v.common_labels.get(*k) != Some(*val))
        .collect();
    let name = match distinct.as_slice() {
        [] => {
            let n = a.name();
            if n.is_empty() {
                a.fingerprint().to_string()
            } else {
                n.to_string()
            }
        }
        [(_, val)] => (*val).clone(),
        many => many
            .iter()
            .map(|(k, val)| format!("{k}={val}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    (name, false)
}

fn own_text(a: &Alert, v: &View<'_>) -> String {
    for key in TEXT_ANNOTATIONS {
        if let Some(t) = a.annotations.get(key) {
            if v.common_annotations.get(key) == Some(t) {
                return String::new();
            }
            return t.clone();
        }
    }
    String::new()
}

/// Orders names with embedded numbers as people do: `web-2` < `web-10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (&x[..nx], &y[..ny]);
                let tx = dx.iter().skip_while(|&&c| c == b'0').count();
                let ty = dy.iter().skip_while(|&&c| c == b'0').count();
                let ord = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

/// `a, b, c, d, e and 7 more`.
pub fn short_list(names: &[&str], max: usize) -> String {
    let shown = names.len().min(max);
    let mut s = names[..shown].join(", ");
    if names.len() > shown {
        s.push_str(&format!(" and {} more", names.len() - shown));
    }
    s
}

impl Summary {
    /// The summary of `n` as an integration sees it (without resolved
    /// alerts when `send_resolved` is false).
    pub fn for_notification(n: &Notification, send_resolved: bool) -> Summary {
        Summary::of(&View::new(n, send_resolved))
    }

    pub(crate) fn of(v: &View<'_>) -> Summary {
        let mut all_instances = true;
        let mut entry = |a: &Alert| {
            let (name, is_instance) = alert_name(a, v);
            all_instances &= is_instance;
            Entry {
                name,
                text: own_text(a, v),
            }
        };
        let mut firing: Vec<Entry> = v.firing().map(&mut entry).collect();
        let mut resolved: Vec<Entry> = v.resolved().map(&mut entry).collect();
        firing.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        resolved.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        let noun = if all_instances { "instances" } else { "alerts" };

        let group_values: Vec<&str> = v.n.group_labels.values().map(String::as_str).collect();
        let name = if !group_values.is_empty() {
            group_values.join(" ")
        } else if let Some(n) = v.common_labels.get("alertname") {
            n.clone()
        } else {
            "alerts".to_string()
        };

        let common_text = TEXT_ANNOTATIONS
            .iter()
            .find_map(|k| v.common_annotations.get(*k))
            .cloned()
            .unwrap_or_default();
        let common_labels = v
            .common_labels
            .iter()
            .filter(|(k, _)| *k != "alertname" && !v.n.group_labels.contains_key(*k))
            .map(|(k, val)| format!("{k}={val}"))
            .collect::<Vec<_>>()
            .join(", ");

        let (f, r) = (firing.len(), resolved.len());
        let status = match (f, r) {
            (0, r) => format!("RESOLVED:{r}"),
            (f, 0) => format!("FIRING:{f}"),
            (f, r) => format!("FIRING:{f}, RESOLVED:{r}"),
        };
        let listed = if f > 0 { &firing } else { &resolved };
        let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
        let title = match names.len() {
            0 => format!("[{status}] {name}"),
            1 if names[0] == name => format!("[{status}] {name}"),
            1 => format!("[{status}] {name} — {}", names[0]),
            k => format!(
                "[{status}] {name} — {k} {noun}: {}",
                short_list(&names, TITLE_NAMES)
            ),
        };
        Summary {
            title,
            name,
            noun,
            firing,
            resolved,
            common_text,
            common_labels,
        }
    }

    fn details(entries: &[Entry]) -> (Value, i64) {
        let with_text: Vec<&Entry> = entries.iter().filter(|e| !e.text.is_empty()).collect();
        let shown = with_text.len().min(DETAIL_LINES);
        let list = with_text[..shown]
            .iter()
            .map(|e| {
                let mut m = BTreeMap::new();
                m.insert("Name".to_string(), Value::String(e.name.clone()));
                m.insert("Text".to_string(), Value::String(e.text.clone()));
                Value::Map(m)
            })
            .collect();
        (Value::List(list), (with_text.len() - shown) as i64)
    }

    /// The template value `.Summary`: `Title`, `Name`, `Noun`,
    /// `FiringCount`, `ResolvedCount`, `FiringList`/`ResolvedList` (short
    /// lists of names), `FiringListLong`/`ResolvedListLong` (up to [`BODY_NAMES`]),
    /// `FiringDetails`/`ResolvedDetails` (`Name`, `Text` of alerts with
    /// their own annotation text, at most [`DETAIL_LINES`]),
    /// `FiringMore`/`ResolvedMore` (details left out), `CommonText`,
    /// `CommonLabels`.
    pub fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Title".to_string(), Value::String(self.title.clone()));
        m.insert("Name".to_string(), Value::String(self.name.clone()));
        m.insert("Noun".to_string(), Value::from(self.noun));
        for (prefix, entries) in [("Firing", &self.firing), ("Resolved", &self.resolved)] {
            let n: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            m.insert(format!("{prefix}Count"), Value::Int(entries.len() as i64));
            m.insert(
                format!("{prefix}List"),
                Value::String(short_list(&n, TITLE_NAMES)),
            );
            m.insert(
                format!("{prefix}ListLong"),
                Value::String(short_list(&n, BODY_NAMES)),
            );
            m.insert(
                format!("{prefix}Names"),
                Value::List(n.iter().map(|s| Value::from(*s)).collect()),
            );
            let (details, more) = Summary::details(entries);
            m.insert(format!("{prefix}Details"), details);
            m.insert(format!("{prefix}More"), Value::Int(more));
        }
        m.insert(
            "CommonText".to_string(),
            Value::String(self.common_text.clone()),
        );
        m.insert(
            "CommonLabels".to_string(),
            Value::String(self.common_labels.clone()),
        );
        Value::Map(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Alert, LabelSet, Notification, NotificationReason};
    use chrono::{TimeZone, Utc};

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn alert(labels: LabelSet, resolved: bool) -> Alert {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Alert {
            labels,
            annotations: ls(&[("summary", "node down")]),
            starts_at: t,
            ends_at: resolved.then_some(t),
            generator_url: String::new(),
            updated_at: t,
            timeout: false,
        }
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "r".into(),
            group_key: "{}:{alertname=\"NodeDown\"}".into(),
            group_labels: ls(&[("alertname", "NodeDown")]),
            common_labels: LabelSet::new(),
            common_annotations: LabelSet::new(),
            route_labels: LabelSet::new(),
            external_url: "http://am".into(),
            reason: NotificationReason::First,
            alerts,
            now: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            repeat: 0,
        }
    }

    #[test]
    fn twelve_instances() {
        let alerts = (1..=12)
            .map(|i| {
                alert(
                    ls(&[("alertname", "NodeDown"), ("instance", &format!("web-{i}"))]),
                    false,
                )
            })
            .collect();
        let n = notification(alerts);
        let s = Summary::of(&View::new(&n, true));
        // Names sort naturally although the alerts sort by labels.
        assert_eq!(
            s.title,
            "[FIRING:12] NodeDown — 12 instances: web-1, web-2, web-3, web-4, web-5 and 7 more"
        );
        assert_eq!(s.common_text, "node down");
        assert!(s.firing.iter().all(|e| e.text.is_empty()));
    }

    #[test]
    fn mixed_and_distinguishing_labels() {
        let mut alerts = vec![
            alert(ls(&[("alertname", "PodCrash"), ("pod", "a")]), false),
            alert(ls(&[("alertname", "PodCrash"), ("pod", "b")]), true),
            alert(ls(&[("alertname", "PodCrash"), ("pod", "c")]), false),
        ];
        alerts[2].annotations = ls(&[("summary", "OOM")]);
        let mut n = notification(alerts);
        n.group_labels = ls(&[("alertname", "PodCrash")]);
        let s = Summary::of(&View::new(&n, true));
        assert_eq!(s.title, "[FIRING:2, RESOLVED:1] PodCrash — 2 alerts: a, c");
        assert_eq!(s.firing[1].text, "OOM");
        // Without resolved alerts the resolved count is gone.
        let s = Summary::of(&View::new(&n, false));
        assert_eq!(s.title, "[FIRING:2] PodCrash — 2 alerts: a, c");
    }

    #[test]
    fn single_and_resolved() {
        let n = notification(vec![alert(
            ls(&[("alertname", "NodeDown"), ("instance", "db-1")]),
            true,
        )]);
        let s = Summary::for_notification(&n, true);
        assert_eq!(s.title, "[RESOLVED:1] NodeDown — db-1");
    }

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("web-2", "web-10"), Less);
        assert_eq!(natural_cmp("web-010", "web-9"), Greater);
        assert_eq!(natural_cmp("a", "b"), Less);
        assert_eq!(natural_cmp("a1", "a1"), Equal);
        assert_eq!(natural_cmp("a", "a1"), Less);
    }

    #[test]
    fn short_lists() {
        assert_eq!(short_list(&["a", "b"], 5), "a, b");
        assert_eq!(short_list(&["a", "b", "c"], 2), "a, b and 1 more");
    }
}
