//! Per-digest statement statistics for `SHOW QUERY DIGEST`: count, where it ran, total and
//! longest time. Bounded: past the limit, new digests are counted under one overflow row.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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

#[derive(Default)]
pub struct Digests {
    map: Mutex<HashMap<u64, DigestStats>>,
}

impl Digests {
    /// Records one run of the statement with digest `hash`; `text` is called only the first
    /// time the digest is seen.
    pub fn record(&self, hash: u64, text: impl FnOnce() -> String, replica: bool, took: Duration) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = if map.contains_key(&hash) || map.len() < MAX_DIGESTS {
            hash
        } else {
            OVERFLOW
        };
        let e = map.entry(key).or_insert_with(|| DigestStats {
            text: if key == OVERFLOW {
                format!("(other statements: more than {MAX_DIGESTS} digests)")
            } else {
                text()
            },
            ..DigestStats::default()
        });
        e.count += 1;
        if replica {
            e.to_replica += 1;
        } else {
            e.to_primary += 1;
        }
        e.total += took;
        e.max = e.max.max(took);
    }

    /// All digests, the most time-consuming first.
    pub fn snapshot(&self) -> Vec<DigestStats> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<DigestStats> = map.values().cloned().collect();
        v.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.text.cmp(&b.text)));
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
}
