//! For the memory examples: a global allocator that counts the bytes live
//! through another allocator, and their `[series] [scrapes]` arguments.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes allocated through [`Counting`] and not yet freed.
pub static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Forwards to `A`, counting requested bytes in [`LIVE`].
pub struct Counting<A>(pub A);

// SAFETY: forwards to `A` with the same arguments and only counts.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same layout as asked.
        unsafe { self.0.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p came from alloc with this layout.
        unsafe { self.0.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p came from alloc with this layout.
        unsafe { self.0.realloc(p, l, new) }
    }
}

/// Bytes live now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// `[series] [scrapes]` from the command line: 1,000,000 and 80 by default
/// (the ingest benchmark's largest scale).
pub fn series_and_scrapes() -> (usize, u64) {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    (
        args.first().copied().unwrap_or(1_000_000) as usize,
        args.get(1).copied().unwrap_or(80),
    )
}
