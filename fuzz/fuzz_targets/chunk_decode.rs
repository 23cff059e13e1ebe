#![no_main]
//! Fuzz target chunk_decode: the head's XOR chunk codec on untrusted bytes.
//!
//! 1. `XorChunk::from_bytes` never panics. Whatever it accepts iterates to
//!    exactly `len()` samples with strictly increasing timestamps, agrees with
//!    `min_t`/`max_t`/`last_value`/`read_range`, re-encodes to a chunk that
//!    iterates identically (bit-exact values), and takes further appends.
//! 2. The same bytes read as `(gap, value bits)` records give a sample
//!    sequence that must survive encode → bytes → decode bit-exact, also when
//!    the chunk is restored half-way and appended to.
//! 3. The same samples, with values mapped to decimals where the record's
//!    top bit is clear, through the head's in-order chunk (decimal or XOR):
//!    bit-exact, and a decimal chunk restored from its parts half-way
//!    continues to the same stream and state.
//! 4. The same samples appended to three series scraped together, whose
//!    chunks share a timestamp column (`engine::time_column`), and a fourth
//!    whose timestamps drift off now and then: each reads back bit-exact,
//!    also with its timestamps coded in.

use engine::chunk::XorChunk;
use engine::head_chunk::{DecimalChunk, HeadChunk};
use engine::time_column::Columns;
use engine::{STALE_NAN, Sample};
use libfuzzer_sys::fuzz_target;

fn bits(samples: &[Sample]) -> Vec<(i64, u64)> {
    samples.iter().map(|s| (s.t, s.v.to_bits())).collect()
}

fn encode(samples: &[Sample]) -> XorChunk {
    let mut c = XorChunk::new();
    for s in samples {
        c.append(s.t, s.v);
    }
    c
}

fn check_decode(data: &[u8]) {
    let Ok(chunk) = XorChunk::from_bytes(data) else {
        return;
    };
    assert_eq!(chunk.bytes(), data, "from_bytes keeps the bytes");
    let samples: Vec<Sample> = chunk.iter().collect();
    assert_eq!(samples.len(), chunk.len());
    assert!(
        samples.windows(2).all(|w| w[0].t < w[1].t),
        "timestamps increase"
    );
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        assert_eq!(chunk.min_t(), first.t);
        assert_eq!(chunk.max_t(), last.t);
        assert_eq!(chunk.last_value().to_bits(), last.v.to_bits());
        let mut all = Vec::new();
        chunk.read_range(i64::MIN, i64::MAX, &mut all);
        assert_eq!(bits(&all), bits(&samples));
        let mut inner = Vec::new();
        chunk.read_range(first.t.saturating_add(1), last.t, &mut inner);
        assert_eq!(bits(&inner), bits(&samples[1..]));
    }

    let re = encode(&samples);
    assert_eq!(
        bits(&re.iter().collect::<Vec<_>>()),
        bits(&samples),
        "re-encoding"
    );
    let restored = XorChunk::from_bytes(re.bytes()).expect("re-encoded chunk decodes");
    assert_eq!(bits(&restored.iter().collect::<Vec<_>>()), bits(&samples));

    // The restored append state continues the stream.
    let mut more = chunk.clone();
    let next_t = samples.last().map_or(Some(0), |s| s.t.checked_add(1));
    if let Some(t) = next_t {
        more.append(t, f64::from_bits(STALE_NAN));
        let again: Vec<Sample> = XorChunk::from_bytes(more.bytes())
            .expect("appended chunk decodes")
            .iter()
            .collect();
        assert_eq!(bits(&again[..samples.len()]), bits(&samples));
        assert_eq!(
            again.last().map(|s| (s.t, s.v.to_bits())),
            Some((t, STALE_NAN))
        );
    }
}

fn check_encode(data: &[u8]) {
    let mut samples = Vec::new();
    let mut t = i64::MIN;
    for (i, record) in data.chunks_exact(16).enumerate() {
        let (gap, value) = record.split_at(8);
        let gap = u64::from_le_bytes(gap.try_into().expect("8 bytes"));
        let value = u64::from_le_bytes(value.try_into().expect("8 bytes"));
        // The first gap places the series anywhere in the i64 range.
        t = if i == 0 {
            gap as i64
        } else {
            match t.checked_add_unsigned(gap.max(1)) {
                Some(t) => t,
                None => break,
            }
        };
        samples.push(Sample::new(t, f64::from_bits(value)));
    }
    let chunk = encode(&samples);
    assert_eq!(bits(&chunk.iter().collect::<Vec<_>>()), bits(&samples));
    let half = samples.len() / 2;
    let mut restored =
        XorChunk::from_bytes(encode(&samples[..half]).bytes()).expect("prefix decodes");
    for s in &samples[half..] {
        restored.append(s.t, s.v);
    }
    assert_eq!(restored.bytes(), chunk.bytes(), "append after restore");
    check_head_chunk(&samples);
}

fn check_head_chunk(samples: &[Sample]) {
    // Top bit clear: a decimal m / 10^k with a small mantissa step.
    let samples: Vec<Sample> = samples
        .iter()
        .map(|s| {
            let b = s.v.to_bits();
            if b >> 63 == 0 {
                let m = (b >> 8) as i32 >> (b & 15);
                Sample::new(s.t, f64::from(m) / 10f64.powi((b >> 4 & 3) as i32))
            } else {
                *s
            }
        })
        .collect();
    let head = |samples: &[Sample]| {
        let mut c = HeadChunk::default();
        for s in samples {
            c.append(s.t, s.v);
        }
        c
    };
    let whole = head(&samples);
    assert_eq!(bits(&whole.iter().collect::<Vec<_>>()), bits(&samples));
    let half = samples.len() / 2;
    if let HeadChunk::Decimal(d) = head(&samples[..half]) {
        let mut restored = HeadChunk::Decimal(
            DecimalChunk::from_raw_parts(&d.raw_parts().expect("own timestamps"))
                .expect("own parts restore"),
        );
        for s in &samples[half..] {
            restored.append(s.t, s.v);
        }
        assert_eq!(bits(&restored.iter().collect::<Vec<_>>()), bits(&samples));
        if let (HeadChunk::Decimal(a), HeadChunk::Decimal(b)) = (&whole, &restored) {
            assert_eq!(a.raw_parts(), b.raw_parts(), "append after restore");
        }
    }
    check_shared(&samples);
}

fn check_shared(samples: &[Sample]) {
    let cols = Columns::default();
    let mut chunks: [HeadChunk; 4] = Default::default();
    let mut want: [Vec<Sample>; 4] = Default::default();
    for (k, s) in samples.iter().enumerate() {
        for (i, c) in chunks.iter_mut().enumerate() {
            // Series 3 takes the timestamp before the common one at every
            // value whose low bits say so, if it is still new.
            let t = match s.t.checked_sub(1) {
                Some(t) if i == 3 && s.v.to_bits() & 3 == 1 => t,
                _ => s.t,
            };
            if want[i].last().is_some_and(|l| l.t >= t) || (k > 0 && t <= samples[k - 1].t) {
                continue;
            }
            c.append_in(t, s.v, Some(&cols));
            want[i].push(Sample::new(t, s.v));
        }
    }
    for (c, w) in chunks.iter().zip(&want) {
        assert_eq!(bits(&c.iter().collect::<Vec<_>>()), bits(w));
        let own = c.with_own_times(false);
        assert!(!own.is_shared());
        assert_eq!(bits(&own.iter().collect::<Vec<_>>()), bits(w));
    }
}

fuzz_target!(|data: &[u8]| {
    check_decode(data);
    check_encode(data);
});
