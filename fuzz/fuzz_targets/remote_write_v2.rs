#![no_main]
//! Fuzz target remote_write_v2 (being written).
use libfuzzer_sys::fuzz_target;
fuzz_target!(|_data: &[u8]| {});
