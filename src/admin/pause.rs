//! `PAUSE TENANT <name> [TIMEOUT <s>]` and `RESUME TENANT <name>`: hold a tenant's new
//! statements for a schema upgrade. The pause takes effect at once (new statements outside
//! a transaction wait); PAUSE then waits for the tenant's open transactions to end, up to
//! the timeout, and reports the sessions that still hold one.
//!
//! In a fleet both are fleet-wide: PAUSE answers once every live instance acked holding
//! the tenant (one row each), and fails naming the instances that did not.

use std::time::{Duration, Instant};

use opensrv_mysql::ErrorKind;

use super::table::{AdminError, Cell, Kind, Reply, Table};
use crate::fleet::{Fleet, FleetError, PauseFailed};
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
    if let Some(fleet) = rt.shared.fleet.get() {
        return fleet_pause(fleet, tenant, timeout).await;
    }
    rt.shared.pauses.pause(tenant);
    tracing::info!(%tenant, "tenant paused by admin");
    let started = Instant::now();
    let deadline = started + timeout;
    let holding = loop {
        // Statements already past the gate finish first: once PAUSE answers, none of the
        // tenant's statements completes until RESUME (bar those in open transactions).
        let busy = rt.shared.registry.busy(tenant);
        if busy.is_empty() || Instant::now() >= deadline {
            break busy;
        }
        tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
    };
    let ids: Vec<String> = holding.iter().map(u32::to_string).collect();
    let message = if ids.is_empty() {
        "no open transactions: new statements are held until RESUME TENANT".to_string()
    } else {
        format!(
            "the pause stays in force, but {} session(s) still hold a transaction or run a statement \
             after {}s: their statements proceed until the transaction (or statement) ends",
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

pub async fn resume(state: &SharedState, tenant: &str) -> Reply {
    let rt = state.load_full();
    let was_paused = match rt.shared.fleet.get() {
        Some(fleet) => fleet
            .resume(tenant)
            .await
            .map_err(|e| refused(fleet, "RESUME TENANT", &e))?,
        None => rt.shared.pauses.resume(tenant),
    };
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

/// An ERR for a fleet-wide change that etcd did not take (or, timed out, did not confirm:
/// a retry then finds it made).
pub(super) fn refused(fleet: &Fleet, command: &str, e: &FleetError) -> AdminError {
    AdminError::new(
        ErrorKind::ER_UNKNOWN_ERROR,
        format!(
            "{command} refused: fleet '{}' cannot reach etcd from instance '{}' ({e}); fleet-wide changes are not applied locally, retry when etcd is back",
            fleet.config.name, fleet.config.instance
        ),
    )
}

async fn fleet_pause(fleet: &Fleet, tenant: &str, timeout: Duration) -> Reply {
    let acks = match fleet.pause(tenant, timeout).await {
        Ok(Ok(acks)) => acks,
        Ok(Err(unacked)) => {
            tracing::warn!(%tenant, missing = ?unacked.missing, "fleet pause not acknowledged by every instance");
            let after = if unacked.withdrawn {
                "the pause was withdrawn on every instance"
            } else {
                "the pause could not be withdrawn: RESUME TENANT before retrying"
            };
            return Err(AdminError::new(
                ErrorKind::ER_LOCK_WAIT_TIMEOUT,
                format!(
                    "PAUSE TENANT {tenant} failed: instance(s) {} did not acknowledge within {:.1}s; {after}",
                    unacked.missing.join(", "),
                    unacked.waited.as_secs_f64()
                ),
            ));
        }
        Err(PauseFailed {
            error,
            withdrawn: true,
        }) => return Err(refused(fleet, "PAUSE TENANT", &error)),
        Err(PauseFailed { error, .. }) => {
            tracing::warn!(%tenant, %error, "fleet pause failed and could not be withdrawn");
            return Err(AdminError::new(
                ErrorKind::ER_UNKNOWN_ERROR,
                format!(
                    "PAUSE TENANT {tenant} failed: fleet '{}' lost etcd from instance '{}' ({error}) after writing the pause, which could not be withdrawn: it may hold on some instances; RESUME TENANT once etcd is back",
                    fleet.config.name, fleet.config.instance
                ),
            ));
        }
    };
    tracing::info!(%tenant, instances = acks.len(), "tenant paused fleet-wide");
    let mut t = Table::new(&[
        ("tenant", Kind::Text),
        ("instance", Kind::Text),
        ("status", Kind::Text),
        ("sessions_still_in_transaction", Kind::Text),
        ("waited_seconds", Kind::Real),
        ("message", Kind::Text),
    ]);
    for a in acks {
        let ids: Vec<String> = a.in_transaction.iter().map(u32::to_string).collect();
        let message = if ids.is_empty() {
            "holds the tenant: new statements wait for RESUME TENANT"
        } else {
            "holds the tenant; the sessions listed (in a transaction, or a statement longer than TIMEOUT) proceed until it ends"
        };
        t.push(vec![
            tenant.into(),
            a.instance.into(),
            "paused".into(),
            ids.join(", ").into(),
            Cell::Real(a.waited.as_secs_f64()),
            message.into(),
        ]);
    }
    Ok(t)
}
