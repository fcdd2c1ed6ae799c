//! Per-tenant pause for schema upgrades: while a tenant is paused, its sessions' new
//! statements outside a transaction wait (they are held, not refused) until it resumes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use super::lock::Unpoisoned;

#[derive(Default)]
pub struct Pauses {
    gates: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Any tenant paused at all: the common case checks this one flag.
    any: AtomicBool,
}

/// A statement waited longer than the hold limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldTooLong;

impl Pauses {
    pub fn pause(&self, tenant: &str) {
        let mut g = self.gates.locked();
        g.entry(tenant.to_owned())
            .or_insert_with(|| watch::channel(false).0)
            .send_replace(true);
        // SeqCst: paired with each session's busy flag (see `SessionEntry::set_busy`).
        self.any.store(true, Ordering::SeqCst);
    }

    /// Returns false if the tenant was not paused.
    pub fn resume(&self, tenant: &str) -> bool {
        let mut g = self.gates.locked();
        let was = g.remove(tenant).is_some_and(|tx| tx.send_replace(false));
        self.any.store(!g.is_empty(), Ordering::Release);
        was
    }

    /// Whether any tenant is paused: one load of a flag no statement writes, so a session
    /// can skip the per-tenant check (and making its key) in the common case.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub fn is_paused(&self, tenant: &str) -> bool {
        self.any.load(Ordering::SeqCst)
            && self
                .gates
                .locked()
                .get(tenant)
                .is_some_and(|tx| *tx.borrow())
    }

    pub fn paused(&self) -> Vec<String> {
        let g = self.gates.locked();
        let mut v: Vec<String> = g.keys().cloned().collect();
        v.sort();
        v
    }

    /// How many statements of `tenant` wait for it to resume now.
    pub fn waiting(&self, tenant: &str) -> usize {
        self.gates
            .locked()
            .get(tenant)
            .map_or(0, watch::Sender::receiver_count)
    }

    /// Waits while `tenant` is paused, at most `limit`. Ok(true) if it had to wait.
    pub async fn wait(&self, tenant: &str, limit: Duration) -> Result<bool, HeldTooLong> {
        if !self.any.load(Ordering::Acquire) {
            return Ok(false);
        }
        let rx = {
            let g = self.gates.locked();
            match g.get(tenant) {
                Some(tx) if *tx.borrow() => tx.subscribe(),
                _ => return Ok(false),
            }
        };
        let mut rx = rx;
        // A dropped sender means the tenant was resumed (its gate removed): also done.
        let resumed = tokio::time::timeout(limit, rx.wait_for(|paused| !*paused))
            .await
            .is_ok();
        if resumed {
            Ok(true)
        } else {
            Err(HeldTooLong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn statements_wait_until_resume() {
        let p = Arc::new(Pauses::default());
        assert_eq!(p.wait("acme", Duration::from_millis(10)).await, Ok(false));
        p.pause("acme");
        assert!(p.is_paused("acme"));
        assert_eq!(p.wait("globex", Duration::from_millis(10)).await, Ok(false));
        assert_eq!(
            p.wait("acme", Duration::from_millis(20)).await,
            Err(HeldTooLong)
        );
        let waiter = {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.wait("acme", Duration::from_secs(5)).await })
        };
        while p.waiting("acme") == 0 {
            tokio::task::yield_now().await;
        }
        assert!(p.resume("acme"));
        assert_eq!(waiter.await.unwrap(), Ok(true));
        assert!(!p.resume("acme"));
        assert!(p.paused().is_empty());
    }
}
