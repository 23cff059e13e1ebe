//! From parsed wire data to the engine's write batch: label validation,
//! limits, merging of repeated series, metadata, and the request counters.
//!
//! Both protocol decoders (the streaming one in `v1`/`v2` and the prost-based
//! `reference`) feed the same [`Sink`], so they agree on semantics by
//! construction and a differential test checks only the wire parsing.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use engine::{
    Label, Labels, METRIC_NAME, MetricMetadata, MetricType, Sample, SeriesRef, SeriesSamples,
    WriteBatch,
};

use crate::Limits;
use crate::decode::{Decoded, RequestStats};
use crate::error::{InvalidSeries, LabelPart, SeriesError};
use crate::negotiate::Version;
use crate::refs::RefCache;

/// A label as it came off the wire: name and value bytes, not yet validated.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

/// The metadata message of a v2 series, by symbol reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct MetaRefs {
    pub metric_type: i32,
    pub help_ref: u32,
    pub unit_ref: u32,
}

/// Accumulates one request's decoded series.
pub(crate) struct Sink<'l> {
    limits: &'l Limits,
    builder: BatchBuilder,
    metadata: Vec<MetricMetadata>,
    /// v2 metadata already emitted: (metric name symbol, metadata refs).
    meta_seen: HashSet<(u32, MetaRefs)>,
    pub stats: RequestStats,
    invalid: InvalidSeries,
    /// Series references known from earlier requests (v1 only).
    pub refs: Option<&'l RefCache>,
}

impl<'l> Sink<'l> {
    pub(crate) fn new(limits: &'l Limits, series_hint: usize) -> Sink<'l> {
        Sink {
            limits,
            builder: BatchBuilder::with_capacity(series_hint),
            metadata: Vec::new(),
            meta_seen: HashSet::new(),
            stats: RequestStats::default(),
            invalid: InvalidSeries::default(),
            refs: None,
        }
    }

    /// A v1 series whose label bytes hash to `key`, if the reference cache
    /// knows it: counted and appended by reference. `false` (and nothing
    /// done) otherwise; then [`Sink::v1_series`] takes it.
    pub(crate) fn v1_known(
        &mut self,
        key: Option<u128>,
        samples: &[Sample],
        histograms: usize,
        exemplars: usize,
    ) -> bool {
        let (Some(refs), Some(k)) = (self.refs, key) else {
            return false;
        };
        let Some(r) = refs.get(k) else {
            return false;
        };
        self.count(samples.len(), histograms, exemplars);
        if !samples.is_empty() {
            self.builder.add_ref(r, samples);
        }
        true
    }

    /// One v1 `TimeSeries`. `pairs` holds at most `max_labels_per_series`
    /// labels; `label_count` is how many the series really had; `key` is
    /// its [`RefCache`] key, if it has one.
    pub(crate) fn v1_series(
        &mut self,
        pairs: &[Pair<'_>],
        label_count: usize,
        samples: &[Sample],
        histograms: usize,
        exemplars: usize,
        key: Option<u128>,
    ) {
        self.count(samples.len(), histograms, exemplars);
        match validate(pairs, label_count, self.limits) {
            Ok(labels) => {
                if !samples.is_empty() {
                    self.builder.add(labels, samples, &[], key);
                }
            }
            Err(e) => self.invalid.push(e, samples.len()),
        }
    }

    /// One v2 `TimeSeries`. `refs` holds at most `2 * max_labels_per_series`
    /// references; `ref_count` is how many the series really had.
    #[allow(clippy::too_many_arguments)] // reason: the parsed fields of one TimeSeries, passed flat from two decoders
    pub(crate) fn v2_series<'a>(
        &mut self,
        symbols: &[&'a [u8]],
        scratch: &mut Vec<Pair<'a>>,
        refs: &[u32],
        ref_count: usize,
        samples: &[Sample],
        starts: &[i64],
        histograms: usize,
        exemplars: usize,
        metadata: Option<MetaRefs>,
    ) {
        self.count(samples.len(), histograms, exemplars);
        if metadata.is_some() {
            self.stats.metadata += 1;
        }
        if let Err(e) = self.v2_series_inner(
            symbols, scratch, refs, ref_count, samples, starts, histograms, metadata,
        ) {
            self.invalid.push(e, samples.len());
        }
    }

    #[allow(clippy::too_many_arguments)] // reason: as v2_series
    fn v2_series_inner<'a>(
        &mut self,
        symbols: &[&'a [u8]],
        scratch: &mut Vec<Pair<'a>>,
        refs: &[u32],
        ref_count: usize,
        samples: &[Sample],
        starts: &[i64],
        histograms: usize,
        metadata: Option<MetaRefs>,
    ) -> Result<(), SeriesError> {
        let describe_refs = || describe_refs(symbols, refs);
        if !ref_count.is_multiple_of(2) {
            return Err(SeriesError::OddLabelRefs {
                series: describe_refs(),
                len: ref_count,
            });
        }
        if ref_count / 2 > self.limits.max_labels_per_series {
            return Err(SeriesError::TooManyLabels {
                series: describe_refs(),
                count: ref_count / 2,
                limit: self.limits.max_labels_per_series,
            });
        }
        let symbol = |r: u32| {
            symbols
                .get(r as usize)
                .copied()
                .ok_or_else(|| SeriesError::SymbolOutOfRange {
                    series: describe_refs(),
                    reference: r,
                    symbols: symbols.len(),
                })
        };
        scratch.clear();
        let mut name_ref = None;
        for pair in refs.chunks_exact(2) {
            let (n, v) = (symbol(pair[0])?, symbol(pair[1])?);
            if n == METRIC_NAME.as_bytes() {
                name_ref = Some(pair[1]);
            }
            scratch.push((n, v));
        }
        let result = validate(scratch, scratch.len(), self.limits);
        let labels = result?;
        if samples.is_empty() && histograms == 0 {
            return Err(SeriesError::NoSamples {
                series: labels.to_string(),
            });
        }
        if let (Some(meta), Some(name_ref)) = (metadata, name_ref) {
            self.v2_metadata(symbols, &labels, name_ref, meta)?;
        }
        if !samples.is_empty() {
            self.builder.add(labels, samples, starts, None);
        }
        Ok(())
    }

    fn v2_metadata(
        &mut self,
        symbols: &[&[u8]],
        labels: &Labels,
        name_ref: u32,
        meta: MetaRefs,
    ) -> Result<(), SeriesError> {
        if meta == MetaRefs::default() || self.meta_seen.contains(&(name_ref, meta)) {
            return Ok(());
        }
        let text =
            |r: u32, part: LabelPart| -> Result<&str, SeriesError> {
                let bytes = symbols.get(r as usize).copied().ok_or_else(|| {
                    SeriesError::SymbolOutOfRange {
                        series: labels.to_string(),
                        reference: r,
                        symbols: symbols.len(),
                    }
                })?;
                std::str::from_utf8(bytes).map_err(|_| SeriesError::InvalidUtf8 {
                    series: labels.to_string(),
                    part,
                })
            };
        let help = text(meta.help_ref, LabelPart::MetadataHelp)?;
        let unit = text(meta.unit_ref, LabelPart::MetadataUnit)?;
        let metric_type = metric_type(meta.metric_type);
        let name = labels.metric_name().unwrap_or_default();
        self.metadata.push(MetricMetadata {
            metric_family: family_name(name, metric_type).to_string(),
            metric_type,
            help: help.to_string(),
            unit: unit.to_string(),
        });
        self.meta_seen.insert((name_ref, meta));
        Ok(())
    }

    /// One v1 `MetricMetadata` (sent in requests of their own).
    pub(crate) fn v1_metadata(&mut self, metric_type: i32, family: &str, help: &str, unit: &str) {
        self.stats.metadata += 1;
        if family.is_empty() {
            return;
        }
        self.metadata.push(MetricMetadata {
            metric_family: family.to_string(),
            metric_type: self::metric_type(metric_type),
            help: help.to_string(),
            unit: unit.to_string(),
        });
    }

    fn count(&mut self, samples: usize, histograms: usize, exemplars: usize) {
        self.stats.series += 1;
        self.stats.samples += samples;
        self.stats.histograms += histograms;
        self.stats.exemplars += exemplars;
    }

    pub(crate) fn finish(mut self, version: Version) -> Decoded {
        self.metadata.sort_unstable();
        self.metadata.dedup();
        Decoded {
            version,
            batch: WriteBatch {
                series: self.builder.series,
                metadata: self.metadata,
            },
            refs: self.builder.refs,
            keys: self.builder.keys,
            stats: self.stats,
            invalid: self.invalid,
        }
    }
}

/// Remote-write metric type code → engine type (unknown codes → unknown).
fn metric_type(code: i32) -> MetricType {
    u8::try_from(code)
        .map(MetricType::from_code)
        .unwrap_or(MetricType::Unknown)
}

/// The metric family a v2 series' metadata belongs to: the metric name, less
/// the suffixes Prometheus adds to histogram and summary series.
fn family_name(name: &str, metric_type: MetricType) -> &str {
    let suffixes: &[&str] = match metric_type {
        MetricType::Histogram | MetricType::GaugeHistogram => {
            &["_bucket", "_count", "_sum", "_created"]
        }
        MetricType::Summary => &["_count", "_sum", "_created"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|f| !f.is_empty())
        .unwrap_or(name)
}

/// Validates one series' labels and builds its [`Labels`]: limits, UTF-8,
/// then [`Labels::from_pairs`] (sorts, drops empty values, refuses empty or
/// repeated names), then the metric name. Names and values are copied only
/// here, once each (into the label pairs, or the heap when over 24 bytes).
pub(crate) fn validate(
    pairs: &[Pair<'_>],
    label_count: usize,
    limits: &Limits,
) -> Result<Labels, SeriesError> {
    if label_count > limits.max_labels_per_series {
        return Err(SeriesError::TooManyLabels {
            series: describe(pairs),
            count: label_count,
            limit: limits.max_labels_per_series,
        });
    }
    let mut out = Vec::with_capacity(pairs.len());
    // Most senders send sorted labels: check that while copying, and only
    // sort (in `Labels::from_pairs`) when they are not.
    let mut sorted = true;
    let mut has_name = false;
    let mut prev: &[u8] = &[];
    for &(name, value) in pairs {
        if name.len() > limits.max_label_name_bytes {
            return Err(SeriesError::LabelNameTooLong {
                series: describe(pairs),
                len: name.len(),
                limit: limits.max_label_name_bytes,
            });
        }
        if value.len() > limits.max_label_value_bytes {
            return Err(SeriesError::LabelValueTooLong {
                series: describe(pairs),
                name: truncate(&String::from_utf8_lossy(name), MAX_SHOWN_VALUE),
                len: value.len(),
                limit: limits.max_label_value_bytes,
            });
        }
        if value.is_empty() {
            continue; // an empty value means "no such label"
        }
        let utf8 = |b, part| {
            std::str::from_utf8(b).map_err(|_| SeriesError::InvalidUtf8 {
                series: describe(pairs),
                part,
            })
        };
        let name_str = utf8(name, LabelPart::Name)?;
        let value_str = utf8(value, LabelPart::Value)?;
        // Strictly increasing from a non-empty first name: sorted, unique, non-empty.
        sorted &= if out.is_empty() {
            !name.is_empty()
        } else {
            prev < name
        };
        prev = name;
        has_name |= name == METRIC_NAME.as_bytes();
        out.push(Label::new(name_str, value_str));
    }
    let labels = if sorted {
        Labels::from_sorted(out)
    } else {
        Labels::from_pairs(out).map_err(|e| match e {
            engine::labels::LabelsError::EmptyName => SeriesError::EmptyLabelName {
                series: describe(pairs),
            },
            engine::labels::LabelsError::DuplicateName(name) => SeriesError::DuplicateLabelName {
                series: describe(pairs),
                name,
            },
        })?
    };
    if !has_name {
        return Err(SeriesError::MissingMetricName {
            series: labels.to_string(),
        });
    }
    Ok(labels)
}

/// Longest label value shown in an error message, in characters.
const MAX_SHOWN_VALUE: usize = 120;
/// Longest series description in an error message, in bytes (about).
const MAX_SHOWN_SERIES: usize = 1024;

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Prometheus-style `name{a="1", b="2"}` for labels that may be invalid:
/// sorted by name, invalid UTF-8 replaced, long values and long series
/// truncated.
pub(crate) fn describe(pairs: &[Pair<'_>]) -> String {
    let mut sorted: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    sorted.sort();
    let mut out = String::new();
    if let Some((_, name)) = sorted.iter().find(|(n, _)| n == METRIC_NAME) {
        out.push_str(&truncate(name, MAX_SHOWN_VALUE));
    }
    out.push('{');
    let mut first = true;
    for (n, v) in sorted.iter().filter(|(n, _)| n != METRIC_NAME) {
        if out.len() > MAX_SHOWN_SERIES {
            out.push_str(", …");
            break;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(
            out,
            "{}={:?}",
            truncate(n, MAX_SHOWN_VALUE),
            truncate(v, MAX_SHOWN_VALUE)
        );
    }
    out.push('}');
    out
}

/// [`describe`] for v2 label references, tolerating odd lengths and refs
/// out of range.
fn describe_refs(symbols: &[&[u8]], refs: &[u32]) -> String {
    let sym = |r: u32| {
        symbols
            .get(r as usize)
            .copied()
            .unwrap_or(b"<invalid symbol reference>")
    };
    let pairs: Vec<Pair<'_>> = refs
        .chunks(2)
        .map(|p| (sym(p[0]), p.get(1).map_or(&b""[..], |&v| sym(v))))
        .collect();
    describe(&pairs)
}

/// Builds the batch's series list, merging series that appear more than once
/// in a request (v1 senders send one entry per sample; v2 may split a series
/// by exemplars or metadata).
pub(crate) struct BatchBuilder {
    series: Vec<SeriesSamples>,
    /// [`RefCache`] key of each entry of `series`, if it has one.
    keys: Vec<Option<u128>>,
    /// Label-set hash → index in `series`. Collisions probe `hash + 1`, ….
    index: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    /// Series named by reference, and where each one is in `refs`.
    refs: Vec<(SeriesRef, Vec<Sample>)>,
    ref_index: HashMap<SeriesRef, u32>,
}

impl BatchBuilder {
    fn with_capacity(n: usize) -> BatchBuilder {
        BatchBuilder {
            series: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            refs: Vec::new(),
            ref_index: HashMap::new(),
        }
    }

    fn add_ref(&mut self, r: SeriesRef, samples: &[Sample]) {
        match self.ref_index.entry(r) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.refs.len() as u32);
                self.refs.push((r, samples.to_vec()));
            }
            std::collections::hash_map::Entry::Occupied(e) => {
                self.refs[*e.get() as usize].1.extend_from_slice(samples);
            }
        }
    }

    /// Adds a series' samples and their start timestamps (one per sample,
    /// 0 where unset, or none at all).
    fn add(&mut self, labels: Labels, samples: &[Sample], starts: &[i64], key: Option<u128>) {
        let mut h = labels_hash(&labels);
        loop {
            match self.index.entry(h) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.series.len() as u32);
                    self.series.push(SeriesSamples {
                        labels,
                        samples: samples.to_vec(),
                        start_timestamps: starts.to_vec(),
                    });
                    self.keys.push(key);
                    return;
                }
                std::collections::hash_map::Entry::Occupied(e) => {
                    let existing = &mut self.series[*e.get() as usize];
                    if existing.labels == labels {
                        let known = &mut existing.start_timestamps;
                        if !starts.is_empty() || !known.is_empty() {
                            // One per sample once any is known.
                            known.resize(existing.samples.len(), 0);
                            match starts {
                                [] => known.resize(known.len() + samples.len(), 0),
                                _ => known.extend_from_slice(starts),
                            }
                        }
                        existing.samples.extend_from_slice(samples);
                        return;
                    }
                    h = h.wrapping_add(1);
                }
            }
        }
    }
}

/// A fast 64-bit hash of a label set: one 64×64→128-bit folded multiply
/// per string of up to 16 bytes (wyhash-style reads). Only used to find
/// repeated series within one request; collisions are resolved by comparing
/// the labels.
fn labels_hash(labels: &Labels) -> u64 {
    const K1: u64 = 0x243f_6a88_85a3_08d3;
    const K2: u64 = 0x1319_8a2e_0370_7344;
    #[inline]
    fn fold(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    #[inline]
    fn read8(b: &[u8], i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    }
    #[inline]
    fn read4(b: &[u8], i: usize) -> u64 {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[i..i + 4]);
        u64::from(u32::from_le_bytes(a))
    }
    /// Mixes `b` into `h`. The reads cover every byte; the length is spread
    /// over all bits (not xored into the low ones, where it would cancel
    /// against ASCII digits: "1000" vs "10000").
    #[inline]
    fn bytes(mut h: u64, b: &[u8]) -> u64 {
        let n = b.len();
        let (x, y) = if n > 16 {
            let mut i = 0;
            while i + 16 < n {
                h = fold(h ^ read8(b, i) ^ K1, read8(b, i + 8) ^ K2);
                i += 16;
            }
            (read8(b, n - 16), read8(b, n - 8))
        } else if n >= 8 {
            (read8(b, 0), read8(b, n - 8))
        } else if n >= 4 {
            (read4(b, 0), read4(b, n - 4))
        } else if n > 0 {
            (
                u64::from(b[0]) << 16 | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]),
                0,
            )
        } else {
            (0, 0)
        };
        fold(h ^ x ^ (n as u64).wrapping_mul(K1), y ^ K2)
    }
    let mut h = K2;
    for l in labels {
        h = bytes(h, l.name.as_bytes());
        h = bytes(h, l.value.as_bytes());
    }
    h
}

/// Hasher for keys that are already hashes.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs<'a>(p: &[(&'a str, &'a str)]) -> Vec<Pair<'a>> {
        p.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect()
    }

    #[test]
    fn validate_sorts_and_drops_empty_values() {
        let p = pairs(&[
            ("job", "a"),
            ("__name__", "up"),
            ("empty", ""),
            ("instance", "x:1"),
        ]);
        let l = validate(&p, p.len(), &Limits::default()).unwrap();
        assert_eq!(
            l,
            Labels::new(&[("__name__", "up"), ("instance", "x:1"), ("job", "a")])
        );
    }

    #[test]
    fn validate_rejections_name_the_series() {
        let limits = Limits {
            max_labels_per_series: 3,
            max_label_name_bytes: 8,
            max_label_value_bytes: 10,
            ..Limits::default()
        };
        let check = |p: &[(&str, &str)], want: &str| {
            let p = pairs(p);
            let e = validate(&p, p.len(), &limits).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
            e
        };
        let e = check(
            &[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")],
            "4 labels, over the limit of 3",
        );
        assert!(e.contains(r#"up{a="1", b="2", c="3"}"#), "{e}");
        check(
            &[("__name__", "up"), ("muchtoolong", "1")],
            "over the limit of 8 bytes",
        );
        check(
            &[("__name__", "up"), ("a", "elevenchars")],
            r#"value of label "a" is 11 bytes long"#,
        );
        check(
            &[("__name__", "up"), ("", "1")],
            r#"series up{="1"}: empty label name"#,
        );
        check(
            &[("__name__", "up"), ("a", "1"), ("a", "2")],
            r#"duplicate label name "a""#,
        );
        check(&[("job", "x")], r#"series {job="x"}: no metric name"#);
        check(&[("__name__", "")], "no metric name");
        let bad = [
            (&b"__name__"[..], &b"up"[..]),
            (&b"a"[..], &b"\xff\xfe"[..]),
        ];
        let e = validate(&bad, 2, &limits).unwrap_err();
        assert!(
            matches!(
                e,
                SeriesError::InvalidUtf8 {
                    part: LabelPart::Value,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("up{a=\"\u{fffd}\u{fffd}\"}"), "{e}");
    }

    #[test]
    fn validate_sorted_fast_path_keeps_every_rule() {
        let l = Limits::default();
        let p = pairs(&[("", "1"), ("__name__", "up")]);
        assert!(matches!(
            validate(&p, 2, &l),
            Err(SeriesError::EmptyLabelName { .. })
        ));
        let p = pairs(&[("__name__", "up"), ("a", "1"), ("a", "1")]);
        assert!(matches!(
            validate(&p, 3, &l),
            Err(SeriesError::DuplicateLabelName { .. })
        ));
        let p = pairs(&[("__name__", "up"), ("a", ""), ("a", "1")]);
        assert_eq!(
            validate(&p, 3, &l).unwrap(),
            Labels::new(&[("__name__", "up"), ("a", "1")])
        );
    }

    #[test]
    fn labels_hash_spreads_similar_label_sets() {
        let mut seen = HashMap::new();
        for i in 0..20_000 {
            let v = i.to_string();
            let variants = [
                Labels::new(&[("__name__", "m"), ("i", &v)]),
                Labels::new(&[("__name__", "m"), ("i", &format!("{v:0>20}"))]),
                Labels::new(&[("__name__", "m"), ("i", &format!("{v:0>10}")), ("j", &v)]),
                Labels::new(&[("__name__", &v)]),
            ];
            for l in variants {
                if let Some(old) = seen.insert(labels_hash(&l), l.clone()) {
                    panic!("collision: {l} and {old}");
                }
            }
        }
        // Moving bytes between name and value changes the hash.
        assert_ne!(
            labels_hash(&Labels::new(&[("__name__", "ab"), ("c", "d")])),
            labels_hash(&Labels::new(&[("__name__", "a"), ("bc", "d")]))
        );
    }

    #[test]
    fn describe_truncates_huge_series() {
        let long = "x".repeat(10_000);
        let many: Vec<(String, String)> = (0..200)
            .map(|i| (format!("l{i:03}"), long.clone()))
            .collect();
        let p: Vec<Pair<'_>> = many
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let d = describe(&p);
        assert!(d.len() < MAX_SHOWN_SERIES + 400, "{}", d.len());
        assert!(d.ends_with(", …}"), "{d}");
        assert!(d.contains("xxx…\""));
    }

    #[test]
    fn family_names() {
        assert_eq!(
            family_name("http_duration_seconds_bucket", MetricType::Histogram),
            "http_duration_seconds"
        );
        assert_eq!(
            family_name("rpc_latency_sum", MetricType::Summary),
            "rpc_latency"
        );
        assert_eq!(
            family_name("requests_total", MetricType::Counter),
            "requests_total"
        );
        assert_eq!(family_name("_bucket", MetricType::Histogram), "_bucket");
    }

    #[test]
    fn builder_merges_repeated_series_in_first_seen_order() {
        let mut b = BatchBuilder::with_capacity(0);
        let a = Labels::new(&[("__name__", "a")]);
        let c = Labels::new(&[("__name__", "c")]);
        b.add(a.clone(), &[Sample::new(1, 1.0)], &[], None);
        b.add(c.clone(), &[Sample::new(1, 2.0)], &[], None);
        b.add(a.clone(), &[Sample::new(2, 3.0)], &[], None);
        assert_eq!(b.series.len(), 2);
        assert_eq!(b.series[0].labels, a);
        assert_eq!(
            b.series[0].samples,
            vec![Sample::new(1, 1.0), Sample::new(2, 3.0)]
        );
        assert_eq!(b.series[1].labels, c);
    }

    /// Once a repeated series brings start timestamps, it has one per
    /// sample: 0 for those sent without.
    #[test]
    fn builder_keeps_starts_one_per_sample() {
        let mut b = BatchBuilder::with_capacity(0);
        let a = Labels::new(&[("__name__", "a")]);
        b.add(a.clone(), &[Sample::new(1, 1.0)], &[], None);
        assert!(b.series[0].start_timestamps.is_empty());
        b.add(
            a.clone(),
            &[Sample::new(2, 2.0), Sample::new(3, 3.0)],
            &[7, 0],
            None,
        );
        b.add(a.clone(), &[Sample::new(4, 4.0)], &[], None);
        b.add(a.clone(), &[Sample::new(5, 5.0)], &[9], None);
        assert_eq!(b.series[0].samples.len(), 5);
        assert_eq!(b.series[0].start_timestamps, vec![0, 7, 0, 0, 9]);
    }

    #[test]
    fn builder_resolves_hash_collisions() {
        let mut b = BatchBuilder::with_capacity(0);
        let a = Labels::new(&[("__name__", "a")]);
        let c = Labels::new(&[("__name__", "c")]);
        // Force a collision: claim c's slot for a different series.
        b.index.insert(labels_hash(&c), 0);
        b.series.push(SeriesSamples::new(a.clone(), vec![]));
        b.add(c.clone(), &[Sample::new(5, 5.0)], &[], None);
        b.add(c.clone(), &[Sample::new(6, 6.0)], &[], None);
        assert_eq!(b.series.len(), 2);
        assert_eq!(b.series[1].labels, c);
        assert_eq!(b.series[1].samples.len(), 2);
    }
}
