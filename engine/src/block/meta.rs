//! `meta.json`: a block's self-description, written last and checksummed.
//!
//! The checksum is CRC-32C over the *canonical* JSON of the object without
//! its `checksum` member: no insignificant whitespace, members of every object
//! sorted by key (bytewise), integers in plain decimal, `null` as `null`.
//! Every string in a v1 meta file is limited to `[0-9A-Za-z._-]`, so no
//! escaping rules are involved. The file itself may be formatted freely (Silt
//! writes it indented); readers parse it and re-serialise canonically.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::{BLOCK_FORMAT, BLOCK_VERSION, META_FILE, OLDEST_SUPPORTED_VERSION};

/// Size and CRC-32C of one data file of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub name: String,
    pub size: u64,
    pub crc32c: u32,
}

/// What `meta.json` says about a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    /// Format version of the block (see `docs/format/block.md`); the writer
    /// always writes [`BLOCK_VERSION`].
    pub version: u32,
    pub id: String,
    /// Smallest sample timestamp (ms, inclusive).
    pub min_time: i64,
    /// Largest sample timestamp (ms, inclusive).
    pub max_time: i64,
    pub num_series: u64,
    pub num_samples: u64,
    /// 0 or 1 for blocks cut from the head (the lead's choice); merges
    /// produce `max(input levels) + 1`.
    pub level: u32,
    /// Ids of the head-cut blocks whose data this block holds, sorted.
    pub sources: Vec<String>,
    /// Highest WAL segment whose samples this block fully contains, if cut
    /// from the head.
    pub wal_segment_max: Option<u64>,
    /// The data files (sorted by name) with their sizes and checksums.
    pub files: Vec<FileMeta>,
}

impl BlockMeta {
    /// Total size of the data files (meta.json not included).
    pub fn files_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Does the block hold samples in `[mint, maxt]`?
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }

    fn to_value(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "size": f.size,
                    "crc32c": format!("{:08x}", f.crc32c),
                })
            })
            .collect();
        serde_json::json!({
            "format": BLOCK_FORMAT,
            "version": self.version,
            "id": self.id,
            "min_time": self.min_time,
            "max_time": self.max_time,
            "num_series": self.num_series,
            "num_samples": self.num_samples,
            "compaction": { "level": self.level, "sources": self.sources },
            "wal_segment_max": self.wal_segment_max,
            "files": files,
        })
    }

    /// The bytes of `meta.json`: indented JSON with the checksum member.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = self.to_value();
        let sum = crc32c::crc32c(&canonical(&v));
        if let Value::Object(m) = &mut v {
            m.insert("checksum".into(), Value::String(format!("{sum:08x}")));
        }
        let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses and verifies `meta.json` bytes; `path` names the file in errors.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<BlockMeta> {
        let bad = |detail: String| Error::corruption(path, detail);
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = v else {
            return Err(bad("not a JSON object".into()));
        };
        let Some(Value::String(sum)) = obj.remove("checksum") else {
            return Err(bad("missing checksum".into()));
        };
        let want = parse_hex32(&sum).ok_or_else(|| bad(format!("bad checksum {sum:?}")))?;
        let whole = Value::Object(obj);
        check_strings(&whole).map_err(|s| {
            bad(format!(
                "string {s:?} has characters outside [0-9A-Za-z._-]"
            ))
        })?;
        let got = crc32c::crc32c(&canonical(&whole));
        if got != want {
            return Err(bad(format!(
                "checksum mismatch: stored {want:08x}, computed {got:08x}"
            )));
        }
        let Value::Object(obj) = whole else {
            return Err(bad("not a JSON object".into()));
        };
        let field = Fields { obj: &obj, path };
        match field.get("format")?.as_str() {
            Some(BLOCK_FORMAT) => {}
            other => return Err(bad(format!("format is {other:?}, want {BLOCK_FORMAT:?}"))),
        }
        let version = field.u64("version")?;
        let version = match u32::try_from(version) {
            Ok(v) if (OLDEST_SUPPORTED_VERSION..=BLOCK_VERSION).contains(&v) => v,
            _ => {
                return Err(bad(format!(
                    "unsupported version {version} (this build reads \
                     {OLDEST_SUPPORTED_VERSION} to {BLOCK_VERSION})"
                )));
            }
        };
        let compaction = field.get("compaction")?;
        let compaction = Fields {
            obj: compaction
                .as_object()
                .ok_or_else(|| bad("compaction is not an object".into()))?,
            path,
        };
        let level = u32::try_from(compaction.u64("level")?)
            .map_err(|_| bad("compaction.level out of range".into()))?;
        let sources = compaction
            .get("sources")?
            .as_array()
            .ok_or_else(|| bad("compaction.sources is not an array".into()))?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad("source is not a string".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let wal_segment_max = match field.get("wal_segment_max")? {
            Value::Null => None,
            v => Some(
                v.as_u64()
                    .ok_or_else(|| bad("wal_segment_max is not an unsigned integer".into()))?,
            ),
        };
        let files = field
            .get("files")?
            .as_array()
            .ok_or_else(|| bad("files is not an array".into()))?
            .iter()
            .map(|f| {
                let f = Fields {
                    obj: f
                        .as_object()
                        .ok_or_else(|| bad("file entry is not an object".into()))?,
                    path,
                };
                let name = f.str("name")?.to_owned();
                let crc = f.str("crc32c")?;
                Ok(FileMeta {
                    name,
                    size: f.u64("size")?,
                    crc32c: parse_hex32(crc).ok_or_else(|| bad(format!("bad crc32c {crc:?}")))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let meta = BlockMeta {
            version,
            id: field.str("id")?.to_owned(),
            min_time: field.i64("min_time")?,
            max_time: field.i64("max_time")?,
            num_series: field.u64("num_series")?,
            num_samples: field.u64("num_samples")?,
            level,
            sources,
            wal_segment_max,
            files,
        };
        if super::id::parse_block_id(&meta.id).is_none() {
            return Err(bad(format!("id {:?} is not a block id", meta.id)));
        }
        if meta.min_time > meta.max_time {
            return Err(bad(format!(
                "min_time {} > max_time {}",
                meta.min_time, meta.max_time
            )));
        }
        if meta.num_series == 0
            || meta.num_samples < meta.num_series
            || meta.num_series > u64::from(u32::MAX)
        {
            return Err(bad(format!(
                "implausible counts: {} series, {} samples",
                meta.num_series, meta.num_samples
            )));
        }
        Ok(meta)
    }
}

/// Typed access to the members of a JSON object, with corruption errors.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a Path,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.obj
            .get(key)
            .ok_or_else(|| Error::corruption(self.path, format!("missing {key}")))
    }
    fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)?.as_u64().ok_or_else(|| {
            Error::corruption(self.path, format!("{key} is not an unsigned integer"))
        })
    }
    fn i64(&self, key: &str) -> Result<i64> {
        self.get(key)?
            .as_i64()
            .ok_or_else(|| Error::corruption(self.path, format!("{key} is not an integer")))
    }
    fn str(&self, key: &str) -> Result<&str> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| Error::corruption(self.path, format!("{key} is not a string")))
    }
}

fn parse_hex32(s: &str) -> Option<u32> {
    if s.len() != 8
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Every string (keys included) must be in `[0-9A-Za-z._-]`.
fn check_strings(v: &Value) -> std::result::Result<(), String> {
    let ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    };
    match v {
        Value::String(s) if !ok(s) => Err(s.clone()),
        Value::Array(a) => a.iter().try_for_each(check_strings),
        Value::Object(m) => m.iter().try_for_each(|(k, v)| {
            if ok(k) {
                check_strings(v)
            } else {
                Err(k.clone())
            }
        }),
        _ => Ok(()),
    }
}

/// Canonical compact JSON: keys sorted bytewise at every level, no
/// whitespace. Independent of serde_json's map ordering feature.
pub(super) fn canonical(v: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(&Value::String(k.clone()), out);
                    out.push(b':');
                    write(&m[k], out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(x, out);
                }
                out.push(b']');
            }
            // Scalars: serde_json's compact form (strings here need no escapes).
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
    }
    let mut out = Vec::with_capacity(512);
    write(v, &mut out);
    out
}

/// Reads and verifies `<dir>/meta.json`.
pub fn read_meta(dir: &Path) -> Result<BlockMeta> {
    let path = dir.join(META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::corruption(&path, "file missing"),
        _ => Error::io(&path, e),
    })?;
    BlockMeta::from_json(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BlockMeta {
        BlockMeta {
            version: BLOCK_VERSION,
            id: "01HZX3Q6J8M4T5V6W7X8Y9Z0AB".into(),
            min_time: -5,
            max_time: 1_700_000_000_000,
            num_series: 2,
            num_samples: 10,
            level: 1,
            sources: vec!["01HZX3Q6J8M4T5V6W7X8Y9Z0AB".into()],
            wal_segment_max: Some(42),
            files: vec![FileMeta {
                name: "samples.parquet".into(),
                size: 100,
                crc32c: 0xdead_beef,
            }],
        }
    }

    #[test]
    fn round_trips_and_checksum_is_canonical() {
        let m = sample();
        let json = m.to_json();
        assert_eq!(
            BlockMeta::from_json(Path::new("meta.json"), &json).unwrap(),
            m
        );
        // Reformatting (compact, reordered) keeps the checksum valid.
        let v: Value = serde_json::from_slice(&json).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            BlockMeta::from_json(Path::new("meta.json"), &compact).unwrap(),
            m
        );
        let none = BlockMeta {
            wal_segment_max: None,
            ..m
        };
        assert_eq!(
            BlockMeta::from_json(Path::new("m"), &none.to_json()).unwrap(),
            none
        );
    }

    #[test]
    fn versions_outside_the_supported_range_are_refused() {
        for (version, ok) in [
            (0, false),
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, false),
        ] {
            let m = BlockMeta {
                version,
                ..sample()
            };
            let r = BlockMeta::from_json(Path::new("meta.json"), &m.to_json());
            match r {
                Ok(got) => assert!(ok && got == m, "version {version}"),
                Err(e) => assert!(
                    !ok && e.to_string().contains("unsupported version"),
                    "version {version}: {e}"
                ),
            }
        }
    }

    #[test]
    fn canonical_form_is_exactly_as_documented() {
        let v = serde_json::json!({"b": [1, -2, null], "a": {"z": "x", "y": 0}});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"a":{"y":0,"z":"x"},"b":[1,-2,null]}"#
        );
    }

    #[test]
    fn detects_tampering() {
        let json = String::from_utf8(sample().to_json()).unwrap();
        let tampered = json.replace("\"num_samples\": 10", "\"num_samples\": 11");
        assert_ne!(tampered, json);
        let e = BlockMeta::from_json(Path::new("meta.json"), tampered.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"checksum\":\"zz\"}",
            &json.as_bytes()[..json.len() / 2],
        ] {
            assert!(matches!(
                BlockMeta::from_json(Path::new("m"), bad),
                Err(Error::Corruption { .. })
            ));
        }
    }
}
