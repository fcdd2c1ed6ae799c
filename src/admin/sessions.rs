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
            join(&r.backends).into(),
            Cell::Count(e.statements.load(std::sync::atomic::Ordering::Relaxed)),
            Cell::Count(age),
        ]);
    }
    Ok(table)
}
