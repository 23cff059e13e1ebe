//! Merging blocks (compaction): a k-way merge of the inputs' series by
//! labels, streaming one series at a time from each input, into a new block.
//!
//! Output series merged from the same input timestamp sequences (the same
//! rows of each input's `timestamps.parquet`) have the same timestamps: the
//! merge hands the writer that list as a key, so they share one sequence
//! without the writer comparing timestamps.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::Result;
use crate::sample::Sample;
use crate::starts::{self, StartRun};

use super::meta::BlockMeta;
use super::reader::{Block, SeriesScan};
use super::writer::{BlockWriteOptions, BlockWriter, Layout};

/// Merges `inputs` into one new block under `parent`; see
/// [`merge_blocks_within`] with an unbounded time range.
pub fn merge_blocks(
    parent: &Path,
    inputs: &[&Block],
    opts: &BlockWriteOptions,
) -> Result<Option<BlockMeta>> {
    merge_blocks_within(parent, inputs, opts, i64::MIN, i64::MAX)
}

/// Merges `inputs` into one new block under `parent`, keeping only samples
/// with `mint <= t <= maxt` (retention trims blocks at the edges this way).
///
/// Where two inputs hold a sample of the same series at the same timestamp,
/// the one from the later input (in `inputs` order) wins. Series left with
/// no samples are dropped. The new block records
/// `level = max(opts.level, max input level + 1)`,
/// `sources = union of the inputs' sources and opts.sources` and
/// `wal_segment_max = opts.wal_segment_max`, or else the inputs' maximum.
/// Returns `None` (nothing written) if no sample remains.
pub fn merge_blocks_within(
    parent: &Path,
    inputs: &[&Block],
    opts: &BlockWriteOptions,
    mint: i64,
    maxt: i64,
) -> Result<Option<BlockMeta>> {
    merge_with_layout(parent, inputs, opts, mint, maxt, Layout::default())
}

/// [`merge_blocks_within`] with an explicit page layout.
pub(crate) fn merge_with_layout(
    parent: &Path,
    inputs: &[&Block],
    opts: &BlockWriteOptions,
    mint: i64,
    maxt: i64,
    layout: Layout,
) -> Result<Option<BlockMeta>> {
    if inputs.is_empty() || mint > maxt {
        return Ok(None);
    }
    let mut sources: Vec<String> = inputs
        .iter()
        .flat_map(|b| b.meta().sources.iter().cloned())
        .collect();
    sources.extend(opts.sources.iter().cloned());
    sources.sort();
    sources.dedup();
    let out_opts = BlockWriteOptions {
        level: inputs
            .iter()
            .map(|b| b.meta().level.saturating_add(1))
            .max()
            .unwrap_or(1)
            .max(opts.level),
        sources,
        wal_segment_max: opts
            .wal_segment_max
            .or_else(|| inputs.iter().filter_map(|b| b.meta().wal_segment_max).max()),
    };
    let mut cursors: Vec<Cursor<'_>> = Vec::with_capacity(inputs.len());
    for b in inputs.iter().filter(|b| b.meta().overlaps(mint, maxt)) {
        let mut c = Cursor {
            block: b,
            scan: b.scan(mint, maxt),
            id: None,
            samples: Vec::new(),
        };
        c.advance()?;
        cursors.push(c);
    }
    let mut w = BlockWriter::new(parent, &out_opts, layout)?;
    match merge_into(&mut w, &mut cursors) {
        Ok(()) => w.finish(),
        Err(e) => {
            w.abort();
            Err(e)
        }
    }
}

/// One input's position: the current series and its samples.
struct Cursor<'a> {
    block: &'a Block,
    scan: SeriesScan<'a>,
    id: Option<u32>,
    samples: Vec<Sample>,
}

impl Cursor<'_> {
    fn advance(&mut self) -> Result<()> {
        self.id = self.scan.next_series(&mut self.samples)?;
        Ok(())
    }
}

fn cmp_series(a: &Cursor<'_>, ia: u32, b: &Cursor<'_>, ib: u32) -> Ordering {
    let mut pa = a.block.label_pairs(ia);
    let mut pb = b.block.label_pairs(ib);
    loop {
        match (pa.next(), pb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

fn merge_into(w: &mut BlockWriter, cursors: &mut [Cursor<'_>]) -> Result<()> {
    let mut merged: Vec<Sample> = Vec::new();
    let mut scratch: Vec<Sample> = Vec::new();
    let mut members: Vec<usize> = Vec::with_capacity(cursors.len());
    let mut key: Vec<u64> = Vec::new();
    let mut runs: Vec<StartRun> = Vec::new();
    let mut scratch_starts: Vec<i64> = Vec::new();
    loop {
        // The smallest current label set and every input positioned on it.
        members.clear();
        let mut min: Option<(usize, u32)> = None;
        for (i, c) in cursors.iter().enumerate() {
            let Some(id) = c.id else { continue };
            match min {
                None => {
                    min = Some((i, id));
                    members.push(i);
                }
                Some((mi, mid)) => match cmp_series(c, id, &cursors[mi], mid) {
                    Ordering::Less => {
                        min = Some((i, id));
                        members.clear();
                        members.push(i);
                    }
                    Ordering::Equal => members.push(i),
                    Ordering::Greater => {}
                },
            }
        }
        let Some((mi, mid)) = min else { return Ok(()) };
        merged.clear();
        for &i in &members {
            // `members` is in input order, so later inputs are merged last and win.
            merge_later_wins(&merged, &cursors[i].samples, &mut scratch);
            std::mem::swap(&mut merged, &mut scratch);
        }
        // (input, first row, rows) per member; none if an input predates
        // shared timestamps.
        key.clear();
        let keyed = members.iter().all(|&i| match cursors[i].scan.times_key() {
            Some((row, n)) => {
                key.extend([i as u64, row, u64::from(n)]);
                true
            }
            None => false,
        });
        let key = keyed.then_some(key.as_slice());
        merged_starts(cursors, &members, &merged, &mut runs, &mut scratch_starts);
        w.append_keyed(cursors[mi].block.labels_uncached(mid), &merged, key, &runs)?;
        for &i in &members {
            cursors[i].advance()?;
        }
    }
}

/// The start-timestamp runs of `merged`, the samples of the inputs
/// `members` (in input order) merged, into `runs` (cleared first): of a
/// time in several inputs, the start (or none) of the last input holding
/// it, as its sample wins. `own` is scratch.
fn merged_starts(
    cursors: &[Cursor<'_>],
    members: &[usize],
    merged: &[Sample],
    runs: &mut Vec<StartRun>,
    own: &mut Vec<i64>,
) {
    runs.clear();
    let member_runs = |i: usize| {
        let c = &cursors[i];
        c.id.map_or(&[][..], |id| c.block.start_runs(id, i64::MIN, i64::MAX))
    };
    if members.iter().all(|&i| member_runs(i).is_empty()) {
        return;
    }
    // Inputs apart in time (adjacent blocks, the common compaction): their
    // runs as they are, in time order; the writer joins them.
    let mut spans: Vec<(i64, i64)> = members
        .iter()
        .filter_map(|&i| {
            let s = &cursors[i].samples;
            Some((s.first()?.t, s.last()?.t))
        })
        .collect();
    spans.sort_unstable();
    if spans.windows(2).all(|w| w[0].1 < w[1].0) {
        for &i in members {
            runs.extend_from_slice(member_runs(i));
        }
        runs.sort_unstable_by_key(|r| r.first);
        return;
    }
    // Each input's starts lined up with its samples, laid over `merged`
    // in input order.
    let mut at = vec![0i64; merged.len()];
    for &i in members {
        let samples = &cursors[i].samples;
        starts::align_starts(member_runs(i), samples, own);
        let mut k = 0;
        for (s, &st) in samples.iter().zip(own.iter()) {
            while merged[k].t < s.t {
                k += 1;
            }
            debug_assert_eq!(merged[k].t, s.t, "an input's sample is merged");
            at[k] = st;
        }
    }
    runs.extend(
        merged
            .iter()
            .zip(&at)
            .filter(|&(_, &st)| st != 0)
            .map(|(s, &start)| StartRun {
                first: s.t,
                last: s.t,
                start,
            }),
    );
}

/// Merges two time-sorted, duplicate-free sample lists into `out`; on equal
/// timestamps the sample from `later` is kept.
pub(crate) fn merge_later_wins(earlier: &[Sample], later: &[Sample], out: &mut Vec<Sample>) {
    out.clear();
    out.reserve(earlier.len() + later.len());
    let (mut i, mut j) = (0, 0);
    while i < earlier.len() && j < later.len() {
        match earlier[i].t.cmp(&later[j].t) {
            Ordering::Less => {
                out.push(earlier[i]);
                i += 1;
            }
            Ordering::Greater => {
                out.push(later[j]);
                j += 1;
            }
            Ordering::Equal => {
                out.push(later[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&earlier[i..]);
    out.extend_from_slice(&later[j..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn later_wins_on_ties() {
        let mut out = Vec::new();
        merge_later_wins(
            &[s(1, 1.0), s(3, 3.0), s(5, 5.0)],
            &[s(0, 0.5), s(3, 30.0), s(6, 6.0)],
            &mut out,
        );
        assert_eq!(
            out,
            vec![s(0, 0.5), s(1, 1.0), s(3, 30.0), s(5, 5.0), s(6, 6.0)]
        );
        merge_later_wins(&[], &[s(1, 1.0)], &mut out);
        assert_eq!(out, vec![s(1, 1.0)]);
        merge_later_wins(&[s(1, 1.0)], &[], &mut out);
        assert_eq!(out, vec![s(1, 1.0)]);
    }
}
