//! The inverted label index: label pair → postings (a Roaring bitmap of
//! series ids), and the resolution of PromQL matchers into postings.
//!
//! The same structure serves the head (behind a lock, growing) and blocks
//! (built once when a block is opened). Matchers are resolved without a scan
//! of all series: `=` and literal alternations (`a|b|c`) look values up
//! directly, `=~` with a literal prefix scans only that prefix's value range,
//! and only a general regex visits every value of its label (never every
//! series).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use roaring::RoaringBitmap;

use crate::labels::{MatchOp, Matcher};

/// Postings per label name and value, plus the set of all series.
#[derive(Default, Debug, Clone)]
pub struct MemPostings {
    by_name: HashMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl MemPostings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds series `id` with the given label pairs.
    pub fn add<'a>(&mut self, id: u32, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (n, v) in labels {
            let values = match self.by_name.get_mut(n) {
                Some(values) => values,
                None => self.by_name.entry(n.to_owned()).or_default(),
            };
            match values.get_mut(v) {
                Some(p) => {
                    p.insert(id);
                }
                None => {
                    values.insert(v.to_owned(), RoaringBitmap::from_iter([id]));
                }
            }
        }
        self.all.insert(id);
    }

    /// Removes series `id` (with its label pairs) from the index.
    pub fn remove<'a>(&mut self, id: u32, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        for (n, v) in labels {
            if let Some(values) = self.by_name.get_mut(n) {
                if let Some(p) = values.get_mut(v) {
                    p.remove(id);
                    if p.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    self.by_name.remove(n);
                }
            }
        }
        self.all.remove(id);
    }

    pub fn all(&self) -> &RoaringBitmap {
        &self.all
    }

    pub fn num_series(&self) -> u64 {
        self.all.len()
    }

    /// Label names with at least one series, unsorted.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Values of a label with their postings, sorted by value.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.by_name
            .get(name)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, p)| (v.as_str(), p)))
    }

    pub fn postings(&self, name: &str, value: &str) -> Option<&RoaringBitmap> {
        self.by_name.get(name)?.get(value)
    }

    /// Series satisfying every matcher. An empty matcher list selects nothing.
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        if matchers.is_empty() {
            return RoaringBitmap::new();
        }
        let mut positive: Vec<RoaringBitmap> = Vec::new();
        let mut negative: Vec<RoaringBitmap> = Vec::new();
        if matchers.iter().all(Matcher::matches_empty) {
            positive.push(self.all.clone());
        }
        for m in matchers {
            if m.matches_empty() {
                // The series to drop are those whose value for the label is
                // one the matcher rejects (series without the label pass).
                let rejected = self.union_where(m, false);
                if !rejected.is_empty() {
                    negative.push(rejected);
                }
            } else {
                let accepted = self.union_where(m, true);
                if accepted.is_empty() {
                    return RoaringBitmap::new();
                }
                positive.push(accepted);
            }
        }
        positive.sort_by_key(RoaringBitmap::len);
        let mut it = positive.into_iter();
        let mut result = it.next().unwrap_or_default();
        for p in it {
            result &= p;
            if result.is_empty() {
                return result;
            }
        }
        for n in negative {
            result -= n;
        }
        result
    }

    /// Union of the postings of values of `m.name` for which `m.matches` is
    /// `want`, using direct look-ups where the matcher allows.
    fn union_where(&self, m: &Matcher, want: bool) -> RoaringBitmap {
        let Some(values) = self.by_name.get(&m.name) else {
            return RoaringBitmap::new();
        };
        let mut out = RoaringBitmap::new();
        let direct_positive = matches!(
            (m.op, want),
            (MatchOp::Equal, true)
                | (MatchOp::NotEqual, false)
                | (MatchOp::RegexMatch, true)
                | (MatchOp::RegexNoMatch, false)
        );
        if direct_positive {
            match m.op {
                MatchOp::Equal | MatchOp::NotEqual => {
                    if let Some(p) = values.get(&m.value) {
                        out |= p;
                    }
                    return out;
                }
                _ => {
                    if let Some(set) = m.set_matches() {
                        for v in set {
                            if let Some(p) = values.get(&v) {
                                out |= p;
                            }
                        }
                        return out;
                    }
                    if let Some(prefix) = m.literal_prefix() {
                        let range = values
                            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
                        for (v, p) in range {
                            if !v.starts_with(&prefix) {
                                break;
                            }
                            if m.matches(v) == want {
                                out |= p;
                            }
                        }
                        return out;
                    }
                }
            }
        }
        for (v, p) in values {
            if m.matches(v) == want {
                out |= p;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    fn index(series: &[Labels]) -> MemPostings {
        let mut idx = MemPostings::new();
        for (i, l) in series.iter().enumerate() {
            idx.add(
                i as u32,
                l.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            );
        }
        idx
    }

    fn brute(series: &[Labels], ms: &[Matcher]) -> Vec<u32> {
        (0..series.len() as u32)
            .filter(|&i| ms.iter().all(|m| m.matches_labels(&series[i as usize])))
            .collect()
    }

    #[test]
    fn matchers_agree_with_brute_force() {
        let series = vec![
            Labels::new(&[("__name__", "up"), ("job", "api"), ("instance", "a")]),
            Labels::new(&[("__name__", "up"), ("job", "db"), ("instance", "b")]),
            Labels::new(&[("__name__", "up"), ("instance", "c")]),
            Labels::new(&[
                ("__name__", "node_cpu_seconds_total"),
                ("job", "node"),
                ("cpu", "0"),
            ]),
            Labels::new(&[
                ("__name__", "node_cpu_guest_seconds_total"),
                ("job", "node"),
                ("cpu", "1"),
            ]),
        ];
        let idx = index(&series);
        let cases: Vec<Vec<Matcher>> = vec![
            vec![Matcher::equal("__name__", "up")],
            vec![
                Matcher::equal("__name__", "up"),
                Matcher::new(MatchOp::NotEqual, "job", "api").unwrap(),
            ],
            vec![Matcher::equal("__name__", "up"), Matcher::equal("job", "")],
            vec![
                Matcher::equal("__name__", "up"),
                Matcher::new(MatchOp::NotEqual, "job", "").unwrap(),
            ],
            vec![Matcher::new(MatchOp::RegexMatch, "__name__", "node_cpu.*").unwrap()],
            vec![Matcher::new(MatchOp::RegexMatch, "__name__", "node_cpu_s.+").unwrap()],
            vec![Matcher::new(MatchOp::RegexMatch, "job", "api|db").unwrap()],
            vec![Matcher::new(MatchOp::RegexMatch, "job", "api|").unwrap()],
            vec![Matcher::new(MatchOp::RegexNoMatch, "job", "api|node").unwrap()],
            vec![Matcher::new(MatchOp::RegexMatch, "job", ".*").unwrap()],
            vec![
                Matcher::new(MatchOp::RegexMatch, "instance", "[ab]").unwrap(),
                Matcher::equal("job", "db"),
            ],
            vec![Matcher::equal("nope", "x")],
            vec![
                Matcher::new(MatchOp::RegexNoMatch, "cpu", "0").unwrap(),
                Matcher::equal("job", "node"),
            ],
        ];
        for ms in cases {
            let got: Vec<u32> = idx.select(&ms).iter().collect();
            assert_eq!(got, brute(&series, &ms), "matchers {ms:?}");
        }
    }

    #[test]
    fn remove_drops_empty_entries() {
        let series = vec![
            Labels::new(&[("__name__", "a")]),
            Labels::new(&[("__name__", "b")]),
        ];
        let mut idx = index(&series);
        idx.remove(
            0,
            series[0]
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        );
        assert_eq!(
            idx.label_values("__name__")
                .map(|(v, _)| v)
                .collect::<Vec<_>>(),
            vec!["b"]
        );
        assert_eq!(idx.num_series(), 1);
    }
}
