//! Alertmanager's template functions (`toUpper`, `join`, `date`, `toJson`,
//! ...), after `template/template.go` in prometheus/alertmanager.
//!
//! Times are Go time strings (see [`crate::GoTime`]); `since` returns a Go
//! duration string, which `humanizeDuration` accepts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::funcs::{FuncMap, str_arg, want_args, want_at_least};
use crate::prometheus::{humanize_duration, title};
use crate::timefmt::{GoTime, duration_string, in_zone};
use crate::value::Value;

/// Go's builtins plus Alertmanager's template functions.
pub fn alertmanager_funcs() -> FuncMap {
    let mut m = FuncMap::builtins();
    add_shared(&mut m);
    m.insert(
        "title",
        Arc::new(|a: &[Value]| {
            want_args("title", a, 1)?;
            Ok(Value::String(title(str_arg(a, 0)?, true)))
        }),
    );
    m.insert(
        "trimSpace",
        Arc::new(|a: &[Value]| {
            want_args("trimSpace", a, 1)?;
            Ok(Value::String(str_arg(a, 0)?.trim().to_string()))
        }),
    );
    m.insert(
        "join",
        Arc::new(|a: &[Value]| {
            want_args("join", a, 2)?;
            let sep = str_arg(a, 0)?;
            Ok(Value::String(string_slice(&a[1])?.join(sep)))
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
    m.insert(
        "safeUrl",
        Arc::new(|a: &[Value]| {
            want_args("safeUrl", a, 1)?;
            Ok(Value::String(str_arg(a, 0)?.to_string()))
        }),
    );
    m.insert(
        "urlUnescape",
        Arc::new(|a: &[Value]| {
            want_args("urlUnescape", a, 1)?;
            query_unescape(str_arg(a, 0)?).map(Value::String)
        }),
    );
    m.insert(
        "stringSlice",
        Arc::new(|a: &[Value]| {
            for i in 0..a.len() {
                str_arg(a, i)?;
            }
            Ok(Value::List(a.to_vec()))
        }),
    );
    m.insert(
        "date",
        Arc::new(|a: &[Value]| {
            want_args("date", a, 2)?;
            let layout = str_arg(a, 0)?;
            Ok(Value::String(time_arg(&a[1])?.format(layout)))
        }),
    );
    m.insert(
        "tz",
        Arc::new(|a: &[Value]| {
            want_args("tz", a, 2)?;
            let t = time_arg(&a[1])?;
            Ok(Value::String(in_zone(&t, str_arg(a, 0)?)?.go_string()))
        }),
    );
    m.insert(
        "now",
        Arc::new(|a: &[Value]| {
            want_args("now", a, 0)?;
            Ok(Value::String(GoTime::utc(chrono::Utc::now()).go_string()))
        }),
    );
    m.insert(
        "since",
        Arc::new(|a: &[Value]| {
            want_args("since", a, 1)?;
            let t = time_arg(&a[0])?;
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            Ok(Value::String(duration_string(
                now.saturating_sub(t.unix_nano()),
            )))
        }),
    );
    m.insert(
        "toDate",
        Arc::new(|a: &[Value]| {
            want_args("toDate", a, 2)?;
            let t = crate::timefmt::parse_layout(str_arg(a, 0)?, str_arg(a, 1)?)
                .unwrap_or_else(|_| GoTime::zero());
            Ok(Value::String(t.go_string()))
        }),
    );
    m.insert(
        "mustToDate",
        Arc::new(|a: &[Value]| {
            want_args("mustToDate", a, 2)?;
            let t = crate::timefmt::parse_layout(str_arg(a, 0)?, str_arg(a, 1)?)?;
            Ok(Value::String(t.go_string()))
        }),
    );
    m.insert(
        "toJson",
        Arc::new(|a: &[Value]| {
            want_args("toJson", a, 1)?;
            let mut out = String::new();
            to_json(&a[0], &mut out)?;
            Ok(Value::String(out))
        }),
    );
    m.insert(
        "base64encode",
        Arc::new(|a: &[Value]| {
            want_args("base64encode", a, 1)?;
            Ok(Value::String(base64_url_encode(str_arg(a, 0)?.as_bytes())))
        }),
    );
    m.insert(
        "base64decode",
        Arc::new(|a: &[Value]| {
            want_args("base64decode", a, 1)?;
            let bytes = base64_url_decode(str_arg(a, 0)?)?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }),
    );
    m.insert("list", Arc::new(|a: &[Value]| Ok(Value::List(a.to_vec()))));
    m.insert(
        "append",
        Arc::new(|a: &[Value]| {
            want_at_least("append", a, 1)?;
            let mut l = match &a[0] {
                Value::List(l) => l.clone(),
                Value::Nil => Vec::new(),
                v => {
                    return Err(format!(
                        "wrong type for value; expected []interface {{}}; got {}",
                        v.type_name()
                    ));
                }
            };
            l.extend_from_slice(&a[1..]);
            Ok(Value::List(l))
        }),
    );
    m.insert(
        "dict",
        Arc::new(|a: &[Value]| {
            if !a.len().is_multiple_of(2) {
                return Err("dict requires an even number of arguments".to_string());
            }
            let mut m = BTreeMap::new();
            for kv in a.chunks(2) {
                let Value::String(k) = &kv[0] else {
                    return Err("dict keys must be strings".to_string());
                };
                m.insert(k.clone(), kv[1].clone());
            }
            Ok(Value::Map(m))
        }),
    );
    m
}

/// Functions both Prometheus and Alertmanager define the same way.
pub(crate) fn add_shared(m: &mut FuncMap) {
    m.insert(
        "toUpper",
        Arc::new(|a: &[Value]| {
            want_args("toUpper", a, 1)?;
            Ok(Value::String(go_case(str_arg(a, 0)?, true)))
        }),
    );
    m.insert(
        "toLower",
        Arc::new(|a: &[Value]| {
            want_args("toLower", a, 1)?;
            Ok(Value::String(go_case(str_arg(a, 0)?, false)))
        }),
    );
    m.insert(
        "safeHtml",
        Arc::new(|a: &[Value]| {
            want_args("safeHtml", a, 1)?;
            Ok(Value::SafeHtml(str_arg(a, 0)?.to_string()))
        }),
    );
    m.insert(
        "reReplaceAll",
        Arc::new(|a: &[Value]| {
            want_args("reReplaceAll", a, 3)?;
            let re = regex_for(str_arg(a, 0)?)?;
            Ok(Value::String(
                re.replace_all(str_arg(a, 2)?, str_arg(a, 1)?).into_owned(),
            ))
        }),
    );
    m.insert(
        "humanizeDuration",
        Arc::new(|a: &[Value]| {
            want_args("humanizeDuration", a, 1)?;
            humanize_duration(&a[0]).map(Value::String)
        }),
    );
}

/// Compiles a Go (RE2) regular expression (see [`crate::regex::translate`]).
pub(crate) fn regex_for(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&crate::regex::translate(pattern))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| format!("error parsing regexp: {e}"))
}

/// Go's `strings.ToUpper`/`ToLower`: rune by rune (no `ß` -> `SS`).
fn go_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if m.len() == 1 {
                m.pop().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

fn string_slice(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|e| {
                e.as_str().map(str::to_string).ok_or_else(|| {
                    format!(
                        "wrong type for value; expected string; got {}",
                        e.type_name()
                    )
                })
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        v => Err(format!(
            "wrong type for value; expected []string; got {}",
            v.type_name()
        )),
    }
}

fn time_arg(v: &Value) -> Result<GoTime, String> {
    v.as_str().and_then(GoTime::parse).ok_or_else(|| {
        format!(
            "wrong type for value; expected time.Time; got {}",
            v.type_name()
        )
    })
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                let Some(h) = hex else {
                    let bad: String = s[i..].chars().take(3).collect();
                    return Err(format!(
                        "invalid URL escape {}",
                        crate::printf::go_quote(&bad)
                    ));
                };
                out.push(u8::from_str_radix(h, 16).map_err(|e| e.to_string())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `encoding/json` for template values (HTML-safe escaping, Go floats).
pub(crate) fn to_json(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    crate::value::format_float_g(*f, None)
                ));
            }
            out.push_str(&json_float(*f));
        }
        Value::String(s) | Value::SafeHtml(s) => json_string(s, out),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(e, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                to_json(e, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Go's JSON float: `%f`-like, exponent form below 1e-6 and from 1e21.
fn json_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        // strconv 'e' shortest, then "e-07" -> "e-7".
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", e.unsigned_abs()).replace("e-0", "e-")
    } else {
        // Shortest round-trip digits without an exponent.
        let s = format!("{f}");
        if s == "-0" { "-0".to_string() } else { s }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `base64.URLEncoding` (URL alphabet, padded).
fn base64_url_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_url_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(format!(
            "illegal base64 data at input byte {}",
            bytes.len() / 4 * 4
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if c == b'=' && ci == bytes.len() / 4 - 1 && i >= 2 {
                pad += 1;
                0
            } else if pad > 0 {
                return Err(format!("illegal base64 data at input byte {}", ci * 4 + i));
            } else {
                B64.iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| format!("illegal base64 data at input byte {}", ci * 4 + i))?
                    as u32
            };
            n = (n << 6) | v;
        }
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;

    fn run(src: &str, data: &Value) -> Result<String, String> {
        let mut t = Template::new(alertmanager_funcs()).missing_key(crate::MissingKey::Zero);
        t.parse("t", src).map_err(|e| e.to_string())?;
        t.execute("t", data).map_err(|e| e.to_string())
    }

    fn ok(src: &str) -> String {
        run(src, &Value::Nil).unwrap()
    }

    #[test]
    fn string_funcs() {
        assert_eq!(ok(r#"{{ "aa bb CC" | title }}"#), "Aa Bb Cc");
        assert_eq!(ok(r#"{{ "straße" | toUpper }}"#), "STRAßE");
        assert_eq!(ok(r#"{{ "  x y \n" | trimSpace }}"#), "x y");
        assert_eq!(ok(r#"{{ stringSlice "a" "b" | join ", " }}"#), "a, b");
        assert_eq!(ok(r#"{{ match "^a.c$" "abc" }}"#), "true");
        assert_eq!(
            ok(r#"{{ reReplaceAll "(\\w+)@(\\w+)" "$2 at $1" "me@host" }}"#),
            "host at me"
        );
        assert_eq!(ok(r#"{{ urlUnescape "a%20b+c%2F" }}"#), "a b c/");
        assert!(
            run(r#"{{ urlUnescape "%zz" }}"#, &Value::Nil)
                .unwrap_err()
                .contains(r#"invalid URL escape "%zz""#)
        );
        assert_eq!(ok(r#"{{ "<b>" | safeUrl }}"#), "<b>");
        assert!(run(r#"{{ join "," "notalist" }}"#, &Value::Nil).is_err());
    }

    #[test]
    fn time_funcs() {
        let t = r#""2024-07-01 12:30:05.5 +0000 UTC""#;
        assert_eq!(
            ok(&format!("{{{{ date \"2006-01-02 15:04\" {t} }}}}")),
            "2024-07-01 12:30"
        );
        assert_eq!(
            ok(&format!(
                "{{{{ {t} | tz \"Europe/Paris\" | date \"15:04 MST\" }}}}"
            )),
            "14:30 CEST"
        );
        assert!(
            run(
                r#"{{ tz "Mars/Base" "2024-07-01T00:00:00Z" }}"#,
                &Value::Nil
            )
            .is_err()
        );
        assert!(
            run(r#"{{ date "2006" "yesterday" }}"#, &Value::Nil)
                .unwrap_err()
                .contains("expected time.Time")
        );
        let since = ok(r#"{{ since "2000-01-01T00:00:00Z" }}"#);
        assert!(since.ends_with('s') && since.contains('h'), "{since}");
        let h = ok(r#"{{ since "2000-01-01T00:00:00Z" | humanizeDuration }}"#);
        assert!(h.contains("d "), "{h}");
        assert_eq!(ok("{{ humanizeDuration 90 }}"), "1m 30s");
        assert!(GoTime::parse(&ok("{{ now }}")).is_some());
        assert_eq!(
            ok(r#"{{ toDate "2006-01-02" "2024-03-05" }}"#),
            "2024-03-05 00:00:00 +0000 UTC"
        );
        assert_eq!(
            ok(r#"{{ toDate "2006-01-02" "junk" }}"#),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            ok(r#"{{ (toDate "2006-01-02" "2024-03-05").Unix }}"#),
            "1709596800"
        );
        assert!(
            run(r#"{{ mustToDate "2006-01-02" "junk" }}"#, &Value::Nil)
                .unwrap_err()
                .contains(r#"cannot parse "junk" as "2006""#)
        );
    }

    #[test]
    fn json_and_collections() {
        let v = Value::from(
            serde_json::json!({"b": [1, 2.5, "<x>", null, true], "a": 1e21, "c": 1e-7}),
        );
        let mut s = String::new();
        to_json(&v, &mut s).unwrap();
        assert_eq!(
            s,
            r#"{"a":1e+21,"b":[1,2.5,"\u003cx\u003e",null,true],"c":1e-7}"#
        );
        assert_eq!(
            ok(r#"{{ dict "k" 1 "j" "x" | toJson }}"#),
            r#"{"j":"x","k":1}"#
        );
        assert_eq!(ok(r#"{{ list 1 "a" | toJson }}"#), r#"[1,"a"]"#);
        assert_eq!(ok(r#"{{ append (list 1) 2 3 | len }}"#), "3");
        assert!(run(r#"{{ dict "k" }}"#, &Value::Nil).is_err());
        assert!(run("{{ toJson . }}", &Value::Float(f64::NAN)).is_err());
        assert_eq!(ok(r#"{{ base64encode "hello?>" }}"#), "aGVsbG8_Pg==");
        assert_eq!(ok(r#"{{ base64decode "aGVsbG8_Pg==" }}"#), "hello?>");
        assert!(run(r#"{{ base64decode "a=bc" }}"#, &Value::Nil).is_err());
        assert!(run(r#"{{ base64decode "abc" }}"#, &Value::Nil).is_err());
    }
}
