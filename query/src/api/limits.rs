//! Query admission and execution limits: a semaphore of query slots
//! (`--query.max-concurrency`; excess queries wait, bounded by the query's
//! deadline and `max_queue_wait`, then get 503), the deadline
//! (`--query.timeout`, lowered by the `timeout` parameter), and running
//! the evaluator on Tokio's blocking pool so the async workers keep serving
//! ingest ([`Slots::run`]), or, for queries expected to be cheap, on the
//! worker thread itself, handing its other tasks to another thread
//! ([`Slots::run_inline`]: no thread hand-off on the query's path). PromQL
//! queries choose by their estimated size once their series are selected
//! ([`Slots::run_prepared`]). The evaluator itself enforces `max_samples` /
//! `max_series` and checks the deadline and the cancel flag; the handler
//! also stops waiting at the deadline and raises the flag, and raises it
//! when the client goes away (the handler future is dropped; a query
//! evaluated on the worker thread is small enough to finish instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::eval::{EvalError, PreparedQuery, QueryOptions, QueryOutput};

/// Settings of the query limits that are not the evaluator's.
#[derive(Debug, Clone)]
pub struct ConcurrencyOptions {
    /// Queries evaluated at once (`--query.max-concurrency`, 20).
    pub max_concurrency: usize,
    /// Longest a query waits for a slot, within its own deadline.
    pub max_queue_wait: Duration,
}

impl Default for ConcurrencyOptions {
    fn default() -> Self {
        ConcurrencyOptions {
            max_concurrency: 20,
            max_queue_wait: Duration::from_secs(30),
        }
    }
}

/// The query slots.
pub struct Slots {
    semaphore: Arc<Semaphore>,
    opts: ConcurrencyOptions,
}

/// Timings of one query, for `stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub queue: Duration,
    pub eval: Duration,
}

/// Raises the cancel flag when dropped before [`CancelOnDrop::disarm`]:
/// a client that hangs up drops the handler future, and the evaluator on
/// the blocking pool then stops at its next check.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Extra time given to the evaluator past the deadline to notice it and
/// report where it stopped, before the handler answers on its own.
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

impl Slots {
    pub fn new(opts: ConcurrencyOptions) -> Slots {
        Slots {
            semaphore: Arc::new(Semaphore::new(opts.max_concurrency.max(1))),
            opts,
        }
    }

    /// Queries that may run at once.
    pub fn capacity(&self) -> usize {
        self.opts.max_concurrency.max(1)
    }

    /// Waits for a slot at most `timeout` (the query's deadline) and
    /// `max_queue_wait`.
    async fn acquire(&self, timeout: Duration) -> Result<OwnedSemaphorePermit, ApiError> {
        let wait = timeout.min(self.opts.max_queue_wait);
        match tokio::time::timeout(wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) => Err(ApiError::Internal("the query semaphore was closed".into())),
            Err(_) => Err(ApiError::QueueFull {
                max_concurrency: self.capacity(),
                waited_ms: wait.as_millis() as i64,
            }),
        }
    }

    /// Runs `eval` on the blocking pool once a slot is free, with the
    /// deadline `timeout` from now (queueing included). `opts.engine.timeout`
    /// is set to what is left of it and `opts.cancel` to a fresh flag.
    pub async fn run<F>(
        &self,
        timeout: Duration,
        opts: QueryOptions,
        eval: F,
    ) -> Result<(QueryOutput, Timings), ApiError>
    where
        F: FnOnce(&QueryOptions) -> Result<QueryOutput, EvalError> + Send + 'static,
    {
        self.execute(timeout, opts, false, eval).await
    }

    /// Like [`Slots::run`], but evaluates on the calling worker thread
    /// (Tokio's `block_in_place`, which moves the worker's other tasks to
    /// another thread) when the runtime has several: no hand-off to the
    /// blocking pool and back, each of which waits for a thread to be
    /// scheduled. For queries the caller expects to be cheap: the deadline
    /// is then enforced by the evaluator alone, and a client that hangs up
    /// no longer cancels the evaluation. On a current-thread runtime this
    /// is [`Slots::run`].
    pub async fn run_inline<F>(
        &self,
        timeout: Duration,
        opts: QueryOptions,
        eval: F,
    ) -> Result<(QueryOutput, Timings), ApiError>
    where
        F: FnOnce(&QueryOptions) -> Result<QueryOutput, EvalError> + Send + 'static,
    {
        self.execute(timeout, opts, true, eval).await
    }

    /// Prepares a query ([`crate::eval::prepare`]: its checks and series
    /// selection) on the calling worker thread, then evaluates it there if
    /// its estimated size ([`PreparedQuery::cost`]) is at most
    /// [`INLINE_COST`], as [`Slots::run_inline`] does, and on the blocking
    /// pool otherwise, as [`Slots::run`] does, where a client that hangs
    /// up cancels it. Small dashboard queries so never wait for a thread
    /// hand-off (on a busy machine each can cost a scheduler tick), and
    /// large ones stay cancellable. On a current-thread runtime all of it
    /// runs on the pool.
    pub async fn run_prepared<P>(
        &self,
        timeout: Duration,
        opts: QueryOptions,
        prepare: P,
    ) -> Result<(QueryOutput, Timings), ApiError>
    where
        P: FnOnce(&QueryOptions) -> Result<PreparedQuery, EvalError> + Send + 'static,
    {
        let (permit, opts, flag, t) = self.admit(timeout, opts).await?;
        if !multi_thread() {
            let eval = move |o: &QueryOptions| prepare(o)?.run(o);
            return Self::on_pool(permit, opts, flag, t, Instant::now(), eval).await;
        }
        let started = Instant::now();
        // Selecting series is quick next to evaluating them: done right
        // here, without handing the worker's other tasks away.
        let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare(&opts)));
        let prepared = match prepared {
            Err(_) => return Err(panicked()),
            Ok(Err(e)) => return finish(Err(e), t.queued, t.timeout_ms),
            Ok(Ok(p)) => p,
        };
        let cost = prepared.cost();
        if cost <= INLINE_COST {
            let run =
                || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepared.run(&opts)));
            // `block_in_place` wakes a thread to take over the worker's
            // other tasks: worth it only past a millisecond or so.
            let out = if cost <= BLOCKING_COST {
                run()
            } else {
                tokio::task::block_in_place(run)
            };
            drop(permit);
            return match out {
                Err(_) => Err(panicked()),
                Ok(out) => finish(out.map(|o| (o, started.elapsed())), t.queued, t.timeout_ms),
            };
        }
        let eval = move |o: &QueryOptions| prepared.run(o);
        Self::on_pool(permit, opts, flag, t, started, eval).await
    }

    /// Waits for a slot (see [`Slots::acquire`]) and sets the options'
    /// timeout to what is left of the deadline and a fresh cancel flag.
    async fn admit(
        &self,
        timeout: Duration,
        mut opts: QueryOptions,
    ) -> Result<
        (
            OwnedSemaphorePermit,
            QueryOptions,
            Arc<AtomicBool>,
            Admitted,
        ),
        ApiError,
    > {
        let started = Instant::now();
        let deadline = started + timeout;
        let timeout_ms = timeout.as_millis() as i64;
        let permit = self.acquire(timeout).await?;
        let queued = started.elapsed();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ApiError::QueryTimeout {
                stage: "query queue",
                timeout_ms,
            });
        }
        let flag = Arc::new(AtomicBool::new(false));
        opts.engine.timeout = remaining;
        opts.cancel = Some(flag.clone());
        let t = Admitted {
            queued,
            remaining,
            timeout_ms,
        };
        Ok((permit, opts, flag, t))
    }

    async fn execute<F>(
        &self,
        timeout: Duration,
        opts: QueryOptions,
        inline: bool,
        eval: F,
    ) -> Result<(QueryOutput, Timings), ApiError>
    where
        F: FnOnce(&QueryOptions) -> Result<QueryOutput, EvalError> + Send + 'static,
    {
        let (permit, opts, flag, t) = self.admit(timeout, opts).await?;
        if inline && multi_thread() {
            // A panicking evaluation fails the query, as on the pool.
            let out = tokio::task::block_in_place(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| timed(eval, &opts)))
            });
            drop(permit);
            return match out {
                Err(_) => Err(panicked()),
                Ok(out) => finish(out, t.queued, t.timeout_ms),
            };
        }
        Self::on_pool(permit, opts, flag, t, Instant::now(), eval).await
    }

    /// Evaluates on the blocking pool; the handler stops waiting at the
    /// deadline, and raises the cancel flag then or when it is dropped.
    /// `started` is when the evaluation's time began (before any
    /// preparation on the caller's thread).
    async fn on_pool<F>(
        permit: OwnedSemaphorePermit,
        opts: QueryOptions,
        flag: Arc<AtomicBool>,
        t: Admitted,
        started: Instant,
        eval: F,
    ) -> Result<(QueryOutput, Timings), ApiError>
    where
        F: FnOnce(&QueryOptions) -> Result<QueryOutput, EvalError> + Send + 'static,
    {
        let Admitted {
            queued,
            remaining,
            timeout_ms,
        } = t;
        let guard = CancelOnDrop {
            flag: flag.clone(),
            armed: true,
        };
        let task = tokio::task::spawn_blocking(move || {
            // The slot stays taken until the evaluation really stops.
            let _permit = permit;
            eval(&opts).map(|out| (out, started.elapsed()))
        });
        let joined = tokio::time::timeout(remaining + DEADLINE_GRACE, task).await;
        let result = match joined {
            Err(_) => {
                flag.store(true, Ordering::Relaxed);
                guard.disarm();
                return Err(ApiError::QueryTimeout {
                    stage: "expression evaluation",
                    timeout_ms,
                });
            }
            Ok(Err(e)) => Err(ApiError::Internal(format!("query task failed: {e}"))),
            Ok(Ok(out)) => finish(out, queued, timeout_ms),
        };
        guard.disarm();
        result
    }
}

/// What [`Slots::admit`] found: time spent waiting for the slot, time
/// left until the deadline, and the deadline as configured.
#[derive(Clone, Copy)]
struct Admitted {
    queued: Duration,
    remaining: Duration,
    timeout_ms: i64,
}

/// Most estimated work ([`PreparedQuery::cost`]) of a query that
/// [`Slots::run_prepared`] evaluates on the worker thread: about 2 ms of
/// evaluation at 10 ns a unit (a 6 h panel of 100 series at a 60 s step
/// is 200,000 units).
pub const INLINE_COST: u64 = 200_000;

/// Most estimated work of a query that [`Slots::run_prepared`] evaluates
/// on the worker thread without `block_in_place` (about 1 ms): the
/// worker's other tasks wait that long, or are stolen by an idle worker.
pub const BLOCKING_COST: u64 = 100_000;

/// Is the current runtime multi-threaded (so that `block_in_place` can
/// hand the worker's other tasks to another thread)?
fn multi_thread() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}

fn panicked() -> ApiError {
    ApiError::Internal("query task failed: the evaluation panicked".into())
}

/// Runs the evaluation and measures it.
fn timed<F>(eval: F, opts: &QueryOptions) -> Result<(QueryOutput, Duration), EvalError>
where
    F: FnOnce(&QueryOptions) -> Result<QueryOutput, EvalError>,
{
    let started = Instant::now();
    eval(opts).map(|out| (out, started.elapsed()))
}

/// The answer for an evaluation that ran to its end, inline or on the
/// pool: the evaluator's own timeout names the configured limit.
fn finish(
    out: Result<(QueryOutput, Duration), EvalError>,
    queued: Duration,
    timeout_ms: i64,
) -> Result<(QueryOutput, Timings), ApiError> {
    match out {
        Err(EvalError::Timeout { stage, .. }) => Err(ApiError::QueryTimeout { stage, timeout_ms }),
        Err(e) => Err(ApiError::Eval(e)),
        Ok((out, eval)) => Ok((
            out,
            Timings {
                queue: queued,
                eval,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Value;

    fn output() -> QueryOutput {
        QueryOutput {
            value: Value::Scalar(0, 1.0),
            warnings: Vec::new(),
            infos: Vec::new(),
            stats: Default::default(),
        }
    }

    #[tokio::test]
    async fn excess_queries_wait_then_get_503() {
        let slots = Arc::new(Slots::new(ConcurrencyOptions {
            max_concurrency: 1,
            max_queue_wait: Duration::from_millis(100),
        }));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .run(
                        Duration::from_secs(10),
                        QueryOptions::default(),
                        move |_| {
                            let _ = release_rx.recv();
                            Ok(output())
                        },
                    )
                    .await
            })
        };
        // Let the first query take the only slot.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = slots
            .run(Duration::from_secs(10), QueryOptions::default(), |_| {
                Ok(output())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::QueueFull {
                    max_concurrency: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.error_type().status().as_u16(), 503);
        assert!(err.to_string().contains("max_concurrency=1"), "{err}");
        release_tx.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        // The slot is free again.
        let (out, t) = slots
            .run(Duration::from_secs(10), QueryOptions::default(), |_| {
                Ok(output())
            })
            .await
            .unwrap();
        assert_eq!(out.value, Value::Scalar(0, 1.0));
        assert!(t.queue < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn the_deadline_cancels_a_stuck_evaluation() {
        let slots = Slots::new(ConcurrencyOptions::default());
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let err = slots
            .run(
                Duration::from_millis(50),
                QueryOptions::default(),
                move |o| {
                    let flag = o.cancel.clone().unwrap();
                    assert!(o.engine.timeout <= Duration::from_millis(50));
                    // An evaluation that only stops when cancelled.
                    while !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    seen_tx.send(()).unwrap();
                    Err(EvalError::Canceled { stage: "test" })
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::QueryTimeout { timeout_ms: 50, .. }),
            "{err}"
        );
        assert_eq!(err.error_type().as_str(), "timeout");
        seen_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the evaluation saw the cancel flag");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inline_queries_run_on_the_calling_worker() {
        let slots = Slots::new(ConcurrencyOptions::default());
        let caller = std::thread::current().id();
        let (out, t) = slots
            .run_inline(Duration::from_secs(10), QueryOptions::default(), move |o| {
                assert_eq!(std::thread::current().id(), caller);
                assert!(o.cancel.is_some());
                assert!(o.engine.timeout <= Duration::from_secs(10));
                Ok(output())
            })
            .await
            .unwrap();
        assert_eq!(out.value, Value::Scalar(0, 1.0));
        assert!(t.queue < Duration::from_secs(1));
        let err = slots
            .run_inline(Duration::from_secs(2), QueryOptions::default(), |o| {
                Err(EvalError::Timeout {
                    stage: "expression evaluation",
                    limit: o.engine.timeout,
                })
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "query timed out in expression evaluation (limit timeout=2s)"
        );
        let err = slots
            .run_inline(Duration::from_secs(2), QueryOptions::default(), |_| {
                Err(EvalError::BadData("bad".into()))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Eval(EvalError::BadData(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn inline_queries_use_the_blocking_pool_on_a_current_thread_runtime() {
        let slots = Slots::new(ConcurrencyOptions::default());
        let caller = std::thread::current().id();
        let (out, _) = slots
            .run_inline(
                Duration::from_secs(10),
                QueryOptions::default(),
                move |_| {
                    assert_ne!(std::thread::current().id(), caller);
                    Ok(output())
                },
            )
            .await
            .unwrap();
        assert_eq!(out.value, Value::Scalar(0, 1.0));
    }

    #[tokio::test]
    async fn evaluator_timeouts_name_the_configured_limit() {
        let slots = Slots::new(ConcurrencyOptions::default());
        let err = slots
            .run(Duration::from_secs(2), QueryOptions::default(), |o| {
                Err(EvalError::Timeout {
                    stage: "expression evaluation",
                    limit: o.engine.timeout,
                })
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "query timed out in expression evaluation (limit timeout=2s)"
        );
    }
    fn counter_db() -> (tempfile::TempDir, Arc<engine::Db>) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = engine::Options::new(dir.path());
        o.background = false;
        let db =
            engine::Db::open(o, &mut prometheus_client::registry::Registry::default()).unwrap();
        let batch = engine::WriteBatch {
            series: vec![engine::SeriesSamples::new(
                engine::Labels::new(&[("__name__", "m")]),
                (0..=10)
                    .map(|i| engine::Sample::new(i * 10_000, i as f64))
                    .collect(),
            )],
            metadata: Vec::new(),
        };
        drop(db.append(&batch).unwrap());
        (dir, db)
    }

    /// Runs `query` at 100 s through `run_prepared`; returns the value of
    /// its one sample and whether it was prepared on the calling thread.
    async fn prepared(slots: &Slots, db: &Arc<engine::Db>, query: &str) -> (f64, bool) {
        let expr = crate::promql::parse(query).unwrap();
        let db = db.clone();
        let caller = std::thread::current().id();
        let here = Arc::new(AtomicBool::new(false));
        let seen = here.clone();
        let (out, _) = slots
            .run_prepared(Duration::from_secs(10), QueryOptions::default(), move |o| {
                seen.store(std::thread::current().id() == caller, Ordering::Relaxed);
                crate::eval::prepare(&db, expr, 100_000, 100_000, 0, o)
            })
            .await
            .unwrap();
        let Value::Vector(v) = out.value else {
            panic!("{:?}", out.value)
        };
        (v[0].v, here.load(Ordering::Relaxed))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prepared_queries_run_small_ones_here_and_large_ones_on_the_pool() {
        let (_d, db) = counter_db();
        let slots = Slots::new(ConcurrencyOptions::default());
        // Prepared on this worker, small: evaluated here too.
        assert_eq!(prepared(&slots, &db, "sum(m)").await, (10.0, true));
        // A subquery's size is unknown: evaluated on the pool, same answer.
        assert_eq!(
            prepared(&slots, &db, "sum(max_over_time(m[50s:10s]))").await,
            (10.0, true)
        );
        // Errors of the preparation are the query's.
        let err = slots
            .run_prepared(Duration::from_secs(1), QueryOptions::default(), |_| {
                Err(EvalError::BadData("bad".into()))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Eval(EvalError::BadData(_))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn prepared_queries_use_the_pool_on_a_current_thread_runtime() {
        let (_d, db) = counter_db();
        let slots = Slots::new(ConcurrencyOptions::default());
        assert_eq!(prepared(&slots, &db, "sum(m)").await, (10.0, false));
    }
}
