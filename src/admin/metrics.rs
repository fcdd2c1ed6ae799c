//! `/metrics`: the state read at scrape time by a prometheus-client [`Collector`] and
//! encoded in the OpenMetrics text format. Tenant labels are bounded: past
//! [`MAX_TENANT_LABELS`] tenants the rest are summed under `tenant="_other"`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::backends::{in_use, rows, status_of};
use crate::state::lock::Unpoisoned;
use crate::state::stats::TenantCounts;
use crate::state::{RuntimeState, SharedState};

/// Tenants with a label of their own; the rest are aggregated.
pub const MAX_TENANT_LABELS: usize = 1000;
/// The label value the tenants past the bound share.
pub const OTHER: &str = "_other";

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry holding the state collector; encode it with [`encode`].
pub fn registry(state: SharedState) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(StateCollector {
        state,
        max_tenants: MAX_TENANT_LABELS,
        labeled: Default::default(),
    }));
    r
}

/// The registry's metrics in the text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "metrics encoding failed");
    }
    out
}

/// Reads the runtime state on each scrape.
pub struct StateCollector {
    pub state: SharedState,
    pub max_tenants: usize,
    /// The tenants given a label of their own, kept from scrape to scrape (see
    /// [`TenantLabels`]).
    pub labeled: std::sync::Mutex<HashSet<String>>,
}

impl fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateCollector")
            .field("max_tenants", &self.max_tenants)
            .finish()
    }
}

/// Which tenants get their own label. A tenant keeps the label it was given while it is
/// counted: chosen again at each scrape, a new name sorting first took another's, whose
/// counts moved into `_other` and out again, and counters that go down read to Prometheus
/// as resets (a burst of the whole sum). Room left goes to configured tenants first (in
/// config order), then to the others seen in the counters, by name.
struct TenantLabels(HashSet<String>);

impl TenantLabels {
    fn new(
        rt: &RuntimeState,
        counted: &[String],
        max: usize,
        labeled: &std::sync::Mutex<HashSet<String>>,
    ) -> Self {
        let mut keep = labeled.locked();
        let now: HashSet<&str> = counted.iter().map(String::as_str).collect();
        keep.retain(|name| now.contains(name.as_str()));
        let configured = rt.config.tenants.iter().map(|t| t.name.as_str());
        for name in configured.chain(counted.iter().map(String::as_str)) {
            if keep.len() >= max {
                break;
            }
            if name != OTHER && !keep.contains(name) {
                keep.insert(name.to_owned());
            }
        }
        TenantLabels(keep.clone())
    }

    fn get(&self, tenant: &str) -> String {
        if self.0.contains(tenant) {
            tenant.to_owned()
        } else {
            OTHER.to_owned()
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// Samples of one metric family, summed by label set.
#[derive(Default)]
struct Samples(BTreeMap<Labels, i64>);

impl Samples {
    fn add(&mut self, labels: Labels, v: i64) {
        *self.0.entry(labels).or_default() += v;
    }

    /// For a 0/1 state: rows merged under one label set (the same server, of tenants past
    /// the label bound or of clusters) show it once, not summed to 2.
    fn set_max(&mut self, labels: Labels, v: i64) {
        let e = self.0.entry(labels).or_insert(v);
        *e = (*e).max(v);
    }

    /// One sample without labels.
    fn one(v: i64) -> Samples {
        let mut s = Samples::default();
        s.add(Vec::new(), v);
        s
    }
}

/// Per tenant and route: (sum in seconds, count, per-bucket counts).
type Histograms = BTreeMap<Labels, (f64, u64, Vec<(f64, u64)>)>;

/// `switchyard_statement_duration_seconds{tenant,route}`; tenants past the label bound are
/// merged bucket by bucket.
fn latency_histograms(
    enc: &mut DescriptorEncoder,
    shared: &crate::state::Shared,
    tenants: &TenantLabels,
) -> fmt::Result {
    let mut merged: Histograms = BTreeMap::new();
    let live = shared.stats.tenants();
    // Only once a pruned tenant had counted: no `_other` series of zeros otherwise.
    let retired = shared
        .stats
        .retired()
        .into_iter()
        .filter(|s| s.latency_primary.count() + s.latency_replica.count() > 0)
        .map(|s| (OTHER, s));
    for (name, stats) in live.iter().map(|(n, s)| (n.as_str(), &**s)).chain(retired) {
        for (route, hist) in [
            ("primary", &stats.latency_primary),
            ("replica", &stats.latency_replica),
        ] {
            let (sum, count, buckets) = hist.snapshot();
            let labels = vec![("tenant", tenants.get(name)), ("route", route.to_owned())];
            let e = merged
                .entry(labels)
                .or_insert_with(|| (0.0, 0, buckets.iter().map(|(b, _)| (*b, 0)).collect()));
            e.0 += sum;
            e.1 += count;
            for (slot, (_, n)) in e.2.iter_mut().zip(buckets) {
                slot.1 += n;
            }
        }
    }
    let mut m = enc.encode_descriptor(
        "switchyard_statement_duration_seconds",
        "Statement latency seen by the proxy (first byte in to last byte out), by tenant and route",
        None,
        MetricType::Histogram,
    )?;
    for (labels, (sum, count, buckets)) in &merged {
        m.encode_family(labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                *sum, *count, buckets, None,
            )?;
    }
    Ok(())
}

/// One sample per `reason` label.
fn by_reason(counts: &[(&str, u64)]) -> Samples {
    let mut s = Samples::default();
    for (reason, n) in counts {
        s.add(
            vec![("reason", (*reason).into())],
            i64::try_from(*n).unwrap_or(i64::MAX),
        );
    }
    s
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, s: &Samples) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    if let Some(v) = s.0.get(&Vec::new()).filter(|_| s.0.len() == 1) {
        // One sample without labels: `name_total 3`, not `name_total{} 3`.
        return ConstCounter::new(u64::try_from(*v).unwrap_or(0)).encode(m);
    }
    for (labels, v) in &s.0 {
        ConstCounter::new(u64::try_from(*v).unwrap_or(0)).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, s: &Samples) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if let Some(v) = s.0.get(&Vec::new()).filter(|_| s.0.len() == 1) {
        // One sample without labels: `name 3`, not `name{} 3`.
        return ConstGauge::new(*v).encode(m);
    }
    for (labels, v) in &s.0 {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A family of samples with fractions (seconds, pool figures summed over workers), as a
/// counter or a gauge.
fn floats(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    is_counter: bool,
    family: &BTreeMap<Labels, f64>,
) -> fmt::Result {
    let kind = if is_counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in family {
        if is_counter {
            ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
        } else {
            ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// Whether a backend in `state` (as SHOW BACKENDS names it) takes traffic: a replica that
/// lost its primary but applied what it received still serves reads.
fn takes_traffic(state: &str) -> bool {
    matches!(state, "up" | "primary lost")
}

impl Collector for StateCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let rt = self.state.load_full();
        let shared = &rt.shared;
        // Configured tenants always have samples (zeros until they run something).
        let mut counts: BTreeMap<String, TenantCounts> = rt
            .config
            .tenants
            .iter()
            .map(|t| (t.name.clone(), TenantCounts::default()))
            .collect();
        counts.extend(shared.stats.snapshot());
        let counted: Vec<String> = counts.keys().cloned().collect();
        let tenants = TenantLabels::new(&rt, &counted, self.max_tenants, &self.labeled);
        // Tenants pruned from the counters count on under `_other`.
        let mut retired = TenantCounts::default();
        for r in shared.stats.retired() {
            retired.add(&r.counts());
        }
        if retired != TenantCounts::default() {
            counts.entry(OTHER.to_owned()).or_default().add(&retired);
        }
        let t = |name: &str| vec![("tenant", tenants.get(name))];

        let mut statements = Samples::default();
        let mut errors = Samples::default();
        let mut fallbacks = Samples::default();
        let mut hints = Samples::default();
        let mut held = Samples::default();
        let mut held_too_long = Samples::default();
        let mut consistent = Samples::default();
        for (name, c) in &counts {
            let label = tenants.get(name);
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            for (route, v) in [("primary", c.to_primary), ("replica", c.to_replica)] {
                statements.add(
                    vec![("tenant", label.clone()), ("route", route.into())],
                    n(v),
                );
            }
            for (kind, v) in [("statement", c.errors), ("backend", c.backend_errors)] {
                errors.add(vec![("tenant", label.clone()), ("kind", kind.into())], n(v));
            }
            fallbacks.add(t(name), n(c.fallbacks));
            hints.add(t(name), n(c.hints_refused));
            held.add(t(name), n(c.held));
            held_too_long.add(t(name), n(c.held_too_long));
            for (outcome, v) in [
                ("replica", c.consistent_ready),
                ("replica_after_wait", c.consistent_waited),
                ("primary", c.consistent_primary),
            ] {
                consistent.add(
                    vec![("tenant", label.clone()), ("outcome", outcome.into())],
                    n(v),
                );
            }
        }
        counter(
            &mut enc,
            "switchyard_statements",
            "Statements run, by tenant and the route they took",
            &statements,
        )?;
        latency_histograms(&mut enc, shared, &tenants)?;
        counter(
            &mut enc,
            "switchyard_errors",
            "Failed statements, by tenant and kind (statement: the server said no; backend: it could not be reached or was lost)",
            &errors,
        )?;
        counter(
            &mut enc,
            "switchyard_consistent_reads",
            "Reads that had to see writes (consistency session, tenant or global), by where they ran: a replica that had the writes, one that applied them within the wait, or the primary",
            &consistent,
        )?;
        counter(
            &mut enc,
            "switchyard_fallbacks",
            "Reads that wanted a replica and ran on the primary",
            &fallbacks,
        )?;
        counter(
            &mut enc,
            "switchyard_hints_refused",
            "Routing hints that could not be honoured",
            &hints,
        )?;
        counter(
            &mut enc,
            "switchyard_held_statements",
            "Statements that waited on a paused tenant",
            &held,
        )?;
        counter(
            &mut enc,
            "switchyard_held_too_long",
            "Statements refused after waiting on a paused tenant longer than the hold limit",
            &held_too_long,
        )?;

        let mut sessions = Samples::default();
        let mut in_txn = Samples::default();
        let mut pinned = Samples::default();
        for tc in &rt.config.tenants {
            for s in [&mut sessions, &mut in_txn, &mut pinned] {
                s.add(t(&tc.name), 0);
            }
        }
        let list = shared.registry.list();
        for e in &list {
            let r = e.report();
            let name = r.tenant.as_deref().unwrap_or("");
            if name.is_empty() {
                continue;
            }
            sessions.add(t(name), 1);
            in_txn.add(t(name), i64::from(r.transaction.is_some()));
            pinned.add(t(name), i64::from(!r.pins.is_empty()));
        }
        gauge(
            &mut enc,
            "switchyard_client_sessions",
            "Client sessions open",
            &Samples::one(list.len() as i64),
        )?;
        gauge(
            &mut enc,
            "switchyard_tenant_sessions",
            "Client sessions open, by the tenant they chose",
            &sessions,
        )?;
        gauge(
            &mut enc,
            "switchyard_sessions_in_transaction",
            "Sessions inside a transaction, by tenant",
            &in_txn,
        )?;
        gauge(
            &mut enc,
            "switchyard_pinned_sessions",
            "Sessions pinned to the primary (named lock, temporary table, ...), by tenant",
            &pinned,
        )?;

        let mut up = Samples::default();
        let mut offline = Samples::default();
        // Seconds with their fraction (the monitor measures below a second); tenants merged
        // under one label show their worst.
        let mut lag: BTreeMap<Labels, f64> = BTreeMap::new();
        for b in rows(&rt) {
            let status = status_of(&rt, &b.addr);
            let labels = vec![
                ("tenant", tenants.get(&b.tenant)),
                ("addr", b.addr.clone()),
                ("role", b.role.to_owned()),
            ];
            up.set_max(labels.clone(), i64::from(takes_traffic(status.state)));
            offline.set_max(labels.clone(), i64::from(status.state == "offline"));
            if let Some(seconds) = status.lag_seconds {
                let worst = lag.entry(labels).or_default();
                *worst = worst.max(seconds);
            }
        }
        floats(
            &mut enc,
            "switchyard_replica_lag_seconds",
            "Replication lag measured by the monitor (on the primary's GTID timeline, else Seconds_Behind_Master), by replica",
            false,
            &lag,
        )?;
        gauge(
            &mut enc,
            "switchyard_backend_up",
            "1 if the backend takes traffic: up, or a replica that lost its primary but serves reads (not down, lagging, stopped or OFFLINE)",
            &up,
        )?;
        gauge(
            &mut enc,
            "switchyard_backend_offline",
            "1 if ops set the backend OFFLINE",
            &offline,
        )?;

        let mut idle = Samples::default();
        let idle_counts: HashMap<_, _> = shared.pools.idle_counts();
        for (addr, n) in idle_counts {
            idle.add(vec![("addr", addr.to_string())], n as i64);
        }
        let mut used = Samples::default();
        for (addr, n) in in_use(&rt) {
            used.add(vec![("addr", addr)], i64::try_from(n).unwrap_or(i64::MAX));
        }
        gauge(
            &mut enc,
            "switchyard_pool_idle",
            "Idle pooled backend connections, by server",
            &idle,
        )?;
        gauge(
            &mut enc,
            "switchyard_pool_in_use",
            "Backend connections held by client sessions, by server",
            &used,
        )?;

        for (name, help, is_counter, family) in
            super::pools::metric_families(&rt, |n| tenants.get(n))
        {
            floats(&mut enc, name, help, is_counter, &family)?;
        }

        let mut paused = Samples::default();
        let paused_now: HashSet<String> = shared.pauses.paused().into_iter().collect();
        for tc in &rt.config.tenants {
            paused.add(t(&tc.name), i64::from(paused_now.contains(&tc.name)));
        }
        gauge(
            &mut enc,
            "switchyard_tenant_paused",
            "1 while the tenant is paused (PAUSE TENANT)",
            &paused,
        )?;

        let mut logins = Samples::default();
        for m in crate::state::auth::LoginMethod::ALL {
            let (accepted, refused) = shared.logins.get(m);
            for (result, n) in [("accepted", accepted), ("refused", refused)] {
                logins.add(
                    vec![("method", m.label().into()), ("result", result.into())],
                    i64::try_from(n).unwrap_or(i64::MAX),
                );
            }
        }
        counter(
            &mut enc,
            "switchyard_client_logins",
            "Client logins and COM_CHANGE_USER by authentication method: accepted, or refused (wrong password or unknown user)",
            &logins,
        )?;

        let mut refused = Samples::default();
        for why in crate::state::limits::Refusal::ALL {
            refused.add(
                vec![("limit", why.label().into())],
                i64::try_from(shared.limits.refused(why)).unwrap_or(i64::MAX),
            );
        }
        counter(
            &mut enc,
            "switchyard_connections_refused",
            "Client connections turned away by a connection limit (ERR 1040/1203) or the handshake timeout",
            &refused,
        )?;

        let (ok, failed) = shared.reloads.get();
        let mut reloads = Samples::default();
        reloads.add(
            vec![("result", "ok".into())],
            i64::try_from(ok).unwrap_or(i64::MAX),
        );
        reloads.add(
            vec![("result", "failed".into())],
            i64::try_from(failed).unwrap_or(i64::MAX),
        );
        counter(
            &mut enc,
            "switchyard_reloads",
            "Configuration reloads (SIGHUP or RELOAD), applied or refused",
            &reloads,
        )?;
        let (last_ok, applied_at) = shared.reloads.last();
        gauge(
            &mut enc,
            "switchyard_config_last_reload_successful",
            "1 if the last reload was applied (or none was tried), 0 if it was refused and an older config runs",
            &Samples::one(i64::from(last_ok)),
        )?;
        gauge(
            &mut enc,
            "switchyard_config_last_reload_success_timestamp_seconds",
            "When the running config was applied (at start or by a reload), in Unix seconds",
            &Samples::one(i64::try_from(applied_at).unwrap_or(i64::MAX)),
        )?;

        let (too_long, too_deep) = shared.router.unparsed_counts();
        counter(
            &mut enc,
            "switchyard_classifier_unparsed",
            "SELECT-family statements sent to the primary without parsing: longer than the parse limit (too_long) or nested too deeply (too_deep)",
            &by_reason(&[("too_long", too_long), ("too_deep", too_deep)]),
        )?;
        let (long, new_shape) = shared.router.full_pass_counts();
        counter(
            &mut enc,
            "switchyard_classifier_off_loop",
            "Statements classified on a blocking thread, not the event loop: longer than 64 KiB (long) or a SELECT shape missing from the digest cache (new_shape)",
            &by_reason(&[("long", long), ("new_shape", new_shape)]),
        )?;
        worker_metrics(&mut enc, &shared.workers)?;
        if let Some(f) = shared.fleet.get() {
            fleet_metrics(&mut enc, f)?;
        }
        Ok(())
    }
}

/// The session workers: sessions and CPU time per worker, sessions moved between them.
fn worker_metrics(
    enc: &mut DescriptorEncoder,
    board: &crate::state::workers::WorkerBoard,
) -> fmt::Result {
    let mut sessions = Samples::default();
    for i in 0..board.count() {
        let n = i64::try_from(board.sessions(i)).unwrap_or(i64::MAX);
        sessions.add(vec![("worker", i.to_string())], n);
    }
    gauge(
        enc,
        "switchyard_worker_sessions",
        "Client sessions each worker thread serves now",
        &sessions,
    )?;
    let mut m = enc.encode_descriptor(
        "switchyard_worker_cpu_seconds",
        "CPU time each worker thread has used (read every 100 ms by the session balancer)",
        None,
        MetricType::Counter,
    )?;
    for i in 0..board.count() {
        let seconds = board.cpu_micros(i) as f64 / 1e6;
        let labels = [("worker", i.to_string())];
        ConstCounter::new(seconds).encode(m.encode_family(&labels)?)?;
    }
    counter(
        enc,
        "switchyard_session_moves",
        "Sessions moved from one worker thread to another between commands (server.worker_fill)",
        &Samples::one(i64::try_from(board.moves()).unwrap_or(i64::MAX)),
    )?;
    gauge(
        enc,
        "switchyard_workers_in_use",
        "Worker threads the session balancer gives new sessions to",
        &Samples::one(i64::try_from(board.active()).unwrap_or(0)),
    )
}

/// With `[fleet]` only: the instance's link to etcd and the config document it runs.
fn fleet_metrics(enc: &mut DescriptorEncoder, f: &crate::fleet::Fleet) -> fmt::Result {
    gauge(
        enc,
        "switchyard_fleet_etcd_connected",
        "1 while the instance is registered in its fleet and follows etcd; 0 while it serves with the last state it applied",
        &Samples::one(i64::from(f.connected())),
    )?;
    counter(
        enc,
        "switchyard_fleet_etcd_losses",
        "Times the instance lost etcd (watch, lease or request failed)",
        &Samples::one(i64::try_from(f.losses()).unwrap_or(i64::MAX)),
    )?;
    gauge(
        enc,
        "switchyard_fleet_config_version",
        "The fleet config document version the instance runs, the etcd revision that wrote it (0: its local file)",
        &Samples::one(f.config_version()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::stats::TenantStats;

    fn state(tenants: usize) -> SharedState {
        let mut text = String::new();
        for i in 0..tenants {
            text.push_str(&format!(
                "[[tenants]]\nname = \"t{i}\"\nschemas = [\"s{i}\"]\nprimary = \"127.0.0.1:3307\"\nreplicas = [\"127.0.0.1:3308\"]\n"
            ));
        }
        let cfg = crate::config::parse(&text, &|_| None).unwrap();
        RuntimeState::new(cfg).shared()
    }

    /// A registry of one collector, which keeps its labels between scrapes.
    fn collector(state: &SharedState, max: usize) -> Registry {
        let mut r = Registry::default();
        r.register_collector(Box::new(StateCollector {
            state: SharedState::clone(state),
            max_tenants: max,
            labeled: Default::default(),
        }));
        r
    }

    fn scrape(state: &SharedState, max: usize) -> String {
        encode(&collector(state, max))
    }

    #[test]
    fn counters_carry_tenant_and_route_labels() {
        let s = state(2);
        let rt = s.load_full();
        TenantStats::bump(&rt.shared.stats.tenant("t0", |_| true).to_replica);
        TenantStats::bump(&rt.shared.stats.tenant("t0", |_| true).to_replica);
        TenantStats::bump(&rt.shared.stats.tenant("t1", |_| true).errors);
        rt.shared.pauses.pause("t1");
        rt.shared.health.set_offline("127.0.0.1:3308", true);
        let text = scrape(&s, 1000);
        for line in [
            "# TYPE switchyard_statements counter",
            r#"switchyard_statements_total{tenant="t0",route="replica"} 2"#,
            r#"switchyard_errors_total{tenant="t1",kind="statement"} 1"#,
            r#"switchyard_errors_total{tenant="t1",kind="backend"} 0"#,
            r#"switchyard_tenant_paused{tenant="t1"} 1"#,
            r#"switchyard_tenant_paused{tenant="t0"} 0"#,
            r#"switchyard_backend_up{tenant="t0",addr="127.0.0.1:3308",role="replica"} 0"#,
            r#"switchyard_backend_up{tenant="t0",addr="127.0.0.1:3307",role="primary"} 1"#,
            r#"switchyard_reloads_total{result="failed"} 0"#,
            "switchyard_config_last_reload_successful 1",
            "switchyard_client_sessions 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    /// The sum of a counter's samples for `route` over every tenant label.
    fn statements(text: &str, route: &str) -> u64 {
        let tail = format!("route=\"{route}\"}} ");
        text.lines()
            .filter(|l| l.starts_with("switchyard_statements_total{"))
            .filter_map(|l| l.split_once(&tail).map(|(_, v)| v.parse::<u64>().unwrap()))
            .sum()
    }

    /// Past the label bound, counters never go down: a tenant keeps its label while it is
    /// counted (a new name sorting first took it, moving its counts into `_other` and out
    /// again), and a pruned tenant's counts stay in `_other` (they were dropped with it).
    /// Prometheus reads any decrease as a reset: a burst of the whole sum.
    #[test]
    fn counters_past_the_label_bound_never_go_down() {
        let s = state(0);
        let rt = s.load_full();
        let unnamed = |_: &str| false;
        let r = collector(&s, 1);
        TenantStats::bump(&rt.shared.stats.tenant("m", unnamed).to_primary);
        let first = encode(&r);
        assert!(
            first.contains(r#"switchyard_statements_total{tenant="m",route="primary"} 1"#),
            "{first}"
        );
        // `a` sorts first: `m` keeps its label, `a` is counted under `_other`.
        let a = rt.shared.stats.tenant("a", unnamed);
        TenantStats::bump(&a.to_primary);
        let second = encode(&r);
        assert!(
            second.contains(r#"switchyard_statements_total{tenant="m",route="primary"} 1"#),
            "{second}"
        );
        assert!(
            second.contains(r#"switchyard_statements_total{tenant="_other",route="primary"} 1"#),
            "{second}"
        );
        drop(a);
        // Enough tenants to prune the idle ones: their counts stay counted.
        for i in 0..5_000 {
            TenantStats::bump(&rt.shared.stats.tenant(&format!("x{i}"), unnamed).to_primary);
        }
        assert!(rt.shared.stats.snapshot().len() < 5_000, "pruned");
        let third = encode(&r);
        assert_eq!(statements(&third, "primary"), 5_002, "{third}");
    }

    #[test]
    fn tenants_past_the_bound_are_aggregated() {
        let s = state(3);
        let rt = s.load_full();
        for name in ["t0", "t1", "t2", "gone"] {
            TenantStats::bump(&rt.shared.stats.tenant(name, |_| true).to_primary);
        }
        let text = scrape(&s, 1);
        assert!(
            text.contains(r#"switchyard_statements_total{tenant="t0",route="primary"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchyard_statements_total{tenant="_other",route="primary"} 3"#),
            "{text}"
        );
        assert!(!text.contains(r#"tenant="t1""#), "{text}");
        // A 0/1 state of one server, merged: shown once, not summed (it read 2).
        assert!(
            text.contains(
                r#"switchyard_backend_up{tenant="_other",addr="127.0.0.1:3307",role="primary"} 1"#
            ),
            "{text}"
        );
    }
}
