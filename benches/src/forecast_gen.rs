//! Generated series for the forecasting backtest: trend, daily and weekly
//! seasonality, AR(1) noise, spikes, level shifts and write-and-cleanup
//! cycles, each a pure function of (seed, series index). Also disks that
//! fill (or never do) for time to threshold, and series with injected
//! anomalies whose intervals are known.

use engine::Sample;

use crate::rng;

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;
pub const WEEK: i64 = 7 * DAY;
/// Series start at 2026-01-05T00:00:00Z (a Monday).
pub const START_MS: i64 = 1_767_571_200_000;

/// The families of the forecasting set, in equal shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Daily and weekly pattern (weekends lower), small trend, AR noise.
    Web,
    /// A growing disk with a small daily wiggle.
    DiskGrowth,
    /// A disk filled during the day and cleaned every night.
    CleanupDaily,
    /// A disk filled during the week and cleaned every Sunday.
    CleanupWeekly,
    /// Seasonal with level shifts and heavy spikes.
    Shifty,
    /// A random-walk level with a weak daily pattern.
    Wander,
}

pub const FAMILIES: [Family; 6] = [
    Family::Web,
    Family::DiskGrowth,
    Family::CleanupDaily,
    Family::CleanupWeekly,
    Family::Shifty,
    Family::Wander,
];

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Web => "web",
            Family::DiskGrowth => "disk-growth",
            Family::CleanupDaily => "cleanup-daily",
            Family::CleanupWeekly => "cleanup-weekly",
            Family::Shifty => "shifts+spikes",
            Family::Wander => "random-walk",
        }
    }
}

/// A uniform draw in `[lo, hi)` for parameter `salt` of series `id`.
fn param(seed: u64, id: u64, salt: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng::unit(seed, id, 0, salt)
}

/// Heavy-ish tailed noise: a normal draw, 2 % of the time scaled by 4.
fn noise(seed: u64, id: u64, i: u64, salt: u64) -> f64 {
    let z = rng::normal(seed, id, i, salt);
    if rng::unit(seed, id, i, salt ^ 0xabc) < 0.02 {
        4.0 * z
    } else {
        z
    }
}

/// A smooth daily shape with mean 0 and amplitude 1: a business-hours
/// bump (peak 14:00) plus a smaller evening bump.
pub fn daily_shape(t: i64, phase_h: f64) -> f64 {
    let h = (t.rem_euclid(DAY) as f64 / HOUR as f64 - phase_h).rem_euclid(24.0);
    let bump = |c: f64, w: f64| {
        let d = (h - c).abs().min(24.0 - (h - c).abs());
        (-(d * d) / (2.0 * w * w)).exp()
    };
    bump(14.0, 3.0) + 0.4 * bump(20.5, 1.5) - 0.33
}

/// Day of week, Monday = 0.
pub fn weekday(t: i64) -> i64 {
    (t - START_MS).div_euclid(DAY).rem_euclid(7)
}

/// One forecasting series of `len_ms` at `step_ms` samples.
pub fn series(family: Family, seed: u64, id: u64, len_ms: i64, step_ms: i64) -> Vec<Sample> {
    let n = (len_ms / step_ms) as usize;
    let p = |salt, lo, hi| param(seed, id, salt, lo, hi);
    let sd = p(1, 0.5, 2.0);
    let phi = p(2, 0.3, 0.85);
    let innov = sd * (1.0 - phi * phi).sqrt();
    let mut ar = 0.0;
    let mut walk = 0.0;
    let mut out = Vec::with_capacity(n);
    // Level shifts: up to three in the series, each 4-10 sigmas.
    let shifts: Vec<(i64, f64)> = (0..3)
        .map(|k| {
            let at = (p(10 + k, 0.1, 1.0) * len_ms as f64) as i64;
            let sign = if p(20 + k, 0.0, 1.0) < 0.5 { -1.0 } else { 1.0 };
            (at, sign * p(30 + k, 4.0, 10.0) * sd)
        })
        .collect();
    let cleanup_h = p(40, 0.0, 6.0);
    let phase_h = p(41, -2.0, 2.0);
    for i in 0..n {
        let t = START_MS + i as i64 * step_ms;
        let rel = (t - START_MS) as f64;
        let days = rel / DAY as f64;
        ar = phi * ar + innov * noise(seed, id, i as u64, 3);
        let v = match family {
            Family::Web => {
                let amp = p(4, 4.0, 12.0) * sd;
                let wd = weekday(t);
                let weekend = if wd >= 5 { p(5, 0.3, 0.7) } else { 1.0 };
                let base = 100.0 + p(6, -0.5, 0.5) * sd * days;
                base + amp * weekend * daily_shape(t, phase_h) - (1.0 - weekend) * amp * 0.5 + ar
            }
            Family::DiskGrowth => {
                let growth = p(7, 0.5, 4.0);
                40.0 + growth * days + 0.5 * growth * daily_shape(t, phase_h) + 0.2 * ar
            }
            Family::CleanupDaily => {
                let since = (rel - cleanup_h * HOUR as f64).rem_euclid(DAY as f64) / DAY as f64;
                let fill = p(8, 20.0, 50.0);
                30.0 + fill * since + 0.2 * ar
            }
            Family::CleanupWeekly => {
                // Cleaned on Sunday at cleanup_h.
                let since = (rel - 6.0 * DAY as f64 - cleanup_h * HOUR as f64)
                    .rem_euclid(WEEK as f64)
                    / WEEK as f64;
                let fill = p(9, 20.0, 50.0);
                30.0 + fill * since + 0.5 * daily_shape(t, phase_h) + 0.2 * ar
            }
            Family::Shifty => {
                let amp = p(4, 3.0, 8.0) * sd;
                let shift: f64 = shifts
                    .iter()
                    .filter(|(at, _)| (t - START_MS) >= *at)
                    .map(|(_, d)| d)
                    .sum();
                let spike = if rng::unit(seed, id, i as u64, 50) < 0.003 {
                    p(51, 5.0, 15.0)
                        * sd
                        * if rng::unit(seed, id, i as u64, 52) < 0.5 {
                            -1.0
                        } else {
                            1.0
                        }
                } else {
                    0.0
                };
                200.0 + amp * daily_shape(t, phase_h) + shift + spike + ar
            }
            Family::Wander => {
                walk += 0.05 * sd * rng::normal(seed, id, i as u64, 60);
                50.0 + p(4, 0.5, 2.0) * sd * daily_shape(t, phase_h) + walk + ar
            }
        };
        out.push(Sample { t, v });
    }
    out
}

/// A disk for the time-to-threshold test: used space in percent, full at
/// 100. `Some(lead)`: designed to reach 100 about `lead` ms after
/// `cutoff` (linear growth with a daily wiggle, some with a nightly
/// partial cleanup); `None`: never fills (daily or weekly cleanup cycles
/// peaking below 100, flat, or growth that needs weeks).
pub struct Disk {
    pub samples: Vec<Sample>,
    pub designed_lead_ms: Option<i64>,
}

pub fn disk(seed: u64, id: u64, filling: bool, cutoff: i64, len_ms: i64, step_ms: i64) -> Disk {
    let p = |salt, lo, hi| param(seed, id ^ 0x5eed, salt, lo, hi);
    let n = (len_ms / step_ms) as usize;
    let sd = p(1, 0.05, 0.4);
    let phi = p(2, 0.3, 0.8);
    let innov = sd * (1.0 - phi * phi).sqrt();
    let kind = (p(3, 0.0, 1.0) * 4.0) as u32;
    let phase_h = p(4, -2.0, 2.0);
    let cleanup_h = p(5, 0.0, 6.0);
    let lead = (p(6, 6.0, 72.0) * HOUR as f64) as i64;
    let growth = p(7, 2.0, 15.0); // percent per day
    let mut ar = 0.0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = START_MS + i as i64 * step_ms;
        let rel_cut = (t - cutoff) as f64 / DAY as f64;
        ar = phi * ar + innov * noise(seed, id ^ 0x5eed, i as u64, 8);
        let v = if filling {
            match kind {
                // Nightly partial cleanup: net growth per day, sawtooth within it.
                0 | 1 => {
                    let since = ((t - START_MS) as f64 - cleanup_h * HOUR as f64)
                        .rem_euclid(DAY as f64)
                        / DAY as f64;
                    let saw = 0.6 * growth * (since - 0.5);
                    100.0 + growth * (rel_cut - lead as f64 / DAY as f64) + saw + ar
                }
                _ => {
                    100.0
                        + growth * (rel_cut - lead as f64 / DAY as f64)
                        + 0.3 * growth * daily_shape(t, phase_h)
                        + ar
                }
            }
        } else {
            match kind {
                0 => {
                    let since = ((t - START_MS) as f64 - cleanup_h * HOUR as f64)
                        .rem_euclid(DAY as f64)
                        / DAY as f64;
                    let top = p(9, 70.0, 95.0);
                    let fill = p(10, 20.0, 50.0);
                    top - fill + fill * since + ar
                }
                1 => {
                    let since =
                        ((t - START_MS) as f64 - 6.0 * DAY as f64 - cleanup_h * HOUR as f64)
                            .rem_euclid(WEEK as f64)
                            / WEEK as f64;
                    let top = p(9, 70.0, 95.0);
                    let fill = p(10, 20.0, 50.0);
                    top - fill + fill * since + ar
                }
                2 => p(11, 50.0, 90.0) + 2.0 * daily_shape(t, phase_h) + ar,
                _ => {
                    // Slow growth: full in 10-40 days after the cutoff.
                    let days_left = p(12, 10.0, 40.0);
                    let g = p(13, 0.3, 2.0);
                    100.0 - g * days_left + g * rel_cut + ar
                }
            }
        };
        out.push(Sample { t, v });
    }
    Disk {
        samples: out,
        designed_lead_ms: filling.then_some(lead),
    }
}

/// The kinds of injected anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    Spike,
    Dip,
    LevelShift,
    SeasonalBreak,
}

/// An injected anomaly: the interval where it should be detected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Injected {
    pub kind: AnomalyKind,
    pub start: i64,
    pub end: i64,
}

/// A seasonal series with 0-3 anomalies injected in `[from, to)`.
pub fn anomalous(
    seed: u64,
    id: u64,
    len_ms: i64,
    step_ms: i64,
    from: i64,
    to: i64,
) -> (Vec<Sample>, Vec<Injected>) {
    let sid = id ^ 0xa11;
    let p = |salt, lo, hi| param(seed, sid, salt, lo, hi);
    let n = (len_ms / step_ms) as usize;
    let sd = p(1, 0.5, 2.0);
    let phi = p(2, 0.2, 0.6);
    let innov = sd * (1.0 - phi * phi).sqrt();
    let amp = p(3, 6.0, 15.0) * sd;
    let weekend = p(4, 0.4, 1.0);
    let phase_h = p(5, -2.0, 2.0);
    let count = (p(6, 0.0, 4.0)) as usize;
    let mut injected = Vec::new();
    let slots = ((to - from) / DAY).max(1);
    for k in 0..count {
        let kind = [
            AnomalyKind::Spike,
            AnomalyKind::Dip,
            AnomalyKind::LevelShift,
            AnomalyKind::SeasonalBreak,
        ][(p(10 + k as u64, 0.0, 4.0)) as usize % 4];
        // One anomaly per 2-day slot at most, between 06:00 and 18:00.
        let day = (k as i64 * 2) % slots;
        let start_raw = from + day * DAY + (p(20 + k as u64, 6.0, 18.0) * HOUR as f64) as i64;
        let start = start_raw - start_raw.rem_euclid(step_ms);
        let dur = match kind {
            AnomalyKind::Spike => step_ms,
            AnomalyKind::Dip => 30 * MIN,
            AnomalyKind::LevelShift => 6 * HOUR,
            AnomalyKind::SeasonalBreak => 6 * HOUR,
        };
        if start + dur < to {
            injected.push(Injected {
                kind,
                start,
                end: start + dur,
            });
        }
    }
    let mut ar = 0.0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = START_MS + i as i64 * step_ms;
        // Plain AR(1) noise: the injected anomalies are the only ones.
        ar = phi * ar + innov * rng::normal(seed, sid, i as u64, 7);
        let wf = if weekday(t) >= 5 { weekend } else { 1.0 };
        let mut season = amp * wf * daily_shape(t, phase_h);
        let mut extra = 0.0;
        for a in &injected {
            match a.kind {
                AnomalyKind::Spike if t == a.start => extra += p(30, 8.0, 15.0) * sd,
                AnomalyKind::Dip if t >= a.start && t < a.end => extra -= p(31, 6.0, 10.0) * sd,
                AnomalyKind::LevelShift if t >= a.start => extra += p(32, 6.0, 10.0) * sd,
                AnomalyKind::SeasonalBreak if t >= a.start && t < a.end => {
                    // The daily pattern inverts for six hours.
                    season = -season;
                }
                _ => {}
            }
        }
        out.push(Sample {
            t,
            v: 100.0 + season + extra + ar,
        });
    }
    (out, injected)
}
