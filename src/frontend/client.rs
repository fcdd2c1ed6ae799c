//! What belongs to the client whichever server connection serves it: who it is, and the
//! session state (transaction, SETs, pins, read-your-writes position) a leased connection
//! must be brought to; with the one routine that resets that state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::causal::Causal;
use super::pins::Pins;
use super::vars::SessionVars;
use crate::backend::restore::Wanted;
use crate::backend::Proof;
use crate::config::UserConfig;
use crate::protocol::packets::ErrSpec;
use crate::protocol::{CapabilityFlags, MariadbCapabilities};
use crate::router::route::Target;

/// Who the client is, as its login (or COM_CHANGE_USER) established.
pub struct Identity {
    pub host: String,
    /// The greeting's nonce: COM_CHANGE_USER's answer is computed over it.
    pub nonce: [u8; 20],
    pub user: std::sync::Arc<UserConfig>,
    /// What logs `user` in to backends (learned at login when the config holds a hash).
    pub proof: Proof,
    pub caps: CapabilityFlags,
    /// MariaDB extended capabilities the client and Switchyard agreed on.
    pub ext_caps: MariadbCapabilities,
    pub collation: u8,
    /// COM_CHANGE_USER attempts refused on this connection (the server allows three).
    pub failed_changes: u8,
}

/// The session's state as the client sees it, kept apart from the connections that serve
/// it: any connection is brought to it before it runs the session's statements.
#[derive(Default)]
pub struct ClientState {
    /// Shared with the connections brought to it (`Conn::schema`), so that checking a
    /// connection's schema is most often a pointer compare, not a read of two strings.
    pub schema: Option<Arc<str>>,
    /// Backend holding the open transaction, if any.
    pub txn: Option<Target>,
    pub autocommit_off: bool,
    /// `completion_type` is RELEASE (2): the server ends the session after every COMMIT
    /// and ROLLBACK that does not say NO RELEASE.
    pub release_at_commit: bool,
    /// A statement ran with autocommit off since the last COMMIT or ROLLBACK: the server may
    /// have begun a transaction it does not flag (MariaDB sets no `SERVER_STATUS_IN_TRANS`
    /// until one writes), which lives on the primary's connection. Between such
    /// transactions autocommit off is only a variable, replayed like the others.
    pub unflagged_txn: bool,
    /// The open transaction has written: whatever ends it may commit a write.
    pub txn_has_writes: bool,
    /// Where the last statement ran (statements that ask about it follow it).
    pub last: Option<Target>,
    /// The session wrote since its reads last had to see it.
    pub wrote: bool,
    /// A SET of the session named `sql_log_bin`: a write it makes may never reach a
    /// replica, so its reads that must see its writes go to the primary.
    pub unlogged_writes: bool,
    /// The replica the session reads from: for good with read-your-writes, else until
    /// [`REPICK_EVERY`] has passed since it was chosen.
    pub sticky: Option<usize>,
    /// Until when `sticky` is kept: [`REPICK_EVERY`] after the end of the command before
    /// it was chosen (an instant to compare with, not a duration to work out per read).
    pub sticky_until: Option<Instant>,
    /// When the session's last command ended: the clock the replica choice reads, so a read
    /// costs no clock read of its own.
    pub last_end: Option<Instant>,
    /// Read-your-writes bookkeeping: what the session's reads must see.
    pub causal: Causal,
    /// SETs to replay and COM_SET_OPTION.
    pub vars: SessionVars,
    /// What keeps the session on its connection, and why.
    pub pins: Pins,
    /// What LAST_INSERT_ID() answers this session (from its OK packets).
    pub last_insert_id: u64,
    /// The connection whose last answer the next statement may ask about (warnings, an
    /// error, rows changed): kept one statement longer.
    pub look_back: Option<Target>,
    /// The look-back is given back once the session has been idle for `LOOK_BACK_HOLD`,
    /// not kept for as long as the client stays silent (an application's pooled
    /// connection idle after its last write held a server connection, and a full pool
    /// made other sessions wait until they timed out): when it keeps only a write's answer
    /// (rows changed, its GTID), which an application asks for right away if at all, and
    /// any answer (warnings, an error) once another session waits for the connection.
    pub look_back_expires: bool,
    /// An answer given back that way: a statement asking about it gets an error, not
    /// another connection's answer.
    pub answer_gone: bool,
    /// The error Switchyard answered the last command with itself (a policy, a pool that
    /// stayed busy): no server holds it, so a statement asking about it (SHOW WARNINGS,
    /// `@@error_count`) raises it on its connection first.
    pub own_error: Option<ErrSpec>,
    /// The session-describing status flags of the last answer a server gave it (sql_mode's
    /// NO_BACKSLASH_ESCAPES and ANSI_QUOTES, a read-only transaction's flag): Switchyard's
    /// own OKs carry them as the server's would. Clients read every status they get:
    /// libmariadb escapes strings for NO_BACKSLASH_ESCAPES by the last one it read.
    pub server_modes: u16,
    /// The client's character set when it is one whose two-byte characters may end in a
    /// backslash or backtick byte (GBK, Big5, Shift-JIS): the classifier must read its
    /// statements pairing those bytes as the server does. Set at login, by `SET NAMES` and
    /// the like, and by a reset (back to the login's).
    pub multibyte: Option<crate::router::MultiByte>,
}

/// How much of the state a reset forgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// COM_RESET_CONNECTION and COM_CHANGE_USER: everything session-scoped, as the server's
    /// reset does (the schema stays; COM_CHANGE_USER sets its own).
    Everything,
    /// The session moved to another tenant: its schema, where it read and what its reads
    /// must see belong to the old one.
    Tenant,
    /// The tenant's settings were reloaded: replicas may have moved, so where the session
    /// read and what it confirmed there start over.
    Reload,
    /// The connection to this target was lost with whatever lived on it.
    Lost(Target),
}

/// How long a session without read-your-writes stays on the replica it chose before it
/// chooses again (fewest readers per weight, itself left out: it moves only to even out).
/// Choosing per read spread one session's reads over every replica, and each server's
/// thread for the session slept between its reads: a point-select load lost about a third
/// of its throughput to those wake-ups (16.7k qps with one replica, 10.5-12.5k with two).
/// Choosing again after 32 reads still cost one busy session a quarter of its throughput
/// (text point selects at 1 client: 4.7-5.0k qps against 6.1-6.3k kept for good,
/// interleaved rounds), the replica it left going idle every few milliseconds. Once a
/// second, sessions still even out over the replicas as others come and go, and a replica
/// that joins or comes back gets reads within a second.
pub const REPICK_EVERY: Duration = Duration::from_secs(1);

impl ClientState {
    /// What a connection must be brought to before it runs this session's statements.
    pub fn wanted(&self, session: u32) -> Wanted<'_> {
        Wanted {
            schema: self.schema.as_ref(),
            sets: self.vars.sets(),
            applied: self.vars.applied(session),
            set_option: self.vars.set_option,
        }
    }

    /// The one place that forgets parts of the session's state.
    pub fn reset(&mut self, how: Reset) {
        match how {
            Reset::Everything => {
                let schema = self.schema.take();
                let mut vars = std::mem::take(&mut self.vars);
                vars.clear();
                *self = ClientState {
                    schema,
                    vars,
                    last_end: self.last_end,
                    // A forwarded COM_RESET_CONNECTION's answer set them just now.
                    server_modes: self.server_modes,
                    // The caller knows the login's character set (`Session::reset_state`).
                    multibyte: self.multibyte,
                    // The session's writes stay on the server, which a direct connection
                    // reads after its reset: so do its reads here (a pool's reset between
                    // a request's write and the next one's read). A change to another
                    // tenant forgets them (`Reset::Tenant`).
                    causal: std::mem::take(&mut self.causal),
                    wrote: self.wrote,
                    ..ClientState::default()
                };
            }
            Reset::Tenant => {
                self.schema = None;
                self.last = None;
                self.wrote = false;
                self.forget_reads();
            }
            Reset::Reload => {
                self.forget_replica_choice();
                self.causal.forget_replicas();
            }
            Reset::Lost(t) => {
                if self.txn == Some(t) {
                    self.txn = None;
                }
                self.pins.drop_cursors_on(t);
                if t == Target::Primary {
                    self.autocommit_off = false;
                    self.unflagged_txn = false;
                    self.pins.primary_lost();
                }
            }
        }
    }

    /// Whether the replica chosen last is kept for the next read (see [`REPICK_EVERY`]).
    pub fn keeps_replica(&self) -> bool {
        matches!((self.sticky_until, self.last_end), (Some(until), Some(now)) if now < until)
    }

    fn forget_reads(&mut self) {
        self.forget_replica_choice();
        self.causal = Causal::default();
    }

    fn forget_replica_choice(&mut self) {
        self.sticky = None;
        self.sticky_until = None;
    }

    /// Whether the connection kept for the next statement goes back after an idle while
    /// (see `look_back_expires`).
    pub fn holds_expiring_answer(&self) -> bool {
        self.look_back_expires && self.look_back.is_some()
    }

    /// Whether the session keeps something on its connection to `t` that a fresh
    /// connection would not have.
    pub fn lives_on(&self, t: Target) -> bool {
        self.txn == Some(t)
            || self.pins.has_cursor_on(t)
            || (t == Target::Primary && (self.unflagged_txn || self.pins.holds_server_state()))
    }

    /// Where a transaction may be open: one the server flags, or one begun unflagged with
    /// autocommit off (on the primary).
    pub fn open_transaction(&self) -> Option<Target> {
        self.txn
            .or_else(|| self.unflagged_txn.then_some(Target::Primary))
    }

    pub fn in_transaction(&self) -> bool {
        self.open_transaction().is_some()
    }

    /// The connection holding what the session cannot get back on another one (its
    /// transaction, or on the primary its locks, temporary tables, user variables), if any.
    pub fn stateful_target(&self) -> Option<Target> {
        self.txn
            .or_else(|| self.lives_on(Target::Primary).then_some(Target::Primary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_keeps_only_the_schema_and_writes_and_moves_the_sets_generation_on() {
        let mut s = ClientState {
            schema: Some("wf_a".into()),
            txn: Some(Target::Primary),
            autocommit_off: true,
            sticky: Some(1),
            last_insert_id: 7,
            wrote: true,
            ..ClientState::default()
        };
        s.vars.record(b"\x03SET @a = 1");
        let before = s.vars.applied(1).owner;
        s.reset(Reset::Everything);
        assert!(s.wrote, "its writes are still the server's to read back");
        assert_eq!(s.schema.as_deref(), Some("wf_a"));
        assert_eq!((s.txn, s.autocommit_off, s.sticky), (None, false, None));
        assert_eq!(s.last_insert_id, 0);
        assert!(s.vars.sets().is_empty());
        // A connection holding the old SETs must not pass for a prefix of the new state.
        assert_ne!(s.vars.applied(1).owner, before);
    }

    #[test]
    fn a_lost_replica_keeps_the_primary_state() {
        let mut s = ClientState {
            autocommit_off: true,
            unflagged_txn: true,
            txn: Some(Target::Replica(0)),
            ..ClientState::default()
        };
        s.reset(Reset::Lost(Target::Replica(0)));
        assert_eq!(s.txn, None);
        assert!(s.autocommit_off);
        assert_eq!(s.open_transaction(), Some(Target::Primary));
        s.reset(Reset::Lost(Target::Primary));
        assert!(!s.autocommit_off);
        assert!(!s.in_transaction());
    }

    #[test]
    fn a_new_tenant_forgets_the_schema_and_reads() {
        let mut s = ClientState {
            schema: Some("wf_a".into()),
            sticky: Some(0),
            wrote: true,
            ..ClientState::default()
        };
        s.reset(Reset::Tenant);
        assert_eq!((s.schema, s.sticky, s.wrote), (None, None, false));
    }
}
