//! Times opening a data folder: blocks, head checkpoint, WAL replay (the
//! restart time the ingest benchmark reports, without the HTTP server).
//! Opening changes the folder (it may cut a torn WAL tail, drop covered
//! segments), so run it on a copy.
//! `cargo run --release -p engine --example replay_time -- DIR`

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: replay_time DIR");
    let mut opts = engine::Options::new(&dir);
    opts.background = false;
    opts.checkpoint_on_close = false;
    let mut registry = prometheus_client::registry::Registry::default();
    let t0 = std::time::Instant::now();
    let db = engine::Db::open(opts, &mut registry).expect("open");
    println!("open took {:.3} s", t0.elapsed().as_secs_f64());
    drop(db);
}
