//! The session workers as the rest of the proxy sees them: sessions and CPU time per worker,
//! sessions moved, and the balancer's call to each worker's sessions (`frontend::balance`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Set once the workers start; empty before (and in states no worker serves).
#[derive(Default)]
pub struct WorkerBoard {
    workers: OnceLock<Box<[Seat]>>,
    /// Sessions moved from one worker to another.
    moves: AtomicU64,
    /// The first this many workers take new sessions (0: all of them).
    active: AtomicUsize,
}

/// One worker. The call sits on a cache line of its own: every command of the worker's
/// sessions reads it, and it changes only when the balancer decides something.
#[derive(Default)]
pub struct Seat {
    call: Line<AtomicU64>,
    figures: Line<Figures>,
}

#[repr(align(128))]
#[derive(Default)]
struct Line<T>(T);

#[derive(Default)]
struct Figures {
    /// Sessions the worker serves now (the worker's guards count them).
    sessions: Arc<AtomicUsize>,
    /// CPU time the worker's thread has used, as the balancer last read it.
    cpu_micros: AtomicU64,
}

/// What the balancer asks of a worker's sessions: the share of them that leave for worker
/// `to` at their next command boundary. A session answers each call once, by its
/// `generation`, so the share is of the sessions that run commands, not of idle ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub generation: u32,
    /// Out of [`Call::ALL`].
    pub share: u16,
    pub to: u16,
}

impl Call {
    pub const ALL: u16 = u16::MAX;

    fn pack(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.share) << 16 | u64::from(self.to)
    }

    fn unpack(v: u64) -> Self {
        Call {
            generation: (v >> 32) as u32,
            share: (v >> 16) as u16,
            to: v as u16,
        }
    }

    /// Whether the session `id` is among those that leave: the same answer for the same
    /// session and call, spread evenly over sessions.
    pub fn picks(self, id: u32) -> bool {
        if self.share == Call::ALL {
            return true;
        }
        let mut h = u64::from(id) << 32 | u64::from(self.generation);
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h & 0xFFFF) < u64::from(self.share)
    }
}

impl WorkerBoard {
    /// Called once, as `n` workers start: their session counters.
    pub fn start(&self, n: usize) -> Vec<Arc<AtomicUsize>> {
        let seats: Box<[Seat]> = (0..n).map(|_| Seat::default()).collect();
        let counters = seats.iter().map(|s| Arc::clone(&s.figures.0.sessions));
        let counters = counters.collect();
        let _ = self.workers.set(seats);
        counters
    }

    fn seats(&self) -> &[Seat] {
        self.workers.get().map_or(&[], |s| s)
    }

    pub fn count(&self) -> usize {
        self.seats().len()
    }

    /// The call standing for worker `i`'s sessions (generation 0: none yet).
    #[inline]
    pub fn call(&self, i: usize) -> Call {
        self.seats().get(i).map_or(Call::unpack(0), |s| {
            Call::unpack(s.call.0.load(Ordering::Relaxed))
        })
    }

    /// Replaces worker `i`'s call (the balancer's, on the control thread).
    pub fn set_call(&self, i: usize, call: Call) {
        if let Some(s) = self.seats().get(i) {
            s.call.0.store(call.pack(), Ordering::Relaxed);
        }
    }

    pub fn sessions(&self, i: usize) -> usize {
        self.seats()
            .get(i)
            .map_or(0, |s| s.figures.0.sessions.load(Ordering::Relaxed))
    }

    pub fn cpu_micros(&self, i: usize) -> u64 {
        self.seats()
            .get(i)
            .map_or(0, |s| s.figures.0.cpu_micros.load(Ordering::Relaxed))
    }

    pub fn set_cpu_micros(&self, i: usize, micros: u64) {
        if let Some(s) = self.seats().get(i) {
            s.figures.0.cpu_micros.store(micros, Ordering::Relaxed);
        }
    }

    /// How many workers, the first ones, take new sessions.
    pub fn active(&self) -> usize {
        match self.active.load(Ordering::Relaxed) {
            0 => self.count(),
            n => n.min(self.count()),
        }
    }

    pub fn set_active(&self, n: usize) {
        self.active.store(n, Ordering::Relaxed);
    }

    pub fn moved(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_reads_back_as_written() {
        let board = WorkerBoard::default();
        assert_eq!(board.call(0).generation, 0, "no workers: no call");
        board.start(2);
        let call = Call {
            generation: 7,
            share: 1234,
            to: 1,
        };
        board.set_call(0, call);
        assert_eq!(board.call(0), call);
        assert_eq!(board.call(1).generation, 0);
    }

    #[test]
    fn a_share_picks_about_that_share_of_sessions() {
        let call = |share| Call {
            generation: 3,
            share,
            to: 0,
        };
        let picked = |share| (1..=10_000u32).filter(|&id| call(share).picks(id)).count();
        assert_eq!(picked(Call::ALL), 10_000);
        assert_eq!(picked(0), 0);
        let half = picked(Call::ALL / 2);
        assert!((4_700..5_300).contains(&half), "{half} of 10,000");
        let quarter = picked(Call::ALL / 4);
        assert!((2_200..2_800).contains(&quarter), "{quarter} of 10,000");
    }
}
