//! `EXPLAIN ROUTE [FOR USER u | FOR TENANT t] [SCHEMA s] <sql>`: how a statement would be
//! routed by a fresh session (no transaction, no pins, no writes yet) of that tenant.

use std::sync::Arc;

use opensrv_mysql::ErrorKind;

use super::command::ExplainFor;
use super::table::{join, Kind, Reply, Table};
use crate::config::{TenantConfig, UserTenants};
use crate::router::route::{decide, Destination, SessionView, Target};
use crate::router::{Class, Classification, LockEffect, RouteHint};
use crate::state::RuntimeState;

use super::table::AdminError;

pub fn explain(rt: &RuntimeState, target: &ExplainFor, sql: &str) -> Reply {
    let tenant = tenant_for(rt, target)?;
    let c = rt.shared.router.explain(sql.as_bytes());
    let view = SessionView {
        has_replicas: !tenant.replicas.is_empty(),
        consistency: Some(tenant.consistency),
        ..SessionView::default()
    };
    let route = decide(&c, &view);
    let (dest, servers) = match route.dest {
        Destination::Primary | Destination::Exactly(Target::Primary) => {
            ("primary", vec![tenant.primary.clone()])
        }
        Destination::Exactly(Target::Replica(i)) => (
            "replica",
            tenant
                .replicas
                .get(i)
                .map(|r| vec![r.addr.clone()])
                .unwrap_or_default(),
        ),
        Destination::AnyReplica => {
            let up: Vec<String> = tenant
                .replicas
                .iter()
                .filter(|r| rt.shared.health.is_up(&r.addr))
                .map(|r| r.addr.clone())
                .collect();
            if up.is_empty() {
                ("replica (none up: primary)", vec![tenant.primary.clone()])
            } else {
                ("replica", up)
            }
        }
    };
    let mut table = Table::new(&[
        ("tenant", Kind::Text),
        ("class", Kind::Text),
        ("route", Kind::Text),
        ("reason", Kind::Text),
        ("servers", Kind::Text),
        ("must_see", Kind::Text),
        ("hints", Kind::Text),
        ("hint_refused", Kind::Flag),
        ("effects", Kind::Text),
    ]);
    table.push(vec![
        tenant.name.as_str().into(),
        class_name(&c.class).into(),
        dest.into(),
        route.reason.into(),
        join(&servers).into(),
        route.causal.map_or("", |c| c.as_str()).into(),
        hints(&c).into(),
        route.hint_refused.into(),
        effects(&c).into(),
    ]);
    Ok(table)
}

fn tenant_for(rt: &RuntimeState, target: &ExplainFor) -> Result<Arc<TenantConfig>, AdminError> {
    let by_schema = |s: &str| {
        rt.tenant_of_schema(s).ok_or_else(|| {
            AdminError::new(
                ErrorKind::ER_BAD_DB_ERROR,
                format!("No tenant owns schema '{s}'"),
            )
        })
    };
    if let Some(name) = &target.tenant {
        return rt
            .tenant(name)
            .ok_or_else(|| AdminError::unknown_tenant(name));
    }
    let Some(user_name) = &target.user else {
        return match &target.schema {
            Some(s) => by_schema(s),
            None => rt
                .config
                .tenants
                .first()
                .and_then(|t| rt.tenant(&t.name))
                .ok_or_else(|| {
                    AdminError::new(ErrorKind::ER_UNKNOWN_ERROR, "No tenants configured")
                }),
        };
    };
    let user = rt.user(user_name).ok_or_else(|| {
        AdminError::new(
            ErrorKind::ER_NO_SUCH_USER,
            format!("Unknown user '{user_name}'"),
        )
    })?;
    let tenant = match (&target.schema, &user.tenants) {
        (Some(s), _) => by_schema(s)?,
        (None, UserTenants::One(t)) => rt.tenant(t).ok_or_else(|| AdminError::unknown_tenant(t))?,
        (None, _) => {
            return Err(AdminError::new(
                ErrorKind::ER_NO_DB_ERROR,
                format!("User '{user_name}' may use several tenants: name a SCHEMA"),
            ))
        }
    };
    if !user.tenants.allows(&tenant.name) {
        return Err(AdminError::new(
            ErrorKind::ER_DBACCESS_DENIED_ERROR,
            format!(
                "User '{user_name}' may not use tenant '{}' (schema {})",
                tenant.name,
                target.schema.as_deref().unwrap_or("?")
            ),
        ));
    }
    Ok(tenant)
}

fn class_name(class: &Class) -> String {
    match class {
        Class::Read => "read".into(),
        Class::Primary(reason) => format!("primary only ({reason})"),
        Class::LastBackend => "refers to the previous statement".into(),
        Class::Begin { read_only: true } => "begin read-only transaction".into(),
        Class::Begin { read_only: false } => "begin transaction".into(),
        Class::Use(db) => format!("use {db}"),
        Class::SetSession => "session set".into(),
    }
}

fn hints(c: &Classification) -> String {
    let h = &c.hints;
    let mut out = Vec::new();
    match h.route {
        Some(RouteHint::Primary) => out.push("route=primary".to_string()),
        Some(RouteHint::Replica) => out.push("route=replica".to_string()),
        None => {}
    }
    if let Some(v) = &h.consistency {
        out.push(format!("consistency={v}"));
    }
    if let Some(d) = h.max_lag {
        out.push(format!("max_lag={}", crate::config::format_duration(d)));
    }
    for u in &h.unknown {
        out.push(format!("unknown: {u}"));
    }
    join(&out)
}

fn effects(c: &Classification) -> String {
    let e = &c.effects;
    let mut out = Vec::new();
    match e.named_lock {
        LockEffect::None => {}
        LockEffect::Acquire(crate::router::UNCOUNTED_LOCKS) => out.push(
            "acquires named locks once per row (uncounted): pins the session until RELEASE_ALL_LOCKS"
                .into(),
        ),
        LockEffect::Acquire(n) => out.push(format!("acquires {n} named lock(s): pins the session")),
        LockEffect::Release(n) => out.push(format!("releases {n} named lock(s)")),
        LockEffect::ReleaseAll => out.push("releases all named locks".into()),
    }
    for t in &e.temp_tables_created {
        out.push(format!("creates temporary table {t}: pins the session"));
    }
    for t in &e.tables_dropped {
        out.push(format!("drops table {t}"));
    }
    if e.lock_tables {
        out.push("lock tables: pins the session".into());
    }
    if e.unlock_tables {
        out.push("unlock tables".into());
    }
    match (e.backup_stage, e.backup_lock) {
        (Some(true), _) | (_, Some(true)) => out.push("backup lock: pins the session".into()),
        (Some(false), _) | (_, Some(false)) => out.push("ends a backup lock".into()),
        (None, None) => {}
    }
    if e.user_var_assign {
        out.push("assigns a user variable".into());
    }
    if e.calc_found_rows {
        out.push("sql_calc_found_rows".into());
    }
    if e.looks_back {
        out.push("reports on the previous statement".into());
    }
    for db in &e.use_dbs {
        out.push(format!("use {db}"));
    }
    if e.unreplayable {
        out.push("session change that cannot be replayed: pins the session".into());
    }
    if e.sequence_value {
        out.push("moves a sequence (LASTVAL stays on its connection): pins the session".into());
    }
    if e.next_transaction {
        out.push("characteristics of the next transaction: pins the session until one ends".into());
    }
    join(&out)
}
