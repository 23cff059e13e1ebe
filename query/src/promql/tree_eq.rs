//! Structural equality of PromQL trees for round-trip checks: positions
//! are ignored, numbers compare bit for bit (any NaN equals any NaN, as
//! printing cannot keep NaN payloads), and a selector's matchers compare
//! as a set, since the printer sorts them as Prometheus does.

use engine::Matcher;

use super::ast::{Duration, DurationExpr, Expr, VectorMatching, VectorSelector};

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_opt_f64(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_f64(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn sorted_matchers(ms: &[Matcher]) -> Vec<(&str, &str, &str)> {
    let mut v: Vec<_> = ms
        .iter()
        .map(|m| (m.name.as_str(), m.op.as_str(), m.value.as_str()))
        .collect();
    v.sort_unstable();
    v
}

fn same_selector(a: &VectorSelector, b: &VectorSelector) -> bool {
    a.name == b.name
        && sorted_matchers(&a.matchers) == sorted_matchers(&b.matchers)
        && same_opt_duration(&a.offset, &b.offset)
        && a.at == b.at
        && a.range_mode == b.range_mode
}

fn same_opt_duration(a: &Option<Duration>, b: &Option<Duration>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_duration(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn same_duration(a: &Duration, b: &Duration) -> bool {
    match (a, b) {
        (Duration::Literal(a), Duration::Literal(b)) => a == b,
        (Duration::Expr(a), Duration::Expr(b)) => same_duration_expr(a, b),
        _ => false,
    }
}

fn same_duration_expr(a: &DurationExpr, b: &DurationExpr) -> bool {
    use DurationExpr as D;
    match (a, b) {
        (D::Number(a), D::Number(b)) => same_f64(*a, *b),
        (D::Step, D::Step) | (D::Range, D::Range) => true,
        (D::Neg(a), D::Neg(b)) | (D::Paren(a), D::Paren(b)) => same_duration_expr(a, b),
        (D::Binary(o1, a1, b1), D::Binary(o2, a2, b2)) => {
            o1 == o2 && same_duration_expr(a1, a2) && same_duration_expr(b1, b2)
        }
        (D::MinOf(a1, b1), D::MinOf(a2, b2)) | (D::MaxOf(a1, b1), D::MaxOf(a2, b2)) => {
            same_duration_expr(a1, a2) && same_duration_expr(b1, b2)
        }
        _ => false,
    }
}

fn same_matching(a: &Option<VectorMatching>, b: &Option<VectorMatching>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.card == b.card
                && a.labels == b.labels
                && a.on == b.on
                && a.include == b.include
                && same_opt_f64(a.fill_left, b.fill_left)
                && same_opt_f64(a.fill_right, b.fill_right)
        }
        (None, None) => true,
        _ => false,
    }
}

/// Are `a` and `b` the same query, up to positions and matcher order?
pub fn same_tree(a: &Expr, b: &Expr) -> bool {
    match (a, b) {
        (Expr::Number(a), Expr::Number(b)) => same_f64(*a, *b),
        (Expr::String(a), Expr::String(b)) => a == b,
        (Expr::Vector(a), Expr::Vector(b)) => same_selector(a, b),
        (Expr::Matrix(a), Expr::Matrix(b)) => {
            same_selector(&a.vector, &b.vector) && same_duration(&a.range, &b.range)
        }
        (Expr::Subquery(a), Expr::Subquery(b)) => {
            same_tree(&a.expr, &b.expr)
                && same_duration(&a.range, &b.range)
                && same_opt_duration(&a.step, &b.step)
                && same_opt_duration(&a.offset, &b.offset)
                && a.at == b.at
        }
        (Expr::Paren(a), Expr::Paren(b)) => same_tree(a, b),
        (Expr::Unary(o1, a), Expr::Unary(o2, b)) => o1 == o2 && same_tree(a, b),
        (Expr::Binary(a), Expr::Binary(b)) => {
            a.op == b.op
                && a.return_bool == b.return_bool
                && same_matching(&a.matching, &b.matching)
                && same_tree(&a.lhs, &b.lhs)
                && same_tree(&a.rhs, &b.rhs)
        }
        (Expr::Aggregate(a), Expr::Aggregate(b)) => {
            a.op == b.op
                && a.grouping == b.grouping
                && a.without == b.without
                && match (&a.param, &b.param) {
                    (Some(x), Some(y)) => same_tree(x, y),
                    (None, None) => true,
                    _ => false,
                }
                && same_tree(&a.expr, &b.expr)
        }
        (Expr::Call(a), Expr::Call(b)) => {
            a.func.name == b.func.name
                && a.args.len() == b.args.len()
                && a.args.iter().zip(&b.args).all(|(x, y)| same_tree(x, y))
        }
        _ => false,
    }
}
