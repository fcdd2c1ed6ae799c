//! `SHOW BACKENDS`: every server of every tenant with its role, state, lag, GTID position
//! and pool use. State, lag and GTID come from [`status_of`]: what ops set (OFFLINE), what
//! the data path learned (down after a refused connection) and, with `[monitor]`, what the
//! health checks measured (down, lagging, stopped; lag; applied GTID position).

use std::collections::HashMap;
use std::sync::Arc;

use super::table::{Cell, Kind, Reply, Table};
use crate::monitor::BackendState;
use crate::state::{RuntimeState, Shared};

/// What is known about one backend's condition.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendStatus {
    /// `up`, `down`, `lagging`, `stopped` (replication threads), `primary lost` (only the IO
    /// thread stopped, everything received applied: still serving reads) or `offline`.
    pub state: &'static str,
    /// Replication lag in seconds, when measured.
    pub lag_seconds: Option<f64>,
    /// The server's applied GTID position, when measured.
    pub gtid_position: Option<String>,
}

/// The condition of backend `addr`.
pub fn status_of(rt: &RuntimeState, addr: &str) -> BackendStatus {
    let shared: &Shared = &rt.shared;
    let measured = rt.monitor.as_ref().and_then(|m| m.status(addr));
    let state = if shared.health.is_offline(addr) {
        "offline"
    } else if !shared.health.is_up(addr) {
        "down"
    } else {
        match measured.as_ref().map(|s| s.state) {
            Some(BackendState::Down) => "down",
            Some(BackendState::Lagging) => "lagging",
            Some(BackendState::Stopped) => "stopped",
            Some(BackendState::PrimaryLost) => "primary lost",
            _ => "up",
        }
    };
    BackendStatus {
        state,
        lag_seconds: measured
            .as_ref()
            .and_then(|s| s.observed.effective_lag())
            .map(|d| d.as_secs_f64()),
        gtid_position: measured.and_then(|s| s.observed.gtid.clone()),
    }
}

/// One row per (tenant, server): the primary first, then the replicas in config order.
pub struct BackendRow {
    pub tenant: String,
    pub addr: String,
    pub role: &'static str,
    pub weight: Option<u32>,
}

pub fn rows(rt: &RuntimeState) -> Vec<BackendRow> {
    let mut out = Vec::new();
    for t in &rt.config.tenants {
        out.push(BackendRow {
            tenant: t.name.clone(),
            addr: t.primary.clone(),
            role: "primary",
            weight: None,
        });
        for r in &t.replicas {
            out.push(BackendRow {
                tenant: t.name.clone(),
                addr: r.addr.clone(),
                role: "replica",
                weight: Some(r.weight),
            });
        }
    }
    out
}

/// Backend connections live sessions hold, per server address.
pub fn in_use(shared: &Shared) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for e in shared.registry.list() {
        for addr in e.report().backends {
            *m.entry(addr).or_default() += 1;
        }
    }
    m
}

pub fn show(rt: &RuntimeState) -> Reply {
    let idle: HashMap<Arc<str>, usize> = rt.shared.pools.idle_counts();
    let used = in_use(&rt.shared);
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("address", Kind::Text),
        ("role", Kind::Text),
        ("weight", Kind::Count),
        ("state", Kind::Text),
        ("lag_seconds", Kind::Real),
        ("gtid_position", Kind::Text),
        ("pool_in_use", Kind::Count),
        ("pool_idle", Kind::Count),
        ("reads_served", Kind::Count),
        ("writes_served", Kind::Count),
    ]);
    for b in rows(rt) {
        let status = status_of(rt, &b.addr);
        let served = rt.shared.stats.served_counts(&b.tenant, &b.addr);
        table.push(vec![
            b.tenant.into(),
            b.addr.as_str().into(),
            b.role.into(),
            b.weight.map_or(Cell::Null, |w| Cell::Count(w.into())),
            status.state.into(),
            status.lag_seconds.map_or(Cell::Null, Cell::Real),
            status.gtid_position.into(),
            // Shared by the tenants on the same server: connections are per server.
            Cell::Count(used.get(&b.addr).copied().unwrap_or(0)),
            Cell::Count(idle.get(b.addr.as_str()).copied().unwrap_or(0) as u64),
            Cell::Count(served.0),
            Cell::Count(served.1),
        ]);
    }
    Ok(table)
}
