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
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel();
        Pool {
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            threads: Mutex::new(0),
        }
    })
}

fn helper(rx: Arc<Mutex<Receiver<Task>>>) {
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
