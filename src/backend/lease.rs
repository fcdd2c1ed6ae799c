//! The cap on open connections per (tenant, backend server): slots held by connections,
//! the wait for one when all are busy, and the figures SHOW POOLS reports.

use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::state::lock::Unpoisoned;
use crate::state::per_worker;

/// How a leased connection was brought to its session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// It was in that state already (same fingerprint).
    None,
    /// SET statements (and COM_INIT_DB) on a connection without other session state.
    Set,
    /// COM_RESET_CONNECTION first: it held another session's state.
    Reset,
    /// COM_CHANGE_USER first: it was another backend user's (the server resets the session
    /// as it logs the connection in again).
    ChangeUser,
}

impl Restore {
    pub const ALL: [Restore; 4] = [
        Restore::None,
        Restore::Set,
        Restore::Reset,
        Restore::ChangeUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Restore::None => "none",
            Restore::Set => "set",
            Restore::Reset => "reset",
            Restore::ChangeUser => "change_user",
        }
    }
}

/// The connections of one tenant to one server. Every open connection holds a [`Slot`];
/// `cap` of them exist at most.
#[derive(Debug)]
pub struct Group {
    pub tenant: Arc<str>,
    pub addr: Arc<str>,
    cap: AtomicUsize,
    open: AtomicUsize,
    /// Sessions waiting for a slot or an idle connection.
    waiting: AtomicUsize,
    notify: Notify,
    /// What every lease writes (idle counts, restores), one copy per worker thread: with
    /// one shared copy, two workers leasing the group's connections moved its cache line
    /// between cores at every statement.
    local: Box<[Local]>,
    waits: AtomicU64,
    timeouts: AtomicU64,
    /// Longest wait for a connection, in microseconds, since the process started.
    longest_wait_us: AtomicU64,
    wait_us_total: AtomicU64,
    /// When a COM_CHANGE_USER to this group's login last failed: for a while its sessions
    /// open connections rather than spend other users' idle ones on more failures.
    change_user_failed: Mutex<Option<Instant>>,
}

/// One worker's share of a group's lease counts, on cache lines of its own (see
/// `state::per_worker`).
#[repr(align(128))]
#[derive(Debug, Default)]
struct Local {
    /// Connections this worker put in a pool minus those it took out (of any worker's
    /// pool): one worker's share may be negative, their sum is the group's idle count.
    idle: AtomicIsize,
    restores: [AtomicU64; Restore::ALL.len()],
    /// This worker's idle sessions that keep one of the group's connections only for what
    /// their next statement may ask about the previous one: a session that must wait for a
    /// connection asks them to give it back ([`Group::ask_back`]). Per worker, so a write
    /// registering here touches no other core's cache line.
    asked_back: Notify,
}

/// How long a group opens connections after a COM_CHANGE_USER to its login failed.
const CHANGE_USER_BACKOFF: Duration = Duration::from_secs(60);

/// What SHOW POOLS and /metrics read of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub tenant: String,
    pub addr: String,
    pub cap: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
    pub waits: u64,
    pub timeouts: u64,
    pub longest_wait: Duration,
    pub wait_total: Duration,
    /// Restores by kind, in the order of [`Restore::ALL`].
    pub restores: [u64; Restore::ALL.len()],
}

impl Group {
    /// `slots`: how many per-worker copies of the lease counts to keep (the worker count
    /// plus one for threads that are no worker); threads beyond share copies.
    pub fn new(tenant: &str, addr: &str, cap: usize, slots: usize) -> Self {
        Group {
            tenant: tenant.into(),
            addr: addr.into(),
            cap: AtomicUsize::new(cap.max(1)),
            open: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            notify: Notify::new(),
            local: (0..slots.max(1)).map(|_| Local::default()).collect(),
            waits: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            longest_wait_us: AtomicU64::new(0),
            wait_us_total: AtomicU64::new(0),
            change_user_failed: Mutex::new(None),
        }
    }

    /// A reload may change `pool_max`: connections above a lowered cap close as they come
    /// back rather than being cut off mid-statement.
    pub fn set_cap(&self, cap: usize) {
        let old = self.cap.swap(cap.max(1), Ordering::Relaxed);
        if cap > old {
            self.notify.notify_waiters();
        }
    }

    pub fn over_cap(&self) -> bool {
        self.open.load(Ordering::Relaxed) > self.cap.load(Ordering::Relaxed)
    }

    /// Whether a slot is free now.
    pub(super) fn has_room(&self) -> bool {
        self.open.load(Ordering::Relaxed) < self.cap.load(Ordering::Relaxed)
    }

    /// A slot for a new connection, if the group is under its cap.
    pub fn try_slot(self: &Arc<Self>) -> Option<Slot> {
        let cap = self.cap.load(Ordering::Relaxed);
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(Slot {
            group: Arc::clone(self),
        })
    }

    /// Wakes one waiter if there is one: a connection came back or closed.
    pub(super) fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Completes when a session waits for one of the group's connections, at once if one
    /// waits already. Registered before it looks, so a waiter that starts in between is not
    /// missed (it counts itself in before it asks, see [`ask_back`](Self::ask_back)).
    pub async fn asked_back(&self) {
        let asked = self.local().asked_back.notified();
        tokio::pin!(asked);
        asked.as_mut().enable();
        if self.waiting.load(Ordering::SeqCst) > 0 {
            return;
        }
        asked.await;
    }

    /// A session is about to wait for a connection: every worker's idle sessions that keep
    /// one only for a previous statement's answer give it back.
    pub(super) fn ask_back(&self) {
        for l in self.local.iter() {
            l.asked_back.notify_waiters();
        }
    }

    /// Registers a waiter; the returned future completes on the next [`wake`](Self::wake).
    /// The count goes up before the caller looks for a connection once more, so a
    /// connection returned in between is never missed.
    pub(super) fn waiter(&self) -> Waiter<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiter {
            group: self,
            notified: Box::pin(self.notify.notified()),
        }
    }

    pub(super) fn waited(&self, d: Duration, timed_out: bool) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.waits.fetch_add(1, Ordering::Relaxed);
        self.wait_us_total.fetch_add(us, Ordering::Relaxed);
        self.longest_wait_us.fetch_max(us, Ordering::Relaxed);
        if timed_out {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The calling worker's copy of the lease counts.
    fn local(&self) -> &Local {
        &self.local[per_worker::current_slot() % self.local.len()]
    }

    pub fn restored(&self, kind: Restore) {
        let i = Restore::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.local().restores[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One of the group's connections went into an idle pool (`n` = 1) or left one (-1).
    pub(super) fn idle_changed(&self, n: isize) {
        self.local().idle.fetch_add(n, Ordering::Relaxed);
    }

    /// The group's idle connections, over every worker's pool.
    pub(super) fn idle(&self) -> usize {
        let n: isize = (self.local.iter())
            .map(|l| l.idle.load(Ordering::Relaxed))
            .sum();
        n.max(0).unsigned_abs()
    }

    pub(super) fn change_user_failed(&self) {
        *self.change_user_failed.locked() = Some(Instant::now());
    }

    /// Whether this group's sessions may take other users' idle connections (no recent
    /// COM_CHANGE_USER to its login failed).
    pub(super) fn may_change_user(&self) -> bool {
        self.change_user_failed
            .locked()
            .is_none_or(|at| at.elapsed() >= CHANGE_USER_BACKOFF)
    }

    pub fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> GroupStats {
        GroupStats {
            tenant: self.tenant.to_string(),
            addr: self.addr.to_string(),
            cap: self.cap.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            idle: self.idle(),
            waiting: self.waiting.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            longest_wait: Duration::from_micros(self.longest_wait_us.load(Ordering::Relaxed)),
            wait_total: Duration::from_micros(self.wait_us_total.load(Ordering::Relaxed)),
            restores: std::array::from_fn(|i| {
                (self.local.iter())
                    .map(|l| l.restores[i].load(Ordering::Relaxed))
                    .sum()
            }),
        }
    }
}

/// One waiting session; dropping it (woken, timed out or cancelled) counts it out.
pub struct Waiter<'a> {
    group: &'a Group,
    notified: std::pin::Pin<Box<tokio::sync::futures::Notified<'a>>>,
}

impl Waiter<'_> {
    /// Arms the wake-up before the caller's last look for a connection.
    pub fn enable(&mut self) {
        self.notified.as_mut().enable();
    }

    pub async fn wait(&mut self) {
        self.notified.as_mut().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.group.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An open connection's place under its group's cap; given back when the connection drops.
#[derive(Debug)]
pub struct Slot {
    group: Arc<Group>,
}

impl Slot {
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.group.open.fetch_sub(1, Ordering::AcqRel);
        self.group.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let g = Arc::new(Group::new("acme", "db:3306", 2, 1));
        let a = g.try_slot().expect("first");
        let _b = g.try_slot().expect("second");
        assert!(g.try_slot().is_none(), "over the cap");
        drop(a);
        assert!(
            g.try_slot().is_some(),
            "a dropped connection frees its slot"
        );
        assert_eq!(g.stats().open, 1, "the temporary slot was dropped too");
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_a_returned_slot() {
        let g = Arc::new(Group::new("acme", "db:3306", 1, 1));
        let slot = g.try_slot().unwrap();
        let g2 = Arc::clone(&g);
        let waiting = tokio::spawn(async move {
            let mut w = g2.waiter();
            w.enable();
            if let Some(s) = g2.try_slot() {
                return s;
            }
            w.wait().await;
            g2.try_slot().expect("woken with a free slot")
        });
        while g.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        drop(slot);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(got.group().stats().open, 1);
        assert_eq!(g.stats().waiting, 0);
    }

    #[test]
    fn a_lowered_cap_shows_as_over() {
        let g = Arc::new(Group::new("acme", "db:3306", 2, 1));
        let _a = g.try_slot().unwrap();
        let _b = g.try_slot().unwrap();
        g.set_cap(1);
        assert!(g.over_cap());
    }
}
