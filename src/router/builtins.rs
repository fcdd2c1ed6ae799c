//! The server's built-in function names: an unqualified call of any other name is a stored
//! function's, which may write, lock or set variables.

use std::collections::HashMap;
use std::sync::LazyLock;

/// How a listed name is read by the server (see `builtins.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// A built-in however spelt, in backticks too.
    Native,
    /// Read by the grammar itself: a built-in unquoted only.
    Keyword,
    /// A built-in of MySQL or a later MariaDB.
    Other,
}

/// The list as shipped: `NAME kind` lines, `#` comments.
pub(crate) const LIST: &str = include_str!("builtins.txt");

static NAMES: LazyLock<HashMap<&'static str, Builtin, rustc_hash::FxBuildHasher>> =
    LazyLock::new(|| entries().collect());

/// The list's entries, in its order.
pub(crate) fn entries() -> impl Iterator<Item = (&'static str, Builtin)> {
    LIST.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            let kind = match kind.trim() {
                "native" => Builtin::Native,
                "keyword" => Builtin::Keyword,
                "other" => Builtin::Other,
                _ => return None,
            };
            Some((name, kind))
        })
}

/// Whether a call of `name` (unqualified; `quoted`: in backticks) runs a built-in.
pub(crate) fn is_builtin(name: &[u8], quoted: bool) -> bool {
    // The longest built-in name is 33 bytes.
    let mut buf = [0u8; 48];
    let Some(upper) = buf.get_mut(..name.len()) else {
        return false;
    };
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    let Ok(upper) = std::str::from_utf8(upper) else {
        return false;
    };
    match NAMES.get(upper) {
        Some(Builtin::Native | Builtin::Other) => true,
        Some(Builtin::Keyword) => !quoted,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_any_case_and_quoting_as_the_server_reads_them() {
        assert!(is_builtin(b"concat", false));
        assert!(is_builtin(b"Concat", true));
        assert!(is_builtin(b"COUNT", false));
        assert!(!is_builtin(b"count", true));
        assert!(is_builtin(b"now", false));
        assert!(!is_builtin(b"now", true));
        assert!(is_builtin(b"regexp_like", false));
        assert!(!is_builtin(b"next_doc_number", false));
        assert!(!is_builtin(&[b'A'; 200], false));
        assert!(!is_builtin("cöncat".as_bytes(), false));
    }

    #[test]
    fn every_line_is_an_entry_and_names_are_upper_case_and_unique() {
        let lines = LIST
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(entries().count(), lines);
        assert_eq!(NAMES.len(), lines);
        assert!(entries().all(|(n, _)| n
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')));
        assert!(entries().all(|(n, _)| n.len() <= 48));
    }
}
