//! Reasons a session must stay on its tenant's primary (or, for open cursors, on the
//! connection holding them), each named for admin and logs, and lifted when the reason ends.

use std::collections::{BTreeMap, BTreeSet};

use crate::router::route::Target;
use crate::router::{Effects, LockCall, LockCalls, LockEffect, UNCOUNTED_LOCKS};

/// The most temporary tables a session's pin names.
const MAX_TEMP_TABLE_NAMES: usize = 64;

/// The most lock names a session's pin follows; past them a lock is counted unnamed.
const MAX_LOCK_NAMES: usize = 64;

/// The named locks a session may hold on its primary connection, by name: a RELEASE_LOCK
/// counts out only the lock it names (MariaDB's locks nest: each GET_LOCK of a name needs
/// its RELEASE_LOCK), so a second release of one lock does not end the pin while another
/// is held. Each GET_LOCK counts, whether or not the server granted it: the answer is the
/// client's to read.
#[derive(Debug, Default, Clone)]
struct NamedLocks {
    named: BTreeMap<Box<str>, u32>,
    /// Locks named otherwise than by a literal (a parameter, an expression): a release so
    /// named counts one out.
    unnamed: u32,
    /// Taken once per row, or past what is followed: only RELEASE_ALL_LOCKS or a reset
    /// ends the pin.
    uncounted: bool,
    /// The pin ended by a statement whose releases may not all have run (in a branch not
    /// taken, over no rows), or with locks taken by one whose count is not sure (once per
    /// row of a subquery, a bulk execute): a lock may be left, so the connection is reset
    /// before it serves another session.
    lifted_unsure: bool,
    /// A statement not plain took locks since the pin began (see `LockCalls::plain`).
    taken_unsure: bool,
}

impl NamedLocks {
    #[inline]
    fn held(&self) -> bool {
        self.uncounted || self.unnamed > 0 || !self.named.is_empty()
    }

    fn count(&self) -> u32 {
        self.named
            .values()
            .fold(self.unnamed, |n, c| n.saturating_add(*c))
    }

    /// `calls`: None when too many to follow.
    fn apply(&mut self, effect: LockEffect, calls: Option<&LockCalls>) {
        let held = self.held();
        let list = calls.map_or(&[][..], |c| &c.calls[..]);
        let plain = calls.is_some_and(|c| c.plain);
        let gets = list
            .iter()
            .filter(|c| matches!(c, LockCall::Get(_)))
            .count() as u32;
        for call in list {
            match call {
                LockCall::ReleaseAll => *self = NamedLocks::default(),
                LockCall::Get(Some(name))
                    if self.named.len() < MAX_LOCK_NAMES || self.named.contains_key(name) =>
                {
                    // Saturated, the count stays at least the server's: pinned till a reset.
                    let n = self.named.entry(name.clone()).or_default();
                    *n = n.saturating_add(1);
                }
                LockCall::Get(_) => self.unnamed = self.unnamed.saturating_add(1),
                LockCall::Release(Some(name)) => {
                    if let Some(n) = self.named.get_mut(name) {
                        *n -= 1;
                        if *n == 0 {
                            self.named.remove(name);
                        }
                    }
                }
                LockCall::Release(None) => self.unnamed = self.unnamed.saturating_sub(1),
            }
        }
        // A lock call the text scan did not find (spelt in a way it does not read) counts
        // as an unnamed lock: never fewer locks than the classification saw taken.
        if let LockEffect::Acquire(n) = effect {
            if n != UNCOUNTED_LOCKS && n > gets {
                self.unnamed = self.unnamed.saturating_add(n - gets);
            }
        }
        if effect == LockEffect::Acquire(UNCOUNTED_LOCKS) || calls.is_none() {
            self.uncounted = true;
        }
        self.taken_unsure |= gets > 0 && !plain;
        if held && !self.held() {
            self.lifted_unsure |= !plain || self.taken_unsure;
            self.taken_unsure = false;
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Pins {
    named_locks: NamedLocks,
    temp_tables: BTreeSet<String>,
    /// Which temporary tables remain is not known (more were made than are named in
    /// `temp_tables`, or one was renamed): the pin lasts until the connection is reset.
    temp_tables_untold: bool,
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
    /// Open server-side cursors: client statement id -> the connection holding its cursor
    /// and the server statement it belongs to (the one the session's state of the time
    /// named: a SET since names another in the connection's cache).
    cursors: BTreeMap<u32, (Target, u32)>,
}

/// What keeps a session on its connection, in the order `Pins::reason` names the first.
/// SHOW SESSIONS, `/metrics` and logs spell pins by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NamedLock,
    TemporaryTable,
    LockTables,
    BackupLock,
    StoredProcedure,
    Unreplayable,
    SequenceValue,
    SetTransaction,
    SessionVariables,
    Profiling,
    Hint,
    /// User variables assigned anything but a literal (`SELECT ... INTO @x`, `@x := c`),
    /// whose values cannot be replayed: they live on the primary's connection, where
    /// statements using them go by their class anyway, so `Pins::reason` does not name them.
    UserVariables,
    /// Keeps the session's reads on the connection holding the cursor, a replica's too.
    Cursor,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::NamedLock,
        Reason::TemporaryTable,
        Reason::LockTables,
        Reason::BackupLock,
        Reason::StoredProcedure,
        Reason::Unreplayable,
        Reason::SequenceValue,
        Reason::SetTransaction,
        Reason::SessionVariables,
        Reason::Profiling,
        Reason::Hint,
        Reason::UserVariables,
        Reason::Cursor,
    ];

    /// The reasons that pin the session to its primary connection (`Pins::reason`).
    const PINNING: usize = 11;

    pub fn name(self) -> &'static str {
        match self {
            Reason::NamedLock => "named lock",
            Reason::TemporaryTable => "temporary table",
            Reason::LockTables => "lock tables",
            Reason::BackupLock => "backup lock",
            Reason::StoredProcedure => "stored procedure",
            Reason::Unreplayable => "unreplayable session change",
            Reason::SequenceValue => "sequence value",
            Reason::SetTransaction => "set transaction",
            Reason::SessionVariables => "session variables",
            Reason::Profiling => "profiling",
            Reason::Hint => "hint",
            Reason::UserVariables => "user variables",
            Reason::Cursor => "cursor",
        }
    }

    /// The reason a SHOW SESSIONS pin ("temporary table t1", "named lock x2") names.
    pub fn of_described(pin: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| pin.starts_with(r.name()))
    }
}

impl Pins {
    /// What may hold SQL the session runs later without Switchyard reading it: a statement
    /// prepared by name (and whatever else cannot be replayed), a procedure's state.
    pub fn may_hold_sql(&self) -> bool {
        self.holds(Reason::Unreplayable) || self.holds(Reason::StoredProcedure)
    }

    fn holds(&self, r: Reason) -> bool {
        match r {
            Reason::NamedLock => self.named_locks.held(),
            Reason::TemporaryTable => !self.temp_tables.is_empty() || self.temp_tables_untold,
            Reason::LockTables => self.lock_tables,
            Reason::BackupLock => self.backup_stage || self.backup_lock,
            Reason::StoredProcedure => self.procedure,
            Reason::Unreplayable => self.unreplayable,
            Reason::SequenceValue => self.sequence,
            Reason::SetTransaction => self.next_transaction,
            Reason::SessionVariables => self.too_many_sets,
            Reason::Profiling => self.profiling,
            Reason::Hint => self.hint,
            Reason::UserVariables => self.user_variables,
            Reason::Cursor => !self.cursors.is_empty(),
        }
    }

    /// The first reason the session is pinned, if any.
    pub fn reason(&self) -> Option<&'static str> {
        // Asked at every statement (to publish the session's state): the common answer
        // without the walk.
        if !self.pinned() {
            return None;
        }
        Reason::ALL[..Reason::PINNING]
            .iter()
            .find(|r| self.holds(**r))
            .map(|r| r.name())
    }

    /// Every active reason, for SHOW SESSIONS.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in Reason::ALL.into_iter().filter(|r| self.holds(*r)) {
            match r {
                Reason::NamedLock if self.named_locks.uncounted => {
                    out.push(format!("{} (uncounted)", r.name()))
                }
                Reason::NamedLock => {
                    out.push(format!("{} x{}", r.name(), self.named_locks.count()))
                }
                Reason::TemporaryTable => {
                    out.extend(self.temp_tables.iter().map(|t| format!("{} {t}", r.name())));
                    if self.temp_tables_untold {
                        out.push(format!("{} (not all named)", r.name()));
                    }
                }
                Reason::Cursor => out.push(format!("{} x{}", r.name(), self.cursors.len())),
                _ => out.push(r.name().to_owned()),
            }
        }
        out
    }

    /// A COM_STMT_EXECUTE of server statement `backend_id` opened a cursor on `t`
    /// (SERVER_STATUS_CURSOR_EXISTS).
    pub fn open_cursor(&mut self, stmt: u32, t: Target, backend_id: u32) {
        self.cursors.insert(stmt, (t, backend_id));
    }

    /// The statement's cursor ended (fetched to the end, reset, closed, executed again);
    /// returns where it was and on which server statement.
    pub fn close_cursor(&mut self, stmt: u32) -> Option<(Target, u32)> {
        self.cursors.remove(&stmt)
    }

    /// Whether statement `stmt` has an open cursor: an execute asks, and most sessions
    /// have none (no lookup then).
    pub fn has_cursor(&self, stmt: u32) -> bool {
        !self.cursors.is_empty() && self.cursors.contains_key(&stmt)
    }

    pub fn cursor_of(&self, stmt: u32) -> Option<(Target, u32)> {
        self.cursors.get(&stmt).copied()
    }

    /// Where the session's open cursors live: its reads stay there until they end.
    pub fn cursor_target(&self) -> Option<Target> {
        self.cursors.values().next().map(|(t, _)| *t)
    }

    /// The server statements with a cursor open on `t`: not to be closed to make room.
    pub fn cursor_stmts_on(&self, t: Target) -> Vec<u32> {
        (self.cursors.values())
            .filter(|(at, _)| *at == t)
            .map(|(_, id)| *id)
            .collect()
    }

    pub fn cursor_count(&self) -> usize {
        self.cursors.len()
    }

    pub fn has_cursor_on(&self, t: Target) -> bool {
        self.cursors.values().any(|(c, _)| *c == t)
    }

    /// The connection to `t` is gone, and its cursors with it.
    pub fn drop_cursors_on(&mut self, t: Target) {
        self.cursors.retain(|_, (c, _)| *c != t);
    }

    /// The primary's connection is gone, and what lived on it: the pins are no more, but
    /// cursors open on a replica's connection still are (forgotten, that connection would
    /// go back to the pool with its cursor open).
    pub fn primary_lost(&mut self) {
        let mut cursors = std::mem::take(&mut self.cursors);
        cursors.retain(|_, (c, _)| *c != Target::Primary);
        *self = Pins {
            cursors,
            ..Pins::default()
        };
    }

    /// The temporary tables a statement made and dropped, each in its schema.
    fn apply_temp_tables(&mut self, e: &Effects, schema: Option<&str>) {
        for t in &e.temp_tables_created {
            let t = qualified(t, schema);
            // Names a DROP spells otherwise stay: the set is bounded, and past it the pin
            // holds without names.
            if self.temp_tables.len() < MAX_TEMP_TABLE_NAMES {
                self.temp_tables.insert(t);
            } else if !self.temp_tables.contains(&t) {
                self.temp_tables_untold = true;
            }
        }
        for t in &e.tables_dropped {
            self.temp_tables.remove(&qualified(t, schema));
        }
    }

    /// Whether the named-lock pin just ended by a statement whose releases may not all
    /// have run (see `NamedLocks`): the connection is then reset before another session
    /// takes it.
    pub fn take_locks_lifted(&mut self) -> bool {
        std::mem::take(&mut self.named_locks.lifted_unsure)
    }

    /// Applies the named-lock calls of a statement that succeeded (`effect`, its class's;
    /// `calls`, read from its own text by `router::lock_calls`).
    pub fn apply_locks(&mut self, effect: LockEffect, calls: Option<&LockCalls>) {
        if effect != LockEffect::None {
            self.named_locks.apply(effect, calls);
        }
    }

    /// Applies what a statement that succeeded did to the session (its named locks:
    /// [`apply_locks`](Self::apply_locks)).
    /// `schema`: the session's schema after the statement, which a name without one is in.
    pub fn apply(&mut self, e: &Effects, schema: Option<&str>) {
        // A table renamed, or made or dropped beside a USE in one multi-statement (in which
        // schema is not known): which names remain is not known, and none is counted out.
        let names_tables = !e.temp_tables_created.is_empty() || !e.tables_dropped.is_empty();
        let uncertain = e.renames_tables || (names_tables && !e.use_dbs.is_empty());
        if uncertain {
            if !self.temp_tables.is_empty() || !e.temp_tables_created.is_empty() {
                self.temp_tables_untold = true;
            }
        } else {
            self.apply_temp_tables(e, schema);
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

    /// Whether the session moved a sequence: the values LASTVAL answers on its connection
    /// are its own.
    pub fn moved_sequence(&self) -> bool {
        self.sequence
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
        self.pinned() || self.user_variables || !self.cursors.is_empty()
    }

    /// Whether [`reason`](Self::reason) names one, asked field by field: the statement path
    /// asks several times per statement, and the walk through the reasons cost tens of
    /// instructions each time.
    #[inline]
    fn pinned(&self) -> bool {
        self.named_locks.held()
            || !self.temp_tables.is_empty()
            || self.temp_tables_untold
            || self.lock_tables
            || self.backup_stage
            || self.backup_lock
            || self.procedure
            || self.unreplayable
            || self.sequence
            || self.next_transaction
            || self.too_many_sets
            || self.profiling
            || self.hint
    }
}

/// A table's name with its schema: `db.t` as written, `t` in `schema` (the session's).
fn qualified(name: &str, schema: Option<&str>) -> String {
    match schema {
        Some(db) if !name.contains('.') => format!("{db}.{name}"),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `statements` (each as if it succeeded) through the classifier into `p`; the
    /// pin's description after each.
    fn run(p: &mut Pins, statements: &[&str]) -> Vec<Option<String>> {
        let router = crate::router::Router::new();
        statements
            .iter()
            .map(|sql| {
                let effects = router.classify(sql.as_bytes()).effects;
                p.apply(&effects, None);
                let calls = crate::router::lock_calls(sql.as_bytes());
                p.apply_locks(effects.named_lock, calls.as_ref());
                p.describe()
                    .into_iter()
                    .find(|d| d.starts_with("named lock"))
            })
            .collect()
    }

    #[test]
    fn locks_count_and_release_by_name() {
        let mut p = Pins::default();
        let seen = run(
            &mut p,
            &[
                "SELECT GET_LOCK('a', 5)",
                "SELECT GET_LOCK('b', 5)",
                "SELECT RELEASE_LOCK('a')",
                // Released twice: `b` is still held, and the pin with it.
                "SELECT RELEASE_LOCK('a')",
                "SELECT RELEASE_LOCK('b')",
            ],
        );
        let x = |n: u32| Some(format!("named lock x{n}"));
        assert_eq!(seen, [x(1), x(2), x(1), x(1), None]);
        assert!(!p.take_locks_lifted(), "a plain release ran");
        // A release that may not have run (over no rows, in a branch): the connection
        // is reset before another session takes it; RELEASE_ALL_LOCKS likewise.
        for release in [
            "SELECT RELEASE_LOCK('a') FROM jobs WHERE 0",
            "DO IF(0, RELEASE_ALL_LOCKS(), 0)",
        ] {
            run(&mut p, &["SELECT GET_LOCK('a', 5)", release]);
            assert!(p.take_locks_lifted(), "{release}");
            assert!(!p.take_locks_lifted());
        }
        // A release another function may skip, one a server may not read (a versioned
        // comment), or the end of locks whose count was not sure (taken in a subquery's
        // rows): reset too.
        for (take, release) in [
            (
                "SELECT GET_LOCK('a', 5)",
                "SELECT `COALESCE`(1, RELEASE_LOCK('a'))",
            ),
            (
                "SELECT GET_LOCK('a', 5)",
                "SELECT 1 /*M!999999 , RELEASE_LOCK('a') */",
            ),
            (
                "SELECT (SELECT MAX(GET_LOCK('a', 0)) FROM jobs)",
                "SELECT RELEASE_LOCK('a')",
            ),
        ] {
            let seen = run(&mut p, &[take, release]);
            assert!(
                seen[1].is_some() || p.take_locks_lifted(),
                "{release}: {seen:?}"
            );
            run(&mut p, &["DO RELEASE_ALL_LOCKS()"]);
            p.take_locks_lifted();
        }
        // Spelt in backticks, or aliased: followed all the same.
        let seen = run(
            &mut p,
            &[
                "SELECT `GET_LOCK`('q', 5)",
                "SELECT RELEASE_LOCK('q') AS released",
            ],
        );
        assert_eq!(seen, [x(1), None]);
        assert!(!p.take_locks_lifted());

        // Nested: each GET_LOCK of a name needs its release. In one statement, in order.
        let seen = run(
            &mut p,
            &[
                "DO GET_LOCK('a', 1), GET_LOCK('a', 1)",
                "SELECT RELEASE_LOCK('a'), GET_LOCK('c', 0), RELEASE_LOCK('a')",
                "SELECT RELEASE_ALL_LOCKS()",
            ],
        );
        assert_eq!(seen, [x(2), x(1), None]);
        assert!(!p.take_locks_lifted(), "a plain RELEASE_ALL_LOCKS ran");

        // Named by a parameter or an expression: counted out by a release so named.
        let seen = run(
            &mut p,
            &[
                "SELECT GET_LOCK(?, 10)",
                "SELECT RELEASE_LOCK('x')",
                "SELECT RELEASE_LOCK(CONCAT('job', 1))",
            ],
        );
        assert_eq!(seen, [x(1), x(1), None]);
        // Once per row: only RELEASE_ALL_LOCKS ends it.
        let seen = run(
            &mut p,
            &[
                "SELECT GET_LOCK(CONCAT('job', id), 0) FROM jobs",
                "SELECT RELEASE_LOCK(?)",
                "DO RELEASE_ALL_LOCKS()",
            ],
        );
        let uncounted = Some("named lock (uncounted)".to_owned());
        assert_eq!(seen, [uncounted.clone(), uncounted, None]);
    }

    /// Losing the primary's connection ends what lived there, not a replica's cursor.
    #[test]
    fn a_lost_primary_leaves_replica_cursors() {
        let mut p = Pins::default();
        p.set_unreplayable();
        p.open_cursor(1, Target::Replica(1), 11);
        p.open_cursor(2, Target::Primary, 12);
        p.primary_lost();
        assert_eq!(p.reason(), None);
        assert_eq!(p.cursor_of(1), Some((Target::Replica(1), 11)));
        assert_eq!(p.cursor_of(2), None);
    }

    #[test]
    fn cursors_pin_to_their_connection_until_closed() {
        let mut p = Pins::default();
        p.open_cursor(1, Target::Replica(0), 11);
        p.open_cursor(2, Target::Replica(0), 12);
        assert_eq!(p.cursor_target(), Some(Target::Replica(0)));
        assert!(p.describe().contains(&"cursor x2".to_owned()));
        assert!(p.holds_server_state());
        assert_eq!(p.close_cursor(1), Some((Target::Replica(0), 11)));
        assert_eq!(p.cursor_of(2), Some((Target::Replica(0), 12)));
        p.drop_cursors_on(Target::Replica(0));
        assert_eq!(p.cursor_target(), None);
        assert!(!p.holds_server_state());
    }

    #[test]
    fn temp_tables_pin_until_dropped() {
        let mut p = Pins::default();
        p.apply(
            &Effects {
                temp_tables_created: vec!["t1".into()],
                ..Effects::default()
            },
            None,
        );
        assert_eq!(p.reason(), Some("temporary table"));
        p.apply(
            &Effects {
                tables_dropped: vec!["other".into()],
                ..Effects::default()
            },
            None,
        );
        assert_eq!(p.reason(), Some("temporary table"));
        p.apply(
            &Effects {
                tables_dropped: vec!["t1".into()],
                ..Effects::default()
            },
            None,
        );
        assert_eq!(p.reason(), None);
    }

    /// A temporary table is the session's schema's: dropping `t` in another schema (where
    /// IF EXISTS finds none) ended the pin while `db1.t` lived on, and the connection went
    /// back to the pool with it.
    #[test]
    fn temp_tables_are_named_in_their_schema() {
        let router = crate::router::Router::new();
        let mut p = Pins::default();
        let mut run = |sql: &str, schema: &str| {
            p.apply(&router.classify(sql.as_bytes()).effects, Some(schema));
            p.describe()
        };
        let t = |n: &str| vec![format!("temporary table {n}")];
        assert_eq!(run("CREATE TEMPORARY TABLE t (a INT)", "db1"), t("db1.t"));
        assert_eq!(run("DROP TEMPORARY TABLE IF EXISTS t", "db2"), t("db1.t"));
        assert_eq!(run("DROP TABLE db1.t", "db2"), Vec::<String>::new());
        // Renamed: the pin holds, by no name, until a reset.
        run("CREATE TEMPORARY TABLE t (a INT)", "db1");
        run("ALTER TABLE t RENAME TO t2", "db1");
        run("CREATE TEMPORARY TABLE t (a INT)", "db1");
        let left = run("DROP TABLE t", "db1");
        assert_eq!(left, ["temporary table (not all named)"]);
        // Dropped beside a USE in one multi-statement: which schema is not known.
        let mut p = Pins::default();
        let router = crate::router::Router::new();
        for (sql, schema) in [
            ("CREATE TEMPORARY TABLE t (a INT)", "db1"),
            ("USE db2; DROP TEMPORARY TABLE IF EXISTS t", "db2"),
        ] {
            p.apply(&router.classify(sql.as_bytes()).effects, Some(schema));
        }
        // (A USE inside a multi-statement makes the session's state unreplayable too.)
        assert_eq!(
            p.describe()[..2],
            ["temporary table db1.t", "temporary table (not all named)"]
        );
    }

    /// A session that makes temporary tables and drops them by another spelling (`t` made,
    /// `db.t` dropped) kept every name for its life: the names are bounded, the pin is not
    /// lifted past them.
    #[test]
    fn temp_table_names_are_bounded() {
        let mut p = Pins::default();
        for i in 0..10_000 {
            p.apply(
                &Effects {
                    temp_tables_created: vec![format!("t{i}")],
                    ..Effects::default()
                },
                None,
            );
            p.apply(
                &Effects {
                    tables_dropped: vec![format!("db.t{i}")],
                    ..Effects::default()
                },
                None,
            );
        }
        assert_eq!(p.temp_tables.len(), MAX_TEMP_TABLE_NAMES);
        for i in 0..10_000 {
            p.apply(
                &Effects {
                    tables_dropped: vec![format!("t{i}")],
                    ..Effects::default()
                },
                None,
            );
        }
        assert_eq!(p.reason(), Some("temporary table"), "some may remain");
        assert!(p
            .describe()
            .contains(&"temporary table (not all named)".to_owned()));
    }

    #[test]
    fn every_reason_is_described_and_named_back() {
        let mut p = Pins::default();
        let calls = LockCalls {
            calls: vec![LockCall::Get(Some("'a'".into())), LockCall::Get(None)],
            plain: true,
        };
        p.apply_locks(LockEffect::Acquire(2), Some(&calls));
        p.apply(
            &Effects {
                temp_tables_created: vec!["t1".into()],
                lock_tables: true,
                backup_lock: Some(true),
                unreplayable: true,
                next_transaction: true,
                sequence_value: true,
                profiling: true,
                user_var_assign: true,
                ..Effects::default()
            },
            None,
        );
        p.set_procedure();
        p.set_hint(true);
        p.set_too_many_sets();
        p.open_cursor(1, Target::Primary, 11);
        let described = p.describe();
        let named: Vec<Reason> = described
            .iter()
            .filter_map(|d| Reason::of_described(d))
            .collect();
        assert_eq!(named, Reason::ALL, "{described:?}");
        // Each pinning reason alone pins, as `pinned` tells it.
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            let mut one = Pins::default();
            match r {
                Reason::NamedLock => one.named_locks.unnamed = 1,
                Reason::TemporaryTable => one.temp_tables_untold = true,
                Reason::LockTables => one.lock_tables = true,
                Reason::BackupLock => one.backup_lock = true,
                Reason::StoredProcedure => one.procedure = true,
                Reason::Unreplayable => one.unreplayable = true,
                Reason::SequenceValue => one.sequence = true,
                Reason::SetTransaction => one.next_transaction = true,
                Reason::SessionVariables => one.too_many_sets = true,
                Reason::Profiling => one.profiling = true,
                Reason::Hint => one.hint = true,
                Reason::UserVariables => one.user_variables = true,
                Reason::Cursor => one.open_cursor(1, Target::Primary, 1),
            }
            assert_eq!(one.pinned(), i < Reason::PINNING, "{r:?}");
            assert_eq!(one.pinned(), one.reason().is_some(), "{r:?}");
        }
        assert_eq!(described[0], "named lock x2");
        assert_eq!(p.reason(), Some("named lock"));
    }
}
