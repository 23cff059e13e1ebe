//! Prints PromQL trees back as canonical PromQL: `Display` is Prometheus's
//! `String()` (one line), [`pretty`] its `Pretty(0)` (what
//! `/api/v1/format_query` returns: split over lines and indented once a
//! node is longer than 100 characters). Parsing the output gives the same
//! tree back (see [`super::same_tree`]).
//!
//! Known difference: Prometheus remembers that a number was written as a
//! duration (`5m`) and prints it so; Silt's tree does not, so a number in
//! an expression or a duration expression prints in seconds (`300`).
//! Literal ranges, steps and offsets print as durations, as in Prometheus.

use std::fmt::{self, Write as _};

use super::ast::{
    AggregateExpr, AtModifier, BinaryExpr, BinaryOp, Cardinality, Duration, DurationExpr, Expr,
    RangeMode, UnaryOp, VectorMatching, VectorSelector,
};
use super::lex;
use super::selector::DisplayMatcher;
use crate::gofmt;
use engine::{METRIC_NAME, MatchOp};

/// Prometheus's `model.Duration.String()` for milliseconds: `1h30m`,
/// `90d` (years and weeks only when exact), `0s` for zero.
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    const UNITS: [(&str, u64, bool); 7] = [
        ("y", 365 * 24 * 3_600_000, true),
        ("w", 7 * 24 * 3_600_000, true),
        ("d", 24 * 3_600_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in UNITS {
        if exact && !rest.is_multiple_of(mult) {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            rest -= v * mult;
        }
    }
    out
}

fn write_labels(f: &mut impl fmt::Write, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if lex::is_legacy_label_name(l) {
            f.write_str(l)?;
        } else {
            f.write_str(&gofmt::quote_promql(l))?;
        }
    }
    Ok(())
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Duration::Literal(ms) => f.write_str(&format_duration_ms(*ms)),
            Duration::Expr(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for DurationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationExpr::Number(v) => f.write_str(&gofmt::format_float_f(*v)),
            DurationExpr::Step => f.write_str("step()"),
            DurationExpr::Range => f.write_str("range()"),
            DurationExpr::Neg(e) => write!(f, "-{e}"),
            DurationExpr::Paren(e) => write!(f, "({e})"),
            DurationExpr::Binary(op, a, b) => write!(f, "{a} {} {b}", op.as_str()),
            DurationExpr::MinOf(a, b) => write!(f, "min_of({a}, {b})"),
            DurationExpr::MaxOf(a, b) => write!(f, "max_of({a}, {b})"),
        }
    }
}

/// ` @ 10.000`, ` @ start()`, ` @ end()`.
fn write_at(f: &mut impl fmt::Write, at: Option<AtModifier>) -> fmt::Result {
    match at {
        None => Ok(()),
        Some(AtModifier::Time(ms)) => write!(f, " @ {:.3}", ms as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
    }
}

/// The offset that ends `e`'s printed form, when it is a duration
/// expression in parentheses: the parser would read a duration operator
/// printed after it (`foo offset (1h) + bar`) as part of the offset.
fn trailing_paren_offset(e: &Expr) -> Option<&Duration> {
    let offset = match e {
        Expr::Vector(vs) => &vs.offset,
        Expr::Matrix(m) => &m.vector.offset,
        Expr::Subquery(s) => &s.offset,
        Expr::Unary(_, e) => return trailing_paren_offset(e),
        Expr::Binary(b) => return trailing_paren_offset(&b.rhs),
        _ => return None,
    };
    match offset {
        Some(d @ Duration::Expr(e)) if matches!(**e, DurationExpr::Paren(_)) => Some(d),
        _ => None,
    }
}

/// The offset to print as `+(…)` at the end of a binary expression's left
/// operand: one in parentheses before an operator that also joins
/// durations, where the grammar ends an offset only after a sign (as
/// `foo offset +(1h) + bar` was written; the sign drops out of the tree).
fn signed_lhs_offset(b: &BinaryExpr) -> Option<&Duration> {
    let duration_op = matches!(
        b.op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Mod
            | BinaryOp::Pow
    );
    trailing_paren_offset(&b.lhs).filter(|_| duration_op)
}

/// `lhs`, printed, with its trailing `offset` signed.
fn write_signed_offset(f: &mut impl fmt::Write, lhs: &str, offset: &Duration) -> fmt::Result {
    let offset = offset.to_string();
    debug_assert!(
        lhs.ends_with(&offset),
        "{lhs:?} does not end with {offset:?}"
    );
    let (head, tail) = lhs.split_at(lhs.len() - offset.len());
    write!(f, "{head}+{tail}")
}

/// ` offset 5m`, ` offset -5m`, ` offset (1h * 2)`. An operator joins an
/// offset that does not start with `(` only behind two signs (the
/// grammar ends `offset -2` and `offset step()` at the literal or call):
/// such an offset prints as ` offset +-2 % 3` or ` offset + +step() * 2`,
/// which read back as the same tree. Found by fuzzing.
fn write_offset(f: &mut impl fmt::Write, offset: &Option<Duration>) -> fmt::Result {
    match offset {
        None | Some(Duration::Literal(0)) => Ok(()),
        Some(d @ Duration::Expr(e)) if matches!(**e, DurationExpr::Binary(..)) => {
            let s = d.to_string();
            match s.as_bytes().first() {
                Some(b'(') => write!(f, " offset {s}"),
                Some(b'-') => write!(f, " offset +{s}"),
                _ => write!(f, " offset + +{s}"),
            }
        }
        Some(d) => write!(f, " offset {d}"),
    }
}

fn write_range_mode(f: &mut impl fmt::Write, mode: RangeMode) -> fmt::Result {
    match mode {
        RangeMode::Normal => Ok(()),
        RangeMode::Anchored => f.write_str(" anchored"),
        RangeMode::Smoothed => f.write_str(" smoothed"),
    }
}

/// `name{a="b",c=~"d"}`: matchers sorted, the one the name stands for left out.
fn write_selector_base(f: &mut impl fmt::Write, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut parts: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == METRIC_NAME
                && m.op == MatchOp::Equal
                && m.value == name
                && !name.is_empty())
        })
        .map(|m| DisplayMatcher(m).to_string())
        .collect();
    f.write_str(name)?;
    // `{}` has no name and no matchers, yet must print as something: it is
    // valid where a selector may be empty (`info`'s label filter).
    if !parts.is_empty() || name.is_empty() {
        parts.sort();
        write!(f, "{{{}}}", parts.join(","))?;
    }
    Ok(())
}

/// ` on (a) group_left (b) fill (0)`.
fn write_matching(f: &mut impl fmt::Write, m: &Option<VectorMatching>) -> fmt::Result {
    let Some(m) = m else { return Ok(()) };
    let grouped = matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany);
    if !m.labels.is_empty() || m.on || grouped {
        f.write_str(if m.on { " on (" } else { " ignoring (" })?;
        write_labels(f, &m.labels)?;
        f.write_char(')')?;
    }
    if grouped {
        f.write_str(if m.card == Cardinality::ManyToOne {
            " group_left ("
        } else {
            " group_right ("
        })?;
        write_labels(f, &m.include)?;
        f.write_char(')')?;
    }
    let num = go_format_v;
    match (m.fill_left, m.fill_right) {
        // NaN != NaN: Prometheus then prints both sides. Also both when
        // only the sign of zero differs, so that the tree survives.
        (Some(l), Some(r)) if l.to_bits() == r.to_bits() && !l.is_nan() => {
            write!(f, " fill ({})", num(l))?
        }
        (l, r) => {
            if let Some(l) = l {
                write!(f, " fill_left ({})", num(l))?;
            }
            if let Some(r) = r {
                write!(f, " fill_right ({})", num(r))?;
            }
        }
    }
    Ok(())
}

/// Go's `%v` for a float64: shortest digits, exponent form (`1e+06`)
/// when the decimal exponent is below -4 or at least 6.
fn go_format_v(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return gofmt::format_float_f(v);
    }
    let e = gofmt::format_float_e(v);
    let exp: i32 = e
        .rsplit_once('e')
        .and_then(|(_, x)| x.parse().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exp) {
        e
    } else {
        gofmt::format_float_f(v)
    }
}

/// `sum by (a) `: the operator and grouping of an aggregation.
fn write_aggregate_op(f: &mut impl fmt::Write, a: &AggregateExpr) -> fmt::Result {
    f.write_str(a.op.as_str())?;
    if a.without || !a.grouping.is_empty() {
        f.write_str(if a.without { " without (" } else { " by (" })?;
        write_labels(f, &a.grouping)?;
        f.write_str(") ")?;
    }
    Ok(())
}

/// `op[ bool][ matching]` of a binary expression.
fn write_binary_op(f: &mut impl fmt::Write, b: &BinaryExpr) -> fmt::Result {
    f.write_str(b.op.as_str())?;
    if b.return_bool {
        f.write_str(" bool")?;
    }
    write_matching(f, &b.matching)
}

/// `[range:step] @ t offset d` of a subquery.
fn write_subquery_suffix(
    f: &mut impl fmt::Write,
    range: &Duration,
    step: &Option<Duration>,
    at: Option<AtModifier>,
    offset: &Option<Duration>,
) -> fmt::Result {
    write!(f, "[{range}:")?;
    if let Some(step) = step {
        write!(f, "{step}")?;
    }
    f.write_char(']')?;
    write_at(f, at)?;
    write_offset(f, offset)
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(v) => f.write_str(&gofmt::format_float_f(*v)),
            Expr::String(s) => f.write_str(&gofmt::quote_promql(s)),
            Expr::Vector(vs) => {
                write_selector_base(f, vs)?;
                write_at(f, vs.at)?;
                write_range_mode(f, vs.range_mode)?;
                write_offset(f, &vs.offset)
            }
            Expr::Matrix(m) => {
                write_selector_base(f, &m.vector)?;
                write!(f, "[{}]", m.range)?;
                write_range_mode(f, m.vector.range_mode)?;
                write_at(f, m.vector.at)?;
                write_offset(f, &m.vector.offset)
            }
            Expr::Subquery(s) => {
                s.expr.fmt(f)?;
                write_subquery_suffix(f, &s.range, &s.step, s.at, &s.offset)
            }
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Unary(op, e) => {
                f.write_char(if *op == UnaryOp::Neg { '-' } else { '+' })?;
                e.fmt(f)
            }
            Expr::Binary(b) => {
                match *b.lhs {
                    // `Inf ^ x`: Prometheus prints `+Inf ^ x`, which parses
                    // as `+(Inf ^ x)`; the unsigned form keeps the tree.
                    Expr::Number(v) if v == f64::INFINITY && b.op == BinaryOp::Pow => {
                        f.write_str("Inf ")?
                    }
                    _ => match signed_lhs_offset(b) {
                        Some(d) => {
                            write_signed_offset(f, &b.lhs.to_string(), d)?;
                            f.write_char(' ')?
                        }
                        None => write!(f, "{} ", b.lhs)?,
                    },
                }
                write_binary_op(f, b)?;
                write!(f, " {}", b.rhs)
            }
            Expr::Aggregate(a) => {
                write_aggregate_op(f, a)?;
                f.write_char('(')?;
                if let Some(p) = &a.param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{})", a.expr)
            }
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_char(')')
            }
        }
    }
}

/// Lines longer than this are split by [`pretty`] (Prometheus's
/// `maxCharactersPerLine`).
const MAX_LINE: usize = 100;

/// Prometheus's `Pretty(0)`: the query formatted over several lines with
/// two-space indentation wherever a node's one-line form exceeds 100
/// characters.
pub fn pretty(e: &Expr) -> String {
    let mut out = String::new();
    pretty_into(&mut out, e, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn pretty_into(out: &mut String, e: &Expr, level: usize) {
    let one_line = e.to_string();
    let split = one_line.len() > MAX_LINE;
    match e {
        Expr::Subquery(s) if split => {
            pretty_into(out, &s.expr, level);
            let _ = write_subquery_suffix(out, &s.range, &s.step, s.at, &s.offset);
        }
        // Prometheus prints an unsplit subquery without indentation.
        Expr::Subquery(_) => out.push_str(&one_line),
        Expr::Unary(op, inner) => {
            indent(out, level);
            out.push(if *op == UnaryOp::Neg { '-' } else { '+' });
            let mut child = String::new();
            pretty_into(&mut child, inner, level);
            out.push_str(child.trim());
        }
        _ if !split => {
            indent(out, level);
            out.push_str(&one_line);
        }
        Expr::Aggregate(a) => {
            indent(out, level);
            let _ = write_aggregate_op(out, a);
            out.push_str("(\n");
            if let Some(p) = &a.param {
                pretty_into(out, p, level + 1);
                out.push_str(",\n");
            }
            pretty_into(out, &a.expr, level + 1);
            out.push('\n');
            indent(out, level);
            out.push(')');
        }
        Expr::Binary(b) => {
            match *b.lhs {
                Expr::Number(v) if v == f64::INFINITY && b.op == BinaryOp::Pow => {
                    indent(out, level + 1);
                    out.push_str("Inf");
                }
                _ => match signed_lhs_offset(b) {
                    Some(d) => {
                        let mut lhs = String::new();
                        pretty_into(&mut lhs, &b.lhs, level + 1);
                        let _ = write_signed_offset(out, &lhs, d);
                    }
                    None => pretty_into(out, &b.lhs, level + 1),
                },
            }
            out.push('\n');
            indent(out, level);
            let _ = write_binary_op(out, b);
            out.push('\n');
            pretty_into(out, &b.rhs, level + 1);
        }
        Expr::Call(c) => {
            indent(out, level);
            out.push_str(c.func.name);
            out.push_str("(\n");
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                pretty_into(out, a, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(')');
        }
        Expr::Paren(inner) => {
            indent(out, level);
            out.push_str("(\n");
            pretty_into(out, inner, level + 1);
            out.push('\n');
            indent(out, level);
            out.push(')');
        }
        Expr::Number(_) | Expr::String(_) | Expr::Vector(_) | Expr::Matrix(_) => {
            indent(out, level);
            out.push_str(&one_line);
        }
    }
}
