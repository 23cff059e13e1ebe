//! Series references remembered across requests.
//!
//! Senders repeat the same series in every request, byte for byte. The
//! receiver keys each remote-write 1.0 series by a 128-bit hash of its label
//! fields exactly as they came off the wire, and remembers the engine's
//! [`SeriesRef`] for it after a successful append. A later request with the
//! same bytes skips label validation, copying, hashing and the head lookup:
//! same bytes give the same labels and the same validation result (the
//! limits are fixed for the receiver's lifetime), so only the samples are
//! new. The map keeps 96 of the hash's bits (see `Key`); the head's own
//! series identity is a 128-bit hash of the labels.
//!
//! References go stale when a series leaves the head; the engine then
//! refuses the whole append ([`engine::AppendError::StaleSeriesRef`]), the
//! receiver forgets everything and retries the request by labels.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use engine::SeriesRef;
use parking_lot::Mutex;

/// Shards of the map (appenders on different cores rarely share a lock).
const SHARDS: usize = 16;

/// Entries per shard before the shard is emptied (bounds memory at about
/// 25 bytes × 16 × 262,144 = 100 MiB; a full shard refills at once).
const MAX_PER_SHARD: usize = 1 << 18;

/// One shard: wire-label hash → series reference.
type Shard = Mutex<HashMap<Key, SeriesRef, BuildHasherDefault<LowBits>>>;

/// 96 of the key's 128 bits, as three `u32`s: with its 4-byte reference an
/// entry is 16 bytes, where a `u128` (16-byte aligned) made it 32 and two
/// `u64`s 24; at a million series the map holds two million slots. Two
/// series' wire labels share 96 bits with odds of about n²/2⁹⁷: 10⁻¹⁷ at a
/// million series.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u32; 3]);

impl Key {
    fn new(key: u128) -> Key {
        Key([key as u32, (key >> 32) as u32, (key >> 64) as u32])
    }
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.0[0]) | u64::from(self.0[1]) << 32);
    }
}

/// Wire-label hash → series reference.
pub struct RefCache {
    shards: Box<[Shard]>,
}

impl Default for RefCache {
    fn default() -> Self {
        RefCache::new()
    }
}

impl RefCache {
    pub fn new() -> RefCache {
        RefCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    /// The key of a series whose label fields are `wire_labels`.
    pub fn key(wire_labels: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128(wire_labels)
    }

    fn shard(&self, key: u128) -> &Shard {
        &self.shards[(key >> 64) as usize % SHARDS]
    }

    pub fn get(&self, key: u128) -> Option<SeriesRef> {
        self.shard(key).lock().get(&Key::new(key)).copied()
    }

    /// Remembers the references an append returned for the entries whose
    /// keys are known (`keys` and `refs` are aligned).
    pub fn learn(&self, keys: &[Option<u128>], refs: &[Option<SeriesRef>]) {
        for (key, r) in keys.iter().zip(refs) {
            if let (Some(key), Some(r)) = (key, r) {
                let mut shard = self.shard(*key).lock();
                if shard.len() >= MAX_PER_SHARD {
                    shard.clear();
                }
                shard.insert(Key::new(*key), *r);
            }
        }
    }

    /// Forgets every reference.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.lock().clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hasher for keys that are already uniform hashes: their low 64 bits.
#[derive(Default)]
struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_take_16_bytes() {
        assert_eq!(std::mem::size_of::<(Key, SeriesRef)>(), 16);
    }

    #[test]
    fn keys_differ_for_different_bytes_and_learn_skips_unknowns() {
        let a = RefCache::key(b"\x0a\x08__name__");
        let b = RefCache::key(b"\x0a\x08__name_");
        assert_ne!(a, b);
        let c = RefCache::new();
        assert!(c.is_empty());
        assert_eq!(c.get(a), None);
        c.learn(&[Some(a), None, Some(b)], &[None, None, None]);
        assert!(c.is_empty(), "nothing to learn without a reference");
    }
}
