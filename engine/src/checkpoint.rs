//! Head checkpoints: the head's series and compressed chunks in one file,
//! so a restart loads them as they are and replays only the WAL after it.
//!
//! Design constraints: a checkpoint is taken while appends go on; loading
//! it and replaying the WAL after it must give exactly what replaying the
//! whole WAL gives; a damaged checkpoint must never cost data (the WAL it
//! summarises stays until a cut), only the time of a full replay.
//!
//! Exactness: every append locks its series, logs its records (getting an
//! LSN) and applies them, all under the lock, and leaves the LSN in the
//! series ([`crate::head::SeriesData::wal_lsn`]). A checkpoint notes the
//! log's end `P0` first, then visits each series under its lock: what it
//! copies is exactly the series' records up to its own LSN, which is at
//! least every record of the series before `P0`. Replay then starts at
//! `P0` and applies a record to a series only if it ends after that
//! series' LSN (stored, as a log position, for series whose LSN is after
//! `P0`). A cut neither starts nor publishes while a checkpoint is taken;
//! one taken while a cut writes its blocks holds the cut's frozen data too
//! ([`encode_series_split`]). A checkpoint is only valid while the blocks
//! cover nothing of its WAL range (see [`Start::base_segment`]).
//!
//! The byte layout is in `docs/format/checkpoint.md`: a 16-byte header
//! (`SILTCKPT`, version), then WAL-style records `[u32 len][u32 crc32c]
//! [u8 type][payload]`: one start record, series records, metadata records,
//! position records, one end record. Files are written to a temporary
//! name, fsynced and renamed to `checkpoint.<seq>.<offset>` (the start
//! position, 16 digits each) in the WAL directory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use crate::chunk::{XorChunk, XorParts};
use crate::error::{Error, Result};
use crate::head::Chunks;
use crate::head_chunk::{DecimalChunk, DecimalParts, HeadChunk, SharedParts};
use crate::labels::{Label, Labels};
use crate::metadata::MetricMetadata;
use crate::sample::Sample;
use crate::time_column::{COLUMN_CAP, Claim, TimeColumn};
use crate::varint::{put_uvarint, unzigzag, zigzag};
use crate::wal::{self, Cursor, WalPos, put_str};

pub const MAGIC: &[u8; 8] = b"SILTCKPT";
/// Version 3 stores the timestamp columns that decimal chunks share once
/// (kind 3); version 2 coded decimal chunks adaptively (kind 2), each with
/// its own timestamps; version 1 files, whose decimal chunks use the
/// bucket code only (kind 0), still read too.
pub const FORMAT_VERSION: u32 = 3;
pub const HEADER_LEN: usize = 16;
/// Largest record accepted on read.
pub const MAX_RECORD: usize = 256 << 20;
/// Series records are closed at about this many payload bytes.
const SERIES_RECORD_BYTES: usize = 1 << 20;

pub const REC_START: u8 = 1;
pub const REC_SERIES: u8 = 2;
/// Same payload as the WAL's metadata record.
pub const REC_METADATA: u8 = wal::REC_METADATA;
pub const REC_POSITIONS: u8 = 4;
pub const REC_END: u8 = 5;
/// Start timestamps of the samples of series in the series records before
/// it: per series `uvarint id`, `uvarint n`, then per sample `zigzag(t −
/// previous t)` (the first from 0) and `zigzag(t − start)`. Written only
/// for series that have any, so a head without start timestamps writes
/// the same file as before the record existed (which a reader that does
/// not know it takes for damage, and replays the WAL instead).
pub const REC_STARTS: u8 = 6;

/// Chunk kinds in a series entry: decimal in the bucket code only (written
/// before the adaptive code; read, not written), XOR, decimal, decimal
/// with its timestamps in a column of the file.
const CHUNK_DECIMAL_BUCKETS: u8 = 0;
const CHUNK_XOR: u8 = 1;
const CHUNK_DECIMAL: u8 = 2;
const CHUNK_DECIMAL_SHARED: u8 = 3;

const FILE_PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// What a checkpoint summarises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The first WAL segment of the head's data: the checkpoint holds what
    /// replaying the segments from this one up to [`Start::pos`] gives. It
    /// is stale once a block covers this segment.
    pub base_segment: u64,
    /// Replay resumes here (`P0`).
    pub pos: WalPos,
    /// Wall-clock time it was taken, milliseconds since the epoch.
    pub created_ms: i64,
}

/// The file name of a checkpoint starting at `pos`.
pub fn file_name(pos: WalPos) -> String {
    format!("{FILE_PREFIX}{:016}.{:016}", pos.seq, pos.offset)
}

/// Checkpoint files in `dir`, newest (highest start position) first.
/// Temporary files of an unfinished checkpoint are deleted.
pub fn list(dir: &Path) -> Result<Vec<(WalPos, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(FILE_PREFIX) else {
            continue;
        };
        if rest.ends_with(TMP_SUFFIX) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        let mut parts = rest.split('.');
        if let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next())
            && a.len() == 16
            && b.len() == 16
            && let (Ok(seq), Ok(offset)) = (a.parse::<u64>(), b.parse::<u64>())
        {
            out.push((WalPos { seq, offset }, entry.path()));
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(out)
}

// ---------------------------------------------------------------------------
// Encoding

/// The timestamp columns a checkpoint has written so far: each column's
/// number in the file and how many of its slots the file holds. Columns
/// are numbered in order of first appearance and written as chunks need
/// their slots, so a column that grows while the checkpoint is taken is
/// written in pieces.
#[derive(Default)]
pub struct ColumnTable {
    /// By the column's address; the `Weak` keeps the address from being
    /// reused by another column while the checkpoint is taken, without
    /// counting as a holder (the head decides by holders whether sharing
    /// pays).
    written: HashMap<usize, (u64, usize, Weak<TimeColumn>)>,
}

impl ColumnTable {
    /// Writes the column's number and the slots below `end` the file does
    /// not hold yet.
    fn put(&mut self, b: &mut Vec<u8>, col: &Arc<TimeColumn>, end: usize) {
        let next = self.written.len() as u64;
        let (id, held, _) = self
            .written
            .entry(Arc::as_ptr(col) as usize)
            .or_insert_with(|| (next, 0, Arc::downgrade(col)));
        put_uvarint(b, *id);
        let from = *held;
        let to = end.max(from);
        put_uvarint(b, (to - from) as u64);
        for i in from..to {
            let t = col.get(i);
            if i == 0 {
                put_uvarint(b, zigzag(t));
            } else {
                // Ascending: the difference is positive.
                put_uvarint(b, t.wrapping_sub(col.get(i - 1)) as u64);
            }
        }
        *held = to;
    }
}

fn put_head_chunk(b: &mut Vec<u8>, cols: &mut ColumnTable, c: &HeadChunk) {
    match c {
        HeadChunk::Decimal(d) => {
            if let Some(p) = d.shared_parts() {
                b.push(CHUNK_DECIMAL_SHARED);
                cols.put(b, p.col, p.start as usize + p.count as usize);
                put_uvarint(b, u64::from(p.start));
                b.push(p.scale);
                put_uvarint(b, u64::from(p.count));
                put_uvarint(b, p.bits);
                put_uvarint(b, zigzag(p.last_m));
                put_uvarint(b, zigzag(p.last_dm));
                b.extend_from_slice(&p.adapt_m.to_le_bytes());
                b.extend_from_slice(p.buf);
                return;
            }
            let Some(p) = d.raw_parts() else {
                // An empty chunk on a column (only between joining it
                // and its first append): stored as an empty chunk.
                return put_head_chunk(b, cols, &c.with_own_times(false));
            };
            b.push(CHUNK_DECIMAL);
            b.push(p.scale);
            put_uvarint(b, u64::from(p.count));
            put_uvarint(b, p.bits);
            put_uvarint(b, zigzag(p.first_t));
            put_uvarint(b, zigzag(p.last_t.wrapping_sub(p.first_t)));
            put_uvarint(b, zigzag(p.last_dt));
            put_uvarint(b, zigzag(p.last_m));
            put_uvarint(b, zigzag(p.last_dm));
            b.extend_from_slice(&p.adapt[0].to_le_bytes());
            b.extend_from_slice(&p.adapt[1].to_le_bytes());
            b.extend_from_slice(p.buf);
        }
        HeadChunk::Xor(x) => {
            b.push(CHUNK_XOR);
            put_xor_chunk(b, x);
        }
    }
}

fn put_xor_chunk(b: &mut Vec<u8>, x: &XorChunk) {
    let p = x.raw_parts();
    put_uvarint(b, p.bytes.len() as u64);
    b.extend_from_slice(p.bytes);
    put_uvarint(b, zigzag(p.min_t));
    put_uvarint(b, zigzag(p.t.wrapping_sub(p.min_t)));
    put_uvarint(b, p.delta);
    b.extend_from_slice(&p.v.to_le_bytes());
    b.extend_from_slice(&[p.leading, p.trailing, p.used]);
}

/// Appends one series entry (id, labels, chunks) to a series payload,
/// with the slots of columns its chunks need that `cols` says the file
/// does not hold yet.
pub fn encode_series(
    b: &mut Vec<u8>,
    cols: &mut ColumnTable,
    id: u32,
    labels: &Labels,
    chunks: &Chunks,
) {
    let (sealed, open, ooo_chunks, ooo) = chunks.parts();
    encode_parts(
        b,
        cols,
        id,
        labels,
        sealed.iter(),
        open,
        ooo_chunks.iter(),
        ooo,
    );
}

/// One series entry from the parts [`Chunks::parts`] gives (iterated in
/// place: every series of every checkpoint comes through here).
#[allow(clippy::too_many_arguments)]
fn encode_parts<'a>(
    b: &mut Vec<u8>,
    cols: &mut ColumnTable,
    id: u32,
    labels: &Labels,
    sealed: impl ExactSizeIterator<Item = &'a HeadChunk>,
    open: &HeadChunk,
    ooo_chunks: impl ExactSizeIterator<Item = &'a XorChunk>,
    ooo: &[Sample],
) {
    put_uvarint(b, u64::from(id));
    put_uvarint(b, labels.len() as u64);
    for l in labels {
        put_str(b, &l.name);
        put_str(b, &l.value);
    }
    put_uvarint(b, sealed.len() as u64);
    for c in sealed {
        put_head_chunk(b, cols, c);
    }
    put_head_chunk(b, cols, open);
    put_uvarint(b, ooo_chunks.len() as u64);
    for c in ooo_chunks {
        put_xor_chunk(b, c);
    }
    put_uvarint(b, ooo.len() as u64);
    for s in ooo {
        b.extend_from_slice(&s.t.to_le_bytes());
        b.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
}

/// The entry of a series whose data is split between the generation a
/// pending cut is writing (`frozen`) and the head's new one (`live`), as
/// one set of chunks [`Chunks::from_parts`] accepts. Live data normally
/// starts after the frozen data ends: the in-order chunks are laid end to
/// end (the frozen open chunk becomes a sealed one). Where a backfill put
/// live in-order data at or before the frozen data's end, the chain that
/// holds the newest sample stays the in-order data and the other
/// generation's in-order samples become an out-of-order run (with the
/// live buffer, if the frozen chain stays): every out-of-order sample
/// must be older than the newest in-order one, which is what appends
/// check conflicts against. Frozen out-of-order samples not yet in a run
/// become one (out-of-order runs may overlap anything).
pub fn encode_series_split(
    b: &mut Vec<u8>,
    cols: &mut ColumnTable,
    id: u32,
    labels: &Labels,
    frozen: &Chunks,
    live: &Chunks,
) {
    fn in_order<'a>(sealed: &'a [HeadChunk], open: &'a HeadChunk) -> Vec<&'a HeadChunk> {
        sealed
            .iter()
            .chain((!open.is_empty()).then_some(open))
            .collect()
    }
    fn run(samples: impl IntoIterator<Item = Sample>) -> Option<XorChunk> {
        let mut c = XorChunk::new();
        for s in samples {
            c.append(s.t, s.v);
        }
        (!c.is_empty()).then_some(c)
    }
    let (f_sealed, f_open, f_ooo_chunks, f_ooo) = frozen.parts();
    let (l_sealed, l_open, l_ooo_chunks, l_ooo) = live.parts();
    let f_in = in_order(f_sealed, f_open);
    let l_in = in_order(l_sealed, l_open);
    let end_to_end = match (f_in.last(), l_in.first()) {
        (Some(f), Some(l)) => f.max_t() < l.min_t(),
        _ => true,
    };
    let mut ooo_chunks: Vec<Cow<XorChunk>> = f_ooo_chunks
        .iter()
        .chain(l_ooo_chunks)
        .map(Cow::Borrowed)
        .collect();
    ooo_chunks.extend(run(f_ooo.iter().copied()).map(Cow::Owned));
    // (in-order chunks but the open one, open chunk, out-of-order buffer)
    let (sealed, open, ooo): (Vec<&HeadChunk>, _, _) = if end_to_end {
        let mut sealed = f_in;
        sealed.extend(l_sealed);
        (sealed, l_open, l_ooo)
    } else if l_in.last().map(|c| c.max_t()) > f_in.last().map(|c| c.max_t()) {
        // The live chain holds the newest sample: it stays the in-order
        // data (appends check conflicts against what is older than its
        // end), the frozen chain becomes a run.
        ooo_chunks.extend(run(f_in.iter().flat_map(|c| c.iter())).map(Cow::Owned));
        (l_sealed.iter().collect(), l_open, l_ooo)
    } else {
        let mut samples: Vec<Sample> = l_in.iter().flat_map(|c| c.iter()).collect();
        samples.extend_from_slice(l_ooo);
        samples.sort_by_key(|s| s.t);
        ooo_chunks.extend(run(samples).map(Cow::Owned));
        (f_sealed.iter().collect(), f_open, &[][..])
    };
    encode_parts(
        b,
        cols,
        id,
        labels,
        sealed.into_iter(),
        open,
        ooo_chunks.iter().map(|c| &**c),
        ooo,
    );
}

/// One series' entry of a [`REC_STARTS`] record (nothing without starts).
fn encode_starts(b: &mut Vec<u8>, id: u32, starts: &[(i64, i64)]) {
    if starts.is_empty() {
        return;
    }
    put_uvarint(b, u64::from(id));
    put_uvarint(b, starts.len() as u64);
    let mut prev = 0i64;
    for &(t, st) in starts {
        put_uvarint(b, zigzag(t.wrapping_sub(prev)));
        put_uvarint(b, zigzag(t.wrapping_sub(st)));
        prev = t;
    }
}

// ---------------------------------------------------------------------------
// Decoding

fn ivarint(c: &mut Cursor<'_>) -> Option<i64> {
    c.uvarint().map(unzigzag)
}

fn byte(c: &mut Cursor<'_>) -> Option<u8> {
    Some(c.take(1)?[0])
}

/// A count that each element of at least `min_bytes` must still fit.
fn count(c: &mut Cursor<'_>, min_bytes: usize) -> Option<usize> {
    let n = usize::try_from(c.uvarint()?).ok()?;
    (n <= c.b.len() / min_bytes.max(1)).then_some(n)
}

/// A column reference and the slots it adds (see [`ColumnTable::put`]):
/// a new column (the next number) or one read before, grown.
fn get_column(c: &mut Cursor<'_>, cols: &mut Vec<Arc<TimeColumn>>) -> Option<Arc<TimeColumn>> {
    let id = usize::try_from(c.uvarint()?).ok()?;
    let n = count(c, 1)?;
    let next = |c: &mut Cursor<'_>, prev: i64| -> Option<i64> {
        let d = i64::try_from(c.uvarint()?).ok().filter(|&d| d > 0)?;
        prev.checked_add(d)
    };
    if id == cols.len() {
        if n == 0 || n > COLUMN_CAP {
            return None;
        }
        let mut ts = Vec::with_capacity(n);
        ts.push(ivarint(c)?);
        for i in 1..n {
            ts.push(next(c, ts[i - 1])?);
        }
        // Checks the capacity and that offsets fit.
        let col = TimeColumn::new(&ts)?;
        cols.push(Arc::clone(&col));
        return Some(col);
    }
    let col = Arc::clone(cols.get(id)?);
    // Several chunks on it: a chunk left alone on it later was sharing by
    // chance (as `Columns::join` marks it).
    col.mark_joined();
    for _ in 0..n {
        let len = col.len();
        let t = next(c, col.get(len - 1))?;
        if col.claim(len, t) != Claim::Pushed {
            return None;
        }
    }
    Some(col)
}

fn get_head_chunk(c: &mut Cursor<'_>, cols: &mut Vec<Arc<TimeColumn>>) -> Option<HeadChunk> {
    match byte(c)? {
        CHUNK_DECIMAL_SHARED => {
            let col = get_column(c, cols)?;
            let start = u32::try_from(c.uvarint()?).ok()?;
            let scale = byte(c)?;
            let count = u32::try_from(c.uvarint()?).ok()?;
            let bits = c.uvarint()?;
            let last_m = ivarint(c)?;
            let last_dm = ivarint(c)?;
            let adapt_m = c.u32_le()?;
            let buf = c.take(usize::try_from(bits.div_ceil(8)).ok()?)?;
            let parts = SharedParts {
                col: &col,
                start,
                buf,
                bits,
                count,
                scale,
                last_m,
                last_dm,
                adapt_m,
            };
            DecimalChunk::from_shared_parts(&parts).map(HeadChunk::Decimal)
        }
        kind @ (CHUNK_DECIMAL | CHUNK_DECIMAL_BUCKETS) => {
            let scale = byte(c)?;
            let count = u32::try_from(c.uvarint()?).ok()?;
            let bits = c.uvarint()?;
            let first_t = ivarint(c)?;
            let last_t = first_t.wrapping_add(ivarint(c)?);
            let last_dt = ivarint(c)?;
            let last_m = ivarint(c)?;
            let last_dm = ivarint(c)?;
            let adapt = if kind == CHUNK_DECIMAL {
                [c.u32_le()?, c.u32_le()?]
            } else {
                [0, 0]
            };
            let len = usize::try_from(bits.div_ceil(8)).ok()?;
            let buf = c.take(len)?;
            let parts = DecimalParts {
                buf,
                bits,
                count,
                scale,
                first_t,
                last_t,
                last_dt,
                last_m,
                last_dm,
                adapt,
            };
            if kind == CHUNK_DECIMAL {
                DecimalChunk::from_raw_parts(&parts)
            } else {
                DecimalChunk::from_bucket_coded_parts(&parts)
            }
            .map(HeadChunk::Decimal)
        }
        CHUNK_XOR => get_xor_chunk(c).map(|x| HeadChunk::Xor(Box::new(x))),
        _ => None,
    }
}

fn get_xor_chunk(c: &mut Cursor<'_>) -> Option<XorChunk> {
    let len = usize::try_from(c.uvarint()?).ok()?;
    let bytes = c.take(len)?;
    let min_t = ivarint(c)?;
    let t = min_t.wrapping_add(ivarint(c)?);
    let delta = c.uvarint()?;
    let v = c.u64_le()?;
    let w = c.take(3)?;
    XorChunk::from_raw_parts(&XorParts {
        bytes,
        min_t,
        t,
        delta,
        v,
        leading: w[0],
        trailing: w[1],
        used: w[2],
    })
    .ok()
}

/// One series' entry of a [`REC_STARTS`] record: sample times strictly
/// increasing, no start of 0 (unknown starts are not stored).
fn decode_starts(c: &mut Cursor<'_>) -> Option<(u32, Vec<(i64, i64)>)> {
    let id = u32::try_from(c.uvarint()?).ok()?;
    let n = count(c, 2)?;
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        let t = prev.wrapping_add(unzigzag(c.uvarint()?));
        let st = t.wrapping_sub(unzigzag(c.uvarint()?));
        if st == 0 || out.last().is_some_and(|&(p, _)| p >= t) {
            return None;
        }
        out.push((t, st));
        prev = t;
    }
    (n > 0).then_some((id, out))
}

/// Decodes one series entry; `None` if malformed.
fn decode_series(
    c: &mut Cursor<'_>,
    cols: &mut Vec<Arc<TimeColumn>>,
) -> Option<(u32, Labels, Chunks)> {
    let id = u32::try_from(c.uvarint()?).ok()?;
    let n = count(c, 2)?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        pairs.push(Label {
            name: c.label()?,
            value: c.label()?,
        });
    }
    let labels = Labels::from_pairs(pairs).ok()?;
    if labels.len() != n {
        return None;
    }
    let n = count(c, 2)?;
    let mut sealed = Vec::with_capacity(n);
    for _ in 0..n {
        sealed.push(get_head_chunk(c, cols)?);
    }
    let open = get_head_chunk(c, cols)?;
    // The head seals a chunk whose column is full at once.
    if open.column_full() {
        return None;
    }
    let n = count(c, 2)?;
    let mut ooo_chunks = Vec::with_capacity(n);
    for _ in 0..n {
        ooo_chunks.push(get_xor_chunk(c)?);
    }
    let n = count(c, 16)?;
    let mut ooo = Vec::with_capacity(n);
    for _ in 0..n {
        let t = c.u64_le()? as i64;
        let v = f64::from_bits(c.u64_le()?);
        ooo.push(Sample { t, v });
    }
    let chunks = Chunks::from_parts(sealed, open, ooo_chunks, ooo)?;
    Some((id, labels, chunks))
}

// ---------------------------------------------------------------------------
// Writing

/// Writes a checkpoint file: [`Writer::create`], series, metadata and
/// positions, then [`Writer::finish`].
pub struct Writer {
    tmp: PathBuf,
    out: BufWriter<File>,
    /// Payload of the series record being filled.
    series: Vec<u8>,
    /// Payload of the start-timestamps record of the same series.
    starts: Vec<u8>,
    /// Framed records waiting to be written.
    framed: Vec<u8>,
    num_series: u64,
    num_positions: u64,
    bytes: u64,
    columns: ColumnTable,
}

impl Writer {
    /// Starts a checkpoint in `dir` (under a temporary name).
    pub fn create(dir: &Path, start: &Start) -> Result<Writer> {
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", file_name(start.pos)));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = Writer {
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            series: Vec::with_capacity(SERIES_RECORD_BYTES + (64 << 10)),
            starts: Vec::new(),
            framed: Vec::new(),
            num_series: 0,
            num_positions: 0,
            bytes: 0,
            columns: ColumnTable::default(),
        };
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        w.write(&header)?;
        wal::frame(&mut w.framed, REC_START, |b| {
            b.extend_from_slice(&start.base_segment.to_le_bytes());
            b.extend_from_slice(&start.pos.seq.to_le_bytes());
            b.extend_from_slice(&start.pos.offset.to_le_bytes());
            b.extend_from_slice(&start.created_ms.to_le_bytes());
        });
        w.write_framed()?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.tmp, e))
    }

    fn write_framed(&mut self) -> Result<()> {
        let framed = std::mem::take(&mut self.framed);
        let r = self.write(&framed);
        self.framed = framed;
        self.framed.clear();
        r
    }

    /// Adds a series entry (typically under the series' lock).
    pub fn add_series(&mut self, id: u32, labels: &Labels, chunks: &Chunks) {
        encode_series(&mut self.series, &mut self.columns, id, labels, chunks);
        let mut starts = Vec::new();
        chunks.read_starts(i64::MIN, i64::MAX, &mut starts);
        encode_starts(&mut self.starts, id, &starts);
        self.num_series += 1;
    }

    /// Adds a series entry whose data is split by a pending cut (see
    /// [`encode_series_split`]).
    pub fn add_series_split(&mut self, id: u32, labels: &Labels, frozen: &Chunks, live: &Chunks) {
        encode_series_split(
            &mut self.series,
            &mut self.columns,
            id,
            labels,
            frozen,
            live,
        );
        let mut starts = Vec::new();
        frozen.read_starts(i64::MIN, i64::MAX, &mut starts);
        live.read_starts(i64::MIN, i64::MAX, &mut starts);
        crate::db::merge_generations(&mut starts);
        encode_starts(&mut self.starts, id, &starts);
        self.num_series += 1;
    }

    /// Series added so far.
    pub fn num_series(&self) -> u64 {
        self.num_series
    }

    /// Writes the series record being filled if it is large enough (call
    /// with no lock held: it may write to the file).
    pub fn maybe_flush_series(&mut self) -> Result<()> {
        if self.series.len() + self.starts.len() >= SERIES_RECORD_BYTES {
            self.flush_series()?;
        }
        Ok(())
    }

    fn flush_series(&mut self) -> Result<()> {
        if self.series.is_empty() {
            return Ok(());
        }
        let payload = std::mem::take(&mut self.series);
        wal::frame(&mut self.framed, REC_SERIES, |b| {
            b.extend_from_slice(&payload)
        });
        self.series = payload;
        self.series.clear();
        if !self.starts.is_empty() {
            let starts = std::mem::take(&mut self.starts);
            wal::frame(&mut self.framed, REC_STARTS, |b| {
                b.extend_from_slice(&starts)
            });
            self.starts = starts;
            self.starts.clear();
        }
        self.write_framed()
    }

    pub fn metadata(&mut self, metadata: &[MetricMetadata]) -> Result<()> {
        self.flush_series()?;
        wal::encode_metadata(&mut self.framed, metadata);
        self.write_framed()
    }

    /// Replay positions of series whose last applied record ends after the
    /// start position.
    pub fn positions(&mut self, positions: &[(u32, WalPos)]) -> Result<()> {
        self.flush_series()?;
        for part in positions.chunks(1 << 16) {
            wal::frame(&mut self.framed, REC_POSITIONS, |b| {
                for (id, p) in part {
                    put_uvarint(b, u64::from(*id));
                    put_uvarint(b, p.seq);
                    put_uvarint(b, p.offset);
                }
            });
            self.write_framed()?;
        }
        self.num_positions += positions.len() as u64;
        Ok(())
    }

    /// Writes the end record, fsyncs and renames the file to its final
    /// name, fsyncs the directory. Returns the path and size. On error the
    /// temporary file is deleted.
    pub fn finish(mut self) -> Result<(PathBuf, u64)> {
        let tmp = self.tmp.clone();
        let result = (|| {
            self.flush_series()?;
            let (series, positions) = (self.num_series, self.num_positions);
            wal::frame(&mut self.framed, REC_END, |b| {
                b.extend_from_slice(&series.to_le_bytes());
                b.extend_from_slice(&positions.to_le_bytes());
            });
            self.write_framed()?;
            self.out.flush().map_err(|e| Error::io(&tmp, e))?;
            self.out
                .get_ref()
                .sync_all()
                .map_err(|e| Error::io(&tmp, e))?;
            let name = tmp
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(TMP_SUFFIX))
                .ok_or_else(|| Error::Invalid(format!("bad checkpoint name {}", tmp.display())))?;
            let dir = tmp.parent().unwrap_or(Path::new("."));
            let path = dir.join(name);
            fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
            wal::fsync_dir(dir)?;
            Ok((path, self.bytes))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Deletes the unfinished file.
    pub fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self.out);
        let _ = fs::remove_file(tmp);
    }
}

// ---------------------------------------------------------------------------
// Reading

/// What [`read`] found besides the series.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub series: u64,
    /// (series id, position of its last record already in the checkpoint)
    /// for series whose last record ends after the start position.
    pub positions: Vec<(u32, WalPos)>,
    /// (series id, (sample time, start timestamp) sorted by time) of the
    /// series whose samples have start timestamps.
    pub starts: Vec<(u32, Vec<(i64, i64)>)>,
}

/// Reads the checkpoint at `path`: checks the header, hands the start
/// record to `check` (an `Err` stops reading: stale or not matching the
/// WAL), then each series to `on_series` and each metadata entry to
/// `on_metadata`, in file order. Any damage (bad magic or version, a CRC
/// mismatch, a malformed or missing record, a missing end) is
/// [`Error::Corruption`] naming the file; callers then fall back to a full
/// WAL replay, discarding what was handed over.
pub fn read(
    path: &Path,
    check: &mut dyn FnMut(&Start) -> Result<()>,
    on_series: &mut dyn FnMut(u32, Labels, Chunks) -> Result<()>,
    on_metadata: &mut dyn FnMut(MetricMetadata),
) -> Result<Loaded> {
    let corrupt = |detail: String| Error::corruption(path, detail);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN];
    if file_len < HEADER_LEN as u64 {
        return Err(corrupt("shorter than its header".into()));
    }
    r.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    if &header[..8] != MAGIC {
        return Err(corrupt("bad checkpoint magic".into()));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(corrupt(format!(
            "unsupported checkpoint format version {version}"
        )));
    }
    let mut pos = HEADER_LEN as u64;
    let mut buf = Vec::new();
    let mut loaded = Loaded::default();
    let mut started = false;
    let mut columns = Vec::new();
    loop {
        if file_len - pos < 9 {
            return Err(corrupt(format!(
                "truncated: no end record (record header at offset {pos})"
            )));
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD || len as u64 > file_len - pos - 8 {
            return Err(corrupt(format!("bad record length {len} at offset {pos}")));
        }
        buf.resize(len, 0);
        r.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
        if crc32c::crc32c(&buf) != crc {
            return Err(corrupt(format!(
                "checksum mismatch in record at offset {pos}"
            )));
        }
        let bad = |what: &str| corrupt(format!("malformed {what} record at offset {pos}"));
        let (typ, payload) = (buf[0], &buf[1..]);
        let mut c = Cursor { b: payload };
        if !started && typ != REC_START {
            return Err(bad("first (not a start)"));
        }
        match typ {
            REC_START => {
                if started || payload.len() != 32 {
                    return Err(bad("start"));
                }
                let v: Vec<u64> = payload
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect();
                started = true;
                check(&Start {
                    base_segment: v[0],
                    pos: WalPos {
                        seq: v[1],
                        offset: v[2],
                    },
                    created_ms: v[3] as i64,
                })?;
            }
            REC_SERIES => {
                while !c.b.is_empty() {
                    let (id, labels, chunks) =
                        decode_series(&mut c, &mut columns).ok_or_else(|| bad("series"))?;
                    on_series(id, labels, chunks)?;
                    loaded.series += 1;
                }
            }
            REC_METADATA => match wal::decode_record(typ, payload) {
                Some(wal::Record::Metadata(list)) => list.into_iter().for_each(&mut *on_metadata),
                _ => return Err(bad("metadata")),
            },
            REC_POSITIONS => {
                while !c.b.is_empty() {
                    let entry = (|| {
                        let id = u32::try_from(c.uvarint()?).ok()?;
                        let seq = c.uvarint()?;
                        let offset = c.uvarint()?;
                        Some((id, WalPos { seq, offset }))
                    })()
                    .ok_or_else(|| bad("positions"))?;
                    loaded.positions.push(entry);
                }
            }
            REC_STARTS => {
                while !c.b.is_empty() {
                    let entry = decode_starts(&mut c).ok_or_else(|| bad("start timestamps"))?;
                    loaded.starts.push(entry);
                }
            }
            REC_END => {
                if payload.len() != 16 {
                    return Err(bad("end"));
                }
                let series = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                let positions = u64::from_le_bytes(payload[8..].try_into().expect("8 bytes"));
                if series != loaded.series || positions != loaded.positions.len() as u64 {
                    return Err(corrupt(format!(
                        "end record counts {series} series and {positions} positions, \
                         the file holds {} and {}",
                        loaded.series,
                        loaded.positions.len()
                    )));
                }
                if pos + 8 + len as u64 != file_len {
                    return Err(corrupt("bytes after the end record".into()));
                }
                return Ok(loaded);
            }
            other => {
                return Err(corrupt(format!(
                    "unknown record type {other} at offset {pos}"
                )));
            }
        }
        pos += 8 + len as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_column::Columns;

    /// Decimal sealed chunks, a XOR open chunk (stale marker), then
    /// out-of-order samples both compressed and buffered. Built part by
    /// part, so that the golden file does not depend on the head's chunk
    /// size.
    fn chunks_with_everything() -> Chunks {
        let stale = f64::from_bits(crate::STALE_NAN);
        let chunk = |from: i64, to: i64| {
            let mut h = HeadChunk::default();
            for i in from..to {
                let v = if i == 250 { stale } else { i as f64 * 0.25 };
                h.append(1_000 + i * 10, v);
            }
            h
        };
        let mut ooo_chunk = XorChunk::new();
        for i in 0..32i64 {
            ooo_chunk.append(1_005 + i * 10, -0.0);
        }
        ooo_chunk.shrink_to_fit();
        let ooo = (32..40i64)
            .map(|i| Sample::new(1_005 + i * 10, -0.0))
            .collect();
        Chunks::from_parts(
            vec![chunk(0, 120), chunk(120, 240)],
            chunk(240, 300),
            vec![ooo_chunk],
            ooo,
        )
        .expect("valid parts")
    }

    fn samples(c: &Chunks) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        c.read(i64::MIN, i64::MAX, &mut out);
        out.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// The start every test checkpoint has ([`read_back`] checks it).
    fn test_start() -> Start {
        Start {
            base_segment: 3,
            pos: WalPos {
                seq: 4,
                offset: 100,
            },
            created_ms: 7,
        }
    }

    fn write(dir: &Path, series: &[(u32, Labels, Chunks)]) -> PathBuf {
        let mut w = Writer::create(dir, &test_start()).unwrap();
        for (id, l, c) in series {
            w.add_series(*id, l, c);
            w.maybe_flush_series().unwrap();
        }
        w.metadata(&[MetricMetadata {
            metric_family: "up".into(),
            metric_type: crate::MetricType::Gauge,
            help: "h".into(),
            unit: String::new(),
        }])
        .unwrap();
        w.positions(&[(1, WalPos { seq: 5, offset: 40 })]).unwrap();
        w.finish().unwrap().0
    }

    type Read = (Vec<(u32, Labels, Chunks)>, Vec<MetricMetadata>, Loaded);

    fn read_back(path: &Path) -> Result<Read> {
        let mut series = Vec::new();
        let mut meta = Vec::new();
        let loaded = read(
            path,
            &mut |s| {
                let want = test_start();
                assert_eq!(s.base_segment, want.base_segment);
                assert_eq!(s.pos, want.pos);
                Ok(())
            },
            &mut |id, l, c| {
                series.push((id, l, c));
                Ok(())
            },
            &mut |m| meta.push(m),
        )?;
        Ok((series, meta, loaded))
    }

    #[test]
    fn round_trip_keeps_chunks_bit_exact_and_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let mut series = Vec::new();
        // Series scraped together, their timestamps in shared columns
        // (stored in each chunk).
        let cols = Columns::default();
        let mut shared: Vec<Chunks> = (0..2000).map(|_| Chunks::default()).collect();
        for k in 0..300i64 {
            for (id, c) in shared.iter_mut().enumerate().skip(1).step_by(3) {
                c.push(1_000 + k * 15_000 + k % 7, id as f64 + k as f64, &cols);
            }
        }
        for id in 0..2000u32 {
            let l = Labels::new(&[("__name__", "m"), ("i", &id.to_string())]);
            let c = match id % 3 {
                0 => chunks_with_everything(),
                1 => {
                    let c = std::mem::take(&mut shared[id as usize]);
                    // The first series of the scrape codes its own.
                    assert!(c.parts().1.is_shared() || id == 1);
                    c
                }
                _ => Chunks::default(),
            };
            series.push((id * 2, l, c));
        }
        let path = write(dir.path(), &series);
        assert_eq!(
            list(dir.path()).unwrap(),
            vec![(
                WalPos {
                    seq: 4,
                    offset: 100
                },
                path.clone()
            )]
        );
        let (got, meta, loaded) = read_back(&path).unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(loaded.positions, vec![(1, WalPos { seq: 5, offset: 40 })]);
        assert_eq!(got.len(), series.len());
        for ((id, l, c), (gid, gl, gc)) in series.iter().zip(got) {
            assert_eq!((*id, l), (gid, &gl));
            assert_eq!(samples(c), samples(&gc));
            // Chunks on columns are restored on columns.
            let (sealed, open, ..) = gc.parts();
            let (was_sealed, was_open, ..) = c.parts();
            let shared = |cs: &mut dyn Iterator<Item = &HeadChunk>| {
                cs.map(HeadChunk::is_shared).collect::<Vec<_>>()
            };
            assert_eq!(
                shared(&mut sealed.iter().chain([open])),
                shared(&mut was_sealed.iter().chain([was_open])),
                "series {id}"
            );
            // Appending continues both streams the same way.
            let (mut a, mut b, cols) = (gc, Chunks::default(), Columns::default());
            for (t, v) in samples(c) {
                b.push(t, f64::from_bits(v), &cols);
            }
            for t in [5_000, 5_015, 5_030] {
                a.push(t, 1.5, &cols);
                b.push(t, 1.5, &cols);
            }
            assert_eq!(samples(&a), samples(&b));
        }
    }

    /// Series `ids` scraped together `n` times from `t0`, 15 s apart with
    /// a few ms of jitter, each chunk on the target's column but the first
    /// series' (which codes its own timestamps).
    fn scraped_together(ids: std::ops::Range<u32>, t0: i64, n: i64) -> Vec<(u32, Labels, Chunks)> {
        let cols = Columns::default();
        let mut out: Vec<(u32, Labels, Chunks)> = ids
            .map(|id| {
                let l = Labels::new(&[("__name__", "node_cpu"), ("cpu", &id.to_string())]);
                (id, l, Chunks::default())
            })
            .collect();
        for k in 0..n {
            for (id, _, c) in &mut out {
                c.push(
                    t0 + k * 15_000 + k % 5,
                    f64::from(*id) + 0.25 * k as f64,
                    &cols,
                );
            }
        }
        out
    }

    #[test]
    fn shared_columns_are_written_once_and_restored_shared() {
        let dir = tempfile::tempdir().unwrap();
        // 40 series scraped 300 times: a sealed chunk on a full column, an
        // open one on the next. Series 40 starts late, mid-column (its
        // chunk's first slot is not 0), and the second half has one more
        // scrape, so the file meets that column grown: it is written in
        // two pieces.
        let cols = Columns::default();
        let mut series: Vec<(u32, Labels, Chunks)> = (0..41u32)
            .map(|id| {
                let l = Labels::new(&[("__name__", "node_cpu"), ("cpu", &id.to_string())]);
                (id, l, Chunks::default())
            })
            .collect();
        let t = |k: i64| 1_000_000 + k * 15_000 + k % 5;
        for k in 0..301i64 {
            for (id, _, c) in &mut series {
                let late = *id == 40 && k < 260;
                let early_half = *id < 20 && k == 300;
                if !late && !early_half {
                    c.push(t(k), f64::from(*id) + 0.25 * k as f64, &cols);
                }
            }
        }
        let holders = |g: &[(u32, Labels, Chunks)]| -> Vec<(usize, Vec<usize>)> {
            g.iter()
                .map(|(_, _, c)| {
                    let (sealed, open, ..) = c.parts();
                    let sealed = sealed.iter().map(HeadChunk::column_holders).collect();
                    (open.column_holders(), sealed)
                })
                .collect()
        };
        let before = holders(&series);
        assert_eq!(before[1].0, 40, "all but the first series share");
        assert_eq!(before[40], (40, vec![]), "the late series joined");
        let path = write(dir.path(), &series);
        // Each column once: far smaller than with the timestamps in every
        // chunk.
        let mut own = 0;
        for (_, l, c) in &series {
            let mut b = Vec::new();
            let (sealed, open, ooo_chunks, ooo) = c.parts();
            let sealed: Vec<_> = sealed.iter().map(|h| h.with_own_times(false)).collect();
            let c = Chunks::from_parts(
                sealed,
                open.with_own_times(false),
                ooo_chunks.to_vec(),
                ooo.to_vec(),
            )
            .unwrap();
            encode_series(&mut b, &mut ColumnTable::default(), 0, l, &c);
            own += b.len();
        }
        let size = fs::metadata(&path).unwrap().len() as usize;
        assert!(
            size * 10 < own * 7,
            "{size} bytes against {own} with own timestamps"
        );
        let (mut got, ..) = read_back(&path).unwrap();
        for ((_, _, c), (_, _, gc)) in series.iter().zip(&got) {
            assert_eq!(samples(c), samples(gc));
        }
        assert_eq!(holders(&got), before, "restored on shared columns");
        // Appends go on in the restored column: the next scrape's
        // timestamp is found where the second half put it, and the first
        // half's next one is pushed once and found by the others.
        let cols = Columns::default();
        for k in [300, 301] {
            for (id, _, c) in &mut got {
                if *id < 20 || k == 301 {
                    c.push(t(k), f64::from(*id), &cols);
                }
            }
        }
        assert_eq!(holders(&got), before);
        for (id, _, c) in &got {
            assert_eq!(samples(c).last(), Some(&(t(301), f64::from(*id).to_bits())));
        }
    }

    /// The type of every record in the file at `path`, in order.
    fn record_types(path: &Path) -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        let mut pos = HEADER_LEN;
        let mut out = Vec::new();
        while pos < bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            out.push(bytes[pos + 8]);
            pos += 8 + len;
        }
        out
    }

    /// Start timestamps come back per series, a split series' two
    /// generations as one list; series without any have no entry, and a
    /// head without any writes no start-timestamp record.
    #[test]
    fn start_timestamps_read_back_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let cols = Columns::default();
        let with_starts = |ts: &[i64], st: &dyn Fn(i64) -> i64| {
            let mut c = Chunks::default();
            for &t in ts {
                c.push(t, 1.0, &cols);
                if st(t) != 0 {
                    c.set_start(t, st(t));
                }
            }
            c
        };
        let counter = with_starts(&[1_000, 2_000, 3_000], &|_| 500);
        let delta = with_starts(&[1_000, 2_000, 3_000], &|t| t - 1_000);
        let frozen = with_starts(&[10, 20], &|t| if t == 10 { 0 } else { -5 });
        let live = with_starts(&[30, 40], &|t| t - 10);
        let plain = with_starts(&[7], &|_| 0);
        let mut w = Writer::create(dir.path(), &test_start()).unwrap();
        let l = |i: u32| Labels::new(&[("__name__", "m"), ("i", &i.to_string())]);
        w.add_series(1, &l(1), &counter);
        w.add_series(2, &l(2), &plain);
        w.add_series_split(3, &l(3), &frozen, &live);
        w.maybe_flush_series().unwrap();
        w.add_series(4, &l(4), &delta);
        w.metadata(&[]).unwrap();
        let (path, _) = w.finish().unwrap();
        let (got, _, loaded) = read_back(&path).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            loaded.starts,
            vec![
                (1, vec![(1_000, 500), (2_000, 500), (3_000, 500)]),
                (3, vec![(20, -5), (30, 20), (40, 30)]),
                (4, vec![(2_000, 1_000), (3_000, 2_000)]),
            ]
        );

        assert!(record_types(&path).contains(&REC_STARTS));
        // Without starts: no record of them at all.
        let plain_dir = dir.path().join("plain");
        std::fs::create_dir_all(&plain_dir).unwrap();
        let plain_path = write(&plain_dir, &[(2, l(2), plain)]);
        assert!(!record_types(&plain_path).contains(&REC_STARTS));

        // A start of 0 or times out of order in an entry: damage.
        for entry in [
            vec![1u8, 1, 2, 4],       // t = 1, start = −1: fine
            vec![1u8, 1, 2, 2],       // t = 1, start = 0
            vec![1u8, 2, 2, 4, 0, 4], // the second time not after the first
        ] {
            let mut c = Cursor { b: &entry };
            let ok = decode_starts(&mut c).is_some();
            assert_eq!(ok, entry == [1, 1, 2, 4], "{entry:?}");
        }
    }

    /// A series split by a pending cut reads back as one set of chunks
    /// holding both generations, whichever way their times fall.
    #[test]
    fn split_series_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cols = Columns::default();
        let pushed = |ts: &[i64]| {
            let mut c = Chunks::default();
            for &t in ts {
                c.push(t, t as f64 / 4.0, &cols);
            }
            c
        };
        let newer: Vec<i64> = (0..200).map(|i| 4_000 + i * 10).collect();
        let mut newer_ooo = newer.clone();
        newer_ooo.extend([4_005, 4_015, 5_005]);
        let backfill: Vec<i64> = (0..150).map(|i| 503 + i * 10).chain([9_000, 607]).collect();
        let cases: Vec<(&str, Chunks, Chunks)> = vec![
            (
                "live after frozen",
                chunks_with_everything(),
                pushed(&newer),
            ),
            (
                "live out of order too",
                chunks_with_everything(),
                pushed(&newer_ooo),
            ),
            (
                "live backfill under frozen",
                chunks_with_everything(),
                pushed(&backfill),
            ),
            (
                "frozen newest, live under it",
                chunks_with_everything(),
                pushed(&backfill[..150]),
            ),
            ("no live data", chunks_with_everything(), Chunks::default()),
            (
                "frozen in order only",
                pushed(&[10, 20, 30]),
                pushed(&newer),
            ),
        ];
        let mut w = Writer::create(dir.path(), &test_start()).unwrap();
        for (id, (_, frozen, live)) in cases.iter().enumerate() {
            let l = Labels::new(&[("__name__", "m"), ("i", &id.to_string())]);
            w.add_series_split(id as u32, &l, frozen, live);
        }
        w.metadata(&[]).unwrap();
        let (path, _) = w.finish().unwrap();
        let (got, _, _) = read_back(&path).unwrap();
        assert_eq!(got.len(), cases.len());
        for ((name, frozen, live), (_, _, mut c)) in cases.into_iter().zip(got) {
            let mut want = samples(&frozen);
            want.extend(samples(&live));
            want.sort();
            want.dedup();
            assert_eq!(samples(&c), want, "{name}");
            // A different value at any stored time is a conflict, as it
            // was before the checkpoint.
            for &(t, bits) in &want {
                let v = f64::from_bits(bits);
                let other = if v.is_nan() { 1.0 } else { v + 1.0 };
                assert!(c.check(t, other).is_err(), "{name}: t={t} not a conflict");
            }
            // Appends go on after the newest sample.
            let next = want.last().unwrap().0 + 1;
            c.push(next, 1.0, &cols);
            assert_eq!(samples(&c).last(), Some(&(next, 1f64.to_bits())), "{name}");
        }
    }

    #[test]
    fn any_damage_is_corruption_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut series: Vec<_> = (0..40u32)
            .map(|id| {
                (
                    id,
                    Labels::new(&[("__name__", "m"), ("i", &id.to_string())]),
                    chunks_with_everything(),
                )
            })
            .collect();
        series.extend(scraped_together(40..52, 1_000_000, 250));
        let path = write(dir.path(), &series);
        let full = fs::read(&path).unwrap();
        let mut cuts: Vec<usize> = (0..full.len()).step_by(97).collect();
        cuts.push(full.len() - 1);
        for cut in cuts {
            fs::write(&path, &full[..cut]).unwrap();
            match read_back(&path) {
                Err(Error::Corruption { path: p, .. }) => assert_eq!(p, path),
                other => panic!("truncated at {cut}: {:?}", other.map(|r| r.0.len())),
            }
        }
        // Bytes 12..16 are reserved: ignored by readers.
        for at in (0..full.len())
            .step_by(13)
            .filter(|at| !(12..16).contains(at))
        {
            let mut flipped = full.clone();
            flipped[at] ^= 0x04;
            fs::write(&path, &flipped).unwrap();
            assert!(
                matches!(read_back(&path), Err(Error::Corruption { .. })),
                "flip at {at}"
            );
        }
    }

    fn golden_series() -> Vec<(u32, Labels, Chunks)> {
        (0..3u32)
            .map(|id| {
                let l = Labels::new(&[("__name__", "up"), ("job", &format!("j{id}"))]);
                let c = if id == 1 {
                    Chunks::default()
                } else {
                    chunks_with_everything()
                };
                (id, l, c)
            })
            .collect()
    }

    /// Version 3 adds chunks on shared columns: twelve series scraped
    /// together (the first coding its own timestamps), 250 samples each.
    fn golden_series_v3() -> Vec<(u32, Labels, Chunks)> {
        let mut series = golden_series();
        series.extend(scraped_together(3..15, 10_000, 250));
        series
    }

    /// The golden file's series read back with the samples written, and
    /// appends go on where they stopped.
    fn check_golden_reads(golden_path: &Path, series: &[(u32, Labels, Chunks)]) {
        let (got, meta, loaded) = read_back(golden_path).unwrap();
        let n = series.len();
        assert_eq!((got.len(), meta.len(), loaded.series), (n, 1, n as u64));
        for ((id, l, c), (gid, gl, mut gc)) in series.iter().zip(got) {
            assert_eq!((*id, l, samples(c)), (gid, &gl, samples(&gc)));
            let mut want = samples(c);
            for t in [5_000, 5_015, 5_029] {
                gc.push(t, 2.5, &Columns::default());
                want.push((t, 2.5f64.to_bits()));
            }
            // Older than some series' samples: those take them out of order.
            want.sort_by_key(|s| s.0);
            assert_eq!(samples(&gc), want);
        }
    }

    #[test]
    fn version_1_golden_file_still_reads() {
        // Written by the version 1 writer: decimal chunks in the bucket
        // code, converted on read.
        let golden_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/checkpoint-v1.bin");
        let golden = fs::read(&golden_path).expect("golden file");
        assert_eq!(u32::from_le_bytes(golden[8..12].try_into().unwrap()), 1);
        check_golden_reads(&golden_path, &golden_series());
    }

    #[test]
    fn version_2_golden_file_still_reads() {
        // Written by the version 2 writer: shared timestamps were coded
        // into each chunk.
        let golden_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/checkpoint-v2.bin");
        let golden = fs::read(&golden_path).expect("golden file");
        assert_eq!(u32::from_le_bytes(golden[8..12].try_into().unwrap()), 2);
        check_golden_reads(&golden_path, &golden_series());
    }

    #[test]
    fn version_3_golden_file_is_what_the_writer_writes() {
        // `SILT_BLESS=1 cargo test -p engine golden` rewrites the file; a
        // format change must bump FORMAT_VERSION and keep reading v3.
        let golden_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/checkpoint-v3.bin");
        let dir = tempfile::tempdir().unwrap();
        let series = golden_series_v3();
        let bytes = fs::read(write(dir.path(), &series)).unwrap();
        if std::env::var_os("SILT_BLESS").is_some() {
            fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
            fs::write(&golden_path, &bytes).unwrap();
        }
        let golden = fs::read(&golden_path).expect("golden file");
        assert_eq!(bytes, golden, "checkpoint format v3 changed");
        check_golden_reads(&golden_path, &series);
    }

    #[test]
    fn decoding_garbage_series_never_panics() {
        let mut seed = 0x9e37_79b9_u64;
        let mut valid = Vec::new();
        let mut table = ColumnTable::default();
        encode_series(
            &mut valid,
            &mut table,
            3,
            &Labels::new(&[("__name__", "m")]),
            &chunks_with_everything(),
        );
        // Two series of a target: the second's entry defines its column.
        for (id, l, c) in scraped_together(0..2, 5_000_000, 20) {
            encode_series(&mut valid, &mut table, id + 4, &l, &c);
        }
        for round in 0..3000 {
            let mut bytes = valid.clone();
            for _ in 0..(1 + round % 4) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (seed >> 33) as usize % bytes.len();
                bytes[i] = (seed >> 20) as u8;
            }
            bytes.truncate(bytes.len() - (round % 7));
            let mut c = Cursor { b: &bytes };
            let mut cols = Vec::new();
            while let Some((_, _, chunks)) = decode_series(&mut c, &mut cols) {
                // Whatever was accepted reads without panicking.
                let mut out = Vec::new();
                chunks.read(i64::MIN, i64::MAX, &mut out);
            }
        }
    }
}
