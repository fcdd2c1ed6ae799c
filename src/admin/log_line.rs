//! The human log format's fields kept on one line: a control character in a value is
//! written escaped, so what a client sent cannot start a log line of its own.

use std::fmt::{self, Write};

use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::FormatFields;

/// [`DefaultFields`] with control characters escaped (`\n` as `\\n`). Values logged with
/// `%` are written as their `Display` gives them, and some hold what a client chose: a
/// refused login's message quotes its user name, a slow statement's fingerprint keeps
/// quoted identifiers, an admin login names its user. A newline in one wrote a line that
/// an operator (or a log shipper) takes for Switchyard's own. The JSON format escapes them
/// already.
#[derive(Debug, Default)]
pub struct OneLineFields(DefaultFields);

impl<'w> FormatFields<'w> for OneLineFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut escaped = Escaped(&mut writer);
        self.0.format_fields(Writer::new(&mut escaped), fields)
    }
}

/// Writes through to `W` with each control character escaped.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(self.0, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        let mut w = Escaped(&mut out);
        w.write_str("x'@'h'\n2025-01-01T00:00:00Z  INFO forged\r\u{7}é\tend")
            .unwrap();
        assert_eq!(
            out,
            "x'@'h'\\n2025-01-01T00:00:00Z  INFO forged\\r\\u{7}é\\tend"
        );
    }
}
