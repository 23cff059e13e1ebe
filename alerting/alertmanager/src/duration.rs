//! Prometheus-style durations (`1h30m`, `5m`, `1d`, `2w`, `1y`, `500ms`) as
//! Alertmanager's configuration writes them (`model.Duration`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration string that is not `[0-9]+(y|w|d|h|m|s|ms)` repeated in
/// descending unit order, or that overflows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct BadDuration(pub String);

/// Parses a Prometheus duration: units `y` (365d), `w`, `d`, `h`, `m`, `s`,
/// `ms`, each at most once and in that order; `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(s.to_string());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if start == pos {
            return Err(bad());
        }
        let n: u64 = s[start..pos].parse().map_err(|_| bad())?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[unit_start..pos];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        next_unit = idx + 1;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if total > i64::MAX as u64 / 1_000_000 {
        return Err(bad());
    }
    Ok(Duration::from_millis(total))
}

/// Formats like Prometheus's `model.Duration.String`: `0s`, `1h30m`, `1d`,
/// `2w`, `150ms`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 24 * 3600 * 1000u64),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ] {
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms -= n * size;
        }
    }
    out
}

/// A configuration duration: deserializes from a Prometheus duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604800));
        assert_eq!(parse_duration("1y").unwrap(), Duration::from_secs(31536000));
        assert_eq!(
            parse_duration("1s500ms").unwrap(),
            Duration::from_millis(1500)
        );
        for bad in [
            "",
            "1",
            "m",
            "1m1h",
            "1h1h",
            "-1s",
            "1.5h",
            "1 h",
            "99999999999999y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["0s", "30s", "1h30m", "1d", "2w", "150ms", "1y1d"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
