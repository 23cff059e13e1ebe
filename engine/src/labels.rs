//! Label sets and label matchers.
//!
//! A [`Labels`] is a set of name/value pairs sorted by name with unique names
//! and no empty values; [`Labels::from_pairs`] establishes that invariant and
//! every other constructor preserves it. A [`Matcher`] is one of Prometheus's
//! four matchers; regular expressions are fully anchored, as in PromQL.

use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use regex::Regex;

/// The label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: CompactString,
    pub value: CompactString,
}

impl Label {
    pub fn new(name: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A sorted set of labels identifying one series.
///
/// Shared and immutable: a clone is a reference-count increment, so the
/// head and blocks hand out the same label set to every query that selects
/// the series, and comparing a label set with a clone of itself is a pointer
/// comparison.
///
/// The pairs sit side by side in that one allocation, and a name or value
/// of up to 24 bytes (almost all of them) sits in its pair
/// ([`CompactString`]): reading a set's labels follows one pointer, not one
/// per string, and building one allocates no string of that size.
#[derive(Debug, Clone, Default)]
pub struct Labels(Arc<[Label]>);

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

/// Why a label set is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("empty label name")]
    EmptyName,
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
}

impl Labels {
    /// Builds a label set from pairs in any order: sorts by name, drops pairs
    /// with an empty value (an empty value means "absent" in Prometheus) and
    /// rejects empty or repeated names.
    pub fn from_pairs(mut pairs: Vec<Label>) -> Result<Labels, LabelsError> {
        pairs.retain(|l| !l.value.is_empty());
        pairs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for (i, l) in pairs.iter().enumerate() {
            if l.name.is_empty() {
                return Err(LabelsError::EmptyName);
            }
            if i > 0 && pairs[i - 1].name == l.name {
                return Err(LabelsError::DuplicateName(l.name.to_string()));
            }
        }
        Ok(Labels(pairs.into()))
    }

    /// Wraps pairs already sorted by unique, non-empty name with non-empty
    /// values. Checked in debug builds.
    pub fn from_sorted(pairs: Vec<Label>) -> Labels {
        debug_assert!(
            pairs.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted: {pairs:?}"
        );
        Labels(pairs.into())
    }

    /// Like [`Labels::from_sorted`], from an iterator of pairs already
    /// sorted by unique, non-empty name with non-empty values; an iterator of
    /// known length is collected straight into the shared allocation.
    pub fn from_sorted_iter(pairs: impl IntoIterator<Item = Label>) -> Labels {
        let labels: Arc<[Label]> = pairs.into_iter().collect();
        debug_assert!(
            labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted: {labels:?}"
        );
        Labels(labels)
    }

    /// Like [`Labels::from_sorted_iter`], from exactly `n` pairs (counted
    /// by the caller from the same source): the shared allocation is made
    /// once, at its size, where an iterator of unknown length is first
    /// collected into a growing vector.
    pub fn from_sorted_counted(n: usize, mut pairs: impl Iterator<Item = Label>) -> Labels {
        Labels::from_sorted_iter((0..n).map(|_| pairs.next().expect("as many pairs as counted")))
    }

    /// Convenience for tests and literals: `Labels::new(&[("__name__", "up")])`.
    pub fn new(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
            .expect("valid literal labels")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// The pairs as an owned vector (a copy: the set may be shared).
    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }

    /// Approximate heap bytes held by this label set (counted once however
    /// many clones share it).
    pub fn heap_bytes(&self) -> usize {
        const ALLOC_OVERHEAD: usize = 16;
        // Names and values of up to 24 bytes are held in the pair itself.
        let heap = |s: &CompactString| {
            if s.is_heap_allocated() {
                s.len() + ALLOC_OVERHEAD
            } else {
                0
            }
        };
        16 + self
            .0
            .iter()
            .map(|l| std::mem::size_of::<Label>() + heap(&l.name) + heap(&l.value))
            .sum::<usize>()
    }
}

impl Labels {
    /// The identity hash of the label set ([`identity_hash`]). The head
    /// finds series by it and compares labels to tell collisions apart.
    pub fn identity_hash(&self) -> u64 {
        identity_hash(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// XXH3-64 over `name 0xff value 0xff` for each pair, in the given order
/// (sorted by name for a label set).
pub fn identity_hash<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> u64 {
    // One pass over bytes gathered on the stack: the streaming hasher's
    // per-update cost, four updates a pair, was most of the time.
    let mut buf = [0u8; 512];
    let mut len = 0;
    for (n, v) in pairs.clone() {
        let end = len + n.len() + v.len() + 2;
        if end > buf.len() {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for (n, v) in pairs {
                h.update(n.as_bytes());
                h.update(&[0xff]);
                h.update(v.as_bytes());
                h.update(&[0xff]);
            }
            return h.digest();
        }
        buf[len..len + n.len()].copy_from_slice(n.as_bytes());
        len += n.len();
        buf[len] = 0xff;
        len += 1;
        buf[len..len + v.len()].copy_from_slice(v.as_bytes());
        len += v.len();
        buf[len] = 0xff;
        len += 1;
    }
    xxhash_rust::xxh3::xxh3_64(&buf[..len])
}

/// FNV-1a over `name 0xff value 0xff` for each pair, in the given order.
/// Callers must pass pairs sorted by name for the hash to identify a set.
pub fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (n, v) in pairs {
        for &b in n {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        h = (h ^ 0xff).wrapping_mul(PRIME);
        for &b in v {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        h = (h ^ 0xff).wrapping_mul(PRIME);
    }
    h
}

impl fmt::Display for Labels {
    /// Prometheus's notation: `name{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            write!(f, "{n}")?;
        }
        write!(f, "{{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        write!(f, "}}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The four PromQL matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// A label matcher. Regular expressions are anchored at both ends.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub op: MatchOp,
    pub name: String,
    pub value: String,
    regex: Option<Arc<Compiled>>,
}

/// An `=~` or `!~` matcher's regex, and what the index reads of its text
/// to find values without testing each: worked out once when the matcher
/// is built (a query the API keeps parsed, once per query text), and
/// shared by the matcher's clones, which so build no regex cache pool of
/// their own.
struct Compiled {
    regex: Regex,
    set: Option<Vec<String>>,
    prefix_wildcard: Option<String>,
    literal_prefix: Option<String>,
    alternation: Option<AlternationPrefixes>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.name == other.name && self.value == other.value
    }
}

/// A regular expression that does not compile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {message}")]
pub struct BadRegex {
    pub pattern: String,
    pub message: String,
}

/// The regex alone: what the matcher's text says is in the matcher's
/// own `Debug`.
impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.regex.fmt(f)
    }
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, BadRegex> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(Arc::new(Compiled {
                regex: Regex::new(&format!("^(?s:{value})$")).map_err(|e| BadRegex {
                    pattern: value.clone(),
                    message: e.to_string(),
                })?,
                set: set_matches(&value),
                prefix_wildcard: value.strip_suffix(".*").and_then(unescape_literal),
                literal_prefix: literal_prefix(&value),
                alternation: alternation_prefixes(&value),
            })),
            _ => None,
        };
        Ok(Matcher {
            op,
            name,
            value,
            regex,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher {
            op: MatchOp::Equal,
            name: name.into(),
            value: value.into(),
            regex: None,
        }
    }

    /// Does a label value (`""` when the label is absent) satisfy the matcher?
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.regex.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.regex.is_match(value)),
        }
    }

    /// Does the matcher accept a series that lacks the label?
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Does a whole label set satisfy the matcher?
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// For `=~` and `!~` matchers that are a plain alternation of literals
    /// (`a|b|c`, optionally in a group), the literals; lets the index look
    /// values up directly instead of testing every value.
    pub fn set_matches(&self) -> Option<&[String]> {
        self.regex.as_ref()?.set.as_deref()
    }

    /// For `=~` and `!~` matchers of the form `literal.*`, the literal: the
    /// regex matches exactly the values that start with it, so the index
    /// needs no regex at all.
    pub fn prefix_wildcard(&self) -> Option<&str> {
        self.regex.as_ref()?.prefix_wildcard.as_deref()
    }

    /// The literal prefix every matching value starts with, for `=~`
    /// matchers like `foo.*` or `foo.+`; lets the index scan only values in
    /// that prefix range.
    /// (For `!~` matchers, the prefix of every value the regex matches.)
    pub fn literal_prefix(&self) -> Option<&str> {
        self.regex.as_ref()?.literal_prefix.as_deref()
    }

    /// The literal prefixes of a regex that starts with a group of literal
    /// alternatives ([`alternation_prefixes`]).
    pub(crate) fn alternation(&self) -> Option<&AlternationPrefixes> {
        self.regex.as_ref()?.alternation.as_ref()
    }
}

/// [`Matcher::set_matches`] of a regex.
fn set_matches(re: &str) -> Option<Vec<String>> {
    let mut s = re;
    if s.starts_with("(?:") && s.ends_with(')') {
        s = &s[3..s.len() - 1];
    } else if s.starts_with('(') && s.ends_with(')') && !s.starts_with("(?") {
        s = &s[1..s.len() - 1];
    }
    s.split('|').map(unescape_literal).collect()
}

/// [`Matcher::literal_prefix`] of a regex: its leading literal run
/// ([`literal_run`]), unless an escape other than of a metacharacter ends
/// it (`\d`).
fn literal_prefix(re: &str) -> Option<String> {
    let (mut prefix, rest) = literal_run(re);
    if rest.starts_with('\\') {
        return None;
    }
    // A quantifier applies to the previous literal char: drop it from the prefix.
    if rest.starts_with(['*', '?', '{']) {
        prefix.pop();
    }
    if !alternation_is_nested(rest) {
        return None; // a top-level `|`: the prefix does not bind every branch
    }
    if prefix.is_empty() {
        None
    } else {
        Some(prefix)
    }
}

/// The literal prefixes of a regex that starts with a group of literal
/// alternatives: `(web|api)-.*` → `web-`, `api-` (every value the regex
/// matches starts with one of them).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AlternationPrefixes {
    /// Sorted; none is a prefix of another (so their value ranges are
    /// disjoint and no postings list is listed twice).
    pub(crate) prefixes: Vec<String>,
    /// The rest of the regex is `.*`: every value with such a prefix
    /// matches, no regex needed.
    pub(crate) any_tail: bool,
}

/// Splits `lit(a|b|c)lit<tail>` (the group plain or `(?:`, its branches
/// and the literals without metacharacters but escaped ones) into the
/// prefixes it binds. `None` for anything else: flags, a quantifier on the
/// group, nested groups in it, or a `|` outside a group in the tail (which
/// would not be bound by the prefix).
fn alternation_prefixes(re: &str) -> Option<AlternationPrefixes> {
    let (head, rest) = literal_run(re);
    let body = rest
        .strip_prefix("(?:")
        .or_else(|| rest.strip_prefix('(').filter(|r| !r.starts_with('?')))?;
    let close = body.find(')')?;
    let (group, rest) = (&body[..close], &body[close + 1..]);
    if rest.starts_with(['*', '+', '?', '{']) {
        return None;
    }
    let branches = group
        .split('|')
        .map(|b| match literal_run(b) {
            (lit, "") => Some(lit),
            _ => None,
        })
        .collect::<Option<Vec<String>>>()?;
    let (mut tail_lit, tail) = literal_run(rest);
    if tail.starts_with(['*', '+', '?', '{']) {
        // The quantifier applies to the literal's last character.
        tail_lit.pop();
    }
    if !alternation_is_nested(tail) {
        return None;
    }
    let any_tail = tail == ".*";
    let mut prefixes: Vec<String> = branches
        .iter()
        .map(|b| format!("{head}{b}{tail_lit}"))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    // A prefix that extends an earlier one names values already covered.
    let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        if !kept.last().is_some_and(|k| p.starts_with(k.as_str())) {
            kept.push(p);
        }
    }
    Some(AlternationPrefixes {
        prefixes: kept,
        any_tail,
    })
}

/// The literal text at the start of a regex (escaped metacharacters
/// unescaped) and the rest from its first metacharacter on. An escape of
/// anything else (`\d`, `\w`) ends the literal there.
fn literal_run(re: &str) -> (String, &str) {
    let mut lit = String::new();
    let mut chars = re.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&(_, e)) if is_regex_meta(e) => {
                    lit.push(e);
                    chars.next();
                }
                _ => return (lit, &re[i..]),
            },
            c if is_regex_meta(c) => return (lit, &re[i..]),
            c => lit.push(c),
        }
    }
    (lit, "")
}

/// The string a regex without metacharacters (escaped ones allowed)
/// matches, or `None` if it has any.
fn unescape_literal(re: &str) -> Option<String> {
    let mut lit = String::with_capacity(re.len());
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if is_regex_meta(e) => lit.push(e),
                _ => return None,
            },
            c if is_regex_meta(c) => return None,
            c => lit.push(c),
        }
    }
    Some(lit)
}

/// Is every `|` of the regex tail `rest` inside a group? Conservative:
/// `false` for anything it does not follow (classes, unbalanced groups).
fn alternation_is_nested(rest: &str) -> bool {
    let mut depth = 0usize;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => depth += 1,
            ')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            '|' if depth == 0 => return false,
            '[' if rest.contains('|') => return false,
            _ => {}
        }
    }
    depth == 0
}

fn is_regex_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_and_values_are_held_in_their_pair() {
        assert_eq!(std::mem::size_of::<Label>(), 48);
        let short = Labels::new(&[
            ("__name__", "node_cpu_seconds_total"),
            ("availability_zone", "eu-west-1a"),
            ("value_of_24_bytes", "abcdefghijklmnopqrstuvwx"),
        ]);
        for l in short.iter() {
            assert!(
                !l.name.is_heap_allocated() && !l.value.is_heap_allocated(),
                "{l:?}"
            );
        }
        assert_eq!(short.heap_bytes(), 16 + 3 * 48);

        let long = "x".repeat(25);
        let labels = Labels::new(&[("path", long.as_str())]);
        assert!(labels.as_slice()[0].value.is_heap_allocated());
        assert_eq!(labels.heap_bytes(), 16 + 48 + 25 + 16);
        assert_eq!(labels.get("path"), Some(long.as_str()));
    }

    #[test]
    fn identity_hash_is_the_same_short_or_long() {
        let long = "x".repeat(600);
        for value in ["a", long.as_str()] {
            let l = Labels::new(&[("__name__", "m"), ("v", value)]);
            let mut bytes = Vec::new();
            for p in l.iter() {
                bytes.extend_from_slice(p.name.as_bytes());
                bytes.push(0xff);
                bytes.extend_from_slice(p.value.as_bytes());
                bytes.push(0xff);
            }
            assert_eq!(l.identity_hash(), xxhash_rust::xxh3::xxh3_64(&bytes));
        }
    }

    #[test]
    fn from_pairs_sorts_drops_empty_values_and_rejects_duplicates() {
        let l = Labels::from_pairs(vec![
            Label::new("b", "2"),
            Label::new("a", "1"),
            Label::new("c", ""),
        ])
        .unwrap();
        assert_eq!(l.as_slice(), &[Label::new("a", "1"), Label::new("b", "2")]);
        assert_eq!(
            Labels::from_pairs(vec![Label::new("a", "1"), Label::new("a", "2")]),
            Err(LabelsError::DuplicateName("a".into()))
        );
        assert_eq!(
            Labels::from_pairs(vec![Label::new("", "1")]),
            Err(LabelsError::EmptyName)
        );
    }

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchOp::RegexMatch, "job", "api").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("api-server"));
        let m = Matcher::new(MatchOp::RegexNoMatch, "job", "a.*").unwrap();
        assert!(!m.matches("abc"));
        assert!(m.matches("bcd"));
        assert!(m.matches_empty());
    }

    #[test]
    fn set_matches_and_prefix() {
        let m = Matcher::new(MatchOp::RegexMatch, "x", "a|b\\.c|d").unwrap();
        assert_eq!(
            m.set_matches(),
            Some(&["a".to_string(), "b.c".into(), "d".into()][..])
        );
        let m = Matcher::new(MatchOp::RegexMatch, "x", "a.*").unwrap();
        assert_eq!(m.set_matches(), None);
        assert_eq!(m.literal_prefix(), Some("a"));
        let m = Matcher::new(MatchOp::RegexMatch, "x", "node_cpu.+").unwrap();
        assert_eq!(m.literal_prefix(), Some("node_cpu"));
        let m = Matcher::new(MatchOp::RegexMatch, "x", "ab?c").unwrap();
        assert_eq!(m.literal_prefix(), Some("a"));
        let m = Matcher::new(MatchOp::RegexMatch, "x", "ab|cd").unwrap();
        assert_eq!(m.literal_prefix(), None);
        let wildcard = |p: &str| {
            Matcher::new(MatchOp::RegexNoMatch, "x", p)
                .unwrap()
                .prefix_wildcard()
                .map(str::to_owned)
        };
        assert_eq!(wildcard("host-1.*"), Some("host-1".into()));
        assert_eq!(wildcard("a\\..*"), Some("a.".into()));
        assert_eq!(wildcard(".*"), Some(String::new()));
        assert_eq!(wildcard("a\\.*"), None);
        assert_eq!(wildcard("a|b.*"), None);
        assert_eq!(wildcard("a.+"), None);
    }

    /// Equality matchers have no regex plan; a regex matcher's clones
    /// share its plan, which is the same for `=~` and `!~`.
    #[test]
    fn regex_plans_are_worked_out_once_and_shared() {
        for m in [
            Matcher::equal("x", "a.*"),
            Matcher::new(MatchOp::Equal, "x", "(a|b)-.*").unwrap(),
            Matcher::new(MatchOp::NotEqual, "x", "a|b").unwrap(),
        ] {
            assert_eq!(m.set_matches(), None);
            assert_eq!(m.prefix_wildcard(), None);
            assert_eq!(m.literal_prefix(), None);
            assert_eq!(m.alternation(), None);
        }
        for op in [MatchOp::RegexMatch, MatchOp::RegexNoMatch] {
            let m = Matcher::new(op, "instance", "(web|api)-.*").unwrap();
            let ap = m.alternation().unwrap();
            assert_eq!(ap.prefixes, ["api-", "web-"]);
            assert!(ap.any_tail);
            assert_eq!(m.literal_prefix(), None);
            let clone = m.clone();
            let (a, b) = (m.regex.as_ref().unwrap(), clone.regex.as_ref().unwrap());
            assert!(Arc::ptr_eq(a, b), "a clone shares the compiled regex");
            let m = Matcher::new(op, "x", "a|b").unwrap();
            assert_eq!(m.set_matches(), Some(&["a".to_string(), "b".into()][..]));
            assert_eq!(m.prefix_wildcard(), None);
            let m = Matcher::new(op, "x", "host-1.*").unwrap();
            assert_eq!(m.prefix_wildcard(), Some("host-1"));
            assert_eq!(m.literal_prefix(), Some("host-1"));
        }
    }

    #[test]
    fn alternation_prefixes_of_dashboard_regexes() {
        let ap = |re: &str| alternation_prefixes(re).map(|a| (a.prefixes, a.any_tail));
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(ap("(web|api)-.*"), Some((v(&["api-", "web-"]), true)));
        assert_eq!(ap("(?:web|api)-.*"), Some((v(&["api-", "web-"]), true)));
        assert_eq!(
            ap("host-(a|b)\\.x.*"),
            Some((v(&["host-a.x", "host-b.x"]), true))
        );
        assert_eq!(ap("(a|ab)c.+"), Some((v(&["abc", "ac"]), false)));
        assert_eq!(ap("(a|ab).*"), Some((v(&["a"]), true)));
        assert_eq!(ap("(web|api)-\\d+"), Some((v(&["api-", "web-"]), false)));
        assert_eq!(ap("(web|api)-x*"), Some((v(&["api-", "web-"]), false)));
        assert_eq!(ap("(web|api)"), Some((v(&["api", "web"]), false)));
        assert_eq!(ap("(web|api)*-.*"), None);
        assert_eq!(ap("(?i:web|api)-.*"), None);
        assert_eq!(ap("(web|a.i)-.*"), None);
        assert_eq!(ap("(web|api)-.*|db"), None);
        assert_eq!(ap("(web|(api))-.*"), None);
        assert_eq!(ap("web-.*"), None);
    }

    #[test]
    fn display() {
        let l = Labels::new(&[("__name__", "up"), ("job", "x")]);
        assert_eq!(l.to_string(), "up{job=\"x\"}");
    }
}
