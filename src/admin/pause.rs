//! `PAUSE TENANT <name> [TIMEOUT <s>]` and `RESUME TENANT <name>`: hold a tenant's new
//! statements for a schema upgrade. The pause takes effect at once (new statements outside
//! a transaction wait); PAUSE then waits for the tenant's open transactions to end, up to
//! the timeout, and reports the sessions that still hold one.

use std::time::{Duration, Instant};

use super::table::{AdminError, Cell, Kind, Reply, Table};
use crate::state::SharedState;

/// How often PAUSE looks at the sessions while it waits.
const POLL: Duration = Duration::from_millis(20);

fn table() -> Table {
    Table::new(&[
        ("tenant", Kind::Text),
        ("status", Kind::Text),
        ("sessions_still_in_transaction", Kind::Text),
        ("waited_seconds", Kind::Real),
        ("message", Kind::Text),
    ])
}

pub async fn pause(state: &SharedState, tenant: &str, timeout: Duration) -> Reply {
    let rt = state.load_full();
    if rt.tenant(tenant).is_none() {
        return Err(AdminError::unknown_tenant(tenant));
    }
    rt.shared.pauses.pause(tenant);
    tracing::info!(%tenant, "tenant paused by admin");
    let started = Instant::now();
    let deadline = started + timeout;
    let holding = loop {
        let holding = rt.shared.registry.in_transaction(tenant);
        if holding.is_empty() || Instant::now() >= deadline {
            break holding;
        }
        tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
    };
    let ids: Vec<String> = holding.iter().map(u32::to_string).collect();
    let message = if ids.is_empty() {
        "no open transactions: new statements are held until RESUME TENANT".to_string()
    } else {
        format!(
            "the pause stays in force, but {} session(s) still hold a transaction after {}s: \
             their statements proceed until the transaction ends",
            ids.len(),
            timeout.as_secs_f64()
        )
    };
    let mut t = table();
    t.push(vec![
        tenant.into(),
        "paused".into(),
        ids.join(", ").into(),
        Cell::Real(started.elapsed().as_secs_f64()),
        message.into(),
    ]);
    Ok(t)
}

pub fn resume(state: &SharedState, tenant: &str) -> Reply {
    let rt = state.load_full();
    let was_paused = rt.shared.pauses.resume(tenant);
    if !was_paused && rt.tenant(tenant).is_none() {
        return Err(AdminError::unknown_tenant(tenant));
    }
    if was_paused {
        tracing::info!(%tenant, "tenant resumed by admin");
    }
    let mut t = table();
    t.push(vec![
        tenant.into(),
        "running".into(),
        "".into(),
        Cell::Real(0.0),
        if was_paused {
            "resumed: held statements proceed".into()
        } else {
            "was not paused".into()
        },
    ]);
    Ok(t)
}
