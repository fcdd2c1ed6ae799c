//! `SHOW STATS`: per tenant, statements by route, errors, fallbacks, refused hints and
//! statements held by a pause.

use std::collections::BTreeMap;

use super::table::{Cell, Kind, Reply, Table};
use crate::state::stats::TenantCounts;
use crate::state::RuntimeState;

/// Configured tenants (zeros until they run something), and others while they have counts.
pub(super) fn counts(rt: &RuntimeState) -> BTreeMap<String, TenantCounts> {
    let mut all: BTreeMap<String, TenantCounts> = rt
        .config
        .tenants
        .iter()
        .map(|t| (t.name.clone(), TenantCounts::default()))
        .collect();
    all.extend(rt.shared.stats.snapshot());
    all
}

pub fn show(rt: &RuntimeState) -> Reply {
    let all = counts(rt);
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("statements", Kind::Count),
        ("to_primary", Kind::Count),
        ("to_replica", Kind::Count),
        ("errors", Kind::Count),
        ("backend_errors", Kind::Count),
        ("fallbacks", Kind::Count),
        ("hints_refused", Kind::Count),
        ("held", Kind::Count),
        ("held_too_long", Kind::Count),
    ]);
    for (name, c) in all {
        table.push(vec![
            name.into(),
            Cell::Count(c.to_primary + c.to_replica),
            c.to_primary.into(),
            c.to_replica.into(),
            c.errors.into(),
            c.backend_errors.into(),
            c.fallbacks.into(),
            c.hints_refused.into(),
            c.held.into(),
            c.held_too_long.into(),
        ]);
    }
    Ok(table)
}
