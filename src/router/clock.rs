//! A bounded map from 64-bit keys that, when full, replaces one entry not hit since its
//! hand last passed (CLOCK, second chance): a flood of one-off keys costs the entries in
//! use nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already hashes; hashing them again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Entry<V> {
    value: V,
    /// The reference bit: set by a hit, cleared as the hand passes.
    used: bool,
}

pub(crate) struct Clock<V> {
    map: HashMap<u64, Entry<V>, BuildHasherDefault<KeyHasher>>,
    /// Keys in insertion slots; the hand sweeps it when the map is full.
    ring: Vec<u64>,
    hand: usize,
    capacity: usize,
}

impl<V> Clock<V> {
    pub fn new(capacity: usize) -> Self {
        Clock {
            map: HashMap::default(),
            ring: Vec::new(),
            hand: 0,
            capacity: capacity.max(1),
        }
    }

    /// The value under `key`, marked as in use.
    pub fn get(&mut self, key: u64) -> Option<&V> {
        let e = self.map.get_mut(&key)?;
        // Written only when clear, so a hot entry's line is not dirtied on every hit.
        if !e.used {
            e.used = true;
        }
        Some(&e.value)
    }

    /// Puts `value` under `key`, in place of what was there or of one entry not in use.
    pub fn put(&mut self, key: u64, value: V) {
        let entry = Entry { value, used: false };
        if let Some(old) = self.map.get_mut(&key) {
            *old = entry;
            return;
        }
        if self.ring.len() < self.capacity {
            self.ring.push(key);
        } else {
            let at = self.evict();
            self.ring[at] = key;
        }
        self.map.insert(key, entry);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Frees one ring slot: entries hit since the hand last passed get a second chance.
    fn evict(&mut self) -> usize {
        loop {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.ring.len();
            match self.map.get_mut(&self.ring[at]) {
                Some(e) if e.used => e.used = false,
                _ => {
                    self.map.remove(&self.ring[at]);
                    return at;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    fn filled(n: u64) -> Clock<u64> {
        let mut c = Clock::new(n as usize);
        for i in 0..n {
            c.put(i, i);
        }
        c
    }

    #[test]
    fn a_full_map_replaces_entries_one_at_a_time() {
        let mut c = filled(100);
        for i in 100..150 {
            c.put(i, i);
            assert_eq!(c.len(), 100);
        }
        let kept = (0..100).filter(|&i| c.get(i).is_some()).count();
        assert_eq!(kept, 50, "one old entry per new one, not the map cleared");
        assert!((100..150).all(|i| c.get(i).is_some()));
    }

    #[test]
    fn entries_in_use_survive_a_flood() {
        let mut c = filled(100);
        for i in 100..10_000 {
            for hot in 0..10 {
                assert_eq!(c.get(hot), Some(&hot), "hot entry {hot} evicted at {i}");
            }
            c.put(i, i);
        }
        assert_eq!(c.len(), 100);
    }
}
