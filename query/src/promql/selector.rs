//! Series (vector) selectors: `metric{label="value", "utf8.name"=~"re"}`,
//! parsed exactly as Prometheus 3's grammar accepts them, validated like
//! PromQL does, and printed back in a form that re-parses to the same
//! matchers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use engine::labels::BadRegex;
use engine::{METRIC_NAME, MatchOp, Matcher};

use super::error::ParseError;
use super::lex;
use super::lexer::{Lexer, Token, TokenKind};
use crate::gofmt;

/// A parsed vector selector (without offset or `@`, which arrive with the
/// full expression parser).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// The metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers in input order; when `name` is set, its `__name__`
    /// equality matcher comes last (as in Prometheus).
    pub matchers: Vec<Matcher>,
    /// Byte offset where the selector starts.
    pub position: usize,
}

impl VectorSelector {
    /// Does any matcher reject the empty string? Prometheus requires one,
    /// so that a typo cannot select every series.
    pub fn has_non_empty_matcher(&self) -> bool {
        self.matchers.iter().any(|m| !m.matches_empty())
    }
}

/// Parses a series selector and validates it as PromQL does: at least one
/// matcher must not match the empty string, and a metric name written
/// before the braces must not be repeated inside them.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let vs = parse_vector_selector(input)?;
    if !vs.has_non_empty_matcher() {
        return Err(ParseError::at(
            input,
            vs.position,
            "vector selector must contain at least one non-empty matcher",
        ));
    }
    Ok(vs.matchers)
}

/// Parses a series selector and checks that the metric name is not set
/// twice, but leaves the non-empty-matcher rule to the caller (the HTTP
/// API words that error differently).
pub fn parse_vector_selector(input: &str) -> Result<VectorSelector, ParseError> {
    let mut lx = Lexer::new(input);
    let mut p = SelectorParser { lx: &mut lx };
    let vs = p.selector()?;
    if let Some(name) = &vs.name {
        let inner = &vs.matchers[..vs.matchers.len() - 1];
        if let Some(m) = inner.iter().find(|m| m.name == METRIC_NAME) {
            return Err(ParseError::at(
                input,
                vs.position,
                format!(
                    "metric name must not be set twice: {} or {}",
                    gofmt::quote(name),
                    gofmt::quote(&m.value)
                ),
            ));
        }
    }
    Ok(vs)
}

/// Parses the matcher list after a `{`, through the closing `}`: the
/// part of the grammar shared with the expression parser.
pub(crate) fn label_matchers(lx: &mut Lexer<'_>) -> Result<Vec<Matcher>, ParseError> {
    SelectorParser { lx }.label_matchers()
}

struct SelectorParser<'l, 'a> {
    lx: &'l mut Lexer<'a>,
}

impl<'a> SelectorParser<'_, 'a> {
    fn next(&mut self) -> Result<Token<'a>, ParseError> {
        self.lx.next_token()
    }

    /// Prometheus's `unexpected(context, expected)`.
    fn unexpected(&self, tok: &Token<'_>, context: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {}", tok.desc());
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        ParseError::at(self.lx.input(), tok.pos, msg)
    }

    fn selector(&mut self) -> Result<VectorSelector, ParseError> {
        let first = self.next()?;
        let position = first.pos;
        let (name, mut matchers) = match first.kind {
            TokenKind::Identifier | TokenKind::MetricIdentifier => {
                (Some(first.text.to_string()), None)
            }
            TokenKind::Keyword(k) if k.is_metric_identifier() => {
                (Some(first.text.to_string()), None)
            }
            TokenKind::LeftBrace => (None, Some(self.label_matchers()?)),
            _ => return Err(self.unexpected(&first, "", "")),
        };
        let mut tok = self.next()?;
        if name.is_some() && tok.kind == TokenKind::LeftBrace {
            matchers = Some(self.label_matchers()?);
            tok = self.next()?;
        }
        if tok.kind != TokenKind::Eof {
            return Err(self.unexpected(&tok, "", ""));
        }
        let mut matchers = matchers.unwrap_or_default();
        if let Some(name) = &name {
            matchers.push(Matcher::equal(METRIC_NAME, name.as_str()));
        }
        Ok(VectorSelector {
            name,
            matchers,
            position,
        })
    }

    /// The matcher list after `{`, through the closing `}`.
    fn label_matchers(&mut self) -> Result<Vec<Matcher>, ParseError> {
        let mut matchers = Vec::new();
        let mut tok = self.next()?;
        if tok.kind == TokenKind::RightBrace {
            return Ok(matchers);
        }
        loop {
            let (matcher, lookahead) = self.label_matcher(tok)?;
            matchers.push(matcher);
            let sep = match lookahead {
                Some(t) => t,
                None => self.next()?,
            };
            match sep.kind {
                TokenKind::RightBrace => return Ok(matchers),
                TokenKind::Comma => {
                    tok = self.next()?;
                    if tok.kind == TokenKind::RightBrace {
                        return Ok(matchers);
                    }
                }
                _ => return Err(self.unexpected(&sep, "label matching", "\",\" or \"}\"")),
            }
        }
    }

    /// One matcher starting at `tok`. A bare string is a metric name; the
    /// token read to find that out is handed back as lookahead.
    fn label_matcher(
        &mut self,
        tok: Token<'a>,
    ) -> Result<(Matcher, Option<Token<'a>>), ParseError> {
        let name = match tok.kind {
            TokenKind::Identifier => tok.text.to_string(),
            TokenKind::String => tok.value.clone().unwrap_or_default(),
            _ => return Err(self.unexpected(&tok, "label matching", "identifier or \"}\"")),
        };
        let op_tok = self.next()?;
        let op = match op_tok.kind {
            TokenKind::Eql => MatchOp::Equal,
            TokenKind::Neq => MatchOp::NotEqual,
            TokenKind::EqlRegex => MatchOp::RegexMatch,
            TokenKind::NeqRegex => MatchOp::RegexNoMatch,
            _ if tok.kind == TokenKind::String => {
                return Ok((Matcher::equal(METRIC_NAME, name), Some(op_tok)));
            }
            _ => return Err(self.unexpected(&op_tok, "label matching", "label matching operator")),
        };
        let value_tok = self.next()?;
        if value_tok.kind != TokenKind::String {
            return Err(self.unexpected(&value_tok, "label matching", "string"));
        }
        let value = value_tok.value.unwrap_or_default();
        match cached_matcher(op, name, value) {
            Ok(m) => Ok((m, None)),
            Err(e) => Err(ParseError::at(
                self.lx.input(),
                tok.pos,
                format!(
                    "invalid regular expression {}: {}",
                    gofmt::quote(&e.pattern),
                    regex_reason(&e.message)
                ),
            )),
        }
    }
}

/// Regex matchers compiled before, by operator, label name and pattern.
type MatcherCache = HashMap<(MatchOp, String, String), Matcher>;

/// Most regex matchers kept compiled; the cache starts over when full.
const MATCHER_CACHE_SIZE: usize = 512;

/// `Matcher::new`, reusing the compiled regex of a matcher parsed before.
/// Compiling a regex (and, at its first match, building its automaton
/// cache) took a tenth of a small dashboard query's time, and dashboards
/// send the same selectors again and again. `=` and `!=` need no cache.
fn cached_matcher(op: MatchOp, name: String, value: String) -> Result<Matcher, BadRegex> {
    if !matches!(op, MatchOp::RegexMatch | MatchOp::RegexNoMatch) {
        return Matcher::new(op, name, value);
    }
    static CACHE: OnceLock<Mutex<MatcherCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let key = (op, name, value);
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let (op, name, value) = key;
    let m = Matcher::new(op, name, value)?;
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MATCHER_CACHE_SIZE {
            c.clear();
        }
        c.insert((m.op, m.name.clone(), m.value.clone()), m.clone());
    }
    Ok(m)
}

/// The one-line reason from a `regex` crate error (its `Display` is a
/// multi-line diagram of the anchored pattern).
fn regex_reason(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Prints one matcher as Prometheus does: `name="value"`, with the label
/// name quoted when it is not a legacy identifier.
pub struct DisplayMatcher<'a>(pub &'a Matcher);

impl fmt::Display for DisplayMatcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        if lex::is_legacy_label_name(&m.name) {
            f.write_str(&m.name)?;
        } else {
            f.write_str(&gofmt::quote_promql(&m.name))?;
        }
        write!(f, "{}{}", m.op.as_str(), gofmt::quote_promql(&m.value))
    }
}

/// Prints matchers as one selector with every matcher inside the braces,
/// in order: `{a="b", __name__="up"}`. Parsing the result gives back the
/// same matchers in the same order.
pub fn format_matchers(matchers: &[Matcher]) -> String {
    let mut out = String::from("{");
    for (i, m) in matchers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&DisplayMatcher(m).to_string());
    }
    out.push('}');
    out
}

impl fmt::Display for VectorSelector {
    /// `name{matchers}` when the name was written bare, else `{matchers}`;
    /// re-parses to an equal selector.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = match &self.name {
            Some(name) => {
                f.write_str(name)?;
                &self.matchers[..self.matchers.len().saturating_sub(1)]
            }
            None => &self.matchers[..],
        };
        if inner.is_empty() && self.name.is_some() {
            return Ok(());
        }
        f.write_str(&format_matchers(inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).unwrap()
    }

    fn eq(name: &str, value: &str) -> Matcher {
        m(MatchOp::Equal, name, value)
    }

    fn err(input: &str) -> String {
        match parse_selector(input) {
            Ok(ms) => format!("unexpectedly parsed: {ms:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_selectors() {
        let cases: Vec<(&str, Vec<Matcher>)> = vec![
            ("up", vec![eq("__name__", "up")]),
            ("job:rate5m", vec![eq("__name__", "job:rate5m")]),
            (":x", vec![eq("__name__", ":x")]),
            ("sum", vec![eq("__name__", "sum")]),
            ("by{a='b'}", vec![eq("a", "b"), eq("__name__", "by")]),
            ("fill", vec![eq("__name__", "fill")]),
            (
                r#"up{job="api", instance!="x", path=~"/a.*", code!~'5..',}"#,
                vec![
                    eq("job", "api"),
                    m(MatchOp::NotEqual, "instance", "x"),
                    m(MatchOp::RegexMatch, "path", "/a.*"),
                    m(MatchOp::RegexNoMatch, "code", "5.."),
                    eq("__name__", "up"),
                ],
            ),
            (r#"{__name__="up"}"#, vec![eq("__name__", "up")]),
            (
                r#"{"metric.name", "a.b"="x"}"#,
                vec![eq("__name__", "metric.name"), eq("a.b", "x")],
            ),
            (
                r#"{"a", "b"}"#,
                vec![eq("__name__", "a"), eq("__name__", "b")],
            ),
            (
                "{on=\"1\", bool='2', inf=`3`}",
                vec![eq("on", "1"), eq("bool", "2"), eq("inf", "3")],
            ),
            (
                " # leading comment\n up { # inside\n a = \"b\" # more\n } # end",
                vec![eq("a", "b"), eq("__name__", "up")],
            ),
            ("{a=\"\\u00e9\\x41\\101\\n\"}", vec![eq("a", "éAA\n")]),
            ("{a=`raw\\n`}", vec![eq("a", "raw\\n")]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_selector(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn utf8_label_names_and_values() {
        let got = parse_selector(r#"{"métrique.nom", "ラベル"=~"値.*", x!="🙂"}"#).unwrap();
        assert_eq!(
            got,
            vec![
                eq("__name__", "métrique.nom"),
                m(MatchOp::RegexMatch, "ラベル", "値.*"),
                m(MatchOp::NotEqual, "x", "🙂")
            ]
        );
    }

    #[test]
    fn syntax_errors_match_prometheus() {
        for (input, want) in [
            ("", "unknown position: parse error: unexpected end of input"),
            ("  ", "1:3: parse error: unexpected end of input"),
            (
                "foo{",
                "1:5: parse error: unexpected end of input inside braces",
            ),
            (
                "foo{a=\"b\"",
                "1:10: parse error: unexpected end of input inside braces",
            ),
            (
                "foo{a}",
                "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator",
            ),
            (
                "foo{a b}",
                "1:7: parse error: unexpected identifier \"b\" in label matching, expected label matching operator",
            ),
            (
                "foo{a=}",
                "1:7: parse error: unexpected \"}\" in label matching, expected string",
            ),
            (
                "foo{a=b}",
                "1:7: parse error: unexpected identifier \"b\" in label matching, expected string",
            ),
            (
                "{\"a\"=~}",
                "1:7: parse error: unexpected \"}\" in label matching, expected string",
            ),
            (
                "foo{a=\"b\" c=\"d\"}",
                "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\"",
            ),
            (
                "{\"a\" b}",
                "1:6: parse error: unexpected identifier \"b\" in label matching, expected \",\" or \"}\"",
            ),
            (
                "{,}",
                "1:2: parse error: unexpected \",\" in label matching, expected identifier or \"}\"",
            ),
            (
                "{a=\"b\",,}",
                "1:8: parse error: unexpected \",\" in label matching, expected identifier or \"}\"",
            ),
            (
                "{=~\"a\"}",
                "1:2: parse error: unexpected <op:=~> in label matching, expected identifier or \"}\"",
            ),
            ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
            (
                "foo{a=\"b\"} x",
                "1:12: parse error: unexpected identifier \"x\"",
            ),
            ("foo{}{}", "1:6: parse error: unexpected \"{\""),
            ("123", "1:1: parse error: unexpected number \"123\""),
            ("nan", "1:1: parse error: unexpected number \"nan\""),
            (
                "\"foo\"",
                "1:1: parse error: unexpected string \"\\\"foo\\\"\"",
            ),
            ("on", "1:1: parse error: unexpected <on>"),
            ("atan2", "1:1: parse error: unexpected <op:atan2>"),
            ("sum(foo)", "1:4: parse error: unexpected \"(\""),
            ("foo[5m]", "1:4: parse error: unexpected \"[\""),
            ("foo offset 5m", "1:5: parse error: unexpected <offset>"),
            ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
            ("foo}", "1:4: parse error: unexpected character: '}'"),
            (
                "foo{a=\"\\z\"}",
                "1:7: parse error: unknown escape sequence U+007A 'z'",
            ),
            ("foo{a=\"b}", "1:7: parse error: unterminated quoted string"),
            (
                "foo{a=~\"(\"}",
                "1:5: parse error: invalid regular expression \"(\": unclosed group",
            ),
            ("{a=\"b\"}\n{", "2:1: parse error: unexpected \"{\""),
        ] {
            assert_eq!(err(input), want, "{input:?}");
        }
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            err("{}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher"
        );
        assert_eq!(
            err("  {a=~\".*\"}"),
            "1:3: parse error: vector selector must contain at least one non-empty matcher"
        );
        assert_eq!(
            err("{a=\"\", b!=\"x\"}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher"
        );
        assert_eq!(
            err("{\"\"}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher"
        );
        assert!(parse_selector("{__name__!=\"\"}").is_ok());
        assert!(parse_selector("{a=~\".+\"}").is_ok());
        assert_eq!(
            err("foo{__name__=\"bar\"}"),
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""
        );
        assert_eq!(
            err("foo{\"bar\"}"),
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""
        );
        assert_eq!(
            err("foo{__name__=~\"b.*\"}"),
            "1:1: parse error: metric name must not be set twice: \"foo\" or \"b.*\""
        );
        // A name inside braces twice is allowed (the matchers are ANDed).
        assert!(parse_selector("{\"a\", __name__=\"b\"}").is_ok());
        // The API-level parser leaves the empty check to its caller.
        let vs = parse_vector_selector("{}").unwrap();
        assert!(!vs.has_non_empty_matcher());
        assert!(parse_vector_selector("foo{__name__=\"x\"}").is_err());
    }

    #[test]
    fn printing_round_trips() {
        for input in [
            "up",
            "sum",
            r#"up{job="a\"b", path=~"/x\\.y"}"#,
            r#"{"metric.name", "a.b"!~"x|y", c="\n\t\u0000"}"#,
            r#"{__name__="x", __name__!="y"}"#,
            "{a=\"\\ufffd\"}",
        ] {
            let vs = parse_vector_selector(input).unwrap();
            let printed = vs.to_string();
            assert_eq!(
                parse_vector_selector(&printed).map(|v| (v.name, v.matchers)),
                Ok((vs.name.clone(), vs.matchers.clone())),
                "{input} -> {printed}"
            );
            let flat = format_matchers(&vs.matchers);
            assert_eq!(
                parse_vector_selector(&flat).map(|v| v.matchers),
                Ok(vs.matchers),
                "{input} -> {flat}"
            );
        }
        assert_eq!(
            parse_vector_selector("up{a='b'}").unwrap().to_string(),
            "up{a=\"b\"}"
        );
        assert_eq!(parse_vector_selector("up").unwrap().to_string(), "up");
        assert_eq!(
            format_matchers(&[eq("a.b", "1"), eq("__name__", "x")]),
            r#"{"a.b"="1", __name__="x"}"#
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn round_trips(input: &str) -> Result<(), TestCaseError> {
            if let Ok(ms) = parse_selector(input) {
                let printed = format_matchers(&ms);
                prop_assert_eq!(
                    parse_selector(&printed),
                    Ok(ms),
                    "{:?} -> {:?}",
                    input,
                    printed
                );
            }
            if let Ok(vs) = parse_vector_selector(input) {
                let printed = vs.to_string();
                let again = parse_vector_selector(&printed);
                prop_assert_eq!(
                    again.map(|v| (v.name, v.matchers)),
                    Ok((vs.name, vs.matchers)),
                    "{:?} -> {:?}",
                    input,
                    printed
                );
            }
            Ok(())
        }

        fn label_name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
                Just("__name__".to_string()),
                any::<String>().prop_map(|s| s.chars().take(6).collect()),
            ]
        }

        fn matcher() -> impl Strategy<Value = Matcher> {
            let plain = (
                label_name(),
                prop_oneof![Just(MatchOp::Equal), Just(MatchOp::NotEqual)],
                any::<String>(),
            )
                .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap());
            let regex = (
                label_name(),
                prop_oneof![Just(MatchOp::RegexMatch), Just(MatchOp::RegexNoMatch)],
                "([a-z.]|\\.|\\*|\\+|\\||\\(a\\)|é|\"){0,6}",
            )
                .prop_filter_map("valid regex", |(n, op, v)| Matcher::new(op, n, v).ok());
            prop_oneof![plain, regex]
        }

        proptest! {
            #[test]
            fn never_panics_on_arbitrary_strings(input in any::<String>()) {
                round_trips(&input)?;
            }

            #[test]
            fn never_panics_on_selector_like_strings(input in "[a-z_:{}=~!\"'`,# \\\\\n\t.0-9\\[\\]()éxU+-]{0,40}") {
                round_trips(&input)?;
            }

            #[test]
            fn printed_matchers_reparse_identically(mut ms in proptest::collection::vec(matcher(), 0..6), name in "[a-z_:][a-z0-9_:]{0,8}") {
                ms.push(Matcher::equal(METRIC_NAME, name.clone()));
                let printed = format_matchers(&ms);
                prop_assert_eq!(parse_selector(&printed), Ok(ms.clone()), "{}", printed);
                // The same with the name written bare, when it is not a keyword.
                let inner: Vec<Matcher> = ms[..ms.len() - 1].iter().filter(|m| m.name != METRIC_NAME).cloned().collect();
                let bare = format!("{name}{}", format_matchers(&inner));
                if let Ok(vs) = parse_vector_selector(&bare) {
                    let mut want = inner.clone();
                    want.push(Matcher::equal(METRIC_NAME, name.clone()));
                    prop_assert_eq!(vs.matchers, want);
                } else {
                    let kw = crate::promql::lexer::Keyword::lookup(&name);
                    prop_assert!(kw.is_some() || name.eq_ignore_ascii_case("inf") || name.eq_ignore_ascii_case("nan"), "{}", bare);
                }
            }
        }
    }
}
