#![no_main]
//! Fuzz target deflate_roundtrip: the answer encoder of `query::api::deflate`
//! on arbitrary bytes.
//!
//! The input, cut into pieces where its first byte says, is encoded piece by
//! piece as the gzip layer does (each a non-final block and a sync flush),
//! closed by an empty final block, and inflated by zlib (flate2): the text
//! must come back byte for byte, every piece must end byte-aligned on the
//! sync flush's `00 00 ff ff`, and encoding is deterministic.

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use query::api::deflate::{Encoder, FINAL_BLOCK};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, text)) = data.split_first() else {
        return;
    };
    // Pieces of 256 to 65536 bytes (whole inputs, mostly): distances up
    // to the 32 KiB window are reached.
    let size = (usize::from(cut) + 1) * 256;
    let mut enc = Encoder::default();
    let mut stream = Vec::new();
    for piece in text.chunks(size) {
        let before = stream.len();
        enc.piece(piece, &mut stream);
        assert!(stream.ends_with(&[0, 0, 0xff, 0xff]), "piece not ended by a sync flush");
        let mut again = Vec::new();
        Encoder::default().piece(piece, &mut again);
        assert_eq!(again, stream[before..], "encoding not deterministic");
    }
    stream.extend_from_slice(&FINAL_BLOCK);
    let mut plain = Vec::new();
    flate2::read::DeflateDecoder::new(&stream[..])
        .read_to_end(&mut plain)
        .expect("a valid deflate stream");
    assert_eq!(plain, text);
});
