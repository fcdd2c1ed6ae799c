//! Statements per second by tenant and route, from the counters the data path already
//! keeps: each status read compares them with the previous read a second or more before.
//! Nothing is added to the statement path; the page's own polling sets the pace.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::lock::Unpoisoned;

/// Statement totals by (tenant, route).
pub type Totals = BTreeMap<(String, &'static str), u64>;

/// Reads closer together than this reuse the last rates: a window of a few milliseconds
/// (two viewers polling at once) would make a noisy number.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Rates over `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub window: Duration,
    pub per_second: BTreeMap<(String, &'static str), f64>,
}

/// The previous read of the totals and the rates last measured from it.
#[derive(Debug, Default)]
pub struct Rates(Mutex<Sampled>);

#[derive(Debug, Default)]
struct Sampled {
    previous: Option<(Instant, Totals)>,
    last: Option<Measured>,
}

impl Rates {
    /// Takes `totals` as read at `now`; returns the rates over the time since the previous
    /// read (when that is at least [`MIN_WINDOW`] ago), else the last rates measured.
    pub fn observe(&self, now: Instant, totals: &Totals) -> Option<Measured> {
        let mut s = self.0.locked();
        let window = s
            .previous
            .as_ref()
            .map(|(at, _)| now.saturating_duration_since(*at));
        match window {
            None => s.previous = Some((now, totals.clone())),
            Some(w) if w >= MIN_WINDOW => {
                let before = s.previous.as_ref().map(|(_, t)| t);
                s.last = Some(measure(before, totals, w));
                s.previous = Some((now, totals.clone()));
            }
            Some(_) => {}
        }
        s.last.clone()
    }
}

fn measure(before: Option<&Totals>, now: &Totals, window: Duration) -> Measured {
    let secs = window.as_secs_f64();
    let per_second = now
        .iter()
        .map(|(key, n)| {
            // A tenant first counted inside the window started from zero.
            let was = before.and_then(|b| b.get(key)).copied().unwrap_or(0);
            (key.clone(), n.saturating_sub(was) as f64 / secs)
        })
        .collect();
    Measured { window, per_second }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(items: &[(&str, &'static str, u64)]) -> Totals {
        items
            .iter()
            .map(|(t, r, n)| ((t.to_string(), *r), *n))
            .collect()
    }

    #[test]
    fn rates_are_differences_over_the_window() {
        let r = Rates::default();
        let t0 = Instant::now();
        assert_eq!(r.observe(t0, &totals(&[("a", "replica", 10)])), None);
        let m = r
            .observe(
                t0 + Duration::from_secs(2),
                &totals(&[("a", "replica", 30), ("b", "primary", 4)]),
            )
            .expect("rates after two seconds");
        assert_eq!(m.window, Duration::from_secs(2));
        assert_eq!(m.per_second[&("a".into(), "replica")], 10.0);
        assert_eq!(m.per_second[&("b".into(), "primary")], 2.0);
    }

    #[test]
    fn reads_inside_the_minimum_window_reuse_the_last_rates() {
        let r = Rates::default();
        let t0 = Instant::now();
        r.observe(t0, &totals(&[("a", "primary", 0)]));
        let early = t0 + Duration::from_millis(300);
        assert_eq!(r.observe(early, &totals(&[("a", "primary", 99)])), None);
        let t1 = t0 + Duration::from_secs(1);
        let m = r.observe(t1, &totals(&[("a", "primary", 5)])).unwrap();
        assert_eq!(m.per_second[&("a".into(), "primary")], 5.0);
        let again = r.observe(
            t1 + Duration::from_millis(10),
            &totals(&[("a", "primary", 500)]),
        );
        assert_eq!(again, Some(m), "the baseline is not moved by a close read");
    }
}
