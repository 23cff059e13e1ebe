//! The PromQL parse error: a message and where it happened, printed the way
//! Prometheus prints it (`1:5: parse error: unexpected ...`).

use std::fmt;

/// A syntax or validation error in PromQL input. The parser never panics;
/// every problem with the input ends up here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// What went wrong, in Prometheus's wording.
    pub message: String,
    /// Byte offset into the input of the item the error is about.
    pub position: usize,
    /// 1-based line of `position`; 0 when the input was empty (Prometheus
    /// then prints `unknown position`).
    pub line: usize,
    /// 1-based column of `position`, counted in bytes from the line start.
    pub column: usize,
}

impl ParseError {
    /// An error about the item at byte `position` of `input`.
    pub fn at(input: &str, position: usize, message: impl Into<String>) -> ParseError {
        let message = message.into();
        if input.is_empty() {
            return ParseError {
                message,
                position: 0,
                line: 0,
                column: 0,
            };
        }
        let position = position.min(input.len());
        let before = input.as_bytes().get(..position).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ParseError {
            message,
            position,
            line,
            column: position - line_start + 1,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "unknown position: parse error: {}", self.message)
        } else {
            write!(
                f,
                "{}:{}: parse error: {}",
                self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_line_and_byte_column() {
        let e = ParseError::at("foo{", 4, "x");
        assert_eq!((e.line, e.column), (1, 5));
        assert_eq!(e.to_string(), "1:5: parse error: x");
        let e = ParseError::at("a\nbc\nd", 6, "y");
        assert_eq!((e.line, e.column), (3, 2));
        let e = ParseError::at("é{", 2, "z");
        assert_eq!(e.column, 3, "columns count bytes, as in Prometheus");
    }

    #[test]
    fn empty_input_has_unknown_position() {
        let e = ParseError::at("", 0, "unexpected end of input");
        assert_eq!(
            e.to_string(),
            "unknown position: parse error: unexpected end of input"
        );
    }
}
