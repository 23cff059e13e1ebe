//! Go's `time` formatting: layouts like `2006-01-02 15:04:05`, `Time.String()`
//! and `Duration.String()`.
//!
//! Templates have no time type: a time is the string Go prints for it
//! (`2015-06-23 13:19:44.128 +0000 UTC`; RFC 3339 is accepted too) and a
//! duration is Go's duration string (`1h2m3s`). Functions and methods parse
//! them back.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, TimeZone, Timelike, Utc};

/// A point in time with Go's zone name (`UTC`, `CET`, or empty for a bare
/// offset).
#[derive(Debug, Clone, PartialEq)]
pub struct GoTime {
    pub dt: DateTime<FixedOffset>,
    pub zone: String,
}

const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Go's `time.Time.String()` layout.
pub const GO_STRING_LAYOUT: &str = "2006-01-02 15:04:05.999999999 -0700 MST";

impl GoTime {
    /// A UTC time.
    pub fn utc(dt: DateTime<Utc>) -> GoTime {
        GoTime {
            dt: dt.fixed_offset(),
            zone: "UTC".to_string(),
        }
    }

    /// Go's zero time, `0001-01-01 00:00:00 +0000 UTC`.
    pub fn zero() -> GoTime {
        let t = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        GoTime::utc(t.and_utc())
    }

    /// The time at Unix `secs` + `nanos` in UTC.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<GoTime> {
        DateTime::from_timestamp(secs, nanos).map(GoTime::utc)
    }

    /// Parses what Go prints for a time (`Time.String()`, with an optional
    /// monotonic `m=` suffix) or an RFC 3339 time.
    pub fn parse(s: &str) -> Option<GoTime> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            let zone = if dt.offset().local_minus_utc() == 0 && s.ends_with(['Z', 'z']) {
                "UTC"
            } else {
                ""
            };
            return Some(GoTime {
                dt,
                zone: zone.to_string(),
            });
        }
        let mut parts = s.split(' ');
        let (date, time, off) = (parts.next()?, parts.next()?, parts.next()?);
        let zone = parts.next().filter(|z| !z.starts_with("m=")).unwrap_or("");
        let dt =
            DateTime::parse_from_str(&format!("{date} {time} {off}"), "%Y-%m-%d %H:%M:%S%.f %z")
                .ok()?;
        // A zone that only repeats the offset is Go's unnamed zone.
        let zone = if zone == off { "" } else { zone };
        Some(GoTime {
            dt,
            zone: zone.to_string(),
        })
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.dt.timestamp()
    }

    /// Nanoseconds since the epoch (saturating).
    pub fn unix_nano(&self) -> i64 {
        self.dt
            .timestamp_nanos_opt()
            .unwrap_or(if self.dt.timestamp() < 0 {
                i64::MIN
            } else {
                i64::MAX
            })
    }

    /// The same instant in UTC.
    pub fn to_utc(&self) -> GoTime {
        GoTime::utc(self.dt.with_timezone(&Utc))
    }

    /// The instant `ns` nanoseconds later, in the same zone.
    pub fn add_nanos(&self, ns: i64) -> Option<GoTime> {
        let dt = self
            .dt
            .checked_add_signed(chrono::Duration::nanoseconds(ns))?;
        Some(GoTime {
            dt,
            zone: self.zone.clone(),
        })
    }

    /// Go's `Time.String()`.
    pub fn go_string(&self) -> String {
        self.format(GO_STRING_LAYOUT)
    }

    /// Go's `Time.Format(layout)`.
    pub fn format(&self, layout: &str) -> String {
        let mut out = String::new();
        let t = self.dt.naive_local();
        let off = self.dt.offset().local_minus_utc();
        let mut rest = layout;
        while !rest.is_empty() {
            let (lit, std, tail) = next_std(rest);
            out.push_str(lit);
            let Some(std) = std else { break };
            rest = tail;
            self.push_std(&mut out, &t, off, std);
        }
        out
    }

    fn push_std(&self, out: &mut String, t: &NaiveDateTime, off: i32, std: Std) {
        let num = |out: &mut String, v: i64, width: usize| {
            if v < 0 {
                out.push('-');
            }
            out.push_str(&format!("{:0width$}", v.unsigned_abs()));
        };
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        match std {
            Std::LongMonth => out.push_str(LONG_MONTHS[t.month0() as usize]),
            Std::Month => out.push_str(&LONG_MONTHS[t.month0() as usize][..3]),
            Std::NumMonth => num(out, i64::from(t.month()), 0),
            Std::ZeroMonth => num(out, i64::from(t.month()), 2),
            Std::LongWeekDay => {
                out.push_str(LONG_DAYS[t.weekday().num_days_from_sunday() as usize])
            }
            Std::WeekDay => {
                out.push_str(&LONG_DAYS[t.weekday().num_days_from_sunday() as usize][..3])
            }
            Std::Day => num(out, i64::from(t.day()), 0),
            Std::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Std::ZeroDay => num(out, i64::from(t.day()), 2),
            Std::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Std::ZeroYearDay => num(out, i64::from(t.ordinal()), 3),
            Std::Hour => num(out, i64::from(t.hour()), 2),
            Std::Hour12 => num(out, i64::from(hour12), 0),
            Std::ZeroHour12 => num(out, i64::from(hour12), 2),
            Std::Minute => num(out, i64::from(t.minute()), 0),
            Std::ZeroMinute => num(out, i64::from(t.minute()), 2),
            Std::Second => num(out, i64::from(t.second()), 0),
            Std::ZeroSecond => num(out, i64::from(t.second()), 2),
            Std::LongYear => num(out, i64::from(t.year()), 4),
            Std::Year => num(out, i64::from(t.year().rem_euclid(100)), 2),
            Std::PM => out.push_str(if t.hour() >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if t.hour() >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                if self.zone.is_empty() {
                    push_offset(out, off, false, false, false);
                } else {
                    out.push_str(&self.zone);
                }
            }
            Std::Offset {
                iso,
                colon,
                secs,
                hours_only,
            } => {
                if iso && off == 0 {
                    out.push('Z');
                } else if hours_only {
                    out.push(if off < 0 { '-' } else { '+' });
                    out.push_str(&format!("{:02}", off.unsigned_abs() / 3600));
                } else {
                    push_offset(out, off, colon, secs, true);
                }
            }
            Std::Frac { sep, digits, trim } => {
                let nanos = t.nanosecond() % 1_000_000_000;
                let s = format!("{nanos:09}");
                let mut s = s[..digits.min(9)].to_string();
                if trim {
                    while s.ends_with('0') {
                        s.pop();
                    }
                    if s.is_empty() {
                        return;
                    }
                }
                out.push(sep);
                out.push_str(&s);
            }
        }
    }
}

fn push_offset(out: &mut String, off: i32, colon: bool, secs: bool, _numeric: bool) {
    out.push(if off < 0 { '-' } else { '+' });
    let a = off.unsigned_abs();
    out.push_str(&format!("{:02}", a / 3600));
    if colon {
        out.push(':');
    }
    out.push_str(&format!("{:02}", (a / 60) % 60));
    if secs {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a % 60));
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    Offset {
        iso: bool,
        colon: bool,
        secs: bool,
        hours_only: bool,
    },
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// Go's `nextStdChunk`: the literal prefix, the next layout element, the rest.
fn next_std(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "January") => Some((Std::LongMonth, 7)),
            b'J' if at(i, "Jan") => Some((Std::Month, 3)),
            b'M' if at(i, "Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") => Some((Std::WeekDay, 3)),
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                },
                2,
            )),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2006") => {
                // A literal `_` followed by the year.
                return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'_' if at(i, "_2") => Some((Std::UnderDay, 2)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::PM, 2)),
            b'p' if at(i, "pm") => Some((Std::Pm, 2)),
            c @ (b'-' | b'Z') => {
                let iso = c == b'Z';
                let forms: [(&str, bool, bool, bool); 5] = [
                    ("070000", false, true, false),
                    ("07:00:00", true, true, false),
                    ("0700", false, false, false),
                    ("07:00", true, false, false),
                    ("07", false, false, true),
                ];
                forms
                    .iter()
                    .find(|f| at(i + 1, f.0))
                    .map(|&(s, colon, secs, hours_only)| {
                        (
                            Std::Offset {
                                iso,
                                colon,
                                secs,
                                hours_only,
                            },
                            1 + s.len(),
                        )
                    })
            }
            c @ (b'.' | b',') if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    Some((
                        Std::Frac {
                            sep: c as char,
                            digits: j - i - 1,
                            trim: ch == b'9',
                        },
                        j - i,
                    ))
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

/// Go's `time.Parse(layout, value)` in UTC (`time.ParseInLocation(layout,
/// value, time.UTC)`), with Go's error message.
pub fn parse_layout(layout: &str, value: &str) -> Result<GoTime, String> {
    let fail = |elem: &str, rest: &str| {
        Err(format!(
            "parsing time {} as {}: cannot parse {} as {}",
            crate::printf::go_quote(value),
            crate::printf::go_quote(layout),
            crate::printf::go_quote(rest),
            crate::printf::go_quote(elem)
        ))
    };
    let range_err = |what: &str| {
        Err(format!(
            "parsing time {}: {what} out of range",
            crate::printf::go_quote(value)
        ))
    };
    let (mut year, mut month, mut day, mut yday) = (1i32, 1u32, 1u32, 0u32);
    let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut zone = String::new();
    let mut rest_layout = layout;
    let mut v = value;
    loop {
        let (lit, std, tail) = next_std(rest_layout);
        let elem_text = &rest_layout[lit.len()..rest_layout.len() - tail.len()];
        match v.strip_prefix(lit) {
            Some(r) => v = r,
            None => return fail(lit, v),
        }
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(format!(
                    "parsing time {}: extra text: {}",
                    crate::printf::go_quote(value),
                    crate::printf::go_quote(v)
                ));
            }
            break;
        };
        rest_layout = tail;
        let before = v;
        let ok: Option<()> = (|| {
            match std {
                Std::Year => {
                    let n = fixed_num(&mut v, 2)?;
                    year = if n >= 69 {
                        1900 + n as i32
                    } else {
                        2000 + n as i32
                    };
                }
                Std::LongYear => year = fixed_num(&mut v, 4)? as i32,
                Std::Month | Std::LongMonth => {
                    let i = lookup_name(&mut v, &LONG_MONTHS, std == Std::Month)?;
                    month = i as u32 + 1;
                }
                Std::WeekDay | Std::LongWeekDay => {
                    lookup_name(&mut v, &LONG_DAYS, std == Std::WeekDay)?;
                }
                Std::NumMonth | Std::ZeroMonth => month = get_num(&mut v, std == Std::ZeroMonth)?,
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    day = get_num(&mut v, std == Std::ZeroDay)?;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    if std == Std::UnderYearDay {
                        v = v.trim_start_matches(' ');
                    }
                    yday = get_num3(&mut v, std == Std::ZeroYearDay)?;
                }
                Std::Hour => hour = get_num(&mut v, false)?,
                Std::Hour12 | Std::ZeroHour12 => {
                    hour = get_num(&mut v, std == Std::ZeroHour12)?;
                    if hour > 12 {
                        hour = 99; // reported as "hour out of range" below
                    }
                }
                Std::Minute | Std::ZeroMinute => min = get_num(&mut v, std == Std::ZeroMinute)?,
                Std::Second | Std::ZeroSecond => {
                    sec = get_num(&mut v, std == Std::ZeroSecond)?;
                    // A fraction the layout does not mention is still read.
                    let b = v.as_bytes();
                    if b.len() > 1
                        && (b[0] == b'.' || b[0] == b',')
                        && b[1].is_ascii_digit()
                        && !matches!(next_std(rest_layout).1, Some(Std::Frac { .. }))
                    {
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        nanos = frac_nanos(&v[1..n]);
                        v = &v[n..];
                    }
                }
                Std::PM | Std::Pm => {
                    let t = v.get(..2)?;
                    pm = Some(match t {
                        "PM" | "pm" => true,
                        "AM" | "am" => false,
                        _ => return None,
                    });
                    v = &v[2..];
                }
                Std::Offset {
                    iso,
                    colon,
                    secs,
                    hours_only,
                } => {
                    if iso && (v.starts_with('Z') || v.starts_with('z')) {
                        v = &v[1..];
                        offset = Some(0);
                        zone = "UTC".to_string();
                        return Some(());
                    }
                    let sign = match v.as_bytes().first()? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    v = &v[1..];
                    let hh = fixed_num(&mut v, 2)? as i32;
                    let mut mm = 0;
                    let mut ss = 0;
                    if !hours_only {
                        if colon {
                            v = v.strip_prefix(':')?;
                        }
                        mm = fixed_num(&mut v, 2)? as i32;
                        if secs {
                            if colon {
                                v = v.strip_prefix(':')?;
                            }
                            ss = fixed_num(&mut v, 2)? as i32;
                        }
                    }
                    offset = Some(sign * (hh * 3600 + mm * 60 + ss));
                }
                Std::Tz => {
                    if v.starts_with("UTC") {
                        zone = "UTC".to_string();
                        offset = Some(0);
                        v = &v[3..];
                    } else {
                        let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                        if !(3..=5).contains(&n) {
                            return None;
                        }
                        zone = v[..n].to_string();
                        if zone == "GMT" {
                            offset = Some(0);
                        }
                        v = &v[n..];
                    }
                }
                Std::Frac { digits, trim, .. } => {
                    let b = v.as_bytes();
                    if b.first().is_some_and(|c| *c == b'.' || *c == b',') {
                        let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        if !trim && n != digits {
                            return None;
                        }
                        nanos = frac_nanos(&v[1..1 + n]);
                        v = &v[1 + n..];
                    } else if !trim {
                        return None;
                    }
                }
            }
            Some(())
        })();
        if ok.is_none() {
            return fail(elem_text, before);
        }
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let date = if yday > 0 {
        chrono::NaiveDate::from_yo_opt(year, yday)
    } else {
        chrono::NaiveDate::from_ymd_opt(year, month, day)
    };
    let Some(date) = date else {
        return range_err(if month > 12 || month == 0 {
            "month"
        } else {
            "day"
        });
    };
    let Some(t) = date.and_hms_nano_opt(hour, min, sec, nanos) else {
        return range_err(if hour > 23 {
            "hour"
        } else if min > 59 {
            "minute"
        } else {
            "second"
        });
    };
    let off = offset.unwrap_or(0);
    let fixed =
        FixedOffset::east_opt(off).ok_or_else(|| "time zone offset out of range".to_string())?;
    let dt = fixed
        .from_local_datetime(&t)
        .single()
        .ok_or_else(|| "time out of range".to_string())?;
    if offset.is_none() && zone.is_empty() {
        zone = "UTC".to_string();
    }
    if offset == Some(0) && zone.is_empty() {
        zone = "UTC".to_string();
    }
    Ok(GoTime { dt, zone })
}

/// Exactly `n` digits.
fn fixed_num(v: &mut &str, n: usize) -> Option<u32> {
    let d = v.get(..n)?;
    if !d.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    *v = &v[n..];
    d.parse().ok()
}

/// Go's `getnum`: one or two digits (two when `fixed`).
fn get_num(v: &mut &str, fixed: bool) -> Option<u32> {
    let b = v.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        if fixed {
            return None;
        }
        let n = u32::from(b[0] - b'0');
        *v = &v[1..];
        return Some(n);
    }
    let n = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    *v = &v[2..];
    Some(n)
}

/// Go's `getnum3`: up to three digits (exactly three when `fixed`).
fn get_num3(v: &mut &str, fixed: bool) -> Option<u32> {
    let n = v.bytes().take(3).take_while(u8::is_ascii_digit).count();
    if n == 0 || (fixed && n != 3) {
        return None;
    }
    let r = v[..n].parse().ok();
    *v = &v[n..];
    r
}

fn lookup_name(v: &mut &str, names: &[&str], short: bool) -> Option<usize> {
    for (i, name) in names.iter().enumerate() {
        let name = if short { &name[..3] } else { name };
        if v.get(..name.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(name))
        {
            *v = &v[name.len()..];
            return Some(i);
        }
    }
    None
}

fn frac_nanos(digits: &str) -> u32 {
    let mut d: String = digits.chars().take(9).collect();
    while d.len() < 9 {
        d.push('0');
    }
    d.parse().unwrap_or(0)
}

/// Go's `Duration.String()` of `ns` nanoseconds: `1h2m3.5s`, `100ms`, `0s`.
pub fn duration_string(ns: i64) -> String {
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div): (&str, u64) = match u {
            0 => return "0s".to_string(),
            1..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        out.push_str(&(u / div).to_string());
        push_frac(&mut out, u % div, div);
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let h = secs / 3600;
        let m = (secs / 60) % 60;
        let s = secs % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&s.to_string());
        push_frac(&mut out, u % 1_000_000_000, 1_000_000_000);
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn push_frac(out: &mut String, frac: u64, div: u64) {
    if frac == 0 {
        return;
    }
    let width = div.ilog10() as usize;
    let s = format!("{frac:0width$}");
    out.push('.');
    out.push_str(s.trim_end_matches('0'));
}

/// Go's `time.ParseDuration`: `1h2m3.5s`, `-1.5h`, `300ms`, `0`. Nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..n];
        if num.is_empty() || num == "." {
            return None;
        }
        let v: f64 = num.parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// Looks up an IANA zone (or `UTC`/`Local`) and moves `t` into it.
pub fn in_zone(t: &GoTime, name: &str) -> Result<GoTime, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(t.to_utc());
    }
    if name == "Local" {
        let local = t.dt.with_timezone(&chrono::Local);
        return Ok(GoTime {
            dt: local.fixed_offset(),
            zone: local.format("%Z").to_string(),
        });
    }
    let tz: chrono_tz::Tz = name
        .parse()
        .map_err(|_| format!("unknown time zone {name}"))?;
    let there = tz.from_utc_datetime(&t.dt.naive_utc());
    Ok(GoTime {
        dt: there.fixed_offset(),
        zone: there.format("%Z").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> GoTime {
        GoTime::parse(s).unwrap()
    }

    #[test]
    fn go_string_round_trips() {
        let x = GoTime::from_unix(1435065584, 128_000_000).unwrap();
        assert_eq!(x.go_string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(t(&x.go_string()), x);
        assert_eq!(t("2015-06-23T13:19:44.128Z"), x);
        assert_eq!(
            t("2015-06-23 13:19:44.128 +0000 UTC m=+0.001").unix(),
            1435065584
        );
        let y = t("2024-01-02T03:04:05+02:00");
        assert_eq!(y.go_string(), "2024-01-02 03:04:05 +0200 +0200");
    }

    #[test]
    fn layouts_like_go() {
        let x = t("2012-11-24T11:14:12.0501Z");
        assert_eq!(
            x.format("Mon Jan 2 15:04:05 2006"),
            "Sat Nov 24 11:14:12 2012"
        );
        assert_eq!(
            x.format("2006-01-02T15:04:05Z07:00"),
            "2012-11-24T11:14:12Z"
        );
        assert_eq!(
            x.format("2006-01-02T15:04:05.999999999Z07:00"),
            "2012-11-24T11:14:12.0501Z"
        );
        assert_eq!(
            x.format("02/01/06 03:04PM .000 ,00"),
            "24/11/12 11:14AM .050 ,05"
        );
        assert_eq!(
            x.format("Monday, January _2 __2 002"),
            "Saturday, November 24 329 329"
        );
        assert_eq!(
            x.format("3:4:5 pm -0700 -07:00 -07 MST"),
            "11:14:12 am +0000 +00:00 +00 UTC"
        );
        let y = t("2024-03-05T17:00:00-05:30");
        assert_eq!(
            y.format("Z07:00 Z0700 -07:00:00 MST _2"),
            "-05:30 -0530 -05:30:00 -0530  5"
        );
        assert_eq!(y.format("x_2006"), "x_2024");
    }

    #[test]
    fn durations_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_500_000_000, "1.5s"),
            (1_800_000_000_000, "30m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-60_000_000_000, "-1m0s"),
        ];
        for (ns, want) in cases {
            assert_eq!(duration_string(*ns), *want);
            assert_eq!(parse_go_duration(want), Some(*ns), "{want}");
        }
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1us"), Some(1_000));
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5"), None);
    }

    #[test]
    fn parse_with_layouts_like_go() {
        let p = |l: &str, v: &str| parse_layout(l, v).map(|t| t.go_string());
        assert_eq!(
            p("2006-01-02", "2024-03-05"),
            Ok("2024-03-05 00:00:00 +0000 UTC".into())
        );
        assert_eq!(
            p("2006-01-02T15:04:05Z07:00", "2024-03-05T10:11:12+02:00"),
            Ok("2024-03-05 10:11:12 +0200 +0200".into())
        );
        assert_eq!(
            p("2006-01-02T15:04:05Z07:00", "2024-03-05T10:11:12.5Z"),
            Ok("2024-03-05 10:11:12.5 +0000 UTC".into())
        );
        assert_eq!(
            p("Jan _2 3:04PM", "Mar  5 1:02PM"),
            Ok("0001-03-05 13:02:00 +0000 UTC".into())
        );
        assert_eq!(
            p(
                "Monday, 02-Jan-06 15:04:05 MST",
                "Tuesday, 05-Mar-24 10:11:12 UTC"
            ),
            Ok("2024-03-05 10:11:12 +0000 UTC".into())
        );
        assert_eq!(
            p("02/01/2006 15:04:05.000", "05/03/2024 10:11:12.345"),
            Ok("2024-03-05 10:11:12.345 +0000 UTC".into())
        );
        assert_eq!(
            p("2006-01-02", "2024-3-05"),
            Err(r#"parsing time "2024-3-05" as "2006-01-02": cannot parse "3-05" as "01""#.into())
        );
        assert!(
            p("2006-01-02", "2024-02-30")
                .unwrap_err()
                .contains("day out of range")
        );
        assert!(p("2006", "2024x").unwrap_err().contains("extra text"));
        assert!(p("3PM", "13PM").unwrap_err().contains("hour out of range"));
        assert_eq!(GoTime::zero().go_string(), "0001-01-01 00:00:00 +0000 UTC");
    }

    proptest::proptest! {
        #[test]
        fn layouts_never_panic(
            layout in "(2006|06|01|1|Jan|January|Mon|Monday|02|_2|2|002|__2|15|03|3|04|4|05|5|PM|pm|MST|Z07:00|-0700|-07|.000|.999|,9|[ :/T-]|é|x){0,8}",
            value in "[0-9 :/T.,+ZéA-Za-z-]{0,24}",
        ) {
            let _ = parse_layout(&layout, &value);
            let t = GoTime::parse("2024-03-05T10:11:12.5+01:30").unwrap();
            let _ = parse_layout(&layout, &t.format(&layout));
        }
    }

    #[test]
    fn zones() {
        let x = t("2024-07-01T12:00:00Z");
        let p = in_zone(&x, "Europe/Paris").unwrap();
        assert_eq!(p.go_string(), "2024-07-01 14:00:00 +0200 CEST");
        assert!(in_zone(&x, "Nowhere/Special").is_err());
        assert_eq!(in_zone(&p, "UTC").unwrap(), x);
    }
}
