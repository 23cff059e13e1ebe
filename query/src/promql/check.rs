//! Type checking of a parsed PromQL tree, as Prometheus's `checkAST`: the
//! same rules, in the same order, so the first error reported is the one
//! Prometheus reports. It also settles binary vector matching: dropped
//! when a side is not an instant vector, many-to-many for set operators,
//! and `None` when it says nothing beyond the default.

use super::ast::{
    AggregateOp, BinaryExpr, BinaryOp, Call, Cardinality, Expr, ValueType, VectorMatching,
    VectorSelector,
};
use super::error::ParseError;
use super::parser::Span;
use crate::gofmt;
use engine::METRIC_NAME;

/// Prometheus's `DocumentedType`.
pub fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

pub(crate) struct Checker<'a> {
    pub input: &'a str,
}

/// A child span, or the parent's start when the shapes disagree (they
/// never do for trees from the parser).
fn child(span: &Span, i: usize) -> Span {
    span.children
        .get(i)
        .cloned()
        .unwrap_or_else(|| Span::leaf(span.start))
}

impl Checker<'_> {
    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.input, pos, message)
    }

    /// Checks `e` and its children; returns its type.
    pub fn check(&self, e: &mut Expr, span: &Span) -> Result<ValueType, ParseError> {
        let typ = e.value_type();
        match e {
            Expr::Number(_) | Expr::String(_) => {}
            Expr::Vector(vs) => self.selector(vs, false)?,
            Expr::Matrix(m) => self.selector(&m.vector, false)?,
            Expr::Paren(inner) => {
                self.check(inner, &child(span, 0))?;
            }
            Expr::Unary(_, inner) => {
                let t = self.check(inner, &child(span, 0))?;
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(self.error(
                        span.start,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            gofmt::quote(documented_type(t))
                        ),
                    ));
                }
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr, &child(span, 0))?;
                if t != ValueType::Vector {
                    return Err(self.error(
                        span.start,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.name()
                        ),
                    ));
                }
            }
            Expr::Aggregate(a) => {
                self.expect_type(
                    &mut a.expr,
                    &child(span, 0),
                    ValueType::Vector,
                    "aggregation expression",
                )?;
                let want = match a.op {
                    AggregateOp::Topk
                    | AggregateOp::Bottomk
                    | AggregateOp::Quantile
                    | AggregateOp::Limitk
                    | AggregateOp::LimitRatio => Some(ValueType::Scalar),
                    AggregateOp::CountValues => Some(ValueType::String),
                    _ => None,
                };
                if let (Some(want), Some(param)) = (want, a.param.as_deref_mut()) {
                    self.expect_type(param, &child(span, 1), want, "aggregation parameter")?;
                }
            }
            Expr::Binary(b) => self.binary(b, span)?,
            Expr::Call(c) => self.call(c, span)?,
        }
        Ok(typ)
    }

    fn expect_type(
        &self,
        e: &mut Expr,
        span: &Span,
        want: ValueType,
        context: &str,
    ) -> Result<(), ParseError> {
        let t = self.check(e, span)?;
        if t != want {
            return Err(self.error(
                span.start,
                format!(
                    "expected type {} in {context}, got {}",
                    documented_type(want),
                    documented_type(t)
                ),
            ));
        }
        Ok(())
    }

    fn selector(&self, vs: &VectorSelector, bypass_empty_check: bool) -> Result<(), ParseError> {
        if let Some(name) = &vs.name {
            let inner = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = inner.iter().find(|m| m.name == METRIC_NAME) {
                return Err(self.error(
                    vs.position,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        gofmt::quote(name),
                        gofmt::quote(&m.value)
                    ),
                ));
            }
            return Ok(());
        }
        if !bypass_empty_check && vs.matchers.iter().all(|m| m.matches_empty()) {
            return Err(self.error(
                vs.position,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }

    fn binary(&self, b: &mut BinaryExpr, span: &Span) -> Result<(), ParseError> {
        let lt = self.check(&mut b.lhs, &child(span, 0))?;
        let rt = self.check(&mut b.rhs, &child(span, 1))?;
        let op = b.op;
        if b.return_bool && !op.is_comparison() {
            return Err(self.error(
                span.op,
                "bool modifier can only be used on comparison operators",
            ));
        }
        if op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            return Err(self.error(
                span.op,
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        let mut m = b.matching.take().unwrap_or_default();
        if op.is_set_operator() && m.card == Cardinality::OneToOne {
            m.card = Cardinality::ManyToMany;
        }
        if let Some(l) = m.labels.iter().find(|l| m.on && m.include.contains(l)) {
            return Err(self.error(
                span.op,
                format!(
                    "label {} must not occur in ON and GROUP clause at once",
                    gofmt::quote(l)
                ),
            ));
        }
        let allowed = |t| t == ValueType::Scalar || t == ValueType::Vector;
        if !allowed(lt) {
            return Err(self.error(
                child(span, 0).start,
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        if !allowed(rt) {
            return Err(self.error(
                child(span, 1).start,
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        let fills = m.fill_left.is_some() || m.fill_right.is_some();
        let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
        if !both_vectors {
            if !m.labels.is_empty() {
                return Err(self.error(
                    span.start,
                    "vector matching only allowed between instant vectors",
                ));
            }
            if fills {
                return Err(self.error(
                    span.start,
                    "filling in missing series only allowed between instant vectors",
                ));
            }
        } else if op.is_set_operator() {
            if matches!(m.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                return Err(self.error(
                    span.start,
                    format!(
                        "no grouping allowed for {} operation",
                        gofmt::quote(op.as_str())
                    ),
                ));
            }
            if fills {
                return Err(self.error(
                    span.start,
                    "filling in missing series not allowed for set operators",
                ));
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set_operator() {
            return Err(self.error(
                span.start,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    gofmt::quote(op.as_str())
                ),
            ));
        }
        b.matching = (both_vectors && m != default_matching(op)).then_some(m);
        Ok(())
    }

    fn call(&self, c: &mut Call, span: &Span) -> Result<(), ParseError> {
        let f = c.func;
        let nargs = f.arg_types.len();
        let got = c.args.len();
        let name = gofmt::quote(f.name);
        if f.variadic == 0 {
            if nargs != got {
                return Err(self.error(
                    span.start,
                    format!("expected {nargs} argument(s) in call to {name}, got {got}"),
                ));
            }
        } else {
            let required = nargs.saturating_sub(1);
            if required > got {
                return Err(self.error(
                    span.start,
                    format!(
                        "expected at least {required} argument(s) in call to {name}, got {got}"
                    ),
                ));
            }
            let max = required + usize::try_from(f.variadic).unwrap_or(usize::MAX - required);
            if f.variadic > 0 && max < got {
                return Err(self.error(
                    span.start,
                    format!("expected at most {max} argument(s) in call to {name}, got {got}"),
                ));
            }
        }
        let mut bypass_second = false;
        if f.name == "info" && got > 1 {
            let arg = &c.args[1];
            let t = arg.value_type();
            if t != ValueType::Vector {
                return Err(self.error(
                    span.start,
                    format!(
                        "expected type instant vector in call to function \"info\", got {}",
                        documented_type(t)
                    ),
                ));
            }
            let pos = child(span, 1).start;
            match arg {
                Expr::Vector(vs) if vs.name.is_some() => {
                    return Err(self.error(
                        pos,
                        "expected label selectors only, got vector selector instead",
                    ));
                }
                Expr::Vector(_) => bypass_second = true,
                _ => return Err(self.error(pos, "expected label selectors only")),
            }
        }
        for (i, arg) in c.args.iter_mut().enumerate() {
            let ti = if i >= nargs {
                if f.variadic == 0 || nargs == 0 {
                    break;
                }
                nargs - 1
            } else {
                i
            };
            let aspan = child(span, i);
            let t = match arg {
                Expr::Vector(vs) if i == 1 && bypass_second => {
                    self.selector(vs, true)?;
                    ValueType::Vector
                }
                _ => self.check(arg, &aspan)?,
            };
            let want = f.arg_types[ti];
            if t != want {
                return Err(self.error(
                    aspan.start,
                    format!(
                        "expected type {} in call to function {name}, got {}",
                        documented_type(want),
                        documented_type(t)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Vector matching as if no modifier had been written.
fn default_matching(op: BinaryOp) -> VectorMatching {
    VectorMatching {
        card: if op.is_set_operator() {
            Cardinality::ManyToMany
        } else {
            Cardinality::OneToOne
        },
        ..VectorMatching::default()
    }
}
