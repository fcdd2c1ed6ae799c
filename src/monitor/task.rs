//! The per-backend task: check every interval, fold the outcome into the published status,
//! and log state changes (once each, never per check).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::time::MissedTickBehavior;

use super::probe::Prober;
use super::status::{BackendState, BackendStatus, Policy};

/// Every backend's latest status, replaced whole on each update so readers never lock.
pub type StatusMap = HashMap<String, Arc<BackendStatus>>;
pub type SharedStatuses = Arc<ArcSwap<StatusMap>>;

/// One backend to watch, with the pace and policy of the tenants that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: String,
    pub interval: Duration,
    pub policy: Policy,
    /// The CA to verify the server's TLS certificate with, when a tenant on this server
    /// has `backend_tls` (the monitor then connects over TLS like the data path).
    pub tls_ca: Option<String>,
}

pub async fn watch(target: Target, mut prober: Prober, statuses: SharedStatuses) {
    let mut ticks = tokio::time::interval(target.interval);
    // A slow check delays the next one rather than firing a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = prober.check(target.interval).await;
        let now = Instant::now();
        update(&statuses, &target.addr, |prev| {
            BackendStatus::next(prev, &target.addr, outcome.clone(), &target.policy, now)
        });
    }
}

/// Replaces `addr`'s status with `f(current)`. The new status is computed from whatever is
/// current at the moment of the swap (retrying if another writer got in between), so a
/// `mark_down` from the data path is never lost under a check that started before it.
pub fn update(
    statuses: &ArcSwap<StatusMap>,
    addr: &str,
    f: impl Fn(Option<&BackendStatus>) -> BackendStatus,
) {
    let mut change = None;
    statuses.rcu(|map| {
        let prev = map.get(addr);
        let next = Arc::new(f(prev.map(Arc::as_ref)));
        change = Some((prev.map(|p| p.state), Arc::clone(&next)));
        let mut map = StatusMap::clone(map);
        map.insert(addr.to_string(), next);
        map
    });
    if let Some((prev, next)) = change {
        log_transition(prev, &next);
    }
}

fn log_transition(prev: Option<BackendState>, next: &BackendStatus) {
    if prev == Some(next.state) {
        return;
    }
    let from = prev.map_or("unknown", BackendState::as_str);
    let reason = next.last_error.as_deref().unwrap_or("");
    match next.state {
        BackendState::Up => tracing::info!(
            backend = %next.addr,
            from,
            read_only = next.observed.read_only,
            replica = next.observed.is_replica,
            "backend up"
        ),
        state => tracing::warn!(backend = %next.addr, from, %state, reason, "backend not eligible"),
    }
}
