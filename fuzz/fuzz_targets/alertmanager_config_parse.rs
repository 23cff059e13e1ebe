#![no_main]
//! Fuzz target alertmanager_config_parse: arbitrary text through the
//! built-in Alertmanager's configuration parser and its matcher parser.
//! Invariant: no panic, whatever the input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = alertmanager::Config::parse(text, "fuzz.yml");
    let _ = alertmanager::matchers::parse_matchers(text);
});
