//! SET statements: session variables (replayable), server-wide changes, user variables.

use super::classify::{Ctx, Piece};
use super::lexer::{Cursor, Kind};
use super::select::{self, Scan};
use super::{Class, PrimaryReason};

use PrimaryReason as R;

/// Classifies the statement after its `SET` keyword.
pub(crate) fn statement(ctx: &Ctx, mut cur: Cursor) -> Piece {
    if cur.eat("STATEMENT") {
        return set_statement_for(ctx, cur);
    }
    if cur.peek_is("PASSWORD") || cur.peek_is("ROLE") || cur.eat_seq(&["DEFAULT", "ROLE"]) {
        return Piece::primary(R::Ddl);
    }
    // Without a scope, SET TRANSACTION applies to the next transaction only.
    if cur.peek_is("TRANSACTION") {
        return Piece::primary(R::TransactionControl);
    }
    let body = cur.resume_point();
    let targets = targets(cur);
    let allow = Scan {
        user_vars_allowed: true,
        ..Scan::default()
    };
    let scan = select::scan_into(&mut Cursor::new(ctx.sql, body), allow);
    let mut effects = scan.effects;
    // A user variable set to a literal is replayed with the other SETs wherever the
    // session goes; one set to anything else (NOW(), @y, a subquery) would get another
    // value on replay, so the session stays on the connection that has it.
    // The scan also flags each top-level `@y := 'a'`, which the targets judge here; an
    // assignment nested in a value makes that value no literal.
    if targets.user_var {
        effects.user_var_assign = !targets.user_values_literal;
    }
    // A value with side effects must not be replayed on another connection.
    let class = if targets.global {
        Class::Primary(R::Ddl)
    } else if let Some(r) = scan.reason {
        Class::Primary(r)
    } else if let Some(r) = scan.previous_statement {
        Class::Primary(r)
    } else {
        Class::SetSession
    };
    Piece::with(class, effects)
}

struct Targets {
    global: bool,
    user_var: bool,
    /// Every value assigned to a user variable is a literal (a number, a string, NULL,
    /// TRUE, FALSE, with a sign).
    user_values_literal: bool,
}

fn is_literal(cur: &Cursor, t: super::lexer::Token) -> bool {
    match t.kind {
        Kind::Num | Kind::Str => true,
        Kind::Punct(b'-' | b'+') => true,
        Kind::Word => ["NULL", "TRUE", "FALSE"].iter().any(|w| cur.is_word(t, w)),
        _ => false,
    }
}

/// Looks at each assignment's target (the token after SET or after a top-level comma).
fn targets(mut cur: Cursor) -> Targets {
    let mut out = Targets {
        global: false,
        user_var: false,
        user_values_literal: true,
    };
    let mut at_target = true;
    let mut depth = 0u32;
    // Inside the value of a user variable's assignment (after its `=` or `:=`).
    let mut user_value = false;
    let mut user_target = false;
    while let Some(t) = cur.next_tok() {
        if user_value && !at_target && depth == 0 && t.kind != Kind::Punct(b',') {
            out.user_values_literal &= is_literal(&cur, t);
        }
        if user_target && matches!(t.kind, Kind::Punct(b'=') | Kind::Assign) {
            user_target = false;
            user_value = true;
            continue;
        }
        if at_target {
            at_target = false;
            user_value = false;
            user_target = t.kind == Kind::UserVar;
            let text = cur.text(t);
            match t.kind {
                Kind::Word if is_global_scope(text) => {
                    out.global = true;
                    at_target = true;
                }
                Kind::Word if is_session_scope(text) => at_target = true,
                Kind::UserVar => out.user_var = true,
                Kind::SysVar => out.global |= is_global_sysvar(text),
                _ => {}
            }
        }
        match t.kind {
            Kind::Punct(b'(') => {
                depth += 1;
                out.user_values_literal &= !user_value;
            }
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => at_target = true,
            _ => {}
        }
    }
    out
}

fn is_global_scope(w: &[u8]) -> bool {
    ["GLOBAL", "PERSIST", "PERSIST_ONLY"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
}

fn is_session_scope(w: &[u8]) -> bool {
    w.eq_ignore_ascii_case(b"SESSION") || w.eq_ignore_ascii_case(b"LOCAL")
}

/// `@@global.x`, `@@persist.x`, `@@persist_only.x`.
fn is_global_sysvar(text: &[u8]) -> bool {
    let name = text.get(2..).unwrap_or(b"");
    match name.iter().position(|&b| b == b'.') {
        Some(dot) => is_global_scope(&name[..dot]),
        None => false,
    }
}

/// MariaDB `SET STATEMENT var=value [, ...] FOR <statement>`: the inner statement decides,
/// but its variables apply only there, so it is never sent to a replica.
fn set_statement_for(ctx: &Ctx, mut cur: Cursor) -> Piece {
    let mut depth = 0u32;
    while let Some(t) = cur.next_tok() {
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Word if depth == 0 && cur.is_word(t, "FOR") => {
                let inner = ctx.inner(cur.resume_point());
                let class = match inner.class {
                    Class::Primary(r) => Class::Primary(r),
                    _ => Class::Primary(R::Unknown),
                };
                return Piece { class, ..inner };
            }
            _ => {}
        }
    }
    Piece::primary(R::Unknown)
}
