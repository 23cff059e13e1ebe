//! How numbers look on the wire. Prometheus query results carry values as
//! JSON strings (`"1"`, `"1e-07"`, `"NaN"`, `"+Inf"`) and timestamps as
//! JSON numbers of seconds with millisecond precision; the export endpoint
//! writes VictoriaMetrics-style JSON numbers that round-trip exactly.

use std::fmt::Write as _;

use crate::gofmt;

/// A sample value as Prometheus renders it (without the JSON quotes):
/// Go's `FormatFloat(v, 'f', -1)`, switching to exponent form (`'e'`) when
/// `|v| < 1e-6` or `|v| >= 1e21` (v ≠ 0); `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if needs_exponent(v) {
        gofmt::format_float_e(v)
    } else {
        gofmt::format_float_f(v)
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
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
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
        // The common case, without an intermediate String: Rust's `Display`
        // is Go's 'f' with precision -1 (shortest round-trip digits).
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
