//! Sends pre-encoded remote-write requests over N keep-alive connections, one thread each.
//!
//! Each shard's requests go in order on its own connection (so every series arrives in time
//! order, as from Prometheus). 429 and 5xx answers and transport errors are retried with
//! backoff like Prometheus does; other 4xx answers count as rejected samples. The clock runs
//! from the moment all threads are released until the last 2xx.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::encode::{Encoded, Request};

/// Outcome of one ingest phase.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct SendStats {
    pub wall_secs: f64,
    pub ok_requests: u64,
    pub ok_samples: u64,
    pub rejected_requests: u64,
    pub rejected_samples: u64,
    pub retries: u64,
    /// The first few rejection messages, for the log.
    pub errors: Vec<String>,
    /// True if the deadline passed before every request was sent.
    pub timed_out: bool,
}

impl SendStats {
    pub fn samples_per_sec(&self) -> f64 {
        self.ok_samples as f64 / self.wall_secs.max(1e-9)
    }
}

const MAX_ERRORS: usize = 5;
const MAX_ATTEMPTS: u32 = 40;

enum Outcome {
    Ok,
    Rejected(String),
    Retry(String),
}

fn post(agent: &ureq::Agent, url: &str, r: &Request) -> Outcome {
    let res = agent
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header("User-Agent", "silt-bench/0.1")
        .send(&r.body[..]);
    match res {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            match status {
                200..=299 => Outcome::Ok,
                429 | 500..=599 => Outcome::Retry(format!("{status}: {}", body.trim())),
                _ => Outcome::Rejected(format!("{status}: {}", truncate(body.trim(), 300))),
            }
        }
        Err(e) => Outcome::Retry(format!("transport: {e}")),
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Send every shard's requests to `url` concurrently; give up at `timeout`.
pub fn send_all(url: &str, enc: &Encoded, timeout: Duration) -> SendStats {
    let barrier = Barrier::new(enc.shards.len() + 1);
    let start_cell = std::sync::OnceLock::new();
    let results: Vec<(SendStats, Option<Instant>)> = thread::scope(|s| {
        let handles: Vec<_> = enc
            .shards
            .iter()
            .map(|reqs| {
                let barrier = &barrier;
                let start_cell = &start_cell;
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .max_idle_connections_per_host(1)
                        .timeout_global(Some(Duration::from_secs(300)))
                        .build()
                        .into();
                    barrier.wait();
                    let start: Instant = *start_cell.get().expect("start time set before release");
                    send_shard(&agent, url, reqs, start + timeout)
                })
            })
            .collect();
        start_cell.set(Instant::now()).expect("set once");
        barrier.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender thread panicked"))
            .collect()
    });
    let start = *start_cell.get().expect("set");
    let mut total = SendStats::default();
    let mut last = start;
    for (st, end) in results {
        total.ok_requests += st.ok_requests;
        total.ok_samples += st.ok_samples;
        total.rejected_requests += st.rejected_requests;
        total.rejected_samples += st.rejected_samples;
        total.retries += st.retries;
        total.timed_out |= st.timed_out;
        for e in st.errors {
            if total.errors.len() < MAX_ERRORS {
                total.errors.push(e);
            }
        }
        if let Some(end) = end {
            last = last.max(end);
        }
    }
    total.wall_secs = (last - start).as_secs_f64();
    total
}

fn send_shard(
    agent: &ureq::Agent,
    url: &str,
    reqs: &[Request],
    deadline: Instant,
) -> (SendStats, Option<Instant>) {
    let mut st = SendStats::default();
    let mut last_ok = None;
    'requests: for r in reqs {
        let mut backoff = Duration::from_millis(10);
        let mut attempt = 0;
        loop {
            if Instant::now() > deadline {
                st.timed_out = true;
                break 'requests;
            }
            match post(agent, url, r) {
                Outcome::Ok => {
                    st.ok_requests += 1;
                    st.ok_samples += r.samples as u64;
                    last_ok = Some(Instant::now());
                    break;
                }
                Outcome::Rejected(msg) => {
                    st.rejected_requests += 1;
                    st.rejected_samples += r.samples as u64;
                    if st.errors.len() < MAX_ERRORS {
                        st.errors.push(msg);
                    }
                    break;
                }
                Outcome::Retry(msg) => {
                    attempt += 1;
                    st.retries += 1;
                    if attempt >= MAX_ATTEMPTS {
                        st.rejected_requests += 1;
                        st.rejected_samples += r.samples as u64;
                        if st.errors.len() < MAX_ERRORS {
                            st.errors
                                .push(format!("gave up after {attempt} attempts: {msg}"));
                        }
                        break;
                    }
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
    (st, last_ok)
}
