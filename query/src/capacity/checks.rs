//! Capacity check definitions: what a check forecasts (a PromQL
//! expression), the threshold it must not reach and from which side, how
//! a finding reads; the built-in checks over node_exporter metrics, and
//! validation of configured ones.

use std::time::Duration;

use crate::forecast::{Direction, ModelKind};
use crate::promql::{self, ast::ValueType};

/// Filesystems the built-in checks leave out: virtual and in-memory ones.
pub const DEFAULT_FILESYSTEMS: &str =
    r#"fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|autofs|proc|sysfs|fuse\\..*""#;

/// The threshold a check's series must not reach.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// One value for every series.
    Value(f64),
    /// A PromQL expression evaluated at the check's time; each series
    /// takes the value of the result series with the same labels (the
    /// metric name ignored), or of the only one when the result is a
    /// scalar or a single series without labels.
    Query(String),
}

/// One capacity check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Unique name (`filesystem_space`), `[A-Za-z0-9_:.-]+`.
    pub name: String,
    /// An instant-vector (or scalar) PromQL expression, evaluated over
    /// the history as a range query.
    pub query: String,
    pub threshold: Threshold,
    pub direction: Direction,
    /// What a finding says before its time, with `{label}` replaced by the
    /// series' label values: `filesystem {mountpoint} on {instance} is
    /// full` becomes `filesystem /var on db-3 is full in 3.2 days (80%
    /// interval 2.5–4.1)`.
    pub message: String,
    /// The fitting window ending at the check's time.
    pub history: Duration,
    pub model: ModelKind,
}

/// Why a configured check is invalid.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("check name {0:?} is not [A-Za-z0-9_:.-]+")]
    Name(String),
    #[error("check {check}: query: {source}")]
    Query {
        check: String,
        #[source]
        source: promql::ParseError,
    },
    #[error("check {check}: query must be an instant vector or a scalar, got {got}")]
    QueryType { check: String, got: &'static str },
    #[error("check {check}: threshold: {source}")]
    ThresholdQuery {
        check: String,
        #[source]
        source: promql::ParseError,
    },
    #[error("check {check}: threshold {value} is not a finite number")]
    ThresholdValue { check: String, value: f64 },
    #[error("check {check}: history must be positive")]
    History { check: String },
    #[error("check {check}: message is empty")]
    Message { check: String },
    #[error("two checks are named {0:?}")]
    Duplicate(String),
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

impl Check {
    /// Checks the name, the expressions, the threshold and the history.
    pub fn validate(&self) -> Result<(), CheckError> {
        let check = || self.name.clone();
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
        {
            return Err(CheckError::Name(self.name.clone()));
        }
        let expr = promql::parse(&self.query).map_err(|source| CheckError::Query {
            check: check(),
            source,
        })?;
        let ty = expr.value_type();
        if !matches!(ty, ValueType::Vector | ValueType::Scalar) {
            return Err(CheckError::QueryType {
                check: check(),
                got: type_name(ty),
            });
        }
        match &self.threshold {
            Threshold::Value(v) if !v.is_finite() => {
                return Err(CheckError::ThresholdValue {
                    check: check(),
                    value: *v,
                });
            }
            Threshold::Value(_) => {}
            Threshold::Query(q) => {
                promql::parse(q).map_err(|source| CheckError::ThresholdQuery {
                    check: check(),
                    source,
                })?;
            }
        }
        if self.history.is_zero() {
            return Err(CheckError::History { check: check() });
        }
        if self.message.trim().is_empty() {
            return Err(CheckError::Message { check: check() });
        }
        Ok(())
    }
}

/// Validates every check and that names are unique.
pub fn validate_all(checks: &[Check]) -> Result<(), CheckError> {
    for (i, c) in checks.iter().enumerate() {
        c.validate()?;
        if checks[..i].iter().any(|o| o.name == c.name) {
            return Err(CheckError::Duplicate(c.name.clone()));
        }
    }
    Ok(())
}

/// Settings of the built-in checks.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltinOptions {
    /// Matchers (without braces) that pick real filesystems.
    pub filesystems: String,
    /// Free space and inodes count as exhausted at this share of the
    /// filesystem's size (0: when none is left).
    pub filesystem_headroom: f64,
    /// Memory counts as exhausted at this share of `MemTotal` available.
    pub memory_headroom: f64,
    /// CPU use (0..1, averaged over a host's cores) counted as saturated.
    pub cpu_saturation: f64,
    pub history: Duration,
}

impl Default for BuiltinOptions {
    fn default() -> Self {
        BuiltinOptions {
            filesystems: DEFAULT_FILESYSTEMS.to_string(),
            filesystem_headroom: 0.0,
            memory_headroom: 0.0,
            cpu_saturation: 0.9,
            history: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Names of the built-in checks.
pub const FILESYSTEM_SPACE: &str = "filesystem_space";
pub const FILESYSTEM_INODES: &str = "filesystem_inodes";
pub const MEMORY: &str = "memory";
pub const CPU: &str = "cpu";

/// The built-in checks over node_exporter metrics (documented in
/// `docs/forecasting.md`).
pub fn builtin_checks(o: &BuiltinOptions) -> Vec<Check> {
    let fs = &o.filesystems;
    let headroom = |h: f64, size: &str| {
        if h > 0.0 {
            Threshold::Query(format!("{h} * {size}"))
        } else {
            Threshold::Value(0.0)
        }
    };
    let pct = |r: f64| {
        let p = (r * 1000.0).round() / 10.0;
        format!("{p}%")
    };
    vec![
        Check {
            name: FILESYSTEM_SPACE.into(),
            query: format!("node_filesystem_avail_bytes{{{fs}}}"),
            threshold: headroom(
                o.filesystem_headroom,
                &format!("node_filesystem_size_bytes{{{fs}}}"),
            ),
            direction: Direction::Below,
            message: "filesystem {mountpoint} on {instance} is full".into(),
            history: o.history,
            model: ModelKind::Seasonal,
        },
        Check {
            name: FILESYSTEM_INODES.into(),
            query: format!("node_filesystem_files_free{{{fs}}}"),
            threshold: headroom(
                o.filesystem_headroom,
                &format!("node_filesystem_files{{{fs}}}"),
            ),
            direction: Direction::Below,
            message: "filesystem {mountpoint} on {instance} runs out of inodes".into(),
            history: o.history,
            model: ModelKind::Seasonal,
        },
        Check {
            name: MEMORY.into(),
            query: "node_memory_MemAvailable_bytes".into(),
            threshold: headroom(o.memory_headroom, "node_memory_MemTotal_bytes"),
            direction: Direction::Below,
            message: "memory on {instance} runs out".into(),
            history: o.history,
            model: ModelKind::Seasonal,
        },
        Check {
            name: CPU.into(),
            query: r#"1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))"#
                .into(),
            threshold: Threshold::Value(o.cpu_saturation),
            direction: Direction::Above,
            message: format!("CPU on {{instance}} reaches {} use", pct(o.cpu_saturation)),
            history: o.history,
            model: ModelKind::Seasonal,
        },
    ]
}

/// `template` with each `{name}` replaced by the label's value (empty
/// when absent); `{{` and `}}` stand for braces.
pub fn expand_message(template: &str, label: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let (c, after) = (rest.as_bytes()[i], &rest[i + 1..]);
        if after.as_bytes().first() == Some(&c) {
            out.push(c as char);
            rest = &after[1..];
        } else if c == b'{'
            && let Some(end) = after.find('}')
        {
            out.push_str(&label(after[..end].trim()).unwrap_or_default());
            rest = &after[end + 1..];
        } else {
            out.push(c as char);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A duration in words with the unit chosen from it (`45 minutes`,
/// `7.5 hours`, `3.2 days`), and the factor that unit divides seconds by.
pub fn human_unit(seconds: f64) -> (&'static str, f64) {
    if seconds < 2.0 * 3600.0 {
        ("minutes", 60.0)
    } else if seconds < 2.0 * 86_400.0 {
        ("hours", 3600.0)
    } else {
        ("days", 86_400.0)
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// `in 3.2 days (80% interval 2.5–4.1)`, `now`, or `in 3.2 days (80%
/// interval 2.5 days to beyond 30 days)` when the optimistic band does not
/// reach the threshold within the horizon.
pub fn when_text(
    seconds: f64,
    earliest: f64,
    latest: f64,
    coverage: f64,
    horizon_s: f64,
) -> String {
    if seconds <= 0.0 {
        return "now".into();
    }
    let (unit, div) = human_unit(seconds);
    let cov = (coverage * 1000.0).round() / 10.0;
    let lo = number(earliest.max(0.0) / div);
    let main = number(seconds / div);
    if latest.is_finite() {
        format!(
            "in {main} {unit} ({cov}% interval {lo}–{})",
            number(latest / div)
        )
    } else {
        let (hunit, hdiv) = human_unit(horizon_s);
        format!(
            "in {main} {unit} ({cov}% interval {lo} {unit} to beyond {} {hunit})",
            number(horizon_s / hdiv)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid() {
        let mut o = BuiltinOptions::default();
        validate_all(&builtin_checks(&o)).unwrap();
        o.filesystem_headroom = 0.05;
        o.memory_headroom = 0.1;
        let checks = builtin_checks(&o);
        validate_all(&checks).unwrap();
        assert_eq!(
            checks[0].threshold,
            Threshold::Query(format!(
                "0.05 * node_filesystem_size_bytes{{{DEFAULT_FILESYSTEMS}}}"
            ))
        );
        assert_eq!(checks[3].message, "CPU on {instance} reaches 90% use");
    }

    #[test]
    fn invalid_checks_name_the_problem() {
        let good = builtin_checks(&BuiltinOptions::default()).remove(0);
        let bad = |f: &dyn Fn(&mut Check)| {
            let mut c = good.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert_eq!(
            bad(&|c| c.name = "a b".into()),
            r#"check name "a b" is not [A-Za-z0-9_:.-]+"#
        );
        assert!(bad(&|c| c.query = "up{".into()).starts_with("check filesystem_space: query: "));
        assert_eq!(
            bad(&|c| c.query = "up[5m]".into()),
            "check filesystem_space: query must be an instant vector or a scalar, got range vector"
        );
        assert_eq!(
            bad(&|c| c.threshold = Threshold::Value(f64::NAN)),
            "check filesystem_space: threshold NaN is not a finite number"
        );
        assert_eq!(
            bad(&|c| c.history = Duration::ZERO),
            "check filesystem_space: history must be positive"
        );
        assert_eq!(
            validate_all(&[good.clone(), good]).unwrap_err().to_string(),
            r#"two checks are named "filesystem_space""#
        );
    }

    #[test]
    fn messages() {
        let get = |n: &str| match n {
            "mountpoint" => Some("/var".to_string()),
            "instance" => Some("db-3".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_message(
                "filesystem {mountpoint} on { instance } is full{{x}}{nope}",
                get
            ),
            "filesystem /var on db-3 is full{x}"
        );
        assert_eq!(expand_message("a } b {", get), "a } b {");
        assert_eq!(
            when_text(
                3.2 * 86_400.0,
                2.5 * 86_400.0,
                4.1 * 86_400.0,
                0.8,
                30.0 * 86_400.0
            ),
            "in 3.2 days (80% interval 2.5–4.1)"
        );
        assert_eq!(
            when_text(2700.0, 1800.0, f64::INFINITY, 0.95, 86_400.0),
            "in 45.0 minutes (95% interval 30.0 minutes to beyond 24.0 hours)"
        );
        assert_eq!(when_text(0.0, 0.0, 0.0, 0.8, 1.0), "now");
    }
}
