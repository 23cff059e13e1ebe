#![no_main]
//! Fuzz target promql_parse: arbitrary UTF-8 through Silt's PromQL parser
//! (`query::promql::parse`). Invariants: no panic; when parsing succeeds,
//! the printed query (`Display`, Prometheus's `String()`) and the pretty
//! form (`format_query`) both parse back to the same tree, and printing is
//! idempotent.
use libfuzzer_sys::fuzz_target;
use query::promql::{parse, pretty, same_tree};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(input) else {
        return;
    };
    let printed = expr.to_string();
    match parse(&printed) {
        Ok(again) => {
            assert!(
                same_tree(&expr, &again),
                "{input:?} printed as {printed:?} re-parses differently:\n{expr:?}\n{again:?}"
            );
            assert_eq!(again.to_string(), printed, "printing is not idempotent");
        }
        Err(e) => panic!("{input:?} printed as {printed:?} does not re-parse: {e}"),
    }
    let formatted = pretty(&expr);
    match parse(&formatted) {
        Ok(again) => assert!(
            same_tree(&expr, &again),
            "{input:?} formatted as {formatted:?} re-parses differently"
        ),
        Err(e) => panic!("{input:?} formatted as {formatted:?} does not re-parse: {e}"),
    }
});
