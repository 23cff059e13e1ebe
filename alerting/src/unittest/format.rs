//! promtool's rule unit-test file format, decoded as Go's `yaml.v2`
//! `UnmarshalStrict` decodes it into promtool's structures: unknown fields,
//! duplicate keys and type mismatches are errors (each with its line);
//! any scalar decodes into a string; durations are Prometheus durations;
//! sample values are YAML numbers (`.inf`, `.nan`; a quoted number is a
//! string and refused).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::rules::yaml::{self, Kind, Node, Pos};

/// A whole test file (`unitTestFile`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestFile {
    pub rule_files: Vec<String>,
    /// `evaluation_interval`; zero when absent (the runner makes it 1m).
    pub evaluation_interval: Duration,
    pub group_eval_order: Vec<String>,
    pub tests: Vec<TestGroup>,
}

/// One entry of `tests` (`testGroup`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestGroup {
    /// Spacing of the input series' values (`interval`; zero when absent).
    pub interval: Duration,
    pub input_series: Vec<InputSeries>,
    pub alert_rule_test: Vec<AlertTestCase>,
    pub promql_expr_test: Vec<PromqlTestCase>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputSeries {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertTestCase {
    pub eval_time: Duration,
    pub alertname: String,
    pub exp_alerts: Vec<ExpAlert>,
}

/// An expected alert: labels (without `alertname`) and annotations; empty
/// values are kept, as Go's `labels.FromMap` keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpAlert {
    pub exp_labels: BTreeMap<String, String>,
    pub exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromqlTestCase {
    pub expr: String,
    pub eval_time: Duration,
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpSample {
    /// A series in the usual notation (`name{label="value"}`).
    pub labels: String,
    pub value: f64,
}

/// Why a test file does not decode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Syntax(#[from] yaml::SyntaxError),
    /// Every decoding problem, as yaml.v2 lists them.
    #[error("yaml: unmarshal errors:{}", Issues(.0))]
    Decode(Vec<(Pos, String)>),
}

struct Issues<'a>(&'a [(Pos, String)]);

impl std::fmt::Display for Issues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (pos, m) in self.0 {
            write!(f, "\n  line {}: {m}", pos.line)?;
        }
        Ok(())
    }
}

/// Decodes a test file's text.
pub fn parse(text: &str) -> Result<TestFile, FormatError> {
    let Some(doc) = yaml::parse(text)? else {
        return Ok(TestFile::default());
    };
    let mut d = Decoder::default();
    let file = d.test_file(&doc);
    if d.issues.is_empty() {
        Ok(file)
    } else {
        Err(FormatError::Decode(d.issues))
    }
}

#[derive(Default)]
struct Decoder {
    issues: Vec<(Pos, String)>,
}

impl Decoder {
    fn cannot(&mut self, node: &Node, into: &str) {
        let value = match &node.kind {
            Kind::Scalar { value, .. } => format!(" `{value}`"),
            _ => String::new(),
        };
        self.issues.push((
            node.pos,
            format!("cannot unmarshal {}{value} into {into}", node.short_tag()),
        ));
    }

    /// A mapping's pairs (null: none); duplicates and non-mappings are issues.
    fn map<'a>(&mut self, node: &'a Node, into: &str) -> Vec<(&'a str, &'a Node, Pos)> {
        if node.is_null() {
            return Vec::new();
        }
        let Kind::Map(pairs) = &node.kind else {
            self.cannot(node, into);
            return Vec::new();
        };
        let mut out: Vec<(&str, &Node, Pos)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Kind::Scalar { value: key, .. } = &k.kind else {
                self.cannot(k, "string");
                continue;
            };
            if out.iter().any(|(name, _, _)| *name == key.as_str()) {
                self.issues
                    .push((k.pos, format!("key {key:?} already set in map")));
                continue;
            }
            out.push((key.as_str(), v, k.pos));
        }
        out
    }

    /// A sequence's items (null: none).
    fn seq<'a>(&mut self, node: &'a Node, into: &str) -> &'a [Node] {
        if node.is_null() {
            return &[];
        }
        match &node.kind {
            Kind::Seq(items) => items,
            _ => {
                self.cannot(node, into);
                &[]
            }
        }
    }

    fn string(&mut self, node: &Node) -> String {
        match &node.kind {
            _ if node.is_null() => String::new(),
            Kind::Scalar { value, .. } => value.clone(),
            _ => {
                self.cannot(node, "string");
                String::new()
            }
        }
    }

    fn strings(&mut self, node: &Node) -> Vec<String> {
        let items = self.seq(node, "[]string");
        items.iter().map(|n| self.string(n)).collect()
    }

    fn string_map(&mut self, node: &Node) -> BTreeMap<String, String> {
        let pairs = self.map(node, "map[string]string");
        pairs
            .into_iter()
            .map(|(k, v, _)| (k.to_string(), self.string(v)))
            .collect()
    }

    /// `model.Duration`: the scalar as a string, then `ParseDuration`.
    fn duration(&mut self, node: &Node) -> Duration {
        if node.is_null() {
            return Duration::ZERO;
        }
        let s = self.string(node);
        match query::promql::parse_duration(&s) {
            Ok(d) => d,
            Err(_) => {
                self.issues.push((
                    node.pos,
                    format!("not a valid duration string: {}", query::gofmt::quote(&s)),
                ));
                Duration::ZERO
            }
        }
    }

    /// A `float64` field: YAML ints and floats only (yaml.v2's resolution).
    fn float(&mut self, node: &Node) -> f64 {
        if node.is_null() {
            return 0.0;
        }
        if let Kind::Scalar { value, plain, tag } = &node.kind {
            let typed = match tag.as_deref() {
                None => *plain,
                Some(t) => t == "int" || t == "float",
            };
            if typed {
                if let Some(v) = yaml::parse_int(value) {
                    return v as f64;
                }
                if let Some(v) = yaml_float(value) {
                    return v;
                }
            }
            if tag.is_none() {
                self.issues.push((
                    node.pos,
                    format!("cannot unmarshal !!str `{value}` into float64"),
                ));
                return 0.0;
            }
        }
        self.cannot(node, "float64");
        0.0
    }

    fn unknown(&mut self, pos: Pos, field: &str, ty: &str) {
        self.issues
            .push((pos, format!("field {field} not found in type main.{ty}")));
    }

    fn test_file(&mut self, node: &Node) -> TestFile {
        let mut f = TestFile::default();
        for (key, value, pos) in self.map(node, "main.unitTestFile") {
            match key {
                "rule_files" => f.rule_files = self.strings(value),
                "evaluation_interval" => f.evaluation_interval = self.duration(value),
                "group_eval_order" => f.group_eval_order = self.strings(value),
                "tests" => {
                    for item in self.seq(value, "[]main.testGroup") {
                        f.tests.push(self.test_group(item));
                    }
                }
                other => self.unknown(pos, other, "unitTestFile"),
            }
        }
        f
    }

    fn test_group(&mut self, node: &Node) -> TestGroup {
        let mut g = TestGroup::default();
        for (key, value, pos) in self.map(node, "main.testGroup") {
            match key {
                "interval" => g.interval = self.duration(value),
                "input_series" => {
                    for item in self.seq(value, "[]main.series") {
                        g.input_series.push(self.series(item));
                    }
                }
                "alert_rule_test" => {
                    for item in self.seq(value, "[]main.alertTestCase") {
                        g.alert_rule_test.push(self.alert_test(item));
                    }
                }
                "promql_expr_test" => {
                    for item in self.seq(value, "[]main.promqlTestCase") {
                        g.promql_expr_test.push(self.promql_test(item));
                    }
                }
                "external_labels" => g.external_labels = self.string_map(value),
                "external_url" => g.external_url = self.string(value),
                "name" => g.name = self.string(value),
                other => self.unknown(pos, other, "testGroup"),
            }
        }
        g
    }

    fn series(&mut self, node: &Node) -> InputSeries {
        let mut s = InputSeries::default();
        for (key, value, pos) in self.map(node, "main.series") {
            match key {
                "series" => s.series = self.string(value),
                "values" => s.values = self.string(value),
                other => self.unknown(pos, other, "series"),
            }
        }
        s
    }

    fn alert_test(&mut self, node: &Node) -> AlertTestCase {
        let mut t = AlertTestCase::default();
        for (key, value, pos) in self.map(node, "main.alertTestCase") {
            match key {
                "eval_time" => t.eval_time = self.duration(value),
                "alertname" => t.alertname = self.string(value),
                "exp_alerts" => {
                    for item in self.seq(value, "[]main.alert") {
                        t.exp_alerts.push(self.exp_alert(item));
                    }
                }
                other => self.unknown(pos, other, "alertTestCase"),
            }
        }
        t
    }

    fn exp_alert(&mut self, node: &Node) -> ExpAlert {
        let mut a = ExpAlert::default();
        for (key, value, pos) in self.map(node, "main.alert") {
            match key {
                "exp_labels" => a.exp_labels = self.string_map(value),
                "exp_annotations" => a.exp_annotations = self.string_map(value),
                other => self.unknown(pos, other, "alert"),
            }
        }
        a
    }

    fn promql_test(&mut self, node: &Node) -> PromqlTestCase {
        let mut t = PromqlTestCase::default();
        for (key, value, pos) in self.map(node, "main.promqlTestCase") {
            match key {
                "expr" => t.expr = self.string(value),
                "eval_time" => t.eval_time = self.duration(value),
                "exp_samples" => {
                    for item in self.seq(value, "[]main.sample") {
                        t.exp_samples.push(self.sample(item));
                    }
                }
                other => self.unknown(pos, other, "promqlTestCase"),
            }
        }
        t
    }

    fn sample(&mut self, node: &Node) -> ExpSample {
        let mut s = ExpSample::default();
        for (key, value, pos) in self.map(node, "main.sample") {
            match key {
                "labels" => s.labels = self.string(value),
                "value" => s.value = self.float(value),
                other => self.unknown(pos, other, "sample"),
            }
        }
        s
    }
}

/// A YAML float scalar's value as yaml.v2 resolves plain scalars: `1.5`,
/// `-.5`, `1e3`, `1.` (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`),
/// `.inf` / `-.Inf` / `+.INF`, `.nan` / `.NaN` / `.NAN`.
fn yaml_float(s: &str) -> Option<f64> {
    if matches!(s, ".nan" | ".NaN" | ".NAN") {
        return Some(f64::NAN);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    let b = body.as_bytes();
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut i = 0;
    let int = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac = digits(&mut i);
        if int == 0 && frac == 0 {
            return None;
        }
    } else if int == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_full_file() {
        let f = parse(
            r#"
rule_files: [a.yml, "b/*.yml"]
evaluation_interval: 30s
group_eval_order: [g1, g2]
tests:
  - interval: 1m
    name: first
    external_labels: {cluster: eu, n: 1}
    external_url: http://x
    input_series:
      - series: 'up{job="a"}'
        values: 1 0x3
      - series: n
        values: 5
    alert_rule_test:
      - eval_time: 5m
        alertname: Down
        exp_alerts:
          - exp_labels: {job: a, empty: ""}
            exp_annotations:
              summary: down
    promql_expr_test:
      - expr: up
        eval_time: 1m
        exp_samples:
          - labels: 'up{job="a"}'
            value: 1e0
          - labels: '{}'
            value: -.inf
          - value: 3
"#,
        )
        .unwrap();
        assert_eq!(f.rule_files, vec!["a.yml", "b/*.yml"]);
        assert_eq!(f.evaluation_interval, Duration::from_secs(30));
        assert_eq!(f.group_eval_order, vec!["g1", "g2"]);
        let g = &f.tests[0];
        assert_eq!(g.interval, Duration::from_secs(60));
        assert_eq!(g.name, "first");
        assert_eq!(g.external_labels.get("n").map(String::as_str), Some("1"));
        assert_eq!(g.input_series[0].values, "1 0x3");
        assert_eq!(g.input_series[1].values, "5");
        let a = &g.alert_rule_test[0];
        assert_eq!(a.eval_time, Duration::from_secs(300));
        assert_eq!(a.exp_alerts[0].exp_labels.get("empty").unwrap(), "");
        let p = &g.promql_expr_test[0];
        assert_eq!(p.exp_samples[0].value, 1.0);
        assert_eq!(p.exp_samples[1].value, f64::NEG_INFINITY);
        assert_eq!(p.exp_samples[2].labels, "");
        assert_eq!(p.exp_samples[2].value, 3.0);
        assert_eq!(parse("").unwrap(), TestFile::default());
    }

    #[test]
    fn strict_like_yaml_v2() {
        let e = parse("rule_files: []\nbogus: 1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "yaml: unmarshal errors:\n  line 2: field bogus not found in type main.unitTestFile"
        );
        let e = parse("tests:\n- promql_expr_test:\n  - exp_samples:\n    - value: \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4: cannot unmarshal !!str `1` into float64"),
            "{e}"
        );
        let e = parse("tests:\n- promql_expr_test:\n  - exp_samples:\n    - value: NaN\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot unmarshal !!str `NaN` into float64"),
            "{e}"
        );
        let e = parse("evaluation_interval: 5\n").unwrap_err().to_string();
        assert!(e.contains("not a valid duration string: \"5\""), "{e}");
        assert!(parse("tests: {}\n").is_err());
        assert!(parse("tests:\n- interval: 1m\n  interval: 2m\n").is_err());
        assert!(parse("tests: [\n").is_err());
        let f =
            parse("tests:\n- promql_expr_test:\n  - exp_samples:\n    - value: .NaN\n").unwrap();
        assert!(f.tests[0].promql_expr_test[0].exp_samples[0].value.is_nan());
    }
}
