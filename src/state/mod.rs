//! Runtime state: the validated config and what is built from it, behind ArcSwap so a
//! reload swaps it whole while sessions keep the snapshot they started a statement with.

pub mod health;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::backend::Pools;
use crate::config::{Config, TenantConfig, UserConfig};
use crate::monitor::{Monitor, MonitorHandle};
use crate::protocol::handshake::ServerInfo;
use crate::router::Router;

pub use health::Health;

/// Everything a session reads per statement.
pub struct RuntimeState {
    pub config: Arc<Config>,
    pub router: Arc<Router>,
    pub pools: Arc<Pools>,
    pub health: Arc<Health>,
    /// Backend health, lag and GTID positions; `None` without `[monitor]` (or before
    /// [`with_monitor`](Self::with_monitor)), when every backend counts as eligible.
    pub monitor: Option<MonitorHandle>,
    /// Version and capabilities shown to clients: a backend's own, once one was reached.
    pub server_info: Arc<ArcSwap<ServerInfo>>,
    pub connect_timeout: Duration,
    /// Largest packet accepted from a client.
    pub max_client_packet: usize,
}

/// The handle every task holds: load a snapshot, never keep it across statements.
pub type SharedState = Arc<ArcSwap<RuntimeState>>;

impl RuntimeState {
    pub fn new(config: Config) -> Self {
        RuntimeState {
            config: Arc::new(config),
            router: Arc::new(Router::new()),
            pools: Arc::new(Pools::default()),
            health: Arc::new(Health::default()),
            monitor: None,
            server_info: Arc::new(ArcSwap::from_pointee(ServerInfo::default())),
            connect_timeout: Duration::from_secs(5),
            max_client_packet: 64 * 1024 * 1024,
        }
    }

    /// Starts the backend monitor if the config has `[monitor]` (spawns on the current
    /// tokio runtime).
    pub fn with_monitor(mut self) -> Self {
        if self.config.monitor.is_some() {
            self.monitor = Some(Monitor::start(&self.config));
        }
        self
    }

    /// Whether a replica may take new reads of a tenant allowing `max_lag`; always true
    /// without a monitor. Lock-free.
    pub fn replica_eligible(&self, addr: &str, max_lag: Duration) -> bool {
        self.monitor
            .as_ref()
            .is_none_or(|m| m.replica_eligible(addr, max_lag))
    }

    pub fn shared(self) -> SharedState {
        Arc::new(ArcSwap::from_pointee(self))
    }

    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.config.tenants.iter().find(|t| t.name == name)
    }

    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.config.users.iter().find(|u| u.name == name)
    }

    pub fn tenant_of_schema(&self, schema: &str) -> Option<&TenantConfig> {
        self.config
            .tenants
            .iter()
            .find(|t| t.schemas.iter().any(|s| s == schema))
    }

    /// Reads a backend's greeting so clients see its version and capabilities.
    pub async fn learn_server_info(&self) {
        let Some(t) = self.config.tenants.first() else {
            return;
        };
        if let Some(info) =
            crate::backend::conn::probe_server_info(&t.primary, self.connect_timeout).await
        {
            self.server_info.store(info);
        }
    }
}
