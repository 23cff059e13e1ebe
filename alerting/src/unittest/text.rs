//! Go's renderings that promtool's failure reports use: `labels.String()`,
//! `strconv.FormatFloat(v, 'E', -1, 64)`, `time.Duration.String()` and
//! promtool's line indentation.

use engine::Label;
use query::gofmt;

/// Label (or annotation) pairs sorted by name, empty values kept.
pub(super) type Pairs = Vec<(String, String)>;

pub(super) fn pairs_of<'a>(labels: impl Iterator<Item = &'a Label>) -> Pairs {
    labels
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// Go's `labels.Labels.String()`: `{a="1", b="2"}`.
pub(super) fn labels_string(p: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in p.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&gofmt::quote(v));
    }
    s.push('}');
    s
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `3.5E-07`, `NaN`, `+Inf`.
pub(super) fn float_e(v: f64) -> String {
    gofmt::format_float_e(v)
        .to_uppercase()
        .replace("INF", "Inf")
        .replace("NAN", "NaN")
}

/// promtool's `parsedSamplesString`: `{a="b"} 1E+00, {} 2E+00`, or `nil`.
pub(super) fn samples_string(v: &[(Pairs, f64)]) -> String {
    if v.is_empty() {
        return "nil".to_string();
    }
    v.iter()
        .map(|(l, x)| format!("{} {}", labels_string(l), float_e(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prefixes every line but the first with `indent`.
pub(super) fn indent_lines(lines: &str, indent: &str) -> String {
    let mut out = String::with_capacity(lines.len());
    for (i, l) in lines.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(l);
    }
    out
}

/// Go's `time.Duration.String()` of `ns` nanoseconds: `0s`, `1.5s`,
/// `1m0s`, `1h2m3s`, `500ms`, `1.5µs`, `7ns`.
pub(super) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut s = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        s.push_str(&fraction(u / div, u % div, div));
        s.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let (h, m, sec) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            s.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            s.push_str(&format!("{m}m"));
        }
        s.push_str(&fraction(sec, frac, 1_000_000_000));
        s.push('s');
    }
    if neg {
        s.insert(0, '-');
    }
    s
}

/// `whole.frac` with the fraction's trailing zeros trimmed (`div` is the
/// fraction's scale, a power of ten).
fn fraction(whole: u64, frac: u64, div: u64) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_renderings() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(2_000), "2µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(-90_000_000_000), "-1m30s");
        assert_eq!(float_e(1.0), "1E+00");
        assert_eq!(float_e(0.30000000000000004), "3.0000000000000004E-01");
        assert_eq!(float_e(f64::NAN), "NaN");
        assert_eq!(float_e(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float_e(1e-7), "1E-07");
        let p = vec![
            ("a".to_string(), "x\"y".to_string()),
            ("b".into(), "".into()),
        ];
        assert_eq!(labels_string(&p), r#"{a="x\"y", b=""}"#);
        assert_eq!(labels_string(&[]), "{}");
        assert_eq!(samples_string(&[]), "nil");
        assert_eq!(
            samples_string(&[(vec![], 2.0), (p, 1.5)]),
            r#"{} 2E+00, {a="x\"y", b=""} 1.5E+00"#
        );
        assert_eq!(indent_lines("a\nb\nc", "  "), "a\n  b\n  c");
    }
}
