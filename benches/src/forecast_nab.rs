//! Real server metrics from the Numenta Anomaly Benchmark (NAB,
//! <https://github.com/numenta/NAB>, MIT licence): AWS CloudWatch series
//! of EC2 and RDS instances and an ELB (CPU, disk writes, network in,
//! request counts, 5-minute samples over about two weeks) plus three
//! series with known causes (an autoscaling misconfiguration, a request
//! latency failure, a machine's temperature before a failure), each with
//! NAB's labelled anomaly windows. `silt-bench forecast --nab DIR` reads
//! them from a NAB checkout (DIR holds `data/` and `labels/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::Sample;

/// The series read from NAB: every file of `realAWSCloudwatch` and the
/// server metrics of `realKnownCause`. NAB's other real series (ad
/// exchanges, road traffic, tweets, taxis) are not server metrics.
pub const KNOWN_CAUSE: [&str; 3] = [
    "realKnownCause/cpu_utilization_asg_misconfiguration.csv",
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
];
const CLOUDWATCH: &str = "realAWSCloudwatch";

/// Why NAB cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: not NAB's anomaly windows: {message}")]
    BadLabels { path: PathBuf, message: String },
    #[error("{0} holds no NAB server series (expected data/{CLOUDWATCH}/*.csv)")]
    Empty(PathBuf),
}

/// One NAB series with its labelled anomaly windows (ms, inclusive).
#[derive(Debug, Clone)]
pub struct NabSeries {
    /// The file's path under `data/`, without `.csv`.
    pub name: String,
    pub samples: Vec<Sample>,
    pub windows: Vec<(i64, i64)>,
}

/// Parses NAB's timestamps (`2014-02-14 14:27:00`, windows with
/// `.000000`), which are UTC.
fn parse_time(s: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(t.and_utc().timestamp_millis())
}

fn read(path: &Path) -> Result<String, NabError> {
    std::fs::read_to_string(path).map_err(|source| NabError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses one NAB CSV (`timestamp,value` header, then one sample a line).
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<Sample>, NabError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: &str| NabError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            message: message.to_string(),
        };
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| bad("expected `timestamp,value`"))?;
        let t = parse_time(t).ok_or_else(|| bad("timestamp is not `YYYY-MM-DD HH:MM:SS`"))?;
        let v: f64 = v.trim().parse().map_err(|_| bad("value is not a number"))?;
        out.push(Sample { t, v });
    }
    out.sort_by_key(|s| s.t);
    out.dedup_by_key(|s| s.t);
    Ok(out)
}

/// Parses `labels/combined_windows.json`: file → `[[start, end], ...]`.
pub fn parse_windows(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, Vec<(i64, i64)>>, NabError> {
    let bad = |message: String| NabError::BadLabels {
        path: path.to_path_buf(),
        message,
    };
    let v: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    v.into_iter()
        .map(|(file, ws)| {
            let ws = ws
                .iter()
                .map(|[a, b]| match (parse_time(a), parse_time(b)) {
                    (Some(a), Some(b)) => Ok((a, b)),
                    _ => Err(bad(format!("{file}: window [{a}, {b}] is not two times"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((file, ws))
        })
        .collect()
}

/// Reads the NAB server series under `root` (a NAB checkout).
pub fn read_nab(root: &Path) -> Result<Vec<NabSeries>, NabError> {
    let data = root.join("data");
    let labels_path = root.join("labels").join("combined_windows.json");
    let windows = parse_windows(&labels_path, &read(&labels_path)?)?;
    let dir = data.join(CLOUDWATCH);
    let entries = std::fs::read_dir(&dir).map_err(|source| NabError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".csv"))
        .map(|n| format!("{CLOUDWATCH}/{n}"))
        .collect();
    files.sort();
    files.extend(KNOWN_CAUSE.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for file in files {
        let path = data.join(&file);
        let samples = parse_csv(&path, &read(&path)?)?;
        if samples.is_empty() {
            continue;
        }
        out.push(NabSeries {
            name: file.trim_end_matches(".csv").to_string(),
            windows: windows.get(&file).cloned().unwrap_or_default(),
            samples,
        });
    }
    if out.is_empty() {
        return Err(NabError::Empty(root.to_path_buf()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_windows_parse() {
        let p = Path::new("x.csv");
        let s = parse_csv(
            p,
            "timestamp,value\n2014-02-14 14:32:00,44.5\n2014-02-14 14:27:00,51.8\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].t, 1_392_388_020_000);
        assert_eq!(s[1].v, 44.5);
        let err = parse_csv(p, "timestamp,value\nyesterday,1\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let w = parse_windows(
            p,
            r#"{"a/b.csv": [["2014-02-14 14:27:00.000000", "2014-02-14 15:27:00.000000"]], "c.csv": []}"#,
        )
        .unwrap();
        assert_eq!(w["a/b.csv"], vec![(1_392_388_020_000, 1_392_391_620_000)]);
        assert!(w["c.csv"].is_empty());
        assert!(parse_windows(p, r#"{"a": [["x", "y"]]}"#).is_err());
    }
}
