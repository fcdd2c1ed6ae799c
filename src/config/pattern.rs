//! Name patterns with one `{tenant}` placeholder (`wf_{tenant}`, `{tenant}_app`): how a
//! schema or a user name says which tenant it belongs to, so a new workspace needs no config.

use std::fmt;

/// The placeholder a pattern holds exactly once.
pub const PLACEHOLDER: &str = "{tenant}";

/// `prefix{tenant}suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    prefix: String,
    suffix: String,
}

impl NamePattern {
    /// A pattern from its written form, or why it is not one. A bare `{tenant}` would claim
    /// every name (`mysql`, `information_schema`), so some literal text is required.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((prefix, suffix)) = text.split_once(PLACEHOLDER) else {
            return Err(format!("\"{text}\" has no {PLACEHOLDER} placeholder"));
        };
        if suffix.contains(PLACEHOLDER) {
            return Err(format!("\"{text}\" has {PLACEHOLDER} more than once"));
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err(format!(
                "\"{text}\" would match every name: add a prefix or suffix, e.g. \"wf_{PLACEHOLDER}\""
            ));
        }
        if text.contains(['{', '}']) && (prefix.contains(['{', '}']) || suffix.contains(['{', '}']))
        {
            return Err(format!(
                "\"{text}\" has a placeholder other than {PLACEHOLDER}"
            ));
        }
        Ok(NamePattern {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
        })
    }

    /// Whether a written name holds the placeholder at all (a pattern, not a plain name).
    pub fn is_pattern(text: &str) -> bool {
        text.contains(PLACEHOLDER)
    }

    /// The tenant name `name` spells, if it matches: what stands for the placeholder, not
    /// empty and without whitespace.
    pub fn capture<'n>(&self, name: &'n str) -> Option<&'n str> {
        let rest = name.strip_prefix(self.prefix.as_str())?;
        let tenant = rest.strip_suffix(self.suffix.as_str())?;
        valid_tenant(tenant).then_some(tenant)
    }

    /// As [`capture`](Self::capture), ignoring ASCII case: the name may reach a server that
    /// folds case (`lower_case_table_names`), so isolation must not be fooled by case.
    pub fn capture_any_case<'n>(&self, name: &'n str) -> Option<&'n str> {
        let (p, s) = (self.prefix.len(), self.suffix.len());
        if name.len() < p + s || !name.is_char_boundary(p) || !name.is_char_boundary(name.len() - s)
        {
            return None;
        }
        let (head, rest) = name.split_at(p);
        let (tenant, tail) = rest.split_at(rest.len() - s);
        let fits =
            head.eq_ignore_ascii_case(&self.prefix) && tail.eq_ignore_ascii_case(&self.suffix);
        (fits && valid_tenant(tenant)).then_some(tenant)
    }

    /// Whether some name is captured by both patterns as two different tenants (ASCII case
    /// aside, as isolation compares): `wf_{tenant}` and `wf_{tenant}_rb` both take
    /// `wf_acme_rb`, as tenants `acme_rb` and `acme`. So when one prefix starts the other,
    /// one suffix ends the other, and what the longer ones add could be part of a tenant.
    pub fn overlaps(&self, other: &NamePattern) -> bool {
        fn extra(a: &str, b: &str, at_start: bool) -> Option<String> {
            let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            let fits = if at_start {
                long.starts_with(&short)
            } else {
                long.ends_with(&short)
            };
            let rest = if at_start {
                long.get(short.len()..)
            } else {
                long.get(..long.len() - short.len())
            };
            fits.then(|| rest.unwrap_or_default().to_string())
        }
        let tenant_part = |s: &str| s.is_empty() || valid_tenant(s);
        match (
            extra(&self.prefix, &other.prefix, true),
            extra(&self.suffix, &other.suffix, false),
        ) {
            (Some(p), Some(s)) => {
                !(p.is_empty() && s.is_empty()) && tenant_part(&p) && tenant_part(&s)
            }
            _ => false,
        }
    }

    /// The name of `tenant` under this pattern.
    pub fn expand(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.prefix, self.suffix)
    }
}

/// A tenant name a pattern may capture: letters, digits, `_`, `$` and `-`, as workspace
/// names are. Quotes, dots, blanks and braces would make names that mean something else in
/// SQL, logs or the config (`{tenant}` itself). At most 64 characters, a schema name's
/// limit: an open cluster makes a tenant (and its counters, and its `/metrics` series) of
/// every name a client tries, before the server has said whether the schema exists.
pub fn valid_tenant(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{PLACEHOLDER}{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_the_tenant() {
        let p = NamePattern::parse("wf_{tenant}").unwrap();
        assert_eq!(p.capture("wf_acme"), Some("acme"));
        assert_eq!(p.capture("wf_"), None);
        assert_eq!(p.capture("rb_acme"), None);
        assert_eq!(p.capture("WF_acme"), None);
        assert_eq!(p.capture_any_case("WF_Acme"), Some("Acme"));
        assert_eq!(p.expand("newco"), "wf_newco");
        let s = NamePattern::parse("{tenant}_app").unwrap();
        assert_eq!(s.capture("acme_app"), Some("acme"));
        assert_eq!(s.capture("_app"), None);
        assert_eq!(s.capture_any_case("é_APP"), Some("é"));
        let both = NamePattern::parse("t_{tenant}_db").unwrap();
        assert_eq!(both.capture("t_x_db"), Some("x"));
        assert_eq!(both.capture("t__db"), None);
        assert_eq!(both.capture_any_case("t_db"), None);
        assert_eq!(both.to_string(), "t_{tenant}_db");
        let (longest, too_long) = ("é".repeat(64), "a".repeat(65));
        assert_eq!(p.capture(&format!("wf_{longest}")), Some(longest.as_str()));
        assert_eq!(p.capture(&format!("wf_{too_long}")), None);
    }

    #[test]
    fn patterns_that_can_take_one_name_for_two_tenants_overlap() {
        let p = |t: &str| NamePattern::parse(t).unwrap();
        for (a, b) in [
            ("wf_{tenant}", "wf_{tenant}_rb"),
            ("a{tenant}", "ab{tenant}"),
            ("{tenant}_db", "{tenant}_x_db"),
            ("WF_{tenant}", "wf_{tenant}_rb"),
            ("t_{tenant}", "{tenant}_x"),
        ] {
            assert!(p(a).overlaps(&p(b)), "{a} {b}");
            assert!(p(b).overlaps(&p(a)), "{b} {a}");
        }
        for (a, b) in [
            ("wf_{tenant}", "rb_{tenant}"),
            ("wf_{tenant}", "wf.x{tenant}"),
            ("wf_{tenant}_a", "wf_{tenant}_b"),
            ("wf_{tenant}", "wf_{tenant}.rb"),
        ] {
            assert!(!p(a).overlaps(&p(b)), "{a} {b}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_pattern() {
        assert!(NamePattern::parse("wf_acme").is_err());
        assert!(NamePattern::parse("{tenant}").is_err());
        assert!(NamePattern::parse("{tenant}_{tenant}").is_err());
        assert!(NamePattern::parse("wf_{name}_{tenant}").is_err());
        let p = NamePattern::parse("wf_{tenant}").unwrap();
        for bad in ["wf_a b", "wf_a.b", "wf_a`b", "wf_{tenant}", "wf_a'b"] {
            assert_eq!(p.capture(bad), None, "{bad}");
        }
        assert_eq!(p.capture("wf_a-b$1_é"), Some("a-b$1_é"));
    }
}
