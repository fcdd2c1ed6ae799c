//! Lag on the GTID timeline: when the primary's position was first seen past each point, so
//! a replica's lag is the age of the oldest write it has not applied. Any user can read
//! the positions (`@@gtid_binlog_pos`, `@@gtid_current_pos`), so this needs no replication
//! privilege, and it stays right under MASTER_DELAY and IO stalls, where
//! `Seconds_Behind_Master` reads 0 or NULL.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::gtid::GtidPos;

/// Positions kept: at one check per 500 ms of a primary that always writes, 34 minutes.
/// A replica further behind than the oldest kept point is measured from that point (its
/// lag is then under-reported, but long past any sensible limit already).
const MAX_POINTS: usize = 4096;

/// The primary's positions, each with when a check first saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    points: VecDeque<(GtidPos, Instant)>,
}

impl Timeline {
    /// Records the primary's position as seen at `now` (nothing when it has not moved).
    pub fn observe(&mut self, pos: GtidPos, now: Instant) {
        if self.points.back().is_some_and(|(last, _)| *last == pos) {
            return;
        }
        if self.points.len() == MAX_POINTS {
            self.points.pop_front();
        }
        self.points.push_back((pos, now));
    }

    /// How long ago the primary first had a write that `applied` lacks: zero when `applied`
    /// covers everything seen, `None` before the primary was seen at all.
    pub fn lag(&self, applied: &GtidPos, now: Instant) -> Option<Duration> {
        let (last, _) = self.points.back()?;
        if applied.covers(last) {
            return Some(Duration::ZERO);
        }
        // Points only move forward, so the first one not covered is the oldest missing write.
        let first_missing = self.points.partition_point(|(p, _)| applied.covers(p));
        let (_, seen) = self.points.get(first_missing)?;
        Some(now.saturating_duration_since(*seen))
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(s: &str) -> GtidPos {
        GtidPos::parse(s).unwrap()
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_missing_write() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        assert_eq!(t.lag(&pos("0-1-1"), t0), None, "primary never seen");
        t.observe(pos("0-1-10"), t0);
        t.observe(pos("0-1-10"), t0 + Duration::from_secs(1));
        t.observe(pos("0-1-20"), t0 + Duration::from_secs(2));
        t.observe(pos("0-1-30"), t0 + Duration::from_secs(3));
        let now = t0 + Duration::from_secs(5);
        assert_eq!(t.lag(&pos("0-1-30"), now), Some(Duration::ZERO));
        assert_eq!(t.lag(&pos("0-1-35"), now), Some(Duration::ZERO));
        assert_eq!(t.lag(&pos("0-1-25"), now), Some(Duration::from_secs(2)));
        assert_eq!(t.lag(&pos("0-1-10"), now), Some(Duration::from_secs(3)));
        assert_eq!(t.lag(&pos("0-1-5"), now), Some(Duration::from_secs(5)));
        assert_eq!(t.points.len(), 3, "an unchanged position adds no point");
    }

    #[test]
    fn a_primary_that_never_wrote_leaves_no_lag() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        t.observe(GtidPos::default(), t0);
        assert_eq!(t.lag(&GtidPos::default(), t0), Some(Duration::ZERO));
    }

    #[test]
    fn points_are_bounded() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        for i in 0..(MAX_POINTS as u64 + 10) {
            t.observe(pos(&format!("0-1-{i}")), t0 + Duration::from_millis(i));
        }
        assert_eq!(t.points.len(), MAX_POINTS);
    }
}
