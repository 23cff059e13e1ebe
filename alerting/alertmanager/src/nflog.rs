//! The notification log: per (group key, receiver) what was last notified
//! (firing and resolved alert fingerprints, when, how many times), which the
//! dedup stage consults so that a flush only notifies on change or after the
//! repeat interval.
//!
//! On disk: `nflog.jsonl` in the data directory, one JSON entry per line,
//! appended and fsynced before the notification counts as logged; the last
//! line for a key wins on reload. Expired entries are dropped by
//! [`NotificationLog::gc`], which rewrites the file atomically (temporary
//! file, fsync, rename) when it holds more dead lines than live ones. A torn
//! last line (crash during append) is skipped on reload.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::write_atomic;

#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    #[error("notification log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One receiver's last notification of one aggregation group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub group_key: String,
    pub receiver: String,
    /// Sorted fingerprints of the alerts firing at that notification.
    pub firing: Vec<u64>,
    /// Sorted fingerprints of the alerts resolved at that notification.
    pub resolved: Vec<u64>,
    pub timestamp: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Notifications since the group last started firing (1 after the
    /// first).
    pub count: u32,
    /// Consecutive "repeat interval elapsed" notifications since the last
    /// change.
    pub repeats: u32,
}

impl Entry {
    pub fn is_firing_subset(&self, firing: &[u64]) -> bool {
        firing.iter().all(|f| self.firing.binary_search(f).is_ok())
    }

    pub fn is_resolved_subset(&self, resolved: &[u64]) -> bool {
        resolved
            .iter()
            .all(|f| self.resolved.binary_search(f).is_ok())
    }
}

struct State {
    entries: HashMap<(String, String), Entry>,
    file: Option<File>,
    lines: usize,
}

pub struct NotificationLog {
    state: Mutex<State>,
    path: Option<PathBuf>,
}

impl NotificationLog {
    /// Opens (or creates) the log at `path`; `None` keeps it in memory.
    /// Entries expired at `now` are dropped.
    pub fn open(path: Option<&Path>, now: DateTime<Utc>) -> Result<NotificationLog, NflogError> {
        let io = |source| NflogError::Io {
            path: path.map(|p| p.display().to_string()).unwrap_or_default(),
            source,
        };
        let mut entries = HashMap::new();
        let mut lines = 0;
        let mut file = None;
        if let Some(p) = path {
            match File::open(p) {
                Ok(f) => {
                    for line in BufReader::new(f).lines() {
                        let line = line.map_err(io)?;
                        lines += 1;
                        match serde_json::from_str::<Entry>(&line) {
                            Ok(e) => {
                                entries.insert((e.group_key.clone(), e.receiver.clone()), e);
                            }
                            Err(e) => {
                                tracing::warn!(path = %p.display(), error = %e, "skipping unreadable notification log line");
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(io)?,
            );
        }
        let log = NotificationLog {
            state: Mutex::new(State {
                entries,
                file,
                lines,
            }),
            path: path.map(Path::to_path_buf),
        };
        log.gc(now)?;
        Ok(log)
    }

    fn io_err(&self, source: std::io::Error) -> NflogError {
        NflogError::Io {
            path: self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        }
    }

    pub fn query(&self, group_key: &str, receiver: &str) -> Option<Entry> {
        self.state
            .lock()
            .entries
            .get(&(group_key.to_string(), receiver.to_string()))
            .cloned()
    }

    /// Records an entry durably (appended and fsynced) before returning.
    pub fn log(&self, entry: Entry) -> Result<(), NflogError> {
        let mut st = self.state.lock();
        if let Some(f) = st.file.as_mut() {
            let mut line = serde_json::to_vec(&entry).unwrap_or_default();
            line.push(b'\n');
            f.write_all(&line).map_err(|e| self.io_err(e))?;
            f.sync_data().map_err(|e| self.io_err(e))?;
            st.lines += 1;
        }
        st.entries
            .insert((entry.group_key.clone(), entry.receiver.clone()), entry);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops entries expired at `now`; compacts the file when more than
    /// half its lines are dead. Returns the number of entries dropped.
    pub fn gc(&self, now: DateTime<Utc>) -> Result<usize, NflogError> {
        let mut st = self.state.lock();
        let before = st.entries.len();
        st.entries.retain(|_, e| e.expires_at > now);
        let removed = before - st.entries.len();
        if let Some(path) = &self.path
            && st.lines > 2 * st.entries.len()
        {
            let mut keys: Vec<_> = st.entries.keys().cloned().collect();
            keys.sort();
            let mut buf = Vec::new();
            for k in &keys {
                buf.extend(serde_json::to_vec(&st.entries[k]).unwrap_or_default());
                buf.push(b'\n');
            }
            write_atomic(path, &buf).map_err(|e| self.io_err(e))?;
            st.file = Some(
                OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| self.io_err(e))?,
            );
            st.lines = keys.len();
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(gk: &str, t: DateTime<Utc>, firing: Vec<u64>) -> Entry {
        Entry {
            group_key: gk.into(),
            receiver: "r".into(),
            firing,
            resolved: vec![],
            timestamp: t,
            expires_at: t + chrono::Duration::hours(1),
            count: 1,
            repeats: 0,
        }
    }

    #[test]
    fn survives_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nflog.jsonl");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        {
            let log = NotificationLog::open(Some(&path), t).unwrap();
            log.log(entry("a", t, vec![1, 2])).unwrap();
            log.log(entry("a", t, vec![1, 2, 3])).unwrap();
            log.log(entry("b", t, vec![4])).unwrap();
        }
        // A crash during an append leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"group_key\":\"c\",\"rec").unwrap();
        drop(f);
        let log = NotificationLog::open(Some(&path), t).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log.query("a", "r").unwrap().firing, vec![1, 2, 3]);
        assert!(log.query("a", "r").unwrap().is_firing_subset(&[3, 1]));
        assert!(!log.query("a", "r").unwrap().is_firing_subset(&[5]));
    }

    #[test]
    fn gc_drops_expired_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nflog.jsonl");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let log = NotificationLog::open(Some(&path), t).unwrap();
        for i in 0..10 {
            log.log(entry("a", t, vec![i])).unwrap();
        }
        log.log(entry("b", t + chrono::Duration::hours(2), vec![1]))
            .unwrap();
        assert_eq!(log.gc(t + chrono::Duration::minutes(90)).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        drop(log);
        let log = NotificationLog::open(Some(&path), t).unwrap();
        assert!(log.query("a", "r").is_none());
        assert!(log.query("b", "r").is_some());
    }
}
