//! Recurring time intervals (`time_intervals:`) used by routes'
//! `mute_time_intervals` and `active_time_intervals`, with Alertmanager's
//! semantics (`timeinterval/timeinterval.go`): times of day, weekday ranges,
//! days of month (negative counts from the month's end), months, years, and a
//! location whose wall clock they are read in.

use chrono::{DateTime, Datelike, Local, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer};

/// A time interval: every present field must contain the instant.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(default)]
    pub times: Option<Vec<TimeRange>>,
    #[serde(default)]
    pub weekdays: Option<Vec<WeekdayRange>>,
    #[serde(default)]
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    #[serde(default)]
    pub months: Option<Vec<MonthRange>>,
    #[serde(default)]
    pub years: Option<Vec<YearRange>>,
    #[serde(default)]
    pub location: Option<Location>,
}

/// `[start_minute, end_minute)` of the day; `24:00` ends the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// Inclusive range of weekdays, Sunday = 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayRange {
    pub begin: u32,
    pub end: u32,
}

/// Inclusive range of days of the month; negative counts from the end
/// (`-1` = the last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfMonthRange {
    pub begin: i32,
    pub end: i32,
}

/// Inclusive range of months, January = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    pub begin: u32,
    pub end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearRange {
    pub begin: i32,
    pub end: i32,
}

/// The zone whose wall clock an interval is read in (default UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Utc,
    Local,
    Tz(chrono_tz::Tz),
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Splits `a:b` or `a` (lowercased) into two members.
fn split_range(s: &str) -> Result<(String, String), String> {
    let s = s.to_lowercase();
    match s.split_once(':') {
        Some((a, b)) => {
            if b.contains(':') {
                return Err(format!("couldn't parse range {s}, invalid format"));
            }
            Ok((a.to_string(), b.to_string()))
        }
        None => Ok((s.clone(), s)),
    }
}

fn int_member(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<i64>()
        .map_err(|_| format!("{s:?} is not a valid number"))
}

impl<'de> Deserialize<'de> for WeekdayRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (a, b) = split_range(&s).map_err(serde::de::Error::custom)?;
        let day = |x: &str| {
            WEEKDAYS
                .iter()
                .position(|w| *w == x)
                .map(|p| p as u32)
                .ok_or_else(|| format!("{x} is not a valid weekday"))
        };
        let begin = day(&a).map_err(serde::de::Error::custom)?;
        let end = day(&b).map_err(serde::de::Error::custom)?;
        if begin > end {
            return Err(serde::de::Error::custom(
                "start day cannot be before end day",
            ));
        }
        Ok(WeekdayRange { begin, end })
    }
}

impl<'de> Deserialize<'de> for DayOfMonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let check = || -> Result<DayOfMonthRange, String> {
            let (a, b) = split_range(&s)?;
            let begin = int_member(&a)?;
            let end = int_member(&b)?;
            for v in [begin, end] {
                if v == 0 || !(-31..=31).contains(&v) {
                    return Err(format!("{v} is not a valid day of the month: out of range"));
                }
            }
            if begin < 0 && end > 0 {
                return Err("end day must be negative if start day is negative".into());
            }
            let cb = if begin < 0 { 28 + begin } else { begin };
            let ce = if end < 0 { 28 + end } else { end };
            if cb > ce {
                return Err(format!("end day {end} is always before start day {begin}"));
            }
            Ok(DayOfMonthRange {
                begin: begin as i32,
                end: end as i32,
            })
        };
        check().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for MonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let check = || -> Result<MonthRange, String> {
            let (a, b) = split_range(&s)?;
            let month = |x: &str| -> Result<u32, String> {
                if let Some(p) = MONTHS.iter().position(|m| *m == x) {
                    return Ok(p as u32 + 1);
                }
                match x.parse::<u32>() {
                    Ok(n) if (1..=12).contains(&n) => Ok(n),
                    _ => Err(format!("{x} is not a valid month")),
                }
            };
            let (begin, end) = (month(&a)?, month(&b)?);
            if begin > end {
                return Err(format!(
                    "end month {} is before start month {}",
                    MONTHS[end as usize - 1],
                    MONTHS[begin as usize - 1]
                ));
            }
            Ok(MonthRange { begin, end })
        };
        check().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for YearRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let check = || -> Result<YearRange, String> {
            let (a, b) = split_range(&s)?;
            let (begin, end) = (int_member(&a)?, int_member(&b)?);
            if !(0..=9999).contains(&begin) || !(0..=9999).contains(&end) {
                return Err(format!("{s} is not a valid year range"));
            }
            if begin > end {
                return Err(format!("end year {end} is before start year {begin}"));
            }
            Ok(YearRange {
                begin: begin as i32,
                end: end as i32,
            })
        };
        check().map_err(serde::de::Error::custom)
    }
}

fn parse_time_of_day(s: &str) -> Result<u32, String> {
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let b = s.as_bytes();
    let ok = b.len() == 5 && b[2] == b':' && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit);
    if !ok {
        return Err(format!("couldn't parse timestamp {s}, invalid format"));
    }
    let h: u32 = s[..2]
        .parse()
        .map_err(|_| format!("invalid timestamp format: {s}"))?;
    let m: u32 = s[3..]
        .parse()
        .map_err(|_| format!("invalid timestamp format: {s}"))?;
    if h > 23 || m > 59 {
        return Err(format!("couldn't parse timestamp {s}, invalid format"));
    }
    Ok(h * 60 + m)
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            start_time: String,
            #[serde(default)]
            end_time: String,
        }
        let raw = Raw::deserialize(d)?;
        let check = || -> Result<TimeRange, String> {
            if raw.start_time.is_empty() || raw.end_time.is_empty() {
                return Err("both start and end times must be provided".into());
            }
            let start = parse_time_of_day(&raw.start_time)?;
            let end = parse_time_of_day(&raw.end_time)?;
            if start >= end {
                return Err("start time cannot be equal or greater than end time".into());
            }
            Ok(TimeRange {
                start_minute: start,
                end_minute: end,
            })
        };
        check().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "" | "UTC" => Ok(Location::Utc),
            "Local" => Ok(Location::Local),
            name => name
                .parse::<chrono_tz::Tz>()
                .map(Location::Tz)
                .map_err(|_| serde::de::Error::custom(format!("unknown time zone {name}"))),
        }
    }
}

/// The fields of an instant on some zone's wall clock.
struct WallClock {
    minute_of_day: u32,
    weekday: u32,
    day: u32,
    month: u32,
    year: i32,
    days_in_month: u32,
}

fn wall_clock<T: Datelike + Timelike>(t: &T) -> WallClock {
    let (y, m) = (t.year(), t.month());
    let first_next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    let days_in_month = first_next
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day());
    WallClock {
        minute_of_day: t.hour() * 60 + t.minute(),
        weekday: t.weekday().num_days_from_sunday(),
        day: t.day(),
        month: m,
        year: y,
        days_in_month,
    }
}

impl TimeInterval {
    /// Whether `t` lies inside this interval.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let w = match self.location.unwrap_or(Location::Utc) {
            Location::Utc => wall_clock(&t),
            Location::Local => wall_clock(&t.with_timezone(&Local)),
            Location::Tz(tz) => wall_clock(&t.with_timezone(&tz)),
        };
        if let Some(times) = &self.times
            && !times
                .iter()
                .any(|r| w.minute_of_day >= r.start_minute && w.minute_of_day < r.end_minute)
        {
            return false;
        }
        if let Some(days) = &self.days_of_month {
            let dim = w.days_in_month as i32;
            let inside = days.iter().any(|r| {
                let begin = if r.begin < 0 {
                    dim + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { dim + r.end + 1 } else { r.end };
                if begin > dim {
                    return false;
                }
                let begin = begin.clamp(-dim, dim);
                let end = end.clamp(-dim, dim);
                (begin..=end).contains(&(w.day as i32))
            });
            if !inside {
                return false;
            }
        }
        if let Some(months) = &self.months
            && !months.iter().any(|r| (r.begin..=r.end).contains(&w.month))
        {
            return false;
        }
        if let Some(days) = &self.weekdays
            && !days.iter().any(|r| (r.begin..=r.end).contains(&w.weekday))
        {
            return false;
        }
        if let Some(years) = &self.years
            && !years.iter().any(|r| (r.begin..=r.end).contains(&w.year))
        {
            return false;
        }
        true
    }
}

/// Whether `t` lies in any of the intervals.
pub fn any_contains(intervals: &[TimeInterval], t: DateTime<Utc>) -> bool {
    intervals.iter().any(|i| i.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ti(yaml: &str) -> TimeInterval {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn weekday_ranges_and_times() {
        let i =
            ti("weekdays: ['monday:friday']\ntimes: [{start_time: '09:00', end_time: '17:00'}]");
        // 2026-11-30 is a Monday.
        assert!(i.contains(at(2026, 11, 30, 9, 0)));
        assert!(!i.contains(at(2026, 11, 30, 17, 0)));
        assert!(!i.contains(at(2026, 11, 29, 12, 0))); // Sunday
        assert!(i.contains(at(2026, 12, 4, 16, 59))); // Friday
        let i = ti("weekdays: ['saturday', 'Sunday']");
        assert!(i.contains(at(2026, 11, 29, 0, 0)));
        assert!(!i.contains(at(2026, 11, 30, 0, 0)));
        let i = ti("times: [{start_time: '22:00', end_time: '24:00'}]");
        assert!(i.contains(at(2026, 11, 30, 23, 59)));
    }

    #[test]
    fn negative_days_of_month() {
        let i = ti("days_of_month: ['-3:-1']");
        assert!(i.contains(at(2026, 2, 26, 0, 0)));
        assert!(i.contains(at(2026, 2, 28, 0, 0)));
        assert!(!i.contains(at(2026, 2, 25, 0, 0)));
        assert!(i.contains(at(2026, 1, 29, 0, 0)));
        assert!(!i.contains(at(2026, 1, 28, 0, 0)));
        let i =
            ti("days_of_month: ['1:5', '-1']\nmonths: ['january:march', '12']\nyears: ['2026']");
        assert!(i.contains(at(2026, 3, 31, 0, 0)));
        assert!(i.contains(at(2026, 12, 2, 0, 0)));
        assert!(!i.contains(at(2026, 4, 1, 0, 0)));
        assert!(!i.contains(at(2027, 1, 1, 0, 0)));
    }

    #[test]
    fn location_shifts_the_wall_clock() {
        let i = ti("times: [{start_time: '00:00', end_time: '01:00'}]\nlocation: 'Europe/Berlin'");
        // 23:30 UTC in winter is 00:30 in Berlin.
        assert!(i.contains(at(2026, 1, 10, 23, 30)));
        assert!(!i.contains(at(2026, 1, 10, 0, 30)));
        let i = ti("weekdays: ['monday']\nlocation: 'Australia/Sydney'");
        // Sunday 20:00 UTC is Monday morning in Sydney.
        assert!(i.contains(at(2026, 11, 29, 20, 0)));
    }

    #[test]
    fn rejects_invalid_ranges() {
        for bad in [
            "weekdays: ['friday:monday']",
            "weekdays: ['funday']",
            "days_of_month: ['0']",
            "days_of_month: ['-1:5']",
            "days_of_month: ['10:2']",
            "months: ['march:january']",
            "months: ['13']",
            "years: ['2022:2020']",
            "times: [{start_time: '10:00', end_time: '09:00'}]",
            "times: [{start_time: '10:00'}]",
            "times: [{start_time: '25:00', end_time: '26:00'}]",
            "location: 'Mars/Olympus'",
            "hours: ['1']",
        ] {
            assert!(serde_yaml::from_str::<TimeInterval>(bad).is_err(), "{bad}");
        }
    }
}
