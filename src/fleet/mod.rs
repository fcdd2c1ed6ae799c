//! A fleet of Switchyards that acts as one, on etcd: each instance registers under a lease,
//! applies the pauses, OFFLINE backends and config document stored under `state/` through a
//! watch, and acks each pause once it holds the tenant; the admin commands write fleet-wide
//! changes there and PAUSE waits for every live instance's ack. Without `[fleet]` none of
//! this runs.
//!
//! An instance that loses etcd keeps what it last applied, says so (log, metric, SHOW
//! FLEET), refuses fleet-wide changes instead of making them locally, and reads the whole
//! `state/` prefix again when etcd is back.

mod document;
mod error;
mod keys;
mod kill;
mod members;
mod ops;
mod record;
mod sync;
mod undo;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use etcd_client::{Client, ConnectOptions};
use tokio::sync::{watch, Notify};

use crate::config::FleetConfig;
use crate::state::lock::Unpoisoned;
use crate::state::SharedState;

pub use document::{push, PushReport};
pub use error::FleetError;
pub use keys::Keys;
pub use kill::{KillAnswer, KillRequest};
pub use members::{list as members, record as own_record, Member, MemberState};
pub use ops::{PauseAck, PauseFailed};
pub use record::{now_ms, InstanceRecord};

/// One instance's handle on its fleet, kept in `Shared` for the admin commands.
pub struct Fleet {
    pub config: FleetConfig,
    pub keys: Keys,
    started: SystemTime,
    link: Mutex<Link>,
    /// The config document version applied: the etcd revision that wrote it (0: still
    /// the local file).
    config_version: AtomicI64,
    /// The newest document refused, and why.
    refusal: Mutex<Option<(i64, String)>>,
    /// Times the link to etcd was lost.
    losses: AtomicU64,
    /// Something this instance reports changed: heartbeat now rather than at the next tick.
    changed: Notify,
    /// True once the first read of `state/` was applied (or given up on).
    synced: watch::Sender<bool>,
    /// The instance's own file: its `[fleet]` and listen addresses go into every document.
    local_file: Option<PathBuf>,
    /// The lease of the last round (0: none): revoked at the next one, whose registration
    /// it would otherwise hold until it runs out.
    last_lease: AtomicI64,
    /// A lease whose revoke etcd did not take (it was restarting): tried again next round;
    /// nothing renews it, so it runs out by itself within `lease_ttl` otherwise.
    unrevoked: AtomicI64,
    /// `state/` was read from etcd at least once: a cached document must not replace
    /// what etcd said (see `document::apply_cached`).
    read_etcd: std::sync::atomic::AtomicBool,
    /// KILL requests this instance made: each request's key is its start time, this count
    /// and its name.
    kill_requests: AtomicU64,
    /// KILL requests under way from this instance at once: bounded, so clients sending
    /// KILLs of ids nobody has cannot turn each into etcd writes on every instance.
    kill_slots: tokio::sync::Semaphore,
    /// Undos of abandoned commands still under way (`undo::Undo`): leaving waits for them.
    undoing: Arc<watch::Sender<usize>>,
    /// The control plane's runtime (the one the fleet starts on), which undos run on.
    runtime: Option<tokio::runtime::Handle>,
}

enum Link {
    /// Boxed: the client is some kilobytes of channel and interceptor state.
    Up {
        client: Box<Client>,
        lease: i64,
    },
    Down {
        since: Instant,
        reason: String,
    },
}

impl Fleet {
    pub fn new(config: FleetConfig, local_file: Option<PathBuf>) -> Self {
        Fleet {
            keys: Keys::new(&config.name),
            config,
            started: SystemTime::now(),
            link: Mutex::new(Link::Down {
                since: Instant::now(),
                reason: "not connected yet".into(),
            }),
            config_version: AtomicI64::new(0),
            refusal: Mutex::new(None),
            losses: AtomicU64::new(0),
            changed: Notify::new(),
            synced: watch::channel(false).0,
            local_file,
            last_lease: AtomicI64::new(0),
            unrevoked: AtomicI64::new(0),
            read_etcd: std::sync::atomic::AtomicBool::new(false),
            kill_requests: AtomicU64::new(0),
            kill_slots: tokio::sync::Semaphore::new(kill::MAX_REQUESTS),
            undoing: Arc::new(watch::channel(0).0),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// A client and this instance's lease, or why there is none now.
    pub fn client(&self) -> Result<(Client, i64), FleetError> {
        match &*self.link.locked() {
            Link::Up { client, lease } => Ok((Client::clone(client), *lease)),
            Link::Down { since, reason } => Err(FleetError::Unreachable {
                for_secs: since.elapsed().as_secs_f64(),
                reason: reason.clone(),
            }),
        }
    }

    pub fn connected(&self) -> bool {
        self.client().is_ok()
    }

    fn set_up(&self, client: Client, lease: i64) {
        let mut link = self.link.locked();
        if let Link::Down { since, .. } = &*link {
            tracing::info!(
                fleet = %self.config.name,
                down_for_ms = since.elapsed().as_millis() as u64,
                "fleet: etcd reached, state read and instance registered"
            );
        }
        *link = Link::Up {
            client: Box::new(client),
            lease,
        };
    }

    fn set_down(&self, reason: &FleetError) {
        let mut link = self.link.locked();
        match &mut *link {
            Link::Up { .. } => {
                self.losses.fetch_add(1, Ordering::Relaxed);
                tracing::error!(fleet = %self.config.name, error = %reason,
                    "fleet: lost etcd; serving with the last state applied, fleet-wide admin changes refused");
                *link = Link::Down {
                    since: Instant::now(),
                    reason: reason.to_string(),
                };
            }
            Link::Down { reason: r, .. } => {
                let text = reason.to_string();
                // Not etcd being away (said once, above): a name to fix, said when it starts.
                if matches!(reason, FleetError::NameTaken(_)) && *r != text {
                    tracing::error!(fleet = %self.config.name, error = %reason, "fleet: not registered");
                }
                *r = text;
            }
        }
    }

    pub fn config_version(&self) -> i64 {
        self.config_version.load(Ordering::Acquire)
    }

    pub fn refusal(&self) -> Option<(i64, String)> {
        self.refusal.locked().clone()
    }

    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Relaxed)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed().unwrap_or_default()
    }

    /// When this instance started, in ms since the epoch: a restart's requests never reuse
    /// a key.
    fn uptime_origin_ms(&self) -> u128 {
        self.started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    }

    /// Connects to the configured endpoints (lazily: a dead etcd shows at the first request).
    async fn connect(&self) -> Result<Client, FleetError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(self.config.etcd_timeout)
            // A silent peer (a partition, a stopped process) breaks the watch in seconds.
            .with_keep_alive(Duration::from_secs(1), self.config.etcd_timeout)
            .with_keep_alive_while_idle(true);
        let connect = Client::connect(&self.config.etcd, Some(options));
        within(self.config.etcd_timeout, "connect", connect).await
    }
}

/// Runs `fut` (an etcd request) with a deadline.
pub async fn within<T, E: Into<FleetError>>(
    limit: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, FleetError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(FleetError::Timeout {
            what,
            within: limit,
        }),
    }
}

/// With `[fleet]`: makes the instance's fleet handle, starts keeping it in step, and waits
/// (at most `etcd_timeout`) for the first read of the fleet's state, so an instance that
/// joins while a tenant is paused holds it before its first client. Returns the task.
pub async fn start(state: &SharedState) -> Option<tokio::task::JoinHandle<()>> {
    let rt = state.load_full();
    let config = rt.config.fleet.clone()?;
    let wait = config.etcd_timeout;
    let fleet = Arc::new(Fleet::new(config, rt.shared.config_path.clone()));
    if rt.shared.fleet.set(Arc::clone(&fleet)).is_err() {
        return None;
    }
    let mut synced = fleet.synced.subscribe();
    let task = tokio::spawn(sync::run(Arc::clone(&fleet), Arc::clone(state)));
    let reached = tokio::time::timeout(wait, synced.wait_for(|s| *s)).await;
    if reached.is_err() || fleet.client().is_err() {
        match document::apply_cached(&fleet, state) {
            Some(version) => {
                tracing::warn!(fleet = %fleet.config.name, version, "fleet: etcd not reached at start: serving the config document cached when it last ran")
            }
            None if fleet.config_version() == 0 => {
                tracing::warn!(fleet = %fleet.config.name, "fleet: etcd not reached at start: serving with the local config")
            }
            None => {}
        }
    }
    Some(task)
}

/// On shutdown: leaves the fleet at once (its keys go) instead of when the lease runs out.
pub async fn leave(state: &SharedState) {
    let rt = state.load_full();
    if let Some(f) = rt.shared.fleet.get() {
        members::leave(f).await;
    }
}
