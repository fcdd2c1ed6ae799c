//! Per-worker copies of what statements write (counters, digest statistics, the router's
//! cache): each worker thread writes only its own slot, readers merge the slots.
//!
//! A session runs on one worker at a time, moving only between statements
//! (`frontend::balance`), so the slot a statement writes is never written by another
//! worker: no cache line bounces between cores. Threads that are no worker (the control plane, tests' runtimes) share slot 0;
//! every slot stays thread-safe, so that sharing is merely slower, never wrong.

use std::cell::Cell;
use std::sync::OnceLock;

/// Slots per value; workers past this share slots (worker `i` writes slot `1 + i % 255`).
pub const SLOTS: usize = 256;

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as worker `i`: what it writes goes to a slot of its own.
pub fn enter_worker(i: usize) {
    SLOT.with(|s| s.set(1 + i % (SLOTS - 1)));
}

/// The calling thread's slot: its worker's own, or 0 off the workers.
pub fn current_slot() -> usize {
    SLOT.with(Cell::get)
}

/// Two cache lines (adjacent-line prefetch pairs them) per slot, so neighbours never share.
#[repr(align(128))]
struct Padded<T>(OnceLock<T>);

/// One `T` per worker, made on the worker's first write.
pub struct PerWorker<T> {
    slots: Box<[Padded<T>]>,
}

impl<T> Default for PerWorker<T> {
    fn default() -> Self {
        PerWorker {
            slots: (0..SLOTS).map(|_| Padded(OnceLock::new())).collect(),
        }
    }
}

impl<T> PerWorker<T> {
    /// The calling worker's `T`, made by `init` the first time.
    pub fn local_or(&self, init: impl FnOnce() -> T) -> &T {
        self.slots[current_slot()].0.get_or_init(init)
    }

    /// Slot `i`'s `T` (see [`current_slot`]), made by `init` the first time: for what
    /// belongs to a worker other than the caller's.
    pub fn slot_or(&self, i: usize, init: impl FnOnce() -> T) -> &T {
        self.slots[i % SLOTS].0.get_or_init(init)
    }

    /// Every slot made so far, for readers that merge them.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.0.get())
    }

    /// Every slot made so far, with its index.
    pub fn iter_slots(&self) -> impl Iterator<Item = (usize, &T)> {
        (self.slots.iter().enumerate()).filter_map(|(i, s)| s.0.get().map(|t| (i, t)))
    }
}

impl<T: Default> PerWorker<T> {
    /// The calling worker's `T`.
    pub fn local(&self) -> &T {
        self.local_or(T::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn workers_write_their_own_slot_and_readers_see_all() {
        let counts: PerWorker<AtomicU64> = PerWorker::default();
        counts.local().fetch_add(1, Ordering::Relaxed);
        std::thread::scope(|s| {
            for i in 0..3 {
                let counts = &counts;
                s.spawn(move || {
                    enter_worker(i);
                    counts.local().fetch_add(10, Ordering::Relaxed);
                });
            }
        });
        let all: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(all.len(), 4, "slot 0 and one per worker: {all:?}");
        assert_eq!(all.iter().sum::<u64>(), 31);
    }
}
