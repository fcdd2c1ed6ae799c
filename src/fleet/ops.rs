//! The fleet-wide admin changes: PAUSE (and the wait for every live instance's ack),
//! RESUME, SET BACKEND OFFLINE/ONLINE. Each is one write to etcd; every instance applies
//! it through its watch. Without etcd they fail: applying one locally would let the
//! instances disagree about what is paused or offline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};

use super::record::{now_ms, AckRecord, OfflineRecord, PauseRecord};
use super::undo::Undo;
use super::{members, within, Fleet, FleetError};

/// How often PAUSE reads the acks while it waits.
const ACK_POLL: Duration = Duration::from_millis(5);

/// One instance's ack of a PAUSE.
#[derive(Debug, Clone)]
pub struct PauseAck {
    pub instance: String,
    pub in_transaction: Vec<u32>,
    pub waited: Duration,
}

/// Why a PAUSE did not get every ack: the instances that did not answer.
#[derive(Debug, Clone)]
pub struct Unacked {
    pub missing: Vec<String>,
    pub waited: Duration,
    /// Whether the pause could be withdrawn (else it may still hold on some instances).
    pub withdrawn: bool,
}

/// A PAUSE that etcd failed part-way: the error, and whether the pause was taken back
/// (else it may hold on some instances: a write etcd did not confirm may still be taken).
#[derive(Debug)]
pub struct PauseFailed {
    pub error: FleetError,
    pub withdrawn: bool,
}

impl Fleet {
    /// Writes the pause and waits until every live instance acks it (each after its own
    /// `timeout` for open transactions, plus `ack_timeout`). An instance that does not ack
    /// in time fails the PAUSE, and the pause is withdrawn everywhere; so it is when etcd
    /// fails the PAUSE after (or during) its write, or the admin task ends meanwhile.
    pub async fn pause(
        &self,
        tenant: &str,
        timeout: Duration,
    ) -> Result<Result<Vec<PauseAck>, Unacked>, PauseFailed> {
        let (client, _) = self.client().map_err(|error| PauseFailed {
            error,
            withdrawn: true,
        })?;
        let record = PauseRecord {
            timeout_ms: timeout.as_millis() as u64,
            by: self.config.instance.clone(),
            at_unix_ms: now_ms(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let undo = self.withdrawal(client.clone(), tenant, &value);
        let started = Instant::now();
        let waited = self
            .pause_acked(client, tenant, value, started + timeout)
            .await;
        match waited {
            Ok(Ok(acks)) => {
                undo.disarm();
                Ok(Ok(acks))
            }
            Ok(Err(missing)) => {
                let withdrawn = undo.now().await.is_ok();
                Ok(Err(Unacked {
                    missing,
                    waited: started.elapsed(),
                    withdrawn,
                }))
            }
            Err(error) => {
                let withdrawn = undo.now().await.is_ok();
                Err(PauseFailed { error, withdrawn })
            }
        }
    }

    /// Writes the pause and reads the acks until every live instance's is in (Ok) or the
    /// deadline (plus `ack_timeout`) passed (the instances missing).
    async fn pause_acked(
        &self,
        mut client: etcd_client::Client,
        tenant: &str,
        value: Vec<u8>,
        until: Instant,
    ) -> Result<Result<Vec<PauseAck>, Vec<String>>, FleetError> {
        let limit = self.config.etcd_timeout;
        let key = self.keys.pause(tenant);
        let put = within(limit, "pause write", client.put(key, value, None)).await?;
        let revision = put.header().map_or(0, |h| h.revision());
        let deadline = until + self.config.ack_timeout;
        loop {
            let live = members::live_names(self, &mut client).await?;
            let acks = self.acks(&mut client, tenant, revision).await?;
            let missing: Vec<String> = live
                .iter()
                .filter(|n| !acks.contains_key(*n))
                .cloned()
                .collect();
            if missing.is_empty() {
                return Ok(Ok(live
                    .into_iter()
                    .filter_map(|n| acks.get(&n).cloned())
                    .collect()));
            }
            if Instant::now() >= deadline {
                return Ok(Err(missing));
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }

    /// The acks of the pause written at `revision`, by instance.
    async fn acks(
        &self,
        client: &mut etcd_client::Client,
        tenant: &str,
        revision: i64,
    ) -> Result<BTreeMap<String, PauseAck>, FleetError> {
        let prefix = self.keys.acks(tenant);
        let opts = GetOptions::new().with_prefix();
        let limit = self.config.etcd_timeout;
        let resp = within(limit, "ack read", client.get(prefix.clone(), Some(opts))).await?;
        let mut out = BTreeMap::new();
        for kv in resp.kvs() {
            let name = kv.key_str().unwrap_or_default().trim_start_matches(&prefix);
            let Ok(ack) = serde_json::from_slice::<AckRecord>(kv.value()) else {
                continue;
            };
            if ack.revision == revision {
                let a = PauseAck {
                    instance: name.to_string(),
                    in_transaction: ack.in_transaction,
                    waited: Duration::from_millis(ack.waited_ms),
                };
                out.insert(name.to_string(), a);
            }
        }
        Ok(out)
    }

    /// Removes the pause this PAUSE writes (`value`: who and when, not a later PAUSE's) and
    /// its acks.
    fn withdrawal(&self, client: etcd_client::Client, tenant: &str, value: &[u8]) -> Undo {
        let key = self.keys.pause(tenant);
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, value)])
            .and_then([
                TxnOp::delete(key, None),
                TxnOp::delete(
                    self.keys.acks(tenant),
                    Some(DeleteOptions::new().with_prefix()),
                ),
            ]);
        Undo::new(self, client, txn, "pause withdrawal")
    }

    /// Lifts a fleet-wide pause; false if the tenant was not paused.
    pub async fn resume(&self, tenant: &str) -> Result<bool, FleetError> {
        let (mut client, _) = self.client()?;
        let txn = Txn::new().and_then([
            TxnOp::delete(self.keys.pause(tenant), None),
            TxnOp::delete(
                self.keys.acks(tenant),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ]);
        let resp = within(self.config.etcd_timeout, "resume", client.txn(txn)).await?;
        let deleted =
            resp.op_responses().into_iter().next().is_some_and(
                |r| matches!(r, etcd_client::TxnOpResponse::Delete(d) if d.deleted() > 0),
            );
        Ok(deleted)
    }

    /// Sets a backend OFFLINE (true) or ONLINE fleet-wide; returns whether that changed.
    pub async fn set_offline(&self, addr: &str, offline: bool) -> Result<bool, FleetError> {
        let (mut client, _) = self.client()?;
        let key = self.keys.offline(addr);
        let limit = self.config.etcd_timeout;
        if offline {
            let record = OfflineRecord {
                by: self.config.instance.clone(),
                at_unix_ms: now_ms(),
            };
            let value = serde_json::to_vec(&record).unwrap_or_default();
            // Only when absent: a second OFFLINE changes nothing.
            let txn = Txn::new()
                .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key, value, None)]);
            let resp = within(limit, "offline write", client.txn(txn)).await?;
            Ok(resp.succeeded())
        } else {
            let resp = within(limit, "online write", client.delete(key, None)).await?;
            Ok(resp.deleted() > 0)
        }
    }
}
