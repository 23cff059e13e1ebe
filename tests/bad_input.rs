//! End to end: every kind of bad remote-write request gets the status real
//! senders expect (400 = do not retry, 413, 415, 405) and a message saying
//! what is wrong; a rejected request stores nothing, and afterwards the
//! server still serves with the earlier data intact.

mod common;

use common::{Client, Silt, SiltOptions, proto, series};

const MAX_BODY: usize = 64 * 1024;

fn start() -> (tempfile::TempDir, Silt) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SiltOptions {
        extra_config: format!(
            "ingest:\n  max_body_bytes: {MAX_BODY}\n  max_series_per_request: 10\n  max_labels_per_series: 8\n  \
             max_label_name_bytes: 32\n  max_label_value_bytes: 64\n"
        ),
        ..SiltOptions::default()
    };
    let silt = Silt::start_with(&tmp.path().join("data"), opts);
    (tmp, silt)
}

/// Asserts status and that the body mentions every needle (case-insensitive).
#[track_caller]
fn expect(r: &common::Reply, status: u16, needles: &[&str]) {
    assert_eq!(r.status, status, "body: {}", r.body);
    let body = r.body.to_lowercase();
    for n in needles {
        assert!(
            body.contains(&n.to_lowercase()),
            "{n:?} not in message {:?}",
            r.body
        );
    }
}

fn one(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: vec![series(labels, samples)],
        metadata: vec![],
    }
}

fn raw_series(labels: Vec<(Vec<u8>, Vec<u8>)>, samples: &[(i64, f64)]) -> proto::WriteRequest {
    let ts = proto::TimeSeries {
        labels: labels
            .into_iter()
            .map(|(name, value)| proto::Label { name, value })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample {
                value: Some(value),
                timestamp,
            })
            .collect(),
    };
    proto::WriteRequest {
        timeseries: vec![ts],
        metadata: vec![],
    }
}

/// The good data written first; must be intact at the end.
fn good(t0: i64) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "bad_input_good"), ("k", "1")],
                &[(t0, 1.0), (t0 + 1000, 2.0)],
            ),
            series(&[("__name__", "bad_input_good"), ("k", "2")], &[(t0, 3.0)]),
        ],
        metadata: vec![],
    }
}

fn assert_only_good(client: &Client, t0: i64) {
    let got = client.export(
        r#"{__name__=~"bad_input.*"}"#,
        t0 - 3_600_000,
        common::now_ms() + 7_200_000,
    );
    let summary: Vec<(String, Vec<(i64, f64)>)> = got
        .into_iter()
        .map(|e| {
            (
                e.metric["k"].clone(),
                e.samples
                    .iter()
                    .map(|(t, v)| (*t, f64::from_bits(*v)))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("1".to_owned(), vec![(t0, 1.0), (t0 + 1000, 2.0)]),
            ("2".to_owned(), vec![(t0, 3.0)])
        ],
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
    expect(
        &client
            .write_raw(b"\xff\xff\xff\xff\xff\x0fnot snappy at all")
            .unwrap(),
        400,
        &["snappy"],
    );
    let not_protobuf = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0f\x01")
        .unwrap();
    expect(
        &client.write_raw(&not_protobuf).unwrap(),
        400,
        &["protobuf"],
    );

    // Bad labels: the message names the problem and the series.
    let r = client.write(&one(
        &[("__name__", "bad_input_x"), ("", "v")],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["empty", "bad_input_x"]);
    let r = client.write(&one(
        &[("__name__", "bad_input_x"), ("a", "1"), ("a", "2")],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["duplicate", "bad_input_x"]);
    let r = client.write(&raw_series(
        vec![
            (b"__name__".to_vec(), b"bad_input_x".to_vec()),
            (b"a".to_vec(), vec![0xff, 0xfe]),
        ],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["utf-8"]);
    let r = client.write(&raw_series(
        vec![
            (b"__name__".to_vec(), b"bad_input_x".to_vec()),
            (vec![0xc3, 0x28], b"v".to_vec()),
        ],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["utf-8"]);
    let r = client.write(&one(&[("job", "no_name")], &[(t0, 1.0)]));
    expect(&r, 400, &["__name__"]);

    // Bad samples.
    let future = common::now_ms() + 3_600_000;
    let r = client.write(&one(&[("__name__", "bad_input_x")], &[(future, 1.0)]));
    expect(&r, 400, &["future", "bad_input_x"]);
    let r = client.write(&one(
        &[("__name__", "bad_input_good"), ("k", "1")],
        &[(t0, 9.0)],
    ));
    expect(&r, 400, &["duplicate sample for timestamp"]);
    // Within one request, too.
    let r = client.write(&one(
        &[("__name__", "bad_input_x")],
        &[(t0, 1.0), (t0, 2.0)],
    ));
    expect(&r, 400, &["duplicate sample for timestamp"]);
    // An exact duplicate (same value bits) is accepted silently.
    client.write_ok(&one(
        &[("__name__", "bad_input_good"), ("k", "1")],
        &[(t0, 1.0)],
    ));

    // A request is applied whole or not at all: a good series beside a bad
    // one is not stored either.
    let mixed = proto::WriteRequest {
        timeseries: vec![
            series(&[("__name__", "bad_input_x"), ("k", "3")], &[(t0, 5.0)]),
            series(&[("__name__", "bad_input_good"), ("k", "2")], &[(t0, 4.0)]),
        ],
        metadata: vec![],
    };
    expect(
        &client.write(&mixed),
        400,
        &["duplicate sample for timestamp"],
    );

    // Size: a compressed body over the limit is 413.
    let big: Vec<u8> = (0..MAX_BODY * 2).map(|i| (i * 7919 % 251) as u8).collect();
    // (A fresh client here and for 415: the server answers without reading
    // the body and closes the connection, which must not be reused.)
    expect(&client.fresh().write_raw(&big).unwrap(), 413, &[]);
    // A snappy header declaring a huge decoded length is refused before
    // allocating (Prometheus answers 400; 413 is as good for senders).
    let huge_header = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    let r = client.write_raw(&huge_header).unwrap();
    assert!(
        r.status == 400 || r.status == 413,
        "declared length over limit: {} {}",
        r.status,
        r.body
    );

    // Unsupported formats: 415 so senders fall back (zstd is supported,
    // for vmagent).
    let body = common::encode(&one(&[("__name__", "bad_input_x")], &[(t0, 1.0)]));
    let cases: [&[(&str, &str)]; 4] = [
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "snappy"),
        ],
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "br"),
        ],
        &[
            (
                "Content-Type",
                "application/x-protobuf;proto=io.prometheus.write.v9.Request",
            ),
            ("Content-Encoding", "snappy"),
        ],
    ];
    for headers in cases {
        let r = client
            .fresh()
            .post_raw("/api/v1/write", headers, &body)
            .unwrap();
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
    let meta = common::success_data(
        &client.get_query("/api/v1/metadata", &[("metric", "bad_input_meta_only")]),
    );
    assert_eq!(meta["bad_input_meta_only"][0]["type"], "gauge", "{meta}");
    assert_eq!(meta["bad_input_meta_only"][0]["unit"], "bytes", "{meta}");
    silt.stop();
}

#[test]
fn limits_from_the_config_are_enforced_with_400() {
    let (_tmp, silt) = start();
    let client = silt.client();
    let t0 = common::now_ms() - 60_000;
    client.write_ok(&good(t0));

    let names: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
    let mut many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    many[0] = ("__name__", "bad_input_x");
    expect(
        &client.write(&one(&many, &[(t0, 1.0)])),
        400,
        &["9 labels", "limit of 8"],
    );

    let long_value = "v".repeat(65);
    let r = client.write(&one(
        &[("__name__", "bad_input_x"), ("a", &long_value)],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["value of label", "limit of 64 bytes"]);
    let long_name = "n".repeat(33);
    let r = client.write(&one(
        &[("__name__", "bad_input_x"), (&long_name, "v")],
        &[(t0, 1.0)],
    ));
    expect(&r, 400, &["label name", "limit of 32 bytes"]);

    let too_many = proto::WriteRequest {
        timeseries: (0..11)
            .map(|i| {
                series(
                    &[("__name__", "bad_input_x"), ("i", &i.to_string())],
                    &[(t0, 1.0)],
                )
            })
            .collect(),
        metadata: vec![],
    };
    expect(&client.write(&too_many), 400, &["more than 10 series"]);

    assert_only_good(&client, t0);
    silt.stop();
}

/// A request is applied whole or not at all (docs/ingest.md): one invalid
/// series beside a valid one gets 400 naming it, and the valid series is
/// not written either.
#[test]
fn invalid_series_beside_valid_ones_reject_the_whole_request() {
    let (_tmp, silt) = start();
    let client = silt.client();
    let t0 = common::now_ms() - 60_000;
    let req = proto::WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "bad_input_partial"), ("k", "ok")],
                &[(t0, 1.0)],
            ),
            series(
                &[("__name__", "bad_input_partial"), ("", "bad")],
                &[(t0, 2.0)],
            ),
        ],
        metadata: vec![],
    };
    expect(
        &client.write(&req),
        400,
        &[
            "1 invalid series",
            "nothing in this request was written",
            "empty label name",
        ],
    );
    let got = client.export("bad_input_partial", t0 - 1000, t0 + 1000);
    assert!(got.is_empty(), "{got:?}");
    silt.stop();
}
