#![no_main]
//! Fuzz target gotmpl_parse: arbitrary UTF-8 through the Go template parser
//! and executor (`gotmpl`). Invariants: no panic; a template that parses
//! prints back (`Template::source`) to text that parses to the same print;
//! execution (text and HTML mode, bounded by limits) never panics and is
//! deterministic.
use gotmpl::{Limits, Template, Value, alertmanager_funcs, prometheus_funcs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut funcs = prometheus_funcs();
    funcs.extend(alertmanager_funcs());
    let limits = Limits { max_depth: 200, max_output: 1 << 20, max_steps: 100_000 };
    let mut t = Template::new(funcs.clone()).limits(limits);
    if t.parse("f", input).is_err() {
        return;
    }
    let printed = t.source("f").unwrap_or_default();
    // Text that ends in `{` just before an action cannot print back; Go has the same limit.
    if !printed.contains("{{{") {
        let mut again = Template::new(funcs).limits(limits);
        if let Err(e) = again.parse("f", &printed) {
            panic!("{input:?} printed as {printed:?} does not re-parse: {e}");
        }
        assert_eq!(again.source("f").unwrap_or_default(), printed, "printing is not idempotent");
    }
    let map = |pairs: Vec<(&str, Value)>| Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let data = map(vec![
        ("Labels", map(vec![("instance", "h:9100".into()), ("job", "node".into())])),
        (
            "Alerts",
            Value::List(vec![
                map(vec![("Status", "firing".into()), ("Labels", map(vec![("a", "b".into())]))]),
                map(vec![("Status", "resolved".into())]),
            ]),
        ),
        ("Value", Value::Float(1.5)),
        ("L", Value::List(vec![Value::Int(1), "x".into(), Value::Nil])),
    ]);
    for tmpl in [t.clone(), t.html()] {
        for name in tmpl.names() {
            let first = tmpl.execute(&name, &data).map_err(|e| e.to_string());
            let second = tmpl.execute(&name, &data).map_err(|e| e.to_string());
            // `now` and `since` read the clock; everything else is deterministic.
            if !input.contains("now") && !input.contains("since") {
                assert_eq!(first, second, "execution is not deterministic");
            }
        }
    }
});
