#![no_main]
//! Fuzz target report_config_parse: arbitrary text through the report
//! definitions parser (`reports::config::parse`: YAML, durations, label
//! filters, cron schedules) and, line by line, the cron parser alone.
//! Invariants: no panic; a parsed schedule's next run lies after the
//! instant asked about.
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = reports::config::parse(text, "fuzz.yml");
    let after = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap();
    for line in text.lines().take(8) {
        for tz in [chrono_tz::UTC, chrono_tz::Europe::Paris] {
            if let Ok(schedule) = reports::Schedule::parse(line, tz) {
                if let Some(next) = schedule.next_after(after) {
                    assert!(next > after, "{line:?}: next run {next} not after {after}");
                }
            }
        }
    }
});
