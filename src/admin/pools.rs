//! `SHOW POOLS` and the pool series of `/metrics`: per (tenant, server) how many connections
//! are open, idle and leased, who waits and how long, how leases were restored, and which
//! pins keep sessions on their connections.

use std::collections::BTreeMap;

use super::table::{Cell, Kind, Reply, Table};
use crate::backend::lease::{GroupStats, Restore};
use crate::frontend::PinReason as Reason;
use crate::state::RuntimeState;

/// The role `addr` plays for `tenant` now (a group outlives a promotion or a reload).
fn role(rt: &RuntimeState, tenant: &str, addr: &str) -> &'static str {
    match rt.directory.tenant(tenant) {
        Some(t) if rt.primary_addr(&t) == addr => "primary",
        Some(t) if t.replicas.iter().any(|r| r.addr == addr) => "replica",
        Some(_) => "former",
        None => "removed",
    }
}

pub fn show(rt: &RuntimeState) -> Reply {
    let sessions = super::tenants::sessions_by_tenant(rt);
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("address", Kind::Text),
        ("role", Kind::Text),
        ("pool_max", Kind::Count),
        ("open", Kind::Count),
        ("idle", Kind::Count),
        ("leased", Kind::Count),
        ("waiting", Kind::Count),
        ("waits", Kind::Count),
        ("wait_timeouts", Kind::Count),
        ("longest_wait_ms", Kind::Real),
        ("client_sessions", Kind::Count),
        ("clients_per_connection", Kind::Real),
        ("restores_none", Kind::Count),
        ("restores_set", Kind::Count),
        ("restores_reset", Kind::Count),
        ("restores_change_user", Kind::Count),
    ]);
    for g in rt.shared.pools.stats() {
        let clients = sessions.get(&g.tenant).copied().unwrap_or(0);
        let ratio = if g.open == 0 {
            Cell::Null
        } else {
            Cell::Real(clients as f64 / g.open as f64)
        };
        table.push(vec![
            g.tenant.as_str().into(),
            g.addr.as_str().into(),
            role(rt, &g.tenant, &g.addr).into(),
            Cell::Count(g.cap as u64),
            Cell::Count(g.open as u64),
            Cell::Count(g.idle as u64),
            Cell::Count(leased(&g) as u64),
            Cell::Count(g.waiting as u64),
            Cell::Count(g.waits),
            Cell::Count(g.timeouts),
            Cell::Real(g.longest_wait.as_secs_f64() * 1000.0),
            Cell::Count(clients),
            ratio,
            Cell::Count(g.restores[0]),
            Cell::Count(g.restores[1]),
            Cell::Count(g.restores[2]),
            Cell::Count(g.restores[3]),
        ]);
    }
    Ok(table)
}

fn leased(g: &GroupStats) -> usize {
    g.open.saturating_sub(g.idle)
}

/// One metric family's samples: labels -> value.
pub type Family = BTreeMap<Vec<(&'static str, String)>, f64>;

/// The pool families for `/metrics`, by name: (help, is counter, samples). Tenant labels go
/// through `label` (bounded like the other tenant series).
pub fn metric_families(
    rt: &RuntimeState,
    label: impl Fn(&str) -> String,
) -> Vec<(&'static str, &'static str, bool, Family)> {
    let mut open = Family::new();
    let mut idle = Family::new();
    let mut waiting = Family::new();
    let mut waits = Family::new();
    let mut timeouts = Family::new();
    let mut wait_seconds = Family::new();
    let mut restores = Family::new();
    for g in rt.shared.pools.stats() {
        let l = vec![("tenant", label(&g.tenant)), ("addr", g.addr.clone())];
        *open.entry(l.clone()).or_default() += g.open as f64;
        *idle.entry(l.clone()).or_default() += g.idle as f64;
        *waiting.entry(l.clone()).or_default() += g.waiting as f64;
        *waits.entry(l.clone()).or_default() += g.waits as f64;
        *timeouts.entry(l.clone()).or_default() += g.timeouts as f64;
        *wait_seconds.entry(l.clone()).or_default() += g.wait_total.as_secs_f64();
        for (kind, n) in Restore::ALL.iter().zip(g.restores) {
            let mut k = l.clone();
            k.push(("kind", kind.name().to_owned()));
            *restores.entry(k).or_default() += n as f64;
        }
    }
    let mut pins = Family::new();
    for e in rt.shared.registry.list() {
        for p in e.report().pins {
            *pins.entry(vec![("reason", pin_reason(&p))]).or_default() += 1.0;
        }
    }
    vec![
        ("switchyard_pool_open", "Backend connections open (idle or leased), by tenant and server; at most pool_max", false, open),
        ("switchyard_pool_idle_connections", "Open backend connections not leased to any session, by tenant and server", false, idle),
        ("switchyard_pool_waiting", "Statements waiting for a backend connection now (all pool_max busy), by tenant and server", false, waiting),
        ("switchyard_pool_waits", "Statements that had to wait for a backend connection, by tenant and server", true, waits),
        ("switchyard_pool_wait_timeouts", "Statements refused with ERR 1040 after server.pool_timeout without a backend connection", true, timeouts),
        ("switchyard_pool_wait_seconds", "Time statements spent waiting for a backend connection", true, wait_seconds),
        ("switchyard_state_restores", "Leases by how the connection was brought to the session's state: none (already in it), set (SETs, USE), reset (COM_RESET_CONNECTION first), change_user (another backend user's idle connection, logged in again with COM_CHANGE_USER)", true, restores),
        ("switchyard_session_pins", "Pins keeping sessions on their backend connections now, by reason", false, pins),
    ]
}

/// A SHOW SESSIONS pin ("temporary table t1", "named lock x2") without its particulars.
fn pin_reason(p: &str) -> String {
    Reason::of_described(p).map_or_else(|| p.to_owned(), |r| r.name().to_owned())
}
