//! The PromQL syntax tree: what the parser produces, the printer prints
//! back (`format_query`) and the evaluator walks. Node kinds follow
//! Prometheus 3's grammar, including its experimental parts (duration
//! expressions, `fill` modifiers, `anchored` / `smoothed` selectors), so
//! that every test script of the conformance suite has a tree to land in.
//!
//! Times are milliseconds (`i64`), as everywhere in Silt. Positions are
//! byte offsets into the query text, kept for error messages.

use engine::Matcher;

/// The type of a PromQL expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    String,
    /// Instant vector.
    Vector,
    /// Range vector (matrix).
    Matrix,
}

impl ValueType {
    /// The name Prometheus uses in messages and in the API's `resultType`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
        }
    }
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal (`1`, `0x1f`, `1e3`, `Inf`, `NaN`, `1_000`, or a
    /// duration used as a number of seconds: `5m` = 300).
    Number(f64),
    /// A string literal, unescaped.
    String(String),
    /// `metric{label="x"} offset 5m @ 100`.
    Vector(VectorSelector),
    /// `metric{...}[5m] offset ... @ ...` (offset and `@` live on the inner
    /// selector, as in Prometheus).
    Matrix(MatrixSelector),
    /// `expr[range:step] offset ... @ ...`.
    Subquery(SubqueryExpr),
    /// `( expr )`.
    Paren(Box<Expr>),
    /// `-expr` or `+expr`.
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryExpr),
    Aggregate(AggregateExpr),
    Call(Call),
}

impl Expr {
    /// The type of the expression's value, as Prometheus's `Expr.Type()`.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::Vector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::Matrix(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Paren(e) | Expr::Unary(_, e) => e.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call(c) => c.func.return_type,
        }
    }
}

/// A vector selector with its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers in input order; when `name` is set, its `__name__`
    /// equality matcher comes last (as in Prometheus).
    pub matchers: Vec<Matcher>,
    /// `offset d` (negative allowed); `None` when not written.
    pub offset: Option<Duration>,
    /// `@ t` / `@ start()` / `@ end()`.
    pub at: Option<AtModifier>,
    /// `anchored` / `smoothed` (experimental extended range selectors).
    pub range_mode: RangeMode,
    /// Byte offset of the selector in the query.
    pub position: usize,
}

/// Experimental selector modifiers of Prometheus 3.x (`extended_vectors.test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangeMode {
    #[default]
    Normal,
    Anchored,
    Smoothed,
}

/// `vector[range]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    pub vector: VectorSelector,
    pub range: Duration,
}

/// `expr[range:step]` (step optional: the evaluation's default interval).
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range: Duration,
    pub step: Option<Duration>,
    pub offset: Option<Duration>,
    pub at: Option<AtModifier>,
    pub position: usize,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored in milliseconds.
    Time(i64),
    Start,
    End,
}

/// A duration as written: a literal or (experimental) a duration expression
/// such as `5m+1m`, `step()`, `min_of(step(), 1h)`. Literals are
/// milliseconds; numbers in duration expressions are seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Duration {
    /// A literal duration or number, in milliseconds.
    Literal(i64),
    /// A duration expression, evaluated per query (it may use `step()`).
    Expr(Box<DurationExpr>),
}

/// A duration expression (Prometheus's experimental duration arithmetic).
/// Values are in seconds while computing (as Prometheus does), converted to
/// milliseconds at the end.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A number of seconds (a duration literal `90s` is 90.0).
    Number(f64),
    /// `step()`: the query's step in seconds (0 for instant queries).
    Step,
    /// `range()`: the range query's length in seconds (0 for instant).
    Range,
    Neg(Box<DurationExpr>),
    Paren(Box<DurationExpr>),
    /// `+ - * / % ^`.
    Binary(BinaryOp, Box<DurationExpr>, Box<DurationExpr>),
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Pos,
}

/// Binary operators, listed from loosest to tightest precedence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Unless,
    Eql,
    Neq,
    Lss,
    Gtr,
    Lte,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Atan2,
    Pow,
    /// `</` (experimental): trims a native histogram's upper tail.
    TrimUpper,
    /// `>/` (experimental): trims a native histogram's lower tail.
    TrimLower,
}

impl BinaryOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Unless => "unless",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Lss => "<",
            BinaryOp::Gtr => ">",
            BinaryOp::Lte => "<=",
            BinaryOp::Gte => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Pow => "^",
            BinaryOp::TrimUpper => "</",
            BinaryOp::TrimLower => ">/",
        }
    }

    /// Precedence: higher binds tighter (`or` 1 … `^` 6).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Lss
            | BinaryOp::Gtr
            | BinaryOp::Lte
            | BinaryOp::Gte
            | BinaryOp::TrimUpper
            | BinaryOp::TrimLower => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// `^` is the only right-associative operator.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eql
                | BinaryOp::Neq
                | BinaryOp::Lss
                | BinaryOp::Gtr
                | BinaryOp::Lte
                | BinaryOp::Gte
        )
    }

    /// `and`, `or`, `unless`: defined on vectors only, many-to-many.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// `lhs op [bool] [on|ignoring (...)] [group_left|group_right (...)] [fill...] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Vector matching; `None` when neither side is a vector or no
    /// modifier was written (then it means `ignoring ()`, one-to-one, or
    /// many-to-many for set operators).
    pub matching: Option<VectorMatching>,
}

/// How the two sides of a binary operation between vectors are matched.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// The label list of `on (...)` or `ignoring (...)`.
    pub labels: Vec<String>,
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// Extra labels to copy from the "one" side (`group_left (...)`).
    pub include: Vec<String>,
    /// `fill(v)` / `fill_left(v)` / `fill_right(v)` (experimental): values
    /// used for a missing left / right element.
    pub fill_left: Option<f64>,
    pub fill_right: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cardinality {
    #[default]
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Does this aggregation take a parameter before the vector?
    pub fn takes_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }
}

/// `op [by|without (...)] ([param,] expr) [by|without (...)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Box<Expr>,
    pub param: Option<Box<Expr>>,
    /// The `by` / `without` labels.
    pub grouping: Vec<String>,
    /// `without` (true) or `by` (false; also when no clause was written).
    pub without: bool,
    pub position: usize,
}

/// A function call; `func` is the entry of the function table, which holds
/// argument types and arity checked at parse time.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub position: usize,
}

/// One entry of the function table.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    /// Argument types, in order. With `variadic`, the last type repeats.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments. n > 0: up to n optional
    /// trailing arguments beyond the required ones. -1: unlimited.
    pub variadic: i32,
    pub return_type: ValueType,
    /// Experimental (needs `--enable-feature=promql-experimental-functions`
    /// in Prometheus; always on in Silt).
    pub experimental: bool,
}
