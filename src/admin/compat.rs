//! What drivers and GUI tools send at connect and between commands, answered as ProxySQL's
//! admin does: SETs and transaction statements get OK and change nothing, settings reads
//! (`SELECT @@x`, `SHOW VARIABLES`, `DATABASE()`, `USER()`, ...) get fixed, sensible values.

use opensrv_mysql::ErrorKind;

use super::command::{rest_after, unquote};
use super::table::{AdminError, Cell, Kind, Reply, Table};
use super::variables;
use crate::router::like::like;

/// The one database the admin port has; a login or USE may name it, or none.
pub const DATABASE: &str = "switchyard";

/// One admin connection, as the statements here see it.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub id: u32,
    pub user: String,
    /// The client's address, for `USER()`.
    pub host: String,
    pub database: Option<String>,
}

impl Session {
    /// COM_INIT_DB, USE or the login's database: empty or [`DATABASE`].
    pub fn use_database(&mut self, db: &str) -> Result<(), AdminError> {
        match db {
            "" => self.database = None,
            DATABASE => self.database = Some(DATABASE.to_owned()),
            _ => {
                return Err(AdminError::new(
                    ErrorKind::ER_BAD_DB_ERROR,
                    format!("Unknown database '{db}': the admin port's only database is '{DATABASE}' (or none)"),
                ))
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// A SET (but `SET BACKEND`), BEGIN, COMMIT or ROLLBACK: OK, nothing changes.
    Accepted,
    /// `SELECT item, ... [FROM DUAL] [LIMIT n]`.
    Select {
        items: Vec<Item>,
        limit: Option<u64>,
    },
    ShowVariables(Filter),
    /// SHOW WARNINGS or SHOW ERRORS: there never are any.
    ShowWarnings,
    ShowCollation(Filter),
    ShowCharset(Filter),
    ShowDatabases,
}

/// One selected expression and its column name (the alias, or the expression as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub column: String,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `@@[session.|global.]name`: the bare name.
    Variable(String),
    Database,
    /// `USER()`: user@client address.
    User,
    /// `CURRENT_USER()`: the account, user@%.
    CurrentUser,
    ConnectionId,
    Version,
    Number(i64),
    Text(String),
}

/// `LIKE 'pattern'` or `WHERE ...`: the quoted strings of either, as LIKE patterns on the
/// first column (`WHERE Variable_name = 'a' OR Variable_name IN ('b', 'c')` works so).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All,
    Like(Vec<String>),
}

/// A SET that drivers send at connect (`SET NAMES`, `SET autocommit=1`, `SET SESSION
/// TRANSACTION ...`), accepted and ignored: not one that looks like an admin command
/// mistyped (`SET BACKENDS x OFFLINE` answered OK, and the replica kept its reads).
fn sets_variables(text: &str, up: &[&str]) -> bool {
    let admin_words = up
        .iter()
        .any(|w| matches!(*w, "BACKEND" | "BACKENDS" | "OFFLINE" | "ONLINE"));
    let driver_form = matches!(
        up.get(1..),
        Some(["NAMES" | "CHARACTER" | "CHARSET" | "TRANSACTION", ..])
            | Some(["SESSION" | "GLOBAL" | "LOCAL", "TRANSACTION", ..])
    );
    !admin_words && (driver_form || text.contains('='))
}

/// `text` (trimmed, no `;`) as a client statement; `up` is its words in upper case.
pub fn parse(text: &str, up: &[&str]) -> Option<Statement> {
    let stmt = match up {
        ["SET", ..] if sets_variables(text, up) => Statement::Accepted,
        ["BEGIN" | "COMMIT" | "ROLLBACK"] | ["START", "TRANSACTION", ..] => Statement::Accepted,
        ["COMMIT" | "ROLLBACK", "WORK"] => Statement::Accepted,
        ["SELECT", ..] => select(rest_after(text, 1))?,
        ["SHOW", "SESSION" | "GLOBAL" | "LOCAL", "VARIABLES", ..] => {
            Statement::ShowVariables(filter(&up[3..], rest_after(text, 3))?)
        }
        ["SHOW", "VARIABLES", ..] => {
            Statement::ShowVariables(filter(&up[2..], rest_after(text, 2))?)
        }
        ["SHOW", "WARNINGS" | "ERRORS", ..] => Statement::ShowWarnings,
        ["SHOW", "COLLATION", ..] => {
            Statement::ShowCollation(filter(&up[2..], rest_after(text, 2))?)
        }
        ["SHOW", "CHARACTER", "SET", ..] => {
            Statement::ShowCharset(filter(&up[3..], rest_after(text, 3))?)
        }
        ["SHOW", "CHARSET", ..] => Statement::ShowCharset(filter(&up[2..], rest_after(text, 2))?),
        ["SHOW", "DATABASES" | "SCHEMAS"] => Statement::ShowDatabases,
        _ => return None,
    };
    Some(stmt)
}

fn filter(up: &[&str], rest: &str) -> Option<Filter> {
    match up.first() {
        None => Some(Filter::All),
        Some(&("LIKE" | "WHERE")) => {
            let patterns = quoted(rest);
            (!patterns.is_empty()).then_some(Filter::Like(patterns))
        }
        Some(_) => None,
    }
}

fn select(rest: &str) -> Option<Statement> {
    let (mut list, limit) = match rfind_word(rest, "LIMIT") {
        Some(i) => (&rest[..i], Some(rest[i + 5..].trim().parse().ok()?)),
        None => (rest, None),
    };
    if let Some(i) = rfind_word(list, "FROM") {
        if !list[i + 4..].trim().eq_ignore_ascii_case("DUAL") {
            return None;
        }
        list = &list[..i];
    }
    let items = split_items(list)
        .into_iter()
        .map(item)
        .collect::<Option<Vec<_>>>()?;
    Some(Statement::Select { items, limit })
}

fn item(text: &str) -> Option<Item> {
    let text = text.trim();
    if let Some(expr) = expr(text) {
        return Some(Item {
            column: text.to_owned(),
            expr,
        });
    }
    // `expr [AS] alias`
    let cut = text.rfind(char::is_whitespace)?;
    let (head, alias) = (text[..cut].trim_end(), text[cut..].trim());
    let head = match rfind_word(head, "AS") {
        Some(i) if head[i + 2..].trim().is_empty() => head[..i].trim_end(),
        _ => head,
    };
    Some(Item {
        column: unquote(alias),
        expr: expr(head)?,
    })
}

fn expr(text: &str) -> Option<Expr> {
    if let Some(name) = text.strip_prefix("@@") {
        let lower = name.to_ascii_lowercase();
        let scope = ["session.", "global.", "local."]
            .iter()
            .find(|s| lower.starts_with(*s))
            .map_or(0, |s| s.len());
        let name = &name[scope..];
        let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        return ok.then(|| Expr::Variable(name.to_owned()));
    }
    let compact: String = text
        .split_whitespace()
        .collect::<String>()
        .to_ascii_uppercase();
    let e = match compact.as_str() {
        "DATABASE()" | "SCHEMA()" => Expr::Database,
        "USER()" | "SESSION_USER()" | "SYSTEM_USER()" => Expr::User,
        "CURRENT_USER()" | "CURRENT_USER" => Expr::CurrentUser,
        "CONNECTION_ID()" => Expr::ConnectionId,
        "VERSION()" => Expr::Version,
        "LAST_INSERT_ID()" | "ROW_COUNT()" | "FOUND_ROWS()" => Expr::Number(0),
        _ => {
            if let Ok(n) = text.parse() {
                Expr::Number(n)
            } else {
                let q = quoted(text);
                match q.as_slice() {
                    [s] if text.len() == s.len() + 2 => Expr::Text(s.clone()),
                    _ => return None,
                }
            }
        }
    };
    Some(e)
}

pub fn answer(session: &Session, stmt: &Statement) -> Reply {
    match stmt {
        Statement::Accepted => Ok(Table::ok()),
        Statement::Select { items, limit } => {
            let mut columns = Vec::new();
            let mut row = Vec::new();
            for i in items {
                let (kind, cell) = value(session, &i.expr)?;
                columns.push((i.column.as_str(), kind));
                row.push(cell);
            }
            let mut t = Table::new(&columns);
            if *limit != Some(0) {
                t.push(row);
            }
            Ok(t)
        }
        Statement::ShowVariables(f) => {
            let mut t = Table::new(&[("Variable_name", Kind::Text), ("Value", Kind::Text)]);
            for (name, v) in variables::all() {
                if f.matches(name) {
                    t.push(vec![name.into(), v.into()]);
                }
            }
            Ok(t)
        }
        Statement::ShowWarnings => Ok(Table::new(&[
            ("Level", Kind::Text),
            ("Code", Kind::Count),
            ("Message", Kind::Text),
        ])),
        Statement::ShowCollation(f) => Ok(collations(f)),
        Statement::ShowCharset(f) => Ok(charsets(f)),
        Statement::ShowDatabases => {
            let mut t = Table::new(&[("Database", Kind::Text)]);
            t.push(vec![DATABASE.into()]);
            Ok(t)
        }
    }
}

fn value(s: &Session, e: &Expr) -> Result<(Kind, Cell), AdminError> {
    Ok(match e {
        Expr::Variable(name) => variables::lookup(name)?,
        Expr::Database => (Kind::Text, s.database.clone().into()),
        Expr::User => (Kind::Text, format!("{}@{}", s.user, s.host).into()),
        Expr::CurrentUser => (Kind::Text, format!("{}@%", s.user).into()),
        Expr::ConnectionId => (Kind::Count, Cell::Count(s.id.into())),
        Expr::Version => (Kind::Text, super::server::VERSION.into()),
        Expr::Number(n) => (Kind::Int, Cell::Int(*n)),
        Expr::Text(t) => (Kind::Text, t.as_str().into()),
    })
}

/// (collation, charset, id, default): the ones a client may ask for by name.
const COLLATIONS: &[(&str, &str, u64, bool)] = &[
    ("binary", "binary", 63, true),
    ("latin1_swedish_ci", "latin1", 8, true),
    ("utf8mb3_general_ci", "utf8mb3", 33, true),
    ("utf8mb4_bin", "utf8mb4", 46, false),
    ("utf8mb4_general_ci", "utf8mb4", 45, true),
    ("utf8mb4_unicode_ci", "utf8mb4", 224, false),
];

fn collations(f: &Filter) -> Table {
    let mut t = Table::new(&[
        ("Collation", Kind::Text),
        ("Charset", Kind::Text),
        ("Id", Kind::Count),
        ("Default", Kind::Text),
        ("Compiled", Kind::Text),
        ("Sortlen", Kind::Count),
    ]);
    for (name, charset, id, default) in COLLATIONS {
        if f.matches(name) {
            let default = if *default { "Yes" } else { "" };
            t.push(vec![
                (*name).into(),
                (*charset).into(),
                Cell::Count(*id),
                default.into(),
                "Yes".into(),
                Cell::Count(1),
            ]);
        }
    }
    t
}

fn charsets(f: &Filter) -> Table {
    let mut t = Table::new(&[
        ("Charset", Kind::Text),
        ("Description", Kind::Text),
        ("Default collation", Kind::Text),
        ("Maxlen", Kind::Count),
    ]);
    let maxlen = |c: &str| match c {
        "utf8mb4" => 4,
        "utf8mb3" => 3,
        _ => 1,
    };
    for (name, charset, _, default) in COLLATIONS {
        if *default && f.matches(charset) {
            t.push(vec![
                (*charset).into(),
                (*charset).into(),
                (*name).into(),
                Cell::Count(maxlen(charset)),
            ]);
        }
    }
    t
}

impl Filter {
    fn matches(&self, name: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Like(patterns) => patterns.iter().any(|p| like(p.as_bytes(), name.as_bytes())),
        }
    }
}

/// The '...' and "..." strings in `text`, unquoted.
fn quoted(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            out.push(chars.by_ref().take_while(|&x| x != c).collect());
        }
    }
    out
}

/// Splits at commas outside quotes and parentheses.
fn split_items(text: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quote) = (Vec::new(), 0, 0i32, None);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Where the last whitespace-delimited `word` (any case) starts in `text`.
fn rfind_word(text: &str, word: &str) -> Option<usize> {
    let upper = text.to_ascii_uppercase();
    let mut end = upper.len();
    while let Some(i) = upper[..end].rfind(word) {
        let before = i == 0 || upper.as_bytes()[i - 1].is_ascii_whitespace();
        let after = upper[i + word.len()..]
            .bytes()
            .next()
            .is_none_or(|b| b.is_ascii_whitespace());
        if before && after && i > 0 {
            return Some(i);
        }
        end = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(text: &str) -> Option<Statement> {
        let upper: Vec<String> = text
            .split_whitespace()
            .map(|w| w.to_ascii_uppercase())
            .collect();
        let up: Vec<&str> = upper.iter().map(String::as_str).collect();
        parse(text, &up)
    }

    fn session() -> Session {
        Session {
            id: 7,
            user: "admin".into(),
            host: "127.0.0.1".into(),
            database: None,
        }
    }

    fn run(text: &str) -> Reply {
        answer(&session(), &stmt(text).expect(text))
    }

    #[test]
    fn sets_and_transaction_statements_are_accepted_but_set_backend_is_not() {
        for s in [
            "SET NAMES utf8mb4",
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'",
            "SET CHARACTER SET utf8",
            "set autocommit=1, sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')",
            "SET @@session.autocommit = OFF",
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET TRANSACTION READ ONLY",
            "COMMIT",
            "rollback",
            "START TRANSACTION READ ONLY",
        ] {
            assert_eq!(stmt(s), Some(Statement::Accepted), "{s}");
        }
        // Admin commands mistyped are not taken for a driver's SET (they got OK, and did
        // nothing).
        for s in [
            "SET BACKEND x OFLINE",
            "SET BACKENDS 10.0.0.5:3306 OFFLINE",
            "SET SERVER '10.0.0.5:3306' OFFLINE",
            "SET REPLICA 10.0.0.5:3306 ONLINE",
            "SET @x = 1; SET BACKEND '10.0.0.5:3306' OFFLINE",
        ] {
            assert_eq!(stmt(s), None, "{s}");
        }
        assert_eq!(stmt("SET"), None);
        assert!(run("SET NAMES utf8mb4").unwrap().columns.is_empty());
    }

    #[test]
    fn selects_of_settings_and_session_functions() {
        let t = run("SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client, DATABASE(), USER() u, CONNECTION_ID(), 1").unwrap();
        let names: Vec<_> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "auto_increment_increment",
                "@@character_set_client",
                "DATABASE()",
                "u",
                "CONNECTION_ID()",
                "1"
            ]
        );
        assert_eq!(
            t.rows,
            [vec![
                Cell::Count(1),
                "utf8mb4".into(),
                Cell::Null,
                "admin@127.0.0.1".into(),
                Cell::Count(7),
                Cell::Int(1)
            ]]
        );
        assert_eq!(
            run("select @@version_comment limit 1").unwrap().rows.len(),
            1
        );
        assert!(run("SELECT 1 FROM DUAL LIMIT 0").unwrap().rows.is_empty());
        assert_eq!(run("SELECT @@nope").unwrap_err().kind as u16, 1193);
        for bad in [
            "SELECT * FROM t",
            "SELECT 1 FROM t",
            "SELECT @@a LIMIT x",
            "SELECT NOW()",
        ] {
            assert_eq!(stmt(bad), None, "{bad}");
        }
    }

    #[test]
    fn show_variables_filters_by_like_and_where() {
        let names = |text: &str| -> Vec<String> {
            run(text)
                .unwrap()
                .rows
                .into_iter()
                .map(|r| match &r[0] {
                    Cell::Text(s) => s.clone(),
                    c => panic!("{c:?}"),
                })
                .collect()
        };
        assert!(names("SHOW VARIABLES").len() > 30);
        assert_eq!(
            names("SHOW SESSION VARIABLES LIKE 'character\\_set\\_c%'"),
            ["character_set_client", "character_set_connection"]
        );
        assert_eq!(
            names("SHOW VARIABLES WHERE Variable_name = 'wait_timeout' OR Variable_name IN ('language', 'sql_mode')"),
            ["sql_mode", "wait_timeout"]
        );
        assert_eq!(names("SHOW COLLATION LIKE 'utf8mb4%'").len(), 3);
        assert_eq!(names("SHOW CHARACTER SET LIKE 'utf8mb4'"), ["utf8mb4"]);
        assert_eq!(stmt("SHOW VARIABLES foo"), None);
    }

    #[test]
    fn only_the_admin_database_or_none() {
        let mut s = session();
        s.use_database(DATABASE).unwrap();
        assert_eq!(s.database.as_deref(), Some(DATABASE));
        s.use_database("").unwrap();
        assert_eq!(s.database, None);
        assert_eq!(s.use_database("wf_acme").unwrap_err().kind as u16, 1049);
    }
}
