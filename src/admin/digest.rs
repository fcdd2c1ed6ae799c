//! `SHOW QUERY DIGEST`: normalized statements with counts, route and timings. The data path
//! does not record digests yet, so this answers the columns with no rows.

use super::table::{Kind, Reply, Table};

pub fn show() -> Reply {
    Ok(Table::new(&[
        ("digest", Kind::Text),
        ("count", Kind::Count),
        ("route", Kind::Text),
        ("total_time_ms", Kind::Real),
        ("max_time_ms", Kind::Real),
    ]))
}
