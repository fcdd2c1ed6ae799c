//! Taking back what a fleet command wrote to etcd when the command does not finish: a
//! PAUSE or KILL request left behind by an error, a timeout (etcd may have committed a
//! write it did not confirm) or the command's task being dropped would act long after the
//! operator or client was told it failed.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Txn};
use tokio::sync::watch;

use super::{within, Fleet, FleetError};

/// A transaction that undoes a command's writes: run by [`Undo::now`], or, if the command
/// is dropped before it ran or was [disarmed](Undo::disarm), on a task of its own (counted
/// in `Fleet::undoing`, so that leaving the fleet waits for it).
pub(super) struct Undo {
    client: Client,
    txn: Option<Txn>,
    limit: Duration,
    what: &'static str,
    undoing: Arc<watch::Sender<usize>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl Undo {
    pub fn new(fleet: &Fleet, client: Client, txn: Txn, what: &'static str) -> Undo {
        Undo {
            client,
            txn: Some(txn),
            limit: fleet.config.etcd_timeout,
            what,
            undoing: Arc::clone(&fleet.undoing),
            runtime: fleet.runtime.clone(),
        }
    }

    /// Runs the undo now; Ok once etcd took it. Kept until then: dropped while it waits,
    /// the guard runs it on a task of its own.
    pub async fn now(mut self) -> Result<(), FleetError> {
        let Some(txn) = self.txn.clone() else {
            return Ok(());
        };
        within(self.limit, self.what, self.client.txn(txn)).await?;
        self.txn = None;
        Ok(())
    }

    /// The command finished as it should: its writes stay.
    pub fn disarm(mut self) {
        self.txn = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        let (mut client, limit, what) = (self.client.clone(), self.limit, self.what);
        // Counted until the task ends, however it ends (a runtime that drops it unrun).
        let under_way = UnderWay::new(Arc::clone(&self.undoing));
        // On the control plane's runtime: a session's worker may be the one stopping.
        let Some(rt) = self.runtime.clone() else {
            return;
        };
        rt.spawn(async move {
            let _under_way = under_way;
            if let Err(e) = within(limit, what, client.txn(txn)).await {
                tracing::warn!(%what, error = %e, "fleet: an abandoned command's write not taken back");
            }
        });
    }
}

/// One undo counted in `Fleet::undoing` while it lives.
struct UnderWay(Arc<watch::Sender<usize>>);

impl UnderWay {
    fn new(undoing: Arc<watch::Sender<usize>>) -> UnderWay {
        undoing.send_modify(|n| *n += 1);
        UnderWay(undoing)
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Waits (at most `limit`) for the undos under way: an instance that stops while a PAUSE
/// runs takes the pause back before it goes.
pub(super) async fn settled(fleet: &Fleet, limit: Duration) {
    let mut rx = fleet.undoing.subscribe();
    let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
}
