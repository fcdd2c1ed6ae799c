//! Executable comments a server may skip: `/*!NNNNN ... */` and `/*M!NNNNNN ... */` run only
//! on a server of that version or later (and MariaDB skips MySQL's `/*!50700` to `/*!99999`);
//! a server that skips one reads on from its first `*/`, quotes and all. The classifier reads
//! them as SQL, so a statement with one the server skips reads differently there than here.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{Class, Classification, PrimaryReason};

/// MySQL's 5.7 on: what MariaDB skips in `/*!` comments below its own 6-digit versions.
const MYSQL_ONLY: std::ops::RangeInclusive<u32> = 50700..=99999;

/// The backends' version as executable comments compare it (`10.11.6` is 101106), with the
/// MariaDB mark in the top bit; 0 until one was reached (every versioned comment from 5.7
/// on then counts as skippable).
#[derive(Debug, Default)]
pub struct ServerVersion(AtomicU32);

const MARIADB: u32 = 1 << 31;

impl ServerVersion {
    /// From a greeting's version string (`10.11.6-MariaDB-log`, `5.5.5-10.11.6-MariaDB`,
    /// `8.0.36`).
    pub fn learn(&self, version: &[u8]) {
        let text = String::from_utf8_lossy(version);
        let mariadb = text.contains("MariaDB");
        let text = text.strip_prefix("5.5.5-").unwrap_or(&text);
        let mut parts = text
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor)), Some(Some(patch))) =
            (parts.next(), parts.next(), parts.next())
        {
            let v = major
                .saturating_mul(10_000)
                .saturating_add(minor.saturating_mul(100))
                .saturating_add(patch)
                .min(MARIADB - 1);
            self.0
                .store(if mariadb { v | MARIADB } else { v }, Ordering::Relaxed);
        }
    }

    fn get(&self) -> Server {
        match self.0.load(Ordering::Relaxed) {
            0 => Server::Unknown,
            v if v & MARIADB != 0 => Server::MariaDb(v & !MARIADB),
            v => Server::MySql(v),
        }
    }

    /// `c`, or for a statement with a comment the server may skip, a statement Switchyard
    /// cannot read: `SELECT 1 /*!99999 ' */; DELETE ... -- '` is one SELECT to the
    /// classifier and a SELECT and a DELETE to MariaDB. It goes to the primary, and what it
    /// may change of the session stays with it (pinned; the connection reset at its end).
    /// The flag: whether it was so (such an answer holds for that text alone: a comment in
    /// a string is not in its shape).
    pub fn guard(&self, mut c: Classification, sql: &[u8]) -> (Classification, bool) {
        let skipped = skippable(sql, self.get());
        if skipped {
            c.class = Class::Primary(PrimaryReason::Unknown);
            c.effects.unreplayable = true;
        }
        (c, skipped)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Unknown,
    MariaDb(u32),
    MySql(u32),
}

/// Whether `sql` holds a versioned executable comment a server of `version` skips (anywhere,
/// strings too: erring on the primary's side). One memchr per `/` otherwise.
fn skippable(sql: &[u8], server: Server) -> bool {
    let mut rest = sql;
    while let Some(i) = memchr::memchr(b'/', rest) {
        let tail = &rest[i + 1..];
        let (mariadb, digits) = match tail {
            [b'*', b'!', d @ ..] => (false, d),
            [b'*', b'M', b'!', d @ ..] => (true, d),
            _ => (false, &[][..]),
        };
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let wanted = std::str::from_utf8(&digits[..n.min(9)])
            .ok()
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(wanted) = wanted {
            let skipped = match server {
                Server::Unknown => wanted >= *MYSQL_ONLY.start(),
                Server::MariaDb(v) => wanted > v || (!mariadb && MYSQL_ONLY.contains(&wanted)),
                // MySQL runs `/*!` up to its own version, and no `/*M!` at all.
                Server::MySql(v) => mariadb || wanted > v,
            };
            if skipped {
                return true;
            }
        }
        rest = tail;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_mysql_8_skips() {
        let v = ServerVersion::default();
        v.learn(b"8.0.36");
        assert_eq!(v.get(), Server::MySql(80036));
        for (sql, skipped) in [
            ("SELECT 1 /*!50700 , 2 */", false),
            ("SELECT 1 /*!80000 , 2 */", false),
            ("SELECT 1 /*!80037 , 2 */", true),
            ("SELECT 1 /*M!100000 , 2 */", true),
        ] {
            assert_eq!(skippable(sql.as_bytes(), v.get()), skipped, "{sql}");
        }
    }

    #[test]
    fn what_mariadb_10_11_skips() {
        let v = ServerVersion::default();
        v.learn(b"5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert_eq!(v.get(), Server::MariaDb(101106));
        // As the local cluster answers `SELECT 1 /*!N , 2 */` (two columns when it runs).
        for (sql, skipped) in [
            ("SELECT 1 /*!50699 , 2 */", false),
            ("SELECT 1 /*!50700 , 2 */", true),
            ("SELECT 1 /*!99999 , 2 */", true),
            ("SELECT 1 /*!100000 , 2 */", false),
            ("SELECT 1 /*!101106 , 2 */", false),
            ("SELECT 1 /*!999999 , 2 */", true),
            ("SELECT 1 /*M!100000 , 2 */", false),
            ("SELECT 1 /*M!999999 , 2 */", true),
            ("SELECT 1 /*! , 2 */", false),
            ("SELECT 1 /* 999999 , 2 */", false),
        ] {
            assert_eq!(skippable(sql.as_bytes(), v.get()), skipped, "{sql}");
        }
        // Before any backend was reached: every one from 5.7 on.
        assert!(skippable(b"SELECT 1 /*!100000 , 2 */", Server::Unknown));
        assert!(!skippable(b"SELECT 1 /*!40101 , 2 */", Server::Unknown));
    }
}
