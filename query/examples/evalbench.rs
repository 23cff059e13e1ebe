//! Times PromQL queries against an existing data directory without HTTP:
//! opens it read-mostly (no background compaction), runs every query of a
//! JSON list (the query benchmark's queries, as
//! `[{"name", "variant", "expr", "eval": {"type": "instant", "time_ms"} |
//! {"type": "range", "start_ms", "end_ms", "step_ms"}}]`) a warm-up plus
//! `reps` times, prints the median and minimum, and optionally writes the
//! answers (labels, timestamps, shortest round-trip values) as JSON.
//! `cargo run --release -p query --example evalbench -- <data-dir> <queries.json> [reps] [filter,...] [answers.json]`
//! Copy the data directory first: opening it replays and truncates the WAL.
//! `SILT_BLOCK_CACHE_BYTES` sets the decoded-page cache budget (0: off).

use std::sync::Arc;
use std::time::Instant;

use engine::{Db, Options};
use prometheus_client::registry::Registry;
use query::eval::{QueryOptions, Value, instant_query, range_query};
use serde_json::{Value as Json, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().expect("data dir");
    let queries: Json =
        serde_json::from_slice(&std::fs::read(args.get(1).expect("queries.json")).unwrap())
            .unwrap();
    let reps: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let filter: Vec<&str> = args
        .get(3)
        .map(|f| f.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let mut o = Options::new(dir);
    o.background = false;
    o.retention = None;
    // `SILT_BLOCK_CACHE_BYTES=0` measures reads without the decoded-page cache.
    if let Some(b) = std::env::var("SILT_BLOCK_CACHE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        o.block_cache_bytes = b;
    }
    let db: Arc<Db> = Db::open(o, &mut Registry::default()).unwrap();
    let mut opts = QueryOptions::default();
    opts.engine.max_samples = 2_000_000_000;
    let mut answers = serde_json::Map::new();
    for q in queries.as_array().unwrap() {
        let key = format!(
            "{} ({})",
            q["name"].as_str().unwrap(),
            q["variant"].as_str().unwrap()
        );
        if !filter.is_empty() && !filter.iter().any(|f| key.contains(f)) {
            continue;
        }
        let expr = query::promql::parse(q["expr"].as_str().unwrap()).unwrap();
        let e = &q["eval"];
        let run = || {
            let i = |k: &str| e[k].as_i64().unwrap();
            if e["type"] == "instant" {
                instant_query(&db, &expr, i("time_ms"), &opts)
            } else {
                range_query(&db, &expr, i("start_ms"), i("end_ms"), i("step_ms"), &opts)
            }
            .unwrap()
        };
        let mut value = run().value;
        let mut times = Vec::new();
        for _ in 0..reps {
            let t0 = Instant::now();
            value = run().value;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{key:34} {:9.1} ms  (min {:.1})",
            times[times.len() / 2],
            times[0]
        );
        answers.insert(key, to_json(&value));
    }
    if let Some(path) = args.get(4) {
        std::fs::write(path, serde_json::to_vec(&answers).unwrap()).unwrap();
    }
}

fn to_json(v: &Value) -> Json {
    let labels = |l: &engine::Labels| {
        l.iter()
            .map(|l| (l.name.to_string(), Json::from(l.value.as_str())))
            .collect::<serde_json::Map<_, _>>()
    };
    match v {
        Value::Matrix(m) => Json::Array(
            m.iter()
                .map(|s| {
                    let pts: Vec<Json> = s
                        .points
                        .iter()
                        .map(|p| json!([p.t, format!("{:?}", p.v)]))
                        .collect();
                    json!({"metric": labels(&s.labels), "values": pts})
                })
                .collect(),
        ),
        Value::Vector(vs) => Json::Array(
            vs.iter()
                .map(|s| json!({"metric": labels(&s.labels), "value": [s.t, format!("{:?}", s.v)]}))
                .collect(),
        ),
        Value::Scalar(t, x) => json!([t, format!("{x:?}")]),
        Value::String(t, s) => json!([t, s]),
    }
}
