//! End to end: every kind of bad remote-write request gets the status real
//! senders expect (400 = do not retry, 413, 415, 405) and a message saying
//! what is wrong; a rejected request stores nothing, and afterwards the
//! server still serves with the earlier data intact.

mod common;

use common::{Client, Silt, SiltOptions, proto, series};

const MAX_BODY: usize = 64 * 1024;

fn start() -> (tempfile::TempDir, Silt) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SiltOptions { extra_config: format!("ingest:\n  max_body_bytes: {MAX_BODY}\n"), ..SiltOptions::default() };
    let silt = Silt::start_with(&tmp.path().join("data"), opts);
    (tmp, silt)
}

/// Asserts status and that the body mentions every needle (case-insensitive).
#[track_caller]
fn expect(r: &common::Reply, status: u16, needles: &[&str]) {
    assert_eq!(r.status, status, "body: {}", r.body);
    let body = r.body.to_lowercase();
    for n in needles {
        assert!(body.contains(&n.to_lowercase()), "{n:?} not in message {:?}", r.body);
    }
}

fn one(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::WriteRequest {
    proto::WriteRequest { timeseries: vec![series(labels, samples)], metadata: vec![] }
}

fn raw_series(labels: Vec<(Vec<u8>, Vec<u8>)>, samples: &[(i64, f64)]) -> proto::WriteRequest {
    let ts = proto::TimeSeries {
        labels: labels.into_iter().map(|(name, value)| proto::Label { name, value }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| proto::Sample { value, timestamp }).collect(),
    };
    proto::WriteRequest { timeseries: vec![ts], metadata: vec![] }
}

/// The good data written first; must be intact at the end.
fn good(t0: i64) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: vec![
            series(&[("__name__", "bad_input_good"), ("k", "1")], &[(t0, 1.0), (t0 + 1000, 2.0)]),
            series(&[("__name__", "bad_input_good"), ("k", "2")], &[(t0, 3.0)]),
        ],
        metadata: vec![],
    }
}

fn assert_only_good(client: &Client, t0: i64) {
    let got = client.export(r#"{__name__=~"bad_input.*"}"#, t0 - 3_600_000, common::now_ms() + 7_200_000);
    let summary: Vec<(String, Vec<(i64, f64)>)> = got
        .into_iter()
        .map(|e| (e.metric["k"].clone(), e.samples.iter().map(|(t, v)| (*t, f64::from_bits(*v))).collect()))
        .collect();
    assert_eq!(
        summary,
        vec![("1".to_owned(), vec![(t0, 1.0), (t0 + 1000, 2.0)]), ("2".to_owned(), vec![(t0, 3.0)])],
        "only the good data may be stored"
    );
}

#[test]
fn bad_requests_get_their_status_and_message_and_change_nothing() {
    let (_tmp, silt) = start();
    let client = silt.client();
    let t0 = common::now_ms() - 60_000;
    client.write_ok(&good(t0));

    // Transport-level problems.
    expect(&client.write_raw(b"\xff\xff\xff\xff\xff\x0fnot snappy at all").unwrap(), 400, &["snappy"]);
    let not_protobuf = snap::raw::Encoder::new().compress_vec(b"\x0a\xff\xff\xff\xff\x0f\x01").unwrap();
    expect(&client.write_raw(&not_protobuf).unwrap(), 400, &["protobuf"]);

    // Bad labels: the message names the problem and the series.
    let r = client.write(&one(&[("__name__", "bad_input_x"), ("", "v")], &[(t0, 1.0)]));
    expect(&r, 400, &["empty", "bad_input_x"]);
    let r = client.write(&one(&[("__name__", "bad_input_x"), ("a", "1"), ("a", "2")], &[(t0, 1.0)]));
    expect(&r, 400, &["duplicate", "bad_input_x"]);
    let r = client.write(&raw_series(vec![(b"__name__".to_vec(), b"bad_input_x".to_vec()), (b"a".to_vec(), vec![0xff, 0xfe])], &[(t0, 1.0)]));
    expect(&r, 400, &["utf-8"]);
    let r = client.write(&raw_series(vec![(b"__name__".to_vec(), b"bad_input_x".to_vec()), (vec![0xc3, 0x28], b"v".to_vec())], &[(t0, 1.0)]));
    expect(&r, 400, &["utf-8"]);
    let r = client.write(&one(&[("job", "no_name")], &[(t0, 1.0)]));
    expect(&r, 400, &["__name__"]);

    // Bad samples.
    let future = common::now_ms() + 3_600_000;
    let r = client.write(&one(&[("__name__", "bad_input_x")], &[(future, 1.0)]));
    expect(&r, 400, &["future", "bad_input_x"]);
    let r = client.write(&one(&[("__name__", "bad_input_good"), ("k", "1")], &[(t0, 9.0)]));
    expect(&r, 400, &["duplicate sample for timestamp"]);
    // Within one request, too.
    let r = client.write(&one(&[("__name__", "bad_input_x")], &[(t0, 1.0), (t0, 2.0)]));
    expect(&r, 400, &["duplicate sample for timestamp"]);
    // An exact duplicate (same value bits) is accepted silently.
    client.write_ok(&one(&[("__name__", "bad_input_good"), ("k", "1")], &[(t0, 1.0)]));

    // A request is applied whole or not at all: a good series beside a bad
    // one is not stored either.
    let mixed = proto::WriteRequest {
        timeseries: vec![
            series(&[("__name__", "bad_input_x"), ("k", "3")], &[(t0, 5.0)]),
            series(&[("__name__", "bad_input_good"), ("k", "2")], &[(t0, 4.0)]),
        ],
        metadata: vec![],
    };
    expect(&client.write(&mixed), 400, &["duplicate sample for timestamp"]);

    // Size: a compressed body over the limit is 413.
    let big: Vec<u8> = (0..MAX_BODY * 2).map(|i| (i * 7919 % 251) as u8).collect();
    expect(&client.write_raw(&big).unwrap(), 413, &[]);
    // A snappy header declaring a huge decoded length is refused before
    // allocating (Prometheus answers 400; 413 is as good for senders).
    let huge_header = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    let r = client.write_raw(&huge_header).unwrap();
    assert!(r.status == 400 || r.status == 413, "declared length over limit: {} {}", r.status, r.body);

    // Unsupported formats: 415 so senders fall back.
    let body = common::encode(&one(&[("__name__", "bad_input_x")], &[(t0, 1.0)]));
    let cases: [&[(&str, &str)]; 4] = [
        &[("Content-Type", "application/json"), ("Content-Encoding", "snappy")],
        &[("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")],
        &[("Content-Type", "application/x-protobuf"), ("Content-Encoding", "zstd")],
        &[("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v9.Request"), ("Content-Encoding", "snappy")],
    ];
    for headers in cases {
        let r = client.post_raw("/api/v1/write", headers, &body).unwrap();
        assert_eq!(r.status, 415, "{headers:?}: {}", r.body);
    }
    // Wrong method.
    assert_eq!(client.get("/api/v1/write").status, 405);

    // Still serving, good data intact, nothing of the bad requests stored.
    assert_eq!(client.get("/-/ready").status, 200);
    assert_only_good(&client, t0);
    // And after a restart (the WAL holds nothing of the rejected requests).
    let silt = silt.crash_and_restart();
    assert_only_good(&silt.client(), t0);
    silt.stop();
}

#[test]
fn empty_and_metadata_only_requests_are_accepted() {
    let (_tmp, silt) = start();
    let client = silt.client();
    client.write_ok(&proto::WriteRequest::default());
    client.write_ok(&proto::WriteRequest {
        timeseries: vec![],
        metadata: vec![proto::MetricMetadata {
            r#type: 2,
            metric_family_name: "bad_input_meta_only".into(),
            help: "Only metadata.".into(),
            unit: "bytes".into(),
        }],
    });
    let meta = common::success_data(&client.get_query("/api/v1/metadata", &[("metric", "bad_input_meta_only")]));
    assert_eq!(meta["bad_input_meta_only"][0]["type"], "gauge", "{meta}");
    assert_eq!(meta["bad_input_meta_only"][0]["unit"], "bytes", "{meta}");
    silt.stop();
}
