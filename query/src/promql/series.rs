//! Prometheus's series description notation, the `load` language of PromQL
//! test scripts and of `promtool test rules` input series:
//! `metric{a="b"} 0+10x3 _ _x2 stale -1-1x2 Inf`.
//!
//! Items, separated by whitespace: a number (`1`, `-2.5`, `1e3`, `Inf`,
//! `NaN`, Go's integer forms such as `010`), `stale` (the stale marker),
//! `_` (no sample), `_xN` (N times no sample), `vxN` (N+1 times `v`),
//! `a+bxN` / `a-bxN` (N+1 values from `a` in steps of `b`). Native
//! histogram items (`{{...}}`) are recognised and counted, not decoded.
//! There are no hex numbers (`0x10` is eleven zeros), as in Prometheus.

use engine::{Label, METRIC_NAME, STALE_NAN};

use super::lex;

/// Most values one series description may expand to (a guard against
/// `1x99999999999` exhausting memory).
pub const MAX_VALUES: usize = 10_000_000;

/// One expanded item of a series description.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SequenceValue {
    /// A sample value (the stale marker NaN bit-exact for `stale`).
    Value(f64),
    /// `_`: no sample at this step.
    Omitted,
    /// A native histogram sample (not decoded).
    Histogram,
}

/// A parsed series description.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDesc {
    /// The labels as written (metric name included as `__name__`), in
    /// input order, empty values and duplicates kept.
    pub labels: Vec<Label>,
    pub values: Vec<SequenceValue>,
}

/// Why a series description or metric does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("unexpected end of input in metric")]
    EmptyMetric,
    #[error("unexpected {found:?} in label matching, expected label name")]
    LabelName { found: String },
    #[error("unexpected {found:?} in label matching, expected \"=\"")]
    LabelEquals { found: String },
    #[error("unexpected {found:?} in label matching, expected string")]
    LabelValue { found: String },
    #[error("{0}")]
    String(String),
    #[error("unexpected {found:?} in label matching, expected \",\" or \"}}\"")]
    LabelSeparator { found: String },
    #[error("unexpected {found:?} after metric")]
    TrailingInput { found: String },
    #[error("bad number syntax: {0:?}")]
    Number(String),
    #[error("invalid repetition in series values: {0:?}")]
    Repetition(String),
    #[error("unexpected {0:?} in series values")]
    Item(String),
    #[error("series values expand to more than {MAX_VALUES} values")]
    TooMany,
}

/// Parses a whole series description: a metric, then value items.
pub fn parse_series_desc(input: &str) -> Result<SeriesDesc, SeriesError> {
    let (labels, rest) = parse_metric_prefix(input)?;
    if !rest.is_empty() && !rest.starts_with(lex::is_space) {
        return Err(SeriesError::TrailingInput {
            found: first_word(rest).to_string(),
        });
    }
    let values = parse_values(rest)?;
    Ok(SeriesDesc { labels, values })
}

/// Parses a metric alone (`name{a="b"}`, `{a="b"}`, `name`), as
/// Prometheus's `ParseMetric`: nothing but spaces may follow; blank input
/// is the empty label set.
pub fn parse_metric(input: &str) -> Result<Vec<Label>, SeriesError> {
    if input.trim_start_matches(lex::is_space).is_empty() {
        return Ok(Vec::new());
    }
    let (labels, rest) = parse_metric_prefix(input)?;
    if !rest.trim_start_matches(lex::is_space).is_empty() {
        return Err(SeriesError::TrailingInput {
            found: first_word(rest.trim_start_matches(lex::is_space)).to_string(),
        });
    }
    Ok(labels)
}

fn first_word(s: &str) -> &str {
    let end = s.find(lex::is_space).unwrap_or(s.len());
    &s[..end]
}

fn token(s: &str) -> String {
    match s.chars().next() {
        None => "end of input".to_string(),
        Some(c) => c.to_string(),
    }
}

fn string_literal(s: &str) -> Result<(String, &str), SeriesError> {
    match lex::string_literal(s) {
        Ok((rest, v)) => Ok((v, rest)),
        Err(nom::Err::Failure(e)) | Err(nom::Err::Error(e)) => Err(SeriesError::String(
            e.message
                .unwrap_or_else(|| "bad string literal".to_string()),
        )),
        Err(nom::Err::Incomplete(_)) => Err(SeriesError::String("unterminated string".into())),
    }
}

/// Parses the metric at the start of `input`; returns its labels and the
/// rest (starting right after the metric).
pub fn parse_metric_prefix(input: &str) -> Result<(Vec<Label>, &str), SeriesError> {
    let s = input.trim_start_matches(lex::is_space);
    let mut labels = Vec::new();
    let mut rest = s;
    let mut named = false;
    if let Ok((r, name)) = lex::metric_identifier(s) {
        labels.push(Label::new(METRIC_NAME, name));
        rest = r;
        named = true;
    }
    let Some(body) = rest.strip_prefix('{') else {
        if named {
            return Ok((labels, rest));
        }
        return Err(if s.is_empty() {
            SeriesError::EmptyMetric
        } else {
            SeriesError::LabelName { found: token(s) }
        });
    };
    rest = body;
    loop {
        rest = rest.trim_start_matches(lex::is_space);
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let quoted = rest.starts_with(['"', '\'', '`']);
        let (name, r) = if quoted {
            string_literal(rest)?
        } else {
            match lex::label_identifier(rest) {
                Ok((r, n)) => (n.to_string(), r),
                Err(_) => return Err(SeriesError::LabelName { found: token(rest) }),
            }
        };
        rest = r.trim_start_matches(lex::is_space);
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start_matches(lex::is_space);
            if !r.starts_with(['"', '\'', '`']) {
                return Err(SeriesError::LabelValue { found: token(r) });
            }
            let (value, r) = string_literal(r)?;
            labels.push(Label::new(name, value));
            rest = r;
        } else if quoted && rest.starts_with([',', '}']) {
            // Prometheus 3: a quoted metric name inside the braces.
            labels.push(Label::new(METRIC_NAME, name));
        } else {
            return Err(SeriesError::LabelEquals { found: token(rest) });
        }
        rest = rest.trim_start_matches(lex::is_space);
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(SeriesError::LabelSeparator { found: token(rest) });
        }
    }
}

/// Splits value items on whitespace, keeping `{{ ... }}` together.
fn split_items(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut depth = 0i32;
        while i < b.len() && (depth > 0 || !b[i].is_ascii_whitespace()) {
            match b[i] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        out.push(&s[start..i]);
    }
    out
}

/// Expands the value items of a series description.
pub fn parse_values(input: &str) -> Result<Vec<SequenceValue>, SeriesError> {
    let mut out = Vec::new();
    for it in split_items(input) {
        expand_item(it, &mut out)?;
        if out.len() > MAX_VALUES {
            return Err(SeriesError::TooMany);
        }
    }
    Ok(out)
}

/// A repetition count after `x`: the whole rest must be decimal digits.
fn repetition(s: &str) -> Result<usize, SeriesError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SeriesError::Repetition(s.to_string()));
    }
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_VALUES => Ok(n),
        _ => Err(SeriesError::TooMany),
    }
}

/// A number token at the start of `s` (no sign): digits with an optional
/// fraction and exponent, or `Inf` / `NaN`; returns its value and the rest.
fn number(s: &str) -> Result<(f64, &str), SeriesError> {
    let b = s.as_bytes();
    if b.first().is_some_and(|c| c.is_ascii_alphabetic()) {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let word = &s[..end];
        if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
            let v = lex::parse_number(word).map_err(|_| SeriesError::Number(word.into()))?;
            return Ok((v, &s[end..]));
        }
        return Err(SeriesError::Item(word.to_string()));
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && (b[*i].is_ascii_digit() || (b[*i] == b'_' && *i > start)) {
            *i += 1;
        }
        *i > start
    };
    let mut i = 0;
    let int = digits(&mut i);
    let mut frac = false;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac = digits(&mut i);
    }
    if !int && !frac {
        return Err(SeriesError::Item(first_word(s).to_string()));
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        digits(&mut i);
    }
    // Only the repetition `x` may follow a number directly.
    if i < b.len() && b[i] != b'x' && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        return Err(SeriesError::Number(s[..=i].to_string()));
    }
    let text = &s[..i];
    let v = lex::parse_number(text).map_err(|_| SeriesError::Number(text.to_string()))?;
    Ok((v, &s[i..]))
}

/// A value with an optional sign; `stale` only unsigned.
fn signed_value(s: &str, allow_stale: bool) -> Result<(f64, &str), SeriesError> {
    if let Some(r) = s.strip_prefix('+') {
        return number(r);
    }
    if let Some(r) = s.strip_prefix('-') {
        return number(r).map(|(v, r)| (-v, r));
    }
    if allow_stale
        && let Some(r) = s.strip_prefix("stale")
        && !r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok((f64::from_bits(STALE_NAN), r));
    }
    number(s)
}

/// Expands one item (`1`, `_`, `_x3`, `stale`, `1+2x3`, `{{..}}x2`).
fn expand_item(it: &str, out: &mut Vec<SequenceValue>) -> Result<(), SeriesError> {
    if it.starts_with("{{") {
        let end = it
            .rfind("}}")
            .ok_or_else(|| SeriesError::Item(it.to_string()))?;
        let tail = &it[end + 2..];
        // `{{A}}+{{B}}xK`: the repetition belongs to the tail after the last `}}`.
        let count = match tail.rfind('x') {
            Some(x) => repetition(&tail[x + 1..])? + 1,
            None if tail.is_empty() => 1,
            None => return Err(SeriesError::Item(it.to_string())),
        };
        out.extend(std::iter::repeat_n(SequenceValue::Histogram, count));
        return Ok(());
    }
    if let Some(r) = it.strip_prefix('_') {
        if r.is_empty() {
            out.push(SequenceValue::Omitted);
            return Ok(());
        }
        let Some(n) = r.strip_prefix('x') else {
            return Err(SeriesError::Item(it.to_string()));
        };
        out.extend(std::iter::repeat_n(SequenceValue::Omitted, repetition(n)?));
        return Ok(());
    }
    let (v, rest) = signed_value(it, true)?;
    if rest.is_empty() {
        out.push(SequenceValue::Value(v));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = repetition(n)?;
        out.extend(std::iter::repeat_n(SequenceValue::Value(v), n + 1));
        return Ok(());
    }
    if !rest.starts_with(['+', '-']) {
        return Err(SeriesError::Item(it.to_string()));
    }
    let (step, rest) = signed_value(rest, false)?;
    let Some(n) = rest.strip_prefix('x') else {
        return Err(SeriesError::Item(it.to_string()));
    };
    let n = repetition(n)?;
    let mut cur = v;
    for _ in 0..=n {
        out.push(SequenceValue::Value(cur));
        cur += step;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(s: &str) -> Vec<SequenceValue> {
        parse_values(s).unwrap()
    }

    fn floats(s: &str) -> Vec<f64> {
        values(s)
            .into_iter()
            .map(|v| match v {
                SequenceValue::Value(f) => f,
                other => panic!("not a value: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn expands_like_prometheus() {
        assert_eq!(floats("0+10x3"), vec![0.0, 10.0, 20.0, 30.0]);
        assert_eq!(floats("5-1x2"), vec![5.0, 4.0, 3.0]);
        assert_eq!(floats("-1-1x3"), vec![-1.0, -2.0, -3.0, -4.0]);
        assert_eq!(floats("1x2 -2x1"), vec![1.0, 1.0, 1.0, -2.0, -2.0]);
        assert_eq!(floats("1e3 1e-3x1 +2 010"), vec![1e3, 1e-3, 1e-3, 2.0, 8.0]);
        assert_eq!(floats("1+1e1x1"), vec![1.0, 11.0]);
        let v = values("_ _x3 stale 1");
        assert_eq!(v.len(), 6);
        assert!(v[..4].iter().all(|v| *v == SequenceValue::Omitted));
        assert!(matches!(v[4], SequenceValue::Value(x) if x.to_bits() == STALE_NAN));
        let v = floats("Inf -Inf NaN +inf");
        assert_eq!(v[0], f64::INFINITY);
        assert_eq!(v[1], f64::NEG_INFINITY);
        assert!(v[2].is_nan());
        assert_eq!(v[3], f64::INFINITY);
        assert_eq!(values("{{schema:0 sum:1}}x2 {{a}}").len(), 4);
        assert!(values("").is_empty());
    }

    #[test]
    fn refuses_malformed_items() {
        for bad in [
            "1x", "x3", "1+2", "1x3.5", "abc", "stalex2", "-stale", "1a", "_y", "1+x2", "1x-2",
        ] {
            assert!(parse_values(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(parse_values("1x99999999999"), Err(SeriesError::TooMany));
        // No hex: `0x10` is 0 repeated, as in Prometheus.
        assert_eq!(floats("0x10"), vec![0.0; 11]);
    }

    #[test]
    fn parses_metrics() {
        let d = parse_series_desc(r#"up{job="api", instance='0',} 1 2"#).unwrap();
        assert_eq!(
            d.labels,
            vec![
                Label::new("__name__", "up"),
                Label::new("job", "api"),
                Label::new("instance", "0")
            ]
        );
        assert_eq!(d.values.len(), 2);
        assert_eq!(parse_metric("{}").unwrap(), vec![]);
        assert_eq!(
            parse_metric(r#"{"a.b", c=""}"#).unwrap(),
            vec![Label::new("__name__", "a.b"), Label::new("c", "")]
        );
        assert_eq!(
            parse_metric("x:y").unwrap(),
            vec![Label::new("__name__", "x:y")]
        );
        assert_eq!(parse_metric(" ").unwrap(), vec![]);
        assert_eq!(parse_series_desc(""), Err(SeriesError::EmptyMetric));
        for bad in [
            "{a=~\"b\"}",
            "{a=b}",
            "m{a=\"b\"",
            "m 1",
            "{a=\"b\" c=\"d\"}",
            "1",
        ] {
            assert!(parse_metric(bad).is_err(), "{bad} parsed");
        }
        assert!(parse_series_desc(r#"m{a="b"}1"#).is_err());
        assert!(parse_series_desc(r#"m{a="\q"} 1"#).is_err());
    }
}
