//! The alert and notification types shared by the dispatcher, the receivers
//! and the rule manager that produces alerts.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

/// Label or annotation names to values, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// An alert's identity: FNV-1a 64 over its sorted label set, as
/// Alertmanager computes it (`model.LabelSet.Fingerprint`). Printed as 16
/// lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;

    pub fn of(labels: &LabelSet) -> Fingerprint {
        let mut h = Self::OFFSET;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(Self::PRIME);
            }
        };
        for (name, value) in labels {
            eat(name.as_bytes());
            eat(&[0xff]);
            eat(value.as_bytes());
            eat(&[0xff]);
        }
        Fingerprint(h)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One alert as Alertmanager holds it: pushed by the rule manager (or by a
/// client through `POST /api/v2/alerts`) and refreshed on every send.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: DateTime<Utc>,
    /// `None` is Go's zero time: firing with no known end.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
    /// When Alertmanager last received this alert.
    pub updated_at: DateTime<Utc>,
    /// `endsAt` was not given and was set to now + `resolve_timeout`.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// Resolved iff `endsAt` is set and not after `now`.
    pub fn resolved_at(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|end| end <= now)
    }

    pub fn status_at(&self, now: DateTime<Utc>) -> AlertStatus {
        if self.resolved_at(now) {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        }
    }

    /// The `alertname` label, or "" without one.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Why a group flush produced a notification (`notification_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationReason {
    First,
    NewAlertsAdded,
    SomeAlertsResolved,
    AllAlertsResolved,
    RepeatIntervalElapsed,
    Unknown,
}

impl NotificationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationReason::First => "first notification",
            NotificationReason::NewAlertsAdded => "new alerts added",
            NotificationReason::SomeAlertsResolved => "some alerts resolved",
            NotificationReason::AllAlertsResolved => "all alerts resolved",
            NotificationReason::RepeatIntervalElapsed => "repeat interval elapsed",
            NotificationReason::Unknown => "unknown",
        }
    }
}

/// One notification for one receiver: an aggregation group's alerts at a
/// flush, the input of every receiver and of the message templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The receiver's name from the configuration.
    pub receiver: String,
    /// `<route key>:<group labels>`, stable for the group's life.
    pub group_key: String,
    pub group_labels: LabelSet,
    /// Labels with the same value in every alert.
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    /// The route's `labels` (newest Alertmanager's `routeLabels`).
    pub route_labels: LabelSet,
    /// Silt's external URL (Alertmanager's `externalURL`).
    pub external_url: String,
    pub reason: NotificationReason,
    /// The group's alerts, firing and resolved, sorted by labels.
    pub alerts: Vec<Alert>,
    /// The flush time: each alert's status is taken at this instant.
    pub now: DateTime<Utc>,
    /// How many notifications this group has had since it last started
    /// firing (0 for the first): what escalation counts.
    pub repeat: u32,
}

impl Notification {
    /// "firing" if any alert fires at [`Notification::now`], else "resolved".
    pub fn status(&self) -> AlertStatus {
        if self.alerts.iter().any(|a| !a.resolved_at(self.now)) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| !a.resolved_at(self.now))
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.resolved_at(self.now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_of_empty_set_is_offset_basis() {
        assert_eq!(Fingerprint::of(&LabelSet::new()).0, 14695981039346656037);
        assert_eq!(
            Fingerprint::of(&LabelSet::new()).to_string(),
            "cbf29ce484222325"
        );
    }

    #[test]
    fn fingerprint_separates_names_from_values() {
        let a = Fingerprint::of(&labels(&[("ab", "c")]));
        let b = Fingerprint::of(&labels(&[("a", "bc")]));
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 16);
    }
}
