//! Go's `text/template` language, as Prometheus rule annotations and
//! Alertmanager notification templates use it.
//!
//! ```
//! use gotmpl::{Template, FuncMap, Value};
//! let mut t = Template::new(FuncMap::builtins());
//! t.parse("t", "{{ range . }}{{ . | printf \"%03d\" }} {{ end }}").unwrap();
//! let out = t.execute("t", &Value::List(vec![Value::Int(1), Value::Int(22)])).unwrap();
//! assert_eq!(out, "001 022 ");
//! ```
//!
//! Data is a [`Value`]: `Map` stands for Go maps and structs alike. Where Go
//! would call a method on Alertmanager's data (`.Alerts.Firing`,
//! `.Labels.SortedPairs`), see [Methods](crate#methods) below.
//!
//! Prometheus and Alertmanager run their templates with
//! `missingkey=zero` over `map[string]string` labels, so a missing label
//! prints as the empty string: use [`MissingKey::Zero`] for them.
//!
//! # Language
//! Everything of Go's `text/template` except `call` and custom delimiters:
//! text, `{{- -}}` trimming, comments, pipelines, variables (`$`, `:=`, `=`),
//! field chains, `if`/`else if`/`else`, `range` (lists, maps in key order,
//! integers; `break`, `continue`, `else`), `with`/`else with`, `define`,
//! `template`, `block`, literals (Go strings, raw strings, runes, ints in any
//! base, floats, hex floats), parentheses, and Go's comparison and printing
//! rules (`eq` of int and float is an error, as in Go). Errors read like Go's.
//! Execution is bounded by [`Limits`] (nesting depth, steps, output size);
//! no input makes it panic.
//!
//! # Methods
//! A `List` answers `.Firing` / `.Resolved` with its elements whose `"Status"`
//! is `"firing"` / `"resolved"` (Alertmanager's `Alerts` methods). A `Map`
//! without such a key answers `.SortedPairs`, `.Names`, `.Values` and
//! `.Remove <names>` (Alertmanager's `KV` methods); a list of pairs answers
//! `.Names` and `.Values`.
//!
//! # Times and durations
//! There is no time type: a time is the string Go prints for it,
//! `2015-06-23 13:19:44.128 +0000 UTC` ([`GoTime::go_string`]; RFC 3339 is
//! read too), and a duration is Go's duration string (`1h2m3s`,
//! [`duration_string`]). So `{{ .StartsAt }}` prints as in Go, and `date`,
//! `tz`, `since`, `humanizeDuration`, `toTime`, `toDuration` and the methods
//! `.Format`, `.Unix`, `.UnixMilli`, `.Add`, `.UTC`, `.String`, `.Seconds`
//! work on such strings.
//!
//! # HTML mode
//! [`Template::html`] approximates Go's `html/template`: every action's output
//! is HTML-escaped (`<>&'"+` and NUL, as html/template's text escaper) unless
//! it is a [`Value::SafeHtml`]; nil prints nothing. Inside a URL attribute
//! (`href`, `src`, ...) the value is also URL-normalized, and at the start of
//! the attribute a scheme other than http, https or mailto becomes
//! `#ZgotmplZ`, as Go does. Go's other contexts (JavaScript, CSS, the query
//! part of URLs, `urlquery` merging) are not modelled: there the plain HTML
//! escaping applies, so `<script>` and `style` values are not made safe.

mod error;
mod exec;
mod funcs;
mod lex;
mod methods;
mod parse;
mod printf;
mod regex;
mod value;

mod alertmanager;
mod prometheus;
mod timefmt;

use std::collections::HashMap;
use std::sync::Arc;

pub use alertmanager::alertmanager_funcs;
pub use error::{ExecError, ExecErrorKind, ParseError, ParseErrorKind};
pub use funcs::{Func, FuncMap, html_escape, js_escape, query_escape};
pub use printf::{go_quote, sprint, sprintf, sprintln};
pub use prometheus::prometheus_funcs;
pub use timefmt::{GoTime, duration_string, parse_go_duration};
pub use value::{Value, format_float_g};

/// What `.key` gives when a map has no such key (Go's `missingkey` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Nil, printed as `<no value>` (Go's default for `map[string]any`).
    #[default]
    Default,
    /// The empty string (what Go gives for `map[string]string`, as
    /// Prometheus's and Alertmanager's label maps are).
    Zero,
    /// An execution error.
    Error,
}

/// Bounds on one execution, so that no template runs away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of template calls, control structures and
    /// parenthesised pipelines (default 1000).
    pub max_depth: usize,
    /// Largest output in bytes (default 16 MiB).
    pub max_output: usize,
    /// Most nodes and commands evaluated (default 10 million).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 1000,
            max_output: 16 << 20,
            max_steps: 10_000_000,
        }
    }
}

/// A set of named templates sharing a function map.
#[derive(Clone)]
pub struct Template {
    funcs: FuncMap,
    trees: HashMap<String, Arc<parse::Tree>>,
    html: bool,
    missing_key: MissingKey,
    limits: Limits,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.trees.keys().collect();
        names.sort();
        f.debug_struct("Template")
            .field("templates", &names)
            .field("html", &self.html)
            .finish()
    }
}

impl Template {
    /// An empty set whose templates may call `funcs`.
    pub fn new(funcs: FuncMap) -> Template {
        Template {
            funcs,
            trees: HashMap::new(),
            html: false,
            missing_key: MissingKey::Default,
            limits: Limits::default(),
        }
    }

    /// html/template-like mode: every action's output is HTML-escaped unless
    /// it is `Value::SafeHtml` (an approximation of Go's contextual escaping;
    /// see [HTML mode](crate#html-mode)).
    pub fn html(mut self) -> Template {
        self.html = true;
        self
    }

    /// What a missing map key gives (Go's `Option("missingkey=...")`).
    pub fn missing_key(mut self, mk: MissingKey) -> Template {
        self.missing_key = mk;
        self
    }

    /// Replaces the execution limits.
    pub fn limits(mut self, limits: Limits) -> Template {
        self.limits = limits;
        self
    }

    /// Adds or replaces a function; templates parsed later may call it.
    pub fn add_func(&mut self, name: &str, f: Func) {
        self.funcs.insert(name, f);
    }

    /// The function map.
    pub fn funcs(&self) -> &FuncMap {
        &self.funcs
    }

    /// Parses `text` as template `name`, plus any `{{define}}`/`{{block}}`
    /// inside. A redefinition replaces the old template, except that an
    /// empty body (only whitespace) does not replace a non-empty one (Go).
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        let funcs = &self.funcs;
        let (main, defined) = parse::parse(name, text, &|f| funcs.contains(f))?;
        for t in std::iter::once(main).chain(defined) {
            let keep_old = parse::is_empty(&t.root)
                && self
                    .trees
                    .get(&t.name)
                    .is_some_and(|old| !parse::is_empty(&old.root));
            if !keep_old {
                self.trees.insert(t.name.clone(), Arc::new(t));
            }
        }
        Ok(())
    }

    /// Whether template `name` is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Template `name` printed back as template text (Go's
    /// `Tree.Root.String()`): comments and trim markers are gone, `else if`
    /// is spelled out, and `{{define}}` bodies are templates of their own.
    /// Parsing the result gives the same template.
    pub fn source(&self, name: &str) -> Option<String> {
        let tree = self.trees.get(name)?;
        Some(tree.root.iter().map(|n| n.to_string()).collect())
    }

    /// Names of the defined templates, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().cloned().collect();
        v.sort();
        v
    }

    /// Executes template `name` with `data` as dot and `$`.
    #[allow(clippy::result_large_err)] // reason: the signature is the crate's agreed API; errors are rare
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        let Some(tree) = self.trees.get(name) else {
            return Err(ExecError {
                parse_name: name.to_string(),
                name: name.to_string(),
                line: 0,
                col: 0,
                context: String::new(),
                kind: ExecErrorKind::NoSuchTemplate(name.to_string()),
            });
        };
        let mut ex = exec::Exec::new(self);
        ex.run(tree, data).map_err(|e| *e)?;
        Ok(ex.out)
    }

    /// How an action prints `v` in this template's mode.
    /// `out` is the output so far (HTML mode looks at its context).
    fn print(&self, v: &Value, out: &str) -> String {
        if !self.html {
            return v.to_text();
        }
        match v {
            Value::SafeHtml(s) => s.clone(),
            // html/template prints nothing for a missing value.
            Value::Nil => String::new(),
            v => match url_attr_context(out) {
                None => html_body_escape(&v.to_text()),
                Some(at_start) => html_body_escape(&url_normalize(&v.to_text(), at_start)),
            },
        }
    }
}

/// Attributes whose values are URLs (html/template's `attrType` URL kinds).
const URL_ATTRS: &[&str] = &[
    "action",
    "archive",
    "background",
    "cite",
    "classid",
    "codebase",
    "data",
    "formaction",
    "href",
    "icon",
    "longdesc",
    "manifest",
    "poster",
    "profile",
    "src",
    "usemap",
    "xmlns",
];

/// Whether `out` ends inside a URL attribute value (`<a href="...`), and
/// if so whether at its start. A small part of html/template's contextual
/// escaping: URL values are normalized, and at the start a scheme other
/// than http, https or mailto becomes `#ZgotmplZ`.
fn url_attr_context(out: &str) -> Option<bool> {
    // Only the last few KiB matter; this keeps HTML mode linear.
    let mut from = out.len().saturating_sub(4096);
    while !out.is_char_boundary(from) {
        from += 1;
    }
    let out = &out[from..];
    let lt = out.rfind('<')?;
    let tag = &out[lt + 1..];
    if tag.contains('>') {
        return None;
    }
    let b = tag.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    // Skip the tag name.
    let mut i = 0;
    while i < b.len() && !ws(b[i]) {
        i += 1;
    }
    loop {
        while i < b.len() && (ws(b[i]) || b[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && !ws(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let name = tag[name_start..i].to_ascii_lowercase();
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            // `href=` then the action: an unquoted value starts here.
            return URL_ATTRS.contains(&name.as_str()).then_some(true);
        }
        let value_start;
        if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            value_start = i + 1;
            if let Some(n) = b[value_start..].iter().position(|&c| c == q) {
                i = value_start + n + 1;
                continue;
            }
        } else {
            value_start = i;
            while i < b.len() && !ws(b[i]) {
                i += 1;
            }
            if i < b.len() {
                continue;
            }
        }
        // The text ends inside this attribute's value.
        return URL_ATTRS
            .contains(&name.as_str())
            .then_some(value_start == b.len());
    }
}

/// html/template's URL filter (at the start of a value) and normalizer.
fn url_normalize(s: &str, at_start: bool) -> String {
    if at_start && let Some(colon) = s.find(':') {
        let scheme = &s[..colon];
        let is_scheme = !scheme.contains(['/', '?', '#']);
        if is_scheme
            && !["http", "https", "mailto"]
                .iter()
                .any(|ok| scheme.eq_ignore_ascii_case(ok))
        {
            return "#ZgotmplZ".to_string();
        }
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(b as char),
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?'
            | b'@' | b'[' | b']' | b'-' | b'.' | b'_' | b'~' | b'%' => out.push(b as char),
            b => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// html/template's escaper for HTML text: also escapes `+`.
fn html_body_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
