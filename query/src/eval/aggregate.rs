//! Aggregation operators, evaluated per step over groups fixed once from
//! the input series' labels: `sum` and `avg` with Kahan summation (as
//! Prometheus), `count`, `min`, `max`, `group`, `stddev`, `stdvar`,
//! `quantile`, `topk`, `bottomk`, `limitk`, `limit_ratio`, `count_values`.

use engine::Labels;

use super::error::{Result, exec};
use super::evaluator::{Ev, OutBuilder, Val, expr_pos, unparen};
use super::functions::annotations::Annotation;
use super::functions::kahan::inc as kahan_inc;
use super::functions::quantile::quantile;
use super::groups::Groups;
use super::value::{Point, Series, set_label};
use crate::gofmt::format_float_f;
use crate::promql::ast::{AggregateExpr, AggregateOp, Expr};

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    c: f64,
    count: f64,
    incremental: bool,
    values: Vec<f64>,
    drop_name: bool,
}

pub(crate) fn eval(ev: &Ev, a: &AggregateExpr) -> Result<Val> {
    let mut grouping = a.grouping.clone();
    grouping.sort();
    if a.op == AggregateOp::CountValues {
        return count_values(ev, a, grouping);
    }
    if !a.op.takes_param()
        && let Some(v) = super::fold::eval(ev, a, &grouping)?
    {
        return Ok(v);
    }
    let param = match &a.param {
        Some(p) if a.op.takes_param() => Some(ev.eval(unparen(p))?.into_scalar()?),
        _ => None,
    };
    let input = ev.eval(&a.expr)?.into_vector()?;
    aggregate(ev, a, &grouping, param, input)
}

/// Aggregates `input`, the evaluated argument of `a` (`param`: its
/// evaluated parameter; `grouping` sorted).
pub(super) fn aggregate(
    ev: &Ev,
    a: &AggregateExpr,
    grouping: &[String],
    param: Option<Vec<f64>>,
    input: Vec<Series>,
) -> Result<Val> {
    match a.op {
        AggregateOp::Topk
        | AggregateOp::Bottomk
        | AggregateOp::Limitk
        | AggregateOp::LimitRatio => {
            return k_aggregation(ev, a, grouping, input, param.unwrap_or_default());
        }
        _ => {}
    }
    let q = param.unwrap_or_default();
    if a.op == AggregateOp::Quantile {
        let pos = a.param.as_deref().and_then(expr_pos).or(Some(a.position));
        if q.iter().any(|v| v.is_nan()) {
            ev.ctx
                .annos
                .add_fn(Annotation::InvalidQuantile { value: f64::NAN }, pos);
        }
        let (max, min) = go_max_min(&q);
        if max > 1.0 {
            ev.ctx
                .annos
                .add_fn(Annotation::InvalidQuantile { value: max }, pos);
        }
        if min < 0.0 {
            ev.ctx
                .annos
                .add_fn(Annotation::InvalidQuantile { value: min }, pos);
        }
    }
    // Groups in order of first appearance.
    let mut groups = Groups::new(grouping, a.without);
    let to_group: Vec<usize> = input.iter().map(|s| groups.group(&s.labels)).collect();
    let mut out: Vec<Series> = groups
        .into_keys()
        .into_iter()
        .map(|key| Series::new(key, Vec::new()))
        .collect();
    let op = a.op;
    let n = ev.n();
    let points: usize = input.iter().map(|s| s.points.len()).sum();
    let cells = out.len().saturating_mul(n);
    if op != AggregateOp::Quantile && (cells <= 1 << 16 || cells <= points / 4) {
        // Few groups: one accumulator per group and step, filled series by
        // series. Each (group, step) still sees its inputs in series order,
        // so every sum is the same as step by step.
        if matches!(op, AggregateOp::Sum | AggregateOp::Count) {
            sum_or_count(ev, &input, &to_group, &mut out, op == AggregateOp::Sum)?;
            out.retain(|s| !s.points.is_empty());
            ev.ctx.take(out.iter().map(|s| s.points.len()).sum())?;
            return Ok(Val::Vector(out));
        }
        let mut cells = Cells::new(Acc::new(op), out.len(), n);
        for (si, s) in input.iter().enumerate() {
            if si % 256 == 255 {
                ev.ctx.check()?;
            }
            cells.add(ev, to_group[si], si, &s.points, s.drop_name);
        }
        for (o, f) in out.iter_mut().zip(cells.finish(ev)) {
            o.points = f.points;
            o.drop_name = f.drop_name;
        }
    } else {
        let mut groups = vec![Group::default(); out.len()];
        let mut pos = vec![0usize; input.len()];
        for step in 0..n {
            let t = ev.ts(step);
            if step % 256 == 255 {
                ev.ctx.check()?;
            }
            groups.iter_mut().for_each(|g| g.seen = false);
            for (si, s) in input.iter().enumerate() {
                let Some(p) = s.points.get(pos[si]).filter(|p| p.t == t) else {
                    continue;
                };
                pos[si] += 1;
                accumulate(&mut groups[to_group[si]], op, p.v, s.drop_name);
            }
            for (gi, g) in groups.iter_mut().enumerate() {
                if !g.seen {
                    continue;
                }
                let v = result(g, op, q.get(step).copied().unwrap_or(f64::NAN));
                let o = &mut out[gi];
                o.points.push(Point::new(t, v));
                // The group's last step decides, as in Prometheus.
                o.drop_name = g.drop_name;
            }
        }
    }
    out.retain(|s| !s.points.is_empty());
    ev.ctx.take(out.iter().map(|s| s.points.len()).sum())?;
    Ok(Val::Vector(out))
}

/// Calls `f(step, value)` for the points of an input series in order.
/// Points lie on the grid; one that did not would stop the series in the
/// step-by-step loop, so it stops here too. The step of a point right
/// after the previous one's is found without a division.
/// Returns one past the last step fed (0: none).
#[inline]
fn for_grid_points(ev: &Ev, points: &[Point], mut f: impl FnMut(usize, f64)) -> usize {
    let n = ev.n();
    let mut k = usize::MAX;
    for p in points {
        let next = k.wrapping_add(1);
        k = if next < n && ev.ts(next) == p.t {
            next
        } else {
            let k = ev.index(p.t);
            if p.t < ev.start || k >= n || ev.ts(k) != p.t {
                break;
            }
            k
        };
        f(k, p.v);
    }
    k.wrapping_add(1)
}

/// `sum` and `count` with few groups: a (Kahan-compensated) sum or count
/// per group and step in flat arrays, filled series by series; each cell
/// sees its inputs in series order, as step by step.
///
/// Large inputs are split by group: each task owns a run of groups and
/// adds up only their series, so tasks run on separate threads and every
/// cell still sees its inputs in the same order (the same sums, bit for
/// bit, as one thread).
fn sum_or_count(
    ev: &Ev,
    input: &[Series],
    to_group: &[usize],
    out: &mut [Series],
    sum: bool,
) -> Result<()> {
    let points: usize = input.iter().map(|s| s.points.len()).sum();
    let tasks = if points >= PARALLEL_SUM_POINTS && ev.ctx.threads > 1 {
        (ev.ctx.threads * 4).min(out.len())
    } else {
        1
    };
    let per_task = out.len().div_ceil(tasks.max(1));
    let runs: Vec<std::ops::Range<usize>> = (0..out.len())
        .step_by(per_task.max(1))
        .map(|a| a..(a + per_task).min(out.len()))
        .collect();
    let done = ev.ctx.par_map(&runs, |run| {
        sum_or_count_groups(ev, input, to_group, run.clone(), sum).map(Some)
    })?;
    for (run, groups) in runs.iter().zip(done) {
        for (o, f) in out[run.clone()].iter_mut().zip(groups) {
            o.points = f.points;
            o.drop_name = f.drop_name;
        }
    }
    Ok(())
}

/// Input points from which [`sum_or_count`] splits the work by group.
const PARALLEL_SUM_POINTS: usize = 1 << 16;

/// [`sum_or_count`] for the groups in `run`.
fn sum_or_count_groups(
    ev: &Ev,
    input: &[Series],
    to_group: &[usize],
    run: std::ops::Range<usize>,
    sum: bool,
) -> Result<Vec<Folded>> {
    let acc = if sum { Acc::Sum } else { Acc::Count };
    let mut cells = Cells::new(acc, run.len(), ev.n());
    for (si, s) in input.iter().enumerate() {
        if si % 256 == 255 {
            ev.ctx.check()?;
        }
        if let Some(g) = to_group[si]
            .checked_sub(run.start)
            .filter(|&g| g < run.len())
        {
            cells.add(ev, g, si, &s.points, s.drop_name);
        }
    }
    Ok(cells.finish(ev))
}

/// Adds input value `f` to a group's accumulator (the first value of a
/// step starts it afresh).
#[inline]
fn accumulate(g: &mut Group, op: AggregateOp, f: f64, drop_name: bool) {
    if !g.seen {
        *g = Group {
            seen: true,
            value: f,
            mean: f,
            count: 1.0,
            drop_name,
            values: std::mem::take(&mut g.values),
            ..Group::default()
        };
        match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                g.value = if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            AggregateOp::Quantile => {
                g.values.clear();
                g.values.push(f);
            }
            AggregateOp::Group => g.value = 1.0,
            _ => {}
        }
        return;
    }
    if drop_name {
        g.drop_name = true;
    }
    match op {
        AggregateOp::Sum => (g.value, g.c) = kahan_inc(f, g.value, g.c),
        AggregateOp::Avg => {
            g.count += 1.0;
            if !g.incremental {
                let (nv, nc) = kahan_inc(f, g.value, g.c);
                if !nv.is_infinite() {
                    (g.value, g.c) = (nv, nc);
                    return;
                }
                g.incremental = true;
                g.mean = g.value / (g.count - 1.0);
                g.c /= g.count - 1.0;
            }
            let q = (g.count - 1.0) / g.count;
            (g.mean, g.c) = kahan_inc(f / g.count, q * g.mean, q * g.c);
        }
        AggregateOp::Max if g.value < f || g.value.is_nan() => g.value = f,
        AggregateOp::Min if g.value > f || g.value.is_nan() => g.value = f,
        AggregateOp::Count => g.count += 1.0,
        AggregateOp::Stddev | AggregateOp::Stdvar => {
            g.count += 1.0;
            let delta = f - g.mean;
            g.mean += delta / g.count;
            g.value += delta * (f - g.mean);
        }
        AggregateOp::Quantile => g.values.push(f),
        _ => {}
    }
}

/// The output value of a group with at least one input (`q`: the
/// quantile of this step, for `quantile`).
#[inline]
fn result(g: &mut Group, op: AggregateOp, q: f64) -> f64 {
    match op {
        AggregateOp::Avg => {
            if g.incremental {
                g.mean + g.c
            } else {
                g.value / g.count + g.c / g.count
            }
        }
        AggregateOp::Count => g.count,
        AggregateOp::Stdvar => g.value / g.count,
        AggregateOp::Stddev => (g.value / g.count).sqrt(),
        AggregateOp::Quantile => quantile(q, &mut g.values),
        AggregateOp::Sum => g.value + g.c,
        _ => g.value,
    }
}

/// How a cell accumulates: flat Kahan sums, counts or presence, or a
/// [`Group`] per cell.
#[derive(Clone, Copy)]
pub(super) enum Acc {
    Sum,
    Count,
    Group,
    Cell(AggregateOp),
}

impl Acc {
    pub(super) fn new(op: AggregateOp) -> Acc {
        match op {
            AggregateOp::Sum => Acc::Sum,
            AggregateOp::Count => Acc::Count,
            AggregateOp::Group => Acc::Group,
            other => Acc::Cell(other),
        }
    }
}

/// The accumulators of a run of groups, each `n` cells long, filled
/// series by series: each cell sees its inputs in series order, so every
/// sum is the same as step by step (and the same wherever the series'
/// values come from: evaluated first, or folded, `fold.rs`).
pub(super) struct Cells {
    acc: Acc,
    n: usize,
    value: Vec<f64>,
    comp: Vec<f64>,
    seen: Vec<bool>,
    cell: Vec<Group>,
    /// Per group: one past its last step with a point, and one past its
    /// last step with a point from a series that drops its name (0:
    /// none). The output drops the name if the last step's inputs do,
    /// as Prometheus sets a group's flag at every step it has.
    last: Vec<usize>,
    last_dropping: Vec<usize>,
    /// Per group: the first series that contributed.
    first: Vec<Option<usize>>,
}

impl Cells {
    pub(super) fn new(acc: Acc, groups: usize, n: usize) -> Cells {
        let cells = groups * n;
        let (flat, cell) = match acc {
            Acc::Cell(_) => (0, cells),
            _ => (cells, 0),
        };
        let values = if matches!(acc, Acc::Sum | Acc::Count) {
            flat
        } else {
            0
        };
        Cells {
            acc,
            n,
            value: vec![0.0; values],
            comp: vec![0.0; if matches!(acc, Acc::Sum) { flat } else { 0 }],
            seen: vec![false; flat],
            cell: vec![Group::default(); cell],
            last: vec![0; groups],
            last_dropping: vec![0; groups],
            first: vec![None; groups],
        }
    }

    /// Adds series `si`'s points (on the grid) to group `g` (relative to
    /// the run).
    pub(super) fn add(&mut self, ev: &Ev, g: usize, si: usize, points: &[Point], drop_name: bool) {
        let row = g * self.n..(g + 1) * self.n;
        // One past the last step with a point.
        let end = match self.acc {
            Acc::Sum => {
                let (value, comp, seen) = (
                    &mut self.value[row.clone()],
                    &mut self.comp[row.clone()],
                    &mut self.seen[row],
                );
                for_grid_points(ev, points, |k, f| {
                    if !seen[k] {
                        seen[k] = true;
                        value[k] = f;
                    } else {
                        (value[k], comp[k]) = kahan_inc(f, value[k], comp[k]);
                    }
                })
            }
            Acc::Count => {
                let (value, seen) = (&mut self.value[row.clone()], &mut self.seen[row]);
                for_grid_points(ev, points, |k, _| {
                    seen[k] = true;
                    value[k] += 1.0;
                })
            }
            Acc::Group => {
                let seen = &mut self.seen[row];
                for_grid_points(ev, points, |k, _| {
                    seen[k] = true;
                })
            }
            Acc::Cell(op) => {
                let cells = &mut self.cell[row];
                for_grid_points(ev, points, |k, v| {
                    accumulate(&mut cells[k], op, v, drop_name)
                })
            }
        };
        if end > 0 {
            self.last[g] = self.last[g].max(end);
            if drop_name {
                self.last_dropping[g] = self.last_dropping[g].max(end);
            }
            self.first[g].get_or_insert(si);
        }
    }

    /// Counts series `si` in group `g` at the steps in `runs` (step
    /// indices; `Acc::Count` or `Acc::Group`, for a series that keeps its
    /// name).
    pub(super) fn add_runs(&mut self, g: usize, si: usize, runs: &[std::ops::Range<usize>]) {
        debug_assert!(matches!(self.acc, Acc::Count | Acc::Group));
        let row = g * self.n;
        for r in runs {
            let cells = row + r.start..row + r.end;
            if let Acc::Count = self.acc {
                self.value[cells.clone()].iter_mut().for_each(|v| *v += 1.0);
            }
            self.seen[cells].fill(true);
        }
        if let Some(r) = runs.iter().rfind(|r| !r.is_empty()) {
            self.last[g] = self.last[g].max(r.end);
            self.first[g].get_or_insert(si);
        }
    }

    /// Adds another task's counts (same groups, `Acc::Count` or
    /// `Acc::Group`: exact, in any order).
    pub(super) fn merge_counts(&mut self, other: Cells) {
        for (v, o) in self.value.iter_mut().zip(&other.value) {
            *v += o;
        }
        for (s, o) in self.seen.iter_mut().zip(&other.seen) {
            *s |= o;
        }
        for (d, o) in self.last.iter_mut().zip(&other.last) {
            *d = (*d).max(*o);
        }
        for (d, o) in self.last_dropping.iter_mut().zip(&other.last_dropping) {
            *d = (*d).max(*o);
        }
        for (f, o) in self.first.iter_mut().zip(&other.first) {
            *f = match (*f, *o) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    /// Each group's output points (on the grid) and flags.
    pub(super) fn finish(mut self, ev: &Ev) -> Vec<Folded> {
        let n = self.n;
        let groups = self.last.len();
        (0..groups)
            .map(|g| {
                let row = g * n..(g + 1) * n;
                // Sized first: a filtered collect would grow by doubling,
                // copying the points each time (5 % of a `topk` over 6 h).
                let points = match self.acc {
                    Acc::Sum | Acc::Count | Acc::Group => {
                        let acc = self.acc;
                        let seen = self.seen[row.clone()].iter().filter(|&&s| s).count();
                        let mut points = Vec::with_capacity(seen);
                        points.extend(row.clone().filter(|&k| self.seen[k]).map(|k| {
                            let v = match acc {
                                Acc::Sum => self.value[k] + self.comp[k],
                                Acc::Count => self.value[k],
                                _ => 1.0,
                            };
                            Point::new(ev.ts(k - row.start), v)
                        }));
                        points
                    }
                    Acc::Cell(op) => {
                        let cells = &mut self.cell[row];
                        let mut points =
                            Vec::with_capacity(cells.iter().filter(|c| c.seen).count());
                        points.extend(
                            cells
                                .iter_mut()
                                .enumerate()
                                .filter(|(_, c)| c.seen)
                                .map(|(k, c)| Point::new(ev.ts(k), result(c, op, f64::NAN))),
                        );
                        points
                    }
                };
                Folded {
                    points,
                    drop_name: self.last[g] > 0 && self.last_dropping[g] == self.last[g],
                    first: self.first[g],
                }
            })
            .collect()
    }
}

/// One group's result: its points, whether its name is dropped (as its
/// last step's inputs say), and the first series that contributed.
pub(super) struct Folded {
    pub(super) points: Vec<Point>,
    pub(super) drop_name: bool,
    pub(super) first: Option<usize>,
}

/// Max and min as Prometheus's `fParams` computes them with Go's
/// `math.Max`/`math.Min`: a NaN anywhere makes both NaN.
fn go_max_min(v: &[f64]) -> (f64, f64) {
    if v.iter().any(|x| x.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    let max = v.iter().copied().fold(-f64::MAX, f64::max);
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    (max, min)
}

/// Go's `%g` for the numbers that appear in annotations.
pub(crate) fn go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let exp = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    if (-4..6).contains(&exp) {
        format_float_f(v)
    } else {
        crate::gofmt::format_float_e(v)
    }
}

fn count_values(ev: &Ev, a: &AggregateExpr, mut grouping: Vec<String>) -> Result<Val> {
    let label = match a.param.as_deref().map(unparen) {
        Some(Expr::String(s)) => s.clone(),
        _ => return Err(exec("count_values needs a string parameter")),
    };
    if label.is_empty() || label.contains('\u{FFFD}') {
        return Err(exec(format!(
            "invalid label name {}",
            crate::gofmt::quote(&label)
        )));
    }
    if !a.without {
        grouping.push(label.clone());
        grouping.sort();
    }
    let input = ev.eval(&a.expr)?.into_vector()?;
    let mut pos = vec![0usize; input.len()];
    let mut out = OutBuilder::new();
    for step in 0..ev.n() {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        let mut counts: Vec<f64> = Vec::new();
        let mut groups = Groups::new(&grouping, a.without);
        for (si, s) in input.iter().enumerate() {
            let Some(p) = s.points.get(pos[si]).filter(|p| p.t == t) else {
                continue;
            };
            pos[si] += 1;
            let metric = set_label(&s.labels, &label, &format_float_f(p.v));
            let g = groups.group(&metric);
            if g == counts.len() {
                counts.push(0.0);
            }
            counts[g] += 1.0;
        }
        for (l, c) in groups.into_keys().iter().zip(counts) {
            out.push(l, false, t, c)?;
        }
    }
    Ok(Val::Vector(out.series))
}

/// A sample in a `topk`/`bottomk`/`limitk` heap.
#[derive(Clone)]
struct HeapItem {
    series: usize,
    v: f64,
}

/// Go's `container/heap` over a slice with a `less` function, so ties
/// resolve exactly as in Prometheus.
struct GoHeap<F: Fn(f64, f64) -> bool> {
    items: Vec<HeapItem>,
    less: F,
}

impl<F: Fn(f64, f64) -> bool> GoHeap<F> {
    fn l(&self, i: usize, j: usize) -> bool {
        (self.less)(self.items[i].v, self.items[j].v)
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if i == j || !self.l(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) -> bool {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.l(j2, j1) {
                j = j2;
            }
            if !self.l(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }

    fn push(&mut self, it: HeapItem) {
        self.items.push(it);
        let n = self.items.len() - 1;
        self.up(n);
    }

    fn fix(&mut self, i: usize) {
        let n = self.items.len();
        if !self.down(i, n) {
            self.up(i);
        }
    }

    /// `sort.Sort(sort.Reverse(heap))` for the small sizes where Go's
    /// pdqsort is an insertion sort.
    fn sort_reverse(&mut self) {
        let n = self.items.len();
        for i in 1..n {
            let mut j = i;
            while j > 0 && self.l(j - 1, j) {
                self.items.swap(j, j - 1);
                j -= 1;
            }
        }
    }
}

fn top_less(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}

fn bottom_less(a: f64, b: f64) -> bool {
    a.is_nan() || a > b
}

fn k_aggregation(
    ev: &Ev,
    a: &AggregateExpr,
    grouping: &[String],
    input: Vec<Series>,
    param: Vec<f64>,
) -> Result<Val> {
    let op = a.op;
    let (max, min) = go_max_min(&param);
    let any_nan = param.iter().any(|v| v.is_nan());
    if op == AggregateOp::LimitRatio {
        if max == 0.0 && min == 0.0 {
            return Ok(Val::Vector(Vec::new()));
        }
        if any_nan {
            return Err(exec("Ratio value is NaN"));
        }
        let pos = a.param.as_deref().and_then(expr_pos).or(Some(a.position));
        if max > 1.0 {
            ev.ctx.annos.add_fn(
                Annotation::InvalidRatio {
                    value: max,
                    capped_to: 1.0,
                },
                pos,
            );
        }
        if min < -1.0 {
            ev.ctx.annos.add_fn(
                Annotation::InvalidRatio {
                    value: min,
                    capped_to: -1.0,
                },
                pos,
            );
        }
    } else {
        if max < 1.0 {
            return Ok(Val::Vector(Vec::new()));
        }
        if any_nan {
            return Err(exec("Parameter value is NaN"));
        }
        if min <= i64::MIN as f64 {
            return Err(exec(format!("Scalar value {} underflows int64", go_g(min))));
        }
        if max >= i64::MAX as f64 {
            return Err(exec(format!("Scalar value {} overflows int64", go_g(max))));
        }
    }
    let mut groups = Groups::new(grouping, a.without);
    let to_group: Vec<usize> = input.iter().map(|s| groups.group(&s.labels)).collect();
    let ngroups = groups.len();
    let offsets: Vec<f64> = if op == AggregateOp::LimitRatio {
        input.iter().map(|s| ratio_offset(&s.labels)).collect()
    } else {
        Vec::new()
    };
    // Groups in order of first appearance among all input series.
    let order: Vec<usize> = {
        let mut seen = vec![false; ngroups];
        let mut o = Vec::new();
        for &g in &to_group {
            if !seen[g] {
                seen[g] = true;
                o.push(g);
            }
        }
        o
    };
    let k = KInput {
        input: &input,
        to_group: &to_group,
        ngroups,
        offsets: &offsets,
        order: &order,
        param: &param,
    };
    // The comparison monomorphised into the loop (it runs for every
    // series at every step).
    if op == AggregateOp::Bottomk {
        k_steps(ev, op, k, bottom_less)
    } else {
        k_steps(ev, op, k, top_less)
    }
}

/// What [`k_steps`] works on: the input, each series' group, the number
/// of groups, `limit_ratio`'s per-series offsets, the groups in order of
/// first appearance, and the parameter per step.
#[derive(Clone, Copy)]
struct KInput<'a> {
    input: &'a [Series],
    to_group: &'a [usize],
    ngroups: usize,
    offsets: &'a [f64],
    order: &'a [usize],
    param: &'a [f64],
}

/// The per-step loop of `topk`, `bottomk`, `limitk` and `limit_ratio`.
fn k_steps<L: Fn(f64, f64) -> bool + Copy>(
    ev: &Ev,
    op: AggregateOp,
    k_in: KInput,
    less: L,
) -> Result<Val> {
    let KInput {
        input,
        to_group,
        ngroups,
        offsets,
        order,
        param,
    } = k_in;
    let mut pos = vec![0usize; input.len()];
    let mut out = OutBuilder::new();
    // Output series of each input series, looked up by labels once.
    let mut slot_of = vec![usize::MAX; input.len()];
    // Per-step state, reused from step to step.
    let mut heaps: Vec<Vec<HeapItem>> = vec![Vec::new(); ngroups];
    let mut top: Vec<GoHeap<L>> = (0..ngroups)
        .map(|_| GoHeap {
            items: Vec::new(),
            less,
        })
        .collect();
    let mut used = vec![false; ngroups];
    let mut present = Vec::new();
    // An instant vector keeps the order Prometheus gives it (`topk`'s by
    // value, largest first). Over a range each step's points go to their
    // series, which keep the order they first appear in (a range query's
    // answer is then sorted by labels), so the steps skip the sort.
    let sorted = ev.n() == 1;
    for (step, &fp) in param.iter().enumerate().take(ev.n()) {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        let k = (fp as i64).min(input.len() as i64);
        let r = fp.clamp(-1.0, 1.0);
        present.clear();
        for (si, s) in input.iter().enumerate() {
            if let Some(p) = s.points.get(pos[si]).filter(|p| p.t == t) {
                pos[si] += 1;
                present.push((si, p.v));
            }
        }
        let skip = match op {
            AggregateOp::LimitRatio => fp == 0.0,
            _ => k < 1,
        };
        if skip {
            continue;
        }
        for &(si, v) in &present {
            let g = to_group[si];
            used[g] = true;
            let item = HeapItem { series: si, v };
            match op {
                AggregateOp::Topk | AggregateOp::Bottomk => {
                    let h = &mut top[g];
                    if (h.items.len() as i64) < k {
                        h.push(item);
                    } else {
                        let h0 = h.items[0].v;
                        let replace = if op == AggregateOp::Topk {
                            h0 < v || (h0.is_nan() && !v.is_nan())
                        } else {
                            h0 > v || (h0.is_nan() && !v.is_nan())
                        };
                        if replace {
                            h.items[0] = item;
                            if k > 1 {
                                h.fix(0);
                            }
                        }
                    }
                }
                AggregateOp::Limitk => {
                    let h = &mut top[g];
                    if h.items.is_empty() {
                        h.items.push(item);
                    } else if (h.items.len() as i64) < k {
                        h.push(item);
                    }
                }
                _ => {
                    let keep = (r >= 0.0 && offsets[si] < r) || (r < 0.0 && offsets[si] >= 1.0 + r);
                    if keep {
                        heaps[g].push(item);
                    }
                }
            }
        }
        for &g in order {
            if !std::mem::take(&mut used[g]) {
                continue;
            }
            let items = match op {
                AggregateOp::Topk | AggregateOp::Bottomk => {
                    if sorted {
                        top[g].sort_reverse();
                    }
                    &mut top[g].items
                }
                AggregateOp::Limitk => &mut top[g].items,
                _ => &mut heaps[g],
            };
            for it in items.iter() {
                let s = &input[it.series];
                let slot = &mut slot_of[it.series];
                if *slot == usize::MAX {
                    *slot = out.slot(&s.labels, s.drop_name);
                }
                out.push_at(*slot, t, it.v)?;
            }
            items.clear();
        }
    }
    Ok(Val::Vector(out.series))
}

/// `labels.Hash() / MaxUint64` as Prometheus's `limit_ratio` uses it:
/// xxHash64 over the "stringlabels" encoding.
fn ratio_offset(labels: &Labels) -> f64 {
    let mut buf = Vec::new();
    let put_len = |buf: &mut Vec<u8>, n: usize| {
        if n < 255 {
            buf.push(n as u8);
        } else {
            buf.push(255);
            buf.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
    };
    for l in labels.iter() {
        put_len(&mut buf, l.name.len());
        buf.extend_from_slice(l.name.as_bytes());
        put_len(&mut buf, l.value.len());
        buf.extend_from_slice(l.value.as_bytes());
    }
    xxh64(&buf, 0) as f64 / u64::MAX as f64
}

/// xxHash64 (seed 0), as Go's `cespare/xxhash`.
fn xxh64(data: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    let rd64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let rd32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4])) as u64;
    let round = |acc: u64, x: u64| {
        acc.wrapping_add(x.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1)
    };
    let merge = |acc: u64, v: u64| (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);
    let n = data.len();
    let mut p = data;
    let mut h;
    if n >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while p.len() >= 32 {
            v1 = round(v1, rd64(&p[0..]));
            v2 = round(v2, rd64(&p[8..]));
            v3 = round(v3, rd64(&p[16..]));
            v4 = round(v4, rd64(&p[24..]));
            p = &p[32..];
        }
        h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        h = merge(h, v4);
    } else {
        h = seed.wrapping_add(P5);
    }
    h = h.wrapping_add(n as u64);
    while p.len() >= 8 {
        h ^= round(0, rd64(p));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        p = &p[8..];
    }
    if p.len() >= 4 {
        h ^= rd32(p).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        p = &p[4..];
    }
    for &b in p {
        h ^= (b as u64).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_known_values() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xFBCE_A83C_8A37_8BF1
        );
    }

    #[test]
    fn go_g_formats() {
        assert_eq!(go_g(1.1), "1.1");
        assert_eq!(go_g(-1.1), "-1.1");
        assert_eq!(go_g(f64::NAN), "NaN");
        assert_eq!(go_g(1e21), "1e+21");
    }
}
