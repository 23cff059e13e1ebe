//! Disk usage of a directory tree, like `du -sb` (apparent) and `du -s` (allocated).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Sizes of a directory tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Sum of file lengths (`du -sb`).
    pub apparent_bytes: u64,
    /// Allocated blocks × 512 (`du -s --block-size=1`); includes preallocation.
    pub allocated_bytes: u64,
    /// Apparent bytes per top-level entry.
    pub breakdown: BTreeMap<String, u64>,
    pub files: u64,
}

/// Measure `dir` (symlinks are not followed; hard links are counted each time).
pub fn measure(dir: &Path) -> std::io::Result<DiskUsage> {
    let mut du = DiskUsage::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let mut part = DiskUsage::default();
        walk(&entry.path(), &mut part)?;
        du.apparent_bytes += part.apparent_bytes;
        du.allocated_bytes += part.allocated_bytes;
        du.files += part.files;
        du.breakdown.insert(
            entry.file_name().to_string_lossy().into_owned(),
            part.apparent_bytes,
        );
    }
    Ok(du)
}

fn walk(p: &Path, du: &mut DiskUsage) -> std::io::Result<()> {
    let md = match fs::symlink_metadata(p) {
        Ok(m) => m,
        // Files may vanish while a server cleans up; they no longer use space.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if md.is_dir() {
        let rd = match fs::read_dir(p) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for e in rd {
            walk(&e?.path(), du)?;
        }
    } else if md.is_file() {
        du.apparent_bytes += md.len();
        du.allocated_bytes += md.blocks() * 512;
        du.files += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_files_per_top_level_entry() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("wal/sub")).unwrap();
        fs::write(d.path().join("wal/a"), vec![0u8; 1000]).unwrap();
        fs::write(d.path().join("wal/sub/b"), vec![0u8; 24]).unwrap();
        fs::write(d.path().join("meta"), b"xyz").unwrap();
        let du = measure(d.path()).unwrap();
        assert_eq!(du.apparent_bytes, 1027);
        assert_eq!(du.files, 3);
        assert_eq!(du.breakdown["wal"], 1024);
        assert_eq!(du.breakdown["meta"], 3);
        assert!(du.allocated_bytes > 0);
    }
}
