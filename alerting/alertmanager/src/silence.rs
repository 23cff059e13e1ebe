//! Silences (C.4): matchers plus `[startsAt, endsAt)`, states, validation,
//! Alertmanager's update semantics, expiry and retention, persisted as an
//! atomically replaced JSON snapshot file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, sub, write_atomic};
use crate::matchers::{MatchType, Matcher, valid_label_name};
use crate::types::LabelSet;

/// How long expired silences are kept (`--data.retention`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(120 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("silence {0} not found")]
    NotFound(String),
    #[error("invalid silence: {0}")]
    Invalid(String),
    #[error("writing silences to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("reading silences from {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("silences file {path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

/// A silence matcher as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as stored (and returned by the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt")]
    pub ends_at: DateTime<Utc>,
    #[serde(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LabelSet>,
}

impl Silence {
    pub fn state_at(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if self.ends_at <= now {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }
}

/// What a client posts: a new silence (no `id`) or an update.
#[derive(Debug, Clone, PartialEq)]
pub struct PostableSilence {
    pub id: Option<String>,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub comment: String,
    pub annotations: Option<LabelSet>,
}

fn compile(ms: &[SilenceMatcher]) -> Result<Vec<Matcher>, String> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| {
            if !valid_label_name(&m.name) {
                return Err(format!(
                    "invalid label matcher {i}: invalid label name {:?}",
                    m.name
                ));
            }
            Matcher::new(
                MatchType::from_flags(m.is_regex, m.is_equal),
                &m.name,
                &m.value,
            )
            .map_err(|e| format!("invalid label matcher {i}: {e}"))
        })
        .collect()
}

struct Stored {
    silence: Silence,
    matchers: Vec<Matcher>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    silences: Vec<Silence>,
}

/// The silence store.
pub struct Silences {
    state: Mutex<HashMap<String, Stored>>,
    path: Option<PathBuf>,
    retention: Duration,
    clock: Clock,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Silences {
    /// Opens the store persisted at `path` (created on first change), or an
    /// in-memory store with `None`.
    pub fn open(
        path: Option<&Path>,
        retention: Duration,
        clock: Clock,
    ) -> Result<Silences, SilenceError> {
        let mut state = HashMap::new();
        if let Some(p) = path {
            match std::fs::read(p) {
                Ok(bytes) => {
                    let snap: Snapshot =
                        serde_json::from_slice(&bytes).map_err(|e| SilenceError::Corrupt {
                            path: p.display().to_string(),
                            message: e.to_string(),
                        })?;
                    for s in snap.silences {
                        let matchers =
                            compile(&s.matchers).map_err(|message| SilenceError::Corrupt {
                                path: p.display().to_string(),
                                message,
                            })?;
                        state.insert(
                            s.id.clone(),
                            Stored {
                                silence: s,
                                matchers,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SilenceError::Read {
                        path: p.display().to_string(),
                        source,
                    });
                }
            }
        }
        let s = Silences {
            state: Mutex::new(state),
            path: path.map(Path::to_path_buf),
            retention,
            clock,
            changed: tokio::sync::watch::Sender::new(0),
        };
        s.gc()?;
        Ok(s)
    }

    fn persist(&self, state: &HashMap<String, Stored>) -> Result<(), SilenceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut silences: Vec<Silence> = state.values().map(|s| s.silence.clone()).collect();
        silences.sort_by(|a, b| a.id.cmp(&b.id));
        let bytes = serde_json::to_vec(&Snapshot {
            version: 1,
            silences,
        })
        .unwrap_or_default();
        write_atomic(path, &bytes).map_err(|source| SilenceError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// A receiver whose value changes after every change (create, update,
    /// expire).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Creates or updates a silence, returning its (possibly new) id.
    pub fn set(&self, p: PostableSilence) -> Result<String, SilenceError> {
        let now = self.clock.now();
        let invalid = |m: String| SilenceError::Invalid(m);
        if p.matchers.is_empty() {
            return Err(invalid("at least one matcher required".into()));
        }
        let matchers = compile(&p.matchers).map_err(invalid)?;
        if matchers.iter().all(|m| m.matches_value("")) {
            return Err(invalid(
                "at least one matcher must not match the empty string".into(),
            ));
        }
        let starts_at = p.starts_at.unwrap_or(now);
        let ends_at = p
            .ends_at
            .ok_or_else(|| invalid("invalid zero end timestamp".into()))?;
        if ends_at <= starts_at {
            return Err(invalid("start time must be before end time".into()));
        }
        if ends_at < now {
            return Err(invalid("end time can't be in the past".into()));
        }

        let mut state = self.state.lock();
        let prev = match &p.id {
            Some(id) if !id.is_empty() => Some(
                state
                    .get(id)
                    .map(|s| s.silence.clone())
                    .ok_or_else(|| SilenceError::NotFound(id.clone()))?,
            ),
            _ => None,
        };
        let mut silence = Silence {
            id: String::new(),
            matchers: p.matchers,
            starts_at,
            ends_at,
            updated_at: now,
            created_by: p.created_by,
            comment: p.comment,
            annotations: p.annotations,
        };
        if let Some(prev) = &prev
            && can_update(prev, &silence, now)
        {
            silence.id = prev.id.clone();
        } else {
            if let Some(prev) = &prev
                && prev.state_at(now) != SilenceState::Expired
                && let Some(old) = state.get_mut(&prev.id)
            {
                expire_in_place(&mut old.silence, now);
            }
            silence.id = new_uuid();
            if silence.starts_at < now {
                silence.starts_at = now;
            }
        }
        let id = silence.id.clone();
        state.insert(id.clone(), Stored { silence, matchers });
        self.persist(&state)?;
        drop(state);
        self.changed.send_modify(|v| *v += 1);
        Ok(id)
    }

    /// Expires a silence now (`DELETE /api/v2/silence/{id}`).
    pub fn expire(&self, id: &str) -> Result<(), SilenceError> {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let s = state
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        if s.silence.state_at(now) == SilenceState::Expired {
            return Ok(());
        }
        expire_in_place(&mut s.silence, now);
        self.persist(&state)?;
        drop(state);
        self.changed.send_modify(|v| *v += 1);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.state.lock().get(id).map(|s| s.silence.clone())
    }

    /// All silences, unordered.
    pub fn list(&self) -> Vec<Silence> {
        self.state
            .lock()
            .values()
            .map(|s| s.silence.clone())
            .collect()
    }

    /// Ids of the silences active at `now` whose matchers all match.
    pub fn silenced_by(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        let state = self.state.lock();
        let mut ids: Vec<String> = state
            .values()
            .filter(|s| s.silence.state_at(now) == SilenceState::Active)
            .filter(|s| crate::matchers::matches_all(&s.matchers, labels))
            .map(|s| s.silence.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The next instant after `now` at which some silence starts or ends.
    pub fn next_transition(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.state
            .lock()
            .values()
            .flat_map(|s| [s.silence.starts_at, s.silence.ends_at])
            .filter(|t| *t > now)
            .min()
    }

    /// Counts by state at `now`.
    pub fn count_by_state(&self, now: DateTime<Utc>) -> [(SilenceState, usize); 3] {
        let mut c = [
            (SilenceState::Active, 0),
            (SilenceState::Pending, 0),
            (SilenceState::Expired, 0),
        ];
        for s in self.state.lock().values() {
            match s.silence.state_at(now) {
                SilenceState::Active => c[0].1 += 1,
                SilenceState::Pending => c[1].1 += 1,
                SilenceState::Expired => c[2].1 += 1,
            }
        }
        c
    }

    /// Drops silences that expired more than the retention ago; returns
    /// how many.
    pub fn gc(&self) -> Result<usize, SilenceError> {
        let cutoff = sub(self.clock.now(), self.retention);
        let mut state = self.state.lock();
        let before = state.len();
        state.retain(|_, s| s.silence.ends_at > cutoff);
        let removed = before - state.len();
        if removed > 0 {
            self.persist(&state)?;
        }
        Ok(removed)
    }
}

fn expire_in_place(s: &mut Silence, now: DateTime<Utc>) {
    match s.state_at(now) {
        SilenceState::Expired => return,
        SilenceState::Active => s.ends_at = now,
        SilenceState::Pending => {
            s.starts_at = now;
            s.ends_at = now;
        }
    }
    s.updated_at = now;
}

/// Alertmanager's `canUpdate`: same matchers, and for an active silence the
/// same start (to the second) and an end not in the past; for a pending one
/// a start not in the past; never for an expired one.
fn can_update(prev: &Silence, new: &Silence, now: DateTime<Utc>) -> bool {
    if prev.matchers != new.matchers {
        return false;
    }
    match prev.state_at(now) {
        SilenceState::Active => {
            prev.starts_at.timestamp() == new.starts_at.timestamp() && new.ends_at >= now
        }
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// A random (version 4) UUID string.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests;
