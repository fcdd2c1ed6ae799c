//! Reading the TOML text into the raw schema, one section and one array element at a time.
//!
//! Reading piecewise means one bad table does not hide the problems in the others.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::Sink;
use super::raw::{
    RawAdmin, RawCluster, RawDefaults, RawFleet, RawMonitor, RawServer, RawTenant, RawUser,
    SECTIONS,
};

/// One element of an array of tables, with its position in the file's array (kept even when
/// earlier elements failed to parse, so paths match what the user wrote).
#[derive(Debug)]
pub struct Indexed<T> {
    pub index: usize,
    pub value: T,
}

#[derive(Debug, Default)]
pub struct RawDocument {
    pub server: RawServer,
    pub admin: Option<RawAdmin>,
    pub monitor: Option<RawMonitor>,
    pub defaults: RawDefaults,
    pub clusters: Vec<Indexed<RawCluster>>,
    pub tenants: Vec<Indexed<RawTenant>>,
    pub users: Vec<Indexed<RawUser>>,
    pub fleet: Option<RawFleet>,
    /// Names of `[[tenants]]` that failed to parse: users naming them are not also reported
    /// as bound to an unknown tenant.
    pub broken_tenant_names: Vec<String>,
}

/// The most parts a dotted key or table header may have (`a.b.c`: 3). The TOML parser
/// bounds nesting by arrays and inline tables only; a key of 50,000 parts (100 KB) nests
/// tables so deep that reading, writing or dropping them overflows the stack, which ends
/// the process with every session on it.
pub const MAX_KEY_PARTS: usize = 64;

/// Where `text` nests tables more than [`MAX_KEY_PARTS`] deep: the byte offset of the
/// line. A key's dots count, outside strings and comments, on top of the brackets and
/// braces it is inside (an inline table's dotted key in an inline table's...).
pub fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut i, mut dots, mut line) = (0, 0, 0);
    // The depth each open bracket or brace began at; `base` the innermost's; `key` the dots
    // of the key whose value is being read (`a.b = {`: its table is two deeper).
    let mut open: Vec<usize> = Vec::new();
    let (mut base, mut key) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line = i + 1;
                if open.is_empty() {
                    base = 0;
                }
                (dots, key) = (0, 0);
            }
            b'{' | b'[' => {
                open.push(base);
                base += key + dots + 1;
                (dots, key) = (0, 0);
            }
            b'}' | b']' => {
                base = open.pop().unwrap_or(0);
                (dots, key) = (0, 0);
            }
            b'=' => (dots, key) = (0, dots),
            b',' => (dots, key) = (0, 0),
            b'.' => dots += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                i = string_end(b, i, q);
                continue;
            }
            _ => {}
        }
        if base + dots >= MAX_KEY_PARTS {
            return Some(line);
        }
        i += 1;
    }
    None
}

/// The offset just past the string opening at `i` (quote `q`, tripled for a multi-line one).
fn string_end(b: &[u8], i: usize, q: u8) -> usize {
    let triple = b.get(i..i + 3) == Some(&[q, q, q][..]);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < b.len() {
        // A one-line string ends at its line's end, escaped or not (as toml reads it).
        if b[j] == b'\n' && !triple {
            return j;
        }
        if q == b'"' && b[j] == b'\\' {
            j += if !triple && b.get(j + 1) == Some(&b'\n') {
                1
            } else {
                2
            };
            continue;
        }
        if b[j] == q && !triple {
            return j + 1;
        }
        if triple && b.get(j..j + 3) == Some(&[q, q, q][..]) {
            // Up to two more quotes close it too (`'''a''''` is `a'`).
            let mut end = j + 3;
            while end < j + 5 && b.get(end) == Some(&q) {
                end += 1;
            }
            return end;
        }
        j += 1;
    }
    b.len()
}

/// What [`too_deep`] refuses, for its error.
pub fn too_deep_message() -> String {
    format!("a dotted key or table name of more than {MAX_KEY_PARTS} parts")
}

/// Parses the text; `None` when it is not valid TOML at all (every syntax error is reported).
pub fn read_document(sink: &mut Sink<'_>) -> Option<RawDocument> {
    if let Some(at) = too_deep(sink.text()) {
        sink.push("", Some(at..at), too_deep_message());
        return None;
    }
    let (root, syntax_errors) = DeTable::parse_recoverable(sink.text());
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            let message = syntax_message(sink.text(), &e);
            sink.push("", e.span(), message);
        }
        return None;
    }
    let mut doc = RawDocument::default();
    for (key, value) in root.get_ref().iter() {
        read_section(sink, &mut doc, key, value);
    }
    Some(doc)
}

fn read_section(
    sink: &mut Sink<'_>,
    doc: &mut RawDocument,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) {
    let name: &str = key.get_ref();
    match name {
        "server" => doc.server = section(sink, name, value).unwrap_or_default(),
        "admin" => doc.admin = section(sink, name, value),
        "monitor" => doc.monitor = section(sink, name, value),
        "defaults" => doc.defaults = section(sink, name, value).unwrap_or_default(),
        "clusters" => doc.clusters = array_section(sink, name, value),
        "tenants" => {
            doc.tenants = array_section(sink, name, value);
            doc.broken_tenant_names = broken_names(value, &doc.tenants);
        }
        "users" => doc.users = array_section(sink, name, value),
        "fleet" => doc.fleet = section(sink, name, value),
        _ => sink.at(
            name,
            key.span(),
            format!(
                "unknown key \"{name}\" (expected one of: {})",
                SECTIONS.join(", ")
            ),
        ),
    }
}

/// Deserializes one section. serde stops at the first unknown key, so each one is reported,
/// dropped, and the section tried again: every misspelt key gets listed and the rest of the
/// section still gets checked. Any other error ends the section.
fn section<T: DeserializeOwned>(
    sink: &mut Sink<'_>,
    path: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<T> {
    let mut value = value.clone();
    loop {
        let e = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        report_serde_error(sink, path, &value, &e);
        let dropped = e.message().starts_with("unknown field")
            && e.span()
                .is_some_and(|span| remove_key_at(&mut value, &span));
        if !dropped {
            return None;
        }
    }
}

/// Removes the key whose name lies at `span`; false if there is none (so retrying would
/// loop forever).
fn remove_key_at(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    match value.get_mut() {
        DeValue::Table(table) => {
            let hit = table
                .iter()
                .find(|(key, _)| contains(&key.span(), span))
                .map(|(key, _)| key.get_ref().to_string());
            if let Some(name) = hit {
                return table.remove(name.as_str()).is_some();
            }
            table
                .iter_mut()
                .any(|(_, child)| contains(&child.span(), span) && remove_key_at(child, span))
        }
        DeValue::Array(items) => items
            .iter_mut()
            .any(|child| contains(&child.span(), span) && remove_key_at(child, span)),
        _ => false,
    }
}

/// Reads `[[name]]`, each element on its own so every bad element gets reported.
fn array_section<T: DeserializeOwned>(
    sink: &mut Sink<'_>,
    name: &str,
    value: &Spanned<DeValue<'_>>,
) -> Vec<Indexed<T>> {
    let Some(items) = value.get_ref().as_array() else {
        sink.at(
            name,
            value.span(),
            format!(
                "expected an array of tables ([[{name}]]), found a {}",
                value.get_ref().type_str()
            ),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let path = format!("{name}[{index}]");
            section(sink, &path, item).map(|value| Indexed { index, value })
        })
        .collect()
}

fn broken_names(value: &Spanned<DeValue<'_>>, parsed: &[Indexed<RawTenant>]) -> Vec<String> {
    let Some(items) = value.get_ref().as_array() else {
        return Vec::new();
    };
    let parsed: std::collections::HashSet<usize> = parsed.iter().map(|t| t.index).collect();
    items
        .iter()
        .enumerate()
        .filter(|(index, _)| !parsed.contains(index))
        .filter_map(|(_, item)| {
            item.get_ref()
                .get("name")?
                .get_ref()
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// Turns a serde error into a config error whose path names the deepest key the error's
/// span falls in, e.g. `tenants[0].replicas[1].weight`.
fn report_serde_error(
    sink: &mut Sink<'_>,
    base: &str,
    value: &Spanned<DeValue<'_>>,
    e: &toml::de::Error,
) {
    let message = clean_message(e.message());
    let span = e.span();
    let mut path = match &span {
        Some(span) => locate(value, span, base.to_string()),
        None => base.to_string(),
    };
    // A missing field has no span of its own: the error points at the enclosing table.
    if let Some(field) = missing_field(&message) {
        path = format!("{path}.{field}");
    }
    sink.push(path, span.or_else(|| Some(value.span())), message);
}

fn locate(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: String) -> String {
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, child) in table.iter() {
                let child_path = format!("{path}.{}", key.get_ref());
                if contains(&key.span(), span) {
                    return child_path;
                }
                if contains(&child.span(), span) {
                    return locate(child, span, child_path);
                }
            }
            path
        }
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, child)| contains(&child.span(), span))
            .map(|(i, child)| locate(child, span, format!("{path}[{i}]")))
            .unwrap_or(path),
        _ => path,
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// toml's "duplicate key" does not say which key; its span does. Only keys are quoted
/// back: other spans may cover values, and a value may be a password.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = clean_message(e.message());
    let key = e
        .span()
        .and_then(|span| text.get(span))
        .filter(|k| !k.is_empty() && k.len() <= 64 && !k.contains('\n'));
    match key {
        Some(key) if message == "duplicate key" => format!("duplicate key `{key}`"),
        _ => message,
    }
}

/// A TOML syntax error for places that show no source (a fleet document's check): the
/// line and what is wrong, never the line's text (toml's own rendering quotes it, and the
/// line may hold a password).
pub fn syntax_error_at(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|span| super::error::line_of(text, span.start));
    match line {
        Some(line) => format!("line {line}: {}", syntax_message(text, e)),
        None => syntax_message(text, e),
    }
}

/// serde's words, without the value it quotes for a wrong type (`invalid type: integer
/// `12345678`, expected a string`): the value may be a password written without quotes.
fn clean_message(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let (Some(open), Some(close)) = (rest.find('`'), rest.rfind('`')) {
            if open < close {
                let kind = rest[..open].trim_end();
                return format!("invalid type: {kind}{}", &rest[close + 1..]);
            }
        }
    }
    message.to_string()
}
