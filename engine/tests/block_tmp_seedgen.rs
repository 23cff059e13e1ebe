//! Temporary: writes the block_open fuzz fixture's block for seeds.
use engine::block::{BlockWriteOptions, write_block};
use engine::{Labels, STALE_NAN, Sample};
#[test]
fn gen() {
    let root = std::path::Path::new("/tmp/seedgen");
    let mut series: Vec<(Labels, Vec<Sample>)> = (0..12)
        .map(|i| {
            let labels = Labels::new(&[("__name__", "m"), ("i", &format!("{i:02}")), ("job", if i % 2 == 0 { "a" } else { "b" })]);
            let samples = (0..(20 + i * 30))
                .map(|j| {
                    let v = if j % 17 == 0 { f64::from_bits(STALE_NAN) } else { (i * j) as f64 * 0.25 };
                    Sample::new(1_000 + j as i64 * 15_000 + (j as i64 % 3), v)
                })
                .collect();
            (labels, samples)
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = write_block(root, &BlockWriteOptions::default(), series.into_iter().map(Ok)).unwrap().unwrap();
    println!("{}", meta.id);
}
