#![no_main]
//! Fuzz target remote_write_v2: arbitrary bytes through the remote-write 2.0
//! decoder, three ways: as the request body (snappy), as a zstd body, and as
//! raw protobuf that we compress first. Checks that nothing panics, that
//! every accepted batch keeps the label invariants, and (for raw protobuf)
//! that the streaming decoder agrees with the prost-based reference.

use ingest::{Limits, Version, decode, proto, reference};
use libfuzzer_sys::fuzz_target;

const VERSION: Version = Version::V2;
const CONTENT_TYPE: Option<&str> = Some(proto::CONTENT_TYPE_V2);

fuzz_target!(|data: &[u8]| {
    // Small limits so the fuzzer reaches them.
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_decoded_bytes: 1 << 20,
        max_series_per_request: 64,
        max_labels_per_series: 8,
        max_label_name_bytes: 16,
        max_label_value_bytes: 32,
        ..Limits::default()
    };
    for encoding in ["snappy", "zstd"] {
        if let Ok(d) = decode(CONTENT_TYPE, Some(encoding), data, &limits) {
            reference::check_invariants(&d, &limits).unwrap();
        }
    }
    let body = proto::snappy_compress(data);
    let fast = decode(CONTENT_TYPE, Some("snappy"), &body, &limits);
    if let Ok(d) = &fast {
        reference::check_invariants(d, &limits).unwrap();
    }
    if let Ok(slow) = reference::decode_raw(VERSION, data, &limits) {
        let fast = fast.expect("the reference decoder accepted what the streaming decoder refused");
        assert!(reference::equivalent(&slow, &fast), "{slow:#?}\n!=\n{fast:#?}");
    }
});
