//! The evaluation core: the query context (snapshot, limits, deadline,
//! annotations), the step grid, node dispatch, unary minus, subqueries,
//! delayed name removal and the conversion to the public [`Value`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use engine::{Labels, Matcher, Querier, SeriesEntry};

use super::annotations::Annotations;
use super::error::{EvalError, Result, exec};
use super::groups::LabelIndex;
use super::value::{Point, Sample, Series, Value, drop_metadata, has_metadata, same_metadata};
use super::{QueryOptions, QueryOutput, QueryStats, aggregate, binary, call, pool, selector};
use crate::promql::ast::{
    AtModifier, BinaryOp, Duration, DurationExpr, Expr, SubqueryExpr, UnaryOp, ValueType,
    VectorSelector,
};

/// [`Ctx::check`]s per clock read on a thread. Checks come per series (or
/// per group or node); reading the clock costs 20-40 ns in a virtual
/// machine, as much as a small series' fold. A thread notices a passed
/// deadline up to 15 checks' work late: well under a millisecond for
/// folds and rollups of a day, more for heavy functions over long ranges,
/// next to timeouts of seconds (the API's cancel flag, raised 50 ms after
/// the deadline and read at every check, bounds it for queries on the
/// pool).
const CLOCK_EVERY: u32 = 16;

thread_local! {
    /// This thread's last [`Ctx::check`]: the deadline checked for, and
    /// the checks since the clock was last read for it.
    static CHECKS: std::cell::Cell<Option<(Instant, u32)>> = const { std::cell::Cell::new(None) };
}

/// Per-query state shared by all nodes (and threads) of one evaluation.
pub(crate) struct Ctx {
    pub querier: Querier,
    /// Lookback delta in milliseconds.
    pub lookback: i64,
    max_samples: usize,
    max_series: usize,
    deadline: Instant,
    timeout: StdDuration,
    cancel: Option<Arc<AtomicBool>>,
    current: AtomicI64,
    peak: AtomicU64,
    loaded: AtomicU64,
    series: AtomicU64,
    pub annos: Annotations,
    /// The query's own start, end and step (step 0 for instant queries):
    /// `@ start()`, `@ end()`, `step()` and `range()` refer to these.
    pub q_start: i64,
    pub q_end: i64,
    pub q_step: i64,
    /// Step of subqueries written without one.
    pub sub_step: i64,
    pub threads: usize,
    /// [`super::EngineOptions::delayed_name_removal`].
    pub delayed_name_removal: bool,
    /// Series selected ahead of the evaluation ([`Plan::preselect`]),
    /// each taken by the first selector with the same matchers.
    selected: Mutex<Vec<Selected>>,
}

impl Ctx {
    /// The series of `matchers`: those selected ahead, or selected now.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesEntry>> {
        if let Ok(mut sel) = self.selected.lock()
            && let Some(i) = sel.iter().position(|(m, _)| m == matchers)
        {
            return Ok(sel.swap_remove(i).1);
        }
        Ok(self.querier.select(matchers)?)
    }

    /// Fails if the deadline passed or the query was cancelled.
    pub fn check(&self) -> Result<()> {
        if let Some(c) = &self.cancel
            && c.load(Ordering::Relaxed)
        {
            return Err(EvalError::Canceled {
                stage: "expression evaluation",
            });
        }
        if self.clock_due() && Instant::now() > self.deadline {
            return Err(EvalError::Timeout {
                stage: "expression evaluation",
                limit: self.timeout,
            });
        }
        Ok(())
    }

    /// Whether [`Ctx::check`] reads the clock this time: on each thread,
    /// at its first check of this query, then every [`CLOCK_EVERY`]th.
    fn clock_due(&self) -> bool {
        CHECKS.with(|c| match c.get() {
            Some((deadline, n)) if deadline == self.deadline && n + 1 < CLOCK_EVERY => {
                c.set(Some((deadline, n + 1)));
                false
            }
            _ => {
                c.set(Some((self.deadline, 0)));
                true
            }
        })
    }

    /// Accounts for `n` more samples held in memory.
    pub fn take(&self, n: usize) -> Result<()> {
        let now = self.current.fetch_add(n as i64, Ordering::Relaxed) + n as i64;
        self.peak.fetch_max(now.max(0) as u64, Ordering::Relaxed);
        if now > self.max_samples as i64 {
            return Err(EvalError::TooManySamples {
                limit: self.max_samples,
            });
        }
        Ok(())
    }

    /// Returns `n` samples to the budget.
    pub fn release(&self, n: usize) {
        self.current.fetch_sub(n as i64, Ordering::Relaxed);
    }

    /// Refuses grids with more steps than samples may be held (before
    /// anything is allocated for them).
    pub fn check_steps(&self, start: i64, end: i64, step: i64) -> Result<()> {
        let steps = (end as i128 - start as i128) / step.max(1) as i128 + 1;
        if steps > self.max_samples as i128 {
            return Err(EvalError::TooManySamples {
                limit: self.max_samples,
            });
        }
        Ok(())
    }

    /// Samples currently accounted for.
    fn current(&self) -> i64 {
        self.current.load(Ordering::Relaxed)
    }

    /// After a node returns, only its result is held (its inputs are
    /// gone): the count goes back to what it was before the node plus the
    /// result's size.
    fn settle(&self, before: i64, result: usize) -> Result<()> {
        let now = before + result as i64;
        self.current.store(now, Ordering::Relaxed);
        self.peak.fetch_max(now.max(0) as u64, Ordering::Relaxed);
        if now > self.max_samples as i64 {
            return Err(EvalError::TooManySamples {
                limit: self.max_samples,
            });
        }
        Ok(())
    }

    pub fn loaded(&self, n: usize) {
        self.loaded.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The most samples the query may hold at once.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Accounts for `n` more selected series.
    pub fn touch_series(&self, n: usize) -> Result<()> {
        let total = self.series.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.max_series as u64 {
            return Err(EvalError::TooManySeries {
                limit: self.max_series,
            });
        }
        Ok(())
    }

    /// Maps `f` over `items` in order; see [`par_map`].
    pub fn par_map<T: Sync, U: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<Option<U>> + Sync,
    ) -> Result<Vec<U>> {
        par_map(self.threads, SOLO, items, f)
    }
}

/// How long [`par_map`] works alone before starting helper threads.
const SOLO: StdDuration = StdDuration::from_micros(500);

/// Maps `f` over `items` in order on up to `threads` threads; the error of
/// the earliest failing item that ran wins (a failure stops the others).
///
/// The calling thread starts alone, taking items from the front; only
/// when the work has taken `solo` and enough items are left does it offer
/// the rest to helper threads of the [`pool`], which take blocks of items
/// from the back. Small queries thus never wake another thread, and the
/// caller never waits for a helper that has not started (on a busy
/// machine a wake-up can take a scheduler tick, several milliseconds):
/// it does the remaining blocks itself and waits only for blocks a helper
/// is running. Taking from the two ends keeps each thread on its own
/// storage pages.
pub(crate) fn par_map<T: Sync, U: Send>(
    threads: usize,
    solo: StdDuration,
    items: &[T],
    f: impl Fn(&T) -> Result<Option<U>> + Sync,
) -> Result<Vec<U>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(items.len());
    let mut i = 0;
    while i < items.len() {
        if threads > 1
            && items.len() - i >= 2 * threads
            && items.len() <= u32::MAX as usize
            && started.elapsed() >= solo
        {
            break;
        }
        if let Some(u) = f(&items[i])? {
            out.push(u);
        }
        i += 1;
    }
    if i == items.len() {
        return Ok(out);
    }
    let left = Ends::new(i, items.len());
    // Blocks of about a sixteenth of a thread's share: a helper is never
    // far from done when the caller runs out of items.
    let block = ((items.len() - i) / (threads * 16)).max(1);
    let stop = AtomicBool::new(false);
    let theirs: Mutex<Vec<(usize, Result<Vec<U>>)>> = Mutex::new(Vec::new());
    let helper = || {
        let mut pieces = Vec::new();
        'blocks: while let Some((a, b)) = left.take_back(block) {
            let mut piece = Vec::with_capacity(b - a);
            for it in &items[a..b] {
                if stop.load(Ordering::Relaxed) {
                    break 'blocks;
                }
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(it)))
                    .unwrap_or_else(|_| Err(exec("evaluation worker panicked")));
                match r {
                    Ok(Some(u)) => piece.push(u),
                    Ok(None) => {}
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        pieces.push((a, Err(e)));
                        break 'blocks;
                    }
                }
            }
            pieces.push((a, Ok(piece)));
        }
        if let Ok(mut t) = theirs.lock() {
            t.extend(pieces);
        }
    };
    let mut mine = Ok(());
    // Returns once no helper that took up the offer still runs.
    pool::with_helpers(threads - 1, &helper, || {
        'items: while let Some((a, b)) = left.take_front(block) {
            for it in &items[a..b] {
                if stop.load(Ordering::Relaxed) {
                    break 'items;
                }
                match f(it) {
                    Ok(Some(u)) => out.push(u),
                    Ok(None) => {}
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        mine = Err(e);
                        break 'items;
                    }
                }
            }
        }
    });
    // The caller's items all come before the helpers'.
    mine?;
    let mut theirs = theirs
        .into_inner()
        .map_err(|_| exec("evaluation worker panicked"))?;
    theirs.sort_by_key(|(a, _)| *a);
    for (_, piece) in theirs {
        out.extend(piece?);
    }
    Ok(out)
}

/// The items `[lo, hi)` not taken yet, taken in blocks from either end
/// (both bounds in one atomic word, so a block is never taken twice).
struct Ends(AtomicU64);

impl Ends {
    fn new(lo: usize, hi: usize) -> Ends {
        Ends(AtomicU64::new(((lo as u64) << 32) | hi as u64))
    }

    fn take(&self, pick: impl Fn(usize, usize) -> (usize, usize, u64)) -> Option<(usize, usize)> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let (lo, hi) = ((cur >> 32) as usize, (cur & 0xffff_ffff) as usize);
            if lo >= hi {
                return None;
            }
            let (a, b, next) = pick(lo, hi);
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some((a, b)),
                Err(now) => cur = now,
            }
        }
    }

    /// Up to `n` items from the front.
    fn take_front(&self, n: usize) -> Option<(usize, usize)> {
        self.take(|lo, hi| {
            let b = (lo + n).min(hi);
            (lo, b, ((b as u64) << 32) | hi as u64)
        })
    }

    /// Up to `n` items from the back.
    fn take_back(&self, n: usize) -> Option<(usize, usize)> {
        self.take(|lo, hi| {
            let a = hi.saturating_sub(n).max(lo);
            (a, hi, ((lo as u64) << 32) | a as u64)
        })
    }
}

/// An intermediate value.
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// An instant vector over the grid: points at step timestamps.
    Vector(Vec<Series>),
    /// A range vector (only from an instant evaluation of `x[5m]` or a
    /// subquery): points at their own timestamps.
    Matrix(Vec<Series>),
    String(String),
}

impl Val {
    /// Number of points held.
    pub fn points(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::Vector(s) | Val::Matrix(s) => s.iter().map(|s| s.points.len()).sum(),
            Val::String(_) => 0,
        }
    }

    pub fn into_vector(self) -> Result<Vec<Series>> {
        match self {
            Val::Vector(s) => Ok(s),
            other => Err(exec(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn into_scalar(self) -> Result<Vec<f64>> {
        match self {
            Val::Scalar(s) => Ok(s),
            other => Err(exec(format!("expected scalar, got {}", other.type_name()))),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::String(_) => "string",
        }
    }
}

/// Times, offsets and ranges are clamped to ±2^53 ms (285,000 years) so
/// that window arithmetic never overflows.
pub(crate) const MAX_SPAN: i64 = 1 << 53;

fn clamp_span(v: i64) -> i64 {
    v.clamp(-MAX_SPAN, MAX_SPAN)
}

/// One evaluation grid: `start, start+step, ..., <= end`.
#[derive(Clone, Copy)]
pub(crate) struct Ev<'a> {
    pub ctx: &'a Ctx,
    pub start: i64,
    pub end: i64,
    /// Always positive (1 for an instant evaluation).
    pub step: i64,
}

impl<'a> Ev<'a> {
    /// Number of steps.
    pub fn n(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step) as usize + 1
        }
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// The step index of a grid timestamp.
    pub fn index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    pub fn is_instant(&self) -> bool {
        self.start == self.end
    }

    /// The time an `@` modifier pins to.
    pub fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Time(t) => clamp_span(t),
            AtModifier::Start => self.ctx.q_start,
            AtModifier::End => self.ctx.q_end,
        })
    }

    /// A duration in milliseconds (duration expressions use the query's
    /// step and range).
    pub fn duration(&self, d: &Duration, allow_negative: bool) -> Result<i64> {
        resolve_duration(
            d,
            self.ctx.q_step,
            self.ctx.q_end - self.ctx.q_start,
            allow_negative,
        )
        .map(clamp_span)
    }

    pub fn offset(&self, d: &Option<Duration>) -> Result<i64> {
        match d {
            Some(d) => self.duration(d, true),
            None => Ok(0),
        }
    }

    /// Evaluates one node over this grid.
    pub fn eval(&self, e: &Expr) -> Result<Val> {
        self.ctx.check()?;
        if self.end < self.start {
            return Ok(Val::Vector(Vec::new()));
        }
        let before = self.ctx.current();
        let mut v = self.eval_node(e)?;
        // Selectors, literals and parentheses mark no names.
        if !self.ctx.delayed_name_removal
            && matches!(
                e,
                Expr::Unary(..) | Expr::Binary(_) | Expr::Aggregate(_) | Expr::Call(_)
            )
        {
            v = drop_names_now(v, e)?;
        }
        self.ctx.settle(before, v.points())?;
        Ok(v)
    }

    fn eval_node(&self, e: &Expr) -> Result<Val> {
        match e {
            Expr::Number(v) => Ok(Val::Scalar(vec![*v; self.n()])),
            Expr::String(s) => Ok(Val::String(s.clone())),
            Expr::Paren(x) => self.eval(x),
            Expr::Unary(UnaryOp::Pos, x) => self.eval(x),
            Expr::Unary(UnaryOp::Neg, x) => match self.eval(x)? {
                Val::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut ss) => {
                    for s in &mut ss {
                        s.drop_name = true;
                        s.points.iter_mut().for_each(|p| p.v = -p.v);
                    }
                    Ok(Val::Vector(ss))
                }
                other => Err(exec(format!(
                    "unary minus on a {} is not allowed",
                    other.type_name()
                ))),
            },
            Expr::Vector(vs) => selector::instant(self, vs),
            Expr::Matrix(ms) => {
                if !self.is_instant() {
                    return Err(exec("cannot do range evaluation of matrix selector"));
                }
                selector::matrix_value(self, ms)
            }
            Expr::Subquery(sq) => {
                if !self.is_instant() {
                    return Err(exec("cannot do range evaluation of subquery"));
                }
                Ok(Val::Matrix(self.subquery(sq)?.0))
            }
            Expr::Binary(b) => binary::eval(self, b),
            Expr::Aggregate(a) => aggregate::eval(self, a),
            Expr::Call(c) => call::eval(self, c),
        }
    }

    /// The child grid of a subquery: aligned to its step, ending at the
    /// (aligned) parent end minus the offset, starting just after
    /// `start - offset - range` (left-open).
    pub fn subquery_grid(&self, sq: &SubqueryExpr) -> Result<Ev<'a>> {
        let off = self.offset(&sq.offset)?;
        let range = self.duration(&sq.range, false)?;
        let step = match &sq.step {
            Some(s) => self.duration(s, false)?,
            None => self.ctx.sub_step,
        }
        .max(1);
        let (base_start, base_end) = match self.at_time(&sq.at) {
            Some(t) => (t, t),
            None => (
                self.start,
                self.start + ((self.end - self.start) / self.step) * self.step,
            ),
        };
        let lo = base_start.saturating_sub(off).saturating_sub(range);
        let mut start = step * (lo / step);
        if start <= lo {
            start = start.saturating_add(step);
        }
        let child = Ev {
            ctx: self.ctx,
            start,
            end: base_end.saturating_sub(off),
            step,
        };
        self.ctx.check_steps(child.start, child.end, step)?;
        Ok(child)
    }

    /// Evaluates a subquery's inner expression on its own grid; returns
    /// its series (points at the child grid's timestamps) and the grid.
    pub fn subquery(&self, sq: &SubqueryExpr) -> Result<(Vec<Series>, Ev<'a>)> {
        let child = self.subquery_grid(sq)?;
        let series = match child.eval(&sq.expr)? {
            Val::Vector(s) => s,
            Val::Scalar(v) => {
                let points: Vec<Point> = v
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| Point::new(child.ts(i), x))
                    .collect();
                if points.is_empty() {
                    Vec::new()
                } else {
                    vec![Series::new(Labels::default(), points)]
                }
            }
            other => {
                return Err(exec(format!(
                    "subquery of a {} is not allowed",
                    other.type_name()
                )));
            }
        };
        Ok((series, child))
    }
}

/// Resolves a duration to milliseconds.
pub(crate) fn resolve_duration(
    d: &Duration,
    step_ms: i64,
    range_ms: i64,
    allow_negative: bool,
) -> Result<i64> {
    match d {
        Duration::Literal(ms) => Ok(*ms),
        Duration::Expr(e) => {
            let secs = duration_expr(e, step_ms as f64 / 1000.0, range_ms as f64 / 1000.0)?;
            if !secs.is_finite() {
                return Err(EvalError::BadData("duration is NaN or infinite".into()));
            }
            if secs <= 0.0 && !allow_negative {
                return Err(EvalError::BadData("duration must be greater than 0".into()));
            }
            if secs.abs() > (i64::MAX as f64) / 1e9 {
                return Err(EvalError::BadData("duration is out of range".into()));
            }
            Ok((secs * 1000.0) as i64)
        }
    }
}

fn duration_expr(e: &DurationExpr, step: f64, range: f64) -> Result<f64> {
    let r = |x: &DurationExpr| duration_expr(x, step, range);
    Ok(match e {
        DurationExpr::Number(v) => *v,
        DurationExpr::Step => step,
        DurationExpr::Range => range,
        DurationExpr::Neg(x) => -r(x)?,
        DurationExpr::Paren(x) => r(x)?,
        DurationExpr::MinOf(a, b) => r(a)?.min(r(b)?),
        DurationExpr::MaxOf(a, b) => r(a)?.max(r(b)?),
        DurationExpr::Binary(op, a, b) => {
            let (a, b) = (r(a)?, r(b)?);
            match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div if b == 0.0 => {
                    return Err(EvalError::BadData("division by zero".into()));
                }
                BinaryOp::Div => a / b,
                BinaryOp::Mod if b == 0.0 => {
                    return Err(EvalError::BadData("modulo by zero".into()));
                }
                BinaryOp::Mod => a % b,
                BinaryOp::Pow => a.powf(b),
                other => {
                    return Err(EvalError::BadData(format!(
                        "unexpected duration expression operator {:?}",
                        other.as_str()
                    )));
                }
            }
        }
    })
}

/// Best-effort byte offset where an expression starts (for annotation
/// positions).
pub(crate) fn expr_pos(e: &Expr) -> Option<usize> {
    match e {
        Expr::Vector(vs) => Some(vs.position),
        Expr::Matrix(ms) => Some(ms.vector.position),
        Expr::Subquery(sq) => expr_pos(&sq.expr).or(Some(sq.position)),
        Expr::Paren(x) | Expr::Unary(_, x) => expr_pos(x).map(|p| p.saturating_sub(1)),
        Expr::Binary(b) => expr_pos(&b.lhs),
        Expr::Aggregate(a) => Some(a.position),
        Expr::Call(c) => Some(c.position),
        Expr::Number(_) | Expr::String(_) => None,
    }
}

/// Collects output series keyed by labels across steps; two values for the
/// same label set at one step are an error, as in Prometheus.
pub(crate) struct OutBuilder {
    index: LabelIndex,
    pub series: Vec<Series>,
}

impl OutBuilder {
    pub fn new() -> OutBuilder {
        OutBuilder {
            index: LabelIndex::default(),
            series: Vec::new(),
        }
    }

    /// The index of the series with these labels, if there is one.
    #[inline]
    fn find(&self, h: u64, labels: &Labels) -> Option<usize> {
        self.index.find(h, |i| self.series[i].labels == *labels)
    }

    /// Adds a series of hash `h`; its index is the number of series before.
    fn add(&mut self, h: u64, labels: &Labels, drop_name: bool, points: Vec<Point>) -> usize {
        self.series.push(Series {
            labels: labels.clone(),
            points,
            drop_name,
        });
        self.index.add(h)
    }

    /// The index of the series with these labels, created (empty) if new.
    pub fn slot(&mut self, labels: &Labels, drop_name: bool) -> usize {
        let h = labels.identity_hash();
        match self.find(h, labels) {
            Some(i) => i,
            None => self.add(h, labels, drop_name, Vec::new()),
        }
    }

    /// Appends a point to series `i` (from [`OutBuilder::slot`]); a second
    /// point at the same time is Prometheus's duplicate labelset error.
    #[inline]
    pub fn push_at(&mut self, i: usize, t: i64, v: f64) -> Result<()> {
        let s = &mut self.series[i];
        if s.points.last().is_some_and(|p| p.t == t) {
            return Err(exec("vector cannot contain metrics with the same labelset"));
        }
        s.points.push(Point::new(t, v));
        Ok(())
    }

    pub fn push(&mut self, labels: &Labels, drop_name: bool, t: i64, v: f64) -> Result<()> {
        let h = labels.identity_hash();
        match self.find(h, labels) {
            Some(i) => self.push_at(i, t, v)?,
            None => {
                self.add(h, labels, drop_name, vec![Point::new(t, v)]);
            }
        }
        Ok(())
    }
}

/// Drops the metric names marked for removal and merges series that
/// became equal, failing if they meet at a step: at the end of the
/// evaluation with delayed name removal, at each node without it.
pub(crate) fn merge_same_labelset(mut series: Vec<Series>) -> Result<Vec<Series>> {
    match drop_marked(&mut series) {
        Dropped::Mixed => merge_equal(series),
        Dropped::Unchanged | Dropped::AllAlike => Ok(series),
    }
}

/// Name removal without delay: the names node `e` marked for removal go
/// now, as Prometheus drops them without `promql-delayed-name-removal`.
/// Series that became equal merge, failing if they meet at a step (the
/// per-step check of Prometheus's `rangeEval`, and unary minus's merge);
/// a range function's (`rate(x[5m])`, whose selector may match several
/// names) fail if any two have points at all, as Prometheus checks the
/// whole matrix of its output.
fn drop_names_now(v: Val, e: &Expr) -> Result<Val> {
    let Val::Vector(series) = v else {
        return Ok(v);
    };
    Ok(Val::Vector(if takes_range(e) {
        drop_names_strictly(series)?
    } else {
        merge_same_labelset(series)?
    }))
}

/// Drops the names `series` marked for removal, failing if any two of
/// them with points are then equal (a range function's output, without
/// delayed name removal).
pub(crate) fn drop_names_strictly(mut series: Vec<Series>) -> Result<Vec<Series>> {
    if drop_marked(&mut series) != Dropped::Mixed {
        return Ok(series);
    }
    let live: Vec<&Labels> = series
        .iter()
        .filter(|s| !s.points.is_empty())
        .map(|s| &s.labels)
        .collect();
    let mut seen = LabelIndex::with_capacity(live.len());
    for l in &live {
        let h = l.identity_hash();
        if seen.find(h, |j| live[j] == *l).is_some() {
            return Err(exec("vector cannot contain metrics with the same labelset"));
        }
        seen.add(h);
    }
    Ok(series)
}

/// What [`drop_marked`] changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dropped {
    /// No label set.
    Unchanged,
    /// Every label set, each losing the same name (and `__type__` and
    /// `__unit__`): series that differed still do.
    AllAlike,
    /// Some label sets: two may now be equal.
    Mixed,
}

/// Clears the marks and drops the marked series' metric names (with
/// `__type__` and `__unit__`). Where no label set changed, or all lost
/// the same name (`rate(x[5m])`), no two are equal: every node's output
/// has distinct label sets, counting the names not yet dropped.
fn drop_marked(series: &mut [Series]) -> Dropped {
    let mut changed = 0;
    let mut alike = true;
    let mut first: Option<Labels> = None;
    for s in series.iter_mut() {
        if std::mem::take(&mut s.drop_name) && has_metadata(&s.labels) {
            if alike {
                match &first {
                    None => first = Some(s.labels.clone()),
                    Some(f) => alike = same_metadata(f, &s.labels),
                }
            }
            s.labels = drop_metadata(&s.labels);
            changed += 1;
        }
    }
    match changed {
        0 => Dropped::Unchanged,
        n if n == series.len() && alike => Dropped::AllAlike,
        _ => Dropped::Mixed,
    }
}

/// `e` without the parentheses around it.
pub(crate) fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(x) => unparen(x),
        other => other,
    }
}

/// Whether `e` is a call with a range-vector argument.
fn takes_range(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => c
            .args
            .iter()
            .any(|a| matches!(unparen(a), Expr::Matrix(_) | Expr::Subquery(_))),
        _ => false,
    }
}

/// Like [`merge_same_labelset`] but keeps the `drop_name` flags and the
/// names (used by `label_replace`/`label_join`, which only merge series
/// that are equal including their names).
pub(crate) fn merge_equal(series: Vec<Series>) -> Result<Vec<Series>> {
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index = LabelIndex::default();
    let mut merged = false;
    for s in series {
        let h = s.labels.identity_hash();
        match index.find(h, |i| out[i].labels == s.labels) {
            Some(i) => {
                out[i].points.extend(s.points);
                merged = true;
            }
            None => {
                index.add(h);
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.t);
            if s.points.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(exec("vector cannot contain metrics with the same labelset"));
            }
        }
    }
    Ok(out)
}

/// The range of time any selector of `e` may read, as Prometheus's
/// `FindMinMaxTime`: `(mint, maxt)`, or `None` when it selects nothing.
fn time_bounds(e: &Expr, ctx: &Ctx) -> Option<(i64, i64)> {
    struct W<'c> {
        ctx: &'c Ctx,
        min: i64,
        max: i64,
    }
    impl W<'_> {
        fn dur(&self, d: &Duration) -> i64 {
            resolve_duration(d, self.ctx.q_step, self.ctx.q_end - self.ctx.q_start, true)
                .map_or(0, clamp_span)
        }
        fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
            at.map(|a| match a {
                AtModifier::Time(t) => clamp_span(t),
                AtModifier::Start => self.ctx.q_start,
                AtModifier::End => self.ctx.q_end,
            })
        }
        /// A selector read at `start..=end` with a `range` (0: instant).
        fn selector(&mut self, vs: &VectorSelector, start: i64, end: i64, range: i64) {
            let off = vs.offset.as_ref().map_or(0, |d| self.dur(d));
            let (s, en) = match self.at(&vs.at) {
                Some(t) => (t, t),
                None => (start, end),
            };
            let lb = self.ctx.lookback;
            let s = if range == 0 {
                s - (lb - 1)
            } else {
                s - (range - 1) - lb
            };
            let en = en + lb;
            self.min = self.min.min(s.saturating_sub(off));
            self.max = self.max.max(en.saturating_sub(off));
        }
        fn walk(&mut self, e: &Expr, start: i64, end: i64, range: i64) {
            match e {
                Expr::Vector(vs) => self.selector(vs, start, end, range),
                Expr::Matrix(ms) => {
                    let r = self.dur(&ms.range);
                    self.selector(&ms.vector, start, end, r.max(1));
                }
                Expr::Subquery(sq) => {
                    let off = sq.offset.as_ref().map_or(0, |d| self.dur(d));
                    let r = self.dur(&sq.range);
                    let (s, en) = match self.at(&sq.at) {
                        Some(t) => (t, t),
                        None => (start, end),
                    };
                    self.walk(&sq.expr, s - off - r, en - off, 0);
                }
                Expr::Paren(x) | Expr::Unary(_, x) => self.walk(x, start, end, 0),
                Expr::Binary(b) => {
                    self.walk(&b.lhs, start, end, 0);
                    self.walk(&b.rhs, start, end, 0);
                }
                Expr::Aggregate(a) => {
                    self.walk(&a.expr, start, end, 0);
                    if let Some(p) = &a.param {
                        self.walk(p, start, end, 0);
                    }
                }
                Expr::Call(c) => c.args.iter().for_each(|a| self.walk(a, start, end, 0)),
                Expr::Number(_) | Expr::String(_) => {}
            }
        }
    }
    let mut w = W {
        ctx,
        min: i64::MAX,
        max: i64::MIN,
    };
    w.walk(e, ctx.q_start, ctx.q_end, 0);
    (w.max != i64::MIN).then_some((w.min, w.max))
}

/// A selector's matchers and the series they selected ahead of the
/// evaluation.
type Selected = (Vec<Matcher>, Vec<SeriesEntry>);

/// What [`walk_selectors`] reports.
enum Node<'e> {
    Selector(&'e VectorSelector),
    Subquery,
}

/// Calls `f` for every vector selector of `e` (those of range selectors
/// included) and every subquery (without looking inside).
fn walk_selectors<'e>(e: &'e Expr, f: &mut impl FnMut(Node<'e>)) {
    match e {
        Expr::Vector(vs) => f(Node::Selector(vs)),
        Expr::Matrix(ms) => f(Node::Selector(&ms.vector)),
        Expr::Subquery(_) => f(Node::Subquery),
        Expr::Paren(x) | Expr::Unary(_, x) => walk_selectors(x, f),
        Expr::Binary(b) => {
            walk_selectors(&b.lhs, f);
            walk_selectors(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk_selectors(p, f);
            }
            walk_selectors(&a.expr, f);
        }
        Expr::Call(c) => c.args.iter().for_each(|a| walk_selectors(a, f)),
        Expr::Number(_) | Expr::String(_) => {}
    }
}

/// The machine's cores, asked once: `available_parallelism` reads the
/// cgroup files on every call (tens of microseconds, a fixed cost of
/// every query otherwise).
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs one query (`step_ms == 0`: instant).
pub(crate) fn run(
    db: &Arc<engine::Db>,
    expr: &Expr,
    start: i64,
    end: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryOutput> {
    Plan::new(db, expr, start, end, step_ms, opts)?.run(expr, opts)
}

/// A query ready to run: checked, its snapshot taken over the time its
/// selectors read, and (after [`Plan::preselect`]) its series selected,
/// so that its size is known before the evaluation starts.
pub(crate) struct Plan {
    ctx: Ctx,
    start: i64,
    end: i64,
    step_ms: i64,
}

/// Samples per series and hour assumed by [`Plan::preselect`]'s estimate
/// (a 15 s scrape interval; the engine does not say how dense a series
/// is without reading it).
const SAMPLES_PER_HOUR: u64 = 240;

/// Samples a series is assumed to hold over `span_ms`
/// ([`SAMPLES_PER_HOUR`]).
pub(crate) fn assumed_samples(span_ms: u64) -> u64 {
    span_ms.saturating_mul(SAMPLES_PER_HOUR).div_ceil(3_600_000)
}

impl Plan {
    pub fn new(
        db: &Arc<engine::Db>,
        expr: &Expr,
        start: i64,
        end: i64,
        step_ms: i64,
        opts: &QueryOptions,
    ) -> Result<Plan> {
        if [start, end].iter().any(|t| t.abs() > MAX_SPAN) {
            return Err(EvalError::BadData(format!(
                "query time out of range (must be within ±{MAX_SPAN} ms)"
            )));
        }
        let ty = expr.value_type();
        if step_ms > 0 && !matches!(ty, ValueType::Scalar | ValueType::Vector) {
            return Err(EvalError::BadData(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                match ty {
                    ValueType::Matrix => "range vector",
                    ValueType::String => "string",
                    ValueType::Vector => "instant vector",
                    ValueType::Scalar => "scalar",
                }
            )));
        }
        let eo = &opts.engine;
        let lookback = opts.lookback_delta.unwrap_or(eo.lookback_delta).as_millis() as i64;
        let threads = if eo.parallelism == 0 {
            cores()
        } else {
            eo.parallelism
        };
        let mut ctx = Ctx {
            querier: db.querier(0, 0),
            lookback: lookback.max(1),
            max_samples: eo.max_samples,
            max_series: eo.max_series,
            deadline: Instant::now() + eo.timeout,
            timeout: eo.timeout,
            cancel: opts.cancel.clone(),
            current: AtomicI64::new(0),
            peak: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
            series: AtomicU64::new(0),
            annos: Annotations::default(),
            q_start: start,
            q_end: end,
            q_step: step_ms,
            sub_step: (eo.default_subquery_step.as_millis() as i64).max(1),
            threads,
            delayed_name_removal: eo.delayed_name_removal,
            selected: Mutex::new(Vec::new()),
        };
        ctx.check_steps(start, end, step_ms.max(1))?;
        let (mint, maxt) = time_bounds(expr, &ctx).unwrap_or((0, 0));
        ctx.querier = db.querier(mint, maxt);
        Ok(Plan {
            ctx,
            start,
            end,
            step_ms,
        })
    }

    /// Selects the series of every selector of `expr` now (the evaluation
    /// takes them instead of selecting again) and estimates the work:
    /// the sum over selectors of series × (steps + samples read per series,
    /// at [`SAMPLES_PER_HOUR`] over the time the query reads). Subqueries
    /// evaluate their argument on grids of their own: `u64::MAX`. A
    /// selection that fails is left to the evaluation, which reports it
    /// where the query would have.
    pub fn preselect(&self, expr: &Expr) -> u64 {
        let steps = Ev {
            ctx: &self.ctx,
            start: self.start,
            end: self.end,
            step: self.step_ms.max(1),
        }
        .n() as u64;
        let span_ms = (self.ctx.querier.maxt() - self.ctx.querier.mint()).max(0) as u64;
        let samples = assumed_samples(span_ms);
        let per_series = steps.saturating_add(samples);
        let mut cost = 0u64;
        let mut found = Vec::new();
        let mut subquery = false;
        walk_selectors(expr, &mut |node| match node {
            Node::Subquery => subquery = true,
            Node::Selector(vs) => {
                if found.iter().any(|(m, _): &Selected| *m == vs.matchers) {
                    return;
                }
                if let Ok(entries) = self.ctx.querier.select(&vs.matchers) {
                    cost = cost.saturating_add((entries.len() as u64).saturating_mul(per_series));
                    found.push((vs.matchers.clone(), entries));
                }
            }
        });
        if let Ok(mut sel) = self.ctx.selected.lock() {
            *sel = found;
        }
        if subquery { u64::MAX } else { cost }
    }

    /// Calls `f` with the plan's evaluation over its grid: for tests that
    /// drive a piece of the evaluator directly.
    #[cfg(test)]
    pub fn with_ev<R>(&self, f: impl FnOnce(&Ev) -> R) -> R {
        f(&Ev {
            ctx: &self.ctx,
            start: self.start,
            end: self.end,
            step: self.step_ms.max(1),
        })
    }

    /// Evaluates `expr` (the expression the plan was made for).
    pub fn run(self, expr: &Expr, opts: &QueryOptions) -> Result<QueryOutput> {
        let Plan {
            ctx,
            start,
            end,
            step_ms,
        } = self;
        let ev = Ev {
            ctx: &ctx,
            start,
            end,
            step: step_ms.max(1),
        };
        let val = ev.eval(expr)?;
        let value = match val {
            Val::String(s) => Value::String(start, s),
            Val::Scalar(v) => {
                if step_ms == 0 {
                    Value::Scalar(start, v.first().copied().unwrap_or(f64::NAN))
                } else {
                    let points = v
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| Point::new(ev.ts(i), x))
                        .collect();
                    Value::Matrix(vec![Series::new(Labels::default(), points)])
                }
            }
            Val::Vector(series) => {
                if step_ms == 0 {
                    let mut out: Vec<Sample> = Vec::with_capacity(series.len());
                    for s in series {
                        let Some(p) = s.points.first() else { continue };
                        let labels = if s.drop_name {
                            drop_metadata(&s.labels)
                        } else {
                            s.labels
                        };
                        out.push(Sample {
                            labels,
                            t: start,
                            v: p.v,
                        });
                    }
                    let mut seen = LabelIndex::with_capacity(out.len());
                    for (i, s) in out.iter().enumerate() {
                        let h = s.labels.identity_hash();
                        if seen.find(h, |j| out[j].labels == s.labels).is_some() {
                            return Err(exec(
                                "vector cannot contain metrics with the same labelset",
                            ));
                        }
                        let n = seen.add(h);
                        debug_assert_eq!(n, i, "entries numbered as the samples");
                    }
                    Value::Vector(out)
                } else {
                    let mut m = merge_same_labelset(series)?;
                    m.retain(|s| !s.points.is_empty());
                    m.sort_by(|a, b| a.labels.cmp(&b.labels));
                    Value::Matrix(m)
                }
            }
            Val::Matrix(series) => {
                let mut m = merge_same_labelset(series)?;
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m)
            }
        };
        let (warnings, infos) = ctx.annos.render(&opts.query_text);
        Ok(QueryOutput {
            value,
            warnings,
            infos,
            stats: QueryStats {
                samples_loaded: ctx.loaded.load(Ordering::Relaxed),
                series_touched: ctx.series.load(Ordering::Relaxed),
                peak_samples: ctx.peak.load(Ordering::Relaxed),
            },
        })
    }
}

#[cfg(test)]
mod par_map_tests {
    use super::*;

    /// Items that take about `micros` each, so helpers really start.
    fn slow(x: &u32, micros: u64) -> Result<Option<u32>> {
        let until = Instant::now() + StdDuration::from_micros(micros);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        Ok((!x.is_multiple_of(3)).then_some(x * 2))
    }

    #[test]
    fn keeps_item_order_with_helpers_and_without() {
        let items: Vec<u32> = (0..500).collect();
        let want: Vec<u32> = items
            .iter()
            .filter(|x| *x % 3 != 0)
            .map(|x| x * 2)
            .collect();
        for (threads, solo) in [
            (1, StdDuration::ZERO),
            (2, StdDuration::ZERO),
            (4, StdDuration::ZERO),
            (3, StdDuration::from_micros(200)),
            (4, StdDuration::from_secs(60)),
        ] {
            let got = par_map(threads, solo, &items, |x| slow(x, 20)).unwrap();
            assert_eq!(got, want, "threads {threads}, solo {solo:?}");
        }
        assert!(
            par_map(4, StdDuration::ZERO, &[] as &[u32], |x| slow(x, 0))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn small_work_stays_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let items: Vec<u32> = (0..1000).collect();
        let got = par_map(4, StdDuration::from_secs(60), &items, |x| {
            assert_eq!(std::thread::current().id(), caller);
            Ok(Some(*x))
        })
        .unwrap();
        assert_eq!(got, items);
    }

    #[test]
    fn an_error_stops_the_work_and_wins() {
        let items: Vec<u32> = (0..400).collect();
        let done = AtomicU64::new(0);
        for threads in [1, 2, 4] {
            done.store(0, Ordering::Relaxed);
            let err = par_map(threads, StdDuration::ZERO, &items, |&x| {
                done.fetch_add(1, Ordering::Relaxed);
                if x == 150 {
                    return Err(exec("item 150"));
                }
                slow(&x, 50)
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "item 150", "threads {threads}");
            assert!(
                done.load(Ordering::Relaxed) < items.len() as u64,
                "threads {threads}: the other items were skipped"
            );
        }
    }

    #[test]
    fn ends_hand_out_every_item_once() {
        let e = Ends::new(3, 20);
        let mut seen = Vec::new();
        let mut front = true;
        while let Some((a, b)) = if front {
            e.take_front(4)
        } else {
            e.take_back(3)
        } {
            assert!(a < b);
            seen.extend(a..b);
            front = !front;
        }
        seen.sort_unstable();
        assert_eq!(seen, (3..20).collect::<Vec<_>>());
        assert_eq!(e.take_back(1), None);
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    fn plan(timeout: StdDuration) -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = engine::Options::new(dir.path());
        o.background = false;
        let db =
            engine::Db::open(o, &mut prometheus_client::registry::Registry::default()).unwrap();
        let mut opts = QueryOptions::default();
        opts.engine.timeout = timeout;
        let expr = crate::promql::parse("vector(1)").unwrap();
        (dir, Plan::new(&db, &expr, 0, 0, 0, &opts).unwrap())
    }

    /// A deadline passed before the evaluation fails its first check; one
    /// that passes during it fails within [`CLOCK_EVERY`] checks, on
    /// every thread, whatever the thread checked for earlier queries.
    #[test]
    fn a_passed_deadline_fails_within_a_clock_period() {
        let (_d, expired) = plan(StdDuration::ZERO);
        assert!(matches!(
            expired.ctx.check(),
            Err(EvalError::Timeout { .. })
        ));
        let (_d, soon) = plan(StdDuration::from_millis(300));
        let fails_within_period = |ctx: &Ctx| {
            // Part way through this thread's period for the query.
            ctx.check().unwrap();
            ctx.check().unwrap();
            std::thread::sleep(StdDuration::from_millis(350));
            // Two checks done, the clock read at the first: the period's
            // last check reads it again.
            let passed = (0..CLOCK_EVERY).position(|_| ctx.check().is_err());
            assert_eq!(passed, Some(CLOCK_EVERY as usize - 2));
        };
        std::thread::scope(|s| {
            s.spawn(|| fails_within_period(&soon.ctx));
        });
        // This thread last checked `expired`: its first check of `soon`
        // reads the clock.
        let (_d, soon) = plan(StdDuration::from_millis(30));
        std::thread::sleep(StdDuration::from_millis(40));
        assert!(matches!(soon.ctx.check(), Err(EvalError::Timeout { .. })));
        let (_d, long) = plan(StdDuration::from_secs(600));
        assert!((0..3 * CLOCK_EVERY).all(|_| long.ctx.check().is_ok()));
    }
}

#[cfg(test)]
mod name_drop_tests {
    use super::*;

    fn marked(pairs: &[(&str, &str)]) -> Series {
        let mut s = Series::new(Labels::new(pairs), vec![Point::new(0, 1.0)]);
        s.drop_name = true;
        s
    }

    /// Series that all lose the same name keep apart without a check;
    /// any other mix may meet, and the strict drop then finds them.
    #[test]
    fn series_that_all_lose_one_name_are_not_checked_again() {
        let a1 = || marked(&[("__name__", "a"), ("x", "1")]);
        let a2 = || marked(&[("__name__", "a"), ("x", "2")]);
        let b1 = || marked(&[("__name__", "b"), ("x", "1")]);
        let typed1 = || marked(&[("__name__", "a"), ("__type__", "gauge"), ("x", "1")]);
        let plain1 = || Series::new(Labels::new(&[("x", "1")]), vec![Point::new(0, 1.0)]);
        let kept = || {
            let mut s = marked(&[("__name__", "a"), ("x", "3")]);
            s.drop_name = false;
            s
        };
        for (mut series, want) in [
            (vec![], Dropped::Unchanged),
            (vec![kept()], Dropped::Unchanged),
            (vec![a1(), a2()], Dropped::AllAlike),
            (vec![a1(), b1()], Dropped::Mixed),
            (vec![a2(), typed1()], Dropped::Mixed),
            (vec![a2(), plain1()], Dropped::Mixed),
            (vec![a1(), kept()], Dropped::Mixed),
        ] {
            let before: Vec<(Labels, bool)> = series
                .iter()
                .map(|s| (s.labels.clone(), s.drop_name))
                .collect();
            assert_eq!(drop_marked(&mut series), want, "{series:?}");
            for (s, (labels, marked)) in series.iter().zip(before) {
                assert!(!s.drop_name, "marks cleared: {s:?}");
                let want = if marked {
                    drop_metadata(&labels)
                } else {
                    labels
                };
                assert_eq!(s.labels, want);
            }
        }
        let fails = |v: Vec<Series>| drop_names_strictly(v).is_err();
        assert!(!fails(vec![a1(), a2()]));
        assert!(fails(vec![a1(), b1()]), "a and b meet at {{x=\"1\"}}");
        assert!(fails(vec![typed1(), a1()]), "the type goes with the name");
        assert!(fails(vec![plain1(), a1()]), "a nameless series meets a1");
        assert!(
            merge_same_labelset(vec![a1(), b1()]).is_err(),
            "equal at a step"
        );
        let mut b1_later = b1();
        b1_later.points = vec![Point::new(1, 2.0)];
        let merged = merge_same_labelset(vec![a1(), b1_later]).unwrap();
        assert_eq!(merged.len(), 1, "equal, never at one step: merged");
        assert_eq!(merged[0].points.len(), 2);
    }
}
