//! Bounded decompression of request bodies. The decoded size is checked
//! against [`Limits::max_decoded_bytes`] before the output is allocated:
//! snappy declares it in its header, zstd usually in its frame header (and
//! is otherwise read through a hard cap).

use std::io::Read;

use crate::Limits;
use crate::error::IngestError;
use crate::negotiate::Encoding;

/// The stream identifier that opens a snappy *framed* body ("sNaPpY").
const SNAPPY_FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// The decoded size a body declares, if its format declares one; used to
/// reserve the in-flight budget before decoding. Errors are left to
/// [`decompress`].
pub(crate) fn declared_len(encoding: Encoding, body: &[u8]) -> Option<u64> {
    match encoding {
        Encoding::Snappy => snap::raw::decompress_len(body).ok().map(|n| n as u64),
        Encoding::Zstd => zstd::zstd_safe::get_frame_content_size(body).ok().flatten(),
    }
}

/// Decompresses `body` into `out` (replacing its contents, reusing its
/// capacity), refusing (before allocating) anything that decodes to more
/// than `limits.max_decoded_bytes`. An empty body is an empty message.
pub(crate) fn decompress_into(
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), IngestError> {
    out.clear();
    if body.is_empty() {
        return Ok(());
    }
    match encoding {
        Encoding::Snappy => snappy(body, limits.max_decoded_bytes, out),
        Encoding::Zstd => zstd(body, limits.max_decoded_bytes, out),
    }
}

fn snappy(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), IngestError> {
    // A block that starts like a framed stream would declare 895 bytes and
    // then a copy tag: not something a protobuf compresses to.
    if body.starts_with(SNAPPY_FRAMED_MAGIC) {
        return Err(IngestError::SnappyFramed);
    }
    let len = snap::raw::decompress_len(body).map_err(IngestError::Snappy)?;
    if len > limit {
        return Err(IngestError::DecodedTooLarge {
            declared: len as u64,
            limit,
        });
    }
    out.resize(len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(body, out)
        .map_err(IngestError::Snappy)?;
    out.truncate(n);
    Ok(())
}

fn zstd(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), IngestError> {
    let declared = zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(IngestError::DecodedTooLarge { declared: n, limit });
    }
    let mut decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(IngestError::Zstd)?;
    // Refuse windows much larger than the output may be, so a hostile frame
    // header cannot make the decoder allocate far beyond the limit; 8 MiB
    // windows (what streaming encoders use at their usual levels) always pass.
    let window_log = (usize::BITS - limit.max(1).saturating_sub(1).leading_zeros()).clamp(23, 27);
    decoder
        .window_log_max(window_log)
        .map_err(IngestError::Zstd)?;
    // Multi-frame bodies may not declare their total; start from the first
    // frame's size (or a guess) and let the hard cap below bound the rest.
    let guess = declared.unwrap_or(body.len() as u64 * 4).min(limit as u64) as usize;
    out.reserve(guess);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(out)
        .map_err(IngestError::Zstd)?;
    if out.len() > limit {
        return Err(IngestError::DecodedTooLarge {
            declared: out.len() as u64,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress(
        encoding: Encoding,
        body: &[u8],
        limits: &Limits,
    ) -> Result<Vec<u8>, IngestError> {
        let mut out = Vec::new();
        decompress_into(encoding, body, limits, &mut out)?;
        Ok(out)
    }

    fn limits(max_decoded_bytes: usize) -> Limits {
        Limits {
            max_decoded_bytes,
            ..Limits::default()
        }
    }

    #[test]
    fn snappy_round_trip() {
        let data = b"hello hello hello hello remote write".repeat(100);
        let body = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Encoding::Snappy, &body, &limits(1 << 20)).unwrap(),
            data
        );
        assert_eq!(
            declared_len(Encoding::Snappy, &body),
            Some(data.len() as u64)
        );
    }

    #[test]
    fn snappy_declared_length_over_limit_is_refused_before_allocating() {
        // A 5-byte header declaring 2^32-1 bytes and no data: decoding would
        // need 4 GiB; the check must fire on the header alone.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let e = decompress(Encoding::Snappy, &body, &limits(64 << 20)).unwrap_err();
        assert!(
            matches!(e, IngestError::DecodedTooLarge { declared: 4_294_967_295, limit } if limit == 64 << 20),
            "{e:?}"
        );
        assert_eq!(e.status(), 400);
        // Just over a small limit.
        let data = vec![7u8; 1001];
        let body = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert!(matches!(
            decompress(Encoding::Snappy, &body, &limits(1000)),
            Err(IngestError::DecodedTooLarge {
                declared: 1001,
                limit: 1000
            })
        ));
        assert!(decompress(Encoding::Snappy, &body, &limits(1001)).is_ok());
    }

    #[test]
    fn snappy_corruption_and_framed_bodies_are_400() {
        let e = decompress(Encoding::Snappy, &[0x05, 0x00, b'a'], &limits(100)).unwrap_err();
        assert!(matches!(e, IngestError::Snappy(_)), "{e:?}");
        // Copy with offset 0 is invalid.
        let e = decompress(Encoding::Snappy, &[0x04, 0x01, 0x00], &limits(100)).unwrap_err();
        assert_eq!(e.status(), 400);
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(b"some protobuf").unwrap();
        }
        let e = decompress(Encoding::Snappy, &framed, &limits(100)).unwrap_err();
        assert!(matches!(e, IngestError::SnappyFramed), "{e:?}");
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn zstd_round_trip_and_limits() {
        let data = b"zstd body from vmagent ".repeat(1000);
        let body = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(
            decompress(Encoding::Zstd, &body, &limits(1 << 20)).unwrap(),
            data
        );
        let e = decompress(Encoding::Zstd, &body, &limits(1000)).unwrap_err();
        assert!(
            matches!(e, IngestError::DecodedTooLarge { limit: 1000, .. }),
            "{e:?}"
        );
        // A streamed frame without a declared size is capped while reading.
        let mut streamed = Vec::new();
        {
            let mut enc = zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
            std::io::Write::write_all(&mut enc, &data).unwrap();
            enc.finish().unwrap();
        }
        let e = decompress(Encoding::Zstd, &streamed, &limits(1000)).unwrap_err();
        assert!(
            matches!(e, IngestError::DecodedTooLarge { limit: 1000, .. }),
            "{e:?}"
        );
        assert_eq!(
            decompress(Encoding::Zstd, &streamed, &limits(1 << 20)).unwrap(),
            data
        );
        let e = decompress(Encoding::Zstd, b"definitely not zstd", &limits(1000)).unwrap_err();
        assert!(matches!(e, IngestError::Zstd(_)), "{e:?}");
    }

    #[test]
    fn empty_body_is_an_empty_message() {
        assert!(
            decompress(Encoding::Snappy, &[], &limits(0))
                .unwrap()
                .is_empty()
        );
        assert!(
            decompress(Encoding::Zstd, &[], &limits(0))
                .unwrap()
                .is_empty()
        );
    }
}
