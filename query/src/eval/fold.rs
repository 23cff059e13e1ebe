//! Aggregations folded into the evaluation of their argument. For
//! `sum by (instance) (rate(x[5m]))` or `count by (job) (up)`, each input
//! series' values over the grid go straight into its group's
//! accumulators instead of first becoming a series of the argument's
//! result: the argument's result (a point per series and step) is never
//! held, and a worker reuses one buffer for every series it evaluates.
//!
//! The answer is the same, bit for bit, as evaluating the argument and
//! then aggregating it ([`super::aggregate::eval`]): every accumulator
//! cell sees its inputs in series order. Work is split by group, each
//! task owning a run of groups and their series. With fewer groups than
//! that needs, `count` and `group`, whose cells are exact counts, split
//! by series and add the tasks' counts up; so do they where one group
//! holds more than a thread's share of the series, and the other
//! aggregations are then not folded (one thread would do most of the
//! work).
//!
//! The sample limit counts what a query holds at once: folded, that is
//! the accumulators and one series per worker, not the argument's result,
//! so a folded aggregation may pass where the unfolded one would hold
//! too much.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::labels::identity_hash;
use engine::{Labels, METRIC_NAME, SeriesEntry};

use super::aggregate::{Acc, Cells, Folded};
use super::call::{keeps_metric_name, warns_non_counter};
use super::error::Result;
use super::evaluator::{Ev, Val, assumed_samples, drop_names_strictly, expr_pos, unparen};
use super::functions::annotations as fa;
use super::functions::call::RangeFunction;
use super::groups::{Groups, LabelIndex};
use super::rollup::Kernel;
use super::selector::{self, InstantSel, RangeArg, RollupPlan};
use super::value::{Point, Series, get, is_metadata_label, metadata};
use crate::promql::ast::{AggregateExpr, AggregateOp, Call, Expr, RangeMode};

/// Where an input series' values come from.
enum Source {
    /// An instant vector selector.
    Instant {
        sel: InstantSel,
        entries: Vec<SeriesEntry>,
    },
    /// A range function with a [`Kernel`] over a range selector.
    Rollup {
        arg: RangeArg,
        plan: RollupPlan,
        kernel: Kernel,
        /// The function's scalar argument per step (`predict_linear`).
        param: Vec<f64>,
        /// Whether the function's output drops the metric name.
        drop_name: bool,
        /// `rate`/`increase`: warn about series not named like counters.
        counter_check: Option<usize>,
    },
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Instant { entries, .. } => entries.len(),
            Source::Rollup { arg, .. } => arg.len(),
        }
    }

    fn labels(&self, i: usize) -> &Labels {
        match self {
            Source::Instant { entries, .. } => &entries[i].labels,
            Source::Rollup { arg, .. } => arg.labels(i).0,
        }
    }

    fn drop_name(&self) -> bool {
        match self {
            Source::Instant { .. } => false,
            Source::Rollup { drop_name, .. } => *drop_name,
        }
    }

    /// Series `i`'s values over the grid into `out` (empty on entry),
    /// accounted for in the query's sample budget.
    fn points(&self, ev: &Ev, i: usize, out: &mut Vec<Point>) -> Result<()> {
        match self {
            Source::Instant { sel, entries } => sel.points(ev, &entries[i], out),
            Source::Rollup {
                arg,
                plan,
                kernel,
                param,
                ..
            } => {
                let sc = |step: usize| param.get(step).copied().unwrap_or(f64::NAN);
                arg.series_kernel(ev, plan, i, *kernel, &sc, out)
            }
        }
    }

    /// Where `rate`/`increase` report series not named like counters.
    fn counter_check(&self) -> Option<usize> {
        match self {
            Source::Rollup { counter_check, .. } => *counter_check,
            Source::Instant { .. } => None,
        }
    }

    /// Reports the annotations of the series with output (`gave(i)`), in
    /// series order, as the unfolded function does.
    fn annotate(&self, ev: &Ev, mut gave: impl FnMut(usize) -> bool) {
        let Some(pos) = self.counter_check() else {
            return;
        };
        for i in (0..self.len()).filter(|&i| gave(i)) {
            if let Some(a) = fa::possible_non_counter(get(self.labels(i), METRIC_NAME)) {
                ev.ctx.annos.add_fn(a, Some(pos));
            }
        }
    }
}

/// A range function call this module folds: one with a [`Kernel`] over a
/// range selector (not `absent_over_time`, which answers for what is
/// missing), with the kernel and the range argument's index.
fn kernel_call(c: &Call) -> Option<(Kernel, usize)> {
    if c.func.name == "absent_over_time" {
        return None;
    }
    let rf = RangeFunction::from_name(c.func.name)?;
    let mi = c
        .args
        .iter()
        .position(|a| matches!(unparen(a), Expr::Matrix(_)))?;
    let Expr::Matrix(ms) = unparen(&c.args[mi]) else {
        return None;
    };
    Some((Kernel::for_function(rf, ms.vector.range_mode)?, mi))
}

/// Whether `e` is an argument this module folds (decided before anything
/// is evaluated, so that declining costs nothing).
fn foldable(e: &Expr) -> bool {
    match unparen(e) {
        Expr::Vector(vs) => vs.range_mode != RangeMode::Smoothed,
        Expr::Call(c) => kernel_call(c).is_some(),
        _ => false,
    }
}

/// The source of a [`foldable`] argument: evaluates the function's scalar
/// arguments and selects the series, in the order the unfolded evaluation
/// does.
fn source(ev: &Ev, e: &Expr) -> Result<Option<Source>> {
    match unparen(e) {
        Expr::Vector(vs) if vs.range_mode != RangeMode::Smoothed => {
            let sel = InstantSel::new(ev, vs, false)?;
            let entries = selector::select(ev, vs)?;
            Ok(Some(Source::Instant { sel, entries }))
        }
        Expr::Call(c) => {
            let Some((kernel, mi)) = kernel_call(c) else {
                return Ok(None);
            };
            let mut scalars = Vec::new();
            for (i, a) in c.args.iter().enumerate() {
                if i != mi {
                    scalars.push(ev.eval(a)?.into_scalar()?);
                }
            }
            let Some(arg) = RangeArg::from_expr(ev, &c.args[mi])? else {
                return Ok(None);
            };
            let pos = expr_pos(&c.args[0]).unwrap_or(c.position);
            let name = c.func.name;
            Ok(Some(Source::Rollup {
                plan: arg.plan(ev),
                arg,
                kernel,
                param: scalars.into_iter().next().unwrap_or_default(),
                drop_name: !keeps_metric_name(name),
                counter_check: warns_non_counter(name).then_some(pos),
            }))
        }
        _ => Ok(None),
    }
}

/// Evaluates `a` folded into its argument's evaluation, or returns `None`
/// (having evaluated nothing) when `a` is not of a form this module
/// folds. `grouping` is sorted.
pub(crate) fn eval(ev: &Ev, a: &AggregateExpr, grouping: &[String]) -> Result<Option<Val>> {
    let op = a.op;
    let counts = matches!(op, AggregateOp::Count | AggregateOp::Group);
    if !(counts
        || matches!(
            op,
            AggregateOp::Sum | AggregateOp::Avg | AggregateOp::Min | AggregateOp::Max
        ))
        || !foldable(&a.expr)
    {
        return Ok(None);
    }
    let Some(src) = source(ev, &a.expr)? else {
        return Ok(None);
    };
    if !ev.ctx.delayed_name_removal
        && src.drop_name()
        && !names_drop_cleanly(&src, grouping, a.without)
    {
        return fallback(ev, a, grouping, src);
    }
    let n = ev.n();
    // Groups in order of the first series; reordered below by the first
    // series that gives a point, as the unfolded aggregation sees them.
    let mut by_labels = Groups::new(grouping, a.without);
    let mut to_group = Vec::with_capacity(src.len());
    // Each group's series, in series order.
    let mut members: Vec<Vec<usize>> = Vec::new();
    for i in 0..src.len() {
        let g = by_labels.group(src.labels(i));
        if g == members.len() {
            members.push(Vec::new());
        }
        to_group.push(g);
        members[g].push(i);
    }
    let keys = by_labels.into_keys();
    let groups = keys.len();
    let cells = groups.saturating_mul(n);
    let threads = ev.ctx.threads;
    // One accumulator per group and step, as the unfolded aggregation
    // keeps where its input has at least four points per cell (and
    // within the sample budget, which its input has passed).
    let few_cells = cells <= 1 << 16
        || (cells.saturating_mul(4) <= src.len().saturating_mul(n)
            && cells.saturating_mul(4) <= ev.ctx.max_samples());
    // Too few groups to split by, or one group with more than a thread's
    // share of the series: counts split by series, the others are not
    // folded (one thread would do most of the work).
    let largest = members.iter().map(Vec::len).max().unwrap_or(0);
    let by_series =
        threads > 1 && (groups < 2 * threads || largest.saturating_mul(threads) > src.len());
    if groups == 0 || !few_cells || (by_series && !counts) {
        return fallback(ev, a, grouping, src);
    }
    let fold = Fold {
        ev,
        src: &src,
        acc: Acc::new(op),
        gave: match src.counter_check() {
            Some(_) => (0..src.len()).map(|_| AtomicBool::new(false)).collect(),
            None => Vec::new(),
        },
    };
    let folded = if by_series {
        fold.by_series_chunks(&to_group, groups)?
    } else {
        fold.by_group_runs(&members)?
    };
    src.annotate(ev, |i| fold.gave[i].load(Ordering::Relaxed));
    let mut out: Vec<(usize, Series)> = folded
        .into_iter()
        .zip(keys)
        .filter_map(|(f, labels)| {
            let first = f.first?;
            Some((
                first,
                Series {
                    labels,
                    points: f.points,
                    drop_name: f.drop_name,
                },
            ))
        })
        .filter(|(_, s)| !s.points.is_empty())
        .collect();
    out.sort_by_key(|(first, _)| *first);
    let out: Vec<Series> = out.into_iter().map(|(_, s)| s).collect();
    ev.ctx.take(out.iter().map(|s| s.points.len()).sum())?;
    Ok(Some(Val::Vector(out)))
}

/// Whether folding `src`, whose function drops the metric name, into an
/// aggregation by `grouping` groups its series as they would be grouped
/// with their names dropped first (without delayed name removal, the
/// function drops them at once and fails if two of its series are then
/// equal): `by` does not name `__name__`, no series has a `__type__` or
/// `__unit__` (dropped with the name), and no two series differ in their
/// name alone. Most selectors name one metric, which settles the last
/// without hashing.
fn names_drop_cleanly(src: &Source, grouping: &[String], without: bool) -> bool {
    if !without && grouping.iter().any(|g| is_metadata_label(g)) {
        return false;
    }
    let n = src.len();
    // One look at each series' first labels: its name, or `None` if it
    // has `__type__` or `__unit__`.
    let name = |i: usize| {
        let mut name = "";
        for l in metadata(src.labels(i)) {
            if l.name != METRIC_NAME {
                return None;
            }
            name = &l.value;
        }
        Some(name)
    };
    let mut names = (0..n).map(name);
    let first = match names.next() {
        None => return true,
        Some(None) => return false,
        Some(Some(first)) => first,
    };
    let mut one_name = true;
    for x in names {
        match x {
            None => return false,
            Some(x) => one_name &= x == first,
        }
    }
    if one_name {
        return true;
    }
    let mut seen = LabelIndex::with_capacity(n);
    let unnamed = |i: usize| {
        src.labels(i)
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .map(|l| (l.name.as_str(), l.value.as_str()))
    };
    for i in 0..n {
        let h = identity_hash(unnamed(i));
        if seen.find(h, |j| unnamed(j).eq(unnamed(i))).is_some() {
            return false;
        }
        seen.add(h);
    }
    true
}

/// The unfolded path for a source already selected: its series
/// evaluated, then aggregated (their names dropped first unless removal
/// is delayed).
fn fallback(ev: &Ev, a: &AggregateExpr, grouping: &[String], src: Source) -> Result<Option<Val>> {
    let drop_name = src.drop_name();
    let idx: Vec<usize> = (0..src.len()).collect();
    let input = ev.ctx.par_map(&idx, |&i| {
        let mut points = Vec::new();
        src.points(ev, i, &mut points)?;
        Ok((!points.is_empty()).then(|| {
            (
                i,
                Series {
                    labels: src.labels(i).clone(),
                    points,
                    drop_name,
                },
            )
        }))
    })?;
    let mut next = input.iter().map(|(i, _)| *i).peekable();
    src.annotate(ev, |i| next.next_if_eq(&i).is_some());
    let mut input = input.into_iter().map(|(_, s)| s).collect();
    if drop_name && !ev.ctx.delayed_name_removal {
        input = drop_names_strictly(input)?;
    }
    super::aggregate::aggregate(ev, a, grouping, None, input).map(Some)
}

thread_local! {
    /// A worker's buffer for one series' values, reused series after
    /// series.
    static POINTS: std::cell::Cell<Vec<Point>> = const { std::cell::Cell::new(Vec::new()) };
}

thread_local! {
    /// A worker's buffer for the steps one series covers
    /// ([`InstantSel::covered`]), reused series after series.
    static RUNS: std::cell::Cell<Vec<std::ops::Range<usize>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest buffer (in points) a thread keeps between queries.
const POINTS_KEEP: usize = 1 << 16;

/// Runs `f` with the thread's series buffer.
fn with_points<R>(f: impl FnOnce(&mut Vec<Point>) -> R) -> R {
    let mut buf = POINTS.take();
    let r = f(&mut buf);
    if buf.capacity() <= POINTS_KEEP {
        buf.clear();
        POINTS.set(buf);
    }
    r
}

/// Runs `f` with `cells` accumulator cells accounted for in the query's
/// sample budget.
fn holding<R>(ev: &Ev, cells: usize, f: impl FnOnce() -> Result<R>) -> Result<R> {
    ev.ctx.take(cells)?;
    let r = f();
    ev.ctx.release(cells);
    r
}

/// One folded evaluation: where the series come from, how cells
/// accumulate, and (where the source reports annotations) which series
/// had output.
struct Fold<'a> {
    ev: &'a Ev<'a>,
    src: &'a Source,
    acc: Acc,
    gave: Vec<AtomicBool>,
}

impl Fold<'_> {
    /// Evaluates series `si` into `buf` and adds it to group `g` of
    /// `cells`. The series' points go back to the sample budget once
    /// added: the folded aggregation holds its accumulators, not its
    /// argument's result.
    fn series(
        &self,
        cells: &mut Cells,
        (g, si): (usize, usize),
        buf: &mut Vec<Point>,
    ) -> Result<()> {
        if let (Acc::Count | Acc::Group, Source::Instant { sel, entries }) = (self.acc, self.src) {
            // Counted from the steps each sample covers, without a point
            // per step.
            let mut runs = RUNS.take();
            runs.clear();
            let covered = sel.covered(self.ev, &entries[si], &mut runs);
            if let Ok(true) = covered {
                cells.add_runs(g, si, &runs);
            }
            RUNS.set(runs);
            if covered? {
                return Ok(());
            }
        }
        buf.clear();
        self.src.points(self.ev, si, buf)?;
        cells.add(self.ev, g, si, buf, self.src.drop_name());
        if let Some(f) = self.gave.get(si) {
            f.store(!buf.is_empty(), Ordering::Relaxed);
        }
        self.ev.ctx.release(buf.len());
        Ok(())
    }

    /// How many tasks to cut the work into: `most`, or fewer so that each
    /// has [`MIN_TASK_WORK`] (at least one).
    fn tasks(&self, most: usize) -> usize {
        let per_series = match self.src {
            Source::Instant { .. } => self.ev.n(),
            // A window's samples, at the 15 s scrape the plan's estimate
            // assumes, on top of a value per step.
            Source::Rollup { arg, .. } => {
                self.ev.n() + assumed_samples(arg.range.max(0) as u64) as usize
            }
        };
        let work = self.src.len().saturating_mul(per_series);
        (work / MIN_TASK_WORK).clamp(1, most.max(1))
    }

    /// Tasks own runs of groups, cut at about equal numbers of series:
    /// each adds up its groups' series (`members`, per group in series
    /// order) in series order.
    fn by_group_runs(&self, members: &[Vec<usize>]) -> Result<Vec<Folded>> {
        let (ev, n, groups) = (self.ev, self.ev.n(), members.len());
        let len = self.src.len();
        let target = len.div_ceil(self.tasks(ev.ctx.threads * TASKS_PER_THREAD));
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut size) = (0, 0);
        for (g, m) in members.iter().enumerate() {
            size += m.len();
            if size >= target || g + 1 == groups {
                runs.push(start..g + 1);
                (start, size) = (g + 1, 0);
            }
        }
        let done = holding(ev, groups * n, || {
            ev.ctx.par_map(&runs, |run| {
                let mut cells = Cells::new(self.acc, run.len(), n);
                let mut series: Vec<(usize, usize)> = members[run.clone()]
                    .iter()
                    .enumerate()
                    .flat_map(|(g, m)| m.iter().map(move |&si| (si, g)))
                    .collect();
                series.sort_unstable();
                with_points(|buf| {
                    for &(si, g) in &series {
                        self.series(&mut cells, (g, si), buf)?;
                    }
                    Ok(Some(cells.finish(ev)))
                })
            })
        })?;
        Ok(done.into_iter().flatten().collect())
    }

    /// Tasks own chunks of series, each with counts for every group; the
    /// counts are added up.
    fn by_series_chunks(&self, to_group: &[usize], groups: usize) -> Result<Vec<Folded>> {
        let (ev, n, len) = (self.ev, self.ev.n(), self.src.len());
        let cells = groups * n;
        let chunks = self
            .tasks(ev.ctx.threads * TASKS_PER_THREAD / 2)
            .min(CHUNK_CELLS / cells.max(1))
            .clamp(1, len.max(1));
        let per_chunk = len.div_ceil(chunks).max(1);
        let chunks: Vec<std::ops::Range<usize>> = (0..len)
            .step_by(per_chunk)
            .map(|a| a..(a + per_chunk).min(len))
            .collect();
        let done = holding(ev, (chunks.len() + 1) * cells, || {
            ev.ctx.par_map(&chunks, |chunk| {
                let mut cells = Cells::new(self.acc, groups, n);
                with_points(|buf| {
                    for si in chunk.clone() {
                        self.series(&mut cells, (to_group[si], si), buf)?;
                    }
                    Ok(Some(cells))
                })
            })
        })?;
        let mut total = Cells::new(self.acc, groups, n);
        for c in done {
            total.merge_counts(c);
        }
        Ok(total.finish(ev))
    }
}

/// Tasks per thread: enough that a thread that finishes early finds
/// work left.
const TASKS_PER_THREAD: usize = 8;

/// Least work (points per step and samples per window, over its series)
/// worth a task of its own in [`Fold::by_group_runs`] or
/// [`Fold::by_series_chunks`]: each task has its own accumulators (a
/// handful of allocations, cold after idle). A small query thus runs as
/// one or a few tasks: an instant `sum by (instance) (rate(x[5m]))` over
/// 9 series made 267 allocations a request as 9 tasks of one series, 209
/// as 2 tasks. Larger ones keep
/// [`TASKS_PER_THREAD`], so that tasks are left to hand to helpers when
/// the calling thread's time alone ends ([`super::evaluator::par_map`]).
const MIN_TASK_WORK: usize = 64;

/// Most accumulator cells the chunks of [`Fold::by_series_chunks`] hold
/// together (32 MiB of flat counts).
const CHUNK_CELLS: usize = 1 << 22;
