//! The shared config document (`state/config`): `switchyard config push` validates and
//! stores it (etcd numbers its versions); each instance lays its own `[fleet]` and listen
//! addresses over it, validates the result as RELOAD would, and applies it or refuses it
//! and says why in its record. `${VAR}`s are expanded by each instance from its own
//! environment: secrets never go to etcd.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, KeyValue, Txn, TxnOp, TxnOpResponse};

use super::keys::Keys;
use super::record::InstanceRecord;
use super::{within, Fleet, FleetError};
use crate::config::{self, Config};
use crate::state::lock::Unpoisoned;
use crate::state::{reload, SharedState};

/// Keys of `[server]` that stay each instance's own: its sockets are bound at start.
const OWN_SERVER_KEYS: [&str; 3] = ["listen", "admin_listen", "http_listen"];
/// Keys of `[server]` about the instance's machine and what stands in front of it (its
/// cores, its balancer): where the instance's own file sets one, that value wins over the
/// document's. A fleet behind HAProxy sets `reset_after_quit = false` there, which a
/// document made for instances without a balancer would otherwise undo.
const PLACE_SERVER_KEYS: [&str; 3] = ["threads", "proxy_protocol", "reset_after_quit"];

/// What a variable unset where the document is pushed stands for while it is checked.
const UNSET_PLACEHOLDER: &str = "unset-at-push";

/// The document an instance runs: `pushed`, with `local`'s `[fleet]` and listen addresses.
pub fn compose(local: &str, pushed: &str) -> Result<String, String> {
    for (text, what) in [(pushed, "the document"), (local, "the instance's own file")] {
        if let Some(at) = crate::config::too_deep(text) {
            let line = crate::config::line_of(text, at);
            let why = crate::config::too_deep_message();
            return Err(format!("{what}: line {line}: {why}"));
        }
    }
    let mut doc: toml::Table = pushed.parse().map_err(|e| {
        let why = crate::config::syntax_error_at(pushed, &e);
        format!("the document is not TOML: {why}")
    })?;
    if doc.contains_key("fleet") {
        return Err(
            "the document has a [fleet] section: [fleet] names one instance and stays in each instance's own file"
                .into(),
        );
    }
    let own: toml::Table = local.parse().map_err(|e| {
        let why = crate::config::syntax_error_at(local, &e);
        format!("the instance's own file is not TOML: {why}")
    })?;
    if let Some(f) = own.get("fleet") {
        doc.insert("fleet".into(), f.clone());
    }
    let own_server = own.get("server").and_then(toml::Value::as_table);
    let server = doc
        .entry("server")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(server) = server.as_table_mut() {
        for key in OWN_SERVER_KEYS {
            match own_server.and_then(|s| s.get(key)) {
                Some(v) => server.insert(key.into(), v.clone()),
                None => server.remove(key),
            };
        }
        for key in PLACE_SERVER_KEYS {
            if let Some(v) = own_server.and_then(|s| s.get(key)) {
                server.insert(key.into(), v.clone());
            }
        }
    }
    toml::to_string(&doc)
        .map_err(|e| format!("cannot lay the instance's settings over the document: {e}"))
}

/// Checks a document before it is pushed: valid on its own (variables unset here count as
/// set), no `[fleet]`.
pub fn check_for_push(text: &str) -> Result<Config, String> {
    compose("", text)?;
    let env = |name: &str| Some(std::env::var(name).unwrap_or_else(|_| UNSET_PLACEHOLDER.into()));
    config::parse(text, &env).map_err(|e| e.to_string())
}

/// How a document reached the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A change the watch saw.
    Watched,
    /// The whole state read anew after a (re)connect: a document refused before is
    /// validated again (what failed may pass now: a file caught mid-rotation, fixed).
    Reread,
    /// The copy `fleet.document_cache` kept, at a start while etcd is away: applied only
    /// if nothing from etcd was yet.
    Cached,
}

/// Validates a pushed document on this instance, then applies it or records the refusal.
pub fn apply(fleet: &Arc<Fleet>, state: &SharedState, kv: &KeyValue, arrival: Arrival) {
    // The revision of the write, not the key's version: that starts at 1 again once the
    // key is deleted, and a document pushed then was taken for the one already running.
    apply_version(fleet, state, kv.mod_revision(), kv.value(), arrival);
}

fn apply_version(
    fleet: &Arc<Fleet>,
    state: &SharedState,
    version: i64,
    bytes: &[u8],
    arrival: Arrival,
) {
    let refused = fleet.refusal().map(|(v, _)| v);
    if version == fleet.config_version()
        || (Some(version) == refused && arrival == Arrival::Watched)
    {
        return;
    }
    let rt = state.load_full();
    let _one_at_a_time = rt.shared.reload_lock.locked();
    if arrival == Arrival::Cached && fleet.read_etcd.load(Ordering::Acquire) {
        return;
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("the document is not UTF-8 text: {e}"));
    let applied = text
        .and_then(|text| validate(fleet, text))
        .and_then(|config| reload::apply(state, config).map_err(|e| e.to_string()));
    match applied {
        Ok(report) => {
            rt.shared.reloads.record(true);
            fleet.config_version.store(version, Ordering::Release);
            *fleet.refusal.locked() = None;
            tracing::info!(version, ?arrival, %report, "fleet: config document applied");
            if arrival != Arrival::Cached {
                keep(fleet, version, bytes);
            }
        }
        Err(e) => {
            rt.shared.reloads.record(false);
            tracing::error!(version, error = %e, "fleet: config document refused, the running config stays");
            *fleet.refusal.locked() = Some((version, e));
        }
    }
}

/// The first line of a cached document: the version it was.
const CACHE_HEADER: &str = "# switchyard fleet document, version ";

/// Keeps the document just applied in `fleet.document_cache` (written whole, then renamed
/// over the last: a crash never leaves half of one).
fn keep(fleet: &Fleet, version: i64, bytes: &[u8]) {
    let Some(path) = &fleet.config.document_cache else {
        return;
    };
    let mut text = format!("{CACHE_HEADER}{version}\n").into_bytes();
    text.extend_from_slice(bytes);
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "fleet: cannot keep the config document: a start while etcd is away will serve the local file");
    }
}

/// The document key is gone from etcd: the local file serves again at the next start.
/// (Under the reload lock, as a cached copy is applied: that one sees etcd was read.)
pub fn forget(fleet: &Fleet, state: &SharedState) {
    let rt = state.load_full();
    let _one_at_a_time = rt.shared.reload_lock.locked();
    if let Some(path) = &fleet.config.document_cache {
        if std::fs::remove_file(path).is_ok() {
            tracing::info!(path = %path.display(), "fleet: no config document in etcd: the cached copy removed");
        }
    }
}

/// At a start while etcd is away: the document kept in `fleet.document_cache`, if any, is
/// applied (unless etcd answered meanwhile); what runs then is what ran before.
pub fn apply_cached(fleet: &Arc<Fleet>, state: &SharedState) -> Option<i64> {
    let path = fleet.config.document_cache.as_ref()?;
    let text = std::fs::read(path).ok()?;
    let end = text.iter().position(|&b| b == b'\n')?;
    let first = std::str::from_utf8(&text[..end]).ok()?;
    let version: i64 = first.strip_prefix(CACHE_HEADER)?.trim().parse().ok()?;
    apply_version(fleet, state, version, &text[end + 1..], Arrival::Cached);
    (fleet.config_version() == version).then_some(version)
}

fn validate(fleet: &Fleet, pushed: &str) -> Result<Config, String> {
    let local = match &fleet.local_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => String::new(),
    };
    let text = compose(&local, pushed)?;
    let config =
        config::parse(&text, &|name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
    // One without [admin] on an instance with an admin port is refused by the reload.
    // The files it names (TLS, CA, RSA key) must load here too: `reload::apply` loads them
    // and refuses the document if one does not.
    Ok(config)
}

/// What became of a pushed document.
#[derive(Debug, Default)]
pub struct PushReport {
    pub version: i64,
    pub applied: Vec<String>,
    /// Instances that refused it, and why.
    pub refused: Vec<(String, String)>,
    /// Live instances that had not reported either when the wait ended.
    pub pending: Vec<String>,
    /// From the write to the last instance's report.
    pub took: Duration,
}

/// Stores `text` as the fleet's document, then waits (at most `wait`) until every live
/// instance applied or refused it.
pub async fn push(
    endpoints: &[String],
    fleet: &str,
    text: &str,
    wait: Duration,
    limit: Duration,
) -> Result<PushReport, FleetError> {
    check_for_push(text).map_err(FleetError::Document)?;
    let options = ConnectOptions::new().with_connect_timeout(limit);
    let mut client = within(limit, "connect", Client::connect(endpoints, Some(options))).await?;
    let keys = Keys::new(fleet);
    let txn = Txn::new().and_then([
        TxnOp::put(keys.config(), text, None),
        TxnOp::get(keys.config(), None),
    ]);
    let started = Instant::now();
    let resp = within(limit, "document write", client.txn(txn)).await?;
    let version = resp
        .op_responses()
        .into_iter()
        .find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(KeyValue::mod_revision),
            _ => None,
        })
        .unwrap_or(0);
    let mut report = PushReport {
        version,
        ..PushReport::default()
    };
    let deadline = started + wait;
    loop {
        let live = live_records(&mut client, &keys, limit).await?;
        report.applied.clear();
        report.refused.clear();
        report.pending.clear();
        for r in live {
            if r.config_version == version {
                report.applied.push(r.name);
            } else if r.config_refused_version == version {
                let why = r.config_error.unwrap_or_default();
                report.refused.push((r.name, why));
            } else {
                report.pending.push(r.name);
            }
        }
        report.took = started.elapsed();
        // No instance live yet (a fleet starting beside its first push): waited for too.
        let reported = !report.applied.is_empty() || !report.refused.is_empty();
        if (reported && report.pending.is_empty()) || Instant::now() >= deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn live_records(
    client: &mut Client,
    keys: &Keys,
    limit: Duration,
) -> Result<Vec<InstanceRecord>, FleetError> {
    let opts = etcd_client::GetOptions::new().with_prefix();
    let resp = within(limit, "instance list", client.get(keys.live(), Some(opts))).await?;
    Ok(resp
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document nested past the limit is refused before toml reads it (read, it would
    /// overflow the stack of every instance watching the document).
    #[test]
    fn a_document_nested_too_deep_is_refused() {
        let deep = format!("[server]\n{}a = 1\n", "a.".repeat(50_000));
        let err = compose("[fleet]\nname = \"f\"\n", &deep).unwrap_err();
        assert!(err.starts_with("the document: line 2: "), "{err}");
        let err = compose(&deep, "[server]\n").unwrap_err();
        assert!(err.starts_with("the instance's own file: line 2"), "{err}");
    }

    /// toml's rendering of a syntax error quotes the line, which went to the pusher's
    /// output, the instance's log and (as its config error) etcd and SHOW FLEET.
    #[test]
    fn a_document_that_is_not_toml_is_named_by_line_without_its_text() {
        let pushed = "[[users]]\nname = \"a\"\npassword = \"hunter2\n";
        let e = compose("", pushed).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = compose("[admin]\npassword = 'hunter3\n", "").unwrap_err();
        assert!(e.contains("line 2") && !e.contains("hunter3"), "{e}");
    }

    #[test]
    fn the_instance_keeps_its_fleet_section_and_sockets() {
        let local = "[server]\nlisten = \"127.0.0.1:7001\"\n[fleet]\nname = \"f\"\netcd = [\"127.0.0.1:2379\"]\ninstance = \"a\"\n";
        let pushed = "[server]\nlisten = \"0.0.0.0:6033\"\nadmin_listen = \"0.0.0.0:6032\"\nmax_connections = 7\n";
        let text = compose(local, pushed).unwrap();
        let t: toml::Table = text.parse().unwrap();
        assert_eq!(t["server"]["listen"].as_str(), Some("127.0.0.1:7001"));
        assert!(t["server"].get("admin_listen").is_none());
        assert_eq!(t["server"]["max_connections"].as_integer(), Some(7));
        assert_eq!(t["fleet"]["instance"].as_str(), Some("a"));
    }

    /// deploy/fleet/instance.toml's `reset_after_quit = false` (HAProxy in front) was
    /// replaced by the pushed document's default.
    #[test]
    fn the_instance_keeps_what_depends_on_its_machine_and_balancer() {
        let local = "[server]\nreset_after_quit = false\nthreads = 3\n";
        let pushed =
            "[server]\nthreads = 1\nproxy_protocol = [\"10.0.0.0/8\"]\nmax_connections = 7\n";
        let t: toml::Table = compose(local, pushed).unwrap().parse().unwrap();
        assert_eq!(t["server"]["reset_after_quit"].as_bool(), Some(false));
        assert_eq!(t["server"]["threads"].as_integer(), Some(3));
        // Not set locally: the document's.
        assert_eq!(
            t["server"]["proxy_protocol"][0].as_str(),
            Some("10.0.0.0/8")
        );
        assert_eq!(t["server"]["max_connections"].as_integer(), Some(7));
        let t: toml::Table = compose("", pushed).unwrap().parse().unwrap();
        assert!(t["server"].get("reset_after_quit").is_none());
    }

    #[test]
    fn a_document_with_a_fleet_section_is_refused() {
        let e = compose("", "[fleet]\nname = \"f\"\n").unwrap_err();
        assert!(e.contains("[fleet]"), "{e}");
        assert!(check_for_push("[server\n").is_err());
    }
}
