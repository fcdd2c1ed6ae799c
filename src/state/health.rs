//! What the data path has learned about backend reachability, shared by all sessions so one
//! refused connection spares the others the same wait.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock::Unpoisoned;

/// How long a backend that refused a connection is skipped by the balancer.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// A tenant whose reads fell back to the primary and that has not read since is forgotten
/// after this: a reload may have removed it or its replicas, or its clients gone, and no
/// read of its would ever take it off the list (nor the lock every replica read of every
/// tenant takes while the list is not empty).
const FALLBACK_FORGOTTEN_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Health {
    down_until: Mutex<HashMap<String, Instant>>,
    /// Whether any entry may still be in force: the common case (all up) takes no lock.
    any_down: AtomicBool,
    /// Backends ops set OFFLINE: no new reads until set ONLINE. Survives reloads.
    offline: Mutex<HashSet<String>>,
    /// Tenants whose reads currently fall back to the primary for want of a replica, with
    /// when that was last seen.
    falling_back: Mutex<HashMap<String, Instant>>,
    any_falling_back: AtomicBool,
}

impl Health {
    pub fn mark_down(&self, addr: &str) {
        let mut m = self.down_until.locked();
        m.insert(addr.to_owned(), Instant::now() + DOWN_FOR);
        self.any_down.store(true, Ordering::Release);
    }

    /// Records whether `tenant`'s reads fall back to the primary; returns true when that
    /// changed, so the caller logs transitions rather than every statement.
    pub fn note_fallback(&self, tenant: &str, falling_back: bool) -> bool {
        if !falling_back && !self.any_falling_back.load(Ordering::Acquire) {
            return false;
        }
        let mut set = self.falling_back.locked();
        let changed = if falling_back {
            set.insert(tenant.to_owned(), Instant::now()).is_none()
        } else {
            set.remove(tenant).is_some()
        };
        self.any_falling_back
            .store(!set.is_empty(), Ordering::Release);
        changed
    }

    /// Forgets tenants that have not fallen back for [`FALLBACK_FORGOTTEN_AFTER`] (called
    /// by the periodic sweep).
    pub fn forget_old_fallbacks(&self, now: Instant) {
        if !self.any_falling_back.load(Ordering::Acquire) {
            return;
        }
        let mut set = self.falling_back.locked();
        set.retain(|_, seen| now.saturating_duration_since(*seen) < FALLBACK_FORGOTTEN_AFTER);
        self.any_falling_back
            .store(!set.is_empty(), Ordering::Release);
    }

    /// Sets a backend OFFLINE (true) or back ONLINE (false); returns whether that changed.
    pub fn set_offline(&self, addr: &str, offline: bool) -> bool {
        let mut set = self.offline.locked();
        let changed = if offline {
            set.insert(addr.to_owned())
        } else {
            set.remove(addr)
        };
        let down = self.down_until.locked();
        self.any_down
            .store(!set.is_empty() || !down.is_empty(), Ordering::Release);
        changed
    }

    /// The backends set OFFLINE, sorted.
    pub fn offline_list(&self) -> Vec<String> {
        let set = self.offline.locked();
        let mut v: Vec<String> = set.iter().cloned().collect();
        v.sort();
        v
    }

    pub fn is_offline(&self, addr: &str) -> bool {
        self.offline.locked().contains(addr)
    }

    pub fn is_up(&self, addr: &str) -> bool {
        if !self.any_down.load(Ordering::Acquire) {
            return true;
        }
        // In `set_offline`'s order, `offline` before `down_until`: in the other order an
        // OFFLINE or ONLINE at the same moment as a read's replica choice deadlocked both.
        let offline = self.offline.locked();
        if offline.contains(addr) {
            return false;
        }
        let mut m = self.down_until.locked();
        let now = Instant::now();
        m.retain(|_, until| *until > now);
        if m.is_empty() && offline.is_empty() {
            self.any_down.store(false, Ordering::Release);
        }
        !m.contains_key(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_no_read_renews_is_forgotten() {
        let h = Health::default();
        assert!(h.note_fallback("gone", true));
        assert!(h.note_fallback("busy", true));
        let later = Instant::now() + FALLBACK_FORGOTTEN_AFTER;
        h.forget_old_fallbacks(later - Duration::from_secs(1));
        assert!(h.any_falling_back.load(Ordering::Acquire));
        // "busy" read again since; "gone" did not.
        h.falling_back
            .locked()
            .insert("busy".into(), later - Duration::from_secs(1));
        h.forget_old_fallbacks(later);
        assert!(!h.note_fallback("gone", false), "forgotten");
        assert!(
            h.note_fallback("busy", false),
            "still falling back until now"
        );
        assert!(!h.any_falling_back.load(Ordering::Acquire));
    }

    #[test]
    fn offline_until_online() {
        let h = Health::default();
        assert!(h.set_offline("r:1", true));
        assert!(!h.is_up("r:1"));
        assert!(h.is_up("r:2"));
        assert!(!h.set_offline("r:1", true));
        assert!(h.set_offline("r:1", false));
        assert!(h.is_up("r:1"));
        assert!(!h.any_down.load(Ordering::Acquire));
    }

    /// OFFLINE/ONLINE against replica choices on other threads: the two took the same two
    /// locks in opposite orders, and deadlocked within a few thousand rounds.
    #[test]
    fn offline_changes_and_replica_choices_do_not_deadlock() {
        let h = std::sync::Arc::new(Health::default());
        let (done, finished) = std::sync::mpsc::channel();
        let setter = {
            let (h, done) = (std::sync::Arc::clone(&h), done.clone());
            std::thread::spawn(move || {
                for i in 0..200_000 {
                    h.set_offline("r:1", i % 2 == 0);
                }
                let _ = done.send(());
            })
        };
        let chooser = {
            let h = std::sync::Arc::clone(&h);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    h.is_up("r:1");
                }
                let _ = done.send(());
            })
        };
        for _ in 0..2 {
            finished
                .recv_timeout(Duration::from_secs(30))
                .expect("OFFLINE and a replica choice deadlocked");
        }
        setter.join().unwrap();
        chooser.join().unwrap();
    }

    #[test]
    fn fallback_transitions_are_reported_once() {
        let h = Health::default();
        assert!(!h.note_fallback("acme", false));
        assert!(h.note_fallback("acme", true));
        assert!(!h.note_fallback("acme", true));
        assert!(h.note_fallback("acme", false));
        assert!(!h.note_fallback("acme", false));
    }

    #[test]
    fn down_is_remembered_then_forgotten() {
        let h = Health::default();
        assert!(h.is_up("a:1"));
        h.mark_down("a:1");
        assert!(!h.is_up("a:1"));
        assert!(h.is_up("b:1"));
        h.down_until
            .lock()
            .unwrap()
            .insert("a:1".into(), Instant::now() - Duration::from_millis(1));
        assert!(h.is_up("a:1"));
        assert!(!h.any_down.load(Ordering::Acquire));
    }
}
