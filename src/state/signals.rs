//! What may interrupt a session between and during its statements (a KILL, shutdown),
//! waited on without a lock.
//!
//! A session looks at these at every command, and while each statement waits on its
//! server. A `watch` per flag took the watch's lock at every such poll (the shutdown one
//! shared by every session on every core); here a poll is two atomic loads and, when the
//! session's waker is unchanged, no write.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

use atomic_waker::AtomicWaker;

/// Why a session was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Killed,
    Shutdown,
}

/// One session's flags. Raised once, never lowered; one task (the session) waits. Beside
/// them, KILL QUERY's flag for a statement that waits rather than runs on a server (for a
/// paused tenant, a pool connection): lowered at the session's next command, with a waker
/// of its own so that the kill flags' memo (see [`Signals::raised`]) stays true.
#[derive(Default)]
pub struct Signals {
    killed: AtomicBool,
    shutdown: AtomicBool,
    waker: AtomicWaker,
    query: AtomicBool,
    query_waker: AtomicWaker,
}

impl Signals {
    pub fn raise(&self, s: Signal) {
        match s {
            Signal::Killed => self.killed.store(true, Ordering::SeqCst),
            Signal::Shutdown => self.shutdown.store(true, Ordering::SeqCst),
        }
        self.waker.wake();
    }

    /// KILL QUERY of a statement that is not running on a server (yet): its waits end.
    pub fn raise_query(&self) {
        self.query.store(true, Ordering::SeqCst);
        self.query_waker.wake();
    }

    /// At each command: a KILL QUERY that found nothing to interrupt is forgotten, as the
    /// server forgets one sent to an idle connection. One load when there was none.
    pub fn lower_query(&self) {
        if self.query.load(Ordering::Relaxed) {
            self.query.store(false, Ordering::SeqCst);
        }
    }

    /// Whether KILL QUERY was raised for the statement under way.
    pub fn query_pending(&self) -> bool {
        self.query.load(Ordering::SeqCst)
    }

    /// Completes once KILL QUERY is raised (for a wait that must end then).
    pub fn query_raised(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.query.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            self.query_waker.register(cx.waker());
            if self.query.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Completes when the session is killed, or (with `shutdown`) told to shut down.
    /// `armed` is the caller's memo of the waker it registered last: while that waker is
    /// the polling task's and nothing has been raised since (a raise takes the registered
    /// waker, after setting its flag), a poll is two loads, not the waker's two
    /// compare-and-swaps. The session polls this at every command and while each statement
    /// waits.
    pub fn raised<'a>(
        &'a self,
        shutdown: bool,
        armed: &'a mut Option<Waker>,
    ) -> impl Future<Output = Signal> + 'a {
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
            // Not killed: a raise since the registration could only be a shutdown, which
            // took the waker.
            let registered =
                !self.shutting_down() && armed.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
            if registered {
                return Poll::Pending;
            }
            self.waker.register(cx.waker());
            *armed = Some(cx.waker().clone());
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
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::{Context, Wake};

    #[tokio::test]
    async fn a_waiting_session_hears_a_kill_from_another_thread() {
        let s = Arc::new(Signals::default());
        let raiser = Arc::clone(&s);
        let t = std::thread::spawn(move || raiser.raise(Signal::Killed));
        assert_eq!(s.raised(false, &mut None).await, Signal::Killed);
        t.join().unwrap();
    }

    #[tokio::test]
    async fn shutdown_is_heard_only_when_asked_for() {
        let s = Signals::default();
        s.raise(Signal::Shutdown);
        let mut cx = Context::from_waker(Waker::noop());
        let mut armed = None;
        let mut ignoring = std::pin::pin!(s.raised(false, &mut armed));
        assert!(
            ignoring.as_mut().poll(&mut cx).is_pending(),
            "shutdown completed a wait that ignores it"
        );
        assert_eq!(s.raised(true, &mut None).await, Signal::Shutdown);
        s.raise(Signal::Killed);
        assert_eq!(
            s.raised(true, &mut None).await,
            Signal::Killed,
            "a kill comes first"
        );
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wait_that_skipped_registering_is_still_woken() {
        let s = Signals::default();
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let mut armed = None;
        let mut poll = |armed: &mut Option<Waker>| {
            std::pin::pin!(s.raised(false, armed))
                .poll(&mut cx)
                .is_pending()
        };
        assert!(poll(&mut armed), "nothing raised yet");
        assert!(
            poll(&mut armed),
            "the same task looks again: no registration"
        );
        s.raise(Signal::Shutdown);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the shutdown woke it");
        // The shutdown took the waker: this look must register it again, or the kill
        // below would wake nobody.
        assert!(poll(&mut armed), "a wait ignoring shutdown goes on");
        s.raise(Signal::Killed);
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "the kill woke it");
        assert!(!poll(&mut armed), "and it completes");
    }
}
