//! The server variables the admin port reports, fixed values of the kind drivers and GUI
//! tools read at connect (`SELECT @@x`, `SHOW VARIABLES`): sessions SETs are accepted but
//! change none of them, as nothing on the admin port depends on them.

use opensrv_mysql::ErrorKind;

use super::table::{AdminError, Cell, Kind};

const TEXT: &[(&str, &str)] = &[
    ("character_set_client", "utf8mb4"),
    ("character_set_connection", "utf8mb4"),
    ("character_set_database", "utf8mb4"),
    ("character_set_filesystem", "binary"),
    ("character_set_results", "utf8mb4"),
    ("character_set_server", "utf8mb4"),
    ("character_set_system", "utf8mb3"),
    ("collation_connection", "utf8mb4_general_ci"),
    ("collation_database", "utf8mb4_general_ci"),
    ("collation_server", "utf8mb4_general_ci"),
    ("have_ssl", "DISABLED"),
    ("init_connect", ""),
    ("license", "Apache-2.0"),
    ("query_cache_type", "OFF"),
    ("sql_mode", ""),
    ("system_time_zone", "UTC"),
    ("time_zone", "SYSTEM"),
    ("transaction_isolation", "REPEATABLE-READ"),
    ("tx_isolation", "REPEATABLE-READ"),
    ("version", super::server::VERSION),
    ("version_comment", "Switchyard admin"),
    ("version_compile_os", std::env::consts::OS),
];

const NUMBERS: &[(&str, u64)] = &[
    ("auto_increment_increment", 1),
    ("auto_increment_offset", 1),
    ("autocommit", 1),
    ("error_count", 0),
    ("interactive_timeout", 28800),
    ("lower_case_table_names", 0),
    // The longest command read (`framed.rs`; a bare `SELECT @@max_allowed_packet`, which
    // opensrv-mysql would answer with 64 MiB itself, is passed on to be answered so too).
    ("max_allowed_packet", super::framed::MAX_PACKET as u64),
    ("max_execution_time", 0),
    ("net_buffer_length", 16384),
    ("net_read_timeout", 30),
    ("net_write_timeout", 60),
    ("performance_schema", 0),
    ("protocol_version", 10),
    ("query_cache_size", 0),
    ("sql_auto_is_null", 0),
    ("sql_safe_updates", 0),
    ("transaction_read_only", 0),
    ("tx_read_only", 0),
    ("wait_timeout", 28800),
    ("warning_count", 0),
];

/// Variables with no value: NULL, as on a server without that feature.
const NULLS: &[&str] = &["socket"];

/// The value of variable `name` (any case, without `@@` or scope), if the admin port knows it.
pub fn value(name: &str) -> Option<(Kind, Cell)> {
    let name = name.to_ascii_lowercase();
    if let Some((_, v)) = TEXT.iter().find(|(n, _)| *n == name) {
        return Some((Kind::Text, Cell::from(*v)));
    }
    if let Some((_, v)) = NUMBERS.iter().find(|(n, _)| *n == name) {
        return Some((Kind::Count, Cell::Count(*v)));
    }
    NULLS
        .contains(&name.as_str())
        .then_some((Kind::Text, Cell::Null))
}

/// `value`, or MySQL's ERR 1193 for a variable the admin port does not have.
pub fn lookup(name: &str) -> Result<(Kind, Cell), AdminError> {
    value(name).ok_or_else(|| {
        AdminError::new(
            ErrorKind::ER_UNKNOWN_SYSTEM_VARIABLE,
            format!("Unknown system variable '{name}' (this is Switchyard's admin port)"),
        )
    })
}

/// Every variable as (name, value as text), sorted by name: `SHOW VARIABLES`.
pub fn all() -> Vec<(&'static str, Option<String>)> {
    let mut out: Vec<(&'static str, Option<String>)> = TEXT
        .iter()
        .map(|(n, v)| (*n, Some((*v).to_owned())))
        .chain(NUMBERS.iter().map(|(n, v)| (*n, Some(v.to_string()))))
        .chain(NULLS.iter().map(|n| (*n, None)))
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_unknown_ones_are_err_1193() {
        assert_eq!(
            value("Version_Comment"),
            Some((Kind::Text, Cell::from("Switchyard admin")))
        );
        assert_eq!(value("socket"), Some((Kind::Text, Cell::Null)));
        assert_eq!(lookup("no_such").unwrap_err().kind as u16, 1193);
    }

    #[test]
    fn each_name_is_listed_once() {
        let names: Vec<_> = all().into_iter().map(|(n, _)| n).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
    }
}
