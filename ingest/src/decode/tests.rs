//! Decoder tests: protocol round trips, label rules, v2 symbols, metadata,
//! limits, and a differential property test against the prost-based
//! reference decoder.

use engine::{Labels, MetricMetadata, MetricType, STALE_NAN, Sample};
use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::error::{LabelPart, SeriesError};
use crate::proto::{self, CONTENT_TYPE_V2, v2};
use crate::reference;

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: proto::labels(labels),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn v1(series: Vec<proto::TimeSeries>) -> proto::WriteRequest {
    proto::WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
}

fn dec_v1(req: &proto::WriteRequest) -> Decoded {
    decode(
        None,
        Some("snappy"),
        &proto::encode_snappy(req),
        &Limits::default(),
    )
    .unwrap()
}

fn dec_v2(req: &v2::Request) -> Decoded {
    decode(
        Some(CONTENT_TYPE_V2),
        Some("snappy"),
        &proto::encode_snappy(req),
        &Limits::default(),
    )
    .unwrap()
}

fn v2_series(
    st: &mut v2::SymbolTable,
    labels: &[(&str, &str)],
    samples: &[(i64, f64)],
) -> v2::TimeSeries {
    v2::TimeSeries {
        labels_refs: st.refs(labels),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| v2::Sample {
                value,
                timestamp,
                start_timestamp: 0,
            })
            .collect(),
        ..Default::default()
    }
}

fn samples(d: &Decoded, i: usize) -> Vec<(i64, u64)> {
    d.batch.series[i]
        .samples
        .iter()
        .map(|s| (s.t, s.v.to_bits()))
        .collect()
}

/// Protobuf by hand, for inputs prost would not produce.
mod raw {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn key(field: u32, wire_type: u8, out: &mut Vec<u8>) {
        varint(u64::from(field) << 3 | u64::from(wire_type), out);
    }
    pub fn len(field: u32, payload: &[u8], out: &mut Vec<u8>) {
        key(field, 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    pub fn uint(field: u32, v: u64, out: &mut Vec<u8>) {
        key(field, 0, out);
        varint(v, out);
    }
    pub fn fixed64(field: u32, v: u64, out: &mut Vec<u8>) {
        key(field, 1, out);
        out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn label(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut l = Vec::new();
        len(1, name, &mut l);
        len(2, value, &mut l);
        l
    }
}

fn dec_raw(version: Version, raw: &[u8]) -> Result<Decoded, IngestError> {
    decode_raw(version, raw, &Limits::default(), None)
}

#[test]
fn v1_round_trip_sorts_labels_and_drops_empty_values() {
    let req = v1(vec![ts(
        &[
            ("job", "node"),
            ("__name__", "up"),
            ("instance", "a:9100"),
            ("zone", ""),
        ],
        &[(1000, 1.0), (2000, 0.0)],
    )]);
    let d = dec_v1(&req);
    assert_eq!(d.version, Version::V1);
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(
        d.batch.series[0].labels,
        Labels::new(&[("__name__", "up"), ("instance", "a:9100"), ("job", "node")])
    );
    assert_eq!(
        d.batch.series[0].samples,
        vec![Sample::new(1000, 1.0), Sample::new(2000, 0.0)]
    );
    assert_eq!(d.stats.series, 1);
    assert_eq!(d.stats.samples, 2);
    assert!(d.invalid.is_empty());
    assert!(d.rejection().is_none());
}

#[test]
fn special_float_values_are_bit_exact() {
    let values = [
        f64::from_bits(STALE_NAN),
        f64::from_bits(0x7ff8_0000_0000_0001), // Go's math.NaN()
        f64::from_bits(0xfff8_0000_0000_0000),
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 2.0, // subnormal
    ];
    let pts: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 - 3, v))
        .collect();
    let d = dec_v1(&v1(vec![ts(&[("__name__", "x")], &pts)]));
    let want: Vec<(i64, u64)> = pts.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    assert_eq!(samples(&d, 0), want);
    let mut st = v2::SymbolTable::new();
    let req = v2::Request {
        timeseries: vec![v2_series(&mut st, &[("__name__", "x")], &pts)],
        symbols: st.into_symbols(),
    };
    assert_eq!(samples(&dec_v2(&req), 0), want);
    // -0.0 (prost's encoder elides it as a default value; Go's does not).
    let mut sample = Vec::new();
    raw::fixed64(1, (-0.0f64).to_bits(), &mut sample);
    let mut series = raw::label(b"__name__", b"x");
    series.splice(0..0, [0x0a, series.len() as u8]);
    raw::len(2, &sample, &mut series);
    let mut body = Vec::new();
    raw::len(1, &series, &mut body);
    let d = dec_raw(Version::V1, &body).unwrap();
    assert_eq!(samples(&d, 0), vec![(0, (-0.0f64).to_bits())]);
}

#[test]
fn repeated_series_are_merged() {
    // Prometheus' v1 sender puts one sample per TimeSeries entry.
    let req = v1(vec![
        ts(&[("__name__", "a"), ("x", "1")], &[(1, 1.0)]),
        ts(&[("__name__", "b")], &[(1, 2.0)]),
        ts(&[("x", "1"), ("__name__", "a")], &[(2, 3.0)]),
    ]);
    let d = dec_v1(&req);
    assert_eq!(d.stats.series, 3);
    assert_eq!(d.batch.series.len(), 2);
    assert_eq!(
        d.batch.series[0].samples,
        vec![Sample::new(1, 1.0), Sample::new(2, 3.0)]
    );
    assert_eq!(d.batch.series[1].labels.metric_name(), Some("b"));
}

#[test]
fn invalid_series_are_all_reported() {
    let mut bad_utf8 = Vec::new();
    raw::len(1, &raw::label(b"__name__", b"ok"), &mut bad_utf8);
    raw::len(1, &raw::label(b"bad", b"\xc3\x28"), &mut bad_utf8);
    let mut body = Vec::new();
    raw::len(
        1,
        &ts(&[("__name__", "good")], &[(1, 1.0)]).encode_to_vec(),
        &mut body,
    );
    raw::len(
        1,
        &ts(&[("job", "no-name")], &[(1, 1.0), (2, 2.0)]).encode_to_vec(),
        &mut body,
    );
    raw::len(
        1,
        &ts(&[("__name__", "d"), ("a", "1"), ("a", "2")], &[(1, 1.0)]).encode_to_vec(),
        &mut body,
    );
    raw::len(
        1,
        &ts(&[("__name__", "e"), ("", "1")], &[(1, 1.0)]).encode_to_vec(),
        &mut body,
    );
    raw::len(1, &bad_utf8, &mut body);
    let d = dec_raw(Version::V1, &body).unwrap();
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(d.invalid.series, 4);
    assert_eq!(d.invalid.samples, 4);
    let e = &d.invalid.errors;
    assert!(
        matches!(&e[0], SeriesError::MissingMetricName { series } if series == r#"{job="no-name"}"#),
        "{e:?}"
    );
    assert!(
        matches!(&e[1], SeriesError::DuplicateLabelName { name, .. } if name == "a"),
        "{e:?}"
    );
    assert!(matches!(&e[2], SeriesError::EmptyLabelName { .. }), "{e:?}");
    assert!(
        matches!(&e[3], SeriesError::InvalidUtf8 { part: LabelPart::Value, series } if series.starts_with("ok{bad="))
    );
    let r = d.rejection().unwrap();
    assert_eq!(r.status(), 400);
    let msg = r.to_string();
    assert!(
        msg.starts_with("4 invalid series rejected; nothing in this request was written (4 float samples in the invalid series)"),
        "{msg}"
    );
    assert!(
        msg.contains(r#"series {job="no-name"}: no metric name"#),
        "{msg}"
    );
}

#[test]
fn reported_series_errors_are_capped() {
    let series: Vec<_> = (0..20)
        .map(|i| ts(&[("job", &i.to_string())], &[(1, 1.0)]))
        .collect();
    let d = dec_v1(&v1(series));
    assert_eq!(d.invalid.series, 20);
    assert_eq!(d.invalid.errors.len(), crate::InvalidSeries::MAX_REPORTED);
    assert!(
        d.rejection()
            .unwrap()
            .to_string()
            .ends_with("; and 15 more")
    );
}

#[test]
fn v1_metadata_requests() {
    let req = proto::WriteRequest {
        timeseries: vec![],
        metadata: vec![
            proto::MetricMetadata {
                r#type: proto::MetricType::Counter as i32,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: "".into(),
            },
            proto::MetricMetadata {
                r#type: proto::MetricType::Histogram as i32,
                metric_family_name: "latency_seconds".into(),
                help: "Latency.".into(),
                unit: "seconds".into(),
            },
            // unknown type code, and an entry without a family (ignored)
            proto::MetricMetadata {
                r#type: 99,
                metric_family_name: "odd".into(),
                ..Default::default()
            },
            proto::MetricMetadata {
                r#type: 2,
                ..Default::default()
            },
        ],
    };
    let d = dec_v1(&req);
    assert!(d.batch.series.is_empty());
    assert_eq!(d.stats.metadata, 4);
    assert_eq!(
        d.batch.metadata,
        vec![
            MetricMetadata {
                metric_family: "http_requests_total".into(),
                metric_type: MetricType::Counter,
                help: "Requests.".into(),
                unit: "".into()
            },
            MetricMetadata {
                metric_family: "latency_seconds".into(),
                metric_type: MetricType::Histogram,
                help: "Latency.".into(),
                unit: "seconds".into()
            },
            MetricMetadata {
                metric_family: "odd".into(),
                metric_type: MetricType::Unknown,
                help: "".into(),
                unit: "".into()
            },
        ]
    );
    assert!(
        d.rejection().is_none(),
        "metadata-only requests are a success"
    );
}

#[test]
fn empty_requests_succeed() {
    for ct in [None, Some(CONTENT_TYPE_V2)] {
        for body in [vec![], proto::snappy_compress(&[])] {
            let d = decode(ct, None, &body, &Limits::default()).unwrap();
            assert!(d.batch.series.is_empty() && d.rejection().is_none());
        }
    }
}

#[test]
fn v2_round_trip_with_metadata_and_merging() {
    let mut st = v2::SymbolTable::new();
    let help = st.intern("Request latency.");
    let unit = st.intern("seconds");
    let meta = v2::Metadata {
        r#type: v2::MetricType::Histogram as i32,
        help_ref: help,
        unit_ref: unit,
    };
    let mut a = v2_series(
        &mut st,
        &[("__name__", "lat_seconds_bucket"), ("le", "0.1")],
        &[(10, 4.0)],
    );
    a.metadata = Some(meta);
    let mut b = v2_series(&mut st, &[("__name__", "lat_seconds_count")], &[(10, 9.0)]);
    b.metadata = Some(meta);
    // Same series as `a`, split off by its exemplar.
    let mut a2 = v2_series(
        &mut st,
        &[("le", "0.1"), ("__name__", "lat_seconds_bucket")],
        &[(20, 5.0)],
    );
    a2.exemplars.push(v2::Exemplar {
        labels_refs: vec![],
        value: 0.05,
        timestamp: 20,
    });
    let req = v2::Request {
        timeseries: vec![a, b, a2],
        symbols: st.into_symbols(),
    };
    let d = dec_v2(&req);
    assert_eq!(d.version, Version::V2);
    assert_eq!(d.stats.series, 3);
    assert_eq!(d.stats.exemplars, 1);
    assert_eq!(d.stats.metadata, 2);
    assert_eq!(d.batch.series.len(), 2);
    assert_eq!(
        samples(&d, 0),
        vec![(10, 4f64.to_bits()), (20, 5f64.to_bits())]
    );
    assert_eq!(
        d.batch.metadata,
        vec![MetricMetadata {
            metric_family: "lat_seconds".into(),
            metric_type: MetricType::Histogram,
            help: "Request latency.".into(),
            unit: "seconds".into(),
        }]
    );
    assert!(
        d.rejection().is_none(),
        "exemplars beside stored samples are not an error"
    );
}

#[test]
fn v2_symbol_errors() {
    let series = |refs: Vec<u32>| v2::TimeSeries {
        labels_refs: refs,
        samples: vec![v2::Sample {
            value: 1.0,
            timestamp: 1,
            start_timestamp: 0,
        }],
        ..Default::default()
    };
    let symbols: Vec<String> = ["", "__name__", "up", "job", "\u{e9}"]
        .map(String::from)
        .to_vec();
    let req = v2::Request {
        symbols: symbols.clone(),
        timeseries: vec![
            series(vec![1, 2]),       // fine
            series(vec![1, 2, 3]),    // odd
            series(vec![1, 2, 3, 9]), // out of range
            series(vec![1, 2, 0, 4]), // empty name
            v2::TimeSeries {
                metadata: Some(v2::Metadata {
                    r#type: 1,
                    help_ref: 77,
                    unit_ref: 0,
                }),
                ..series(vec![1, 2])
            },
            v2::TimeSeries {
                samples: vec![],
                ..series(vec![1, 4])
            }, // no samples, no histograms
        ],
    };
    let d = dec_v2(&req);
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(d.invalid.series, 5);
    let e = &d.invalid.errors;
    assert!(
        matches!(&e[0], SeriesError::OddLabelRefs { len: 3, series } if series == r#"up{job=""}"#),
        "{e:?}"
    );
    assert!(
        matches!(
            &e[1],
            SeriesError::SymbolOutOfRange {
                reference: 9,
                symbols: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(matches!(&e[2], SeriesError::EmptyLabelName { .. }), "{e:?}");
    assert!(
        matches!(&e[3], SeriesError::SymbolOutOfRange { reference: 77, .. }),
        "{e:?}"
    );
    assert!(
        matches!(&e[4], SeriesError::NoSamples { series } if series == "\u{e9}{}"),
        "{e:?}"
    );

    // symbols[0] must be "".
    let req = v2::Request {
        symbols: vec!["x".into()],
        timeseries: vec![],
    };
    let e = decode(
        Some(CONTENT_TYPE_V2),
        None,
        &proto::encode_snappy(&req),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, IngestError::FirstSymbolNotEmpty(ref s) if s == "x"),
        "{e:?}"
    );
    assert_eq!(e.status(), 400);

    // Invalid UTF-8 in a referenced symbol names the series; unreferenced
    // invalid symbols are harmless.
    let mut body = Vec::new();
    for s in [&b""[..], b"__name__", b"m", b"lbl", b"\xff", b"\xfe"] {
        raw::len(4, s, &mut body);
    }
    raw::len(5, &series(vec![1, 2, 3, 4]).encode_to_vec(), &mut body);
    raw::len(5, &series(vec![1, 2]).encode_to_vec(), &mut body);
    let d = dec_raw(Version::V2, &body).unwrap();
    assert_eq!(d.batch.series.len(), 1);
    assert!(
        matches!(&d.invalid.errors[..], [SeriesError::InvalidUtf8 { part: LabelPart::Value, series }] if series == "m{lbl=\"\u{fffd}\"}")
    );
}

#[test]
fn v2_fields_in_any_order_and_unpacked_refs() {
    // Series before symbols, labels_refs unpacked, created_timestamp (legacy
    // field 6) and start_timestamp present.
    let mut ts = Vec::new();
    for r in [1u64, 2] {
        raw::uint(1, r, &mut ts);
    }
    let mut sample = Vec::new();
    raw::fixed64(1, 2.5f64.to_bits(), &mut sample);
    raw::uint(2, 1234, &mut sample);
    raw::uint(3, 1000, &mut sample);
    raw::len(2, &sample, &mut ts);
    raw::uint(6, 999, &mut ts);
    let mut body = Vec::new();
    raw::len(5, &ts, &mut body);
    for s in ["", "__name__", "late_symbols"] {
        raw::len(4, s.as_bytes(), &mut body);
    }
    let d = dec_raw(Version::V2, &body).unwrap();
    assert_eq!(
        d.batch.series[0].labels,
        Labels::new(&[("__name__", "late_symbols")])
    );
    assert_eq!(d.batch.series[0].samples, vec![Sample::new(1234, 2.5)]);
    assert_eq!(d.batch.series[0].start_timestamps, vec![1000]);
    // Prost decodes the same bytes to the same request (field 6 included).
    let req = v2::Request::decode(&body[..]).unwrap();
    assert_eq!(req.timeseries[0].created_timestamp, 999);
    assert_eq!(req.timeseries[0].labels_refs, vec![1, 2]);
}

/// A sample's own start timestamp, else its series' legacy created
/// timestamp; a series none of whose samples has one gets none.
#[test]
fn v2_start_timestamps_reach_the_batch() {
    let mut st = v2::SymbolTable::new();
    let mut with = |name: &str, starts: &[i64], created: i64| {
        let mut s = v2_series(&mut st, &[("__name__", name)], &[(10, 1.0), (20, 2.0)]);
        for (sample, &start) in s.samples.iter_mut().zip(starts) {
            sample.start_timestamp = start;
        }
        s.created_timestamp = created;
        s
    };
    let series = vec![
        with("own", &[5, 15], 0),
        with("created", &[0, 0], 3),
        with("both", &[0, 15], 3),
        with("none", &[0, 0], 0),
        with("negative", &[-1, 0], 0),
    ];
    let req = v2::Request {
        timeseries: series,
        symbols: st.into_symbols(),
    };
    let d = dec_v2(&req);
    let got: Vec<(&str, Vec<i64>)> = d
        .batch
        .series
        .iter()
        .map(|s| (s.labels.metric_name().unwrap(), s.start_timestamps.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("own", vec![5, 15]),
            ("created", vec![3, 3]),
            ("both", vec![3, 15]),
            ("none", vec![]),
            ("negative", vec![-1, 0]),
        ]
    );
    let slow =
        reference::decode_raw(Version::V2, &req.encode_to_vec(), &Limits::default()).unwrap();
    assert!(reference::equivalent(&d, &slow));
}

#[test]
fn unknown_fields_are_skipped() {
    let mut label = raw::label(b"__name__", b"m");
    raw::uint(9, 5, &mut label);
    let mut sample = Vec::new();
    raw::fixed64(1, 7f64.to_bits(), &mut sample);
    raw::key(5, 5, &mut sample); // fixed32 unknown
    sample.extend_from_slice(&[1, 2, 3, 4]);
    raw::uint(2, 42, &mut sample);
    let mut series = Vec::new();
    raw::len(1, &label, &mut series);
    raw::len(2, &sample, &mut series);
    raw::len(15, b"future field", &mut series);
    let mut body = Vec::new();
    raw::uint(2, 1, &mut body); // reserved field 2 (Cortex "source")
    raw::len(1, &series, &mut body);
    raw::key(7, 3, &mut body); // a group with a field inside
    raw::uint(1, 1, &mut body);
    raw::key(7, 4, &mut body);
    raw::fixed64(100, 0, &mut body);
    let d = dec_raw(Version::V1, &body).unwrap();
    assert_eq!(d.batch.series[0].labels, Labels::new(&[("__name__", "m")]));
    assert_eq!(d.batch.series[0].samples, vec![Sample::new(42, 7.0)]);
    assert!(proto::WriteRequest::decode(&body[..]).is_ok());
}

#[test]
fn a_v1_body_sent_as_v2_decodes_as_empty() {
    // Fields 1–3 are reserved in v2, so a v1 body is an empty v2 request
    // (the sender then sees zero written counts).
    let body = proto::encode_snappy(&v1(vec![ts(&[("__name__", "up")], &[(1, 1.0)])]));
    let d = decode(Some(CONTENT_TYPE_V2), None, &body, &Limits::default()).unwrap();
    assert_eq!(d.stats.series, 0);
    assert!(d.batch.series.is_empty());
}

#[test]
fn malformed_protobuf_is_a_400_naming_the_message() {
    let cases: Vec<(Version, Vec<u8>)> = vec![
        (Version::V1, vec![0x0a, 0x05, 0x01]),       // length overrun
        (Version::V1, vec![0x08, 0x01]),             // timeseries as a varint
        (Version::V1, vec![0x0a, 0x02, 0x12, 0x00]), // sample without... fine; then below
        (Version::V1, {
            let mut s = Vec::new();
            raw::uint(1, 1, &mut s); // Sample.value as varint instead of fixed64
            let mut t = Vec::new();
            raw::len(2, &s, &mut t);
            let mut b = Vec::new();
            raw::len(1, &t, &mut b);
            b
        }),
        (Version::V2, vec![0x22, 0x80]), // truncated varint
        (Version::V2, vec![0x2a, 0x02, 0x0a, 0x05]), // packed refs overrun
        (Version::V1, vec![0x0c]),       // stray end-group
    ];
    for (i, (version, body)) in cases.into_iter().enumerate() {
        let r = dec_raw(version, &body);
        if i == 2 {
            // An empty sample inside a nameless series: valid protobuf.
            assert!(r.is_ok());
            continue;
        }
        let e = r.expect_err(&format!("case {i}"));
        assert!(matches!(e, IngestError::Protobuf { .. }), "case {i}: {e:?}");
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("invalid protobuf "), "{e}");
    }
}

#[test]
fn a_malformed_label_past_the_label_limit_is_still_malformed_protobuf() {
    // Labels are parsed lazily (a series the reference cache knows is not
    // parsed at all), but every label field of a series that is parsed
    // is checked, also those past `max_labels_per_series`.
    let label = |name: &str, value: &str| {
        let mut l = Vec::new();
        raw::len(1, name.as_bytes(), &mut l);
        raw::len(2, value.as_bytes(), &mut l);
        l
    };
    let mut series = Vec::new();
    for (n, v) in [("__name__", "m"), ("a", "1"), ("b", "2")] {
        raw::len(1, &label(n, v), &mut series);
    }
    let mut bad = Vec::new();
    raw::uint(1, 7, &mut bad); // Label.name as a varint
    raw::len(1, &bad, &mut series);
    let mut body = Vec::new();
    raw::len(1, &series, &mut body);
    let limits = Limits {
        max_labels_per_series: 3,
        ..Limits::default()
    };
    let e = decode_raw(Version::V1, &body, &limits, None).expect_err("malformed");
    assert!(matches!(e, IngestError::Protobuf { .. }), "{e:?}");
}

#[test]
fn histograms_and_exemplars_are_counted_not_stored() {
    let hist = proto::Histogram {
        count: Some(proto::histogram::Count::CountInt(3)),
        sum: 1.5,
        schema: 3,
        positive_spans: vec![proto::BucketSpan {
            offset: -2,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        timestamp: 10,
        ..Default::default()
    };
    let mut with_hist = ts(&[("__name__", "h")], &[]);
    with_hist.histograms = vec![hist.clone(), hist];
    let mut with_ex = ts(&[("__name__", "c")], &[(10, 1.0)]);
    with_ex.exemplars = vec![proto::Exemplar {
        labels: proto::labels(&[("trace_id", "abc")]),
        value: 1.0,
        timestamp: 10,
    }];
    // Mixed: floats stored, 2xx.
    let d = dec_v1(&v1(vec![with_hist.clone(), with_ex]));
    assert_eq!(
        (d.stats.histograms, d.stats.exemplars, d.samples_to_write()),
        (2, 1, 1)
    );
    assert_eq!(
        d.batch.series.len(),
        1,
        "histogram-only series adds nothing to the batch"
    );
    assert!(d.rejection().is_none());
    // Only histograms: nothing can be stored → 400 that says why.
    let d = dec_v1(&v1(vec![with_hist]));
    let e = d.rejection().unwrap();
    assert!(matches!(
        e,
        IngestError::NothingStorable {
            histograms: 2,
            exemplars: 0
        }
    ));
    assert_eq!(e.status(), 400);
    assert!(
        e.to_string().contains("does not store native histograms"),
        "{e}"
    );
}

#[test]
fn series_and_label_limits() {
    let limits = Limits {
        max_series_per_request: 2,
        ..Limits::default()
    };
    let req = v1((0..3)
        .map(|i| ts(&[("__name__", &format!("m{i}"))], &[(1, 1.0)]))
        .collect());
    let body = proto::encode_snappy(&req);
    let e = decode(None, None, &body, &limits).unwrap_err();
    assert!(
        matches!(e, IngestError::TooManySeries { limit: 2 }),
        "{e:?}"
    );
    assert_eq!(e.status(), 400);
    let mut st = v2::SymbolTable::new();
    let series = (0..3)
        .map(|i| v2_series(&mut st, &[("__name__", &format!("m{i}"))], &[(1, 1.0)]))
        .collect();
    let body = proto::encode_snappy(&v2::Request {
        timeseries: series,
        symbols: st.into_symbols(),
    });
    let e = decode(Some(CONTENT_TYPE_V2), None, &body, &limits).unwrap_err();
    assert!(
        matches!(e, IngestError::TooManySeries { limit: 2 }),
        "{e:?}"
    );

    let limits = Limits {
        max_labels_per_series: 3,
        ..Limits::default()
    };
    let many: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("l{i}"), "v".to_string()))
        .collect();
    let mut pairs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    pairs.push(("__name__", "wide"));
    let body = proto::encode_snappy(&v1(vec![ts(&pairs, &[(1, 1.0)])]));
    let d = decode(None, None, &body, &limits).unwrap();
    assert!(
        matches!(
            &d.invalid.errors[..],
            [SeriesError::TooManyLabels {
                count: 1001,
                limit: 3,
                ..
            }]
        ),
        "{:?}",
        d.invalid
    );
    let mut st = v2::SymbolTable::new();
    let series = vec![v2_series(&mut st, &pairs, &[(1, 1.0)])];
    let body = proto::encode_snappy(&v2::Request {
        timeseries: series,
        symbols: st.into_symbols(),
    });
    let d = decode(Some(CONTENT_TYPE_V2), None, &body, &limits).unwrap();
    assert!(
        matches!(
            &d.invalid.errors[..],
            [SeriesError::TooManyLabels {
                count: 1001,
                limit: 3,
                ..
            }]
        ),
        "{:?}",
        d.invalid
    );
}

#[test]
fn body_limit_is_413() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let e = decode(None, None, &[0u8; 11], &limits).unwrap_err();
    assert!(matches!(e, IngestError::BodyTooLarge { limit: 10 }));
    assert_eq!(e.status(), 413);
}

#[test]
fn zstd_bodies_decode_like_snappy() {
    let req = v1(vec![ts(&[("__name__", "up")], &[(5, 1.0)])]);
    let body = proto::zstd_compress(&req.encode_to_vec());
    let d = decode(
        Some("application/x-protobuf"),
        Some("zstd"),
        &body,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(d.batch.series[0].samples, vec![Sample::new(5, 1.0)]);
}

// ---- differential: streaming decoder vs prost-based reference ----

fn label_strategy() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just("__name__".to_string()),
            Just("job".to_string()),
            Just("".to_string()),
            "[a-c]{1,2}"
        ],
        prop_oneof![Just(String::new()), "[a-z0-9]{1,3}", Just("é€".to_string())],
    )
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::from_bits(STALE_NAN)),
        Just(-0.0),
        Just(f64::INFINITY),
    ]
}

prop_compose! {
    fn v1_series_strategy()(
        labels in prop::collection::vec(label_strategy(), 0..5),
        samples in prop::collection::vec((any::<i64>(), value_strategy()), 0..3),
        histograms in 0usize..2,
        exemplars in 0usize..2,
    ) -> proto::TimeSeries {
        proto::TimeSeries {
            labels: labels.into_iter().map(|(n, v)| proto::Label { name: n, value: v }).collect(),
            samples: samples.into_iter().map(|(timestamp, value)| proto::Sample { value, timestamp }).collect(),
            histograms: vec![proto::Histogram { sum: 1.0, ..Default::default() }; histograms],
            exemplars: vec![proto::Exemplar { value: 1.0, ..Default::default() }; exemplars],
        }
    }
}

prop_compose! {
    fn v2_request_strategy()(
        symbols in prop::collection::vec(prop_oneof![Just("__name__".to_string()), "[a-c]{0,2}"], 0..6),
        series in prop::collection::vec((
            prop::collection::vec(0u32..9, 0..7),
            prop::collection::vec((any::<i64>(), value_strategy(), prop_oneof![Just(0i64), any::<i64>()]), 0..3),
            0usize..2,
            prop::option::of((0i32..9, 0u32..8, 0u32..8)),
            prop_oneof![Just(0i64), any::<i64>()],
        ), 0..6),
        first_empty in prop::bool::weighted(0.9),
    ) -> v2::Request {
        let mut symbols = symbols;
        if first_empty { symbols.insert(0, String::new()); }
        v2::Request {
            symbols,
            timeseries: series.into_iter().map(|(refs, samples, hists, meta, created)| v2::TimeSeries {
                labels_refs: refs,
                samples: samples.into_iter().map(|(timestamp, value, start_timestamp)| v2::Sample { value, timestamp, start_timestamp }).collect(),
                histograms: vec![v2::Histogram::default(); hists],
                exemplars: vec![],
                metadata: meta.map(|(t, h, u)| v2::Metadata { r#type: t, help_ref: h, unit_ref: u }),
                created_timestamp: created,
            }).collect(),
        }
    }
}

fn check_equivalent(version: Version, raw: &[u8], limits: &Limits) {
    let slow = reference::decode_raw(version, raw, limits);
    let fast = reference::decode_raw_streaming(version, raw, limits);
    if let Ok(d) = &fast {
        reference::check_invariants(d, limits).unwrap();
    }
    match (slow, fast) {
        (Ok(a), Ok(b)) => assert!(reference::equivalent(&a, &b), "{a:#?}\n!=\n{b:#?}"),
        (Err(a), Err(b)) => assert_eq!(a.status(), b.status()),
        (Ok(a), Err(b)) => panic!("reference ok {a:?}, streaming failed: {b}"),
        (Err(_), Ok(_)) => {} // the reference is stricter (see its docs)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn streaming_v1_matches_reference(
        series in prop::collection::vec(v1_series_strategy(), 0..8),
        max_labels in 1usize..6,
    ) {
        let limits = Limits { max_labels_per_series: max_labels, max_series_per_request: 6, ..Limits::default() };
        check_equivalent(Version::V1, &v1(series).encode_to_vec(), &limits);
    }

    #[test]
    fn streaming_v2_matches_reference(req in v2_request_strategy(), max_labels in 1usize..4) {
        let limits = Limits { max_labels_per_series: max_labels, ..Limits::default() };
        check_equivalent(Version::V2, &req.encode_to_vec(), &limits);
    }

    #[test]
    fn truncated_and_corrupted_bodies_never_panic(
        series in prop::collection::vec(v1_series_strategy(), 1..4),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        v2 in any::<bool>(),
    ) {
        let mut raw = v1(series).encode_to_vec();
        let i = flip.index(raw.len());
        raw[i] ^= 0x5a;
        raw.truncate(cut.index(raw.len() + 1));
        let version = if v2 { Version::V2 } else { Version::V1 };
        check_equivalent(version, &raw, &Limits::default());
    }
}
