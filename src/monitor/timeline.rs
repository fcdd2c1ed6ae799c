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
/// lag is then under-reported, but long past any sensible limit already). A replica behind
/// the first point a timeline ever saw (a monitor just started, at launch or by a reload)
/// is at least that far behind and perhaps far more: taken as exact, it would look as fresh
/// as the monitor is young, and a replica seconds behind would take reads at once.
const MAX_POINTS: usize = 4096;

/// A replica's lag on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// The age of the oldest write the replica lacks.
    Exact(Duration),
    /// The replica lacks even the first position this timeline saw (the monitor is younger
    /// than the write): at least the age of that sighting, and perhaps far more.
    AtLeast(Duration),
}

/// The primary's positions, each with when a check first saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    points: VecDeque<(GtidPos, Instant)>,
    /// Points were dropped to keep the bound: the oldest kept is not the first seen.
    truncated: bool,
    /// The last check that read the primary's position, moved or not.
    last_seen: Option<Instant>,
}

impl Timeline {
    /// Records the primary's position as seen at `now` (nothing when it has not moved).
    pub fn observe(&mut self, pos: GtidPos, now: Instant) {
        self.last_seen = Some(now);
        if self.points.back().is_some_and(|(last, _)| *last == pos) {
            return;
        }
        if self.points.len() == MAX_POINTS {
            self.points.pop_front();
            self.truncated = true;
        }
        self.points.push_back((pos, now));
    }

    /// How long ago the primary first had a write that `applied` lacks: zero when `applied`
    /// covers everything seen, `None` before the primary was seen at all.
    pub fn lag(&self, applied: &GtidPos, now: Instant) -> Option<Lag> {
        let (last, _) = self.points.back()?;
        if applied.covers(last) {
            return Some(Lag::Exact(Duration::ZERO));
        }
        // Points only move forward, so the first one not covered is the oldest missing write.
        let first_missing = self.points.partition_point(|(p, _)| applied.covers(p));
        let (_, seen) = self.points.get(first_missing)?;
        let age = now.saturating_duration_since(*seen);
        Some(if first_missing == 0 && !self.truncated {
            Lag::AtLeast(age)
        } else {
            Lag::Exact(age)
        })
    }

    /// When a check last read the primary's position.
    pub fn last_seen(&self) -> Option<Instant> {
        self.last_seen
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
        let exact = |secs| Some(Lag::Exact(Duration::from_secs(secs)));
        t.observe(pos("0-1-10"), t0);
        t.observe(pos("0-1-10"), t0 + Duration::from_secs(1));
        t.observe(pos("0-1-20"), t0 + Duration::from_secs(2));
        t.observe(pos("0-1-30"), t0 + Duration::from_secs(3));
        let now = t0 + Duration::from_secs(5);
        assert_eq!(t.lag(&pos("0-1-30"), now), exact(0));
        assert_eq!(t.lag(&pos("0-1-35"), now), exact(0));
        assert_eq!(t.lag(&pos("0-1-25"), now), exact(2));
        assert_eq!(t.lag(&pos("0-1-10"), now), exact(3));
        assert_eq!(t.points.len(), 3, "an unchanged position adds no point");
    }

    #[test]
    fn a_replica_behind_the_first_position_seen_is_at_least_that_far_behind() {
        // A monitor started (or reloaded) one second ago sees a replica behind the
        // primary's first position: that write may be a second old or an hour.
        let t0 = Instant::now();
        let mut t = Timeline::default();
        t.observe(pos("0-1-10"), t0);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(
            t.lag(&pos("0-1-5"), now),
            Some(Lag::AtLeast(Duration::from_secs(1)))
        );
        assert_eq!(t.lag(&pos("0-1-10"), now), Some(Lag::Exact(Duration::ZERO)));
        // Once points were dropped for the bound, the oldest kept one is the measure.
        let mut long = Timeline::default();
        for i in 0..(MAX_POINTS as u64 + 1) {
            long.observe(
                pos(&format!("0-1-{}", i + 10)),
                t0 + Duration::from_millis(i),
            );
        }
        let now = t0 + Duration::from_secs(60);
        assert_eq!(
            long.lag(&pos("0-1-5"), now),
            Some(Lag::Exact(
                now.duration_since(t0 + Duration::from_millis(1))
            ))
        );
    }

    #[test]
    fn a_primary_that_never_wrote_leaves_no_lag() {
        let t0 = Instant::now();
        let mut t = Timeline::default();
        t.observe(GtidPos::default(), t0);
        assert_eq!(
            t.lag(&GtidPos::default(), t0),
            Some(Lag::Exact(Duration::ZERO))
        );
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
