//! Gorilla-style XOR compression of `(timestamp, value)` samples: the head's
//! per-series chunk.
//!
//! [`XorChunk`] is an append-only bitstream in the style of Facebook's Gorilla
//! paper and Prometheus's XOR chunk: timestamps as delta-of-delta with
//! variable-width buckets, values as the XOR with the previous value, coded
//! with a reusable "meaningful bits" window. Values are kept bit-exact (every
//! NaN payload, including the stale marker, ±0, ±Inf, subnormals);
//! timestamps may be any strictly increasing `i64`s, with gaps of any size.
//!
//! # Layout
//!
//! The byte layout is documented for persistence in `docs/format/chunk.md`;
//! in short (bits are written most-significant first, byte by byte):
//!
//! ```text
//! header    count: u32 little-endian            (4 bytes, rewritten on append)
//! sample 0  t0: zigzag varint                   (1..=10 bytes)
//!           v0: 64 raw bits of f64::to_bits
//! sample 1  Δ1 = t1 - t0: unsigned varint       (1..=10 bytes, byte-aligned)
//!           value (see below)
//! sample n  Δn = tn - tn-1, D = Δn - Δn-1 (both wrapping, mod 2^64):
//!             '0'                        D == 0
//!             '10'    + 3-bit  D         D in [-4, 3]
//!             '110'   + 6-bit  D         D in [-32, 31]
//!             '1110'  + 10-bit D         D in [-512, 511]
//!             '11110' + 20-bit D         D in [-2^19, 2^19 - 1]
//!             '11111' + 64-bit D         any other
//!           value (see below)
//! value     X = bits(v) ^ bits(previous v):
//!             '0'                        X == 0
//!             '10' + X >> trailing       (64 - leading - trailing bits),
//!                                        reusing the current window
//!             '11' + leading: 5 bits + significant: 6 bits (0 means 64)
//!                  + X >> trailing       (significant bits); sets the window
//! padding   zero bits up to the next byte boundary
//! ```
//!
//! Signed bucket payloads are two's complement. Deltas and delta-of-deltas are
//! computed with wrapping `u64` arithmetic, so a jump from `i64::MIN` to
//! `i64::MAX` encodes exactly (through the 64-bit escape).
//!
//! **Invariant:** a chunk is always a complete, valid stream: [`XorChunk::bytes`]
//! can be handed to [`XorChunk::from_bytes`] at any time, and appending to the
//! restored chunk continues the same stream. `from_bytes` decodes the whole
//! stream and rejects anything the decoder could stumble on, so iteration over
//! a chunk never fails.

use std::fmt;

use crate::sample::Sample;
use crate::varint::{put_uvarint, unzigzag, zigzag};

/// Identifier of this encoding, for containers that store chunks of several
/// encodings side by side (the chunk itself does not carry it).
pub const ENCODING_XOR: u8 = 1;

/// Most samples one chunk can hold (the header's count is a `u32`). The head
/// cuts chunks long before that.
pub const MAX_SAMPLES: usize = u32::MAX as usize;

/// Length of the header (the sample count).
const HEADER_LEN: usize = 4;

/// `bytes()` of an empty chunk, which owns no allocation.
const EMPTY: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// `leading` value meaning "no value window set yet".
const NO_WINDOW: u8 = 0xff;

/// Delta-of-delta buckets: (prefix bits, prefix length, payload width). The
/// prefix is `n` one bits followed by a zero; the last bucket is the 64-bit
/// escape `11111`.
const DOD_BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 3),
    (0b110, 3, 6),
    (0b1110, 4, 10),
    (0b11110, 5, 20),
];
const DOD_ESCAPE: u64 = 0b11111;

/// Code lengths and payload widths of the delta-of-delta codes, one byte
/// each, indexed by the code's number of leading one bits (0 for `0`).
const DOD_LENGTHS: u64 = {
    let mut packed = 1;
    let mut i = 0;
    while i < DOD_BUCKETS.len() {
        packed |= ((DOD_BUCKETS[i].1 + DOD_BUCKETS[i].2) as u64) << (8 * (i + 1));
        i += 1;
    }
    packed
};
const DOD_WIDTHS: u64 = {
    let mut packed = 0;
    let mut i = 0;
    while i < DOD_BUCKETS.len() {
        packed |= (DOD_BUCKETS[i].2 as u64) << (8 * (i + 1));
        i += 1;
    }
    packed
};
const DOD_ESCAPE_LEN: u32 = 5;

/// Why bytes could not be turned back into a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Shorter than the 4-byte header.
    #[error("chunk of {len} bytes has no room for its {HEADER_LEN}-byte header")]
    MissingHeader { len: usize },
    /// The header declares more samples than the stream could possibly hold.
    #[error("chunk header declares {count} samples, more than {len} bytes can hold")]
    TooManySamples { count: u32, len: usize },
    /// The stream ends in the middle of sample `index`.
    #[error("chunk stream ends inside sample {index}")]
    Truncated { index: u32 },
    /// A varint in sample `index` is longer than 64 bits.
    #[error("overlong varint in sample {index}")]
    BadVarint { index: u32 },
    /// Sample `index`'s timestamp is not above its predecessor's, or leaves
    /// the `i64` range.
    #[error("timestamp of sample {index} does not increase or overflows i64")]
    BadTimestamp { index: u32 },
    /// Sample `index` reuses the value window before any was set.
    #[error("sample {index} reuses a value window before one was set")]
    MissingWindow { index: u32 },
    /// Sample `index` sets a value window wider than 64 bits.
    #[error(
        "sample {index} sets a value window of {leading} leading + {significant} significant bits"
    )]
    BadWindow {
        index: u32,
        leading: u8,
        significant: u8,
    },
    /// Restored append state out of range (see [`XorChunk::from_raw_parts`]).
    #[error("chunk append state out of range")]
    BadState,
    /// Whole bytes follow the last sample.
    #[error("{extra} bytes follow the last sample")]
    TrailingBytes { extra: usize },
    /// The padding bits of the last byte are not zero.
    #[error("padding bits after the last sample are not zero")]
    NonZeroPadding,
}

/// A compressed, append-only run of samples with strictly increasing
/// timestamps. 64 bytes inline plus the encoded stream.
#[derive(Clone)]
pub struct XorChunk {
    /// Header and bitstream; empty (no allocation) while the chunk is empty.
    buf: Vec<u8>,
    min_t: i64,
    /// Append state: the last timestamp, the last delta, the last value's bits
    /// and the current value window.
    t: i64,
    delta: u64,
    v: u64,
    count: u32,
    leading: u8,
    trailing: u8,
    /// Bits used in the last byte of `buf`; 0 when it is full.
    used: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        XorChunk::new()
    }
}

impl fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XorChunk")
            .field("len", &self.count)
            .field("min_t", &self.min_t)
            .field("max_t", &self.t)
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

impl XorChunk {
    /// An empty chunk; allocates nothing until the first append.
    pub fn new() -> XorChunk {
        XorChunk {
            buf: Vec::new(),
            min_t: 0,
            t: 0,
            delta: 0,
            v: 0,
            count: 0,
            leading: NO_WINDOW,
            trailing: 0,
            used: 0,
        }
    }

    /// An empty chunk whose stream has room for `bytes` bytes before it
    /// reallocates. Scrape data takes 0.7-8 bytes a sample (constant series
    /// below 1, counters about 3, noisy gauges up to 8) plus about 20 bytes.
    pub fn with_capacity(bytes: usize) -> XorChunk {
        XorChunk {
            buf: Vec::with_capacity(bytes),
            ..XorChunk::new()
        }
    }

    /// Appends a sample. The caller guarantees `t > max_t()` on a non-empty
    /// chunk and fewer than [`MAX_SAMPLES`] samples; breaking either corrupts
    /// the stream (checked in debug builds only).
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(
            self.count == 0 || t > self.t,
            "timestamps must increase: {t} after {}",
            self.t
        );
        debug_assert!((self.count as usize) < MAX_SAMPLES, "chunk is full");
        let bits = v.to_bits();
        if self.count >= 2 {
            let delta = t.wrapping_sub(self.t) as u64;
            let dod = delta.wrapping_sub(self.delta) as i64;
            let (head, head_len, payload, payload_len) = self.value_code(bits);
            match dod_code(dod) {
                Some((code, len)) => self.write_code(
                    code << head_len | head,
                    len + head_len,
                    payload,
                    payload_len,
                ),
                None => {
                    self.write_bits(DOD_ESCAPE, DOD_ESCAPE_LEN);
                    self.write_wide(dod as u64, 64);
                    self.write_code(head, head_len, payload, payload_len);
                }
            }
            self.delta = delta;
        } else if self.count == 0 {
            self.buf.clear();
            reserve_start(&mut self.buf);
            self.buf.extend_from_slice(&EMPTY);
            put_uvarint(&mut self.buf, zigzag(t));
            self.buf.extend_from_slice(&bits.to_be_bytes());
            self.used = 0;
            self.min_t = t;
        } else {
            let delta = t.wrapping_sub(self.t) as u64;
            debug_assert_eq!(self.used, 0, "sample 1 starts byte-aligned");
            put_uvarint(&mut self.buf, delta);
            let (head, head_len, payload, payload_len) = self.value_code(bits);
            self.write_code(head, head_len, payload, payload_len);
            self.delta = delta;
        }
        self.t = t;
        self.v = bits;
        self.count = self.count.wrapping_add(1);
        self.buf[..HEADER_LEN].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Number of samples.
    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// First timestamp; unspecified (0) when empty.
    #[inline]
    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    /// Last timestamp; unspecified (0) when empty.
    #[inline]
    pub fn max_t(&self) -> i64 {
        self.t
    }

    /// Last value, bit-exact; unspecified (0.0) when empty.
    #[inline]
    pub fn last_value(&self) -> f64 {
        f64::from_bits(self.v)
    }

    /// Iterates over the samples in timestamp order.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter {
            dec: Decoder::new(self.bytes()),
            remaining: self.count,
        }
    }

    /// The encoded stream: header and bitstream (see the module docs).
    pub fn bytes(&self) -> &[u8] {
        if self.buf.is_empty() {
            &EMPTY
        } else {
            &self.buf
        }
    }

    /// Rebuilds a chunk from [`XorChunk::bytes`] output, decoding it fully to
    /// validate it and to restore the append state. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<XorChunk, ChunkError> {
        let header: [u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ChunkError::MissingHeader { len: bytes.len() })?;
        let count = u32::from_le_bytes(header);
        if count == 0 {
            return match bytes.len() - HEADER_LEN {
                0 => Ok(XorChunk::new()),
                extra => Err(ChunkError::TrailingBytes { extra }),
            };
        }
        // Sample 0 takes at least 9 bytes, every later one at least 2 bits.
        let stream_bits = (bytes.len() - HEADER_LEN) as u64 * 8;
        if 72 + (u64::from(count) - 1) * 2 > stream_bits {
            return Err(ChunkError::TooManySamples {
                count,
                len: bytes.len(),
            });
        }
        let mut dec = Decoder::new(bytes);
        let end = bytes.len() * 8;
        for index in 0..count {
            // Past the end the reader yields zeros, so running out of data
            // shows up here or as a nonsensical sample: report it as such.
            let step = dec.step();
            if dec.bits.pos > end {
                return Err(ChunkError::Truncated { index });
            }
            step?;
        }
        let rest = end - dec.bits.pos;
        if rest >= 8 {
            return Err(ChunkError::TrailingBytes { extra: rest / 8 });
        }
        if rest > 0 && bytes[bytes.len() - 1] & ((1u8 << rest) - 1) != 0 {
            return Err(ChunkError::NonZeroPadding);
        }
        Ok(XorChunk {
            buf: bytes.to_vec(),
            min_t: dec.min_t,
            t: dec.t,
            delta: dec.delta,
            v: dec.v,
            count,
            leading: dec.leading,
            trailing: dec.trailing,
            used: (8 - rest) as u8 & 7,
        })
    }

    /// Releases spare capacity (for chunks that are complete).
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// The stream and the append state, for a head checkpoint (which must
    /// restore a chunk without decoding it).
    pub fn raw_parts(&self) -> XorParts<'_> {
        XorParts {
            bytes: self.bytes(),
            min_t: self.min_t,
            t: self.t,
            delta: self.delta,
            v: self.v,
            leading: self.leading,
            trailing: self.trailing,
            used: self.used,
        }
    }

    /// Rebuilds a chunk from [`XorChunk::raw_parts`] without decoding the
    /// stream. Checks what iteration and appending rely on not to panic
    /// (the header, the bit counts, room for sample 0); a stream that
    /// passes them but was altered decodes to wrong samples, so callers
    /// protect the parts with a checksum.
    pub fn from_raw_parts(p: &XorParts<'_>) -> Result<XorChunk, ChunkError> {
        let header: [u8; HEADER_LEN] = p
            .bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(ChunkError::MissingHeader { len: p.bytes.len() })?;
        let count = u32::from_le_bytes(header);
        if count == 0 {
            return match p.bytes.len() - HEADER_LEN {
                0 => Ok(XorChunk::new()),
                extra => Err(ChunkError::TrailingBytes { extra }),
            };
        }
        if p.bytes.len() < HEADER_LEN + 9 {
            return Err(ChunkError::Truncated { index: 0 });
        }
        let stream_bits = (p.bytes.len() - HEADER_LEN) as u64 * 8;
        if 72 + (u64::from(count) - 1) * 2 > stream_bits {
            return Err(ChunkError::TooManySamples {
                count,
                len: p.bytes.len(),
            });
        }
        if p.used > 7
            || (p.leading != NO_WINDOW
                && (p.leading > 31 || u16::from(p.leading) + u16::from(p.trailing) > 64))
        {
            return Err(ChunkError::BadState);
        }
        Ok(XorChunk {
            buf: p.bytes.to_vec(),
            min_t: p.min_t,
            t: p.t,
            delta: p.delta,
            v: p.v,
            count,
            leading: p.leading,
            trailing: p.trailing,
            used: p.used,
        })
    }

    /// Heap and inline bytes this chunk occupies, for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.buf.capacity()
    }

    /// Appends the samples with `mint <= t <= maxt` to `out`.
    pub fn read_range(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        if self.count == 0 || mint > maxt || maxt < self.min_t || mint > self.t {
            return;
        }
        if mint <= self.min_t && self.t <= maxt {
            out.extend(self.iter());
            return;
        }
        for s in self.iter() {
            if s.t > maxt {
                break;
            }
            if s.t >= mint {
                out.push(s);
            }
        }
    }

    /// Code of the XOR of `bits` with the previous value, as control bits
    /// (with the window description) and payload: `(head, head_len, payload,
    /// payload_len)`. Sets a new window when it chooses one.
    #[inline(always)]
    fn value_code(&mut self, bits: u64) -> (u64, u32, u64, u32) {
        let xor = bits ^ self.v;
        if xor == 0 {
            return (0, 1, 0, 0);
        }
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        let significant = 64 - leading - trailing;
        if self.leading != NO_WINDOW
            && leading >= u32::from(self.leading)
            && trailing >= u32::from(self.trailing)
        {
            // Reuse the window unless it is much wider than needed: a new one
            // costs an 11-bit description (measured: +11 beats always-reuse).
            let window = 64 - u32::from(self.leading) - u32::from(self.trailing);
            if window <= significant + 11 {
                return (0b10, 2, xor >> self.trailing, window);
            }
        }
        self.leading = leading as u8;
        self.trailing = trailing as u8;
        let head = 0b11 << 11 | u64::from(leading) << 6 | u64::from(significant & 63);
        (head, 13, xor >> trailing, significant)
    }

    /// Writes `head` (1..=56 bits) then `payload` (0..=64 bits), in one
    /// `write_bits` when they fit.
    #[inline(always)]
    fn write_code(&mut self, head: u64, head_len: u32, payload: u64, payload_len: u32) {
        if head_len + payload_len <= 56 {
            self.write_bits(head << payload_len | payload, head_len + payload_len);
        } else {
            self.write_bits(head, head_len);
            self.write_wide(payload, payload_len);
        }
    }

    /// Writes the low `n` bits of `value` (1 <= n <= 64).
    #[inline(always)]
    fn write_wide(&mut self, value: u64, n: u32) {
        self.used = put_wide(&mut self.buf, u32::from(self.used), value, n) as u8;
    }

    /// Writes the low `n` bits of `value` (1 <= n <= 56; higher bits zero).
    #[inline(always)]
    fn write_bits(&mut self, value: u64, n: u32) {
        self.used = put_bits(&mut self.buf, u32::from(self.used), value, n) as u8;
    }
}

/// Appends the low `n` bits of `value` (1 <= n <= 56; higher bits zero),
/// most significant first, to a bit stream whose last byte has `used`
/// bits taken (0: the stream ends on a byte boundary; unused bits are
/// zero). Stores the last partial byte and up to 7 new ones in one 8-byte
/// write, then trims the vector to the bytes used. Returns the new `used`.
/// (The decimal head chunk stores the same way into a zero-padded boxed
/// slice: `DecimalChunk::write_bits`.)
#[inline(always)]
fn put_bits(buf: &mut Vec<u8>, used: u32, value: u64, n: u32) -> u32 {
    debug_assert!((1..=56).contains(&n) && value >> n == 0 && used < 8);
    if buf.capacity() - buf.len() < WORD {
        grow(buf);
    }
    let mut start = buf.len();
    let mut word = (value << (64 - n)) >> used;
    if used != 0 {
        start -= 1;
        word |= u64::from(buf[start]) << 56;
    }
    let total = used + n;
    buf.truncate(start);
    buf.extend_from_slice(&word.to_be_bytes());
    buf.truncate(start + total.div_ceil(8) as usize);
    total & 7
}

/// [`put_bits`] for the low `n` bits of `value`, 0 <= n <= 64 (bits above
/// `n` ignored).
#[inline(always)]
fn put_wide(buf: &mut Vec<u8>, used: u32, value: u64, n: u32) -> u32 {
    if n > 56 {
        let used = put_bits(buf, used, (value >> 32) & (u64::MAX >> (96 - n)), n - 32);
        put_bits(buf, used, value & 0xffff_ffff, 32)
    } else if n > 0 {
        put_bits(buf, used, value & (u64::MAX >> (64 - n)), n)
    } else {
        used
    }
}

/// Bytes one bit-stream store writes at once ([`put_bits`], and the
/// decimal head chunk's): the room an XOR chunk's buffer keeps for the
/// next write (a decimal chunk stores byte by byte near its end instead).
pub(crate) const WORD: usize = 8;

/// Grows a chunk's buffer for the next write to the smallest allocator
/// size class that holds it and one more 8-byte store. A head holds one
/// open chunk per series: doubling would leave a third of each unused on
/// average, and asking for a size between two classes wastes the rest of
/// the class unseen. Writes check for their own 8-byte store only (not for
/// a worst-case sample ahead of it), so an open chunk keeps at most one
/// class step (an eighth to a quarter of its length) plus 8 bytes spare.
#[cold]
fn grow(buf: &mut Vec<u8>) {
    let cap = size_class(buf.len() + WORD);
    buf.reserve_exact(cap - buf.len());
}

/// The smallest allocation size class holding `n` bytes: multiples of 16
/// up to 64 bytes, then four classes per doubling (80, 96, 112, 128, 160,
/// ...). These are mimalloc's bins (and jemalloc's classes), so a buffer
/// of exactly this capacity fills its block.
pub(crate) fn size_class(n: usize) -> usize {
    if n <= 64 {
        return n.max(1).next_multiple_of(16);
    }
    let k = usize::BITS - 1 - (n - 1).leading_zeros();
    n.next_multiple_of(1 << (k - 2))
}

/// Room for an XOR chunk's first two samples, written byte-aligned
/// (header, varints, a whole value) rather than through [`put_bits`].
const START_BYTES: usize = 32;

/// Makes room for an XOR chunk's first samples in one allocation.
pub(crate) fn reserve_start(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() < START_BYTES {
        buf.reserve_exact(START_BYTES);
    }
}

/// A chunk's stream and append state, see [`XorChunk::raw_parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XorParts<'a> {
    /// [`XorChunk::bytes`]: the header (sample count) and the bitstream.
    pub bytes: &'a [u8],
    pub min_t: i64,
    /// Last timestamp.
    pub t: i64,
    /// Last timestamp delta.
    pub delta: u64,
    /// Last value's bits.
    pub v: u64,
    /// Value window: leading zeros (0xff: none yet) and trailing zeros.
    pub leading: u8,
    pub trailing: u8,
    /// Bits used in the last byte of the stream (0: full).
    pub used: u8,
}

impl<'a> IntoIterator for &'a XorChunk {
    type Item = Sample;
    type IntoIter = XorIter<'a>;

    fn into_iter(self) -> XorIter<'a> {
        self.iter()
    }
}

/// Iterator over a chunk's samples, from [`XorChunk::iter`].
#[derive(Clone)]
pub struct XorIter<'a> {
    dec: Decoder<'a>,
    remaining: u32,
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match self.dec.step() {
            Ok(()) => Some(Sample {
                t: self.dec.t,
                v: f64::from_bits(self.dec.v),
            }),
            // Unreachable for a chunk built by `append` or `from_bytes`.
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for XorIter<'_> {}

impl std::iter::FusedIterator for XorIter<'_> {}

/// Reads bits most-significant first; past the end it reads zeros.
/// Shared by both head chunk kinds.
#[derive(Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pub(crate) pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }
}

impl BitReader<'_> {
    /// The next bits at the top of a word; at least 57 of them are valid.
    #[inline(always)]
    pub(crate) fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let word = match self
            .data
            .get(byte..)
            .and_then(|rest| rest.first_chunk::<8>())
        {
            Some(w) => u64::from_be_bytes(*w),
            None => peek_tail(self.data, byte),
        };
        word << (self.pos & 7)
    }

    /// Reads `n` bits, 1 <= n <= 57.
    #[inline(always)]
    pub(crate) fn read(&mut self, n: u32) -> u64 {
        let w = self.peek();
        self.pos += n as usize;
        w >> (64 - n)
    }

    /// Reads `n` bits, 1 <= n <= 64.
    #[inline(always)]
    pub(crate) fn read_wide(&mut self, n: u32) -> u64 {
        if n <= 57 {
            self.read(n)
        } else {
            let hi = self.read(n - 32);
            hi << 32 | self.read(32)
        }
    }

    /// Reads a varint at a byte boundary.
    fn read_varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.read(8);
            if i == 9 && b > 1 {
                return None;
            }
            value |= (b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

/// Decoding state shared by iteration and validation.
#[derive(Clone)]
struct Decoder<'a> {
    bits: BitReader<'a>,
    /// Index of the next sample.
    index: u32,
    min_t: i64,
    t: i64,
    delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl<'a> Decoder<'a> {
    fn new(data: &'a [u8]) -> Decoder<'a> {
        Decoder {
            bits: BitReader {
                data,
                pos: HEADER_LEN * 8,
            },
            index: 0,
            min_t: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Decodes the next sample into `t` and `v`.
    ///
    /// One 57-bit peek usually covers the whole sample: the timestamp code
    /// (at most 29 bits outside the escape), the value's control bits and a
    /// payload that fits in what is left; only wider payloads load again.
    #[inline(always)]
    fn step(&mut self) -> Result<(), ChunkError> {
        if self.index < 2 {
            return self.step_first();
        }
        let mut w = self.bits.peek();
        let mut avail = 57;
        // Branch-free bucket decoding: jittered timestamps pick buckets at
        // random, which a branch predictor cannot follow.
        let ones = (!w).leading_zeros();
        let dod = if ones < 5 {
            // Code length and payload width of bucket `ones`, unpacked with
            // shifts rather than loaded from a table: this is the critical path.
            let len = (DOD_LENGTHS >> (ones * 8)) as u32 & 0xff;
            let width = (DOD_WIDTHS >> (ones * 8)) as u32 & 0xff;
            let payload = ((w << (ones + 1)) as i64).wrapping_shr(64 - width);
            w <<= len;
            avail -= len;
            payload & -i64::from(width != 0)
        } else {
            self.bits.pos += DOD_ESCAPE_LEN as usize;
            let dod = self.bits.read_wide(64) as i64;
            w = self.bits.peek();
            dod
        };
        self.advance_t(self.delta.wrapping_add(dod as u64))?;
        self.read_value(w, avail)?;
        self.index += 1;
        Ok(())
    }

    /// Samples 0 and 1, which start byte-aligned with varints.
    #[inline(always)]
    fn step_first(&mut self) -> Result<(), ChunkError> {
        let index = self.index;
        let varint = self
            .bits
            .read_varint()
            .ok_or(ChunkError::BadVarint { index })?;
        if index == 0 {
            self.t = unzigzag(varint);
            self.min_t = self.t;
            self.v = self.bits.read_wide(64);
        } else {
            self.advance_t(varint)?;
            let w = self.bits.peek();
            self.read_value(w, 57)?;
        }
        self.index += 1;
        Ok(())
    }

    #[inline(always)]
    fn advance_t(&mut self, delta: u64) -> Result<(), ChunkError> {
        match self.t.checked_add_unsigned(delta) {
            Some(t) if delta != 0 => {
                self.t = t;
                self.delta = delta;
                Ok(())
            }
            _ => Err(ChunkError::BadTimestamp { index: self.index }),
        }
    }

    /// Decodes a value from `w`, the bits from `57 - avail` bits past the
    /// reader's position on, `avail` (>= 13) of them valid; advances the
    /// reader past the value.
    #[inline(always)]
    fn read_value(&mut self, w: u64, avail: u32) -> Result<(), ChunkError> {
        let skip = (57 - avail) as usize;
        if w >> 63 == 0 {
            self.bits.pos += skip + 1;
            return Ok(());
        }
        let head_len = if w >> 62 == 0b10 {
            if self.leading == NO_WINDOW {
                return Err(ChunkError::MissingWindow { index: self.index });
            }
            2
        } else {
            let leading = ((w >> 57) & 31) as u8;
            let significant = match ((w >> 51) & 63) as u8 {
                0 => 64,
                s => s,
            };
            if leading + significant > 64 {
                return Err(ChunkError::BadWindow {
                    index: self.index,
                    leading,
                    significant,
                });
            }
            self.leading = leading;
            self.trailing = 64 - leading - significant;
            13
        };
        let significant = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let xor = if head_len + significant <= avail {
            self.bits.pos += skip + (head_len + significant) as usize;
            (w << head_len) >> (64 - significant)
        } else {
            self.bits.pos += skip + head_len as usize;
            self.bits.read_wide(significant)
        };
        self.v ^= xor << self.trailing;
        Ok(())
    }
}

/// The (fewer than 8) bytes from `byte` on, zero-padded, as a big-endian
/// word. Takes no reference to the reader, so the decoder's state can stay in
/// registers.
#[cold]
fn peek_tail(data: &[u8], byte: usize) -> u64 {
    let mut w = [0u8; 8];
    let rest = data.get(byte..).unwrap_or_default();
    let n = rest.len().min(8);
    w[..n].copy_from_slice(&rest[..n]);
    u64::from_be_bytes(w)
}

/// Code of a delta-of-delta in the smallest bucket that holds it, as
/// `(bits, length)`; `None` when it needs the 64-bit escape.
#[inline(always)]
fn dod_code(dod: i64) -> Option<(u64, u32)> {
    if dod == 0 {
        return Some((0, 1));
    }
    for (prefix, prefix_len, width) in DOD_BUCKETS {
        let limit = 1i64 << (width - 1);
        if (-limit..limit).contains(&dod) {
            let payload = dod as u64 & ((1u64 << width) - 1);
            return Some((prefix << width | payload, prefix_len + width));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sample::STALE_NAN;

    /// Bit patterns a codec gets wrong first.
    const SPECIAL: [u64; 16] = [
        STALE_NAN,
        0x7ff8_0000_0000_0000, // quiet NaN
        0xfff8_0000_0000_0001, // negative NaN with payload
        0x7ff0_0000_0000_0001, // smallest signalling NaN
        0x7fff_ffff_ffff_ffff, // all-ones NaN
        0x0000_0000_0000_0000, // +0
        0x8000_0000_0000_0000, // -0
        0x7ff0_0000_0000_0000, // +Inf
        0xfff0_0000_0000_0000, // -Inf
        0x0000_0000_0000_0001, // smallest subnormal
        0x800f_ffff_ffff_ffff, // largest negative subnormal
        0x0010_0000_0000_0000, // MIN_POSITIVE
        0x7fef_ffff_ffff_ffff, // MAX
        0xffef_ffff_ffff_ffff, // MIN
        0x3ff0_0000_0000_0000, // 1.0
        0xffff_ffff_ffff_ffff, // every bit set
    ];

    #[test]
    fn size_classes_step_by_a_quarter_doubling() {
        let classes: Vec<usize> = [1, 16, 17, 64, 65, 80, 81, 128, 129, 200, 257, 1000]
            .iter()
            .map(|&n| size_class(n))
            .collect();
        assert_eq!(
            classes,
            [16, 16, 32, 64, 80, 80, 96, 128, 160, 224, 320, 1024]
        );
        for n in 1..5000 {
            let c = size_class(n);
            assert!(c >= n && size_class(c) == c, "{n} -> {c}");
            assert!(c - n < 16.max(n / 4), "{n} -> {c}");
        }
    }

    fn encode(samples: &[Sample]) -> XorChunk {
        let mut c = XorChunk::new();
        for s in samples {
            c.append(s.t, s.v);
        }
        c
    }

    fn decode(c: &XorChunk) -> Vec<Sample> {
        c.iter().collect()
    }

    fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
        samples.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// Every way of reading `samples` back gives them bit-exact, and a chunk
    /// restored from any prefix and appended to equals the one-shot encoding.
    fn check_roundtrip(samples: &[Sample]) {
        let c = encode(samples);
        assert_eq!(c.len(), samples.len());
        assert_eq!(c.is_empty(), samples.is_empty());
        assert_eq!(bits(&decode(&c)), bits(samples));
        assert_eq!(c.iter().len(), samples.len());
        if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
            assert_eq!(c.min_t(), first.t);
            assert_eq!(c.max_t(), last.t);
            assert_eq!(c.last_value().to_bits(), last.v.to_bits());
        }
        let restored = XorChunk::from_bytes(c.bytes()).expect("own bytes decode");
        assert_eq!(restored.bytes(), c.bytes());
        assert_eq!(bits(&decode(&restored)), bits(samples));
        for split in [
            0,
            1,
            2,
            3,
            samples.len() / 2,
            samples.len().saturating_sub(1),
        ] {
            let split = split.min(samples.len());
            let mut c2 =
                XorChunk::from_bytes(encode(&samples[..split]).bytes()).expect("prefix decodes");
            for s in &samples[split..] {
                c2.append(s.t, s.v);
            }
            assert_eq!(c2.bytes(), c.bytes(), "append after restore at {split}");
        }
    }

    fn check_read_range(samples: &[Sample], mint: i64, maxt: i64) {
        let c = encode(samples);
        let mut out = vec![Sample::new(1, 1.0)];
        c.read_range(mint, maxt, &mut out);
        let mut want = vec![Sample::new(1, 1.0)];
        want.extend(samples.iter().filter(|s| mint <= s.t && s.t <= maxt));
        assert_eq!(bits(&out), bits(&want), "range [{mint}, {maxt}]");
    }

    /// A valid-or-error check for arbitrary bytes: never panics, and whatever
    /// decodes is internally consistent and re-encodes identically.
    fn check_untrusted(data: &[u8]) {
        let Ok(c) = XorChunk::from_bytes(data) else {
            return;
        };
        assert_eq!(c.bytes(), data);
        let got = decode(&c);
        assert_eq!(got.len(), c.len());
        assert!(got.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(bits(&decode(&encode(&got))), bits(&got));
        if let Some(last) = got.last() {
            assert_eq!(
                (c.max_t(), c.last_value().to_bits()),
                (last.t, last.v.to_bits())
            );
            let mut more = c.clone();
            if let Some(t) = last.t.checked_add(1) {
                more.append(t, 1.5);
                let again =
                    decode(&XorChunk::from_bytes(more.bytes()).expect("appended chunk decodes"));
                assert_eq!(bits(&again[..got.len()]), bits(&got));
                assert_eq!(again.last().map(|s| (s.t, s.v)), Some((t, 1.5)));
            }
        }
    }

    /// 15 s scrapes with up to `jitter` ms of delay each.
    fn scrape_times(n: usize, jitter: u64, seed: u64) -> Vec<i64> {
        let mut rng = seed;
        (0..n)
            .map(|i| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1_700_000_000_000 + i as i64 * 15_000 + ((rng >> 33) % (jitter + 1)) as i64
            })
            .collect()
    }

    #[test]
    fn empty_chunk() {
        let c = XorChunk::new();
        assert_eq!((c.len(), c.is_empty()), (0, true));
        assert_eq!(c.bytes(), &[0, 0, 0, 0]);
        assert_eq!(c.iter().next(), None);
        assert_eq!(c.memory_bytes(), 64);
        let mut out = Vec::new();
        c.read_range(i64::MIN, i64::MAX, &mut out);
        assert!(out.is_empty());
        let r = XorChunk::from_bytes(c.bytes()).unwrap();
        assert!(r.is_empty());
        check_roundtrip(&[]);
    }

    /// The worked example of `docs/format/chunk.md`, byte for byte: the
    /// format must not change silently.
    #[test]
    fn golden_example_from_format_doc() {
        let samples = [
            Sample::new(1_700_000_000_000, 1.0),
            Sample::new(1_700_000_015_000, 1.0),
            Sample::new(1_700_000_030_001, 2.0),
            Sample::new(1_700_000_045_001, 3.0),
        ];
        let golden: [u8; 27] = [
            0x04, 0x00, 0x00, 0x00, // count
            0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, // t0 zigzag varint
            0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // v0
            0x98, 0x75, // Δ1 = 15000
            0x47, 0x09, 0x7f, 0xfe, 0xfb, 0x01, 0x80, // codes of samples 1-3
        ];
        assert_eq!(encode(&samples).bytes(), &golden);
        let restored = XorChunk::from_bytes(&golden).unwrap();
        assert_eq!(bits(&decode(&restored)), bits(&samples));
    }

    #[test]
    fn struct_fits_a_cache_line() {
        assert_eq!(std::mem::size_of::<XorChunk>(), 64);
    }

    #[test]
    fn special_values_are_bit_exact() {
        let mut samples: Vec<Sample> = SPECIAL
            .iter()
            .enumerate()
            .map(|(i, b)| Sample::new(i as i64 * 1000, f64::from_bits(*b)))
            .collect();
        // Each special after each other special, and repeated.
        for (i, a) in SPECIAL.iter().enumerate() {
            for b in SPECIAL.iter().chain([a, a]) {
                let t = samples.last().unwrap().t + 1 + i as i64;
                samples.push(Sample::new(t, f64::from_bits(*b)));
            }
        }
        check_roundtrip(&samples);
    }

    #[test]
    fn extreme_timestamps() {
        let v = |t: i64| Sample::new(t, 0.5);
        check_roundtrip(&[v(i64::MIN)]);
        check_roundtrip(&[v(i64::MAX)]);
        check_roundtrip(&[v(i64::MIN), v(i64::MAX)]);
        check_roundtrip(&[v(i64::MIN), v(i64::MIN + 1), v(i64::MAX)]);
        check_roundtrip(&[v(i64::MIN), v(i64::MAX - 1), v(i64::MAX)]);
        check_roundtrip(&[
            v(-5),
            v(-3),
            v(-2),
            v(0),
            v(1 << 40),
            v((1 << 40) + 1),
            v(i64::MAX),
        ]);
        // Every bucket boundary of the delta-of-delta, both signs.
        let mut t = 0i64;
        let mut delta = 1_000_000_000i64;
        let mut samples = vec![v(t)];
        let edges = DOD_BUCKETS.iter().flat_map(|&(_, _, width)| {
            let limit = 1i64 << (width - 1);
            [limit - 1, limit, -limit, -limit - 1]
        });
        for dod in std::iter::once(0).chain(edges) {
            delta += dod;
            t += delta;
            samples.push(v(t));
        }
        check_roundtrip(&samples);
    }

    #[test]
    fn append_after_restore_continues_stream() {
        let times = scrape_times(300, 20, 7);
        let samples: Vec<Sample> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| Sample::new(t, (i * i) as f64))
            .collect();
        check_roundtrip(&samples);
        // Restore every prefix, not just the few `check_roundtrip` tries.
        let full = encode(&samples);
        for split in 0..samples.len() {
            let mut c = XorChunk::from_bytes(encode(&samples[..split]).bytes()).unwrap();
            for s in &samples[split..] {
                c.append(s.t, s.v);
            }
            assert_eq!(c.bytes(), full.bytes(), "split {split}");
        }
    }

    #[test]
    fn read_range_bounds() {
        let samples: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        for (mint, maxt) in [
            (i64::MIN, i64::MAX),
            (0, 90),
            (1, 89),
            (10, 10),
            (11, 19),
            (-100, -1),
            (91, 1000),
            (50, 40),
            (90, 90),
            (-5, 0),
        ] {
            check_read_range(&samples, mint, maxt);
        }
    }

    #[test]
    fn shrink_and_memory_accounting() {
        let mut c = XorChunk::new();
        for (i, t) in scrape_times(120, 2, 1).into_iter().enumerate() {
            c.append(t, i as f64);
        }
        let before = c.memory_bytes();
        c.shrink_to_fit();
        assert_eq!(c.memory_bytes(), 64 + c.bytes().len());
        assert!(c.memory_bytes() <= before);
        assert_eq!(decode(&c).len(), 120);
    }

    #[test]
    fn compact_on_scrape_data() {
        let times = scrape_times(120, 2, 3);
        let constant = encode(
            &times
                .iter()
                .map(|&t| Sample::new(t, 1.0))
                .collect::<Vec<_>>(),
        );
        let mut total = 1e6;
        let counter = encode(
            &times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    total += (i % 7 * 13) as f64;
                    Sample::new(t, total)
                })
                .collect::<Vec<_>>(),
        );
        let per_sample = |c: &XorChunk| c.bytes().len() as f64 / c.len() as f64;
        // 0-2 ms of jitter costs about 5 bits a timestamp, a constant value 1
        // bit, a counter's small integer steps about 17 bits.
        let (constant, counter) = (per_sample(&constant), per_sample(&counter));
        assert!(constant < 0.9, "constant: {constant} bytes/sample");
        assert!(counter < 3.0, "counter: {counter} bytes/sample");
        // Perfectly regular timestamps cost 1 bit: 2 bits a sample after the
        // first two (header 4, t0 6, v0 8, Δ1 2 bytes).
        let regular: Vec<Sample> = (0..120)
            .map(|i| Sample::new(1_700_000_000_000 + i * 15_000, 1.0))
            .collect();
        assert_eq!(
            encode(&regular).bytes().len(),
            4 + 6 + 8 + 2 + (118 * 2usize).div_ceil(8)
        );
    }

    #[test]
    fn rejects_malformed_headers_and_tails() {
        assert_eq!(
            XorChunk::from_bytes(&[]).unwrap_err(),
            ChunkError::MissingHeader { len: 0 }
        );
        assert_eq!(
            XorChunk::from_bytes(&[1, 0, 0]).unwrap_err(),
            ChunkError::MissingHeader { len: 3 }
        );
        assert_eq!(
            XorChunk::from_bytes(&[0, 0, 0, 0, 0]).unwrap_err(),
            ChunkError::TrailingBytes { extra: 1 }
        );
        assert_eq!(
            XorChunk::from_bytes(&[0xff, 0xff, 0xff, 0xff, 0, 0]).unwrap_err(),
            ChunkError::TooManySamples {
                count: u32::MAX,
                len: 6
            }
        );
        let mut c = XorChunk::new();
        c.append(5, 1.0);
        // 25 bits after the first sample: 7 padding bits.
        c.append(6, 3.0);
        let mut data = c.bytes().to_vec();
        data.push(0);
        assert_eq!(
            XorChunk::from_bytes(&data).unwrap_err(),
            ChunkError::TrailingBytes { extra: 1 }
        );
        data.pop();
        *data.last_mut().unwrap() |= 1;
        assert_eq!(
            XorChunk::from_bytes(&data).unwrap_err(),
            ChunkError::NonZeroPadding
        );
    }

    #[test]
    fn rejects_bad_samples() {
        // count 2; t0 = 0 (varint 0), v0 = 0, then sample 1 by hand.
        let chunk = |tail: &[u8]| {
            let mut d = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            d.extend_from_slice(tail);
            XorChunk::from_bytes(&d)
        };
        assert_eq!(
            chunk(&[0, 0]).unwrap_err(),
            ChunkError::BadTimestamp { index: 1 }
        );
        assert_eq!(
            chunk(&[0xff; 11]).unwrap_err(),
            ChunkError::BadVarint { index: 1 }
        );
        // Δ = 1, then '10': a window that was never set.
        assert_eq!(
            chunk(&[1, 0b1000_0000]).unwrap_err(),
            ChunkError::MissingWindow { index: 1 }
        );
        // Δ = 1, then '11' leading 31, significant 63.
        assert_eq!(
            chunk(&[1, 0b1111_1111, 0b1111_1000, 0, 0, 0, 0, 0, 0, 0]).unwrap_err(),
            ChunkError::BadWindow {
                index: 1,
                leading: 31,
                significant: 63
            }
        );
        // t0 = i64::MAX (zigzag u64::MAX - 1), Δ = 1 overflows.
        let mut d = vec![
            2, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&[1, 0]);
        assert_eq!(
            XorChunk::from_bytes(&d).unwrap_err(),
            ChunkError::BadTimestamp { index: 1 }
        );
        // A varint past the 64th bit in sample 0.
        let mut d = vec![1, 0, 0, 0];
        d.extend_from_slice(&[0xff; 9]);
        d.extend_from_slice(&[0x02; 9]);
        assert_eq!(
            XorChunk::from_bytes(&d).unwrap_err(),
            ChunkError::BadVarint { index: 0 }
        );
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let times = scrape_times(40, 300, 11);
        let mut samples: Vec<Sample> = times
            .iter()
            .zip(SPECIAL.iter().cycle())
            .map(|(&t, &b)| Sample::new(t, f64::from_bits(b)))
            .collect();
        samples.push(Sample::new(i64::MAX, 3.0));
        let c = encode(&samples);
        let data = c.bytes();
        for len in 0..data.len() {
            let r = XorChunk::from_bytes(&data[..len]);
            assert!(r.is_err(), "prefix of {len} bytes decoded");
            check_untrusted(&data[..len]);
        }
        let mut flipped = data.to_vec();
        for bit in 0..data.len() * 8 {
            flipped[bit / 8] ^= 1 << (bit % 8);
            check_untrusted(&flipped);
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
    }

    /// How a property test picks the next value.
    #[derive(Debug, Clone)]
    enum Next {
        Same,
        Special(usize),
        Bits(u64),
        Int(i32),
        Add(u16),
        Scale(u8),
    }

    fn next_value() -> impl Strategy<Value = Next> {
        prop_oneof![
            3 => Just(Next::Same),
            3 => (0..SPECIAL.len()).prop_map(Next::Special),
            2 => any::<u64>().prop_map(Next::Bits),
            2 => any::<i32>().prop_map(Next::Int),
            3 => any::<u16>().prop_map(Next::Add),
            1 => any::<u8>().prop_map(Next::Scale),
        ]
    }

    fn gap() -> impl Strategy<Value = u64> {
        prop_oneof![
            3 => 1..=4u64,
            4 => 14_990..=15_010u64,
            2 => 1..=10_000_000u64,
            1 => any::<u64>(),
        ]
    }

    fn series() -> impl Strategy<Value = Vec<Sample>> {
        let start = prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(1_700_000_000_000i64),
            Just(-1i64)
        ];
        (
            start,
            proptest::collection::vec((gap(), next_value()), 0..300),
        )
            .prop_map(|(t0, steps)| {
                let mut out: Vec<Sample> = Vec::with_capacity(steps.len());
                let (mut t, mut v) = (t0, 0.0f64);
                for (i, (gap, next)) in steps.into_iter().enumerate() {
                    if i > 0 {
                        match t.checked_add_unsigned(gap) {
                            Some(next_t) => t = next_t,
                            None => break,
                        }
                    }
                    v = match next {
                        Next::Same => v,
                        Next::Special(k) => f64::from_bits(SPECIAL[k]),
                        Next::Bits(b) => f64::from_bits(b),
                        Next::Int(n) => f64::from(n),
                        Next::Add(d) => v + f64::from(d),
                        Next::Scale(k) => v * (1.0 + f64::from(k) / 100.0),
                    };
                    out.push(Sample::new(t, v));
                }
                out
            })
    }

    proptest! {
        // Sized to keep `cargo test` (debug) to a few seconds.
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn prop_roundtrip(samples in series()) {
            check_roundtrip(&samples);
        }

        #[test]
        fn prop_read_range(samples in series(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), wide in any::<bool>()) {
            if samples.is_empty() {
                check_read_range(&samples, 0, 0);
            } else {
                let mint = samples[a.index(samples.len())].t;
                let maxt = samples[b.index(samples.len())].t;
                check_read_range(&samples, mint, maxt);
                check_read_range(&samples, mint.saturating_add(1), maxt.saturating_sub(1));
                if wide {
                    check_read_range(&samples, mint.saturating_sub(1_000_000), i64::MAX);
                }
            }
        }

        #[test]
        fn prop_damaged_chunks(samples in series(), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec(any::<prop::sample::Index>(), 1..4)) {
            let c = encode(&samples);
            let mut data = c.bytes().to_vec();
            for f in flips {
                let bit = f.index(data.len() * 8);
                data[bit / 8] ^= 1 << (bit % 8);
            }
            check_untrusted(&data);
            let len = cut.index(data.len());
            check_untrusted(&data[..len]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn prop_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            check_untrusted(&data);
        }

        /// Random bodies behind a plausible count get past the header checks.
        #[test]
        fn prop_arbitrary_streams(count in 0u32..40, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut data = count.to_le_bytes().to_vec();
            data.extend_from_slice(&body);
            check_untrusted(&data);
        }
    }
}
