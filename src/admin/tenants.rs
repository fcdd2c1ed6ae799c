//! `SHOW TENANTS`: each configured tenant, its servers and settings, live sessions, pause.

use std::collections::HashMap;

use super::table::{join, Cell, Kind, Reply, Table};
use crate::config::format_duration;
use crate::state::RuntimeState;

pub fn show(rt: &RuntimeState) -> Reply {
    let mut sessions: HashMap<String, u64> = HashMap::new();
    for e in rt.shared.registry.list() {
        if let Some(t) = e.report().tenant {
            *sessions.entry(t).or_default() += 1;
        }
    }
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("schemas", Kind::Text),
        ("primary", Kind::Text),
        ("replicas", Kind::Text),
        ("consistency", Kind::Text),
        ("max_replica_lag", Kind::Text),
        ("pool_max", Kind::Count),
        ("users", Kind::Text),
        ("sessions", Kind::Count),
        ("paused", Kind::Flag),
    ]);
    for t in &rt.config.tenants {
        let replicas: Vec<String> = t
            .replicas
            .iter()
            .map(|r| {
                if r.weight == 1 {
                    r.addr.clone()
                } else {
                    format!("{} (weight {})", r.addr, r.weight)
                }
            })
            .collect();
        let users: Vec<String> = rt
            .config
            .users
            .iter()
            .filter(|u| u.tenants.allows(&t.name))
            .map(|u| u.name.clone())
            .collect();
        table.push(vec![
            t.name.as_str().into(),
            join(&t.schemas).into(),
            t.primary.as_str().into(),
            join(&replicas).into(),
            t.consistency.as_str().into(),
            format_duration(t.max_replica_lag).into(),
            u64::from(t.pool_max).into(),
            join(&users).into(),
            Cell::Count(sessions.get(&t.name).copied().unwrap_or(0)),
            rt.shared.pauses.is_paused(&t.name).into(),
        ]);
    }
    Ok(table)
}
