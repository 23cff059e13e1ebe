#![no_main]
//! Fuzz target selector_parse: arbitrary UTF-8 through Silt's series
//! selector parser. Invariants: no panic; when parsing succeeds, printing
//! the selector (both as `name{...}` and with every matcher inside braces)
//! and parsing again gives the same matchers, in the same order.
use libfuzzer_sys::fuzz_target;
use query::promql::{format_matchers, parse_selector, parse_vector_selector};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(matchers) = parse_selector(input) {
        let printed = format_matchers(&matchers);
        match parse_selector(&printed) {
            Ok(again) => assert_eq!(again, matchers, "{input:?} printed as {printed:?}"),
            Err(e) => panic!("{input:?} printed as {printed:?} does not re-parse: {e}"),
        }
    }
    if let Ok(vs) = parse_vector_selector(input) {
        let printed = vs.to_string();
        match parse_vector_selector(&printed) {
            Ok(again) => {
                assert_eq!(again.name, vs.name, "{input:?} printed as {printed:?}");
                assert_eq!(again.matchers, vs.matchers, "{input:?} printed as {printed:?}");
            }
            Err(e) => panic!("{input:?} printed as {printed:?} does not re-parse: {e}"),
        }
    }
});
