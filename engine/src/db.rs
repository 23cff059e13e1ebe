//! The database: ties the WAL, the head and the blocks together.
//!
//! Write path: [`Db::append`] validates a whole batch, then under the append
//! gate (shared) locks the batch's series in id order, checks every sample
//! against what is stored, logs the records to the WAL, applies them to the
//! head, and hands back a [`CommitTicket`] that resolves when the records are
//! fsynced.
//!
//! Cut: with the gate held exclusively, the WAL moves to a new segment and
//! the head freezes its live data; the frozen generation is then written to a
//! Parquet block without blocking writers, published, and dropped from the
//! head once no reader that could still need it remains. Then the WAL
//! segments it covered are deleted.
//!
//! Readers take a [`Querier`]: the block list and the number of published
//! cuts at that instant, so compaction and cuts never change what a running
//! read sees.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::block::{self, Block, BlockCache, BlockMeta, BlockSeries, BlockWriteOptions};
use crate::checkpoint;
use crate::error::{AppendError, Error, Result};
use crate::head::{Chunks, FIRST_EPOCH, Head, MemSeries, REPLAYED_EPOCH, dedup_sorted, epoch_tag};
use crate::labels::{Labels, Matcher};
use crate::metadata::{MetadataStore, MetricMetadata};
use crate::sample::{Sample, WriteBatch};
use crate::starts::{self, StartRun};
use crate::summary::{Continuity, RunSummary};
use crate::wal::{self, Record, Wal, WalPos};

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge only after the WAL records are fsynced (group commit).
    Sync,
    /// Acknowledge at once; fsync every `interval`. A crash loses at most
    /// about that much acknowledged data.
    Async { interval: Duration },
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Blocks whose newest sample is older than this are deleted, and older
    /// samples are refused; `None` keeps everything.
    pub retention: Option<Duration>,
    pub durability: Durability,
    /// Samples more than this far ahead of the wall clock are rejected.
    pub max_future: Duration,
    /// The head is cut into a block when its live data spans this long, or
    /// this long after the previous cut.
    pub block_duration: Duration,
    /// Compaction never makes blocks longer than this.
    pub max_block_duration: Duration,
    pub wal_segment_size: u64,
    /// Run cuts, compaction, retention and periodic checkpoints in background threads.
    pub background: bool,
    /// Byte budget of the decoded-page cache shared by all block reads
    /// (see [`block::BlockCache`]); 0 disables it.
    pub block_cache_bytes: usize,
    /// The checkpoint thread writes a head checkpoint (see
    /// [`crate::checkpoint`]) once this many bytes of WAL were written
    /// since the last one (WAL replayed at open counts), or sooner while
    /// the head is small (see [`CHECKPOINT_MIN_WAL_BYTES`]); 0 disables
    /// periodic checkpoints.
    pub checkpoint_wal_bytes: u64,
    /// Write a head checkpoint at [`Db::close`], so the next open replays
    /// (almost) no WAL.
    pub checkpoint_on_close: bool,
    /// Series a checkpoint visits between writing their replay positions:
    /// bounds what it holds at once (see `Db::fill_checkpoint`).
    pub checkpoint_batch_series: usize,
}

/// Default [`Options::checkpoint_wal_bytes`]: 256 MiB. At 200 k series
/// scraped every 15 s (about 175 kB of WAL a second) that is a checkpoint
/// every 25 minutes, so a restart replays at most that much WAL.
pub const DEFAULT_CHECKPOINT_WAL_BYTES: u64 = 256 << 20;

/// A checkpoint is due once the WAL written since the last one (since the
/// last cut, if none since) reaches that checkpoint's size and at least
/// this much, or [`Options::checkpoint_wal_bytes`] if that is less. A
/// sample takes about ten times more bytes in the WAL than in a checkpoint,
/// so below the cap this bounds a restart's replay to about a tenth of the
/// head's samples, and checkpoint writes come to about the WAL's bytes (a
/// little more while the head grows).
/// A restart loads the last checkpoint and replays the WAL after it, so
/// whenever the crash falls the replay is at most about the checkpoint's
/// size in WAL and restart time stays within a small factor of the load.
pub const CHECKPOINT_MIN_WAL_BYTES: u64 = 16 << 20;

/// Default [`Options::checkpoint_batch_series`].
pub const DEFAULT_CHECKPOINT_BATCH_SERIES: usize = 1 << 16;

/// Default [`Options::block_cache_bytes`]: 256 MiB.
pub const DEFAULT_BLOCK_CACHE_BYTES: usize = 256 << 20;

impl Options {
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            data_dir: data_dir.into(),
            retention: None,
            durability: Durability::Sync,
            max_future: Duration::from_secs(600),
            block_duration: Duration::from_secs(2 * 3600),
            max_block_duration: Duration::from_secs(31 * 24 * 3600),
            wal_segment_size: 128 << 20,
            background: true,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
            checkpoint_wal_bytes: DEFAULT_CHECKPOINT_WAL_BYTES,
            checkpoint_on_close: true,
            checkpoint_batch_series: DEFAULT_CHECKPOINT_BATCH_SERIES,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendSummary {
    /// Samples accepted (exact duplicates of stored samples included).
    pub samples: usize,
    pub series_created: usize,
    /// The reference of every `WriteBatch::series` entry, in order (`None`
    /// for entries without samples), for [`Db::append_with_refs`].
    pub refs: Vec<Option<SeriesRef>>,
}

/// A head series, named without its labels (see [`Db::append_with_refs`]).
/// Valid until the series leaves the head; never reused for another series
/// by the same `Db`.
///
/// Held as the id plus one, so `Option<SeriesRef>` takes four bytes (the
/// receiver's reference cache keeps millions of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef(std::num::NonZeroU32);

impl SeriesRef {
    /// The reference of head series `id`; `None` for the one id (`u32::MAX`)
    /// that has no reference (its series is appended by labels).
    fn new(id: u32) -> Option<SeriesRef> {
        id.checked_add(1)
            .and_then(std::num::NonZeroU32::new)
            .map(SeriesRef)
    }

    fn id(self) -> u32 {
        self.0.get() - 1
    }
}

/// Resolves when an appended batch is durable.
#[must_use = "a write is durable only once the ticket resolves"]
pub struct CommitTicket {
    db: Option<Arc<Db>>,
    lsn: u64,
    summary: AppendSummary,
}

impl CommitTicket {
    /// Waits until the batch's WAL records are fsynced (immediately in async mode).
    pub async fn wait(self) -> Result<AppendSummary> {
        if let Some(db) = &self.db {
            db.wal.wait_async(self.lsn).await?;
        }
        Ok(self.summary)
    }

    /// Blocking variant of [`CommitTicket::wait`]; also waits in async mode.
    pub fn wait_blocking(self) -> Result<AppendSummary> {
        if let Some(db) = &self.db {
            db.wal.wait_blocking(self.lsn)?;
        }
        Ok(self.summary)
    }

    pub fn summary(&self) -> &AppendSummary {
        &self.summary
    }
}

/// What [`Db::checkpoint`] wrote.
#[derive(Debug, Clone)]
pub struct CheckpointStats {
    pub path: PathBuf,
    pub series: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Written while a cut was pending: it holds the cut's frozen data.
    pub cut_pending: bool,
}

/// Figures for `/metrics` and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct DbStats {
    pub head_series: u64,
    pub blocks: u64,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub wal_bytes: u64,
    pub wal_segments: u64,
    /// The head was restored from a checkpoint at open.
    pub checkpoint_loaded: bool,
    /// WAL bytes replayed at open (after the checkpoint, if one was loaded).
    pub replayed_wal_bytes: u64,
}

/// See [`Db::head_label_counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadLabelCounts {
    pub num_series: u64,
    /// Label name → (value, series with that pair).
    pub labels: Vec<(String, Vec<(String, u64)>)>,
}

struct Metrics {
    samples_appended: Counter,
    series_created: Counter,
    appends_rejected: Counter,
    head_series: Gauge,
    blocks: Gauge,
    block_bytes: Gauge,
    wal_bytes: Gauge,
    wal_fsyncs: Gauge,
    cut_seconds: Histogram,
    fsync_seconds: Histogram,
    compaction_seconds: Histogram,
    compactions: Counter,
    retention_deleted: Counter,
    checkpoint_seconds: Histogram,
    checkpoint_bytes: Gauge,
    checkpoints: Counter,
    checkpoint_failures: Counter,
}

impl Metrics {
    fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            samples_appended: Counter::default(),
            series_created: Counter::default(),
            appends_rejected: Counter::default(),
            head_series: Gauge::default(),
            blocks: Gauge::default(),
            block_bytes: Gauge::default(),
            wal_bytes: Gauge::default(),
            wal_fsyncs: Gauge::default(),
            cut_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            compaction_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            compactions: Counter::default(),
            retention_deleted: Counter::default(),
            checkpoint_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            checkpoint_bytes: Gauge::default(),
            checkpoints: Counter::default(),
            checkpoint_failures: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("silt");
        r.register(
            "samples_appended",
            "Samples accepted into the head",
            m.samples_appended.clone(),
        );
        r.register(
            "series_created",
            "Series created in the head",
            m.series_created.clone(),
        );
        r.register(
            "appends_rejected",
            "Write batches rejected for bad data",
            m.appends_rejected.clone(),
        );
        r.register(
            "head_series",
            "Series in the head (active series)",
            m.head_series.clone(),
        );
        r.register("blocks", "Blocks on disk", m.blocks.clone());
        r.register_with_unit(
            "blocks_size",
            "Bytes of all blocks on disk",
            Unit::Bytes,
            m.block_bytes.clone(),
        );
        r.register_with_unit(
            "wal_size",
            "Bytes of WAL segments on disk",
            Unit::Bytes,
            m.wal_bytes.clone(),
        );
        r.register("wal_fsyncs", "WAL fsyncs since start", m.wal_fsyncs.clone());
        r.register_with_unit(
            "head_checkpoint_duration",
            "Time to write a head checkpoint",
            Unit::Seconds,
            m.checkpoint_seconds.clone(),
        );
        r.register_with_unit(
            "head_checkpoint_size",
            "Size of the last head checkpoint written",
            Unit::Bytes,
            m.checkpoint_bytes.clone(),
        );
        r.register(
            "head_checkpoints",
            "Head checkpoints written",
            m.checkpoints.clone(),
        );
        r.register(
            "head_checkpoint_failures",
            "Head checkpoints that failed",
            m.checkpoint_failures.clone(),
        );
        r.register_with_unit(
            "wal_fsync_duration",
            "WAL fsync latency (one fsync serves many writers)",
            Unit::Seconds,
            m.fsync_seconds.clone(),
        );
        r.register_with_unit(
            "head_cut_duration",
            "Time to cut the head into a block",
            Unit::Seconds,
            m.cut_seconds.clone(),
        );
        r.register_with_unit(
            "compaction_duration",
            "Time per compaction",
            Unit::Seconds,
            m.compaction_seconds.clone(),
        );
        r.register("compactions", "Compactions run", m.compactions.clone());
        r.register(
            "retention_deleted_blocks",
            "Blocks deleted by retention",
            m.retention_deleted.clone(),
        );
        m
    }
}

struct State {
    /// Published blocks, sorted by (min_time, id).
    blocks: Vec<Arc<Block>>,
    /// Number of cuts published so far.
    published: u64,
    /// Held by every querier created since the last publish.
    reader_token: Arc<()>,
}

/// A cut whose frozen data is not yet in a published block.
struct PendingCut {
    /// First WAL segment after the cut.
    next_segment: u64,
    /// [`Db::wal_bytes_total`] when that segment began: the head left by
    /// the cut holds exactly the WAL written since.
    wal_mark: u64,
    /// Time range of the frozen data.
    range: (i64, i64),
}

/// The storage engine.
pub struct Db {
    opts: Options,
    blocks_dir: PathBuf,
    head: Head,
    wal: Wal,
    /// Appenders hold it shared; cuts and GC exclusively.
    gate: RwLock<()>,
    state: RwLock<State>,
    /// Generation number of the head's frozen data (valid while a cut is pending).
    frozen_gen: AtomicU64,
    metadata: MetadataStore,
    /// The pending cut, if any: held to start a cut, to publish it and to
    /// write a checkpoint.
    cut_lock: Mutex<Option<PendingCut>>,
    /// Held through a whole cut.
    cut_run: Mutex<()>,
    compact_lock: Mutex<()>,
    last_cut: Mutex<Instant>,
    metrics: Metrics,
    /// Decoded block pages, shared by all blocks and queries.
    cache: Arc<BlockCache>,
    closed: AtomicBool,
    /// First WAL segment of the head's live data: segments before it are
    /// in blocks. Changed by cuts (under the cut lock).
    live_base: AtomicU64,
    /// [`Db::wal_bytes_total`] when the last checkpoint (or cut) started.
    checkpoint_mark: AtomicU64,
    /// Size of the last checkpoint written (0: none yet).
    checkpoint_size: AtomicU64,
    /// WAL bytes replayed at open (they count toward the next checkpoint).
    replayed_wal_bytes: u64,
    checkpoint_loaded: bool,
    /// Cuts, compaction and retention.
    maintenance: Worker,
    /// Head checkpoints, on their own thread so that they go on while a
    /// cut or a compaction takes seconds.
    checkpointer: Worker,
    /// `<data_dir>/lock`, locked exclusively until [`Db::close`] is done.
    lock: Mutex<Option<fs::File>>,
}

/// A background thread woken by appends that find its work due.
struct Worker {
    ctl: Arc<(Mutex<Background>, Condvar)>,
    /// An append asked for a round (saves appends the lock while the
    /// request is pending).
    kick_pending: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    fn new() -> Worker {
        Worker {
            ctl: Arc::new((Mutex::new(Background::default()), Condvar::new())),
            kick_pending: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    /// Starts the thread, which runs `round` as [`background_loop`] says.
    fn start(&self, name: &str, db: &Arc<Db>, round: fn(&Db)) -> std::io::Result<()> {
        let weak = Arc::downgrade(db);
        let ctl = self.ctl.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || background_loop(&weak, &ctl, round))?;
        *self.thread.lock() = Some(handle);
        Ok(())
    }

    /// Asks for a round unless one is asked for already.
    fn kick(&self) {
        if !self.kick_pending.swap(true, Ordering::AcqRel) {
            let (lock, cv) = &*self.ctl;
            lock.lock().kicked = true;
            cv.notify_all();
        }
    }

    /// Stops the thread and waits for its round to end (unless called from
    /// the thread itself: its round dropped the last handle on the Db).
    fn stop(&self) {
        {
            let (lock, cv) = &*self.ctl;
            lock.lock().stopped = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.lock().take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

/// What a background thread is asked to do.
#[derive(Default)]
struct Background {
    stopped: bool,
    /// Run a round now: its work is due.
    kicked: bool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const METADATA_FILE: &str = "metadata.json";

impl Db {
    /// Opens (or creates) the database in `opts.data_dir`: opens the blocks,
    /// replays the WAL into the head, and starts background work.
    pub fn open(opts: Options, registry: &mut Registry) -> Result<Arc<Db>> {
        let dir = &opts.data_dir;
        let blocks_dir = dir.join("blocks");
        let wal_dir = dir.join("wal");
        for d in [dir, &blocks_dir, &wal_dir] {
            fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let lock = lock_data_dir(dir)?;
        let cache = Arc::new(BlockCache::new(opts.block_cache_bytes));
        cache.register(registry);
        let blocks = open_blocks(&blocks_dir, &cache)?;
        let covered = blocks
            .iter()
            .filter_map(|b| b.meta().wal_segment_max)
            .max()
            .unwrap_or(0);

        let start = Instant::now();
        let segments = wal::list_segments(&wal_dir)?;
        let next_seq = segments
            .last()
            .map_or(covered + 1, |(s, _)| (s + 1).max(covered + 1));
        let (head, metadata, resume) = load_checkpoint(dir, &wal_dir, covered, &segments)?;
        let replayed = replay_wal(&head, &metadata, &segments, covered, resume.as_ref())?;
        let replayed_wal_bytes = segments
            .iter()
            .filter(|(s, _)| *s > covered && resume.as_ref().is_none_or(|r| *s >= r.start.seq))
            .filter_map(|(_, p)| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum::<u64>()
            .saturating_sub(resume.as_ref().map_or(0, |r| r.start.offset));
        tracing::info!(
            samples = replayed,
            series = head.num_series(),
            blocks = blocks.len(),
            from_checkpoint = resume.is_some(),
            wal_bytes = replayed_wal_bytes,
            seconds = start.elapsed().as_secs_f64(),
            "WAL replayed"
        );
        let checkpoint_loaded = resume.is_some();
        let checkpoint_size = resume.as_ref().map_or(0, |r| r.bytes);
        drop(resume);

        let metrics = Metrics::new(registry);
        let wal = Wal::create_with_metrics(
            &wal_dir,
            next_seq,
            opts.wal_segment_size,
            opts.durability,
            Some(metrics.fsync_seconds.clone()),
        )?;
        let db = Arc::new(Db {
            blocks_dir,
            head,
            wal,
            gate: RwLock::new(()),
            state: RwLock::new(State {
                blocks,
                published: 0,
                reader_token: Arc::new(()),
            }),
            frozen_gen: AtomicU64::new(0),
            metadata,
            cut_lock: Mutex::new(None),
            cut_run: Mutex::new(()),
            compact_lock: Mutex::new(()),
            last_cut: Mutex::new(Instant::now()),
            metrics,
            cache,
            closed: AtomicBool::new(false),
            live_base: AtomicU64::new(covered + 1),
            checkpoint_mark: AtomicU64::new(0),
            checkpoint_size: AtomicU64::new(checkpoint_size),
            replayed_wal_bytes,
            checkpoint_loaded,
            maintenance: Worker::new(),
            checkpointer: Worker::new(),
            lock: Mutex::new(Some(lock)),
            opts,
        });
        db.refresh_gauges();
        if db.opts.background {
            let start = |w: &Worker, name: &str, round: fn(&Db)| {
                w.start(name, &db, round)
                    .map_err(|e| Error::io(&db.opts.data_dir, e))
            };
            start(&db.maintenance, "silt-engine-bg", |db| {
                db.maintenance.kick_pending.store(false, Ordering::Release);
                if let Err(e) = db.maintain() {
                    tracing::error!(error = %e, "background maintenance failed");
                }
                db.refresh_gauges();
            })?;
            start(&db.checkpointer, "silt-checkpoint", |db| {
                db.checkpointer.kick_pending.store(false, Ordering::Release);
                db.maybe_checkpoint();
            })?;
        }
        Ok(db)
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Hits, misses and size of the decoded-page cache.
    pub fn block_cache_stats(&self) -> block::CacheStats {
        self.cache.stats()
    }

    fn open_block(&self, dir: &Path) -> Result<Block> {
        Block::open_cached(dir, Some(self.cache.clone()))
    }

    /// Validates and applies a batch; nothing is stored if it returns `Err`.
    /// The returned ticket resolves once the batch is durable.
    pub fn append(self: &Arc<Self>, batch: &WriteBatch) -> Result<CommitTicket, AppendError> {
        self.append_with_refs(batch, &[])
    }

    /// [`Db::append`], plus samples of series named by a [`SeriesRef`] from
    /// an earlier append ([`AppendSummary::refs`]) instead of by labels:
    /// a receiver that remembers the references skips building, hashing
    /// and looking up label sets. A reference goes stale when its series
    /// leaves the head (idle through a cut); then the whole call fails with
    /// [`AppendError::StaleSeriesRef`], stores nothing, and the caller
    /// retries by labels.
    pub fn append_with_refs(
        self: &Arc<Self>,
        batch: &WriteBatch,
        by_ref: &[(SeriesRef, Vec<Sample>)],
    ) -> Result<CommitTicket, AppendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Internal(Error::Closed));
        }
        let now = now_ms();
        let max_t = now.saturating_add(self.opts.max_future.as_millis() as i64);
        let min_t = self
            .opts
            .retention
            .map_or(i64::MIN, |r| now.saturating_sub(r.as_millis() as i64));
        for s in &batch.series {
            if s.labels.metric_name().is_none() {
                self.metrics.appends_rejected.inc();
                return Err(AppendError::NoMetricName {
                    labels: s.labels.clone(),
                });
            }
            if !s.start_timestamps.is_empty() && s.start_timestamps.len() != s.samples.len() {
                self.metrics.appends_rejected.inc();
                return Err(AppendError::StartTimestamps {
                    labels: s.labels.clone(),
                    samples: s.samples.len(),
                    starts: s.start_timestamps.len(),
                });
            }
            for x in &s.samples {
                if x.t > max_t {
                    self.metrics.appends_rejected.inc();
                    return Err(AppendError::TooFarInFuture {
                        labels: s.labels.clone(),
                        t: x.t,
                        now,
                        max_future_ms: self.opts.max_future.as_millis() as i64,
                    });
                }
                if x.t < min_t {
                    self.metrics.appends_rejected.inc();
                    return Err(AppendError::TooOld {
                        labels: s.labels.clone(),
                        t: x.t,
                        min_t,
                    });
                }
            }
        }
        for (r, samples) in by_ref {
            let labels = || {
                self.head
                    .by_id(r.id())
                    .map(|s| self.head.labels_uncached(&s))
                    .ok_or(AppendError::StaleSeriesRef { id: r.id() })
            };
            if let Some(x) = samples.iter().find(|x| x.t > max_t) {
                self.metrics.appends_rejected.inc();
                return Err(AppendError::TooFarInFuture {
                    labels: labels()?,
                    t: x.t,
                    now,
                    max_future_ms: self.opts.max_future.as_millis() as i64,
                });
            }
            if let Some(x) = samples.iter().find(|x| x.t < min_t) {
                self.metrics.appends_rejected.inc();
                return Err(AppendError::TooOld {
                    labels: labels()?,
                    t: x.t,
                    min_t,
                });
            }
        }
        // Entry `i` of the batch: `batch.series[i]` for `i < n`, else `by_ref[i - n]`.
        let n = batch.series.len();
        let samples_of = |i: usize| -> &[Sample] {
            if i < n {
                &batch.series[i].samples
            } else {
                &by_ref[i - n].1
            }
        };
        let labels_of = |i: usize, s: &MemSeries| -> Cow<'_, Labels> {
            if i < n {
                Cow::Borrowed(&batch.series[i].labels)
            } else {
                Cow::Owned(self.head.labels_uncached(s))
            }
        };

        let _gate = self.gate.read();
        // Resolve series, then order the batch entries by series id (entries
        // naming the same series end up adjacent).
        let mut created = 0usize;
        let mut work: Vec<(Arc<MemSeries>, usize)> = Vec::with_capacity(n + by_ref.len());
        for (i, s) in batch.series.iter().enumerate() {
            if s.samples.is_empty() {
                continue;
            }
            let (series, new) = self.head.get_or_create(&s.labels);
            created += usize::from(new);
            work.push((series, i));
        }
        for (k, (r, samples)) in by_ref.iter().enumerate() {
            if samples.is_empty() {
                continue;
            }
            let series = self
                .head
                .by_id(r.id())
                .ok_or(AppendError::StaleSeriesRef { id: r.id() })?;
            work.push((series, n + k));
        }
        work.sort_unstable_by_key(|w| (w.0.id, w.1));
        // Lock every distinct series in id order (no deadlock: every appender
        // locks in the same order; readers lock one series at a time).
        let mut guards = Vec::with_capacity(work.len());
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(work.len()); // work[a..b] share guard
        for (k, (series, _)) in work.iter().enumerate() {
            if k > 0 && work[k - 1].0.id == series.id {
                spans.last_mut().expect("previous span").1 = k + 1;
            } else {
                guards.push(series.lock());
                spans.push((k, k + 1));
            }
        }
        // The start timestamps of entry `i`'s samples (empty: none).
        let starts_of = |i: usize| -> &[i64] {
            if i < n {
                &batch.series[i].start_timestamps
            } else {
                &[]
            }
        };
        // Check everything before changing anything; collect the new
        // samples, and the start timestamps of those that have one.
        let mut accepted = 0usize;
        let mut fresh: Vec<(u32, i64, u64)> = Vec::with_capacity(
            batch.num_samples() + by_ref.iter().map(|r| r.1.len()).sum::<usize>(),
        );
        let mut fresh_starts: Vec<(u32, i64, i64)> = Vec::new();
        let mut scratch: Vec<Sample> = Vec::new();
        let mut scratch_starts: Vec<i64> = Vec::new();
        let mut scratch_both: Vec<(Sample, i64)> = Vec::new();
        for (g, &(a, b)) in spans.iter().enumerate() {
            let guard = &guards[g];
            let id = work[a].0.id;
            let idx = work[a].1;
            let one = samples_of(idx);
            let (samples, starts): (&[Sample], &[i64]) =
                if b - a == 1 && one.windows(2).all(|w| w[0].t < w[1].t) {
                    (one, starts_of(idx))
                } else if work[a..b].iter().all(|&(_, i)| starts_of(i).is_empty()) {
                    scratch.clear();
                    for (_, i) in &work[a..b] {
                        scratch.extend_from_slice(samples_of(*i));
                    }
                    scratch.sort_by_key(|s| s.t);
                    (&scratch, &[])
                } else {
                    // Sorted with their start timestamps (stable: of
                    // samples at one time, the first given that has a
                    // start is checked, else the first given; duplicates
                    // must agree on the value anyway).
                    let both = &mut scratch_both;
                    both.clear();
                    for &(_, i) in &work[a..b] {
                        let st = starts_of(i);
                        both.extend(
                            samples_of(i)
                                .iter()
                                .enumerate()
                                .map(|(k, &s)| (s, st.get(k).copied().unwrap_or(0))),
                        );
                    }
                    both.sort_by_key(|&(s, st)| (s.t, st == 0));
                    scratch.clear();
                    scratch.extend(both.iter().map(|&(s, _)| s));
                    scratch_starts.clear();
                    scratch_starts.extend(both.iter().map(|&(_, st)| st));
                    (&scratch, &scratch_starts)
                };
            let reject = |t: i64, stored: f64, got: f64| {
                self.metrics.appends_rejected.inc();
                AppendError::Duplicate {
                    labels: labels_of(idx, &work[a].0).into_owned(),
                    t,
                    stored,
                    got,
                }
            };
            let mut prev: Option<Sample> = None;
            for (k, &s) in samples.iter().enumerate() {
                if let Some(p) = prev.filter(|p| p.t == s.t) {
                    if p.v.to_bits() != s.v.to_bits() {
                        return Err(reject(s.t, p.v, s.v));
                    }
                    accepted += 1;
                    continue;
                }
                prev = Some(s);
                // Frozen data (being written to a block) counts as stored too.
                let live = guard.live.check(s.t, s.v);
                let checked = live.and_then(|new| match (&guard.frozen, new) {
                    (Some(f), true) => f.check(s.t, s.v),
                    _ => Ok(new),
                });
                let st = starts.get(k).copied().unwrap_or(0);
                match checked {
                    Ok(true) => {
                        fresh.push((id, s.t, s.v.to_bits()));
                        if st != 0 {
                            fresh_starts.push((id, s.t, st));
                        }
                    }
                    Ok(false) => {
                        // A sample stored before without its start (a retry
                        // after a crash cut the log between the samples and
                        // their starts) gets it now.
                        // (Only in the live generation: a frozen one is
                        // being written to a block already.)
                        if st != 0
                            && matches!(live, Ok(false))
                            && guard.live.start_at(s.t).is_none()
                        {
                            fresh_starts.push((id, s.t, st));
                        }
                        accepted += 1;
                    }
                    Err(c) => return Err(reject(c.t, c.stored, s.v)),
                }
            }
        }
        // Log: labels of series not yet logged in this WAL epoch, then samples.
        let epoch = self.head.wal_epoch.load(Ordering::Relaxed);
        let mut new_series: Vec<(u32, Cow<'_, Labels>)> = Vec::new();
        for &(a, _) in &spans {
            // Under the series lock (held in `guards`), as `wal_epoch` requires.
            if work[a].0.wal_epoch.load(Ordering::Relaxed) != epoch_tag(epoch) {
                new_series.push((work[a].0.id, labels_of(work[a].1, &work[a].0)));
            }
        }
        let new_metadata: Vec<MetricMetadata> = batch
            .metadata
            .iter()
            .filter(|m| self.metadata.observe(m))
            .cloned()
            .collect();
        let lsn = self
            .wal
            .log(|buf| {
                wal::encode_series(buf, new_series.iter().map(|(id, l)| (*id, l.as_ref())));
                wal::encode_samples(buf, &fresh);
                wal::encode_starts(buf, &fresh_starts);
                wal::encode_metadata(buf, &new_metadata);
            })
            .map_err(AppendError::Internal)?;
        // Apply: `fresh` is grouped by series in guard order.
        let mut g = 0;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &(id, t, v) in &fresh {
            while work[spans[g].0].0.id != id {
                g += 1;
            }
            guards[g]
                .live
                .push(t, f64::from_bits(v), &self.head.columns);
            lo = lo.min(t);
            hi = hi.max(t);
        }
        if !fresh_starts.is_empty() {
            self.head.note_starts();
        }
        // In the same order as `fresh`, so the guard only moves forward.
        let mut g = 0;
        for &(id, t, st) in &fresh_starts {
            while work[spans[g].0].0.id != id {
                g += 1;
            }
            guards[g].live.set_start(t, st);
        }
        if lo <= hi {
            self.head.note_live(lo);
            self.head.note_live(hi);
        }
        for (g, &(a, _)) in spans.iter().enumerate() {
            work[a]
                .0
                .wal_epoch
                .store(epoch_tag(epoch), Ordering::Relaxed);
            guards[g].wal_lsn = lsn;
        }
        self.kick_background_if_due(lsn);
        accepted += fresh.len();
        drop(guards);
        let mut refs = vec![None; n];
        for (series, i) in &work {
            if *i < n {
                refs[*i] = SeriesRef::new(series.id);
            }
        }
        self.metrics.samples_appended.inc_by(accepted as u64);
        self.metrics.series_created.inc_by(created as u64);
        Ok(CommitTicket {
            db: Some(self.clone()),
            lsn,
            summary: AppendSummary {
                samples: accepted,
                series_created: created,
                refs,
            },
        })
    }

    /// A consistent read view over `[mint, maxt]`.
    pub fn querier(self: &Arc<Self>, mint: i64, maxt: i64) -> Querier {
        let state = self.state.read();
        let blocks = state
            .blocks
            .iter()
            .filter(|b| b.meta().max_time >= mint && b.meta().min_time <= maxt)
            .cloned()
            .collect();
        Querier {
            db: self.clone(),
            blocks,
            published: state.published,
            _token: state.reader_token.clone(),
            mint,
            maxt,
        }
    }

    /// Metadata per metric family.
    pub fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        self.metadata.snapshot()
    }

    pub fn stats(&self) -> DbStats {
        let state = self.state.read();
        let wal_segments = wal::list_segments(self.wal.dir()).unwrap_or_default();
        let wal_bytes = wal_segments
            .iter()
            .filter_map(|(_, p)| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        DbStats {
            head_series: u64::from(self.head.num_series()),
            blocks: state.blocks.len() as u64,
            block_bytes: state.blocks.iter().map(|b| b.size_bytes()).sum(),
            block_samples: state.blocks.iter().map(|b| b.meta().num_samples).sum(),
            wal_bytes,
            wal_segments: wal_segments.len() as u64,
            checkpoint_loaded: self.checkpoint_loaded,
            replayed_wal_bytes: self.replayed_wal_bytes,
        }
    }

    /// Every label name of the head with its values and the number of
    /// series having each, read from the index without visiting series
    /// (cardinality statistics: Prometheus's `/api/v1/status/tsdb`
    /// describes its head too).
    pub fn head_label_counts(&self) -> HeadLabelCounts {
        self.head.with_postings(|p| HeadLabelCounts {
            num_series: p.num_series(),
            labels: p
                .label_names()
                .map(|name| {
                    let values = p
                        .label_values(name)
                        .map(|(v, ids)| (v.to_owned(), ids.len()))
                        .collect();
                    (name.to_owned(), values)
                })
                .collect(),
        })
    }

    /// Estimated heap bytes of the head's series and chunks. Visits every
    /// series under its lock: for tools and tests, not for every refresh
    /// of the gauges.
    pub fn head_memory_bytes(&self) -> u64 {
        self.head.memory_bytes() as u64
    }

    /// (min, max) time of the samples in the head not yet cut into a
    /// block, if any.
    pub fn head_time_range(&self) -> Option<(i64, i64)> {
        self.head.live_range()
    }

    fn refresh_gauges(&self) {
        let s = self.stats();
        self.metrics.head_series.set(s.head_series as i64);
        self.metrics.blocks.set(s.blocks as i64);
        self.metrics.block_bytes.set(s.block_bytes as i64);
        self.metrics.wal_bytes.set(s.wal_bytes as i64);
        self.metrics.wal_fsyncs.set(self.wal.stats().fsyncs as i64);
    }

    /// Cuts the whole head into new blocks now, one per aligned window of
    /// `block_duration` the data touches. Returns the id of the last block,
    /// if there was data. Blocking.
    pub fn cut_head(&self) -> Result<Option<String>> {
        // One cut at a time. The cut lock is held to freeze and to
        // publish, not while the blocks are written: checkpoints go on
        // meanwhile (with the frozen data, see `write_checkpoint_under`).
        let _one = self.cut_run.lock();
        let start = Instant::now();
        let (next_segment, wal_mark, range) = {
            let mut pending = self.cut_lock.lock();
            if pending.is_none() {
                let _gate = self.gate.write();
                if self.head.live_range().is_none() {
                    return Ok(None);
                }
                let next_segment = self.wal.rotate()?;
                // Under the gate: no append logs between the rotation and this.
                let wal_mark = self.wal_bytes_total();
                self.frozen_gen
                    .store(self.state.read().published + 1, Ordering::Release);
                let Some(range) = self.head.freeze() else {
                    return Ok(None);
                };
                *pending = Some(PendingCut {
                    next_segment,
                    wal_mark,
                    range,
                });
            }
            pending
                .as_ref()
                .map_or((0, 0, (0, -1)), |p| (p.next_segment, p.wal_mark, p.range))
        };
        // Write the frozen generation (writers go on meanwhile): one block
        // per aligned window of `block_duration`, so blocks never straddle
        // a window and compaction can merge each window's blocks once the
        // window is complete (see `plan_compaction`). Only the last block
        // records the WAL segments it covers: a crash between the blocks
        // replays the whole generation (duplicates merge away).
        let frozen = self.head.frozen_series();
        let width = (self.opts.block_duration.as_millis() as i64).max(1);
        let (first, last) = (range.0.div_euclid(width), range.1.div_euclid(width));
        // Backfill can spread a generation over many windows: visit only
        // those holding data.
        let windows: Vec<i64> = if last - first <= 1 {
            (first..=last).collect()
        } else {
            let mut set = std::collections::BTreeSet::new();
            let mut buf = Vec::new();
            for s in &frozen {
                buf.clear();
                if let Some(f) = &s.lock().frozen {
                    f.read(i64::MIN, i64::MAX, &mut buf);
                }
                set.extend(buf.iter().map(|x| x.t.div_euclid(width)));
            }
            set.into_iter().collect()
        };
        let mut metas = Vec::new();
        for &w in &windows {
            let (lo, hi) = (w.saturating_mul(width), (w + 1).saturating_mul(width) - 1);
            let opts = BlockWriteOptions {
                level: 0,
                sources: Vec::new(),
                wal_segment_max: (w == last).then(|| next_segment - 1),
            };
            let iter = frozen.iter().filter_map(|s| {
                let mut out = Vec::new();
                let mut runs = Vec::new();
                if let Some(f) = &s.lock().frozen {
                    f.read(lo, hi, &mut out);
                    let mut pairs = Vec::new();
                    f.read_starts(lo, hi, &mut pairs);
                    runs.extend(starts::runs_from_pairs(&pairs));
                }
                (!out.is_empty()).then(|| {
                    Ok(BlockSeries {
                        labels: self.head.labels_uncached(s),
                        samples: out,
                        starts: runs,
                    })
                })
            });
            let meta = block::write_block(&self.blocks_dir, &opts, iter)?;
            metas.extend(meta);
        }
        let id = metas.last().map(|m| m.id.clone());
        let opened = metas
            .iter()
            .map(|m| self.open_block(&self.blocks_dir.join(&m.id)).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        // Publishing: no checkpoint may see the frozen data half dropped.
        let mut pending = self.cut_lock.lock();
        let old_token = {
            let mut state = self.state.write();
            state.blocks.extend(opened);
            sort_blocks(&mut state.blocks);
            state.published += 1;
            std::mem::replace(&mut state.reader_token, Arc::new(()))
        };
        // Readers that could still read the frozen data hold the old token.
        wait_for_readers(&old_token);
        {
            let _gate = self.gate.write();
            self.head.drop_frozen_and_gc();
            self.cache.remove_block(self.head.frozen_chunk_key());
        }
        // Checkpoints summarise WAL now in the block: stale. The head left
        // holds what was written while the cut ran (under heavy ingest, a
        // replay of tens of megabytes): the next checkpoint is due by the
        // WAL since the rotation, not since now.
        self.live_base.store(next_segment, Ordering::Release);
        self.checkpoint_mark.store(wal_mark, Ordering::Relaxed);
        self.checkpoint_size.store(0, Ordering::Relaxed);
        self.delete_checkpoints(None)?;
        *pending = None;
        drop(pending);
        save_metadata(&self.opts.data_dir, &self.metadata)?;
        self.wal.truncate_before(next_segment)?;
        *self.last_cut.lock() = Instant::now();
        self.metrics
            .cut_seconds
            .observe(start.elapsed().as_secs_f64());
        self.refresh_gauges();
        if !metas.is_empty() {
            let ids: Vec<&str> = metas.iter().map(|m| m.id.as_str()).collect();
            tracing::info!(blocks = ?ids, seconds = start.elapsed().as_secs_f64(), "head cut into blocks");
        }
        Ok(id)
    }

    /// Runs compaction and retention until nothing is left to do. Blocking.
    pub fn compact(&self) -> Result<()> {
        self.compact_inner(false)
    }

    /// [`Db::compact`], then merges the blocks of every window of the
    /// largest size (the maximum block duration, 31 days by default) into
    /// one block each, whether the window is complete or not, as
    /// VictoriaMetrics's `force_merge` does. An admin operation: blocks cut
    /// later into the same window are merged again when it completes, so
    /// the newest data may be rewritten twice.
    pub fn compact_all(&self) -> Result<()> {
        self.compact_inner(true)
    }

    fn compact_inner(&self, force: bool) -> Result<()> {
        let _c = self.compact_lock.lock();
        self.apply_retention()?;
        loop {
            let plan = {
                let state = self.state.read();
                plan_compaction(
                    &state.blocks,
                    &self.opts,
                    self.head.live_range().map(|r| r.0),
                )
                .or_else(|| {
                    force
                        .then(|| plan_forced(&state.blocks, &self.opts))
                        .flatten()
                })
            };
            let Some(group) = plan else { break };
            let start = Instant::now();
            let inputs: Vec<&Block> = group.iter().map(|b| b.as_ref()).collect();
            let opts = BlockWriteOptions {
                level: inputs.iter().map(|b| b.meta().level).max().unwrap_or(0) + 1,
                sources: Vec::new(),
                wal_segment_max: inputs.iter().filter_map(|b| b.meta().wal_segment_max).max(),
            };
            let meta = block::merge_blocks(&self.blocks_dir, &inputs, &opts)?;
            let new_block = match &meta {
                Some(m) => Some(Arc::new(self.open_block(&self.blocks_dir.join(&m.id))?)),
                None => None,
            };
            let ids: Vec<String> = group.iter().map(|b| b.meta().id.clone()).collect();
            {
                let mut state = self.state.write();
                state.blocks.retain(|b| !ids.contains(&b.meta().id));
                state.blocks.extend(new_block);
                sort_blocks(&mut state.blocks);
            }
            for b in &group {
                remove_block_dir(b.dir());
            }
            self.metrics.compactions.inc();
            self.metrics
                .compaction_seconds
                .observe(start.elapsed().as_secs_f64());
            tracing::info!(inputs = ids.len(), output = ?meta.map(|m| m.id), seconds = start.elapsed().as_secs_f64(), "compacted");
        }
        self.refresh_gauges();
        Ok(())
    }

    fn apply_retention(&self) -> Result<()> {
        let Some(retention) = self.opts.retention else {
            return Ok(());
        };
        let min_t = now_ms().saturating_sub(retention.as_millis() as i64);
        let expired: Vec<Arc<Block>> = {
            let mut state = self.state.write();
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.blocks)
                .into_iter()
                .partition(|b| b.meta().max_time < min_t);
            state.blocks = kept;
            expired
        };
        for b in &expired {
            tracing::info!(block = %b.meta().id, "deleting block past retention");
            remove_block_dir(b.dir());
            self.metrics.retention_deleted.inc();
        }
        Ok(())
    }

    /// Writes a consistent copy of all data into `dir` (which must not
    /// exist or be empty): blocks are hard-linked, head data written as a
    /// block, metadata copied. The result opens as a data folder. Blocking.
    pub fn snapshot(self: &Arc<Self>, dir: &Path) -> Result<()> {
        let blocks_out = dir.join("blocks");
        fs::create_dir_all(&blocks_out).map_err(|e| Error::io(&blocks_out, e))?;
        let q = self.querier(i64::MIN, i64::MAX);
        for b in &q.blocks {
            let target = blocks_out.join(&b.meta().id);
            fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            for entry in fs::read_dir(b.dir()).map_err(|e| Error::io(b.dir(), e))? {
                let entry = entry.map_err(|e| Error::io(b.dir(), e))?;
                let to = target.join(entry.file_name());
                if fs::hard_link(entry.path(), &to).is_err() {
                    fs::copy(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
                }
            }
            wal::fsync_dir(&target)?;
        }
        let head_series: Vec<BlockSeries> = {
            let mut all: Vec<(Labels, Arc<MemSeries>)> = self
                .head
                .all_series()
                .into_iter()
                .map(|s| (self.head.labels_of(&s), s))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all.into_iter()
                .filter_map(|(labels, s)| {
                    let mut samples = Vec::new();
                    q.read_head(&s, i64::MIN, i64::MAX, &mut samples);
                    let mut pairs = Vec::new();
                    q.read_head_starts(&s, i64::MIN, i64::MAX, &mut pairs);
                    let starts = starts::runs_from_pairs(&pairs).collect();
                    (!samples.is_empty()).then_some(BlockSeries {
                        labels,
                        samples,
                        starts,
                    })
                })
                .collect()
        };
        let opts = BlockWriteOptions {
            level: 0,
            sources: Vec::new(),
            wal_segment_max: None,
        };
        block::write_block(&blocks_out, &opts, head_series.into_iter().map(Ok))?;
        save_metadata(dir, &self.metadata)?;
        wal::fsync_dir(&blocks_out)?;
        wal::fsync_dir(dir)
    }

    /// Writes a head checkpoint now: the head's series and chunks as they
    /// are, so the next open loads them and replays only the WAL written
    /// after (see [`crate::checkpoint`]). Appends go on meanwhile; a cut
    /// neither starts nor publishes until it is written, and one pending
    /// (writing its blocks) has its frozen data in it too. Older
    /// checkpoints are deleted once this one is durable. Blocking.
    pub fn checkpoint(&self) -> Result<CheckpointStats> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.write_checkpoint_under(self.cut_lock.lock())
    }

    /// WAL bytes replayed at open plus those written since.
    fn wal_bytes_total(&self) -> u64 {
        self.replayed_wal_bytes + self.wal.stats().bytes_written
    }

    /// Writes a checkpoint with the cut lock held (`pending`). While a cut
    /// is pending its frozen generation goes in too: a crash before the
    /// cut publishes then replays only the WAL written since, not all that
    /// arrived while the cut ran (seconds of ingest).
    fn write_checkpoint_under(
        &self,
        pending: MutexGuard<'_, Option<PendingCut>>,
    ) -> Result<CheckpointStats> {
        let started = Instant::now();
        let mark = self.wal_bytes_total();
        let cut_pending = pending.is_some();
        let result = self.write_checkpoint_locked(cut_pending);
        if let Ok((_, _, bytes)) = &result {
            // Under the cut lock: a cut publishing after this resets both.
            self.checkpoint_mark.store(mark, Ordering::Relaxed);
            self.checkpoint_size.store(*bytes, Ordering::Relaxed);
        }
        drop(pending);
        match result {
            Ok((path, series, bytes)) => {
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.checkpoints.inc();
                self.metrics.checkpoint_seconds.observe(seconds);
                self.metrics.checkpoint_bytes.set(bytes as i64);
                tracing::info!(path = %path.display(), series, bytes, seconds, "head checkpoint written");
                Ok(CheckpointStats {
                    path,
                    series,
                    bytes,
                    seconds,
                    cut_pending,
                })
            }
            Err(e) => {
                self.metrics.checkpoint_failures.inc();
                Err(e)
            }
        }
    }

    /// Writes a checkpoint; the caller holds the cut lock, so `live_base`
    /// holds and the head's frozen data is there (`cut_pending`) or not
    /// until the checkpoint is written.
    fn write_checkpoint_locked(&self, cut_pending: bool) -> Result<(PathBuf, u64, u64)> {
        let epoch = self.head.wal_epoch.load(Ordering::Relaxed);
        // P0: every record ending here or before is applied to the head.
        let p0 = self.wal.end_lsn();
        self.wal.wait_blocking(p0)?;
        let pos = self
            .wal
            .position_of(p0)
            .ok_or_else(|| Error::WalFailed(format!("no log position for synced LSN {p0}")))?;
        let start = checkpoint::Start {
            base_segment: self.live_base.load(Ordering::Acquire),
            pos,
            created_ms: now_ms(),
        };
        let mut w = checkpoint::Writer::create(self.wal.dir(), &start)?;
        if let Err(e) = self.fill_checkpoint(&mut w, epoch, p0, cut_pending) {
            w.abandon();
            return Err(e);
        }
        let series = w.num_series();
        let (path, bytes) = w.finish()?;
        self.delete_checkpoints(Some(&path))?;
        Ok((path, series, bytes))
    }

    /// Writes the series a WAL replay would restore (those logged in the
    /// WAL since `live_base`), the metadata and the replay positions.
    ///
    /// Series are visited in batches ([`Options::checkpoint_batch_series`]) and their
    /// positions written after each batch, so what the checkpoint holds at
    /// once is bounded: at a million series under load, a list of every
    /// series and one of every position were 50 MB more at the peak.
    /// Series created meanwhile are visited too; their records come after
    /// `P0`, so they get positions like any series appended meanwhile.
    ///
    /// With a cut pending, `live_base` is still the frozen generation's
    /// first segment: series logged in that generation's epoch (the one
    /// before `epoch`) are in the WAL a replay reads too, and each series'
    /// frozen and live data go in as one.
    fn fill_checkpoint(
        &self,
        w: &mut checkpoint::Writer,
        epoch: u32,
        p0: u64,
        cut_pending: bool,
    ) -> Result<()> {
        let logged_since_base = |tag: u16| {
            let in_epoch =
                |e: u32| tag == epoch_tag(e) || (tag == REPLAYED_EPOCH && e == FIRST_EPOCH);
            in_epoch(epoch) || (cut_pending && epoch > FIRST_EPOCH && in_epoch(epoch - 1))
        };
        let mut lsns: Vec<(u32, u64)> = Vec::new();
        let mut next = 0;
        loop {
            let batch = self
                .head
                .series_from(next, self.opts.checkpoint_batch_series.max(1));
            let Some(last) = batch.last().map(|s| s.id) else {
                break;
            };
            for s in batch {
                let labels = self.head.labels_uncached(&s);
                {
                    let d = s.lock();
                    // Series never logged since `live_base` (idle since the
                    // last cut, or created by a rejected append) are not in
                    // the WAL a replay reads: leave them out too.
                    if !logged_since_base(s.wal_epoch.load(Ordering::Relaxed)) {
                        continue;
                    }
                    if d.wal_lsn > p0 {
                        lsns.push((s.id, d.wal_lsn));
                    }
                    match &d.frozen {
                        Some(f) => w.add_series_split(s.id, &labels, f, &d.live),
                        None => w.add_series(s.id, &labels, &d.live),
                    }
                }
                w.maybe_flush_series()?;
            }
            self.write_positions(w, &mut lsns)?;
            match last.checked_add(1) {
                Some(n) => next = n,
                None => break,
            }
        }
        w.metadata(&self.metadata.all())
    }

    /// Writes the replay positions of `lsns` (series id, LSN) once the log
    /// is synced past them, and empties the list.
    fn write_positions(
        &self,
        w: &mut checkpoint::Writer,
        lsns: &mut Vec<(u32, u64)>,
    ) -> Result<()> {
        let Some(max) = lsns.iter().map(|x| x.1).max() else {
            return Ok(());
        };
        self.wal.wait_blocking(max)?;
        let positions = lsns
            .drain(..)
            .map(|(id, lsn)| {
                self.wal.position_of(lsn).map(|p| (id, p)).ok_or_else(|| {
                    Error::WalFailed(format!("no log position for synced LSN {lsn}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        w.positions(&positions)
    }

    /// Deletes every checkpoint but `keep`.
    fn delete_checkpoints(&self, keep: Option<&Path>) -> Result<()> {
        for (_, path) in checkpoint::list(self.wal.dir())? {
            if Some(path.as_path()) != keep {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Wakes the background threads when the append that logged up to `lsn`
    /// made a checkpoint or a cut due, instead of leaving it to the next
    /// periodic round: at millions of samples a second, ten seconds of WAL
    /// is more than a gigabyte to replay and hours of backfill to hold.
    fn kick_background_if_due(&self, lsn: u64) {
        if !self.opts.background {
            return;
        }
        if !self.checkpointer.kick_pending.load(Ordering::Relaxed)
            && self.checkpoint_due(self.replayed_wal_bytes + lsn)
        {
            self.checkpointer.kick();
        }
        if !self.maintenance.kick_pending.load(Ordering::Relaxed)
            && self.head.live_range().is_some_and(|(min, max)| {
                max.saturating_sub(min) >= self.opts.block_duration.as_millis() as i64
            })
        {
            self.maintenance.kick();
        }
    }

    /// Whether a checkpoint is due with `total` bytes of WAL
    /// ([`Db::wal_bytes_total`]) written: see [`CHECKPOINT_MIN_WAL_BYTES`];
    /// never with `checkpoint_wal_bytes` 0.
    fn checkpoint_due(&self, total: u64) -> bool {
        let max = self.opts.checkpoint_wal_bytes;
        let last = self.checkpoint_size.load(Ordering::Relaxed);
        let every = max.min(CHECKPOINT_MIN_WAL_BYTES.max(last));
        let since = total.saturating_sub(self.checkpoint_mark.load(Ordering::Relaxed));
        every > 0 && since >= every
    }

    /// Writes a checkpoint if enough WAL was written since the last one.
    /// Checked again under the cut lock: the checkpoint thread and a
    /// maintenance round may both find one due.
    fn maybe_checkpoint(&self) {
        if !self.checkpoint_due(self.wal_bytes_total()) {
            return;
        }
        let pending = self.cut_lock.lock();
        if !self.checkpoint_due(self.wal_bytes_total()) {
            return;
        }
        if let Err(e) = self.write_checkpoint_under(pending) {
            tracing::error!(error = %e, "head checkpoint failed");
        }
    }

    /// Flushes and fsyncs the WAL and stops background work; writes a
    /// checkpoint first if [`Options::checkpoint_on_close`]. Blocking.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.maintenance.stop();
        self.checkpointer.stop();
        if self.opts.checkpoint_on_close
            && let Err(e) = self.write_checkpoint_under(self.cut_lock.lock())
        {
            tracing::warn!(error = %e, "checkpoint at close failed; the next open replays the WAL");
        }
        let _gate = self.gate.write();
        let closed = self
            .wal
            .close()
            .and_then(|()| save_metadata(&self.opts.data_dir, &self.metadata));
        // Released even if closing failed: nothing here writes any more.
        self.lock.lock().take();
        closed
    }

    /// One round of background maintenance: cut if due, then compact.
    fn maintain(&self) -> Result<()> {
        if let Some((min, max)) = self.head.live_range() {
            let span = Duration::from_millis((max - min).max(0) as u64);
            let since = self.last_cut.lock().elapsed();
            if span >= self.opts.block_duration || since >= self.opts.block_duration {
                self.cut_head()?;
            }
        }
        // The checkpoint a cut makes due (the head it leaves holds the WAL
        // written while it ran), before compacting. The checkpoint thread,
        // woken by appends, writes it too if it gets the cut lock first;
        // without background threads, this is what writes it.
        self.maybe_checkpoint();
        self.compact()
    }
}

/// Takes the exclusive lock on `<dir>/lock` (an advisory `flock`, released
/// by the kernel when the process dies, so a crash leaves no stale lock).
fn lock_data_dir(dir: &Path) -> Result<fs::File> {
    let path = dir.join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Each background thread runs a round every [`BACKGROUND_INTERVAL`], or
/// sooner when an append finds its work (a cut, a checkpoint) due, but at
/// most one per
/// [`BACKGROUND_MIN_GAP`] (a round that cannot clear what is due, e.g. on a
/// full disk, must not spin).
const BACKGROUND_INTERVAL: Duration = Duration::from_secs(10);
const BACKGROUND_MIN_GAP: Duration = Duration::from_millis(200);

fn background_loop(db: &std::sync::Weak<Db>, bg: &(Mutex<Background>, Condvar), round: fn(&Db)) {
    let mut last_round = Instant::now();
    loop {
        {
            let mut state = bg.0.lock();
            loop {
                if state.stopped {
                    return;
                }
                let since = last_round.elapsed();
                if (state.kicked && since >= BACKGROUND_MIN_GAP) || since >= BACKGROUND_INTERVAL {
                    break;
                }
                let wait = if state.kicked {
                    BACKGROUND_MIN_GAP - since
                } else {
                    BACKGROUND_INTERVAL - since
                };
                bg.1.wait_for(&mut state, wait);
            }
            state.kicked = false;
        }
        last_round = Instant::now();
        let Some(db) = db.upgrade() else { return };
        round(&db);
    }
}

fn wait_for_readers(token: &Arc<()>) {
    let start = Instant::now();
    while Arc::strong_count(token) > 1 {
        std::thread::sleep(Duration::from_millis(5));
        if start.elapsed() > Duration::from_secs(600) {
            tracing::warn!("readers still hold a pre-cut view after 10 minutes; proceeding");
            return;
        }
    }
}

fn sort_blocks(blocks: &mut [Arc<Block>]) {
    blocks
        .sort_by(|a, b| (a.meta().min_time, &a.meta().id).cmp(&(b.meta().min_time, &b.meta().id)));
}

fn remove_block_dir(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        tracing::error!(dir = %dir.display(), error = %e, "could not delete block");
    }
}

fn open_blocks(dir: &Path, cache: &Arc<BlockCache>) -> Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() {
            continue;
        }
        if name.ends_with(".tmp") {
            // An unfinished write from before a crash: never published.
            remove_block_dir(&path);
            continue;
        }
        blocks.push(Arc::new(Block::open_cached(&path, Some(cache.clone()))?));
    }
    // A compaction that stopped before deleting its inputs leaves blocks
    // whose sources are all covered by a newer, higher-level block.
    let stale_ids: std::collections::HashSet<String> = blocks
        .iter()
        .filter(|x| {
            blocks.iter().any(|y| {
                y.meta().id != x.meta().id
                    && y.meta().level > x.meta().level
                    && x.meta()
                        .sources
                        .iter()
                        .all(|s| y.meta().sources.contains(s))
            })
        })
        .map(|b| b.meta().id.clone())
        .collect();
    let (stale, mut kept): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .partition(|b| stale_ids.contains(&b.meta().id));
    for b in stale {
        tracing::info!(block = %b.meta().id, "removing block already merged into a newer one");
        remove_block_dir(b.dir());
    }
    sort_blocks(&mut kept);
    Ok(kept)
}

/// Compaction window sizes, in block durations.
const COMPACTION_MULTIPLES: [i64; 5] = [1, 3, 12, 84, 372];

/// Picks the next set of blocks to merge: two or more blocks that fit in
/// one aligned window of 1x, 3x, 12x, 84x, 372x the block duration (2 h,
/// 6 h, 24 h, 7 d, 31 d by default), capped at the maximum block duration,
/// once the window is complete (behind the live head and the newest block).
///
/// Cuts write one block per base window, so every block fits a window; the
/// blocks of one window (several cuts, late samples, backfill) overlap in
/// time and are merged in one go when the window completes, never
/// repeatedly while it fills (queries merge overlapping blocks meanwhile).
/// Merging by window keeps write amplification at one rewrite per level.
fn plan_compaction(
    blocks: &[Arc<Block>],
    opts: &Options,
    head_min: Option<i64>,
) -> Option<Vec<Arc<Block>>> {
    let base = (opts.block_duration.as_millis() as i64).max(1);
    let cap = (opts.max_block_duration.as_millis() as i64).max(base);
    let newest = blocks.iter().map(|b| b.meta().max_time).max()?;
    let frontier = head_min.map_or(newest, |h| h.min(newest));
    let mut prev = 0;
    for mult in COMPACTION_MULTIPLES {
        let range = base.saturating_mul(mult).min(cap);
        if range <= prev {
            continue;
        }
        prev = range;
        let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in blocks {
            let w = b.meta().min_time.div_euclid(range);
            if b.meta().max_time < (w + 1).saturating_mul(range) {
                groups.entry(w).or_default().push(b.clone());
            }
        }
        for (w, g) in groups {
            let window_end = (w + 1).saturating_mul(range);
            if g.len() >= 2 && window_end <= frontier {
                return Some(g);
            }
        }
    }
    None
}

/// The first window of the largest compaction size (see
/// [`plan_compaction`]) holding two or more blocks, complete or not.
fn plan_forced(blocks: &[Arc<Block>], opts: &Options) -> Option<Vec<Arc<Block>>> {
    let base = (opts.block_duration.as_millis() as i64).max(1);
    let cap = (opts.max_block_duration.as_millis() as i64).max(base);
    let range = base
        .saturating_mul(COMPACTION_MULTIPLES[COMPACTION_MULTIPLES.len() - 1])
        .min(cap);
    let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
    for b in blocks {
        let w = b.meta().min_time.div_euclid(range);
        if b.meta().max_time < (w + 1).saturating_mul(range) {
            groups.entry(w).or_default().push(b.clone());
        }
    }
    groups.into_values().find(|g| g.len() >= 2)
}

/// Samples per series an applier gathers before applying a batch series
/// by series: each costs 24 bytes in each batch in flight, so 4 add ~300
/// bytes per series (an eighth of a series' steady-state memory) and cut
/// the series visits to a quarter.
const REPLAY_SAMPLES_PER_SERIES: usize = 4;

/// Bounds of a replay batch, in samples.
const REPLAY_BATCH_MIN: usize = 1 << 14;
const REPLAY_BATCH_MAX: usize = 1 << 20;

/// Records queued per applier.
const REPLAY_QUEUE: usize = 16;

/// Sample buffers kept for reuse per applier. A full batch waits for a
/// spare one, which bounds the batches in flight (filling, queued, being
/// applied) to about three per applier.
const REPLAY_SPARE_BUFFERS: usize = 2;

/// Below this many series per applier the series stay in the CPU's cache:
/// batching and sorting cost more than they save, and each WAL record goes
/// to the appliers as it is read. (At 10 k series per applier, a head's
/// worth of series already misses the cache on every sample: batching
/// replays about a tenth faster there.)
const REPLAY_SORT_MIN_SERIES: usize = 2 << 10;

/// Replays the WAL segments after `covered` into the head and returns the
/// number of samples applied. A reader thread reads, checks (CRC) and
/// decodes records and splits them by series id over a few applier threads
/// (a series' records always reach the same applier, in WAL order, so its
/// series record comes before its samples). Samples are gathered into
/// batches per applier, applied series by series (a stable sort by id keeps
/// each series' WAL order): replay is bound by cache misses on the series,
/// and a batch touches each series once instead of once per sample.
/// Batches grow with the series seen ([`REPLAY_SAMPLES_PER_SERIES`]), so
/// their memory stays a small part of the head's and replay needs little
/// more than steady state. Segments up to `covered` (already in blocks) are
/// deleted. A torn tail is cut off the last segment; damage anywhere else
/// is an error.
fn replay_wal(
    head: &Head,
    metadata: &MetadataStore,
    segments: &[(u64, PathBuf)],
    covered: u64,
    resume: Option<&Resume>,
) -> Result<u64> {
    let last_seq = segments.last().map(|(s, _)| *s);
    let appliers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..appliers)
        .map(|_| crossbeam::channel::bounded::<Record>(REPLAY_QUEUE))
        .unzip();
    let (spare_txs, spare_rxs): (Vec<_>, Vec<_>) = (0..appliers)
        .map(|_| {
            let (tx, rx) = crossbeam::channel::bounded::<SampleBuf>(REPLAY_SPARE_BUFFERS);
            for _ in 0..REPLAY_SPARE_BUFFERS {
                let _ = tx.try_send(Vec::new());
            }
            (tx, rx)
        })
        .unzip();
    std::thread::scope(|scope| {
        let workers: Vec<_> = rxs
            .into_iter()
            .zip(spare_txs)
            .map(|(rx, spare)| {
                scope.spawn(move || {
                    let mut replay = Replay {
                        head,
                        metadata,
                        ids: Vec::new(),
                        from_checkpoint: resume.is_some(),
                        series: resume.map_or(0, |r| r.series / appliers),
                        counts: Vec::new(),
                        grouped: Vec::new(),
                        samples: 0,
                        unknown: 0,
                    };
                    for rec in rx.iter() {
                        if let Some(mut buf) = replay.apply(rec) {
                            buf.clear();
                            // A full pool means the reader has enough.
                            let _ = spare.try_send(buf);
                        }
                    }
                    (replay.samples, replay.unknown)
                })
            })
            .collect();
        let read = read_wal(segments, covered, last_seq, resume, &txs, &spare_rxs);
        drop(txs);
        let (mut samples, mut unknown) = (0, 0);
        for w in workers {
            let (s, u) = w
                .join()
                .map_err(|_| Error::WalFailed("WAL replay thread panicked".into()))?;
            samples += s;
            unknown += u;
        }
        read?;
        if unknown > 0 {
            tracing::warn!(
                samples = unknown,
                "WAL samples for series without a series record; skipped"
            );
        }
        Ok(samples)
    })
}

/// A WAL samples record's entries: (series id, timestamp, value bits).
type SampleBuf = Vec<(u32, i64, u64)>;

/// The reading side of [`replay_wal`]: sends each record's part for
/// applier `k` (series ids `≡ k` modulo the number of appliers) to `txs[k]`,
/// taking sample buffers from `spares[k]`. After a checkpoint, reading
/// starts at its position and skips each series' records it holds.
fn read_wal(
    segments: &[(u64, PathBuf)],
    covered: u64,
    last_seq: Option<u64>,
    resume: Option<&Resume>,
    txs: &[crossbeam::channel::Sender<Record>],
    spares: &[crossbeam::channel::Receiver<SampleBuf>],
) -> Result<()> {
    let n = txs.len();
    let send = |k: usize, rec: Record| txs[k].send(rec).map_err(|_| Error::Closed);
    let mut pending: Vec<SampleBuf> = (0..n).map(|_| Vec::new()).collect();
    let mut series_seen = resume.map_or(0, |r| r.series);
    let mut batching = series_seen / n >= REPLAY_SORT_MIN_SERIES;
    let flush = |k: usize, pending: &mut Vec<SampleBuf>, batching: bool| {
        if pending[k].is_empty() {
            return Ok(());
        }
        let next = if batching {
            spares[k].recv().map_err(|_| Error::Closed)?
        } else {
            spares[k].try_recv().unwrap_or_default()
        };
        let batch = std::mem::replace(&mut pending[k], next);
        send(k, Record::Samples(batch))
    };
    let mut batch_len =
        (series_seen / n * REPLAY_SAMPLES_PER_SERIES).clamp(REPLAY_BATCH_MIN, REPLAY_BATCH_MAX);
    for (seq, path) in segments {
        if *seq <= covered {
            fs::remove_file(path).map_err(|e| Error::io(path, e))?;
            continue;
        }
        let from = match resume {
            // In the checkpoint (and kept for a full replay should it fail).
            Some(r) if *seq < r.start.seq => continue,
            Some(r) if *seq == r.start.seq => r.start.offset,
            _ => wal::HEADER_LEN,
        };
        let read = wal::read_segment_from(path, from, &mut |rec, end| {
            let here = WalPos {
                seq: *seq,
                offset: end,
            };
            // Whether series `id`'s checkpointed chunks already hold this
            // record's data.
            let filter = resume.filter(|r| here <= r.skip_max);
            let checkpointed = |id: u32| {
                filter.is_some_and(|r| r.skip.get(id as usize).is_some_and(|p| here <= *p))
            };
            match rec {
                Record::Series(list) => {
                    series_seen += list.len();
                    batching = series_seen / n >= REPLAY_SORT_MIN_SERIES;
                    batch_len = (series_seen / n * REPLAY_SAMPLES_PER_SERIES)
                        .clamp(REPLAY_BATCH_MIN, REPLAY_BATCH_MAX);
                    let mut parts: Vec<Vec<(u32, Labels)>> = vec![Vec::new(); n];
                    for e in list {
                        parts[e.0 as usize % n].push(e);
                    }
                    for (k, p) in parts.into_iter().enumerate() {
                        if !p.is_empty() {
                            // Samples read so far go first: WAL order.
                            flush(k, &mut pending, batching)?;
                            send(k, Record::Series(p))?;
                        }
                    }
                }
                Record::Samples(list) => {
                    for e in list {
                        if checkpointed(e.0) {
                            continue;
                        }
                        let k = e.0 as usize % n;
                        pending[k].push(e);
                        if batching && pending[k].len() >= batch_len {
                            flush(k, &mut pending, batching)?;
                        }
                    }
                    if !batching {
                        for k in 0..n {
                            flush(k, &mut pending, batching)?;
                        }
                    }
                }
                Record::Starts(list) => {
                    // Applied by the series' applier, before or after the
                    // samples they belong to (which may wait in `pending`):
                    // a start needs no sample. Checkpointed samples keep
                    // theirs in the checkpoint.
                    let mut parts: Vec<Vec<(u32, i64, i64)>> = vec![Vec::new(); n];
                    for e in list.into_iter().filter(|e| !checkpointed(e.0)) {
                        parts[e.0 as usize % n].push(e);
                    }
                    for (k, p) in parts.into_iter().enumerate() {
                        if !p.is_empty() {
                            send(k, Record::Starts(p))?;
                        }
                    }
                }
                Record::Metadata(_) => send(0, rec)?,
            }
            Ok(())
        })?;
        if let Some(why) = read.stopped {
            if Some(*seq) == last_seq {
                tracing::warn!(path = %path.display(), %why, "cutting torn WAL tail");
                wal::truncate_segment(path, read.valid_len)?;
            } else {
                return Err(Error::corruption(path, why));
            }
        }
    }
    for k in 0..n {
        flush(k, &mut pending, batching)?;
    }
    Ok(())
}

/// The applying side of WAL replay.
struct Replay<'a> {
    head: &'a Head,
    metadata: &'a MetadataStore,
    /// WAL series id → series (ids are dense: indexed directly).
    ids: Vec<Option<Arc<MemSeries>>>,
    /// The head was loaded from a checkpoint: ids without a series record
    /// in the WAL read are the checkpoint's (the head's) ids.
    from_checkpoint: bool,
    /// Series records applied (this applier's share of the head).
    series: usize,
    /// Scratch space of [`group_by_series`].
    counts: Vec<u32>,
    grouped: SampleBuf,
    samples: u64,
    unknown: u64,
}

impl Replay<'_> {
    /// Applies one record; gives back a samples record's buffer for reuse.
    fn apply(&mut self, rec: Record) -> Option<SampleBuf> {
        match rec {
            Record::Series(list) => {
                for (id, labels) in list {
                    let s = self.head.create_with_id(id, &labels);
                    self.series += 1;
                    let i = id as usize;
                    if i >= self.ids.len() {
                        self.ids.resize(i + 1, None);
                    }
                    self.ids[i] = Some(s);
                }
            }
            Record::Samples(list) => {
                let run_list = if self.series >= REPLAY_SORT_MIN_SERIES {
                    group_by_series(&list, &mut self.counts, &mut self.grouped);
                    &self.grouped
                } else {
                    &list
                };
                let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                for run in run_list.chunk_by(|a, b| a.0 == b.0) {
                    let Some(s) =
                        series_of(self.head, self.from_checkpoint, &mut self.ids, run[0].0)
                    else {
                        self.unknown += run.len() as u64;
                        continue;
                    };
                    let mut d = s.lock();
                    for &(_, t, bits) in run {
                        let v = f64::from_bits(bits);
                        if let Ok(true) = d.live.check(t, v) {
                            d.live.push(t, v, &self.head.columns);
                            lo = lo.min(t);
                            hi = hi.max(t);
                        }
                    }
                    self.samples += run.len() as u64;
                }
                if lo <= hi {
                    self.head.note_live(lo);
                    self.head.note_live(hi);
                }
                return Some(list);
            }
            Record::Starts(list) => {
                self.head.note_starts();
                for run in list.chunk_by(|a, b| a.0 == b.0) {
                    let Some(s) =
                        series_of(self.head, self.from_checkpoint, &mut self.ids, run[0].0)
                    else {
                        continue;
                    };
                    let mut d = s.lock();
                    for &(_, t, st) in run {
                        d.live.set_start(t, st);
                    }
                }
            }
            Record::Metadata(list) => {
                for m in &list {
                    self.metadata.observe(m);
                }
            }
        }
        None
    }
}

/// The series of WAL id `id` in a replay: one a series record of the WAL
/// read created (`ids`), or, when the head was loaded from a checkpoint,
/// the head's series of that id.
fn series_of(
    head: &Head,
    from_checkpoint: bool,
    ids: &mut Vec<Option<Arc<MemSeries>>>,
    id: u32,
) -> Option<Arc<MemSeries>> {
    let i = id as usize;
    if from_checkpoint
        && !matches!(ids.get(i), Some(Some(_)))
        && let Some(s) = head.by_id(id)
    {
        if i >= ids.len() {
            ids.resize(i + 1, None);
        }
        ids[i] = Some(s);
    }
    ids.get(i).cloned().flatten()
}

/// Counting sort of WAL samples by series id into `out`: stable, so each
/// series keeps its samples in WAL order; linear in the batch and the
/// largest id.
fn group_by_series(list: &[(u32, i64, u64)], counts: &mut Vec<u32>, out: &mut SampleBuf) {
    let max = list.iter().map(|e| e.0).max().unwrap_or(0) as usize;
    counts.clear();
    counts.resize(max + 2, 0);
    for e in list {
        counts[e.0 as usize + 1] += 1;
    }
    for i in 1..counts.len() {
        counts[i] += counts[i - 1];
    }
    out.clear();
    out.resize(list.len(), (0, 0, 0));
    for &e in list {
        let slot = &mut counts[e.0 as usize];
        out[*slot as usize] = e;
        *slot += 1;
    }
}

/// Where WAL replay resumes after a loaded checkpoint.
struct Resume {
    start: WalPos,
    /// Per series id: the position of the last record already in the
    /// checkpoint (zero: none after `start`).
    skip: Vec<WalPos>,
    /// The largest of `skip`: past it, no record is filtered.
    skip_max: WalPos,
    /// Series loaded.
    series: usize,
    /// Size of the checkpoint file.
    bytes: u64,
}

/// Why a checkpoint cannot be used with the WAL and blocks on disk, if it
/// cannot; `Ok(true)` when it is stale (blocks cover its WAL range).
fn checkpoint_usable(
    start: &checkpoint::Start,
    covered: u64,
    segments: &[(u64, PathBuf)],
) -> std::result::Result<(), (bool, String)> {
    if start.base_segment <= covered {
        return Err((
            true,
            format!(
                "stale: blocks cover WAL segment {covered}, the checkpoint's data starts in segment {}",
                start.base_segment
            ),
        ));
    }
    if start.pos.seq < start.base_segment {
        return Err((false, "start position before its base segment".into()));
    }
    if let Some((seq, _)) = segments
        .iter()
        .find(|(seq, _)| *seq > covered && *seq < start.base_segment)
    {
        return Err((
            false,
            format!("WAL segment {seq} is neither in a block nor in the checkpoint"),
        ));
    }
    let len = segments
        .iter()
        .find(|(seq, _)| *seq == start.pos.seq)
        .and_then(|(_, p)| fs::metadata(p).ok())
        .map(|m| m.len());
    match len {
        Some(len) if len >= start.pos.offset => Ok(()),
        _ => Err((
            false,
            format!(
                "the WAL does not reach the checkpoint's start (segment {} offset {})",
                start.pos.seq, start.pos.offset
            ),
        )),
    }
}

/// A fresh head and metadata store (with the saved metadata), then the
/// newest usable checkpoint loaded into them, if any. A damaged checkpoint
/// is reported and skipped (the full WAL replay restores the same head);
/// stale ones are deleted.
fn load_checkpoint(
    dir: &Path,
    wal_dir: &Path,
    covered: u64,
    segments: &[(u64, PathBuf)],
) -> Result<(Head, MetadataStore, Option<Resume>)> {
    let fresh = || -> Result<(Head, MetadataStore)> {
        let metadata = MetadataStore::default();
        load_metadata(dir, &metadata)?;
        Ok((Head::new(), metadata))
    };
    for (_, path) in checkpoint::list(wal_dir)? {
        let started = Instant::now();
        let (head, metadata) = fresh()?;
        let mut unusable: Option<(bool, String)> = None;
        let mut start_pos = WalPos::default();
        let read = checkpoint::read(
            &path,
            &mut |start| {
                start_pos = start.pos;
                checkpoint_usable(start, covered, segments).map_err(|why| {
                    let e = Error::Invalid(why.1.clone());
                    unusable = Some(why);
                    e
                })
            },
            &mut |id, labels, chunks| {
                if head.by_id(id).is_some() {
                    return Err(Error::corruption(&path, format!("series id {id} twice")));
                }
                let s = head.create_with_id(id, &labels);
                if s.id != id {
                    return Err(Error::corruption(&path, format!("series {labels} twice")));
                }
                if let Some((lo, hi)) = chunks.time_range() {
                    head.note_live(lo);
                    head.note_live(hi);
                }
                s.lock().live = chunks;
                Ok(())
            },
            &mut |m| {
                metadata.observe(&m);
            },
        );
        match read {
            Ok(loaded) => {
                if !loaded.starts.is_empty() {
                    head.note_starts();
                }
                for (id, starts) in loaded.starts {
                    // Written after their series, which the read created.
                    if let Some(s) = head.by_id(id) {
                        let mut d = s.lock();
                        for (t, st) in starts {
                            d.live.set_start(t, st);
                        }
                    }
                }
                let mut skip = Vec::new();
                let mut skip_max = WalPos::default();
                for (id, pos) in loaded.positions {
                    let i = id as usize;
                    if i >= skip.len() {
                        skip.resize(i + 1, WalPos::default());
                    }
                    skip[i] = pos;
                    skip_max = skip_max.max(pos);
                }
                tracing::info!(
                    path = %path.display(),
                    series = loaded.series,
                    seconds = started.elapsed().as_secs_f64(),
                    "head checkpoint loaded"
                );
                let resume = Resume {
                    start: start_pos,
                    skip,
                    skip_max,
                    series: loaded.series as usize,
                    bytes: fs::metadata(&path).map_or(0, |m| m.len()),
                };
                return Ok((head, metadata, Some(resume)));
            }
            Err(_) if unusable.as_ref().is_some_and(|u| u.0) => {
                tracing::info!(path = %path.display(), "deleting stale head checkpoint");
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
            Err(e) => {
                let why = unusable.map_or_else(|| e.to_string(), |u| u.1);
                tracing::warn!(
                    path = %path.display(),
                    error = %why,
                    "ignoring head checkpoint; replaying the whole WAL instead"
                );
            }
        }
    }
    let (head, metadata) = fresh()?;
    Ok((head, metadata, None))
}

fn load_metadata(dir: &Path, store: &MetadataStore) -> Result<()> {
    let path = dir.join(METADATA_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let file: MetadataFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corruption(&path, format!("invalid metadata file: {e}")))?;
    if file.format != "silt-metadata" || file.version != 1 {
        return Err(Error::corruption(
            &path,
            "not a silt metadata file of version 1",
        ));
    }
    let body =
        serde_json::to_vec(&file.metadata).map_err(|e| Error::corruption(&path, e.to_string()))?;
    if crc32c::crc32c(&body) != file.checksum {
        return Err(Error::corruption(&path, "metadata checksum mismatch"));
    }
    for m in &file.metadata {
        store.observe(m);
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MetadataFile {
    format: String,
    version: u32,
    /// CRC-32C of the compact JSON serialisation of `metadata`.
    checksum: u32,
    metadata: Vec<MetricMetadata>,
}

fn save_metadata(dir: &Path, store: &MetadataStore) -> Result<()> {
    let metadata = store.all();
    let body = serde_json::to_vec(&metadata).map_err(|e| Error::Invalid(e.to_string()))?;
    let file = MetadataFile {
        format: "silt-metadata".into(),
        version: 1,
        checksum: crc32c::crc32c(&body),
        metadata,
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| Error::Invalid(e.to_string()))?;
    let tmp = dir.join(format!("{METADATA_FILE}.tmp"));
    let path = dir.join(METADATA_FILE);
    {
        use std::io::Write;
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    wal::fsync_dir(dir)
}

/// Where a series' data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Head(u32),
    /// Index into the querier's block list, and the block-local series id.
    Block(usize, u32),
}

/// One series found by [`Querier::select`].
#[derive(Debug, Clone)]
pub struct SeriesEntry {
    pub labels: Labels,
    sources: Vec<Source>,
    /// Some of the series' samples had start timestamps when it was
    /// selected (in a block, or in the head).
    has_starts: bool,
}

impl SeriesEntry {
    /// Whether some of the series' samples had start timestamps when it
    /// was selected ([`Querier::start_timestamps`] has some to give).
    #[inline]
    pub fn has_starts(&self) -> bool {
        self.has_starts
    }
}

/// Sorts the (time, start) pairs of two head generations into one list;
/// of a time in both, the later generation's (as the samples read keep
/// it).
pub(crate) fn merge_generations(pairs: &mut Vec<(i64, i64)>) {
    pairs.sort_by_key(|&(t, _)| t);
    pairs.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            *kept = *later;
        }
        same
    });
}

/// A consistent read view over `[mint, maxt]`.
pub struct Querier {
    db: Arc<Db>,
    blocks: Vec<Arc<Block>>,
    published: u64,
    _token: Arc<()>,
    mint: i64,
    maxt: i64,
}

impl Querier {
    pub fn mint(&self) -> i64 {
        self.mint
    }

    pub fn maxt(&self) -> i64 {
        self.maxt
    }

    /// Reads a head series' samples visible to this view.
    fn read_head(&self, s: &MemSeries, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        let d = s.lock();
        let cache = &*self.db.cache;
        let keys = if cache.is_enabled() {
            self.db.head.chunk_keys()
        } else {
            None
        };
        let read = |c: &Chunks, key: Option<u64>, out: &mut Vec<Sample>| match key {
            Some(key) => c.read_cached(mint, maxt, out, cache, (key, s.id)),
            None => c.read(mint, maxt, out),
        };
        let frozen_visible = self.db.frozen_gen.load(Ordering::Acquire) > self.published;
        let mut parts = 0;
        if frozen_visible && let Some(f) = &d.frozen {
            read(f, keys.map(|k| k.1), out);
            parts += 1;
        }
        read(&d.live, keys.map(|k| k.0), out);
        drop(d);
        if parts > 0 && out.len() > start {
            out[start..].sort_by_key(|s| s.t);
            dedup_sorted(out, start);
        }
    }

    /// The (time, start) pairs of a head series' samples in `[mint, maxt]`
    /// visible to this view that have a start, sorted, into `pairs`
    /// (cleared first).
    fn read_head_starts(&self, s: &MemSeries, mint: i64, maxt: i64, pairs: &mut Vec<(i64, i64)>) {
        pairs.clear();
        let d = s.lock();
        let frozen_visible = self.db.frozen_gen.load(Ordering::Acquire) > self.published;
        if frozen_visible && let Some(f) = &d.frozen {
            f.read_starts(mint, maxt, pairs);
        }
        let frozen = pairs.len();
        d.live.read_starts(mint, maxt, pairs);
        drop(d);
        if frozen > 0 && pairs.len() > frozen {
            merge_generations(pairs);
        }
    }

    /// The (min, max) time of a head series' samples visible to this view,
    /// and (if `starts`) whether any of them has a start timestamp.
    fn head_time_range(&self, s: &MemSeries, starts: bool) -> Option<(i64, i64, bool)> {
        let d = s.lock();
        let frozen_visible = self.db.frozen_gen.load(Ordering::Acquire) > self.published;
        let live = d.live.time_range();
        let frozen = if frozen_visible {
            d.frozen.as_deref()
        } else {
            None
        };
        let has_starts = starts && (d.live.has_starts() || frozen.is_some_and(|f| f.has_starts()));
        let range = match (live, frozen.and_then(|f| f.time_range())) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
        range.map(|(a, b)| (a, b, has_starts))
    }

    /// Series matching all matchers with data in the view's range, sorted by labels.
    ///
    /// A block's series ids follow its label order (checked when the block is
    /// opened), so the blocks' matches are merged as sorted runs with the
    /// head's sorted matches; a label set is built once per series found,
    /// not once per block holding it.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesEntry>> {
        // Head series with start timestamps, noted under the lock the time
        // range takes anyway (none to look for until a first one arrives).
        let look = self.db.head.starts_seen();
        let mut with_starts: HashSet<u32> = HashSet::new();
        let head_found: Vec<(Labels, u32)> = self.db.head.select_sorted(matchers, |s| {
            let Some((a, b, starts)) = self.head_time_range(s, look) else {
                return false;
            };
            if starts {
                with_starts.insert(s.id);
            }
            b >= self.mint && a <= self.maxt
        });
        // Per block with matches: (block index, ascending ids in range).
        let runs: Vec<(usize, Vec<u32>)> = self
            .blocks
            .iter()
            .enumerate()
            .map(|(bi, b)| {
                let ids = b
                    .select(matchers)
                    .iter()
                    .filter(|&id| {
                        let (a, z) = b.series_time_range(id);
                        z >= self.mint && a <= self.maxt
                    })
                    .collect::<Vec<u32>>();
                (bi, ids)
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        let mut pos = vec![0usize; runs.len()];
        let mut head_pos = 0usize;
        let mut out: Vec<SeriesEntry> = Vec::new();
        // Runs whose next series has the smallest label set, ascending.
        let mut equal: Vec<usize> = Vec::with_capacity(runs.len());
        loop {
            // The smallest label set among the runs' next series (and the
            // head's), compared in place, and every source holding it: one
            // comparison per run and series.
            let mut min = (head_pos < head_found.len()).then_some(Next::Head);
            let mut head_equal = min.is_some();
            equal.clear();
            for (r, (bi, ids)) in runs.iter().enumerate() {
                let Some(&id) = ids.get(pos[r]) else { continue };
                let key = SeriesKey::of(&self.blocks[*bi], id);
                let order = match min {
                    None => std::cmp::Ordering::Less,
                    Some(Next::Head) => key.cmp_labels(&head_found[head_pos].0),
                    Some(Next::Run(m)) => {
                        let (mb, mids) = &runs[m];
                        key.cmp(SeriesKey::of(&self.blocks[*mb], mids[pos[m]]))
                    }
                };
                match order {
                    std::cmp::Ordering::Less => {
                        min = Some(Next::Run(r));
                        head_equal = false;
                        equal.clear();
                        equal.push(r);
                    }
                    std::cmp::Ordering::Equal => equal.push(r),
                    std::cmp::Ordering::Greater => {}
                }
            }
            let labels = match min {
                None => break,
                Some(Next::Head) => head_found[head_pos].0.clone(),
                Some(Next::Run(r)) => self.blocks[runs[r].0].labels(runs[r].1[pos[r]]),
            };
            // Blocks first (in block order), the head last, so later
            // sources win on duplicates.
            let mut sources = Vec::with_capacity(equal.len() + usize::from(head_equal));
            let mut has_starts = false;
            for &r in &equal {
                let (bi, ids) = &runs[r];
                // Where the block has no set of its own yet, later merges
                // find this series equal by pointer.
                self.blocks[*bi].share_labels(ids[pos[r]], &labels);
                has_starts |= self.blocks[*bi].series_has_starts(ids[pos[r]]);
                sources.push(Source::Block(*bi, ids[pos[r]]));
                pos[r] += 1;
            }
            if head_equal {
                let id = head_found[head_pos].1;
                has_starts |= with_starts.contains(&id);
                sources.push(Source::Head(id));
                head_pos += 1;
            }
            out.push(SeriesEntry {
                labels,
                sources,
                has_starts,
            });
        }
        Ok(out)
    }

    /// Appends the entry's samples with `mint <= t <= maxt`, sorted by time,
    /// one per timestamp (a later block, then the head, wins).
    pub fn samples(
        &self,
        entry: &SeriesEntry,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
    ) -> Result<()> {
        let start = out.len();
        out.reserve(
            entry
                .sources
                .iter()
                .map(|src| match *src {
                    Source::Block(bi, id) => self.blocks[bi].estimate_samples(id, mint, maxt),
                    Source::Head(_) => 0,
                })
                .sum(),
        );
        // Each source's samples are sorted; they join in order unless
        // blocks overlap (out-of-order data): sort and deduplicate only then.
        let mut in_order = true;
        for src in &entry.sources {
            let joint = out.len();
            match *src {
                Source::Head(id) => {
                    if let Some(s) = self.db.head.by_id(id) {
                        self.read_head(&s, mint, maxt, out);
                    }
                }
                Source::Block(bi, id) => self.blocks[bi].read_samples(id, mint, maxt, out)?,
            }
            if joint > start && joint < out.len() && out[joint - 1].t >= out[joint].t {
                in_order = false;
            }
        }
        if !in_order {
            out[start..].sort_by_key(|s| s.t);
            dedup_sorted(out, start);
        }
        Ok(())
    }

    /// The start timestamps of the entry's samples in `[mint, maxt]`, as
    /// runs ([`StartRun`], sorted and disjoint; [`starts::align_starts`]
    /// lines them up with the samples). Empty when none has one, which
    /// costs nothing for a series without any ([`SeriesEntry::has_starts`];
    /// a series' first start arriving after it was selected is not seen).
    /// Runs may reach beyond the window. Where sources overlap in time, a
    /// time's start is that of the source whose sample wins there (the
    /// later one), as [`Querier::samples`] merges them.
    pub fn start_timestamps(
        &self,
        entry: &SeriesEntry,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<StartRun>> {
        let mut runs = Vec::new();
        if !entry.has_starts {
            return Ok(runs);
        }
        if entry.sources.len() > 1 && self.sources_overlap(entry, mint, maxt) {
            return self.start_timestamps_merged(entry, mint, maxt);
        }
        let mut pairs = Vec::new();
        for src in &entry.sources {
            match *src {
                Source::Block(bi, id) => {
                    runs.extend_from_slice(self.blocks[bi].start_runs(id, mint, maxt));
                }
                Source::Head(id) => {
                    if let Some(s) = self.db.head.by_id(id) {
                        self.read_head_starts(&s, mint, maxt, &mut pairs);
                        runs.extend(starts::runs_from_pairs(&pairs));
                    }
                }
            }
        }
        // Sources apart in time: their runs are too (unless the head took
        // a sample in another source's span since the check).
        runs.sort_unstable_by_key(|r| r.first);
        if runs.windows(2).any(|w| w[0].last >= w[1].first) {
            return self.start_timestamps_merged(entry, mint, maxt);
        }
        Ok(runs)
    }

    /// Whether some of the entry's sources hold samples in a common span
    /// of time within `[mint, maxt]`.
    fn sources_overlap(&self, entry: &SeriesEntry, mint: i64, maxt: i64) -> bool {
        let mut ranges: Vec<(i64, i64)> = entry
            .sources
            .iter()
            .filter_map(|src| match *src {
                Source::Block(bi, id) => Some(self.blocks[bi].series_time_range(id)),
                Source::Head(id) => {
                    let s = self.db.head.by_id(id)?;
                    self.head_time_range(&s, false).map(|(a, b, _)| (a, b))
                }
            })
            .map(|(a, b)| (a.max(mint), b.min(maxt)))
            .filter(|(a, b)| a <= b)
            .collect();
        ranges.sort_unstable();
        ranges.windows(2).any(|w| w[1].0 <= w[0].1)
    }

    /// [`Querier::start_timestamps`] over sources that overlap in time:
    /// each source's starts lined up with its own samples, and of a time
    /// in several, the later source's (a start or none), as its sample
    /// wins. Runs of one sample each.
    #[cold]
    fn start_timestamps_merged(
        &self,
        entry: &SeriesEntry,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<StartRun>> {
        // (time, source, start) of every sample of every source.
        let mut all: Vec<(i64, usize, i64)> = Vec::new();
        let (mut samples, mut runs, mut pairs, mut own) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, src) in entry.sources.iter().enumerate() {
            samples.clear();
            runs.clear();
            match *src {
                Source::Block(bi, id) => {
                    let b = &self.blocks[bi];
                    b.read_samples(id, mint, maxt, &mut samples)?;
                    runs.extend_from_slice(b.start_runs(id, mint, maxt));
                }
                Source::Head(id) => {
                    let Some(s) = self.db.head.by_id(id) else {
                        continue;
                    };
                    self.read_head(&s, mint, maxt, &mut samples);
                    self.read_head_starts(&s, mint, maxt, &mut pairs);
                    runs.extend(starts::runs_from_pairs(&pairs));
                }
            }
            starts::align_starts(&runs, &samples, &mut own);
            all.extend(samples.iter().zip(&own).map(|(s, &st)| (s.t, k, st)));
        }
        all.sort_unstable_by_key(|&(t, k, _)| (t, k));
        Ok(all
            .iter()
            .enumerate()
            .filter(|&(i, &(t, _, st))| st != 0 && all.get(i + 1).is_none_or(|n| n.0 != t))
            .map(|(_, &(t, _, start))| StartRun {
                first: t,
                last: t,
                start,
            })
            .collect())
    }

    /// Hands `sink` the entry's samples with `mint <= t <= maxt` in time
    /// order, a slice at a time, without gathering them: block samples come
    /// straight from the decoded-page cache, with the page's summary of
    /// the slice where it is a whole run or chunk if `summaries`
    /// ([`Block::visit_samples`]), and with what its page knows of its
    /// gaps and stale markers ([`Continuity`]; nothing for the head's
    /// samples, or a block's read without the cache). Returns `false` when
    /// the sources overlap in time (out-of-order data in several blocks,
    /// or a block and the head): `sink` then saw part of the samples, and
    /// the caller reads them with [`Querier::samples`], which merges them.
    pub fn visit_samples(
        &self,
        entry: &SeriesEntry,
        mint: i64,
        maxt: i64,
        summaries: bool,
        sink: &mut SliceSink<'_>,
    ) -> Result<bool> {
        let mut last: Option<i64> = None;
        let in_order = std::cell::Cell::new(true);
        let mut checked = |s: &[Sample], summary: Option<RunSummary>, c: Continuity| {
            let (Some(first), Some(end)) = (s.first(), s.last()) else {
                return ControlFlow::Continue(());
            };
            if !in_order.get() || last.is_some_and(|t| first.t <= t) {
                in_order.set(false);
                return ControlFlow::Break(());
            }
            last = Some(end.t);
            sink(s, summary, c);
            ControlFlow::Continue(())
        };
        for src in &entry.sources {
            match *src {
                Source::Head(id) => {
                    if let Some(s) = self.db.head.by_id(id) {
                        HEAD_SCRATCH.with(|cell| {
                            let mut buf = cell.take();
                            buf.clear();
                            self.read_head(&s, mint, maxt, &mut buf);
                            let _ = checked(&buf, None, Continuity::UNKNOWN);
                            if buf.capacity() <= HEAD_SCRATCH_KEEP {
                                cell.set(buf);
                            }
                        });
                    }
                }
                Source::Block(bi, id) => {
                    self.blocks[bi].visit_samples(id, mint, maxt, summaries, &mut checked)?
                }
            }
            if !in_order.get() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Label names of series matching `matchers` (all series if empty), sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        if matchers.is_empty() {
            self.db
                .head
                .with_postings(|p| names.extend(p.label_names().map(str::to_owned)));
            for b in &self.blocks {
                names.extend(b.postings().label_names().map(str::to_owned));
            }
        } else {
            for e in self.select(matchers)? {
                for l in e.labels.iter() {
                    if !names.contains(l.name.as_str()) {
                        names.insert(l.name.to_string());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among series matching `matchers` (all if empty), sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut values = std::collections::BTreeSet::new();
        if matchers.is_empty() {
            self.db
                .head
                .with_postings(|p| values.extend(p.label_values(name).map(|(v, _)| v.to_owned())));
            for b in &self.blocks {
                values.extend(b.postings().label_values(name).map(|(v, _)| v.to_owned()));
            }
        } else {
            for e in self.select(matchers)? {
                if let Some(v) = e.labels.get(name) {
                    values.insert(v.to_owned());
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    /// The blocks this view reads.
    pub fn blocks(&self) -> &[Arc<Block>] {
        &self.blocks
    }
}

/// What [`Querier::visit_samples`] hands each slice to: the samples, their
/// summary if asked for and known, what is known of their gaps.
pub type SliceSink<'a> = dyn FnMut(&[Sample], Option<RunSummary>, Continuity) + 'a;

thread_local! {
    /// A thread's buffer for the head's samples of one series in
    /// [`Querier::visit_samples`] (the head's chunks are compressed).
    static HEAD_SCRATCH: std::cell::Cell<Vec<Sample>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Largest [`HEAD_SCRATCH`] (in samples) a thread keeps between reads.
const HEAD_SCRATCH_KEEP: usize = 1 << 16;

/// Where the next series of [`Querier::select`]'s merge comes from.
#[derive(Clone, Copy)]
enum Next {
    Head,
    /// A block's run of matches.
    Run(usize),
}

/// A block series' label set as [`Querier::select`]'s merge compares it:
/// the block's cached set when it has one (equal sets shared between
/// blocks compare by pointer), else its encoded pairs, read in place.
#[derive(Clone, Copy)]
enum SeriesKey<'a> {
    Set(&'a Labels),
    Pairs(&'a Block, u32),
}

impl<'a> SeriesKey<'a> {
    fn of(block: &'a Block, id: u32) -> SeriesKey<'a> {
        match block.cached_labels(id) {
            Some(l) => SeriesKey::Set(l),
            None => SeriesKey::Pairs(block, id),
        }
    }

    /// In [`Labels`]' order: by name, then value, pair by pair; a prefix
    /// sorts first.
    fn cmp_labels(self, labels: &Labels) -> std::cmp::Ordering {
        match self {
            SeriesKey::Set(l) => l.cmp(labels),
            SeriesKey::Pairs(b, id) => b
                .label_pairs(id)
                .cmp(labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
        }
    }

    fn cmp(self, other: SeriesKey<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (_, SeriesKey::Set(l)) => self.cmp_labels(l),
            (SeriesKey::Set(l), _) => other.cmp_labels(l).reverse(),
            (SeriesKey::Pairs(a, i), SeriesKey::Pairs(b, j)) => {
                a.label_pairs(i).cmp(b.label_pairs(j))
            }
        }
    }
}

/// Re-exported for the admin API and tests.
pub type BlockInfo = BlockMeta;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::STALE_NAN;

    #[test]
    fn grouping_by_series_is_stable() {
        // Series 7 has three samples, two at the same timestamp with
        // different values: WAL order must survive the grouping.
        let list = vec![
            (7, 30, 1),
            (2, 10, 2),
            (7, 10, 3),
            (0, 5, 4),
            (2, 20, 5),
            (7, 10, 6),
        ];
        let (mut counts, mut out) = (Vec::new(), Vec::new());
        group_by_series(&list, &mut counts, &mut out);
        assert_eq!(
            out,
            vec![
                (0, 5, 4),
                (2, 10, 2),
                (2, 20, 5),
                (7, 30, 1),
                (7, 10, 3),
                (7, 10, 6)
            ]
        );
        // Scratch space is reused: a second, smaller batch.
        group_by_series(&[(1, 1, 1), (0, 2, 2)], &mut counts, &mut out);
        assert_eq!(out, vec![(0, 2, 2), (1, 1, 1)]);
    }

    /// The start of the 2 h block window `hours` or more ago: data from
    /// there stays in one window, whatever the time of day the test runs.
    fn window_start_hours_ago(hours: i64) -> i64 {
        let w = 2 * 3_600_000;
        (now_ms() - hours * 3_600_000).div_euclid(w) * w
    }

    /// A database in `dir` without background work, its options adjusted
    /// by `tune`.
    fn foreground_db(dir: &Path, tune: impl FnOnce(&mut Options)) -> Arc<Db> {
        let mut o = Options::new(dir);
        o.background = false;
        tune(&mut o);
        Db::open(o, &mut prometheus_client::registry::Registry::default()).unwrap()
    }

    /// A database without background work that checkpoints after any WAL.
    fn checkpointing_db(dir: &Path) -> Arc<Db> {
        foreground_db(dir, |o| o.checkpoint_wal_bytes = 1)
    }

    /// Appends `up` = 1 at `t`, durably.
    fn append_up(db: &Arc<Db>, t: i64) {
        let batch = WriteBatch {
            series: vec![crate::sample::SeriesSamples::new(
                Labels::new(&[("__name__", "up")]),
                vec![Sample::new(t, 1.0)],
            )],
            metadata: vec![],
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
    }

    /// Appends `up{job="v"}` samples `(t, v)`, durably.
    fn append_samples(db: &Arc<Db>, samples: Vec<Sample>) {
        let batch = WriteBatch {
            series: vec![crate::sample::SeriesSamples::new(
                Labels::new(&[("__name__", "up"), ("job", "v")]),
                samples,
            )],
            metadata: vec![],
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
    }

    /// What `visit_samples` hands over: the slices joined, the slices that
    /// came with a summary (first time and length; each summary checked
    /// against its slice, and its continuity too), and how many samples
    /// came without one.
    fn visit(
        q: &Querier,
        e: &SeriesEntry,
        mint: i64,
        maxt: i64,
        with_summaries: bool,
    ) -> (bool, Vec<Sample>, Vec<(i64, usize)>, usize) {
        let (mut all, mut summarised, mut bare) = (Vec::new(), Vec::new(), 0);
        let in_order = q
            .visit_samples(e, mint, maxt, with_summaries, &mut |s, summary, c| {
                assert_holds(c, s);
                if let Some(summary) = summary {
                    assert_eq!(summary, RunSummary::of(s), "from {}", s[0].t);
                    summarised.push((s[0].t, s.len()));
                } else {
                    bare += s.len();
                }
                all.extend_from_slice(s);
            })
            .unwrap();
        (in_order, all, summarised, bare)
    }

    /// `c` is true of slice `s`: no wider gap, no stale marker if none.
    fn assert_holds(c: Continuity, s: &[Sample]) {
        let exact = Continuity::of(s);
        assert!(exact.max_gap <= c.max_gap, "{c:?} for {exact:?}");
        assert!(c.stale || !exact.stale, "{c:?} for {exact:?}");
    }

    /// Each page of a block bounds the gaps within its series runs and
    /// says whether it holds a stale marker; the head's samples come with
    /// nothing known.
    #[test]
    fn block_pages_bound_their_gaps_and_stale_markers() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        // At the start of a block's window (2 h): the data below lies in
        // one, whatever the clock.
        let t0 = (now_ms() - 3 * 3_600_000).div_euclid(7_200_000) * 7_200_000;
        let write = |job: &str, samples: Vec<Sample>| {
            let batch = WriteBatch {
                series: vec![crate::sample::SeriesSamples::new(
                    Labels::new(&[("__name__", "up"), ("job", job)]),
                    samples,
                )],
                metadata: vec![],
            };
            db.append(&batch).unwrap().wait_blocking().unwrap();
            db.cut_head().unwrap();
        };
        // Each series in blocks of its own: `a` every 100 ms, `b` the
        // same with a gap of 5.1 s and a stale marker.
        write(
            "a",
            (0..6_000).map(|i| Sample::new(t0 + i * 100, 1.0)).collect(),
        );
        let b0 = t0 + 700_000;
        let b: Vec<Sample> = (0..3_000)
            .map(|i| {
                let t = b0 + i * 100 + if i >= 1_000 { 5_000 } else { 0 };
                let v = if i == 2_000 {
                    f64::from_bits(STALE_NAN)
                } else {
                    2.0
                };
                Sample::new(t, v)
            })
            .collect();
        write("b", b.clone());
        append_samples(&db, vec![Sample::new(now_ms(), 3.0)]);
        let q = db.querier(i64::MIN, i64::MAX);
        let seen = |job: &str| {
            let e = q.select(&[Matcher::equal("job", job)]).unwrap();
            let (mut samples, mut seen) = (Vec::new(), Vec::new());
            let in_order = q
                .visit_samples(&e[0], i64::MIN, i64::MAX, false, &mut |s, _, c| {
                    assert_holds(c, s);
                    samples.extend_from_slice(s);
                    seen.push((s.to_vec(), c));
                })
                .unwrap();
            assert!(in_order);
            (samples, seen)
        };
        // Read whole, each slice is a page of one series: what the page
        // knows is exactly its slice's widest gap and stale markers.
        let exact = Continuity::of;
        let even = Continuity {
            max_gap: 100,
            stale: false,
        };
        let (a_samples, a_seen) = seen("a");
        assert_eq!(a_samples.len(), 6_000);
        assert!(a_seen.iter().all(|(_, c)| *c == even), "{a_seen:?}");
        let (b_samples, b_seen) = seen("b");
        assert_eq!(b_samples.len(), b.len());
        for (s, c) in &b_seen {
            assert_eq!(*c, exact(s), "b from {}", s[0].t);
        }
        assert!(b_seen.iter().any(|(_, c)| c.max_gap == 5_100));
        assert!(b_seen.iter().any(|(_, c)| c.stale));
        // `v`: one sample, in the head.
        let (_, v_seen) = seen("v");
        assert_eq!(v_seen.len(), 1);
        assert_eq!(v_seen[0].1, Continuity::UNKNOWN);
        assert!(!Continuity::UNKNOWN.unbroken(i64::MAX));
        assert!(even.unbroken(100) && !even.unbroken(99));
        assert!(!exact(&b).unbroken(i64::MAX));
    }

    /// Blocks without a set of their own for a series end a merge holding
    /// the set the merge took (the head's, when it holds the series too);
    /// blocks with one keep it. Merges that compare those sets find what
    /// the first, comparing encoded pairs, found.
    #[test]
    fn merged_series_share_one_label_set_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        let t0 = window_start_hours_ago(8);
        let write = |jobs: &[&str], t: i64| {
            let batch = WriteBatch {
                series: jobs
                    .iter()
                    .map(|job| {
                        crate::sample::SeriesSamples::new(
                            Labels::new(&[("__name__", "up"), ("job", job)]),
                            vec![Sample::new(t, 1.0)],
                        )
                    })
                    .collect(),
                metadata: vec![],
            };
            db.append(&batch).unwrap().wait_blocking().unwrap();
        };
        // Blocks of three windows; `b` in all of them and the head, `a`
        // and `c` in some.
        write(&["a", "b"], t0);
        db.cut_head().unwrap();
        write(&["b", "c"], t0 + 2 * 3_600_000);
        db.cut_head().unwrap();
        write(&["a", "b", "c"], t0 + 4 * 3_600_000);
        db.cut_head().unwrap();
        write(&["b"], now_ms());
        let q = db.querier(i64::MIN, i64::MAX);
        assert_eq!(q.blocks.len(), 3);
        // Sets cached beforehand in later blocks: the first merge compares
        // them with earlier blocks' pairs, `b` in block 1 with `a` in
        // block 0 (greater) and `c` in block 2 with `c` in block 1
        // (equal); those blocks keep their own sets.
        let b_own = q.blocks[1].labels(0);
        let c_own = q.blocks[2].labels(2);
        let all = [Matcher::equal("__name__", "up")];
        let first = q.select(&all).unwrap();
        // Each series' job and sources: `block:id`, or `head`.
        let jobs = |e: &[SeriesEntry]| -> Vec<String> {
            e.iter()
                .map(|e| {
                    let sources: Vec<String> = e
                        .sources
                        .iter()
                        .map(|s| match *s {
                            Source::Block(bi, id) => format!("{bi}:{id}"),
                            Source::Head(_) => "head".to_owned(),
                        })
                        .collect();
                    format!("{} {}", e.labels.get("job").unwrap(), sources.join(" "))
                })
                .collect()
        };
        let want = ["a 0:0 2:0", "b 0:1 1:0 2:1 head", "c 1:1 2:2"];
        assert_eq!(jobs(&first), want);
        let set = |bi: usize, id: u32| q.blocks[bi].cached_labels(id).unwrap().as_slice().as_ptr();
        let head_b = first[1].labels.as_slice().as_ptr();
        assert_eq!(set(0, 1), head_b);
        assert_eq!(set(2, 1), head_b);
        assert_eq!(set(1, 0), b_own.as_slice().as_ptr());
        assert_ne!(set(1, 0), head_b);
        assert_eq!(set(0, 0), set(2, 0));
        assert_eq!(set(2, 2), c_own.as_slice().as_ptr());
        assert_ne!(set(1, 1), set(2, 2));
        assert_eq!(q.blocks[1].cached_labels(1), Some(&c_own));
        assert_eq!(jobs(&q.select(&all).unwrap()), want);
        // One series alone: the merge skips the others' runs.
        let b = q.select(&[Matcher::equal("job", "c")]).unwrap();
        assert_eq!(jobs(&b), want[2..]);
    }

    #[test]
    fn visited_samples_are_the_read_samples_with_summaries_of_runs_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        // Three pages' worth in a block (4,096 rows a page), then the head.
        let t0 = window_start_hours_ago(4);
        let at = |i: i64| Sample::new(t0 + i * 100, (i % 7) as f64);
        append_samples(&db, (0..10_000).map(at).collect());
        db.cut_head().unwrap();
        append_samples(&db, (10_000..10_100).map(at).collect());
        let q = db.querier(i64::MIN, i64::MAX);
        let e = q.select(&[Matcher::equal("job", "v")]).unwrap();
        for (mint, maxt) in [
            (i64::MIN, i64::MAX),
            (t0 + 50, t0 + 9_999 * 100),
            (t0 + 500_000, t0 + 1_005_000),
        ] {
            let mut read = Vec::new();
            q.samples(&e[0], mint, maxt, &mut read).unwrap();
            let (in_order, visited, summarised, bare) = visit(&q, &e[0], mint, maxt, true);
            let summaries = summarised.len();
            assert!(in_order);
            assert_eq!(visited, read);
            // Whole runs come with their summary, and runs the window
            // cuts with their chunks' (256 rows): at most a chunk at
            // either end of the two pages cut, and the head, come bare.
            assert!(summaries >= 3, "{summaries} summaries");
            assert!(bare <= 4 * 256 + 100, "{bare} samples without a summary");
            // Without summaries asked for: the same slices, no summary.
            let bare = read.len();
            assert_eq!(
                visit(&q, &e[0], mint, maxt, false),
                (true, read, vec![], bare)
            );
        }
        // A backfilled sample inside the block's time: the head and the
        // block overlap, which the visit reports; a read still merges.
        append_samples(&db, vec![Sample::new(t0 + 150, 42.0)]);
        let q = db.querier(i64::MIN, i64::MAX);
        let e = q.select(&[Matcher::equal("job", "v")]).unwrap();
        let (in_order, ..) = visit(&q, &e[0], i64::MIN, i64::MAX, true);
        assert!(!in_order);
        let mut read = Vec::new();
        q.samples(&e[0], i64::MIN, i64::MAX, &mut read).unwrap();
        assert_eq!(read.len(), 10_101);
        assert!(read.windows(2).all(|w| w[0].t < w[1].t));
    }

    /// A run that starts inside a page (after another series') and that
    /// the window cuts at both ends comes in chunks of 256 rows counted
    /// from the run's start: each whole chunk in the window with its own
    /// summary, the ragged ends without.
    #[test]
    fn runs_cut_by_the_window_come_in_summarised_chunks_from_the_runs_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        let t0 = window_start_hours_ago(4);
        let at = |i: i64| Sample::new(t0 + i * 100, (i % 7) as f64 + 0.5);
        let batch = WriteBatch {
            series: ["a", "b"]
                .iter()
                .zip([100, 3_000])
                .map(|(job, n)| {
                    crate::sample::SeriesSamples::new(
                        Labels::new(&[("__name__", "up"), ("job", job)]),
                        (0..n).map(at).collect(),
                    )
                })
                .collect(),
            metadata: vec![],
        };
        db.append(&batch).unwrap().wait_blocking().unwrap();
        db.cut_head().unwrap();
        let q = db.querier(i64::MIN, i64::MAX);
        let b = q.select(&[Matcher::equal("job", "b")]).unwrap();
        // The read that decodes a page gets no summaries: it folds the
        // samples once anyway. Reads that find the pages decoded do.
        let (in_order, seen, summarised, _) = visit(&q, &b[0], i64::MIN, i64::MAX, true);
        assert!(in_order);
        assert_eq!(seen.len(), 3_000);
        assert!(summarised.is_empty(), "{summarised:?}");
        for (first, last) in [
            (501, 2_700),
            (0, 2_999),
            (256, 511),
            (300, 400),
            (10, 2_990),
        ] {
            let (mint, maxt) = (t0 + first * 100, t0 + last * 100);
            let (in_order, seen, summarised, bare) = visit(&q, &b[0], mint, maxt, true);
            assert!(in_order);
            let chunks: Vec<(i64, usize)> = summarised
                .into_iter()
                .map(|(t, len)| ((t - t0) / 100, len))
                .collect();
            let want: Vec<Sample> = (first..=last).map(at).collect();
            assert_eq!(seen, want, "window {first}..={last}");
            if (first, last) == (0, 2_999) {
                assert_eq!(chunks, [(0, 3_000)], "the whole run, one summary");
                continue;
            }
            for &(index, len) in &chunks {
                assert_eq!(index % 256, 0, "a chunk starts on the run's grid");
                assert!(len == 256 || index + len as i64 == 3_000, "a whole chunk");
            }
            let whole = ((first + 255) / 256..(last + 1) / 256).count();
            assert_eq!(chunks.len(), whole, "window {first}..={last}: {chunks:?}");
            assert!(bare < 2 * 256, "window {first}..={last}: {bare} bare");
        }
    }

    #[test]
    fn a_second_open_of_a_data_directory_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        append_up(&db, 1_000);
        let second = Db::open(
            Options::new(dir.path()),
            &mut prometheus_client::registry::Registry::default(),
        );
        match second {
            Err(Error::Locked(path)) => assert_eq!(path, dir.path()),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a second Db opened a directory in use"),
        }
        // The refused open touched nothing: the first still writes.
        append_up(&db, 2_000);
        db.close().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        let q = db.querier(i64::MIN, i64::MAX);
        let e = q.select(&[Matcher::equal("__name__", "up")]).unwrap();
        let mut read = Vec::new();
        q.samples(&e[0], i64::MIN, i64::MAX, &mut read).unwrap();
        assert_eq!(read.iter().map(|s| s.t).collect::<Vec<_>>(), [1_000, 2_000]);
    }

    #[test]
    fn wal_written_while_a_cut_runs_counts_toward_the_next_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = checkpointing_db(dir.path());
        let t = now_ms() - 60_000;
        append_up(&db, t);
        // A reader of the pre-cut view holds the cut before it publishes;
        // meanwhile an append goes to the head the cut leaves.
        let reader = db.querier(i64::MIN, i64::MAX);
        let cut = {
            let db = Arc::clone(&db);
            std::thread::spawn(move || db.cut_head().unwrap())
        };
        while db.cut_lock.try_lock().is_some() || db.frozen_gen.load(Ordering::Acquire) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        append_up(&db, t + 15_000);
        drop(reader);
        assert!(cut.join().unwrap().is_some());
        // That append's WAL is all a replay reads: a checkpoint is due.
        assert!(db.checkpoint_due(db.wal_bytes_total()));
    }

    #[test]
    fn checkpoints_are_spaced_by_their_size_between_the_floor_and_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let db = foreground_db(dir.path(), |_| {});
        let mib = 1u64 << 20;
        let after = |size: u64, mark: u64| {
            db.checkpoint_size.store(size, Ordering::Relaxed);
            db.checkpoint_mark.store(mark, Ordering::Relaxed);
            // The first total at which a checkpoint is due.
            let (mut lo, mut hi) = (mark, mark + 1024 * mib);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if db.checkpoint_due(mid) {
                    hi = mid
                } else {
                    lo = mid + 1
                }
            }
            lo - mark
        };
        assert_eq!(after(0, 0), CHECKPOINT_MIN_WAL_BYTES);
        assert_eq!(after(mib, 5 * mib), CHECKPOINT_MIN_WAL_BYTES);
        assert_eq!(after(40 * mib, 7 * mib), 40 * mib);
        assert_eq!(after(900 * mib, 0), DEFAULT_CHECKPOINT_WAL_BYTES);
    }

    /// `maintain` itself writes a due checkpoint (it used to be left to
    /// the background loop after `maintain`, i.e. after compacting); that
    /// it comes before the compaction is the order of `maintain`'s code,
    /// which this does not see.
    #[test]
    fn a_maintenance_round_writes_a_due_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let db = checkpointing_db(dir.path());
        append_up(&db, now_ms() - 1000);
        assert!(db.checkpoint_due(db.wal_bytes_total()));
        // No cut is due (the head spans a second), no blocks to compact:
        // the round's work is the checkpoint.
        db.maintain().unwrap();
        assert!(!db.checkpoint_due(db.wal_bytes_total()));
        assert!(db.head_time_range().is_some());
        let wal = dir.path().join("wal");
        let checkpoints = fs::read_dir(&wal)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("checkpoint.")
            })
            .count();
        assert_eq!(checkpoints, 1, "{}", wal.display());
    }

    #[test]
    fn appends_by_reference_check_like_appends_by_labels_and_survive_replay() {
        use crate::sample::SeriesSamples;
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            foreground_db(dir.path(), |o| {
                o.retention = Some(Duration::from_secs(3600))
            })
        };
        let db = open();
        let t = now_ms() - 1000;
        let labels = Labels::new(&[("__name__", "up"), ("job", "a")]);
        let batch = WriteBatch {
            series: vec![
                SeriesSamples::new(labels.clone(), vec![Sample::new(t, 1.0)]),
                SeriesSamples::new(Labels::new(&[("__name__", "empty")]), vec![]),
            ],
            metadata: vec![],
        };
        let ticket = db.append(&batch).unwrap();
        assert_eq!(ticket.summary().refs.len(), 2);
        assert!(ticket.summary().refs[1].is_none(), "no samples, no series");
        let r = ticket.summary().refs[0].expect("a reference");
        ticket.wait_blocking().unwrap();
        let empty = WriteBatch::default();
        // The same checks as by labels, and errors name the labels.
        let old = [(r, vec![Sample::new(t - 7_200_000, 1.0)])];
        match db.append_with_refs(&empty, &old) {
            Err(AppendError::TooOld { labels: l, .. }) => assert_eq!(l, labels),
            other => panic!("{:?}", other.err()),
        }
        let conflict = [(r, vec![Sample::new(t, 2.0)])];
        match db.append_with_refs(&empty, &conflict) {
            Err(AppendError::Duplicate { labels: l, .. }) => assert_eq!(l, labels),
            other => panic!("{:?}", other.err()),
        }
        let stale = [(SeriesRef::new(9_999).unwrap(), vec![Sample::new(t, 2.0)])];
        assert!(matches!(
            db.append_with_refs(&empty, &stale),
            Err(AppendError::StaleSeriesRef { id: 9_999 })
        ));
        let more = [(r, vec![Sample::new(t + 1, 2.0)])];
        db.append_with_refs(&empty, &more)
            .unwrap()
            .wait_blocking()
            .unwrap();
        // Samples appended by reference are in the WAL like any others.
        db.close().unwrap();
        drop(db);
        let db = open();
        let q = db.querier(i64::MIN, i64::MAX);
        let e = q.select(&[Matcher::equal("job", "a")]).unwrap();
        let mut out = Vec::new();
        q.samples(&e[0], i64::MIN, i64::MAX, &mut out).unwrap();
        assert_eq!(out, vec![Sample::new(t, 1.0), Sample::new(t + 1, 2.0)]);
    }
}
