//! Crash test: a `silt` child under concurrent remote-write load is killed
//! with SIGKILL at random moments (also while it replays its WAL), started
//! again, and every acknowledged sample must read back exactly; nothing may
//! be read back that was never sent.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Silt, proto, series};
use rand::{Rng, SeedableRng};

const WRITERS: usize = 4;
const SERIES_PER_WRITER: usize = 8;
const SAMPLES_PER_SERIES_PER_REQUEST: usize = 4;
const CYCLES: usize = 6;
/// At most this many requests per writer per cycle (bounds the work).
const MAX_REQUESTS_PER_CYCLE: usize = 400;

/// What one writer sent: per series, timestamp → (value bits, acknowledged).
type Sent = HashMap<String, BTreeMap<i64, (u64, bool)>>;

struct Writer {
    id: usize,
    rng: rand::rngs::StdRng,
    /// Next timestamp offset; never reused, so a failed request's samples
    /// are never sent again with other values.
    seq: i64,
    sent: Sent,
}

impl Writer {
    fn series_key(&self, s: usize) -> String {
        format!("w{}-s{s}", self.id)
    }

    fn value(&mut self) -> f64 {
        match self.rng.random_range(0..20) {
            0 => f64::from_bits(common::STALE_NAN),
            1 => -0.0,
            2 => f64::INFINITY,
            3..10 => self.rng.random_range(0..1000) as f64,
            _ => loop {
                // Any finite bit pattern, to exercise the value codec.
                let v = f64::from_bits(self.rng.random());
                if v.is_finite() {
                    break v;
                }
            },
        }
    }

    fn request(&mut self, base_t: i64) -> (proto::WriteRequest, Vec<(String, i64, u64)>) {
        let mut req = proto::WriteRequest::default();
        let mut batch = Vec::new();
        let t_start = self.seq;
        self.seq += SAMPLES_PER_SERIES_PER_REQUEST as i64;
        for s in 0..SERIES_PER_WRITER {
            let key = self.series_key(s);
            let samples: Vec<(i64, f64)> =
                (0..SAMPLES_PER_SERIES_PER_REQUEST as i64).map(|i| (base_t + (t_start + i) * 10, self.value())).collect();
            for (t, v) in &samples {
                batch.push((key.clone(), *t, v.to_bits()));
            }
            let writer = self.id.to_string();
            let s = s.to_string();
            req.timeseries.push(series(&[("__name__", "crash_test"), ("writer", &writer), ("s", &s)], &samples));
        }
        (req, batch)
    }

    /// Sends until `stop` or the request budget is used; records what was
    /// sent and what was acknowledged.
    fn run(&mut self, client: &Client, base_t: i64, stop: &AtomicBool, acked: &AtomicUsize) {
        for _ in 0..MAX_REQUESTS_PER_CYCLE {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let (req, batch) = self.request(base_t);
            let ok = matches!(client.write_raw(&common::encode(&req)), Ok(r) if (200..300).contains(&r.status));
            for (key, t, bits) in batch {
                self.sent.entry(key).or_default().insert(t, (bits, ok));
            }
            if ok {
                acked.fetch_add(1, Ordering::Relaxed);
            } else {
                // Killed (connection refused/reset): wait for the next cycle.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Every acknowledged sample is stored exactly; every stored sample was sent
/// with exactly that value.
fn verify(client: &Client, writers: &[Arc<Mutex<Writer>>], base_t: i64, cycle: usize) -> usize {
    let exported = client.export("crash_test", base_t - 1000, common::now_ms());
    let mut stored: HashMap<String, Vec<(i64, u64)>> = HashMap::new();
    for e in exported {
        let key = format!("w{}-s{}", e.metric["writer"], e.metric["s"]);
        assert!(stored.insert(key.clone(), e.samples).is_none(), "series {key} exported twice");
    }
    let mut checked = 0;
    for w in writers {
        let w = w.lock().unwrap();
        for (key, sent) in &w.sent {
            let have: BTreeMap<i64, u64> = stored.get(key).map(|s| s.iter().copied().collect()).unwrap_or_default();
            assert_eq!(have.len(), stored.get(key).map_or(0, |s| s.len()), "cycle {cycle}: duplicate timestamps in {key}");
            for (t, (bits, acked)) in sent {
                match have.get(t) {
                    Some(h) => assert_eq!(h, bits, "cycle {cycle}: {key}@{t} has value {} but {} was sent", f64::from_bits(*h), f64::from_bits(*bits)),
                    None => assert!(!acked, "cycle {cycle}: acknowledged sample {key}@{t} is lost"),
                }
                checked += usize::from(*acked);
            }
            for t in have.keys() {
                assert!(sent.contains_key(t), "cycle {cycle}: {key}@{t} was never sent");
            }
        }
    }
    checked
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_sample() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let seed: u64 = std::env::var("SILT_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (set SILT_CRASH_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let base_t = common::now_ms() - 3_600_000;
    let writers: Vec<Arc<Mutex<Writer>>> = (0..WRITERS)
        .map(|id| Arc::new(Mutex::new(Writer { id, rng: rand::rngs::StdRng::seed_from_u64(seed ^ id as u64), seq: 0, sent: HashMap::new() })))
        .collect();
    let mut silt = Silt::start(&tmp.path().join("data"));
    let mut total_acked = 0;
    for cycle in 0..CYCLES {
        let client = silt.client();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = writers
            .iter()
            .map(|w| {
                let (w, client, stop, acked) = (w.clone(), client.clone(), stop.clone(), acked.clone());
                std::thread::spawn(move || w.lock().unwrap().run(&client, base_t, &stop, &acked))
            })
            .collect();
        // Kill at a random moment once some writes were acknowledged.
        let wait_for = Duration::from_millis(rng.random_range(100..1500));
        let t = Instant::now();
        while t.elapsed() < wait_for || (acked.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(10)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        silt.kill();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().expect("writer thread panicked");
        }
        let acked_now = acked.load(Ordering::Relaxed);
        assert!(acked_now > 0, "cycle {cycle}: no write was acknowledged");
        total_acked += acked_now;

        // Every other cycle, also crash during WAL replay.
        if cycle % 2 == 1 {
            let mut replaying = silt.respawn();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
            replaying.kill();
            silt = replaying;
        }
        silt = silt.respawn_ready();
        let checked = verify(&silt.client(), &writers, base_t, cycle);
        eprintln!("cycle {cycle}: {acked_now} requests acknowledged, {checked} acknowledged samples verified, {:?} elapsed", started.elapsed());
    }
    assert!(total_acked > 0);
    silt.stop();
    assert!(started.elapsed() < Duration::from_secs(120), "crash test too slow: {:?}", started.elapsed());
}
