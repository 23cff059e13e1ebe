//! Property tests of the PromQL parser: random well-typed trees print and
//! re-parse to the same tree; arbitrary and PromQL-like strings never make
//! the parser panic, and whatever parses round-trips through the printer.

use engine::{METRIC_NAME, MatchOp, Matcher};
use proptest::prelude::*;

use super::ast::*;
use super::{functions, parse, pretty, same_tree};

/// A small deterministic generator driven by a seed (xorshift64*), so one
/// proptest input describes a whole tree.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn label(&mut self) -> String {
        self.pick(&[
            "job",
            "instance",
            "a.b",
            "le",
            "by",
            "on",
            "ü",
            "__name__x",
            "x1",
        ])
        .to_string()
    }

    fn number(&mut self) -> f64 {
        match self.below(8) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => f64::NAN,
            3 => -0.0,
            4 => (self.below(2000) as f64 - 1000.0) / 8.0,
            5 => 1e-7,
            6 => 1e21,
            _ => self.below(100) as f64,
        }
    }

    fn duration(&mut self, allow_negative: bool) -> Duration {
        if self.chance(70) {
            let ms = self.pick(&[
                1,
                1500,
                60_000,
                300_000,
                5_400_000,
                86_400_000,
                31_536_000_000,
            ]);
            let sign = if allow_negative && self.chance(30) {
                -1
            } else {
                1
            };
            return Duration::Literal(sign * ms);
        }
        // A bare number would be a literal, not an expression.
        match self.duration_expr(2) {
            DurationExpr::Number(v) => Duration::Expr(Box::new(DurationExpr::Paren(Box::new(
                DurationExpr::Number(v),
            )))),
            e => Duration::Expr(Box::new(e)),
        }
    }

    fn duration_expr(&mut self, depth: u32) -> DurationExpr {
        let leaf = |g: &mut Gen| match g.below(4) {
            0 => DurationExpr::Step,
            1 => DurationExpr::Range,
            _ => DurationExpr::Number(g.below(600) as f64),
        };
        if depth == 0 {
            return leaf(self);
        }
        match self.below(6) {
            0 => DurationExpr::Neg(Box::new(DurationExpr::Paren(Box::new(
                self.duration_expr(depth - 1),
            )))),
            1 => DurationExpr::Paren(Box::new(self.duration_expr(depth - 1))),
            2 => DurationExpr::MinOf(
                Box::new(self.duration_expr(depth - 1)),
                Box::new(self.duration_expr(depth - 1)),
            ),
            3 => {
                let op = self.pick(&[BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Pow]);
                // Operands are leaves or parenthesised, so no precedence question arises.
                let side = |g: &mut Gen| {
                    if g.chance(50) {
                        leaf(g)
                    } else {
                        DurationExpr::Paren(Box::new(g.duration_expr(depth - 1)))
                    }
                };
                let (a, b) = (side(self), side(self));
                DurationExpr::Binary(op, Box::new(a), Box::new(b))
            }
            _ => leaf(self),
        }
    }

    fn selector(&mut self) -> VectorSelector {
        let mut matchers = Vec::new();
        for _ in 0..self.below(3) {
            let op = self.pick(&[
                MatchOp::Equal,
                MatchOp::NotEqual,
                MatchOp::RegexMatch,
                MatchOp::RegexNoMatch,
            ]);
            let value = self.pick(&["x", "", "a\"b\\c", "é\n", "5..", ".+"]);
            if let Ok(m) = Matcher::new(op, self.label(), value) {
                matchers.push(m);
            }
        }
        let name = self.pick(&["up", "sum", "job:rate5m", "http.requests", "offset"]);
        let bare = name != "http.requests" && self.chance(70);
        if bare {
            matchers.push(Matcher::equal(METRIC_NAME, name));
        } else {
            matchers.insert(0, Matcher::equal(METRIC_NAME, name));
        }
        VectorSelector {
            name: bare.then(|| name.to_string()),
            matchers,
            offset: None,
            at: None,
            range_mode: RangeMode::Normal,
            position: 0,
        }
    }

    /// An offset: a literal, or a duration expression in a form that ends
    /// the offset (one starting with `(` would take in a following `+ x`).
    fn offset(&mut self) -> Duration {
        match self.duration(true) {
            Duration::Expr(e)
                if matches!(*e, DurationExpr::Paren(_) | DurationExpr::Binary(..)) =>
            {
                Duration::Expr(Box::new(DurationExpr::Neg(Box::new(DurationExpr::Paren(
                    e,
                )))))
            }
            d => d,
        }
    }

    fn modifiers(&mut self, vs: &mut VectorSelector) {
        if self.chance(30) {
            vs.offset = Some(self.offset());
        }
        if self.chance(20) {
            vs.at = Some(self.at());
        }
        if self.chance(15) {
            vs.range_mode = self.pick(&[RangeMode::Anchored, RangeMode::Smoothed]);
        }
    }

    fn at(&mut self) -> AtModifier {
        match self.below(3) {
            0 => AtModifier::Start,
            1 => AtModifier::End,
            _ => AtModifier::Time(self.below(4_000_000_000_000) as i64 - 1_000_000_000_000),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Expr>) -> Expr {
        let func = functions::lookup(name).expect("known function");
        Expr::Call(Call {
            func,
            args,
            position: 0,
        })
    }

    /// An instant-vector expression.
    fn vector(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.chance(25) {
            let mut vs = self.selector();
            self.modifiers(&mut vs);
            return Expr::Vector(vs);
        }
        let d = depth - 1;
        match self.below(9) {
            0 => {
                let mut vs = self.selector();
                let range = self.duration(false);
                self.modifiers(&mut vs);
                let f = self.pick(&["rate", "increase", "max_over_time", "mad_over_time"]);
                self.call(f, vec![Expr::Matrix(MatrixSelector { vector: vs, range })])
            }
            1 => {
                let inner = Gen::primary(self.vector(d));
                let sub = Expr::Subquery(SubqueryExpr {
                    expr: Box::new(inner),
                    // Prometheus's lexer rejects a colon that no number
                    // precedes inside the first brackets (`[step():1m]`).
                    range: Duration::Literal(self.pick(&[1000, 300_000, 3_600_000])),
                    step: self.chance(50).then(|| self.duration(false)),
                    offset: self.chance(30).then(|| self.offset()),
                    at: self.chance(20).then(|| self.at()),
                    position: 0,
                });
                self.call("min_over_time", vec![sub])
            }
            2 => {
                let op = self.pick(&[
                    AggregateOp::Sum,
                    AggregateOp::Topk,
                    AggregateOp::CountValues,
                    AggregateOp::Quantile,
                    AggregateOp::LimitRatio,
                    AggregateOp::Group,
                ]);
                let param = match op {
                    AggregateOp::CountValues => Some(Expr::String("v".into())),
                    AggregateOp::Topk | AggregateOp::Quantile | AggregateOp::LimitRatio => {
                        Some(self.scalar(d))
                    }
                    _ => None,
                };
                let grouping = (0..self.below(3)).map(|_| self.label()).collect();
                Expr::Aggregate(AggregateExpr {
                    op,
                    expr: Box::new(self.vector(d)),
                    param: param.map(Box::new),
                    grouping,
                    without: self.chance(30),
                    position: 0,
                })
            }
            3 => {
                let (l, r) = (self.vector(d), self.vector(d));
                self.binary_vv(l, r)
            }
            4 => {
                let op = self.pick(&[
                    BinaryOp::Mul,
                    BinaryOp::Gtr,
                    BinaryOp::Pow,
                    BinaryOp::TrimUpper,
                ]);
                let (v, s) = (self.vector(d), self.scalar(d));
                let (l, r) = if self.chance(50) { (v, s) } else { (s, v) };
                let b = op.is_comparison() && self.chance(50);
                Gen::binary(op, l, r, b, None)
            }
            5 => Expr::Paren(Box::new(self.vector(d))),
            6 => {
                let inner = self.vector(d);
                self.unary(inner)
            }
            7 => {
                let args = vec![
                    self.vector(d),
                    Expr::String("dst".into()),
                    Expr::String("a".into()),
                ];
                self.call("label_join", args)
            }
            _ => {
                let args = vec![self.vector(d), self.scalar(d)];
                self.call("round", args)
            }
        }
    }

    /// A scalar expression.
    fn scalar(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.chance(40) {
            return Expr::Number(self.number());
        }
        let d = depth - 1;
        match self.below(5) {
            0 => {
                let v = self.vector(d);
                self.call("scalar", vec![v])
            }
            1 => self.call("time", vec![]),
            2 => Expr::Paren(Box::new(self.scalar(d))),
            3 => {
                let op = self.pick(&[
                    BinaryOp::Add,
                    BinaryOp::Pow,
                    BinaryOp::Lte,
                    BinaryOp::Atan2,
                    BinaryOp::Mod,
                ]);
                let (l, r) = (self.scalar(d), self.scalar(d));
                Gen::binary(op, l, r, op.is_comparison(), None)
            }
            _ => {
                let inner = Expr::Paren(Box::new(self.scalar(d)));
                self.unary(inner)
            }
        }
    }

    fn binary_vv(&mut self, l: Expr, r: Expr) -> Expr {
        let op = self.pick(&[
            BinaryOp::Add,
            BinaryOp::Div,
            BinaryOp::Pow,
            BinaryOp::Eql,
            BinaryOp::And,
            BinaryOp::Or,
            BinaryOp::Unless,
            BinaryOp::Atan2,
        ]);
        let mut m = VectorMatching::default();
        if op.is_set_operator() {
            m.card = Cardinality::ManyToMany;
        }
        let mut written = false;
        if self.chance(50) {
            written = true;
            m.on = self.chance(50);
            m.labels = (0..self.below(3)).map(|_| self.label()).collect();
            if !op.is_set_operator() && self.chance(40) {
                m.card = self.pick(&[Cardinality::ManyToOne, Cardinality::OneToMany]);
                m.include = (0..self.below(2)).map(|_| self.label()).collect();
                if m.on {
                    let labels = m.labels.clone();
                    m.include.retain(|l| !labels.contains(l));
                }
            }
        }
        if !op.is_set_operator() && self.chance(30) {
            written = true;
            m.fill_left = self.chance(70).then(|| self.number());
            m.fill_right = self.chance(70).then(|| self.number());
        }
        let mut default = VectorMatching::default();
        if op.is_set_operator() {
            default.card = Cardinality::ManyToMany;
        }
        let canonical = written && m != default;
        let matching = canonical.then_some(m);
        let ret_bool = op.is_comparison() && self.chance(50);
        Gen::binary(op, l, r, ret_bool, matching)
    }

    fn unary(&mut self, inner: Expr) -> Expr {
        let op = if self.chance(70) {
            UnaryOp::Neg
        } else {
            UnaryOp::Pos
        };
        let inner = match inner {
            Expr::Binary(b) if b.op != BinaryOp::Pow => Expr::Paren(Box::new(Expr::Binary(b))),
            Expr::Number(v) => Expr::Paren(Box::new(Expr::Number(v))),
            other => other,
        };
        Expr::Unary(op, Box::new(inner))
    }

    /// Wraps `e` in parentheses unless it can take a `[..]` suffix as is.
    fn primary(e: Expr) -> Expr {
        match e {
            Expr::Vector(_) | Expr::Call(_) | Expr::Aggregate(_) | Expr::Paren(_) => e,
            other => Expr::Paren(Box::new(other)),
        }
    }

    /// A binary expression, with parentheses where precedence needs them.
    fn binary(
        op: BinaryOp,
        l: Expr,
        r: Expr,
        return_bool: bool,
        matching: Option<VectorMatching>,
    ) -> Expr {
        let p = op.precedence();
        let wrap_l = match &l {
            Expr::Binary(b) => {
                let q = b.op.precedence();
                q < p || (q == p && op.is_right_associative())
            }
            Expr::Unary(..) => op == BinaryOp::Pow,
            // Printed with a sign (`-1`, `+Inf`), which would take `^` in.
            Expr::Number(v) => {
                op == BinaryOp::Pow && !v.is_nan() && (v.is_sign_negative() || v.is_infinite())
            }
            _ => false,
        };
        let wrap_r = match &r {
            Expr::Binary(b) => {
                let q = b.op.precedence();
                q < p || (q == p && !op.is_right_associative())
            }
            _ => false,
        };
        let paren = |e: Expr, w: bool| if w { Expr::Paren(Box::new(e)) } else { e };
        // Fill and matching only apply between vectors; scalars drop them.
        let both_vectors =
            l.value_type() == ValueType::Vector && r.value_type() == ValueType::Vector;
        Expr::Binary(BinaryExpr {
            op,
            lhs: Box::new(paren(l, wrap_l)),
            rhs: Box::new(paren(r, wrap_r)),
            return_bool,
            matching: matching.filter(|_| both_vectors),
        })
    }
}

fn round_trip(expr: &Expr) -> Result<(), TestCaseError> {
    let printed = expr.to_string();
    match parse(&printed) {
        Ok(again) => prop_assert!(
            same_tree(expr, &again),
            "{} re-parses differently:\n{:?}\n{:?}",
            printed,
            expr,
            again
        ),
        Err(e) => return Err(TestCaseError::fail(format!("{printed}: {e}"))),
    }
    let pretty = pretty(expr);
    match parse(&pretty) {
        Ok(again) => prop_assert!(same_tree(expr, &again), "pretty form {}", pretty),
        Err(e) => return Err(TestCaseError::fail(format!("pretty {pretty}: {e}"))),
    }
    Ok(())
}

/// Whatever parses, round-trips.
fn parse_never_panics(input: &str) -> Result<(), TestCaseError> {
    if let Ok(e) = parse(input) {
        round_trip(&e)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_trees_print_and_reparse(seed in any::<u64>(), depth in 0u32..5) {
        let mut g = Gen(seed | 1);
        let e = if g.chance(80) { g.vector(depth) } else { g.scalar(depth) };
        round_trip(&e)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        parse_never_panics(&input)?;
    }

    #[test]
    fn promql_like_strings_never_panic(parts in proptest::collection::vec(prop_oneof![
        Just("foo"), Just("sum"), Just("by"), Just("("), Just(")"), Just("["), Just("]"),
        Just("{"), Just("}"), Just("a=\"b\""), Just(","), Just(":"), Just("5m"), Just("1"),
        Just("-"), Just("+"), Just("*"), Just("^"), Just("/"), Just("offset"), Just("@"),
        Just("start()"), Just("step()"), Just("min_of"), Just("rate"), Just("bool"),
        Just("on"), Just("group_left"), Just("fill(0)"), Just("and"), Just("anchored"),
        Just("smoothed"), Just("topk"), Just("\"s\""), Just("#c\n"), Just(" "), Just("Inf"),
        Just("0x1f"), Just(".5e3"), Just("1_0"), Just("=="), Just("</"), Just("info"),
    ], 0..24)) {
        parse_never_panics(&parts.concat())?;
    }
}
