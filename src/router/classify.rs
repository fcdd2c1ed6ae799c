//! The classification pipeline: leading hints, one statement at a time, multi-statement merge.

use std::cell::Cell;
use std::ops::Range;
use std::str;
use std::sync::atomic::{AtomicU64, Ordering};

use super::digest::{self, Cache, Shape};
use super::fingerprint::MAX_LIST_SCAN;
use super::hints;
use super::keyword;
use super::lexer::{Cursor, Resume};
use super::select::{self, merge_lock};
use super::{Class, Classification, Effects, PrimaryReason};

/// SELECT-family statements longer than this (after collapsing literal lists) are not
/// given to sqlparser: its cost grows with the text (131 ms for 770 KB, in one thread of
/// the event loop) and a long operator chain makes an AST deep enough to overflow the
/// stack when visited or dropped. They go to the primary (`too long`).
pub const MAX_PARSED_SQL: usize = 16 * 1024;

/// Parentheses nested deeper than this go to the primary (`too deep`) unparsed; sqlparser
/// would refuse them at 50 anyway, after doing the work.
pub const MAX_NESTING: usize = 32;

/// Nested statements (EXPLAIN ANALYZE, SET STATEMENT ... FOR) deeper than this are not
/// followed: a crafted input must not recurse without bound.
const MAX_DEPTH: u8 = 4;

/// The longest statement the light pass classifies: an `IN` list of 10,000 ids (49 KB)
/// lexes in about 50 us, 64 KiB of one-letter words (the worst) in 0.7 ms; a 1 MB
/// statement of them would take 11 ms of the event loop that other sessions share. Not
/// less: handing the flood's 4-50 KB lists to a blocking thread cost other sessions more
/// latency than lexing them here (see docs/design.md).
pub const LIGHT_MAX_SQL: usize = 64 * 1024;

/// How far the classifier may go. The event loop runs the light pass and hands what it
/// gives up on to a blocking thread for the full pass (`frontend::offload`), so a client
/// sending long or ever-new statements delays its own answers, not other sessions'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Up to [`LIGHT_MAX_SQL`] bytes and without sqlparser (a digest cache miss): bounded
    /// lexing only.
    Light,
    Full,
}

/// One statement's answer and where the next statement (if any) starts.
pub(crate) struct Piece {
    pub class: Class,
    pub effects: Effects,
    pub rest: Rest,
}

pub(crate) enum Rest {
    /// Scanned to the end; nothing follows.
    End,
    /// Another statement starts here.
    Next(Resume),
    /// Decided from leading tokens; the rest was not looked at.
    Unscanned,
    /// May contain `;` inside its own body (routines, compound statements): never split.
    Unsplittable,
}

impl Piece {
    pub fn new(class: Class) -> Self {
        Self::with(class, Effects::default())
    }

    pub fn with(class: Class, effects: Effects) -> Self {
        Piece {
            class,
            effects,
            rest: Rest::Unscanned,
        }
    }

    pub fn primary(r: PrimaryReason) -> Self {
        Self::new(Class::Primary(r))
    }

    pub fn unsplittable(mut self) -> Self {
        self.rest = Rest::Unsplittable;
        self
    }
}

/// Statements the classifier sent to the primary without parsing, by why; bumped only on
/// that rare path.
#[derive(Debug, Default)]
pub struct Unparsed {
    pub too_long: AtomicU64,
    pub too_deep: AtomicU64,
}

impl Unparsed {
    fn bump(&self, r: PrimaryReason) {
        let c = match r {
            PrimaryReason::TooLong => &self.too_long,
            PrimaryReason::TooDeep => &self.too_deep,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds what a light pass counted once it is known to stand (a pass that gives up is
    /// counted by the full pass instead).
    fn add(&self, pass: &Unparsed) {
        for (to, from) in [
            (&self.too_long, &pass.too_long),
            (&self.too_deep, &pass.too_deep),
        ] {
            let n = from.load(Ordering::Relaxed);
            if n > 0 {
                to.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

pub(crate) struct Ctx<'a> {
    pub cache: &'a Cache,
    /// `None` for EXPLAIN ROUTE, which must not count as traffic.
    pub unparsed: Option<&'a Unparsed>,
    pub sql: &'a [u8],
    pub depth: u8,
    /// Set by a top-level SELECT that is the whole statement: its `fingerprint_hash`,
    /// computed by the digest pass, so the session need not lex it again.
    pub fingerprint: &'a Cell<Option<u64>>,
    pub pass: Pass,
    /// Set when a light pass met what only the full pass may do.
    pub gave_up: &'a Cell<bool>,
}

impl Ctx<'_> {
    /// Classifies the statement starting at `at`.
    pub fn piece(&self, at: Resume) -> Piece {
        if self.depth > MAX_DEPTH {
            return Piece::primary(PrimaryReason::Unknown).unsplittable();
        }
        keyword::dispatch(self, Cursor::new(self.sql, at))
    }

    /// A nested statement (the inner part of EXPLAIN ANALYZE and the like).
    pub fn inner(&self, at: Resume) -> Piece {
        let ctx = Ctx {
            depth: self.depth + 1,
            ..*self
        };
        ctx.piece(at)
    }

    /// The statement a dynamic SQL literal holds (already unescaped).
    pub fn literal(&self, text: &[u8]) -> Piece {
        let ctx = Ctx {
            sql: text,
            depth: self.depth + 1,
            ..*self
        };
        ctx.piece(Resume {
            pos: 0,
            in_exec: false,
        })
    }

    /// SELECT family: digest, cache, and on a miss the full decision.
    pub fn select(&self, mut cur: Cursor) -> Piece {
        let at = cur.resume_point();
        let start = cur.offset();
        let limits = digest::Limits {
            end: start.saturating_add(MAX_PARSED_SQL),
            depth: MAX_NESTING,
        };
        let shape = match digest::digest(&mut cur, &limits) {
            Ok(shape) => shape,
            Err(why) => return self.unparsed(at, why),
        };
        let end = cur.offset().max(start);
        if self.depth == 0 && self.sql.len() <= MAX_LIST_SCAN && cur.peek().is_none() {
            // Nothing but this statement (and comments) in the text: its fingerprint is the
            // whole text's. An executable comment still open is not (the digest marks it).
            if !cur.resume_point().in_exec {
                self.fingerprint.set(shape.fingerprint);
            }
        }
        let rest = rest_after(cur);
        let (class, effects) = self.decide_select(&shape, start..end);
        Piece {
            class,
            effects,
            rest,
        }
    }

    fn decide_select(&self, shape: &Shape, range: Range<usize>) -> (Class, Effects) {
        // Literal bytes are not in the digest, so validity must be checked before the cache.
        if str::from_utf8(&self.sql[range.clone()]).is_err() {
            return (Class::Primary(PrimaryReason::Unparsed), Effects::default());
        }
        if let Some(hit) = self.cache.get(shape.digest) {
            return hit;
        }
        if self.pass == Pass::Light {
            self.gave_up.set(true);
            return (Class::Primary(PrimaryReason::Unknown), Effects::default());
        }
        // The shape's canonical member (lists cut to their first element), so the cached
        // decision is the same whichever member arrived first.
        let text = shape.canonical(self.sql, range);
        let Ok(text) = str::from_utf8(&text) else {
            return (Class::Primary(PrimaryReason::Unparsed), Effects::default());
        };
        let (class, effects) = select::decide(text);
        self.cache.put(shape.digest, &class, &effects);
        (class, effects)
    }

    /// A statement not given to sqlparser (nor cached: a shorter member of its shape may
    /// parse). The token scan still finds its effects (a GET_LOCK must pin however long
    /// the statement) and anything that decides it alone; one pass, no allocation.
    fn unparsed(&self, at: Resume, why: PrimaryReason) -> Piece {
        if let Some(u) = self.unparsed {
            u.bump(why);
        }
        let mut cur = Cursor::new(self.sql, at);
        let scan = select::scan(&mut cur);
        Piece {
            class: scan.decided().unwrap_or(Class::Primary(why)),
            effects: scan.effects,
            rest: rest_after(cur),
        }
    }

    /// Where the statement after the one at `at` starts, if there is one worth splitting.
    fn next_after(&self, at: Resume, rest: Rest) -> Option<Resume> {
        let next = match rest {
            Rest::End | Rest::Unsplittable => None,
            Rest::Next(n) => Some(n),
            Rest::Unscanned => {
                // A tail without a `;` costs one memchr. One with a `;` is lexed to its
                // end, however long: `SET @a = 1; INSERT ...` past a size limit was taken
                // for a lone SET, recorded and replayed whole, the INSERT with it, on every
                // connection the session's state was restored on.
                let tail = self.sql.get(at.pos..).unwrap_or(b"");
                if !tail.contains(&b';') {
                    None
                } else {
                    Cursor::new(self.sql, at).next_statement()
                }
            }
        };
        // Progress guard: a split that does not move forward ends the loop.
        next.filter(|n| n.pos > at.pos)
    }
}

/// What follows a statement the cursor has read to its end.
fn rest_after(cur: Cursor) -> Rest {
    match cur.next_statement() {
        Some(n) => Rest::Next(n),
        None => Rest::End,
    }
}

/// Classifies a whole COM_QUERY / COM_STMT_PREPARE payload.
pub(crate) fn classify(cache: &Cache, unparsed: Option<&Unparsed>, sql: &[u8]) -> Classification {
    classify_fingerprinted(cache, unparsed, sql).0
}

/// [`classify_lone`]'s light pass: `None` when the statement needs the full one.
pub(crate) fn classify_light(
    cache: &Cache,
    unparsed: Option<&Unparsed>,
    sql: &[u8],
) -> Option<(Classification, Option<u64>)> {
    if sql.len() > LIGHT_MAX_SQL {
        return None;
    }
    let fingerprint = Cell::new(None);
    let gave_up = Cell::new(false);
    let counted = Unparsed::default();
    let light = (Pass::Light, &gave_up);
    let c = classify_with(cache, unparsed.map(|_| &counted), sql, &fingerprint, light);
    if gave_up.get() {
        return None;
    }
    if let Some(u) = unparsed {
        u.add(&counted);
    }
    Some((c, fingerprint.get()))
}

/// Classifies a payload and gives its `fingerprint_hash`: from the classifier's own pass
/// for a lone SELECT (the hot path), else from a pass of its own.
pub(crate) fn classify_fingerprinted(
    cache: &Cache,
    unparsed: Option<&Unparsed>,
    sql: &[u8],
) -> (Classification, u64) {
    let (c, lone) = classify_lone(cache, unparsed, sql);
    let h = lone.unwrap_or_else(|| super::fingerprint_hash(sql));
    (c, h)
}

/// Classifies a payload; for a lone SELECT decided by its digest (whose answer holds for
/// every statement of its digest), also its `fingerprint_hash` from the same pass.
pub(crate) fn classify_lone(
    cache: &Cache,
    unparsed: Option<&Unparsed>,
    sql: &[u8],
) -> (Classification, Option<u64>) {
    let fingerprint = Cell::new(None);
    let gave_up = Cell::new(false);
    let c = classify_with(cache, unparsed, sql, &fingerprint, (Pass::Full, &gave_up));
    (c, fingerprint.get())
}

/// Classifies `sql` in `pass`; a light pass that gives up sets the flag and stops early
/// (its answer is then meaningless).
fn classify_with(
    cache: &Cache,
    unparsed: Option<&Unparsed>,
    sql: &[u8],
    fingerprint: &Cell<Option<u64>>,
    (pass, gave_up): (Pass, &Cell<bool>),
) -> Classification {
    let (hints, start) = hints::leading(sql);
    let ctx = Ctx {
        cache,
        unparsed,
        sql,
        depth: 0,
        fingerprint,
        pass,
        gave_up,
    };
    let mut at = Resume {
        pos: start,
        in_exec: false,
    };
    let first = ctx.piece(at);
    let next = ctx.next_after(at, first.rest).filter(|_| !gave_up.get());
    let Some(mut next) = next else {
        return Classification {
            class: first.class,
            hints,
            effects: first.effects,
        };
    };
    // Several statements: the fingerprint is the whole text's, not the first one's.
    fingerprint.set(None);
    let mut multi = Multi::default();
    multi.add(first.class, first.effects);
    loop {
        at = next;
        let p = ctx.piece(at);
        multi.add(p.class, p.effects);
        match ctx.next_after(at, p.rest).filter(|_| !gave_up.get()) {
            Some(n) => next = n,
            None => break,
        }
    }
    Classification {
        class: multi.class(),
        hints,
        effects: multi.effects,
    }
}

/// Accumulates the pieces of a multi-statement.
#[derive(Default)]
struct Multi {
    not_read: bool,
    effects: Effects,
}

impl Multi {
    fn add(&mut self, class: Class, e: Effects) {
        let m = &mut self.effects;
        m.parts_change_session |= e.changes_session();
        m.unreplayable |= e.unreplayable
            || matches!(
                class,
                Class::SetSession | Class::Use(_) | Class::Primary(PrimaryReason::SessionSet)
            );
        if let Class::Use(db) = &class {
            m.use_dbs.push(db.clone());
        }
        m.calls_procedure |= e.calls_procedure;
        self.not_read |= class != Class::Read;
        m.named_lock = merge_lock(m.named_lock, e.named_lock);
        // The session applies creations before drops: in a multi-statement the last part
        // that names a table decides (`DROP TEMPORARY TABLE IF EXISTS t; CREATE TEMPORARY
        // TABLE t` leaves `t`, and the session must keep the connection that has it).
        for t in e.tables_dropped {
            m.temp_tables_created.retain(|c| *c != t);
            m.tables_dropped.push(t);
        }
        for t in e.temp_tables_created {
            m.tables_dropped.retain(|d| *d != t);
            m.temp_tables_created.push(t);
        }
        m.renames_tables |= e.renames_tables;
        m.use_dbs.extend(e.use_dbs);
        m.dropped_database = e.dropped_database.or(m.dropped_database.take());
        // Likewise the last of LOCK and UNLOCK decides (`UNLOCK TABLES; LOCK TABLES t READ`
        // holds the lock).
        if e.lock_tables || e.unlock_tables {
            m.lock_tables = e.lock_tables;
            m.unlock_tables = e.unlock_tables;
        }
        m.backup_stage = e.backup_stage.or(m.backup_stage);
        m.backup_lock = e.backup_lock.or(m.backup_lock);
        m.user_var_assign |= e.user_var_assign;
        m.sets_insert_id |= e.sets_insert_id;
        m.calc_found_rows |= e.calc_found_rows;
        m.looks_back |= e.looks_back;
        m.kill |= e.kill;
        m.sets_password |= e.sets_password;
        m.profiling |= e.profiling;
        m.next_transaction |= e.next_transaction;
        m.sets_role |= e.sets_role;
        m.prepares_xa |= e.prepares_xa;
        m.commits_xa |= e.commits_xa;
        m.runs_unread |= e.runs_unread;
        m.sequence_value |= e.sequence_value;
        m.reads_sequence_value |= e.reads_sequence_value;
        m.reads_user_var |= e.reads_user_var;
        // Ending a transaction and then setting the next one's characteristics leaves them
        // set: in a multi-statement, only an end with nothing set before it counts.
        m.ends_transaction = (m.ends_transaction || e.ends_transaction) && !m.next_transaction;
        m.releases |= e.releases;
        m.no_release |= e.no_release;
        m.completion_release = e.completion_release.or(m.completion_release);
    }

    fn class(&self) -> Class {
        if self.not_read {
            Class::Primary(PrimaryReason::MultiStatement)
        } else {
            Class::Read
        }
    }
}
