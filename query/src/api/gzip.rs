//! gzip for answers that are built whole in memory (query results, series
//! and label lists): one gzip member whose deflate stream is compressed in
//! pieces on several cores, while the answer is still being written.
//!
//! Grafana's server-side proxy, promtool and browsers all send
//! `Accept-Encoding: gzip`, so for a range query over a dashboard the
//! deflate of its answer is part of every request: a 24 h answer of 24
//! series is 1.3 MB of JSON, about 6.5 ms of deflate on one core of the
//! benchmark machine, as long as the query's evaluation. The body is
//! written in pieces of 8 to 16 KiB ([`piece_len`], [`PieceWriter`]), each
//! deflated by its own compressor and ended with a sync flush (an empty
//! stored block, which leaves the stream byte-aligned and not final), so
//! the pieces concatenate into one valid deflate stream that any gzip
//! reader inflates as usual (the way `pigz` works); an empty final block
//! ends it, and the pieces' CRC-32s combine into the trailer's. A helper
//! thread deflates the pieces already written while the writer goes on:
//! after the server sat idle, the helper's core can take a fraction of a
//! millisecond to wake, which the writing hides.
//!
//! Each piece starts with an empty window, which costs little: the
//! repeats in query answers are near (between neighbouring points), and
//! codes fitted to each piece gain back about as much. The pieces are
//! deflated by [`super::deflate`], an encoder for this kind of text
//! (greedy, one probe, one dynamic-Huffman block per piece): about zlib's
//! level-1 ratio at three quarters of `miniz_oxide`'s level-1 time.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;

use super::deflate::Encoder;

/// The longest piece: bytes of the body per deflated piece of a long
/// answer (at least: pieces end where the writer allows). A 16 KiB piece
/// and the match finder's table stay in the core's first-level cache: a
/// 1.3 MB range answer deflated 13 % faster than in 64 KiB pieces (4.5
/// against 5.2 ms on one core) and into 0.6 % fewer bytes, as each
/// piece's codes fit its own text.
pub const PIECE: usize = 16 * 1024;

/// The shortest piece, for answers of a few pieces.
pub const MIN_PIECE: usize = 8 * 1024;

/// Pieces an answer is cut into, while they are at least [`MIN_PIECE`]
/// and at most [`PIECE`] long: the threads' shares of few pieces are
/// uneven, and the last piece's deflate follows the end of the writing.
/// A 135 kB answer (a 6 h `topk`) in 8 KiB pieces took 225 µs on two
/// cores, in 16 KiB pieces 280 µs, in 64 KiB pieces 390 µs.
const PIECES: usize = 16;

/// The piece length for a body of about `len` bytes.
pub fn piece_len(len: usize) -> usize {
    (len / PIECES).clamp(MIN_PIECE, PIECE)
}

/// Answers expected to be this long or longer are worth writing through
/// [`gzip_written`], where the deflate of the first pieces overlaps the
/// writing of the rest; shorter ones are written whole and gzipped (from
/// [`COMPRESS_FROM`] bytes) by [`compress_whole`].
pub const PIPELINE_FROM: usize = 4 * MIN_PIECE;

/// Bodies shorter than this are deflated on the caller's thread alone.
/// Handing pieces to a helper costs its wake-up and the pieces' trip
/// between cores: a 27 kB answer (2 series × 361 points) took 61 µs on
/// one thread and 83 µs on two, a 41 kB one 120 against 74 µs (criterion,
/// back to back; after idle the wake-up only grows).
pub const HELPERS_FROM: usize = 32 * 1024;

/// The gzip header: magic, deflate, no flags, no modification time, no
/// extra flags, "unknown" OS (as Go's `compress/gzip` writes it).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

thread_local! {
    /// An encoder per thread, kept with its tables and buffers.
    static ENCODER: RefCell<Encoder> = RefCell::new(Encoder::default());
}

/// Bodies below this many bytes go out uncompressed: about three packets,
/// under 35 µs on a 1 Gbit/s link (Grafana's server-side proxy is usually
/// on the same network), against deflate's set-up per answer.
pub const COMPRESS_FROM: usize = 4096;

/// Middleware: answers whose body is complete in memory (an exact size of
/// [`COMPRESS_FROM`] bytes or more), of a text or JSON type and not yet
/// encoded, go out as [`gzip`] when the request accepts it. Streamed
/// bodies (the export endpoint) pass untouched, to be compressed as they
/// stream by an outer layer.
pub async fn compress_whole(req: Request, next: Next) -> Response {
    let wanted = accepted(req.headers());
    let resp = next.run(req).await;
    if !wanted || !compressible(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a response body to compress it");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the response body",
            )
                .into_response();
        }
    };
    let gz = gzip(&bytes, crate::eval::cores());
    parts.headers.remove(CONTENT_LENGTH);
    mark_gzipped(&mut parts.headers);
    Response::from_parts(parts, Body::from(gz))
}

/// The headers of an answer whose body is a [`gzip`] member.
pub fn mark_gzipped(headers: &mut HeaderMap) {
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.append(VARY, HeaderValue::from_static("accept-encoding"));
}

/// A complete body worth compressing: big enough, of a text type, not
/// already encoded.
fn compressible(resp: &Response) -> bool {
    let textual = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/json")
                || t.starts_with("text/")
                || t.starts_with("application/openmetrics-text")
        });
    textual
        && !resp.headers().contains_key(CONTENT_ENCODING)
        && resp
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n >= COMPRESS_FROM as u64)
}

/// `body` as one gzip member, deflated on up to `threads` threads.
pub fn gzip(body: &[u8], threads: usize) -> Vec<u8> {
    deflate_published(threads, body.len(), |shared| {
        for piece in body.chunks(piece_len(body.len())) {
            shared.publish(piece.to_vec());
        }
    })
}

/// A gzip member of the text `write` puts into its [`PieceWriter`],
/// deflated on up to `threads` threads as it is written. `len_hint`: about
/// how long the text will be (below [`HELPERS_FROM`], no helper is asked).
pub fn gzip_written(
    threads: usize,
    len_hint: usize,
    write: impl FnOnce(&mut PieceWriter),
) -> Vec<u8> {
    deflate_published(threads, len_hint, |shared| {
        write_pieces(shared, len_hint, write)
    })
}

/// Publishes the text `write` puts into a [`PieceWriter`] to `shared`, in
/// pieces of [`piece_len`] of `len_hint`, the rest as the last piece.
fn write_pieces(shared: &Shared, len_hint: usize, write: impl FnOnce(&mut PieceWriter)) {
    let piece = piece_len(len_hint);
    let mut w = PieceWriter {
        text: String::with_capacity(len_hint.min(piece + piece / 4)),
        piece,
        shared,
    };
    write(&mut w);
    if !w.text.is_empty() {
        w.publish();
    }
}

/// The lengths of the pieces `write` cuts a text of about `len_hint`
/// bytes into (none deflated).
#[cfg(test)]
pub(crate) fn written_pieces(len_hint: usize, write: impl FnOnce(&mut PieceWriter)) -> Vec<usize> {
    let shared = Shared::default();
    write_pieces(&shared, len_hint, write);
    let pieces = shared
        .pieces
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    pieces.iter().map(|p| p.len()).collect()
}

/// Text written in pieces: [`PieceWriter::buf`] takes the text,
/// [`PieceWriter::boundary`] marks a place where a piece may end.
pub struct PieceWriter<'a> {
    text: String,
    /// Where a piece may end: once it is this long ([`piece_len`]).
    piece: usize,
    shared: &'a Shared,
}

impl PieceWriter<'_> {
    /// The text of the current piece, to append to.
    pub fn buf(&mut self) -> &mut String {
        &mut self.text
    }

    /// A place where a piece may end: the text since the last piece goes to
    /// the deflaters once it is a piece long ([`piece_len`] of the
    /// expected length) or longer.
    pub fn boundary(&mut self) {
        if self.text.len() >= self.piece {
            self.publish();
        }
    }

    fn publish(&mut self) {
        let next = String::with_capacity(self.piece + self.piece / 4);
        let piece = std::mem::replace(&mut self.text, next);
        self.shared.publish(piece.into_bytes());
    }
}

/// A piece's deflate bytes and the CRC-32 of its text.
type Deflated = (Vec<u8>, u32);

/// Pieces written so far and what became of them.
#[derive(Default)]
struct Shared {
    /// Written pieces, by index; published counts them.
    pieces: Mutex<Vec<Arc<Vec<u8>>>>,
    published: AtomicUsize,
    /// Pieces claimed by a deflater.
    claimed: AtomicUsize,
    /// Set once the writer published its last piece.
    done: AtomicBool,
    /// Deflated pieces with their CRC-32s, by index.
    deflated: Mutex<Vec<Option<Deflated>>>,
}

impl Shared {
    fn publish(&self, piece: Vec<u8>) {
        let mut pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        pieces.push(Arc::new(piece));
        self.published.store(pieces.len(), Ordering::Release);
    }

    /// Deflates pieces as they are published; `wait` for the writer to
    /// publish more (a helper), or return when none is ready (the writer).
    fn deflate_pieces(&self, wait: bool) {
        loop {
            let i = self.claimed.load(Ordering::Acquire);
            if i < self.published.load(Ordering::Acquire) {
                if self
                    .claimed
                    .compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue;
                }
                let piece = self.pieces.lock().unwrap_or_else(|e| e.into_inner())[i].clone();
                let d = (deflate_piece(&piece), crc32fast::hash(&piece));
                let mut out = self.deflated.lock().unwrap_or_else(|e| e.into_inner());
                if out.len() <= i {
                    out.resize_with(i + 1, || None);
                }
                out[i] = Some(d);
            } else if !wait || self.done.load(Ordering::Acquire) {
                // Re-check: a piece published just before `done` is claimed above.
                if self.claimed.load(Ordering::Acquire) >= self.published.load(Ordering::Acquire) {
                    return;
                }
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// The gzip member of the pieces `produce` publishes, deflated on up to
/// `threads` threads as they are published (a helper is asked only when
/// `len_hint` is [`HELPERS_FROM`] or more, and two pieces or more).
fn deflate_published(threads: usize, len_hint: usize, produce: impl FnOnce(&Shared)) -> Vec<u8> {
    let shared = Shared::default();
    let run = || {
        produce(&shared);
        shared.done.store(true, Ordering::Release);
        shared.deflate_pieces(false);
    };
    if threads > 1 && len_hint >= HELPERS_FROM.max(2 * piece_len(len_hint)) {
        let helper = || shared.deflate_pieces(true);
        crate::eval::with_helpers(threads - 1, &helper, run);
    } else {
        run();
    }
    let pieces = shared
        .pieces
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut deflated = shared
        .deflated
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    deflated.resize_with(pieces.len(), || None);
    let mut out = Vec::with_capacity(
        HEADER.len()
            + deflated
                .iter()
                .flatten()
                .map(|(d, _)| d.len())
                .sum::<usize>()
            + 16,
    );
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0usize;
    for (piece, d) in pieces.iter().zip(deflated) {
        // A helper that panicked left its piece undone.
        let (d, piece_crc) = d.unwrap_or_else(|| (deflate_piece(piece), crc32fast::hash(piece)));
        out.extend_from_slice(&d);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(
            piece_crc,
            piece.len() as u64,
        ));
        len += piece.len();
    }
    out.extend_from_slice(&super::deflate::FINAL_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// One piece as raw deflate, ended by a sync flush (byte-aligned, not final).
fn deflate_piece(piece: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(piece.len() / 2 + 256);
    ENCODER.with(|e| e.borrow_mut().piece(piece, &mut out));
    out
}

/// Whether a request with these headers takes a gzip answer.
pub fn accepted(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip)
}

/// Whether a request's `Accept-Encoding` lets the answer be gzip: `gzip`
/// (or `x-gzip`) listed with a non-zero quality, or `*` with one and gzip
/// not refused by name.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut star = false;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next_back()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return q > 0.0;
        }
        if coding == "*" {
            star = q > 0.0;
        }
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // `GzDecoder` reads one member and checks its CRC and length.
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    /// JSON-like text with repeats at every distance a window sees.
    /// Points as a range query's answer has them (a step of 60 s,
    /// milliseconds in the time), with small integer values (`count`,
    /// `up`) or, `floats`, a rate's digits.
    fn points(len: usize, floats: bool) -> Vec<u8> {
        let mut s = String::new();
        let mut i = 0u64;
        while s.len() < len {
            let v = if floats {
                format!("{}", (i as f64 * 0.37).sin() * 1e4 + 2e4)
            } else {
                format!("{}", i * i % 9973)
            };
            s.push_str(&format!(
                "[{}.{:03},\"{v}\"],",
                1796210826 + i * 60,
                i % 1000
            ));
            i += 1;
        }
        s.truncate(len);
        s.into_bytes()
    }

    fn answer(len: usize) -> Vec<u8> {
        points(len, false)
    }

    #[test]
    fn pieces_inflate_to_the_body_as_one_member() {
        for len in [
            0,
            1,
            100,
            PIECE - 1,
            PIECE,
            PIECE + 1,
            3 * PIECE + 17,
            140_000,
            1_300_000,
        ] {
            let body = answer(len);
            for threads in [1, 2, 4] {
                let gz = gzip(&body, threads);
                assert_eq!(&gz[..10], &HEADER);
                assert_eq!(gunzip(&gz), body, "len {len}, threads {threads}");
                // The same bytes however many threads ran it.
                assert_eq!(gz, gzip(&body, 1), "len {len}, threads {threads}");
            }
        }
    }

    #[test]
    fn pieces_keep_the_ratio_of_one_stream() {
        // Level 1 in pieces against level 6 in one stream: integers repeat
        // more than float digits, which compress little either way.
        for (floats, ratio, most) in [(false, 2.8, 1.45), (true, 2.3, 1.1)] {
            let body = points(1_300_000, floats);
            let ours = gzip(&body, 2).len();
            let mut one = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            std::io::Write::write_all(&mut one, &body).unwrap();
            let one = one.finish().unwrap().len();
            assert!(
                (ours as f64) < body.len() as f64 / ratio,
                "{ours} of {}",
                body.len()
            );
            assert!((ours as f64) < one as f64 * most, "{ours} against {one}");
        }
    }

    #[test]
    fn answers_of_a_few_pieces_are_cut_shorter() {
        assert_eq!(piece_len(0), MIN_PIECE);
        assert_eq!(piece_len(40_000), MIN_PIECE);
        // A 6 h `topk` answer: sixteen pieces, a share for every thread.
        assert_eq!(piece_len(136_000), 136_000 / PIECES);
        assert_eq!(piece_len(1_300_000), PIECE);
        // The writer ends pieces at the first boundary past the length.
        let body = answer(136_000);
        let piece = piece_len(body.len());
        let pieces = written_pieces(body.len(), |w| {
            for line in body.split_inclusive(|&b| b == b',') {
                w.buf().push_str(std::str::from_utf8(line).unwrap());
                w.boundary();
            }
        });
        assert_eq!(pieces.iter().sum::<usize>(), body.len());
        let (last, whole) = pieces.split_last().unwrap();
        assert!(*last < piece + 64);
        assert!(whole.iter().all(|p| (piece..piece + 64).contains(p)));
    }

    #[test]
    fn accept_encoding_is_read_with_its_qualities() {
        for (header, want) in [
            ("gzip", true),
            ("gzip, deflate, br", true),
            ("deflate, gzip;q=0.5", true),
            ("GZIP", true),
            ("x-gzip", true),
            ("gzip;q=0", false),
            ("gzip; q=0.0, *", false),
            ("*", true),
            ("*;q=0", false),
            ("identity", false),
            ("br, deflate", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip(header), want, "{header:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    proptest! {
        #[test]
        fn any_body_round_trips(body in proptest::collection::vec(any::<u8>(), 0..(3 * PIECE)), threads in 1usize..4) {
            let gz = gzip(&body, threads);
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
            prop_assert_eq!(out, body);
        }
    }
}
