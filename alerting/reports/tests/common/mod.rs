//! Shared fixtures: a temp engine filled with node_exporter-like data.
//!
//! Four hosts scraped every minute for four days (two report periods of
//! two days), two CPUs each:
//! - `busy`: 95 % CPU, 50 % memory;
//! - `idle`: 5 % CPU, 20 % memory (over-provisioned);
//! - `normal`: 30 % CPU in the first two days, 50 % in the last two;
//! - `filling`: 50 % CPU, 60 % memory, `/data` free space falling
//!   linearly from 50 % to 20 % of its size over the four days (full
//!   0.2 / 0.075 = 2.67 days after the end).
//!
//! Scrape targets: `up` is 1 for `t-ok` and 0 on every tenth sample for
//! `t-90` (90 % available).
#![allow(dead_code)] // each test binary uses a part

use std::path::Path;
use std::sync::Arc;

use alertmanager::{History, HistoryEvent};
use engine::{Db, Labels, Options, Sample, SeriesSamples, WriteBatch};
use prometheus_client::registry::Registry;

pub const MIN_MS: i64 = 60_000;
pub const DAY_MS: i64 = 86_400_000;
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn open(dir: &Path) -> Arc<Db> {
    let mut o = Options::new(dir);
    o.background = false;
    Db::open(o, &mut Registry::default()).expect("open db")
}

/// A minute-aligned end time a little before now.
pub fn end_ms() -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    (now - 2 * MIN_MS).div_euclid(MIN_MS) * MIN_MS
}

struct Gen {
    series: Vec<SeriesSamples>,
}

impl Gen {
    fn add(&mut self, labels: &[(&str, &str)], samples: Vec<Sample>) {
        self.series
            .push(SeriesSamples::new(Labels::new(labels), samples));
    }
}

/// Writes four days of data ending at `end`.
pub fn fill(db: &Arc<Db>, end: i64) {
    let start = end - 4 * DAY_MS;
    let times: Vec<i64> = (0..=(4 * DAY_MS / MIN_MS))
        .map(|i| start + i * MIN_MS)
        .collect();
    let mut g = Gen { series: Vec::new() };
    let hosts: [(&str, f64, f64); 4] = [
        ("busy", 0.95, 0.5),
        ("idle", 0.05, 0.2),
        ("normal", 0.0, 0.6),
        ("filling", 0.5, 0.6),
    ];
    for (host, cpu, mem) in hosts {
        let cpu_at = |t: i64| -> f64 {
            if host == "normal" {
                if t <= end - 2 * DAY_MS { 0.3 } else { 0.5 }
            } else {
                cpu
            }
        };
        for c in ["0", "1"] {
            let mut idle = 0.0;
            let mut samples = Vec::with_capacity(times.len());
            for (i, &t) in times.iter().enumerate() {
                if i > 0 {
                    idle += 60.0 * (1.0 - cpu_at(t));
                }
                samples.push(Sample::new(t, idle));
            }
            g.add(
                &[
                    ("__name__", "node_cpu_seconds_total"),
                    ("instance", host),
                    ("job", "node"),
                    ("cpu", c),
                    ("mode", "idle"),
                ],
                samples,
            );
        }
        let total = 16.0 * GIB;
        g.add(
            &[
                ("__name__", "node_memory_MemTotal_bytes"),
                ("instance", host),
                ("job", "node"),
            ],
            times.iter().map(|&t| Sample::new(t, total)).collect(),
        );
        g.add(
            &[
                ("__name__", "node_memory_MemAvailable_bytes"),
                ("instance", host),
                ("job", "node"),
            ],
            times
                .iter()
                .map(|&t| Sample::new(t, total * (1.0 - mem)))
                .collect(),
        );
        let size = 100.0 * GIB;
        let avail_at = |t: i64| -> f64 {
            if host == "filling" {
                size * (0.5 - 0.3 * (t - start) as f64 / (4 * DAY_MS) as f64)
            } else {
                size * 0.7
            }
        };
        for (mount, fstype, avail) in [
            ("/", "ext4", false),
            ("/data", "xfs", true),
            ("/run", "tmpfs", false),
        ] {
            let fs = |name: &'static str| -> [(&'static str, &str); 6] {
                [
                    ("__name__", name),
                    ("instance", host),
                    ("job", "node"),
                    ("mountpoint", mount),
                    ("fstype", fstype),
                    ("device", "/dev/sda"),
                ]
            };
            g.add(
                &fs("node_filesystem_size_bytes"),
                times.iter().map(|&t| Sample::new(t, size)).collect(),
            );
            g.add(
                &fs("node_filesystem_avail_bytes"),
                times
                    .iter()
                    .map(|&t| Sample::new(t, if avail { avail_at(t) } else { size * 0.7 }))
                    .collect(),
            );
        }
        g.add(
            &[("__name__", "up"), ("instance", host), ("job", "node")],
            times.iter().map(|&t| Sample::new(t, 1.0)).collect(),
        );
    }
    g.add(
        &[("__name__", "up"), ("instance", "t-ok"), ("job", "web")],
        times.iter().map(|&t| Sample::new(t, 1.0)).collect(),
    );
    g.add(
        &[("__name__", "up"), ("instance", "t-90"), ("job", "web")],
        times
            .iter()
            .enumerate()
            .map(|(i, &t)| Sample::new(t, if i % 10 == 0 { 0.0 } else { 1.0 }))
            .collect(),
    );
    let batch = WriteBatch {
        series: g.series,
        metadata: vec![],
    };
    drop(db.append(&batch).expect("append"));
}

/// An alert history in `dir` with three incidents in the last day before
/// `end`: `HostDown` on `a` (30 minutes) and `b` (60 minutes), `DiskFull`
/// on `c` still firing.
pub fn history(dir: &Path, end: i64) -> Arc<History> {
    let history = Arc::new(History::open(dir).unwrap());
    let ev = |min: i64, name: &str, inst: &str, from: &str, to: &str| {
        let labels = [
            ("alertname", name),
            ("instance", inst),
            ("severity", "page"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let t = chrono::DateTime::from_timestamp_millis(end - DAY_MS + min * MIN_MS).unwrap();
        HistoryEvent::state_change(t, labels, from, to, None)
    };
    history
        .append(&[
            ev(0, "HostDown", "a", "pending", "firing"),
            ev(30, "HostDown", "a", "firing", "inactive"),
            ev(60, "HostDown", "b", "pending", "firing"),
            ev(120, "HostDown", "b", "firing", "inactive"),
            ev(200, "DiskFull", "c", "pending", "firing"),
        ])
        .unwrap();
    history
}
