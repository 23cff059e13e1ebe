//! Crash test: a `silt` child under concurrent remote-write load is killed
//! with SIGKILL at random moments (also while it replays its WAL, and after
//! cutting the head into a block under load), started again, and every
//! acknowledged sample must read back exactly; nothing may be read back that
//! was never sent. A second test does the same with SIGTERM and checks the
//! graceful shutdown.

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
/// At most this many requests per writer per cycle (a safety bound; the
/// kill comes much earlier).
const MAX_REQUESTS_PER_CYCLE: usize = 50_000;

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
            let samples: Vec<(i64, f64)> = (0..SAMPLES_PER_SERIES_PER_REQUEST as i64)
                .map(|i| (base_t + (t_start + i) * 10, self.value()))
                .collect();
            for (t, v) in &samples {
                batch.push((key.clone(), *t, v.to_bits()));
            }
            let writer = self.id.to_string();
            let s = s.to_string();
            req.timeseries.push(series(
                &[("__name__", "crash_test"), ("writer", &writer), ("s", &s)],
                &samples,
            ));
        }
        (req, batch)
    }

    /// Sends until `load.stop` or the request budget is used; records what
    /// was sent and what was acknowledged.
    fn run(&mut self, client: &Client, base_t: i64, load: &LoadState) {
        for _ in 0..MAX_REQUESTS_PER_CYCLE {
            if load.stop.load(Ordering::Relaxed) {
                return;
            }
            let (req, batch) = self.request(base_t);
            let status = client
                .write_raw(&common::encode(&req))
                .ok()
                .map(|r| (r.status, r.body));
            let ok = matches!(&status, Some((s, _)) if (200..300).contains(s));
            for (key, t, bits) in batch {
                self.sent.entry(key).or_default().insert(t, (bits, ok));
            }
            match status {
                Some(_) if ok => {
                    load.acked.fetch_add(1, Ordering::Relaxed);
                }
                // Shutting down (503) or gone (connection refused/reset):
                // the samples may or may not be stored; wait a little.
                Some((503, _)) | None => {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Some((status, body)) => load
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("{status} {body}")),
            }
        }
    }
}

/// Counters shared by the writer threads of one cycle.
#[derive(Default)]
struct LoadState {
    stop: AtomicBool,
    acked: AtomicUsize,
    failed: AtomicUsize,
    /// Answers other than 2xx and 503 (which would make a sender drop data).
    unexpected: Mutex<Vec<String>>,
}

/// Writer threads sending to one server until stopped.
struct Load {
    state: Arc<LoadState>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(writers: &[Arc<Mutex<Writer>>], client: &Client, base_t: i64) -> Load {
        let state = Arc::new(LoadState::default());
        let threads = writers
            .iter()
            .map(|w| {
                let (w, client, state) = (w.clone(), client.clone(), state.clone());
                std::thread::spawn(move || w.lock().unwrap().run(&client, base_t, &state))
            })
            .collect();
        Load { state, threads }
    }

    fn acked(&self) -> usize {
        self.state.acked.load(Ordering::Relaxed)
    }

    /// Waits `at_least`, and longer (up to 10 s) until a write was acknowledged.
    fn run_for(&self, at_least: Duration) {
        let t = Instant::now();
        while t.elapsed() < at_least || (self.acked() == 0 && t.elapsed() < Duration::from_secs(10))
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the writers; returns (acknowledged, failed) request counts and
    /// asserts that no request got an answer other than 2xx or 503.
    fn stop(self) -> (usize, usize) {
        self.state.stop.store(true, Ordering::Relaxed);
        let Load { state, threads } = self;
        for t in threads {
            t.join().expect("writer thread panicked");
        }
        let unexpected = state.unexpected.lock().unwrap();
        assert!(
            unexpected.is_empty(),
            "answers a sender would drop data on: {:?}",
            &unexpected[..unexpected.len().min(5)]
        );
        (
            state.acked.load(Ordering::Relaxed),
            state.failed.load(Ordering::Relaxed),
        )
    }
}

/// Every acknowledged sample is stored exactly; every stored sample was sent
/// with exactly that value.
fn verify(client: &Client, writers: &[Arc<Mutex<Writer>>], base_t: i64, cycle: usize) -> usize {
    let exported = client.export("crash_test", base_t - 1000, common::now_ms());
    let mut stored: HashMap<String, Vec<(i64, u64)>> = HashMap::new();
    for e in exported {
        let key = format!("w{}-s{}", e.metric["writer"], e.metric["s"]);
        assert!(
            stored.insert(key.clone(), e.samples).is_none(),
            "series {key} exported twice"
        );
    }
    let mut checked = 0;
    for w in writers {
        let w = w.lock().unwrap();
        for (key, sent) in &w.sent {
            let have: BTreeMap<i64, u64> = stored
                .get(key)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            assert_eq!(
                have.len(),
                stored.get(key).map_or(0, |s| s.len()),
                "cycle {cycle}: duplicate timestamps in {key}"
            );
            for (t, (bits, acked)) in sent {
                match have.get(t) {
                    Some(h) => assert_eq!(
                        h,
                        bits,
                        "cycle {cycle}: {key}@{t} has value {} but {} was sent",
                        f64::from_bits(*h),
                        f64::from_bits(*bits)
                    ),
                    None => assert!(
                        !acked,
                        "cycle {cycle}: acknowledged sample {key}@{t} is lost"
                    ),
                }
                checked += usize::from(*acked);
            }
            for t in have.keys() {
                assert!(
                    sent.contains_key(t),
                    "cycle {cycle}: {key}@{t} was never sent"
                );
            }
        }
    }
    checked
}

fn seeded_writers(name: &str) -> (u64, rand::rngs::StdRng, Vec<Arc<Mutex<Writer>>>) {
    let seed: u64 = std::env::var("SILT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("{name}: seed {seed} (set SILT_CRASH_SEED to repeat)");
    let writers = (0..WRITERS)
        .map(|id| {
            Arc::new(Mutex::new(Writer {
                id,
                rng: rand::rngs::StdRng::seed_from_u64(seed ^ id as u64),
                seq: 0,
                sent: HashMap::new(),
            }))
        })
        .collect();
    (seed, rand::rngs::StdRng::seed_from_u64(seed), writers)
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_sample() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut rng, writers) = seeded_writers("sigkill");
    let base_t = common::now_ms() - 3_600_000;
    let mut silt = Silt::start(&tmp.path().join("data"));
    for cycle in 0..CYCLES {
        let client = silt.client();
        let load = Load::start(&writers, &client, base_t);
        let wait_for = Duration::from_millis(rng.random_range(100..1500));
        // Every third cycle, cut the head into a block under load first, so
        // recovery also has to combine blocks with the WAL written after.
        if cycle % 3 == 2 {
            load.run_for(wait_for / 2);
            let r = client.post_empty("/api/v1/admin/tsdb/cut_head");
            assert_eq!(r.status, 200, "cut_head under load: {}", r.body);
        }
        // Kill at a random moment once some writes were acknowledged.
        load.run_for(wait_for);
        let acked_before_kill = load.acked();
        silt.kill();
        let (acked, failed) = load.stop();
        assert!(acked > 0, "cycle {cycle}: no write was acknowledged");

        // Every other cycle, also crash during WAL replay.
        if cycle % 2 == 1 {
            let mut replaying = silt.respawn();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..60)));
            replaying.kill();
            silt = replaying;
        }
        silt = silt.respawn_ready();
        let checked = verify(&silt.client(), &writers, base_t, cycle);
        eprintln!(
            "cycle {cycle}: {acked} requests acknowledged ({} after the kill signal), {failed} failed, \
             {checked} acknowledged samples verified so far, {:?} elapsed",
            acked - acked_before_kill,
            started.elapsed()
        );
    }
    silt.stop();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "crash test too slow: {:?}",
        started.elapsed()
    );
}

/// SIGTERM under load: in-flight writes finish, later ones get 503 (which
/// senders retry) or find the port closed, the process exits 0, and every
/// acknowledged sample is there after the restart.
#[test]
fn sigterm_under_load_finishes_writes_and_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut rng, writers) = seeded_writers("sigterm");
    let base_t = common::now_ms() - 3_600_000;
    let mut silt = Silt::start(&tmp.path().join("data"));
    for cycle in 0..3 {
        let load = Load::start(&writers, &silt.client(), base_t);
        load.run_for(Duration::from_millis(rng.random_range(100..800)));
        let status = silt.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "silt exited with {status} after SIGTERM; log:\n{}",
            silt.logs()
        );
        let (acked, failed) = load.stop();
        assert!(acked > 0);
        silt = silt.respawn_ready();
        let checked = verify(&silt.client(), &writers, base_t, cycle);
        eprintln!(
            "sigterm cycle {cycle}: {acked} acknowledged, {failed} refused or 503, {checked} samples verified"
        );
    }
    silt.stop();
}
