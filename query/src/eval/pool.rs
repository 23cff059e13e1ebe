//! Helper threads for [`super::evaluator::par_map`]: a pool started once
//! and kept, so that a query never waits for a thread to start, nor for a
//! helper that was not scheduled in time to finish (or even begin).
//!
//! A query offers its work to `n` helpers and goes on working itself; a
//! helper runs the work only if it picks up the offer before the query
//! closed it. The work borrows the query's stack, so the query may not
//! return (or unwind) while a helper runs it: [`Offer`]'s drop closes the
//! offer and waits for the helpers inside, and helpers that pick it up
//! later skip it. Work that is all done when a late helper wakes up costs
//! the query nothing.
//!
//! On Linux a helper is kept off the CPU of the thread that offers it work
//! ([`placement`]). Left to itself, the scheduler often wakes a helper on
//! the waker's CPU, where it preempts the query instead of running beside
//! it: on a two-core machine a gzip helper then ran its pieces on the
//! query's core while the other idled, and the work took as long as with
//! no helper at all.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

/// Set in [`Gate::state`] once the offer is closed.
const CLOSED: u64 = 1 << 63;

/// Who may still run an offer's work: the closed bit and the number of
/// helpers running it.
struct Gate {
    state: AtomicU64,
    /// The query's thread, woken by the last helper to leave.
    owner: Thread,
}

impl Gate {
    /// Enters unless the offer is closed.
    fn enter(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & CLOSED != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    fn leave(&self) {
        if self.state.fetch_sub(1, Ordering::AcqRel) == CLOSED | 1 {
            self.owner.unpark();
        }
    }

    /// Closes the offer and waits until no helper runs its work.
    fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        while self.state.load(Ordering::Acquire) & !CLOSED != 0 {
            std::thread::park();
        }
    }
}

/// One offer to one helper.
struct Task {
    gate: Arc<Gate>,
    /// The work, its lifetime erased: valid while the gate is open or a
    /// helper is inside (see [`Offer`]).
    work: *const (dyn Fn() + Sync + 'static),
}

// SAFETY: `work` points to a `Sync` closure, which any thread may call
// through a shared reference; it is only dereferenced under the gate
// protocol described on `Task::work`.
unsafe impl Send for Task {}

struct Pool {
    tx: Mutex<Sender<Task>>,
    rx: Arc<Mutex<Receiver<Task>>>,
    /// Helper threads started so far.
    threads: Mutex<usize>,
    /// Where helpers may run.
    placement: placement::Placement,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel();
        Pool {
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            threads: Mutex::new(0),
            placement: placement::Placement::new(),
        }
    })
}

fn helper(rx: Arc<Mutex<Receiver<Task>>>) {
    pool().placement.register();
    loop {
        let task = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        if task.gate.enter() {
            // SAFETY: the gate was open when this helper entered, so the
            // offer's owner is still inside `Offer`'s scope and waits in
            // `Gate::close` until this helper leaves: the closure and
            // everything it borrows are alive until then.
            let work = unsafe { &*task.work };
            // The work reports its own failures; a panic must not kill the
            // helper or skip `leave`.
            let _ = catch_unwind(AssertUnwindSafe(work));
            task.gate.leave();
        }
    }
}

/// An offer of `work` to helper threads; dropping it (also when
/// unwinding) waits until no helper runs the work any more.
struct Offer<'w> {
    gate: Arc<Gate>,
    _work: std::marker::PhantomData<&'w ()>,
}

/// Runs `body` while `helpers` pool threads may run `work` alongside;
/// returns once no helper runs `work` any more (also when `body` panics).
/// The offer lives only inside this call, so it can never be leaked with
/// helpers still holding `work`, which is what makes the lifetime erasure
/// in [`Offer::new`] sound.
pub(crate) fn with_helpers<R>(
    helpers: usize,
    work: &(dyn Fn() + Sync),
    body: impl FnOnce() -> R,
) -> R {
    let _offer = Offer::new(helpers, work);
    body()
}

impl<'w> Offer<'w> {
    /// Offers `work` to `helpers` pool threads (started as needed). Each
    /// helper that picks the offer up in time calls `work` once; it should
    /// return when there is nothing left to do.
    fn new(helpers: usize, work: &'w (dyn Fn() + Sync + 'w)) -> Offer<'w> {
        let gate = Arc::new(Gate {
            state: AtomicU64::new(0),
            owner: std::thread::current(),
        });
        let p = pool();
        if let Ok(mut started) = p.threads.lock() {
            while *started < helpers {
                let rx = p.rx.clone();
                let spawned = std::thread::Builder::new()
                    .name("silt-eval".into())
                    .spawn(move || helper(rx));
                if spawned.is_err() {
                    break;
                }
                *started += 1;
            }
        }
        p.placement.away_from_here();
        let ptr: *const (dyn Fn() + Sync + 'w) = work;
        // SAFETY: only the lifetime changes; `Offer::drop` keeps `work`'s
        // borrow alive until no helper can use the pointer (see `helper`).
        let ptr: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(ptr) };
        if let Ok(tx) = p.tx.lock() {
            for _ in 0..helpers {
                let task = Task {
                    gate: gate.clone(),
                    work: ptr,
                };
                if tx.send(task).is_err() {
                    break;
                }
            }
        }
        Offer {
            gate,
            _work: std::marker::PhantomData,
        }
    }
}

impl Drop for Offer<'_> {
    fn drop(&mut self) {
        self.gate.close();
    }
}

/// Keeps helpers off the CPU of the thread that offers them work.
#[cfg(target_os = "linux")]
mod placement {
    use std::sync::Mutex;

    /// The CPUs the process may use (when it started its pool), and each
    /// helper with the CPU its affinity now leaves out.
    pub(super) struct Placement {
        allowed: Option<libc::cpu_set_t>,
        helpers: Mutex<Vec<Helper>>,
    }

    struct Helper {
        tid: libc::pid_t,
        /// The CPU left out of its affinity, -1 for none.
        excluded: i32,
    }

    impl Placement {
        pub(super) fn new() -> Placement {
            // SAFETY: a zeroed cpu_set_t is an empty set, and
            // sched_getaffinity writes at most its size.
            let allowed = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let ok = libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) == 0;
                (ok && libc::CPU_COUNT(&set) >= 2).then_some(set)
            };
            Placement {
                allowed,
                helpers: Mutex::new(Vec::new()),
            }
        }

        /// Called by each helper thread as it starts.
        pub(super) fn register(&self) {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            if let Ok(mut h) = self.helpers.lock() {
                h.push(Helper { tid, excluded: -1 });
            }
        }

        /// Lets every helper run anywhere the process may, except on the
        /// calling thread's CPU. A helper already so placed costs nothing;
        /// one placed away from another CPU costs a system call.
        pub(super) fn away_from_here(&self) {
            let Some(allowed) = &self.allowed else {
                return;
            };
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            if cpu < 0 || cpu as usize >= libc::CPU_SETSIZE as usize {
                return;
            }
            // SAFETY: cpu is within the set's size.
            if !unsafe { libc::CPU_ISSET(cpu as usize, allowed) } {
                return;
            }
            let Ok(mut helpers) = self.helpers.lock() else {
                return;
            };
            let mut set = *allowed;
            // SAFETY: as above.
            unsafe { libc::CPU_CLR(cpu as usize, &mut set) };
            for h in helpers.iter_mut().filter(|h| h.excluded != cpu) {
                // SAFETY: set is a valid cpu_set_t of the size given; a
                // failure (the thread gone, the CPUs changed) leaves the
                // helper where it was.
                let ok =
                    unsafe { libc::sched_setaffinity(h.tid, std::mem::size_of_val(&set), &set) }
                        == 0;
                h.excluded = if ok { cpu } else { -1 };
            }
        }
    }
}

/// Elsewhere helpers go where the scheduler puts them.
#[cfg(not(target_os = "linux"))]
mod placement {
    pub(super) struct Placement;

    impl Placement {
        pub(super) fn new() -> Placement {
            Placement
        }

        pub(super) fn register(&self) {}

        pub(super) fn away_from_here(&self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    #[test]
    fn helpers_share_the_work_and_the_owner_waits_for_them() {
        let done = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        let work = || {
            while next.fetch_add(1, Ordering::Relaxed) < 200 {
                std::thread::sleep(Duration::from_micros(100));
                done.fetch_add(1, Ordering::Relaxed);
            }
        };
        {
            let _offer = Offer::new(3, &work);
            work();
        }
        // Dropping the offer waited for every helper inside.
        assert_eq!(done.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn a_closed_offer_is_skipped() {
        let runs = AtomicUsize::new(0);
        let work = || {
            runs.fetch_add(1, Ordering::Relaxed);
        };
        for _ in 0..50 {
            drop(Offer::new(2, &work));
        }
        // Offers closed at once run on a helper at most once each.
        assert!(runs.load(Ordering::Relaxed) <= 100);
        // And a closed offer no longer runs.
        let before = runs.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        let after = runs.load(Ordering::Relaxed);
        assert_eq!(before, after);
    }

    /// A helper's affinity leaves out the offering thread's CPU and keeps
    /// the others.
    #[cfg(target_os = "linux")]
    #[test]
    fn helpers_are_placed_away_from_the_offering_cpu() {
        let placement = placement::Placement::new();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY (all blocks below): zeroed cpu_set_t values are empty
        // sets, and the calls get their sizes.
        let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut mine) }, 0);
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &mine) })
            .collect();
        if cpus.len() < 2 {
            return; // Nowhere else to go.
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let placement = Arc::new(placement);
        let p = placement.clone();
        let helper = std::thread::spawn(move || {
            p.register();
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        for &cpu in &cpus[..2] {
            // Run this thread on `cpu` only, then offer from there.
            let mut only: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            unsafe { libc::CPU_SET(cpu, &mut only) };
            assert_eq!(unsafe { libc::sched_setaffinity(0, size, &only) }, 0);
            placement.away_from_here();
            let mut theirs: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { libc::sched_getaffinity(tid, size, &mut theirs) },
                0
            );
            for &c in &cpus {
                assert_eq!(unsafe { libc::CPU_ISSET(c, &theirs) }, c != cpu, "cpu {c}");
            }
        }
        assert_eq!(unsafe { libc::sched_setaffinity(0, size, &mine) }, 0);
        drop(done_tx);
        helper.join().unwrap();
    }

    #[test]
    fn a_panicking_helper_still_leaves() {
        let started = Instant::now();
        let work = || {
            if std::thread::current().name() == Some("silt-eval") {
                panic!("helper fails");
            }
        };
        drop(Offer::new(2, &work));
        assert!(started.elapsed() < Duration::from_secs(5));
        // The pool still works.
        let n = AtomicUsize::new(0);
        let count = || {
            n.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        };
        {
            let _offer = Offer::new(2, &count);
            // Other tests' offers may be queued before this one.
            let deadline = Instant::now() + Duration::from_secs(10);
            while n.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(n.load(Ordering::Relaxed) >= 1);
    }
}
