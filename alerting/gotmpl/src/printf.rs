//! Go's `fmt.Sprint`, `fmt.Sprintln` and `fmt.Sprintf` over [`Value`]s.
//!
//! Verbs: `%v %s %d %f %F %e %E %g %G %x %X %o %O %b %c %q %U %t %T %%`, with
//! flags `+ - # 0 space`, widths and precisions (also `*`). Errors print the
//! way Go prints them: `%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int=1)`.

use crate::value::{Value, format_float_e, format_float_f, format_float_g_impl};

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && a.as_str().is_none() && args[i - 1].as_str().is_none() {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out: Vec<String> = args.iter().map(Value::to_go_string).collect();
    out.push(String::new());
    let mut s = out[..out.len() - 1].join(" ");
    s.push('\n');
    s
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        quote_char_into(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`: `'a'`, `'\n'`, `'\x00'`.
pub fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    quote_char_into(&mut out, c, '\'');
    out.push('\'');
    out
}

fn quote_char_into(out: &mut String, c: char, quote: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Largest width or precision honoured (Go allows up to 1e6).
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut f = Flags::default();
        // Flags.
        while let Some(&(_, c)) = chars.peek() {
            match c {
                '+' => f.plus = true,
                '-' => f.minus = true,
                '#' => f.sharp = true,
                '0' => f.zero = !f.minus,
                ' ' => f.space = true,
                _ => break,
            }
            chars.next();
        }
        // Width.
        if chars.peek().map(|p| p.1) == Some('*') {
            chars.next();
            match args.get(argi) {
                Some(Value::Int(w)) => {
                    argi += 1;
                    if *w < 0 {
                        f.minus = true;
                        f.zero = false;
                    }
                    let w = w.unsigned_abs() as usize;
                    if w > MAX_WIDTH {
                        out.push_str("%!(BADWIDTH)");
                    } else {
                        f.width = Some(w);
                    }
                }
                _ => {
                    argi += 1;
                    out.push_str("%!(BADWIDTH)");
                }
            }
        } else {
            f.width = read_num(&mut chars);
        }
        // Precision.
        if chars.peek().map(|p| p.1) == Some('.') {
            chars.next();
            if chars.peek().map(|p| p.1) == Some('*') {
                chars.next();
                match args.get(argi) {
                    Some(Value::Int(p)) if *p >= 0 && (*p as usize) <= MAX_WIDTH => {
                        argi += 1;
                        f.prec = Some(*p as usize);
                    }
                    _ => {
                        argi += 1;
                        out.push_str("%!(BADPREC)");
                    }
                }
            } else {
                f.prec = Some(read_num(&mut chars).unwrap_or(0));
            }
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
            }
            Some(a) => {
                argi += 1;
                format_value(&mut out, a, verb, f);
            }
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(a.type_name());
            out.push('=');
            format_value(&mut out, a, 'v', Flags::default());
        }
        out.push(')');
    }
    out
}

fn read_num(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, c)) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(MAX_WIDTH));
        chars.next();
    }
    n
}

fn pad(out: &mut String, s: &str, f: Flags, numeric: bool) {
    let len = s.chars().count();
    let w = f.width.unwrap_or(0);
    if len >= w {
        out.push_str(s);
        return;
    }
    let fill = w - len;
    if f.minus {
        out.push_str(s);
        out.push_str(&" ".repeat(fill));
    } else if f.zero && numeric {
        // Zeros go after the sign.
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+' | b'-' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.push_str(&"0".repeat(fill));
        out.push_str(rest);
    } else {
        out.push_str(&" ".repeat(fill));
        out.push_str(s);
    }
}

fn bad_verb(out: &mut String, v: &Value, verb: char) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    match v {
        Value::Nil => out.push_str("<nil>"),
        v => {
            out.push_str(v.type_name());
            out.push('=');
            format_value(out, v, 'v', Flags::default());
        }
    }
    out.push(')');
}

fn sign_prefix(neg: bool, f: Flags) -> &'static str {
    if neg {
        "-"
    } else if f.plus {
        "+"
    } else if f.space {
        " "
    } else {
        ""
    }
}

fn format_int(out: &mut String, i: i64, verb: char, f: Flags) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let (digits, prefix) = match verb {
        'd' | 'v' => (u.to_string(), ""),
        'b' => (format!("{u:b}"), if f.sharp { "0b" } else { "" }),
        'o' => (format!("{u:o}"), if f.sharp { "0" } else { "" }),
        'O' => (format!("{u:o}"), "0o"),
        'x' => (format!("{u:x}"), if f.sharp { "0x" } else { "" }),
        'X' => (format!("{u:X}"), if f.sharp { "0X" } else { "" }),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), f, false);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let mut s = String::from("'");
            quote_char_into(&mut s, c, '\'');
            s.push('\'');
            pad(out, &s, f, false);
            return;
        }
        'U' => {
            let s = if neg {
                format!("U+-{u:04X}")
            } else {
                format!("U+{u:04X}")
            };
            pad(out, &s, f, false);
            return;
        }
        _ => {
            bad_verb(out, &Value::Int(i), verb);
            return;
        }
    };
    let digits = match f.prec {
        Some(0) if u == 0 => String::new(),
        Some(p) if digits.len() < p => "0".repeat(p - digits.len()) + &digits,
        _ => digits,
    };
    let s = format!("{}{prefix}{digits}", sign_prefix(neg, f));
    // A precision turns off zero padding, as in Go.
    let f = Flags {
        zero: f.zero && f.prec.is_none(),
        ..f
    };
    pad(out, &s, f, true);
}

fn format_float(out: &mut String, x: f64, verb: char, f: Flags) {
    let body = match verb {
        'v' | 'g' => format_float_g_impl(x.abs(), f.prec, 'e', f.sharp),
        'G' => format_float_g_impl(x.abs(), f.prec, 'E', f.sharp),
        'e' => format_float_e(x.abs(), f.prec.unwrap_or(6), 'e'),
        'E' => format_float_e(x.abs(), f.prec.unwrap_or(6), 'E'),
        'f' | 'F' => format_float_f(x.abs(), f.prec.unwrap_or(6)),
        _ => {
            bad_verb(out, &Value::Float(x), verb);
            return;
        }
    };
    let neg = x.is_sign_negative() && !x.is_nan();
    // Go always prints the sign of an infinity.
    let s = if x.is_infinite() {
        let sign = if neg {
            "-"
        } else if f.space && !f.plus {
            " "
        } else {
            "+"
        };
        format!("{sign}Inf")
    } else if x.is_nan() {
        let sign = if f.plus {
            "+"
        } else if f.space {
            " "
        } else {
            ""
        };
        format!("{sign}NaN")
    } else {
        format!("{}{body}", sign_prefix(neg, f))
    };
    let f = Flags {
        zero: f.zero && x.is_finite(),
        ..f
    };
    pad(out, &s, f, true);
}

fn format_str(out: &mut String, s: &str, verb: char, f: Flags) {
    let s: String = match f.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q' | 'x' | 'X') => s.chars().take(p).collect(),
        _ => s.to_string(),
    };
    match verb {
        'v' | 's' => pad(out, &s, f, false),
        'q' => {
            if f.sharp && !s.contains('`') && !s.chars().any(|c| c.is_control() && c != '\t') {
                pad(out, &format!("`{s}`"), f, false);
            } else {
                pad(out, &go_quote(&s), f, false);
            }
        }
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in s.bytes().enumerate() {
                if f.space && i > 0 {
                    h.push(' ');
                }
                if f.sharp && (f.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, &h, f, false);
        }
        _ => bad_verb(out, &Value::String(s), verb),
    }
}

fn format_value(out: &mut String, v: &Value, verb: char, f: Flags) {
    if verb == 'T' {
        pad(out, v.type_name(), f, false);
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, "<nil>", f, false),
            _ => bad_verb(out, v, verb),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, f, false),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) => format_int(out, *i, verb, f),
        Value::Float(x) => format_float(out, *x, verb, f),
        Value::String(s) | Value::SafeHtml(s) => {
            if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X') {
                format_str(out, s, verb, f);
            } else {
                bad_verb(out, v, verb);
            }
        }
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_value(out, e, verb, f);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_str(out, k, if verb == 'v' { 's' } else { verb }, f);
                out.push(':');
                format_value(out, e, verb, f);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fmt: &str, args: &[Value]) -> String {
        sprintf(fmt, args)
    }

    #[test]
    fn verbs_like_go() {
        assert_eq!(p("%s=%d", &["a".into(), 5i64.into()]), "a=5");
        assert_eq!(p("%.2f", &[1.23456.into()]), "1.23");
        assert_eq!(p("%f", &[1.0.into()]), "1.000000");
        assert_eq!(p("%v %v", &[1e6.into(), 0.5.into()]), "1e+06 0.5");
        assert_eq!(p("%q", &["a\"b\n".into()]), r#""a\"b\n""#);
        assert_eq!(p("%x %X", &[255i64.into(), 255i64.into()]), "ff FF");
        assert_eq!(p("%x", &["hi".into()]), "6869");
        assert_eq!(
            p("%g %e", &[1234567.0.into(), 1234.5678.into()]),
            "1.234567e+06 1.234568e+03"
        );
        assert_eq!(p("%t %v", &[true.into(), Value::Nil]), "true <nil>");
        assert_eq!(p("100%%", &[]), "100%");
        assert_eq!(
            p(
                "%5d|%-5d|%05d",
                &[42i64.into(), 42i64.into(), (-42i64).into()]
            ),
            "   42|42   |-0042"
        );
        assert_eq!(
            p(
                "%8.3f|%-8s|%8s",
                &[1.23456.into(), "ab".into(), "cd".into()]
            ),
            "   1.235|ab      |      cd"
        );
        assert_eq!(p("%+d %+.1f", &[5i64.into(), 2.0.into()]), "+5 +2.0");
        assert_eq!(p("%c %U", &[65i64.into(), 0x1F600i64.into()]), "A U+1F600");
        assert_eq!(
            p("%T %T %T", &[1i64.into(), "s".into(), 1.5.into()]),
            "int string float64"
        );
        assert_eq!(p("%.1s", &["héllo".into()]), "h");
        assert_eq!(p("%*d", &[4i64.into(), 7i64.into()]), "   7");
        assert_eq!(
            p("%v", &[Value::List(vec!["a".into(), 1i64.into()])]),
            "[a 1]"
        );
        assert_eq!(p("%q", &[Value::List(vec!["a".into()])]), r#"["a"]"#);
        assert_eq!(p("%.3g", &[f64::INFINITY.into()]), "+Inf");
        assert_eq!(
            p("%f %v", &[f64::NEG_INFINITY.into(), f64::NAN.into()]),
            "-Inf NaN"
        );
        assert_eq!(p("%.2f%%", &[12.3456.into()]), "12.35%");
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(p("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(p("%s", &[5i64.into()]), "%!s(int=5)");
        assert_eq!(p("%d %d", &[1i64.into()]), "1 %!d(MISSING)");
        assert_eq!(p("%d", &[1i64.into(), "a".into()]), "1%!(EXTRA string=a)");
        assert_eq!(p("%", &[]), "%!(NOVERB)");
        assert_eq!(p("%z", &[1i64.into()]), "%!z(int=1)");
        assert_eq!(p("%d", &[Value::Nil]), "%!d(<nil>)");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(
            sprint(&[1i64.into(), 2i64.into(), "a".into(), 3i64.into()]),
            "1 2a3"
        );
        assert_eq!(sprintln(&[1i64.into(), "a".into()]), "1 a\n");
        assert_eq!(sprintln(&[]), "\n");
    }

    #[test]
    fn quote() {
        assert_eq!(go_quote("a\u{0}b\té"), "\"a\\x00b\\té\"");
    }
}
