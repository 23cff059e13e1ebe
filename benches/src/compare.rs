//! Parses Prometheus HTTP API query answers and compares two of them: the same series (by
//! label set), the same timestamps, and values equal within a relative tolerance.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("answer is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("query failed: {error_type}: {error}")]
    Failed { error_type: String, error: String },
    #[error("answer has no {0}")]
    Missing(&'static str),
    #[error("bad sample {0}")]
    BadSample(String),
}

/// A query's result: series (canonical label text) → points (ms, value), in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub result_type: String,
    pub series: BTreeMap<String, Vec<(i64, f64)>>,
}

impl Answer {
    /// Series in the result (a scalar or string counts as one).
    pub fn series_count(&self) -> u64 {
        self.series.len() as u64
    }

    pub fn points(&self) -> u64 {
        self.series.values().map(|p| p.len() as u64).sum()
    }
}

/// `{a="1", b="2"}` with names sorted: the identity of a series across systems.
fn canonical(metric: &serde_json::Map<String, serde_json::Value>) -> String {
    let sorted: BTreeMap<&str, &str> = metric
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    let mut s = String::from("{");
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{k}={v:?}");
    }
    s.push('}');
    s
}

/// A `[seconds, "value"]` pair.
fn sample(v: &serde_json::Value) -> Result<(i64, f64), AnswerError> {
    let bad = || AnswerError::BadSample(v.to_string());
    let a = v.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
    let t = a[0].as_f64().ok_or_else(bad)?;
    let x = a[1].as_str().ok_or_else(bad)?;
    let x = match x {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => x.parse().map_err(|_| bad())?,
    };
    Ok(((t * 1000.0).round() as i64, x))
}

/// Parse a `/api/v1/query` or `/api/v1/query_range` answer.
pub fn parse(body: &str) -> Result<Answer, AnswerError> {
    let v: serde_json::Value = serde_json::from_str(body)?;
    if v["status"] != "success" {
        return Err(AnswerError::Failed {
            error_type: v["errorType"].as_str().unwrap_or("?").to_string(),
            error: v["error"].as_str().unwrap_or("?").to_string(),
        });
    }
    let data = &v["data"];
    let rt = data["resultType"]
        .as_str()
        .ok_or(AnswerError::Missing("data.resultType"))?;
    let mut a = Answer {
        result_type: rt.to_string(),
        series: BTreeMap::new(),
    };
    match rt {
        "scalar" | "string" => {
            let (t, x) = if rt == "scalar" {
                sample(&data["result"])?
            } else {
                (0, f64::NAN)
            };
            a.series.insert("{}".into(), vec![(t, x)]);
        }
        _ => {
            let result = data["result"]
                .as_array()
                .ok_or(AnswerError::Missing("data.result"))?;
            for s in result {
                let metric = s["metric"]
                    .as_object()
                    .ok_or(AnswerError::Missing("metric"))?;
                let points = match s.get("values") {
                    Some(vals) => vals
                        .as_array()
                        .ok_or(AnswerError::Missing("values"))?
                        .iter()
                        .map(sample)
                        .collect::<Result<Vec<_>, _>>()?,
                    None => vec![sample(&s["value"])?],
                };
                a.series.insert(canonical(metric), points);
            }
        }
    }
    Ok(a)
}

/// Smallest difference that always counts as equal (values that should be 0 but carry
/// floating-point noise, such as a rate over a constant counter computed another way).
pub const ABS_TOLERANCE: f64 = 1e-12;

/// Equal within `rel` relative tolerance; NaN equals NaN, infinities must match exactly.
pub fn values_equal(a: f64, b: f64, rel: f64) -> bool {
    if a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    let d = (a - b).abs();
    d <= ABS_TOLERANCE || d <= rel * a.abs().max(b.abs())
}

/// How two answers differ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Series only in the first / only in the second answer.
    pub only_first: u64,
    pub only_second: u64,
    /// Points at the same series and time compared.
    pub points_compared: u64,
    /// Points whose values differ, plus points present at a time in one answer only.
    pub points_differing: u64,
    /// The first few differences, readable.
    pub examples: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_first == 0 && self.only_second == 0 && self.points_differing == 0
    }
}

const MAX_EXAMPLES: usize = 3;

/// Compare `a` with `b` series by series and point by point.
pub fn compare(a: &Answer, b: &Answer, rel: f64) -> Diff {
    let mut d = Diff::default();
    let note = |d: &mut Diff, s: String| {
        if d.examples.len() < MAX_EXAMPLES {
            d.examples.push(s);
        }
    };
    for (k, pa) in &a.series {
        let Some(pb) = b.series.get(k) else {
            d.only_first += 1;
            note(&mut d, format!("only in first: {k}"));
            continue;
        };
        let (mut i, mut j) = (0, 0);
        while i < pa.len() || j < pb.len() {
            match (pa.get(i), pb.get(j)) {
                (Some(&(ta, va)), Some(&(tb, vb))) if ta == tb => {
                    d.points_compared += 1;
                    if !values_equal(va, vb, rel) {
                        d.points_differing += 1;
                        note(&mut d, format!("{k} at {ta} ms: {va} vs {vb}"));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(&(ta, _)), Some(&(tb, _))) if ta < tb => {
                    d.points_differing += 1;
                    note(&mut d, format!("{k}: point at {ta} ms only in first"));
                    i += 1;
                }
                (Some(_), Some(&(tb, _))) => {
                    d.points_differing += 1;
                    note(&mut d, format!("{k}: point at {tb} ms only in second"));
                    j += 1;
                }
                (Some(&(ta, _)), None) => {
                    d.points_differing += 1;
                    note(&mut d, format!("{k}: point at {ta} ms only in first"));
                    i += 1;
                }
                (None, Some(&(tb, _))) => {
                    d.points_differing += 1;
                    note(&mut d, format!("{k}: point at {tb} ms only in second"));
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }
    for k in b.series.keys() {
        if !a.series.contains_key(k) {
            d.only_second += 1;
            note(&mut d, format!("only in second: {k}"));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"instance":"b:9100","job":"node"},"value":[1700000000.123,"1.5"]},
        {"metric":{"job":"node","instance":"a:9100"},"value":[1700000000.123,"NaN"]}]}}"#;
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"le":"+Inf"},"values":[[1700000000,"1"],[1700000060,"+Inf"],[1700000120,"2e-3"]]}]}}"#;

    #[test]
    fn parses_vectors_matrices_scalars_and_errors() {
        let v = parse(VECTOR).unwrap();
        assert_eq!(v.result_type, "vector");
        assert_eq!(v.series_count(), 2);
        // Label order in the JSON does not matter; timestamps keep their milliseconds.
        let a = &v.series[r#"{instance="a:9100", job="node"}"#];
        assert!(a[0].1.is_nan());
        assert_eq!(a[0].0, 1_700_000_000_123);
        let m = parse(MATRIX).unwrap();
        assert_eq!(m.points(), 3);
        assert_eq!(
            m.series[r#"{le="+Inf"}"#][1],
            (1_700_000_060_000, f64::INFINITY)
        );
        let s = parse(r#"{"status":"success","data":{"resultType":"scalar","result":[12.5,"3"]}}"#)
            .unwrap();
        assert_eq!(s.series["{}"], vec![(12_500, 3.0)]);
        let e = parse(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#);
        assert!(matches!(e, Err(AnswerError::Failed { .. })));
        assert!(parse("<html>").is_err());
        assert!(parse(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#).is_err());
    }

    #[test]
    fn tolerance_is_relative_with_an_absolute_floor() {
        assert!(values_equal(1e9, 1e9 * (1.0 + 5e-7), 1e-6));
        assert!(!values_equal(1e9, 1e9 * (1.0 + 5e-6), 1e-6));
        assert!(values_equal(0.0, 1e-15, 1e-6));
        assert!(!values_equal(0.0, 1e-9, 1e-6));
        assert!(values_equal(f64::NAN, f64::NAN, 1e-6));
        assert!(!values_equal(f64::NAN, 1.0, 1e-6));
        assert!(!values_equal(f64::INFINITY, f64::NEG_INFINITY, 1e-6));
        assert!(values_equal(f64::INFINITY, f64::INFINITY, 1e-6));
    }

    #[test]
    fn differences_are_counted_not_hidden() {
        let a = parse(MATRIX).unwrap();
        assert!(compare(&a, &a, 1e-6).is_empty());
        let mut b = a.clone();
        let pts = b.series.get_mut(r#"{le="+Inf"}"#).unwrap();
        pts[0].1 = 1.1; // value differs
        pts.remove(2); // point missing
        b.series.insert(r#"{le="1"}"#.into(), vec![(0, 1.0)]);
        let d = compare(&a, &b, 1e-6);
        assert_eq!(d.only_first, 0);
        assert_eq!(d.only_second, 1);
        assert_eq!(d.points_compared, 2);
        assert_eq!(d.points_differing, 2);
        assert_eq!(d.examples.len(), 3);
        assert!(d.examples[0].contains("1 vs 1.1"), "{:?}", d.examples);
        let d = compare(&b, &a, 1e-6);
        assert_eq!((d.only_first, d.only_second), (1, 0));
    }
}
