//! KILL across the fleet: a session id no local session has is asked of the other
//! instances through etcd, and the one that has it (of the same user) acts as on a local
//! KILL. Drivers send KILL QUERY over a new connection (Connector/J's query timeout,
//! `Statement.cancel()`, the mysql CLI's Ctrl-C), which a balancer may give to any instance.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, PutOptions, Txn, TxnOp,
};

use super::record::{now_ms, KillAck, KillRecord};
use super::undo::Undo;
use super::{members, within, Fleet, FleetError};
use crate::state::SharedState;

/// How often the requester reads the answers while it waits (two reads each time).
const ACK_POLL: Duration = Duration::from_millis(20);

/// KILL requests one instance has under way at once; past them a KILL of an id this
/// instance does not have gets 1094 at once.
pub(super) const MAX_REQUESTS: usize = 16;

/// A KILL for the fleet to carry out.
#[derive(Debug, Clone)]
pub struct KillRequest {
    pub session: u32,
    pub user: String,
    pub query: bool,
    pub mode: Option<&'static str>,
}

/// What the fleet did with a KILL.
#[derive(Debug, Clone, PartialEq)]
pub enum KillAnswer {
    /// The instance that has the session acted on it.
    Done,
    /// It has the session but could not interrupt it: its error.
    Failed(String),
    /// No live instance has that session of that user (or none answered within the wait).
    NotFound,
}

impl Fleet {
    /// Passes a KILL to the other live instances and waits (at most `wait`) until the one
    /// with the session has acted, or every one has said it has none.
    pub async fn kill(&self, req: &KillRequest, wait: Duration) -> Result<KillAnswer, FleetError> {
        let (mut client, lease) = self.client()?;
        let Ok(_slot) = self.kill_slots.try_acquire() else {
            tracing::warn!(
                session = req.session,
                "fleet: too many KILL requests under way; answered as no such session"
            );
            return Ok(KillAnswer::NotFound);
        };
        let seq = self.kill_requests.fetch_add(1, Ordering::Relaxed);
        let started = self.uptime_origin_ms();
        let request = format!("{started}-{seq}-{}", self.config.instance);
        let record = KillRecord {
            session: req.session,
            user: req.user.clone(),
            query: req.query,
            mode: req.mode.map(str::to_string),
            by: self.config.instance.clone(),
            at_unix_ms: now_ms(),
        };
        let key = self.keys.kill(&request);
        let limit = self.config.etcd_timeout;
        let value = serde_json::to_vec(&record).unwrap_or_default();
        // Taken back however the wait ends (the requesting session killed, a put etcd took
        // but did not confirm in time): left, it would be acted on after its 1094.
        let txn = Txn::new().and_then([
            TxnOp::delete(key.clone(), None),
            TxnOp::delete(self.keys.kill_claim(&request), None),
            TxnOp::delete(
                self.keys.kill_acks(&request),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ]);
        let undo = Undo::new(self, client.clone(), txn, "kill request removal");
        // Under this instance's lease: gone with it if it dies waiting.
        let opts = PutOptions::new().with_lease(lease);
        let put = within(limit, "kill request", client.put(key, value, Some(opts))).await;
        let answer = match put {
            Ok(_) => self.kill_answer(&mut client, &request, wait).await,
            Err(e) => Err(e),
        };
        if let Err(e) = undo.now().await {
            tracing::warn!(%request, error = %e, "fleet: kill request not removed (its lease removes it)");
        }
        answer
    }

    async fn kill_answer(
        &self,
        client: &mut Client,
        request: &str,
        wait: Duration,
    ) -> Result<KillAnswer, FleetError> {
        let deadline = Instant::now() + wait;
        let prefix = self.keys.kill_acks(request);
        let limit = self.config.etcd_timeout;
        loop {
            let live = members::live_names(self, client).await?;
            let opts = GetOptions::new().with_prefix();
            let resp = within(
                limit,
                "kill answers",
                client.get(prefix.clone(), Some(opts)),
            )
            .await?;
            let mut answered = BTreeSet::new();
            for kv in resp.kvs() {
                let Ok(ack) = serde_json::from_slice::<KillAck>(kv.value()) else {
                    continue;
                };
                if ack.found {
                    return Ok(ack.error.map_or(KillAnswer::Done, KillAnswer::Failed));
                }
                let name = kv.key_str().unwrap_or_default();
                answered.insert(name.trim_start_matches(prefix.as_str()).to_string());
            }
            let own = &self.config.instance;
            if live.iter().all(|n| n == own || answered.contains(n)) {
                return Ok(KillAnswer::NotFound);
            }
            // An instance that does not answer in time is taken to have no such session:
            // the KILL gets the server's 1094, as for any id nobody has.
            if Instant::now() >= deadline {
                return Ok(KillAnswer::NotFound);
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }
}

/// A KILL request seen through the watch: another instance's is acted on here if this
/// instance has the session, and answered either way (under `lease`, this instance's
/// registration). In a task of its own: a backend KILL takes a connect.
pub(super) fn on_request(
    fleet: &Arc<Fleet>,
    state: &SharedState,
    client: &Client,
    lease: i64,
    request: &str,
    kv: &KeyValue,
) {
    let Ok(record) = serde_json::from_slice::<KillRecord>(kv.value()) else {
        return;
    };
    if record.by == fleet.config.instance {
        return;
    }
    let (fleet, state) = (Arc::clone(fleet), Arc::clone(state));
    let (mut client, request) = (client.clone(), request.to_string());
    tokio::spawn(async move {
        let rt = state.load_full();
        let limit = fleet.config.etcd_timeout;
        let claim = claimed(&fleet, &mut client, lease, &request);
        let done = crate::frontend::kill_for_fleet(
            &rt,
            record.session,
            &record.user,
            record.query,
            record.mode.as_deref(),
            claim,
        )
        .await;
        if !matches!(done, Ok(false)) {
            tracing::info!(session = record.session, query = record.query, by = %record.by, "fleet: KILL of another instance's client");
        }
        let ack = match done {
            Ok(found) => KillAck { found, error: None },
            Err(e) => KillAck {
                found: true,
                error: Some(e),
            },
        };
        let key = format!(
            "{}{}",
            fleet.keys.kill_acks(&request),
            fleet.config.instance
        );
        let value = serde_json::to_vec(&ack).unwrap_or_default();
        let opts = PutOptions::new().with_lease(lease);
        // Only while the requester waits: an answer after it gave up would stay as long
        // as this instance's lease.
        let txn = Txn::new()
            .when([live_request(&fleet, &request)])
            .and_then([TxnOp::put(key, value, Some(opts))]);
        if let Err(e) = within(limit, "kill answer", client.txn(txn)).await {
            tracing::warn!(%request, error = %e, "fleet: kill answer not recorded");
        }
    });
}

/// Claims the request for this instance (under `lease`); false if another instance did
/// first, the requester gave up (its request is gone, and the claim with it), or etcd did
/// not say.
async fn claimed(fleet: &Fleet, client: &mut Client, lease: i64, request: &str) -> bool {
    let key = fleet.keys.kill_claim(request);
    let txn = Txn::new()
        .when([
            Compare::version(key.clone(), CompareOp::Equal, 0),
            live_request(fleet, request),
        ])
        .and_then([TxnOp::put(
            key,
            fleet.config.instance.as_bytes(),
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let claim = client.txn(txn);
    matches!(within(fleet.config.etcd_timeout, "kill claim", claim).await, Ok(r) if r.succeeded())
}

/// The request is still there: its requester waits for answers.
fn live_request(fleet: &Fleet, request: &str) -> Compare {
    Compare::version(fleet.keys.kill(request), CompareOp::Greater, 0)
}
