//! How numbers look on the wire. Prometheus query results carry values as
//! JSON strings (`"1"`, `"1e-07"`, `"NaN"`, `"+Inf"`) and timestamps as
//! JSON numbers of seconds with millisecond precision; the export endpoint
//! writes VictoriaMetrics-style JSON numbers that round-trip exactly.

use crate::gofmt;

/// A sample value as Prometheus renders it (without the JSON quotes):
/// Go's `FormatFloat(v, 'f', -1)`, switching to exponent form (`'e'`) when
/// `|v| < 1e-6` or `|v| >= 1e21` (v ≠ 0); `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    let mut s = String::with_capacity(24);
    write_value(&mut s, v);
    s
}

/// Appends [`format_value`]'s text without allocating (value formatting
/// used to be most of a range query's answer time).
pub fn write_value(out: &mut String, v: f64) {
    if needs_exponent(v) {
        gofmt::write_float_e(out, v);
    } else {
        gofmt::write_float_f(out, v);
    }
}

/// Prometheus's switch to exponent form: `|v| < 1e-6` or `|v| >= 1e21`, v ≠ 0.
/// (NaN and ±Inf print the same either way.)
fn needs_exponent(v: f64) -> bool {
    v != 0.0 && !(1e-6..1e21).contains(&v.abs())
}

/// Appends a timestamp as Prometheus writes it: integer seconds, then, if
/// the milliseconds are not zero, a `.` and exactly three digits
/// (`1435781451.781`, `1435781451.050`, `1435781451`, `-1.500`).
pub fn write_timestamp(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let abs = ms.unsigned_abs();
    out.push_str(itoa::Buffer::new().format(abs / 1000));
    let frac = (abs % 1000) as u16;
    if frac != 0 {
        out.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
    }
}

/// [`write_timestamp`] into a new string.
pub fn format_timestamp(ms: i64) -> String {
    let mut s = String::with_capacity(16);
    write_timestamp(&mut s, ms);
    s
}

/// Appends one value of an export line: finite values as JSON numbers in
/// the shortest form that parses back to the same bits, infinities as the
/// strings `"Infinity"` / `"-Infinity"`, NaN as `null` (VictoriaMetrics's
/// encoding; the exact NaN bits travel separately in `nan_bits`).
pub fn write_export_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"null");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"\"Infinity\"");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"\"-Infinity\"");
    } else if needs_exponent(v) {
        out.extend_from_slice(gofmt::format_float_e(v).as_bytes());
    } else {
        // Shortest round-trip digits (the JSON number needs only to parse
        // back to the same bits; `Display` gives those without a String).
        let _ = std::io::Write::write_fmt(out, format_args!("{v}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_prometheus() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (1e-7, "1e-07"),
            (1e-6, "0.000001"),
            (1e21, "1e+21"),
            (9.99e20, "999000000000000000000"),
            (-1.5e-9, "-1.5e-09"),
            (0.0, "0"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (123456789.125, "123456789.125"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(format_value(v), want, "{v:e}");
        }
    }

    /// `write_value` against the `Display`-based formatting it replaced:
    /// the same text, or, where the exact value lies halfway between the
    /// two shortest candidates, Go's even digit where `Display` rounded up.
    fn check_against_display(v: f64) {
        let fast = format_value(v);
        let slow = if needs_exponent(v) {
            gofmt::format_float_e(v)
        } else {
            gofmt::format_float_f(v)
        };
        if fast == slow {
            return;
        }
        let parse = |s: &str| s.parse::<f64>().map(f64::to_bits);
        assert_eq!(parse(&fast), Ok(v.to_bits()), "{fast} does not round-trip");
        assert_eq!(parse(&slow), Ok(v.to_bits()), "{slow} does not round-trip");
        let digits = |s: &str| -> Vec<u8> {
            let m = s.split('e').next().unwrap_or(s);
            m.bytes().filter(u8::is_ascii_digit).collect()
        };
        let (f, d) = (digits(&fast), digits(&slow));
        assert_eq!(f.len(), d.len(), "{fast} vs {slow}: not a tie");
        let last = f.len() - 1;
        assert_eq!(f[..last], d[..last], "{fast} vs {slow}: not a tie");
        assert!(
            f[last] % 2 == 0 && d[last] == f[last] + 1,
            "{fast} vs {slow}: not a tie rounded to even"
        );
    }

    #[test]
    fn values_at_the_edges_of_each_form() {
        let mut edges = vec![
            1e-5,
            9.999999999999999e-6,
            1.2345e-6,
            1e-6,
            9.99999999999e-7,
            1e15,
            1e16,
            1.2345678e16,
            9_007_199_254_740_993.0,
            1e16 - 2.0,
            9.999999999999998e20,
            123.0,
            0.1,
            1.0 / 3.0,
            2.5e20,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
        ];
        edges.extend(edges.clone().iter().map(|v| -v));
        for v in edges {
            check_against_display(v);
        }
        assert_eq!(format_value(1.2345678e16), "12345678000000000");
        assert_eq!(format_value(-1.2345e-6), "-0.0000012345");
        assert_eq!(format_value(1.5e300), "1.5e+300");
        assert_eq!(format_value(5e-324), "5e-324");
    }

    #[test]
    fn ties_round_to_even_as_in_go() {
        // Exactly halfway between ...640.2 and ...640.3 (Go: the even one).
        // (Doubles are 0.25 apart here: both halves are exact.)
        let base = 2_007_997_726_470_640.0_f64;
        assert_eq!(format_value(-(base + 0.25)), "-2007997726470640.2");
        assert_eq!(format_value(base + 0.75), "2007997726470640.8");
    }

    proptest::proptest! {
        #[test]
        fn values_agree_with_display_but_for_ties(
            bits in proptest::prelude::any::<u64>(),
            small in -1e7f64..1e7,
            int in -(1i64 << 54)..1 << 54,
        ) {
            for v in [f64::from_bits(bits), small, int as f64, small / 1e9, small * 1e9] {
                check_against_display(v);
            }
        }
    }

    #[test]
    fn timestamps_match_prometheus() {
        assert_eq!(format_timestamp(1_435_781_451_781), "1435781451.781");
        assert_eq!(format_timestamp(1_435_781_451_050), "1435781451.050");
        assert_eq!(format_timestamp(1_435_781_451_005), "1435781451.005");
        assert_eq!(format_timestamp(1_435_781_451_000), "1435781451");
        assert_eq!(format_timestamp(0), "0");
        assert_eq!(format_timestamp(-1500), "-1.500");
        assert_eq!(format_timestamp(-5), "-0.005");
        assert_eq!(format_timestamp(i64::MIN), "-9223372036854775.808");
        assert_eq!(format_timestamp(4000), "4");
    }

    #[test]
    fn export_values_round_trip_bit_exactly() {
        let mut out = Vec::new();
        for v in [
            0.1,
            -0.0,
            1e-300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e21,
            123.0,
            -7.25e-8,
        ] {
            out.clear();
            write_export_value(&mut out, v);
            let text = std::str::from_utf8(&out).unwrap();
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "valid JSON: {text}"
            );
        }
        for (v, want) in [
            (f64::NAN, "null"),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
        ] {
            out.clear();
            write_export_value(&mut out, v);
            assert_eq!(out, want.as_bytes());
        }
    }
}
