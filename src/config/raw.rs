//! The serde schema of the TOML file, as written (before `${VAR}` expansion and defaults).
//!
//! Values that can be wrong in ways serde cannot see are kept `Spanned`, so validation can
//! point at their line.

use std::fmt;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A string value with its byte span in the file.
pub type Str = Spanned<String>;

/// The top-level sections this schema knows; anything else is an unknown key.
pub const SECTIONS: [&str; 8] = [
    "server", "admin", "monitor", "defaults", "clusters", "tenants", "users", "fleet",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Str>,
    pub admin_listen: Option<Str>,
    pub http_listen: Option<Str>,
    pub http_auth: Option<Str>,
    pub max_connections: Option<Spanned<u32>>,
    pub handshake_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub client_write_timeout: Option<Str>,
    pub shutdown_grace: Option<Str>,
    pub pause_max_hold: Option<Str>,
    pub pool_timeout: Option<Str>,
    pub slow_statement: Option<Str>,
    pub tls_cert: Option<Str>,
    pub tls_key: Option<Str>,
    pub require_tls: Option<Spanned<bool>>,
    pub rsa_private_key: Option<Str>,
    pub max_packet: Option<Str>,
    pub threads: Option<Spanned<u32>>,
    pub proxy_protocol: Option<Spanned<Vec<Str>>>,
    pub reset_after_quit: Option<Spanned<bool>>,
    pub worker_fill: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub user: Str,
    pub password: Str,
}

/// `[monitor]`: credentials and pacing of the backend health checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub user: Str,
    pub password: Str,
    pub connect_timeout: Option<Str>,
    pub rise: Option<Spanned<u32>>,
    pub fall: Option<Spanned<u32>>,
}

/// `[fleet]`: this instance's place in a fleet of Switchyards sharing state through etcd.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFleet {
    pub name: Str,
    pub etcd: Spanned<Vec<Str>>,
    pub instance: Str,
    pub advertise: Option<Str>,
    pub lease_ttl: Option<Str>,
    pub ack_timeout: Option<Str>,
    pub etcd_timeout: Option<Str>,
    pub document_cache: Option<Str>,
}

/// Shared by `[defaults]` and each tenant's overrides.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub consistency: Option<Str>,
    pub replica_fallback: Option<Str>,
    pub max_replica_lag: Option<Str>,
    pub health_interval: Option<Str>,
    pub pool_max: Option<Spanned<u32>>,
}

/// `[[clusters]]`: servers, TLS and limits written once for many tenants, and the schema
/// patterns (`wf_{tenant}`) that name each tenant's schemas on it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Str,
    pub primary: Str,
    #[serde(default)]
    pub replicas: Vec<Spanned<RawReplica>>,
    pub schemas: Option<Spanned<Vec<Str>>>,
    pub tenants: Option<Spanned<RawTenantList>>,
    pub consistency: Option<Str>,
    pub replica_fallback: Option<Str>,
    pub max_replica_lag: Option<Str>,
    pub health_interval: Option<Str>,
    pub pool_max: Option<Spanned<u32>>,
    pub max_connections: Option<Spanned<u32>>,
    pub backend_user: Option<Str>,
    pub backend_password: Option<Str>,
    pub backend_tls: Option<RawBackendTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub name: Str,
    pub schemas: Option<Spanned<Vec<Str>>>,
    pub cluster: Option<Str>,
    pub primary: Option<Str>,
    #[serde(default)]
    pub replicas: Vec<Spanned<RawReplica>>,
    pub consistency: Option<Str>,
    pub replica_fallback: Option<Str>,
    pub max_replica_lag: Option<Str>,
    pub health_interval: Option<Str>,
    pub pool_max: Option<Spanned<u32>>,
    pub max_connections: Option<Spanned<u32>>,
    pub backend_user: Option<Str>,
    pub backend_password: Option<Str>,
    pub backend_tls: Option<RawBackendTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackendTls {
    pub ca: Str,
}

/// A replica: `"host:port"` or `{ addr = "host:port", weight = 2 }`.
#[derive(Debug)]
pub enum RawReplica {
    Addr(String),
    Table(RawReplicaTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplicaTable {
    pub addr: Str,
    pub weight: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: Str,
    pub password: Option<Str>,
    pub password_hash: Option<Str>,
    pub tenant: Option<Str>,
    pub tenants: Option<Spanned<RawTenantList>>,
    pub max_connections: Option<Spanned<u32>>,
    pub require_tls: Option<Spanned<bool>>,
}

/// `tenants = "*"` or `tenants = ["a", "b"]`. Any string is accepted here because it may
/// still be a `${VAR}`; whether it is `"*"` is decided after expansion.
#[derive(Debug)]
pub enum RawTenantList {
    Star(String),
    List(Vec<Str>),
}

// serde's untagged enums would lose both the spans (toml's `Spanned` needs toml's own
// deserializer) and the inner error messages, hence the two hand-written visitors below.

impl<'de> Deserialize<'de> for RawReplica {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ReplicaVisitor)
    }
}

struct ReplicaVisitor;

impl<'de> Visitor<'de> for ReplicaVisitor {
    type Value = RawReplica;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"host:port\" or { addr = \"host:port\", weight = N }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawReplica, E> {
        Ok(RawReplica::Addr(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawReplica, A::Error> {
        RawReplicaTable::deserialize(MapAccessDeserializer::new(map)).map(RawReplica::Table)
    }
}

impl<'de> Deserialize<'de> for RawTenantList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TenantListVisitor)
    }
}

struct TenantListVisitor;

impl<'de> Visitor<'de> for TenantListVisitor {
    type Value = RawTenantList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"*\" or a list of tenant names")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawTenantList, E> {
        Ok(RawTenantList::Star(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawTenantList, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element::<Str>()? {
            names.push(name);
        }
        Ok(RawTenantList::List(names))
    }
}
