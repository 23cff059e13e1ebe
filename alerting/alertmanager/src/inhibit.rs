//! Inhibition (C.3): a target alert is muted while a firing source alert
//! has the same values for the rule's `equal` labels (missing = empty). An
//! alert matching both sides is never inhibited by alerts that also match
//! both sides.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::InhibitRule;
use crate::matchers::matches_all;
use crate::types::{Alert, Fingerprint, LabelSet};

struct Source {
    fp: Fingerprint,
    /// The source alert also matches the rule's target side.
    two_sided: bool,
}

/// A rule's firing source alerts by the values of its `equal` labels.
type SourcesByEqual = HashMap<Vec<String>, Vec<Source>>;

/// The firing source alerts of every rule at one instant, indexed by the
/// values of the rule's `equal` labels.
pub struct InhibitIndex {
    rules: Vec<(InhibitRule, SourcesByEqual)>,
    /// The index is valid until this instant (a source alert resolves).
    pub valid_until: Option<DateTime<Utc>>,
}

fn equal_key(rule: &InhibitRule, labels: &LabelSet) -> Vec<String> {
    rule.equal
        .iter()
        .map(|n| labels.get(n).cloned().unwrap_or_default())
        .collect()
}

impl InhibitIndex {
    pub fn build<'a>(
        rules: &[InhibitRule],
        alerts: impl Iterator<Item = &'a Alert> + Clone,
        now: DateTime<Utc>,
    ) -> InhibitIndex {
        let mut valid_until: Option<DateTime<Utc>> = None;
        let rules = rules
            .iter()
            .map(|rule| {
                let mut map: HashMap<Vec<String>, Vec<Source>> = HashMap::new();
                for a in alerts.clone() {
                    if a.resolved_at(now) || !matches_all(&rule.source_matchers, &a.labels) {
                        continue;
                    }
                    if let Some(end) = a.ends_at {
                        valid_until = Some(valid_until.map_or(end, |v| v.min(end)));
                    }
                    map.entry(equal_key(rule, &a.labels))
                        .or_default()
                        .push(Source {
                            fp: a.fingerprint(),
                            two_sided: matches_all(&rule.target_matchers, &a.labels),
                        });
                }
                for v in map.values_mut() {
                    v.sort_by_key(|s| s.fp);
                }
                (rule.clone(), map)
            })
            .collect();
        InhibitIndex { rules, valid_until }
    }

    /// The fingerprint of a source alert inhibiting `labels` (first rule
    /// that applies), or `None`.
    pub fn inhibited_by(&self, labels: &LabelSet) -> Option<Fingerprint> {
        let own = Fingerprint::of(labels);
        for (rule, map) in &self.rules {
            if !matches_all(&rule.target_matchers, labels) {
                continue;
            }
            let two_sided = matches_all(&rule.source_matchers, labels);
            let Some(sources) = map.get(&equal_key(rule, labels)) else {
                continue;
            };
            if let Some(s) = sources
                .iter()
                .find(|s| s.fp != own && !(two_sided && s.two_sided))
            {
                return Some(s.fp);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matchers::parse_matchers;
    use chrono::TimeZone;

    fn alert(pairs: &[(&str, &str)], ends: Option<DateTime<Utc>>) -> Alert {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: LabelSet::new(),
            starts_at: t,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: t,
            timeout: false,
        }
    }

    fn rule(src: &str, tgt: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            name: None,
            source_matchers: parse_matchers(src).unwrap(),
            target_matchers: parse_matchers(tgt).unwrap(),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn source_inhibits_target_with_equal_labels() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
        let rules = [rule("severity=critical", "severity=warning", &["cluster"])];
        let crit = alert(&[("severity", "critical"), ("cluster", "eu")], None);
        let alerts = [crit.clone()];
        let idx = InhibitIndex::build(&rules, alerts.iter(), now);
        let warn_eu = alert(&[("severity", "warning"), ("cluster", "eu")], None);
        let warn_us = alert(&[("severity", "warning"), ("cluster", "us")], None);
        assert_eq!(idx.inhibited_by(&warn_eu.labels), Some(crit.fingerprint()));
        assert_eq!(idx.inhibited_by(&warn_us.labels), None);
        // Missing and empty are equal: no cluster on either side.
        let idx = InhibitIndex::build(
            &rules,
            [alert(&[("severity", "critical")], None)].iter(),
            now,
        );
        assert!(
            idx.inhibited_by(&alert(&[("severity", "warning")], None).labels)
                .is_some()
        );
        // A resolved source inhibits nothing.
        let resolved = alert(&[("severity", "critical"), ("cluster", "eu")], Some(now));
        let idx = InhibitIndex::build(&rules, [resolved].iter(), now);
        assert_eq!(idx.inhibited_by(&warn_eu.labels), None);
    }

    #[test]
    fn no_self_inhibition_between_two_sided_alerts() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
        // Every alert named Down matches both sides.
        let rules = [rule("alertname=Down", "alertname=Down", &["dc"])];
        let a = alert(&[("alertname", "Down"), ("dc", "x"), ("host", "a")], None);
        let b = alert(&[("alertname", "Down"), ("dc", "x"), ("host", "b")], None);
        let alerts = [a.clone(), b.clone()];
        let idx = InhibitIndex::build(&rules, alerts.iter(), now);
        assert_eq!(idx.inhibited_by(&a.labels), None);
        assert_eq!(idx.inhibited_by(&b.labels), None);
        // A one-sided target is still inhibited by them.
        let rules = [rule("alertname=Down", "dc=x", &["dc"])];
        let idx = InhibitIndex::build(&rules, alerts.iter(), now);
        let t = alert(&[("alertname", "Slow"), ("dc", "x")], None);
        assert!(idx.inhibited_by(&t.labels).is_some());
    }
}
