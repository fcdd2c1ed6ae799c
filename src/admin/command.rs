//! Parsing admin commands: case-insensitive keywords, surrounding blanks and one trailing `;`
//! ignored, names optionally quoted.

use std::time::Duration;

use opensrv_mysql::ErrorKind;

use super::compat::{self, Statement};
use super::table::AdminError;

/// How long `PAUSE TENANT` waits for open transactions when no TIMEOUT is given.
pub const DEFAULT_PAUSE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest TIMEOUT accepted.
pub const MAX_PAUSE_TIMEOUT: Duration = Duration::from_secs(3600);

/// The commands, as listed in the ERR for an unknown one.
pub const COMMANDS: &[&str] = &[
    "SHOW TENANTS [LIKE '<pattern>'] [LIMIT <n> [OFFSET <m>]]",
    "SHOW BACKENDS",
    "SHOW POOLS",
    "SHOW SESSIONS",
    "SHOW STATS",
    "SHOW QUERY DIGEST",
    "EXPLAIN ROUTE [FOR USER <user> | FOR TENANT <tenant>] [SCHEMA <schema>] <sql>",
    "RELOAD",
    "PAUSE TENANT <name> [TIMEOUT <seconds>]",
    "RESUME TENANT <name>",
    "SET BACKEND <addr> OFFLINE | ONLINE",
    "SHOW FLEET",
    "SHOW COMMANDS",
];

/// Which tenants `SHOW TENANTS` lists: by name, a page of them in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFilter {
    /// SQL LIKE on the tenant name.
    pub like: Option<String>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// `[LIKE '<pattern>'] [LIMIT <n> [OFFSET <m>]]`.
fn tenant_filter(words: &[&str], up: &[&str]) -> Result<TenantFilter, AdminError> {
    let bad = || {
        AdminError::new(
            ErrorKind::ER_PARSE_ERROR,
            "Expected SHOW TENANTS [LIKE '<pattern>'] [LIMIT <n> [OFFSET <m>]]",
        )
    };
    let count = |w: &str| w.parse::<usize>().map_err(|_| bad());
    let mut f = TenantFilter::default();
    let mut i = 0;
    if up.first() == Some(&"LIKE") {
        f.like = Some(unquote(words.get(1).ok_or_else(bad)?));
        i = 2;
    }
    if up.get(i) == Some(&"LIMIT") {
        f.limit = Some(count(words.get(i + 1).ok_or_else(bad)?)?);
        i += 2;
        if up.get(i) == Some(&"OFFSET") {
            f.offset = count(words.get(i + 1).ok_or_else(bad)?)?;
            i += 2;
        }
    }
    if i == words.len() {
        Ok(f)
    } else {
        Err(bad())
    }
}

/// Whom `EXPLAIN ROUTE` decides for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainFor {
    pub user: Option<String>,
    pub schema: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ShowTenants(TenantFilter),
    ShowBackends,
    ShowPools,
    ShowSessions,
    ShowStats,
    ShowQueryDigest,
    ShowCommands,
    ShowFleet,
    ExplainRoute {
        target: ExplainFor,
        sql: String,
    },
    Reload,
    Pause {
        tenant: String,
        timeout: Duration,
    },
    Resume {
        tenant: String,
    },
    SetBackend {
        addr: String,
        offline: bool,
    },
    /// What drivers and GUI tools send besides the commands (see `compat`).
    Client(Statement),
}

pub fn parse(text: &str) -> Result<Command, AdminError> {
    let text = text.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let unknown = || {
        AdminError::new(
            ErrorKind::ER_PARSE_ERROR,
            format!(
                "Unknown admin command '{}'. Commands: {}",
                shorten(text),
                COMMANDS.join("; ")
            ),
        )
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let up: Vec<&str> = upper.iter().map(String::as_str).collect();
    let cmd = match up.as_slice() {
        ["SHOW", "TENANTS", ..] => Command::ShowTenants(tenant_filter(&words[2..], &up[2..])?),
        ["SHOW", "BACKENDS"] => Command::ShowBackends,
        ["SHOW", "POOLS"] => Command::ShowPools,
        ["SHOW", "SESSIONS"] | ["SHOW", "PROCESSLIST"] => Command::ShowSessions,
        ["SHOW", "STATS"] => Command::ShowStats,
        ["SHOW", "FLEET"] => Command::ShowFleet,
        ["SHOW", "QUERY", "DIGEST"] => Command::ShowQueryDigest,
        ["SHOW", "COMMANDS"] | ["HELP"] => Command::ShowCommands,
        ["RELOAD"] => Command::Reload,
        ["PAUSE", "TENANT", _] => Command::Pause {
            tenant: unquote(words[2]),
            timeout: DEFAULT_PAUSE_TIMEOUT,
        },
        ["PAUSE", "TENANT", _, "TIMEOUT", secs] => Command::Pause {
            tenant: unquote(words[2]),
            timeout: seconds(secs)?,
        },
        ["RESUME", "TENANT", _] => Command::Resume {
            tenant: unquote(words[2]),
        },
        ["SET", "BACKEND", _, state @ ("OFFLINE" | "ONLINE")] => Command::SetBackend {
            addr: unquote(words[2]),
            offline: *state == "OFFLINE",
        },
        ["EXPLAIN", "ROUTE", ..] => explain(rest_after(text, 2)).ok_or_else(|| {
            AdminError::new(
                ErrorKind::ER_PARSE_ERROR,
                "EXPLAIN ROUTE needs a statement: EXPLAIN ROUTE [FOR USER <user> | FOR TENANT <tenant>] [SCHEMA <schema>] <sql>",
            )
        })?,
        _ => Command::Client(compat::parse(text, &up).ok_or_else(unknown)?),
    };
    Ok(cmd)
}

fn explain(mut rest: &str) -> Option<Command> {
    let mut target = ExplainFor::default();
    loop {
        let mut it = rest.split_whitespace();
        let (a, b) = (it.next()?, it.next());
        let a = a.to_ascii_uppercase();
        let b_up = b.map(str::to_ascii_uppercase);
        let (slot, skip) = match (a.as_str(), b_up.as_deref()) {
            ("FOR", Some("USER")) => (&mut target.user, 3),
            ("FOR", Some("SCHEMA")) => (&mut target.schema, 3),
            ("FOR", Some("TENANT")) => (&mut target.tenant, 3),
            // No statement begins with either word.
            ("USER", Some(_)) if target.user.is_none() => (&mut target.user, 2),
            ("SCHEMA", Some(_)) if target.schema.is_none() => (&mut target.schema, 2),
            _ => break,
        };
        let value = rest.split_whitespace().nth(skip - 1)?;
        *slot = Some(unquote(value));
        rest = rest_after(rest, skip);
    }
    let sql = rest.trim();
    (!sql.is_empty()).then(|| Command::ExplainRoute {
        target,
        sql: sql.to_owned(),
    })
}

/// The text after the first `n` whitespace-separated words, as written.
pub(super) fn rest_after(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

pub(super) fn unquote(word: &str) -> String {
    for q in ['`', '\'', '"'] {
        if let Some(inner) = word.strip_prefix(q).and_then(|w| w.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    word.to_owned()
}

fn seconds(text: &str) -> Result<Duration, AdminError> {
    let bad = || {
        AdminError::new(
            ErrorKind::ER_PARSE_ERROR,
            format!(
                "TIMEOUT takes seconds between 0 and {}, got '{text}'",
                MAX_PAUSE_TIMEOUT.as_secs()
            ),
        )
    };
    let secs: f64 = text.parse().map_err(|_| bad())?;
    if !(0.0..=MAX_PAUSE_TIMEOUT.as_secs_f64()).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive_and_semicolons_optional() {
        assert_eq!(
            parse("show tenants").unwrap(),
            Command::ShowTenants(TenantFilter::default())
        );
        assert_eq!(
            parse("SHOW TENANTS LIKE 'wf%' LIMIT 10 OFFSET 20").unwrap(),
            Command::ShowTenants(TenantFilter {
                like: Some("wf%".into()),
                limit: Some(10),
                offset: 20,
            })
        );
        assert!(parse("SHOW TENANTS LIMIT x").is_err());
        assert!(parse("SHOW TENANTS LIKE").is_err());
        assert!(parse("SHOW TENANTS OFFSET 3").is_err());
        assert_eq!(
            parse("  SHOW   Backends ;  ").unwrap(),
            Command::ShowBackends
        );
        assert_eq!(
            parse("show query digest;").unwrap(),
            Command::ShowQueryDigest
        );
        assert_eq!(parse("reload").unwrap(), Command::Reload);
    }

    #[test]
    fn pause_resume_and_set_backend_take_arguments() {
        assert_eq!(
            parse("pause tenant acme timeout 2.5").unwrap(),
            Command::Pause {
                tenant: "acme".into(),
                timeout: Duration::from_millis(2500)
            }
        );
        assert_eq!(
            parse("PAUSE TENANT `acme`").unwrap(),
            Command::Pause {
                tenant: "acme".into(),
                timeout: DEFAULT_PAUSE_TIMEOUT
            }
        );
        assert!(parse("PAUSE TENANT acme TIMEOUT -1").is_err());
        assert!(parse("PAUSE TENANT acme TIMEOUT soon").is_err());
        assert_eq!(
            parse("resume tenant 'acme';").unwrap(),
            Command::Resume {
                tenant: "acme".into()
            }
        );
        assert_eq!(
            parse("set backend 127.0.0.1:3308 offline").unwrap(),
            Command::SetBackend {
                addr: "127.0.0.1:3308".into(),
                offline: true
            }
        );
        assert!(parse("SET BACKEND 127.0.0.1:3308 SIDEWAYS").is_err());
    }

    #[test]
    fn explain_route_keeps_the_statement_as_written() {
        assert_eq!(
            parse("explain route SELECT * FROM t WHERE a = 'X;';").unwrap(),
            Command::ExplainRoute {
                target: ExplainFor::default(),
                sql: "SELECT * FROM t WHERE a = 'X;'".into()
            }
        );
        assert_eq!(
            parse("EXPLAIN ROUTE FOR USER ops SCHEMA wf_globex select 1").unwrap(),
            Command::ExplainRoute {
                target: ExplainFor {
                    user: Some("ops".into()),
                    schema: Some("wf_globex".into()),
                    tenant: None
                },
                sql: "select 1".into()
            }
        );
        assert_eq!(
            parse("EXPLAIN ROUTE FOR TENANT globex UPDATE t SET a = 1").unwrap(),
            Command::ExplainRoute {
                target: ExplainFor {
                    tenant: Some("globex".into()),
                    ..ExplainFor::default()
                },
                sql: "UPDATE t SET a = 1".into()
            }
        );
        assert_eq!(
            parse("EXPLAIN ROUTE SCHEMA wf_globex USER ops SELECT 1").unwrap(),
            Command::ExplainRoute {
                target: ExplainFor {
                    user: Some("ops".into()),
                    schema: Some("wf_globex".into()),
                    tenant: None
                },
                sql: "SELECT 1".into()
            }
        );
        assert!(parse("EXPLAIN ROUTE").is_err());
    }

    #[test]
    fn unknown_commands_list_what_exists() {
        let e = parse("DROP EVERYTHING").unwrap_err();
        assert_eq!(e.kind as u16, 1064);
        assert!(e.message.contains("DROP EVERYTHING"), "{}", e.message);
        for c in COMMANDS {
            assert!(e.message.contains(c), "{c} missing from {}", e.message);
        }
        assert!(parse("").is_err());
        assert!(parse("SELECT * FROM t").is_err());
        assert!(parse("SET BACKEND 127.0.0.1:3308 OFLINE").is_err());
    }
}
