//! The Grafana dashboards shipped in `docs/grafana/` only use PromQL that
//! Silt parses: every panel target and every query variable, with Grafana's
//! template variables replaced by what Grafana sends in their place.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn dashboards() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Grafana's built-in and dashboard variables, as Grafana interpolates them
/// before a query reaches the datasource. `fixed` holds the dashboard's
/// single-value variables (custom, interval) with their current values.
fn interpolate(expr: &str, fixed: &[(String, String)]) -> String {
    let mut s = expr.to_owned();
    let mut fixed = fixed.to_vec();
    // Longest names first, so `$a_b` is not taken for `$a`.
    fixed.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in &fixed {
        s = s.replace(&format!("${{{name}}}"), value);
        s = s.replace(&format!("${name}"), value);
    }
    for (var, value) in [
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$__range", "6h"),
        ("${__range_s}", "21600"),
        ("$__range_s", "21600"),
    ] {
        s = s.replace(var, value);
    }
    // Dashboard variables are multi-value regexes (`a|b`) or `.*` for All;
    // inside a label matcher any of them is just text.
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced {
            // `${var}` or `${var:format}`.
            for n in chars.by_ref() {
                if n == '}' {
                    break;
                }
            }
        }
        assert!(!name.is_empty(), "a lone `$` in {expr:?}");
        out.push_str(".*");
    }
    out
}

/// The current values of a dashboard's single-value variables.
fn fixed_variables(dash: &Value) -> Vec<(String, String)> {
    dash["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| matches!(v["type"].as_str(), Some("custom" | "interval" | "constant")))
        .filter(|v| v["multi"] != true)
        .filter_map(|v| {
            let name = v["name"].as_str()?;
            let value = v["current"]["value"].as_str()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Every (where, expression) in a dashboard: panel targets, nested rows,
/// and query variables (`label_values(...)` and `query_result(...)` are
/// Grafana's own wrappers; their inner PromQL is checked).
fn expressions(dash: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((format!("panel {title:?} target {}", t["refId"]), e.into()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dash["panels"], &mut out);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or("");
        let inner = if let Some(rest) = q.strip_prefix("label_values(") {
            // label_values(selector, label); label_values(label) has no PromQL.
            let body = rest.strip_suffix(')').unwrap_or(rest);
            match body.rfind(',') {
                Some(i) => body[..i].to_owned(),
                None => continue,
            }
        } else if let Some(rest) = q.strip_prefix("query_result(") {
            rest.strip_suffix(')').unwrap_or(rest).to_owned()
        } else {
            q.to_owned()
        };
        out.push((format!("variable {}", v["name"]), inner));
    }
    out
}

#[test]
fn every_dashboard_query_parses() {
    let files = dashboards();
    assert!(!files.is_empty(), "no dashboards in docs/grafana");
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dash: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        assert!(dash["title"].is_string(), "{}: no title", file.display());
        let fixed = fixed_variables(&dash);
        let exprs = expressions(&dash);
        assert!(!exprs.is_empty(), "{}: no queries", file.display());
        for (place, expr) in exprs {
            checked += 1;
            let q = interpolate(&expr, &fixed);
            if let Err(e) = query::promql::parse(&q) {
                failures.push(format!("{} {place}: {e}\n    {q}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{checked} queries in {} dashboards parse", files.len());
}

#[test]
fn interpolation_covers_grafana_variables() {
    assert_eq!(
        interpolate(
            r#"rate(x{job=~"$job",i=~"${instance:regex}"}[$__rate_interval]) + avg_over_time(y[$win])"#,
            &[("win".into(), "7d".into())]
        ),
        r#"rate(x{job=~".*",i=~".*"}[1m]) + avg_over_time(y[7d])"#
    );
}
