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

use roaring::{MultiOps, RoaringBitmap};

use crate::labels::{MatchOp, Matcher};

/// Postings per label name and value, plus the set of all series.
#[derive(Default, Debug, Clone)]
pub struct MemPostings {
    by_name: HashMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
    /// Series added and removed so far: what a selection was answered at
    /// ([`MemPostings::generation`]).
    generation: u64,
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
        self.generation += 1;
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
        self.generation += 1;
    }

    /// Changes with every series added or removed: an answer of
    /// [`MemPostings::select`] holds for as long as it stays the same.
    pub fn generation(&self) -> u64 {
        self.generation
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
    ///
    /// No postings list is cloned to be unioned: each matcher resolves to
    /// borrowed postings, the most selective accepting matcher seeds the
    /// result, the others intersect it (a many-valued one as one multi-way
    /// union, or by membership tests when the result is already small), and
    /// matchers that accept an absent label subtract the postings of the
    /// values they reject.
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        if matchers.is_empty() {
            return RoaringBitmap::new();
        }
        let mut accept: Vec<Vec<&RoaringBitmap>> = Vec::with_capacity(matchers.len());
        let mut reject: Vec<&RoaringBitmap> = Vec::new();
        for m in matchers {
            match self.resolve(m) {
                Resolved::Accept(ps) if ps.is_empty() => return RoaringBitmap::new(),
                Resolved::Accept(ps) => accept.push(ps),
                Resolved::Reject(ps) => reject.extend(ps),
            }
        }
        accept.sort_by_cached_key(|ps| ps.iter().map(|p| p.len()).sum::<u64>());
        let mut terms = accept.iter();
        let mut result = match (terms.next(), terms.as_slice().first()) {
            (None, _) => self.all.clone(),
            // Two single postings: intersect without copying either.
            (Some(a), Some(b)) if a.len() == 1 && b.len() == 1 => {
                terms.next();
                a[0] & b[0]
            }
            (Some(a), _) => union(a),
        };
        for t in terms {
            if result.is_empty() {
                return result;
            }
            intersect(&mut result, t);
        }
        subtract(&mut result, &reject);
        result
    }

    /// The postings a matcher accepts, or rejects if it accepts series
    /// without its label (Prometheus: an absent label has the empty value).
    fn resolve<'a>(&'a self, m: &Matcher) -> Resolved<'a> {
        let values = self.by_name.get(&m.name);
        let get = |v: &str| values.and_then(|vs| vs.get(v));
        let all_values = || -> Vec<&'a RoaringBitmap> {
            values.map(|vs| vs.values().collect()).unwrap_or_default()
        };
        match m.op {
            MatchOp::Equal if m.value.is_empty() => Resolved::Reject(all_values()),
            MatchOp::Equal => Resolved::Accept(get(&m.value).into_iter().collect()),
            MatchOp::NotEqual if m.value.is_empty() => Resolved::Accept(all_values()),
            MatchOp::NotEqual => Resolved::Reject(get(&m.value).into_iter().collect()),
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let empty = m.matches_empty();
                let Some(values) = values else {
                    return if empty {
                        Resolved::Reject(Vec::new())
                    } else {
                        Resolved::Accept(Vec::new())
                    };
                };
                // The postings of values the regex matches, or of those it
                // does not match: whichever the matcher's answer needs.
                let want_regex_match = (m.op == MatchOp::RegexMatch) != empty;
                let ps = regex_postings(values, m, want_regex_match);
                if empty {
                    Resolved::Reject(ps)
                } else {
                    Resolved::Accept(ps)
                }
            }
        }
    }
}

/// A matcher resolved over one label's postings.
enum Resolved<'a> {
    /// Series in the union of these postings (empty: no series).
    Accept(Vec<&'a RoaringBitmap>),
    /// Series not in any of these postings (empty: every series).
    Reject(Vec<&'a RoaringBitmap>),
}

/// Postings of the values of one label for which the matcher's regex
/// matches (`want`) or does not match (`!want`), using direct look-ups for
/// literal alternations, a range scan for a literal prefix (without the
/// regex for `prefix.*`), and a shortcut for `.*` and `.+`.
fn regex_postings<'a>(
    values: &'a BTreeMap<String, RoaringBitmap>,
    m: &Matcher,
    want: bool,
) -> Vec<&'a RoaringBitmap> {
    // Label values are never empty, so `.*` and `.+` match every one.
    if m.value == ".*" || m.value == ".+" {
        return if want {
            values.values().collect()
        } else {
            Vec::new()
        };
    }
    // `prefix.*` (which matches the empty value only as `.*`, above): no
    // regex needed. Its values are wanted unless it matches the empty value.
    if want && let Some(prefix) = m.prefix_wildcard() {
        return values
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(v, _)| v.starts_with(prefix))
            .map(|(_, p)| p)
            .collect();
    }
    let regex_matches = |v: &str| m.matches(v) == (m.op == MatchOp::RegexMatch);
    if want {
        if let Some(set) = m.set_matches() {
            return set.iter().filter_map(|v| values.get(v.as_str())).collect();
        }
        // `(web|api)-.*`: the values under each prefix, `web-` and `api-`;
        // the regex only for a tail other than `.*`.
        if let Some(ap) = m.alternation() {
            let mut out = Vec::new();
            for prefix in &ap.prefixes {
                out.extend(
                    values
                        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                        .take_while(|(v, _)| v.starts_with(prefix.as_str()))
                        .filter(|(v, _)| ap.any_tail || regex_matches(v))
                        .map(|(_, p)| p),
                );
            }
            return out;
        }
        if let Some(prefix) = m.literal_prefix() {
            return values
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(v, _)| v.starts_with(prefix))
                .filter(|(v, _)| regex_matches(v))
                .map(|(_, p)| p)
                .collect();
        }
    }
    values
        .iter()
        .filter(|(v, _)| regex_matches(v) == want)
        .map(|(_, p)| p)
        .collect()
}

/// The union of borrowed postings, built in one pass.
fn union(ps: &[&RoaringBitmap]) -> RoaringBitmap {
    match ps {
        [] => RoaringBitmap::new(),
        [p] => (*p).clone(),
        _ => ps.iter().copied().union(),
    }
}

/// `result &= ⋃ ps`. A small result is met with each posting instead of
/// materialising a large union ([`meet`]).
fn intersect(result: &mut RoaringBitmap, ps: &[&RoaringBitmap]) {
    match ps {
        [p] => *result &= *p,
        _ => {
            let total: u64 = ps.iter().map(|p| p.len()).sum();
            if result.len().saturating_mul(ps.len() as u64) <= total {
                *result = meet(result, ps);
            } else {
                *result &= union(ps);
            }
        }
    }
}

/// `result ∩ ⋃ ps` for a result small next to the postings: the result
/// intersected with each posting, the pieces joined. Each piece is a
/// merge of two sorted arrays (vectorised in `roaring`); looking each id
/// up in each posting instead is a binary search with a mispredicted
/// branch per step, which was a quarter of a small regex selection's time
/// (`{instance=~"(web|api)-.*"}`, as Grafana's multi-value variables
/// write).
fn meet(result: &RoaringBitmap, ps: &[&RoaringBitmap]) -> RoaringBitmap {
    let mut met = RoaringBitmap::new();
    for p in ps {
        met |= result & *p;
    }
    met
}

/// `result -= p` for every `p`, stopping once nothing is left. From a
/// small result, what many postings hold of it is taken away at once
/// ([`meet`]).
fn subtract(result: &mut RoaringBitmap, ps: &[&RoaringBitmap]) {
    if ps.len() > 8
        && result.len().saturating_mul(ps.len() as u64) < ps.iter().map(|p| p.len()).sum()
    {
        *result -= meet(result, ps);
        return;
    }
    for p in ps {
        if result.is_empty() {
            return;
        }
        *result -= *p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Label, Labels};

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

    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["__name__", "a", "b", "c"];
    const VALUES: [&str; 10] = ["", "x", "y", "xy", "yx", "xyz", "foo", "foobar", "z", "x.y"];
    const PATTERNS: [&str; 33] = [
        "fo.*",
        "x\\..*",
        "x\\.*",
        "",
        ".*",
        ".+",
        "x",
        "x|y",
        "x|",
        "x.*",
        "x.+",
        "foo.*",
        "fo+.*",
        "(x|y)z?",
        "(x|y).*",
        "(?:x|fo).*",
        "(x|y)\\..*",
        "(f|x)o+.*",
        "(x|xy).*",
        "(x|y)z.*|foo",
        "y.*|foo",
        "foo(a|b)|x",
        "foo(bar)?",
        "[xy]+",
        "x*",
        "xy?",
        ".*z",
        "(?i)X.*",
        "(?:foo|x)",
        "x\\.y|z",
        "f[o|]o.*",
        "xy{0}",
        "foo(|bar)",
    ];

    fn series_strategy() -> impl Strategy<Value = Vec<Labels>> {
        prop::collection::vec(
            prop::collection::vec(0..VALUES.len(), NAMES.len()).prop_map(|vs| {
                Labels::from_pairs(
                    NAMES
                        .iter()
                        .zip(vs)
                        .map(|(n, v)| Label::new(*n, VALUES[v]))
                        .collect(),
                )
                .unwrap()
            }),
            0..40,
        )
    }

    fn matcher_strategy() -> impl Strategy<Value = Matcher> {
        (
            0..4usize,
            0..NAMES.len() + 1,
            0..VALUES.len(),
            0..PATTERNS.len(),
        )
            .prop_map(|(op, name, value, pattern)| {
                let name = NAMES.get(name).copied().unwrap_or("absent");
                match op {
                    0 => Matcher::new(MatchOp::Equal, name, VALUES[value]),
                    1 => Matcher::new(MatchOp::NotEqual, name, VALUES[value]),
                    2 => Matcher::new(MatchOp::RegexMatch, name, PATTERNS[pattern]),
                    _ => Matcher::new(MatchOp::RegexNoMatch, name, PATTERNS[pattern]),
                }
                .unwrap()
            })
    }

    proptest! {
        /// The index agrees with testing every series against every
        /// matcher, absent labels counting as the empty value.
        #[test]
        fn select_agrees_with_a_scan(
            series in series_strategy(),
            ms in prop::collection::vec(matcher_strategy(), 1..4),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let mut idx = index(&series);
            let mut live: Vec<bool> = vec![true; series.len()];
            if !series.is_empty() {
                for r in removed {
                    let i = r.index(series.len());
                    if live[i] {
                        live[i] = false;
                        idx.remove(i as u32, series[i].iter().map(|l| (l.name.as_str(), l.value.as_str())));
                    }
                }
            }
            let got: Vec<u32> = idx.select(&ms).iter().collect();
            let want: Vec<u32> = brute(&series, &ms).into_iter().filter(|&i| live[i as usize]).collect();
            prop_assert_eq!(got, want, "matchers {:?}", ms);
        }

        /// `intersect` is `result & ⋃ ps` and `subtract` is `result - ⋃
        /// ps`, on both of their paths (a result small or large next to
        /// the postings).
        #[test]
        fn intersect_and_subtract_meet_the_union(
            result in prop::collection::btree_set(0u32..3_000, 0..200),
            ps in prop::collection::vec(prop::collection::btree_set(0u32..3_000, 0..400), 2..12),
            spread in 0u32..3,
        ) {
            // Some ids in other containers (above 65,535) too.
            let at = |x: u32| x + (x % 3).min(spread) * 70_000;
            let result: RoaringBitmap = result.iter().map(|&x| at(x)).collect();
            let ps: Vec<RoaringBitmap> = ps.iter().map(|p| p.iter().map(|&x| at(x)).collect()).collect();
            let refs: Vec<&RoaringBitmap> = ps.iter().collect();
            let want = &result & union(&refs);
            let mut got = result.clone();
            intersect(&mut got, &refs);
            prop_assert_eq!(got, want);
            let want = &result - union(&refs);
            let mut got = result.clone();
            subtract(&mut got, &refs);
            prop_assert_eq!(got, want);
        }

        /// A literal prefix is a prefix of every value the regex matches.
        #[test]
        fn literal_prefix_binds_every_match(pattern in 0..PATTERNS.len(), value in "[a-z|.]{0,8}") {
            let m = Matcher::new(MatchOp::RegexMatch, "a", PATTERNS[pattern]).unwrap();
            if let Some(p) = m.literal_prefix() && m.matches(&value) {
                prop_assert!(value.starts_with(p), "{} matches {:?} without prefix {:?}", m, value, p);
            }
        }
    }

    #[test]
    fn prefix_ignores_nested_alternation_only() {
        let prefix = |p: &str| {
            Matcher::new(MatchOp::RegexMatch, "a", p)
                .unwrap()
                .literal_prefix()
                .map(str::to_owned)
        };
        assert_eq!(prefix("node_(load1|load5)"), Some("node_".into()));
        assert_eq!(prefix("foo(a|b)|bar"), None);
        assert_eq!(prefix("foo[|]bar|x"), None);
        assert_eq!(prefix("foo.*|"), None);
    }

    #[test]
    fn empty_matchers_and_absent_labels() {
        let series = vec![
            Labels::new(&[("__name__", "up"), ("job", "api")]),
            Labels::new(&[("__name__", "up")]),
        ];
        let idx = index(&series);
        let sel = |ms: &[Matcher]| idx.select(ms).iter().collect::<Vec<u32>>();
        assert_eq!(sel(&[]), Vec::<u32>::new());
        // Every matcher accepts the empty value: all series but the rejected.
        assert_eq!(
            sel(&[Matcher::new(MatchOp::RegexMatch, "job", ".*").unwrap()]),
            vec![0, 1]
        );
        assert_eq!(sel(&[Matcher::equal("job", "")]), vec![1]);
        assert_eq!(
            sel(&[Matcher::new(MatchOp::NotEqual, "job", "api").unwrap()]),
            vec![1]
        );
        assert_eq!(
            sel(&[Matcher::new(MatchOp::RegexNoMatch, "job", ".*").unwrap()]),
            Vec::<u32>::new()
        );
        assert_eq!(
            sel(&[Matcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()]),
            vec![0]
        );
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
