//! Five-field cron schedules (`minute hour day-of-month month
//! day-of-week`), as Vixie cron reads them: `*`, `*/n`, `a-b`, `a-b/n`,
//! `a/n`, lists with `,`, month and weekday names (`jan`, `mon`), 7 for
//! Sunday, and the macros `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`. When both day fields are restricted a
//! day matches if either does. Times are taken in the schedule's time zone
//! (UTC unless given); a local time skipped by a daylight-saving change
//! does not fire, a repeated one fires once (the first).

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Why a cron expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "cron {expr:?}: expected 5 fields (minute hour day-of-month month day-of-week), got {got}"
    )]
    FieldCount { expr: String, got: usize },
    #[error("cron {expr:?}: {field} field {value:?}: {message}")]
    Field {
        expr: String,
        field: &'static str,
        value: String,
        message: String,
    },
    #[error(
        "cron {0:?}: unknown macro (known: @yearly @annually @monthly @weekly @daily @midnight @hourly)"
    )]
    Macro(String),
    #[error("cron {0:?}: never fires (no such date)")]
    Never(String),
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day-of-month / day-of-week field was `*` (Vixie cron's
    /// "either day field" rule only applies when both are restricted).
    dom_any: bool,
    dow_any: bool,
    tz: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} {})", self.text, self.tz)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_value(s: &str, spec: &FieldSpec) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        // Names count from the field's minimum (jan = 1, sun = 0).
        return Ok(i as u32 + spec.min);
    }
    let v: u32 = s.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("{s:?} is not a number")
        } else {
            format!(
                "{s:?} is neither a number nor a name ({})",
                spec.names.join(" ")
            )
        }
    })?;
    if v < spec.min || v > spec.max {
        return Err(format!("value {v} out of range {}-{}", spec.min, spec.max));
    }
    Ok(v)
}

/// Parses one field into a bit set over `spec.min..=spec.max`; returns the
/// bits and whether the field was a plain `*`.
fn parse_field(expr: &str, text: &str, spec: &FieldSpec) -> Result<(u64, bool), CronError> {
    let err = |message: String| CronError::Field {
        expr: expr.to_string(),
        field: spec.name,
        value: text.to_string(),
        message,
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(err("empty list element".into()));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(err("step must be at least 1".into()));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let lo = parse_value(a, spec).map_err(err)?;
            let hi = parse_value(b, spec).map_err(err)?;
            if lo > hi {
                return Err(err(format!("range {lo}-{hi} runs backwards")));
            }
            (lo, hi)
        } else {
            let v = parse_value(range, spec).map_err(err)?;
            // `a/n` means `a-max/n`, as in Vixie cron.
            (v, if step.is_some() { spec.max } else { v })
        };
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, text == "*"))
}

impl Schedule {
    /// Parses `expr` in time zone `tz`.
    pub fn parse(expr: &str, tz: Tz) -> Result<Schedule, CronError> {
        let trimmed = expr.trim();
        let expanded = if let Some(m) = trimmed.strip_prefix('@') {
            match m {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(CronError::Macro(expr.to_string())),
            }
        } else {
            trimmed
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                expr: expr.to_string(),
                got: fields.len(),
            });
        }
        let (minutes, _) = parse_field(expr, fields[0], &MINUTE)?;
        let (hours, _) = parse_field(expr, fields[1], &HOUR)?;
        let (days, dom_any) = parse_field(expr, fields[2], &DOM)?;
        let (months, _) = parse_field(expr, fields[3], &MONTH)?;
        let (mut weekdays, dow_any) = parse_field(expr, fields[4], &DOW)?;
        // 7 is Sunday too.
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let s = Schedule {
            text: trimmed.to_string(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            dom_any,
            dow_any,
            tz,
        };
        // `0 0 30 2 *` parses but never fires: say so now, not never.
        let probe = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
        if probe.and_then(|p| s.next_after(p)).is_none() {
            return Err(CronError::Never(expr.to_string()));
        }
        Ok(s)
    }

    /// The time zone the fields are read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }

    /// The first firing time strictly after `after`; `None` when there is
    /// none within eight years (a date that does not exist).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local();
        let mut t: NaiveDateTime = local.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = t + Duration::days(8 * 366);
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                // First minute of the next month.
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = (t.date() + Duration::days(1)).and_hms_opt(0, 0, 0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            // A local time skipped by a DST change does not exist: skip it.
            if let Some(utc) = self.tz.from_local_datetime(&t).earliest() {
                let utc = utc.with_timezone(&Utc);
                if utc > after {
                    return Some(utc);
                }
            }
            t += Duration::minutes(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn next(expr: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(expr, Tz::UTC)
            .unwrap()
            .next_after(after)
            .unwrap()
    }

    #[test]
    fn next_times() {
        let t = utc(2026, 12, 1, 2, 13); // a Tuesday
        assert_eq!(next("* * * * *", t), utc(2026, 12, 1, 2, 14));
        assert_eq!(next("*/15 * * * *", t), utc(2026, 12, 1, 2, 15));
        assert_eq!(next("0 8 * * mon", t), utc(2026, 12, 7, 8, 0));
        assert_eq!(next("0 8 * * 1-5", t), utc(2026, 12, 1, 8, 0));
        assert_eq!(next("0 8 * * sat,sun", t), utc(2026, 12, 5, 8, 0));
        assert_eq!(next("30 6 1 * *", t), utc(2026, 12, 1, 6, 30));
        assert_eq!(next("30 1 1 * *", t), utc(2027, 1, 1, 1, 30));
        assert_eq!(next("@weekly", t), utc(2026, 12, 6, 0, 0));
        assert_eq!(next("@yearly", t), utc(2027, 1, 1, 0, 0));
        assert_eq!(next("0 0 * * 7", t), utc(2026, 12, 6, 0, 0));
        assert_eq!(next("0 0 29 2 *", t), utc(2028, 2, 29, 0, 0));
        assert_eq!(next("5/20 1 * * *", t), utc(2026, 12, 2, 1, 5));
        assert_eq!(next("0 12 * jun-aug *", t), utc(2027, 6, 1, 12, 0));
        // Both day fields restricted: either matches (the 15th, or a Friday).
        assert_eq!(next("0 0 15 * fri", t), utc(2026, 12, 4, 0, 0));
        // Strictly after: a firing time is not returned again.
        assert_eq!(
            next("0 8 * * *", utc(2026, 12, 1, 8, 0)),
            utc(2026, 12, 2, 8, 0)
        );
    }

    #[test]
    fn time_zones_and_dst() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let s = Schedule::parse("0 8 * * *", paris).unwrap();
        // 08:00 in Paris in winter is 07:00 UTC.
        assert_eq!(
            s.next_after(utc(2026, 12, 1, 0, 0)),
            Some(utc(2026, 12, 1, 7, 0))
        );
        // 02:30 does not exist on 2026-03-29 in Paris: the next is a day later.
        let s = Schedule::parse("30 2 * * *", paris).unwrap();
        assert_eq!(
            s.next_after(utc(2026, 3, 28, 12, 0)),
            Some(utc(2026, 3, 30, 0, 30))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = |s: &str| Schedule::parse(s, Tz::UTC).unwrap_err().to_string();
        assert_eq!(
            e("0 25 * * *"),
            r#"cron "0 25 * * *": hour field "25": value 25 out of range 0-23"#
        );
        assert_eq!(
            e("0 8 * *"),
            r#"cron "0 8 * *": expected 5 fields (minute hour day-of-month month day-of-week), got 4"#
        );
        assert!(e("0 8 * * funday").contains("day-of-week field \"funday\""));
        assert!(e("*/0 * * * *").contains("step must be at least 1"));
        assert!(e("0 0 5-1 * *").contains("runs backwards"));
        assert!(e("0 0 30 2 *").contains("never fires"));
        assert!(e("@fortnightly").contains("unknown macro"));
        assert!(e("1,,2 * * * *").contains("empty list element"));
    }

    #[test]
    fn names_map_to_numbers() {
        let a = Schedule::parse("0 0 * jan,DEC sun", Tz::UTC).unwrap();
        let b = Schedule::parse("0 0 * 1,12 0", Tz::UTC).unwrap();
        assert_eq!(a.months, b.months);
        assert_eq!(a.weekdays, b.weekdays);
    }
}
