//! `SELECT @@var, ...`: the few server variables client libraries read right after they
//! connect (the mysql client's version comment, mysql_async's packet size and timeout).

use opensrv_mysql::ErrorKind;

use super::table::{AdminError, Cell, Kind, Reply, Table};

pub fn select(names: &[String]) -> Reply {
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in names {
        let bare = item.trim_start_matches('@');
        let bare = bare.rsplit('.').next().unwrap_or(bare).to_ascii_lowercase();
        let (kind, cell) = match bare.as_str() {
            "version_comment" => (Kind::Text, Cell::from("Switchyard admin")),
            "version" => (Kind::Text, Cell::from(super::server::VERSION)),
            "max_allowed_packet" => (Kind::Count, Cell::Count(16 * 1024 * 1024)),
            "wait_timeout" | "interactive_timeout" => (Kind::Count, Cell::Count(28800)),
            "autocommit" => (Kind::Count, Cell::Count(1)),
            "socket" => (Kind::Text, Cell::Null),
            _ => {
                return Err(AdminError::new(
                    ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
                    format!("Unknown system variable '{bare}' (this is Switchyard's admin port)"),
                ))
            }
        };
        columns.push((item.as_str(), kind));
        row.push(cell);
    }
    let mut t = Table::new(&columns);
    t.push(row);
    Ok(t)
}
