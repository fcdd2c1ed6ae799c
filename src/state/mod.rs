//! Runtime state: the validated config and what is built from it, behind ArcSwap so a
//! reload swaps it whole while sessions keep the snapshot they started a statement with.

pub mod health;
pub mod pause;
pub mod registry;
pub mod reload;
pub mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::backend::Pools;
use crate::config::{Config, TenantConfig, UserConfig};
use crate::protocol::handshake::ServerInfo;
use crate::router::Router;

pub use health::Health;
pub use pause::Pauses;
pub use registry::Registry;
pub use stats::Stats;

/// Everything a session reads per statement.
pub struct RuntimeState {
    pub config: Arc<Config>,
    /// Tenants by name. A reload keeps the same `Arc` for a tenant whose settings did not
    /// change, so its sessions can tell in one pointer comparison.
    pub tenants: HashMap<String, Arc<TenantConfig>>,
    pub shared: Arc<Shared>,
    pub connect_timeout: Duration,
    /// Largest packet accepted from a client.
    pub max_client_packet: usize,
    /// How long a statement waits on a paused tenant before it gets an ERR.
    pub pause_max_hold: Duration,
}

/// What outlives any one configuration: connections, what was learned about backends,
/// counters, live sessions and pauses.
#[derive(Default)]
pub struct Shared {
    pub router: Router,
    pub pools: Arc<Pools>,
    pub health: Health,
    pub stats: Stats,
    pub registry: Arc<Registry>,
    pub pauses: Pauses,
    /// Reloads applied and refused, for metrics.
    pub reloads: reload::ReloadCounts,
    /// Version and capabilities shown to clients: a backend's own, once one was reached.
    pub server_info: ArcSwap<ServerInfo>,
    /// The file `RELOAD` and SIGHUP read again.
    pub config_path: Option<PathBuf>,
}

/// The handle every task holds: load a snapshot, never keep it across statements.
pub type SharedState = Arc<ArcSwap<RuntimeState>>;

impl RuntimeState {
    pub fn new(config: Config) -> Self {
        Self::with_shared(config, Arc::new(Shared::default()), &HashMap::new())
    }

    /// A state for `config` loaded from `path`, so it can be reloaded.
    pub fn from_file(config: Config, path: PathBuf) -> Self {
        let shared = Shared {
            config_path: Some(path),
            ..Shared::default()
        };
        Self::with_shared(config, Arc::new(shared), &HashMap::new())
    }

    fn with_shared(
        config: Config,
        shared: Arc<Shared>,
        previous: &HashMap<String, Arc<TenantConfig>>,
    ) -> Self {
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let arc = match previous.get(&t.name) {
                    Some(old) if **old == *t => Arc::clone(old),
                    _ => Arc::new(t.clone()),
                };
                (t.name.clone(), arc)
            })
            .collect();
        RuntimeState {
            config: Arc::new(config),
            tenants,
            shared,
            connect_timeout: Duration::from_secs(5),
            max_client_packet: 64 * 1024 * 1024,
            pause_max_hold: Duration::from_secs(60),
        }
    }

    /// The state that replaces this one when `config` is loaded.
    pub fn successor(&self, config: Config) -> Self {
        let mut next = Self::with_shared(config, Arc::clone(&self.shared), &self.tenants);
        next.connect_timeout = self.connect_timeout;
        next.max_client_packet = self.max_client_packet;
        next.pause_max_hold = self.pause_max_hold;
        next
    }

    pub fn shared(self) -> SharedState {
        Arc::new(ArcSwap::from_pointee(self))
    }

    pub fn tenant(&self, name: &str) -> Option<&Arc<TenantConfig>> {
        self.tenants.get(name)
    }

    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.config.users.iter().find(|u| u.name == name)
    }

    pub fn tenant_of_schema(&self, schema: &str) -> Option<&Arc<TenantConfig>> {
        self.config
            .tenants
            .iter()
            .find(|t| t.schemas.iter().any(|s| s == schema))
            .and_then(|t| self.tenants.get(&t.name))
    }

    /// Reads a backend's greeting so clients see its version and capabilities.
    pub async fn learn_server_info(&self) {
        let Some(t) = self.config.tenants.first() else {
            return;
        };
        if let Some(info) =
            crate::backend::conn::probe_server_info(&t.primary, self.connect_timeout).await
        {
            self.shared.server_info.store(info);
        }
    }
}
