//! The head's in-order chunk: decimal when the values allow it, XOR
//! otherwise.
//!
//! Most metric values are decimals (CPU seconds in hundredths, byte counts,
//! gauges rounded by the exporter). Their binary mantissas look random in
//! the low bits, so Gorilla's XOR coding spends 5–7 bytes on each. A
//! [`DecimalChunk`] stores each value as an integer mantissa `m` at one
//! power-of-ten scale `k` per chunk (`v == m as f64 / 10^k`, bit for bit)
//! and codes the timestamps' and mantissas' delta-of-deltas, which are
//! small for counters, slow gauges and regular scrapes. [`HeadChunk`]
//! starts decimal when the first value is, raises the scale when a later
//! value needs more digits, and falls back to [`XorChunk`] for the chunk
//! when a value is not decimal (NaN, the stale marker, ±Inf, `-0.0`, more
//! than 15–17 significant digits).
//!
//! Chunks live in memory and in head checkpoints, which store the stream
//! as it is (`docs/format/checkpoint.md`; the WAL is the durable form). A
//! layout change needs a new checkpoint chunk kind and a conversion of the
//! old one on load, as [`DecimalChunk::from_bucket_coded_parts`] does. The
//! layout:
//!
//! ```text
//! sample 0   t0: 64 bits, m0: 64 bits (two's complement)
//! sample 1   D_t = Δt_1, then D_m = Δm_1, each in the bucket code
//! sample n   D_t = Δt_n − Δt_{n−1}, then D_m = Δm_n − Δm_{n−1}, each in
//!            its stream's adaptive code
//!
//! bucket code  '0'                   0
//!              '10'     + 5 bits     [-2^4, 2^4)
//!              '110'    + 9 bits     [-2^8, 2^8)
//!              '1110'   + 14 bits    [-2^13, 2^13)
//!              '11110'  + 24 bits    [-2^23, 2^23)
//!              '111110' + 40 bits    [-2^39, 2^39)
//!              '111111' + 64 bits    any
//!
//! adaptive code (one state per stream: a, n, zero; from sample 2 on,
//! starting at a = 4, n = 1, zero = false)
//!   if zero:   a flag, '0' for D = 0 (nothing follows, the state is
//!              unchanged), '1' for D ≠ 0; then u = zigzag(D) − 1
//!   else:      u = zigzag(D)
//!   k = the least k ≥ 0 with n·2^k ≥ a
//!   q = u >> k; if q < 24: q '1' bits, a '0', the k low bits of u
//!               else:      24 '1' bits, then D in the bucket code
//!   then a += u (saturating at 2^26 − 1), n += 1, and at n = 32 both
//!   halve; zero = (D == 0)
//! ```
//!
//! The adaptive code is a Rice code whose parameter follows the running
//! mean of the stream's recent values (as in LOCO-I), with a one-bit path
//! for runs of zeros: jittered timestamps (± a few ms) and noisy counters
//! cost 2–4 bits less per sample than in the bucket code, and constant or
//! rarely changing values still cost one bit.
//!
//! Bits are written most-significant first; arithmetic wraps (mod 2^64), so
//! every `i64` timestamp sequence round-trips.
//!
//! A decimal chunk whose timestamps are in a column shared with the other
//! series of its target (`crate::time_column`, `HeadChunk::append_in`)
//! codes only the mantissa stream, as above without the `t0` and `D_t`
//! fields; its samples' timestamps are the column's slots `start..start +
//! count`. Checkpoints store the column once and such a chunk's value
//! stream as it is ([`DecimalChunk::shared_parts`]).

use std::num::NonZeroU32;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::block::decimal::{MAX_SCALE, decode, encode, min_scale};
use crate::chunk::{BitReader, WORD, XorChunk, size_class};
use crate::sample::Sample;
use crate::time_column::{COLUMN_CAP, Claim, Columns, TimeColumn};
use crate::varint::{unzigzag, zigzag};

/// Prefixes and payload widths of the bucket code (prefix `0` is zero,
/// `111111` the 64-bit escape).
const BUCKETS: [(u32, u32); 5] = [
    (0b10, 5),
    (0b110, 9),
    (0b1110, 14),
    (0b11110, 24),
    (0b111110, 40),
];

/// A chunk still alone on its column after this many samples codes its own
/// timestamps.
const LONE_SAMPLES: usize = 16;
/// Unary quotients from this length on escape to the bucket code.
const RICE_ESCAPE: u32 = 24;
/// The adaptive code's state halves when its count reaches this.
const ADAPT_WINDOW: u32 = 32;
/// Largest running sum kept (26 bits).
const ADAPT_SUM_MAX: u32 = (1 << 26) - 1;

/// `d` in the adaptive code with state `s`: its bits and their number
/// (at most 51), or `None` if it escapes to the bucket code; and the next
/// state.
#[inline(always)]
fn adaptive_code(d: i64, s: Adapt) -> (Option<(u64, u32)>, Adapt) {
    let mut u = zigzag(d);
    let flag = u32::from(s.zero());
    if flag == 1 {
        if d == 0 {
            return (Some((0, 1)), s);
        }
        u -= 1;
    }
    let next = s.after(d, u);
    let k = s.k();
    let q = u >> k;
    if q >= u64::from(RICE_ESCAPE) {
        return (None, next);
    }
    // The flag's '1' (if any), q ones, a zero, k bits: at most
    // 1 + 23 + 1 + 26 bits.
    let ones = ((1u64 << (q as u32 + flag)) - 1) << (k + 1);
    let bits = ones | (u & ((1u64 << k) - 1));
    (Some((bits, flag + q as u32 + 1 + k)), next)
}

/// One stream's adaptive-code state, packed: the running sum `a` (bits
/// 0–25), the count `n` (bits 26–30) and the zero flag (bit 31). `n` is
/// never 0, so the state is never 0: [`Times`] keeps its tag there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Adapt(NonZeroU32);

impl Adapt {
    const START: Adapt = Adapt(NonZeroU32::new(4 | 1 << 26).expect("n = 1"));

    fn bits(self) -> u32 {
        self.0.get()
    }

    fn sum(self) -> u32 {
        self.bits() & ADAPT_SUM_MAX
    }

    fn count(self) -> u32 {
        (self.bits() >> 26) & 31
    }

    fn zero(self) -> bool {
        self.bits() >> 31 != 0
    }

    /// A packed state as stored, if it could have come from coding.
    fn from_bits(bits: u32) -> Option<Adapt> {
        let a = Adapt(NonZeroU32::new(bits)?);
        (a.count() >= 1).then_some(a)
    }

    /// The Rice parameter: the least k with n·2^k ≥ a (at most 26).
    #[inline(always)]
    fn k(self) -> u32 {
        let (a, n) = (self.sum(), self.count());
        if a <= n {
            return 0;
        }
        let k = n.leading_zeros() - a.leading_zeros();
        if (n << k) < a { k + 1 } else { k }
    }

    /// The state after coding `d` as `u`.
    #[inline(always)]
    fn after(self, d: i64, u: u64) -> Adapt {
        let mut a = u64::from(self.sum())
            .saturating_add(u)
            .min(u64::from(ADAPT_SUM_MAX)) as u32;
        let mut n = self.count() + 1;
        if n == ADAPT_WINDOW {
            a >>= 1;
            n >>= 1;
        }
        let bits = a | n << 26 | u32::from(d == 0) << 31;
        Adapt(NonZeroU32::new(bits).expect("n >= 1"))
    }
}

impl Default for Adapt {
    fn default() -> Adapt {
        Adapt::START
    }
}

/// Where a decimal chunk's timestamps are, with the append state that
/// goes with them (24 bytes: the tag lives in `adapt_t`'s zero niche).
#[derive(Debug, Clone)]
enum Times {
    /// Coded in the chunk's own stream, before each value.
    Own {
        adapt_t: Adapt,
        adapt_m: Adapt,
        last_t: i64,
        last_dt: i64,
    },
    /// Slots `start..start + count` of a column shared with the other
    /// series of the target (`crate::time_column`); the stream codes
    /// values only.
    Shared {
        col: Arc<TimeColumn>,
        start: u32,
        adapt_m: Adapt,
    },
}

impl Times {
    const OWN: Times = Times::Own {
        adapt_t: Adapt::START,
        adapt_m: Adapt::START,
        last_t: 0,
        last_dt: 0,
    };

    fn set_adapt_m(&mut self, a: Adapt) {
        match self {
            Times::Own { adapt_m, .. } | Times::Shared { adapt_m, .. } => *adapt_m = a,
        }
    }
}

/// Samples with values `m / 10^scale`, coded as described in the module
/// documentation, with their timestamps in the stream or in a shared
/// column.
pub struct DecimalChunk {
    /// The bitstream, then zeros to the end of the buffer: a thin pointer
    /// (dangling while there is no buffer) to a buffer whose length, an
    /// allocator size class, is coded in `class_solo`. A boxed slice took 8
    /// bytes more in every chunk, and so in every series.
    buf: NonNull<u8>,
    /// Bits used in `buf`.
    bits: u32,
    /// Samples; at most `u16::MAX` (a head chunk holds a few hundred).
    count: u16,
    scale: u8,
    /// Bits 0–6: the size class of `buf` ([`class_bytes`]; 0: none).
    /// Bit 7: the series was found with too few others on its column when
    /// its previous chunk sealed: this chunk codes its own timestamps
    /// unless a column starts where it does (see [`Columns::join`]).
    class_solo: u8,
    times: Times,
    last_m: i64,
    last_dm: i64,
}

// SAFETY: a `DecimalChunk` owns its buffer as a `Box<[u8]>` would; shared
// references only read it.
unsafe impl Send for DecimalChunk {}
unsafe impl Sync for DecimalChunk {}

const SOLO: u8 = 0x80;

/// Every this many samples a chunk moves its buffer to a fresh block.
///
/// Series of one scrape target append in step, so their buffers outgrow
/// each allocator size class at about the same time, and the slow growers
/// stay behind, a few to each page of the class the others left: at a
/// million series those pages held 50 MB more than the blocks in use
/// (`benches/examples/ingest_memory_workload.rs`). Moving the buffers
/// now and then, all in the same scrape, packs them into few pages and
/// frees the rest: 12 MB less resident there, for one copy of a small
/// buffer per 24 samples.
const REPACK_EVERY: u16 = 24;

/// Bytes of size class `code` (see [`class_code`]): 0 for 0, then 16, 32,
/// 48, 64, then four classes per doubling (80, 96, 112, 128, 160, ...): the
/// sizes [`size_class`] returns.
fn class_bytes(code: u8) -> usize {
    match code {
        0..=4 => 16 * usize::from(code),
        _ => {
            let j = u32::from(code - 5);
            let base = 64usize << (j / 4);
            base + (j % 4 + 1) as usize * (base / 4)
        }
    }
}

/// The code of a size `n` that [`size_class`] returns (or 0).
fn class_code(n: usize) -> u8 {
    debug_assert!(n == 0 || size_class(n) == n, "{n} is not a size class");
    if n <= 64 {
        return n.div_ceil(16) as u8;
    }
    let k = usize::BITS - 1 - (n - 1).leading_zeros();
    let base = 1usize << k;
    (5 + 4 * (k - 6) as usize + (n - base) / (base / 4) - 1) as u8
}

impl Default for DecimalChunk {
    fn default() -> DecimalChunk {
        DecimalChunk {
            buf: NonNull::dangling(),
            bits: 0,
            count: 0,
            scale: 0,
            class_solo: 0,
            times: Times::OWN,
            last_m: 0,
            last_dm: 0,
        }
    }
}

impl Drop for DecimalChunk {
    fn drop(&mut self) {
        drop(self.take_buf());
    }
}

impl Clone for DecimalChunk {
    fn clone(&self) -> DecimalChunk {
        let mut c = DecimalChunk {
            buf: NonNull::dangling(),
            bits: self.bits,
            count: self.count,
            scale: self.scale,
            class_solo: self.class_solo & SOLO,
            times: self.times.clone(),
            last_m: self.last_m,
            last_dm: self.last_dm,
        };
        c.put_buf(self.buf().to_vec());
        c
    }
}

impl std::fmt::Debug for DecimalChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecimalChunk")
            .field("stream", &self.stream())
            .field("bits", &self.bits)
            .field("count", &self.count)
            .field("scale", &self.scale)
            .field("solo", &self.solo())
            .field("times", &self.times)
            .field("last_m", &self.last_m)
            .field("last_dm", &self.last_dm)
            .finish()
    }
}

/// The buffer: its bytes, and taking and putting it whole.
impl DecimalChunk {
    fn buf(&self) -> &[u8] {
        let n = class_bytes(self.class_solo & !SOLO);
        if n == 0 {
            return &[];
        }
        // SAFETY: `put_buf` made `buf` a boxed slice of this length.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr(), n) }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        let n = class_bytes(self.class_solo & !SOLO);
        if n == 0 {
            return &mut [];
        }
        // SAFETY: as in `buf`, and `&mut self` is the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr(), n) }
    }

    /// Takes the buffer out (the chunk is left without one).
    fn take_buf(&mut self) -> Vec<u8> {
        let n = class_bytes(self.class_solo & !SOLO);
        self.class_solo &= SOLO;
        let p = std::mem::replace(&mut self.buf, NonNull::dangling());
        if n == 0 {
            return Vec::new();
        }
        let whole = std::ptr::slice_from_raw_parts_mut(p.as_ptr(), n);
        // SAFETY: `put_buf` leaked this boxed slice with this length, and
        // nothing else refers to it now.
        unsafe { Box::from_raw(whole) }.into_vec()
    }

    /// Makes `v`, zero-padded to its size class, the buffer (dropping the
    /// one there was).
    fn put_buf(&mut self, mut v: Vec<u8>) {
        drop(self.take_buf());
        if v.is_empty() {
            return;
        }
        let n = size_class(v.len());
        v.resize(n, 0);
        let whole = Box::into_raw(v.into_boxed_slice());
        self.buf = NonNull::new(whole.cast::<u8>()).expect("a box is never null");
        self.class_solo |= class_code(n);
    }

    fn solo(&self) -> bool {
        self.class_solo & SOLO != 0
    }

    fn set_solo(&mut self, solo: bool) {
        self.class_solo = (self.class_solo & !SOLO) | if solo { SOLO } else { 0 };
    }
}

impl DecimalChunk {
    fn new(scale: u8) -> DecimalChunk {
        let mut c = DecimalChunk::default();
        c.scale = scale;
        c
    }

    /// Whether the timestamps are in a shared column.
    pub fn is_shared(&self) -> bool {
        matches!(self.times, Times::Shared { .. })
    }

    /// First timestamp; 0 while empty.
    fn first_t(&self) -> i64 {
        match &self.times {
            _ if self.count == 0 => 0,
            Times::Shared { col, start, .. } => col.get(*start as usize),
            // The stream's first 64 bits.
            Times::Own { .. } => i64::from_be_bytes(self.buf()[..8].try_into().expect("8 bytes")),
        }
    }

    /// Last timestamp; 0 while empty.
    fn last_t(&self) -> i64 {
        match &self.times {
            _ if self.count == 0 => 0,
            Times::Shared { col, start, .. } => {
                col.get(*start as usize + usize::from(self.count) - 1)
            }
            Times::Own { last_t, .. } => *last_t,
        }
    }

    /// Whether the chunk cannot take another sample in its column.
    fn column_full(&self) -> bool {
        match &self.times {
            Times::Shared { start, .. } => *start as usize + usize::from(self.count) >= COLUMN_CAP,
            Times::Own { .. } => false,
        }
    }

    /// The bytes of the stream: `ceil(bits / 8)`.
    fn stream(&self) -> &[u8] {
        &self.buf()[..self.bits.div_ceil(8) as usize]
    }

    /// For an empty chunk: takes its timestamps from a column of `cols`
    /// starting at (or holding) `t`, or codes them itself.
    fn choose_times(&mut self, t: i64, cols: &Columns) {
        debug_assert_eq!(self.count, 0);
        self.times = match cols.join(t, self.solo()) {
            Some((col, start)) => Times::Shared {
                col,
                start: start as u32,
                adapt_m: Adapt::START,
            },
            None => Times::OWN,
        };
    }

    /// For a chunk on a column: makes sure the column holds `t` in the
    /// chunk's next slot (putting it there, or moving to a column that
    /// does, see [`Columns::rejoin`]); `false` if no column will.
    fn claim(&mut self, t: i64, cols: &Columns) -> bool {
        let Times::Shared { col, start, .. } = &mut self.times else {
            return true;
        };
        let i = *start as usize + usize::from(self.count);
        let claim = match col.claim(i, t) {
            Claim::Mismatch => {
                let ts = col.slice(*start as usize, i);
                let Some((other, at)) = cols.rejoin(&ts, t) else {
                    return false;
                };
                let claim = other.claim(at + ts.len(), t);
                (*col, *start) = (other, at as u32);
                claim
            }
            // Alone on the column: the others that joined it shared those
            // timestamps by chance, or none came within LONE_SAMPLES (not
            // sooner: a request may carry several samples of a series
            // before the rest of its target joins). Its own timestamps
            // cost less.
            Claim::Pushed
                if self.count >= 2
                    && Arc::strong_count(col) == 1
                    && (col.joined() || usize::from(self.count) >= LONE_SAMPLES) =>
            {
                return false;
            }
            claim => claim,
        };
        match claim {
            Claim::Found => true,
            Claim::Pushed => {
                cols.pushed(col, *start as usize + usize::from(self.count), t);
                true
            }
            Claim::Mismatch => false,
        }
    }

    /// The same samples with their timestamps in the stream (`None` only
    /// if a value no longer fits the scale, which cannot happen).
    fn with_own_times(&self) -> Option<DecimalChunk> {
        self.recoded(DecimalChunk::new(self.scale), usize::from(self.count))
    }

    /// `out` (empty: its scale and timestamp source set) with this chunk's
    /// samples appended, if all fit; `extra` bytes reserved beyond this
    /// chunk's stream.
    fn recoded(&self, mut out: DecimalChunk, extra: usize) -> Option<DecimalChunk> {
        out.set_solo(self.solo());
        out.grow(self.stream().len() + extra);
        for s in self.iter() {
            if !out.try_append(s.t, s.v) {
                return None;
            }
        }
        Some(out)
    }

    /// Appends `(t, v)` if `v` is decimal at this chunk's scale and the
    /// chunk has room for another sample; `false` (and nothing changed)
    /// otherwise. `t` must be above the last one, and for a chunk on a
    /// column, in its next slot ([`DecimalChunk::claim`]).
    fn try_append(&mut self, t: i64, v: f64) -> bool {
        if self.count == u16::MAX {
            return false;
        }
        let Some(m) = encode(v, self.scale) else {
            return false;
        };
        match self.times {
            Times::Own {
                adapt_t,
                adapt_m,
                last_t,
                last_dt,
            } => self.append_own(t, m, adapt_t, adapt_m, last_t, last_dt),
            Times::Shared { adapt_m, .. } => self.append_value(m, adapt_m),
        }
        self.last_m = m;
        self.count += 1;
        true
    }

    /// Every [`REPACK_EVERY`] samples, moves the buffer to a fresh block of
    /// the same size class. Live appends only: chunks rebuilt in one go
    /// (checkpoint loads, conversions) are not left behind by others.
    fn repack_if_due(&mut self) {
        if self.count.is_multiple_of(REPACK_EVERY) {
            self.repack();
        }
    }

    #[cold]
    fn repack(&mut self) {
        let n = class_bytes(self.class_solo & !SOLO);
        if n == 0 {
            return;
        }
        // The new block is taken before the old one is given back, so it
        // is not the same block.
        let mut fresh = Vec::with_capacity(n);
        fresh.extend_from_slice(self.buf());
        self.put_buf(fresh);
    }

    /// Codes `t` and `m` into the stream (timestamps of its own).
    #[inline(always)]
    fn append_own(
        &mut self,
        t: i64,
        m: i64,
        adapt_t: Adapt,
        adapt_m: Adapt,
        last_t: i64,
        last_dt: i64,
    ) {
        let (adapt_t, adapt_m, dt) = if self.count == 0 {
            self.write_u64(t as u64);
            self.write_u64(m as u64);
            self.last_dm = 0;
            (Adapt::START, Adapt::START, 0)
        } else {
            let dt = t.wrapping_sub(last_t);
            let dm = m.wrapping_sub(self.last_m);
            let (dod_t, dod_m) = (dt.wrapping_sub(last_dt), dm.wrapping_sub(self.last_dm));
            self.last_dm = dm;
            if self.count == 1 {
                self.write_bucket(dod_t);
                self.write_bucket(dod_m);
                (adapt_t, adapt_m, dt)
            } else {
                // Both codes in one write when they fit (they mostly do).
                let (code_t, next_t) = adaptive_code(dod_t, adapt_t);
                let (code_m, next_m) = adaptive_code(dod_m, adapt_m);
                match (code_t, code_m) {
                    (Some((bits_t, nt)), Some((bits_m, nm))) if nt + nm <= 56 => {
                        self.write_bits(bits_t << nm | bits_m, nt + nm);
                    }
                    _ => {
                        self.write_code(dod_t, adapt_t, code_t);
                        self.write_code(dod_m, adapt_m, code_m);
                    }
                }
                (next_t, next_m, dt)
            }
        };
        self.times = Times::Own {
            adapt_t,
            adapt_m,
            last_t: t,
            last_dt: dt,
        };
    }

    /// Codes `m` into the stream (timestamps in a column).
    #[inline(always)]
    fn append_value(&mut self, m: i64, adapt_m: Adapt) {
        if self.count == 0 {
            self.write_u64(m as u64);
            self.last_dm = 0;
            self.times.set_adapt_m(Adapt::START);
            return;
        }
        let dm = m.wrapping_sub(self.last_m);
        let dod_m = dm.wrapping_sub(self.last_dm);
        if self.count == 1 {
            self.write_bucket(dod_m);
        } else {
            let (code, next) = adaptive_code(dod_m, adapt_m);
            self.write_code(dod_m, adapt_m, code);
            self.times.set_adapt_m(next);
        }
        self.last_dm = dm;
    }

    fn write_bucket(&mut self, d: i64) {
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
        self.write_u64(d as u64);
    }

    /// Writes what [`adaptive_code`] gave for `d` in state `s`.
    #[inline(always)]
    fn write_code(&mut self, d: i64, s: Adapt, code: Option<(u64, u32)>) {
        match code {
            Some((bits, n)) => self.write_bits(bits, n),
            None => {
                // The zero flag's '1', the escape's ones, the bucket code.
                let flag = u32::from(s.zero());
                self.write_bits((1 << (RICE_ESCAPE + flag)) - 1, RICE_ESCAPE + flag);
                self.write_bucket(d);
            }
        }
    }

    /// Writes all 64 bits of `value`, most significant first.
    #[inline(always)]
    fn write_u64(&mut self, value: u64) {
        self.write_bits(value >> 32, 32);
        self.write_bits(value & 0xffff_ffff, 32);
    }

    /// Writes the low `n` bits of `value` (1 <= n <= 56; higher bits zero):
    /// one 8-byte store over the last partial byte and the zeros after it,
    /// or, within 8 bytes of the buffer's end, a store of the bytes the
    /// bits reach.
    #[inline(always)]
    fn write_bits(&mut self, value: u64, n: u32) {
        debug_assert!((1..=56).contains(&n) && value >> n == 0);
        let at = (self.bits / 8) as usize;
        let shift = self.bits % 8;
        let Some(dst) = self.buf_mut().get_mut(at..at + WORD) else {
            self.write_bits_at_end(value, n);
            return;
        };
        let dst: &mut [u8; WORD] = dst.try_into().expect("8 bytes");
        // Bits past the stream are zero, so the partial byte can be or'ed.
        let word = (value << (64 - n)) >> shift | u64::from(dst[0]) << 56;
        *dst = word.to_be_bytes();
        self.bits += n;
    }

    /// [`Self::write_bits`] within 8 bytes of the buffer's end: the buffer
    /// grows only when the bits do not fit, so appends leave an open chunk
    /// no more spare room than its size class (the 8 bytes a word store
    /// needs were 8 bytes more in every series). Not rare: a slowly
    /// growing stream spends a good part of its appends here.
    #[inline(never)]
    fn write_bits_at_end(&mut self, value: u64, n: u32) {
        let at = (self.bits / 8) as usize;
        let end = (self.bits + n).div_ceil(8) as usize;
        if self.buf().len() < end {
            self.grow(end);
        }
        let word = ((value << (64 - n)) >> (self.bits % 8)).to_be_bytes();
        for (d, w) in self.buf_mut()[at..end].iter_mut().zip(word) {
            *d |= w;
        }
        self.bits += n;
    }

    /// Grows `buf` to the allocator size class holding `need` bytes (see
    /// `chunk::grow`: one class step spare at most).
    #[cold]
    fn grow(&mut self, need: usize) {
        let cap = size_class(need);
        let mut v = self.take_buf();
        v.reserve_exact(cap - v.len());
        v.resize(cap, 0);
        self.put_buf(v);
    }

    /// Releases the spare room (for chunks that are complete) down to the
    /// size class of the stream.
    fn shrink_to_fit(&mut self) {
        let used = self.stream().len();
        if size_class(used.max(1)) < self.buf().len() {
            let mut v = self.take_buf();
            v.truncate(used);
            self.put_buf(v);
        }
    }

    /// Appends the samples in `[mint, maxt]` to `out`. With timestamps on a
    /// column, the slots in range are found there first: the values before
    /// them are only decoded, and decoding stops after the last.
    fn read_range(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let mut it = self.iter();
        let Some((col, start)) = it.col else {
            for s in it {
                if s.t > maxt {
                    break;
                }
                if s.t >= mint {
                    out.push(s);
                }
            }
            return;
        };
        let slots = start..start + usize::from(self.count);
        let slot = |t| col.first_at_or_after(slots.clone(), t) - start;
        let first = slot(mint);
        let end = maxt.checked_add(1).map_or(slots.len(), slot);
        if first >= end {
            return;
        }
        it.skip_values(first);
        out.reserve(end - first);
        out.extend((first..end).map(|_| it.next_shared(col, start)));
    }

    /// The decoding `r` stopped, going on over this chunk as it is now;
    /// `None` if the chunk was re-coded since or holds fewer samples.
    fn iter_from(&self, r: &Resume) -> Option<DecimalIter<'_>> {
        let mut it = self.iter();
        if r.coding != (self.scale, self.is_shared()) || r.at.index > it.count {
            return None;
        }
        it.bits.pos = r.pos;
        it.at = r.at;
        Some(it)
    }

    fn iter(&self) -> DecimalIter<'_> {
        DecimalIter {
            bits: BitReader::new(self.stream()),
            count: u32::from(self.count),
            scale: self.scale,
            at: DecodeAt::START,
            col: match &self.times {
                Times::Shared { col, start, .. } => Some((col, *start as usize)),
                Times::Own { .. } => None,
            },
        }
    }

    /// The same samples at scale `k` (> the current one), if all fit.
    fn rescaled(&self, k: u8) -> Option<DecimalChunk> {
        let mut out = DecimalChunk::new(k);
        if let Times::Shared { col, start, .. } = &self.times {
            out.times = Times::Shared {
                col: Arc::clone(col),
                start: *start,
                adapt_m: Adapt::START,
            };
        }
        self.recoded(out, 0)
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
    /// The adaptive-code states of the timestamp and mantissa streams,
    /// packed as described in [`DecimalChunk::raw_parts`].
    pub adapt: [u32; 2],
}

impl DecimalChunk {
    /// The stream and append state. `adapt` packs each stream's state of
    /// the adaptive code (module documentation) into a `u32`: the sum `a`
    /// in bits 0–25, the count `n` (1–31) in bits 26–30, the zero flag in
    /// bit 31. `None` for a chunk whose timestamps are in a column (see
    /// [`DecimalChunk::shared_parts`]).
    pub fn raw_parts(&self) -> Option<DecimalParts<'_>> {
        let Times::Own {
            adapt_t,
            adapt_m,
            last_t,
            last_dt,
        } = self.times
        else {
            return None;
        };
        Some(DecimalParts {
            buf: self.stream(),
            bits: u64::from(self.bits),
            count: u32::from(self.count),
            scale: self.scale,
            first_t: self.first_t(),
            last_t,
            last_dt,
            last_m: self.last_m,
            last_dm: self.last_dm,
            adapt: [adapt_t.bits(), adapt_m.bits()],
        })
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
        if !consistent {
            return None;
        }
        let (adapt_t, adapt_m) = (Adapt::from_bits(p.adapt[0])?, Adapt::from_bits(p.adapt[1])?);
        let mut c = DecimalChunk {
            buf: NonNull::dangling(),
            bits: u32::try_from(p.bits).ok()?,
            count: u16::try_from(p.count).ok()?,
            scale: p.scale,
            class_solo: 0,
            times: Times::Own {
                adapt_t,
                adapt_m,
                last_t: p.last_t,
                last_dt: p.last_dt,
            },
            last_m: p.last_m,
            last_dm: p.last_dm,
        };
        c.put_buf(stream_copy(p.buf, p.bits));
        // The adaptive code starts at the third sample, in its start state.
        let fresh = p.count > 2 || (adapt_t == Adapt::START && adapt_m == Adapt::START);
        (fresh && (p.count == 0 || c.first_t() == p.first_t)).then_some(c)
    }

    /// Rebuilds a chunk from the parts of one coded entirely in the bucket
    /// code (the coding before the adaptive one, as in head checkpoints
    /// written then; `adapt` ignored): decodes it, codes the samples
    /// again, and checks that the append state matches the parts'.
    pub fn from_bucket_coded_parts(p: &DecimalParts<'_>) -> Option<DecimalChunk> {
        if p.scale > MAX_SCALE || p.bits.div_ceil(8) != p.buf.len() as u64 {
            return None;
        }
        let mut r = BitReader::new(p.buf);
        let mut c = DecimalChunk::new(p.scale);
        let (mut t, mut dt, mut m, mut dm) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..p.count {
            if i == 0 {
                t = r.read_wide(64) as i64;
                m = r.read_wide(64) as i64;
            } else {
                dt = dt.wrapping_add(r.read_bucket());
                dm = dm.wrapping_add(r.read_bucket());
                t = t.wrapping_add(dt);
                m = m.wrapping_add(dm);
            }
            if r.pos as u64 > p.bits || !c.try_append(t, decode(m, p.scale)) {
                return None;
            }
        }
        // Every sample appended (else `None` above): the counts agree.
        let Times::Own {
            last_t, last_dt, ..
        } = c.times
        else {
            unreachable!("a chunk made by `new` codes its own timestamps")
        };
        let same = r.pos as u64 == p.bits
            && (p.count == 0
                || (c.first_t() == p.first_t
                    && (last_t, last_dt, c.last_m, c.last_dm)
                        == (p.last_t, p.last_dt, p.last_m, p.last_dm)));
        same.then_some(c)
    }
}

/// A restored chunk's stream: `buf` (`ceil(bits / 8)` bytes) with the bits
/// past the stream cleared, as appends into the last byte rely on.
fn stream_copy(buf: &[u8], bits: u64) -> Vec<u8> {
    let mut buf = buf.to_vec();
    if let Some(last) = buf.last_mut()
        && !bits.is_multiple_of(8)
    {
        *last &= 0xffu8 << (8 - bits % 8);
    }
    buf
}

/// A decimal chunk whose timestamps are in a column: its value stream and
/// append state, for head checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct SharedParts<'a> {
    /// The chunk's timestamps are slots `start..start + count` of `col`.
    pub col: &'a Arc<TimeColumn>,
    pub start: u32,
    /// The value stream (`ceil(bits / 8)` bytes): the mantissas' code of
    /// the module documentation, without timestamps.
    pub buf: &'a [u8],
    pub bits: u64,
    pub count: u32,
    pub scale: u8,
    pub last_m: i64,
    pub last_dm: i64,
    /// The mantissa stream's adaptive-code state, packed as in
    /// [`DecimalChunk::raw_parts`].
    pub adapt_m: u32,
}

impl DecimalChunk {
    /// The parts of a non-empty chunk whose timestamps are in a column;
    /// `None` for one that codes its own (see [`DecimalChunk::raw_parts`]).
    pub fn shared_parts(&self) -> Option<SharedParts<'_>> {
        let Times::Shared {
            col,
            start,
            adapt_m,
        } = &self.times
        else {
            return None;
        };
        (self.count > 0).then(|| SharedParts {
            col,
            start: *start,
            buf: self.stream(),
            bits: u64::from(self.bits),
            count: u32::from(self.count),
            scale: self.scale,
            last_m: self.last_m,
            last_dm: self.last_dm,
            adapt_m: adapt_m.bits(),
        })
    }

    /// Rebuilds a chunk from [`DecimalChunk::shared_parts`] on their
    /// column (which must hold the chunk's slots) without decoding it;
    /// `None` if the parts break what appending and reading rely on.
    pub fn from_shared_parts(p: &SharedParts<'_>) -> Option<DecimalChunk> {
        let col = p.col;
        let end = u64::from(p.start) + u64::from(p.count);
        let consistent = p.scale <= MAX_SCALE
            && p.count > 0
            && end <= col.len() as u64
            && p.bits.div_ceil(8) == p.buf.len() as u64
            && p.bits >= 64 + u64::from(p.count - 1);
        if !consistent {
            return None;
        }
        let adapt_m = Adapt::from_bits(p.adapt_m)?;
        // The adaptive code starts at the third sample, in its start state.
        if p.count <= 2 && adapt_m != Adapt::START {
            return None;
        }
        let mut c = DecimalChunk {
            buf: NonNull::dangling(),
            bits: u32::try_from(p.bits).ok()?,
            count: u16::try_from(p.count).ok()?,
            scale: p.scale,
            class_solo: 0,
            times: Times::Shared {
                col: Arc::clone(col),
                start: p.start,
                adapt_m,
            },
            last_m: p.last_m,
            last_dm: p.last_dm,
        };
        c.put_buf(stream_copy(p.buf, p.bits));
        Some(c)
    }
}

/// The decimal chunk's codes, read with the head chunks' bit reader (past
/// the end, only in a damaged restored chunk, it reads zeros).
impl BitReader<'_> {
    fn read_bucket(&mut self) -> i64 {
        // The prefix is at most 6 bits: its leading ones say which bucket.
        let ones = (!self.peek()).leading_zeros().min(6);
        if ones == 0 {
            self.pos += 1;
            return 0;
        }
        if ones == 6 {
            self.pos += 6;
            return self.read_wide(64) as i64;
        }
        let width = BUCKETS[ones as usize - 1].1;
        self.pos += ones as usize + 1;
        let raw = self.read(width);
        // Sign-extend from `width` bits.
        let shift = 64 - width;
        ((raw << shift) as i64) >> shift
    }

    /// Reads a value written with state `s`; returns it and the next state.
    #[inline(always)]
    fn read_adaptive(&mut self, s: Adapt) -> (i64, Adapt) {
        let mut w = self.peek();
        let zero = s.zero();
        if zero {
            self.pos += 1;
            if w >> 63 == 0 {
                return (0, s);
            }
            w <<= 1;
        }
        let q = (!w).leading_zeros();
        if q >= RICE_ESCAPE {
            self.pos += RICE_ESCAPE as usize;
            let d = self.read_bucket();
            // Wrapping: a damaged stream may escape to a zero after the flag.
            let u = zigzag(d).wrapping_sub(u64::from(zero));
            return (d, s.after(d, u));
        }
        let k = s.k();
        // q + 1 + k <= 50 bits, within the 56 or more left in `w`.
        let low = if k == 0 {
            0
        } else {
            (w << (q + 1)) >> (64 - k)
        };
        self.pos += (q + 1 + k) as usize;
        let u = (u64::from(q) << k) | low;
        let d = unzigzag(u + u64::from(zero));
        (d, s.after(d, u))
    }
}

/// Decodes a [`DecimalChunk`] front to back.
pub struct DecimalIter<'a> {
    bits: BitReader<'a>,
    count: u32,
    scale: u8,
    at: DecodeAt,
    /// The column and first slot of a chunk whose timestamps are there.
    col: Option<(&'a TimeColumn, usize)>,
}

/// Where a decoding stands besides its position in the stream: the next
/// sample's index, the last timestamp and mantissa with their deltas, and
/// both streams' code states.
#[derive(Debug, Clone, Copy)]
struct DecodeAt {
    index: u32,
    t: i64,
    dt: i64,
    m: i64,
    dm: i64,
    adapt_t: Adapt,
    adapt_m: Adapt,
}

impl DecodeAt {
    const START: DecodeAt = DecodeAt {
        index: 0,
        t: 0,
        dt: 0,
        m: 0,
        dm: 0,
        adapt_t: Adapt::START,
        adapt_m: Adapt::START,
    };
}

/// Where a decoding of a decimal chunk stopped, to go on from once the
/// chunk holds more samples ([`HeadChunk::decode_rest`]). It stays good
/// while the chunk keeps the coding it was taken under: appends only add
/// bits, and a chunk re-codes only to a larger scale or from a column to
/// timestamps of its own, never back, so an equal coding is the same one.
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    /// The chunk's scale and whether its timestamps were on a column.
    coding: (u8, bool),
    pos: usize,
    at: DecodeAt,
}

impl DecimalIter<'_> {
    /// Where this decoding stands.
    fn resume(&self) -> Resume {
        Resume {
            coding: (self.scale, self.col.is_some()),
            pos: self.bits.pos,
            at: self.at,
        }
    }

    /// Decodes the next value of a stream without timestamps into
    /// `at.m` (the caller advances `at.index`).
    #[inline]
    fn next_mantissa(&mut self) {
        match self.at.index {
            0 => self.at.m = self.bits.read_wide(64) as i64,
            1 => {
                self.at.dm = self.bits.read_bucket();
                self.at.m = self.at.m.wrapping_add(self.at.dm);
            }
            _ => {
                let (dod_m, next_m) = self.bits.read_adaptive(self.at.adapt_m);
                self.at.adapt_m = next_m;
                self.at.dm = self.at.dm.wrapping_add(dod_m);
                self.at.m = self.at.m.wrapping_add(self.at.dm);
            }
        }
    }

    /// Decodes the next `n` values of a stream without timestamps (at
    /// most those left) without yielding them.
    fn skip_values(&mut self, n: usize) {
        let end = self.at.index.saturating_add(n as u32).min(self.count);
        while self.at.index < end {
            self.next_mantissa();
            self.at.index += 1;
        }
    }

    /// The next value of a stream without timestamps, with its timestamp
    /// from slot `start + index` of `col`.
    #[inline]
    fn next_shared(&mut self, col: &TimeColumn, start: usize) -> Sample {
        self.next_mantissa();
        let t = col.get(start + self.at.index as usize);
        self.at.index += 1;
        Sample::new(t, decode(self.at.m, self.scale))
    }
}

impl Iterator for DecimalIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.at.index >= self.count {
            return None;
        }
        if let Some((col, start)) = self.col {
            return Some(self.next_shared(col, start));
        }
        match self.at.index {
            0 => {
                self.at.t = self.bits.read_wide(64) as i64;
                self.at.m = self.bits.read_wide(64) as i64;
            }
            1 => {
                self.at.dt = self.bits.read_bucket();
                self.at.dm = self.bits.read_bucket();
            }
            _ => {
                let (dod_t, next_t) = self.bits.read_adaptive(self.at.adapt_t);
                let (dod_m, next_m) = self.bits.read_adaptive(self.at.adapt_m);
                self.at.adapt_t = next_t;
                self.at.adapt_m = next_m;
                self.at.dt = self.at.dt.wrapping_add(dod_t);
                self.at.dm = self.at.dm.wrapping_add(dod_m);
            }
        }
        if self.at.index > 0 {
            self.at.t = self.at.t.wrapping_add(self.at.dt);
            self.at.m = self.at.m.wrapping_add(self.at.dm);
        }
        self.at.index += 1;
        Some(Sample::new(self.at.t, decode(self.at.m, self.scale)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.count - self.at.index) as usize;
        (n, Some(n))
    }
}

/// An in-order head chunk: decimal while every value allows it.
#[derive(Debug, Clone)]
pub enum HeadChunk {
    Decimal(DecimalChunk),
    /// Boxed: few series need it, and inline it would make every series'
    /// open chunk 16 bytes larger.
    Xor(Box<XorChunk>),
}

impl Default for HeadChunk {
    fn default() -> Self {
        HeadChunk::Decimal(DecimalChunk::default())
    }
}

impl HeadChunk {
    /// An empty chunk for a series whose previous chunk found too few
    /// others on its column (see [`DecimalChunk::class_solo`]).
    pub fn solo() -> HeadChunk {
        let mut c = DecimalChunk::default();
        c.set_solo(true);
        HeadChunk::Decimal(c)
    }

    /// Appends `(t, v)` with the timestamps in the chunk; `t` must be
    /// above the last timestamp.
    pub fn append(&mut self, t: i64, v: f64) {
        self.append_in(t, v, None);
    }

    /// Appends `(t, v)`; `t` must be above the last timestamp. With
    /// `cols`, a decimal chunk takes its timestamps from a column shared
    /// with the other series of its target when it can.
    pub fn append_in(&mut self, t: i64, v: f64, cols: Option<&Columns>) {
        match self {
            HeadChunk::Xor(c) => c.append(t, v),
            HeadChunk::Decimal(c) => {
                if c.count == 0 {
                    match min_scale(v) {
                        Some(k) => c.scale = k,
                        None => {
                            let mut x = XorChunk::new();
                            x.append(t, v);
                            *self = HeadChunk::Xor(Box::new(x));
                            return;
                        }
                    }
                    if let Some(cols) = cols {
                        c.choose_times(t, cols);
                    }
                }
                // Off its column and unable to code its own timestamps
                // (cannot happen): XOR below.
                let mut stuck = false;
                if c.is_shared() && !cols.is_some_and(|cols| c.claim(t, cols)) {
                    // No column takes `t`: the chunk codes its timestamps
                    // from now on.
                    match c.with_own_times() {
                        Some(own) => *c = own,
                        None => stuck = true,
                    }
                }
                if !stuck && c.try_append(t, v) {
                    c.repack_if_due();
                    return;
                }
                // More digits than the current scale: rescale if the value
                // is decimal at all and everything fits, else go XOR.
                if !stuck
                    && let Some(k) = min_scale(v).filter(|&k| k > c.scale)
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
                *self = HeadChunk::Xor(Box::new(x));
            }
        }
    }

    /// Whether the chunk must be sealed before the next append: its
    /// column is full.
    pub fn column_full(&self) -> bool {
        matches!(self, HeadChunk::Decimal(c) if c.column_full())
    }

    /// Whether this is a solo series' chunk coding its own timestamps
    /// (see [`HeadChunk::solo`]).
    pub fn is_solo(&self) -> bool {
        matches!(self, HeadChunk::Decimal(c) if c.solo() && !c.is_shared())
    }

    /// Whether the timestamps are in a column shared with other chunks.
    pub fn is_shared(&self) -> bool {
        matches!(self, HeadChunk::Decimal(c) if c.is_shared())
    }

    /// Chunks holding this one's column, this one included (0 if it has
    /// none).
    pub fn column_holders(&self) -> usize {
        match self {
            HeadChunk::Decimal(DecimalChunk {
                times: Times::Shared { col, .. },
                ..
            }) => Arc::strong_count(col),
            _ => 0,
        }
    }

    /// The same samples with their timestamps in the chunk itself (a
    /// clone if they are already), marked [`HeadChunk::solo`] if `solo`.
    pub fn with_own_times(&self, solo: bool) -> HeadChunk {
        let mut out = match self {
            HeadChunk::Decimal(c) if c.is_shared() => match c.with_own_times() {
                Some(own) => HeadChunk::Decimal(own),
                None => {
                    let mut x = XorChunk::new();
                    for s in c.iter() {
                        x.append(s.t, s.v);
                    }
                    HeadChunk::Xor(Box::new(x))
                }
            },
            other => other.clone(),
        };
        if let HeadChunk::Decimal(c) = &mut out {
            c.set_solo(solo);
        }
        out
    }

    pub fn len(&self) -> usize {
        match self {
            HeadChunk::Decimal(c) => usize::from(c.count),
            HeadChunk::Xor(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// First timestamp; only meaningful when not empty.
    pub fn min_t(&self) -> i64 {
        match self {
            HeadChunk::Decimal(c) => c.first_t(),
            HeadChunk::Xor(c) => c.min_t(),
        }
    }

    /// Last timestamp; only meaningful when not empty.
    pub fn max_t(&self) -> i64 {
        match self {
            HeadChunk::Decimal(c) => c.last_t(),
            HeadChunk::Xor(c) => c.max_t(),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = Sample> + '_> {
        match self {
            HeadChunk::Decimal(c) => Box::new(c.iter()),
            HeadChunk::Xor(c) => Box::new(c.iter()),
        }
    }

    /// Appends the samples after the first `done` to `out`, going on from
    /// `resume` (where a decoding of the first `done` stopped) when it is
    /// still good, else decoding from the start. Returns where this
    /// decoding stopped (for decimal chunks).
    pub fn decode_rest(
        &self,
        done: usize,
        resume: Option<&Resume>,
        out: &mut Vec<Sample>,
    ) -> Option<Resume> {
        out.reserve(self.len().saturating_sub(done));
        match self {
            HeadChunk::Xor(c) => {
                out.extend(c.iter().skip(done));
                None
            }
            HeadChunk::Decimal(c) => {
                let resumed = resume
                    .filter(|r| r.at.index as usize == done)
                    .and_then(|r| c.iter_from(r));
                let mut it = resumed.unwrap_or_else(|| {
                    let mut it = c.iter();
                    if it.col.is_some() {
                        it.skip_values(done);
                    } else {
                        it.by_ref().take(done).for_each(drop);
                    }
                    it
                });
                out.extend(&mut it);
                Some(it.resume())
            }
        }
    }

    /// Appends the samples in `[mint, maxt]` to `out`.
    pub fn read_range(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        match self {
            HeadChunk::Xor(c) => c.read_range(mint, maxt, out),
            HeadChunk::Decimal(c) => c.read_range(mint, maxt, out),
        }
    }

    pub fn shrink_to_fit(&mut self) {
        match self {
            HeadChunk::Decimal(c) => c.shrink_to_fit(),
            HeadChunk::Xor(c) => c.shrink_to_fit(),
        }
    }

    /// Heap bytes held (the enum itself not included), with a column's
    /// bytes shared out among the chunks that hold it.
    pub fn memory_bytes(&self) -> usize {
        match self {
            HeadChunk::Decimal(c) => {
                c.buf().len()
                    + match &c.times {
                        Times::Shared { col, .. } => TimeColumn::BYTES / Arc::strong_count(col),
                        Times::Own { .. } => 0,
                    }
            }
            // The box holds the whole chunk: its append state and `Vec`.
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
        assert_ranges_read(&c, &want);
        assert_eq!(c.len(), samples.len());
        if let (Some(f), Some(l)) = (samples.first(), samples.last()) {
            assert_eq!((c.min_t(), c.max_t()), (f.0, l.0));
        }
        c
    }

    #[test]
    fn class_codes_name_every_size_class() {
        assert_eq!(class_bytes(0), 0);
        let mut codes = std::collections::BTreeSet::new();
        for n in 1..100_000 {
            let c = size_class(n);
            let code = class_code(c);
            assert!(code > 0 && code < SOLO, "{n}: code {code}");
            assert_eq!(class_bytes(code), c, "{n}");
            codes.insert(code);
        }
        // Consecutive: no class without its code.
        assert_eq!(codes.len(), usize::from(*codes.last().unwrap()));
    }

    #[test]
    fn a_repacked_buffer_moves_and_keeps_every_sample() {
        let mut c = HeadChunk::solo();
        let mut want = Vec::new();
        for i in 0..2_000i64 {
            let buf = |c: &HeadChunk| match c {
                HeadChunk::Decimal(d) => (d.buf.as_ptr(), d.buf().len(), d.count),
                HeadChunk::Xor(_) => panic!("decimal values went to XOR"),
            };
            let before = buf(&c);
            let v = ((i * 7919) % 1000) as f64 / 100.0;
            c.append(15_000 * i + i % 3, v);
            want.push((15_000 * i + i % 3, v));
            let (ptr, len, count) = buf(&c);
            if count.is_multiple_of(REPACK_EVERY) && len == before.1 {
                assert_ne!(ptr, before.0, "sample {i}: buffer not moved");
            }
            if count.is_multiple_of(REPACK_EVERY) || i < 100 {
                let got: Vec<_> = c.iter().map(|s| (s.t, s.v)).collect();
                assert_eq!(got, want, "after {count} samples");
            }
        }
    }

    #[test]
    fn chunks_take_56_bytes_and_clone_their_buffer() {
        assert_eq!(std::mem::size_of::<HeadChunk>(), 56);
        let mut c = HeadChunk::solo();
        for i in 0..100 {
            c.append(1000 * i, i as f64 / 4.0);
        }
        let d = c.clone();
        drop(c);
        assert!(d.is_solo());
        assert_eq!(d.iter().count(), 100);
        assert_eq!(d.iter().last().map(|s| s.v), Some(99.0 / 4.0));
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
        let HeadChunk::Decimal(d) = &c else {
            unreachable!("decimal, checked above")
        };
        // The coding; the buffer is this rounded up to a size class.
        let per_sample = d.stream().len() as f64 / samples.len() as f64;
        // 2.5 in the bucket code alone.
        assert!(per_sample < 1.8, "{per_sample} bytes/sample");
        assert_eq!(c.memory_bytes(), size_class(d.stream().len()));
    }

    /// Exact intervals and a constant value: after the first two samples
    /// and the third's short codes, one bit per stream and sample.
    #[test]
    fn regular_scrapes_of_a_constant_cost_two_bits_a_sample() {
        let samples: Vec<(i64, f64)> = (0..240)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42.5))
            .collect();
        let c = roundtrip(&samples);
        let HeadChunk::Decimal(d) = &c else {
            panic!("decimal")
        };
        // 128 (sample 0) + 29 + 1 (bucket code: 15,000 and 0) + 3 + 3
        // (k = 2 codes of 0) + 2 bits for each of the other 237.
        assert_eq!(d.raw_parts().unwrap().bits, 128 + 30 + 6 + 2 * 237);
    }

    /// A chunk coded in the bucket code only (as version 1 head
    /// checkpoints hold them) converts: same samples, and appends go on as
    /// in a chunk coded adaptively from the start.
    #[test]
    fn bucket_coded_chunks_convert_and_continue() {
        let samples: Vec<(i64, f64)> = (0..100i64)
            .map(|i| (1_000 + i * 15_000 + (i * 7) % 11, (i * i) as f64 / 4.0))
            .collect();
        let mut old = DecimalChunk::new(2);
        let (mut last_t, mut last_dt) = (0, 0);
        for (i, &(t, v)) in samples.iter().enumerate() {
            let m = encode(v, 2).expect("decimal");
            if i == 0 {
                old.write_u64(t as u64);
                old.write_u64(m as u64);
            } else {
                let (dt, dm) = (t - last_t, m - old.last_m);
                old.write_bucket(dt - last_dt);
                old.write_bucket(dm - old.last_dm);
                (last_dt, old.last_dm) = (dt, dm);
            }
            (last_t, old.last_m) = (t, m);
            old.count += 1;
        }
        old.times = Times::Own {
            adapt_t: Adapt::START,
            adapt_m: Adapt::START,
            last_t,
            last_dt,
        };
        let mut c =
            DecimalChunk::from_bucket_coded_parts(&old.raw_parts().unwrap()).expect("converts");
        let mut fresh = HeadChunk::default();
        for &(t, v) in &samples {
            fresh.append(t, v);
        }
        for t in [2_000_000, 2_000_014, 2_000_031] {
            assert!(c.try_append(t, 0.25));
            fresh.append(t, 0.25);
        }
        let got: Vec<Sample> = c.iter().collect();
        assert_eq!(got, fresh.iter().collect::<Vec<_>>());
        assert_eq!(got.len(), 103);
        // A damaged stream, or a state that does not match it, is refused.
        let mut parts = old.raw_parts().unwrap();
        parts.last_m += 1;
        assert!(DecimalChunk::from_bucket_coded_parts(&parts).is_none());
    }

    /// Parts whose code state could not have come from coding are refused.
    #[test]
    fn parts_with_an_impossible_state_are_refused() {
        let c = roundtrip(&[(1, 1.5), (2, 2.5)]);
        let HeadChunk::Decimal(d) = &c else {
            panic!("decimal")
        };
        let mut p = d.raw_parts().unwrap();
        assert!(DecimalChunk::from_raw_parts(&p).is_some());
        // Two samples: the adaptive code has not started.
        p.adapt[1] = Adapt::START.bits() + 1;
        assert!(DecimalChunk::from_raw_parts(&p).is_none());
        // Past the start, any state coding can reach is taken, but not a
        // count of zero.
        let c = roundtrip(&[(1, 1.5), (2, 2.5), (3, 3.5), (4, 4.0), (5, 5.5)]);
        let HeadChunk::Decimal(d) = &c else {
            panic!("decimal")
        };
        let mut p = d.raw_parts().unwrap();
        p.adapt[1] = Adapt::START.bits() + 1;
        assert!(DecimalChunk::from_raw_parts(&p).is_some());
        p.adapt[1] = 4;
        assert!(DecimalChunk::from_raw_parts(&p).is_none());
    }

    /// Appends store over the stream's last byte assuming the bits past
    /// the stream are zero: restoring clears them, so a stored buffer with
    /// stray bits there still continues exactly.
    #[test]
    fn restored_chunks_ignore_bits_past_the_stream() {
        let samples: Vec<(i64, f64)> = (0..50)
            .map(|i| (1_000 + i * 15_000 + i % 3, f64::from(i as u32 * 7 % 11)))
            .collect();
        let mut first = DecimalChunk::default();
        let mut whole = DecimalChunk::default();
        for (i, &(t, v)) in samples.iter().enumerate() {
            assert!(whole.try_append(t, v));
            if i < 25 {
                assert!(first.try_append(t, v));
            }
        }
        let p = first.raw_parts().unwrap();
        assert_ne!(p.bits % 8, 0, "the test needs a partial last byte");
        let mut dirty = p.buf.to_vec();
        *dirty.last_mut().expect("bytes") |= 0xff >> (p.bits % 8);
        let mut restored =
            DecimalChunk::from_raw_parts(&DecimalParts { buf: &dirty, ..p }).expect("parts");
        for &(t, v) in &samples[25..] {
            assert!(restored.try_append(t, v));
        }
        assert_eq!(restored.raw_parts(), whole.raw_parts());
    }

    /// A chunk restored from its parts part-way continues exactly as the
    /// original: same stream, same state.
    fn restore_and_continue(samples: &[(i64, f64)]) {
        let mut whole = HeadChunk::default();
        for &(t, v) in samples {
            whole.append(t, v);
        }
        let half = samples.len() / 2;
        let mut first = HeadChunk::default();
        for &(t, v) in &samples[..half] {
            first.append(t, v);
        }
        let mut restored = match &first {
            HeadChunk::Decimal(d) => HeadChunk::Decimal(
                DecimalChunk::from_raw_parts(&d.raw_parts().unwrap()).expect("parts"),
            ),
            HeadChunk::Xor(x) => HeadChunk::Xor(x.clone()),
        };
        for &(t, v) in &samples[half..] {
            restored.append(t, v);
        }
        let bits = |c: &HeadChunk| c.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&restored), bits(&whole));
        match (&whole, &restored) {
            (HeadChunk::Decimal(a), HeadChunk::Decimal(b)) => {
                assert_eq!(a.raw_parts(), b.raw_parts())
            }
            (a, b) => assert_eq!(a.is_decimal(), b.is_decimal()),
        }
    }

    /// An open chunk's buffer fills an allocator size class and keeps only
    /// the room its next write needs plus one class step (at most a
    /// quarter of its length; no worst-case sample reserved ahead), in
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
                    HeadChunk::Decimal(d) => (d.stream().len(), d.buf().len()),
                    HeadChunk::Xor(x) => (
                        x.bytes().len(),
                        x.memory_bytes() - std::mem::size_of::<XorChunk>(),
                    ),
                };
                let spare = cap - len;
                assert!(
                    spare <= (len / 4 + 8).max(32),
                    "xor {xor}, {} samples: {spare} spare of {cap}",
                    i + 1
                );
                assert_eq!(size_class(cap), cap, "xor {xor}, {} samples", i + 1);
                if !xor {
                    // A decimal buffer grows only when its bits do not fit.
                    assert_eq!(cap, size_class(len), "{} samples", i + 1);
                }
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

    /// Appends one scrape of a target of three series to their chunks on
    /// `cols` (and to `want`): at `t`, or, for series `i` with bit `i` of
    /// `own` set, halfway to `t + dt`, a timestamp of its own between the
    /// common ones (skipped where not above the series' last).
    fn append_step(
        chunks: &mut [HeadChunk; 3],
        want: &mut [Vec<(i64, u64)>; 3],
        cols: &Columns,
        (t, dt, own): (i64, i64, u8),
        values: [f64; 3],
    ) {
        for (i, v) in values.into_iter().enumerate() {
            let ti = if own >> i & 1 == 1 { t + dt / 2 } else { t };
            if want[i].last().is_some_and(|&(last, _)| ti <= last) {
                continue;
            }
            chunks[i].append_in(ti, v, Some(cols));
            want[i].push((ti, v.to_bits()));
        }
    }

    /// `read_range` over windows cut at, between and around the samples
    /// of `want` (the chunk's samples) gives exactly the samples inside.
    fn assert_ranges_read(c: &HeadChunk, want: &[(i64, u64)]) {
        let mut bounds = vec![i64::MIN, i64::MAX];
        for &(t, _) in want.iter().step_by(want.len() / 7 + 1).chain(want.last()) {
            bounds.extend([t, t.saturating_sub(1), t.saturating_add(1)]);
        }
        for &mint in &bounds {
            for &maxt in &bounds {
                let mut got = vec![Sample::new(7, 7.0)];
                c.read_range(mint, maxt, &mut got);
                let expected: Vec<(i64, u64)> = want
                    .iter()
                    .filter(|&&(t, _)| mint <= t && t <= maxt)
                    .copied()
                    .collect();
                assert_eq!(got[0], Sample::new(7, 7.0), "appends");
                let got: Vec<(i64, u64)> = got[1..].iter().map(|s| (s.t, s.v.to_bits())).collect();
                assert_eq!(got, expected, "[{mint}, {maxt}]");
            }
        }
    }

    /// A decoding's state is gone on from while the chunk keeps its coding
    /// (so a read decodes only what was appended since), and not once it
    /// was re-coded.
    #[test]
    fn states_are_gone_on_from_until_the_chunk_re_codes() {
        let mut c = HeadChunk::default();
        let mut want = Vec::new();
        let append = |c: &mut HeadChunk, want: &mut Vec<Sample>, k: i64, v: f64| {
            c.append(k * 15_000, v);
            want.push(Sample::new(k * 15_000, v));
        };
        for k in 0..50 {
            append(&mut c, &mut want, k, k as f64 / 100.0);
        }
        let mut done = Vec::new();
        let r = c.decode_rest(0, None, &mut done).expect("decimal");
        for k in 50..60 {
            append(&mut c, &mut want, k, k as f64 / 100.0);
        }
        let HeadChunk::Decimal(d) = &c else {
            panic!("decimal")
        };
        let rest: Vec<Sample> = d.iter_from(&r).expect("same coding").collect();
        assert_eq!(rest, want[50..]);
        // A third decimal: the chunk re-codes at a larger scale.
        append(&mut c, &mut want, 60, 0.605);
        let HeadChunk::Decimal(d) = &c else {
            panic!("decimal")
        };
        assert!(d.iter_from(&r).is_none());
        c.decode_rest(done.len(), Some(&r), &mut done);
        assert_eq!(done, want);
    }

    /// A chunk on a column reads its last sample at the largest timestamp.
    #[test]
    fn column_reads_reach_the_last_timestamp() {
        let cols = Columns::default();
        let mut target: [HeadChunk; 3] = Default::default();
        for t in [i64::MAX - 30_000, i64::MAX - 15_000, i64::MAX] {
            for c in &mut target {
                c.append_in(t, 1.5, Some(&cols));
            }
        }
        let shared = target.iter().find(|c| c.is_shared()).expect("on a column");
        let mut out = Vec::new();
        shared.read_range(i64::MAX - 15_000, i64::MAX, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn read_range_is_inclusive() {
        let c = roundtrip(&[(10, 1.5), (20, 2.5), (30, 3.5), (40, 4.5)]);
        let mut out = Vec::new();
        c.read_range(20, 30, &mut out);
        assert_eq!(out, vec![Sample::new(20, 2.5), Sample::new(30, 3.5)]);
    }

    /// Values that keep a chunk decimal for long, now and then with more
    /// digits (a rescale) or none at all (XOR).
    fn decimal() -> impl Strategy<Value = f64> {
        prop_oneof![
            40 => (0i64..100_000).prop_map(|m| m as f64 / 100.0),
            1 => (0i64..100_000).prop_map(|m| m as f64 / 10_000.0),
            1 => value(),
        ]
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

        /// Chunks of three series whose timestamps mostly agree: each reads
        /// back exactly, whether it stays on a column, moves to another or
        /// codes its own timestamps after a gap that a column cannot hold.
        #[test]
        fn chunks_on_shared_columns_round_trip_bit_exactly(
            start in any::<i64>(),
            steps in prop::collection::vec(
                (
                    prop_oneof![8 => 14_990i64..15_010, 1 => 1i64..1 << 33],
                    // Which series take a timestamp of their own (bit i).
                    prop_oneof![8 => Just(0u8), 1 => 0u8..8],
                    (value(), value(), value()),
                ),
                0..COLUMN_CAP,
            ),
        ) {
            let cols = Columns::default();
            let mut chunks = [HeadChunk::default(), HeadChunk::default(), HeadChunk::default()];
            let mut want: [Vec<(i64, u64)>; 3] = Default::default();
            let mut t = start;
            for (dt, own, (a, b, c)) in steps {
                let Some(next) = t.checked_add(dt) else { break };
                append_step(&mut chunks, &mut want, &cols, (t, dt, own), [a, b, c]);
                t = next;
            }
            for (c, w) in chunks.iter().zip(&want) {
                let got: Vec<(i64, u64)> = c.iter().map(|s| (s.t, s.v.to_bits())).collect();
                prop_assert_eq!(&got, w);
                assert_ranges_read(c, w);
                if let (Some(f), Some(l)) = (w.first(), w.last()) {
                    prop_assert_eq!((c.min_t(), c.max_t()), (f.0, l.0));
                }
                let own = c.with_own_times(false);
                prop_assert!(!own.is_shared());
                let again: Vec<(i64, u64)> = own.iter().map(|s| (s.t, s.v.to_bits())).collect();
                prop_assert_eq!(&again, w);
            }
        }

        /// A decoding taken part way, while appends go on (re-coding the
        /// chunk to a larger scale, to its own timestamps or to XOR now
        /// and then), goes on from where it stopped to exactly the
        /// samples appended since: from its state where that is still
        /// good, from the start where it is not.
        #[test]
        fn decodings_go_on_from_where_they_stopped(
            start in -1i64 << 50..1 << 50,
            steps in prop::collection::vec(
                (
                    prop_oneof![8 => 14_990i64..15_010, 1 => 1i64..1 << 33],
                    prop_oneof![8 => Just(0u8), 1 => 0u8..8],
                    (decimal(), decimal(), decimal()),
                    // Read every chunk before this step.
                    prop_oneof![3 => Just(false), 1 => Just(true)],
                ),
                0..COLUMN_CAP,
            ),
        ) {
            let cols = Columns::default();
            let mut chunks = [HeadChunk::default(), HeadChunk::default(), HeadChunk::default()];
            let mut want: [Vec<(i64, u64)>; 3] = Default::default();
            let mut read: [(Vec<Sample>, Option<Resume>); 3] = Default::default();
            let mut t = start;
            let bits = |v: &[Sample]| v.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
            for (dt, own, (a, b, c), now) in steps {
                if now {
                    for ((chunk, w), (done, resume)) in chunks.iter().zip(&want).zip(&mut read) {
                        *resume = chunk.decode_rest(done.len(), resume.as_ref(), done);
                        prop_assert_eq!(&bits(done), w);
                        prop_assert_eq!(resume.is_some(), !matches!(chunk, HeadChunk::Xor(_)));
                    }
                }
                append_step(&mut chunks, &mut want, &cols, (t, dt, own), [a, b, c]);
                t += dt;
            }
            for ((chunk, w), (done, resume)) in chunks.iter().zip(&want).zip(&mut read) {
                // A state from elsewhere is not gone on from.
                let half = done.len() / 2;
                let mut rest = Vec::new();
                chunk.decode_rest(half, resume.as_ref(), &mut rest);
                prop_assert_eq!(&bits(&rest)[..], &w[half..]);
                chunk.decode_rest(done.len(), resume.as_ref(), done);
                prop_assert_eq!(&bits(done), w);
            }
        }

        /// The adaptive code's paths: runs of zeros (one-bit flags), small
        /// jitter, spikes that escape to the bucket code, and the state
        /// restored from parts.
        #[test]
        fn adaptive_code_round_trips_runs_jitter_and_spikes(
            start in -1i64 << 50..1i64 << 50,
            steps in prop::collection::vec(
                (
                    prop_oneof![
                        4 => Just(15_000i64),
                        4 => 14_990i64..15_010,
                        1 => 1i64..1 << 40,
                    ],
                    prop_oneof![
                        4 => Just(0i64),
                        4 => -50i64..50,
                        1 => -(1i64 << 45)..1i64 << 45,
                    ],
                ),
                0..600,
            ),
            scale in 0i32..4,
        ) {
            let (mut t, mut m) = (start, 0i64);
            let mut samples = Vec::new();
            for (dt, dm) in steps {
                samples.push((t, m as f64 / 10f64.powi(scale)));
                t += dt;
                m += dm;
            }
            let c = roundtrip(&samples);
            prop_assert!(c.is_decimal());
            restore_and_continue(&samples);
        }
    }
}
