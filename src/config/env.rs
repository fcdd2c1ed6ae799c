//! `${VAR}` expansion in config string values.
//!
//! `$${` stands for a literal `${`, so a password may contain that sequence. Messages name
//! the variable but never the value around it, because the value may be a secret.

/// Looks a variable up; `load` passes `std::env::var`, tests pass a map.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Replaces every `${NAME}` in `text`; returns every problem in the value, not just the first.
pub fn expand(text: &str, env: EnvLookup<'_>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            rest = expand_reference(tail, env, &mut out, &mut problems);
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Handles the text after a `${`; returns what follows the reference.
fn expand_reference<'t>(
    tail: &'t str,
    env: EnvLookup<'_>,
    out: &mut String,
    problems: &mut Vec<String>,
) -> &'t str {
    let Some(close) = tail.find('}') else {
        problems.push("unterminated \"${\" (write \"$${\" for a literal \"${\")".to_string());
        return "";
    };
    let name = &tail[..close];
    if !is_variable_name(name) {
        // The text between the braces is not echoed: it may be part of a literal secret.
        problems.push(
            "invalid environment variable name in \"${...}\" \
             (letters, digits and _, not starting with a digit)"
                .to_string(),
        );
    } else {
        match env(name) {
            Some(value) => out.push_str(&value),
            None => problems.push(format!("environment variable {name} is not set")),
        }
    }
    &tail[close + 1..]
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "USER_PW" => Some("s3cr$t".to_string()),
            "HOST" => Some("db1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_references() {
        assert_eq!(expand("${USER_PW}", &env), Ok("s3cr$t".to_string()));
        assert_eq!(expand("${HOST}:3306", &env), Ok("db1:3306".to_string()));
        assert_eq!(expand("a${EMPTY}b", &env), Ok("ab".to_string()));
        assert_eq!(expand("x${HOST}${HOST}", &env), Ok("xdb1db1".to_string()));
    }

    #[test]
    fn leaves_other_dollars_alone() {
        assert_eq!(expand("pa$$word$", &env), Ok("pa$$word$".to_string()));
        assert_eq!(expand("$HOST", &env), Ok("$HOST".to_string()));
        assert_eq!(expand("$${HOST}", &env), Ok("${HOST}".to_string()));
    }

    #[test]
    fn reports_every_missing_variable() {
        let err = expand("${NOPE}-${ALSO_NOPE}-${HOST}", &env).expect_err("missing");
        assert_eq!(
            err,
            vec![
                "environment variable NOPE is not set".to_string(),
                "environment variable ALSO_NOPE is not set".to_string(),
            ]
        );
    }

    #[test]
    fn reports_malformed_references_without_echoing_the_value() {
        let err = expand("hunter2${", &env).expect_err("unterminated");
        assert!(err[0].contains("unterminated"), "{err:?}");
        assert!(!err[0].contains("hunter2"));
        let err = expand("${1BAD}", &env).expect_err("bad name");
        assert!(
            err[0].contains("invalid environment variable name"),
            "{err:?}"
        );
        let err = expand("${}", &env).expect_err("empty name");
        assert!(
            err[0].contains("invalid environment variable name"),
            "{err:?}"
        );
    }
}
