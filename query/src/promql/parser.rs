//! The PromQL expression parser: precedence climbing over the token stream
//! of [`super::lexer`], building [`super::ast`] trees as Prometheus 3's
//! grammar does (its yacc grammar, `generated_parser.y`), with the same
//! error messages and positions. Duration expressions (inside `[...]` and
//! after `offset`) are in [`super::durations`]; type checking, which runs
//! only on a syntactically valid tree, in [`super::check`].
//!
//! Alongside the tree the parser returns a [`Span`] tree with the start
//! position of every node (the AST itself keeps positions only where the
//! evaluator needs them), so that the checker can point at the offending
//! node exactly as Prometheus does.

use engine::{METRIC_NAME, Matcher};

use super::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, Duration,
    Expr, MatrixSelector, RangeMode, SubqueryExpr, UnaryOp, VectorMatching, VectorSelector,
};
use super::error::ParseError;
use super::functions;
use super::lex;
use super::lexer::{Keyword, Lexer, Token, TokenKind};
use super::selector;
use crate::gofmt;

/// Start positions of a parsed tree, mirroring its shape: children in the
/// order of [`Span::children`]'s documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    /// Byte offset where the node starts (Prometheus's `PositionRange().Start`).
    pub start: usize,
    /// For binary expressions, the operator's position.
    pub op: usize,
    /// Paren / Unary / Subquery: `[inner]`; Binary: `[lhs, rhs]`;
    /// Aggregate: `[expr, param?]`; Call: the arguments; leaves: none.
    pub children: Vec<Span>,
    /// Levels of the tree from this node down (a leaf is 1).
    pub depth: usize,
}

impl Span {
    pub(crate) fn leaf(start: usize) -> Span {
        Span {
            start,
            op: start,
            children: Vec::new(),
            depth: 1,
        }
    }

    fn node(start: usize, children: Vec<Span>) -> Span {
        Span {
            start,
            op: start,
            depth: 1 + children.iter().map(|c| c.depth).max().unwrap_or(0),
            children,
        }
    }
}

/// The deepest expression tree the parser builds, and the deepest it
/// nests while parsing. Every pass over a tree (checks, evaluation,
/// printing, even dropping it) recurses once per level, on a thread stack
/// of 2 MiB: a sum of 5,000 terms, a 20 KB query, overflowed it and took
/// the server down. Prometheus has no such limit (Go stacks grow); no
/// query written by hand or by Grafana comes near it.
pub const MAX_DEPTH: usize = 256;

/// Where a syntax error happened, for Prometheus's "unexpected X in
/// <context>, expected <what>" (its grammar's `error` rules).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub what: &'static str,
    pub expected: &'static str,
}

pub(crate) const IN_AGGREGATION: Context = Context {
    what: "aggregation",
    expected: "",
};
pub(crate) const IN_OFFSET: Context = Context {
    what: "offset",
    expected: "number, duration, step(), or range()",
};
const IN_AT: Context = Context {
    what: "@",
    expected: "timestamp",
};
pub(crate) const IN_RANGE_START: Context = Context {
    what: "subquery or range selector",
    expected: "number, duration, step(), or range()",
};
const IN_RANGE_END: Context = Context {
    what: "subquery or range",
    expected: "\":\" or \"]\"",
};
pub(crate) const IN_STEP_START: Context = Context {
    what: "subquery selector",
    expected: "number, duration, step(), range(), or \"]\"",
};
const IN_STEP_END: Context = Context {
    what: "subquery selector",
    expected: "\"]\"",
};
const IN_GROUPING: &str = "grouping opts";

/// Parses a whole expression and returns it with its positions; no type
/// checking yet.
pub(crate) fn parse_unchecked(input: &str) -> Result<(Expr, Span), ParseError> {
    let mut p = Parser::new(input);
    if p.peek()?.kind == TokenKind::Eof {
        return Err(ParseError::at(input, 0, "no expression found in input"));
    }
    let parsed = p.expr(0)?;
    let tok = p.next()?;
    if tok.kind != TokenKind::Eof {
        return Err(p.unexpected(&tok));
    }
    Ok(parsed)
}

pub(crate) struct Parser<'a> {
    pub(crate) input: &'a str,
    lx: Lexer<'a>,
    peeked: Option<Token<'a>>,
    contexts: Vec<Context>,
    /// Open calls of [`Parser::expr`] and of the duration parser.
    pub(crate) nesting: usize,
    /// Inner nodes of the duration expression being parsed (its tree is
    /// no deeper than their count).
    pub(crate) duration_nodes: usize,
}

/// The binary operator a token stands for, if any.
fn binary_op(kind: TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Add => BinaryOp::Add,
        TokenKind::Sub => BinaryOp::Sub,
        TokenKind::Mul => BinaryOp::Mul,
        TokenKind::Div => BinaryOp::Div,
        TokenKind::Mod => BinaryOp::Mod,
        TokenKind::Pow => BinaryOp::Pow,
        TokenKind::EqlC => BinaryOp::Eql,
        TokenKind::Neq => BinaryOp::Neq,
        TokenKind::Lss => BinaryOp::Lss,
        TokenKind::Lte => BinaryOp::Lte,
        TokenKind::Gtr => BinaryOp::Gtr,
        TokenKind::Gte => BinaryOp::Gte,
        TokenKind::TrimUpper => BinaryOp::TrimUpper,
        TokenKind::TrimLower => BinaryOp::TrimLower,
        TokenKind::Keyword(Keyword::And) => BinaryOp::And,
        TokenKind::Keyword(Keyword::Or) => BinaryOp::Or,
        TokenKind::Keyword(Keyword::Unless) => BinaryOp::Unless,
        TokenKind::Keyword(Keyword::Atan2) => BinaryOp::Atan2,
        _ => return None,
    })
}

fn aggregate_op(k: Keyword) -> Option<AggregateOp> {
    Some(match k {
        Keyword::Sum => AggregateOp::Sum,
        Keyword::Avg => AggregateOp::Avg,
        Keyword::Count => AggregateOp::Count,
        Keyword::Min => AggregateOp::Min,
        Keyword::Max => AggregateOp::Max,
        Keyword::Group => AggregateOp::Group,
        Keyword::Stddev => AggregateOp::Stddev,
        Keyword::Stdvar => AggregateOp::Stdvar,
        Keyword::Topk => AggregateOp::Topk,
        Keyword::Bottomk => AggregateOp::Bottomk,
        Keyword::CountValues => AggregateOp::CountValues,
        Keyword::Quantile => AggregateOp::Quantile,
        Keyword::Limitk => AggregateOp::Limitk,
        Keyword::LimitRatio => AggregateOp::LimitRatio,
        _ => return None,
    })
}

/// Unary minus and plus bind like `*`: tighter than everything but `^`.
const UNARY_OPERAND_PRECEDENCE: u8 = 6;

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        Parser {
            input,
            lx: Lexer::new(input),
            peeked: None,
            contexts: Vec::new(),
            nesting: 0,
            duration_nodes: 0,
        }
    }

    pub(crate) fn peek(&mut self) -> Result<&Token<'a>, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lx.next_token()?);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(self.error(self.input.len(), "unexpected end of input")),
        }
    }

    pub(crate) fn peek_kind(&mut self) -> Result<TokenKind, ParseError> {
        Ok(self.peek()?.kind)
    }

    pub(crate) fn next(&mut self) -> Result<Token<'a>, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lx.next_token(),
        }
    }

    pub(crate) fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.input, pos, message)
    }

    /// "unexpected X", completed by the innermost open context.
    pub(crate) fn unexpected(&self, tok: &Token<'_>) -> ParseError {
        match self.contexts.last() {
            Some(c) => self.unexpected_in(tok, c.what, c.expected),
            None => self.unexpected_in(tok, "", ""),
        }
    }

    pub(crate) fn unexpected_in(&self, tok: &Token<'_>, what: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {}", tok.desc());
        if !what.is_empty() {
            msg.push_str(" in ");
            msg.push_str(what);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.error(tok.pos, msg)
    }

    /// Consumes a token of `kind` or fails with "unexpected ...".
    pub(crate) fn expect(&mut self, kind: TokenKind) -> Result<Token<'a>, ParseError> {
        let tok = self.next()?;
        if tok.kind == kind {
            Ok(tok)
        } else {
            Err(self.unexpected(&tok))
        }
    }

    pub(crate) fn push_context(&mut self, c: Context) {
        self.contexts.push(c);
    }

    pub(crate) fn pop_context(&mut self) {
        self.contexts.pop();
    }

    /// An expression whose binary operators all have at least `min_prec`.
    pub(crate) fn expr(&mut self, min_prec: u8) -> Result<(Expr, Span), ParseError> {
        self.enter()?;
        let parsed = self.expr_nested(min_prec);
        self.nesting -= 1;
        parsed
    }

    /// Counts one more level of nesting, refused past [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> Result<(), ParseError> {
        if self.nesting >= MAX_DEPTH {
            let pos = self.peek()?.pos;
            return Err(self.too_deep(pos));
        }
        self.nesting += 1;
        Ok(())
    }

    pub(crate) fn too_deep(&self, pos: usize) -> ParseError {
        self.error(
            pos,
            format!("expression nested too deeply: more than {MAX_DEPTH} levels"),
        )
    }

    fn expr_nested(&mut self, min_prec: u8) -> Result<(Expr, Span), ParseError> {
        let (mut lhs, mut lspan) = self.unary()?;
        if lspan.depth > MAX_DEPTH {
            return Err(self.too_deep(lspan.start));
        }
        while let Some(op) = binary_op(self.peek_kind()?) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.next()?;
            let (return_bool, matching) = self.binary_modifiers()?;
            let next_min = if op.is_right_associative() {
                prec
            } else {
                prec + 1
            };
            let (rhs, rspan) = self.expr(next_min)?;
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching,
            });
            let depth = 1 + lspan.depth.max(rspan.depth);
            if depth > MAX_DEPTH {
                return Err(self.too_deep(op_tok.pos));
            }
            lspan = Span {
                start: lspan.start,
                op: op_tok.pos,
                children: vec![lspan, rspan],
                depth,
            };
        }
        Ok((lhs, lspan))
    }

    /// `bool`, `on`/`ignoring (...)`, `group_left`/`group_right [(...)]`,
    /// `fill(v)` / `fill_left(v)` / `fill_right(v)`, in the grammar's order.
    fn binary_modifiers(&mut self) -> Result<(bool, Option<VectorMatching>), ParseError> {
        let return_bool = self.peek_kind()? == TokenKind::Keyword(Keyword::Bool);
        if return_bool {
            self.next()?;
        }
        let mut m = VectorMatching::default();
        let mut written = false;
        if let TokenKind::Keyword(k @ (Keyword::On | Keyword::Ignoring)) = self.peek_kind()? {
            self.next()?;
            written = true;
            m.on = k == Keyword::On;
            m.labels = self.grouping_labels()?;
            if let TokenKind::Keyword(g @ (Keyword::GroupLeft | Keyword::GroupRight)) =
                self.peek_kind()?
            {
                self.next()?;
                m.card = if g == Keyword::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek_kind()? == TokenKind::LeftParen {
                    m.include = self.grouping_labels()?;
                }
            }
        }
        match self.peek_kind()? {
            TokenKind::Keyword(Keyword::Fill) => {
                self.next()?;
                let v = self.fill_value()?;
                m.fill_left = Some(v);
                m.fill_right = Some(v);
                written = true;
            }
            TokenKind::Keyword(k @ (Keyword::FillLeft | Keyword::FillRight)) => {
                self.next()?;
                let v = self.fill_value()?;
                let other = if k == Keyword::FillLeft {
                    m.fill_left = Some(v);
                    Keyword::FillRight
                } else {
                    m.fill_right = Some(v);
                    Keyword::FillLeft
                };
                if self.peek_kind()? == TokenKind::Keyword(other) {
                    self.next()?;
                    let v = self.fill_value()?;
                    if other == Keyword::FillLeft {
                        m.fill_left = Some(v);
                    } else {
                        m.fill_right = Some(v);
                    }
                }
                written = true;
            }
            _ => {}
        }
        Ok((return_bool, written.then_some(m)))
    }

    /// `( [+|-] number_or_duration )` after a fill keyword.
    fn fill_value(&mut self) -> Result<f64, ParseError> {
        self.expect(TokenKind::LeftParen)?;
        let mut tok = self.next()?;
        let negative = tok.kind == TokenKind::Sub;
        if matches!(tok.kind, TokenKind::Add | TokenKind::Sub) {
            tok = self.next()?;
        }
        let v = self.number_value(&tok)?;
        self.expect(TokenKind::RightParen)?;
        Ok(if negative { -v } else { v })
    }

    /// The value of a number or duration token (durations in seconds);
    /// anything else is unexpected.
    pub(crate) fn number_value(&self, tok: &Token<'_>) -> Result<f64, ParseError> {
        match tok.kind {
            TokenKind::Number => lex::parse_number(tok.text)
                .map_err(|e| self.error(tok.pos, format!("error parsing number: {e}"))),
            TokenKind::Duration => lex::parse_duration(tok.text)
                .map(go_seconds)
                .map_err(|e| self.error(tok.pos, e.to_string())),
            _ => Err(self.unexpected(tok)),
        }
    }

    /// `( label, ... )` of `by`, `without`, `on`, `ignoring`, `group_*`.
    fn grouping_labels(&mut self) -> Result<Vec<String>, ParseError> {
        let open = self.next()?;
        if open.kind != TokenKind::LeftParen {
            return Err(self.unexpected_in(&open, IN_GROUPING, "\"(\""));
        }
        let mut labels = Vec::new();
        loop {
            let tok = self.next()?;
            let label = match tok.kind {
                TokenKind::RightParen => return Ok(labels),
                TokenKind::Identifier | TokenKind::MetricIdentifier => tok.text.to_string(),
                TokenKind::Keyword(k) if k != Keyword::Without => tok.text.to_string(),
                TokenKind::String => {
                    let v = tok.value.clone().unwrap_or_default();
                    if v.is_empty() {
                        return Err(self.error(
                            tok.pos,
                            format!("invalid label name for grouping: {}", gofmt::quote(&v)),
                        ));
                    }
                    v
                }
                _ => return Err(self.unexpected_in(&tok, IN_GROUPING, "label")),
            };
            labels.push(label);
            let sep = self.next()?;
            match sep.kind {
                TokenKind::Comma => {}
                TokenKind::RightParen => return Ok(labels),
                _ => return Err(self.unexpected_in(&sep, IN_GROUPING, "\",\" or \")\"")),
            }
        }
    }

    /// Unary `-` / `+` (folded into number literals, as Prometheus does),
    /// or a primary expression with its postfix modifiers.
    fn unary(&mut self) -> Result<(Expr, Span), ParseError> {
        let kind = self.peek_kind()?;
        if !matches!(kind, TokenKind::Add | TokenKind::Sub) {
            let (e, s) = self.primary()?;
            return self.postfix(e, s);
        }
        let sign = self.next()?;
        let (operand, ospan) = self.expr(UNARY_OPERAND_PRECEDENCE)?;
        let negative = sign.kind == TokenKind::Sub;
        Ok(match operand {
            Expr::Number(v) => (
                Expr::Number(if negative { -v } else { v }),
                Span::leaf(sign.pos),
            ),
            other => {
                let op = if negative { UnaryOp::Neg } else { UnaryOp::Pos };
                (
                    Expr::Unary(op, Box::new(other)),
                    Span::node(sign.pos, vec![ospan]),
                )
            }
        })
    }

    fn primary(&mut self) -> Result<(Expr, Span), ParseError> {
        let tok = self.next()?;
        match tok.kind {
            TokenKind::Number | TokenKind::Duration => {
                Ok((Expr::Number(self.number_value(&tok)?), Span::leaf(tok.pos)))
            }
            TokenKind::String => Ok((
                Expr::String(tok.value.unwrap_or_default()),
                Span::leaf(tok.pos),
            )),
            TokenKind::LeftBrace => {
                let matchers = selector::label_matchers(&mut self.lx)?;
                Ok((
                    Expr::Vector(new_selector(None, matchers, tok.pos)),
                    Span::leaf(tok.pos),
                ))
            }
            TokenKind::LeftParen => {
                let (inner, ispan) = self.expr(0)?;
                self.expect(TokenKind::RightParen)?;
                Ok((
                    Expr::Paren(Box::new(inner)),
                    Span::node(tok.pos, vec![ispan]),
                ))
            }
            TokenKind::Identifier if self.peek_kind()? == TokenKind::LeftParen => self.call(tok),
            TokenKind::Identifier | TokenKind::MetricIdentifier => self.named_selector(tok),
            TokenKind::Keyword(k) => {
                let next = self.peek_kind()?;
                let opens_aggregation = matches!(
                    next,
                    TokenKind::LeftParen | TokenKind::Keyword(Keyword::By | Keyword::Without)
                );
                if let Some(op) = aggregate_op(k).filter(|_| opens_aggregation) {
                    return self.aggregate(op, tok.pos);
                }
                if matches!(
                    k,
                    Keyword::Start
                        | Keyword::End
                        | Keyword::Step
                        | Keyword::Range
                        | Keyword::MaxOf
                        | Keyword::MinOf
                ) && next == TokenKind::LeftParen
                {
                    return self.call(tok);
                }
                if k.is_metric_identifier() {
                    return self.named_selector(tok);
                }
                Err(self.unexpected(&tok))
            }
            _ => Err(self.unexpected(&tok)),
        }
    }

    /// `name` or `name{...}`.
    fn named_selector(&mut self, tok: Token<'a>) -> Result<(Expr, Span), ParseError> {
        let mut matchers = Vec::new();
        if self.peek_kind()? == TokenKind::LeftBrace {
            self.next()?;
            matchers = selector::label_matchers(&mut self.lx)?;
        }
        let name = tok.text.to_string();
        matchers.push(Matcher::equal(METRIC_NAME, name.as_str()));
        Ok((
            Expr::Vector(new_selector(Some(name), matchers, tok.pos)),
            Span::leaf(tok.pos),
        ))
    }

    /// `( expr, ... )` of a call or aggregation.
    fn call_args(&mut self) -> Result<(Vec<Expr>, Vec<Span>), ParseError> {
        self.expect(TokenKind::LeftParen)?;
        let mut args = Vec::new();
        let mut spans = Vec::new();
        if self.peek_kind()? == TokenKind::RightParen {
            self.next()?;
            return Ok((args, spans));
        }
        loop {
            let (e, s) = self.expr(0)?;
            args.push(e);
            spans.push(s);
            let tok = self.next()?;
            match tok.kind {
                TokenKind::RightParen => return Ok((args, spans)),
                TokenKind::Comma if self.peek_kind()? == TokenKind::RightParen => {
                    return Err(
                        self.error(tok.pos, "trailing commas not allowed in function call args")
                    );
                }
                TokenKind::Comma => {}
                _ => return Err(self.unexpected(&tok)),
            }
        }
    }

    fn call(&mut self, name: Token<'a>) -> Result<(Expr, Span), ParseError> {
        let (args, spans) = self.call_args()?;
        let Some(func) = functions::lookup(name.text) else {
            return Err(self.error(
                name.pos,
                format!("unknown function with name {}", gofmt::quote(name.text)),
            ));
        };
        Ok((
            Expr::Call(Call {
                func,
                args,
                position: name.pos,
            }),
            Span::node(name.pos, spans),
        ))
    }

    /// `op [by|without (...)] (args) [by|without (...)]`.
    fn aggregate(&mut self, op: AggregateOp, position: usize) -> Result<(Expr, Span), ParseError> {
        self.push_context(IN_AGGREGATION);
        let mut grouping = None;
        if let TokenKind::Keyword(k @ (Keyword::By | Keyword::Without)) = self.peek_kind()? {
            self.next()?;
            grouping = Some((k == Keyword::Without, self.grouping_labels()?));
        }
        if self.peek_kind()? != TokenKind::LeftParen {
            let tok = self.next()?;
            return Err(self.unexpected(&tok));
        }
        let (mut args, mut spans) = self.call_args()?;
        self.pop_context();
        if let (None, TokenKind::Keyword(k @ (Keyword::By | Keyword::Without))) =
            (&grouping, self.peek_kind()?)
        {
            self.next()?;
            grouping = Some((k == Keyword::Without, self.grouping_labels()?));
        }
        if args.is_empty() {
            return Err(self.error(position, "no arguments for aggregate expression provided"));
        }
        let want = if op.takes_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(self.error(
                position,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let (expr, espan) = match (args.pop(), spans.pop()) {
            (Some(e), Some(s)) => (e, s),
            _ => return Err(self.error(position, "no arguments for aggregate expression provided")),
        };
        let mut children = vec![espan];
        children.extend(spans.pop());
        let (without, grouping) = grouping.unwrap_or_default();
        Ok((
            Expr::Aggregate(AggregateExpr {
                op,
                expr: Box::new(expr),
                param: args.pop().map(Box::new),
                grouping,
                without,
                position,
            }),
            Span::node(position, children),
        ))
    }

    /// Range and subquery brackets, `offset`, `@`, `anchored`, `smoothed`
    /// after a primary expression (they bind tighter than any operator).
    fn postfix(&mut self, mut e: Expr, mut span: Span) -> Result<(Expr, Span), ParseError> {
        loop {
            match self.peek_kind()? {
                TokenKind::LeftBracket => {
                    (e, span) = self.brackets(e, span)?;
                    if span.depth > MAX_DEPTH {
                        return Err(self.too_deep(span.start));
                    }
                }
                TokenKind::Keyword(Keyword::Offset) => {
                    self.next()?;
                    self.push_context(IN_OFFSET);
                    let offset = self.offset_duration()?;
                    self.pop_context();
                    self.set_offset(&mut e, span.start, offset)?;
                }
                TokenKind::At => {
                    self.next()?;
                    let at = self.at_value(span.start)?;
                    self.set_at(&mut e, span.start, at)?;
                }
                TokenKind::Keyword(k @ (Keyword::Anchored | Keyword::Smoothed)) => {
                    self.next()?;
                    let mode = if k == Keyword::Anchored {
                        RangeMode::Anchored
                    } else {
                        RangeMode::Smoothed
                    };
                    self.set_range_mode(&mut e, span.start, mode)?;
                }
                _ => return Ok((e, span)),
            }
        }
    }

    /// `[range]` or `[range:step]` / `[range:]`.
    fn brackets(&mut self, e: Expr, span: Span) -> Result<(Expr, Span), ParseError> {
        let open = self.next()?;
        self.push_context(IN_RANGE_START);
        let range = self.positive_duration()?;
        self.pop_context();
        let tok = self.next()?;
        match tok.kind {
            TokenKind::RightBracket => {
                let problem = match &e {
                    Expr::Vector(vs) if vs.offset.is_some() => {
                        "no offset modifiers allowed before range"
                    }
                    Expr::Vector(vs) if vs.at.is_some() => "no @ modifiers allowed before range",
                    Expr::Vector(_) => "",
                    _ => "ranges only allowed for vector selectors",
                };
                match e {
                    Expr::Vector(vector) if problem.is_empty() => Ok((
                        Expr::Matrix(MatrixSelector { vector, range }),
                        Span::leaf(span.start),
                    )),
                    _ => Err(self.error(open.pos, problem)),
                }
            }
            TokenKind::Colon => {
                let step = if self.peek_kind()? == TokenKind::RightBracket {
                    None
                } else {
                    self.push_context(IN_STEP_START);
                    let step = self.positive_duration()?;
                    self.pop_context();
                    Some(step)
                };
                let close = self.next()?;
                if close.kind != TokenKind::RightBracket {
                    return Err(self.unexpected_in(&close, IN_STEP_END.what, IN_STEP_END.expected));
                }
                let start = span.start;
                Ok((
                    Expr::Subquery(SubqueryExpr {
                        expr: Box::new(e),
                        range,
                        step,
                        offset: None,
                        at: None,
                        position: start,
                    }),
                    Span::node(start, vec![span]),
                ))
            }
            _ => Err(self.unexpected_in(&tok, IN_RANGE_END.what, IN_RANGE_END.expected)),
        }
    }

    fn set_offset(
        &self,
        e: &mut Expr,
        start: usize,
        offset: Option<Duration>,
    ) -> Result<(), ParseError> {
        let slot = match e {
            Expr::Vector(vs) => &mut vs.offset,
            Expr::Matrix(m) => &mut m.vector.offset,
            Expr::Subquery(s) => &mut s.offset,
            _ => {
                return Err(self.error(
                    start,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(start, "offset may not be set multiple times"));
        }
        *slot = offset;
        Ok(())
    }

    /// The value after `@`: a (signed) number or duration, `start()` or `end()`.
    fn at_value(&mut self, start: usize) -> Result<AtModifier, ParseError> {
        self.push_context(IN_AT);
        let mut tok = self.next()?;
        let at = match tok.kind {
            TokenKind::Keyword(k @ (Keyword::Start | Keyword::End)) => {
                self.expect(TokenKind::LeftParen)?;
                self.expect(TokenKind::RightParen)?;
                if k == Keyword::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            TokenKind::Add | TokenKind::Sub | TokenKind::Number | TokenKind::Duration => {
                let negative = tok.kind == TokenKind::Sub;
                if matches!(tok.kind, TokenKind::Add | TokenKind::Sub) {
                    tok = self.next()?;
                }
                let mut v = self.number_value(&tok)?;
                if negative {
                    v = -v;
                }
                // Prometheus: ts >= float64(MaxInt64) || ts <= float64(MinInt64).
                if !v.is_finite() || v >= i64::MAX as f64 || v <= i64::MIN as f64 {
                    return Err(self.error(
                        start,
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            go_percent_f(v)
                        ),
                    ));
                }
                // timestamp.FromFloatSeconds: round to milliseconds
                // (saturating where Go's conversion would overflow).
                AtModifier::Time((v * 1000.0).round() as i64)
            }
            _ => return Err(self.unexpected(&tok)),
        };
        self.pop_context();
        Ok(at)
    }

    fn set_at(&self, e: &mut Expr, start: usize, at: AtModifier) -> Result<(), ParseError> {
        let slot = match e {
            Expr::Vector(vs) => &mut vs.at,
            Expr::Matrix(m) => &mut m.vector.at,
            Expr::Subquery(s) => &mut s.at,
            _ => {
                return Err(self.error(
                    start,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error(start, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        Ok(())
    }

    fn set_range_mode(
        &self,
        e: &mut Expr,
        start: usize,
        mode: RangeMode,
    ) -> Result<(), ParseError> {
        let name = if mode == RangeMode::Anchored {
            "anchored"
        } else {
            "smoothed"
        };
        let vs = match e {
            Expr::Vector(vs) => vs,
            Expr::Matrix(m) => &mut m.vector,
            Expr::Subquery(_) => {
                return Err(self.error(
                    start,
                    format!("{name} modifier is not supported for subqueries"),
                ));
            }
            _ => return Err(self.error(start, format!("{name} modifier not implemented"))),
        };
        if vs.range_mode != RangeMode::Normal && vs.range_mode != mode {
            return Err(self.error(
                start,
                "anchored and smoothed modifiers cannot be used together",
            ));
        }
        vs.range_mode = mode;
        Ok(())
    }
}

fn new_selector(name: Option<String>, matchers: Vec<Matcher>, position: usize) -> VectorSelector {
    VectorSelector {
        name,
        matchers,
        offset: None,
        at: None,
        range_mode: RangeMode::Normal,
        position,
    }
}

/// Go's `time.Duration.Seconds()`.
fn go_seconds(d: std::time::Duration) -> f64 {
    d.as_secs() as f64 + f64::from(d.subsec_nanos()) / 1e9
}

/// Go's `fmt.Sprintf("%f", v)`.
fn go_percent_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}
