//! Finding a series' group, or an output series, by label set without
//! building a key for every lookup.
//!
//! An aggregation used to build each input series' group labels (two
//! strings, a vector and a shared slice per series) only to find the group
//! in a map hashed with SipHash and drop the copy. [`Groups`] hashes the
//! pairs the aggregation keeps straight from the series' labels and
//! compares them in place; only the first series of a group builds its
//! label set. [`Signatures`] numbers vector matching's join keys the same
//! way and builds none: the first series of each stands for it.

use engine::labels::{Label, Labels, METRIC_NAME, identity_hash};
use hashbrown::HashTable;

/// Entries numbered in insertion order, found by a 64-bit hash of their
/// label set ([`Labels::identity_hash`], or [`identity_hash`] of the pairs
/// a group keeps) and told apart by the caller's comparison, as the head
/// finds its series.
#[derive(Default)]
pub(crate) struct LabelIndex(HashTable<(u64, u32)>);

impl LabelIndex {
    pub fn with_capacity(n: usize) -> LabelIndex {
        LabelIndex(HashTable::with_capacity(n))
    }

    /// The entry of hash `h` that `is` accepts.
    #[inline]
    pub fn find(&self, h: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        self.0
            .find(h, |&(eh, e)| eh == h && is(e as usize))
            .map(|&(_, e)| e as usize)
    }

    /// Adds the next entry, of hash `h`, and returns its number.
    pub fn add(&mut self, h: u64) -> usize {
        let n = self.0.len();
        debug_assert!(n < u32::MAX as usize, "more entries than a u32 numbers");
        self.0.insert_unique(h, (h, n as u32), |&(eh, _)| eh);
        n
    }
}

/// Whether `name` is one of `names` (a `by`, `on`, `without` or
/// `ignoring` list).
#[inline]
pub(crate) fn is_among(name: &str, names: &[String]) -> bool {
    names.iter().any(|n| n == name)
}

/// Which of a series' pairs make its group.
#[derive(Clone, Copy)]
pub(crate) enum Keep<'g> {
    /// `by (...)`, `on (...)`: the pairs named.
    By(&'g [String]),
    /// `without (...)`, `ignoring (...)`: all but those named and the
    /// metric name.
    Without(&'g [String]),
    /// All but the one named, the metric name kept (a classic histogram's
    /// series without `le`).
    AllBut(&'g str),
}

impl<'g> Keep<'g> {
    /// An aggregation's `by` (`without` false) or `without` clause.
    pub fn grouping(grouping: &'g [String], without: bool) -> Keep<'g> {
        if without {
            Keep::Without(grouping)
        } else {
            Keep::By(grouping)
        }
    }

    #[inline]
    fn keeps(self, l: &Label) -> bool {
        match self {
            Keep::By(names) => is_among(&l.name, names),
            Keep::Without(names) => l.name != METRIC_NAME && !is_among(&l.name, names),
            Keep::AllBut(name) => l.name != name,
        }
    }

    /// The pairs of `labels` this keeps.
    #[inline]
    pub fn kept<'l>(
        self,
        labels: &'l Labels,
    ) -> impl Iterator<Item = &'l Label> + Clone + use<'l, 'g> {
        labels.iter().filter(move |l| self.keeps(l))
    }

    /// The identity hash of kept pairs.
    fn hash<'l>(pairs: impl Iterator<Item = &'l Label> + Clone) -> u64 {
        identity_hash(pairs.map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// The groups of series, numbered in order of first appearance: a
/// series' group is the set of the pairs it [`Keep`]s.
pub(crate) struct Groups<'g> {
    keep: Keep<'g>,
    index: LabelIndex,
    keys: Vec<Labels>,
}

impl<'g> Groups<'g> {
    /// An aggregation's groups (`by`, or `without` when `without`).
    pub fn new(grouping: &'g [String], without: bool) -> Groups<'g> {
        Groups::keeping(Keep::grouping(grouping, without))
    }

    pub fn keeping(keep: Keep<'g>) -> Groups<'g> {
        Groups {
            keep,
            index: LabelIndex::default(),
            keys: Vec::new(),
        }
    }

    /// The number of the group of a series with these labels; the first
    /// series of a group gives it the next number.
    pub fn group(&mut self, labels: &Labels) -> usize {
        let kept = self.keep.kept(labels);
        let h = Keep::hash(kept.clone());
        let keys = &self.keys;
        if let Some(g) = self.index.find(h, |g| kept.clone().eq(keys[g].iter())) {
            return g;
        }
        self.keys.push(Labels::from_sorted_counted(
            kept.clone().count(),
            kept.cloned(),
        ));
        self.index.add(h)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Each group's label set, by number.
    pub fn into_keys(self) -> Vec<Labels> {
        self.keys
    }
}

/// The groups of series as [`Groups`] numbers them, with no label set
/// built: the first series of each number stands for it. Vector
/// matching's join signatures, where only the numbers matter.
pub(crate) struct Signatures<'a> {
    keep: Keep<'a>,
    index: LabelIndex,
    firsts: Vec<&'a Labels>,
}

impl<'a> Signatures<'a> {
    pub fn new(keep: Keep<'a>) -> Signatures<'a> {
        Signatures {
            keep,
            index: LabelIndex::default(),
            firsts: Vec::new(),
        }
    }

    /// The number of the kept pairs of `labels`; a new set gets the next.
    pub fn of(&mut self, labels: &'a Labels) -> usize {
        let keep = self.keep;
        let h = Keep::hash(keep.kept(labels));
        let firsts = &self.firsts;
        if let Some(g) = self
            .index
            .find(h, |g| keep.kept(labels).eq(keep.kept(firsts[g])))
        {
            return g;
        }
        self.firsts.push(labels);
        self.index.add(h)
    }

    pub fn len(&self) -> usize {
        self.firsts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs)
    }

    /// A series' group labels, built outright by Prometheus's rule: the
    /// pairs named (`by`), or all but those and the metric name
    /// (`without`).
    fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
        let named = |l: &&Label| grouping.iter().any(|g| g.as_str() == l.name.as_str());
        Labels::from_sorted(
            labels
                .iter()
                .filter(|l| {
                    if without {
                        l.name != "__name__" && !named(l)
                    } else {
                        named(l)
                    }
                })
                .cloned()
                .collect(),
        )
    }

    #[test]
    fn groups_and_signatures_are_numbered_by_first_appearance_and_equal_to_group_labels() {
        let series = [
            l(&[("__name__", "m"), ("a", "1"), ("b", "x"), ("c", "p")]),
            l(&[("__name__", "m"), ("a", "2"), ("b", "x")]),
            l(&[("__name__", "n"), ("a", "1"), ("b", "y")]),
            l(&[("__name__", "m"), ("b", "x")]),
            l(&[("__name__", "m"), ("a", "2"), ("b", "z"), ("c", "q")]),
            l(&[]),
        ];
        // As vector matching uses them too: `on (...)` is `by`, `ignoring
        // (...)` `without`, the metric name never matched on unless named
        // in `on`.
        let cases: [(&[&str], bool); 7] = [
            (&["a"], false),
            (&["a", "b"], false),
            (&[], false),
            (&["b"], true),
            (&[], true),
            (&["__name__"], false),
            (&["__name__", "a"], true),
        ];
        for (names, without) in cases {
            let grouping: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let mut groups = Groups::new(&grouping, without);
            let mut signatures = Signatures::new(Keep::grouping(&grouping, without));
            // The model: a plain list of distinct group label sets.
            let mut model: Vec<Labels> = Vec::new();
            for s in &series {
                let key = group_labels(s, &grouping, without);
                let want = match model.iter().position(|k| *k == key) {
                    Some(g) => g,
                    None => {
                        model.push(key);
                        model.len() - 1
                    }
                };
                assert_eq!(groups.group(s), want, "{s} by {names:?} without {without}");
                assert_eq!(signatures.of(s), want, "{s} signature, {names:?} {without}");
            }
            assert_eq!(groups.len(), model.len());
            assert_eq!(signatures.len(), model.len());
            assert_eq!(groups.into_keys(), model);
        }
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_their_labels() {
        let mut index = LabelIndex::default();
        let sets = [l(&[("a", "1")]), l(&[("a", "2")]), l(&[("a", "3")])];
        // Every entry under one hash: only the comparison tells them apart.
        for (i, _) in sets.iter().enumerate() {
            assert_eq!(index.find(7, |e| sets[e] == sets[i]), None);
            assert_eq!(index.add(7), i);
        }
        for (i, s) in sets.iter().enumerate() {
            assert_eq!(index.find(7, |e| sets[e] == *s), Some(i));
        }
        assert_eq!(index.find(8, |_| true), None);
    }
}
