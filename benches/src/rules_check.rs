//! Checks that Silt and Prometheus did the same work in the rules benchmark: the series a
//! sample of recording rules wrote (labels, timestamps, values), and the alerts both show
//! (labels, state, value, expanded annotations).
//!
//! Both servers read the rule file from the same path, so every group has the same hash,
//! hence the same evaluation timestamps in both: recorded samples can be compared point by
//! point.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::compare::{self, Answer};
use crate::querybench::{VALUE_TOLERANCE, secs};
use crate::server::Server;

const MAX_EXAMPLES: usize = 8;

/// Recorded series of sampled recording rules, Silt against Prometheus.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordingCheck {
    /// Evaluation time of the range selectors (ms) and their range (s).
    pub at_ms: i64,
    pub range_secs: u64,
    pub rules_checked: u64,
    /// Rules whose output both systems had (at least one series).
    pub rules_with_data: u64,
    /// Rules with any difference.
    pub rules_differing: u64,
    pub series_silt: u64,
    pub series_prometheus: u64,
    pub points_compared: u64,
    pub points_differing: u64,
    pub series_only_silt: u64,
    pub series_only_prometheus: u64,
    pub examples: Vec<String>,
    /// Queries that failed.
    pub errors: Vec<String>,
}

impl RecordingCheck {
    pub fn ok(&self) -> bool {
        self.rules_differing == 0 && self.errors.is_empty() && self.rules_with_data > 0
    }
}

fn get(srv: &Server, path: &str, params: &[(&str, String)]) -> Result<String> {
    let url = format!("{}{path}", srv.base());
    let mut req = srv.agent().get(&url);
    for (k, v) in params {
        req = req.query(*k, v);
    }
    let mut r = req.call().with_context(|| format!("GET {url}"))?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .context("reading the answer")?;
    if status != 200 {
        bail!(
            "GET {url}: {status} {}",
            body.chars().take(300).collect::<String>()
        );
    }
    Ok(body)
}

/// An instant query's answer.
pub fn instant(srv: &Server, expr: &str, at_ms: i64) -> Result<Answer> {
    let body = get(
        srv,
        "/api/v1/query",
        &[("query", expr.to_string()), ("time", secs(at_ms))],
    )?;
    Ok(compare::parse(&body)?)
}

/// Compare what `selectors` (one per sampled recording rule) hold in both systems over
/// `range` before `at_ms`.
pub fn check_recording(
    silt: &Server,
    prom: &Server,
    selectors: &[&str],
    at_ms: i64,
    range: Duration,
) -> RecordingCheck {
    let mut c = RecordingCheck {
        at_ms,
        range_secs: range.as_secs(),
        ..Default::default()
    };
    for sel in selectors {
        c.rules_checked += 1;
        let expr = format!("{sel}[{}s]", range.as_secs());
        let (a, b) = match (instant(silt, &expr, at_ms), instant(prom, &expr, at_ms)) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                for (who, e) in [("silt", a.err()), ("prometheus", b.err())] {
                    if let Some(e) = e
                        && c.errors.len() < MAX_EXAMPLES
                    {
                        c.errors.push(format!("{who}: {expr}: {e:#}"));
                    }
                }
                continue;
            }
        };
        c.series_silt += a.series_count();
        c.series_prometheus += b.series_count();
        if a.series_count() > 0 && b.series_count() > 0 {
            c.rules_with_data += 1;
        }
        let d = compare::compare(&a, &b, VALUE_TOLERANCE);
        c.points_compared += d.points_compared;
        c.points_differing += d.points_differing;
        c.series_only_silt += d.only_first;
        c.series_only_prometheus += d.only_second;
        if !d.is_empty() {
            c.rules_differing += 1;
            for e in d.examples {
                if c.examples.len() < MAX_EXAMPLES {
                    c.examples.push(format!("{sel}: {e} (Silt vs Prometheus)"));
                }
            }
        }
    }
    c
}

/// `/api/v1/alerts` of both systems compared.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertsCheck {
    pub silt_firing: u64,
    pub silt_pending: u64,
    pub prometheus_firing: u64,
    pub prometheus_pending: u64,
    /// Alerts (by label set) both show with the same state, value and annotations.
    pub same: u64,
    pub only_silt: u64,
    pub only_prometheus: u64,
    pub state_differs: u64,
    pub value_differs: u64,
    pub annotations_differ: u64,
    pub examples: Vec<String>,
}

impl AlertsCheck {
    pub fn differences(&self) -> u64 {
        self.only_silt
            + self.only_prometheus
            + self.state_differs
            + self.value_differs
            + self.annotations_differ
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiAlert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub state: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Deserialize)]
struct AlertsBody {
    status: String,
    data: Option<AlertsData>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<ApiAlert>,
}

/// Parse an `/api/v1/alerts` answer into alerts by label set.
pub fn parse_alerts(body: &str) -> Result<BTreeMap<String, ApiAlert>> {
    let b: AlertsBody = serde_json::from_str(body).context("parsing /api/v1/alerts")?;
    if b.status != "success" {
        bail!("/api/v1/alerts: status {}", b.status);
    }
    Ok(b.data
        .map(|d| d.alerts)
        .unwrap_or_default()
        .into_iter()
        .map(|a| (format!("{:?}", a.labels), a))
        .collect())
}

pub fn fetch_alerts(srv: &Server) -> Result<BTreeMap<String, ApiAlert>> {
    parse_alerts(&get(srv, "/api/v1/alerts", &[])?)
}

/// Both values as Prometheus prints them, compared as numbers within the tolerance.
fn same_value(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => compare::values_equal(x, y, VALUE_TOLERANCE),
            _ => false,
        }
}

pub fn compare_alerts(
    silt: &BTreeMap<String, ApiAlert>,
    prom: &BTreeMap<String, ApiAlert>,
) -> AlertsCheck {
    let mut c = AlertsCheck::default();
    let count = |m: &BTreeMap<String, ApiAlert>, s: &str| {
        m.values().filter(|a| a.state == s).count() as u64
    };
    c.silt_firing = count(silt, "firing");
    c.silt_pending = count(silt, "pending");
    c.prometheus_firing = count(prom, "firing");
    c.prometheus_pending = count(prom, "pending");
    let note = |c: &mut AlertsCheck, s: String| {
        if c.examples.len() < MAX_EXAMPLES {
            c.examples.push(s);
        }
    };
    for (k, a) in silt {
        let Some(b) = prom.get(k) else {
            c.only_silt += 1;
            note(&mut c, format!("only in Silt ({}): {k}", a.state));
            continue;
        };
        let mut same = true;
        if a.state != b.state {
            c.state_differs += 1;
            same = false;
            note(
                &mut c,
                format!("{k}: Silt {} vs Prometheus {}", a.state, b.state),
            );
        }
        if !same_value(&a.value, &b.value) {
            c.value_differs += 1;
            same = false;
            note(
                &mut c,
                format!("{k}: value Silt {} vs Prometheus {}", a.value, b.value),
            );
        }
        if a.annotations != b.annotations {
            c.annotations_differ += 1;
            same = false;
            note(
                &mut c,
                format!(
                    "{k}: annotations Silt {:?} vs Prometheus {:?}",
                    a.annotations, b.annotations
                ),
            );
        }
        if same {
            c.same += 1;
        }
    }
    for (k, b) in prom {
        if !silt.contains_key(k) {
            c.only_prometheus += 1;
            note(&mut c, format!("only in Prometheus ({}): {k}", b.state));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(json: &str) -> BTreeMap<String, ApiAlert> {
        parse_alerts(&format!(
            r#"{{"status":"success","data":{{"alerts":[{json}]}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn alerts_are_matched_by_labels_and_compared_field_by_field() {
        let silt = alerts(
            r#"{"labels":{"alertname":"A","i":"1"},"annotations":{"s":"x"},"state":"firing","value":"1e+00"},
               {"labels":{"alertname":"A","i":"2"},"annotations":{},"state":"pending","value":"2"},
               {"labels":{"alertname":"A","i":"3"},"annotations":{},"state":"firing","value":"3"}"#,
        );
        let prom = alerts(
            r#"{"labels":{"i":"1","alertname":"A"},"annotations":{"s":"x"},"state":"firing","value":"1"},
               {"labels":{"alertname":"A","i":"2"},"annotations":{},"state":"firing","value":"2"},
               {"labels":{"alertname":"A","i":"4"},"annotations":{},"state":"firing","value":"4"}"#,
        );
        let c = compare_alerts(&silt, &prom);
        assert_eq!((c.silt_firing, c.silt_pending), (2, 1));
        assert_eq!(c.prometheus_firing, 3);
        assert_eq!(c.same, 1);
        assert_eq!(c.state_differs, 1);
        assert_eq!((c.only_silt, c.only_prometheus), (1, 1));
        assert_eq!(c.differences(), 3);
        assert_eq!(c.examples.len(), 3);
    }
}
