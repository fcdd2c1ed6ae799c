//! `SHOW BACKENDS`: every server of every tenant with its role, state, lag, GTID position
//! and pool use. State, lag and GTID come from [`status_of`]: what ops set (OFFLINE), what
//! the data path learned (down after a refused connection) and, with `[monitor]`, what the
//! health checks measured (down, lagging, stopped; lag; applied GTID position).

use std::collections::HashMap;
use std::sync::Arc;

use super::table::{Cell, Kind, Reply, Table};
use crate::config::TenantConfig;
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

/// One row per (tenant, server): the primary first, then the replicas in config order. The
/// tenants a cluster makes as it makes all of them share one row per server, tenant `*`
/// and the cluster named, so thousands of tenants do not make thousands of rows.
pub struct BackendRow {
    pub tenant: String,
    pub cluster: Option<String>,
    pub addr: String,
    pub role: &'static str,
    pub weight: Option<u32>,
}

/// What a cluster row's tenant column says: every tenant of the cluster.
pub const CLUSTER_ROW: &str = "*";

pub fn rows(rt: &RuntimeState) -> Vec<BackendRow> {
    let mut out = Vec::new();
    for c in &rt.config.clusters {
        push_rows(&mut out, &c.template, CLUSTER_ROW, Some(&c.name));
    }
    for t in &rt.config.tenants {
        if rt.directory.cluster_row(&t.name).is_none() {
            push_rows(&mut out, t, &t.name, t.cluster.as_deref());
        }
    }
    out
}

fn push_rows(out: &mut Vec<BackendRow>, t: &TenantConfig, tenant: &str, cluster: Option<&str>) {
    let row = |addr: &str, role, weight| BackendRow {
        tenant: tenant.to_string(),
        cluster: cluster.map(str::to_string),
        addr: addr.to_string(),
        role,
        weight,
    };
    out.push(row(&t.primary, "primary", None));
    for r in &t.replicas {
        out.push(row(&r.addr, "replica", Some(r.weight)));
    }
}

/// (reads, writes) a row's server served: for a cluster row, summed over its tenants.
pub fn served(rt: &RuntimeState, b: &BackendRow) -> (u64, u64) {
    match (&b.cluster, b.tenant.as_str()) {
        (Some(c), CLUSTER_ROW) => rt.shared.stats.served_where(&b.addr, |tenant| {
            rt.directory.cluster_row(tenant) == Some(c.as_str())
        }),
        _ => rt.shared.stats.served_counts(&b.tenant, &b.addr),
    }
}

/// Backend connections live sessions hold, per server address.
pub fn in_use(rt: &RuntimeState) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for e in rt.shared.registry.list() {
        let tenant = e.report().tenant;
        for addr in super::sessions::held_backends(rt, tenant.as_deref(), e.held()) {
            *m.entry(addr).or_default() += 1;
        }
    }
    m
}

pub fn show(rt: &RuntimeState) -> Reply {
    let idle: HashMap<Arc<str>, usize> = rt.shared.pools.idle_counts();
    let used = in_use(rt);
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("cluster", Kind::Text),
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
        let served = served(rt, &b);
        table.push(vec![
            b.tenant.into(),
            b.cluster.map_or(Cell::Null, Cell::from),
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
