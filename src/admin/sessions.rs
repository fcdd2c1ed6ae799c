//! `SHOW SESSIONS`: live client sessions with their tenant, schema, transaction, pins and
//! the backends they hold connections to.

use std::time::SystemTime;

use super::table::{join, Cell, Kind, Reply, Table};
use crate::state::RuntimeState;

pub fn show(rt: &RuntimeState) -> Reply {
    let mut table = Table::new(&[
        ("id", Kind::Count),
        ("user", Kind::Text),
        ("host", Kind::Text),
        ("tenant", Kind::Text),
        ("schema", Kind::Text),
        ("in_transaction", Kind::Flag),
        ("transaction_backend", Kind::Text),
        ("pins", Kind::Text),
        ("backends", Kind::Text),
        ("statements", Kind::Count),
        ("connected_seconds", Kind::Count),
    ]);
    let now = SystemTime::now();
    for e in rt.shared.registry.list() {
        let r = e.report();
        let backends = held_backends(rt, r.tenant.as_deref(), e.held());
        let age = now.duration_since(e.started).map_or(0, |d| d.as_secs());
        table.push(vec![
            Cell::Count(e.id.into()),
            r.user.into(),
            e.host.as_str().into(),
            r.tenant.into(),
            r.schema.into(),
            r.transaction.is_some().into(),
            r.transaction.into(),
            join(&r.pins).into(),
            join(&backends).into(),
            Cell::Count(e.statements.load(std::sync::atomic::Ordering::Relaxed)),
            Cell::Count(age),
        ]);
    }
    Ok(table)
}

/// The addresses of the backend connections a session holds, from the slots it published
/// (`SessionEntry::held`) and its tenant's servers.
pub(super) fn held_backends(rt: &RuntimeState, tenant: Option<&str>, mask: u64) -> Vec<String> {
    match tenant.and_then(|t| rt.tenant(t)) {
        Some(tc) if mask != 0 => crate::backend::held::addrs_of_mask(&tc, mask),
        _ => Vec::new(),
    }
}
