//! Parse and execution errors, printed the way Go's text/template prints them.

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("unclosed action")]
    UnclosedAction,
    #[error("unclosed action started at {name}:{line}")]
    UnclosedActionStartedAt { name: String, line: usize },
    #[error("unclosed comment")]
    UnclosedComment,
    #[error("comment ends before closing delimiter")]
    BadComment,
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unterminated raw quoted string")]
    UnterminatedRawString,
    #[error("unterminated character constant")]
    UnterminatedChar,
    #[error("{0}")]
    BadEscape(String),
    #[error("bad number syntax: {0:?}")]
    BadNumber(String),
    #[error("bad character {}", hash_u(*.0))]
    BadCharacter(char),
    #[error("unrecognized character in action: {}", hash_u(*.0))]
    UnrecognizedCharacter(char),
    #[error("expected :=")]
    ExpectedDeclare,
    #[error("unexpected {0} in {1}")]
    Unexpected(String, &'static str),
    #[error("unexpected {0}")]
    UnexpectedNode(&'static str),
    #[error("expected end; found {0}")]
    ExpectedEnd(&'static str),
    #[error("function {0:?} not defined")]
    UndefinedFunction(String),
    #[error("undefined variable {0:?}")]
    UndefinedVariable(String),
    #[error("missing value for {0}")]
    MissingValue(&'static str),
    #[error("empty command")]
    EmptyCommand,
    #[error("non executable command in pipeline stage {0}")]
    NonExecutable(usize),
    #[error("unexpected . after term {0:?}")]
    DotAfterTerm(String),
    #[error("{{{{{0}}}}} outside {{{{range}}}}")]
    OutsideRange(&'static str),
    #[error("too many declarations in {0}")]
    TooManyDecls(&'static str),
    #[error("template: multiple definition of template {0:?}")]
    MultipleDefinition(String),
    #[error("unclosed left paren")]
    UnclosedParen,
    #[error("unexpected right paren")]
    UnexpectedRightParen,
    #[error("max control structure depth exceeded")]
    ControlTooDeep,
    #[error("max expression depth exceeded")]
    ExprTooDeep,
    #[error("range can only initialize variables")]
    RangeInitNotVariable,
}

/// A template that did not parse: `template: <name>:<line>: <message>`, as
/// Go prints it (Go reports the line only; `col` is kept for callers).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}: {kind}")]
pub struct ParseError {
    /// The name given to [`crate::Template::parse`].
    pub name: String,
    /// 1-based line of the offending token.
    pub line: usize,
    /// 0-based byte column of the offending token.
    pub col: usize,
    pub kind: ParseErrorKind,
}

/// Why a template failed to execute.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecErrorKind {
    #[error("no such template {0:?}")]
    NoSuchTemplate(String),
    #[error("template {0:?} not defined")]
    UndefinedTemplate(String),
    #[error("error calling {name}: {message}")]
    Func { name: String, message: String },
    #[error("{0:?} is not a defined function")]
    NotAFunction(String),
    #[error("can't give argument to non-function {0}")]
    ArgToNonFunction(String),
    #[error("nil is not a command")]
    NilCommand,
    #[error("can't evaluate field {field} in type {type_name}")]
    BadField {
        field: String,
        type_name: &'static str,
    },
    #[error("nil data; no entry for key {0:?}")]
    NilField(String),
    #[error("{0} is not a method but has arguments")]
    NotAMethod(String),
    /// A wrong argument count or type, as Go's executor words it.
    #[error("{0}")]
    BadArgs(String),
    #[error("map has no entry for key {0:?}")]
    MissingKey(String),
    #[error("range can't iterate over {0}")]
    CantRange(String),
    #[error("can't use {0} to iterate over more than one variable")]
    RangeTwoVars(String),
    #[error("exceeded maximum template depth ({0})")]
    TooDeep(usize),
    #[error("template output exceeds {0} bytes")]
    OutputTooLarge(usize),
    #[error("template execution exceeded {0} steps")]
    TooManySteps(u64),
    #[error("undefined variable: {0}")]
    UndefinedVariable(String),
}

/// A template that failed while executing, printed like Go:
/// `template: <name>:<line>:<col>: executing "<name>" at <context>: <message>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", exec_message(.parse_name, .name, *.line, *.col, .context, .kind))]
pub struct ExecError {
    /// The name the failing text was parsed under.
    pub parse_name: String,
    /// The template being executed.
    pub name: String,
    pub line: usize,
    pub col: usize,
    /// The failing node as source text (shortened to 20 chars like Go).
    pub context: String,
    pub kind: ExecErrorKind,
}

fn exec_message(
    parse_name: &str,
    name: &str,
    line: usize,
    col: usize,
    context: &str,
    kind: &ExecErrorKind,
) -> String {
    match kind {
        // Go: ExecuteTemplate with an unknown name.
        ExecErrorKind::NoSuchTemplate(n) => format!(
            "template: no template {} associated with template \"\"",
            crate::printf::go_quote(n)
        ),
        _ => format!(
            "template: {parse_name}:{line}:{col}: executing {} at <{context}>: {kind}",
            crate::printf::go_quote(name)
        ),
    }
}

/// Go's `%#U`: `U+0023 '#'`, or `U+00A0` for a character Go does not print.
fn hash_u(c: char) -> String {
    let printable = c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'));
    if printable {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Line (1-based) and byte column (0-based) of `pos` in `text`, as Go's
/// `ErrorContext` computes them.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.as_bytes().get(..pos).unwrap_or_default();
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl - 1,
        None => pos,
    };
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_go() {
        let e = ParseError {
            name: "t".into(),
            line: 3,
            col: 1,
            kind: ParseErrorKind::UndefinedFunction("nope".into()),
        };
        assert_eq!(
            e.to_string(),
            r#"template: t:3: function "nope" not defined"#
        );
        let e = ExecError {
            parse_name: "t".into(),
            name: "t".into(),
            line: 1,
            col: 11,
            context: "{{template \"x\"}}".into(),
            kind: ExecErrorKind::UndefinedTemplate("x".into()),
        };
        assert_eq!(
            e.to_string(),
            r#"template: t:1:11: executing "t" at <{{template "x"}}>: template "x" not defined"#
        );
        assert_eq!(
            ParseErrorKind::OutsideRange("break").to_string(),
            "{{break}} outside {{range}}"
        );
    }

    #[test]
    fn line_col_counts_bytes() {
        assert_eq!(line_col("abc", 2), (1, 2));
        assert_eq!(line_col("a\nbc", 3), (2, 1));
        assert_eq!(line_col("a\n", 99), (2, 0));
    }
}
