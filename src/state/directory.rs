//! Who is who in a config: tenants by name and by schema (named ones, and those an open
//! cluster's patterns make of any matching schema), users by login name (templates
//! included), all found by hashing so the cost does not grow with the tenant count.

use std::sync::Arc;

// Every key comes from the config, none from what clients send (tenants an open cluster
// makes are not kept here): a fast hash with no keyed defence against chosen collisions
// is enough, and each login looks up two or three names.
use rustc_hash::FxHashMap as HashMap;

use crate::config::{valid_tenant, ClusterConfig, Config, TenantConfig, UserConfig, UserTenants};

/// A schema and the tenant that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaOwner {
    pub schema: String,
    pub tenant: String,
}

/// Lookups built once per config (a reload builds a new one).
#[derive(Debug, Default)]
pub struct Directory {
    /// Named tenants. A reload keeps the same `Arc` for a tenant whose settings did not
    /// change, so its sessions can tell in one pointer comparison.
    tenants: HashMap<String, Arc<TenantConfig>>,
    /// Named tenants' schemas, exactly as written.
    by_schema: HashMap<String, Arc<TenantConfig>>,
    /// Schemas by lower-cased name, each with its exact spelling and owning tenant (usually
    /// one entry; schemas differing only in case may belong to different tenants). Isolation
    /// checks look names up here however a statement spelled them.
    schema_owners: HashMap<String, Vec<SchemaOwner>>,
    /// Users by login name, shared with their sessions (a login copied its user's strings
    /// before); templates apart, as indexes into the config's list.
    users: HashMap<String, Arc<UserConfig>>,
    templates: Vec<usize>,
    /// The cluster whose patterns make tenants of unnamed schemas.
    open: Option<Arc<ClusterConfig>>,
    /// How many tenants a session could belong to is more than one.
    several: bool,
    /// Named tenants exactly as their cluster makes its tenants (no settings of their own),
    /// by name, with the cluster's name: shown together as the cluster.
    as_cluster: HashMap<String, String>,
}

impl Directory {
    /// The lookups for `config`; tenants equal to one in `previous` keep its `Arc`.
    pub fn new(config: &Config, previous: &Directory) -> Self {
        let mut d = Directory {
            open: config.open_cluster().cloned().map(Arc::new),
            several: config.tenants.len() > 1 || config.open_cluster().is_some(),
            ..Directory::default()
        };
        d.as_cluster = config
            .plain_cluster_tenants()
            .into_iter()
            .map(|(t, c)| (t.to_string(), c.to_string()))
            .collect();
        for t in &config.tenants {
            let arc = match previous.tenants.get(&t.name) {
                Some(old) if **old == *t => Arc::clone(old),
                _ => Arc::new(t.clone()),
            };
            d.index_schemas(&arc);
            d.tenants.insert(t.name.clone(), arc);
        }
        for (i, u) in config.users.iter().enumerate() {
            match u.pattern {
                Some(_) => d.templates.push(i),
                None => {
                    d.users
                        .entry(u.name.clone())
                        .or_insert_with(|| Arc::new(u.clone()));
                }
            }
        }
        d
    }

    fn index_schemas(&mut self, t: &Arc<TenantConfig>) {
        for s in &t.schemas {
            self.by_schema.insert(s.clone(), Arc::clone(t));
            self.schema_owners
                .entry(s.to_ascii_lowercase())
                .or_default()
                .push(SchemaOwner {
                    schema: s.clone(),
                    tenant: t.name.clone(),
                });
        }
    }

    /// A named tenant, or one the open cluster would make of that name.
    pub fn tenant(&self, name: &str) -> Option<Arc<TenantConfig>> {
        if let Some(t) = self.tenants.get(name) {
            return Some(Arc::clone(t));
        }
        let open = self.open.as_ref()?;
        valid_tenant(name).then(|| Arc::new(open.tenant(name)))
    }

    /// The tenant owning `schema` (compared case-sensitively): a named tenant's, else the
    /// open cluster's tenant its patterns spell, unless that name is a named tenant (whose
    /// schemas are exactly those the config gives it).
    pub fn tenant_of_schema(&self, schema: &str) -> Option<Arc<TenantConfig>> {
        if let Some(t) = self.by_schema.get(schema) {
            return Some(Arc::clone(t));
        }
        let open = self.open.as_ref()?;
        let name = open.capture(schema)?;
        if self.tenants.contains_key(name) {
            return None;
        }
        Some(Arc::new(open.tenant(name)))
    }

    /// The user logging in as `name`: a configured user, else the first template matching.
    pub fn user(&self, config: &Config, name: &str) -> Option<Arc<UserConfig>> {
        if let Some(u) = self.users.get(name) {
            return Some(Arc::clone(u));
        }
        // Every template that takes the name, not only the first: `{tenant}_app` reads
        // `wf_acme_app` as tenant `wf_acme`, which may not exist where `wf_{tenant}_app`
        // reads tenant `acme`.
        self.templates
            .iter()
            .filter_map(|&i| config.users[i].instance(name))
            .find(|u| match &u.tenants {
                UserTenants::One(t) => self.tenant(t).is_some(),
                _ => false,
            })
            .map(Arc::new)
    }

    /// Whether `name` (a schema a statement spells) belongs to a tenant `allowed` does not
    /// include. Matched without regard to case (servers with `lower_case_table_names` do
    /// the same); when schemas differing only in case belong to different tenants, the
    /// exact spelling decides. By pattern, the tenant part must be spelled exactly as an
    /// allowed tenant's name: `wf_ACME` may be another tenant's schema than `wf_acme` on a
    /// server that keeps case. `lower` is `name` lower-cased.
    pub fn foreign(&self, allowed: &UserTenants, name: &str, lower: &str) -> bool {
        if let Some(owners) = self.schema_owners.get(lower) {
            return match owners.iter().find(|o| o.schema == name) {
                Some(exact) => !allowed.allows(&exact.tenant),
                None => owners.iter().any(|o| !allowed.allows(&o.tenant)),
            };
        }
        let Some(open) = &self.open else {
            return false;
        };
        open.patterns
            .iter()
            .filter_map(|p| p.capture_any_case(name))
            .any(|t| !allowed.allows(t))
    }

    /// More than one tenant exists (or may, by pattern): isolation checks have work to do.
    pub fn several(&self) -> bool {
        self.several
    }

    /// The cluster a tenant is shown as part of: a named tenant with no settings of its own
    /// on a cluster, or one the open cluster made.
    pub fn cluster_row(&self, tenant: &str) -> Option<&str> {
        if let Some(c) = self.as_cluster.get(tenant) {
            return Some(c);
        }
        if self.tenants.contains_key(tenant) {
            return None;
        }
        self.open.as_ref().map(|c| c.name.as_str())
    }

    /// Whether the config names this tenant (rather than an open cluster making it).
    pub fn is_named(&self, name: &str) -> bool {
        self.tenants.contains_key(name)
    }

    /// Named tenants, in no particular order.
    pub fn named(&self) -> impl Iterator<Item = &Arc<TenantConfig>> {
        self.tenants.values()
    }

    pub fn open_cluster(&self) -> Option<&Arc<ClusterConfig>> {
        self.open.as_ref()
    }
}

/// What `switchyard check --schema` prints: the tenant a schema resolves to, and how.
pub fn describe_schema(d: &Directory, schema: &str) -> String {
    let Some(t) = d.tenant_of_schema(schema) else {
        return format!("schema {schema}: no tenant (users bound to a tenant get ERR 1044)");
    };
    let how = match (d.by_schema.contains_key(schema), &t.cluster) {
        (true, _) => "named in the config".to_string(),
        (false, Some(c)) => format!("by the patterns of open cluster {c}"),
        (false, None) => "by pattern".to_string(),
    };
    format!(
        "schema {schema}: tenant {} ({how}), {}",
        t.name,
        servers(&t)
    )
}

/// What `switchyard check --user` prints: the user a login name is, and its tenants.
pub fn describe_user(d: &Directory, config: &Config, name: &str) -> String {
    let Some(u) = d.user(config, name) else {
        return format!("user {name}: unknown (login refused with ERR 1045)");
    };
    let how = if d.users.contains_key(name) {
        "named in the config"
    } else {
        "by a user template"
    };
    match &u.tenants {
        UserTenants::One(t) => {
            let servers = d.tenant(t).map(|t| servers(&t)).unwrap_or_default();
            format!("user {name} ({how}): tenant {t}, {servers}")
        }
        UserTenants::List(ts) => format!("user {name} ({how}): tenants {}", ts.join(", ")),
        UserTenants::All => format!("user {name} ({how}): any tenant, chosen by schema"),
    }
}

fn servers(t: &TenantConfig) -> String {
    let replicas: Vec<&str> = t.replicas.iter().map(|r| r.addr.as_str()).collect();
    let on = t
        .cluster
        .as_ref()
        .map(|c| format!("cluster {c}, "))
        .unwrap_or_default();
    format!(
        "{on}primary {}, replicas [{}]",
        t.primary,
        replicas.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A login name two templates take is tried against each: `{tenant}_app` reads
    /// `wf_acme_app` as a tenant `wf_acme` there is none of, `wf_{tenant}_app` as `acme`.
    /// Only the first was tried, and the login was refused as an unknown user.
    #[test]
    fn every_template_that_takes_a_name_is_tried() {
        let text = "[[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\nprimary = \"db:1\"\n\n\
            [[users]]\nname = \"{tenant}_app\"\npassword = \"a\"\n\n\
            [[users]]\nname = \"wf_{tenant}_app\"\npassword = \"b\"\n";
        let config = crate::config::parse(text, &|_| None).unwrap();
        let d = Directory::new(&config, &Directory::default());
        let user = d
            .user(&config, "wf_acme_app")
            .expect("by the second template");
        assert!(matches!(&user.tenants, UserTenants::One(t) if t == "acme"));
        assert!(d.user(&config, "acme_app").is_some());
        assert!(d.user(&config, "globex_app").is_none());
    }
}
