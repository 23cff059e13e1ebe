//! Capacity runs against a real `Db` in a temp dir holding node_exporter
//! series with known growth.

use std::sync::Arc;
use std::time::Duration;

use engine::{Db, Labels, Options, Sample, SeriesSamples, WriteBatch};

use super::*;
use crate::forecast::ModelKind;

/// "Now" in the fixtures: a week of data ends here.
pub(crate) const NOW: i64 = 1_700_006_400_000 + 7 * DAY;
const DAY: i64 = 86_400_000;
const GB: f64 = 1e9;

fn fs(metric: &str, mountpoint: &str, fstype: &str) -> Labels {
    Labels::new(&[
        ("__name__", metric),
        ("instance", "db-3"),
        ("mountpoint", mountpoint),
        ("fstype", fstype),
        ("device", "/dev/sda1"),
    ])
}

/// A week every 5 minutes up to `NOW` of `f(days since the start)`.
fn week(f: impl Fn(f64) -> f64) -> Vec<Sample> {
    let step = 300_000;
    let n = 7 * DAY / step;
    (0..=n)
        .map(|i| {
            let t = NOW - 7 * DAY + i * step;
            // Deterministic jitter of ±0.05% of the value.
            let jitter = 1.0 + (((i * 7919) % 11) as f64 - 5.0) * 1e-4;
            Sample::new(t, f(i as f64 * step as f64 / DAY as f64) * jitter)
        })
        .collect()
}

/// `/var` on db-3 loses 1 GB a day from 10 GB (3 GB left now: full in 3
/// days), `/` stays at 50 GB, a tmpfs fills fast (left out by the
/// filesystem matchers); sizes 20 GB, 100 GB, 1 GB; memory is flat.
pub(crate) async fn node_db() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let db = Db::open(Options::new(dir.path()), &mut registry).unwrap();
    let series = vec![
        (
            fs("node_filesystem_avail_bytes", "/var", "ext4"),
            week(|d| 10.0 * GB - d * GB),
        ),
        (
            fs("node_filesystem_avail_bytes", "/", "ext4"),
            week(|_| 50.0 * GB),
        ),
        (
            fs("node_filesystem_avail_bytes", "/run", "tmpfs"),
            week(|d| 1.0 * GB - d * 0.14 * GB),
        ),
        (
            fs("node_filesystem_size_bytes", "/var", "ext4"),
            week(|_| 20.0 * GB),
        ),
        (
            fs("node_filesystem_size_bytes", "/", "ext4"),
            week(|_| 100.0 * GB),
        ),
        (
            Labels::new(&[
                ("__name__", "node_memory_MemAvailable_bytes"),
                ("instance", "db-3"),
            ]),
            week(|_| 4.0 * GB),
        ),
    ];
    let batch = WriteBatch {
        series: series
            .into_iter()
            .map(|(labels, samples)| SeriesSamples::new(labels, samples))
            .collect(),
        metadata: Vec::new(),
    };
    db.append(&batch).unwrap().wait().await.unwrap();
    (dir, db)
}

fn settings() -> Settings {
    Settings {
        time_ms: NOW,
        horizon_ms: 30 * DAY,
        coverage: 0.8,
    }
}

#[tokio::test]
async fn a_filling_disk_is_found_full_on_time_and_ranked_first() {
    let (_dir, db) = node_db().await;
    let checks = builtin_checks(&BuiltinOptions::default());
    let a = assess(&db, &checks, &settings(), &QueryOptions::default()).unwrap();
    let var = &a.findings[0];
    assert_eq!(var.check, "filesystem_space");
    assert_eq!(var.labels.get("mountpoint"), Some("/var"));
    let days = var.exhaustion.seconds / 86_400.0;
    assert!((days - 3.0).abs() < 0.2, "{var:?}");
    assert!(var.exhaustion.earliest <= var.exhaustion.seconds);
    assert!(var.exhaustion.latest >= var.exhaustion.seconds);
    assert!((var.current - 3.0 * GB).abs() < 0.01 * GB, "{var:?}");
    assert_eq!(var.threshold, 0.0);
    assert!(
        var.message
            .starts_with("filesystem /var on db-3 is full in 3.0 days (80% interval "),
        "{}",
        var.message
    );
    // Flat series are assessed but do not run out; the tmpfs is left out.
    let root = a
        .findings
        .iter()
        .find(|f| f.labels.get("mountpoint") == Some("/"))
        .unwrap();
    assert!(!root.exhausts(), "{root:?}");
    assert_eq!(root.message, "filesystem / on db-3 is full: not within 30d");
    assert!(
        a.findings
            .iter()
            .all(|f| f.labels.get("fstype") != Some("tmpfs"))
    );
    let mem = a.findings.iter().find(|f| f.check == "memory").unwrap();
    assert!(!mem.exhausts(), "{mem:?}");
    assert_eq!(a.findings.iter().filter(|f| f.exhausts()).count(), 1);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}

#[tokio::test]
async fn headroom_thresholds_come_from_a_query_per_series() {
    let (_dir, db) = node_db().await;
    let checks = builtin_checks(&BuiltinOptions {
        filesystem_headroom: 0.1,
        ..BuiltinOptions::default()
    });
    let a = assess(&db, &checks[..1], &settings(), &QueryOptions::default()).unwrap();
    // 10% of 20 GB: 2 GB headroom, 1 GB above it now: full in a day.
    let var = &a.findings[0];
    assert!((var.threshold - 2.0 * GB).abs() < 0.01 * GB, "{var:?}");
    let hours = var.exhaustion.seconds / 3600.0;
    assert!((hours - 24.0).abs() < 3.0, "{var:?}");
    assert!(
        var.message
            .starts_with("filesystem /var on db-3 is full in 24.0 hours (80% interval 2"),
        "{}",
        var.message
    );
    assert_eq!(a.findings.len(), 2);
}

#[tokio::test]
async fn a_configured_check_above_a_threshold_with_the_linear_model() {
    let (_dir, db) = node_db().await;
    let check = Check {
        name: "var_use".into(),
        query: r#"1 - node_filesystem_avail_bytes{mountpoint="/var"} / node_filesystem_size_bytes"#
            .into(),
        threshold: Threshold::Value(0.9),
        direction: Direction::Above,
        message: "{mountpoint} reaches 90%".into(),
        history: Duration::from_secs(2 * 86_400),
        model: ModelKind::Linear,
    };
    check.validate().unwrap();
    let a = assess(&db, &[check], &settings(), &QueryOptions::default()).unwrap();
    assert_eq!(a.findings.len(), 1);
    // Use 85% now, +5% a day: 90% in a day.
    let f = &a.findings[0];
    assert!((f.exhaustion.seconds / 3600.0 - 24.0).abs() < 2.0, "{f:?}");
    assert!(
        f.message.starts_with("/var reaches 90% in "),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn short_series_are_skipped_with_a_warning_and_limits_hold() {
    let (_dir, db) = node_db().await;
    let check = Check {
        name: "recent".into(),
        query: "node_memory_MemAvailable_bytes".into(),
        threshold: Threshold::Value(0.0),
        direction: Direction::Below,
        message: "memory".into(),
        // Ten seconds at 1-second steps: 11 points.
        history: Duration::from_secs(10),
        model: ModelKind::Seasonal,
    };
    let a = assess(&db, &[check], &settings(), &QueryOptions::default()).unwrap();
    assert!(a.findings.is_empty());
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    assert!(
        a.warnings[0].starts_with(
            r#"capacity check recent: series node_memory_MemAvailable_bytes{instance="db-3"} skipped: series too short to fit"#
        ),
        "{}",
        a.warnings[0]
    );
    let mut opts = QueryOptions::default();
    opts.engine.max_samples = 10;
    let err = assess(
        &db,
        &builtin_checks(&BuiltinOptions::default()),
        &settings(),
        &opts,
    )
    .unwrap_err();
    assert!(matches!(
        err.into_eval(),
        EvalError::TooManySamples { limit: 10 }
    ),);
    let bad = Settings {
        coverage: 1.0,
        ..settings()
    };
    assert_eq!(
        assess(&db, &[], &bad, &QueryOptions::default())
            .unwrap_err()
            .to_string(),
        "coverage must lie strictly between 0 and 1, got 1"
    );
}
