//! The long data set for SLO queries: a few hundred blackbox-probe `up` series over a month
//! or more at a 60 s interval, mostly 1 with rare outages of a few minutes.
//!
//! Like [`crate::workload`], every value and timestamp is a hash of (seed, series, scrape),
//! so the data is a pure function of [`SloSpec`]. It is encoded on one shard in strict time
//! order (every request holds whole scrapes), so it can be loaded next to the dashboard data
//! without out-of-order samples.

use crate::encode::{self, Compressor, Encoded};
use crate::rng;

/// The `job` label of every SLO series (the dashboard workload's `up` has `job="node"`).
pub const JOB: &str = "blackbox";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SloSpec {
    pub series: usize,
    /// Covered time range, ms (rounded down to whole intervals).
    pub duration_ms: i64,
    pub interval_ms: i64,
    /// Every timestamp is below this (ms since the epoch).
    pub end_ms: i64,
    pub seed: u64,
}

/// The generated SLO series.
#[derive(Debug)]
pub struct SloWorkload {
    pub spec: SloSpec,
    /// Nominal time of scrape 0.
    pub start_ms: i64,
    pub scrapes: u64,
    /// Per-series phase within the interval, ms.
    phases: Vec<i64>,
    /// Encoded `TimeSeries.labels` per series.
    labels_pb: Vec<Vec<u8>>,
}

/// Probability per series and 5-minute slot of an outage (value 0 for the slot).
const OUTAGE_P: f64 = 0.002;
const SLOT_MS: i64 = 300_000;

impl SloWorkload {
    pub fn new(spec: SloSpec) -> SloWorkload {
        let interval = spec.interval_ms.max(1);
        let scrapes = (spec.duration_ms / interval).max(1) as u64;
        let start_ms = spec.end_ms - scrapes as i64 * interval - 1;
        let regions = ["us-east-1", "eu-west-1", "ap-southeast-1"];
        let mut phases = Vec::with_capacity(spec.series);
        let mut labels_pb = Vec::with_capacity(spec.series);
        for i in 0..spec.series {
            let s = 0x5000_0000_0000 + i as u64;
            phases.push((rng::hash(spec.seed, s, 0, 1) % interval as u64) as i64);
            let instance = format!("https://svc-{i:04}.example.com/healthz");
            let region = regions[rng::pick(spec.seed, s, 2, regions.len())];
            let mut pb = Vec::new();
            for (n, v) in [
                ("__name__", "up"),
                ("env", "prod"),
                ("instance", instance.as_str()),
                ("job", JOB),
                ("module", "http_2xx"),
                ("region", region),
            ] {
                encode::put_label(&mut pb, n, v);
            }
            labels_pb.push(pb);
        }
        SloWorkload {
            spec,
            start_ms,
            scrapes,
            phases,
            labels_pb,
        }
    }

    /// Timestamp of scrape `k` of series `i` (strictly below `end_ms`).
    pub fn timestamp(&self, i: usize, k: u64) -> i64 {
        self.start_ms + k as i64 * self.spec.interval_ms.max(1) + self.phases[i]
    }

    /// Value of scrape `k` of series `i`: 0 during an outage slot, else 1.
    pub fn value(&self, i: usize, k: u64) -> f64 {
        let slot = self.timestamp(i, k).div_euclid(SLOT_MS) as u64;
        let down = rng::unit(self.spec.seed, 0x5000_0000_0000 + i as u64, slot, 3) < OUTAGE_P;
        if down { 0.0 } else { 1.0 }
    }

    pub fn total_samples(&self) -> u64 {
        self.spec.series as u64 * self.scrapes
    }

    /// Labels of series `i`, sorted by name.
    pub fn labels(&self, i: usize) -> Vec<(String, String)> {
        crate::workload::decode_labels(&self.labels_pb[i])
    }

    /// Samples of series `i` with a timestamp in `(lo_ms, hi_ms]`.
    pub fn series_samples_between(&self, i: usize, lo_ms: i64, hi_ms: i64) -> u64 {
        let interval = self.spec.interval_ms.max(1);
        // Scrapes k with start + k*interval + phase <= t.
        let count_le = |t: i64| -> u64 {
            let d = t.saturating_sub(self.start_ms + self.phases[i]);
            if d < 0 {
                0
            } else {
                ((d / interval) as u64).saturating_add(1).min(self.scrapes)
            }
        };
        count_le(hi_ms).saturating_sub(count_le(lo_ms))
    }

    /// Samples of all series with a timestamp in `(lo_ms, hi_ms]`.
    pub fn samples_between(&self, lo_ms: i64, hi_ms: i64) -> u64 {
        (0..self.spec.series)
            .map(|i| self.series_samples_between(i, lo_ms, hi_ms))
            .sum()
    }

    /// One shard, in time order: whole scrapes per request (at least one), at most about
    /// `max_samples` samples and `max_span_ms` of time per request (a request spanning hours
    /// would put its first samples far behind what other shards have sent meanwhile).
    pub fn encode(&self, max_samples: usize, max_span_ms: i64) -> Encoded {
        let n = self.spec.series;
        let by_span = (max_span_ms / self.spec.interval_ms.max(1)).max(1) as usize;
        let per_req = (max_samples / n.max(1)).clamp(1, by_span);
        let mut comp = Compressor::default();
        let mut reqs = Vec::new();
        let mut raw = Vec::new();
        let (mut raw_total, mut samples) = (0u64, 0u64);
        // Series sorted by phase, so timestamps within a request ascend.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.phases[i]);
        let mut k = 0;
        while k < self.scrapes {
            let k_end = (k + per_req as u64).min(self.scrapes);
            let mut t_max = i64::MIN;
            for kk in k..k_end {
                for &i in &order {
                    let t = self.timestamp(i, kk);
                    encode::put_timeseries(&mut raw, &self.labels_pb[i], t, self.value(i, kk));
                    t_max = t_max.max(t);
                }
            }
            let count = ((k_end - k) as usize * n) as u32;
            if count > 0 {
                reqs.push(comp.request(&raw, count, t_max));
            }
            raw_total += raw.len() as u64;
            samples += count as u64;
            raw.clear();
            k = k_end;
        }
        let wire_bytes = reqs.iter().map(|r| r.body.len() as u64).sum();
        Encoded {
            shards: vec![reqs],
            samples,
            raw_bytes: raw_total,
            wire_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slo() -> SloWorkload {
        SloWorkload::new(SloSpec {
            series: 20,
            duration_ms: 3 * 86_400_000,
            interval_ms: 60_000,
            end_ms: 1_700_000_000_000,
            seed: 5,
        })
    }

    #[test]
    fn shape_timestamps_and_outages() {
        let w = slo();
        assert_eq!(w.scrapes, 3 * 1440);
        for i in 0..20 {
            let last = w.timestamp(i, w.scrapes - 1);
            assert!(last < w.spec.end_ms && last >= w.spec.end_ms - 60_001);
        }
        let zeros = (0..20)
            .flat_map(|i| (0..w.scrapes).map(move |k| (i, k)))
            .filter(|&(i, k)| w.value(i, k) == 0.0)
            .count();
        // About 0.2 % of the time down: some outages, but rare.
        assert!(zeros > 0 && zeros < 1_000, "{zeros} zeros");
    }

    #[test]
    fn samples_between_matches_a_naive_count() {
        let w = slo();
        let all: Vec<i64> = (0..20)
            .flat_map(|i| (0..w.scrapes).map(move |k| (i, k)))
            .map(|(i, k)| w.timestamp(i, k))
            .collect();
        for (lo, hi) in [
            (i64::MIN / 2, i64::MAX / 2),
            (w.spec.end_ms - 86_400_000, w.spec.end_ms - 7_000),
            (w.start_ms + 12_345, w.start_ms + 99_999),
        ] {
            let naive = all.iter().filter(|&&t| t > lo && t <= hi).count() as u64;
            assert_eq!(w.samples_between(lo, hi), naive);
        }
        assert_eq!(
            w.samples_between(i64::MIN / 2, i64::MAX / 2),
            w.total_samples()
        );
    }

    #[test]
    fn encoding_is_in_time_order_and_complete() {
        let w = slo();
        let enc = w.encode(100, 3_600_000);
        assert_eq!(enc.shards.len(), 1);
        assert_eq!(enc.samples, w.total_samples());
        let reqs = &enc.shards[0];
        assert!(reqs.windows(2).all(|p| p[0].t_max < p[1].t_max));
        // 100 samples / 20 series = 5 whole scrapes per request.
        assert!(reqs.iter().all(|r| r.samples <= 100));
        assert_eq!(reqs.len() as u64, w.scrapes.div_ceil(5));
        // A request spans at most 3 minutes here: 3 scrapes.
        let enc = w.encode(100, 180_000);
        assert_eq!(enc.shards[0].len() as u64, w.scrapes.div_ceil(3));
        assert_eq!(enc.samples, w.total_samples());
    }
}
