//! `SHOW FLEET`: every instance of the fleet as etcd knows it (address, config version,
//! uptime, sessions, the pauses it holds, backends it has OFFLINE, how old its record is
//! (rewritten on every change, else every 10 s)), live or lost; this
//! instance's own row comes from itself, so it shows even when etcd cannot be reached.

use opensrv_mysql::ErrorKind;

use super::table::{AdminError, Cell, Kind, Reply, Table};
use crate::fleet::{InstanceRecord, Member, MemberState};
use crate::state::RuntimeState;

pub async fn show(rt: &RuntimeState) -> Reply {
    let Some(fleet) = rt.shared.fleet.get() else {
        return Err(AdminError::new(
            ErrorKind::ER_NOT_SUPPORTED_YET,
            "SHOW FLEET: this instance has no [fleet] section, it runs alone",
        ));
    };
    let own = crate::fleet::own_record(fleet, rt);
    let (mut members, own_link) = match crate::fleet::members(fleet).await {
        Ok(m) => (m, "connected".to_string()),
        Err(e) => (Default::default(), e.to_string()),
    };
    let now = crate::fleet::now_ms();
    let me = Member {
        state: MemberState::Live,
        record: own,
    };
    members.insert(fleet.config.instance.clone(), me);
    let mut t = Table::new(&[
        ("instance", Kind::Text),
        ("address", Kind::Text),
        ("state", Kind::Text),
        ("etcd", Kind::Text),
        ("config_version", Kind::Int),
        ("config_error", Kind::Text),
        ("uptime_seconds", Kind::Count),
        ("sessions", Kind::Count),
        ("pauses_held", Kind::Text),
        ("offline", Kind::Text),
        ("record_age_seconds", Kind::Real),
    ]);
    for (name, m) in members {
        let r: &InstanceRecord = &m.record;
        let this = name == fleet.config.instance;
        let (state, etcd) = match (this, &m.state) {
            (true, _) => ("live (this instance)", own_link.clone()),
            (false, MemberState::Live) => ("live", "connected".to_string()),
            (false, MemberState::Lost) => (
                "lost",
                "lease expired: stopped, or cut off from etcd".to_string(),
            ),
        };
        let error = r
            .config_error
            .as_ref()
            .map(|e| format!("version {} refused: {e}", r.config_refused_version));
        let uptime = now / 1000 - r.started_unix.min(now / 1000);
        let silent = now.saturating_sub(r.heartbeat_unix_ms) as f64 / 1000.0;
        t.push(vec![
            name.into(),
            r.address.clone().into(),
            state.into(),
            etcd.into(),
            Cell::Int(r.config_version),
            error.into(),
            uptime.into(),
            r.sessions.into(),
            r.pauses_held.join(", ").into(),
            r.offline.join(", ").into(),
            Cell::Real(if this { 0.0 } else { silent }),
        ]);
    }
    Ok(t)
}
