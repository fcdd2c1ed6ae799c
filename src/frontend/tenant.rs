//! Tenant resolution and isolation: which tenant a user's session belongs to, and whether a
//! schema it names is within reach. Every refusal happens before any backend is touched.

use std::sync::Arc;

use super::error::{db_access_denied, SessionError};
use crate::config::{TenantConfig, UserConfig, UserTenants};
use crate::state::RuntimeState;

/// Schemas every server has and every user may enter without leaving its tenant.
const SHARED_SCHEMAS: &[&str] = &["information_schema"];

/// The tenant a session starts with before any schema is named.
fn initial_tenant(rt: &RuntimeState, user: &UserConfig) -> Option<Arc<TenantConfig>> {
    match &user.tenants {
        UserTenants::One(t) => rt.tenant(t),
        UserTenants::List(list) if list.len() == 1 => rt.tenant(&list[0]),
        _ => None,
    }
}

/// The tenant a login (or COM_CHANGE_USER) asking for `db` starts in: `db`'s, if the user
/// may use it, else the user's only one.
pub fn login_tenant(
    rt: &RuntimeState,
    user: &UserConfig,
    db: Option<&str>,
) -> Result<Option<Arc<TenantConfig>>, SessionError> {
    match db {
        // `information_schema` and the like are every tenant's: the user's own serves them.
        Some(db) if SHARED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db)) => {
            tenant_for_schema(rt, user, db, initial_tenant(rt, user).as_ref()).map(Some)
        }
        Some(db) => tenant_for_schema(rt, user, db, None).map(Some),
        None => Ok(initial_tenant(rt, user)),
    }
}

/// The tenant that owns `db` if `user` may use it. `current` is the session's tenant.
pub fn tenant_for_schema(
    rt: &RuntimeState,
    user: &UserConfig,
    db: &str,
    current: Option<&Arc<TenantConfig>>,
) -> Result<Arc<TenantConfig>, SessionError> {
    if SHARED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(db)) {
        return current
            .cloned()
            .ok_or_else(|| db_access_denied(&user.name, db));
    }
    let owner = rt
        .tenant_of_schema(db)
        .filter(|t| user.tenants.allows(&t.name))
        .ok_or_else(|| db_access_denied(&user.name, db))?;
    match current {
        Some(c) if c.name == owner.name => Ok(Arc::clone(c)),
        _ => Ok(owner),
    }
}

/// Before a multi-tenant user names a schema, statements that touch no tenant's data (reads
/// of variables, SETs) are served by a tenant it may reach, so drivers that query settings
/// right after connecting work. Their effects carry over when a schema is chosen. With
/// only an open cluster's tenants to reach, its servers serve them.
pub fn lobby_tenant(rt: &RuntimeState, user: &UserConfig) -> Option<Arc<TenantConfig>> {
    let named = match &user.tenants {
        UserTenants::One(t) => rt.tenant(t),
        UserTenants::List(list) => list.iter().find_map(|t| rt.tenant(t)),
        UserTenants::All => rt.config.tenants.first().and_then(|t| rt.tenant(&t.name)),
    };
    named.or_else(|| {
        let open = rt.directory.open_cluster()?;
        let lobby = TenantConfig {
            name: open.name.clone(),
            ..open.template.clone()
        };
        matches!(user.tenants, UserTenants::All).then(|| Arc::new(lobby))
    })
}
