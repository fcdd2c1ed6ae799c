//! The per-backend task: check every interval, fold the outcome into the published status,
//! and log state changes (once each, never per check).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::time::MissedTickBehavior;

use super::gtid::GtidPos;
use super::history::{self, LagHistories};
use super::probe::Prober;
use super::status::{BackendState, BackendStatus, Observation, Outcome, Policy};
use super::timeline::{Lag, Timeline};
pub use crate::config::MonitorLogin as Login;
use crate::state::lock::Unpoisoned;

/// Every backend's latest status, replaced whole on each update so readers never lock.
/// Read at every replica choice: FxHash, since the keys are the config's addresses (SipHash's
/// resistance to chosen keys buys nothing, and hashing an address cost more than the check).
pub type StatusMap = rustc_hash::FxHashMap<String, Arc<BackendStatus>>;
pub type SharedStatuses = Arc<Statuses>;

/// The published [`StatusMap`], and a count of its updates: a reader that remembers an
/// answer with the count it read before looking knows the answer still holds while the
/// count is unchanged (see `monitor::EligibleMemo`).
#[derive(Default)]
pub struct Statuses {
    map: ArcSwap<StatusMap>,
    generation: AtomicU64,
}

impl Statuses {
    /// Statuses carried over from the monitor this one replaces.
    pub fn starting_with(map: StatusMap) -> Self {
        Statuses {
            map: ArcSwap::from_pointee(map),
            generation: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<StatusMap>> {
        self.map.load()
    }

    pub fn load_full(&self) -> Arc<StatusMap> {
        self.map.load_full()
    }

    /// Read before the map: an update in between shows as a newer count next time.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// One backend to watch, with the pace and policy of the tenants that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: String,
    pub interval: Duration,
    pub policy: Policy,
    /// The CA to verify the server's TLS certificate with, when a tenant on this server
    /// has `backend_tls` (the monitor then connects over TLS like the data path).
    pub tls_ca: Option<String>,
    /// Who the checks log in as: `[monitor]`'s user, else a login of a tenant on it.
    pub login: Login,
    /// The primary this server replicates from (a tenant's), whose GTID timeline its lag
    /// is measured on.
    pub primary: Option<String>,
    /// Some tenant writes here: its GTID positions make the timeline replicas are measured on.
    pub is_primary: bool,
}

/// The primaries' GTID timelines, by address: written by each primary's task, read by its
/// replicas' tasks (control plane only; the data path never locks it).
pub type Timelines = Arc<Mutex<HashMap<String, Timeline>>>;

pub async fn watch(
    target: Target,
    mut prober: Prober,
    statuses: SharedStatuses,
    timelines: Timelines,
    histories: LagHistories,
) {
    let mut ticks = tokio::time::interval(target.interval);
    // A slow check delays the next one rather than firing a burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut outcome = prober.check(target.interval).await;
        let now = Instant::now();
        if let Outcome::Seen(obs) = &mut outcome {
            obs.primary_down = target
                .primary
                .as_ref()
                .is_some_and(|p| statuses.load().get(p).is_some_and(|s| !s.reachable));
            measure_on_timeline(&target, obs, &timelines, now);
        }
        let lag = match &outcome {
            Outcome::Seen(obs) => obs.effective_lag(),
            _ => None,
        };
        update(&statuses, &target.addr, |prev| {
            BackendStatus::next(prev, &target.addr, outcome.clone(), &target.policy, now)
        });
        history::record(&histories, &target.addr, now, lag);
    }
}

/// A primary's check extends its timeline; a replica's is measured on its primary's.
pub(super) fn measure_on_timeline(
    target: &Target,
    obs: &mut Observation,
    timelines: &Timelines,
    now: Instant,
) {
    let parse = |g: &Option<String>| g.as_deref().and_then(|g| GtidPos::parse(g).ok());
    let mut timelines = timelines.locked();
    if target.is_primary {
        if let Some(written) = parse(&obs.gtid_binlog) {
            timelines
                .entry(target.addr.clone())
                .or_default()
                .observe(written, now);
        }
    }
    if let (Some(primary), Some(applied)) = (&target.primary, parse(&obs.gtid)) {
        let timeline = timelines.get(primary);
        // With the primary gone its timeline stops, and every replica's lag would grow
        // alike with the outage: measured when the primary was last seen, a replica that
        // had everything then stays fresh, and one stopped an hour before stays an hour
        // behind.
        let at = match timeline.and_then(Timeline::last_seen) {
            Some(seen) if obs.primary_down => seen,
            _ => now,
        };
        obs.gtid_lag = match timeline.and_then(|t| t.lag(&applied, at)) {
            Some(Lag::Exact(lag)) => Some(lag),
            // Older than the monitor: the server's own Seconds_Behind_Master, when it shows
            // more than the lower bound, knows better.
            Some(Lag::AtLeast(lag)) => Some(obs.lag.map_or(lag, |behind| behind.max(lag))),
            None => None,
        };
    }
}

/// Replaces `addr`'s status with `f(current)`. The new status is computed from whatever is
/// current at the moment of the swap (retrying if another writer got in between), so a
/// `mark_down` from the data path is never lost under a check that started before it.
pub fn update(
    statuses: &Statuses,
    addr: &str,
    f: impl Fn(Option<&BackendStatus>) -> BackendStatus,
) {
    let mut change = None;
    statuses.map.rcu(|map| {
        let prev = map.get(addr);
        let next = Arc::new(f(prev.map(Arc::as_ref)));
        change = Some((prev.map(|p| p.state), Arc::clone(&next)));
        let mut map = StatusMap::clone(map);
        map.insert(addr.to_string(), next);
        map
    });
    statuses.generation.fetch_add(1, Ordering::Release);
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
