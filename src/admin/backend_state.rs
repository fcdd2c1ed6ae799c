//! `SET BACKEND <addr> OFFLINE | ONLINE`: take a replica out of read rotation, or put it
//! back. The setting survives reloads; the primary is not affected (writes have nowhere
//! else to go).

use opensrv_mysql::ErrorKind;

use super::backends::rows;
use super::table::{join, AdminError, Kind, Reply, Table};
use crate::state::SharedState;

pub async fn set(state: &SharedState, addr: &str, offline: bool) -> Reply {
    let rt = state.load_full();
    let all = rows(&rt);
    let matching: Vec<_> = all.iter().filter(|b| b.addr == addr).collect();
    if matching.is_empty() {
        let mut known: Vec<String> = all.iter().map(|b| b.addr.clone()).collect();
        known.sort();
        known.dedup();
        return Err(AdminError::new(
            ErrorKind::ER_UNKNOWN_ERROR,
            format!("Unknown backend '{addr}'. Backends: {}", join(&known)),
        ));
    }
    let replica_of: Vec<String> = matching
        .iter()
        .filter(|b| b.role == "replica")
        .map(|b| b.tenant.clone())
        .collect();
    if replica_of.is_empty() {
        return Err(AdminError::new(
            ErrorKind::ER_NOT_SUPPORTED_YET,
            format!(
                "Backend '{addr}' is only a primary (tenant {}): OFFLINE takes replicas out of read rotation, a primary cannot be replaced",
                join(&matching.iter().map(|b| b.tenant.clone()).collect::<Vec<_>>())
            ),
        ));
    }
    let changed = match rt.shared.fleet.get() {
        // Written to etcd; every instance (this one too) applies it through its watch.
        Some(fleet) => {
            let command = if offline {
                "SET BACKEND OFFLINE"
            } else {
                "SET BACKEND ONLINE"
            };
            fleet
                .set_offline(addr, offline)
                .await
                .map_err(|e| super::pause::refused(fleet, command, &e))?
        }
        None => rt.shared.health.set_offline(addr, offline),
    };
    let state_name = if offline { "offline" } else { "online" };
    if changed {
        tracing::info!(%addr, state = state_name, "backend set by admin");
    }
    let mut t = Table::new(&[
        ("address", Kind::Text),
        ("state", Kind::Text),
        ("changed", Kind::Flag),
        ("replica_of", Kind::Text),
    ]);
    t.push(vec![
        addr.into(),
        state_name.into(),
        changed.into(),
        join(&replica_of).into(),
    ]);
    Ok(t)
}
