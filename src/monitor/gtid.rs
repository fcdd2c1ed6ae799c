//! MariaDB GTID positions (`domain-server-seq,...`) parsed into something comparable.
//!
//! A position holds, per replication domain, the last applied transaction. The data path
//! compares a session's last write with a replica's `gtid_current_pos`: the replica has the
//! write once its position [`covers`](GtidPos::covers) the write's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::error::MonitorError;

/// One GTID: `domain-server-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

/// A GTID position: per domain, the server id and sequence number reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos {
    domains: BTreeMap<u32, (u32, u64)>,
}

impl GtidPos {
    /// Parses `""`, `"0-1-42"` or `"0-1-42,1-2-7"` (whitespace around items is ignored,
    /// as `gtid_binlog_pos` may span lines). `gtid_binlog_pos` may list one domain more than
    /// once (once per server that wrote to it); the highest sequence number wins, since
    /// sequence numbers only grow within a domain.
    pub fn parse(text: &str) -> Result<Self, MonitorError> {
        let mut pos = GtidPos::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let gtid = parse_gtid(item).map_err(|reason| MonitorError::BadGtid {
                text: text.to_string(),
                reason,
            })?;
            pos.advance(gtid);
        }
        Ok(pos)
    }

    /// Takes `gtid` into the position unless its domain is already further.
    pub fn advance(&mut self, gtid: Gtid) {
        let entry = self
            .domains
            .entry(gtid.domain)
            .or_insert((gtid.server, gtid.seq));
        if gtid.seq >= entry.1 {
            *entry = (gtid.server, gtid.seq);
        }
    }

    /// Takes every domain of `other` into the position unless this one is further there.
    pub fn merge(&mut self, other: &GtidPos) {
        other.iter().for_each(|g| self.advance(g));
    }

    /// Whether everything in `other` is contained in `self`: for every domain of `other`,
    /// `self` has reached at least its sequence number. An empty `other` is always covered.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other
            .domains
            .iter()
            .all(|(domain, (_, seq))| self.seq(*domain).is_some_and(|mine| mine >= *seq))
    }

    /// The sequence number reached in `domain`, if any.
    pub fn seq(&self, domain: u32) -> Option<u64> {
        self.domains.get(&domain).map(|(_, seq)| *seq)
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The GTIDs of this position, by domain.
    pub fn iter(&self) -> impl Iterator<Item = Gtid> + '_ {
        self.domains.iter().map(|(domain, (server, seq))| Gtid {
            domain: *domain,
            server: *server,
            seq: *seq,
        })
    }
}

fn parse_gtid(item: &str) -> Result<Gtid, String> {
    let mut parts = item.split('-');
    let (Some(domain), Some(server), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("\"{item}\" is not domain-server-seq"));
    };
    let number = |what: &str, s: &str| -> Result<u64, String> {
        s.parse::<u64>()
            .map_err(|_| format!("{what} \"{s}\" in \"{item}\" is not a number"))
    };
    let small = |what: &str, s: &str| -> Result<u32, String> {
        u32::try_from(number(what, s)?).map_err(|_| format!("{what} in \"{item}\" is too large"))
    };
    Ok(Gtid {
        domain: small("domain", domain)?,
        server: small("server id", server)?,
        seq: number("sequence number", seq)?,
    })
}

impl FromStr for GtidPos {
    type Err = MonitorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GtidPos::parse(s)
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// The server's own spelling, domains in ascending order: parses back to the same position.
impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, gtid) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{gtid}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(text: &str) -> GtidPos {
        GtidPos::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_empty_single_and_multi_domain_positions() {
        assert!(pos("").is_empty());
        assert!(pos("  ").is_empty());
        let p = pos("0-1-42");
        assert_eq!(p.seq(0), Some(42));
        assert_eq!(p.seq(1), None);
        let p = pos("1-2-7, 0-1-42\n");
        assert_eq!((p.seq(0), p.seq(1)), (Some(42), Some(7)));
        assert_eq!(p.to_string(), "0-1-42,1-2-7");
        assert_eq!(pos(&p.to_string()), p);
    }

    #[test]
    fn a_domain_listed_twice_keeps_its_highest_sequence() {
        // gtid_binlog_pos lists the last GTID of each server that wrote to a domain.
        let p = pos("0-2-50,0-1-100");
        assert_eq!(p.seq(0), Some(100));
        assert_eq!(p.to_string(), "0-1-100");
        let p = pos("0-1-100,0-2-50");
        assert_eq!(p.to_string(), "0-1-100");
    }

    #[test]
    fn rejects_malformed_items() {
        for bad in [
            "0-1",
            "0-1-2-3",
            "a-1-2",
            "0--2",
            "0-1-x",
            "4294967296-1-1",
            "0-1-2,,x",
        ] {
            let e = GtidPos::parse(bad).expect_err(bad);
            assert!(
                e.to_string().contains("invalid GTID position"),
                "{bad}: {e}"
            );
        }
        assert!("0-1-2".parse::<GtidPos>().is_ok());
    }

    #[test]
    fn covers_compares_every_domain_of_the_other_position() {
        let replica = pos("0-1-100,1-3-20");
        assert!(replica.covers(&pos("0-1-100")));
        assert!(replica.covers(&pos("0-1-99")));
        assert!(!replica.covers(&pos("0-1-101")));
        assert!(replica.covers(&pos("0-1-50,1-3-20")));
        assert!(!replica.covers(&pos("0-1-50,1-3-21")));
        // A domain the replica has never seen is not covered.
        assert!(!replica.covers(&pos("2-1-1")));
        // Nothing written yet: anything covers it.
        assert!(replica.covers(&GtidPos::default()));
        assert!(GtidPos::default().covers(&GtidPos::default()));
        assert!(!GtidPos::default().covers(&pos("0-1-1")));
    }

    #[test]
    fn the_server_id_does_not_matter_for_coverage() {
        // After a failover the domain's sequence continues under another server id.
        assert!(pos("0-2-101").covers(&pos("0-1-100")));
        assert!(!pos("0-2-99").covers(&pos("0-1-100")));
    }
}
