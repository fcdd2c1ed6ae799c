//! The timers a session's command loop waits on beside the client's next command (idle,
//! a write's hold): polled once, then only looked at.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::Instant;

use tokio::time::Sleep;

/// A timer that a loop waits on at every turn, and rarely moves. Tokio's `Sleep` registers
/// the task's waker again at each poll (its budget, the entry's state, a compare-and-swap
/// on a cache line of its own): about 110 instructions and a write miss per statement,
/// for a timer that fires once in hours. Once it holds the waker of the task polling it,
/// whether it fired is one load: the timer wakes that task when it fires.
pub(super) struct Deadline {
    sleep: Pin<Box<Sleep>>,
    /// The waker the timer holds, cloned at its last real poll; None after a reset.
    armed: Option<Waker>,
}

impl Deadline {
    pub(super) fn at(at: Instant) -> Self {
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(at.into())),
            armed: None,
        }
    }

    pub(super) fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at.into());
        self.armed = None;
    }

    /// Completes when the deadline has passed.
    pub(super) fn elapsed(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return match self.sleep.is_elapsed() {
                    true => Poll::Ready(()),
                    false => Poll::Pending,
                };
            }
            let polled = self.sleep.as_mut().poll(cx);
            self.armed = polled.is_pending().then(|| cx.waker().clone());
            polled
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl Deadline {
        fn after(d: Duration) -> Self {
            Self::at(Instant::now() + d)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fires_when_only_looked_at_after_its_first_poll() {
        let mut d = Deadline::after(Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        // The first poll registers this task's waker; the next, after the timer woke the
        // task, only looks.
        tokio::time::timeout(Duration::from_secs(6), d.elapsed())
            .await
            .expect("the deadline fired");
        assert!(started.elapsed() >= Duration::from_secs(5));
        assert!(d.armed.is_some(), "the first poll kept the waker");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_moves_it() {
        let mut d = Deadline::after(Duration::from_secs(1));
        let started = tokio::time::Instant::now();
        d.elapsed().await;
        d.reset((tokio::time::Instant::now() + Duration::from_secs(10)).into_std());
        let waited = tokio::time::timeout(Duration::from_secs(5), d.elapsed()).await;
        assert!(waited.is_err(), "fired before its new deadline");
        tokio::time::timeout(Duration::from_secs(10), d.elapsed())
            .await
            .expect("fired at its new deadline");
        assert!(started.elapsed() >= Duration::from_secs(11));
    }
}
