#![no_main]
//! Fuzz target rule_file_parse: arbitrary text through the Prometheus rule
//! file parser and checks (`alerting::rules::file::parse`: YAML with
//! positions, PromQL, templates). Invariants: no panic; every error names
//! the file.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = alerting::rules::file::parse("fuzz.yml", text) {
        for e in errors {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.yml"),
                "error without the file name: {msg}"
            );
        }
    }
});
