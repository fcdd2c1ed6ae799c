//! `SHOW QUERY DIGEST`: normalized statements with counts, where they ran, and timings,
//! the most time-consuming first.

use super::table::{Cell, Kind, Reply, Table};
use crate::state::RuntimeState;

pub fn show(rt: &RuntimeState) -> Reply {
    let mut t = Table::new(&[
        ("digest", Kind::Text),
        ("count", Kind::Count),
        ("route", Kind::Text),
        ("total_time_ms", Kind::Real),
        ("max_time_ms", Kind::Real),
    ]);
    for d in rt.shared.digests.snapshot() {
        let route = match (d.to_primary, d.to_replica) {
            (_, 0) => "primary".to_owned(),
            (0, _) => "replica".to_owned(),
            (p, r) => format!("primary {p}, replica {r}"),
        };
        t.push(vec![
            Cell::Text(d.text),
            Cell::Count(d.count),
            Cell::Text(route),
            Cell::Real(d.total.as_secs_f64() * 1e3),
            Cell::Real(d.max.as_secs_f64() * 1e3),
        ]);
    }
    Ok(t)
}
