//! Prometheus's template functions (`humanize`, `label`, `sortByLabel`, ...),
//! after `template/template.go` and `prometheus/common/helpers/templates`.
//!
//! The caller adds the functions that need the rule manager: `query`
//! (returning a `List` of `Map{"Labels": Map, "Value": Float}`), `now`,
//! `externalURL`, `pathPrefix`, `graphLink`, `tableLink`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::alertmanager::{add_shared, regex_for};
use crate::funcs::{FuncMap, str_arg, want_args};
use crate::printf::sprintf;
use crate::timefmt::{GoTime, duration_string, parse_go_duration};
use crate::value::{Value, format_float_g};

/// Go's builtins plus Prometheus's template functions.
pub fn prometheus_funcs() -> FuncMap {
    let mut m = FuncMap::builtins();
    add_shared(&mut m);
    m.insert(
        "title",
        Arc::new(|a: &[Value]| {
            want_args("title", a, 1)?;
            Ok(Value::String(title(str_arg(a, 0)?, false)))
        }),
    );
    m.insert("first", Arc::new(first));
    m.insert(
        "label",
        Arc::new(|a: &[Value]| {
            want_args("label", a, 2)?;
            let name = str_arg(a, 0)?;
            let labels = sample_field(&a[1], "Labels")?;
            Ok(labels_get(labels, name))
        }),
    );
    m.insert(
        "value",
        Arc::new(|a: &[Value]| {
            want_args("value", a, 1)?;
            Ok(sample_field(&a[0], "Value")?.clone())
        }),
    );
    m.insert(
        "strvalue",
        Arc::new(|a: &[Value]| {
            want_args("strvalue", a, 1)?;
            Ok(labels_get(sample_field(&a[0], "Labels")?, "__value__"))
        }),
    );
    m.insert(
        "args",
        Arc::new(|a: &[Value]| {
            let m: BTreeMap<String, Value> = a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone()))
                .collect();
            Ok(Value::Map(m))
        }),
    );
    m.insert("sortByLabel", Arc::new(sort_by_label));
    m.insert(
        "stripPort",
        Arc::new(|a: &[Value]| {
            want_args("stripPort", a, 1)?;
            let hp = str_arg(a, 0)?;
            Ok(Value::String(
                split_host_port(hp).map_or(hp, |(h, _)| h).to_string(),
            ))
        }),
    );
    m.insert(
        "stripDomain",
        Arc::new(|a: &[Value]| {
            want_args("stripDomain", a, 1)?;
            Ok(Value::String(strip_domain(str_arg(a, 0)?)))
        }),
    );
    m.insert(
        "humanize",
        Arc::new(|a: &[Value]| {
            want_args("humanize", a, 1)?;
            Ok(Value::String(humanize(convert_to_float(&a[0])?)))
        }),
    );
    m.insert(
        "humanize1024",
        Arc::new(|a: &[Value]| {
            want_args("humanize1024", a, 1)?;
            Ok(Value::String(humanize1024(convert_to_float(&a[0])?)))
        }),
    );
    m.insert(
        "humanizePercentage",
        Arc::new(|a: &[Value]| {
            want_args("humanizePercentage", a, 1)?;
            let v = convert_to_float(&a[0])?;
            Ok(Value::String(sprintf("%.4g%%", &[Value::Float(v * 100.0)])))
        }),
    );
    m.insert(
        "humanizeTimestamp",
        Arc::new(|a: &[Value]| {
            want_args("humanizeTimestamp", a, 1)?;
            let v = convert_to_float(&a[0])?;
            if !v.is_finite() {
                return Ok(Value::String(sprintf("%.4g", &[Value::Float(v)])));
            }
            Ok(Value::String(float_to_time(v)?.go_string()))
        }),
    );
    m.insert(
        "toTime",
        Arc::new(|a: &[Value]| {
            want_args("toTime", a, 1)?;
            let v = convert_to_float(&a[0])?;
            if !v.is_finite() {
                return Err("value is NaN or Inf".to_string());
            }
            Ok(Value::String(float_to_time(v)?.go_string()))
        }),
    );
    m.insert(
        "toDuration",
        Arc::new(|a: &[Value]| {
            want_args("toDuration", a, 1)?;
            let v = convert_to_float(&a[0])?;
            Ok(Value::String(duration_string(float_to_nanos(v * 1e9))))
        }),
    );
    m.insert(
        "parseDuration",
        Arc::new(|a: &[Value]| {
            want_args("parseDuration", a, 1)?;
            let s = str_arg(a, 0)?;
            let ms = parse_prom_duration(s)
                .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
            Ok(Value::Float(ms as f64 / 1000.0))
        }),
    );
    m.insert(
        "urlQueryEscape",
        Arc::new(|a: &[Value]| {
            want_args("urlQueryEscape", a, 1)?;
            Ok(Value::String(crate::funcs::query_escape(str_arg(a, 0)?)))
        }),
    );
    m.insert(
        "match",
        Arc::new(|a: &[Value]| {
            want_args("match", a, 2)?;
            Ok(Value::Bool(
                regex_for(str_arg(a, 0)?)?.is_match(str_arg(a, 1)?),
            ))
        }),
    );
    m
}

/// Go's `float64 -> int64` conversion, saturating where Go's is undefined.
fn float_to_nanos(v: f64) -> i64 {
    if v.is_nan() { i64::MIN } else { v as i64 }
}

/// `prometheus/common`'s `ConvertToFloat`: numbers, numeric strings, and
/// (here) Go duration strings, which stand for `time.Duration`.
pub(crate) fn convert_to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) | Value::SafeHtml(s) => match parse_go_float(s) {
            Ok(f) => Ok(f),
            Err(e) => parse_go_duration(s).map(|ns| ns as f64 / 1e9).ok_or(e),
        },
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, with its error messages.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, String> {
    let invalid = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            crate::printf::go_quote(s)
        )
    };
    let body = s.trim_start_matches(['+', '-']);
    if s.len() - body.len() > 1 {
        return Err(invalid());
    }
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().map_err(|_| invalid());
    }
    if lower.starts_with("0x") {
        return match crate::parse::parse_number(s) {
            Some(Value::Float(f)) => Ok(f),
            Some(Value::Int(i)) => Ok(i as f64),
            _ => Err(invalid()),
        };
    }
    if !lower
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return Err(invalid());
    }
    let f: f64 = s.parse().map_err(|_| invalid())?;
    if f.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            crate::printf::go_quote(s)
        ));
    }
    Ok(f)
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_float_g(v, Some(4)))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_float_g(v, Some(4)))
}

/// `prometheus/common`'s `HumanizeDuration`: `1h 1m 1s`, `1.234s`, `100ms`.
pub(crate) fn humanize_duration(v: &Value) -> Result<String, String> {
    let mut v = convert_to_float(v)?;
    if !v.is_finite() {
        return Ok(sprintf("%.4g", &[Value::Float(v)]));
    }
    if v == 0.0 {
        return Ok(sprintf("%.4gs", &[Value::Float(v)]));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return Ok(if days != 0 {
            format!("{sign}{days}d {hours}h {mins}m {secs}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {mins}m {secs}s")
        } else if mins != 0 {
            format!("{sign}{mins}m {secs}s")
        } else {
            format!("{sign}{}s", format_float_g(v, Some(4)))
        });
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    Ok(format!("{}{prefix}s", format_float_g(v, Some(4))))
}

/// `FloatToTime`: seconds to a UTC time, at millisecond precision as
/// Prometheus's `model.Time` has it.
fn float_to_time(v: f64) -> Result<GoTime, String> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_g(v, None)
        ));
    }
    let ms = (ns as i64) / 1_000_000;
    GoTime::from_unix(
        ms.div_euclid(1000),
        (ms.rem_euclid(1000) * 1_000_000) as u32,
    )
    .ok_or_else(|| "time out of range".to_string())
}

/// Prometheus's duration syntax (`model.ParseDurationAllowNegative`):
/// `[-]1y2w3d4h5m6s7ms`, units in that order. Milliseconds.
pub(crate) fn parse_prom_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let num: i64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let idx = UNITS.iter().position(|(name, _)| *name == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        total = total.checked_add(num.checked_mul(UNITS[idx].1)?)?;
    }
    Some(if neg { -total } else { total })
}

fn first(a: &[Value]) -> Result<Value, String> {
    want_args("first", a, 1)?;
    match &a[0] {
        Value::List(l) => l
            .first()
            .cloned()
            .ok_or_else(|| "first() called on vector with no elements".to_string()),
        v => Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            v.type_name()
        )),
    }
}

fn sample_field<'a>(s: &'a Value, key: &str) -> Result<&'a Value, String> {
    match s {
        Value::Map(m) => Ok(m.get(key).unwrap_or(&Value::Nil)),
        Value::Nil => Err("invalid memory address or nil pointer dereference".to_string()),
        v => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            v.type_name()
        )),
    }
}

fn labels_get(labels: &Value, name: &str) -> Value {
    match labels {
        Value::Map(m) => m
            .get(name)
            .cloned()
            .unwrap_or_else(|| Value::String(String::new())),
        _ => Value::String(String::new()),
    }
}

fn sort_by_label(a: &[Value]) -> Result<Value, String> {
    want_args("sortByLabel", a, 2)?;
    let name = str_arg(a, 0)?;
    let Value::List(l) = &a[1] else {
        return Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            a[1].type_name()
        ));
    };
    let key = |v: &Value| -> String {
        match v {
            Value::Map(m) => m
                .get("Labels")
                .map(|l| labels_get(l, name).to_go_string())
                .unwrap_or_default(),
            _ => String::new(),
        }
    };
    let mut keyed: Vec<(String, Value)> = l.iter().map(|v| (key(v), v.clone())).collect();
    keyed.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(Value::List(keyed.into_iter().map(|(_, v)| v).collect()))
}

/// Go's `net.SplitHostPort`.
pub(crate) fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hp[1..end], 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `cases.Title`: the first letter of each word upper-cased; with `lower`
/// the rest lower-cased (Alertmanager), else kept (Prometheus's `NoLower`).
pub(crate) fn title(s: &str, lower: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if !in_word {
                out.extend(c.to_uppercase());
            } else if lower {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
            in_word = true;
        } else {
            out.push(c);
            // Apostrophes and underscores continue a word.
            in_word = in_word && matches!(c, '\'' | '’' | '_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;

    fn run(src: &str, data: Value) -> Result<String, String> {
        let mut t = Template::new(prometheus_funcs());
        t.parse("test", src).map_err(|e| e.to_string())?;
        t.execute("test", &data).map_err(|e| e.to_string())
    }

    fn ok(src: &str, data: Value) -> String {
        run(src, data).unwrap()
    }

    fn floats(v: &[f64]) -> Value {
        Value::List(v.iter().map(|f| Value::Float(*f)).collect())
    }

    fn ints(v: &[i64]) -> Value {
        Value::List(v.iter().map(|f| Value::Int(*f)).collect())
    }

    fn strs(v: &[&str]) -> Value {
        Value::List(v.iter().map(|s| Value::from(*s)).collect())
    }

    fn sample(labels: &[(&str, &str)], v: f64) -> Value {
        let mut m = BTreeMap::new();
        m.insert(
            "Labels".to_string(),
            Value::Map(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(*v)))
                    .collect(),
            ),
        );
        m.insert("Value".to_string(), Value::Float(v));
        Value::Map(m)
    }

    // Cases from Prometheus's template/template_test.go.
    #[test]
    fn humanize_cases() {
        let r = "{{ range . }}{{ humanize . }}:{{ end }}";
        assert_eq!(
            ok(r, floats(&[0.0, 1.0, 1234567.0, 0.12])),
            "0:1:1.235M:120m:"
        );
        assert_eq!(
            ok(r, strs(&["0.0", "1.0", "1234567.0", ".12"])),
            "0:1:1.235M:120m:"
        );
        assert_eq!(
            ok(r, ints(&[0, -1, 1, 1234567, i64::MAX])),
            "0:-1:1:1.235M:9.223E:"
        );
        assert_eq!(ok("{{ humanize 0.0123 }}", Value::Nil), "12.3m");
        assert_eq!(
            run(r#"{{ humanize "one" }}"#, Value::Nil).unwrap_err(),
            r#"template: test:1:3: executing "test" at <humanize "one">: error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax"#
        );
        let r = "{{ range . }}{{ humanize1024 . }}:{{ end }}";
        assert_eq!(ok(r, floats(&[0.0, 1.0, 1048576.0, 0.12])), "0:1:1Mi:0.12:");
        assert_eq!(
            ok(r, strs(&["0.0", "1.0", "1048576.0", ".12"])),
            "0:1:1Mi:0.12:"
        );
        assert_eq!(
            ok(r, ints(&[0, -1, 1, 1234567, i64::MAX])),
            "0:-1:1:1.177Mi:8Ei:"
        );
        let all = "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}";
        let want = "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:";
        assert_eq!(
            ok(all, floats(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN])),
            want
        );
        assert_eq!(ok(all, strs(&["+Inf", "-Inf", "NaN"])), want);
    }

    #[test]
    fn humanize_duration_cases() {
        let r = "{{ range . }}{{ humanizeDuration . }}:{{ end }}";
        let in1 = floats(&[
            0.0,
            1.0,
            60.0,
            3600.0,
            86400.0,
            86400.0 + 3600.0,
            -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
            899.99,
        ]);
        assert_eq!(
            ok(r, in1),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
        );
        assert_eq!(
            ok(r, strs(&["0", "1", "60", "3600", "86400"])),
            "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:"
        );
        let want = "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:";
        assert_eq!(
            ok(
                r,
                floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345])
            ),
            want
        );
        assert_eq!(
            ok(
                r,
                strs(&[".1", ".0001", ".12345", "60.1", "60.5", "1.2345", "12.345"])
            ),
            want
        );
        assert_eq!(
            ok(r, ints(&[0, -1, 1, 1234567])),
            "0s:-1s:1s:14d 6h 56m 7s:"
        );
        assert_eq!(ok("{{ humanizeDuration 3661 }}", Value::Nil), "1h 1m 1s");
    }

    #[test]
    fn humanize_percentage_cases() {
        assert_eq!(
            ok(
                "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
                Value::Nil
            ),
            "-22.22%:0%:12.35%:123.5%"
        );
        let r = "{{ range . }}{{ humanizePercentage . }}:{{ end }}";
        assert_eq!(
            ok(r, ints(&[0, -1, 1, 1234567, i64::MAX])),
            "0%:-100%:100%:1.235e+08%:9.223e+20%:"
        );
        assert_eq!(ok("{{ humanizePercentage 0.1234 }}", Value::Nil), "12.34%");
        assert_eq!(
            run(r#"{{ "one" | humanizePercentage }}"#, Value::Nil).unwrap_err(),
            r#"template: test:1:11: executing "test" at <humanizePercentage>: error calling humanizePercentage: strconv.ParseFloat: parsing "one": invalid syntax"#
        );
    }

    #[test]
    fn timestamps() {
        let r = "{{ range . }}{{ humanizeTimestamp . }}:{{ end }}";
        assert_eq!(
            ok(r, ints(&[0, -1, 1, 1234567, 9223372036])),
            "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:"
        );
        assert_eq!(
            run(r, ints(&[i64::MIN, i64::MAX])).unwrap_err(),
            r#"template: test:1:16: executing "test" at <humanizeTimestamp .>: error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"#
        );
        assert_eq!(
            ok("{{ 1435065584.128 | humanizeTimestamp }}", Value::Nil),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            ok(r#"{{ "1435065584.128" | humanizeTimestamp }}"#, Value::Nil),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            ok(
                r#"{{ (1435065584.128 | toTime).Format "2006" }}"#,
                Value::Nil
            ),
            "2015"
        );
        assert_eq!(
            ok(
                r#"{{ ("1435065584.128" | toTime).Format "2006" }}"#,
                Value::Nil
            ),
            "2015"
        );
        assert_eq!(
            ok(r#"{{ (1800 | toDuration).String }}"#, Value::Nil),
            "30m0s"
        );
        assert_eq!(
            ok(r#"{{ ("1800" | toDuration).String }}"#, Value::Nil),
            "30m0s"
        );
        let mut t = Template::new({
            let mut f = prometheus_funcs();
            f.insert(
                "now",
                Arc::new(|_: &[Value]| Ok(Value::Float(1353755652.0))),
            );
            f
        });
        t.parse("n", r#"{{ now }}|{{ (now | toTime).Format "Mon Jan 2 15:04:05 2006" }}|{{ ("-30m" | parseDuration | toDuration | (now | toTime).Add).UnixMilli }}"#).unwrap();
        assert_eq!(
            t.execute("n", &Value::Nil).unwrap(),
            "1.353755652e+09|Sat Nov 24 11:14:12 2012|1353753852000"
        );
    }

    #[test]
    fn strings_and_regexes() {
        assert_eq!(ok(r#"{{ "aa bb CC" | title }}"#, Value::Nil), "Aa Bb CC");
        assert_eq!(ok(r#"{{ "aa bb CC" | toUpper }}"#, Value::Nil), "AA BB CC");
        assert_eq!(ok(r#"{{ "aA bB CC" | toLower }}"#, Value::Nil), "aa bb cc");
        assert_eq!(
            ok(r#"{{ match "a+" "aa" }} {{ match "a+" "b" }}"#, Value::Nil),
            "true false"
        );
        assert_eq!(
            ok(r#"{{ reReplaceAll "(a)b" "x$1" "ab" }}"#, Value::Nil),
            "xa"
        );
        assert!(
            run(r#"{{ match "(" "a" }}"#, Value::Nil)
                .unwrap_err()
                .contains("error calling match")
        );
        assert_eq!(
            ok(
                r#"{{ printf "%0.2f" (parseDuration "1h2m10ms") }}"#,
                Value::Nil
            ),
            "3720.01"
        );
        assert_eq!(
            ok(
                r#"{{ printf "%0.2f" (parseDuration "-1h2m10ms") }}"#,
                Value::Nil
            ),
            "-3720.01"
        );
        assert!(
            run(r#"{{ parseDuration "1m1h" }}"#, Value::Nil)
                .unwrap_err()
                .contains("not a valid duration string")
        );
        assert_eq!(ok(r#"{{ "<b>" }}"#, Value::Nil), "<b>");
        assert_eq!(
            ok(
                r#"{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}"#,
                Value::Nil
            ),
            "1 2"
        );
    }

    #[test]
    fn host_ports() {
        for (input, port, domain) in [
            ("foo.example.com", "foo.example.com", "foo"),
            ("foo.example.com:12345", "foo.example.com", "foo:12345"),
            ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:12345", "192.0.2.1", "192.0.2.1:12345"),
            ("2001:0DB8::1", "2001:0DB8::1", "2001:0DB8::1"),
            (
                "[2001:0DB8::1]:12345",
                "2001:0DB8::1",
                "[2001:0DB8::1]:12345",
            ),
            (
                "[2001:0DB8::1]::12345",
                "[2001:0DB8::1]::12345",
                "[2001:0DB8::1]::12345",
            ),
        ] {
            assert_eq!(
                ok(&format!("{{{{ {input:?} | stripPort }}}}"), Value::Nil),
                port
            );
            assert_eq!(
                ok(&format!("{{{{ {input:?} | stripDomain }}}}"), Value::Nil),
                domain
            );
        }
    }

    #[test]
    fn query_results() {
        let result = Value::List(vec![
            sample(&[("instance", "b")], 21.0),
            sample(&[("instance", "a")], 11.0),
        ]);
        let mut f = prometheus_funcs();
        let r = result.clone();
        f.insert("query", Arc::new(move |_: &[Value]| Ok(r.clone())));
        f.insert("none", Arc::new(|_: &[Value]| Ok(Value::List(vec![]))));
        let mut t = Template::new(f);
        let run = |t: &mut Template, src: &str| {
            t.parse("test", src).unwrap();
            t.execute("test", &Value::Nil).map_err(|e| e.to_string())
        };
        assert_eq!(
            run(&mut t, r#"{{ query "x" | first | value }}"#).unwrap(),
            "21"
        );
        assert_eq!(
            run(&mut t, r#"{{ query "x" | first | label "instance" }}"#).unwrap(),
            "b"
        );
        assert_eq!(
            run(&mut t, r#"{{ query "x" | first | label "foo" }}"#).unwrap(),
            ""
        );
        assert_eq!(
            run(&mut t, r#"{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}"#).unwrap(),
            "a:11: b:21: "
        );
        assert_eq!(
            run(&mut t, r#"{{ none "missing" | first }}"#)
                .unwrap_err()
                .to_string(),
            r#"template: test:1:20: executing "test" at <first>: error calling first: first() called on vector with no elements"#
        );
        let mut t = Template::new(prometheus_funcs()).missing_key(crate::MissingKey::Zero);
        t.add_func("query", Arc::new(move |_: &[Value]| Ok(result.clone())));
        assert_eq!(
            run(
                &mut t,
                r#"{{ $x := query "metric" | first }}{{ $x.Labels.foo }}"#
            )
            .unwrap(),
            ""
        );
    }

    #[test]
    fn html_mode() {
        let mut t = Template::new(prometheus_funcs()).html();
        t.parse("test", r#"{{ "<b>" }}|{{ "<b>" | safeHtml }}|{{ .Foo }}"#)
            .unwrap();
        assert_eq!(
            t.execute("test", &Value::Map(BTreeMap::new())).unwrap(),
            "&lt;b&gt;|<b>|"
        );
    }

    #[test]
    fn prom_durations() {
        assert_eq!(parse_prom_duration("1h2m10ms"), Some(3_720_010));
        assert_eq!(
            parse_prom_duration("1y1w1d"),
            Some((365 + 7 + 1) * 86_400_000)
        );
        assert_eq!(parse_prom_duration("0"), Some(0));
        assert_eq!(parse_prom_duration("1.5h"), None);
        assert_eq!(parse_prom_duration("5"), None);
        assert_eq!(parse_prom_duration("99999999999999999999y"), None);
    }
}
