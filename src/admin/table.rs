//! Result sets as the admin commands build them: typed columns and rows of cells, and the
//! errors they answer instead.

use opensrv_mysql::{Column, ColumnFlags, ColumnType, ErrorKind};

/// A column's SQL type, as the mysql client is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// BIGINT UNSIGNED.
    Count,
    /// BIGINT (may be negative).
    Int,
    /// TINYINT(1): 0 or 1.
    Flag,
    /// DOUBLE, e.g. seconds of lag.
    Real,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Count(u64),
    Int(i64),
    Flag(bool),
    Real(f64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_owned())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<Option<String>> for Cell {
    fn from(s: Option<String>) -> Self {
        s.map_or(Cell::Null, Cell::Text)
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        Cell::Count(n)
    }
}

impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        Cell::Count(n as u64)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Flag(b)
    }
}

/// One result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, Kind)>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[(&str, Kind)]) -> Self {
        Table {
            columns: columns.iter().map(|(n, k)| ((*n).to_owned(), *k)).collect(),
            rows: Vec::new(),
        }
    }

    /// No result set: the command is answered with an OK packet.
    pub fn ok() -> Self {
        Table::new(&[])
    }

    /// Adds a row; it must have one cell per column.
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width");
        self.rows.push(row);
    }

    /// The index of column `name` (for tests and callers reading a table back).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }

    /// Column definitions for the wire.
    pub fn wire_columns(&self) -> Vec<Column> {
        self.columns
            .iter()
            .map(|(name, kind)| {
                let (coltype, colflags) = match kind {
                    Kind::Text => (ColumnType::MYSQL_TYPE_VAR_STRING, ColumnFlags::empty()),
                    Kind::Count => (
                        ColumnType::MYSQL_TYPE_LONGLONG,
                        ColumnFlags::UNSIGNED_FLAG | ColumnFlags::NUM_FLAG,
                    ),
                    Kind::Int => (ColumnType::MYSQL_TYPE_LONGLONG, ColumnFlags::NUM_FLAG),
                    Kind::Flag => (ColumnType::MYSQL_TYPE_TINY, ColumnFlags::NUM_FLAG),
                    Kind::Real => (ColumnType::MYSQL_TYPE_DOUBLE, ColumnFlags::NUM_FLAG),
                };
                Column {
                    table: String::new(),
                    column: name.clone(),
                    coltype,
                    colflags,
                }
            })
            .collect()
    }
}

/// What a failed command answers: an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AdminError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AdminError {
            kind,
            message: message.into(),
        }
    }

    pub fn unknown_tenant(name: &str) -> Self {
        AdminError::new(
            ErrorKind::ER_BAD_DB_ERROR,
            format!("Unknown tenant '{name}'"),
        )
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ERR {}: {}", self.kind as u16, self.message)
    }
}

pub type Reply = Result<Table, AdminError>;

/// "a, b, c", or "" for none.
pub fn join(items: &[String]) -> String {
    items.join(", ")
}
