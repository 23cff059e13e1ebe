//! Go (RE2) regular expressions on Rust's `regex` crate.
//!
//! The two syntaxes nearly agree. Where they differ, [`translate`] rewrites
//! the Go pattern: `\d \w \s \b` are ASCII in Go (Unicode in Rust), `[`,
//! `&` and `~` are plain characters inside a Go class (nesting and set
//! operators in Rust), a `{` that starts no repetition is literal in Go,
//! and `\Q...\E` quotes.

/// Rewrites a Go regular expression into one Rust's `regex` reads the same
/// way. Invalid Go patterns stay invalid.
pub(crate) fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Inside a character class: how many chars since it opened (for a
    // leading `]`, which is literal).
    let mut class: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            i += 2;
            if e == 'Q' {
                // Literal text up to `\E` (or the end).
                let mut lit = String::new();
                while i < chars.len() && !(chars[i] == '\\' && chars.get(i + 1) == Some(&'E')) {
                    lit.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    i += 2;
                }
                for l in lit.chars() {
                    push_literal(&mut out, l);
                }
                if let Some(n) = class.as_mut() {
                    *n += 1;
                }
                continue;
            }
            let inside = class.is_some();
            let rep = match (e, inside) {
                ('d', false) => Some("[0-9]"),
                ('D', _) => Some("[^0-9]"),
                ('w', false) => Some("[0-9A-Za-z_]"),
                ('W', _) => Some("[^0-9A-Za-z_]"),
                ('s', false) => Some("[\\t\\n\\f\\r ]"),
                ('S', _) => Some("[^\\t\\n\\f\\r ]"),
                ('d', true) => Some("0-9"),
                ('w', true) => Some("0-9A-Za-z_"),
                ('s', true) => Some("\\t\\n\\f\\r "),
                ('b', false) => Some("(?-u:\\b)"),
                ('B', false) => Some("(?-u:\\B)"),
                _ => None,
            };
            match rep {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(e);
                }
            }
            if let Some(n) = class.as_mut() {
                *n += 1;
            }
            continue;
        }
        match class {
            None => match c {
                '[' => {
                    out.push('[');
                    class = Some(0);
                    if chars.get(i + 1) == Some(&'^') {
                        out.push('^');
                        i += 1;
                    }
                }
                '{' if !starts_repetition(&chars[i..]) => out.push_str("\\{"),
                c => out.push(c),
            },
            Some(n) => {
                match c {
                    ']' if n > 0 => {
                        out.push(']');
                        class = None;
                        i += 1;
                        continue;
                    }
                    ']' => out.push_str("\\]"),
                    '[' if chars.get(i + 1) == Some(&':') => {
                        // A POSIX class `[:alpha:]`: copy through its `:]`.
                        let end = (i + 2..chars.len().saturating_sub(1))
                            .find(|&j| chars[j] == ':' && chars[j + 1] == ']');
                        match end {
                            Some(j) => {
                                out.extend(&chars[i..j + 2]);
                                i = j + 2;
                                class = Some(n + 1);
                                continue;
                            }
                            None => out.push_str("\\["),
                        }
                    }
                    '[' | '&' | '~' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
                class = Some(n + 1);
            }
        }
        i += 1;
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

/// Whether `{...}` at the start of `s` is a repetition `{n}`, `{n,}`, `{n,m}`.
fn starts_repetition(s: &[char]) -> bool {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    s.get(i) == Some(&'}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(&translate(pattern))
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn ascii_classes_like_go() {
        assert!(!matches(r"^\d$", "٣"));
        assert!(matches(r"^\d+$", "123"));
        assert!(!matches(r"^\w$", "é"));
        assert!(matches(r"^[\w.]+$", "a_b.c"));
        assert!(matches(r"^[^\d]+$", "abc"));
        assert!(matches(r"^[\D]$", "é"));
        assert!(!matches(r"^\s$", "\u{a0}"));
        assert!(matches(r"\bfoo\b", "a foo b"));
    }

    #[test]
    fn class_literals_like_go() {
        assert!(matches(r"^[[]$", "["));
        assert!(matches(r"^[]a]+$", "]a"));
        assert!(matches(r"^[a&&b]+$", "&"));
        assert!(matches(r"^[~]$", "~"));
        assert!(matches(r"^[[:alpha:]]+$", "abc"));
        assert!(matches(r"^[^]]$", "a"));
    }

    #[test]
    fn braces_and_quotes_like_go() {
        assert!(matches(r"^a{$", "a{"));
        assert!(matches(r"^a{2}$", "aa"));
        assert!(matches(r"^a{1,}$", "aaa"));
        assert!(matches(r"^x{a}$", "x{a}"));
        assert!(matches(r"^\Qa.b*\E$", "a.b*"));
        assert!(!matches(r"^\Qa.b\E$", "axb"));
        assert_eq!(translate(r"(a)\1"), r"(a)\1");
    }

    proptest::proptest! {
        #[test]
        fn any_pattern_translates_without_panic(p in r"[\\\[\]{}()^$.*+?|&~:,0-9a-zA-Z_QEdwsbDWSB-]{0,24}") {
            let t = translate(&p);
            let _ = regex::RegexBuilder::new(&t).size_limit(1 << 22).build();
        }
    }
}
