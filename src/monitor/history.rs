//! Each backend's recent lag, for the status page's sparkline: a small ring per backend,
//! fed by the monitor's task after each check and read only by the HTTP endpoint (the data
//! path never touches it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::state::lock::Unpoisoned;

/// Points kept per backend: at one per [`SPACING`], five minutes.
pub const MAX_POINTS: usize = 150;
/// Checks closer together than this share a point, so a 100 ms `health_interval` costs no
/// more memory than a 2 s one and the window stays five minutes.
pub const SPACING: Duration = Duration::from_secs(2);

/// One point: when, and the lag then (`None`: not measured, e.g. unreachable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagPoint {
    pub at: Instant,
    pub lag: Option<Duration>,
}

/// The last [`MAX_POINTS`] points of one backend, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagHistory {
    points: VecDeque<LagPoint>,
}

impl LagHistory {
    /// Records a check's lag. Within [`SPACING`] of the last point it is folded into that
    /// point, keeping the larger lag: a chart must not hide a spike.
    pub fn record(&mut self, at: Instant, lag: Option<Duration>) {
        if let Some(last) = self.points.back_mut() {
            if at.saturating_duration_since(last.at) < SPACING {
                last.lag = last.lag.max(lag);
                return;
            }
        }
        if self.points.len() == MAX_POINTS {
            self.points.pop_front();
        }
        self.points.push_back(LagPoint { at, lag });
    }

    pub fn points(&self) -> impl Iterator<Item = &LagPoint> {
        self.points.iter()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Every monitored backend's history, by address.
pub type LagHistories = Arc<Mutex<HashMap<String, LagHistory>>>;

/// Records `addr`'s lag after a check.
pub fn record(histories: &LagHistories, addr: &str, at: Instant, lag: Option<Duration>) {
    let mut h = histories.locked();
    match h.get_mut(addr) {
        Some(history) => history.record(at, lag),
        None => {
            let mut history = LagHistory::default();
            history.record(at, lag);
            h.insert(addr.to_owned(), history);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn checks_within_the_spacing_share_a_point_keeping_the_peak() {
        let t0 = Instant::now();
        let mut h = LagHistory::default();
        h.record(t0, secs(1));
        h.record(t0 + Duration::from_millis(500), secs(7));
        h.record(t0 + Duration::from_millis(1500), secs(2));
        h.record(t0 + SPACING, None);
        let lags: Vec<_> = h.points().map(|p| p.lag).collect();
        assert_eq!(lags, vec![secs(7), None]);
    }

    #[test]
    fn an_unmeasured_check_does_not_erase_a_measured_one() {
        let t0 = Instant::now();
        let mut h = LagHistory::default();
        h.record(t0, secs(3));
        h.record(t0 + Duration::from_millis(100), None);
        assert_eq!(h.points().next().map(|p| p.lag), Some(secs(3)));
    }

    #[test]
    fn the_ring_is_bounded_and_keeps_the_newest() {
        let t0 = Instant::now();
        let mut h = LagHistory::default();
        for i in 0..(MAX_POINTS as u64 + 25) {
            h.record(t0 + SPACING * i as u32, secs(i));
        }
        assert_eq!(h.len(), MAX_POINTS);
        assert_eq!(h.points().next().map(|p| p.lag), Some(secs(25)));
        let newest = MAX_POINTS as u64 + 24;
        assert_eq!(h.points().last().map(|p| p.lag), Some(secs(newest)));
    }

    #[test]
    fn backends_have_their_own_rings() {
        let all = LagHistories::default();
        let t0 = Instant::now();
        record(&all, "a:1", t0, secs(1));
        record(&all, "b:1", t0, None);
        record(&all, "a:1", t0 + SPACING, secs(2));
        let all = all.lock().unwrap();
        assert_eq!(all["a:1"].len(), 2);
        assert_eq!(all["b:1"].len(), 1);
    }
}
