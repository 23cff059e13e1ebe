//! Wall-clock time for the dispatcher, silences and the notification log,
//! tied to tokio's clock in tests so that paused time drives everything.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Where "now" comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock (`Utc::now()`).
    System,
    /// `wall` at tokio's `base`, advancing with tokio's clock (which tests
    /// pause and advance).
    Tokio { wall: DateTime<Utc>, base: Instant },
}

impl Clock {
    /// A clock that reads `start` now and then follows tokio's time.
    pub fn tokio_at(start: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            wall: start,
            base: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { wall, base } => {
                let elapsed = Instant::now().saturating_duration_since(*base);
                *wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
            }
        }
    }

    /// The tokio instant at which this clock reads `t` (now if past).
    pub fn instant_at(&self, t: DateTime<Utc>) -> Instant {
        let wait = (t - self.now()).to_std().unwrap_or(Duration::ZERO);
        Instant::now() + wait.min(Duration::from_secs(100 * 365 * 86400))
    }
}

/// `t + d`, saturating.
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
pub fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Directory fsync makes the rename durable; not all platforms allow it.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let c = Clock::tokio_at(start);
        assert_eq!(c.now(), start);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now(), start + chrono::Duration::seconds(90));
        let at = c.instant_at(start + chrono::Duration::seconds(100));
        assert_eq!(at - Instant::now(), Duration::from_secs(10));
    }
}
