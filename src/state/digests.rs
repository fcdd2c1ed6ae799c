//! Per-digest statement statistics for `SHOW QUERY DIGEST`: count, where it ran, total and
//! longest time. Bounded: past the limit, new digests are counted under one overflow row.
//! Each worker records into a table of its own (the lock is only ever contended by a
//! reader); a read merges them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::lock::Unpoisoned;
use super::per_worker::PerWorker;

/// Distinct digests kept; more would let a client that varies its SQL grow memory.
const MAX_DIGESTS: usize = 5000;
const OVERFLOW: u64 = 0;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigestStats {
    pub text: String,
    pub count: u64,
    pub to_primary: u64,
    pub to_replica: u64,
    pub total: Duration,
    pub max: Duration,
}

impl DigestStats {
    fn overflow() -> Self {
        DigestStats {
            text: format!("(other statements: more than {MAX_DIGESTS} digests)"),
            ..DigestStats::default()
        }
    }

    /// Adds another worker's runs of the same digest.
    fn add(&mut self, o: &DigestStats) {
        self.count += o.count;
        self.to_primary += o.to_primary;
        self.to_replica += o.to_replica;
        self.total += o.total;
        self.max = self.max.max(o.max);
    }
}

#[derive(Default)]
pub struct Digests {
    /// FxHash: the keys are digests already (one multiply instead of SipHash's rounds, at
    /// every statement).
    workers: PerWorker<Mutex<FxHashMap<u64, DigestStats>>>,
}

impl Digests {
    /// Records one run of the statement with digest `hash`; `text` is called only the first
    /// time the digest is seen.
    pub fn record(&self, hash: u64, text: impl FnOnce() -> String, replica: bool, took: Duration) {
        let mut map = self.workers.local().locked();
        // One lookup for a digest seen before, the usual case.
        let e = match map.get_mut(&hash) {
            Some(e) => e,
            None => {
                let key = if map.len() < MAX_DIGESTS {
                    hash
                } else {
                    OVERFLOW
                };
                map.entry(key).or_insert_with(|| {
                    if key == OVERFLOW {
                        DigestStats::overflow()
                    } else {
                        DigestStats {
                            text: text(),
                            ..DigestStats::default()
                        }
                    }
                })
            }
        };
        e.count += 1;
        if replica {
            e.to_replica += 1;
        } else {
            e.to_primary += 1;
        }
        e.total += took;
        e.max = e.max.max(took);
    }

    /// All digests, the most time-consuming first: every worker's runs added up, and past
    /// [`MAX_DIGESTS`] (workers that saw different statements) the rest in the overflow row.
    pub fn snapshot(&self) -> Vec<DigestStats> {
        let mut merged: HashMap<u64, DigestStats> = HashMap::new();
        for w in self.workers.iter() {
            let map = w.locked();
            for (k, d) in map.iter() {
                merged
                    .entry(*k)
                    .and_modify(|m| m.add(d))
                    .or_insert_with(|| d.clone());
            }
        }
        let overflow = merged.remove(&OVERFLOW);
        let mut v: Vec<DigestStats> = merged.into_values().collect();
        v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.text.cmp(&b.text)));
        if v.len() > MAX_DIGESTS || overflow.is_some() {
            let mut other = overflow.unwrap_or_else(DigestStats::overflow);
            for d in v.drain(MAX_DIGESTS.min(v.len())..) {
                other.add(&d);
            }
            let at = v.partition_point(|d| d.total > other.total);
            v.insert(at, other);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_accumulate_per_digest() {
        let d = Digests::default();
        d.record(7, || "SELECT ?".into(), true, Duration::from_millis(2));
        d.record(
            7,
            || unreachable!("text is built once"),
            false,
            Duration::from_millis(5),
        );
        d.record(
            9,
            || "UPDATE T SET A=?".into(),
            false,
            Duration::from_millis(1),
        );
        let s = d.snapshot();
        assert_eq!(s[0].text, "SELECT ?");
        assert_eq!((s[0].count, s[0].to_replica, s[0].to_primary), (2, 1, 1));
        assert_eq!(s[0].max, Duration::from_millis(5));
        assert_eq!(s[1].count, 1);
    }

    #[test]
    fn workers_record_apart_and_a_read_merges_within_the_bound() {
        let d = Digests::default();
        d.record(7, || "SELECT ?".into(), true, Duration::from_millis(2));
        std::thread::scope(|s| {
            s.spawn(|| {
                super::super::per_worker::enter_worker(0);
                d.record(7, || "SELECT ?".into(), false, Duration::from_millis(3));
                for h in 100..100 + MAX_DIGESTS as u64 {
                    d.record(h, || format!("q{h}"), true, Duration::from_micros(1));
                }
            });
        });
        let s = d.snapshot();
        assert_eq!(s.len(), MAX_DIGESTS + 1, "the bound and the overflow row");
        assert_eq!((s[0].count, s[0].to_replica, s[0].to_primary), (2, 1, 1));
        let other = s.iter().find(|x| x.text.starts_with("(other")).unwrap();
        assert_eq!(other.count, 1, "the one digest past the bound");
    }
}
