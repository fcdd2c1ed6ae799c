//! What the data path has learned about backend reachability, shared by all sessions so one
//! refused connection spares the others the same wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a backend that refused a connection is skipped by the balancer.
const DOWN_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Health {
    down_until: Mutex<HashMap<String, Instant>>,
}

impl Health {
    pub fn mark_down(&self, addr: &str) {
        let mut m = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(addr.to_owned(), Instant::now() + DOWN_FOR);
    }

    pub fn is_up(&self, addr: &str) -> bool {
        let m = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        m.get(addr).is_none_or(|t| Instant::now() >= *t)
    }
}
