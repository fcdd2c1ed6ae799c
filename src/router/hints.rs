//! Routing hints read from the comments that come before a statement's first keyword.

use std::time::Duration;

use super::lexer::comment_end;
use super::{Hints, RouteHint};

/// Reads hints from the leading comments; returns them and the offset where SQL (or an
/// executable comment, which is SQL) starts.
pub(crate) fn leading(sql: &[u8]) -> (Hints, usize) {
    let mut hints = Hints::default();
    let mut pos = 0;
    while pos < sql.len() {
        let rest = &sql[pos..];
        if rest[0].is_ascii_whitespace() || rest[0] == 0x0b {
            pos += 1;
        } else if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
            break;
        } else if rest.starts_with(b"/*") {
            let end = comment_end(sql, pos);
            let body_end = if sql[..end].ends_with(b"*/") && end >= pos + 4 {
                end - 2
            } else {
                end
            };
            read_comment(&sql[pos + 2..body_end], &mut hints);
            pos = end;
        } else if rest[0] == b'#' || super::lexer::opens_dash_comment(rest) {
            pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        } else {
            break;
        }
    }
    (hints, pos)
}

/// Reads `key=value` items separated by spaces or commas; words without `=` are prose and
/// ignored, so ordinary comments (`/* app: checkout */`) cost nothing.
fn read_comment(body: &[u8], hints: &mut Hints) {
    let text = String::from_utf8_lossy(body);
    let mut items = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .peekable();
    while let Some(item) = items.next() {
        // Accept `key = value` and `key= value` as well as `key=value`.
        let (key, value) = match item.split_once('=') {
            Some((k, "")) => (k, items.next().unwrap_or("")),
            Some((k, v)) => (k, v),
            None if items.peek().is_some_and(|n| n.starts_with('=')) => {
                let next = items.next().unwrap_or("=");
                let v = match &next[1..] {
                    "" => items.next().unwrap_or(""),
                    v => v,
                };
                (item, v)
            }
            None => continue,
        };
        apply(key, value, hints);
    }
}

fn apply(key: &str, value: &str, hints: &mut Hints) {
    let ok = match key.to_ascii_lowercase().as_str() {
        "route" => match value.to_ascii_lowercase().as_str() {
            "primary" => set(&mut hints.route, RouteHint::Primary),
            "replica" => set(&mut hints.route, RouteHint::Replica),
            _ => false,
        },
        "consistency" if !value.is_empty() => set(&mut hints.consistency, value.to_string()),
        "max_lag" => parse_lag(value).is_some_and(|d| set(&mut hints.max_lag, d)),
        "pin" => match value.to_ascii_lowercase().as_str() {
            "on" => set(&mut hints.pin, true),
            "off" => set(&mut hints.pin, false),
            _ => false,
        },
        _ => false,
    };
    if !ok {
        hints.unknown.push(format!("{key}={value}"));
    }
}

fn set<T>(slot: &mut Option<T>, v: T) -> bool {
    *slot = Some(v);
    true
}

/// `500ms`, `2s`.
fn parse_lag(v: &str) -> Option<Duration> {
    let v = v.to_ascii_lowercase();
    if let Some(n) = v.strip_suffix("ms") {
        return n.parse().ok().map(Duration::from_millis);
    }
    v.strip_suffix('s')?.parse().ok().map(Duration::from_secs)
}
