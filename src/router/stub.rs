//! TEMPORARY stand-in for the classifier while it is written on another branch.

use super::*;

#[derive(Default)]
pub struct Router;

impl Router {
    pub fn new() -> Self {
        Router
    }

    pub fn classify(&self, sql: &[u8]) -> Classification {
        let s = String::from_utf8_lossy(sql).trim().to_ascii_lowercase();
        let class = if s.starts_with("select") && !s.contains("for update") && !s.contains('@') && !s.contains("get_lock") && !s.contains("last_insert_id") {
            Class::Read
        } else if s.starts_with("use ") {
            Class::Use(s[4..].trim().trim_matches('`').to_string())
        } else if s.starts_with("set ") && !s.contains('@') {
            Class::SetSession
        } else if s == "begin" || s == "start transaction" {
            Class::Begin { read_only: false }
        } else if s == "start transaction read only" {
            Class::Begin { read_only: true }
        } else if s.starts_with("show warnings") {
            Class::LastBackend
        } else {
            Class::Primary(PrimaryReason::Unknown)
        };
        let mut effects = Effects::default();
        if s.contains("get_lock(") { effects.named_lock = LockEffect::Acquire(1); }
        if s.contains("release_lock(") { effects.named_lock = LockEffect::Release(1); }
        if s.starts_with("create temporary table ") { effects.temp_tables_created.push(s[23..].split_whitespace().next().unwrap_or("").to_string()); }
        if s.starts_with("drop temporary table ") { effects.tables_dropped.push(s[21..].split_whitespace().next().unwrap_or("").to_string()); }
        Classification { class, hints: Hints::default(), effects }
    }
}
