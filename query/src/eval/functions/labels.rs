//! Label-manipulating functions: `label_replace` (anchored regex and Go's
//! `Regexp.Expand` template semantics), `label_join`, and the label set
//! `absent`/`absent_over_time` return.
//!
//! Arguments are validated once per call ([`LabelReplace::new`],
//! [`LabelJoin::new`]), then applied per series. Setting a label to the
//! empty string removes it. The evaluator keeps the metric name on a
//! series whose `__name__` was the destination (Prometheus's `DropName =
//! false`) and fails with "vector cannot contain metrics with the same
//! labelset" when two outputs collide at one timestamp.

use engine::{Label, Labels, METRIC_NAME, MatchOp, Matcher};
use regex::Regex;

use super::FunctionError;

/// A validated `label_replace(v, dst, replacement, src, regex)`.
#[derive(Debug, Clone)]
pub struct LabelReplace {
    dst: String,
    replacement: String,
    src: String,
    regex: Regex,
}

impl LabelReplace {
    /// Compiles `regex` anchored at both ends (`^(?s:regex)$`) and checks
    /// the destination label name.
    pub fn new(
        dst: &str,
        replacement: &str,
        src: &str,
        regex: &str,
    ) -> Result<Self, FunctionError> {
        let compiled = Regex::new(&format!("^(?s:{regex})$"))
            .map_err(|_| FunctionError::InvalidRegex(regex.to_string()))?;
        if !is_valid_label_name(dst) {
            return Err(FunctionError::InvalidDestinationLabel {
                function: "label_replace",
                name: dst.to_string(),
            });
        }
        Ok(LabelReplace {
            dst: dst.to_string(),
            replacement: replacement.to_string(),
            src: src.to_string(),
            regex: compiled,
        })
    }

    pub fn destination(&self) -> &str {
        &self.dst
    }

    /// The new label set, or `None` when the source value (`""` if absent)
    /// does not match and the series keeps its labels.
    pub fn apply(&self, labels: &Labels) -> Option<Labels> {
        let src = labels.get(&self.src).unwrap_or("");
        let caps = self.regex.captures(src)?;
        let mut value = String::with_capacity(self.replacement.len());
        expand(&self.regex, &caps, &self.replacement, &mut value);
        Some(set_label(labels, &self.dst, &value))
    }
}

/// A validated `label_join(v, dst, separator, src...)`.
#[derive(Debug, Clone)]
pub struct LabelJoin {
    dst: String,
    separator: String,
    srcs: Vec<String>,
}

impl LabelJoin {
    pub fn new(dst: &str, separator: &str, srcs: &[&str]) -> Result<Self, FunctionError> {
        if let Some(bad) = srcs.iter().find(|s| !is_valid_label_name(s)) {
            return Err(FunctionError::InvalidSourceLabel(bad.to_string()));
        }
        if !is_valid_label_name(dst) {
            return Err(FunctionError::InvalidDestinationLabel {
                function: "label_join",
                name: dst.to_string(),
            });
        }
        Ok(LabelJoin {
            dst: dst.to_string(),
            separator: separator.to_string(),
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
        })
    }

    pub fn destination(&self) -> &str {
        &self.dst
    }

    /// The series' labels with `dst` set to the joined source values
    /// (absent sources join as `""`; an empty result removes `dst`).
    pub fn apply(&self, labels: &Labels) -> Labels {
        let mut value = String::new();
        for (i, src) in self.srcs.iter().enumerate() {
            if i > 0 {
                value.push_str(&self.separator);
            }
            value.push_str(labels.get(src).unwrap_or(""));
        }
        set_label(labels, &self.dst, &value)
    }
}

/// Prometheus 3 accepts any non-empty UTF-8 label name (Rust strings are
/// always UTF-8).
fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// `labels` with `name` set to `value`, or removed when `value` is empty.
pub fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut out: Vec<Label> = Vec::with_capacity(labels.len() + 1);
    let mut placed = value.is_empty();
    for l in labels.iter() {
        if !placed && l.name.as_str() > name {
            out.push(Label::new(name, value));
            placed = true;
        }
        if l.name == name {
            if !value.is_empty() {
                out.push(Label::new(name, value));
            }
            placed = true;
            continue;
        }
        out.push(l.clone());
    }
    if !placed {
        out.push(Label::new(name, value));
    }
    Labels::from_sorted(out)
}

/// Go's `Regexp.Expand`: `$name`, `${name}`, `$1`, `${1}` and `$$`. A name
/// runs over letters, digits and `_` (so `$1x` is the group named `1x`); a
/// number with a leading zero is a name; unknown or non-participating
/// groups expand to nothing; a malformed reference keeps its `$`.
fn expand(re: &Regex, caps: &regex::Captures<'_>, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
            }
            None => {
                let found = re
                    .capture_names()
                    .enumerate()
                    .filter(|(_, n)| *n == Some(name))
                    .find_map(|(i, _)| caps.get(i));
                if let Some(m) = found {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
}

/// The reference name after a `$`: `name` or `{name}`; returns it and the
/// rest of the template.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let rest = body[end..].strip_prefix('}')?;
        return Some((name, rest));
    }
    Some((name, &body[end..]))
}

/// A group number as Go parses it: at most nine ASCII digits, no leading
/// zero.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || name.len() > 9 {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    name.parse().ok()
}

/// The labels `absent(sel)` / `absent_over_time(sel[r])` return for a
/// selector's matchers: each label with exactly one `=` matcher (other
/// than `__name__`); a label that also has another matcher is dropped.
/// For arguments that are not selectors the result is the empty set.
pub fn absent_labels(matchers: &[Matcher]) -> Labels {
    let mut pairs: Vec<Label> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !seen.contains(&m.name.as_str()) {
            pairs.retain(|l| l.name != m.name);
            pairs.push(Label::new(m.name.as_str(), m.value.as_str()));
            seen.push(&m.name);
        } else {
            pairs.retain(|l| l.name != m.name);
        }
    }
    Labels::from_pairs(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(src: &str) -> Labels {
        Labels::new(&[
            ("__name__", "testmetric"),
            ("dst", "original-destination-value"),
            ("src", src),
        ])
    }

    fn replace(dst: &str, repl: &str, src: &str, re: &str, labels: &Labels) -> Option<Labels> {
        LabelReplace::new(dst, repl, src, re).unwrap().apply(labels)
    }

    // functions.test "Tests for label_replace".
    #[test]
    fn label_replace_script_cases() {
        let m = metric("source-value-10");
        let dst = |l: Option<Labels>| l.map(|l| l.get("dst").map(str::to_string));
        assert_eq!(
            dst(replace(
                "dst",
                "destination-value-$1",
                "src",
                "source-value-(.*)",
                &m
            )),
            Some(Some("destination-value-10".into()))
        );
        // No substring match: the regex is anchored.
        assert_eq!(
            replace("dst", "destination-value-$1", "src", "value-(.*)", &m),
            None
        );
        assert_eq!(
            dst(replace("dst", "$1-value-$2", "src", "(.*)-value-(.*)", &m)),
            Some(Some("source-value-10".into()))
        );
        assert_eq!(
            replace(
                "dst",
                "value-$1",
                "nonexistent-src",
                "source-value-(.*)",
                &m
            ),
            None
        );
        assert_eq!(
            dst(replace("dst", "value-$1", "nonexistent-src", "(.*)", &m)),
            Some(Some("value-".into()))
        );
        assert_eq!(
            replace("dst", "value-$1", "src", "non-matching-regex", &m),
            None
        );
        // Setting the empty string drops the label.
        let dropped = replace("dst", "", "dst", ".*", &m).unwrap();
        assert_eq!(
            dropped,
            Labels::new(&[("__name__", "testmetric"), ("src", "source-value-10")])
        );
        // A new destination is inserted in order.
        let added = replace("aaa", "x", "src", ".*", &m).unwrap();
        assert_eq!(
            added.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["__name__", "aaa", "dst", "src"]
        );
    }

    #[test]
    fn label_replace_errors() {
        assert_eq!(
            LabelReplace::new("dst", "value-$1", "src", "(.*")
                .unwrap_err()
                .to_string(),
            "invalid regular expression in label_replace(): (.*"
        );
        assert_eq!(
            LabelReplace::new("", "", "src", "(.*)")
                .unwrap_err()
                .to_string(),
            "invalid destination label name in label_replace(): "
        );
    }

    #[test]
    fn go_expand_semantics() {
        let l = Labels::new(&[("a", "foo-bar")]);
        let r = |repl: &str, re: &str| {
            LabelReplace::new("out", repl, "a", re)
                .unwrap()
                .apply(&l)
                .and_then(|l| l.get("out").map(str::to_string))
                .unwrap_or_default()
        };
        assert_eq!(r("${1}x", "(.*)-(.*)"), "foox");
        // `$1x` names the group "1x", which does not exist.
        assert_eq!(r("$1x", "(.*)-(.*)"), "");
        assert_eq!(r("$2-$1", "(.*)-(.*)"), "bar-foo");
        assert_eq!(r("$$1", "(.*)-(.*)"), "$1");
        assert_eq!(
            r("$first/${second}", "(?P<first>.*)-(?P<second>.*)"),
            "foo/bar"
        );
        assert_eq!(r("$9 end", "(.*)-(.*)"), " end");
        // Malformed references keep the `$`.
        assert_eq!(r("a$-b", "(.*)-(.*)"), "a$-b");
        assert_eq!(r("${1", "(.*)-(.*)"), "${1");
        assert_eq!(r("cost: $", "(.*)-(.*)"), "cost: $");
        // Leading zero: a name, not group 1.
        assert_eq!(r("$01", "(.*)-(.*)"), "");
        assert_eq!(r("$0", "(.*)-(.*)"), "foo-bar");
        // A group that did not participate expands to nothing.
        assert_eq!(r("[$2]", "(foo)-(x)?bar"), "[]");
        // (?s): `.` matches newlines too.
        let nl = Labels::new(&[("a", "x\ny")]);
        let got = LabelReplace::new("out", "$1", "a", "(.*)")
            .unwrap()
            .apply(&nl)
            .unwrap();
        assert_eq!(got.get("out"), Some("x\ny"));
    }

    // functions.test "Tests for label_join".
    #[test]
    fn label_join_script_cases() {
        let m = Labels::new(&[
            ("__name__", "testmetric"),
            ("dst", "original-destination-value"),
            ("src", "a"),
            ("src1", "b"),
            ("src2", "c"),
        ]);
        let join = |dst, sep, srcs: &[&str]| LabelJoin::new(dst, sep, srcs).unwrap().apply(&m);
        assert_eq!(
            join("dst", "-", &["src", "src1", "src2"]).get("dst"),
            Some("a-b-c")
        );
        assert_eq!(
            join("dst", "-", &["src", "src3", "src1"]).get("dst"),
            Some("a--b")
        );
        assert_eq!(
            join("dst", "", &["emptysrc", "emptysrc1", "emptysrc2"]).get("dst"),
            None
        );
        assert_eq!(join("dst", ", ", &[]).get("dst"), None);
        assert_eq!(join("new", ", ", &["src", "src1"]).get("new"), Some("a, b"));
        assert_eq!(
            LabelJoin::new("", "-", &["a"]).unwrap_err().to_string(),
            "invalid destination label name in label_join(): "
        );
        assert_eq!(
            LabelJoin::new("d", "-", &["a", ""])
                .unwrap_err()
                .to_string(),
            "invalid source label name in label_join(): "
        );
    }

    // functions.test "Test for absent()" / absent_over_time.
    #[test]
    fn absent_label_derivation() {
        let eq = |n: &str, v: &str| Matcher::new(MatchOp::Equal, n, v).unwrap();
        let re = |n: &str, v: &str| Matcher::new(MatchOp::RegexMatch, n, v).unwrap();
        let ne = |n: &str, v: &str| Matcher::new(MatchOp::NotEqual, n, v).unwrap();
        assert_eq!(
            absent_labels(&[eq("__name__", "nonexistent")]),
            Labels::default()
        );
        assert_eq!(
            absent_labels(&[
                eq("job", "testjob"),
                eq("instance", "testinstance"),
                re("method", ".x")
            ]),
            Labels::new(&[("instance", "testinstance"), ("job", "testjob")])
        );
        assert_eq!(
            absent_labels(&[
                eq("job", "testjob"),
                eq("job", "testjob2"),
                eq("foo", "bar")
            ]),
            Labels::new(&[("foo", "bar")])
        );
        assert_eq!(
            absent_labels(&[
                eq("job", "a"),
                eq("job", "b"),
                eq("job", "c"),
                eq("foo", "bar")
            ]),
            Labels::new(&[("foo", "bar")])
        );
        assert_eq!(
            absent_labels(&[
                eq("job", "testjob"),
                re("job", "testjob2"),
                eq("foo", "bar")
            ]),
            Labels::new(&[("foo", "bar")])
        );
        assert_eq!(absent_labels(&[ne("handler", "/foo")]), Labels::default());
        assert_eq!(
            absent_labels(&[
                eq("handler", "/foo"),
                eq("handler", "/bar"),
                eq("instance", "127.0.0.1")
            ]),
            Labels::new(&[("instance", "127.0.0.1")])
        );
        // An equality matcher on the empty string sets nothing.
        assert_eq!(absent_labels(&[eq("job", "")]), Labels::default());
    }
}
