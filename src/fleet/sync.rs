//! Keeping one instance in step with its fleet: register under a lease, read `state/`
//! whole, apply it, then follow it with a watch; renew the lease at a third of its TTL. Any
//! failure ends the round; the next one starts from a fresh read, so nothing missed while
//! etcd was away stays missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};

use super::keys::StateKey;
use super::record::{now_ms, AckRecord, PauseRecord};
use super::{document, members, within, Fleet, FleetError};
use crate::state::SharedState;

/// How often an ack looks at the tenant's sessions while they finish.
const ACK_POLL: Duration = Duration::from_millis(5);
/// Retry pacing while etcd cannot be reached.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

pub async fn run(fleet: Arc<Fleet>, state: SharedState) {
    let mut pause = RETRY_MIN;
    loop {
        let began = Instant::now();
        let e = round(&fleet, &state).await;
        fleet.set_down(&e);
        // The first attempt counts as the start-up read even when it failed.
        fleet.synced.send_replace(true);
        if began.elapsed() > RETRY_MAX * 5 {
            pause = RETRY_MIN;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// One connected stretch; returns why it ended.
async fn round(fleet: &Arc<Fleet>, state: &SharedState) -> FleetError {
    match connected(fleet, state).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

/// Whether lease `id` is gone: revoked now, or not found (run out, or revoked before).
async fn revoked(client: &mut Client, id: i64, limit: Duration) -> bool {
    match tokio::time::timeout(limit, client.lease_revoke(id)).await {
        Ok(Ok(_)) => true,
        // gRPC NOT_FOUND (5): etcd's "requested lease not found".
        Ok(Err(etcd_client::Error::GRpcStatus(s))) => s.code() as i32 == 5,
        _ => false,
    }
}

async fn connected(fleet: &Arc<Fleet>, state: &SharedState) -> Result<Never, FleetError> {
    let limit = fleet.config.etcd_timeout;
    let mut client = fleet.connect().await?;
    // The last round's lease holds this instance's record and acks: gone with it, or the
    // registration below would find the name taken until it ran out. An etcd just
    // restarted renews every lease it had, and may not take a revoke yet: that lease is
    // revoked again next round rather than forgotten with its name held.
    for slot in [&fleet.unrevoked, &fleet.last_lease] {
        let id = slot.swap(0, Ordering::Relaxed);
        if id != 0 && !revoked(&mut client, id, limit).await {
            fleet.unrevoked.store(id, Ordering::Relaxed);
        }
    }
    let ttl = fleet.config.lease_ttl.as_secs().max(2) as i64;
    let lease = within(limit, "lease grant", client.lease_grant(ttl, None))
        .await?
        .id();
    fleet.last_lease.store(lease, Ordering::Relaxed);
    let (mut keeper, mut renewals) =
        within(limit, "lease keep-alive", client.lease_keep_alive(lease)).await?;
    let opts = GetOptions::new().with_prefix();
    let snapshot = within(
        limit,
        "state read",
        client.get(fleet.keys.state(), Some(opts)),
    )
    .await?;
    let revision = snapshot.header().map_or(0, |h| h.revision());
    fleet.read_etcd.store(true, Ordering::Release);
    let mut reported = members::Reported::default();
    // Registered before any ack: acks are under the instance's name, and one that does not
    // hold its name (another instance has it) must not ack for that one. It still holds
    // what the fleet holds.
    let registered = members::heartbeat(fleet, state, &mut client, lease, &mut reported).await;
    let acking = registered.is_ok().then_some(lease);
    apply_all(fleet, state, &client, acking, snapshot.kvs());
    registered?;
    fleet.set_up(client.clone(), lease);
    fleet.synced.send_replace(true);
    let watch_opts = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1);
    let mut watch = within(
        limit,
        "watch",
        client.watch(fleet.keys.state(), Some(watch_opts)),
    )
    .await?;
    let mut tick = tokio::time::interval(Duration::from_secs(ttl as u64) / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = watch.message() => {
                let resp = msg?.ok_or_else(|| FleetError::WatchEnded("closed by etcd".into()))?;
                if resp.canceled() {
                    return Err(FleetError::WatchEnded(resp.cancel_reason().to_string()));
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let put = ev.event_type() == EventType::Put;
                    apply_one(fleet, state, &client, Some(lease), kv, put);
                }
            }
            _ = tick.tick() => {
                within(limit, "lease renewal", keeper.keep_alive()).await?;
                members::heartbeat(fleet, state, &mut client, lease, &mut reported).await?;
            }
            () = fleet.changed.notified() => {
                members::heartbeat(fleet, state, &mut client, lease, &mut reported).await?;
            }
            renewed = renewals.message() => {
                match renewed? {
                    Some(r) if r.ttl() > 0 => {}
                    _ => return Err(FleetError::LeaseExpired),
                }
            }
        }
    }
}

/// Applies the whole of `state/`: pauses and OFFLINE backends become exactly what etcd
/// holds, and every pause is acked again (under the new lease, `acking`; none when the
/// instance could not register).
fn apply_all(
    fleet: &Arc<Fleet>,
    state: &SharedState,
    client: &Client,
    acking: Option<i64>,
    kvs: &[KeyValue],
) {
    let rt = state.load_full();
    let mut paused = BTreeSet::new();
    let mut offline = BTreeSet::new();
    let mut document = None;
    let mut pauses = BTreeMap::new();
    let mut kills = Vec::new();
    for kv in kvs {
        let Ok(key) = kv.key_str() else { continue };
        match fleet.keys.classify(key) {
            StateKey::Pause(t) => {
                paused.insert(t.to_string());
                pauses.insert(t.to_string(), kv.clone());
            }
            StateKey::Offline(a) => {
                offline.insert(a.to_string());
            }
            StateKey::Config => document = Some(kv.clone()),
            // Answered below: a requester still waits for this instance's answer (it was
            // away, or joined after the request); a claim is taken once.
            StateKey::Kill(_) => kills.push(kv.clone()),
            StateKey::Other => {}
        }
    }
    for t in rt.shared.pauses.paused() {
        if !paused.contains(&t) {
            rt.shared.pauses.resume(&t);
            tracing::info!(tenant = %t, "fleet: tenant resumed (caught up)");
        }
    }
    for a in rt.shared.health.offline_list() {
        if !offline.contains(&a) {
            rt.shared.health.set_offline(&a, false);
            tracing::info!(addr = %a, "fleet: backend online (caught up)");
        }
    }
    for a in &offline {
        if rt.shared.health.set_offline(a, true) {
            tracing::info!(%a, "fleet: backend offline (caught up)");
        }
    }
    match document {
        Some(kv) => document::apply(fleet, state, &kv, document::Arrival::Reread),
        None => document::forget(fleet, state),
    }
    for kv in pauses.values().chain(&kills) {
        apply_one(fleet, state, client, acking, kv, true);
    }
}

/// One change under `state/`; a pause is acked under `acking`, the registration lease.
fn apply_one(
    fleet: &Arc<Fleet>,
    state: &SharedState,
    client: &Client,
    acking: Option<i64>,
    kv: &KeyValue,
    put: bool,
) {
    let Ok(key) = kv.key_str() else { return };
    let rt = state.load_full();
    match fleet.keys.classify(key) {
        StateKey::Pause(tenant) if put => {
            let timeout = serde_json::from_slice::<PauseRecord>(kv.value())
                .map_or(Duration::ZERO, |r| Duration::from_millis(r.timeout_ms));
            if !rt.shared.pauses.is_paused(tenant) {
                tracing::info!(%tenant, "fleet: tenant paused");
            }
            rt.shared.pauses.pause(tenant);
            if let Some(lease) = acking {
                let ack = acknowledge(
                    Arc::clone(fleet),
                    Arc::clone(state),
                    client.clone(),
                    lease,
                    tenant.to_string(),
                    kv.mod_revision(),
                    timeout,
                );
                tokio::spawn(ack);
            }
        }
        StateKey::Pause(tenant) => {
            if rt.shared.pauses.resume(tenant) {
                tracing::info!(%tenant, "fleet: tenant resumed");
            }
        }
        StateKey::Offline(addr) => {
            if rt.shared.health.set_offline(addr, put) {
                let state = if put { "offline" } else { "online" };
                tracing::info!(%addr, state, "fleet: backend set");
            }
        }
        StateKey::Config if put => document::apply(fleet, state, kv, document::Arrival::Watched),
        StateKey::Kill(request) if put => {
            if let Some(lease) = acking {
                super::kill::on_request(fleet, state, client, lease, request, kv);
            }
            return;
        }
        StateKey::Config | StateKey::Kill(_) | StateKey::Other => {}
    }
    fleet.changed.notify_one();
}

/// Waits until none of `tenant`'s sessions runs a statement or holds a transaction (at
/// most `timeout`; a resumed tenant stops the wait), then records the ack.
async fn acknowledge(
    fleet: Arc<Fleet>,
    state: SharedState,
    mut client: Client,
    lease: i64,
    tenant: String,
    revision: i64,
    timeout: Duration,
) {
    let started = Instant::now();
    let rt = state.load_full();
    loop {
        if !rt.shared.pauses.is_paused(&tenant) {
            return;
        }
        if rt.shared.registry.busy(&tenant).is_empty() || started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(ACK_POLL).await;
    }
    let ack = AckRecord {
        revision,
        in_transaction: rt.shared.registry.busy(&tenant),
        waited_ms: started.elapsed().as_millis() as u64,
    };
    let key = format!("{}{}", fleet.keys.acks(&tenant), fleet.config.instance);
    let value = serde_json::to_vec(&ack).unwrap_or_default();
    let opts = etcd_client::PutOptions::new().with_lease(lease);
    let put = client.put(key, value, Some(opts));
    match within(fleet.config.etcd_timeout, "ack", put).await {
        Ok(_) => tracing::debug!(%tenant, revision, at_ms = now_ms(), "fleet: pause acked"),
        // The next round re-reads every pause and acks it again.
        Err(e) => tracing::warn!(%tenant, error = %e, "fleet: pause ack not recorded"),
    }
}
