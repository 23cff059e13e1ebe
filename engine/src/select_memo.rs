//! Selections remembered by matcher list: what an index answered for a
//! selector, kept so that a dashboard refreshing its panels, or panels and
//! rules sharing a selector, resolve it once. A block's index never
//! changes, so its answers stay true; the head's index changes with every
//! series created or removed, so its answers are kept with the index's
//! generation ([`crate::index::MemPostings::generation`]) and found only
//! at the same one. VictoriaMetrics keeps the same (its tag-filters
//! cache), as Mimir does for Prometheus's index.
//!
//! A memo holds a few entries ([`MAX_ENTRIES`]), most recently used last:
//! a lookup is a scan comparing matcher lists, cheaper than hashing their
//! strings at this size. An entry is charged its value's bytes and its
//! matchers' text ([`matchers_bytes`]); a regex the matchers share with
//! the query that built them is kept alive but not charged.

use parking_lot::Mutex;

use crate::labels::Matcher;

/// Entries a memo keeps (the least recently used goes first).
pub const MAX_ENTRIES: usize = 64;

/// Bytes an entry costs beyond its value's and its matchers' own (the
/// slot, the boxed matchers, a reference count).
pub const ENTRY_OVERHEAD: usize = 128;

struct Entry<V> {
    matchers: Box<[Matcher]>,
    generation: u64,
    value: V,
    bytes: usize,
}

/// Remembered selections of one index. `V` is cheap to clone (an `Arc`).
pub struct SelectMemo<V> {
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    entries: Vec<Entry<V>>,
    bytes: usize,
}

impl<V> Inner<V> {
    /// Forgets the least recently used entry (there is one); returns its
    /// bytes.
    fn forget_oldest(&mut self) -> usize {
        let gone = self.entries.remove(0).bytes;
        self.bytes -= gone;
        gone
    }
}

impl<V> Default for SelectMemo<V> {
    fn default() -> Self {
        SelectMemo {
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                bytes: 0,
            }),
        }
    }
}

impl<V: Clone> SelectMemo<V> {
    /// The value remembered for `matchers` at `generation`, now the most
    /// recently used.
    pub fn get(&self, matchers: &[Matcher], generation: u64) -> Option<V> {
        let mut inner = self.inner.lock();
        let entries = &mut inner.entries;
        let i = entries
            .iter()
            .rposition(|e| e.generation == generation && *e.matchers == *matchers)?;
        let value = entries[i].value.clone();
        let last = entries.len() - 1;
        entries[i..].rotate_left(1);
        debug_assert!(*entries[last].matchers == *matchers);
        Some(value)
    }

    /// Remembers `value` (costing `bytes`) for `matchers` at `generation`,
    /// in place of what was kept for them at an older or the same
    /// generation, and forgets the least recently used entries while more
    /// than [`MAX_ENTRIES`] or more than `budget` bytes are kept. Returns
    /// the bytes no longer kept: the entries forgotten, or `bytes` itself
    /// if the value is not kept (an answer at a newer generation is, or
    /// the value alone is over budget).
    pub fn put(
        &self,
        matchers: &[Matcher],
        generation: u64,
        value: V,
        bytes: usize,
        budget: usize,
    ) -> usize {
        if bytes > budget {
            return bytes;
        }
        let mut inner = self.inner.lock();
        let mut freed = 0;
        if let Some(i) = inner.entries.iter().position(|e| *e.matchers == *matchers) {
            if inner.entries[i].generation > generation {
                return bytes;
            }
            freed += inner.entries.remove(i).bytes;
        }
        inner.entries.push(Entry {
            matchers: matchers.into(),
            generation,
            value,
            bytes,
        });
        inner.bytes = inner.bytes + bytes - freed;
        while inner.entries.len() > MAX_ENTRIES || inner.bytes > budget {
            freed += inner.forget_oldest();
        }
        freed
    }

    /// Forgets the least recently used entries until at least `bytes` are
    /// freed, or none is left; returns the bytes freed.
    pub fn shrink(&self, bytes: usize) -> usize {
        let mut inner = self.inner.lock();
        let mut freed = 0;
        while freed < bytes && !inner.entries.is_empty() {
            freed += inner.forget_oldest();
        }
        freed
    }

    /// Bytes of the entries kept.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What remembering `matchers` costs beyond the value.
pub fn matchers_bytes(matchers: &[Matcher]) -> usize {
    ENTRY_OVERHEAD
        + matchers
            .iter()
            .map(|m| std::mem::size_of::<Matcher>() + m.name.len() + m.value.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(v: &str) -> Vec<Matcher> {
        vec![Matcher::equal("job", v)]
    }

    #[test]
    fn finds_an_answer_only_at_its_generation() {
        let memo = SelectMemo::default();
        assert_eq!(memo.put(&eq("a"), 3, 30, 10, usize::MAX), 0);
        assert_eq!(memo.get(&eq("a"), 3), Some(30));
        assert_eq!(memo.get(&eq("a"), 4), None);
        assert_eq!(memo.get(&eq("b"), 3), None);
        // A newer answer replaces it; an older one does not.
        assert_eq!(memo.put(&eq("a"), 4, 40, 10, usize::MAX), 10);
        assert_eq!(memo.put(&eq("a"), 3, 30, 7, usize::MAX), 7);
        assert_eq!(memo.get(&eq("a"), 4), Some(40));
        assert_eq!(memo.get(&eq("a"), 3), None);
        assert_eq!((memo.len(), memo.bytes()), (1, 10));
    }

    #[test]
    fn forgets_the_least_recently_used() {
        let memo = SelectMemo::default();
        for i in 0..MAX_ENTRIES {
            assert_eq!(memo.put(&eq(&i.to_string()), 0, i, 1, usize::MAX), 0);
        }
        // Using the oldest makes the second oldest go first.
        assert_eq!(memo.get(&eq("0"), 0), Some(0));
        assert_eq!(memo.put(&eq("new"), 0, 99, 1, usize::MAX), 1);
        assert_eq!(memo.get(&eq("1"), 0), None);
        assert_eq!(memo.get(&eq("0"), 0), Some(0));
        assert_eq!(memo.len(), MAX_ENTRIES);
        // Over the byte budget: the oldest go until it fits (all but
        // "new" and "0", used last).
        assert_eq!(memo.put(&eq("big"), 0, 7, 10, 12), MAX_ENTRIES - 2);
        assert_eq!(memo.len(), 3);
        assert_eq!(memo.bytes(), 12);
        assert_eq!(memo.get(&eq("big"), 0), Some(7));
        assert_eq!(memo.get(&eq("new"), 0), Some(99));
        assert_eq!(memo.get(&eq("0"), 0), Some(0));
        // Making room: the least recently used first ("big").
        assert_eq!(memo.shrink(5), 10);
        assert_eq!(memo.get(&eq("big"), 0), None);
        assert_eq!(memo.shrink(100), 2);
        assert!(memo.is_empty());
        assert_eq!(memo.shrink(1), 0);
    }

    #[test]
    fn an_entry_over_the_budget_is_not_kept_nor_makes_room() {
        let memo = SelectMemo::default();
        assert_eq!(memo.put(&eq("a"), 0, 1, 5, 100), 0);
        assert_eq!(memo.put(&eq("b"), 0, 2, 200, 100), 200);
        assert_eq!(memo.get(&eq("a"), 0), Some(1));
        assert_eq!(memo.get(&eq("b"), 0), None);
        assert_eq!(memo.bytes(), 5);
    }
}
