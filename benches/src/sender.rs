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
    let shards: Vec<&[Request]> = enc.shards.iter().map(Vec::as_slice).collect();
    send_slices(url, &shards, timeout)
}

/// Send the shards of every source concurrently, but in time windows of `window_ms`: every
/// request whose latest sample is before the window's end is acknowledged before any of the
/// next window goes out. So no series lags the newest sample by much more than a window plus
/// one request's span, as a TSDB without an out-of-order window (Prometheus: one hour behind
/// the newest sample) requires when several shards and data sets are loaded at once.
pub fn send_in_time_order(
    url: &str,
    sources: &[&Encoded],
    window_ms: i64,
    timeout: Duration,
) -> SendStats {
    send_split(url, sources, window_ms, i64::MAX, timeout, || Ok(()))
        .expect("nothing runs between the parts")
}

/// [`send_in_time_order`] in two parts: first every request whose latest sample is before
/// `split_ms`, then `between` (which must succeed), then the rest.
pub fn send_split(
    url: &str,
    sources: &[&Encoded],
    window_ms: i64,
    split_ms: i64,
    timeout: Duration,
    between: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<SendStats> {
    let t0 = Instant::now();
    let shards: Vec<&[Request]> = sources
        .iter()
        .flat_map(|e| e.shards.iter().map(Vec::as_slice))
        .collect();
    let (before, after): (Vec<&[Request]>, Vec<&[Request]>) = shards
        .iter()
        .map(|s| s.split_at(s.partition_point(|r| r.t_max < split_ms)))
        .unzip();
    let mut total = send_windows(url, &before, window_ms, t0 + timeout);
    if !total.timed_out && after.iter().any(|s| !s.is_empty()) {
        between()?;
        let rest = send_windows(url, &after, window_ms, t0 + timeout);
        merge(&mut total, rest);
    }
    total.wall_secs = t0.elapsed().as_secs_f64();
    Ok(total)
}

/// Sends `shards` window by window (see [`send_in_time_order`]) until `deadline`.
fn send_windows(url: &str, shards: &[&[Request]], window_ms: i64, deadline: Instant) -> SendStats {
    let window_ms = window_ms.max(1);
    let mut pos = vec![0usize; shards.len()];
    let mut total = SendStats::default();
    // Each window starts at the oldest request not yet sent.
    while let Some(next) = shards
        .iter()
        .zip(&pos)
        .filter_map(|(s, &p)| s.get(p).map(|r| r.t_max))
        .min()
    {
        let bound = next.saturating_add(window_ms);
        let slices: Vec<&[Request]> = shards
            .iter()
            .zip(pos.iter_mut())
            .filter_map(|(s, p)| {
                let n = s[*p..].iter().take_while(|r| r.t_max < bound).count();
                let slice = &s[*p..*p + n];
                *p += n;
                (n > 0).then_some(slice)
            })
            .collect();
        let st = send_slices(
            url,
            &slices,
            deadline.saturating_duration_since(Instant::now()),
        );
        let timed_out = st.timed_out;
        merge(&mut total, st);
        if timed_out {
            break;
        }
    }
    total
}

fn merge(total: &mut SendStats, st: SendStats) {
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
}

/// Send each slice on its own connection and thread; the clock runs from the release of all
/// threads until the last 2xx.
fn send_slices(url: &str, shards: &[&[Request]], timeout: Duration) -> SendStats {
    let barrier = Barrier::new(shards.len() + 1);
    let start_cell = std::sync::OnceLock::new();
    let results: Vec<(SendStats, Option<Instant>)> = thread::scope(|s| {
        let handles: Vec<_> = shards
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
        merge(&mut total, st);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoded;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A minimal keep-alive HTTP server that records each request body in arrival order
    /// (before answering it) and answers 204.
    fn recording_server() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/write", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { return };
                let rec = rec.clone();
                thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut len = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let t = line.trim_end();
                            if t.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = t.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        rec.lock().unwrap().push(body);
                        conn.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                            .unwrap();
                    }
                });
            }
        });
        (url, seen)
    }

    /// Requests whose body is their t_max, so the server can tell them apart.
    fn source(shards: &[&[i64]]) -> Encoded {
        let shards: Vec<Vec<Request>> = shards
            .iter()
            .map(|ts| {
                ts.iter()
                    .map(|&t| Request {
                        body: t.to_le_bytes().to_vec().into_boxed_slice(),
                        samples: 2,
                        t_max: t,
                    })
                    .collect()
            })
            .collect();
        let samples = shards.iter().map(|s| s.len() as u64 * 2).sum();
        Encoded {
            shards,
            samples,
            raw_bytes: 0,
            wire_bytes: 0,
        }
    }

    #[test]
    fn time_ordered_sending_keeps_every_shard_within_the_window() {
        let (url, seen) = recording_server();
        // A fast shard, a slow one and a second source (like the SLO set) starting earlier.
        let fast: Vec<i64> = (0..60).map(|i| 1_000 + i * 10).collect();
        let slow: Vec<i64> = (0..6).map(|i| 1_000 + i * 100).collect();
        let early: Vec<i64> = (0..20).map(|i| i * 80).collect();
        let a = source(&[&fast, &slow]);
        let b = source(&[&early]);
        let st = send_in_time_order(&url, &[&a, &b], 50, Duration::from_secs(30));
        assert!(!st.timed_out);
        assert_eq!(st.ok_requests, 86);
        assert_eq!(st.ok_samples, 172);
        let order: Vec<i64> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|b| i64::from_le_bytes(b[..8].try_into().unwrap()))
            .collect();
        assert_eq!(order.len(), 86);
        // Nothing arrives more than one window behind anything sent before it.
        for (i, &x) in order.iter().enumerate() {
            for &y in &order[i + 1..] {
                assert!(y > x - 50, "{y} arrived after {x}: {order:?}");
            }
        }
    }
}
