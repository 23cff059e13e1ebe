//! Go methods that Prometheus and Alertmanager templates call on their data,
//! mapped onto plain values.
//!
//! Alertmanager's data has methods: `.Alerts.Firing`, `.Alerts.Resolved`,
//! `.Labels.SortedPairs`, `.CommonLabels.Names`, `.Values`, `.Remove`.
//! Here a `List` answers `.Firing`/`.Resolved` by keeping the elements whose
//! `"Status"` key is `"firing"`/`"resolved"`; a `Map` answers `SortedPairs`,
//! `Names`, `Values` and `Remove` when it has no key of that name; a list of
//! pairs (maps with `Name` and `Value`) answers `Names` and `Values`.

use std::collections::BTreeMap;

use crate::timefmt::{GoTime, duration_string, parse_go_duration};
use crate::value::Value;

/// A method on a map, or None if `name` is not one.
pub(crate) fn map_method(
    m: &BTreeMap<String, Value>,
    name: &str,
    args: &[Value],
) -> Option<Result<Value, String>> {
    let no_args = |v: Value| {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    Some(match name {
        "SortedPairs" => no_args(Value::List(
            m.iter()
                .map(|(k, v)| {
                    let mut p = BTreeMap::new();
                    p.insert("Name".to_string(), Value::String(k.clone()));
                    p.insert("Value".to_string(), v.clone());
                    Value::Map(p)
                })
                .collect(),
        )),
        "Names" => no_args(Value::List(
            m.keys().map(|k| Value::String(k.clone())).collect(),
        )),
        "Values" => no_args(Value::List(m.values().cloned().collect())),
        "Remove" => {
            let mut out = m.clone();
            for a in args {
                match a {
                    Value::List(l) => {
                        for n in l {
                            if let Some(s) = n.as_str() {
                                out.remove(s);
                            }
                        }
                    }
                    Value::String(s) | Value::SafeHtml(s) => {
                        out.remove(s);
                    }
                    v => {
                        return Some(Err(format!(
                            "wrong type for value; expected []string; got {}",
                            v.type_name()
                        )));
                    }
                }
            }
            Ok(Value::Map(out))
        }
        _ => return None,
    })
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(m) => m.get(key),
        _ => None,
    }
}

/// A method on a non-map value, or None if `name` is not one.
pub(crate) fn value_method(v: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    if let Value::String(s) = v {
        return string_method(s, name, args);
    }
    let Value::List(l) = v else { return None };
    if !args.is_empty() {
        return Some(Err(format!(
            "wrong number of args for {name}: want 0 got {}",
            args.len()
        )));
    }
    let by_status = |status: &str| {
        Value::List(
            l.iter()
                .filter(|e| field(e, "Status").and_then(Value::as_str) == Some(status))
                .cloned()
                .collect(),
        )
    };
    let pick = |key: &str| {
        Value::List(
            l.iter()
                .map(|e| field(e, key).cloned().unwrap_or(Value::Nil))
                .collect(),
        )
    };
    Some(Ok(match name {
        "Firing" => by_status("firing"),
        "Resolved" => by_status("resolved"),
        "Names" => pick("Name"),
        "Values" => pick("Value"),
        _ => return None,
    }))
}

/// `time.Time` methods on Go time strings, `time.Duration` methods on Go
/// duration strings.
fn string_method(s: &str, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    if let Some(t) = GoTime::parse(s) {
        let r = match name {
            "Format" => want(1).and_then(|_| match args[0].as_str() {
                Some(layout) => Ok(Value::String(t.format(layout))),
                None => Err(format!(
                    "wrong type for value; expected string; got {}",
                    args[0].type_name()
                )),
            }),
            "String" => want(0).map(|_| Value::String(t.go_string())),
            "Unix" => want(0).map(|_| Value::Int(t.unix())),
            "UnixMilli" => want(0).map(|_| Value::Int(t.unix_nano().div_euclid(1_000_000))),
            "UnixMicro" => want(0).map(|_| Value::Int(t.unix_nano().div_euclid(1_000))),
            "UnixNano" => want(0).map(|_| Value::Int(t.unix_nano())),
            "UTC" => want(0).map(|_| Value::String(t.to_utc().go_string())),
            "Add" => want(1).and_then(|_| {
                let ns = match &args[0] {
                    Value::Int(i) => Some(*i),
                    v => v.as_str().and_then(parse_go_duration),
                };
                let ns = ns.ok_or_else(|| {
                    format!(
                        "wrong type for value; expected time.Duration; got {}",
                        args[0].type_name()
                    )
                })?;
                t.add_nanos(ns)
                    .map(|t| Value::String(t.go_string()))
                    .ok_or_else(|| "time out of range".to_string())
            }),
            _ => return None,
        };
        return Some(r);
    }
    let ns = parse_go_duration(s)?;
    let r = match name {
        "String" => want(0).map(|_| Value::String(duration_string(ns))),
        "Seconds" => want(0).map(|_| Value::Float(ns as f64 / 1e9)),
        "Minutes" => want(0).map(|_| Value::Float(ns as f64 / 60e9)),
        "Hours" => want(0).map(|_| Value::Float(ns as f64 / 3600e9)),
        "Milliseconds" => want(0).map(|_| Value::Int(ns / 1_000_000)),
        "Nanoseconds" => want(0).map(|_| Value::Int(ns)),
        _ => return None,
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::map_of;

    #[test]
    fn alerts_filter_by_status() {
        let alerts = Value::List(vec![
            map_of(vec![("Status", "firing".into()), ("n", 1i64.into())]),
            map_of(vec![("Status", "resolved".into()), ("n", 2i64.into())]),
            map_of(vec![("Status", "firing".into()), ("n", 3i64.into())]),
        ]);
        let Some(Ok(Value::List(f))) = value_method(&alerts, "Firing", &[]) else {
            panic!()
        };
        assert_eq!(f.len(), 2);
        let Some(Ok(Value::List(r))) = value_method(&alerts, "Resolved", &[]) else {
            panic!()
        };
        assert_eq!(r.len(), 1);
        assert!(value_method(&alerts, "Other", &[]).is_none());
        assert!(value_method(&Value::Int(1), "Firing", &[]).is_none());
    }

    #[test]
    fn kv_methods() {
        let Value::Map(m) = map_of(vec![
            ("b", "2".into()),
            ("a", "1".into()),
            ("c", "3".into()),
        ]) else {
            panic!()
        };
        let pairs = map_method(&m, "SortedPairs", &[]).unwrap().unwrap();
        assert_eq!(
            pairs.to_text(),
            "[map[Name:a Value:1] map[Name:b Value:2] map[Name:c Value:3]]"
        );
        assert_eq!(
            value_method(&pairs, "Values", &[])
                .unwrap()
                .unwrap()
                .to_text(),
            "[1 2 3]"
        );
        assert_eq!(
            map_method(&m, "Names", &[]).unwrap().unwrap().to_text(),
            "[a b c]"
        );
        let names = Value::List(vec!["a".into(), "c".into()]);
        assert_eq!(
            map_method(&m, "Remove", &[names])
                .unwrap()
                .unwrap()
                .to_text(),
            "map[b:2]"
        );
        assert!(map_method(&m, "Names", &[Value::Int(1)]).unwrap().is_err());
    }

    #[test]
    fn time_and_duration_methods() {
        let t = Value::from("2015-06-23 13:19:44.128 +0000 UTC");
        let call = |v: &Value, n: &str, a: &[Value]| value_method(v, n, a).unwrap().unwrap();
        assert_eq!(call(&t, "Format", &["2006".into()]), Value::from("2015"));
        assert_eq!(call(&t, "Unix", &[]), Value::Int(1435065584));
        assert_eq!(call(&t, "UnixMilli", &[]), Value::Int(1435065584128));
        assert_eq!(
            call(&t, "Add", &["1h0m0s".into()]),
            Value::from("2015-06-23 14:19:44.128 +0000 UTC")
        );
        let d = Value::from("1m30s");
        assert_eq!(call(&d, "Seconds", &[]), Value::Float(90.0));
        assert_eq!(call(&d, "String", &[]), Value::from("1m30s"));
        assert!(value_method(&Value::from("plain"), "Format", &[]).is_none());
        assert!(value_method(&t, "Format", &[]).unwrap().is_err());
    }
}
