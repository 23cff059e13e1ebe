//! Times `query::api::gzip::gzip` on a file (a saved query answer):
//! `cargo run --release -p query --example gzip_speed -- FILE [THREADS]`.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a file to compress");
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("threads"));
    let body = std::fs::read(&path).expect("readable file");
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..50 {
        let t = Instant::now();
        size = query::api::gzip::gzip(&body, threads).len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} bytes -> {size} on {threads} threads: median {:.3} ms, min {:.3} ms",
        body.len(),
        times[times.len() / 2],
        times[0]
    );
}
