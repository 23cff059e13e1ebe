//! Templates in alerting rules' labels and annotations: Go `text/template`
//! (crate [`gotmpl`]) with Prometheus's functions, the variables
//! `$labels`, `$externalLabels`, `$externalURL`, `$value`, and the
//! functions that need the rule manager: `query` (an instant query at the
//! evaluation time), `now`, `externalURL`, `pathPrefix`, `graphLink`,
//! `tableLink`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{FuncMap, MissingKey, Template, Value};
use query::eval::{QueryOptions, Value as QueryValue};

/// What Prometheus prepends to every rule template.
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The template's name: `__alert_<rule name>`, as in Prometheus's errors.
fn template_name(rule: &str) -> String {
    format!("__alert_{rule}")
}

/// Parses a label or annotation template of alerting rule `rule` (the
/// check `promtool check rules` does). The error is Go's message.
pub fn check(rule: &str, text: &str) -> Result<(), String> {
    let mut t = Template::new(base_funcs(None)).missing_key(MissingKey::Zero);
    let name = template_name(rule);
    t.parse(&name, &format!("{DEFS}{text}"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What a template can query: the database, the evaluation time and the
/// query settings.
#[derive(Clone)]
pub struct QueryContext {
    pub db: Arc<engine::Db>,
    pub time_ms: i64,
    pub options: QueryOptions,
}

/// The label and annotation templates of one alerting rule, parsed once
/// per evaluation and expanded for every alert instance.
pub struct RuleTemplates {
    name: String,
    templates: Vec<Result<Template, String>>,
    external_labels: Value,
    external_url: String,
}

impl RuleTemplates {
    /// Parses `texts` for alert `rule`, with the external labels and URL
    /// and (for `query`) a query context.
    pub fn new(
        rule: &str,
        texts: &[&str],
        external_labels: &BTreeMap<String, String>,
        external_url: &str,
        ctx: Option<QueryContext>,
    ) -> RuleTemplates {
        let mut funcs = base_funcs(ctx);
        let url = external_url.to_string();
        let prefix = url_path(external_url).to_string();
        funcs.insert(
            "externalURL",
            Arc::new(move |_: &[Value]| Ok(Value::String(url.clone()))),
        );
        funcs.insert(
            "pathPrefix",
            Arc::new(move |_: &[Value]| Ok(Value::String(prefix.clone()))),
        );
        let name = template_name(rule);
        let templates = texts
            .iter()
            .map(|text| {
                let mut t = Template::new(funcs.clone()).missing_key(MissingKey::Zero);
                t.parse(&name, &format!("{DEFS}{text}"))
                    .map(|_| t)
                    .map_err(|e| format!("error parsing template {name}: {e}"))
            })
            .collect();
        RuleTemplates {
            name,
            templates,
            external_labels: Value::Map(
                external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
            external_url: external_url.to_string(),
        }
    }

    /// The data of one alert instance: `.Labels`, `.ExternalLabels`,
    /// `.ExternalURL`, `.Value`.
    pub fn data(&self, labels: &engine::Labels, value: f64) -> Value {
        let mut data = BTreeMap::new();
        data.insert(
            "Labels".to_string(),
            Value::Map(
                labels
                    .iter()
                    .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                    .collect(),
            ),
        );
        data.insert("ExternalLabels".to_string(), self.external_labels.clone());
        data.insert(
            "ExternalURL".to_string(),
            Value::String(self.external_url.clone()),
        );
        data.insert("Value".to_string(), Value::Float(value));
        Value::Map(data)
    }

    /// Expands template `i` (in the order given to [`RuleTemplates::new`])
    /// over `data`. Errors are worded as Prometheus's expander words them.
    pub fn expand(&self, i: usize, data: &Value) -> Result<String, String> {
        let t = match self.templates.get(i) {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(e.clone()),
            None => return Ok(String::new()),
        };
        t.execute(&self.name, data)
            .map_err(|e| format!("error executing template {}: {e}", self.name))
    }

    /// [`RuleTemplates::expand`], with an error turned into the text
    /// Prometheus puts in its place.
    pub fn expand_or_error(&self, i: usize, data: &Value) -> String {
        match self.expand(i, data) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(template = %self.name, error = %e, "expanding alert template failed");
                format!("<error expanding template: {e}>")
            }
        }
    }
}

/// Prometheus's template functions plus the link helpers and, with a
/// context, `query` and `now`.
fn base_funcs(ctx: Option<QueryContext>) -> FuncMap {
    let mut funcs = gotmpl::prometheus_funcs();
    funcs.insert(
        "graphLink",
        Arc::new(|args: &[Value]| Ok(Value::String(graph_link(&one_string(args)?)))),
    );
    funcs.insert(
        "tableLink",
        Arc::new(|args: &[Value]| Ok(Value::String(table_link(&one_string(args)?)))),
    );
    let now = ctx.as_ref().map_or(0.0, |c| c.time_ms as f64 / 1000.0);
    funcs.insert("now", Arc::new(move |_: &[Value]| Ok(Value::Float(now))));
    funcs.insert(
        "query",
        Arc::new(move |args: &[Value]| {
            let q = one_string(args)?;
            match &ctx {
                Some(c) => run_query(c, &q),
                None => Err("query is not available here".to_string()),
            }
        }),
    );
    funcs
}

fn one_string(args: &[Value]) -> Result<String, String> {
    match args {
        [Value::String(s)] | [Value::SafeHtml(s)] => Ok(s.clone()),
        [other] => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        _ => Err(format!("wrong number of args: got {} want 1", args.len())),
    }
}

/// `query "<promql>"`: an instant query at the evaluation time, as a list
/// of `{Labels, Value}` maps (Prometheus's `queryResult`).
fn run_query(c: &QueryContext, q: &str) -> Result<Value, String> {
    let expr = query::promql::parse(q).map_err(|e| e.to_string())?;
    let out = query::eval::instant_query(&c.db, &expr, c.time_ms, &c.options)
        .map_err(|e| e.to_string())?;
    let samples = match out.value {
        QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
        QueryValue::Scalar(_, v) => vec![(engine::Labels::default(), v)],
        other => {
            return Err(format!(
                "rule result is not a vector or scalar: {}",
                other.type_name()
            ));
        }
    };
    Ok(Value::List(
        samples
            .into_iter()
            .map(|(labels, v)| {
                let mut m = BTreeMap::new();
                m.insert(
                    "Labels".to_string(),
                    Value::Map(
                        labels
                            .iter()
                            .map(|l| (l.name.to_string(), Value::String(l.value.to_string())))
                            .collect(),
                    ),
                );
                m.insert("Value".to_string(), Value::Float(v));
                Value::Map(m)
            })
            .collect(),
    ))
}

/// The path of a URL (`/prefix` of `http://host:9090/prefix?x`).
fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => return "",
    };
    let rest = match rest.find('/') {
        Some(i) => &rest[i..],
        None => return "",
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `strutil.GraphLinkForExpression`.
pub fn graph_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=0", query_escape(expr))
}

/// `strutil.TableLinkForExpression`.
pub fn table_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(texts: &[&str], labels: &[(&str, &str)], value: f64) -> Vec<String> {
        let mut ext = BTreeMap::new();
        ext.insert("cluster".to_string(), "eu".to_string());
        let t = RuleTemplates::new(
            "HighLoad",
            texts,
            &ext,
            "http://prom.example:9090/prefix",
            None,
        );
        let data = t.data(&engine::Labels::new(labels), value);
        (0..texts.len())
            .map(|i| t.expand_or_error(i, &data))
            .collect()
    }

    #[test]
    fn variables_and_functions() {
        let out = expand(
            &[
                "{{ $labels.instance }} on {{ $externalLabels.cluster }} is {{ $value | humanize }}",
                "{{ printf \"%.1f\" $value }}",
                "{{ externalURL }}|{{ pathPrefix }}|{{ $externalURL }}",
                "{{ graphLink \"up == 0\" }} {{ tableLink \"a+b\" }}",
                "[{{ $labels.missing }}]",
            ],
            &[("instance", "a:9100"), ("job", "node")],
            1234567.0,
        );
        assert_eq!(
            out,
            [
                "a:9100 on eu is 1.235M",
                "1234567.0",
                "http://prom.example:9090/prefix|/prefix|http://prom.example:9090/prefix",
                "/graph?g0.expr=up+%3D%3D+0&g0.tab=0 /graph?g0.expr=a%2Bb&g0.tab=1",
                "[]",
            ]
        );
    }

    #[test]
    fn errors_become_text() {
        let out = expand(&["{{ nosuchfunc }}", "{{ query \"up\" }}"], &[], 1.0);
        assert!(
            out[0].starts_with(
                "<error expanding template: error parsing template __alert_HighLoad: "
            ),
            "{}",
            out[0]
        );
        assert!(out[1].contains("query is not available here"), "{}", out[1]);
        assert!(check("A", "{{ $labels.x ").is_err());
        assert!(check("A", "{{ $labels.x }} {{ humanize 1 }}").is_ok());
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(query_escape("a b/c~d*é"), "a+b%2Fc~d%2A%C3%A9");
        assert_eq!(url_path("http://h:1"), "");
        assert_eq!(url_path("https://h/x/y?q"), "/x/y");
    }
}
