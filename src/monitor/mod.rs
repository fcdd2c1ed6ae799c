//! The backend monitor (control plane): one task per backend checks reachability,
//! `read_only`, replication and lag, and the GTID position, and publishes the result as a
//! lock-free snapshot the data path reads per statement.
//!
//! Start it with [`Monitor::start`]; ask the [`MonitorHandle`] whether a replica may take
//! new reads ([`MonitorHandle::replica_eligible`]), or tell it that the data path saw a
//! backend refuse a connection ([`MonitorHandle::mark_down`]).

mod error;
pub mod gtid;
pub mod history;
mod probe;
mod status;
mod task;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::config::{Config, MonitorConfig};
use crate::state::lock::Unpoisoned;
use timeline::Timeline;

pub use error::MonitorError;
pub use gtid::{Gtid, GtidPos};
pub use history::{LagHistories, LagHistory, LagPoint};
pub use probe::Flavor;
pub use status::{BackendState, BackendStatus, Observation, Outcome, Policy};
pub use task::{Login, SharedStatuses, StatusMap, Statuses, Target, Timelines};

/// Starts monitors; see [`Monitor::start`].
pub struct Monitor;

impl Monitor {
    /// Spawns one task per distinct backend of `config` (on the current tokio runtime).
    /// With `[monitor]` every server is checked as its user (replication threads too);
    /// without, as a login of a tenant on it, and lag is measured on GTIDs alone. A server
    /// with no usable login is left unchecked (eligible), and `check` says so.
    pub fn start(config: &Config) -> MonitorHandle {
        Self::start_with(&settings(config), targets(config))
    }

    /// [`start`](Self::start) for a reload that changed what is watched. A server still
    /// watched, with the same primary, starts from its last status, its lag history and
    /// its primary's GTID timeline: started blank, a replica known to be down or behind was
    /// "unchecked, so eligible" until the first check, a replica taken out needed no `rise`
    /// checks to come back, and a timeline as young as the reload called a replica lacking
    /// the writes of the last `max_replica_lag` fresh, so every reload put bad replicas
    /// back in rotation for a while.
    pub fn start_after(config: &Config, previous: &MonitorHandle) -> MonitorHandle {
        Self::start_from(&settings(config), targets(config), previous.known())
    }

    /// Spawns one task per target. A target whose address cannot be used is published as
    /// down with the reason, rather than silently left out.
    pub fn start_with(settings: &MonitorConfig, targets: Vec<Target>) -> MonitorHandle {
        Self::start_from(settings, targets, Known::default())
    }

    fn start_from(settings: &MonitorConfig, targets: Vec<Target>, known: Known) -> MonitorHandle {
        let carried = known.carried(&targets);
        let statuses = Arc::new(Statuses::starting_with(carried.statuses));
        let timelines: Timelines = Arc::new(Mutex::new(carried.timelines));
        let histories: LagHistories = Arc::new(Mutex::new(carried.histories));
        let mut tasks = Vec::with_capacity(targets.len());
        let mut primaries = HashMap::new();
        for target in targets {
            primaries.insert(target.addr.clone(), target.primary.clone());
            let tls_ca = target.tls_ca.as_deref();
            match probe::Prober::new(&target.addr, settings, &target.login, tls_ca) {
                Ok(prober) => {
                    let statuses = Arc::clone(&statuses);
                    let timelines = Arc::clone(&timelines);
                    let histories = Arc::clone(&histories);
                    let watching = task::watch(target, prober, statuses, timelines, histories);
                    let handle = tokio::spawn(watching);
                    tasks.push(handle.abort_handle());
                }
                Err(e) => task::update(&statuses, &target.addr, |prev| {
                    BackendStatus::marked_down(prev, &target.addr, &e.to_string(), Instant::now())
                }),
            }
        }
        MonitorHandle {
            inner: Arc::new(Inner {
                statuses,
                timelines,
                histories,
                primaries,
                tasks: Mutex::new(tasks),
            }),
        }
    }
}

/// What a running monitor knows, for the one a reload starts in its place.
#[derive(Default)]
struct Known {
    statuses: Arc<StatusMap>,
    timelines: HashMap<String, Timeline>,
    histories: HashMap<String, LagHistory>,
    /// Each watched address's primary (the timeline its lag was measured on).
    primaries: HashMap<String, Option<String>>,
}

impl Known {
    /// What still holds for `targets`: the status and history of a server watched before
    /// with the same primary (one now replicating from elsewhere had its lag measured on
    /// another timeline), and the timelines of primaries still watched.
    fn carried(mut self, targets: &[Target]) -> Carried {
        let mut carried = Carried::default();
        for t in targets {
            if self.primaries.get(&t.addr) == Some(&t.primary) {
                if let Some(s) = self.statuses.get(&t.addr) {
                    carried.statuses.insert(t.addr.clone(), Arc::clone(s));
                }
                if let Some(h) = self.histories.remove(&t.addr) {
                    carried.histories.insert(t.addr.clone(), h);
                }
            }
            // Moved, not copied again: `known()` copied them out of the old monitor already.
            if let (true, Some(timeline)) = (t.is_primary, self.timelines.remove(&t.addr)) {
                carried.timelines.insert(t.addr.clone(), timeline);
            }
        }
        carried
    }
}

#[derive(Default)]
struct Carried {
    statuses: StatusMap,
    timelines: HashMap<String, Timeline>,
    histories: HashMap<String, LagHistory>,
}

/// The monitor's settings: `[monitor]`, or the defaults without it.
pub fn settings(config: &Config) -> MonitorConfig {
    config
        .monitor
        .clone()
        .unwrap_or_else(MonitorConfig::without_section)
}

/// One target per distinct address across all tenants that have a login for it. A server
/// several tenants share is checked once, at the shortest `health_interval` among them, and
/// judged by the most lenient `max_replica_lag` of the tenants that read from it (each
/// tenant's own applies at its reads, see [`MonitorHandle::replica_eligible`]).
pub fn targets(config: &Config) -> Vec<Target> {
    let settings = settings(config);
    let mut by_addr: BTreeMap<String, Target> = BTreeMap::new();
    let logins = config.monitor_logins();
    // The open cluster's servers serve tenants no one named: checked as the cluster.
    let open = config.open_cluster().map(|c| c.tenant(&c.name));
    for tenant in config.tenants.iter().chain(open.as_ref()) {
        let Some(login) = logins.get(tenant) else {
            continue;
        };
        let mut add = |addr: &str, primary: Option<&str>, read_lag: Option<Duration>| {
            let t = by_addr.entry(addr.to_string()).or_insert_with(|| Target {
                addr: addr.to_string(),
                interval: tenant.health_interval,
                policy: Policy {
                    replica: false,
                    max_lag: Duration::MAX,
                    rise: settings.rise,
                    fall: settings.fall,
                },
                tls_ca: tenant.backend_tls_ca.clone(),
                login: login.clone(),
                primary: None,
                is_primary: false,
            });
            t.interval = t.interval.min(tenant.health_interval);
            // A server one tenant reaches over TLS is checked over TLS, whichever tenant
            // came first: its logins must not cross the network in plaintext.
            if t.tls_ca.is_none() {
                t.tls_ca = tenant.backend_tls_ca.clone();
            }
            t.is_primary |= primary.is_none();
            if t.primary.is_none() {
                t.primary = primary.map(str::to_owned);
            }
            // Judged by the most lenient tenant reading from it: a stricter tenant's limit
            // is applied at its own reads (`replica_eligible`), and one tenant's 1 s must not
            // take the replica from another's 60 s.
            if let Some(lag) = read_lag {
                t.policy.max_lag = if t.policy.replica {
                    t.policy.max_lag.max(lag)
                } else {
                    lag
                };
                t.policy.replica = true;
            }
        };
        add(&tenant.primary, None, None);
        for replica in &tenant.replicas {
            let lag = Some(tenant.max_replica_lag);
            add(&replica.addr, Some(&tenant.primary), lag);
        }
    }
    by_addr.into_values().collect()
}

/// One session's last answer of [`MonitorHandle::replica_eligible_memo`].
#[derive(Default)]
pub struct EligibleMemo(Option<Remembered>);

struct Remembered {
    /// The map the answer came from: a monitor a reload started counts its own updates.
    statuses: SharedStatuses,
    generation: u64,
    addr: Box<str>,
    max_lag: Duration,
    eligible: bool,
}

/// The running monitor. Cheap to clone; the tasks end with [`stop`](Self::stop) or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct MonitorHandle {
    inner: Arc<Inner>,
}

struct Inner {
    statuses: SharedStatuses,
    /// Handed on to the monitor a reload starts in this one's place.
    timelines: Timelines,
    /// Recent lag per backend, for the status page (control plane only).
    histories: LagHistories,
    /// The addresses with a task, each with its primary: `mark_down` of anything else
    /// would never be undone.
    primaries: HashMap<String, Option<String>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        abort_all(&self.tasks);
    }
}

fn abort_all(tasks: &Mutex<Vec<AbortHandle>>) {
    let mut tasks = tasks.locked();
    for task in tasks.drain(..) {
        task.abort();
    }
}

impl MonitorHandle {
    /// A handle with nothing to watch: every backend is eligible.
    pub fn idle() -> Self {
        MonitorHandle {
            inner: Arc::new(Inner {
                statuses: SharedStatuses::default(),
                timelines: Timelines::default(),
                histories: LagHistories::default(),
                primaries: HashMap::new(),
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// What this monitor knows, for [`Monitor::start_after`] (control plane: copies).
    fn known(&self) -> Known {
        Known {
            statuses: self.inner.statuses.load_full(),
            timelines: self.inner.timelines.locked().clone(),
            histories: self.inner.histories.locked().clone(),
            primaries: self.inner.primaries.clone(),
        }
    }

    /// Where writes go: `primary`, unless it was last seen read-only and one of `others`
    /// was last seen writable (a promotion made elsewhere). By what the servers said at
    /// their last answer: a check that times out (one slow second) must not send writes
    /// back to the read-only server and drop every session's primary connection twice.
    pub fn write_target<'a>(
        &self,
        primary: &'a str,
        others: impl Iterator<Item = &'a str> + Clone,
    ) -> &'a str {
        let seen = |addr: &str, read_only: bool| {
            self.status_is(addr, |s| {
                s.observed.seen() && s.observed.read_only == read_only
            })
        };
        if !seen(primary, true) {
            return primary;
        }
        // One that answers first: after a second promotion, the first promoted server,
        // dead now, was last seen writable too. (Two looks, no list: after a promotion
        // this runs for every statement to the primary.)
        let writable = others.filter(|a| seen(a, false));
        writable
            .clone()
            .find(|a| self.status_is(a, |s| s.reachable))
            .or_else(|| writable.clone().next())
            .unwrap_or(primary)
    }

    /// Whether both handles are the same running monitor.
    pub fn same_as(&self, other: &MonitorHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// How many of its checking tasks still run.
    pub fn running(&self) -> usize {
        let tasks = self.inner.tasks.locked();
        tasks.iter().filter(|t| !t.is_finished()).count()
    }

    /// Ends the checks. The last statuses stay readable.
    pub fn stop(&self) {
        abort_all(&self.inner.tasks);
    }

    /// How many backends are watched (one task each).
    pub fn backend_count(&self) -> usize {
        self.inner.primaries.len()
    }

    /// Every checked backend's latest status, by address.
    pub fn snapshot(&self) -> Arc<StatusMap> {
        self.inner.statuses.load_full()
    }

    /// One backend's latest status; `None` before its first check or if not monitored.
    pub fn status(&self, addr: &str) -> Option<Arc<BackendStatus>> {
        self.inner.statuses.load().get(addr).cloned()
    }

    /// Whether `addr` has a status and `f` holds for it: asked at every write (has the
    /// primary moved?), so the status is looked at in place, not its `Arc` cloned (an
    /// atomic write to a line every worker reads).
    pub fn status_is(&self, addr: &str, f: impl Fn(&BackendStatus) -> bool) -> bool {
        self.inner.statuses.load().get(addr).is_some_and(|s| f(s))
    }

    /// `addr`'s recent lag, oldest first (empty before its first check).
    pub fn lag_history(&self, addr: &str) -> Vec<LagPoint> {
        let h = self.inner.histories.locked();
        h.get(addr)
            .map(|h| h.points().copied().collect())
            .unwrap_or_default()
    }

    /// The shared map itself, for readers that keep it (admin, metrics).
    pub fn statuses(&self) -> SharedStatuses {
        Arc::clone(&self.inner.statuses)
    }

    /// Whether a replica may take new reads of a tenant allowing `max_lag`: reachable,
    /// both replication threads running, lag known and within `max_lag`, and, if it was
    /// taken out before, back for `rise` good checks in a row. A backend the monitor has
    /// not (yet) checked is eligible: no news is not bad news. Lock-free.
    pub fn replica_eligible(&self, addr: &str, max_lag: Duration) -> bool {
        self.inner
            .statuses
            .load()
            .get(addr)
            .is_none_or(|s| s.replica_eligible(max_lag))
    }

    /// [`replica_eligible`](Self::replica_eligible), answered from `memo` while no status
    /// was published since it was filled: a session reading from one replica asks at every
    /// read, and the map lookup cost more than the rest of choosing the replica.
    pub fn replica_eligible_memo(
        &self,
        memo: &mut EligibleMemo,
        addr: &str,
        max_lag: Duration,
    ) -> bool {
        let generation = self.inner.statuses.generation();
        if let Some(m) = memo.0.as_ref().filter(|m| {
            m.generation == generation
                && Arc::ptr_eq(&m.statuses, &self.inner.statuses)
                && m.max_lag == max_lag
                && *m.addr == *addr
        }) {
            return m.eligible;
        }
        let eligible = self.replica_eligible(addr, max_lag);
        memo.0 = Some(Remembered {
            statuses: Arc::clone(&self.inner.statuses),
            generation,
            addr: addr.into(),
            max_lag,
            eligible,
        });
        eligible
    }

    /// Whether a backend counts as up (for a primary: it answers). Unknown is up.
    pub fn is_up(&self, addr: &str) -> bool {
        self.inner
            .statuses
            .load()
            .get(addr)
            .is_none_or(|s| s.is_up())
    }

    /// The data path could not connect (refused): not eligible from now on, until `rise`
    /// good checks in a row. Addresses the monitor does not check are ignored, since no
    /// check would ever bring them back.
    pub fn mark_down(&self, addr: &str) {
        if !self.inner.primaries.contains_key(addr) {
            return;
        }
        task::update(&self.inner.statuses, addr, |prev| {
            BackendStatus::marked_down(
                prev,
                addr,
                "refused a connection on the data path",
                Instant::now(),
            )
        });
    }
}

impl std::fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHandle")
            .field("backends", &self.inner.primaries.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
