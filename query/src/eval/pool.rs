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
//! On Linux an idle helper is kept off the CPU of the thread that offers
//! it work ([`placement`]). Left to itself, the scheduler often wakes a
//! helper on the waker's CPU, where it preempts the query instead of
//! running beside it: on a two-core machine a gzip helper then ran its
//! pieces on the query's core while the other idled, and the work took as
//! long as with no helper at all.

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

fn helper(rx: Arc<Mutex<Receiver<Task>>>, ready: std::sync::mpsc::SyncSender<()>) {
    let me = pool().placement.register();
    let _ = ready.send(());
    loop {
        let task = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        let _working = me.working();
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
                // The new helper registers for placement before this offer
                // places the helpers.
                let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
                let spawned = std::thread::Builder::new()
                    .name("silt-eval".into())
                    .stack_size(crate::STACK_BYTES)
                    .spawn(move || helper(rx, ready_tx));
                if spawned.is_err() {
                    break;
                }
                let _ = ready_rx.recv();
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

/// Keeps idle helpers off the CPU of the thread that offers them work.
///
/// An offer sets each idle helper's affinity to the offering thread's
/// CPUs minus the one it runs on, before the helper is woken, so the
/// scheduler wakes it elsewhere. Helpers at work are left where they are
/// (another query's offer must not move them onto that query's CPU), and a
/// helper already so placed costs nothing; else each costs a system call.
/// The affinity stays after the offer: a helper that must finish a claimed
/// piece while its query waits has the other CPUs, and other threads may
/// still move to the query's idle one.
#[cfg(target_os = "linux")]
mod placement {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    pub(super) struct Placement {
        helpers: Mutex<Vec<Helper>>,
    }

    struct Helper {
        tid: libc::pid_t,
        /// Set while the helper runs an offer's work.
        busy: Arc<AtomicBool>,
        /// The affinity last given to it, if that succeeded.
        placed: Option<libc::cpu_set_t>,
    }

    /// A helper thread's entry, removed when the thread ends (its id could
    /// be reused by another thread).
    pub(super) struct Registration {
        placement: &'static Placement,
        tid: libc::pid_t,
        busy: Arc<AtomicBool>,
    }

    /// Marks a helper busy while it lives.
    pub(super) struct Working<'a>(&'a AtomicBool);

    impl Drop for Working<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }

    impl Registration {
        pub(super) fn working(&self) -> Working<'_> {
            self.busy.store(true, Ordering::Release);
            Working(&self.busy)
        }
    }

    impl Drop for Registration {
        fn drop(&mut self) {
            if let Ok(mut h) = self.placement.helpers.lock() {
                h.retain(|h| h.tid != self.tid);
            }
        }
    }

    /// The calling thread's id (as a system call: glibc has `gettid` only
    /// from 2.30).
    pub(super) fn gettid() -> libc::pid_t {
        // SAFETY: gettid has no preconditions.
        unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
    }

    fn set_size() -> usize {
        std::mem::size_of::<libc::cpu_set_t>()
    }

    impl Placement {
        pub(super) fn new() -> Placement {
            Placement {
                helpers: Mutex::new(Vec::new()),
            }
        }

        /// Registers the calling thread as a helper.
        pub(super) fn register(&'static self) -> Registration {
            let tid = gettid();
            let busy = Arc::new(AtomicBool::new(false));
            if let Ok(mut h) = self.helpers.lock() {
                h.push(Helper {
                    tid,
                    busy: busy.clone(),
                    placed: None,
                });
            }
            Registration {
                placement: self,
                tid,
                busy,
            }
        }

        /// Places every idle helper on the calling thread's CPUs except
        /// the one it runs on (none when it may run on one CPU only).
        pub(super) fn away_from_here(&self) {
            // SAFETY: a zeroed cpu_set_t is an empty set, and the call
            // gets its size.
            let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            if unsafe { libc::sched_getaffinity(0, set_size(), &mut mine) } != 0 {
                return;
            }
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            if let Ok(cpu) = usize::try_from(cpu) {
                self.away_from(cpu, &mine);
            }
        }

        /// Places every idle helper on `allowed` except `cpu`, if `cpu` is
        /// one of two or more CPUs there.
        pub(super) fn away_from(&self, cpu: usize, allowed: &libc::cpu_set_t) {
            if cpu >= libc::CPU_SETSIZE as usize {
                return;
            }
            let mut want = *allowed;
            // SAFETY: cpu is below the set's size.
            unsafe {
                if libc::CPU_COUNT(&want) < 2 || !libc::CPU_ISSET(cpu, &want) {
                    return;
                }
                libc::CPU_CLR(cpu, &mut want);
            }
            let Ok(mut helpers) = self.helpers.lock() else {
                return;
            };
            for h in helpers.iter_mut() {
                // SAFETY: both are valid sets.
                let placed = h
                    .placed
                    .is_some_and(|p| unsafe { libc::CPU_EQUAL(&p, &want) });
                if placed || h.busy.load(Ordering::Acquire) {
                    continue;
                }
                // SAFETY: want is a valid cpu_set_t of the size given. A
                // failure (the CPUs changed under us) leaves the helper
                // where it was, to be tried again.
                let ok = unsafe { libc::sched_setaffinity(h.tid, set_size(), &want) } == 0;
                h.placed = ok.then_some(want);
            }
        }

        #[cfg(test)]
        pub(super) fn registered(&self) -> usize {
            self.helpers.lock().map(|h| h.len()).unwrap_or(0)
        }

        #[cfg(test)]
        pub(super) fn placed(&self) -> usize {
            self.helpers
                .lock()
                .map(|h| h.iter().filter(|h| h.placed.is_some()).count())
                .unwrap_or(0)
        }
    }
}

/// Elsewhere helpers go where the scheduler puts them.
#[cfg(not(target_os = "linux"))]
mod placement {
    pub(super) struct Placement;

    pub(super) struct Registration;

    impl Registration {
        pub(super) fn working(&self) {}
    }

    impl Placement {
        pub(super) fn new() -> Placement {
            Placement
        }

        pub(super) fn register(&'static self) -> Registration {
            Registration
        }

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

    /// An idle helper's affinity leaves out the offering thread's CPU
    /// and keeps the others; a busy helper is not moved; a helper that
    /// ends is forgotten.
    #[cfg(target_os = "linux")]
    #[test]
    fn idle_helpers_are_placed_away_from_the_offering_cpu() {
        let placement: &'static placement::Placement =
            Box::leak(Box::new(placement::Placement::new()));
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY (all blocks below): zeroed cpu_set_t values are empty
        // sets, the calls get their sizes, and CPUs index below
        // CPU_SETSIZE.
        let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut mine) }, 0);
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &mine) })
            .collect();
        if cpus.len() < 2 {
            return; // Nowhere else to go.
        }
        let affinity = |tid: libc::pid_t| -> Vec<usize> {
            let mut theirs: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            assert_eq!(
                unsafe { libc::sched_getaffinity(tid, size, &mut theirs) },
                0
            );
            cpus.iter()
                .copied()
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &theirs) })
                .collect()
        };
        let others =
            |cpu: usize| -> Vec<usize> { cpus.iter().copied().filter(|&c| c != cpu).collect() };

        // The helper: registers, then works while told to.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (cmd_tx, cmd_rx) = std::sync::mpsc::channel::<bool>();
        let (ack_tx, ack_rx) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || {
            let me = placement.register();
            tid_tx.send(placement::gettid()).unwrap();
            let mut working = None;
            while let Ok(work) = cmd_rx.recv() {
                working = work.then(|| me.working());
                ack_tx.send(()).unwrap();
            }
            drop(working);
        });
        let tid = tid_rx.recv().unwrap();
        assert_eq!(placement.registered(), 1);
        if unsafe { libc::sched_setaffinity(tid, size, &mine) } != 0 {
            // A sandbox that forbids setting another thread's CPUs: the
            // placement does nothing there (and says nothing).
            drop(cmd_tx);
            helper.join().unwrap();
            return;
        }

        for &cpu in &cpus[..2] {
            placement.away_from(cpu, &mine);
            assert_eq!(affinity(tid), others(cpu), "offered from cpu {cpu}");
        }
        // Busy: an offer from elsewhere leaves it where it was.
        cmd_tx.send(true).unwrap();
        ack_rx.recv().unwrap();
        placement.away_from(cpus[0], &mine);
        assert_eq!(affinity(tid), others(cpus[1]));
        // Idle again: placed.
        cmd_tx.send(false).unwrap();
        ack_rx.recv().unwrap();
        placement.away_from(cpus[0], &mine);
        assert_eq!(affinity(tid), others(cpus[0]));

        drop(cmd_tx);
        helper.join().unwrap();
        assert_eq!(placement.registered(), 0);
    }

    /// The pool's own offers place its helpers (the placement itself is
    /// tested above).
    #[cfg(target_os = "linux")]
    #[test]
    fn offers_place_the_pools_helpers() {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: a zeroed cpu_set_t is an empty set; the calls get its
        // size.
        let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut mine) }, 0);
        if unsafe { libc::CPU_COUNT(&mine) } < 2
            || unsafe { libc::sched_setaffinity(0, size, &mine) } != 0
        {
            return; // Nowhere else to go, or a sandbox that forbids it.
        }
        let work = || {};
        // Helpers busy with other tests' offers are left alone: offer
        // until one is idle.
        for _ in 0..200 {
            drop(Offer::new(1, &work));
            if pool().placement.placed() > 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no helper was placed");
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
