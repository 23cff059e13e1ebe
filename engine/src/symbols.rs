//! String interning for head label sets: every distinct label name and value
//! is stored once and series hold 4-byte ids, which keeps per-series memory
//! small when millions of series share a few thousand strings.
//!
//! Ids are never reused and strings never freed while the process runs; the
//! table only grows with distinct strings, not with samples.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

#[derive(Default)]
struct Inner {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

/// A concurrent string interner.
#[derive(Default)]
pub struct Symbols {
    inner: RwLock<Inner>,
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// The id of `s`, interning it if new.
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(&id) = self.inner.read().ids.get(s) {
            return id;
        }
        let mut inner = self.inner.write();
        if let Some(&id) = inner.ids.get(s) {
            return id;
        }
        let id = inner.strings.len() as u32;
        let arc: Arc<str> = Arc::from(s);
        inner.strings.push(arc.clone());
        inner.ids.insert(arc, id);
        id
    }

    /// The id of `s` if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.inner.read().ids.get(s).copied()
    }

    /// The string of an id handed out by this table.
    pub fn resolve(&self, id: u32) -> Arc<str> {
        self.inner.read().strings[id as usize].clone()
    }

    /// Resolves many ids under one lock acquisition.
    pub fn resolve_with<R>(&self, f: impl for<'a> FnOnce(&'a dyn Fn(u32) -> &'a str) -> R) -> R {
        let inner = self.inner.read();
        f(&|id| &inner.strings[id as usize])
    }

    /// Every string, indexed by id: for long work (sorting every series
    /// at a cut) that should not hold the table's lock meanwhile.
    pub fn snapshot(&self) -> Vec<Arc<str>> {
        self.inner.read().strings.clone()
    }

    pub fn len(&self) -> usize {
        self.inner.read().strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate heap bytes used.
    pub fn memory_bytes(&self) -> usize {
        let inner = self.inner.read();
        let strings: usize = inner.strings.iter().map(|s| s.len() + 16).sum();
        strings + inner.strings.capacity() * 16 + inner.ids.capacity() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once() {
        let s = Symbols::new();
        let a = s.intern("job");
        let b = s.intern("instance");
        assert_eq!(s.intern("job"), a);
        assert_ne!(a, b);
        assert_eq!(&*s.resolve(b), "instance");
        assert_eq!(s.lookup("nope"), None);
        s.resolve_with(|r| assert_eq!(r(a), "job"));
        assert_eq!(&*s.snapshot()[b as usize], "instance");
    }
}
