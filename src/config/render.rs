//! The resolved routing table printed by `switchyard check`. Never prints a secret.

use std::fmt::Write;

use super::duration::format_duration;
use super::{
    ClusterConfig, Config, HttpAuth, MonitorConfig, MonitorLogins, ServerConfig, TenantConfig,
    UserConfig, UserPassword, UserTenants,
};

/// Plain aligned text: the listeners, one block per tenant, then users and their tenants.
pub fn render_table(cfg: &Config) -> String {
    let mut out = String::new();
    render_server(
        &mut out,
        &cfg.server,
        cfg.admin.as_ref().map(|a| a.user.as_str()),
    );
    render_monitor(&mut out, cfg.monitor.as_ref());
    if let Some(f) = &cfg.fleet {
        let summary = format!(
            "{} as instance {} ({}), etcd {}, lease {}",
            f.name,
            f.instance,
            f.advertise,
            f.etcd.join(", "),
            format_duration(f.lease_ttl)
        );
        row(&mut out, "fleet", &summary);
    }
    let logins = cfg.monitor_logins();
    for cluster in &cfg.clusters {
        out.push('\n');
        render_cluster(&mut out, cfg, cluster);
        let as_tenant = cluster.tenant(&cluster.name);
        row(&mut out, "lag measured", &lag_measure(&logins, &as_tenant));
    }
    // A tenant exactly as its cluster makes it is listed in the cluster's block.
    let plain = cfg.plain_cluster_tenants();
    for tenant in cfg
        .tenants
        .iter()
        .filter(|t| !plain.contains_key(t.name.as_str()))
    {
        out.push('\n');
        render_tenant(&mut out, tenant);
        row(&mut out, "lag measured", &lag_measure(&logins, tenant));
    }
    out.push('\n');
    render_users(&mut out, &cfg.users);
    out
}

const LABEL_WIDTH: usize = 16;

fn row(out: &mut String, label: &str, value: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "  {label:<LABEL_WIDTH$} {value}");
}

fn render_server(out: &mut String, server: &ServerConfig, admin_user: Option<&str>) {
    out.push_str("server\n");
    row(out, "listen", &server.listen);
    let admin = match (&server.admin_listen, admin_user) {
        (Some(addr), Some(user)) => format!("{addr} (user {user})"),
        (Some(addr), None) => format!("{addr} (no [admin] user: logins refused)"),
        (None, _) => "off".to_string(),
    };
    row(out, "admin_listen", &admin);
    let http = match (&server.http_listen, server.http_auth, admin_user) {
        (None, _, _) => "off".to_string(),
        (Some(addr), HttpAuth::None, _) => format!("{addr} (status page open to all)"),
        (Some(addr), HttpAuth::Admin, Some(_)) => addr.clone(),
        (Some(addr), HttpAuth::Admin, None) => {
            format!("{addr} (no [admin] user: status page refused)")
        }
    };
    row(out, "http_listen", &http);
    let tls = match (&server.tls_cert, server.require_tls) {
        (Some(_), true) => "required",
        (Some(_), false) => "optional",
        (None, _) => "off",
    };
    row(out, "client tls", tls);
    if !server.proxy_protocol.is_empty() {
        let from: Vec<String> = server
            .proxy_protocol
            .iter()
            .map(|n| n.to_string())
            .collect();
        row(out, "proxy protocol", &format!("from {}", from.join(", ")));
    }
    if !server.reset_after_quit {
        row(out, "after COM_QUIT", "FIN (reset_after_quit = false)");
    }
    if server.worker_fill == 0 {
        row(
            out,
            "sessions",
            "stay on the worker that accepted them (worker_fill = 0)",
        );
    }
}

fn render_monitor(out: &mut String, monitor: Option<&MonitorConfig>) {
    let Some(m) = monitor else {
        row(
            out,
            "monitor",
            "on, as each tenant's own login (no [monitor] section: lag from GTIDs, replication threads not seen)",
        );
        return;
    };
    let summary = format!(
        "user {}, connect_timeout {}, rise {}, fall {}",
        m.user,
        format_duration(m.connect_timeout),
        m.rise,
        m.fall
    );
    row(out, "monitor", &summary);
}

/// Names listed in full before the rest are counted.
const LISTED: usize = 20;

fn render_cluster(out: &mut String, cfg: &Config, c: &ClusterConfig) {
    let _ = writeln!(out, "cluster {}", c.name);
    let patterns: Vec<String> = c.patterns.iter().map(|p| p.to_string()).collect();
    row(out, "schemas", &patterns.join(", "));
    let mut named: Vec<&str> = cfg
        .tenants
        .iter()
        .filter(|t| t.cluster.as_deref() == Some(c.name.as_str()))
        .map(|t| t.name.as_str())
        .collect();
    named.sort_unstable();
    let mut tenants = match named.len() {
        0 => "none named".to_string(),
        n if n <= LISTED => named.join(", "),
        n => format!("{} and {} more", named[..LISTED].join(", "), n - LISTED),
    };
    if c.open {
        tenants.push_str("; and any schema its patterns match that no named tenant owns");
    }
    row(out, "tenants", &tenants);
    render_settings(out, &c.template);
}

fn render_tenant(out: &mut String, t: &TenantConfig) {
    let _ = writeln!(out, "tenant {}", t.name);
    row(out, "schemas", &t.schemas.join(", "));
    if let Some(c) = &t.cluster {
        row(out, "cluster", c);
    }
    render_settings(out, t);
}

fn render_settings(out: &mut String, t: &TenantConfig) {
    row(out, "primary", &t.primary);
    row(out, "replicas", &replica_list(t));
    row(out, "consistency", t.consistency.as_str());
    row(out, "replica_fallback", t.replica_fallback.as_str());
    row(out, "max_replica_lag", &format_duration(t.max_replica_lag));
    row(out, "health_interval", &format_duration(t.health_interval));
    row(out, "pool_max", &t.pool_max.to_string());
    if let Some(max) = t.max_connections {
        row(out, "max_connections", &max.to_string());
    }
    if let Some(user) = &t.backend_user {
        row(out, "backend_user", user);
    }
    if let Some(ca) = &t.backend_tls_ca {
        row(out, "backend_tls_ca", ca);
    }
}

/// How the monitor measures a tenant's replicas, in words.
fn lag_measure(logins: &MonitorLogins<'_>, t: &TenantConfig) -> String {
    if t.replicas.is_empty() {
        return "no replicas".to_string();
    }
    match logins.get(t) {
        Some(l) if l.privileged => format!(
            "GTID timeline, and replication threads, as [monitor] user {}",
            l.user
        ),
        Some(l) => format!(
            "GTID timeline as {} (replication threads not checked: add [monitor] with SLAVE MONITOR for that)",
            l.user
        ),
        None => "not measured: no backend_user or user with a password for this tenant (add [monitor] or backend_user); replicas always count as healthy".to_string(),
    }
}

fn replica_list(t: &TenantConfig) -> String {
    if t.replicas.is_empty() {
        return "none (all traffic to the primary)".to_string();
    }
    let items: Vec<String> = t
        .replicas
        .iter()
        .map(|r| format!("{} (weight {})", r.addr, r.weight))
        .collect();
    items.join(", ")
}

fn render_users(out: &mut String, users: &[UserConfig]) {
    out.push_str("users\n");
    if users.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let width = users.iter().map(|u| u.name.len()).max().unwrap_or(0);
    for u in users {
        let tenants = match &u.tenants {
            _ if u.pattern.is_some() => "the tenant its name spells".to_string(),
            UserTenants::One(t) => t.clone(),
            UserTenants::List(ts) => ts.join(", "),
            UserTenants::All => "* (any tenant)".to_string(),
        };
        let mut notes = Vec::new();
        if let Some(m) = u.max_connections {
            notes.push(format!("max_connections {m}"));
        }
        if let UserPassword::Hash(h) = &u.password {
            notes.push(format!("password_hash for {}", h.plugin()));
        }
        if u.require_tls {
            notes.push("require_tls".to_string());
        }
        let notes: String = notes.iter().map(|n| format!("  ({n})")).collect();
        let _ = writeln!(out, "  {:<width$} -> {tenants}{notes}", u.name);
    }
}
