//! Membership: each instance's record, under its lease (`live/`) and without one (`seen/`,
//! so the others can say since when it is silent). Liveness is the lease's business: the
//! record is written when what it says changes, and only every `REFRESH` for its session
//! count and time, so an idle fleet does not grow etcd's history every second.

use std::collections::BTreeMap;
use std::sync::Arc;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

use super::record::{now_ms, InstanceRecord};
use super::{within, Fleet, FleetError};
use crate::state::{RuntimeState, SharedState};

/// How stale a record may get when only its session count and time changed.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// What this instance last wrote in the current round.
#[derive(Default)]
pub struct Reported {
    last: Option<(InstanceRecord, std::time::Instant)>,
}

/// Instances silent this long are dropped from `seen/` (and from SHOW FLEET).
const FORGET_AFTER_MS: u64 = 3_600_000;

/// This instance's record now.
pub fn record(fleet: &Fleet, rt: &RuntimeState) -> InstanceRecord {
    let (refused, error) = fleet.refusal().map_or((0, None), |(v, e)| (v, Some(e)));
    InstanceRecord {
        name: fleet.config.instance.clone(),
        address: fleet.config.advertise.clone(),
        started_unix: fleet
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        heartbeat_unix_ms: now_ms(),
        config_version: fleet.config_version(),
        config_error: error,
        config_refused_version: refused,
        sessions: rt.shared.registry.count(),
        pauses_held: rt.shared.pauses.paused(),
        offline: rt.shared.health.offline_list(),
        build: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Writes this instance's record if it changed (or went `REFRESH` without a write).
pub async fn heartbeat(
    fleet: &Fleet,
    state: &SharedState,
    client: &mut Client,
    lease: i64,
    reported: &mut Reported,
) -> Result<(), FleetError> {
    let record = record(fleet, &state.load_full());
    let volatile = |r: &InstanceRecord| InstanceRecord {
        heartbeat_unix_ms: 0,
        sessions: 0,
        ..r.clone()
    };
    if let Some((last, at)) = &reported.last {
        if volatile(last) == volatile(&record) && at.elapsed() < REFRESH {
            return Ok(());
        }
    }
    let value = serde_json::to_vec(&record).unwrap_or_default();
    let name = &fleet.config.instance;
    let live = format!("{}{name}", fleet.keys.live());
    let writes = [
        TxnOp::put(
            live.as_str(),
            value.clone(),
            Some(PutOptions::new().with_lease(lease)),
        ),
        TxnOp::put(format!("{}{name}", fleet.keys.seen()), value, None),
    ];
    // Only under this instance's lease, or where nobody is registered: two instances
    // given one name would share a record and acks (PAUSE satisfied by either one's ack,
    // one's leaving deleting the other's record).
    let limit = fleet.config.etcd_timeout;
    let mine = Txn::new()
        .when([Compare::lease(live.as_str(), CompareOp::Equal, lease)])
        .and_then(writes.clone());
    let free = Txn::new()
        .when([Compare::create_revision(live.as_str(), CompareOp::Equal, 0)])
        .and_then(writes);
    if !within(limit, "heartbeat", client.txn(mine))
        .await?
        .succeeded()
        && !within(limit, "registration", client.txn(free))
            .await?
            .succeeded()
    {
        return Err(FleetError::NameTaken(name.clone()));
    }
    reported.last = Some((record, std::time::Instant::now()));
    Ok(())
}

/// How an instance stands, as SHOW FLEET tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Registered: its lease is alive.
    Live,
    /// Known but its lease ran out: stopped, or cut off from etcd.
    Lost,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub state: MemberState,
    pub record: InstanceRecord,
}

/// Every instance etcd knows of, by name; instances silent for an hour are forgotten.
pub async fn list(fleet: &Fleet) -> Result<BTreeMap<String, Member>, FleetError> {
    let (mut client, _) = fleet.client()?;
    let limit = fleet.config.etcd_timeout;
    let live = records(&mut client, &fleet.keys.live(), limit).await?;
    let seen = records(&mut client, &fleet.keys.seen(), limit).await?;
    let mut out = BTreeMap::new();
    for (name, record) in seen {
        let silent_ms = now_ms().saturating_sub(record.heartbeat_unix_ms);
        if silent_ms > FORGET_AFTER_MS && !live.contains_key(&name) {
            let key = format!("{}{name}", fleet.keys.seen());
            let _ = within(limit, "forget", client.delete(key, None)).await;
            continue;
        }
        let state = MemberState::Lost;
        out.insert(name, Member { state, record });
    }
    for (name, record) in live {
        let state = MemberState::Live;
        out.insert(name, Member { state, record });
    }
    Ok(out)
}

/// The names of the live instances.
pub async fn live_names(fleet: &Fleet, client: &mut Client) -> Result<Vec<String>, FleetError> {
    let live = records(client, &fleet.keys.live(), fleet.config.etcd_timeout).await?;
    Ok(live.into_keys().collect())
}

async fn records(
    client: &mut Client,
    prefix: &str,
    limit: std::time::Duration,
) -> Result<BTreeMap<String, InstanceRecord>, FleetError> {
    let opts = GetOptions::new().with_prefix();
    let resp = within(limit, "instance list", client.get(prefix, Some(opts))).await?;
    let mut out = BTreeMap::new();
    for kv in resp.kvs() {
        let name = kv.key_str().unwrap_or_default().trim_start_matches(prefix);
        if let Ok(r) = serde_json::from_slice::<InstanceRecord>(kv.value()) {
            out.insert(name.to_string(), r);
        }
    }
    Ok(out)
}

/// Removes this instance's keys and lease (a clean stop is not a lost instance).
pub async fn leave(fleet: &Arc<Fleet>) {
    let limit = fleet.config.etcd_timeout;
    super::undo::settled(fleet, limit).await;
    let Ok((mut client, lease)) = fleet.client() else {
        return;
    };
    let name = &fleet.config.instance;
    let live = format!("{}{name}", fleet.keys.live());
    // Not another instance's record, registered under the same name.
    let txn = Txn::new()
        .when([Compare::lease(live.as_str(), CompareOp::Equal, lease)])
        .and_then([
            TxnOp::delete(live.as_str(), None),
            TxnOp::delete(format!("{}{name}", fleet.keys.seen()), None),
        ]);
    let _ = within(limit, "leave", client.txn(txn)).await;
    let _ = within(limit, "lease revoke", client.lease_revoke(lease)).await;
    tracing::info!(fleet = %fleet.config.name, "fleet: left");
}
