//! Lexer: template text into tokens (text, delimiters, and the words of actions).
//!
//! Follows Go's `text/template/parse/lex.go`: `{{- ` and ` -}}` trim the
//! surrounding whitespace, `{{/* */}}` comments vanish, and a number or word
//! must end at a delimiter-like character.

use crate::error::ParseErrorKind;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    /// A function name.
    Ident(String),
    /// `.Name` (without the dot).
    Field(String),
    /// `$` or `$name` (with the `$`).
    Variable(String),
    Dot,
    /// A quoted string, already unescaped.
    Str(String),
    /// The source text of a number or character constant.
    Number(String),
    Char(char),
    Bool(bool),
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
    Space,
    /// A keyword: `block break continue define else end if range template with`.
    Keyword(&'static str),
    Eof,
}

impl Tok {
    /// How Go's parser names a token in "unexpected ..." messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Text(s) => format!("{s:?}"),
            Tok::LeftDelim => "\"{{\"".to_string(),
            Tok::RightDelim => "\"}}\"".to_string(),
            Tok::Ident(s) | Tok::Number(s) => format!("{s:?}"),
            Tok::Field(s) => format!("\".{s}\""),
            Tok::Variable(s) => format!("{s:?}"),
            Tok::Dot => "\".\"".to_string(),
            Tok::Str(s) => format!("{:?}", format!("{s:?}")),
            Tok::Char(c) => format!("{:?}", crate::printf::go_quote_rune(*c)),
            Tok::Bool(b) => format!("\"{b}\""),
            Tok::Nil => "\"nil\"".to_string(),
            Tok::Pipe => "\"|\"".to_string(),
            Tok::LeftParen => "\"(\"".to_string(),
            Tok::RightParen => "\")\"".to_string(),
            Tok::Declare => "\":=\"".to_string(),
            Tok::Assign => "\"=\"".to_string(),
            Tok::Comma => "\",\"".to_string(),
            Tok::Space => "space".to_string(),
            Tok::Keyword(k) => format!("<{k}>"),
            Tok::Eof => "EOF".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
}

/// A lexing error with the byte offset where it happened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LexError {
    pub kind: ParseErrorKind,
    pub pos: usize,
    /// For an unclosed action: where it started.
    pub action_start: Option<usize>,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

/// Turns `src` into tokens, ending with `Tok::Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let mut l = Lexer {
        src,
        pos: 0,
        out: Vec::new(),
        paren_depth: 0,
    };
    l.run()?;
    Ok(l.out)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    out: Vec<Token>,
    paren_depth: usize,
}

impl Lexer<'_> {
    fn emit(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn err<T>(&self, kind: ParseErrorKind, pos: usize) -> Result<T, LexError> {
        Err(LexError {
            kind,
            pos,
            action_start: None,
        })
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next left delimiter.
            let rest = self.rest();
            match rest.find(LEFT) {
                None => {
                    if !rest.is_empty() {
                        let t = rest.to_string();
                        self.emit(Tok::Text(t), self.pos);
                    }
                    self.emit(Tok::Eof, self.src.len());
                    return Ok(());
                }
                Some(i) => {
                    let delim_pos = self.pos + i;
                    let after = &self.src[delim_pos + LEFT.len()..];
                    let trim_left = after.len() >= 2
                        && after.as_bytes()[0] == b'-'
                        && is_space(after.as_bytes()[1]);
                    let mut text = &self.src[self.pos..delim_pos];
                    if trim_left {
                        text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                    }
                    if !text.is_empty() {
                        self.emit(Tok::Text(text.to_string()), self.pos);
                    }
                    self.pos = delim_pos + LEFT.len();
                    if trim_left {
                        self.pos += 2;
                    }
                    self.lex_action(delim_pos)?;
                }
            }
        }
    }

    /// Whether the right delimiter (possibly with a trim marker) starts here:
    /// returns (is_delim, trims).
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest().as_bytes();
        if r.len() >= 2 + RIGHT.len() && is_space(r[0]) && r[1] == b'-' && &r[2..4] == b"}}" {
            return (true, true);
        }
        (r.starts_with(RIGHT.as_bytes()), false)
    }

    fn close_action(&mut self, trim: bool) {
        let pos = self.pos;
        self.pos += if trim { 2 + RIGHT.len() } else { RIGHT.len() };
        self.emit(Tok::RightDelim, pos);
        if trim {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            self.pos += rest.len() - trimmed.len();
        }
    }

    fn lex_action(&mut self, delim_pos: usize) -> Result<(), LexError> {
        // A comment fills the whole action.
        if self.rest().starts_with("/*") {
            let start = self.pos;
            let Some(end) = self.rest().find("*/") else {
                return self.err(ParseErrorKind::UnclosedComment, start);
            };
            self.pos += end + 2;
            let (is, trim) = self.at_right_delim();
            if !is {
                return self.err(ParseErrorKind::BadComment, start);
            }
            // Comments emit nothing, but still trim.
            self.pos += if trim { 2 + RIGHT.len() } else { RIGHT.len() };
            if trim {
                let rest = self.rest();
                let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
                self.pos += rest.len() - trimmed.len();
            }
            return Ok(());
        }
        self.emit(Tok::LeftDelim, delim_pos);
        self.paren_depth = 0;
        loop {
            let (is, trim) = self.at_right_delim();
            if is {
                if self.paren_depth > 0 {
                    return self.err(ParseErrorKind::UnclosedParen, self.pos);
                }
                self.close_action(trim);
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                return Err(LexError {
                    kind: ParseErrorKind::UnclosedAction,
                    pos: start,
                    action_start: Some(delim_pos),
                });
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // Stop before a space that begins a ` -}}` trim marker.
                    let b = self.rest().as_bytes();
                    let mut n = 0;
                    while n < b.len()
                        && is_space(b[n])
                        && !(b.len() >= n + 4 && b[n + 1] == b'-' && &b[n + 2..n + 4] == b"}}")
                    {
                        n += 1;
                    }
                    if n == 0 {
                        // At ` -}}` with parentheses still open.
                        return self.err(ParseErrorKind::UnclosedParen, start);
                    }
                    self.pos += n;
                    self.emit(Tok::Space, start);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if self.rest().starts_with(":=") {
                        self.pos += 2;
                        self.emit(Tok::Declare, start);
                    } else {
                        return self.err(ParseErrorKind::ExpectedDeclare, start);
                    }
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, start);
                }
                '"' => self.lex_quote(start)?,
                '`' => self.lex_raw(start)?,
                '\'' => self.lex_char(start)?,
                '$' => {
                    self.pos += 1;
                    let name = self.scan_word();
                    self.emit(Tok::Variable(format!("${name}")), start);
                    self.lex_field_chain()?;
                }
                '.' => {
                    // A number like .5, or a field, or dot.
                    let next = self.rest()[1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        self.lex_number(start)?;
                    } else {
                        self.lex_field_chain()?;
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number(start)?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Tok::LeftParen, start);
                }
                ')' => {
                    self.pos += 1;
                    if self.paren_depth == 0 {
                        return self.err(ParseErrorKind::UnexpectedRightParen, start);
                    }
                    self.paren_depth -= 1;
                    self.emit(Tok::RightParen, start);
                    self.lex_field_chain()?;
                }
                c if is_alnum(c) => {
                    let word = self.scan_word();
                    let tok = match word.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(word),
                        },
                    };
                    self.emit(tok, start);
                    self.lex_field_chain()?;
                }
                c => return self.err(ParseErrorKind::UnrecognizedCharacter(c), start),
            }
        }
    }

    fn scan_word(&mut self) -> String {
        let rest = self.rest();
        let n = rest
            .char_indices()
            .find(|(_, c)| !is_alnum(*c))
            .map_or(rest.len(), |(i, _)| i);
        let w = rest[..n].to_string();
        self.pos += n;
        w
    }

    /// After a term, `.a.b` continues it as fields; a lone `.` is dot.
    fn lex_field_chain(&mut self) -> Result<(), LexError> {
        while self.rest().starts_with('.') {
            let start = self.pos;
            self.pos += 1;
            let name = self.scan_word();
            if name.is_empty() {
                // A bare dot: only valid as a term on its own.
                self.emit(Tok::Dot, start);
                if let Some(c) = self.peek_char()
                    && (is_alnum(c) || c == '.')
                {
                    return self.err(ParseErrorKind::BadCharacter(c), self.pos);
                }
                return Ok(());
            }
            self.emit(Tok::Field(name), start);
        }
        self.check_term_end()
    }

    /// Go requires a word to be followed by space, a delimiter or punctuation.
    fn check_term_end(&self) -> Result<(), LexError> {
        match self.peek_char() {
            None => Ok(()),
            Some(c)
                if is_space(c as u8) && c.is_ascii()
                    || matches!(c, '}' | '|' | '(' | ')' | ',' | '=' | ':' | '.') =>
            {
                Ok(())
            }
            Some(c) => self.err(ParseErrorKind::BadCharacter(c), self.pos),
        }
    }

    fn lex_number(&mut self, start: usize) -> Result<(), LexError> {
        let b = self.rest().as_bytes();
        let mut i = 0;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let hex = b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X");
        if hex {
            i += 2;
        }
        let exp_chars: &[u8] = if hex { b"pP" } else { b"eE" };
        while i < b.len() {
            let c = b[i];
            if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
                break;
            }
            i += 1;
            if exp_chars.contains(&c) && i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
        }
        let text = self.rest()[..i].to_string();
        self.pos += i;
        if crate::parse::parse_number(&text).is_none() {
            return self.err(ParseErrorKind::BadNumber(text), start);
        }
        self.emit(Tok::Number(text), start);
        Ok(())
    }

    fn lex_quote(&mut self, start: usize) -> Result<(), LexError> {
        let rest = &self.src[self.pos + 1..];
        let mut out = String::new();
        let mut chars = rest.char_indices();
        loop {
            let Some((i, c)) = chars.next() else {
                return self.err(ParseErrorKind::UnterminatedString, start);
            };
            match c {
                '"' => {
                    self.pos += 1 + i + 1;
                    break;
                }
                '\n' => return self.err(ParseErrorKind::UnterminatedString, start),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return self.err(ParseErrorKind::UnterminatedString, start);
                    };
                    self.unescape(e, &mut chars, &mut out, '"', start)?;
                }
                c => out.push(c),
            }
        }
        self.emit(Tok::Str(out), start);
        Ok(())
    }

    fn unescape(
        &self,
        e: char,
        chars: &mut std::str::CharIndices<'_>,
        out: &mut String,
        quote: char,
        start: usize,
    ) -> Result<(), LexError> {
        let bad = || LexError {
            kind: ParseErrorKind::BadEscape("invalid syntax".to_string()),
            pos: start,
            action_start: None,
        };
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            c if c == quote => out.push(c),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let (_, h) = chars.next().ok_or_else(bad)?;
                    v = v * 16 + h.to_digit(16).ok_or_else(bad)?;
                }
                if e == 'x' {
                    // A byte; Go strings are bytes, ours are UTF-8: map bytes
                    // above 0x7f to the replacement character.
                    out.push(if v < 0x80 {
                        char::from(v as u8)
                    } else {
                        '\u{FFFD}'
                    });
                } else {
                    out.push(char::from_u32(v).ok_or_else(bad)?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let (_, o) = chars.next().ok_or_else(bad)?;
                    v = v * 8 + o.to_digit(8).ok_or_else(bad)?;
                }
                if v > 255 {
                    return Err(bad());
                }
                out.push(if v < 0x80 {
                    char::from(v as u8)
                } else {
                    '\u{FFFD}'
                });
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    fn lex_raw(&mut self, start: usize) -> Result<(), LexError> {
        let rest = &self.src[self.pos + 1..];
        let Some(end) = rest.find('`') else {
            return self.err(ParseErrorKind::UnterminatedRawString, start);
        };
        // Go drops carriage returns from raw strings.
        let s = rest[..end].replace('\r', "");
        self.pos += 1 + end + 1;
        self.emit(Tok::Str(s), start);
        Ok(())
    }

    fn lex_char(&mut self, start: usize) -> Result<(), LexError> {
        let rest = &self.src[self.pos + 1..];
        let mut chars = rest.char_indices();
        let c = match chars.next() {
            None | Some((_, '\n')) | Some((_, '\'')) => {
                return self.err(ParseErrorKind::UnterminatedChar, start);
            }
            Some((_, '\\')) => {
                let Some((_, e)) = chars.next() else {
                    return self.err(ParseErrorKind::UnterminatedChar, start);
                };
                let mut s = String::new();
                self.unescape(e, &mut chars, &mut s, '\'', start)?;
                let mut it = s.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => c,
                    _ => return self.err(ParseErrorKind::UnterminatedChar, start),
                }
            }
            Some((_, c)) => c,
        };
        match chars.next() {
            Some((i, '\'')) => {
                self.pos += 1 + i + 1;
            }
            _ => return self.err(ParseErrorKind::UnterminatedChar, start),
        }
        self.emit(Tok::Char(c), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_and_fields() {
        assert_eq!(
            toks("a {{ .Labels.job }} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Space,
                Tok::Field("Labels".into()),
                Tok::Field("job".into()),
                Tok::Space,
                Tok::RightDelim,
                Tok::Text(" b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trim_markers() {
        assert_eq!(
            toks("a  \n{{- 3 -}}\n  b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Number("3".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        // "{{-3}}" is the number -3, not a trim marker.
        assert_eq!(
            toks("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_vanish() {
        assert_eq!(
            toks("a{{/* x */}}b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
        assert_eq!(
            toks("a {{- /* x */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
        assert!(lex("{{/* x */ .}}").is_err());
        assert!(lex("{{/* x").is_err());
    }

    #[test]
    fn strings_and_numbers() {
        assert_eq!(
            toks(r#"{{"a\n\"b\u00e9" `r\n` 'x' 0x1F 1.5e3 $x.y ( . )}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Str("a\n\"bé".into()),
                Tok::Space,
                Tok::Str("r\\n".into()),
                Tok::Space,
                Tok::Char('x'),
                Tok::Space,
                Tok::Number("0x1F".into()),
                Tok::Space,
                Tok::Number("1.5e3".into()),
                Tok::Space,
                Tok::Variable("$x".into()),
                Tok::Field("y".into()),
                Tok::Space,
                Tok::LeftParen,
                Tok::Space,
                Tok::Dot,
                Tok::Space,
                Tok::RightParen,
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            lex("{{ \"abc }}").unwrap_err().kind,
            ParseErrorKind::UnterminatedString
        ));
        assert!(matches!(
            lex("{{ 3x }}").unwrap_err().kind,
            ParseErrorKind::BadNumber(_)
        ));
        assert!(matches!(
            lex("{{ .a").unwrap_err().kind,
            ParseErrorKind::UnclosedAction
        ));
        assert!(matches!(
            lex("{{ # }}").unwrap_err().kind,
            ParseErrorKind::UnrecognizedCharacter('#')
        ));
        assert!(lex("{{ ) }}").is_err());
    }
}
