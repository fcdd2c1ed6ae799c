//! Read-your-writes: after a session writes, its reads go to a replica that has applied
//! that write (its GTID from the OK packet's session tracking when the client negotiated
//! it, else `@@last_gtid` asked of the primary; then `MASTER_GTID_WAIT` on the replica for a
//! bounded time), or to the primary when none has it in time.

use std::time::Duration;

use super::error::SessionError;
use super::session::Session;
use crate::monitor::Flavor;
use crate::router::route::Target;
use crate::state::RuntimeState;

/// How long a read waits for its replica to apply the session's last write before it goes
/// to the primary instead. Replication on a healthy LAN applies a write in well under this.
const CAUSAL_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, Default, Clone)]
pub struct Causal {
    /// The session wrote since its write position was last read.
    stale: bool,
    /// GTID position the session's reads must see.
    position: Option<String>,
    /// Replica index -> the position it was last confirmed to have.
    confirmed: Vec<Option<String>>,
}

impl Causal {
    pub fn wrote(&mut self) {
        self.stale = true;
    }

    /// The primary reported the GTID of the session's last write (session tracking), so
    /// there is nothing to ask it for.
    pub fn wrote_at(&mut self, gtid: &str) {
        if let Some(pos) = clean_gtid_list(gtid) {
            self.position = Some(pos);
            self.stale = false;
        }
    }

    fn is_confirmed(&self, replica: usize, pos: &str) -> bool {
        self.confirmed.get(replica).and_then(|c| c.as_deref()) == Some(pos)
    }

    fn confirm(&mut self, replica: usize, pos: &str) {
        if self.confirmed.len() <= replica {
            self.confirmed.resize(replica + 1, None);
        }
        self.confirmed[replica] = Some(pos.to_owned());
    }
}

/// What to ask the primary for after a write. MySQL has no per-session last GTID, so its
/// whole executed set stands in: it covers the write (and perhaps a little more).
fn position_query(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::MariaDb => "SELECT @@last_gtid",
        Flavor::MySql(..) => "SELECT @@GLOBAL.gtid_executed",
    }
}

/// A statement answering 0 once the replica has applied `pos` (waiting `secs` at most).
fn wait_query(flavor: Flavor, pos: &str, secs: f64) -> String {
    match flavor {
        Flavor::MariaDb => format!("SELECT MASTER_GTID_WAIT('{pos}', {secs})"),
        Flavor::MySql(..) => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{pos}', {secs})"),
    }
}

fn flavor_of(version: &[u8]) -> Flavor {
    Flavor::from_version(&String::from_utf8_lossy(version))
}

/// A GTID position as MariaDB (`0-1-42,1-2-7`) or MySQL (`3e11fa47-...:1-5,...`) prints it,
/// with MySQL's line breaks removed: safe to put in a statement, or None.
fn clean_gtid_list(s: &str) -> Option<String> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let ok = !cleaned.is_empty()
        && cleaned
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'-' | b',' | b':'));
    ok.then_some(cleaned)
}

impl Session {
    /// A replica that has the session's writes, else the primary.
    pub(super) async fn causal_replica(
        &mut self,
        rt: &RuntimeState,
        max_lag: Option<Duration>,
    ) -> Result<Target, SessionError> {
        let pos = match self.causal_position(rt).await {
            Ok(Some(pos)) => pos,
            Ok(None) => return Ok(Target::Primary),
            // The primary is gone: reads keep working from replicas (degraded mode), even
            // though the session's last write cannot be checked for.
            Err(()) => return self.degraded_read(rt, max_lag).await,
        };
        for (n, i) in self.replica_order(rt, max_lag).into_iter().enumerate() {
            if self.ready(rt, Target::Replica(i)).await.is_err() {
                continue;
            }
            if self.causal.is_confirmed(i, &pos) || self.wait_for(i, &pos, n == 0).await {
                self.causal.confirm(i, &pos);
                self.chose_replica(i);
                return Ok(Target::Replica(i));
            }
        }
        tracing::debug!(session = self.id, position = %pos, "no replica has the session's writes yet");
        Ok(Target::Primary)
    }

    /// The session's write position, read from the primary once after each write. Err if
    /// the primary cannot be reached.
    async fn causal_position(&mut self, rt: &RuntimeState) -> Result<Option<String>, ()> {
        if self.causal.stale {
            if self.ready(rt, Target::Primary).await.is_err() {
                return Err(());
            }
            let conn = self.backends.get_mut(Target::Primary).ok_or(())?;
            let flavor = flavor_of(&conn.info.version);
            let pos = match conn.query_scalar(position_query(flavor)).await {
                Ok(Some(v)) => String::from_utf8(v).ok().and_then(|s| clean_gtid_list(&s)),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(session = self.id, error = %e, "cannot read last_gtid");
                    self.backends.take(Target::Primary);
                    self.lost_backend(Target::Primary);
                    return Err(());
                }
            };
            // Without a position (nothing written yet that has a GTID) reads stay on the primary.
            self.causal.position = pos;
            self.causal.stale = false;
        }
        Ok(self.causal.position.clone())
    }

    async fn degraded_read(
        &mut self,
        rt: &RuntimeState,
        max_lag: Option<Duration>,
    ) -> Result<Target, SessionError> {
        tracing::warn!(
            session = self.id,
            "primary unreachable: read-your-writes not checked for this read"
        );
        self.any_replica(rt, max_lag).await
    }

    /// Whether replica `i` has applied `pos`, waiting up to CAUSAL_WAIT on the first choice
    /// and not at all on the others.
    async fn wait_for(&mut self, i: usize, pos: &str, patient: bool) -> bool {
        let wait = if patient {
            CAUSAL_WAIT.as_secs_f64()
        } else {
            0.0
        };
        let Some(conn) = self.backends.get_mut(Target::Replica(i)) else {
            return false;
        };
        let sql = wait_query(flavor_of(&conn.info.version), pos, wait);
        matches!(conn.query_scalar(&sql).await, Ok(Some(v)) if v == b"0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_lists_are_validated_before_use_in_sql() {
        assert_eq!(clean_gtid_list("0-1-42").as_deref(), Some("0-1-42"));
        assert_eq!(
            clean_gtid_list("0-1-42,1-2-7").as_deref(),
            Some("0-1-42,1-2-7")
        );
        let mysql =
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1-9";
        assert_eq!(
            clean_gtid_list(mysql).as_deref(),
            Some(
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1-9"
            )
        );
        assert_eq!(clean_gtid_list(""), None);
        assert_eq!(clean_gtid_list("0-1-1'); DROP TABLE t; --"), None);
    }

    #[test]
    fn each_server_family_gets_its_own_statements() {
        let maria = flavor_of(b"5.5.5-10.11.6-MariaDB-0+deb12u1");
        let mysql = flavor_of(b"8.4.3");
        assert_eq!(maria, Flavor::MariaDb);
        assert_eq!(mysql, Flavor::MySql(8, 4, 3));
        assert_eq!(
            wait_query(maria, "0-1-5", 0.1),
            "SELECT MASTER_GTID_WAIT('0-1-5', 0.1)"
        );
        assert_eq!(
            wait_query(mysql, "u:1-5", 0.1),
            "SELECT WAIT_FOR_EXECUTED_GTID_SET('u:1-5', 0.1)"
        );
        assert_eq!(position_query(mysql), "SELECT @@GLOBAL.gtid_executed");
        assert_eq!(position_query(maria), "SELECT @@last_gtid");
    }

    #[test]
    fn confirmation_is_per_replica_and_position() {
        let mut c = Causal::default();
        c.confirm(1, "0-1-5");
        assert!(c.is_confirmed(1, "0-1-5"));
        assert!(!c.is_confirmed(1, "0-1-6"));
        assert!(!c.is_confirmed(0, "0-1-5"));
    }
}
