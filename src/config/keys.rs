//! Every key path the config file accepts, for documentation and tooling
//! (`tests/docs.rs` checks `docs/configuration.md` against [`accepted_keys`]).
//!
//! The list is read from the serde schema itself: each raw struct is asked for the field
//! names its derived `Deserialize` passes to `deserialize_struct`, so a key added to or
//! renamed in `raw.rs` shows up here without a second list to maintain. [`EXAMPLE`] is a
//! config that sets every key; unit tests keep it valid and complete.

use std::cell::Cell;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::raw::{
    RawAdmin, RawBackendTls, RawCluster, RawDefaults, RawFleet, RawMonitor, RawReplicaTable,
    RawServer, RawTenant, RawUser, SECTIONS,
};

/// A config that sets every accepted key (passwords from `${VAR}`s).
pub const EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:6033"
admin_listen = "127.0.0.1:6032"
http_listen = "127.0.0.1:9090"
http_auth = "admin"
max_connections = 10000
handshake_timeout = "10s"
idle_timeout = "8h"
client_write_timeout = "60s"
shutdown_grace = "30s"
pause_max_hold = "60s"
pool_timeout = "10s"
slow_statement = "1s"
tls_cert = "config/tls/server.pem"
tls_key = "config/tls/server.key"
require_tls = false
rsa_private_key = "config/tls/rsa.key"
max_packet = "64M"
threads = 4
proxy_protocol = ["10.0.1.0/24", "10.0.2.7"]
reset_after_quit = true
worker_fill = 75

[admin]
user = "admin"
password = "${SWITCHYARD_ADMIN_PASSWORD}"

[monitor]
user = "sy_monitor"
password = "${SWITCHYARD_MONITOR_PASSWORD}"
connect_timeout = "1s"
rise = 2
fall = 1

[fleet]
name = "prod"
etcd = ["http://10.0.2.10:2379", "http://10.0.2.11:2379", "http://10.0.2.12:2379"]
instance = "${HOSTNAME}"
advertise = "10.0.1.5:6033"
lease_ttl = "3s"
ack_timeout = "5s"
etcd_timeout = "2s"
document_cache = "/var/lib/switchyard/fleet-document.toml"

[defaults]
consistency = "tenant"
replica_fallback = "primary"
max_replica_lag = "5s"
health_interval = "500ms"
pool_max = 64

[[clusters]]
name = "eu1"
primary = "10.0.1.10:3306"
replicas = ["10.0.1.11:3306", { addr = "10.0.1.12:3306", weight = 2 }]
schemas = ["wf_{tenant}", "rb_{tenant}", "rp_{tenant}"]
tenants = "*"
consistency = "tenant"
replica_fallback = "primary"
max_replica_lag = "5s"
health_interval = "1s"
pool_max = 16
max_connections = 100
backend_user = "eu1_backend"
backend_password = "${EU1_BACKEND_PASSWORD}"
backend_tls = { ca = "config/tls/ca.pem" }

[[tenants]]
name = "initech"
cluster = "eu1"

[[tenants]]
name = "acme"
schemas = ["wf_acme", "rb_acme"]
primary = "127.0.0.1:3307"
replicas = ["127.0.0.1:3308", { addr = "127.0.0.1:3309", weight = 2 }]
consistency = "eventual"
replica_fallback = "error"
max_replica_lag = "2s"
health_interval = "1s"
pool_max = 32
max_connections = 500
backend_user = "acme_backend"
backend_password = "${ACME_BACKEND_PASSWORD}"
backend_tls = { ca = "config/tls/ca.pem" }

[[users]]
name = "acme_app"
password = "${ACME_APP_PASSWORD}"
tenant = "acme"
max_connections = 200
require_tls = true

[[users]]
name = "ops"
password = "${OPS_PASSWORD}"
tenants = "*"

[[users]]
name = "{tenant}_app"
password = "${WORKSPACE_APP_PASSWORD}"

[[users]]
name = "reporting"
password_hash = "*0A3F7E1E4B7C4E7B0A3E0C0C1E3A5F7B9D1C3E5F"
tenant = "acme"
"#;

/// Every key path the schema accepts, sorted. Paths are written as in the docs:
/// `server.listen`, `tenants[].name`, `tenants[].replicas[].weight` (`[]`: each element
/// of an array). A key that may hold a table and a plain value (`tenants[].replicas`,
/// whose items are `"host:port"` or `{ addr, weight }`) is listed along with its children.
pub fn accepted_keys() -> Vec<String> {
    let mut out = Vec::new();
    for section in SECTIONS {
        match section {
            "server" => keys_of("server", fields_of::<RawServer>(), &mut out),
            "admin" => keys_of("admin", fields_of::<RawAdmin>(), &mut out),
            "monitor" => keys_of("monitor", fields_of::<RawMonitor>(), &mut out),
            "defaults" => keys_of("defaults", fields_of::<RawDefaults>(), &mut out),
            "clusters" => keys_of("clusters[]", fields_of::<RawCluster>(), &mut out),
            "tenants" => keys_of("tenants[]", fields_of::<RawTenant>(), &mut out),
            "users" => keys_of("users[]", fields_of::<RawUser>(), &mut out),
            "fleet" => keys_of("fleet", fields_of::<RawFleet>(), &mut out),
            // A section this list does not know yet: named as a whole, so that a docs check
            // flags it and the unit test below asks for it to be mapped.
            other => out.push(other.to_string()),
        }
    }
    out.sort();
    out
}

fn keys_of(prefix: &str, fields: &[&str], out: &mut Vec<String>) {
    for field in fields {
        let path = format!("{prefix}.{field}");
        match path.as_str() {
            "tenants[].replicas" | "clusters[].replicas" => {
                keys_of(&format!("{path}[]"), fields_of::<RawReplicaTable>(), out);
                out.push(path);
            }
            "tenants[].backend_tls" | "clusters[].backend_tls" => {
                keys_of(&path, fields_of::<RawBackendTls>(), out)
            }
            _ => out.push(path),
        }
    }
}

/// The field names `T`'s derived `Deserialize` asks for.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let seen = Cell::new(None);
    // The probe always ends in an error, after recording the fields.
    let _ = T::deserialize(FieldProbe(&seen));
    seen.get().unwrap_or(&[])
}

struct FieldProbe<'a>(&'a Cell<Option<&'static [&'static str]>>);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(Some(fields));
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn env(name: &str) -> Option<String> {
        Some(format!("{name}-value"))
    }

    /// Key paths set in a TOML document, in the notation of [`accepted_keys`].
    fn keys_in(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(t) => keys_in(&path, t, out),
                toml::Value::Array(items) => {
                    if !items.iter().all(toml::Value::is_table) {
                        out.insert(path.clone());
                    }
                    for item in items {
                        if let toml::Value::Table(t) = item {
                            keys_in(&format!("{path}[]"), t, out);
                        }
                    }
                }
                _ => {
                    out.insert(path);
                }
            }
        }
    }

    #[test]
    fn example_is_a_valid_config() {
        if let Err(e) = super::super::parse(EXAMPLE, &env) {
            panic!("EXAMPLE no longer parses (a key renamed or removed?):\n{e}");
        }
    }

    #[test]
    fn example_sets_every_accepted_key() {
        let table: toml::Table = EXAMPLE.parse().expect("EXAMPLE is TOML");
        let mut set = BTreeSet::new();
        keys_in("", &table, &mut set);
        let accepted: BTreeSet<String> = accepted_keys().into_iter().collect();
        assert_eq!(
            set, accepted,
            "EXAMPLE and the schema differ: set every key in EXAMPLE"
        );
    }

    #[test]
    fn every_section_is_mapped() {
        let keys = accepted_keys();
        for section in SECTIONS {
            assert!(
                keys.iter().any(|k| k.starts_with(&format!("{section}."))
                    || k.starts_with(&format!("{section}[]."))),
                "section [{section}] has no keys: map its raw struct in accepted_keys()"
            );
        }
    }

    #[test]
    fn lists_nested_keys() {
        let keys = accepted_keys();
        for k in [
            "server.listen",
            "tenants[].replicas",
            "tenants[].replicas[].weight",
            "tenants[].backend_tls.ca",
            "users[].tenants",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }
}
