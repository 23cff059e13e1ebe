//! Runs Prometheus's own PromQL test scripts (`tests/promql/*.test`, the
//! `promqltest` language described in `tests/promql/FORMAT.md`) against
//! Silt's evaluator on a real `engine::Db`.
//!
//! Every eval is run as the upstream runner runs it, including its two
//! implicit checks on instant evals: the `@`-pinned variants at shifted
//! times, and the same query in range mode. Evals listed in
//! `tests/promql/SKIP` (`file:line  reason`) may fail; the test fails if
//! any other eval fails, and also if a listed eval passes (the list only
//! shrinks). Output: passed/failed/skipped per file and per tier.
//!
//! Environment: `PROMQL_FILE=name.test` runs one file; `PROMQL_VERBOSE=1`
//! prints every failure; `PROMQL_WRITE_SKIP=1` rewrites `SKIP` from the
//! current failures (review the diff).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Durability, Labels, Options, Sample, SeriesSamples, WriteBatch};
use query::eval::{self, QueryOptions, Value};
use query::promql::ast::{AtModifier, Expr};
use query::promql::series::{self, SequenceValue};
use regex::Regex;

// ---------------------------------------------------------------------------
// The test language.

#[derive(Debug, Clone, Copy)]
enum Item {
    Value(f64),
    Omitted,
    Histogram,
}

#[derive(Debug, Clone)]
enum Match {
    Any,
    Msg(String),
    Regex(Regex),
}

impl Match {
    fn matches(&self, s: &str) -> bool {
        match self {
            Match::Any => true,
            Match::Msg(m) => m == s,
            Match::Regex(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Clone)]
struct EvalCmd {
    line: usize,
    expr: String,
    /// `Some((start, end, step))` for `eval range`.
    range: Option<(i64, i64, i64)>,
    at: i64,
    fail: Option<Match>,
    warn: Vec<Match>,
    info: Vec<Match>,
    legacy_warn: bool,
    legacy_info: bool,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
    scalar: Option<Item>,
    series: Vec<(Labels, Vec<Item>, usize)>,
}

#[derive(Debug)]
enum Cmd {
    /// Series with their (time, value, start timestamp) samples (start 0:
    /// unknown).
    Load(Vec<LoadSeries>),
    Clear,
    Eval(Box<EvalCmd>),
}

type LoadSeries = (Labels, Vec<(i64, f64, i64)>);

/// The start-timestamp offsets of an `@st` line's slots (FORMAT.md §3.6):
/// `_` and `_xN` (N slots without one), `<dur>`, `<dur>xN` (N+1 slots
/// alike) and `<dur>±<dur>xN` (N+1 slots in steps); durations signed, `0`
/// without a unit.
fn parse_start_offsets(items: &str) -> Result<Vec<Option<i64>>, String> {
    let signed = |d: &str| -> Result<i64, String> {
        let (neg, d) = match d.as_bytes().first() {
            Some(b'-') => (true, &d[1..]),
            Some(b'+') => (false, &d[1..]),
            _ => (false, d),
        };
        let ms = if d == "0" { 0 } else { parse_duration_ms(d)? };
        Ok(if neg { -ms } else { ms })
    };
    let mut out = Vec::new();
    for item in items.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad @st item {item:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        let (body, times) = match item.rfind('x') {
            Some(i) => {
                let n: i64 = item[i + 1..]
                    .parse()
                    .map_err(|_| format!("bad @st item {item:?}"))?;
                (&item[..i], Some(n))
            }
            None => (item, None),
        };
        // A step's sign is the first `+`/`-` after the start's first byte.
        let (start, step) = match body[1..].find(['+', '-']) {
            Some(i) => (&body[..=i], Some(&body[i + 1..])),
            None => (body, None),
        };
        let first = signed(start)?;
        let step = step.map(signed).transpose()?.unwrap_or(0);
        match times {
            None if step != 0 => return Err(format!("bad @st item {item:?}")),
            None => out.push(Some(first)),
            Some(n) => out.extend((0..=n).map(|k| Some(first + k * step))),
        }
    }
    Ok(out)
}

fn parse_duration_ms(s: &str) -> Result<i64, String> {
    query::promql::parse_duration(s.trim())
        .map(|d| d.as_millis() as i64)
        .map_err(|e| e.to_string())
}

/// An expected scalar line: Go's `ParseInt(s, 0, 64)` then `ParseFloat`.
fn parse_scalar(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()? as f64
    } else {
        if body.is_empty()
            || !body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'))
        {
            return None;
        }
        let clean: String = body.chars().filter(|&c| c != '_').collect();
        clean.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Unquotes a Go string literal at the start of `s`; returns it and the rest.
fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err("empty string literal".into());
    };
    if q == '`' {
        let end = s[1..].find('`').ok_or("unterminated raw string")?;
        return Ok((s[1..1 + end].to_string(), &s[2 + end..]));
    }
    if q != '"' && q != '\'' {
        return Err(format!("expected a quote in {s:?}"));
    }
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c == q as u8 {
            return Ok((String::from_utf8_lossy(&out).into_owned(), &s[i + 1..]));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).ok_or("bad escape")?;
        i += 2;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' | b'"' | b'\'' => out.push(e),
            b'x' => {
                let h = s.get(i..i + 2).ok_or("bad \\x")?;
                out.push(u8::from_str_radix(h, 16).map_err(|e| e.to_string())?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let h = s.get(i..i + n).ok_or("bad \\u")?;
                let cp = u32::from_str_radix(h, 16).map_err(|e| e.to_string())?;
                let ch = char::from_u32(cp).ok_or("bad code point")?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            b'0'..=b'7' => {
                let o = s.get(i - 1..i + 2).ok_or("bad octal")?;
                out.push(u8::from_str_radix(o, 8).map_err(|e| e.to_string())?);
                i += 2;
            }
            _ => return Err(format!("unknown escape \\{}", e as char)),
        }
    }
    Err("unterminated string".into())
}

/// Parses a series description's metric (`name{a="b"}`, `{a="b"}`,
/// `name`) at the start of `s` with `query::promql::series`; returns the
/// labels and the rest of the line.
fn parse_series(s: &str) -> Result<(Labels, &str), String> {
    let (pairs, rest) = series::parse_metric_prefix(s).map_err(|e| e.to_string())?;
    let labels = Labels::from_pairs(pairs).map_err(|e| e.to_string())?;
    Ok((labels, rest))
}

/// Expands value items (`1`, `_`, `_x3`, `stale`, `1+2x3`, `{{..}}x2`).
fn parse_values(s: &str) -> Result<Vec<Item>, String> {
    let values = series::parse_values(s).map_err(|e| e.to_string())?;
    Ok(values
        .into_iter()
        .map(|v| match v {
            SequenceValue::Value(v) => Item::Value(v),
            SequenceValue::Omitted => Item::Omitted,
            SequenceValue::Histogram => Item::Histogram,
        })
        .collect())
}

fn parse_file(text: &str) -> Result<Vec<Cmd>, String> {
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let re_instant =
        Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
            .map_err(|e| e.to_string())?;
    let re_range = Regex::new(
        r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$",
    )
    .map_err(|e| e.to_string())?;
    let re_expect =
        Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
            .map_err(|e| e.to_string())?;
    let re_range_vec = Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
        .map_err(|e| e.to_string())?;
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let first = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let lineno = i + 1;
        if first == "clear" {
            cmds.push(Cmd::Clear);
            i += 1;
        } else if first.starts_with("load") {
            let interval = parse_duration_ms(l.split_whitespace().nth(1).unwrap_or(""))
                .map_err(|e| format!("line {lineno}: {e}"))?;
            let mut series: Vec<LoadSeries> = Vec::new();
            // The `@st` line just read: its labels and slot offsets.
            let mut starts: Option<(Labels, Vec<Option<i64>>)> = None;
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let body = &lines[i];
                let tok = body.split_whitespace().next().unwrap_or("");
                let at = |e: String| format!("line {}: {e}", i + 1);
                if let Some(at_st) = body
                    .find("@st")
                    .filter(|_| tok.ends_with("@st") || tok.contains("}@st"))
                {
                    if starts.is_some() {
                        return Err(at("an @st line after an @st line".into()));
                    }
                    let unmarked = format!("{}{}", &body[..at_st], &body[at_st + 3..]);
                    let (labels, rest) = parse_series(&unmarked).map_err(at)?;
                    starts = Some((labels, parse_start_offsets(rest).map_err(at)?));
                    i += 1;
                    continue;
                }
                let (labels, rest) = parse_series(body).map_err(at)?;
                let items = parse_values(rest).map_err(at)?;
                let offsets = match starts.take() {
                    Some((l, o)) if l == labels && o.len() == items.len() => o,
                    Some(_) => {
                        return Err(at("an @st line not matching the series after it".into()));
                    }
                    None => Vec::new(),
                };
                let samples: Vec<(i64, f64, i64)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(k, it)| match it {
                        Item::Value(v) => {
                            let t = k as i64 * interval;
                            let st = offsets.get(k).copied().flatten().map_or(0, |o| t + o);
                            Some((t, *v, st))
                        }
                        _ => None,
                    })
                    .collect();
                series.retain(|(l, _)| *l != labels);
                series.push((labels, samples));
                i += 1;
            }
            cmds.push(Cmd::Load(series));
        } else if first.starts_with("eval") {
            let mut ev = EvalCmd {
                line: lineno,
                expr: String::new(),
                range: None,
                at: 0,
                fail: None,
                warn: Vec::new(),
                info: Vec::new(),
                legacy_warn: false,
                legacy_info: false,
                no_warn: false,
                no_info: false,
                ordered: false,
                string: None,
                range_vector: None,
                scalar: None,
                series: Vec::new(),
            };
            let modifier;
            if let Some(c) = re_instant.captures(l) {
                modifier = c.get(1).map(|m| m.as_str().to_string());
                ev.at = parse_duration_ms(c.get(2).map_or("", |m| m.as_str()))
                    .map_err(|e| format!("line {lineno}: {e}"))?;
                ev.expr = c[3].trim().to_string();
            } else if let Some(c) = re_range.captures(l) {
                modifier = c.get(1).map(|m| m.as_str().to_string());
                let from = parse_duration_ms(&c[2]).map_err(|e| format!("line {lineno}: {e}"))?;
                let to = parse_duration_ms(&c[3]).map_err(|e| format!("line {lineno}: {e}"))?;
                let step = parse_duration_ms(&c[4]).map_err(|e| format!("line {lineno}: {e}"))?;
                ev.range = Some((from, to, step));
                ev.expr = c[5].trim().to_string();
            } else {
                return Err(format!("line {lineno}: invalid eval command"));
            }
            match modifier.as_deref() {
                Some("fail") => ev.fail = Some(Match::Any),
                Some("warn") => ev.legacy_warn = true,
                Some("info") => ev.legacy_info = true,
                Some("ordered") => ev.ordered = true,
                _ => {}
            }
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let body = lines[i].as_str();
                let bl = i + 1;
                i += 1;
                if modifier.as_deref() == Some("fail") {
                    if let Some(m) = body.strip_prefix("expected_fail_message") {
                        ev.fail = Some(Match::Msg(m.trim().to_string()));
                        break;
                    }
                    if let Some(m) = body.strip_prefix("expected_fail_regexp") {
                        ev.fail = Some(Match::Regex(
                            Regex::new(m.trim()).map_err(|e| e.to_string())?,
                        ));
                        break;
                    }
                }
                if let Some(c) = re_range_vec.captures(body) {
                    let f = parse_duration_ms(&c[1]).map_err(|e| format!("line {bl}: {e}"))?;
                    let t = parse_duration_ms(&c[2]).map_err(|e| format!("line {bl}: {e}"))?;
                    let s = parse_duration_ms(&c[3]).map_err(|e| format!("line {bl}: {e}"))?;
                    ev.range_vector = Some((f, t, s));
                    ev.at = t;
                    continue;
                }
                if let Some(r) = body.strip_prefix("expect string") {
                    let (s, _) = unquote(r.trim()).map_err(|e| format!("line {bl}: {e}"))?;
                    ev.string = Some(s);
                    continue;
                }
                if body.split_whitespace().next() == Some("expect") {
                    let c = re_expect
                        .captures(body)
                        .ok_or_else(|| format!("line {bl}: invalid expect line"))?;
                    let m = match (c.get(2).map(|m| m.as_str()), c.get(3)) {
                        (Some("msg"), Some(t)) => Match::Msg(t.as_str().trim().to_string()),
                        (Some("regex"), Some(t)) => {
                            Match::Regex(Regex::new(t.as_str().trim()).map_err(|e| e.to_string())?)
                        }
                        _ => Match::Any,
                    };
                    match &c[1] {
                        "ordered" => ev.ordered = true,
                        "fail" => ev.fail = Some(m),
                        "warn" => ev.warn.push(m),
                        "info" => ev.info.push(m),
                        "no_warn" => ev.no_warn = true,
                        _ => ev.no_info = true,
                    }
                    continue;
                }
                if let Some(v) = parse_scalar(body) {
                    ev.scalar = Some(Item::Value(v));
                    break;
                }
                let (labels, rest) = parse_series(body).map_err(|e| format!("line {bl}: {e}"))?;
                let items = parse_values(rest).map_err(|e| format!("line {bl}: {e}"))?;
                let pos = ev.series.len() + 1;
                ev.series.push((labels, items, pos));
            }
            cmds.push(Cmd::Eval(Box::new(ev)));
        } else {
            return Err(format!("line {lineno}: invalid command {first:?}"));
        }
    }
    Ok(cmds)
}

// ---------------------------------------------------------------------------
// Running.

fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if engine::is_stale_nan(a) || engine::is_stale_nan(b) {
        return engine::is_stale_nan(a) && engine::is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let sum = a.abs() + b.abs();
    if a == 0.0 || b == 0.0 || sum < MIN_NORMAL {
        return diff < 1e-6 * MIN_NORMAL;
    }
    diff / sum.min(f64::MAX) < 1e-6
}

fn open_db(dir: &Path) -> Arc<Db> {
    let mut opts = Options::new(dir);
    opts.background = false;
    // The WAL's sync thread sleeps one interval after each sync and
    // `Db::close` (on drop) joins it, so keep the interval short.
    opts.durability = Durability::Async {
        interval: Duration::from_millis(2),
    };
    let mut reg = prometheus_client::registry::Registry::default();
    Db::open(opts, &mut reg).expect("open db")
}

fn value_str(v: &Value) -> String {
    match v {
        Value::Scalar(_, f) => format!("scalar {f}"),
        Value::String(_, s) => format!("string {s:?}"),
        Value::Vector(s) => format!(
            "vector [{}]",
            s.iter()
                .map(|s| format!("{} => {}", s.labels, s.v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Matrix(m) => format!(
            "matrix [{}]",
            m.iter()
                .map(|s| format!(
                    "{} => {:?}",
                    s.labels,
                    s.points.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl EvalCmd {
    fn check_annotations(&self, out: &eval::QueryOutput) -> Result<(), String> {
        if (self.legacy_warn || !self.warn.is_empty()) && out.warnings.is_empty() {
            return Err("expected warnings but got none".into());
        }
        if (self.legacy_info || !self.info.is_empty()) && out.infos.is_empty() {
            return Err("expected infos but got none".into());
        }
        for (exp, got, kind) in [
            (&self.warn, &out.warnings, "warn"),
            (&self.info, &out.infos, "info"),
        ] {
            if exp.is_empty() {
                continue;
            }
            for e in exp {
                if !got.iter().any(|g| e.matches(g)) {
                    return Err(format!("expected {kind} {e:?} not found in {got:?}"));
                }
            }
            for g in got {
                if !exp.iter().any(|e| e.matches(g)) {
                    return Err(format!("unexpected {kind} annotation {g:?}"));
                }
            }
        }
        if self.no_warn && !out.warnings.is_empty() {
            return Err(format!("unexpected warnings {:?}", out.warnings));
        }
        if self.no_info && !out.infos.is_empty() {
            return Err(format!("unexpected infos {:?}", out.infos));
        }
        Ok(())
    }

    /// The grid expected values refer to (range evals and `expect range vector`).
    fn grid(&self) -> (i64, i64, i64) {
        self.range
            .or(self.range_vector)
            .unwrap_or((self.at, self.at, 1))
    }

    fn compare(&self, v: &Value) -> Result<(), String> {
        match v {
            Value::Matrix(m) => {
                if self.ordered {
                    return Err("expected ordered result, but query returned a matrix".into());
                }
                if self.scalar.is_some() {
                    return Err(format!("expected scalar, got {}", value_str(v)));
                }
                if m.windows(2).any(|w| w[0].labels > w[1].labels) {
                    return Err("matrix not sorted by labels".into());
                }
                let (start, end, step) = self.grid();
                let mut seen = HashSet::new();
                for s in m {
                    let Some((_, items, _)) = self.series.iter().find(|(l, _, _)| *l == s.labels)
                    else {
                        return Err(format!(
                            "unexpected series {} in {}",
                            s.labels,
                            value_str(v)
                        ));
                    };
                    seen.insert(&s.labels);
                    let mut exp = Vec::new();
                    for (i, it) in items.iter().enumerate() {
                        let t = start + i as i64 * step;
                        if t > end {
                            return Err("more expected points than steps".into());
                        }
                        match it {
                            Item::Value(x) => exp.push((t, *x)),
                            Item::Histogram => {
                                return Err("histogram expected (not supported)".into());
                            }
                            Item::Omitted => {}
                        }
                    }
                    if exp.len() != s.points.len() {
                        return Err(format!(
                            "{}: expected {} points, got {}",
                            s.labels,
                            exp.len(),
                            value_str(v)
                        ));
                    }
                    for ((t, x), p) in exp.iter().zip(&s.points) {
                        if *t != p.t || !almost_equal(p.v, *x) {
                            return Err(format!(
                                "{}: expected {x} at {t}, got {} at {} ({})",
                                s.labels,
                                p.v,
                                p.t,
                                value_str(v)
                            ));
                        }
                    }
                }
                for (l, _, _) in &self.series {
                    if !seen.contains(l) {
                        return Err(format!("expected series {l} not found in {}", value_str(v)));
                    }
                }
                Ok(())
            }
            Value::Vector(vec) => {
                if self.scalar.is_some() {
                    return Err(format!("expected scalar, got {}", value_str(v)));
                }
                let mut seen = HashSet::new();
                for (pos, s) in vec.iter().enumerate() {
                    let Some((_, items, epos)) =
                        self.series.iter().find(|(l, _, _)| *l == s.labels)
                    else {
                        return Err(format!(
                            "unexpected series {} in {}",
                            s.labels,
                            value_str(v)
                        ));
                    };
                    if self.ordered && *epos != pos + 1 {
                        return Err(format!(
                            "{} at position {} instead of {epos}",
                            s.labels,
                            pos + 1
                        ));
                    }
                    match items.first() {
                        Some(Item::Value(x)) if almost_equal(*x, s.v) => {}
                        Some(Item::Value(x)) => {
                            return Err(format!("{}: expected {x}, got {}", s.labels, s.v));
                        }
                        _ => return Err(format!("{}: expected a histogram", s.labels)),
                    }
                    seen.insert(&s.labels);
                }
                for (l, _, _) in &self.series {
                    if !seen.contains(l) {
                        return Err(format!("expected series {l} not found in {}", value_str(v)));
                    }
                }
                Ok(())
            }
            Value::Scalar(_, x) => match self.scalar {
                Some(Item::Value(e)) if almost_equal(e, *x) => Ok(()),
                Some(_) => Err(format!("expected scalar {:?}, got {x}", self.scalar)),
                None => Err(format!("expected vector or matrix, got scalar {x}")),
            },
            Value::String(_, s) => {
                if self.string.as_deref().unwrap_or("") == s {
                    Ok(())
                } else {
                    Err(format!("expected string {:?}, got {s:?}", self.string))
                }
            }
        }
    }
}

const AT_UNSAFE: [&str; 19] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "end",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "range",
    "start",
    "step",
    "time",
    "timestamp",
    // Silt's forecasts are relative to the evaluation time, as predict_linear.
    "silt_forecast",
    "silt_forecast_lower",
    "silt_forecast_upper",
    "silt_time_to_threshold",
];

/// Adds `@ t` to selectors and subqueries without one (not inside a
/// subquery that has one); false if the expression calls an `@`-unsafe
/// function.
fn pin_at(e: &mut Expr, t: i64) -> bool {
    // `@ start()` / `@ end()` are not yet resolved in Prometheus's tree
    // at this point, so they are pinned too.
    fn pin(at: &mut Option<AtModifier>, t: i64) {
        if !matches!(at, Some(AtModifier::Time(_))) {
            *at = Some(AtModifier::Time(t));
        }
    }
    match e {
        Expr::Vector(vs) => {
            pin(&mut vs.at, t);
            true
        }
        Expr::Matrix(ms) => {
            pin(&mut ms.vector.at, t);
            true
        }
        Expr::Subquery(sq) => {
            // Like Prometheus: what is inside a subquery with `@` (now
            // every subquery) is neither pinned nor checked.
            pin(&mut sq.at, t);
            true
        }
        Expr::Paren(x) | Expr::Unary(_, x) => pin_at(x, t),
        Expr::Binary(b) => pin_at(&mut b.lhs, t) & pin_at(&mut b.rhs, t),
        Expr::Aggregate(a) => {
            let mut ok = pin_at(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                ok &= pin_at(p, t);
            }
            ok
        }
        Expr::Call(c) => {
            let mut ok = !AT_UNSAFE.contains(&c.func.name);
            for a in &mut c.args {
                ok &= pin_at(a, t);
            }
            ok
        }
        Expr::Number(_) | Expr::String(_) => true,
    }
}

struct Runner {
    db: Arc<Db>,
    _dir: tempfile::TempDir,
    /// Delayed name removal, on as in Prometheus's test runner unless the
    /// file says [`EAGER_NAMES`].
    delayed_name_removal: bool,
}

/// A comment line by which one of Silt's scripts runs without delayed
/// name removal (Prometheus's default, and Silt's).
const EAGER_NAMES: &str = "# silt: delayed_name_removal off";

impl Runner {
    fn new(delayed_name_removal: bool) -> Runner {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_db(dir.path());
        Runner {
            db,
            _dir: dir,
            delayed_name_removal,
        }
    }

    fn load(&self, series: &[LoadSeries]) -> Result<(), String> {
        let batch = WriteBatch {
            series: series
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(l, s)| SeriesSamples {
                    labels: l.clone(),
                    samples: s.iter().map(|&(t, v, _)| Sample::new(t, v)).collect(),
                    start_timestamps: if s.iter().any(|&(_, _, st)| st != 0) {
                        s.iter().map(|&(_, _, st)| st).collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            metadata: Vec::new(),
        };
        let ticket = self.db.append(&batch).map_err(|e| e.to_string())?;
        drop(ticket);
        Ok(())
    }

    fn opts(&self, text: &str) -> QueryOptions {
        let mut o = QueryOptions {
            query_text: text.to_string(),
            ..QueryOptions::default()
        };
        o.engine.delayed_name_removal = self.delayed_name_removal;
        o
    }

    fn check_failure(
        ev: &EvalCmd,
        r: &Result<eval::QueryOutput, String>,
    ) -> Option<Result<(), String>> {
        let fail = ev.fail.as_ref()?;
        Some(match r {
            Ok(out) => Err(format!("expected failure, got {}", value_str(&out.value))),
            Err(e) if fail.matches(e) => Ok(()),
            Err(e) => Err(format!("error {e:?} does not match {fail:?}")),
        })
    }

    fn run_eval(&self, ev: &EvalCmd) -> Result<(), String> {
        let expr = query::promql::parse(&ev.expr).map_err(|e| format!("parse error: {e}"))?;
        if let Some((start, end, step)) = ev.range {
            // The API's path: series selected ahead, then evaluated.
            let opts = self.opts(&ev.expr);
            let r = eval::prepare(&self.db, expr, start, end, step, &opts)
                .and_then(|p| p.run(&opts))
                .map_err(|e| e.to_string());
            if let Some(res) = Self::check_failure(ev, &r) {
                return res;
            }
            let out = r?;
            ev.check_annotations(&out)?;
            return ev.compare(&out.value);
        }
        let mut cases: Vec<(Expr, i64, bool)> = vec![(expr.clone(), ev.at, true)];
        let mut pinned = expr.clone();
        if pin_at(&mut pinned, ev.at) {
            let t = ev.at;
            let times = if t == 0 {
                vec![-1000, 0, 1000]
            } else {
                vec![-10 * t, 0, t / 5, t, 10 * t]
            };
            for et in times {
                cases.push((pinned.clone(), et, false));
            }
        }
        let ctx_funcs = Regex::new(r"(start|end|range|step)\(\)").map_err(|e| e.to_string())?;
        let exclude_range = ev.ordered
            || ev.range_vector.is_some()
            || ev.string.is_some()
            || ctx_funcs.is_match(&ev.expr);
        for (e, t, original) in cases {
            let text = if original { ev.expr.as_str() } else { "" };
            // The original query as the API runs it (series selected
            // ahead); the `@`-pinned variants as rules do.
            let opts = self.opts(text);
            let r = if original {
                eval::prepare(&self.db, e.clone(), t, t, 0, &opts).and_then(|p| p.run(&opts))
            } else {
                eval::instant_query(&self.db, &e, t, &opts)
            }
            .map_err(|e| e.to_string());
            let tag = if original {
                String::new()
            } else {
                format!(" [@-pinned at {t}]")
            };
            if let Some(res) = Self::check_failure(ev, &r) {
                res.map_err(|m| format!("{m}{tag}"))?;
                continue;
            }
            let out = r.map_err(|m| format!("{m}{tag}"))?;
            if original {
                ev.check_annotations(&out)?;
            }
            ev.compare(&out.value).map_err(|m| format!("{m}{tag}"))?;
            if exclude_range {
                continue;
            }
            let rr =
                eval::range_query(&self.db, &e, t - 60_000, t + 60_000, 60_000, &self.opts(""))
                    .map_err(|m| format!("range mode: {m}{tag}"))?;
            let Value::Matrix(m) = &rr.value else {
                return Err("range mode did not return a matrix".into());
            };
            if m.windows(2).any(|w| w[0].labels > w[1].labels) {
                return Err(format!("range mode: matrix not sorted{tag}"));
            }
            let vec: Vec<eval::Sample> = m
                .iter()
                .filter_map(|s| {
                    s.points.iter().find(|p| p.t == t).map(|p| eval::Sample {
                        labels: s.labels.clone(),
                        t,
                        v: p.v,
                    })
                })
                .collect();
            let as_value = match out.value {
                Value::Scalar(..) => Value::Scalar(t, vec.first().map_or(f64::NAN, |s| s.v)),
                _ => Value::Vector(vec),
            };
            ev.compare(&as_value)
                .map_err(|m| format!("range mode: {m}{tag}"))?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct FileReport {
    /// (line, error) per failed eval; passed lines.
    failed: Vec<(usize, String)>,
    passed: Vec<usize>,
}

fn run_file(path: &Path) -> FileReport {
    let mut report = FileReport::default();
    let text = std::fs::read_to_string(path).expect("read test file");
    let cmds = match parse_file(&text) {
        Ok(c) => c,
        Err(e) => {
            report.failed.push((0, format!("file does not parse: {e}")));
            return report;
        }
    };
    let delayed = !text.lines().any(|l| l.trim() == EAGER_NAMES);
    let mut runner = Runner::new(delayed);
    for cmd in cmds {
        match cmd {
            Cmd::Clear => runner = Runner::new(delayed),
            Cmd::Load(series) => {
                if let Err(e) = runner.load(&series) {
                    report.failed.push((0, format!("load failed: {e}")));
                }
            }
            Cmd::Eval(ev) => {
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run_eval(&ev)))
                        .unwrap_or_else(|p| {
                            Err(format!(
                                "panic: {}",
                                p.downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default()
                            ))
                        });
                match r {
                    Ok(()) => report.passed.push(ev.line),
                    Err(e) => report.failed.push((ev.line, format!("{}: {e}", ev.expr))),
                }
            }
        }
    }
    report
}

fn promql_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql")
}

/// `file:line` → reason.
fn read_skip(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("SKIP")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_string(), r.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// `file:line` → tier, from EVAL_TIERS.tsv.
fn read_tiers(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("EVAL_TIERS.tsv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() > 4).then(|| (format!("{}:{}", f[0], f[1]), format!("{}\t{}", f[3], f[4])))
        })
        .collect()
}

#[test]
fn promql_conformance() {
    let dir = promql_dir();
    let only = std::env::var("PROMQL_FILE").ok();
    let verbose = std::env::var("PROMQL_VERBOSE").is_ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/promql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| p.file_name().is_some_and(|n| n == o))
        })
        .collect();
    files.sort();
    let skip = read_skip(&dir);
    let tiers = read_tiers(&dir);

    // Run files in parallel (a few threads; the engine is shared by none).
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let queue = std::sync::Mutex::new(files.clone());
    let results = std::sync::Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some(p) = next else { break };
                    let r = run_file(&p);
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    results.lock().expect("results").insert(name, r);
                }
            });
        }
    });
    let results = results.into_inner().expect("results");

    let mut unexpected: Vec<String> = Vec::new();
    let mut now_passing: Vec<String> = Vec::new();
    let mut tier_counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut new_skip: Vec<String> = Vec::new();
    println!(
        "{:<28} {:>6} {:>6} {:>7}",
        "file", "passed", "failed", "skipped"
    );
    let (mut tp, mut tf, mut ts) = (0, 0, 0);
    for (name, r) in &results {
        let (mut p, mut f, mut sk) = (0, 0, 0);
        for line in &r.passed {
            let key = format!("{name}:{line}");
            let tier = tiers.get(&key).map_or("?", |t| &t[..1]).to_string();
            tier_counts.entry(tier).or_default().0 += 1;
            if skip.contains_key(&key) {
                now_passing.push(key);
            }
            p += 1;
        }
        for (line, err) in &r.failed {
            let key = format!("{name}:{line}");
            let tier_info = tiers.get(&key).cloned().unwrap_or_default();
            let tier = tier_info.get(..1).unwrap_or("?").to_string();
            if let Some(reason) = skip.get(&key) {
                sk += 1;
                tier_counts.entry(tier).or_default().2 += 1;
                new_skip.push(format!("{key}  {reason}"));
            } else {
                f += 1;
                tier_counts.entry(tier.clone()).or_default().1 += 1;
                unexpected.push(format!("{key}: {err}"));
                let reason = match tier.as_str() {
                    "3" => "tier 3: native histograms (not stored by the engine yet)".to_string(),
                    _ => {
                        let mut e = err.replace('\n', " ");
                        e.truncate(160);
                        format!("tier {tier}: {e}")
                    }
                };
                new_skip.push(format!("{key}  {reason}"));
            }
            if verbose {
                println!("FAIL {key} [tier {}]: {err}", tier_info.replace('\t', " "));
            }
        }
        println!("{name:<28} {p:>6} {f:>6} {sk:>7}");
        tp += p;
        tf += f;
        ts += sk;
    }
    println!("{:<28} {tp:>6} {tf:>6} {ts:>7}", "TOTAL");
    for (tier, (p, f, s)) in &tier_counts {
        println!("tier {tier}: passed {p}, failed {f}, skipped {s}");
    }
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in skip.values() {
        *reasons.entry(r.as_str()).or_default() += 1;
    }
    println!("skip list: {} entries", skip.len());
    for (r, n) in &reasons {
        println!("  {n:>4}  {r}");
    }
    if std::env::var("PROMQL_WRITE_SKIP").is_ok() && only.is_none() {
        new_skip.sort_by(|a, b| {
            let k = |s: &str| {
                let key = s.split_whitespace().next().unwrap_or("").to_string();
                let (f, l) = key.split_once(':').unwrap_or((&key, "0"));
                (f.to_string(), l.parse::<usize>().unwrap_or(0))
            };
            k(a).cmp(&k(b))
        });
        let mut text = String::from(
            "# Conformance evals allowed to fail (file:line  reason); this list may only shrink.\n",
        );
        for l in &new_skip {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(dir.join("SKIP"), text).expect("write SKIP");
        println!("rewrote SKIP with {} entries", new_skip.len());
        return;
    }
    if !now_passing.is_empty() {
        println!("remove these from SKIP (they pass now):");
        for k in &now_passing {
            println!("  {k}");
        }
    }
    if !unexpected.is_empty() && !verbose {
        for u in unexpected.iter().take(40) {
            println!("FAIL {u}");
        }
    }
    assert!(
        unexpected.is_empty() && now_passing.is_empty(),
        "{} evals failed that are not on the skip list, {} skipped evals pass now",
        unexpected.len(),
        now_passing.len()
    );
}

#[test]
fn series_and_values_parse() {
    let (l, rest) =
        parse_series(r#"http_requests{job="api", instance="0"} 0+10x2 _ stale"#).unwrap();
    assert_eq!(l.get("__name__"), Some("http_requests"));
    assert_eq!(l.get("instance"), Some("0"));
    let v = parse_values(rest).unwrap();
    assert_eq!(v.len(), 5);
    assert!(matches!(v[2], Item::Value(x) if x == 20.0));
    assert!(matches!(v[3], Item::Omitted));
    assert!(matches!(v[4], Item::Value(x) if engine::is_stale_nan(x)));
    let v = parse_values("-1-1x3 _x2 1e-3x1 {{schema:0 sum:1}}x2").unwrap();
    assert_eq!(v.len(), 4 + 2 + 2 + 3);
    assert!(matches!(v[3], Item::Value(x) if x == -4.0));
    let (l, _) = parse_series(r#"{} 1"#).unwrap();
    assert!(l.is_empty());
    assert_eq!(
        unquote(r#""a\"b\x41\u00e9" x"#).unwrap(),
        ("a\"bAé".to_string(), " x")
    );
    assert!(almost_equal(1.0, 1.0 + 1e-9));
    assert!(!almost_equal(0.0, 1e-300));
}

/// Silt's own scripts in the same language (`tests/promql-silt/*.test`,
/// kept apart from the vendored Prometheus scripts): every eval passes.
#[test]
fn silt_promql_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promql-silt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/promql-silt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", dir.display());
    for p in files {
        let r = run_file(&p);
        assert!(
            r.failed.is_empty(),
            "{}: failed evals {:?}",
            p.display(),
            r.failed
        );
        assert!(!r.passed.is_empty(), "{}: no evals ran", p.display());
    }
}
