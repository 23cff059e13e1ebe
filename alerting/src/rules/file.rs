//! Prometheus rule files: the YAML format (`groups:` of recording and
//! alerting rules), decoded strictly (unknown fields are errors) and
//! validated as `promtool check rules` and the rule loader do
//! (`model/rulefmt`). Every error names the file and a line (and column).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use query::gofmt::quote;

use super::yaml::{self, Kind, Node, Pos, SyntaxError};

/// The contents of one rule file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together, in order, on one interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleGroup {
    pub name: String,
    /// `None`: the global evaluation interval.
    pub interval: Option<Duration>,
    /// `None`: the global rule query offset.
    pub query_offset: Option<Duration>,
    /// Most alerts (alerting rule) or series (recording rule) per rule and
    /// evaluation; 0 or less is unlimited.
    pub limit: i64,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    /// Where the group's mapping starts.
    pub pos: Pos,
}

/// One recording (`record`) or alerting (`alert`) rule, as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    pub record: String,
    pub alert: String,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Where the rule's mapping starts.
    pub pos: Pos,
    record_pos: Option<Pos>,
    alert_pos: Option<Pos>,
    expr_pos: Option<Pos>,
    label_pos: BTreeMap<String, Pos>,
    annotation_pos: BTreeMap<String, Pos>,
}

impl Rule {
    /// The rule's name: the alert name or the recorded metric.
    pub fn name(&self) -> &str {
        if self.alert.is_empty() {
            &self.record
        } else {
            &self.alert
        }
    }
}

/// One decoding problem: a line and Go yaml's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeIssue {
    pub pos: Pos,
    pub message: String,
}

/// Why a rule file is invalid. Printed as promtool prints it, starting
/// with the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleFileError {
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{file}: {source}")]
    Syntax { file: String, source: SyntaxError },
    #[error("{file}: yaml: unmarshal errors:{}", DecodeList(.issues))]
    Decode {
        file: String,
        issues: Vec<DecodeIssue>,
    },
    #[error("{file}: {}:{}: {message}", .pos.line, .pos.col)]
    Group {
        file: String,
        pos: Pos,
        message: String,
    },
    #[error("{file}: {}group {}, rule {index}, {}: {message}", RulePos(.pos, .alt), quote(.group), quote(.rule))]
    Rule {
        file: String,
        pos: Pos,
        /// The second position of errors about two fields (`record` and `alert`).
        alt: Option<Pos>,
        group: String,
        /// 1-based index of the rule in its group.
        index: usize,
        rule: String,
        message: String,
    },
}

impl RuleFileError {
    /// The line the error is about (0 when it has none).
    pub fn line(&self) -> usize {
        match self {
            RuleFileError::Read { .. } => 0,
            RuleFileError::Syntax { source, .. } => source.line,
            RuleFileError::Decode { issues, .. } => issues.first().map_or(0, |i| i.pos.line),
            RuleFileError::Group { pos, .. } | RuleFileError::Rule { pos, .. } => pos.line,
        }
    }
}

struct DecodeList<'a>(&'a [DecodeIssue]);

impl fmt::Display for DecodeList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.0 {
            write!(f, "\n  line {}: {}", i.pos.line, i.message)?;
        }
        Ok(())
    }
}

struct RulePos<'a>(&'a Pos, &'a Option<Pos>);

impl fmt::Display for RulePos<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.0.line, self.0.col)?;
        if let Some(alt) = self.1 {
            write!(f, "{}:{}: ", alt.line, alt.col)?;
        }
        Ok(())
    }
}

/// Reads and validates one rule file.
pub fn parse_file(path: &Path) -> Result<RuleGroups, Vec<RuleFileError>> {
    let file = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Err(vec![RuleFileError::Read {
                message: format!("open {file}: {}", io_message(&e)),
                file,
            }]);
        }
    };
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(_) => {
            return Err(vec![RuleFileError::Read {
                file,
                message: "yaml: invalid UTF-8 in rule file".into(),
            }]);
        }
    };
    parse(&file, &text)
}

/// Go's wording for the common I/O errors.
fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Decodes and validates rule file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<RuleGroups, Vec<RuleFileError>> {
    let doc = match yaml::parse(text) {
        Ok(d) => d,
        Err(source) => {
            return Err(vec![RuleFileError::Syntax {
                file: file.to_string(),
                source,
            }]);
        }
    };
    let mut d = Decoder::default();
    let groups = match &doc {
        Some(node) => d.rule_groups(node),
        None => RuleGroups::default(),
    };
    if !d.issues.is_empty() {
        return Err(vec![RuleFileError::Decode {
            file: file.to_string(),
            issues: d.issues,
        }]);
    }
    let errs = validate(file, &groups);
    if errs.is_empty() {
        Ok(groups)
    } else {
        Err(errs)
    }
}

/// Decodes nodes into the rule structures as Go's yaml.v3 does with
/// `KnownFields(true)`, collecting every problem.
#[derive(Default)]
struct Decoder {
    issues: Vec<DecodeIssue>,
}

impl Decoder {
    fn issue(&mut self, pos: Pos, message: String) {
        self.issues.push(DecodeIssue { pos, message });
    }

    fn cannot(&mut self, node: &Node, into: &str) {
        let value = match &node.kind {
            Kind::Scalar { value, .. } => format!(" `{value}`"),
            _ => String::new(),
        };
        self.issue(
            node.pos,
            format!("cannot unmarshal {}{value} into {into}", node.short_tag()),
        );
    }

    /// The pairs of a mapping, with duplicate keys reported; `None` (and
    /// an issue) when the node is not a mapping. A null node is empty.
    fn map<'a>(&mut self, node: &'a Node, into: &str) -> Option<Vec<(&'a str, &'a Node, Pos)>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let Kind::Map(pairs) = &node.kind else {
            self.cannot(node, into);
            return None;
        };
        let mut out: Vec<(&str, &Node, Pos)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Kind::Scalar { value: key, .. } = &k.kind else {
                self.cannot(k, "string");
                continue;
            };
            if let Some((_, _, first)) = out.iter().find(|(name, _, _)| *name == key.as_str()) {
                let line = first.line;
                self.issue(
                    k.pos,
                    format!("mapping key {} already defined at line {line}", quote(key)),
                );
                continue;
            }
            out.push((key.as_str(), v, k.pos));
        }
        Some(out)
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

    fn int(&mut self, node: &Node) -> i64 {
        if node.is_null() {
            return 0;
        }
        if let Kind::Scalar {
            value,
            plain: true,
            tag: None,
        } = &node.kind
            && let Some(v) = yaml::parse_int(value)
        {
            return v;
        }
        if let Kind::Scalar {
            value,
            tag: Some(t),
            ..
        } = &node.kind
            && t == "int"
            && let Some(v) = yaml::parse_int(value)
        {
            return v;
        }
        self.cannot(node, "int");
        0
    }

    fn duration(&mut self, node: &Node) -> Duration {
        if node.is_null() {
            return Duration::ZERO;
        }
        let s = self.string(node);
        match query::promql::parse_duration(&s) {
            Ok(d) => d,
            Err(e) => {
                // Rule files use `model.ParseDuration`, which words every
                // malformed string the same way.
                let message = match e {
                    query::promql::DurationError::Empty => e.to_string(),
                    _ => format!("not a valid duration string: {}", quote(&s)),
                };
                self.issue(node.pos, message);
                Duration::ZERO
            }
        }
    }

    fn string_map(&mut self, node: &Node) -> (BTreeMap<String, String>, BTreeMap<String, Pos>) {
        let mut out = BTreeMap::new();
        let mut pos = BTreeMap::new();
        if let Some(pairs) = self.map(node, "map[string]string") {
            for (k, v, p) in pairs {
                let v = self.string(v);
                out.insert(k.to_string(), v);
                pos.insert(k.to_string(), p);
            }
        }
        (out, pos)
    }

    fn unknown(&mut self, pos: Pos, field: &str, ty: &str) {
        self.issue(pos, format!("field {field} not found in type rulefmt.{ty}"));
    }

    fn rule_groups(&mut self, node: &Node) -> RuleGroups {
        let mut out = RuleGroups::default();
        let Some(pairs) = self.map(node, "rulefmt.RuleGroups") else {
            return out;
        };
        for (key, value, pos) in pairs {
            match key {
                "groups" => {
                    if value.is_null() {
                        continue;
                    }
                    let Kind::Seq(items) = &value.kind else {
                        self.cannot(value, "[]rulefmt.RuleGroup");
                        continue;
                    };
                    for item in items {
                        out.groups.push(self.group(item));
                    }
                }
                other => self.unknown(pos, other, "RuleGroups"),
            }
        }
        out
    }

    fn group(&mut self, node: &Node) -> RuleGroup {
        let mut g = RuleGroup {
            pos: node.pos,
            ..RuleGroup::default()
        };
        let Some(pairs) = self.map(node, "rulefmt.RuleGroup") else {
            return g;
        };
        for (key, value, pos) in pairs {
            match key {
                "name" => g.name = self.string(value),
                "interval" => {
                    let d = self.duration(value);
                    g.interval = (!d.is_zero()).then_some(d);
                }
                "query_offset" => {
                    g.query_offset = (!value.is_null()).then(|| self.duration(value));
                }
                "limit" => g.limit = self.int(value),
                "labels" => g.labels = self.string_map(value).0,
                "rules" => {
                    if value.is_null() {
                        continue;
                    }
                    let Kind::Seq(items) = &value.kind else {
                        self.cannot(value, "[]rulefmt.Rule");
                        continue;
                    };
                    for item in items {
                        g.rules.push(self.rule(item));
                    }
                }
                other => self.unknown(pos, other, "RuleGroup"),
            }
        }
        g
    }

    fn rule(&mut self, node: &Node) -> Rule {
        let mut r = Rule {
            pos: node.pos,
            ..Rule::default()
        };
        let Some(pairs) = self.map(node, "rulefmt.Rule") else {
            return r;
        };
        for (key, value, pos) in pairs {
            match key {
                "record" => {
                    r.record = self.string(value);
                    r.record_pos = Some(value.pos);
                }
                "alert" => {
                    r.alert = self.string(value);
                    r.alert_pos = Some(value.pos);
                }
                "expr" => {
                    r.expr = self.string(value);
                    r.expr_pos = Some(value.pos);
                }
                "for" => r.for_ = self.duration(value),
                "keep_firing_for" => r.keep_firing_for = self.duration(value),
                "labels" => (r.labels, r.label_pos) = self.string_map(value),
                "annotations" => (r.annotations, r.annotation_pos) = self.string_map(value),
                other => self.unknown(pos, other, "Rule"),
            }
        }
        r
    }
}

/// Prometheus 3's (UTF-8) label name rule: any non-empty string.
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// The semantic checks of `rulefmt.RuleGroups.Validate`.
fn validate(file: &str, groups: &RuleGroups) -> Vec<RuleFileError> {
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let group_err = |pos: Pos, message: String| RuleFileError::Group {
        file: file.to_string(),
        pos,
        message,
    };
    for g in &groups.groups {
        if g.name.is_empty() {
            errs.push(group_err(g.pos, "Groupname must not be empty".into()));
        }
        if !seen.insert(g.name.as_str()) {
            errs.push(group_err(
                g.pos,
                format!("groupname: \"{}\" is repeated in the same file", g.name),
            ));
        }
        for name in g.labels.keys() {
            if !valid_label_name(name) || name == engine::METRIC_NAME {
                errs.push(group_err(g.pos, format!("invalid label name: {name}")));
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            for (pos, alt, message) in validate_rule(r) {
                errs.push(RuleFileError::Rule {
                    file: file.to_string(),
                    pos,
                    alt,
                    group: g.name.clone(),
                    index: i + 1,
                    rule: r.name().to_string(),
                    message,
                });
            }
        }
    }
    errs
}

type RuleIssue = (Pos, Option<Pos>, String);

/// `rulefmt.Rule.Validate`: problems of one rule, positioned at the field
/// they are about (the rule itself when the field is missing).
fn validate_rule(r: &Rule) -> Vec<RuleIssue> {
    let mut out: Vec<RuleIssue> = Vec::new();
    let record_pos = r.record_pos.unwrap_or(r.pos);
    let alert_pos = r.alert_pos.unwrap_or(r.pos);
    if !r.record.is_empty() && !r.alert.is_empty() {
        out.push((
            record_pos,
            Some(alert_pos),
            "only one of 'record' and 'alert' must be set".into(),
        ));
    }
    if r.record.is_empty() && r.alert.is_empty() {
        out.push((
            record_pos,
            Some(alert_pos),
            "one of 'record' or 'alert' must be set".into(),
        ));
    }
    let expr_pos = r.expr_pos.unwrap_or(r.pos);
    if r.expr.is_empty() {
        out.push((expr_pos, None, "field 'expr' must be set in rule".into()));
    } else if let Err(e) = query::promql::parse(&r.expr) {
        out.push((expr_pos, None, format!("could not parse expression: {e}")));
    }
    if !r.record.is_empty() {
        if !r.annotations.is_empty() {
            out.push((
                record_pos,
                None,
                "invalid field 'annotations' in recording rule".into(),
            ));
        }
        if !r.for_.is_zero() {
            out.push((
                record_pos,
                None,
                "invalid field 'for' in recording rule".into(),
            ));
        }
        if !r.keep_firing_for.is_zero() {
            out.push((
                record_pos,
                None,
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
        if !valid_label_name(&r.record) {
            out.push((
                record_pos,
                None,
                format!("invalid recording rule name: {}", r.record),
            ));
        }
        if r.record.contains('{') || r.record.contains('}') {
            out.push((
                record_pos,
                None,
                format!(
                    "braces present in the recording rule name; should it be in expr?: {}",
                    r.record
                ),
            ));
        }
    }
    for name in r.labels.keys() {
        if !valid_label_name(name) || name == engine::METRIC_NAME {
            let pos = r.label_pos.get(name).copied().unwrap_or(r.pos);
            out.push((pos, None, format!("invalid label name: {name}")));
        }
    }
    for name in r.annotations.keys() {
        if !valid_label_name(name) {
            let pos = r.annotation_pos.get(name).copied().unwrap_or(r.pos);
            out.push((pos, None, format!("invalid annotation name: {name}")));
        }
    }
    if !r.alert.is_empty() {
        for (name, text) in &r.labels {
            if let Err(e) = crate::template::check(&r.alert, text) {
                let pos = r.label_pos.get(name).copied().unwrap_or(r.pos);
                out.push((pos, None, format!("label {}: {e}", quote(name))));
            }
        }
        for (name, text) in &r.annotations {
            if let Err(e) = crate::template::check(&r.alert, text) {
                let pos = r.annotation_pos.get(name).copied().unwrap_or(r.pos);
                out.push((pos, None, format!("annotation {}: {e}", quote(name))));
            }
        }
    }
    out
}

/// The outcome of checking one file, as `promtool check rules` reports it.
#[derive(Debug, Clone)]
pub struct FileCheck {
    pub file: PathBuf,
    /// Rules found (valid files only).
    pub rules: usize,
    pub errors: Vec<RuleFileError>,
    /// Lint findings (duplicate rules); they do not fail the check.
    pub lint: Vec<String>,
}

impl FileCheck {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks each file as `promtool check rules` does (with the default
/// `--lint=duplicate-rules`).
pub fn check_files(paths: &[PathBuf]) -> Vec<FileCheck> {
    paths
        .iter()
        .map(|p| match parse_file(p) {
            Ok(groups) => FileCheck {
                file: p.clone(),
                rules: groups.groups.iter().map(|g| g.rules.len()).sum(),
                errors: Vec::new(),
                lint: duplicate_rules(&groups),
            },
            Err(errors) => FileCheck {
                file: p.clone(),
                rules: 0,
                errors,
                lint: Vec::new(),
            },
        })
        .collect()
}

/// Writes promtool's report: `Checking FILE` and `  SUCCESS: N rules found`
/// to `out`, `  FAILED:` and the errors to `err`. Returns the exit code
/// (0 success, 1 when any file has errors; lint findings do not fail).
pub fn report(
    checks: &[FileCheck],
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::io::Result<i32> {
    let mut code = 0;
    for c in checks {
        writeln!(out, "Checking {}", c.file.display())?;
        if !c.errors.is_empty() {
            code = 1;
            writeln!(err, "  FAILED:")?;
            for e in &c.errors {
                writeln!(err, "{e}")?;
            }
            // promtool moves on to the next file without a blank line.
            continue;
        } else if !c.lint.is_empty() {
            writeln!(err, "  FAILED:")?;
            for l in &c.lint {
                writeln!(err, "lint error {l}")?;
            }
        } else {
            writeln!(out, "  SUCCESS: {} rules found", c.rules)?;
        }
        writeln!(out)?;
    }
    Ok(code)
}

/// promtool's duplicate-rules lint: rules with the same name and the same
/// (group + rule) labels.
fn duplicate_rules(groups: &RuleGroups) -> Vec<String> {
    let mut all: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for g in &groups.groups {
        for r in &g.rules {
            let mut labels = g.labels.clone();
            labels.extend(r.labels.clone());
            labels.retain(|_, v| !v.is_empty());
            all.push((r.name().to_string(), labels));
        }
    }
    all.sort();
    let mut dups: Vec<&(String, BTreeMap<String, String>)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && dups.last().is_none_or(|d| **d != w[1]) {
            dups.push(&w[1]);
        }
    }
    if dups.is_empty() {
        return Vec::new();
    }
    let mut msg = format!("{} duplicate rule(s) found.\n", dups.len());
    for (metric, labels) in dups {
        msg.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
        for (k, v) in labels {
            msg.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    msg.push_str("Might cause inconsistency while recording expressions");
    vec![msg]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse("r.yml", text)
            .expect_err("should fail")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn parses_a_valid_file() {
        let g = parse(
            "r.yml",
            "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  limit: 10\n  labels: {team: a}\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    labels: {severity: page}\n    annotations: {summary: 'x'}\n",
        )
        .unwrap();
        let g = &g.groups[0];
        assert_eq!(g.name, "g");
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(g.limit, 10);
        assert_eq!(g.rules.len(), 2);
        assert_eq!(g.rules[1].for_, Duration::from_secs(300));
        assert_eq!(g.rules[1].keep_firing_for, Duration::from_secs(60));
        assert_eq!(g.rules[1].pos.line, 10);
    }

    #[test]
    fn unknown_fields_and_types_name_lines() {
        let e = errors("groups:\n- name: g\n  rules:\n  - record: a\n    exprr: up\n");
        assert_eq!(
            e,
            [
                "r.yml: yaml: unmarshal errors:\n  line 5: field exprr not found in type rulefmt.Rule"
            ]
        );
        let e = errors("groups:\n- name: g\n  limit: many\n  rules: []\n");
        assert_eq!(
            e,
            ["r.yml: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `many` into int"]
        );
        let e = errors("groups:\n- name: g\n  name: h\n");
        assert!(
            e[0].contains("line 3: mapping key \"name\" already defined at line 2"),
            "{e:?}"
        );
        let e = errors("groups:\n- name: g\n  interval: 5x\n");
        assert!(
            e[0].contains("line 3: not a valid duration string: \"5x\""),
            "{e:?}"
        );
        let e = errors("groups: [\n");
        assert!(e[0].starts_with("r.yml: yaml: line "), "{e:?}");
    }

    #[test]
    fn semantic_errors_name_positions() {
        let e = errors(
            "groups:\n- name: g\n  rules:\n  - record: a{b}\n    expr: sum(\n    for: 1m\n  - alert: A\n    record: b\n    expr: up\n  - expr: up\n- name: g\n  rules: []\n",
        );
        assert_eq!(
            e,
            [
                "r.yml: 5:11: group \"g\", rule 1, \"a{b}\": could not parse expression: 1:5: parse error: unclosed left parenthesis",
                "r.yml: 4:13: group \"g\", rule 1, \"a{b}\": invalid field 'for' in recording rule",
                "r.yml: 4:13: group \"g\", rule 1, \"a{b}\": braces present in the recording rule name; should it be in expr?: a{b}",
                "r.yml: 8:13: 7:12: group \"g\", rule 2, \"A\": only one of 'record' and 'alert' must be set",
                "r.yml: 10:5: 10:5: group \"g\", rule 3, \"\": one of 'record' or 'alert' must be set",
                "r.yml: 11:3: groupname: \"g\" is repeated in the same file",
            ]
        );
    }

    #[test]
    fn label_and_annotation_checks() {
        let e = errors(
            "groups:\n- name: g\n  labels: {__name__: x}\n  rules:\n  - record: r\n    expr: up\n    annotations: {a: b}\n    labels: {__name__: y}\n",
        );
        assert_eq!(
            e,
            [
                "r.yml: 2:3: invalid label name: __name__",
                "r.yml: 5:13: group \"g\", rule 1, \"r\": invalid field 'annotations' in recording rule",
                "r.yml: 8:14: group \"g\", rule 1, \"r\": invalid label name: __name__",
            ]
        );
    }

    #[test]
    fn report_matches_promtool() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.yml");
        std::fs::write(
            &good,
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n",
        )
        .unwrap();
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "groups:\n- name: g\n  rules:\n  - record: a\n").unwrap();
        let checks = check_files(&[good.clone(), bad.clone()]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = report(&checks, &mut out, &mut err).unwrap();
        assert_eq!(code, 1);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            format!(
                "Checking {}\n  SUCCESS: 1 rules found\n\nChecking {}\n",
                good.display(),
                bad.display()
            )
        );
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            err,
            format!(
                "  FAILED:\n{}: 4:5: group \"g\", rule 1, \"a\": field 'expr' must be set in rule\n",
                bad.display()
            )
        );
    }

    #[test]
    fn duplicate_rules_lint() {
        let g = parse(
            "r.yml",
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n  - record: a\n    expr: down\n",
        )
        .unwrap();
        let lint = duplicate_rules(&g);
        assert_eq!(
            lint,
            [
                "1 duplicate rule(s) found.\nMetric: a\nLabel(s):\nMight cause inconsistency while recording expressions"
            ]
        );
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn template_errors_are_reported_per_field() {
        let e = parse(
            "r.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    labels:\n      sev: '{{ $labels.x'\n    annotations:\n      summary: '{{ nosuch }}'\n      ok: '{{ $value | humanize }}'\n",
        )
        .unwrap_err();
        let e: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with(
                "r.yml: 7:7: group \"g\", rule 1, \"A\": label \"sev\": template: __alert_A:1:"
            ),
            "{e:?}"
        );
        assert!(e[1].starts_with("r.yml: 9:7: group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1: function \"nosuch\" not defined"), "{e:?}");
    }
}
