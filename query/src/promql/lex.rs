//! Lexing helpers of the PromQL parser, built on nom 8: whitespace and
//! comments, identifiers, string literals with Go escapes, numbers and
//! durations (both the token shapes and their values).
//!
//! Every helper takes the remaining input and returns the rest. A
//! recoverable error (`nom::Err::Error`) means "not this kind of item"; a
//! fatal one (`nom::Err::Failure`) carries Prometheus's message and the
//! remaining length at the start of the offending item, from which the
//! token layer ([`super::lexer`]) computes the position.

use std::time::Duration;

use nom::branch::alt;
use nom::bytes::complete::{take_till, take_while, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::recognize;
use nom::error::ErrorKind;
use nom::multi::many0_count;
use nom::sequence::pair;
use nom::{IResult, Parser};

use crate::gofmt;

/// Error of the lexing helpers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Length of the input remaining at the start of the offending item.
    pub remaining: usize,
    /// Prometheus's message for a fatal error; `None` for a recoverable one.
    pub message: Option<String>,
}

impl LexError {
    /// Byte offset of the error in `input` (the whole text being lexed).
    pub fn position_in(&self, input: &str) -> usize {
        input.len().saturating_sub(self.remaining)
    }
}

impl nom::error::ParseError<&str> for LexError {
    fn from_error_kind(input: &str, _kind: ErrorKind) -> Self {
        LexError {
            remaining: input.len(),
            message: None,
        }
    }

    fn append(_input: &str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Result of a lexing helper.
pub type LexResult<'a, O> = IResult<&'a str, O, LexError>;

/// A fatal error about the item starting at `at`.
pub fn failure<'a, O>(at: &'a str, message: impl Into<String>) -> LexResult<'a, O> {
    Err(nom::Err::Failure(LexError {
        remaining: at.len(),
        message: Some(message.into()),
    }))
}

/// Runs `parser`; turns a recoverable error into a fatal one with
/// `message` (the pattern of InfluxDB's InfluxQL parser): used where the
/// grammar leaves no alternative.
pub fn expect<'a, O, P>(
    message: &'static str,
    mut parser: P,
) -> impl FnMut(&'a str) -> LexResult<'a, O>
where
    P: Parser<&'a str, Output = O, Error = LexError>,
{
    move |input| match parser.parse(input) {
        Err(nom::Err::Error(e)) => Err(nom::Err::Failure(LexError {
            remaining: e.remaining,
            message: Some(message.to_string()),
        })),
        other => other,
    }
}

/// Prometheus's whitespace: space, tab, CR, LF.
pub fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Letters and underscore (ASCII only, as in Prometheus).
pub fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

pub fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

pub fn is_alnum(c: char) -> bool {
    is_alpha(c) || is_digit(c)
}

/// A line comment: `#` up to (not including) the end of the line.
pub fn comment(input: &str) -> LexResult<'_, &str> {
    recognize(pair(char('#'), take_till(|c| c == '\r' || c == '\n'))).parse(input)
}

/// Skips whitespace and comments; never fails.
pub fn skip_space_and_comments(input: &str) -> &str {
    let mut skip = many0_count(alt((take_while1::<_, _, LexError>(is_space), comment)));
    match skip.parse(input) {
        Ok((rest, _)) => rest,
        Err(_) => input,
    }
}

/// A label name identifier: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn label_identifier(input: &str) -> LexResult<'_, &str> {
    recognize(pair(satisfy(is_alpha), take_while(is_alnum))).parse(input)
}

/// A metric name identifier, which may also contain colons:
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn metric_identifier(input: &str) -> LexResult<'_, &str> {
    recognize(pair(
        satisfy(|c| is_alpha(c) || c == ':'),
        take_while(|c| is_alnum(c) || c == ':'),
    ))
    .parse(input)
}

/// Is `s` a legacy label name (printable without quotes inside braces)?
pub fn is_legacy_label_name(s: &str) -> bool {
    matches!(label_identifier(s), Ok(("", _)))
}

/// Is `s` a legacy metric name (printable without quotes before braces)?
pub fn is_legacy_metric_name(s: &str) -> bool {
    matches!(metric_identifier(s), Ok(("", _)))
}

/// A string literal in double quotes, single quotes (both with Go escapes:
/// `\a \b \f \n \r \t \v \\`, the quote itself, octal `\NNN`, `\xHH`,
/// `\uHHHH`, `\UHHHHHHHH`) or backticks (raw). Returns the value.
/// Errors are fatal and positioned at the opening quote, as in Prometheus.
pub fn string_literal(input: &str) -> LexResult<'_, String> {
    let (body, quote) =
        satisfy::<_, _, LexError>(|c| c == '"' || c == '\'' || c == '`').parse(input)?;
    if quote == '`' {
        return raw_string(input, body);
    }
    let mut bytes: Vec<u8> = Vec::new();
    let mut rest = body;
    loop {
        let (after, plain) = take_till::<_, _, LexError>(|c| {
            c == quote || c == '\\' || c == '\n' || c == '\u{FFFD}'
        })(rest)?;
        bytes.extend_from_slice(plain.as_bytes());
        let mut chars = after.chars();
        match chars.next() {
            None | Some('\n') => return failure(input, "unterminated quoted string"),
            // Go's lexer sees U+FFFD as utf8.RuneError and rejects it.
            Some('\u{FFFD}') => return failure(input, "invalid UTF-8 rune"),
            Some('\\') => rest = escape(input, chars.as_str(), quote, &mut bytes)?.0,
            Some(_) => {
                rest = chars.as_str();
                break;
            }
        }
    }
    // Byte escapes can spell invalid UTF-8 (`"\xff"`). Prometheus keeps
    // such bytes (Go strings are bytes) and fails later, when the value is
    // used as a label name; Rust strings cannot hold them, so each invalid
    // sequence becomes U+FFFD, which no later check mistakes for the
    // intended text.
    let value = match String::from_utf8(bytes) {
        Ok(v) => v,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((rest, value))
}

fn raw_string<'a>(start: &'a str, body: &'a str) -> LexResult<'a, String> {
    let (rest, content) = take_till::<_, _, LexError>(|c| c == '`' || c == '\u{FFFD}')(body)?;
    match rest.chars().next() {
        None => failure(start, "unterminated raw string"),
        Some('`') => Ok((&rest[1..], content.to_string())),
        Some(_) => failure(start, "invalid UTF-8 rune"),
    }
}

/// One escape sequence after a backslash; appends its bytes to `out`.
fn escape<'a>(start: &'a str, s: &'a str, quote: char, out: &mut Vec<u8>) -> LexResult<'a, ()> {
    let mut chars = s.chars();
    let first = chars.next();
    let (count, base, max, digits_from) = match first {
        None => return failure(start, "escape sequence not terminated"),
        Some(c) if c == quote => {
            out.push(c as u8);
            return Ok((chars.as_str(), ()));
        }
        Some(c @ ('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\')) => {
            out.push(match c {
                'a' => 0x07,
                'b' => 0x08,
                'f' => 0x0C,
                'n' => b'\n',
                'r' => b'\r',
                't' => b'\t',
                'v' => 0x0B,
                _ => b'\\',
            });
            return Ok((chars.as_str(), ()));
        }
        Some('0'..='7') => (3, 8, 255, s),
        Some('x') => (2, 16, 255, chars.as_str()),
        Some('u') => (4, 16, 0x10FFFF, chars.as_str()),
        Some('U') => (8, 16, 0x10FFFF, chars.as_str()),
        Some(c) => {
            return failure(
                start,
                format!("unknown escape sequence {}", gofmt::unicode(c)),
            );
        }
    };
    let mut digits = digits_from.chars();
    let mut x: u64 = 0;
    for _ in 0..count {
        let ch = digits.next();
        let d = ch.and_then(|c| c.to_digit(16)).map_or(16, u64::from);
        if d >= base {
            return match ch {
                None => failure(start, "escape sequence not terminated"),
                Some(c) => failure(
                    start,
                    format!("illegal character {} in escape sequence", gofmt::unicode(c)),
                ),
            };
        }
        x = x * base + d;
    }
    if x > max || (0xD800..0xE000).contains(&x) {
        return failure(start, "escape sequence is an invalid Unicode code point");
    }
    match first {
        Some('u' | 'U') => match char::from_u32(x as u32) {
            Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            None => return failure(start, "escape sequence is an invalid Unicode code point"),
        },
        _ => out.push(x as u8),
    }
    Ok((digits.as_str(), ()))
}

/// What a number-like item turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Number,
    Duration,
}

/// Prometheus's `lexNumberOrDuration` for input starting with a digit or
/// `.digit`: a number (decimal, hex, with `_` separators and exponent) or a
/// duration (`5m`, `1h30m`, `10ms`). The value is checked later, by
/// [`parse_number`] or [`parse_duration`].
pub fn number_or_duration(input: &str) -> LexResult<'_, (NumberKind, &str)> {
    let mut cur = Cursor {
        s: input,
        pos: 0,
        width: 0,
    };
    if scan_number(&mut cur) {
        return Ok((&input[cur.pos..], (NumberKind::Number, &input[..cur.pos])));
    }
    if accept_remaining_duration(&mut cur) {
        cur.backup();
        return Ok((&input[cur.pos..], (NumberKind::Duration, &input[..cur.pos])));
    }
    failure(
        input,
        format!(
            "bad number or duration syntax: {}",
            gofmt::quote(&input[..cur.pos])
        ),
    )
}

/// A rune cursor with Go-lexer semantics (`next`, one-step `backup`).
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    width: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.s[self.pos..].chars().next();
        self.width = c.map_or(0, char::len_utf8);
        self.pos += self.width;
        c
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        self.width = 0;
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn is(&self, valid: &str) -> bool {
        self.peek().is_some_and(|c| valid.contains(c))
    }

    fn accept(&mut self, valid: &str) -> bool {
        if self.next().is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.backup();
        false
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }
}

const DEC_DIGITS: &str = "0123456789";
const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

/// Prometheus's `scanNumber` (outside series descriptions), quirks included.
fn scan_number(cur: &mut Cursor<'_>) -> bool {
    let initial = cur.pos;
    let mut digits = DEC_DIGITS;
    if cur.accept("0") && cur.accept("xX") {
        cur.accept("_");
        digits = HEX_DIGITS;
    }
    cur.accept(".");
    cur.accept(digits);
    let mut dot = false;
    let mut exponent = false;
    while cur
        .peek()
        .is_some_and(|c| digits.contains(c) || "._eE".contains(c))
    {
        if cur.is(".") && dot {
            cur.accept(".");
            return false;
        }
        if cur.is("eE") && exponent {
            cur.accept("eE");
            return false;
        }
        if cur.accept(".") {
            dot = true;
            if cur.accept("_.") || digits.len() > 10 {
                return false;
            }
            continue;
        }
        if cur.accept("eE") {
            exponent = true;
            cur.accept("+-");
            if cur.accept("._eE") || cur.peek().is_none() {
                return false;
            }
            continue;
        }
        if cur.accept("_") {
            if cur.accept("._eE") || cur.peek().is_none() {
                return false;
            }
            continue;
        }
        cur.accept_run(digits);
    }
    if cur.pos == initial {
        return false;
    }
    !cur.peek().is_some_and(is_alnum)
}

/// Prometheus's `acceptRemainingDuration`: units after the leading digits.
fn accept_remaining_duration(cur: &mut Cursor<'_>) -> bool {
    if !cur.accept("smhdwy") {
        return false;
    }
    cur.accept("s");
    while cur.accept(DEC_DIGITS) {
        cur.accept_run(DEC_DIGITS);
        if !cur.accept("smhdw") {
            return false;
        }
        cur.accept("s");
    }
    !cur.next().is_some_and(is_alnum)
}

/// The value of a number token, as Prometheus computes it: Go's
/// `ParseInt(s, 0, 64)` (decimal, `0x` hex, leading-`0` octal, `_`
/// separators), else `ParseFloat` (also `Inf`/`NaN`). The error text is
/// Go's (`strconv.ParseFloat: parsing "1e": invalid syntax`).
pub fn parse_number(text: &str) -> Result<f64, String> {
    if let Some(i) = go_parse_int_base0(text) {
        return Ok(i as f64);
    }
    go_parse_float(text)
}

fn go_parse_int_base0(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let b = unsigned.as_bytes();
    let (base, digits): (u64, &[u8]) = match b {
        [] => return None,
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'x') => (16, &b[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'o') => (8, &b[2..]),
        [b'0', p, _, ..] if p.eq_ignore_ascii_case(&b'b') => (2, &b[2..]),
        [b'0', ..] => (8, &b[1..]),
        _ => (10, b),
    };
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            c if c.is_ascii_alphabetic() => u64::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscore_ok(s) {
        return None;
    }
    if negative {
        if n > 1 << 63 {
            return None;
        }
        Some((n as i64).wrapping_neg())
    } else {
        i64::try_from(n).ok()
    }
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let [b'+' | b'-', rest @ ..] = b {
        b = rest;
    }
    let mut saw = b'^';
    let mut hex = false;
    let mut i = 0;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

fn go_parse_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            gofmt::quote(s)
        )
    };
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    // Only decimal floats can get here from the lexer; hex floats need a
    // 'p' exponent the lexer never accepts.
    if !unsigned
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
    {
        return Err(syntax());
    }
    let cleaned;
    let text = if s.contains('_') {
        if !underscore_ok(s) {
            return Err(syntax());
        }
        cleaned = s.replace('_', "");
        cleaned.as_str()
    } else {
        s
    };
    let v: f64 = text.parse().map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            gofmt::quote(s)
        ));
    }
    Ok(v)
}

/// Why a duration string was rejected (Prometheus's `model.ParseDuration`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {}", gofmt::quote(.0))]
    Invalid(String),
    #[error("unknown unit {} in duration {}", gofmt::quote(.unit), gofmt::quote(.input))]
    UnknownUnit { unit: String, input: String },
    #[error("duration out of range")]
    OutOfRange,
}

/// Parses a Prometheus duration: `<integer><unit>` groups with units
/// `y w d h m s ms`, largest first, each at most once (`1h30m`); `0` alone
/// is allowed. Limited, like Go's `time.Duration`, to about 292 years.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000_000_000),
        ("w", 7 * 24 * 3_600_000_000_000),
        ("d", 24 * 3_600_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    match s {
        "" => return Err(DurationError::Empty),
        "0" => return Ok(Duration::ZERO),
        _ => {}
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut group = pair(
        digit1::<&str, LexError>,
        take_while1(|c: char| !c.is_ascii_digit()),
    );
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let (after, (digits, unit)) = group.parse(rest).map_err(|_| invalid())?;
        rest = after;
        let value: u64 = digits.parse().map_err(|_| invalid())?;
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit {
                unit: unit.to_string(),
                input: s.to_string(),
            });
        };
        if last_unit.is_some_and(|last| idx <= last) {
            return Err(invalid());
        }
        last_unit = Some(idx);
        let mult = UNITS[idx].1;
        if value > (1u64 << 63) / mult {
            return Err(DurationError::OutOfRange);
        }
        total = total
            .checked_add(value * mult)
            .ok_or(DurationError::OutOfRange)?;
        if total > i64::MAX as u64 {
            return Err(DurationError::OutOfRange);
        }
    }
    Ok(Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_string(s: &str) -> Result<(String, &str), (usize, String)> {
        match string_literal(s) {
            Ok((rest, v)) => Ok((v, rest)),
            Err(nom::Err::Failure(e)) | Err(nom::Err::Error(e)) => {
                Err((e.position_in(s), e.message.unwrap_or_default()))
            }
            Err(nom::Err::Incomplete(_)) => Err((0, "incomplete".into())),
        }
    }

    #[test]
    fn strings_unescape_like_go() {
        assert_eq!(
            lex_string(r#""a\nb\t\\\"" rest"#),
            Ok(("a\nb\t\\\"".into(), " rest"))
        );
        assert_eq!(lex_string(r"'it\'s'"), Ok(("it's".into(), "")));
        assert_eq!(
            lex_string(r#""\x41\101\u00e9\U0001F642""#),
            Ok(("AAé🙂".into(), ""))
        );
        assert_eq!(
            lex_string(r#""\xc3\xa9""#),
            Ok(("é".into(), "")),
            "byte escapes form UTF-8"
        );
        assert_eq!(
            lex_string(r#""\a\b\f\r\v""#),
            Ok(("\u{7}\u{8}\u{c}\r\u{b}".into(), ""))
        );
        assert_eq!(
            lex_string("`raw\\n\n\"x'`"),
            Ok(("raw\\n\n\"x'".into(), ""))
        );
        assert_eq!(lex_string("\"it's\""), Ok(("it's".into(), "")));
        assert_eq!(
            lex_string(r#""a\xc5z\xff""#),
            Ok(("a\u{FFFD}z\u{FFFD}".into(), "")),
            "invalid UTF-8 from byte escapes is replaced, not an error"
        );
    }

    #[test]
    fn string_errors_match_prometheus() {
        let err = |s| lex_string(s).unwrap_err().1;
        assert_eq!(err("\"abc"), "unterminated quoted string");
        assert_eq!(err("\"ab\ncd\""), "unterminated quoted string");
        assert_eq!(err("`abc"), "unterminated raw string");
        assert_eq!(err(r#""\z""#), "unknown escape sequence U+007A 'z'");
        assert_eq!(err(r#""\'""#), "unknown escape sequence U+0027 '''");
        assert_eq!(
            err(r#""\x4g""#),
            "illegal character U+0067 'g' in escape sequence"
        );
        assert_eq!(
            err(r#""\u12""#),
            "illegal character U+0022 '\"' in escape sequence"
        );
        assert_eq!(err(r#""\"#), "escape sequence not terminated");
        assert_eq!(err(r#""\x4"#), "escape sequence not terminated");
        assert_eq!(
            err(r#""\777""#),
            "escape sequence is an invalid Unicode code point"
        );
        assert_eq!(
            err(r#""\ud800""#),
            "escape sequence is an invalid Unicode code point"
        );
        assert_eq!(
            err(r#""\U00110000""#),
            "escape sequence is an invalid Unicode code point"
        );
        assert_eq!(err("\"\u{FFFD}\""), "invalid UTF-8 rune");
        assert_eq!(
            lex_string("  \"x\"").unwrap_err().1,
            "",
            "not a string: recoverable"
        );
        assert_eq!(lex_string(r#"  "#).unwrap_err().0, 0);
    }

    #[test]
    fn identifiers() {
        assert_eq!(metric_identifier("job:rate5m{"), Ok(("{", "job:rate5m")));
        assert_eq!(metric_identifier(":a"), Ok(("", ":a")));
        assert_eq!(label_identifier("a:b"), Ok((":b", "a")));
        assert!(label_identifier("1a").is_err());
        assert!(is_legacy_label_name("__name__"));
        assert!(!is_legacy_label_name("a.b"));
        assert!(!is_legacy_label_name(""));
        assert!(is_legacy_metric_name("a:b_c"));
        assert!(!is_legacy_metric_name("é"));
    }

    #[test]
    fn space_and_comments() {
        assert_eq!(skip_space_and_comments("  # c\n\t x"), "x");
        assert_eq!(skip_space_and_comments("#only"), "");
        assert_eq!(skip_space_and_comments("x "), "x ");
    }

    #[test]
    fn numbers_and_durations_lex_like_prometheus() {
        let ok = |s| {
            number_or_duration(s)
                .map(|(rest, (k, t))| (k, t, rest))
                .map_err(|_| ())
        };
        assert_eq!(ok("123 x"), Ok((NumberKind::Number, "123", " x")));
        assert_eq!(ok("1.5e-3)"), Ok((NumberKind::Number, "1.5e-3", ")")));
        assert_eq!(ok("0x1F"), Ok((NumberKind::Number, "0x1F", "")));
        assert_eq!(ok("1_000"), Ok((NumberKind::Number, "1_000", "")));
        assert_eq!(ok(".5"), Ok((NumberKind::Number, ".5", "")));
        assert_eq!(ok("5m]"), Ok((NumberKind::Duration, "5m", "]")));
        assert_eq!(ok("1h30m"), Ok((NumberKind::Duration, "1h30m", "")));
        assert_eq!(ok("10ms "), Ok((NumberKind::Duration, "10ms", " ")));
        let bad = |s| match number_or_duration(s) {
            Err(nom::Err::Failure(e)) => e.message.unwrap_or_default(),
            other => format!("{other:?}"),
        };
        assert_eq!(bad("5x"), r#"bad number or duration syntax: "5""#);
        assert_eq!(bad("5mx"), r#"bad number or duration syntax: "5mx""#);
        assert_eq!(bad("1e"), r#"bad number or duration syntax: "1e""#);
    }

    #[test]
    fn number_values_follow_go() {
        assert_eq!(parse_number("123"), Ok(123.0));
        assert_eq!(parse_number("0x1F"), Ok(31.0));
        assert_eq!(
            parse_number("010"),
            Ok(8.0),
            "leading zero is octal in Go's base 0"
        );
        assert_eq!(
            parse_number("09"),
            Ok(9.0),
            "not octal: falls back to ParseFloat"
        );
        assert_eq!(parse_number("1_000"), Ok(1000.0));
        assert_eq!(parse_number("1_000.5"), Ok(1000.5));
        assert_eq!(parse_number("1.5e3"), Ok(1500.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert_eq!(parse_number("99999999999999999999"), Ok(1e20));
        assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
        assert!(parse_number("NaN").unwrap().is_nan());
        assert_eq!(
            parse_number("1__0"),
            Err(r#"strconv.ParseFloat: parsing "1__0": invalid syntax"#.into())
        );
        assert_eq!(
            parse_number(".5.3"),
            Err(r#"strconv.ParseFloat: parsing ".5.3": invalid syntax"#.into())
        );
        assert_eq!(
            parse_number("1e999"),
            Err(r#"strconv.ParseFloat: parsing "1e999": value out of range"#.into())
        );
    }

    #[test]
    fn durations_follow_prometheus() {
        let ms = |s| parse_duration(s).map(|d| d.as_millis() as u64);
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("90s"), Ok(90_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(
            ms("1y2w3d4h5m6s7ms"),
            Ok(((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7)
        );
        assert_eq!(ms(""), Err(DurationError::Empty));
        assert_eq!(ms("5"), Err(DurationError::Invalid("5".into())));
        assert_eq!(ms("m5"), Err(DurationError::Invalid("m5".into())));
        assert_eq!(ms("1m1h"), Err(DurationError::Invalid("1m1h".into())));
        assert_eq!(ms("1m1m"), Err(DurationError::Invalid("1m1m".into())));
        assert_eq!(ms("-1m"), Err(DurationError::Invalid("-1m".into())));
        assert_eq!(
            ms("1.5h").unwrap_err().to_string(),
            r#"unknown unit "." in duration "1.5h""#
        );
        assert_eq!(
            ms("3x").unwrap_err().to_string(),
            r#"unknown unit "x" in duration "3x""#
        );
        assert_eq!(ms("300y"), Err(DurationError::OutOfRange));
        assert_eq!(
            ms("99999999999999999999s"),
            Err(DurationError::Invalid("99999999999999999999s".into()))
        );
    }

    #[test]
    fn expect_turns_errors_fatal() {
        let mut p = expect("identifier expected", label_identifier);
        match p("9") {
            Err(nom::Err::Failure(e)) => {
                assert_eq!(e.message.as_deref(), Some("identifier expected"))
            }
            other => panic!("{other:?}"),
        }
    }
}
