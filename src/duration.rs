//! Duration strings as users type them: Prometheus style (`15d`, `1h30m`,
//! `500ms`, `2w`, `1y` = 365 days), anything `humantime` understands
//! (`1 day 2h`), and a bare `0`.

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: expected e.g. 15d, 1h30m, 500ms or 0")]
pub struct DurationError {
    input: String,
}

/// Parses a duration. `0` (and `0s`, `0d`, ...) is the zero duration.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if let Some(d) = parse_prometheus(s) {
        return Ok(d);
    }
    humantime::parse_duration(s).map_err(|_| DurationError {
        input: input.to_owned(),
    })
}

/// Prometheus's `model.ParseDuration`: `[0-9]+` then a unit, repeated, units
/// strictly descending (`1h30m`, not `30m1h`).
fn parse_prometheus(s: &str) -> Option<Duration> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    // Order in which units may appear (ms is the smallest).
    const RANK: [usize; 7] = [0, 1, 2, 3, 6, 4, 5];
    if s.is_empty() {
        return None;
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        let n: u64 = s[start..pos].parse().ok()?;
        let rest = &s[pos..];
        let (idx, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u))?;
        let rank = RANK[idx];
        if last_rank.is_some_and(|r| r >= rank) {
            return None;
        }
        last_rank = Some(rank);
        pos += unit.len();
        total_ms = total_ms.checked_add(n.checked_mul(*ms)?)?;
    }
    Some(Duration::from_millis(total_ms))
}

/// Formats a duration in Prometheus style (`15d`, `1h30m`, `0s`), without
/// weeks (`14d`, not `2w`).
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

/// A duration that (de)serialises as a string such as `15d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(HumanDuration)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15d, 1h30m, 500ms or 0")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                if v == 0 {
                    Ok(HumanDuration(Duration::ZERO))
                } else {
                    Err(E::custom(format_args!(
                        "duration {v} has no unit (write e.g. {v}s)"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::custom("a duration cannot be negative")),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_style() {
        let h = 3_600_000;
        for (s, ms) in [
            ("0", 0),
            ("0s", 0),
            ("15d", 15 * 24 * h),
            ("1h30m", h + 1_800_000),
            ("500ms", 500),
            ("2w", 14 * 24 * h),
            ("1y", 365 * 24 * h),
            ("1m1s1ms", 61_001),
            (" 10m ", 600_000),
        ] {
            assert_eq!(parse(s), Ok(Duration::from_millis(ms)), "{s}");
        }
    }

    #[test]
    fn humantime_fallback() {
        assert_eq!(parse("1 day 2h"), Ok(Duration::from_secs(26 * 3600)));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "d", "15", "-1d", "1x", "abc", "99999999999999999999y"] {
            assert!(parse(s).is_err(), "{s:?} should not parse");
        }
    }

    #[test]
    fn format_round_trips() {
        for s in ["0s", "15d", "1h30m", "500ms", "14d", "1y", "1d1h1m1s1ms"] {
            let d = parse(s).unwrap();
            assert_eq!(format(d), s);
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }

    #[test]
    fn serde_accepts_strings_and_zero() {
        let d: HumanDuration = serde_yaml::from_str("15d").unwrap();
        assert_eq!(d.0, Duration::from_secs(15 * 86_400));
        let d: HumanDuration = serde_yaml::from_str("0").unwrap();
        assert_eq!(d.0, Duration::ZERO);
        assert!(serde_yaml::from_str::<HumanDuration>("15").is_err());
        assert_eq!(
            serde_yaml::to_string(&HumanDuration(Duration::from_secs(90)))
                .unwrap()
                .trim(),
            "1m30s"
        );
    }
}
