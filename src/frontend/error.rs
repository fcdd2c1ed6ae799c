//! Session errors and the one place that turns any of them into the ERR packet a client sees.

use std::io;

use crate::backend::BackendError;
use crate::protocol::codec::PacketTooLarge;
use crate::protocol::packets::ErrSpec;
use crate::router::route::Target;

/// Which of a tenant's servers failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
}

impl Role {
    pub fn of(t: Target) -> Role {
        match t {
            Target::Primary => Role::Primary,
            Target::Replica(_) => Role::Replica,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Client-caused: answer with this ERR and carry on.
    #[error("{}", .0.message)]
    Reply(ErrSpec),
    /// A backend failed before any of its answer reached the client.
    #[error("tenant {tenant}: {} {addr}: {err}", role.name())]
    Backend {
        tenant: String,
        role: Role,
        addr: String,
        err: BackendError,
    },
    /// A backend failed in the middle of an answer: the client cannot be resynchronised.
    #[error("tenant {tenant}: {} {addr} failed mid-response: {err}", role.name())]
    BrokenResponse {
        tenant: String,
        role: Role,
        addr: String,
        err: BackendError,
    },
    /// A read that must see writes no replica has applied, whose primary failed too: the
    /// primary's error, saying what the read waited for (a primary that died before its
    /// last writes reached any replica leaves them only there).
    #[error("{source}; {}", read_behind(whose, pos, *asked))]
    ReadBehind {
        source: Box<SessionError>,
        whose: &'static str,
        pos: String,
        /// Some replica was asked for the writes (else none could be reached).
        asked: bool,
    },
    /// The client went away.
    #[error("client connection lost: {0}")]
    ClientGone(io::Error),
    /// The client broke the protocol: tell it why, then close.
    #[error("malformed packet: {0}")]
    ClientProtocol(String),
    /// Internal, never answered: a pause held the command while a reload landed, so it runs
    /// again from its start under the reloaded config, checks and routing included. Carries
    /// an execute's packet, which the command had taken.
    #[error("command held across a reload: run again")]
    Rerun(Option<Vec<u8>>),
}

impl SessionError {
    pub fn reply(code: u16, state: &'static str, msg: impl Into<String>) -> Self {
        SessionError::Reply(ErrSpec::new(code, state, msg))
    }

    /// Whether the session can go on after reporting this error.
    pub fn is_recoverable(&self) -> bool {
        match self {
            SessionError::Reply(_) | SessionError::Backend { .. } => true,
            SessionError::ReadBehind { source, .. } => source.is_recoverable(),
            _ => false,
        }
    }

    /// [`to_err`](Self::to_err) for the error a session ends after (see [`ending`]); a
    /// server's own refusal keeps its SQLSTATE.
    pub fn to_last_err(&self) -> Option<ErrSpec> {
        let servers = matches!(
            self,
            SessionError::Backend {
                err: BackendError::Server(_),
                ..
            }
        );
        self.to_err()
            .map(|spec| if servers { spec } else { ending(spec) })
    }

    /// [`to_err`](Self::to_err) for a login refused (see [`refusing_login`]).
    pub fn to_login_err(&self) -> Option<ErrSpec> {
        self.to_err().map(refusing_login)
    }

    /// The ERR packet for this error, if the client can still be told anything.
    pub fn to_err(&self) -> Option<ErrSpec> {
        match self {
            SessionError::Reply(e) => Some(e.clone()),
            SessionError::Backend {
                tenant,
                role,
                addr,
                err,
            } => Some(backend_err(tenant, *role, addr, err)),
            SessionError::ClientProtocol(msg) => Some(ErrSpec::new(
                1835,
                "HY000",
                format!("Malformed communication packet: {msg}"),
            )),
            SessionError::ReadBehind {
                source,
                whose,
                pos,
                asked,
            } => source.to_err().map(|mut e| {
                e.message = format!("{}; {}", e.message, read_behind(whose, pos, *asked));
                e
            }),
            SessionError::BrokenResponse { .. } | SessionError::ClientGone(_) => None,
            // The session loop runs the command again; never seen here.
            SessionError::Rerun(_) => Some(ErrSpec::new(
                1105,
                "HY000",
                "Switchyard: a command held across a reload was not run again",
            )),
        }
    }
}

/// A command too short for its fixed fields, answered as the server answers it
/// (ER_MALFORMED_PACKET, HY000): the framing is intact, so the session goes on.
pub(super) fn malformed_packet() -> SessionError {
    SessionError::reply(1835, "HY000", "Malformed communication packet")
}

/// The ERR of Switchyard's own a session ends after (its state lost with a server
/// connection): SQLSTATE 08S01, communication link failure, as a driver reports a
/// connection lost. A client's pool then discards the connection at once (HikariCP and the
/// JDBC drivers go by the SQLSTATE's class 08) rather than lend it out closed.
fn ending(mut spec: ErrSpec) -> ErrSpec {
    if !spec.state.starts_with("08") {
        spec.state = std::borrow::Cow::Borrowed("08S01");
    }
    spec
}

/// The ERR of a login refused: a connection limit's (1040, Switchyard's own or a pool's
/// that no connection came free in) has the server's SQLSTATE for it, 08004.
fn refusing_login(mut spec: ErrSpec) -> ErrSpec {
    if spec.code == 1040 {
        spec.state = std::borrow::Cow::Borrowed("08004");
    }
    spec
}

/// ER_SERVER_SHUTDOWN, as the server answers a statement it will not run because it is
/// shutting down.
pub(super) fn shutting_down() -> SessionError {
    SessionError::reply(1053, "08S01", "Server shutdown in progress")
}

/// ER_UNKNOWN_COM_ERROR in the server's words, for a command it does not know either.
pub(super) fn unknown_command() -> SessionError {
    SessionError::reply(1047, "08S01", "Unknown command")
}

/// ER_UNSUPPORTED_PS, as the server answers a COM_STMT_BULK_EXECUTE from a client that did not
/// ask for bulk operations at login, or with flags it does not know.
pub(super) fn unsupported_ps() -> SessionError {
    SessionError::reply(
        1295,
        "HY000",
        "This command is not supported in the prepared statement protocol yet",
    )
}

/// What a [`SessionError::ReadBehind`] adds to its primary's error, in logs and in the ERR.
fn read_behind(whose: &str, pos: &str, asked: bool) -> String {
    if asked {
        format!("the read must see {whose} up to GTID {pos}, which no replica has applied")
    } else {
        format!("the read must see {whose} up to GTID {pos}, and no replica can be reached")
    }
}

fn backend_err(tenant: &str, role: Role, addr: &str, err: &BackendError) -> ErrSpec {
    let role = role.name();
    match err {
        // The server's own refusal keeps its code, so clients react as they would directly.
        // The server's own code and SQLSTATE (1203 is 42000, 1251 08004...).
        BackendError::Auth {
            code,
            state,
            message,
        } => ErrSpec {
            code: *code,
            state: std::borrow::Cow::Owned(state.clone()),
            message: format!("{message} (tenant {tenant}, {role} {addr})"),
        },
        BackendError::Connect(_) | BackendError::ConnectTimeout => ErrSpec::new(
            2003,
            "HY000",
            format!("Can't connect to {role} {addr} of tenant {tenant}: {err}"),
        ),
        // As the server refuses a connection beyond max_connections: drivers and operators
        // know the code. Its SQLSTATE, 08004, only for a login (`refusing_login`): a
        // statement's, the session going on, must not read as a connection refused (JDBC
        // drivers and HikariCP drop a connection on SQLSTATE class 08).
        BackendError::PoolTimeout { .. } => ErrSpec::new(
            1040,
            "HY000",
            format!("Too many connections: no connection to {role} {addr} of tenant {tenant} came free: {err}"),
        ),
        BackendError::Tls(_) => ErrSpec::new(
            2026,
            "HY000",
            format!("SSL connection error to {role} {addr} of tenant {tenant}: {err}"),
        ),
        // The server's own answer, as a direct connection would have had it.
        BackendError::Server(e) => e.clone(),
        BackendError::AuthPlugin(_) => ErrSpec::new(
            2059,
            "HY000",
            format!("Can't log in to {role} {addr} of tenant {tenant}: {err}"),
        ),
        _ => ErrSpec::new(
            2013,
            "HY000",
            format!("Lost connection to {role} {addr} of tenant {tenant}: {err}"),
        ),
    }
}

/// ERR 1153, worded as the server words it, when a read failed on a packet over the limit;
/// with the seq that answers it.
pub fn packet_too_large(e: &io::Error) -> Option<(SessionError, u8)> {
    let big = PacketTooLarge::of(e)?;
    let err = SessionError::reply(
        1153,
        "08S01",
        format!(
            "Got a packet bigger than 'max_allowed_packet' bytes (Switchyard accepts {} bytes here)",
            big.limit
        ),
    );
    Some((err, big.seq.wrapping_add(1)))
}

/// ERR 1045, worded as the server words it.
pub fn access_denied(user: &str, host: &str, with_password: bool) -> ErrSpec {
    let using = if with_password { "YES" } else { "NO" };
    ErrSpec::new(
        1045,
        "28000",
        format!("Access denied for user '{user}'@'{host}' (using password: {using})"),
    )
}

/// ERR 1044: a schema outside what the user may reach. The server names the account that
/// matched, host pattern included (not the client's address, as 1045 does); a Switchyard
/// user matches from any host, so its account is `'user'@'%'`.
pub fn db_access_denied(user: &str, db: &str) -> SessionError {
    SessionError::reply(
        1044,
        "42000",
        format!("Access denied for user '{user}'@'%' to database '{db}'"),
    )
}

pub fn no_database(user: &str) -> SessionError {
    SessionError::reply(
        1046,
        "3D000",
        format!(
            "No database selected: user '{user}' serves several tenants; choose one with USE <schema>"
        ),
    )
}

/// ERR 1094, as the server answers a KILL of an id it does not know; also for a session
/// the caller may not kill, so other users' session ids cannot be probed.
pub fn unknown_thread(id: u64) -> SessionError {
    SessionError::reply(1094, "HY000", format!("Unknown thread id: {id}"))
}

/// ERR 1227 for `SET PASSWORD` and `ALTER USER USER()` (see `Effects::sets_password`).
pub fn password_refused() -> SessionError {
    SessionError::reply(
        1227,
        "42000",
        "Access denied; an account's own password change (SET PASSWORD, ALTER USER USER()) is refused through Switchyard: it logs in to the servers with the passwords in its config (change the password on the server directly, then in the config, and reload)",
    )
}

/// ERR 1235 for the KILL forms Switchyard does not carry out.
pub fn kill_unsupported(what: &str) -> SessionError {
    SessionError::reply(
        1235,
        "42000",
        format!(
            "Switchyard does not support {what}: KILL [QUERY | CONNECTION] takes a literal Switchyard session id (the thread id of the handshake)"
        ),
    )
}

/// ERR 1317, what the server answers `KILL QUERY` of the caller's own connection.
pub fn query_interrupted() -> SessionError {
    SessionError::reply(1317, "70100", "Query execution was interrupted")
}

/// ERR 1927, what the server answers a KILL of the caller's own connection.
pub fn connection_killed() -> SessionError {
    SessionError::reply(1927, "70100", "Connection was killed")
}

/// A KILL whose backend side (the connection beside the target's) failed.
pub fn kill_failed(id: u32, addr: &str, err: impl std::fmt::Display) -> SessionError {
    SessionError::reply(
        1105,
        "HY000",
        format!("Switchyard could not interrupt session {id} on backend {addr}: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_behind_says_whether_any_replica_was_asked() {
        let behind = |asked| SessionError::ReadBehind {
            source: Box::new(SessionError::reply(
                2003,
                "HY000",
                "Can't connect to primary",
            )),
            whose: "the tenant's writes",
            pos: "0-1-9".into(),
            asked,
        };
        let err = behind(true).to_err().expect("an ERR");
        assert_eq!((err.code, &*err.state), (2003, "HY000"));
        assert_eq!(
            err.message,
            "Can't connect to primary; the read must see the tenant's writes up to GTID 0-1-9, \
             which no replica has applied"
        );
        assert_eq!(
            behind(false).to_err().expect("an ERR").message,
            "Can't connect to primary; the read must see the tenant's writes up to GTID 0-1-9, \
             and no replica can be reached"
        );
        // The log line reads the same as the ERR.
        assert_eq!(behind(true).to_string(), err.message);
    }
}
