//! Series references remembered across requests.
//!
//! Senders repeat the same series in every request, byte for byte. The
//! receiver keys each remote-write 1.0 series by a 128-bit hash of its label
//! fields exactly as they came off the wire, and remembers the engine's
//! [`SeriesRef`] for it after a successful append. A later request with the
//! same bytes skips label validation, copying, hashing and the head lookup:
//! same bytes give the same labels and the same validation result (the
//! limits are fixed for the receiver's lifetime), so only the samples are
//! new. The map keeps 96 of the hash's bits (see `Key`) and picks the shard
//! by 4 more; the head's own lookups compare whole label sets.
//!
//! References go stale when a series leaves the head; the engine then
//! refuses the whole append ([`engine::AppendError::StaleSeriesRef`]), the
//! receiver forgets everything and retries the request by labels.

use engine::SeriesRef;
use parking_lot::Mutex;

/// Shards of the map (appenders on different cores rarely share a lock).
const SHARDS: usize = 16;

/// Entries per shard before the shard is emptied (bounds memory at about
/// 16 bytes × 16 × 262,144 / 0.6 = 112 MiB; a full shard refills at once).
const MAX_PER_SHARD: usize = 1 << 18;

/// A table grows when an insert would fill more than 17/20 of its slots...
const MAX_LOAD: (usize, usize) = (17, 20);
/// ...to as many slots as leave it 3/5 full. Between the two a slot holds
/// 0.6 to 0.85 entries (a doubling table with control bytes, such as
/// `std`'s `HashMap`, holds 0.44 to 0.88 per 17 bytes: at a million series
/// this table took 35 MB where this one takes 20 to 28).
const GROWN_LOAD: (usize, usize) = (3, 5);

/// 96 of the key's 128 bits, as three `u32`s: with its 4-byte reference a
/// slot is 16 bytes. Two series' wire labels share 96 bits with odds of
/// about n²/2⁹⁷: 10⁻¹⁷ at a million series.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u32; 3]);

impl Key {
    fn new(key: u128) -> Key {
        Key([key as u32, (key >> 32) as u32, (key >> 64) as u32])
    }
}

/// A slot of a [`Table`]: empty when it has no reference.
#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    r: Option<SeriesRef>,
}

const EMPTY: Slot = Slot {
    key: Key([0; 3]),
    r: None,
};

/// Open addressing with linear probing. Keys are uniform hashes, so a key's
/// first slot is its low 32 bits scaled to the table's length (any length,
/// not only powers of two: that is what lets the load stay high). Entries
/// are never removed one by one, only all at once, so probing needs no
/// tombstones.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
}

impl Table {
    fn home(&self, key: Key) -> usize {
        ((u64::from(key.0[0]) * self.slots.len() as u64) >> 32) as usize
    }

    fn get(&self, key: Key) -> Option<SeriesRef> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            match s.r {
                None => return None,
                Some(r) if s.key == key => return Some(r),
                Some(_) => {}
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }

    fn insert(&mut self, key: Key, r: SeriesRef) {
        if (self.len + 1) * MAX_LOAD.1 > self.slots.len() * MAX_LOAD.0 {
            self.grow();
        }
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            match s.r {
                None => {
                    *s = Slot { key, r: Some(r) };
                    self.len += 1;
                    return;
                }
                Some(_) if s.key == key => {
                    s.r = Some(r);
                    return;
                }
                Some(_) => {}
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }

    fn grow(&mut self) {
        let n = ((self.len + 1) * GROWN_LOAD.1 / GROWN_LOAD.0).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        self.len = 0;
        for s in old {
            if let Some(r) = s.r {
                self.insert(s.key, r);
            }
        }
    }

    /// Empties the table, keeping its slots.
    fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }
}

/// Wire-label hash → series reference.
pub struct RefCache {
    shards: Box<[Mutex<Table>]>,
}

impl Default for RefCache {
    fn default() -> Self {
        RefCache::new()
    }
}

impl RefCache {
    pub fn new() -> RefCache {
        RefCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Table::default())).collect(),
        }
    }

    /// The key of a series whose label fields are `wire_labels`.
    pub fn key(wire_labels: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128(wire_labels)
    }

    fn shard(&self, key: u128) -> &Mutex<Table> {
        &self.shards[(key >> 96) as usize % SHARDS]
    }

    pub fn get(&self, key: u128) -> Option<SeriesRef> {
        self.shard(key).lock().get(Key::new(key))
    }

    /// Remembers the references an append returned for the entries whose
    /// keys are known (`keys` and `refs` are aligned).
    pub fn learn(&self, keys: &[Option<u128>], refs: &[Option<SeriesRef>]) {
        for (key, r) in keys.iter().zip(refs) {
            if let (Some(key), Some(r)) = (key, r) {
                let mut shard = self.shard(*key).lock();
                if shard.len >= MAX_PER_SHARD {
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
        self.shards.iter().map(|s| s.lock().len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the slots take.
    pub fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().slots.capacity() * std::mem::size_of::<Slot>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_take_16_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 16);
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

    /// References are only made by the engine: these come from appends.
    fn refs(n: usize) -> Vec<SeriesRef> {
        let dir = tempfile::tempdir().unwrap();
        let opts = engine::Options {
            background: false,
            ..engine::Options::new(dir.path())
        };
        let db = engine::Db::open(opts, &mut Default::default()).unwrap();
        let mut batch = engine::WriteBatch::default();
        for i in 0..n {
            let v = i.to_string();
            batch.series.push(engine::SeriesSamples::new(
                engine::Labels::new(&[("__name__", "m"), ("i", &v)]),
                vec![engine::Sample::new(1, 1.0)],
            ));
        }
        let ticket = db.append(&batch).unwrap();
        let refs = ticket.summary().refs.iter().map(|r| r.unwrap()).collect();
        ticket.wait_blocking().unwrap();
        refs
    }

    #[test]
    fn table_agrees_with_a_map_through_growth_probing_and_clears() {
        let refs = refs(64);
        let mut model = std::collections::HashMap::new();
        let mut t = Table::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct low words: long probe runs, wrapping at the end.
            let key = Key([(x as u32) & 0xf000_0007, (x >> 32) as u32, step % 3_000]);
            let r = refs[(x % 64) as usize];
            if step % 7_919 == 7_918 {
                t.clear();
                model.clear();
            }
            t.insert(key, r);
            model.insert(key.0, r);
            assert_eq!(t.len, model.len());
            assert!(t.len * MAX_LOAD.1 <= t.slots.len() * MAX_LOAD.0);
        }
        for (k, r) in &model {
            assert_eq!(t.get(Key(*k)), Some(*r));
        }
        assert_eq!(t.get(Key([1, 2, 3_000])), None, "a key never inserted");
    }

    #[test]
    fn learned_refs_are_found_and_forgotten() {
        let refs = refs(3);
        let c = RefCache::new();
        let keys: Vec<_> = (0..3u8).map(|i| Some(RefCache::key(&[i]))).collect();
        let learned: Vec<_> = refs.iter().map(|r| Some(*r)).collect();
        c.learn(&keys, &learned);
        assert_eq!(c.len(), 3);
        for (k, r) in keys.iter().zip(&refs) {
            assert_eq!(c.get(k.unwrap()), Some(*r));
        }
        assert!(c.memory_bytes() >= 3 * 16);
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.get(keys[0].unwrap()), None);
    }
}
