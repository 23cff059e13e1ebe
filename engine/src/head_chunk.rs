//! The head's in-order chunk: decimal when the values allow it, XOR
//! otherwise.
//!
//! Most metric values are decimals (CPU seconds in hundredths, byte counts,
//! gauges rounded by the exporter). Their binary mantissas look random in
//! the low bits, so Gorilla's XOR coding spends 5–7 bytes on each. A
//! [`DecimalChunk`] stores each value as an integer mantissa `m` at one
//! power-of-ten scale `k` per chunk (`v == m as f64 / 10^k`, bit for bit)
//! and codes the mantissas' delta-of-deltas, which are small for counters
//! and slow gauges. [`HeadChunk`] starts decimal when the first value is,
//! raises the scale when a later value needs more digits, and falls back to
//! [`XorChunk`] for the chunk when a value is not decimal (NaN, the stale
//! marker, ±Inf, `-0.0`, more than 15–17 significant digits).
//!
//! Chunks live in memory only (the WAL is the durable form), so the layout
//! is free to change; it is described here:
//!
//! ```text
//! sample 0   t0: 64 bits, m0: 64 bits (two's complement)
//! sample n   timestamp: D = Δt_n − Δt_{n−1} (Δt_0 = 0), value: E = Δm_n − Δm_{n−1},
//!            each as   '0'                   0
//!                      '10'     + 5 bits     [-2^4, 2^4)
//!                      '110'    + 9 bits     [-2^8, 2^8)
//!                      '1110'   + 14 bits    [-2^13, 2^13)
//!                      '11110'  + 24 bits    [-2^23, 2^23)
//!                      '111110' + 40 bits    [-2^39, 2^39)
//!                      '111111' + 64 bits    any
//! ```
//!
//! Bits are written most-significant first; arithmetic wraps (mod 2^64), so
//! every `i64` timestamp sequence round-trips.

use crate::block::decimal::{MAX_SCALE, decode, encode, min_scale};
use crate::chunk::{XorChunk, put_bits, put_wide};
use crate::sample::Sample;

/// Prefixes and payload widths of the delta-of-delta code (prefix `0` is
/// zero, `111111` the 64-bit escape).
const BUCKETS: [(u32, u32); 5] = [
    (0b10, 5),
    (0b110, 9),
    (0b1110, 14),
    (0b11110, 24),
    (0b111110, 40),
];

/// Samples with values `m / 10^scale`, coded as described in the module
/// documentation.
#[derive(Debug, Clone, Default)]
pub struct DecimalChunk {
    buf: Vec<u8>,
    /// Bits used in `buf`.
    bits: u64,
    count: u32,
    scale: u8,
    first_t: i64,
    last_t: i64,
    last_dt: i64,
    last_m: i64,
    last_dm: i64,
}

impl DecimalChunk {
    fn new(scale: u8) -> DecimalChunk {
        DecimalChunk {
            scale,
            ..DecimalChunk::default()
        }
    }

    /// Appends `(t, v)` if `v` is decimal at this chunk's scale; `false`
    /// (and nothing changed) otherwise. `t` must be above the last one.
    fn try_append(&mut self, t: i64, v: f64) -> bool {
        let Some(m) = encode(v, self.scale) else {
            return false;
        };
        if self.count == 0 {
            self.write(t as u64, 64);
            self.write(m as u64, 64);
            self.first_t = t;
            self.last_dt = 0;
            self.last_dm = 0;
        } else {
            let dt = t.wrapping_sub(self.last_t);
            let dm = m.wrapping_sub(self.last_m);
            self.write_dod(dt.wrapping_sub(self.last_dt));
            self.write_dod(dm.wrapping_sub(self.last_dm));
            self.last_dt = dt;
            self.last_dm = dm;
        }
        self.last_t = t;
        self.last_m = m;
        self.count += 1;
        true
    }

    fn write_dod(&mut self, d: i64) {
        if d == 0 {
            self.write_bits(0, 1);
            return;
        }
        for (prefix, width) in BUCKETS {
            let half = 1i64 << (width - 1);
            if (-half..half).contains(&d) {
                let prefix_len = 32 - prefix.leading_zeros();
                let payload = d as u64 & ((1u64 << width) - 1);
                self.write_bits(u64::from(prefix) << width | payload, prefix_len + width);
                return;
            }
        }
        self.write_bits(0b111111, 6);
        self.write(d as u64, 64);
    }

    /// Writes the low `n` bits of `value` (n <= 64), most significant first.
    #[inline(always)]
    fn write(&mut self, value: u64, n: u32) {
        put_wide(&mut self.buf, (self.bits % 8) as u32, value, n);
        self.bits += u64::from(n);
    }

    /// Writes the low `n` bits of `value` (1 <= n <= 56; higher bits zero).
    #[inline(always)]
    fn write_bits(&mut self, value: u64, n: u32) {
        put_bits(&mut self.buf, (self.bits % 8) as u32, value, n);
        self.bits += u64::from(n);
    }

    fn iter(&self) -> DecimalIter<'_> {
        DecimalIter {
            chunk: self,
            pos: 0,
            index: 0,
            t: 0,
            dt: 0,
            m: 0,
            dm: 0,
        }
    }

    /// The same samples at scale `k` (> the current one), if all fit.
    fn rescaled(&self, k: u8) -> Option<DecimalChunk> {
        let mut out = DecimalChunk::new(k);
        out.buf.reserve(self.buf.len() * 5 / 4);
        for s in self.iter() {
            if !out.try_append(s.t, s.v) {
                return None;
            }
        }
        Some(out)
    }
}

/// A decimal chunk's stream and append state, for head checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalParts<'a> {
    /// The bitstream (`ceil(bits / 8)` bytes).
    pub buf: &'a [u8],
    /// Bits used in `buf`.
    pub bits: u64,
    pub count: u32,
    pub scale: u8,
    pub first_t: i64,
    pub last_t: i64,
    pub last_dt: i64,
    pub last_m: i64,
    pub last_dm: i64,
}

impl DecimalChunk {
    pub fn raw_parts(&self) -> DecimalParts<'_> {
        DecimalParts {
            buf: &self.buf,
            bits: self.bits,
            count: self.count,
            scale: self.scale,
            first_t: self.first_t,
            last_t: self.last_t,
            last_dt: self.last_dt,
            last_m: self.last_m,
            last_dm: self.last_dm,
        }
    }

    /// Rebuilds a chunk from [`DecimalChunk::raw_parts`] without decoding
    /// it; `None` if the parts break what appending and reading rely on.
    pub fn from_raw_parts(p: &DecimalParts<'_>) -> Option<DecimalChunk> {
        let consistent = p.scale <= MAX_SCALE
            && p.bits.div_ceil(8) == p.buf.len() as u64
            && if p.count == 0 {
                p.bits == 0
            } else {
                p.bits >= 128 + 2 * u64::from(p.count - 1)
            };
        consistent.then(|| DecimalChunk {
            buf: p.buf.to_vec(),
            bits: p.bits,
            count: p.count,
            scale: p.scale,
            first_t: p.first_t,
            last_t: p.last_t,
            last_dt: p.last_dt,
            last_m: p.last_m,
            last_dm: p.last_dm,
        })
    }
}

/// Decodes a [`DecimalChunk`] front to back.
pub struct DecimalIter<'a> {
    chunk: &'a DecimalChunk,
    /// Bit position in the chunk's buffer.
    pos: u64,
    index: u32,
    t: i64,
    dt: i64,
    m: i64,
    dm: i64,
}

impl DecimalIter<'_> {
    fn read(&mut self, n: u32) -> u64 {
        let buf = &self.chunk.buf;
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            // Past the end (only a damaged restored chunk) reads zeros.
            let byte = buf.get((self.pos / 8) as usize).copied().unwrap_or(0);
            let used = (self.pos % 8) as u32;
            let room = 8 - used;
            let take = room.min(left);
            let bits = (u64::from(byte) >> (room - take)) & ((1u64 << take) - 1);
            out = (out << take) | bits;
            self.pos += u64::from(take);
            left -= take;
        }
        out
    }

    fn read_dod(&mut self) -> i64 {
        if self.read(1) == 0 {
            return 0;
        }
        for (_, width) in BUCKETS {
            if self.read(1) == 0 {
                let raw = self.read(width);
                // Sign-extend from `width` bits.
                let shift = 64 - width;
                return ((raw << shift) as i64) >> shift;
            }
        }
        self.read(64) as i64
    }
}

impl Iterator for DecimalIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.index >= self.chunk.count {
            return None;
        }
        if self.index == 0 {
            self.t = self.read(64) as i64;
            self.m = self.read(64) as i64;
        } else {
            self.dt = self.dt.wrapping_add(self.read_dod());
            self.dm = self.dm.wrapping_add(self.read_dod());
            self.t = self.t.wrapping_add(self.dt);
            self.m = self.m.wrapping_add(self.dm);
        }
        self.index += 1;
        Some(Sample::new(self.t, decode(self.m, self.chunk.scale)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.chunk.count - self.index) as usize;
        (n, Some(n))
    }
}

/// An in-order head chunk: decimal while every value allows it.
#[derive(Debug, Clone)]
pub enum HeadChunk {
    Decimal(DecimalChunk),
    Xor(XorChunk),
}

impl Default for HeadChunk {
    fn default() -> Self {
        HeadChunk::Decimal(DecimalChunk::default())
    }
}

impl HeadChunk {
    /// Appends `(t, v)`; `t` must be above the last timestamp.
    pub fn append(&mut self, t: i64, v: f64) {
        match self {
            HeadChunk::Xor(c) => c.append(t, v),
            HeadChunk::Decimal(c) => {
                if c.count == 0 {
                    match min_scale(v) {
                        Some(k) => c.scale = k,
                        None => {
                            let mut x = XorChunk::new();
                            x.append(t, v);
                            *self = HeadChunk::Xor(x);
                            return;
                        }
                    }
                }
                if c.try_append(t, v) {
                    return;
                }
                // More digits than the current scale: rescale if the value
                // is decimal at all and everything fits, else go XOR.
                if let Some(k) = min_scale(v).filter(|&k| k > c.scale)
                    && let Some(mut wider) = c.rescaled(k)
                    && wider.try_append(t, v)
                {
                    *c = wider;
                    return;
                }
                let mut x = XorChunk::new();
                for s in c.iter() {
                    x.append(s.t, s.v);
                }
                x.append(t, v);
                *self = HeadChunk::Xor(x);
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            HeadChunk::Decimal(c) => c.count as usize,
            HeadChunk::Xor(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First timestamp; only meaningful when not empty.
    pub fn min_t(&self) -> i64 {
        match self {
            HeadChunk::Decimal(c) => c.first_t,
            HeadChunk::Xor(c) => c.min_t(),
        }
    }

    /// Last timestamp; only meaningful when not empty.
    pub fn max_t(&self) -> i64 {
        match self {
            HeadChunk::Decimal(c) => c.last_t,
            HeadChunk::Xor(c) => c.max_t(),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = Sample> + '_> {
        match self {
            HeadChunk::Decimal(c) => Box::new(c.iter()),
            HeadChunk::Xor(c) => Box::new(c.iter()),
        }
    }

    /// Appends the samples in `[mint, maxt]` to `out`.
    pub fn read_range(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        match self {
            HeadChunk::Xor(c) => c.read_range(mint, maxt, out),
            HeadChunk::Decimal(c) => {
                for s in c.iter() {
                    if s.t > maxt {
                        break;
                    }
                    if s.t >= mint {
                        out.push(s);
                    }
                }
            }
        }
    }

    pub fn shrink_to_fit(&mut self) {
        match self {
            HeadChunk::Decimal(c) => c.buf.shrink_to_fit(),
            HeadChunk::Xor(c) => c.shrink_to_fit(),
        }
    }

    /// Heap bytes held (the enum itself not included).
    pub fn memory_bytes(&self) -> usize {
        match self {
            HeadChunk::Decimal(c) => c.buf.capacity(),
            HeadChunk::Xor(c) => c.memory_bytes(),
        }
    }

    /// Whether this chunk is decimal-coded (for tests and statistics).
    pub fn is_decimal(&self) -> bool {
        matches!(self, HeadChunk::Decimal(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(samples: &[(i64, f64)]) -> HeadChunk {
        let mut c = HeadChunk::default();
        for &(t, v) in samples {
            c.append(t, v);
        }
        let got: Vec<(i64, u64)> = c.iter().map(|s| (s.t, s.v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got, want);
        assert_eq!(c.len(), samples.len());
        if let (Some(f), Some(l)) = (samples.first(), samples.last()) {
            assert_eq!((c.min_t(), c.max_t()), (f.0, l.0));
        }
        c
    }

    #[test]
    fn decimal_counters_are_small_and_exact() {
        // CPU seconds in hundredths, 15 s ± a few ms apart.
        let mut v = 123_456.78f64;
        let mut t = 1_700_000_000_000i64;
        let mut samples = Vec::new();
        for i in 0..120u32 {
            samples.push((t, v));
            t += 15_000 + i64::from(i % 7) - 3;
            v = ((v * 100.0).round() + f64::from(1400 + (i * 37) % 200)) / 100.0;
        }
        let mut c = roundtrip(&samples);
        assert!(c.is_decimal());
        c.shrink_to_fit();
        let per_sample = c.memory_bytes() as f64 / samples.len() as f64;
        assert!(per_sample < 3.0, "{per_sample} bytes/sample");
    }

    /// An open chunk keeps only the room its next write needs plus a
    /// quarter of its length (no worst-case sample reserved ahead), in
    /// both codings and at every length.
    #[test]
    fn open_chunks_keep_little_spare_room() {
        let stale = f64::from_bits(crate::sample::STALE_NAN);
        for xor in [false, true] {
            let mut c = HeadChunk::default();
            let mut t = 1_700_000_000_000i64;
            for i in 0..600u32 {
                let v = if xor && i == 1 {
                    stale
                } else {
                    f64::from(i * 37 % 1000) / 10.0
                };
                c.append(t, v);
                t += 15_000 + i64::from(i % 7) - 3;
                let (len, cap) = match &c {
                    HeadChunk::Decimal(d) => (d.buf.len(), d.buf.capacity()),
                    HeadChunk::Xor(x) => (
                        x.bytes().len(),
                        x.memory_bytes() - std::mem::size_of::<XorChunk>(),
                    ),
                };
                let spare = cap - len;
                assert!(
                    spare <= (len / 4 + 16).max(32),
                    "xor {xor}, {} samples: {spare} spare of {cap}",
                    i + 1
                );
            }
            assert_eq!(c.is_decimal(), !xor);
        }
    }

    #[test]
    fn scale_grows_and_non_decimals_fall_back_to_xor() {
        let c = roundtrip(&[(1, 1.0), (2, 2.5), (3, 2.25), (4, 1e-9)]);
        assert!(c.is_decimal());
        let stale = f64::from_bits(crate::sample::STALE_NAN);
        let c = roundtrip(&[(1, 1.0), (2, 2.5), (3, stale), (4, 3.0)]);
        assert!(!c.is_decimal());
        let c = roundtrip(&[(1, f64::NAN), (2, 1.0)]);
        assert!(!c.is_decimal());
        let c = roundtrip(&[(1, -0.0), (2, 0.0)]);
        assert!(!c.is_decimal());
        // 0.30000000000000004 needs 17 digits: more than 2^53 allows.
        let c = roundtrip(&[(1, 0.1 + 0.2), (2, 1.0)]);
        assert!(!c.is_decimal());
        roundtrip(&[(i64::MIN, 1.0), (0, 2.0), (i64::MAX, 3.0)]);
        roundtrip(&[
            (1, 9.007_199_254_740_992e15),
            (2, -9.007_199_254_740_992e15),
        ]);
        roundtrip(&[(1, 1e300), (2, f64::INFINITY), (3, f64::MIN_POSITIVE)]);
    }

    #[test]
    fn read_range_is_inclusive() {
        let c = roundtrip(&[(10, 1.5), (20, 2.5), (30, 3.5), (40, 4.5)]);
        let mut out = Vec::new();
        c.read_range(20, 30, &mut out);
        assert_eq!(out, vec![Sample::new(20, 2.5), Sample::new(30, 3.5)]);
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1_000_000_000i64..1_000_000_000, 0u32..7)
                .prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(crate::sample::STALE_NAN)),
            Just(-0.0),
            Just(f64::INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn any_samples_round_trip_bit_exactly(
            start in any::<i64>(),
            steps in prop::collection::vec(
                (prop_oneof![1i64..30_000, 1i64..i64::MAX / 256], value()), 0..300),
        ) {
            let mut t = start;
            let mut samples = Vec::new();
            for (dt, v) in steps {
                samples.push((t, v));
                t = match t.checked_add(dt) {
                    Some(x) => x,
                    None => break,
                };
            }
            roundtrip(&samples);
        }
    }
}
