#![no_main]
//! Fuzz target: arbitrary bytes as a head checkpoint file (with and
//! without a valid header). Reading must never panic: damage is an
//! `Error::Corruption`, and the engine then replays the whole WAL.
use libfuzzer_sys::fuzz_target;

use engine::checkpoint;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("silt-fuzz-ckpt-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("checkpoint");
    let mut file = Vec::with_capacity(data.len() + checkpoint::HEADER_LEN);
    if data.first().is_some_and(|b| b & 1 == 0) && !data.starts_with(checkpoint::MAGIC) {
        file.extend_from_slice(checkpoint::MAGIC);
        file.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(&[0; 4]);
    }
    file.extend_from_slice(data);
    std::fs::write(&path, &file).unwrap();
    let mut series = 0u64;
    let result = checkpoint::read(
        &path,
        &mut |_| Ok(()),
        &mut |_, labels, chunks| {
            // What was handed over must be usable: every chunk decodes
            // without panics (a checksum-valid chunk may still be garbage).
            std::hint::black_box(labels.len());
            let (sealed, open, ooo_chunks, ooo) = chunks.parts();
            let n: usize = sealed.iter().chain([open]).map(|c| c.iter().count()).sum::<usize>()
                + ooo_chunks.iter().map(|c| c.iter().count()).sum::<usize>()
                + ooo.len();
            std::hint::black_box(n);
            series += 1;
            Ok(())
        },
        &mut |_| {},
    );
    if let Ok(loaded) = result {
        assert_eq!(loaded.series, series);
    }
});
