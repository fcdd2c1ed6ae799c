//! Raw schema to resolved [`Config`]: `${VAR}` expansion, defaults, and every other check.
//!
//! These are the checks serde cannot do (addresses, durations, names, cross-references).
//! Each one records its problem and carries on with a placeholder, so one run reports
//! everything; the placeholder config is thrown away whenever anything was recorded.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use toml::Spanned;

use super::address::check_address;
use super::document::{Indexed, RawDocument};
use super::duration::parse_duration;
use super::env::{expand, EnvLookup};
use super::error::Sink;
use super::pattern::{valid_tenant, NamePattern};
use super::raw::{
    RawAdmin, RawBackendTls, RawCluster, RawMonitor, RawReplica, RawServer, RawTenant,
    RawTenantList, RawUser, Str,
};
use super::size::parse_size;
use super::{
    AdminConfig, ClusterConfig, Config, Consistency, MonitorConfig, ReplicaConfig, Secret,
    ServerConfig, TenantConfig, UserConfig, UserPassword, UserTenants,
};
use super::{HttpAuth, ReplicaFallback};
use crate::protocol::crypt::PasswordHash;

mod fleet;

const DEFAULT_LISTEN: &str = "127.0.0.1:6033";
/// A server's usual `max_allowed_packet`.
const DEFAULT_MAX_PACKET: usize = 64 << 20;
/// Sessions spread once a worker carries three quarters of a core (see `frontend::balance`).
const DEFAULT_WORKER_FILL: u8 = 75;
/// The most worker threads: each writes counters of its own
/// (`state::per_worker::SLOTS` less the control plane's).
pub const MAX_THREADS: usize = 255;
const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 3600);
/// The server's `net_write_timeout` default.
const DEFAULT_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_PAUSE_MAX_HOLD: Duration = Duration::from_secs(60);
const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SLOW_STATEMENT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(5);
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(500);
const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_POOL_MAX: u32 = 64;
pub(crate) const DEFAULT_MONITOR_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_MONITOR_RISE: u32 = 2;
pub(crate) const DEFAULT_MONITOR_FALL: u32 = 1;

/// The values a tenant inherits from `[defaults]` unless it sets its own.
#[derive(Debug, Clone, Copy)]
struct Inherited {
    consistency: Consistency,
    replica_fallback: ReplicaFallback,
    max_replica_lag: Duration,
    health_interval: Duration,
    pool_max: u32,
}

const BUILT_IN: Inherited = Inherited {
    consistency: Consistency::Tenant,
    replica_fallback: ReplicaFallback::Primary,
    max_replica_lag: DEFAULT_MAX_REPLICA_LAG,
    health_interval: DEFAULT_HEALTH_INTERVAL,
    pool_max: DEFAULT_POOL_MAX,
};

impl Inherited {
    /// What a tenant of a cluster inherits: the cluster's settings.
    fn of(t: &TenantConfig) -> Self {
        Inherited {
            consistency: t.consistency,
            replica_fallback: t.replica_fallback,
            max_replica_lag: t.max_replica_lag,
            health_interval: t.health_interval,
            pool_max: t.pool_max,
        }
    }
}

/// Where a tenant's or a cluster's servers are, as written.
struct Servers<'r> {
    primary: Option<&'r Str>,
    replicas: &'r [Spanned<RawReplica>],
    backend_user: Option<&'r Str>,
    backend_password: Option<&'r Str>,
    backend_tls: Option<&'r RawBackendTls>,
    max_connections: Option<&'r Spanned<u32>>,
}

/// The inheritable keys as written, in `[defaults]` or in a tenant.
struct Overrides<'r> {
    consistency: Option<&'r Str>,
    replica_fallback: Option<&'r Str>,
    max_replica_lag: Option<&'r Str>,
    health_interval: Option<&'r Str>,
    pool_max: Option<&'r Spanned<u32>>,
}

pub fn resolve(doc: &RawDocument, env: EnvLookup<'_>, sink: &mut Sink<'_>) -> Config {
    let mut r = Resolver { env, sink };
    let server = r.server(&doc.server);
    let admin = doc.admin.as_ref().map(|a| r.admin(a));
    let monitor = doc.monitor.as_ref().map(|m| r.monitor(m));
    let d = &doc.defaults;
    let defaults = r.inherited(
        "defaults",
        &Overrides {
            consistency: d.consistency.as_ref(),
            replica_fallback: d.replica_fallback.as_ref(),
            max_replica_lag: d.max_replica_lag.as_ref(),
            health_interval: d.health_interval.as_ref(),
            pool_max: d.pool_max.as_ref(),
        },
        &BUILT_IN,
    );
    let clusters = r.clusters(&doc.clusters, &defaults);
    let tenants = r.tenants(&doc.tenants, &doc.clusters, &clusters, &defaults);
    let mut names: HashSet<String> = tenants.iter().map(|t| t.name.clone()).collect();
    names.extend(doc.broken_tenant_names.iter().cloned());
    let known = Known {
        names,
        open: clusters.iter().any(|c| c.open),
    };
    let users = r.users(&doc.users, &known);
    let fleet = doc.fleet.as_ref().map(|f| r.fleet(f, &server.listen));
    Config {
        server,
        admin,
        monitor,
        clusters,
        tenants,
        users,
        fleet,
    }
}

/// The tenants a user may be bound to: the named ones, and with an open cluster any name
/// its patterns could capture.
struct Known {
    names: HashSet<String>,
    open: bool,
}

impl Known {
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name) || (self.open && valid_tenant(name))
    }
}

/// Who claimed a schema: the tenant's path and name, the spelling, the tenant's primary.
struct SchemaClaim {
    path: String,
    tenant: String,
    spelt: String,
    primary: String,
}

/// Tenant names and schemas already taken, so a second claim is reported.
#[derive(Default)]
struct Claims {
    /// Tenant name to the path that defined it.
    names: HashMap<String, String>,
    /// Schema to the path and name of the tenant owning it.
    schemas: HashMap<String, (String, String)>,
    /// Schema in lower case to every claim of it: names that differ in case only are one
    /// database on a server with `lower_case_table_names` set, and two tenants' users on
    /// that server would share it.
    folded: HashMap<String, Vec<SchemaClaim>>,
}

struct Resolver<'e, 's, 't> {
    env: EnvLookup<'e>,
    sink: &'s mut Sink<'t>,
}

impl Resolver<'_, '_, '_> {
    // ---- single values ----

    /// The value with `${VAR}`s expanded; `None` (problems recorded) if a variable is missing.
    fn string(&mut self, path: &str, s: &Str) -> Option<String> {
        match expand(s.get_ref(), self.env) {
            Ok(v) => Some(v),
            Err(problems) => {
                for p in problems {
                    self.sink.at(path, s.span(), p);
                }
                None
            }
        }
    }

    fn secret(&mut self, path: &str, s: &Str) -> Secret {
        Secret::new(self.string(path, s).unwrap_or_default())
    }

    fn address(&mut self, path: &str, s: &Str) -> Option<String> {
        let addr = self.string(path, s)?;
        match check_address(&addr) {
            Ok(()) => Some(addr),
            Err(m) => {
                self.sink.at(path, s.span(), m);
                None
            }
        }
    }

    fn optional_address(&mut self, path: &str, s: Option<&Str>) -> Option<String> {
        s.and_then(|s| self.address(path, s))
    }

    fn duration(&mut self, path: &str, s: Option<&Str>, default: Duration) -> Duration {
        let Some(s) = s else { return default };
        let Some(text) = self.string(path, s) else {
            return default;
        };
        parse_duration(&text).unwrap_or_else(|m| {
            self.sink.at(path, s.span(), m);
            default
        })
    }

    fn consistency(&mut self, path: &str, s: Option<&Str>, default: Consistency) -> Consistency {
        let Some(s) = s else { return default };
        let Some(text) = self.string(path, s) else {
            return default;
        };
        Consistency::parse(&text).unwrap_or_else(|| {
            self.sink.at(
                path,
                s.span(),
                format!(
                    "invalid consistency \"{text}\" (expected eventual, session, tenant, global or primary)"
                ),
            );
            default
        })
    }

    fn replica_fallback(
        &mut self,
        path: &str,
        s: Option<&Str>,
        default: ReplicaFallback,
    ) -> ReplicaFallback {
        let Some(s) = s else { return default };
        let Some(text) = self.string(path, s) else {
            return default;
        };
        ReplicaFallback::parse(&text).unwrap_or_else(|| {
            self.sink.at(
                path,
                s.span(),
                format!("invalid replica_fallback \"{text}\" (expected primary or error)"),
            );
            default
        })
    }

    fn http_auth(&mut self, s: Option<&Str>) -> HttpAuth {
        let Some(s) = s else {
            return HttpAuth::Admin;
        };
        let Some(text) = self.string("server.http_auth", s) else {
            return HttpAuth::Admin;
        };
        HttpAuth::parse(&text).unwrap_or_else(|| {
            self.sink.at(
                "server.http_auth",
                s.span(),
                format!("invalid http_auth \"{text}\" (expected admin or none)"),
            );
            HttpAuth::Admin
        })
    }

    /// A count that makes no sense as zero (connections, pool size, weight).
    fn positive(&mut self, path: &str, n: Option<&Spanned<u32>>, default: u32) -> u32 {
        match n {
            None => default,
            Some(n) if *n.get_ref() == 0 => {
                self.sink
                    .at(path, n.span(), "must be at least 1".to_string());
                default
            }
            Some(n) => *n.get_ref(),
        }
    }

    /// Two listeners on one port (of one address, or of any and one) cannot both bind:
    /// `check` passed what `run` then refused to start.
    fn check_listeners(&mut self, raw: &RawServer, app: &str, others: [&Option<String>; 2]) {
        let named = [
            ("server.listen", Some(app), raw.listen.as_ref()),
            (
                "server.admin_listen",
                others[0].as_deref(),
                raw.admin_listen.as_ref(),
            ),
            (
                "server.http_listen",
                others[1].as_deref(),
                raw.http_listen.as_ref(),
            ),
        ];
        for (i, (path, addr, span)) in named.iter().enumerate() {
            let Some(addr) = addr else { continue };
            let clash = named[..i]
                .iter()
                .find(|(_, other, _)| other.is_some_and(|o| same_socket(o, addr)));
            if let (Some((other_path, _, _)), Some(span)) = (clash, span) {
                let m =
                    format!("{addr} is also {other_path}'s: each listener needs a port of its own");
                self.sink.at(*path, span.span(), m);
            }
        }
    }

    /// A duration of at least `min` (whole seconds).
    fn duration_at_least(
        &mut self,
        path: &str,
        s: Option<&Str>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        let d = self.duration(path, s, default);
        match s {
            Some(s) if d < min => {
                let m = format!("must be at least {}s", min.as_secs());
                self.sink.at(path, s.span(), m);
                default
            }
            _ => d,
        }
    }

    /// A duration greater than 0 (a zero timeout fails everything it bounds).
    fn nonzero(&mut self, path: &str, s: Option<&Str>, default: Duration) -> Duration {
        let d = self.duration(path, s, default);
        if let (true, Some(s)) = (d.is_zero(), s) {
            self.sink
                .at(path, s.span(), "must be greater than 0".to_string());
            return default;
        }
        d
    }

    /// `server.threads`: 0 (one per core) or a count of workers, each with counters of its
    /// own (`state::per_worker::SLOTS`).
    fn threads(&mut self, n: Option<&Spanned<u32>>) -> usize {
        let Some(n) = n else { return 0 };
        let count = *n.get_ref() as usize;
        if count > MAX_THREADS {
            let m = format!("at most {MAX_THREADS} worker threads");
            self.sink.at("server.threads", n.span(), m);
            return 0;
        }
        count
    }

    /// `server.worker_fill`: a percentage of a core, 0 (sessions never move) to 100.
    fn worker_fill(&mut self, n: Option<&Spanned<u32>>) -> u8 {
        match n {
            None => DEFAULT_WORKER_FILL,
            Some(n) => match u8::try_from(*n.get_ref()) {
                Ok(p) if p <= 100 => p,
                _ => {
                    let m = format!("{} is not a percentage (0 to 100)", n.get_ref());
                    self.sink.at("server.worker_fill", n.span(), m);
                    DEFAULT_WORKER_FILL
                }
            },
        }
    }

    /// `server.max_packet`: 1 KiB to 1 GiB, as MySQL's `max_allowed_packet`.
    fn max_packet(&mut self, s: Option<&Str>) -> usize {
        const PATH: &str = "server.max_packet";
        let Some(s) = s else {
            return DEFAULT_MAX_PACKET;
        };
        let Some(text) = self.string(PATH, s) else {
            return DEFAULT_MAX_PACKET;
        };
        match parse_size(&text) {
            Ok(n) if (1 << 10..=1 << 30).contains(&n) => n as usize,
            Ok(_) => {
                let m = format!("max_packet \"{text}\" is outside 1K..1G");
                self.sink.at(PATH, s.span(), m);
                DEFAULT_MAX_PACKET
            }
            Err(m) => {
                self.sink.at(PATH, s.span(), m);
                DEFAULT_MAX_PACKET
            }
        }
    }

    /// Networks, `10.0.0.0/8` or a single address (`10.0.0.5`, `::1`).
    fn networks(&mut self, path: &str, raw: Option<&Spanned<Vec<Str>>>) -> Vec<ipnet::IpNet> {
        let mut out = Vec::new();
        for (i, s) in raw
            .map(|r| r.get_ref().as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let path = format!("{path}[{i}]");
            let Some(text) = self.string(&path, s) else {
                continue;
            };
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => out.push(n.trunc()),
                Err(_) => {
                    let m = format!(
                        "\"{text}\" is not an address or network (e.g. \"10.0.0.0/8\", \"10.0.0.5\")"
                    );
                    self.sink.at(&path, s.span(), m);
                }
            }
        }
        out
    }

    fn optional_positive(&mut self, path: &str, n: Option<&Spanned<u32>>) -> Option<u32> {
        n.map(|v| self.positive(path, Some(v), 1))
    }

    /// Tenant and schema names: they are matched against what clients send, so blanks and
    /// whitespace could never match and are surely typos. A bad name is still returned, so
    /// that references to it are not reported a second time as unknown.
    fn name(&mut self, path: &str, s: &Str, what: &str) -> String {
        let Some(name) = self.string(path, s) else {
            return String::new();
        };
        if name.is_empty() {
            self.sink
                .at(path, s.span(), format!("{what} name is empty"));
        } else if name.chars().any(char::is_whitespace) {
            let problem = format!("{what} name \"{name}\" contains whitespace");
            self.sink.at(path, s.span(), problem);
        } else if what != "schema" && name.contains('/') {
            // A fleet keeps a tenant's pause under `state/pause/<tenant>`: RESUME of `a`
            // would clear the acks of `a/b`.
            let problem = format!("{what} name \"{name}\" contains '/'");
            self.sink.at(path, s.span(), problem);
        }
        name
    }

    /// Login names: MySQL allows almost anything, but an empty name cannot log in.
    fn user_name(&mut self, path: &str, s: &Str) -> String {
        let name = self.string(path, s);
        if name.as_deref() == Some("") {
            self.sink
                .at(path, s.span(), "user name is empty".to_string());
        }
        name.unwrap_or_default()
    }

    // ---- sections ----

    fn server(&mut self, raw: &RawServer) -> ServerConfig {
        let listen = self
            .optional_address("server.listen", raw.listen.as_ref())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let tls_cert = raw
            .tls_cert
            .as_ref()
            .and_then(|s| self.string("server.tls_cert", s));
        let tls_key = raw
            .tls_key
            .as_ref()
            .and_then(|s| self.string("server.tls_key", s));
        let require_tls = raw.require_tls.as_ref().is_some_and(|b| *b.get_ref());
        self.check_tls(raw, require_tls);
        let admin_listen = self.optional_address("server.admin_listen", raw.admin_listen.as_ref());
        let http_listen = self.optional_address("server.http_listen", raw.http_listen.as_ref());
        self.check_listeners(raw, &listen, [&admin_listen, &http_listen]);
        ServerConfig {
            listen,
            admin_listen,
            http_listen,
            http_auth: self.http_auth(raw.http_auth.as_ref()),
            max_connections: self.positive(
                "server.max_connections",
                raw.max_connections.as_ref(),
                DEFAULT_MAX_CONNECTIONS,
            ),
            // Zero would end every login, or every session, before its first command.
            handshake_timeout: self.nonzero(
                "server.handshake_timeout",
                raw.handshake_timeout.as_ref(),
                DEFAULT_HANDSHAKE_TIMEOUT,
            ),
            idle_timeout: self.duration_at_least(
                "server.idle_timeout",
                raw.idle_timeout.as_ref(),
                DEFAULT_IDLE_TIMEOUT,
                Duration::from_secs(1),
            ),
            client_write_timeout: self.duration_at_least(
                "server.client_write_timeout",
                raw.client_write_timeout.as_ref(),
                DEFAULT_CLIENT_WRITE_TIMEOUT,
                Duration::from_secs(1),
            ),
            shutdown_grace: self.duration(
                "server.shutdown_grace",
                raw.shutdown_grace.as_ref(),
                DEFAULT_SHUTDOWN_GRACE,
            ),
            pause_max_hold: self.duration(
                "server.pause_max_hold",
                raw.pause_max_hold.as_ref(),
                DEFAULT_PAUSE_MAX_HOLD,
            ),
            pool_timeout: self.duration(
                "server.pool_timeout",
                raw.pool_timeout.as_ref(),
                DEFAULT_POOL_TIMEOUT,
            ),
            slow_statement: self.duration(
                "server.slow_statement",
                raw.slow_statement.as_ref(),
                DEFAULT_SLOW_STATEMENT,
            ),
            tls_cert,
            tls_key,
            require_tls,
            max_packet: self.max_packet(raw.max_packet.as_ref()),
            threads: self.threads(raw.threads.as_ref()),
            proxy_protocol: self.networks("server.proxy_protocol", raw.proxy_protocol.as_ref()),
            reset_after_quit: raw.reset_after_quit.as_ref().is_none_or(|b| *b.get_ref()),
            worker_fill: self.worker_fill(raw.worker_fill.as_ref()),
            rsa_private_key: raw
                .rsa_private_key
                .as_ref()
                .and_then(|s| self.string("server.rsa_private_key", s)),
        }
    }

    /// A certificate is useless without its key and the reverse; refusing plaintext without
    /// a certificate would refuse everyone.
    fn check_tls(&mut self, raw: &RawServer, require_tls: bool) {
        match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), None) => self.sink.at(
                "server.tls_key",
                cert.span(),
                "tls_cert is set but tls_key is missing".to_string(),
            ),
            (None, Some(key)) => self.sink.at(
                "server.tls_cert",
                key.span(),
                "tls_key is set but tls_cert is missing".to_string(),
            ),
            _ => {}
        }
        if let (true, None, Some(flag)) = (require_tls, &raw.tls_cert, &raw.require_tls) {
            self.sink.at(
                "server.require_tls",
                flag.span(),
                "require_tls = true needs tls_cert and tls_key".to_string(),
            );
        }
    }

    fn admin(&mut self, raw: &RawAdmin) -> AdminConfig {
        let password = self.string("admin.password", &raw.password);
        // An empty secret (a variable set to "") would open the admin port and the HTTP
        // API to a login with no password.
        if password.as_deref() == Some("") {
            self.sink.at(
                "admin.password",
                raw.password.span(),
                "admin.password is empty: the admin port and HTTP API would take a login with no password".to_string(),
            );
        }
        AdminConfig {
            user: self.user_name("admin.user", &raw.user),
            password: Secret::new(password.unwrap_or_default()),
        }
    }

    fn monitor(&mut self, raw: &RawMonitor) -> MonitorConfig {
        // A zero timeout would fail every connect, so every backend would look down.
        let connect_timeout = self.nonzero(
            "monitor.connect_timeout",
            raw.connect_timeout.as_ref(),
            DEFAULT_MONITOR_CONNECT_TIMEOUT,
        );
        MonitorConfig {
            user: self.user_name("monitor.user", &raw.user),
            password: self.secret("monitor.password", &raw.password),
            connect_timeout,
            rise: self.positive("monitor.rise", raw.rise.as_ref(), DEFAULT_MONITOR_RISE),
            fall: self.positive("monitor.fall", raw.fall.as_ref(), DEFAULT_MONITOR_FALL),
        }
    }

    fn inherited(&mut self, prefix: &str, raw: &Overrides<'_>, base: &Inherited) -> Inherited {
        let health_path = format!("{prefix}.health_interval");
        let mut health_interval =
            self.nonzero(&health_path, raw.health_interval, base.health_interval);
        if let (true, Some(s)) = (health_interval < MIN_HEALTH_INTERVAL, raw.health_interval) {
            // A check must answer within the interval: below this every check of a server
            // on a busy machine fails, it is counted down and connected to again each time.
            let m = "must be at least 100ms (a check that takes longer counts as down)";
            self.sink.at(&health_path, s.span(), m.to_string());
            health_interval = base.health_interval;
        }
        Inherited {
            consistency: self.consistency(
                &format!("{prefix}.consistency"),
                raw.consistency,
                base.consistency,
            ),
            replica_fallback: self.replica_fallback(
                &format!("{prefix}.replica_fallback"),
                raw.replica_fallback,
                base.replica_fallback,
            ),
            max_replica_lag: self.duration(
                &format!("{prefix}.max_replica_lag"),
                raw.max_replica_lag,
                base.max_replica_lag,
            ),
            health_interval,
            pool_max: self.positive(&format!("{prefix}.pool_max"), raw.pool_max, base.pool_max),
        }
    }

    fn clusters(
        &mut self,
        raws: &[Indexed<RawCluster>],
        defaults: &Inherited,
    ) -> Vec<ClusterConfig> {
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut open: Option<String> = None;
        let mut out = Vec::with_capacity(raws.len());
        for Indexed { index, value } in raws {
            let prefix = format!("clusters[{index}]");
            let cluster = self.cluster(&prefix, value, defaults);
            let path = format!("{prefix}.name");
            match names.get(&cluster.name) {
                Some(first) => self.sink.at(
                    path,
                    value.name.span(),
                    format!(
                        "duplicate cluster name \"{}\" (first defined as clusters[{first}])",
                        cluster.name
                    ),
                ),
                None => {
                    names.insert(cluster.name.clone(), *index);
                }
            }
            if let (true, Some(tenants)) = (cluster.open, &value.tenants) {
                if let Some(first) = &open {
                    self.sink.at(
                        format!("{prefix}.tenants"),
                        tenants.span(),
                        format!(
                            "only one cluster may take unnamed tenants (tenants = \"*\"); cluster \"{first}\" already does"
                        ),
                    );
                }
                open.get_or_insert(cluster.name.clone());
            }
            self.check_overlap(&prefix, value, &cluster);
            out.push(cluster);
        }
        out
    }

    /// One schema name must mean one tenant: two patterns of the open cluster (the only one
    /// whose patterns make tenants of the names they capture; named tenants' schemas are
    /// spelled out and never shared) that could take the same name as different tenants
    /// let a user of one tenant into the other's schema (`wf_{tenant}` and
    /// `wf_{tenant}_rb`: `wf_acme_rb` is acme's and `acme_rb`'s).
    fn check_overlap(&mut self, prefix: &str, raw: &RawCluster, cluster: &ClusterConfig) {
        let Some(span) = raw
            .schemas
            .as_ref()
            .map(|s| s.span())
            .filter(|_| cluster.open)
        else {
            return;
        };
        for (i, p) in cluster.patterns.iter().enumerate() {
            if let Some(q) = cluster.patterns[..i].iter().find(|q| p.overlaps(q)) {
                self.sink.at(
                    format!("{prefix}.schemas"),
                    span.clone(),
                    format!(
                        "pattern \"{p}\" and \"{q}\" can both take one schema name, as two tenants of this open cluster"
                    ),
                );
            }
        }
    }

    fn cluster(&mut self, prefix: &str, raw: &RawCluster, defaults: &Inherited) -> ClusterConfig {
        let name = self.name(&format!("{prefix}.name"), &raw.name, "cluster");
        let servers = Servers {
            primary: Some(&raw.primary),
            replicas: &raw.replicas,
            backend_user: raw.backend_user.as_ref(),
            backend_password: raw.backend_password.as_ref(),
            backend_tls: raw.backend_tls.as_ref(),
            max_connections: raw.max_connections.as_ref(),
        };
        let overrides = Overrides {
            consistency: raw.consistency.as_ref(),
            replica_fallback: raw.replica_fallback.as_ref(),
            max_replica_lag: raw.max_replica_lag.as_ref(),
            health_interval: raw.health_interval.as_ref(),
            pool_max: raw.pool_max.as_ref(),
        };
        let inherited = self.inherited(prefix, &overrides, defaults);
        let mut template = self.settings(prefix, &servers, &inherited, None);
        template.cluster = Some(name.clone());
        let patterns = self.patterns(prefix, raw.schemas.as_ref());
        let open = matches!(
            raw.tenants.as_ref().map(|t| t.get_ref()),
            Some(RawTenantList::Star(_))
        );
        if let (Some(t), true) = (&raw.tenants, patterns.is_empty()) {
            self.sink.at(
                format!("{prefix}.tenants"),
                t.span(),
                "a cluster's tenants need schema patterns: add schemas = [\"wf_{tenant}\"]"
                    .to_string(),
            );
        }
        if let Some(t) = &raw.tenants {
            self.check_star(&format!("{prefix}.tenants"), t);
        }
        ClusterConfig {
            name,
            template,
            patterns,
            open,
        }
    }

    /// `clusters[].schemas`: each a pattern with one `{tenant}`, none twice.
    fn patterns(&mut self, prefix: &str, raw: Option<&Spanned<Vec<Str>>>) -> Vec<NamePattern> {
        let mut out: Vec<NamePattern> = Vec::new();
        for (i, s) in raw.map_or(&[][..], |r| r.get_ref()).iter().enumerate() {
            let path = format!("{prefix}.schemas[{i}]");
            let Some(text) = self.string(&path, s) else {
                continue;
            };
            match NamePattern::parse(&text) {
                Ok(p) if out.contains(&p) => {
                    self.sink.at(
                        path,
                        s.span(),
                        format!("pattern \"{text}\" is listed twice"),
                    );
                }
                Ok(p) => out.push(p),
                Err(m) => self.sink.at(path, s.span(), m),
            }
        }
        out
    }

    /// `tenants = "*"` as a string: anything else spelled as a string is a mistake.
    fn check_star(&mut self, path: &str, raw: &Spanned<RawTenantList>) {
        if let RawTenantList::Star(text) = raw.get_ref() {
            let spanned = Spanned::new(raw.span(), text.clone());
            if self.string(path, &spanned).is_some_and(|v| v != "*") {
                self.sink.at(
                    path,
                    raw.span(),
                    "tenants must be \"*\" or a list of tenant names".to_string(),
                );
            }
        }
    }

    fn tenants(
        &mut self,
        raws: &[Indexed<RawTenant>],
        raw_clusters: &[Indexed<RawCluster>],
        clusters: &[ClusterConfig],
        defaults: &Inherited,
    ) -> Vec<TenantConfig> {
        let by_name: HashMap<&str, &ClusterConfig> =
            clusters.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut claims = Claims::default();
        let mut out = Vec::with_capacity(raws.len());
        for Indexed { index, value } in raws {
            let prefix = format!("tenants[{index}]");
            let tenant = self.tenant(&prefix, value, &by_name, defaults);
            let path = format!("{prefix}.name");
            self.claim_name((&path, &prefix), &value.name, &tenant.name, &mut claims);
            let written = value.schemas.as_ref().map(|s| &s.get_ref()[..]);
            let spans: Vec<_> = match written {
                Some(w) => w.iter().map(|s| s.span()).collect(),
                None => vec![value.name.span(); tenant.schemas.len()],
            };
            self.claim_schemas(&prefix, &tenant, &spans, &mut claims);
            out.push(tenant);
        }
        for (Indexed { index, value }, cluster) in raw_clusters.iter().zip(clusters) {
            let Some(RawTenantList::List(names)) = value.tenants.as_ref().map(|t| t.get_ref())
            else {
                continue;
            };
            for (i, written) in names.iter().enumerate() {
                let path = format!("clusters[{index}].tenants[{i}]");
                let name = self.name(&path, written, "tenant");
                let tenant = cluster.tenant(&name);
                self.claim_name((&path, &path), written, &name, &mut claims);
                let spans = vec![written.span(); tenant.schemas.len()];
                self.claim_schemas(&path, &tenant, &spans, &mut claims);
                out.push(tenant);
            }
        }
        out
    }

    fn tenant(
        &mut self,
        prefix: &str,
        raw: &RawTenant,
        clusters: &HashMap<&str, &ClusterConfig>,
        defaults: &Inherited,
    ) -> TenantConfig {
        let cluster = self.tenant_cluster(prefix, raw, clusters);
        let base = cluster.map_or(*defaults, |c| Inherited::of(&c.template));
        let inherited = self.inherited(
            prefix,
            &Overrides {
                consistency: raw.consistency.as_ref(),
                replica_fallback: raw.replica_fallback.as_ref(),
                max_replica_lag: raw.max_replica_lag.as_ref(),
                health_interval: raw.health_interval.as_ref(),
                pool_max: raw.pool_max.as_ref(),
            },
            &base,
        );
        let servers = Servers {
            primary: raw.primary.as_ref(),
            replicas: &raw.replicas,
            backend_user: raw.backend_user.as_ref(),
            backend_password: raw.backend_password.as_ref(),
            backend_tls: raw.backend_tls.as_ref(),
            max_connections: raw.max_connections.as_ref(),
        };
        let mut t = self.settings(prefix, &servers, &inherited, cluster.map(|c| &c.template));
        t.name = self.name(&format!("{prefix}.name"), &raw.name, "tenant");
        t.schemas = match (&raw.schemas, cluster) {
            (Some(written), _) => self.schemas(prefix, written),
            (None, Some(c)) if !c.patterns.is_empty() => c.tenant(&t.name).schemas,
            (None, _) => {
                self.sink.at(
                    format!("{prefix}.schemas"),
                    raw.name.span(),
                    "a tenant needs schemas = [...] (or a cluster with schema patterns)"
                        .to_string(),
                );
                Vec::new()
            }
        };
        t
    }

    /// The cluster a tenant names, which then owns its servers: naming both is a conflict.
    fn tenant_cluster<'c>(
        &mut self,
        prefix: &str,
        raw: &RawTenant,
        clusters: &HashMap<&str, &'c ClusterConfig>,
    ) -> Option<&'c ClusterConfig> {
        let Some(written) = &raw.cluster else {
            if raw.primary.is_none() {
                self.sink.at(
                    format!("{prefix}.primary"),
                    raw.name.span(),
                    "missing field `primary`: a tenant needs primary = \"host:port\" or cluster = \"name\""
                        .to_string(),
                );
            }
            return None;
        };
        let path = format!("{prefix}.cluster");
        let name = self.string(&path, written)?;
        let Some(cluster) = clusters.get(name.as_str()) else {
            self.sink
                .at(path, written.span(), format!("unknown cluster \"{name}\""));
            return None;
        };
        if let Some(p) = &raw.primary {
            self.sink.at(
                format!("{prefix}.primary"),
                p.span(),
                format!("set either cluster or primary: cluster \"{name}\" names the servers"),
            );
        }
        if let Some(r) = raw.replicas.first() {
            self.sink.at(
                format!("{prefix}.replicas"),
                r.span(),
                format!("set either cluster or replicas: cluster \"{name}\" names the servers"),
            );
        }
        Some(cluster)
    }

    /// Servers, logins, TLS and limits of a tenant or a cluster; what `base` (a tenant's
    /// cluster) sets is kept unless overridden.
    fn settings(
        &mut self,
        prefix: &str,
        raw: &Servers<'_>,
        inherited: &Inherited,
        base: Option<&TenantConfig>,
    ) -> TenantConfig {
        let backend_user = raw
            .backend_user
            .and_then(|s| self.string(&format!("{prefix}.backend_user"), s));
        let backend_password = raw
            .backend_password
            .map(|s| self.secret(&format!("{prefix}.backend_password"), s));
        if let (Some(pw), None) = (raw.backend_password, raw.backend_user) {
            self.sink.at(
                format!("{prefix}.backend_password"),
                pw.span(),
                "backend_password is set but backend_user is missing".to_string(),
            );
        }
        let primary = raw
            .primary
            .and_then(|p| self.address(&format!("{prefix}.primary"), p));
        let tls = raw
            .backend_tls
            .and_then(|t| self.string(&format!("{prefix}.backend_tls.ca"), &t.ca));
        let max_connections =
            self.optional_positive(&format!("{prefix}.max_connections"), raw.max_connections);
        let login = match (backend_user, base) {
            // A cluster's tenant takes what it does not set itself, the password too.
            (Some(u), _) => (
                Some(u),
                backend_password.or_else(|| base.and_then(|b| b.backend_password.clone())),
            ),
            (None, Some(b)) => (b.backend_user.clone(), b.backend_password.clone()),
            (None, None) => (None, None),
        };
        // Without a password the login was silently not used: sessions logged in to the
        // servers with the client's own credentials, and `check` showed the backend user.
        if let (Some(u), (Some(_), None)) = (raw.backend_user, &login) {
            self.sink.at(
                format!("{prefix}.backend_user"),
                u.span(),
                "backend_user is set but backend_password is missing".to_string(),
            );
        }
        let replicas = match base {
            Some(b) => b.replicas.clone(),
            None => self.replicas(prefix, raw.replicas, primary.as_deref()),
        };
        TenantConfig {
            name: String::new(),
            schemas: Vec::new(),
            cluster: base.and_then(|b| b.cluster.clone()),
            primary: primary
                .or_else(|| base.map(|b| b.primary.clone()))
                .unwrap_or_default(),
            replicas,
            consistency: inherited.consistency,
            replica_fallback: inherited.replica_fallback,
            max_replica_lag: inherited.max_replica_lag,
            health_interval: inherited.health_interval,
            pool_max: inherited.pool_max,
            max_connections: max_connections.or_else(|| base.and_then(|b| b.max_connections)),
            backend_user: login.0,
            backend_password: login.1,
            backend_tls_ca: tls.or_else(|| base.and_then(|b| b.backend_tls_ca.clone())),
        }
    }

    fn schemas(&mut self, prefix: &str, raw: &Spanned<Vec<Str>>) -> Vec<String> {
        if raw.get_ref().is_empty() {
            self.sink.at(
                format!("{prefix}.schemas"),
                raw.span(),
                "a tenant needs at least one schema".to_string(),
            );
        }
        raw.get_ref()
            .iter()
            .enumerate()
            .map(|(i, s)| self.name(&format!("{prefix}.schemas[{i}]"), s, "schema"))
            .collect()
    }

    fn replicas(
        &mut self,
        prefix: &str,
        raw: &[Spanned<RawReplica>],
        primary: Option<&str>,
    ) -> Vec<ReplicaConfig> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, item) in raw.iter().enumerate() {
            let path = format!("{prefix}.replicas[{i}]");
            let Some(replica) = self.replica(&path, item) else {
                continue;
            };
            // The monitor finds it writable and never reads from it: every read went to the
            // primary, or failed with `replica_fallback = "error"`.
            if primary.is_some_and(|p| p.eq_ignore_ascii_case(&replica.addr)) {
                self.sink.at(
                    path.clone(),
                    item.span(),
                    format!("replica \"{}\" is the tenant's primary", replica.addr),
                );
            }
            if !seen.insert(replica.addr.to_ascii_lowercase()) {
                self.sink.at(
                    path,
                    item.span(),
                    format!("replica \"{}\" is listed twice", replica.addr),
                );
            }
            out.push(replica);
        }
        out
    }

    fn replica(&mut self, path: &str, item: &Spanned<RawReplica>) -> Option<ReplicaConfig> {
        match item.get_ref() {
            RawReplica::Addr(addr) => {
                let spanned = Spanned::new(item.span(), addr.clone());
                let addr = self.address(path, &spanned)?;
                Some(ReplicaConfig { addr, weight: 1 })
            }
            RawReplica::Table(t) => {
                let weight = self.positive(&format!("{path}.weight"), t.weight.as_ref(), 1);
                let addr = self.address(path, &t.addr)?;
                Some(ReplicaConfig { addr, weight })
            }
        }
    }

    /// `at`: the key path to report a duplicate at, and the place it defines (named in the
    /// message when a later one repeats the name).
    fn claim_name(&mut self, at: (&str, &str), written: &Str, name: &str, claims: &mut Claims) {
        if name.is_empty() {
            return;
        }
        match claims.names.get(name) {
            Some(first) => self.sink.at(
                at.0,
                written.span(),
                format!("duplicate tenant name \"{name}\" (first defined as {first})"),
            ),
            None => {
                claims.names.insert(name.to_string(), at.1.to_string());
            }
        }
    }

    /// A schema routes to exactly one tenant; a second claim would make routing ambiguous.
    /// `spans[i]` is where `tenant.schemas[i]` was written (or what implied it).
    fn claim_schemas(
        &mut self,
        path: &str,
        tenant: &TenantConfig,
        spans: &[std::ops::Range<usize>],
        claims: &mut Claims,
    ) {
        for (i, (schema, span)) in tenant.schemas.iter().zip(spans).enumerate() {
            if schema.is_empty() {
                continue;
            }
            let message = match claims.schemas.get(schema) {
                None => {
                    let owner = (path.to_string(), tenant.name.clone());
                    claims.schemas.insert(schema.clone(), owner);
                    match case_clash(claims, path, tenant, schema) {
                        Some(m) => m,
                        None => continue,
                    }
                }
                Some((owner, _)) if owner == path => {
                    format!("schema \"{schema}\" is listed twice")
                }
                Some((_, owner_name)) => {
                    format!("schema \"{schema}\" is already owned by tenant \"{owner_name}\"")
                }
            };
            self.sink
                .at(format!("{path}.schemas[{i}]"), span.clone(), message);
        }
    }

    fn users(&mut self, raws: &[Indexed<RawUser>], known: &Known) -> Vec<UserConfig> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raws.len());
        for Indexed { index, value } in raws {
            let prefix = format!("users[{index}]");
            let user = self.user(&prefix, value, known);
            if let Some(first) = seen.get(&user.name) {
                self.sink.at(
                    format!("{prefix}.name"),
                    value.name.span(),
                    format!(
                        "duplicate user name \"{}\" (first defined as users[{first}])",
                        user.name
                    ),
                );
            } else if !user.name.is_empty() {
                seen.insert(user.name.clone(), *index);
            }
            out.push(user);
        }
        out
    }

    fn user(&mut self, prefix: &str, raw: &RawUser, known: &Known) -> UserConfig {
        let name = self.user_name(&format!("{prefix}.name"), &raw.name);
        let pattern = self.user_pattern(prefix, raw, &name);
        UserConfig {
            tenants: match pattern {
                // Bound per login, to the tenant the name spells.
                Some(_) => UserTenants::One(String::new()),
                None => self.user_tenants(prefix, raw, known),
            },
            name,
            pattern,
            password: self.user_password(prefix, raw),
            max_connections: self.optional_positive(
                &format!("{prefix}.max_connections"),
                raw.max_connections.as_ref(),
            ),
            require_tls: raw.require_tls.as_ref().is_some_and(|b| *b.get_ref()),
        }
    }

    /// A user template (`name = "{tenant}_app"`) takes its tenant from each login's name;
    /// naming a tenant as well would say two things.
    fn user_pattern(&mut self, prefix: &str, raw: &RawUser, name: &str) -> Option<NamePattern> {
        if !NamePattern::is_pattern(name) {
            return None;
        }
        let path = format!("{prefix}.name");
        let pattern = NamePattern::parse(name)
            .map_err(|m| self.sink.at(&path, raw.name.span(), m))
            .ok()?;
        if let Some(span) = raw
            .tenant
            .as_ref()
            .map(|t| t.span())
            .or_else(|| raw.tenants.as_ref().map(|t| t.span()))
        {
            self.sink.at(
                prefix,
                span,
                format!(
                    "user \"{name}\" is bound to the tenant its name spells: remove tenant/tenants"
                ),
            );
        }
        Some(pattern)
    }

    /// `password` (plaintext) or `password_hash` (what the server stores), exactly one.
    fn user_password(&mut self, prefix: &str, raw: &RawUser) -> UserPassword {
        match (&raw.password, &raw.password_hash) {
            (Some(pw), None) => UserPassword::plain(self.secret(&format!("{prefix}.password"), pw)),
            (None, Some(h)) => {
                let path = format!("{prefix}.password_hash");
                let Some(text) = self.string(&path, h) else {
                    return UserPassword::plain(Secret::new(""));
                };
                match PasswordHash::parse(&text) {
                    Ok(hash) => UserPassword::Hash(hash),
                    Err(m) => {
                        self.sink.at(path, h.span(), m);
                        UserPassword::plain(Secret::new(""))
                    }
                }
            }
            (Some(_), Some(h)) => {
                self.sink.at(
                    prefix,
                    h.span(),
                    "set either password or password_hash, not both".to_string(),
                );
                UserPassword::plain(Secret::new(""))
            }
            (None, None) => {
                self.sink.at(
                    prefix,
                    raw.name.span(),
                    "a user needs password or password_hash".to_string(),
                );
                UserPassword::plain(Secret::new(""))
            }
        }
    }

    fn user_tenants(&mut self, prefix: &str, raw: &RawUser, known: &Known) -> UserTenants {
        match (&raw.tenant, &raw.tenants) {
            (Some(one), None) => {
                let path = format!("{prefix}.tenant");
                let name = self.string(&path, one);
                self.check_known(&path, one, name.as_deref(), known);
                UserTenants::One(name.unwrap_or_default())
            }
            (None, Some(many)) => self.tenant_list(&format!("{prefix}.tenants"), many, known),
            (Some(_), Some(many)) => {
                self.sink.at(
                    prefix,
                    many.span(),
                    "set either tenant or tenants, not both".to_string(),
                );
                UserTenants::All
            }
            (None, None) => {
                self.sink.at(
                    prefix,
                    raw.name.span(),
                    "user needs tenant = \"name\", tenants = [\"a\", \"b\"] or tenants = \"*\""
                        .to_string(),
                );
                UserTenants::All
            }
        }
    }

    fn tenant_list(
        &mut self,
        path: &str,
        raw: &Spanned<RawTenantList>,
        known: &Known,
    ) -> UserTenants {
        match raw.get_ref() {
            RawTenantList::Star(text) => {
                let spanned = Spanned::new(raw.span(), text.clone());
                let value = self.string(path, &spanned);
                if value.as_deref().is_some_and(|v| v != "*") {
                    self.sink.at(
                        path,
                        raw.span(),
                        "tenants must be \"*\" or a list of tenant names \
                         (for a single tenant write tenant = \"name\")"
                            .to_string(),
                    );
                }
                UserTenants::All
            }
            RawTenantList::List(names) => {
                if names.is_empty() {
                    self.sink.at(
                        path,
                        raw.span(),
                        "tenants list is empty (use tenants = \"*\" for every tenant)".to_string(),
                    );
                }
                let resolved = names
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let item_path = format!("{path}[{i}]");
                        let name = self.string(&item_path, s);
                        self.check_known(&item_path, s, name.as_deref(), known);
                        name.unwrap_or_default()
                    })
                    .collect();
                UserTenants::List(resolved)
            }
        }
    }

    /// `name` is `None` when its `${VAR}` failed, which is already reported.
    fn check_known(&mut self, path: &str, written: &Str, name: Option<&str>, known: &Known) {
        if let Some(name) = name.filter(|n| !known.contains(n)) {
            self.sink
                .at(path, written.span(), format!("unknown tenant \"{name}\""));
        }
    }
}

/// A claim of `schema` by another tenant on the same server spelt in another letter case
/// (the claim is recorded either way).
fn case_clash(
    claims: &mut Claims,
    path: &str,
    tenant: &TenantConfig,
    schema: &str,
) -> Option<String> {
    let others = claims.folded.entry(schema.to_lowercase()).or_default();
    let clash = others
        .iter()
        .find(|c| {
            c.path != path && c.spelt != schema && c.primary.eq_ignore_ascii_case(&tenant.primary)
        })
        .map(|c| {
            format!(
                "schema \"{schema}\" differs from tenant \"{}\"'s \"{}\" on the same server in letter case only: one database where the server ignores case (lower_case_table_names)",
                c.tenant, c.spelt
            )
        });
    others.push(SchemaClaim {
        path: path.to_string(),
        tenant: tenant.name.clone(),
        spelt: schema.to_string(),
        primary: tenant.primary.clone(),
    });
    clash
}

/// Whether two listen addresses (`host:port`, `[v6]:port`) would take one socket: the same
/// port on the same host, or on a wildcard host and any other.
fn same_socket(a: &str, b: &str) -> bool {
    let split = |s: &str| {
        s.rsplit_once(':').map(|(h, p)| {
            (
                h.trim_matches(['[', ']']).to_ascii_lowercase(),
                p.to_string(),
            )
        })
    };
    let (Some((ha, pa)), Some((hb, pb))) = (split(a), split(b)) else {
        return false;
    };
    // `::` takes IPv4 too (Linux binds it dual-stack by default), `0.0.0.0` IPv4 only.
    let v4_any = |h: &str, other: &str| h == "0.0.0.0" && !other.contains(':');
    let clash = ha == hb
        || ha == "::"
        || hb == "::"
        || ha.is_empty()
        || hb.is_empty()
        || v4_any(&ha, &hb)
        || v4_any(&hb, &ha);
    pa == pb && clash
}
