//! Binary operators: arithmetic, comparisons (with and without `bool`),
//! set operators, vector matching (`on`, `ignoring`, `group_left`,
//! `group_right`, `fill*`) and its errors, evaluated per step. Match
//! signatures are computed once per operation, and each pairing's result
//! labels and output series once: later steps touch no labels.

use std::collections::{HashMap, HashSet};

use engine::{Labels, METRIC_NAME};

use super::error::{Result, exec};
use super::evaluator::{Ev, OutBuilder, Val};
use super::groups::{Keep, LabelIndex, Signatures, is_among};
use super::value::{Series, drop_metadata, get, labels_string, set_label};
use crate::promql::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};

pub(crate) fn eval(ev: &Ev, b: &BinaryExpr) -> Result<Val> {
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    let op = b.op;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&a, &c)| scalar_op(op, a, c))
                .collect(),
        )),
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(
            ev,
            op,
            v,
            &s,
            false,
            b.return_bool,
        ))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(
            ev,
            op,
            v,
            &s,
            true,
            b.return_bool,
        ))),
        (Val::Vector(l), Val::Vector(r)) => {
            let mut m = b.matching.clone().unwrap_or_default();
            if op.is_set_operator() {
                m.card = Cardinality::ManyToMany;
            }
            if op.is_set_operator() {
                set_op(ev, op, l, r, &m)
            } else {
                vector_vector(ev, op, l, r, &m, b.return_bool)
            }
        }
        _ => Err(exec(format!(
            "binary operator {:?} is not defined on these operand types",
            op.as_str()
        ))),
    }
}

fn btos(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Go's `math.Mod`: the result has the sign of `x` (Rust's `%` agrees).
fn arith(op: BinaryOp, l: f64, r: f64) -> f64 {
    match op {
        BinaryOp::Add => l + r,
        BinaryOp::Sub => l - r,
        BinaryOp::Mul => l * r,
        BinaryOp::Div => l / r,
        BinaryOp::Pow => pow(l, r),
        BinaryOp::Mod => l % r,
        BinaryOp::Atan2 => l.atan2(r),
        _ => f64::NAN,
    }
}

/// Go's `math.Pow` special cases differ from C's `pow` in a few places.
fn pow(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 1.0;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == -1.0 && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

fn compare(op: BinaryOp, l: f64, r: f64) -> bool {
    match op {
        BinaryOp::Eql => l == r,
        BinaryOp::Neq => l != r,
        BinaryOp::Gtr => l > r,
        BinaryOp::Lss => l < r,
        BinaryOp::Gte => l >= r,
        BinaryOp::Lte => l <= r,
        _ => false,
    }
}

pub(crate) fn scalar_op(op: BinaryOp, l: f64, r: f64) -> f64 {
    if op.is_comparison() {
        btos(compare(op, l, r))
    } else {
        arith(op, l, r)
    }
}

/// `(value, keep)` of one element operation between floats.
fn elem_op(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    if op.is_comparison() {
        (l, compare(op, l, r))
    } else {
        (arith(op, l, r), true)
    }
}

fn changes_schema(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Atan2
    )
}

fn vector_scalar(
    ev: &Ev,
    op: BinaryOp,
    mut v: Vec<Series>,
    s: &[f64],
    swap: bool,
    return_bool: bool,
) -> Vec<Series> {
    for series in &mut v {
        series.points.retain_mut(|p| {
            let sv = s[ev.index(p.t)];
            let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
            let (mut val, mut keep) = elem_op(op, l, r);
            if op.is_comparison() && swap {
                val = r;
            }
            if return_bool {
                val = btos(keep);
                keep = true;
            }
            p.v = val;
            keep
        });
        if changes_schema(op) || return_bool {
            series.drop_name = true;
        }
    }
    v.retain(|s| !s.points.is_empty());
    v
}

/// Join signatures: an ordinal per distinct set of [`matching`] pairs,
/// for the series of both sides.
fn signatures(m: &VectorMatching, l: &[Series], r: &[Series]) -> (Vec<usize>, Vec<usize>, usize) {
    let mut sigs = Signatures::new(matching(m));
    let ls = l.iter().map(|s| sigs.of(&s.labels)).collect();
    let rs = r.iter().map(|s| sigs.of(&s.labels)).collect();
    (ls, rs, sigs.len())
}

/// Per-step cursors over a vector's series.
struct Cursor {
    pos: Vec<usize>,
}

impl Cursor {
    fn new(n: usize) -> Cursor {
        Cursor { pos: vec![0; n] }
    }

    /// Indices and values of the series with a point at `t`.
    fn gather(&mut self, series: &[Series], t: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in series.iter().enumerate() {
            let p = self.pos[i];
            if let Some(pt) = s.points.get(p)
                && pt.t == t
            {
                out.push((i, pt.v));
                self.pos[i] = p + 1;
            }
        }
    }
}

fn set_op(
    ev: &Ev,
    op: BinaryOp,
    l: Vec<Series>,
    r: Vec<Series>,
    m: &VectorMatching,
) -> Result<Val> {
    let (lsig, rsig, nsig) = signatures(m, &l, &r);
    let mut out = SlotOut {
        out: OutBuilder::new(),
        slots: [vec![NONE; l.len()], vec![NONE; r.len()]],
    };
    let (mut lc, mut rc) = (Cursor::new(l.len()), Cursor::new(r.len()));
    let (mut lv, mut rv) = (Vec::new(), Vec::new());
    let mut present = vec![false; nsig];
    for step in 0..ev.n() {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        lc.gather(&l, t, &mut lv);
        rc.gather(&r, t, &mut rv);
        present.iter_mut().for_each(|x| *x = false);
        match op {
            BinaryOp::And => {
                if lv.is_empty() || rv.is_empty() {
                    continue;
                }
                rv.iter().for_each(|&(i, _)| present[rsig[i]] = true);
                for &(i, v) in &lv {
                    if present[lsig[i]] {
                        out.push_series(&l, 0, i, t, v)?;
                    }
                }
            }
            BinaryOp::Or => {
                for &(i, v) in &lv {
                    present[lsig[i]] = true;
                    out.push_series(&l, 0, i, t, v)?;
                }
                for &(i, v) in &rv {
                    if !present[rsig[i]] {
                        out.push_series(&r, 1, i, t, v)?;
                    }
                }
            }
            _ => {
                rv.iter().for_each(|&(i, _)| present[rsig[i]] = true);
                for &(i, v) in &lv {
                    if !present[lsig[i]] {
                        out.push_series(&l, 0, i, t, v)?;
                    }
                }
            }
        }
    }
    Ok(Val::Vector(out.out.series))
}

/// No output series yet.
const NONE: usize = usize::MAX;

/// Output series of a set operator: each input series' points go to the
/// series with its labels, found once per input series.
struct SlotOut {
    out: OutBuilder,
    /// Output index per series of the left (0) and right (1) operand.
    slots: [Vec<usize>; 2],
}

impl SlotOut {
    #[inline]
    fn push_series(&mut self, v: &[Series], side: usize, i: usize, t: i64, x: f64) -> Result<()> {
        let mut k = self.slots[side][i];
        if k == NONE {
            k = self.out.slot(&v[i].labels, v[i].drop_name);
            self.slots[side][i] = k;
        }
        self.out.push_at(k, t, x)
    }
}

/// The labels that matched (`MatchLabels`): the `on` labels, or all but
/// the ignored ones and the name.
fn match_labels(labels: &Labels, m: &VectorMatching) -> Labels {
    Labels::from_sorted(matching(m).kept(labels).cloned().collect())
}

/// The pairs a vector matching joins on: `on (...)` the pairs it names,
/// as an aggregation's `by`; `ignoring (...)` (or neither) all but those
/// and the metric name, as `without`.
fn matching(m: &VectorMatching) -> Keep<'_> {
    Keep::grouping(&m.labels, !m.on)
}

/// The labels of an output element: the left (many) side's, less the
/// metric name for arithmetic or when `drop_name` (a `bool` comparison
/// without delayed name removal), kept to the matching labels one to one,
/// with the `group_x` labels of the right side.
fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: BinaryOp,
    m: &VectorMatching,
    drop_name: bool,
) -> Labels {
    let mut l = if changes_schema(op) || drop_name {
        drop_metadata(lhs)
    } else {
        lhs.clone()
    };
    if m.card == Cardinality::OneToOne {
        l = Labels::from_sorted(
            l.iter()
                .filter(|lb| is_among(&lb.name, &m.labels) == m.on)
                .cloned()
                .collect(),
        );
    }
    for name in &m.include {
        l = set_label(&l, name, get(rhs, name));
    }
    l
}

/// Which side an element of one step came from, for the label cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Series(usize),
    /// A fill value standing in for a missing element (labels: the
    /// matched labels of the other side's series).
    Fill(usize),
}

/// The result metrics of a vector-vector operation: each pairing of
/// elements gets its metric once (interned to an id), and each metric its
/// output series once; steps after the first touch no labels.
struct Metrics {
    /// Interned result labels, found by identity hash: metric `k` has
    /// labels `labels[k]`.
    ids: LabelIndex,
    labels: Vec<Labels>,
    /// Output series per metric (`NONE` until its first point).
    slot: Vec<usize>,
    /// Metric of (a series `i`, b series `j`) for the last `j` seen with
    /// `i`: `(j, id)`; other pairings in `pairs`.
    last_pair: Vec<(usize, u32)>,
    pairs: HashMap<(Side, Side), u32>,
    /// Metric of (a series `i`, fill) and of (fill, b series `j`).
    fill_b: Vec<u32>,
    fill_a: Vec<u32>,
}

const NO_ID: u32 = u32::MAX;

impl Metrics {
    fn new(na: usize, nb: usize) -> Metrics {
        Metrics {
            ids: LabelIndex::default(),
            labels: Vec::new(),
            slot: Vec::new(),
            last_pair: vec![(NONE, NO_ID); na],
            pairs: HashMap::new(),
            fill_b: vec![NO_ID; na],
            fill_a: vec![NO_ID; nb],
        }
    }

    /// The metric id of a pairing, computing its labels with `make` the
    /// first time.
    #[inline]
    fn id(&mut self, aside: Side, bside: Side, make: impl FnOnce() -> Labels) -> Result<u32> {
        let cached = match (aside, bside) {
            (Side::Series(i), Side::Series(j)) if self.last_pair[i].0 == j => self.last_pair[i].1,
            (Side::Series(i), Side::Fill(_)) => self.fill_b[i],
            (Side::Fill(_), Side::Series(j)) => self.fill_a[j],
            _ => self.pairs.get(&(aside, bside)).copied().unwrap_or(NO_ID),
        };
        if cached != NO_ID {
            return Ok(cached);
        }
        let lb = make();
        let h = lb.identity_hash();
        let labels = &self.labels;
        let id = match self.ids.find(h, |k| labels[k] == lb) {
            Some(k) => k as u32,
            None => {
                if self.labels.len() >= NO_ID as usize {
                    return Err(exec("too many result series"));
                }
                self.labels.push(lb);
                self.slot.push(NONE);
                self.ids.add(h) as u32
            }
        };
        match (aside, bside) {
            (Side::Series(i), Side::Series(j)) => {
                if self.last_pair[i].0 != NONE {
                    self.pairs.insert((aside, bside), id);
                }
                self.last_pair[i] = (j, id);
            }
            (Side::Series(i), Side::Fill(_)) => self.fill_b[i] = id,
            (Side::Fill(_), Side::Series(j)) => self.fill_a[j] = id,
            _ => {
                self.pairs.insert((aside, bside), id);
            }
        }
        Ok(id)
    }
}

/// A hasher for `u64` keys (a multiply and a rotate): the per-step set of
/// (signature, metric) pairs of a grouped match.
#[derive(Default)]
struct U64Hasher(u64);

impl std::hash::Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

type U64Set = HashSet<u64, std::hash::BuildHasherDefault<U64Hasher>>;

fn vector_vector(
    ev: &Ev,
    op: BinaryOp,
    l: Vec<Series>,
    r: Vec<Series>,
    m: &VectorMatching,
    return_bool: bool,
) -> Result<Val> {
    let (lsig, rsig, nsig) = signatures(m, &l, &r);
    let swap = m.card == Cardinality::OneToMany;
    // After an optional swap, "a" is the many side (or either side for
    // one-to-one) and "b" the one side.
    let (a, b, asig, bsig) = if swap {
        (&r, &l, &rsig, &lsig)
    } else {
        (&l, &r, &lsig, &rsig)
    };
    // As in Prometheus, the fills apply to the sides after the swap.
    let (fill_a, fill_b) = (m.fill_left, m.fill_right);
    let mut out = OutBuilder::new();
    let (mut ac, mut bc) = (Cursor::new(a.len()), Cursor::new(b.len()));
    let (mut av, mut bv) = (Vec::new(), Vec::new());
    let mut right: Vec<Option<(usize, f64)>> = vec![None; nsig];
    let mut matched_one: Vec<bool> = vec![false; nsig];
    // (signature, metric) pairs matched at this step (grouped matching:
    // the same metric twice in one group is an error).
    let mut matched_many = U64Set::default();
    let mut metrics = Metrics::new(a.len(), b.len());
    let own_name_replaced = m.include.iter().any(|l| l == METRIC_NAME);
    // Without delayed name removal, `bool` drops the name before the
    // `group_x` labels come in (and a name they bring stays).
    let delayed = ev.ctx.delayed_name_removal;
    for step in 0..ev.n() {
        let t = ev.ts(step);
        if step % 256 == 255 {
            ev.ctx.check()?;
        }
        ac.gather(a, t, &mut av);
        bc.gather(b, t, &mut bv);
        if (av.is_empty() && bv.is_empty())
            || ((av.is_empty() || bv.is_empty()) && m.fill_left.is_none() && m.fill_right.is_none())
        {
            continue;
        }
        right.iter_mut().for_each(|x| *x = None);
        for &(j, v) in &bv {
            let s = bsig[j];
            if let Some((k, _)) = right[s] {
                let one_side = if swap { "left" } else { "right" };
                let matched = labels_string(&match_labels(&b[j].labels, m));
                let (mut d1, mut d2) = (labels_string(&b[j].labels), labels_string(&b[k].labels));
                if d1 > d2 {
                    std::mem::swap(&mut d1, &mut d2);
                }
                return Err(exec(format!(
                    "found duplicate series for the match group {matched} on the {one_side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
            right[s] = Some((j, v));
        }
        // Signatures matched at this step (for one-to-one, a second match
        // is an error).
        matched_one.iter_mut().for_each(|x| *x = false);
        if m.card != Cardinality::OneToOne {
            matched_many.clear();
        }
        macro_rules! emit {
            ($aside:expr, $bside:expr, $va:expr, $vb:expr, $s:expr) => {{
                let (aside, bside, va, vb, s): (Side, Side, f64, f64, usize) =
                    ($aside, $bside, $va, $vb, $s);
                let (fl, fr) = if swap { (vb, va) } else { (va, vb) };
                let (mut val, keep) = elem_op(op, fl, fr);
                if return_bool {
                    val = btos(keep);
                }
                let id = metrics.id(aside, bside, || {
                    let al = match aside {
                        Side::Series(i) => a[i].labels.clone(),
                        Side::Fill(j) => match_labels(&b[j].labels, m),
                    };
                    let bl = match bside {
                        Side::Series(j) => b[j].labels.clone(),
                        Side::Fill(i) => match_labels(&a[i].labels, m),
                    };
                    result_metric(&al, &bl, op, m, return_bool && !delayed)
                })?;
                if m.card == Cardinality::OneToOne {
                    if matched_one[s] {
                        return Err(exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                } else if !matched_many.insert(((s as u64) << 32) | id as u64) {
                    return Err(exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                matched_one[s] = true;
                if keep || return_bool {
                    let mut k = metrics.slot[id as usize];
                    if k == NONE {
                        // A filter keeps the many side's labels, and with
                        // them a name whose removal is pending (unless the
                        // name is the one side's, copied in by
                        // `group_left(__name__)`). Prometheus 3 with delayed
                        // name removal keeps such a name; without it, and
                        // 2.42, drop it, as here.
                        let drop = delayed
                            && (return_bool
                                || (!own_name_replaced
                                    && matches!(aside, Side::Series(i) if a[i].drop_name)));
                        k = out.slot(&metrics.labels[id as usize], drop);
                        metrics.slot[id as usize] = k;
                    }
                    out.push_at(k, t, val)?;
                }
            }};
        }
        for &(i, va) in &av {
            let s = asig[i];
            match right[s] {
                Some((j, vb)) => emit!(Side::Series(i), Side::Series(j), va, vb, s),
                None => {
                    if let Some(fv) = fill_b {
                        emit!(Side::Series(i), Side::Fill(i), va, fv, s);
                    }
                }
            }
        }
        if let Some(fv) = fill_a {
            for &(j, vb) in &bv {
                let s = bsig[j];
                if !matched_one[s] {
                    emit!(Side::Fill(j), Side::Series(j), fv, vb, s);
                }
            }
        }
    }
    Ok(Val::Vector(out.series))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_pow_and_mod() {
        assert_eq!(pow(f64::NAN, 0.0), 1.0);
        assert_eq!(pow(1.0, f64::NAN), 1.0);
        assert_eq!(pow(-1.0, f64::INFINITY), 1.0);
        assert_eq!(arith(BinaryOp::Mod, -5.0, 3.0), -2.0);
        assert!(arith(BinaryOp::Mod, 1.0, 0.0).is_nan());
    }

    #[test]
    fn result_metric_one_to_one_on() {
        let m = VectorMatching {
            card: Cardinality::OneToOne,
            labels: vec!["job".into()],
            on: true,
            ..Default::default()
        };
        let l = Labels::new(&[("__name__", "a"), ("job", "x"), ("i", "1")]);
        assert_eq!(
            result_metric(&l, &l, BinaryOp::Add, &m, false),
            Labels::new(&[("job", "x")])
        );
        let m = VectorMatching::default();
        assert_eq!(
            result_metric(&l, &l, BinaryOp::Gtr, &m, false),
            l,
            "comparisons keep the name"
        );
    }
}
