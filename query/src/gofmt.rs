//! Go-compatible text formatting: `strconv.Quote`, `%q` on runes, `%#U`,
//! and `strconv.FormatFloat` with precision -1. Prometheus renders error
//! messages and values with these, and clients (Grafana) parse them back,
//! so Silt reproduces them exactly where it matters.

use std::fmt::Write as _;

/// `strconv.Quote(s)`: double-quoted with Go escapes.
///
/// Non-printable characters are escaped as Go does for ASCII and for the
/// Unicode categories Rust can identify without tables (controls, spaces
/// other than U+0020, common format characters).
pub fn quote(s: &str) -> String {
    quote_with(s, false)
}

/// [`quote`] for PromQL string literals: also escapes U+FFFD (`\ufffd`),
/// which Prometheus's lexer rejects raw inside strings, so every quoted
/// string lexes back to the same value.
pub fn quote_promql(s: &str) -> String {
    quote_with(s, true)
}

fn quote_with(s: &str, escape_replacement_char: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if escape_replacement_char && c == '\u{FFFD}' {
            out.push_str("\\ufffd");
        } else {
            push_escaped(&mut out, c, '"');
        }
    }
    out.push('"');
    out
}

/// `%q` applied to a rune: single-quoted with Go escapes. `None` stands for
/// Go's end-of-input rune (-1), which Go prints as `'�'`.
pub fn quote_rune(c: Option<char>) -> String {
    let mut out = String::with_capacity(4);
    out.push('\'');
    match c {
        Some(c) => push_escaped(&mut out, c, '\''),
        None => out.push('\u{FFFD}'),
    }
    out.push('\'');
    out
}

/// `%#U`: `U+0078 'x'`, or just `U+0007` for a non-printable character.
pub fn unicode(c: char) -> String {
    let mut out = format!("U+{:04X}", c as u32);
    if is_print(c) {
        let _ = write!(out, " '{c}'");
    }
    out
}

/// `%.10q` followed by `...`: the first ten characters of `s`, quoted.
/// Prometheus uses this to describe long tokens in error messages.
pub fn quote_truncated(s: &str) -> String {
    if s.len() <= 10 {
        return quote(s);
    }
    let head: String = s.chars().take(10).collect();
    format!("{}...", quote(&head))
}

fn push_escaped(out: &mut String, c: char, quote_char: char) {
    if c == quote_char || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{07}' => out.push_str("\\a"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0C}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0B}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7F}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// An approximation of Go's `unicode.IsPrint` that needs no tables:
/// everything except control characters, non-ASCII whitespace, and the
/// common invisible format characters.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E000}'..='\u{F8FF}'
            | '\u{F0000}'..='\u{10FFFF}'
    )
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that parses
/// back to `v`, never in exponent form; `NaN`, `+Inf`, `-Inf`.
pub fn format_float_f(v: f64) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    // Rust's `Display` for f64 prints the shortest round-trip digits
    // without an exponent, exactly like Go's 'f' with precision -1.
    format!("{v}")
}

/// `strconv.FormatFloat(v, 'e', -1, 64)`: shortest round-trip mantissa and
/// an exponent of at least two digits with an explicit sign (`1e-07`,
/// `1.5e+21`); `NaN`, `+Inf`, `-Inf`.
pub fn format_float_e(v: f64) -> String {
    if let Some(s) = special(v) {
        return s.to_string();
    }
    let rust = format!("{v:e}");
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust.as_str(), "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let mut out = String::with_capacity(mantissa.len() + 5);
    out.push_str(mantissa);
    out.push('e');
    out.push(sign);
    if digits.len() < 2 {
        out.push('0');
    }
    out.push_str(digits);
    out
}

fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("abc"), r#""abc""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\tnl\ncr\r"), r#""tab\tnl\ncr\r""#);
        assert_eq!(quote("\u{7}\u{0}\u{7f}"), r#""\a\x00\x7f""#);
        assert_eq!(quote("é漢🙂"), "\"é漢🙂\"");
        assert_eq!(
            quote("\u{200B}\u{FFFD}\u{10FFFF}"),
            "\"\\u200b\u{FFFD}\\U0010ffff\""
        );
        assert_eq!(quote_promql("a\u{FFFD}"), r#""a\ufffd""#);
        assert_eq!(quote("'"), r#""'""#);
    }

    #[test]
    fn quote_rune_and_unicode_match_go() {
        assert_eq!(quote_rune(Some('x')), "'x'");
        assert_eq!(quote_rune(Some('\'')), r"'\''");
        assert_eq!(quote_rune(Some('"')), "'\"'");
        assert_eq!(quote_rune(Some('\n')), r"'\n'");
        assert_eq!(quote_rune(None), "'\u{FFFD}'");
        assert_eq!(unicode('z'), "U+007A 'z'");
        assert_eq!(unicode('\n'), "U+000A");
        assert_eq!(unicode('é'), "U+00E9 'é'");
    }

    #[test]
    fn quote_truncated_matches_go_precision() {
        assert_eq!(quote_truncated("short"), r#""short""#);
        assert_eq!(quote_truncated("\"abcdefghijkl\""), r#""\"abcdefghi"..."#);
    }

    #[test]
    fn format_float_f_matches_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (123456.789, "123456.789"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float_f(v), want, "{v}");
        }
    }

    #[test]
    fn format_float_e_matches_go() {
        for (v, want) in [
            (1e-7, "1e-07"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (-2.5e-300, "-2.5e-300"),
            (1.0, "1e+00"),
            (0.25, "2.5e-01"),
            (1e100, "1e+100"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float_e(v), want, "{v}");
        }
    }
}
