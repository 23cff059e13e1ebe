//! Function maps and Go's predefined template functions (`and`, `len`,
//! `printf`, `eq`, `html`, ...).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::printf::{sprint, sprintf, sprintln};
use crate::value::Value;

/// A template function. It gets the evaluated arguments (the piped value
/// last) and returns a value or an error message.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// How the executor calls a function: `and`/`or` evaluate their arguments
/// lazily (Go 1.18+), everything else eagerly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Eval {
    Eager,
    And,
    Or,
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub f: Func,
    pub eval: Eval,
}

/// Named functions available to templates.
#[derive(Clone, Default)]
pub struct FuncMap {
    funcs: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for FuncMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.funcs.keys()).finish()
    }
}

impl FuncMap {
    /// Go's predefined functions: `and or not len index slice print printf
    /// println eq ne lt le gt ge html js urlquery` (`call` is not supported:
    /// values cannot hold functions).
    pub fn builtins() -> FuncMap {
        let mut m = FuncMap::default();
        m.funcs.insert(
            "and".into(),
            Entry {
                f: Arc::new(and),
                eval: Eval::And,
            },
        );
        m.funcs.insert(
            "or".into(),
            Entry {
                f: Arc::new(or),
                eval: Eval::Or,
            },
        );
        m.insert("not", Arc::new(not));
        m.insert("len", Arc::new(len));
        m.insert("index", Arc::new(index));
        m.insert("slice", Arc::new(slice));
        m.insert(
            "print",
            Arc::new(|a: &[Value]| Ok(Value::String(sprint(a)))),
        );
        m.insert(
            "println",
            Arc::new(|a: &[Value]| Ok(Value::String(sprintln(a)))),
        );
        m.insert("printf", Arc::new(printf));
        m.insert("eq", Arc::new(eq));
        m.insert("ne", Arc::new(ne));
        m.insert(
            "lt",
            Arc::new(|a: &[Value]| ordered("lt", a, |o| o.is_lt())),
        );
        m.insert(
            "le",
            Arc::new(|a: &[Value]| ordered("le", a, |o| o.is_le())),
        );
        m.insert(
            "gt",
            Arc::new(|a: &[Value]| ordered("gt", a, |o| o.is_gt())),
        );
        m.insert(
            "ge",
            Arc::new(|a: &[Value]| ordered("ge", a, |o| o.is_ge())),
        );
        m.insert(
            "html",
            Arc::new(|a: &[Value]| Ok(Value::String(html_escape(&eval_args(a))))),
        );
        m.insert(
            "js",
            Arc::new(|a: &[Value]| Ok(Value::String(js_escape(&eval_args(a))))),
        );
        m.insert(
            "urlquery",
            Arc::new(|a: &[Value]| Ok(Value::String(query_escape(&eval_args(a))))),
        );
        m
    }

    /// Adds or replaces a function (`name` is a `&str` or a `String`).
    pub fn insert(&mut self, name: impl Into<String>, f: Func) {
        self.funcs.insert(
            name.into(),
            Entry {
                f,
                eval: Eval::Eager,
            },
        );
    }

    /// Adds all of `other`'s functions, replacing those with the same name.
    pub fn extend(&mut self, other: FuncMap) {
        self.funcs.extend(other.funcs);
    }

    /// Whether `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.funcs.contains_key(name)
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.funcs.get(name).map(|e| &e.f)
    }

    /// Defined names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.funcs.keys().map(String::as_str)
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.funcs.get(name)
    }
}

/// Checks the argument count: Go's message for a wrong one.
pub(crate) fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

pub(crate) fn want_at_least(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// The string argument `i`, with Go's message for a wrong type.
pub(crate) fn str_arg(args: &[Value], i: usize) -> Result<&str, String> {
    match args.get(i) {
        Some(v) => v.as_str().ok_or_else(|| {
            format!(
                "wrong type for value; expected string; got {}",
                v.type_name()
            )
        }),
        None => Err("missing argument".to_string()),
    }
}

fn and(args: &[Value]) -> Result<Value, String> {
    want_at_least("and", args, 1)?;
    Ok(args
        .iter()
        .find(|v| !v.truthy())
        .unwrap_or(&args[args.len() - 1])
        .clone())
}

fn or(args: &[Value]) -> Result<Value, String> {
    want_at_least("or", args, 1)?;
    Ok(args
        .iter()
        .find(|v| v.truthy())
        .unwrap_or(&args[args.len() - 1])
        .clone())
}

fn not(args: &[Value]) -> Result<Value, String> {
    want_args("not", args, 1)?;
    Ok(Value::Bool(!args[0].truthy()))
}

fn len(args: &[Value]) -> Result<Value, String> {
    want_args("len", args, 1)?;
    let n = match &args[0] {
        Value::String(s) | Value::SafeHtml(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Nil => return Err("len of untyped nil".to_string()),
        v => return Err(format!("len of type {}", v.type_name())),
    };
    Ok(Value::Int(n as i64))
}

fn index_int(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err(format!("cannot index {what} with nil")),
        v => Err(format!("cannot index {what} with type {}", v.type_name())),
    }
}

fn index(args: &[Value]) -> Result<Value, String> {
    want_at_least("index", args, 1)?;
    let mut item = args[0].clone();
    for ix in &args[1..] {
        item = match item {
            Value::List(l) => {
                let i = index_int(ix, "slice/array")?;
                usize::try_from(i)
                    .ok()
                    .and_then(|u| l.get(u).cloned())
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::String(s) | Value::SafeHtml(s) => {
                let i = index_int(ix, "slice/array")?;
                usize::try_from(i)
                    .ok()
                    .and_then(|u| s.as_bytes().get(u).copied())
                    .map(|b| Value::Int(i64::from(b)))
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::Map(m) => match ix {
                Value::String(k) | Value::SafeHtml(k) => m.get(k).cloned().unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".to_string()),
                v => {
                    return Err(format!(
                        "value has type {}; should be string",
                        v.type_name()
                    ));
                }
            },
            Value::Nil => return Err("index of untyped nil".to_string()),
            v => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, String> {
    want_at_least("slice", args, 1)?;
    let item = &args[0];
    let len = match item {
        Value::String(s) | Value::SafeHtml(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Nil => return Err("slice of untyped nil".to_string()),
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    if args.len() > 4 {
        return Err(format!("too many slice indexes: {}", args.len() - 1));
    }
    let mut idx = [0usize, len, len];
    for (n, a) in args[1..].iter().enumerate() {
        let i = index_int(a, "slice/array")?;
        let u = usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?;
        if u > len {
            return Err(format!("index out of range: {i}"));
        }
        idx[n] = u;
    }
    if args.len() == 4 && matches!(item, Value::String(_) | Value::SafeHtml(_)) {
        return Err("cannot 3-index slice a string".to_string());
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if args.len() == 4 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::String(s) => Value::String(
            s.get(idx[0]..idx[1])
                .ok_or("slice splits a UTF-8 character")?
                .to_string(),
        ),
        Value::SafeHtml(s) => Value::SafeHtml(
            s.get(idx[0]..idx[1])
                .ok_or("slice splits a UTF-8 character")?
                .to_string(),
        ),
        Value::List(l) => Value::List(l[idx[0]..idx[1]].to_vec()),
        _ => Value::Nil,
    })
}

fn printf(args: &[Value]) -> Result<Value, String> {
    want_at_least("printf", args, 1)?;
    let f = str_arg(args, 0)?;
    Ok(Value::String(sprintf(f, &args[1..])))
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) | Value::SafeHtml(_) => Kind::Str,
        Value::List(_) | Value::Map(_) => Kind::Other,
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

/// Go's `eq arg1 arg2...`: true if arg1 equals any of the others.
fn eq(args: &[Value]) -> Result<Value, String> {
    let Some((a, rest)) = args.split_first() else {
        return Err("wrong number of args for eq: want at least 1 got 0".to_string());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let k1 = kind(a);
    for b in rest {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err(BAD_COMPARISON.to_string());
            }
            false
        } else {
            match (a, b) {
                (Value::Nil, Value::Nil) => true,
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (x, y) if k1 == Kind::Str => x.as_str() == y.as_str(),
                (_, y) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        y.to_go_string(),
                        y.type_name()
                    ));
                }
            }
        };
        if truth {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ne(args: &[Value]) -> Result<Value, String> {
    want_args("ne", args, 2)?;
    let Value::Bool(b) = eq(args)? else {
        return Err(BAD_COMPARISON.to_string());
    };
    Ok(Value::Bool(!b))
}

fn ordered(
    name: &str,
    args: &[Value],
    pred: fn(std::cmp::Ordering) -> bool,
) -> Result<Value, String> {
    want_args(name, args, 2)?;
    let (a, b) = (&args[0], &args[1]);
    let (k1, k2) = (kind(a), kind(b));
    if matches!(k1, Kind::Invalid | Kind::Bool | Kind::Other)
        || matches!(k2, Kind::Invalid | Kind::Bool | Kind::Other)
    {
        return Err(BAD_COMPARISON_TYPE.to_string());
    }
    if k1 != k2 {
        return Err(BAD_COMPARISON.to_string());
    }
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        // Go's `<` on floats: NaN compares false for every operator.
        (Value::Float(x), Value::Float(y)) => match x.partial_cmp(y) {
            Some(o) => o,
            None => return Ok(Value::Bool(false)),
        },
        (x, y) => x.as_str().cmp(&y.as_str()),
    };
    Ok(Value::Bool(pred(ord)))
}

/// Go's `evalArgs` for `html`, `js`, `urlquery`: one string as is, else `Sprint`.
fn eval_args(args: &[Value]) -> String {
    match args {
        [v] => match v.as_str() {
            Some(s) => s.to_string(),
            None => v.to_go_string(),
        },
        _ => sprint(args),
    }
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        let m = FuncMap::builtins();
        (m.get(name).unwrap())(args)
    }

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    #[test]
    fn comparisons_like_go() {
        assert_eq!(
            call("eq", &[1i64.into(), 2i64.into(), 1i64.into()]),
            Ok(true.into())
        );
        assert_eq!(call("eq", &[s("a"), s("b")]), Ok(false.into()));
        assert_eq!(
            call("eq", &[s("a"), Value::SafeHtml("a".into())]),
            Ok(true.into())
        );
        assert_eq!(
            call("eq", &[1i64.into(), 1.0.into()]),
            Err(BAD_COMPARISON.into())
        );
        assert_eq!(call("eq", &[Value::Nil, s("")]), Ok(false.into()));
        assert_eq!(call("eq", &[Value::Nil, Value::Nil]), Ok(true.into()));
        assert!(call("eq", &[Value::List(vec![]), Value::List(vec![])]).is_err());
        assert!(call("eq", &[1i64.into()]).is_err());
        assert_eq!(call("ne", &[s("a"), s("b")]), Ok(true.into()));
        assert_eq!(call("lt", &[1i64.into(), 2i64.into()]), Ok(true.into()));
        assert_eq!(call("ge", &[2.5.into(), 2.5.into()]), Ok(true.into()));
        assert_eq!(call("gt", &[s("b"), s("a")]), Ok(true.into()));
        assert_eq!(
            call("gt", &[0.7.into(), 1i64.into()]),
            Err(BAD_COMPARISON.into())
        );
        assert_eq!(
            call("lt", &[true.into(), false.into()]),
            Err(BAD_COMPARISON_TYPE.into())
        );
        assert_eq!(
            call("lt", &[Value::Nil, 1i64.into()]),
            Err(BAD_COMPARISON_TYPE.into())
        );
        assert_eq!(call("lt", &[f64::NAN.into(), 1.0.into()]), Ok(false.into()));
    }

    #[test]
    fn logic() {
        assert_eq!(
            call("and", &[1i64.into(), 0i64.into(), 2i64.into()]),
            Ok(0i64.into())
        );
        assert_eq!(call("and", &[1i64.into(), 2i64.into()]), Ok(2i64.into()));
        assert_eq!(call("or", &[0i64.into(), s(""), s("x")]), Ok(s("x")));
        assert_eq!(call("or", &[0i64.into(), s("")]), Ok(s("")));
        assert_eq!(call("not", &[s("")]), Ok(true.into()));
    }

    #[test]
    fn len_index_slice() {
        assert_eq!(call("len", &[s("héllo")]), Ok(6i64.into()));
        assert_eq!(
            call("len", &[Value::List(vec![1i64.into()])]),
            Ok(1i64.into())
        );
        assert_eq!(call("len", &[3i64.into()]), Err("len of type int".into()));
        let l = Value::List(vec![s("a"), Value::List(vec![s("b"), s("c")])]);
        assert_eq!(
            call("index", &[l.clone(), 1i64.into(), 0i64.into()]),
            Ok(s("b"))
        );
        assert!(
            call("index", &[l.clone(), 5i64.into()])
                .unwrap_err()
                .contains("out of range")
        );
        assert!(call("index", &[l.clone(), s("x")]).is_err());
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), s("v"));
        assert_eq!(call("index", &[Value::Map(m.clone()), s("k")]), Ok(s("v")));
        assert_eq!(call("index", &[Value::Map(m), s("nope")]), Ok(Value::Nil));
        assert_eq!(call("index", &[s("abc"), 1i64.into()]), Ok(98i64.into()));
        assert_eq!(
            call("slice", &[s("abcdef"), 1i64.into(), 3i64.into()]),
            Ok(s("bc"))
        );
        assert_eq!(call("slice", &[s("abcdef"), 4i64.into()]), Ok(s("ef")));
        assert_eq!(
            call("slice", &[l.clone(), 1i64.into()]).unwrap(),
            Value::List(vec![Value::List(vec![s("b"), s("c")])])
        );
        assert!(call("slice", &[s("abc"), 2i64.into(), 1i64.into()]).is_err());
        assert!(call("slice", &[s("abc"), 9i64.into()]).is_err());
        assert!(call("slice", &[s("é"), 1i64.into()]).is_err());
    }

    #[test]
    fn printing() {
        assert_eq!(call("print", &[1i64.into(), 2i64.into()]), Ok(s("1 2")));
        assert_eq!(
            call("printf", &[s("%d-%s"), 1i64.into(), s("x")]),
            Ok(s("1-x"))
        );
        assert!(call("printf", &[1i64.into()]).is_err());
        assert_eq!(call("println", &[s("a")]), Ok(s("a\n")));
    }

    #[test]
    fn escapers_like_go() {
        assert_eq!(
            call("html", &[s("<a href=\"x\">'&'</a>")]),
            Ok(s("&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"))
        );
        assert_eq!(
            call("js", &[s("a'b\"c<d>&=\\\n")]),
            Ok(s("a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\\\\\u000A"))
        );
        assert_eq!(
            call("urlquery", &[s("a b&c=d/é")]),
            Ok(s("a+b%26c%3Dd%2F%C3%A9"))
        );
        assert_eq!(call("html", &[1i64.into(), 2i64.into()]), Ok(s("1 2")));
    }

    #[test]
    fn funcmap_ops() {
        let mut m = FuncMap::default();
        assert!(!m.contains("x"));
        m.insert("x", Arc::new(|_: &[Value]| Ok(Value::Int(1))));
        let mut b = FuncMap::builtins();
        b.extend(m);
        assert!(b.contains("x") && b.contains("printf"));
        assert!(b.names().any(|n| n == "len"));
    }
}
