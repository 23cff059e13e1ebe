//! The PromQL token stream: turns input into tokens on demand, with
//! Prometheus's lexing modes (statements; inside `{...}` where every word
//! is a label name; right after `[` where only duration expressions are
//! allowed) and its error messages. Comments and whitespace are skipped
//! here.

use super::error::ParseError;
use super::lex::{self, LexError, NumberKind};
use crate::gofmt;

/// PromQL keywords (case-insensitive in the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    And,
    Or,
    Unless,
    Atan2,
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
    Offset,
    Smoothed,
    Anchored,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Bool,
    Start,
    End,
    Step,
    Range,
    MaxOf,
    MinOf,
}

/// How Prometheus describes a keyword token in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeywordClass {
    Operator,
    Aggregator,
    Keyword,
    Preprocessor,
}

impl Keyword {
    /// Looks a word up, ignoring case. `inf` and `nan` are numbers, not keywords.
    pub fn lookup(word: &str) -> Option<Keyword> {
        use Keyword::*;
        const TABLE: [(&str, Keyword); 37] = [
            ("and", And),
            ("or", Or),
            ("unless", Unless),
            ("atan2", Atan2),
            ("sum", Sum),
            ("avg", Avg),
            ("count", Count),
            ("min", Min),
            ("max", Max),
            ("group", Group),
            ("stddev", Stddev),
            ("stdvar", Stdvar),
            ("topk", Topk),
            ("bottomk", Bottomk),
            ("count_values", CountValues),
            ("quantile", Quantile),
            ("limitk", Limitk),
            ("limit_ratio", LimitRatio),
            ("offset", Offset),
            ("smoothed", Smoothed),
            ("anchored", Anchored),
            ("by", By),
            ("without", Without),
            ("on", On),
            ("ignoring", Ignoring),
            ("group_left", GroupLeft),
            ("group_right", GroupRight),
            ("fill", Fill),
            ("fill_left", FillLeft),
            ("fill_right", FillRight),
            ("bool", Bool),
            ("start", Start),
            ("end", End),
            ("step", Step),
            ("range", Range),
            ("max_of", MaxOf),
            ("min_of", MinOf),
        ];
        TABLE
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, k)| *k)
    }

    fn class(self) -> KeywordClass {
        use Keyword::*;
        match self {
            And | Or | Unless | Atan2 => KeywordClass::Operator,
            Sum | Avg | Count | Min | Max | Group | Stddev | Stdvar | Topk | Bottomk
            | CountValues | Quantile | Limitk | LimitRatio => KeywordClass::Aggregator,
            Start | End | Step | Range | MaxOf | MinOf => KeywordClass::Preprocessor,
            Offset | Smoothed | Anchored | By | Without | On | Ignoring | GroupLeft
            | GroupRight | Fill | FillLeft | FillRight | Bool => KeywordClass::Keyword,
        }
    }

    /// Can this keyword also serve as a metric name (`sum{job="x"}`)?
    /// Prometheus's `metric_identifier` grammar rule lists these.
    pub fn is_metric_identifier(self) -> bool {
        use Keyword::*;
        !matches!(self, Atan2 | On | Ignoring | GroupLeft | GroupRight | Bool)
    }

    /// Aggregation operators (`sum`, `topk`, ...).
    pub fn is_aggregator(self) -> bool {
        self.class() == KeywordClass::Aggregator
    }
}

/// Kinds of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Eof,
    Identifier,
    MetricIdentifier,
    Keyword(Keyword),
    Number,
    Duration,
    String,
    LeftBrace,
    RightBrace,
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Colon,
    Comma,
    Eql,
    Neq,
    EqlRegex,
    NeqRegex,
    EqlC,
    Lss,
    Lte,
    Gtr,
    Gte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    At,
    /// `</` (experimental native-histogram trim operator).
    TrimUpper,
    /// `>/`.
    TrimLower,
}

impl TokenKind {
    /// Operators are described as `<op:...>` in error messages.
    fn is_operator(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Add | Div
                | EqlC
                | EqlRegex
                | Gte
                | Gtr
                | Lss
                | Lte
                | Mod
                | Mul
                | Neq
                | NeqRegex
                | Pow
                | Sub
                | At
                | TrimUpper
                | TrimLower
        )
    }
}

/// One token: kind, byte position, source text and, for strings, the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Token<'a> {
    pub kind: TokenKind,
    pub pos: usize,
    pub text: &'a str,
    /// The unquoted value of a string token.
    pub value: Option<String>,
}

impl Token<'_> {
    /// Prometheus's `Item.desc()`, used in "unexpected ..." messages.
    pub fn desc(&self) -> String {
        let quoted = || gofmt::quote(self.text);
        match self.kind {
            TokenKind::Eof => "end of input".to_string(),
            TokenKind::Identifier => format!("identifier {}", quoted()),
            TokenKind::MetricIdentifier => format!("metric identifier {}", quoted()),
            TokenKind::Number => format!("number {}", gofmt::quote_truncated(self.text)),
            TokenKind::Duration => format!("duration {}", gofmt::quote_truncated(self.text)),
            TokenKind::String => format!("string {}", gofmt::quote_truncated(self.text)),
            TokenKind::Keyword(k) => match k.class() {
                KeywordClass::Operator => format!("<op:{}>", self.text),
                KeywordClass::Aggregator => format!("<aggr:{}>", self.text),
                KeywordClass::Keyword => format!("<{}>", self.text),
                KeywordClass::Preprocessor => quoted(),
            },
            kind if kind.is_operator() => format!("<op:{}>", self.text),
            _ => quoted(),
        }
    }
}

/// Produces tokens on demand; the first error ends lexing.
pub struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    brace_open: bool,
    paren_depth: i32,
    /// A `[` is open.
    bracket_open: bool,
    /// Right after `[` (Prometheus's `lexDurationExpr` state): only
    /// numbers, durations, operators, parentheses and duration functions;
    /// the first number switches back to the statement state.
    duration_mode: bool,
    /// A `:` was seen since the last `[`.
    got_colon: bool,
    /// A number was lexed in the duration state (never reset, as in
    /// Prometheus).
    got_duration: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            pos: 0,
            brace_open: false,
            paren_depth: 0,
            bracket_open: false,
            duration_mode: false,
            got_colon: false,
            got_duration: false,
        }
    }

    /// The whole input being lexed.
    pub fn input(&self) -> &'a str {
        self.input
    }

    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::at(self.input, pos, message)
    }

    fn lex_error(&self, e: nom::Err<LexError>) -> ParseError {
        match e {
            nom::Err::Failure(e) | nom::Err::Error(e) => {
                let pos = e.position_in(self.input);
                self.error(
                    pos,
                    e.message.unwrap_or_else(|| "unexpected input".to_string()),
                )
            }
            nom::Err::Incomplete(_) => self.error(self.input.len(), "unexpected end of input"),
        }
    }

    fn token(&mut self, kind: TokenKind, start: usize, len: usize) -> Token<'a> {
        let input = self.input;
        self.pos = start + len;
        Token {
            kind,
            pos: start,
            text: &input[start..start + len],
            value: None,
        }
    }

    /// The next token, or the lexer's error.
    pub fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        let input = self.input;
        if self.duration_mode {
            return self.duration_expr();
        }
        let rest = lex::skip_space_and_comments(&input[self.pos..]);
        let start = input.len() - rest.len();
        self.pos = start;
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            if self.brace_open {
                return Err(self.error(start, "unexpected end of input inside braces"));
            }
            if self.paren_depth != 0 {
                return Err(self.error(start, "unclosed left parenthesis"));
            }
            if self.bracket_open {
                return Err(self.error(start, "unclosed left bracket"));
            }
            return Ok(self.token(TokenKind::Eof, start, 0));
        };
        let next = chars.next();
        if self.brace_open {
            self.inside_braces(rest, start, c, next)
        } else {
            self.statement(rest, start, c, next)
        }
    }

    fn string(&mut self, rest: &'a str, start: usize) -> Result<Token<'a>, ParseError> {
        let (after, value) = lex::string_literal(rest).map_err(|e| self.lex_error(e))?;
        let mut tok = self.token(TokenKind::String, start, rest.len() - after.len());
        tok.value = Some(value);
        Ok(tok)
    }

    fn inside_braces(
        &mut self,
        rest: &'a str,
        start: usize,
        c: char,
        next: Option<char>,
    ) -> Result<Token<'a>, ParseError> {
        use TokenKind::*;
        match c {
            c if lex::is_alpha(c) => {
                let (after, _) = lex::label_identifier(rest).map_err(|e| self.lex_error(e))?;
                Ok(self.token(Identifier, start, rest.len() - after.len()))
            }
            ',' => Ok(self.token(Comma, start, 1)),
            '"' | '\'' | '`' => self.string(rest, start),
            '=' if next == Some('~') => Ok(self.token(EqlRegex, start, 2)),
            '=' => Ok(self.token(Eql, start, 1)),
            '!' => match next {
                Some('~') => Ok(self.token(NeqRegex, start, 2)),
                Some('=') => Ok(self.token(Neq, start, 2)),
                other => Err(self.error(
                    start,
                    format!(
                        "unexpected character after '!' inside braces: {}",
                        gofmt::quote_rune(other)
                    ),
                )),
            },
            '{' => Err(self.error(start, "unexpected left brace '{'")),
            '}' => {
                self.brace_open = false;
                Ok(self.token(RightBrace, start, 1))
            }
            c => Err(self.error(
                start,
                format!(
                    "unexpected character inside braces: {}",
                    gofmt::quote_rune(Some(c))
                ),
            )),
        }
    }

    fn statement(
        &mut self,
        rest: &'a str,
        start: usize,
        c: char,
        next: Option<char>,
    ) -> Result<Token<'a>, ParseError> {
        use TokenKind::*;
        match c {
            ',' => Ok(self.token(Comma, start, 1)),
            '*' => Ok(self.token(Mul, start, 1)),
            '/' => Ok(self.token(Div, start, 1)),
            '%' => Ok(self.token(Mod, start, 1)),
            '+' => Ok(self.token(Add, start, 1)),
            '-' => Ok(self.token(Sub, start, 1)),
            '^' => Ok(self.token(Pow, start, 1)),
            '@' => Ok(self.token(At, start, 1)),
            '=' => match next {
                Some('=') => Ok(self.token(EqlC, start, 2)),
                Some('~') => Err(self.error(start, "unexpected character after '=': '~'")),
                _ => Ok(self.token(Eql, start, 1)),
            },
            '!' => match next {
                Some('=') => Ok(self.token(Neq, start, 2)),
                other => Err(self.error(
                    start,
                    format!(
                        "unexpected character after '!': {}",
                        gofmt::quote_rune(other)
                    ),
                )),
            },
            '<' if next == Some('=') => Ok(self.token(Lte, start, 2)),
            '<' if next == Some('/') => Ok(self.token(TrimUpper, start, 2)),
            '<' => Ok(self.token(Lss, start, 1)),
            '>' if next == Some('=') => Ok(self.token(Gte, start, 2)),
            '>' if next == Some('/') => Ok(self.token(TrimLower, start, 2)),
            '>' => Ok(self.token(Gtr, start, 1)),
            c if lex::is_digit(c) || (c == '.' && next.is_some_and(lex::is_digit)) => {
                self.number(rest, start)
            }
            '"' | '\'' | '`' => self.string(rest, start),
            c if (lex::is_alpha(c) || c == ':') && self.bracket_open => {
                self.inside_brackets(rest, start, c)
            }
            c if lex::is_alpha(c) || c == ':' => self.keyword_or_identifier(rest, start),
            '(' => {
                self.paren_depth += 1;
                Ok(self.token(LeftParen, start, 1))
            }
            ')' => {
                self.paren_depth -= 1;
                let tok = self.token(RightParen, start, 1);
                if self.paren_depth < 0 {
                    // Prometheus reports this after emitting the parenthesis,
                    // so the position is just past it.
                    return Err(self.error(start + 1, "unexpected right parenthesis ')'"));
                }
                Ok(tok)
            }
            '{' => {
                self.brace_open = true;
                Ok(self.token(LeftBrace, start, 1))
            }
            '[' if self.bracket_open => Err(self.error(start, "unexpected left bracket '['")),
            '[' => {
                self.got_colon = false;
                let tok = self.token(LeftBracket, start, 1);
                self.bracket_open = true;
                self.duration_mode = true;
                Ok(tok)
            }
            ']' if self.bracket_open => {
                self.bracket_open = false;
                Ok(self.token(RightBracket, start, 1))
            }
            ']' => Err(self.error(start, "unexpected right bracket ']'")),
            c => Err(self.error(
                start,
                format!("unexpected character: {}", gofmt::quote_rune(Some(c))),
            )),
        }
    }

    /// A number or duration token (both lexing states).
    fn number(&mut self, rest: &'a str, start: usize) -> Result<Token<'a>, ParseError> {
        let (after, (kind, _)) = lex::number_or_duration(rest).map_err(|e| self.lex_error(e))?;
        let kind = match kind {
            NumberKind::Number => TokenKind::Number,
            NumberKind::Duration => TokenKind::Duration,
        };
        Ok(self.token(kind, start, rest.len() - after.len()))
    }

    /// A letter or `:` in the statement state while a `[` is open: a colon
    /// or a duration function name; anything else is an error.
    fn inside_brackets(
        &mut self,
        rest: &'a str,
        start: usize,
        c: char,
    ) -> Result<Token<'a>, ParseError> {
        if c == ':' {
            if self.got_colon {
                return Err(self.error(start, "unexpected colon ':'"));
            }
            self.got_colon = true;
            return Ok(self.token(TokenKind::Colon, start, 1));
        }
        if let Some(tok) = self.duration_keyword(rest, start) {
            return Ok(tok);
        }
        Err(self.error(
            start,
            format!(
                "unexpected character: {}, expected ':'",
                gofmt::quote_rune(Some(c))
            ),
        ))
    }

    /// `step`, `range`, `max_of` or `min_of` (any case) at `rest`.
    fn duration_keyword(&mut self, rest: &'a str, start: usize) -> Option<Token<'a>> {
        let first = rest.chars().next()?.to_ascii_lowercase();
        if !matches!(first, 's' | 'r' | 'm') {
            return None;
        }
        let word_len = rest.len() - rest.trim_start_matches(lex::is_alpha).len();
        let kind = match rest[..word_len].to_ascii_lowercase().as_str() {
            "step" => Keyword::Step,
            "range" => Keyword::Range,
            "max_of" => Keyword::MaxOf,
            "min_of" => Keyword::MinOf,
            _ => return None,
        };
        Some(self.token(TokenKind::Keyword(kind), start, word_len))
    }

    /// Prometheus's `lexDurationExpr`: the state right after `[`.
    fn duration_expr(&mut self) -> Result<Token<'a>, ParseError> {
        use TokenKind::*;
        let input = self.input;
        let rest = input[self.pos..].trim_start_matches(lex::is_space);
        let start = input.len() - rest.len();
        self.pos = start;
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return Err(self.error(start, "unexpected end of input in duration expression"));
        };
        let next = chars.next();
        match c {
            ']' => {
                self.bracket_open = false;
                self.got_colon = false;
                self.duration_mode = false;
                Ok(self.token(RightBracket, start, 1))
            }
            ':' => {
                // Prometheus emits the colon, then reports just past it.
                if !self.got_duration {
                    return Err(self.error(
                        start + 1,
                        "unexpected colon before duration in duration expression",
                    ));
                }
                if self.got_colon {
                    return Err(self.error(
                        start + 1,
                        "unexpected repeated colon in duration expression",
                    ));
                }
                self.got_colon = true;
                Ok(self.token(Colon, start, 1))
            }
            '(' => {
                self.paren_depth += 1;
                Ok(self.token(LeftParen, start, 1))
            }
            ')' => {
                self.paren_depth -= 1;
                let tok = self.token(RightParen, start, 1);
                if self.paren_depth < 0 {
                    return Err(self.error(start + 1, "unexpected right parenthesis ')'"));
                }
                Ok(tok)
            }
            '+' => Ok(self.token(Add, start, 1)),
            '-' => Ok(self.token(Sub, start, 1)),
            '*' => Ok(self.token(Mul, start, 1)),
            '/' => Ok(self.token(Div, start, 1)),
            '%' => Ok(self.token(Mod, start, 1)),
            '^' => Ok(self.token(Pow, start, 1)),
            ',' => Ok(self.token(Comma, start, 1)),
            c if lex::is_digit(c) || (c == '.' && next.is_some_and(lex::is_digit)) => {
                self.got_duration = true;
                self.duration_mode = false;
                self.number(rest, start)
            }
            c => match self.duration_keyword(rest, start) {
                Some(tok) => Ok(tok),
                None => Err(self.error(
                    start,
                    format!(
                        "unexpected character in duration expression: {}",
                        gofmt::quote_rune(Some(c))
                    ),
                )),
            },
        }
    }

    fn keyword_or_identifier(
        &mut self,
        rest: &'a str,
        start: usize,
    ) -> Result<Token<'a>, ParseError> {
        let (after, word) = lex::metric_identifier(rest).map_err(|e| self.lex_error(e))?;
        let len = rest.len() - after.len();
        let kind = if word.contains(':') {
            TokenKind::MetricIdentifier
        } else if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
            TokenKind::Number
        } else {
            match Keyword::lookup(word) {
                // fill modifiers are keywords only right before '('.
                Some(Keyword::Fill | Keyword::FillLeft | Keyword::FillRight)
                    if !after.trim_start_matches(lex::is_space).starts_with('(') =>
                {
                    TokenKind::Identifier
                }
                Some(k) => TokenKind::Keyword(k),
                None => TokenKind::Identifier,
            }
        };
        Ok(self.token(kind, start, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Result<Vec<(TokenKind, &str)>, String> {
        let mut lx = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().map_err(|e| e.to_string())?;
            if t.kind == TokenKind::Eof {
                return Ok(out);
            }
            out.push((t.kind, t.text));
        }
    }

    #[test]
    fn statement_and_brace_modes() {
        use TokenKind::*;
        assert_eq!(
            kinds("sum:x{by=~'a', on!=\"b\"} # c"),
            Ok(vec![
                (MetricIdentifier, "sum:x"),
                (LeftBrace, "{"),
                (Identifier, "by"),
                (EqlRegex, "=~"),
                (String, "'a'"),
                (Comma, ","),
                (Identifier, "on"),
                (Neq, "!="),
                (String, "\"b\""),
                (RightBrace, "}"),
            ])
        );
        assert_eq!(
            kinds("sum on Inf 5m fill fill(  ) == >= !="),
            Ok(vec![
                (Keyword(super::Keyword::Sum), "sum"),
                (Keyword(super::Keyword::On), "on"),
                (Number, "Inf"),
                (Duration, "5m"),
                (Identifier, "fill"),
                (Keyword(super::Keyword::Fill), "fill"),
                (LeftParen, "("),
                (RightParen, ")"),
                (EqlC, "=="),
                (Gte, ">="),
                (Neq, "!="),
            ])
        );
    }

    #[test]
    fn lexer_errors_match_prometheus() {
        assert_eq!(
            kinds("foo{").unwrap_err(),
            "1:5: parse error: unexpected end of input inside braces"
        );
        assert_eq!(
            kinds("{a!b}").unwrap_err(),
            "1:3: parse error: unexpected character after '!' inside braces: 'b'"
        );
        assert_eq!(
            kinds("{a:b}").unwrap_err(),
            "1:3: parse error: unexpected character inside braces: ':'"
        );
        assert_eq!(
            kinds("{{").unwrap_err(),
            "1:2: parse error: unexpected left brace '{'"
        );
        assert_eq!(
            kinds("a}").unwrap_err(),
            "1:2: parse error: unexpected character: '}'"
        );
        assert_eq!(
            kinds("a=~b").unwrap_err(),
            "1:2: parse error: unexpected character after '=': '~'"
        );
        assert_eq!(
            kinds("!").unwrap_err(),
            "1:1: parse error: unexpected character after '!': '\u{FFFD}'"
        );
        assert_eq!(
            kinds("a)").unwrap_err(),
            "1:3: parse error: unexpected right parenthesis ')'"
        );
        assert_eq!(
            kinds("(a").unwrap_err(),
            "1:3: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            kinds("]").unwrap_err(),
            "1:1: parse error: unexpected right bracket ']'"
        );
        assert_eq!(
            kinds("é").unwrap_err(),
            "1:1: parse error: unexpected character: 'é'"
        );
        assert_eq!(
            kinds("\n  \"ab").unwrap_err(),
            "2:3: parse error: unterminated quoted string"
        );
        assert_eq!(
            kinds("5x").unwrap_err(),
            "1:1: parse error: bad number or duration syntax: \"5\""
        );
    }

    #[test]
    fn descriptions_match_prometheus() {
        let desc = |input| {
            let mut lx = Lexer::new(input);
            lx.next_token().map(|t| t.desc()).unwrap_or_default()
        };
        assert_eq!(desc("foo"), "identifier \"foo\"");
        assert_eq!(desc("a:b"), "metric identifier \"a:b\"");
        assert_eq!(desc("on"), "<on>");
        assert_eq!(desc("and"), "<op:and>");
        assert_eq!(desc("sum"), "<aggr:sum>");
        assert_eq!(desc("start"), "\"start\"");
        assert_eq!(desc("123"), "number \"123\"");
        assert_eq!(desc("\"abcdefghijkl\""), r#"string "\"abcdefghi"..."#);
        assert_eq!(desc("!="), "<op:!=>");
        assert_eq!(desc("("), "\"(\"");
        assert_eq!(desc(""), "end of input");
    }
}
