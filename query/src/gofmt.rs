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
    let mut out = String::with_capacity(24);
    write_float_f(&mut out, v);
    out
}

/// `strconv.FormatFloat(v, 'e', -1, 64)`: shortest round-trip mantissa and
/// an exponent of at least two digits with an explicit sign (`1e-07`,
/// `1.5e+21`); `NaN`, `+Inf`, `-Inf`.
pub fn format_float_e(v: f64) -> String {
    let mut out = String::with_capacity(24);
    write_float_e(&mut out, v);
    out
}

/// 2^53: every integer of smaller magnitude is exactly a float.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// Appends [`format_float_f`]'s text.
pub fn write_float_f(out: &mut String, v: f64) {
    // Whole numbers below 2^53 (counts, byte gauges, `up`): floats there
    // are at most 1 apart, so the shortest decimal that parses back to
    // one has the integer's significant digits, and 'f' writes them with
    // the integer's trailing zeros: Go's text is the integer's.
    if v != 0.0 && v.abs() < EXACT_INTEGERS && v.fract() == 0.0 {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    // Fast path: `ryu` writes most values (magnitudes from 1e-5 to 1e16)
    // without an exponent, as the same digits Go picks; Go only drops the
    // `.0` of whole numbers. Range queries print a value per point, so
    // this path must not allocate.
    if v != 0.0 && v.is_finite() {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        if !s.bytes().any(|b| b == b'e') {
            out.push_str(s.strip_suffix(".0").unwrap_or(s));
            return;
        }
    }
    write_float_f_from_digits(out, v);
}

/// [`write_float_f`] composed from [`shortest`]'s digits and exponent,
/// for every value.
fn write_float_f_from_digits(out: &mut String, v: f64) {
    let Some((negative, digits, exp)) = shortest(out, v) else {
        return;
    };
    let digits = digits.as_str();
    if negative {
        out.push('-');
    }
    if exp < 0 {
        out.push_str("0.");
        for _ in 1..exp.unsigned_abs() {
            out.push('0');
        }
        out.push_str(digits);
    } else if digits.len() > exp as usize + 1 {
        let (int, frac) = digits.split_at(exp as usize + 1);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str(digits);
        for _ in digits.len()..=exp as usize {
            out.push('0');
        }
    }
}

/// Appends [`format_float_e`]'s text.
pub fn write_float_e(out: &mut String, v: f64) {
    let Some((negative, digits, exp)) = shortest(out, v) else {
        return;
    };
    let digits = digits.as_str();
    if negative {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    if exp.unsigned_abs() < 10 {
        out.push('0');
    }
    out.push_str(itoa::Buffer::new().format(exp.unsigned_abs()));
}

/// The significant digits of a float as ASCII, on the stack (a shortest
/// round-trip `f64` has at most 17).
struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The shortest digits that parse back to `v` (no leading or trailing
/// zeros; "0" for ±0) and the decimal exponent of the first one. The
/// digits are `ryu`'s: the closest of the shortest to `v`, a tie going to
/// the even digit, which is how Go picks them (Rust's `Display` rounds ties
/// up: `2007997726470640.25` is `…640.3` there, `…640.2` in Go). NaN and
/// ±Inf are written to `out` at once (`None`).
fn shortest(out: &mut String, v: f64) -> Option<(bool, Digits, i32)> {
    if let Some(s) = special(v) {
        out.push_str(s);
        return None;
    }
    let negative = v.is_sign_negative();
    let mut digits = Digits {
        buf: [0; 20],
        len: 0,
    };
    if v == 0.0 {
        digits.buf[0] = b'0';
        digits.len = 1;
        return Some((negative, digits, 0));
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v.abs());
    let (mantissa, exp) = match s.split_once('e') {
        // `d.ddde±x`: the first digit's exponent is x.
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        // Plain `iii.fff`: the first digit's exponent follows from where
        // the point is and the zeros before the first digit.
        None => {
            let point = s.find('.').unwrap_or(s.len()) as i32;
            let zeros = s
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'.')
                .filter(|b| *b == b'0')
                .count() as i32;
            (s, point - 1 - zeros)
        }
    };
    let significant = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|b| *b == b'0');
    for (slot, b) in digits.buf.iter_mut().zip(significant) {
        *slot = b;
        digits.len += 1;
    }
    debug_assert!(digits.len <= 17, "a shortest f64 has at most 17 digits");
    while digits.len > 1 && digits.buf[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    Some((negative, digits, exp))
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
            (1234.0, "1234"),
            (-1.5, "-1.5"),
            (0.0001234, "0.0001234"),
            (0.00001234, "0.00001234"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (-42.0, "-42"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (9_007_199_254_740_994.0, "9007199254740994"),
            (123456789012345680.0, "123456789012345680"),
            // A tie between two shortest texts: the even digit, as in Go.
            (2_007_997_726_470_640.0 + 0.25, "2007997726470640.2"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float_f(v), want, "{v}");
        }
        // 1.7976931348623157e308 and 2.2250738585072014e-308 in full.
        let max = format!("17976931348623157{}", "0".repeat(292));
        assert_eq!(format_float_f(f64::MAX), max);
        let min = format!("0.{}22250738585072014", "0".repeat(307));
        assert_eq!(format_float_f(f64::MIN_POSITIVE), min);
    }

    proptest::proptest! {
        /// The fast path writes what the digit-by-digit composition
        /// writes, and the text parses back to the same value.
        #[test]
        fn format_float_f_fast_path_agrees(bits in proptest::prelude::any::<u64>(), m in -1_000_000_000i64..1_000_000_000, k in 0i32..12, whole in -(1i64 << 54)..(1i64 << 54)) {
            for v in [f64::from_bits(bits), m as f64 / 10f64.powi(k), whole as f64, m as f64 * 10f64.powi(k)] {
                let mut slow = String::new();
                write_float_f_from_digits(&mut slow, v);
                let fast = format_float_f(v);
                proptest::prop_assert_eq!(&fast, &slow, "{:?}", v);
                if v.is_finite() {
                    proptest::prop_assert_eq!(fast.parse::<f64>().ok(), Some(v));
                }
            }
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
