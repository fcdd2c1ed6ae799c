//! Tenant resolution and isolation: which tenant a user's session belongs to, and whether a
//! schema it names is within reach. Every refusal happens before any backend is touched.

use std::sync::Arc;

use super::error::{db_access_denied, SessionError};
use crate::config::{TenantConfig, UserConfig, UserTenants};
use crate::state::RuntimeState;

/// Schemas every server has and every user may enter without leaving its tenant.
const SHARED_SCHEMAS: &[&str] = &["information_schema"];

/// The tenant a session starts with before any schema is named.
pub fn initial_tenant(rt: &RuntimeState, user: &UserConfig) -> Option<Arc<TenantConfig>> {
    match &user.tenants {
        UserTenants::One(t) => rt.tenant(t).cloned(),
        UserTenants::List(list) if list.len() == 1 => rt.tenant(&list[0]).cloned(),
        _ => None,
    }
}

/// The tenant that owns `db` if `user` may use it. `current` is the session's tenant.
pub fn tenant_for_schema(
    rt: &RuntimeState,
    user: &UserConfig,
    host: &str,
    db: &str,
    current: Option<&Arc<TenantConfig>>,
) -> Result<Arc<TenantConfig>, SessionError> {
    if SHARED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db)) {
        return current
            .cloned()
            .ok_or_else(|| db_access_denied(&user.name, host, db));
    }
    let owner = rt
        .tenant_of_schema(db)
        .filter(|t| allows(&user.tenants, &t.name))
        .ok_or_else(|| db_access_denied(&user.name, host, db))?;
    match current {
        Some(c) if c.name == owner.name => Ok(Arc::clone(c)),
        _ => Ok(Arc::clone(owner)),
    }
}

/// Before a multi-tenant user names a schema, statements that touch no tenant's data (reads
/// of variables, SETs) are served by the first tenant it may reach, so drivers that query
/// settings right after connecting work. Their effects carry over when a schema is chosen.
pub fn lobby_tenant(rt: &RuntimeState, user: &UserConfig) -> Option<Arc<TenantConfig>> {
    rt.config
        .tenants
        .iter()
        .find(|t| allows(&user.tenants, &t.name))
        .and_then(|t| rt.tenant(&t.name))
        .cloned()
}

fn allows(tenants: &UserTenants, name: &str) -> bool {
    match tenants {
        UserTenants::One(t) => t == name,
        UserTenants::List(list) => list.iter().any(|t| t == name),
        UserTenants::All => true,
    }
}
