//! Timestamps in API parameters, parsed as Prometheus's `parseTime` does:
//! Unix seconds as a float (rounded to milliseconds) or RFC 3339, plus the
//! two strings Prometheus prints for its minimum and maximum times.
//! Results are milliseconds since the epoch. Also durations (`step`,
//! `timeout`, `lookback_delta`: float seconds or `1h30m`) and RFC 3339
//! output for the status endpoints.

use crate::gofmt;

/// Prometheus's `MinTime` (`time.Unix(math.MinInt64/1000+62135596801, 0)`)
/// in milliseconds: the default `start`.
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// Prometheus's `MaxTime` (`time.Unix(math.MaxInt64/1000-62135596801,
/// 999999999)`) in milliseconds: the default `end`.
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;

/// `MinTime.Format(time.RFC3339Nano)`: Go cannot parse five-digit years,
/// so Prometheus accepts these two strings literally. (VictoriaMetrics,
/// Thanos and ClickHouse test against the same strings.)
const MIN_TIME_STRING: &str = "-292273086-05-16T16:47:06Z";
/// The min-time string as `shared/reference/http-api.md` §1.4 prints it,
/// one day off; accepted too, since clients written from that page send it.
const MIN_TIME_STRING_REFERENCE: &str = "-292273086-05-17T16:47:06Z";
/// `MaxTime.Format(time.RFC3339Nano)`.
const MAX_TIME_STRING: &str = "292277025-08-18T07:12:54.999999999Z";

/// A timestamp parameter that is neither a number nor RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse {} to a valid timestamp", gofmt::quote(.0))]
pub struct TimeError(pub String);

/// A duration parameter that is neither a number of seconds nor a
/// Prometheus duration; Prometheus's `parseDuration` wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParamError {
    #[error("cannot parse {} to a valid duration", gofmt::quote(.0))]
    Invalid(String),
    #[error("cannot parse {} to a valid duration. It overflows int64", gofmt::quote(.0))]
    Overflow(String),
}

/// Parses a duration parameter into nanoseconds, as Prometheus's
/// `parseDuration`: a float number of seconds (`15`, `0.5`, `1e3`, may be
/// negative) or a duration string (`1h30m`). NaN is rejected.
pub fn parse_duration_ns(s: &str) -> Result<i64, DurationParamError> {
    if let Ok(secs) = s.parse::<f64>() {
        let ns = secs * 1e9;
        if ns.is_nan() {
            return Err(DurationParamError::Invalid(s.to_string()));
        }
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(DurationParamError::Overflow(s.to_string()));
        }
        return Ok(ns as i64);
    }
    match crate::promql::parse_duration(s) {
        Ok(d) => {
            i64::try_from(d.as_nanos()).map_err(|_| DurationParamError::Overflow(s.to_string()))
        }
        Err(_) => Err(DurationParamError::Invalid(s.to_string())),
    }
}

/// Formats milliseconds since the epoch as RFC 3339 in UTC with
/// milliseconds when not zero (`2024-08-12T10:00:00.123Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:03}")
    };
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Inverse of `days_from_civil`: (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses a timestamp parameter into milliseconds.
///
/// Floats keep millisecond precision (`1435781451.781`). Huge values, such
/// as the milliseconds Grafana's exemplar probe sends as seconds, are
/// accepted and clamp to the `i64` range, so they simply match nothing.
/// `NaN` and infinities are rejected (Prometheus turns them into arbitrary
/// times).
pub fn parse_time(s: &str) -> Result<i64, TimeError> {
    if let Ok(t) = s.parse::<f64>() {
        if !t.is_finite() {
            return Err(TimeError(s.to_string()));
        }
        let secs = t.trunc();
        let frac_ms = ((t - secs) * 1000.0).round();
        return Ok((secs as i64)
            .saturating_mul(1000)
            .saturating_add(frac_ms as i64));
    }
    if let Some(ms) = parse_rfc3339(s) {
        return Ok(ms);
    }
    match s {
        MIN_TIME_STRING | MIN_TIME_STRING_REFERENCE => Ok(MIN_TIME_MS),
        MAX_TIME_STRING => Ok(MAX_TIME_MS),
        _ => Err(TimeError(s.to_string())),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as Go's `time.RFC3339Nano`
/// parses it (four-digit year, fraction truncated to nanoseconds).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut i = 19;
    let mut nanos = 0i64;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 9)];
        nanos = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        nanos *= 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b':') => {
            let (h, m) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    Some(secs * 1000 + nanos / 1_000_000)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_rfc3339(secs: i64, nanos: i64) -> String {
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let tod = secs.rem_euclid(86_400);
        let frac = if nanos == 0 {
            String::new()
        } else {
            format!(".{nanos:09}")
        };
        format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
            tod / 3600,
            tod / 60 % 60,
            tod % 60
        )
    }

    #[test]
    fn min_and_max_strings_match_the_go_constants() {
        let min_secs = i64::MIN / 1000 + 62_135_596_801;
        let max_secs = i64::MAX / 1000 - 62_135_596_801;
        assert_eq!(format_rfc3339(min_secs, 0), MIN_TIME_STRING);
        assert_eq!(format_rfc3339(max_secs, 999_999_999), MAX_TIME_STRING);
        assert_eq!(MIN_TIME_MS, min_secs * 1000);
        assert_eq!(MAX_TIME_MS, max_secs * 1000 + 999);
        assert_eq!(parse_time(MIN_TIME_STRING), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MIN_TIME_STRING_REFERENCE), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_STRING), Ok(MAX_TIME_MS));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration_ns("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("1e3"), Ok(1_000_000_000_000));
        assert_eq!(parse_duration_ns("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_duration_ns("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert_eq!(parse_duration_ns("90s"), Ok(90_000_000_000));
        for bad in ["", "1.5m", "-1m", "1x", "NaN", "5m1h"] {
            assert_eq!(
                parse_duration_ns(bad),
                Err(DurationParamError::Invalid(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_duration_ns("1e20").unwrap_err().to_string(),
            "cannot parse \"1e20\" to a valid duration. It overflows int64"
        );
        assert_eq!(
            parse_duration_ns("x").unwrap_err().to_string(),
            "cannot parse \"x\" to a valid duration"
        );
    }

    #[test]
    fn rfc3339_output() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_ms(1_435_781_451_781),
            "2015-07-01T20:10:51.781Z"
        );
        assert_eq!(format_rfc3339_ms(-500), "1969-12-31T23:59:59.500Z");
        for ms in [0, 1_435_781_451_781, 951_782_400_000, -500] {
            assert_eq!(parse_time(&format_rfc3339_ms(ms)), Ok(ms));
        }
    }

    #[test]
    fn float_seconds() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Ok(1_435_781_451_000));
        assert_eq!(
            parse_time("1435781451.7816"),
            Ok(1_435_781_451_782),
            "rounded to ms"
        );
        assert_eq!(parse_time("0.0004"), Ok(0));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("4"), Ok(4000));
        // Grafana's exemplar probe: milliseconds sent as seconds.
        assert_eq!(parse_time("1723450000000"), Ok(1_723_450_000_000_000));
        assert_eq!(parse_time("1e300"), Ok(i64::MAX));
        assert_eq!(parse_time("-1e300"), Ok(i64::MIN));
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("Inf").is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(parse_time("2015-07-01T20:10:51Z"), Ok(1_435_781_451_000));
        assert_eq!(
            parse_time("2015-07-01T22:10:51.781+02:00"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T18:40:51.781-01:30"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781999999999Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("1969-12-31T23:59:59.5Z"), Ok(-500));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        for bad in [
            "2001-02-29T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-07-01T24:00:00Z",
            "2015-07-01T23:59:60Z",
            "2015-07-01t20:10:51Z",
            "2015-07-01T20:10:51",
            "2015-07-01T20:10:51.Z",
            "2015-07-01T20:10:51+0200",
            "2015-07-01",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_time(bad), Err(TimeError(bad.to_string())), "{bad}");
        }
        assert_eq!(
            TimeError("x".into()).to_string(),
            "cannot parse \"x\" to a valid timestamp"
        );
    }
}
