//! The TOML configuration: serde schema, `${VAR}` expansion, validation with key paths and lines.
//!
//! `load`/`parse` turn a file into a fully resolved [`Config`] (tenant values inherit
//! `[defaults]`), or into every problem found, each naming its key path and line.

use std::fmt;
use std::time::Duration;

/// A fully validated, resolved configuration. Nothing here is optional that has a default.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: Option<AdminConfig>,
    pub tenants: Vec<TenantConfig>,
    pub users: Vec<UserConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `host:port` for applications (MySQL protocol).
    pub listen: String,
    pub admin_listen: Option<String>,
    pub http_listen: Option<String>,
    pub max_connections: u32,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub require_tls: bool,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Eventual,
    ReadYourWrites,
    Primary,
}

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    pub schemas: Vec<String>,
    /// `host:port`; host may be a name (docker-compose) or an IP.
    pub primary: String,
    pub replicas: Vec<ReplicaConfig>,
    pub consistency: Consistency,
    pub max_replica_lag: Duration,
    pub health_interval: Duration,
    pub pool_max: u32,
    pub max_connections: Option<u32>,
    pub backend_user: Option<String>,
    pub backend_password: Option<Secret>,
    pub backend_tls_ca: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub addr: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct UserConfig {
    pub name: String,
    pub password: Secret,
    pub tenants: UserTenants,
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserTenants {
    /// `tenant = "acme"`: bound to one tenant.
    One(String),
    /// `tenants = ["a", "b"]`: any of these, chosen by database.
    List(Vec<String>),
    /// `tenants = "*"`: any tenant, chosen by database.
    All,
}

/// A secret string (password). Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
