//! End to end: what goes in through remote write comes out of the API
//! exactly, survives clean and unclean restarts, and the operational
//! endpoints (`--help`, health, readiness, `/metrics`, self-scrape, admin)
//! behave as documented.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Client, Silt, SiltOptions, proto, series};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The data every test in this file writes: three series of one metric and
/// one of another, with the values that break codecs (stale marker, NaN,
/// ±0, ±Inf, extremes), labels sent unsorted and one empty-valued label
/// (which means "absent").
struct Fixture {
    t0: i64,
    req: proto::WriteRequest,
    /// Expected export: label set → (timestamp, value bits).
    expected: BTreeMap<BTreeMap<String, String>, Vec<(i64, u64)>>,
}

fn fixture() -> Fixture {
    let t0 = common::now_ms() - 3_600_000;
    let t0 = t0 - t0 % 1000;
    let specials = [
        f64::from_bits(common::STALE_NAN),
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN_POSITIVE,
        1.5,
        -2.25e-300,
    ];
    let special_samples: Vec<(i64, f64)> = specials
        .iter()
        .enumerate()
        .map(|(i, v)| (t0 + i as i64 * 15_000, *v))
        .collect();
    let counter: Vec<(i64, f64)> = (0..100)
        .map(|i| (t0 + i * 15_000, (i * i) as f64))
        .collect();
    let irregular: Vec<(i64, f64)> = (0..50)
        .map(|i| (t0 + i * 7_001 + (i % 3), 1e6 - i as f64 * 0.1))
        .collect();
    let req = proto::WriteRequest {
        timeseries: vec![
            // Unsorted labels and an empty value.
            series(
                &[
                    ("zone", "b"),
                    ("__name__", "e2e_requests_total"),
                    ("job", "api"),
                    ("empty", ""),
                ],
                &counter,
            ),
            series(
                &[
                    ("__name__", "e2e_requests_total"),
                    ("job", "api"),
                    ("zone", "a"),
                ],
                &special_samples,
            ),
            series(
                &[
                    ("__name__", "e2e_requests_total"),
                    ("job", "db"),
                    ("zone", "a"),
                    ("quote", "a\"b\\c\nd ü"),
                ],
                &irregular,
            ),
            series(
                &[("__name__", "e2e_temperature"), ("job", "api")],
                &[(t0, 21.5)],
            ),
        ],
        metadata: vec![proto::MetricMetadata {
            r#type: 1,
            metric_family_name: "e2e_requests_total".into(),
            help: "Requests served.".into(),
            unit: String::new(),
        }],
    };
    let mut expected = BTreeMap::new();
    let bits = |s: &[(i64, f64)]| s.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>();
    expected.insert(
        labels(&[
            ("__name__", "e2e_requests_total"),
            ("job", "api"),
            ("zone", "b"),
        ]),
        bits(&counter),
    );
    expected.insert(
        labels(&[
            ("__name__", "e2e_requests_total"),
            ("job", "api"),
            ("zone", "a"),
        ]),
        bits(&special_samples),
    );
    expected.insert(
        labels(&[
            ("__name__", "e2e_requests_total"),
            ("job", "db"),
            ("zone", "a"),
            ("quote", "a\"b\\c\nd ü"),
        ]),
        bits(&irregular),
    );
    expected.insert(
        labels(&[("__name__", "e2e_temperature"), ("job", "api")]),
        bits(&[(t0, 21.5)]),
    );
    Fixture { t0, req, expected }
}

/// Reads everything back and compares exactly.
fn assert_fixture(client: &Client, f: &Fixture) {
    let start = f.t0 - 60_000;
    let end = common::now_ms() + 60_000;
    let exported = client.export(r#"{__name__=~"e2e_.*"}"#, start, end);
    let got: BTreeMap<_, _> = exported
        .into_iter()
        .map(|e| (e.metric, e.samples))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        f.expected.keys().collect::<Vec<_>>(),
        "series sets differ"
    );
    for (labels, want) in &f.expected {
        let have = &got[labels];
        assert_eq!(have.len(), want.len(), "sample count of {labels:?}");
        for (h, w) in have.iter().zip(want) {
            assert_eq!(
                h,
                w,
                "sample of {labels:?}: got value {} want {}",
                f64::from_bits(h.1),
                f64::from_bits(w.1)
            );
        }
    }

    let series = client.series(r#"{__name__=~"e2e_.*"}"#, start, end);
    assert_eq!(series, f.expected.keys().cloned().collect::<Vec<_>>());
    let series = client.series(r#"e2e_requests_total{zone="a",job!="api"}"#, start, end);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["job"], "db");

    assert_eq!(
        client.labels(Some(r#"{__name__=~"e2e_.*"}"#)),
        ["__name__", "job", "quote", "zone"]
    );
    assert_eq!(
        client.label_values("job", Some(r#"{__name__=~"e2e_.*"}"#)),
        ["api", "db"]
    );
    assert_eq!(
        client.label_values("__name__", Some(r#"{job="api"}"#)),
        ["e2e_requests_total", "e2e_temperature"]
    );
    assert_eq!(
        client.label_values("zone", Some("e2e_temperature")),
        Vec::<String>::new()
    );

    let meta = common::success_data(
        &client.get_query("/api/v1/metadata", &[("metric", "e2e_requests_total")]),
    );
    let entries = meta["e2e_requests_total"]
        .as_array()
        .unwrap_or_else(|| panic!("no metadata: {meta}"));
    assert_eq!(entries[0]["type"], "counter");
    assert_eq!(entries[0]["help"], "Requests served.");
    assert_eq!(entries[0]["unit"], "");
}

#[test]
fn write_read_back_exactly_and_survive_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let silt = Silt::start(&tmp.path().join("data"));
    let f = fixture();
    silt.client().write_ok(&f.req);
    assert_fixture(&silt.client(), &f);

    // A clean restart replays the WAL (or reads blocks written on close).
    let silt = silt.restart();
    assert_fixture(&silt.client(), &f);

    // An unclean one (SIGKILL) too.
    let silt = silt.crash_and_restart();
    assert_fixture(&silt.client(), &f);

    // Cutting the head into a block and compacting keep every sample.
    let client = silt.client();
    let cut = common::success_data(&client.post_empty("/api/v1/admin/tsdb/cut_head"));
    assert!(cut.get("block").is_some(), "{cut}");
    assert_fixture(&client, &f);
    let compacted = client.post_empty("/api/v1/admin/tsdb/compact");
    common::success_data(&compacted);
    assert_fixture(&client, &f);
    // Forced compaction merges incomplete windows too; a bad flag is 400.
    let forced = client.post_empty("/api/v1/admin/tsdb/compact?force=true");
    common::success_data(&forced);
    assert_fixture(&client, &f);
    let bad = client.post_empty("/api/v1/admin/tsdb/compact?force=maybe");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains(r#"\"force\""#), "{}", bad.body);
    let silt = silt.crash_and_restart();
    assert_fixture(&silt.client(), &f);
    silt.stop();
}

#[test]
fn snapshot_creates_a_prometheus_style_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let silt = Silt::start(&data);
    let client = silt.client();
    client.write_ok(&fixture().req);
    let r = client.post_empty("/api/v1/admin/tsdb/snapshot");
    let name = common::success_data(&r)["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body))
        .to_owned();
    // 20171210T211224Z-2be650b6d019eb54
    assert_eq!(name.len(), 33, "{name}");
    assert_eq!(&name[8..9], "T");
    assert_eq!(&name[15..17], "Z-");
    assert!(name[17..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    assert!(
        data.join("snapshots").join(&name).is_dir(),
        "snapshot dir missing"
    );
    // GET is not allowed on admin endpoints.
    assert_eq!(client.get("/api/v1/admin/tsdb/snapshot").status, 405);
    silt.stop();
}

#[test]
fn health_ready_metrics_and_unknown_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let silt = Silt::start(&tmp.path().join("data"));
    let client = silt.client();
    let r = client.get("/-/healthy");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "Prometheus Server is Healthy.\n")
    );
    let r = client.get("/-/ready");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "Prometheus Server is Ready.\n")
    );
    assert_eq!(client.get("/no/such/path").status, 404);

    // Some traffic so the request histogram has series.
    client.write_ok(&fixture().req);
    let r = client.get("/metrics");
    assert_eq!(r.status, 200);
    for needle in [
        "process_resident_memory_bytes",
        "silt_build_info",
        "silt_http_request_duration_seconds_count{handler=\"/api/v1/write\",code=\"204\"}",
        "# EOF",
    ] {
        assert!(
            r.body.contains(needle),
            "{needle} missing from /metrics:\n{}",
            r.body
        );
    }
    silt.stop();
}

#[test]
fn self_scrape_stores_up_and_own_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SiltOptions {
        self_scrape: Some("500ms"),
        ..SiltOptions::default()
    };
    let silt = Silt::start_with(&tmp.path().join("data"), opts);
    let client = silt.client();
    let instance = silt.addr.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let start = common::now_ms() - 600_000;
        let up = client.export(r#"up{job="silt"}"#, start, common::now_ms() + 1000);
        let rss = client.export(
            r#"process_resident_memory_bytes{job="silt"}"#,
            start,
            common::now_ms() + 1000,
        );
        if up.len() == 1 && up[0].samples.len() >= 2 && !rss.is_empty() {
            assert_eq!(up[0].metric["instance"], instance);
            assert!(up[0].samples.iter().all(|(_, v)| f64::from_bits(*v) == 1.0));
            assert!(f64::from_bits(rss[0].samples[0].1) > 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "self-scrape did not store up{{job=\"silt\"}} twice: up={up:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    silt.stop();
}

#[test]
fn help_lists_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_silt"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--retention",
        "--config",
        "--durability",
        "--log-level",
        "serve",
        "print-config",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(
        help.contains("127.0.0.1:9300"),
        "default address not documented:\n{help}"
    );
}

#[test]
fn print_config_merges_file_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("silt.yml");
    std::fs::write(&file, "retention: 30d\nself_scrape:\n  interval: 5s\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["print-config", "--config"])
        .arg(&file)
        .args(["--retention", "0", "--listen", "127.0.0.1:9999"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("listen: 127.0.0.1:9999"), "{yaml}");
    assert!(yaml.contains("retention: 0s"), "{yaml}");
    assert!(yaml.contains("interval: 5s"), "{yaml}");
}

#[test]
fn bad_config_fails_at_start_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("silt.yml");
    std::fs::write(&file, "retension: 30d\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("retension") && err.contains("silt.yml"),
        "{err}"
    );
}

#[test]
fn listen_address_in_use_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_silt"))
        .args(["--listen", &addr, "--data-dir"])
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "{err}");
}

/// Sends `req` as a remote-write 2.0 request, with the headers Prometheus
/// sends.
fn post_v2(client: &Client, req: &ingest::proto::v2::Request) -> common::Reply {
    client
        .post_raw(
            "/api/v1/write",
            &[
                (
                    "Content-Type",
                    "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                ),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "2.0.0"),
            ],
            &ingest::proto::encode_snappy(req),
        )
        .unwrap()
}

#[test]
fn remote_write_2_0_is_stored_and_reports_written_counts() {
    use ingest::proto::v2;
    let tmp = tempfile::tempdir().unwrap();
    let silt = Silt::start(&tmp.path().join("data"));
    let client = silt.client();
    let t0 = common::now_ms() - 120_000;
    let mut symbols = v2::SymbolTable::new();
    let mut refs = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .flat_map(|(n, v)| [symbols.intern(n), symbols.intern(v)])
            .collect::<Vec<u32>>()
    };
    let a = refs(&[("__name__", "e2e_v2_bytes"), ("job", "v2")]);
    let b = refs(&[("job", "v2"), ("__name__", "e2e_v2_bytes"), ("disk", "sda")]);
    let help = symbols.intern("Bytes read.");
    let unit = symbols.intern("bytes");
    let samples = |k: f64| {
        (0..3)
            .map(|i| v2::Sample {
                value: k + i as f64,
                timestamp: t0 + i * 1000,
                start_timestamp: 0,
            })
            .collect()
    };
    let metadata = Some(v2::Metadata {
        r#type: v2::MetricType::Counter as i32,
        help_ref: help,
        unit_ref: unit,
    });
    let req = v2::Request {
        symbols: symbols.into_symbols(),
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: a,
                samples: samples(1.0),
                metadata,
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: b,
                samples: samples(10.0),
                metadata,
                ..Default::default()
            },
        ],
    };
    let r = post_v2(&client, &req);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Samples-Written"),
        Some("6")
    );
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Histograms-Written"),
        Some("0")
    );
    assert_eq!(
        r.header("X-Prometheus-Remote-Write-Exemplars-Written"),
        Some("0")
    );

    let got: BTreeMap<_, _> = client
        .export("e2e_v2_bytes", t0 - 1000, t0 + 10_000)
        .into_iter()
        .map(|e| (e.metric, e.samples))
        .collect();
    let bits = |k: f64| {
        (0..3)
            .map(|i| (t0 + i * 1000, (k + i as f64).to_bits()))
            .collect::<Vec<_>>()
    };
    let want = BTreeMap::from([
        (
            labels(&[("__name__", "e2e_v2_bytes"), ("job", "v2")]),
            bits(1.0),
        ),
        (
            labels(&[("__name__", "e2e_v2_bytes"), ("disk", "sda"), ("job", "v2")]),
            bits(10.0),
        ),
    ]);
    assert_eq!(got, want);
    let meta =
        common::success_data(&client.get_query("/api/v1/metadata", &[("metric", "e2e_v2_bytes")]));
    assert_eq!(meta["e2e_v2_bytes"][0]["type"], "counter", "{meta}");
    assert_eq!(meta["e2e_v2_bytes"][0]["unit"], "bytes", "{meta}");
    silt.stop();
}

/// Start timestamps sent by remote write 2.0 (a sample's own, or the
/// series' legacy `created_timestamp` of Prometheus 3.0-3.8) reach PromQL,
/// from the head, from a block cut from it, and after a restart.
#[test]
fn remote_write_2_0_start_timestamps_reach_queries() {
    use ingest::proto::v2;
    let tmp = tempfile::tempdir().unwrap();
    let silt = Silt::start(&tmp.path().join("data"));
    let t0 = common::now_ms() - 120_000;
    let mut symbols = v2::SymbolTable::new();
    let mut refs = |name: &str| vec![symbols.intern("__name__"), symbols.intern(name)];
    let (own, legacy, mixed) = (
        refs("e2e_st_own"),
        refs("e2e_st_legacy"),
        refs("e2e_st_mixed"),
    );
    let samples = |st: i64| -> Vec<v2::Sample> {
        (0..3)
            .map(|i| v2::Sample {
                value: 100.0 + i as f64,
                timestamp: t0 + i * 15_000,
                start_timestamp: st,
            })
            .collect()
    };
    // The mixed series' last sample brings its own start (a reset), which
    // wins over the series' created timestamp.
    let mut reset = samples(0);
    reset[2].start_timestamp = t0 + 20_000;
    let req = v2::Request {
        symbols: symbols.into_symbols(),
        timeseries: vec![
            v2::TimeSeries {
                labels_refs: own,
                samples: samples(t0 - 5_000),
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: legacy,
                samples: samples(0),
                created_timestamp: t0 - 9_000,
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: mixed,
                samples: reset,
                created_timestamp: t0 - 7_000,
                ..Default::default()
            },
        ],
    };
    let send = |client: &Client, req: &v2::Request| {
        let r = post_v2(client, req);
        assert_eq!(r.status, 204, "{}", r.body);
    };
    send(&silt.client(), &req);
    // start_timestamp() of each series' sample at t0 + 15 s and t0 + 30 s.
    let check = |client: &Client, when: &str| {
        for (name, at_15, at_30) in [
            ("e2e_st_own", t0 - 5_000, t0 - 5_000),
            ("e2e_st_legacy", t0 - 9_000, t0 - 9_000),
            ("e2e_st_mixed", t0 - 7_000, t0 + 20_000),
        ] {
            for (at, want) in [(t0 + 15_000, at_15), (t0 + 30_000, at_30)] {
                let r = client.get_query(
                    "/api/v1/query",
                    &[
                        ("query", &format!("start_timestamp({name})")),
                        ("time", &common::ms_param(at)),
                    ],
                );
                let data = common::success_data(&r);
                let got = data["result"][0]["value"][1].as_str().unwrap_or_default();
                assert_eq!(
                    got.parse::<f64>().ok(),
                    Some(want as f64 / 1000.0),
                    "{name} at {at} ({when}): {data}"
                );
            }
        }
    };
    check(&silt.client(), "head");
    let r = silt.client().post_empty("/api/v1/admin/tsdb/cut_head");
    let block = common::success_data(&r);
    assert!(block["block"].is_string(), "{block}");
    check(&silt.client(), "block");
    let silt = silt.restart();
    check(&silt.client(), "restarted");
    // A later sample with a new start, acknowledged, then kill -9: the
    // WAL brings it back.
    let mut symbols = v2::SymbolTable::new();
    let later = v2::Request {
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![symbols.intern("__name__"), symbols.intern("e2e_st_own")],
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: t0 + 60_000,
                start_timestamp: t0 + 50_000,
            }],
            ..Default::default()
        }],
        symbols: symbols.into_symbols(),
    };
    send(&silt.client(), &later);
    let silt = silt.crash_and_restart();
    let r = silt.client().get_query(
        "/api/v1/query",
        &[
            ("query", "start_timestamp(e2e_st_own)"),
            ("time", &common::ms_param(t0 + 60_000)),
        ],
    );
    let data = common::success_data(&r);
    assert_eq!(
        data["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok()),
        Some((t0 + 50_000) as f64 / 1000.0),
        "{data}"
    );
    check(&silt.client(), "crashed");
    silt.stop();
}
