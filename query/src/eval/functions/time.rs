//! The date functions (`year`, `month`, `day_of_month`, `day_of_week`,
//! `day_of_year`, `days_in_month`, `hour`, `minute`) on Unix seconds in
//! UTC, with Go's `time.Unix(int64(v), 0).UTC()` conversion: the value is
//! truncated toward zero to whole seconds.
//!
//! Called without an argument, Prometheus applies them to the evaluation
//! time `ts_ms / 1000` (integer division); the evaluator passes that as a
//! float.

/// Which calendar field a date function extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateFunction {
    Year,
    Month,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    DaysInMonth,
    Hour,
    Minute,
}

impl DateFunction {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "year" => DateFunction::Year,
            "month" => DateFunction::Month,
            "day_of_month" => DateFunction::DayOfMonth,
            "day_of_week" => DateFunction::DayOfWeek,
            "day_of_year" => DateFunction::DayOfYear,
            "days_in_month" => DateFunction::DaysInMonth,
            "hour" => DateFunction::Hour,
            "minute" => DateFunction::Minute,
            _ => return None,
        })
    }

    /// The field of the UTC time `unix_seconds` (a sample value).
    pub fn apply(self, unix_seconds: f64) -> f64 {
        let secs = go_float_to_i64(unix_seconds);
        let days = secs.div_euclid(86_400);
        let second_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let v = match self {
            DateFunction::Year => year,
            DateFunction::Month => i64::from(month),
            DateFunction::DayOfMonth => i64::from(day),
            // 1970-01-01 was a Thursday (4); Sunday is 0.
            DateFunction::DayOfWeek => (days + 4).rem_euclid(7),
            DateFunction::DayOfYear => days - days_from_civil(year, 1, 1) + 1,
            DateFunction::DaysInMonth => i64::from(days_in_month(year, month)),
            DateFunction::Hour => second_of_day / 3600,
            DateFunction::Minute => second_of_day / 60 % 60,
        };
        v as f64
    }
}

/// Go's `int64(f)` on amd64: truncation toward zero; NaN, ±Inf and values
/// out of range become `i64::MIN` (the CPU's "integer indefinite").
fn go_float_to_i64(v: f64) -> i64 {
    // 2^63 as f64; i64::MIN as f64 is exactly -2^63.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-LIMIT..LIMIT).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 in the
/// proleptic Gregorian calendar (Howard Hinnant's algorithm). Exact for
/// every `i64` day count that a second count can produce.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year as i64, month, day)
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = i128::from(year) - i128::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i128::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i128::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i64
}

#[cfg(test)]
mod tests {
    use super::DateFunction::*;
    use super::*;

    // Cases from Prometheus's functions.test ("Test time-related functions").
    #[test]
    fn prometheus_script_cases() {
        let t = 1_136_239_445.0; // 2006-01-02T22:04:05Z, a Monday
        for (f, want) in [
            (Year, 2006.0),
            (Month, 1.0),
            (DayOfMonth, 2.0),
            (DayOfYear, 2.0),
            (DayOfWeek, 1.0),
            (Hour, 22.0),
            (Minute, 4.0),
        ] {
            assert_eq!(f.apply(t), want, "{f:?}");
        }
        for (f, want) in [
            (Year, 1970.0),
            (Month, 1.0),
            (DayOfMonth, 1.0),
            (DayOfYear, 1.0),
            (DayOfWeek, 4.0),
            (Hour, 0.0),
            (Minute, 0.0),
        ] {
            assert_eq!(f.apply(0.0), want, "{f:?}");
        }
        assert_eq!(Year.apply(1_230_767_999.0), 2008.0);
        assert_eq!(Year.apply(1_230_768_000.0), 2009.0);
        assert_eq!(Month.apply(1_456_790_399.0), 2.0);
        assert_eq!(DayOfMonth.apply(1_456_790_399.0), 29.0);
        assert_eq!(Month.apply(1_456_790_400.0), 3.0);
        assert_eq!(DayOfMonth.apply(1_456_790_400.0), 1.0);
        assert_eq!(DayOfYear.apply(1_483_191_420.0), 366.0);
        assert_eq!(DayOfYear.apply(1_672_493_820.0), 365.0);
        assert_eq!(DaysInMonth.apply(1_454_284_800.0), 29.0);
        assert_eq!(DaysInMonth.apply(1_485_907_200.0), 28.0);
    }

    #[test]
    fn negative_and_fractional_times() {
        // -1s is 1969-12-31T23:59:59Z, a Wednesday.
        assert_eq!(Year.apply(-1.0), 1969.0);
        assert_eq!(DayOfWeek.apply(-1.0), 3.0);
        assert_eq!(Hour.apply(-1.0), 23.0);
        assert_eq!(DayOfYear.apply(-1.0), 365.0);
        // Truncation toward zero: -0.5 is 0, 59.9 is 59.
        assert_eq!(Year.apply(-0.5), 1970.0);
        assert_eq!(Minute.apply(59.9), 0.0);
        assert_eq!(Minute.apply(60.0), 1.0);
        // 2000 is a leap year, 1900 is not.
        assert_eq!(DaysInMonth.apply(951_782_400.0), 29.0); // 2000-02-29
        assert_eq!(DaysInMonth.apply(-2_206_310_400.0), 28.0); // 1900-02-01
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000, -719_468, -1, 0, 1, 59, 365, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn non_finite_does_not_panic() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300] {
            for f in [
                Year,
                Month,
                DayOfMonth,
                DayOfWeek,
                DayOfYear,
                DaysInMonth,
                Hour,
                Minute,
            ] {
                assert!(f.apply(v).is_finite());
            }
        }
        assert_eq!(DateFunction::from_name("hour"), Some(Hour));
        assert_eq!(DateFunction::from_name("time"), None);
    }
}
