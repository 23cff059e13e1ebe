//! Block ids: 26-character, time-sortable identifiers in the ULID layout.
//!
//! An id is 128 bits: a 48-bit Unix time in milliseconds followed by 80 bits
//! of randomness, written big-endian as 26 Crockford base32 digits
//! (`0123456789ABCDEFGHJKMNPQRSTVWXYZ`; the first digit is at most `7`).
//! Ids sort by creation time as plain strings. Within one process ids are
//! strictly increasing: an id made in the same millisecond as the previous
//! one (or when the clock stepped back) is the previous one plus one.

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::Rng;

/// Length of an id in characters.
pub const ID_LEN: usize = 26;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_BITS: u32 = 80;
const RANDOM_MASK: u128 = (1 << RANDOM_BITS) - 1;

/// The last id handed out, so that ids of one process never go backwards.
static LAST: Mutex<u128> = Mutex::new(0);

/// A new id for the current wall-clock time.
pub fn new_block_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    new_block_id_at(ms)
}

/// A new id for the given millisecond timestamp (only its low 48 bits are
/// kept). Strictly greater than every id this process made before.
pub fn new_block_id_at(ms: u64) -> String {
    let random: u128 = rand::rng().random::<u128>() & RANDOM_MASK;
    let fresh = (u128::from(ms & 0xffff_ffff_ffff) << RANDOM_BITS) | random;
    let mut last = LAST.lock();
    let id = if fresh > *last {
        fresh
    } else {
        last.wrapping_add(1)
    };
    *last = id;
    encode(id)
}

fn encode(mut v: u128) -> String {
    let mut out = [0u8; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Decodes a canonical id (upper-case Crockford base32, 26 digits, first
/// digit at most `7`) into its 128-bit value; `None` for anything else.
pub fn parse_block_id(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != ID_LEN || b[0] > b'7' {
        return None;
    }
    let mut v: u128 = 0;
    for &c in b {
        let d = ALPHABET.iter().position(|&a| a == c)?;
        v = (v << 5) | d as u128;
    }
    Some(v)
}

/// The millisecond timestamp embedded in an id.
pub fn block_id_time(s: &str) -> Option<u64> {
    parse_block_id(s).map(|v| (v >> RANDOM_BITS) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_increasing() {
        let mut prev = String::new();
        for _ in 0..1000 {
            let id = new_block_id();
            assert_eq!(id.len(), ID_LEN);
            assert!(parse_block_id(&id).is_some(), "{id}");
            assert!(id > prev, "{id} <= {prev}");
            prev = id;
        }
    }

    #[test]
    fn embeds_time_and_sorts_by_time() {
        // Ids made now carry the current time.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let a = new_block_id();
        assert!(block_id_time(&a).unwrap().abs_diff(now) < 60_000);
        // An earlier clock reading still yields a larger id.
        let b = new_block_id_at(1_600_000_000_000);
        assert!(b > a);
        let c = encode(u128::from(0xffff_ffff_ffffu64) << RANDOM_BITS);
        assert_eq!(block_id_time(&c), Some(0xffff_ffff_ffff));
        assert_eq!(encode(0), "00000000000000000000000000");
        assert_eq!(encode(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(parse_block_id("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(parse_block_id("0000000000000000000000000"), None);
        assert_eq!(parse_block_id("0000000000000000000000000I"), None);
        assert_eq!(parse_block_id("0000000000000000000000000a"), None);
        assert_eq!(parse_block_id("00000000000000000000000001"), Some(1));
    }
}
