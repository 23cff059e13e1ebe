//! The write-ahead log: numbered segment files of checksummed records, written
//! with group commit.
//!
//! Design constraints: an append is acknowledged only once its records are on
//! stable storage (in [`Durability::Sync`] mode), concurrent writers must share
//! fsyncs, and a crash may tear only the tail of the newest segment.
//!
//! Write path: writers encode records into one shared in-memory buffer under a
//! short lock and get back a log sequence number (LSN, the byte count of all
//! records ever buffered). One sync thread repeatedly takes the whole buffer,
//! writes it to the current segment, `fdatasync`s, and publishes the highest
//! durable LSN; a writer waits until that reaches its own LSN. Everyone who
//! buffered during one fsync shares the next one.
//!
//! Segments: `wal/<16-digit sequence>`; each starts with an 16-byte header
//! (magic `SILTWAL\0`, u32 version, u32 reserved) followed by records
//! `[u32 len][u32 crc32c][u8 type][payload]` (little-endian; `len` counts type
//! and payload; the CRC covers type and payload). The byte layout is in
//! `docs/format/wal.md`.
//!
//! Recovery: segments are read in order; a bad or short record in the newest
//! segment is a torn write and the segment is cut there; anywhere else it is
//! corruption and reported with the file's path.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use compact_str::CompactString;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::db::Durability;
use crate::error::{Error, Result};
use crate::labels::{Label, Labels};
use crate::metadata::{MetricMetadata, MetricType};
use crate::varint::{put_uvarint, unzigzag, zigzag};

pub const SEGMENT_MAGIC: &[u8; 8] = b"SILTWAL\0";
/// Written in new segments: version 2 added start-timestamp records. Both
/// versions are read; a binary that knows only version 1 refuses version
/// 2 segments rather than cut them at the first record it cannot read.
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER_LEN: u64 = 16;
/// Largest record accepted on read; larger lengths are corruption.
pub const MAX_RECORD: usize = 256 << 20;

/// Record types.
pub const REC_SERIES: u8 = 1;
pub const REC_SAMPLES: u8 = 2;
pub const REC_METADATA: u8 = 3;
// 4 is reserved for native histogram samples.
/// Start timestamps of samples the series stores (format version 2).
pub const REC_STARTS: u8 = 5;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Series ids and their labels; always logged before samples that use the id.
    Series(Vec<(u32, Labels)>),
    /// (series id, timestamp, value bits).
    Samples(Vec<(u32, i64, u64)>),
    Metadata(Vec<MetricMetadata>),
    /// (series id, sample timestamp, start timestamp): starts of the
    /// samples of an earlier record of the same append, or of samples
    /// stored earlier without one (a retry's).
    Starts(Vec<(u32, i64, i64)>),
}

/// A place in the log: a segment and a byte offset in it. Positions order
/// as the log does (by segment, then offset). A record's position is the
/// offset just past its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WalPos {
    pub seq: u64,
    pub offset: u64,
}

// ---------------------------------------------------------------------------
// Encoding

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends a framed record to `buf`.
pub(crate) fn frame(buf: &mut Vec<u8>, typ: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    buf.push(typ);
    payload(buf);
    let len = (buf.len() - start - 8) as u32;
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

pub fn encode_series<'a>(buf: &mut Vec<u8>, series: impl Iterator<Item = (u32, &'a Labels)>) {
    frame(buf, REC_SERIES, |b| {
        for (id, labels) in series {
            put_uvarint(b, u64::from(id));
            put_uvarint(b, labels.len() as u64);
            for l in labels {
                put_str(b, &l.name);
                put_str(b, &l.value);
            }
        }
    });
}

/// Encodes samples as `[i64 base_t][uvarint n]` then per sample
/// `[uvarint id][zigzag varint t-base][u64 value bits]`.
pub fn encode_samples(buf: &mut Vec<u8>, samples: &[(u32, i64, u64)]) {
    encode_timed(buf, REC_SAMPLES, samples, |b, _, v| {
        b.extend_from_slice(&v.to_le_bytes())
    });
}

/// Encodes start timestamps as `[i64 base_t][uvarint n]` then per sample
/// `[uvarint id][zigzag varint t-base][zigzag varint t-st]` (a sample's
/// start usually lies a scrape interval or a counter's lifetime before it).
pub fn encode_starts(buf: &mut Vec<u8>, starts: &[(u32, i64, i64)]) {
    encode_timed(buf, REC_STARTS, starts, |b, t, st| {
        put_uvarint(b, zigzag(t.wrapping_sub(st)))
    });
}

/// A record of `typ` holding `(series id, time, x)` entries (none: no
/// record): `[i64 base_t][uvarint n]`, then per entry `[uvarint id]
/// [zigzag varint t-base]` and what `put(t, x)` writes.
#[inline]
fn encode_timed<T: Copy>(
    buf: &mut Vec<u8>,
    typ: u8,
    entries: &[(u32, i64, T)],
    put: impl Fn(&mut Vec<u8>, i64, T),
) {
    let Some(&(_, base, _)) = entries.first() else {
        return;
    };
    frame(buf, typ, |b| {
        b.extend_from_slice(&base.to_le_bytes());
        put_uvarint(b, entries.len() as u64);
        for &(id, t, x) in entries {
            put_uvarint(b, u64::from(id));
            put_uvarint(b, zigzag(t.wrapping_sub(base)));
            put(b, t, x);
        }
    });
}

/// The entries of an [`encode_timed`] payload, each at least `min_bytes`
/// long (counts the payload cannot hold are refused), `get(t)` reading
/// what follows an entry's time; `None` unless the payload ends right
/// after the last.
fn decode_timed<T>(
    c: &mut Cursor<'_>,
    min_bytes: usize,
    get: impl Fn(&mut Cursor<'_>, i64) -> Option<T>,
) -> Option<Vec<(u32, i64, T)>> {
    let base = c.u64_le()? as i64;
    let n = usize::try_from(c.uvarint()?).ok()?;
    if n > c.b.len() / min_bytes {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = u32::try_from(c.uvarint()?).ok()?;
        let t = base.wrapping_add(unzigzag(c.uvarint()?));
        out.push((id, t, get(c, t)?));
    }
    c.b.is_empty().then_some(out)
}

pub fn encode_metadata(buf: &mut Vec<u8>, metadata: &[MetricMetadata]) {
    if metadata.is_empty() {
        return;
    }
    frame(buf, REC_METADATA, |b| {
        for m in metadata {
            b.push(m.metric_type.code());
            put_str(b, &m.metric_family);
            put_str(b, &m.help);
            put_str(b, &m.unit);
        }
    });
}

// ---------------------------------------------------------------------------
// Decoding

#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn uvarint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self.b.split_first()?;
            self.b = rest;
            if i == 9 && byte > 1 {
                return None;
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Some(a)
    }
    pub(crate) fn u32_le(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64_le(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// Bytes after their uvarint length.
    fn prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        self.take(n)
    }
    pub(crate) fn string(&mut self) -> Option<String> {
        String::from_utf8(self.prefixed()?.to_vec()).ok()
    }

    /// A length-prefixed label name or value, held inline when short.
    pub(crate) fn label(&mut self) -> Option<CompactString> {
        CompactString::from_utf8(self.prefixed()?).ok()
    }
}

/// Decodes one record body (type byte and payload). `None` means malformed.
pub fn decode_record(typ: u8, payload: &[u8]) -> Option<Record> {
    let mut c = Cursor { b: payload };
    match typ {
        REC_SERIES => {
            let mut out = Vec::new();
            while !c.b.is_empty() {
                let id = u32::try_from(c.uvarint()?).ok()?;
                let n = usize::try_from(c.uvarint()?).ok()?;
                if n > c.b.len() {
                    return None;
                }
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    pairs.push(Label {
                        name: c.label()?,
                        value: c.label()?,
                    });
                }
                out.push((id, Labels::from_pairs(pairs).ok()?));
            }
            Some(Record::Series(out))
        }
        // Each sample takes at least 10 bytes.
        REC_SAMPLES => decode_timed(&mut c, 10, |c, _| c.u64_le()).map(Record::Samples),
        REC_METADATA => {
            let mut out = Vec::new();
            while !c.b.is_empty() {
                let typ = c.take(1)?[0];
                out.push(MetricMetadata {
                    metric_type: MetricType::from_code(typ),
                    metric_family: c.string()?,
                    help: c.string()?,
                    unit: c.string()?,
                });
            }
            Some(Record::Metadata(out))
        }
        // Each start takes at least 3 bytes.
        REC_STARTS => decode_timed(&mut c, 3, |c, t| {
            Some(t.wrapping_sub(unzigzag(c.uvarint()?)))
        })
        .map(Record::Starts),
        _ => None,
    }
}

/// Outcome of reading one segment.
pub struct SegmentRead {
    /// Offset just past the last good record.
    pub valid_len: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// Reads records of one segment in order, calling `f` for each. Stops at the
/// first bad record and says why; I/O errors and a bad header are errors.
pub fn read_segment(path: &Path, f: &mut dyn FnMut(Record) -> Result<()>) -> Result<SegmentRead> {
    read_segment_from(path, HEADER_LEN, &mut |rec, _| f(rec))
}

/// Like [`read_segment`], starting at byte `start` (a record boundary at or
/// after the header) and passing each record's end offset along. A start
/// past the end of the file is reported as `stopped`.
pub fn read_segment_from(
    path: &Path,
    start: u64,
    f: &mut dyn FnMut(Record, u64) -> Result<()>,
) -> Result<SegmentRead> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN as usize];
    if file_len < HEADER_LEN {
        return Ok(SegmentRead {
            valid_len: 0,
            stopped: Some("segment shorter than its header".into()),
        });
    }
    r.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    if &header[..8] != SEGMENT_MAGIC {
        return Err(Error::corruption(path, "bad WAL segment magic"));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(Error::corruption(
            path,
            format!("unsupported WAL format version {version}"),
        ));
    }
    let start = start.max(HEADER_LEN);
    if start > file_len {
        return Ok(SegmentRead {
            valid_len: file_len,
            stopped: Some(format!("start offset {start} past the end ({file_len})")),
        });
    }
    if start > HEADER_LEN {
        r.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io(path, e))?;
    }
    let mut pos = start;
    let mut buf = Vec::new();
    loop {
        if pos == file_len {
            return Ok(SegmentRead {
                valid_len: pos,
                stopped: None,
            });
        }
        if file_len - pos < 9 {
            return Ok(SegmentRead {
                valid_len: pos,
                stopped: Some(format!("truncated record header at offset {pos}")),
            });
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD || (len as u64) > file_len - pos - 8 {
            return Ok(SegmentRead {
                valid_len: pos,
                stopped: Some(format!("bad record length {len} at offset {pos}")),
            });
        }
        buf.resize(len, 0);
        r.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        if crc32c::crc32c(&buf) != crc {
            return Ok(SegmentRead {
                valid_len: pos,
                stopped: Some(format!("checksum mismatch in record at offset {pos}")),
            });
        }
        let Some(rec) = decode_record(buf[0], &buf[1..]) else {
            return Ok(SegmentRead {
                valid_len: pos,
                stopped: Some(format!("undecodable record at offset {pos}")),
            });
        };
        pos += 8 + len as u64;
        f(rec, pos)?;
    }
}

/// Segment file names in `dir`, sorted by sequence number.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 16
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(seq) = name.parse::<u64>()
        {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}"))
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

// ---------------------------------------------------------------------------
// Writing

/// Durability progress shared with waiters.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    /// Every record with an LSN at or below this is durable.
    pub synced: u64,
    /// Set once the log failed; no later record will become durable.
    pub failed: Option<Arc<str>>,
}

struct Buffer {
    bytes: Vec<u8>,
    /// LSN after the last buffered byte.
    end_lsn: u64,
    shutdown: bool,
    /// A blocking waiter wants the buffer synced now (async mode).
    flush_requested: bool,
}

struct SegmentFile {
    file: File,
    seq: u64,
    size: u64,
    path: PathBuf,
}

/// Where this process's segments start in LSN terms: (sequence number,
/// LSN of the first record byte after the header). Buffers are written
/// whole into one segment, so a record never straddles two.
#[derive(Default)]
struct SegmentStarts(Vec<(u64, u64)>);

impl SegmentStarts {
    /// The position of LSN `lsn`: in the last segment starting at or
    /// before it. A record ending exactly where a segment starts maps to
    /// that segment's first offset, which orders after every record of
    /// the older segments and before every record of that one, as the
    /// record's own end would: both serve as replay positions, and the
    /// segment exists even when the record's own is deleted.
    fn position_of(&self, lsn: u64) -> Option<WalPos> {
        let i = self.0.partition_point(|&(_, start)| start <= lsn);
        let (seq, start) = *self.0.get(i.saturating_sub(1))?;
        Some(WalPos {
            seq,
            offset: HEADER_LEN + (lsn - start.min(lsn)),
        })
    }
}

struct Shared {
    dir: PathBuf,
    segment_size: u64,
    durability: Durability,
    buffer: Mutex<Buffer>,
    buffer_cv: Condvar,
    segment: Mutex<SegmentFile>,
    starts: Mutex<SegmentStarts>,
    state: Mutex<SyncState>,
    state_cv: Condvar,
    watch: watch::Sender<SyncState>,
    stats: Mutex<WalStats>,
    fsync_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct WalStats {
    pub fsyncs: u64,
    pub fsync_seconds_total: f64,
    pub last_fsync_seconds: f64,
    pub bytes_written: u64,
    pub segments_created: u64,
}

/// The log writer.
pub struct Wal {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Opens the log for appending in a new segment numbered `next_seq`.
    pub fn create(
        dir: &Path,
        next_seq: u64,
        segment_size: u64,
        durability: Durability,
    ) -> Result<Wal> {
        Wal::create_with_metrics(dir, next_seq, segment_size, durability, None)
    }

    /// Like [`Wal::create`], observing every fsync's duration into `fsync_seconds`.
    pub fn create_with_metrics(
        dir: &Path,
        next_seq: u64,
        segment_size: u64,
        durability: Durability,
        fsync_seconds: Option<prometheus_client::metrics::histogram::Histogram>,
    ) -> Result<Wal> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let segment = new_segment(dir, next_seq)?;
        let (watch, _) = watch::channel(SyncState::default());
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            segment_size,
            durability,
            buffer: Mutex::new(Buffer {
                bytes: Vec::with_capacity(1 << 20),
                end_lsn: 0,
                shutdown: false,
                flush_requested: false,
            }),
            buffer_cv: Condvar::new(),
            segment: Mutex::new(segment),
            starts: Mutex::new(SegmentStarts(vec![(next_seq, 0)])),
            state: Mutex::new(SyncState::default()),
            state_cv: Condvar::new(),
            watch,
            stats: Mutex::new(WalStats {
                segments_created: 1,
                ..Default::default()
            }),
            fsync_seconds,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("silt-wal-sync".into())
            .spawn(move || sync_loop(&s))
            .map_err(|e| Error::io(dir, e))?;
        Ok(Wal {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Buffers records produced by `encode`; returns the LSN to wait for.
    /// `encode` runs under the buffer lock: keep it to plain encoding.
    pub fn log(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<u64> {
        let mut buf = self.shared.buffer.lock();
        if buf.shutdown {
            return Err(Error::Closed);
        }
        if let Some(msg) = &self.shared.state.lock().failed {
            return Err(Error::WalFailed(msg.to_string()));
        }
        let before = buf.bytes.len();
        encode(&mut buf.bytes);
        let added = (buf.bytes.len() - before) as u64;
        buf.end_lsn += added;
        let lsn = buf.end_lsn;
        drop(buf);
        if added > 0 && self.shared.durability == Durability::Sync {
            self.shared.buffer_cv.notify_one();
        }
        Ok(lsn)
    }

    /// Waits (async) until `lsn` is durable.
    pub async fn wait_async(&self, lsn: u64) -> Result<()> {
        if self.shared.durability != Durability::Sync {
            return Ok(());
        }
        let mut rx = self.shared.watch.subscribe();
        let state = rx
            .wait_for(|s| s.synced >= lsn || s.failed.is_some())
            .await
            .map_err(|_| Error::Closed)?
            .clone();
        if state.synced >= lsn {
            return Ok(());
        }
        Err(Error::WalFailed(
            state.failed.as_deref().unwrap_or("unknown").to_string(),
        ))
    }

    /// Waits (blocking) until `lsn` is durable, whatever the durability mode.
    pub fn wait_blocking(&self, lsn: u64) -> Result<()> {
        self.request_flush();
        let mut state = self.shared.state.lock();
        loop {
            if state.synced >= lsn {
                return Ok(());
            }
            if let Some(msg) = &state.failed {
                return Err(Error::WalFailed(msg.to_string()));
            }
            // Async mode flushes on a timer; nudge it and re-check.
            self.shared
                .state_cv
                .wait_for(&mut state, Duration::from_millis(5));
            drop(state);
            self.request_flush();
            state = self.shared.state.lock();
        }
    }

    /// Asks the sync thread to write and sync now, even between the ticks
    /// of async mode.
    fn request_flush(&self) {
        self.shared.buffer.lock().flush_requested = true;
        self.shared.buffer_cv.notify_one();
    }

    /// Flushes everything buffered so far, fsyncs, and starts a new segment.
    /// Returns the new segment's sequence number: every record logged before
    /// this call is in an older segment. The caller must keep writers out.
    pub fn rotate(&self) -> Result<u64> {
        let mut seg = self.shared.segment.lock();
        let (bytes, end) = {
            let mut buf = self.shared.buffer.lock();
            (std::mem::take(&mut buf.bytes), buf.end_lsn)
        };
        write_and_sync(&self.shared, &mut seg, &bytes, end)?;
        let next = seg.seq + 1;
        *seg = new_segment(&self.shared.dir, next)?;
        self.shared.starts.lock().0.push((next, end));
        self.shared.stats.lock().segments_created += 1;
        Ok(next)
    }

    /// The LSN after the last record buffered so far.
    pub fn end_lsn(&self) -> u64 {
        self.shared.buffer.lock().end_lsn
    }

    /// The log position just past the record that ended at `lsn` (an LSN
    /// returned by [`Wal::log`] or [`Wal::end_lsn`] of this process), once
    /// that record is written: `None` before.
    pub fn position_of(&self, lsn: u64) -> Option<WalPos> {
        if self.shared.state.lock().synced < lsn {
            return None;
        }
        self.shared.starts.lock().position_of(lsn)
    }

    /// The sequence number of the segment currently written.
    pub fn current_segment(&self) -> u64 {
        self.shared.segment.lock().seq
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn stats(&self) -> WalStats {
        self.shared.stats.lock().clone()
    }

    /// Deletes segments with sequence number below `seq`.
    pub fn truncate_before(&self, seq: u64) -> Result<usize> {
        let mut n = 0;
        for (s, path) in list_segments(&self.shared.dir)? {
            if s < seq {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Flushes and fsyncs everything, then stops the sync thread.
    pub fn close(&self) -> Result<()> {
        let lsn = {
            let mut buf = self.shared.buffer.lock();
            if buf.shutdown {
                return Ok(());
            }
            buf.shutdown = true;
            buf.end_lsn
        };
        self.shared.buffer_cv.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        let state = self.shared.state.lock().clone();
        if state.synced >= lsn {
            Ok(())
        } else {
            Err(Error::WalFailed(
                state
                    .failed
                    .as_deref()
                    .unwrap_or("not synced at close")
                    .to_string(),
            ))
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn new_segment(dir: &Path, seq: u64) -> Result<SegmentFile> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    file.write_all(&header).map_err(|e| Error::io(&path, e))?;
    file.sync_all().map_err(|e| Error::io(&path, e))?;
    fsync_dir(dir)?;
    Ok(SegmentFile {
        file,
        seq,
        size: HEADER_LEN,
        path,
    })
}

/// Reopens an existing segment for appending after its last good record.
pub fn truncate_segment(path: &Path, valid_len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.set_len(valid_len).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

fn write_and_sync(
    shared: &Shared,
    seg: &mut SegmentFile,
    bytes: &[u8],
    end_lsn: u64,
) -> Result<()> {
    let result: Result<()> = (|| {
        if !bytes.is_empty() {
            seg.file
                .seek(SeekFrom::Start(seg.size))
                .map_err(|e| Error::io(&seg.path, e))?;
            seg.file
                .write_all(bytes)
                .map_err(|e| Error::io(&seg.path, e))?;
            seg.size += bytes.len() as u64;
        }
        let start = Instant::now();
        seg.file.sync_data().map_err(|e| Error::io(&seg.path, e))?;
        let secs = start.elapsed().as_secs_f64();
        if let Some(h) = &shared.fsync_seconds {
            h.observe(secs);
        }
        let mut stats = shared.stats.lock();
        stats.fsyncs += 1;
        stats.fsync_seconds_total += secs;
        stats.last_fsync_seconds = secs;
        stats.bytes_written += bytes.len() as u64;
        Ok(())
    })();
    let mut state = shared.state.lock();
    match &result {
        Ok(()) => state.synced = state.synced.max(end_lsn),
        Err(e) => state.failed = Some(Arc::from(e.to_string())),
    }
    let snapshot = state.clone();
    drop(state);
    shared.state_cv.notify_all();
    shared.watch.send_replace(snapshot);
    result
}

fn sync_loop(shared: &Shared) {
    let interval = match shared.durability {
        Durability::Sync => None,
        Durability::Async { interval } => Some(interval),
    };
    loop {
        let mut seg = shared.segment.lock();
        let (bytes, end, shutdown) = {
            let mut buf = shared.buffer.lock();
            let synced = shared.state.lock().synced;
            buf.flush_requested = false;
            if buf.end_lsn == synced && !buf.shutdown {
                drop(seg);
                match interval {
                    None => {
                        shared.buffer_cv.wait(&mut buf);
                    }
                    Some(iv) => {
                        shared.buffer_cv.wait_for(&mut buf, iv);
                    }
                }
                continue;
            }
            (std::mem::take(&mut buf.bytes), buf.end_lsn, buf.shutdown)
        };
        if write_and_sync(shared, &mut seg, &bytes, end).is_err() {
            tracing::error!(path = %seg.path.display(), "WAL write failed; refusing further writes");
            return;
        }
        if seg.size >= shared.segment_size && !shutdown {
            match new_segment(&shared.dir, seg.seq + 1) {
                Ok(s) => {
                    shared.starts.lock().0.push((s.seq, end));
                    *seg = s;
                    shared.stats.lock().segments_created += 1;
                }
                Err(e) => {
                    let mut state = shared.state.lock();
                    state.failed = Some(Arc::from(e.to_string()));
                    shared.watch.send_replace(state.clone());
                    return;
                }
            }
        }
        drop(seg);
        if shutdown && shared.buffer.lock().end_lsn == end {
            return;
        }
        if let Some(iv) = interval {
            // Async mode: the next write waits for the tick, unless close
            // or a blocking waiter cuts it short.
            let deadline = std::time::Instant::now() + iv;
            let mut buf = shared.buffer.lock();
            while !buf.shutdown && !buf.flush_requested {
                if shared.buffer_cv.wait_until(&mut buf, deadline).timed_out() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(dir: &Path) -> Vec<Record> {
        let mut out = Vec::new();
        for (_, p) in list_segments(dir).unwrap() {
            read_segment(&p, &mut |r| {
                out.push(r);
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn records_round_trip_through_segments() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, 1 << 20, Durability::Sync).unwrap();
        // Values short enough to sit in their pair and one that is not
        // (over 24 bytes), multi-byte UTF-8 among them.
        let labels = Labels::new(&[
            ("__name__", "up"),
            ("job", "x"),
            ("mountpoint", "/var/lib/silt/a/rather/long/mountpoint"),
            ("zone", "Zürich-😀"),
        ]);
        let stale = f64::from_bits(crate::STALE_NAN);
        let lsn = wal
            .log(|b| {
                encode_series(b, [(7u32, &labels)].into_iter());
                encode_samples(
                    b,
                    &[
                        (7, 1000, 1.5f64.to_bits()),
                        (7, -5, stale.to_bits()),
                        (7, i64::MAX, 0),
                    ],
                );
                encode_starts(
                    b,
                    &[(7, 1000, 970), (7, i64::MAX, i64::MIN + 3), (8, -5, 1)],
                );
                encode_metadata(
                    b,
                    &[MetricMetadata {
                        metric_family: "up".into(),
                        metric_type: MetricType::Gauge,
                        help: "h".into(),
                        unit: String::new(),
                    }],
                );
            })
            .unwrap();
        wal.wait_blocking(lsn).unwrap();
        let next = wal.rotate().unwrap();
        assert_eq!(next, 2);
        wal.close().unwrap();
        let recs = read_all(dir.path());
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0], Record::Series(vec![(7, labels)]));
        assert_eq!(
            recs[2],
            Record::Starts(vec![
                (7, 1000, 970),
                (7, i64::MAX, i64::MIN + 3),
                (8, -5, 1)
            ])
        );
        assert_eq!(
            recs[1],
            Record::Samples(vec![
                (7, 1000, 1.5f64.to_bits()),
                (7, -5, crate::STALE_NAN),
                (7, i64::MAX, 0)
            ])
        );
    }

    /// Segments of format version 1 (before start-timestamp records) still
    /// read; a version from the future is refused, not read as damage.
    #[test]
    fn version_1_segments_read_and_unknown_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, 1 << 20, Durability::Sync).unwrap();
        let lsn = wal.log(|b| encode_samples(b, &[(1, 5, 0)])).unwrap();
        wal.wait_blocking(lsn).unwrap();
        wal.close().unwrap();
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes());
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_all(dir.path()), vec![Record::Samples(vec![(1, 5, 0)])]);
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = read_segment(&path, &mut |_| Ok(())).err().unwrap();
        assert!(
            err.to_string().contains("unsupported WAL format version"),
            "{err}"
        );
    }

    #[test]
    fn torn_tail_stops_reading_and_bit_flip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, 1 << 20, Durability::Sync).unwrap();
        for i in 0..10 {
            let lsn = wal.log(|b| encode_samples(b, &[(1, i, 0)])).unwrap();
            wal.wait_blocking(lsn).unwrap();
        }
        wal.close().unwrap();
        let path = segment_path(dir.path(), 1);
        let full = fs::read(&path).unwrap();
        for cut in [full.len() - 1, full.len() - 5, HEADER_LEN as usize + 3] {
            fs::write(&path, &full[..cut]).unwrap();
            let mut n = 0;
            let r = read_segment(&path, &mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
            assert!(r.stopped.is_some());
            assert!(n < 10);
        }
        let mut flipped = full.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x10;
        fs::write(&path, &flipped).unwrap();
        let mut n = 0;
        let r = read_segment(&path, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert!(r.stopped.unwrap().contains("offset"));
        assert!(n < 10);
        let mut bad_magic = full;
        bad_magic[0] = b'X';
        fs::write(&path, &bad_magic).unwrap();
        let err = read_segment(&path, &mut |_| Ok(())).err().unwrap();
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn group_commit_serves_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::create(dir.path(), 1, 4096, Durability::Sync).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let lsn = wal.log(|b| encode_samples(b, &[(w, i, 0)])).unwrap();
                        wal.wait_blocking(lsn).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        wal.close().unwrap();
        assert!(
            list_segments(dir.path()).unwrap().len() > 1,
            "small segments rotate"
        );
        let n: usize = read_all(dir.path())
            .into_iter()
            .map(|r| match r {
                Record::Samples(s) => s.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(n, 800);
        assert!(wal.stats().fsyncs <= 800);
    }

    #[test]
    fn positions_of_lsns_match_record_ends_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: the sync thread rotates often; `rotate` too.
        let wal = Wal::create(dir.path(), 5, 300, Durability::Sync).unwrap();
        assert_eq!(
            wal.position_of(0),
            Some(WalPos {
                seq: 5,
                offset: HEADER_LEN
            })
        );
        let mut lsns = Vec::new();
        for i in 0..60i64 {
            let lsn = wal
                .log(|b| encode_samples(b, &[(1, i, i as u64), (2, i, 0)]))
                .unwrap();
            wal.wait_blocking(lsn).unwrap();
            lsns.push(lsn);
            if i % 17 == 0 {
                wal.rotate().unwrap();
            }
        }
        let mut ends = Vec::new();
        for (seq, path) in list_segments(dir.path()).unwrap() {
            read_segment_from(&path, HEADER_LEN, &mut |_, end| {
                ends.push(WalPos { seq, offset: end });
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(ends.len(), lsns.len());
        for (lsn, end) in lsns.iter().zip(&ends) {
            let p = wal.position_of(*lsn).unwrap();
            // The record's own end, or the start of a later segment when
            // it ends one: either orders like the end among records.
            assert!(
                p == *end || (p.seq > end.seq && p.offset == HEADER_LEN),
                "{p:?} vs {end:?}"
            );
            assert!(ends.iter().all(|e| (e <= end) == (*e <= p)));
        }
        // Resuming mid-segment at a record boundary reads the rest.
        let (seq, path) = &list_segments(dir.path()).unwrap()[1];
        let first = ends.iter().find(|e| e.seq == *seq).unwrap();
        let mut rest = 0;
        read_segment_from(path, first.offset, &mut |_, _| {
            rest += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(rest, ends.iter().filter(|e| e.seq == *seq).count() - 1);
        assert!(
            read_segment_from(path, 1 << 30, &mut |_, _| Ok(()))
                .unwrap()
                .stopped
                .is_some()
        );
        wal.close().unwrap();
    }

    #[test]
    fn decode_never_panics_on_garbage() {
        let mut seed = 0x1234_5678_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            for typ in 0..5 {
                let _ = decode_record(typ, &bytes);
            }
        }
    }

    #[test]
    fn async_close_and_blocking_wait_do_not_wait_for_the_tick() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(
            dir.path(),
            1,
            1 << 20,
            Durability::Async {
                interval: Duration::from_secs(3600),
            },
        )
        .unwrap();
        let start = std::time::Instant::now();
        for _ in 0..3 {
            let lsn = wal
                .log(|buf| encode_samples(buf, &[(1, 1000, 1.0f64.to_bits())]))
                .unwrap();
            wal.wait_blocking(lsn).unwrap();
        }
        wal.close().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(read_all(dir.path()).len(), 3);
    }
}
