#![no_main]
//! Fuzz target series_notation_parse: arbitrary text through the promqltest
//! series notation (`metric{a="b"} 0+10x100 _ stale`, used by `silt test
//! rules` and the conformance runner). Invariants: no panic; the expansion
//! stays within its documented cap.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(desc) = query::promql::series::parse_series_desc(text) {
        assert!(
            desc.values.len() <= 10_000_000,
            "expansion beyond the cap: {} values",
            desc.values.len()
        );
    }
    let _ = query::promql::series::parse_metric(text);
});
