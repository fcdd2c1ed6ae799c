//! Config problems: one [`ConfigError`] per problem (key path, line, message), and the list.

use std::fmt;
use std::ops::Range;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_one(self))]
pub struct ConfigError {
    /// Key path such as `tenants[1].replicas[0]` or `users[2].tenant`; empty for whole-file
    /// problems (e.g. the file cannot be read).
    pub path: String,
    /// 1-based line in the file, when the problem can be pinned to one.
    pub line: Option<usize>,
    pub message: String,
}

/// Every problem found in a config, in file order. `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(&self.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

fn render_one(e: &ConfigError) -> String {
    let mut out = String::new();
    if let Some(line) = e.line {
        out.push_str(&format!("line {line}: "));
    }
    if !e.path.is_empty() {
        out.push_str(&e.path);
        out.push_str(": ");
    }
    out.push_str(&e.message);
    out
}

fn render_all(errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors.iter().map(render_one).collect();
    lines.join("\n")
}

/// Builds errors against one source text, turning byte spans into line numbers.
pub(crate) struct Sink<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl<'t> Sink<'t> {
    pub fn new(text: &'t str) -> Self {
        Sink {
            text,
            errors: Vec::new(),
        }
    }

    pub fn text(&self) -> &'t str {
        self.text
    }

    pub fn push(&mut self, path: impl Into<String>, span: Option<Range<usize>>, message: String) {
        let line = span.map(|s| line_of(self.text, s.start));
        self.errors.push(ConfigError {
            path: path.into(),
            line,
            message,
        });
    }

    pub fn at(&mut self, path: impl Into<String>, span: Range<usize>, message: String) {
        self.push(path, Some(span), message);
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Errors sorted by line so the report reads top to bottom; ties keep discovery order.
    pub fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        ConfigErrors(self.errors)
    }
}

impl fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.errors).finish()
    }
}

/// 1-based line containing byte `offset` (clamped to the text).
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_line_path_and_message() {
        let e = ConfigError {
            path: "tenants[1].schemas[0]".into(),
            line: Some(12),
            message: "schema \"wf_acme\" is already owned by tenant \"acme\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "line 12: tenants[1].schemas[0]: schema \"wf_acme\" is already owned by tenant \"acme\""
        );
    }

    #[test]
    fn display_omits_missing_parts_and_joins_lines() {
        let errors = ConfigErrors(vec![
            ConfigError {
                path: String::new(),
                line: None,
                message: "cannot read x".into(),
            },
            ConfigError {
                path: "users[0].tenant".into(),
                line: None,
                message: "unknown tenant \"nope\"".into(),
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "cannot read x\nusers[0].tenant: unknown tenant \"nope\""
        );
    }

    #[test]
    fn lines_are_one_based() {
        let text = "a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }
}
