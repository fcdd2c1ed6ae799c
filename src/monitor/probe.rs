//! One backend's checks over mysql_async: a kept-open connection, the queries, and turning
//! their rows into an [`Observation`]. Row parsing is pure and tested without a server.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};
use tokio::time::timeout;

use super::error::MonitorError;
use super::status::{Observation, Outcome};
use super::task::Login;
use crate::config::MonitorConfig;

/// Which server family answers: they spell the replication queries differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    /// MySQL (or Percona) with its `major.minor.patch` version.
    MySql(u16, u16, u16),
}

impl Flavor {
    /// From `@@version`, e.g. `10.11.19-MariaDB-0+deb12u1-log` or `8.0.36`.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            return Flavor::MariaDb;
        }
        let mut numbers = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u16>().unwrap_or(0));
        let mut next = || numbers.next().unwrap_or(0);
        Flavor::MySql(next(), next(), next())
    }

    /// The global variables read on every check, in [`Observation`] order.
    fn variables_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => {
                "SELECT @@global.read_only, @@global.server_id, \
                 @@global.gtid_current_pos, @@global.gtid_binlog_pos"
            }
            Flavor::MySql(..) => {
                "SELECT @@global.read_only, @@global.server_id, @@global.gtid_executed, NULL"
            }
        }
    }

    /// MariaDB lists every replication source with `ALL`; MySQL renamed the statement
    /// (and its columns) in 8.0.22 and dropped the old name in 8.4.
    fn replica_status_query(self) -> &'static str {
        match self {
            Flavor::MariaDb => "SHOW ALL SLAVES STATUS",
            Flavor::MySql(major, minor, patch) if (major, minor, patch) >= (8, 0, 22) => {
                "SHOW REPLICA STATUS"
            }
            Flavor::MySql(..) => "SHOW SLAVE STATUS",
        }
    }
}

/// A row of `SHOW ... STATUS` as column names and text values (`None` for NULL).
pub type StatusRow = Vec<(String, Option<String>)>;

/// What the replica status rows say, merged over all replication sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    pub is_replica: bool,
    pub io_running: bool,
    pub sql_running: bool,
    pub lag: Option<Duration>,
    pub gtid_io: Option<String>,
}

/// Both spellings of each column: MariaDB and MySQL before 8.0.22, then MySQL 8.0.22+.
const IO_RUNNING: [&str; 2] = ["Slave_IO_Running", "Replica_IO_Running"];
const SQL_RUNNING: [&str; 2] = ["Slave_SQL_Running", "Replica_SQL_Running"];
const LAG: [&str; 2] = ["Seconds_Behind_Master", "Seconds_Behind_Source"];
const GTID_IO: [&str; 2] = ["Gtid_IO_Pos", "Retrieved_Gtid_Set"];

/// Merges the rows: no rows means not a replica; with several sources (MariaDB multi-source)
/// every one must run, and the lag is the worst one, unknown if any is unknown.
pub fn replication_from_rows(rows: &[StatusRow]) -> Replication {
    let Some(first) = rows.first() else {
        return Replication::default();
    };
    let yes = |row: &StatusRow, names: &[&str]| column(row, names).as_deref() == Some("Yes");
    let lags: Vec<Option<Duration>> = rows
        .iter()
        .map(|row| {
            column(row, &LAG)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        })
        .collect();
    Replication {
        is_replica: true,
        io_running: rows.iter().all(|r| yes(r, &IO_RUNNING)),
        sql_running: rows.iter().all(|r| yes(r, &SQL_RUNNING)),
        lag: lags
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .and_then(|l| l.into_iter().max()),
        gtid_io: column(first, &GTID_IO).filter(|s| !s.is_empty()),
    }
}

fn column(row: &StatusRow, names: &[&str]) -> Option<String> {
    row.iter()
        .find(|(name, _)| names.iter().any(|n| name.eq_ignore_ascii_case(n)))
        .and_then(|(_, value)| value.clone())
}

/// Text of a value as the text protocol sent it; `None` for NULL.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn status_row(row: &Row) -> StatusRow {
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let value = row.as_ref(i).and_then(text);
            (col.name_str().into_owned(), value)
        })
        .collect()
}

/// Splits `host:port` or `[v6]:port` (the config has checked the form already).
pub fn host_port(addr: &str) -> Result<(String, u16), MonitorError> {
    let bad = || MonitorError::BadAddress(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The kept connection: the server's flavor and version, and whether it refused the replica
/// status (a missing privilege: global privileges hold for a connection's life, so it is
/// not asked again on this one; a new connection asks again).
struct Kept {
    conn: Conn,
    flavor: Flavor,
    version: String,
    status_refused: bool,
}

/// A check past its budget, still waited for on its connection (see [`Prober::check`]).
type Running = tokio::task::JoinHandle<(Kept, Result<Observation, MonitorError>)>;

/// How long a check is waited for at most before its connection is given up: a server that
/// went away mid-answer (a host rebooted, a partition) may leave it open for good.
const CHECK_GIVEN_UP_AFTER: Duration = Duration::from_secs(30);

/// What the server answers a user without the privilege a statement needs.
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// The checks of one backend, over one connection kept open between checks.
pub struct Prober {
    opts: Opts,
    connect_timeout: Duration,
    conn: Option<Kept>,
    /// A check past its budget, and when it started.
    running: Option<(Running, tokio::time::Instant)>,
    /// Logins refused in their handshake in a row, and when the next may be tried.
    refused_logins: u32,
    next_login: Option<tokio::time::Instant>,
}

/// How long after the `n`-th login in a row refused in its handshake the next is tried:
/// 1 s, doubling up to a minute (about 100 tries in the first 95 minutes).
fn login_backoff(n: u32) -> Duration {
    Duration::from_secs(1 << n.clamp(1, 7).saturating_sub(1)).min(Duration::from_secs(60))
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some((running, _)) = self.running.take() {
            running.abort();
        }
    }
}

impl Prober {
    /// Checks `addr` as `login` (user, password).
    pub fn new(
        addr: &str,
        settings: &MonitorConfig,
        login: &Login,
        tls_ca: Option<&str>,
    ) -> Result<Self, MonitorError> {
        let (host, port) = host_port(addr)?;
        let ssl = tls_ca.map(|ca| {
            mysql_async::SslOpts::default()
                .with_root_certs(vec![std::path::PathBuf::from(ca).into()])
        });
        let opts = OptsBuilder::default()
            .ssl_opts(ssl)
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(login.user.clone()))
            .pass(Some(login.password.expose().to_string()))
            // Never switch to a unix socket: the address is what the data path uses.
            .prefer_socket(false)
            // A server gone without a word (a host down, a partition) is noticed, as on
            // the data path's connections; a check waits no longer than
            // CHECK_GIVEN_UP_AFTER either way.
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .into();
        Ok(Prober {
            opts,
            connect_timeout: settings.connect_timeout,
            conn: None,
            running: None,
            refused_logins: 0,
            next_login: None,
        })
    }

    /// One check, bounded: `connect_timeout` for a reconnect, `budget` for the queries.
    /// The connection is kept after a clean check, dropped after an error. A check past its
    /// budget fails, and is waited for by the next ones rather than abandoned: dropped
    /// mid-query, its connection was an aborted one on the server, and the new one each
    /// interval queued behind whatever held the first (a replica status blocked behind a
    /// STOP SLAVE or a backup's lock), threads piling up there toward `max_connections`.
    pub async fn check(&mut self, budget: Duration) -> Outcome {
        match self.try_check(budget).await {
            Ok(obs) => Outcome::Seen(obs),
            // Nothing tried: the server stays as the last refusal left it.
            Err(e @ MonitorError::LoginBackoff(_)) => Outcome::NoNews(e.to_string()),
            Err(e) if e.server_answered() => Outcome::Failed(e.to_string()),
            Err(e) if e.local_shortage() => Outcome::NoNews(e.to_string()),
            Err(e) => Outcome::Unreachable(e.to_string()),
        }
    }

    async fn try_check(&mut self, budget: Duration) -> Result<Observation, MonitorError> {
        let now = tokio::time::Instant::now();
        let deadline = now + budget;
        let given_up = |(_, since): &mut (Running, tokio::time::Instant)| {
            now.duration_since(*since) > CHECK_GIVEN_UP_AFTER
        };
        if let Some((running, _)) = self.running.take_if(given_up) {
            // Its connection goes with it, and a new one checks.
            running.abort();
        }
        if let Some((running, _)) = self.running.as_mut() {
            let late = tokio::time::timeout_at(deadline, running)
                .await
                .map_err(|_| MonitorError::CheckTimeout(budget))?;
            self.running = None;
            // What a late check saw is old news: its connection, if sound, checks again.
            if let Ok((kept, Ok(_))) = late {
                self.conn = Some(kept);
            }
        }
        let kept = match self.conn.take() {
            Some(kept) => kept,
            None => self.log_in().await?,
        };
        // Held here from the start, so a monitor stopped meanwhile aborts it (`Drop`).
        let task = tokio::spawn(async move {
            let mut kept = kept;
            let obs = read_observation(&mut kept).await;
            (kept, obs)
        });
        let (running, _) = self.running.insert((task, tokio::time::Instant::now()));
        let done = tokio::time::timeout_at(deadline, running)
            .await
            .map_err(|_| MonitorError::CheckTimeout(budget))?;
        self.running = None;
        match done {
            // The task panicked or was aborted: its connection went with it.
            Err(e) => Err(MonitorError::Io(std::io::Error::other(e))),
            Ok((kept, obs)) => {
                let obs = obs?;
                self.conn = Some(kept);
                Ok(obs)
            }
        }
    }

    /// A new connection, unless logins are being refused in their handshake (see
    /// [`MonitorError::handshake_refused`]) and the next is not due yet.
    async fn log_in(&mut self) -> Result<Kept, MonitorError> {
        let now = tokio::time::Instant::now();
        if let Some(due) = self.next_login.filter(|due| *due > now) {
            return Err(MonitorError::LoginBackoff(due - now));
        }
        match self.connect().await {
            Ok(kept) => {
                (self.refused_logins, self.next_login) = (0, None);
                Ok(kept)
            }
            Err(e) => {
                if e.handshake_refused() {
                    self.refused_logins = self.refused_logins.saturating_add(1);
                    self.next_login = Some(now + login_backoff(self.refused_logins));
                }
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Kept, MonitorError> {
        let limit = self.connect_timeout;
        let connecting = async {
            let mut conn = Conn::new(self.opts.clone()).await?;
            let version: Option<String> = conn.query_first("SELECT @@version").await?;
            let version = version.unwrap_or_default();
            Ok::<_, MonitorError>(Kept {
                conn,
                flavor: Flavor::from_version(&version),
                version,
                status_refused: false,
            })
        };
        timeout(limit, connecting)
            .await
            .map_err(|_| MonitorError::ConnectTimeout(limit))?
    }
}

async fn read_observation(kept: &mut Kept) -> Result<Observation, MonitorError> {
    type Vars = (Option<i64>, Option<u32>, Option<String>, Option<String>);
    let (conn, flavor) = (&mut kept.conn, kept.flavor);
    let vars: Option<Vars> = conn.query_first(flavor.variables_query()).await?;
    let (read_only, server_id, gtid, gtid_binlog) = vars.unwrap_or_default();
    // Replication status needs SLAVE MONITOR (MariaDB) or REPLICATION CLIENT (MySQL); a
    // user without them still gets GTID positions, which is all the lag needs. Asked at
    // every check once refused, it was a refusal (and a count in the server's
    // `Access_denied_errors`) twice a second.
    let replication = if kept.status_refused {
        None
    } else {
        match conn.query::<Row, _>(flavor.replica_status_query()).await {
            Ok(rows) => {
                let rows: Vec<StatusRow> = rows.iter().map(status_row).collect();
                Some(replication_from_rows(&rows))
            }
            Err(mysql_async::Error::Server(e)) => {
                // Refused for the privilege: not again on this connection. Any other error
                // (a KILL QUERY of the check, a lock wait) hides it this time only.
                kept.status_refused = e.code == ER_SPECIFIC_ACCESS_DENIED;
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (replication, hidden) = match replication {
        Some(r) => (r, false),
        None => (Replication::default(), true),
    };
    Ok(Observation {
        version: kept.version.clone(),
        read_only: read_only.unwrap_or(0) != 0,
        server_id,
        is_replica: replication.is_replica,
        io_running: replication.io_running,
        sql_running: replication.sql_running,
        lag: replication.lag,
        gtid: gtid.map(|g| one_line(&g)),
        gtid_binlog: gtid_binlog.map(|g| one_line(&g)),
        gtid_io: replication.gtid_io.map(|g| one_line(&g)),
        replication_hidden: hidden,
        gtid_lag: None,
        primary_down: false,
    })
}

/// GTID sets may be wrapped over lines by the server (MySQL does); keep one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> StatusRow {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn refused_logins_back_off_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| login_backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(login_backoff(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn flavor_from_version_strings() {
        assert_eq!(
            Flavor::from_version("10.11.19-MariaDB-0+deb12u1-log"),
            Flavor::MariaDb
        );
        assert_eq!(
            Flavor::from_version("5.5.5-10.6.12-MariaDB"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::MySql(8, 0, 36));
        assert_eq!(Flavor::from_version("5.7.44-log"), Flavor::MySql(5, 7, 44));
        assert_eq!(Flavor::from_version("garbage"), Flavor::MySql(0, 0, 0));
    }

    #[test]
    fn replica_status_statement_per_flavor() {
        assert_eq!(
            Flavor::MariaDb.replica_status_query(),
            "SHOW ALL SLAVES STATUS"
        );
        assert_eq!(
            Flavor::MySql(8, 0, 21).replica_status_query(),
            "SHOW SLAVE STATUS"
        );
        assert_eq!(
            Flavor::MySql(8, 0, 22).replica_status_query(),
            "SHOW REPLICA STATUS"
        );
        assert_eq!(
            Flavor::MySql(8, 4, 0).replica_status_query(),
            "SHOW REPLICA STATUS"
        );
        assert!(Flavor::MariaDb
            .variables_query()
            .contains("gtid_current_pos"));
        assert!(Flavor::MySql(8, 0, 36)
            .variables_query()
            .contains("gtid_executed"));
    }

    #[test]
    fn no_rows_is_not_a_replica() {
        assert_eq!(replication_from_rows(&[]), Replication::default());
    }

    #[test]
    fn mariadb_replica_row() {
        let r = replication_from_rows(&[row(&[
            ("Connection_name", Some("")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Master", Some("3")),
            ("Gtid_IO_Pos", Some("0-1-20")),
        ])]);
        assert_eq!(
            r,
            Replication {
                is_replica: true,
                io_running: true,
                sql_running: true,
                lag: Some(Duration::from_secs(3)),
                gtid_io: Some("0-1-20".into()),
            }
        );
    }

    #[test]
    fn mysql_8_replica_row_with_null_lag_and_connecting_io() {
        let r = replication_from_rows(&[row(&[
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Source", None),
            ("Retrieved_Gtid_Set", Some("")),
        ])]);
        assert!(r.is_replica);
        assert!(!r.io_running);
        assert!(r.sql_running);
        assert_eq!(r.lag, None);
        assert_eq!(r.gtid_io, None);
    }

    #[test]
    fn several_sources_must_all_run_and_the_worst_lag_counts() {
        let source = |sql: &str, lag: Option<&str>| {
            row(&[
                ("Slave_IO_Running", Some("Yes")),
                ("Slave_SQL_Running", Some(sql)),
                ("Seconds_Behind_Master", lag),
            ])
        };
        let r = replication_from_rows(&[source("Yes", Some("1")), source("Yes", Some("4"))]);
        assert!(r.sql_running);
        assert_eq!(r.lag, Some(Duration::from_secs(4)));
        let r = replication_from_rows(&[source("Yes", Some("1")), source("No", None)]);
        assert!(!r.sql_running);
        assert_eq!(r.lag, None);
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            host_port("127.0.0.1:3307").unwrap(),
            ("127.0.0.1".into(), 3307)
        );
        assert_eq!(host_port("[::1]:3307").unwrap(), ("::1".into(), 3307));
        assert_eq!(host_port("db1:3306").unwrap(), ("db1".into(), 3306));
        assert!(host_port("db1").is_err());
        assert!(host_port("db1:x").is_err());
        assert!(host_port(":3306").is_err());
    }

    #[test]
    fn gtid_sets_are_kept_on_one_line() {
        assert_eq!(one_line("uuid:1-5,\nuuid2:1-3"), "uuid:1-5,uuid2:1-3");
    }
}
