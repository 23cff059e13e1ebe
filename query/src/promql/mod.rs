//! Silt's PromQL front end: the whole grammar of Prometheus 3, including
//! its experimental parts (duration expressions, `fill` modifiers,
//! `anchored` / `smoothed`, experimental functions), parsed and type
//! checked exactly as Prometheus does, with its error messages.
//!
//! Layout: `lex` (nom helpers for strings, identifiers, numbers,
//! durations), `lexer` (the token stream with Prometheus's modes and
//! messages), `parser` (expressions, by precedence climbing),
//! `durations` (duration expressions), `selector` (series selectors, also
//! used alone by the HTTP API), `check` (type checking), `functions` (the
//! function table), `printer` (canonical PromQL), `ast` (the tree),
//! `error`.

pub mod ast;
mod check;
mod durations;
pub mod error;
pub mod functions;
pub mod lex;
pub mod lexer;
mod parser;
pub mod printer;
pub mod selector;
pub mod series;
mod tree_eq;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use error::ParseError;
pub use lex::{DurationError, parse_duration};
pub use parser::MAX_DEPTH;
pub use printer::{format_duration_ms, pretty};
pub use selector::{
    DisplayMatcher, VectorSelector, format_matchers, parse_selector, parse_vector_selector,
};
pub use tree_eq::same_tree;

/// Parses and type-checks a PromQL expression, as Prometheus's
/// `ParseExpr` with every experimental feature enabled. The error is the
/// first one Prometheus would report, worded and positioned as Prometheus
/// does (`1:5: parse error: unexpected <op:+>`). Never panics.
pub fn parse(input: &str) -> Result<ast::Expr, ParseError> {
    let (mut expr, span) = parser::parse_unchecked(input)?;
    check::Checker { input }.check(&mut expr, &span)?;
    Ok(expr)
}

/// What `/api/v1/format_query` returns: the query parsed and printed back
/// as Prometheus's `Pretty(0)` does.
pub fn format_query(input: &str) -> Result<String, ParseError> {
    parse(input).map(|e| pretty(&e))
}
