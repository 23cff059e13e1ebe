//! Function calls: argument evaluation and the wiring of the pure
//! functions in [`super::functions`] into the step grid. Range-vector
//! functions run per series across all steps: the common ones as a
//! [`Kernel`] over all windows of a series ([`RangeArg::rollup_spans`]),
//! the others window by window ([`RangeArg::rollup`]);
//! instant functions run per series where they are element-wise and per
//! step where they look at the whole vector (`sort`, `absent`,
//! `histogram_quantile`, ...).

use engine::{Labels, METRIC_NAME};

use super::error::{Result, exec};
use super::evaluator::{Ev, OutBuilder, Val, expr_pos, merge_equal, unparen};
use super::functions::annotations::{self as fa, Annotation};
use super::functions::call::RangeFunction;
use super::functions::histogram::{Histograms, bucket_fraction, bucket_quantile};
use super::functions::labels::{self as fl, LabelJoin, LabelReplace};
use super::functions::math::{MathFunction, clamp, clamp_bounds, go_max, go_min, round};
use super::functions::range::Window as FnWindow;
use super::functions::sort as fs;
use super::functions::time::DateFunction;
use super::rollup::Kernel;
use super::selector::{self, RangeArg};
use super::value::{Point, Series, get, set_label};
use crate::promql::ast::{Call, Expr};

/// Argument `i` of a call (the parser checks arity; a hand-built tree
/// might not have).
fn arg(c: &Call, i: usize) -> Result<&Expr> {
    c.args
        .get(i)
        .ok_or_else(|| exec(format!("missing argument {} of {}()", i + 1, c.func.name)))
}

fn string_arg(e: &Expr) -> Result<&str> {
    match unparen(e) {
        Expr::String(s) => Ok(s),
        _ => Err(exec("expected a string literal argument")),
    }
}

/// Reports a function annotation at the given position.
fn annotate(ev: &Ev, a: Annotation, pos: Option<usize>) {
    ev.ctx.annos.add_fn(a, pos);
}

pub(crate) fn eval(ev: &Ev, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let n = ev.n();
    let ctx = ev.ctx;
    match name {
        "time" => {
            return Ok(Val::Scalar(
                (0..n).map(|i| ev.ts(i) as f64 / 1000.0).collect(),
            ));
        }
        "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "min_of" | "max_of" => {
            let a = scalar_arg(ev, arg(c, 0)?)?;
            let b = scalar_arg(ev, arg(c, 1)?)?;
            let f = if name == "min_of" { go_min } else { go_max };
            return Ok(Val::Scalar(
                a.iter().zip(&b).map(|(&x, &y)| f(x, y)).collect(),
            ));
        }
        "start" => return Ok(Val::Scalar(vec![ctx.q_start as f64 / 1000.0; n])),
        "end" => return Ok(Val::Scalar(vec![ctx.q_end as f64 / 1000.0; n])),
        "range" => {
            return Ok(Val::Scalar(vec![
                (ctx.q_end - ctx.q_start) as f64 / 1000.0;
                n
            ]));
        }
        "step" => return Ok(Val::Scalar(vec![ctx.q_step as f64 / 1000.0; n])),
        "vector" => {
            let s = ev.eval(arg(c, 0)?)?.into_scalar()?;
            let points = s
                .iter()
                .enumerate()
                .map(|(i, &v)| Point::new(ev.ts(i), v))
                .collect();
            return Ok(Val::Vector(vec![Series::new(Labels::default(), points)]));
        }
        "scalar" => {
            let v = ev.eval(arg(c, 0)?)?.into_vector()?;
            let mut out = vec![f64::NAN; n];
            let mut count = vec![0u32; n];
            for s in &v {
                for p in &s.points {
                    let i = ev.index(p.t);
                    count[i] += 1;
                    out[i] = p.v;
                }
            }
            for (o, c) in out.iter_mut().zip(&count) {
                if *c != 1 {
                    *o = f64::NAN;
                }
            }
            return Ok(Val::Scalar(out));
        }
        "timestamp" => {
            let series = match unparen(arg(c, 0)?) {
                Expr::Vector(vs) => selector::timestamps(ev, vs)?,
                other => {
                    let mut v = ev.eval(other)?.into_vector()?;
                    for s in &mut v {
                        s.points.iter_mut().for_each(|p| p.v = p.t as f64 / 1000.0);
                    }
                    v
                }
            };
            return Ok(Val::Vector(mark_drop(series)));
        }
        "start_timestamp" => {
            // Only a selector's samples carry start timestamps.
            let series = match unparen(arg(c, 0)?) {
                Expr::Vector(vs) => selector::start_times(ev, vs)?,
                other => {
                    ev.eval(other)?.into_vector()?;
                    Vec::new()
                }
            };
            return Ok(Val::Vector(mark_drop(series)));
        }
        "label_replace" => return label_replace(ev, c),
        "info" => return super::info::eval(ev, c),
        "label_join" => return label_join(ev, c),
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => return sort(ev, c),
        "absent" => return absent(ev, c),
        "histogram_quantile" => return histogram_quantile(ev, c),
        "histogram_quantiles" => return histogram_quantiles(ev, c),
        "histogram_fraction" => return histogram_fraction(ev, c),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Native histograms only; float samples are ignored.
            let _ = ev.eval(arg(c, 0)?)?;
            return Ok(Val::Vector(Vec::new()));
        }
        "round" => {
            let v = ev.eval(arg(c, 0)?)?.into_vector()?;
            let to = match c.args.get(1) {
                Some(a) => ev.eval(a)?.into_scalar()?,
                None => vec![1.0; n],
            };
            return Ok(Val::Vector(map_points(ev, v, |i, x| Some(round(x, to[i])))));
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ev.eval(arg(c, 0)?)?.into_vector()?;
            let a = ev.eval(arg(c, 1)?)?.into_scalar()?;
            let b = match c.args.get(2) {
                Some(x) => Some(ev.eval(x)?.into_scalar()?),
                None => None,
            };
            return Ok(Val::Vector(map_points(ev, v, |i, x| {
                let (lo, hi) = match name {
                    "clamp" => (a[i], b.as_ref().map_or(f64::INFINITY, |b| b[i])),
                    "clamp_min" => (a[i], f64::INFINITY),
                    _ => (f64::NEG_INFINITY, a[i]),
                };
                clamp_bounds(lo, hi).map(|(lo, hi)| clamp(x, lo, hi))
            })));
        }
        _ => {}
    }
    if let Some(f) = MathFunction::from_name(name) {
        let v = ev.eval(arg(c, 0)?)?.into_vector()?;
        return Ok(Val::Vector(map_points(ev, v, |_, x| Some(f.apply(x)))));
    }
    if let Some(f) = DateFunction::from_name(name) {
        if c.args.is_empty() {
            let points = (0..n)
                .map(|i| Point::new(ev.ts(i), f.apply((ev.ts(i) / 1000) as f64)))
                .collect();
            return Ok(Val::Vector(vec![Series::new(Labels::default(), points)]));
        }
        let v = ev.eval(arg(c, 0)?)?.into_vector()?;
        return Ok(Val::Vector(map_points(ev, v, |_, x| Some(f.apply(x)))));
    }
    range_function(ev, c)
}

/// Marks every series for delayed name removal.
fn mark_drop(mut v: Vec<Series>) -> Vec<Series> {
    v.iter_mut().for_each(|s| s.drop_name = true);
    v
}

/// Applies an element-wise function to every point (`f(step, value)`,
/// `None` drops the point) and marks the name for removal.
fn map_points(ev: &Ev, mut v: Vec<Series>, f: impl Fn(usize, f64) -> Option<f64>) -> Vec<Series> {
    for s in &mut v {
        s.drop_name = true;
        s.points.retain_mut(|p| match f(ev.index(p.t), p.v) {
            Some(x) => {
                p.v = x;
                true
            }
            None => false,
        });
    }
    v.retain(|s| !s.points.is_empty());
    v
}

/// Gathers, per step, the indices and values of the series present.
fn per_step(
    ev: &Ev,
    v: &[Series],
    mut f: impl FnMut(usize, i64, &[(usize, f64)]) -> Result<()>,
) -> Result<()> {
    let mut pos = vec![0usize; v.len()];
    let mut cur = Vec::new();
    for step in 0..ev.n() {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        cur.clear();
        for (i, s) in v.iter().enumerate() {
            if let Some(p) = s.points.get(pos[i])
                && p.t == t
            {
                cur.push((i, p.v));
                pos[i] += 1;
            }
        }
        f(step, t, &cur)?;
    }
    Ok(())
}

fn scalar_arg(ev: &Ev, e: &Expr) -> Result<Vec<f64>> {
    ev.eval(e)?.into_scalar()
}

thread_local! {
    /// Per-thread buffer for the quantile functions.
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn range_function(ev: &Ev, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let Some(mi) = c
        .args
        .iter()
        .position(|a| matches!(unparen(a), Expr::Matrix(_) | Expr::Subquery(_)))
    else {
        return Err(exec(format!("function {name} is not supported")));
    };
    // Scalar arguments, one value per step.
    let mut scalars: Vec<Vec<f64>> = Vec::new();
    for (i, a) in c.args.iter().enumerate() {
        if i != mi {
            scalars.push(scalar_arg(ev, a)?);
        }
    }
    let arg_expr = unparen(&c.args[mi]);
    // absent_over_time is present_over_time per window, then inverted.
    let lookup = if name == "absent_over_time" {
        "present_over_time"
    } else {
        name
    };
    let rf = RangeFunction::from_name(lookup)
        .ok_or_else(|| exec(format!("function {name} is not supported")))?;
    if let Expr::Matrix(ms) = arg_expr {
        rf.check_mode(ms.vector.range_mode)
            .map_err(|e| exec(e.to_string()))?;
    }
    let pos0 = expr_pos(arg(c, 0)?).or(Some(c.position));
    let arg = RangeArg::from_expr(ev, arg_expr)?
        .ok_or_else(|| exec(format!("function {name} needs a range vector")))?;
    let mode = arg.mode;
    let sc = |k: usize, step: usize| {
        scalars
            .get(k)
            .and_then(|v| v.get(step))
            .copied()
            .unwrap_or(f64::NAN)
    };

    if name == "quantile_over_time" {
        let mut seen: Vec<u64> = Vec::new();
        for &q in scalars.first().map(|v| v.as_slice()).unwrap_or(&[]) {
            if !seen.contains(&q.to_bits()) {
                seen.push(q.to_bits());
            }
        }
        if arg.len() > 0 {
            for q in seen {
                if let Some(a) = fa::check_quantile(f64::from_bits(q)) {
                    annotate(ev, a, pos0);
                }
            }
        }
    }
    let mut out = match Kernel::for_function(rf, mode) {
        Some(k) => arg.rollup_kernel(ev, k, &|step| sc(0, step))?,
        // (`check_mode` admits `resets` over normal and anchored windows.)
        None if rf == RangeFunction::Resets => arg.rollup_resets(ev)?,
        None => window_by_window(ev, &arg, rf, &scalars, pos0)?,
    };
    if !keeps_metric_name(name) {
        out.iter_mut().for_each(|s| s.drop_name = true);
    }
    if warns_non_counter(name) {
        for s in &out {
            if let Some(a) = fa::possible_non_counter(get(&s.labels, METRIC_NAME)) {
                annotate(ev, a, pos0);
            }
        }
    }
    if name == "absent_over_time" {
        let points = absent_points(ev, &out);
        if points.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Series {
            labels: absent_labels(arg_expr),
            points,
            // Prometheus marks it, but drops nothing (a `__type__` or
            // `__unit__` from the selector stays) unless removal is delayed.
            drop_name: ev.ctx.delayed_name_removal,
        }]));
    }
    Ok(Val::Vector(out))
}

/// Whether range function `name`'s output keeps its input's metric name.
pub(super) fn keeps_metric_name(name: &str) -> bool {
    matches!(name, "last_over_time" | "first_over_time")
}

/// Whether range function `name` reports series not named like counters.
pub(super) fn warns_non_counter(name: &str) -> bool {
    matches!(name, "rate" | "increase")
}

/// Runs a range function window by window (the functions without a
/// per-series [`Kernel`], and `anchored`/`smoothed` windows).
fn window_by_window(
    ev: &Ev,
    arg: &RangeArg,
    rf: RangeFunction,
    scalars: &[Vec<f64>],
    pos0: Option<usize>,
) -> Result<Vec<Series>> {
    let mode = arg.mode;
    let sc = |k: usize, step: usize| {
        scalars
            .get(k)
            .and_then(|v| v.get(step))
            .copied()
            .unwrap_or(f64::NAN)
    };
    // The silt_* forecasting functions reuse one fit per series across steps.
    let call_id = super::functions::forecast::next_call_id();
    arg.rollup(ev, |i, w| {
        let fw = FnWindow::new(w.points, w.range_start, w.range_end);
        let mut params = [f64::NAN; 2];
        for (k, p) in params.iter_mut().enumerate().take(scalars.len()) {
            *p = sc(k, w.step);
        }
        let series = super::functions::forecast::SeriesRef {
            call: call_id,
            series: i,
        };
        SCRATCH.with(|s| {
            rf.eval_with(
                &fw,
                mode,
                w.t,
                &params[..scalars.len().min(2)],
                &mut s.borrow_mut(),
                Some(series),
                &mut |a| annotate(ev, a, pos0),
            )
            .map_err(|e| exec(e.to_string()))
        })
    })
}

/// A point of value 1 at every step where no series of `v` has one (what
/// `absent` and `absent_over_time` return).
fn absent_points(ev: &Ev, v: &[Series]) -> Vec<Point> {
    let mut present = vec![false; ev.n()];
    for s in v {
        for p in &s.points {
            present[ev.index(p.t)] = true;
        }
    }
    (0..ev.n())
        .filter(|&i| !present[i])
        .map(|i| Point::new(ev.ts(i), 1.0))
        .collect()
}

/// The labels `absent(x{...})` reports.
fn absent_labels(e: &Expr) -> Labels {
    match unparen(e) {
        Expr::Vector(vs) => fl::absent_labels(&vs.matchers),
        Expr::Matrix(ms) => fl::absent_labels(&ms.vector.matchers),
        _ => Labels::default(),
    }
}

fn absent(ev: &Ev, c: &Call) -> Result<Val> {
    let v = ev.eval(arg(c, 0)?)?.into_vector()?;
    let points = absent_points(ev, &v);
    if points.is_empty() {
        return Ok(Val::Vector(Vec::new()));
    }
    Ok(Val::Vector(vec![Series::new(
        absent_labels(arg(c, 0)?),
        points,
    )]))
}

/// The value of a one-point (instant) series.
fn first(s: &Series) -> f64 {
    s.points.first().map_or(f64::NAN, |p| p.v)
}

fn sort(ev: &Ev, c: &Call) -> Result<Val> {
    let name = c.func.name;
    let v = ev.eval(arg(c, 0)?)?.into_vector()?;
    if !ev.is_instant() {
        annotate(ev, Annotation::SortInRangeQuery, Some(c.position));
        return Ok(Val::Vector(v));
    }
    let mut v = v;
    match name {
        "sort" => v.sort_by(|a, b| fs::cmp_value_asc(first(a), first(b))),
        "sort_desc" => v.sort_by(|a, b| fs::cmp_value_desc(first(a), first(b))),
        _ => {
            let labels: Vec<&str> = c
                .args
                .get(1..)
                .unwrap_or(&[])
                .iter()
                .map(string_arg)
                .collect::<Result<_>>()?;
            if name == "sort_by_label" {
                v.sort_by(|a, b| fs::cmp_by_labels(&a.labels, &b.labels, &labels));
            } else {
                v.sort_by(|a, b| fs::cmp_by_labels_desc(&a.labels, &b.labels, &labels));
            }
        }
    }
    Ok(Val::Vector(v))
}

/// Go strings may hold invalid UTF-8 (`"\xff"`), which Prometheus rejects
/// as a label name; the parser turns such bytes into U+FFFD.
fn check_label_name(function: &str, kind: &str, name: &str) -> Result<()> {
    if name.contains('\u{FFFD}') {
        return Err(exec(format!(
            "invalid {kind} label name in {function}(): {name}"
        )));
    }
    Ok(())
}

fn label_replace(ev: &Ev, c: &Call) -> Result<Val> {
    check_label_name("label_replace", "destination", string_arg(arg(c, 1)?)?)?;
    let lr = LabelReplace::new(
        string_arg(arg(c, 1)?)?,
        string_arg(arg(c, 2)?)?,
        string_arg(arg(c, 3)?)?,
        string_arg(arg(c, 4)?)?,
    )
    .map_err(|e| exec(e.to_string()))?;
    let mut v = ev.eval(arg(c, 0)?)?.into_vector()?;
    for s in &mut v {
        if let Some(l) = lr.apply(&s.labels) {
            s.labels = l;
            if lr.destination() == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    Ok(Val::Vector(merge_equal(v)?))
}

fn label_join(ev: &Ev, c: &Call) -> Result<Val> {
    let srcs: Vec<&str> = c
        .args
        .get(3..)
        .unwrap_or(&[])
        .iter()
        .map(string_arg)
        .collect::<Result<_>>()?;
    for s in &srcs {
        check_label_name("label_join", "source", s)?;
    }
    check_label_name("label_join", "destination", string_arg(arg(c, 1)?)?)?;
    let lj = LabelJoin::new(string_arg(arg(c, 1)?)?, string_arg(arg(c, 2)?)?, &srcs)
        .map_err(|e| exec(e.to_string()))?;
    let mut v = ev.eval(arg(c, 0)?)?.into_vector()?;
    for s in &mut v {
        s.labels = lj.apply(&s.labels);
        if lj.destination() == METRIC_NAME {
            s.drop_name = false;
        }
    }
    Ok(Val::Vector(merge_equal(v)?))
}

/// The metric name a histogram function's annotation names: the
/// histogram's, or none without delayed name removal (as Prometheus,
/// whose input has usually lost its name by then).
fn annotated_name<'l>(ev: &Ev, labels: &'l Labels) -> &'l str {
    if ev.ctx.delayed_name_removal {
        get(labels, METRIC_NAME)
    } else {
        ""
    }
}

/// Runs `f` on the classic histograms of each step's vector.
fn per_step_buckets(
    ev: &Ev,
    v: &[Series],
    pos: Option<usize>,
    mut f: impl FnMut(
        usize,
        i64,
        Vec<super::functions::histogram::BucketGroup>,
        &mut OutBuilder,
    ) -> Result<()>,
) -> Result<Vec<Series>> {
    let mut out = OutBuilder::new();
    let mut annos = Vec::new();
    // Each series' histogram once, not a label set built and hashed per
    // series and step.
    let histograms = Histograms::new(v.iter().map(|s| &s.labels));
    let mut slots = Vec::new();
    per_step(ev, v, |step, t, cur| {
        let groups = histograms.group(cur.iter().copied(), &mut annos, &mut slots);
        for mut a in annos.drain(..) {
            if let Annotation::BadBucketLabel { metric_name, .. } = &mut a
                && !ev.ctx.delayed_name_removal
            {
                metric_name.clear();
            }
            annotate(ev, a, pos);
        }
        f(step, t, groups, &mut out)
    })?;
    Ok(out.series)
}

fn histogram_quantile(ev: &Ev, c: &Call) -> Result<Val> {
    let q = scalar_arg(ev, arg(c, 0)?)?;
    let v = ev.eval(arg(c, 1)?)?.into_vector()?;
    let (qpos, vpos) = (
        expr_pos(arg(c, 0)?).or(Some(c.position)),
        expr_pos(arg(c, 1)?),
    );
    let mut any = false;
    let series = per_step_buckets(ev, &v, vpos, |step, t, groups, out| {
        let q = q[step];
        if let Some(a) = fa::check_quantile(q) {
            annotate(ev, a, qpos);
        }
        for mut g in groups {
            if g.buckets.is_empty() {
                continue;
            }
            any = true;
            let r = bucket_quantile(q, &mut g.buckets);
            if let Some(fix) = r.forced_monotonicity {
                annotate(
                    ev,
                    Annotation::ForcedMonotonicity(fa::MonotonicityFix::new(
                        annotated_name(ev, &g.labels),
                        t,
                        fix,
                    )),
                    vpos,
                );
            }
            out.push(&g.labels, true, t, r.value)?;
        }
        Ok(())
    })?;
    let _ = any;
    Ok(Val::Vector(series))
}

fn histogram_quantiles(ev: &Ev, c: &Call) -> Result<Val> {
    let v = ev.eval(arg(c, 0)?)?.into_vector()?;
    let label = string_arg(arg(c, 1)?)?.to_string();
    let mut qs = Vec::new();
    for a in c.args.get(2..).unwrap_or(&[]) {
        qs.push((scalar_arg(ev, a)?, expr_pos(a).or(Some(c.position))));
    }
    let vpos = expr_pos(arg(c, 0)?);
    let series = per_step_buckets(ev, &v, vpos, |step, t, groups, out| {
        for (q, qpos) in &qs {
            if let Some(a) = fa::check_quantile(q[step]) {
                annotate(ev, a, *qpos);
            }
        }
        for (q, _) in &qs {
            let q = q[step];
            for g in &groups {
                if g.buckets.is_empty() {
                    continue;
                }
                let mut b = g.buckets.clone();
                let r = bucket_quantile(q, &mut b);
                if let Some(fix) = r.forced_monotonicity {
                    annotate(
                        ev,
                        Annotation::ForcedMonotonicity(fa::MonotonicityFix::new(
                            annotated_name(ev, &g.labels),
                            t,
                            fix,
                        )),
                        vpos,
                    );
                }
                let l = set_label(&g.labels, &label, &openmetrics_float(q));
                out.push(&l, true, t, r.value)?;
            }
        }
        Ok(())
    })?;
    Ok(Val::Vector(series))
}

/// `labels.FormatOpenMetricsFloat`.
fn openmetrics_float(v: f64) -> String {
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
    let s = super::aggregate::go_g(v);
    if s.contains(['.', 'e']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn histogram_fraction(ev: &Ev, c: &Call) -> Result<Val> {
    let lo = scalar_arg(ev, arg(c, 0)?)?;
    let hi = scalar_arg(ev, arg(c, 1)?)?;
    let v = ev.eval(arg(c, 2)?)?.into_vector()?;
    let vpos = expr_pos(arg(c, 2)?);
    let series = per_step_buckets(ev, &v, vpos, |step, t, groups, out| {
        for mut g in groups {
            if g.buckets.is_empty() {
                continue;
            }
            let f = bucket_fraction(lo[step], hi[step], &mut g.buckets);
            out.push(&g.labels, true, t, f)?;
        }
        Ok(())
    })?;
    Ok(Val::Vector(series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_floats() {
        assert_eq!(openmetrics_float(0.5), "0.5");
        assert_eq!(openmetrics_float(1.0), "1.0");
    }
}
