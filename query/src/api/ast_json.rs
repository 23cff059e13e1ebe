//! The PromQL syntax tree as JSON, the shape `/api/v1/parse_query` returns
//! in Prometheus 3 (`translateAST` in `web/api/v1/translate_ast.go`): one
//! object per node with a `type` (`vectorSelector`, `matrixSelector`,
//! `subquery`, `binaryExpr`, `aggregation`, `call`, `numberLiteral`,
//! `stringLiteral`, `parenExpr`, `unaryExpr`, `durationExpr`). Keys come out
//! sorted, as Go's `encoding/json` writes maps.
//!
//! Known difference: Silt's tree does not remember whether a number inside a
//! duration expression was written as a duration (`5m`) or as seconds
//! (`300`), so `duration` is always `false` there.

use serde_json::{Value, json};

use crate::gofmt;
use crate::promql::ast::{
    AtModifier, BinaryExpr, Cardinality, Duration, DurationExpr, Expr, UnaryOp, ValueType,
    VectorMatching, VectorSelector,
};

/// Translates a parsed expression.
pub fn translate(expr: &Expr) -> Value {
    match expr {
        Expr::Number(v) => json!({"type": "numberLiteral", "val": gofmt::format_float_f(*v)}),
        Expr::String(s) => json!({"type": "stringLiteral", "val": s}),
        Expr::Vector(vs) => {
            let mut obj = selector_fields(vs);
            obj["type"] = json!("vectorSelector");
            obj
        }
        Expr::Matrix(m) => {
            let mut obj = selector_fields(&m.vector);
            let (range, range_expr) = duration(&m.range);
            obj["type"] = json!("matrixSelector");
            obj["range"] = json!(range);
            obj["rangeExpr"] = range_expr;
            obj
        }
        Expr::Subquery(sq) => {
            let (range, range_expr) = duration(&sq.range);
            let (step, step_expr) = sq.step.as_ref().map_or((0, Value::Null), duration);
            let (offset, offset_expr) = sq.offset.as_ref().map_or((0, Value::Null), duration);
            json!({
                "type": "subquery",
                "expr": translate(&sq.expr),
                "range": range,
                "rangeExpr": range_expr,
                "offset": offset,
                "offsetExpr": offset_expr,
                "step": step,
                "stepExpr": step_expr,
                "timestamp": timestamp(sq.at),
                "startOrEnd": start_or_end(sq.at),
            })
        }
        Expr::Paren(e) => json!({"type": "parenExpr", "expr": translate(e)}),
        Expr::Unary(op, e) => json!({
            "type": "unaryExpr",
            "op": match op { UnaryOp::Neg => "-", UnaryOp::Pos => "+" },
            "expr": translate(e),
        }),
        Expr::Binary(b) => binary(b),
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": translate(&a.expr),
            "param": a.param.as_deref().map_or(Value::Null, translate),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name,
                "argTypes": c.func.arg_types.iter().map(|t| t.name()).collect::<Vec<_>>(),
                "variadic": c.func.variadic,
                "returnType": c.func.return_type.name(),
            },
            "args": c.args.iter().map(translate).collect::<Vec<_>>(),
        }),
    }
}

/// The fields vector and matrix selectors share.
fn selector_fields(vs: &VectorSelector) -> Value {
    let (offset, offset_expr) = vs.offset.as_ref().map_or((0, Value::Null), duration);
    let matchers: Vec<Value> = vs
        .matchers
        .iter()
        .map(|m| json!({"name": m.name, "value": m.value, "type": m.op.as_str()}))
        .collect();
    json!({
        "name": vs.name.as_deref().unwrap_or(""),
        "offset": offset,
        "offsetExpr": offset_expr,
        "matchers": matchers,
        "timestamp": timestamp(vs.at),
        "startOrEnd": start_or_end(vs.at),
        "anchored": vs.range_mode == crate::promql::ast::RangeMode::Anchored,
        "smoothed": vs.range_mode == crate::promql::ast::RangeMode::Smoothed,
    })
}

fn binary(b: &BinaryExpr) -> Value {
    let vectors =
        b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
    // Prometheus keeps matching only between two vectors, where it is
    // always set (one-to-one, or many-to-many for set operators).
    let matching = match (&b.matching, vectors) {
        (_, false) => Value::Null,
        (Some(m), true) => matching_json(m),
        (None, true) => matching_json(&VectorMatching {
            card: if b.op.is_set_operator() {
                Cardinality::ManyToMany
            } else {
                Cardinality::OneToOne
            },
            ..VectorMatching::default()
        }),
    };
    json!({
        "type": "binaryExpr",
        "op": b.op.as_str(),
        "lhs": translate(&b.lhs),
        "rhs": translate(&b.rhs),
        "matching": matching,
        "bool": b.return_bool,
    })
}

fn matching_json(m: &VectorMatching) -> Value {
    let card = match m.card {
        Cardinality::OneToOne => "one-to-one",
        Cardinality::ManyToOne => "many-to-one",
        Cardinality::OneToMany => "one-to-many",
        Cardinality::ManyToMany => "many-to-many",
    };
    json!({
        "card": card,
        "labels": m.labels,
        "on": m.on,
        "include": m.include,
        "fillValues": {"lhs": m.fill_left, "rhs": m.fill_right},
    })
}

/// A duration as Prometheus's pair of fields: milliseconds for a literal
/// (expression `null`), or 0 and the translated duration expression.
fn duration(d: &Duration) -> (i64, Value) {
    match d {
        Duration::Literal(ms) => (*ms, Value::Null),
        Duration::Expr(e) => (0, duration_expr(e)),
    }
}

fn duration_node(op: &str, lhs: Value, rhs: Value) -> Value {
    json!({"type": "durationExpr", "op": op, "lhs": lhs, "rhs": rhs, "wrapped": false})
}

fn duration_expr(e: &DurationExpr) -> Value {
    match e {
        DurationExpr::Number(v) => json!({
            "type": "numberLiteral",
            "val": gofmt::format_float_f(*v),
            "duration": false,
        }),
        DurationExpr::Step => duration_node("step", Value::Null, Value::Null),
        DurationExpr::Range => duration_node("range", Value::Null, Value::Null),
        // Prometheus folds the sign into a number; otherwise `-` with only
        // a right-hand side.
        DurationExpr::Neg(inner) => match inner.as_ref() {
            DurationExpr::Number(v) => duration_expr(&DurationExpr::Number(-v)),
            other => duration_node("-", Value::Null, duration_expr(other)),
        },
        // Parentheses mark the inner expression as wrapped; a wrapped
        // number becomes `+` with only a right-hand side.
        DurationExpr::Paren(inner) => {
            let mut v = duration_expr(inner);
            if v["type"] == "durationExpr" {
                v["wrapped"] = json!(true);
                v
            } else {
                let mut node = duration_node("+", Value::Null, v);
                node["wrapped"] = json!(true);
                node
            }
        }
        DurationExpr::Binary(op, a, b) => {
            duration_node(op.as_str(), duration_expr(a), duration_expr(b))
        }
        DurationExpr::MinOf(a, b) => duration_node("min_of", duration_expr(a), duration_expr(b)),
        DurationExpr::MaxOf(a, b) => duration_node("max_of", duration_expr(a), duration_expr(b)),
    }
}

fn timestamp(at: Option<AtModifier>) -> Value {
    match at {
        Some(AtModifier::Time(ms)) => json!(ms),
        _ => Value::Null,
    }
}

fn start_or_end(at: Option<AtModifier>) -> Value {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    fn ast(q: &str) -> Value {
        translate(&parse(q).unwrap())
    }

    #[test]
    fn selectors() {
        assert_eq!(
            ast(r#"up{job="a"} offset 5m @ 100"#),
            json!({
                "type": "vectorSelector", "name": "up", "offset": 300000, "offsetExpr": null,
                "matchers": [
                    {"name": "job", "value": "a", "type": "="},
                    {"name": "__name__", "value": "up", "type": "="},
                ],
                "timestamp": 100000, "startOrEnd": null, "anchored": false, "smoothed": false,
            })
        );
        let m = ast(r#"rate({__name__=~"x.+"}[5m] @ end())"#);
        assert_eq!(m["type"], "call");
        assert_eq!(
            m["func"],
            json!({"name": "rate", "argTypes": ["matrix"], "variadic": 0, "returnType": "vector"})
        );
        let sel = &m["args"][0];
        assert_eq!(sel["type"], "matrixSelector");
        assert_eq!(sel["range"], 300000);
        assert_eq!(sel["rangeExpr"], Value::Null);
        assert_eq!(sel["name"], "");
        assert_eq!(sel["startOrEnd"], "end");
        assert_eq!(sel["matchers"][0]["type"], "=~");
    }

    #[test]
    fn operators_and_aggregations() {
        let b = ast("sum by (job) (a) / on (job) group_left b");
        assert_eq!(b["type"], "binaryExpr");
        assert_eq!(b["op"], "/");
        assert_eq!(b["bool"], false);
        assert_eq!(
            b["matching"],
            json!({"card": "many-to-one", "labels": ["job"], "on": true, "include": [],
                   "fillValues": {"lhs": null, "rhs": null}})
        );
        assert_eq!(b["lhs"]["type"], "aggregation");
        assert_eq!(b["lhs"]["grouping"], json!(["job"]));
        assert_eq!(b["lhs"]["param"], Value::Null);
        assert_eq!(ast("a and b")["matching"]["card"], "many-to-many");
        assert_eq!(ast("a + b")["matching"]["card"], "one-to-one");
        assert_eq!(ast("1 + 2")["matching"], Value::Null);
        assert_eq!(ast("a > bool 1")["bool"], true);
        assert_eq!(
            ast("1+1"),
            json!({"type": "binaryExpr", "op": "+", "bool": false, "matching": null,
                   "lhs": {"type": "numberLiteral", "val": "1"},
                   "rhs": {"type": "numberLiteral", "val": "1"}})
        );
        assert_eq!(ast("topk(3, x)")["param"]["val"], "3");
        assert_eq!(ast(r#""s""#), json!({"type": "stringLiteral", "val": "s"}));
        assert_eq!(ast("(x)")["type"], "parenExpr");
        assert_eq!(ast("-x")["op"], "-");
    }

    #[test]
    fn subqueries_and_duration_expressions() {
        let s = ast("max_over_time(x[1h:5m] offset 1m)");
        let sq = &s["args"][0];
        assert_eq!(sq["type"], "subquery");
        assert_eq!(
            (&sq["range"], &sq["step"], &sq["offset"]),
            (&json!(3600000), &json!(300000), &json!(60000))
        );
        assert_eq!(ast("x[1h:]")["step"], 0);
        let r = ast("x[5m+step()]");
        assert_eq!(r["range"], 0);
        assert_eq!(r["rangeExpr"]["type"], "durationExpr");
        assert_eq!(r["rangeExpr"]["op"], "+");
        assert_eq!(r["rangeExpr"]["lhs"]["val"], "300");
        assert_eq!(r["rangeExpr"]["rhs"]["op"], "step");
    }
}
