//! Reasons a session must stay on its tenant's primary (or, for open cursors, on the
//! connection holding them), each named for admin and logs, and lifted when the reason ends.

use std::collections::{BTreeMap, BTreeSet};

use crate::router::route::Target;
use crate::router::{Effects, LockEffect};

#[derive(Debug, Default, Clone)]
pub struct Pins {
    named_locks: u32,
    temp_tables: BTreeSet<String>,
    lock_tables: bool,
    /// MariaDB's backup locks: a `BACKUP STAGE` before its END, a `BACKUP LOCK`.
    backup_stage: bool,
    backup_lock: bool,
    /// A stored procedure ran: it may have set variables, made temporary tables or taken
    /// locks that no statement of the session named.
    procedure: bool,
    unreplayable: bool,
    /// `SET TRANSACTION` without a scope: the primary connection keeps characteristics for
    /// its next transaction, which the session's next transaction must find and no other
    /// session's may.
    next_transaction: bool,
    too_many_sets: bool,
    /// NEXTVAL/SETVAL ran: LASTVAL answers from the connection, until a reset.
    sequence: bool,
    /// The application asked for it (`/* pin=on */`).
    hint: bool,
    /// `SET profiling`: SHOW PROFILES answers for the connection's statements, so the
    /// session's stay on one.
    profiling: bool,
    /// Informational: user variables live on the primary (statements using them go there).
    pub user_variables: bool,
    /// Open server-side cursors: client statement id -> the connection holding its cursor.
    cursors: BTreeMap<u32, Target>,
}

impl Pins {
    /// The first reason the session is pinned, if any.
    pub fn reason(&self) -> Option<&'static str> {
        if self.named_locks > 0 {
            Some("named lock")
        } else if !self.temp_tables.is_empty() {
            Some("temporary table")
        } else if self.lock_tables {
            Some("lock tables")
        } else if self.backup_stage || self.backup_lock {
            Some("backup lock")
        } else if self.procedure {
            Some("stored procedure")
        } else if self.unreplayable {
            Some("unreplayable session change")
        } else if self.sequence {
            Some("sequence value")
        } else if self.next_transaction {
            Some("set transaction")
        } else if self.too_many_sets {
            Some("session variables")
        } else if self.profiling {
            Some("profiling")
        } else if self.hint {
            Some("hint")
        } else {
            None
        }
    }

    /// Every active reason, for SHOW SESSIONS.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.named_locks > 0 {
            out.push(format!("named lock x{}", self.named_locks));
        }
        for t in &self.temp_tables {
            out.push(format!("temporary table {t}"));
        }
        if self.lock_tables {
            out.push("lock tables".into());
        }
        if self.backup_stage || self.backup_lock {
            out.push("backup lock".into());
        }
        if self.procedure {
            out.push("stored procedure".into());
        }
        if self.unreplayable {
            out.push("unreplayable session change".into());
        }
        if self.sequence {
            out.push("sequence value".into());
        }
        if self.next_transaction {
            out.push("set transaction".into());
        }
        if self.too_many_sets {
            out.push("session variables".into());
        }
        if self.profiling {
            out.push("profiling".into());
        }
        if self.hint {
            out.push("hint".into());
        }
        if self.user_variables {
            out.push("user variables".into());
        }
        if !self.cursors.is_empty() {
            out.push(format!("cursor x{}", self.cursors.len()));
        }
        out
    }

    /// A COM_STMT_EXECUTE opened a cursor on `t` (SERVER_STATUS_CURSOR_EXISTS).
    pub fn open_cursor(&mut self, stmt: u32, t: Target) {
        self.cursors.insert(stmt, t);
    }

    /// The statement's cursor ended (fetched to the end, reset, closed, executed again);
    /// returns where it was.
    pub fn close_cursor(&mut self, stmt: u32) -> Option<Target> {
        self.cursors.remove(&stmt)
    }

    /// Whether statement `stmt` has an open cursor: an execute asks, and most sessions
    /// have none (no lookup then).
    pub fn has_cursor(&self, stmt: u32) -> bool {
        !self.cursors.is_empty() && self.cursors.contains_key(&stmt)
    }

    pub fn cursor_of(&self, stmt: u32) -> Option<Target> {
        self.cursors.get(&stmt).copied()
    }

    /// Where the session's open cursors live: its reads stay there until they end.
    pub fn cursor_target(&self) -> Option<Target> {
        self.cursors.values().next().copied()
    }

    pub fn cursor_count(&self) -> usize {
        self.cursors.len()
    }

    pub fn has_cursor_on(&self, t: Target) -> bool {
        self.cursors.values().any(|c| *c == t)
    }

    /// The connection to `t` is gone, and its cursors with it.
    pub fn drop_cursors_on(&mut self, t: Target) {
        self.cursors.retain(|_, c| *c != t);
    }

    /// Applies what a statement that succeeded did to the session.
    pub fn apply(&mut self, e: &Effects) {
        match e.named_lock {
            LockEffect::None => {}
            LockEffect::Acquire(n) => self.named_locks += n,
            LockEffect::Release(n) => self.named_locks = self.named_locks.saturating_sub(n),
            LockEffect::ReleaseAll => self.named_locks = 0,
        }
        for t in &e.temp_tables_created {
            self.temp_tables.insert(t.clone());
        }
        for t in &e.tables_dropped {
            self.temp_tables.remove(t);
        }
        if e.lock_tables {
            self.lock_tables = true;
        }
        if e.unlock_tables {
            self.lock_tables = false;
        }
        if let Some(on) = e.backup_stage {
            self.backup_stage = on;
        }
        if let Some(on) = e.backup_lock {
            self.backup_lock = on;
        }
        self.unreplayable |= e.unreplayable;
        self.next_transaction |= e.next_transaction;
        self.sequence |= e.sequence_value;
        self.profiling |= e.profiling;
        self.user_variables |= e.user_var_assign;
    }

    /// A transaction ended (COMMIT, ROLLBACK, an implicit commit): the server cleared what
    /// `SET TRANSACTION` kept for the next one. Not lifted by a statement that ran in
    /// autocommit mode: whether it used the characteristics up depends on the tables it
    /// touched (a read of an InnoDB table does, `SELECT 1` and `DO` do not).
    pub fn transaction_ended(&mut self) {
        self.next_transaction = false;
    }

    /// A session change Switchyard cannot replay elsewhere (a prepared SET, a SET inside a
    /// multi-statement): the session stays on the primary.
    pub fn set_unreplayable(&mut self) {
        self.unreplayable = true;
    }

    /// A CALL ran (or was tried: a failing procedure may have changed state before it
    /// failed). What it changed is unknown to Switchyard, so the session keeps its
    /// connection, and the connection is reset before another session gets it.
    pub fn set_procedure(&mut self) {
        self.procedure = true;
    }

    /// The session set `profiling`: every connection it runs a statement on keeps a record
    /// of it.
    pub fn profiling(&self) -> bool {
        self.profiling
    }

    /// `/* pin=on */` or `/* pin=off */`.
    pub fn set_hint(&mut self, on: bool) {
        self.hint = on;
    }

    pub fn set_too_many_sets(&mut self) {
        self.too_many_sets = true;
    }

    /// Pins that lock the session to a tenant's servers (it may not switch tenants).
    pub fn holds_server_state(&self) -> bool {
        self.reason().is_some() || self.user_variables || !self.cursors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_count_and_release() {
        let mut p = Pins::default();
        let acquire = Effects {
            named_lock: LockEffect::Acquire(1),
            ..Effects::default()
        };
        p.apply(&acquire);
        p.apply(&acquire);
        assert_eq!(p.reason(), Some("named lock"));
        p.apply(&Effects {
            named_lock: LockEffect::Release(1),
            ..Effects::default()
        });
        assert_eq!(p.reason(), Some("named lock"));
        p.apply(&Effects {
            named_lock: LockEffect::Release(1),
            ..Effects::default()
        });
        assert_eq!(p.reason(), None);
    }

    #[test]
    fn cursors_pin_to_their_connection_until_closed() {
        let mut p = Pins::default();
        p.open_cursor(1, Target::Replica(0));
        p.open_cursor(2, Target::Replica(0));
        assert_eq!(p.cursor_target(), Some(Target::Replica(0)));
        assert!(p.describe().contains(&"cursor x2".to_owned()));
        assert!(p.holds_server_state());
        assert_eq!(p.close_cursor(1), Some(Target::Replica(0)));
        assert_eq!(p.cursor_of(2), Some(Target::Replica(0)));
        p.drop_cursors_on(Target::Replica(0));
        assert_eq!(p.cursor_target(), None);
        assert!(!p.holds_server_state());
    }

    #[test]
    fn temp_tables_pin_until_dropped() {
        let mut p = Pins::default();
        p.apply(&Effects {
            temp_tables_created: vec!["t1".into()],
            ..Effects::default()
        });
        assert_eq!(p.reason(), Some("temporary table"));
        p.apply(&Effects {
            tables_dropped: vec!["other".into()],
            ..Effects::default()
        });
        assert_eq!(p.reason(), Some("temporary table"));
        p.apply(&Effects {
            tables_dropped: vec!["t1".into()],
            ..Effects::default()
        });
        assert_eq!(p.reason(), None);
    }
}
