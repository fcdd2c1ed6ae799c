//! The TOML configuration: serde schema, `${VAR}` expansion, validation with key paths and lines.
//!
//! `load`/`parse` turn a file into a fully resolved [`Config`] (tenant values inherit
//! `[defaults]`), or into every problem found, each naming its key path and line.

mod address;
mod document;
mod duration;
mod env;
mod error;
pub mod keys;
mod pattern;
mod raw;
mod render;
mod size;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use document::{syntax_error_at, too_deep, too_deep_message, MAX_KEY_PARTS};
pub use duration::{format_duration, parse_duration};
pub(crate) use error::line_of;
pub use error::{ConfigError, ConfigErrors};
pub use pattern::{valid_tenant, NamePattern};
pub use render::render_table;
pub use validate::MAX_THREADS;

/// Parses and validates config text; `env` supplies `${VAR}` values.
/// On failure every problem found is returned, in file order.
pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut sink = error::Sink::new(text);
    let Some(doc) = document::read_document(&mut sink) else {
        return Err(sink.finish());
    };
    let config = validate::resolve(&doc, env, &mut sink);
    if sink.is_empty() {
        Ok(config)
    } else {
        Err(sink.finish())
    }
}

/// Reads `path` and parses it with `${VAR}` taken from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: String::new(),
        line: None,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    parse(&text, &|name| std::env::var(name).ok())
}

/// A fully validated, resolved configuration. Nothing here is optional that has a default.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: Option<AdminConfig>,
    /// `[monitor]`: the login health checks use; without it each tenant's own backend
    /// login checks its servers (the monitor always runs).
    pub monitor: Option<MonitorConfig>,
    pub clusters: Vec<ClusterConfig>,
    /// Every named tenant: `[[tenants]]` and those a cluster lists, schemas expanded.
    pub tenants: Vec<TenantConfig>,
    pub users: Vec<UserConfig>,
    /// `[fleet]`: without it the instance runs alone, as it always did.
    pub fleet: Option<FleetConfig>,
}

impl Config {
    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.name == name)
    }

    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Named tenants exactly as their cluster makes its tenants (no settings of their own),
    /// by name, with their cluster's name: shown together as the cluster.
    pub fn plain_cluster_tenants(&self) -> HashMap<&str, &str> {
        let clusters: HashMap<&str, &ClusterConfig> =
            self.clusters.iter().map(|c| (c.name.as_str(), c)).collect();
        self.tenants
            .iter()
            .filter_map(|t| {
                let c = clusters.get(t.cluster.as_deref()?)?;
                (c.tenant(&t.name) == *t).then_some((t.name.as_str(), c.name.as_str()))
            })
            .collect()
    }

    /// The cluster whose schema patterns make tenants of schemas no named tenant owns
    /// (`tenants = "*"`); at most one.
    pub fn open_cluster(&self) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.open)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `host:port` for applications (MySQL protocol).
    pub listen: String,
    pub admin_listen: Option<String>,
    pub http_listen: Option<String>,
    /// Who may read the status page and `/api/*` on `http_listen` (`/metrics`, `/health`
    /// and `/ready` stay open to scrapers and probes).
    pub http_auth: HttpAuth,
    pub max_connections: u32,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a write to a client may make no progress (the client reads nothing of its
    /// answer) before the session is closed, as the server's `net_write_timeout`.
    pub client_write_timeout: Duration,
    pub shutdown_grace: Duration,
    /// How long a statement of a paused tenant waits before it gets an ERR.
    pub pause_max_hold: Duration,
    /// How long a statement waits for a backend connection when all `pool_max` of them
    /// are busy, before it gets ERR 1040.
    pub pool_timeout: Duration,
    /// Statements taking at least this long are logged (zero: none).
    pub slow_statement: Duration,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub require_tls: bool,
    /// Largest packet accepted from a logged-in client (ERR 1153 beyond).
    pub max_packet: usize,
    /// PEM RSA private key for caching_sha2_password's full authentication without TLS
    /// (generated at first use when unset, as MySQL does).
    pub rsa_private_key: Option<String>,
    /// Worker threads serving sessions, each owning the sessions it runs;
    /// 0: one per core available to the process.
    pub threads: usize,
    /// The load balancers whose connections begin with a PROXY protocol header naming the
    /// client (empty: none; nobody else's header is believed).
    pub proxy_protocol: Vec<ipnet::IpNet>,
    /// A client that sent COM_QUIT and closed its end is closed with a TCP reset instead of
    /// a FIN (never a `proxy_protocol` balancer's connection).
    pub reset_after_quit: bool,
    /// Percent of a core a worker carries before sessions spread to another worker;
    /// below it they gather on fewer (0: sessions never move).
    pub worker_fill: u8,
}

/// `[fleet]`: which fleet this instance belongs to, where its etcd is, and how long it
/// waits on it. Read at start; a reload does not move an instance to another fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// Names the fleet's keys in etcd (`/switchyard/<name>/...`).
    pub name: String,
    /// etcd endpoints, `http://host:port` (or `host:port`).
    pub etcd: Vec<String>,
    /// This instance's name in the fleet: unique among its instances.
    pub instance: String,
    /// Where clients reach this instance (shown to the other instances); `server.listen`
    /// by default.
    pub advertise: String,
    /// The registration lease: an instance silent this long counts as gone.
    pub lease_ttl: Duration,
    /// How long PAUSE TENANT waits, beyond its own TIMEOUT, for every instance's ack.
    pub ack_timeout: Duration,
    /// Each request to etcd, and each attempt to connect.
    pub etcd_timeout: Duration,
    /// Where the document applied last is kept, for a start while etcd is away.
    pub document_cache: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub user: String,
    pub password: Secret,
}

/// The backend health monitor's login and pacing. How often each backend is checked and how
/// much lag a replica may have stay per tenant (`health_interval`, `max_replica_lag`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    pub user: String,
    pub password: Secret,
    /// For each (re)connect of a check connection.
    pub connect_timeout: Duration,
    /// Good checks in a row before a replica that was down, stopped or lagging gets reads again.
    pub rise: u32,
    /// Failed checks in a row before a backend that answers but errors is marked down
    /// (one that cannot be reached at all is down at once).
    pub fall: u32,
}

impl MonitorConfig {
    /// The monitor's settings without a `[monitor]` section: the defaults, and no user of
    /// its own (each server is checked with a login of a tenant it serves).
    pub fn without_section() -> Self {
        MonitorConfig {
            user: String::new(),
            password: Secret::new(""),
            connect_timeout: validate::DEFAULT_MONITOR_CONNECT_TIMEOUT,
            rise: validate::DEFAULT_MONITOR_RISE,
            fall: validate::DEFAULT_MONITOR_FALL,
        }
    }
}

/// A user and password the monitor logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorLogin {
    pub user: String,
    pub password: Secret,
    /// From `[monitor]` (may read replication status), or a tenant's own login.
    pub privileged: bool,
}

impl Config {
    /// Who checks a tenant's servers: `[monitor]`'s user, else the tenant's `backend_user`,
    /// else the first user of the tenant whose password the config holds. `None`: nobody
    /// can, and its servers go unchecked.
    pub fn monitor_login(&self, tenant: &TenantConfig) -> Option<MonitorLogin> {
        self.monitor_logins().get(tenant)
    }

    /// [`monitor_login`](Self::monitor_login) for many tenants: the users are indexed once.
    pub fn monitor_logins(&self) -> MonitorLogins<'_> {
        let mut by_tenant: HashMap<&str, usize> = HashMap::new();
        let mut any = None;
        let with_password = self
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.pattern.is_none() && u.password.plaintext().is_some());
        for (i, u) in with_password {
            match &u.tenants {
                UserTenants::One(t) => {
                    by_tenant.entry(t.as_str()).or_insert(i);
                }
                UserTenants::List(ts) => {
                    for t in ts {
                        by_tenant.entry(t.as_str()).or_insert(i);
                    }
                }
                UserTenants::All => {
                    any.get_or_insert(i);
                }
            }
        }
        MonitorLogins {
            config: self,
            by_tenant,
            any,
        }
    }
}

/// The monitor's login per tenant, from users indexed by tenant.
pub struct MonitorLogins<'c> {
    config: &'c Config,
    by_tenant: HashMap<&'c str, usize>,
    /// The first user of every tenant.
    any: Option<usize>,
}

impl MonitorLogins<'_> {
    pub fn get(&self, tenant: &TenantConfig) -> Option<MonitorLogin> {
        if let Some(m) = &self.config.monitor {
            return Some(MonitorLogin {
                user: m.user.clone(),
                password: m.password.clone(),
                privileged: true,
            });
        }
        if let (Some(user), Some(password)) = (&tenant.backend_user, &tenant.backend_password) {
            return Some(MonitorLogin {
                user: user.clone(),
                password: password.clone(),
                privileged: false,
            });
        }
        // The first in file order of the tenant's own users and those of every tenant.
        let own = self.by_tenant.get(tenant.name.as_str()).copied();
        let first = match (own, self.any) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let u = &self.config.users[first];
        Some(MonitorLogin {
            user: u.name.clone(),
            password: Secret::new(u.password.plaintext()?),
            privileged: false,
        })
    }
}

/// What a read must see, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Consistency {
    /// Whatever the chosen replica has.
    Eventual,
    /// The session's own writes (read-your-writes), and never older data than it read.
    Session,
    /// Every write of the tenant answered through this Switchyard before the read started.
    Tenant,
    /// Everything the primary committed before the read started, through any proxy.
    Global,
    /// Reads go to the primary.
    Primary,
}

impl Consistency {
    /// The config spelling: `eventual`, `session` (or its older name `read_your_writes`),
    /// `tenant`, `global`, `primary`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "eventual" => Some(Consistency::Eventual),
            "session" | "read_your_writes" => Some(Consistency::Session),
            "tenant" => Some(Consistency::Tenant),
            "global" => Some(Consistency::Global),
            "primary" => Some(Consistency::Primary),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Session => "session",
            Consistency::Tenant => "tenant",
            Consistency::Global => "global",
            Consistency::Primary => "primary",
        }
    }

    /// Whether a read must wait for writes beyond its own session's.
    pub fn beyond_session(self) -> bool {
        matches!(self, Consistency::Tenant | Consistency::Global)
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a read that wants a replica gets when none is eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaFallback {
    /// The primary serves it (counted, logged per transition).
    Primary,
    /// A clear ERR (for tenants whose primary must not take read load).
    Error,
}

impl ReplicaFallback {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "primary" => Some(ReplicaFallback::Primary),
            "error" => Some(ReplicaFallback::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaFallback::Primary => "primary",
            ReplicaFallback::Error => "error",
        }
    }
}

/// `[[clusters]]`: what its tenants share, and how their schemas are named.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub name: String,
    /// Every setting of a tenant on this cluster; its name and schemas are left empty.
    pub template: TenantConfig,
    /// Each tenant's schemas: the patterns with its name in place of `{tenant}`.
    pub patterns: Vec<NamePattern>,
    /// `tenants = "*"`: a schema matching a pattern is a tenant of this cluster even when
    /// the config does not name it.
    pub open: bool,
}

impl ClusterConfig {
    /// The tenant `name` on this cluster, with the schemas its patterns give.
    pub fn tenant(&self, name: &str) -> TenantConfig {
        TenantConfig {
            name: name.to_string(),
            schemas: self.patterns.iter().map(|p| p.expand(name)).collect(),
            ..self.template.clone()
        }
    }

    /// The tenant a schema names by this cluster's patterns.
    pub fn capture<'s>(&self, schema: &'s str) -> Option<&'s str> {
        self.patterns.iter().find_map(|p| p.capture(schema))
    }
}

/// `server.http_auth`: what the status page and its JSON API ask of a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAuth {
    /// HTTP basic auth with `[admin]`'s user and password (without `[admin]`, nobody).
    Admin,
    /// Open to anyone who reaches `http_listen` (a port only trusted hosts can reach).
    None,
}

impl HttpAuth {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(HttpAuth::Admin),
            "none" => Some(HttpAuth::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    pub name: String,
    pub schemas: Vec<String>,
    /// The `[[clusters]]` it is on, if any.
    pub cluster: Option<String>,
    /// `host:port`; host may be a name (docker-compose) or an IP.
    pub primary: String,
    pub replicas: Vec<ReplicaConfig>,
    pub consistency: Consistency,
    /// What a read gets when no replica is eligible.
    pub replica_fallback: ReplicaFallback,
    pub max_replica_lag: Duration,
    pub health_interval: Duration,
    pub pool_max: u32,
    pub max_connections: Option<u32>,
    pub backend_user: Option<String>,
    pub backend_password: Option<Secret>,
    pub backend_tls_ca: Option<String>,
}

impl TenantConfig {
    pub fn owns_schema(&self, schema: &str) -> bool {
        self.schemas.iter().any(|s| s == schema)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub addr: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserConfig {
    /// The login name, or for a user template the pattern as written (`{tenant}_app`).
    pub name: String,
    /// A user template: every name the pattern matches is this user, bound to the tenant
    /// the name spells.
    pub pattern: Option<NamePattern>,
    pub password: UserPassword,
    pub tenants: UserTenants,
    pub max_connections: Option<u32>,
    /// This user may only log in over TLS.
    pub require_tls: bool,
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

impl UserConfig {
    /// This user template as the login `name`, if the pattern matches it.
    pub fn instance(&self, name: &str) -> Option<UserConfig> {
        let tenant = self.pattern.as_ref()?.capture(name)?;
        Some(UserConfig {
            name: name.to_string(),
            pattern: None,
            tenants: UserTenants::One(tenant.to_string()),
            ..self.clone()
        })
    }
}

impl UserTenants {
    /// Whether a user with this binding may use tenant `tenant_name`.
    pub fn allows(&self, tenant_name: &str) -> bool {
        match self {
            UserTenants::One(t) => t == tenant_name,
            UserTenants::List(ts) => ts.iter().any(|t| t == tenant_name),
            UserTenants::All => true,
        }
    }
}

/// How Switchyard checks a user's password.
#[derive(Clone, PartialEq, Eq)]
pub enum UserPassword {
    /// The password itself (usually `${VAR}`): any scheme can be checked, and the same
    /// password logs in to the backends. `native` is SHA1(SHA1(password)), worked out once
    /// ([`UserPassword::plain`]) so that a mysql_native_password login costs two SHA1
    /// blocks, not three.
    Plain { password: Secret, native: [u8; 20] },
    /// The hash the server stores: answers in its scheme are checked, and the password (or
    /// what of it the scheme reveals) is learned from the client's login for the backends.
    Hash(crate::protocol::crypt::PasswordHash),
}

impl UserPassword {
    pub fn plain(password: Secret) -> Self {
        let native = crate::protocol::auth::native_stage2(password.expose().as_bytes());
        UserPassword::Plain { password, native }
    }

    /// The password itself, when the config holds it.
    pub fn plaintext(&self) -> Option<&str> {
        match self {
            UserPassword::Plain { password, .. } => Some(password.expose()),
            UserPassword::Hash(_) => None,
        }
    }
}

// By hand: a derived `Debug` printed `native`, the hash the server stores, which a config
// dump in a log would have handed to an offline password cracker.
impl fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserPassword::Plain { .. } => f.write_str("UserPassword::Plain(***)"),
            UserPassword::Hash(h) => write!(f, "UserPassword::Hash({h:?})"),
        }
    }
}

/// A secret string (password). Never printed: `Debug` and `Display` show `***`. Shared:
/// a login's proof for the backends is a copy of its user's password, made at every login.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(s: impl Into<std::sync::Arc<str>>) -> Self {
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
