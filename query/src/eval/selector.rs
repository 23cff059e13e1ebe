//! Storage reads: instant selectors (lookback, staleness, `offset`, `@`,
//! `smoothed`), range selectors and the per-series rollup of range windows
//! across all steps.
//!
//! Each selected series is read once, over the union of the windows every
//! step needs, and processed with two cursors moving forward over its
//! sorted samples; only one series' raw samples are held per worker.

use engine::{Continuity, Labels, SeriesEntry, is_stale_nan};

use super::error::Result;
use super::evaluator::{Ev, Val};
use super::functions::extended::{self as fx, extend_floats, smoothed_value_at};
use super::functions::range::{self as fr, Window as FnWindow};
use super::functions::start as fs;
use super::rollup::{Kernel, WindowFold, any_stale};
use super::value::{Point, Series};
use crate::promql::ast::{Expr, MatrixSelector, RangeMode, VectorSelector};

/// Selects the series of a selector from the query's snapshot.
pub(crate) fn select(ev: &Ev, vs: &VectorSelector) -> Result<Vec<SeriesEntry>> {
    let entries = ev.ctx.select(&vs.matchers)?;
    ev.ctx.touch_series(entries.len())?;
    Ok(entries)
}

/// Reads one series' samples in `[mint, maxt]`, accounting for them.
fn read(ev: &Ev, e: &SeriesEntry, mint: i64, maxt: i64) -> Result<Vec<Point>> {
    let mut buf = Vec::new();
    read_into(ev, e, mint, maxt, &mut buf)?;
    Ok(buf)
}

/// [`read`] into `buf` (cleared first), reusing its memory.
fn read_into(ev: &Ev, e: &SeriesEntry, mint: i64, maxt: i64, buf: &mut Vec<Point>) -> Result<()> {
    ev.ctx.check()?;
    buf.clear();
    if mint <= maxt {
        ev.ctx.querier.samples(e, mint, maxt, buf)?;
    }
    ev.ctx.loaded(buf.len());
    ev.ctx.take(buf.len())
}

thread_local! {
    /// A rollup worker's sample and window buffers, reused series after
    /// series: one allocation per thread instead of one per series (fresh
    /// pages from the allocator cost page faults on every series).
    static SERIES_BUF: std::cell::Cell<(Vec<Point>, Vec<Span>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Largest buffer (in points) a thread keeps between series: 1 Mi points.
const SERIES_BUF_KEEP: usize = 1 << 20;

/// The sample an instant selector sees at reference time `r`: the latest
/// at or before `r` and after `r - lookback`, unless it is a stale marker.
fn lookup(samples: &[Point], r: i64, lookback: i64) -> Option<Point> {
    let i = samples.partition_point(|p| p.t <= r);
    let p = *samples.get(i.checked_sub(1)?)?;
    visible(p, r, lookback).then_some(p)
}

/// Whether `p`, the latest sample at or before reference time `r`, is
/// what an instant selector sees there: within the lookback (left-open)
/// and not a stale marker.
fn visible(p: Point, r: i64, lookback: i64) -> bool {
    p.t > r - lookback && !is_stale_nan(p.v)
}

/// Whether steps are so far apart (relative to the `span` each needs)
/// that reading every step's window separately reads less than reading
/// the whole range once.
fn is_sparse(ev: &Ev, span: i64) -> bool {
    ev.n() > 1 && ev.step > span.saturating_mul(4)
}

/// Evaluates an instant vector selector over the grid. With
/// `record_time`, values are the samples' own timestamps in seconds (as
/// `info()` matches them).
pub(crate) fn instant_with(ev: &Ev, vs: &VectorSelector, record_time: bool) -> Result<Vec<Series>> {
    if vs.range_mode == RangeMode::Smoothed {
        return smoothed_instant(ev, vs);
    }
    read_series(ev, vs, &InstantSel::new(ev, vs, record_time)?)
}

/// `timestamp(vs)`: at every step, the time (seconds) of the sample the
/// selector sees there ([`InstantSel::for_timestamp`]).
pub(crate) fn timestamps(ev: &Ev, vs: &VectorSelector) -> Result<Vec<Series>> {
    match InstantSel::for_timestamp(ev, vs)? {
        Some(sel) => read_series(ev, vs, &sel),
        None => Ok(Vec::new()),
    }
}

/// The series of `vs` with points, read through `sel`.
fn read_series(ev: &Ev, vs: &VectorSelector, sel: &InstantSel) -> Result<Vec<Series>> {
    let entries = select(ev, vs)?;
    ev.ctx.par_map(&entries, |e| {
        let mut points = Vec::new();
        sel.points(ev, e, &mut points)?;
        Ok((!points.is_empty()).then(|| Series::new(e.labels.clone(), points)))
    })
}

/// `start_timestamp(vs)`: at every step, the start timestamp (seconds; 0
/// when unknown) of the sample the selector sees there.
pub(crate) fn start_times(ev: &Ev, vs: &VectorSelector) -> Result<Vec<Series>> {
    let Some(sel) = InstantSel::for_timestamp(ev, vs)? else {
        return Ok(Vec::new());
    };
    let entries = select(ev, vs)?;
    // `record_time` points hold their sample's time in seconds, exactly
    // enough to give the milliseconds back.
    let sample_time = |p: &Point| (p.v * 1000.0).round() as i64;
    ev.ctx.par_map(&entries, |e| {
        let mut points = Vec::new();
        sel.points(ev, e, &mut points)?;
        if points.is_empty() {
            return Ok(None);
        }
        let (first, last) = points
            .iter()
            .map(sample_time)
            .fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let runs = ev.ctx.querier.start_timestamps(e, first, last)?;
        for p in &mut points {
            let t = sample_time(p);
            let k = runs.partition_point(|r| r.last < t);
            p.v = match runs.get(k) {
                Some(r) if r.first <= t => r.start as f64 / 1000.0,
                _ => 0.0,
            };
        }
        Ok(Some(Series::new(e.labels.clone(), points)))
    })
}

/// An instant selector's `offset`, `@` time, and the sample times of the
/// first and last step.
fn steps_in_sample_time(ev: &Ev, vs: &VectorSelector) -> Result<(i64, Option<i64>, i64, i64)> {
    let off = ev.offset(&vs.offset)?;
    let at = ev.at_time(&vs.at);
    let (lo, hi) = match at {
        Some(t) => (t - off, t - off),
        None => (ev.start - off, ev.end - off),
    };
    Ok((off, at, lo, hi))
}

/// An instant vector selector (not `smoothed`) prepared for reading
/// series after series: [`InstantSel::points`] gives one series' values
/// over the grid.
pub(crate) struct InstantSel {
    off: i64,
    at: Option<i64>,
    lb: i64,
    /// Sample time of the first and last step.
    lo: i64,
    hi: i64,
    sparse: bool,
    record_time: bool,
}

impl InstantSel {
    pub fn new(ev: &Ev, vs: &VectorSelector, record_time: bool) -> Result<InstantSel> {
        debug_assert!(vs.range_mode != RangeMode::Smoothed);
        let (off, at, lo, hi) = steps_in_sample_time(ev, vs)?;
        let lb = ev.ctx.lookback;
        Ok(InstantSel {
            off,
            at,
            lb,
            lo,
            hi,
            sparse: at.is_none() && is_sparse(ev, lb),
            record_time,
        })
    }

    /// The selector as `timestamp()` and `start_timestamp()` read it,
    /// sample times recorded, as Prometheus reads it for them (2.42 and
    /// 3.x alike); `None` where it sees nothing. Prometheus reads the
    /// selector's raw samples (`smoothed` or not) through its lookback,
    /// from those selected for it. Pinned by `@ T` with an `offset d`, it
    /// selects (T − d − lookback, T − d] as for any selector (to T − d +
    /// lookback for `smoothed`), then for these two functions reads at T
    /// itself (the engine replaces the offset by the distance from the
    /// step to T): the last sample in both windows. So this reads at the
    /// end of the intersection with the lookback cut to its length.
    /// `timestamp(x @ T offset 20s)` is the time of the sample `x` has at
    /// T − 20s if it is less than the lookback before T;
    /// `timestamp(x @ T offset -1m)` that of the sample at T if it is less
    /// than lookback − 1m before T.
    pub fn for_timestamp(ev: &Ev, vs: &VectorSelector) -> Result<Option<InstantSel>> {
        let smoothed = vs.range_mode == RangeMode::Smoothed;
        let raw;
        let vs = if smoothed {
            raw = VectorSelector {
                range_mode: RangeMode::Normal,
                ..vs.clone()
            };
            &raw
        } else {
            vs
        };
        let mut sel = InstantSel::new(ev, vs, true)?;
        if let Some(at) = sel.at
            && sel.off != 0
        {
            let (d, lb) = (sel.off, sel.lb);
            let selected_end = at
                .saturating_sub(d)
                .saturating_add(if smoothed { lb } else { 0 });
            let end = at.min(selected_end);
            let after = (at.saturating_sub(lb)).max(at.saturating_sub(d).saturating_sub(lb));
            if end <= after {
                return Ok(None);
            }
            sel.off = at - end;
            sel.lb = end - after;
            sel.lo = end;
            sel.hi = end;
        }
        Ok(Some(sel))
    }

    /// What a step takes from sample `p`: its value, or with
    /// `record_time` its timestamp in milliseconds, turned into seconds
    /// by [`InstantSel::points`] once the series is done. (A division
    /// here would be computed at every step and then discarded: the
    /// compiler makes the choice branch-free.)
    fn val(&self, p: Point) -> f64 {
        if self.record_time { p.t as f64 } else { p.v }
    }

    /// The grid's points of series `e` from the storage's slices as they
    /// lie ([`engine::Querier::visit_samples`]), without gathering its
    /// samples first: one pass over the cached pages instead of a copy and
    /// a pass. `false` (with `points` as it was) where the sources overlap
    /// in time, which the caller then reads merged.
    fn walk(&self, ev: &Ev, e: &SeriesEntry, points: &mut Vec<Point>) -> Result<bool> {
        let before = points.len();
        let mut steps = Steps::default();
        if !self.visit(ev, e, |s, _| steps.feed(self, ev, s, points))? {
            points.truncate(before);
            return Ok(false);
        }
        steps.finish(self, ev, points);
        Ok(true)
    }

    /// Feeds series `e`'s stored slices in the selector's read range to
    /// `feed`, in place and in time order, with what is known of their
    /// gaps, and accounts for the samples as the gathering read does (as
    /// if held). `false` where the slices overlap in time: the caller
    /// undoes what `feed` did and reads them merged.
    fn visit(
        &self,
        ev: &Ev,
        e: &SeriesEntry,
        mut feed: impl FnMut(&[Point], Continuity),
    ) -> Result<bool> {
        let (mint, maxt) = (self.lo - self.lb + 1, self.hi);
        if mint > maxt {
            return Ok(true);
        }
        ev.ctx.check()?;
        let mut loaded = 0;
        let in_order = ev
            .ctx
            .querier
            .visit_samples(e, mint, maxt, false, &mut |s, _, c| {
                loaded += s.len();
                feed(s, c);
            })?;
        if in_order {
            ev.ctx.loaded(loaded);
            ev.ctx.take(loaded)?;
            ev.ctx.release(loaded);
        }
        Ok(in_order)
    }

    /// The steps at which series `e` has a visible sample, appended to
    /// `runs` as ranges of step indices in order: the steps
    /// [`InstantSel::points`] gives points at, found sample by sample
    /// instead of step by step, for aggregations that only count them
    /// (`count`, `group`). A series scraped more often than the grid's
    /// step is one range from its first sample to its last plus the
    /// lookback (a gap longer than the lookback, or a stale marker, ends
    /// one). A slice whose page has no wider gap and no stale marker is
    /// taken by its two ends. `false` (with `runs` as it was) for a
    /// selector not walked over a grid (one step, steps far apart, `@`) or
    /// stored slices that overlap in time: the caller then takes the
    /// points.
    pub fn covered(
        &self,
        ev: &Ev,
        e: &SeriesEntry,
        runs: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<bool> {
        if self.sparse || self.at.is_some() || ev.n() < 2 || ev.step <= 0 {
            return Ok(false);
        }
        let before = runs.len();
        let mut cover = Coverage::new(self.lo, ev.step, ev.n(), self.lb);
        let visited = self.visit(ev, e, |s, c| {
            let _whole = cover.feed(s, c, runs);
            #[cfg(test)]
            tests::count_whole(_whole);
        })?;
        if !visited {
            runs.truncate(before);
            return Ok(false);
        }
        cover.finish(runs);
        Ok(true)
    }

    /// Appends series `e`'s points over the grid to `points` (empty on
    /// entry), accounting for them in the query's sample budget.
    pub fn points(&self, ev: &Ev, e: &SeriesEntry, points: &mut Vec<Point>) -> Result<()> {
        let (off, lb, n) = (self.off, self.lb, ev.n());
        let before = points.len();
        let (mut samples, spans) = SERIES_BUF.take();
        let res = (|| {
            if self.sparse {
                // Steps far apart: read each step's lookback window only.
                for i in 0..n {
                    let ts = ev.ts(i);
                    let r = ts - off;
                    read_into(ev, e, r - lb + 1, r, &mut samples)?;
                    if let Some(p) = lookup(&samples, r, lb) {
                        points.push(Point::new(ts, self.val(p)));
                    }
                    ev.ctx.release(samples.len());
                }
            } else if self.at.is_none() && self.walk(ev, e, points)? {
                // Walked the stored slices in place.
            } else {
                read_into(ev, e, self.lo - lb + 1, self.hi, &mut samples)?;
                if let Some(t) = self.at {
                    if let Some(p) = lookup(&samples, t - off, lb) {
                        points.extend((0..n).map(|i| Point::new(ev.ts(i), self.val(p))));
                    }
                } else {
                    let mut steps = Steps::default();
                    steps.feed(self, ev, &samples, points);
                    steps.finish(self, ev, points);
                }
                ev.ctx.release(samples.len());
            }
            ev.ctx.take(points.len())
        })();
        if samples.capacity() <= SERIES_BUF_KEEP {
            SERIES_BUF.set((samples, spans));
        }
        if self.record_time {
            for p in &mut points[before..] {
                p.v /= 1000.0;
            }
        }
        res
    }
}

/// The steps of a grid at which one series has a visible sample, from its
/// samples fed in time order: sample `q` is what a step with reference
/// time `r` sees while `q.t <= r < next.t`, and visible while
/// `r < q.t + lookback`, unless `q` is a stale marker.
struct Coverage {
    /// Reference time (sample time) of the first step, the step, and the
    /// number of steps.
    r0: i64,
    step: i64,
    n: usize,
    lb: i64,
    /// The last sample fed: its time, and whether it is visible at all
    /// (fed and not a stale marker).
    prev_t: i64,
    prev_live: bool,
    /// The reference times covered since the last gap, `[from, to)`
    /// (empty: none yet).
    from: i64,
    to: i64,
}

impl Coverage {
    fn new(r0: i64, step: i64, n: usize, lb: i64) -> Coverage {
        Coverage {
            r0,
            step,
            n,
            lb,
            prev_t: i64::MIN,
            prev_live: false,
            from: i64::MIN,
            to: i64::MIN,
        }
    }

    /// Feeds slice `s`. Where `c` says each of its samples stays visible
    /// until the next, the slice covers reference times from its first
    /// sample to its last without a gap: only those two are looked at
    /// (`true`: the slice was taken so).
    fn feed(&mut self, s: &[Point], c: Continuity, runs: &mut Vec<std::ops::Range<usize>>) -> bool {
        if let [first, .., last] = s
            && c.unbroken(self.lb)
        {
            self.feed_one(first, runs);
            self.cover_prev(last.t, runs);
            (self.prev_t, self.prev_live) = (last.t, true);
            return true;
        }
        for p in s {
            self.feed_one(p, runs);
        }
        false
    }

    #[inline]
    fn feed_one(&mut self, p: &Point, runs: &mut Vec<std::ops::Range<usize>>) {
        if self.prev_live {
            self.cover_prev(p.t.min(self.prev_t.saturating_add(self.lb)), runs);
        }
        self.prev_t = p.t;
        self.prev_live = !is_stale_nan(p.v);
    }

    fn finish(&mut self, runs: &mut Vec<std::ops::Range<usize>>) {
        if self.prev_live {
            self.cover_prev(self.prev_t.saturating_add(self.lb), runs);
        }
        self.close(runs);
    }

    /// The last sample fed covers reference times from its own up to
    /// `to`: the open range goes on where it ended there (samples closer
    /// than the lookback); after a gap, a new one starts.
    #[inline]
    fn cover_prev(&mut self, to: i64, runs: &mut Vec<std::ops::Range<usize>>) {
        if self.to != self.prev_t {
            self.close(runs);
            self.from = self.prev_t;
        }
        self.to = to;
    }

    /// The open range's steps go into `runs`.
    fn close(&mut self, runs: &mut Vec<std::ops::Range<usize>>) {
        if self.from < self.to {
            let (a, b) = (self.first_at(self.from), self.first_at(self.to));
            if a < b {
                runs.push(a..b);
            }
        }
        (self.from, self.to) = (i64::MIN, i64::MIN);
    }

    /// The first step whose reference time is `t` or later (`n` if none).
    fn first_at(&self, t: i64) -> usize {
        let d = t.saturating_sub(self.r0);
        if d <= 0 {
            0
        } else {
            usize::try_from((d - 1) / self.step + 1).map_or(self.n, |i| i.min(self.n))
        }
    }
}

/// An instant selector's steps over a grid, settled against one series'
/// samples fed in time order, in one slice or in several: each step sees
/// the latest sample at or before its reference time, if [`visible`]. A
/// step is settled by the first sample after its reference time, or by
/// [`Steps::finish`].
#[derive(Default)]
struct Steps {
    /// The first step not settled yet.
    next: usize,
    /// The last sample fed.
    prev: Option<Point>,
}

impl Steps {
    fn feed(&mut self, sel: &InstantSel, ev: &Ev, s: &[Point], points: &mut Vec<Point>) {
        // In locals: fields behind `&mut self` are read and written
        // through memory at every step.
        let (n, mut i, mut k) = (ev.n(), self.next, 0);
        let mut stride = Stride::default();
        while i < n {
            k = stride.advance(s, k, ev.ts(i) - sel.off);
            if k == s.len() {
                break;
            }
            self.settle(sel, ev, i, k.checked_sub(1).map(|k| s[k]), points);
            i += 1;
        }
        self.next = i;
        self.prev = s.last().copied().or(self.prev);
    }

    /// Settles the steps after the last sample fed.
    fn finish(&mut self, sel: &InstantSel, ev: &Ev, points: &mut Vec<Point>) {
        for i in self.next..ev.n() {
            self.settle(sel, ev, i, None, points);
        }
        self.next = ev.n();
    }

    /// Step `i` sees `latest` of the current slice, or the last sample
    /// fed before it. (Reference times only of steps in the grid: past
    /// its end `ts` may overflow.)
    fn settle(
        &self,
        sel: &InstantSel,
        ev: &Ev,
        i: usize,
        latest: Option<Point>,
        points: &mut Vec<Point>,
    ) {
        let ts = ev.ts(i);
        if let Some(p) = latest.or(self.prev)
            && visible(p, ts - sel.off, sel.lb)
        {
            points.push(Point::new(ts, sel.val(p)));
        }
    }
}

pub(crate) fn instant(ev: &Ev, vs: &VectorSelector) -> Result<Val> {
    Ok(Val::Vector(instant_with(ev, vs, false)?))
}

/// `metric smoothed`: the value at each step interpolated between the
/// samples around it (carried forward after the last one).
fn smoothed_instant(ev: &Ev, vs: &VectorSelector) -> Result<Vec<Series>> {
    let (off, at, lo, hi) = steps_in_sample_time(ev, vs)?;
    let lb = ev.ctx.lookback;
    let entries = select(ev, vs)?;
    let n = ev.n();
    ev.ctx.par_map(&entries, |e| {
        let mut samples = read(ev, e, lo - lb, hi + lb)?;
        let loaded = samples.len();
        samples.retain(|p| !is_stale_nan(p.v));
        let mut points = Vec::new();
        for i in 0..n {
            let ts = ev.ts(i);
            let d = at.unwrap_or(ts) - off;
            let a = samples.partition_point(|p| p.t <= d - lb);
            let b = samples.partition_point(|p| p.t <= d + lb);
            if let Some(v) = smoothed_value_at(&samples[a..b], d) {
                points.push(Point::new(ts, v));
            }
        }
        ev.ctx.release(loaded);
        ev.ctx.take(points.len())?;
        Ok((!points.is_empty()).then(|| Series::new(e.labels.clone(), points)))
    })
}

/// `x[5m]` evaluated at an instant: the samples in `(r - range, r]`
/// (extended by `anchored`/`smoothed`).
pub(crate) fn matrix_value(ev: &Ev, ms: &MatrixSelector) -> Result<Val> {
    let vs = &ms.vector;
    let off = ev.offset(&vs.offset)?;
    let range = ev.duration(&ms.range, false)?;
    let r = ev.at_time(&vs.at).unwrap_or(ev.start) - off;
    let lb = ev.ctx.lookback;
    let (mint, maxt) = match vs.range_mode {
        RangeMode::Normal => (r - range + 1, r),
        RangeMode::Anchored => (r - range - lb + 1, r),
        RangeMode::Smoothed => (r - range - lb + 1, r + lb),
    };
    let entries = select(ev, vs)?;
    let series = ev.ctx.par_map(&entries, |e| {
        let mut pts = read(ev, e, mint, maxt)?;
        pts.retain(|p| !is_stale_nan(p.v));
        if pts.is_empty() {
            return Ok(None);
        }
        let pts = match vs.range_mode {
            RangeMode::Normal => pts,
            RangeMode::Anchored => extend_floats(&FnWindow::new(&pts, r - range, r), false),
            RangeMode::Smoothed => extend_floats(&FnWindow::new(&pts, r - range, r), true),
        };
        Ok((!pts.is_empty()).then(|| Series::new(e.labels.clone(), pts)))
    })?;
    Ok(Val::Matrix(series))
}

/// Where the windows of a range-vector argument come from.
pub(crate) enum RangeData {
    Storage(Vec<SeriesEntry>),
    /// Subquery output.
    Memory(Vec<Series>),
}

/// A range-vector argument prepared for rollup.
pub(crate) struct RangeArg {
    pub data: RangeData,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
    pub mode: RangeMode,
    /// Where the argument starts in the query text (its annotations'
    /// position).
    pub pos: Option<usize>,
}

/// One window handed to a range function.
pub(crate) struct Window<'w> {
    /// Samples in the window, sorted, without stale markers. For
    /// `anchored` / `smoothed` selectors this includes the samples up to
    /// one lookback delta before (and, smoothed, after) the range.
    pub points: &'w [Point],
    /// The evaluation timestamp.
    pub t: i64,
    /// The step index.
    pub step: usize,
    /// The range boundaries `(range_start, range_end]` in sample time.
    pub range_start: i64,
    pub range_end: i64,
}

impl RangeArg {
    pub fn from_expr(ev: &Ev, e: &Expr) -> Result<Option<RangeArg>> {
        match e {
            Expr::Matrix(ms) => {
                let vs = &ms.vector;
                Ok(Some(RangeArg {
                    data: RangeData::Storage(select(ev, vs)?),
                    range: ev.duration(&ms.range, false)?,
                    offset: ev.offset(&vs.offset)?,
                    at: ev.at_time(&vs.at),
                    mode: vs.range_mode,
                    pos: Some(vs.position),
                }))
            }
            Expr::Subquery(sq) => {
                let (series, _) = ev.subquery(sq)?;
                Ok(Some(RangeArg {
                    data: RangeData::Memory(series),
                    range: ev.duration(&sq.range, false)?,
                    offset: ev.offset(&sq.offset)?,
                    at: ev.at_time(&sq.at),
                    mode: RangeMode::Normal,
                    pos: super::evaluator::expr_pos(e),
                }))
            }
            Expr::Paren(x) => RangeArg::from_expr(ev, x),
            _ => Ok(None),
        }
    }

    /// Number of input series.
    pub fn len(&self) -> usize {
        match &self.data {
            RangeData::Storage(e) => e.len(),
            RangeData::Memory(s) => s.len(),
        }
    }

    /// Labels of input series `i` and whether its name is already marked
    /// for dropping.
    pub fn labels(&self, i: usize) -> (&Labels, bool) {
        match &self.data {
            RangeData::Storage(e) => (&e[i].labels, false),
            RangeData::Memory(s) => (&s[i].labels, s[i].drop_name),
        }
    }

    /// Runs `f` on every window of every series across the grid; `f`
    /// returns the output value of one step (or none, or an error). Output
    /// series carry the input's labels; the caller decides about the name.
    pub fn rollup<F>(&self, ev: &Ev, f: F) -> Result<Vec<Series>>
    where
        F: Fn(usize, &Window) -> Result<Option<f64>> + Sync,
    {
        self.rollup_spans(ev, |i, pts, spans, out| {
            for sp in spans {
                let w = Window {
                    points: &pts[sp.a..sp.b],
                    t: sp.t,
                    step: sp.step,
                    range_start: sp.range_start,
                    range_end: sp.range_end,
                };
                if let Some(v) = f(i, &w)? {
                    out.push(Point::new(sp.t, v));
                }
            }
            Ok(())
        })
    }

    /// Runs `f` once per series with all of its samples (sorted, stale
    /// markers removed) and the non-empty windows of every step, in step
    /// order (both window ends never move back); `f` appends the output
    /// points. Far-apart steps read one window at a time: `f` then sees
    /// one span per call. Output series carry the input's labels; the
    /// caller decides about the name.
    pub fn rollup_spans<F>(&self, ev: &Ev, f: F) -> Result<Vec<Series>>
    where
        F: Fn(usize, &[Point], &[Span], &mut Vec<Point>) -> Result<()> + Sync,
    {
        self.each_series(ev, |plan, i, out| self.series(ev, plan, i, &f, out))
    }

    /// `resets` over every series, through normal or `anchored` windows:
    /// its decreases, and where its samples carry start timestamps, its
    /// restarts by them too.
    pub fn rollup_resets(&self, ev: &Ev) -> Result<Vec<Series>> {
        let anchored = self.mode == RangeMode::Anchored;
        // The samples a window counts over: an anchored one's from the
        // last at or before its start (none without one after it).
        let counted = |w: &FnWindow<'_>| match anchored {
            true => fx::anchor_index(w),
            false => Some(0),
        };
        let plain = |_: usize, pts: &[Point], spans: &[Span], out: &mut Vec<Point>| {
            for sp in spans {
                let w = span_window(pts, sp);
                let v = match anchored {
                    true => fx::anchored_resets(&w),
                    false => fr::resets(&w),
                };
                if let Some(v) = v {
                    out.push(Point::new(sp.t, v));
                }
            }
            Ok(())
        };
        let with_starts = |pts: &[Point], starts: &[i64], spans: &[Span], out: &mut Vec<Point>| {
            for sp in spans {
                let w = span_window(pts, sp);
                let Some(k) = counted(&w) else { continue };
                let w = FnWindow::new(&w.samples[k..], w.start_ms, w.end_ms);
                if let Some(v) = fs::resets(&w, &starts[sp.a + k..sp.b]) {
                    out.push(Point::new(sp.t, v));
                }
            }
            0
        };
        self.each_series(ev, |plan, i, out| {
            if self.stored_with_starts(i)
                && self.series_with_starts(ev, plan, i, &with_starts, out)?
            {
                return Ok(());
            }
            self.series(ev, plan, i, &plain, out)
        })
    }

    /// [`RangeArg::rollup_spans`] running `kernel` on every series
    /// ([`RangeArg::series_kernel`]); `param(step)` is its scalar argument.
    pub fn rollup_kernel(
        &self,
        ev: &Ev,
        kernel: Kernel,
        param: &(dyn Fn(usize) -> f64 + Sync),
    ) -> Result<Vec<Series>> {
        self.each_series(ev, |plan, i, out| {
            self.series_kernel(ev, plan, i, kernel, param, out)
        })
    }

    /// The output series of `run(plan, i, out)` for every input series
    /// `i`, spread over the query's threads; series without points are
    /// left out.
    fn each_series<R>(&self, ev: &Ev, run: R) -> Result<Vec<Series>>
    where
        R: Fn(&RollupPlan, usize, &mut Vec<Point>) -> Result<()> + Sync,
    {
        let plan = self.plan(ev);
        let idx: Vec<usize> = (0..self.len()).collect();
        ev.ctx.par_map(&idx, |&i| {
            let mut out = Vec::new();
            run(&plan, i, &mut out)?;
            let (labels, drop) = self.labels(i);
            Ok((!out.is_empty()).then(|| Series {
                labels: labels.clone(),
                points: out,
                drop_name: drop,
            }))
        })
    }

    /// [`RangeArg::series`] running `kernel`. An instant query's one
    /// window over a stored series is folded ([`WindowFold`]) from the
    /// storage's slices where they lie, without gathering the samples
    /// first: a long window (`avg_over_time(up[30d])`) costs a pass over
    /// the cached pages instead of a copy and a pass.
    pub fn series_kernel(
        &self,
        ev: &Ev,
        plan: &RollupPlan,
        i: usize,
        kernel: Kernel,
        param: &dyn Fn(usize) -> f64,
        out: &mut Vec<Point>,
    ) -> Result<()> {
        if kernel.reads_starts()
            && self.may_have_starts(i)
            && self.series_with_starts(
                ev,
                plan,
                i,
                &|p, st, sp, o| kernel.run_starts(p, st, sp, o),
                out,
            )?
        {
            return Ok(());
        }
        if ev.n() == 1
            && !plan.sparse
            && let RangeData::Storage(entries) = &self.data
            && let t = ev.ts(0)
            && let r = self.at.unwrap_or(t) - self.offset
            && let Some(mut fold) = WindowFold::for_window(
                kernel,
                &Span {
                    step: 0,
                    t,
                    a: 0,
                    b: 0,
                    range_start: r - self.range,
                    range_end: r,
                },
                param(0),
            )
        {
            ev.ctx.check()?;
            // The window `(r - range - before, r + after]`, as `series` reads it.
            let (mint, maxt) = (r - self.range - plan.before + 1, r + plan.after);
            let mut loaded = 0;
            let in_order = mint > maxt
                || ev.ctx.querier.visit_samples(
                    &entries[i],
                    mint,
                    maxt,
                    true,
                    &mut |s, summary, _| {
                        loaded += s.len();
                        match summary {
                            Some(summary) => fold.add_summarized(s, &summary),
                            None => fold.add(s),
                        }
                    },
                )?;
            if in_order && let Some(v) = fold.value() {
                // Accounted for as if held, as `series` does.
                ev.ctx.loaded(loaded);
                ev.ctx.take(loaded)?;
                ev.ctx.release(loaded);
                out.extend(v.map(|v| Point::new(t, v)));
                return ev.ctx.take(out.len());
            }
            // Overlapping sources, or an average that needs its whole window.
        }
        let run = |_: usize, pts: &[Point], spans: &[Span], out: &mut Vec<Point>| {
            kernel.run(pts, spans, param, out);
            Ok(())
        };
        self.series(ev, plan, i, &run, out)
    }

    /// Runs `f` over series `i` (for which [`RangeArg::may_have_starts`])
    /// when some of its samples in the span `plan` reads carry start
    /// timestamps: `f` gets the samples (stale markers removed, as
    /// [`RangeArg::series`] reads them), their start timestamps (0 where
    /// unknown) and steps' windows, appends the output points and says in
    /// how many windows a start overlapped the sample before it (reported
    /// here). Returns `Ok(false)`, having done nothing, when none of them
    /// has one.
    #[cold]
    #[inline(never)]
    fn series_with_starts(
        &self,
        ev: &Ev,
        plan: &RollupPlan,
        i: usize,
        f: &StartsRun<'_>,
        out: &mut Vec<Point>,
    ) -> Result<bool> {
        let RangeData::Storage(entries) = &self.data else {
            return Ok(false);
        };
        let e = &entries[i];
        let (mint, maxt) = (
            plan.first_r - self.range - plan.before + 1,
            plan.last_r + plan.after,
        );
        let runs = ev.ctx.querier.start_timestamps(e, mint, maxt)?;
        if runs.is_empty() {
            return Ok(false);
        }
        let overlaps = std::cell::Cell::new(0);
        let run = |_: usize, pts: &[Point], spans: &[Span], out: &mut Vec<Point>| {
            let mut starts = Vec::new();
            engine::align_starts(&runs, pts, &mut starts);
            overlaps.set(overlaps.get() + f(pts, &starts, spans, out));
            Ok(())
        };
        self.series(ev, plan, i, &run, out)?;
        if overlaps.get() > 0 {
            let name = e.labels.metric_name().unwrap_or_default();
            ev.ctx.annos.add_fn(
                super::functions::annotations::Annotation::StartTimeOverlap {
                    metric_name: name.to_string(),
                    count: overlaps.get() as u64,
                },
                self.pos,
            );
        }
        Ok(true)
    }

    /// Whether series `i` is a stored one that held start timestamps when
    /// selected, read through normal windows (`anchored`/`smoothed` rates
    /// use none, nor do subqueries, as in Prometheus; `resets` reads them
    /// through `anchored` ones too, [`RangeArg::rollup_resets`]): checked
    /// inline, so that series without any, nearly all, never call
    /// [`RangeArg::series_with_starts`].
    #[inline]
    fn may_have_starts(&self, i: usize) -> bool {
        self.mode == RangeMode::Normal && self.stored_with_starts(i)
    }

    #[inline]
    fn stored_with_starts(&self, i: usize) -> bool {
        matches!(&self.data, RangeData::Storage(e) if e[i].has_starts())
    }

    /// The window of every step over `pts` (a series' samples in the span
    /// `plan` reads, sorted) that holds samples, in step order.
    #[inline]
    fn spans(&self, ev: &Ev, plan: &RollupPlan, pts: &[Point], spans: &mut Vec<Span>) {
        spans.clear();
        let n = ev.n();
        let (before, after) = (plan.before, plan.after);
        let (mut a, mut b) = (0usize, 0usize);
        let (mut stride_a, mut stride_b) = (Stride::default(), Stride::default());
        for step in 0..n {
            let t = ev.ts(step);
            // With `@` every step sees the same window (the function
            // still gets each step's time, as `predict_linear` needs).
            let r = self.at.unwrap_or(t) - self.offset;
            let lo = r - self.range - before;
            let hi = r + after;
            a = stride_a.advance(pts, a, lo);
            b = stride_b.advance(pts, b.max(a), hi);
            if a < b {
                spans.push(Span {
                    step,
                    t,
                    a,
                    b,
                    range_start: r - self.range,
                    range_end: r,
                });
            }
        }
    }

    /// What every series' rollup shares: the read span around the steps.
    pub fn plan(&self, ev: &Ev) -> RollupPlan {
        let lb = ev.ctx.lookback;
        let (before, after) = match self.mode {
            RangeMode::Normal => (0, 0),
            RangeMode::Anchored => (lb, 0),
            RangeMode::Smoothed => (lb, lb),
        };
        let (first_r, last_r) = match self.at {
            Some(t) => (t - self.offset, t - self.offset),
            None => (ev.start - self.offset, ev.end - self.offset),
        };
        let sparse = self.at.is_none()
            && matches!(self.data, RangeData::Storage(_))
            && is_sparse(ev, self.range + before + after);
        RollupPlan {
            before,
            after,
            first_r,
            last_r,
            sparse,
        }
    }

    /// [`RangeArg::rollup_spans`] for series `i` alone: `f`'s output
    /// points go to `out` (empty on entry) and are accounted for in the
    /// query's sample budget.
    pub fn series<F>(
        &self,
        ev: &Ev,
        plan: &RollupPlan,
        i: usize,
        f: &F,
        out: &mut Vec<Point>,
    ) -> Result<()>
    where
        F: Fn(usize, &[Point], &[Span], &mut Vec<Point>) -> Result<()>,
    {
        ev.ctx.check()?;
        let (before, after) = (plan.before, plan.after);
        if plan.sparse
            && let RangeData::Storage(entries) = &self.data
        {
            // Steps far apart: read each step's window only.
            for step in 0..ev.n() {
                let t = ev.ts(step);
                let r = t - self.offset;
                let mut v = read(ev, &entries[i], r - self.range - before + 1, r + after)?;
                let loaded = v.len();
                v.retain(|p| !is_stale_nan(p.v));
                if !v.is_empty() {
                    let sp = Span {
                        step,
                        t,
                        a: 0,
                        b: v.len(),
                        range_start: r - self.range,
                        range_end: r,
                    };
                    f(i, &v, &[sp], out)?;
                }
                ev.ctx.release(loaded);
            }
            return ev.ctx.take(out.len());
        }
        let (mut owned, mut spans) = SERIES_BUF.take();
        let pts: &[Point] = match &self.data {
            RangeData::Storage(entries) => {
                let v = &mut owned;
                if let Err(e) = read_into(
                    ev,
                    &entries[i],
                    plan.first_r - self.range - before + 1,
                    plan.last_r + after,
                    v,
                ) {
                    SERIES_BUF.set((owned, spans));
                    return Err(e);
                }
                let loaded = v.len();
                if any_stale(v) {
                    v.retain(|p| !is_stale_nan(p.v));
                }
                ev.ctx.release(loaded - v.len());
                v
            }
            RangeData::Memory(s) => &s[i].points,
        };
        self.spans(ev, plan, pts, &mut spans);
        out.reserve(spans.len());
        let res = f(i, pts, &spans, out);
        if let RangeData::Storage(_) = &self.data {
            ev.ctx.release(pts.len());
        }
        if owned.capacity() <= SERIES_BUF_KEEP {
            SERIES_BUF.set((owned, spans));
        }
        res?;
        ev.ctx.take(out.len())
    }
}

/// What [`RangeArg::series_with_starts`] runs: samples, their start
/// timestamps and the steps' windows in, output points and the count of
/// windows where a start overlapped the sample before it out.
pub(crate) type StartsRun<'a> = dyn Fn(&[Point], &[i64], &[Span], &mut Vec<Point>) -> usize + 'a;

/// Span `sp`'s window over `pts`.
fn span_window<'a>(pts: &'a [Point], sp: &Span) -> FnWindow<'a> {
    FnWindow::new(&pts[sp.a..sp.b], sp.range_start, sp.range_end)
}

/// The read span of a [`RangeArg`]'s rollup ([`RangeArg::plan`]).
pub(crate) struct RollupPlan {
    /// How far `anchored`/`smoothed` windows reach before and after the
    /// range.
    before: i64,
    after: i64,
    /// Sample time of the first and last step.
    first_r: i64,
    last_r: i64,
    /// Steps so far apart that each reads its own window.
    sparse: bool,
}

/// The first index from `i` on whose sample is after `limit` (samples
/// sorted by time). A plain scan over the first few samples: steps move
/// a window a few samples at a time, by the same count on regular data,
/// which the branch predictor learns (a branch-free count over blocks of
/// 8 was a third slower). Farther moves (the first window of a series,
/// an instant query's whole window) finish with a binary search.
#[inline]
fn advance(pts: &[Point], mut i: usize, limit: i64) -> usize {
    let scan = pts.len().min(i + ADVANCE_SCAN);
    while i < scan {
        if pts[i].t > limit {
            return i;
        }
        i += 1;
    }
    if i < pts.len() && pts[i].t <= limit {
        i += pts[i..].partition_point(|p| p.t <= limit);
    }
    i
}

/// How far a cursor over a series' samples (a window end, an instant
/// selector's step) moved at its last [`Stride::advance`]. On regular
/// data every step moves it by the same count: the next advance checks
/// that guess first, with two comparisons whose outcome the branch
/// predictor learns, before [`advance`]'s scan, whose exit after a few
/// samples is often mispredicted.
#[derive(Debug, Default, Clone, Copy)]
struct Stride(usize);

impl Stride {
    /// [`advance`]`(pts, i, limit)`, trying `i` plus the last stride first.
    #[inline]
    fn advance(&mut self, pts: &[Point], i: usize, limit: i64) -> usize {
        let g = i + self.0;
        let k = if g < pts.len() && pts[g].t > limit && (g == 0 || pts[g - 1].t <= limit) {
            g
        } else {
            advance(pts, i, limit)
        };
        self.0 = k - i;
        k
    }
}

/// Samples [`advance`] scans before it searches.
const ADVANCE_SCAN: usize = 16;

/// One step's window over a series' samples: `points[a..b]` (never
/// empty).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub step: usize,
    /// The evaluation timestamp.
    pub t: i64,
    pub a: usize,
    pub b: usize,
    /// The range boundaries `(range_start, range_end]` in sample time.
    pub range_start: i64,
    pub range_end: i64,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Slices [`Coverage::feed`] took by their two ends in
    /// [`InstantSel::covered`], over all tests of the process.
    static SLICES_TAKEN_WHOLE: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn count_whole(whole: bool) {
        SLICES_TAKEN_WHOLE.fetch_add(usize::from(whole), Ordering::Relaxed);
    }

    pub(in crate::eval) fn slices_taken_whole() -> usize {
        SLICES_TAKEN_WHOLE.load(Ordering::Relaxed)
    }

    fn p(t: i64, v: f64) -> Point {
        Point::new(t, v)
    }

    /// The steps a model of the lookback sees a sample at: the latest
    /// sample at or before the step's reference time, if within the
    /// lookback and not a stale marker.
    fn seen_steps(samples: &[Point], r0: i64, step: i64, n: usize, lb: i64) -> Vec<usize> {
        (0..n)
            .filter(|&i| {
                let r = r0 + i as i64 * step;
                samples
                    .iter()
                    .rev()
                    .find(|q| q.t <= r)
                    .is_some_and(|q| visible(*q, r, lb))
            })
            .collect()
    }

    #[test]
    fn coverage_gives_the_steps_the_lookback_sees() {
        let stale = f64::from_bits(engine::STALE_NAN);
        let mut next = super::super::tests::xorshift(0x853c_49e6_748f_ea9b);
        let mut rnd = move |n: u64| next() % n;
        // Slices taken as one range, by their two ends.
        let mut whole = 0;
        for case in 0..400 {
            let lb = [300, 1, 60, 1000][case % 4];
            let step = [7, 60, 1, 300, 301][case % 5];
            let n = 1 + rnd(60) as usize;
            let r0 = rnd(2000) as i64 - 1000;
            // Times from before the grid to past it, negative too, with
            // equal times, gaps at and around the lookback, stale markers.
            let mut t = r0 - rnd(3 * lb as u64 + 3) as i64;
            // A third of the cases are regular: no gap wider than the
            // lookback, no stale marker; a third have no stale marker.
            let regular = case % 3 == 0;
            let mut samples = Vec::new();
            for _ in 0..rnd(80) {
                let marker = case % 3 == 2 && rnd(6) == 0;
                samples.push(p(t, if marker { stale } else { 1.0 }));
                t += match rnd(8) {
                    0 => 0,
                    1 => lb,
                    2 if !regular => lb + 1,
                    3 => lb - 1,
                    _ if regular => rnd(lb as u64 + 1) as i64,
                    _ => rnd(2 * lb as u64 + 2) as i64,
                };
            }
            // Equal times keep the last sample, as storage does.
            samples.dedup_by(|b, a| {
                let same = a.t == b.t;
                if same {
                    *a = *b;
                }
                same
            });
            let mut cover = Coverage::new(r0, step, n, lb);
            let mut runs = Vec::new();
            let mut rest = &samples[..];
            while !rest.is_empty() {
                let (slice, more) = rest.split_at(1 + rnd(rest.len() as u64) as usize);
                // What storage may know of the slice: nothing, its widest
                // gap and stale markers exactly, or a looser bound that
                // still keeps it unbroken.
                let exact = Continuity::of(slice);
                let c = match rnd(3) {
                    0 => Continuity::UNKNOWN,
                    1 => exact,
                    _ => Continuity {
                        max_gap: exact.max_gap.max(lb),
                        ..exact
                    },
                };
                whole += usize::from(cover.feed(slice, c, &mut runs));
                rest = more;
            }
            cover.finish(&mut runs);
            let got: Vec<usize> = runs.iter().flat_map(|r| r.clone()).collect();
            assert!(runs.windows(2).all(|w| w[0].end <= w[1].start));
            assert_eq!(
                got,
                seen_steps(&samples, r0, step, n, lb),
                "case {case}: {samples:?}"
            );
        }
        assert!(whole > 100, "{whole} slices taken whole");
    }

    #[test]
    fn advance_finds_the_first_sample_after_the_limit() {
        let pts: Vec<Point> = (0..400).map(|i| p(i * 10, 0.0)).collect();
        for start in [0, 1, 3, 8, 15, 16, 17, 31, 32, 33, 39, 40, 399, 400] {
            for limit in [
                -5, 0, 5, 10, 75, 79, 80, 81, 150, 155, 160, 165, 200, 315, 389, 390, 1000, 3990,
                5000,
            ] {
                let want = start.max(pts.partition_point(|q| q.t <= limit));
                assert_eq!(advance(&pts, start, limit), want, "{start} {limit}");
            }
        }
    }

    #[test]
    fn stride_advance_agrees_with_advance() {
        let pts: Vec<Point> = (0..400).map(|i| p(i * 10 + i % 3, 0.0)).collect();
        for start in [0, 1, 3, 8, 16, 17, 40, 399, 400] {
            for moved in [0, 1, 2, 4, 5, 17, 500] {
                for limit in [-5, 0, 5, 10, 75, 80, 81, 160, 165, 389, 1000, 3990, 5000] {
                    let mut stride = Stride(moved);
                    let want = advance(&pts, start, limit);
                    assert_eq!(
                        stride.advance(&pts, start, limit),
                        want,
                        "{start} {moved} {limit}"
                    );
                    assert_eq!(stride.0, want - start, "the stride is the move");
                }
            }
        }
    }

    #[test]
    fn any_stale_finds_a_marker_anywhere() {
        let stale = f64::from_bits(engine::STALE_NAN);
        let mut pts: Vec<Point> = (0..200).map(|i| p(i, f64::NAN)).collect();
        assert!(!any_stale(&pts), "a NaN that is not the marker");
        assert!(!any_stale(&[]));
        for at in [0, 63, 64, 150, 199] {
            pts[at].v = stale;
            assert!(any_stale(&pts), "{at}");
            pts[at].v = 1.0;
        }
    }

    /// The walk reads in place wherever the sources do not overlap (the
    /// model test over the same data checks its answers, which the merging
    /// read alone would also give), and leaves `points` as it found them
    /// where they do.
    #[test]
    fn walk_reads_in_place_unless_sources_overlap() {
        let (_d, db, _, end) = crate::eval::tests::blocks_and_head_db();
        let expr = crate::promql::parse("g").unwrap();
        let Expr::Vector(vs) = &expr else {
            panic!("not a selector: {expr:?}")
        };
        let opts = crate::eval::QueryOptions::default();
        let plan =
            super::super::evaluator::Plan::new(&db, &expr, 7_777, end, 61_000, &opts).unwrap();
        plan.with_ev(|ev| {
            let sel = InstantSel::new(ev, vs, false).unwrap();
            let entries = select(ev, vs).unwrap();
            assert_eq!(entries.len(), 5);
            for e in &entries {
                let kind = e.labels.get("kind").unwrap();
                let mut points = vec![p(-1, 0.0)];
                let walked = sel.walk(ev, e, &mut points).unwrap();
                assert_eq!(walked, kind != "overlap", "{kind}");
                if walked {
                    assert!(points.len() > 1_000, "{kind}: {}", points.len());
                } else {
                    assert_eq!(points.len(), 1, "{kind}");
                }
            }
        });
    }

    #[test]
    fn lookup_is_left_open_and_hides_stale() {
        let s = [
            p(0, 1.0),
            p(10, 2.0),
            p(20, f64::from_bits(engine::STALE_NAN)),
        ];
        assert_eq!(lookup(&s, 5, 300).map(|p| p.v), Some(1.0));
        assert_eq!(lookup(&s, 10, 300).map(|p| p.v), Some(2.0));
        assert_eq!(lookup(&s, 310, 300), None, "(310-300, 310] excludes t=10");
        assert_eq!(lookup(&s, 309, 300), None, "stale marker at 20 hides");
        assert_eq!(lookup(&s, 15, 300).map(|p| p.v), Some(2.0));
        assert_eq!(lookup(&s, -1, 300), None);
    }
}
