//! What the data path has learned about backend reachability, shared by all sessions so one
//! refused connection spares the others the same wait.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

use super::lock::Unpoisoned;

/// How long a backend that refused a connection is skipped by the balancer.
const DOWN_FOR: Duration = Duration::from_secs(2);

/// A tenant whose reads fell back to the primary and that has not read since is forgotten
/// after this: a reload may have removed it or its replicas, or its clients gone, and no
/// read of its would ever take it off the list (which every replica read of every tenant
/// looks at while it is not empty).
const FALLBACK_FORGOTTEN_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Health {
    /// What is down or OFFLINE, replaced whole at each change (a refusal, OFFLINE, ONLINE,
    /// the sweep's expiry): every replica choice of every tenant reads it while anything is
    /// down, so a read takes no lock and writes nothing another worker reads.
    down: ArcSwap<Down>,
    /// Whether anything is: the common case (all up) reads one word.
    any_down: AtomicBool,
    /// Serializes the changes to `down`, each a copy of it replaced.
    changing: Mutex<()>,
    /// Tenants whose reads currently fall back to the primary for want of a replica, with
    /// when that was last seen.
    falling_back: Mutex<HashMap<String, Instant>>,
    /// Their names, replaced whole when one comes or goes: the reads of every other tenant
    /// look here, without the lock, while one tenant falls back.
    falling_back_names: ArcSwap<HashSet<String>>,
    any_falling_back: AtomicBool,
}

/// Backends the data path found refusing connections (until when), and those ops set
/// OFFLINE (no new reads until set ONLINE; survives reloads).
#[derive(Debug, Default, Clone)]
struct Down {
    until: HashMap<String, Instant>,
    offline: HashSet<String>,
}

impl Health {
    fn change(&self, f: impl FnOnce(&mut Down)) {
        let _one_at_a_time = self.changing.locked();
        let mut next = Down::clone(&self.down.load());
        f(&mut next);
        let any = !next.until.is_empty() || !next.offline.is_empty();
        self.down.store(Arc::new(next));
        self.any_down.store(any, Ordering::Release);
    }

    pub fn mark_down(&self, addr: &str) {
        let until = Instant::now() + DOWN_FOR;
        self.change(|d| {
            d.until.insert(addr.to_owned(), until);
        });
    }

    /// Records whether `tenant`'s reads fall back to the primary; returns true when that
    /// changed, so the caller logs transitions rather than every statement.
    pub fn note_fallback(&self, tenant: &str, falling_back: bool) -> bool {
        let listed = || self.falling_back_names.load().contains(tenant);
        if !falling_back && (!self.any_falling_back.load(Ordering::Acquire) || !listed()) {
            return false;
        }
        let mut set = self.falling_back.locked();
        let changed = if falling_back {
            set.insert(tenant.to_owned(), Instant::now()).is_none()
        } else {
            set.remove(tenant).is_some()
        };
        if changed {
            self.publish_fallbacks(&set);
        }
        changed
    }

    fn publish_fallbacks(&self, set: &HashMap<String, Instant>) {
        let names = set.keys().cloned().collect();
        self.falling_back_names.store(Arc::new(names));
        self.any_falling_back
            .store(!set.is_empty(), Ordering::Release);
    }

    /// Forgets tenants that have not fallen back for [`FALLBACK_FORGOTTEN_AFTER`], and
    /// refusals whose time is up (called by the periodic sweep).
    pub fn sweep(&self, now: Instant) {
        if self.any_down.load(Ordering::Acquire)
            && self.down.load().until.values().any(|until| *until <= now)
        {
            self.change(|d| d.until.retain(|_, until| *until > now));
        }
        if !self.any_falling_back.load(Ordering::Acquire) {
            return;
        }
        let mut set = self.falling_back.locked();
        let before = set.len();
        set.retain(|_, seen| now.saturating_duration_since(*seen) < FALLBACK_FORGOTTEN_AFTER);
        if set.len() != before {
            self.publish_fallbacks(&set);
        }
    }

    /// Sets a backend OFFLINE (true) or back ONLINE (false); returns whether that changed.
    pub fn set_offline(&self, addr: &str, offline: bool) -> bool {
        let mut changed = false;
        self.change(|d| {
            changed = if offline {
                d.offline.insert(addr.to_owned())
            } else {
                d.offline.remove(addr)
            };
        });
        changed
    }

    /// The backends set OFFLINE, sorted.
    pub fn offline_list(&self) -> Vec<String> {
        let mut v: Vec<String> = self.down.load().offline.iter().cloned().collect();
        v.sort();
        v
    }

    pub fn is_offline(&self, addr: &str) -> bool {
        self.down.load().offline.contains(addr)
    }

    pub fn is_up(&self, addr: &str) -> bool {
        if !self.any_down.load(Ordering::Acquire) {
            return true;
        }
        let d = self.down.load();
        !d.offline.contains(addr) && d.until.get(addr).is_none_or(|u| *u <= Instant::now())
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
        h.sweep(later - Duration::from_secs(1));
        assert!(h.any_falling_back.load(Ordering::Acquire));
        // "busy" read again since; "gone" did not.
        h.falling_back
            .locked()
            .insert("busy".into(), later - Duration::from_secs(1));
        h.sweep(later);
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
        // Its time up, it is up again at once, and the sweep clears it.
        h.sweep(Instant::now());
        assert!(h.any_down.load(Ordering::Acquire), "not yet");
        let later = Instant::now() + DOWN_FOR;
        assert!(!h.is_up("a:1"));
        h.sweep(later);
        assert!(h.is_up("a:1"));
        assert!(!h.any_down.load(Ordering::Acquire));
    }
}
