//! Defence in depth for names a statement spells out: a schema of another tenant, named in a
//! qualified name (`wf_other.t`), `USE`, `SHOW TABLES FROM`, `CREATE DATABASE` or a dynamic
//! SQL literal, gets ERR 1044 before anything reaches a backend, instead of relying on the
//! server's grants alone. Names that are no tenant's schema (aliases, `information_schema`,
//! `mysql`, unknown names) are left to the server.

use std::ops::ControlFlow;

use crate::config::UserTenants;
use crate::frontend::error::{db_access_denied, SessionError};
use crate::frontend::session::Session;
use crate::router::{self, Refs};
use crate::state::RuntimeState;

/// Longest schema name in bytes (64 characters of up to 4 bytes); longer names are no schema.
const MAX_NAME: usize = 256;

impl Session {
    /// Refuses `sql` (a COM_QUERY or COM_STMT_PREPARE text) if it names a schema owned by a
    /// tenant this session's user may not use. Costs nothing for users of every tenant or a
    /// config with one tenant, and one lexer pass otherwise.
    pub(in crate::frontend) fn check_schema_refs(
        &self,
        rt: &RuntimeState,
        sql: &[u8],
    ) -> Result<(), SessionError> {
        self.check_known_schema_refs(rt, sql, &Refs::Unknown)
    }

    /// [`Session::check_schema_refs`] with the names `sql` spells out when the classifier
    /// knew them (no scan then).
    pub(in crate::frontend) fn check_known_schema_refs(
        &self,
        rt: &RuntimeState,
        sql: &[u8],
        refs: &Refs,
    ) -> Result<(), SessionError> {
        if !rt.directory.several() || matches!(self.who.user.tenants, UserTenants::All) {
            return Ok(());
        }
        if let Refs::Known(names) = refs {
            let names = names.as_deref().unwrap_or_default();
            return match names
                .iter()
                .find(|n| foreign(rt, &self.who.user.tenants, n))
            {
                Some(db) => Err(db_access_denied(
                    &self.who.user.name,
                    &self.who.host,
                    &String::from_utf8_lossy(db),
                )),
                None => Ok(()),
            };
        }
        let outcome = router::visit_schema_refs(sql, |name| {
            if foreign(rt, &self.who.user.tenants, name) {
                ControlFlow::Break(String::from_utf8_lossy(name).into_owned())
            } else {
                ControlFlow::Continue(())
            }
        });
        match outcome {
            ControlFlow::Break(db) => {
                Err(db_access_denied(&self.who.user.name, &self.who.host, &db))
            }
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
