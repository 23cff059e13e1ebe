//! Run records on disk: `<dir>/<report>/<run id>/run.json` beside the run's
//! output files. A run folder is written under a `.tmp-` name and renamed
//! into place, so a listed run is always complete; leftovers of a crash
//! (`.tmp-*`) are ignored and removed by [`Store::prune`]. Run ids are UTC
//! times (`20261201T080000.000Z`), so names sort by time.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use crate::render::Rendered;

/// Why a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// One output file of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// What one delivery did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    /// `folder`, `webhook` or `email`.
    pub target: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where it went (the folder, the URL, the recipients).
    pub detail: String,
    pub attempts: u32,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub report: String,
    pub kind: String,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub files: Vec<OutputFile>,
    pub deliveries: Vec<DeliveryOutcome>,
}

const RECORD: &str = "run.json";

/// A run id for a run started at `t`.
pub fn run_id(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Ids and file names from URLs must be plain names.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The run store under one folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut f = fs::File::create(path).map_err(|e| ReportError::io(path, e))?;
    f.write_all(bytes).map_err(|e| ReportError::io(path, e))?;
    f.sync_all().map_err(|e| ReportError::io(path, e))
}

/// Writes `files` (and `record`, when given) into a fresh folder next to
/// `dest` and renames it to `dest`: readers see all files or none.
pub(crate) fn write_folder_atomically(
    dest: &Path,
    files: &[Rendered],
    record: Option<&RunRecord>,
) -> Result<(), ReportError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| ReportError::io(parent, e))?;
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("run");
    let tmp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
    }
    fs::create_dir(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
    for f in files {
        write_synced(&tmp.join(&f.name), &f.bytes)?;
    }
    if let Some(r) = record {
        let json = serde_json::to_vec_pretty(r).map_err(|e| ReportError::Corrupt {
            path: tmp.join(RECORD),
            message: e.to_string(),
        })?;
        write_synced(&tmp.join(RECORD), &json)?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| ReportError::io(dest, e))?;
    }
    fs::rename(&tmp, dest).map_err(|e| ReportError::io(dest, e))?;
    if let Ok(d) = fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, ReportError> {
        fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run_dir(&self, report: &str, id: &str) -> PathBuf {
        self.dir.join(report).join(id)
    }

    /// Stores a finished run and its files.
    pub fn save(&self, record: &RunRecord, files: &[Rendered]) -> Result<(), ReportError> {
        write_folder_atomically(
            &self.run_dir(&record.report, &record.id),
            files,
            Some(record),
        )
    }

    /// Rewrites a stored run's record (after delivery).
    pub fn update(&self, record: &RunRecord) -> Result<(), ReportError> {
        let dir = self.run_dir(&record.report, &record.id);
        let path = dir.join(RECORD);
        let tmp = dir.join(".run.json.tmp");
        let json = serde_json::to_vec_pretty(record).map_err(|e| ReportError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_synced(&tmp, &json)?;
        fs::rename(&tmp, &path).map_err(|e| ReportError::io(&path, e))
    }

    /// The runs of `report`, newest first. Unreadable records are skipped
    /// (and logged).
    pub fn list(&self, report: &str) -> Result<Vec<RunRecord>, ReportError> {
        let dir = self.dir.join(report);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ReportError::io(&dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| plain(n))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.get(report, &id) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(report, run = %id, error = %e, "skipping an unreadable report run")
                }
            }
        }
        Ok(out)
    }

    /// The newest run of `report`.
    pub fn last(&self, report: &str) -> Result<Option<RunRecord>, ReportError> {
        Ok(self.list(report)?.into_iter().next())
    }

    pub fn get(&self, report: &str, id: &str) -> Result<RunRecord, ReportError> {
        let unknown = || ReportError::UnknownRun {
            report: report.to_string(),
            run: id.to_string(),
        };
        if !plain(id) || !plain(report) {
            return Err(unknown());
        }
        let path = self.run_dir(report, id).join(RECORD);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(unknown()),
            Err(e) => return Err(ReportError::io(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ReportError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// The path of one output file of a run; only files the record lists.
    pub fn file(
        &self,
        report: &str,
        id: &str,
        file: &str,
    ) -> Result<(PathBuf, OutputFile), ReportError> {
        let rec = self.get(report, id)?;
        let f = rec
            .files
            .iter()
            .find(|f| f.name == file && plain(file))
            .ok_or_else(|| ReportError::UnknownFile {
                report: report.to_string(),
                run: id.to_string(),
                file: file.to_string(),
            })?;
        Ok((self.run_dir(report, id).join(file), f.clone()))
    }

    /// Keeps the newest `keep` runs of `report`; removes crash leftovers.
    pub fn prune(&self, report: &str, keep: usize) -> Result<usize, ReportError> {
        let dir = self.dir.join(report);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ReportError::io(&dir, e)),
        };
        let mut ids = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with(".tmp-") {
                let _ = fs::remove_dir_all(e.path());
            } else if plain(&name) {
                ids.push(name);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut removed = 0;
        for id in ids.iter().skip(keep) {
            let p = dir.join(id);
            fs::remove_dir_all(&p).map_err(|e| ReportError::io(&p, e))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record(report: &str, t: DateTime<Utc>) -> RunRecord {
        RunRecord {
            id: run_id(t),
            report: report.into(),
            kind: "sla".into(),
            trigger: Trigger::Manual,
            started_at: t,
            finished_at: t,
            duration_seconds: 0.5,
            period_start: t,
            period_end: t,
            status: RunStatus::Succeeded,
            error: None,
            files: vec![OutputFile {
                name: "report.md".into(),
                content_type: "text/markdown".into(),
                size: 2,
            }],
            deliveries: vec![],
        }
    }

    #[test]
    fn saves_lists_prunes_and_refuses_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        for i in 0..3 {
            let r = record("weekly", t0 + chrono::Duration::days(i));
            let f = Rendered {
                name: "report.md".into(),
                content_type: "text/markdown",
                bytes: b"hi".to_vec(),
            };
            s.save(&r, &[f]).unwrap();
        }
        assert_eq!(run_id(t0), "20261201T080000.000Z");
        let runs = s.list("weekly").unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].id, "20261203T080000.000Z");
        let (path, _) = s.file("weekly", &runs[0].id, "report.md").unwrap();
        assert_eq!(fs::read(path).unwrap(), b"hi");
        assert!(matches!(
            s.file("weekly", &runs[0].id, "run.json"),
            Err(ReportError::UnknownFile { .. })
        ));
        assert!(matches!(
            s.get("weekly", "../x"),
            Err(ReportError::UnknownRun { .. })
        ));
        assert!(matches!(
            s.get("..", "x"),
            Err(ReportError::UnknownRun { .. })
        ));
        fs::create_dir_all(dir.path().join("weekly/.tmp-crashed")).unwrap();
        assert_eq!(s.prune("weekly", 2).unwrap(), 1);
        assert!(!dir.path().join("weekly/.tmp-crashed").exists());
        assert_eq!(s.list("weekly").unwrap().len(), 2);
        let mut r = runs[0].clone();
        r.status = RunStatus::Failed;
        s.update(&r).unwrap();
        assert_eq!(s.last("weekly").unwrap().unwrap().status, RunStatus::Failed);
        assert!(s.list("nothing").unwrap().is_empty());
    }
}
