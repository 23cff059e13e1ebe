//! Criterion micro-benchmark of the answers' gzip (`query::api::gzip`):
//! range answers of 24 series × 1,441 points (a 24 h panel at a 60 s
//! step, about 1.3 MB of JSON, 16 KiB pieces) and of 10 series × 361
//! points (a 6 h `topk`, about 135 kB, 8 KiB pieces), deflated on one and
//! on two threads. The compressed sizes are printed once on stderr.
//!
//! Run with `cargo bench -p query --bench gzip`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use query::api::gzip::gzip;

/// The JSON of a range answer in Prometheus's shape, with values of
/// many digits (rates), as dashboards get them.
fn answer(series: usize, points: u64) -> Vec<u8> {
    let mut s = String::from(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for i in 0..series {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, r#"{{"metric":{{"instance":"host-{i}:9100"}},"values":["#);
        for j in 0..points {
            if j > 0 {
                s.push(',');
            }
            let t = 1_796_220_136.493 + j as f64 * 60.0;
            let v = ((i * 7 + j as usize) as f64).sin().abs() * 3.7 + i as f64 / 13.0;
            let _ = write!(s, r#"[{t:.3},"{v}"]"#);
        }
        s.push_str("]}");
    }
    s.push_str("]}}");
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gzip");
    g.measurement_time(Duration::from_secs(3));
    for (name, body) in [
        ("range-answer", answer(24, 1_441)),
        ("topk-answer", answer(10, 361)),
        ("count-answer", answer(2, 361)),
    ] {
        eprintln!(
            "gzip {name}: {} bytes of JSON -> {} bytes",
            body.len(),
            gzip(&body, 1).len()
        );
        g.throughput(Throughput::Bytes(body.len() as u64));
        for threads in [1, 2] {
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &t| {
                b.iter(|| gzip(black_box(&body), t))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
