//! Defence in depth for names a statement spells out: a schema of another tenant, named in a
//! qualified name (`wf_other.t`), `USE`, `SHOW TABLES FROM`, `CREATE DATABASE` or a dynamic
//! SQL literal, gets ERR 1044 before anything reaches a backend, instead of relying on the
//! server's grants alone. Names that are no tenant's schema (aliases, `information_schema`,
//! `mysql`, unknown names) are left to the server.

use std::ops::ControlFlow;

use crate::config::UserTenants;
use crate::frontend::error::{db_access_denied, SessionError};
use crate::frontend::session::Session;
use crate::router::Refs;
use crate::state::RuntimeState;

/// Longest schema name in bytes (64 characters of up to 4 bytes); longer names are no schema.
const MAX_NAME: usize = 256;

impl Session {
    /// Whether this session's statements are checked for other tenants' schema names: not
    /// for users of every tenant, nor with one tenant.
    pub(in crate::frontend) fn checks_schema_refs(&self, rt: &RuntimeState) -> bool {
        rt.directory.several() && !matches!(self.who.user.tenants, UserTenants::All)
    }

    /// Refuses `sql` (a COM_QUERY or COM_STMT_PREPARE text) if it names a schema owned by a
    /// tenant this session's user may not use: the names the classifier knew (`refs`), else
    /// those one lexer pass finds. Costs nothing for users of every tenant or a config with
    /// one tenant.
    pub(in crate::frontend) fn check_schema_refs(
        &self,
        rt: &RuntimeState,
        sql: &[u8],
        refs: &Refs,
    ) -> Result<(), SessionError> {
        if !self.checks_schema_refs(rt) {
            return Ok(());
        }
        let mut check = |name: &[u8]| {
            if foreign(rt, &self.who.user.tenants, name) {
                ControlFlow::Break(String::from_utf8_lossy(name).into_owned())
            } else {
                ControlFlow::Continue(())
            }
        };
        let mut outcome = refs.visit(sql, &mut check);
        // In GBK, Big5 or Shift-JIS the server pairs a backslash byte with the character
        // before it, where no `sql_mode` reading does (`'a\'b', '\xbf\x5c', db.t`): read
        // that way too, whatever character set the session is known to use (a `SET NAMES`
        // Switchyard does not read must not open a way around the check).
        if outcome.is_continue() && crate::router::may_pair_bytes(sql) {
            for cs in crate::router::MultiByte::ALL {
                if let Some(copy) = crate::router::as_single_byte(sql, cs) {
                    outcome = crate::router::visit_schema_refs(&copy, &mut check);
                    if outcome.is_break() {
                        break;
                    }
                }
            }
        }
        match outcome {
            ControlFlow::Break(db) => Err(db_access_denied(&self.who.user.name, &db)),
            ControlFlow::Continue(()) => Ok(()),
        }
    }
}

/// Whether `name` is a schema of a tenant `allowed` does not include. Matched without regard
/// to case (servers with `lower_case_table_names` do the same); when schemas differing only
/// in case belong to different tenants, the exact spelling decides.
fn foreign(rt: &RuntimeState, allowed: &UserTenants, name: &[u8]) -> bool {
    if name.len() > MAX_NAME {
        return false;
    }
    let mut buf = [0u8; MAX_NAME];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let Ok(lower) = std::str::from_utf8(lower) else {
        return false;
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    rt.directory.foreign(allowed, name, lower)
}
