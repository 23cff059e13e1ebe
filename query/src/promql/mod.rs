//! Silt's PromQL front end. Today: series selectors, parsed exactly as
//! Prometheus 3 accepts them. The layout is the full parser's: `lex`
//! (nom helpers for strings, identifiers, numbers, durations), `lexer`
//! (the token stream with Prometheus's modes and messages), `error`, and
//! one module per grammar concept (`selector` now; expressions, functions,
//! aggregations, binary operators and subqueries later).

pub mod error;
pub mod lex;
pub mod lexer;
pub mod selector;

pub use error::ParseError;
pub use lex::{DurationError, parse_duration};
pub use selector::{
    DisplayMatcher, VectorSelector, format_matchers, parse_selector, parse_vector_selector,
};
