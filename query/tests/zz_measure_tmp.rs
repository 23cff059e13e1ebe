//! Temporary measurement (deleted after use).
use std::time::Instant;
use axum::body::Body;
use axum::http::Request;
use engine::{Db, Labels, Options, Sample, SeriesSamples, WriteBatch};
use query::api::{routes, Api, ApiOptions};
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread")]
async fn measure() {
    let inputs = [
        "up",
        r#"http_requests_total{job="api-server", instance=~"10\\.0\\.0\\.[0-9]+:9090", code!~"5..", method="GET"}"#,
        r#"{"http.server.duration", "service.name"="checkout", le!=""}"#,
    ];
    let n = 20_000;
    let t = Instant::now();
    for i in 0..n {
        let _ = query::promql::parse_selector(inputs[i % 3]).unwrap();
    }
    let el = t.elapsed();
    println!("parse: {:.1} us/selector (mixed, incl. regex compile)", el.as_secs_f64() * 1e6 / n as f64);

    let dir = tempfile::tempdir().unwrap();
    let mut reg = prometheus_client::registry::Registry::default();
    let db = Db::open(Options::new(dir.path()), &mut reg).unwrap();
    let t0 = 1_700_000_000_000i64;
    let series: Vec<SeriesSamples> = (0..1000)
        .map(|s| SeriesSamples {
            labels: Labels::new(&[("__name__", "m"), ("instance", &format!("host-{s}")), ("job", "node")]),
            samples: (0..1000).map(|i| Sample::new(t0 + i * 15_000, (i * s) as f64 * 0.37)).collect(),
        })
        .collect();
    db.append(&WriteBatch { series, metadata: vec![] }).unwrap().wait().await.unwrap();
    {
        let t = Instant::now();
        let q = db.querier(i64::MIN, i64::MAX);
        let sel = q.select(&[engine::Matcher::equal("__name__", "m")]).unwrap();
        let mut out = Vec::new();
        let mut total = 0;
        for e in &sel { out.clear(); q.samples(e, i64::MIN, i64::MAX, &mut out).unwrap(); total += out.len(); }
        println!("engine read only: {total} samples in {:?}", t.elapsed());
        let t = Instant::now();
        let mut buf = Vec::new();
        for i in 0..1_000_000u64 { buf.clear(); query::api::format::write_export_value(&mut buf, (i as f64) * 0.37); }
        println!("format only: 1M values in {:?}", t.elapsed());
    }
    let router = routes(Api::new(db, ApiOptions::default()));
    for _ in 0..2 {
        let t = Instant::now();
        let resp = router.clone().oneshot(Request::get("/api/v1/export?match[]=m").body(Body::empty()).unwrap()).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let el = t.elapsed();
        println!("export 1000x1000 samples: {} bytes in {:?} = {:.1} Msamples/s, {:.1} MB/s", bytes.len(), el, 1e6 / el.as_secs_f64() / 1e6, bytes.len() as f64 / el.as_secs_f64() / 1e6);
        let t = Instant::now();
        let resp = router.clone().oneshot(Request::get("/api/v1/series?match[]=m").body(Body::empty()).unwrap()).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        println!("series 1000: {} bytes in {:?}", bytes.len(), t.elapsed());
        let t = Instant::now();
        let resp = router.clone().oneshot(Request::get("/api/v1/label/instance/values").body(Body::empty()).unwrap()).await.unwrap();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        println!("label values 1000: {} bytes in {:?}", bytes.len(), t.elapsed());
    }
}
