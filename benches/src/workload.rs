//! A deterministic node_exporter-like workload: hosts, their series, values and scrape times.
//!
//! Each host exposes the families a real node_exporter does (per-cpu×mode CPU counters,
//! memory gauges, filesystem sizes per mountpoint, network and disk byte counters, load
//! averages, misc counters) plus two classic histograms, with 8–11 labels per series. Values
//! follow simple models (noisy counters, mean-reverting gauges, slowly stepping sizes) and
//! every draw is a hash of (seed, series, scrape), so the data set is a pure function of
//! [`Spec`] and any series can be generated on its own.

use std::collections::HashMap;

use crate::rng;

/// Prometheus' default scrape interval.
pub const SCRAPE_INTERVAL_MS: i64 = 15_000;
/// Timestamp jitter per scrape: the sample time is the nominal time ± this many ms.
pub const JITTER_MS: i64 = 5;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Generate whole hosts until at least this many series exist.
    pub series: usize,
    /// Length of the covered time range, in ms (rounded down to whole scrapes).
    pub duration_ms: i64,
    /// Every sample's timestamp is below this (ms since the Unix epoch).
    pub end_ms: i64,
    /// Seed of every random draw.
    pub seed: u64,
}

/// How a series' value evolves from one scrape to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Never changes.
    Const,
    /// Counter kept in integer units and exposed divided by `scale` (CPU seconds in 1/100 s,
    /// disk time in ms): increments of `per_scrape` units with relative noise.
    Fixed {
        per_scrape: f64,
        noise: f64,
        scale: f64,
    },
    /// Integer counter (bytes, packets, errors): noisy increments, stochastically rounded,
    /// so rare events (errors, drops) increase only now and then.
    Counter { per_scrape: f64, noise: f64 },
    /// Mean-reverting gauge, exposed rounded to a multiple of `quantum` and kept in `[lo, hi]`.
    Gauge {
        mean: f64,
        sd: f64,
        theta: f64,
        quantum: f64,
        lo: f64,
        hi: f64,
    },
    /// Mostly constant; with probability `p` per scrape moves by 1..=`max_steps` quanta,
    /// downwards with probability `down`.
    Slow {
        p: f64,
        quantum: f64,
        max_steps: f64,
        down: f64,
        lo: f64,
        hi: f64,
    },
    /// The scrape time in seconds plus the few ms the collector took (node_time_seconds).
    WallClock,
    /// A fresh uniform draw in `[lo, hi)` every scrape (scrape_duration_seconds).
    Noise { lo: f64, hi: f64 },
    /// Cumulative count of histogram `group` for buckets `0..=le`.
    Bucket { group: u32, le: u8, rate: f64 },
    /// `_count` of histogram `group`.
    HistCount { group: u32, rate: f64 },
    /// `_sum` of histogram `group`.
    HistSum { group: u32, rate: f64 },
}

/// Upper bounds of the classic histogram buckets (the last is +Inf).
pub const BUCKETS: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];
/// Share of observations falling into each bucket (not cumulative).
const BUCKET_WEIGHTS: [f64; 12] = [
    0.04, 0.09, 0.2, 0.24, 0.16, 0.11, 0.07, 0.04, 0.025, 0.01, 0.004, 0.001,
];
/// Representative observed value for each bucket, for `_sum`.
const BUCKET_MIDS: [f64; 12] = [
    0.003, 0.0075, 0.0175, 0.0375, 0.075, 0.175, 0.375, 0.75, 1.75, 3.75, 7.5, 14.0,
];

/// One generated series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Index into [`Workload::hosts`].
    pub host: u32,
    /// Index into [`Workload::families`] (the metric name).
    pub family: u16,
    /// Value model.
    pub model: Model,
    /// Value (model state) at scrape 0.
    pub init: f64,
    labels_start: usize,
    labels_len: u32,
}

/// One scraped host.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Offset of this target's scrapes within the interval (Prometheus spreads targets).
    pub phase_ms: i64,
}

/// The generated workload: series definitions and their encoded labels.
#[derive(Debug)]
pub struct Workload {
    pub spec: Spec,
    /// Nominal time of scrape 0 (before phase and jitter).
    pub start_ms: i64,
    /// Number of scrapes per series.
    pub scrapes: u64,
    pub hosts: Vec<Host>,
    pub series: Vec<Series>,
    /// Metric names, indexed by [`Series::family`].
    pub families: Vec<String>,
    /// Concatenated protobuf `TimeSeries.labels` fields (tag 1, one per label) of all series.
    label_arena: Vec<u8>,
    /// Labels per series, summed (for the average).
    label_count: u64,
}

/// Labels every series of a host carries (besides `__name__`).
struct HostLabels {
    job: &'static str,
    instance: String,
    env: &'static str,
    region: &'static str,
    zone: String,
    cluster: String,
    team: &'static str,
}

/// Collects one host's series before they are encoded.
struct HostBuilder<'a> {
    w: &'a mut Workload,
    host: u32,
    base: HostLabels,
    family_ids: &'a mut HashMap<String, u16>,
}

impl HostBuilder<'_> {
    fn add(&mut self, name: &str, extra: &[(&str, &str)], model: Model, init: f64) {
        let family = match self.family_ids.get(name) {
            Some(&f) => f,
            None => {
                let f = self.w.families.len() as u16;
                self.w.families.push(name.to_string());
                self.family_ids.insert(name.to_string(), f);
                f
            }
        };
        let b = &self.base;
        let mut labels: Vec<(&str, &str)> = vec![
            ("__name__", name),
            ("job", b.job),
            ("instance", &b.instance),
            ("env", b.env),
            ("region", b.region),
            ("availability_zone", &b.zone),
            ("cluster", &b.cluster),
            ("team", b.team),
        ];
        labels.extend_from_slice(extra);
        labels.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let start = self.w.label_arena.len();
        for (n, v) in &labels {
            crate::encode::put_label(&mut self.w.label_arena, n, v);
        }
        self.w.label_count += labels.len() as u64;
        let len = (self.w.label_arena.len() - start) as u32;
        self.w.series.push(Series {
            host: self.host,
            family,
            model,
            init,
            labels_start: start,
            labels_len: len,
        });
    }
}

const ENVS: [&str; 5] = ["prod", "prod", "prod", "staging", "dev"];
const REGIONS: [&str; 5] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-1",
];
const TEAMS: [&str; 6] = ["payments", "search", "platform", "data", "identity", "edge"];
const ROLES: [&str; 6] = ["web", "api", "db", "cache", "worker", "ingest"];
const CPU_MODES: [(&str, f64); 8] = [
    ("idle", 0.0), // the rest of the time
    ("iowait", 0.05),
    ("irq", 0.01),
    ("nice", 0.01),
    ("softirq", 0.03),
    ("steal", 0.02),
    ("system", 0.25),
    ("user", 0.63),
];
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const PAGE: f64 = 4096.0;

impl Workload {
    /// Generate the series of `spec` (values are produced later, scrape by scrape).
    pub fn new(spec: Spec) -> Workload {
        let scrapes = (spec.duration_ms / SCRAPE_INTERVAL_MS).max(1) as u64;
        // The last sample (nominal + phase < interval, + jitter) stays below end_ms.
        let start_ms = spec.end_ms - scrapes as i64 * SCRAPE_INTERVAL_MS - JITTER_MS - 1;
        let mut w = Workload {
            spec,
            start_ms,
            scrapes,
            hosts: Vec::new(),
            series: Vec::with_capacity(spec.series + 400),
            families: Vec::new(),
            label_arena: Vec::with_capacity(spec.series * 300),
            label_count: 0,
        };
        let mut family_ids = HashMap::new();
        let mut groups = 0u32;
        while w.series.len() < spec.series {
            let h = w.hosts.len() as u32;
            w.add_host(h, &mut family_ids, &mut groups);
        }
        w.label_arena.shrink_to_fit();
        w
    }

    fn add_host(&mut self, h: u32, family_ids: &mut HashMap<String, u16>, groups: &mut u32) {
        let seed = self.spec.seed;
        let hs = 0x1000_0000_0000 + h as u64;
        let u = |salt: u64| rng::unit(seed, hs, 0, salt);
        let p = |salt: u64, n: usize| rng::pick(seed, hs, salt, n);
        let phase_ms = (rng::hash(seed, hs, 0, 99) % SCRAPE_INTERVAL_MS as u64) as i64;
        self.hosts.push(Host { phase_ms });

        let cpus = [2usize, 4, 4, 8, 8, 16][p(1, 6)];
        let mem_total = cpus as f64 * [2.0, 4.0, 8.0][p(2, 3)] * GIB;
        let util = 0.05 + 0.8 * u(3);
        let uptime_s = 86_400.0 * (1.0 + 200.0 * u(4));
        let env = ENVS[p(5, ENVS.len())];
        let region_i = p(6, REGIONS.len());
        let region = REGIONS[region_i];
        let role = ROLES[p(7, ROLES.len())];
        let base = HostLabels {
            job: "node",
            instance: format!("{role}-{h:05}.{region}.internal:9100"),
            env,
            region,
            zone: format!("{region}{}", ["a", "b", "c"][p(8, 3)]),
            cluster: format!("{env}-{region}-{}", 1 + p(9, 3)),
            team: TEAMS[p(10, TEAMS.len())],
        };
        let nodename = format!("{role}-{h:05}");
        let first_series = self.series.len();
        let mut b = HostBuilder {
            w: self,
            host: h,
            base,
            family_ids,
        };

        // CPU: counters of 1/100 s, one per cpu × mode.
        let nice_used = u(11) < 0.5;
        for cpu in 0..cpus {
            let cpu_s = cpu.to_string();
            for (mode, share) in CPU_MODES {
                let share = match mode {
                    "idle" => 1.0 - util,
                    "nice" if !nice_used => 0.0,
                    _ => share * util,
                };
                let per_scrape = share * 15.0 * 100.0;
                let init = (uptime_s * share * 100.0).round();
                let model = if per_scrape == 0.0 {
                    Model::Const
                } else {
                    Model::Fixed {
                        per_scrape,
                        noise: 0.3,
                        scale: 100.0,
                    }
                };
                b.add(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu_s), ("mode", mode)],
                    model,
                    init,
                );
            }
        }

        // Memory gauges, in bytes.
        let mem_gauge = |frac: f64, sd_frac: f64| Model::Gauge {
            mean: mem_total * frac,
            sd: mem_total * sd_frac,
            theta: 0.05,
            quantum: PAGE,
            lo: 0.0,
            hi: mem_total,
        };
        let swap = if u(12) < 0.3 { 2.0 * GIB } else { 0.0 };
        b.add("node_memory_MemTotal_bytes", &[], Model::Const, mem_total);
        for (name, frac, sd) in [
            ("node_memory_MemFree_bytes", 0.2 * (1.2 - util), 0.002),
            ("node_memory_MemAvailable_bytes", 0.55 * (1.2 - util), 0.002),
            ("node_memory_Buffers_bytes", 0.02, 0.0002),
            ("node_memory_Cached_bytes", 0.3, 0.001),
            ("node_memory_Active_bytes", 0.35 * (0.5 + util), 0.001),
            ("node_memory_Inactive_bytes", 0.25, 0.001),
            ("node_memory_Dirty_bytes", 0.0002, 0.0001),
            ("node_memory_Slab_bytes", 0.03, 0.0001),
            ("node_memory_Shmem_bytes", 0.01, 0.00005),
            ("node_memory_Mapped_bytes", 0.05, 0.0003),
            ("node_memory_PageTables_bytes", 0.004, 0.00002),
            ("node_memory_Committed_AS_bytes", 0.6 * (0.5 + util), 0.003),
        ] {
            let m = mem_gauge(frac, sd);
            b.add(name, &[], m, mem_total * frac);
        }
        b.add("node_memory_SwapTotal_bytes", &[], Model::Const, swap);
        b.add(
            "node_memory_SwapFree_bytes",
            &[],
            Model::Slow {
                p: 0.01,
                quantum: PAGE,
                max_steps: 16.0,
                down: 0.5,
                lo: 0.0,
                hi: swap,
            },
            swap,
        );

        // Filesystems: sizes constant, free space stepping slowly.
        for (i, (mountpoint, device, fstype, size_gib)) in [
            ("/", "/dev/nvme0n1p1", "ext4", 50.0),
            ("/boot/efi", "/dev/nvme0n1p15", "vfat", 0.125),
            ("/var/lib/docker", "/dev/nvme1n1", "xfs", 500.0),
        ]
        .into_iter()
        .enumerate()
        {
            let size = (size_gib * GIB).round();
            let used = 0.2 + 0.6 * u(20 + i as u64);
            let free = (size * (1.0 - used) / PAGE).round() * PAGE;
            let files = (size / 16384.0).round();
            let fs = [
                ("device", device),
                ("fstype", fstype),
                ("mountpoint", mountpoint),
            ];
            let busy = if i == 1 { 0.0005 } else { 0.1 };
            let slow = |quantum: f64, hi: f64| Model::Slow {
                p: busy,
                quantum,
                max_steps: 256.0,
                down: 0.6,
                lo: 0.0,
                hi,
            };
            b.add("node_filesystem_size_bytes", &fs, Model::Const, size);
            b.add("node_filesystem_free_bytes", &fs, slow(PAGE, size), free);
            b.add(
                "node_filesystem_avail_bytes",
                &fs,
                slow(PAGE, size),
                (free - size * 0.05).max(0.0),
            );
            b.add("node_filesystem_files", &fs, Model::Const, files);
            b.add(
                "node_filesystem_files_free",
                &fs,
                slow(1.0, files),
                (files * (1.0 - used * 0.3)).round(),
            );
        }

        // Network counters.
        for (i, device) in ["eth0", "lo"].into_iter().enumerate() {
            let bytes_per_s = if i == 0 {
                1e5 + 5e7 * u(30) * util
            } else {
                1e4 + 1e6 * u(31)
            };
            let pkt = 900.0;
            for dir in ["receive", "transmit"] {
                let f = if dir == "receive" { 1.0 } else { 0.6 };
                let bytes = bytes_per_s * f * 15.0;
                for (what, per_scrape) in [
                    ("bytes", bytes),
                    ("packets", bytes / pkt),
                    ("errs", 0.002),
                    ("drop", if i == 0 { 0.05 } else { 0.0 }),
                ] {
                    let name = format!("node_network_{dir}_{what}_total");
                    let init = (per_scrape * uptime_s / 15.0).floor();
                    b.add(
                        &name,
                        &[("device", device)],
                        Model::Counter {
                            per_scrape,
                            noise: 0.4,
                        },
                        init,
                    );
                }
            }
        }

        // Disk counters.
        for (i, device) in ["nvme0n1", "nvme1n1"].into_iter().enumerate() {
            let io = if i == 0 { 0.2 } else { 1.0 } * util * (0.2 + u(40 + i as u64));
            for (name, per_scrape, fixed) in [
                ("node_disk_read_bytes_total", 2e7 * io, false),
                ("node_disk_written_bytes_total", 5e7 * io, false),
                ("node_disk_reads_completed_total", 400.0 * io, false),
                ("node_disk_writes_completed_total", 900.0 * io, false),
                ("node_disk_io_time_seconds_total", 3000.0 * io, true),
                ("node_disk_read_time_seconds_total", 800.0 * io, true),
            ] {
                let init = (per_scrape * uptime_s / 15.0).floor();
                let model = if fixed {
                    Model::Fixed {
                        per_scrape,
                        noise: 0.5,
                        scale: 1000.0,
                    }
                } else {
                    Model::Counter {
                        per_scrape,
                        noise: 0.5,
                    }
                };
                b.add(name, &[("device", device)], model, init);
            }
        }

        // Load averages.
        let load_mean = cpus as f64 * util;
        for (name, sd) in [
            ("node_load1", 0.08),
            ("node_load5", 0.03),
            ("node_load15", 0.01),
        ] {
            let m = Model::Gauge {
                mean: load_mean,
                sd: sd * (1.0 + load_mean),
                theta: 0.1,
                quantum: 0.01,
                lo: 0.0,
                hi: 1e6,
            };
            b.add(name, &[], m, load_mean);
        }

        // Miscellaneous node_exporter series.
        let per_s = |x: f64| x * 15.0;
        let counter = |per_scrape: f64| Model::Counter {
            per_scrape,
            noise: 0.3,
        };
        let gauge = |mean: f64, sd: f64| Model::Gauge {
            mean,
            sd,
            theta: 0.2,
            quantum: 1.0,
            lo: 0.0,
            hi: 1e12,
        };
        let ctx = per_s(2000.0 + 30000.0 * util * cpus as f64);
        b.add(
            "node_context_switches_total",
            &[],
            counter(ctx),
            (ctx * uptime_s / 15.0).floor(),
        );
        let intr = per_s(1000.0 + 20000.0 * util * cpus as f64);
        b.add(
            "node_intr_total",
            &[],
            counter(intr),
            (intr * uptime_s / 15.0).floor(),
        );
        b.add(
            "node_forks_total",
            &[],
            counter(per_s(5.0 + 50.0 * util)),
            (uptime_s * 20.0).floor(),
        );
        b.add("node_procs_running", &[], gauge(1.0 + load_mean, 1.0), 1.0);
        b.add("node_procs_blocked", &[], gauge(0.1, 0.3), 0.0);
        let now_s = self_end_s(b.w);
        b.add(
            "node_boot_time_seconds",
            &[],
            Model::Const,
            (now_s - uptime_s).floor(),
        );
        b.add("node_time_seconds", &[], Model::WallClock, 0.0);
        b.add("node_entropy_available_bits", &[], gauge(256.0, 2.0), 256.0);
        b.add(
            "node_filefd_allocated",
            &[],
            gauge(2000.0 + 20000.0 * util, 40.0),
            2000.0,
        );
        b.add(
            "node_sockstat_TCP_inuse",
            &[],
            gauge(50.0 + 2000.0 * util, 15.0),
            50.0,
        );
        b.add(
            "node_netstat_Tcp_CurrEstab",
            &[],
            gauge(40.0 + 1800.0 * util, 15.0),
            40.0,
        );
        b.add(
            "node_uname_info",
            &[
                ("machine", "x86_64"),
                ("nodename", &nodename),
                ("release", ["6.1.0-18-amd64", "5.15.0-97-generic"][p(13, 2)]),
            ],
            Model::Const,
            1.0,
        );
        for (chip_sensor, mean) in [("temp1", 45.0), ("temp2", 43.0), ("temp3", 47.0)] {
            b.add(
                "node_hwmon_temp_celsius",
                &[("chip", "platform_coretemp_0"), ("sensor", chip_sensor)],
                Model::Gauge {
                    mean: mean + 20.0 * util,
                    sd: 0.7,
                    theta: 0.2,
                    quantum: 1.0,
                    lo: 20.0,
                    hi: 105.0,
                },
                mean,
            );
        }

        // Two classic histograms per host.
        for (handler, rate_s) in [("/api/v1/query", 20.0), ("/metrics", 0.2)] {
            let group = *groups;
            *groups += 1;
            let rate = rate_s * 15.0 * (0.2 + util);
            let hist_uptime = uptime_s / 15.0;
            let init_j: Vec<f64> = BUCKET_WEIGHTS
                .iter()
                .map(|w| (rate * w * hist_uptime).floor())
                .collect();
            let hl = [("handler", handler), ("method", "GET")];
            let mut cum = 0.0;
            for (le, bound) in BUCKETS.iter().enumerate() {
                cum += init_j[le];
                let le_s = if bound.is_infinite() {
                    "+Inf".to_string()
                } else {
                    format!("{bound}")
                };
                b.add(
                    "http_request_duration_seconds_bucket",
                    &[hl[0], hl[1], ("le", &le_s)],
                    Model::Bucket {
                        group,
                        le: le as u8,
                        rate,
                    },
                    cum,
                );
            }
            let sum: f64 = init_j.iter().zip(BUCKET_MIDS).map(|(n, m)| n * m).sum();
            b.add(
                "http_request_duration_seconds_sum",
                &hl,
                Model::HistSum { group, rate },
                sum,
            );
            b.add(
                "http_request_duration_seconds_count",
                &hl,
                Model::HistCount { group, rate },
                cum,
            );
        }

        // Prometheus' synthetic series for the target.
        let n_host = (b.w.series.len() - first_series) as f64;
        b.add("up", &[], Model::Const, 1.0);
        b.add(
            "scrape_duration_seconds",
            &[],
            Model::Noise {
                lo: 0.004,
                hi: 0.03,
            },
            0.01,
        );
        b.add("scrape_samples_scraped", &[], Model::Const, n_host + 3.0);
    }

    /// Encoded `TimeSeries.labels` fields of series `i`.
    #[inline]
    pub fn labels_pb(&self, i: usize) -> &[u8] {
        let s = &self.series[i];
        &self.label_arena[s.labels_start..s.labels_start + s.labels_len as usize]
    }

    /// Timestamp (ms) of scrape `k` of host `host`: nominal time + the host's phase + jitter.
    #[inline]
    pub fn timestamp(&self, host: u32, k: u64) -> i64 {
        let jitter = (rng::hash(self.spec.seed, 0x2000_0000_0000 + host as u64, k, 7)
            % (2 * JITTER_MS as u64 + 1)) as i64
            - JITTER_MS;
        self.start_ms + k as i64 * SCRAPE_INTERVAL_MS + self.hosts[host as usize].phase_ms + jitter
    }

    /// Labels of series `i` (`__name__` included), sorted by name, decoded from its protobuf.
    pub fn labels(&self, i: usize) -> Vec<(String, String)> {
        decode_labels(self.labels_pb(i))
    }

    /// Scrapes of host `host` whose timestamp lies in `(lo_ms, hi_ms]`.
    pub fn scrapes_between(&self, host: u32, lo_ms: i64, hi_ms: i64) -> u64 {
        // Timestamps grow with k (jitter is far below the interval): binary search both ends.
        let first_after = |t: i64| {
            let (mut a, mut b) = (0u64, self.scrapes);
            while a < b {
                let m = a + (b - a) / 2;
                if self.timestamp(host, m) <= t {
                    a = m + 1;
                } else {
                    b = m;
                }
            }
            a
        };
        first_after(hi_ms).saturating_sub(first_after(lo_ms))
    }

    /// Total samples the workload produces.
    pub fn total_samples(&self) -> u64 {
        self.series.len() as u64 * self.scrapes
    }

    /// Average labels per series (including `__name__`).
    pub fn avg_labels(&self) -> f64 {
        self.label_count as f64 / self.series.len().max(1) as f64
    }

    /// Series per metric name, indexed like [`Workload::families`].
    pub fn series_per_family(&self) -> Vec<u64> {
        let mut n = vec![0u64; self.families.len()];
        for s in &self.series {
            n[s.family as usize] += 1;
        }
        n
    }

    /// Advance series `i` to scrape `k` and return its value. Call with k = 0, 1, 2, … in order,
    /// starting from any `state` (it is reset at k = 0).
    #[inline]
    pub fn value(&self, i: usize, k: u64, state: &mut f64) -> f64 {
        let s = &self.series[i];
        let seed = self.spec.seed;
        let sid = i as u64;
        if k == 0 {
            *state = s.init;
        }
        match s.model {
            Model::Const => *state,
            Model::Fixed {
                per_scrape,
                noise,
                scale,
            } => {
                if k > 0 {
                    let inc = per_scrape * (1.0 + noise * rng::normal(seed, sid, k, 1));
                    *state += (inc.max(0.0) + rng::unit(seed, sid, k, 2)).floor();
                }
                *state / scale
            }
            Model::Counter { per_scrape, noise } => {
                if k > 0 {
                    let inc = per_scrape * (1.0 + noise * rng::normal(seed, sid, k, 1));
                    *state += (inc.max(0.0) + rng::unit(seed, sid, k, 2)).floor();
                }
                *state
            }
            Model::Gauge {
                mean,
                sd,
                theta,
                quantum,
                lo,
                hi,
            } => {
                if k > 0 {
                    let x = *state + theta * (mean - *state) + sd * rng::normal(seed, sid, k, 1);
                    *state = x.clamp(lo, hi);
                }
                ((*state / quantum).round() * quantum).clamp(lo, hi)
            }
            Model::Slow {
                p,
                quantum,
                max_steps,
                down,
                lo,
                hi,
            } => {
                if k > 0 && rng::unit(seed, sid, k, 1) < p {
                    let steps = (rng::unit(seed, sid, k, 2) * max_steps).floor() + 1.0;
                    let dir = if rng::unit(seed, sid, k, 3) < down {
                        -1.0
                    } else {
                        1.0
                    };
                    *state = (*state + dir * steps * quantum).clamp(lo, hi);
                }
                *state
            }
            Model::WallClock => {
                let t = self.timestamp(s.host, k) as f64;
                (t + 1.0 + 3.0 * rng::unit(seed, sid, k, 1)) / 1000.0
            }
            Model::Noise { lo, hi } => lo + (hi - lo) * rng::unit(seed, sid, k, 1),
            Model::Bucket { group, le, rate } => {
                if k > 0 {
                    *state += (0..=le as usize)
                        .map(|j| self.observations(group, k, j, rate))
                        .sum::<f64>();
                }
                *state
            }
            Model::HistCount { group, rate } => {
                if k > 0 {
                    *state += (0..BUCKETS.len())
                        .map(|j| self.observations(group, k, j, rate))
                        .sum::<f64>();
                }
                *state
            }
            Model::HistSum { group, rate } => {
                if k > 0 {
                    *state += (0..BUCKETS.len())
                        .map(|j| {
                            let n = self.observations(group, k, j, rate);
                            n * BUCKET_MIDS[j]
                                * (0.8 + 0.4 * rng::unit(seed, sid, k, 10 + j as u64))
                        })
                        .sum::<f64>();
                }
                *state
            }
        }
    }

    /// Observations of histogram `group` landing in bucket `j` between scrapes k-1 and k.
    #[inline]
    fn observations(&self, group: u32, k: u64, j: usize, rate: f64) -> f64 {
        let g = 0x3000_0000_0000 + group as u64;
        let u1 = rng::unit(self.spec.seed, g, k, j as u64);
        let u2 = rng::unit(self.spec.seed, g, k, 100 + j as u64);
        (rate * BUCKET_WEIGHTS[j] * (0.5 + u1) + u2).floor()
    }
}

/// Decode `TimeSeries.labels` fields as written by [`crate::encode::put_label`].
pub fn decode_labels(mut pb: &[u8]) -> Vec<(String, String)> {
    fn varint(b: &mut &[u8]) -> usize {
        let (mut v, mut shift) = (0usize, 0);
        while let Some((&x, rest)) = b.split_first() {
            *b = rest;
            v |= ((x & 0x7f) as usize) << shift;
            shift += 7;
            if x < 0x80 {
                break;
            }
        }
        v
    }
    fn field<'a>(b: &mut &'a [u8]) -> &'a [u8] {
        *b = b.get(1..).unwrap_or_default();
        let n = varint(b).min(b.len());
        let (f, rest) = b.split_at(n);
        *b = rest;
        f
    }
    let mut out = Vec::new();
    while !pb.is_empty() {
        let mut label = field(&mut pb);
        let name = String::from_utf8_lossy(field(&mut label)).into_owned();
        let value = String::from_utf8_lossy(field(&mut label)).into_owned();
        out.push((name, value));
    }
    out
}

fn self_end_s(w: &Workload) -> f64 {
    (w.spec.end_ms / 1000) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Workload {
        Workload::new(Spec {
            series: 2_000,
            duration_ms: 3_600_000,
            end_ms: 1_700_000_000_000,
            seed: 42,
        })
    }

    fn values(w: &Workload, i: usize) -> Vec<f64> {
        let mut st = 0.0;
        (0..w.scrapes).map(|k| w.value(i, k, &mut st)).collect()
    }

    #[test]
    fn shape_is_node_exporter_like() {
        let w = small();
        assert!(w.series.len() >= 2_000 && w.series.len() < 2_600);
        assert_eq!(w.scrapes, 240);
        let avg = w.avg_labels();
        assert!((8.0..=12.0).contains(&avg), "avg labels {avg}");
        for f in [
            "node_cpu_seconds_total",
            "node_memory_MemFree_bytes",
            "node_filesystem_avail_bytes",
            "node_network_receive_bytes_total",
            "node_load1",
            "http_request_duration_seconds_bucket",
            "up",
        ] {
            assert!(w.families.iter().any(|n| n == f), "missing {f}");
        }
        let per_host = w.series.len() as f64 / w.hosts.len() as f64;
        assert!(
            (80.0..300.0).contains(&per_host),
            "{per_host} series per host"
        );
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = small();
        let b = small();
        assert_eq!(a.labels_pb(17), b.labels_pb(17));
        assert_eq!(values(&a, 17), values(&b, 17));
        let c = Workload::new(Spec { seed: 43, ..a.spec });
        let differs = (0..100).any(|i| values(&a, i) != values(&c, i));
        assert!(differs);
    }

    #[test]
    fn counters_never_decrease_and_timestamps_increase() {
        let w = small();
        for (i, s) in w.series.iter().enumerate() {
            let v = values(&w, i);
            if matches!(
                s.model,
                Model::Fixed { .. }
                    | Model::Counter { .. }
                    | Model::Bucket { .. }
                    | Model::HistCount { .. }
                    | Model::HistSum { .. }
            ) {
                assert!(v.windows(2).all(|p| p[1] >= p[0]), "series {i} decreased");
            }
            assert!(v.iter().all(|x| x.is_finite()));
            let ts: Vec<i64> = (0..w.scrapes).map(|k| w.timestamp(s.host, k)).collect();
            assert!(
                ts.windows(2)
                    .all(|p| p[1] - p[0] >= SCRAPE_INTERVAL_MS - 2 * JITTER_MS)
            );
            assert!(*ts.last().unwrap() < w.spec.end_ms);
            assert!(ts[0] >= w.spec.end_ms - w.spec.duration_ms - SCRAPE_INTERVAL_MS);
        }
    }

    #[test]
    fn cpu_values_have_two_decimals_and_change() {
        let w = small();
        let i = w
            .series
            .iter()
            .position(|s| {
                w.families[s.family as usize] == "node_cpu_seconds_total"
                    && matches!(s.model, Model::Fixed { .. })
            })
            .unwrap();
        let v = values(&w, i);
        for x in &v {
            let cents = x * 100.0;
            assert!(
                (cents - cents.round()).abs() < 1e-6,
                "{x} has more than 2 decimals"
            );
        }
        assert!(v.windows(2).filter(|p| p[1] != p[0]).count() > 200);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_match_count() {
        let w = small();
        // The first host's first histogram: 12 buckets, then _sum, then _count.
        let first = w
            .series
            .iter()
            .position(|s| matches!(s.model, Model::Bucket { .. }))
            .unwrap();
        let buckets: Vec<Vec<f64>> = (first..first + 12).map(|i| values(&w, i)).collect();
        let count = values(&w, first + 13);
        assert!(matches!(
            w.series[first + 13].model,
            Model::HistCount { .. }
        ));
        for k in 0..w.scrapes as usize {
            for le in 1..12 {
                assert!(buckets[le][k] >= buckets[le - 1][k]);
            }
            assert_eq!(buckets[11][k], count[k]);
        }
        assert!(count.last() > count.first());
    }

    #[test]
    fn labels_decode_and_scrape_counts_match_timestamps() {
        let w = small();
        let l = w.labels(0);
        assert_eq!(l[0], ("__name__".into(), "node_cpu_seconds_total".into()));
        assert!(l.iter().any(|(n, v)| n == "job" && v == "node"));
        assert!(l.windows(2).all(|p| p[0].0 < p[1].0));
        let ts: Vec<i64> = (0..w.scrapes).map(|k| w.timestamp(3, k)).collect();
        for (lo, hi) in [
            (i64::MIN, i64::MAX),
            (ts[10], ts[20]),
            (ts[10] - 1, ts[20] - 1),
            (ts[100] + 3, ts[100] + 4),
            (w.spec.end_ms, w.spec.end_ms + 99),
        ] {
            let naive = ts.iter().filter(|&&t| t > lo && t <= hi).count() as u64;
            assert_eq!(w.scrapes_between(3, lo, hi), naive, "({lo}, {hi}]");
        }
    }

    #[test]
    fn memory_gauges_are_page_multiples_with_noise() {
        let w = small();
        let i = w
            .series
            .iter()
            .position(|s| w.families[s.family as usize] == "node_memory_MemFree_bytes")
            .unwrap();
        let v = values(&w, i);
        assert!(v.iter().all(|x| x % 4096.0 == 0.0));
        assert!(v.windows(2).filter(|p| p[1] != p[0]).count() > 100);
    }
}
