//! A parser for the Prometheus text exposition format (0.0.4), also
//! accepting what the OpenMetrics text encoder of `prometheus-client`
//! writes (`# UNIT`, `# EOF`, exemplars after ` # `).
//!
//! Silt uses it to store its own `/metrics` (self-scrape). The input is
//! treated as untrusted: every malformed line is an error naming its line
//! number, never a panic.

use std::collections::BTreeMap;

use engine::{MetricMetadata, MetricType};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    /// Label pairs in the order written (without the metric name).
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Explicit timestamp in milliseconds, if the line had one.
    pub timestamp_ms: Option<i64>,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<ParsedSample>,
    /// Metadata from `# TYPE`, `# HELP` and `# UNIT` lines, by family name.
    pub metadata: BTreeMap<String, MetricMetadata>,
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            parse_comment(comment, &mut out.metadata).map_err(err)?;
            continue;
        }
        out.samples.push(parse_sample(trimmed).map_err(err)?);
    }
    Ok(out)
}

fn metadata_entry<'a>(
    metadata: &'a mut BTreeMap<String, MetricMetadata>,
    name: &str,
) -> &'a mut MetricMetadata {
    metadata
        .entry(name.to_owned())
        .or_insert_with(|| MetricMetadata {
            metric_family: name.to_owned(),
            metric_type: MetricType::Unknown,
            help: String::new(),
            unit: String::new(),
        })
}

/// `# HELP name text`, `# TYPE name type`, `# UNIT name unit`; any other
/// comment (including `# EOF`) is ignored, as Prometheus does.
fn parse_comment(
    comment: &str,
    metadata: &mut BTreeMap<String, MetricMetadata>,
) -> Result<(), String> {
    let rest = comment.trim_start_matches([' ', '\t']);
    let (keyword, rest) = split_token(rest);
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Ok(());
    }
    let (name, rest) = split_token(rest);
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?} in # {keyword}"));
    }
    match keyword {
        "HELP" => metadata_entry(metadata, name).help = unescape_help(rest),
        "TYPE" => {
            let t = rest.trim();
            let ty = match t {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "gaugehistogram" => MetricType::GaugeHistogram,
                "summary" => MetricType::Summary,
                "info" => MetricType::Info,
                "stateset" => MetricType::StateSet,
                "untyped" | "unknown" => MetricType::Unknown,
                _ => return Err(format!("unknown metric type {t:?} for {name}")),
            };
            metadata_entry(metadata, name).metric_type = ty;
        }
        _ => metadata_entry(metadata, name).unit = rest.trim().to_owned(),
    }
    Ok(())
}

/// Splits off the first whitespace-separated token.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches([' ', '\t']);
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// HELP text escapes: `\\` and `\n`; other backslashes stay.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name at {:?}", truncate(line)));
    }
    let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    // OpenMetrics exemplars follow the value after " # ".
    let rest = match rest.find(" # ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let (value_str, rest) = split_token(rest);
    if value_str.is_empty() {
        return Err(format!("missing value for {name}"));
    }
    let value =
        parse_value(value_str).ok_or_else(|| format!("invalid value {value_str:?} for {name}"))?;
    let (ts_str, rest) = split_token(rest);
    let timestamp_ms = if ts_str.is_empty() {
        None
    } else {
        Some(
            ts_str
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts_str:?} for {name}"))?,
        )
    };
    if !rest.trim().is_empty() {
        return Err(format!(
            "unexpected text after the sample of {name}: {:?}",
            truncate(rest)
        ));
    }
    Ok(ParsedSample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses `name="value",...}`; returns the text after `}`.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let name = &s[..name_end];
        if !is_label_name(name) {
            return Err(format!("invalid label name at {:?}", truncate(s)));
        }
        s = s[name_end..].trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label name {name}"))?;
        s = s.trim_start_matches([' ', '\t']);
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {name}"))?;
        let (value, after) =
            parse_quoted(s).ok_or_else(|| format!("unterminated value of label {name}"))?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label name {name}"));
        }
        labels.push((name.to_owned(), value));
        s = after.trim_start_matches([' ', '\t']);
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// Reads a label value up to its closing quote. Escapes `\\`, `\"` and
/// `\n` are decoded; any other escaped character is kept with its
/// backslash (as Prometheus does).
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

/// Go's `strconv.ParseFloat` as used by Prometheus: decimal and exponent
/// forms, `NaN`, `Inf`, `+Inf`, `-Inf` (any case).
fn parse_value(s: &str) -> Option<f64> {
    let bytes = s.as_bytes();
    let digits = bytes
        .strip_prefix(b"+")
        .or_else(|| bytes.strip_prefix(b"-"))
        .unwrap_or(bytes);
    // Rust also accepts "infinity"; both agree on everything Prometheus writes.
    if digits
        .first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
        || digits.eq_ignore_ascii_case(b"inf")
        || digits.eq_ignore_ascii_case(b"infinity")
        || s.eq_ignore_ascii_case("nan")
    {
        s.parse().ok()
    } else {
        None
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str) -> ParsedSample {
        let mut e = parse(text).unwrap();
        assert_eq!(e.samples.len(), 1, "{text}");
        e.samples.remove(0)
    }

    #[test]
    fn full_exposition() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
"#;
        let e = parse(text).unwrap();
        assert_eq!(e.samples.len(), 9);
        assert_eq!(
            e.samples[0].labels,
            vec![
                ("method".into(), "post".into()),
                ("code".into(), "200".into())
            ]
        );
        assert_eq!(e.samples[0].value, 1027.0);
        assert_eq!(e.samples[0].timestamp_ms, Some(1395066363000));
        assert_eq!(e.samples[1].value, 3.0);
        assert_eq!(e.samples[2].labels[0].1, r"C:\DIR\FILE.TXT");
        assert_eq!(e.samples[2].labels[1].1, "Cannot find file:\n\"FILE.TXT\"");
        assert_eq!(e.samples[2].value, 1.458255915e9);
        assert_eq!(e.samples[3].labels, vec![]);
        assert_eq!(e.samples[4].value, f64::INFINITY);
        assert_eq!(e.samples[4].timestamp_ms, Some(-3982045));
        assert_eq!(e.samples[6].labels, vec![("le".into(), "+Inf".into())]);
        let m = &e.metadata["http_requests_total"];
        assert_eq!(m.metric_type, MetricType::Counter);
        assert_eq!(m.help, "The total number of HTTP requests.");
        assert_eq!(
            e.metadata["http_request_duration_seconds"].metric_type,
            MetricType::Histogram
        );
        assert_eq!(e.metadata.len(), 2);
    }

    #[test]
    fn special_values() {
        assert!(sample("a NaN").value.is_nan());
        assert_eq!(sample("a -Inf").value, f64::NEG_INFINITY);
        assert_eq!(sample("a Inf").value, f64::INFINITY);
        assert_eq!(sample("a -0").value.to_bits(), (-0.0f64).to_bits());
        assert_eq!(sample("a 1e-3").value, 0.001);
        assert_eq!(sample("a .5").value, 0.5);
    }

    #[test]
    fn openmetrics_extras() {
        let text = "# TYPE silt_x_seconds counter\n# UNIT silt_x_seconds seconds\n# HELP silt_x_seconds Help with \\\\ and \\n.\nsilt_x_seconds_total 4 # {trace_id=\"a\"} 1.0\n# EOF\n";
        let e = parse(text).unwrap();
        assert_eq!(e.samples.len(), 1);
        assert_eq!(e.samples[0].value, 4.0);
        let m = &e.metadata["silt_x_seconds"];
        assert_eq!(
            (m.metric_type, m.unit.as_str(), m.help.as_str()),
            (MetricType::Counter, "seconds", "Help with \\ and \n.")
        );
    }

    #[test]
    fn labels_edge_cases() {
        let s = sample("a{ b = \"1\" , c=\"\\x\", } 2");
        assert_eq!(
            s.labels,
            vec![("b".into(), "1".into()), ("c".into(), "\\x".into())]
        );
        assert_eq!(sample("a{} 2").labels, vec![]);
        assert_eq!(
            sample("a{b=\"}{,\"} 2").labels,
            vec![("b".into(), "}{,".into())]
        );
        assert_eq!(
            sample("a:b_c{b=\"ü\"} 2").labels,
            vec![("b".into(), "ü".into())]
        );
        assert_eq!(sample("a\t2\t5").timestamp_ms, Some(5));
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        for (text, needle) in [
            ("ok 1\n1a 2", "line 2"),
            ("a{b=\"1\" 2", "expected ','"),
            ("a{b=\"1", "unterminated"),
            ("a{b=1} 2", "expected '\"'"),
            ("a{1b=\"1\"} 2", "invalid label name"),
            ("a{b=\"1\",b=\"2\"} 2", "duplicate label name b"),
            ("a", "missing value"),
            ("a x", "invalid value"),
            ("a 1 x", "invalid timestamp"),
            ("a 1 2 3", "unexpected text"),
            ("# TYPE a wrong", "unknown metric type"),
            ("# TYPE 1a counter", "invalid metric name"),
            ("a{b=\"\\", "unterminated"),
            ("{b=\"1\"} 2", "invalid metric name"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn ignores_comments_and_blank_lines() {
        let e = parse("# just a comment\n#\n\n   \n# EOF\n").unwrap();
        assert_eq!(e, Exposition::default());
    }

    #[test]
    fn parses_prometheus_client_output() {
        use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};
        let mut reg = prometheus_client::registry::Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        reg.register("requests", "Requests \"served\".", c);
        let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        g.set(f64::NAN);
        reg.register("odd", "A NaN gauge.", g);
        let h = Histogram::new([0.1, 1.0]);
        h.observe(0.5);
        reg.register_with_unit(
            "latency",
            "Latency.",
            prometheus_client::registry::Unit::Seconds,
            h,
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        let e = parse(&text).unwrap();
        let names: Vec<_> = e.samples.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"requests_total"), "{text}");
        assert!(names.contains(&"latency_seconds_bucket"), "{text}");
        let req = e
            .samples
            .iter()
            .find(|s| s.name == "requests_total")
            .unwrap();
        assert_eq!(req.value, 3.0);
        assert!(
            e.samples
                .iter()
                .find(|s| s.name == "odd")
                .unwrap()
                .value
                .is_nan()
        );
        assert_eq!(e.metadata["requests"].metric_type, MetricType::Counter);
        assert_eq!(e.metadata["latency_seconds"].unit, "seconds");
        assert_eq!(
            e.samples
                .iter()
                .filter(|s| s.name == "latency_seconds_bucket")
                .count(),
            3
        );
    }
}
