//! `SHOW TENANTS [LIKE ...] [LIMIT n [OFFSET m]]`: each named tenant, and each tenant an open
//! cluster made that has sessions now, in name order: servers, settings, users, sessions,
//! pause.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::command::TenantFilter;
use super::table::{join, Cell, Kind, Reply, Table};
use crate::config::{format_duration, TenantConfig, UserTenants};
use crate::router::like::like;
use crate::state::RuntimeState;

pub fn show(rt: &RuntimeState, filter: &TenantFilter) -> Reply {
    let sessions = sessions_by_tenant(rt);
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("cluster", Kind::Text),
        ("schemas", Kind::Text),
        ("primary", Kind::Text),
        ("replicas", Kind::Text),
        ("consistency", Kind::Text),
        ("max_replica_lag", Kind::Text),
        ("pool_max", Kind::Count),
        ("users", Kind::Text),
        ("sessions", Kind::Count),
        ("paused", Kind::Flag),
        ("held_statements", Kind::Count),
    ]);
    let users = users_by_tenant(rt);
    let page = listed(rt, &sessions)
        .into_values()
        .filter(|t| {
            filter
                .like
                .as_ref()
                .is_none_or(|p| like(p.as_bytes(), t.name.as_bytes()))
        })
        .skip(filter.offset)
        .take(filter.limit.unwrap_or(usize::MAX));
    for t in page {
        let mut names = users.get(t.name.as_str()).cloned().unwrap_or_default();
        names.extend(users.get("").into_iter().flatten().cloned());
        table.push(vec![
            t.name.as_str().into(),
            t.cluster.as_deref().unwrap_or("").into(),
            join(&t.schemas).into(),
            t.primary.as_str().into(),
            join(&replicas(&t)).into(),
            t.consistency.as_str().into(),
            format_duration(t.max_replica_lag).into(),
            u64::from(t.pool_max).into(),
            join(&names).into(),
            Cell::Count(sessions.get(&t.name).copied().unwrap_or(0)),
            rt.shared.pauses.is_paused(&t.name).into(),
            Cell::Count(rt.shared.pauses.waiting(&t.name) as u64),
        ]);
    }
    Ok(table)
}

/// Live sessions per tenant name.
pub(super) fn sessions_by_tenant(rt: &RuntimeState) -> HashMap<String, u64> {
    let mut sessions: HashMap<String, u64> = HashMap::new();
    for e in rt.shared.registry.list() {
        if let Some(t) = e.report().tenant {
            *sessions.entry(t).or_default() += 1;
        }
    }
    sessions
}

/// Named tenants, and tenants made by pattern that have sessions, by name.
pub(super) fn listed(
    rt: &RuntimeState,
    sessions: &HashMap<String, u64>,
) -> BTreeMap<String, Arc<TenantConfig>> {
    let mut out: BTreeMap<String, Arc<TenantConfig>> = rt
        .directory
        .named()
        .map(|t| (t.name.clone(), Arc::clone(t)))
        .collect();
    for name in sessions.keys() {
        if !out.contains_key(name) {
            if let Some(t) = rt.tenant(name) {
                out.insert(name.clone(), t);
            }
        }
    }
    out
}

/// Login names per tenant, in one pass over the users (`""`: users of every tenant;
/// templates under the tenant they would bind, which is any).
fn users_by_tenant(rt: &RuntimeState) -> HashMap<&str, Vec<String>> {
    let mut out: HashMap<&str, Vec<String>> = HashMap::new();
    for u in &rt.config.users {
        match &u.tenants {
            _ if u.pattern.is_some() => out.entry("").or_default().push(u.name.clone()),
            UserTenants::One(t) => out.entry(t.as_str()).or_default().push(u.name.clone()),
            UserTenants::List(ts) => {
                for t in ts {
                    out.entry(t.as_str()).or_default().push(u.name.clone());
                }
            }
            UserTenants::All => out.entry("").or_default().push(u.name.clone()),
        }
    }
    out
}

fn replicas(t: &TenantConfig) -> Vec<String> {
    t.replicas
        .iter()
        .map(|r| {
            if r.weight == 1 {
                r.addr.clone()
            } else {
                format!("{} (weight {})", r.addr, r.weight)
            }
        })
        .collect()
}
