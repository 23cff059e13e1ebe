//! The dynamic value a template works on, and how Go's `fmt` prints it.

use std::collections::BTreeMap;

/// A template value. Go templates work on arbitrary Go values; Silt's callers
/// build their data from these variants.
///
/// `Map` stands for both Go maps and structs: `.Field` looks a key up.
/// `SafeHtml` is Go's `html/template.HTML`: a string that [`Template::html`]
/// mode does not escape again.
///
/// [`Template::html`]: crate::Template::html
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's untyped `nil` (and a missing map key).
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    SafeHtml(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Value {
        Value::Map(m)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}

/// Collects `(key, value)` pairs into a `Map`.
impl<K: Into<String>> FromIterator<(K, Value)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Value {
        Value::Map(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// Collects values into a `List`.
impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Value {
        Value::List(iter.into_iter().collect())
    }
}

impl From<serde_json::Value> for Value {
    /// JSON numbers that fit an `i64` become `Int`, others `Float`.
    fn from(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl Value {
    /// Go's `template.IsTrue`: false, 0, "", empty list/map and nil are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) | Value::SafeHtml(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// How `{{.}}` prints the value in text mode (Go's `fmt.Print`, except
    /// that a top-level nil prints as `<no value>` as text/template does).
    pub fn to_text(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_string(),
            other => other.to_go_string(),
        }
    }

    /// Go's `fmt.Sprint(v)` (`%v`): nil prints as `<nil>`.
    pub fn to_go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out);
        out
    }

    fn write_go(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&format_float_g(*f, None)),
            Value::String(s) | Value::SafeHtml(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_go(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_go(out);
                }
                out.push(']');
            }
        }
    }

    /// The Go type name `%T` prints for this value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::SafeHtml(_) => "template.HTML",
        }
    }

    /// The value under `key` of a `Map`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The string inside a `String` or `SafeHtml`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::SafeHtml(s) => Some(s),
            _ => None,
        }
    }
}

/// Shortest decimal digits and exponent of a finite, non-zero `|f|`:
/// `f = 0.d1d2d3... * 10^(exp+1)`, i.e. `exp` is the exponent of the first digit.
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest representation that round-trips.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Digits of `|f|` rounded to `prec` significant digits (prec >= 1), and the
/// exponent of the first digit.
fn precise_digits(f: f64, prec: usize) -> (String, i32) {
    let s = sci(f.abs(), prec - 1);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Significant digits past which a double's exact decimal expansion is all
/// zeros (it has at most 767).
const EXACT_SIG_DIGITS: usize = 800;
/// Fractional digits past which it is all zeros (at most 1074).
const EXACT_FRAC_DIGITS: usize = 1100;

/// `format!("{:.prec$e}")` for any precision: Rust's formatter refuses
/// precisions over `u16::MAX`, Go allows up to 1e6, and the digits past the
/// exact expansion are zeros anyway.
fn sci(f: f64, prec: usize) -> String {
    let p = prec.min(EXACT_SIG_DIGITS);
    let mut s = format!("{:.*e}", p, f);
    if prec > p {
        let e = s.find('e').unwrap_or(s.len());
        s.insert_str(e, &"0".repeat(prec - p));
    }
    s
}

/// `format!("{:.prec$}")` for any precision (see [`sci`]).
fn fixed(f: f64, prec: usize) -> String {
    let p = prec.min(EXACT_FRAC_DIGITS);
    let mut s = format!("{:.*}", p, f);
    if prec > p {
        s.push_str(&"0".repeat(prec - p));
    }
    s
}

fn special_float(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn push_exponent(out: &mut String, e: char, exp: i32) {
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` (`prec` None = shortest), as
/// `%v` and `%g` print floats: `1e+06`, `0.5`, `3`, `1.234567e+06`.
pub fn format_float_g(f: f64, prec: Option<usize>) -> String {
    format_float_g_impl(f, prec, 'e', false)
}

pub(crate) fn format_float_g_impl(f: f64, prec: Option<usize>, e: char, sharp: bool) -> String {
    if let Some(s) = special_float(f) {
        return s.to_string();
    }
    let neg = f.is_sign_negative();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if f == 0.0 {
        match prec {
            Some(p) if sharp => {
                out.push('0');
                if p > 1 {
                    out.push('.');
                    out.push_str(&"0".repeat(p - 1));
                } else {
                    out.push('.');
                }
            }
            _ => out.push('0'),
        }
        return out;
    }
    let (digits, exp, eprec) = match prec {
        None => {
            let (d, x) = shortest_digits(f);
            (d, x, 6usize)
        }
        Some(p) => {
            let p = p.max(1);
            let (d, x) = precise_digits(f, p);
            // Go trims trailing zeros for %g unless '#'.
            let mut d = d;
            if !sharp {
                while d.len() > 1 && d.ends_with('0') {
                    d.pop();
                }
            }
            let mut ep = p;
            // Go: if eprec > digs.nd && digs.nd >= digs.dp { eprec = digs.nd }
            let nd = d.len() as i32;
            if ep as i32 > nd && nd > x {
                ep = d.len();
            }
            (d, x, ep)
        }
    };
    // For shortest, Go uses eprec = 6 but lets more digits through when
    // the number is an integer with up to 21 digits: that rule (eprec = 21)
    // only applies to %v of float32/64 in fmt, so strconv's 'g' with -1 uses
    // eprec = 6 only when digs.nd <= 6... Go: `if shortest { eprec = 6 }`.
    let _ = sharp;
    if exp < -4 || exp >= eprec as i32 {
        // %e style with len(digits)-1 decimals.
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        push_exponent(&mut out, e, exp);
    } else if exp < 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Go's `%e` with precision `prec` (default 6).
pub fn format_float_e(f: f64, prec: usize, e: char) -> String {
    if let Some(s) = special_float(f) {
        return s.to_string();
    }
    let s = sci(f, prec);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut out = mant.to_string();
    push_exponent(&mut out, e, exp.parse().unwrap_or(0));
    out
}

/// Go's `%f` with precision `prec` (default 6).
pub fn format_float_f(f: f64, prec: usize) -> String {
    if let Some(s) = special_float(f) {
        return s.to_string();
    }
    fixed(f, prec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_v_like_go() {
        let cases: &[(f64, &str)] = &[
            (1e6, "1e+06"),
            (0.5, "0.5"),
            (3.0, "3"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e21, "1e+21"),
            (100.0, "100"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_g(*f, None), *want, "{f}");
        }
    }

    #[test]
    fn float_g_precision_like_go() {
        // fmt.Sprintf("%.4g", x)
        let cases: &[(f64, &str)] = &[
            (1.2345, "1.234"),
            (1234.5, "1234"),
            (12345.0, "1.234e+04"),
            (1.0, "1"),
            (0.0123, "0.0123"),
            (100.0, "100"),
            (1e-5, "1e-05"),
            (123.0, "123"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_g(*f, Some(4)), *want, "{f}");
        }
    }

    #[test]
    fn precision_beyond_rusts_formatter() {
        // Go allows precisions up to 1e6; Rust's formatter stops at 65535.
        let f = format_float_f(1.5, 100_000);
        assert_eq!(f.len(), 2 + 100_000);
        assert!(f.starts_with("1.5000"));
        let e = format_float_e(1.5, 70_000, 'e');
        assert!(
            e.starts_with("1.5000") && e.ends_with("0e+00"),
            "{}",
            &e[e.len() - 8..]
        );
        assert_eq!(e.len(), 2 + 70_000 + 4);
        let g = format_float_g_impl(0.1, Some(70_000), 'e', true);
        assert!(g.starts_with("0.1000000000000000055511151231257827"));
        assert_eq!(g.len(), 70_000 + 2);
    }

    #[test]
    fn to_text_shapes() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), Value::Int(2));
        m.insert("a".to_string(), Value::from("x"));
        assert_eq!(Value::Map(m).to_text(), "map[a:x b:2]");
        assert_eq!(
            Value::List(vec![Value::Int(1), Value::Nil, Value::Float(0.5)]).to_text(),
            "[1 <nil> 0.5]"
        );
        assert_eq!(Value::Nil.to_text(), "<no value>");
        assert_eq!(Value::Bool(true).to_text(), "true");
    }

    #[test]
    fn truthiness() {
        assert!(!Value::Nil.truthy());
        assert!(!Value::Int(0).truthy());
        assert!(Value::Float(0.1).truthy());
        assert!(!Value::from("").truthy());
        assert!(Value::from("x").truthy());
        assert!(!Value::List(vec![]).truthy());
    }

    #[test]
    fn collect_and_get() {
        let m: Value = [("b", Value::Int(2)), ("a", Value::from("x"))]
            .into_iter()
            .collect();
        assert_eq!(m.to_text(), "map[a:x b:2]");
        assert_eq!(m.get("a"), Some(&Value::from("x")));
        assert_eq!(Value::Int(1).get("a"), None);
        let l: Value = (1..=3).map(Value::Int).collect();
        assert_eq!(l.to_text(), "[1 2 3]");
        assert_eq!(Value::from(&"s".to_string()), Value::from("s"));
    }

    #[test]
    fn from_json() {
        let j: serde_json::Value = serde_json::json!({"a": [1, 2.5, "x", null, true]});
        let v = Value::from(j);
        assert_eq!(v.to_text(), "map[a:[1 2.5 x <nil> true]]");
    }
}
