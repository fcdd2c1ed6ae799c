//! Runtime state: the validated config and what is built from it, behind ArcSwap so a
//! reload swaps it whole while sessions keep the snapshot they started a statement with.

pub mod auth;
pub mod bounded;
pub mod consistency;
pub mod digests;
pub mod directory;
pub mod health;
pub mod limits;
pub mod lock;
pub mod pause;
pub mod per_worker;
pub mod readers;
pub mod registry;
pub mod reload;
pub mod signals;
pub mod stats;
pub mod workers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::backend::Pools;
use crate::config::{Config, TenantConfig, UserConfig};
use crate::monitor::{self, Monitor, MonitorHandle};
use crate::protocol::caching_sha2::RsaKey;
use crate::protocol::handshake::ServerInfo;
use crate::protocol::tls::{self, TlsError};
use crate::router::Router;

/// Backends whose greetings are read at start to find the capabilities all of them have
/// (distinct addresses: a config of thousands of tenants names a few servers).
const MAX_PROBED: usize = 64;

pub use directory::{Directory, SchemaOwner};
pub use health::Health;
pub use pause::Pauses;
pub use registry::Registry;
pub use stats::Stats;

/// Everything a session reads per statement.
pub struct RuntimeState {
    pub config: Arc<Config>,
    /// Tenants by name and schema, users by name.
    pub directory: Directory,
    pub shared: Arc<Shared>,
    /// Backend health, lag and GTID positions; `None` before
    /// [`with_monitor`](Self::with_monitor) (tests' states), when every backend counts as
    /// eligible.
    pub monitor: Option<MonitorHandle>,
    pub connect_timeout: Duration,
    /// Largest packet accepted from a client.
    pub max_client_packet: usize,
    /// How long a statement waits on a paused tenant before it gets an ERR.
    pub pause_max_hold: Duration,
    /// How long a statement waits for a free backend connection.
    pub pool_timeout: Duration,
    /// TLS for clients, when `tls_cert` and `tls_key` are configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS toward backends, by CA file (`tenants[].backend_tls.ca`).
    pub backend_tls: HashMap<String, tokio_rustls::TlsConnector>,
    /// The configured RSA key for caching_sha2_password (`server.rsa_private_key`).
    pub rsa_key: Option<Arc<RsaKey>>,
}

/// A connector per CA file the tenants name.
fn backend_connectors(
    config: &Config,
) -> Result<HashMap<String, tokio_rustls::TlsConnector>, TlsError> {
    let mut out = HashMap::new();
    // An open cluster's tenants are made at run time: their CA is the cluster's.
    let templates = config.clusters.iter().map(|c| &c.template);
    for ca in config
        .tenants
        .iter()
        .chain(templates)
        .filter_map(|t| t.backend_tls_ca.as_ref())
    {
        if out.contains_key(ca) {
            continue;
        }
        out.insert(ca.clone(), tls::connector(ca)?);
    }
    Ok(out)
}

/// What outlives any one configuration: connections, what was learned about backends,
/// counters, live sessions and pauses.
#[derive(Default)]
pub struct Shared {
    pub router: Router,
    pub pools: Arc<Pools>,
    pub health: Health,
    pub stats: Stats,
    pub digests: digests::Digests,
    pub registry: Arc<Registry>,
    pub pauses: Pauses,
    /// Tenants' write positions and primaries' looked-up positions, for reads that must
    /// see more than their own session's writes.
    pub consistency: consistency::Consistency,
    /// Reloads applied and refused, for metrics.
    pub reloads: reload::ReloadCounts,
    /// Held while a reload reads, builds and swaps.
    pub reload_lock: std::sync::Mutex<()>,
    /// An admin port is served (bound at start, for good): a reload must keep its user.
    pub admin_serving: std::sync::atomic::AtomicBool,
    /// Version and capabilities shown to clients: a backend's own, once one was reached.
    pub server_info: ArcSwap<ServerInfo>,
    /// The file `RELOAD` and SIGHUP read again.
    pub config_path: Option<PathBuf>,
    /// Client connections per tenant and per user.
    pub limits: Arc<limits::Limits>,
    /// Set when the proxy shuts down: sessions close at their next transaction boundary.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// caching_sha2_password's cache of passwords proven by full authentication.
    pub sha2_cache: auth::Sha2Cache,
    /// Client logins by method and result, for metrics.
    pub logins: auth::LoginCounts,
    /// The RSA key made at first need when none is configured (once: logins that arrive
    /// while it is being made wait for it instead of each making their own).
    pub generated_rsa_key: tokio::sync::OnceCell<Arc<RsaKey>>,
    /// With `[fleet]`: this instance's link to the others (set once, at start).
    pub fleet: std::sync::OnceLock<Arc<crate::fleet::Fleet>>,
    /// Bounds the classifier's full passes running on blocking threads.
    pub off_loop: OffLoop,
    /// Login work off the event loops (caching_sha2's full hash, RSA decryption), in a
    /// line of its own: a flood of failing logins takes no more than the cores, and no
    /// classifier pass waits behind it.
    pub login_work: OffLoop,
    /// The session workers: their sessions and CPU time, and the balancer's calls.
    pub workers: workers::WorkerBoard,
    /// Sessions reading from each replica server, per worker: what replica choices balance.
    pub readers: readers::Readers,
}

/// Full classifier passes (`frontend::offload`) run at once, at most as many as the cores
/// the process may use: a flood of long statements then takes no more CPU than the event
/// loops could give it, and waits in line beyond that. The line is one for all tenants, in
/// arrival order: another session's new shape waits behind a flood's queued passes (its
/// statements seen before take the light pass and never wait here).
pub struct OffLoop(pub Arc<tokio::sync::Semaphore>);

impl OffLoop {
    /// Runs `f` on a blocking thread once a turn is free, the turn held until `f` ends even
    /// if the task that asked stops waiting. None if it panicked (the panic hook prints where).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let turn = Arc::clone(&self.0).acquire_owned().await.ok()?;
        let job = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            f()
        });
        job.await.ok()
    }
}

impl Default for OffLoop {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        OffLoop(Arc::new(tokio::sync::Semaphore::new(cores)))
    }
}

/// The handle every task holds: load a snapshot, never keep it across statements.
pub type SharedState = Arc<ArcSwap<RuntimeState>>;

/// The lag a read of tenant `t` allows: the tenant's `max_replica_lag`, or less when the
/// statement asks for less (a `max_lag=` hint).
fn lag_limit(t: &TenantConfig, max_lag: Option<Duration>) -> Duration {
    max_lag.map_or(t.max_replica_lag, |h| h.min(t.max_replica_lag))
}

impl RuntimeState {
    pub fn new(config: Config) -> Self {
        Self::with_shared(config, Arc::new(Shared::default()), &Directory::default())
    }

    /// A state for `config` loaded from `path`, so it can be reloaded.
    pub fn from_file(config: Config, path: PathBuf) -> Self {
        let shared = Shared {
            config_path: Some(path),
            ..Shared::default()
        };
        Self::with_shared(config, Arc::new(shared), &Directory::default())
    }

    fn with_shared(config: Config, shared: Arc<Shared>, previous: &Directory) -> Self {
        let directory = Directory::new(&config, previous);
        let pause_max_hold = config.server.pause_max_hold;
        let max_client_packet = config.server.max_packet;
        let pool_timeout = config.server.pool_timeout;
        RuntimeState {
            config: Arc::new(config),
            directory,
            shared,
            monitor: None,
            connect_timeout: Duration::from_secs(5),
            max_client_packet,
            pause_max_hold,
            pool_timeout,
            tls: None,
            backend_tls: HashMap::new(),
            rsa_key: None,
        }
    }

    /// Loads the files the config names: the client TLS certificate and key, the backends'
    /// CA files, the RSA key.
    pub fn with_tls(mut self) -> Result<Self, TlsError> {
        let server = &self.config.server;
        if let (Some(cert), Some(key)) = (&server.tls_cert, &server.tls_key) {
            self.tls = Some(tls::acceptor(cert, key)?);
        }
        self.backend_tls = backend_connectors(&self.config)?;
        if let Some(path) = &self.config.server.rsa_private_key {
            self.rsa_key = Some(Arc::new(
                RsaKey::from_pem_file(path).map_err(TlsError::Rsa)?,
            ));
        }
        Ok(self)
    }

    /// The RSA key clients encrypt their password with: the configured one, else one made
    /// now and kept for the life of the process. Making one takes a good part of a second of
    /// CPU, so it runs off the event loop that serves every session.
    pub async fn rsa_key(&self) -> Result<Arc<RsaKey>, String> {
        if let Some(k) = &self.rsa_key {
            return Ok(Arc::clone(k));
        }
        let key = self
            .shared
            .generated_rsa_key
            .get_or_try_init(|| async {
                let key = tokio::task::spawn_blocking(RsaKey::generate)
                    .await
                    .map_err(|e| e.to_string())??;
                Ok::<_, String>(Arc::new(key))
            })
            .await?;
        Ok(Arc::clone(key))
    }

    /// Whether a client's login may need the generated RSA key: some user is checked against
    /// a caching_sha2_password hash (whose first login authenticates in full) and no key file
    /// is configured.
    pub fn needs_generated_rsa_key(&self) -> bool {
        self.rsa_key.is_none()
            && self.config.users.iter().any(|u| {
                matches!(&u.password, crate::config::UserPassword::Hash(h)
                    if h.plugin() == crate::protocol::handshake::SHA2_PASSWORD)
            })
    }

    /// Whether a login may need the generated RSA key and it is not made yet.
    pub fn rsa_key_to_make(&self) -> bool {
        self.needs_generated_rsa_key() && !self.shared.generated_rsa_key.initialized()
    }

    /// Makes the RSA key now if a login may need it, as MySQL makes its keys at startup:
    /// generating one can take a second or more of CPU on a busy machine, which a client
    /// should not spend out of its handshake timeout.
    pub async fn prepare_rsa_key(&self) {
        if !self.rsa_key_to_make() {
            return;
        }
        match self.rsa_key().await {
            Ok(_) => tracing::info!("RSA key generated for caching_sha2_password logins"),
            Err(e) => tracing::error!(error = %e, "cannot generate an RSA key"),
        }
    }

    /// The state that replaces this one when `config` is loaded. The files it names are
    /// read again, as `check` and a start read them (so certificates renewed in place are
    /// served from now on); one that does not load refuses the reload: applied without it,
    /// a new `require_tls` would refuse every login, TLS being no longer offered.
    pub fn successor(&self, config: Config) -> Result<Self, TlsError> {
        let mut next = Self::with_shared(config, Arc::clone(&self.shared), &self.directory);
        next.connect_timeout = self.connect_timeout;
        let mut next = next.with_tls()?;
        // The monitor keeps running when what it watches is unchanged; else its successor
        // starts from what it knew.
        let same_watch = monitor::settings(&self.config) == monitor::settings(&next.config)
            && monitor::targets(&self.config) == monitor::targets(&next.config);
        next.monitor = match &self.monitor {
            Some(m) if same_watch => Some(m.clone()),
            Some(m) => Some(Monitor::start_after(&next.config, m)),
            // A state built without a monitor (tests that want none) stays without.
            None => None,
        };
        Ok(next)
    }

    /// Starts the backend monitor (spawns on the current tokio runtime): with `[monitor]`
    /// as its user, else with each tenant's own login and GTID-measured lag.
    pub fn with_monitor(mut self) -> Self {
        self.monitor = Some(Monitor::start(&self.config));
        self
    }

    /// Whether a replica may take new reads of a tenant allowing `max_lag`; always true
    /// without a monitor. Lock-free.
    pub fn replica_eligible(&self, addr: &str, max_lag: Duration) -> bool {
        self.monitor
            .as_ref()
            .is_none_or(|m| m.replica_eligible(addr, max_lag))
    }

    /// Where a tenant's writes go: its configured primary, unless the monitor sees that
    /// server read-only and one of the tenant's other servers writable (a promotion made
    /// elsewhere), which then takes the writes.
    pub fn primary_addr<'a>(&self, t: &'a TenantConfig) -> &'a str {
        match &self.monitor {
            Some(m) => m.write_target(&t.primary, t.replicas.iter().map(|r| r.addr.as_str())),
            None => &t.primary,
        }
    }

    /// Whether a tenant's reads may go to replica `addr` now: not marked down or offline
    /// by the data path or ops, and eligible by the monitor (if there is one).
    pub fn replica_usable(&self, t: &TenantConfig, addr: &str, max_lag: Option<Duration>) -> bool {
        self.shared.health.is_up(addr) && self.replica_eligible(addr, lag_limit(t, max_lag))
    }

    /// [`replica_usable`](Self::replica_usable), the monitor's part answered from `memo`
    /// while it holds (see `MonitorHandle::replica_eligible_memo`).
    pub fn replica_usable_memo(
        &self,
        t: &TenantConfig,
        addr: &str,
        max_lag: Option<Duration>,
        memo: &mut crate::monitor::EligibleMemo,
    ) -> bool {
        let lag = lag_limit(t, max_lag);
        self.shared.health.is_up(addr)
            && (self.monitor.as_ref()).is_none_or(|m| m.replica_eligible_memo(memo, addr, lag))
    }

    /// The data path could not reach `addr`.
    pub fn report_unreachable(&self, addr: &str) {
        self.shared.health.mark_down(addr);
        if let Some(m) = &self.monitor {
            m.mark_down(addr);
        }
    }

    pub fn shared(self) -> SharedState {
        Arc::new(ArcSwap::from_pointee(self))
    }

    /// A tenant by name: a named one, or one the open cluster makes of that name.
    pub fn tenant(&self, name: &str) -> Option<Arc<TenantConfig>> {
        self.directory.tenant(name)
    }

    /// The user logging in as `name` (a template's instance bound to its tenant).
    pub fn user(&self, name: &str) -> Option<Arc<UserConfig>> {
        self.directory.user(&self.config, name)
    }

    /// The tenant owning `schema`, by name or by the open cluster's patterns.
    pub fn tenant_of_schema(&self, schema: &str) -> Option<Arc<TenantConfig>> {
        self.directory.tenant_of_schema(schema)
    }

    /// The pools' periodic sweep (`Pools::sweep`), keeping the groups of the config's
    /// tenants; tenants no read has seen falling back to the primary for a while, and
    /// refusals whose time is up (until then replica choices look them up, lock-free).
    pub fn sweep_pools(&self, now: std::time::Instant) {
        self.shared
            .pools
            .sweep(now, |tenant| self.config.tenant(tenant).is_some());
        self.shared.health.sweep(now);
    }

    /// Reads a backend's greeting so clients see its version and capabilities. False when
    /// there is no backend yet (a fleet instance before its document) or it did not answer.
    pub async fn learn_server_info(&self) -> bool {
        let first = self.config.tenants.first();
        let Some(primary) = first
            .map(|t| &t.primary)
            .or_else(|| self.config.clusters.first().map(|c| &c.template.primary))
        else {
            return false;
        };
        let first = crate::backend::conn::probe_server_info(primary, self.connect_timeout).await;
        let Some(first) = first else {
            return false;
        };
        // Only once the first answered: while it is down this is retried every second.
        let others = self.probe_other_backends(primary).await;
        let mut info = (*first).clone();
        for other in others.iter().flatten() {
            info.keep_common(other);
        }
        self.shared.router.server_version.learn(&info.version);
        self.shared.server_info.store(Arc::new(info));
        true
    }

    /// The greetings of the configured backends other than `primary`, at once (at most
    /// [`MAX_PROBED`]): those that do not answer within a second are left out.
    async fn probe_other_backends(&self, primary: &str) -> Vec<Option<Arc<ServerInfo>>> {
        let templates = self.config.clusters.iter().map(|c| &c.template);
        let mut addrs = std::collections::BTreeSet::new();
        for t in self.config.tenants.iter().chain(templates) {
            addrs.insert(t.primary.as_str());
            addrs.extend(t.replicas.iter().map(|r| r.addr.as_str()));
        }
        addrs.remove(primary);
        let limit = self.connect_timeout.min(Duration::from_secs(1));
        let mut probes = tokio::task::JoinSet::new();
        for addr in addrs.into_iter().take(MAX_PROBED) {
            let addr = addr.to_string();
            probes
                .spawn(async move { crate::backend::conn::probe_server_info(&addr, limit).await });
        }
        probes.join_all().await
    }
}
