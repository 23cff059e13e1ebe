//! Duration expressions (Prometheus 3's experimental duration arithmetic):
//! ranges and subquery steps (`foo[5m+1m]`, `[step()]`, `[min_of(step(), 1h)]`)
//! and offsets (`offset 5m`, `offset -(1h*2)`, `offset step()`).
//!
//! Like Prometheus, a plain number or duration (with an optional sign) is a
//! literal and becomes [`Duration::Literal`] in milliseconds; anything else
//! stays a [`DurationExpr`] evaluated per query. Numbers in duration
//! expressions are seconds.

use super::ast::{BinaryOp, Duration, DurationExpr};
use super::error::ParseError;
use super::lexer::{Keyword, Token, TokenKind};
use super::parser::{MAX_DEPTH, Parser};

/// A parsed duration: Prometheus's `NumberLiteral` (a possibly signed
/// literal, in seconds, with its position) or a `DurationExpr`.
enum Dur {
    Literal(f64, usize),
    Expr(DurationExpr),
}

impl Dur {
    fn into_expr(self) -> DurationExpr {
        match self {
            Dur::Literal(v, _) => DurationExpr::Number(v),
            Dur::Expr(e) => e,
        }
    }
}

/// Prometheus's `durationLiteralOutOfRange`: more seconds than an `int64`
/// of nanoseconds holds. NaN is out of range too (Go would turn it into
/// an arbitrary duration).
fn out_of_range(secs: f64) -> bool {
    const LIMIT: f64 = 9_223_372_036.854_776; // 2^63 / 1e9
    !(-LIMIT..=LIMIT).contains(&secs)
}

/// Seconds to milliseconds as Prometheus does: rounded to nanoseconds,
/// then truncated to milliseconds.
///
/// Except where the seconds cannot tell: a duration written in whole
/// milliseconds (`14144d23h13m42s222ms`) reaches here as f64 seconds, and
/// past 2^53 ns (104 days) its nearest f64 may lie a few hundred ns below
/// the millisecond, which truncation would lose, so printing an offset
/// and parsing it back would move it. When a whole millisecond is within
/// the value's own precision, it is the answer.
pub(crate) fn seconds_to_ms(secs: f64) -> i64 {
    let ms = secs * 1e3;
    let whole = ms.round();
    let ulp = f64::from_bits(secs.abs().to_bits() + 1) - secs.abs();
    if (ms - whole).abs() <= ulp * 1e3 {
        return whole as i64;
    }
    let ns = (secs * 1e9).round();
    // `as` saturates; the range check keeps |ns| within i64 anyway.
    (ns as i64) / 1_000_000
}

fn duration_binary_op(kind: TokenKind) -> Option<BinaryOp> {
    Some(match kind {
        TokenKind::Add => BinaryOp::Add,
        TokenKind::Sub => BinaryOp::Sub,
        TokenKind::Mul => BinaryOp::Mul,
        TokenKind::Div => BinaryOp::Div,
        TokenKind::Mod => BinaryOp::Mod,
        TokenKind::Pow => BinaryOp::Pow,
        _ => None?,
    })
}

impl Parser<'_> {
    /// A range or subquery step: must be positive when it is a literal.
    pub(crate) fn positive_duration(&mut self) -> Result<Duration, ParseError> {
        self.duration_nodes = 0;
        match self.duration_expr(0)? {
            Dur::Literal(v, pos) => {
                let ms = seconds_to_ms(v);
                // Prometheus checks the number; Silt also rejects what
                // rounds to 0 ms, which would print as an invalid `0s`.
                if v <= 0.0 || ms <= 0 {
                    return Err(self.error(pos, "duration must be greater than 0"));
                }
                Ok(Duration::Literal(ms))
            }
            Dur::Expr(e) => Ok(Duration::Expr(Box::new(e))),
        }
    }

    /// The duration after `offset`. A literal, `step()`, `range()`,
    /// `min_of`/`max_of(...)` or a signed form of these ends the offset
    /// (`foo offset 5m + 1` adds 1 to the selector); an expression in
    /// parentheses continues with duration operators, as Prometheus's
    /// grammar resolves it. `None` for a zero literal (no offset).
    pub(crate) fn offset_duration(&mut self) -> Result<Option<Duration>, ParseError> {
        self.duration_nodes = 0;
        let d = match self.peek_kind()? {
            TokenKind::Add | TokenKind::Sub => {
                let sign = self.next()?;
                match self.peek_kind()? {
                    TokenKind::LeftParen
                    | TokenKind::Number
                    | TokenKind::Duration
                    | TokenKind::Keyword(
                        Keyword::Step | Keyword::Range | Keyword::MinOf | Keyword::MaxOf,
                    ) => {
                        let inner = self.duration_primary(false)?;
                        self.apply_sign(&sign, inner)?
                    }
                    _ => {
                        let inner = self.duration_expr(6)?;
                        let lhs = self.apply_sign(&sign, inner)?;
                        self.duration_binary(lhs, 0)?
                    }
                }
            }
            TokenKind::LeftParen => self.duration_expr(0)?,
            _ => self.duration_primary(true)?,
        };
        Ok(match d {
            Dur::Literal(v, _) => match seconds_to_ms(v) {
                0 => None,
                ms => Some(Duration::Literal(ms)),
            },
            Dur::Expr(e) => Some(Duration::Expr(Box::new(e))),
        })
    }

    /// A duration expression whose operators all have at least `min_prec`.
    fn duration_expr(&mut self, min_prec: u8) -> Result<Dur, ParseError> {
        self.enter()?;
        let parsed = self.duration_expr_nested(min_prec);
        self.nesting -= 1;
        parsed
    }

    /// Counts an inner node of the duration being parsed (an operator, a
    /// sign, parentheses, `min_of`/`max_of`), refused past [`MAX_DEPTH`]:
    /// a tree is no deeper than its inner nodes.
    fn duration_node(&mut self, pos: usize) -> Result<(), ParseError> {
        self.duration_nodes += 1;
        if self.duration_nodes > MAX_DEPTH {
            return Err(self.too_deep(pos));
        }
        Ok(())
    }

    fn duration_expr_nested(&mut self, min_prec: u8) -> Result<Dur, ParseError> {
        let lhs = if matches!(self.peek_kind()?, TokenKind::Add | TokenKind::Sub) {
            let sign = self.next()?;
            self.duration_node(sign.pos)?;
            // Unary operators bind like `*`.
            let inner = self.duration_expr(6)?;
            self.apply_sign(&sign, inner)?
        } else {
            self.duration_primary(true)?
        };
        self.duration_binary(lhs, min_prec)
    }

    fn duration_binary(&mut self, mut lhs: Dur, min_prec: u8) -> Result<Dur, ParseError> {
        loop {
            let Some(op) = duration_binary_op(self.peek_kind()?) else {
                return Ok(lhs);
            };
            let prec = op.precedence();
            if prec < min_prec {
                return Ok(lhs);
            }
            let op_tok = self.next()?;
            self.duration_node(op_tok.pos)?;
            let next_min = if op.is_right_associative() {
                prec
            } else {
                prec + 1
            };
            let rhs = self.duration_expr(next_min)?;
            if let Dur::Literal(v, _) = rhs {
                if v == 0.0 && op == BinaryOp::Div {
                    return Err(self.error(op_tok.pos, "division by zero"));
                }
                if v == 0.0 && op == BinaryOp::Mod {
                    return Err(self.error(op_tok.pos, "modulo by zero"));
                }
            }
            lhs = Dur::Expr(DurationExpr::Binary(
                op,
                Box::new(lhs.into_expr()),
                Box::new(rhs.into_expr()),
            ));
        }
    }

    /// Prometheus's `applyUnaryOpToDurationExpr`: a sign folds into a
    /// literal; `-` on an expression negates it, `+` disappears.
    fn apply_sign(&self, sign: &Token<'_>, inner: Dur) -> Result<Dur, ParseError> {
        let negative = sign.kind == TokenKind::Sub;
        match inner {
            Dur::Literal(v, _) => {
                let v = if negative { -v } else { v };
                if out_of_range(v) {
                    return Err(self.error(sign.pos, "duration out of range"));
                }
                Ok(Dur::Literal(v, sign.pos))
            }
            Dur::Expr(e) if negative => Ok(Dur::Expr(DurationExpr::Neg(Box::new(e)))),
            Dur::Expr(e) => Ok(Dur::Expr(e)),
        }
    }

    /// A literal, `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` or a
    /// parenthesised duration expression.
    fn duration_primary(&mut self, check_range: bool) -> Result<Dur, ParseError> {
        let tok = self.next()?;
        match tok.kind {
            TokenKind::Number | TokenKind::Duration => {
                let v = self.number_value(&tok)?;
                if check_range && out_of_range(v) {
                    return Err(self.error(tok.pos, "duration out of range"));
                }
                Ok(Dur::Literal(v, tok.pos))
            }
            TokenKind::Keyword(k @ (Keyword::Step | Keyword::Range)) => {
                self.expect(TokenKind::LeftParen)?;
                self.expect(TokenKind::RightParen)?;
                Ok(Dur::Expr(if k == Keyword::Step {
                    DurationExpr::Step
                } else {
                    DurationExpr::Range
                }))
            }
            TokenKind::Keyword(k @ (Keyword::MinOf | Keyword::MaxOf)) => {
                self.duration_node(tok.pos)?;
                self.expect(TokenKind::LeftParen)?;
                let a = Box::new(self.duration_expr(0)?.into_expr());
                self.expect(TokenKind::Comma)?;
                let b = Box::new(self.duration_expr(0)?.into_expr());
                self.expect(TokenKind::RightParen)?;
                Ok(Dur::Expr(if k == Keyword::MinOf {
                    DurationExpr::MinOf(a, b)
                } else {
                    DurationExpr::MaxOf(a, b)
                }))
            }
            TokenKind::LeftParen => {
                self.duration_node(tok.pos)?;
                let inner = self.duration_expr(0)?.into_expr();
                self.expect(TokenKind::RightParen)?;
                Ok(Dur::Expr(DurationExpr::Paren(Box::new(inner))))
            }
            _ => Err(self.unexpected(&tok)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_like_prometheus() {
        assert_eq!(seconds_to_ms(300.0), 300_000);
        assert_eq!(seconds_to_ms(4.018), 4018);
        assert_eq!(seconds_to_ms(-0.0015), -1, "truncated toward zero");
        assert_eq!(seconds_to_ms(0.0001), 0);
        // 14144d23h13m42s222ms as f64 seconds is 1222125222.2219998…;
        // through nanoseconds it would truncate to …221 ms (found by
        // fuzzing: an offset printed and parsed back moved by 1 ms).
        let long = 1_222_125_222_222_i64;
        assert_eq!(seconds_to_ms(long as f64 / 1e3), long);
        assert_eq!(seconds_to_ms(-(long as f64) / 1e3), -long);
        assert_eq!(seconds_to_ms(1_222_125_222.222_222), long);
        assert!(out_of_range(9.5e10) && out_of_range(f64::NAN) && out_of_range(-1e10));
        assert!(!out_of_range(9e9));
    }
}
