//! What may interrupt a session between and during its statements (a KILL, shutdown),
//! waited on without a lock.
//!
//! A session looks at these at every command, and while each statement waits on its
//! server. A `watch` per flag took the watch's lock at every such poll (the shutdown one
//! shared by every session on every core); here a poll is two atomic loads and, when the
//! session's waker is unchanged, no write.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;

/// Why a session was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Killed,
    Shutdown,
}

/// One session's flags. Raised once, never lowered; one task (the session) waits.
#[derive(Default)]
pub struct Signals {
    killed: AtomicBool,
    shutdown: AtomicBool,
    waker: AtomicWaker,
}

impl Signals {
    pub fn raise(&self, s: Signal) {
        match s {
            Signal::Killed => self.killed.store(true, Ordering::SeqCst),
            Signal::Shutdown => self.shutdown.store(true, Ordering::SeqCst),
        }
        self.waker.wake();
    }

    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Completes when the session is killed, or (with `shutdown`) told to shut down.
    pub fn raised(&self, shutdown: bool) -> impl Future<Output = Signal> + '_ {
        poll_fn(move |cx| {
            let now = || {
                if self.killed() {
                    Some(Signal::Killed)
                } else if shutdown && self.shutting_down() {
                    Some(Signal::Shutdown)
                } else {
                    None
                }
            };
            if let Some(s) = now() {
                return Poll::Ready(s);
            }
            self.waker.register(cx.waker());
            // Raised between the look and the registration: its wake went to the old waker.
            match now() {
                Some(s) => Poll::Ready(s),
                None => Poll::Pending,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_waiting_session_hears_a_kill_from_another_thread() {
        let s = Arc::new(Signals::default());
        let raiser = Arc::clone(&s);
        let t = std::thread::spawn(move || raiser.raise(Signal::Killed));
        assert_eq!(s.raised(false).await, Signal::Killed);
        t.join().unwrap();
    }

    #[tokio::test]
    async fn shutdown_is_heard_only_when_asked_for() {
        let s = Signals::default();
        s.raise(Signal::Shutdown);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut ignoring = std::pin::pin!(s.raised(false));
        assert!(
            ignoring.as_mut().poll(&mut cx).is_pending(),
            "shutdown completed a wait that ignores it"
        );
        assert_eq!(s.raised(true).await, Signal::Shutdown);
        s.raise(Signal::Killed);
        assert_eq!(s.raised(true).await, Signal::Killed, "a kill comes first");
    }
}
