//! End-to-end test harness: starts the real `silt` binary on 127.0.0.1 with
//! a temporary data directory and talks to it over HTTP only, as a client
//! would. Remote-write requests are encoded with this file's own protobuf
//! definitions (written from the spec, independent of the `ingest` crate),
//! so the tests also check the receiver's wire format.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::Value;

/// Remote write 1.0 messages (`prometheus.WriteRequest`), field numbers as
/// in remote-write.md §2.1. Label strings are `bytes` so tests can send
/// invalid UTF-8; on the wire both are length-delimited.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// `optional` so that -0.0 is written: prost (like gogo-protobuf in
        /// Prometheus) skips a plain proto3 double that compares equal to
        /// 0.0, which would turn -0.0 into +0.0 on the wire.
        #[prost(double, optional, tag = "1")]
        pub value: Option<f64>,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram,
        /// 5 summary, 6 info, 7 stateset.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

/// A series built from `(name, value)` pairs and `(timestamp_ms, value)`
/// samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| proto::Label {
                name: n.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample {
                value: Some(value),
                timestamp,
            })
            .collect(),
    }
}

/// Protobuf-encodes and snappy-compresses (block format) a request.
pub fn encode(req: &proto::WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(req))
        .expect("snappy compression cannot fail")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The stale marker bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// An HTTP response: status, selected headers and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, ureq::Error> {
    let mut r = r?;
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = r.body_mut().with_config().limit(1 << 30).read_to_string()?;
    Ok(Reply {
        status,
        body,
        headers,
    })
}

/// A plain HTTP client bound to one server.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub base: String,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            agent: agent(),
            base: base.into(),
        }
    }

    /// A client with its own connection pool. Use it for a request the
    /// server answers without reading the body (413, 415): the server then
    /// closes that connection, and a pooled client could pick it up again.
    pub fn fresh(&self) -> Client {
        Client::new(self.base.clone())
    }

    /// GET; a transport error is retried once (a pooled connection the
    /// server had closed), as real HTTP clients do for idempotent requests.
    pub fn get(&self, path_and_query: &str) -> Reply {
        self.try_get(path_and_query)
            .or_else(|_| self.try_get(path_and_query))
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"))
    }

    pub fn try_get(&self, path_and_query: &str) -> Result<Reply, ureq::Error> {
        reply(
            self.agent
                .get(format!("{}{path_and_query}", self.base))
                .call(),
        )
    }

    /// GET with query parameters (encoded here).
    pub fn get_query(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        let call = || {
            let mut req = self.agent.get(format!("{}{path}", self.base));
            for (k, v) in params {
                req = req.query(*k, *v);
            }
            reply(req.call())
        };
        call()
            .or_else(|_| call())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POST with an empty body.
    pub fn post_empty(&self, path: &str) -> Reply {
        reply(self.agent.post(format!("{}{path}", self.base)).send_empty())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// POST a raw body with the given headers.
    pub fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send(body))
    }

    /// POST an already encoded remote-write 1.0 body with the standard headers.
    pub fn write_raw(&self, body: &[u8]) -> Result<Reply, ureq::Error> {
        self.post_raw(
            "/api/v1/write",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            body,
        )
    }

    /// Remote-writes `req`; panics on a transport error.
    pub fn write(&self, req: &proto::WriteRequest) -> Reply {
        self.write_raw(&encode(req))
            .unwrap_or_else(|e| panic!("remote write: {e}"))
    }

    /// Remote-writes and asserts success (2xx).
    pub fn write_ok(&self, req: &proto::WriteRequest) {
        let r = self.write(req);
        assert!(
            (200..300).contains(&r.status),
            "write failed: {} {}",
            r.status,
            r.body
        );
    }

    /// `/api/v1/export` for one selector over `[start, end]` (ms).
    pub fn export(&self, selector: &str, start_ms: i64, end_ms: i64) -> Vec<Exported> {
        let r = self.get_query(
            "/api/v1/export",
            &[
                ("match[]", selector),
                ("start", &ms_param(start_ms)),
                ("end", &ms_param(end_ms)),
            ],
        );
        assert_eq!(r.status, 200, "export {selector}: {}", r.body);
        r.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(Exported::parse)
            .collect()
    }

    /// `/api/v1/series` label sets, sorted.
    pub fn series(
        &self,
        selector: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<BTreeMap<String, String>> {
        let r = self.get_query(
            "/api/v1/series",
            &[
                ("match[]", selector),
                ("start", &ms_param(start_ms)),
                ("end", &ms_param(end_ms)),
            ],
        );
        let data = success_data(&r);
        let mut out: Vec<BTreeMap<String, String>> =
            serde_json::from_value(data).expect("series data is a list of label maps");
        out.sort();
        out
    }

    /// `/api/v1/labels` (optionally restricted by one selector).
    pub fn labels(&self, selector: Option<&str>) -> Vec<String> {
        let params: Vec<(&str, &str)> = selector.map(|s| ("match[]", s)).into_iter().collect();
        serde_json::from_value(success_data(&self.get_query("/api/v1/labels", &params)))
            .expect("labels is a list of strings")
    }

    /// `/api/v1/label/<name>/values` (optionally restricted by one selector).
    pub fn label_values(&self, name: &str, selector: Option<&str>) -> Vec<String> {
        let params: Vec<(&str, &str)> = selector.map(|s| ("match[]", s)).into_iter().collect();
        let r = self.get_query(&format!("/api/v1/label/{name}/values"), &params);
        serde_json::from_value(success_data(&r)).expect("label values is a list of strings")
    }
}

/// A Prometheus API success envelope's `data`; panics otherwise.
pub fn success_data(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "success", "{}", r.body);
    v["data"].clone()
}

/// Milliseconds as the API's seconds parameter (exact, three decimals).
pub fn ms_param(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// One line of `/api/v1/export` (values as exact bits: NaNs take their
/// bits from Silt's `nan_bits` extension).
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub metric: BTreeMap<String, String>,
    pub samples: Vec<(i64, u64)>,
}

impl Exported {
    fn parse(line: &str) -> Exported {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad export line ({e}): {line}"));
        let metric = serde_json::from_value(v["metric"].clone()).expect("metric is a label map");
        let ts = v["timestamps"].as_array().expect("timestamps");
        let vals = v["values"].as_array().expect("values");
        assert_eq!(ts.len(), vals.len(), "{line}");
        let mut samples: Vec<(i64, u64)> = ts
            .iter()
            .zip(vals)
            .map(|(t, v)| (t.as_i64().expect("integer timestamp"), json_value_bits(v)))
            .collect();
        // Silt's extension: the exact bits of every NaN, as [index, "0x…"].
        if let Some(nans) = v.get("nan_bits").and_then(Value::as_array) {
            for pair in nans {
                let i = pair[0].as_u64().expect("nan_bits index") as usize;
                let hex = pair[1].as_str().expect("nan_bits value");
                let bits =
                    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("nan_bits hex");
                assert!(
                    f64::from_bits(samples[i].1).is_nan() && f64::from_bits(bits).is_nan(),
                    "nan_bits for a non-NaN: {line}"
                );
                samples[i].1 = bits;
            }
        }
        Exported { metric, samples }
    }
}

/// A value from JSON as f64 bits: numbers, or the strings `NaN`, `+Inf`,
/// `-Inf`, `StaleNaN` (or anything Rust parses as f64).
pub fn json_value_bits(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_f64().expect("finite number").to_bits(),
        Value::String(s) if s == "StaleNaN" => STALE_NAN,
        Value::String(s) => s
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value {s:?}"))
            .to_bits(),
        Value::Null => f64::NAN.to_bits(),
        other => panic!("bad value {other}"),
    }
}

/// Asks the OS for a free port on 127.0.0.1 (for helper processes that
/// cannot report the port they bound).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Silt's settings for a test run.
#[derive(Debug, Clone, Default)]
pub struct SiltOptions {
    /// Self-scrape interval; `None` turns it off (so only the test's own
    /// series exist).
    pub self_scrape: Option<&'static str>,
    /// Listen address; `None` picks a free port (then a restart gets a new
    /// one; with a fixed address it keeps it, as a sender expects).
    pub listen: Option<String>,
    /// Extra YAML appended to the config file.
    pub extra_config: String,
    pub extra_args: Vec<String>,
}

/// A running `silt` child process.
pub struct Silt {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    config: PathBuf,
    opts: SiltOptions,
    log: Arc<Mutex<Vec<String>>>,
}

/// How long a start (including WAL replay, in a debug build) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

impl Silt {
    /// Starts silt on a free port with `data_dir` and waits until ready.
    pub fn start(data_dir: &Path) -> Silt {
        Silt::start_with(data_dir, SiltOptions::default())
    }

    pub fn start_with(data_dir: &Path, opts: SiltOptions) -> Silt {
        let config = data_dir.with_extension("silt-test.yml");
        let mut yaml = format!(
            "self_scrape:\n  interval: {}\n",
            opts.self_scrape.unwrap_or("0")
        );
        yaml.push_str(&opts.extra_config);
        std::fs::write(&config, yaml).expect("writing the test config");
        let silt = Silt::spawn(data_dir.to_owned(), config, opts);
        silt.wait_ready();
        silt
    }

    fn spawn(data_dir: PathBuf, config: PathBuf, opts: SiltOptions) -> Silt {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_silt"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config)
            .args(&opts.extra_args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting silt");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on http://") {
                    let addr: String = line[i + "listening on http://".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "silt did not report its address; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Silt {
            child,
            addr,
            data_dir,
            config,
            opts,
            log,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(format!("http://{}", self.addr))
    }

    /// The config file it was started with (`--config`).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Everything silt logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/-/ready` until 200; panics (with the log) on timeout or exit.
    pub fn wait_ready(&self) {
        let client = self.client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = client.try_get("/-/ready")
                && r.status == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "silt not ready after {READY_TIMEOUT:?}; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for silt") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "silt did not exit within {timeout:?} after SIGTERM; log:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops cleanly (SIGTERM) and asserts a successful exit.
    pub fn stop(mut self) {
        let status = self.terminate(Duration::from_secs(60));
        assert!(
            status.success(),
            "silt exited with {status}; log:\n{}",
            self.logs()
        );
    }

    /// Kills (SIGKILL) and starts again on the same data directory.
    pub fn crash_and_restart(self) -> Silt {
        self.respawn_ready()
    }

    /// Stops cleanly and starts again on the same data directory.
    pub fn restart(mut self) -> Silt {
        let status = self.terminate(Duration::from_secs(60));
        assert!(
            status.success(),
            "silt exited with {status}; log:\n{}",
            self.logs()
        );
        self.respawn_ready()
    }

    /// Kills this process if it still runs (SIGKILL) and starts a new one on
    /// the same data directory, without waiting for it to be ready.
    pub fn respawn(mut self) -> Silt {
        self.kill();
        Silt::spawn(
            self.data_dir.clone(),
            self.config.clone(),
            self.opts.clone(),
        )
    }

    /// [`Silt::respawn`], then waits until ready.
    pub fn respawn_ready(self) -> Silt {
        let next = self.respawn();
        next.wait_ready();
        next
    }
}

impl Drop for Silt {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- silt log ({}) ---\n{}", self.addr, self.logs());
        }
    }
}

/// True when running in CI (`CI` set and not `false`/`0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds an external program in /usr/bin or PATH. In CI a missing program
/// fails the test; locally it returns `None` so the test can skip.
pub fn require_program(name: &str) -> Option<PathBuf> {
    let candidates = std::iter::once(PathBuf::from("/usr/bin").join(name)).chain(
        std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        }),
    );
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    if in_ci() {
        panic!("{name} is not installed; .ci/run installs it with apt-get");
    }
    eprintln!("SKIP: {name} is not installed (apt-get install {name}); this test fails in CI");
    None
}
