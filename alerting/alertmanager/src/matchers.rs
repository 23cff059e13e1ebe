//! Label matchers as Alertmanager writes them (`name op value`, ops `=`,
//! `!=`, `=~`, `!~`), their parser (`pkg/labels/parse.go` semantics), and
//! the Go-compatible printing that group keys and route keys are built from.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use crate::types::LabelSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    Format(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid regular expression {value:?}: {message}")]
    BadRegex { value: String, message: String },
    #[error("invalid label name {0:?}")]
    BadName(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchType::Regexp | MatchType::NotRegexp)
    }

    pub fn is_equal(self) -> bool {
        matches!(self, MatchType::Equal | MatchType::Regexp)
    }

    pub fn from_flags(is_regex: bool, is_equal: bool) -> MatchType {
        match (is_regex, is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        }
    }
}

/// One label matcher. A missing label matches as the empty string; regexes
/// are fully anchored.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchType,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn new(op: MatchType, name: &str, value: &str) -> Result<Matcher, MatcherError> {
        let re = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?s:{value})$")).map_err(|e| MatcherError::BadRegex {
                    value: value.to_string(),
                    message: e.to_string(),
                })?,
            )
        } else {
            None
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            re,
        })
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match self.op {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regexp => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchType::NotRegexp => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Sort order of Alertmanager's `Matchers.Less`: name, value, type.
    pub fn sort_key(&self) -> (&str, &str, MatchType) {
        (&self.name, &self.value, self.op)
    }
}

/// True iff every matcher matches (an empty list matches everything).
pub fn matches_all(ms: &[Matcher], labels: &LabelSet) -> bool {
    ms.iter().all(|m| m.matches(labels))
}

fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.contains(is_reserved) {
            write!(
                f,
                "{}{}{}",
                go_quote(&self.name),
                self.op.as_str(),
                go_quote(&self.value)
            )
        } else {
            let escaped = self
                .value
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('"', "\\\"");
            write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), escaped)
        }
    }
}

/// `{a="b",c=~"d"}` as Alertmanager's `Matchers.String`.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let mut out = String::from("{");
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&m.to_string());
    }
    out.push('}');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{a="b", c="d"}` as Prometheus's `model.LabelSet.String` (pairs printed
/// with `%q` and sorted as strings).
pub fn labelset_string(ls: &LabelSet) -> String {
    let mut parts: Vec<String> = ls
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    parts.sort();
    format!("{{{}}}", parts.join(", "))
}

pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses one `name op value` matcher (value optionally double-quoted, with
/// `\"`, `\\` and `\n` escapes).
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let t = s.trim();
    let name_end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(t.len());
    let name = &t[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(MatcherError::Format(s.to_string()));
    }
    let rest = t[name_end..].trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(MatcherError::Format(s.to_string()));
    };
    let raw_all = rest.trim();
    let (raw, mut expect_quote) = match raw_all.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_all, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    let last = raw.len().saturating_sub(1);
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' => {
                if i < last {
                    escaped = true;
                } else {
                    value.push('\\');
                }
            }
            '"' => {
                if !expect_quote || i < last {
                    return Err(MatcherError::UnescapedQuote(raw_all.to_string()));
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw_all.to_string()));
    }
    Matcher::new(op, name, &value)
}

/// Parses a comma-separated list, optionally in braces: `{a="b", c=~"d"}`.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = s.trim();
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if !escaped {
                    in_quotes = !in_quotes;
                } else {
                    escaped = false;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token);
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// A YAML list of matcher strings (`matchers:`, `source_matchers:`, ...);
/// each entry may hold several comma-separated matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatcherList(pub Vec<Matcher>);

impl<'de> Deserialize<'de> for MatcherList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for line in &lines {
            out.extend(parse_matchers(line).map_err(serde::de::Error::custom)?);
        }
        Ok(MatcherList(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_the_four_ops_and_quotes() {
        let m = parse_matcher(r#"severity="critical""#).unwrap();
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            ("severity", MatchType::Equal, "critical")
        );
        let m = parse_matcher(r#" env =~ "prod|staging" "#).unwrap();
        assert_eq!(m.op, MatchType::Regexp);
        assert!(m.matches(&ls(&[("env", "prod")])));
        assert!(!m.matches(&ls(&[("env", "production")])));
        let m = parse_matcher("team!=ops").unwrap();
        assert!(m.matches(&ls(&[])));
        let m = parse_matcher("a!~b.*").unwrap();
        assert!(!m.matches(&ls(&[("a", "bc")])));
        let m = parse_matcher(r#"a="x\"y\\z""#).unwrap();
        assert_eq!(m.value, "x\"y\\z");
        assert!(parse_matcher(r#"a="x"y""#).is_err());
        assert!(parse_matcher(r#"a="x"#).is_err());
        assert!(parse_matcher("1a=b").is_err());
        assert!(parse_matcher("a<b").is_err());
        assert!(parse_matcher("a=~(").is_err());
    }

    #[test]
    fn parses_lists_with_commas_in_quotes() {
        let ms = parse_matchers(r#"{a="b,c", d=~"e"}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].value, "b,c");
        assert_eq!(matchers_string(&ms), r#"{a="b,c",d=~"e"}"#);
    }

    #[test]
    fn missing_label_is_empty() {
        let m = parse_matcher(r#"a="""#).unwrap();
        assert!(m.matches(&ls(&[])));
        let m = parse_matcher(r#"a=~".*""#).unwrap();
        assert!(m.matches(&ls(&[])));
    }

    #[test]
    fn labelset_printing_matches_go() {
        let s = labelset_string(&ls(&[("cluster", "eu"), ("alertname", "X\"y")]));
        assert_eq!(s, r#"{alertname="X\"y", cluster="eu"}"#);
        assert_eq!(labelset_string(&LabelSet::new()), "{}");
        // Go sorts the printed pairs: `a0=` sorts before `a=`.
        assert_eq!(
            labelset_string(&ls(&[("a", "1"), ("a0", "2")])),
            r#"{a0="2", a="1"}"#
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Printing a matcher and parsing it back gives the same matcher.
        #[test]
        fn print_parse_round_trip(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            value in "\\PC{0,12}|[\"\\\\\n,{} =~!]{0,6}",
            negative in any::<bool>(),
        ) {
            let op = if negative { MatchType::NotEqual } else { MatchType::Equal };
            let m = Matcher::new(op, &name, &value).unwrap();
            let printed = m.to_string();
            let back = parse_matcher(&printed).unwrap();
            prop_assert_eq!(&back, &m, "printed as {}", printed);
            let list = parse_matchers(&matchers_string(std::slice::from_ref(&m))).unwrap();
            prop_assert_eq!(list, vec![m]);
        }

        /// Arbitrary input never panics the parsers.
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_matchers(&s);
            let _ = parse_matcher(&s);
            let _ = crate::duration::parse_duration(&s);
            let _ = crate::config::Config::parse(&s, "fuzz.yml");
        }
    }
}
