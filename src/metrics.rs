//! The server's own metrics: HTTP request latency by handler and status,
//! process metrics read from `/proc` at scrape time, and build info.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/api/v1/label/{name}/values`), never the raw path.
    pub handler: String,
    pub code: String,
}

type HistogramCtor = fn() -> Histogram;

/// HTTP request metrics, shared by every route.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: Family<RequestLabels, Histogram, HistogramCtor>,
}

/// The route label stored in a response by [`tag_route`].
#[derive(Debug, Clone)]
struct RouteLabel(String);

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        fn new_histogram() -> Histogram {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ])
        }
        let duration =
            Family::<RequestLabels, Histogram, HistogramCtor>::new_with_constructor(new_histogram);
        registry.register_with_unit(
            "silt_http_request_duration",
            "Latency of HTTP requests by route pattern and status code.",
            Unit::Seconds,
            duration.clone(),
        );
        HttpMetrics { duration }
    }

    fn observe(&self, handler: String, code: u16, seconds: f64) {
        self.duration
            .get_or_create(&RequestLabels {
                handler,
                code: code.to_string(),
            })
            .observe(seconds);
    }
}

/// Outermost middleware: times every request. The handler label comes from
/// the [`RouteLabel`] that [`tag_route`] put into the response; requests no
/// route matched are counted as `handler="unmatched"`.
pub async fn track(State(metrics): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let response = next.run(req).await;
    let handler = response
        .extensions()
        .get::<RouteLabel>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    metrics.observe(
        handler,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Route layer: records which route pattern served the request.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Registers build info and the process collector.
pub fn register_process(registry: &mut Registry) {
    registry.register(
        "silt_build",
        "Silt's version.",
        Info::new(vec![(
            "version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        )]),
    );
    registry.register_collector(Box::new(ProcessCollector::new()));
}

/// Standard `process_*` metrics, read from `/proc/self` on every scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    pub fn new() -> ProcessCollector {
        let start_time_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        ProcessCollector { start_time_seconds }
    }
}

/// What `/proc/self` says about this process (Linux only; missing values
/// stay `None`).
#[derive(Debug, Default, PartialEq)]
pub struct ProcStats {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcStats {
    pub fn read() -> ProcStats {
        let mut stats = std::fs::read_to_string("/proc/self/status")
            .map(|s| parse_status(&s))
            .unwrap_or_default();
        stats.cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat_cpu(&s, clock_ticks()));
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        stats.max_fds = max_fds();
        stats
    }
}

/// Parses `VmRSS`, `VmSize` and `Threads` from `/proc/self/status`.
fn parse_status(text: &str) -> ProcStats {
    let kb = |v: &str| {
        v.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    let mut stats = ProcStats::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "VmRSS" => stats.resident_bytes = kb(value),
            "VmSize" => stats.virtual_bytes = kb(value),
            "Threads" => stats.threads = value.trim().parse().ok(),
            _ => {}
        }
    }
    stats
}

/// User + system CPU seconds from `/proc/self/stat` (fields 14 and 15,
/// counted after the parenthesised command name, which may contain spaces).
fn parse_stat_cpu(text: &str, ticks_per_second: f64) -> Option<f64> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    // after_comm starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector::new()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = ProcStats::read();
        let mut gauge = |name: &str, help: &str, unit: Option<&Unit>, value: Option<f64>| {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, unit, g.metric_type())?)?;
            }
            Ok::<(), std::fmt::Error>(())
        };
        let bytes = Unit::Bytes;
        let secs = Unit::Seconds;
        gauge(
            "process_resident_memory",
            "Resident memory size in bytes.",
            Some(&bytes),
            stats.resident_bytes.map(|v| v as f64),
        )?;
        gauge(
            "process_virtual_memory",
            "Virtual memory size in bytes.",
            Some(&bytes),
            stats.virtual_bytes.map(|v| v as f64),
        )?;
        gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            None,
            stats.open_fds.map(|v| v as f64),
        )?;
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            None,
            stats.max_fds.map(|v| v as f64),
        )?;
        gauge(
            "process_threads",
            "Number of OS threads.",
            None,
            stats.threads.map(|v| v as f64),
        )?;
        gauge(
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            Some(&secs),
            Some(self.start_time_seconds),
        )?;
        if let Some(cpu) = stats.cpu_seconds {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent.",
                Some(&secs),
                c.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let text = "Name:\tsilt\nVmSize:\t  123 kB\nVmRSS:\t    2048 kB\nThreads:\t7\n";
        let s = parse_status(text);
        assert_eq!(s.resident_bytes, Some(2048 * 1024));
        assert_eq!(s.virtual_bytes, Some(123 * 1024));
        assert_eq!(s.threads, Some(7));
    }

    #[test]
    fn parses_proc_stat_with_spaces_in_comm() {
        let text = "42 (a b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 7 0 100 0 0";
        assert_eq!(parse_stat_cpu(text, 100.0), Some(3.0));
        assert_eq!(parse_stat_cpu("garbage", 100.0), None);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcStats::read();
        assert!(s.resident_bytes.unwrap() > 0);
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.cpu_seconds.is_some());
    }

    #[test]
    fn process_collector_output_parses() {
        let mut reg = Registry::default();
        register_process(&mut reg);
        let metrics = HttpMetrics::register(&mut reg);
        metrics.observe("/api/v1/write".into(), 204, 0.001);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        let e = crate::exposition::parse(&text).unwrap();
        let names: std::collections::BTreeSet<_> =
            e.samples.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_start_time_seconds",
            "silt_build_info",
            "silt_http_request_duration_seconds_count",
        ] {
            assert!(names.contains(name), "{name} missing from\n{text}");
        }
        let count = e
            .samples
            .iter()
            .find(|s| s.name == "silt_http_request_duration_seconds_count")
            .unwrap();
        assert!(
            count
                .labels
                .contains(&("handler".into(), "/api/v1/write".into()))
        );
        assert!(count.labels.contains(&("code".into(), "204".into())));
    }
}
