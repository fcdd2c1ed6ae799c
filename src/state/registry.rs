//! Live client sessions, as the admin port shows them and KILL finds them. Sessions publish
//! their state when it changes (tenant, schema, transaction, pins, backends), not on every
//! statement; only the backend thread a statement runs on is published per statement.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::lock::Unpoisoned;
use super::per_worker::{current_slot, PerWorker};
use super::signals::{Signal, Signals};

/// What one session reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    pub user: String,
    pub tenant: Option<String>,
    pub schema: Option<String>,
    /// Address of the backend holding the session's open transaction.
    pub transaction: Option<String>,
    pub pins: Vec<String>,
}

/// The backend connection a session's statement is running on.
pub use crate::backend::conn::Identity as Running;

#[derive(Default)]
struct RunState {
    /// The connection of the session's last statement, kept when it ends so that the next
    /// statement on the same connection (the usual case) writes no reference count.
    running: Option<Arc<Running>>,
    /// Whether a statement runs on `running` now.
    live: bool,
    /// KILLs registered to interrupt the session (waiting for or holding `kill_gate`).
    killers: usize,
    /// The connection a KILL was sent for and gave up waiting on (its answer late, or the
    /// KILL's own session ended): the backend may still run it, so that connection must
    /// never serve another session.
    stray: Option<Arc<Running>>,
}

/// A KILL's claim on a session (see [`SessionEntry::start_kill`]); dropping it lets the
/// session go on.
pub struct KillClaim<'a> {
    /// The connection a backend KILL is on its way to, until the backend answered.
    sent: Option<Arc<Running>>,
    /// Dropped first: the count goes down before the gate opens.
    registered: Registered<'a>,
    _gate: tokio::sync::MutexGuard<'a, ()>,
}

impl KillClaim<'_> {
    /// The connection the session's statement runs on now, if any.
    pub fn running(&self) -> Option<Arc<Running>> {
        self.registered.0.running()
    }

    /// A backend KILL goes to `conn` now: until [`answered`](Self::answered), dropping the
    /// claim marks the connection as one the KILL may still reach.
    pub fn sending(&mut self, conn: &Arc<Running>) {
        self.sent = Some(Arc::clone(conn));
    }

    /// The backend answered the KILL: nothing of it can arrive later.
    pub fn answered(mut self) {
        self.sent = None;
    }
}

impl Drop for KillClaim<'_> {
    fn drop(&mut self) {
        // Before the count goes down and the gate opens: the session, past its wait,
        // finds it.
        if let Some(conn) = self.sent.take() {
            self.registered.0.run_state().stray = Some(conn);
        }
    }
}

/// A KILL counted in the session's run state, waiting for the gate or holding it; dropped
/// (the KILL done, or its wait given up), it is counted out.
struct Registered<'a>(&'a SessionEntry);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.run_state().killers -= 1;
    }
}

pub struct SessionEntry {
    pub id: u32,
    pub host: String,
    pub started: SystemTime,
    pub statements: AtomicU64,
    report: Mutex<SessionReport>,
    /// Set while a statement runs, with the KILLs interrupting the session (see
    /// [`SessionEntry::set_running`] and `frontend::kill`).
    running: Mutex<RunState>,
    /// Held by a KILL while its backend KILL is under way; a session that sees a KILL
    /// registered waits for it before going on, so it cannot hand that connection to the
    /// pool (and so to another session) in between. Only then: a statement takes no
    /// async lock.
    kill_gate: tokio::sync::Mutex<()>,
    /// Raised when the session is killed (KILL CONNECTION) or the proxy shuts down.
    pub signals: Signals,
    /// Set from the moment a statement outside a transaction passes the pause gate until
    /// its answer is flushed: PAUSE waits for these too, so that once it answers no
    /// statement of the tenant can still complete.
    busy: AtomicBool,
    /// The slots of the backend connections the session holds between its commands
    /// (`Held::mask`), stored by the session when they change.
    held: AtomicU64,
}

impl SessionEntry {
    pub fn report(&self) -> SessionReport {
        self.report.locked().clone()
    }

    pub fn publish(&self, report: SessionReport) {
        *self.report.locked() = report;
    }

    /// The configured user the session is logged in as.
    pub fn user(&self) -> String {
        self.report.locked().user.clone()
    }

    /// Records which backend connections the session holds (`Held::mask`).
    pub fn set_held(&self, mask: u64) {
        self.held.store(mask, Ordering::Relaxed);
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Asks the session to end (it watches its `signals`).
    pub fn kill(&self) {
        self.signals.raise(Signal::Killed);
    }

    /// Marks a statement under way (true) or the session back to reading (false). SeqCst,
    /// paired with the pause flag: either the statement sees the pause or PAUSE sees it.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::SeqCst);
    }

    /// Publishes the connection a statement starts running on (Some) or that it ended
    /// (None). True when a KILL is under way: the caller must then
    /// [`wait_kills`](Self::wait_kills) before it goes on. Both the value and the KILL count
    /// are read under one lock: either a KILL registered before and the session waits until
    /// its backend KILL is answered, or the KILL reads this value afterwards (None: nothing
    /// to interrupt). A plain call, not a future: the statement path makes it twice per
    /// statement for a wait it almost never has.
    #[must_use]
    pub fn set_running(&self, running: Option<&Arc<Running>>) -> bool {
        let mut st = self.run_state();
        st.live = running.is_some();
        if let Some(r) = running {
            if !st.running.as_ref().is_some_and(|had| Arc::ptr_eq(had, r)) {
                st.running = Some(Arc::clone(r));
            }
        }
        st.killers > 0 || st.stray.is_some()
    }

    /// After [`wait_kills`](Self::wait_kills): whether a KILL given up on may still reach
    /// `conn` (which then must not go back to the pool). Clears the mark either way: it
    /// concerns the statement that just ended.
    pub fn take_stray(&self, conn: &Running) -> bool {
        self.run_state()
            .stray
            .take()
            .is_some_and(|s| s.same_connection(conn))
    }

    /// Waits until the KILLs registered so far are done.
    pub async fn wait_kills(&self) {
        drop(self.kill_gate.lock().await);
    }

    /// The connection the session's statement runs on now, if any.
    pub fn running(&self) -> Option<Arc<Running>> {
        let st = self.run_state();
        st.running.clone().filter(|_| st.live)
    }

    /// Registers a KILL and waits for the gate: until the claim drops, the session does not
    /// move past the end (or start) of a statement.
    pub async fn start_kill(&self) -> KillClaim<'_> {
        // Counted before the wait, so the session sees it; counted out however it ends.
        self.run_state().killers += 1;
        let registered = Registered(self);
        let gate = self.kill_gate.lock().await;
        KillClaim {
            sent: None,
            registered,
            _gate: gate,
        }
    }

    fn run_state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.running.locked()
    }
}

/// A worker's sessions by id.
type Sessions = rustc_hash::FxHashMap<u32, Arc<SessionEntry>>;
type Shard = Mutex<Sessions>;

pub struct Registry {
    /// Each worker's own sessions: a connection joins and leaves its worker's map, whose
    /// lock no other worker takes but the admin port's readers.
    shards: PerWorker<Shard>,
    /// Ids handed out so far (by every listener: ids are unique per process), counted from
    /// a random start. Wider than an id, so that whether ids have wrapped is known without
    /// a lock.
    issued: AtomicU64,
}

impl Default for Registry {
    /// Ids start at a random number below 2^30: instances behind one balancer that all
    /// counted from 1 gave their long-lived sessions the same ids, and a driver's `KILL
    /// QUERY <id>` (a query timeout, sent over a new connection the balancer may put on
    /// any instance) interrupted another client's statement of the same user there. Below
    /// 2^31 for a long while: drivers that keep the id in a signed 32-bit integer.
    fn default() -> Self {
        Registry {
            shards: PerWorker::default(),
            issued: AtomicU64::new(rand::random_range(0..1u64 << 30)),
        }
    }
}

/// A session's place in the registry; dropping it removes the session.
pub struct Registration {
    pub entry: Arc<SessionEntry>,
    registry: Arc<Registry>,
    shard: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let shard = self.registry.shards.slot_or(self.shard, Default::default);
        lock(shard).remove(&self.entry.id);
    }
}

fn lock(shard: &Shard) -> std::sync::MutexGuard<'_, Sessions> {
    shard.locked()
}

impl Registry {
    pub fn register(self: &Arc<Self>, id: u32, host: &str, report: SessionReport) -> Registration {
        let entry = Arc::new(SessionEntry {
            id,
            host: host.to_owned(),
            started: SystemTime::now(),
            statements: AtomicU64::new(0),
            report: Mutex::new(report),
            running: Mutex::new(RunState::default()),
            kill_gate: tokio::sync::Mutex::new(()),
            signals: Signals::default(),
            busy: AtomicBool::new(false),
            held: AtomicU64::new(0),
        });
        let shard = current_slot();
        lock(self.shards.slot_or(shard, Default::default)).insert(id, Arc::clone(&entry));
        Registration {
            entry,
            registry: Arc::clone(self),
            shard,
        }
    }

    /// A session id for a new connection: never 0 and, once the counter wraps, never one a
    /// live session holds (ids name sessions to KILL and in SHOW SESSIONS). Before the
    /// first wrap every id is new, and no map is looked at.
    pub fn next_id(&self) -> u32 {
        loop {
            let n = self.issued.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            let id = n as u32;
            if id == 0 {
                continue;
            }
            if n <= u64::from(u32::MAX) || self.get(id).is_none() {
                return id;
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<SessionEntry>> {
        self.shards.iter().find_map(|s| lock(s).get(&id).cloned())
    }

    /// Every live session, by id.
    pub fn list(&self) -> Vec<Arc<SessionEntry>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(lock(shard).values().cloned());
        }
        all.sort_unstable_by_key(|e: &Arc<SessionEntry>| e.id);
        all
    }

    /// Ids of `tenant`'s sessions that hold an open transaction.
    pub fn in_transaction(&self, tenant: &str) -> Vec<u32> {
        self.list()
            .into_iter()
            .filter(|e| {
                let r = e.report();
                r.tenant.as_deref() == Some(tenant) && r.transaction.is_some()
            })
            .map(|e| e.id)
            .collect()
    }

    /// Ids of `tenant`'s sessions that hold an open transaction or run a statement that
    /// passed the pause gate: what PAUSE waits for.
    pub fn busy(&self, tenant: &str) -> Vec<u32> {
        self.list()
            .into_iter()
            .filter(|e| {
                let r = e.report();
                r.tenant.as_deref() == Some(tenant)
                    && (r.transaction.is_some() || e.busy.load(Ordering::SeqCst))
            })
            .map(|e| e.id)
            .collect()
    }

    /// Tells every session to close at its next transaction boundary. A session registered
    /// after this looks at the proxy's own flag once it is registered (`Session::new`).
    pub fn shut_down_all(&self) {
        for shard in self.shards.iter() {
            for entry in lock(shard).values() {
                entry.signals.raise(Signal::Shutdown);
            }
        }
    }

    pub fn count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

impl SessionEntry {
    pub fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_statement_boundary_waits_only_for_a_kill_under_way() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(1, "127.0.0.1", SessionReport::default());
        let entry = Arc::clone(&a.entry);
        // No KILL: no wait.
        assert!(!entry.set_running(None));

        let claim = entry.start_kill().await;
        // A second KILL waiting behind the first, then given up: its count goes too.
        {
            let second = entry.start_kill();
            tokio::pin!(second);
            assert!(futures_now(second.as_mut()).is_none(), "the gate is held");
        }
        let e2 = Arc::clone(&entry);
        let boundary = tokio::spawn(async move {
            if e2.set_running(None) {
                e2.wait_kills().await;
            }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!boundary.is_finished(), "the session waits for the KILL");
        drop(claim);
        tokio::time::timeout(std::time::Duration::from_secs(5), boundary)
            .await
            .expect("the session goes on once the KILL is done")
            .unwrap();
        assert_eq!(entry.run_state().killers, 0);
        assert!(!entry.set_running(None));
    }

    fn connection(thread_id: u32) -> Arc<Running> {
        use crate::backend::auth::{Credentials, Proof};
        use crate::backend::pool::{KeyFields, Pools};
        use mysql_common::constants::{CapabilityFlags, MariadbCapabilities};
        let key = Pools::default().key(KeyFields {
            addr: "127.0.0.1:3306".into(),
            user: "app".into(),
            capabilities: CapabilityFlags::CLIENT_PROTOCOL_41,
            ext_capabilities: MariadbCapabilities::empty(),
            collation: 45,
            tls_ca: None,
        });
        let creds = Arc::new(Credentials {
            user: "app".into(),
            proof: Proof::NativeStage1([0; 20]),
        });
        Arc::new(Running {
            key,
            creds,
            thread_id,
        })
    }

    /// A KILL that gave up waiting for its backend's answer marks the connection it went
    /// to (the backend may still carry it out): the session's next boundary finds it, for
    /// that connection only, once.
    #[tokio::test]
    async fn a_kill_given_up_marks_its_connection() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(1, "127.0.0.1", SessionReport::default());
        let entry = Arc::clone(&a.entry);
        let (conn, other) = (connection(7), connection(8));
        assert!(!entry.set_running(Some(&conn)));
        let mut claim = entry.start_kill().await;
        claim.sending(&conn);
        drop(claim);
        assert!(entry.set_running(None), "the boundary looks");
        entry.wait_kills().await;
        assert!(!entry.take_stray(&other));
        assert!(!entry.set_running(None), "looked at once");

        assert!(!entry.set_running(Some(&conn)));
        let mut claim = entry.start_kill().await;
        claim.sending(&conn);
        drop(claim);
        assert!(entry.set_running(None));
        assert!(entry.take_stray(&conn), "the connection it went to");

        // Answered: nothing to mark.
        assert!(!entry.set_running(Some(&conn)));
        let mut claim = entry.start_kill().await;
        claim.sending(&conn);
        claim.answered();
        assert!(!entry.set_running(None));
        assert!(!entry.take_stray(&conn));
    }

    /// Polls a future once.
    fn futures_now<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn sessions_come_and_go() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(1, "127.0.0.1", SessionReport::default());
        let b = reg.register(2, "127.0.0.1", SessionReport::default());
        b.entry.publish(SessionReport {
            tenant: Some("acme".into()),
            transaction: Some("127.0.0.1:3307".into()),
            ..SessionReport::default()
        });
        assert_eq!(reg.count(), 2);
        assert_eq!(reg.get(2).map(|e| e.id), Some(2));
        assert!(reg.get(3).is_none());
        assert_eq!(reg.in_transaction("acme"), vec![2]);
        drop(b);
        assert!(reg.in_transaction("acme").is_empty());
        drop(a);
        assert_eq!(reg.count(), 0);
    }

    #[test]
    fn ids_skip_zero_and_live_sessions_when_they_wrap() {
        let reg = Arc::new(Registry::default());
        assert!(reg.next_id() <= 1 << 30, "a random start below 2^30");
        reg.issued.store(0, Ordering::Relaxed);
        let one = reg.next_id();
        assert_eq!(one, 1);
        let _live = reg.register(2, "127.0.0.1", SessionReport::default());
        reg.issued.store(u64::from(u32::MAX) - 1, Ordering::Relaxed);
        assert_eq!(reg.next_id(), u32::MAX);
        assert_eq!(reg.next_id(), 1, "0 is skipped");
        assert_eq!(reg.next_id(), 3, "2 is live");
    }

    #[test]
    fn killing_reaches_the_session() {
        let reg = Arc::new(Registry::default());
        let a = reg.register(1, "127.0.0.1", SessionReport::default());
        assert!(!a.entry.signals.killed());
        reg.get(1).unwrap().kill();
        assert!(a.entry.signals.killed());
        reg.shut_down_all();
        assert!(a.entry.signals.shutting_down());
    }

    #[test]
    fn pause_waits_for_running_statements_and_open_transactions() {
        let reg = Arc::new(Registry::default());
        let acme = || SessionReport {
            tenant: Some("acme".into()),
            ..SessionReport::default()
        };
        let running = reg.register(1, "127.0.0.1", acme());
        let idle = reg.register(2, "127.0.0.1", acme());
        let other = reg.register(3, "127.0.0.1", SessionReport::default());
        running.entry.set_busy(true);
        other.entry.set_busy(true);
        assert_eq!(reg.busy("acme"), vec![1]);
        running.entry.set_busy(false);
        idle.entry.publish(SessionReport {
            transaction: Some("127.0.0.1:3307".into()),
            ..acme()
        });
        assert_eq!(reg.busy("acme"), vec![2], "an open transaction counts too");
    }
}
