//! The status page's JSON model (`GET /api/status` and its parts), read from the runtime
//! state at request time, like `/metrics`: tenants, backends with their recent lag,
//! sessions with their pins, statements per second by tenant and route, paused tenants.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::backends::{in_use, rows, status_of};
use super::rates::{Rates, Totals};
use super::tenants::{listed, sessions_by_tenant};
use crate::config::TenantConfig;
use crate::state::stats::TenantCounts;
use crate::state::RuntimeState;

#[derive(Debug, Serialize)]
pub struct Status {
    /// When this was read, in milliseconds since the Unix epoch.
    pub generated_unix_ms: u64,
    pub version: &'static str,
    /// Whether a monitor measures backends (without one, state comes from the data path).
    pub monitor: bool,
    /// The busiest tenants (sessions, pauses, errors), at most [`TENANTS_SHOWN`].
    pub tenants: Vec<Tenant>,
    /// Named tenants and tenants made by pattern that have sessions.
    pub tenants_total: usize,
    pub backends: Vec<Backend>,
    /// Recent lag by backend address, oldest first (one ring per server, however many
    /// tenants share it).
    pub lag_history: BTreeMap<String, Vec<LagSample>>,
    pub sessions: Vec<Session>,
    pub statements: Statements,
    pub paused: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Tenant {
    pub name: String,
    pub schemas: Vec<String>,
    pub primary: String,
    pub replicas: Vec<String>,
    pub consistency: &'static str,
    pub max_replica_lag_seconds: f64,
    pub sessions: u64,
    pub paused: bool,
    pub errors: u64,
    pub backend_errors: u64,
    pub fallbacks: u64,
}

#[derive(Debug, Serialize)]
pub struct Backend {
    /// The tenant, or `*` for every tenant of `cluster` that has no settings of its own.
    pub tenant: String,
    pub cluster: Option<String>,
    pub addr: String,
    pub role: &'static str,
    pub weight: Option<u32>,
    /// `up`, `down`, `lagging`, `stopped`, `primary lost` or `offline` (as SHOW BACKENDS).
    pub state: &'static str,
    pub lag_seconds: Option<f64>,
    pub gtid_position: Option<String>,
    /// Connections held by sessions and idle in the pool: per server, whatever tenant.
    pub pool_in_use: u64,
    pub pool_idle: u64,
    pub reads_served: u64,
    pub writes_served: u64,
}

#[derive(Debug, Serialize)]
pub struct LagSample {
    /// How long before `generated_unix_ms` the check was.
    pub ago_seconds: f64,
    /// `null`: not measured then (unreachable, or a primary).
    pub lag_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Session {
    pub id: u32,
    pub user: String,
    pub host: String,
    pub tenant: Option<String>,
    pub schema: Option<String>,
    /// The backend holding the session's open transaction.
    pub transaction: Option<String>,
    pub pins: Vec<String>,
    pub backends: Vec<String>,
    pub statements: u64,
    pub connected_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct Statements {
    /// The time the rates are measured over; `null` (and every rate `null`) until two
    /// reads of the counters at least a second apart were made.
    pub window_seconds: Option<f64>,
    pub by_route: Vec<RouteRate>,
}

#[derive(Debug, Serialize)]
pub struct RouteRate {
    pub tenant: String,
    /// `primary` or `replica`.
    pub route: &'static str,
    pub total: u64,
    pub per_second: Option<f64>,
}

/// Reads everything the page shows. `rates` remembers the previous read of the counters.
pub fn read(rt: &RuntimeState, rates: &Rates) -> Status {
    let counts = super::stats::counts(rt);
    let per_tenant = sessions_by_tenant(rt);
    let listed = listed(rt, &per_tenant);
    let now = Instant::now();
    Status {
        generated_unix_ms: unix_ms(SystemTime::now()),
        version: env!("CARGO_PKG_VERSION"),
        monitor: rt.monitor.is_some(),
        tenants_total: listed.len(),
        tenants: tenants(rt, listed, &per_tenant, &counts),
        backends: backends(rt),
        lag_history: lag_history(rt, now),
        sessions: sessions(rt),
        statements: statements(&counts, rates, now),
        paused: paused(rt),
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Tenant rows the page gets: a config of thousands must not make every refresh carry
/// thousands (SHOW TENANTS on the admin port pages through them all).
pub const TENANTS_SHOWN: usize = 200;

/// The busiest first (sessions, paused, errors), then by name; at most [`TENANTS_SHOWN`].
fn tenants(
    rt: &RuntimeState,
    listed: BTreeMap<String, Arc<TenantConfig>>,
    sessions: &HashMap<String, u64>,
    counts: &BTreeMap<String, TenantCounts>,
) -> Vec<Tenant> {
    let zero = TenantCounts::default();
    let mut all: Vec<Tenant> = listed
        .into_values()
        .map(|t| {
            let c = counts.get(&t.name).unwrap_or(&zero);
            Tenant {
                name: t.name.clone(),
                schemas: t.schemas.clone(),
                primary: t.primary.clone(),
                replicas: t.replicas.iter().map(|r| r.addr.clone()).collect(),
                consistency: t.consistency.as_str(),
                max_replica_lag_seconds: t.max_replica_lag.as_secs_f64(),
                sessions: sessions.get(&t.name).copied().unwrap_or(0),
                paused: rt.shared.pauses.is_paused(&t.name),
                errors: c.errors,
                backend_errors: c.backend_errors,
                fallbacks: c.fallbacks,
            }
        })
        .collect();
    all.sort_by(|a, b| {
        let busy = |t: &Tenant| (t.paused, t.sessions, t.errors + t.backend_errors);
        busy(b).cmp(&busy(a)).then_with(|| a.name.cmp(&b.name))
    });
    all.truncate(TENANTS_SHOWN);
    all
}

fn backends(rt: &RuntimeState) -> Vec<Backend> {
    let idle: HashMap<Arc<str>, usize> = rt.shared.pools.idle_counts();
    let used = in_use(rt);
    rows(rt)
        .into_iter()
        .map(|b| {
            let status = status_of(rt, &b.addr);
            let (reads, writes) = super::backends::served(rt, &b);
            Backend {
                cluster: b.cluster,
                pool_in_use: used.get(&b.addr).copied().unwrap_or(0),
                pool_idle: idle.get(b.addr.as_str()).copied().unwrap_or(0) as u64,
                tenant: b.tenant,
                addr: b.addr,
                role: b.role,
                weight: b.weight,
                state: status.state,
                lag_seconds: status.lag_seconds,
                gtid_position: status.gtid_position,
                reads_served: reads,
                writes_served: writes,
            }
        })
        .collect()
}

fn lag_history(rt: &RuntimeState, now: Instant) -> BTreeMap<String, Vec<LagSample>> {
    let Some(monitor) = &rt.monitor else {
        return BTreeMap::new();
    };
    let addrs: HashSet<String> = rows(rt).into_iter().map(|b| b.addr).collect();
    addrs
        .into_iter()
        .map(|addr| {
            let points = monitor.lag_history(&addr);
            let samples = points
                .iter()
                .map(|p| LagSample {
                    ago_seconds: now.saturating_duration_since(p.at).as_secs_f64(),
                    lag_seconds: p.lag.map(|d| d.as_secs_f64()),
                })
                .collect();
            (addr, samples)
        })
        .collect()
}

fn sessions(rt: &RuntimeState) -> Vec<Session> {
    let now = SystemTime::now();
    rt.shared
        .registry
        .list()
        .into_iter()
        .map(|e| {
            let r = e.report();
            let backends = super::sessions::held_backends(rt, r.tenant.as_deref(), e.held());
            Session {
                id: e.id,
                user: r.user,
                host: e.host.clone(),
                tenant: r.tenant,
                schema: r.schema,
                transaction: r.transaction,
                pins: r.pins,
                backends,
                statements: e.statements.load(std::sync::atomic::Ordering::Relaxed),
                connected_seconds: now.duration_since(e.started).map_or(0, |d| d.as_secs()),
            }
        })
        .collect()
}

fn statements(counts: &BTreeMap<String, TenantCounts>, rates: &Rates, now: Instant) -> Statements {
    let mut totals = Totals::new();
    for (name, c) in counts {
        totals.insert((name.clone(), "primary"), c.to_primary);
        totals.insert((name.clone(), "replica"), c.to_replica);
    }
    let measured = rates.observe(now, &totals);
    let few = counts.len() <= TENANTS_SHOWN;
    let mut by_route: Vec<RouteRate> = totals
        .iter()
        .map(|((tenant, route), total)| RouteRate {
            tenant: tenant.clone(),
            route,
            total: *total,
            per_second: measured.as_ref().map(|m| {
                m.per_second
                    .get(&(tenant.clone(), *route))
                    .copied()
                    .unwrap_or(0.0)
            }),
        })
        // With thousands of tenants, only those that ran something, the busiest first.
        .filter(|r| few || r.total > 0)
        .collect();
    if by_route.len() > 2 * TENANTS_SHOWN {
        let rate = |r: &RouteRate| r.per_second.unwrap_or(0.0);
        by_route.sort_by(|a, b| rate(b).total_cmp(&rate(a)).then(b.total.cmp(&a.total)));
        by_route.truncate(2 * TENANTS_SHOWN);
    }
    Statements {
        window_seconds: measured.map(|m| m.window.as_secs_f64()),
        by_route,
    }
}

fn paused(rt: &RuntimeState) -> Vec<String> {
    let mut p = rt.shared.pauses.paused();
    p.sort();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::stats::TenantStats;

    fn state() -> RuntimeState {
        let text = "[[tenants]]\nname = \"t0\"\nschemas = [\"s0\"]\nprimary = \"127.0.0.1:3307\"\nreplicas = [\"127.0.0.1:3308\"]\n\
                    [[tenants]]\nname = \"t1\"\nschemas = [\"s1\"]\nprimary = \"127.0.0.1:3307\"\n";
        RuntimeState::new(crate::config::parse(text, &|_| None).unwrap())
    }

    #[test]
    fn tenants_backends_and_pauses_are_read_from_the_state() {
        let rt = state();
        rt.shared.pauses.pause("t1");
        rt.shared.health.set_offline("127.0.0.1:3308", true);
        let s = read(&rt, &Rates::default());
        let names: Vec<_> = s.tenants.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t1", "t0"], "the paused tenant first");
        assert!(s.tenants[0].paused && !s.tenants[1].paused);
        assert_eq!(s.paused, ["t1"]);
        let roles: Vec<_> = s.backends.iter().map(|b| (b.role, b.state)).collect();
        assert_eq!(
            roles,
            [("primary", "up"), ("replica", "offline"), ("primary", "up")]
        );
        assert!(!s.monitor && s.lag_history.is_empty());
    }

    #[test]
    fn thousands_of_tenants_send_the_busiest_and_a_count() {
        let mut text = String::new();
        for i in 0..TENANTS_SHOWN + 50 {
            text.push_str(&format!(
                "[[tenants]]\nname = \"t{i:04}\"\nschemas = [\"s{i}\"]\nprimary = \"127.0.0.1:3307\"\n"
            ));
        }
        let rt = RuntimeState::new(crate::config::parse(&text, &|_| None).unwrap());
        rt.shared.pauses.pause("t0222");
        let s = read(&rt, &Rates::default());
        assert_eq!(
            (s.tenants.len(), s.tenants_total),
            (TENANTS_SHOWN, TENANTS_SHOWN + 50)
        );
        assert_eq!(s.tenants[0].name, "t0222");
        assert_eq!(s.tenants[1].name, "t0000");
    }

    #[test]
    fn rates_appear_from_the_second_read_a_second_later() {
        let rt = state();
        let rates = Rates::default();
        let first = read(&rt, &rates);
        assert_eq!(first.statements.window_seconds, None);
        assert!(first
            .statements
            .by_route
            .iter()
            .all(|r| r.per_second.is_none()));
        for _ in 0..3 {
            TenantStats::bump(&rt.shared.stats.tenant("t0", |_| true).to_replica);
        }
        let later = Instant::now() + std::time::Duration::from_secs(2);
        let s = statements(&super::super::stats::counts(&rt), &rates, later);
        let window = s.window_seconds.expect("a window");
        let t0 = s
            .by_route
            .iter()
            .find(|r| r.tenant == "t0" && r.route == "replica")
            .unwrap();
        assert_eq!(t0.total, 3);
        let rate = t0.per_second.unwrap();
        assert!((rate - 3.0 / window).abs() < 1e-9, "{rate} over {window}");
    }

    #[test]
    fn the_json_names_the_fields_the_page_reads() {
        let rt = state();
        let json = serde_json::to_value(read(&rt, &Rates::default())).unwrap();
        for key in [
            "tenants",
            "backends",
            "lag_history",
            "sessions",
            "statements",
            "paused",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert_eq!(json["backends"][0]["addr"], "127.0.0.1:3307");
        assert_eq!(json["statements"]["by_route"][0]["route"], "primary");
    }
}
