//! Hot reload: parse, validate, build, swap. An invalid file changes nothing; a valid one
//! replaces the snapshot atomically and sessions pick it up at their next statement.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::lock::Unpoisoned;
use super::SharedState;
use crate::config::{self, valid_tenant, Config, ConfigErrors};

/// What a reload changed, by tenant name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub users_changed: bool,
    /// A cluster's servers, settings or patterns changed (so may tenants made by pattern).
    pub clusters_changed: bool,
    /// The sections besides tenants, clusters and users that changed: `server`, `admin`,
    /// `monitor` (a new `require_tls` or admin password shows here).
    pub sections_changed: Vec<&'static str>,
}

/// Names listed in a report before the rest are counted: a config of thousands of tenants
/// must not make a log line of thousands of names.
const LISTED: usize = 20;

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| match v.len() {
            0 => "none".to_string(),
            _ => short_list(v),
        };
        let changed = |b: bool| if b { "changed" } else { "unchanged" };
        write!(
            f,
            "tenants added: {}; removed: {}; changed: {}; users {}",
            list(&self.added),
            list(&self.removed),
            list(&self.changed),
            changed(self.users_changed),
        )?;
        if self.clusters_changed {
            f.write_str("; clusters changed")?;
        }
        for s in &self.sections_changed {
            write!(f, "; [{s}] changed")?;
        }
        Ok(())
    }
}

/// Names joined with commas, the first few of a long list and how many more.
pub fn short_list(v: &[String]) -> String {
    match v.len() {
        n if n <= LISTED => v.join(", "),
        n => format!("{} and {} more", v[..LISTED].join(", "), n - LISTED),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no config file to reload (the proxy was started without one)")]
    NoFile,
    #[error("the new configuration is invalid, the running one stays:\n{0}")]
    Invalid(ConfigErrors),
    #[error("a file the new configuration names cannot be used, the running one stays: {0}")]
    Files(#[from] crate::protocol::tls::TlsError),
    #[error("the running config is the fleet's document (version {0}), not the local file: change it with `switchyard config push`")]
    FleetDocument(i64),
    #[error("the new configuration has no [admin] section, the running one stays: the admin port this instance listens on would refuse every login, RELOAD included")]
    AdminLockout,
}

/// How many reloads (SIGHUP or admin RELOAD) were applied and how many refused, and whether
/// the last one was: an alert on "the file on disk is not what runs" needs the latter, which
/// the counts alone do not tell once a good reload followed a bad one.
#[derive(Debug)]
pub struct ReloadCounts {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    last_failed: AtomicBool,
    /// Unix seconds of the last config applied: the start's, then each reload's.
    last_applied: AtomicU64,
}

impl Default for ReloadCounts {
    fn default() -> Self {
        ReloadCounts {
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_failed: AtomicBool::new(false),
            last_applied: AtomicU64::new(unix_now()),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ReloadCounts {
    pub fn record(&self, ok: bool) {
        let c = if ok { &self.ok } else { &self.failed };
        c.fetch_add(1, Ordering::Relaxed);
        self.last_failed.store(!ok, Ordering::Relaxed);
        if ok {
            self.last_applied.store(unix_now(), Ordering::Relaxed);
        }
    }

    /// (the last reload was applied, or none was tried; unix seconds of the last config
    /// applied).
    pub fn last(&self) -> (bool, u64) {
        (
            !self.last_failed.load(Ordering::Relaxed),
            self.last_applied.load(Ordering::Relaxed),
        )
    }

    /// (applied, refused).
    pub fn get(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// Reloads from the file the running config came from, and counts the outcome. Reloads
/// run one at a time (SIGHUP and RELOAD may arrive together): each reads the file and
/// builds on the snapshot the previous one stored, never on the same old one.
pub fn reload(state: &SharedState) -> Result<ReloadReport, ReloadError> {
    let current = state.load_full();
    let _one_at_a_time = current.shared.reload_lock.locked();
    let fleet_version = current.shared.fleet.get().map_or(0, |f| f.config_version());
    let result = match current.shared.config_path.clone() {
        // Re-reading the local file would undo the document every other instance runs.
        _ if fleet_version > 0 => Err(ReloadError::FleetDocument(fleet_version)),
        Some(path) => reload_from(state, &path),
        None => Err(ReloadError::NoFile),
    };
    // Refused before anything was tried: the running config is still the current one, and
    // `last_reload_successful 0` would raise a false alert.
    if !matches!(
        result,
        Err(ReloadError::FleetDocument(_) | ReloadError::NoFile)
    ) {
        current.shared.reloads.record(result.is_ok());
    }
    result
}

pub fn reload_from(state: &SharedState, path: &Path) -> Result<ReloadReport, ReloadError> {
    let config = config::load(path).map_err(ReloadError::Invalid)?;
    apply(state, config)
}

/// Swaps in a validated config, once the files it names have loaded.
pub fn apply(state: &SharedState, config: Config) -> Result<ReloadReport, ReloadError> {
    let current = state.load_full();
    // The admin port stays bound (a reload does not rebind): without a user it would lock
    // operators out until a restart.
    let serving = current.shared.admin_serving.load(Ordering::Relaxed);
    if serving && current.config.admin.is_some() && config.admin.is_none() {
        return Err(ReloadError::AdminLockout);
    }
    let report = diff(&current.config, &config);
    let (was, now) = (&current.config.server, &config.server);
    let bound = [
        ("listen", was.listen != now.listen),
        ("admin_listen", was.admin_listen != now.admin_listen),
        ("http_listen", was.http_listen != now.http_listen),
    ];
    for (key, _) in bound.iter().filter(|(_, changed)| *changed) {
        tracing::warn!(
            key,
            "server.{key} changed: it is bound at start, so it needs a restart"
        );
    }
    let next = Arc::new(current.successor(config)?);
    forget_moved_marks(&current, &next);
    state.store(Arc::clone(&next));
    // Requests still holding the old snapshot would keep its monitor probing every
    // backend (removed ones too) beside its successor, one more set per reload.
    if let (Some(old), Some(new)) = (&current.monitor, &next.monitor) {
        if !old.same_as(new) {
            old.stop();
        }
    }
    // A reload that adds the first caching_sha2_password hash starts making the key now,
    // not at the first login that needs it.
    if next.rsa_key_to_make() {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { next.prepare_rsa_key().await });
        }
    }
    tracing::info!(%report, "configuration reloaded");
    Ok(report)
}

/// Read-your-writes marks of the tenants whose primary the reload moves start anew (see
/// `Consistency::primaries_moved`), and those of tenants it removed (one added again later
/// on other servers must not find the old positions). A name is either named (in the
/// config or a cluster's list) or the open cluster's: each side's primary is a map lookup
/// or the open cluster's, so no tenant is built per mark. Nothing is looked at when no
/// primary moved and no tenant went (a reload with 10,000 tenants runs this).
fn forget_moved_marks(current: &super::RuntimeState, next: &super::RuntimeState) {
    let (before, after) = (Primaries::of(current), Primaries::of(next));
    let moved = |name: &str| {
        let was = before.primary(name);
        was.is_some() && was != after.primary(name)
    };
    if before.open != after.open || before.named.keys().any(|name| moved(name)) {
        current.shared.consistency.primaries_moved(moved);
    }
}

/// Where a config puts each tenant's primary, borrowed from it (read for every mark under
/// the marks' lock): the named tenants' (the config's and the clusters' lists), and the
/// open cluster's for any other valid name.
struct Primaries<'a> {
    named: HashMap<&'a str, &'a str>,
    open: Option<&'a str>,
}

impl<'a> Primaries<'a> {
    fn of(rt: &'a super::RuntimeState) -> Self {
        Primaries {
            named: rt
                .directory
                .named()
                .map(|t| (t.name.as_str(), t.primary.as_str()))
                .collect(),
            open: rt
                .directory
                .open_cluster()
                .map(|c| c.template.primary.as_str()),
        }
    }

    fn primary(&self, name: &str) -> Option<&'a str> {
        self.named
            .get(name)
            .copied()
            .or_else(|| self.open.filter(|_| valid_tenant(name)))
    }
}

/// `[server]` as a reload applies it: without what is bound or sized at start (listeners,
/// worker threads, which `--threads` may set), so neither reads as a change.
fn applied(s: &config::ServerConfig) -> config::ServerConfig {
    config::ServerConfig {
        listen: String::new(),
        admin_listen: None,
        http_listen: None,
        threads: 0,
        ..s.clone()
    }
}

pub fn diff(old: &Config, new: &Config) -> ReloadReport {
    // By name through a map: configs with thousands of tenants reload in well under a second.
    fn by_name(c: &Config) -> std::collections::HashMap<&str, &config::TenantConfig> {
        c.tenants.iter().map(|t| (t.name.as_str(), t)).collect()
    }
    let (before, after) = (by_name(old), by_name(new));
    let mut r = ReloadReport::default();
    for t in &new.tenants {
        match before.get(t.name.as_str()) {
            None => r.added.push(t.name.clone()),
            Some(o) if **o != *t => r.changed.push(t.name.clone()),
            _ => {}
        }
    }
    for t in &old.tenants {
        if !after.contains_key(t.name.as_str()) {
            r.removed.push(t.name.clone());
        }
    }
    let clusters = |c: &Config| {
        c.clusters
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.template.clone(),
                    c.patterns.clone(),
                    c.open,
                )
            })
            .collect::<Vec<_>>()
    };
    r.clusters_changed = clusters(old) != clusters(new);
    // Everything a user has: its TLS requirement and connection limit too.
    r.users_changed = old.users != new.users;
    let sections = [
        ("server", applied(&old.server) != applied(&new.server)),
        ("admin", old.admin != new.admin),
        ("monitor", old.monitor != new.monitor),
    ];
    r.sections_changed = sections.iter().filter(|s| s.1).map(|s| s.0).collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RuntimeState;

    fn cfg(replicas: &str, extra_tenant: bool) -> Config {
        let mut text = format!(
            r#"
[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:3307"
replicas = [{replicas}]

[[tenants]]
name = "globex"
schemas = ["wf_globex"]
primary = "127.0.0.1:3307"
"#
        );
        if extra_tenant {
            text.push_str("[[tenants]]\nname = \"initech\"\nschemas = [\"wf_initech\"]\nprimary = \"127.0.0.1:3307\"\n");
        }
        config::parse(&text, &|_| None).unwrap()
    }

    /// `--threads N` is written into the running config: every reload said `[server]`
    /// changed when N differed from the file.
    #[test]
    fn what_a_reload_cannot_apply_is_no_change() {
        let old = cfg(r#""127.0.0.1:3309""#, false);
        let mut new = old.clone();
        new.server.threads = 7;
        new.server.listen = "127.0.0.1:1".into();
        assert!(diff(&old, &new).sections_changed.is_empty());
        new.server.require_tls = true;
        assert_eq!(diff(&old, &new).sections_changed, ["server"]);
    }

    /// A tenant that leaves its named entry for an open cluster on another primary starts a
    /// new read-your-writes mark (comparing named entries alone missed it); a tenant whose
    /// primary stayed keeps its mark.
    #[test]
    fn a_tenant_moved_into_an_open_cluster_starts_a_new_mark() {
        let state = RuntimeState::new(cfg(r#""127.0.0.1:3308""#, false)).shared();
        let marks = |name: &str| state.load().shared.consistency.tenant(name);
        let (acme, globex) = (marks("acme"), marks("globex"));
        acme.write_started().finish(true, Some("0-1-5"));
        globex.write_started().finish(true, Some("0-1-6"));
        let text = "[[clusters]]\nname = \"other\"\nprimary = \"127.0.0.1:3317\"\n\
                    schemas = [\"wf_{tenant}\"]\ntenants = \"*\"\n\n\
                    [[tenants]]\nname = \"globex\"\nschemas = [\"wf_globex\"]\n\
                    primary = \"127.0.0.1:3307\"\n";
        apply(&state, config::parse(text, &|_| None).unwrap()).unwrap();
        assert_eq!(
            state.load().tenant("acme").map(|t| t.primary.clone()),
            Some("127.0.0.1:3317".to_string())
        );
        assert!(
            !Arc::ptr_eq(&marks("acme"), &acme),
            "acme's mark started anew"
        );
        assert!(Arc::ptr_eq(&marks("globex"), &globex), "globex's mark kept");
    }

    /// A tenant a reload removes drops its mark: added again later on other servers, it
    /// found the old servers' positions there.
    #[test]
    fn a_removed_tenants_mark_is_dropped() {
        let state = RuntimeState::new(cfg(r#""127.0.0.1:3308""#, true)).shared();
        let marks = |name: &str| state.load().shared.consistency.tenant(name);
        let initech = marks("initech");
        initech.write_started().finish(true, Some("0-1-7"));
        apply(&state, cfg(r#""127.0.0.1:3308""#, false)).unwrap();
        assert!(!Arc::ptr_eq(&marks("initech"), &initech));
    }

    #[test]
    fn unchanged_tenants_keep_their_arc() {
        let state = RuntimeState::new(cfg(r#""127.0.0.1:3308""#, false)).shared();
        let before = state.load_full();
        let report = apply(&state, cfg(r#""127.0.0.1:3309""#, true)).unwrap();
        assert_eq!(report.added, vec!["initech"]);
        assert_eq!(report.changed, vec!["acme"]);
        assert!(report.removed.is_empty());
        let after = state.load_full();
        assert!(Arc::ptr_eq(
            &before.tenant("globex").unwrap(),
            &after.tenant("globex").unwrap()
        ));
        assert!(!Arc::ptr_eq(
            &before.tenant("acme").unwrap(),
            &after.tenant("acme").unwrap()
        ));
        assert!(Arc::ptr_eq(&before.shared, &after.shared));
        let report = apply(&state, cfg(r#""127.0.0.1:3309""#, false)).unwrap();
        assert_eq!(report.removed, vec!["initech"]);
    }

    /// A session holds the snapshot it logged in with (a request, the one it runs): the
    /// monitor of a config reloaded away kept probing beside its successor, one more set
    /// of tasks per reload, for as long as any such holder lived.
    #[tokio::test]
    async fn a_reload_stops_the_monitor_it_replaces() {
        let watched = |interval: &str| {
            let text = format!(
                "[monitor]\nuser = \"mon\"\npassword = \"pw\"\n\n\
                 [[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\n\
                 primary = \"127.0.0.1:1\"\nreplicas = [\"127.0.0.1:2\"]\n\
                 health_interval = \"{interval}\"\n"
            );
            config::parse(&text, &|_| None).unwrap()
        };
        let state = RuntimeState::new(watched("500ms")).with_monitor().shared();
        let held = state.load_full();
        let old = held.monitor.clone().unwrap();
        assert_eq!(old.running(), 2);
        apply(&state, watched("400ms")).unwrap();
        let new = state.load().monitor.clone().unwrap();
        assert!(!new.same_as(&old), "the watch changed: a new monitor");
        assert_eq!(new.running(), 2);
        assert_eq!(old.running(), 0, "the replaced monitor still checks");
        // Unchanged, the monitor carries on.
        apply(&state, watched("400ms")).unwrap();
        assert!(state.load().monitor.as_ref().unwrap().same_as(&new));
        assert_eq!(new.running(), 2);
        drop(held);
    }
}
