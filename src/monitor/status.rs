//! Backend status and its state machine, pure (no I/O) so every transition is unit-tested.
//!
//! Each check produces an [`Outcome`]; [`BackendStatus::next`] folds it into the previous
//! status under a [`Policy`]. The hysteresis lives here: a backend that was not `Up` needs
//! `rise` good checks in a row before it is `Up` again.

use std::fmt;
use std::time::{Duration, Instant};

/// What the routing side needs to know about a backend, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    /// Answering and, for a replica, replicating within the lag limit.
    Up,
    /// Unreachable, erroring for `fall` checks, or refused a data-path connection.
    Down,
    /// Replicating, but further behind than the lag limit, or by an unknown amount.
    Lagging,
    /// Reachable, but a replica whose replication threads do not both run.
    Stopped,
    /// A replica whose IO thread lost the primary but that has applied everything it
    /// received (the freshest copy there is while no writes can happen), or is still
    /// applying it within the lag limit: it serves reads.
    PrimaryLost,
}

impl BackendState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Up => "up",
            BackendState::Down => "down",
            BackendState::Lagging => "lagging",
            BackendState::Stopped => "stopped",
            BackendState::PrimaryLost => "primary lost",
        }
    }
}

impl fmt::Display for BackendState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one successful check read from a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// The server's version string (`@@version`).
    pub version: String,
    pub read_only: bool,
    pub server_id: Option<u32>,
    /// Whether the server has replica status (it is configured to replicate).
    pub is_replica: bool,
    pub io_running: bool,
    pub sql_running: bool,
    /// `Seconds_Behind_Master`; `None` when the server does not know (NULL).
    pub lag: Option<Duration>,
    /// Applied position: MariaDB `gtid_current_pos`, MySQL `gtid_executed`.
    pub gtid: Option<String>,
    /// MariaDB `gtid_binlog_pos`: what this server has written to its own binlog.
    pub gtid_binlog: Option<String>,
    /// Received position: MariaDB `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`.
    pub gtid_io: Option<String>,
    /// The monitor's user may not read replication status (no SLAVE MONITOR / REPLICATION
    /// CLIENT): thread states are unknown and lag comes from GTIDs alone.
    pub replication_hidden: bool,
    /// Lag on the GTID timeline: how long ago the primary first had a write this replica
    /// has not applied (see `timeline.rs`); `None` when it cannot be measured.
    pub gtid_lag: Option<Duration>,
    /// The monitor cannot reach this replica's primary.
    pub primary_down: bool,
}

impl Observation {
    /// Whether a check ever read the server (its version is the first thing read).
    pub fn seen(&self) -> bool {
        !self.version.is_empty()
    }

    /// The lag routing judges by: the GTID timeline's when measured, else the server's own
    /// `Seconds_Behind_Master`.
    pub fn effective_lag(&self) -> Option<Duration> {
        self.gtid_lag.or(self.lag)
    }

    /// An IO thread that stopped with nothing received left to apply.
    fn caught_up_without_io(&self) -> bool {
        let parse = |g: &Option<String>| {
            g.as_deref()
                .map(super::gtid::GtidPos::parse)
                .transpose()
                .ok()
        };
        match (parse(&self.gtid), parse(&self.gtid_io)) {
            (Some(Some(applied)), Some(Some(received))) => applied.covers(&received),
            (Some(Some(_)), Some(None)) => true,
            _ => false,
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Seen(Observation),
    /// The server answered, with an error (privileges, credentials, ...).
    Failed(String),
    /// No answer: refused, reset, or silent past the timeout.
    Unreachable(String),
    /// This process could not make the check (out of file descriptors or local ports):
    /// nothing learned of the server, whose status stands.
    NoNews(String),
}

/// How one backend is judged; derived from the tenants that use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Some tenant reads from it: its replication must run and keep up.
    pub replica: bool,
    /// The most lenient `max_replica_lag` of the tenants reading from it (each tenant's own
    /// is checked at its reads).
    pub max_lag: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// One backend as last seen by the monitor. Snapshots are immutable; each check publishes
/// a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    pub addr: String,
    pub reachable: bool,
    /// What the last successful check read (all defaults before the first one). Kept when
    /// later checks fail: it is what is known.
    pub observed: Observation,
    /// Why the last check (or the data path) found it unhealthy; `None` after a clean check.
    pub last_error: Option<String>,
    pub last_check: Instant,
    pub state: BackendState,
    /// Good checks in a row (reset by any bad one).
    pub ok_streak: u32,
    /// Failed or unreachable checks in a row (reset by any answered check).
    pub fail_streak: u32,
}

/// What a good observation says under a policy: `None` when it is good.
fn verdict(obs: &Observation, policy: &Policy) -> Option<(BackendState, String)> {
    if !policy.replica {
        return None;
    }
    let lag = obs.effective_lag();
    if !obs.replication_hidden {
        if let Some(stopped) = threads_verdict(obs, lag, policy) {
            return Some(stopped);
        }
    }
    match lag {
        // Without replication privileges and before the primary was seen, nothing says the
        // replica is behind: it stays eligible, as an unchecked backend is.
        None if obs.replication_hidden => None,
        None => Some((BackendState::Lagging, "replication lag unknown".to_string())),
        Some(lag) if lag > policy.max_lag => Some((
            BackendState::Lagging,
            format!(
                "{}s behind the primary (limit {:?})",
                lag.as_secs(),
                policy.max_lag
            ),
        )),
        Some(_) => None,
    }
}

/// What the replication threads say, when the monitor may see them.
fn threads_verdict(
    obs: &Observation,
    lag: Option<Duration>,
    policy: &Policy,
) -> Option<(BackendState, String)> {
    if !obs.is_replica {
        return Some((BackendState::Stopped, "not replicating".to_string()));
    }
    // With the primary gone, a replica that applied all it received is the freshest copy
    // there is, if it was within the limit when the primary was last seen (lag is measured
    // then: see `task.rs`); one whose IO thread had stopped long before is as far behind
    // as it was. Unmeasured (the primary never seen), nothing tells them apart. One still
    // applying what it received is behind like a replica with its IO thread running: fine
    // within the limit (under load the SQL thread trails by a moment, and a primary killed
    // in that moment left both replicas unfit while the only fit server was down). With
    // the primary up, an IO thread stopped by hand is fine only while the replica keeps
    // within the limit.
    let within = lag.is_some_and(|l| l <= policy.max_lag);
    if obs.sql_running && !obs.io_running {
        if (within || (obs.primary_down && lag.is_none())) && obs.caught_up_without_io() {
            return Some((
                BackendState::PrimaryLost,
                "IO thread lost the primary; everything received is applied".to_string(),
            ));
        }
        if within {
            return Some((
                BackendState::PrimaryLost,
                "IO thread lost the primary; applying what it received, within the lag limit"
                    .to_string(),
            ));
        }
    }
    if !obs.io_running || !obs.sql_running {
        let problem = format!(
            "replication stopped (IO thread {}, SQL thread {})",
            running(obs.io_running),
            running(obs.sql_running)
        );
        return Some((BackendState::Stopped, problem));
    }
    None
}

fn running(yes: bool) -> &'static str {
    if yes {
        "running"
    } else {
        "not running"
    }
}

impl BackendStatus {
    /// The status before any check: unknown, treated as eligible by the caller's choice.
    fn blank(addr: &str, now: Instant) -> Self {
        BackendStatus {
            addr: addr.to_string(),
            reachable: false,
            observed: Observation::default(),
            last_error: None,
            last_check: now,
            state: BackendState::Up,
            ok_streak: 0,
            fail_streak: 0,
        }
    }

    /// The status after one check. `prev` is `None` for the first check: a backend good at
    /// first sight is `Up` at once (it was never taken out, so there is nothing to rise from).
    pub fn next(
        prev: Option<&BackendStatus>,
        addr: &str,
        outcome: Outcome,
        policy: &Policy,
        now: Instant,
    ) -> BackendStatus {
        let mut s = prev
            .cloned()
            .unwrap_or_else(|| BackendStatus::blank(addr, now));
        match outcome {
            Outcome::Seen(obs) => s.apply_observation(obs, prev.is_none(), policy),
            Outcome::Failed(error) => s.apply_failure(error, true, policy),
            Outcome::Unreachable(error) => s.apply_failure(error, false, policy),
            // No check was made: the status stands, the time of the last one too.
            Outcome::NoNews(error) => {
                tracing::debug!(backend = addr, error = %error, "check not made");
                return s;
            }
        }
        s.last_check = now;
        s
    }

    fn apply_observation(&mut self, obs: Observation, first: bool, policy: &Policy) {
        let problem = verdict(&obs, policy);
        self.reachable = true;
        self.fail_streak = 0;
        self.observed = obs;
        match problem {
            Some((state, problem)) => {
                self.state = state;
                self.ok_streak = 0;
                self.last_error = Some(problem);
            }
            None => {
                self.ok_streak = self.ok_streak.saturating_add(1);
                self.last_error = None;
                if first || self.state == BackendState::Up || self.ok_streak >= policy.rise {
                    self.state = BackendState::Up;
                }
            }
        }
    }

    /// `answered`: the server replied with an error, so it gets `fall` chances; otherwise it
    /// is down at once. The last observed values are kept (they are what is known).
    fn apply_failure(&mut self, error: String, answered: bool, policy: &Policy) {
        self.reachable = answered;
        self.ok_streak = 0;
        self.fail_streak = self.fail_streak.saturating_add(1);
        self.last_error = Some(error);
        if !answered || self.fail_streak >= policy.fall {
            self.state = BackendState::Down;
        }
    }

    /// Down at once because the data path could not connect; the next good check starts
    /// the climb back (`rise` of them).
    pub fn marked_down(
        prev: Option<&BackendStatus>,
        addr: &str,
        reason: &str,
        now: Instant,
    ) -> BackendStatus {
        let mut s = prev
            .cloned()
            .unwrap_or_else(|| BackendStatus::blank(addr, now));
        s.reachable = false;
        s.state = BackendState::Down;
        s.ok_streak = 0;
        s.fail_streak = s.fail_streak.saturating_add(1);
        s.last_error = Some(reason.to_string());
        s
    }

    /// Whether a tenant allowing `max_lag` may send new reads here.
    pub fn replica_eligible(&self, max_lag: Duration) -> bool {
        let o = &self.observed;
        let lost = self.state == BackendState::PrimaryLost;
        let threads = o.replication_hidden || ((o.io_running || lost) && o.sql_running);
        let lag = match o.effective_lag() {
            Some(lag) => lag <= max_lag,
            None => o.replication_hidden || (lost && o.primary_down),
        };
        (self.state == BackendState::Up || lost)
            && self.reachable
            // A writable server is a primary, whatever the config says: never a read target.
            && o.read_only
            && threads
            && lag
    }

    /// Whether the backend answers (for the primary, which has no replication to judge).
    pub fn is_up(&self) -> bool {
        self.state == BackendState::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "127.0.0.1:3308";

    fn policy(rise: u32, fall: u32) -> Policy {
        Policy {
            replica: true,
            max_lag: Duration::from_secs(2),
            rise,
            fall,
        }
    }

    fn replica(lag: Option<u64>) -> Observation {
        Observation {
            version: "10.11.19-MariaDB".into(),
            read_only: true,
            server_id: Some(2),
            is_replica: true,
            io_running: true,
            sql_running: true,
            lag: lag.map(Duration::from_secs),
            gtid: Some("0-1-10".into()),
            gtid_binlog: Some("0-1-10".into()),
            gtid_io: Some("0-1-10".into()),
            replication_hidden: false,
            gtid_lag: None,
            primary_down: false,
        }
    }

    fn good() -> Outcome {
        Outcome::Seen(replica(Some(0)))
    }

    fn sql_stopped() -> Outcome {
        Outcome::Seen(Observation {
            sql_running: false,
            ..replica(None)
        })
    }

    /// Folds the outcomes in order, returning every status along the way.
    fn run(policy: &Policy, outcomes: Vec<Outcome>) -> Vec<BackendStatus> {
        let mut out: Vec<BackendStatus> = Vec::new();
        for o in outcomes {
            let next = BackendStatus::next(out.last(), ADDR, o, policy, Instant::now());
            out.push(next);
        }
        out
    }

    fn states(statuses: &[BackendStatus]) -> Vec<BackendState> {
        statuses.iter().map(|s| s.state).collect()
    }

    fn eligible(statuses: &[BackendStatus]) -> Vec<bool> {
        statuses
            .iter()
            .map(|s| s.replica_eligible(Duration::from_secs(2)))
            .collect()
    }

    use BackendState::*;

    #[test]
    fn a_healthy_replica_is_up_from_its_first_check() {
        let s = run(&policy(3, 1), vec![good(), good()]);
        assert_eq!(states(&s), [Up, Up]);
        assert_eq!(eligible(&s), [true, true]);
        assert_eq!((s[1].ok_streak, s[1].fail_streak), (2, 0));
        assert_eq!(s[1].last_error, None);
        assert_eq!(s[1].observed.gtid.as_deref(), Some("0-1-10"));
    }

    #[test]
    fn a_stopped_sql_thread_takes_it_out_and_rise_good_checks_bring_it_back() {
        let s = run(
            &policy(3, 1),
            vec![good(), sql_stopped(), good(), good(), good(), good()],
        );
        assert_eq!(states(&s), [Up, Stopped, Stopped, Stopped, Up, Up]);
        assert_eq!(eligible(&s), [true, false, false, false, true, true]);
        assert!(s[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains("SQL thread not running"));
        assert_eq!(s[3].ok_streak, 2);
    }

    #[test]
    fn one_bad_check_during_the_climb_starts_it_over() {
        let s = run(
            &policy(2, 1),
            vec![sql_stopped(), good(), sql_stopped(), good(), good()],
        );
        assert_eq!(states(&s), [Stopped, Stopped, Stopped, Stopped, Up]);
    }

    #[test]
    fn lag_over_the_limit_or_unknown_is_lagging() {
        let s = run(
            &policy(2, 1),
            vec![
                Outcome::Seen(replica(Some(2))),
                Outcome::Seen(replica(Some(3))),
                Outcome::Seen(replica(Some(1))),
                Outcome::Seen(replica(None)),
                good(),
                good(),
            ],
        );
        assert_eq!(states(&s), [Up, Lagging, Lagging, Lagging, Lagging, Up]);
        assert!(s[1].last_error.as_deref().unwrap().contains("3s behind"));
        assert!(s[3].last_error.as_deref().unwrap().contains("unknown"));
    }

    #[test]
    fn a_stricter_caller_limit_applies_at_once() {
        let s = run(&policy(2, 1), vec![Outcome::Seen(replica(Some(2)))]);
        assert!(s[0].replica_eligible(Duration::from_secs(2)));
        assert!(!s[0].replica_eligible(Duration::from_secs(1)));
    }

    #[test]
    fn unreachable_is_down_at_once_whatever_fall_says() {
        let s = run(
            &policy(2, 3),
            vec![
                good(),
                Outcome::Unreachable("refused".into()),
                good(),
                good(),
            ],
        );
        assert_eq!(states(&s), [Up, Down, Down, Up]);
        assert!(!s[1].reachable);
        assert_eq!(s[1].last_error.as_deref(), Some("refused"));
        // The last known values are kept while it is down.
        assert_eq!(s[1].observed.gtid.as_deref(), Some("0-1-10"));
        assert!(!s[1].replica_eligible(Duration::from_secs(60)));
    }

    #[test]
    fn a_server_answering_with_errors_is_down_after_fall_checks() {
        let err = || Outcome::Failed("ERROR 1227: access denied".into());
        let s = run(&policy(2, 3), vec![good(), err(), err(), err(), good()]);
        assert_eq!(states(&s), [Up, Up, Up, Down, Down]);
        assert!(s[1].reachable);
        assert_eq!(s[3].fail_streak, 3);
        // While it still counts as up, the last good values decide eligibility.
        assert_eq!(eligible(&s), [true, true, true, false, false]);

        let s = run(&policy(2, 1), vec![good(), err()]);
        assert_eq!(states(&s), [Up, Down]);
    }

    #[test]
    fn each_tenant_reads_within_its_own_limit() {
        let mut p = policy(2, 1);
        p.max_lag = Duration::from_secs(5);
        let s = run(&p, vec![good(), Outcome::Seen(replica(Some(3)))]);
        assert_eq!(states(&s), [Up, Up]);
        assert!(s[1].replica_eligible(Duration::from_secs(5)));
        assert!(!s[1].replica_eligible(Duration::from_secs(2)));
    }

    #[test]
    fn a_replica_that_lost_only_its_primary_keeps_serving_reads() {
        let p = policy(2, 1);
        let lost = |applied: &str| {
            Outcome::Seen(Observation {
                io_running: false,
                lag: None,
                gtid_lag: Some(Duration::ZERO),
                gtid: Some(applied.into()),
                gtid_io: Some("0-1-10".into()),
                ..replica(None)
            })
        };
        let s = run(&p, vec![good(), lost("0-1-10"), good(), good()]);
        assert_eq!(states(&s), [Up, PrimaryLost, PrimaryLost, Up]);
        assert_eq!(eligible(&s), [true, true, true, true]);
        // The primary gone, lag is measured when it was last seen (`task.rs`): a replica
        // that was current then stays readable however long the outage; one that had
        // stopped long before is as far behind as it was (it became `primary lost`, with
        // no bound, when the primary missed one check); unmeasured, they look alike.
        let gone = |gtid_lag: Option<u64>| {
            Outcome::Seen(Observation {
                io_running: false,
                lag: None,
                gtid_lag: gtid_lag.map(Duration::from_secs),
                primary_down: true,
                ..replica(None)
            })
        };
        let s = run(
            &p,
            vec![good(), gone(Some(0)), gone(Some(3600)), gone(None)],
        );
        assert_eq!(states(&s), [Up, PrimaryLost, Stopped, PrimaryLost]);
        assert_eq!(eligible(&s), [true, true, false, true]);
        // Received but not yet applied: behind like any replica, so fine within the limit
        // and not beyond it, whether or not the primary is known to be down.
        let applying = |gtid_lag: u64, primary_down: bool| {
            Outcome::Seen(Observation {
                io_running: false,
                lag: None,
                gtid_lag: Some(Duration::from_secs(gtid_lag)),
                gtid: Some("0-1-9".into()),
                gtid_io: Some("0-1-10".into()),
                primary_down,
                ..replica(None)
            })
        };
        for primary_down in [false, true] {
            let s = run(
                &p,
                vec![
                    good(),
                    applying(1, primary_down),
                    applying(3, primary_down),
                    applying(1, primary_down),
                ],
            );
            assert_eq!(states(&s), [Up, PrimaryLost, Stopped, PrimaryLost]);
            assert_eq!(eligible(&s), [true, true, false, true]);
        }
    }

    #[test]
    fn without_replication_privileges_gtid_lag_decides() {
        let p = policy(2, 1);
        let hidden = |gtid_lag: Option<u64>| {
            Outcome::Seen(Observation {
                is_replica: false,
                io_running: false,
                sql_running: false,
                lag: None,
                replication_hidden: true,
                gtid_lag: gtid_lag.map(Duration::from_secs),
                ..replica(None)
            })
        };
        let s = run(
            &p,
            vec![
                hidden(None),
                hidden(Some(0)),
                hidden(Some(3)),
                hidden(Some(0)),
                hidden(Some(1)),
            ],
        );
        assert_eq!(states(&s), [Up, Up, Lagging, Lagging, Up]);
        assert_eq!(eligible(&s), [true, true, false, false, true]);
    }

    #[test]
    fn gtid_lag_wins_over_seconds_behind_master() {
        let delayed = Outcome::Seen(Observation {
            gtid_lag: Some(Duration::from_secs(30)),
            ..replica(Some(0))
        });
        let s = run(&policy(2, 1), vec![good(), delayed]);
        assert_eq!(states(&s), [Up, Lagging]);
    }

    /// A check this process could not make (EMFILE) leaves the status as it was: the server
    /// stays in rotation, and the next real check carries on from there.
    #[test]
    fn a_check_not_made_changes_nothing() {
        let no_news = || Outcome::NoNews("Too many open files".into());
        let s = run(&policy(2, 1), vec![good(), no_news(), no_news(), good()]);
        assert_eq!(states(&s), [Up, Up, Up, Up]);
        let s = run(
            &policy(2, 1),
            vec![Outcome::Unreachable("refused".into()), no_news()],
        );
        assert_eq!(states(&s), [Down, Down]);
    }

    #[test]
    fn a_first_check_that_fails_is_down() {
        let s = run(&policy(2, 1), vec![Outcome::Unreachable("refused".into())]);
        assert_eq!(states(&s), [Down]);
        let s = run(&policy(2, 1), vec![Outcome::Failed("denied".into())]);
        assert_eq!(states(&s), [Down]);
    }

    #[test]
    fn mark_down_is_immediate_and_the_next_good_check_starts_the_streak() {
        let p = policy(2, 1);
        let s = run(&p, vec![good(), good()]);
        let down = BackendStatus::marked_down(s.last(), ADDR, "refused", Instant::now());
        assert_eq!(
            (down.state, down.ok_streak, down.reachable),
            (Down, 0, false)
        );
        assert!(!down.replica_eligible(Duration::from_secs(60)));
        let once = BackendStatus::next(Some(&down), ADDR, good(), &p, Instant::now());
        assert_eq!((once.state, once.ok_streak), (Down, 1));
        let twice = BackendStatus::next(Some(&once), ADDR, good(), &p, Instant::now());
        assert_eq!((twice.state, twice.ok_streak), (Up, 2));
        assert!(twice.replica_eligible(Duration::from_secs(2)));
    }

    #[test]
    fn a_primary_is_judged_by_reachability_only() {
        let primary = Policy {
            replica: false,
            ..policy(2, 1)
        };
        let obs = Observation {
            version: "10.11.19-MariaDB".into(),
            server_id: Some(1),
            ..Observation::default()
        };
        let s = run(&primary, vec![Outcome::Seen(obs)]);
        assert_eq!(states(&s), [Up]);
        assert!(s[0].is_up());
        // Up, but not something a tenant could read from as a replica.
        assert!(!s[0].replica_eligible(Duration::from_secs(60)));
    }

    #[test]
    fn a_configured_replica_that_does_not_replicate_is_stopped() {
        let obs = Observation {
            is_replica: false,
            ..replica(Some(0))
        };
        let s = run(&policy(2, 1), vec![Outcome::Seen(obs)]);
        assert_eq!(states(&s), [Stopped]);
    }
}
