#![no_main]
//! Fuzz target: arbitrary bytes as a WAL segment (with and without a valid
//! header) and as record payloads. Reading must never panic; decoded
//! sample and start-timestamp records must re-encode to the same records.
use libfuzzer_sys::fuzz_target;

use engine::wal::{self, Record};

fuzz_target!(|data: &[u8]| {
    if let Some((&typ, payload)) = data.split_first() {
        match wal::decode_record(typ % 6, payload) {
            Some(Record::Samples(s)) if !s.is_empty() => {
                let mut buf = Vec::new();
                wal::encode_samples(&mut buf, &s);
                assert_eq!(wal::decode_record(buf[8], &buf[9..]), Some(Record::Samples(s)));
            }
            Some(Record::Starts(s)) if !s.is_empty() => {
                let mut buf = Vec::new();
                wal::encode_starts(&mut buf, &s);
                assert_eq!(wal::decode_record(buf[8], &buf[9..]), Some(Record::Starts(s)));
            }
            _ => {}
        }
    }
    let dir = std::env::temp_dir().join(format!("silt-fuzz-wal-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("0000000000000001");
    let mut file = Vec::with_capacity(data.len() + 16);
    if data.first().is_some_and(|b| b & 1 == 0) {
        file.extend_from_slice(wal::SEGMENT_MAGIC);
        file.extend_from_slice(&wal::FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(&[0; 4]);
    }
    file.extend_from_slice(data);
    std::fs::write(&path, &file).unwrap();
    let _ = wal::read_segment(&path, &mut |_| Ok(()));
});
