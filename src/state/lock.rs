//! Locks that stay usable after a holder panicked.
//!
//! Tokio catches a panic at the task, so one session's bug ends that session only, and
//! whatever it held locked is used on as it was left. What these locks guard (counters,
//! maps of statistics, idle lists, waiters) is changed a step at a time, each step leaving
//! it usable: cut short, an update leaves a count off or an entry missing, which the
//! readers tolerate, while a lock refused for ever would turn that one session's failure
//! into every session's.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `Mutex::lock` that takes the guard a panicking holder left behind.
pub trait Unpoisoned<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Unpoisoned<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Unpoisoned`] for readers and writers.
pub trait UnpoisonedRw<T: ?Sized> {
    fn reading(&self) -> RwLockReadGuard<'_, T>;
    fn writing(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> UnpoisonedRw<T> for RwLock<T> {
    fn reading(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn writing(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// `lock` after a thread ran `bug` on it, which panics while holding it.
    fn after_panic<L: Send + Sync + 'static>(lock: L, bug: fn(&L)) -> Arc<L> {
        let lock = Arc::new(lock);
        let held = Arc::clone(&lock);
        let _ = std::thread::spawn(move || bug(&held)).join();
        lock
    }

    #[test]
    fn a_lock_whose_holder_panicked_is_taken_as_left() {
        let m = after_panic(Mutex::new(1), |m| {
            let mut g = m.lock().unwrap();
            *g = 2;
            panic!("a holder's bug");
        });
        assert!(m.is_poisoned());
        assert_eq!(*m.locked(), 2);
    }

    #[test]
    fn a_rwlock_whose_writer_panicked_is_read_and_written_as_left() {
        let rw = after_panic(RwLock::new(3), |rw| {
            let mut g = rw.write().unwrap();
            *g = 4;
            panic!("a writer's bug");
        });
        assert!(rw.is_poisoned());
        *rw.writing() += 1;
        assert_eq!(*rw.reading(), 5);
    }
}
