//! Connection limits per tenant and per user: a permit per session, given back when the
//! session ends (or moves to another tenant).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Limits {
    counts: Mutex<HashMap<String, usize>>,
}

/// One counted connection; dropping it gives the slot back.
pub struct Permit {
    key: String,
    limits: Arc<Limits>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.key);
            }
        }
    }
}

impl Limits {
    /// A permit for `key` if fewer than `max` are held (no limit when `max` is None).
    pub fn acquire(self: &Arc<Self>, key: String, max: Option<u32>) -> Option<Permit> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.entry(key.clone()).or_insert(0);
        if max.is_some_and(|m| *n >= m as usize) {
            return None;
        }
        *n += 1;
        Some(Permit {
            key,
            limits: Arc::clone(self),
        })
    }

    pub fn held(&self, key: &str) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_bounded_and_returned() {
        let l = Arc::new(Limits::default());
        let a = l.acquire("user:x".into(), Some(2)).unwrap();
        let _b = l.acquire("user:x".into(), Some(2)).unwrap();
        assert!(l.acquire("user:x".into(), Some(2)).is_none());
        assert!(l.acquire("user:y".into(), None).is_some());
        drop(a);
        assert_eq!(l.held("user:x"), 1);
        assert!(l.acquire("user:x".into(), Some(2)).is_some());
    }
}
