//! Query results as Prometheus writes them: `{"resultType":...,"result":...}`
//! with values as strings (`"1"`, `"1e-07"`, `"NaN"`, `"+Inf"`), vector and
//! matrix timestamps as seconds with exactly three decimals when not whole
//! (`1435781451.050`), scalar and string timestamps as Go's `encoding/json`
//! prints `float64(t)/1000` (shortest form: `1435781451.05`), and scalars'
//! values in plain `'f'` form. Written by hand into a buffer: results can be
//! large, and these formats are not serde's.

use std::fmt::Write as _;

use engine::Labels;

use super::format::{write_timestamp, write_value};
use super::gzip::PieceWriter;
use crate::eval::{QueryStats, Value};
use crate::gofmt;

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
    }
    out.push('}');
}

/// `[<ts>,"<value>"]` of a vector or matrix point.
fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

/// `float64(t)/1000` as Go's `encoding/json` writes it.
fn push_go_seconds(out: &mut String, t: i64) {
    let secs = t as f64 / 1000.0;
    // Within i64 milliseconds |secs| < 1e16, so Go never switches to
    // exponent form here except for values below 1e-6, i.e. zero.
    let _ = write!(out, "{secs}");
}

/// About how many bytes [`push_result`] writes for `value`, to size the
/// buffer once, erring high: a point takes up to about 40 bytes
/// (`[1764590400.123,"1234.5678901234567"],`: computed values print all
/// 17 digits), a label set about 150. Running short costs a copy of the
/// whole body into a buffer twice the size; reserving more than is written
/// costs only address space (untouched pages are never faulted in).
pub fn result_len_hint(value: &Value) -> usize {
    match value {
        Value::Scalar(..) | Value::String(..) => 64,
        Value::Vector(v) => v.len() * 200,
        Value::Matrix(m) => m.iter().map(|s| 160 + s.points.len() * 48).sum::<usize>(),
    }
}

/// Series (or vector samples), and points of each series, that
/// [`result_len_estimate`] writes out.
const ESTIMATE_SAMPLES: usize = 8;

/// About how many bytes [`push_result`] writes for `value`, without
/// [`result_len_hint`]'s margin: a few series (or samples) spread over the
/// result, and a few points of each, are written out to find how long
/// their label sets and points are, and the rest are taken to be alike.
/// For choosing how to compress an answer, where the margin would mislead:
/// a 6 h `count by (job)` (722 points of small whole numbers, 17 kB) had
/// a hint of 35 kB.
pub fn result_len_estimate(value: &Value) -> usize {
    let mut scratch = String::new();
    let mut len = |write: &dyn Fn(&mut String)| {
        scratch.clear();
        write(&mut scratch);
        scratch.len()
    };
    match value {
        Value::Scalar(..) | Value::String(..) => 64,
        Value::Vector(v) => {
            let sampled = spread(v.len()).map(|i| {
                let s = &v[i];
                len(&|o| {
                    push_labels(o, &s.labels);
                    push_point(o, s.t, s.v);
                }) + r#"{"metric":,"value":},"#.len()
            });
            mean(sampled) * v.len()
        }
        Value::Matrix(m) => {
            let (mut labels, mut points) = (Vec::new(), Vec::new());
            for i in spread(m.len()) {
                let s = &m[i];
                labels.push(
                    len(&|o| push_labels(o, &s.labels)) + r#"{"metric":,"values":[]},"#.len(),
                );
                for j in spread(s.points.len()) {
                    let p = s.points[j];
                    points.push(len(&|o| push_point(o, p.t, p.v)) + ",".len());
                }
            }
            let all: usize = m.iter().map(|s| s.points.len()).sum();
            mean(labels) * m.len() + mean(points) * all
        }
    }
}

/// Up to [`ESTIMATE_SAMPLES`] indexes spread evenly over `0..n`.
fn spread(n: usize) -> impl Iterator<Item = usize> {
    let k = ESTIMATE_SAMPLES.min(n);
    (0..k).map(move |j| j * n / k)
}

/// The mean of `xs` (0 if none).
fn mean(xs: impl IntoIterator<Item = usize>) -> usize {
    let (sum, n) = xs.into_iter().fold((0, 0), |(s, n), x| (s + x, n + 1));
    sum / n.max(1)
}

/// Where a result is written: a plain buffer, or a [`PieceWriter`], whose
/// pieces are deflated while the rest is written.
pub trait ResultOut {
    /// The buffer to append to.
    fn buf(&mut self) -> &mut String;

    /// A place between series (or points) where the text may be cut.
    fn boundary(&mut self) {}
}

impl ResultOut for String {
    fn buf(&mut self) -> &mut String {
        self
    }
}

impl ResultOut for PieceWriter<'_> {
    fn buf(&mut self) -> &mut String {
        PieceWriter::buf(self)
    }

    fn boundary(&mut self) {
        PieceWriter::boundary(self);
    }
}

/// Points written between [`ResultOut::boundary`] calls within one series:
/// 2-5 kB of JSON, so that gzip pieces end close to their length
/// ([`super::gzip::piece_len`], 8-16 KiB) at the first boundary past it.
const POINTS_PER_BOUNDARY: usize = 128;

/// Appends `"resultType":"...","result":...` (no braces).
pub fn push_result<O: ResultOut + ?Sized>(o: &mut O, value: &Value) {
    let out = o.buf();
    out.push_str("\"resultType\":\"");
    out.push_str(value.type_name());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar(t, v) => {
            out.push('[');
            push_go_seconds(out, *t);
            out.push(',');
            push_str(out, &gofmt::format_float_f(*v));
            out.push(']');
        }
        Value::String(t, s) => {
            out.push('[');
            push_go_seconds(out, *t);
            out.push(',');
            push_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                let out = o.buf();
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                out.push_str(",\"value\":");
                push_point(out, s.t, s.v);
                out.push('}');
                o.boundary();
            }
            o.buf().push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                let out = o.buf();
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                if !s.points.is_empty() {
                    out.push_str(",\"values\":[");
                    for (k, run) in s.points.chunks(POINTS_PER_BOUNDARY).enumerate() {
                        let out = o.buf();
                        for (j, p) in run.iter().enumerate() {
                            if k > 0 || j > 0 {
                                out.push(',');
                            }
                            push_point(out, p.t, p.v);
                        }
                        o.boundary();
                    }
                    o.buf().push(']');
                }
                o.buf().push('}');
                o.boundary();
            }
            o.buf().push(']');
        }
    }
}

/// Seconds as a JSON number.
fn push_secs(out: &mut String, d: std::time::Duration) {
    let _ = write!(out, "{}", d.as_secs_f64());
}

/// Appends `,"stats":{...}` in Prometheus's shape (`timings` in seconds,
/// `samples`). Per-step statistics (`stats=all`) are not collected.
pub fn push_stats(out: &mut String, stats: &QueryStats, timings: &super::limits::Timings) {
    out.push_str(",\"stats\":{\"timings\":{\"evalTotalTime\":");
    push_secs(out, timings.eval);
    out.push_str(",\"resultSortTime\":0,\"queryPreparationTime\":0,\"innerEvalTime\":");
    push_secs(out, timings.eval);
    out.push_str(",\"execQueueTime\":");
    push_secs(out, timings.queue);
    out.push_str(",\"execTotalTime\":");
    push_secs(out, timings.queue + timings.eval);
    let _ = write!(
        out,
        "}},\"samples\":{{\"totalQueryableSamples\":{},\"samplesRead\":{},\"peakSamples\":{}}}}}",
        stats.samples_loaded, stats.samples_loaded, stats.peak_samples
    );
}

/// A matrix of `series` series `m{instance="host-<i>"}` with `points`
/// points `step_ms` apart and values with long decimal expansions, for
/// tests of long answers.
#[cfg(test)]
pub(crate) fn test_matrix(series: usize, points: i64, step_ms: i64) -> Value {
    Value::Matrix(
        (0..series)
            .map(|i| {
                let host = format!("host-{i}");
                crate::eval::Series::new(
                    Labels::new(&[("__name__", "m"), ("instance", host.as_str())]),
                    (0..points)
                        .map(|j| engine::Sample::new(j * step_ms, (i as i64 * j) as f64 / 7.0))
                        .collect(),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Sample, Series};
    use engine::Sample as Point;

    fn render(v: &Value) -> String {
        let mut s = String::new();
        push_result(&mut s, v);
        s
    }

    /// Within a quarter of the written length, where the hint (sized to
    /// err high) can be twice it.
    #[test]
    fn estimates_come_close_to_the_written_length() {
        // `count by (job) (up)` over 6 h: small whole numbers.
        let counts = Value::Matrix(
            ["node", "blackbox"]
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let points = (0..361)
                        .map(|j| Point::new(1_796_510_436_005 + j * 60_000, (24 + 176 * i) as f64))
                        .collect();
                    Series::new(Labels::new(&[("job", job)]), points)
                })
                .collect(),
        );
        // Labels of very different lengths, a few points each.
        let uneven = Value::Matrix(
            (0..50)
                .map(|i| {
                    let long = "x".repeat(i * 7);
                    let labels = Labels::new(&[("a", long.as_str())]);
                    Series::new(labels, vec![Point::new(i as i64 * 1000, 0.5); 1 + i % 4])
                })
                .collect(),
        );
        let vector = Value::Vector(
            (0..300)
                .map(|i| Sample {
                    labels: Labels::new(&[("instance", format!("host-{i}:9100").as_str())]),
                    t: 1_796_510_436_005,
                    v: i as f64 / 3.0,
                })
                .collect(),
        );
        for (name, v) in [
            ("counts", counts),
            ("rates", test_matrix(24, 1441, 60_000)),
            ("uneven", uneven),
            ("vector", vector),
        ] {
            let written = render(&v).len();
            let est = result_len_estimate(&v);
            assert!(
                est * 4 >= written * 3 && est * 4 <= written * 5,
                "{name}: estimate {est} for {written} bytes"
            );
        }
        let counts_hint = result_len_hint(&Value::Matrix(vec![
            Series::new(
                Labels::default(),
                vec![Point::new(0, 24.0); 361]
            );
            2
        ]));
        assert!(counts_hint > 30_000, "{counts_hint}: the hint errs high");
        for empty in [Value::Matrix(vec![]), Value::Vector(vec![])] {
            assert_eq!(result_len_estimate(&empty), 0);
        }
    }

    #[test]
    fn scalars_and_strings_use_go_float_seconds() {
        assert_eq!(
            render(&Value::Scalar(4000, 2.0)),
            r#""resultType":"scalar","result":[4,"2"]"#
        );
        assert_eq!(
            render(&Value::Scalar(1_435_781_451_050, 1e-7)),
            r#""resultType":"scalar","result":[1435781451.05,"0.0000001"]"#
        );
        assert_eq!(
            render(&Value::Scalar(-1500, f64::NEG_INFINITY)),
            r#""resultType":"scalar","result":[-1.5,"-Inf"]"#
        );
        assert_eq!(
            render(&Value::String(0, "a\"\n\u{1}é".into())),
            r#""resultType":"string","result":[0,"a\"\n\u0001é"]"#
        );
    }

    #[test]
    fn vectors_and_matrices() {
        let l = Labels::new(&[("__name__", "up"), ("job", "a")]);
        let v = Value::Vector(vec![
            Sample {
                labels: l.clone(),
                t: 1_435_781_451_050,
                v: f64::NAN,
            },
            Sample {
                labels: Labels::default(),
                t: 1000,
                v: 1e21,
            },
        ]);
        assert_eq!(
            render(&v),
            r#""resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1435781451.050,"NaN"]},{"metric":{},"value":[1,"1e+21"]}]"#
        );
        let m = Value::Matrix(vec![
            Series::new(
                l,
                vec![Point::new(1000, 1.0), Point::new(2500, f64::INFINITY)],
            ),
            Series::new(Labels::default(), vec![]),
        ]);
        assert_eq!(
            render(&m),
            r#""resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1,"1"],[2.500,"+Inf"]]},{"metric":{}}]"#
        );
        let mut s = String::from("{");
        push_result(&mut s, &Value::Matrix(vec![]));
        s.push('}');
        assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok());
    }

    #[test]
    fn gzipped_pieces_inflate_to_the_plain_text() {
        use std::io::Read;
        let m = super::test_matrix(300, 400, 15_000);
        let plain = render(&m);
        assert!(plain.len() > 4 * super::super::gzip::PIECE);
        for threads in [1, 2] {
            let gz = super::super::gzip::gzip_written(threads, plain.len(), |w| push_result(w, &m));
            let mut back = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut back)
                .unwrap();
            assert_eq!(back, plain, "threads {threads}");
        }
    }

    #[test]
    fn long_series_end_pieces_near_their_length() {
        // A 24 h panel: 24 series of 1,441 points, rates of many digits.
        let m = super::test_matrix(24, 1_441, 60_000);
        let plain = render(&m);
        let piece = super::super::gzip::piece_len(plain.len());
        let pieces = super::super::gzip::written_pieces(plain.len(), |w| push_result(w, &m));
        assert_eq!(pieces.iter().sum::<usize>(), plain.len());
        let (last, whole) = pieces.split_last().unwrap();
        assert!(*last <= piece + 6_000, "{last}");
        for &p in whole {
            assert!((piece..piece + 6_000).contains(&p), "{p} for {piece}");
        }
    }

    #[test]
    fn stats_shape() {
        let mut s = String::from("{\"x\":1");
        push_stats(
            &mut s,
            &QueryStats {
                samples_loaded: 7,
                series_touched: 2,
                peak_samples: 3,
            },
            &super::super::limits::Timings::default(),
        );
        s.push('}');
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["stats"]["samples"]["totalQueryableSamples"], 7);
        assert_eq!(v["stats"]["samples"]["peakSamples"], 3);
        assert_eq!(v["stats"]["timings"]["execQueueTime"], 0.0);
    }
}
